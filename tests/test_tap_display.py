"""The tap's SSD1306 driver (tap/ssd1306.py) at the byte level: it runs on the MicroPython unix
port (framebuf is MicroPython's), behind tap.hal.PinHal as the application shows an outcome; its
I2C transactions go, byte for byte, into host_sim's emulated controller on a 128x64 and a 128x32
module, whose panel is then read back as text with framebuf's own 8x8 glyphs."""

import pytest

from host_sim.devices.ssd1306 import EmulatedSsd1306
from host_sim.devices.ssd1306_128x32 import EmulatedSsd1306x32
from tap import ssd1306

from tools import micropython_ports as micropython

APPROVED = ("已付 Paid 15.00", "余额 Balance 85.00")
DECLINED = ("拒绝 Declined: INSUFFICIENT_FUNDS",)

_SCRIPT = """
import framebuf
from tap import hal, ssd1306

cell = bytearray(8)
glyph = framebuf.FrameBuffer(cell, 8, 8, framebuf.MONO_VLSB)
for code in range(32, 127):
    glyph.fill(0)
    glyph.text(chr(code), 0, 0, 1)
    print("GLYPH", code, bytes(cell).hex())


class Pin:
    def __init__(self, name):
        self.name = name

    def value(self, level):
        print("PIN", self.name, level)


for height in (64, 32):
    for outcome, lines in SHOWN:
        written = []
        outputs = hal.PinHal(Pin("green"), Pin("red"), display=ssd1306.Ssd1306(written.append, height))
        outputs.show(outcome, lines)
        for transaction in written:
            print("I2C", height, outcome, bytes(transaction).hex())
"""


@pytest.fixture(scope="module")
def board_output(tmp_path_factory):
    script = tmp_path_factory.mktemp("display") / "display.py"
    script.write_text(f"SHOWN = {[('approved', APPROVED), ('declined', DECLINED)]!r}\n" + _SCRIPT, encoding="utf-8")
    run = micropython.run_unix(script, heap="96K")
    assert run.returncode == 0, run.stdout + run.stderr
    glyphs, transactions, pins = {}, {}, []
    for line in run.stdout.splitlines():
        kind, *rest = line.split()
        if kind == "GLYPH":
            glyphs[bytes.fromhex(rest[1])] = chr(int(rest[0]))
        elif kind == "I2C":
            transactions.setdefault((int(rest[0]), rest[1]), []).append(bytes.fromhex(rest[2]))
        elif kind == "PIN":
            pins.append((rest[0], int(rest[1])))
    return glyphs, transactions, pins


def _panel_rows(image, glyphs) -> list[str]:
    """The panel read back as text: each 8x8 cell's column bytes (MONO_VLSB) looked up in
    framebuf's glyphs; a cell matching none is '?'."""
    pixels = image.load()
    rows = []
    for top in range(0, image.height, 8):
        row = ""
        for left in range(0, image.width, 8):
            cell = bytes(sum((1 if pixels[left + x, top + bit] else 0) << bit for bit in range(8)) for x in range(8))
            row += glyphs.get(cell, "?")
        rows.append(row.rstrip())
    return rows


def _feed(oled, transactions):
    for transaction in transactions:
        assert oled.write(transaction) == len(transaction)
    return oled


@pytest.mark.parametrize("height, emulator", [(64, EmulatedSsd1306), (32, EmulatedSsd1306x32)])
def test_the_result_shows_on_the_emulated_panel_in_the_ascii_half_of_each_line(board_output, height, emulator):
    glyphs, transactions, _ = board_output
    oled = _feed(emulator(), transactions[(height, "approved")])
    assert oled.is_panel_lit and not oled.unknown_commands and not oled.mistakes
    assert oled.refused_transaction_count == 0
    assert oled.largest_transaction_bytes == 129  # one page of RAM a transaction
    rows = _panel_rows(oled.to_image(), glyphs)
    assert rows == ["Paid 15.00", "Balance 85.00"] + [""] * (height // 8 - 2)


@pytest.mark.parametrize("height, emulator", [(64, EmulatedSsd1306), (32, EmulatedSsd1306x32)])
def test_a_decline_wraps_at_the_panel_s_16_columns(board_output, height, emulator):
    glyphs, transactions, _ = board_output
    rows = _panel_rows(_feed(emulator(), transactions[(height, "declined")]).to_image(), glyphs)
    assert rows[:3] == ["Declined:", "INSUFFICIENT_FUN", "DS"] and set(rows[3:]) == {""}


def test_the_leds_follow_the_outcome(board_output):
    _, _, pins = board_output
    assert pins[:4] == [("green", 1), ("red", 0), ("green", 0), ("red", 1)]


def test_a_64_row_set_up_on_a_32_row_module_garbles_the_panel(board_output):
    glyphs, transactions, _ = board_output
    rows = _panel_rows(_feed(EmulatedSsd1306x32(), transactions[(64, "approved")]).to_image(), glyphs)
    assert rows[:2] != ["Paid 15.00", "Balance 85.00"]


def test_panel_text_keeps_the_ascii_half_and_wrap_breaks_at_spaces():
    assert ssd1306.panel_text("离线已付 Paid offline 15.00") == "Paid offline 15.00"
    assert ssd1306.wrap(["离线已付 Paid offline 15.00", "", "无应答 No answer"]) == ["Paid offline", "15.00", "No answer"]


def test_the_board_settings_check_an_optional_display():
    from tap.settings import board_problems

    settings = {"wifi": {"ssid": "park", "password": "x"}, "spi": {"id": 0, "sck": 2, "mosi": 3, "miso": 4, "cs": 5},
                "pins": {"green": 14, "red": 15, "buzzer": 16}}
    assert board_problems(settings) == []
    assert board_problems(dict(settings, display={"i2c": 0, "sda": 8, "scl": 9, "height": 32})) == []
    assert board_problems(dict(settings, display={"i2c": 0, "sda": 8})) == ["display needs i2c, sda and scl pin numbers"]
    assert board_problems(dict(settings, display={"i2c": 0, "sda": 8, "scl": 9, "height": 48})) == [
        "display.height must be 32 or 64"]
