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
from protocol import envelope
from protocol.errors import LocalProtocolError
from protocol.messages import CardRef, Charge, LossReport, MemberOpen, OfflineCharge, TopUp
from protocol.pin import seal_pin

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


def open_wang(park):
    return park.portal.open_ecard(member_name="王芳", phone="13700137000", pin="135790",
                                  device_key=PHONE.verify_key.encode())


def scanned(credential, device=PHONE, at_ms=None) -> CardRef:
    """The card reference a till sends for an e-card QR its scanner read: the token's card and the token."""
    token = present(credential, device, at_ms)
    card = ecard.parse_token(token)[0]
    return CardRef(no=card.card_no, issuance=card.issuance, uid=card.device_tag, ecard=token)


def sell(park, card_ref, amount_fen=3000, terminal="T-FISH-1", pin=None):
    fields = park.ledger.fields(terminal, card_ref)
    identity = park.rig.identity(terminal)
    extra, attachment = {"pin_sha256": None}, b""
    if pin is not None:
        attachment, extra["pin_sha256"] = seal_pin(pin, terminal=terminal, seq=fields["seq"],
                                                   ledger_pin_key=identity.pin_key)
    topic = f"fieldpos/v1/P1/t/{terminal}/req"
    payload = envelope.seal(Charge(**fields, amount_fen=amount_fen, lines=single_line("鱼饵", amount_fen),
                                   **extra).to_bytes(), signing_key=identity.signing_key, key_id=identity.key_id,
                            purpose=envelope.Purpose.REQUEST, topic=topic, attachment=attachment)
    return park.ledger.send(topic, payload)


def test_a_station_sells_to_an_ecard_by_its_scanned_qr_once_and_the_same_qr_again_is_a_replay(park):
    opened = open_wang(park)
    topped = park.ledger.request("T-DESK-1", TopUp, card_ref=scanned(opened.credential, at_ms=park.now_ms),
                                 amount_fen=10000, channel="cash", payment_ref="")
    assert topped.is_approved
    park.now_ms += WINDOW_MS
    qr = scanned(opened.credential, at_ms=park.now_ms)
    charged = sell(park, qr)
    assert charged.is_approved and charged.balances.fen == 7000
    again = sell(park, qr)  # the same QR (a screenshot of it) at the next till, seconds later
    assert (again.reason, again.balances) == ("ECARD_REPLAYED", None)
    assert [kind for (kind,) in park.store.db.execute("SELECT kind FROM alert")] == ["ECARD_REPLAYED"]  # raised
    assert park.store.card_balances("P1", qr.account)[0] == 7000
    assert verify_books(park.store).is_ok


def test_an_ecard_named_without_its_qr_or_from_another_phone_or_forged_is_declined_and_shows_no_balance(park):
    opened = open_wang(park)
    device_tag = park.store.card("P1", opened.card_no).uid
    bare = sell(park, CardRef(no=opened.card_no, issuance=1, uid=device_tag))  # the tag is in every QR shown
    assert (bare.reason, bare.balances) == ("ECARD_QR_REQUIRED", None)
    for_thief = park.portal.credential(opened.card_no, 1, THIEF_PHONE.verify_key.encode(), opened.expires_ms)
    assert sell(park, scanned(for_thief, THIEF_PHONE, park.now_ms)).reason == "ECARD_WRONG_DEVICE"
    forged = scanned(opened.credential, THIEF_PHONE, park.now_ms)  # the real credential, signed by the thief's key
    assert sell(park, CardRef(no=forged.no, issuance=1, uid=device_tag, ecard=forged.ecard)).reason == "ECARD_INVALID"
    stale = scanned(opened.credential, at_ms=park.now_ms - 2 * WINDOW_MS)
    assert sell(park, stale).reason == "ECARD_STALE"
    assert park.store.ecard("P1", opened.card_no, 1)[2] == -1  # no window used up by a decline


def test_a_physical_cards_request_may_not_carry_a_token_and_a_staff_kind_takes_no_qr(park):
    opened = open_wang(park)
    qr = scanned(opened.credential, at_ms=park.now_ms)
    with pytest.raises(LocalProtocolError) as other_card:
        CardRef(no="M00008", issuance=1, uid=qr.uid, ecard=qr.ecard)
    assert other_card.value.code == "VALUE_OUT_OF_RANGE"
    lost = park.ledger.request("T-DESK-1", LossReport, card_ref=qr)
    assert lost.reason == "ECARD_INVALID" and park.store.block_reason("P1", opened.card_no, 1) is None


def test_the_members_pin_rules_apply_to_an_ecard_as_to_a_physical_card(park):
    opened = open_wang(park)
    park.ledger.request("T-DESK-1", TopUp, card_ref=scanned(opened.credential, at_ms=park.now_ms),
                        amount_fen=50000, channel="cash", payment_ref="")
    park.now_ms += WINDOW_MS
    qr = scanned(opened.credential, at_ms=park.now_ms)
    over_limit = 25000  # the park's no-PIN limit is 200.00
    assert sell(park, qr, over_limit).reason == "PIN_REQUIRED"
    assert sell(park, qr, over_limit, pin="000000").reason == "WRONG_PIN"
    approved = sell(park, qr, over_limit, pin="135790")  # the same QR: a decline used none of it
    assert approved.is_approved and approved.balances.fen == 25000
    assert park.store.member("P1", opened.card_no).wrong_pins == 0


