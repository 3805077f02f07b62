"""One rule per request kind, found by its type; the common card checks run for every kind that
keeps them; gathering a View reads and never writes, and a temporary card's charge reads no more
than it did before rules were pure."""

import pytest

from ledger import rules
from ledger.rules import cards, members, rentals, sales, staff
from protocol.kinds import KINDS
from protocol.messages import CardRef
from protocol.reasons import Reason

from .helpers.intake_driver import VISITOR
from .helpers.rule_tables import FIELDS, WANG, FakePins, card_view, request, view


def test_every_declared_kind_has_exactly_one_rule_and_every_rule_a_declared_kind():
    assert set(rules.RULES) == set(KINDS)
    registered = [name for module in (sales, cards, members, staff, rentals) for name in module.RULES]
    assert sorted(registered) == sorted(KINDS)
    assert set(FIELDS) == set(KINDS)  # the table tests can build a request of every kind


def test_a_kind_registered_twice_is_refused_at_import():
    with pytest.raises(ImportError, match="two rules for charge"):
        rules._register(sales, sales)


# Each common check, the card that trips it, and the reason it declines with.
TRIPS = {
    "card_known": (None, Reason.UNKNOWN_CARD),
    "issuance_current": (card_view(WANG, issuance=2), Reason.OLD_ISSUANCE),
    "uid_matches": (card_view(WANG, uid="deadbeef"), Reason.CARD_UID_MISMATCH),
    "not_blocked": (card_view(WANG, state="blocked"), Reason.CARD_BLOCKED),
}
WALK = [(name, check) for name, kind in KINDS.items() for check in TRIPS if kind.runs(check)]


@pytest.mark.parametrize("type_name, check", WALK, ids=[f"{name}-{check}" for name, check in WALK])
def test_every_kind_that_keeps_a_common_check_is_declined_by_it_before_its_own_rule(type_name, check):
    card, reason = TRIPS[check]
    pins = FakePins()  # nothing opens: a rule that ran would reach for a PIN or a view field it lacks
    decision = rules.decide(request(type_name, WANG), view(card=card, pins=pins))
    assert decision.reason is reason
    assert (decision.postings, decision.new_card, decision.blocklist, decision.notification) == ((), None, (), None)
    assert pins.opened == []


def test_the_walk_covers_every_kind_that_moves_money_on_a_card():
    walked = {name for name, _ in WALK}
    assert walked == {name for name, kind in KINDS.items() if not set(TRIPS) <= kind.skips_card_checks}
    assert {"charge", "top_up", "void", "card_return", "reversal", "member_transfer"} <= walked


# ---------------------------------------------------------------- gathering reads, never writes
OTHER = CardRef(no="C00077", issuance=1, uid="0badc0de")


@pytest.mark.parametrize("type_name", sorted(KINDS))
@pytest.mark.parametrize("card_ref", [VISITOR, OTHER], ids=["issued", "unknown"])
def test_gathering_a_view_writes_nothing(ledger, type_name, card_ref):
    store = ledger.store
    message = request(type_name, card_ref, terminal="T-DESK-1", seq=50)
    before = store.db.total_changes
    with store.batch():
        found = rules.gather(message, store, store.terminal("T-DESK-1"), 1_780_000_000_000, FakePins())
    assert store.db.total_changes == before
    assert isinstance(found, rules.View)


def test_a_temporary_cards_charge_reads_what_it_read_before_and_never_members_or_staff(ledger):
    store = ledger.store
    message = request("charge", VISITOR, terminal="T-FISH-1", seq=50)
    statements = []
    with store.batch():
        terminal = store.terminal("T-FISH-1")
        rules.gather(message, store, terminal, 1_780_000_000_000, FakePins())  # the batch's cached reads warm up
        store.db.set_trace_callback(statements.append)
        try:
            rules.gather(message, store, terminal, 1_780_000_000_000, FakePins())
        finally:
            store.db.set_trace_callback(None)
    # The card with its balances, its spend today, whether the sale was superseded (its type's limits are
    # read once per batch, with the park's other rules).
    assert len(statements) == 3, statements
    assert not any(" member " in text or " staff " in text or "park_rule" in text for text in statements)
