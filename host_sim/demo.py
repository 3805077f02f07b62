"""``fieldpos demo``: a small park day on this machine, with the real broker, ledger and protocol.

Visitors get temporary cards at the front desk and spend them at the stations (the BBQ's Wi-Fi
drops for a while, so it sells offline within the policy and catches up later): a fishing pond
(menu: pick items by number), a contractor-run riding school (count: rides x price) and a BBQ
(free amount). Each station is the real terminal app with its real drivers on emulated hardware —
a cashier logs in with staff card and PIN, taps the visitor's card, types, and the emulated printer
prints both copies. Visitors who run short top up at the desk; a supervisor voids the odd sale (F3,
their card and PIN); a member family opens, spends, loses and replaces a member card through the
desk's own terminal app; at the exit the card is returned and refunded. A rental hut by the lake
(:mod:`host_sim.demo_rentals`) takes deposits online, at the desk and from a park card, hands rods
and bikes out against their vouchers and takes them back on time, late, damaged or lost. The demo
prints what happened, replays the books, and leaves every receipt as a PNG. The ledger runs the
day on a park clock (:mod:`host_sim.demo_clock`): it opens at 10:00, and the afternoon passes at once.

A seed makes the day: every choice (payment channels, what is bought, who tops up, which sale is
voided) comes from one ``random.Random(seed)``, and the only other thing that could move a figure —
whether the BBQ's till has noticed its Wi-Fi went down or came back — is waited for at the cut and
at the restore. So one seed prints the same figures every run (the README's are checked against a
run by tests/test_demo_seed.py); only the time taken, printed on its own line, varies.
"""

from collections import Counter
from pathlib import Path
import random
import time

from ledger.payments.settings import settings_path
from ledger.verify import verify_books
from protocol.money import card_account, format_fen
from terminal.config import MenuItem
from terminal.desk import card_number
from terminal.events import State
from terminal.hal.keypad import Key

from ledger.reports.offline import format_offline_exposure, offline_exposure

from .demo_clock import ParkClock
from .demo_rentals import RENTAL_DESKS, RentalHut, provision_rental_hut
from .network import CuttableLink
from .output_dir import DEMO_MARKER, claim_output_dir
from .devices.mifare import MifareClassic1K
from .rig import STAFF, ParkRig
from .station import ScriptedStation, put_sales_on_ledger

# How each demo station sells (terminal.config modes), and what a visitor buys there: set on the
# ledger, as ``fieldpos station menu|mode`` would, and sent to each till in its signed config.
STATION_SETUP = {
    "fishing": dict(mode="menu", menu=(MenuItem("钓鱼1小时 Fishing 1h", 3000), MenuItem("鱼饵 Bait", 500),
                                       MenuItem("租竿 Rod hire", 1000))),
    "riding": dict(mode="count", unit_name="20分钟 ride", unit_price_fen=8000),
    "bbq": dict(mode="free"),
}


