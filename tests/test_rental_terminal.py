"""The rental desk's flow as a table of events and effects: no hardware, no network, no clock.

Vouchers are real ``protocol.voucher`` tokens signed with a test key, so the desk's offline check
(signature, expiry) is the one a Pi runs.
"""

from nacl.signing import SigningKey

from protocol.card_record import CardRecord
from protocol.messages import (CardRef, DamageFee, DepositCard, DepositDesk, DepositReply, RentalItem, RentalOrder, RentalOrders,
                               RentalOrdersReply, RentalOut, RentalReturn, RentalReturnReply, RentalStock, RentalType,
                               Result)
from protocol.voucher import Voucher, make_voucher
from terminal.config import StationConfig
from terminal.events import (Answer, CardTapped, KeyPressed, NoAnswer, OfflineApproved, OfflineRefused, Print, PrintFinished,
                             RememberReceipt, Show, State, Submit, Tick)
from terminal.receipt import render_receipt_text
from terminal.rental import RedeemOffline, RentalState, RentalTerminal, ScanFailed, Scanned

STAFF_CARD = CardRecord("S0001", 1, "staff", "P1")
VISITOR = CardRecord("C00042", 1, "temporary", "P1")
NOW_MS = 1_780_000_000_000
LEDGER_KEY = SigningKey(b"\x07" * 32)
ROD = RentalType(item_type="rod", name="鱼竿 Rod", deposit_fen=10000, price_fen=2000, price_per="session",
                 allowed_minutes=240, grace_minutes=15, late_fee_per_hour_fen=1000, lost_fee_fen=15000,
                 damage=(DamageFee(code="reel", name="渔轮 Reel", fee_fen=3000),
                         DamageFee(code="tip", name="竿梢 Tip", fee_fen=1500)))
BIKE = RentalType(item_type="bike", name="单车 Bike", deposit_fen=30000, price_fen=1500, price_per="hour",
                  allowed_minutes=0, grace_minutes=0, late_fee_per_hour_fen=0, lost_fee_fen=80000, damage=())
STOCK = RentalStock(item_types=(ROD, BIKE), items=(
    RentalItem(label="ROD-0042", item_type="rod", state="available"),
    RentalItem(label="ROD-0043", item_type="rod", state="in_repair"),
    RentalItem(label="BIKE-07", item_type="bike", state="available"),
))


def voucher(order="D000123", item_type="rod", expires_ms=NOW_MS + 3_600_000, key=LEDGER_KEY) -> str:
    return make_voucher(Voucher(park="P1", order=order, item_type=item_type, expires_ms=expires_ms,
                                key_id="P1-voucher-1"), key)


def result(seq, outcome="approved", reason="OK", detail=""):
    return Result(park="P1", terminal="T-RENT-1", seq=seq, request_sha256="a" * 64, outcome=outcome, reason=reason,
                  balances=None, txn=99 if outcome == "approved" else None, ledger_time_ms=NOW_MS, detail=detail)


def held(order="D000123", item_type="rod", deposit_fen=10000) -> RentalOrder:
    return RentalOrder(order=order, item_type=item_type, deposit_fen=deposit_fen, state="held",
                       voucher=voucher(order=order, item_type=item_type))


def out(order="D000123", label="ROD-0042", out_ms=NOW_MS - 3_600_000, where="T-RENT-2") -> RentalOrder:
    return RentalOrder(order=order, item_type="rod", deposit_fen=10000, state="out", voucher=voucher(order=order),
                       item_label=label, out_ms=out_ms, redeemed=f"first redeemed 2026-12-01 10:02:03 at {where}")


def orders_reply(*orders, seq=5) -> RentalOrdersReply:
    return RentalOrdersReply(park="P1", terminal="T-RENT-1", seq=seq, request_sha256="d" * 64, orders=tuple(orders),
                             ledger_time_ms=NOW_MS)


