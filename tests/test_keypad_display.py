"""The keypad, the display and the hardware factory: our drivers against the byte-level emulations.

The evdev keypad driver reads real ``struct input_event`` records from host_sim's pipe; the SSD1306
driver's I2C transactions are parsed by host_sim's controller model, whose display RAM is compared
pixel by pixel with the frame sent. Every wait is bounded; nothing asserts how fast anything is.
"""

from __future__ import annotations

import sys
import types

import pytest
from PIL import Image, ImageChops, ImageDraw

from host_sim.devices.clock import ManualClock
from host_sim.devices.keypad import EmulatedKeypad
from host_sim.devices.mfrc522 import FakeSpiDev, WallClock
from host_sim.devices.mifare import MifareClassic1K
from host_sim.devices.printer import EmulatedPrinter
from host_sim.devices.ssd1306 import EmulatedSsd1306
from terminal.drivers import keypad_evdev
from terminal.drivers.ssd1306 import DATA_CHUNK_BYTES, FRAME_BYTES, frame_pages
from terminal.errors import DisplayError, HardwareUnavailableError, KeypadError
from terminal.hal import factory
from terminal.hal.factory import HardwareConfig, choose_kind, make_hardware
from terminal.hal.keypad import Key
from terminal.receipt import ReceiptData
from terminal.screens import Screen, render_screen

SHORT_WAIT_S = 0.05  # for "nothing arrives": long enough to see a key that was coming
KEY_WAIT_S = 2.0  # for "this key arrives": a bound, not an expectation

FISHING_IDLE = Screen(title="钓鱼 Fishing", lines=["请刷卡 Tap card", "操作员 王芳"], footer="ONLINE")
APPROVED = Screen(title="成功 Approved", tone="ok", amount_text="30.00", lines=["余额 Balance 70.00"])


def same_pixels(first: Image.Image, second: Image.Image) -> bool:
    if first.size != second.size:
        return False
    return ImageChops.difference(first.convert("L"), second.convert("L")).getbbox() is None


def read_all_keys(keypad, *, wait_s: float = SHORT_WAIT_S, limit: int = 64) -> list[Key]:
    """Every key waiting, then one short wait that finds nothing more."""
    keys = []
    for _ in range(limit):
        key = keypad.read_key(wait_s)
        if key is None:
            return keys
        keys.append(key)
    raise AssertionError(f"more than {limit} keys")


# --- keypad: the evdev driver reading the emulated keypad's input events ----------------------------


@pytest.fixture
def emulated_keypad():
    with EmulatedKeypad() as keypad:
        yield keypad


@pytest.fixture
def keypad(emulated_keypad):
    return emulated_keypad.open_driver()


@pytest.mark.timeout(10)
def test_a_cashier_typing_30_00_and_enter_gives_the_keys_in_order(emulated_keypad, keypad):
    emulated_keypad.type_text("30.00")
    emulated_keypad.press(Key.ENTER)

    assert read_all_keys(keypad) == [Key.DIGIT_3, Key.DIGIT_0, Key.DOT, Key.DIGIT_0, Key.DIGIT_0, Key.ENTER]
    # Each stroke is MSC_SCAN, press, SYN, MSC_SCAN, release, SYN: 6 records of 24 bytes.
    assert emulated_keypad.bytes_written == 6 * 6 * 24


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (keypad_evdev.KEY_KPSLASH, Key.F1),
        (keypad_evdev.KEY_KPASTERISK, Key.F2),
        (keypad_evdev.KEY_KPMINUS, Key.F3),
        (keypad_evdev.KEY_KPPLUS, Key.F4),
        (keypad_evdev.KEY_NUMLOCK, Key.CANCEL),  # a 17-key pad has no Esc
        (keypad_evdev.KEY_ESC, Key.CANCEL),
        (keypad_evdev.KEY_BACKSPACE, Key.BACK),
        (keypad_evdev.KEY_KPENTER, Key.ENTER),
        (keypad_evdev.KEY_KPDOT, Key.DOT),
        (keypad_evdev.KEY_KP7, Key.DIGIT_7),
        (keypad_evdev.KEY_7, Key.DIGIT_7),  # a full keyboard on the bench
        (30, Key.A),  # the desk's keyboard types names: KEY_A, KEY_Q, KEY_M, KEY_SPACE (input-event-codes.h)
        (16, Key.Q),
        (50, Key.M),
        (57, Key.SPACE),
        (60, Key.F2),  # KEY_F2 of a keyboard with no numeric pad
    ],
)
def test_keypad_codes_map_to_keys(emulated_keypad, keypad, code, expected):
    emulated_keypad.press_code(code)

    assert read_all_keys(keypad) == [expected]


