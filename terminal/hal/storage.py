"""Where the terminal keeps what must survive a power cut (its outbox), and how much room is left.

A backend subclasses :class:`Storage` and implements :meth:`Storage.path` and
:meth:`Storage.free_bytes`. On a Pi it is a directory on the SD card (``DirectoryStorage``); in the
simulator and in tests, a temporary directory. An SD card that is nearly full is a queue that cannot
grow: the app warns on the idle screen long before (see ``LOW_SPACE_BYTES``).
"""

from __future__ import annotations

import abc
import os
from pathlib import Path

# Warn below this: 10,000 queued requests take about 10 MB in the outbox; leave room to spare.
LOW_SPACE_BYTES = 64 * 1024 * 1024


class Storage(abc.ABC):
    @abc.abstractmethod
    def path(self, name: str) -> Path:
        """The path of the durable file ``name`` (its directory exists)."""

    @abc.abstractmethod
    def free_bytes(self) -> int:
        """Bytes still free for the terminal's files."""

    @property
    def is_low(self) -> bool:
        return self.free_bytes() < LOW_SPACE_BYTES


class DirectoryStorage(Storage):
    """Files in one directory (on a Pi: beside the provisioning bundle, on the SD card)."""

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"a storage name is a plain file name, not {name!r}")
        return self.directory / name

    def free_bytes(self) -> int:
        stats = os.statvfs(self.directory)
        return stats.f_bavail * stats.f_frsize
