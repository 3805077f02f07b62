"""The tap's MFRC522 driver: find one MIFARE Classic 1K card and read its 96-byte record.

The terminal's driver (terminal/drivers/mfrc522.py) cannot run on MicroPython (enum, dataclasses,
typing), so this is a second, smaller one for the board, tested against the same byte-level
emulation (host_sim.devices.mfrc522.FakeSpiDev) — it only reads. Register and command values are
the datasheet's (NXP MFRC522 rev. 3.9) as that driver names them.

SPI goes through one function, ``transfer(bytes) -> bytes``: one chip-select-low exchange,
returning what the chip clocked out. On a board, :func:`machine_spi_transfer` makes it from a
``machine.SPI`` and its chip-select ``machine.Pin``.
"""

from tap import card
from tap.errors import TapError

# Registers
COMMAND, COM_IRQ, DIV_IRQ, ERROR, STATUS_2, FIFO_DATA, FIFO_LEVEL, CONTROL, BIT_FRAMING, COLLISION = (
    0x01, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x0E)
MODE, TX_CONTROL, TX_ASK, CRC_HIGH, CRC_LOW, TIMER_MODE, TIMER_PRESCALER, TIMER_RELOAD_HIGH, TIMER_RELOAD_LOW, VERSION = (
    0x11, 0x14, 0x15, 0x21, 0x22, 0x2A, 0x2B, 0x2C, 0x2D, 0x37)
# Commands
IDLE, CALCULATE_CRC, TRANSCEIVE, AUTHENTICATE, SOFT_RESET = 0x0, 0x3, 0xC, 0xE, 0xF
# Bits
RX_IRQ, IDLE_IRQ, ERROR_IRQ, TIMER_IRQ, CRC_IRQ = 0x20, 0x10, 0x02, 0x01, 0x04
COLLISION_ERROR, GARBLED_ERRORS, CRYPTO1_ON = 0x08, 0x13, 0x08
KNOWN_VERSIONS = (0x91, 0x92, 0x88, 0x12)
# Card commands (ISO/IEC 14443-3, MIFARE Classic)
REQA, WUPA, CASCADE_TAG = 0x26, 0x52, 0x88
SELECT = (0x93, 0x95)
AUTH_KEY_A, READ, HALT = 0x60, 0x30, b"\x50\x00"
# The chip's timer (25 us ticks, 1000 of them) ends a wait for a card that does not answer: about
# 25 ms. Polled every millisecond, so a wait gives up after that and a margin.
MAX_POLLS = 40
READER_FAULT = "CARD_READER_FAULT"
CARD_GONE = "CARD_GONE"


def _fail(code, message):
    raise TapError(code, message)


