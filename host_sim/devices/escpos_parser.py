"""ESC/POS byte stream -> events, with no I/O (the printer emulator feeds it what arrives on its pty).

``EscPosParser.receive_data(bytes)`` returns the events completed so far and keeps an unfinished
command for the next call, so bytes may arrive split anywhere. Every command is stepped over by its
documented length (``host_sim.devices.escpos_commands``), so a command the emulator does not act on
never leaks its parameters onto the paper. What cannot be parsed becomes a ``CommandError`` with its
stream offset and a code: an unknown command, a malformed one, an illegal parameter.

The parser tracks only what changes how bytes become characters: Chinese (Kanji) mode, where bytes
>= 0x81 start two- or four-byte GB18030 characters, and the ESC t code page of single-byte text.
What the events do to paper is ``host_sim.devices.printer``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .escpos_commands import (
    ESC,
    FS,
    GS,
    MAX_COMMAND_BYTES,
    PREFIX_BYTES,
    PREFIX_LENGTHS,
    CommandSpec,
    MalformedCommand,
    NeedData,
    find_spec,
    function_with_length,
    is_prefix_of_longer,
)

LONGEST_PREFIX = max(PREFIX_LENGTHS)

# ESC t n -> Python codec, by the Epson "character code table" page numbers. A profile may offer a
# subset; a page the printer lacks is an error, not a silent fall back to CP437.
EPSON_CODE_PAGES = {
    0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
    18: "cp852", 19: "cp858",
}  # fmt: skip
CHINESE_CODEC = "gb18030"

# Error codes (stable: they appear in the emulator's log and the sim's error list).
UNKNOWN_COMMAND = "ESCPOS_UNKNOWN_COMMAND"
UNKNOWN_CONTROL = "ESCPOS_UNKNOWN_CONTROL"
MALFORMED_COMMAND = "ESCPOS_MALFORMED_COMMAND"
BAD_PARAMETER = "ESCPOS_BAD_PARAMETER"
COMMAND_TOO_LONG = "ESCPOS_COMMAND_TOO_LONG"
UNPRINTABLE = "ESCPOS_UNPRINTABLE"  # parsed, but the printer cannot print it (raised by the renderer)


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    is_kanji: bool  # printed in 24-dot Kanji cells (Chinese mode, bytes >= 0x81), else 12-dot cells
    offset: int


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # the reference's mnemonic, e.g. "GS v 0"
    parameters: bytes  # everything after the prefix
    offset: int


@dataclass(frozen=True, slots=True)
class CommandError:
    code: str
    offset: int
    data: bytes  # the bytes stepped over (at most the first 16 of a long command)
    reason: str

    def __str__(self) -> str:
        return f"{self.code} at byte {self.offset}: {self.reason} ({self.data.hex(' ')})"


Event = Union[Text, Command, CommandError]
ERROR_DATA_SHOWN = 16


class EscPosParser:
    def __init__(self, *, is_chinese_mode_default: bool = True, code_pages: dict[int, str] | None = None):
        # Printers sold in China usually power on in Chinese mode (a memory switch); ESC @ returns
        # to that default, which is why a driver must send FS . itself.
        self.is_chinese_mode_default = is_chinese_mode_default
        self.code_pages = EPSON_CODE_PAGES if code_pages is None else code_pages
        self.is_chinese_mode = is_chinese_mode_default
        self.code_page = self.code_pages.get(0, "cp437")
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0]
        self._skip_remaining = 0  # bytes of an over-long command still to throw away

    @property
    def is_inside_command(self) -> bool:
        """True while a command's declared bytes have not all arrived (what follows is its data)."""
        return bool(self._buffer) or self._skip_remaining > 0

    def receive_data(self, data: bytes) -> list[Event]:
        self._buffer += data
        events: list[Event] = []
        while True:
            if self._skip_remaining:
                skipped = min(self._skip_remaining, len(self._buffer))
                self._skip_remaining -= skipped
                self._consume(skipped)
            if not self._buffer or self._skip_remaining:
                return events
            parsed = self._parse_one()
            if parsed is None:
                return events
            event, consumed = parsed
            self._track_modes(event)
            events.append(event)
            self._consume(min(consumed, len(self._buffer)))

    def _consume(self, count: int) -> None:
        del self._buffer[:count]
        self._offset += count

    def _track_modes(self, event: Event) -> None:
        if not isinstance(event, Command):
            return
        if event.name == "ESC @":
            self.is_chinese_mode = self.is_chinese_mode_default
            self.code_page = self.code_pages.get(0, "cp437")
        elif event.name == "FS &":
            self.is_chinese_mode = True
        elif event.name == "FS .":
            self.is_chinese_mode = False
        elif event.name == "ESC t":
            self.code_page = self.code_pages[event.parameters[0]]

    def _parse_one(self) -> tuple[Event, int] | None:
        buffer = self._buffer
        first = buffer[0]
        if first >= 0x20 and first != 0x7F:
            return self._parse_text()
        if first not in PREFIX_BYTES:
            spec = find_spec(bytes(buffer[:1]))
            if spec is None:
                return self._error(UNKNOWN_CONTROL, 1, f"control byte 0x{first:02X} is not an ESC/POS command"), 1
            return Command(spec.name, b"", self._offset), 1
        return self._parse_command()

    def _parse_command(self) -> tuple[Event, int] | None:
        head = bytes(self._buffer[:LONGEST_PREFIX])
        if len(head) < LONGEST_PREFIX and is_prefix_of_longer(head):
            return None  # e.g. "GS v" before its "0": wait for the byte that names the command
        spec = find_spec(head)
        return self._parse_unknown_command() if spec is None else self._parse_known(spec)

    def _parse_known(self, spec: CommandSpec) -> tuple[Event, int] | None:
        start = len(spec.prefix)
        try:
            length = spec.shape(bytes(self._buffer[start : start + MAX_COMMAND_BYTES + 16]))
        except NeedData:
            return None
        except MalformedCommand as malformed:
            consumed = start + malformed.consumed
            return self._error(MALFORMED_COMMAND, consumed, f"{spec.name}: {malformed.reason}"), consumed
        total = start + length
        if total > MAX_COMMAND_BYTES:
            self._skip_remaining = total
            return self._error(COMMAND_TOO_LONG, start, f"{spec.name} declares {total} bytes, over {MAX_COMMAND_BYTES}"), 0
        if len(self._buffer) < total:
            return None
        parameters = bytes(self._buffer[start:total])
        problem = spec.check(parameters) if spec.check else None
        if problem is None and spec.name == "ESC t" and parameters[0] not in self.code_pages:
            problem = f"code page {parameters[0]} is not on this printer (it has {sorted(self.code_pages)})"
        if problem is not None:
            return self._error(BAD_PARAMETER, total, f"{spec.name}: {problem}"), total
        return Command(spec.name, parameters, self._offset), total

    def _parse_unknown_command(self) -> tuple[Event, int] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        if buffer[1] == ord("(") and buffer[0] in (ESC, FS, GS):
            # Every "( X" command carries pL pH, so even an unknown one is stepped over whole.
            try:
                total = 3 + function_with_length(bytes(buffer[3:5]))
            except NeedData:
                return None
            if total > MAX_COMMAND_BYTES:
                self._skip_remaining = total
                return self._error(COMMAND_TOO_LONG, 5, f"unknown ( function declares {total} bytes"), 0
            if len(buffer) < total:
                return None
            return self._error(UNKNOWN_COMMAND, total, "unknown ( function, stepped over by its pL pH"), total
        # A real printer ignores the prefix and the byte naming the command; so do we.
        return self._error(UNKNOWN_COMMAND, 2, "unknown command"), 2

    def _parse_text(self) -> tuple[Event, int] | None:
        buffer = self._buffer
        end = 0
        is_kanji = self.is_chinese_mode and buffer[0] >= 0x81
        while end < len(buffer) and buffer[end] >= 0x20 and buffer[end] != 0x7F:
            if (self.is_chinese_mode and buffer[end] >= 0x81) != is_kanji:
                break  # a Kanji run and a single-byte run print in different cells
            if is_kanji:
                length = _gb18030_length(buffer, end)
                if length is None:
                    break
                end += length
            else:
                end += 1
        if end == 0:
            return None
        codec = CHINESE_CODEC if is_kanji else self.code_page
        raw = bytes(buffer[:end])
        return Text(raw.decode(codec, errors="replace"), is_kanji, self._offset), end

    def _error(self, code: str, length: int, reason: str) -> CommandError:
        return CommandError(code, self._offset, bytes(self._buffer[: min(length, ERROR_DATA_SHOWN)]), reason)


def _gb18030_length(buffer: bytearray, index: int) -> int | None:
    """Length of the GB18030 character starting at ``index`` (lead byte >= 0x81), or None for more data.

    A lead byte whose next bytes cannot continue it is one bad character on its own (printed as a
    replacement), so a command byte after it is still a command, never text."""
    if index + 1 >= len(buffer):
        return None
    second = buffer[index + 1]
    if 0x30 <= second <= 0x39:  # four-byte form: lead, digit, lead, digit
        if index + 3 >= len(buffer):
            return None
        is_four_byte = 0x81 <= buffer[index + 2] <= 0xFE and 0x30 <= buffer[index + 3] <= 0x39
        return 4 if is_four_byte else 1
    return 2 if 0x40 <= second <= 0xFE and second != 0x7F else 1
