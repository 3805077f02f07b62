"""Receipt render + ESC/POS encode time, and bytes per receipt, at 58 mm and 80 mm.

    .venv/bin/python bench/receipt.py [receipt_count]

Raster: layout -> Pillow image -> GS v 0 (what a raster-profile terminal does per copy).
Text: layout -> GB18030 text + QR (native at 80 mm, a small raster at 58 mm).
The first receipt (font load, imports) is timed separately: a terminal pays it once, at its first sale.
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from terminal.hal.printer import PROFILE_58MM_RASTER, PROFILE_58MM_TEXT, PROFILE_80MM_RASTER, PROFILE_80MM_TEXT  # noqa: E402
from protocol.messages import LineItem  # noqa: E402
from terminal.receipt import ReceiptData  # noqa: E402

TARGET_MS = 30.0  # per receipt at 384 dots: the cashier should not see the printer wait for us
DEFAULT_RECEIPT_COUNT = 200


def sample_receipt(seq: int) -> ReceiptData:
    return ReceiptData(
        park_name="青山湖乐园",
        station_name="钓鱼区 Fishing",
        terminal_id="T07",
        seq=seq,
        operator="张三",
        time_text="2025-05-01 10:32",
        masked_card_number="**** 1234",
        line_items=(
            LineItem(item="钓鱼 1小时", qty=1, unit_fen=2500),
            LineItem(item="鱼饵", qty=2, unit_fen=250),
        ),
        amount_fen=3000,
        balance_after_fen=7000,
        bonus_balance_after_fen=500,
        ledger_transaction_id=f"L-{880000 + seq}",
        is_online=seq % 2 == 0,
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def measure(profile, receipt_count: int) -> tuple[float, list[float], int]:
    from terminal.drivers.escpos import encode_receipt

    started = time.perf_counter()
    encode_receipt(sample_receipt(0), profile)
    first_ms = (time.perf_counter() - started) * 1000
    durations_ms, sizes = [], []
    for seq in range(1, receipt_count + 1):
        receipt = sample_receipt(seq)
        started = time.perf_counter()
        encoded = encode_receipt(receipt, profile)
        durations_ms.append((time.perf_counter() - started) * 1000)
        sizes.append(len(encoded))
    return first_ms, sorted(durations_ms), round(statistics.mean(sizes))


def main() -> None:
    receipt_count = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_RECEIPT_COUNT
    print(f"render + encode, {receipt_count} receipts each (target <= {TARGET_MS:.0f} ms at 384 dots)")
    print(f"{'profile':<14} {'first ms':>9} {'p50 ms':>8} {'p99 ms':>8} {'bytes':>8}  at 19200 baud")
    for profile in (
        PROFILE_58MM_RASTER,
        replace(PROFILE_58MM_TEXT, has_cutter=True),
        PROFILE_80MM_RASTER,
        PROFILE_80MM_TEXT,
    ):
        first_ms, durations_ms, size_bytes = measure(profile, receipt_count)
        p50, p99 = percentile(durations_ms, 0.50), percentile(durations_ms, 0.99)
        verdict = ("ok" if p99 <= TARGET_MS else "OVER") if profile.width_dots == 384 else ""
        seconds_on_wire = size_bytes * 10 / 19_200  # 8N1: 10 bits per byte
        print(
            f"{profile.name:<14} {first_ms:>9.1f} {p50:>8.2f} {p99:>8.2f} {size_bytes:>8}  "
            f"{seconds_on_wire:>5.1f} s  {verdict}"
        )


if __name__ == "__main__":
    main()
