"""The park's blocklist as a tap reads it: the signed snapshot and its deltas, checked as
protocol.messages checks them and applied to the tap's state.

A module of its own, loaded by tap.app for one message and dropped after it (tap.app._broadcast),
so its code is not in the heap while the tap sells.
"""

from tap import messages
from tap.errors import TapError, UNKNOWN_TYPE

CARD_ENTRY = ("CardEntry", None, "no:card_number issuance:issuance fen:balance", None)
_CARDS = "@CARD_ENTRY*0-1000"
BLOCKLIST = ("Blocklist", "blocklist", "park:id version:count issued_ms:time_ms blocked:" + _CARDS + " low:" + _CARDS,
             None)
BLOCKLIST_DELTA = ("BlocklistDelta", "blocklist_delta", "park:id from_version:count version:count issued_ms:time_ms"
                   " blocked:" + _CARDS + " unblocked:" + _CARDS + " low:" + _CARDS, None)
BROADCASTS = {"blocklist": BLOCKLIST, "blocklist_delta": BLOCKLIST_DELTA}
PARTS = {"CARD_ENTRY": CARD_ENTRY}
PARTS.update(messages.PARTS)


def entry_key(no, issuance):
    return no + ":" + str(issuance)


def take_blocklist(app, obj):
    """Apply a verified blocklist snapshot or delta (decoded) to the tap's state; True when it
    changed."""
    message = messages.check(obj, BROADCASTS, PARTS)
    if message["type"] not in ("blocklist", "blocklist_delta"):
        raise TapError(UNKNOWN_TYPE, "not a blocklist on the blocklist topic")
    app._check_ours(message)
    held = app.state.data["blocklist"]
    if message["type"] == "blocklist":
        if held is not None and (message["version"], message["issued_ms"]) <= (held["version"], held["issued_ms"]):
            return False
        app.state.data["blocklist"] = {
            "version": message["version"], "issued_ms": message["issued_ms"],
            "blocked": [entry_key(e["no"], e["issuance"]) for e in message["blocked"]],
            "low": dict((entry_key(e["no"], e["issuance"]), e["fen"]) for e in message["low"]),
        }
        return True
    if held is None or message["from_version"] != held["version"]:
        if app.client is not None:
            app.send_hello()  # missed one: the ledger re-publishes the snapshot on hello
        return False
    unblocked = [entry_key(e["no"], e["issuance"]) for e in message["unblocked"]]
    blocked = [key for key in held["blocked"] if key not in unblocked]
    for e in message["blocked"]:
        if entry_key(e["no"], e["issuance"]) not in blocked:
            blocked.append(entry_key(e["no"], e["issuance"]))
    low = held["low"]
    for e in message["low"]:
        if e["fen"] < 0:
            low.pop(entry_key(e["no"], e["issuance"]), None)
        else:
            low[entry_key(e["no"], e["issuance"])] = e["fen"]
    held.update({"version": message["version"], "issued_ms": message["issued_ms"], "blocked": blocked, "low": low})
    return True
