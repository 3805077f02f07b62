"""The RFID card reader as the terminal app sees it: find a card, read its blocks, write one, halt it.

A backend subclasses :class:`CardReader` and must implement :meth:`CardReader.poll`,
:meth:`CardReader.read_blocks`, :meth:`CardReader.write_block` and :meth:`CardReader.halt`. It may
override :meth:`CardReader.close` (the default does nothing). The real backend is
``terminal.drivers.mfrc522.Mfrc522CardReader``; in the host simulator the same driver talks to
``host_sim.devices.mfrc522.FakeSpiDev``, a byte-level MFRC522 with virtual MIFARE Classic cards.

Every failure is a :class:`terminal.errors.CardError` (or ``CardReaderFaultError`` for the reader
itself) whose code and message go on the screen. A read either returns every byte asked for or
raises: there is no partial result.

One tap at a station::

    uid = reader.poll()                          # None while nobody taps (cheap: call it often)
    if uid is not None:
        record = reader.read_blocks(uid, [4, 5, 6], key)   # CardAuthError, CardRemovedError, ...
        ...
        reader.halt()                            # the card stays quiet until it leaves the field,
                                                 # so it is not charged twice while it lies there
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from protocol.limits import CARD_UID_BYTES

# MIFARE Classic 1K memory layout (NXP MF1S50yyX datasheet, section 8.6 "Memory organization"):
# 16 sectors of 4 blocks of 16 bytes; the last block of each sector is its trailer (key A, access
# bits, key B); block 0 is the read-only manufacturer block holding the UID.
BLOCK_SIZE_BYTES = 16
BLOCKS_PER_SECTOR = 4
SECTOR_COUNT = 16
BLOCK_COUNT = SECTOR_COUNT * BLOCKS_PER_SECTOR
MANUFACTURER_BLOCK = 0

# A MIFARE Classic key is 48 bits (MF1S50yyX datasheet, section 8.6.3 "Sector trailer").
KEY_SIZE_BYTES = 6

# UID lengths a MIFARE Classic card can have: the protocol's single (4 bytes) and double (7) sizes
# (ISO/IEC 14443-3 section 6.5.4); triple size, 10 bytes, is never used by MIFARE Classic.
UID_SIZES_BYTES = tuple(size for size in CARD_UID_BYTES if size <= 7)
# The cascade tag (ISO/IEC 14443-3 section 6.5.4) marks "more UID follows"; no real UID starts with it.
CASCADE_TAG = 0x88


def sector_of(block: int) -> int:
    """The sector that holds ``block``."""
    check_block(block)
    return block // BLOCKS_PER_SECTOR


def is_sector_trailer(block: int) -> bool:
    """True if ``block`` is a sector trailer (keys and access bits), not a data block."""
    check_block(block)
    return block % BLOCKS_PER_SECTOR == BLOCKS_PER_SECTOR - 1


def sector_blocks(sector: int) -> range:
    """The block numbers of ``sector``, trailer last."""
    if not 0 <= sector < SECTOR_COUNT:
        raise ValueError(f"sector must be 0..{SECTOR_COUNT - 1}, not {sector}")
    first = sector * BLOCKS_PER_SECTOR
    return range(first, first + BLOCKS_PER_SECTOR)


def check_block(block: int) -> None:
    if not 0 <= block < BLOCK_COUNT:
        raise ValueError(f"block must be 0..{BLOCK_COUNT - 1}, not {block}")


@dataclass(frozen=True, slots=True)
class CardUid:
    """The unique id a card answers with during anticollision: 4 bytes (single size) or 7 (double)."""

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            raise TypeError(f"CardUid value must be bytes, not {type(self.value).__name__}")
        if len(self.value) not in UID_SIZES_BYTES:
            raise ValueError(f"a MIFARE Classic UID is 4 or 7 bytes, not {len(self.value)}")
        if self.value[0] == CASCADE_TAG:
            raise ValueError("a UID cannot start with the cascade tag 0x88")

    @classmethod
    def from_hex(cls, text: str) -> CardUid:
        """Parse hex as :attr:`hex` prints it ("04a1b2c3d4e5f6"), in either case; spaces and colons
        are ignored."""
        return cls(bytes.fromhex(text.replace(":", "").replace(" ", "")))

    @property
    def hex(self) -> str:
        """Lower-case hex: the only form the protocol accepts for a card's ``uid`` (PROTOCOL.md §4.4)."""
        return self.value.hex()

    @property
    def authentication_bytes(self) -> bytes:
        """The 4 UID bytes MIFARE Classic authentication is bound to: the last four (NXP AN10927)."""
        return self.value[-4:]

    def __str__(self) -> str:
        return self.hex


