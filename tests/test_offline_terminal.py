"""Stations with patchy Wi-Fi: selling within the signed offline policy, and every queued sale
landing exactly once when the network is back."""

import time

import pytest

from host_sim.rig import card, common, single_line
from host_sim.network import CuttableLink
from host_sim.station import ScriptedStation
from ledger import broadcasts
from protocol.messages import CardIssue, Charge
from terminal.events import State

from .helpers.waiting import wait_until

POLICY = broadcasts.DEFAULT_OFFLINE_POLICY | dict(max_transaction_fen=5000, max_card_fen=8000)


def issue(rig, card_no, opening_fen):
    desk = rig.link("T-DESK-1")
    result = desk.submit(lambda seq: CardIssue(**common(desk, seq, card(card_no)), card_kind="temporary",
                                               card_fee_fen=2000, opening_fen=opening_fen, channel="cash", payment_ref=""))
    assert result.is_approved


def count(rig, kind):
    store = rig.home.open_store()
    try:
        return store.db.execute("SELECT COUNT(*) FROM txn WHERE kind=?", (kind,)).fetchone()[0]
    finally:
        store.close()


@pytest.fixture
def park(stopped_rig):
    store = stopped_rig.home.open_store()
    store.set_offline_policy("P1", POLICY)
    store.close()
    stopped_rig.start_ledger()
    issue(stopped_rig, "C00001", 10000)
    issue(stopped_rig, "C00002", 10000)
    return stopped_rig


@pytest.fixture
def station(park):
    station = ScriptedStation(park, "T-FISH-1")
    wait_until(lambda: station.link.state.policy is not None and station.link.state.blocklist.version >= 0,
               what="the signed config and blocklist")
    station.log_in()
    yield station
    station.close()


def screen_text(station):
    screen = station.app.screen
    return " ".join((screen.title, *screen.lines, screen.footer))


def test_pulling_the_broker_mid_shift_keeps_selling_within_policy_and_everything_lands_once(park, station):
    assert station.sell(park.virtual_card("C00001"), "10") == State.DONE  # online
    park.broker.kill()
    wait_until(lambda: not station.link.is_connected, what="the terminal to notice")
    sold = [station.sell(park.virtual_card("C00001"), amount) for amount in ("30", "40")]
    assert sold == [State.DONE, State.DONE]
    receipt = station.sim.printer.receipts[-1].text
    assert "OFFLINE" in receipt and "40.00" in receipt
    assert station.sell(park.virtual_card("C00001"), "20") == State.MESSAGE  # 70 + 20 > 80 for this card
    assert "card's offline limit" in screen_text(station)
    station.keys("E")
    assert station.sell(park.virtual_card("C00002"), "60") == State.MESSAGE  # over 50 a sale
    assert "offline limit per sale" in screen_text(station)
    station.keys("E")
    assert station.link.outbox.pending_count() == 2
    park.broker.start()
    wait_until(lambda: station.link.outbox.pending_count() == 0, 30, "the queue to drain")
    assert count(park, "offline_charge") == 2 and count(park, "charge") == 1
    store = park.home.open_store()
    try:
        assert store.card_balances("P1", "card:C00001/1")[0] == 10000 - 1000 - 3000 - 4000
    finally:
        store.close()
    # The outage is over: the next one starts a fresh window.
    wait_until(lambda: station.link.state.window.count == 0, what="the offline window to close")


def test_a_replayed_older_config_or_blocklist_is_refused(park, station):
    """What a compromised broker could do: replay a config or blocklist the ledger really signed,
    but older than the one the terminal holds."""
    from paho.mqtt.client import MQTTMessage

    link = station.link
    store, keys = park.home.open_store(), park.home.ledger_keys()
    now_ms = int(time.time() * 1000)
    try:
        with store.batch():
            older_config = broadcasts.config_payload(store, keys, "P1", "T-FISH-1", now_ms)
            newer_config = broadcasts.config_payload(store, keys, "P1", "T-FISH-1", now_ms + 1)
        older_blocklist = broadcasts.blocklist_payload(store, keys, "P1", now_ms + 10_000)[:2]
        newer_blocklist = broadcasts.blocklist_payload(store, keys, "P1", now_ms + 20_000)[:2]
    finally:
        store.close()

    def deliver(topic_and_payload):
        message = MQTTMessage(topic=topic_and_payload[0].encode())
        message.payload = topic_and_payload[1]
        link._on_message(link.client, None, message)

    deliver(newer_config)
    deliver(newer_blocklist)
    held = link.state.config_version, (link.state.blocklist.version, link.state.blocklist.issued_ms)
    assert held[1][1] == now_ms + 20_000
    before = link.rejected_broadcasts
    deliver(older_config)
    deliver(older_blocklist)
    assert link.rejected_broadcasts == before + 2
    assert (link.state.config_version, (link.state.blocklist.version, link.state.blocklist.issued_ms)) == held


