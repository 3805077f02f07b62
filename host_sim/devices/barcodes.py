"""GS k barcode data -> the bars a printer draws, as a string of modules ("1" bar, "0" space).

The symbol tables come from python-barcode (MIT); the ESC/POS rules are ours: which data each system
takes, the check digits the printer adds, CODE93's full ASCII, CODE128's explicit code sets ("{A", "{B", "{C", "{S" shift,
"{1".."{4" FNC, "{{" a brace) and the narrow:wide ratio of the two-width symbologies. Code 93's table
is not in python-barcode and is written out here. Pure functions, no drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from barcode.charsets import codabar as codabar_table
from barcode.charsets import code39 as code39_table
from barcode.charsets import code128 as code128_table
from barcode.charsets import ean as ean_table
from barcode.charsets import itf as itf_table

# GS k m: the function A (0..6) and function B (65..79) numbers of each system.
SYSTEM_NAMES = {
    0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
    65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
    72: "CODE93", 73: "CODE128",
}  # fmt: skip


class BarcodeDataError(ValueError):
    """The data is not printable in this symbology (the printer prints nothing)."""


@dataclass(frozen=True, slots=True)
class Symbol:
    system: str
    modules: str  # "1" bar, "0" space: one per dot from encode(), one per module inside this module
    human_readable: str  # the HRI text under/over the bars (with the check digit the printer added)


def encode(system_number: int, data: bytes, module_dots: int) -> Symbol:
    """The symbol for GS k ``system_number`` ``data``; two-width systems use ``module_dots`` for narrow."""
    system = SYSTEM_NAMES.get(system_number)
    if system is None:
        raise BarcodeDataError(f"barcode system {system_number} is not emulated (GS1 DataBar / GS1-128)")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as error:
        raise BarcodeDataError(f"{system} data is not ASCII") from error
    if system in ("CODE39", "ITF", "CODABAR"):  # drawn in narrow and wide elements
        return {"CODE39": _code39, "ITF": _itf, "CODABAR": _codabar}[system](text, module_dots)
    encoders = {
        "UPC-A": _upc_a, "UPC-E": _upc_e, "EAN13": _ean13, "EAN8": _ean8, "CODE93": _code93,
    }  # fmt: skip
    symbol = _code128(data) if system == "CODE128" else encoders[system](text)
    dots = "".join(module * module_dots for module in symbol.modules)
    return Symbol(symbol.system, dots, symbol.human_readable)


# --- EAN / UPC ------------------------------------------------------------------------------------


def _digits(text: str, system: str, lengths: tuple[int, ...]) -> str:
    if not text.isdigit() or len(text) not in lengths:
        raise BarcodeDataError(f"{system} takes {' or '.join(map(str, lengths))} digits, not {text!r}")
    return text


def _check_digit(body: str) -> str:
    """The EAN/UPC modulo-10 check digit: weights 3, 1, ... from the right."""
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(body)))
    return str(-total % 10)


def _ean13(text: str) -> Symbol:
    digits = _digits(text, "EAN13", (12, 13))[:12]
    digits += _check_digit(digits)
    parity = ean_table.LEFT_PATTERN[int(digits[0])]
    left = "".join(ean_table.CODES[parity[index]][int(digit)] for index, digit in enumerate(digits[1:7]))
    right = "".join(ean_table.CODES["C"][int(digit)] for digit in digits[7:])
    return Symbol("EAN13", ean_table.EDGE + left + ean_table.MIDDLE + right + ean_table.EDGE, digits)


def _upc_a(text: str) -> Symbol:
    digits = _digits(text, "UPC-A", (11, 12))[:11]
    digits += _check_digit(digits)
    symbol = _ean13("0" + digits)  # UPC-A is EAN-13 with a leading 0
    return Symbol("UPC-A", symbol.modules, digits)


def _ean8(text: str) -> Symbol:
    digits = _digits(text, "EAN8", (7, 8))[:7]
    digits += _check_digit(digits)
    left = "".join(ean_table.CODES["A"][int(digit)] for digit in digits[:4])
    right = "".join(ean_table.CODES["C"][int(digit)] for digit in digits[4:])
    return Symbol("EAN8", ean_table.EDGE + left + ean_table.MIDDLE + right + ean_table.EDGE, digits)


# UPC-E parity of the six digits for number system 0, by check digit ("B" even, "A" odd); system 1
# swaps them.
UPC_E_PARITY = ("BBBAAA", "BBABAA", "BBAABA", "BBAAAB", "BABBAA", "BAABBA", "BAAABB", "BABABA", "BABAAB", "BAABAB")


def _upc_e(text: str) -> Symbol:
    """UPC-E from 6 digits (number system 0), 7 or 8 (system, 6 digits[, check]) or 11/12 (UPC-A)."""
    _digits(text, "UPC-E", (6, 7, 8, 11, 12))
    if len(text) in (11, 12):
        number_system, body = text[0], _compress_upc_a(text[:11])
    else:
        number_system, body = ("0", text) if len(text) == 6 else (text[0], text[1:7])
    if number_system not in "01":
        raise BarcodeDataError(f"UPC-E number system is 0 or 1, not {number_system}")
    check = _check_digit(_expand_upc_e(number_system, body))
    parity = UPC_E_PARITY[int(check)]
    if number_system == "1":
        parity = parity.translate(str.maketrans("AB", "BA"))
    digits = "".join(ean_table.CODES[parity[index]][int(digit)] for index, digit in enumerate(body))
    return Symbol("UPC-E", "101" + digits + "010101", number_system + body + check)


def _expand_upc_e(number_system: str, body: str) -> str:
    last = body[5]
    if last in "012":
        return number_system + body[0:2] + last + "0000" + body[2:5]
    if last == "3":
        return number_system + body[0:3] + "00000" + body[3:5]
    if last == "4":
        return number_system + body[0:4] + "00000" + body[4]
    return number_system + body[0:5] + "0000" + last


def _compress_upc_a(upc_a: str) -> str:
    for body in (upc_a[1:3] + upc_a[8:11] + upc_a[3], upc_a[1:4] + upc_a[9:11] + "3",
                 upc_a[1:5] + upc_a[10] + "4", upc_a[1:6] + upc_a[10]):  # fmt: skip
        if len(body) == 6 and _expand_upc_e(upc_a[0], body) == upc_a:
            return body
    raise BarcodeDataError(f"UPC-A {upc_a} has no UPC-E form")


# --- two-width symbologies: narrow = GS w dots, wide = 2.5 x narrow (the TM-T20's ratio) ----------


def _wide_dots(narrow_dots: int) -> int:
    return math.ceil(narrow_dots * 2.5)


def _from_elements(elements: str, narrow_dots: int) -> str:
    """"NnWw" elements (bar/space, narrow/wide; starting with a bar) -> modules of one dot each."""
    wide_dots = _wide_dots(narrow_dots)
    modules = []
    for index, element in enumerate(elements):
        width = wide_dots if element in "Ww" else narrow_dots
        modules.append(("1" if index % 2 == 0 else "0") * width)
    return "".join(modules)


def _code39(text: str, narrow_dots: int) -> Symbol:
    body = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "*" else text
    if not body or any(character not in code39_table.MAP for character in body):
        raise BarcodeDataError(f"CODE39 takes 0-9 A-Z space $ % + - . /, not {text!r}")
    # python-barcode writes Code 39 in modules of 1 (narrow) and 3 (wide): back to elements.
    patterns = [code39_table.EDGE] + [code39_table.CODES[code39_table.MAP[character][0]] for character in body]
    patterns.append(code39_table.EDGE)
    elements = "n".join(_runs_as_elements(pattern) for pattern in patterns)
    return Symbol("CODE39", _from_elements(elements, narrow_dots), f"*{body}*")


def _runs_as_elements(pattern: str) -> str:
    elements, index = [], 0
    while index < len(pattern):
        run = len(pattern[index:]) - len(pattern[index:].lstrip(pattern[index]))
        is_bar = pattern[index] == "1"
        elements.append(("W" if is_bar else "w") if run > 1 else ("N" if is_bar else "n"))
        index += run
    return "".join(elements)


def _itf(text: str, narrow_dots: int) -> Symbol:
    if not text.isdigit() or len(text) < 2 or len(text) % 2:
        raise BarcodeDataError(f"ITF takes an even number of digits, not {text!r}")
    elements = itf_table.START
    for first, second in zip(text[0::2], text[1::2]):
        bars, spaces = itf_table.CODES[int(first)], itf_table.CODES[int(second)].lower()
        elements += "".join(bar + space for bar, space in zip(bars, spaces))
    elements += itf_table.STOP
    return Symbol("ITF", _from_elements(elements, narrow_dots), text)


def _codabar(text: str, narrow_dots: int) -> Symbol:
    upper = text.upper()
    if len(upper) < 3 or upper[0] not in "ABCD" or upper[-1] not in "ABCD":
        raise BarcodeDataError(f"CODABAR starts and ends with A-D, not {text!r}")
    try:
        patterns = [codabar_table.STARTSTOP[upper[0]]]
        patterns += [codabar_table.CODES[character] for character in upper[1:-1]]
        patterns.append(codabar_table.STARTSTOP[upper[-1]])
    except KeyError as error:
        raise BarcodeDataError(f"CODABAR takes 0-9 - $ : / . + between its start and stop, not {text!r}") from error
    return Symbol("CODABAR", _from_elements("n".join(patterns), narrow_dots), text)


# --- Code 93 (values 0..46, 47 is start/stop; two modulo-47 check characters) ---------------------

CODE93_CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
CODE93_PATTERNS = (
    "100010100", "101001000", "101000100", "101000010", "100101000", "100100100", "100100010",
    "101010000", "100010010", "100001010", "110101000", "110100100", "110100010", "110010100",
    "110010010", "110001010", "101101000", "101100100", "101100010", "100110100", "100011010",
    "101011000", "101001100", "101000110", "100101100", "100010110", "110110100", "110110010",
    "110101100", "110100110", "110010110", "110011010", "101101100", "101100110", "100110110",
    "100111010", "100101110", "111010100", "111010010", "111001010", "101101110", "101110110",
    "110101110", "100100110", "111011010", "111010110", "100110010", "101011110",
)  # fmt: skip
CODE93_START_STOP = 47


CODE93_SHIFTS = {"$": 43, "%": 44, "/": 45, "+": 46}  # the ($) (%) (/) (+) shift characters


def _code93_full_ascii(character: str) -> str:
    """A character as Code 93 base characters, shift characters written as "($)" etc. (ISO/IEC 15417's
    full ASCII table, the one Code 39 extended uses)."""
    code = ord(character)
    if character in CODE93_CHARACTERS:
        return character
    if code == 0:
        return "%U"
    if 1 <= code <= 26:
        return "$" + chr(ord("A") + code - 1)
    if 27 <= code <= 31:
        return "%" + chr(ord("A") + code - 27)
    if 97 <= code <= 122:
        return "+" + chr(ord("A") + code - 97)
    punctuation = {"!": "/A", '"': "/B", "#": "/C", "&": "/F", "'": "/G", "(": "/H", ")": "/I", "*": "/J",
                   ",": "/L", ":": "/Z", ";": "%F", "<": "%G", "=": "%H", ">": "%I", "?": "%J", "@": "%V",
                   "[": "%K", "\\": "%L", "]": "%M", "^": "%N", "_": "%O", "`": "%W", "{": "%P", "|": "%Q",
                   "}": "%R", "~": "%S", "\x7f": "%T"}  # fmt: skip
    if character in punctuation:
        return punctuation[character]
    raise BarcodeDataError(f"CODE93 takes ASCII, not {character!r}")


def _code93(text: str) -> Symbol:
    if not text:
        raise BarcodeDataError("CODE93 needs at least one character")
    values = []
    for character in text:
        encoded = _code93_full_ascii(character)
        if len(encoded) == 2:  # a shift character, then the base character it shifts
            values += [CODE93_SHIFTS[encoded[0]], CODE93_CHARACTERS.index(encoded[1])]
        else:
            values.append(CODE93_CHARACTERS.index(encoded))
    for max_weight in (20, 15):  # check character C, then K over the data and C
        total = sum(value * ((index % max_weight) + 1) for index, value in enumerate(reversed(values)))
        values.append(total % 47)
    symbols = [CODE93_START_STOP, *values, CODE93_START_STOP]
    return Symbol("CODE93", "".join(CODE93_PATTERNS[value] for value in symbols) + "1", text)


# --- Code 128 with the code sets the data names ---------------------------------------------------

CODE128_START = {"A": 103, "B": 104, "C": 105}
CODE128_SWITCH = {"A": 101, "B": 100, "C": 99}  # the value that switches to a set (from another set)
CODE128_SHIFT = 98
CODE128_FUNCTIONS = {"1": 102, "2": 97, "3": 96}  # FNC4 is 101 in set A and 100 in set B


def _code128(data: bytes) -> Symbol:
    if len(data) < 2 or data[0:1] != b"{" or chr(data[1]) not in "ABC":
        raise BarcodeDataError("CODE128 data starts with {A, {B or {C")
    code_set = chr(data[1])
    values = [CODE128_START[code_set]]
    readable = []
    index = 2
    while index < len(data):
        byte = data[index]
        if byte == ord("{"):
            if index + 1 >= len(data):
                raise BarcodeDataError("CODE128 data ends inside a {x code")
            code = chr(data[index + 1])
            index += 2
            if code in "ABC":
                values.append(CODE128_SWITCH[code])
                code_set = code
            elif code == "S":
                if code_set == "C" or index >= len(data):
                    raise BarcodeDataError("CODE128 {S shifts one character of set A or B")
                other = "B" if code_set == "A" else "A"
                values += [CODE128_SHIFT, _code128_value(other, data[index])]
                readable.append(chr(data[index]))
                index += 1
            elif code in CODE128_FUNCTIONS:
                values.append(CODE128_FUNCTIONS[code])
            elif code == "4" and code_set in "AB":
                values.append(101 if code_set == "A" else 100)
            elif code == "{":
                values.append(_code128_value(code_set, byte))
                readable.append("{")
            else:
                raise BarcodeDataError(f"CODE128 {{{code} is not a code set, shift or function")
            continue
        values.append(_code128_value(code_set, byte))
        readable.append(f"{byte:02d}" if code_set == "C" else chr(byte))
        index += 1
    checksum = (values[0] + sum(position * value for position, value in enumerate(values[1:], start=1))) % 103
    values.append(checksum)
    # python-barcode's STOP lacks the two-module termination bar every Code 128 symbol ends with.
    modules = "".join(code128_table.CODES[value] for value in values) + code128_table.STOP + "11"
    return Symbol("CODE128", modules, "".join(readable))


def _code128_value(code_set: str, byte: int) -> int:
    if code_set == "C":
        if byte > 99:
            raise BarcodeDataError(f"CODE128 set C takes values 0..99 as bytes, not {byte}")
        return byte
    if code_set == "A" and 0 <= byte <= 95:
        return byte + 64 if byte < 32 else byte - 32
    if code_set == "B" and 32 <= byte <= 127:
        return byte - 32
    raise BarcodeDataError(f"CODE128 set {code_set} has no character 0x{byte:02X}")
