"""One printer profile drives both our driver and the emulated printer: paper width, cutter, code
pages, fonts, fastest baud, and for an "auto" profile whether a receipt goes as text or as a picture
at the link's speed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from host_sim.devices.escpos_parser import BAD_PARAMETER
from host_sim.devices.printer import EmulatedPrinter
from terminal.drivers.escpos import EscPosPrinter, encode_receipt, open_serial
from terminal.errors import PrinterError
from terminal.printer_profiles import (
    PROFILE_58MM_AUTO,
    PROFILE_58MM_TEXT,
    PROFILE_80MM_AUTO,
    PROFILE_80MM_RASTER,
    PROFILES,
    RASTER_MAX_SECONDS,
    choose_text_mode,
    link_seconds,
)

from .helpers.receipts import fishing_charge

RASTER_RECEIPT_BYTES = 39_000  # the bench figure for one raster receipt


def test_a_byte_takes_ten_bits_on_the_wire():
    assert link_seconds(1920, 19_200) == 1.0


@pytest.mark.parametrize(
    ("profile", "baud", "expected"),
    [
        (PROFILE_80MM_AUTO, 19_200, "gb18030"),  # ~20 s as a picture: the printer's font instead
        (PROFILE_80MM_AUTO, 115_200, "raster"),  # ~3.4 s: the picture
        (PROFILE_80MM_AUTO, None, "raster"),  # USB or a test double: no baud, counts as fast
        (replace(PROFILE_80MM_AUTO, has_chinese_font=False), 9_600, "raster"),  # no font to fall back on
        (replace(PROFILE_80MM_AUTO, max_baud=19_200), 115_200, "gb18030"),  # the printer's limit rules
        (PROFILE_58MM_TEXT, 115_200, "gb18030"),  # a fixed choice stays
        (PROFILE_80MM_RASTER, 9_600, "raster"),
    ],
)
def test_an_auto_profile_sends_a_picture_only_when_the_link_carries_it_in_time(profile, baud, expected):
    assert choose_text_mode(profile, raster_bytes=RASTER_RECEIPT_BYTES, baud=baud) == expected


def test_the_raster_time_limit_sits_between_the_slow_and_the_fast_link():
    assert link_seconds(RASTER_RECEIPT_BYTES, 115_200) < RASTER_MAX_SECONDS < link_seconds(RASTER_RECEIPT_BYTES, 19_200)


@pytest.mark.parametrize(("baud", "is_text"), [(19_200, True), (115_200, False)])
def test_the_driver_on_an_auto_profile_picks_text_or_raster_by_the_ports_baud(baud, is_text):
    with EmulatedPrinter.for_profile(PROFILE_80MM_AUTO) as emulator:
        printer = EscPosPrinter(open_serial(emulator.port_name, baud), PROFILE_80MM_AUTO)
        printer.print_receipt(fishing_charge())
        printer.cut()
        assert emulator.wait_until(lambda e: len(e.receipts) == 1)
        printer.close()
    [receipt] = emulator.receipts
    assert bool(receipt.text_lines) == is_text
    assert bool(receipt.images) == (not is_text)
    assert emulator.command_errors == []


def test_a_port_faster_than_the_printer_takes_is_refused_in_one_line():
    with EmulatedPrinter.for_profile(PROFILE_58MM_TEXT) as emulator:
        port = open_serial(emulator.port_name, 115_200)
        with pytest.raises(PrinterError, match="at most 19200 baud, the port is set to 115200"):
            EscPosPrinter(port, PROFILE_58MM_TEXT)
        port.close()


def test_the_emulator_built_from_a_profile_has_its_paper_cutter_and_code_pages():
    emulator = EmulatedPrinter.for_profile(PROFILE_58MM_TEXT)
    assert (emulator.width_dots, emulator.has_cutter) == (384, False)
    emulator.feed(b"\x1b@\x1c.\x1bt\x12x\n")  # CP852 (ESC t 18): not on a cheap 58 mm printer
    assert [error.code for error in emulator.command_errors] == [BAD_PARAMETER]
    assert emulator.current_receipt.text_lines == ["x"]


def test_a_printer_without_font_b_prints_font_a_where_b_is_asked_for():
    emulator = EmulatedPrinter.for_profile(replace(PROFILE_58MM_AUTO, fonts=("A",)))
    emulator.feed(b"\x1bM\x01ab\n")
    [line] = emulator.current_receipt.lines
    assert line.runs[0].style.font == "A" and emulator.current_receipt.bands[0].height == 30


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_our_receipt_prints_on_the_printer_of_every_profile_without_a_command_error(profile):
    emulator = EmulatedPrinter.for_profile(profile)
    for copy in fishing_charge().copies():
        emulator.feed(encode_receipt(copy, profile, baud=19_200))
    assert emulator.command_errors == []
    printed = emulator.current_receipt  # two copies, no cut sent
    if profile.text_mode == "raster":  # at 19,200 baud an "auto" receipt is text
        # both copies, back to back without a cut, are one picture the paper's width
        assert printed.text_lines == [] and [image.width_dots for image in printed.images] == [profile.width_dots]
    else:
        assert sum("30.00" in line for line in printed.text_lines) >= 2
