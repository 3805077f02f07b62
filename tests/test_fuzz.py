"""Fuzzing the ledger's intake with correctly signed payloads: nothing a registered terminal's key
signs can stop it, set a message aside, get approved unless it is a request a terminal could have
sent, unbalance the books, or grow the refusal evidence without bound.

Two generators, both driven by Hypothesis: structured bodies built from the message dataclasses'
own field specs (valid values, values at and past their bounds, wrong JSON types, extra and missing
fields, deep nesting, long numbers and strings), and byte mutations of valid bodies. Every body is
signed after it was made, with the key of the terminal whose topic it goes to, so it passes the
signature and reaches the parser and the rules. CI runs a pinned, derandomized, bounded set; the
``slow`` tests (``--runslow``) run 100,000 of each in process and a smaller stream through the real
broker to the running ledger service.
"""

from dataclasses import fields
import functools
import hashlib
import re
import time

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from host_sim.rig import ParkRig, card, common, single_line
from ledger.store import REFUSAL_SAMPLE_CAP
from ledger.verify import verify_books
from protocol import codec, envelope, topics
from protocol.envelope import Purpose
from protocol.errors import ProtocolError
from protocol.limits import MAX_AMOUNT_FEN, MAX_SEQ, MAX_STRING_CHARS, MAX_TEXT_CHARS
from protocol.messages import (
    CHECKS,
    REPLY_TYPES,
    REQUEST_TYPES,
    CardKind,
    CardState,
    Channel,
    CardIssue,
    Charge,
    PrinterState,
    TerminalStatus,
    parse,
)
from protocol.reasons import Outcome, Reason

from .conftest import TERMINALS
from .helpers.intake_driver import VISITOR, Ledger
from .helpers.waiting import wait_until

TERMINAL_IDS = sorted(TERMINALS)
# A stand-in a structured body carries where raw JSON text goes in (a depth or a number length
# Python's own encoder could not write), swapped for the text after encoding.
RAW = "\u0000raw:"
_RAW_SLOT = re.compile(r'"\\u0000raw:(\d+)"')

# Pinned for CI: the same examples every run, bounded in time on a shared machine (~10 s).
CI = settings(max_examples=60, derandomize=True, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                     HealthCheck.data_too_large, HealthCheck.large_base_example])
BATCH = (1, 40)  # payloads per example, handed to Intake.process as one batch as the service does
LONG_RUN_PAYLOADS = 100_000


# ---------------------------------------------------------------- values from the field specs
def _valid(check: str, terminal_id: str):
    """Values the named check accepts, biased to the park's own ids and the issued card, so that
    requests get past the parser into the rules (and sometimes all the way to the books)."""
    return _valid_values(terminal_id)[check]


