"""An emulated NXP MFRC522 behind a fake ``spidev.SpiDev``, with an RF field of virtual cards.

``FakeSpiDev`` has the spidev API the real driver uses (open, close, xfer2, max_speed_hz, mode) and
speaks the chip's SPI protocol (datasheet section 8.1.2). Behind it, :class:`EmulatedMfrc522` models
the registers that matter to a driver: the 64-byte FIFO and FIFOLevelReg, CommandReg (Idle, Mem,
CalcCRC, Transceive, MFAuthent, SoftReset, NoCmdChange), ComIrqReg and DivIrqReg with their set/clear
semantics, ErrorReg (collision, parity, protocol, CRC, buffer overflow), BitFramingReg (StartSend,
TxLastBits), ControlReg (RxLastBits, timer start/stop), CollReg, Status2Reg MFCrypto1On,
CRCResultReg, TxModeReg/RxModeReg CRC, TxControlReg (antenna) and the timer (TModeReg TAuto,
TPrescalerReg, TReloadReg). Time is a clock the test controls (:class:`VirtualClock`), so the timer
fires, and cards answer, after exactly the air time ISO/IEC 14443 gives them.

Every SPI transaction is counted and logged with its time, for tests and ``bench/spi_count.py``.
Driver mistakes a real chip would punish silently (reading an empty FIFO) are counted too;
mistakes that break the SPI protocol itself raise ``ValueError``.

Wiring the real driver to it::

    spi = FakeSpiDev(0, 0)
    reader = Mfrc522CardReader(spi, sleep=spi.clock.sleep)
    spi.field.present(MifareClassic1K(bytes.fromhex("04A1B2C3D4E5F6")))
"""

from __future__ import annotations

import errno
import time
from collections import deque
from dataclasses import dataclass

from host_sim.devices.mifare import FieldReply, Frame, RfField, crc_a

# --- time ---


