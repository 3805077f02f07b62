"""Rentals on the ledger (issue 13), through the intake over a real SQLite file: deposits in their
own pool, vouchers, hand-out, returns, claims, the card return guard, online deposits, forfeits."""

from datetime import datetime
from zoneinfo import ZoneInfo

from nacl.signing import SigningKey
import pytest

from host_sim.rig import card
from ledger.broadcasts import config_payload
from ledger.reports.offline import format_offline_exposure, offline_exposure
from ledger.rentals_online import (forfeit_old_deposits, online_deposit, pending_refunds, record_online_deposit,
                                   refund_done)
from ledger.rules.rentals import POOL_KINDS, PoolIsolationError
from ledger.store import NewTxn
from ledger.verify import verify_books
from protocol import envelope
from protocol.envelope import Purpose
from protocol.kinds import KINDS
from protocol.messages import (CardReturn, DepositCard, DepositDesk, OfflineRentalOut, RentalOut, RentalReturn,
                               TerminalConfig, parse)
from protocol.voucher import Voucher, make_voucher, verify_voucher
from ledger.rules.decision import Posting

from .helpers.intake_driver import VISITOR
from .helpers.rental_park import MINUTE, T0, rental_park

STAFF_CARD = card("S0001")


@pytest.fixture
def park(tmp_path):
    with rental_park(tmp_path) as ledger:
        yield ledger


def deposit_cash(park, item_type="rod", deposit_fen=3000, terminal="T-RENT-1"):
    return park.request(terminal, DepositDesk, card_ref=STAFF_CARD, item_type=item_type, deposit_fen=deposit_fen,
                        channel="cash", payment_ref="")


def hand_out(park, voucher, label, terminal="T-RENT-1"):
    return park.request(terminal, RentalOut, card_ref=STAFF_CARD, voucher=voucher, item_label=label)


def give_back(park, label, condition="intact", damage=""):
    return park.request("T-RENT-1", RentalReturn, card_ref=STAFF_CARD, item_label=label, condition=condition,
                        damage=damage)


def assert_books_verify(park):
    report = verify_books(park.store)
    assert report.problems == ()


def test_a_cash_deposit_returned_on_time_releases_the_rest_in_cash_and_the_pool_is_empty_again(park):
    reply = deposit_cash(park)
    assert reply.TYPE == "deposit_reply" and reply.deposit_fen == 3000
    voucher = verify_voucher(reply.voucher, park.voucher_key, T0)
    assert (voucher.order, voucher.item_type) == (reply.order, "rod")
    assert park.pool_fen() == 3000
    assert_books_verify(park)

    assert hand_out(park, reply.voucher, "ROD-001").is_approved
    assert park.store.rental_item("P1", "ROD-001").state == "out"
    assert park.pool_fen() == 3000  # handed out: the money stays held

    park.now_ms = T0 + 90 * MINUTE
    back = give_back(park, "ROD-001")
    assert back.TYPE == "rental_return_reply"
    assert (back.rental_fen, back.late_fen, back.damage_fen, back.refunded_fen, back.claim_fen, back.route) == (
        1000, 0, 0, 2000, 0, "cash")
    assert park.pool_fen() == 0
    assert park.balance("revenue:fishing") == 1000
    assert park.store.rental_item("P1", "ROD-001").state == "available"
    assert_books_verify(park)