@pytest.mark.timeout(10)
def test_releases_scan_codes_and_syn_reports_give_no_keys(emulated_keypad, keypad):
    emulated_keypad.write_raw(
        emulated_keypad.event_bytes(0x01, keypad_evdev.KEY_KP5, 0)  # a release with no press
        + emulated_keypad.event_bytes(0x04, 4, 0x7005D)  # EV_MSC MSC_SCAN
        + emulated_keypad.event_bytes(0x00, 0, 0)  # SYN_REPORT
        + emulated_keypad.event_bytes(0x11, 0, 1)  # EV_LED NumLock
        + emulated_keypad.event_bytes(0x01, 15, 1)  # KEY_TAB: no meaning on a till
    )

    assert keypad.read_key(SHORT_WAIT_S) is None


@pytest.mark.timeout(10)
def test_a_held_digit_types_once_but_a_held_backspace_repeats(emulated_keypad, keypad):
    emulated_keypad.press(Key.DIGIT_5, autorepeats=3)
    emulated_keypad.press(Key.BACK, autorepeats=3)

    assert read_all_keys(keypad) == [Key.DIGIT_5] + [Key.BACK] * 4


@pytest.mark.timeout(10)
def test_a_record_split_across_two_reads_is_assembled(emulated_keypad, keypad):
    stroke = emulated_keypad.key_stroke_bytes(keypad_evdev.KEY_KP9, 0x61)
    press_ends_at = 2 * 24  # MSC_SCAN, then the EV_KEY press
    emulated_keypad.write_raw(stroke[: press_ends_at - 10])  # the press record cut 14 bytes in

    assert keypad.read_key(SHORT_WAIT_S) is None  # half a record is not a key

    emulated_keypad.write_raw(stroke[press_ends_at - 10 :])

    assert keypad.read_key(KEY_WAIT_S) is Key.DIGIT_9
    assert keypad.read_key(SHORT_WAIT_S) is None


@pytest.mark.timeout(10)
def test_nothing_pressed_returns_none_at_the_timeout(keypad):
    assert keypad.read_key(0) is None
    assert keypad.read_key(SHORT_WAIT_S) is None


@pytest.mark.timeout(10)
def test_events_after_a_kernel_queue_overflow_are_ignored_until_the_next_report(emulated_keypad, keypad):
    emulated_keypad.press(Key.DIGIT_1)
    emulated_keypad.drop_events()
    # The overflow hid part of a stroke: its press arrives without a SYN_REPORT before it.
    emulated_keypad.write_raw(emulated_keypad.event_bytes(0x01, keypad_evdev.KEY_KP2, 1))
    emulated_keypad.write_raw(emulated_keypad.event_bytes(0x00, 0, 0))
    emulated_keypad.press(Key.DIGIT_3)

    assert read_all_keys(keypad) == [Key.DIGIT_1, Key.DIGIT_3]
    assert keypad.dropped_event_count == 1


@pytest.mark.timeout(10)
def test_presses_beyond_the_pending_limit_are_counted_not_kept(emulated_keypad, keypad):
    # Forty presses in one read (a stuck or malicious device: a real stroke is six records).
    press = emulated_keypad.event_bytes(0x01, keypad_evdev.KEY_KP1, 1)
    emulated_keypad.write_raw(press * (keypad_evdev.PENDING_KEYS_LIMIT + 8))

    assert len(read_all_keys(keypad)) == keypad_evdev.PENDING_KEYS_LIMIT
    assert keypad.lost_key_count == 8


