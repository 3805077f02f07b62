"""Guarantees the park relies on, each written so that losing it fails a test.

Every test here was checked against a deliberate bug (issue 10): the books check that always says
"ok", a terminal that takes a blocklist or config without checking its signature, a CANCEL that ends
a charge in flight, an outbox that keeps the sealed PIN block or does not fsync, a restored outbox
that reuses seqs. The forged inputs are built by hand, so the tests do not trust the code they check.
"""

import time

from nacl.signing import SigningKey
import pytest

from host_sim.rig import ParkRig, card, common, single_line
from ledger.verify import verify_books
from protocol import envelope, topics
from protocol.card_record import CardRecord
from protocol.envelope import Purpose
from protocol.limits import MAX_BROADCAST_BYTES
from protocol.messages import (Balances, Blocklist, BlocklistDelta, CardEntry, Charge, OfflinePolicy, ParkRules, Result,
                               TerminalConfig)
from terminal.config import StationConfig
from terminal.core import Terminal
from terminal.events import Answer, CardTapped, KeyPressed, NoAnswer, Print, State, Submit
from terminal.outbox import Outbox

from .conftest import TERMINALS
from .helpers.intake_driver import VISITOR, Ledger

NOW_MS = 1_780_000_000_000


# ---------------------------------------------------------------- the books check
@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    assert ledger.issue(opening_fen=10000).is_approved
    assert ledger.request("T-FISH-1", Charge, amount_fen=3000, lines=single_line("鱼饵 Bait", 3000)).is_approved
    yield ledger
    rig.close()
    ledger.store.close()


def test_honest_books_verify_ok_so_the_tampering_tests_below_start_from_clean_books(ledger):
    report = verify_books(ledger.store)
    assert report.is_ok, report.problems
    assert report.transactions == 2 and report.card_accounts >= 1


def test_a_card_balance_one_fen_off_makes_verify_report_that_card(ledger):
    # Someone edits the balance row by hand (the triggers guard postings, not balance rows).
    ledger.store.db.execute("UPDATE card_balance SET fen = fen + 1 WHERE account_id = ?", (VISITOR.account,))
    report = verify_books(ledger.store)
    assert not report.is_ok
    assert any(VISITOR.account in problem and "7001" in problem and "7000" in problem for problem in report.problems)


def test_a_posting_slipped_into_a_booked_sale_makes_verify_report_the_unbalanced_transaction(ledger):
    txn_id = ledger.store.db.execute("SELECT MAX(txn_id) FROM txn").fetchone()[0]
    # INSERT is all the immutability triggers leave open: one more fen of revenue on the sale.
    ledger.store.db.execute("INSERT INTO posting (txn_id, park_id, account_id, asset, amount) VALUES (?, 'P1', ?, 'fen', 1)",
                            (txn_id, "revenue:fishing"))
    report = verify_books(ledger.store)
    assert f"transaction {txn_id} does not balance in fen: sum 1" in report.problems


def test_a_transaction_no_terminal_asked_for_makes_verify_report_it(ledger):
    ledger.store.db.execute(
        """INSERT INTO txn (park_id, kind, terminal_id, seq, operator, station_id, card_account, amount_fen,
                            ledger_time_ms, terminal_time_ms, clock_uncertain, business_day)
           VALUES ('P1', 'charge', 'T-FISH-1', 999, 'op-1', 'fishing', NULL, 0, 0, 0, 0, '2026-05-28')""")
    report = verify_books(ledger.store)
    assert any("seq 999" in problem and "no approved request" in problem for problem in report.problems)


def test_the_technicians_verify_command_exits_non_zero_on_a_card_one_fen_off(ledger, capsys):
    from tools.cli import main

    assert main(["--home", str(ledger.rig.home.home), "ledger", "verify"]) == 0
    ledger.store.db.execute("UPDATE card_balance SET fen = fen - 1 WHERE account_id = ?", (VISITOR.account,))
    assert main(["--home", str(ledger.rig.home.home), "ledger", "verify"]) != 0


# ---------------------------------------------------------------- signed broadcasts at the terminal
@pytest.fixture
def park(tmp_path):
    """A provisioned park on disk, no broker: messages are handed to the terminal's link directly."""
    rig = ParkRig(tmp_path).create(TERMINALS)
    yield rig
    rig.close()


def deliver(link, topic: str, payload: bytes) -> None:
    from paho.mqtt.client import MQTTMessage

    message = MQTTMessage(topic=topic.encode())
    message.payload = payload
    link._on_message(link.client, None, message)


