"""The offline rules on their own: caps, blocklist age, and the blocklist copy's version rules."""

from protocol.messages import Blocklist, BlocklistDelta, CardEntry, OfflinePolicy
from terminal import offline

HOUR_MS = 3_600_000
POLICY = OfflinePolicy(max_transaction_fen=5000, max_card_fen=8000, max_terminal_fen=20000, max_count=3,
                       max_offline_ms=24 * HOUR_MS, max_reboots=2, blocklist_max_age_ms=12 * HOUR_MS,
                       allowed_modes="free,menu")
NOW = 1_780_000_000_000
CARD = ("C00001", 1)


def fresh_blocklist(**changes):
    copy = offline.BlocklistCopy()
    assert copy.accept_snapshot(Blocklist(park="P1", version=4, issued_ms=NOW - HOUR_MS, blocked=(), low=()))
    for name, value in changes.items():
        setattr(copy, name, value)
    return copy


def decide(amount=1000, window=None, blocklist=None, **overrides):
    arguments = dict(card_key=CARD, amount_fen=amount, mode="free", needs_pin=False, now_ms=NOW,
                     last_contact_ms=NOW - HOUR_MS, known_balance_fen=None) | overrides
    return offline.decide(overrides.pop("policy", POLICY), blocklist or fresh_blocklist(), window or offline.OfflineWindow(),
                          **{k: v for k, v in arguments.items() if k != "policy"})


def test_each_cap_refuses_with_its_own_reason():
    window = offline.OfflineWindow()
    window.add(CARD, 4000, NOW)
    assert decide(1000, window) is None
    assert decide(6000) == offline.OVER_SALE_CAP
    assert decide(4500, window) == offline.OVER_CARD_CAP
    window.add(("C00002", 1), 4000, NOW)
    window.add(("C00003", 1), 4000, NOW)
    assert decide(1000, window, card_key=("C00009", 1)) == offline.TOO_MANY_SALES
    assert decide(mode="count") == offline.MODE_NOT_ALLOWED
    assert decide(needs_pin=True) == offline.PIN_NEEDED
    assert decide(policy=None) == offline.NO_POLICY


def test_time_limits_blocked_and_empty_cards():
    assert decide(last_contact_ms=NOW - 25 * HOUR_MS) == offline.OFFLINE_TOO_LONG
    assert decide(blocklist=fresh_blocklist(issued_ms=NOW - 13 * HOUR_MS)) == offline.BLOCKLIST_EXPIRED
    assert decide(blocklist=offline.BlocklistCopy()) == offline.BLOCKLIST_EXPIRED  # never had one
    assert decide(blocklist=fresh_blocklist(blocked={CARD})) == offline.CARD_BLOCKED
    assert decide(1000, blocklist=fresh_blocklist(low={CARD: 300})) == offline.BALANCE_TOO_LOW
    rebooted = offline.OfflineWindow(reboots=3)
    assert decide(window=rebooted) == offline.TOO_MANY_REBOOTS


def test_the_blocklist_copy_takes_only_newer_snapshots_and_asks_for_one_after_a_gap():
    copy = fresh_blocklist()
    older = Blocklist(park="P1", version=4, issued_ms=NOW - 2 * HOUR_MS, blocked=(), low=())
    assert not copy.accept_snapshot(older)
    entry = CardEntry(no="C00001", issuance=1, fen=0)
    assert copy.apply_delta(BlocklistDelta(park="P1", from_version=4, version=5, issued_ms=NOW, blocked=(entry,),
                                           unblocked=(), low=())) is True
    assert CARD in copy.blocked
    gap = BlocklistDelta(park="P1", from_version=6, version=7, issued_ms=NOW, blocked=(), unblocked=(entry,), low=())
    assert copy.apply_delta(gap) is None and CARD in copy.blocked  # a gap: ask for the snapshot
    assert copy.apply_delta(BlocklistDelta(park="P1", from_version=3, version=4, issued_ms=NOW, blocked=(),
                                           unblocked=(entry,), low=())) is False  # old news
