"""The ledger under systemd: it says READY=1 once subscribed and WATCHDOG=1 while its loop turns,
and every restart is counted in a LEDGER_RESTARTED alert, so a restart loop is visible."""

from pathlib import Path
import secrets
import socket

from ledger.sd_notify import SystemdNotifier

from .helpers.waiting import wait_until

UNIT = Path(__file__).resolve().parent.parent / "tools" / "systemd" / "fieldpos-ledger.service"


def test_the_ledger_tells_systemd_it_is_ready_and_alive_and_a_restart_is_raised_with_its_count(stopped_rig, monkeypatch):
    rig = stopped_rig
    address = f"\0fieldpos-test-{secrets.token_hex(6)}"
    heard = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + address[1:])
        monkeypatch.setenv("WATCHDOG_USEC", "2000000")

        def listen():
            try:
                while True:
                    heard.extend(systemd.recv(4096).decode().splitlines())
            except BlockingIOError:
                pass
            return "READY=1" in heard and "WATCHDOG=1" in heard

        rig.start_ledger()
        wait_until(listen, 15, "READY=1 and WATCHDOG=1 on the notify socket")
        assert rig.ledger.systemd.ping_interval_s == 1.0  # half of WatchdogSec when that is short
        rig.stop_ledger()
        rig.start_ledger()
    alerts = [detail for (detail,) in rig.reader.db.execute("SELECT detail FROM alert WHERE kind='LEDGER_RESTARTED'")]
    assert alerts == ["the ledger started; 2 starts in the last 10 minutes"]


def test_without_systemd_the_notifier_does_nothing():
    notifier = SystemdNotifier(environ={})
    assert not notifier.is_active and not notifier.ready() and not notifier.watchdog() and notifier.sent == []


def test_the_shipped_unit_restarts_always_and_watches_the_loop():
    unit = UNIT.read_text()
    for line in ("Type=notify", "Restart=always", "RestartSec=2", "WatchdogSec=30", "StartLimitIntervalSec=0",
                 "ExecStart=/opt/fieldpos/venv/bin/fieldpos ledger serve"):
        assert line in unit, line
