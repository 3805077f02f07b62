"""Virtual MIFARE Classic 1K cards, and the RF field in front of the emulated reader where they lie.

A card is modelled at ISO/IEC 14443-3 layer 3 (REQA/WUPA, anticollision, select, halt) plus the
MIFARE Classic commands (read, two-part write), with its memory, sector trailers and access bits.
Crypto1 is not emulated: the reader chip encrypts and decrypts, so the emulated chip tells the card
whether a frame travelled encrypted and the card only tracks which sector, under which key, is
authenticated. A frame that arrives in clear during an encrypted session (or the other way round)
is noise to the card, as on a real one.

This module knows nothing of ``terminal/``: it has its own constants, taken from the data sheets, so
a misreading in the driver is not shared by the model that tests it. References are to the NXP
MF1S50yyX (MIFARE Classic 1K) data sheet, rev. 3.0, NXP AN10833 and ISO/IEC 14443-3.

A card in the field, read by the driver through ``host_sim.devices.mfrc522.FakeSpiDev``::

    card = MifareClassic1K(bytes.fromhex("04A1B2C3D4E5F6"))
    spi.field.present(card)
    spi.field.remove_after_frames(3)   # the visitor pulls it away after three more frames
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Memory organisation (MF1S50yyX section 8.6): 16 sectors x 4 blocks x 16 bytes; block 3 of each
# sector is its trailer: key A (bytes 0-5), access bits (6-8), user byte (9), key B (10-15).
BLOCK_SIZE = 16
BLOCKS_PER_SECTOR = 4
SECTOR_COUNT = 16
BLOCK_COUNT = BLOCKS_PER_SECTOR * SECTOR_COUNT
KEY_SIZE = 6
KEY_A = slice(0, 6)
ACCESS_BITS = slice(6, 9)
ACCESS_BYTES = slice(6, 10)  # access bits and the user byte share read and write rights
KEY_B = slice(10, 16)

# Delivery state (MF1S50yyX 8.6.3 and 8.7): keys FF x 6, access bits FF 07 80 with user byte 69 (data
# blocks: read and write with key A or B; trailer: key A may write everything, key B is readable).
TRANSPORT_KEY = b"\xff" * KEY_SIZE
TRANSPORT_ACCESS_BYTES = bytes((0xFF, 0x07, 0x80, 0x69))

# ISO/IEC 14443-3 commands and answers.
REQA = 0x26
WUPA = 0x52
SHORT_FRAME_BITS = 7
SELECT_CODES = (0x93, 0x95)  # cascade levels 1 and 2
NVB_ANTICOLLISION = 0x20
NVB_SELECT = 0x70
CASCADE_TAG = 0x88
HALT = bytes((0x50, 0x00))
# ATQA (MF1S50yyX 9.4, Table 11): 0x0004 for a 4-byte UID, 0x0044 for a 7-byte UID; sent low byte first.
ATQA_SINGLE_SIZE_UID = bytes((0x04, 0x00))
ATQA_DOUBLE_SIZE_UID = bytes((0x44, 0x00))
# SAK (MF1S50yyX 9.4, Table 12; AN10833): 0x08 for MIFARE Classic 1K; 0x04 "UID not complete" at
# cascade level 1 of a 7-byte UID.
SAK_MIFARE_CLASSIC_1K = 0x08
SAK_UID_NOT_COMPLETE = 0x04
# MIFARE Classic commands (MF1S50yyX section 11).
MIFARE_AUTHENTICATE_A = 0x60
MIFARE_AUTHENTICATE_B = 0x61
MIFARE_READ = 0x30
MIFARE_WRITE = 0xA0
# 4-bit ACK and NAK (MF1S50yyX 9.3, Table 10).
ACK = 0x0A
NAK_INVALID_OPERATION = 0x04
NAK_CRC_ERROR = 0x05
ACK_NAK_BITS = 4
# A block write's EEPROM programming delays the ACK of part 2. The data sheet bounds it only by the
# 10 ms time-out (MF1S50yyX 11.3, Table 22); we assume a typical 2.5 ms.
EEPROM_WRITE_S = 0.0025


def crc_a(data: bytes, preset: int = 0x6363) -> bytes:
    """CRC_A of ISO/IEC 14443-3 Annex B (x^16 + x^12 + x^5 + 1, LSB first), low byte first."""
    crc = preset
    for byte in data:
        byte ^= crc & 0xFF
        byte = (byte ^ (byte << 4)) & 0xFF
        crc = (crc >> 8) ^ (byte << 8) ^ (byte << 3) ^ (byte >> 4)
    return bytes((crc & 0xFF, crc >> 8))


def block_check_character(uid_part: bytes) -> int:
    """BCC: the XOR of the 4 UID bytes of one cascade level (ISO/IEC 14443-3 section 6.5.4)."""
    return uid_part[0] ^ uid_part[1] ^ uid_part[2] ^ uid_part[3]


# --- access conditions (MF1S50yyX section 8.7) ---

# Who may do what, by (C1, C2, C3). Data blocks (Table 8): (read, write).
DATA_BLOCK_RIGHTS: dict[tuple[int, int, int], tuple[str, str]] = {
    (0, 0, 0): ("AB", "AB"),  # transport configuration
    (0, 1, 0): ("AB", ""),  # read-only
    (1, 0, 0): ("AB", "B"),
    (1, 1, 0): ("AB", "B"),
    (0, 0, 1): ("AB", ""),
    (0, 1, 1): ("B", "B"),
    (1, 0, 1): ("B", ""),
    (1, 1, 1): ("", ""),
}
# Sector trailer (Table 7): (key A write, access bits read, access bits write, key B read, key B write).
# Key A is never readable.
TRAILER_RIGHTS: dict[tuple[int, int, int], tuple[str, str, str, str, str]] = {
    (0, 0, 0): ("A", "A", "", "A", "A"),
    (0, 1, 0): ("", "A", "", "A", ""),
    (1, 0, 0): ("B", "AB", "", "", "B"),
    (1, 1, 0): ("", "AB", "", "", ""),
    (0, 0, 1): ("A", "A", "A", "A", "A"),  # transport configuration
    (0, 1, 1): ("B", "AB", "B", "", "B"),
    (1, 0, 1): ("", "AB", "B", "", ""),
    (1, 1, 1): ("", "AB", "", "", ""),
}
Conditions = tuple[int, int, int]
DATA_READ_WRITE: Conditions = (0, 0, 0)
DATA_READ_ONLY: Conditions = (0, 1, 0)
TRAILER_TRANSPORT: Conditions = (0, 0, 1)


def encode_access_bits(conditions: Sequence[Conditions], user_byte: int = 0x69) -> bytes:
    """Trailer bytes 6..9 for (C1, C2, C3) of blocks 0, 1, 2 and the trailer (MF1S50yyX Figure 10)."""
    if len(conditions) != BLOCKS_PER_SECTOR:
        raise ValueError("give access conditions for 3 data blocks and the trailer")
    c1, c2, c3 = (sum(bits[index] << block for block, bits in enumerate(conditions)) for index in range(3))
    return bytes((((~c2 & 0xF) << 4) | (~c1 & 0xF), (c1 << 4) | (~c3 & 0xF), (c3 << 4) | c2, user_byte))


def decode_access_bits(access_bytes: bytes) -> tuple[Conditions, ...] | None:
    """(C1, C2, C3) per block, or None if the inverted copies disagree: the card then blocks the
    whole sector for good (MF1S50yyX 8.7.1)."""
    byte_6, byte_7, byte_8 = access_bytes[0], access_bytes[1], access_bytes[2]
    c1, c2, c3 = byte_7 >> 4, byte_8 & 0xF, byte_8 >> 4
    if (~byte_6 & 0xF) != c1 or (~byte_6 >> 4 & 0xF) != c2 or (~byte_7 & 0xF) != c3:
        return None
    return tuple(((c1 >> block) & 1, (c2 >> block) & 1, (c3 >> block) & 1) for block in range(BLOCKS_PER_SECTOR))


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes on air; ``last_byte_bits`` of the last byte are sent (7 for REQA, 4 for ACK/NAK)."""

    data: bytes
    last_byte_bits: int = 8

    @property
    def is_short(self) -> bool:
        return len(self.data) == 1 and self.last_byte_bits == SHORT_FRAME_BITS