@pytest.mark.timeout(10)
def test_an_unplugged_keypad_raises_keypad_error(emulated_keypad, keypad):
    emulated_keypad.press(Key.DIGIT_4)
    emulated_keypad.unplug()

    assert keypad.read_key(KEY_WAIT_S) is Key.DIGIT_4  # what was typed before still counts
    with pytest.raises(KeypadError):
        keypad.read_key(KEY_WAIT_S)


@pytest.mark.timeout(10)
def test_32_bit_userspace_records_are_16_bytes():
    with EmulatedKeypad(long_size_bytes=4) as emulated:
        driver = emulated.open_driver()
        emulated.type_text("7.")

        assert read_all_keys(driver) == [Key.DIGIT_7, Key.DOT]
        assert emulated.bytes_written == 2 * 6 * 16


def test_only_digits_and_the_dot_can_be_typed_as_text():
    assert Key.for_character(".") is Key.DOT
    with pytest.raises(ValueError):
        Key.for_character("ENTER")


# --- display: the SSD1306 driver writing to the emulated controller ---------------------------------


@pytest.fixture
def oled():
    return EmulatedSsd1306()


@pytest.fixture
def display(oled):
    return oled.open_driver()


def checkerboard_with_text() -> Image.Image:
    """A frame where a wrong bit order, page order or column order shows."""
    image = Image.new("1", (128, 64), 0)
    draw = ImageDraw.Draw(image)
    for x in range(0, 128, 8):
        for y in range(0, 64, 8):
            if (x + y) // 8 % 2 == 0:
                draw.rectangle((x, y, x + 3, y + 1), fill=1)
    draw.point([(0, 0), (127, 0), (0, 63), (127, 63), (5, 9), (120, 57)], fill=1)
    draw.text((10, 20), "A", fill=1)
    return image


def test_the_driver_puts_the_exact_frame_into_display_ram(oled, display):
    frame = checkerboard_with_text()

    display.show(frame)

    assert same_pixels(oled.gddram_image(), frame)
    assert same_pixels(oled.to_image(), frame)  # the set-up turns the picture the right way up
    assert oled.is_panel_lit
    assert oled.unknown_commands == []
    assert list(oled.mistakes) == []


def test_a_rendered_screen_survives_the_trip_pixel_for_pixel(oled, display):
    frame = render_screen(FISHING_IDLE)

    display.show(frame)

    assert same_pixels(oled.to_image(), frame)


def test_a_full_frame_goes_in_chunks_an_i2c_adapter_can_take(oled, display):
    display.show(checkerboard_with_text())

    assert oled.data_bytes_received == FRAME_BYTES
    assert oled.largest_transaction_bytes <= DATA_CHUNK_BYTES + 1  # data plus the control byte
    assert display.data_bytes_sent == FRAME_BYTES


def test_showing_the_same_frame_again_sends_nothing(oled, display):
    frame = render_screen(FISHING_IDLE)
    display.show(frame)
    transactions_before = oled.transaction_count

    display.show(frame.copy())

    assert oled.transaction_count == transactions_before
    assert oled.data_bytes_received == FRAME_BYTES


def test_changing_one_line_sends_only_its_pages(oled, display):
    display.show(render_screen(FISHING_IDLE))
    per_page_before = list(oled.data_bytes_per_page)
    changed = render_screen(Screen(title="钓鱼 Fishing", lines=["请刷卡 Tap card", "操作员 李明"], footer="ONLINE"))

    display.show(changed)

    sent_per_page = [after - before for after, before in zip(oled.data_bytes_per_page, per_page_before)]
    old_pages, new_pages = frame_pages(render_screen(FISHING_IDLE)), frame_pages(changed)
    changed_pages = [page for page in range(8) if old_pages[page] != new_pages[page]]
    assert changed_pages and len(changed_pages) <= 3  # a 14-pixel row spans two or three 8-pixel pages
    assert [page for page, count in enumerate(sent_per_page) if count] == changed_pages
    assert sum(sent_per_page) <= len(changed_pages) * 128
    assert same_pixels(oled.to_image(), changed)


