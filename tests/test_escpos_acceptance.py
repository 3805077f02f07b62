"""Other software's receipts on the emulated printer: python-escpos (a widely used receipt library)
writes the bytes, the emulator prints them, and the paper is checked the way a person would: barcodes
and QR codes are read back from the PNG by a real decoder (zxing-cpp), text from the printer's log
with its styles, pictures dot for dot."""

from __future__ import annotations

import random

import pytest

escpos_printer = pytest.importorskip("escpos.printer")
zxingcpp = pytest.importorskip("zxingcpp")

from host_sim.devices.printer import EmulatedPrinter, PrintedLine, TextStyle, render_receipt_png  # noqa: E402

PAPER_DOTS = 576  # python-escpos's TM-T20II profile: 80 mm paper, 576 dots
QUIET_MARGIN_DOTS = 40  # white paper around the receipt, as a scanner sees it


def print_with_escpos(build, *, width_dots: int = PAPER_DOTS) -> EmulatedPrinter:
    dummy = escpos_printer.Dummy(profile="TM-T20II")
    build(dummy)
    emulator = EmulatedPrinter(width_dots=width_dots, is_chinese_mode_default=False)
    emulator.feed(dummy.output)
    assert [str(error) for error in emulator.command_errors] == []
    return emulator


def paper(emulator: EmulatedPrinter):
    """Everything printed so far as one picture: the cut receipts, then the one still in the printer."""
    from PIL import Image

    pictures = [render_receipt_png(receipt, emulator.width_dots) for receipt in [*emulator.receipts, emulator.current_receipt]]
    height = sum(picture.height for picture in pictures) + 2 * QUIET_MARGIN_DOTS
    sheet = Image.new("1", (emulator.width_dots + 2 * QUIET_MARGIN_DOTS, height), 1)
    top = QUIET_MARGIN_DOTS
    for picture in pictures:
        sheet.paste(picture, (QUIET_MARGIN_DOTS, top))
        top += picture.height
    return sheet


def decoded(emulator: EmulatedPrinter) -> list:
    return zxingcpp.read_barcodes(paper(emulator).convert("L"))


def is_blank(image) -> bool:
    return image.width == 0 or image.height == 0 or image.convert("L").getextrema() == (255, 255)


def is_solid(image) -> bool:
    return image.convert("L").getextrema() == (0, 0)


def printed_lines(emulator: EmulatedPrinter) -> list[PrintedLine]:
    return [line for line in emulator.current_receipt.lines if line.text]


# --- text: styles, sizes, alignment ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "style"),
    [
        ({}, TextStyle()),
        ({"bold": True}, TextStyle(is_bold=True)),
        ({"underline": 1}, TextStyle(underline_dots=1)),
        ({"underline": 2}, TextStyle(underline_dots=2)),
        ({"font": "b"}, TextStyle(font="B")),
        ({"invert": True}, TextStyle(is_inverse=True)),
        ({"double_height": True}, TextStyle(height_multiplier=2)),
        ({"double_width": True}, TextStyle(width_multiplier=2)),
        ({"double_width": True, "double_height": True}, TextStyle(width_multiplier=2, height_multiplier=2)),
        ({"custom_size": True, "width": 3, "height": 5}, TextStyle(width_multiplier=3, height_multiplier=5)),
        ({"custom_size": True, "width": 8, "height": 8}, TextStyle(width_multiplier=8, height_multiplier=8)),
    ],
)
def test_text_is_logged_with_the_style_it_was_sent_in_and_drawn_at_its_size(settings, style):
    def build(printer):
        printer.set(**settings)
        printer.textln("Hi!")

    emulator = print_with_escpos(build)
    [line] = printed_lines(emulator)
    assert [(run.text, run.style) for run in line.runs] == [("Hi!", style)]
    cell_width = (9 if style.font == "B" else 12) * style.width_multiplier
    cell_height = (17 if style.font == "B" else 24) * style.height_multiplier
    [band] = emulator.current_receipt.bands
    assert band.height == max(30, cell_height)  # the line feeds max(line spacing, tallest character)
    inked = band.convert("L").point(lambda value: 255 - value).getbbox()
    assert inked[2] <= 3 * cell_width  # three cells, no more
    if style.is_inverse:
        assert inked == (0, 0, 3 * cell_width, cell_height)  # black cells, white letters
    if style.underline_dots:
        underline_row = band.crop((0, cell_height - style.underline_dots, 3 * cell_width, cell_height))
        assert is_solid(underline_row)  # under all three cells


