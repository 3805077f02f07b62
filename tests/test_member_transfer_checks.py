"""A member transfer goes through the same card checks as every other request on a card (issue 11,
defect 1): a lost, cloned, unknown or unissued source card moves nothing, and neither does a
transfer to the card it comes from. Each is a named, final decline — never a set-aside message."""

import pytest

from host_sim.rig import ParkRig, card
from ledger.verify import verify_books
from protocol import envelope
from protocol.messages import LossReport, MemberOpen, MemberTransfer, TopUp
from protocol.pin import seal_pin

from .conftest import TERMINALS
from .helpers.intake_driver import Ledger

TOPIC = "fieldpos/v1/P1/t/T-DESK-1/req"
WANG, WANG_PIN = card("M00008"), "246810"
LI, LI_PIN = card("M00010"), "112233"


def signed(ledger: Ledger, message_type, card_ref, pin=None, **extra):
    """Sign a desk request on ``card_ref`` (with the member's PIN sealed when given) and send it."""
    fields = ledger.fields("T-DESK-1", card_ref)
    identity = ledger.rig.identity("T-DESK-1")
    attachment = b""
    if pin is not None:
        attachment, extra["pin_sha256"] = seal_pin(pin, terminal="T-DESK-1", seq=fields["seq"],
                                                   ledger_pin_key=identity.pin_key)
    payload = envelope.seal(message_type(**fields, **extra).to_bytes(), signing_key=identity.signing_key,
                            key_id=identity.key_id, purpose=envelope.Purpose.REQUEST, topic=TOPIC, attachment=attachment)
    return ledger.send(TOPIC, payload)


def transfer(ledger: Ledger, source, to_card_no=LI.no, *, to_issuance=1, amount_fen=10000, pin=WANG_PIN):
    return signed(ledger, MemberTransfer, source, pin=pin, to_card_no=to_card_no, to_issuance=to_issuance,
                  amount_fen=amount_fen)


def balances(ledger: Ledger) -> dict:
    return {account: tuple(row) for account, *row in
            ledger.store.db.execute("SELECT account_id, fen, bonus, points FROM card_balance ORDER BY account_id")}


@pytest.fixture
def ledger(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS)
    store = rig.home.open_store()
    store.set_member_settings("P1", no_pin_limit_fen=20000, allow_transfer=True)
    store.close()
    ledger = Ledger(rig)
    for member, name, phone, pin in ((WANG, "王芳", "13800138000", WANG_PIN), (LI, "李四", "13600136000", LI_PIN)):
        assert signed(ledger, MemberOpen, member, pin=pin, member_name=name, phone=phone, card_fee_fen=0,
                      opening_fen=0, channel="cash", payment_ref="").is_approved
    assert signed(ledger, TopUp, WANG, amount_fen=50000, channel="alipay", payment_ref="ali-1").is_approved
    yield ledger
    rig.close()
    ledger.store.close()


def test_a_transfer_out_of_a_card_reported_lost_is_declined_card_blocked(ledger):
    assert signed(ledger, LossReport, WANG).is_approved
    before = balances(ledger)
    result = transfer(ledger, WANG)
    assert (result.outcome, result.reason) == ("declined", "CARD_BLOCKED")
    assert balances(ledger) == before


def test_a_transfer_from_a_copied_card_record_is_refused_like_a_charge_from_it(ledger):
    clone = card(WANG.no, uid="deadbeef")  # the signed record copied onto another chip
    before = balances(ledger)
    result = transfer(ledger, clone)
    assert (result.outcome, result.reason) == ("declined", "CARD_UID_MISMATCH")
    assert result.balances is None  # a clone is not told the real card's balance
    assert balances(ledger) == before


def test_a_transfer_from_a_card_the_park_never_issued_is_declined_unknown_card_not_set_aside(ledger):
    result = transfer(ledger, card("M00077"))
    assert (result.outcome, result.reason) == ("declined", "UNKNOWN_CARD")
    assert ledger.store.set_asides() == []
    assert ledger.intake.counts["set_aside"] == 0


def test_a_transfer_from_an_issuance_never_issued_is_a_named_decline_not_a_failure(ledger):
    before = balances(ledger)
    result = transfer(ledger, card(WANG.no, issuance=2))
    assert (result.outcome, result.reason) == ("declined", "UNKNOWN_CARD")
    assert ledger.store.set_asides() == []
    assert balances(ledger) == before


def test_a_transfer_to_an_issuance_never_issued_is_declined_unknown_card(ledger):
    result = transfer(ledger, WANG, to_issuance=2)
    assert (result.outcome, result.reason) == ("declined", "UNKNOWN_CARD")


def test_a_transfer_to_the_card_it_comes_from_is_declined_same_card_and_books_nothing(ledger):
    transactions = ledger.store.db.execute("SELECT COUNT(*) FROM txn").fetchone()[0]
    result = transfer(ledger, WANG, to_card_no=WANG.no)
    assert (result.outcome, result.reason) == ("declined", "SAME_CARD")
    assert ledger.store.db.execute("SELECT COUNT(*) FROM txn").fetchone()[0] == transactions


def test_after_every_refused_transfer_a_good_one_still_moves_the_money_and_the_books_balance(ledger):
    for source in (card("M00077"), card(WANG.no, issuance=2), card(WANG.no, uid="deadbeef")):
        assert not transfer(ledger, source).is_approved
    assert not transfer(ledger, WANG, to_card_no=WANG.no).is_approved
    moved = transfer(ledger, WANG)
    assert moved.is_approved and moved.balances.fen == 40000
    assert ledger.store.card_balances("P1", LI.account)[0] == 10000
    assert verify_books(ledger.store).is_ok
