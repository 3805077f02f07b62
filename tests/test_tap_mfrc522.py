"""The tap's MFRC522 driver (tap/mfrc522.py) over host_sim's byte-level emulation of the chip and
the cards (FakeSpiDev), through the same one-function SPI adapter a board's machine.SPI gets: it
finds the card, opens the record's sectors with the card's own key and the record verifies."""

import pytest

from host_sim.devices.mfrc522 import FakeSpiDev
from host_sim.devices.mifare import MifareClassic1K
from host_sim.rig import ParkRig
from tap import card, ed25519, mfrc522
from tap.errors import TapError


class _ChipSelect:
    def __init__(self):
        self.levels = []

    def value(self, level):
        self.levels.append(level)


class _BoardSpi:
    """machine.SPI's write_readinto over the emulated chip."""

    def __init__(self, fake):
        self.fake = fake

    def write_readinto(self, data, answer):
        answer[:] = bytes(self.fake.xfer2(list(data)))


@pytest.fixture(scope="module")
def park(tmp_path_factory):
    rig = ParkRig(tmp_path_factory.mktemp("park")).create({"TAP-1": "riding"})
    yield rig
    rig.close()


@pytest.fixture
def spi():
    return FakeSpiDev(0, 0)


def _reader(park, spi, chip_select=None):
    transfer = mfrc522.machine_spi_transfer(_BoardSpi(spi), chip_select or _ChipSelect())
    chip = mfrc522.Mfrc522(transfer, lambda ms: spi.clock.sleep(ms / 1000))
    chip.reset()
    return mfrc522.CardReader(chip, park.home.ledger_keys().card_key_master)


def _record_key(park):
    from protocol.envelope import Purpose

    return ed25519.VerifyKey(park.home.ledger_keys().for_purpose(Purpose.CARD_RECORD).signing_key.verify_key.encode())


def test_no_card_on_the_reader_reads_nothing(park, spi):
    assert _reader(park, spi).read() is None


@pytest.mark.parametrize("uid_hex", ["04a1b2c3", "04a1b2c3d4e5f6"])
def test_a_park_card_is_read_and_its_record_verifies_on_the_tap(park, spi, uid_hex):
    spi.field.present(park.virtual_card("C00007", uid=bytes.fromhex(uid_hex)))
    chip_select = _ChipSelect()
    uid, data = _reader(park, spi, chip_select).read()
    assert uid.hex() == uid_hex
    record = card.read_record(data, uid, _record_key(park), "P1")
    assert (record.card_no, record.issuance, record.kind) == ("C00007", 1, "temporary")
    assert chip_select.levels[:2] == [0, 1] and len(chip_select.levels) % 2 == 0  # one select per exchange


def test_a_card_whose_key_is_not_this_park_s_is_refused(park, spi):
    stranger = MifareClassic1K(bytes.fromhex("04a1b2c9"))
    stranger.set_sector_trailer(1, key_a=bytes(6), access_bytes=bytes.fromhex("ff078069"), key_b=bytes(6))
    spi.field.present(stranger)
    with pytest.raises(TapError) as refused:
        _reader(park, spi).read()
    assert refused.value.code == card.CARD_RECORD_INVALID


def test_a_record_copied_onto_another_card_does_not_verify(park, spi):
    original = park.virtual_card("C00008", uid=bytes.fromhex("04a1b2c3"))
    copy = park.virtual_card("C00008", uid=bytes.fromhex("04a1b2c4"))
    for block in card.RECORD_BLOCKS:
        copy.set_block(block, original.block(block))
    spi.field.present(copy)
    uid, data = _reader(park, spi).read()
    with pytest.raises(TapError) as refused:
        card.read_record(data, uid, _record_key(park), "P1")
    assert refused.value.code == card.CARD_RECORD_INVALID


def test_two_cards_at_once_are_not_read(park, spi):
    spi.field.present(park.virtual_card("C00009", uid=bytes.fromhex("04a1b2c5")),
                      park.virtual_card("C00010", uid=bytes.fromhex("04b1b2c6")))
    with pytest.raises(TapError) as refused:
        _reader(park, spi).read()
    assert refused.value.code == mfrc522.CARD_GONE


def test_a_chip_that_is_not_there_is_a_reader_fault():
    chip = mfrc522.Mfrc522(lambda data: bytes(len(data)), lambda ms: None)
    with pytest.raises(TapError) as fault:
        chip.reset()
    assert fault.value.code == mfrc522.READER_FAULT
