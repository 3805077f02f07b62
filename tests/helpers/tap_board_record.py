"""Records a whole sale by the tap's board boot (tap.board.main) in CPython, for
tests/helpers/tap_board_replay.py to replay on the MicroPython ports: the MFRC522 on SPI is
host_sim's byte-level emulation with two park cards tapped one after the other, the broker is the
scripted one (tests/helpers/tap_broker_script.py) with the ledger's answers signed by protocol/
under the scenario's fixed ledger keys (tests/helpers/tap_scenario.py), the clock and random
source are scripted. CPython has no framebuf, so the recording's board has no display; the
replay's has one (its I2C bytes go to the SSD1306 emulation afterwards).

    .venv/bin/python tests/helpers/tap_board_record.py FOLDER   (bench/tap_heap.py runs it so)
"""

import gc
import json
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from host_sim.devices.mfrc522 import FakeSpiDev  # noqa: E402
from host_sim.devices.mifare import TRANSPORT_ACCESS_BYTES, TRANSPORT_KEY, MifareClassic1K  # noqa: E402
from protocol import topics  # noqa: E402
from protocol.card_record import RECORD_BLOCKS, sector_key  # noqa: E402
from tap import board, net, reboots  # noqa: E402

from tests.helpers import tap_scenario as scenario  # noqa: E402
from tests.helpers.tap_broker_script import BrokerStream  # noqa: E402

CARDS = (("C00001", "04a1b2c3"), ("C00002", "04a1b2c4"))  # both sold the scenario's fixed 15.00
PINS = {"green": 14, "red": 15, "buzzer": 16}
SPI_PINS = {"id": 0, "sck": 2, "mosi": 3, "miso": 4, "cs": 5}
DISPLAY = {"i2c": 0, "sda": 8, "scl": 9, "height": 32}
REQA_INTO_FIFO = b"\x12\x26"


class _Finished(BaseException):
    pass


def park_card(no: str, uid: bytes) -> MifareClassic1K:
    """A scenario park card as the desk's writer leaves it: the record, sectors under its own key A."""
    uid, record = scenario.card(no, uid)
    virtual = MifareClassic1K(uid, name=no)
    for index, block in enumerate(RECORD_BLOCKS):
        virtual.set_block(block, record[index * 16:(index + 1) * 16])
    key = sector_key(bytes.fromhex(scenario.bundle()["card_key_master"]), uid)
    for sector in (1, 2):
        virtual.set_sector_trailer(sector, key_a=key, access_bytes=TRANSPORT_ACCESS_BYTES, key_b=TRANSPORT_KEY)
    return virtual


class _Clock:
    """As the replay's Clock: 1 ms a read and each sleep; a sleep also moves the emulated chip's time."""

    def __init__(self, spi: FakeSpiDev):
        self.now = 1000
        self.spi = spi

    def ticks_ms(self):
        self.now += 1
        return self.now

    @staticmethod
    def ticks_diff(new, old):
        return new - old

    def sleep_ms(self, ms):
        self.now += ms
        self.spi.clock.sleep(ms / 1000)


class _Pin:
    OUT = 1

    def __init__(self, number, mode=None, value=None):
        self.number = number

    def value(self, level):
        if self.number != SPI_PINS["cs"]:  # the LEDs and buzzer, not the reader's chip select
            _Machine.pin_writes.append(f"{self.number}={level}")


class _Machine:
    """machine for the board: the SPI bus is the emulated MFRC522. The reader's polls script the
    taps: the first card lies on it from the start, the second replaces it before the third
    poll, and the fifth poll ends the run."""
    Pin = _Pin
    pin_writes: list = []
    spi_log: list = []
    fake: FakeSpiDev = None
    polls = 0

    class SPI:
        def __init__(self, *args, **kwargs):
            pass

        def write_readinto(self, data, answer):
            data = bytes(data)
            if data == REQA_INTO_FIFO:
                _Machine.polls += 1
                if _Machine.polls == 3:
                    _Machine.fake.field.remove()
                    _Machine.fake.field.present(park_card(CARDS[1][0], bytes.fromhex(CARDS[1][1])))
                elif _Machine.polls == 5:
                    raise _Finished()
            miso = bytes(_Machine.fake.xfer2(list(data)))
            answer[:] = miso
            _Machine.spi_log.append((data, miso))

    @staticmethod
    def reset():
        raise AssertionError("the recorded board crashed")


class _Network:
    STA_IF = 0

    class WLAN:
        def __init__(self, interface):
            pass

        def active(self, on):
            pass

        def connect(self, ssid, password):
            pass


def record(folder: Path) -> dict:
    """Run the board's boot and loop over the emulations; write bundle.json, tap_board.json,
    spi.log and mqtt.log into ``folder`` (the replay's files) and return what the recording
    saw: the ledger's requests' types, the pin writes, the outcomes shown."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"wifi": {"ssid": "park", "password": "x" * 12}, "spi": SPI_PINS, "pins": PINS}
    (folder / "bundle.json").write_text(json.dumps(scenario.bundle()), encoding="utf-8")
    (folder / "tap_board.json").write_text(json.dumps(settings), encoding="utf-8")
    ledger = scenario.Ledger()
    stream = BrokerStream(ledger, {topics.config(scenario.PARK, scenario.TAP): scenario.config(),
                                   topics.blocklist(scenario.PARK): scenario.blocklist([])})
    fake = FakeSpiDev(0, 0)
    fake.field.present(park_card(CARDS[0][0], bytes.fromhex(CARDS[0][1])))
    _Machine.fake, _Machine.polls, _Machine.spi_log, _Machine.pin_writes = fake, 0, [], []
    saved = (board.BUNDLE_PATH, board.BOARD_PATH, board.STATE_PATH, reboots.BOOTS_PATH, net.connect)
    board.BUNDLE_PATH, board.BOARD_PATH = str(folder / "bundle.json"), str(folder / "tap_board.json")
    board.STATE_PATH, reboots.BOOTS_PATH = str(folder / "recorded_state.json"), str(folder / "recorded_boots.json")
    net.connect = lambda host, port, tls_ca: stream
    gc.threshold = lambda bytes_: None  # MicroPython's; CPython collects by its own rules
    try:
        board.main(_Machine, _Clock(fake), _Network, scenario.fixed_random)
    except _Finished:
        pass
    finally:
        board.BUNDLE_PATH, board.BOARD_PATH, board.STATE_PATH, reboots.BOOTS_PATH, net.connect = saved
        del gc.threshold
    (folder / "spi.log").write_text("".join(f"{mosi.hex()} {miso.hex()}\n" for mosi, miso in _Machine.spi_log))
    (folder / "mqtt.log").write_text("".join(f"{direction} {data.hex()}\n" for direction, data in stream.log))
    return {"requests": [message.TYPE for message in ledger.requests], "pins": list(_Machine.pin_writes),
            "balance_fen": ledger.balance_fen, "spi_exchanges": len(_Machine.spi_log)}


def with_display(folder: Path) -> None:
    """The replay's board settings: the recording's, with a 128x32 SSD1306 on I2C."""
    settings = json.loads((folder / "tap_board.json").read_text(encoding="utf-8"))
    settings["display"] = DISPLAY
    (folder / "tap_board.json").write_text(json.dumps(settings), encoding="utf-8")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(json.dumps(record(out)))
    with_display(out)