def test_a_card_deposit_returned_late_and_damaged_captures_each_fee_and_leaves_a_claim_for_the_rest(park):
    assert park.issue(opening_fen=10000).is_approved
    reply = park.request("T-RENT-1", DepositCard, card_ref=VISITOR, item_type="rod", deposit_fen=3000)
    assert reply.TYPE == "deposit_reply"
    assert park.balance(VISITOR.account) == 7000
    assert hand_out(park, reply.voucher, "ROD-002").is_approved

    # A card with an open deposit cannot be handed back at the desk.
    refused = park.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0)
    assert (refused.outcome, refused.reason) == ("declined", "DEPOSITS_OPEN")

    park.now_ms = T0 + (120 + 15 + 61) * MINUTE  # 61 minutes past the grace: two started hours late
    back = give_back(park, "ROD-002", "damaged", "reel")
    assert (back.rental_fen, back.late_fen, back.damage_fen) == (1000, 1000, 2000)
    assert (back.refunded_fen, back.claim_fen, back.route) == (0, 1000, "card")
    assert park.balance(f"claim:{reply.order}") == -1000  # a temporary card: an open claim, not a debt on it
    assert park.balance("income:rental_late") == 1000 and park.balance("income:rental_damage") == 2000
    assert park.store.rental_item("P1", "ROD-002").state == "in_repair"
    assert park.pool_fen() == 0
    assert_books_verify(park)

    returned = park.request("T-DESK-1", CardReturn, channel="cash", payment_ref="", damage_fee_fen=0)
    assert returned.is_approved  # closed now: the card goes back


def test_the_same_voucher_scanned_twice_online_is_refused_with_the_time_and_place_of_the_first(park):
    reply = deposit_cash(park)
    assert hand_out(park, reply.voucher, "ROD-001").is_approved
    second = hand_out(park, reply.voucher, "ROD-003", terminal="T-RENT-2")
    assert (second.outcome, second.reason) == ("declined", "VOUCHER_USED")
    (zone,) = park.store.db.execute("SELECT time_zone FROM park").fetchone()
    local = datetime.fromtimestamp(T0 / 1000, ZoneInfo(zone))  # the park's time zone, as the desk reads it
    assert f"first redeemed {local:%Y-%m-%d %H:%M:%S} at T-RENT-1" in second.detail
    assert park.store.rental_item("P1", "ROD-003").state == "available"


def test_a_voucher_redeemed_offline_on_two_terminals_is_recorded_on_both_and_flagged(park):
    reply = deposit_cash(park)
    for terminal, label, minute in (("T-RENT-1", "ROD-001", 5), ("T-RENT-2", "ROD-003", 7)):
        result = park.request(terminal, OfflineRentalOut, card_ref=STAFF_CARD, voucher=reply.voucher, item_label=label,
                              approved_ms=T0 + minute * MINUTE)
        assert result.is_approved, result
    redemptions = park.store.db.execute(
        "SELECT terminal_id, is_offline, is_flagged FROM voucher_redemption ORDER BY redeemed_ms").fetchall()
    assert redemptions == [("T-RENT-1", 1, 0), ("T-RENT-2", 1, 1)]
    alerts = [row[0] for row in park.store.db.execute(
        "SELECT detail FROM alert WHERE kind='VOUCHER_REDEEMED_TWICE'")]
    assert len(alerts) == 1 and "T-RENT-1" in alerts[0] and "T-RENT-2" in alerts[0]
    exposure = format_offline_exposure(offline_exposure(park.store, "P1"), T0)
    assert f"{reply.order}: T-RENT-1 ROD-001 +0 min; T-RENT-2 ROD-003 +2 min" in exposure
    # Both items come back; the deposit closes once, on the first item.
    park.now_ms = T0 + 60 * MINUTE
    assert give_back(park, "ROD-001").TYPE == "rental_return_reply"
    assert give_back(park, "ROD-003").is_approved
    assert park.store.rental_item("P1", "ROD-003").state == "available"
    assert_books_verify(park)


def _altered(token: str) -> str:
    at = len(token) // 2
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1:]


def test_a_forged_altered_or_expired_voucher_is_refused(park):
    reply = deposit_cash(park)
    forged = make_voucher(Voucher("P1", reply.order, "rod", reply.expires_ms, "P1-voucher-1"), SigningKey.generate())
    for token in (forged, _altered(reply.voucher)):
        result = hand_out(park, token, "ROD-001")
        assert (result.outcome, result.reason) == ("declined", "VOUCHER_INVALID")
    park.now_ms = reply.expires_ms
    expired = hand_out(park, reply.voucher, "ROD-001")
    assert (expired.outcome, expired.reason) == ("declined", "VOUCHER_EXPIRED")
    assert park.store.rental_item("P1", "ROD-001").state == "available"


