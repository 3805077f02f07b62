"""``fieldpos <command> --help`` reads as plain text: argparse prints help strings and descriptions
verbatim, so reStructuredText from a docstring (``double backticks``, :class:`roles`) would reach the
operator as raw markup (issue 12, item 7)."""

import argparse
import re

import pytest

from tools.cli import build_parser, main

# Inline literals, interpreted-text roles (:class:, :func:, :mod:, ...), and explicit link targets.
RST_MARKUP = re.compile(r"``|:[a-z]+:`|`_\b|^\.\. ", re.MULTILINE)


def _every_command(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    commands = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                commands += _every_command(subparser, path + (name,))
    return commands


COMMANDS = _every_command(build_parser())


def test_the_walk_reaches_the_nested_commands_an_operator_types():
    assert ("ledger", "serve") in COMMANDS and ("demo",) in COMMANDS and () in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command) or "fieldpos")
def test_help_shows_no_raw_markup(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])

    assert exit_.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: fieldpos")
    assert not RST_MARKUP.findall(shown), shown
