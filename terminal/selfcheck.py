"""``fieldpos terminal check``: what a technician runs on a board after flashing it, or when a
station reports trouble. Every part and the link to the ledger, one line each; a non-zero exit when
any fails. It sells nothing, uploads nothing and sends no request: only a Hello, which the ledger
answers but never stores. Stop the till first (it and the check share the board's broker login).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import time

from protocol.errors import FieldposError

from .config import StationConfig
from .hal.storage import LOW_SPACE_BYTES, DirectoryStorage
from .identity import TerminalIdentity
from .net import LedgerLink
from .outbox import Outbox
from .runner import OUTBOX_FILE_NAME

LINK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckLine:
    part: str
    is_ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.is_ok else 'FAIL'}  {self.part:<12} {self.detail}"


def _probe(part: str, probe) -> CheckLine:
    """Run one probe: it returns (is_ok, detail); an error of ours is a failed line with its code."""
    try:
        is_ok, detail = probe()
    except FieldposError as error:
        return CheckLine(part, False, str(error))
    except OSError as error:  # a device that is there but does not answer
        return CheckLine(part, False, f"{type(error).__name__}: {error}")
    return CheckLine(part, is_ok, detail)


def check_terminal(bundle_path, config_path, *, hardware=None, mqtt_version: str = "5",
                   link_timeout_s: float = LINK_TIMEOUT_S) -> list[CheckLine]:
    """Check the board's files, each part and the ledger link. ``hardware``: a HardwareSet handed
    in (left open); by default the factory opens the kind ``FIELDPOS_HW`` names or it detects."""
    bundle_path = Path(bundle_path)
    found = {}

    def load_bundle():
        identity = found["identity"] = TerminalIdentity.load(bundle_path)
        return True, f"{identity.terminal_id} of park {identity.park_id}, key {identity.key_id}"

    def load_config():
        config = found["config"] = StationConfig.load(config_path)
        return True, f"{config.station_name}, {config.mode} mode, printer {config.printer_profile}"

    lines = [_probe("bundle", load_bundle), _probe("station", load_config)]
    if not all(line.is_ok for line in lines):
        return lines
    identity, config = found["identity"], found["config"]
    opened_here = hardware is None
    if opened_here:
        from .hal.factory import make_hardware

        try:
            hardware = make_hardware(config={"printer_profile": config.printer_profile})
        except FieldposError as error:
            return lines + [CheckLine("hardware", False, str(error))]
    try:
        lines += _check_parts(hardware, identity)
        lines += _check_storage_and_link(bundle_path.parent, identity, mqtt_version, link_timeout_s)
    finally:
        if opened_here:
            hardware.close()
    return lines


def _check_parts(hardware, identity) -> list[CheckLine]:
    def card_reader():
        uid = hardware.card_reader.poll()
        if uid is not None:
            hardware.card_reader.halt()
        return True, "answers; " + (f"a card is on it ({uid.hex()})" if uid is not None else "no card on it")

    def printer():
        status = hardware.printer.status()
        if status.is_ready:
            return True, "online, paper loaded" + (" (the roll is nearly out)" if status.is_paper_near_end else "")
        return False, ("paper out — load a roll" if status.is_paper_out else
                       "cover open — close it" if status.is_cover_open else "offline — check its cable and power")

    def display():
        from .screens import Screen, render_screen

        screen = Screen(title="自检 Self-check", lines=(identity.terminal_id, "请看屏幕 Can you read this?"))
        hardware.display.show(render_screen(screen, hardware.display.size))
        width, height = hardware.display.size
        return True, f"{width}x{height}, a test screen is showing"

    def keypad():
        key = hardware.keypad.read_key(timeout_s=0)
        return True, "opened" + (f"; {key.name} was pressed" if key is not None else "")

    return [_probe("card reader", card_reader), _probe("printer", printer), _probe("display", display),
            _probe("keypad", keypad)]


def _check_storage_and_link(directory: Path, identity, mqtt_version: str, timeout_s: float) -> list[CheckLine]:
    storage = DirectoryStorage(directory)
    free_mb = storage.free_bytes() // (1024 * 1024)
    lines = [CheckLine("storage", not storage.is_low, f"{free_mb} MB free in {directory}"
                       + ("" if not storage.is_low else f" (under {LOW_SPACE_BYTES // (1024 * 1024)} MB: clear space)"))]
    outbox = Outbox(storage.path(OUTBOX_FILE_NAME))
    try:
        pending = outbox.pending_count()
        lines.append(CheckLine("outbox", True, f"{pending} request(s) waiting to upload, last seq {outbox.last_seq}"))
        link = LedgerLink(identity, outbox, mqtt_version=mqtt_version, is_uploading=False)

        def ledger():
            started = time.monotonic()
            try:
                link.connect(timeout_s)
                highest = link.sync_seq(timeout_s)
            finally:
                link.close()
            return True, (f"{identity.broker.host}:{identity.broker.port} answered Hello in "
                          f"{(time.monotonic() - started) * 1000:.0f} ms; it holds up to seq {highest}")

        lines.append(_probe("ledger", ledger))
    finally:
        outbox.close()
    return lines
