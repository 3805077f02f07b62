"""The ESC/POS parser steps over every command of the reference by its documented length, so nothing
leaks onto the paper; what it cannot parse is an error with its offset, never dropped silently."""

from __future__ import annotations

import random

import pytest

from host_sim.devices import escpos_commands as table
from host_sim.devices.escpos_parser import (
    BAD_PARAMETER,
    MALFORMED_COMMAND,
    UNKNOWN_COMMAND,
    UNKNOWN_CONTROL,
    Command,
    CommandError,
    EscPosParser,
    Text,
    UNPRINTABLE,
)
from host_sim.devices.printer import EmulatedPrinter

MARKER = "MARKER-0123456789"


def random_parameters(spec: table.CommandSpec, rng: random.Random) -> bytes:
    """Parameters of a legal length for ``spec``, otherwise random (values need not be legal)."""

    def data(count: int) -> bytes:
        return bytes(rng.randrange(256) for _ in range(count))

    def nul_free(count: int) -> bytes:
        return bytes(rng.randrange(1, 256) for _ in range(count))

    irregular = {
        "DLE EOT": lambda: bytes([rng.choice([1, 2, 3, 4])]) if rng.random() < 0.7 else bytes([rng.choice([7, 8]), 1]),
        "DLE DC4": lambda: rng.choice([b"\x01" + data(2), b"\x02" + data(2), b"\x03" + data(2), b"\x07" + data(1), b"\x08" + data(7)]),
        "ESC &": lambda: _user_defined_characters(rng, data),
        "ESC *": lambda: _column_image(rng, data),
        "ESC D": lambda: bytes(sorted(rng.sample(range(1, 256), rng.randrange(0, 32)))) + b"\x00",
        "FS q": lambda: _nv_images(rng, data),
        "FS g": lambda: rng.choice([b"\x31" + data(5) + (3).to_bytes(2, "little") + data(3), b"\x32" + data(7)]),
        "GS *": lambda: (lambda x, y: bytes([x, y]) + data(x * y * 8))(rng.randrange(1, 4), rng.randrange(1, 4)),
        "GS 8 L": lambda: (lambda body: len(body).to_bytes(4, "little") + body)(b"0" + data(rng.randrange(1, 40))),
        "GS D": lambda: _bmp_graphics(rng, data),
        "GS Q 0": lambda: (lambda x, y: bytes([0]) + x.to_bytes(2, "little") + y.to_bytes(2, "little") + data(x * ((y + 7) // 8)))(rng.randrange(1, 20), rng.randrange(1, 20)),
        "GS V": lambda: rng.choice([bytes([rng.choice([0, 1, 48, 49])]), bytes([rng.choice([65, 66, 97, 98, 103, 104]), rng.randrange(256)])]),
        "GS k": lambda: rng.choice([bytes([rng.randrange(7)]) + nul_free(rng.randrange(1, 20)) + b"\x00", (lambda n: bytes([rng.randrange(65, 80), n]) + data(n))(rng.randrange(0, 40))]),
        "GS v 0": lambda: (lambda x, y: bytes([rng.randrange(4)]) + x.to_bytes(2, "little") + y.to_bytes(2, "little") + data(x * y))(rng.randrange(1, 10), rng.randrange(1, 30)),
    }  # fmt: skip
    if spec.name in irregular:
        return irregular[spec.name]()
    if spec.shape is table.function_with_length:
        body = data(rng.randrange(0, 60))
        return len(body).to_bytes(2, "little") + body
    return data(spec.shape(b""))  # a fixed shape ignores its argument


def _user_defined_characters(rng, data) -> bytes:
    height_bytes, first = 3, rng.randrange(32, 120)
    last = first + rng.randrange(0, 4)
    body = bytearray([height_bytes, first, last])
    for _ in range(last - first + 1):
        columns = rng.randrange(0, 13)
        body += bytes([columns]) + data(height_bytes * columns)
    return bytes(body)


def _column_image(rng, data) -> bytes:
    mode, columns = rng.choice([0, 1, 32, 33]), rng.randrange(1, 50)
    return bytes([mode]) + columns.to_bytes(2, "little") + data(columns * (1 if mode < 32 else 3))


def _nv_images(rng, data) -> bytes:
    body = bytearray([2])
    for _ in range(2):
        x, y = rng.randrange(1, 3), rng.randrange(1, 3)
        body += x.to_bytes(2, "little") + y.to_bytes(2, "little") + data(x * y * 8)
    return bytes(body)


def _bmp_graphics(rng, data) -> bytes:
    bmp_body = data(rng.randrange(10, 60))
    bmp = b"BM" + (6 + len(bmp_body)).to_bytes(4, "little") + bmp_body
    return b"\x30\x43\x30\x20\x20\x01\x31" + bmp


def parse(data: bytes, **options) -> list:
    return EscPosParser(is_chinese_mode_default=False, **options).receive_data(data)


def texts(events) -> str:
    return "".join(event.text for event in events if isinstance(event, Text))


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("spec", table.COMMANDS, ids=lambda spec: spec.name)
def test_every_command_of_the_reference_with_random_parameters_leaves_the_marker_after_it_intact(spec, seed):
    rng = random.Random(f"{spec.name}-{seed}")
    command = spec.prefix + random_parameters(spec, rng)
    events = parse(command + MARKER.encode() + b"\n")
    assert texts(events) == MARKER
    first = events[0]
    # Random values may be illegal (an error the printer also ignores), but never of unknown length.
    assert isinstance(first, Command) and first.name == spec.name or (
        isinstance(first, CommandError) and first.code == BAD_PARAMETER
    ), first
    assert [e for e in events[1:] if isinstance(e, CommandError)] == []


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("spec", table.COMMANDS, ids=lambda spec: spec.name)
def test_on_the_emulated_printer_no_command_of_the_reference_leaks_onto_the_paper(spec, seed):
    rng = random.Random(f"printer-{spec.name}-{seed}")
    emulator = EmulatedPrinter(width_dots=384, is_chinese_mode_default=False)
    # LF prints whatever the command left in the line; ESC @ undoes a size or margin that would wrap the marker.
    emulator.feed(spec.prefix + random_parameters(spec, rng) + b"\n\x1b@" + MARKER.encode() + b"\n")
    receipts = [*emulator.receipts, emulator.current_receipt]
    assert [text for receipt in receipts for text in receipt.text_lines if text] == [MARKER]
    assert {error.code for error in emulator.command_errors} <= {BAD_PARAMETER, UNPRINTABLE}


def test_the_whole_reference_in_one_stream_split_at_every_byte_parses_the_same():
    rng = random.Random(7)
    stream = b"".join(spec.prefix + random_parameters(spec, rng) + MARKER.encode() for spec in table.COMMANDS)
    whole = EscPosParser(is_chinese_mode_default=False).receive_data(stream)
    parser = EscPosParser(is_chinese_mode_default=False)
    byte_by_byte = [event for byte in stream for event in parser.receive_data(bytes([byte]))]
    assert [e for e in whole if not isinstance(e, Text)] == [e for e in byte_by_byte if not isinstance(e, Text)]
    assert texts(whole) == texts(byte_by_byte)
    assert texts(whole).count(MARKER) == len(table.COMMANDS)


@pytest.mark.parametrize(
    ("data", "code", "offset"),
    [
        (b"AB\x1b\x99" + MARKER.encode(), UNKNOWN_COMMAND, 2),  # ESC 0x99 is no command
        (b"\x1d(Z\x03\x00xyz" + MARKER.encode(), UNKNOWN_COMMAND, 0),  # unknown "( Z", stepped over by pL pH
        (b"\x07" + MARKER.encode(), UNKNOWN_CONTROL, 0),  # BEL is not ESC/POS
        (b"\x1dk\x10" + MARKER.encode(), MALFORMED_COMMAND, 0),  # barcode system 16 does not exist
        (b"\x1ba\x07" + MARKER.encode(), BAD_PARAMETER, 0),  # justification 7
        (b"\x1bt\x63" + MARKER.encode(), BAD_PARAMETER, 0),  # code page 99
        (b"\x1d!\x88" + MARKER.encode(), BAD_PARAMETER, 0),  # 9x size
    ],
)
def test_an_unknown_or_malformed_command_is_an_error_with_its_offset_and_the_text_after_it_prints(data, code, offset):
    events = parse(data)
    [error] = [event for event in events if isinstance(event, CommandError)]
    assert (error.code, error.offset) == (code, offset)
    assert texts(events).endswith(MARKER)
    assert code in str(error) and f"byte {offset}" in str(error)


def test_a_command_declaring_more_than_the_limit_is_reported_and_its_bytes_skipped_without_buffering():
    declared = table.MAX_COMMAND_BYTES + 10
    parser = EscPosParser(is_chinese_mode_default=False)
    header = b"\x1d8L" + (declared).to_bytes(4, "little")
    [error] = parser.receive_data(header)
    assert error.code == "ESCPOS_COMMAND_TOO_LONG"
    body = bytes(declared)
    events = []
    for start in range(0, len(body), 64 * 1024):
        events += parser.receive_data(body[start : start + 64 * 1024])
        assert len(parser._buffer) == 0  # nothing of it is held
    events += parser.receive_data(MARKER.encode())
    assert events == [Text(MARKER, False, len(header) + len(body))]


def test_a_code_page_the_printer_lacks_is_an_error_and_text_stays_in_the_page_before():
    events = parse(b"\x1bt\x02\x1bt\x11\x82", code_pages={0: "cp437", 2: "cp850"})
    assert [e.code for e in events if isinstance(e, CommandError)] == [BAD_PARAMETER]
    assert texts(events) == "é"  # 0x82 in CP850, not in CP866


@pytest.mark.parametrize(
    ("page", "codec", "text"),
    [(0, "cp437", "Ça coûte"), (2, "cp850", "Øre ñ"), (18, "cp852", "Łódź"), (19, "cp858", "5 €"),
     (17, "cp866", "Привет"), (16, "cp1252", "Straße €")],
)  # fmt: skip
def test_esc_t_selects_the_code_page_single_byte_text_is_decoded_in(page, codec, text):
    events = parse(b"\x1bt" + bytes([page]) + text.encode(codec))
    assert texts(events) == text


def test_chinese_mode_groups_gb18030_characters_and_leaves_ascii_single_byte():
    events = parse("\x1c&你好 ok\x1c.".encode("gb18030"))
    assert [(e.text, e.is_kanji) for e in events if isinstance(e, Text)] == [("你好", True), (" ok", False)]


def test_every_command_the_print_engine_acts_on_is_in_the_table_by_the_same_name():
    from host_sim.devices.escpos_engine import HANDLERS

    assert set(HANDLERS) - {spec.name for spec in table.COMMANDS} == set()


@pytest.mark.parametrize("bad_lead", [b"\xd0", b"\x81\x30"])
def test_a_gb18030_lead_byte_that_nothing_valid_follows_never_swallows_the_command_after_it(bad_lead):
    events = parse(b"\x1c&" + bad_lead + b"\x1dV\x00" + "好".encode("gb18030"))
    assert [e.name for e in events if isinstance(e, Command)] == ["FS &", "GS V"]
    assert [e for e in events if isinstance(e, CommandError)] == []
    assert texts(events).endswith("好") and "\x1d" not in texts(events)


@pytest.mark.parametrize("seed", range(300))
def test_a_stream_of_commands_with_garbled_parameters_and_noise_never_stops_the_emulated_printer(seed):
    rng = random.Random(f"fuzz-{seed}")
    parts = []
    for _ in range(rng.randrange(1, 12)):
        spec = rng.choice(table.COMMANDS)
        kind = rng.random()
        if kind < 0.5:
            parts.append(spec.prefix + random_parameters(spec, rng))
        elif kind < 0.8:  # a known prefix with parameters of any length
            parts.append(spec.prefix + bytes(rng.randrange(256) for _ in range(rng.randrange(12))))
        else:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30))))
    emulator = EmulatedPrinter(width_dots=rng.choice([384, 576]), is_chinese_mode_default=rng.random() < 0.5)
    emulator.feed(b"".join(parts) + b"\n" + b"\x1b@\x1c." + MARKER.encode() + b"\n")  # raises on a bug
    printed = [text for receipt in [*emulator.receipts, emulator.current_receipt] for text in receipt.text_lines]
    # Whatever came before, the printer still prints, unless a garbled count made the marker a command's data.
    assert printed[-1:] == [MARKER] or emulator.is_inside_command
