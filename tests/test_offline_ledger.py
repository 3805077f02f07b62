"""Offline sales at the ledger: they happened, so they land — once — even when they overdraw."""

import pytest

from host_sim.rig import ParkRig, card, single_line
from ledger.verify import verify_books
from protocol.messages import CardReturn, Charge, OfflineCharge

from .conftest import TERMINALS
from .helpers.intake_driver import VISITOR, Ledger


@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    assert ledger.issue(opening_fen=5000).outcome == "approved"
    yield ledger
    rig.close()
    ledger.store.close()


def offline(ledger, terminal_id, amount_fen, *, card_ref=VISITOR, supersedes=None):
    message = OfflineCharge(**ledger.fields(terminal_id, card_ref), amount_fen=amount_fen,
                            lines=single_line("鱼饵 Bait", amount_fen), supersedes_seq=supersedes,
                            approved_ms=1_780_000_000_000)
    return ledger.send(*ledger.sign(terminal_id, message.to_bytes()))


def online(ledger, terminal_id, amount_fen, *, card_ref=VISITOR):
    message = Charge(**ledger.fields(terminal_id, card_ref), amount_fen=amount_fen, lines=single_line("鱼饵 Bait", amount_fen))
    return ledger.send(*ledger.sign(terminal_id, message.to_bytes()))


def balance(ledger, card_ref=VISITOR):
    return ledger.store.card_balances("P1", card_ref.account)[0]


def charges(ledger):
    return ledger.store.db.execute("SELECT COUNT(*) FROM txn WHERE kind IN ('charge', 'offline_charge')").fetchone()[0]


def test_two_offline_terminals_spending_past_the_balance_both_land_and_the_card_is_blocked(ledger):
    first = offline(ledger, "T-FISH-1", 3000)
    second = offline(ledger, "T-FISH-2", 3000)
    assert first.is_approved and second.is_approved
    assert balance(ledger) == -1000
    state = ledger.store.db.execute("SELECT state FROM card WHERE card_no=?", (VISITOR.no,)).fetchone()[0]
    assert state == "blocked"
    assert ledger.store.blocked_cards("P1") == [(VISITOR.no, 1)]
    assert ledger.store.blocklist_version("P1") == 1
    kinds = [kind for (kind,) in ledger.store.db.execute("SELECT kind FROM alert")]
    assert "OFFLINE_OVERDRAFT" in kinds
    assert online(ledger, "T-FISH-1", 100).reason == "CARD_BLOCKED"  # and online it is refused now
    assert verify_books(ledger.store).is_ok


def test_an_overdrawn_card_is_settled_by_a_top_up_at_the_desk_and_can_then_be_returned(ledger):
    from protocol.messages import CardUnblock, TopUp

    offline(ledger, "T-FISH-1", 3000)
    offline(ledger, "T-FISH-2", 3000)  # 10.00 owed, the card blocked

    def top_up(amount_fen):
        return ledger.request("T-DESK-1", TopUp, amount_fen=amount_fen, channel="cash", payment_ref="")

    assert ledger.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0).reason == "CARD_BLOCKED"
    assert ledger.request("T-DESK-1", CardUnblock).reason == "KIND_NOT_ALLOWED"  # a debt is paid, not waved away
    part = top_up(500)
    assert part.is_approved and part.balances.fen == -500 and ledger.store.blocked_cards("P1") == [(VISITOR.no, 1)]
    settled = top_up(500)
    assert settled.is_approved and settled.balances.fen == 0
    assert ledger.store.blocked_cards("P1") == [] and ledger.store.blocklist_version("P1") == 2  # an unblock delta
    returned = ledger.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0)
    assert returned.is_approved
    assert ledger.store.db.execute("SELECT SUM(amount) FROM posting WHERE account_id='channel:cash'").fetchone()[0] == -5000 - 2000 - 1000 + 2000
    assert verify_books(ledger.store).is_ok


def test_an_online_attempt_declined_then_sold_offline_lands_once(ledger):
    declined = online(ledger, "T-FISH-1", 9000)  # seq 1: the reply is lost on the way back
    assert declined.reason == "INSUFFICIENT_FUNDS"
    sold = offline(ledger, "T-FISH-1", 9000, supersedes=declined.seq)
    assert sold.is_approved and sold.reason == "OK" and balance(ledger) == -4000
    assert charges(ledger) == 1


def test_an_online_attempt_approved_then_sold_offline_is_one_sale(ledger):
    approved = online(ledger, "T-FISH-1", 1000)
    again = offline(ledger, "T-FISH-1", 1000, supersedes=approved.seq)
    assert (again.outcome, again.reason) == ("approved", "SAME_SALE")
    assert charges(ledger) == 1 and balance(ledger) == 4000
    assert verify_books(ledger.store).is_ok


def test_an_online_attempt_arriving_after_its_offline_replacement_is_declined(ledger):
    fields = ledger.fields("T-FISH-1")  # seq 1 is the online attempt, still in the terminal's outbox
    late = Charge(**fields, amount_fen=1000, lines=single_line("鱼饵 Bait", 1000))
    sold = offline(ledger, "T-FISH-1", 1000, supersedes=fields["seq"])
    assert sold.is_approved
    result = ledger.send(*ledger.sign("T-FISH-1", late.to_bytes()))
    assert (result.outcome, result.reason) == ("declined", "SUPERSEDED")
    assert charges(ledger) == 1 and balance(ledger) == 4000


def test_a_late_offline_sale_from_the_first_visitor_never_touches_the_next_visitors_card(ledger):
    assert ledger.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0).is_approved
    reissued = card(VISITOR.no, issuance=2, uid=VISITOR.uid)
    assert ledger.issue(8000, reissued).is_approved
    late = offline(ledger, "T-FISH-1", 2000)  # made on issuance 1 before the card came back
    assert late.is_approved
    assert balance(ledger, reissued) == 8000
    loss = ledger.store.db.execute(
        "SELECT SUM(amount) FROM posting WHERE account_id='offline_loss'").fetchone()[0]
    assert loss == -2000
    assert verify_books(ledger.store).is_ok


def test_the_exposure_report_shows_overdrafts_blocked_cards_and_the_worst_case(ledger):
    from ledger.reports.offline import format_offline_exposure, offline_exposure

    offline(ledger, "T-FISH-1", 3000)
    offline(ledger, "T-FISH-2", 3000)
    report = offline_exposure(ledger.store, "P1")
    by_terminal = {row[0]: row for row in report.terminals}
    assert by_terminal["T-FISH-1"][1:3] == (1, 3000) and by_terminal["T-FISH-2"][3] == 1  # the second overdrew
    assert report.cards == [(VISITOR.account, 2, 6000, -1000, "blocked")]
    assert report.blocked_for_overdraft == 1
    # Three station terminals (two fishing, one riding) may sell offline: 300.00 each per card.
    assert report.station_terminals == 3 and report.worst_case_card_fen == 3 * 30000
    text = format_offline_exposure(report, 1_780_000_000_000)
    assert "worst case per card: 300.00 x 3 terminals" in text and "-10.00" in text and "blocked" in text
