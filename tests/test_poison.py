"""A message that crashes the ledger is tried alone after the first crash and set aside after
three, with an alert; the ledger goes on serving everyone else."""

import os
import subprocess
import sys
import time

from host_sim.rig import card, common, single_line
from protocol.messages import CardIssue, Charge
from terminal.net import NoResultError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def crashing_ledger(rig):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "helpers", "crashing_ledger.py"),
                             str(rig.home.home), str(rig.port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def test_a_message_that_keeps_crashing_the_ledger_is_set_aside_after_three_crashes(stopped_rig):
    rig = stopped_rig
    ledger = crashing_ledger(rig)
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1", resend_interval_s=0.5)
    visitor = card("C00666")
    assert desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=10000, channel="cash", payment_ref="")).is_approved
    poison = fishing.enqueue(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=100,
                                                lines=single_line("POISON", 100)))
    crashes, deadline = 0, time.monotonic() + 90
    try:
        # SET_ASIDE is not final: the till keeps the sale pending and notes the ledger holds it.
        while fishing.ledger_holds(poison) != "SET_ASIDE" and time.monotonic() < deadline:
            try:
                fishing.send(poison, timeout_s=1.0)
            except NoResultError:
                if ledger.poll() is not None:  # it died: a supervisor (systemd) would restart it
                    assert ledger.returncode == 70
                    crashes += 1
                    ledger = crashing_ledger(rig)
        assert fishing.ledger_holds(poison) == "SET_ASIDE"
        assert crashes == 3
        healthy = fishing.submit(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=300,
                                                    lines=single_line("鱼饵 Bait", 300)))
        assert healthy.is_approved and healthy.balances.fen == 9700
    finally:
        ledger.terminate()
        ledger.wait(10)
    store = rig.home.open_store()
    try:
        (set_aside,) = store.db.execute("SELECT COUNT(*) FROM poison WHERE set_aside_ms IS NOT NULL").fetchone()
        alerts = [kind for (kind,) in store.db.execute("SELECT kind FROM alert")]
        held = store.set_asides()
    finally:
        store.close()
    assert set_aside == 1 and "SET_ASIDE" in alerts
    assert [(row.terminal_id, row.seq) for row in held] == [("T-FISH-1", poison.seq)]