class KeyType(enum.Enum):
    """Which of a sector's two keys a :class:`SectorKey` is."""

    A = "A"
    B = "B"


@dataclass(frozen=True, slots=True)
class SectorKey:
    """A 6-byte MIFARE Classic sector key and whether the card knows it as key A or key B."""

    value: bytes
    key_type: KeyType = KeyType.A

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != KEY_SIZE_BYTES:
            raise ValueError(f"a sector key is {KEY_SIZE_BYTES} bytes")
        if not isinstance(self.key_type, KeyType):
            raise TypeError("key_type must be a KeyType")

    def __repr__(self) -> str:  # keys end up in logs; never print the secret
        return f"SectorKey(<{KEY_SIZE_BYTES} bytes>, {self.key_type.name})"


# NXP ships blank cards with every key set to FF x 6 (MF1S50yyX datasheet, section 8.6.3); a card
# still carrying it has not been provisioned by the park.
TRANSPORT_KEY = SectorKey(b"\xff" * KEY_SIZE_BYTES)


class CardReader(abc.ABC):
    """A contactless reader for MIFARE Classic 1K cards.

    An implementation keeps at most one card *active* (selected, possibly authenticated) at a
    time: the one :meth:`poll` returned last. :meth:`read_blocks` and :meth:`write_block` work on
    that card and may re-select it (by its UID) if it fell back to idle after an error; if another
    card answers, they raise ``CardRemovedError``. :meth:`halt` ends the session.
    """

    @abc.abstractmethod
    def poll(self) -> CardUid | None:
        """Look for a card that has just entered the field, select it and return its UID.

        Must return None, quickly and without raising, when no card answers; this is called in
        the idle loop many times a second. Cards already halted (see :meth:`halt`) do not answer.
        Raises ``CardCollisionError`` if two cards answer together, ``CardUnsupportedError`` for a
        card that is not a MIFARE Classic, ``CardReadError`` for a garbled answer.
        """

    @abc.abstractmethod
    def read_blocks(self, uid: CardUid, block_numbers: Sequence[int], key: SectorKey) -> bytes:
        """Return the 16 bytes of each block in ``block_numbers``, concatenated in that order.

        Each sector touched is authenticated with ``key``. Raises ``CardAuthError`` if the card
        refuses the key, ``CardRemovedError`` if the card leaves mid-way, ``CardReadError`` on a
        garbled answer; never returns part of the data.
        """

    @abc.abstractmethod
    def write_block(
        self,
        uid: CardUid,
        block_number: int,
        data: bytes,
        key: SectorKey,
        *,
        allow_sector_trailer: bool = False,
    ) -> None:
        """Write 16 bytes to one block, then read the block back and compare.

        Raises ``CardWriteError`` if the card refuses (access bits) or the read-back differs,
        ``CardRemovedError`` if the card leaves mid-way (the block then holds either the old or the
        new 16 bytes: the card writes a block all or nothing), ``CardAuthError`` for a wrong key.
        Block 0 is never written; a sector trailer (keys and access bits: a wrong one locks the
        sector for good) only with ``allow_sector_trailer=True``.
        """

    @abc.abstractmethod
    def halt(self) -> None:
        """Put the active card to sleep until it leaves the field, and end the session.

        Does nothing if no card is active.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, not every backend holds hardware
        """Release the hardware (antenna off, bus closed). The default does nothing."""

    def __enter__(self) -> CardReader:
        return self

    def __exit__(self, *exception_info: object) -> None:
        self.close()


def check_block_data(data: bytes) -> None:
    if not isinstance(data, bytes) or len(data) != BLOCK_SIZE_BYTES:
        raise ValueError(f"a block is {BLOCK_SIZE_BYTES} bytes")
