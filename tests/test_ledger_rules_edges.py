"""The posting rules (ledger.rules) at their edges, as tables: each decision's reason and its exact
postings, one fen either side of every limit. Pure functions: no store, no broker.

Written to kill the operator mutants of tools/mutation.py the older tests let through.
"""

import pytest

from ledger import rules
from ledger.rules import CardView, OriginalSale, Posting, StationView
from ledger.store import CardLimits
from protocol.messages import CardIssue, CardRef, CardReturn, Charge, LineItem, MemberOpen, OfflineCharge, TopUp, Void
from protocol.reasons import Reason

UID = "04a1b2c3"
REF = CardRef(no="C00042", issuance=2, uid=UID)
ACCOUNT = "card:C00042/2"
COMMON = dict(park="P1", terminal="T-FISH-1", seq=7, terminal_time_ms=0, clock_uncertain=False, operator="op-1",
              config_version=0)
FISHING = StationView("fishing", None, 0)
KIOSK = StationView("kiosk", "icecream-co", 1500)  # a contractor paying the park 15 %
LIMITS = CardLimits(max_balance_fen=100_000, min_topup_fen=1_000, max_topup_fen=50_000, daily_spend_fen=30_000)


def card_view(**change) -> CardView:
    fields = dict(card_no="C00042", issuance=2, uid=UID, kind="temporary", state="active", card_fee_fen=2000,
                  fen=7000, bonus=0, points=0)
    return CardView(**(fields | change))


def sale(amount_fen, cls=Charge, card=REF, **extra) -> Charge:
    lines = (LineItem(item="鱼饵 Bait", qty=1, unit_fen=amount_fen),)
    if cls is OfflineCharge:
        extra = dict(supersedes_seq=None, approved_ms=0) | extra
    return cls(**COMMON, card=card, amount_fen=amount_fen, lines=lines, pin_sha256=None, **extra)


def top_up(amount_fen, card=REF) -> TopUp:
    return TopUp(**COMMON, card=card, amount_fen=amount_fen, channel="wechat", payment_ref="")


def card_issue(card_fee_fen=2000, opening_fen=10_000, kind="temporary", issuance=1) -> CardIssue:
    return CardIssue(**COMMON, card=CardRef(no="C00042", issuance=issuance, uid=UID), card_kind=kind,
                     card_fee_fen=card_fee_fen, opening_fen=opening_fen, channel="cash", payment_ref="")


def member_open(opening_fen=10_000, issuance=1) -> MemberOpen:
    return MemberOpen(**COMMON, card=CardRef(no="C00042", issuance=issuance, uid=UID), member_name="王芳",
                      phone="13800000000", card_fee_fen=0, opening_fen=opening_fen, channel="alipay", payment_ref="",
                      pin_sha256="ab" * 32)


# ---------------------------------------------------------------- the card checks every request makes
@pytest.mark.parametrize("card, ref, reason", [
    (None, REF, Reason.UNKNOWN_CARD),
    (card_view(issuance=1), REF, Reason.UNKNOWN_CARD),               # a later issuance than the ledger knows
    (card_view(issuance=3), REF, Reason.OLD_ISSUANCE),
    (card_view(state="blocked"), REF, Reason.CARD_BLOCKED),
    (card_view(state="returned"), REF, Reason.CARD_RETURNED),
    (card_view(), REF, None),
])
def test_a_card_is_usable_only_in_its_latest_active_issuance(card, ref, reason):
    decision = rules.check_card(sale(100, card=ref), card)
    assert (decision.reason if decision else None) == reason
    if decision:
        assert decision.postings == () and not decision.is_approved


def test_a_card_number_seen_under_another_uid_is_declined_and_someone_is_told():
    decision = rules.check_card(sale(100, card=CardRef(no="C00042", issuance=2, uid="0badc0de")), card_view())
    assert decision.reason is Reason.CARD_UID_MISMATCH
    assert decision.alerts == (rules.Alert("CARD_UID_MISMATCH", "card C00042/2 seen with UID 0badc0de, registered 04a1b2c3"),)


