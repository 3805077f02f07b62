"""Selling when the ledger does not answer: within the park's signed offline policy only, as an
``offline_charge`` that supersedes the unanswered attempt (the ledger applies at most one).

The policy's ``max_reboots`` (reboots while offline) needs no count here: a tap sells offline only
once the ledger set its clock since boot, so every offline sale is in the boot that last heard the
ledger. A tap that restarts again and again is stopped by tap.reboots instead.

A module of its own: tap.app loads it only when a Result did not come, so a tap that is online
does not carry it in its heap.
"""

from tap import hal, messages
from tap.errors import VALUE_OUT_OF_RANGE

def _whole(obj):
    messages.CHARGE[3](obj)  # the lines add up
    if obj["pin_sha256"] is not None:
        messages._fail("pin_sha256", "an offline sale never carries a PIN", VALUE_OUT_OF_RANGE)
    if obj["supersedes_seq"] is not None and obj["supersedes_seq"] >= obj["seq"]:
        messages._fail("supersedes_seq", "must name an earlier seq", VALUE_OUT_OF_RANGE)


OFFLINE_CHARGE = ("OfflineCharge", "offline_charge", messages.CHARGE[2] + " supersedes_seq:seq? approved_ms:time_ms",
                  _whole)


def entry_key(no, issuance):
    return no + ":" + str(issuance)


def refusal(app, record, amount_fen):
    """Why the tap may not sell offline now, or None when the signed policy allows it."""
    if app.clock_offset_ms is None:
        return "the clock was not set by the ledger since boot"
    policy = app.config["offline"]
    counters = app.state.data["offline"]
    held = app.state.data["blocklist"]
    now = app.now_ms()
    key = entry_key(record.card_no, record.issuance)
    if "fixed" not in policy["allowed_modes"].split(","):
        return "the park does not allow fixed-price sales offline"
    if held is None or now - held["issued_ms"] > policy["blocklist_max_age_ms"]:
        return "the blocklist is too old"
    if now - counters["last_contact_ms"] > policy["max_offline_ms"]:
        return "offline for too long"
    if amount_fen > policy["max_transaction_fen"] or counters["count"] + 1 > policy["max_count"]:
        return "over the offline sale limits"
    if counters["total_fen"] + amount_fen > policy["max_terminal_fen"]:
        return "over the terminal's offline total"
    if counters["cards"].get(key, 0) + amount_fen > policy["max_card_fen"]:
        return "over the card's offline total"
    if key in held["low"] and held["low"][key] < amount_fen:
        return "the card's balance is too low"
    return None


def sell(app, entry, record, amount_fen, item):
    """The sale the ledger did not answer, sold offline if the policy allows: (outcome, lines)."""
    why = refusal(app, record, amount_fen)
    if why is not None:
        return hal.PENDING, ("无应答 No answer: not sold (" + why + ")",)
    counters = app.state.data["offline"]
    counters["count"] += 1
    counters["total_fen"] += amount_fen
    key = entry_key(record.card_no, record.issuance)
    counters["cards"][key] = counters["cards"].get(key, 0) + amount_fen
    fields = app.charge_fields(record, amount_fen, item)
    fields["supersedes_seq"] = entry["seq"]
    fields["approved_ms"] = app.now_ms()
    app.queue("offline_charge", OFFLINE_CHARGE, fields, record, amount_fen)  # StateError goes to the caller
    return hal.APPROVED, ("离线已付 Paid offline " + hal.yuan(amount_fen),)
