"""The park's administration on the ledger (ledger.park_admin), the one path the console and the
command line share: campaigns the top-up and charge rules apply, balance adjustments that need a
second person and book through the decision path, blocks that reach the blocklist, and settings
changes counted so the serving ledger re-publishes the tills' configs."""

from datetime import date, timedelta

import pytest

from ledger.errors import NotFound
from ledger.park_admin import AdjustmentRefused, ParkAdmin
from ledger.rules.campaigns import Campaign, multiplied, multiplier_pct
from ledger.station_settings import SettingRefused, set_item
from ledger.verify import verify_books

from .test_members import MEMBER, Desk, desk  # noqa: F401 - the member desk fixture

NOW_MS = 1_780_000_000_000  # the intake driver's clock


@pytest.fixture
def admin(desk):  # noqa: F811
    return ParkAdmin(desk.ledger.rig.home)


@pytest.fixture
def days(desk):  # noqa: F811
    """Business days around the one the intake driver's clock is in: days(0) is today."""
    today = date.fromisoformat(desk.ledger.store.business_day("P1", NOW_MS))
    return lambda offset: (today + timedelta(days=offset)).isoformat()


# ---------------------------------------------------------------- the pure rule
@pytest.mark.parametrize("day, expected", [
    ("2026-04-30", 100),   # the day before
    ("2026-05-01", 200),   # first day
    ("2026-05-05", 300),   # both run: the larger, never stacked
    ("2026-05-07", 200),   # last day
    ("2026-05-08", 100),   # the day after
])
def test_a_campaign_multiplies_only_on_its_business_days_and_the_largest_wins(day, expected):
    campaigns = (Campaign("may", "五一双倍", "bonus", 200, "2026-05-01", "2026-05-07"),
                 Campaign("may5", "5日三倍", "bonus", 300, "2026-05-05", "2026-05-05"),
                 Campaign("pts", "积分", "points", 500, "2026-04-01", "2026-06-01"),
                 Campaign("old", "已结束", "bonus", 900, "2026-04-01", "2026-06-01", is_ended=True))
    assert multiplier_pct(campaigns, "bonus", day) == expected


def test_multiplied_rounds_down_to_whole_fen():
    assert multiplied(5001, 150) == 7501 and multiplied(1, 150) == 1 and multiplied(0, 1000) == 0


# ---------------------------------------------------------------- campaigns in the ledger's rules
def test_a_top_up_inside_a_bonus_campaign_gets_the_multiplied_bonus_and_outside_does_not(desk, admin, days):  # noqa: F811
    admin.add_campaign("past", "上周双倍", "bonus", 200, days(-8), days(-1))
    before = desk.top_up(50000)  # "top up 500, get 50": no campaign runs today
    assert before.is_approved and before.balances.bonus == 5000
    admin.add_campaign("today", "今日三倍", "bonus", 300, days(0), days(2))
    during = desk.top_up(50000)
    assert during.balances.bonus == 5000 + 15000
    admin.end_campaign("today")
    after = desk.top_up(50000)
    assert after.balances.bonus == 5000 + 15000 + 5000
    assert verify_books(desk.ledger.store).is_ok


def test_a_points_campaign_multiplies_the_points_a_member_earns(desk, admin, days):  # noqa: F811
    desk.top_up(50000)
    assert desk.charge(10000).balances.points == 100  # 1 point per yuan
    admin.add_campaign("pts", "积分翻倍", "points", 200, days(0), days(0))
    assert desk.charge(10000).balances.points == 100 + 200
    assert desk.top_up(50000).balances.bonus == 5000 + 5000  # a points campaign leaves the bonus alone


@pytest.mark.parametrize("change, message", [
    (dict(kind="cash"), "multiplies"),
    (dict(multiplier_pct=100), "multiplier"),
    (dict(multiplier_pct=1001), "multiplier"),
    (dict(first_day="2026-5-1"), "YYYY-MM-DD"),
    (dict(first_day="2026-05-09", last_day="2026-05-01"), "ends on or after"),
    (dict(name=""), "name"),
])
def test_a_campaign_the_rules_could_not_apply_is_refused_and_nothing_is_stored(admin, change, message):
    fields = dict(campaign_id="c1", name="双倍", kind="bonus", multiplier_pct=200, first_day="2026-05-01",
                  last_day="2026-05-07") | change
    with pytest.raises(SettingRefused, match=message):
        admin.add_campaign(**fields)
    assert admin.campaigns() == []