# ---------------------------------------------------------------- issuing a card
def test_a_new_temporary_card_books_fee_and_opening_against_the_drawer():
    decision = rules.decide_card_issue(card_issue(2000, 10_000), None)
    assert decision.is_approved and decision.new_card and decision.amount_fen == 12_000
    assert decision.postings == (Posting("channel:cash", "fen", -12_000), Posting("card_fee", "fen", 2000),
                                 Posting("card:C00042/1", "fen", 10_000))


def test_a_card_issued_without_a_fee_books_no_zero_posting():
    assert rules.decide_card_issue(card_issue(0, 5000), None).postings == (
        Posting("channel:cash", "fen", -5000), Posting("card:C00042/1", "fen", 5000))


@pytest.mark.parametrize("request_, card, reason", [
    (card_issue(kind="member"), None, Reason.KIND_NOT_ALLOWED),
    (card_issue(), card_view(issuance=1, state="active"), Reason.CARD_IN_USE),
    (card_issue(), card_view(issuance=1, state="blocked"), Reason.CARD_BLOCKED),
    (card_issue(issuance=2), None, Reason.OLD_ISSUANCE),
    (card_issue(issuance=2), card_view(issuance=2, state="returned"), Reason.OLD_ISSUANCE),
    (card_issue(issuance=3), card_view(issuance=1, state="returned"), Reason.OLD_ISSUANCE),
    (card_issue(issuance=3), card_view(issuance=2, state="returned"), Reason.OK),
    (member_open(issuance=1), None, Reason.OK),
])
def test_a_card_is_issued_only_as_the_next_issuance_of_a_returned_or_unknown_number(request_, card, reason):
    assert rules.decide_card_issue(request_, card).reason is reason


# ---------------------------------------------------------------- card-type limits
@pytest.mark.parametrize("request_, card, spent_today_fen, reason", [
    (card_issue(opening_fen=100_000), None, 0, None),
    (card_issue(opening_fen=100_001), None, 0, Reason.OVER_BALANCE_LIMIT),
    (member_open(opening_fen=100_001), None, 0, Reason.OVER_BALANCE_LIMIT),
    (top_up(1000), card_view(fen=0), 0, None),                      # the smallest top-up
    (top_up(999), card_view(fen=0), 0, Reason.TOP_UP_OUT_OF_RANGE),
    (top_up(50_000), card_view(fen=0), 0, None),                    # the largest top-up
    (top_up(50_001), card_view(fen=0), 0, Reason.TOP_UP_OUT_OF_RANGE),
    (top_up(1), card_view(fen=-1), 0, None),                        # paying toward an offline debt
    (top_up(999), card_view(fen=-300), 0, None),
    (top_up(50_001), card_view(fen=-300), 0, Reason.TOP_UP_OUT_OF_RANGE),
    (top_up(50_000), card_view(fen=50_000), 0, None),               # exactly the balance cap
    (top_up(50_000), card_view(fen=50_001), 0, Reason.OVER_BALANCE_LIMIT),
    (sale(10_000), card_view(fen=20_000), 20_000, None),            # exactly the daily spend
    (sale(10_001), card_view(fen=20_000), 20_000, Reason.OVER_DAILY_LIMIT),
    (sale(10_001, cls=OfflineCharge), card_view(), 20_000, None),   # an offline sale already happened
])
def test_card_type_limits_hold_to_the_fen(request_, card, spent_today_fen, reason):
    decision = rules.check_limits(request_, card, LIMITS, kind="temporary", spent_today_fen=spent_today_fen)
    assert (decision.reason if decision else None) == reason


# ---------------------------------------------------------------- top-ups and bonus
TIERS = [(50_000, 5_000), (100_000, 15_000), (20_000, 1_000)]


@pytest.mark.parametrize("amount_fen, bonus", [(19_999, 0), (20_000, 1_000), (49_999, 1_000), (50_000, 5_000),
                                               (100_000, 15_000), (250_000, 15_000)])
