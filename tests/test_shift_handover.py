"""交班 and 日结 at the ledger (issue 14 item 5): a shift handed over with a blind cash count gets its
slip, which is the shift's totals in the books; a count that differs is booked to cash_over_short
and the books still balance; a closed business day sends every later booking to the next day."""

import pytest

from host_sim.rig import STAFF, card, single_line
from ledger.days import DayAlreadyClosed, DayNotBegun, ShiftsStillOpen
from ledger.rules.staff import CASH_OVER_SHORT_ACCOUNT
from ledger.shift_totals import read_shift_totals
from ledger.verify import verify_books
from protocol import envelope, topics
from protocol.messages import (CardIssue, CardReturn, Charge, OfflineCharge, ShiftHandover, ShiftOpen, ShiftSlip, TopUp,
                               Void)
from protocol.pin import seal_pin

# 2026-05-29 04:26:40 in Shanghai: business day 2026-05-29 (the day runs from 04:00 to 04:00).
NOON_MS = 1_780_000_000_000
DAY = "2026-05-29"
WANG, LI, ZHAO = STAFF
VISITORS = [card(f"C0010{n}") for n in range(4)]


def staff_card(member):
    return card(member[3])


def sealed(ledger, terminal_id, message_type, *, card_ref, operator, pin=None, supervisor_pin=None, **extra):
    """A request signed as ``terminal_id`` would sign it, PINs sealed to the ledger."""
    fields = ledger.fields(terminal_id, card_ref) | {"operator": operator}
    attachment = b""
    if pin is not None or supervisor_pin is not None:
        attachment, extra["pin_sha256"] = seal_pin(pin, terminal=terminal_id, seq=fields["seq"],
                                                   ledger_pin_key=ledger.rig.identity(terminal_id).pin_key,
                                                   supervisor_pin=supervisor_pin)
    identity = ledger.rig.identity(terminal_id)
    topic = topics.request(identity.park_id, terminal_id)
    body = message_type(**fields, **extra).to_bytes()
    return ledger.send(topic, envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                            purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment))


def log_in(ledger, terminal_id, member):
    result = sealed(ledger, terminal_id, ShiftOpen, card_ref=staff_card(member), operator=member[0], pin=member[4],
                    pin_sha256="0" * 64)
    assert result.is_approved, result


def hand_over(ledger, terminal_id, member, counted_fen):
    return sealed(ledger, terminal_id, ShiftHandover, card_ref=staff_card(member), operator=member[0],
                  counted_fen=counted_fen)


def desk_day(ledger):
    """Li's shift at the desk: three cards issued (two for cash), a cash top-up, one card returned
    for cash. The drawer should hold 20+100 + 20+50 + 30 - (20+100) = 100.00 in cash."""
    log_in(ledger, "T-DESK-1", LI)
    for visitor, opening, channel in ((VISITORS[0], 10000, "cash"), (VISITORS[1], 5000, "cash"),
                                      (VISITORS[2], 8000, "wechat")):
        assert sealed(ledger, "T-DESK-1", CardIssue, card_ref=visitor, operator="li", card_kind="temporary",
                      card_fee_fen=2000, opening_fen=opening, channel=channel, payment_ref="").is_approved
    assert sealed(ledger, "T-DESK-1", TopUp, card_ref=VISITORS[1], operator="li", amount_fen=3000, channel="cash",
                  payment_ref="").is_approved
    assert sealed(ledger, "T-DESK-1", CardReturn, card_ref=VISITORS[0], operator="li", channel="cash",
                  payment_ref="", damage_fee_fen=0).is_approved


def balance(ledger, account):
    return ledger.store.db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id=? AND asset='fen'",
                                   (account,)).fetchone()[0]


