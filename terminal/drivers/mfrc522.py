"""Our own driver for the NXP MFRC522 reader chip and the MIFARE Classic 1K cards it talks to.

Two layers, one module:

- :class:`Mfrc522` is the chip: register access over SPI, its commands (SoftReset, CalcCRC,
  Transceive, MFAuthent) and one wait loop that trusts the chip's own timer. Register writes cost
  one SPI transaction each; reads of several registers share one transaction (datasheet section
  8.1.2.1: every byte sent while reading is the address of the next register to read).
- :class:`Mfrc522CardReader` is :class:`terminal.hal.card_reader.CardReader` on top of it: ISO/IEC
  14443-3 type A activation (REQA, anticollision and select at cascade levels 1 and 2) and the
  MIFARE Classic commands (authenticate, read, write with read-back, halt).

The SPI object is anything with the API of ``spidev.SpiDev`` (``xfer2``, ``close``): on a Pi,
:func:`open_spidev`; in tests and the host simulator, ``host_sim.devices.mfrc522.FakeSpiDev``.

Datasheet references are to the NXP MFRC522 product data sheet, rev. 3.9; card references to the
NXP MF1S50yyX (MIFARE Classic 1K) data sheet and ISO/IEC 14443-3.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from terminal.errors import (
    CardAuthError,
    CardCollisionError,
    CardReaderFaultError,
    CardReadError,
    CardRemovedError,
    CardUnsupportedError,
    CardWriteError,
)
from terminal.hal.card_reader import (
    BLOCK_SIZE_BYTES,
    CASCADE_TAG,
    MANUFACTURER_BLOCK,
    CardReader,
    CardUid,
    KeyType,
    SectorKey,
    check_block,
    check_block_data,
    is_sector_trailer,
    sector_of,
)


class SpiDevice(Protocol):
    """The part of ``spidev.SpiDev`` the driver uses."""

    def xfer2(self, values: list[int]) -> list[int]: ...

    def close(self) -> None: ...


# --- the chip: registers, bits and commands (datasheet section 9.2, register overview) ---


class Register(enum.IntEnum):
    COMMAND = 0x01
    COM_IRQ = 0x04
    DIV_IRQ = 0x05
    ERROR = 0x06
    STATUS_2 = 0x08
    FIFO_DATA = 0x09
    FIFO_LEVEL = 0x0A
    CONTROL = 0x0C
    BIT_FRAMING = 0x0D
    COLLISION = 0x0E
    MODE = 0x11
    TX_CONTROL = 0x14
    TX_ASK = 0x15
    CRC_RESULT_HIGH = 0x21
    CRC_RESULT_LOW = 0x22
    TIMER_MODE = 0x2A
    TIMER_PRESCALER = 0x2B
    TIMER_RELOAD_HIGH = 0x2C
    TIMER_RELOAD_LOW = 0x2D
    VERSION = 0x37


class ChipCommand(enum.IntEnum):
    """CommandReg values (datasheet section 10.3, Table 149)."""

    IDLE = 0x0
    CALCULATE_CRC = 0x3
    TRANSCEIVE = 0xC
    MIFARE_AUTHENTICATE = 0xE
    SOFT_RESET = 0xF


# CommandReg bit 4: the chip is (still) in soft power-down, e.g. while its oscillator starts.
POWER_DOWN = 0x10
# ComIrqReg bits (datasheet 9.3.1.5). Writing a byte with bit 7 (Set1) clear clears every bit set.
RX_IRQ = 0x20
IDLE_IRQ = 0x10
ERROR_IRQ = 0x02
TIMER_IRQ = 0x01
CLEAR_ALL_IRQ = 0x7F
# DivIrqReg bit 2 (9.3.1.6): the CRC coprocessor has finished.
CRC_IRQ = 0x04
# ErrorReg bits (9.3.1.7).
TEMPERATURE_ERROR = 0x40
BUFFER_OVERFLOW = 0x10
COLLISION_ERROR = 0x08
PARITY_ERROR = 0x02
PROTOCOL_ERROR = 0x01
GARBLED_FRAME_ERRORS = BUFFER_OVERFLOW | PARITY_ERROR | PROTOCOL_ERROR
# Status2Reg bit 3 (9.3.1.9): set only by a successful MFAuthent; cleared by software to end a session.
MIFARE_CRYPTO1_ON = 0x08
# FIFOLevelReg (9.3.1.11): bit 7 flushes the FIFO, bits 6..0 count the bytes in it.
FLUSH_BUFFER = 0x80
FIFO_LEVEL_MASK = 0x7F
# ControlReg (9.3.1.14): bits 2..0 say how many bits of the last received byte are valid (0 = all 8);
# bit 7 stops the timer at once.
RX_LAST_BITS_MASK = 0x07
TIMER_STOP_NOW = 0x80
# BitFramingReg (9.3.1.15): bit 7 starts a Transceive's transmission; bits 2..0 are how many bits of
# the last byte to send (0 = all 8; 7 for the short frames REQA and WUPA).
START_SEND = 0x80
# The FIFO holds 64 bytes (datasheet 8.3.1).
FIFO_SIZE_BYTES = 64

# VersionReg (9.3.4.8): 0x91 is MFRC522 v1.0, 0x92 v2.0. Cheap modules often carry clones that
# answer 0x88 (Fudan FM17522) or 0x12; they work with this driver. 0x00 or 0xFF means no chip.
KNOWN_CHIP_VERSIONS = {0x91: "MFRC522 v1.0", 0x92: "MFRC522 v2.0", 0x88: "FM17522 clone", 0x12: "MFRC522 clone"}

# Timer (datasheet 8.5): f_timer = 13.56 MHz / (2 * TPrescaler + 1), period = (TReload + 1) / f_timer.
# TAuto (TModeReg bit 7) starts it when a transmission ends and stops it when an answer begins, so
# TimerIRq means "the card did not answer in time". Prescaler 169 gives 40 kHz (25 us ticks); reload
# 1000 gives about 25 ms, which covers the slowest MIFARE Classic answer: write part 2 may take up to
# 10 ms (MF1S50yyX datasheet section 11.3, Table 22).
CARRIER_HZ = 13_560_000
TIMER_AUTO = 0x80
TIMER_PRESCALER = 169
TIMER_RELOAD = 1000
TIMER_PERIOD_S = (TIMER_RELOAD + 1) * (2 * TIMER_PRESCALER + 1) / CARRIER_HZ
# TxASKReg bit 6: ISO/IEC 14443-2 type A needs 100 % ASK modulation.
FORCE_100_PERCENT_ASK = 0x40
# ModeReg (9.3.2.2): CRCPreset = 01 (0x6363, the CRC_A preset of ISO/IEC 14443-3 Annex B) plus the
# reset values of its other bits (TxWaitRF, PolMFin).
MODE_CRC_PRESET_6363 = 0x3D
# TxControlReg (9.3.2.5): bits 1..0 drive the antenna pins TX1 and TX2; 0x80 is its reset value.
TX_CONTROL_ANTENNA_OFF = 0x80
TX_CONTROL_ANTENNA_ON = 0x83
# CollReg bit 7 clear: received bits after a collision read as 0, so a collided UID is never mistaken
# for a real one.
COLLISION_VALUES_CLEARED = 0x00

# After SoftReset the oscillator must start again (datasheet 8.8.2: crystal start-up plus 37.74 us);
# 50 ms is generous for any crystal on these modules.
OSCILLATOR_START_S = 0.050
RESET_POLLS = 3

# The wait loop. The chip answers within the air time of the exchange (below) or its timer fires
# TIMER_PERIOD_S after our frame. We sleep the expected air time, then poll with doubling pauses
# that never overshoot the timer's deadline by more than TIMER_MARGIN_S: few SPI transactions when
# a card answers at once, few when nobody does. If neither RxIRq/IdleIRq nor TimerIRq ever shows,
# the chip is broken or unplugged: after MAX_STATUS_POLLS we say so rather than spin.
FIRST_RETRY_PAUSE_S = 0.001
TIMER_MARGIN_S = 0.001
MAX_STATUS_POLLS = 12
# The CRC coprocessor needs microseconds for our 18-byte frames; one SPI transaction is longer.
MAX_CRC_POLLS = 3
CRC_RETRY_PAUSE_S = 0.0001

# ISO/IEC 14443-2/-3 type A at 106 kbit/s: one bit lasts 128 carrier cycles; a byte travels as 8
# bits plus odd parity, a frame adds a start and an end bit; a card answers a frame delay time
# FDT = (9 * 128 + 84) / fc after the reader's last bit (MF1S50yyX section 9.2, Figure 10).
BIT_TIME_S = 128 / CARRIER_HZ
FRAME_DELAY_S = (9 * 128 + 84) / CARRIER_HZ
# MIFARE authentication is three passes after the 4-byte command: card nonce (4 bytes), reader
# nonce and answer (8), card answer (4).
AUTHENTICATION_FRAME_BYTES = ((4, 4), (8, 4))
# ISO/IEC 14443-3 section 6.4.3: a card that does not answer HLTA within 1 ms has halted.
HALT_SILENCE_S = 0.001


def frame_time_s(sent_bytes: int, reply_bytes: int, *, sent_last_bits: int = 0) -> float:
    """Air time of one exchange: our frame, the frame delay, the card's answer."""
    sent_bits = 2 + (9 * (sent_bytes - 1) + sent_last_bits if sent_last_bits else 9 * sent_bytes)
    if not reply_bytes:
        return sent_bits * BIT_TIME_S
    return (sent_bits + 2 + 9 * reply_bytes) * BIT_TIME_S + FRAME_DELAY_S


