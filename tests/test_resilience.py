"""Restarts and crashes lose nothing: the ledger's persistent session keeps the backlog, terminals
re-send until they hold a signed Result, and a SIGKILLed ledger neither loses nor duplicates."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from host_sim.rig import card, common, single_line
from ledger.verify import verify_books
from protocol.messages import CardIssue, Charge
from terminal.net import NoResultError

from .helpers.waiting import wait_until

STATION_TERMINALS = ("T-FISH-1", "T-FISH-2", "T-RIDE-1")


def issue_cards(desk, count, opening_fen):
    cards = [card(f"R{number:05d}") for number in range(1, count + 1)]
    for visitor in cards:
        result = desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                                   opening_fen=opening_fen, channel="cash", payment_ref=""))
        assert result.is_approved, result
    return cards


def sell(link, visitor, count, amount_fen, results, deadline):
    """Sell ``count`` times, re-sending each request until its Result is in (what a cashier's
    terminal does while the ledger or broker is away)."""
    for _ in range(count):
        pending = link.enqueue(lambda seq: Charge(**common(link, seq, visitor), amount_fen=amount_fen,
                                                  lines=single_line("鱼饵 Bait", amount_fen)))
        while True:
            try:
                results.append(link.send(pending, timeout_s=1.0))
                break
            except NoResultError:
                if time.monotonic() > deadline:
                    raise


def run_sellers(rig, per_terminal, amount_fen, results, *, during=None, timeout_s=120):
    cards = issue_cards(rig.link("T-DESK-1"), len(STATION_TERMINALS), opening_fen=per_terminal * amount_fen)
    links = [rig.link(t, resend_interval_s=0.5) for t in STATION_TERMINALS]
    deadline = time.monotonic() + timeout_s
    errors = []

    def seller(link, visitor):
        try:
            sell(link, visitor, per_terminal, amount_fen, results, deadline)
        except Exception as error:  # reported below, with the thread's name
            errors.append((link.identity.terminal_id, error))

    threads = [threading.Thread(target=seller, args=pair) for pair in zip(links, cards)]
    for thread in threads:
        thread.start()
    if during is not None:
        during()
    for thread in threads:
        thread.join(timeout_s)
    assert not errors, errors
    return cards


@pytest.mark.parametrize("mqtt_version", ["5", "3.1.1"], indirect=True)
def test_a_backlog_published_while_the_ledger_was_down_arrives_when_it_restarts(rig, mqtt_version):
    desk = rig.link("T-DESK-1")
    (visitor,) = issue_cards(desk, 1, 50000)
    fishing = rig.link("T-FISH-1", is_uploading=False)
    rig.stop_ledger()
    # Published once each and never re-sent: only the ledger's persistent session can deliver them.
    for _ in range(40):
        pending = fishing.enqueue(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=500,
                                                     lines=single_line("鱼饵 Bait", 500)))
        fishing.client.publish(fishing.request_topic, pending.payload, qos=1).wait_for_publish(5)
    assert fishing.outbox.pending_count() == 40
    rig.start_ledger()
    wait_until(lambda: fishing.outbox.pending_count() == 0, 20, "the backlog's Results")
    store = rig.reader
    assert store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0] == 40
    assert store.card_balances("P1", visitor.account)[0] == 50000 - 40 * 500


def test_a_sigkilled_broker_loses_nothing_because_terminals_resend(rig):
    results = []

    def kill_the_broker():
        wait_until(lambda: len(results) >= 30, 30, "30 sales before the crash")
        rig.broker.kill()
        time.sleep(0.5)
        rig.broker.start()

    run_sellers(rig, 40, 100, results, during=kill_the_broker)
    assert len(results) == 120 and all(r.is_approved for r in results)
    store = rig.reader
    assert store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0] == 120
    assert len({r.txn for r in results}) == 120
    assert verify_books(store).is_ok


def ledger_process(rig):
    return subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve",
         "--broker-port", str(rig.port), "--mqtt", rig.mqtt_version],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def test_a_ledger_sigkilled_in_the_middle_of_1000_charges_loses_and_duplicates_nothing(stopped_rig):
    rig = stopped_rig
    ledger = ledger_process(rig)
    results = []
    kills = []

    def kill_the_ledger():
        nonlocal ledger
        wait_until(lambda: len(results) >= 300, 60, "300 sales before the crash")
        ledger.send_signal(signal.SIGKILL)
        ledger.wait()
        kills.append(len(results))
        time.sleep(0.3)
        ledger = ledger_process(rig)

    try:
        time.sleep(0.5)
        run_sellers(rig, 334, 100, results, during=kill_the_ledger)
    finally:
        ledger.send_signal(signal.SIGTERM)
        ledger.wait(10)
    assert kills and 300 <= kills[0] < 1002, kills
    assert len(results) == 1002 and all(r.is_approved for r in results)
    assert len({r.txn for r in results}) == 1002  # every sale its own transaction: none twice
    store = rig.home.open_store()
    try:
        charges = store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone()[0]
        assert charges == 1002
        assert all(store.card_balances("P1", f"card:R0000{i}/1")[0] == 0 for i in (1, 2, 3))
    finally:
        store.close()
    verify = subprocess.run([sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "verify"],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "books balance" in verify.stdout
