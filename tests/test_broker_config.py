"""The broker keeps every terminal in its own lane.

Each test starts a private Mosquitto from the generated config on a free loopback port and talks
to it with paho-mqtt. "Nothing arrives" is never a sleep: a later message on the same path acts as
a barrier (Mosquitto delivers one publisher's messages to one subscriber in order), so the
forbidden one would have arrived before it.

The fixtures (``running_broker``, ``mqtt_client``) and ``MqttTestClient`` are plain and
self-contained so they can move into conftest.py unchanged.
"""

from __future__ import annotations

import base64
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from protocol import topics
from transport.broker_config import (
    BrokerConfigError,
    BrokerUser,
    TerminalCredential,
    TlsFiles,
    hash_password,
    ledger_request_share_filter,
    park_topic_filter,
    write_broker_config,
)
from transport.mosquitto_process import BrokerStartError, MosquittoProcess, find_mosquitto, free_port
from transport.park_ca import create_park_ca, issue_server_certificate

PARK_ID = "lakeside"
# Long enough for a loaded CI machine, short enough that a failing test still ends quickly.
WAIT_S = 5.0
PASSWORDS = {
    "ledger": "ledger-secret",
    "ledger-2": "second-worker-secret",
    "T1": "fishing-station-secret",
    "T2": "bbq-station-secret",
    "observer": "observer-secret",
}
# The observer's hash uses a non-default count, so a login proves the broker reads the count field.
OBSERVER_HASH_ITERATIONS = 1000


T1_REQUEST = topics.request(PARK_ID, "T1")
T1_RESULT = topics.result(PARK_ID, "T1")
T1_STATUS = topics.status(PARK_ID, "T1")
T1_CONFIG = topics.config(PARK_ID, "T1")
T2_REQUEST = topics.request(PARK_ID, "T2")
T2_RESULT = topics.result(PARK_ID, "T2")
BLOCKLIST = topics.blocklist(PARK_ID)


# --- fixtures ----------------------------------------------------------------------------------


@dataclass
class RunningBroker:
    process: MosquittoProcess
    config_path: Path
    port: int
    tls_port: int | None


@pytest.fixture(scope="session")
def mosquitto_executable() -> str:
    return find_mosquitto()


@pytest.fixture
def running_broker(tmp_path: Path, mosquitto_executable: str) -> Iterator[Callable[..., RunningBroker]]:
    """Factory: write the park's broker config into a fresh directory and start Mosquitto on it.

    ``edit_config`` may rewrite the generated mosquitto.conf text (for control experiments).
    """
    brokers: list[RunningBroker] = []

    def start(
        *,
        tls: TlsFiles | None = None,
        persistence: bool = False,
        edit_config: Callable[[str], str] | None = None,
    ) -> RunningBroker:
        config_dir = tmp_path / f"broker-{len(brokers)}"
        port = free_port()
        tls_port = free_port() if tls else None
        config_path = write_broker_config(
            config_dir,
            park_id=PARK_ID,
            ledger_user=BrokerUser("ledger", hash_password(PASSWORDS["ledger"])),
            terminals=[
                TerminalCredential("T1", hash_password(PASSWORDS["T1"])),
                TerminalCredential("T2", hash_password(PASSWORDS["T2"])),
            ],
            port=port,
            tls=tls,
            tls_port=tls_port or 8883,
            persistence_dir=config_dir / "db" if persistence else None,
            extra_users=[
                BrokerUser("observer", hash_password(PASSWORDS["observer"], iterations=OBSERVER_HASH_ITERATIONS)),
                BrokerUser("ledger-2", hash_password(PASSWORDS["ledger-2"])),
            ],
            extra_users_acl={
                "observer": ["read fieldpos/#"],
                "ledger-2": [f"readwrite {park_topic_filter(PARK_ID)}"],
            },
        )
        if edit_config is not None:
            config_path.write_text(edit_config(config_path.read_text()))
        process = MosquittoProcess(config_path, port, executable=mosquitto_executable)
        broker = RunningBroker(process, config_path, port, tls_port)
        brokers.append(broker)
        process.start()
        return broker

    yield start
    for broker in brokers:
        broker.process.kill()


@dataclass(frozen=True)
class ConnectOutcome:
    """The first thing that happened after connecting: a CONNACK, or the connection closing."""

    is_connack: bool
    reason_code: ReasonCode | int
    session_present: bool = False

    @property
    def is_accepted(self) -> bool:
        return self.is_connack and not self.reason_code.is_failure


