"""The whole tap on the MicroPython ports: the board's own boot (tap.board.main — the reboot guard,
Wi-Fi, the SSD1306 on I2C, the MFRC522 on SPI, the app and the loop), compiled with mpy-cross as
flash.sh does, selling to two cards. The MFRC522's answers and the broker's bytes are those of a
CPython recording of the same boot (tests/helpers/tap_board_record.py: host_sim's byte-level chip
and card emulation, the scripted broker with Results signed by protocol/ under the scenario's
ledger keys); every byte the board writes to the reader and the broker must equal the
recording's, and its display's I2C bytes drive host_sim's SSD1306 emulation.

The heap: on the 64-bit unix port the whole tap needs 128 KiB today (120 KiB drops the config);
96 KiB is the acceptance's figure, kept as a strict expected failure so that the day it fits, the
marker must go. The WebAssembly port (npm, PyScript variant) cannot bound a heap: it grows its heap
instead of collecting while a script runs, so there it proves the 32-bit byte-for-byte run only."""

import re
import shutil

import pytest

from host_sim.devices.ssd1306_128x32 import EmulatedSsd1306x32

from tools import micropython_ports as micropython

from .helpers import tap_board_record

REPLAY = micropython.ROOT / "tests" / "helpers" / "tap_board_replay.py"
RECORDED_FILES = ("bundle.json", "tap_board.json", "spi.log", "mqtt.log")
UNIX_HEAP_KIB = 128  # the smallest multiple of 8 KiB in which the whole tap completes today


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("recording")
    seen = tap_board_record.record(folder)
    tap_board_record.with_display(folder)
    assert seen["requests"] == ["hello", "charge", "charge"] and seen["balance_fen"] == 7000
    return folder, seen


def _board(recording, tmp_path):
    folder, _ = recording
    board = tmp_path / "board"
    board.mkdir()
    for name in RECORDED_FILES:
        shutil.copyfile(folder / name, board / name)
    micropython.compile_tap(board)
    micropython.compile_main(REPLAY, board)
    return board


def _outcome(run) -> dict:
    out = run.stdout + run.stderr
    fields = {"ended": re.search(r"ENDED (\w+)", out), "spi": re.search(r"SPI exchanges (\d+) mismatches (\d+)", out),
              "mqtt": re.search(r"MQTT mismatches (\d+) finished (\w+)", out), "pins": re.search(r"PINS ?(.*)", out)}
    assert all(fields.values()), out
    return {"ended": fields["ended"][1], "spi_exchanges": int(fields["spi"][1]), "spi_mismatches": int(fields["spi"][2]),
            "mqtt_mismatches": int(fields["mqtt"][1]), "mqtt_finished": fields["mqtt"][2] == "True",
            "pins": fields["pins"][1].split(), "out": out}


def _assert_whole_sale(outcome, recording, board):
    _, seen = recording
    assert outcome["ended"] == "finished", outcome["out"]
    assert (outcome["spi_exchanges"], outcome["spi_mismatches"]) == (seen["spi_exchanges"], 0), outcome["out"]
    assert (outcome["mqtt_mismatches"], outcome["mqtt_finished"]) == (0, True), outcome["out"]
    assert outcome["pins"] == seen["pins"] == ["14=1", "15=0", "16=1", "16=0"] * 2  # green and one beep, twice
    oled = EmulatedSsd1306x32()
    transactions = [bytes.fromhex(line) for line in (board / "i2c.log").read_text().split()]
    assert transactions
    for transaction in transactions:
        assert oled.write(transaction) == len(transaction)
    assert oled.is_panel_lit and not oled.unknown_commands and not oled.mistakes


def test_the_whole_tap_sells_byte_for_byte_on_the_unix_port(recording, tmp_path):
    board = _board(recording, tmp_path)
    _assert_whole_sale(_outcome(micropython.run_board("unix", board, UNIX_HEAP_KIB)), recording, board)


def test_the_whole_tap_sells_byte_for_byte_on_the_32_bit_webassembly_port(recording, tmp_path):
    board = _board(recording, tmp_path)
    _assert_whole_sale(_outcome(micropython.run_board("wasm", board, 96)), recording, board)


@pytest.mark.xfail(strict=True, reason="the whole tap (board loop and drivers) needs 128 KiB on the 64-bit unix "
                                       "port; 96 KiB is not reached yet")
def test_the_whole_tap_fits_96_kib_on_the_unix_port(recording, tmp_path):
    board = _board(recording, tmp_path)
    _assert_whole_sale(_outcome(micropython.run_board("unix", board, 96)), recording, board)


def test_a_board_that_writes_other_bytes_to_the_reader_is_caught(recording, tmp_path):
    board = _board(recording, tmp_path)
    lines = (board / "spi.log").read_text().splitlines()
    mosi, miso = lines[0].split()
    lines[0] = f"{'ff' * (len(mosi) // 2)} {miso}"
    (board / "spi.log").write_text("\n".join(lines) + "\n")
    assert _outcome(micropython.run_board("unix", board, UNIX_HEAP_KIB))["spi_mismatches"] == 1
