"""tap.app against a scripted broker whose ledger answers are signed by protocol/: the signed
blocklist refuses a card at the tap, the signed config sets the price, an unanswered sale becomes an
offline sale only within the signed policy, forged answers are dropped, and the seq and outbox
survive a reboot."""

from protocol import envelope, messages, topics
from tap import hal, mqtt
from tap.app import TapApp
from tap.state import TapState

from .helpers import tap_scenario as scenario
from .helpers.tap_broker_script import BrokerStream

VISITOR = scenario.card("C00001", bytes.fromhex("04a1b2c3"))
OTHER = scenario.card("C00002", bytes.fromhex("04a1b2c4"))


def _tap(tmp_path, ledger, *, config=None, blocklist=None, timeout_ms=50):
    retained = {topics.config("P1", "TAP-1"): config or scenario.config(),
                topics.blocklist("P1"): blocklist or scenario.blocklist()}
    stream = BrokerStream(ledger, retained)
    outputs = hal.PrintHal()
    app = TapApp(scenario.bundle(), TapState(str(tmp_path / "tap.json")), outputs, scenario.Ticks(),
                 scenario.fixed_random, result_timeout_ms=timeout_ms)
    client = mqtt.MqttClient(stream, "TAP-1", "TAP-1", "x" * 32)
    client.connect()
    app.attach(client)
    assert app.wait_welcome(100)
    return app, stream, outputs


def _sent(ledger, kind):
    return [request for request in ledger.requests if request.TYPE == kind]


def test_an_approved_charge_shows_the_balance_the_ledger_signed(tmp_path):
    ledger = scenario.Ledger()
    app, _, outputs = _tap(tmp_path, ledger)
    assert app.tap(*VISITOR) == hal.APPROVED
    assert outputs.shown[-1] == (hal.APPROVED, ("已付 Paid 15.00", "余额 Balance 85.00"))
    (charge,) = _sent(ledger, "charge")
    assert (charge.amount_fen, charge.operator, charge.card.no, charge.lines[0].item) == (1500, "TAP-1", "C00001", "骑马 1次")
    assert app.state.outbox() == []


def test_a_card_on_the_signed_blocklist_is_refused_at_the_tap_and_no_request_is_sent(tmp_path):
    ledger = scenario.Ledger()
    app, _, outputs = _tap(tmp_path, ledger, blocklist=scenario.blocklist(["C00001"]))
    assert app.tap(*VISITOR) == hal.DECLINED
    assert outputs.shown[-1] == (hal.DECLINED, ("卡已锁 Card blocked",))
    assert _sent(ledger, "charge") == []
    assert app.tap(*OTHER) == hal.APPROVED


def test_a_blocklist_signed_by_another_key_is_dropped(tmp_path):
    forged = bytearray(scenario.blocklist(["C00002"], version=2))
    forged[20] ^= 1  # inside the signature
    ledger = scenario.Ledger()
    app, stream, _ = _tap(tmp_path, ledger)
    stream.deliver(topics.blocklist("P1"), bytes(forged))
    app.poll(0)
    assert app.refusals[-1][0] == "BAD_SIGNATURE"
    assert app.tap(*OTHER) == hal.APPROVED


def test_without_a_fixed_price_in_the_signed_config_the_tap_sells_nothing(tmp_path):
    ledger = scenario.Ledger()
    app, _, outputs = _tap(tmp_path, ledger, config=scenario.config(mode="menu"))
    assert app.tap(*VISITOR) == hal.ERROR
    assert "Not set up" in outputs.shown[-1][1][0] and _sent(ledger, "charge") == []


def test_a_card_record_for_another_uid_is_not_sold(tmp_path):
    ledger = scenario.Ledger()
    app, _, _ = _tap(tmp_path, ledger)
    assert app.tap(OTHER[0], VISITOR[1]) == hal.ERROR
    assert _sent(ledger, "charge") == []


def test_no_answer_within_the_signed_policy_becomes_an_offline_sale_superseding_the_attempt(tmp_path):
    ledger = scenario.Ledger()
    app, _, outputs = _tap(tmp_path, ledger)
    ledger.silent = True
    assert app.tap(*VISITOR) == hal.APPROVED
    assert outputs.shown[-1] == (hal.APPROVED, ("离线已付 Paid offline 15.00",))
    (charge,) = _sent(ledger, "charge")
    assert _sent(ledger, "offline_charge") == []  # not sent yet: it waits in the outbox for the ledger
    kinds = [(entry["kind"], entry["seq"]) for entry in app.state.outbox()]
    assert kinds == [("charge", charge.seq), ("offline_charge", charge.seq + 1)]
    payload = app.state.payload(app.state.outbox()[1])
    body = envelope.verify(envelope.split(payload), verify_key=scenario.KEYS["terminal"].verify_key,
                           purpose=envelope.Purpose.REQUEST, topic=topics.request("P1", "TAP-1"))
    sale = messages.parse(body, messages.REQUEST_TYPES)
    assert (sale.TYPE, sale.supersedes_seq, sale.amount_fen, sale.clock_uncertain) == ("offline_charge", charge.seq, 1500, False)


