"""What a rule reads and what it decides: plain values, no I/O.

A ``View`` is the snapshot of the books a rule needs, read before deciding; a ``Decision`` is the
reason to answer plus every write that goes with it (postings, cards, blocklist, PIN counters,
members, notifications, alerts, shifts). ``Store.apply`` writes a Decision; nothing else does.

Sign convention of postings: an account's balance is the sum of its postings; positive means the
park owes it (a card's balance, a contractor's payable, revenue earned), negative means the park
holds it (money in a channel's drawer or provider account). Every transaction sums to zero per asset.
"""

from dataclasses import dataclass, field, replace
from typing import Protocol

from protocol.reasons import Reason


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class CardView:
    """The latest issuance of a card number, as the store holds it."""

    card_no: str
    issuance: int
    uid: str
    kind: str
    state: str
    card_fee_fen: int
    fen: int
    bonus: int
    points: int


@dataclass(frozen=True, slots=True)
class StationView:
    station_id: str
    contractor_id: str | None
    commission_bp: int


@dataclass(frozen=True, slots=True)
class OriginalSale:
    """A Charge the Void names: its txn, amount, card account and postings."""

    txn_id: int
    kind: str
    amount_fen: int
    card_account: str
    is_voided: bool
    postings: tuple


class Pins(Protocol):
    """The PINs sealed with the request being decided (intake opens them; tests pass a fake).
    Each method raises RemoteProtocolError(PIN_BLOCK_INVALID) when the block does not open."""

    def open(self, field: str = "pin") -> None:
        """Open the block now (a bad block is refused before anything else is looked at)."""

    def matches(self, stored_hash: str, field: str = "pin") -> bool:
        """Whether the PIN in ``field`` is the one ``stored_hash`` was made from."""

    def new_hash(self, field: str = "pin") -> str:
        """A fresh salted hash of the PIN in ``field``, to store for a new member."""


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """What the ledger's books say, read for one request before its rule decides. Each rule's
    ``gather`` fills the fields it needs; the rest keep their empty defaults."""

    terminal: object = None               # store.TerminalView of the sending terminal
    card: CardView | None = None          # the request's card as the common checks see it
    owes_offline_debt: bool = False       # the card is blocked because offline sales overdrew it
    block_reason: str | None = None       # why the request's card is blocked, when it is
    limits: object = None                 # store.CardLimits of the card's kind, when "limits" runs
    spent_today_fen: int = 0              # a sale's card: what it spent today
    member: object = None                 # store.MemberView of the card (card_replace: of the lost card)
    member_to_tell: object = None         # the member told of an approved booking, if any
    park_rules: object = None             # protocol.messages.ParkRules
    bonus_first: bool = False             # member settings: bonus credit pays before real money
    points_per_yuan: int = 0
    no_pin_limit_fen: int = 0             # member settings: the default a new member card gets
    allows_transfer: bool = False
    bonus_rules: tuple = ()               # (min top-up fen, bonus fen) tiers
    campaigns: tuple = ()                 # rules.campaigns.Campaign running on the request's business day
    business_day: str = ""                # the request's business day (campaigns run on business days)
    station: StationView | None = None
    is_superseded: bool = False           # an online charge the terminal replaced by an offline sale
    earlier_outcome: str | None = None    # offline charge: outcome of the online attempt it supersedes
    original: OriginalSale | None = None  # void, reversal: the transaction named
    shift_opened_at: int | None = None    # seq that opened the terminal's shift
    shift_staff: str | None = None        # staff id whose shift is open on the terminal
    shift_opened_ms: int | None = None    # when the terminal's shift opened (the ledger's clock)
    shift_totals: object = None           # shift handover: shift_totals.ShiftTotals of the shift so far
    cash_float_fen: int = 0               # shift handover: the opening float of the terminal's station
    other_card: CardView | None = None    # transfer: the receiving card; replace: the lost card
    other_block_reason: str | None = None
    member_limits: object = None          # transfer: the member card type's limits
    staff: object = None                  # store.StaffView owning the request's card number
    supervisor: object = None             # store.StaffView of the supervisor_card_no named
    member_cards: tuple = ()              # member lookup: MemberCard rows
    takings: tuple = ()                   # station report: (sales, fen, offline sales, voids)
    pins: Pins | None = None
    rental: object = None                 # rules.rentals.RentalView of a rental kind
    open_deposits: int = 0                # card return: rental deposits the card paid that are still open
    ecard: object = None                  # rules.ecards.ECardView when the request names an e-card


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class NewCard:
    """A card issuance to insert once its transaction is booked; its record is signed for the desk."""

    card_no: str
    issuance: int
    uid: str
    kind: str
    card_fee_fen: int


