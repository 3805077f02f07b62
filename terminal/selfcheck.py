"""``fieldpos terminal check``: what a technician runs on a board after flashing it, or when a
station reports trouble. Every part and the link to the ledger, one line each; a non-zero exit when
any fails. It sells nothing, uploads nothing and sends no request: only a Hello, which the ledger
answers but never stores. Stop the till first (it and the check share the board's broker login).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import tempfile
import time

from protocol.errors import FieldposError
from protocol.messages import Hello
from protocol.reasons import Reason

from .board_files import load_board_files, loopback_warning
from .errors import TerminalError
from .hal.storage import LOW_SPACE_BYTES, DirectoryStorage
from .net import BrokerUnreachableError, LedgerLink, NoResultError
from .outbox import Outbox, PendingRequest
from .runner import OUTBOX_FILE_NAME

LINK_TIMEOUT_S = 5.0
# Used for the hardware parts when the station config cannot be read: the check still tests them.
FALLBACK_PRINTER_PROFILE = "58mm-raster"


class BrokerLoginRefused(TerminalError):
    """The broker answered but refused this terminal's login (its CONNACK said why)."""

    code = "NOT_AUTHORISED"


class TerminalRetired(TerminalError):
    """The ledger refuses everything this terminal signs: it was retired."""

    code = "TERMINAL_REVOKED"


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
    in (left open); by default the factory opens the kind ``FIELDPOS_HW`` names or it detects. A
    bundle or config that cannot be used fails its line, and the parts are tested all the same."""
    bundle_path = Path(bundle_path)
    files = load_board_files(bundle_path, config_path)
    identity, config = files.identity, files.config
    lines = [
        CheckLine("bundle", False, files.problems["bundle"]) if identity is None else
        CheckLine("bundle", True, f"{identity.terminal_id} of park {identity.park_id}, key {identity.key_id}"
                  + (f" ({warning})" if (warning := loopback_warning(identity)) else "")),
        CheckLine("station", False, files.problems["station"]) if config is None else
        CheckLine("station", True, f"{config.station_name}, {config.mode} mode, printer {config.printer_profile}"),
    ]
    opened_here = hardware is None
    if opened_here:
        from .hal.factory import make_hardware

        profile = config.printer_profile if config is not None else FALLBACK_PRINTER_PROFILE
        try:
            hardware = make_hardware(config={"printer_profile": profile})
        except FieldposError as error:
            return lines + [CheckLine("hardware", False, str(error))]
    try:
        lines += _check_parts(hardware, identity.terminal_id if identity is not None else "?")
        lines += _check_storage_and_link(bundle_path.parent, identity, mqtt_version, link_timeout_s)
    finally:
        if opened_here:
            hardware.close()
    return lines


def _check_parts(hardware, terminal_id: str) -> list[CheckLine]:
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

        screen = Screen(title="自检 Self-check", lines=(terminal_id, "请看屏幕 Can you read this?"))
        hardware.display.show(render_screen(screen, hardware.display.size))
        width, height = hardware.display.size
        return True, f"{width}x{height}, a test screen is showing"

    def keypad():
        key = hardware.keypad.read_key(timeout_s=0)
        return True, "opened" + (f"; {key.name} was pressed" if key is not None else "")

    return [_probe("card reader", card_reader), _probe("printer", printer), _probe("display", display),
            _probe("keypad", keypad)]


def _check_storage_and_link(directory: Path, identity, mqtt_version: str, timeout_s: float) -> list[CheckLine]:
    if not directory.is_dir():
        return [CheckLine("storage", False, f"no folder {directory} (the bundle's folder, where the outbox is kept)"),
                CheckLine("ledger", False, "not tried: no usable bundle")]
    storage = DirectoryStorage(directory)
    free_mb = storage.free_bytes() // (1024 * 1024)
    lines = [CheckLine("storage", not storage.is_low, f"{free_mb} MB free in {directory}"
                       + ("" if not storage.is_low else f" (under {LOW_SPACE_BYTES // (1024 * 1024)} MB: clear space)"))]
    outbox_path = Path(storage.path(OUTBOX_FILE_NAME))
    # The till's own outbox when it has run here; else a throwaway one, so a check leaves no file
    # behind (a fresh board's first seq is the till's to take).
    with tempfile.TemporaryDirectory(prefix="fieldpos-check-") as scratch:
        has_run = outbox_path.is_file()
        outbox = Outbox(outbox_path if has_run else Path(scratch) / OUTBOX_FILE_NAME)
        try:
            if has_run:
                lines.append(CheckLine("outbox", True, f"{outbox.pending_count()} request(s) waiting to upload, "
                                                       f"last seq {outbox.last_seq}"))
            else:
                lines.append(CheckLine("outbox", True, "none yet: the till has not run from this folder"))
            if identity is None:
                lines.append(CheckLine("ledger", False, "not tried: no usable bundle"))
            else:
                lines.append(_probe("ledger", lambda: _ask_ledger(identity, outbox, mqtt_version, timeout_s)))
        finally:
            outbox.close()
    return lines


def _ask_ledger(identity, outbox: Outbox, mqtt_version: str, timeout_s: float) -> tuple[bool, str]:
    """Connect and say Hello. Tells apart what a technician does differently about: no broker at
    that address, a broker that refuses the login (what its CONNACK said), a ledger that refuses
    this terminal (retired), and a ledger that does not answer."""
    broker = identity.broker
    link = LedgerLink(identity, outbox, mqtt_version=mqtt_version, is_uploading=False)
    refusals = []
    on_connect = link.client.on_connect

    def noting_refusals(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refusals.append(str(reason_code))
        on_connect(client, userdata, flags, reason_code, properties)

    link.client.on_connect = noting_refusals
    started = time.monotonic()
    try:
        try:
            link.connect(timeout_s)
        except BrokerUnreachableError:
            if refusals:
                raise BrokerLoginRefused(
                    f"not authorised: the broker at {broker.host}:{broker.port} refused {identity.terminal_id}'s login "
                    f"({refusals[-1]}): it does not know this login yet (run 'fieldpos broker-config' on the ledger "
                    f"host, or reload the broker), or the terminal was retired") from None
            raise
        try:
            highest = link.sync_seq(timeout_s)
        except NoResultError:
            if _refusal_of_a_hello(link, timeout_s) == Reason.TERMINAL_REVOKED:
                raise TerminalRetired(f"retired: the ledger refuses everything {identity.terminal_id} signs; "
                                      f"provision this board under a new terminal id") from None
            raise
    finally:
        link.close()
    return True, (f"{broker.host}:{broker.port} answered Hello in {(time.monotonic() - started) * 1000:.0f} ms; "
                  f"it holds up to seq {highest}")


def _refusal_of_a_hello(link: LedgerLink, timeout_s: float) -> str | None:
    """The reason the ledger refuses a Hello with, if it does: a Hello sent as a request whose
    Result the link keeps for us (a refusal is a Result; a Welcome, which the link's own Hello
    waits for, never is). Asked only after that Hello went unanswered, so a healthy check sends one."""
    payload = link.seal(Hello(park=link.identity.park_id, terminal=link.identity.terminal_id,
                              nonce=os.urandom(16).hex(), terminal_time_ms=link.clock_ms()))
    probe = PendingRequest(0, payload, hashlib.sha256(payload).hexdigest())  # what a Result quotes
    link.follow(probe, answer_within_s=timeout_s)
    try:
        link.wait_for_result(probe, timeout_s)
        refused = link.poll(probe)
    finally:
        link.unwatch(probe)
    return None if refused is None else refused.reason
