"""What the terminal must remember across reboots to sell offline safely, in the outbox's database:
the signed config, its copy of the blocklist, the current offline window, and the ledger's time.

Most Pi boards have no battery-backed clock: after a reboot without network the wall clock may be
anything — days behind, or 1970. So the terminal counts time itself. Within one boot the monotonic
clock carries the ledger's time from the last answer exactly. Across a reboot it keeps an "alive
point" on disk: its best estimate of the ledger's time, written at most every
CONTACT_SAVE_INTERVAL_MS while the till runs (online or not) and at every offline sale. After a
reboot, now is at least that point plus the time since this boot (the monotonic clock counts from
boot): a lower bound, since the board may have been off for a while, so the time is marked
uncertain and the offline window counts the reboot (the policy caps reboots). A wall clock that
is later is believed (NTP may have answered); one that is earlier is ignored, so a clock running
behind can no longer hold time still and stretch the offline window.
"""

from dataclasses import asdict
import json
import logging
import time

from protocol.messages import OfflinePolicy, ParkRules, RentalStock, StaffEntry, StationSettings

from .offline import BlocklistCopy, OfflineWindow
from .outbox import STORAGE_ERRORS

log = logging.getLogger("fieldpos.terminal.state")

# How often the ledger's time (and the alive point) reaches the disk: a write per answer would cost
# a draining queue an fsync each. A reboot loses at most this much of the board's running time,
# and never the time of an offline sale (each sale writes its own alive point).
CONTACT_SAVE_INTERVAL_MS = 10_000


def _since_boot_ms() -> int:
    """Milliseconds since this machine booted (Linux CLOCK_BOOTTIME counts a suspend too)."""
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    nanoseconds = time.clock_gettime_ns(clock) if clock is not None else time.monotonic_ns()
    return nanoseconds // 1_000_000


