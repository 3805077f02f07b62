"""One vocabulary from keypad to receipt (issue 11 item 4): the terminal's state machine names a
request by its message type, a card's kind and state and a payment channel by the protocol's enums,
and a key by the keypad's ``Key``. A string literal spelling one of them by hand would let the two
drift apart again, so the machine's sources are walked for them."""

import ast
from pathlib import Path

import pytest

from protocol.kinds import KINDS, RequestKind
from protocol.messages import CardKind, CardState, Channel
from terminal.events import KeyPressed
from terminal.hal.keypad import Key

ROOT = Path(__file__).resolve().parent.parent
MACHINE = ("terminal/core.py", "terminal/desk.py")
# What the screens called requests before they used the message type (``Sale.is_reissue`` and
# ``Sale.only_writes`` replaced the two that were no request at all).
OLD_OPERATION_NAMES = frozenset({"issue", "reissue", "return", "unblock", "replace", "transfer", "finish"})
ENUM_VALUES = frozenset(member.value for enum in (CardKind, CardState, Channel) for member in enum)


def hand_spelled_words(source: str) -> list[str]:
    """Every string literal in ``source`` that is a card kind, card state, channel or old operation
    name, with its line."""
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and node.value in ENUM_VALUES | OLD_OPERATION_NAMES]


def keys_compared_to_strings(source: str) -> list[str]:
    """Every comparison of a ``key`` (a name or an attribute) with a string literal or a tuple of them."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        is_key = any(isinstance(o, ast.Name) and o.id == "key" or isinstance(o, ast.Attribute) and o.attr == "key"
                     for o in operands)
        literals = [o for o in operands if isinstance(o, ast.Constant) and isinstance(o.value, str)
                    or isinstance(o, (ast.Tuple, ast.Set)) and any(isinstance(e, ast.Constant) for e in o.elts)]
        if is_key and literals:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_walk_finds_what_it_looks_for():
    source = 'if sale.operation == "reissue" and card.kind != "member" and event.key == "1": pay("cash")\n' \
             'if key in ("2", "3"): pass\n'
    assert hand_spelled_words(source) == ["1: 'reissue'", "1: 'member'", "1: 'cash'"]
    assert sorted(keys_compared_to_strings(source)) == ["1: event.key == '1'", "2: key in ('2', '3')"]


@pytest.mark.parametrize("path", MACHINE)
def test_the_state_machine_spells_no_card_kind_state_channel_or_old_operation_name_by_hand(path):
    assert hand_spelled_words((ROOT / path).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MACHINE)
def test_the_state_machine_compares_keys_as_keys(path):
    assert keys_compared_to_strings((ROOT / path).read_text(encoding="utf-8")) == []


def test_the_request_kinds_know_no_second_name_for_a_request():
    assert "terminal_operations" not in {field for field in RequestKind.__dataclass_fields__}
    assert all(name == kind.type for name, kind in KINDS.items())


def test_a_key_named_by_its_value_reaches_the_machine_as_the_key():
    assert KeyPressed("ENTER").key is Key.ENTER and KeyPressed("7").key is Key.DIGIT_7
    with pytest.raises(ValueError):
        KeyPressed("ENTRE")
