"""Changes to how a station sells, as pure functions: current settings in, new settings out.

The operator's ``fieldpos station menu|mode|hours`` commands build the new settings here and
``ParkHome.change_station`` stores them; nothing is written unless the result is settings every till
would accept, because building a :class:`protocol.messages.StationSettings` runs the protocol's own
checks (a menu of at most MAX_MENU_ITEMS items, a priced item for a fixed, count or menu station,
two different HH:MM times or none).
"""

from dataclasses import replace

from protocol.errors import FieldposError, LocalProtocolError
from protocol.messages import MenuItem, StationSettings

from .errors import AlreadyExists, NotFound


class SettingRefused(FieldposError):
    """A station or staff change that no till could sell by (a menu station left without items, a
    tenth menu item, an opening time without a closing time): nothing was changed."""

    code = "SETTING_REFUSED"


def _checked(build, station_id: str) -> StationSettings:
    try:
        return build()
    except LocalProtocolError as error:
        raise SettingRefused(f"station {station_id}: {error}; nothing changed") from None


def _index(settings: StationSettings, item_id: str, station_id: str) -> int:
    for index, item in enumerate(settings.menu):
        if item.item == item_id:
            return index
    raise NotFound(f"station {station_id} has no menu item {item_id}")


def add_item(settings: StationSettings, station_id: str, item_id: str, name: str, price_fen: int) -> StationSettings:
    """The menu with one more item, last (its key on the till is the next digit)."""
    if any(item.item == item_id for item in settings.menu):
        raise AlreadyExists(f"station {station_id} already has a menu item {item_id}; change it with 'station menu set'")
    return _checked(lambda: replace(settings, menu=(*settings.menu, MenuItem(item=item_id, name=name, price_fen=price_fen))),
                    station_id)


def set_item(settings: StationSettings, station_id: str, item_id: str, *, name: str | None = None,
             price_fen: int | None = None) -> StationSettings:
    """The menu with one item renamed or repriced, in its place (its key does not move)."""
    index = _index(settings, item_id, station_id)
    old = settings.menu[index]

    def build():
        item = MenuItem(item=item_id, name=old.name if name is None else name,
                        price_fen=old.price_fen if price_fen is None else price_fen)
        return replace(settings, menu=settings.menu[:index] + (item,) + settings.menu[index + 1:])

    return _checked(build, station_id)


def remove_item(settings: StationSettings, station_id: str, item_id: str) -> StationSettings:
    """The menu without the item; the items after it move up one key."""
    index = _index(settings, item_id, station_id)
    return _checked(lambda: replace(settings, menu=settings.menu[:index] + settings.menu[index + 1:]), station_id)


def set_mode(settings: StationSettings, station_id: str, mode: str) -> StationSettings:
    return _checked(lambda: replace(settings, mode=mode), station_id)


def set_hours(settings: StationSettings, station_id: str, opens: str | None, closes: str | None) -> StationSettings:
    """Opening hours (HH:MM, park time; a close before the open runs past midnight), or None and None
    for always open."""
    return _checked(lambda: replace(settings, opens=opens, closes=closes), station_id)
