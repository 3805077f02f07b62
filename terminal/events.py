"""What the terminal's state machine speaks: its states, the events it takes, the effects it
returns, and the sale in progress. No I/O: ``terminal.core`` (stations) and ``terminal.desk`` (the
front desk's flows) share it, and the app turns effects into hardware and network work."""

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from protocol.card_record import CardRecord
from protocol.messages import CardRef, Channel
from protocol.money import format_fen, parse_amount  # noqa: F401  (the core and the desk import them from here)

from .hal.keypad import Key
from .receipt import ReceiptData

# How long a half-finished entry waits before the terminal gives up on it.
ENTRY_TIMEOUT_MS = 60_000
PIN_TIMEOUT_MS = 30_000
MESSAGE_TIMEOUT_MS = 4_000
DONE_TIMEOUT_MS = 6_000
# How long UNCERTAIN holds the cashier before offering a way out: the request stays queued and is
# re-sent, and its receipt prints by itself when the ledger answers (the owed-receipt path).
UNCERTAIN_LEAVE_AFTER_MS = 30_000
MAX_PIN_DIGITS = 6
MAX_AMOUNT_CHARS = 9  # "100000.00"
MAX_COUNT = 99

# The keys the machine gives a meaning to (terminal.hal.keypad names them all).
ENTER, CANCEL, BACK, DOT = Key.ENTER, Key.CANCEL, Key.BACK, Key.DOT
REPRINT_KEY, CLOSE_SHIFT_KEY = Key.F1, Key.F4
LOST_CARD_KEY = Key.F2  # the front desk: a member reports a card lost (found by phone number)
UNDO_KEY = Key.F3       # a station voids its last sale; the front desk reverses its last top-up
# How money moved at the desk, as a receipt and a screen name it (protocol.messages.Channel values).
CHANNEL_TEXT = {Channel.CASH.value: "现金 Cash", Channel.WECHAT.value: "微信 WeChat", Channel.ALIPAY.value: "支付宝 Alipay",
                Channel.BANK.value: "银行卡 Bank card"}
MAX_NAME_CHARS = 24
MAX_PHONE_DIGITS = 14
DESK_CHANNELS = {Key.DIGIT_1: Channel.CASH, Key.DIGIT_2: Channel.WECHAT, Key.DIGIT_3: Channel.ALIPAY,
                 Key.DIGIT_4: Channel.BANK}


class State(str, Enum):
    LOCKED = "locked"
    LOGIN_PIN = "login_pin"
    OPENING_SHIFT = "opening_shift"
    IDLE = "idle"
    AMOUNT = "amount"
    COUNT = "count"
    MENU = "menu"
    CHARGE_PIN = "charge_pin"
    AUTHORIZING = "authorizing"
    UNCERTAIN = "uncertain"
    PRINTING = "printing"
    PRINTER_PROBLEM = "printer_problem"
    DONE = "done"
    MESSAGE = "message"
    CONFIRM_CLOSE = "confirm_close"
    CASH_COUNT = "cash_count"        # 交班: the cashier types the cash in the drawer (a blind count)
    CASH_CONFIRM = "cash_confirm"    # the count typed, shown once more before it is final
    CLOSING_SHIFT = "closing_shift"
    DESK_MENU = "desk_menu"
    DESK_AMOUNT = "desk_amount"
    DESK_CHANNEL = "desk_channel"
    WRITING_CARD = "writing_card"
    DESK_NEW_CARD = "desk_new_card"
    DESK_NAME = "desk_name"
    DESK_PHONE = "desk_phone"
    DESK_NEW_PIN = "desk_new_pin"
    DESK_PIN_AGAIN = "desk_pin_again"
    DESK_PICK = "desk_pick"
    DESK_CONFIRM = "desk_confirm"
    CONFIRM_UNDO = "confirm_undo"
    SUPERVISOR_CARD = "supervisor_card"
    SUPERVISOR_PIN = "supervisor_pin"
    DESK_TRANSFER_TO = "desk_transfer_to"
    DESK_MEMBER_PIN = "desk_member_pin"
    DESK_DAMAGED = "desk_damaged"
    CONFIRM_NO_RECEIPT = "confirm_no_receipt"  # the printer cannot print: sell anyway?


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class Tick:
    now_ms: int                       # monotonic, for timeouts
    minute_of_day: int | None = None  # the park's local time of day, when the terminal knows it


@dataclass(frozen=True)
class CardTapped:
    """A card was read. ``record`` is None when it has no valid record; ``error`` says why."""

    uid_hex: str
    record: CardRecord | None
    error: str = ""
    is_blocked: bool = False  # on the terminal's copy of the park blocklist
    is_blank: bool = False    # a card with no record yet that opens with the transport key (front desk)
    # A blank card this desk issued but never wrote (a crash, or the write abandoned): the record
    # the ledger signed for it, in hex, from the desk's outbox.
    unwritten_record: str = ""


@dataclass(frozen=True)
class KeyPressed:
    key: Key

    def __post_init__(self):
        # A caller may name the key by its value ("1", "ENTER"); the machine only ever sees a Key.
        object.__setattr__(self, "key", Key(self.key))


@dataclass(frozen=True)
class Answer:
    """The ledger's verified Result for the request in flight."""

    result: object  # protocol.messages.Result


@dataclass(frozen=True)
class NoAnswer:
    """No Result within the timeout; the request stays pending and keeps being re-sent.
    ``ledger_reason``: the ledger did reply, but not finally (protocol.reasons.NOT_FINAL_REASONS:
    it holds the request) — still no answer, and never a decline."""

    ledger_reason: str = ""


