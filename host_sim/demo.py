"""``fieldpos demo``: a small park day on this machine, with the real broker, ledger and protocol.

Visitors get temporary cards at the front desk, spend at the fishing pond and the contractor-run
riding school, top up, sometimes have a sale voided, and hand their cards back at the exit. At the
end the demo prints what happened and replays the books.
"""

from collections import Counter
from pathlib import Path
import random
import shutil
import time

from ledger.verify import verify_books
from protocol.messages import CardIssue, CardReturn, Charge, LineItem, TopUp, Void

from .rig import ParkRig, card, common

MENU = {
    "fishing": [("钓鱼 1小时 Fishing 1h", 3000), ("鱼饵 Bait", 500), ("租竿 Rod hire", 1000)],
    "riding": [("骑马 20分钟 Pony ride", 8000), ("骑马 1小时 Trail ride", 18000)],
}


def _fen(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100:,}.{abs(amount) % 100:02d}"


def run_demo(out: Path, *, terminals: int = 3, visitors: int = 60, mqtt_version: str = "5", seed: int = 7,
             broker: str = "auto") -> int:
    """``broker``: "auto" (Mosquitto if installed, else the embedded amqtt broker), "mosquitto" or
    "embedded". The embedded broker speaks MQTT 3.1.1 only, so it overrides ``mqtt_version``."""
    from .embedded_broker import EMBEDDED_MQTT_VERSION, describe_broker, is_embedded

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = random.Random(seed)
    station_ids = ["fishing", "riding"] * terminals
    layout = {"T-DESK-1": "desk"} | {f"T-{s.upper()[:4]}-{i + 1}": s for i, s in enumerate(station_ids[: max(1, terminals - 1)])}
    started = time.perf_counter()
    outcomes = Counter()
    with ParkRig(out, mqtt_version=mqtt_version).create(layout) as rig:
        rig.start_broker(prefer=broker)
        version_note = ""
        if is_embedded(rig.broker) and rig.mqtt_version != EMBEDDED_MQTT_VERSION:
            # amqtt answers an MQTT 5 CONNECT with "unacceptable protocol version".
            version_note = f" (MQTT {mqtt_version} asked; the embedded broker speaks {EMBEDDED_MQTT_VERSION} only)"
            rig.mqtt_version = EMBEDDED_MQTT_VERSION
        broker_description = describe_broker(rig.broker)
        rig.start_ledger()
        links = {terminal_id: rig.link(terminal_id) for terminal_id in layout}
        for link in links.values():
            link.sync_seq()
        desk = links["T-DESK-1"]
        stations = [links[t] for t, s in layout.items() if s != "desk"]

        def submit(link, build):
            result = link.submit(build)
            outcomes[result.outcome] += 1
            return result

        for number in range(1, visitors + 1):
            visitor = card(f"D{number:05d}")
            opening = rng.choice((5000, 10000, 20000, 30000))
            channel = rng.choice(("cash", "wechat", "alipay"))
            submit(desk, lambda seq: CardIssue(**common(desk, seq, visitor, "desk-li"), card_kind="temporary",
                                               card_fee_fen=2000, opening_fen=opening, channel=channel, payment_ref=""))
            for _ in range(rng.randint(2, 5)):
                link = rng.choice(stations)
                name, price = rng.choice(MENU[link.identity.station_id])
                qty = rng.randint(1, 2)
                sale = submit(link, lambda seq: Charge(**common(link, seq, visitor, "cashier-wang"), amount_fen=price * qty,
                                                       lines=(LineItem(item=name, qty=qty, unit_fen=price),)))
                if sale.reason == "INSUFFICIENT_FUNDS":
                    submit(desk, lambda seq: TopUp(**common(desk, seq, visitor, "desk-li"), amount_fen=20000,
                                                   channel=channel, payment_ref=f"TOPUP-{number:05d}"))
                elif sale.is_approved and rng.random() < 0.05:
                    submit(link, lambda seq: Void(**common(link, seq, visitor, "supervisor-zhao"),
                                                  original_seq=sale.seq, amount_fen=price * qty))
            submit(desk, lambda seq: CardReturn(**common(desk, seq, visitor, "desk-li"), channel=channel, payment_ref=""))
        elapsed = time.perf_counter() - started
        store = rig.ledger.intake.store
        report = verify_books(store)
        kinds = store.db.execute("SELECT kind, COUNT(*), SUM(amount_fen) FROM txn GROUP BY kind ORDER BY kind").fetchall()
        accounts = store.db.execute(
            """SELECT account_id, SUM(amount) FROM posting WHERE asset='fen' AND account_id NOT LIKE 'card:%'
               GROUP BY account_id ORDER BY account_id"""
        ).fetchall()
    requests = sum(outcomes.values())
    print(f"fieldpos demo: {visitors} visitors, {len(layout)} terminals, MQTT {rig.mqtt_version}{version_note}, "
          f"{broker_description} + SQLite ledger")
    print(f"  {requests} signed requests in {elapsed:.1f} s: "
          + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
    print("  transactions by kind:")
    for kind, count, amount in kinds:
        print(f"    {kind:<12} {count:>5}  {_fen(amount):>12}")
    print("  account balances (negative = money the park holds):")
    for account, amount in accounts:
        print(f"    {account:<22} {_fen(amount):>12}")
    print(f"  ledger verify: {report.transactions} transactions, {report.postings} postings, "
          + ("books balance" if report.is_ok else f"MISMATCH {report.problems[0]}"))
    print(f"  park files: {out}")
    return 0 if report.is_ok else 1