def test_a_card_blocked_while_a_terminal_is_offline_is_refused_once_the_delta_arrives(park):
    wifi = CuttableLink(park.port)
    station = ScriptedStation(park, "T-FISH-2", link=park.link("T-FISH-2", connect=False, port=wifi.port))
    try:
        wait_until(lambda: station.link.state.blocklist.version >= 0, what="the first blocklist")
        station.log_in()
        wifi.cut()  # the station's Wi-Fi drops
        wait_until(lambda: not station.link.is_connected)
        store = park.home.open_store()  # the front desk's loss report, through its own connection
        try:
            with store.batch():
                store.block_card("P1", "C00002", 1, "LOST", int(time.time() * 1000))
        finally:
            store.close()
        # The window: the ledger has blocked it, the terminal cannot know yet — an OFFLINE sale.
        assert station.sell(park.virtual_card("C00002"), "15") == State.DONE
        assert "OFFLINE" in station.sim.printer.receipts[-1].text
        station.keys("C")
        wifi.restore()
        wait_until(lambda: ("C00002", 1) in station.link.state.blocklist.blocked, 20, "the blocklist delta")
        wait_until(lambda: station.link.outbox.pending_count() == 0, what="the offline sale to land")
        assert count(park, "offline_charge") == 1  # it happened: it is booked
        wifi.cut()
        wait_until(lambda: not station.link.is_connected)
        assert station.sell(park.virtual_card("C00002"), "15") == State.MESSAGE
        assert "blocked" in screen_text(station)
        assert count(park, "offline_charge") == 1
    finally:
        station.close()
        wifi.close()


def test_a_request_queued_but_never_sent_lands_once_after_the_terminal_restarts(park):
    link = park.link("T-FISH-2", connect=False)
    pending = link.enqueue(lambda seq: Charge(**common(link, seq, card("C00001")), amount_fen=700,
                                              lines=single_line("鱼饵 Bait", 700)))
    link.outbox.close()  # killed before the first byte went out
    reborn = park.link("T-FISH-2")
    wait_until(lambda: reborn.outbox.pending_count() == 0, what="the restarted terminal's upload")
    assert count(park, "charge") == 1
    assert reborn.outbox.result_for(pending.seq) is not None


def test_a_request_sent_but_unanswered_lands_once_after_the_terminal_restarts(park):
    park.stop_ledger()
    link = park.link("T-FISH-2")
    pending = link.enqueue(lambda seq: Charge(**common(link, seq, card("C00001")), amount_fen=700,
                                              lines=single_line("鱼饵 Bait", 700)))
    link.client.publish(link.request_topic, pending.payload, qos=1).wait_for_publish(5)
    link.close()
    link.outbox.close()  # killed while waiting for the Result
    park.start_ledger()
    reborn = park.link("T-FISH-2")
    wait_until(lambda: reborn.outbox.pending_count() == 0, what="the restarted terminal's upload")
    assert count(park, "charge") == 1


def test_the_heartbeat_reports_the_queue_and_the_last_will_marks_a_vanished_terminal_offline(park):
    wifi = CuttableLink(park.port)
    link = park.link("T-RIDE-1", port=wifi.port)
    link.enqueue(lambda seq: Charge(**common(link, seq, card("C00001")), amount_fen=100,
                                    lines=single_line("骑马 Ride", 100)))
    store = park.home.open_store()

    def status():
        return store.db.execute("SELECT is_online, highest_seq FROM terminal_status WHERE terminal_id='T-RIDE-1'").fetchone()

    try:
        link.publish_status()
        # The heartbeat carries the queue: the request just queued shows as the highest seq.
        wait_until(lambda: status() is not None and status() == (1, 1), what="the online heartbeat")
        wifi.cut()  # the terminal vanishes without saying goodbye: the broker publishes its will
        wait_until(lambda: status()[0] == 0, 90, "the last will")
    finally:
        store.close()
        link.close()
        wifi.close()


def test_a_loss_reported_while_a_station_is_offline_reaches_it_at_its_next_sync(park):
    from host_sim.rig import STAFF
    from protocol.messages import CardReplace, LossReport, MemberOpen, TopUp

    desk = park.link("T-DESK-1")
    lost, new = card("M00031"), card("M00032")
    assert desk.submit(lambda seq: MemberOpen(**common(desk, seq, lost), member_name="王磊", phone="13700137000",
                                              card_fee_fen=0, opening_fen=0, channel="cash", payment_ref="",
                                              pin_sha256="0" * 64), pin="135791").is_approved
    assert desk.submit(lambda seq: TopUp(**common(desk, seq, lost), amount_fen=30000, channel="cash",
                                         payment_ref="")).is_approved
    wifi = CuttableLink(park.port)
    station = ScriptedStation(park, "T-FISH-2", link=park.link("T-FISH-2", connect=False, port=wifi.port))
    totals = lambda: park.reader.db.execute("SELECT SUM(fen), SUM(bonus), SUM(points) FROM card_balance").fetchone()  # noqa: E731
    try:
        wait_until(lambda: station.link.state.blocklist.version >= 0, what="the first blocklist")
        station.log_in()
        before = totals()
        wifi.cut()  # the fishing pond is offline when the member calls the front desk
        wait_until(lambda: not station.link.is_connected)
        assert desk.submit(lambda seq: LossReport(**common(desk, seq, lost))).is_approved
        replaced = desk.submit(lambda seq: CardReplace(**common(desk, seq, new), from_card_no=lost.no, from_issuance=1,
                                                       supervisor_card_no=STAFF[2][3], pin_sha256="0" * 64),
                               supervisor_pin=STAFF[2][4])
        assert replaced.is_approved and replaced.balances.fen == 30000
        assert totals() == before  # moved, not created or lost
        wifi.restore()
        wait_until(lambda: (lost.no, 1) in station.link.state.blocklist.blocked, 20, "the loss report's delta")
        wifi.cut()
        wait_until(lambda: not station.link.is_connected)
        old_card = park.virtual_card(lost.no, kind="member", uid=bytes.fromhex(lost.uid))
        assert station.sell(old_card, "10") == State.MESSAGE and "blocked" in screen_text(station)
    finally:
        station.close()
        wifi.close()
