"""The front desk's temporary cards: issue, spend, return with refund, reissue; card-type limits;
and card records no terminal can mint."""

import pytest

from host_sim.rig import ParkRig, card, single_line
from ledger.store import CardLimits
from ledger.verify import verify_books
from protocol.card_record import CardRecord, CardRecordError, read_record, sign_record
from protocol.envelope import Purpose
from protocol.messages import CardIssue, CardReturn, Charge, TopUp

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

VISITOR = card("T00001")


@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    ledger = Ledger(rig)
    yield ledger
    rig.close()
    ledger.store.close()


def issue(ledger, card_ref=VISITOR, fee_fen=2000, opening_fen=10000):
    return ledger.request("T-DESK-1", CardIssue, card_ref=card_ref, card_kind="temporary", card_fee_fen=fee_fen,
                          opening_fen=opening_fen, channel="wechat", payment_ref="wx-1")


def charge(ledger, amount_fen, card_ref=VISITOR):
    return ledger.request("T-FISH-1", Charge, card_ref=card_ref, amount_fen=amount_fen,
                          lines=single_line("钓鱼 Fishing", amount_fen))


def test_a_temporary_card_issued_charged_returned_and_reissued(ledger):
    assert issue(ledger).balances.fen == 10000                      # 20.00 fee + 100.00
    assert charge(ledger, 3000).balances.fen == 7000                # 30.00 at fishing
    returned = ledger.request("T-DESK-1", CardReturn, card_ref=VISITOR, channel="alipay", payment_ref="ali-r",
                              damage_fee_fen=0)
    assert returned.is_approved
    refund = ledger.store.db.execute("SELECT amount FROM posting WHERE txn_id=? AND account_id='channel:alipay'",
                                     (returned.txn,)).fetchone()[0]
    assert refund == 9000                                           # 90.00 back, by the channel chosen
    again = card(VISITOR.no, issuance=2, uid=VISITOR.uid)
    assert issue(ledger, again, opening_fen=5000).balances.fen == 5000  # the same card, the next visitor
    assert verify_books(ledger.store).is_ok


def test_a_damaged_card_keeps_its_damage_fee_and_never_more_than_the_deposit(ledger):
    # A park whose damage fee is above the card fee: the card's own deposit still caps it.
    ledger.store.set_park_fees("P1", card_fee_fen=2000, damage_fee_fen=2500)
    issue(ledger)
    too_much = ledger.request("T-DESK-1", CardReturn, card_ref=VISITOR, channel="cash", payment_ref="", damage_fee_fen=2500)
    assert too_much.reason == "AMOUNT_MISMATCH"
    returned = ledger.request("T-DESK-1", CardReturn, card_ref=VISITOR, channel="cash", payment_ref="", damage_fee_fen=1500)
    assert returned.is_approved
    rows = dict(ledger.store.db.execute("SELECT account_id, amount FROM posting WHERE txn_id=?", (returned.txn,)).fetchall())
    assert rows["channel:cash"] == 10500 and rows["revenue:card_damage"] == 1500
    assert verify_books(ledger.store).is_ok


def test_card_type_limits_cap_balance_top_ups_and_daily_spend(ledger):
    ledger.store.set_card_limits("P1", "temporary", CardLimits(max_balance_fen=20000, min_topup_fen=1000,
                                                               max_topup_fen=15000, daily_spend_fen=6000))
    assert issue(ledger, opening_fen=25000).reason == "OVER_BALANCE_LIMIT"
    issue(ledger, opening_fen=10000)
    top_up = lambda fen: ledger.request("T-DESK-1", TopUp, card_ref=VISITOR, amount_fen=fen,  # noqa: E731
                                        channel="cash", payment_ref="")
    assert top_up(500).reason == "TOP_UP_OUT_OF_RANGE"
    assert top_up(12000).reason == "OVER_BALANCE_LIMIT"     # 100 + 120 > 200
    assert top_up(10000).is_approved
    assert charge(ledger, 5000).is_approved
    assert charge(ledger, 2000).reason == "OVER_DAILY_LIMIT"  # 50 + 20 > 60 today
    assert charge(ledger, 1000).is_approved


def test_no_key_on_a_terminal_can_make_a_card_record_a_terminal_accepts(ledger):
    rig = ledger.rig
    identity = rig.identity("T-DESK-1")
    record_key = identity.ledger_key(Purpose.CARD_RECORD.value)[1]
    uid = bytes.fromhex(VISITOR.uid)
    forged = sign_record(CardRecord(VISITOR.no, 1, "member", "P1"), uid, identity.signing_key)  # the terminal's own key
    with pytest.raises(CardRecordError):
        read_record(forged, uid, record_key, "P1")
    bundle = rig.home.bundle_path("T-DESK-1").read_text()
    ledger_seed = rig.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key.encode().hex()
    assert ledger_seed not in bundle  # the bundle holds the ledger's public keys only
    genuine = sign_record(CardRecord(VISITOR.no, 1, "temporary", "P1"), uid,
                          rig.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key)
    assert read_record(genuine, uid, record_key, "P1").card_no == VISITOR.no
    with pytest.raises(CardRecordError):
        read_record(genuine, bytes.fromhex("0badcafe"), record_key, "P1")  # copied onto another UID


