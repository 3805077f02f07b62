"""Mutation testing in bounded time: does a small deliberate bug in protocol/, the ledger's rules,
verify and intake, or the terminal's outbox and core make at least one test fail?

Two kinds of mutant, each applied alone to a copy of the committed tree (``git archive HEAD``, so
the uncommitted work of others never leaks in and the checkout is never touched):

- operator mutants, made from the module's syntax tree: a comparison turned (``<`` to ``<=``, ``==``
  to ``!=``), ``and`` to ``or``, ``+`` to ``-``, a ``not`` dropped, an integer one bigger, a boolean
  flipped, a ``return x`` made ``return None``. A fixed sample per module (seeded, so a run is
  repeatable) keeps the run within minutes.
- named mutants: the deliberate bugs of issue 10, written out by hand, so every run checks that the
  guarantees they break are still guarded.

A mutant is *killed* when the module's test files fail (or hang past the per-mutant timeout), and
*survives* when they pass. Usage: ``tools/mutation.sh [--per-module N] [--seed S] [--only MODULE]
[--working-tree] [--killers]``.
"""

import argparse
import ast
from dataclasses import dataclass
import os
from pathlib import Path
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent

# Which test files speak for which module: the fast ones that exercise it without a broker where
# possible (a mutant is run against these only, so the whole run stays bounded).
# The edge tables come first: they kill most mutants in about a second, and pytest's -x stops there.
PROTOCOL_TESTS = ("tests/test_protocol_edges.py", "tests/test_protocol.py", "tests/test_protocol_oracle.py", "tests/test_properties.py",
                  "tests/test_refusals.py")
LEDGER_TESTS = ("tests/test_ledger_rules_edges.py", "tests/test_guarantees.py", "tests/test_properties.py", "tests/test_offline_ledger.py",
                "tests/test_refusals.py", "tests/test_front_desk.py", "tests/test_shifts.py")
# The rules' own tables come first: no store, no broker.
RULES_TESTS = ("tests/test_rules_sales.py", "tests/test_rules_cards.py", "tests/test_rules_members.py",
               "tests/test_rules_staff.py") + LEDGER_TESTS
MODULE_TESTS = {
    "protocol/envelope.py": PROTOCOL_TESTS,
    "protocol/codec.py": PROTOCOL_TESTS,
    "protocol/messages.py": PROTOCOL_TESTS,
    "protocol/card_record.py": PROTOCOL_TESTS + ("tests/test_front_desk.py",),
    "protocol/pin.py": PROTOCOL_TESTS + ("tests/test_guarantees.py",),
    "protocol/topics.py": PROTOCOL_TESTS,
    "protocol/limits.py": PROTOCOL_TESTS + ("tests/test_ledger_intake_edges.py",),  # MAX_SEQ_JUMP is the ledger's
    "ledger/rules/common.py": RULES_TESTS,
    "ledger/rules/sales.py": RULES_TESTS,
    "ledger/rules/cards.py": RULES_TESTS,
    "ledger/rules/members.py": RULES_TESTS,
    "ledger/rules/staff.py": RULES_TESTS,
    "ledger/verify.py": ("tests/test_ledger_verify_edges.py", "tests/test_guarantees.py", "tests/test_set_aside.py"),
    "ledger/intake.py": ("tests/test_ledger_intake_edges.py",) + LEDGER_TESTS + ("tests/test_members.py",),
    "terminal/outbox.py": ("tests/test_outbox_edges.py", "tests/test_guarantees.py", "tests/test_properties.py", "tests/test_offline_policy.py"),
    "terminal/core.py": ("tests/test_terminal_core.py", "tests/test_guarantees.py"),
}
# Operator mutants sampled per module. protocol/ and the ledger's rules, verify and intake carry
# issue 10's bar (at most 10 % surviving, over all their modules), so they get a larger fixed sample;
# their edge tables run first and kill most mutants in a second or two, which keeps a whole run near
# 10 minutes on the shared 2-core machine. The terminal's modules keep the old, smaller sample.
DEFAULT_PER_MODULE = 8
PER_MODULE = {module: 20 for module in MODULE_TESTS if module.startswith("protocol/")} | {
    "ledger/rules/common.py": 20, "ledger/rules/sales.py": 20, "ledger/rules/cards.py": 20,
    "ledger/rules/members.py": 20, "ledger/verify.py": 20, "ledger/intake.py": 20}