def test_a_deposit_of_another_sum_or_an_unknown_type_and_a_label_of_another_type_are_declined(park):
    assert deposit_cash(park, deposit_fen=2500).reason == "DEPOSIT_MISMATCH"
    assert deposit_cash(park, item_type="boat").reason == "UNKNOWN_ITEM_TYPE"
    reply = deposit_cash(park)
    assert hand_out(park, reply.voucher, "BIKE-01").reason == "ITEM_WRONG_TYPE"
    assert hand_out(park, reply.voucher, "NO-SUCH").reason == "ITEM_UNKNOWN"
    assert give_back(park, "ROD-001").reason == "ITEM_NOT_OUT"
    assert park.pool_fen() == 3000


@pytest.mark.parametrize("kind", sorted(set(KINDS) - POOL_KINDS) + ["offline_loss", "anything_else"])
def test_no_other_kind_may_post_to_a_deposit_account(park, kind):
    reply = deposit_cash(park)
    before = park.pool_fen()
    txn = NewTxn(park_id="P1", kind=kind, terminal_id="T-FISH-1", seq=999, operator="op-1", station_id="fishing",
                 card_account=None, amount_fen=100, ledger_time_ms=T0, terminal_time_ms=T0, clock_uncertain=False)
    with pytest.raises(PoolIsolationError):
        with park.store.batch():
            park.store.book(txn, (Posting(f"deposit:{reply.order}", "fen", -100), Posting("revenue:fishing", "fen", 100)))
    assert park.pool_fen() == before


def test_an_online_deposit_notified_twice_is_one_deposit_and_its_refund_goes_back_to_the_provider_once(park):
    keys = park.rig.home.ledger_keys()
    paid = dict(park_id="P1", provider="wechat", provider_order="WX-0001", transaction_id="4200001",
                item_type="rod", amount_fen=3000, paid_ms=T0, now_ms=T0)
    first = record_online_deposit(park.store, keys, **paid)
    again = record_online_deposit(park.store, keys, **paid)
    assert first.is_new and not again.is_new and (again.order, again.voucher) == (first.order, first.voucher)
    looked_up = online_deposit(park.store, keys, park_id="P1", provider="wechat", provider_order="WX-0001")
    assert (looked_up.order, looked_up.voucher, looked_up.is_new) == (first.order, first.voucher, False)
    assert online_deposit(park.store, keys, park_id="P1", provider="alipay", provider_order="WX-0001") is None
    assert park.pool_fen() == 3000
    assert hand_out(park, first.voucher, "ROD-001").is_approved
    park.now_ms = T0 + 30 * MINUTE
    back = give_back(park, "ROD-001")
    assert (back.refunded_fen, back.route) == (2000, "online_wechat")
    (refund,) = pending_refunds(park.store, "P1")
    assert (refund.refund_no, refund.provider_order, refund.amount_fen, refund.total_fen) == (
        f"RF{first.order}", "WX-0001", 2000, 3000)
    assert refund_done(park.store, "P1", refund.refund_no, "50300001", T0)
    assert not refund_done(park.store, "P1", refund.refund_no, "50300001", T0)  # a repeated refund notification
    assert pending_refunds(park.store, "P1") == []
    assert_books_verify(park)


def test_a_hold_never_closed_is_forfeited_by_the_park_rule_and_the_books_still_verify(park):
    reply = deposit_cash(park)
    assert hand_out(park, reply.voucher, "BIKE-01").reason == "ITEM_WRONG_TYPE"
    assert hand_out(park, reply.voucher, "ROD-001").is_approved
    assert forfeit_old_deposits(park.store, "P1", older_than_days=2, now_ms=T0 + 86_400_000) == []
    park.now_ms = T0 + 86_400_000
    young = deposit_cash(park)  # a day younger
    done = forfeit_old_deposits(park.store, "P1", older_than_days=2, now_ms=T0 + 2 * 86_400_000 + 1)
    assert done == [reply.order]
    assert park.pool_fen() == 3000  # the young one is still held
    assert park.balance("income:rental_forfeit") == 3000
    assert park.store.rental_item("P1", "ROD-001").state == "retired"
    assert park.store.db.execute("SELECT COUNT(*) FROM alert WHERE kind='DEPOSIT_FORFEITED'").fetchone()[0] == 1
    assert young.order != reply.order
    assert_books_verify(park)


