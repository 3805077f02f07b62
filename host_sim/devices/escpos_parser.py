"""ESC/POS byte stream -> events, with no I/O (the printer emulator feeds it what arrives on its pty).

``EscPosParser.receive_data(bytes)`` returns the events completed so far and keeps an unfinished
command for the next call, so bytes may arrive split anywhere. The parser tracks only what changes
how bytes are grouped: Chinese mode (two- and four-byte GB18030 characters) and the code page. How
the events affect paper is ``host_sim.devices.printer``'s business.

Commands, per the Epson ESC/POS command reference: LF, CR, ESC @, ESC a, ESC E, ESC !, ESC d, ESC t,
GS !, GS v 0, GS ( k (QR, cn 49), GS V, FS &, FS ., DLE EOT n. Other commands with a known length are
skipped and reported as ``Unknown`` so a test can insist on none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

ESC, FS, GS, DLE = 0x1B, 0x1C, 0x1D, 0x10
LINE_FEED, CARRIAGE_RETURN, END_OF_TRANSMISSION = 0x0A, 0x0D, 0x04

# ESC t n code pages we decode (Epson "Character code tables" page numbers).
CODE_PAGES = {0: "cp437", 2: "cp850", 16: "cp1252", 17: "cp866", 19: "cp858"}

# Commands we do not act on but must step over, by total length in bytes (Epson reference).
SKIPPED_COMMAND_LENGTHS = {
    bytes([ESC, ord("2")]): 2,  # default line spacing
    bytes([ESC, ord("3")]): 3,  # line spacing n
    bytes([ESC, ord("J")]): 3,  # feed n dots
    bytes([ESC, ord("M")]): 3,  # font
    bytes([ESC, ord("-")]): 3,  # underline
    bytes([ESC, ord("G")]): 3,  # double strike
    bytes([ESC, ord("R")]): 3,  # international character set
    bytes([ESC, ord("p")]): 5,  # drawer kick
    bytes([FS, ord("!")]): 3,  # Kanji print mode
    bytes([FS, ord("C")]): 3,  # Kanji code system
    bytes([GS, ord("L")]): 4,  # left margin
    bytes([GS, ord("W")]): 4,  # print area width
    bytes([GS, ord("B")]): 3,  # reverse print
    bytes([GS, ord("a")]): 3,  # automatic status back
}


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Initialize:
    pass


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class LineFeed:
    pass


@dataclass(frozen=True, slots=True)
class FeedLines:
    count: int


@dataclass(frozen=True, slots=True)
class SetAlignment:
    align: int  # 0 left, 1 centre, 2 right


@dataclass(frozen=True, slots=True)
class SetBold:
    is_bold: bool


@dataclass(frozen=True, slots=True)
class SetCharacterSize:
    width_multiplier: int
    height_multiplier: int


@dataclass(frozen=True, slots=True)
class SetChineseMode:
    is_on: bool


@dataclass(frozen=True, slots=True)
class SelectCodePage:
    code_page: str  # a Python codec name


@dataclass(frozen=True, slots=True)
class RasterImage:
    width_bytes: int
    height_dots: int
    data: bytes  # rows of packed bits, 1 = black, most significant bit leftmost


@dataclass(frozen=True, slots=True)
class QrSetting:
    function: int  # 65 model, 67 module size, 69 error correction
    value: int


@dataclass(frozen=True, slots=True)
class QrStore:
    data: bytes


@dataclass(frozen=True, slots=True)
class QrPrint:
    pass


@dataclass(frozen=True, slots=True)
class Cut:
    is_partial: bool


@dataclass(frozen=True, slots=True)
class StatusQuery:
    kind: int  # DLE EOT n


@dataclass(frozen=True, slots=True)
class Unknown:
    data: bytes


Event = Union[
    Initialize, Text, LineFeed, FeedLines, SetAlignment, SetBold, SetCharacterSize, SetChineseMode,
    SelectCodePage, RasterImage, QrSetting, QrStore, QrPrint, Cut, StatusQuery, Unknown,
]  # fmt: skip

NEED_DATA = None  # a parse function's answer when the command is not all here yet
Parsed = tuple[Event, int] | None  # (event, bytes consumed)


class EscPosParser:
    def __init__(self, *, is_chinese_mode_default: bool = True):
        # Printers sold in China usually power on in Chinese mode (a memory switch); ESC @ returns
        # to that default, which is why a driver must send FS . itself.
        self.is_chinese_mode_default = is_chinese_mode_default
        self.is_chinese_mode = is_chinese_mode_default
        self.code_page = CODE_PAGES[0]
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> list[Event]:
        self._buffer += data
        events: list[Event] = []
        position = 0
        while position < len(self._buffer):
            parsed = self._parse_at(position)
            if parsed is NEED_DATA:
                break
            event, consumed = parsed
            self._track_modes(event)
            events.append(event)
            position += consumed
        del self._buffer[:position]
        return events

    def _track_modes(self, event: Event) -> None:
        if isinstance(event, Initialize):
            self.is_chinese_mode = self.is_chinese_mode_default
            self.code_page = CODE_PAGES[0]
        elif isinstance(event, SetChineseMode):
            self.is_chinese_mode = event.is_on
        elif isinstance(event, SelectCodePage):
            self.code_page = event.code_page

    def _parse_at(self, position: int) -> Parsed:
        first = self._buffer[position]
        if first == LINE_FEED:
            return LineFeed(), 1
        if first in (ESC, FS, GS, DLE):
            if position + 1 >= len(self._buffer):
                return NEED_DATA
            return COMMANDS.get(first, _parse_unknown_prefix)(self, position)
        if first < 0x20 or first == 0x7F:
            return Unknown(bytes([first])), 1  # CR and other controls: no effect on paper here
        return self._parse_text(position)

    def _parse_text(self, position: int) -> Parsed:
        end = position
        buffer = self._buffer
        while end < len(buffer) and buffer[end] >= 0x20 and buffer[end] != 0x7F:
            if self.is_chinese_mode and buffer[end] >= 0x81:
                length = _gb18030_length(buffer, end)
                if length is NEED_DATA:
                    break
                end += length
            else:
                end += 1
        if end == position:
            return NEED_DATA
        raw = bytes(buffer[position:end])
        encoding = "gb18030" if self.is_chinese_mode else self.code_page
        return Text(raw.decode(encoding, errors="replace")), end - position

    # --- ESC, FS, GS, DLE commands ---

    def _parse_escape(self, position: int) -> Parsed:
        command = self._buffer[position + 1]
        if command == ord("@"):
            return Initialize(), 2
        argument = self._argument(position, 2)
        if argument is NEED_DATA and command in b"aEd!t":
            return NEED_DATA
        if command == ord("a"):
            return SetAlignment(argument % 48), 3  # n may be 0..2 or the ASCII digits 48..50
        if command == ord("E"):
            return SetBold(bool(argument & 1)), 3
        if command == ord("d"):
            return FeedLines(argument), 3
        if command == ord("!"):  # ESC ! n: bit 3 emphasized, bit 4 double height, bit 5 double width
            return _print_mode_events(argument), 3
        if command == ord("t"):
            return SelectCodePage(CODE_PAGES.get(argument, CODE_PAGES[0])), 3
        return self._skip_known(position)

    def _parse_file_separator(self, position: int) -> Parsed:
        command = self._buffer[position + 1]
        if command == ord("&"):
            return SetChineseMode(True), 2
        if command == ord("."):
            return SetChineseMode(False), 2
        return self._skip_known(position)

    def _parse_group_separator(self, position: int) -> Parsed:
        command = self._buffer[position + 1]
        if command == ord("!"):
            argument = self._argument(position, 2)
            if argument is NEED_DATA:
                return NEED_DATA
            return SetCharacterSize((argument >> 4) + 1, (argument & 0x0F) + 1), 3
        if command == ord("v"):
            return self._parse_raster(position)
        if command == ord("("):
            return self._parse_two_dimensional_code(position)
        if command == ord("V"):
            mode = self._argument(position, 2)
            if mode is NEED_DATA:
                return NEED_DATA
            is_partial = mode in (1, 49, 66, 98, 104)
            if mode in (0, 1, 48, 49):  # function A: no feed argument
                return Cut(is_partial), 3
            if self._argument(position, 3) is NEED_DATA:
                return NEED_DATA
            return Cut(is_partial), 4
        return self._skip_known(position)

    def _parse_data_link_escape(self, position: int) -> Parsed:
        if self._buffer[position + 1] == END_OF_TRANSMISSION:
            kind = self._argument(position, 2)
            if kind is NEED_DATA:
                return NEED_DATA
            return StatusQuery(kind), 3
        return Unknown(bytes(self._buffer[position : position + 2])), 2

    def _parse_raster(self, position: int) -> Parsed:
        # GS v 0 m xL xH yL yH d1...dk, k = (xL + xH * 256) * (yL + yH * 256)
        header_length = 8
        if len(self._buffer) - position < header_length:
            return NEED_DATA
        header = self._buffer[position : position + header_length]
        width_bytes = int.from_bytes(header[4:6], "little")
        height_dots = int.from_bytes(header[6:8], "little")
        total = header_length + width_bytes * height_dots
        if len(self._buffer) - position < total:
            return NEED_DATA
        return RasterImage(width_bytes, height_dots, bytes(self._buffer[position + header_length : position + total])), total

    def _parse_two_dimensional_code(self, position: int) -> Parsed:
        # GS ( k pL pH cn fn [parameters]; (pL + pH * 256) counts cn, fn and the parameters.
        if len(self._buffer) - position < 5:
            return NEED_DATA
        length = int.from_bytes(self._buffer[position + 3 : position + 5], "little")
        total = 5 + length
        if len(self._buffer) - position < total:
            return NEED_DATA
        body = bytes(self._buffer[position + 5 : position + total])
        raw = bytes(self._buffer[position : position + total])
        if self._buffer[position + 2] != ord("k") or len(body) < 2 or body[0] != 49:
            return Unknown(raw), total
        function, parameters = body[1], body[2:]
        if function in (65, 67, 69) and parameters:
            return QrSetting(function, parameters[0]), total
        if function == 80:
            return QrStore(parameters[1:]), total  # parameters[0] is m = 48
        if function == 81:
            return QrPrint(), total
        return Unknown(raw), total

    def _skip_known(self, position: int) -> Parsed:
        prefix = bytes(self._buffer[position : position + 2])
        length = SKIPPED_COMMAND_LENGTHS.get(prefix, 2)
        if len(self._buffer) - position < length:
            return NEED_DATA
        return Unknown(bytes(self._buffer[position : position + length])), length

    def _argument(self, position: int, offset: int) -> int | None:
        index = position + offset
        return self._buffer[index] if index < len(self._buffer) else NEED_DATA


def _parse_unknown_prefix(parser: EscPosParser, position: int) -> Parsed:
    return Unknown(bytes(parser._buffer[position : position + 1])), 1


def _print_mode_events(mode: int) -> SetCharacterSize:
    # Only the size part of ESC ! is kept: our driver never sends it, other software might.
    return SetCharacterSize(2 if mode & 0x20 else 1, 2 if mode & 0x10 else 1)


def _gb18030_length(buffer: bytearray, index: int) -> int | None:
    """Length of the GB18030 character starting at ``index`` (lead byte >= 0x81), or NEED_DATA."""
    if index + 1 >= len(buffer):
        return NEED_DATA
    if 0x30 <= buffer[index + 1] <= 0x39:  # four-byte form: lead, digit, lead, digit
        return 4 if index + 3 < len(buffer) else NEED_DATA
    return 2


COMMANDS: dict[int, Callable[[EscPosParser, int], Parsed]] = {
    ESC: EscPosParser._parse_escape,
    FS: EscPosParser._parse_file_separator,
    GS: EscPosParser._parse_group_separator,
    DLE: EscPosParser._parse_data_link_escape,
}
