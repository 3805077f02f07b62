"""``fieldpos terminal run --sim --terminal-station rental``: the rental desk in the Textual window,
driven key by key; ``v`` and ``i`` scan with the emulated barcode scanner."""

import asyncio
import time

from host_sim.station import RENTAL_STAFF
from host_sim.station_ui import StationSimulator, StationUI

WAIT_S = 15.0  # a bound, not a speed claim: each wait ends as soon as its condition holds


async def until(pilot, ui, condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT_S} s; the display says {ui.display_text!r}, status {ui.status_text!r}")
        await pilot.pause(0.05)


def test_sun_scans_a_voucher_paid_earlier_then_a_rod_label_and_the_rod_goes_out(tmp_path):
    # A text printer, so the emulator itself decodes what is on the paper.
    with StationSimulator(tmp_path / "sim", station="rental", printer_profile="80mm-gb18030").start() as station:
        ui = StationUI(station)
        assert len(station.vouchers) == 2  # a rod's and a bike's, paid earlier in the day

        async def rental_staff():
            async with ui.run_test(size=(150, 40)) as pilot:
                await until(pilot, ui, lambda: "Tap staff card" in ui.display_text, "locked screen")
                await pilot.press("u")
                await until(pilot, ui, lambda: "Enter PIN" in ui.display_text, "PIN screen")
                await pilot.press(*RENTAL_STAFF[4], "enter")
                await until(pilot, ui, lambda: "Scan: voucher/label" in ui.display_text and "ONLINE" in ui.display_text,
                            "the rental desk's idle screen")
                await pilot.press("v")  # the rod's voucher
                await until(pilot, ui, lambda: "Voucher OK" in ui.display_text and "Rod" in ui.display_text,
                            "the voucher's order on screen")
                await pilot.press("i")  # ROD-0042's label
                texts = lambda: [path.read_text() for path in sorted(station.receipts_dir.glob("receipt-*.txt"))]
                await until(pilot, ui, lambda: "Handed out" in ui.display_text and len(texts()) >= 2, "the hand-out receipts")
                assert all("租赁出借" in text and "ROD-0042" in text for text in texts()), texts()
                assert "outbox pending 0" in ui.status_text

        asyncio.run(rental_staff())
        state = station.rig.reader.db.execute("SELECT state FROM rental_item WHERE label='ROD-0042'").fetchone()[0]
        assert state == "out"
