"""The embedded Python broker (amqtt) that lets ``fieldpos demo`` run with nothing but pip: the same
logins and ACL as Mosquitto, MQTT 3.1.1 only, persistent sessions for logged-in clients."""

import threading

from amqtt.contexts import Action
import pytest

from host_sim import embedded_broker
from host_sim.demo import run_demo
from host_sim.embedded_broker import (
    EmbeddedBroker,
    filter_is_within,
    is_allowed,
    read_acl_file,
    topic_matches,
    verify_password,
)
from host_sim.rig import OBSERVER, ParkRig
from protocol import topics
from transport import mqtt
from transport.broker_config import hash_password
from transport.mosquitto_process import is_port_accepting

TERMINALS = {"T-FISH-1": "fishing", "T-FISH-2": "fishing", "T-DESK-1": "desk"}
WAIT_S = 5.0


@pytest.fixture
def park(tmp_path):
    """A park whose broker is the embedded one; no ledger (the tests play every part themselves)."""
    with ParkRig(tmp_path, mqtt_version="3.1.1").create(TERMINALS) as rig:
        rig.start_broker(prefer="embedded")
        yield rig


class Client:
    """A paho client that records what the broker told it, for the assertions."""

    def __init__(self, rig, client_id, password, *, username=None, persistent=False, mqtt_version="3.1.1"):
        self.connacks, self.messages, self.subacks = [], [], []
        self.changed = threading.Condition()
        self.client = mqtt.make_client(client_id, username=username or client_id, password=password,
                                       mqtt_version=mqtt_version, persistent=persistent)
        self.client.on_connect = lambda client, userdata, flags, reason_code, properties: self._note(self.connacks, reason_code)
        self.client.on_subscribe = lambda client, userdata, mid, reason_codes, properties: self._note(self.subacks, reason_codes)
        self.client.on_message = lambda client, userdata, message: self._note(self.messages, (message.topic, message.payload))
        self.client.connect_async("127.0.0.1", rig.port, **mqtt.connect_arguments(self.client, persistent=persistent))
        self.client.loop_start()

    def _note(self, into, item):
        with self.changed:
            into.append(item)
            self.changed.notify_all()

    def wait(self, predicate, timeout_s=WAIT_S) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout_s)

    def wait_connected(self, timeout_s=WAIT_S) -> bool:
        """True if the broker accepted the login; False if it refused it or never answered."""
        self.wait(lambda: self.connacks, timeout_s)
        return bool(self.connacks) and mqtt.is_success(self.connacks[0])

    def subscribe(self, topic_filter) -> bool:
        """True if the broker granted the subscription."""
        before = len(self.subacks)
        self.client.subscribe(topic_filter, qos=1)
        assert self.wait(lambda: len(self.subacks) > before), f"no SUBACK for {topic_filter}"
        return all(mqtt.is_success(code) for code in self.subacks[before])

    def publish(self, topic, payload):
        self.client.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)

    def on(self, topic):
        with self.changed:
            return [payload for t, payload in self.messages if t == topic]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients():
    opened = []
    yield lambda *args, **kwargs: opened.append(Client(*args, **kwargs)) or opened[-1]
    for client in opened:
        client.close()


def password_of(rig, terminal_id):
    return rig.identity(terminal_id).broker.password


# ---------------------------------------------------------------- the demo
def test_the_demo_runs_a_park_day_over_the_embedded_broker_and_its_books_balance(tmp_path, capsys):
    assert run_demo(tmp_path / "demo", visitors=5, broker="embedded") == 0
    summary = capsys.readouterr().out
    assert "embedded amqtt" in summary and "MQTT 3.1.1" in summary
    assert "books balance" in summary and "MISMATCH" not in summary
    assert "approved" in summary


# ---------------------------------------------------------------- logins
def test_a_terminal_with_a_wrong_password_is_refused_and_the_right_one_gets_in(park, clients):
    assert not clients(park, "T-FISH-1", "not-its-password").wait_connected()
    assert not clients(park, "T-NOBODY", "whatever").wait_connected()
    assert clients(park, "T-FISH-2", password_of(park, "T-FISH-2")).wait_connected()


def test_a_terminal_cannot_log_in_under_another_terminals_client_id(park, clients):
    # Its own password, T-FISH-2's client id: that would resume T-FISH-2's session and queue.
    borrowed = clients(park, "T-FISH-2", password_of(park, "T-FISH-1"), username="T-FISH-1", persistent=True)
    assert not borrowed.wait_connected()