def test_the_controller_refuses_data_while_the_display_is_off(oled):
    with pytest.raises(OSError):
        oled.write(bytes((0x40, 0xFF, 0xFF)))  # before any set-up: display off since power-on

    assert oled.refused_transaction_count == 1
    assert oled.refused_data_bytes == 2
    assert oled.data_bytes_received == 0


def test_after_the_panel_lost_power_the_driver_sees_the_refusal_and_starts_over(oled, display):
    display.show(render_screen(FISHING_IDLE))
    oled.power_cycle()  # a loose supply wire: settings reset, RAM random, display off

    display.show(render_screen(APPROVED))

    assert oled.refused_transaction_count == 1
    assert display.recovery_count == 1
    assert same_pixels(oled.to_image(), render_screen(APPROVED))


def test_a_display_that_never_answers_raises_display_error(oled, display):
    oled.set_unresponsive()

    with pytest.raises(DisplayError):
        display.show(render_screen(APPROVED))


def test_clear_blanks_the_panel_and_close_switches_it_off(oled, display):
    display.show(render_screen(FISHING_IDLE))

    display.clear()

    assert oled.gddram_image().getbbox() is None
    display.close()
    assert not oled.is_display_on
    assert oled.is_closed


def test_a_frame_of_the_wrong_size_or_mode_is_refused(display):
    with pytest.raises(ValueError):
        display.show(Image.new("1", (128, 32)))
    with pytest.raises(ValueError):
        display.show(Image.new("L", (128, 64)))


def test_a_driver_that_assumes_blank_ram_would_fail_here():
    # Power-on RAM is random, as on the chip: only a driver that sends every page passes the checks above.
    assert EmulatedSsd1306().gddram_image().getbbox() is not None


# --- screens ---------------------------------------------------------------------------------------


def lit_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    return sum(image.crop(box).convert("L").histogram()[1:])  # every pixel that is not dark


def test_the_idle_screen_is_a_128x64_one_bit_image_with_chinese_in_its_rows():
    image = render_screen(Screen(title="钓鱼", lines=["请刷卡"]))

    assert image.size == (128, 64) and image.mode == "1"
    assert lit_pixels(image, (0, 0, 128, 15)) > 20  # the title's two characters
    assert lit_pixels(image, (0, 16, 128, 30)) > 30  # the first line's three characters
    assert lit_pixels(image, (0, 31, 128, 64)) == 0  # nothing where no line was given


def test_an_error_screen_has_an_inverted_title_bar():
    normal = render_screen(Screen(title="余额不足 Declined", lines=["余额 12.50"]))
    error = render_screen(Screen(title="余额不足 Declined", lines=["余额 12.50"], tone="error"))
    title_bar = (0, 0, 128, 15)

    assert lit_pixels(error, title_bar) > 128 * 15 // 2
    assert lit_pixels(normal, title_bar) < 128 * 15 // 2
    assert same_pixels(error.crop((0, 16, 128, 64)), normal.crop((0, 16, 128, 64)))  # the rest is the same


def test_ok_and_warning_title_bars_differ_from_normal():
    pictures = {
        tone: render_screen(Screen(title="成功", tone=tone)).crop((0, 0, 128, 16)) for tone in ("normal", "ok", "warning")
    }

    assert not same_pixels(pictures["ok"], pictures["normal"])
    assert not same_pixels(pictures["warning"], pictures["normal"])


def test_a_big_amount_shrinks_to_fit_and_is_never_cut():
    image = render_screen(Screen(title="充值 Top-up", amount_text="99999.99"))

    left, _, right, _ = image.crop((0, 16, 128, 36)).getbbox()
    assert left > 0 and right < 128
    with pytest.raises(ValueError):
        render_screen(Screen(title="x", amount_text="9" * 40))


