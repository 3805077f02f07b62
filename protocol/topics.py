"""MQTT topic names. Park and terminal ids are restricted so they can never inject a wildcard."""

import re

from .errors import LocalProtocolError
from .limits import MAX_ID_CHARS

ROOT = "fieldpos/v1"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,%d}$" % (MAX_ID_CHARS - 1))


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid park/terminal/station/key id, else raise."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise LocalProtocolError(f"{what} {value!r} must be 1-{MAX_ID_CHARS} of A-Z a-z 0-9 _ . -")
    return value


def request(park: str, terminal: str) -> str:
    return f"{ROOT}/{check_id(park, 'park')}/t/{check_id(terminal, 'terminal')}/req"


def result(park: str, terminal: str) -> str:
    return f"{ROOT}/{check_id(park, 'park')}/t/{check_id(terminal, 'terminal')}/res"


def status(park: str, terminal: str) -> str:
    return f"{ROOT}/{check_id(park, 'park')}/t/{check_id(terminal, 'terminal')}/status"


def config(park: str, terminal: str) -> str:
    return f"{ROOT}/{check_id(park, 'park')}/t/{check_id(terminal, 'terminal')}/cfg"


def blocklist(park: str) -> str:
    return f"{ROOT}/{check_id(park, 'park')}/blocklist"


def all_requests(park: str) -> str:
    """The ledger's subscription: every terminal's request topic in one park."""
    return f"{ROOT}/{check_id(park, 'park')}/t/+/req"


def all_statuses(park: str) -> str:
    """The ledger's subscription to every terminal's heartbeat in one park."""
    return f"{ROOT}/{check_id(park, 'park')}/t/+/status"


_STATUS = re.compile(r"fieldpos/v1/([^/+#]+)/t/([^/+#]+)/status")


def parse_status_topic(topic: str) -> tuple[str, str] | None:
    match = _STATUS.fullmatch(topic)
    if not match or not _ID.fullmatch(match.group(1)) or not _ID.fullmatch(match.group(2)):
        return None
    return match.group(1), match.group(2)


_REQUEST = re.compile(r"fieldpos/v1/([^/+#]+)/t/([^/+#]+)/req")


def parse_request_topic(topic: str) -> tuple[str, str] | None:
    """(park, terminal) for a request topic, or None if ``topic`` is not one."""
    match = _REQUEST.fullmatch(topic)
    if not match or not _ID.fullmatch(match.group(1)) or not _ID.fullmatch(match.group(2)):
        return None
    return match.group(1), match.group(2)
