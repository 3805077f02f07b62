"""Time as the terminal app sees it: wall-clock milliseconds for records, monotonic ones for waits.

A backend subclasses :class:`Clock` and must implement :meth:`Clock.now_ms` and
:meth:`Clock.monotonic_ms`. The real one is :class:`SystemClock`; tests use
``host_sim.devices.clock.ManualClock``, which moves only when told.

The two are kept apart on purpose: a Pi has no battery-backed clock, so its wall clock starts at the
last shutdown time and jumps when NTP answers. Time-outs and idle screens measure with
:meth:`Clock.monotonic_ms`, which never jumps; only what is recorded (a sale's time) uses
:meth:`Clock.now_ms`.
"""

from __future__ import annotations

import abc
import time

NANOSECONDS_PER_MILLISECOND = 1_000_000


class Clock(abc.ABC):
    """A source of time in integer milliseconds."""

    @abc.abstractmethod
    def now_ms(self) -> int:
        """Wall-clock time: milliseconds since 1970-01-01 UTC. May jump (NTP), even backwards."""

    @abc.abstractmethod
    def monotonic_ms(self) -> int:
        """Milliseconds since an arbitrary start; never goes backwards. For measuring waits."""


class SystemClock(Clock):
    """The operating system's clocks."""

    def now_ms(self) -> int:
        return time.time_ns() // NANOSECONDS_PER_MILLISECOND

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // NANOSECONDS_PER_MILLISECOND