class MqttTestClient:
    """A paho client whose callbacks feed queues, so a test waits on events with a deadline."""

    def __init__(
        self,
        username: str | None,
        *,
        client_id: str | None = None,
        protocol: int = mqtt.MQTTv5,
        clean_session: bool = True,
        password: str | None = None,
    ):
        session_option = {} if protocol == mqtt.MQTTv5 else {"clean_session": clean_session}
        self.paho = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id if client_id is not None else (username or ""),
            protocol=protocol,
            **session_option,
        )
        if username is not None:
            self.paho.username_pw_set(username, password if password is not None else PASSWORDS[username])
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.disconnects: queue.Queue[ReasonCode] = queue.Queue()
        self._connect_outcomes: queue.Queue[ConnectOutcome] = queue.Queue()
        self._acks: dict[int, object] = {}
        self._acks_changed = threading.Condition()
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_message = lambda _client, _userdata, message: self.messages.put(message)
        self.paho.on_subscribe = lambda _c, _u, mid, reason_codes, _p: self._record_ack(mid, reason_codes)
        self.paho.on_publish = lambda _c, _u, mid, reason_code, _p: self._record_ack(mid, reason_code)

    def connect(self, port: int, host: str = "127.0.0.1", *, ca_file: Path | None = None) -> ConnectOutcome:
        if ca_file is not None:
            # Default paho TLS: certificate required and host name checked.
            self.paho.tls_set(ca_certs=str(ca_file))
        self.paho.connect(host, port)
        self.paho.loop_start()
        return self._connect_outcomes.get(timeout=WAIT_S)

    def subscribe(self, topic_filter: str, qos: int = 1) -> list[ReasonCode]:
        _, mid = self.paho.subscribe(topic_filter, qos)
        return self._wait_ack(mid)  # type: ignore[return-value]

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> ReasonCode:
        """Publish and wait for the broker's PUBACK; its reason code says whether it was allowed (MQTT 5)."""
        info = self.paho.publish(topic, payload, qos=qos, retain=retain)
        return self._wait_ack(info.mid)  # type: ignore[return-value]

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT_S)

    def messages_until(self, barrier_topic: str) -> list[mqtt.MQTTMessage]:
        """Messages received before the first one on ``barrier_topic`` (which is not included)."""
        earlier = []
        while (message := self.next_message()).topic != barrier_topic:
            earlier.append(message)
        return earlier

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def _on_connect(self, _client, _userdata, flags, reason_code, _properties) -> None:
        self._connect_outcomes.put(ConnectOutcome(True, reason_code, bool(flags.session_present)))

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.disconnects.put(reason_code)
        self._connect_outcomes.put(ConnectOutcome(False, reason_code))

    def _record_ack(self, mid: int, result: object) -> None:
        with self._acks_changed:
            self._acks[mid] = result
            self._acks_changed.notify_all()

    def _wait_ack(self, mid: int) -> object:
        with self._acks_changed:
            if not self._acks_changed.wait_for(lambda: mid in self._acks, timeout=WAIT_S):
                raise TimeoutError(f"no acknowledgement for message id {mid} within {WAIT_S} s")
            return self._acks.pop(mid)


@pytest.fixture
def mqtt_client() -> Iterator[Callable[..., MqttTestClient]]:
    """Factory: ``mqtt_client(port, username, **options)`` connects and requires the login to succeed."""
    clients: list[MqttTestClient] = []

    def connect(port: int, username: str, *, host: str = "127.0.0.1", ca_file: Path | None = None, **options):
        client = MqttTestClient(username, **options)
        clients.append(client)
        outcome = client.connect(port, host, ca_file=ca_file)
        assert outcome.is_accepted, f"{username} was refused: {outcome}"
        return client

    yield connect
    for client in clients:
        client.close()


def try_login(port: int, username: str | None, password: str | None) -> ConnectOutcome:
    client = MqttTestClient(username, client_id="login-probe", password=password)
    try:
        return client.connect(port)
    finally:
        client.close()


# --- password file ------------------------------------------------------------------------------


