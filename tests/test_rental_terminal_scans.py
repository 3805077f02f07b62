"""The rental desk's scanner as the app reads it (terminal.rental_app.ScanReader): whole codes become
events stamped with the ledger-trusted time, a bad scan a message, an unplugged scanner one message."""

import pytest

from host_sim.devices.scanner import EmulatedWedgeScanner
from terminal.rental import ScanFailed, Scanned
from terminal.rental_app import ScanReader

LEDGER_NOW_MS = 1_780_000_000_000
KEY_TAB = (15, 0x2B)  # linux/input-event-codes.h; a key no code holds


class LinkState:
    """The one thing ScanReader asks the link's state: the ledger-trusted time."""

    def now_ms(self):
        return LEDGER_NOW_MS, False


@pytest.fixture
def emulated_scanner():
    with EmulatedWedgeScanner() as scanner:
        yield scanner


def next_event(reader, tries=100):
    for _ in range(tries):  # bounded: each look waits for nothing
        if (event := reader.next_event()) is not None:
            return event
    return None


@pytest.mark.timeout(10)
def test_a_whole_scan_becomes_one_event_with_the_ledger_time_and_nothing_more(emulated_scanner):
    reader = ScanReader(emulated_scanner.open_driver(), LinkState())
    emulated_scanner.scan("ROD-0042")

    assert next_event(reader) == Scanned("ROD-0042", LEDGER_NOW_MS)
    assert reader.next_event() is None


@pytest.mark.timeout(10)
def test_a_scan_no_code_holds_is_a_message_and_the_next_scan_reads(emulated_scanner):
    reader = ScanReader(emulated_scanner.open_driver(), LinkState())
    emulated_scanner.write_raw(emulated_scanner.key_bytes(*KEY_TAB) + emulated_scanner.scan_bytes(""))
    emulated_scanner.scan("BIKE-07")

    failed = next_event(reader)
    assert isinstance(failed, ScanFailed) and "US layout" in failed.message and "[" not in failed.message
    assert next_event(reader) == Scanned("BIKE-07", LEDGER_NOW_MS)


@pytest.mark.timeout(10)
def test_an_unplugged_scanner_is_told_once_and_then_left_alone(emulated_scanner):
    reader = ScanReader(emulated_scanner.open_driver(), LinkState())
    emulated_scanner.write_raw(emulated_scanner.scan_bytes("ROD-00", with_enter=False))
    emulated_scanner.unplug()

    failed = next_event(reader)
    assert isinstance(failed, ScanFailed) and "unplugged" in failed.message
    assert reader.is_broken and next_event(reader, tries=3) is None


def test_a_terminal_without_a_scanner_has_no_reader():
    class Hardware:
        scanner = None

    assert ScanReader.for_hardware(Hardware(), LinkState()) is None
