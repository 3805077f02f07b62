"""Reason codes: the stable words a Result carries and a screen, receipt or log shows.

``refused`` codes come from checks that depend only on the bytes received (envelope, signature,
body schema) or on the terminal's registration; they are recomputed on every retry and never
stored against a seq. ``declined`` codes depend on the ledger's state (balance, card state) and are
final for that (terminal, seq): a retry gets the same answer back.
"""

from enum import Enum


class Outcome(str, Enum):
    APPROVED = "approved"
    DECLINED = "declined"
    REFUSED = "refused"


class Reason(str, Enum):
    OK = "OK"
    SAME_SALE = "SAME_SALE"  # approved: an offline sale whose online attempt the ledger had approved

    # --- refused: the envelope
    TRUNCATED = "TRUNCATED"
    OVERSIZE = "OVERSIZE"
    BAD_MAGIC = "BAD_MAGIC"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNSUPPORTED_ALGORITHM = "UNSUPPORTED_ALGORITHM"
    BAD_KEY_ID = "BAD_KEY_ID"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    KEY_NOT_FOR_TOPIC = "KEY_NOT_FOR_TOPIC"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    BAD_TOPIC = "BAD_TOPIC"
    # --- refused: the body
    MALFORMED_BODY = "MALFORMED_BODY"
    DUPLICATE_FIELD = "DUPLICATE_FIELD"
    FLOAT_NOT_ALLOWED = "FLOAT_NOT_ALLOWED"
    NAN_NOT_ALLOWED = "NAN_NOT_ALLOWED"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    UNKNOWN_FIELD = "UNKNOWN_FIELD"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
    AMOUNT_OUT_OF_RANGE = "AMOUNT_OUT_OF_RANGE"
    LINES_DO_NOT_ADD_UP = "LINES_DO_NOT_ADD_UP"
    TOPIC_MISMATCH = "TOPIC_MISMATCH"
    # --- refused: the body's JSON is outside the parser's limits (protocol.limits, protocol.codec)
    TOO_DEEP = "TOO_DEEP"                    # nested deeper than MAX_JSON_DEPTH
    NUMBER_TOO_LONG = "NUMBER_TOO_LONG"      # an integer literal over MAX_NUMBER_DIGITS digits
    STRING_TOO_LONG = "STRING_TOO_LONG"      # a string over MAX_STRING_CHARS characters
    TOO_MANY_FIELDS = "TOO_MANY_FIELDS"      # an object with over MAX_FIELDS_PER_OBJECT fields
    BAD_FIELD_NAME = "BAD_FIELD_NAME"        # a field name that is not [a-z0-9_]{1,MAX_FIELD_NAME_CHARS}
    # --- refused: the sender
    UNKNOWN_TERMINAL = "UNKNOWN_TERMINAL"
    TERMINAL_REVOKED = "TERMINAL_REVOKED"
    KIND_NOT_ALLOWED = "KIND_NOT_ALLOWED"
    SEQ_REUSED = "SEQ_REUSED"
    SEQ_TOO_FAR = "SEQ_TOO_FAR"  # more than MAX_SEQ_JUMP above the highest seq the ledger holds
    PIN_BLOCK_INVALID = "PIN_BLOCK_INVALID"
    # --- refused, NOT final: the ledger holds or failed on this message; the terminal keeps it
    # pending and re-sends it, and a later answer for the same (terminal, seq) may still approve it
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SET_ASIDE = "SET_ASIDE"  # kept by the ledger for an operator (``fieldpos ledger set-aside``)

    # --- declined: the ledger's state says no (final for this seq)
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    UNKNOWN_CARD = "UNKNOWN_CARD"
    CARD_BLOCKED = "CARD_BLOCKED"
    CARD_RETURNED = "CARD_RETURNED"
    OLD_ISSUANCE = "OLD_ISSUANCE"
    CARD_IN_USE = "CARD_IN_USE"
    CARD_UID_MISMATCH = "CARD_UID_MISMATCH"
    ORIGINAL_NOT_FOUND = "ORIGINAL_NOT_FOUND"
    ALREADY_VOIDED = "ALREADY_VOIDED"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    WRONG_PIN = "WRONG_PIN"
    PIN_LOCKED = "PIN_LOCKED"
    UNKNOWN_STAFF = "UNKNOWN_STAFF"
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    SUPERSEDED = "SUPERSEDED"  # an online attempt the terminal replaced with an offline sale
    PIN_REQUIRED = "PIN_REQUIRED"  # a member charge above the no-PIN limit came without a PIN
    OVER_BALANCE_LIMIT = "OVER_BALANCE_LIMIT"
    TOP_UP_OUT_OF_RANGE = "TOP_UP_OUT_OF_RANGE"
    OVER_DAILY_LIMIT = "OVER_DAILY_LIMIT"
    SUPERVISOR_REQUIRED = "SUPERVISOR_REQUIRED"  # the second credential is not a supervisor's
    NOT_SAME_SHIFT = "NOT_SAME_SHIFT"            # a reversal outside the shift of the original
    NO_SHIFT = "NO_SHIFT"                        # the park requires a staff login and none is open
    OPERATOR_NOT_ON_SHIFT = "OPERATOR_NOT_ON_SHIFT"  # the request names another operator than the shift's
    SAME_CARD = "SAME_CARD"  # a member transfer to the card it comes from
    # --- declined: rentals (issue 13)
    DEPOSITS_OPEN = "DEPOSITS_OPEN"              # a card with open rental deposits cannot be returned
    DEPOSIT_MISMATCH = "DEPOSIT_MISMATCH"        # the deposit sent is not the item type's
    UNKNOWN_ITEM_TYPE = "UNKNOWN_ITEM_TYPE"
    VOUCHER_INVALID = "VOUCHER_INVALID"          # malformed, forged, altered or another park's
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    VOUCHER_USED = "VOUCHER_USED"                # redeemed before: the detail says when and where
    DEPOSIT_NOT_HELD = "DEPOSIT_NOT_HELD"        # the voucher's order holds no deposit (closed, forfeited)
    ITEM_UNKNOWN = "ITEM_UNKNOWN"
    ITEM_WRONG_TYPE = "ITEM_WRONG_TYPE"          # the label scanned is not of the voucher's item type
    ITEM_NOT_AVAILABLE = "ITEM_NOT_AVAILABLE"    # out, in repair or retired
    ITEM_NOT_OUT = "ITEM_NOT_OUT"                # a return of an item no one has
    DAMAGE_CODE_UNKNOWN = "DAMAGE_CODE_UNKNOWN"  # a damage code not in the item type's list
    # --- declined: e-cards (issue 17; protocol.ecard.ECardFault has the same words)
    ECARD_INVALID = "ECARD_INVALID"              # not a token, forged or altered, or a kind that takes no e-card
    ECARD_EXPIRED = "ECARD_EXPIRED"              # the credential expired: the member opens the portal again
    ECARD_STALE = "ECARD_STALE"                  # the QR's time window is past its lifetime (a screenshot)
    ECARD_REPLAYED = "ECARD_REPLAYED"            # this window (or a later one) was used already
    ECARD_WRONG_DEVICE = "ECARD_WRONG_DEVICE"    # shown from a phone not registered for the card
    ECARD_QR_REQUIRED = "ECARD_QR_REQUIRED"      # an e-card named without its QR (its device tag is no secret)