def _member_episode(rig, desk, station, supervisor, outcomes) -> str:
    """The Zhang family at the real desk app: a member card opened on a blank card (name on the desk's
    keyboard, phone, PIN 246810 typed twice), 500 topped up ("500 get 50"), spent at a station (above
    the no-PIN limit the cashier's keypad asks for the PIN), reported lost by phone number (F2), and
    replaced on another blank card with everything on it (a supervisor's card and PIN)."""
    pin, phone = "246810", "13800138000"
    lost, replacement = MifareClassic1K(bytes.fromhex("0a11ce01")), MifareClassic1K(bytes.fromhex("0a11ce02"))
    lost_no, new_no = (card_number("member", card.uid.hex()) for card in (lost, replacement))

    def finish(what: str) -> None:
        _desk_done(desk, what, outcomes)

    desk.tap(lost)
    desk.keys("2")
    desk.keys([*"zhang wei", Key.ENTER, *phone, Key.ENTER, *pin, Key.ENTER, *pin, Key.ENTER, Key.ENTER])  # opened empty
    finish("member opened")
    desk.tap(lost)
    desk.keys("1" "500E" "2")  # top-up 500.00 by WeChat: the bonus rule adds 50.00
    finish("top-up")
    small = station.sell(lost, "1" if station.app.machine.config.mode == "menu" else "30")
    station.keys("C")
    station.tap(lost)
    station.keys("1" * 7 + "E" if station.app.machine.config.mode == "menu" else "250E")  # 210.00: above the no-PIN limit
    if station.state == State.CHARGE_PIN:
        station.keys(pin + "E")
    station.turns(lambda: station.state in (State.DONE, State.MESSAGE))
    big = station.state.name
    station.keys("C")
    desk.keys([Key.F2, *phone, Key.ENTER])  # the card is lost: found by the member's phone number
    desk.turns(lambda: desk.state in (State.DESK_CONFIRM, State.MESSAGE))
    desk.keys("E")
    finish("loss report")
    desk.tap(replacement)
    desk.keys([Key.DIGIT_3, *phone, Key.ENTER])
    desk.turns(lambda: desk.state in (State.DESK_CONFIRM, State.MESSAGE))
    desk.keys("E")
    desk.tap(supervisor)
    desk.keys(STAFF[2][4] + "E")
    desk.turns(lambda: desk.state in (State.WRITING_CARD, State.DONE, State.MESSAGE))
    if desk.state == State.WRITING_CARD:  # the supervisor's card was on the reader: the new card goes back
        desk.tap(replacement)
    finish("replacement")
    moved = rig.reader.card(rig.park_id, new_no)
    queued = lambda: rig.reader.db.execute("SELECT COUNT(*), COUNT(sent_ms) FROM notification").fetchone()  # noqa: E731
    deadline = time.monotonic() + NOTIFICATIONS_WAIT_S
    while queued()[0] != queued()[1] and time.monotonic() < deadline:
        time.sleep(0.05)  # the notifier's own thread sends them
    total, sent = queued()
    bonus = rig.reader.db.execute("SELECT SUM(amount) FROM posting WHERE asset='bonus' AND amount > 0 "
                                  "AND account_id=?", (card_account(lost_no, 1),)).fetchone()[0] or 0
    return (f"{lost_no} opened at the desk app, top-up 500.00 → bonus {_fen(bonus)}; sales {small.name.lower()}, "
            f"{big.lower()} (PIN asked); lost (F2, by phone) → {new_no} holds {_fen(moved.fen)} + "
            f"{_fen(moved.bonus)} bonus, {moved.points} points; {total} notifications queued, {sent} sent")


def _desk_done(desk, what: str, outcomes) -> None:
    """Wait for the desk's till to finish an operation, count how it ended, and clear the screen."""
    desk.turns(lambda: desk.state in (State.DONE, State.MESSAGE))
    is_done = desk.state == State.DONE or desk.app.screen.tone == "ok"  # a loss report ends on a message
    outcomes[f"desk {what}" if is_done else f"desk {what} refused"] += 1
    desk.keys("C")


def _typed_sale(station_id: str, rng: random.Random) -> str:
    """The keys a cashier presses after the tap."""
    if station_id == "fishing":
        return "".join(rng.choice("123") for _ in range(rng.randint(1, 3)))
    if station_id == "riding":
        return str(rng.randint(1, 2))
    return f"{rng.randint(15, 120)}.{rng.choice(('00', '50'))}"


def _fen(amount: int) -> str:
    return format_fen(amount, grouped=True)


# The park's accounts (card and deposit accounts aside) by what their balance means to the park, each
# shown positive the way it is meant: the ledger books a credit positive, so money the park holds (a
# channel's takings) and money owed to it (a renter's claim) are negative in its books, and printed
# as such beside revenue they read as if the park owed them. (account prefix or name, heading, sign)
ACCOUNT_GROUPS = (
    (("channel:",), "money the park holds, by how it came in", -1),
    (("claim:",), "owed to the park by renters (open claims)", -1),
    (("revenue:", "income:", "card_fee"), "earned by the park (sales, card and rental fees)", 1),
    (("contractor:",), "owed by the park to its contractors (their share)", 1),
    (("offline_loss", "promo_expense"), "borne by the park (offline losses, bonus given)", -1),
)
OTHER_ACCOUNTS = "other accounts, as booked (credit +, debit -)"


