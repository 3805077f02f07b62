"""The ESC/POS driver: byte-exact encoder tables, then one suite run against the emulated printer on a
pty and, when ``FIELDPOS_PRINTER_PORT`` names a serial port, a real printer (``FIELDPOS_PRINTER_PROFILE``
picks its profile, default 58mm-raster). A real printer cannot be read back or have its paper pulled,
so those checks skip there: look at the paper."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import pytest

from host_sim.devices.printer import EmulatedPrinter
from terminal.drivers.escpos import (
    CHINESE_MODE_OFF,
    CHINESE_MODE_ON,
    INITIALIZE,
    PARTIAL_CUT_AFTER_FEED,
    EscPosPrinter,
    encode_cut,
    encode_native_qr,
    encode_raster,
    encode_receipt,
    encode_text,
    open_serial,
    parse_status,
    select_character_size,
)
from terminal.errors import (
    PaperOutError,
    PrinterCoverOpenError,
    PrinterError,
    PrinterOfflineError,
    UnprintableTextError,
)
from terminal.hal.printer import (
    PROFILE_58MM_RASTER,
    PROFILE_58MM_TEXT,
    PROFILE_80MM_TEXT,
    PROFILES,
    PrinterProfile,
    PrinterStatus,
)
from terminal.receipt import render_receipt_image

from .helpers.receipts import fishing_charge

REAL_PORT = os.environ.get("FIELDPOS_PRINTER_PORT")
REAL_PROFILE = PROFILES[os.environ.get("FIELDPOS_PRINTER_PROFILE", PROFILE_58MM_RASTER.name)]
FAST_STATUS_TIMEOUT_MS = 200  # an unanswered status query costs this much in the offline tests


# --- encoder: exact bytes, no I/O -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("70.00", b"70.00"),
        ("余额 70.00", CHINESE_MODE_ON + "余额".encode("gb18030") + CHINESE_MODE_OFF + b" 70.00"),
        ("¥5", CHINESE_MODE_ON + b"\xa3\xa4" + CHINESE_MODE_OFF + b"5"),  # ¥ -> full-width ￥ (A3 A4)
        ("café", b"caf" + CHINESE_MODE_ON + b"\xa8\xa6" + CHINESE_MODE_OFF),  # é in GB2312's pinyin row
    ],
)
def test_text_is_ascii_outside_and_gb18030_inside_chinese_mode(text, expected):
    assert encode_text(text) == expected


@pytest.mark.parametrize("text", ["Straße", "smile \U0001F600", "bad\x1b@name", "tab\there"])
def test_text_the_printer_cannot_print_or_that_would_be_a_command_is_refused(text):
    with pytest.raises(UnprintableTextError):
        encode_text(text)


def test_commands_are_the_bytes_of_the_epson_reference():
    assert PARTIAL_CUT_AFTER_FEED == bytes([0x1D, 0x56, 66, 0])
    assert encode_cut(PROFILE_80MM_TEXT) == PARTIAL_CUT_AFTER_FEED
    assert encode_cut(PROFILE_58MM_TEXT) == b"\x1bd\x04"  # no cutter: feed to the tear bar
    assert select_character_size(2, 2) == b"\x1d!\x11"
    assert encode_native_qr("T07-1") == (
        b"\x1d(k\x04\x001A2\x00"  # fn 165: model 2
        b"\x1d(k\x03\x001C\x06"  # fn 167: module 6 dots
        b"\x1d(k\x03\x001E1"  # fn 169: error correction M
        b"\x1d(k\x08\x001P0T07-1"  # fn 180: store, pL = 5 bytes + 3
        b"\x1d(k\x03\x001Q0"  # fn 181: print
    )


def test_raster_is_packed_one_for_black_in_bands():
    from PIL import Image

    image = Image.new("1", (16, 300), 1)
    image.putpixel((0, 0), 0)  # top-left dot black
    encoded = encode_raster(image)
    assert encoded.startswith(b"\x1dv0\x00\x02\x00\x80\x00" + b"\x80\x00")  # 2 bytes wide, 128 rows
    assert encoded.count(b"\x1dv0") == 3  # 128 + 128 + 44 rows


@pytest.mark.parametrize(
    ("printer_byte", "offline_cause_byte", "paper_byte", "expected"),
    [
        (0x12, None, 0x12, PrinterStatus(is_online=True, is_paper_out=False, is_paper_near_end=False, is_cover_open=False)),
        (0x12, None, 0x1E, PrinterStatus(is_online=True, is_paper_out=False, is_paper_near_end=True, is_cover_open=False)),
        (0x1A, 0x32, 0x7E, PrinterStatus(is_online=False, is_paper_out=True, is_paper_near_end=True, is_cover_open=False)),
        (0x1A, 0x16, 0x12, PrinterStatus(is_online=False, is_paper_out=False, is_paper_near_end=False, is_cover_open=True)),
    ],
)
def test_status_bytes_decode_per_the_epson_reference(printer_byte, offline_cause_byte, paper_byte, expected):
    assert parse_status(printer_byte, offline_cause_byte, paper_byte) == expected


def test_a_status_byte_without_the_fixed_bits_is_not_taken_for_an_answer():
    with pytest.raises(PrinterError):
        parse_status(0xFF, None, 0x12)


def test_every_receipt_starts_by_resetting_the_printer_and_leaving_chinese_mode():
    for profile in (PROFILE_58MM_TEXT, PROFILE_58MM_RASTER):
        assert encode_receipt(fishing_charge(), profile).startswith(INITIALIZE + CHINESE_MODE_OFF)


# --- one suite, emulated printer and real printer ---------------------------------------------------


class _Tee:
    """A real printer's serial port that also hands every byte written to a parser, so a test can
    read what the printer was sent."""

    def __init__(self, port, recorder: EmulatedPrinter):
        self._port, self._recorder = port, recorder

    def write(self, data: bytes):
        self._recorder.feed(bytes(data))
        return self._port.write(data)

    def __getattr__(self, name):
        return getattr(self._port, name)


@dataclass
class Rig:
    emulator: EmulatedPrinter | None
    opened: list[EscPosPrinter] = field(default_factory=list)
    sent: EmulatedPrinter | None = None  # with a real printer: every byte sent to it, parsed

    def printer(self, profile: PrinterProfile, **options) -> EscPosPrinter:
        if self.emulator is None:
            if profile.native_qr and not REAL_PROFILE.native_qr:
                pytest.skip(f"the attached printer ({REAL_PROFILE.name}) has no native QR")
            if profile.has_cutter and not REAL_PROFILE.has_cutter:
                pytest.skip(f"the attached printer ({REAL_PROFILE.name}) has no cutter")
            profile = replace(profile, width_dots=REAL_PROFILE.width_dots)
            self.sent = self.sent or EmulatedPrinter(width_dots=REAL_PROFILE.width_dots)
            printer = EscPosPrinter(_Tee(open_serial(REAL_PORT), self.sent), profile, **options)
        else:
            self.emulator.width_dots = profile.width_dots
            printer = self.emulator.open_driver(profile, **options)
        self.opened.append(printer)
        return printer

    def read_back(self) -> EmulatedPrinter:
        # A real printer cannot be read back: what was sent to it is read instead (and the tests'
        # status queries show the printer took it); check the paper too.
        return self.emulator if self.emulator is not None else self.sent

    def fault_injector(self) -> EmulatedPrinter:
        if self.emulator is None:
            pytest.skip("faults are injected only into the emulated printer")
        return self.emulator


@pytest.fixture(params=["emulator", "serial"])
def rig(request):
    if request.param == "serial":
        if not REAL_PORT:
            pytest.skip("no printer attached (set FIELDPOS_PRINTER_PORT)")
        rig = Rig(None)
    else:
        rig = Rig(EmulatedPrinter().start())
    yield rig
    for printer in rig.opened:
        printer.close()
    if rig.emulator:
        rig.emulator.close()


TEXT_WITH_CUTTER = replace(PROFILE_58MM_TEXT, has_cutter=True)


def test_text_receipt_arrives_with_its_chinese_text_decoded(rig):
    printer = rig.printer(TEXT_WITH_CUTTER)
    printer.print_receipt(fishing_charge())
    printer.cut()
    assert printer.status().is_ready  # also: the emulator has processed everything before this answer
    emulator = rig.read_back()
    [receipt] = emulator.receipts
    assert receipt.text_lines[0] == "青山湖乐园"
    assert "钓鱼区 Fishing" in receipt.text_lines
    assert emulator.command_errors == []


def test_a_printer_left_in_chinese_mode_and_bold_by_someone_else_still_prints_latin_right(rig):
    printer = rig.printer(TEXT_WITH_CUTTER)
    printer.port.write(CHINESE_MODE_ON + b"\x1bE\x01")  # what another program might leave behind
    printer.print_receipt(fishing_charge(station_name="Café Fishing"))
    printer.cut()
    printer.status()
    [receipt] = rig.read_back().receipts
    station_line = receipt.elements[1]
    assert (station_line.text, station_line.is_bold) == ("Café Fishing", False)


def test_raster_receipt_round_trips_dot_for_dot(rig):
    printer = rig.printer(PROFILE_58MM_RASTER)
    image = render_receipt_image(fishing_charge(), printer.profile.width_dots)
    printer.print_receipt(image)
    printer.cut()
    printer.status()
    [receipt] = rig.read_back().receipts
    [printed] = receipt.images
    assert printed.to_image().tobytes() == image.tobytes()


def test_native_qr_carries_the_receipt_number(rig):
    printer = rig.printer(replace(PROFILE_80MM_TEXT, width_dots=384))
    printer.print_receipt(fishing_charge())
    printer.cut()
    printer.status()
    [receipt] = rig.read_back().receipts
    assert receipt.qr_payloads == ["T07-1234"]
    assert receipt.images == []


def test_without_native_qr_the_qr_goes_as_a_small_image(rig):
    printer = rig.printer(TEXT_WITH_CUTTER)
    printer.print_receipt(fishing_charge())
    printer.cut()
    printer.status()
    [receipt] = rig.read_back().receipts
    assert receipt.qr_payloads == []
    assert len(receipt.images) == 1 and receipt.images[0].width_dots < 384


def test_each_cut_ends_one_receipt(rig):
    printer = rig.printer(TEXT_WITH_CUTTER)
    for copy in fishing_charge().copies():
        printer.print_receipt(copy)
        printer.cut()
    printer.status()
    receipts = rig.read_back().receipts
    assert [receipt.is_cut for receipt in receipts] == [True, True]
    assert ["顾客联" in receipts[0].text, "商户联" in receipts[1].text] == [True, True]


def test_text_the_printer_font_lacks_makes_that_receipt_an_image(rig):
    printer = rig.printer(TEXT_WITH_CUTTER)
    printer.print_receipt(fishing_charge(operator="Jürgen Straße"))
    printer.cut()
    printer.status()
    [receipt] = rig.read_back().receipts
    assert receipt.text_lines == [] and receipt.images[0].width_dots == printer.profile.width_dots


def test_paper_out_is_refused_before_a_line_is_printed(rig):
    emulator = rig.fault_injector()
    emulator.set_paper_out()
    printer = rig.printer(TEXT_WITH_CUTTER)
    with pytest.raises(PaperOutError) as raised:
        printer.print_receipt(fishing_charge())
    assert raised.value.code == "PAPER_OUT" and "Reprint" in str(raised.value)
    assert emulator.receipts == [] and emulator.current_receipt.elements == []


def test_cover_open_is_refused(rig):
    rig.fault_injector().set_cover_open()
    printer = rig.printer(TEXT_WITH_CUTTER)
    with pytest.raises(PrinterCoverOpenError):
        printer.print_receipt(fishing_charge())


def test_a_printer_that_does_not_answer_is_offline(rig):
    rig.fault_injector().set_unresponsive()
    printer = rig.printer(TEXT_WITH_CUTTER, status_timeout_ms=FAST_STATUS_TIMEOUT_MS)
    with pytest.raises(PrinterOfflineError) as raised:
        printer.print_receipt(fishing_charge())
    assert raised.value.code == "PRINTER_OFFLINE"


def test_paper_near_end_is_reported_and_printing_goes_on(rig):
    emulator = rig.fault_injector()
    emulator.set_paper_near_end()
    printer = rig.printer(TEXT_WITH_CUTTER)
    assert printer.status().is_paper_near_end
    printer.print_receipt(fishing_charge())
    printer.cut()
    printer.status()
    assert len(emulator.receipts) == 1


def test_paper_running_out_mid_receipt_shows_in_the_status_after_so_the_app_offers_reprint(rig):
    emulator = rig.fault_injector()
    emulator.run_out_of_paper_after_lines(5)
    printer = rig.printer(TEXT_WITH_CUTTER)
    printer.print_receipt(fishing_charge())
    printer.cut()
    assert printer.status().is_paper_out
    [torn_off] = emulator.receipts
    assert torn_off.is_incomplete and not torn_off.is_cut
    assert torn_off.text_lines[0] == "青山湖乐园" and "单号" not in torn_off.text
    emulator.load_paper()
    printer.print_receipt(fishing_charge(is_reprint=True))
    printer.cut()
    printer.status()
    assert "REPRINT 补打" in emulator.receipts[-1].text_lines


def test_power_loss_mid_receipt_loses_the_rest_and_the_next_receipt_prints_whole(rig):
    emulator = rig.fault_injector()
    printer = rig.printer(TEXT_WITH_CUTTER, status_timeout_ms=FAST_STATUS_TIMEOUT_MS)
    printer.status()
    emulator.lose_power_after_bytes(200)
    printer.print_receipt(fishing_charge())
    printer.cut()
    with pytest.raises(PrinterOfflineError):
        printer.status()
    emulator.power_on()
    printer.print_receipt(fishing_charge())
    printer.cut()
    printer.status()
    torn_off, whole = emulator.receipts
    assert torn_off.is_incomplete and "单号" not in torn_off.text
    assert whole.is_cut and "T07-1234" in whole.text


# --- the emulator's parser ----------------------------------------------------------------------------


def test_bytes_split_anywhere_parse_the_same():
    stream = b"".join(
        encode_receipt(receipt, replace(PROFILE_80MM_TEXT, width_dots=384)) + encode_cut(PROFILE_80MM_TEXT)
        for receipt in fishing_charge().copies()
    )
    whole, byte_by_byte = EmulatedPrinter(), EmulatedPrinter()
    whole.feed(stream)
    for index in range(len(stream)):
        byte_by_byte.feed(stream[index : index + 1])
    assert len(whole.receipts) == 2
    assert byte_by_byte.receipts == whole.receipts
