"""What the rental desk's requests meet at the ledger: a member card's PIN on a deposit, a hand-out
that replaced an unanswered online attempt (``supersedes_seq``), and the orders a card or a voucher
has open (so any desk hands out and takes back). Signed as a rental terminal would, through the
ledger's real intake over SQLite."""

import pytest

from host_sim.rig import card
from ledger.verify import verify_books
from protocol import envelope
from protocol.messages import (DepositCard, DepositDesk, MemberOpen, OfflineRentalOut, RentalOrders, RentalOut,
                               RentalReturn)
from protocol.pin import seal_pin

from .helpers.intake_driver import VISITOR
from .helpers.rental_park import MINUTE, T0, rental_park

STAFF_CARD = card("S0001")
MEMBER = card("M00008")
PIN = "246810"


@pytest.fixture
def park(tmp_path):
    with rental_park(tmp_path) as ledger:
        ledger.store.set_member_settings("P1", bonus_first=False, points_per_yuan=1, no_pin_limit_fen=10000)
        yield ledger


def signed(park, terminal_id, message_type, *, card_ref, pin=None, **extra):
    fields = park.fields(terminal_id, card_ref)
    identity = park.rig.identity(terminal_id)
    attachment = b""
    if pin is not None:
        attachment, extra["pin_sha256"] = seal_pin(pin, terminal=terminal_id, seq=fields["seq"],
                                                   ledger_pin_key=identity.pin_key)
    topic = f"fieldpos/v1/P1/t/{terminal_id}/req"
    payload = envelope.seal(message_type(**fields, **extra).to_bytes(), signing_key=identity.signing_key,
                            key_id=identity.key_id, purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment)
    return park.send(topic, payload)


def open_member(park, opening_fen=100000):
    reply = signed(park, "T-DESK-1", MemberOpen, card_ref=MEMBER, pin=PIN, member_name="张伟", phone="13800138000",
                   card_fee_fen=0, opening_fen=opening_fen, channel="wechat", payment_ref="wx-open")
    assert reply.is_approved


def member_deposit(park, item_type, deposit_fen, pin=None):
    return signed(park, "T-RENT-1", DepositCard, card_ref=MEMBER, pin=pin, item_type=item_type, deposit_fen=deposit_fen)


def test_a_member_deposit_above_the_no_pin_limit_needs_the_pin_and_wrong_pins_lock_it_as_a_charge_does(park):
    open_member(park)
    assert member_deposit(park, "rod", 3000).TYPE == "deposit_reply"  # 30.00: within the 100.00 limit
    assert member_deposit(park, "bike", 20000).reason == "PIN_REQUIRED"
    assert member_deposit(park, "bike", 20000, pin=PIN).TYPE == "deposit_reply"
    assert [member_deposit(park, "bike", 20000, pin="111111").reason for _ in range(3)] == [
        "WRONG_PIN", "WRONG_PIN", "PIN_LOCKED"]
    assert member_deposit(park, "bike", 20000, pin=PIN).reason == "PIN_LOCKED"
    assert park.balance(MEMBER.account) == 100000 - 3000 - 20000  # the two deposits taken, nothing else
    assert verify_books(park.store).problems == ()


def test_an_anonymous_card_deposit_asks_no_pin_whatever_the_sum(park):
    assert park.issue(opening_fen=50000).is_approved
    assert park.request("T-RENT-1", DepositCard, item_type="bike", deposit_fen=20000).TYPE == "deposit_reply"


def sealed(park, terminal_id, message_type, **extra):
    """A request signed as ``terminal_id`` would, not yet sent: (topic, payload, its seq)."""
    fields = park.fields(terminal_id, STAFF_CARD)
    topic, payload = park.sign(terminal_id, message_type(**fields, **extra).to_bytes())
    return topic, payload, fields["seq"]


def cash_voucher(park) -> str:
    reply = park.request("T-RENT-1", DepositDesk, card_ref=STAFF_CARD, item_type="rod", deposit_fen=3000,
                         channel="cash", payment_ref="")
    return reply.voucher


def alerts(park, kind) -> list:
    return park.store.db.execute("SELECT detail FROM alert WHERE kind=?", (kind,)).fetchall()


def hand_outs(park, label) -> int:
    return park.store.db.execute("SELECT COUNT(*) FROM voucher_redemption WHERE item_label=?", (label,)).fetchone()[0]


def test_an_offline_hand_out_after_an_online_one_the_ledger_approved_is_the_same_hand_out_not_a_second(park):
    voucher = cash_voucher(park)
    topic, payload, online_seq = sealed(park, "T-RENT-1", RentalOut, voucher=voucher, item_label="ROD-001")
    assert park.send(topic, payload).is_approved  # approved; the answer never reached the desk
    again = park.request("T-RENT-1", OfflineRentalOut, card_ref=STAFF_CARD, voucher=voucher, item_label="ROD-001",
                         approved_ms=T0 + MINUTE, supersedes_seq=online_seq)
    assert (again.outcome, again.reason) == ("approved", "SAME_SALE")
    assert hand_outs(park, "ROD-001") == 1 and alerts(park, "VOUCHER_REDEEMED_TWICE") == []
    assert verify_books(park.store).problems == ()