def test_hash_matches_what_mosquitto_passwd_writes():
    # Both produced by mosquitto_passwd 2.0.11 (-b, then -I 5 for the second).
    assert (
        hash_password("secret", salt=base64.b64decode("hrIoaMCq7DYDto2B"))
        == "$7$101$hrIoaMCq7DYDto2B$/xXSWbScht4D7FT8tK11MucuRFmJZcPyfTDakrEqYy4UK6jKhbQTspo7p86D5zG8GNc3LpM2MqyVx74NqTsX2A=="
    )
    assert (
        hash_password("x", salt=base64.b64decode("ScT4LVmGBz92xzYb"), iterations=5)
        == "$7$5$ScT4LVmGBz92xzYb$Do9D7F6vmYK1jNJJymAMA5n3Rhl4jXa2/fOrlrr9ynduds0jxguc4CXa3cbhME12xbv0bbnvKocgHFUmRW9hnw=="
    )


def test_hash_refuses_a_salt_mosquitto_would_reject():
    # Mosquitto 2.0.11 logs "Unable to decode password salt" and drops the user for any other length.
    with pytest.raises(BrokerConfigError):
        hash_password("secret", salt=bytes(16))


def test_hashed_passwords_log_in_and_wrong_ones_are_refused(running_broker):
    broker = running_broker()

    assert try_login(broker.port, "T1", PASSWORDS["T1"]).is_accepted
    assert try_login(broker.port, "observer", PASSWORDS["observer"]).is_accepted
    for username, password in [("T1", "wrong"), ("T1", PASSWORDS["T2"]), ("stranger", "x"), (None, None)]:
        outcome = try_login(broker.port, username, password)
        assert outcome.is_connack and outcome.reason_code.is_failure, (username, outcome)


# --- ACL ----------------------------------------------------------------------------------------


def test_a_terminal_publishes_only_on_its_own_request_and_status(running_broker, mqtt_client):
    broker = running_broker()
    observer = mqtt_client(broker.port, "observer")
    observer.subscribe("fieldpos/#")
    terminal = mqtt_client(broker.port, "T1")

    assert not terminal.publish(T1_REQUEST, b"charge 30").is_failure
    forged = {T2_REQUEST: b"forged charge", T1_RESULT: b"forged result", BLOCKLIST: b"[]"}
    for topic, payload in forged.items():
        assert terminal.publish(topic, payload).getName() == "Not authorized", topic
    assert not terminal.publish(T1_STATUS, b"online").is_failure

    seen = observer.messages_until(T1_STATUS)
    assert [(m.topic, m.payload) for m in seen] == [(T1_REQUEST, b"charge 30")]


def test_a_terminal_cannot_read_another_terminals_results_even_through_a_shared_subscription(
    running_broker, mqtt_client
):
    broker = running_broker()
    ledger = mqtt_client(broker.port, "ledger")
    terminal = mqtt_client(broker.port, "T1")
    # Mosquitto 2.0 grants these (it checks read access per delivered message, not at SUBSCRIBE).
    terminal.subscribe(T2_RESULT)
    terminal.subscribe(f"$share/sneak/{T2_RESULT}")
    terminal.subscribe(T1_RESULT)

    ledger.publish(T2_RESULT, b"T2 balance 500")
    ledger.publish(T1_RESULT, b"T1 approved")

    assert terminal.messages_until(T1_RESULT) == []


def test_a_terminal_reads_the_park_blocklist_and_its_own_config(running_broker, mqtt_client):
    broker = running_broker()
    ledger = mqtt_client(broker.port, "ledger")
    ledger.publish(BLOCKLIST, b"blocklist v7", retain=True)
    ledger.publish(T1_CONFIG, b"config v3", retain=True)

    terminal = mqtt_client(broker.port, "T1")
    terminal.subscribe(BLOCKLIST)
    terminal.subscribe(T1_CONFIG)

    received = {terminal.next_message().payload, terminal.next_message().payload}
    assert received == {b"blocklist v7", b"config v3"}


def test_logging_in_as_t2_with_client_id_t1_does_not_take_over_t1s_session(running_broker, mqtt_client):
    broker = running_broker()
    ledger = mqtt_client(broker.port, "ledger")
    terminal = mqtt_client(broker.port, "T1")
    terminal.subscribe(T1_RESULT)

    mqtt_client(broker.port, "T2", client_id="T1")
    ledger.publish(T1_RESULT, b"T1 approved")

    # Had the impostor taken the session, T1's socket would have closed before this result was sent.
    assert terminal.next_message().payload == b"T1 approved"
    assert terminal.disconnects.empty()
    assert "already connected" not in broker.process.read_log()


