"""What a station terminal needs to know about its station: names, charge mode, prices, staff.

The ledger owns how a station sells (mode, menu and prices, opening hours) and who may log in (the
staff directory): they arrive in its signed config and :meth:`StationConfig.with_ledger` lays them
over the local file (``station.json``). That file keeps the hardware settings (printer profile),
the park's name and time zone, a front desk's ``desk`` mode, and stands for the ledger's settings
only until the first signed config has arrived.
"""

from dataclasses import dataclass, field, replace
import json
from pathlib import Path

from protocol.messages import StationSettings

from .errors import TerminalError


class ConfigError(TerminalError):
    """The terminal's station config is missing or invalid: re-provision or fix the file."""

    code = "CONFIG"


# Charge modes, as Chinese card terminals offer them.
FIXED = "fixed"     # 定额: every tap pays the same price
COUNT = "count"     # 计次: number of uses x unit price (rides, rounds, hours)
MENU = "menu"       # 菜单: pick items by number
FREE = "free"       # 自由: the cashier types the amount
DESK = "desk"       # 总台: the front desk issues, tops up and takes back temporary cards
RENTAL = "rental"   # 租赁: a rental desk takes deposits, hands out items against vouchers, takes them back
MODES = (FIXED, COUNT, MENU, FREE, DESK, RENTAL)
OWN_MODES = (DESK, RENTAL)  # they sell nothing, so the ledger's station settings never change their mode


@dataclass(frozen=True)
class MenuItem:
    name: str
    price_fen: int


@dataclass(frozen=True)
class StationConfig:
    park_name: str
    station_name: str
    mode: str = FREE
    fixed_price_fen: int = 0
    unit_name: str = "次"
    unit_price_fen: int = 0
    menu: tuple = ()
    # The park rules below are the ledger's: its signed config carries them (protocol ParkRules) and
    # the till goes by those. These copies are used only before the first config has arrived.
    # Member cards need a PIN above this amount (temporary cards never have a PIN).
    no_pin_limit_fen: int = 20000
    card_fee_fen: int = 2000  # the refundable deposit a front desk takes for a temporary card
    damage_fee_fen: int = 0   # kept from the deposit when a card comes back damaged (0: never asked)
    time_zone: str = "Asia/Shanghai"
    printer_profile: str = "58mm-raster"
    staff: dict = field(default_factory=dict)  # staff card number -> (staff id, display name)
    open_hours: tuple = ()  # ("08:00", "18:00"); empty: always open. An end before the start runs past midnight.
    version: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ConfigError(f"charge mode {self.mode!r} is not one of {', '.join(MODES)}")
        if self.mode == FIXED and self.fixed_price_fen <= 0:
            raise ConfigError("fixed-price mode needs fixed_price_fen > 0")
        if self.mode == COUNT and self.unit_price_fen <= 0:
            raise ConfigError("count mode needs unit_price_fen > 0")
        if not 0 <= self.damage_fee_fen <= self.card_fee_fen:
            raise ConfigError("damage_fee_fen must be between 0 and the card fee (a damaged card costs at most its deposit)")
        if self.mode == MENU and not 1 <= len(self.menu) <= 9:
            raise ConfigError("menu mode needs 1 to 9 items (one key each)")
        if self.open_hours and not (len(self.open_hours) == 2 and all(
                len(t) == 5 and t[2] == ":" and t[:2].isdigit() and t[3:].isdigit() for t in self.open_hours)):
            raise ConfigError(f"open_hours must be two HH:MM times, not {self.open_hours!r}")

    def with_ledger(self, station: StationSettings | None, staff: tuple | None) -> "StationConfig":
        """This station as the ledger's signed config says it sells, and with the staff it lists (a
        part the ledger has not sent yet, None, keeps the local value). The first item prices a
        fixed-price station's tap and a count station's unit (its name is the unit). A front desk
        keeps its own mode: it sells nothing, and never closes (cards come back after the stations shut)."""
        changes = {}
        if staff is not None:
            changes["staff"] = {entry.card_no: (entry.staff, entry.name) for entry in staff}
        if station is not None:
            changes["station_name"] = station.name
            if self.mode not in OWN_MODES:
                changes["open_hours"] = () if station.opens is None else (station.opens, station.closes)
                changes["mode"] = station.mode
                changes["menu"] = tuple(MenuItem(item.name, item.price_fen) for item in station.menu)
                if station.menu:
                    first = station.menu[0]
                    changes |= {"fixed_price_fen": first.price_fen, "unit_name": first.name, "unit_price_fen": first.price_fen}
        return replace(self, **changes) if changes else self

    @classmethod
    def from_dict(cls, data: dict) -> "StationConfig":
        data = dict(data)
        data["menu"] = tuple(MenuItem(**item) for item in data.get("menu", ()))
        data["staff"] = {card: tuple(entry) for card, entry in data.get("staff", {}).items()}
        data["open_hours"] = tuple(data.get("open_hours", ()))
        try:
            return cls(**data)
        except TypeError as error:
            raise ConfigError(f"station config: {error}") from None

    def to_dict(self) -> dict:
        return {
            **{k: getattr(self, k) for k in ("park_name", "station_name", "mode", "fixed_price_fen", "unit_name",
                                             "unit_price_fen", "no_pin_limit_fen", "card_fee_fen", "damage_fee_fen", "time_zone",
                                             "printer_profile", "version")},
            "menu": [{"name": item.name, "price_fen": item.price_fen} for item in self.menu],
            "staff": {card: list(entry) for card, entry in self.staff.items()},
            "open_hours": list(self.open_hours),
        }

    @classmethod
    def load(cls, path) -> "StationConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except FileNotFoundError:
            raise ConfigError(f"no station config at {path}") from None