# The groups issue 10's acceptance is stated for; the summary adds each one up.
GROUPS = {"protocol/": lambda module: module.startswith("protocol/"),
          "rules+verify+intake": lambda module: module.startswith("ledger/rules/")
          or module in ("ledger/verify.py", "ledger/intake.py")}
PER_MUTANT_TIMEOUT_S = 90  # a mutant that makes the tests hang this long is counted as killed

# The deliberate bugs of issue 10 (module, exact original text, replacement, what it breaks).
NAMED_MUTANTS = (
    ("ledger/verify.py", "    return VerifyReport(transactions, postings, cards, tuple(problems))",
     "    return VerifyReport(transactions, postings, cards, ())", "verify_books always reports no problems"),
    ("terminal/session.py", "body = envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=topic)",
     "body = sealed.body if purpose is Purpose.BLOCKLIST else envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=topic)",
     "blocklist signature not checked"),
    ("terminal/session.py", "body = envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=topic)",
     "body = sealed.body if purpose is Purpose.CONFIG else envelope.verify(sealed, verify_key=verify_key, purpose=purpose, topic=topic)",
     "config signature not checked"),
    ("terminal/core.py", "    def _on_authorizing(self, event) -> list:\n",
     "    def _on_authorizing(self, event) -> list:\n"
     "        if isinstance(event, (KeyPressed, CardTapped)):\n"
     "            self.state = State.IDLE\n"
     "            return [self._screen()]\n",
     "CANCEL or a tap ends a charge in flight"),
    ("terminal/net.py", "stored = envelope.split(payload).without_attachment() if attachment else payload",
     "stored = payload", "the outbox keeps the sealed PIN block"),
    ("terminal/outbox.py", '        self.db.execute("PRAGMA synchronous = FULL")',
     '        self.db.execute("PRAGMA synchronous = OFF")', "the outbox does not fsync"),
    ("terminal/outbox.py", '        self.db.execute("UPDATE counter SET last_seq = MAX(last_seq, ?)", (highest_seq_at_ledger,))',
     "        pass", "skip_past does nothing"),
)
NAMED_TESTS = ("tests/test_guarantees.py",)


@dataclass(frozen=True)
class Mutant:
    module: str
    line: int
    description: str
    source: str  # the whole mutated module


# ---------------------------------------------------------------- operator mutants
_COMPARE_SWAPS = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                  ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BINARY_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv}


def _is_logging(node, parents) -> bool:
    """Inside a log call or an exception's message: a mutant there changes words, not behaviour."""
    while node is not None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name) \
                and node.func.value.id == "log":
            return True
        if isinstance(node, ast.JoinedStr):
            return True
        node = parents.get(node)
    return False


