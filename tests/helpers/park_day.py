"""A park after a seeded simulated day (the demo's: desk, fishing pond, the contractor-run riding
school, the BBQ with its Wi-Fi cut, a member family, supervisor voids), played once per test run
(whatever the number of pytest-xdist workers) and copied once per worker's session, for the report
and console tests, with one console user per role."""

from dataclasses import dataclass
import fcntl
import os
from pathlib import Path
import shutil

import pytest

from backoffice.accounts import ConsoleStore
from host_sim.demo import run_demo

PASSWORD = "park-day-password-1"
# username -> (role, stations)
CONSOLE_USERS = {
    "admin": ("admin", ()),
    "finance": ("finance", ()),
    "desk": ("front_desk", ()),
    "bbq-sup": ("station_supervisor", ("bbq",)),
    "tech": ("technician", ()),
}


@dataclass(frozen=True)
class ParkDay:
    out: Path        # the demo's folder: receipts, the terminals' outboxes
    home: Path       # the ledger's home

    @property
    def db_path(self) -> str:
        """Where the books are: ledger.db in the home, or the PostgreSQL URL of its store.url."""
        from ledger.park_home import ParkHome

        return ParkHome(self.home).store_location


@pytest.fixture(scope="session")
def park_day(tmp_path_factory) -> ParkDay:
    out = tmp_path_factory.mktemp("park-day") / "demo"
    shutil.copytree(_the_runs_park_day(tmp_path_factory), out)
    return ParkDay(out, out / "ledger-home")


def _the_runs_park_day(tmp_path_factory) -> Path:
    """The seeded day, played once per test run: pytest-xdist's workers share the run's temporary
    folder, and the first to get here plays it while the others wait on a lock, then each copies
    it (the day is the same every time for a seed, so a copy is what a worker would have played;
    a copy per worker keeps the tests that add console users or close a day apart, as before)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("FIELDPOS_TEST_STORE", "sqlite") != "postgresql":
        # popen-gw0, popen-gw1, ... sit in the run's own folder. Not on PostgreSQL: there the books are
        # in the database of the worker that played the day, dropped when that worker ends; each plays its own.
        shared = shared.parent
    played = shared / "park-day-played"
    with open(shared / "park-day.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not played.is_dir():
            # Played in a folder of its own and renamed when done: a day that failed halfway is not
            # taken for a played one by the next worker, which plays it again (and fails the same).
            playing = shared / f"park-day-playing-{os.getpid()}"
            assert run_demo(playing / "demo", visitors=24) == 0
            accounts = ConsoleStore.in_home(playing / "demo" / "ledger-home")
            for username, (role, stations) in CONSOLE_USERS.items():
                accounts.add_user(username, f"{username} 测试", role, PASSWORD, stations=stations, actor="test")
            playing.rename(played)
    return played / "demo"
