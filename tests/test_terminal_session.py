"""The terminal's session with the ledger, with no broker, no disk and no clock: signed bytes in,
events and bytes to publish out (terminal.session). Keys come from fixed seeds, so every payload in
these tables is the same bytes on every run (Ed25519 signatures are deterministic)."""

import hashlib

from nacl.public import PrivateKey
from nacl.signing import SigningKey
import pytest

from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.errors import LocalProtocolError
from protocol.messages import (
    Blocklist,
    BlocklistDelta,
    CardEntry,
    CardRef,
    Charge,
    Hello,
    LineItem,
    MemberLookupReply,
    OfflinePolicy,
    ParkRules,
    Result,
    TerminalConfig,
    Welcome,
)
from protocol.reasons import NOT_FINAL_REASONS
from terminal.identity import BrokerSettings, TerminalIdentity
from terminal.offline import BlocklistCopy
from terminal.session import (
    MAX_FOLLOWED,
    Answered,
    BlocklistChanged,
    ConfigChanged,
    Held,
    Ignored,
    Overdue,
    Publish,
    SnapshotWanted,
    TerminalSession,
    Welcomed,
)

PARK, TERMINAL = "P1", "T-FISH-1"
LEDGER_KEYS = {purpose: SigningKey(bytes([index]) * 32)
               for index, purpose in enumerate((Purpose.RESULT, Purpose.CONFIG, Purpose.BLOCKLIST), start=1)}
IMPOSTOR = SigningKey(bytes([99]) * 32)  # a key the terminal was never given
IDENTITY = TerminalIdentity(
    park_id=PARK, terminal_id=TERMINAL, station_id="fishing", key_id="T-FISH-1-k1",
    signing_key=SigningKey(bytes([7]) * 32),
    ledger_keys={purpose.value: (f"ledger-{purpose.value}-1", key.verify_key) for purpose, key in LEDGER_KEYS.items()},
    pin_key=PrivateKey(bytes([9]) * 32).public_key, broker=BrokerSettings("localhost", 0, TERMINAL, "-"),
)
RESULTS, CONFIG, BLOCKLIST = topics.result(PARK, TERMINAL), topics.config(PARK, TERMINAL), topics.blocklist(PARK)
OTHER_TILL_RESULTS = topics.result(PARK, "T-FISH-2")
NOW_MS = 1_780_000_000_000
RESEND_MS = 2_000
# The SHA-256 of the Hello these seeds sign (nonce aa..aa at NOW_MS): a change here is a wire change.
HELLO_SHA256 = "2e016117b97e621a18510cd2befbcbe27de3ad2af174480c5441a73cc59b904e"


def signed(message, *, topic: str, purpose: Purpose = Purpose.RESULT, key: SigningKey | None = None,
           key_id: str | None = None) -> bytes:
    """What the ledger publishes: ``message`` signed with its key for ``purpose``, bound to ``topic``."""
    return envelope.seal(message.to_bytes(), signing_key=key or LEDGER_KEYS[purpose],
                         key_id=key_id or f"ledger-{purpose.value}-1", purpose=purpose, topic=topic)


def request(seq: int) -> bytes:
    """A charge of 5.00 as the terminal signs it."""
    charge = Charge(park=PARK, terminal=TERMINAL, seq=seq, terminal_time_ms=NOW_MS, clock_uncertain=False,
                    operator="wang", config_version=0, card=CardRef(no="C00042", issuance=1, uid="0a0b0c0d"),
                    amount_fen=500, lines=(LineItem(item="Bait", qty=1, unit_fen=500),))
    return envelope.seal(charge.to_bytes(), signing_key=IDENTITY.signing_key, key_id=IDENTITY.key_id,
                         purpose=Purpose.REQUEST, topic=topics.request(PARK, TERMINAL))


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


FIRST, SECOND = request(1), request(2)


def result(request_payload: bytes, seq: int, *, reason: str = "OK", terminal: str = TERMINAL, park: str = PARK) -> Result:
    outcome = "approved" if reason == "OK" else ("declined" if reason == "INSUFFICIENT_FUNDS" else "refused")
    return Result(park=park, terminal=terminal, seq=seq, request_sha256=sha(request_payload), outcome=outcome,
                  reason=reason, balances=None, txn=seq if reason == "OK" else None, ledger_time_ms=NOW_MS, detail="")


