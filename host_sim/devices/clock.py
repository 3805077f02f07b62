"""A clock a test sets and moves by hand, with the :class:`terminal.hal.clock.Clock` interface.

:meth:`ManualClock.advance_ms` moves both clocks, as time passing does; :meth:`ManualClock.set_now_ms`
moves only the wall clock, as NTP does when it first answers after a Pi booted without a real-time
clock (the wall clock may go backwards, the monotonic one never does)::

    clock = ManualClock()
    clock.advance_ms(30_000)        # the idle screen's time-out has passed
    clock.set_now_ms(0)             # NTP not reached yet: the terminal thinks it is 1970
"""

from __future__ import annotations

from terminal.hal.clock import Clock

# 2026-05-01 10:00 in the park's time zone (UTC+8): a park opening hour, so test receipts read sensibly.
DEFAULT_START_MS = 1_777_600_800_000


class ManualClock(Clock):
    """Time that moves only when the test says so."""

    def __init__(self, now_ms: int = DEFAULT_START_MS, monotonic_ms: int = 0):
        self._now_ms = _check_milliseconds("now_ms", now_ms)
        self._monotonic_ms = _check_milliseconds("monotonic_ms", monotonic_ms)

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic_ms(self) -> int:
        return self._monotonic_ms

    def advance_ms(self, duration_ms: int) -> None:
        """Let ``duration_ms`` pass: both clocks move forward."""
        if _check_milliseconds("duration_ms", duration_ms) < 0:
            raise ValueError(f"time only moves forward; cannot advance by {duration_ms} ms")
        self._now_ms += duration_ms
        self._monotonic_ms += duration_ms

    def set_now_ms(self, now_ms: int) -> None:
        """Set the wall clock (an NTP step); the monotonic clock does not move."""
        self._now_ms = _check_milliseconds("now_ms", now_ms)


def _check_milliseconds(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be integer milliseconds, not {type(value).__name__}")
    return value
