"""E-cards on the ledger: opened through the decision path by the portal's terminal, a scanned QR
checked against the registered device and the last window used, and sold to by its card reference.
The ledger's intake over a real SQLite file; no broker."""

import json

import pytest
from nacl.signing import SigningKey

from host_sim.rig import ParkRig, single_line
from ledger.intake import Intake
from ledger.online_members import MemberDesk, PortalRefused, accept_ecard_token
from ledger.verify import verify_books
from protocol import ecard
from protocol.ecard import ECardError, ECardFault, present
from protocol.messages import CardRef, Charge, TopUp

from .helpers.intake_driver import Ledger

NOW_MS = 1_780_000_000_000
WINDOW_MS = ecard.WINDOW_SECONDS * 1000
PHONE = SigningKey(bytes(range(200, 232)))
THIEF_PHONE = SigningKey(bytes(range(1, 33)))


class Park:
    def __init__(self, tmp_path):
        self.rig = ParkRig(tmp_path).create({"T-DESK-1": "desk", "T-FISH-1": "fishing", "P1-portal": "desk"},
                                            kinds_by_terminal={"P1-portal": ("member_open", "loss_report")})
        self.now_ms = NOW_MS
        self.ledger = Ledger(self.rig)  # the desk and the fishing pond, signing as terminals do
        self.ledger.intake.clock_ms = lambda: self.now_ms
        self.store = self.ledger.store
        self.keys = self.rig.home.ledger_keys()
        bundle = json.loads(self.rig.home.bundle_path("P1-portal").read_text())
        self.portal = MemberDesk(Intake(self.store, self.keys, clock_ms=lambda: self.now_ms), bundle, lambda: self.now_ms)

    def scan(self, token):
        with self.store.batch():
            return accept_ecard_token(self.store, self.keys, token, self.now_ms)


@pytest.fixture
def park(tmp_path):
    park = Park(tmp_path)
    yield park
    park.rig.close()
    park.store.close()


def test_an_ecard_opened_online_is_a_member_card_bound_to_the_phone_and_the_books_verify(park):
    opened = park.portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                    device_key=PHONE.verify_key.encode())
    assert (opened.card_no, opened.issuance) == ("E000001", 1)
    card = park.store.card("P1", "E000001")
    assert card.kind == "member" and card.uid == ecard.device_tag(PHONE.verify_key.encode())
    assert park.store.member("P1", "E000001").phone == "13800138000"
    assert park.store.stored_request("P1-portal", 1) is not None  # the evidence a desk's member_open leaves
    assert verify_books(park.store).is_ok
    second = park.portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                    device_key=THIEF_PHONE.verify_key.encode())
    assert second.card_no == "E000002"


def test_a_token_is_accepted_once_then_refused_as_a_replay_and_a_later_window_is_accepted(park):
    opened = park.portal.open_ecard(member_name="李雷", phone="13900139000", pin="112233",
                                    device_key=PHONE.verify_key.encode())
    token = present(opened.credential, PHONE, park.now_ms)
    assert park.scan(token).card_ref["no"] == "E000001"
    with pytest.raises(ECardError) as replayed:
        park.scan(token)
    assert replayed.value.code == ECardFault.REPLAYED.value
    park.now_ms += WINDOW_MS
    park.scan(present(opened.credential, PHONE, park.now_ms))
    earlier = present(opened.credential, PHONE, park.now_ms - WINDOW_MS)  # still fresh, but before the last used
    with pytest.raises(ECardError) as older:
        park.scan(earlier)
    assert older.value.code == ECardFault.REPLAYED.value


@pytest.mark.parametrize("shown_ago_windows, fault", [(2, ECardFault.STALE), (90, ECardFault.STALE)])
def test_a_screenshot_older_than_the_lifetime_is_refused(park, shown_ago_windows, fault):
    opened = park.portal.open_ecard(member_name="李雷", phone="13900139000", pin="112233",
                                    device_key=PHONE.verify_key.encode())
    token = present(opened.credential, PHONE, park.now_ms - shown_ago_windows * WINDOW_MS)
    with pytest.raises(ECardError) as caught:
        park.scan(token)
    assert caught.value.code == fault.value