def test_an_offline_ecard_sale_is_booked_even_when_its_qr_was_used_and_the_alert_says_so(park):
    opened = open_wang(park)
    park.ledger.request("T-DESK-1", TopUp, card_ref=scanned(opened.credential, at_ms=park.now_ms),
                        amount_fen=10000, channel="cash", payment_ref="")
    park.now_ms += WINDOW_MS
    qr = scanned(opened.credential, at_ms=park.now_ms)
    assert sell(park, qr, terminal="T-FISH-1").is_approved
    approved_ms = park.now_ms
    park.now_ms += 3600_000  # uploaded an hour later: checked at the time the till approved it
    offline = park.ledger.request("T-FISH-1", OfflineCharge, card_ref=qr, amount_fen=2000,
                                  lines=single_line("鱼饵", 2000), pin_sha256=None, supersedes_seq=None,
                                  approved_ms=approved_ms)
    assert offline.is_approved
    assert park.store.card_balances("P1", qr.account)[0] == 5000
    alerts = park.store.db.execute("SELECT kind, detail FROM alert").fetchall()
    assert [kind for kind, _ in alerts if kind.startswith("ECARD")] == ["ECARD_OFFLINE_REPLAYED"]
    assert verify_books(park.store).is_ok


def test_opening_an_ecard_is_one_transaction_so_a_crash_before_the_phone_is_stored_leaves_no_card(park, monkeypatch):
    def crash(*args):
        raise RuntimeError("power cut")

    monkeypatch.setattr(park.store, "add_ecard", crash)
    with pytest.raises(RuntimeError):
        open_wang(park)
    assert park.store.card("P1", "E000001") is None and park.store.stored_request("P1-portal", 1) is None
    monkeypatch.undo()
    assert open_wang(park).card_no == "E000001"
    assert park.store.ecard("P1", "E000001", 1) is not None and verify_books(park.store).is_ok


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


NEW_PHONE = SigningKey(bytes(range(100, 132)))


def test_an_ecard_moved_to_a_new_phone_pays_from_there_and_the_old_phones_qr_is_refused(park):
    from ledger.errors import LedgerError
    from ledger.online_members import move_ecard

    opened = open_wang(park)
    park.ledger.request("T-DESK-1", TopUp, card_ref=scanned(opened.credential, at_ms=park.now_ms),
                        amount_fen=10000, channel="cash", payment_ref="")
    with pytest.raises(LedgerError) as wrong:
        move_ecard(park.portal, opened.card_no, NEW_PHONE.verify_key.encode(), "000000")
    assert wrong.value.code == "WRONG_PIN" and park.store.member("P1", opened.card_no).wrong_pins == 1
    moved = move_ecard(park.portal, opened.card_no, NEW_PHONE.verify_key.encode(), "135790")
    park.now_ms += WINDOW_MS
    assert sell(park, scanned(opened.credential, at_ms=park.now_ms)).reason == "ECARD_WRONG_DEVICE"  # the old phone
    paid = sell(park, scanned(moved.credential, NEW_PHONE, park.now_ms))
    assert paid.is_approved and paid.balances.fen == 7000  # the same card, its balance kept
    assert park.store.card("P1", opened.card_no).uid == ecard.device_tag(NEW_PHONE.verify_key.encode())
    assert park.store.member("P1", opened.card_no).wrong_pins == 0
    assert verify_books(park.store).is_ok


def test_a_physical_member_card_is_bound_with_its_own_pin_shown_with_the_ecard_and_unbound(park):
    from backoffice.portal.member_reads import member_cards
    from ledger.errors import LedgerError
    from ledger.online_members import bind_card, unbind_card

    opened = open_wang(park)
    plastic = CardRef(no="M00077", issuance=1, uid="04a1b2c3")  # bought at the desk on another number
    park.portal._send(MemberOpen, plastic, pin="2468", member_name="王小明", phone="13900139000", card_fee_fen=0,
                      opening_fen=0, channel="cash", payment_ref="")

    def bind(card_no, pin):
        try:
            bind_card(park.store, park.keys, "P1", opened.card_no, card_no, pin, park.now_ms)
        except LedgerError as error:
            return error.code
        return "OK"

    assert bind("M00077", "1111") == "WRONG_PIN" and park.store.member("P1", "M00077").wrong_pins == 1
    assert bind(opened.card_no, "135790") == "UNKNOWN_CARD"  # an e-card is not a physical card
    assert bind("M00077", "2468") == "OK"
    assert bind("M00077", "2468") == "ALREADY_BOUND"
    shown = {card.card_no: card.bound_to for card in member_cards(park.store, "P1", "13700137000")}
    assert shown == {opened.card_no: "", "M00077": opened.card_no}
    assert unbind_card(park.store, "P1", opened.card_no, "M00077")
    assert [card.card_no for card in member_cards(park.store, "P1", "13700137000")] == [opened.card_no]
