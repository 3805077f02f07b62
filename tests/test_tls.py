"""Production wiring: a terminal reaches the broker over TLS, verifying it against the park CA."""

import subprocess
import sys

from host_sim.rig import ParkRig, card, common, single_line
from protocol.messages import CardIssue, Charge
from transport.mosquitto_process import MosquittoProcess, free_port
from transport.park_ca import create_park_ca, issue_server_certificate


def test_a_terminal_charges_through_the_tls_listener(tmp_path):
    with ParkRig(tmp_path).create({"T-DESK-1": "desk"}) as rig:
        ca_dir = rig.home.home / "ca"
        ca_cert, ca_key = create_park_ca(ca_dir, rig.park_id)
        tls_port = free_port()
        rig.home.provision_terminal("T-FISH-9", "fishing", broker_port=tls_port, tls_ca_pem=ca_cert.read_text())
        config = rig.home.write_broker_config(port=rig.port, tls=issue_server_certificate(ca_cert, ca_key, ca_dir),
                                              tls_port=tls_port)
        rig.broker = MosquittoProcess(config, rig.port)
        rig.broker.start()
        rig.start_ledger()
        desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-9")
        assert fishing.client._ssl  # the terminal's connection really is TLS
        visitor = card("C07001")
        desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                          opening_fen=5000, channel="cash", payment_ref=""))
        result = fishing.submit(lambda seq: Charge(**common(fishing, seq, visitor), amount_fen=1200,
                                                   lines=single_line("鱼饵 Bait", 1200)))
        assert result.is_approved and result.balances.fen == 3800


def test_the_broker_config_command_writes_a_tls_listener_and_a_park_ca(tmp_path):
    home = str(tmp_path / "park")
    run = lambda *args: subprocess.run([sys.executable, "-m", "tools.cli", "--home", home, *args],  # noqa: E731
                                       capture_output=True, text=True)
    assert run("ledger", "init", "--park", "P9", "--name", "Test park").returncode == 0
    made = run("broker-config", "--port", "18830", "--tls", "--tls-port", "18831", "--hostname", "broker.park.lan")
    assert made.returncode == 0, made.stderr
    conf = (tmp_path / "park" / "broker" / "mosquitto.conf").read_text()
    assert "listener 18831" in conf and "certfile" in conf and "cafile" in conf
    ca = (tmp_path / "park" / "ca")
    first = sorted((p.name, p.read_bytes()) for p in ca.iterdir())
    again = run("broker-config", "--port", "18840", "--tls")  # e.g. after provisioning a terminal
    assert again.returncode == 0, again.stderr
    assert sorted((p.name, p.read_bytes()) for p in ca.iterdir()) == first  # terminals pin this CA: kept
    assert "listener 18840" in (tmp_path / "park" / "broker" / "mosquitto.conf").read_text()
