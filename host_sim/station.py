"""A simulated station terminal and the cashier's hands: the real app, the real drivers on emulated
hardware, and helpers that tap cards and press keys the way a person does. Used by the tests, the
demo and the terminal simulator UI."""

from terminal.app import TerminalApp, render_for_display
from terminal.events import State
from terminal.hal.factory import make_hardware
from terminal.hal.keypad import Key

from .rig import STAFF, ParkRig

KEY_NAMES = {"E": Key.ENTER, "C": Key.CANCEL, "B": Key.BACK}


class ScriptedStation:
    """The real station app on ``sim`` hardware, turned step by step by a test's or the demo's script
    (the window's :class:`host_sim.station_ui.StationSimulator` runs its till in a thread instead)."""

    def __init__(self, rig: ParkRig, terminal_id: str, *, profile: str = "80mm-gb18030", link=None,
                 sim_clock: str = "system", **config_overrides):
        """``sim_clock="manual"``: the board's clock moves only when the test says (``self.sim.clock``)."""
        self.rig = rig
        self.terminal_id = terminal_id
        self.hardware = make_hardware("sim", config={"printer_profile": profile, "sim_clock": sim_clock})
        self.sim = self.hardware.sim
        self.link = link or rig.link(terminal_id, connect=False)
        self.app = TerminalApp(self.link, rig.station_config(terminal_id, **config_overrides), self.hardware,
                               render=render_for_display)
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

    def keys(self, text) -> None:
        """Press keys: digits and '.', E = ENTER, C = CANCEL, B = BACK, or Key members in a list."""
        for item in text:
            key = item if isinstance(item, Key) else KEY_NAMES.get(item) or Key.for_character(item)
            self.sim.keypad.press(key)
            self.app.turn()

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
