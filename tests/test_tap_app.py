"""The tap application (tap/app.py) on the MicroPython unix port, compiled with mpy-cross and in a
small heap, through the real Mosquitto and the real ledger: it takes the signed config, sells its
fixed amount and verifies the signed Result. Then the ledger's side: what a tap signs wrong is
refused as from any terminal."""

import hashlib
import os
import re
import shutil
from pathlib import Path

import pytest

from host_sim.rig import ParkRig, card, common, single_line
from ledger.park_home import STATION_KINDS
from ledger.verify import verify_books
from protocol.card_record import CardRecord, sign_record
from protocol.envelope import Purpose
from protocol.messages import CardIssue, Charge, MenuItem, StationSettings
from tap import canonical, ed25519, envelope, messages

from tools import micropython_ports as micropython

from .helpers.intake_driver import Ledger

TERMINALS = {"T-DESK-1": "desk", "T-FISH-1": "fishing", "TAP-1": "riding"}
SESSION = micropython.ROOT / "tests" / "helpers" / "tap_unix_session.py"
# A board's heap: the whole sale (the signed config taken, tap -> sign -> publish -> the Result
# verified, twice) in 96 KiB on the 64-bit unix port, where pointers and GC blocks are twice a
# board's. bench/tap_heap.py measures the smallest heap that does it. TAP_HEAP overrides, to measure.
HEAPS = {"python": os.environ.get("TAP_HEAP", "96K"), "native": os.environ.get("TAP_HEAP", "96K")}
RIDE = MenuItem(item="ride", name="骑马 1次 Ride", price_fen=1500)


def _fixed_price(rig):
    rig.home.change_station("riding", lambda current: StationSettings(
        name=current.name, mode="fixed", menu=(RIDE,), opens=None, closes=None))


@pytest.fixture
def tap_rig(tmp_path):
    with ParkRig(tmp_path).create(TERMINALS, kinds_by_terminal={"TAP-1": STATION_KINDS["tap"]}) as park:
        _fixed_price(park)
        park.start_broker()
        park.start_ledger()
        yield park


def _issue(rig, card_no, opening_fen):
    desk = rig.link("T-DESK-1")
    visitor = card(card_no)
    issued = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                               opening_fen=opening_fen, channel="cash", payment_ref=""))
    assert issued.outcome == "approved"
    uid = bytes.fromhex(visitor.uid)
    record = sign_record(CardRecord(card_no, 1, "temporary", rig.park_id), uid,
                         rig.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key)
    return visitor, f"{uid.hex()} {record.hex()}"


@pytest.mark.parametrize("ed25519_kind", ["python", "native"])
def test_the_tap_on_the_micropython_unix_port_sells_its_fixed_amount_through_mosquitto_and_the_ledger(
        tap_rig, tmp_path, ed25519_kind):
    visitor, tap_line = _issue(tap_rig, "C00001", 10000)
    forged = tap_line[:-2] + ("00" if not tap_line.endswith("00") else "01")  # a record whose signature fails
    taps = tmp_path / "taps.txt"
    taps.write_text("\n".join([tap_line, forged, tap_line]) + "\n")
    # As on a board: the modules compiled with mpy-cross, in a fixed heap (HEAPS).
    compiled = micropython.compile_tap(tmp_path / "board")
    if ed25519_kind == "native":
        try:
            native = micropython.build_native("x64", tmp_path)
        except LookupError as missing:
            pytest.skip(str(missing))
        shutil.copyfile(native, compiled / "tap" / "ed25519_native.mpy")
    # Run from the board folder, its modules found as tap/*.mpy as on a board's root: each module's
    # path is a string in the heap, and pytest's folder names would add a kilobyte a board has not.
    run = micropython.run_unix(SESSION, tap_rig.home.bundle_path("TAP-1"), tmp_path / "tap-state.json", taps,
                               heap=HEAPS[ed25519_kind], path=Path("."), cwd=compiled)
    out = run.stdout + run.stderr
    assert "DONE" in run.stdout, out
    assert f"ED25519 {ed25519_kind}" in out, out
    assert "WELCOME True" in out and "PRICE (1500, " in out, out
    # The signed Result verified on the tap: paid, and the balance the ledger signed.
    assert re.findall(r"OUTCOME (\w+)", out) == ["approved", "error", "approved"], out
    assert "TAP approved | 已付 Paid 15.00 | 余额 Balance 85.00" in out, out
    assert "TAP approved | 已付 Paid 15.00 | 余额 Balance 70.00" in out, out
    assert "OUTBOX 0" in out and "DROPPED []" in out, out  # nothing dropped for want of heap
    assert "HEAP sold" in out, out
    # The books agree: the fishing pond then sells 10.00 of the 70.00 left.
    fishing = tap_rig.link("T-FISH-1")
    sale = fishing.submit(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=1000,
                                             lines=single_line("鱼饵", 1000)))
    assert (sale.outcome, sale.balances.fen) == ("approved", 6000)
    assert verify_books(tap_rig.reader).is_ok


