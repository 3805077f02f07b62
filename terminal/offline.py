"""Selling without the ledger: the signed policy, the blocklist, and the running totals of the
current offline window, decided without I/O.

An offline window starts with the first sale the terminal approves on its own and ends when the
ledger is back (the queue has drained). Within a window the policy caps each sale, each card's total
on this terminal, the terminal's total and count, the time since the last contact with the ledger,
and the reboots. The blocklist must be younger than the policy allows: a terminal that cannot know
which cards are blocked stops selling offline.
"""

from dataclasses import dataclass, field

from protocol.messages import Blocklist, BlocklistDelta, OfflinePolicy


class OfflineRefusal(str):
    """A reason code for a refused offline sale; the screens show its text."""


NO_POLICY = OfflineRefusal("OFFLINE_NO_POLICY")
MODE_NOT_ALLOWED = OfflineRefusal("OFFLINE_MODE_NOT_ALLOWED")
OVER_SALE_CAP = OfflineRefusal("OFFLINE_OVER_SALE_CAP")
OVER_CARD_CAP = OfflineRefusal("OFFLINE_OVER_CARD_CAP")
OVER_TERMINAL_CAP = OfflineRefusal("OFFLINE_OVER_TERMINAL_CAP")
TOO_MANY_SALES = OfflineRefusal("OFFLINE_TOO_MANY_SALES")
OFFLINE_TOO_LONG = OfflineRefusal("OFFLINE_TOO_LONG")
TOO_MANY_REBOOTS = OfflineRefusal("OFFLINE_TOO_MANY_REBOOTS")
BLOCKLIST_EXPIRED = OfflineRefusal("OFFLINE_BLOCKLIST_EXPIRED")
CARD_BLOCKED = OfflineRefusal("CARD_BLOCKED")
BALANCE_TOO_LOW = OfflineRefusal("INSUFFICIENT_FUNDS")
PIN_NEEDED = OfflineRefusal("OFFLINE_PIN_NEEDED")

TEXT = {
    NO_POLICY: "离线不可用 Offline selling not set up — wait for the network",
    MODE_NOT_ALLOWED: "离线不可用 Not allowed offline here",
    OVER_SALE_CAP: "超出离线单笔限额 Over the offline limit per sale",
    OVER_CARD_CAP: "超出离线卡限额 Over this card's offline limit",
    OVER_TERMINAL_CAP: "超出离线总额 Terminal's offline total reached",
    TOO_MANY_SALES: "离线笔数已满 Too many offline sales",
    OFFLINE_TOO_LONG: "离线时间过长 Offline too long — reconnect first",
    TOO_MANY_REBOOTS: "离线重启过多 Too many restarts offline",
    BLOCKLIST_EXPIRED: "黑名单过期 Blocklist too old — reconnect first",
    CARD_BLOCKED: "卡已挂失/冻结 Card blocked — keep the card, call the front desk",
    BALANCE_TOO_LOW: "余额不足 Insufficient balance",
    PIN_NEEDED: "离线不收密码消费 No PIN sales offline",
}


@dataclass
class BlocklistCopy:
    """The terminal's copy of the park blocklist (and the nearly empty cards)."""

    version: int = -1
    issued_ms: int = 0
    blocked: set = field(default_factory=set)     # {(card_no, issuance)}
    low: dict = field(default_factory=dict)       # {(card_no, issuance): balance fen}

    def accept_snapshot(self, snapshot: Blocklist) -> bool:
        """Take a snapshot if it is newer than ours; refuse a replayed older one."""
        if (snapshot.version, snapshot.issued_ms) <= (self.version, self.issued_ms):
            return False
        self.version, self.issued_ms = snapshot.version, snapshot.issued_ms
        self.blocked = {(entry.no, entry.issuance) for entry in snapshot.blocked}
        self.low = {(entry.no, entry.issuance): entry.fen for entry in snapshot.low}
        return True

    def apply_delta(self, delta: BlocklistDelta) -> bool | None:
        """True: applied; False: old news; None: a gap (ask the ledger for the snapshot)."""
        if delta.version <= self.version:
            return False
        if delta.from_version != self.version:
            return None
        self.version, self.issued_ms = delta.version, max(self.issued_ms, delta.issued_ms)
        self.blocked |= {(entry.no, entry.issuance) for entry in delta.blocked}
        self.blocked -= {(entry.no, entry.issuance) for entry in delta.unblocked}
        for entry in delta.low:
            self.low[(entry.no, entry.issuance)] = entry.fen
        return True


@dataclass
class OfflineWindow:
    """Running totals since the terminal began selling offline."""

    started_ms: int | None = None
    count: int = 0
    total_fen: int = 0
    by_card: dict = field(default_factory=dict)   # {(card_no, issuance): fen}
    reboots: int = 0

    def add(self, card_key, amount_fen: int, now_ms: int) -> None:
        if self.started_ms is None:
            self.started_ms = now_ms
        self.count += 1
        self.total_fen += amount_fen
        self.by_card[card_key] = self.by_card.get(card_key, 0) + amount_fen


def decide(policy: OfflinePolicy | None, blocklist: BlocklistCopy, window: OfflineWindow, *, card_key, amount_fen: int,
           mode: str, needs_pin: bool, now_ms: int, last_contact_ms: int | None,
           known_balance_fen: int | None) -> OfflineRefusal | None:
    """None if the terminal may approve this sale on its own, else why not."""
    if policy is None:
        return NO_POLICY
    if needs_pin:
        return PIN_NEEDED
    if mode not in policy.allowed_modes.split(","):
        return MODE_NOT_ALLOWED
    if blocklist.version < 0 or now_ms - blocklist.issued_ms > policy.blocklist_max_age_ms:
        return BLOCKLIST_EXPIRED
    if last_contact_ms is None or now_ms - last_contact_ms > policy.max_offline_ms:
        return OFFLINE_TOO_LONG
    if window.reboots > policy.max_reboots:
        return TOO_MANY_REBOOTS
    if card_key in blocklist.blocked:
        return CARD_BLOCKED
    balance = known_balance_fen if known_balance_fen is not None else blocklist.low.get(card_key)
    if balance is not None and balance - window.by_card.get(card_key, 0) < amount_fen:
        return BALANCE_TOO_LOW
    if amount_fen > policy.max_transaction_fen:
        return OVER_SALE_CAP
    if window.by_card.get(card_key, 0) + amount_fen > policy.max_card_fen:
        return OVER_CARD_CAP
    if window.total_fen + amount_fen > policy.max_terminal_fen:
        return OVER_TERMINAL_CAP
    if window.count + 1 > policy.max_count:
        return TOO_MANY_SALES
    return None
