"""The card reader at the stations: our MFRC522 driver against the byte-level emulation in host_sim.

Every test runs the real driver (terminal/drivers/mfrc522.py) over FakeSpiDev, whose clock is
virtual: nothing here depends on wall time. SPI transaction counts are deterministic and asserted.
"""

from __future__ import annotations

import pytest

from host_sim.devices.mfrc522 import COM_IRQ, CRC_ERROR, RX_IRQ, TIMER_IRQ, FakeSpiDev
from host_sim.devices.mifare import (
    DATA_READ_ONLY,
    DATA_READ_WRITE,
    TRAILER_TRANSPORT,
    CardState,
    MifareClassic1K,
    encode_access_bits,
)
from terminal.drivers.mfrc522 import Mfrc522CardReader
from terminal.errors import (
    CardAuthError,
    CardCollisionError,
    CardReaderFaultError,
    CardReadError,
    CardRemovedError,
    CardUnsupportedError,
    CardWriteError,
)
from terminal.hal.card_reader import TRANSPORT_KEY, CardUid, KeyType, SectorKey

# How a park provisions sector 1, the card-record sector: stations read with key A, only the front
# desk (key B) writes; key B itself is never readable. MF1S50yyX Tables 7 and 8: data (1,0,0) =
# read A|B, write B; trailer (0,1,1) = keys and access bits written with key B only.
RECORD_SECTOR = 1
RECORD_BLOCKS = [4, 5, 6]
RECORD_SECTOR_WITH_TRAILER = [4, 5, 6, 7]
STATION_KEY = SectorKey(bytes.fromhex("A0A1A2A3A4A5"), KeyType.A)
FRONT_DESK_KEY = SectorKey(bytes.fromhex("B0B1B2B3B4B5"), KeyType.B)
PARK_ACCESS_BYTES = encode_access_bits([(1, 0, 0), (1, 0, 0), (1, 0, 0), (0, 1, 1)])
CARD_RECORD = bytes(range(48))  # stands in for the ledger-signed record

IDLE_POLL_TARGET = 20
FULL_READ_TARGET = 150


@pytest.fixture
def spi() -> FakeSpiDev:
    return FakeSpiDev(0, 0)


@pytest.fixture
def reader(spi: FakeSpiDev) -> Mfrc522CardReader:
    return Mfrc522CardReader(spi, sleep=spi.clock.sleep)


def park_card(uid_hex: str) -> MifareClassic1K:
    card = MifareClassic1K(bytes.fromhex(uid_hex))
    for index, block in enumerate(RECORD_BLOCKS):
        card.set_block(block, CARD_RECORD[16 * index : 16 * (index + 1)])
    card.set_sector_trailer(
        RECORD_SECTOR, key_a=STATION_KEY.value, access_bytes=PARK_ACCESS_BYTES, key_b=FRONT_DESK_KEY.value
    )
    return card


def transactions_for(spi: FakeSpiDev, action) -> tuple[object, int]:
    before = spi.transaction_count
    result = action()
    return result, spi.transaction_count - before


# --- finding and reading cards ---


def test_a_4_byte_uid_card_tapped_at_the_bbq_station_is_selected(spi, reader):
    card = park_card("A1B2C3D4")
    spi.field.present(card)

    uid = reader.poll()

    assert uid == CardUid(bytes.fromhex("A1B2C3D4"))
    assert uid.hex == "a1b2c3d4"
    assert card.state is CardState.ACTIVE


def test_a_7_byte_uid_card_presented_at_the_fishing_station_reads_its_card_record_sector(spi, reader):
    spi.field.present(park_card("04A1B2C3D4E5F6"))

    uid = reader.poll()
    record = reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY)

    assert uid.hex == "04a1b2c3d4e5f6"
    assert record == CARD_RECORD


