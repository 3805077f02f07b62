"""tap/native: the tap's Ed25519 in C (Monocypher's curve arithmetic, SHA-512) as a MicroPython
dynamic native module. Built for the unix port (x64) it must pass the same vectors as the Python
(tests/helpers/tap_vector_check.py), with tap.ed25519 taking it; built for the RP2040 (armv6m) it
must be a native .mpy for that architecture (not run here: no armv6m MicroPython on this machine).
Both builds need MPY_DIR, a MicroPython source tree: no package registry carries MicroPython's
natmod build files, so without it these tests are skipped, saying so."""

import re
import shutil

import pytest

from tools import micropython_ports as micropython
from tools import tap_flash

from .helpers import tap_vectors

_MPY_ARCH = {"x64": 2, "armv6m": 4}  # MP_NATIVE_ARCH_* in the .mpy header's third byte, bits 2..7


def _built(arch, tmp_path):
    try:
        return micropython.build_native(arch, tmp_path)
    except LookupError as missing:
        pytest.skip(str(missing))


def _header_arch(mpy: bytes) -> tuple[int, int]:
    assert mpy[:1] == b"M", mpy[:4]
    return mpy[1], mpy[2] >> 2


def test_the_native_ed25519_on_the_unix_port_passes_the_tap_vectors(tmp_path):
    native = _built("x64", tmp_path)
    assert _header_arch(native.read_bytes()) == (6, _MPY_ARCH["x64"])
    board = micropython.compile_tap(tmp_path / "board")
    shutil.copyfile(native, board / "tap" / "ed25519_native.mpy")
    script = tmp_path / "check.py"
    script.write_text(tap_vectors.checker_script(tap_vectors.build(), None), encoding="utf-8")
    run = micropython.run_unix(script, path=board)
    out = run.stdout + run.stderr
    assert "ed25519 native" in out, out[-2000:]
    match = re.search(r"checked (\d+) failed (\d+)", out)
    assert match and int(match.group(2)) == 0 and int(match.group(1)) > 1000, out[-2000:]


def test_the_native_ed25519_builds_for_the_rp2040(tmp_path):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("the ARM cross-compiler is missing: MPY_DIR=... tools/dev.sh installs gcc-arm-none-eabi")
    native = _built("armv6m", tmp_path)
    assert _header_arch(native.read_bytes()) == (6, _MPY_ARCH["armv6m"])
    tap_flash._check_native(native, tap_flash.ARCHES["pico"])  # what flash.sh --native accepts for a Pico
    # Monocypher's unused parts are dropped before linking: the code a board loads stays small.
    assert native.stat().st_size < 20_000
