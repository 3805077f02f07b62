"""The tap's signed config as the ledger broadcasts it, checked as protocol.messages checks it.

A module of its own because a tap reads a config at boot and seldom after: tap.app loads it for
one message and drops it again (tap.app._broadcast), so its specs and code are not in the heap
while the tap sells; the blocklist's are in tap.blocklists, loaded the same way. What the tap keeps
of a config is what it sells by: its version, the offline policy and the station; the staff list
and the park's desk rules are checked and let go.
"""

from tap import messages
from tap.errors import TapError, UNKNOWN_TYPE, VALUE_OUT_OF_RANGE

OFFLINE_POLICY = ("OfflinePolicy", None, "max_transaction_fen:amount max_card_fen:amount max_terminal_fen:amount"
                  " max_count:count max_offline_ms:time_ms max_reboots:count blocklist_max_age_ms:time_ms"
                  " allowed_modes:text", None)
PARK_RULES = ("ParkRules", None, "no_pin_limit_fen:amount_or_zero card_fee_fen:amount_or_zero"
              " damage_fee_fen:amount_or_zero", None)
MENU_ITEM = ("MenuItem", None, "item:id name:text price_fen:amount", None)
STAFF_ENTRY = ("StaffEntry", None, "staff:id name:text role:staff_role card_no:card_number", None)
# What a tap keeps of a config (see the module's text).
KEPT = ("type", "park", "terminal", "version", "issued_ms", "offline", "station")


def _fail(name, message):
    raise TapError(VALUE_OUT_OF_RANGE, name + ": " + message)


def _station_whole(obj):
    if obj["mode"] != "free" and not obj["menu"]:
        _fail("menu", "a " + obj["mode"] + " station needs at least one item")
    if (obj["opens"] is None) != (obj["closes"] is None) or (obj["opens"] is not None and obj["opens"] == obj["closes"]):
        _fail("opens,closes", "must be two different times, or both null")
    if len(set(item["item"] for item in obj["menu"])) != len(obj["menu"]):
        _fail("menu", "item ids must differ")


def _config_whole(obj):
    cards = [entry["card_no"] for entry in obj["staff"]]
    if len(set(cards)) != len(cards) or len(set(entry["staff"] for entry in obj["staff"])) != len(cards):
        _fail("staff", "staff ids and card numbers must differ")


STATION_SETTINGS = ("StationSettings", None, "name:text mode:charge_mode menu:@MENU_ITEM*0-9 opens:clock?"
                    " closes:clock?", _station_whole)
PARTS = {"OFFLINE_POLICY": OFFLINE_POLICY, "PARK_RULES": PARK_RULES, "MENU_ITEM": MENU_ITEM,
         "STAFF_ENTRY": STAFF_ENTRY, "STATION_SETTINGS": STATION_SETTINGS,
         # A tap is never a rental station: its config's rental part is null. Any other is refused
         # without the tap carrying the rental spec: its fields must be there (MISSING_FIELD, as
         # protocol/ says), and then it is refused whatever they hold (VALUE_OUT_OF_RANGE, where
         # protocol/ would read on) — the one place the tap is stricter than protocol/.
         "RENTAL_STOCK": ("RentalStock", None, "item_types:not_for_a_tap items:not_for_a_tap", None)}
PARTS.update(messages.PARTS)
CONFIG = ("TerminalConfig", "config", "park:id terminal:id version:count issued_ms:time_ms offline:@OFFLINE_POLICY"
          " rules:@PARK_RULES station:@STATION_SETTINGS? staff:@STAFF_ENTRY*0-120"
          " rental:@RENTAL_STOCK?", _config_whole)
BROADCASTS = {"config": CONFIG}


def take_config(app, obj):
    """The config ``obj`` (its verified body, decoded), or None when it is not newer than the one
    the tap holds (a replay, or the retained copy again). Only the parts a tap sells by are kept."""
    config = messages.check(obj, BROADCASTS, PARTS)
    if config["type"] != "config":
        raise TapError(UNKNOWN_TYPE, "not a config on the config topic")
    app._check_ours(config)
    held = app.config
    if held is not None and (config["version"], config["issued_ms"]) <= (held["version"], held["issued_ms"]):
        return None
    return dict((name, config[name]) for name in KEPT)