def _nak(code: int) -> Frame:
    return Frame(bytes((code,)), ACK_NAK_BITS)


class CardState(enum.Enum):
    """ISO/IEC 14443-3 section 6.2 card states (READY is split by cascade level)."""

    POWER_OFF = "power off"
    IDLE = "idle"
    READY_1 = "ready, cascade level 1"
    READY_2 = "ready, cascade level 2"
    ACTIVE = "active"
    HALT = "halt"


class MifareClassic1K:
    """One virtual card. Blank, as NXP delivers it, unless the test writes its sectors."""

    def __init__(self, uid: bytes, *, sak: int = SAK_MIFARE_CLASSIC_1K, name: str = ""):
        if len(uid) not in (4, 7) or uid[0] == CASCADE_TAG:
            raise ValueError("a MIFARE Classic UID is 4 or 7 bytes and does not start with 0x88")
        self.uid = bytes(uid)
        self.sak = sak
        self.name = name or uid.hex().upper()
        self.memory = bytearray(BLOCK_COUNT * BLOCK_SIZE)
        self.memory[:BLOCK_SIZE] = self._manufacturer_block()
        for sector in range(SECTOR_COUNT):
            self.set_sector_trailer(
                sector, key_a=TRANSPORT_KEY, access_bytes=TRANSPORT_ACCESS_BYTES, key_b=TRANSPORT_KEY
            )
        self.state = CardState.POWER_OFF
        self.stored_write_count = 0  # blocks the card really stored, for tests to assert on
        self.last_processing_s = 0.0  # how long the card worked before answering the last frame
        self._authenticated: tuple[int, str] | None = None  # (sector, "A" or "B")
        self._pending_write_block: int | None = None
        self._was_halted = False
        self._corrupt_next_write = False

    def __repr__(self) -> str:
        return f"MifareClassic1K({self.name}, {self.state.value})"

    # --- what a test sets up and inspects (bypasses the access rules, like the card factory) ---

    def block(self, number: int) -> bytes:
        return bytes(self.memory[number * BLOCK_SIZE : (number + 1) * BLOCK_SIZE])

    def set_block(self, number: int, data: bytes) -> None:
        if len(data) != BLOCK_SIZE:
            raise ValueError(f"a block is {BLOCK_SIZE} bytes")
        self.memory[number * BLOCK_SIZE : (number + 1) * BLOCK_SIZE] = data

    def set_sector_trailer(self, sector: int, *, key_a: bytes, access_bytes: bytes, key_b: bytes) -> None:
        self.set_block(_trailer_block(sector), key_a + access_bytes + key_b)

    def corrupt_next_write(self) -> None:
        """The next block write stores one flipped bit yet is acknowledged (a weak field, a worn
        EEPROM cell): only a read-back can tell."""
        self._corrupt_next_write = True

    # --- the air interface, called by the field ---

    def power_up(self) -> None:
        self.state = CardState.IDLE
        self._forget_session()
        self._was_halted = False

    def power_down(self) -> None:
        self.state = CardState.POWER_OFF
        self._forget_session()

    def receive(self, frame: Frame, *, is_encrypted: bool) -> Frame | None:
        """Handle one reader frame; return the answer, or None for silence."""
        self.last_processing_s = 0.0
        if self.state is CardState.POWER_OFF:
            return None
        if frame.is_short:
            return self._wake(frame.data[0], is_encrypted)
        if self.state in (CardState.READY_1, CardState.READY_2) and not is_encrypted:
            return self._anticollision_or_select(frame.data)
        if self.state is CardState.ACTIVE and is_encrypted == (self._authenticated is not None):
            return self._mifare_command(frame.data)
        self._fall_back()  # noise, or a frame this state does not accept
        return None

    def authenticate(self, key_type: str, block: int, key: bytes, uid_bytes: bytes) -> bool:
        """The outcome of the chip's three-pass MFAuthent with this card."""
        if self.state is not CardState.ACTIVE:
            return False
        trailer = self.block(_trailer_block(block // BLOCKS_PER_SECTOR)) if block < BLOCK_COUNT else None
        # The chip seeds Crypto1 with the last 4 UID bytes; a wrong UID fails like a wrong key.
        if trailer is None or uid_bytes != self.uid[-4:] or key != trailer[KEY_A if key_type == "A" else KEY_B]:
            self._fall_back()
            return False
        self._authenticated = (block // BLOCKS_PER_SECTOR, key_type)
        self._pending_write_block = None
        return True

    # --- layer 3 ---

    def _wake(self, command: int, is_encrypted: bool) -> Frame | None:
        wakes = (command == REQA and self.state is CardState.IDLE) or (
            command == WUPA and self.state in (CardState.IDLE, CardState.HALT)
        )
        if not wakes or is_encrypted:
            self._fall_back()
            return None
        self._was_halted = self.state is CardState.HALT
        self.state = CardState.READY_1
        return Frame(ATQA_DOUBLE_SIZE_UID if len(self.uid) == 7 else ATQA_SINGLE_SIZE_UID)

    def _uid_part(self, level: int) -> bytes:
        if len(self.uid) == 4:
            part = self.uid
        elif level == 0:
            part = bytes((CASCADE_TAG,)) + self.uid[:3]
        else:
            part = self.uid[3:]
        return part + bytes((block_check_character(part),))

    def _anticollision_or_select(self, data: bytes) -> Frame | None:
        level = 0 if self.state is CardState.READY_1 else 1
        part = self._uid_part(level)
        if data == bytes((SELECT_CODES[level], NVB_ANTICOLLISION)):
            return Frame(part)
        is_select = len(data) == 9 and data[:2] == bytes((SELECT_CODES[level], NVB_SELECT))
        if not is_select or data[2:7] != part or crc_a(data[:7]) != data[7:]:
            self._fall_back()  # another card was selected, or the frame was damaged
            return None
        if len(self.uid) == 7 and level == 0:
            self.state = CardState.READY_2
            sak = SAK_UID_NOT_COMPLETE
        else:
            self.state = CardState.ACTIVE
            sak = self.sak
        return Frame(bytes((sak,)) + crc_a(bytes((sak,))))

    # --- MIFARE Classic ---

    def _mifare_command(self, data: bytes) -> Frame | None:
        if len(data) < 3 or crc_a(data[:-2]) != data[-2:]:
            return self._refuse(NAK_CRC_ERROR)
        if self._pending_write_block is not None:
            return self._write_part_2(data[:-2])
        if data == HALT + crc_a(HALT):
            self.state = CardState.HALT
            self._forget_session()
            return None
        if len(data) == 4 and data[0] == MIFARE_READ:
            return self._read(data[1])
        if len(data) == 4 and data[0] == MIFARE_WRITE:
            return self._write_part_1(data[1])
        return self._refuse(NAK_INVALID_OPERATION)

    def _read(self, block: int) -> Frame:
        if not self._may(block, "read"):
            return self._refuse(NAK_INVALID_OPERATION)
        content = self.block(block)
        if _is_trailer(block):
            content = self._trailer_as_read(block, content)
        return Frame(content + crc_a(content))

    def _write_part_1(self, block: int) -> Frame:
        if block == 0 or not self._may(block, "write"):  # block 0 is read-only whatever the bits say
            return self._refuse(NAK_INVALID_OPERATION)
        self._pending_write_block = block
        return Frame(bytes((ACK,)), ACK_NAK_BITS)

    def _write_part_2(self, data: bytes) -> Frame:
        block, self._pending_write_block = self._pending_write_block, None
        if len(data) != BLOCK_SIZE:
            return self._refuse(NAK_INVALID_OPERATION)
        if _is_trailer(block):
            data = self._trailer_as_written(block, data)
        if self._corrupt_next_write:
            self._corrupt_next_write = False
            data = bytes((data[0] ^ 0x01,)) + data[1:]
        self.set_block(block, data)
        self.stored_write_count += 1
        self.last_processing_s = EEPROM_WRITE_S
        return Frame(bytes((ACK,)), ACK_NAK_BITS)

    def _may(self, block: int, operation: str) -> bool:
        if block >= BLOCK_COUNT or self._authenticated is None:
            return False
        sector, key_type = self._authenticated
        if block // BLOCKS_PER_SECTOR != sector:
            return False
        conditions = self._conditions(sector)
        if conditions is None:
            return False
        trailer_rights = TRAILER_RIGHTS[conditions[3]]
        # A key B that can be read cannot serve for authentication: the card refuses any access after
        # it (MF1S50yyX 8.7.3, note 1).
        if key_type == "B" and trailer_rights[3]:
            return False
        if _is_trailer(block):
            if operation == "read":
                return key_type in trailer_rights[1]
            return any(key_type in rights for rights in (trailer_rights[0], trailer_rights[2], trailer_rights[4]))
        read_rights, write_rights = DATA_BLOCK_RIGHTS[conditions[block % BLOCKS_PER_SECTOR]]
        return key_type in (read_rights if operation == "read" else write_rights)

    def _conditions(self, sector: int) -> tuple[Conditions, ...] | None:
        return decode_access_bits(self.block(_trailer_block(sector))[ACCESS_BITS])

    def _trailer_as_read(self, block: int, content: bytes) -> bytes:
        key_type = self._authenticated[1]
        rights = TRAILER_RIGHTS[self._conditions(block // BLOCKS_PER_SECTOR)[3]]
        key_b = content[KEY_B] if key_type in rights[3] else bytes(KEY_SIZE)
        return bytes(KEY_SIZE) + content[ACCESS_BYTES] + key_b  # key A always reads as zeros

    def _trailer_as_written(self, block: int, data: bytes) -> bytes:
        """Only the parts the access bits let this key write change; the rest stays."""
        key_type = self._authenticated[1]
        rights = TRAILER_RIGHTS[self._conditions(block // BLOCKS_PER_SECTOR)[3]]
        old = self.block(block)
        key_a = data[KEY_A] if key_type in rights[0] else old[KEY_A]
        access = data[ACCESS_BYTES] if key_type in rights[2] else old[ACCESS_BYTES]
        key_b = data[KEY_B] if key_type in rights[4] else old[KEY_B]
        return key_a + access + key_b

    # --- state bookkeeping ---

    def _refuse(self, nak_code: int) -> Frame:
        # After a NAK the card drops its session and must be woken and selected again.
        self._fall_back()
        return _nak(nak_code)

    def _fall_back(self) -> None:
        """ISO/IEC 14443-3 6.2: an unexpected frame sends a card back to IDLE, or to HALT if it was
        woken from there."""
        if self.state in (CardState.POWER_OFF, CardState.IDLE, CardState.HALT):
            return
        self.state = CardState.HALT if self._was_halted else CardState.IDLE
        self._forget_session()

    def _forget_session(self) -> None:
        self._authenticated = None
        self._pending_write_block = None

    def _manufacturer_block(self) -> bytes:
        if len(self.uid) == 4:
            head = self.uid + bytes((block_check_character(self.uid), self.sak)) + ATQA_SINGLE_SIZE_UID
        else:
            head = self.uid + bytes((self.sak,)) + ATQA_DOUBLE_SIZE_UID
        return head + b"FIELDPOS-SIM"[: BLOCK_SIZE - len(head)]


def _trailer_block(sector: int) -> int:
    return sector * BLOCKS_PER_SECTOR + BLOCKS_PER_SECTOR - 1


def _is_trailer(block: int) -> bool:
    return block % BLOCKS_PER_SECTOR == BLOCKS_PER_SECTOR - 1


# --- the field ---


@dataclass(frozen=True, slots=True)
class FieldReply:
    """What reached the reader's antenna: one frame, or several cards' frames on top of each other."""

    frame: Frame
    first_collision_bit: int | None = None  # index on air (LSB of byte 0 first), None if clean
    has_parity_error: bool = False
    processing_s: float = 0.0  # time the card worked before it began to answer


class RfField:
    """The space in front of the antenna: cards come and go, and faults a test asks for happen here."""

    def __init__(self) -> None:
        self.cards: list[MifareClassic1K] = []
        self.frame_count = 0  # reader frames that went out while the antenna was on
        self._frames_until_removal: int | None = None
        self._replies_until_corruption: int | None = None
        self._replies_until_parity_error: int | None = None

    def present(self, *cards: MifareClassic1K) -> None:
        """Cards enter the field and power up (idle, not halted)."""
        for card in cards:
            if card not in self.cards:
                card.power_up()
                self.cards.append(card)

    def remove(self, card: MifareClassic1K | None = None) -> None:
        """Take one card (or all) away; a card that leaves loses its session and halt state."""
        for leaving in [card] if card is not None else list(self.cards):
            leaving.power_down()
            self.cards.remove(leaving)
        self._frames_until_removal = None

    def remove_after_frames(self, frame_count: int) -> None:
        """Cards answer ``frame_count`` more reader frames, then are gone before the next one.

        A MIFARE authentication counts as one frame, a write as two (command, then data): pulling
        the card after the first part of a write leaves the block as it was.
        """
        if frame_count < 0:
            raise ValueError("frame_count must be >= 0")
        self._frames_until_removal = frame_count

    def corrupt_next_reply(self, *, after_replies: int = 0) -> None:
        """Flip one bit in the next answer, or the one after ``after_replies`` clean ones (its CRC
        or BCC then no longer matches)."""
        self._replies_until_corruption = after_replies

    def garble_next_reply(self, *, after_replies: int = 0) -> None:
        """The next answer (or the one after ``after_replies``) arrives with a parity error, which
        the chip reports in ErrorReg ParityErr."""
        self._replies_until_parity_error = after_replies

    # --- called by the emulated chip ---

    def exchange(self, frame: Frame, *, is_encrypted: bool) -> FieldReply | None:
        self._count_frame()
        cards = list(self.cards)
        replies = [reply for card in cards if (reply := card.receive(frame, is_encrypted=is_encrypted))]
        if not replies:
            return None
        combined = _superpose(replies)
        self._replies_until_corruption, is_corrupted = _count_down(self._replies_until_corruption)
        if is_corrupted:
            data = combined.frame.data
            flipped = Frame(data[:-1] + bytes((data[-1] ^ 0x01,)), combined.frame.last_byte_bits)
            combined = replace(combined, frame=flipped)
        self._replies_until_parity_error, has_parity_error = _count_down(self._replies_until_parity_error)
        if has_parity_error:
            combined = replace(combined, has_parity_error=True)
        return replace(combined, processing_s=max(card.last_processing_s for card in cards))

    def authenticate(self, key_type: str, block: int, key: bytes, uid_bytes: bytes) -> bool:
        self._count_frame()
        results = [card.authenticate(key_type, block, key, uid_bytes) for card in list(self.cards)]
        return any(results)

    def _count_frame(self) -> None:
        self.frame_count += 1
        if self._frames_until_removal is None:
            return
        if self._frames_until_removal == 0:
            self.remove()
        else:
            self._frames_until_removal -= 1


def _count_down(remaining: int | None) -> tuple[int | None, bool]:
    """One reply passes a pending fault: (what remains, whether the fault strikes now)."""
    if remaining is None:
        return None, False
    if remaining == 0:
        return None, True
    return remaining - 1, False


def _superpose(replies: list[Frame]) -> FieldReply:
    """Several cards answering at once: where their bits differ the reader sees a collision
    (Manchester coding makes both subcarrier halves modulated)."""
    first = replies[0]
    if all(reply == first for reply in replies):
        return FieldReply(first)
    length = max(len(reply.data) for reply in replies)
    padded = [reply.data.ljust(length, b"\x00") for reply in replies]
    combined = bytes(_or_all(column) for column in zip(*padded, strict=True))
    collision_bit = None
    for index in range(length * 8):
        bits = {(data[index // 8] >> (index % 8)) & 1 for data in padded}
        if len(bits) > 1:
            collision_bit = index
            break
    return FieldReply(Frame(combined, first.last_byte_bits), collision_bit)


def _or_all(values: tuple[int, ...]) -> int:
    result = 0
    for value in values:
        result |= value
    return result
