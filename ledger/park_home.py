"""A park's home on the ledger host: where the database, keys, broker config and bundles live.

    <home>/ledger.db            the books (SQLite)
    <home>/store.url            or, instead, where the books are (a postgresql:// URL)
    <home>/ledger-keys.json     the ledger's signing keys (0600)
    <home>/ledger-broker.json   the ledger's own broker login (0600)
    <home>/broker/              generated Mosquitto config, passwd, acl, persistence
    <home>/terminals/<id>.json  provisioning bundles waiting to be flashed (0600)
    <home>/ledger.lock          held (flock) by the one ledger serving this home; holds its PID
"""

from dataclasses import dataclass
import fcntl
import json
import logging
import os
from pathlib import Path
import secrets
import time

from nacl.signing import SigningKey

from protocol.errors import FieldposError, LocalProtocolError
from protocol.kinds import TERMINAL_KINDS, kinds_for_terminal
from protocol.limits import MAX_STAFF_ENTRIES
from protocol.messages import REQUEST_TYPES, StaffEntry, StationSettings
from protocol.topics import check_id
from transport.broker_config import (BrokerUser, TerminalCredential, hash_password, write_broker_config,
                                     write_broker_logins)

from .errors import AlreadyExists, NotFound
from .keys import LedgerKeys
from .station_settings import SettingRefused
from .store import Store
from .store_location import open_store

log = logging.getLogger("fieldpos.ledger")

# The PostgreSQL server new park homes keep their books on when ``ledger init`` names no store:
# each home gets a schema of its own there (the test suite runs on PostgreSQL this way).
STORE_URL_ENV = "FIELDPOS_STORE_URL"

# What each kind of station may send; the ledger enforces it per terminal. Derived from the
# request kinds' declarations (protocol.kinds); "all" is every request type.
STATION_KINDS = {terminal_kind: kinds_for_terminal(terminal_kind) for terminal_kind in TERMINAL_KINDS}
STATION_KINDS["all"] = tuple(REQUEST_TYPES)


class TerminalStillQueued(FieldposError):
    """The terminal still holds sales the ledger has not seen; retiring it now would refuse them."""

    code = "QUEUE_NOT_EMPTY"


class LedgerAlreadyServing(FieldposError):
    """Another ledger already serves this home: two ledgers on one broker knock each other off it."""

    code = "LEDGER_ALREADY_SERVING"


class LedgerLock:
    """The exclusive hold on a home's ``ledger.lock``, kept for the process's life (or until
    :meth:`release`). flock belongs to the open file, so the kernel drops it when the process dies:
    a crashed ledger never leaves a stale lock behind, only its old PID in the file."""

    def __init__(self, path: Path, descriptor: int):
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the file releases the flock
            self._descriptor = None

    def __enter__(self) -> "LedgerLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _check_staff_entry(staff_id: str, name: str, role: str, card_no: str) -> None:
    """Refuse a staff member the tills' directory could not carry (a name over 64 characters...)."""
    try:
        StaffEntry(staff=staff_id, name=name, role=role, card_no=card_no)
    except LocalProtocolError as error:
        raise SettingRefused(f"staff member {staff_id}: {error}; nothing changed") from None


def _write_private_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(data, file, indent=2, ensure_ascii=False)
        file.flush()
        os.fsync(file.fileno())


