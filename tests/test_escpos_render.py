"""Where the dots land, from raw ESC/POS bytes: margins and print area, positions, line spacing and
feeds, character spacing, Kanji cells, wrapping, rotation and upside-down lines. One dot is one
motion unit; paper is 384 dots (58 mm) unless said."""

from __future__ import annotations

import pytest

from host_sim.devices.printer import EmulatedPrinter, PrintedFeed

ESC, FS, GS = b"\x1b", b"\x1c", b"\x1d"
INVERSE_ON = GS + b"B\x01"  # white on black: a cell's ink is exactly its box


def printed(data: bytes, *, width_dots: int = 384) -> EmulatedPrinter:
    emulator = EmulatedPrinter(width_dots=width_dots, is_chinese_mode_default=False)
    emulator.feed(data)
    assert emulator.command_errors == []
    return emulator


def ink_box(image) -> tuple[int, int, int, int] | None:
    return image.convert("L").point(lambda value: 255 - value).getbbox()


def band_heights(emulator: EmulatedPrinter) -> list[int]:
    return [band.height for band in emulator.current_receipt.bands]


def test_gs_l_moves_the_left_margin_and_gs_w_narrows_the_area_centred_text_is_centred_in():
    emulator = printed(GS + b"L\x28\x00" + GS + b"W\xc8\x00" + ESC + b"a\x01" + INVERSE_ON + b"ab\n")
    # area: 40..240 dots; "ab" is 24 dots wide, centred in it
    assert ink_box(emulator.current_receipt.bands[0]) == (40 + (200 - 24) // 2, 0, 40 + (200 - 24) // 2 + 24, 24)


def test_text_that_would_pass_the_print_areas_edge_goes_on_in_the_next_line():
    emulator = printed(GS + b"W\x60\x00" + b"0123456789\n")  # 96 dots: 8 Font A characters
    assert emulator.current_receipt.text_lines == ["01234567", "89"]


@pytest.mark.parametrize(("command", "x"), [(ESC + b"$\x64\x00", 100), (ESC + b"\\\x30\x00", 12 + 48), (ESC + b"\\\xf4\xff", 0)])
def test_esc_dollar_and_esc_backslash_move_the_print_position(command, x):
    is_relative = not command.startswith(ESC + b"$")
    emulator = printed((b"A" if is_relative else b"") + command + INVERSE_ON + b"B\n")  # relative: after "A"
    band = emulator.current_receipt.bands[0]
    inverse_row = band.crop((0, 0, 384, 1)).convert("L").tobytes()  # the glyph "A" leaves row 0 white
    assert (inverse_row.index(0), inverse_row.rindex(0) + 1) == (x, x + 12)


def test_esc_3_sets_the_line_spacing_and_esc_2_restores_the_default():
    emulator = printed(ESC + b"3\x40" + b"a\nb\n" + ESC + b"2" + b"c\n" + ESC + b"3\x10" + b"d\n")
    assert band_heights(emulator) == [64, 64, 30, 24]  # never less than the tallest character


def test_esc_j_feeds_dots_and_esc_d_lines_and_esc_d_1_is_a_line_feed():
    emulator = printed(b"a" + ESC + b"J\x50" + ESC + b"J\x07" + b"b" + ESC + b"d\x01" + ESC + b"d\x03")
    assert band_heights(emulator) == [80, 7, 30, 90]
    feeds = [element.dots for element in emulator.current_receipt.elements if isinstance(element, PrintedFeed)]
    assert feeds == [7, 90]


def test_esc_space_adds_right_spacing_scaled_with_the_character_width():
    emulator = printed(ESC + b" \x04" + GS + b"!\x10" + INVERSE_ON + b"ab\n")
    assert ink_box(emulator.current_receipt.bands[0]) == (0, 0, 2 * (24 + 8), 24)


def test_kanji_print_in_24_dot_cells_ascii_in_12_and_fs_bang_doubles_only_kanji():
    emulator = printed(FS + b"&" + INVERSE_ON + "你a".encode("gb18030") + b"\n" + FS + b"!\x0c" + "你a".encode("gb18030") + b"\n")
    first, second = emulator.current_receipt.bands
    assert ink_box(first) == (0, 0, 36, 24)
    assert ink_box(second) == (0, 0, 48 + 12, 48)
    [line_one, line_two] = emulator.current_receipt.lines
    assert [(run.text, run.style.font, run.style.width_multiplier) for run in line_two.runs] == [("你", "Kanji", 2), ("a", "A", 1)]


def test_esc_bang_underline_bit_and_fs_minus_underline_their_own_characters():
    emulator = printed(FS + b"&" + ESC + b"!\x80" + "a你".encode("gb18030") + b"\n")
    [band] = emulator.current_receipt.bands
    underline_row = band.crop((0, 23, 36, 24)).convert("L").tobytes()
    assert underline_row[:12] == b"\x00" * 12  # "a" underlined
    assert underline_row[12:] != b"\x00" * 24  # the Kanji is not: FS - was not sent


def test_an_upside_down_line_is_the_same_line_turned_half_a_turn():
    plain = printed(b"Flip 123\n").current_receipt.bands[0]
    flipped = printed(ESC + b"{\x01Flip 123\n" + ESC + b"{\x00").current_receipt
    assert flipped.bands[0].tobytes() == plain.rotate(180).tobytes()
    assert flipped.lines[0].is_upside_down and flipped.lines[0].text == "Flip 123"


def test_esc_v_turns_each_character_a_quarter_turn_clockwise():
    emulator = printed(ESC + b"V\x01" + INVERSE_ON + b"ab\n")
    assert ink_box(emulator.current_receipt.bands[0]) == (0, 0, 48, 12)  # two 24 x 12 cells
    assert emulator.current_receipt.lines[0].runs[0].style.is_rotated


@pytest.mark.parametrize(("mode", "size"), [(0, (16, 3)), (1, (32, 3)), (2, (16, 6)), (3, (32, 6)), (48, (16, 3)), (51, (32, 6))])
def test_gs_v_0_scales_by_its_mode(mode, size):
    emulator = printed(GS + b"v0" + bytes([mode]) + b"\x02\x00\x03\x00" + b"\xff" * 6)
    assert ink_box(emulator.current_receipt.bands[0]) == (0, 0, *size)
    [image] = emulator.current_receipt.images
    assert (image.width_dots, image.height_dots) == (16, 3)  # the log keeps the picture as sent


@pytest.mark.parametrize("command", [FS + b"p\x01\x00", GS + b"/\x00", ESC + b"L"])
def test_a_command_that_would_print_what_the_emulator_does_not_draw_is_reported_not_dropped(command):
    emulator = EmulatedPrinter(width_dots=384, is_chinese_mode_default=False)
    emulator.feed(command + b"after\n")
    [error] = emulator.command_errors
    assert error.code == "ESCPOS_UNPRINTABLE" and "is not emulated" in error.reason
    assert emulator.current_receipt.text_lines == ["after"]