def test_esc_bang_zero_clears_bold_and_sizes_set_by_esc_bang():
    def build(printer):
        printer.set(bold=True, double_height=True, double_width=True)
        printer._raw(b"\x1b!\x08")  # emphasised only
        printer.textln("a")
        printer._raw(b"\x1b!\x00")
        printer.textln("b")

    first, second = printed_lines(print_with_escpos(build))
    assert first.runs[0].style == TextStyle(is_bold=True)
    assert second.runs[0].style == TextStyle()


def test_a_style_and_size_change_mid_line_stays_in_one_line_standing_on_one_bottom():
    def build(printer):
        printer.text("small ")
        printer.set(bold=True, custom_size=True, width=2, height=2)
        printer.text("BIG")
        printer.set(bold=False, normal_textsize=True)
        printer.textln(" small")

    emulator = print_with_escpos(build)
    [line] = printed_lines(emulator)
    assert [(run.text, run.style.is_bold, run.style.height_multiplier) for run in line.runs] == [
        ("small ", False, 1), ("BIG", True, 2), (" small", False, 1),
    ]  # fmt: skip
    [band] = emulator.current_receipt.bands
    assert band.height == 48
    small_cell = band.crop((0, 0, 12, 24))  # above a small character stands nothing
    assert is_blank(small_cell)