class Mfrc522:
    def __init__(self, transfer, sleep_ms):
        self.transfer = transfer
        self.sleep_ms = sleep_ms

    # ------------------------------------------------------------ registers
    def read(self, register):
        return self.transfer(bytes((((register << 1) & 0x7E) | 0x80, 0)))[1]

    def read_fifo(self, count):
        # One transaction: every byte sent while reading names the next register (datasheet 8.1.2.1).
        return bytes(self.transfer(bytes((((FIFO_DATA << 1) & 0x7E) | 0x80,)) * count + b"\x00")[1:])

    def write(self, register, data):
        self.transfer(bytes(((register << 1) & 0x7E,)) + bytes(data))

    def reset(self):
        self.write(COMMAND, (SOFT_RESET,))
        for _ in range(3):
            self.sleep_ms(50)
            if not self.read(COMMAND) & 0x10:  # the oscillator is running again
                break
        else:
            _fail(READER_FAULT, "card reader did not start")
        if self.read(VERSION) not in KNOWN_VERSIONS:
            _fail(READER_FAULT, "no card reader on the SPI bus")
        for register, value in ((TIMER_MODE, 0x80), (TIMER_PRESCALER, 169), (TIMER_RELOAD_HIGH, 1000 >> 8),
                                (TIMER_RELOAD_LOW, 1000 & 0xFF), (TX_ASK, 0x40), (MODE, 0x3D), (COLLISION, 0x00),
                                (TX_CONTROL, 0x83)):
            self.write(register, (value,))

    # ------------------------------------------------------------ commands
    def _load(self, data):
        self.write(COMMAND, (IDLE,))
        self.write(FIFO_LEVEL, (0x80,))  # flush
        self.write(FIFO_DATA, data)

    def crc(self, data):
        self._load(data)
        self.write(DIV_IRQ, (CRC_IRQ,))
        self.write(COMMAND, (CALCULATE_CRC,))
        for _ in range(MAX_POLLS):
            if self.read(DIV_IRQ) & CRC_IRQ:
                return bytes((self.read(CRC_LOW), self.read(CRC_HIGH)))
            self.sleep_ms(1)
        _fail(READER_FAULT, "card reader CRC unit did not answer")

    def _wait(self, done):
        for _ in range(MAX_POLLS):
            irq = self.read(COM_IRQ)
            if irq & (done | TIMER_IRQ | ERROR_IRQ):
                return irq
            self.sleep_ms(1)
        _fail(READER_FAULT, "card reader timer never fired")

    def transceive(self, data, last_bits=0):
        """(answer bytes, collision) or None when no card answered in time."""
        self._load(data)
        self.write(COM_IRQ, (0x7F,))
        self.write(COMMAND, (TRANSCEIVE,))
        self.write(BIT_FRAMING, (0x80 | last_bits,))
        irq = self._wait(RX_IRQ)
        if not irq & RX_IRQ:
            return None
        error = self.read(ERROR)
        if error & GARBLED_ERRORS and not error & COLLISION_ERROR:
            _fail(card.CARD_RECORD_INVALID, "card answer garbled: tap again")
        count = self.read(FIFO_LEVEL) & 0x7F
        answer = self.read_fifo(count) if count else b""
        return answer, bool(error & COLLISION_ERROR)

    def with_crc(self, frame):
        return frame + self.crc(frame)

    def authenticate(self, key, block, uid):
        self._load(bytes((AUTH_KEY_A, block)) + key + uid[-4:])
        self.write(COM_IRQ, (0x7F,))
        self.write(COMMAND, (AUTHENTICATE,))
        irq = self._wait(IDLE_IRQ)
        if irq & IDLE_IRQ and self.read(STATUS_2) & CRYPTO1_ON:
            return True
        self.write(COMMAND, (IDLE,))
        self.write(CONTROL, (0x80,))  # stop the timer
        self.write(STATUS_2, (0,))
        return False

    def end_session(self):
        self.write(STATUS_2, (0,))

    # ------------------------------------------------------------ one card
    def _select(self):
        uid = b""
        for code in SELECT:
            reply = self.transceive(bytes((code, 0x20)))
            if reply is None or reply[1]:
                _fail(CARD_GONE, "hold one card still on the reader")
            part = reply[0]
            if len(part) != 5 or part[0] ^ part[1] ^ part[2] ^ part[3] != part[4]:
                _fail(card.CARD_RECORD_INVALID, "card answer garbled: tap again")
            sak = self.transceive(self.with_crc(bytes((code, 0x70)) + part))
            if sak is None or len(sak[0]) != 3:
                _fail(CARD_GONE, "hold the card still on the reader")
            if not sak[0][0] & 0x04:
                uid += part[:4]
                return uid, sak[0][0]
            uid += part[1:4]
        _fail(card.CARD_RECORD_INVALID, "not a park card")

    def poll(self):
        """The UID of a card in the field, now selected, or None when there is none."""
        self.end_session()
        if self.transceive(bytes((REQA,)), 7) is None:
            return None
        uid, sak = self._select()
        if not sak & 0x08:
            _fail(card.CARD_RECORD_INVALID, "not a MIFARE Classic: not a park card")
        return uid

    def read_record(self, uid, key):
        """The 96 bytes of the record (blocks 4, 5, 6, 8, 9, 10) with sector key A ``key``."""
        data = b""
        for block in card.RECORD_BLOCKS:
            if block in (4, 8) and not self.authenticate(key, block, uid):
                _fail(card.CARD_RECORD_INVALID, "the card's key does not open it: not this park's card")
            reply = self.transceive(self.with_crc(bytes((READ, block))))
            if reply is None or len(reply[0]) != 18 or self.crc(reply[0][:16]) != reply[0][16:]:
                _fail(CARD_GONE, "card moved away: tap again")
            data += reply[0][:16]
        return data

    def halt(self):
        self.transceive(self.with_crc(HALT))
        self.write(COMMAND, (IDLE,))
        self.write(CONTROL, (0x80,))
        self.end_session()


class CardReader:
    """A tap: the UID of the card on the reader and its record, opened with the park's sector key."""

    def __init__(self, chip, card_key_master):
        self.chip = chip
        self.card_key_master = card_key_master

    def read(self):
        """(uid, record bytes) of a card on the reader, or None."""
        uid = self.chip.poll()
        if uid is None:
            return None
        try:
            return uid, self.chip.read_record(uid, card.sector_key(self.card_key_master, uid))
        finally:
            self.chip.halt()


def machine_spi_transfer(spi, chip_select):
    """``transfer`` over a board's ``machine.SPI`` (mode 0, MSB first, 1 MHz) and chip-select pin."""
    def transfer(data):
        answer = bytearray(len(data))
        chip_select.value(0)
        try:
            spi.write_readinto(data, answer)
        finally:
            chip_select.value(1)
        return answer
    return transfer
