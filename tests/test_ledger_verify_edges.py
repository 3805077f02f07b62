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


def sales_no_terminal_asked_for(store, count):
    for seq in range(990, 990 + count):
        store.db.execute(
            """INSERT INTO txn (park_id, kind, terminal_id, seq, operator, station_id, card_account, amount_fen,
                                ledger_time_ms, terminal_time_ms, clock_uncertain, business_day)
               VALUES ('P1', 'charge', 'T-FISH-1', ?, 'op-1', 'fishing', NULL, 0, 0, 0, 0, '2026-05-28')""", (seq,))


def balance_rows_nobody_posted_to(store, count):
    for n in range(count):
        store.db.execute("INSERT INTO card_balance (park_id, account_id, fen) VALUES ('P1', ?, 1)", (f"card:X{n:04d}/1",))


def test_the_problem_limit_is_shared_by_the_checks_in_order(store):
    balance_rows_nobody_posted_to(store, 25)
    sales_no_terminal_asked_for(store, 10)
    problems = verify_books(store, max_problems=30).problems
    assert len(problems) == 30
    assert sum("has no approved request" in problem for problem in problems) == 5
    assert len(verify_books(store, max_problems=26).problems) == 26  # room for one more: the last check fills it


def test_once_the_problem_limit_is_reached_the_later_checks_add_nothing(store):
    balance_rows_nobody_posted_to(store, 25)
    sales_no_terminal_asked_for(store, 10)
    assert len(verify_books(store).problems) == 20


def refusal_rows(store, terminal_id, seqs, reason="BAD_SIGNATURE", detail="forged"):
    with store.batch():
        for seq in seqs:
            store.db.execute(
                "INSERT INTO refusal (received_ms, topic, payload_sha256, reason, detail, terminal_id, seq, payload) "
                "VALUES (?, 't', 'ab', ?, ?, ?, ?, x'')", (NOW_MS, reason, detail, terminal_id, seq))


def test_a_refused_seq_inside_a_gap_splits_it_into_three_runs(store):
    declined_requests(store, "T-FISH-1", [6])
    refusal_rows(store, "T-FISH-1", [3])
    runs = [(run.first_seq, run.last_seq, run.why.split(" ")[0]) for run in unfinished_seqs(store).runs]
    assert runs == [(1, 2, "never"), (3, 3, "refused"), (4, 5, "never")]


def test_the_newest_refusal_explains_a_seq_and_a_superseded_attempt_stays_finished(store):
    declined_requests(store, "T-FISH-1", [5])
    refusal_rows(store, "T-FISH-1", [2], reason="BAD_SIGNATURE", detail="first")
    refusal_rows(store, "T-FISH-1", [2], reason="SEQ_REUSED", detail="second")
    with store.batch():
        store.supersede("T-FISH-1", 3, 5)
    refusal_rows(store, "T-FISH-1", [3])
    report = unfinished_seqs(store)
    assert [(run.first_seq, run.last_seq) for run in report.runs] == [(1, 1), (2, 2), (4, 4)]
    assert report.runs[1].why == "refused SEQ_REUSED: second"


def test_within_one_run_eight_hundred_refusals_are_looked_up_and_the_rest_listed_plainly(store):
    declined_requests(store, "T-FISH-1", [901])
    refusal_rows(store, "T-FISH-1", range(1, 901))
    report = unfinished_seqs(store, max_runs=10_000)
    assert len(report.runs) == 801 and report.count == 900
    assert (report.runs[-1].first_seq, report.runs[-1].last_seq) == (801, 900)
    assert report.runs[-1].why.startswith("never received") and report.runs[-2].why == "refused BAD_SIGNATURE: forged"


def held(store, topic, payload, detail="ValueError: a bug"):
    import hashlib

    with store.batch():
        store.set_aside(hashlib.sha256(payload).hexdigest(), topic, payload, detail, NOW_MS)


def signed_charge(ledger_driver, seq):
    from protocol import codec

    body = ledger_driver.charge_body()
    body["seq"] = seq
    return ledger_driver.sign("T-FISH-1", codec.encode(body))


@pytest.fixture
def driver(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    yield ledger
    rig.close()
    ledger.store.close()


def test_a_held_message_above_a_gap_is_listed_apart_and_one_whose_seq_was_decided_is_not(driver):
    store = driver.store
    declined_requests(store, "T-FISH-1", [2, 4])    # a gap at 1 and at 3
    held(store, *signed_charge(driver, 9))          # held above everything: its own run
    held(store, *signed_charge(driver, 4))          # a copy of a decided seq: only a held message
    report = unfinished_seqs(store)
    assert [(run.first_seq, run.last_seq) for run in report.runs] == [(1, 1), (3, 3), (9, 9)]
    assert report.runs[2].why.startswith("set aside (") and report.unreadable_set_asides == ()


def test_a_held_message_on_no_tills_topic_is_reported_unreadable_and_the_books_unfinished(driver):
    store = driver.store
    held(store, "fieldpos/v1/P1/blocklist", b"not an envelope", detail="KeyError: x")
    _, sale = signed_charge(driver, 4)
    held(store, "fieldpos/v1/P1/t/T-FISH-1/status", sale, detail="KeyError: y")  # a seq, but no till's request topic
    report = unfinished_seqs(store)
    assert report.count == 0 and report.runs == ()
    assert sorted(line.split(": ", 1)[1] for line in report.unreadable_set_asides) == ["KeyError: x", "KeyError: y"]
    assert any(line.endswith(" on fieldpos/v1/P1/blocklist: KeyError: x") for line in report.unreadable_set_asides)
    assert not report.is_finished