def account_lines(accounts) -> list[str]:
    """The demo's account balances, ``accounts`` (account, fen balance as booked) in order, as
    lines under a heading per ACCOUNT_GROUPS group that has any; an account no group names comes
    last, as booked."""
    groups: dict[str, list[str]] = {}
    for account, amount in accounts:
        heading, sign = next(((heading, sign) for names, heading, sign in ACCOUNT_GROUPS
                              if any(account == name or account.startswith(name) for name in names)), (OTHER_ACCOUNTS, 1))
        groups.setdefault(heading, []).append(f"      {account:<22} {_fen(sign * amount):>12}")
    order = [heading for _, heading, _ in ACCOUNT_GROUPS] + [OTHER_ACCOUNTS]
    return [line for heading in order if heading in groups for line in (f"    {heading}:", *groups[heading])]


DEFAULT_SEED = 7
# How long the demo waits for the BBQ's till to notice its Wi-Fi going or coming back (paho
# reconnects at most 8 s apart, transport/mqtt.py): a bound, not a pace.
LINK_CHANGE_WAIT_S = 30.0
# How long the member episode waits for the notifier's thread to send what it queued: the figure
# "n sent" must not depend on how busy the machine is (a bound, not a pace).
NOTIFICATIONS_WAIT_S = 60.0


def run_demo(out: Path, *, terminals: int = 4, visitors: int = 60, mqtt_version: str = "5", seed: int = DEFAULT_SEED,
             broker: str = "auto") -> int:
    """``broker``: "auto" (Mosquitto if installed, else the embedded amqtt broker), "mosquitto" or
    "embedded". The embedded broker speaks MQTT 3.1.1 only, so it overrides ``mqtt_version``.
    ``out`` must be new, empty or a previous demo's (see :mod:`host_sim.output_dir`); a demo still
    running there keeps it (its ledger's lock refuses this one)."""
    out = Path(out)
    park = ParkRig(out, mqtt_version=mqtt_version, require_login=True)
    claim_output_dir(out, marker=DEMO_MARKER, ledger_homes=[park.home.home])
    # Lock before the park exists: a second demo started now finds the home taken, not replaceable.
    park.home.home.mkdir()
    with park.home.lock_ledger():
        return _park_day(out, park, terminals=terminals, visitors=visitors, mqtt_version=mqtt_version, seed=seed,
                         broker=broker)