# What a cashier reads on the display (Chinese first: the parks' staff read it).
REASON_TEXT = {
    Reason.OK: "成功 Approved",
    Reason.INSUFFICIENT_FUNDS: "余额不足 Insufficient balance",
    Reason.UNKNOWN_CARD: "无效卡 Unknown card — send the visitor to the front desk",
    Reason.CARD_BLOCKED: "卡已挂失/冻结 Card blocked — keep the card, call the front desk",
    Reason.CARD_RETURNED: "卡已退 Card was returned — issue a new card at the front desk",
    Reason.OLD_ISSUANCE: "旧卡记录 Old card record — re-issue at the front desk",
    Reason.CARD_IN_USE: "卡已在用 Card is already issued",
    Reason.CARD_UID_MISMATCH: "卡片异常 Card does not match its record — keep it, call a supervisor",
    Reason.ORIGINAL_NOT_FOUND: "原交易不存在 Original sale not found",
    Reason.ALREADY_VOIDED: "已撤销 Already voided",
    Reason.AMOUNT_MISMATCH: "金额不符 Amount does not match the original",
    Reason.TERMINAL_REVOKED: "终端已停用 Terminal revoked — call a technician",
    Reason.UNKNOWN_TERMINAL: "终端未注册 Terminal not registered — call a technician",
    Reason.KIND_NOT_ALLOWED: "本终端不可办理 Not allowed at this terminal",
    Reason.WRONG_PIN: "密码错误 Wrong PIN — try again",
    Reason.PIN_LOCKED: "密码已锁定 PIN locked — a supervisor must unlock it",
    Reason.UNKNOWN_STAFF: "员工卡无效 Staff card not registered",
    Reason.ROLE_NOT_ALLOWED: "无权限 Your role may not do this here",
    Reason.PIN_BLOCK_INVALID: "密码数据无效 PIN could not be checked — enter it again",
    Reason.SAME_SALE: "成功 Approved (already booked)",
    Reason.SUPERSEDED: "已转离线交易 Replaced by the offline sale",
    Reason.PIN_REQUIRED: "请输入密码 This amount needs the member's PIN",
    Reason.OVER_BALANCE_LIMIT: "超出卡余额上限 Over this card type's balance limit",
    Reason.TOP_UP_OUT_OF_RANGE: "充值金额不在范围 Top-up below the minimum or above the maximum",
    Reason.OVER_DAILY_LIMIT: "超出当日限额 Over today's spending limit",
    Reason.SUPERVISOR_REQUIRED: "需主管授权 A supervisor's card and PIN are needed",
    Reason.NOT_SAME_SHIFT: "只能冲正本班交易 Only this shift's top-ups can be reversed",
    Reason.NO_SHIFT: "请先登录 Log in with your staff card first",
    Reason.OPERATOR_NOT_ON_SHIFT: "操作员不符 Not the staff member logged in here",
    Reason.SAME_CARD: "不能转给同一张卡 Transfer to the same card — tap the other member's card",
    Reason.DEPOSITS_OPEN: "有未结押金 Open rental deposits — return the rented items first",
    Reason.DEPOSIT_MISMATCH: "押金不符 Deposit differs from the item type's — reload the config",
    Reason.UNKNOWN_ITEM_TYPE: "无此租赁类型 Unknown rental item type",
    Reason.VOUCHER_INVALID: "凭证无效 Voucher not valid — forged, altered or unreadable",
    Reason.VOUCHER_EXPIRED: "凭证已过期 Voucher expired",
    Reason.VOUCHER_USED: "凭证已使用 Voucher already redeemed",
    Reason.DEPOSIT_NOT_HELD: "押金已结 The voucher's deposit is closed",
    Reason.ITEM_UNKNOWN: "无此物品 Unknown item label",
    Reason.ITEM_WRONG_TYPE: "物品类型不符 This item is not the voucher's type",
    Reason.ITEM_NOT_AVAILABLE: "物品不可租 Item is out, in repair or retired",
    Reason.ITEM_NOT_OUT: "物品未租出 This item is not rented out",
    Reason.DAMAGE_CODE_UNKNOWN: "无此损坏项 Damage not in the item type's list",
    Reason.ECARD_INVALID: "电子卡无效 E-card QR not valid — ask the member to reopen it",
    Reason.ECARD_EXPIRED: "电子卡已过期 E-card expired — the member opens the portal again",
    Reason.ECARD_STALE: "二维码已过期 QR too old — ask for the live code, not a screenshot",
    Reason.ECARD_REPLAYED: "二维码已使用 QR used already — wait for the next code",
    Reason.ECARD_WRONG_DEVICE: "非绑定手机 Not the phone this e-card is bound to",
    Reason.ECARD_QR_REQUIRED: "请扫电子卡码 Scan the member's e-card QR",
}