class VirtualClock:
    """Simulated time: it moves only when the driver sleeps or the SPI bus is busy."""

    def __init__(self, start_s: float = 0.0):
        self._now_s = start_s

    def now(self) -> float:
        return self._now_s

    def sleep(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        self._now_s += seconds

    spend = sleep  # time the bus is busy


class WallClock:
    """Real time, for the park-day simulator running against a wall clock."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def spend(self, seconds: float) -> None:
        pass  # the bus time has really passed


# --- chip constants (NXP MFRC522 data sheet rev. 3.9) ---

COMMAND = 0x01
COM_IRQ = 0x04
DIV_IRQ = 0x05
ERROR = 0x06
STATUS_1 = 0x07
STATUS_2 = 0x08
FIFO_DATA = 0x09
FIFO_LEVEL = 0x0A
CONTROL = 0x0C
BIT_FRAMING = 0x0D
COLLISION = 0x0E
MODE = 0x11
TX_MODE = 0x12
RX_MODE = 0x13
TX_CONTROL = 0x14
CRC_RESULT_HIGH = 0x21
CRC_RESULT_LOW = 0x22
TIMER_MODE = 0x2A
TIMER_PRESCALER = 0x2B
TIMER_RELOAD_HIGH = 0x2C
TIMER_RELOAD_LOW = 0x2D
VERSION = 0x37

# Register reset values (datasheet 9.3, the "reset value" of each register table). Registers not
# listed reset to 0x00. VersionReg 0x92 is MFRC522 version 2.0.
RESET_VALUES = {
    COMMAND: 0x20, 0x02: 0x80, COM_IRQ: 0x14, STATUS_1: 0x21, 0x0B: 0x08, CONTROL: 0x10, COLLISION: 0xA0,
    MODE: 0x3F, TX_CONTROL: 0x80, 0x16: 0x10, 0x17: 0x84, 0x18: 0x84, 0x19: 0x4D, 0x1C: 0x62, 0x1F: 0xEB,
    CRC_RESULT_HIGH: 0xFF, CRC_RESULT_LOW: 0xFF, 0x24: 0x26, 0x26: 0x48, 0x27: 0x88, 0x28: 0x20,
    0x29: 0x20, VERSION: 0x92,
}  # fmt: skip
READ_ONLY = {ERROR, STATUS_1, VERSION, CRC_RESULT_HIGH, CRC_RESULT_LOW}

# CommandReg command codes (datasheet 10.3, Table 149) and bits.
IDLE, MEM, GENERATE_RANDOM_ID, CALCULATE_CRC, TRANSMIT = 0x0, 0x1, 0x2, 0x3, 0x4
NO_COMMAND_CHANGE, RECEIVE, TRANSCEIVE, MIFARE_AUTHENTICATE, SOFT_RESET = 0x7, 0x8, 0xC, 0xE, 0xF
KNOWN_COMMANDS = {IDLE, MEM, GENERATE_RANDOM_ID, CALCULATE_CRC, TRANSMIT, NO_COMMAND_CHANGE, RECEIVE,
                  TRANSCEIVE, MIFARE_AUTHENTICATE, SOFT_RESET}  # fmt: skip
COMMAND_MASK = 0x0F
POWER_DOWN = 0x10
# ComIrqReg / DivIrqReg (9.3.1.5, 9.3.1.6): bit 7 of a write says set (1) or clear (0) the marked bits.
SET_MARKED_BITS = 0x80
TX_IRQ, RX_IRQ, IDLE_IRQ, ERROR_IRQ, TIMER_IRQ = 0x40, 0x20, 0x10, 0x02, 0x01
CRC_IRQ = 0x04
# ErrorReg (9.3.1.7).
BUFFER_OVERFLOW, COLLISION_ERROR, CRC_ERROR, PARITY_ERROR, PROTOCOL_ERROR = 0x10, 0x08, 0x04, 0x02, 0x01
# Cleared when the receiver starts (9.3.1.7); BufferOvfl only by FlushBuffer.
RECEIVER_START_CLEARS = COLLISION_ERROR | CRC_ERROR | PARITY_ERROR | PROTOCOL_ERROR
# Status1Reg (9.3.1.8) and Status2Reg (9.3.1.9).
CRC_READY, TIMER_RUNNING = 0x20, 0x08
MIFARE_CRYPTO1_ON = 0x08
STATUS_2_WRITABLE = 0xC8  # TempSensClear, I2CForceHS, MFCrypto1On (which software can only clear)
# FIFOLevelReg, ControlReg, BitFramingReg, CollReg.
FLUSH_BUFFER = 0x80
TIMER_STOP_NOW, TIMER_START_NOW = 0x80, 0x40
START_SEND = 0x80
TX_LAST_BITS_MASK = 0x07
VALUES_AFTER_COLLISION = 0x80
COLLISION_POSITION_NOT_VALID = 0x20
# TxModeReg / RxModeReg bit 7: the chip appends / checks CRC_A itself.
CRC_ENABLE = 0x80
# TModeReg: bit 7 TAuto, bit 4 TAutoRestart, bits 3..0 high nibble of the prescaler.
TIMER_AUTO, TIMER_AUTO_RESTART = 0x80, 0x10
# TxControlReg bits 1..0: antenna drivers on.
ANTENNA_ON = 0x03
# ModeReg bits 1..0 select the CRC preset (9.3.2.2); bit 7 MSBFirst is not modelled.
CRC_PRESETS = (0x0000, 0x6363, 0xA671, 0xFFFF)
CRC_MSB_FIRST = 0x80

FIFO_SIZE_BYTES = 64
MEM_BUFFER_BYTES = 25  # the Mem command's internal buffer (10.3.1.2)
MIFARE_AUTHENTICATE_FIFO_BYTES = 12  # command, block, 6-byte key, 4 UID bytes (10.3.1.9)
CARRIER_HZ = 13_560_000
# After SoftReset the oscillator restarts (8.8.2: crystal start-up plus 37.74 us); we assume 1 ms.
# Until then CommandReg reads PowerDown and writes are lost.
OSCILLATOR_START_S = 0.001

# Air timing at 106 kbit/s (ISO/IEC 14443-2/-3): 128 carrier cycles per bit; a byte is 8 bits plus
# parity, a frame adds start and end bits; a card answers FDT = (9 * 128 + 84) / fc after the
# reader's last bit (MF1S50yyX section 9.2, Figure 10).
BIT_TIME_S = 128 / CARRIER_HZ
FRAME_DELAY_S = (9 * 128 + 84) / CARRIER_HZ
# MFAuthent: after the 4-byte command the card sends a 4-byte nonce, the chip 8 bytes, the card 4.
AUTHENTICATION_FRAMES = ((4, 4), (8, 4))

# spidev's buffer limit (/sys/module/spidev/parameters/bufsiz default); spidev raises OverflowError.
SPIDEV_MAX_TRANSFER_BYTES = 4096
# The MFRC522 speaks SPI mode 0 only (8.1.2); in another mode it clocks garbage.
SPI_MODE_0 = 0
# One spidev ioctl costs more than its bits: we assume 20 us per transaction on a Pi Zero 2 W.
TRANSACTION_OVERHEAD_S = 20e-6
TRANSACTION_LOG_LIMIT = 10_000


def frame_bits(frame: Frame) -> int:
    if frame.last_byte_bits == 8:
        return 2 + 9 * len(frame.data)
    return 2 + 9 * (len(frame.data) - 1) + frame.last_byte_bits


@dataclass(frozen=True, slots=True)
class _Reception:
    starts_s: float
    ends_s: float
    reply: FieldReply


class EmulatedMfrc522:
    """The chip's registers and commands. Times come from ``clock``; call :meth:`advance` before
    each SPI transaction so events due by then (answers, timer expiry) have happened."""

    def __init__(self, field: RfField, clock: VirtualClock | WallClock):
        self.field = field
        self.clock = clock
        self.fifo_underflow_reads = 0  # a driver reading more than the FIFO holds gets 0x00
        self.ignored_writes_while_starting = 0
        self._power_on()

    def _power_on(self) -> None:
        self.registers = bytearray(64)
        for address, value in RESET_VALUES.items():
            self.registers[address] = value
        self.fifo: deque[int] = deque()
        self.mem_buffer = bytes(MEM_BUFFER_BYTES)
        self._timer_deadline_s: float | None = None
        self._reception: _Reception | None = None
        self._authentication_done_s: float | None = None
        self._crc = 0
        self._starting_until_s = 0.0

    # --- time ---

    def advance(self, now_s: float) -> None:
        if self._authentication_done_s is not None and now_s >= self._authentication_done_s:
            self._authentication_done_s = None
            self._timer_deadline_s = None
            self.registers[STATUS_2] |= MIFARE_CRYPTO1_ON
            self._end_command()
        reception = self._reception
        if reception and now_s >= reception.starts_s and self._timer_deadline_s is not None:
            if reception.starts_s < self._timer_deadline_s:
                self._timer_deadline_s = None  # TAuto: the timer stops when an answer begins (8.5)
        if self._timer_deadline_s is not None and now_s >= self._timer_deadline_s:
            self.registers[COM_IRQ] |= TIMER_IRQ
            restart = self.registers[TIMER_MODE] & TIMER_AUTO_RESTART
            self._timer_deadline_s = self._timer_deadline_s + self._timer_period_s() if restart else None
        if reception and now_s >= reception.ends_s:
            self._reception = None
            self._receive(reception.reply)

    def _timer_period_s(self) -> float:
        prescaler = (self.registers[TIMER_MODE] & 0x0F) << 8 | self.registers[TIMER_PRESCALER]
        reload = self.registers[TIMER_RELOAD_HIGH] << 8 | self.registers[TIMER_RELOAD_LOW]
        return (reload + 1) * (2 * prescaler + 1) / CARRIER_HZ  # datasheet 8.5

    def _start_timer_after(self, transmission_end_s: float) -> None:
        if self.registers[TIMER_MODE] & TIMER_AUTO:
            self._timer_deadline_s = transmission_end_s + self._timer_period_s()

    # --- register access ---

    def read(self, address: int) -> int:
        now_s = self.clock.now()
        if address == FIFO_DATA:
            if not self.fifo:
                self.fifo_underflow_reads += 1
                return 0x00
            return self.fifo.popleft()
        if address == FIFO_LEVEL:
            return len(self.fifo)
        if address == COMMAND and now_s < self._starting_until_s:
            return self.registers[COMMAND] | POWER_DOWN
        if address == STATUS_1:
            running = TIMER_RUNNING if self._timer_deadline_s is not None else 0
            return (
                (self.registers[STATUS_1] & ~(TIMER_RUNNING | CRC_READY) & 0xFF)
                | running
                | (CRC_READY if self.registers[DIV_IRQ] & CRC_IRQ else 0)
            )
        return self.registers[address]

    def write(self, address: int, value: int) -> None:
        now_s = self.clock.now()
        if now_s < self._starting_until_s:
            self.ignored_writes_while_starting += 1
            return
        if address == COMMAND:
            self.registers[COMMAND] = value & 0x30 | self.registers[COMMAND] & COMMAND_MASK
            if value & COMMAND_MASK != NO_COMMAND_CHANGE:
                self._start_command(value & COMMAND_MASK, now_s)
        elif address in (COM_IRQ, DIV_IRQ):
            marked = value & 0x7F
            if value & SET_MARKED_BITS:
                self.registers[address] |= marked
            else:
                self.registers[address] &= ~marked & 0xFF
        elif address == STATUS_2:
            kept_crypto = self.registers[STATUS_2] & value & MIFARE_CRYPTO1_ON  # can clear, never set
            self.registers[STATUS_2] = (value & STATUS_2_WRITABLE & ~MIFARE_CRYPTO1_ON) | kept_crypto
        elif address == FIFO_DATA:
            self._push_fifo(value)
        elif address == FIFO_LEVEL:
            if value & FLUSH_BUFFER:
                self.fifo.clear()
                self.registers[ERROR] &= ~BUFFER_OVERFLOW & 0xFF
        elif address == CONTROL:
            if value & TIMER_STOP_NOW:
                self._timer_deadline_s = None
            elif value & TIMER_START_NOW:
                self._timer_deadline_s = now_s + self._timer_period_s()
        elif address == BIT_FRAMING:
            self.registers[BIT_FRAMING] = value & 0x7F  # StartSend reads back as 0
            if value & START_SEND and self._command() == TRANSCEIVE:
                self._transmit(now_s)
        elif address == COLLISION:
            self.registers[COLLISION] = value & VALUES_AFTER_COLLISION | self.registers[COLLISION] & 0x7F
        elif address not in READ_ONLY:
            self.registers[address] = value

    # --- commands (datasheet 10.3.1) ---

    def _command(self) -> int:
        return self.registers[COMMAND] & COMMAND_MASK

    def _set_command(self, command: int) -> None:
        self.registers[COMMAND] = self.registers[COMMAND] & ~COMMAND_MASK & 0xFF | command

    def _end_command(self) -> None:
        """A command that terminates by itself sets IdleIRq (9.3.1.5)."""
        self._set_command(IDLE)
        self.registers[COM_IRQ] |= IDLE_IRQ

    def _start_command(self, command: int, now_s: float) -> None:
        # Any new command cancels the running one: an answer still on its way is lost.
        self._reception = None
        self._authentication_done_s = None
        if command not in KNOWN_COMMANDS:
            self._end_command()  # an unknown command changes to Idle and sets IdleIRq (9.3.1.5)
            return
        if command in (GENERATE_RANDOM_ID, TRANSMIT, RECEIVE):
            raise NotImplementedError(f"the emulated MFRC522 does not model command {command:#x}")
        self._set_command(command)
        if command == SOFT_RESET:
            self._power_on()
            self._starting_until_s = now_s + OSCILLATOR_START_S
        elif command == MEM:
            self._mem()
        elif command == CALCULATE_CRC:
            if self.registers[MODE] & CRC_MSB_FIRST:
                raise NotImplementedError("the emulated MFRC522 does not model ModeReg MSBFirst")
            self._crc = CRC_PRESETS[self.registers[MODE] & 0x03]
            self._feed_crc(bytes(self.fifo))
            self.fifo.clear()
        elif command == MIFARE_AUTHENTICATE:
            self._authenticate(now_s)

    def _mem(self) -> None:
        if len(self.fifo) >= MEM_BUFFER_BYTES:  # FIFO -> buffer, else buffer -> FIFO (10.3.1.2)
            self.mem_buffer = bytes(self.fifo.popleft() for _ in range(MEM_BUFFER_BYTES))
        else:
            for byte in self.mem_buffer:
                self._push_fifo(byte)
        self._end_command()

    def _feed_crc(self, data: bytes) -> None:
        # CalcCRC keeps running: bytes written to the FIFO later are added (10.3.1.4).
        low, high = crc_a(data, self._crc)
        self._crc = high << 8 | low
        self.registers[CRC_RESULT_LOW], self.registers[CRC_RESULT_HIGH] = low, high
        self.registers[DIV_IRQ] |= CRC_IRQ

    def _push_fifo(self, value: int) -> None:
        if self._command() == CALCULATE_CRC:
            self._feed_crc(bytes((value,)))
        elif len(self.fifo) >= FIFO_SIZE_BYTES:
            self.registers[ERROR] |= BUFFER_OVERFLOW
            self.registers[COM_IRQ] |= ERROR_IRQ
        else:
            self.fifo.append(value)

    def _is_antenna_on(self) -> bool:
        return bool(self.registers[TX_CONTROL] & ANTENNA_ON)

    def _transmit(self, now_s: float) -> None:
        data = bytes(self.fifo)
        self.fifo.clear()
        if self.registers[TX_MODE] & CRC_ENABLE:
            data += crc_a(data, CRC_PRESETS[self.registers[MODE] & 0x03])
        frame = Frame(data, self.registers[BIT_FRAMING] & TX_LAST_BITS_MASK or 8)
        self.registers[ERROR] &= ~RECEIVER_START_CLEARS & 0xFF
        transmission_end_s = now_s + frame_bits(frame) * BIT_TIME_S
        self.registers[COM_IRQ] |= TX_IRQ
        self._start_timer_after(transmission_end_s)
        if not data or not self._is_antenna_on():
            return
        is_encrypted = bool(self.registers[STATUS_2] & MIFARE_CRYPTO1_ON)
        reply = self.field.exchange(frame, is_encrypted=is_encrypted)
        if reply is None:
            return
        starts_s = transmission_end_s + FRAME_DELAY_S + reply.processing_s
        self._reception = _Reception(starts_s, starts_s + frame_bits(reply.frame) * BIT_TIME_S, reply)

    def _receive(self, reply: FieldReply) -> None:
        data = bytearray(reply.frame.data)
        if reply.first_collision_bit is not None:
            self._mark_collision(data, reply.first_collision_bit)
        if reply.has_parity_error:
            self.registers[ERROR] |= PARITY_ERROR
        if self.registers[RX_MODE] & CRC_ENABLE and reply.frame.last_byte_bits == 8:
            if len(data) < 3 or crc_a(bytes(data[:-2]), CRC_PRESETS[self.registers[MODE] & 0x03]) != data[-2:]:
                self.registers[ERROR] |= CRC_ERROR
            data = data[:-2]
        for byte in data:
            self._push_fifo(byte)
        last_bits = reply.frame.last_byte_bits
        self.registers[CONTROL] = self.registers[CONTROL] & ~TX_LAST_BITS_MASK & 0xFF | (last_bits % 8)
        self.registers[COM_IRQ] |= RX_IRQ
        if self.registers[ERROR]:
            self.registers[COM_IRQ] |= ERROR_IRQ

    def _mark_collision(self, data: bytearray, bit_index: int) -> None:
        self.registers[ERROR] |= COLLISION_ERROR
        position = bit_index + 1  # CollPos counts from 1; 0 means bit 32 (9.3.1.16)
        collision = self.registers[COLLISION] & VALUES_AFTER_COLLISION
        if position <= 32:
            collision |= position % 32
        else:
            collision |= COLLISION_POSITION_NOT_VALID
        self.registers[COLLISION] = collision
        if not self.registers[COLLISION] & VALUES_AFTER_COLLISION:
            for index in range(bit_index, len(data) * 8):  # bits from the collision on read as 0
                data[index // 8] &= ~(1 << (index % 8)) & 0xFF

    def _authenticate(self, now_s: float) -> None:
        content = bytes(self.fifo)
        self.fifo.clear()
        self.registers[STATUS_2] &= ~MIFARE_CRYPTO1_ON & 0xFF
        if len(content) != MIFARE_AUTHENTICATE_FIFO_BYTES or content[0] not in (0x60, 0x61):
            self.registers[ERROR] |= PROTOCOL_ERROR
            self.registers[COM_IRQ] |= ERROR_IRQ
            return
        total_s = sum((frame_bits(Frame(bytes(sent))) + frame_bits(Frame(bytes(reply)))) * BIT_TIME_S
                      + FRAME_DELAY_S for sent, reply in AUTHENTICATION_FRAMES)  # fmt: skip
        # The timer restarts after each of our frames; a silent card leaves it to run out after the last.
        self._start_timer_after(now_s + total_s)
        if not self._is_antenna_on():
            return
        key_type = "A" if content[0] == 0x60 else "B"
        if self.field.authenticate(key_type, content[1], content[2:8], content[8:12]):
            self._authentication_done_s = now_s + total_s


@dataclass(frozen=True, slots=True)
class SpiTransaction:
    """One chip-select-low-to-high exchange on the bus."""

    time_s: float
    mosi: bytes
    miso: bytes


class FakeSpiDev:
    """``spidev.SpiDev`` with an emulated MFRC522 on the other end of the bus.

    ``FakeSpiDev(bus, device)`` opens at once, like spidev. ``field`` holds the cards,
    ``clock`` the time (a :class:`VirtualClock` unless given), ``chip`` the register model.
    """

    def __init__(
        self,
        bus: int | None = None,
        device: int | None = None,
        *,
        field: RfField | None = None,
        clock: VirtualClock | WallClock | None = None,
    ):
        self.field = field if field is not None else RfField()
        self.clock = clock if clock is not None else VirtualClock()
        self.chip = EmulatedMfrc522(self.field, self.clock)
        self.mode = SPI_MODE_0
        self.max_speed_hz = 0
        self.bits_per_word = 8
        self.lsbfirst = False
        self.transaction_count = 0
        self.transactions: deque[SpiTransaction] = deque(maxlen=TRANSACTION_LOG_LIMIT)
        self._is_open = False
        if bus is not None and device is not None:
            self.open(bus, device)

    def open(self, bus: int, device: int) -> None:
        self._is_open = True
        self.max_speed_hz = self.max_speed_hz or 1_000_000

    def close(self) -> None:
        self._is_open = False

    def xfer2(self, values: list[int], speed_hz: int = 0, delay_usecs: int = 0, bits_per_word: int = 0) -> list[int]:
        """One transaction with chip select held low throughout; returns what the chip clocked out.

        Like spidev, the list passed in is filled with the answer and returned.
        """
        if not self._is_open:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if not values:
            raise TypeError("Empty argument list.")
        if len(values) > SPIDEV_MAX_TRANSFER_BYTES:
            raise OverflowError(f"Argument list size exceeds {SPIDEV_MAX_TRANSFER_BYTES} bytes.")
        if not all(isinstance(value, int) for value in values):
            raise TypeError("Non-Int/Long value in arguments")
        mosi = bytes(value & 0xFF for value in values)  # spidev keeps the low 8 bits
        started_s = self.clock.now()
        self.chip.advance(started_s)
        miso = self._exchange(mosi)
        self.transaction_count += 1
        self.transactions.append(SpiTransaction(started_s, mosi, miso))
        speed_hz = speed_hz or self.max_speed_hz
        self.clock.spend(len(mosi) * 8 / speed_hz + TRANSACTION_OVERHEAD_S)
        if isinstance(values, list):
            values[:] = list(miso)
            return values
        return list(miso)

    def _exchange(self, mosi: bytes) -> bytes:
        if self.mode != SPI_MODE_0 or self.lsbfirst or self.bits_per_word != 8:
            return b"\xff" * len(mosi)  # the chip samples on the wrong edge: nothing it says makes sense
        address_byte = mosi[0]
        if address_byte & 0x01:
            raise ValueError(f"SPI address byte {address_byte:#04x} has bit 0 set; it must be 0 (datasheet 8.1.2.3)")
        if not address_byte & 0x80:  # write: every later byte goes to the same register (8.1.2.2)
            for value in mosi[1:]:
                self.chip.write(address_byte >> 1 & 0x3F, value)
            return bytes(len(mosi))
        # Read: each byte sent is the address of the next byte to clock out; the last is 0 (8.1.2.1).
        out = [0x00]
        for address_byte in mosi[:-1]:
            if not address_byte & 0x80 or address_byte & 0x01:
                raise ValueError(
                    f"byte {address_byte:#04x} in a read transaction is not a read address (datasheet 8.1.2.1)"
                )
            out.append(self.chip.read(address_byte >> 1 & 0x3F))
        return bytes(out)