def test_reading_the_whole_record_sector_shows_the_trailer_as_the_card_reveals_it(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    uid = reader.poll()

    sector = reader.read_blocks(uid, RECORD_SECTOR_WITH_TRAILER, STATION_KEY)

    trailer = sector[48:]
    assert sector[:48] == CARD_RECORD
    assert trailer[:6] == bytes(6)  # key A always reads as zeros
    assert trailer[6:10] == PARK_ACCESS_BYTES
    assert trailer[10:] == bytes(6)  # key B is not readable under the park's access bits


def test_blocks_from_two_sectors_are_read_in_the_order_asked(spi, reader):
    card = MifareClassic1K(bytes.fromhex("A1B2C3D4"))
    card.set_block(9, b"nine".ljust(16, b"."))
    card.set_block(2, b"two".ljust(16, b"."))
    spi.field.present(card)
    uid = reader.poll()

    assert reader.read_blocks(uid, [9, 2], TRANSPORT_KEY) == card.block(9) + card.block(2)


# --- SPI traffic (deterministic counts) ---


def test_an_idle_poll_with_no_card_costs_at_most_20_spi_transactions_and_waits_for_the_chip_timer(spi, reader):
    uid, transactions = transactions_for(spi, reader.poll)

    assert uid is None
    assert transactions <= IDLE_POLL_TARGET
    # The poll ended because the chip's own timer fired, not because the driver gave up early.
    assert spi.chip.registers[COM_IRQ] & TIMER_IRQ


@pytest.mark.parametrize("uid_hex", ["A1B2C3D4", "04A1B2C3D4E5F6"])
def test_a_full_card_read_uid_and_one_sector_costs_at_most_150_spi_transactions(spi, reader, uid_hex):
    spi.field.present(park_card(uid_hex))

    def full_read() -> bytes:
        uid = reader.poll()
        return reader.read_blocks(uid, RECORD_SECTOR_WITH_TRAILER, STATION_KEY)

    sector, transactions = transactions_for(spi, full_read)

    assert sector[:48] == CARD_RECORD
    assert transactions <= FULL_READ_TARGET
    assert spi.chip.fifo_underflow_reads == 0  # the driver never read bytes the chip did not have


# --- keys ---


def test_a_card_from_another_park_refuses_the_station_key_and_nothing_is_returned(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    uid = reader.poll()
    other_park_key = SectorKey(bytes.fromhex("112233445566"))

    with pytest.raises(CardAuthError) as refused:
        reader.read_blocks(uid, RECORD_BLOCKS, other_park_key)

    assert refused.value.code == "CARD_AUTH"
    # The card was still there (it answered the wake-up), so the reader recovers with the right key.
    assert reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY) == CARD_RECORD


def test_a_wrong_key_is_told_apart_from_a_card_that_left(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    uid = reader.poll()
    spi.field.remove_after_frames(0)

    with pytest.raises(CardRemovedError):
        reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY)


# --- cards pulled away ---


@pytest.mark.parametrize("frames_before_pull", [0, 1, 2, 3])
def test_a_card_pulled_mid_read_raises_card_removed_and_never_partial_data(spi, reader, frames_before_pull):
    card = park_card("04A1B2C3D4E5F6")
    spi.field.present(card)
    uid = reader.poll()
    spi.field.remove_after_frames(frames_before_pull)  # authentication is frame 1, block reads follow

    with pytest.raises(CardRemovedError) as removed:
        reader.read_blocks(uid, RECORD_SECTOR_WITH_TRAILER, STATION_KEY)

    assert removed.value.code == "CARD_REMOVED"
    assert "hold" in str(removed.value)
    # Tapped again, the same card reads in full: the failed read left no session behind.
    spi.field.present(card)
    assert reader.poll() == uid
    assert reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY) == CARD_RECORD


@pytest.mark.parametrize("frames_before_pull", [1, 2])
def test_a_card_pulled_mid_write_keeps_the_old_block(spi, reader, frames_before_pull):
    card = park_card("A1B2C3D4")
    spi.field.present(card)
    uid = reader.poll()
    old_block = card.block(5)
    spi.field.remove_after_frames(frames_before_pull)  # 1: after authentication, 2: after write part 1

    with pytest.raises(CardRemovedError):
        reader.write_block(uid, 5, b"new record part!", FRONT_DESK_KEY)

    assert card.block(5) == old_block
    assert card.stored_write_count == 0


# --- writing ---


def test_the_front_desk_writes_a_record_block_and_it_is_read_back(spi, reader):
    card = park_card("A1B2C3D4")
    spi.field.present(card)
    uid = reader.poll()

    reader.write_block(uid, 5, b"issuance 0002...", FRONT_DESK_KEY)

    assert card.block(5) == b"issuance 0002..."
    assert reader.read_blocks(uid, [5], STATION_KEY) == b"issuance 0002..."


