"""One vocabulary from keypad to receipt (issue 11 item 4): the terminal's state machine names a
request by its message type, a card's kind and state and a payment channel by the protocol's enums,
a key by the keypad's ``Key``, a staff card by ``terminal.core.STAFF_CARD``, and a sale's lines are
the protocol's ``LineItem`` from the keypad on. A string literal spelling one of them by hand, or a
line built as a bare ``(name, qty, unit_fen)`` tuple, would let the two drift apart again, so the
machine's sources are walked for them."""

import ast
from pathlib import Path

import pytest

from protocol.card_record import KIND_CODES
from protocol.kinds import KINDS, RequestKind
from protocol.messages import CardKind, CardState, Channel, LineItem
from terminal.core import STAFF_CARD
from terminal.events import KeyPressed, Sale
from terminal.hal.keypad import Key

ROOT = Path(__file__).resolve().parent.parent
MACHINE = ("terminal/core.py", "terminal/desk.py", "terminal/rental.py", "terminal/rental_app.py", "terminal/app.py",
           "terminal/events.py")
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


def is_lines(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "lines" or isinstance(node, ast.Attribute) and node.attr == "lines"


def holds_bare_line(node) -> bool:
    """A tuple or list with a 3-tuple in it: ``((name, qty, unit_fen),)``."""
    return isinstance(node, (ast.Tuple, ast.List)) and any(isinstance(e, ast.Tuple) and len(e.elts) == 3 for e in node.elts)


def bare_tuple_lines(source: str) -> list[str]:
    """Every sale line built or read as a bare ``(name, qty, unit_fen)`` tuple instead of a
    ``LineItem``: assigned to ``lines`` (also in a tuple assignment), passed as ``lines=``, appended
    to ``lines``, or unpacked three ways from ``lines``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        pairs = []
        if isinstance(node, ast.Assign):
            for target in node.targets:
                pairs.append((target, node.value))
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs.extend(zip(target.elts, node.value.elts))
        elif isinstance(node, ast.keyword) and node.arg == "lines":
            pairs.append((ast.Name(id="lines"), node.value))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                and is_lines(node.func.value):
            pairs.extend((node.func.value, ast.Tuple(elts=[arg])) for arg in node.args)
        elif isinstance(node, (ast.For, ast.comprehension)) and is_lines(node.iter) \
                and isinstance(node.target, ast.Tuple) and len(node.target.elts) == 3:
            found.append(f"{getattr(node, 'lineno', node.iter.lineno)}: {ast.unparse(node.target)} in {ast.unparse(node.iter)}")
        found.extend(f"{value.lineno if hasattr(value, 'lineno') else node.lineno}: {ast.unparse(target)} = {ast.unparse(value)}"
                     for target, value in pairs if is_lines(target) and holds_bare_line(value))
    return found


def staff_spelled_by_hand(path: str, source: str) -> list[str]:
    """Every ``"staff"`` literal but the one that defines ``STAFF_CARD`` in terminal/core.py."""
    tree = ast.parse(source)
    definition = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign) and path == "terminal/core.py"
                  and [ast.unparse(t) for t in node.targets] == ["STAFF_CARD"]}
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value == STAFF_CARD and id(node) not in definition]


def test_the_walk_finds_what_it_looks_for():
    source = 'if sale.operation == "reissue" and card.kind != "member" and event.key == "1": pay("cash")\n' \
             'if key in ("2", "3"): pass\n'
    assert hand_spelled_words(source) == ["1: 'reissue'", "1: 'member'", "1: 'cash'"]
    assert sorted(keys_compared_to_strings(source)) == ["1: event.key == '1'", "2: key in ('2', '3')"]


def test_the_walk_finds_a_line_built_as_a_bare_tuple():
    source = ('self.sale.lines = ((name, 1, price),)\n'
              'sale.lines, sale.typed = (("充值 Top-up", 1, amount),), ""\n'
              'Sale(card=c, uid_hex=u, lines=((f"{title}", 1, fen),))\n'
              'lines.append((item.name, 1, item.price_fen))\n'
              'for name, qty, unit in sale.lines: pass\n'
              'total = sum(q * u for _, q, u in lines)\n')
    assert sorted(hit.split(":")[0] for hit in bare_tuple_lines(source)) == ["1", "2", "3", "4", "5", "6"]
    as_line_items = ('self.sale.lines = (LineItem(item=name, qty=1, unit_fen=price),)\n'
                     'detail_lines = (("会员 Member", name),)\n'
                     'for line in sale.lines: pass\n')
    assert bare_tuple_lines(as_line_items) == []
    assert staff_spelled_by_hand("terminal/rental.py", 'if kind != "staff": pass\n') == ["1: 'staff'"]
    assert staff_spelled_by_hand("terminal/core.py", 'STAFF_CARD = "staff"\n') == []


@pytest.mark.parametrize("path", MACHINE)
def test_the_machine_builds_a_sale_s_lines_as_line_items(path):
    assert bare_tuple_lines((ROOT / path).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", MACHINE)
def test_a_staff_card_is_named_by_one_constant(path):
    assert staff_spelled_by_hand(path, (ROOT / path).read_text(encoding="utf-8")) == []


def test_the_staff_card_kind_is_the_card_record_s_and_no_card_kind_on_the_wire():
    assert STAFF_CARD in KIND_CODES and STAFF_CARD not in {kind.value for kind in CardKind}


def test_a_sale_adds_up_its_line_items():
    sale = Sale(card=None, uid_hex="", lines=(LineItem(item="鱼饵 Bait", qty=3, unit_fen=500),
                                              LineItem(item="烤串 Skewers", qty=1, unit_fen=1200)))
    assert sale.amount_fen == 2700


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
