"""The README's receipt pictures, made by the terminal's own state machine and receipt renderer: a
sale at the fishing station, one the BBQ sold offline, a void; a top-up, a card return and a lost
member card replaced at the front desk, and its shift slip with the blind cash count; a rental deposit's voucher (its QR code) and a rod's
itemised return, late and damaged, at the rental desk. Each flow is the
keys and taps a cashier would give, answered by a ledger Result, so a picture shows what the till
prints today. Run ``python -m host_sim.receipt_pictures [DIR]`` (default docs/img) after changing a
receipt."""

import argparse
from pathlib import Path

from protocol.card_record import CardRecord
from protocol.messages import Balances, Result
from terminal.config import StationConfig
from terminal.core import Terminal
from protocol.messages import MemberCard, MemberLookupReply
from terminal.events import Answer, CardTapped, KeyPressed, OfflineApproved, Print, PrintFinished
from terminal.receipt import ReceiptData, render_receipt_image

PARK = "示范农庄 Demo Farm"
WIDTH_58MM_DOTS = 384
# 2026-05-01 10:32 in the park's time zone (Asia/Shanghai): a fixed time, so the pictures change
# only when the receipt does.
LEDGER_TIME_MS = 1_777_602_720_000
CASHIER = ("S0001", "wang", "王芳")
SUPERVISOR = ("S0003", "zhao", "赵敏")
VISITOR = CardRecord("T4F2A91C0", 1, "temporary", "P1")
PICTURES = {"sale": "receipt-sample.png", "offline": "receipt-offline.png", "void": "receipt-void.png",
            "top-up": "receipt-topup.png", "return": "receipt-return.png", "replacement": "receipt-replacement.png",
            "voucher": "receipt-voucher.png", "rental-return": "receipt-rental-return.png",
            "shift-slip": "receipt-shift-slip.png"}
RENTAL_STAFF = ("S0004", "sun", "孙丽")
# The voucher key is fixed (its seed below) so the voucher's QR, like the rest, changes only when
# the receipt does; a park's own key is made by ``ledger init`` and never leaves the ledger.
VOUCHER_KEY_SEED = bytes(range(32))
HOUR_MS = 3_600_000


def _answer(terminal_id: str, seq: int, *, fen: int, amount_fen: int | None = None, txn: int = 1041, bonus: int = 0,
            points: int = 0, card_record: str | None = None) -> Answer:
    return Answer(Result(park="P1", terminal=terminal_id, seq=seq, request_sha256="a" * 64, outcome="approved",
                         reason="OK", balances=Balances(fen=fen, bonus=bonus, points=points), txn=txn,
                         ledger_time_ms=LEDGER_TIME_MS, detail="", amount_fen=amount_fen, card_record=card_record))


def _press(terminal: Terminal, *keys: str) -> list:
    effects = []
    for key in keys:
        effects += terminal.handle(KeyPressed({"E": "ENTER", "C": "CANCEL"}.get(key, key)))
    return effects


def _logged_in(terminal_id: str, **settings) -> Terminal:
    staff = {CASHIER[0]: CASHIER[1:], SUPERVISOR[0]: SUPERVISOR[1:]}
    terminal = Terminal(StationConfig(park_name=PARK, staff=staff, **settings), terminal_id)
    terminal.start(0)
    terminal.handle(CardTapped("01020304", CardRecord(CASHIER[0], 1, "staff", "P1")))
    _press(terminal, *"1234E")
    terminal.handle(_answer(terminal_id, 1, fen=0))
    return terminal


def _printed(effects: list) -> ReceiptData:
    (printed,) = [effect.receipt for effect in effects if isinstance(effect, Print)]
    return printed


def sale() -> ReceiptData:
    """30.00 at the fishing station, 40.00 left on the card."""
    station = _logged_in("T-FISH-1", station_name="钓鱼 Fishing pond")
    station.handle(CardTapped("4f2a91c0", VISITOR))
    _press(station, *"30E")
    station.submitted(7)
    return _printed(station.handle(_answer("T-FISH-1", 7, fen=4000, amount_fen=3000, txn=1040)))


def offline_sale() -> ReceiptData:
    """86.50 at the BBQ while its Wi-Fi was down: no balance yet, the receipt number kept."""
    station = _logged_in("T-BBQ-1", station_name="烧烤 BBQ")
    station.is_online = False
    station.handle(CardTapped("4f2a91c0", VISITOR))
    _press(station, *"86.5E")
    return _printed(station.handle(OfflineApproved(25, LEDGER_TIME_MS, is_time_uncertain=False)))


