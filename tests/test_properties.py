"""Property tests of the money rules: the ledger's posting rules (ledger/rules.py) and the
terminal's offline rules (terminal/offline.py), for any cards, amounts, clocks and reboots Hypothesis
can think of. CI runs the pinned "ci" profile (tests/conftest.py); ``--runslow`` runs many more.
"""

import dataclasses

from hypothesis import assume, given, strategies as st

from ledger import rules
from ledger.rules import CardView, OriginalSale, StationView
from protocol.limits import MAX_AMOUNT_FEN
from protocol.messages import CardRef, CardReturn, Charge, LineItem, OfflineCharge, OfflinePolicy, TopUp, Void
from protocol.reasons import Reason
from terminal import offline
from terminal.offline import BlocklistCopy, OfflineWindow

CARD = CardRef(no="C00042", issuance=1, uid="04a1b2c3")
COMMON = dict(park="P1", terminal="T-FISH-1", seq=1, terminal_time_ms=0, clock_uncertain=False, operator="op-1",
              config_version=0, card=CARD)

fen = st.integers(min_value=0, max_value=MAX_AMOUNT_FEN)
amount = st.integers(min_value=1, max_value=MAX_AMOUNT_FEN)
channels = st.sampled_from(["cash", "wechat", "alipay", "bank"])
stations = st.one_of(
    st.builds(StationView, station_id=st.just("fishing"), contractor_id=st.none(), commission_bp=st.just(0)),
    st.builds(StationView, station_id=st.just("riding"), contractor_id=st.just("C-HORSE"),
              commission_bp=st.integers(min_value=0, max_value=10_000)),
)


@st.composite
def cards(draw, *, kind=None, state=None, allow_debt=False):
    return CardView(card_no=CARD.no, issuance=1, uid=CARD.uid, kind=draw(st.sampled_from(["temporary", "member"])) if kind is None else kind,
                    state=state or draw(st.sampled_from(["active", "blocked", "returned"])), card_fee_fen=draw(fen),
                    fen=draw(st.integers(min_value=-MAX_AMOUNT_FEN if allow_debt else 0, max_value=MAX_AMOUNT_FEN)),
                    bonus=draw(fen), points=draw(fen))


def charge(amount_fen: int, message_type=Charge, **extra) -> Charge:
    return message_type(**COMMON, amount_fen=amount_fen, lines=(LineItem(item="鱼饵", qty=1, unit_fen=amount_fen),),
                        pin_sha256=None, **extra)


def totals(decision) -> dict:
    sums = dict.fromkeys(rules.ASSETS, 0)
    for posting in decision.postings:
        assert type(posting.amount) is int and posting.amount != 0, posting
        sums[posting.asset] += posting.amount
    return sums


def on_card(decision, asset: str) -> int:
    return sum(p.amount for p in decision.postings if p.account == CARD.account and p.asset == asset)


def assert_books_rules(decision, card: CardView | None) -> None:
    """What every approved decision must keep: zero per asset, no card below zero unless it is an
    offline sale, and bonus credit never reaching a till or a bank (it is promotional, not money)."""
    if not decision.is_approved:
        assert decision.postings == ()
        return
    assert totals(decision) == dict.fromkeys(rules.ASSETS, 0)
    rules.check_balanced(decision.postings)
    if card is not None and not decision.allow_negative:
        assert card.fen + on_card(decision, "fen") >= min(card.fen, 0)
        assert card.bonus + on_card(decision, "bonus") >= 0
        assert card.points + on_card(decision, "points") >= 0
    for posting in decision.postings:
        if posting.account.startswith("channel:"):
            assert posting.asset == "fen", f"{posting} pays out something that is not money"


@given(card=cards(state="active"), amount_fen=amount, station=stations, bonus_first=st.booleans(),
       points_per_yuan=st.integers(min_value=0, max_value=10))
def test_an_online_charge_balances_never_overdraws_and_pays_the_station_in_full(card, amount_fen, station, bonus_first,
                                                                              points_per_yuan):
    decision = rules.decide_charge(charge(amount_fen), card, station, bonus_first=bonus_first,
                                      points_per_yuan=points_per_yuan)
    if card.fen + card.bonus < amount_fen:
        assert decision.reason is Reason.INSUFFICIENT_FUNDS and decision.postings == ()
        return
    assert decision.is_approved and not decision.allow_negative and decision.amount_fen == amount_fen
    assert_books_rules(decision, card)
    assert -on_card(decision, "fen") - on_card(decision, "bonus") == amount_fen  # the card pays exactly the sale
    paid_to_station = sum(p.amount for p in decision.postings
                          if p.asset == "fen" and p.account.startswith(("revenue:", "contractor:")))
    assert paid_to_station == amount_fen
    spent_bonus = -on_card(decision, "bonus")
    assert 0 <= spent_bonus <= card.bonus
    assert bonus_first or spent_bonus == max(0, amount_fen - card.fen)  # money first, then bonus
    assert bonus_first is False or spent_bonus == min(card.bonus, amount_fen)


@given(card=st.one_of(st.none(), cards(allow_debt=True)), amount_fen=amount, station=stations,
       uid_matches=st.booleans())