def test_a_desk_shift_short_by_five_yuan_is_booked_to_cash_over_short_and_its_slip_is_the_books(ledger):
    ledger.store.set_requires_shift("P1", True)
    desk_day(ledger)
    cash_before = balance(ledger, "channel:cash")
    slip = hand_over(ledger, "T-DESK-1", LI, 9500)
    assert isinstance(slip, ShiftSlip)
    assert (slip.cash_expected_fen, slip.cash_counted_fen, slip.cash_over_short_fen) == (10000, 9500, -500)
    assert (slip.staff, slip.business_day) == ("li", DAY)
    # The short 5.00 leaves the drawer's account and lands on cash_over_short: the drawer's account
    # now says what was really there, and the books balance.
    assert balance(ledger, CASH_OVER_SHORT_ACCOUNT) == -500
    assert balance(ledger, "channel:cash") == cash_before + 500
    assert verify_books(ledger.store).is_ok
    # The slip is the shift's totals as the books hold them, kind by kind and tender by tender.
    shift = ledger.store.db.execute(
        "SELECT open_seq, close_seq, closed_how, cash_expected_fen, cash_counted_fen, close_txn FROM shift "
        "WHERE terminal_id='T-DESK-1'").fetchone()
    assert shift[2:5] == ("handover", 10000, 9500)
    books = read_shift_totals(ledger.store.db, "P1", "T-DESK-1", shift[0], shift[1])
    assert [(line.name, line.count, line.fen) for line in slip.kinds] == list(books.kinds) == [
        ("card_issue", 3, 2000 + 10000 + 2000 + 5000 + 2000 + 8000), ("top_up", 1, 3000), ("card_return", 1, 12000)]
    assert [(line.name, line.count, line.fen) for line in slip.tenders] == list(books.tenders) == [
        ("cash", 4, 10000), ("wechat", 1, 10000)]
    assert (slip.refunds_count, slip.refunds_fen) == (1, 12000)
    # The till is logged out: the next request needs a login again.
    assert ledger.store.open_shift_staff("T-DESK-1") is None


def test_a_count_that_matches_books_nothing_and_an_over_count_books_the_surplus(ledger):
    desk_day(ledger)
    slip = hand_over(ledger, "T-DESK-1", LI, 10000)
    assert slip.cash_over_short_fen == 0 and balance(ledger, CASH_OVER_SHORT_ACCOUNT) == 0
    log_in(ledger, "T-DESK-1", LI)
    assert sealed(ledger, "T-DESK-1", TopUp, card_ref=VISITORS[1], operator="li", amount_fen=2000, channel="cash",
                  payment_ref="").is_approved
    slip = hand_over(ledger, "T-DESK-1", LI, 2050)  # a new shift: only its own 20.00 is expected
    assert (slip.cash_expected_fen, slip.cash_over_short_fen) == (2000, 50)
    assert balance(ledger, CASH_OVER_SHORT_ACCOUNT) == 50
    assert verify_books(ledger.store).is_ok


def test_a_station_shift_hands_over_without_a_count_and_its_slip_shows_sales_voids_and_card_tender(ledger):
    ledger.issue(opening_fen=20000, card_ref=VISITORS[3])
    log_in(ledger, "T-FISH-1", WANG)
    charges = [sealed(ledger, "T-FISH-1", Charge, card_ref=VISITORS[3], operator="wang", amount_fen=amount,
                      lines=single_line("鱼饵", amount)) for amount in (1500, 3000)]
    assert all(result.is_approved for result in charges)
    assert sealed(ledger, "T-FISH-1", Void, card_ref=VISITORS[3], operator="wang", original_seq=charges[0].seq,
                  amount_fen=1500, supervisor_card_no=ZHAO[3], supervisor_pin=ZHAO[4]).is_approved
    slip = hand_over(ledger, "T-FISH-1", WANG, None)
    assert [(line.name, line.count, line.fen) for line in slip.kinds] == [("charge", 2, 4500)]
    assert [(line.name, line.count, line.fen) for line in slip.tenders] == [("card", 3, 3000)]  # 45.00 less 15.00 voided
    assert (slip.voids_count, slip.voids_fen) == (1, 1500)
    assert (slip.cash_expected_fen, slip.cash_counted_fen, slip.cash_over_short_fen) == (0, None, None)
    assert verify_books(ledger.store).is_ok


def test_a_handover_with_no_shift_open_is_declined_and_books_nothing(ledger):
    postings = ledger.postings()
    result = hand_over(ledger, "T-DESK-1", LI, 100)
    assert (result.outcome, result.reason) == ("declined", "UNKNOWN_STAFF")
    assert ledger.postings() == postings and verify_books(ledger.store).is_ok


