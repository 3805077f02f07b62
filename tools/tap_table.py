"""Write tap/ed25519_table.bin, the tap's Ed25519 fixed-base table (read by tap.ed25519_python).

    python -m tools.tap_table --write    # rewrite the file
    python -m tools.tap_table            # exit 1 if the file differs from what would be written

For k in 0..15 and j in 1..8, the affine point j * 16**(4k) * B as x then y, 32 bytes each,
little-endian: 8 KiB. It is a file, not computed on the board (seconds and ~40 KiB of temporary
integers there) and not a module (a bytes constant in a .mpy is loaded into the heap).
"""

import sys
from pathlib import Path

from tap.ed25519_python import P, _add, _double, _recover_x

TABLE_FILE = Path(__file__).resolve().parent.parent / "tap" / "ed25519_table.bin"


def build_table() -> bytes:
    base_y = 4 * pow(5, P - 2, P) % P  # RFC 8032's B: y = 4/5, x even
    x = _recover_x(base_y, 0)
    base = (x, base_y, 1, x * base_y % P)
    out = bytearray()
    for _ in range(16):
        point = base
        for _ in range(8):
            x, y, z, _t = point
            zi = pow(z, P - 2, P)
            out += (x * zi % P).to_bytes(32, "little") + (y * zi % P).to_bytes(32, "little")
            point = _add(point, base)
        for _ in range(16):
            base = _double(base)
    return bytes(out)


def main(argv: list[str]) -> int:
    table = build_table()
    if "--write" in argv:
        TABLE_FILE.write_bytes(table)
        return 0
    if not TABLE_FILE.exists() or TABLE_FILE.read_bytes() != table:
        print(f"{TABLE_FILE} is stale: run python -m tools.tap_table --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
