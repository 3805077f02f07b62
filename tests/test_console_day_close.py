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
    assert refused.status_code == 409 and "1 shifts are still open: T-DESK-1 (li)" in refused.text
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