def sealed_as_ledger(park, purpose: Purpose, topic: str, body: bytes, *, signing_key=None) -> bytes:
    """Signed under the ledger's key id for ``purpose``: with the ledger's real key, or a forger's."""
    real = park.home.ledger_keys().for_purpose(purpose)
    return envelope.seal(body, signing_key=signing_key or real.signing_key, key_id=real.key_id, purpose=purpose,
                         topic=topic, max_bytes=MAX_BROADCAST_BYTES)


def blocked_card_list(no="C00001"):
    return Blocklist(park="P1", version=7, issued_ms=NOW_MS, blocked=(CardEntry(no=no, issuance=1, fen=0),),
                     low=()).to_bytes()


def test_a_blocklist_signed_with_another_key_under_the_ledgers_key_id_is_refused_and_changes_nothing(park):
    link = park.link("T-FISH-1", connect=False)
    forger = SigningKey.generate()
    deliver(link, topics.blocklist("P1"), sealed_as_ledger(park, Purpose.BLOCKLIST, topics.blocklist("P1"),
                                                           blocked_card_list(), signing_key=forger))
    assert link.rejected_broadcasts == 1
    assert (link.state.blocklist.version, link.state.blocklist.blocked) == (-1, set())
    # The same list signed by the ledger is taken: the refusal above was the signature, nothing else.
    deliver(link, topics.blocklist("P1"), sealed_as_ledger(park, Purpose.BLOCKLIST, topics.blocklist("P1"),
                                                           blocked_card_list()))
    assert link.state.blocklist.version == 7 and ("C00001", 1) in link.state.blocklist.blocked


def test_a_forged_blocklist_delta_cannot_unblock_a_lost_card(park):
    link = park.link("T-FISH-1", connect=False)
    deliver(link, topics.blocklist("P1"), sealed_as_ledger(park, Purpose.BLOCKLIST, topics.blocklist("P1"),
                                                           blocked_card_list()))
    unblock = BlocklistDelta(park="P1", from_version=7, version=8, issued_ms=NOW_MS + 1, blocked=(),
                             unblocked=(CardEntry(no="C00001", issuance=1, fen=0),), low=()).to_bytes()
    deliver(link, topics.blocklist("P1"), sealed_as_ledger(park, Purpose.BLOCKLIST, topics.blocklist("P1"), unblock,
                                                           signing_key=SigningKey.generate()))
    assert link.rejected_broadcasts == 1
    assert link.state.blocklist.version == 7 and ("C00001", 1) in link.state.blocklist.blocked


def generous_policy(**overrides) -> OfflinePolicy:
    settings = dict(max_transaction_fen=9_000_000, max_card_fen=9_000_000, max_terminal_fen=9_000_000,
                    max_count=100_000, max_offline_ms=10**12, max_reboots=1000, blocklist_max_age_ms=10**12,
                    allowed_modes="fixed,count,menu,free")
    return OfflinePolicy(**(settings | overrides))


def park_rules(**overrides) -> ParkRules:
    return ParkRules(**(dict(no_pin_limit_fen=20_000, card_fee_fen=2000, damage_fee_fen=1000) | overrides))


def test_a_forged_offline_policy_with_higher_limits_is_refused_and_the_terminal_keeps_none(park):
    link = park.link("T-FISH-1", connect=False)
    topic = topics.config("P1", "T-FISH-1")
    forged = TerminalConfig(park="P1", terminal="T-FISH-1", version=99, issued_ms=NOW_MS, offline=generous_policy(),
                          rules=park_rules()).to_bytes()
    deliver(link, topic, sealed_as_ledger(park, Purpose.CONFIG, topic, forged, signing_key=SigningKey.generate()))
    assert link.rejected_broadcasts == 1
    assert link.state.policy is None and link.state.config_version == (-1, 0)
    # Nothing of it was saved for the next boot either.
    assert link.state._get("config") is None
    deliver(link, topic, sealed_as_ledger(park, Purpose.CONFIG, topic, forged))
    assert link.state.policy == generous_policy() and link.state.config_version == (99, NOW_MS)


