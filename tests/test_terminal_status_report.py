"""A terminal reports its printer's state and its software version in its status (PROTOCOL.md §6.2,
two fields added within version 1), the ledger keeps them, and the park sees them on the dashboard
and in ``fieldpos report dashboard``."""

import csv
import io

import pytest

from host_sim.station import ScriptedStation
from protocol import topics
from protocol.envelope import Purpose
from protocol.errors import ProtocolError
from protocol.messages import PrinterState, TerminalStatus, parse
from terminal.net import installed_version
from tools.cli import main

from .helpers.waiting import wait_until
from .test_ledger_intake_edges import NOW_MS, ledger  # noqa: F401 - the intake on a real SQLite file

# A status as every terminal sent it before the two fields existed: still valid, byte for byte.
OLD_STATUS = (b'{"highest_seq":7,"is_online":true,"oldest_queued_ms":null,"park":"P1","queue_depth":2,'
              b'"terminal":"T-FISH-1","time_ms":1780000000000,"type":"status"}')


def status(**fields) -> TerminalStatus:
    return TerminalStatus(park="P1", terminal="T-FISH-1", is_online=True, highest_seq=7, queue_depth=2,
                          oldest_queued_ms=None, time_ms=NOW_MS, **fields)


def test_a_status_without_printer_or_version_is_the_body_terminals_sent_before_and_still_parses():
    assert status().to_bytes() == OLD_STATUS
    parsed = parse(OLD_STATUS, {TerminalStatus.TYPE: TerminalStatus})
    assert (parsed.printer, parsed.software_version) == (None, None)


def test_a_status_with_both_carries_them_and_reads_back_the_same():
    body = status(printer=PrinterState.PAPER_OUT.value, software_version="0.1.0+g3f2a").to_bytes()
    assert b'"printer":"paper_out"' in body and b'"software_version":"0.1.0+g3f2a"' in body
    parsed = parse(body, {TerminalStatus.TYPE: TerminalStatus})
    assert (parsed.printer, parsed.software_version) == ("paper_out", "0.1.0+g3f2a")


@pytest.mark.parametrize("change, reason", [
    (b'"printer":"jammed",', "VALUE_OUT_OF_RANGE"),
    (b'"printer":1,', "WRONG_TYPE"),
    (b'"software_version":"",', "VALUE_OUT_OF_RANGE"),
    (b'"software_version":"1.0 beta",', "VALUE_OUT_OF_RANGE"),
    (b'"software_version":"' + b"1" * 33 + b'",', "VALUE_OUT_OF_RANGE"),
    (b'"printer_model":"TM-T20",', "UNKNOWN_FIELD"),  # only the two named fields were added
])
def test_a_status_with_a_bad_printer_or_version_is_refused_by_name(change, reason):
    body = OLD_STATUS.replace(b'"park"', change + b'"park"')
    with pytest.raises(ProtocolError) as refused:
        parse(body, {TerminalStatus.TYPE: TerminalStatus})
    assert refused.value.code == reason


def send_status(ledger, body: bytes):  # noqa: F811
    topic = topics.status("P1", "T-FISH-1")
    _, payload = ledger.sign("T-FISH-1", body, topic=topic, purpose=Purpose.STATUS)
    return ledger.intake.process([(topic, payload)])


def stored(ledger):  # noqa: F811
    return ledger.store.db.execute("SELECT highest_seq, printer_state, software_version FROM terminal_status "
                                   "WHERE terminal_id = 'T-FISH-1'").fetchone()


def test_the_ledger_keeps_what_the_last_status_said_and_null_for_a_status_that_did_not_say(ledger):  # noqa: F811
    assert send_status(ledger, status(printer="cover_open", software_version="0.2.0").to_bytes()) == []
    assert stored(ledger) == (7, "cover_open", "0.2.0")
    assert send_status(ledger, OLD_STATUS) == []  # an older build: nothing reported, nothing kept from before
    assert stored(ledger) == (7, None, None)


def dashboard_terminals(capsys, home) -> dict[str, dict[str, str]]:
    """terminal -> its row of the CSV's Terminals table, from ``fieldpos report dashboard``."""
    capsys.readouterr()
    assert main(["--home", str(home), "report", "dashboard", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    header = next(index for index, row in enumerate(rows) if row and row[0] == "terminal")
    keys = rows[header]
    return {row[0]: dict(zip(keys, row)) for row in rows[header + 1:] if row and row[0].startswith("T-")}


def test_a_station_whose_paper_runs_out_shows_it_on_the_dashboard_report_until_the_paper_is_loaded(rig, capsys):
    station = ScriptedStation(rig, "T-FISH-1")
    store = rig.home.open_store()

    def reported():
        station.app.turn()  # the idle till asks its printer every few seconds and says what changed
        row = store.db.execute("SELECT printer_state, software_version FROM terminal_status "
                               "WHERE terminal_id = 'T-FISH-1'").fetchone()
        return row and row[0]

    try:
        wait_until(lambda: reported() == "ready", 30, "the till's first status with its printer")
        station.sim.printer.set_paper_out()
        wait_until(lambda: reported() == "paper_out", 30, "the status saying the paper is out")
        terminals = dashboard_terminals(capsys, rig.home.home)
        assert terminals["T-FISH-1"]["printer"] == "paper_out"
        assert terminals["T-FISH-1"]["software_version"] == (installed_version() or "not reported") != ""
        assert terminals["T-FISH-2"]["printer"] == "not reported"  # never connected: nothing said
        station.sim.printer.load_paper()
        wait_until(lambda: reported() == "ready", 30, "the status saying the paper is back")
        assert dashboard_terminals(capsys, rig.home.home)["T-FISH-1"]["printer"] == "ready"
    finally:
        store.close()
        station.close()