def test_a_screen_with_more_rows_than_the_panel_is_refused_and_a_bigger_panel_takes_it():
    crowded = Screen(title="菜单 Menu", lines=["1 充值", "2 退卡", "3 查询", "4 交班"], footer="F1 返回")

    with pytest.raises(ValueError, match="drop a line"):
        render_screen(crowded)
    large = render_screen(crowded, (320, 240))
    assert large.size == (320, 240) and large.mode == "1"
    assert lit_pixels(large, (0, 200, 320, 240)) > 0  # the footer at the bottom


def test_a_screen_is_checked_when_built():
    assert Screen(title="t", lines=["a", "b"]).lines == ("a", "b")
    with pytest.raises(ValueError):
        Screen(title="t", lines=["1", "2", "3", "4", "5"])
    with pytest.raises(ValueError):
        Screen(title="t", tone="happy")
    with pytest.raises(ValueError):
        Screen(title="two\nlines")


# --- clock -----------------------------------------------------------------------------------------


def test_a_manual_clock_moves_only_when_told_and_ntp_steps_only_the_wall_clock():
    clock = ManualClock(now_ms=1_000, monotonic_ms=5)

    clock.advance_ms(250)
    clock.set_now_ms(400)

    assert (clock.now_ms(), clock.monotonic_ms()) == (400, 255)
    with pytest.raises(ValueError):
        clock.advance_ms(-1)


# --- the factory -----------------------------------------------------------------------------------


def a_receipt() -> ReceiptData:
    return ReceiptData(
        park_name="Sunny Park", station_name="钓鱼 Fishing", terminal_id="T-FISH-1", seq=7, operator="王芳",
        time_text="2026-05-01 10:00", masked_card_number="**** 1234", amount_fen=3000, balance_after_fen=7000,
        is_online=True,
    )  # fmt: skip


@pytest.mark.timeout(30)
def test_a_simulated_terminal_reads_a_card_prints_takes_a_key_and_shows_a_screen():
    hardware = make_hardware("sim", config={"sim_clock": "manual"})
    with hardware:
        assert hardware.kind == "sim" and hardware.sim is not None
        hardware.sim.field.present(MifareClassic1K(bytes.fromhex("04A1B2C3D4E5F6")))
        assert hardware.card_reader.poll().hex == "04a1b2c3d4e5f6"

        hardware.printer.print_receipt(a_receipt())  # the default 58 mm profile has no cutter
        assert hardware.sim.printer.wait_until(lambda printer: "30.00" in printer.current_receipt.text, timeout_s=10)

        hardware.sim.keypad.press(Key.ENTER)
        assert hardware.keypad.read_key(KEY_WAIT_S) is Key.ENTER

        frame = render_screen(APPROVED, hardware.display.size)
        hardware.display.show(frame)
        assert same_pixels(hardware.sim.oled.to_image(), frame)

        assert hardware.clock is hardware.sim.clock
        hardware.sim.clock.advance_ms(1_000)
        assert hardware.clock.monotonic_ms() == 1_000

    assert hardware.sim.oled.is_closed and not hardware.sim.oled.is_display_on
    assert hardware.keypad.device.closed
    with pytest.raises(OSError):
        hardware.sim.spi.xfer2([0x6E, 0])  # the bus is closed
    hardware.close()  # twice is harmless


def test_the_kind_comes_from_the_argument_then_the_environment_then_the_spi_device(monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDPOS_HW", "pi")
    assert choose_kind("sim") == "sim"
    assert choose_kind() == "pi"
    monkeypatch.delenv("FIELDPOS_HW")
    monkeypatch.setattr(factory, "PI_PROBE_PATH", tmp_path / "spidev0.0")
    assert choose_kind() == "sim"
    (tmp_path / "spidev0.0").touch()
    assert choose_kind() == "pi"
    monkeypatch.setenv("FIELDPOS_HW", "raspberry")
    with pytest.raises(ValueError, match="FIELDPOS_HW"):
        choose_kind()


def test_an_unknown_hardware_setting_is_an_error():
    with pytest.raises(ValueError, match="printer_port"):
        make_hardware("sim", config={"printer_port": "/dev/ttyUSB0"})


def test_the_pi_kind_without_spidev_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "spidev", None)  # importing it raises ImportError

    with pytest.raises(HardwareUnavailableError, match=r"fieldpos\[pi\]"):
        make_hardware("pi")


