"""Offline figures: how long a terminal's queue of 10,000 offline sales takes to drain into the
ledger once its network is back (target <= 10 s), and what queueing one sale costs the terminal
(an fsync'd SQLite commit of the signed request), beside one bare fsync'd commit measured here.

Run: tools/dev.sh bench offline [--sales 10000]
"""

import argparse
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host_sim.network import CuttableLink  # noqa: E402
from host_sim.rig import ParkRig, card, common, single_line  # noqa: E402
from protocol.messages import CardIssue, OfflineCharge  # noqa: E402

from floors import fsync_commit_s  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        with ParkRig(Path(scratch)).create({"T-DESK-1": "desk", "T-FISH-1": "fishing"}) as rig:
            store = rig.home.open_store()
            store.set_offline_policy("P1", {"max_transaction_fen": 10_000, "max_card_fen": 10_000_000,
                                            "max_terminal_fen": 10_000_000, "max_count": args.sales,
                                            "max_offline_ms": 86_400_000, "max_reboots": 3,
                                            "blocklist_max_age_ms": 86_400_000, "allowed_modes": "free"})
            store.close()
            rig.start_broker()
            # The ledger in its own process, as deployed (in this process it would share the GIL
            # with the terminal being measured).
            ledger = subprocess.Popen([sys.executable, "-m", "tools.cli", "--home", str(rig.home.home), "ledger", "serve",
                                       "--broker-port", str(rig.port)], cwd=ROOT)
            try:
                drained_s, booked, times, floor_ms = measure(rig, args.sales, scratch)
            finally:
                ledger.terminate()
                ledger.wait(10)
    print(f"queue one offline sale (sign + fsync'd commit): p50 {statistics.median(times) * 1000:.2f} ms, "
          f"p99 {sorted(times)[int(len(times) * 0.99)] * 1000:.2f} ms; floor: one bare fsync'd commit {floor_ms:.2f} ms")
    print(f"drain {args.sales:,} queued sales after reconnect: {drained_s:.1f} s ({args.sales / drained_s:,.0f}/s; "
          f"target <= 10 s); booked {booked:,}")


def measure(rig, sales, scratch):
    desk = rig.link("T-DESK-1")
    visitor = card("B00001")
    desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                      opening_fen=9_000_000, channel="cash", payment_ref=""))
    wifi = CuttableLink(rig.port)
    link = rig.link("T-FISH-1", port=wifi.port)
    wifi.cut()
    while link.is_connected:
        time.sleep(0.01)
    times = []
    for _ in range(sales):
        started = time.perf_counter()
        link.enqueue(lambda seq: OfflineCharge(**common(link, seq, visitor), amount_fen=100,
                                               lines=single_line("鱼饵 Bait", 100), supersedes_seq=None,
                                               approved_ms=link.clock_ms()))
        times.append(time.perf_counter() - started)
    floor_ms = fsync_commit_s(scratch) * 1000
    started = time.perf_counter()
    wifi.restore()
    deadline = time.monotonic() + 300
    while link.outbox.pending_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    drained_s = time.perf_counter() - started
    store = rig.home.open_store()
    booked = store.db.execute("SELECT COUNT(*) FROM txn WHERE kind='offline_charge'").fetchone()[0]
    store.close()
    wifi.close()
    return drained_s, booked, times, floor_ms


if __name__ == "__main__":
    main()
