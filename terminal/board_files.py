"""The two files a board boots from — its provisioning bundle and its station config — checked the
way the till loads them at boot.

One function for ``fieldpos terminal check`` and for ``flash.sh`` (which runs
``python -m terminal.board_files BUNDLE CONFIG`` before it writes a card), so the two can never
accept or refuse different files: flash.sh once checked a handful of keys and wrote a config the
till then refused on the pole by the pond.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import sys

from protocol.errors import FieldposError
from transport.broker_config import is_loopback_host

from .config import StationConfig
from .identity import TerminalIdentity


@dataclass
class BoardFiles:
    """What loaded: each file's parsed form, or the one-line reason it was refused (per part)."""

    identity: TerminalIdentity | None = None
    config: StationConfig | None = None
    problems: dict[str, str] = field(default_factory=dict)  # "bundle" / "station" -> why it was refused

    @property
    def is_usable(self) -> bool:
        return not self.problems


def load_board_files(bundle_path, config_path) -> BoardFiles:
    """Load both files as the till does; a refused file is noted, never raised, so the caller can
    still report the other one (and test the hardware)."""
    found = BoardFiles()
    try:
        found.identity = TerminalIdentity.load(bundle_path)
    except FieldposError as error:
        found.problems["bundle"] = str(error)
    except OSError as error:  # a folder, or a file this user may not read
        found.problems["bundle"] = f"cannot read the bundle {bundle_path}: {error.strerror}"
    try:
        found.config = StationConfig.load(config_path)
    except FieldposError as error:
        found.problems["station"] = str(error)
    except OSError as error:
        found.problems["station"] = f"cannot read the station config {config_path}: {error.strerror}"
    except (ValueError, TypeError, AttributeError) as error:  # not JSON, or not a JSON object of settings
        found.problems["station"] = f"station config {config_path} is not a JSON object of settings: {error}"
    return found


def loopback_warning(identity: TerminalIdentity) -> str | None:
    """A warning when the bundle sends the till to this machine's own loopback (no Pi reaches it)."""
    host = identity.broker.host
    if not is_loopback_host(host):
        return None
    return (f"warning: {identity.terminal_id}'s broker host is {host}, a loopback address: on a Pi it reaches only "
            f"the Pi itself; provision it again with --broker-host set to the ledger host's address on the park's network")


def main(argv: list[str]) -> int:
    """``python -m terminal.board_files BUNDLE CONFIG``: the terminal id on stdout when both files load
    (and a warning on stderr for a loopback broker host); one line per refused file and exit 1 if not."""
    if len(argv) != 2:
        print("usage: python -m terminal.board_files BUNDLE CONFIG", file=sys.stderr)
        return 2
    found = load_board_files(*argv)
    for part, problem in found.problems.items():
        print(f"{part}: {problem}", file=sys.stderr)
    if not found.is_usable:
        return 1
    if (warning := loopback_warning(found.identity)) is not None:
        print(warning, file=sys.stderr)
    print(found.identity.terminal_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
