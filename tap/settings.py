"""The checks ``flash.sh --board`` runs on a tap's board settings (``/tap_board.json``, described
in tap.board) and its bundle before copying them: better a clear line at the desk than a tap that
fails on its pole. Kept out of tap.board so the board's heap does not carry them (the board never
imports this module).
"""

_BOARD_KEYS = {"wifi": ("ssid", "password"), "spi": ("id", "sck", "mosi", "miso", "cs"), "pins": ("green", "red", "buzzer")}
_BUNDLE_KEYS = ("park_id", "terminal_id", "key_id", "signing_seed", "ledger_keys", "card_key_master", "broker")


def board_problems(settings):
    """What is missing or wrong in the board settings (empty when none): flash.sh checks first."""
    problems = []
    if type(settings) is not dict:
        return ["the board settings must be a JSON object"]
    for part, keys in _BOARD_KEYS.items():
        section = settings.get(part)
        if type(section) is not dict:
            problems.append("missing " + part)
            continue
        for key in keys:
            wanted = str if part == "wifi" else int
            if type(section.get(key)) is not wanted:
                problems.append(part + "." + key + " must be " + ("text" if wanted is str else "a pin number"))
    display = settings.get("display")
    if display is not None:
        if type(display) is not dict or any(type(display.get(key)) is not int for key in ("i2c", "sda", "scl")):
            problems.append("display needs i2c, sda and scl pin numbers")
        elif display.get("height", 64) not in (32, 64):
            problems.append("display.height must be 32 or 64")
    return problems


def bundle_problems(bundle):
    if type(bundle) is not dict:
        return ["the bundle must be a JSON object"]
    problems = ["the bundle lacks " + key for key in _BUNDLE_KEYS if key not in bundle]
    ca = bundle.get("broker", {}).get("tls_ca")
    if ca is not None and (type(ca) is not str or "-----BEGIN CERTIFICATE-----" not in ca):
        problems.append("the bundle's broker.tls_ca must be the park CA's PEM certificate")
    return problems
