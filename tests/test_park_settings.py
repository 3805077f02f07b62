"""How each station sells (mode, menu and prices, opening hours) and who may log in (the staff
directory) are set on the ledger with ``fieldpos station``/``fieldpos staff`` and reach every till in
its signed config (issue 11 item 5). Table tests for the pure parts; the wire is crossed with the real
ledger and a real broker."""

from dataclasses import replace

import pytest

from host_sim.rig import STAFF
from host_sim.station import ScriptedStation
from ledger.errors import AlreadyExists, NotFound
from ledger.station_settings import SettingRefused, add_item, remove_item, set_hours, set_item, set_mode
from protocol import envelope
from protocol.envelope import Purpose
from protocol.errors import LocalProtocolError, RemoteProtocolError
from protocol.limits import MAX_BROADCAST_BYTES, MAX_MENU_ITEMS, MAX_STAFF_ENTRIES, MAX_TEXT_CHARS
from protocol.messages import (BROADCAST_TYPES, MenuItem, OfflinePolicy, ParkRules, StaffEntry, StaffRole,
                               StationSettings, TerminalConfig, parse)
from terminal.config import COUNT, DESK, FIXED, FREE, MENU, StationConfig
from terminal.config import MenuItem as LocalMenuItem
from terminal.core import Terminal
from terminal.events import CardTapped, State, Tick
from tools.cli import main

from .helpers.waiting import wait_until

ROD = MenuItem(item="rod", name="钓竿 Rod", price_fen=3000)
BAIT = MenuItem(item="bait", name="鱼饵 Bait", price_fen=500)
FREE_STATION = StationSettings(name="钓鱼 Fishing", mode="free", menu=(), opens=None, closes=None)
MENU_STATION = StationSettings(name="钓鱼 Fishing", mode="menu", menu=(ROD, BAIT), opens=None, closes=None)
WANG = StaffEntry(staff="wang", name="王芳 Wang Fang", role="cashier", card_no="S0001")


# ------------------------------------------------------------ the operator's changes, as pure functions
def test_an_item_added_goes_last_and_set_keeps_its_key_while_remove_moves_the_rest_up():
    menu = add_item(add_item(FREE_STATION, "fishing", "rod", "钓竿 Rod", 3000), "fishing", "bait", "鱼饵 Bait", 500)
    assert [item.item for item in menu.menu] == ["rod", "bait"]
    repriced = set_item(menu, "fishing", "rod", price_fen=3500)
    assert repriced.menu == (replace(ROD, price_fen=3500), BAIT)
    renamed = set_item(repriced, "fishing", "bait", name="活饵 Live bait")
    assert renamed.menu[1] == MenuItem(item="bait", name="活饵 Live bait", price_fen=500)
    assert remove_item(renamed, "fishing", "rod").menu == (renamed.menu[1],)


@pytest.mark.parametrize("change,error", [
    (lambda s: add_item(s, "fishing", "rod", "Rod again", 100), AlreadyExists),
    (lambda s: set_item(s, "fishing", "net", price_fen=100), NotFound),
    (lambda s: remove_item(s, "fishing", "net"), NotFound),
    (lambda s: remove_item(remove_item(s, "fishing", "rod"), "fishing", "bait"), SettingRefused),  # a menu station left empty
    (lambda s: add_item(s, "fishing", "a rod", "Rod", 100), SettingRefused),  # not an id
    (lambda s: add_item(s, "fishing", "net", "N" * (MAX_TEXT_CHARS + 1), 100), SettingRefused),
    (lambda s: add_item(s, "fishing", "net", "Net", 0), SettingRefused),
    (lambda s: set_hours(s, "fishing", "08:00", None), SettingRefused),
    (lambda s: set_hours(s, "fishing", "08:00", "08:00"), SettingRefused),
    (lambda s: set_hours(s, "fishing", "8:00", "18:00"), SettingRefused),
    (lambda s: set_mode(s, "fishing", "desk"), SettingRefused),
])
def test_a_change_no_till_could_sell_by_is_refused(change, error):
    with pytest.raises(error):
        change(MENU_STATION)