AUTHENTICATION_TIME_S = sum(frame_time_s(sent, reply) for sent, reply in AUTHENTICATION_FRAME_BYTES)


def _read_address(register: int) -> int:
    # SPI address byte (datasheet 8.1.2.3): bit 7 = read, bits 6..1 = address, bit 0 = 0.
    return ((register << 1) & 0x7E) | 0x80


def _write_address(register: int) -> int:
    return (register << 1) & 0x7E


@dataclass(frozen=True, slots=True)
class Reply:
    """What a card sent back: bytes, valid bits in the last byte (8, or 4 for ACK/NAK), collision."""

    data: bytes
    last_byte_bits: int
    is_collision: bool


@dataclass(frozen=True, slots=True)
class _Status:
    irq: int
    error: int
    fifo_level: int
    control: int
    status_2: int


class Mfrc522:
    """The MFRC522 chip behind an SPI object. Call :meth:`reset` once before anything else."""

    def __init__(self, spi: SpiDevice, *, sleep: Callable[[float], None] = time.sleep):
        self._spi = spi
        self._sleep = sleep
        self.version_name = ""
        self.is_crypto_on = False
        # True only when the FIFO is known to be empty: a completed Transceive whose answer we read
        # out whole, or a CalcCRC (which drains the FIFO into the coprocessor, datasheet 10.3.1.4).
        # Then the next command skips its flush: one SPI transaction saved per command, about a
        # sixth of a card read. After a time-out, an error or MFAuthent we flush as usual.
        self._is_fifo_empty = False

    # --- register access ---

    def read_registers(self, *registers: int) -> list[int]:
        """Read several registers in one SPI transaction."""
        miso = self._spi.xfer2([_read_address(register) for register in registers] + [0])
        return list(miso[1:])

    def write_register(self, register: int, *values: int) -> None:
        """Write one register; several values go to the same register (the FIFO) in one transaction."""
        self._spi.xfer2([_write_address(register), *values])

    def read_fifo(self, count: int) -> bytes:
        return bytes(self.read_registers(*[Register.FIFO_DATA] * count)) if count else b""

    # --- set-up ---

    def reset(self) -> None:
        """Soft-reset and configure the chip, then switch the antenna on."""
        self.write_register(Register.COMMAND, ChipCommand.SOFT_RESET)
        for _ in range(RESET_POLLS):
            self._sleep(OSCILLATOR_START_S)
            (command,) = self.read_registers(Register.COMMAND)
            if not command & POWER_DOWN:
                break
        else:
            raise CardReaderFaultError("Card reader did not start — check its cable and power, then restart")
        (version,) = self.read_registers(Register.VERSION)
        if version not in KNOWN_CHIP_VERSIONS:
            raise CardReaderFaultError(
                f"Card reader not found (chip answered {version:#04x}) — check its cable, then restart"
            )
        self.version_name = KNOWN_CHIP_VERSIONS[version]
        self.write_register(Register.TIMER_MODE, TIMER_AUTO | (TIMER_PRESCALER >> 8))
        self.write_register(Register.TIMER_PRESCALER, TIMER_PRESCALER & 0xFF)
        self.write_register(Register.TIMER_RELOAD_HIGH, TIMER_RELOAD >> 8)
        self.write_register(Register.TIMER_RELOAD_LOW, TIMER_RELOAD & 0xFF)
        self.write_register(Register.TX_ASK, FORCE_100_PERCENT_ASK)
        self.write_register(Register.MODE, MODE_CRC_PRESET_6363)
        self.write_register(Register.COLLISION, COLLISION_VALUES_CLEARED)
        self.write_register(Register.TX_CONTROL, TX_CONTROL_ANTENNA_ON)
        self.is_crypto_on = False

    def close(self) -> None:
        """Switch the antenna off (no field, no power drawn by cards) and release the bus."""
        try:
            self.write_register(Register.TX_CONTROL, TX_CONTROL_ANTENNA_OFF)
        finally:
            self._spi.close()

    # --- commands ---

    def calculate_crc(self, data: bytes) -> bytes:
        """CRC_A of ``data`` from the chip's coprocessor, low byte first as it goes on air."""
        self._load(data)
        self.write_register(Register.DIV_IRQ, CRC_IRQ)  # Set2 bit clear: this clears CRCIRq
        self.write_register(Register.COMMAND, ChipCommand.CALCULATE_CRC)
        for _ in range(MAX_CRC_POLLS):
            done, low, high = self.read_registers(Register.DIV_IRQ, Register.CRC_RESULT_LOW, Register.CRC_RESULT_HIGH)
            if done & CRC_IRQ:
                self._is_fifo_empty = True
                return bytes((low, high))
            self._sleep(CRC_RETRY_PAUSE_S)
        raise CardReaderFaultError("Card reader CRC unit did not answer — restart the terminal")

    def transceive(
        self, data: bytes, *, reply_bytes: int, sent_last_bits: int = 0, silence_s: float | None = None
    ) -> Reply | None:
        """Send one frame and return the card's answer, or None if the chip's timer ran out first.

        ``reply_bytes`` is the expected answer length, used only to time the first status poll.
        With ``silence_s`` the wait ends after that long instead of at the timer (for HLTA, where
        silence is success); the caller then stops the command with :meth:`abort`.
        """
        self._load(data)
        self.write_register(Register.COM_IRQ, CLEAR_ALL_IRQ)
        self.write_register(Register.COMMAND, ChipCommand.TRANSCEIVE)
        self.write_register(Register.BIT_FRAMING, START_SEND | sent_last_bits)
        air_time_s = frame_time_s(len(data), reply_bytes, sent_last_bits=sent_last_bits)
        if silence_s is None:
            status = self._wait(RX_IRQ, air_time_s)
        else:
            self._sleep(max(air_time_s, silence_s))
            status = self._read_status()
        if not status.irq & RX_IRQ:
            return None
        if status.error & TEMPERATURE_ERROR:
            raise CardReaderFaultError("Card reader overheated — let it cool down, then restart")
        is_collision = bool(status.error & COLLISION_ERROR)
        if status.error & GARBLED_FRAME_ERRORS and not is_collision:
            raise CardReadError(f"Card answer garbled (chip error bits {status.error:#04x}) — tap again")
        last_byte_bits = status.control & RX_LAST_BITS_MASK or 8
        reply = Reply(self.read_fifo(status.fifo_level), last_byte_bits, is_collision)
        self._is_fifo_empty = True
        return reply

    def authenticate(self, key: SectorKey, block: int, uid: CardUid) -> bool:
        """Run MFAuthent; True if the card accepted the key (the chip's MFCrypto1On is then set).

        A wrong key and a card that left look the same to the chip: nobody answers, TimerIRq.
        """
        command = MIFARE_AUTHENTICATE_A if key.key_type is KeyType.A else MIFARE_AUTHENTICATE_B
        self._load(bytes((command, block)) + key.value + uid.authentication_bytes)
        self.write_register(Register.COM_IRQ, CLEAR_ALL_IRQ)
        self.write_register(Register.COMMAND, ChipCommand.MIFARE_AUTHENTICATE)
        status = self._wait(IDLE_IRQ, AUTHENTICATION_TIME_S)
        self.is_crypto_on = bool(status.irq & IDLE_IRQ and status.status_2 & MIFARE_CRYPTO1_ON)
        if not self.is_crypto_on:
            self.abort()  # MFAuthent never ends by itself when the card stays silent
            self.stop_crypto()
        return self.is_crypto_on

    def stop_crypto(self) -> None:
        """End the encrypted session (Status2Reg MFCrypto1On), so the next frame goes out in clear."""
        self.write_register(Register.STATUS_2, 0x00)
        self.is_crypto_on = False

    def abort(self) -> None:
        """Stop the running command and the timer, so a stale TimerIRq cannot end the next exchange."""
        self.write_register(Register.COMMAND, ChipCommand.IDLE)
        self.write_register(Register.CONTROL, TIMER_STOP_NOW)

    # --- internals ---

    def _load(self, data: bytes) -> None:
        if len(data) > FIFO_SIZE_BYTES:
            raise ValueError(f"a frame is at most {FIFO_SIZE_BYTES} bytes")
        # Idle first: Transceive and CalcCRC never end by themselves, and must not eat our bytes.
        self.write_register(Register.COMMAND, ChipCommand.IDLE)
        if not self._is_fifo_empty:
            self.write_register(Register.FIFO_LEVEL, FLUSH_BUFFER)
        self.write_register(Register.FIFO_DATA, *data)
        self._is_fifo_empty = False

    def _read_status(self) -> _Status:
        irq, error, level, control, status_2 = self.read_registers(
            Register.COM_IRQ, Register.ERROR, Register.FIFO_LEVEL, Register.CONTROL, Register.STATUS_2
        )
        return _Status(irq, error, level & FIFO_LEVEL_MASK, control, status_2)

    def _wait(self, done_irq: int, expected_s: float) -> _Status:
        self._sleep(expected_s)
        waited_s = expected_s
        pause_s = FIRST_RETRY_PAUSE_S
        for _ in range(MAX_STATUS_POLLS):
            status = self._read_status()
            if status.irq & (done_irq | TIMER_IRQ | ERROR_IRQ):
                return status
            until_deadline_s = TIMER_PERIOD_S - waited_s
            step_s = min(pause_s, until_deadline_s + TIMER_MARGIN_S) if until_deadline_s > 0 else pause_s
            self._sleep(step_s)
            waited_s += step_s
            pause_s = min(pause_s * 2, TIMER_PERIOD_S)
        raise CardReaderFaultError(
            "Card reader timer never fired — restart the terminal; if it repeats, call a technician"
        )


