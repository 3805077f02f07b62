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
from typing import TYPE_CHECKING

from terminal.errors import PaperOutError, PrinterCoverOpenError, PrinterOfflineError
from terminal.printer_profiles import (  # noqa: F401  (the profiles live there; re-exported for callers)
    PROFILE_58MM_AUTO,
    PROFILE_58MM_RASTER,
    PROFILE_58MM_TEXT,
    PROFILE_80MM_AUTO,
    PROFILE_80MM_RASTER,
    PROFILE_80MM_TEXT,
    PROFILES,
    WIDTH_58MM_DOTS,
    WIDTH_80MM_DOTS,
    PrinterProfile,
    TextMode,
)

if TYPE_CHECKING:  # Pillow is imported only by code that really renders
    from PIL.Image import Image

    from terminal.receipt import ReceiptData


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
