"""The park's operator turns member transfers on and off with ``fieldpos member-settings``
(PROTOCOL.md §5.5); the other member settings stay as they were, and bad input is one line."""

import pytest

from host_sim.rig import ParkRig
from tools.cli import main

from .conftest import TERMINALS


@pytest.fixture
def park(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    store = rig.home.open_store()
    store.set_member_settings(rig.park_id, bonus_first=True, points_per_yuan=2, no_pin_limit_fen=5000)
    store.close()
    yield rig
    rig.close()


def settings(rig):
    store = rig.home.open_store()
    try:
        return store.member_settings(rig.park_id), store.allows_member_transfer(rig.park_id)
    finally:
        store.close()


def member_settings(rig, *words):
    return main(["--home", str(rig.home.home), "member-settings", *words])


def test_the_operator_allows_member_transfers_and_the_other_member_settings_stay(park, capsys):
    assert member_settings(park) == 0
    shown = capsys.readouterr().out
    assert "transfers not allowed" in shown and "no-PIN limit 50.00" in shown
    assert member_settings(park, "--allow-transfer", "yes") == 0
    assert "transfers allowed" in capsys.readouterr().out
    assert settings(park) == ((True, 2, 5000), True)
    assert member_settings(park, "--allow-transfer", "no") == 0
    assert settings(park) == ((True, 2, 5000), False)


def test_a_word_other_than_yes_or_no_is_one_line_of_error_and_changes_nothing(park, capsys):
    assert member_settings(park, "--allow-transfer", "maybe") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "yes or no" in captured.err
    assert settings(park) == ((True, 2, 5000), False)


def test_member_settings_on_a_home_without_a_ledger_is_one_line_of_error(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "nowhere"), "member-settings", "--allow-transfer", "yes"]) == 1
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "ledger init" in captured.err