def test_a_tenth_menu_item_is_refused_because_the_till_has_nine_digit_keys():
    full = MENU_STATION
    for number in range(len(full.menu), MAX_MENU_ITEMS):
        full = add_item(full, "fishing", f"item-{number}", f"Item {number}", 100)
    assert len(full.menu) == MAX_MENU_ITEMS == 9
    with pytest.raises(SettingRefused, match="menu"):
        add_item(full, "fishing", "tenth", "Tenth", 100)


def test_a_fixed_count_or_menu_station_needs_a_priced_item_first():
    for mode in ("fixed", "count", "menu"):
        with pytest.raises(SettingRefused, match="at least one item"):
            set_mode(FREE_STATION, "fishing", mode)
    assert set_mode(FREE_STATION, "fishing", "free") == FREE_STATION
    assert set_hours(FREE_STATION, "fishing", "22:00", "02:00").closes == "02:00"  # past midnight


# ------------------------------------------------------------ the wire
def _config(**changes) -> TerminalConfig:
    fields = dict(park="P1", terminal="T-FISH-1", version=1, issued_ms=0,
                  offline=OfflinePolicy(max_transaction_fen=20_000, max_card_fen=30_000, max_terminal_fen=2_000_000,
                                        max_count=500, max_offline_ms=86_400_000, max_reboots=3,
                                        blocklist_max_age_ms=86_400_000, allowed_modes="fixed,count,menu,free"),
                  rules=ParkRules(no_pin_limit_fen=20_000, card_fee_fen=2000, damage_fee_fen=1000),
                  station=MENU_STATION, staff=(WANG,))
    return TerminalConfig(**(fields | changes))


def test_the_largest_config_the_ledger_can_build_fits_a_broadcast():
    """Every name 64 Chinese characters (192 UTF-8 bytes), every id 32 characters: 9 menu items and
    MAX_STAFF_ENTRIES staff still seal under MAX_BROADCAST_BYTES."""
    from nacl.signing import SigningKey

    menu = tuple(MenuItem(item=f"{key}" * 32, name="鱼" * 64, price_fen=10_000_000) for key in range(1, 10))
    staff = tuple(StaffEntry(staff=f"{number:032d}", name="王" * 64, role="front_desk", card_no=f"{number:020d}")
                  for number in range(MAX_STAFF_ENTRIES))
    config = _config(station=replace(MENU_STATION, name="站" * 64, menu=menu, opens="08:00", closes="18:00"), staff=staff)
    payload = envelope.seal(config.to_bytes(), signing_key=SigningKey(bytes(32)), key_id="P1-config-1",
                            purpose=Purpose.CONFIG, topic="fieldpos/v1/P1/t/T-FISH-1/cfg", max_bytes=MAX_BROADCAST_BYTES)
    assert len(payload) <= MAX_BROADCAST_BYTES
    assert parse(config.to_bytes(), BROADCAST_TYPES) == config


@pytest.mark.parametrize("change,field", [
    (lambda obj: obj["station"].update(menu=[dict(BAIT.to_obj(), item=f"i{n}") for n in range(10)]), "menu"),
    (lambda obj: obj["station"].update(mode="desk"), "mode"),
    (lambda obj: obj["station"].update(mode="fixed", menu=[]), "menu"),
    (lambda obj: obj["station"].update(opens="25:00"), "opens"),
    (lambda obj: obj["station"].update(opens="08:00"), "opens,closes"),  # no closing time
    (lambda obj: obj["station"].update(menu=[ROD.to_obj(), ROD.to_obj()]), "menu"),
    (lambda obj: obj["staff"].append(dict(WANG.to_obj(), staff="wang2")), "staff"),  # one card, two people
    (lambda obj: obj["staff"][0].update(role="janitor"), "role"),
    (lambda obj: obj["staff"][0].update(pin_hash="scrypt$..."), "pin_hash"),  # never a PIN hash
    (lambda obj: obj.pop("staff"), "staff"),
])
def test_a_config_with_a_bad_station_or_staff_part_is_refused_by_the_till(change, field):
    from protocol import codec

    obj = _config().to_obj()
    change(obj)
    with pytest.raises(RemoteProtocolError) as refused:
        parse(codec.encode(obj), BROADCAST_TYPES)
    assert field in str(refused.value)


def test_the_staff_roles_on_the_wire_are_the_request_kinds_roles():
    from protocol.kinds import STAFF_ROLES

    assert {role.value for role in StaffRole} == set(STAFF_ROLES)