def scan_voucher(terminal, token, *orders) -> list:
    """Online, a scanned voucher is looked up first: the lookup sent, and the ledger's answer."""
    submit = only(terminal.handle(Scanned(token, NOW_MS)), Submit)
    assert submit.message_type is RentalOrders and submit.fields["voucher"] == token and submit.fields["payer"] is None
    assert submit.fields["card"] == (STAFF_CARD, "01020304")
    return terminal.handle(Answer(orders_reply(*(orders or (held(),)))))


def tap_payer(terminal, record, *orders) -> list:
    """A visitor's card tapped online: the look-up of its deposits sent, and the ledger's answer."""
    submit = only(terminal.handle(CardTapped("04a1b2c3", record)), Submit)
    assert submit.message_type is RentalOrders and submit.fields["voucher"] is None
    assert submit.fields["payer"] == CardRef(no=record.card_no, issuance=record.issuance, uid="04a1b2c3")
    assert submit.fields["card"] == (STAFF_CARD, "01020304")
    return terminal.handle(Answer(orders_reply(*orders)))


def keys(terminal, text):
    effects = []
    for key in text:
        effects += terminal.handle(KeyPressed({"E": "ENTER", "C": "CANCEL"}.get(key, key)))
    return effects


def only(effects, kind):
    (found,) = [effect for effect in effects if isinstance(effect, kind)]
    return found


def logged_in(**fields) -> RentalTerminal:
    config = StationConfig(park_name="青山湖乐园", station_name="租赁 Rentals", mode="rental",
                           staff={"S0001": ("li", "李娜")})
    terminal = RentalTerminal(config, "T-RENT-1", stock=STOCK, voucher_key=LEDGER_KEY.verify_key, **fields)
    terminal.start(0)
    terminal.handle(CardTapped("01020304", STAFF_CARD))
    keys(terminal, "1234E")
    terminal.handle(Answer(result(1)))
    assert terminal.state == State.IDLE
    return terminal


def test_a_voucher_scanned_shows_its_order_type_and_deposit_and_the_rod_label_hands_it_out_online():
    terminal = logged_in()
    token = voucher()
    (screen,) = scan_voucher(terminal, token)
    assert terminal.state == RentalState.VOUCHER
    assert "D000123" in screen.lines[0] and "鱼竿 Rod" in screen.lines[0] and "100.00" in screen.footer

    submit = only(terminal.handle(Scanned("ROD-0042", NOW_MS)), Submit)
    assert submit.message_type is RentalOut
    assert submit.fields["voucher"] == token and submit.fields["item_label"] == "ROD-0042"
    assert submit.fields["card"] == (STAFF_CARD, "01020304") and submit.fields["operator"] == "li"

    terminal.submitted(7)
    printed = only(terminal.handle(Answer(result(7))), Print).receipt
    assert printed.title == "租赁出借" and printed.is_online and printed.amount_fen == 0
    assert ("物品 Item", "鱼竿 Rod ROD-0042") in printed.detail_lines
    assert RememberReceipt(7) in terminal.handle(PrintFinished()) and terminal.state == State.DONE


def test_a_label_of_another_type_or_in_repair_is_refused_on_the_voucher_screen_and_a_right_one_still_works():
    terminal = logged_in()
    scan_voucher(terminal, voucher())

    (screen,) = terminal.handle(Scanned("BIKE-07", NOW_MS))
    assert "not rod" in screen.lines[1] and terminal.state == RentalState.VOUCHER
    (screen,) = terminal.handle(Scanned("ROD-0043", NOW_MS))
    assert "Not for rent" in screen.lines[1]
    (screen,) = terminal.handle(Scanned("ROD-9999", NOW_MS))
    assert "Unknown" in screen.lines[1]

    assert only(terminal.handle(Scanned("ROD-0042", NOW_MS)), Submit).fields["item_label"] == "ROD-0042"