def reason_text(reason: "Reason | str") -> str:
    """The cashier-facing text for a reason code (falls back to the code itself)."""
    try:
        return REASON_TEXT.get(Reason(reason), f"交易失败 Refused ({Reason(reason).value})")
    except ValueError:
        return f"交易失败 Refused ({reason})"


# Answers that close nothing: the request stays pending at the terminal (never shown as a decline,
# never a reason to charge again) and a later answer to the same request is the one that counts.
NOT_FINAL_REASONS = frozenset({Reason.INTERNAL_ERROR, Reason.SET_ASIDE})


DECLINE_REASONS = frozenset(
    {
        Reason.INSUFFICIENT_FUNDS,
        Reason.UNKNOWN_CARD,
        Reason.CARD_BLOCKED,
        Reason.CARD_RETURNED,
        Reason.OLD_ISSUANCE,
        Reason.CARD_IN_USE,
        Reason.CARD_UID_MISMATCH,
        Reason.ORIGINAL_NOT_FOUND,
        Reason.ALREADY_VOIDED,
        Reason.AMOUNT_MISMATCH,
        Reason.WRONG_PIN,
        Reason.PIN_LOCKED,
        Reason.UNKNOWN_STAFF,
        Reason.ROLE_NOT_ALLOWED,
        Reason.SUPERSEDED,
        Reason.PIN_REQUIRED,
        Reason.OVER_BALANCE_LIMIT,
        Reason.TOP_UP_OUT_OF_RANGE,
        Reason.OVER_DAILY_LIMIT,
        Reason.SUPERVISOR_REQUIRED,
        Reason.NOT_SAME_SHIFT,
        Reason.NO_SHIFT,
        Reason.OPERATOR_NOT_ON_SHIFT,
        Reason.SAME_CARD,
        Reason.DEPOSITS_OPEN,
        Reason.DEPOSIT_MISMATCH,
        Reason.UNKNOWN_ITEM_TYPE,
        Reason.VOUCHER_INVALID,
        Reason.VOUCHER_EXPIRED,
        Reason.VOUCHER_USED,
        Reason.DEPOSIT_NOT_HELD,
        Reason.ITEM_UNKNOWN,
        Reason.ITEM_WRONG_TYPE,
        Reason.ITEM_NOT_AVAILABLE,
        Reason.ITEM_NOT_OUT,
        Reason.DAMAGE_CODE_UNKNOWN,
        Reason.ECARD_INVALID,
        Reason.ECARD_EXPIRED,
        Reason.ECARD_STALE,
        Reason.ECARD_REPLAYED,
        Reason.ECARD_WRONG_DEVICE,
        Reason.ECARD_QR_REQUIRED,
    }
)