@functools.lru_cache(maxsize=None)
def _valid_values(terminal_id: str) -> dict:
    # Built once per terminal: every field of every generated body asks for its check's values, and
    # building these ~30 strategies (ten of them from_regex) anew each time was most of a run's time.
    text = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=MAX_TEXT_CHARS)
    digits = lambda low, high: st.one_of(st.integers(low, min(high, low + 5)), st.integers(low, high))  # noqa: E731
    return {
        "id": st.one_of(st.sampled_from(["P1", terminal_id, "op-1", "fishing", "wang"]), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True)),
        "text": text,
        "optional_text": st.one_of(st.just(""), text),
        "seq": digits(1, MAX_SEQ),
        "count": digits(0, MAX_SEQ),
        "time_ms": st.one_of(st.just(1_780_000_000_000), digits(0, MAX_SEQ)),
        "amount": digits(1, MAX_AMOUNT_FEN),
        "amount_or_zero": digits(0, MAX_AMOUNT_FEN),
        "balance": st.integers(-MAX_SEQ, MAX_SEQ),
        "quantity": digits(1, 999),
        "issuance": digits(1, 1_000_000),
        "card_number": st.one_of(st.just(VISITOR.no), st.from_regex(r"[0-9A-Z]{4,20}", fullmatch=True)),
        "phone": st.from_regex(r"\+?[0-9]{6,14}", fullmatch=True),
        "day": st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", fullmatch=True),
        "card_record": st.from_regex(r"[0-9a-f]{192}", fullmatch=True),
        "bool": st.booleans(),
        "sha256": st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
        "nonce": st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
        "uid": st.one_of(st.just(VISITOR.uid), st.from_regex(r"([0-9a-f]{8}|[0-9a-f]{14}|[0-9a-f]{20})", fullmatch=True)),
        "channel": st.sampled_from([c.value for c in Channel]),
        "card_kind": st.sampled_from([c.value for c in CardKind]),
        "card_state": st.sampled_from([c.value for c in CardState]),
        "outcome": st.sampled_from([o.value for o in Outcome]),
        "reason": st.sampled_from([r.value for r in Reason]),
        # Rentals (issue 13): a voucher of the token's form (its signature never holds), damage codes.
        "voucher": st.from_regex(r"FPV1:[A-Z2-7]{100,160}", fullmatch=True),
        # E-cards (issue 17): a token of the form, which never parses as a credential for the card.
        "ecard": st.from_regex(r"FPE1:[A-Z2-7]{100,420}", fullmatch=True),
        "codes": st.sampled_from(["", "reel", "reel,line"]),
        "rental_condition": st.sampled_from(["intact", "damaged", "lost"]),
        # A terminal's status (§6.2): its printer's state and its software's version.
        "printer_state": st.sampled_from([p.value for p in PrinterState]),
        "software_version": st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}", fullmatch=True),
    }


def _raw(text: str) -> str:
    return f"{RAW}{text}"


# Values no check accepts: wrong JSON types, bounds passed, and the shapes that once crashed it.
HOSTILE_VALUE = st.one_of(
    st.none(), st.booleans(), st.just([]), st.just({}), st.lists(st.integers(), max_size=3),
    st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.integers(), max_size=3),
    st.sampled_from([0, -1, MAX_SEQ, MAX_SEQ + 1, -MAX_SEQ - 1, MAX_AMOUNT_FEN + 1, 2**63, 10**300]),
    st.sampled_from(["", " ", "x" * (MAX_TEXT_CHARS + 1), "y" * (MAX_STRING_CHARS + 1), "\u0001", "\u2028", "cash\u0000",
                     "CASH", "null", "[]", "{}"]),
    st.integers(9, 40).map(lambda depth: _raw("[" * depth + "]" * depth)),
    st.integers(17, 5000).map(lambda digits: _raw("7" * digits)),
    st.sampled_from([_raw("1.5"), _raw("1e999"), _raw("NaN"), _raw("-Infinity"), _raw("-0"), _raw('"\\ud800"')]),
)


@st.composite
def message_obj(draw, cls, terminal_id: str, depth: int = 0) -> dict:
    """A JSON object of ``cls`` (a message or a part) built from its dataclass field specs."""
    obj = {"type": cls.TYPE} if cls.TYPE else {}
    for spec in fields(cls):
        check, nested, many = spec.metadata["check"], spec.metadata["nested"], spec.metadata["many"]
        if spec.metadata["optional"] and draw(st.booleans()):
            obj[spec.name] = None
        elif many:
            obj[spec.name] = draw(st.lists(message_obj(nested, terminal_id, depth + 1), min_size=1, max_size=3))
        elif nested is not None:
            obj[spec.name] = draw(message_obj(nested, terminal_id, depth + 1))
        else:
            obj[spec.name] = draw(_valid(check, terminal_id))
    if isinstance(obj.get("terminal"), str) and draw(st.integers(0, 9)):
        obj["terminal"], obj["park"] = terminal_id, "P1"  # mostly its own, so the topic check passes
    if "lines" in obj and isinstance(obj.get("amount_fen"), int) and draw(st.integers(0, 3)):
        obj["amount_fen"] = sum(line["qty"] * line["unit_fen"] for line in obj["lines"]) or obj["amount_fen"]
    return obj