def test_a_top_up_earns_the_bonus_of_the_highest_tier_it_reaches(amount_fen, bonus):
    assert rules.bonus_for(amount_fen, TIERS) == bonus
    assert rules.bonus_for(amount_fen, []) == 0


def test_a_member_top_up_books_money_and_bonus_and_a_temporary_one_money_only():
    member = rules.decide_top_up(top_up(50_000), card_view(kind="member"), TIERS)
    assert member.is_approved and member.amount_fen == 50_000
    assert member.postings == (Posting("channel:wechat", "fen", -50_000), Posting(ACCOUNT, "fen", 50_000),
                               Posting("promo", "bonus", -5_000), Posting(ACCOUNT, "bonus", 5_000))
    temporary = rules.decide_top_up(top_up(50_000), card_view(), TIERS)
    assert temporary.postings == (Posting("channel:wechat", "fen", -50_000), Posting(ACCOUNT, "fen", 50_000))


# ---------------------------------------------------------------- charges
@pytest.mark.parametrize("amount_fen, commission_bp, commission", [(10_001, 1500, 1500), (9_999, 1500, 1499),
                                                                   (100, 0, 0), (100, 10_000, 100), (7, 3333, 2)])
def test_the_park_commission_is_rounded_down_so_the_contractor_keeps_the_odd_fen(amount_fen, commission_bp, commission):
    assert rules.commission_fen(amount_fen, commission_bp) == commission


def test_a_charge_of_exactly_the_balance_is_approved_and_one_fen_more_declined():
    card = card_view(fen=300, bonus=200)
    assert rules.decide_charge(sale(500), card, FISHING).is_approved
    declined = rules.decide_charge(sale(501), card, FISHING)
    assert declined.reason is Reason.INSUFFICIENT_FUNDS and declined.postings == ()


def test_real_money_pays_first_unless_the_park_spends_bonus_first():
    card = card_view(kind="member", fen=300, bonus=200)
    money_first = rules.decide_charge(sale(400), card, FISHING)
    assert money_first.amount_fen == 400 and money_first.postings == (
        Posting(ACCOUNT, "fen", -300), Posting("promo_expense", "fen", -100), Posting(ACCOUNT, "bonus", -100),
        Posting("promo", "bonus", 100), Posting("revenue:fishing", "fen", 400))
    bonus_first = rules.decide_charge(sale(400), card, FISHING, bonus_first=True)
    assert bonus_first.postings == (
        Posting(ACCOUNT, "fen", -200), Posting("promo_expense", "fen", -200), Posting(ACCOUNT, "bonus", -200),
        Posting("promo", "bonus", 200), Posting("revenue:fishing", "fen", 400))
    small = rules.decide_charge(sale(150), card, FISHING, bonus_first=True)
    assert small.postings[:2] == (Posting("promo_expense", "fen", -150), Posting(ACCOUNT, "bonus", -150))


@pytest.mark.parametrize("kind, amount_fen, points", [("member", 450, 8), ("member", 399, 6), ("member", 99, 0), ("member", 100, 2),
                                                      ("temporary", 450, 0)])
def test_members_earn_points_per_whole_yuan_at_two_a_yuan(kind, amount_fen, points):
    decision = rules.decide_charge(sale(amount_fen), card_view(kind=kind, fen=1000), FISHING, points_per_yuan=2)
    earned = [p for p in decision.postings if p.asset == "points"]
    assert earned == ([Posting(ACCOUNT, "points", points), Posting("points_issued", "points", -points)] if points else [])
    rules.check_balanced(decision.postings)


def test_a_contractor_station_is_paid_its_share_and_the_park_keeps_the_commission():
    decision = rules.decide_charge(sale(10_001), card_view(fen=20_000), KIOSK)
    assert decision.postings == (Posting(ACCOUNT, "fen", -10_001), Posting("contractor:icecream-co", "fen", 8_501),
                                 Posting("revenue:kiosk", "fen", 1_500))
    no_commission = rules.decide_charge(sale(500), card_view(), StationView("kiosk", "icecream-co", 0))
    assert no_commission.postings == (Posting(ACCOUNT, "fen", -500), Posting("contractor:icecream-co", "fen", 500))