def test_a_forged_an_altered_and_an_expired_voucher_are_refused_before_anything_is_sent():
    terminal = logged_in()
    token = voucher()
    forged = voucher(key=SigningKey(b"\x09" * 32))
    # One base32 character of the order changed: the signature no longer holds.
    altered = token[:12] + ("A" if token[12] != "A" else "B") + token[13:]
    expired = voucher(expires_ms=NOW_MS - 1000)

    for bad, reason, is_online in ((forged, "VOUCHER_INVALID", True), (altered, "VOUCHER_INVALID", True),
                                   (expired, "VOUCHER_EXPIRED", False)):  # online an expired one is looked up
        terminal.is_online = is_online
        effects = terminal.handle(Scanned(bad, NOW_MS))
        assert terminal.state == State.MESSAGE and not [e for e in effects if isinstance(e, Submit)], reason
        assert effects[0].tone == "error"
        terminal.handle(KeyPressed("ENTER"))
        assert terminal.state == State.IDLE


def test_an_expired_voucher_still_brings_its_rod_back_online_but_hands_nothing_out():
    terminal = logged_in()
    expired = voucher(expires_ms=NOW_MS - 1000)
    (screen,) = scan_voucher(terminal, expired, out())
    assert terminal.state == RentalState.INSPECT and "ROD-0042" in screen.lines[0]
    keys(terminal, "C")

    (screen,) = scan_voucher(terminal, expired, held())
    assert terminal.state == State.MESSAGE and "expired" in " ".join(screen.lines).lower()


def test_a_voucher_cannot_be_checked_before_the_terminal_knows_the_time():
    terminal = logged_in()
    (screen,) = terminal.handle(Scanned(voucher(), None))
    assert terminal.state == State.MESSAGE and "Clock unknown" in screen.title


def test_offline_a_good_voucher_is_redeemed_locally_and_the_receipt_says_offline():
    terminal = logged_in()
    terminal.is_online = False
    token = voucher()
    terminal.handle(Scanned(token, NOW_MS))
    effects = terminal.handle(Scanned("ROD-0042", NOW_MS))
    assert only(effects, RedeemOffline) == RedeemOffline(token, "ROD-0042")
    assert not [e for e in effects if isinstance(e, Submit)]

    printed = only(terminal.handle(OfflineApproved(seq=8, time_ms=NOW_MS, is_time_uncertain=False)), Print).receipt
    assert not printed.is_online and printed.receipt_number == "T-RENT-1-8" and printed.ledger_transaction_id is None
    assert RememberReceipt(8) in terminal.handle(PrintFinished())


def test_a_hand_out_sent_online_without_an_answer_falls_back_offline_naming_the_attempt_it_replaces():
    terminal = logged_in()
    token = voucher()
    scan_voucher(terminal, token)
    terminal.handle(Scanned("ROD-0042", NOW_MS))
    terminal.submitted(9)

    effects = terminal.handle(NoAnswer())
    assert only(effects, RedeemOffline) == RedeemOffline(token, "ROD-0042", supersedes_seq=9)
    printed = only(terminal.handle(OfflineApproved(seq=10, time_ms=NOW_MS, is_time_uncertain=False)), Print).receipt
    assert not printed.is_online and printed.receipt_number == "T-RENT-1-10"


def test_a_hand_out_whose_offline_fallback_cannot_be_queued_waits_for_the_online_attempt():
    terminal = logged_in()
    scan_voucher(terminal, voucher())
    terminal.handle(Scanned("ROD-0042", NOW_MS))
    terminal.submitted(9)
    terminal.handle(NoAnswer())

    terminal.handle(OfflineRefused("OUTBOX_FULL", "queue full"))
    assert terminal.state == State.UNCERTAIN  # never a message that says it did not happen: it may have
    assert only(terminal.handle(Answer(result(9))), Print).receipt.seq == 9


def test_a_deposit_or_a_return_without_an_answer_waits():
    terminal = logged_in()
    terminal.handle(Scanned("ROD-0042", NOW_MS))
    keys(terminal, "1")
    terminal.submitted(9)
    effects = terminal.handle(NoAnswer())
    assert terminal.state == State.UNCERTAIN and not [e for e in effects if isinstance(e, RedeemOffline)]


def test_a_voucher_used_before_is_refused_with_the_time_and_place_of_the_first():
    terminal = logged_in()
    scan_voucher(terminal, voucher())
    terminal.handle(Scanned("ROD-0042", NOW_MS))
    detail = "first redeemed 2026-12-01 10:02:03 at T-RENT-2"
    (screen,) = terminal.handle(Answer(result(10, "declined", "VOUCHER_USED", detail=detail)))
    assert terminal.state == State.MESSAGE and detail in screen.lines


