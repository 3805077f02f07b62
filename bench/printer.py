"""Bytes and seconds on the wire per receipt copy, per printer profile, text or raster, per baud rate,
and what an "auto" profile sends at each speed.

    .venv/bin/python bench/printer.py

The seconds are the serial line's (10 bits a byte), the floor of what a cashier waits: a printer that
prints slower than the line feeds it holds the line with flow control and takes longer.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.receipt import sample_receipt  # noqa: E402
from terminal.drivers.escpos import encode_cut, encode_receipt  # noqa: E402
from terminal.printer_profiles import PROFILE_58MM_AUTO, PROFILE_80MM_AUTO, choose_text_mode, link_seconds  # noqa: E402

BAUDS = (9_600, 19_200, 38_400, 115_200)


def main() -> None:
    receipt = sample_receipt(1)
    print(f"{'profile':<10} {'mode':<8} {'bytes':>7}  " + "  ".join(f"{baud:>8} bd" for baud in BAUDS))
    for auto in (PROFILE_58MM_AUTO, PROFILE_80MM_AUTO):
        sizes = {}
        for mode in ("gb18030", "raster"):
            profile = replace(auto, text_mode=mode)
            sizes[mode] = len(encode_receipt(receipt, profile) + encode_cut(profile))
            seconds = "  ".join(f"{link_seconds(sizes[mode], baud):>9.1f}s" for baud in BAUDS)
            print(f"{auto.width_dots:>4} dots  {mode:<8} {sizes[mode]:>7}  {seconds}")
        picks = "  ".join(f"{choose_text_mode(auto, raster_bytes=sizes['raster'], baud=baud):>10}" for baud in BAUDS)
        print(f"{auto.width_dots:>4} dots  {'auto':<8} {'':>7}  {picks}")


if __name__ == "__main__":
    main()