# ---------------------------------------------------------------- offline sales
@pytest.mark.parametrize("card, debit, alert", [
    (card_view(fen=100), ACCOUNT, None),
    (None, "offline_loss", "offline sale T-FISH-1/7 on unknown card card:C00042/2 (UID 04a1b2c3): booked to offline_loss"),
    (card_view(uid="0badc0de"), "offline_loss", "on unknown card"),
    (card_view(state="returned"), "offline_loss", "offline sale T-FISH-1/7 on card:C00042/2, refunded already: booked to offline_loss"),
    (card_view(state="blocked", fen=-50), ACCOUNT, None),
])
def test_an_offline_sale_lands_on_its_own_card_issuance_or_on_the_parks_loss(card, debit, alert):
    decision = rules.decide_offline_charge(sale(800, cls=OfflineCharge), card, FISHING)
    assert decision.is_approved and decision.allow_negative and decision.amount_fen == 800
    assert decision.postings == (Posting(debit, "fen", -800), Posting("revenue:fishing", "fen", 800))
    if alert is None:
        assert decision.alerts == ()
    else:
        (only,) = decision.alerts
        assert alert in only.detail


# ---------------------------------------------------------------- voids and reversals
ORIGINAL_POSTINGS = (Posting(ACCOUNT, "fen", -300), Posting("revenue:fishing", "fen", 300))


def void(amount_fen=300, card=REF) -> Void:
    return Void(**COMMON, card=card, original_seq=3, amount_fen=amount_fen, supervisor_card_no="S0001",
                pin_sha256="ab" * 32)


def original(**change) -> OriginalSale:
    return OriginalSale(**(dict(txn_id=12, kind="charge", amount_fen=300, card_account=ACCOUNT, is_voided=False,
                                postings=ORIGINAL_POSTINGS) | change))


@pytest.mark.parametrize("request_, found, reason", [
    (void(), None, Reason.ORIGINAL_NOT_FOUND),
    (void(), original(kind="top_up"), Reason.ORIGINAL_NOT_FOUND),
    (void(card=CardRef(no="C00043", issuance=2, uid=UID)), original(), Reason.ORIGINAL_NOT_FOUND),
    (void(), original(is_voided=True), Reason.ALREADY_VOIDED),
    (void(amount_fen=301), original(), Reason.AMOUNT_MISMATCH),
    (void(amount_fen=299), original(), Reason.AMOUNT_MISMATCH),
])
def test_a_void_needs_the_same_cards_unvoided_charge_of_the_same_amount(request_, found, reason):
    decision = rules.decide_void(request_, found)
    assert decision.reason is reason and decision.postings == () and decision.voids_txn is None


def test_a_void_books_the_sale_negated_and_names_it():
    decision = rules.decide_void(void(), original())
    assert decision.is_approved and decision.voids_txn == 12 and decision.amount_fen == 300
    assert decision.postings == (Posting(ACCOUNT, "fen", 300), Posting("revenue:fishing", "fen", -300))
    assert rules.decide_void(void(), original(kind="top_up"), kind="top_up").is_approved


# ---------------------------------------------------------------- replacement and return
def test_a_replacement_moves_every_asset_and_books_no_zero_moves():
    decision = rules.decide_transfer(card_view(fen=700, bonus=0, points=12), "card:C00099/1")
    assert decision.is_approved and decision.amount_fen == 700
    assert decision.postings == (Posting(ACCOUNT, "fen", -700), Posting("card:C00099/1", "fen", 700),
                                 Posting(ACCOUNT, "points", -12), Posting("card:C00099/1", "points", 12))
    bonus = rules.decide_transfer(card_view(fen=0, bonus=40, points=0), "card:C00099/1")
    assert bonus.postings == (Posting(ACCOUNT, "bonus", -40), Posting("card:C00099/1", "bonus", 40))


def card_return(damage_fee_fen=0) -> CardReturn:
    return CardReturn(**COMMON, card=REF, channel="cash", payment_ref="", damage_fee_fen=damage_fee_fen)