def test_no_answer_outside_the_policy_is_pending_and_not_sold(tmp_path):
    ledger = scenario.Ledger()
    app, _, outputs = _tap(tmp_path, ledger, config=scenario.config(allowed_modes="menu"))
    ledger.silent = True
    assert app.tap(*VISITOR) == hal.PENDING
    assert "not sold" in outputs.shown[-1][1][0]
    assert [entry["kind"] for entry in app.state.outbox()] == ["charge"]


def test_seq_and_outbox_survive_a_reboot_and_are_sent_again_byte_for_byte(tmp_path):
    ledger = scenario.Ledger()
    app, _, _ = _tap(tmp_path, ledger, config=scenario.config(allowed_modes="menu"))
    ledger.silent = True
    app.tap(*VISITOR)
    waiting = app.state.outbox()[0]
    sent = app.state.payload(waiting)
    ledger.silent = False
    again, stream, _ = _tap(tmp_path, ledger)  # a new TapApp on the same state file: a reboot
    assert (topics.request("P1", "TAP-1"), sent) in stream.published
    assert again.upload(100) == 0
    assert again.tap(*VISITOR) == hal.APPROVED
    assert _sent(ledger, "charge")[-1].seq == waiting["seq"] + 1


def test_a_welcome_above_the_tap_s_seq_moves_it_past_the_ledger_s_highest(tmp_path):
    ledger = scenario.Ledger(highest_seq=41)
    app, _, _ = _tap(tmp_path, ledger)
    app.tap(*VISITOR)
    assert _sent(ledger, "charge")[-1].seq == 42


def test_the_board_loop_connects_sells_to_a_tapped_card_and_reconnects_after_a_lost_connection(tmp_path, monkeypatch):
    from tap import board

    ledger = scenario.Ledger()
    streams = []

    def connect():
        stream = BrokerStream(ledger, {topics.config("P1", "TAP-1"): scenario.config(),
                                       topics.blocklist("P1"): scenario.blocklist()})
        streams.append(stream)
        client = mqtt.MqttClient(stream, "TAP-1", "TAP-1", "x" * 32)
        client.connect()
        return client

    class Reader:
        taps = [VISITOR, None, None]

        def read(self):
            return self.taps.pop(0) if self.taps else None

    outputs = hal.PrintHal()
    app = TapApp(scenario.bundle(), TapState(str(tmp_path / "tap.json")), outputs, scenario.Ticks(),
                 scenario.fixed_random, result_timeout_ms=50)
    board.serve(app, Reader(), connect, scenario.Ticks(), lambda ms: None, turns=2)
    assert [outcome for outcome, _ in outputs.shown] == [hal.APPROVED] and len(streams) == 1
    streams[0].connected = False  # the Wi-Fi drops: the next write (a keep-alive ping) fails
    monkeypatch.setattr(board, "KEEPALIVE_PING_MS", -1)
    board.serve(app, Reader(), connect, scenario.Ticks(), lambda ms: None, turns=2)
    assert len(streams) == 2 and _sent(ledger, "hello")[-1].terminal == "TAP-1" and len(_sent(ledger, "hello")) == 2


def test_the_signed_config_survives_a_reboot_and_is_checked_again(tmp_path):
    ledger = scenario.Ledger()
    _tap(tmp_path, ledger)
    rebooted = TapApp(scenario.bundle(), TapState(str(tmp_path / "tap.json")), hal.PrintHal(), scenario.Ticks(),
                      scenario.fixed_random)
    assert rebooted.price() == (1500, "骑马 1次")  # before any connection
    saved = tmp_path / "tap.json.config"
    saved.write_bytes(saved.read_bytes()[:-2] + b"9}")  # a changed byte: the signature no longer holds
    tampered = TapApp(scenario.bundle(), TapState(str(tmp_path / "tap.json")), hal.PrintHal(), scenario.Ticks(),
                      scenario.fixed_random)
    assert tampered.price() is None and tampered.refusals[-1][0] == "BAD_SIGNATURE"


def test_answers_to_re_sent_requests_close_them_as_the_loop_polls(tmp_path):
    ledger = scenario.Ledger()
    app, _, _ = _tap(tmp_path, ledger)
    ledger.silent = True
    app.tap(*VISITOR)  # no answer: sold offline, the charge and the offline sale wait in the outbox
    assert len(app.state.outbox()) == 2 and app.state.data["offline"]["count"] == 1
    ledger.silent = False
    again, _, _ = _tap(tmp_path, ledger)  # reconnect: both re-sent, their Results arrive
    again.poll(0)
    assert again.state.outbox() == [] and again.state.data["offline"]["count"] == 0
