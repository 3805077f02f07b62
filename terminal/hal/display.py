"""The display as the terminal app sees it: show a whole 1-bit frame, clear it.

A backend subclasses :class:`Display` and must implement :attr:`Display.size` and
:meth:`Display.show`; it may override :meth:`Display.clear` (the default shows a blank frame) and
:meth:`Display.close` (the default does nothing). The real backend is
``terminal.drivers.ssd1306.Ssd1306Display`` (a 128x64 OLED on I2C); in the host simulator the same
driver writes to ``host_sim.devices.ssd1306.EmulatedSsd1306``, a byte-level model of the controller.

Frames are Pillow images in mode "1" of exactly the panel's size, where 1 is a lit pixel. The app
draws them with ``terminal.screens.render_screen``::

    display.show(render_screen(Screen(title="钓鱼 Fishing", lines=["请刷卡 Tap card"]), display.size))

``show`` is cheap to call with an unchanged frame: a backend sends only what changed.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported only by code that really draws
    from PIL.Image import Image


class Display(abc.ABC):
    """A monochrome display panel."""

    @property
    @abc.abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""

    @abc.abstractmethod
    def show(self, image: Image) -> None:
        """Put ``image`` (mode "1", exactly :attr:`size`) on the panel.

        Raises ValueError for a wrong size or mode, ``terminal.errors.DisplayError`` if the panel
        does not answer.
        """

    def clear(self) -> None:
        """Blank the panel (all pixels off)."""
        from PIL import Image as PillowImage

        self.show(PillowImage.new("1", self.size, 0))

    def close(self) -> None:  # noqa: B027 - optional hook, not every backend holds a device
        """Release the device. The default does nothing."""

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()


def check_frame(image: Image, size: tuple[int, int]) -> None:
    """Raise ValueError unless ``image`` is a mode "1" image of ``size``."""
    if getattr(image, "mode", None) != "1":
        mode = getattr(image, "mode", type(image).__name__)
        raise ValueError(f"a frame must be a mode '1' Pillow image, not {mode!r}")
    if tuple(image.size) != tuple(size):
        raise ValueError(f"a frame must be {size[0]}x{size[1]}, not {image.size[0]}x{image.size[1]}")