def test_a_sale_after_the_day_is_closed_lands_on_the_next_day_and_says_where_it_belonged(ledger):
    ledger.issue(opening_fen=20000, card_ref=VISITORS[3])
    on_the_day = ledger.store.db.execute("SELECT txn_id FROM txn WHERE business_day=?", (DAY,)).fetchall()
    ledger.store.close_business_day("P1", DAY, NOON_MS, "finance")
    late = sealed(ledger, "T-FISH-1", OfflineCharge, card_ref=VISITORS[3], operator="wang", amount_fen=700,
                  lines=single_line("鱼饵", 700), pin_sha256=None, supersedes_seq=None, approved_ms=NOON_MS - 3_600_000)
    assert late.is_approved
    day, closed_day = ledger.store.db.execute(
        "SELECT t.business_day, b.closed_day FROM txn t JOIN booked_late b USING (txn_id) WHERE t.txn_id=?",
        (late.txn,)).fetchone()
    assert (day, closed_day) == ("2026-05-30", DAY)
    # What was booked before the close stays on its day; nothing else moved.
    assert ledger.store.db.execute("SELECT txn_id FROM txn WHERE business_day=?", (DAY,)).fetchall() == on_the_day
    assert ledger.store.db.execute("SELECT COUNT(*) FROM booked_late").fetchone()[0] == 1
    assert verify_books(ledger.store).is_ok


def test_a_closed_day_stays_closed_and_a_day_not_begun_cannot_be_closed(ledger):
    ledger.store.close_business_day("P1", DAY, NOON_MS, "finance")
    with pytest.raises(DayAlreadyClosed, match=f"{DAY} was closed at 2026-05-29 04:26 by finance"):
        ledger.store.close_business_day("P1", DAY, NOON_MS + 60_000, "admin")
    with pytest.raises(DayNotBegun, match="2026-05-30 has not begun"):
        ledger.store.close_business_day("P1", "2026-05-30", NOON_MS, "finance")
    with pytest.raises(Exception, match="stays closed"):  # not even by hand: the row cannot change
        ledger.store.db.execute("DELETE FROM business_day_close")


def test_closing_a_day_with_a_shift_open_is_refused_with_the_list_unless_forced_which_ends_it_uncounted(ledger):
    log_in(ledger, "T-DESK-1", LI)
    with pytest.raises(ShiftsStillOpen, match=r"1 shift is still open: T-DESK-1 \(li\)") as refused:
        ledger.store.close_business_day("P1", DAY, NOON_MS, "finance")
    assert [shift[:2] for shift in refused.value.shifts] == [("T-DESK-1", "li")]
    assert ledger.store.day_close("P1", DAY) is None  # nothing changed
    ended = ledger.store.close_business_day("P1", DAY, NOON_MS, "finance", force=True)
    assert [shift[:2] for shift in ended] == [("T-DESK-1", "li")]
    assert ledger.store.open_shift_staff("T-DESK-1") is None
    how, counted = ledger.store.db.execute("SELECT closed_how, cash_counted_fen FROM shift").fetchone()
    assert (how, counted) == ("day_close", None)
    assert ledger.store.day_close("P1", DAY)[1:] == ("finance", 1)


