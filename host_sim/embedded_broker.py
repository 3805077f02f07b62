"""A Python MQTT broker inside this process, so ``fieldpos demo`` needs nothing but pip.

:class:`EmbeddedBroker` runs amqtt's broker on a loopback port in a background thread with its own
asyncio event loop, and offers the surface the park rig uses from
:class:`transport.mosquitto_process.MosquittoProcess`. It reads the very ``passwd`` and ``acl`` files
that :func:`transport.broker_config.write_broker_config` writes for Mosquitto, so the two brokers have
one source of logins and access rules:

* :class:`MosquittoPasswordFileAuthPlugin` checks Mosquitto's ``$7$`` (PBKDF2-HMAC-SHA512) hashes;
  no anonymous access, and the client id must equal the username (Mosquitto's
  ``use_username_as_clientid`` rewrites the id; amqtt has looked the session up by then, so we
  refuse instead);
* :class:`MosquittoAclFileTopicPlugin` applies the ``acl`` file with MQTT wildcard semantics on
  publish, subscribe and delivery. It replaces amqtt's own ``TopicAccessControlListPlugin``, whose
  0.12 dataclass config has no ``subscribe_acl`` field (only the deprecated ``acl``), whose matcher
  lets neither ``a/#`` match ``a`` nor ``a/b/#`` cover a subscription to ``a/b``, and which knows no
  ``deny`` rules.

What amqtt 0.12 is not, and why a park runs Mosquitto:

* it speaks MQTT 3.1.1 only: it answers an MQTT 5 CONNECT with a 3.1.1 CONNACK "unacceptable
  protocol version" that paho 5 cannot parse, so paho never reports a connection at all. Every
  client must use ``mqtt_version="3.1.1"``;
* a QoS 1 message queued for an offline persistent session arrives with the retain flag set;
* it keeps everything in memory: stop(), kill() and restart() forget every persistent session and
  its queued messages, as Mosquitto does when its persistence database is lost. The ledger and the
  terminals subscribe again on every connect and terminals re-send until they hold a Result, so
  nothing is lost, only re-sent;
* stock amqtt 0.12 deletes (clean session) or adopts (persistent session) the session named by a
  CONNECT's client id, and takes over a connected client, *before* it authenticates the CONNECT:
  one CONNECT with a terminal's id and a wrong password silently unsubscribed the live terminal,
  which then never got its Results. :class:`_AuthenticateFirstBroker` moves the check to the front.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
import hashlib
import hmac
import logging
from pathlib import Path
import threading

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, MQTTError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from transport.broker_config import PBKDF2_SHA512_TAG
from transport.mosquitto_process import (
    BrokerError,
    BrokerNotInstalledError,
    BrokerStartError,
    MosquittoProcess,
    find_mosquitto,
    is_port_accepting,
)
from transport.mqtt import SESSION_EXPIRY_S

log = logging.getLogger("fieldpos.host_sim.embedded_broker")

PASSWORD_FILE_NAME = "passwd"
ACL_FILE_NAME = "acl"
MOSQUITTO_CONFIG_NAME = "mosquitto.conf"
# The only protocol amqtt 0.12 speaks.
EMBEDDED_MQTT_VERSION = "3.1.1"
DEFAULT_STOP_TIMEOUT_S = 10.0
BROKER_CHOICES = ("auto", "mosquitto", "embedded")
# amqtt logs every connection at INFO and every packet at DEBUG; a demo prints a summary instead.
_NOISY_LOGGERS = ("amqtt", "transitions")

_READ_ACCESS = frozenset({"read", "readwrite"})
_WRITE_ACCESS = frozenset({"write", "readwrite"})


class AclFileError(BrokerError, ValueError):
    """The ``passwd`` or ``acl`` file holds a line the embedded broker does not understand."""

    code = "BROKER_ACL_FILE"


# ---------------------------------------------------------------- Mosquitto's files, parsed
def read_password_file(path: Path) -> dict[str, str]:
    """``{username: hash}`` from a Mosquitto password file (``username:hash`` per line)."""
    users: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        username, separator, password_hash = line.partition(":")
        if not separator or not username or not password_hash:
            raise AclFileError(f"{path}:{number}: expected 'username:hash'")
        users[username] = password_hash
    return users


def verify_password(password: str, password_hash: str) -> bool:
    """True if ``password`` matches a Mosquitto ``$7$<iterations>$<salt>$<digest>`` hash.

    Other formats (``$6$`` from Mosquitto 1.x) are refused, never accepted unchecked.
    """
    fields = password_hash.split("$")
    if len(fields) != 5 or fields[0] or fields[1] != str(PBKDF2_SHA512_TAG):
        return False
    try:
        iterations = int(fields[2])
        salt = base64.b64decode(fields[3], validate=True)
        expected = base64.b64decode(fields[4], validate=True)
    except ValueError:  # binascii.Error is a ValueError
        return False
    if iterations < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True, slots=True)
class AclRule:
    """One ``topic <access> <filter>`` line of a user's block."""

    access: str  # read, write, readwrite or deny
    topic_filter: str