def test_a_rod_returned_damaged_sends_the_picked_damage_and_prints_every_item_of_the_settlement():
    terminal = logged_in()
    (screen,) = terminal.handle(Scanned("ROD-0042", NOW_MS))
    assert terminal.state == RentalState.INSPECT and "ROD-0042" in screen.lines[0]
    keys(terminal, "2")
    assert terminal.state == RentalState.DAMAGE
    screen = keys(terminal, "12")[-1]
    assert screen.lines[0].startswith("[x]") and screen.lines[1].startswith("[x]")
    keys(terminal, "2")  # unpicked again
    submit = only(keys(terminal, "E"), Submit)
    assert submit.message_type is RentalReturn
    assert submit.fields | {"card": None} == {"operator": "li", "card": None, "item_label": "ROD-0042",
                                              "condition": "damaged", "damage": "reel"}

    terminal.submitted(11)
    reply = RentalReturnReply(park="P1", terminal="T-RENT-1", seq=11, request_sha256="b" * 64, order="D000123",
                              item_type="rod", item_label="ROD-0042", out_ms=NOW_MS - 6 * 3_600_000,
                              returned_ms=NOW_MS, deposit_fen=10000, rental_fen=2000, late_fen=2000, damage_fen=3000,
                              refunded_fen=3000, claim_fen=0, route="online_wechat", ledger_time_ms=NOW_MS)
    receipt = only(terminal.handle(Answer(reply)), Print).receipt
    assert receipt.amount_fen == 3000 and receipt.title == "租赁归还"
    text = "\n".join(render_receipt_text(receipt, 384))
    for label, value in (("押金", "100.00"), ("租金", "20.00"), ("超时费", "20.00"), ("损坏", "30.00"),
                         ("退款", "30.00"), ("退回", "微信原路")):
        assert any(label in line and value in line for line in text.splitlines()), (label, text)
    assert "欠款" not in text


def test_a_lost_bike_with_a_claim_prints_what_is_still_owed():
    terminal = logged_in()
    terminal.handle(Scanned("BIKE-07", NOW_MS))
    submit = only(keys(terminal, "3"), Submit)
    assert submit.fields["condition"] == "lost" and submit.fields["damage"] == ""
    reply = RentalReturnReply(park="P1", terminal="T-RENT-1", seq=12, request_sha256="b" * 64, order="D000124",
                              item_type="bike", item_label="BIKE-07", out_ms=NOW_MS - 3_600_000, returned_ms=NOW_MS,
                              deposit_fen=30000, rental_fen=1500, late_fen=0, damage_fen=80000, refunded_fen=0,
                              claim_fen=51500, route="card", ledger_time_ms=NOW_MS)
    receipt = only(terminal.handle(Answer(reply)), Print).receipt
    assert ("欠款 Still owed", "515.00") in receipt.detail_lines


def test_a_park_card_pays_a_deposit_prints_the_voucher_as_a_qr_code_and_the_desk_scans_the_label_next():
    terminal = logged_in()
    tap_payer(terminal, VISITOR)
    assert terminal.state == RentalState.PICK_TYPE
    submit = only(keys(terminal, "1"), Submit)
    assert submit.message_type is DepositCard and submit.fields["card"] == (VISITOR, "04a1b2c3")
    assert submit.fields["item_type"] == "rod" and submit.fields["deposit_fen"] == 10000

    token = voucher(order="D000200")
    reply = DepositReply(park="P1", terminal="T-RENT-1", seq=13, request_sha256="c" * 64, order="D000200",
                         item_type="rod", deposit_fen=10000, voucher=token, expires_ms=NOW_MS + 3_600_000,
                         ledger_time_ms=NOW_MS)
    receipt = only(terminal.handle(Answer(reply)), Print).receipt
    assert receipt.voucher == token and receipt.amount_fen == 10000 and receipt.title == "押金凭证"
    assert f"[QR {token}]" in render_receipt_text(receipt, 384)

    effects = terminal.handle(PrintFinished())
    assert RememberReceipt(13) in effects and terminal.state == RentalState.VOUCHER
    submit = only(terminal.handle(Scanned("ROD-0042", NOW_MS)), Submit)
    assert submit.message_type is RentalOut and submit.fields["voucher"] == token
    assert submit.fields["card"] == (STAFF_CARD, "01020304")  # the hand-out is the staff member's


