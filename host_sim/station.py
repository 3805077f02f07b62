"""A simulated station terminal and the cashier's hands: the real app, the real drivers on emulated
hardware, and helpers that tap cards and press keys the way a person does. Used by the tests, the
demo and the terminal simulator UI."""

import time

from terminal.app import WAIT_FOR_RESULT_S, TerminalApp, render_for_display

from terminal.events import State
from terminal.hal.factory import make_hardware
from terminal.hal.keypad import Key

from .rig import STAFF, ParkRig

KEY_NAMES = {"E": Key.ENTER, "C": Key.CANCEL, "B": Key.BACK}
# The sample rental station: rods and bikes, a staff member with the rental role, and the labels
# stuck on the items (what the desk's scanner reads).
RENTAL_STATION = ("rentals", "租赁 Rentals")
RENTAL_STAFF = ("sun", "孙丽 Sun Li", "rental", "S0004", "4567")
RENTAL_LABELS = {"rod": ("ROD-0042", "ROD-0043", "ROD-0044"), "bike": ("BIKE-07", "BIKE-08")}
# The station config's fields that say how a station sells: the ledger owns them now.
SALE_SETTINGS = frozenset({"mode", "menu", "fixed_price_fen", "unit_name", "unit_price_fen", "open_hours"})


def ledger_form(config):
    """A station config's sale settings in the ledger's form (what ``fieldpos station menu|mode|hours``
    set): a fixed price or a count station's unit becomes its first menu item."""
    from protocol.messages import MenuItem, StationSettings
    from terminal.config import COUNT, FIXED

    if config.mode == FIXED:
        menu = (MenuItem(item="price", name=config.station_name, price_fen=config.fixed_price_fen),)
    elif config.mode == COUNT:
        menu = (MenuItem(item="unit", name=config.unit_name, price_fen=config.unit_price_fen),)
    else:
        menu = tuple(MenuItem(item=f"item-{key}", name=item.name, price_fen=item.price_fen)
                     for key, item in enumerate(config.menu, start=1))
    opens, closes = config.open_hours or (None, None)
    return StationSettings(name=config.station_name, mode=config.mode, menu=menu, opens=opens, closes=closes)


def put_sales_on_ledger(rig: ParkRig, terminal_id: str, config) -> None:
    """Set the terminal's station on the ledger to sell as ``config`` says, as an operator would
    with ``fieldpos station``; a running ledger re-publishes every config. A desk or a rental desk
    sells nothing: its mode is its own."""
    from terminal.config import OWN_MODES

    if config.mode not in OWN_MODES:
        rig.home.change_station(rig.identity(terminal_id).station_id, lambda current: ledger_form(config))


def rental_types() -> tuple:
    """The sample item types: a rod by the session (late after 4 h and 15 min of grace), a bike by the hour."""
    from protocol.messages import DamageFee, RentalType

    rod = RentalType(item_type="rod", name="鱼竿 Rod", deposit_fen=5000, price_fen=1000, price_per="session",
                     allowed_minutes=240, grace_minutes=15, late_fee_per_hour_fen=500, lost_fee_fen=12000,
                     damage=(DamageFee(code="reel", name="渔轮 Reel", fee_fen=2000),
                             DamageFee(code="tip", name="竿梢 Tip", fee_fen=800)))
    bike = RentalType(item_type="bike", name="单车 Bike", deposit_fen=30000, price_fen=1500, price_per="hour",
                      allowed_minutes=0, grace_minutes=0, late_fee_per_hour_fen=0, lost_fee_fen=80000,
                      damage=(DamageFee(code="tyre", name="轮胎 Tyre", fee_fen=3000),))
    return rod, bike


def add_rental_desk(rig: ParkRig, now_ms: int, *terminal_ids: str) -> None:
    """The sample rental station, its stock and staff on the ledger, and each of ``terminal_ids``
    provisioned as one of its desks. Call it after ``rig.create`` and before the broker starts (the
    desks' logins go into its config)."""
    from ledger.park_home import STATION_KINDS

    station_id, name = RENTAL_STATION
    store = rig.home.open_store()
    try:
        store.add_station(rig.park_id, station_id, name)
        for item_type in rental_types():
            store.add_rental_type(rig.park_id, item_type)
            for label in RENTAL_LABELS[item_type.item_type]:
                store.add_rental_item(rig.park_id, label, station_id, item_type.item_type, now_ms)
    finally:
        store.close()
    for terminal_id in terminal_ids:
        rig.home.provision_terminal(terminal_id, station_id, kinds=STATION_KINDS["rental"], broker_port=rig.port)
    rig.home.add_staff(*RENTAL_STAFF)


