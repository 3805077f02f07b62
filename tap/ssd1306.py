"""An SSD1306 OLED (128x64 or 128x32) on I2C for the tap: the outcome's lines in framebuf's 8x8
font. ``write`` is one I2C transaction (the bytes after the address): on a board
``lambda data: i2c.writeto(0x3C, data)``; in the tests host_sim's emulated controller.

The set-up follows the SSD1306 datasheet's application note sequence: horizontal addressing, so a
whole frame is one window; segment remap and COM scan reversed (the module's right way up);
multiplex ratio and COM pin wiring by height (sequential on 32-row modules, alternative on 64-row
ones); the charge pump on; display on last, so nothing random shows while it is set up.

The font is ASCII only: each line's Chinese half is left out on the panel (the English half says
the same), and a line longer than the 16 characters a row holds wraps at a space.
"""

WIDTH = 128
COLUMNS = WIDTH // 8
_COMMAND = b"\x00"  # control byte: Co 0, D/C# 0 - every following byte a command
_DATA = b"\x40"  # control byte: D/C# 1 - every following byte display RAM


def panel_text(line):
    """The part of ``line`` the 8x8 ASCII font can show: "已付 Paid 15.00" -> "Paid 15.00"."""
    return "".join(char for char in line if " " <= char <= "~").strip()


def wrap(lines, columns=COLUMNS):
    """``lines`` as panel rows of at most ``columns`` characters, broken at spaces where possible."""
    rows = []
    for line in lines:
        text = panel_text(line)
        while len(text) > columns:
            cut = text.rfind(" ", 0, columns + 1)
            if cut <= 0:
                cut = columns
            rows.append(text[:cut].rstrip())
            text = text[cut:].lstrip()
        if text:
            rows.append(text)
    return rows


class Ssd1306:
    def __init__(self, write, height=64):
        if height not in (32, 64):
            raise ValueError("an SSD1306 module here is 128x32 or 128x64")
        import framebuf  # MicroPython's; imported here so the text helpers also run on CPython

        self.write = write
        self.height = height
        self.pages = height // 8
        self.buffer = bytearray(WIDTH * self.pages)
        self.frame = framebuf.FrameBuffer(self.buffer, WIDTH, height, framebuf.MONO_VLSB)
        self.start()

    def start(self):
        """The set-up sequence (again after a power cut), then a blank frame."""
        self.write(_COMMAND + bytes((
            0xAE,                                   # display off while it is set up
            0xD5, 0x80,                             # clock divide / oscillator: reset value
            0xA8, self.height - 1,                  # multiplex ratio: the module's rows
            0xD3, 0x00,                             # no display offset
            0x40,                                   # start line 0
            0x8D, 0x14,                             # charge pump on (no external VCC)
            0x20, 0x00,                             # horizontal addressing
            0xA1, 0xC8,                             # segment remap, COM scan reversed
            0xDA, 0x02 if self.height == 32 else 0x12,  # COM pins: sequential / alternative
            0x81, 0x8F,                             # contrast
            0xD9, 0xF1,                             # pre-charge
            0xDB, 0x40,                             # VCOMH deselect level
            0xA4, 0xA6,                             # show RAM, not inverted
            0xAF,                                   # display on
        )))
        self.frame.fill(0)
        self.show()

    def show(self):
        """Send the frame: the whole window, then one transaction per page (129 bytes, within
        every board's I2C buffer)."""
        self.write(_COMMAND + bytes((0x21, 0, WIDTH - 1, 0x22, 0, self.pages - 1)))
        view = memoryview(self.buffer)
        for page in range(self.pages):
            self.write(_DATA + bytes(view[page * WIDTH:(page + 1) * WIDTH]))

    def text(self, lines):
        """Show ``lines`` (tap.hal's outcome lines), one 8-pixel row each, from the top; rows
        past the panel's are left out."""
        self.frame.fill(0)
        for row, text in enumerate(wrap(lines)[:self.pages]):
            self.frame.text(text, 0, row * 8, 1)
        self.show()