def test_an_offline_sale_always_lands_balanced_and_only_it_may_overdraw(card, amount_fen, station, uid_matches):
    request = charge(amount_fen, OfflineCharge, supersedes_seq=None, approved_ms=0)
    if card is not None and not uid_matches:
        card = dataclasses.replace(card, uid="0badcafe")  # the same number on another chip
    decision = rules.decide_offline_charge(request, card, station)
    assert decision.is_approved and decision.allow_negative and decision.amount_fen == amount_fen
    assert_books_rules(decision, card)
    lands_on_card = card is not None and uid_matches and card.state != "returned"
    assert on_card(decision, "fen") == (-amount_fen if lands_on_card else 0)
    assert on_card(decision, "bonus") == 0  # an offline sale never spends promotional credit
    if not lands_on_card:
        assert rules.Posting(rules.OFFLINE_LOSS_ACCOUNT, "fen", -amount_fen) in decision.postings


@given(card=cards(state="active"), amount_fen=amount, channel=channels,
       tiers=st.lists(st.tuples(amount, fen), max_size=4))
def test_a_top_up_balances_and_gives_bonus_only_to_members(card, amount_fen, channel, tiers):
    decision = rules.decide_top_up(TopUp(**COMMON, amount_fen=amount_fen, channel=channel, payment_ref=""), card, tiers)
    assert_books_rules(decision, card)
    assert on_card(decision, "fen") == amount_fen
    assert on_card(decision, "bonus") == (rules.bonus_for(amount_fen, tiers) if card.kind == "member" else 0)
    assert sum(p.amount for p in decision.postings if p.account.startswith("channel:")) == -amount_fen


@given(card=cards(kind="temporary", state="active"), channel=channels, damage=fen)
def test_a_card_return_refunds_balance_and_fee_less_damage_and_never_the_bonus(card, channel, damage):
    request = CardReturn(**COMMON, channel=channel, payment_ref="", damage_fee_fen=damage)
    decision = rules.decide_card_return(request, card)
    if damage > card.card_fee_fen:
        assert decision.reason is Reason.AMOUNT_MISMATCH and decision.postings == ()
        return
    assert_books_rules(decision, card)
    refund = card.fen + card.card_fee_fen - damage
    paid_out = -sum(p.amount for p in decision.postings if p.account.startswith("channel:"))
    # The bonus lapses: whatever the card held in bonus, the visitor gets the same cash back.
    assert paid_out == -refund and decision.amount_fen == refund
    assert (card.fen + on_card(decision, "fen"), card.bonus + on_card(decision, "bonus")) == (0, 0)
    assert card.card_fee_fen == 0 or rules.Posting(rules.CARD_FEE_ACCOUNT, "fen", -card.card_fee_fen) in decision.postings


@given(card=cards(kind="member", state="active"), channel=channels, damage=fen)
def test_a_member_card_is_never_returned_for_cash(card, channel, damage):
    request = CardReturn(**COMMON, channel=channel, payment_ref="", damage_fee_fen=damage)
    assert rules.decide_card_return(request, card).reason is Reason.KIND_NOT_ALLOWED


@given(card=cards(state="active"), amount_fen=amount, station=stations, is_voided=st.booleans(),
       asked_fen=amount, bonus_first=st.booleans())
def test_a_void_undoes_exactly_the_sale_once(card, amount_fen, station, is_voided, asked_fen, bonus_first):
    sale = rules.decide_charge(charge(amount_fen), card, station, bonus_first=bonus_first)
    assume(sale.is_approved)
    original = OriginalSale(txn_id=7, kind="charge", amount_fen=amount_fen, card_account=CARD.account,
                            is_voided=is_voided, postings=sale.postings)
    void = Void(**COMMON, original_seq=1, amount_fen=asked_fen, supervisor_card_no="S0003", pin_sha256="0" * 64)
    decision = rules.decide_void(void, original)
    if is_voided:
        assert decision.reason is Reason.ALREADY_VOIDED
    elif asked_fen != amount_fen:
        assert decision.reason is Reason.AMOUNT_MISMATCH
    else:
        assert decision.voids_txn == 7 and decision.amount_fen == amount_fen
        assert_books_rules(decision, None)
        net = {}
        for posting in sale.postings + decision.postings:
            net[(posting.account, posting.asset)] = net.get((posting.account, posting.asset), 0) + posting.amount
        assert set(net.values()) <= {0}  # sale and void together leave every account as it was
    assert decision.is_approved or decision.postings == ()


@given(card=cards(state="blocked"))
def test_a_replacement_moves_everything_and_leaves_the_lost_card_empty(card):
    decision = rules.decide_transfer(card, "card:M00099/1")
    assert_books_rules(decision, None)
    for asset, held in (("fen", card.fen), ("bonus", card.bonus), ("points", card.points)):
        assert on_card(decision, asset) == -held
        assert sum(p.amount for p in decision.postings if p.account == "card:M00099/1" and p.asset == asset) == held