def test_a_config_signed_with_the_blocklist_key_is_refused(park):
    """Each ledger key vouches for one purpose: the blocklist key cannot raise the offline limits."""
    link = park.link("T-FISH-1", connect=False)
    topic = topics.config("P1", "T-FISH-1")
    body = TerminalConfig(park="P1", terminal="T-FISH-1", version=99, issued_ms=NOW_MS, offline=generous_policy(),
                          rules=park_rules()).to_bytes()
    blocklist_key = park.home.ledger_keys().for_purpose(Purpose.BLOCKLIST)
    deliver(link, topic, envelope.seal(body, signing_key=blocklist_key.signing_key, key_id=blocklist_key.key_id,
                                       purpose=Purpose.CONFIG, topic=topic, max_bytes=MAX_BROADCAST_BYTES))
    assert link.rejected_broadcasts == 1 and link.state.policy is None


def test_a_forged_config_raising_the_no_pin_limit_is_refused_and_the_ledgers_rules_stay(park):
    """A forger who could raise the no-PIN limit would let a stolen member card pay without a PIN."""
    link = park.link("T-FISH-1", connect=False)
    topic = topics.config("P1", "T-FISH-1")
    signed = TerminalConfig(park="P1", terminal="T-FISH-1", version=5, issued_ms=NOW_MS, offline=generous_policy(),
                            rules=park_rules(no_pin_limit_fen=5000)).to_bytes()
    deliver(link, topic, sealed_as_ledger(park, Purpose.CONFIG, topic, signed))
    assert link.state.rules == park_rules(no_pin_limit_fen=5000)
    forged = TerminalConfig(park="P1", terminal="T-FISH-1", version=6, issued_ms=NOW_MS + 1, offline=generous_policy(),
                            rules=park_rules(no_pin_limit_fen=9_000_000, card_fee_fen=0, damage_fee_fen=0)).to_bytes()
    deliver(link, topic, sealed_as_ledger(park, Purpose.CONFIG, topic, forged, signing_key=SigningKey.generate()))
    assert link.rejected_broadcasts == 1
    assert link.state.rules == park_rules(no_pin_limit_fen=5000) and link.state.config_version == (5, NOW_MS)
    # What the terminal keeps for its next boot is the signed rules too.
    assert link.state._get("config")["rules"] == park_rules(no_pin_limit_fen=5000).to_obj()


# ---------------------------------------------------------------- nothing ends a sale in flight
STAFF_CARD = CardRecord("S0001", 1, "staff", "P1")
VISITOR_CARD = CardRecord("C00042", 1, "temporary", "P1")
OTHER_VISITOR = CardRecord("C00043", 1, "temporary", "P1")


def till_with_a_charge_in_flight() -> Terminal:
    terminal = Terminal(StationConfig(park_name="青山湖乐园", station_name="钓鱼 Fishing", staff={"S0001": ("wang", "王芳")}),
                        "T-FISH-1")
    terminal.start(0)
    terminal.handle(CardTapped("01020304", STAFF_CARD))
    for key in "1234":
        terminal.handle(KeyPressed(key))
    terminal.handle(KeyPressed("ENTER"))
    terminal.handle(Answer(approved(1)))
    assert terminal.state == State.IDLE
    terminal.handle(CardTapped("04a1b2c3", VISITOR_CARD))
    for key in "30":
        terminal.handle(KeyPressed(key))
    effects = terminal.handle(KeyPressed("ENTER"))
    assert [e.message_type for e in effects if isinstance(e, Submit)] == [Charge]
    terminal.submitted(5)
    assert terminal.state == State.AUTHORIZING
    return terminal


def approved(seq, fen=7000):
    return Result(park="P1", terminal="T-FISH-1", seq=seq, request_sha256="a" * 64, outcome="approved", reason="OK",
                  balances=Balances(fen=fen, bonus=0, points=0), txn=99, ledger_time_ms=NOW_MS, detail="")


@pytest.mark.parametrize("interruption", ["CANCEL", "BACK", "F1", "F3", "the-same-card", "another-card", "a-staff-card"])
def test_nothing_the_cashier_does_ends_a_charge_the_ledger_is_deciding(interruption):
    terminal = till_with_a_charge_in_flight()
    event = {"the-same-card": CardTapped("04a1b2c3", VISITOR_CARD), "another-card": CardTapped("04a1b2c4", OTHER_VISITOR),
             "a-staff-card": CardTapped("01020304", STAFF_CARD)}.get(interruption) or KeyPressed(interruption)
    effects = terminal.handle(event)
    assert not [e for e in effects if isinstance(e, Submit)]
    assert terminal.state == State.AUTHORIZING and terminal.sale is not None and terminal.sale.seq == 5
    # The queued charge lands: the cashier sees it approved and the visitor gets the receipt.
    effects = terminal.handle(Answer(approved(5)))
    assert terminal.state == State.PRINTING
    (printed,) = [e for e in effects if isinstance(e, Print)]
    assert printed.receipt.amount_fen == 3000 and printed.receipt.seq == 5


