"""The one line ``fieldpos ledger serve`` prints on stdout once it is up (issue 12, item 7).

An operator who starts the ledger by hand, without ``-v``, otherwise sees nothing at all and cannot
tell a ledger that serves from one still looking for its broker. The line goes to stdout, not the
log: it is the command's answer, and under systemd stdout lands in the journal all the same.

It is printed once, at the first subscribe. After a reconnect the ledger is the same ledger serving
the same park; the broker outage and the reconnect are already in the log (warnings), and a banner
per reconnect would fill a hand-started terminal during a flapping network.
"""

import sys
import threading


def serving_line(park_id: str, terminal_count: int, host: str, port: int, mqtt_version: str) -> str:
    terminals = "1 terminal" if terminal_count == 1 else f"{terminal_count} terminals"
    return f"fieldpos ledger: park {park_id} serving {terminals} via {host}:{port} (MQTT {mqtt_version})"


def announce_when_subscribed(is_subscribed: threading.Event, line: str, out=None) -> threading.Thread:
    """Print ``line`` once ``is_subscribed`` is first set. A daemon thread: the service runs on the
    main thread, and a ledger stopped before it ever reached the broker prints nothing (it never
    served)."""

    def wait_then_print():
        is_subscribed.wait()
        # Flushed: stdout is a pipe under systemd or a supervisor, and the line would otherwise sit
        # in the buffer until the ledger stops.
        print(line, file=out or sys.stdout, flush=True)

    thread = threading.Thread(target=wait_then_print, name="serving-line", daemon=True)
    thread.start()
    return thread