def _paths(obj):
    """Every (container, key) in a JSON object, nested ones included."""
    for key, value in list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj)):
        yield obj, key
        if isinstance(value, (dict, list)):
            yield from _paths(value)


@st.composite
def structured_body(draw, terminal_id: str) -> bytes:
    """A request (or, sometimes, a status) body from the schema, then 0-3 near-valid changes."""
    cls = draw(st.sampled_from(sorted(REQUEST_TYPES.values(), key=lambda c: c.TYPE) + [TerminalStatus]))
    obj = draw(message_obj(cls, terminal_id))
    for _ in range(draw(st.integers(0, 3))):
        places = list(_paths(obj))
        container, key = draw(st.sampled_from(places))
        change = draw(st.sampled_from(["value", "value", "delete", "extra", "type"]))
        if change == "value":
            container[key] = draw(HOSTILE_VALUE)
        elif change == "delete" and isinstance(container, dict):
            del container[key]
        elif change == "extra" and isinstance(container, dict):
            container[draw(st.from_regex(r"[a-z_]{1,12}|[A-Z ,\-]{1,4}", fullmatch=True))] = draw(HOSTILE_VALUE)
        elif change == "type":
            obj["type"] = draw(st.one_of(st.sampled_from(sorted(REQUEST_TYPES) + ["status", "result", ""]), HOSTILE_VALUE))
    return _encode_raw(obj)


def _encode_raw(obj) -> bytes:
    """Canonical JSON of ``obj`` with every RAW stand-in replaced by its raw text."""
    raws: list[str] = []

    def swap(value):
        if isinstance(value, str) and value.startswith(RAW):
            raws.append(value[len(RAW):])
            return f"{RAW}{len(raws) - 1}"
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    text = codec.encode(swap(obj)).decode()
    return _RAW_SLOT.sub(lambda found: raws[int(found.group(1))], text).encode()


# Byte mutations: what a fuzzer without the schema does, plus the tokens that matter to a parser.
TOKENS = [b"[", b"]", b"{", b"}", b'"', b"\\", b",", b":", b"7" * 17, b"7" * 5000, b"-", b"1e999", b"null", b"[]",
          b"{}", b"\x00", b"\xff", b"\xc3", b',"x":1', b'"type":[]', b"[" * 3000, b"\\u0000", b"\\ud800", b" "]