def test_without_use_username_as_clientid_the_same_impostor_would_kick_t1_off(running_broker, mqtt_client):
    """Control for the test above: it detects a takeover when one happens."""
    broker = running_broker(edit_config=lambda text: text.replace("use_username_as_clientid true\n", ""))
    terminal = mqtt_client(broker.port, "T1")

    mqtt_client(broker.port, "T2", client_id="T1")

    # Mosquitto 2.0.11 just closes the old socket (no MQTT 5 "session taken over" DISCONNECT).
    assert terminal.disconnects.get(timeout=WAIT_S).is_failure
    assert "Client T1 already connected, closing old connection." in broker.process.read_log()


def test_the_ledger_receives_requests_through_a_shared_subscription(running_broker, mqtt_client):
    broker = running_broker()
    ledger = mqtt_client(broker.port, "ledger")
    [granted] = ledger.subscribe(ledger_request_share_filter(PARK_ID))
    assert not granted.is_failure
    terminal = mqtt_client(broker.port, "T1")

    terminal.publish(T1_REQUEST, b"charge 30")

    message = ledger.next_message()
    assert (message.topic, message.payload) == (T1_REQUEST, b"charge 30")


def test_two_ledger_workers_under_their_own_usernames_split_the_requests(running_broker, mqtt_client):
    # Each worker needs its own username: with use_username_as_clientid, two workers sharing one
    # login get one client id and take each other's session over.
    broker = running_broker()
    workers = [mqtt_client(broker.port, "ledger"), mqtt_client(broker.port, "ledger-2")]
    for worker in workers:
        worker.subscribe(ledger_request_share_filter(PARK_ID))
    terminal = mqtt_client(broker.port, "T1")

    sent = [f"charge {n}".encode() for n in range(6)]
    for payload in sent:
        terminal.publish(T1_REQUEST, payload)

    received_by_worker = _collect_payloads(workers, count=len(sent))
    assert sorted(received_by_worker[0] + received_by_worker[1]) == sorted(sent)
    assert all(received_by_worker), received_by_worker


