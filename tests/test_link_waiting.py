"""The till's wait for an answer as the link reports it (terminal.net ``follow``/``poll``/
``is_overdue``), in-process: a stand-in for the MQTT client that answers nothing, as a ledger that
is down. No broker; the overdue time is zero, so nothing here waits on a clock."""

import pytest

from host_sim.rig import ParkRig, card, common, single_line
from protocol.messages import Charge
from terminal.session import Publish

from .conftest import TERMINALS


class SilentClient:
    """Stands in for paho while the ledger is down: publishes are counted, never answered."""

    def __init__(self):
        self.published = []

    def publish(self, topic, payload, qos=0):
        self.published.append(payload)


@pytest.fixture
def till(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    link = rig.link("T-FISH-1", connect=False)
    paho, link.client = link.client, SilentClient()
    link._connected.set()  # as if the broker were up
    yield link
    link._connected.clear()
    link.client = paho  # never connected: closing it sends nothing
    rig.close()


def a_charge(link):
    return link.enqueue(lambda seq: Charge(**common(link, seq, card("C00042")), amount_fen=500,
                                           lines=single_line("烤串 Skewers", 500)))


def test_a_followed_request_is_published_at_once_and_overdue_when_its_time_is_up(till):
    pending = a_charge(till)
    till.follow(pending, answer_within_s=0)
    assert till.client.published == [pending.payload]
    assert till.poll(pending) is None
    assert till.is_overdue(pending)  # the app now tells the machine NoAnswer
    till.unwatch(pending)
    assert not till.is_overdue(pending)


def test_the_uploader_draining_the_same_request_does_not_swallow_its_overdue(till):
    pending = a_charge(till)
    till.follow(pending, answer_within_s=0)
    till.upload_pending(timeout_s=0)  # the uploader's turn comes first and asks the session what is due
    assert till.is_overdue(pending)
    assert till.poll(pending) is None and till.session.is_followed(pending.request_sha256)  # still re-sent


def test_a_pin_sale_the_uploader_started_from_the_outbox_goes_out_with_its_pin_block(till):
    pending = till.enqueue(lambda seq: Charge(**common(till, seq, card("M00031")), amount_fen=500,
                                              lines=single_line("烤串 Skewers", 500)), pin="135791")
    (stored,) = till.outbox.pending()
    assert stored.payload != pending.payload  # the outbox never keeps the sealed PIN block
    with till._lock:  # the uploader's turn came first: it follows the outbox's copy
        till.client.publish(till.request_topic, stored.payload)
        till.session.send(stored.request_sha256, stored.payload, 0)
    till.follow(pending, answer_within_s=4)
    assert till.client.published[-1] == pending.payload
    resent = [item for item in till.session.due(10**12) if isinstance(item, Publish)]
    assert resent == [Publish(till.request_topic, pending.payload)]  # and it is re-sent so
