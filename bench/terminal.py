"""Terminal figures: receipt render + ESC/POS encode time and bytes, SPI transactions per card read,
and the terminal process itself — cold start to ready and resident memory after start.

The process figures run the real ``fieldpos terminal run`` (bundle + station config) with
FIELDPOS_HW=sim against a real broker and ledger on this machine. The emulated hardware lives in the
same process there (a pty printer with its own parser, the SPI and OLED models), so the emulators'
own share is measured separately and subtracted for the on-a-Pi estimate.

Run: tools/dev.sh bench terminal
"""

from pathlib import Path
import runpy
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host_sim.rig import ParkRig  # noqa: E402

RSS_TARGET_MB = 40
COLD_START_TARGET_S = 0.5


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def python_rss_mb(code: str) -> float:
    process = subprocess.Popen([sys.executable, "-c", code + "\nimport sys; print('ok', flush=True); sys.stdin.read()"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    process.stdout.readline()
    value = rss_mb(process.pid)
    process.kill()
    process.wait()
    return value


def terminal_process(rig: ParkRig, bundle: Path, config: Path) -> tuple[float, float]:
    """(seconds from spawn to ready, RSS MB once ready) of a real terminal process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "-v", "terminal", "run", "--bundle", str(bundle), "--config", str(config)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, env={"FIELDPOS_HW": "sim", "PATH": "/usr/bin:/bin"},
    )
    try:
        for line in process.stderr:
            if "ready:" in line:
                ready_s = time.perf_counter() - started
                break
        else:
            raise RuntimeError("the terminal exited before it was ready")
        time.sleep(0.5)  # let the first screens settle
        return ready_s, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(10)


def app_card_read_transactions() -> int:
    """SPI transactions for what the app does on a tap: poll, read the signed record, halt."""
    from protocol.card_record import RECORD_BLOCKS, sector_key
    from terminal.hal.card_reader import SectorKey
    from terminal.hal.factory import make_hardware

    with tempfile.TemporaryDirectory() as scratch, make_hardware("sim") as hardware:
        rig = ParkRig(Path(scratch)).create({"T-FISH-1": "fishing"})
        hardware.sim.field.present(rig.virtual_card("C00001"))
        before = hardware.sim.spi.transaction_count
        uid = hardware.card_reader.poll()
        key = SectorKey(sector_key(rig.home.ledger_keys().card_key_master, uid.value))
        hardware.card_reader.read_blocks(uid, RECORD_BLOCKS, key)
        hardware.card_reader.halt()
        return hardware.sim.spi.transaction_count - before


def main() -> None:
    print("== receipts ==")
    runpy.run_path(str(ROOT / "bench" / "receipt.py"), run_name="__main__")
    print("\n== card reader ==")
    runpy.run_path(str(ROOT / "bench" / "spi_count.py"), run_name="__main__")
    print(f"the app's card-record read (UID + sectors 1 and 2, then halt): {app_card_read_transactions()} SPI transactions")
    print("\n== terminal process ==")
    with tempfile.TemporaryDirectory() as scratch:
        with ParkRig(Path(scratch)).create({"T-FISH-1": "fishing"}) as rig:
            rig.start_broker()
            rig.start_ledger()
            config = Path(scratch) / "station.json"
            import json

            config.write_text(json.dumps(rig.station_config("T-FISH-1").to_dict(), ensure_ascii=False))
            bundle = rig.home.bundle_path("T-FISH-1")
            runs = [terminal_process(rig, bundle, config) for _ in range(3)]
    ready_s = min(run[0] for run in runs)
    terminal_mb = min(run[1] for run in runs)
    bare_mb = python_rss_mb("pass")
    emulators_mb = python_rss_mb("import host_sim; from terminal.hal.factory import make_hardware; h = make_hardware('sim')") - \
        python_rss_mb("import terminal.hal.factory")
    print(f"cold start to ready (process spawn -> boot done, ledger reachable): best of 3 {ready_s:.2f} s "
          f"(target <= {COLD_START_TARGET_S} s)")
    print(f"RSS after start, on emulated hardware: {terminal_mb:.1f} MB; the emulators' own share {emulators_mb:.1f} MB; "
          f"estimate on a Pi {terminal_mb - emulators_mb:.1f} MB (target <= {RSS_TARGET_MB} MB); bare python {bare_mb:.1f} MB")


if __name__ == "__main__":
    main()