# ---------------------------------------------------------------- balance adjustments
def test_an_adjustment_is_booked_only_when_a_second_person_approves_it_and_verify_passes(desk, admin):  # noqa: F811
    desk.top_up(50000)
    change, number = admin.request_adjustment(MEMBER.no, "fen", 1200, "机器吞卡退款 refund for a jammed ride",
                                              requested_by="finance-a")
    assert change.after["state"] == "pending"
    store = desk.ledger.store
    assert store.card("P1", MEMBER.no).fen == 50000  # nothing booked yet
    with pytest.raises(AdjustmentRefused) as same:
        admin.approve_adjustment(number, approved_by="finance-a")
    assert same.value.code == "SECOND_PERSON_REQUIRED"
    approved = admin.approve_adjustment(number, approved_by="admin-b")
    assert approved.after["state"] == "booked" and approved.after["txn_id"]
    assert store.card("P1", MEMBER.no).fen == 51200
    postings = store.db.execute("SELECT account_id, asset, amount FROM posting WHERE txn_id=? ORDER BY amount",
                                (approved.after["txn_id"],)).fetchall()
    assert postings == [("balance_adjustment", "fen", -1200), (f"card:{MEMBER.no}/1", "fen", 1200)]
    assert verify_books(store).is_ok
    with pytest.raises(AdjustmentRefused):
        admin.approve_adjustment(number, approved_by="admin-c")  # booked once


def test_an_adjustment_taking_off_more_than_the_card_holds_is_refused_when_asked_and_when_approved(desk, admin):  # noqa: F811
    desk.top_up(50000)
    with pytest.raises(AdjustmentRefused) as refused:
        admin.request_adjustment(MEMBER.no, "bonus", -5001, "多给的赠送", requested_by="a")
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    _, number = admin.request_adjustment(MEMBER.no, "fen", -30000, "重复充值冲回", requested_by="a")
    desk.charge(30000, pin="246810")  # spent meanwhile
    with pytest.raises(AdjustmentRefused):
        admin.approve_adjustment(number, approved_by="b")
    assert admin.adjustment(number).state == "pending" and verify_books(desk.ledger.store).is_ok


def test_verify_finds_an_adjustment_transaction_without_its_approved_request(desk, admin):  # noqa: F811
    desk.top_up(50000)
    _, number = admin.request_adjustment(MEMBER.no, "points", 40, "活动补积分", requested_by="a")
    admin.approve_adjustment(number, approved_by="b")
    store = desk.ledger.store
    with store.batch():  # a forged second transaction under another seq, with no request behind it
        from ledger.store import NewTxn
        from ledger.rules.decision import Posting

        store.book(NewTxn("P1", "balance_adjustment", "P1:adjustment", 999, "x", "", f"card:{MEMBER.no}/1", 0,
                          NOW_MS, NOW_MS, False), (Posting(f"card:{MEMBER.no}/1", "points", 7),
                                                   Posting("points_issued", "points", -7)))
    problems = verify_books(store).problems
    assert any("balance adjustment that no approved adjustment" in p for p in problems)


# ---------------------------------------------------------------- cards, stations, staff
def test_blocking_and_unblocking_a_card_are_blocklist_changes_and_an_overdrawn_card_is_not_unblocked(desk, admin):  # noqa: F811
    store = desk.ledger.store
    version = store.blocklist_version("P1")
    admin.block_card(MEMBER.no)
    assert store.card("P1", MEMBER.no).state == "blocked" and store.blocklist_version("P1") == version + 1
    assert not desk.charge(100).is_approved
    admin.unblock_card(MEMBER.no)
    assert store.card("P1", MEMBER.no).state == "active" and store.blocklist_version("P1") == version + 2
    with store.batch():
        store.block_card("P1", MEMBER.no, 1, "OFFLINE_OVERDRAFT", NOW_MS)
    with pytest.raises(SettingRefused, match="top-up"):
        admin.unblock_card(MEMBER.no)
    with pytest.raises(NotFound):
        admin.block_card("NO-SUCH")


def test_settings_changes_are_counted_so_the_serving_ledger_republishes_the_configs(desk, admin):  # noqa: F811
    store = desk.ledger.store
    count = store.config_change_version("P1")
    change = admin.set_station("riding", name="骑马场 Riding", contractor_id="C-HORSE", commission_bp=2000)
    assert change.before["commission_bp"] == 1500 and change.after["commission_bp"] == 2000
    admin.change_station_sales("fishing", lambda now: now, "station.same")
    assert store.config_change_version("P1") == count + 2
    with pytest.raises(SettingRefused, match="contractor"):
        admin.set_station("fishing", name="钓鱼", contractor_id="", commission_bp=500)
    with pytest.raises(NotFound):
        admin.change_station_sales("fishing", lambda now: set_item(now, "fishing", "nothing", price_fen=1), "x")