def test_f2_takes_a_deposit_paid_in_cash_at_the_desk():
    terminal = logged_in()
    keys(terminal, ["F2"])
    keys(terminal, "2")
    assert terminal.state == RentalState.PICK_CHANNEL
    submit = only(keys(terminal, "1"), Submit)
    assert submit.message_type is DepositDesk
    assert submit.fields["channel"] == "cash" and submit.fields["item_type"] == "bike"
    assert submit.fields["deposit_fen"] == 30000 and submit.fields["card"] == (STAFF_CARD, "01020304")


def test_offline_deposits_and_returns_are_refused_before_anything_is_sent():
    terminal = logged_in()
    terminal.is_online = False
    for event in (CardTapped("04a1b2c3", VISITOR), KeyPressed("F2"), Scanned("ROD-0042", NOW_MS)):
        effects = terminal.handle(event)
        assert terminal.state == State.MESSAGE and "OFFLINE" in effects[0].title
        assert not [e for e in effects if isinstance(e, Submit)]
        terminal.handle(KeyPressed("ENTER"))


def test_cancel_and_the_entry_timeout_leave_every_rental_screen():
    terminal = logged_in()
    scan_voucher(terminal, voucher())
    keys(terminal, "C")
    assert terminal.state == State.IDLE and terminal.rental is None
    terminal.handle(Scanned("ROD-0042", NOW_MS))
    keys(terminal, "2")
    terminal.handle(Tick(10 ** 6))
    assert terminal.state == State.IDLE and terminal.rental is None and terminal.sale is None


def test_an_unknown_label_and_an_unreadable_scan_are_messages():
    terminal = logged_in()
    (screen,) = terminal.handle(Scanned("KAYAK-1", NOW_MS))
    assert "Unknown label" in screen.title
    terminal.handle(KeyPressed("ENTER"))
    (screen,) = terminal.handle(ScanFailed("Scan too long (more than 1024 characters) — scan again"))
    assert "Scan failed" in screen.title and "too long" in screen.lines[0]


def test_the_idle_screen_says_what_to_scan():
    terminal = logged_in()
    screen = terminal.redraw()
    assert isinstance(screen, Show) and "Scan: voucher/label" in screen.lines[0] and "ONLINE" in screen.footer


def test_the_park_card_that_paid_tapped_at_any_desk_hands_its_deposit_out_instead_of_taking_a_second():
    terminal = logged_in()  # this desk never saw the deposit: the ledger knows it
    token = voucher(order="D000201")
    effects = tap_payer(terminal, VISITOR, held(order="D000201"))
    assert terminal.state == RentalState.VOUCHER and not [e for e in effects if isinstance(e, Submit)]
    assert "D000201" in effects[0].lines[0] and "Paid" in effects[0].lines[1]
    submit = only(terminal.handle(Scanned("ROD-0042", NOW_MS)), Submit)
    assert submit.message_type is RentalOut and submit.fields["voucher"] == token
    assert submit.fields["card"] == (STAFF_CARD, "01020304")  # the hand-out is the staff member's
    terminal.handle(Answer(result(15)))
    terminal.handle(PrintFinished())

    tap_payer(terminal, VISITOR)  # nothing held any more: the next tap is a new deposit
    assert terminal.state == RentalState.PICK_TYPE