@dataclass(frozen=True, slots=True)
class NewMember:
    card_no: str
    name: str
    phone: str
    pin_hash: str
    no_pin_limit_fen: int


@dataclass(frozen=True, slots=True)
class BlocklistChange:
    change: str  # "block" or "unblock"
    card_no: str
    issuance: int
    reason: str


@dataclass(frozen=True, slots=True)
class Notification:
    """A member told of a booked transaction; the balances are those after it (read at apply)."""

    card_no: str
    phone: str
    kind: str
    amount_fen: int
    account: str


@dataclass(frozen=True, slots=True)
class ShiftChange:
    """Close the shift open on a terminal and, with ``opens_for``, open one for that staff member."""

    terminal_id: str
    seq: int
    opens_for: str | None = None
    closed_how: str = "close"             # shift.closed_how when it closes: "close" or "handover"
    cash_expected_fen: int | None = None  # a handover: the cash the books expect in the drawer
    cash_counted_fen: int | None = None   # a handover: the blind count (None: not counted)


@dataclass(frozen=True, slots=True)
class Answer:
    """A reply of another type than Result (member lookup, station report): its own fields."""

    reply_type: type
    fields: dict


@dataclass(frozen=True)
class Decision:
    reason: Reason
    postings: tuple = ()
    amount_fen: int = 0
    card_state: str | None = None   # new state of the card issuance, if it changes
    allow_negative: bool = False    # an offline sale happened: it may overdraw the card
    new_card: NewCard | None = None
    voids_txn: int | None = None
    alerts: tuple = field(default=())           # Alert, in the order they arose
    blocklist: tuple = ()                       # BlocklistChange, after booking
    member_wrong_pins: tuple | None = None      # (card no, count) to store
    staff_wrong_pins: tuple = ()                # (staff id, count) to store, in order
    new_member: NewMember | None = None
    copy_member: tuple | None = None            # (from card no, to card no)
    notification: Notification | None = None
    supersedes: tuple | None = None             # (terminal, seq superseded, by seq)
    shift: ShiftChange | None = None
    answer: Answer | None = None
    rental: object = None                       # rules.rentals.RentalEffect: a deposit order's new state
    detail: str = ""                            # the Result's detail (a voucher used before: when and where)
    ecard_window: tuple | None = None           # (card no, issuance, window): the e-card QR this booking uses up

    @property
    def is_approved(self) -> bool:
        """Approved and to be booked (SAME_SALE is approved too, but books nothing new)."""
        return self.reason is Reason.OK

    def after(self, earlier: "Decision") -> "Decision":
        """This decision, keeping the PIN counters and alerts an earlier, approving check produced."""
        return replace(
            self,
            alerts=earlier.alerts + self.alerts,
            staff_wrong_pins=earlier.staff_wrong_pins + self.staff_wrong_pins,
            member_wrong_pins=self.member_wrong_pins or earlier.member_wrong_pins,
        )


def decline(reason: Reason, *alerts: str) -> Decision:
    """A decline; ``alerts`` are recorded under the reason's code."""
    return Decision(reason=reason, alerts=tuple(Alert(reason.value, text) for text in alerts))


APPROVED = Decision(reason=Reason.OK)
