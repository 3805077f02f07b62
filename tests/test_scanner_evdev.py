"""The keyboard-wedge barcode scanner: the evdev driver reading host_sim's emulated scanner.

The emulation writes the records usbhid writes when a US-layout scanner types a code (MSC_SCAN,
EV_KEY, SYN_REPORT; Left Shift around capitals and symbols; Enter last) into a pipe; the driver
reads them with the keypad's record decoding. Every wait is bounded; nothing asserts how fast.
"""

from __future__ import annotations

import string

import pytest

from host_sim.devices.scanner import EmulatedWedgeScanner
from terminal.errors import ScannerError, ScanUnreadableError

SHORT_WAIT_S = 0.05  # for "nothing arrives": long enough to see a scan that was coming
SCAN_WAIT_S = 2.0  # for "this scan arrives": a bound, not an expectation
ROD_LABEL = "ROD-0042"
# Shaped like a voucher: base64url text with a dot between its parts.
VOUCHER_TEXT = "v1.eyJvIjoiUjIwMjYxMjAxLTAwMDcifQ.Zm9vYmFy_-x"
KEY_TAB = (15, 0x2B)  # linux/input-event-codes.h, HID usage Keyboard Tab: no character in a code


@pytest.fixture
def emulated_scanner():
    with EmulatedWedgeScanner() as scanner:
        yield scanner


@pytest.fixture
def scanner(emulated_scanner):
    return emulated_scanner.open_driver()


def read_all_scans(scanner, *, limit: int = 16) -> list[str]:
    scans = []
    for _ in range(limit):
        scan = scanner.read_scan(SHORT_WAIT_S)
        if scan is None:
            return scans
        scans.append(scan)
    raise AssertionError(f"more than {limit} scans")


@pytest.mark.timeout(10)
def test_a_rod_label_scanned_reads_as_its_text_and_enter_ends_it(emulated_scanner, scanner):
    emulated_scanner.scan(ROD_LABEL)

    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL
    assert scanner.read_scan(SHORT_WAIT_S) is None
    # Each stroke (8 characters and Enter) is 6 records of 24 bytes; a capital adds Shift's press
    # and release, 3 records each.
    capitals = sum(character.isupper() for character in ROD_LABEL)
    assert emulated_scanner.bytes_written == (len(ROD_LABEL) + 1) * 6 * 24 + capitals * 6 * 24


@pytest.mark.timeout(10)
def test_every_printable_ascii_character_reads_back_with_shift_applied(emulated_scanner, scanner):
    every_character = "".join(character for character in string.printable if " " <= character <= "~")
    assert len(every_character) == 95

    emulated_scanner.scan(every_character)

    assert scanner.read_scan(SCAN_WAIT_S) == every_character


@pytest.mark.timeout(10)
def test_a_32_bit_terminal_reads_16_byte_records():
    with EmulatedWedgeScanner(long_size_bytes=4) as emulated_scanner:
        scanner = emulated_scanner.open_driver()
        emulated_scanner.scan(VOUCHER_TEXT)

        assert scanner.read_scan(SCAN_WAIT_S) == VOUCHER_TEXT
        assert emulated_scanner.event_layout.size == 16


@pytest.mark.timeout(10)
def test_a_scan_arriving_in_pieces_is_returned_only_once_enter_has_come(emulated_scanner, scanner):
    data = emulated_scanner.scan_bytes(ROD_LABEL)
    enter_record_at = len(data) - 6 * 24 + 24  # Enter's press is the second record of its stroke
    cut_points = [7, 24 * 5 + 3, enter_record_at + 11, len(data)]  # mid-record, mid-stroke, mid-Enter

    start = 0
    for cut in cut_points[:-1]:
        emulated_scanner.write_raw(data[start:cut])
        start = cut
        assert scanner.read_scan(SHORT_WAIT_S) is None
    emulated_scanner.write_raw(data[start:])

    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