@given(card=cards(), station=stations, amount_fen=amount)
def test_a_card_that_is_blocked_returned_or_another_issuance_is_never_charged(card, station, amount_fen):
    refusal = rules.check_card(charge(amount_fen), card)
    if card.state == "active":
        assert refusal is None
    else:
        assert refusal.reason in (Reason.CARD_BLOCKED, Reason.CARD_RETURNED) and refusal.postings == ()


# ---------------------------------------------------------------- offline rules at the terminal
policies = st.builds(
    OfflinePolicy,
    max_transaction_fen=st.integers(min_value=1, max_value=50_000),
    max_card_fen=st.integers(min_value=1, max_value=80_000),
    max_terminal_fen=st.integers(min_value=1, max_value=200_000),
    max_count=st.integers(min_value=0, max_value=20),
    max_offline_ms=st.integers(min_value=0, max_value=10_000_000),
    max_reboots=st.integers(min_value=0, max_value=3),
    blocklist_max_age_ms=st.integers(min_value=0, max_value=10_000_000),
    allowed_modes=st.sampled_from(["fixed,count,menu,free", "fixed", "menu,free"]),
)
CARD_KEYS = [("C00001", 1), ("C00002", 1), ("C00003", 2)]
steps = st.lists(st.one_of(
    st.tuples(st.just("sale"), st.sampled_from(CARD_KEYS), st.integers(min_value=1, max_value=60_000),
              st.sampled_from(["fixed", "free", "count"])),
    st.tuples(st.just("clock"), st.integers(min_value=-5_000_000, max_value=5_000_000)),  # a clock set wrong, or time passing
    st.tuples(st.just("reboot")),
), max_size=40)


@given(policy=policies, plan=steps, blocked=st.sets(st.sampled_from(CARD_KEYS)),
       low=st.dictionaries(st.sampled_from(CARD_KEYS), st.integers(min_value=0, max_value=500)),
       blocklist_age_ms=st.integers(min_value=0, max_value=10_000_000))
def test_offline_caps_hold_for_any_sequence_of_sales_clocks_and_reboots(policy, plan, blocked, low, blocklist_age_ms):
    contact_ms = 1_780_000_000_000
    blocklist = BlocklistCopy(version=3, issued_ms=contact_ms - blocklist_age_ms, blocked=set(blocked), low=dict(low))
    window, now_ms = OfflineWindow(), contact_ms
    approved = []
    for step in plan:
        if step[0] == "clock":
            now_ms += step[1]
            continue
        if step[0] == "reboot":
            if window.started_ms is not None:
                window.reboots += 1  # what the terminal's state does when it boots again mid-window
            continue
        _, card_key, amount_fen, mode = step
        refusal = offline.decide(policy, blocklist, window, card_key=card_key, amount_fen=amount_fen, mode=mode,
                                 needs_pin=False, now_ms=now_ms, last_contact_ms=contact_ms, known_balance_fen=None)
        if refusal is None:
            # Each approval is checked against the rules here, written out separately from decide().
            assert mode in policy.allowed_modes.split(",")
            assert card_key not in blocked
            assert amount_fen <= policy.max_transaction_fen
            assert now_ms - contact_ms <= policy.max_offline_ms
            assert now_ms - blocklist.issued_ms <= policy.blocklist_max_age_ms
            assert window.reboots <= policy.max_reboots
            window.add(card_key, amount_fen, now_ms)
            approved.append((card_key, amount_fen))
        else:
            assert refusal in offline.TEXT
    assert len(approved) <= policy.max_count
    assert sum(a for _, a in approved) <= policy.max_terminal_fen
    for card_key in CARD_KEYS:
        on_this_card = sum(a for key, a in approved if key == card_key)
        assert on_this_card <= policy.max_card_fen
        if card_key in low:
            assert on_this_card <= low[card_key]  # a nearly empty card is never sold past its balance
    assert (window.count, window.total_fen) == (len(approved), sum(a for _, a in approved))


@given(policy=policies, amount_fen=st.integers(min_value=1, max_value=60_000))
def test_offline_there_is_no_pin_sale_and_no_sale_without_a_policy_or_a_blocklist(policy, amount_fen):
    fresh = dict(card_key=CARD_KEYS[0], amount_fen=amount_fen, mode="fixed", now_ms=10, last_contact_ms=10,
                 known_balance_fen=None)
    assert offline.decide(None, BlocklistCopy(3, 10), OfflineWindow(), needs_pin=False, **fresh) == offline.NO_POLICY
    assert offline.decide(policy, BlocklistCopy(3, 10), OfflineWindow(), needs_pin=True, **fresh) == offline.PIN_NEEDED
    never_had_one = offline.decide(policy, BlocklistCopy(), OfflineWindow(), needs_pin=False, **fresh)
    assert never_had_one in (offline.BLOCKLIST_EXPIRED, offline.MODE_NOT_ALLOWED)
    never_reached = dict(fresh, last_contact_ms=None)
    assert offline.decide(policy, BlocklistCopy(3, 10), OfflineWindow(), needs_pin=False, **never_reached) in (
        offline.OFFLINE_TOO_LONG, offline.MODE_NOT_ALLOWED)