def test_a_write_the_card_acknowledged_but_stored_wrongly_is_caught_by_the_read_back(spi, reader):
    card = park_card("A1B2C3D4")
    spi.field.present(card)
    uid = reader.poll()
    card.corrupt_next_write()

    with pytest.raises(CardWriteError) as not_verified:
        reader.write_block(uid, 5, b"issuance 0002...", FRONT_DESK_KEY)

    assert not_verified.value.code == "CARD_WRITE"
    assert "not verified" in str(not_verified.value)
    assert card.stored_write_count == 1  # the card did store (a corrupted) block: only read-back knew


def test_a_write_to_a_read_only_block_is_refused_by_the_card(spi, reader):
    card = MifareClassic1K(bytes.fromhex("A1B2C3D4"))
    read_only_block_1 = encode_access_bits([DATA_READ_WRITE, DATA_READ_ONLY, DATA_READ_WRITE, TRAILER_TRANSPORT])
    card.set_sector_trailer(2, key_a=STATION_KEY.value, access_bytes=read_only_block_1, key_b=FRONT_DESK_KEY.value)
    card.set_block(9, b"printed at issue")
    spi.field.present(card)
    uid = reader.poll()

    with pytest.raises(CardWriteError) as refused:
        reader.write_block(uid, 9, b"tampered record!", STATION_KEY)

    assert "read-only" in str(refused.value)
    assert card.block(9) == b"printed at issue"
    reader.write_block(uid, 8, b"still writable..", STATION_KEY)  # its neighbour is not read-only
    assert card.block(8) == b"still writable.."


def test_a_station_key_cannot_write_the_record_sector(spi, reader):
    card = park_card("A1B2C3D4")
    spi.field.present(card)
    uid = reader.poll()

    with pytest.raises(CardWriteError):
        reader.write_block(uid, 4, bytes(16), STATION_KEY)

    assert card.block(4) == CARD_RECORD[:16]


def test_the_manufacturer_block_is_never_written(spi, reader):
    card = MifareClassic1K(bytes.fromhex("A1B2C3D4"))
    spi.field.present(card)
    uid = reader.poll()
    block_0 = card.block(0)

    with pytest.raises(ValueError):
        reader.write_block(uid, 0, bytes(16), TRANSPORT_KEY)

    assert card.block(0) == block_0
    assert card.block(0)[:4] == uid.value


def test_provisioning_a_blank_card_sets_the_park_keys_and_the_old_key_stops_working(spi, reader):
    card = MifareClassic1K(bytes.fromhex("04A1B2C3D4E5F6"))
    spi.field.present(card)
    uid = reader.poll()
    new_trailer = STATION_KEY.value + PARK_ACCESS_BYTES + FRONT_DESK_KEY.value

    with pytest.raises(ValueError):
        reader.write_block(uid, 7, new_trailer, TRANSPORT_KEY)  # trailers only when asked for
    reader.write_block(uid, 7, new_trailer, TRANSPORT_KEY, allow_sector_trailer=True)

    assert card.block(7) == new_trailer
    with pytest.raises(CardAuthError):
        reader.read_blocks(uid, [4], TRANSPORT_KEY)
    assert reader.read_blocks(uid, [4], STATION_KEY) == bytes(16)


# --- what else comes near the reader ---


def test_two_cards_tapped_together_are_refused_not_guessed(spi, reader):
    spi.field.present(park_card("A1B2C3D4"), park_card("11223344"))

    with pytest.raises(CardCollisionError) as collision:
        reader.poll()

    assert collision.value.code == "CARD_COLLISION"


def test_a_bank_card_tapped_at_the_terminal_is_not_a_park_card(spi, reader):
    spi.field.present(MifareClassic1K(bytes.fromhex("08112233"), sak=0x20))  # ISO 14443-4 only

    with pytest.raises(CardUnsupportedError):
        reader.poll()


def test_a_card_left_on_the_reader_after_halt_is_not_read_again_until_tapped_again(spi, reader):
    card = park_card("A1B2C3D4")
    spi.field.present(card)
    uid = reader.poll()
    reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY)

    reader.halt()

    assert card.state is CardState.HALT
    assert reader.poll() is None
    assert reader.poll() is None
    spi.field.remove()
    spi.field.present(card)
    assert reader.poll() == uid


def test_a_damaged_block_answer_is_refused_by_its_crc(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    uid = reader.poll()
    spi.field.corrupt_next_reply()  # authentication does not pass through it; the block read does

    with pytest.raises(CardReadError) as garbled:
        reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY)

    assert "CRC" in str(garbled.value)