# ------------------------------------------------------------ the till lays the ledger's settings over station.json
LOCAL = StationConfig(park_name="Farm", station_name="Pond (local)", mode=FIXED, fixed_price_fen=100,
                      staff={"S0009": ("old", "Old Hand")}, open_hours=("09:00", "17:00"))


@pytest.mark.parametrize("station,expected", [
    (replace(MENU_STATION, mode="fixed"), dict(mode=FIXED, fixed_price_fen=3000)),
    (replace(MENU_STATION, mode="count"), dict(mode=COUNT, unit_name="钓竿 Rod", unit_price_fen=3000)),
    (MENU_STATION, dict(mode=MENU, menu=(LocalMenuItem("钓竿 Rod", 3000), LocalMenuItem("鱼饵 Bait", 500)))),
    (FREE_STATION, dict(mode=FREE, menu=(), open_hours=())),
    (replace(FREE_STATION, opens="22:00", closes="02:00"), dict(open_hours=("22:00", "02:00"))),
])
def test_the_ledgers_station_settings_replace_the_local_ones(station, expected):
    config = LOCAL.with_ledger(station, (WANG,))
    assert config.station_name == station.name
    assert config.staff == {"S0001": ("wang", "王芳 Wang Fang")}
    assert {name: getattr(config, name) for name in expected} == expected
    assert (config.park_name, config.printer_profile) == (LOCAL.park_name, LOCAL.printer_profile)  # the till's own


def test_before_the_first_config_the_local_settings_stand_and_a_desk_keeps_its_own_mode():
    assert LOCAL.with_ledger(None, None) is LOCAL
    desk = replace(LOCAL, mode=DESK).with_ledger(replace(MENU_STATION, opens="08:00", closes="18:00"), ())
    assert (desk.mode, desk.open_hours, desk.staff) == (DESK, ("09:00", "17:00"), {})  # a desk never closes


def _visitor_tap():
    from protocol.card_record import CardRecord

    return CardTapped("04a1b2c3", CardRecord("C00042", 1, "temporary", "P1"))


def test_outside_the_ledgers_opening_hours_the_till_refuses_a_visitor_but_lets_staff_close_the_shift():
    machine = Terminal(config=StationConfig(park_name="Farm", station_name="Pond"), terminal_id="T-FISH-1")
    machine.follow_ledger(replace(FREE_STATION, opens="08:00", closes="18:00"), (WANG,))
    machine.state, machine.operator = State.IDLE, "wang"
    machine.handle(Tick(now_ms=1, minute_of_day=19 * 60))
    shown = machine.handle(_visitor_tap())[0]
    assert machine.state == State.MESSAGE and "Closed" in shown.title and "08:00-18:00" in shown.lines[0]
    machine.state = State.IDLE
    machine.handle(Tick(now_ms=2, minute_of_day=9 * 60))
    machine.handle(_visitor_tap())
    assert machine.state == State.AMOUNT  # open: the sale starts


def test_a_staff_card_the_ledgers_directory_no_longer_lists_cannot_log_in():
    from protocol.card_record import CardRecord

    machine = Terminal(config=StationConfig(park_name="Farm", station_name="Pond", staff={"S0001": ("wang", "Wang")}),
                       terminal_id="T-FISH-1")
    machine.follow_ledger(FREE_STATION, ())  # wang retired on the ledger
    shown = machine.handle(CardTapped("0a0b0c0d", CardRecord("S0001", 1, "staff", "P1")))[0]
    assert machine.state == State.MESSAGE and "unknown" in shown.title


def test_the_station_and_staff_of_the_signed_config_survive_a_reboot(tmp_path):
    from terminal.offline_state import TerminalState
    from terminal.outbox import Outbox

    config = _config()
    TerminalState(Outbox(tmp_path / "outbox.db")).save_config(config.version, config.issued_ms, config.offline,
                                                              config.rules, config.station, config.staff)
    again = TerminalState(Outbox(tmp_path / "outbox.db"))  # the board restarted
    assert (again.station, again.staff) == (MENU_STATION, (WANG,))


