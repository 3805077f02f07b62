"""交班单: the shift slip a till prints when its staff member hands the shift over, built from the
ledger's ``shift_slip`` answer (the books' figures, never the till's own counts), and the blind
cash count's typing rules. Pure: the machine (terminal.core) and the app call these."""

from datetime import datetime
from zoneinfo import ZoneInfo

from protocol.kinds import KINDS
from protocol.limits import MAX_AMOUNT_FEN
from protocol.messages import ShiftHandover, ShiftSlip
from protocol.money import FEN_PER_YUAN, format_fen

from .config import DESK, RENTAL
from .events import CHANNEL_TEXT, masked
from .receipt import ShiftSlipReceipt

SLIP_TITLE = KINDS[ShiftHandover.TYPE].receipt_title
# Tills whose staff take cash into a drawer: the desk (cards issued, top-ups, refunds) and the rental
# desk (deposits paid in cash). A station only takes cards, so it hands over without a count.
CASH_MODES = frozenset({DESK, RENTAL})
# What each kind of transaction is called on the slip (short: a 58 mm slip has 32 columns).
KIND_TEXT = {
    "charge": "消费 Sales", "offline_charge": "离线消费 Offline", "top_up": "充值 Top-ups",
    "card_issue": "开卡 Cards issued", "member_open": "会员开卡 Members", "card_return": "退卡 Returns",
    "card_replace": "补卡 Replaced", "member_transfer": "转账 Transfers", "loss_report": "挂失 Lost",
    "card_unblock": "解挂 Unblocked", "pin_unlock": "密码解锁 PIN unlock", "deposit_card": "押金卡付 Dep. card",
    "deposit_desk": "押金现付 Dep. desk", "rental_out": "出借 Hand-outs", "offline_rental_out": "离线出借 Offline out",
    "rental_return": "归还 Returns",
}
TENDER_TEXT = CHANNEL_TEXT | {"card": "储值卡 Card", "bonus": "赠送 Bonus", "online_wechat": "微信线上 WeChat web",
                              "online_alipay": "支付宝线上 Alipay web"}
# The largest count a drawer can hold that a request may carry (protocol amounts).
MAX_COUNT_CHARS = len(format_fen(MAX_AMOUNT_FEN))


def takes_cash(mode: str) -> bool:
    return mode in CASH_MODES


def parse_count(typed: str) -> int | None:
    """The cash counted, typed in yuan ("0", "1234", "1234.5"): fen, 0 included (an empty drawer is
    a count); None when it is not an amount."""
    whole, _, fraction = typed.partition(".")
    if not typed or not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 2:
        return None
    fen = int(whole) * FEN_PER_YUAN + int(fraction.ljust(2, "0") or 0)
    return fen if fen <= MAX_AMOUNT_FEN else None


def count_problem(typed: str) -> str:
    """Why ``typed`` is no count (``parse_count`` refused it), short enough for the panel."""
    if not typed:
        return "请输入金额 Type the cash (0 if none)"
    if len(typed.partition(".")[2]) > 2:
        return "两位小数 2 decimals"
    return f"上限 Max {format_fen(MAX_AMOUNT_FEN)}"


def slip_receipt(config, terminal_id: str, operator: str, staff_card_no: str, slip: ShiftSlip, *,
                 is_reprint: bool = False) -> ShiftSlipReceipt:
    """The slip to print for the ledger's answer ``slip``."""
    zone = ZoneInfo(config.time_zone)

    def when(time_ms: int) -> str:
        return datetime.fromtimestamp(time_ms / 1000, zone).strftime("%Y-%m-%d %H:%M")

    return ShiftSlipReceipt(
        park_name=config.park_name, station_name=config.station_name, terminal_id=terminal_id, seq=slip.seq,
        operator=operator, time_text=when(slip.ledger_time_ms), masked_card_number=masked(staff_card_no),
        amount_fen=0, is_online=True, is_reprint=is_reprint, title=f"{SLIP_TITLE} Shift slip",
        business_day=slip.business_day, opened_text=when(slip.opened_ms),
        kind_lines=tuple((KIND_TEXT.get(line.name, line.name), line.count, line.fen) for line in slip.kinds),
        tender_lines=tuple((TENDER_TEXT.get(line.name, line.name), line.count, line.fen) for line in slip.tenders),
        voids=(slip.voids_count, slip.voids_fen), refunds=(slip.refunds_count, slip.refunds_fen),
        # A till without a drawer that took no cash prints no cash block at all.
        cash_expected_fen=None if slip.cash_counted_fen is None and not slip.cash_expected_fen else slip.cash_expected_fen,
        cash_counted_fen=slip.cash_counted_fen, cash_over_short_fen=slip.cash_over_short_fen,
    )