def policy() -> OfflinePolicy:
    return OfflinePolicy(max_transaction_fen=5000, max_card_fen=10000, max_terminal_fen=100000, max_count=50,
                         max_offline_ms=3_600_000, max_reboots=2, blocklist_max_age_ms=86_400_000, allowed_modes="free")


def config(version: int, *, terminal: str = TERMINAL) -> TerminalConfig:
    return TerminalConfig(park=PARK, terminal=terminal, version=version, issued_ms=NOW_MS + version, offline=policy(),
                          rules=ParkRules(no_pin_limit_fen=20000, card_fee_fen=2000, damage_fee_fen=1000))


def snapshot(version: int, *blocked: str) -> Blocklist:
    return Blocklist(park=PARK, version=version, issued_ms=NOW_MS + version,
                     blocked=tuple(CardEntry(no=no, issuance=1, fen=0) for no in blocked), low=())


def delta(from_version: int, version: int, *blocked: str) -> BlocklistDelta:
    return BlocklistDelta(park=PARK, from_version=from_version, version=version, issued_ms=NOW_MS + version,
                          blocked=tuple(CardEntry(no=no, issuance=1, fen=0) for no in blocked), unblocked=(), low=())


def welcome(nonce: str, highest_seq: int = 41) -> Welcome:
    return Welcome(park=PARK, terminal=TERMINAL, nonce=nonce, request_sha256="0" * 64, highest_seq=highest_seq,
                   ledger_time_ms=NOW_MS)


def session_with_two_charges_sent() -> TerminalSession:
    """A session with config 5 and blocklist 3 (C00007 blocked) held, charges 1 and 2 sent at t=0
    (2 with four seconds to answer), and a Hello with nonce aa..aa sent."""
    session = TerminalSession(IDENTITY, config_version=(5, NOW_MS + 5), blocklist=BlocklistCopy(3, NOW_MS + 3, {("C00007", 1)}),
                              resend_interval_ms=RESEND_MS)
    session.send(sha(FIRST), FIRST, 0)
    session.send(sha(SECOND), SECOND, 0, answer_within_ms=4_000)
    session.greet("aa" * 16, NOW_MS, 0)
    return session


def described(event) -> tuple:
    """An event as a short row: what a table below expects."""
    if isinstance(event, Answered):
        return ("answered", event.reply.seq, getattr(event.reply, "reason", None), event.was_followed)
    if isinstance(event, Held):
        return ("held", event.reply.seq, event.reason)
    if isinstance(event, Welcomed):
        return ("welcomed", event.welcome.highest_seq)
    if isinstance(event, ConfigChanged):
        return ("config", event.config.version)
    if isinstance(event, BlocklistChanged):
        return ("blocklist changed",)
    if isinstance(event, SnapshotWanted):
        return ("snapshot wanted", event.held_version, event.delta_from_version)
    if isinstance(event, Ignored):
        return ("ignored", event.code, "broadcast" if event.is_broadcast else "reply")
    raise AssertionError(f"unexpected event {event!r}")


def tampered(payload: bytes) -> bytes:
    """The last byte of the body changed: the signature no longer holds."""
    return payload[:-2] + bytes([payload[-2] ^ 0x01]) + payload[-1:]


