"""The e-card QR token as a terminal checks it offline: tables, no broker, no clock."""

import base64

import pytest
from nacl.signing import SigningKey

from protocol import ecard
from protocol.ecard import Credential, ECardError, ECardFault, present, sign_credential, verify_token

LEDGER = SigningKey(bytes(range(64, 96)))
PHONE = SigningKey(bytes(range(200, 232)))
OTHER_PHONE = SigningKey(bytes(range(1, 33)))
NOW_MS = 1_780_000_000_000
CREDENTIAL = Credential(park="P1", card_no="E000001", issuance=1, device_key=PHONE.verify_key.encode(),
                        expires_ms=NOW_MS + 365 * 86_400_000, key_id="P1-card-record-1")
WINDOW_MS = ecard.WINDOW_SECONDS * 1000


def token_at(shown_ms, *, credential=CREDENTIAL, ledger=LEDGER, phone=PHONE):
    return present(sign_credential(credential, ledger), phone, shown_ms)


def test_a_fresh_token_from_the_registered_phone_verifies_and_names_the_card():
    shown = verify_token(token_at(NOW_MS), LEDGER.verify_key, "P1", NOW_MS)
    assert shown.credential == CREDENTIAL
    assert shown.window == NOW_MS // WINDOW_MS
    assert shown.card_ref == {"no": "E000001", "issuance": 1, "uid": ecard.device_tag(PHONE.verify_key.encode())}
    assert len(shown.card_ref["uid"]) == 20


def test_the_token_is_qr_alphanumeric_and_fits_the_limit():
    token = token_at(NOW_MS)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:")  # QR alphanumeric mode
    assert len(token) <= ecard.MAX_TOKEN_CHARS


@pytest.mark.parametrize("age_windows, fault", [
    (0, None),
    (1, None),                            # shown in the last window: still inside the lifetime
    (2, ECardFault.STALE),                # a screenshot from 40 s ago
    (30, ECardFault.STALE),               # ten minutes ago
    (-1, None),                           # the phone's clock one window ahead
    (-2, ECardFault.STALE),               # further ahead than any clock drift we accept
])
def test_freshness_by_window(age_windows, fault):
    token = token_at(NOW_MS - age_windows * WINDOW_MS)
    if fault is None:
        verify_token(token, LEDGER.verify_key, "P1", NOW_MS)
    else:
        with pytest.raises(ECardError) as caught:
            verify_token(token, LEDGER.verify_key, "P1", NOW_MS)
        assert caught.value.code == fault.value


@pytest.mark.parametrize("make, fault", [
    (lambda: token_at(NOW_MS, ledger=SigningKey(bytes(32))), ECardFault.INVALID),       # forged credential
    (lambda: token_at(NOW_MS, phone=OTHER_PHONE), ECardFault.INVALID),                   # another phone signed
    (lambda: token_at(NOW_MS, credential=Credential("P2", "E000001", 1, PHONE.verify_key.encode(),
                                                    NOW_MS + 1000_000, "P2-card-record-1")), ECardFault.INVALID),
    (lambda: token_at(NOW_MS, credential=Credential("P1", "E000001", 1, PHONE.verify_key.encode(),
                                                    NOW_MS - 1000, "P1-card-record-1")), ECardFault.EXPIRED),
    (lambda: "FPV1:" + token_at(NOW_MS)[5:], ECardFault.INVALID),                        # a voucher prefix
    (lambda: token_at(NOW_MS)[:-8], ECardFault.INVALID),                                 # cut short
    (lambda: token_at(NOW_MS) + "A" * 200, ECardFault.INVALID),                          # too long
    (lambda: "FPE1:" + "1" * 40, ECardFault.INVALID),                                    # not base32
    (lambda: 12345, ECardFault.INVALID),                                                  # not text
])
def test_refused_tokens(make, fault):
    with pytest.raises(ECardError) as caught:
        verify_token(make(), LEDGER.verify_key, "P1", NOW_MS)
    assert caught.value.code == fault.value


def test_a_credential_copied_to_another_phone_cannot_make_a_new_window():
    """A thief with the credential bytes (from a screenshot) and their own key: the device
    signature must be the registered device's, whatever they sign with."""
    stolen = sign_credential(CREDENTIAL, LEDGER)
    with pytest.raises(ECardError):
        verify_token(present(stolen, OTHER_PHONE, NOW_MS), LEDGER.verify_key, "P1", NOW_MS)


def test_every_single_character_changed_makes_the_token_invalid():
    token = token_at(NOW_MS)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    for at in range(len(ecard.PREFIX), len(token)):
        other = alphabet[(alphabet.index(token[at]) + 1) % 32]
        with pytest.raises(ECardError):
            verify_token(token[:at] + other + token[at + 1:], LEDGER.verify_key, "P1", NOW_MS)


def test_the_layout_is_the_documented_one():
    token = token_at(NOW_MS)
    text = token[len(ecard.PREFIX):]
    raw = base64.b32decode(text + "=" * (-len(text) % 8))
    head = b"\x10P1-card-record-1" + b"\x02P1" + b"\x07E000001" + (1).to_bytes(4, "big")
    assert raw.startswith(head + PHONE.verify_key.encode() + ((NOW_MS + 365 * 86_400_000) // 1000).to_bytes(4, "big"))
    credential_end = len(head) + 32 + 4
    LEDGER.verify_key.verify(ecard.CREDENTIAL_DOMAIN + raw[:credential_end], raw[credential_end:credential_end + 64])
    shown_end = credential_end + 64 + 4
    assert int.from_bytes(raw[shown_end - 4:shown_end], "big") == NOW_MS // WINDOW_MS
    PHONE.verify_key.verify(ecard.PRESENTATION_DOMAIN + raw[:shown_end], raw[shown_end:])


def test_a_card_reference_carries_the_token_and_one_without_stays_byte_identical_to_before_the_field():
    from protocol import codec
    from protocol.messages import CardRef, Charge, REQUEST_TYPES, LineItem, parse

    token = token_at(NOW_MS)
    shown = verify_token(token, LEDGER.verify_key, "P1", NOW_MS)
    plastic = CardRef(no="T00042", issuance=1, uid="04a1b2c3")
    assert plastic.to_bytes() == b'{"issuance":1,"no":"T00042","uid":"04a1b2c3"}'  # as every till sent it
    sale = dict(park="P1", terminal="T-FISH-1", seq=7, terminal_time_ms=NOW_MS, clock_uncertain=False, operator="S1",
                config_version=1, amount_fen=3000, lines=(LineItem(item="鱼饵", qty=1, unit_fen=3000),),
                pin_sha256=None)
    old_body = Charge(**sale, card=plastic).to_bytes()
    assert b"ecard" not in old_body and parse(old_body, REQUEST_TYPES).card.ecard is None
    with_qr = Charge(**sale, card=CardRef(**shown.card_ref, ecard=token))
    assert len(with_qr.to_bytes()) < 8192 and parse(with_qr.to_bytes(), REQUEST_TYPES) == with_qr
    mismatched = codec.decode(with_qr.to_bytes())
    mismatched["card"]["no"] = "E000002"  # a token for one card, sent for another
    with pytest.raises(Exception) as caught:
        parse(codec.encode(mismatched), REQUEST_TYPES)
    assert caught.value.code == "VALUE_OUT_OF_RANGE"