def test_an_online_hand_out_that_arrives_after_the_offline_one_replacing_it_is_declined_superseded(park):
    voucher = cash_voucher(park)
    late = sealed(park, "T-RENT-1", RentalOut, voucher=voucher, item_label="ROD-001")  # stuck on the way
    offline = park.request("T-RENT-1", OfflineRentalOut, card_ref=STAFF_CARD, voucher=voucher, item_label="ROD-001",
                           approved_ms=T0 + MINUTE, supersedes_seq=late[2])
    assert offline.is_approved and offline.reason == "OK"
    assert park.store.rental_item("P1", "ROD-001").state == "out"
    declined = park.send(late[0], late[1])
    assert (declined.outcome, declined.reason) == ("declined", "SUPERSEDED")
    assert hand_outs(park, "ROD-001") == 1 and alerts(park, "VOUCHER_REDEEMED_TWICE") == []
    assert verify_books(park.store).problems == ()


def orders_for(park, *, payer=None, voucher=None, terminal="T-RENT-2"):
    return park.request(terminal, RentalOrders, card_ref=STAFF_CARD, payer=payer, voucher=voucher)


def test_any_desk_finds_the_deposits_a_card_paid_with_their_vouchers_and_a_voucher_finds_its_item_out(park):
    assert park.issue(opening_fen=50000).is_approved
    first = park.request("T-RENT-1", DepositCard, item_type="rod", deposit_fen=3000)
    second = park.request("T-RENT-1", DepositCard, item_type="bike", deposit_fen=20000)
    found = orders_for(park, payer=VISITOR)  # asked at the other desk
    assert found.TYPE == "rental_orders_reply"
    assert [(o.order, o.item_type, o.state, o.voucher) for o in found.orders] == [
        (first.order, "rod", "held", first.voucher), (second.order, "bike", "held", second.voucher)]

    assert park.request("T-RENT-1", RentalOut, card_ref=STAFF_CARD, voucher=first.voucher, item_label="ROD-001").is_approved
    (out,) = orders_for(park, voucher=first.voucher).orders
    assert (out.state, out.item_label, out.out_ms) == ("out", "ROD-001", T0)
    assert out.redeemed.startswith("first redeemed") and out.redeemed.endswith("at T-RENT-1")
    assert [o.state for o in orders_for(park, payer=VISITOR).orders] == ["out", "held"]

    park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label="ROD-001", condition="intact", damage="")
    assert orders_for(park, voucher=first.voucher).orders == ()  # closed: nothing open on it
    assert [o.order for o in orders_for(park, payer=VISITOR).orders] == [second.order]
    assert verify_books(park.store).problems == ()


def test_a_lost_card_a_copied_card_and_a_forged_voucher_find_no_orders(park):
    assert park.issue(opening_fen=50000).is_approved
    reply = park.request("T-RENT-1", DepositCard, item_type="rod", deposit_fen=3000)
    copy = card(VISITOR.no, uid="0badc0de")
    assert orders_for(park, payer=copy).reason == "CARD_UID_MISMATCH"
    forged = reply.voucher[:12] + ("A" if reply.voucher[12] != "A" else "B") + reply.voucher[13:]
    assert orders_for(park, voucher=forged).reason == "VOUCHER_INVALID"
    assert orders_for(park, payer=card("C09999")).reason == "UNKNOWN_CARD"


def test_rental_desks_provisioned_before_rental_orders_existed_may_ask_it_once_the_ledger_upgrades(tmp_path):
    # Without it an older desk's every card tap and voucher scan is refused KIND_NOT_ALLOWED.
    import sqlite3

    from ledger.schema import MIGRATIONS
    from ledger.store import Store

    before = next(number for number, script in enumerate(MIGRATIONS) if "',rental_orders'" in script)
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:before], start=1):  # the schema before rental_orders
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    old.execute("INSERT INTO park (park_id, name) VALUES ('P1', 'old park')")
    for terminal_id, kinds in (("T-RENT-1", "deposit_card,deposit_desk,hello,offline_rental_out,rental_out,"
                                            "rental_return,shift_close,shift_open"),
                               ("T-FISH-1", "charge,hello,offline_charge,shift_close,shift_open,void")):
        old.execute("INSERT INTO terminal VALUES (?, 'P1', 'fishing', ?, NULL, 'h', 0)", (terminal_id, kinds))
    old.close()
    for _ in range(2):  # opened twice: the migration runs once, no second ',rental_orders'
        store = Store(path)
        try:
            assert "rental_orders" in store.terminal("T-RENT-1").allowed_kinds
            assert "rental_orders" not in store.terminal("T-FISH-1").allowed_kinds
            kinds = store.db.execute("SELECT allowed_kinds FROM terminal WHERE terminal_id='T-RENT-1'").fetchone()[0]
            assert kinds.count("rental_orders") == 1
        finally:
            store.close()