def test_a_park_full_of_staff_refuses_one_more_until_someone_retires_and_each_change_is_counted(tmp_path):
    from ledger.park_home import ParkHome

    home = ParkHome(tmp_path / "park")
    home.init("P1", "Park")
    store = home.open_store()
    for number in range(MAX_STAFF_ENTRIES):  # straight into the books: hashing 120 PINs would only be slow
        store.add_staff("P1", f"s{number}", f"Staff {number}", "cashier", f"S{number:04d}", "not-a-pin-hash")
    changes = store.config_change_version("P1")
    with pytest.raises(SettingRefused, match="retire someone first"):
        home.add_staff("late", "Late Comer", "cashier", "S9999", "1234")
    assert store.config_change_version("P1") == changes  # refused: nothing changed, nothing to re-publish
    home.change_staff("s0", retire=True)
    home.add_staff("late", "Late Comer", "cashier", "S9999", "1234")
    assert store.config_change_version("P1") == changes + 2
    assert len(store.staff_directory("P1")) == MAX_STAFF_ENTRIES and len(home.staff_members()) == MAX_STAFF_ENTRIES + 1
    store.close()


# ------------------------------------------------------------ through the real ledger and broker
def cli(rig, *words) -> int:
    return main(["--home", str(rig.home.home), *words])


def fishing_station(rig):
    station = ScriptedStation(rig, "T-FISH-1", profile="80mm-gb18030")
    station.turns(lambda: station.link.state.station is not None)
    return station


def issue(rig, card_no, opening_fen=10_000):
    from host_sim.rig import card, common
    from protocol.messages import CardIssue

    desk = rig.link("T-DESK-1")
    desk.submit(lambda seq: CardIssue(**common(desk, seq, card(card_no)), card_kind="temporary", card_fee_fen=2000,
                                      opening_fen=opening_fen, channel="cash", payment_ref=""))


def charged(rig) -> list[int]:
    return [amount for (amount,) in rig.reader.db.execute("SELECT amount_fen FROM txn WHERE kind='charge' ORDER BY txn_id")]


def test_a_menu_price_set_with_the_cli_reaches_a_running_till_and_the_next_sale_uses_it(rig):
    assert cli(rig, "station", "menu", "add", "--station", "fishing", "--item", "rod", "--name", "钓竿 Rod",
               "--price-fen", "3000") == 0
    assert cli(rig, "station", "mode", "--station", "fishing", "--mode", "menu") == 0
    issue(rig, "C00042")
    station = fishing_station(rig)
    try:
        wait_until(lambda: station.link.state.station is not None and station.link.state.station.mode == "menu",
                   what="the menu in the till's signed config")
        station.turns(lambda: station.app.machine.config.mode == MENU)
        station.log_in()
        assert station.sell(rig.virtual_card("C00042"), "1") == State.DONE
        assert "钓竿 Rod" in station.sim.printer.receipts[-1].text

        assert cli(rig, "station", "menu", "set", "--station", "fishing", "--item", "rod", "--price-fen", "3500") == 0
        wait_until(lambda: station.link.state.station.menu[0].price_fen == 3500, what="the new price at the till")
        station.keys("C")  # the cashier leaves the approved screen
        assert station.sell(rig.virtual_card("C00042"), "1") == State.DONE
        wait_until(lambda: len(charged(rig)) == 2, what="the second sale in the books")
        assert charged(rig) == [3000, 3500]
    finally:
        station.close()


def test_a_staff_name_change_shows_on_the_till_and_a_retired_card_no_longer_logs_in(rig):
    station = fishing_station(rig)
    try:
        assert cli(rig, "staff", "set", "--staff", "wang", "--name", "王芳芳 Wang Fangfang") == 0
        assert cli(rig, "staff", "retire", "--staff", "li") == 0
        wait_until(lambda: {entry.staff: entry.name for entry in station.link.state.staff}
                   == {"wang": "王芳芳 Wang Fangfang", "zhao": STAFF[2][1]}, what="the new directory at the till")
        station.turns(lambda: station.app.machine.config.staff[STAFF[0][3]][1] == "王芳芳 Wang Fangfang")
        station.log_in(STAFF[0])
        assert "王芳芳" in " ".join((station.app.screen.title, *station.app.screen.lines, station.app.screen.footer))

        other = ScriptedStation(rig, "T-FISH-2")  # li, retired, tries to log in on another till
        try:
            other.turns(lambda: other.link.state.staff is not None)
            other.tap(rig.virtual_card(STAFF[1][3], kind="staff"))
            assert other.state == State.MESSAGE and "unknown" in other.app.screen.title
        finally:
            other.close()
    finally:
        station.close()
