"""Write a Mosquitto 2.x configuration directory for one park: ``mosquitto.conf``, ``passwd``, ``acl``.

The broker is the only thing between a terminal and another terminal's topics, so the rules below
are the access model of the whole system (docs: DESIGN.md, "Broker"):

* every client logs in (no anonymous access) and its client id is its username, so nobody can take
  over another terminal's session by reusing its client id;
* a terminal writes only its own ``req`` and ``status`` and reads only its own ``res`` and ``cfg``
  plus the park ``blocklist``;
* the ledger reads and writes everything under the park's root, including through MQTT 5 shared
  subscriptions (``$share/ledger/...``), which Mosquitto 2.0 authorises on the topic of each
  delivered message, not on the ``$share/...`` filter.

Every name that ends up in these files is validated first: a terminal id containing a newline, a
wildcard or a ``/`` would otherwise widen the ACL it is written into.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import pwd
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from protocol import topics
from protocol.errors import FieldposError, LocalProtocolError
from protocol.limits import MAX_PAYLOAD_BYTES

# Mosquitto 2.0 reads exactly 12 salt bytes for a "$7$" entry (SALT_LEN in its password code) and
# refuses the entry otherwise.
PASSWORD_SALT_BYTES = 12
# mosquitto_passwd's default (PW_DEFAULT_ITERATIONS). The broker re-hashes on every CONNECT, so a
# large count costs CPU at each reconnect storm (a whole park coming back after a broker cut).
DEFAULT_PASSWORD_ITERATIONS = 101
# "$7$" is Mosquitto's tag for PBKDF2-HMAC-SHA512; "$6$" (plain salted SHA512) is the 1.x format.
PBKDF2_SHA512_TAG = 7

# Per client. Mosquitto drops messages beyond this queue without telling anyone, and the
# ledger's persistent session must be able to hold a whole park's backlog after a ledger outage:
# 100 terminals x 1000 queued offline sales.
MAX_QUEUED_MESSAGES = 100_000
# Outgoing QoS 1/2 messages in flight to one client (MQTT 3.1.1; an MQTT 5 client states its own
# receive maximum). The ledger acks a request only once its batch has committed, so this window is
# the largest batch a 3.1.1 ledger can group into one commit: 20, Mosquitto's default, would cap
# group commit at 20 requests per fsync.
MAX_INFLIGHT_MESSAGES = 1000
# Largest payload the broker forwards. Above it Mosquitto drops the message after completing the
# QoS flow: an MQTT 3.1.1 terminal gets a normal PUBACK and never a Result (MQTT 5 gets reason
# 0x83). So this is only a memory guard, set well above the protocol's own limit: anything up to
# it reaches the ledger, which refuses an oversize request itself with a signed Result and a
# reason code the terminal can show. (2.0.11 suggests max_packet_size instead; that one
# disconnects the client, which would then resend the same message after every reconnect.)
MESSAGE_SIZE_LIMIT_BYTES = 64 * 1024
assert MESSAGE_SIZE_LIMIT_BYTES >= 4 * MAX_PAYLOAD_BYTES, "the ledger must see oversize requests"
DEFAULT_AUTOSAVE_INTERVAL_S = 60
LOG_TYPES = ("error", "warning", "notice", "information")

# Usernames written into passwd/acl: no "/" "+" "#" (topic syntax), no ":" (passwd separator), no
# whitespace or control characters (line-based files). Longer than protocol ids (32) so that
# "ledger-<park id>" fits. Park and terminal ids follow protocol.topics.check_id.
_USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ACL_ACCESS_KINDS = ("read", "write", "readwrite", "deny")


class BrokerConfigError(FieldposError, ValueError):
    """A value cannot be written safely into the broker's config, password or ACL file."""

    code = "BROKER_CONFIG"


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """A broker login: the username and its Mosquitto password-file hash (see :func:`hash_password`)."""

    username: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class TerminalCredential:
    """A terminal's broker login; its username (and hence client id) is its terminal id."""

    terminal_id: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for a TLS listener: the CA that clients verify against, the server chain and key."""

    cafile: Path
    certfile: Path
    keyfile: Path


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_PASSWORD_ITERATIONS
) -> str:
    """Return ``password`` hashed in Mosquitto 2.x password-file form.

    ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512(password, salt, iterations)>``,
    standard base64 with padding, as ``mosquitto_passwd`` writes it.
    """
    if salt is None:
        salt = secrets.token_bytes(PASSWORD_SALT_BYTES)
    if len(salt) != PASSWORD_SALT_BYTES:
        raise BrokerConfigError(f"Mosquitto needs a {PASSWORD_SALT_BYTES}-byte salt, got {len(salt)}")
    if iterations < 1:
        raise BrokerConfigError(f"iterations must be positive, got {iterations}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return "${}${}${}${}".format(
        PBKDF2_SHA512_TAG,
        iterations,
        base64.b64encode(salt).decode("ascii"),
        base64.b64encode(digest).decode("ascii"),
    )


def park_topic_filter(park_id: str) -> str:
    """Everything under one park: what the ledger may read and write."""
    return f"{topics.ROOT}/{topics.check_id(park_id, 'park')}/#"


# Ledger workers (``fieldpos ledger serve --workers N``) each log in under a username of their own:
# with use_username_as_clientid, two workers under one login would take each other's session. The
# park's config always carries this many worker logins, with the ledger's password and rights.
LEDGER_WORKER_LOGINS = 8


def worker_username(ledger_username: str, worker: int) -> str:
    """Worker 1 is the ledger's own login; worker k > 1 is ``<ledger login>-w<k>``."""
    if not 1 <= worker <= LEDGER_WORKER_LOGINS:
        raise BrokerConfigError(f"ledger worker {worker}: 1 to {LEDGER_WORKER_LOGINS}")
    return ledger_username if worker == 1 else f"{ledger_username}-w{worker}"


