"""Check that the packages' imports keep to the layers: no upward import, no cycle between packages.

    python tools/check_layers.py [ROOT]     # ROOT: the project's top directory (default: this one's parent)

Reads every ``.py`` file under the packages with :mod:`ast` — nothing of ours is imported, so a
broken module cannot hide an import — and counts every import statement wherever it stands: at the
top, inside a function (lazy) or under ``TYPE_CHECKING`` (a type-only import still ties the lower
package to the higher one's names). Prints each import that breaks the rules and each cycle between
packages, and exits 1 if there is any, 0 otherwise.

The layers, lowest first (a package may import those in lower layers):

    protocol, tap ← transport ← terminal, ledger ← host_sim ← tools ← bench ← tests

``tap`` (the MicroPython tap point) sits beside ``protocol`` and imports nothing of ours: a board
carries only that package. ``terminal`` and ``ledger`` share a layer and never import each other: a till never carries the
books' code and the ledger never carries a till's. ``tools`` is the CLI that launches everything,
the simulator's window and demo included, so it may import ``host_sim``; ``host_sim`` imports
nothing of ``tools`` (it would be a cycle). ``tests`` may import anything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
import sys

# Lowest first; packages in one tuple share a layer and may not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("protocol", "tap"),
    ("transport",),
    ("terminal", "ledger"),
    ("host_sim", "backoffice"),
    ("tools",),
    ("bench",),
    ("tests",),
)


@dataclass(frozen=True, slots=True)
class Import:
    path: Path  # relative to the root
    line: int
    importer: str  # the importing file's package
    module: str  # the imported module, absolute (``terminal.hal.factory``)

    @property
    def imported(self) -> str:
        return self.module.split(".")[0]


@dataclass(frozen=True, slots=True)
class LayerReport:
    upward: tuple[Import, ...]  # imports from a lower layer to a higher one, or across one layer
    cycles: tuple[tuple[str, ...], ...]  # each cycle once, as the packages around it

    @property
    def is_clean(self) -> bool:
        return not self.upward and not self.cycles


def layer_of(layers: Sequence[Sequence[str]]) -> dict[str, int]:
    return {package: rank for rank, members in enumerate(layers) for package in members}


def module_name(path: Path) -> str:
    """``terminal/hal/factory.py`` → ``terminal.hal.factory``; a package's ``__init__.py`` → the package."""
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(root: Path, path: Path) -> Iterable[Import]:
    """Every import in one file, relative ones resolved against the file's own package."""
    relative = path.relative_to(root)
    tree = ast.parse(path.read_bytes(), filename=str(relative))
    importer = relative.parts[0]
    own_module = module_name(relative)
    # The package a relative import counts from: the module's own package (itself if an __init__).
    own_package = own_module.split(".") if relative.name == "__init__.py" else own_module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(relative, node.lineno, importer, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = own_package[: len(own_package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(relative, node.lineno, importer, module)


def collect_imports(root: Path, packages: Iterable[str]) -> list[Import]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found.extend(imports_of(root, path))
    return found


def find_cycles(edges: Mapping[str, set[str]]) -> list[tuple[str, ...]]:
    """Each elementary cycle once, started at its alphabetically first package."""
    cycles: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, trail: list[str]) -> None:
        for following in sorted(edges.get(node, ())):
            if following == start:
                cycles.add(tuple(trail))
            elif following not in trail and following > start:
                walk(start, following, [*trail, following])

    for start in sorted(edges):
        walk(start, start, [start])
    return sorted(cycles)


def check(root: Path, layers: Sequence[Sequence[str]] = LAYERS) -> LayerReport:
    ranks = layer_of(layers)
    present = [package for package in ranks if (root / package).is_dir()]
    imports = [item for item in collect_imports(root, present) if item.imported in ranks]
    upward = tuple(
        item for item in imports
        if item.imported != item.importer and ranks[item.imported] >= ranks[item.importer]
    )  # fmt: skip
    edges: dict[str, set[str]] = {}
    for item in imports:
        if item.imported != item.importer:
            edges.setdefault(item.importer, set()).add(item.imported)
    return LayerReport(upward=upward, cycles=tuple(find_cycles(edges)))


def describe(report: LayerReport, layers: Sequence[Sequence[str]] = LAYERS) -> list[str]:
    ranks = layer_of(layers)
    lines = []
    for item in report.upward:
        how = "beside it in its layer" if ranks[item.imported] == ranks[item.importer] else "above it"
        lines.append(f"{item.path}:{item.line}: {item.importer} imports {item.module} ({item.imported} is {how})")
    for cycle in report.cycles:
        lines.append("package cycle: " + " -> ".join([*cycle, cycle[0]]))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    root = Path(arguments[0]) if arguments else Path(__file__).resolve().parent.parent
    report = check(root)
    for line in describe(report):
        print(line)
    if report.is_clean:
        print("layers ok: " + " <- ".join(", ".join(members) for members in LAYERS))
        return 0
    print(f"{len(report.upward)} import(s) against the layers, {len(report.cycles)} package cycle(s)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