@dataclass(frozen=True)
class ParkHome:
    home: Path

    @property
    def db_path(self) -> Path:
        return self.home / "ledger.db"

    @property
    def keys_path(self) -> Path:
        return self.home / "ledger-keys.json"

    @property
    def ledger_login_path(self) -> Path:
        return self.home / "ledger-broker.json"

    @property
    def broker_dir(self) -> Path:
        return self.home / "broker"

    @property
    def lock_path(self) -> Path:
        return self.home / "ledger.lock"

    @property
    def store_url_path(self) -> Path:
        return self.home / "store.url"

    @property
    def store_location(self) -> str:
        """Where the books are: the URL in ``store.url`` (a PostgreSQL park), else ``ledger.db``."""
        try:
            return self.store_url_path.read_text().strip()
        except FileNotFoundError:
            return str(self.db_path)

    def has_ledger(self) -> bool:
        return self.db_path.is_file() or self.store_url_path.is_file()

    def lock_ledger(self) -> LedgerLock:
        """Claim this home for one ledger, or raise :class:`LedgerAlreadyServing` naming the PID of
        the process that holds it. Never blocks: a second ledger must refuse, not wait its turn."""
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(descriptor)
            raise LedgerAlreadyServing(f"a ledger (PID {holder}) already serves {self.home}; stop it first") from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        return LedgerLock(self.lock_path, descriptor)

    def bundle_path(self, terminal_id: str) -> Path:
        return self.home / "terminals" / f"{check_id(terminal_id, 'terminal')}.json"

    def park_id(self) -> str:
        return self.ledger_keys().park_id

    def open_store(self, **options) -> Store:
        return open_store(self.store_location, **options)

    def ledger_keys(self) -> LedgerKeys:
        return LedgerKeys.load(self.keys_path)

    def add_missing_ledger_keys(self) -> str | None:
        """Give a key file from before a signing purpose existed (the voucher key came with rentals)
        a key for it; never replaces one. Returns the line to tell the technician, None when none
        was missing. Run by the commands that write (``ledger serve``, provisioning)."""
        _, added = LedgerKeys.add_missing_keys(self.keys_path)
        if not added:
            return None
        return (f"added the missing {', '.join(key.key_id for key in added)} to {self.keys_path.name} "
                "(rental terminals provisioned before it need provisioning again to check vouchers)")

    def ledger_login(self) -> dict:
        return json.loads(self.ledger_login_path.read_text())

    # ------------------------------------------------------------ setup
    def init(self, park_id: str, name: str, *, require_login: bool = True, store_url: str | None = None,
             **park_settings) -> None:
        """Create the database, the ledger's keys and its broker login. Refuses to overwrite.
        ``require_login``: every request needs a staff member logged in on its terminal (a real
        park's till always logs in first; only test rigs that script requests turn it off)."""
        check_id(park_id, "park")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.keys_path.exists():
            raise AlreadyExists(f"{self.home} already holds a ledger; not overwriting its keys")
        store_url = store_url or os.environ.get(STORE_URL_ENV) or None
        if store_url and not store_url.startswith("sqlite:"):
            if "schema=" not in store_url:  # a server shared by homes: this one's own schema
                store_url += ("&" if "?" in store_url else "?") + f"schema=park_{park_id.lower()}_{secrets.token_hex(4)}"
            self.store_url_path.write_text(store_url + "\n")
        store = self.open_store()
        try:
            store.add_park(park_id, name, **park_settings)
            store.set_requires_shift(park_id, require_login)
        finally:
            store.close()
        LedgerKeys.generate(park_id).save(self.keys_path)
        password = secrets.token_urlsafe(24)
        _write_private_json(
            self.ledger_login_path,
            {"username": f"ledger-{park_id}", "password": password, "password_hash": hash_password(password)},
        )

    def provision_terminal(self, terminal_id: str, station_id: str, *, kinds=STATION_KINDS["station"],
                           broker_host: str = "127.0.0.1", broker_port: int = 1883, tls_ca_pem: str | None = None) -> Path:
        """Register a terminal (key, broker login, allowed kinds) and write its bundle."""
        if (added := self.add_missing_ledger_keys()) is not None:
            log.warning("%s", added)  # the bundle below carries the new key
        keys = self.ledger_keys()
        signing_key = SigningKey.generate()
        key_id = check_id(f"{terminal_id}-k1", "key id")
        password = secrets.token_urlsafe(24)
        now_ms = int(time.time() * 1000)
        store = self.open_store()
        try:
            store.add_terminal(terminal_id, keys.park_id, station_id, kinds, hash_password(password), now_ms)
            store.add_terminal_key(key_id, terminal_id, signing_key.verify_key.encode(), now_ms)
        finally:
            store.close()
        bundle = {
            "park_id": keys.park_id,
            "terminal_id": terminal_id,
            "station_id": station_id,
            "key_id": key_id,
            "signing_seed": signing_key.encode().hex(),
            "ledger_keys": keys.public_keys(),
            "card_key_master": keys.card_key_master.hex(),  # reads card records; cannot sign one
            "broker": {"host": broker_host, "port": broker_port, "username": terminal_id, "password": password,
                       "tls_ca": tls_ca_pem},
        }
        path = self.bundle_path(terminal_id)
        _write_private_json(path, bundle)
        return path

    def retire_terminal(self, terminal_id: str, *, is_stolen: bool = False) -> int:
        """Retire a terminal for good and return the seq from which the ledger refuses what it signs:
        one past the highest the ledger holds. Its broker login goes at the next broker-config and
        its bundle (its private key) is deleted here. A terminal whose last heartbeat shows sales not
        yet uploaded is refused, unless it was stolen: then those sales are refused too."""
        store = self.open_store()
        try:
            if store.terminal(terminal_id) is None:
                raise NotFound(f"no terminal {terminal_id}")
            highest = store.highest_seq(terminal_id)
            status = store.terminal_status(terminal_id)
            if not is_stolen and status is not None and (status[1] > 0 or status[0] > highest):
                raise TerminalStillQueued(
                    f"{terminal_id} last reported {status[1]} queued request(s), seqs up to {status[0]} (the ledger "
                    f"holds up to {highest}): bring it online so they upload, or retire it with --stolen to refuse them")
            store.revoke_terminal(terminal_id, highest + 1)
        finally:
            store.close()
        self.bundle_path(terminal_id).unlink(missing_ok=True)
        return highest + 1

    def add_staff(self, staff_id: str, name: str, role: str, card_no: str, pin: str) -> None:
        """Register a staff member with their staff card and PIN (stored only as a peppered scrypt hash)."""
        from .pins import hash_pin
        from protocol.pin import check_pin

        keys = self.ledger_keys()
        _check_staff_entry(check_id(staff_id, "staff"), name, role, card_no)  # as every till's directory will carry it
        store = self.open_store()
        try:
            if len(store.staff_members(keys.park_id)) >= MAX_STAFF_ENTRIES:
                raise SettingRefused(f"the park already has {MAX_STAFF_ENTRIES} active staff, as many as a till's "
                                     f"directory holds: retire someone first ('fieldpos staff retire')")
            store.add_staff(keys.park_id, staff_id, name, role, card_no, hash_pin(check_pin(pin), keys.pin_pepper))
            with store.batch():
                store.note_config_change(keys.park_id)  # the tills' staff directory gains them
        finally:
            store.close()

    def refresh_broker_logins(self) -> bool:
        """After a terminal is provisioned or retired: rewrite the broker's password file and ACL from
        the registered terminals, keeping its config. False when no broker config was written yet
        (``broker-config`` will write the logins with it)."""
        if not (self.broker_dir / "mosquitto.conf").is_file():
            return False
        login = self.ledger_login()
        store = self.open_store()
        try:
            terminals = [TerminalCredential(t, h) for t, h in store.broker_credentials(self.park_id())]
        finally:
            store.close()
        write_broker_logins(self.broker_dir, park_id=self.park_id(),
                            ledger_user=BrokerUser(login["username"], login["password_hash"]), terminals=terminals)
        return True

    # ------------------------------------------------------------ what the tills sell by, and who logs in
    # Each change is counted (Store.note_config_change): the serving ledger re-publishes every
    # terminal's signed config, so running tills take it without a restart.
    def change_station(self, station_id: str, change) -> StationSettings:
        """Store ``change(current settings)`` for the station (see ledger.station_settings, which
        refuses settings a till could not sell by) and return it."""
        park_id = self.park_id()
        store = self.open_store()
        try:
            current = store.station_settings(park_id, station_id)
            if current is None:
                raise NotFound(f"no station {station_id} in park {park_id}")
            settings = change(current)
            store.set_station_settings(park_id, station_id, settings)
        finally:
            store.close()
        return settings

    def station_settings(self, station_id: str) -> StationSettings:
        park_id = self.park_id()
        store = self.open_store()
        try:
            settings = store.station_settings(park_id, station_id)
        finally:
            store.close()
        if settings is None:
            raise NotFound(f"no station {station_id} in park {park_id}")
        return settings

    def staff_members(self) -> list[tuple[str, str, str, str, bool]]:
        """(staff id, name, role, card number, is active) of everyone, retired staff included."""
        store = self.open_store()
        try:
            return store.staff_members(self.park_id(), active_only=False)
        finally:
            store.close()

    def change_staff(self, staff_id: str, *, name: str | None = None, role: str | None = None,
                     retire: bool = False) -> tuple[str, str, str, str, bool]:
        """Rename, change the role of, or retire a staff member (a retired one can no longer log in
        and leaves every till's directory); returns the member as now stored."""
        park_id = self.park_id()
        store = self.open_store()
        try:
            found = next((member for member in store.staff_members(park_id, active_only=False) if member[0] == staff_id), None)
            if found is None:
                raise NotFound(f"no staff member {staff_id} in park {park_id}")
            if retire and not found[4]:
                raise SettingRefused(f"staff member {staff_id} is already retired; nothing changed")
            changed = (staff_id, found[1] if name is None else name, found[2] if role is None else role, found[3],
                       found[4] and not retire)
            _check_staff_entry(*changed[:4])
            store.set_staff_member(park_id, staff_id, name=changed[1], role=changed[2], is_active=changed[4])
        finally:
            store.close()
        return changed

    def write_broker_config(self, *, port: int, listen_host: str = "127.0.0.1", extra_users=(), extra_users_acl=None,
                            **options) -> Path:
        """(Re)generate the broker's config, password file and ACL from the registered terminals."""
        login = self.ledger_login()
        park_id = self.park_id()
        store = self.open_store()
        try:
            terminals = [TerminalCredential(t, h) for t, h in store.broker_credentials(park_id)]
        finally:
            store.close()
        return write_broker_config(
            self.broker_dir,
            park_id=park_id,
            ledger_user=BrokerUser(login["username"], login["password_hash"]),
            terminals=terminals,
            listen_host=listen_host,
            port=port,
            persistence_dir=options.pop("persistence_dir", self.broker_dir / "data"),
            extra_users=extra_users,
            extra_users_acl=extra_users_acl,
            **options,
        )
