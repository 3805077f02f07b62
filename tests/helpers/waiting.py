"""Bounded waits: tests poll for what another thread or process will make true, never sleep blind."""

import time


def wait_until(condition, timeout_s: float = 15, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
