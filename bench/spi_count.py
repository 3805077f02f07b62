"""SPI transactions per idle poll and per card read, against the MFRC522 emulation.

Runs the real driver (terminal/drivers/mfrc522.py) over host_sim's FakeSpiDev with a virtual clock,
so the counts are exact and repeatable. Wall time is this machine's Python cost per read (the
emulator's simulated air and bus time is not slept); on a Pi add the bus and air time shown.

    .venv/bin/python bench/spi_count.py [--rounds N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from host_sim.devices.mfrc522 import FakeSpiDev  # noqa: E402
from host_sim.devices.mifare import MifareClassic1K  # noqa: E402
from terminal.drivers.mfrc522 import Mfrc522CardReader  # noqa: E402
from terminal.hal.card_reader import TRANSPORT_KEY, sector_blocks  # noqa: E402

# The targets the driver is held to (team brief): an idle loop polls many times a second on a Pi
# Zero-class board, and a tap must feel instant.
IDLE_POLL_TARGET = 20
FULL_READ_TARGET = 150
RECORD_SECTOR = 1


def measure(action, spi: FakeSpiDev) -> tuple[int, float]:
    """SPI transactions and simulated seconds (bus + air + driver sleeps) one action takes."""
    count, simulated_s = spi.transaction_count, spi.clock.now()
    action()
    return spi.transaction_count - count, spi.clock.now() - simulated_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="reads per UID size for the wall time")
    rounds = parser.parse_args().rounds

    spi = FakeSpiDev(0, 0)
    reader = Mfrc522CardReader(spi, sleep=spi.clock.sleep)
    idle_count, idle_simulated_s = measure(reader.poll, spi)
    print(f"{'what':44} {'SPI transactions':>17} {'target':>7} {'simulated ms':>13} {'wall ms':>8}")
    print(f"{'idle poll, no card':44} {idle_count:>17} {'<= ' + str(IDLE_POLL_TARGET):>7} "
          f"{idle_simulated_s * 1000:>13.2f} {'':>8}")  # fmt: skip

    data_blocks = list(sector_blocks(RECORD_SECTOR))[:3]
    whole_sector = list(sector_blocks(RECORD_SECTOR))
    for uid_hex in ("A1B2C3D4", "04A1B2C3D4E5F6"):
        for blocks in (data_blocks, whole_sector):

            def read_card(blocks: list[int] = blocks) -> None:  # UID + one sector; halt counted apart
                reader.read_blocks(reader.poll(), blocks, TRANSPORT_KEY)

            card = MifareClassic1K(bytes.fromhex(uid_hex))
            spi.field.present(card)
            count, simulated_s = measure(read_card, spi)
            halt_count, _ = measure(reader.halt, spi)
            started = time.perf_counter()
            for _ in range(rounds):
                spi.field.remove()
                spi.field.present(card)  # a new tap: the halted card wakes up idle again
                read_card()
                reader.halt()
            wall_ms = (time.perf_counter() - started) / rounds * 1000
            spi.field.remove()
            label = f"card read: {len(uid_hex) // 2}-byte UID + {len(blocks)} blocks"
            print(f"{label:44} {count:>17} {'<= ' + str(FULL_READ_TARGET):>7} {simulated_s * 1000:>13.2f} "
                  f"{wall_ms:>8.2f}")  # fmt: skip
    print(f"{'halt after a read':44} {halt_count:>17} {'':>7}")
    print("\nwall ms: Python time per poll + read + halt against the emulator on this machine.")


if __name__ == "__main__":
    main()
