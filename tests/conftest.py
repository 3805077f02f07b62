"""Shared fixtures: a small park with a real Mosquitto (own config, free loopback port), a real
SQLite ledger and terminals speaking the real protocol."""

import os

from hypothesis import settings
import pytest

from host_sim.rig import ParkRig

# A PostgreSQL database per session, the store_backend parameter, FIELDPOS_TEST_STORE=postgresql.
from .helpers.postgres import (_sqlite_only, _whole_suite_store, postgres_url, pytest_generate_tests,  # noqa: F401
                               store_backend)

# The sample park's terminals: two at the fishing pond, one at the contractor-run riding school,
# one at the front desk.
TERMINALS = {"T-FISH-1": "fishing", "T-FISH-2": "fishing", "T-RIDE-1": "riding", "T-DESK-1": "desk"}


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="also run the long chaos and soak tests")
    parser.addoption("--chaos-seed", type=int, default=None, help="replay a chaos run (the seed a failure printed)")


# Property tests: CI runs a pinned, derandomized profile (the same examples every run, bounded time
# on a shared machine); --runslow searches far wider. HYPOTHESIS_PROFILE picks one by name.
settings.register_profile("ci", max_examples=100, derandomize=True, deadline=None, print_blob=True)
settings.register_profile("slow", max_examples=5_000, deadline=None, print_blob=True)


def pytest_configure(config):
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("slow" if config.getoption("--runslow") else "ci"))


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="long run: use --runslow (CI runs the bounded version)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["5"])
def mqtt_version(request):
    return request.param


@pytest.fixture
def ledger(tmp_path):
    """The ledger's intake in process (no broker), with the sample visitor's card issued: 100.00."""
    from .helpers.intake_driver import open_ledger

    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue().outcome == "approved"
        yield ledger


@pytest.fixture
def rig(tmp_path, mqtt_version):
    """A park with its broker and ledger running."""
    with ParkRig(tmp_path, mqtt_version=mqtt_version).create(TERMINALS) as park:
        park.start_broker()
        park.start_ledger()
        yield park


@pytest.fixture
def stopped_rig(tmp_path, mqtt_version):
    """A park with its broker running and no ledger (the test starts it)."""
    with ParkRig(tmp_path, mqtt_version=mqtt_version).create(TERMINALS) as park:
        park.start_broker()
        yield park