def test_a_returned_card_refunds_balance_and_fee_less_damage_and_lets_the_bonus_lapse():
    decision = rules.decide_card_return(card_return(500), card_view(fen=7000, bonus=300))
    assert decision.is_approved and decision.card_state == "returned" and decision.amount_fen == 8500
    assert decision.postings == (Posting(ACCOUNT, "fen", -7000), Posting("card_fee", "fen", -2000),
                                 Posting("revenue:card_damage", "fen", 500), Posting("channel:cash", "fen", 8500),
                                 Posting(ACCOUNT, "bonus", -300), Posting("promo", "bonus", 300))


@pytest.mark.parametrize("damage_fee_fen, card, reason", [
    (2000, card_view(), Reason.OK),              # damage up to the whole deposit
    (2001, card_view(), Reason.AMOUNT_MISMATCH),
    (0, card_view(kind="member"), Reason.KIND_NOT_ALLOWED),
])
def test_damage_costs_at_most_the_deposit_and_member_cards_are_never_returned(damage_fee_fen, card, reason):
    decision = rules.decide_card_return(card_return(damage_fee_fen), card)
    assert decision.reason is reason
    if reason is Reason.OK:
        assert decision.amount_fen == 7000 and Posting("channel:cash", "fen", 7000) in decision.postings


# ---------------------------------------------------------------- the balance check and decisions
@pytest.mark.parametrize("postings", [
    (Posting("a", "fen", 1),),
    (Posting("a", "fen", 1), Posting("b", "bonus", -1)),
    (Posting("a", "yuan", 1), Posting("b", "yuan", -1)),
    (Posting("a", "fen", True), Posting("b", "fen", -1)),
    (Posting("a", "fen", 0.5), Posting("b", "fen", -0.5)),
])
def test_postings_that_do_not_sum_to_zero_per_asset_or_are_not_integer_fen_are_a_bug(postings):
    with pytest.raises(AssertionError):
        rules.check_balanced(postings)


def test_balanced_postings_in_every_asset_pass_the_check():
    assert rules.check_balanced((Posting("a", "fen", 5), Posting("b", "fen", -5), Posting("a", "points", 2),
                                 Posting("c", "points", -2), Posting("d", "bonus", 0))) is None


def test_only_ok_books_and_same_sale_approves_without_booking():
    assert rules.Decision(reason=Reason.OK).is_approved is True
    assert rules.Decision(reason=Reason.SAME_SALE).is_approved is False
    assert rules.decline(Reason.CARD_BLOCKED, "told").alerts == (rules.Alert("CARD_BLOCKED", "told"),)
    assert rules.channel_account("alipay") == "channel:alipay"


def test_a_charge_of_exactly_the_daily_spend_passes_when_nothing_was_spent_today():
    assert rules.check_limits(sale(30_000), card_view(fen=40_000), LIMITS, kind="temporary") is None
    assert rules.check_limits(sale(30_001), card_view(fen=40_000), LIMITS, kind="temporary").reason is Reason.OVER_DAILY_LIMIT


def test_a_decline_moves_nothing_and_only_an_offline_sale_may_overdraw_or_an_issue_make_a_card():
    assert rules.decline(Reason.CARD_BLOCKED) == rules.Decision(
        reason=Reason.CARD_BLOCKED, postings=(), amount_fen=0, card_state=None, allow_negative=False, new_card=None,
        voids_txn=None, alerts=())
    online = rules.decide_charge(sale(500), card_view(), FISHING)
    assert online == rules.Decision(reason=Reason.OK, amount_fen=500, postings=(
        Posting(ACCOUNT, "fen", -500), Posting("revenue:fishing", "fen", 500)))
    assert (online.allow_negative, online.new_card, online.card_state, online.voids_txn) == (False, None, None, None)
    top = rules.decide_top_up(top_up(1000), card_view())
    assert (top.allow_negative, top.new_card, top.card_state, top.alerts) == (False, None, None, ())