def test_cancel_while_the_ledger_is_silent_neither_ends_the_sale_nor_allows_a_second_charge():
    terminal = till_with_a_charge_in_flight()
    terminal.handle(NoAnswer())  # the app now tries the offline policy; the online attempt stays queued
    for event in (KeyPressed("CANCEL"), CardTapped("04a1b2c4", OTHER_VISITOR)):
        assert not [e for e in terminal.handle(event) if isinstance(e, Submit)]
        assert terminal.state == State.AUTHORIZING and terminal.sale.seq == 5


# ---------------------------------------------------------------- the terminal's disk
def test_the_outbox_row_of_a_pin_request_holds_no_attachment_and_the_file_never_the_sealed_block(park, tmp_path):
    link = park.link("T-FISH-1", connect=False)
    member = card("M00007")
    pending = link.enqueue(lambda seq: Charge(**common(link, seq, member), amount_fen=30000,
                                              lines=single_line("烤全羊 Roast lamb", 30000)), pin="4321")
    sent = envelope.split(pending.payload)
    assert len(sent.attachment) > 48  # what goes to the broker carries the sealed PIN block
    (stored,) = link.outbox.pending()
    kept = envelope.split(stored.payload)
    assert kept.attachment == b""
    assert (kept.header, kept.signature, kept.body) == (sent.header, sent.signature, sent.body)
    assert stored.request_sha256 == pending.request_sha256 == sent.sha256  # the Result still matches
    (raw,) = link.outbox.db.execute("SELECT payload FROM outbox").fetchone()
    assert envelope.split(bytes(raw)).attachment == b""
    link.outbox.db.execute("PRAGMA wal_checkpoint(FULL)")
    for path in tmp_path.glob("terminal-T-FISH-1.db*"):
        assert sent.attachment not in path.read_bytes(), path.name


def test_the_outbox_durability_setting_is_what_the_design_says(tmp_path):
    """Every seq and signed request is fsync'd before a byte goes out: WAL with synchronous=FULL
    on the connection that appends (the Results connection may be NORMAL: a lost Result is re-asked)."""
    outbox = Outbox(tmp_path / "outbox.db")
    try:
        assert outbox.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert outbox.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        outbox.close()


def signed_junk(seq):
    return b"request %d" % seq, f"{seq:064x}"


def test_a_restored_outbox_continues_above_the_ledgers_highest_seq_after_a_reopen(tmp_path):
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    assert [outbox.append(signed_junk, NOW_MS).seq for _ in range(2)] == [1, 2]
    outbox.skip_past(40)  # the ledger's Welcome: it holds seq 40 from this terminal
    outbox.close()
    outbox = Outbox(path)  # power cut, reboot
    try:
        assert outbox.last_seq == 40
        assert outbox.append(signed_junk, NOW_MS).seq == 41
        outbox.skip_past(10)  # an older Welcome never takes the counter back
        assert outbox.append(signed_junk, NOW_MS).seq == 42
    finally:
        outbox.close()


def test_a_terminal_booting_from_a_restored_sd_card_sends_above_what_the_ledger_holds(rig, tmp_path):
    from host_sim.station import ScriptedStation
    from terminal.net import LedgerLink

    # Before the SD card was restored, the terminal sent three requests the ledger decided and kept.
    before = LedgerLink(rig.identity("T-FISH-1"), Outbox(tmp_path / "lost-sd-card.db"), mqtt_version=rig.mqtt_version)
    before.connect()
    try:
        for _ in range(3):
            result = before.submit(lambda seq: Charge(**common(before, seq, card("C09999")), amount_fen=100,
                                                      lines=single_line("鱼饵 Bait", 100)))
            assert result.reason == "UNKNOWN_CARD"
    finally:
        before.close()
        before.outbox.close()
    assert rig.reader.highest_seq("T-FISH-1") == 3
    station = ScriptedStation(rig, "T-FISH-1")  # a fresh outbox: counter at 0
    try:
        assert station.link.outbox.last_seq == 3
        pending = station.link.enqueue(lambda seq: Charge(**common(station.link, seq, card("C09999")), amount_fen=100,
                                                          lines=single_line("鱼饵 Bait", 100)))
        assert pending.seq == 4
        assert station.link.send(pending).reason == "UNKNOWN_CARD"  # not SEQ_REUSED
    finally:
        station.close()