def test_the_books_check_flags_a_pool_that_differs_from_its_open_holds(park):
    deposit_cash(park)
    park.store.db.execute("UPDATE deposit_order SET state='closed'")  # the row says closed, the money is still held
    problems = verify_books(park.store).problems
    assert any("deposit order D1" in problem for problem in problems)
    assert any("the deposit pool of P1 holds 3000 fen, the open holds add up to 0" in problem for problem in problems)


def test_a_rental_terminals_signed_config_carries_its_stations_stock(park):
    keys = park.rig.home.ledger_keys()
    park.store.set_rental_item_state("P1", "ROD-003", "retired")
    topic, payload = config_payload(park.store, keys, "P1", "T-RENT-1", T0)
    body = envelope.verify(envelope.split(payload, max_bytes=61_440),
                           verify_key=keys.for_purpose(Purpose.CONFIG).signing_key.verify_key,
                           purpose=Purpose.CONFIG, topic=topic)
    config = parse(body, {TerminalConfig.TYPE: TerminalConfig})
    assert [t.item_type for t in config.rental.item_types] == ["bike", "rod"]
    assert [(i.label, i.state) for i in config.rental.items] == [("BIKE-01", "available"), ("ROD-001", "available"),
                                                                ("ROD-002", "available")]
    _, desk = config_payload(park.store, keys, "P1", "T-DESK-1", T0)
    assert b'"rental":null' in desk


def test_the_deposit_and_rental_reports_and_the_liabilities_slot_add_up_from_the_books(park):
    from ledger.reports.catalog import make_scope, run_report
    from ledger.reports.export import render

    assert park.issue(opening_fen=10000).is_approved
    on_card = park.request("T-RENT-1", DepositCard, card_ref=VISITOR, item_type="rod", deposit_fen=3000)
    in_cash = deposit_cash(park, item_type="bike", deposit_fen=20000)
    still_held = deposit_cash(park)
    assert hand_out(park, on_card.voucher, "ROD-001").is_approved
    assert hand_out(park, in_cash.voucher, "BIKE-01").is_approved
    park.now_ms = T0 + 150 * MINUTE
    give_back(park, "ROD-001", "lost")   # 1000 rental + 500 late + 8000 lost: 6500 beyond the deposit
    give_back(park, "BIKE-01")           # 3 started hours: 4500
    db = park.store.db
    scope = make_scope(db, now_ms=park.now_ms)

    deposits = run_report(db, "deposits", scope)
    held, period, claims, refunds = deposits.tables
    assert refunds.rows == []  # nothing paid online
    assert held.as_dicts() == [{"route": "cash", "holds": 1, "held_fen": 3000, "oldest": held.rows[0][3]}]
    returned = dict(zip([c.key for c in period.columns], period.rows[1]))
    assert (returned["orders"], returned["deposit_fen"], returned["refunded_fen"], returned["claim_fen"]) == (
        2, 23000, 15500, 6500)
    assert claims.rows[0][:2] == (on_card.order, 6500)
    liabilities = run_report(db, "liabilities", scope).tables[0]
    assert ("rental deposits held 租赁押金", 3000) in [row[:2] for row in liabilities.rows]
    assert park.pool_fen() == 3000 and still_held.order

    report = run_report(db, "rentals", scope)
    by_type, by_item, by_hour, renters = report.tables
    assert [(row[0], row[2], row[4], row[6]) for row in by_type.rows] == [("bike", 1, "2.5", 4500),
                                                                         ("rod", 1, "2.5", 1000)]
    assert by_type.rows[1][8] == "100.0%"  # the rod was lost
    assert sum(row[1] for row in by_hour.rows) == 2
    assert {row[0]: row[1] for row in renters.rows} == {"at the desk 柜台": 1, "temporary card 临时卡": 1}
    assert "BIKE-01" in render(report, "text").decode()
    assert "65.00" in render(deposits, "csv").decode("utf-8-sig")
