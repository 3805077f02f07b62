"""A park after a seeded simulated day (the demo's: desk, fishing pond, the contractor-run riding
school, the BBQ with its Wi-Fi cut, a member family, supervisor voids), built once per test session
for the report and console tests, with one console user per role."""

from dataclasses import dataclass
from pathlib import Path

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
    def db_path(self) -> Path:
        return self.home / "ledger.db"


@pytest.fixture(scope="session")
def park_day(tmp_path_factory) -> ParkDay:
    out = tmp_path_factory.mktemp("park-day") / "demo"
    assert run_demo(out, visitors=24) == 0
    home = out / "ledger-home"
    accounts = ConsoleStore.in_home(home)
    for username, (role, stations) in CONSOLE_USERS.items():
        accounts.add_user(username, f"{username} 测试", role, PASSWORD, stations=stations, actor="test")
    return ParkDay(out, home)
