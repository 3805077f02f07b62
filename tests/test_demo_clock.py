"""The demo's park clock: the day opens at 10:00 on the business day the demo runs in, whatever the
hour, and only ever moves on (the rental hut's afternoon)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from host_sim.demo_clock import ParkClock

ZONE = ZoneInfo("Asia/Shanghai")


def local(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, ZONE)


def test_the_day_opens_at_ten_on_the_business_day_it_runs_in():
    def business_day():
        return (datetime.now(ZONE) - timedelta(minutes=240)).date()

    days = {business_day()}
    opened = local(ParkClock().now_ms())
    days.add(business_day())  # run at the stroke of the day's cut-off: either day is right
    assert opened.date() in days
    assert (opened.hour, opened.minute) == (10, 0)


def test_an_afternoon_passes_at_once_and_the_clock_never_goes_back():
    clock = ParkClock()
    before = clock.now_ms()
    clock.advance(270 * 60_000)
    after = clock.now_ms()
    assert 270 * 60_000 <= after - before < 271 * 60_000
    assert (local(after).hour, local(after).minute) in ((14, 30), (14, 31))  # still the same business day
    with pytest.raises(ValueError):
        clock.advance(-1)