def _collect_payloads(clients: list[MqttTestClient], *, count: int) -> list[list[bytes]]:
    """Payloads per client, polled until ``count`` have arrived in total."""
    received: list[list[bytes]] = [[] for _ in clients]
    deadline = time.monotonic() + WAIT_S
    while sum(map(len, received)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {received} of {count} messages arrived within {WAIT_S} s")
        for index, client in enumerate(clients):
            try:
                received[index].append(client.messages.get(timeout=0.01).payload)
            except queue.Empty:
                pass
    return received


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture
def park_ca(tmp_path: Path) -> tuple[Path, Path]:
    return create_park_ca(tmp_path / "ca", PARK_ID)


def test_the_tls_listener_accepts_a_client_that_verifies_the_park_ca(running_broker, mqtt_client, park_ca, tmp_path):
    # Issued for the name only, so a client dialling 127.0.0.1 must fail the host name check.
    tls = issue_server_certificate(*park_ca, tmp_path / "tls", hostnames=["localhost"], ips=[])
    broker = running_broker(tls=tls)

    terminal = mqtt_client(broker.tls_port, "T1", host="localhost", ca_file=tls.cafile)
    terminal.subscribe(T1_RESULT)
    ledger = mqtt_client(broker.port, "ledger")
    ledger.publish(T1_RESULT, b"over TLS")
    assert terminal.next_message().payload == b"over TLS"

    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch|hostname"):
        MqttTestClient("T1").connect(broker.tls_port, "127.0.0.1", ca_file=tls.cafile)
    other_park_ca, _ = create_park_ca(tmp_path / "other-ca", "hillside")
    with pytest.raises(ssl.SSLCertVerificationError):
        MqttTestClient("T1").connect(broker.tls_port, "localhost", ca_file=other_park_ca)


def test_plain_mqtt_on_the_tls_port_gets_no_connack(running_broker, park_ca, tmp_path):
    broker = running_broker(tls=issue_server_certificate(*park_ca, tmp_path / "tls"))
    client = MqttTestClient("T1")
    try:
        outcome = client.connect(broker.tls_port)
    finally:
        client.close()
    assert not outcome.is_connack


def test_server_certificate_and_keys_are_fit_for_purpose(park_ca, tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_cert_path, ca_key_path = park_ca
    tls = issue_server_certificate(ca_cert_path, ca_key_path, tmp_path / "tls", hostnames=["broker.park"], ips=["10.0.0.2"])
    certificate = x509.load_pem_x509_certificate(tls.certfile.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.park"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for key_path in (ca_key_path, tls.keyfile):
        assert key_path.stat().st_mode & 0o777 == 0o600


# --- persistence and the process manager --------------------------------------------------------


def test_a_result_queued_for_an_offline_terminal_survives_a_broker_restart(running_broker, mqtt_client):
    broker = running_broker(persistence=True)
    terminal = mqtt_client(broker.port, "T1", protocol=mqtt.MQTTv311, clean_session=False)
    terminal.subscribe(T1_RESULT)
    terminal.close()
    ledger = mqtt_client(broker.port, "ledger")
    assert not ledger.publish(T1_RESULT, b"approved while away").is_failure

    broker.process.restart()

    back = MqttTestClient("T1", protocol=mqtt.MQTTv311, clean_session=False)
    try:
        outcome = back.connect(broker.port)
        assert outcome.is_accepted and outcome.session_present
        assert back.next_message().payload == b"approved while away"
    finally:
        back.close()


def test_a_killed_broker_starts_again_and_its_log_is_kept(running_broker):
    broker = running_broker()

    broker.process.kill()
    assert not broker.process.is_running
    broker.process.start()

    assert try_login(broker.port, "T1", PASSWORDS["T1"]).is_accepted
    assert broker.process.read_log().count("mosquitto version 2.") >= 2


def test_a_broken_config_fails_to_start_with_mosquittos_own_reason(running_broker):
    with pytest.raises(BrokerStartError, match="Unknown configuration variable"):
        running_broker(edit_config=lambda text: text + "no_such_option true\n")


def test_start_refuses_a_port_that_is_already_taken(running_broker):
    broker = running_broker()
    second = MosquittoProcess(broker.config_path, broker.port)
    with pytest.raises(BrokerStartError, match="already taken"):
        second.start()


# --- config rendering ---------------------------------------------------------------------------


def test_every_listener_ties_the_client_id_to_the_username(park_ca, tmp_path):
    tls = issue_server_certificate(*park_ca, tmp_path / "tls")
    text = write_broker_config(
        tmp_path / "broker",
        park_id=PARK_ID,
        ledger_user=BrokerUser("ledger", hash_password("x")),
        terminals=[],
        port=1884,
        tls=tls,
        tls_port=8884,
    ).read_text()
    before_first_listener, *listeners = text.split("\nlistener ")
    assert len(listeners) == 2
    # Before the first listener line it would open an extra default listener on port 1883.
    assert "use_username_as_clientid" not in before_first_listener
    # A login without a username is also refused by use_username_as_clientid, so only this line
    # shows that anonymous access stays off if that option is ever dropped.
    assert "\nallow_anonymous false\n" in before_first_listener
    assert "\nper_listener_settings false\n" in before_first_listener
    assert all("use_username_as_clientid true" in listener for listener in listeners)
    assert "tls_version tlsv1.2" in listeners[1]


@pytest.mark.parametrize("terminal_id", ["T1/res", "T+", "#", "T1\ntopic readwrite #", "T1:x", "", "T 1", "T" * 33, "T1\n"])
def test_a_terminal_id_that_could_widen_the_acl_is_refused(terminal_id, tmp_path):
    with pytest.raises(BrokerConfigError):
        write_broker_config(
            tmp_path,
            park_id=PARK_ID,
            ledger_user=BrokerUser("ledger", hash_password("x")),
            terminals=[TerminalCredential(terminal_id, hash_password("y"))],
        )
    assert not (tmp_path / "acl").exists()


@pytest.mark.parametrize(
    "extra_users, extra_users_acl",
    [
        ([BrokerUser("ledger", hash_password("x"))], {}),  # same name as the ledger: would share a session
        ([], {"ghost": ["read fieldpos/#"]}),  # ACL for a user that does not exist
        ([BrokerUser("observer", hash_password("x"))], {"observer": ["peek fieldpos/#"]}),
        ([BrokerUser("observer", hash_password("x"))], {"observer": ["read fieldpos/#\nuser T1"]}),
        ([BrokerUser("observer", "plaintext")], {}),
    ],
)
def test_unsafe_extra_users_are_refused(extra_users, extra_users_acl, tmp_path):
    with pytest.raises(BrokerConfigError):
        write_broker_config(
            tmp_path,
            park_id=PARK_ID,
            ledger_user=BrokerUser("ledger", hash_password("x")),
            terminals=[],
            extra_users=extra_users,
            extra_users_acl=extra_users_acl,
        )