class TerminalState:
    def __init__(self, outbox, *, monotonic_ms=_since_boot_ms, wall_ms=lambda: int(time.time() * 1000),
                 boot_id: str | None = None):
        """``monotonic_ms`` must count from this boot (it restarts at a reboot, as CLOCK_BOOTTIME
        does); ``boot_id`` changes at every boot. A simulated board passes its own."""
        self.db, self.lock = outbox.db, outbox.lock  # same file and lock as the outbox
        self.monotonic_ms = monotonic_ms
        self.wall_ms = wall_ms
        self.boot_id = boot_id or _boot_id()
        with self.lock:
            self.db.execute("CREATE TABLE IF NOT EXISTS terminal_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.config_version = (-1, 0)
        self.policy: OfflinePolicy | None = None
        # The park rules from the ledger's signed config; None until the first config arrives (the
        # till then uses its station config's copies).
        self.rules: ParkRules | None = None
        # How the station sells and who may log in, from the same config; None until it arrives.
        self.station: StationSettings | None = None
        self.staff: tuple | None = None
        self.rental: RentalStock | None = None  # a rental desk's item types and labels, from the same config
        self.blocklist = BlocklistCopy()
        self.window = OfflineWindow()
        self._contact = None  # (ledger ms, monotonic ms, boot id) of the last answer from the ledger
        self._anchor = None   # (ledger-time estimate ms, at monotonic ms of this boot, is it uncertain)
        self._saved_alive_at_ms = None  # monotonic ms (this boot) of the last alive point on disk
        self._load()

    # ------------------------------------------------------------ persistence
    def _get(self, name):
        with self.lock:
            row = self.db.execute("SELECT value FROM terminal_state WHERE name=?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _put(self, name, value) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO terminal_state VALUES (?, ?)", (name, json.dumps(value)))

    def _put_quietly(self, **values) -> bool:
        """Write what only bounds time (contact, alive point): a full disk must not stop the till
        or the link over it, so a failure is logged and the next write tries again."""
        try:
            for name, value in values.items():
                self._put(name, value)
            return True
        except STORAGE_ERRORS as error:
            log.warning("could not save %s: %s", ", ".join(values), error)
            return False

    def _load(self) -> None:
        if (config := self._get("config")) is not None:
            self.config_version = tuple(config["version"])
            self.policy = OfflinePolicy(**config["policy"])
            # A config saved before configs carried rules has none: the next config brings them.
            self.rules = ParkRules(**config["rules"]) if config.get("rules") else None
            # Nor before configs carried the station and the staff: the local station config stands.
            self.station = StationSettings.from_obj(config["station"]) if config.get("station") else None
            staff = config.get("staff")
            self.staff = None if staff is None else tuple(StaffEntry.from_obj(entry) for entry in staff)
            self.rental = RentalStock.from_obj(config["rental"]) if config.get("rental") else None
        if (blocklist := self._get("blocklist")) is not None:
            self.blocklist = BlocklistCopy(blocklist["version"], blocklist["issued_ms"],
                                           {tuple(entry) for entry in blocklist["blocked"]},
                                           {(no, issuance): fen for no, issuance, fen in blocklist["low"]})
        if (window := self._get("window")) is not None:
            self.window = OfflineWindow(window["started_ms"], window["count"], window["total_fen"],
                                        {(no, issuance): fen for no, issuance, fen in window["by_card"]},
                                        window["reboots"])
        if (contact := self._get("contact")) is not None:
            self._contact = tuple(contact)
        alive = self._get("alive") or (None if contact is None else [*contact, False])
        if alive is None:
            return
        estimate_ms, at_monotonic_ms, boot_id, is_uncertain = alive
        if boot_id == self.boot_id:  # the process restarted, the board did not: the clock runs on
            self._anchor = (estimate_ms, at_monotonic_ms, is_uncertain)
            return
        # A reboot: the monotonic clock began again at 0 when this boot started, and the board was
        # off for an unknown time — the estimate is a lower bound from now on.
        self._anchor = (estimate_ms, 0, True)
        if self.window.started_ms is not None:
            self.window.reboots += 1  # booted again while still selling offline
            self.save_window()
        # Written at once with this boot's id, so a process restart in this boot is not a reboot.
        self._save_alive(self.monotonic_ms())

    def save_config(self, version: int, issued_ms: int, policy: OfflinePolicy, rules: ParkRules | None = None,
                    station: StationSettings | None = None, staff: tuple | None = None,
                    rental: RentalStock | None = None) -> None:
        self.config_version, self.policy, self.rules = (version, issued_ms), policy, rules
        self.station, self.staff, self.rental = station, staff, rental
        self._put("config", {"version": [version, issued_ms], "policy": policy.to_obj(),
                             "rules": None if rules is None else rules.to_obj(),
                             "station": None if station is None else station.to_obj(),
                             "staff": None if staff is None else [entry.to_obj() for entry in staff],
                             "rental": None if rental is None else rental.to_obj()})

    def save_blocklist(self) -> None:
        copy = self.blocklist
        self._put("blocklist", {"version": copy.version, "issued_ms": copy.issued_ms,
                                "blocked": sorted(copy.blocked),
                                "low": [[no, issuance, fen] for (no, issuance), fen in sorted(copy.low.items())]})

    def save_window(self) -> None:
        """Raises a storage error if the window cannot be written (the sale must not go ahead);
        also writes the alive point, so no later boot dates a sale before this one."""
        window = self.window
        data = asdict(window)
        data["by_card"] = [[no, issuance, fen] for (no, issuance), fen in sorted(window.by_card.items())]
        self._put("window", data)
        self._save_alive(self.monotonic_ms())

    def end_window(self) -> None:
        """The ledger has every offline sale: a new outage starts a new window."""
        if self.window.started_ms is not None:
            self.window = OfflineWindow()
            self.save_window()

    # ------------------------------------------------------------ the ledger's time
    def contact(self, ledger_ms: int) -> None:
        """An answer from the ledger: its clock is the one the terminal trusts. Kept in memory at
        every answer, on disk at most every CONTACT_SAVE_INTERVAL_MS (see there)."""
        monotonic_ms = self.monotonic_ms()
        self._contact = (ledger_ms, monotonic_ms, self.boot_id)
        self._anchor = (ledger_ms, monotonic_ms, False)
        if self._saved_alive_at_ms is None or monotonic_ms - self._saved_alive_at_ms >= CONTACT_SAVE_INTERVAL_MS:
            self._saved_alive_at_ms = monotonic_ms
            self._put_quietly(contact=list(self._contact), alive=[ledger_ms, monotonic_ms, self.boot_id, False])

    def note_alive(self) -> None:
        """The till is running (the app calls this every turn): at most every
        CONTACT_SAVE_INTERVAL_MS the current estimate goes to disk, online or offline, so time
        after a reboot starts from here and not from the last answer."""
        monotonic_ms = self.monotonic_ms()
        if self._anchor is None or (self._saved_alive_at_ms is not None
                                    and monotonic_ms - self._saved_alive_at_ms < CONTACT_SAVE_INTERVAL_MS):
            return
        self._save_alive(monotonic_ms)

    def _save_alive(self, monotonic_ms: int) -> None:
        if self._anchor is None:
            return
        estimate_ms, is_uncertain = self._estimate(monotonic_ms)
        self._anchor = (estimate_ms, monotonic_ms, is_uncertain)
        self._saved_alive_at_ms = monotonic_ms
        self._put_quietly(alive=[estimate_ms, monotonic_ms, self.boot_id, is_uncertain])

    def _estimate(self, monotonic_ms: int) -> tuple[int, bool]:
        estimate_ms, at_monotonic_ms, is_uncertain = self._anchor
        estimate_ms += max(0, monotonic_ms - at_monotonic_ms)
        if is_uncertain and (wall_ms := self.wall_ms()) > estimate_ms:
            # A later wall clock is believed, and kept: a step back by NTP must not undo it.
            estimate_ms = wall_ms
            self._anchor = (estimate_ms, monotonic_ms, True)
        return estimate_ms, is_uncertain

    def now_ms(self) -> tuple[int | None, bool]:
        """(best time in ledger terms, is it uncertain). Since the last contact in this boot the
        monotonic clock carries the ledger's time exactly. After a reboot: the last alive point
        plus the time since boot, or the wall clock if that is later; marked uncertain. One "now"
        for every offline check (time since contact, the blocklist's age) and for the sale's date."""
        if self._anchor is None:
            return None, True
        return self._estimate(self.monotonic_ms())

    @property
    def last_contact_ms(self) -> int | None:
        return None if self._contact is None else self._contact[0]


def _boot_id() -> str:
    """Changes at every boot of the machine (Linux); a process restart keeps it."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as file:
            return file.read().strip()
    except OSError:
        return f"process-{int(time.time())}"