def _points(tree) -> list[tuple[int, int, str]]:
    """(node index in ast.walk order, sub-index, description) of every place a mutant can go."""
    nodes = list(ast.walk(tree))
    parents = {child: node for node in nodes for child in ast.iter_child_nodes(node)}
    docstrings = {id(body[0].value) for node in nodes if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  for body in [node.body] if body and isinstance(body[0], ast.Expr)}
    # Decorator arguments (dataclass frozen/slots/kw_only) change how a class is built, not what the
    # protocol or the books do: mutants there are equivalent for these tests, so none are made.
    in_decorators = {id(inner) for node in nodes if isinstance(node, (ast.ClassDef, ast.FunctionDef))
                     for decorator in node.decorator_list for inner in ast.walk(decorator)}
    points = []
    for index, node in enumerate(nodes):
        if _is_logging(node, parents) or id(node) in docstrings or id(node) in in_decorators:
            continue
        if isinstance(node, ast.Compare):
            for op_index, op in enumerate(node.ops):
                if type(op) in _COMPARE_SWAPS:
                    points.append((index, op_index, f"{type(op).__name__} -> {_COMPARE_SWAPS[type(op)].__name__}"))
        elif isinstance(node, ast.BoolOp):
            points.append((index, 0, "and -> or" if isinstance(node.op, ast.And) else "or -> and"))
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY_SWAPS:
            points.append((index, 0, f"{type(node.op).__name__} -> {_BINARY_SWAPS[type(node.op)].__name__}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            points.append((index, 0, "not dropped"))
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            points.append((index, 0, f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            points.append((index, 0, f"{node.value} -> {node.value + 1}"))
        elif isinstance(node, ast.Return) and node.value is not None and not (
                isinstance(node.value, ast.Constant) and node.value.value is None):
            points.append((index, 0, "return None"))
    return points


def _mutate(source: str, index: int, sub_index: int) -> tuple[str, int]:
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    parents = {child: node for node in nodes for child in ast.iter_child_nodes(node)}
    node = nodes[index]
    if isinstance(node, ast.Compare):
        node.ops[sub_index] = _COMPARE_SWAPS[type(node.ops[sub_index])]()
    elif isinstance(node, ast.BoolOp):
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif isinstance(node, ast.BinOp):
        node.op = _BINARY_SWAPS[type(node.op)]()
    elif isinstance(node, ast.UnaryOp):
        _replace(parents[node], node, node.operand)
    elif isinstance(node, ast.Constant):
        node.value = (not node.value) if type(node.value) is bool else node.value + 1
    elif isinstance(node, ast.Return):
        node.value = ast.Constant(None)
    return ast.unparse(ast.fix_missing_locations(tree)), node.lineno


def _replace(parent, old, new) -> None:
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
            return
        if isinstance(value, list):
            for position, item in enumerate(value):
                if item is old:
                    value[position] = new
                    return


def operator_mutants(tree_root: Path, module: str, per_module: int, seed: int) -> list[Mutant]:
    source = (tree_root / module).read_text()
    points = _points(ast.parse(source))
    chosen = sorted(random.Random(f"{seed}:{module}").sample(points, min(per_module, len(points))))
    mutants = []
    for index, sub_index, description in chosen:
        mutated, line = _mutate(source, index, sub_index)
        mutants.append(Mutant(module, line, description, mutated))
    return mutants


def named_mutants(tree_root: Path) -> tuple[list[Mutant], list[str]]:
    mutants, stale = [], []
    for module, original, replacement, description in NAMED_MUTANTS:
        source = (tree_root / module).read_text()
        if source.count(original) != 1:
            stale.append(f"{module}: {description} (its original text is gone: rewrite this mutant)")
            continue
        line = source[: source.index(original)].count("\n") + 1
        mutants.append(Mutant(module, line, description, source.replace(original, replacement)))
    return mutants, stale


# ---------------------------------------------------------------- running
def run_tests(tree_root: Path, test_files, *, stop_at_first: bool = True) -> tuple[bool, list[str]]:
    """(passed, failing test ids); a run past the timeout counts as failing."""
    command = [sys.executable, "-m", "pytest", *test_files, "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--timeout", str(PER_MUTANT_TIMEOUT_S), "-W", "ignore"] + (["-x"] if stop_at_first else ["-rf"])
    environment = os.environ | {"PYTHONDONTWRITEBYTECODE": "1", "HYPOTHESIS_PROFILE": "ci"}
    try:
        done = subprocess.run(command, cwd=tree_root, capture_output=True, text=True, timeout=PER_MUTANT_TIMEOUT_S * 2,
                              env=environment)
    except subprocess.TimeoutExpired:
        return False, ["(timed out)"]
    failing = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    return done.returncode == 0, failing


def survives(tree_root: Path, test_files) -> bool:
    """Whether a mutant passes its module's tests. The first file (the module's fast edge tables) runs
    alone: it kills most mutants, and on its own pytest collects a fraction of what the whole set
    costs; only a mutant it lets through pays for the rest."""
    for tier in (test_files[:1], test_files[1:]):
        if tier and not run_tests(tree_root, tier)[0]:
            return False
    return True


def copy_of_tree(use_working_tree: bool) -> Path:
    target = Path(tempfile.mkdtemp(prefix="fieldpos-mutation-"))
    if use_working_tree:
        for name in ("protocol", "transport", "ledger", "terminal", "host_sim", "tools", "tests", "pyproject.toml", "docs"):
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target / name)
    else:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def _print_line(name: str, killed: int, survived: int) -> None:
    total = killed + survived
    print(f"  {name:32} {killed:3} killed {survived:3} survived  ({100 * survived / total:.0f} % survived)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-module", type=int, help="mutants per module for every module (default: PER_MODULE)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--only", action="append", help="a module path (repeatable); default: all")
    parser.add_argument("--working-tree", action="store_true", help="mutate the checkout's files as they are now")
    parser.add_argument("--killers", action="store_true", help="for the named mutants, list every test that fails")
    parser.add_argument("--no-named", action="store_true")
    parser.add_argument("--tests", action="append", help="run these test files instead of the module's (repeatable)")
    args = parser.parse_args(argv)
    tree_root = copy_of_tree(args.working_tree)
    started = time.monotonic()
    try:
        modules = args.only or list(MODULE_TESTS)
        tally: dict[str, list[int]] = {}
        survivors: list[Mutant] = []
        tests_of = {module: [t for t in args.tests or MODULE_TESTS[module] if (tree_root / t).exists()] for module in modules}
        # Every test file once, before any mutant: a file that already fails would "kill" every mutant.
        every_file = sorted({test for tests in tests_of.values() for test in tests})
        passed, failing = run_tests(tree_root, every_file, stop_at_first=False) if every_file else (True, [])
        broken_files = {test.split("::")[0] for test in failing} if not passed else set()
        if not passed and not broken_files:
            broken_files = set(every_file)  # failed without naming a test (collection error, timeout)
        print(f"unmutated tree: {len(every_file)} test files, {'all pass' if passed else 'failing: ' + ' '.join(sorted(broken_files))}",
              flush=True)
        for module in modules:
            tests = tests_of[module]
            if broken := broken_files.intersection(tests):
                print(f"{module}: its tests fail before any mutant ({' '.join(sorted(broken))}); skipped")
                continue
            original = (tree_root / module).read_text()
            per_module = args.per_module or PER_MODULE.get(module, DEFAULT_PER_MODULE)
            for mutant in operator_mutants(tree_root, module, per_module, args.seed):
                (tree_root / module).write_text(mutant.source)
                try:
                    survived = survives(tree_root, tests)
                finally:
                    (tree_root / module).write_text(original)
                counts = tally.setdefault(module, [0, 0])
                counts[1 if survived else 0] += 1
                if survived:
                    survivors.append(mutant)
                    print(f"  survived: {module}:{mutant.line} {mutant.description}", flush=True)
            killed, survived = tally.get(module, [0, 0])
            print(f"{module}: {killed} killed, {survived} survived", flush=True)
        if not args.no_named:
            named, stale = named_mutants(tree_root)
            for line in stale:
                print(f"named mutant stale: {line}")
            print("named mutants (issue 10):")
            for mutant in named:
                original = (tree_root / mutant.module).read_text()
                (tree_root / mutant.module).write_text(mutant.source)
                try:
                    survived, failing = run_tests(tree_root, NAMED_TESTS, stop_at_first=not args.killers)
                finally:
                    (tree_root / mutant.module).write_text(original)
                verdict = "SURVIVED" if survived else "killed"
                print(f"  {verdict}: {mutant.description} ({mutant.module}:{mutant.line})", flush=True)
                for test in failing if args.killers else ():
                    print(f"      by {test}")
                tally.setdefault("named (issue 10)", [0, 0])[1 if survived else 0] += 1
        sample = f"{args.per_module} per module" if args.per_module else "samples per PER_MODULE"
        print(f"\nsummary after {time.monotonic() - started:.0f} s (seed {args.seed}, {sample}):")
        for module, (killed, survived) in tally.items():
            _print_line(module, killed, survived)
        for group, is_member in GROUPS.items():
            counts = [tally[module] for module in tally if is_member(module)]
            if counts:
                _print_line(f"all of {group}", sum(c[0] for c in counts), sum(c[1] for c in counts))
        return 0
    finally:
        shutil.rmtree(tree_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