def read_acl_file(path: Path) -> dict[str, tuple[AclRule, ...]]:
    """``{username: rules}`` from a Mosquitto ACL file of ``user`` blocks.

    Only what :func:`transport.broker_config.render_acl` writes is understood; anything else
    (``pattern`` rules, topics before the first ``user``) is an error rather than a silently
    wider or narrower rule set.
    """
    rules: dict[str, list[AclRule]] = {}
    current: str | None = None
    for number, raw_line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        rest = rest.strip()
        if keyword == "user" and rest and " " not in rest:
            current = rest
            rules.setdefault(current, [])
        elif keyword == "topic" and current is not None and rest:
            access, _, topic_filter = rest.partition(" ")
            topic_filter = topic_filter.strip()
            if not topic_filter:  # "topic FILTER" means readwrite in Mosquitto
                access, topic_filter = "readwrite", access
            if access not in ("read", "write", "readwrite", "deny") or not is_valid_filter(topic_filter):
                raise AclFileError(f"{path}:{number}: cannot read ACL rule {line!r}")
            rules[current].append(AclRule(access, topic_filter))
        else:
            raise AclFileError(f"{path}:{number}: the embedded broker does not understand {line!r}")
    return {username: tuple(user_rules) for username, user_rules in rules.items()}


# ---------------------------------------------------------------- MQTT topic matching
def is_valid_filter(topic_filter: str) -> bool:
    """MQTT 4.7.1: '+' fills a whole level, '#' a whole last level."""
    levels = topic_filter.split("/")
    return bool(topic_filter) and all(
        ("+" not in level or level == "+") and ("#" not in level or (level == "#" and index == len(levels) - 1))
        for index, level in enumerate(levels)
    )


def topic_matches(topic: str, topic_filter: str) -> bool:
    """True if the concrete ``topic`` is matched by ``topic_filter`` (``a/#`` matches ``a`` too)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # MQTT 4.7.2: wildcards at the first level do not match $-topics
    topic_levels = topic.split("/")
    filter_levels = topic_filter.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or level not in ("+", topic_levels[index]):
            return False
    return len(topic_levels) == len(filter_levels)


def filter_is_within(subscription: str, allowed: str) -> bool:
    """True if every topic ``subscription`` can match is also matched by ``allowed``.

    So ``fieldpos/v1/P1/t/+/req`` is within ``fieldpos/v1/P1/#`` but ``fieldpos/#`` is not within
    ``fieldpos/v1/P1/t/T1/res``, and ``a/+`` is not within ``a/b``: a wildcard in the subscription
    is covered only by a wildcard in the rule.
    """
    sub_levels = subscription.split("/")
    allowed_levels = allowed.split("/")
    for index, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if index >= len(sub_levels):
            return False
        wanted = sub_levels[index]
        if wanted == "#" or (level != "+" and level != wanted):
            return False
    # "a/b/#" covers "a/b" (the parent level), handled above; here both must end together.
    return len(sub_levels) == len(allowed_levels)


def is_allowed(rules: tuple[AclRule, ...], topic: str, action: Action) -> bool:
    """Mosquitto's rule for one login: a matching ``deny`` wins, then any matching grant allows."""
    if action == Action.SUBSCRIBE:
        if any(rule.access == "deny" and filter_is_within(topic, rule.topic_filter) for rule in rules):
            return False
        return any(rule.access in _READ_ACCESS and filter_is_within(topic, rule.topic_filter) for rule in rules)
    if any(rule.access == "deny" and topic_matches(topic, rule.topic_filter) for rule in rules):
        return False
    wanted = _WRITE_ACCESS if action == Action.PUBLISH else _READ_ACCESS
    return any(rule.access in wanted and topic_matches(topic, rule.topic_filter) for rule in rules)


# ---------------------------------------------------------------- amqtt plugins
class MosquittoPasswordFileAuthPlugin(BaseAuthPlugin):
    """Logs in against a Mosquitto password file; refuses anonymous clients and borrowed client ids."""

    @dataclass
    class Config:
        password_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._users = read_password_file(Path(self.config.password_file))

    async def authenticate(self, *, session: Session) -> bool:
        username = session.username
        password_hash = self._users.get(username or "")
        if password_hash is None:
            return False
        if session.client_id != username:
            # Another login's client id would resume that login's session and its queued messages.
            self.context.logger.warning("refused %r: client id %r is not its username", username, session.client_id)
            return False
        # 101 PBKDF2 rounds take ~0.1 ms, so this runs on the event loop.
        return verify_password(session.password or "", password_hash)