# --- the cards: ISO/IEC 14443-3 type A and MIFARE Classic commands ---

# Short frames, 7 bits (ISO/IEC 14443-3 section 6.3.1): REQA wakes idle cards, WUPA also halted ones.
REQA = 0x26
WUPA = 0x52
SHORT_FRAME_BITS = 7
# ATQA is 2 bytes (6.3.2).
ATQA_BYTES = 2
# SEL codes per cascade level, and NVB values (6.5.3): 0x20 = "send me your UID part", 0x70 = "this
# is the whole UID part, select it". A UID part is 4 bytes plus BCC, their XOR.
SELECT_CASCADE_LEVELS = (0x93, 0x95)
NVB_ANTICOLLISION = 0x20
NVB_SELECT = 0x70
UID_PART_BYTES = 5
# SAK (6.5.3.4) with CRC: bit 3 (0x04) = UID not complete; per NXP AN10833 bit 4 (0x08) = the card
# speaks MIFARE Classic (0x08 1K, 0x18 4K, 0x88 Infineon 1K, 0x28 SmartMX with Classic emulation).
SAK_WITH_CRC_BYTES = 3
SAK_UID_NOT_COMPLETE = 0x04
SAK_MIFARE_CLASSIC = 0x08
# HLTA (6.4.3).
HALT = bytes((0x50, 0x00))
# MIFARE Classic commands (MF1S50yyX section 11): authenticate with key A / key B, read a block
# (answer 16 bytes + CRC), write a block (two parts, each acknowledged with a 4-bit ACK).
MIFARE_AUTHENTICATE_A = 0x60
MIFARE_AUTHENTICATE_B = 0x61
MIFARE_READ = 0x30
MIFARE_WRITE = 0xA0
CRC_BYTES = 2
# 4-bit ACK (MF1S50yyX section 9.3, Table 10); anything else is a NAK.
MIFARE_ACK = 0x0A
ACK_BITS = 4
# Sector trailer bytes 6..9: access bits and the user byte, the part a read returns as written.
TRAILER_ACCESS_BYTES = slice(6, 10)
TRAILER_KEY_A = slice(0, 6)
WAKE_UP_ATTEMPTS = 2
# Upper bound on one read_blocks call: a whole card.
MAX_BLOCKS_PER_READ = 64