@st.composite
def mutated_body(draw, terminal_id: str) -> bytes:
    """A valid request body with 1-4 byte-level mutations (flip, insert, delete, duplicate, token)."""
    cls = draw(st.sampled_from([Charge] + sorted(REQUEST_TYPES.values(), key=lambda c: c.TYPE)))
    body = bytearray(codec.encode(draw(message_obj(cls, terminal_id))))
    for _ in range(draw(st.integers(1, 4))):
        if not body:
            body.extend(b"{")
        at = draw(st.integers(0, len(body) - 1))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "token"]))
        if kind == "flip":
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            body[at:at] = bytes([draw(st.integers(0, 255))])
        elif kind == "delete":
            del body[at : at + draw(st.integers(1, 8))]
        elif kind == "duplicate":
            body[at:at] = body[at : at + draw(st.integers(1, 32))]
        else:
            body[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(body)


@st.composite
def signed_batch(draw, body_strategy) -> list[tuple[str, bytes]]:
    batch = []
    for _ in range(draw(st.integers(*BATCH))):
        terminal_id = draw(st.sampled_from(TERMINAL_IDS))
        body = draw(body_strategy(terminal_id))
        batch.append((terminal_id, body, draw(st.integers(0, 9)) == 0))  # one in ten as a status
    return batch


# ---------------------------------------------------------------- the oracle
class Fuzzed:
    """Feeds signed payloads to the intake and keeps the figures the assertions are about."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.identities = {terminal_id: ledger.rig.identity(terminal_id) for terminal_id in TERMINAL_IDS}
        self.payloads = self.approvals = self.refusals = self.sendable_approvals = 0

    def sign(self, terminal_id: str, body: bytes, as_status: bool) -> tuple[str, bytes]:
        identity = self.identities[terminal_id]
        topic = topics.status("P1", terminal_id) if as_status else topics.request("P1", terminal_id)
        purpose = Purpose.STATUS if as_status else Purpose.REQUEST
        return topic, envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id, purpose=purpose,
                                    topic=topic, max_bytes=1 << 20)

    def feed(self, batch) -> None:
        signed = [self.sign(*item) for item in batch]
        bodies = {hashlib.sha256(payload).hexdigest(): envelope.split(payload, max_bytes=1 << 20).body
                  for _, payload in signed}
        replies = self.ledger.intake.process(signed)  # must not raise: that is the first property
        self.payloads += len(signed)
        for reply in replies:
            result = parse(envelope.verify(envelope.split(reply.payload), verify_key=self.ledger.result_key,
                                           purpose=Purpose.RESULT, topic=reply.topic), REPLY_TYPES)
            body = bodies[result.request_sha256]
            assert getattr(result, "reason", None) not in (Reason.SET_ASIDE, Reason.INTERNAL_ERROR), (body, result)
            if getattr(result, "is_approved", False):
                self.approvals += 1
                assert is_sendable(body), f"approved a body no terminal could have sent: {body!r}"
            elif getattr(result, "outcome", None) == Outcome.REFUSED:
                self.refusals += 1

    def check_store(self) -> None:
        store = self.ledger.store
        assert verify_books(store).is_ok
        (rows,) = store.db.execute("SELECT COUNT(*) FROM refusal").fetchone()
        assert rows <= REFUSAL_SAMPLE_CAP + 1
        (held,) = store.db.execute("SELECT COUNT(*) FROM set_aside").fetchone()
        assert held == 0


def is_sendable(body: bytes) -> bool:
    """A request a terminal could have sent: a valid message whose canonical bytes are this body."""
    try:
        message = parse(body, REQUEST_TYPES)
    except ProtocolError:
        return False
    return message.to_bytes() == body


@pytest.fixture
def fuzzed(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    assert ledger.issue(opening_fen=50_000).is_approved
    yield Fuzzed(ledger)
    rig.close()
    ledger.store.close()


# ---------------------------------------------------------------- CI: pinned and bounded
@CI
@given(batch=signed_batch(structured_body))
def test_structured_signed_bodies_never_stop_the_ledger_nor_pass_unless_sendable(fuzzed, batch):
    fuzzed.feed(batch)
    fuzzed.check_store()


@CI
@given(batch=signed_batch(mutated_body))
def test_byte_mutations_of_signed_bodies_never_stop_the_ledger_nor_pass_unless_sendable(fuzzed, batch):
    fuzzed.feed(batch)
    fuzzed.check_store()


def test_the_oracle_tells_a_sendable_sale_from_a_near_copy(fuzzed):
    """The approval oracle is not vacuous: a sale a terminal would send is sendable and approved
    through the same feed, and the same sale with one space added is not sendable."""
    fishing = fuzzed.ledger.rig.link("T-FISH-1", connect=False)
    sale = Charge(**common(fishing, 1, VISITOR), amount_fen=100, lines=single_line("鱼饵", 100)).to_bytes()
    fuzzed.feed([("T-FISH-1", sale, False)])
    assert fuzzed.approvals == 1
    assert is_sendable(sale) and not is_sendable(sale.replace(b"{", b"{ ", 1))


# ---------------------------------------------------------------- the long runs (--runslow)
LONG = settings(max_examples=LONG_RUN_PAYLOADS // 20, deadline=None, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


def _long_run(fuzzed, strategy, capsys):
    started = time.monotonic()

    @LONG
    @given(batch=signed_batch(strategy))
    def run(batch):
        fuzzed.feed(batch)

    while fuzzed.payloads < LONG_RUN_PAYLOADS:
        run()
    fuzzed.check_store()
    (refusal_rows,) = fuzzed.ledger.store.db.execute("SELECT COUNT(*) FROM refusal").fetchone()
    (counted,) = fuzzed.ledger.store.db.execute("SELECT COALESCE(SUM(count), 0) FROM refusal_count").fetchone()
    with capsys.disabled():
        print(f"\n{strategy.__name__}: {fuzzed.payloads:,} signed payloads in {time.monotonic() - started:.0f} s; "
              f"approved {fuzzed.approvals} (all sendable), refused {fuzzed.refusals:,}; refusal rows kept "
              f"{refusal_rows:,} of {counted:,} counted; set aside 0; ledger exits 0")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 10 minutes on a quiet core
def test_a_hundred_thousand_structured_signed_bodies(fuzzed, capsys):
    _long_run(fuzzed, structured_body, capsys)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 10 minutes on a quiet core
def test_a_hundred_thousand_byte_mutations_of_signed_bodies(fuzzed, capsys):
    _long_run(fuzzed, mutated_body, capsys)


@pytest.mark.slow
def test_fuzzed_bodies_through_the_real_broker_leave_the_ledger_serving(rig, capsys):
    """Both generators' payloads published by the terminals' own broker logins to the running
    ledger service; after each terminal's stream, a genuine sale from it is answered."""
    links = {terminal_id: rig.link(terminal_id) for terminal_id in TERMINAL_IDS}
    desk, fishing = links["T-DESK-1"], links["T-FISH-1"]
    visitor = card("C00777")
    assert desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=100_000, channel="cash", payment_ref="")).is_approved
    sent, sendable, started = 0, set(), time.monotonic()

    @settings(max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(batch=st.one_of(signed_batch(structured_body), signed_batch(mutated_body)))
    def publish(batch):
        nonlocal sent
        for terminal_id, body, as_status in batch:
            identity = links[terminal_id].identity
            topic = topics.status("P1", terminal_id) if as_status else topics.request("P1", terminal_id)
            payload = envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                    purpose=Purpose.STATUS if as_status else Purpose.REQUEST, topic=topic,
                                    max_bytes=1 << 20)
            if is_sendable(body):
                sendable.add(hashlib.sha256(body).hexdigest())
            links[terminal_id].client.publish(topic, payload, qos=1)
            sent += 1

    publish()
    ours = []
    for terminal_id in ["T-FISH-1", "T-FISH-2", "T-RIDE-1"]:
        link = links[terminal_id]
        link.sync_seq()  # past whatever seqs the fuzzed requests used up
        sale = link.submit(lambda seq: Charge(**common(link, seq, visitor), amount_fen=100, lines=single_line("x", 100)))
        assert sale.is_approved, sale  # answered after everything this terminal published before it
        ours.append((terminal_id, sale.seq))
    assert rig.ledger._thread.is_alive()
    store = rig.reader
    approved = {sha for (sha,) in store.db.execute("SELECT body_sha256 FROM request WHERE outcome='approved'")}
    genuine = {store.stored_request(terminal_id, seq).body_sha256 for terminal_id, seq in ours}
    genuine |= {sha for (sha,) in store.db.execute("SELECT body_sha256 FROM request WHERE terminal_id='T-DESK-1' AND seq=1")}
    assert approved - sendable <= genuine  # nothing approved but sendable bodies and our own sales
    assert verify_books(store).is_ok
    (rows,) = store.db.execute("SELECT COUNT(*) FROM refusal").fetchone()
    assert rows <= REFUSAL_SAMPLE_CAP + 1
    with capsys.disabled():
        print(f"\nthrough Mosquitto: {sent:,} signed payloads in {time.monotonic() - started:.0f} s; ledger alive; "
              f"refusal rows kept {rows:,}")
