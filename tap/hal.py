"""The tap's few outputs, behind one small interface: a green and a red LED, a buzzer and an
optional text display. ``show(outcome, lines)`` is all the application calls.

Outcomes: "approved", "declined" (the ledger said no, or the card is blocked), "pending" (no final
answer: the tap keeps the request and sends it again), "error" (the tap cannot sell: no config, a
card it cannot read), "ready", "fault" (the tap stopped itself after restarting too often:
tap.reboots).
"""

APPROVED = "approved"
DECLINED = "declined"
PENDING = "pending"
ERROR = "error"
READY = "ready"
FAULT = "fault"  # the tap stopped itself (tap.reboots): red on, nothing sold


def yuan(fen):
    """Fen as yuan for a display: 1500 -> "15.00"."""
    sign = "-" if fen < 0 else ""
    fen = -fen if fen < 0 else fen
    return sign + str(fen // 100) + "." + ("0" + str(fen % 100))[-2:]


class PrintHal:
    """The unix port's and the tests' outputs: one line per show, on stdout."""

    def __init__(self):
        self.shown = []

    def show(self, outcome, lines):
        self.shown.append((outcome, tuple(lines)))
        print("TAP", outcome, "|", " | ".join(lines))


class PinHal:
    """A board's LEDs and buzzer on GPIO pins (``machine.Pin`` objects), and a display with
    ``text(lines)`` if one is fitted (an SSD1306 driver, say). One short beep for approved, three
    for declined."""

    def __init__(self, green, red, buzzer=None, display=None, sleep_ms=None):
        self.green = green
        self.red = red
        self.buzzer = buzzer
        self.display = display
        self.sleep_ms = sleep_ms

    def _beep(self, times):
        if self.buzzer is None or self.sleep_ms is None:
            return
        for _ in range(times):
            self.buzzer.value(1)
            self.sleep_ms(80)
            self.buzzer.value(0)
            self.sleep_ms(80)

    def show(self, outcome, lines):
        self.green.value(1 if outcome == APPROVED else 0)
        self.red.value(1 if outcome in (DECLINED, ERROR, FAULT) else 0)
        if outcome == APPROVED:
            self._beep(1)
        elif outcome in (DECLINED, ERROR):
            self._beep(3)
        if self.display is not None:
            self.display.text(lines)