def test_a_failed_login_with_a_terminals_client_id_does_not_cut_off_the_connected_terminal(park, clients):
    result_topic = topics.result(park.park_id, "T-FISH-1")
    terminal = clients(park, "T-FISH-1", password_of(park, "T-FISH-1"), persistent=True)
    assert terminal.wait_connected() and terminal.subscribe(result_topic)
    assert not clients(park, "T-FISH-1", "guessed").wait_connected()  # clean session, same client id
    login = park.home.ledger_login()
    ledger = clients(park, login["username"], login["password"])
    assert ledger.wait_connected()
    ledger.publish(result_topic, b"still yours")
    assert terminal.wait(lambda: terminal.on(result_topic)), "the terminal lost its subscription to a failed login"


def test_an_mqtt_5_client_does_not_get_in(park, clients):
    # amqtt answers with a 3.1.1 CONNACK "unacceptable protocol version" that paho 5 cannot read,
    # so paho never reports a connection at all: nothing to wait for but a deadline.
    observer = clients(park, OBSERVER, park.observer_password, mqtt_version="5")
    assert not observer.wait_connected(timeout_s=2)
    assert clients(park, OBSERVER, park.observer_password, mqtt_version="3.1.1").wait_connected()


# ---------------------------------------------------------------- the ACL
def test_a_terminal_cannot_read_another_terminals_results(park, clients):
    fishing_1 = clients(park, "T-FISH-1", password_of(park, "T-FISH-1"))
    observer = clients(park, OBSERVER, park.observer_password)
    assert fishing_1.wait_connected() and observer.wait_connected()
    others_results = topics.result(park.park_id, "T-FISH-2")
    assert not fishing_1.subscribe(others_results)
    assert not fishing_1.subscribe(f"fieldpos/v1/{park.park_id}/t/+/res")
    assert not fishing_1.subscribe("fieldpos/#")
    assert fishing_1.subscribe(topics.result(park.park_id, "T-FISH-1"))
    assert observer.subscribe("fieldpos/#")

    login = park.home.ledger_login()
    ledger = clients(park, login["username"], login["password"])
    assert ledger.wait_connected()
    ledger.publish(others_results, b"for T-FISH-2 only")
    assert observer.wait(lambda: observer.on(others_results))  # it was delivered, just not to T-FISH-1
    # Then one on T-FISH-1's own topic, from the same sender: once it is in, the first would have been
    # too (the broker delivers one sender's messages in order), so absence is seen without a blind wait.
    own_results = topics.result(park.park_id, "T-FISH-1")
    ledger.publish(own_results, b"for T-FISH-1")
    assert fishing_1.wait(lambda: fishing_1.messages)
    assert fishing_1.messages == [(own_results, b"for T-FISH-1")]


def test_a_terminal_cannot_publish_on_another_terminals_request_topic(park, clients):
    fishing_1 = clients(park, "T-FISH-1", password_of(park, "T-FISH-1"))
    observer = clients(park, OBSERVER, park.observer_password)
    assert fishing_1.wait_connected() and observer.wait_connected() and observer.subscribe("fieldpos/#")
    forged = topics.request(park.park_id, "T-FISH-2")
    own = topics.request(park.park_id, "T-FISH-1")
    fishing_1.publish(forged, b"pretending to be T-FISH-2")
    fishing_1.publish(own, b"marker")  # the broker handles one client's publishes in order
    assert observer.wait(lambda: observer.on(own)), "the allowed publish never arrived"
    assert observer.on(forged) == []


# ---------------------------------------------------------------- persistent sessions
def test_a_persistent_session_gets_its_queued_qos_1_result_on_reconnect(park, clients):
    result_topic = topics.result(park.park_id, "T-FISH-1")
    password = password_of(park, "T-FISH-1")
    terminal = clients(park, "T-FISH-1", password, persistent=True)
    assert terminal.wait_connected() and terminal.subscribe(result_topic)
    terminal.close()  # a clean DISCONNECT; clean_session=False keeps the session

    login = park.home.ledger_login()
    ledger = clients(park, login["username"], login["password"])
    assert ledger.wait_connected()
    ledger.publish(result_topic, b"your Result")

    back = clients(park, "T-FISH-1", password, persistent=True)  # no new subscription
    assert back.wait_connected()
    assert back.wait(lambda: back.on(result_topic) == [b"your Result"]), "the queued Result was not delivered"