class MosquittoAclFileTopicPlugin(BaseTopicPlugin):
    """Applies a Mosquitto ACL file on publish, subscribe and delivery; no rules, no access."""

    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._rules = read_acl_file(Path(self.config.acl_file))

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        if session is None or not session.username or not topic or action is None:
            return False
        return is_allowed(self._rules.get(session.username, ()), topic, action)


class _AuthenticateFirstBroker(Broker):
    """amqtt's Broker with each CONNECT authenticated before its client id touches any session.

    The body is amqtt 0.12.1's ``Broker._initialize_client_session`` (MIT licence) with the
    authentication moved to the front; hence the ``<0.13`` pin. A refused login gets CONNACK
    "not authorised" and its connection closed, and no session is deleted, adopted or taken over.
    (amqtt authenticates again in ``_handle_client_session``; 101 PBKDF2 rounds cost ~0.1 ms.)
    """

    async def _initialize_client_session(
        self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        handler, client_session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        if not await self._authenticate(client_session, self.listeners_config["default"]):
            handler.attach(client_session, reader, writer)
            try:
                await handler.mqtt_connack_authorize(False)
                await writer.close()
            except OSError:  # the client has gone already
                pass
            raise MQTTError(f"refused the login of {client_session.username!r} from {remote_address}:{remote_port}")

        if client_session.clean_session:
            if client_session.client_id:
                await self._delete_session(client_session.client_id)
            else:
                client_session.client_id = gen_client_id()
            client_session.parent = 0
        elif client_session.client_id in self._sessions:
            # A reconnect resumes the stored session, with this CONNECT's will and keep-alive.
            existing_session, _ = self._sessions[client_session.client_id]
            for name in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive", "username", "password"):
                setattr(existing_session, name, getattr(client_session, name))
            client_session = existing_session
            client_session.parent = 1
        else:
            client_session.parent = 0

        timeout_disconnect_delay = self.config.get("timeout-disconnect-delay", 0)
        if client_session.keep_alive > 0 and isinstance(timeout_disconnect_delay, int):
            client_session.keep_alive += timeout_disconnect_delay
        return handler, client_session


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """One line, not a traceback, for a client that hung up mid-handshake (an MQTT 5 CONNECT does)."""
    error = context.get("exception")
    if isinstance(error, (OSError, AMQTTError)) and "client_connected_cb" in context.get("message", ""):
        log.warning("embedded broker: a client hung up during CONNECT (MQTT 5 clients are refused: this broker "
                    "speaks %s only): %s", EMBEDDED_MQTT_VERSION, error)
    else:
        loop.default_exception_handler(context)


def _plugin_path(plugin: type) -> str:
    return f"{plugin.__module__}.{plugin.__qualname__}"


def quiet_amqtt_logging() -> None:
    """amqtt logs each connection at INFO; keep its warnings and errors only."""
    for name in _NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


# ---------------------------------------------------------------- the broker
class EmbeddedBroker:
    """amqtt's broker on ``host:port`` in a thread of this process, with the park's passwd and acl.

    Same surface as :class:`transport.mosquitto_process.MosquittoProcess` as far as the rig uses it:
    ``start``, ``stop``, ``kill``, ``restart``, ``is_running``, ``port``, context manager. There is
    no process to SIGKILL, so :meth:`kill` is :meth:`stop`; since amqtt keeps no state on disk,
    either one loses every session and queued message, which is what a Mosquitto crash before its
    autosave loses too.
    """

    mqtt_version = EMBEDDED_MQTT_VERSION

    def __init__(self, config_dir: Path, port: int, *, host: str = "127.0.0.1"):
        config_dir = Path(config_dir)
        # Also accept the mosquitto.conf path that ParkHome.write_broker_config returns.
        self.config_dir = (config_dir.parent if config_dir.is_file() else config_dir).resolve()
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None

    @property
    def password_path(self) -> Path:
        return self.config_dir / PASSWORD_FILE_NAME

    @property
    def acl_path(self) -> Path:
        return self.config_dir / ACL_FILE_NAME

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def broker_config(self) -> BrokerConfig:
        return BrokerConfig(
            listeners={"default": ListenerConfig(type=ListenerType.TCP, bind=f"{self.host}:{self.port}")},
            # Only our two plugins: no anonymous login, no $SYS topics, no per-packet logging.
            plugins={
                _plugin_path(MosquittoPasswordFileAuthPlugin): {"password_file": str(self.password_path)},
                _plugin_path(MosquittoAclFileTopicPlugin): {"acl_file": str(self.acl_path)},
            },
            session_expiry_interval=SESSION_EXPIRY_S,
        )

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker thread and return once the port accepts MQTT connections."""
        if self.is_running:
            raise BrokerStartError(f"the embedded broker on port {self.port} is already running")
        if is_port_accepting(self.host, self.port):
            raise BrokerStartError(f"port {self.host}:{self.port} is already taken by another process")
        # Read both files here too, so a bad line is reported plainly instead of as a plugin error.
        try:
            read_password_file(self.password_path)
            read_acl_file(self.acl_path)
        except OSError as error:
            raise BrokerStartError(f"cannot read the broker's logins or ACL ({error}); "
                                   "write them with 'fieldpos broker-config' first") from error
        quiet_amqtt_logging()
        started = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(started, failure), name=f"embedded-broker-{self.port}", daemon=True
        )
        self._thread.start()
        if not started.wait(timeout_s):
            self.stop()
            raise BrokerStartError(f"the embedded broker did not listen on {self.host}:{self.port} within {timeout_s} s")
        if failure:
            self._thread.join(timeout_s)
            self._thread = None
            raise BrokerStartError(f"the embedded broker could not start: {failure[0]}") from failure[0]

    def stop(self, timeout_s: float = DEFAULT_STOP_TIMEOUT_S) -> None:
        """Shut amqtt down (clients are disconnected) and wait for its thread to end."""
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:  # the loop closed in between
                pass
        thread.join(timeout_s)
        if thread.is_alive():
            raise BrokerError(f"the embedded broker on port {self.port} did not stop within {timeout_s} s")
        self._thread = None

    def kill(self) -> None:
        """The same as :meth:`stop`: an in-process broker has no process to kill, and stop() keeps
        nothing either (amqtt holds sessions in memory only)."""
        self.stop()

    def restart(self, timeout_s: float = 10.0) -> None:
        self.stop()
        self.start(timeout_s)

    def __enter__(self) -> EmbeddedBroker:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------ the broker's thread
    def _run(self, started: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(_log_loop_exception)
        self._loop = loop
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._serve(started, failure))
        except BaseException as error:  # noqa: BLE001 - reported to start(), which raises it
            if not started.is_set():
                failure.append(error)
            else:
                log.exception("the embedded broker stopped with an error")
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                self._loop = None

    async def _serve(self, started: threading.Event, failure: list[BaseException]) -> None:
        self._stop_requested = asyncio.Event()
        try:
            broker = _AuthenticateFirstBroker(self.broker_config(), loop=asyncio.get_running_loop())
            await broker.start()
        except Exception as error:  # noqa: BLE001 - amqtt wraps the cause; start() reports it
            failure.append(error.__cause__ or error)
            started.set()
            return
        started.set()
        try:
            await self._stop_requested.wait()
        finally:
            await broker.shutdown()


# ---------------------------------------------------------------- choosing a broker
def start_park_broker(
    config_dir: Path, port: int, prefer: str = "auto", *, timeout_s: float = 10.0
) -> MosquittoProcess | EmbeddedBroker:
    """Start the park's broker from the directory :func:`transport.broker_config.write_broker_config` wrote.

    ``prefer``: ``"mosquitto"`` needs the binary (installed as root if missing, else
    BrokerNotInstalledError),
    ``"embedded"`` always runs amqtt in this process, ``"auto"`` uses Mosquitto when it is on this
    machine and amqtt otherwise. The broker returned is running; an embedded one speaks MQTT 3.1.1 only.
    """
    if prefer not in BROKER_CHOICES:
        raise ValueError(f"prefer must be one of {', '.join(BROKER_CHOICES)}, got {prefer!r}")
    config_dir = Path(config_dir)
    config_dir = config_dir.parent if config_dir.is_file() else config_dir
    if prefer != "embedded":
        try:
            # Asked for by name, Mosquitto is installed if missing (as MosquittoProcess does);
            # "auto" only looks, so a demo on a laptop never runs apt-get.
            executable = find_mosquitto(install_if_missing=prefer == "mosquitto")
        except BrokerNotInstalledError:
            if prefer == "mosquitto":
                raise
            log.info("no mosquitto on this machine; using the embedded amqtt broker (MQTT 3.1.1 only)")
        else:
            broker = MosquittoProcess(config_dir / MOSQUITTO_CONFIG_NAME, port, executable=executable)
            broker.start(timeout_s)
            return broker
    broker = EmbeddedBroker(config_dir, port)
    broker.start(timeout_s)
    return broker


def is_embedded(broker: object) -> bool:
    return isinstance(broker, EmbeddedBroker)


def describe_broker(broker: object) -> str:
    """A few words for a summary line: which broker the rig is running."""
    if isinstance(broker, EmbeddedBroker):
        from importlib.metadata import version

        return f"embedded amqtt {version('amqtt')} broker"
    return "real Mosquitto"