@pytest.mark.timeout(10)
def test_two_scans_written_together_come_out_in_order_and_a_lone_enter_is_no_scan(emulated_scanner, scanner):
    emulated_scanner.scan(VOUCHER_TEXT)
    emulated_scanner.scan("")  # the trigger pulled on nothing a scanner can read: just Enter
    emulated_scanner.scan(ROD_LABEL)

    assert read_all_scans(scanner) == [VOUCHER_TEXT, ROD_LABEL]


@pytest.mark.timeout(10)
def test_a_scanner_unplugged_mid_scan_raises_and_the_half_code_is_never_returned(emulated_scanner, scanner):
    emulated_scanner.scan("BIKE-07")
    emulated_scanner.write_raw(emulated_scanner.scan_bytes("BIKE-08", with_enter=False))
    emulated_scanner.unplug()

    assert scanner.read_scan(SCAN_WAIT_S) == "BIKE-07"  # a whole scan read before the cable went
    with pytest.raises(ScannerError, match="Scanner unplugged") as raised:
        scanner.read_scan(SCAN_WAIT_S)
    assert raised.value.code == "SCANNER"
    with pytest.raises(ScannerError):
        scanner.read_scan(SHORT_WAIT_S)  # still gone, and "BIKE-08" never appears


@pytest.mark.timeout(10)
def test_key_events_lost_in_a_kernel_overflow_spoil_that_scan_only(emulated_scanner, scanner):
    emulated_scanner.write_raw(emulated_scanner.scan_bytes("BOAT-1", with_enter=False))
    emulated_scanner.drop_events()  # the kernel lost part of the code here
    emulated_scanner.write_raw(emulated_scanner.scan_bytes("2"))
    emulated_scanner.scan(ROD_LABEL)

    with pytest.raises(ScanUnreadableError, match="key events lost") as raised:
        scanner.read_scan(SCAN_WAIT_S)
    assert raised.value.code == "SCAN_UNREADABLE"
    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


@pytest.mark.timeout(10)
def test_a_key_no_code_holds_spoils_the_scan_rather_than_being_skipped(emulated_scanner, scanner):
    # "ROD-1<Tab>2": skipping Tab would read ROD-12, another item.
    emulated_scanner.write_raw(
        emulated_scanner.scan_bytes("ROD-1", with_enter=False)
        + emulated_scanner.key_bytes(*KEY_TAB)
        + emulated_scanner.scan_bytes("2")
    )
    emulated_scanner.scan(ROD_LABEL)

    with pytest.raises(ScanUnreadableError, match="US layout"):
        scanner.read_scan(SCAN_WAIT_S)
    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


@pytest.mark.timeout(10)
def test_an_autorepeat_does_not_double_a_character(emulated_scanner, scanner):
    # A stuck key: KEY_7 pressed, repeated twice by the input core, released; then Enter.
    emulated_scanner.write_raw(
        emulated_scanner.key_bytes(8, 0x24, autorepeats=2) + emulated_scanner.scan_bytes("")
    )

    assert scanner.read_scan(SCAN_WAIT_S) == "7"


@pytest.mark.timeout(10)
def test_the_longest_voucher_scanned_in_one_go_fits_the_pipe_and_reads_back(emulated_scanner, scanner):
    longest_voucher = "FPV1:" + "A7" * 207  # protocol.voucher tokens are at most 420 characters
    emulated_scanner.scan(longest_voucher)

    assert scanner.read_scan(SCAN_WAIT_S) == longest_voucher


@pytest.mark.timeout(10)
def test_a_voucher_already_in_the_pipe_is_read_whole_by_one_look(emulated_scanner, scanner):
    voucher = "FPV1:" + "Q" * 170
    emulated_scanner.scan(voucher)
    # Written before the look: select() sees it at once, so a timeout of 0 is enough.
    assert scanner.read_scan(0) == voucher