# (what arrives, on which topic, the bytes) -> what the session makes of them
ONE_MESSAGE_TABLE = [
    ("the approval of charge 1", RESULTS, signed(result(FIRST, 1), topic=RESULTS),
     [("answered", 1, "OK", True)]),
    ("charge 2 answered before charge 1 (out of order)", RESULTS, signed(result(SECOND, 2), topic=RESULTS),
     [("answered", 2, "OK", True)]),
    ("a final decline", RESULTS, signed(result(FIRST, 1, reason="INSUFFICIENT_FUNDS"), topic=RESULTS),
     [("answered", 1, "INSUFFICIENT_FUNDS", True)]),
    ("a lookup's reply is final too", RESULTS,
     signed(MemberLookupReply(park=PARK, terminal=TERMINAL, seq=1, request_sha256=sha(FIRST), cards=(),
                              ledger_time_ms=NOW_MS), topic=RESULTS),
     [("answered", 1, None, True)]),
    *[(f"{reason}: not final, the request stays pending", RESULTS, signed(result(FIRST, 1, reason=reason), topic=RESULTS),
       [("held", 1, reason)]) for reason in sorted(r.value for r in NOT_FINAL_REASONS)],
    ("a Result quoting a request we never sent", RESULTS, signed(result(b"someone else's", 1), topic=RESULTS),
     [("answered", 1, "OK", False)]),
    ("forged: signed with a key the terminal does not trust", RESULTS,
     signed(result(FIRST, 1), topic=RESULTS, key=IMPOSTOR), [("ignored", "BAD_SIGNATURE", "reply")]),
    ("forged: the body changed after signing", RESULTS, tampered(signed(result(FIRST, 1), topic=RESULTS)),
     [("ignored", "BAD_SIGNATURE", "reply")]),
    ("forged: an unknown key id", RESULTS, signed(result(FIRST, 1), topic=RESULTS, key_id="ledger-result-9"),
     [("ignored", "UNKNOWN_KEY", "reply")]),
    ("forged: the config key signing a Result", RESULTS,
     signed(result(FIRST, 1), topic=RESULTS, key=LEDGER_KEYS[Purpose.CONFIG], key_id="ledger-result-1"),
     [("ignored", "BAD_SIGNATURE", "reply")]),
    ("not an envelope at all", RESULTS, b"approved, honest", [("ignored", "BAD_MAGIC", "reply")]),
    ("wrong topic: another till's Result replayed onto ours", RESULTS,
     signed(result(FIRST, 1, terminal="T-FISH-2"), topic=OTHER_TILL_RESULTS), [("ignored", "BAD_SIGNATURE", "reply")]),
    ("wrong topic: bytes on a topic we do not follow", OTHER_TILL_RESULTS, signed(result(FIRST, 1), topic=RESULTS),
     [("ignored", "UNKNOWN_TOPIC", "reply")]),
    ("wrong topic: a config delivered on the result topic", RESULTS,
     signed(config(6), topic=RESULTS, purpose=Purpose.CONFIG, key_id="ledger-result-1"),
     [("ignored", "BAD_SIGNATURE", "reply")]),
    ("signed for our topic but naming another terminal", RESULTS, signed(result(FIRST, 1, terminal="T-FISH-2"), topic=RESULTS),
     [("ignored", "TOPIC_MISMATCH", "reply")]),
    ("signed for our topic but naming another park", RESULTS, signed(result(FIRST, 1, park="P2"), topic=RESULTS),
     [("ignored", "TOPIC_MISMATCH", "reply")]),
    ("the Welcome to our Hello", RESULTS, signed(welcome("aa" * 16), topic=RESULTS), [("welcomed", 41)]),
    ("a Welcome to a Hello we never sent", RESULTS, signed(welcome("bb" * 16), topic=RESULTS),
     [("ignored", "UNASKED", "reply")]),
    ("a newer config", CONFIG, signed(config(6), topic=CONFIG, purpose=Purpose.CONFIG), [("config", 6)]),
    ("stale version: the config held, again", CONFIG, signed(config(5), topic=CONFIG, purpose=Purpose.CONFIG),
     [("ignored", "STALE_VERSION", "broadcast")]),
    ("stale version: an older config (a replay)", CONFIG, signed(config(4), topic=CONFIG, purpose=Purpose.CONFIG),
     [("ignored", "STALE_VERSION", "broadcast")]),
    ("a config for another terminal", CONFIG,
     signed(config(6, terminal="T-FISH-2"), topic=CONFIG, purpose=Purpose.CONFIG),
     [("ignored", "TOPIC_MISMATCH", "broadcast")]),
    ("forged: a config signed with the result key", CONFIG,
     signed(config(6), topic=CONFIG, purpose=Purpose.CONFIG, key=LEDGER_KEYS[Purpose.RESULT]),
     [("ignored", "BAD_SIGNATURE", "broadcast")]),
    ("a newer blocklist snapshot", BLOCKLIST, signed(snapshot(4, "C00009"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST),
     [("blocklist changed",)]),
    ("the snapshot held, retained and delivered again", BLOCKLIST,
     signed(snapshot(3, "C00007"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST), []),
    ("stale version: an older snapshot (a replay)", BLOCKLIST,
     signed(snapshot(2), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST), [("ignored", "STALE_VERSION", "broadcast")]),
    ("the next delta", BLOCKLIST, signed(delta(3, 4, "C00009"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST),
     [("blocklist changed",)]),
    ("an old delta, already in the copy", BLOCKLIST, signed(delta(2, 3, "C00009"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST),
     []),
    ("out of order: a delta after a gap asks for the snapshot", BLOCKLIST,
     signed(delta(4, 5, "C00009"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST), [("snapshot wanted", 3, 4)]),
    ("a Result delivered on the blocklist topic", BLOCKLIST, signed(result(FIRST, 1), topic=BLOCKLIST),
     [("ignored", "UNKNOWN_KEY", "broadcast")]),
]


@pytest.mark.parametrize("what, topic, payload, expected", ONE_MESSAGE_TABLE, ids=[row[0] for row in ONE_MESSAGE_TABLE])
def test_one_message_in_gives_exactly_these_events(what, topic, payload, expected):
    session = session_with_two_charges_sent()
    assert [described(event) for event in session.receive(topic, payload)] == expected


def test_the_blocklist_copy_holds_what_the_snapshot_and_delta_say_and_a_gap_changes_nothing():
    session = session_with_two_charges_sent()
    session.receive(BLOCKLIST, signed(delta(3, 4, "C00009"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST))
    assert (session.blocklist.version, session.blocklist.blocked) == (4, {("C00007", 1), ("C00009", 1)})
    session.receive(BLOCKLIST, signed(delta(9, 10, "C00010"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST))
    assert session.blocklist.version == 4 and ("C00010", 1) not in session.blocklist.blocked
    session.receive(BLOCKLIST, signed(snapshot(10, "C00010"), topic=BLOCKLIST, purpose=Purpose.BLOCKLIST))
    assert (session.blocklist.version, session.blocklist.blocked) == (10, {("C00010", 1)})


# A conversation: (what happens, the events it gives). The session is the one above; time is in ms.
CONVERSATION = [
    ("charge 1 is set aside", RESULTS, signed(result(FIRST, 1, reason="SET_ASIDE"), topic=RESULTS), [("held", 1, "SET_ASIDE")]),
    ("then the ledger approves it", RESULTS, signed(result(FIRST, 1), topic=RESULTS), [("answered", 1, "OK", True)]),
    ("replayed: the same approval again", RESULTS, signed(result(FIRST, 1), topic=RESULTS), [("answered", 1, "OK", False)]),
    ("the Welcome to our Hello", RESULTS, signed(welcome("aa" * 16), topic=RESULTS), [("welcomed", 41)]),
    ("replayed: the same Welcome again", RESULTS, signed(welcome("aa" * 16), topic=RESULTS),
     [("ignored", "UNASKED", "reply")]),
    ("a newer config", CONFIG, signed(config(7), topic=CONFIG, purpose=Purpose.CONFIG), [("config", 7)]),
    ("replayed: the config before it", CONFIG, signed(config(6), topic=CONFIG, purpose=Purpose.CONFIG),
     [("ignored", "STALE_VERSION", "broadcast")]),
]


def test_a_conversation_held_then_answered_then_replayed():
    session = session_with_two_charges_sent()
    for what, topic, payload, expected in CONVERSATION:
        assert [described(event) for event in session.receive(topic, payload)] == expected, what
    assert session.held_reason(sha(FIRST)) is None  # the final answer replaced the note
    assert not session.is_followed(sha(FIRST)) and session.is_followed(sha(SECOND))
    assert session.config_version == (7, NOW_MS + 7)


def test_a_held_request_is_still_re_sent_and_its_note_stays_until_a_final_answer():
    session = session_with_two_charges_sent()
    session.receive(RESULTS, signed(result(FIRST, 1, reason="INTERNAL_ERROR"), topic=RESULTS))
    assert session.held_reason(sha(FIRST)) == "INTERNAL_ERROR"
    assert Publish(session.request_topic, FIRST) in session.due(RESEND_MS)


# The clock: (now ms, what ``due`` returns). Charges 1 and 2 and the Hello went out at 0; charge 2
# has four seconds to answer.
REQUESTS = topics.request(PARK, TERMINAL)
TIMELINE = [
    (0, []),
    (1_999, []),
    (2_000, [Publish(REQUESTS, FIRST), Publish(REQUESTS, SECOND), "hello"]),
    (3_999, []),
    (4_000, [Publish(REQUESTS, FIRST), Overdue(sha(SECOND)), Publish(REQUESTS, SECOND), "hello"]),
    (5_999, []),
    (6_000, [Publish(REQUESTS, FIRST), Publish(REQUESTS, SECOND), "hello"]),  # overdue is told once
]


def test_due_re_sends_the_same_bytes_every_interval_and_tells_overdue_once():
    session = session_with_two_charges_sent()
    hello = session.greet("aa" * 16, NOW_MS, 0)[0]  # the same Hello again: its bytes, for the table
    for now_ms, expected in TIMELINE:
        assert session.due(now_ms) == [hello if item == "hello" else item for item in expected], now_ms


def test_an_answer_a_forget_and_a_welcome_stop_the_re_sending():
    session = session_with_two_charges_sent()
    session.receive(RESULTS, signed(result(FIRST, 1), topic=RESULTS))
    session.forget(sha(SECOND))
    session.receive(RESULTS, signed(welcome("aa" * 16), topic=RESULTS))
    assert session.due(10_000) == []


def test_sending_a_request_already_followed_publishes_nothing_new_and_keeps_its_timer():
    session = session_with_two_charges_sent()
    assert session.send(sha(FIRST), FIRST, 1_000) == []
    assert session.due(2_000)[0] == Publish(session.request_topic, FIRST)


def test_a_hello_is_the_terminal_signed_hello_for_the_request_topic_byte_for_byte():
    session = TerminalSession(IDENTITY)
    (hello,) = session.greet("aa" * 16, NOW_MS, 0)
    expected = envelope.seal(Hello(park=PARK, terminal=TERMINAL, nonce="aa" * 16, terminal_time_ms=NOW_MS).to_bytes(),
                             signing_key=IDENTITY.signing_key, key_id=IDENTITY.key_id, purpose=Purpose.REQUEST,
                             topic=topics.request(PARK, TERMINAL))
    assert hello == Publish("fieldpos/v1/P1/t/T-FISH-1/req", expected)
    # The wire is pinned: the same seeds give the same bytes (Ed25519 is deterministic).
    assert hello.payload.endswith(b'{"nonce":"' + b"a" * 32 + b'","park":"P1","terminal":"T-FISH-1",'
                                  b'"terminal_time_ms":1780000000000,"type":"hello"}')
    assert sha(hello.payload) == HELLO_SHA256


def test_followed_requests_are_bounded():
    session = TerminalSession(IDENTITY)
    for index in range(MAX_FOLLOWED):
        session.send(f"{index:064x}", b"x", 0)
    with pytest.raises(LocalProtocolError) as raised:
        session.send("f" * 64, b"x", 0)
    assert raised.value.code == "TOO_MANY_IN_FLIGHT"


def test_the_held_notes_are_bounded_oldest_first():
    from terminal.session import MAX_HELD_NOTES

    session = TerminalSession(IDENTITY)
    payloads = [request(seq) for seq in range(1, MAX_HELD_NOTES + 2)]
    for seq, payload in enumerate(payloads, start=1):
        session.receive(RESULTS, signed(result(payload, seq, reason="SET_ASIDE"), topic=RESULTS))
    assert session.held_reason(sha(payloads[0])) is None
    assert session.held_reason(sha(payloads[-1])) == "SET_ASIDE"


def test_the_senders_own_bytes_take_over_a_request_followed_from_the_outboxs_copy():
    """The uploader may start a PIN request from the outbox's copy (no PIN block) a moment before
    the till that holds the whole payload does: the till's bytes go out at once and are re-sent."""
    outbox_copy, senders_copy = b"the request without its PIN block", b"the request with its PIN block"
    session = TerminalSession(IDENTITY)
    assert session.send("ab" * 32, outbox_copy, 0) == [Publish(session.request_topic, outbox_copy)]
    assert session.send("ab" * 32, senders_copy, 500, answer_within_ms=1_000, take_over=True) == [
        Publish(session.request_topic, senders_copy)]
    assert session.due(1_500) == [Overdue("ab" * 32)]
    assert session.due(2_500) == [Publish(session.request_topic, senders_copy)]
