"""What the ledger publishes to terminals, signed: each terminal's config (with the offline policy,
the park rules its tills must agree on: the no-PIN limit, the card fee and the damage fee, how its
station sells and when, the staff directory, and a rental station's item types and items) and the park's blocklist, as retained full
snapshots, plus blocklist deltas as ordinary messages.

A topic keeps only one retained message, and a SIGKILLed broker loses retained messages it had not
saved: so snapshots are re-published on every (re)connect and refreshed periodically, and every
change also travels as a delta naming its from→to versions. A terminal accepts a snapshot only if
(version, issued_ms) is newer than what it holds, and treats a blocklist older than the policy's
``blocklist_max_age_ms`` as expired (offline selling stops).
"""

from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.limits import MAX_BROADCAST_BYTES
from protocol.messages import MAX_LIST_ENTRIES, Blocklist, BlocklistDelta, CardEntry, OfflinePolicy, TerminalConfig

from .keys import LedgerKeys
from .store import Store

HOUR_MS = 3_600_000
# A park's defaults, after Square (offline up to 24 h, a per-sale cap) and Chinese card terminals
# (per-meal and per-day limits): 200 yuan a sale, 300 yuan per card per terminal while offline,
# 20,000 yuan and 500 sales per terminal per outage, at most 3 reboots without the ledger.
DEFAULT_OFFLINE_POLICY = dict(
    max_transaction_fen=20_000,
    max_card_fen=30_000,
    max_terminal_fen=2_000_000,
    max_count=500,
    max_offline_ms=24 * HOUR_MS,
    max_reboots=3,
    blocklist_max_age_ms=24 * HOUR_MS,
    allowed_modes="fixed,count,menu,free",
)
# Cards whose balance is below this are listed so an offline terminal can refuse "obviously empty"
# cards: a typical cheapest sale (a bag of bait) costs 5 yuan.
LOW_BALANCE_FEN = 500


def offline_policy(store: Store, park_id: str) -> OfflinePolicy:
    return OfflinePolicy(**(store.offline_policy(park_id) or DEFAULT_OFFLINE_POLICY))


def config_payload(store: Store, keys: LedgerKeys, park_id: str, terminal_id: str, now_ms: int) -> tuple[str, bytes]:
    """(topic, signed retained config) for one terminal; takes the terminal's next config version."""
    topic = topics.config(park_id, terminal_id)
    terminal = store.terminal(terminal_id)
    body = TerminalConfig(park=park_id, terminal=terminal_id, version=store.next_config_version(terminal_id),
                          issued_ms=now_ms, offline=offline_policy(store, park_id), rules=store.park_rules(park_id),
                          station=None if terminal is None else store.station_settings(park_id, terminal.station_id),
                          staff=store.staff_directory(park_id),
                          rental=None if terminal is None else store.rental_stock(park_id, terminal.station_id)).to_bytes()
    key = keys.for_purpose(Purpose.CONFIG)
    return topic, envelope.seal(body, signing_key=key.signing_key, key_id=key.key_id, purpose=Purpose.CONFIG,
                                topic=topic, max_bytes=MAX_BROADCAST_BYTES)


def _entries(rows) -> tuple:
    return tuple(CardEntry(no=row[0], issuance=row[1], fen=row[2] if len(row) > 2 else 0) for row in rows)


def blocklist_payload(store: Store, keys: LedgerKeys, park_id: str, now_ms: int) -> tuple[str, bytes, int]:
    """(topic, signed retained snapshot, version)."""
    version = store.blocklist_version(park_id)
    blocked = store.blocked_cards(park_id)[:MAX_LIST_ENTRIES]
    low = store.low_balance_cards(park_id, LOW_BALANCE_FEN, MAX_LIST_ENTRIES - len(blocked))
    body = Blocklist(park=park_id, version=version, issued_ms=now_ms, blocked=_entries(blocked), low=_entries(low))
    return topics.blocklist(park_id), _seal_blocklist(keys, park_id, body.to_bytes()), version


def delta_payload(store: Store, keys: LedgerKeys, park_id: str, from_version: int, now_ms: int) -> tuple[str, bytes, int] | None:
    """(topic, signed delta, version) for the changes after ``from_version``, or None if none."""
    changes = store.blocklist_changes(park_id, from_version)
    if not changes:
        return None
    blocked = _entries((no, issuance) for _, no, issuance, change in changes if change == "block")
    unblocked = _entries((no, issuance) for _, no, issuance, change in changes if change == "unblock")
    version = changes[-1][0]
    body = BlocklistDelta(park=park_id, from_version=from_version, version=version, issued_ms=now_ms,
                          blocked=blocked, unblocked=unblocked, low=())
    return topics.blocklist(park_id), _seal_blocklist(keys, park_id, body.to_bytes()), version


def _seal_blocklist(keys: LedgerKeys, park_id: str, body: bytes) -> bytes:
    key = keys.for_purpose(Purpose.BLOCKLIST)
    return envelope.seal(body, signing_key=key.signing_key, key_id=key.key_id, purpose=Purpose.BLOCKLIST,
                         topic=topics.blocklist(park_id), max_bytes=MAX_BROADCAST_BYTES)