class ScriptedStation:
    """The real station app on ``sim`` hardware, turned step by step by a test's or the demo's script
    (the window's :class:`host_sim.station_ui.StationSimulator` runs its till in a thread instead)."""

    def __init__(self, rig: ParkRig, terminal_id: str, *, profile: str = "80mm-gb18030", link=None,
                 sim_clock: str = "system", scanner: str | None = None, **config_overrides):
        """``sim_clock="manual"``: the board's clock moves only when the test says (``self.sim.clock``).
        ``scanner``: "evdev" (the default: a USB keyboard wedge) or "serial"; "none" for a till without one."""
        self.rig = rig
        self.terminal_id = terminal_id
        # Every till has a 2D scanner (a USB keyboard wedge, the common kind): a rental desk reads
        # vouchers and labels with it, a station or desk a member's e-card QR (issue 17).
        scanner = scanner or "evdev"
        self.hardware = make_hardware("sim", config={"printer_profile": profile, "sim_clock": sim_clock,
                                                     "scanner": scanner})
        self.sim = self.hardware.sim
        self.link = link or rig.link(terminal_id, connect=False)
        config = rig.station_config(terminal_id, **config_overrides)
        if SALE_SETTINGS & config_overrides.keys():
            # How the station sells is the ledger's to say: a script's settings go there, and the
            # station config keeps them only as the fallback until the signed config arrives.
            put_sales_on_ledger(rig, terminal_id, config)
        self.app = TerminalApp(self.link, config, self.hardware, render=render_for_display)
        # A scripted cashier presses keys only between turns, so a turn need not wait for one.
        self.app.key_wait_s = 0.001
        self.app.boot()

    @property
    def state(self) -> State:
        return self.app.machine.state

    def turns(self, until, limit: int = 200) -> None:
        """Let the terminal run until ``until()`` holds (bounded: a stuck screen fails loudly)."""
        for _ in range(limit):
            if until():
                return
            self.app.turn()
        raise AssertionError(f"{self.terminal_id} stayed in {self.state} showing {self.app.screen}")

    def tap(self, virtual_card) -> None:
        self.sim.field.remove()
        self.sim.field.present(virtual_card)
        before = self.state
        self.turns(lambda: self.state != before)
        self.settle()

    def keys(self, text) -> None:
        """Press keys: digits and '.', E = ENTER, C = CANCEL, B = BACK, or Key members in a list."""
        for item in text:
            key = item if isinstance(item, Key) else KEY_NAMES.get(item) or Key.for_character(item)
            self.sim.keypad.press(key)
            self.app.turn()
            self.settle()

    def settle(self) -> None:
        """Turn while the till awaits the ledger's first answer, as a cashier watches the screen
        (the till itself never blocks on it); bounded by the till's own wait for that answer."""
        deadline_s = time.monotonic() + WAIT_FOR_RESULT_S + 10
        while self.app.is_awaiting_answer:
            if time.monotonic() > deadline_s:
                raise AssertionError(f"{self.terminal_id} still awaits an answer in {self.state}")
            self.app.turn()

    def scan(self, text: str) -> None:
        """Scan a code (a voucher's QR, an item's label, a member's e-card QR) with the till's scanner."""
        self.sim.scanner.scan(text)
        before = (self.state, self.app.screen)
        self.turns(lambda: (self.state, self.app.screen) != before)
        self.settle()

    def log_in(self, staff=STAFF[0]) -> None:
        self.tap(self.rig.virtual_card(staff[3], kind="staff"))
        self.keys(staff[4] + "E")
        if self.state != State.IDLE:
            raise AssertionError(f"login failed: {self.app.screen}")

    def sell(self, virtual_card, typed: str) -> State:
        """Tap, type (amount, count or menu keys) and ENTER; returns where the terminal ended up."""
        self.tap(virtual_card)
        if self.state in (State.AMOUNT, State.COUNT, State.MENU):
            self.keys(typed + "E")
        self.turns(lambda: self.state in (State.DONE, State.MESSAGE, State.PRINTER_PROBLEM, State.CHARGE_PIN))
        return self.state

    def close(self) -> None:
        self.hardware.close()
