"""The store's behaviour, the same on SQLite and on PostgreSQL (each test runs on both through the
``store_backend`` fixture; FIELDPOS_TEST_STORE=postgresql runs the whole suite on PostgreSQL).

Through the ledger's intake, as the service drives it: the one posting path, idempotency, declines
stored and refusals not, sums as integers, the offline overdraft's block, verify."""

from protocol.messages import Charge, OfflineCharge, TopUp

from host_sim.rig import single_line
from ledger.verify import unfinished_seqs, verify_books

from .helpers.intake_driver import VISITOR, open_ledger

TERMINALS = {"T-FISH-1": "fishing", "T-FISH-2": "fishing", "T-DESK-1": "desk"}


def test_a_park_home_keeps_its_books_on_the_backend_asked_for(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        location = ledger.rig.home.store_location
        assert location.startswith("postgresql://") == (store_backend == "postgresql")
        assert type(ledger.store).__name__ == ("PostgresStore" if store_backend == "postgresql" else "Store")


def test_charges_book_once_retries_get_the_same_bytes_and_the_books_balance(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue(opening_fen=10_000).outcome == "approved"
        body = Charge(**ledger.fields("T-FISH-1"), amount_fen=3000, lines=single_line("鱼饵", 3000)).to_bytes()
        topic, payload = ledger.sign("T-FISH-1", body)
        replies = [ledger.intake.process([(topic, payload)])[0].payload for _ in range(3)]
        assert replies[0] == replies[1] == replies[2]
        first = ledger.send(topic, payload)
        assert first.outcome == "approved" and first.balances.fen == 7000 and isinstance(first.txn, int)
        # The same seq with another body: refused as a reuse, never booked.
        reused = Charge(**{**ledger.fields("T-FISH-1"), "seq": first.seq}, amount_fen=2000,
                        lines=single_line("鱼饵", 2000)).to_bytes()
        assert ledger.send(*ledger.sign("T-FISH-1", reused)).reason == "SEQ_REUSED"
        declined = ledger.request("T-FISH-1", Charge, amount_fen=9000, lines=single_line("鱼饵", 9000))
        assert declined.reason == "INSUFFICIENT_FUNDS" and declined.balances.fen == 7000
        store = ledger.store
        assert store.stored_outcome("T-FISH-1", declined.seq)[:2] == ("declined", "INSUFFICIENT_FUNDS")
        assert store.card_balances("P1", VISITOR.account) == (7000, 0, 0)
        (charges,) = store.db.execute("SELECT COUNT(*) FROM txn WHERE kind = 'charge'").fetchone()
        assert charges == 1
        day = store.business_day("P1", 1_780_000_000_000)
        takings = store.station_takings("P1", "fishing", day)
        assert takings[:2] == (1, 3000) and all(type(value) is int for value in takings)
        assert store.spent_today("P1", VISITOR.account, day) == 3000
        report = verify_books(store)
        assert report.problems == () and report.transactions == 2


def test_an_offline_overdraft_is_booked_blocks_the_card_and_a_top_up_counts(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue(opening_fen=1000).outcome == "approved"
        sold = ledger.request("T-FISH-2", OfflineCharge, amount_fen=1500, lines=single_line("鱼饵", 1500),
                              supersedes_seq=None, approved_ms=1_780_000_000_000)
        assert sold.outcome == "approved" and sold.balances.fen == -500
        store = ledger.store
        assert store.card("P1", VISITOR.no).state == "blocked"
        assert store.blocklist_version("P1") == 1
        topped = ledger.request("T-DESK-1", TopUp, amount_fen=2000, channel="cash", payment_ref="")
        assert topped.outcome == "approved" and topped.balances.fen == 1500
        assert verify_books(store).problems == ()
        assert not unfinished_seqs(store).runs


def test_refusals_are_counted_not_stored_against_a_seq(tmp_path, store_backend):
    with open_ledger(tmp_path, TERMINALS) as ledger:
        assert ledger.issue().outcome == "approved"
        topic, payload = ledger.sign("T-FISH-1", Charge(**ledger.fields("T-FISH-1"), amount_fen=100,
                                                        lines=single_line("x", 100)).to_bytes())
        forged = payload[:-1] + bytes([payload[-1] ^ 1])
        for _ in range(3):
            assert ledger.send(topic, forged).reason == "BAD_SIGNATURE"
        assert ledger.store.refusal_counts()[0][1:3] == ("BAD_SIGNATURE", 3)
        assert ledger.send(topic, payload).outcome == "approved"  # the seq was not used up