def test_a_damaged_uid_answer_is_refused_by_its_check_byte(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    spi.field.corrupt_next_reply(after_replies=1)  # ATQA passes, the anticollision answer is hit

    with pytest.raises(CardReadError) as garbled:
        reader.poll()

    assert "check byte" in str(garbled.value)


def test_a_parity_error_from_the_chip_is_a_read_error(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))
    uid = reader.poll()
    spi.field.garble_next_reply()

    with pytest.raises(CardReadError) as garbled:
        reader.read_blocks(uid, RECORD_BLOCKS, STATION_KEY)

    assert garbled.value.code == "CARD_READ"


# --- the reader hardware ---


class UnpluggedSpi:
    """MISO floating low: every byte reads 0x00."""

    def xfer2(self, values: list[int]) -> list[int]:
        return [0] * len(values)

    def close(self) -> None:
        pass


def test_a_reader_with_no_chip_on_the_bus_is_reported_to_call_a_technician():
    with pytest.raises(CardReaderFaultError) as fault:
        Mfrc522CardReader(UnpluggedSpi(), sleep=lambda seconds: None)

    assert fault.value.code == "CARD_READER_FAULT"
    assert "cable" in str(fault.value)


def test_closing_the_reader_switches_the_antenna_off_and_releases_the_bus(spi, reader):
    spi.field.present(park_card("A1B2C3D4"))

    reader.close()

    with pytest.raises(OSError):  # like spidev on a closed device
        spi.xfer2([0x80, 0])
    spi.open(0, 0)
    assert reader.poll() is None  # no field, no card


# --- the card UID value ---


def test_a_card_uid_is_4_or_7_bytes_and_prints_as_lower_case_hex():
    assert CardUid.from_hex("04:A1:B2:C3:D4:E5:F6").hex == "04a1b2c3d4e5f6"
    assert str(CardUid(bytes.fromhex("A1B2C3D4"))) == "a1b2c3d4"
    assert CardUid(bytes.fromhex("04A1B2C3D4E5F6")).authentication_bytes == bytes.fromhex("C3D4E5F6")
    with pytest.raises(ValueError):
        CardUid(bytes(5))
    with pytest.raises(ValueError):
        CardUid(bytes.fromhex("88112233"))  # the cascade tag is not a UID byte


# --- the emulation keeps the chip's rules ---


def test_the_emulated_chip_rejects_a_read_transaction_with_a_write_address_in_it(spi):
    with pytest.raises(ValueError):
        spi.xfer2([0x88, 0x12, 0x00])  # 0x12 is a write address in the middle of a read


def test_the_emulated_chip_times_out_with_timer_irq_when_no_card_answers(spi):
    def write(register: int, *values: int) -> None:
        spi.xfer2([(register << 1) & 0x7E, *values])

    write(0x2A, 0x80)  # TAuto
    write(0x2B, 0xA9)
    write(0x2C, 0x03)
    write(0x2D, 0xE8)  # about 25 ms
    write(0x14, 0x83)  # antenna on
    write(0x09, 0x26)  # REQA into the FIFO
    write(0x01, 0x0C)  # Transceive
    write(0x0D, 0x87)  # StartSend, 7 bits

    spi.clock.sleep(0.010)
    early = spi.xfer2([0x88, 0x00])[1]
    spi.clock.sleep(0.020)
    late = spi.xfer2([0x88, 0x00])[1]

    assert not early & TIMER_IRQ
    assert late & TIMER_IRQ


def test_the_emulated_chip_checks_crc_itself_when_rx_crc_is_on_and_an_atqa_carries_none(spi):
    # Why drivers switch RxCRCEn off for REQA: the chip then flags the CRC-less ATQA as CRCErr.
    spi.field.present(MifareClassic1K(bytes.fromhex("A1B2C3D4")))
    for register, value in ((0x2A, 0x80), (0x2B, 0xA9), (0x2C, 0x03), (0x2D, 0xE8), (0x14, 0x83), (0x13, 0x80)):
        spi.xfer2([(register << 1) & 0x7E, value])
    spi.xfer2([0x09 << 1, 0x26])  # REQA into the FIFO
    spi.xfer2([0x01 << 1, 0x0C])  # Transceive
    spi.xfer2([0x0D << 1, 0x87])  # StartSend, 7 bits
    spi.clock.sleep(0.001)

    irq, error = spi.xfer2([0x88, 0x8C, 0x00])[1:]  # read ComIrqReg and ErrorReg in one go

    assert irq & RX_IRQ
    assert error & CRC_ERROR