# ---------------------------------------------------------------- the ledger's side, in process
@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS, kinds_by_terminal={"TAP-1": STATION_KINDS["tap"]})
    _fixed_price(rig)
    driver = Ledger(rig)
    assert driver.issue().outcome == "approved"
    try:
        yield driver
    finally:
        rig.close()
        driver.store.close()


def _tap_key(ledger):
    identity = ledger.rig.identity("TAP-1")
    return ed25519.SigningKey(identity.signing_key.encode()), identity.key_id


def _signed_by_the_tap(ledger, body: bytes, *, key=None):
    signing_key, key_id = _tap_key(ledger)
    topic = "fieldpos/v1/P1/t/TAP-1/req"
    return topic, envelope.seal(body, key or signing_key, key_id, envelope.REQUEST, topic)


def _tap_charge(ledger, seq, **changes) -> dict:
    fields = messages.charge_fields("P1", "TAP-1", seq, 1_780_000_000_000, False, "TAP-1", 0,
                                    {"no": "C00042", "issuance": 1, "uid": card("C00042").uid}, 1500, RIDE.name)
    fields.update(changes)
    fields["type"] = "charge"
    return fields


def _station_refusal(ledger, body: bytes) -> str:
    return ledger.send(*ledger.sign("T-FISH-1", body)).reason


def test_a_charge_the_tap_signs_is_approved_and_its_replay_gets_the_same_result(ledger):
    topic, payload = _signed_by_the_tap(ledger, canonical.encode(_tap_charge(ledger, 1)))
    first = ledger.send(topic, payload)
    assert (first.outcome, first.reason, first.balances.fen) == ("approved", "OK", 8500)
    again = ledger.send(topic, payload)
    assert again == first
    reused = ledger.send(*_signed_by_the_tap(ledger, canonical.encode(_tap_charge(ledger, 1, amount_fen=1500,
                                                                                   terminal_time_ms=5))))
    assert (reused.outcome, reused.reason) == ("refused", "SEQ_REUSED")


@pytest.mark.parametrize("name, body", [
    ("duplicate field", lambda fields: canonical.encode(fields)[:-1] + b',"seq":9}'),
    ("a float amount", lambda fields: canonical.encode(fields).replace(b'"amount_fen":1500', b'"amount_fen":1500.0')),
    ("lines that do not add up", lambda fields: canonical.encode(dict(fields, amount_fen=1400))),
    ("not JSON", lambda fields: b"\xff{"),
    ("an unknown field", lambda fields: canonical.encode(dict(fields, extra=1))),
])
def test_a_malformed_tap_request_gets_the_refusal_any_terminal_gets(ledger, name, body):
    tap_fields = _tap_charge(ledger, 2)
    station_fields = dict(tap_fields, terminal="T-FISH-1", operator="op-1")
    tap_reason = ledger.send(*_signed_by_the_tap(ledger, body(tap_fields))).reason
    assert tap_reason == _station_refusal(ledger, body(station_fields)) != "OK", name


def test_a_forged_tap_request_is_refused_bad_signature(ledger):
    stranger = ed25519.SigningKey(hashlib.sha256(b"not the tap's key").digest())
    result = ledger.send(*_signed_by_the_tap(ledger, canonical.encode(_tap_charge(ledger, 3)), key=stranger))
    assert (result.outcome, result.reason) == ("refused", "BAD_SIGNATURE")
