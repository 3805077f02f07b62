"""The layers the folders show: protocol ← transport ← terminal, ledger ← host_sim ← tools ← bench.

``tools/check_layers.py`` reads the imports with ``ast``; these tests run it on the project and on
small synthetic trees, and check that the terminal's hardware factory gets its simulator only from
``host_sim`` registering itself.
"""

from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

from terminal.errors import HardwareUnavailableError
from terminal.hal import factory
from tools import check_layers

ROOT = Path(__file__).resolve().parent.parent


def test_the_projects_imports_keep_to_the_layers_and_make_no_package_cycle():
    finished = subprocess.run([sys.executable, str(ROOT / "tools" / "check_layers.py"), str(ROOT)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.startswith("layers ok: protocol, tap <- transport <- terminal, ledger")


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    for package in {name.split("/")[0] for name in files}:
        (root / package / "__init__.py").touch()
    return root


# Each row: a tree's files, then what the check must report (upward imports as
# "file:line module", cycles as package tuples). An empty report means the tree is clean.
LAYER_TABLE = [
    pytest.param({"terminal/app.py": "from protocol import envelope\nfrom transport import mqtt\n"}, [], [],
                 id="a till on the protocol and the shared MQTT helper is clean"),
    pytest.param({"tools/cli.py": "def demo():\n    from host_sim.demo import run_demo\n"}, [], [],
                 id="the CLI launching the simulator's demo is clean"),
    pytest.param({"protocol/codec.py": "import terminal.net\n"}, ["protocol/codec.py:1 terminal.net"], [],
                 id="the protocol importing the terminal is upward"),
    pytest.param({"ledger/service.py": "from terminal import mqtt\n"}, ["ledger/service.py:1 terminal"], [],
                 id="the ledger importing the terminal beside it is refused"),
    pytest.param({"terminal/hal/factory.py": "def sim():\n    from host_sim.mfrc522 import FakeSpiDev\n"},
                 ["terminal/hal/factory.py:2 host_sim.mfrc522"], [],
                 id="a lazy import inside a function counts"),
    pytest.param({"transport/mqtt.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import ledger.store\n"},
                 ["transport/mqtt.py:3 ledger.store"], [],
                 id="a type-only import counts"),
    pytest.param({"host_sim/rig.py": "from tools.park import ParkHome\n", "tools/cli.py": "import host_sim.demo\n"},
                 ["host_sim/rig.py:1 tools.park"], [("host_sim", "tools")],
                 id="the simulator importing the CLI that launches it is upward and a cycle"),
    pytest.param({"terminal/hal/__init__.py": "", "terminal/hal/factory.py": "from ..net import link\n"}, [], [],
                 id="a relative import within the terminal stays inside it"),
]


@pytest.mark.parametrize("files, upward, cycles", LAYER_TABLE)
def test_the_layer_check_finds_each_upward_import_and_each_cycle_in_a_small_tree(tmp_path, files, upward, cycles):
    report = check_layers.check(make_tree(tmp_path, files))
    assert [f"{item.path.as_posix()}:{item.line} {item.module}" for item in report.upward] == upward
    assert list(report.cycles) == cycles
    assert report.is_clean == (not upward and not cycles)


def test_the_layer_script_fails_and_names_the_file_when_the_protocol_imports_the_ledger(tmp_path):
    make_tree(tmp_path, {"protocol/limits.py": "from ledger.store import Store\n", "ledger/store.py": "import protocol\n"})
    finished = subprocess.run([sys.executable, str(ROOT / "tools" / "check_layers.py"), str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 1
    assert "protocol/limits.py:1: protocol imports ledger.store (ledger is above it)" in finished.stdout
    assert "package cycle: ledger -> protocol -> ledger" in finished.stdout


def test_a_till_asked_for_simulated_hardware_before_host_sim_registered_it_says_to_import_host_sim(monkeypatch):
    monkeypatch.delitem(factory._BUILDERS, "sim")
    with pytest.raises(HardwareUnavailableError, match="import host_sim"):
        factory.make_hardware("sim")


def test_importing_host_sim_registers_the_simulated_hardware_with_the_terminals_factory():
    finished = subprocess.run(
        [sys.executable, "-c", "from terminal.hal import factory; before = factory.registered_kinds(); import host_sim; "
                               "print(sorted(before), sorted(factory.registered_kinds()))"],
        capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert finished.stdout.split() == ["['pi']", "['pi',", "'sim']"], finished.stderr