def test_report_shifts_shows_expected_counted_and_over_short_and_close_day_runs_once(ledger, capsys):
    from tools.cli import main

    home = str(ledger.rig.home.home)
    desk_day(ledger)
    hand_over(ledger, "T-DESK-1", LI, 9500)
    log_in(ledger, "T-FISH-1", WANG)
    assert main(["--home", home, "report", "shifts", "--day", DAY, "--format", "csv"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    desk = next(row for row in rows if row[0] == "T-DESK-1")
    # terminal, station, staff, opened, closed, ended by, transactions, expected, counted, over/short, arrived after
    assert (desk[2], desk[5], desk[6], desk[7], desk[8], desk[9], desk[10]) == (
        "li", "handover 交班", "5", "100.00", "95.00", "-5.00", "0")
    fishing = next(row for row in rows if row[0] == "T-FISH-1")
    assert fishing[5] == "open 当班" and fishing[7:10] == ["", "", ""]

    assert main(["--home", home, "ledger", "close-day", DAY, "--by", "finance"]) == 1
    refused = capsys.readouterr().err
    assert "1 shift is still open" in refused and "T-FISH-1  wang  since 2026-05-29 04:26" in refused
    assert main(["--home", home, "ledger", "close-day", DAY, "--by", "finance", "--force"]) == 0
    assert "ended uncounted: T-FISH-1  wang" in capsys.readouterr().out
    assert main(["--home", home, "ledger", "close-day", DAY]) == 1
    assert f"business day {DAY} was closed at" in capsys.readouterr().err
    assert main(["--home", home, "report", "shifts", "--day", DAY]) == 0
    text = capsys.readouterr().out
    assert "finance" in text and "day close 日结强制" in text


def test_the_takings_report_says_which_of_its_transactions_arrived_after_a_day_was_closed(ledger):
    from ledger.reports.catalog import make_scope, run_report

    ledger.store.close_business_day("P1", DAY, NOON_MS, "finance")
    ledger.issue(opening_fen=20000, card_ref=VISITORS[3])
    report = run_report(ledger.store.db, "takings", make_scope(ledger.store.db, day="2026-05-30"), by="channel")
    assert "1 transactions (220.00) arrived after business day 2026-05-29 was closed (日结) and are booked on " \
           "2026-05-30" in report.notes
    before = run_report(ledger.store.db, "takings", make_scope(ledger.store.db, day=DAY), by="channel")
    assert not any("arrived after" in note for note in before.notes)


def test_a_ledger_from_before_the_handover_upgrades_its_terminals_and_keeps_its_shifts_in_the_report(tmp_path):
    import sqlite3

    from ledger.reports.catalog import make_scope, run_report
    from ledger.schema import MIGRATIONS
    from ledger.store import Store

    before = next(index for index, script in enumerate(MIGRATIONS) if "shift_handover" in script)
    path = tmp_path / "old.db"
    old = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:before], start=1):
        old.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    old.execute("INSERT INTO park (park_id, name) VALUES ('P1', 'old park')")
    for terminal_id, kinds in (("T-DESK-1", "card_issue,hello,shift_close,shift_open,top_up"),
                               ("TAP-1", "charge,hello,offline_charge")):
        old.execute("INSERT INTO terminal VALUES (?, 'P1', 'desk', ?, NULL, 'h', 0)", (terminal_id, kinds))
    old.execute("INSERT INTO shift (park_id, terminal_id, staff_id, open_seq, opened_ms, close_seq, closed_ms) "
                "VALUES ('P1', 'T-DESK-1', 'li', 1, ?, 5, ?)", (NOON_MS, NOON_MS + 60_000))
    old.close()
    store = Store(path)
    try:
        assert "shift_handover" in store.terminal("T-DESK-1").allowed_kinds
        assert "shift_handover" not in store.terminal("TAP-1").allowed_kinds  # no one logs in on a tap
        report = run_report(store.db, "shifts", make_scope(store.db, day=DAY))
        (row,) = report.tables[0].rows
        assert row[:3] == ("T-DESK-1", "desk", "li") and row[5] == "closed 签退" and row[7:10] == (None, None, None)
    finally:
        store.close()


def test_verify_finds_a_shift_whose_recorded_count_is_not_what_its_handover_booked(ledger):
    desk_day(ledger)
    hand_over(ledger, "T-DESK-1", LI, 9500)
    assert verify_books(ledger.store).is_ok
    # The shift row is no posting (it is updated when the shift closes): a count changed afterwards
    # no longer agrees with the over/short its handover booked, and verify says so.
    ledger.store.db.execute("UPDATE shift SET cash_counted_fen = 9000 WHERE terminal_id = 'T-DESK-1'")
    (problem,) = verify_books(ledger.store).problems
    assert "counted 9000 fen with 10000 expected, but its handover booked -500 to cash_over_short" in problem


def test_an_offline_sale_of_the_shift_uploaded_after_its_handover_is_counted_as_arrived_after(ledger):
    from ledger.reports.catalog import make_scope, run_report

    ledger.issue(opening_fen=20000, card_ref=VISITORS[3])
    log_in(ledger, "T-FISH-1", WANG)
    assert sealed(ledger, "T-FISH-1", Charge, card_ref=VISITORS[3], operator="wang", amount_fen=1500,
                  lines=single_line("鱼饵", 1500)).is_approved
    queued = ledger.fields("T-FISH-1", VISITORS[3]) | {"operator": "wang"}  # sold offline, still in the till's queue
    slip = hand_over(ledger, "T-FISH-1", WANG, None)
    assert [(line.name, line.count) for line in slip.kinds] == [("charge", 1)]
    late = OfflineCharge(**queued, amount_fen=700, lines=single_line("鱼饵", 700), pin_sha256=None, supersedes_seq=None,
                         approved_ms=NOON_MS)
    assert ledger.send(*ledger.sign("T-FISH-1", late.to_bytes())).is_approved
    report = run_report(ledger.store.db, "shifts", make_scope(ledger.store.db, day=DAY))
    (row,) = [row for row in report.tables[0].rows if row[0] == "T-FISH-1"]
    assert (row[6], row[10]) == (1, 1)  # the slip's one sale, and the offline one that came after it
