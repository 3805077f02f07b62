"""Ids (park, terminal, station, operator, key) and topics, as protocol.topics has them.

An id is 1-32 of ``A-Z a-z 0-9 _ . -``, first a letter or digit, so it can never form an MQTT
wildcard or an extra topic level. Checked by hand: MicroPython's ``re`` has no ``{m,n}``.
"""

from tap.errors import TapError

MAX_ID_CHARS = 32
ROOT = "fieldpos/v1"
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ID_CHARS = _ALNUM + "_.-"


def is_id(value):
    return (type(value) is str and 1 <= len(value) <= MAX_ID_CHARS and value[0] in _ALNUM
            and all(char in _ID_CHARS for char in value))


def check(value, what="id"):
    if not is_id(value):
        raise TapError("LOCAL", what + " must be 1-32 of A-Z a-z 0-9 _ . -")
    return value


def request_topic(park, terminal):
    return ROOT + "/" + check(park, "park") + "/t/" + check(terminal, "terminal") + "/req"


def result_topic(park, terminal):
    return ROOT + "/" + check(park, "park") + "/t/" + check(terminal, "terminal") + "/res"


def status_topic(park, terminal):
    return ROOT + "/" + check(park, "park") + "/t/" + check(terminal, "terminal") + "/status"


def config_topic(park, terminal):
    return ROOT + "/" + check(park, "park") + "/t/" + check(terminal, "terminal") + "/cfg"


def blocklist_topic(park):
    return ROOT + "/" + check(park, "park") + "/blocklist"
