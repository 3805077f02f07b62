"""What one charge costs the ledger stays bounded: its daily-limit read goes through an index (not
every transaction the park ever booked), the card type's limits are read once per batch and a
change to them is seen by the next read, and a batch's replies leave corked and uncorked."""

import socket

import pytest

from host_sim.rig import single_line
from ledger.service import _corked
from ledger.store import CardLimits
from protocol.messages import Charge

from .helpers.intake_driver import VISITOR


@pytest.mark.sqlite_only(reason="reads SQLite's EXPLAIN QUERY PLAN")
def test_the_spend_today_read_searches_an_index_by_card_and_day(ledger):
    store = ledger.store
    statements = []
    store.db.set_trace_callback(statements.append)
    try:
        store.spent_today("P1", VISITOR.account, "2026-05-28")
    finally:
        store.db.set_trace_callback(None)
    (statement,) = statements
    plan = " ".join(row[3] for row in store.db.execute("EXPLAIN QUERY PLAN " + statement))
    # Before the index SQLite took voids_txn's for "voids_txn IS NULL": every transaction but the voids.
    assert "txn_by_card_day (park_id=? AND card_account=? AND business_day=?" in plan, plan


def test_spend_today_adds_up_the_cards_sales_of_the_day(ledger):
    for amount in (300, 450):
        assert ledger.request("T-FISH-1", Charge, amount_fen=amount, lines=(_line(amount),)).outcome == "approved"
    day = ledger.store.booking_day("P1", 1_780_000_000_000)
    assert ledger.store.spent_today("P1", VISITOR.account, day) == 750
    assert ledger.store.spent_today("P1", VISITOR.account, "2000-01-01") == 0


def test_card_limits_are_read_once_per_batch_and_a_change_is_seen_at_once(ledger):
    store = ledger.store
    statements = []
    with store.batch():
        before = store.card_limits("P1", "temporary")
        store.db.set_trace_callback(statements.append)
        try:
            assert store.card_limits("P1", "temporary") == before
        finally:
            store.db.set_trace_callback(None)
        assert statements == []  # the batch's copy
        lower = CardLimits(max_balance_fen=50_000, min_topup_fen=1_000, max_topup_fen=50_000, daily_spend_fen=500)
        store.set_card_limits("P1", "temporary", lower)  # inside the batch: its copy must not hide the change
        assert store.card_limits("P1", "temporary") == lower
    # The visitor's card (100.00) now meets a 5.00 daily limit: a 6.00 charge is declined by it.
    assert ledger.request("T-FISH-1", Charge, amount_fen=600, lines=(_line(600),)).reason == "OVER_DAILY_LIMIT"


def test_a_corked_block_leaves_its_socket_uncorked():
    if not hasattr(socket, "TCP_CORK"):
        pytest.skip("TCP_CORK is Linux's")
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    try:
        with _corked(client):
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
            client.sendall(b"reply")
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 0
        peer.settimeout(5)
        assert peer.recv(16) == b"reply"
        with _corked(None):  # no connection: nothing to cork, nothing raised
            pass
    finally:
        for sock in (client, peer, server):
            sock.close()


def _line(amount_fen):
    return single_line("鱼饵", amount_fen)[0]
