"""The tap's protocol subset (tap/) is byte-identical to protocol/ on everything it sends and
receives: the same vectors, computed by protocol/, pass under CPython, the MicroPython unix port and
the WebAssembly port (tests/helpers/tap_vector_check.py prints one line per disagreement)."""

import re
import runpy

import pytest

from tools import micropython_ports as micropython

from .helpers import tap_vectors


@pytest.fixture(scope="module")
def vectors():
    return tap_vectors.build()


def _verdict(output: str) -> tuple[int, int]:
    match = re.search(r"checked (\d+) failed (\d+)", output)
    assert match, output[-2000:]
    return int(match.group(1)), int(match.group(2))


def test_the_vectors_cover_refusals_and_acceptances(vectors):
    decoded = {case["outcome"][0] if case["outcome"][0] == "ok" else case["outcome"][1] for case in vectors["decode"]}
    assert {"ok", "MALFORMED_BODY", "DUPLICATE_FIELD", "FLOAT_NOT_ALLOWED", "NAN_NOT_ALLOWED", "NUMBER_TOO_LONG",
            "VALUE_OUT_OF_RANGE", "STRING_TOO_LONG", "TOO_MANY_FIELDS", "BAD_FIELD_NAME", "TOO_DEEP"} <= decoded
    replies = {case["outcome"][1] if case["outcome"][0] == "err" else "ok" for case in vectors["replies"]}
    assert {"ok", "WRONG_TYPE", "VALUE_OUT_OF_RANGE", "MISSING_FIELD", "UNKNOWN_FIELD", "UNKNOWN_TYPE"} <= replies
    splits = {case["split"] for case in vectors["envelopes"]}
    assert {None, "TRUNCATED", "BAD_MAGIC", "UNSUPPORTED_VERSION", "UNSUPPORTED_ALGORITHM", "BAD_KEY_ID", "OVERSIZE"} <= splits
    assert any(case.get("verify") == "BAD_SIGNATURE" for case in vectors["envelopes"])


def test_cpython_runs_the_vectors_against_protocol(vectors, tmp_path, capsys):
    script = tmp_path / "check.py"
    script.write_text(tap_vectors.checker_script(vectors, None), encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")
    checked, failed = _verdict(capsys.readouterr().out)
    assert failed == 0 and checked > 1000


def test_the_micropython_unix_port_runs_the_vectors(vectors, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(tap_vectors.checker_script(vectors, None), encoding="utf-8")
    run = micropython.run_unix(script)
    checked, failed = _verdict(run.stdout + run.stderr)
    assert failed == 0 and checked > 1000, run.stdout
    assert "ed25519 python" in run.stdout  # the tap's own Python; tests/test_tap_native.py runs the C module


def test_the_webassembly_port_runs_the_vectors(vectors, tmp_path):
    script = tmp_path / "check.py"
    script.write_text(tap_vectors.checker_script(vectors, None), encoding="utf-8")
    run = micropython.run_wasm(script)
    checked, failed = _verdict(run.stdout + run.stderr)
    assert failed == 0 and checked > 1000, run.stdout


def test_a_flipped_byte_in_a_vector_is_caught(vectors, tmp_path):
    """The checker can fail: a vector whose expected bytes are wrong is reported."""
    vectors = dict(vectors, encode=[dict(vectors["encode"][0], bytes="00" + vectors["encode"][0]["bytes"][2:])])
    script = tmp_path / "check.py"
    script.write_text(tap_vectors.checker_script(vectors, None), encoding="utf-8")
    run = micropython.run_unix(script)
    assert _verdict(run.stdout)[1] == 1 and "FAIL encode 0" in run.stdout


def test_the_tap_knows_every_reason_outcome_charge_mode_and_staff_role_protocol_has():
    """A Result with a reason the tap does not list would be dropped as VALUE_OUT_OF_RANGE."""
    from protocol.messages import ChargeMode, StaffRole
    from protocol.reasons import Outcome, Reason
    from tap import messages

    for words, enum in ((messages.REASONS, Reason), (messages.OUTCOMES, Outcome),
                        (messages.CHARGE_MODES, ChargeMode), (messages.STAFF_ROLES, StaffRole)):
        assert words.split() == [member.value for member in enum] and words[0] == words[-1] == " ", enum


def test_the_fixed_base_table_is_the_one_the_code_builds():
    from tools import tap_table

    assert tap_table.main([]) == 0


def test_sha512_of_parts_in_place_equals_the_digest_of_them_joined():
    import hashlib
    import random

    from tap import sha512

    chance = random.Random(512)
    for sizes in ([0], [127, 1], [128], [1, 127, 128, 129], [200, 0, 57, 300], [5] * 40):
        parts = tuple(bytes(chance.randrange(256) for _ in range(size)) for size in sizes)
        assert sha512.digest(parts) == hashlib.sha512(b"".join(parts)).digest(), sizes