def test_a_credential_signed_for_another_device_than_the_registered_one_is_refused(park):
    """Even a genuine ledger signature (say, an old credential of a re-registered card) does not
    help a phone the ledger has not registered for the card."""
    opened = park.portal.open_ecard(member_name="李雷", phone="13900139000", pin="112233",
                                    device_key=PHONE.verify_key.encode())
    for_thief = park.portal.credential(opened.card_no, 1, THIEF_PHONE.verify_key.encode(), opened.expires_ms)
    with pytest.raises(ECardError) as caught:
        park.scan(present(for_thief, THIEF_PHONE, park.now_ms))
    assert caught.value.code == ECardFault.WRONG_DEVICE.value
    with pytest.raises(ECardError) as forged:
        park.scan(present(opened.credential, THIEF_PHONE, park.now_ms))  # the real credential, the thief's key
    assert forged.value.code == ECardFault.INVALID.value


def test_a_charge_carries_the_ecards_card_reference_and_another_devices_tag_is_a_uid_mismatch(park):
    opened = park.portal.open_ecard(member_name="王芳", phone="13700137000", pin="135790",
                                    device_key=PHONE.verify_key.encode())
    reference = park.scan(present(opened.credential, PHONE, park.now_ms)).card_ref
    ecard_ref = CardRef(**reference)
    assert park.ledger.request("T-DESK-1", TopUp, card_ref=ecard_ref, amount_fen=10000, channel="cash",
                               payment_ref="").is_approved
    charged = park.ledger.request("T-FISH-1", Charge, card_ref=ecard_ref, amount_fen=3000,
                                  lines=single_line("鱼饵", 3000), pin_sha256=None)
    assert charged.is_approved and charged.balances.fen == 7000
    other = CardRef(no=opened.card_no, issuance=1, uid=ecard.device_tag(THIEF_PHONE.verify_key.encode()))
    refused = park.ledger.request("T-FISH-1", Charge, card_ref=other, amount_fen=3000,
                                  lines=single_line("鱼饵", 3000), pin_sha256=None)
    assert refused.reason == "CARD_UID_MISMATCH"
    assert verify_books(park.store).is_ok


def test_a_card_reported_lost_online_is_blocked_as_at_the_desk(park):
    opened = park.portal.open_ecard(member_name="王芳", phone="13700137000", pin="135790",
                                    device_key=PHONE.verify_key.encode())
    uid = park.store.card("P1", opened.card_no).uid
    park.portal.report_lost(opened.card_no, 1, uid)
    assert park.store.block_reason("P1", opened.card_no, 1) == "LOST"
    with pytest.raises(PortalRefused) as again:
        park.portal.report_lost(opened.card_no, 1, uid)
    assert again.value.code == "CARD_BLOCKED"


def test_a_pin_changed_online_counts_wrong_tries_and_locks_as_at_a_terminal(park):
    from ledger.errors import LedgerError
    from ledger.online_members import change_member_pin

    opened = park.portal.open_ecard(member_name="王芳", phone="13700137000", pin="135790",
                                    device_key=PHONE.verify_key.encode())

    def change(old, new):
        try:
            change_member_pin(park.store, park.keys, "P1", opened.card_no, old, new)
        except LedgerError as error:
            return error.code
        return "OK"

    assert change("135790", "12") == "BAD_PIN"
    assert [change("000000", "2468") for _ in range(3)] == ["WRONG_PIN"] * 3
    assert change("135790", "2468") == "PIN_LOCKED"  # the right PIN too: the desk unlocks it
    park.store.set_member_wrong_pins("P1", opened.card_no, 0)
    assert change("135790", "2468") == "OK" and change("135790", "1111") == "WRONG_PIN"