def replacement() -> ReceiptData:
    """A member's lost card replaced on a blank one: balance, bonus and points moved."""
    desk = _logged_in("T-DESK-1", station_name="总台 Front desk", mode="desk")
    desk.handle(CardTapped("5e6f7a8b", None, "blank card", is_blank=True))
    _press(desk, "3", *"13800138000E")
    lost = MemberCard(no="M0A0B0C0D", issuance=1, uid="0a0b0c0d", name="Zhang Wei", state="lost", fen=40000,
                      bonus=5000, points=120)
    desk.handle(Answer(MemberLookupReply(park="P1", terminal="T-DESK-1", seq=14, request_sha256="a" * 64,
                                         ledger_time_ms=LEDGER_TIME_MS, cards=(lost,))))
    _press(desk, "E")
    desk.handle(CardTapped("0a0b0c0d", CardRecord(SUPERVISOR[0], 1, "staff", "P1")))
    _press(desk, *"3456E")
    desk.submitted(15)
    desk.handle(_answer("T-DESK-1", 15, fen=40000, bonus=5000, points=120, card_record="ab" * 96))
    return desk.last_receipt


def top_up() -> ReceiptData:
    """50.00 topped up in cash onto a temporary card holding 70.00."""
    desk = _logged_in("T-DESK-1", station_name="总台 Front desk", mode="desk", card_fee_fen=2000)
    desk.handle(CardTapped("4f2a91c0", VISITOR))
    _press(desk, "1", *"50E")
    _press(desk, "1")  # cash
    desk.submitted(12)
    return _printed(desk.handle(_answer("T-DESK-1", 12, fen=12000, amount_fen=5000)))


def card_return() -> ReceiptData:
    """The card handed back damaged: 70.00 balance + 20.00 deposit - 10.00 damage fee, by WeChat."""
    desk = _logged_in("T-DESK-1", station_name="总台 Front desk", mode="desk", card_fee_fen=2000, damage_fee_fen=1000)
    desk.handle(CardTapped("4f2a91c0", VISITOR))
    _press(desk, "2", "2")  # return, damaged
    _press(desk, "2", "E")  # refunded by WeChat, the refund shown and confirmed
    desk.submitted(13)
    return _printed(desk.handle(_answer("T-DESK-1", 13, fen=0, amount_fen=8000)))


def void() -> ReceiptData:
    """A 30.00 sale at the fishing station voided by the supervisor."""
    station = _logged_in("T-FISH-1", station_name="钓鱼 Fishing pond")
    station.handle(CardTapped("4f2a91c0", VISITOR))
    _press(station, *"30E")
    station.submitted(7)
    station.handle(_answer("T-FISH-1", 7, fen=4000, amount_fen=3000, txn=1040))
    station.handle(PrintFinished())
    _press(station, "C", "F3", "E")
    station.handle(CardTapped("0a0b0c0d", CardRecord(SUPERVISOR[0], 1, "staff", "P1")))
    _press(station, *"3456E")
    station.submitted(8)
    return _printed(station.handle(_answer("T-FISH-1", 8, fen=7000, amount_fen=3000, txn=1042)))


def rental_desk():
    """A rental desk's state machine with Sun logged in, its stock the sample rods and bikes
    (host_sim.station's), and the voucher key it checks with; (machine, signing key). Also the
    bench's desk (bench/rentals.py)."""
    from nacl.signing import SigningKey

    from protocol.messages import RentalItem, RentalStock
    from terminal.rental import RentalTerminal

    from .station import RENTAL_LABELS, rental_types

    key = SigningKey(VOUCHER_KEY_SEED)
    staff = {RENTAL_STAFF[0]: RENTAL_STAFF[1:]}
    stock = RentalStock(item_types=rental_types(), items=tuple(
        RentalItem(label=label, item_type=item_type, state="available")
        for item_type, labels in RENTAL_LABELS.items() for label in labels))
    desk = RentalTerminal(StationConfig(park_name=PARK, station_name="租赁 Rentals", mode="rental", staff=staff),
                          "T-RENT-1", stock=stock, voucher_key=key.verify_key)
    desk.start(0)
    desk.handle(CardTapped("01020305", CardRecord(RENTAL_STAFF[0], 1, "staff", "P1")))
    _press(desk, *"4567E")
    desk.handle(_answer("T-RENT-1", 1, fen=0))
    return desk, key