def ledger_request_share_filter(park_id: str, group: str = "ledger") -> str:
    """The MQTT 5 shared subscription through which ledger workers split the park's requests."""
    return f"$share/{group}/{topics.all_requests(park_id)}"


def write_broker_config(
    out_dir: Path,
    *,
    park_id: str,
    ledger_user: BrokerUser,
    terminals: Sequence[TerminalCredential],
    listen_host: str = "127.0.0.1",
    port: int = 1883,
    tls: TlsFiles | None = None,
    tls_port: int = 8883,
    persistence_dir: Path | None = None,
    autosave_interval_s: int = DEFAULT_AUTOSAVE_INTERVAL_S,
    run_as_user: str | None = None,
    extra_users: Sequence[BrokerUser] = (),
    extra_users_acl: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``mosquitto.conf``, ``passwd`` and ``acl`` into ``out_dir``; return the config path.

    ``extra_users_acl`` maps a username to ACL rules of the form ``"<read|write|readwrite|deny>
    <topic filter>"``. ``run_as_user`` is the account Mosquitto switches to when started as root;
    by default the current one (see :func:`default_run_as_user`).
    """
    extra_users_acl = dict(extra_users_acl or {})
    _check_protocol_id("park id", park_id)
    for terminal in terminals:
        _check_protocol_id("terminal id", terminal.terminal_id)
    _check_unique_users(ledger_user, terminals, extra_users)
    for username in extra_users_acl:
        if username not in {user.username for user in extra_users}:
            raise BrokerConfigError(f"ACL given for {username!r}, who is not among extra_users")
    if run_as_user is None:
        run_as_user = default_run_as_user()
    _check_username("run_as_user", run_as_user)

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    passwd_path, acl_path = _write_logins(out_dir, park_id, ledger_user, terminals, extra_users, extra_users_acl)
    config_path = out_dir / "mosquitto.conf"
    if persistence_dir is not None:
        persistence_dir = Path(persistence_dir).resolve()
        persistence_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(
        render_mosquitto_conf(
            passwd_path=passwd_path,
            acl_path=acl_path,
            listen_host=listen_host,
            port=port,
            tls=tls,
            tls_port=tls_port,
            persistence_dir=persistence_dir,
            autosave_interval_s=autosave_interval_s,
            run_as_user=run_as_user,
        )
    )
    _hand_over_to(run_as_user, [passwd_path, acl_path, *([persistence_dir] if persistence_dir else [])])
    return config_path


def write_broker_logins(
    out_dir: Path,
    *,
    park_id: str,
    ledger_user: BrokerUser,
    terminals: Sequence[TerminalCredential],
    run_as_user: str | None = None,
) -> Path:
    """Rewrite only ``passwd`` and ``acl`` in a directory :func:`write_broker_config` made, keeping its
    ``mosquitto.conf`` (port, listen address, TLS) as it is; return the password file's path.

    A terminal provisioned or retired after the broker config was written changes only the logins,
    and a running Mosquitto re-reads exactly these two files on SIGHUP (see
    :func:`transport.mosquitto_process.reload_running_broker`), so no port or TLS option has to be
    given again. Extra users (observers) are not kept: regenerate with write_broker_config for them.
    """
    _check_protocol_id("park id", park_id)
    for terminal in terminals:
        _check_protocol_id("terminal id", terminal.terminal_id)
    _check_unique_users(ledger_user, terminals, ())
    out_dir = Path(out_dir).resolve()
    if not (out_dir / "mosquitto.conf").is_file():
        raise BrokerConfigError(f"no broker config in {out_dir} to update; write one first")
    if run_as_user is None:
        run_as_user = default_run_as_user()
    passwd_path, acl_path = _write_logins(out_dir, park_id, ledger_user, terminals, (), {})
    _hand_over_to(run_as_user, [passwd_path, acl_path])
    return passwd_path


def _write_logins(out_dir: Path, park_id: str, ledger_user: BrokerUser, terminals: Sequence[TerminalCredential],
                  extra_users: Sequence[BrokerUser], extra_users_acl: Mapping[str, Sequence[str]]) -> tuple[Path, Path]:
    passwd_path, acl_path = out_dir / "passwd", out_dir / "acl"
    workers = [BrokerUser(worker_username(ledger_user.username, k), ledger_user.password_hash)
               for k in range(2, LEDGER_WORKER_LOGINS + 1)]
    _check_unique_users(ledger_user, terminals, [*workers, *extra_users])
    users = [ledger_user, *workers, *(BrokerUser(t.terminal_id, t.password_hash) for t in terminals), *extra_users]
    _write_private_file(passwd_path, render_password_file(users))
    _write_private_file(
        acl_path,
        render_acl(park_id, [ledger_user.username, *(w.username for w in workers)], [t.terminal_id for t in terminals],
                   extra_users_acl),
    )
    return passwd_path, acl_path


def is_loopback_host(host: str) -> bool:
    """True for a broker host that names the machine itself (127.0.0.0/8, ::1, localhost): a bundle
    with one works only for a terminal run on the ledger's own host, never on a Pi."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_run_as_user() -> str:
    """The account Mosquitto should run as: the one running us.

    Mosquitto started as root drops to the ``mosquitto`` user unless the config names another, and
    does so right after reading the config, before it opens the password file, the ACL, the TLS
    key or the persistence database. In a root-owned directory (CI containers, the demo) it then
    cannot read or write them, so as root we say ``user root``; as anyone else the option has no
    effect and naming the current user merely records the truth.
    """
    return pwd.getpwuid(os.geteuid()).pw_name


def render_password_file(users: Sequence[BrokerUser]) -> str:
    lines = []
    for user in users:
        _check_password_hash(user.username, user.password_hash)
        lines.append(f"{user.username}:{user.password_hash}\n")
    return "".join(lines)


def render_acl(
    park_id: str,
    ledger_username: str | Sequence[str],
    terminal_ids: Sequence[str],
    extra_users_acl: Mapping[str, Sequence[str]],
) -> str:
    """The ACL file: one ``user`` block per login, explicit topics only (no ``pattern`` rules).

    Explicit per-terminal blocks rather than ``pattern ... %u`` rules: a pattern applies to every
    user, ledger and observers included, and the file then reads as exactly what each login may do.
    """
    ledger_usernames = [ledger_username] if isinstance(ledger_username, str) else list(ledger_username)
    blocks = ["# Generated by transport/broker_config.py; do not edit, regenerate.\n"]
    for username in ledger_usernames:  # the ledger and its workers: the whole park, shared subscriptions included
        blocks.append(f"user {username}\ntopic readwrite {park_topic_filter(park_id)}\n")
    for terminal_id in terminal_ids:
        blocks.append(
            f"user {terminal_id}\n"
            f"topic write {topics.request(park_id, terminal_id)}\n"
            f"topic write {topics.status(park_id, terminal_id)}\n"
            f"topic read {topics.result(park_id, terminal_id)}\n"
            f"topic read {topics.config(park_id, terminal_id)}\n"
            f"topic read {topics.blocklist(park_id)}\n"
        )
    for username, rules in extra_users_acl.items():
        rule_lines = "".join(f"topic {_checked_acl_rule(username, rule)}\n" for rule in rules)
        blocks.append(f"user {username}\n{rule_lines}")
    return "\n".join(blocks)


def render_mosquitto_conf(
    *,
    passwd_path: Path,
    acl_path: Path,
    listen_host: str,
    port: int,
    tls: TlsFiles | None,
    tls_port: int,
    persistence_dir: Path | None,
    autosave_interval_s: int,
    run_as_user: str,
) -> str:
    for label, path in [("password file", passwd_path), ("ACL file", acl_path)]:
        _check_path(label, path)
    _check_host(listen_host)
    lines = [
        "# Generated by transport/broker_config.py; do not edit, regenerate.",
        f"user {run_as_user}",
        # Auth settings apply to every listener alike; a per-listener override is a way to
        # forget one.
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {passwd_path}",
        f"acl_file {acl_path}",
        # Nagle's algorithm against delayed ACKs costs ~44 ms per hop on a request/result round
        # trip (measured on 2.0.11: 88 ms with neither side setting TCP_NODELAY, 44 ms with one,
        # 0.6 ms with both). paho 2.2 never sets it, so clients must set it on their socket too.
        "set_tcp_nodelay true",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"message_size_limit {MESSAGE_SIZE_LIMIT_BYTES}",
        "log_dest stderr",
        *(f"log_type {log_type}" for log_type in LOG_TYPES),
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        *_persistence_lines(persistence_dir, autosave_interval_s),
        "",
        *_listener_lines(port, listen_host),
    ]
    if tls is not None:
        for label, path in [("cafile", tls.cafile), ("certfile", tls.certfile), ("keyfile", tls.keyfile)]:
            _check_path(label, Path(path))
        lines += [
            "",
            *_listener_lines(tls_port, listen_host),
            f"cafile {Path(tls.cafile).resolve()}",
            f"certfile {Path(tls.certfile).resolve()}",
            f"keyfile {Path(tls.keyfile).resolve()}",
            # Mosquitto 2.0 reads this as the minimum version (1.6 read it as the only one).
            "tls_version tlsv1.2",
        ]
    return "\n".join(lines) + "\n"


def _listener_lines(port: int, host: str) -> list[str]:
    _check_port(port)
    return [
        f"listener {port} {host}",
        # A listener option in Mosquitto 2.0, not a global one: it must follow every "listener"
        # line, and given before the first one it would configure an extra default listener.
        "use_username_as_clientid true",
    ]


def _persistence_lines(persistence_dir: Path | None, autosave_interval_s: int) -> list[str]:
    if persistence_dir is None:
        return ["persistence false"]
    _check_path("persistence dir", persistence_dir)
    if autosave_interval_s < 0:
        raise BrokerConfigError(f"autosave_interval_s must be >= 0, got {autosave_interval_s}")
    return [
        "persistence true",
        f"persistence_location {persistence_dir}",
        # The database is written at a clean shutdown and every autosave_interval seconds; a
        # SIGKILL loses what arrived since the last save (the previous file stays intact, since
        # Mosquitto writes a new file and renames it).
        f"autosave_interval {autosave_interval_s}",
    ]


def _hand_over_to(username: str, paths: Sequence[Path]) -> None:
    """As root, let ``username`` read what Mosquitto opens after it has dropped privileges."""
    if os.geteuid() != 0 or username == "root":
        return
    try:
        account = pwd.getpwnam(username)
    except KeyError as error:
        raise BrokerConfigError(f"run_as_user {username!r} does not exist on this machine") from error
    for path in paths:
        os.chown(path, account.pw_uid, account.pw_gid)


def _write_private_file(path: Path, text: str) -> None:
    # Hashes and the ACL are nobody else's business; create 0600 rather than chmod afterwards.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.chmod(path, 0o600)


def _check_unique_users(
    ledger_user: BrokerUser, terminals: Sequence[TerminalCredential], extra_users: Sequence[BrokerUser]
) -> None:
    usernames = [ledger_user.username, *(t.terminal_id for t in terminals)]
    usernames += [user.username for user in extra_users]
    for username in usernames:
        _check_username("username", username)
    duplicates = sorted({name for name in usernames if usernames.count(name) > 1})
    if duplicates:
        # With use_username_as_clientid two logins with one name would keep kicking each other off.
        raise BrokerConfigError(f"usernames must be unique, repeated: {', '.join(duplicates)}")


def _check_username(label: str, value: str) -> None:
    if not _USERNAME_PATTERN.fullmatch(value):
        raise BrokerConfigError(
            f"{label} {value!r} must be 1-64 letters, digits, '_', '.', '-', starting with a letter or digit"
        )


def _check_protocol_id(label: str, value: str) -> None:
    try:
        topics.check_id(value, label)
    except LocalProtocolError as error:
        raise BrokerConfigError(str(error.args[0])) from error


def _check_password_hash(username: str, password_hash: str) -> None:
    fields = password_hash.split("$")
    is_well_formed = len(fields) == 5 and not fields[0] and fields[1] in ("6", "7")
    if not is_well_formed or any(c in password_hash for c in ":\n\r "):
        raise BrokerConfigError(f"password hash for {username!r} is not a Mosquitto hash; use hash_password()")


def _checked_acl_rule(username: str, rule: str) -> str:
    access, _, topic = rule.strip().partition(" ")
    topic = topic.strip()
    if access not in _ACL_ACCESS_KINDS or not topic or any(c in topic for c in "\n\r\0"):
        raise BrokerConfigError(
            f"ACL rule {rule!r} for {username!r} must read '<{'|'.join(_ACL_ACCESS_KINDS)}> <topic filter>'"
        )
    return f"{access} {topic}"


def _check_path(label: str, path: Path) -> None:
    # Mosquitto's config is line-based and a value ends at the line end.
    if any(c in str(path) for c in "\n\r\0"):
        raise BrokerConfigError(f"{label} path {str(path)!r} contains a line break")


def _check_host(host: str) -> None:
    if not host or any(c.isspace() or c == "\0" for c in host):
        raise BrokerConfigError(f"listen host {host!r} is not a host name or address")


def _check_port(port: int) -> None:
    if not 0 < port < 65536:
        raise BrokerConfigError(f"port {port} is out of range")