def test_reports_are_for_supervisors_on_terminals_allowed_to_ask(ledger):
    from host_sim.rig import STAFF
    from protocol.messages import StationReport
    from ledger.park_home import STATION_KINDS

    rig = ledger.rig
    rig.home.provision_terminal("T-OFFICE-1", "fishing", kinds=STATION_KINDS["supervisor"])
    ledger.intake._reload_keys()
    issue(ledger)
    charge(ledger, 3000)
    charge(ledger, 1500)
    day = ledger.store.db.execute("SELECT business_day FROM txn WHERE kind='charge' LIMIT 1").fetchone()[0]
    wang, li, zhao = (card(member[3]) for member in STAFF)

    def ask(terminal_id, staff_card, staff_id):
        fields = ledger.fields(terminal_id, staff_card)
        fields["operator"] = staff_id
        return ledger.send(*ledger.sign(terminal_id, StationReport(**fields, station="fishing", business_day=day).to_bytes()))

    desk = ask("T-DESK-1", li, "li")
    assert (desk.outcome, desk.reason) == ("refused", "KIND_NOT_ALLOWED")  # the front desk cannot even ask
    assert ask("T-OFFICE-1", wang, "wang").reason == "ROLE_NOT_ALLOWED"  # a cashier, on a terminal that may
    report = ask("T-OFFICE-1", zhao, "zhao")
    assert (report.sales_count, report.sales_fen, report.station, report.business_day) == (2, 4500, "fishing", day)


def test_the_desk_gets_a_card_record_signed_for_the_cards_uid_to_write(ledger):
    result = issue(ledger)
    record_key = ledger.rig.identity("T-FISH-1").ledger_key(Purpose.CARD_RECORD.value)[1]
    record = read_record(bytes.fromhex(result.card_record), bytes.fromhex(VISITOR.uid), record_key, "P1")
    assert (record.card_no, record.issuance, record.kind) == (VISITOR.no, 1, "temporary")
    assert charge(ledger, 1000).card_record is None  # only new cards get one


def test_a_desk_provisioned_before_member_lookup_existed_gets_it_when_the_ledger_upgrades(tmp_path):
    import sqlite3

    from ledger.schema import MIGRATIONS
    from ledger.store import Store

    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:8], start=1):  # the schema before member_lookup
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    old.execute("INSERT INTO park (park_id, name) VALUES ('P1', 'old park')")
    old.execute("INSERT INTO terminal VALUES ('T-DESK-1', 'P1', 'desk', 'card_issue,loss_report,top_up', NULL, 'h', 0)")
    old.execute("INSERT INTO terminal VALUES ('T-FISH-1', 'P1', 'fishing', 'charge,offline_charge,void', NULL, 'h', 0)")
    old.close()
    store = Store(path)
    try:
        assert "member_lookup" in store.terminal("T-DESK-1").allowed_kinds
        assert "member_lookup" not in store.terminal("T-FISH-1").allowed_kinds  # stations still cannot look
    finally:
        store.close()


def test_a_card_issued_with_another_fee_than_the_parks_is_declined_and_nothing_is_booked(ledger):
    # The park's card fee is 20.00; a desk whose own config still says 15.00 must not book that.
    declined = issue(ledger, fee_fen=1500)
    assert declined.reason == "AMOUNT_MISMATCH" and not declined.is_approved
    assert ledger.store.db.execute("SELECT COUNT(*) FROM card").fetchone()[0] == 0
    assert issue(ledger, fee_fen=2000).is_approved


def test_a_desk_may_keep_at_most_the_parks_damage_fee(ledger):
    ledger.store.set_park_fees("P1", card_fee_fen=2000, damage_fee_fen=1000)
    issue(ledger)
    greedy = ledger.request("T-DESK-1", CardReturn, card_ref=VISITOR, channel="cash", payment_ref="", damage_fee_fen=1500)
    assert greedy.reason == "AMOUNT_MISMATCH"
    returned = ledger.request("T-DESK-1", CardReturn, card_ref=VISITOR, channel="cash", payment_ref="", damage_fee_fen=1000)
    assert returned.is_approved and returned.amount_fen == 10000 + 2000 - 1000


def test_the_ledgers_park_rules_are_the_parks_card_fee_member_no_pin_limit_and_damage_fee(ledger):
    ledger.store.set_member_settings("P1", no_pin_limit_fen=5000)
    ledger.store.set_park_fees("P1", card_fee_fen=3000, damage_fee_fen=800)
    rules = ledger.store.park_rules("P1")
    assert (rules.no_pin_limit_fen, rules.card_fee_fen, rules.damage_fee_fen) == (5000, 3000, 800)
