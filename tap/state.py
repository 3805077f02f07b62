"""What the tap keeps on its flash, in one JSON file replaced whole on every change: the last seq
it used, its outbox (the signed requests not yet answered), the blocklist it took, its offline
counters; and beside it, raw bytes as signed, the newest config
(``<path>.config``) and each unanswered request (``<path>.<seq>``): as hex inside the JSON they
would take three times their size in a small heap, and a request's 400 bytes need not stay in the
heap at all while it waits. Written before a request is sent, so a reboot never reuses a seq nor
forgets a sale (PROTOCOL.md §5.4).

The file is written beside the old one and renamed over it: a power cut leaves the old or the new
file, never half of one (littlefs and FAT renames on MicroPython, POSIX on the unix port).
"""

import json
import os

# A tap sells one thing at a time and a board's flash is small: a full outbox stops selling.
MAX_OUTBOX = 20


class StateError(Exception):
    pass


def _replace(path, content):
    """Write ``content`` (bytes, or a dict written as JSON) beside ``path`` and rename it over
    ``path``. A dict is streamed: the whole JSON text at once is one more large block."""
    temporary = path + ".new"
    with open(temporary, "wb" if type(content) is not dict else "w") as file:
        if type(content) is dict:
            json.dump(content, file)
        else:
            file.write(content)
    os.rename(temporary, path)


def _empty():
    return {
        "seq": 0,
        "outbox": [],           # {"seq", "kind", "sha256", "card", "amount_fen"}; the payload in <path>.<seq>
        "blocklist": None,      # {"version", "issued_ms", "blocked": ["NO:ISSUANCE"], "low": {"NO:ISSUANCE": fen}}
        "offline": {"count": 0, "total_fen": 0, "cards": {}, "last_contact_ms": 0},
    }


class TapState:
    def __init__(self, path):
        self.path = path
        self.data = _empty()
        try:
            with open(path) as file:
                loaded = json.load(file)
        except OSError:
            return  # first boot
        except ValueError:
            raise StateError(path + " is damaged: restore it or re-flash the tap")
        for key in self.data:
            if key in loaded:
                self.data[key] = loaded[key]

    def save(self):
        _replace(self.path, self.data)

    def config_payload(self):
        """The signed config payload saved last, or None."""
        try:
            with open(self.path + ".config", "rb") as file:
                return file.read()
        except OSError:
            return None

    def save_config_payload(self, payload):
        _replace(self.path + ".config", payload)

    # ------------------------------------------------------------ seq and outbox
    def take_seq(self, at_least=0):
        """The next seq, above ``at_least`` (the ledger's highest, from its Welcome). Not saved:
        the caller saves it together with the request that uses it."""
        self.data["seq"] = max(self.data["seq"], at_least) + 1
        return self.data["seq"]

    def skip_to(self, highest):
        """A Welcome said the ledger has decided up to ``highest``: never use a seq at or below it."""
        if highest > self.data["seq"]:
            self.data["seq"] = highest
            self.save()

    def outbox(self):
        return self.data["outbox"]

    def queue(self, entry, payload):
        """Keep a signed request until its final answer: the payload's file first, then the
        JSON naming it (a power cut between leaves a file nothing names, overwritten later)."""
        if len(self.data["outbox"]) >= MAX_OUTBOX:
            raise StateError("the outbox is full: the ledger has not answered " + str(MAX_OUTBOX) + " requests")
        _replace(self._payload_path(entry), payload)
        self.data["outbox"].append(entry)
        self.save()

    def _payload_path(self, entry):
        return self.path + "." + str(entry["seq"])

    def payload(self, entry):
        """The signed request of an outbox entry, as it was first sent."""
        with open(self._payload_path(entry), "rb") as file:
            return file.read()

    def settle(self, sha256):
        """Drop the request with this hash from the outbox; the entry, or None."""
        for entry in self.data["outbox"]:
            if entry["sha256"] == sha256:
                self.data["outbox"].remove(entry)
                self.save()
                try:
                    os.remove(self._payload_path(entry))
                except OSError:
                    pass  # already gone: the JSON no longer names it, which is what counts
                return entry
        return None
