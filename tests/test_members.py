"""Member cards at the front desk: real name, PIN, top-up bonus, points, and notifications."""

import threading

import pytest

from host_sim.rig import ParkRig, card, common, single_line
from ledger.verify import verify_books
from protocol import envelope
from protocol.messages import CardReturn, Charge, MemberOpen, TopUp
from protocol.pin import seal_pin

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger
from .helpers.waiting import wait_until

MEMBER = card("M00008")
PIN = "246810"


class Desk:
    """Member operations signed as the front desk and the fishing pond would."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.operators = {}  # terminal -> the staff id logged in there (once a shift is open)

    def send(self, terminal_id, message_type, pin=None, **extra):
        fields = self.ledger.fields(terminal_id, MEMBER)
        fields["operator"] = self.operators.get(terminal_id, fields["operator"])
        identity = self.ledger.rig.identity(terminal_id)
        attachment = b""
        if pin is not None:
            attachment, extra["pin_sha256"] = seal_pin(pin, terminal=terminal_id, seq=fields["seq"], ledger_pin_key=identity.pin_key)
        message = message_type(**fields, **extra)
        topic = f"fieldpos/v1/P1/t/{terminal_id}/req"
        payload = envelope.seal(message.to_bytes(), signing_key=identity.signing_key, key_id=identity.key_id,
                                purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment)
        return self.ledger.send(topic, payload)

    def open(self, opening_fen=0):
        return self.send("T-DESK-1", MemberOpen, pin=PIN, member_name="张伟", phone="13800138000", card_fee_fen=0,
                         opening_fen=opening_fen, channel="wechat", payment_ref="wx-open")

    def top_up(self, amount_fen):
        return self.send("T-DESK-1", TopUp, amount_fen=amount_fen, channel="alipay", payment_ref="ali-1")

    def charge(self, amount_fen, pin=None):
        return self.send("T-FISH-1", Charge, pin=pin, amount_fen=amount_fen, lines=single_line("钓鱼 Fishing", amount_fen))


@pytest.fixture
def desk(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    store = rig.home.open_store()
    store.add_bonus_rule("P1", 50000, 5000)    # top up 500, get 50
    store.add_bonus_rule("P1", 100000, 12000)  # top up 1,000, get 120
    store.set_member_settings("P1", bonus_first=False, points_per_yuan=1, no_pin_limit_fen=20000)
    store.close()
    ledger = Ledger(rig)
    desk = Desk(ledger)
    assert desk.open().is_approved
    yield desk
    rig.close()
    ledger.store.close()


def test_top_up_500_with_the_500_get_50_rule_shows_550_split_into_real_and_bonus(desk):
    result = desk.top_up(50000)
    assert result.is_approved
    assert (result.balances.fen, result.balances.bonus) == (50000, 5000)
    assert desk.top_up(100000).balances.bonus == 5000 + 12000  # the higher tier only, no stacking
    assert verify_books(desk.ledger.store).is_ok


def test_real_money_is_spent_first_then_bonus_and_points_are_earned(desk):
    desk.top_up(50000)
    first = desk.charge(15000)
    assert (first.balances.fen, first.balances.bonus, first.balances.points) == (35000, 5000, 150)
    second = desk.charge(19000)  # under the no-PIN limit
    third = desk.charge(18000)   # 16,000 real money left, then 2,000 from the bonus
    assert (second.balances.fen, third.balances.fen, third.balances.bonus) == (16000, 0, 3000)
    expense = desk.ledger.store.db.execute(
        "SELECT SUM(amount) FROM posting WHERE account_id='promo_expense' AND asset='fen'").fetchone()[0]
    assert expense == -2000  # the park pays the station for the bonus part
    assert verify_books(desk.ledger.store).is_ok


def test_a_returned_member_card_never_pays_bonus_out_as_cash(desk):
    desk.top_up(50000)
    desk.charge(10000)
    result = desk.send("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0)
    # Members keep their cards (and transfer them when lost); the refund rule is the temporary card's.
    assert result.reason == "KIND_NOT_ALLOWED"
    cash_out = desk.ledger.store.db.execute(
        "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id LIKE 'channel:%' AND amount > 0").fetchone()[0]
    assert cash_out == 0


def test_a_charge_above_the_no_pin_limit_needs_the_pin_and_three_wrong_pins_lock_the_card(desk):
    desk.top_up(100000)
    assert desk.charge(25000).reason == "PIN_REQUIRED"
    assert desk.charge(25000, pin=PIN).is_approved
    assert [desk.charge(25000, pin="111111").reason for _ in range(3)] == ["WRONG_PIN", "WRONG_PIN", "PIN_LOCKED"]
    assert desk.charge(25000, pin=PIN).reason == "PIN_LOCKED"
    assert desk.charge(1000).reason == "PIN_LOCKED"  # locked means locked, PIN or not
    from protocol.messages import PinUnlock

    assert with_supervisor(desk, "T-DESK-1", PinUnlock, "0000", MEMBER).reason == "WRONG_PIN"
    assert with_supervisor(desk, "T-DESK-1", PinUnlock, ZHAO_PIN, MEMBER).is_approved  # a supervisor unlocks it
    assert desk.charge(25000, pin=PIN).is_approved


@pytest.mark.sqlite_only(reason="scans the bytes of ledger.db and its WAL for the PIN")
def test_the_member_pin_is_nowhere_in_clear(desk):
    desk.charge(25000, pin="135790")
    store = desk.ledger.store
    (pin_hash,) = store.db.execute("SELECT pin_hash FROM member WHERE card_no=?", (MEMBER.no,)).fetchone()
    assert pin_hash.startswith("scrypt$")
    for (payload,) in store.db.execute("SELECT payload FROM request"):
        assert envelope.split(bytes(payload)).attachment == b""
    store.db.execute("PRAGMA wal_checkpoint(FULL)")
    data = b"".join(p.read_bytes() for p in desk.ledger.rig.root.rglob("*.db*"))
    assert PIN.encode() not in data and b"135790" not in data and b'"pin"' not in data


def test_every_member_top_up_and_charge_yields_exactly_one_notification(desk):
    desk.top_up(50000)
    desk.charge(3000)
    desk.charge(25000)  # declined (no PIN): no notification
    desk.charge(25000, pin=PIN)
    rows = desk.ledger.store.db.execute("SELECT body FROM notification ORDER BY notification_id").fetchall()
    kinds = [__import__("json").loads(body)["kind"] for (body,) in rows]
    assert kinds == ["top_up", "charge", "charge"]


class HangingSender:
    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.sent = []

    def send(self, phone, body):
        self.entered.set()
        self.release.wait(30)
        self.sent.append((phone, body))


def test_a_hung_notification_sender_does_not_hold_up_the_sale(tmp_path):
    with ParkRig(tmp_path).create(TERMINALS) as rig:
        rig.start_broker()
        sender = HangingSender()
        rig.start_ledger(notification_sender=sender)
        desk_link, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
        attachment_holder = {}

        def member_open(seq):
            sealed, sha = seal_pin(PIN, terminal="T-DESK-1", seq=seq, ledger_pin_key=desk_link.identity.pin_key)
            attachment_holder["sha"] = sha
            return MemberOpen(**common(desk_link, seq, MEMBER), member_name="李雷", phone="13900139000", card_fee_fen=0,
                              opening_fen=0, channel="cash", payment_ref="", pin_sha256=sha)

        assert desk_link.submit(member_open, pin=PIN).is_approved
        assert desk_link.submit(lambda seq: TopUp(**common(desk_link, seq, MEMBER), amount_fen=10000, channel="cash",
                                                  payment_ref="")).is_approved
        assert sender.entered.wait(10)  # the notifier is stuck inside the gateway call
        result = fishing.submit(lambda seq: Charge(**common(fishing, seq, MEMBER), amount_fen=3000,
                                                   lines=single_line("钓鱼 Fishing", 3000)))
        assert result.is_approved and result.balances.fen == 7000  # answered while the sender hangs
        assert sender.sent == []
        sender.release.set()
        wait_until(lambda: len(sender.sent) == 2, 10, "both notifications")
        assert [body["kind"] for _, body in sender.sent] == ["top_up", "charge"]


# ---------------------------------------------------------------- loss, replacement, reversal
ZHAO_CARD, ZHAO_PIN = "S0003", "3456"   # the park's supervisor (host_sim.rig.STAFF)
NEW_CARD = card("M00009")


def with_supervisor(desk, terminal_id, message_type, supervisor_pin, card_ref, **extra):
    ledger = desk.ledger
    fields = ledger.fields(terminal_id, card_ref)
    fields["operator"] = desk.operators.get(terminal_id, fields["operator"])
    identity = ledger.rig.identity(terminal_id)
    attachment, sha = seal_pin(None, supervisor_pin=supervisor_pin, terminal=terminal_id, seq=fields["seq"],
                               ledger_pin_key=identity.pin_key)
    message = message_type(**fields, supervisor_card_no=ZHAO_CARD, pin_sha256=sha, **extra)
    topic = f"fieldpos/v1/P1/t/{terminal_id}/req"
    payload = envelope.seal(message.to_bytes(), signing_key=identity.signing_key, key_id=identity.key_id,
                            purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment)
    return ledger.send(topic, payload)


def total_balances(store):
    return store.db.execute("SELECT SUM(fen), SUM(bonus), SUM(points) FROM card_balance").fetchone()


def test_a_lost_member_card_is_blocked_at_once_and_its_balance_moves_to_a_new_card(desk):
    from protocol.messages import CardReplace, LossReport

    desk.top_up(50000)
    desk.charge(10000)
    before = total_balances(desk.ledger.store)
    reported = desk.send("T-DESK-1", LossReport)
    assert reported.is_approved
    assert (MEMBER.no, 1) in desk.ledger.store.blocked_cards("P1")
    assert desk.ledger.store.blocklist_version("P1") == 1  # terminals get it as a delta
    assert desk.charge(1000).reason == "CARD_BLOCKED"
    refused = with_supervisor(desk, "T-DESK-1", CardReplace, "0000", NEW_CARD, from_card_no=MEMBER.no, from_issuance=1)
    assert refused.reason == "WRONG_PIN"
    replaced = with_supervisor(desk, "T-DESK-1", CardReplace, ZHAO_PIN, NEW_CARD, from_card_no=MEMBER.no, from_issuance=1)
    assert replaced.is_approved
    assert (replaced.balances.fen, replaced.balances.bonus, replaced.balances.points) == (40000, 5000, 100)
    assert total_balances(desk.ledger.store) == before  # nothing created or lost, only moved
    assert desk.ledger.store.member("P1", NEW_CARD.no).phone == "13800138000"
    assert verify_books(desk.ledger.store).is_ok


def test_a_found_card_is_unblocked_and_a_temporary_card_cannot_be_reported_lost(desk):
    from protocol.messages import CardUnblock, LossReport

    desk.top_up(10000)
    assert desk.send("T-DESK-1", LossReport).is_approved
    assert desk.send("T-DESK-1", CardUnblock).is_approved
    assert desk.ledger.store.blocked_cards("P1") == [] and desk.ledger.store.blocklist_version("P1") == 2
    assert desk.charge(1000).is_approved
    visitor = card("T00077")
    assert desk.ledger.issue(5000, visitor).is_approved
    assert desk.ledger.request("T-DESK-1", LossReport, card_ref=visitor).reason == "KIND_NOT_ALLOWED"


def test_a_wrong_top_up_is_reversed_in_the_same_shift_with_a_supervisor_and_the_member_is_told(desk):
    from protocol.messages import Reversal, ShiftOpen

    store = desk.ledger.store
    li = ("li", "S0002", "2345")
    fields = desk.ledger.fields("T-DESK-1", card(li[1]))
    fields["operator"] = li[0]
    identity = desk.ledger.rig.identity("T-DESK-1")
    attachment, sha = seal_pin(li[2], terminal="T-DESK-1", seq=fields["seq"], ledger_pin_key=identity.pin_key)
    payload = envelope.seal(ShiftOpen(**fields, pin_sha256=sha).to_bytes(), signing_key=identity.signing_key,
                            key_id=identity.key_id, purpose=envelope.Purpose.REQUEST,
                            topic="fieldpos/v1/P1/t/T-DESK-1/req", attachment=attachment)
    assert desk.ledger.send("fieldpos/v1/P1/t/T-DESK-1/req", payload).is_approved
    assert desk.top_up(100).reason == "OPERATOR_NOT_ON_SHIFT"  # "op-1" is not the one logged in
    desk.operators["T-DESK-1"] = "li"
    wrong = desk.top_up(50000)  # meant 5,000
    assert wrong.balances.bonus == 5000
    assert with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq,
                           amount_fen=40000).reason == "AMOUNT_MISMATCH"
    reversed_ = with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq, amount_fen=50000)
    assert reversed_.is_approved and (reversed_.balances.fen, reversed_.balances.bonus) == (0, 0)
    again = with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq, amount_fen=50000)
    assert again.reason == "ALREADY_VOIDED"
    kinds = [__import__("json").loads(body)["kind"] for (body,) in store.db.execute("SELECT body FROM notification")]
    assert kinds == ["top_up", "reversal"]
    assert verify_books(store).is_ok


def test_a_reversal_outside_the_shift_is_refused(desk):
    from protocol.messages import Reversal

    wrong = desk.top_up(50000)  # no shift open on the desk terminal in this test
    result = with_supervisor(desk, "T-DESK-1", Reversal, ZHAO_PIN, MEMBER, original_seq=wrong.seq, amount_fen=50000)
    assert result.reason == "NOT_SAME_SHIFT"


def test_the_sms_sender_posts_the_member_text_to_a_real_http_gateway():
    import http.server
    import json as json_module

    from ledger.notify import HttpSmsSender

    received = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.headers["X-Api-Key"], json_module.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sender = HttpSmsSender(f"http://127.0.0.1:{server.server_port}/sms", api_key="k-1", timeout_s=5)
        sender.send("13800138000", {"kind": "charge", "amount_fen": 3000, "balance_fen": 7000, "bonus_fen": 500,
                                    "points": 30, "terminal": "T-FISH-1"})
    finally:
        server.shutdown()
    ((key, body),) = received
    assert key == "k-1" and body["to"] == "13800138000"
    assert "30.00" in body["text"] and "70.00" in body["text"] and "5.00" in body["text"] and "30" in body["text"]


def test_a_member_moves_money_to_another_member_where_the_park_allows_it(desk):
    from protocol.messages import MemberTransfer

    desk.top_up(50000)
    store = desk.ledger.store
    friend = card("M00010")
    fields = desk.ledger.fields("T-DESK-1", friend)
    identity = desk.ledger.rig.identity("T-DESK-1")
    attachment, sha = seal_pin("112233", terminal="T-DESK-1", seq=fields["seq"], ledger_pin_key=identity.pin_key)
    opened = MemberOpen(**fields, member_name="李四", phone="13600136000", card_fee_fen=0, opening_fen=0,
                        channel="cash", payment_ref="", pin_sha256=sha)
    topic = "fieldpos/v1/P1/t/T-DESK-1/req"
    assert desk.ledger.send(topic, envelope.seal(opened.to_bytes(), signing_key=identity.signing_key, key_id=identity.key_id,
                                                 purpose=envelope.Purpose.REQUEST, topic=topic,
                                                 attachment=attachment)).is_approved

    def transfer(amount_fen, pin):
        return desk.send("T-DESK-1", MemberTransfer, pin=pin, to_card_no=friend.no, to_issuance=1, amount_fen=amount_fen)

    assert transfer(10000, PIN).reason == "KIND_NOT_ALLOWED"  # not allowed by default
    store.set_member_settings("P1", no_pin_limit_fen=20000, allow_transfer=True)
    assert transfer(10000, "999999").reason == "WRONG_PIN"
    moved = transfer(10000, PIN)
    assert moved.is_approved and moved.balances.fen == 40000
    assert store.card_balances("P1", friend.account)[0] == 10000
    assert store.card_balances("P1", MEMBER.account)[1] == 5000  # the bonus stays with the card that earned it
    assert verify_books(store).is_ok


def test_the_desk_finds_a_members_cards_by_phone_and_others_may_not_look(desk):
    from protocol.messages import LossReport, MemberLookup

    desk.top_up(50000)
    def lookup(phone, staff=("li", "S0002"), terminal_id="T-DESK-1"):  # the asking staff member's own card
        return desk.ledger.request(terminal_id, MemberLookup, card_ref=card(staff[1]), operator=staff[0], phone=phone)

    found = lookup("13800138000")
    found_fields = found.cards[0]
    assert found.TYPE == "member_lookup_reply" and len(found.cards) == 1
    assert (found_fields.no, found_fields.uid, found_fields.name, found_fields.state) == (MEMBER.no, MEMBER.uid, "张伟", "active")
    assert (found_fields.fen, found_fields.bonus) == (50000, 5000)
    assert desk.send("T-DESK-1", LossReport).is_approved
    assert lookup("13800138000").cards[0].state == "lost"
    assert lookup("13900000000").cards == ()
    assert lookup("13800138000", staff=("li", "S0001")).reason == "UNKNOWN_STAFF"  # someone else's card
    cashier = lookup("13800138000", staff=("wang", "S0001"))
    assert cashier.TYPE == "result" and cashier.reason == "ROLE_NOT_ALLOWED"
    # A station terminal cannot even ask (its provisioning does not allow the kind).
    station = lookup("13800138000", staff=("zhao", "S0003"), terminal_id="T-FISH-1")
    assert station.reason == "KIND_NOT_ALLOWED" and station.outcome == "refused"
    assert verify_books(desk.ledger.store).is_ok  # a lookup books nothing


def test_a_void_needs_a_supervisors_pin_and_the_member_is_told(desk):
    from protocol.messages import Void

    desk.top_up(50000)
    sale = desk.charge(3000)
    assert sale.is_approved
    cashier_card = ("S0001", "1234")  # Wang is a cashier: her PIN is right, but she is not a supervisor

    def void(supervisor, pin):
        fields = desk.ledger.fields("T-FISH-1", MEMBER)
        identity = desk.ledger.rig.identity("T-FISH-1")
        attachment, sha = seal_pin(None, supervisor_pin=pin, terminal="T-FISH-1", seq=fields["seq"],
                                   ledger_pin_key=identity.pin_key)
        message = Void(**fields, original_seq=sale.seq, amount_fen=3000, supervisor_card_no=supervisor, pin_sha256=sha)
        topic = "fieldpos/v1/P1/t/T-FISH-1/req"
        return desk.ledger.send(topic, envelope.seal(message.to_bytes(), signing_key=identity.signing_key,
                                                     key_id=identity.key_id, purpose=envelope.Purpose.REQUEST,
                                                     topic=topic, attachment=attachment))

    assert void(*cashier_card).reason == "SUPERVISOR_REQUIRED"
    assert void(ZHAO_CARD, "0000").reason == "WRONG_PIN"
    voided = void(ZHAO_CARD, ZHAO_PIN)
    assert voided.is_approved and voided.balances.fen == 50000
    assert void(ZHAO_CARD, ZHAO_PIN).reason == "ALREADY_VOIDED"
    kinds = [__import__("json").loads(body)["kind"] for (body,) in desk.ledger.store.db.execute("SELECT body FROM notification")]
    assert kinds == ["top_up", "charge", "void"]
    assert verify_books(desk.ledger.store).is_ok


def test_a_park_that_raises_its_no_pin_limit_lets_members_opened_before_pay_without_a_pin_up_to_it(desk):
    """The tills go by the park's limit in their signed config, so the ledger must too: a member's
    limit copied when the card was opened would refuse the sale the till did not ask a PIN for."""
    desk.top_up(100000)
    assert desk.charge(30000).reason == "PIN_REQUIRED"  # the park's 200.00, as the member was opened with
    desk.ledger.store.set_member_settings("P1", no_pin_limit_fen=50000)
    assert desk.ledger.store.park_rules("P1").no_pin_limit_fen == 50000  # what the tills are sent now
    assert desk.charge(30000).is_approved
