"""The books check and the unfinished-seq report at their bounds: how many problems and runs are
listed, what is counted beyond them, and how far one run is explained. A real SQLite store, no broker.

Written to kill the operator mutants of tools/mutation.py the older tests let through.
"""

import pytest

from host_sim.rig import ParkRig
from ledger.verify import MAX_EXPLAINED_PER_RUN, UnfinishedSeqs, unfinished_seqs, verify_books

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

NOW_MS = 1_780_000_000_000


@pytest.fixture
def store(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    yield ledger.store
    rig.close()
    ledger.store.close()


def declined_requests(store, terminal_id, seqs):
    with store.batch():
        for seq in seqs:
            store.record_request(terminal_id, seq, "charge", "ab" * 32, b"evidence", "declined", "INSUFFICIENT_FUNDS",
                                 None, b"result", NOW_MS)


def test_verify_lists_twenty_problems_of_twenty_five_and_still_counts_the_books(store):
    # Balance rows nobody posted to: someone wrote them by hand.
    for n in range(25):
        store.db.execute("INSERT INTO card_balance (park_id, account_id, fen) VALUES ('P1', ?, 1)", (f"card:X{n:04d}/1",))
    report = verify_books(store)
    assert len(report.problems) == 20 and not report.is_ok
    assert report.card_accounts == 25 and report.transactions == 0 and report.postings == 0
    assert len(verify_books(store, max_problems=3).problems) == 3


def test_clean_empty_books_verify_ok_with_nothing_counted(store):
    report = verify_books(store)
    assert report.is_ok and report.problems == () and (report.transactions, report.postings, report.card_accounts) == (0, 0, 0)


def test_fifty_runs_of_sixty_one_are_listed_and_the_rest_counted(store):
    declined_requests(store, "T-FISH-1", range(2, 123, 2))  # seqs 1, 3, ... 121 never arrived: 61 runs
    report = unfinished_seqs(store)
    assert report.count == 61 and len(report.runs) == 50 and report.runs_left_out == 11
    assert [(run.first_seq, run.last_seq) for run in report.runs[:2]] == [(1, 1), (3, 3)]
    assert not report.is_finished


def test_a_terminal_with_one_gap_has_one_run_and_none_left_out(store):
    declined_requests(store, "T-FISH-1", [1, 2, 6])
    report = unfinished_seqs(store)
    assert (report.count, report.runs_left_out) == (3, 0)
    (run,) = report.runs
    assert (run.terminal_id, run.first_seq, run.last_seq, run.count) == ("T-FISH-1", 3, 5, 3)
    assert str(run) == "T-FISH-1 seqs 3-5 (3): never received (or refused with its evidence no longer kept)"


def test_a_terminal_with_every_seq_decided_is_finished(store):
    declined_requests(store, "T-FISH-1", [1, 2, 3])
    report = unfinished_seqs(store)
    assert report.is_finished and report.count == 0 and report.runs == () and report.runs_left_out == 0


def test_one_unfinished_seq_reads_as_one_seq():
    assert str(UnfinishedSeqs("T-FISH-1", 7, 7, "set aside")) == "T-FISH-1 seq 7: set aside"
    assert UnfinishedSeqs("T-FISH-1", 7, 7, "x").count == 1 and UnfinishedSeqs("T-FISH-1", 7, 9, "x").count == 3


def test_within_one_run_only_the_first_two_hundred_superseded_attempts_are_looked_up(store):
    # Seqs 1..300 missing below a stored 301; 201 of them superseded by it. The lookup is bounded, so
    # the 201st is reported with the plain run (a bounded report, never a million queries).
    declined_requests(store, "T-FISH-1", [301])
    with store.batch():
        for seq in range(1, MAX_EXPLAINED_PER_RUN + 2):
            store.supersede("T-FISH-1", seq, 301)
    report = unfinished_seqs(store)
    assert MAX_EXPLAINED_PER_RUN == 200
    assert [(run.first_seq, run.last_seq) for run in report.runs] == [(201, 300)] and report.count == 100
