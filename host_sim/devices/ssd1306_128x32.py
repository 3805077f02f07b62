"""An emulated SSD1306 on a 128x32 module: the same controller as :mod:`.ssd1306` (its display RAM
is 128x64 whatever the glass), wired to a panel of 32 rows.

What differs is the panel: 32 rows, wired to the COM lines in sequence, so a driver must set the
multiplex ratio to 32 (A8h 1Fh) and the sequential COM pin configuration (DAh 02h). With the 64-row
module's alternative configuration (DAh 12h) the rows come out interleaved (every other RAM row,
then the rest), and with a larger multiplex ratio only the frame's upper half shows: both visible
in :meth:`to_image`, so a driver set up for the wrong module fails a pixel check.
"""

from __future__ import annotations

from host_sim.devices.ssd1306 import RAM_ROWS, EmulatedSsd1306

PANEL_ROWS = 32


class EmulatedSsd1306x32(EmulatedSsd1306):
    """The controller of a 128x32 module; ``write`` takes one I2C transaction."""

    panel_rows = PANEL_ROWS

    def _ram_row_for_panel_row(self, y: int) -> int | None:
        """Which RAM row lights panel row ``y`` of the 32; None past the multiplex ratio.

        The glass is wired to COM0..31 only: with a multiplex ratio above 32 the controller still
        drives those 32 lines as before (the frame's lower half never shows); with the alternative
        COM pin configuration, panel rows take the even COM lines, then the odd ones."""
        com = y if self.is_com_scan_remapped else PANEL_ROWS - 1 - y
        if self.is_com_pins_alternative:
            com = 2 * com if com < PANEL_ROWS // 2 else 2 * (com - PANEL_ROWS // 2) + 1
        if com >= self.multiplex_rows:
            return None
        return (com + self.start_line + self.display_offset) % RAM_ROWS
