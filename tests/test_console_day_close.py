"""The console's day-end close (日结) over HTTP: finance and admins only, CSRF-checked, refused with
the list of open shifts unless they are ended, through the ledger's own close (the one the command
line calls), written to the audit log, and never twice."""

import json

from fastapi.testclient import TestClient

from backoffice.accounts import ConsoleStore
from backoffice.app import create_app

from .helpers.park_day import PASSWORD
from .test_console_security import csrf_of, log_in
from .test_shift_handover import DAY, LI, log_in as log_in_at_till

USERS = {"finance": ("finance", ()), "desk": ("front_desk", ()), "fish-sup": ("station_supervisor", ("fishing",)),
         "tech": ("technician", ())}


def console(ledger):
    home = ledger.rig.home.home
    accounts = ConsoleStore.in_home(home)
    for username, (role, stations) in USERS.items():
        accounts.add_user(username, username, role, PASSWORD, stations=stations, actor="test")
    return create_app(home), accounts


def test_finance_closes_a_day_with_the_button_only_after_ending_the_open_shift_and_never_twice(ledger):
    log_in_at_till(ledger, "T-DESK-1", LI)
    app, accounts = console(ledger)
    for username in ("desk", "fish-sup", "tech"):
        client = log_in(app, username)
        assert client.get("/day-close").status_code == 403, username
        assert client.post("/day-close", data={"csrf": csrf_of(client), "day": DAY}).status_code == 403, username
    finance = log_in(app, "finance")
    page = finance.get("/day-close")
    assert page.status_code == 200 and "T-DESK-1" in page.text and "nav-day-close" in page.text
    assert finance.post("/day-close", data={"csrf": "wrong", "day": DAY}).status_code == 403
    refused = finance.post("/day-close", data={"csrf": csrf_of(finance), "day": DAY})
    assert refused.status_code == 409 and "1 shift is still open: T-DESK-1 (li)" in refused.text
    assert ledger.store.day_close("P1", DAY) is None
    bad = finance.post("/day-close", data={"csrf": csrf_of(finance), "day": "2026-13-01"})
    assert bad.status_code == 400 and "must be a date like 2026-05-01" in bad.text
    done = finance.post("/day-close", data={"csrf": csrf_of(finance), "day": DAY, "force": "yes"})
    assert done.status_code == 303 and done.headers["location"] == f"/day-close?done={DAY}"
    assert ledger.store.day_close("P1", DAY)[1:] == ("console:finance", 1)
    assert ledger.store.open_shift_staff("T-DESK-1") is None
    again = finance.post("/day-close", data={"csrf": csrf_of(finance), "day": DAY, "force": "yes"})
    assert again.status_code == 409 and "a closed day stays closed" in again.text
    (entry,) = [entry for entry in accounts.audit_entries() if entry[3] == "day.close"]
    assert entry[2] == "finance" and entry[4] == DAY
    assert json.loads(entry[6]) == {"closed": True, "forced": True, "shifts_ended": ["T-DESK-1 li"]}
    assert DAY in finance.get("/day-close").text


def test_the_console_shifts_page_shows_each_shift_expected_counted_and_over_short_as_the_command_line_does(ledger,
                                                                                                          capsys):
    from tools.cli import main

    from .test_shift_handover import desk_day, hand_over

    desk_day(ledger)
    hand_over(ledger, "T-DESK-1", LI, 9500)
    app, _ = console(ledger)
    finance = log_in(app, "finance")
    page = finance.get(f"/reports/shifts?day={DAY}")
    assert page.status_code == 200
    row = next(line for line in page.text.split("<tr") if "T-DESK-1" in line)
    cells = [cell.split(">", 1)[1].split("<", 1)[0].strip() for cell in row.split("<td")[1:]]
    assert cells[2] == "li" and cells[7:10] == ["100.00", "95.00", "-5.00"]
    assert main(["--home", str(ledger.rig.home.home), "report", "shifts", "--day", DAY, "--format", "csv"]) == 0
    csv_row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("T-DESK-1"))
    assert csv_row.split(",")[7:10] == cells[7:10]
    # A station supervisor sees the shifts of their own stations only.
    supervisor = log_in(app, "fish-sup")
    assert "T-DESK-1" not in supervisor.get(f"/reports/shifts?day={DAY}").text
