"""What the terminal must remember across reboots to sell offline safely, in the outbox's database:
the signed config, its copy of the blocklist, the current offline window, and the ledger's time.

Most Pi boards have no battery-backed clock: after a reboot without network the wall clock may be
anything. So the terminal keeps the ledger's time from the last contact together with the monotonic
clock at that moment, and after a reboot it knows only a lower bound (the last contact itself):
times are then marked uncertain, and the offline window counts the reboot.
"""

from dataclasses import asdict
import json
import time

from protocol.messages import OfflinePolicy

from .offline import BlocklistCopy, OfflineWindow

CONTACT_SAVE_INTERVAL_MS = 10_000


class TerminalState:
    def __init__(self, outbox, *, monotonic_ms=lambda: int(time.monotonic() * 1000), wall_ms=lambda: int(time.time() * 1000),
                 boot_id: str | None = None):
        self.db, self.lock = outbox.db, outbox.lock  # same file and lock as the outbox
        self.monotonic_ms = monotonic_ms
        self.wall_ms = wall_ms
        self.boot_id = boot_id or _boot_id()
        with self.lock:
            self.db.execute("CREATE TABLE IF NOT EXISTS terminal_state (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.config_version = (-1, 0)
        self.policy: OfflinePolicy | None = None
        self.blocklist = BlocklistCopy()
        self.window = OfflineWindow()
        self._contact = None  # (ledger ms, monotonic ms, boot id) of the last answer from the ledger
        self._saved_contact_ms = None
        self._load()

    # ------------------------------------------------------------ persistence
    def _get(self, name):
        with self.lock:
            row = self.db.execute("SELECT value FROM terminal_state WHERE name=?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def _put(self, name, value) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO terminal_state VALUES (?, ?)", (name, json.dumps(value)))

    def _load(self) -> None:
        if (config := self._get("config")) is not None:
            self.config_version = tuple(config["version"])
            self.policy = OfflinePolicy(**config["policy"])
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
            if contact[2] != self.boot_id and self.window.started_ms is not None:
                self.window.reboots += 1  # booted again while still selling offline
                self.save_window()

    def save_config(self, version: int, issued_ms: int, policy: OfflinePolicy) -> None:
        self.config_version, self.policy = (version, issued_ms), policy
        self._put("config", {"version": [version, issued_ms], "policy": policy.to_obj()})

    def save_blocklist(self) -> None:
        copy = self.blocklist
        self._put("blocklist", {"version": copy.version, "issued_ms": copy.issued_ms,
                                "blocked": sorted(copy.blocked),
                                "low": [[no, issuance, fen] for (no, issuance), fen in sorted(copy.low.items())]})

    def save_window(self) -> None:
        window = self.window
        data = asdict(window)
        data["by_card"] = [[no, issuance, fen] for (no, issuance), fen in sorted(window.by_card.items())]
        self._put("window", data)

    def end_window(self) -> None:
        """The ledger has every offline sale: a new outage starts a new window."""
        if self.window.started_ms is not None:
            self.window = OfflineWindow()
            self.save_window()

    # ------------------------------------------------------------ the ledger's time
    def contact(self, ledger_ms: int) -> None:
        """An answer from the ledger: its clock is the one the terminal trusts. Kept in memory at
        every answer, on disk at most every CONTACT_SAVE_INTERVAL_MS (it only has to survive a
        reboot as a lower bound, and a write per answer would cost a draining queue an fsync each)."""
        previous = self._contact
        self._contact = (ledger_ms, self.monotonic_ms(), self.boot_id)
        if previous is None or previous[2] != self.boot_id or self._contact[1] - previous[1] >= CONTACT_SAVE_INTERVAL_MS \
                or self._saved_contact_ms is None or self._contact[1] - self._saved_contact_ms >= CONTACT_SAVE_INTERVAL_MS:
            self._saved_contact_ms = self._contact[1]
            self._put("contact", list(self._contact))

    def now_ms(self) -> tuple[int | None, bool]:
        """(best time in ledger terms, is it uncertain). Since the last contact in this boot the
        monotonic clock carries the ledger's time exactly; after a reboot only the last contact is
        known for sure (a lower bound): the wall clock is used if it is later (it may be right,
        e.g. after NTP), never if it is earlier, and the time is marked uncertain."""
        if self._contact is None:
            return None, True
        ledger_ms, at_monotonic_ms, boot_id = self._contact
        if boot_id == self.boot_id:
            return ledger_ms + (self.monotonic_ms() - at_monotonic_ms), False
        return max(ledger_ms, self.wall_ms()), True

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