def test_the_offline_policy_is_checked_as_the_tills_check_it_counted_and_sent_in_the_signed_config(desk, admin):  # noqa: F811
    from ledger import broadcasts
    from protocol import envelope
    from protocol.messages import BROADCAST_TYPES, parse

    store = desk.ledger.store
    count = store.config_change_version("P1")
    change = admin.set_offline_policy(max_card_fen=50_000, max_count=300)
    assert (change.before["max_card_fen"], change.after["max_card_fen"], change.after["max_count"]) == (30_000, 50_000, 300)
    assert store.config_change_version("P1") == count + 1
    with store.batch():
        _, payload = broadcasts.config_payload(store, desk.ledger.rig.home.ledger_keys(), "P1", "T-FISH-1", NOW_MS)
    config = parse(envelope.split(payload).body, BROADCAST_TYPES)
    assert (config.offline.max_card_fen, config.offline.max_count) == (50_000, 300)
    for bad in (dict(max_transaction_fen=60_000), dict(max_count=-1), dict(max_weeks=1)):
        with pytest.raises(SettingRefused):
            admin.set_offline_policy(**bad)
    assert store.config_change_version("P1") == count + 1 and admin.offline_policy()["max_card_fen"] == 50_000


def test_a_staff_pin_reset_unlocks_the_login_and_the_audit_facts_carry_no_pin(desk, admin):  # noqa: F811
    store = desk.ledger.store
    with store.batch():
        store.set_wrong_pins("P1", "wang", 3)
    change = admin.reset_staff_pin("wang", "8642")
    assert change.before["wrong_pins"] == 3 and change.after["wrong_pins"] == 0
    assert "8642" not in repr(change) and "pin_hash" not in repr(change)
    from ledger.pins import hash_pin  # noqa: F401 - the ledger's own check below
    staff = store.staff_by_card("P1", "S0001")
    assert staff.pin_hash not in repr(change)
    with pytest.raises(Exception, match="PIN"):
        admin.reset_staff_pin("wang", "12")


# ---------------------------------------------------------------- the command line takes the same path
def test_the_command_lines_changes_take_the_same_path_are_audited_and_one_login_cannot_approve_its_own(desk, capsys):  # noqa: F811
    from backoffice.accounts import ConsoleStore
    from tools.cli import main

    home = desk.ledger.rig.home.home
    desk.top_up(50000)
    run = lambda *words: main(["--home", str(home), *words])  # noqa: E731
    assert run("campaign", "add", "--campaign", "c1", "--name", "双倍", "--kind", "bonus", "--multiplier-pct", "200",
               "--from", "2020-01-01", "--to", "2020-01-02") == 0
    assert run("card", "adjust", "--card", MEMBER.no, "--asset", "points", "--amount", "25", "--reason", "补积分") == 0
    number = int(capsys.readouterr().out.split("adjustment A")[1].split()[0])
    assert run("card", "approve", "--adjustment", str(number)) == 2  # the same login asked for it
    assert "SECOND_PERSON_REQUIRED" in capsys.readouterr().err
    assert desk.ledger.store.card("P1", MEMBER.no).points == 0
    assert run("card", "block", "--card", MEMBER.no) == 0 and desk.ledger.store.card("P1", MEMBER.no).state == "blocked"
    actions = [row[3] for row in ConsoleStore.in_home(home).audit_entries()]
    assert actions[:3] == ["card.block", "adjustment.request", "campaign.add"] and all(
        row[2].startswith("cli:") for row in ConsoleStore.in_home(home).audit_entries()[:3])
    # The older station and staff commands are recorded the same way, with before and after.
    assert run("station", "mode", "--station", "bbq", "--mode", "fixed") == 2  # no priced item yet: refused
    assert run("station", "menu", "add", "--station", "bbq", "--item", "skewer", "--name", "羊肉串", "--price-fen", "500") == 0
    assert run("staff", "set", "--staff", "wang", "--role", "supervisor") == 0
    (_, _, _, staff_action, staff_target, before, after, _), (_, _, _, menu_action, *_) = \
        ConsoleStore.in_home(home).audit_entries()[:2]
    assert (staff_action, staff_target, menu_action) == ("staff.set", "wang", "station.menu_add")
    assert '"role": "cashier"' in before and '"role": "supervisor"' in after