@dataclass(frozen=True)
class ParkedAnswered:
    """A sale the cashier left pending (UNCERTAIN, after its time-out) got its final answer and it
    is not an approval: the till says so once (an approval needs no word: its receipt prints)."""

    seq: int
    reason: str


@dataclass(frozen=True)
class StorageFailed:
    """The terminal's own disk refused a write (full, or failing). ``is_sale_made``: the ledger
    had already approved it (only the record of the receipt was lost), so nothing is to be undone."""

    code: str
    is_sale_made: bool
    detail: str = ""


@dataclass(frozen=True)
class OfflineApproved:
    """The app queued the sale as an offline sale under ``seq`` (the policy allowed it)."""

    seq: int
    time_ms: int
    is_time_uncertain: bool


@dataclass(frozen=True)
class OfflineRefused:
    code: str
    text: str


@dataclass(frozen=True)
class CardWritten:
    pass


@dataclass(frozen=True)
class CardWriteFailed:
    message: str


@dataclass(frozen=True)
class PrintFinished:
    pass


@dataclass(frozen=True)
class PrintFailed:
    code: str
    message: str
    # The printer refused before printing a line (paper out before the sale): the next print is
    # the first, not a reprint.
    is_nothing_printed: bool = False


# ---------------------------------------------------------------- effects
@dataclass(frozen=True)
class Show:
    title: str
    lines: tuple = ()
    footer: str = ""
    tone: str = "normal"  # normal | ok | error | warning
    big: str = ""


class TappedCard(NamedTuple):
    """A card as the terminal holds it: the record its issuer signed and the UID the reader saw. A
    request names it by ``ref()``; a tuple still, so a caller may unpack (record, uid_hex)."""

    record: CardRecord
    uid_hex: str

    def ref(self) -> CardRef:
        return CardRef(no=self.record.card_no, issuance=self.record.issuance, uid=self.uid_hex)


@dataclass(frozen=True)
class Submit:
    """Send a request: the app adds park, terminal, seq, time and config version. ``fields["card"]``
    is the :class:`TappedCard` the request is about."""

    message_type: type
    fields: dict
    pin: str | None = None
    supervisor_pin: str | None = None


@dataclass(frozen=True)
class AskBalance:
    """Ask the ledger for the tapped card's balances (a card_balance request, its own seq) without
    waiting: the cashier goes on, and the answer comes back as :class:`BalanceAnswered`."""

    card: "TappedCard"
    operator: str


@dataclass(frozen=True)
class BalanceAnswered:
    """The ledger's Result to an AskBalance about ``card_no``; None: offline, or no answer in time."""

    card_no: str
    result: object = None


@dataclass(frozen=True)
class TryOffline:
    """Ask the app whether the offline policy allows this sale, and queue it if so.
    ``supersedes_seq``: the online attempt that got no answer (None: no attempt was made)."""

    card: CardRecord
    uid_hex: str
    lines: tuple  # of protocol LineItem
    amount_fen: int
    needs_pin: bool
    supersedes_seq: int | None


@dataclass(frozen=True)
class WriteCard:
    """Write the ledger-signed record onto the card on the reader (and lock its sectors with the
    card's own key when it was blank); every block is read back."""

    uid_hex: str
    record: bytes
    is_blank: bool


@dataclass(frozen=True)
class Print:
    receipt: ReceiptData


@dataclass(frozen=True)
class RememberReceipt:
    """Record durably that this seq's receipt is out (so a restart does not print it again)."""

    seq: int


# ---------------------------------------------------------------- helpers
def masked(card_no: str) -> str:
    return f"**** {card_no[-4:]}"


@dataclass
class Sale:
    card: CardRecord
    uid_hex: str
    lines: tuple = ()           # of protocol LineItem, from the keypad on
    typed: str = ""             # what the cashier has typed in the current entry state
    seq: int | None = None
    result: object = None
    is_reprint: bool = False
    # The message type of the request the sale becomes (protocol.messages: Charge.TYPE, Void.TYPE;
    # at the front desk CardIssue.TYPE, TopUp.TYPE, CardReturn.TYPE, MemberOpen.TYPE, ...).
    operation: str = "charge"
    is_reissue: bool = False       # a card_issue of a returned temporary card's next issuance
    only_writes: bool = False      # a card issued and paid for whose record is still to be written
    is_blank: bool = False
    is_card_blocked: bool = False  # on the blocklist when tapped at the desk
    record_hex: str = ""           # the ledger-signed record to write on the card, in hex
    member_name: str = ""
    phone: str = ""
    new_pin: str = ""            # a new member's chosen PIN, until it is sealed into the request
    found: tuple = ()            # protocol MemberCard entries from a member lookup
    chosen: object = None        # the MemberCard acted on (reported lost, replaced), or a transfer's target CardRecord
    supervisor_card_no: str = ""
    original: "Sale | None" = None  # what a void or reversal undoes
    notice: str = ""             # one line the current screen adds (a PIN that did not match)
    damage_fee_fen: int = 0      # a temporary card handed back damaged
    channel: str = ""            # how the desk took or paid the money (protocol.messages.Channel value)
    balances: object = None      # the card's protocol Balances, as the ledger answered the tap's query
    is_balance_unknown: bool = False  # offline, or the query got no answer: the screen says so

    @property
    def amount_fen(self) -> int:
        return sum(line.qty * line.unit_fen for line in self.lines)