def test_a_card_with_several_paid_deposits_lets_the_staff_pick_one_or_take_a_new_deposit():
    terminal = logged_in()
    (screen,) = tap_payer(terminal, VISITOR, held(order="D000301"), held(order="D000302", item_type="bike",
                                                                         deposit_fen=30000))
    assert terminal.state == RentalState.PICK_ORDER
    assert screen.lines == ("1 D000301 鱼竿 Rod", "2 D000302 单车 Bike") and "0" in screen.footer
    assert keys(terminal, "7") == [] and terminal.state == RentalState.PICK_ORDER  # no third order
    (screen,) = keys(terminal, "2")
    assert terminal.state == RentalState.VOUCHER and "D000302" in screen.lines[0]
    submit = only(terminal.handle(Scanned("BIKE-07", NOW_MS)), Submit)
    assert submit.fields["voucher"] == voucher(order="D000302", item_type="bike")

    terminal = logged_in()
    tap_payer(terminal, VISITOR, held(order="D000301"), held(order="D000302"))
    keys(terminal, "0")
    assert terminal.state == RentalState.PICK_TYPE
    assert only(keys(terminal, "1"), Submit).fields["card"] == (VISITOR, "04a1b2c3")


def test_a_card_tap_the_ledger_does_not_answer_takes_no_deposit():
    terminal = logged_in()
    terminal.handle(CardTapped("04a1b2c3", VISITOR))
    (screen,) = terminal.handle(NoAnswer())
    assert terminal.state == State.MESSAGE and "No answer" in screen.title


def test_the_voucher_of_a_rod_handed_out_at_any_desk_starts_its_return_saying_when_and_where_it_went_out():
    terminal = logged_in()
    token = voucher()
    (screen,) = scan_voucher(terminal, token, out(where="T-RENT-2"))
    assert terminal.state == RentalState.INSPECT and "ROD-0042" in screen.lines[0]
    assert "凭证已用" in screen.title and "T-RENT-2" in screen.title and screen.tone == "warning"  # never a second rod
    submit = only(keys(terminal, "1"), Submit)
    assert submit.message_type is RentalReturn and submit.fields["item_label"] == "ROD-0042"


def test_a_voucher_whose_rental_is_over_is_a_message_and_one_the_ledger_does_not_answer_goes_to_its_hand_out():
    terminal = logged_in()
    scan_voucher(terminal, voucher(), *())  # default: held
    keys(terminal, "C")
    terminal.handle(Scanned(voucher(), NOW_MS))
    (screen,) = terminal.handle(Answer(orders_reply()))
    assert terminal.state == State.MESSAGE and "closed" in screen.title
    terminal.handle(KeyPressed("ENTER"))

    terminal.handle(Scanned(voucher(), NOW_MS))
    terminal.handle(NoAnswer())
    assert terminal.state == RentalState.VOUCHER  # checked here; the hand-out asks the ledger again

MEMBER = CardRecord("M00008", 1, "member", "P1")


def test_a_member_card_paying_a_deposit_above_the_no_pin_limit_asks_its_pin_on_the_charge_pin_screen():
    terminal = logged_in()  # the park's no-PIN limit: 200.00
    tap_payer(terminal, MEMBER)
    submit = only(keys(terminal, "1"), Submit)  # the rod: 100.00, within the limit: no PIN
    assert submit.message_type is DepositCard and submit.pin is None
    terminal.handle(Answer(result(20, "declined", "INSUFFICIENT_FUNDS")))
    terminal.handle(KeyPressed("ENTER"))

    tap_payer(terminal, MEMBER)
    (screen,) = keys(terminal, "2")  # the bike: 300.00, above it
    assert terminal.state == State.CHARGE_PIN and "Member PIN" in screen.title and "300.00" in screen.lines[0]
    submit = only(keys(terminal, "246810E"), Submit)
    assert submit.message_type is DepositCard and submit.pin == "246810"
    assert submit.fields["item_type"] == "bike" and submit.fields["card"] == (MEMBER, "04a1b2c3")
    (screen,) = terminal.handle(Answer(result(21, "declined", "WRONG_PIN")))
    assert terminal.state == State.MESSAGE and any("PIN" in line for line in screen.lines)


def test_an_anonymous_card_pays_any_deposit_without_a_pin():
    terminal = logged_in()  # the park's no-PIN limit: 200.00
    tap_payer(terminal, VISITOR)
    submit = only(keys(terminal, "2"), Submit)
    assert submit.message_type is DepositCard and submit.pin is None