@pytest.mark.parametrize(("align", "expected_left"), [("left", 0), ("center", (576 - 48) // 2), ("right", 576 - 48)])
def test_alignment_puts_the_line_where_it_was_asked(align, expected_left):
    def build(printer):
        printer.set(align=align, invert=True)  # inverse cells show exactly where the line is
        printer.textln("1234")

    emulator = print_with_escpos(build)
    [band] = emulator.current_receipt.bands
    inked = band.convert("L").point(lambda value: 255 - value).getbbox()
    assert (inked[0], inked[2]) == (expected_left, expected_left + 48)
    assert printed_lines(emulator)[0].align == {"left": 0, "center": 1, "right": 2}[align]


def test_tabs_move_to_the_stops_set_without_leaking_a_space():
    def build(printer):
        printer.control("HT", count=4, tab_size=10)  # ESC D 10 20 30 40 NUL
        printer.set(invert=True)
        printer.text("A")
        printer._raw(b"\t")  # python-escpos's control("HT") sets tab stops again instead of sending HT
        printer.textln("B")

    emulator = print_with_escpos(build)
    [line] = printed_lines(emulator)
    assert line.text == "AB"
    [band] = emulator.current_receipt.bands
    row = band.crop((0, 0, 576, 1)).convert("L").tobytes()
    assert row[0:12] == b"\x00" * 12 and row[12:120] == b"\xff" * 108 and row[120:132] == b"\x00" * 12


@pytest.mark.parametrize(
    ("code_page", "text"),
    [("CP437", "Ça coûte"), ("CP850", "Øre ñ"), ("CP852", "Łódź"), ("CP858", "5 €"), ("CP866", "Привет"),
     ("CP1252", "Straße €")],
)  # fmt: skip
def test_text_in_each_code_page_reads_back_as_sent(code_page, text):
    def build(printer):
        printer.charcode(code_page)
        printer.textln(text)

    [line] = printed_lines(print_with_escpos(build))
    assert line.text == text


def test_magic_encoding_switching_code_pages_mid_line_reads_back_as_sent():
    text = "Łódź, Straße, Привет"
    [line] = printed_lines(print_with_escpos(lambda printer: printer.textln(text)))
    assert line.text == text


# --- pictures, dot for dot ------------------------------------------------------------------------


def test_image(width: int = 203, height: int = 77):
    from PIL import Image

    rng = random.Random(width * height)
    picture = Image.new("1", (width, height), 1)
    picture.putdata([rng.choice((0, 1, 1)) for _ in range(width * height)])
    return picture


test_image.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("impl", ["bitImageRaster", "graphics", "bitImageColumn"])
@pytest.mark.parametrize(("high_horizontal", "high_vertical"), [(True, True), (False, True), (True, False), (False, False)])
def test_every_image_implementation_prints_the_picture_dot_for_dot(impl, high_horizontal, high_vertical):
    from PIL import Image, ImageChops

    picture = test_image()
    emulator = print_with_escpos(
        lambda printer: printer.image(picture, impl=impl, high_density_horizontal=high_horizontal, high_density_vertical=high_vertical)
    )
    scale_x = 1 if high_horizontal else 2
    if impl == "bitImageColumn":  # ESC *: 8-dot modes print each bit 3 dots tall
        scale_y = 1 if high_vertical else 3
    else:
        scale_y = 1 if high_vertical else 2
    expected = picture.resize((picture.width * scale_x, picture.height * scale_y), Image.Resampling.NEAREST)
    printed = render_receipt_png(emulator.current_receipt, PAPER_DOTS)
    region = printed.crop((0, 0, expected.width, expected.height))
    assert ImageChops.difference(region.convert("L"), expected.convert("L")).getbbox() is None
    below = printed.crop((0, expected.height, PAPER_DOTS, printed.height))
    assert is_blank(below)  # the padding of the last band is white
    right = printed.crop((expected.width, 0, PAPER_DOTS, printed.height))
    assert is_blank(right)


def test_a_centred_raster_image_is_centred():
    picture = test_image(96, 10)
    emulator = print_with_escpos(lambda printer: printer.image(picture, center=True))
    printed = render_receipt_png(emulator.current_receipt, PAPER_DOTS)
    inked = printed.convert("L").point(lambda value: 255 - value).getbbox()
    assert abs((inked[0] + inked[2]) / 2 - PAPER_DOTS / 2) <= 4


# --- barcodes and QR codes, read back by zxing-cpp ------------------------------------------------

BARCODES = [
    ("UPC-A", "01234567890", "012345678905"),
    ("UPC-E", "01234565", "01234565"),
    ("EAN13", "401234567890", "4012345678901"),
    ("EAN8", "4012345", "40123455"),
    ("CODE39", "FIELDPOS-42", "FIELDPOS-42"),
    ("ITF", "12345678", "12345678"),
    ("CODABAR", "A40156B", "A40156B"),
    ("CODE93", "PARK 93", "PARK 93"),
    ("CODE93", "Park #93, ok!", "Park #93, ok!"),  # full ASCII: lower case and punctuation by shift characters
    ("CODE128", "{BFieldpos-128", "Fieldpos-128"),
    ("CODE128", "{C" + "\x0c\x22\x38\x4e", "12345678"),  # set C: one byte per digit pair
    ("CODE128", "{Bab{C\x01\x17{AXY", "ab0123XY"),  # switching code sets mid-symbol
]


def _same_number(decoded_text: str, expected: str) -> bool:
    # zxing-cpp reports UPC-A as EAN-13 with a leading 0, and may expand UPC-E to 12 digits.
    return decoded_text.lstrip("0") == expected.lstrip("0") or decoded_text == expected


FUNCTION_A_SYSTEMS = ("UPC-A", "UPC-E", "EAN13", "EAN8", "CODE39", "ITF", "CODABAR")  # GS k m 0..6


@pytest.mark.parametrize(
    ("system", "data", "expected", "function_type"),
    [(*barcode, "B") for barcode in BARCODES] + [(*barcode, "A") for barcode in BARCODES if barcode[0] in FUNCTION_A_SYSTEMS],
    ids=lambda value: value if isinstance(value, str) and value.isalnum() else None,
)
def test_every_barcode_type_reads_back_as_sent(system, data, expected, function_type):
    def build(printer):
        printer.barcode(data, system, height=80, width=2, pos="BELOW", function_type=function_type, check=False)

    emulator = print_with_escpos(build)
    results = decoded(emulator)
    assert len(results) == 1, [result.text for result in results]
    if system == "UPC-E":  # read as UPC-E, or expanded to UPC-A
        assert _same_number(results[0].text, "01234565") or _same_number(results[0].text, "012345000065")
    else:
        assert _same_number(results[0].text, expected), results[0].text
    [printed] = emulator.current_receipt.barcodes
    assert printed.system == system
    assert printed.human_readable.strip("*") == expected


@pytest.mark.parametrize(("module_dots", "height_dots"), [(2, 40), (3, 100), (4, 162), (6, 255)])
def test_barcode_height_and_module_width_are_the_asked_dots(module_dots, height_dots):
    def build(printer):
        printer.barcode("4012345", "EAN8", height=height_dots, width=max(2, module_dots), pos="OFF", align_ct=False)

    emulator = print_with_escpos(build)
    [band] = emulator.current_receipt.bands
    inked = band.convert("L").point(lambda value: 255 - value).getbbox()
    assert inked == (0, 0, 67 * max(2, module_dots), height_dots)  # EAN-8 is 67 modules wide
    assert decoded(emulator)[0].text == "40123455"


@pytest.mark.parametrize("level", ["L", "M", "Q", "H"])
@pytest.mark.parametrize("module_dots", [3, 6, 8])
def test_native_qr_codes_read_back_at_the_error_level_and_size_asked(level, module_dots):
    from escpos import constants

    payload = f"https://park.example/r/T07-{module_dots}{level}"
    ec = getattr(constants, f"QR_ECLEVEL_{level}")
    emulator = print_with_escpos(lambda printer: printer.qr(payload, ec=ec, size=module_dots, native=True))
    [result] = decoded(emulator)
    assert (result.text, result.ec_level) == (payload, level)
    assert emulator.current_receipt.elements[-1].module_dots == module_dots


def test_a_qr_code_sent_as_an_image_reads_back_too():
    emulator = print_with_escpos(lambda printer: printer.qr("T07-1234", size=4, native=False))
    assert [result.text for result in decoded(emulator)] == ["T07-1234"]


# --- cuts, drawer, status -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "feed", "is_partial"),
    [("FULL", True, False), ("PART", True, True), ("FULL", False, True), ("PART", False, True)],
)  # python-escpos sends GS V 66 0 (feed and partial cut) whenever feed=False
def test_every_cut_form_ends_the_receipt_and_is_recorded(mode, feed, is_partial):
    def build(printer):
        printer.textln("one")
        printer.cut(mode=mode, feed=feed)
        printer.textln("two")

    emulator = print_with_escpos(build)
    assert [receipt.text for receipt in emulator.receipts] == ["one"]
    assert emulator.current_receipt.text == "two"
    assert [(event.kind, event.detail) for event in emulator.events] == [("cut", "partial" if is_partial else "full")]


def test_function_b_cut_feeds_the_dots_asked_then_cuts():
    emulator = print_with_escpos(lambda printer: printer._raw(b"x\n\x1dVA\x28"))
    [receipt] = emulator.receipts
    assert receipt.height_dots == 30 + 0x28


@pytest.mark.parametrize(("pin", "detail"), [(2, "pin 2, on 100 ms, off 100 ms"), (5, "pin 5, on 100 ms, off 100 ms")])
def test_a_drawer_pulse_is_an_event_not_ink(pin, detail):
    emulator = print_with_escpos(lambda printer: printer.cashdraw(pin))
    assert [(event.kind, event.detail) for event in emulator.events] == [("drawer pulse", detail)]
    assert emulator.current_receipt.bands == []


class EmulatorBackedEscpos(escpos_printer.Dummy):
    """python-escpos talking to the emulator: what it writes is fed, what the printer answers is read."""

    def __init__(self, emulator: EmulatedPrinter):
        super().__init__(profile="TM-T20II")
        self.emulator = emulator
        self.replies = b""

    def _raw(self, msg: bytes) -> None:
        self.replies += self.emulator.feed(msg)

    def _read(self) -> bytes:
        reply, self.replies = self.replies, b""
        return reply


@pytest.mark.parametrize(
    ("fault", "is_online", "paper"),
    [(None, True, 2), ("near_end", True, 1), ("paper_out", False, 0), ("cover_open", False, 2)],
)
def test_python_escpos_reads_the_status_it_asks_for(fault, is_online, paper):
    emulator = EmulatedPrinter(width_dots=PAPER_DOTS, is_chinese_mode_default=False)
    if fault == "near_end":
        emulator.set_paper_near_end()
    elif fault == "paper_out":
        emulator.set_paper_out()
    elif fault == "cover_open":
        emulator.set_cover_open()
    printer = EmulatorBackedEscpos(emulator)
    assert (printer.is_online(), printer.paper_status()) == (is_online, paper)
    assert [(event.kind, event.detail) for event in emulator.events] == [
        ("status query", "DLE EOT 1"), ("status query", "DLE EOT 4"),
    ]  # fmt: skip


def test_gs_r_paper_sensor_status_is_answered_and_recorded():
    emulator = EmulatedPrinter(width_dots=PAPER_DOTS)
    emulator.set_paper_near_end()
    assert emulator.feed(b"\x1dr\x01") == b"\x03"
    assert emulator.events[-1].detail == "GS r 1"
