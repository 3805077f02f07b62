"""The park clock of ``fieldpos demo``: the ledger's time during a simulated park day.

The day opens at 10:00 in the park's time zone on the business day the demo runs in, and runs at the
wall clock's pace from there; ``advance`` lets an afternoon pass at once (the rental desk's rods come
back late). Why not the wall clock: a day that moved on a few hours past the park's day cut-off
(04:00) would split its books over two business days, so the figures and the reports' day would
depend on the hour the demo was started. The tills need no setting: they keep time in ledger terms
from the ledger's answers. Only the payment provider's signatures stay on the wall clock (they are
checked against it), see :class:`host_sim.demo_rentals.ParkClockBook`.
"""

from datetime import datetime, time as time_of_day, timedelta
import threading
import time
from zoneinfo import ZoneInfo

OPENING = time_of_day(10, 0)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ParkClock:
    def __init__(self, time_zone: str = "Asia/Shanghai", *, day_cutoff_minutes: int = 240):
        zone = ZoneInfo(time_zone)
        business_day = (datetime.now(zone) - timedelta(minutes=day_cutoff_minutes)).date()
        opening_ms = int(datetime.combine(business_day, OPENING, zone).timestamp() * 1000)
        self._lock = threading.Lock()
        self._offset_ms = opening_ms - wall_ms()

    def now_ms(self) -> int:
        with self._lock:
            return wall_ms() + self._offset_ms

    def advance(self, ms: int) -> None:
        """Let ``ms`` pass at once (never backwards: the ledger's time only moves on)."""
        if ms < 0:
            raise ValueError("the park clock never goes back")
        with self._lock:
            self._offset_ms += ms
