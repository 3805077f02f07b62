"""Put a provisioned tap point onto a MicroPython board (``flash.sh --board pico|esp32``).

    python -m tools.tap_flash --board pico --bundle TAP-1.json --config tap_board.json [--native ed25519_native.mpy] (--port /dev/ttyACM0 | --dest DIR)

Compiles tap/*.py with mpy-cross for the board's architecture (armv6m: Raspberry Pi Pico W's
RP2040; xtensawin: ESP32), writes a ``main.py``, and copies them, the Ed25519 table file and,
with ``--native``, the C Ed25519 built for the board (tap/native) with the bundle, the board
settings and a fresh restart count (tap.reboots: re-flashing clears a tap that stopped itself): with ``mpremote`` to the board on ``--port``, or into ``--dest``, a directory standing in
for the board's file system (to look at, or to test). The board's settings are checked first
(tap.settings.board_problems), and so is the bundle.
"""

import argparse
import ipaddress
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tap.board import BOARD_PATH, BUNDLE_PATH
from tap.settings import board_problems, bundle_problems
from tap.reboots import BOOTS_PATH, fresh

ROOT = Path(__file__).resolve().parent.parent
ARCHES = {"pico": "armv6m", "esp32": "xtensawin"}
# MP_NATIVE_ARCH_* of each board's architecture: the third byte of a native .mpy, bits 2..7.
_MPY_NATIVE_ARCH = {"armv6m": 4, "xtensawin": 10}
MAIN_PY = '''# Written by flash.sh --board: the tap point starts at boot.
from tap import board

board.main()
'''


class FlashError(Exception):
    pass


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def compile_modules(arch: str | None, out: Path) -> list[Path]:
    """tap/*.py compiled for ``arch`` (None: bytecode for any port) into ``out``/tap/, beside the
    package's data files (the Ed25519 table); the .mpy files written. Without line numbers and
    asserts: a board's heap is small."""
    (out / "tap").mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted((ROOT / "tap").glob("*.py")):
        target = out / "tap" / f"{source.stem}.mpy"
        command = [_tool("mpy-cross"), "-O3", "-X", "no-source-lines", "-s", f"tap/{source.name}", "-o", str(target)]
        done = subprocess.run(command + ([f"-march={arch}"] if arch else []) + [str(source)], capture_output=True, text=True)
        if done.returncode != 0:
            raise FlashError(f"mpy-cross could not compile {source.name}: {done.stderr.strip()}")
        written.append(target)
    for data in sorted((ROOT / "tap").glob("*.bin")):
        shutil.copyfile(data, out / "tap" / data.name)
    return written


def _load(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FlashError(f"cannot read the {what} {path}: {error}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_native(path: Path, arch: str) -> None:
    """The native Ed25519 (tap/native's ed25519_native.mpy) must be built for the board's arch:
    another one fails only at import on the board, where the tap falls back to its Python."""
    try:
        header = path.read_bytes()[:4]
    except OSError as error:
        raise FlashError(f"cannot read the native module {path}: {error}") from None
    if len(header) < 4 or header[:1] != b"M" or header[1] != 6 or header[2] >> 2 != _MPY_NATIVE_ARCH[arch]:
        raise FlashError(f"{path} is not a native .mpy for {arch} (build it: make -C tap/native ARCH={arch} MPY_DIR=...)")


def stage(board: str, bundle_path: Path, config_path: Path, out: Path, native: Path | None = None) -> list[str]:
    """Everything the board gets, under ``out`` as on the board; returns warnings. ``native``: the
    tap's C Ed25519 built for the board (tap/native), copied as tap/ed25519_native.mpy."""
    bundle, settings = _load(bundle_path, "bundle"), _load(config_path, "board settings")
    problems = bundle_problems(bundle) + board_problems(settings)
    if problems:
        raise FlashError("; ".join(problems))
    if native is not None:
        _check_native(native, ARCHES[board])
    compile_modules(ARCHES[board], out)
    if native is not None:
        shutil.copyfile(native, out / "tap" / "ed25519_native.mpy")
    (out / "main.py").write_text(MAIN_PY, encoding="utf-8")
    shutil.copyfile(bundle_path, out / BUNDLE_PATH.lstrip("/"))
    (out / BUNDLE_PATH.lstrip("/")).chmod(0o600)
    shutil.copyfile(config_path, out / BOARD_PATH.lstrip("/"))
    # A fresh restart count: flashing a tap that stopped itself (tap.reboots) starts it again.
    (out / BOOTS_PATH.lstrip("/")).write_text(json.dumps(fresh()), encoding="utf-8")
    host = bundle["broker"]["host"]
    return [f"the bundle's broker host {host} is this machine's loopback: a board cannot reach it "
            "(provision with --broker-host set to the broker's address on the park network)"] if _is_loopback(host) else []


def mpremote_command(staged: Path, port: str) -> list[str]:
    """One mpremote session: copy the staged tree onto the board's root, then reset it."""
    names = sorted(path.name for path in staged.iterdir())
    return [_tool("mpremote"), "connect", port, "fs", "cp", "-r", *names, ":", "+", "reset"]


def copy_with_mpremote(staged: Path, port: str) -> None:
    done = subprocess.run(mpremote_command(staged, port), cwd=staged, capture_output=True, text=True)
    if done.returncode != 0:
        raise FlashError(f"mpremote could not copy the tap onto {port}: {done.stderr.strip()[-300:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="flash.sh --board", description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", choices=sorted(ARCHES), required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True, help="the board settings (tap/board.py)")
    parser.add_argument("--native", type=Path, help="tap/native's ed25519_native.mpy built for the board: "
                        "signs in milliseconds where the tap's Python takes seconds")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the board's serial port, for mpremote")
    where.add_argument("--dest", type=Path, help="a directory standing in for the board's file system")
    args = parser.parse_args(argv)
    try:
        if args.dest is not None:
            if not args.dest.is_dir():
                raise FlashError(f"no directory at {args.dest}")
            warnings = stage(args.board, args.bundle, args.config, args.dest, args.native)
        else:
            with tempfile.TemporaryDirectory() as staging:
                warnings = stage(args.board, args.bundle, args.config, Path(staging), args.native)
                copy_with_mpremote(Path(staging), args.port)
    except FlashError as error:
        print(f"flash.sh: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"flash.sh: warning: {warning}", file=sys.stderr)
    print(f"flashed tap {_load(args.bundle, 'bundle')['terminal_id']} for {args.board} onto {args.port or args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
