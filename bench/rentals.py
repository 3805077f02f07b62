"""The rental desk's own figures (issue 13): checking a voucher, and a scan reaching the screen.

1. Voucher verification on the terminal: ``protocol.voucher.verify_voucher`` (decode, parse, the
   signature, park and expiry) p50/p99, beside its floor measured in the same run: one bare Ed25519
   verification (PyNaCl) of a message as long as the voucher's signed part.
2. Scan → screen, for each scanner kind: a voucher "scanned" on the emulated USB keyboard-wedge
   scanner (evdev records into a pipe) or serial scanner (bytes + CR LF on a pty), read by the real
   driver, handed to the rental desk's state machine (offline: it verifies the voucher itself), and
   its screen rendered for the 128 x 64 panel and sent to the emulated SSD1306 over its I2C model —
   beside the floor of the last step alone (the same screen rendered and sent).

The emulators run in the same process (their writing is inside the scan figure; on a desk the
scanner's own USB or UART time replaces it). Figures go to the issue notes; tests never time.

Run: tools/dev.sh bench rentals [--runs 2000] [--scans 200]
"""

import argparse
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host_sim.receipt_pictures import LEDGER_TIME_MS, rental_desk  # noqa: E402
from protocol.voucher import Voucher, make_voucher, verify_voucher  # noqa: E402
from terminal.app import render_for_display  # noqa: E402
from terminal.events import KeyPressed, Show  # noqa: E402
from terminal.hal.factory import make_hardware  # noqa: E402
from terminal.rental import RentalState, Scanned  # noqa: E402

DAY_MS = 86_400_000


def percentiles(times_s: list[float], unit: str = "µs") -> str:
    ordered = sorted(times_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    scale = {"µs": 1e6, "ms": 1e3}[unit]
    return f"p50 {statistics.median(ordered) * scale:7.1f} {unit}  p99 {p99 * scale:7.1f} {unit}"


def timed(call, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def voucher_figures(runs: int) -> None:
    _, key = rental_desk()
    token = make_voucher(Voucher("P1", "D1042", "rod", LEDGER_TIME_MS // 1000 * 1000 + 3 * DAY_MS, "P1-voucher-1"), key)
    verify_key = key.verify_key
    voucher_s = timed(lambda: verify_voucher(token, verify_key, LEDGER_TIME_MS), runs)
    # The floor: one Ed25519 verification of a message the length of the voucher's signed part
    # (the token is base32 of signed part + 64-byte signature).
    signed = key.sign(bytes(len(token[len("FPV1:"):]) * 5 // 8 - 64))
    floor_s = timed(lambda: verify_key.verify(signed), runs)
    print(f"voucher ({len(token)} characters) verify_voucher     {percentiles(voucher_s)}")
    print(f"floor: one bare Ed25519 verify (PyNaCl)    {percentiles(floor_s)}")


def scan_figures(scanner_kind: str, scans: int) -> None:
    desk, key = rental_desk()
    # Offline, the desk decides on the voucher by itself: the figure is the terminal's own work, with
    # no ledger round trip in it (online it may ask the ledger about the voucher first).
    desk.is_online = False
    token = make_voucher(Voucher("P1", "D1042", "rod", LEDGER_TIME_MS // 1000 * 1000 + 3 * DAY_MS, "P1-voucher-1"), key)
    hardware = make_hardware("sim", config={"scanner": scanner_kind})
    try:
        emulated, driver, display = hardware.sim.scanner, hardware.scanner, hardware.display
        scan_s, render_s = [], []
        for _ in range(scans):
            started = time.perf_counter()
            emulated.scan(token)
            text = None
            while text is None:
                text = driver.read_scan(timeout_s=1.0)
            (show,) = [effect for effect in desk.handle(Scanned(text, LEDGER_TIME_MS)) if isinstance(effect, Show)]
            display.show(render_for_display(show, display.size))
            scan_s.append(time.perf_counter() - started)
            if desk.state != RentalState.VOUCHER:
                raise RuntimeError(f"the desk did not accept the voucher: {show}")
            started = time.perf_counter()
            display.show(render_for_display(show, display.size))
            render_s.append(time.perf_counter() - started)
            desk.handle(KeyPressed("CANCEL"))  # back to IDLE for the next visitor
        print(f"scan → screen, {scanner_kind:<6} scanner           {percentiles(scan_s, 'ms')}")
        print(f"floor: the same screen rendered and sent  {percentiles(render_s, 'ms')}")
    finally:
        hardware.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="voucher verifications (and floor verifications)")
    parser.add_argument("--scans", type=int, default=200, help="scans per scanner kind")
    args = parser.parse_args()
    voucher_figures(args.runs)
    for scanner_kind in ("evdev", "serial"):
        scan_figures(scanner_kind, args.scans)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