# ---------------------------------------------------------------- lifecycle
def test_the_broker_stops_and_restarts_on_the_same_port(park, clients):
    broker = park.broker
    assert isinstance(broker, EmbeddedBroker) and broker.is_running
    broker.restart()
    assert broker.is_running and clients(park, OBSERVER, park.observer_password).wait_connected()
    broker.stop()
    assert not broker.is_running and not is_port_accepting("127.0.0.1", park.port)


def test_auto_falls_back_to_the_embedded_broker_on_a_machine_without_mosquitto(tmp_path, monkeypatch, clients):
    def not_installed(*, install_if_missing=True):
        assert not install_if_missing, "'auto' must never install packages"
        raise embedded_broker.BrokerNotInstalledError("no mosquitto here")

    monkeypatch.setattr(embedded_broker, "find_mosquitto", not_installed)
    with ParkRig(tmp_path, mqtt_version="3.1.1").create(TERMINALS) as rig:
        broker = rig.start_broker(prefer="auto")
        assert isinstance(broker, EmbeddedBroker) and broker.is_running
        assert clients(rig, OBSERVER, rig.observer_password).wait_connected()


# ---------------------------------------------------------------- the pieces, as tables
@pytest.mark.parametrize("topic, topic_filter, expected", [
    ("fieldpos/v1/P1/t/T1/req", "fieldpos/v1/P1/t/+/req", True),
    ("fieldpos/v1/P1/t/T1/res", "fieldpos/v1/P1/t/+/req", False),
    ("fieldpos/v1/P1/t/T1/req", "fieldpos/#", True),
    ("fieldpos", "fieldpos/#", True),           # '#' also matches the parent level
    ("fieldpos/v1", "fieldpos/+", True),
    ("fieldpos/v1/P1", "fieldpos/+", False),
    ("$SYS/broker/load", "#", False),           # no wildcard match of $-topics at the first level
])
def test_topic_matching_follows_mqtt_wildcards(topic, topic_filter, expected):
    assert topic_matches(topic, topic_filter) is expected


@pytest.mark.parametrize("subscription, rule, expected", [
    ("fieldpos/v1/P1/t/+/req", "fieldpos/v1/P1/#", True),
    ("fieldpos/v1/P1/#", "fieldpos/v1/P1/#", True),
    ("fieldpos/#", "fieldpos/v1/P1/#", False),
    ("fieldpos/v1/P1/t/T2/res", "fieldpos/v1/P1/t/T1/res", False),
    ("fieldpos/v1/P1/t/+/res", "fieldpos/v1/P1/t/T1/res", False),  # '+' in a subscription needs '+' or '#' in the rule
    ("fieldpos/v1/P1/t/T1/res", "fieldpos/v1/P1/t/+/res", True),
    ("fieldpos/v1/P1/t/T1/res/#", "fieldpos/v1/P1/t/T1/res", False),
])
def test_a_subscription_is_granted_only_inside_a_rule(subscription, rule, expected):
    assert filter_is_within(subscription, rule) is expected


def test_the_acl_file_the_broker_config_writes_is_read_as_mosquitto_would(park):
    rules = read_acl_file(park.broker.acl_path)
    own_request = topics.request(park.park_id, "T-FISH-1")
    assert is_allowed(rules["T-FISH-1"], own_request, Action.PUBLISH)
    assert not is_allowed(rules["T-FISH-1"], own_request, Action.SUBSCRIBE)  # write-only
    assert not is_allowed(rules["T-FISH-1"], topics.request(park.park_id, "T-FISH-2"), Action.PUBLISH)
    assert is_allowed(rules["T-FISH-1"], topics.blocklist(park.park_id), Action.RECEIVE)
    assert not is_allowed(rules[OBSERVER], own_request, Action.PUBLISH)  # read-only
    assert is_allowed(rules[OBSERVER], "fieldpos/#", Action.SUBSCRIBE)


def test_passwords_are_checked_against_mosquittos_pbkdf2_hashes():
    stored = hash_password("s3cret-渔")
    assert verify_password("s3cret-渔", stored)
    assert not verify_password("s3cret", stored)
    assert not verify_password("s3cret-渔", stored.replace("$7$", "$6$"))  # the 1.x format is never accepted
    assert not verify_password("", "$7$101$not-base64$")