@pytest.mark.timeout(30)
def test_the_pi_kind_wires_the_same_drivers_to_the_devices_it_opens(monkeypatch):
    """The pi branch with each device-opening function answered by an emulator."""
    from terminal.drivers import escpos, mfrc522, ssd1306

    spi = FakeSpiDev(0, 0, clock=WallClock())  # the driver sleeps for real here
    keypad = EmulatedKeypad()
    oled = EmulatedSsd1306()
    emulated_printer = EmulatedPrinter().start()
    real_open_serial = escpos.open_serial
    opened = {}

    def open_spidev(bus, device):
        opened["spi"] = (bus, device)
        return spi

    def open_serial(path, **options):
        opened["printer"] = path
        return real_open_serial(emulated_printer.port_name, **options)

    def open_evdev(path):
        opened["keypad"] = path
        return keypad.device

    def open_i2c(bus, address):
        opened["i2c"] = (bus, address)
        return oled

    monkeypatch.setitem(sys.modules, "spidev", types.ModuleType("spidev"))
    monkeypatch.setattr(mfrc522, "open_spidev", open_spidev)
    monkeypatch.setattr(escpos, "open_serial", open_serial)
    monkeypatch.setattr(keypad_evdev, "open_evdev", open_evdev)
    monkeypatch.setattr(ssd1306, "open_i2c", open_i2c)
    with emulated_printer:
        config = HardwareConfig(keypad_path="/dev/input/by-id/usb-keypad-event-kbd")

        with make_hardware("pi", config=config) as hardware:
            spi.field.present(MifareClassic1K(bytes.fromhex("11223344")))
            assert hardware.card_reader.poll().hex == "11223344"
            keypad.press(Key.F2)
            assert hardware.keypad.read_key(KEY_WAIT_S) is Key.F2
            hardware.display.show(render_screen(FISHING_IDLE))
            assert same_pixels(oled.to_image(), render_screen(FISHING_IDLE))
            assert hardware.printer.status().is_ready

    assert opened == {"spi": (0, 0), "printer": "/dev/serial0", "keypad": config.keypad_path, "i2c": (1, 0x3C)}
    assert oled.is_closed and keypad.device.closed
    keypad.close()


def test_a_part_that_fails_to_open_leaves_nothing_open(monkeypatch):
    closed = []
    for emulator, name in ((EmulatedPrinter, "printer"), (EmulatedKeypad, "keypad")):
        def recording_close(self, original=emulator.close, name=name):
            closed.append(name)
            original(self)

        monkeypatch.setattr(emulator, "close", recording_close)

    def broken_display(self, **options):
        raise DisplayError("no answer on I2C")

    monkeypatch.setattr(EmulatedSsd1306, "open_driver", broken_display)

    with pytest.raises(DisplayError):
        make_hardware("sim")
    assert closed == ["keypad", "printer"]  # the parts opened before the display, last first


def test_directory_storage_places_files_and_reports_free_space(tmp_path):
    import pytest

    from terminal.hal.storage import LOW_SPACE_BYTES, DirectoryStorage

    storage = DirectoryStorage(tmp_path / "sd")
    assert storage.path("outbox.db") == tmp_path / "sd" / "outbox.db" and (tmp_path / "sd").is_dir()
    assert storage.free_bytes() > 0 and storage.is_low == (storage.free_bytes() < LOW_SPACE_BYTES)
    with pytest.raises(ValueError):
        storage.path("../escape")
