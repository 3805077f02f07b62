"""The serial barcode scanner: the pyserial driver reading host_sim's emulated scanner on a pty,
and the hardware factory building a rental desk's scanner.

The emulation writes the code's ASCII bytes and its terminator to the pty's master side; the driver
opens the slave with pyserial as it opens /dev/ttyUSB0 on a Pi. Waits are bounded, never asserted.
"""

from __future__ import annotations

import pytest

import host_sim  # noqa: F401 - registers the "sim" hardware
from host_sim.devices.scanner import EmulatedSerialScanner, EmulatedWedgeScanner
from terminal.drivers.scanner_evdev import EvdevScanner
from terminal.drivers.scanner_serial import SerialScanner, open_serial_scanner
from terminal.errors import ScannerError, ScanUnreadableError
from terminal.hal import factory
from terminal.hal.factory import HardwareConfig, make_hardware
from terminal.hal.scanner import SCAN_MAX_CHARS

SHORT_WAIT_S = 0.05
SCAN_WAIT_S = 2.0
ROD_LABEL = "ROD-0042"
VOUCHER_TEXT = "v1.eyJvIjoiUjIwMjYxMjAxLTAwMDcifQ.Zm9vYmFy_-x"


@pytest.fixture
def emulated_scanner():
    with EmulatedSerialScanner() as scanner:
        yield scanner


@pytest.fixture
def scanner(emulated_scanner):
    driver = emulated_scanner.open_driver()
    yield driver
    driver.close()


def read_all_scans(scanner, *, limit: int = 16) -> list[str]:
    scans = []
    for _ in range(limit):
        scan = scanner.read_scan(SHORT_WAIT_S)
        if scan is None:
            return scans
        scans.append(scan)
    raise AssertionError(f"more than {limit} scans")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"], ids=["CR", "LF", "CRLF"])
def test_each_terminator_a_desk_scanner_is_set_to_ends_a_scan(terminator):
    with EmulatedSerialScanner(terminator=terminator) as emulated_scanner:
        scanner = emulated_scanner.open_driver()
        emulated_scanner.scan(VOUCHER_TEXT)
        emulated_scanner.scan(ROD_LABEL)

        assert read_all_scans(scanner) == [VOUCHER_TEXT, ROD_LABEL]
        assert emulated_scanner.bytes_written == len(VOUCHER_TEXT) + len(ROD_LABEL) + 2 * len(terminator)
        scanner.close()


@pytest.mark.timeout(10)
def test_a_cr_and_its_lf_in_different_reads_make_no_empty_scan(emulated_scanner, scanner):
    emulated_scanner.write_raw(b"ROD-1\r")
    assert scanner.read_scan(SCAN_WAIT_S) == "ROD-1"

    emulated_scanner.write_raw(b"\nROD-2\r\n\r\n")

    assert read_all_scans(scanner) == ["ROD-2"]


@pytest.mark.timeout(10)
def test_a_partial_read_waits_for_the_terminator(emulated_scanner, scanner):
    emulated_scanner.write_raw(b"BIKE-0")
    assert scanner.read_scan(SHORT_WAIT_S) is None  # a label cut short could name another bike

    emulated_scanner.write_raw(b"3")
    assert scanner.read_scan(SHORT_WAIT_S) is None

    emulated_scanner.write_raw(b"\r\n")
    assert scanner.read_scan(SCAN_WAIT_S) == "BIKE-03"


@pytest.mark.timeout(10)
def test_a_scanner_unplugged_mid_scan_raises_and_the_half_code_is_never_returned(emulated_scanner, scanner):
    emulated_scanner.scan("BIKE-07")
    emulated_scanner.write_raw(b"BIKE-0")  # "BIKE-08" cut by the cable
    assert scanner.read_scan(SCAN_WAIT_S) == "BIKE-07"
    assert scanner.read_scan(SHORT_WAIT_S) is None

    emulated_scanner.unplug()

    with pytest.raises(ScannerError, match="Scanner unplugged") as raised:
        scanner.read_scan(SCAN_WAIT_S)
    assert raised.value.code == "SCANNER"


@pytest.mark.timeout(10)
def test_bytes_of_a_wrong_baud_rate_spoil_that_scan_and_the_next_reads_normally(emulated_scanner, scanner):
    emulated_scanner.write_raw(b"\xf8\x80\x1eR\xfe\r\n")  # "ROD-1" at 9600 read at 19200 is noise like this
    emulated_scanner.scan(ROD_LABEL)

    with pytest.raises(ScanUnreadableError, match="no code holds") as raised:
        scanner.read_scan(SCAN_WAIT_S)
    assert raised.value.code == "SCAN_UNREADABLE"
    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


@pytest.mark.timeout(10)
def test_a_scan_longer_than_any_code_is_refused_whole(emulated_scanner, scanner):
    emulated_scanner.write_raw(b"A" * (SCAN_MAX_CHARS + 1) + b"\r")
    emulated_scanner.scan(ROD_LABEL)

    with pytest.raises(ScanUnreadableError, match="too long"):
        scanner.read_scan(SCAN_WAIT_S)
    assert scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


@pytest.mark.timeout(10)
def test_nothing_scanned_returns_none_at_the_timeout(scanner):
    assert scanner.read_scan(0) is None
    assert scanner.read_scan(SHORT_WAIT_S) is None
    with pytest.raises(ValueError, match="timeout_s"):
        scanner.read_scan(-1)


def test_a_port_that_does_not_exist_is_a_scanner_error_naming_it():
    with pytest.raises(ScannerError, match="/dev/ttyUSB9"):
        open_serial_scanner("/dev/ttyUSB9")


# --- the hardware factory -------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("kind", "emulator_type", "driver_type"),
    [("evdev", EmulatedWedgeScanner, EvdevScanner), ("serial", EmulatedSerialScanner, SerialScanner)],
)
def test_a_sim_rental_desk_gets_the_configured_scanner_and_its_emulator(kind, emulator_type, driver_type):
    with make_hardware("sim", config={"scanner": kind}) as hardware:
        assert isinstance(hardware.sim.scanner, emulator_type)
        assert isinstance(hardware.scanner, driver_type)
        hardware.sim.scanner.scan(ROD_LABEL)

        assert hardware.scanner.read_scan(SCAN_WAIT_S) == ROD_LABEL


def test_a_till_has_no_scanner():
    with make_hardware("sim") as hardware:
        assert hardware.scanner is None
        assert hardware.sim.scanner is None


def test_an_unknown_scanner_kind_is_refused():
    with pytest.raises(ValueError, match="scanner must be"):
        HardwareConfig(scanner="bluetooth")


def test_a_pi_scanner_without_a_path_is_refused_naming_the_setting():
    with pytest.raises(ScannerError, match="scanner_path"):
        factory._open_pi_scanner(HardwareConfig(scanner="evdev"))


@pytest.mark.timeout(10)
def test_a_pi_serial_scanner_opens_the_configured_port(emulated_scanner):
    scanner = factory._open_pi_scanner(HardwareConfig(scanner="serial", scanner_path=emulated_scanner.port_name))
    try:
        emulated_scanner.scan(VOUCHER_TEXT)

        assert scanner.read_scan(SCAN_WAIT_S) == VOUCHER_TEXT
    finally:
        scanner.close()