def _type_key(desk, item_type: str) -> str:
    return str([known.item_type for known in desk.stock.item_types].index(item_type) + 1)


def voucher() -> ReceiptData:
    """A rod's 50.00 deposit paid in cash at the rental desk (F2): the voucher, its QR the desk scans."""
    from protocol.messages import DepositReply
    from protocol.voucher import Voucher, make_voucher

    desk, key = rental_desk()
    _press(desk, "F2", _type_key(desk, "rod"), "1")  # the rod, paid in cash
    desk.submitted(21)
    expires_ms = LEDGER_TIME_MS // 1000 * 1000 + 3 * 24 * HOUR_MS
    token = make_voucher(Voucher("P1", "D1042", "rod", expires_ms, "P1-voucher-1"), key)
    return _printed(desk.handle(Answer(DepositReply(
        park="P1", terminal="T-RENT-1", seq=21, request_sha256="a" * 64, order="D1042", item_type="rod",
        deposit_fen=5000, voucher=token, expires_ms=expires_ms, ledger_time_ms=LEDGER_TIME_MS))))


def rental_return() -> ReceiptData:
    """The rod back 5 hours after it went out (4 h and 15 min of grace: one started hour late), its
    reel broken: 10.00 rental, 5.00 late fee, 20.00 damage kept, 15.00 back in cash."""
    from protocol.messages import RentalReturnReply
    from terminal.rental import Scanned

    desk, _ = rental_desk()
    back_ms = LEDGER_TIME_MS + 5 * HOUR_MS
    desk.handle(Scanned("ROD-0042", back_ms))
    _press(desk, "2", "1", "E")  # damaged: the reel (the rod type's first damage), ENTER sends
    desk.submitted(22)
    return _printed(desk.handle(Answer(RentalReturnReply(
        park="P1", terminal="T-RENT-1", seq=22, request_sha256="a" * 64, order="D1042", item_type="rod",
        item_label="ROD-0042", out_ms=LEDGER_TIME_MS, returned_ms=back_ms, deposit_fen=5000, rental_fen=1000,
        late_fen=500, damage_fen=2000, refunded_fen=1500, claim_fen=0, route="cash", ledger_time_ms=back_ms))))


def shift_slip() -> ReceiptData:
    """The desk's shift handed over (F4) after 6 hours: six cards issued, five top-ups (one reversed),
    four cards returned; the cashier counts 575.00 in the drawer, blind, against the 580.00 the books
    expect (cash in 480.00 + 500.00, out 300.00 + 100.00): 5.00 short, on the slip the till prints."""
    from protocol.messages import ShiftSlip, SlipLine

    desk = _logged_in("T-DESK-1", station_name="总台 Front desk", mode="desk")
    _press(desk, "F4", "E", *"575E", "E")
    lines = lambda *rows: tuple(SlipLine(name=name, count=count, fen=fen) for name, count, fen in rows)  # noqa: E731
    answer = ShiftSlip(park="P1", terminal="T-DESK-1", seq=58, request_sha256="a" * 64, staff=CASHIER[1],
                       opened_ms=LEDGER_TIME_MS - 6 * HOUR_MS, business_day="2026-05-01",
                       kinds=lines(("card_issue", 6, 72000), ("top_up", 5, 100000), ("card_return", 4, 30000)),
                       tenders=lines(("cash", 12, 58000), ("wechat", 4, 74000)), voids_count=1, voids_fen=10000,
                       refunds_count=4, refunds_fen=30000, cash_expected_fen=58000, cash_counted_fen=57500,
                       cash_over_short_fen=-500, ledger_time_ms=LEDGER_TIME_MS)
    return _printed(desk.handle(Answer(answer)))


RECEIPTS = {"sale": sale, "offline": offline_sale, "void": void, "top-up": top_up, "return": card_return,
            "replacement": replacement, "voucher": voucher, "rental-return": rental_return, "shift-slip": shift_slip}


def write_pictures(directory: Path) -> list[Path]:
    """The customer copy of each receipt as a 58 mm PNG in ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in RECEIPTS.items():
        path = directory / PICTURES[name]
        render_receipt_image(make(), WIDTH_58MM_DOTS).save(path)
        paths.append(path)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=Path("docs/img"))
    for path in write_pictures(parser.parse_args(argv).directory):
        print(path)


if __name__ == "__main__":
    main()
