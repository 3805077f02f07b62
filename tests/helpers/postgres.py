"""A PostgreSQL database for one test session, created and dropped on 127.0.0.1:5432.

Loaded as a pytest plugin (tests/conftest.py names it). It gives:

- ``postgres_url``: a session's own database (``fieldpos_test_<xdist worker>_<pid>``), created on
  first use and dropped at the end, whatever the tests left in it. If no server answers, one is
  started (Debian's cluster, as root) or installed (``apt-get install postgresql``, as root); if
  neither can be done the test fails with one line saying how to provide one.
- ``store_backend``: ``sqlite`` or ``postgresql``; tests that take it run once on each. With
  ``postgresql`` every park home the test makes keeps its books there (``FIELDPOS_STORE_URL``: a
  schema per home in the session's database).
- ``FIELDPOS_TEST_STORE=postgresql`` runs the whole suite on PostgreSQL: every park home made by any
  test (in process or by a ``fieldpos`` subprocess, which inherits the variable) keeps its books
  there, and ``store_backend`` tests run on PostgreSQL only.
"""

import os
import shutil
import subprocess
import time

import pytest

SERVER = os.environ.get("FIELDPOS_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite", "postgresql")
STORE_URL_ENV = "FIELDPOS_STORE_URL"  # ledger.park_home.STORE_URL_ENV (not imported: loaded before the code)


class NoPostgres(RuntimeError):
    pass


def _connect(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(f"{SERVER}/{dbname}", autocommit=True, connect_timeout=3)


def _reachable() -> bool:
    try:
        _connect().close()
        return True
    except Exception:
        return False


def ensure_server() -> None:
    """A server on SERVER, or NoPostgres with what to do about it."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise NoPostgres("psycopg is not installed: .venv/bin/pip install -e '.[dev]' (the postgresql extra)") from None
    if _reachable():
        return
    if os.geteuid() != 0:
        raise NoPostgres(f"no PostgreSQL server at {SERVER} and not root to start one: start it "
                         "(sudo service postgresql start) or set FIELDPOS_TEST_PG_SERVER")
    if shutil.which("pg_ctlcluster") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
    subprocess.run(["service", "postgresql", "start"], capture_output=True, timeout=60)
    for _ in range(60):
        if _reachable():
            return
        time.sleep(0.5)
    raise NoPostgres(f"started PostgreSQL but {SERVER} does not answer: check pg_hba.conf lets postgres in "
                     "from 127.0.0.1 (trust or a password in PGPASSWORD)")


def database_name() -> str:
    # pytest-xdist runs several sessions at once: each its own database.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"fieldpos_test_{worker}_{os.getpid()}"


def drop_database(name: str) -> None:
    with _connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url():
    try:
        ensure_server()
    except NoPostgres as error:
        pytest.fail(str(error), pytrace=False)
    name = database_name()
    drop_database(name)  # a session killed before its teardown left it behind (same pid, reused)
    with _connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{SERVER}/{name}"
    drop_database(name)


def whole_suite_on_postgres() -> bool:
    return os.environ.get("FIELDPOS_TEST_STORE", "sqlite") == "postgresql"


def pytest_generate_tests(metafunc):
    if "store_backend" in metafunc.fixturenames:
        backends = ("postgresql",) if whole_suite_on_postgres() else BACKENDS
        metafunc.parametrize("store_backend", backends, indirect=True)


@pytest.fixture
def store_backend(request, monkeypatch):
    """The backend the test's park homes keep their books on (see the module's docstring)."""
    if request.param == "postgresql":
        monkeypatch.setenv(STORE_URL_ENV, request.getfixturevalue("postgres_url"))
    else:
        monkeypatch.delenv(STORE_URL_ENV, raising=False)
    return request.param


@pytest.fixture(autouse=True)
def _sqlite_only(request):
    """A test marked sqlite_only (it opens, locks or corrupts the ledger.db file) has nothing to do
    on a PostgreSQL park; the marker's ``reason`` says why."""
    marker = request.node.get_closest_marker("sqlite_only")
    if whole_suite_on_postgres() and marker is not None:
        why = marker.kwargs.get("reason", "reads or breaks the SQLite file itself")
        pytest.skip(f"SQLite only ({why}); this run keeps the books on PostgreSQL")


@pytest.fixture(scope="session", autouse=True)
def _whole_suite_store(request):
    """FIELDPOS_TEST_STORE=postgresql: every park home of the session on PostgreSQL."""
    if not whole_suite_on_postgres():
        yield
        return
    url = request.getfixturevalue("postgres_url")
    previous = os.environ.get(STORE_URL_ENV)
    os.environ[STORE_URL_ENV] = url
    yield
    if previous is None:
        os.environ.pop(STORE_URL_ENV, None)
    else:
        os.environ[STORE_URL_ENV] = previous