class Mfrc522CardReader(CardReader):
    """:class:`CardReader` on an MFRC522. Resets the chip on construction.

    Keeps the active card's UID and its authenticated sector. An encrypted session is left open
    after a read or write, because HLTA must travel encrypted to reach an authenticated card;
    :meth:`halt` and the next :meth:`poll` close it. A card left active, not halted, is sent back
    to idle by the next poll's REQA (ISO/IEC 14443-3 section 6.2) and found again by the one after:
    call :meth:`halt` when a tap is done.
    """

    def __init__(self, spi: SpiDevice, *, sleep: Callable[[float], None] = time.sleep):
        self.chip = Mfrc522(spi, sleep=sleep)
        self.chip.reset()
        self._active_uid: CardUid | None = None
        self._authenticated: tuple[int, SectorKey] | None = None  # (sector, key) of the open session

    # --- CardReader ---

    def poll(self) -> CardUid | None:
        self._end_session()
        atqa = self.chip.transceive(bytes((REQA,)), reply_bytes=ATQA_BYTES, sent_last_bits=SHORT_FRAME_BITS)
        if atqa is None:
            return None
        # Two cards with different ATQAs collide here already; anticollision below says so properly.
        if len(atqa.data) != ATQA_BYTES and not atqa.is_collision:
            raise CardReadError("Card answer garbled (ATQA) — tap again and hold the card still")
        self._active_uid = self._select()
        return self._active_uid

    def read_blocks(self, uid: CardUid, block_numbers: Sequence[int], key: SectorKey) -> bytes:
        blocks = list(block_numbers)
        if not 0 < len(blocks) <= MAX_BLOCKS_PER_READ:
            raise ValueError(f"read 1..{MAX_BLOCKS_PER_READ} blocks at a time, not {len(blocks)}")
        for block in blocks:
            check_block(block)
        with self._session_guard():
            self._activate(uid)
            parts = []
            for block in blocks:
                self._authenticate(uid, block, key)
                parts.append(self._read_block(block))
            return b"".join(parts)

    def write_block(
        self,
        uid: CardUid,
        block_number: int,
        data: bytes,
        key: SectorKey,
        *,
        allow_sector_trailer: bool = False,
    ) -> None:
        check_block(block_number)
        check_block_data(data)
        if block_number == MANUFACTURER_BLOCK:
            raise ValueError("block 0 is the manufacturer block and is never written")
        is_trailer = is_sector_trailer(block_number)
        if is_trailer and not allow_sector_trailer:
            raise ValueError(f"block {block_number} is a sector trailer; pass allow_sector_trailer=True")
        with self._session_guard():
            self._activate(uid)
            self._authenticate(uid, block_number, key)
            self._write_part(bytes((MIFARE_WRITE, block_number)), block_number)
            self._write_part(data, block_number)
            self._verify_write(uid, block_number, data, is_trailer)

    def halt(self) -> None:
        if self._active_uid is None:
            self._end_session()
            return
        frame = HALT + self.chip.calculate_crc(HALT)
        try:
            answer = self.chip.transceive(frame, reply_bytes=0, silence_s=HALT_SILENCE_S)
        finally:
            self.chip.abort()
            self._end_session()
        if answer is not None:
            raise CardReadError("Card did not go to sleep — take it away and tap again")

    def close(self) -> None:
        self.chip.close()

    # --- activation (ISO/IEC 14443-3 section 6.5) ---

    def _select(self) -> CardUid:
        uid = b""
        for select_code in SELECT_CASCADE_LEVELS:
            part = self._anticollision(select_code)
            sak = self._select_part(select_code, part)
            if not sak & SAK_UID_NOT_COMPLETE:
                uid += part[:4]
                break
            if part[0] != CASCADE_TAG:
                raise CardReadError("Card answer garbled (cascade tag) — tap again and hold the card still")
            uid += part[1:4]
        else:
            raise CardUnsupportedError("Card has a 10-byte UID: not a MIFARE Classic — ask for the park card")
        if not sak & SAK_MIFARE_CLASSIC:
            raise CardUnsupportedError(f"Not a park card (SAK {sak:#04x}) — ask the visitor for the park card")
        return CardUid(uid)

    def _anticollision(self, select_code: int) -> bytes:
        reply = self.chip.transceive(bytes((select_code, NVB_ANTICOLLISION)), reply_bytes=UID_PART_BYTES)
        if reply is None:
            raise CardRemovedError()
        if reply.is_collision:
            raise CardCollisionError()
        part = reply.data
        if len(part) != UID_PART_BYTES or part[0] ^ part[1] ^ part[2] ^ part[3] != part[4]:
            raise CardReadError("Card answer garbled (UID check byte) — tap again and hold the card still")
        return part

    def _select_part(self, select_code: int, part: bytes) -> int:
        frame = bytes((select_code, NVB_SELECT)) + part
        reply = self.chip.transceive(frame + self.chip.calculate_crc(frame), reply_bytes=SAK_WITH_CRC_BYTES)
        if reply is None:
            raise CardRemovedError()
        self._check_crc(reply, SAK_WITH_CRC_BYTES, "SAK")
        return reply.data[0]

    def _activate(self, uid: CardUid) -> None:
        """Make ``uid`` the active card: it is already, or it fell back to idle after an error."""
        if self._active_uid == uid:
            return
        self._end_session()
        # A card we lost track of may still be active, and an active card drops to idle on WUPA
        # without answering (ISO/IEC 14443-3 section 6.2): so one silence is not yet "gone".
        for _ in range(WAKE_UP_ATTEMPTS):
            answer = self.chip.transceive(bytes((WUPA,)), reply_bytes=ATQA_BYTES, sent_last_bits=SHORT_FRAME_BITS)
            if answer is not None:
                break
        else:
            raise CardRemovedError()
        found = self._select()
        if found != uid:
            raise CardRemovedError("A different card is on the reader — tap the first card again")
        self._active_uid = found

    # --- MIFARE Classic ---

    def _authenticate(self, uid: CardUid, block: int, key: SectorKey) -> None:
        sector = sector_of(block)
        if self._authenticated == (sector, key):
            return
        if self.chip.authenticate(key, block, uid):
            self._authenticated = (sector, key)
            return
        # The card fell silent. Wrong key, or gone? Wake it: if it answers, the key was wrong.
        self._authenticated = None
        self._active_uid = None
        self._activate(uid)  # raises CardRemovedError if it is gone
        raise CardAuthError()

    def _read_block(self, block: int) -> bytes:
        frame = bytes((MIFARE_READ, block))
        reply = self.chip.transceive(frame + self.chip.calculate_crc(frame), reply_bytes=BLOCK_SIZE_BYTES + CRC_BYTES)
        if reply is None:
            raise CardRemovedError()
        if reply.last_byte_bits == ACK_BITS:
            raise CardAuthError(
                f"Card refused to read block {block} with this key — send the visitor to the front desk"
            )
        self._check_crc(reply, BLOCK_SIZE_BYTES + CRC_BYTES, f"block {block}")
        return reply.data[:BLOCK_SIZE_BYTES]

    def _write_part(self, payload: bytes, block: int) -> None:
        reply = self.chip.transceive(payload + self.chip.calculate_crc(payload), reply_bytes=1)
        if reply is None:
            raise CardRemovedError("Card moved away while writing — tap again and hold the card still")
        if len(reply.data) != 1 or reply.last_byte_bits != ACK_BITS or reply.data[0] & 0x0F != MIFARE_ACK:
            raise CardWriteError(
                f"Card refused to write block {block} (read-only or wrong key) — send the visitor to the front desk"
            )

    def _verify_write(self, uid: CardUid, block: int, data: bytes, is_trailer: bool) -> None:
        """Read the block back; check a property after writing it, not only before."""
        stored = self._read_block(block)
        if is_trailer:
            # Keys read back as zeros (MF1S50yyX 8.6.3): compare the access bytes, and prove the new
            # key A by authenticating with it.
            if stored[TRAILER_ACCESS_BYTES] != data[TRAILER_ACCESS_BYTES]:
                raise CardWriteError(f"Card write of block {block} not verified — tap again")
            self._authenticated = None
            try:
                self._authenticate(uid, block, SectorKey(data[TRAILER_KEY_A], KeyType.A))
            except CardAuthError as error:
                raise CardWriteError(f"Card refused the new key A of sector {sector_of(block)} — tap again") from error
        elif stored != data:
            raise CardWriteError(f"Card write of block {block} not verified — tap again")

    def _check_crc(self, reply: Reply, expected_bytes: int, what: str) -> None:
        data = reply.data
        if len(data) != expected_bytes or reply.last_byte_bits != 8:
            raise CardReadError(f"Card answer garbled ({what}: {len(data)} bytes) — tap again and hold the card still")
        if self.chip.calculate_crc(data[:-CRC_BYTES]) != data[-CRC_BYTES:]:
            raise CardReadError(f"Card answer garbled ({what}: CRC) — tap again and hold the card still")

    # --- session bookkeeping ---

    def _end_session(self) -> None:
        if self.chip.is_crypto_on:
            self.chip.stop_crypto()
        self._authenticated = None
        self._active_uid = None

    @contextlib.contextmanager
    def _session_guard(self) -> Iterator[None]:
        """On any error the card may have fallen back to idle: forget it and close the encrypted
        session, so the next command starts clean. Success keeps the session (see the class)."""
        try:
            yield
        except BaseException:
            self._end_session()
            raise


# SPI mode 0 (CPOL 0, CPHA 0) and MSB first: datasheet 8.1.2, Figure 5. The chip takes up to 10 Mbit/s;
# 1 MHz leaves margin for the long jumper wires inside field terminals and still reads a card in a
# few milliseconds of bus time.
SPI_MODE = 0
DEFAULT_SPI_SPEED_HZ = 1_000_000


def open_spidev(bus: int = 0, device: int = 0, speed_hz: int = DEFAULT_SPI_SPEED_HZ) -> SpiDevice:
    """Open ``/dev/spidev<bus>.<device>`` on a Pi (the ``spidev`` package: ``pip install fieldpos[pi]``)."""
    try:
        import spidev  # only on the Pi; tests and the host simulator never import it
    except ImportError as error:
        raise CardReaderFaultError("spidev is not installed — install fieldpos[pi] on the terminal") from error
    spi = spidev.SpiDev()
    try:
        spi.open(bus, device)
    except OSError as error:
        raise CardReaderFaultError(
            f"Cannot open /dev/spidev{bus}.{device} — enable SPI (raspi-config), then restart"
        ) from error
    spi.max_speed_hz = speed_hz
    spi.mode = SPI_MODE
    return spi