def _park_day(out: Path, park: ParkRig, *, terminals: int, visitors: int, mqtt_version: str, seed: int,
              broker: str) -> int:
    from .embedded_broker import EMBEDDED_MQTT_VERSION, describe_broker, is_embedded

    rng = random.Random(seed)
    station_ids = list(STATION_SETUP)[: max(1, terminals - 1)]
    layout = {"T-DESK-1": "desk"} | {f"T-{station_id.upper()}-1": station_id for station_id in station_ids}
    started = time.perf_counter()
    outcomes = Counter()
    stations, tills = [], []  # the selling stations; the desk's till
    clock = ParkClock()  # the ledger's time: the day opens at 10:00, and an afternoon passes at the rental hut
    hut = None
    with park.create(layout) as rig:
        provision_rental_hut(rig, clock)
        rig.start_broker(prefer=broker)
        version_note = ""
        if is_embedded(rig.broker) and rig.mqtt_version != EMBEDDED_MQTT_VERSION:
            # amqtt answers an MQTT 5 CONNECT with "unacceptable protocol version".
            version_note = f" (MQTT {mqtt_version} asked; the embedded broker speaks {EMBEDDED_MQTT_VERSION} only)"
            rig.mqtt_version = EMBEDDED_MQTT_VERSION
        broker_description = describe_broker(rig.broker)
        setup = rig.home.open_store()
        setup.add_bonus_rule(rig.park_id, 50000, 5000)  # the park's offer: top up 500, get 50
        setup.close()
        rig.start_ledger()
        # The ledger books and its notifier sends by the park clock (before any terminal has connected).
        rig.ledger.intake.clock_ms = rig.notifier.clock_ms = clock.now_ms
        try:
            # The BBQ's Wi-Fi is patchy: its link to the broker goes through a cable the demo pulls.
            wifi = CuttableLink(rig.port)
            for terminal_id, station_id in layout.items():
                if station_id != "desk":
                    link = rig.link(terminal_id, connect=False, port=wifi.port if station_id == "bbq" else None)
                    put_sales_on_ledger(rig, terminal_id, rig.station_config(terminal_id, **STATION_SETUP[station_id]))
                    # Its station config holds the hardware settings only: the menu comes signed.
                    station = ScriptedStation(rig, terminal_id, profile="58mm-raster", link=link)
                    station.turns(lambda: station.link.state.station is not None)
                    station.log_in(STAFF[0])
                    stations.append(station)
            # The front desk's till: Li logs in, and every card is issued, topped up and taken back
            # there from a box of blank cards, with the record written on the card by the till.
            desk = ScriptedStation(rig, "T-DESK-1", profile="58mm-raster", mode="desk", card_fee_fen=2000)
            tills.append(desk)
            desk.log_in(STAFF[1])
            supervisor = rig.virtual_card(STAFF[2][3], kind="staff")  # Zhao's card: voids and replacements
            outage = range(visitors // 3, visitors // 2)  # these visitors find the BBQ offline
            leaving = []

            def at_desk(what: str, visitor, keys: str) -> None:
                desk.tap(visitor)
                desk.keys(keys)
                _desk_done(desk, what, outcomes)

            # The rental hut by the lake: a visitor with a park card rents a rod there in the morning.
            renter = MifareClassic1K(bytes.fromhex("e0000001"))
            at_desk("issue", renter, "1100E1")
            leaving.append((renter, "1"))
            hut = RentalHut.open(rig, clock, wifi_port=wifi.port)
            hut.morning(renter)
            # The lake's Wi-Fi carries the BBQ and the rental hut.
            cut_off = [station.link for station in stations if station.link.identity.station_id == "bbq"]
            cut_off += [desk.link for desk in hut.desks]
            for number in range(1, visitors + 1):
                if number == outage.start:
                    wifi.cut()
                    _wait_for_links(cut_off, is_connected=False)
                    hut.offline_twice()
                elif number == outage.stop:
                    wifi.restore()
                    _wait_for_links(cut_off, is_connected=True)
                visitor = MifareClassic1K(bytes.fromhex(f"d0{number:06x}"))  # blank, from the box
                channel = rng.choice(("1", "2", "3"))  # cash, WeChat, Alipay
                at_desk("issue", visitor, f"1{rng.choice((50, 100, 200))}E{channel}")
                for _ in range(rng.randint(2, 4)):
                    station = rng.choice(stations)
                    ended = station.sell(visitor, _typed_sale(station.link.identity.station_id, rng))
                    if ended == State.DONE:
                        outcomes["approved" if station.app.machine.last_receipt.is_online else "approved offline"] += 1
                        if rng.random() < 0.04 and station.app.machine.is_online:
                            # A mistaken sale: F3, and the supervisor taps their card and types their PIN.
                            station.keys([Key.CANCEL, Key.F3, Key.ENTER])
                            station.tap(supervisor)
                            station.keys(STAFF[2][4] + "E")
                            station.turns(lambda: station.state in (State.DONE, State.MESSAGE))
                            outcomes["voided" if station.state == State.DONE else "void refused"] += 1
                    else:
                        outcomes["declined"] += 1
                        station.keys("E")
                        at_desk("top-up", visitor, f"1200E{channel}")
                    station.keys("C")
                leaving.append((visitor, channel))
            wifi.restore()
            _wait_for_links(cut_off, is_connected=True)
            deadline = time.monotonic() + 60
            while (any(s.link.outbox.pending_count() for s in stations) or hut.pending()) and time.monotonic() < deadline:
                time.sleep(0.1)  # the BBQ's offline sales and the hut's offline hand-outs drain into the ledger
            members = _member_episode(rig, desk, stations[0], supervisor, outcomes)
            hut.afternoon()
            # Closing time: everyone hands their card back at the exit and gets the rest refunded; a
            # card that offline sales overdrew is paid off first (which unblocks it).
            for visitor, channel in leaving:
                card_no = card_number("temporary", visitor.uid.hex())
                owed = -rig.reader.card(rig.park_id, card_no).fen
                if owed > 0:  # offline sales overdrew it: paying the debt unblocks it
                    at_desk("debt paid", visitor, f"2{format_fen(owed)}E{channel}")
                    desk.turns(lambda: (card_no, 1) not in desk.link.state.blocklist.blocked)  # the delta, over MQTT
                # The park's damage fee came in the desk's signed config: the desk asks; 1 = intact.
                desk.turns(lambda: desk.link.state.rules is not None)
                # The refund shows itemised before ENTER confirms it.
                at_desk("return", visitor, f"21{channel}E" if desk.app.machine.rules.damage_fee_fen else f"2{channel}E")
            receipts = 0
            for station in stations + tills + hut.desks:
                receipts += len(station.sim.printer.save_pngs(out / "receipts" / station.terminal_id))
                station.sim.oled.save_png(out / f"display-{station.terminal_id}.png")
            rentals = hut.summary(rig.reader, rig.park_id)
        finally:
            for station in stations + tills:
                station.close()
            if hut is not None:
                hut.close()
            # The hut's payment settings point at the provider sim, stopped now: left in the home, a
            # later `ledger serve` on it would start an endpoint whose provider is gone. The home is
            # left as a park that takes no online payments (its books keep the day's online deposits).
            settings_path(rig.home.home).unlink(missing_ok=True)
            wifi.close()
        elapsed = time.perf_counter() - started
        store = rig.reader
        report = verify_books(store)
        exposure = format_offline_exposure(offline_exposure(store, rig.park_id), clock.now_ms())
        kinds = store.db.execute("SELECT kind, COUNT(*), SUM(amount_fen) FROM txn GROUP BY kind ORDER BY kind").fetchall()
        accounts = store.db.execute(
            """SELECT account_id, SUM(amount) FROM posting WHERE asset='fen' AND account_id NOT LIKE 'card:%'
               AND account_id NOT LIKE 'deposit:%' GROUP BY account_id ORDER BY account_id"""
        ).fetchall()
    requests = sum(outcomes.values())
    print(f"fieldpos demo: {visitors} visitors, {len(layout) + len(RENTAL_DESKS)} terminals, seed {seed}, MQTT {rig.mqtt_version}"
          f"{version_note}, {broker_description} + SQLite ledger")
    print(f"  {requests} signed requests: "
          + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
    print("  transactions by kind:")
    for kind, count, amount in kinds:
        print(f"    {kind:<18} {count:>5}  {_fen(amount):>12}")
    print("  account balances:")
    for line in account_lines(accounts):
        print(line)
    print(f"  ledger verify: {report.transactions} transactions, {report.postings} postings, "
          + ("books balance" if report.is_ok else f"MISMATCH {report.problems[0]}"))
    print(f"  members: {members}")
    for line in rentals:
        print(f"  {line}")
    print(f"  (the deposits in full: fieldpos --home {out / 'ledger-home'} report deposits)")
    print(f"  {receipts} receipts printed by the emulated printers: {out / 'receipts'}")
    print("  " + "\n  ".join(exposure.split("\n\n")[0].splitlines()))
    print(f"  (the whole report: fieldpos --home {out / 'ledger-home'} report offline)")
    print(f"  park files: {out}")
    print(f"  (took {elapsed:.1f} s; the figures above are the same every run with seed {seed}: --seed varies them)")
    return 0 if report.is_ok else 1


def _wait_for_links(links, *, is_connected: bool) -> None:
    """Until every link in ``links`` is (dis)connected: a till that has not yet noticed a cut would
    try one more sale online, and the day's figures would depend on timing."""
    deadline = time.monotonic() + LINK_CHANGE_WAIT_S
    while any(link.is_connected != is_connected for link in links):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the BBQ's link did not {'come back' if is_connected else 'drop'} "
                               f"within {LINK_CHANGE_WAIT_S:.0f} s")
        time.sleep(0.05)
