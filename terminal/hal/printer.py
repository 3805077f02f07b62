"""The receipt printer as the terminal app sees it: status, print a receipt, cut.

A backend subclasses :class:`Printer` and must implement :meth:`Printer.status`,
:meth:`Printer.print_receipt` and :meth:`Printer.cut`. It may use :meth:`Printer.ensure_ready`,
which turns a status into the error a cashier can act on. The real backend is
``terminal.drivers.escpos.EscPosPrinter``; in the host simulator the same driver talks to
``host_sim.devices.printer.EmulatedPrinter`` over a pty.

Printing a two-part receipt::

    for copy in receipt.copies():  # customer, then merchant
        printer.print_receipt(copy)  # raises before printing anything if the printer is not ready
        printer.cut()
    if printer.status().is_paper_out:  # the paper ran out during the receipt: offer Reprint
        ...
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from terminal.errors import PaperOutError, PrinterCoverOpenError, PrinterOfflineError

if TYPE_CHECKING:  # Pillow is imported only by code that really renders
    from PIL.Image import Image

    from terminal.receipt import ReceiptData

# Print widths of the two roll sizes at 203 dpi (8 dots/mm): the printable area of a 58 mm roll is
# 48 mm and of an 80 mm roll 72 mm (Epson TM-T20 / TM-T88 specifications).
WIDTH_58MM_DOTS = 384
WIDTH_80MM_DOTS = 576

TextMode = Literal["gb18030", "raster"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterProfile:
    """What one printer model can do; chosen per terminal in its config."""

    name: str
    width_dots: int
    # "gb18030": text is sent as characters and the printer's own Chinese font prints them (small,
    # fast over a slow serial line). "raster": the whole receipt is one image (any glyph, any
    # printer, but ~20x more bytes).
    text_mode: TextMode
    native_qr: bool
    has_cutter: bool

    def __post_init__(self) -> None:
        if self.width_dots not in (WIDTH_58MM_DOTS, WIDTH_80MM_DOTS):
            raise ValueError(f"width_dots must be {WIDTH_58MM_DOTS} or {WIDTH_80MM_DOTS}, not {self.width_dots}")
        if self.text_mode not in ("gb18030", "raster"):
            raise ValueError(f"text_mode must be 'gb18030' or 'raster', not {self.text_mode!r}")

    @property
    def width_bytes(self) -> int:
        return self.width_dots // 8


# Profiles we have met in parks. A cheap 58 mm Chinese printer (Xprinter XP-58 class) has a GB18030
# font but no QR and no cutter; an 80 mm kitchen-style printer (Epson TM-T20 class) has all three.
PROFILE_58MM_TEXT = PrinterProfile(
    name="58mm-gb18030", width_dots=WIDTH_58MM_DOTS, text_mode="gb18030", native_qr=False, has_cutter=False
)
PROFILE_58MM_RASTER = PrinterProfile(
    name="58mm-raster", width_dots=WIDTH_58MM_DOTS, text_mode="raster", native_qr=False, has_cutter=True
)
PROFILE_80MM_TEXT = PrinterProfile(
    name="80mm-gb18030", width_dots=WIDTH_80MM_DOTS, text_mode="gb18030", native_qr=True, has_cutter=True
)
PROFILE_80MM_RASTER = PrinterProfile(
    name="80mm-raster", width_dots=WIDTH_80MM_DOTS, text_mode="raster", native_qr=True, has_cutter=True
)
PROFILES = {p.name: p for p in (PROFILE_58MM_TEXT, PROFILE_58MM_RASTER, PROFILE_80MM_TEXT, PROFILE_80MM_RASTER)}


@dataclass(frozen=True, slots=True, kw_only=True)
class PrinterStatus:
    """What the printer reported when last asked."""

    is_online: bool
    is_paper_out: bool
    is_paper_near_end: bool
    is_cover_open: bool

    @property
    def is_ready(self) -> bool:
        return self.is_online and not (self.is_paper_out or self.is_cover_open)


class Printer(abc.ABC):
    """A receipt printer. Subclasses implement ``status``, ``print_receipt`` and ``cut``."""

    profile: PrinterProfile

    @abc.abstractmethod
    def status(self) -> PrinterStatus:
        """Ask the printer now. Raise PrinterOfflineError if it does not answer."""

    @abc.abstractmethod
    def print_receipt(self, receipt: ReceiptData | Image) -> None:
        """Check the printer is ready (raising PaperOutError, PrinterCoverOpenError or
        PrinterOfflineError before a single line is printed), then print one copy: a ReceiptData is
        rendered the way the profile says (text or raster); an image (1-bit, profile width) is
        printed as it is. Does not cut."""

    @abc.abstractmethod
    def cut(self) -> None:
        """End the receipt: partial cut where there is a cutter, else feed it to the tear bar."""

    @staticmethod
    def ensure_ready(status: PrinterStatus) -> PrinterStatus:
        """Return ``status`` if a receipt can be printed now, else raise the error to show."""
        if status.is_paper_out:
            raise PaperOutError()
        if status.is_cover_open:
            raise PrinterCoverOpenError()
        if not status.is_online:
            raise PrinterOfflineError()
        return status
