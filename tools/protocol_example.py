"""The worked example in docs/PROTOCOL.md, generated from fixed keys so anyone can check it.

Run ``python -m tools.protocol_example`` to print it; a test checks the document still matches.
"""

import hashlib
from pathlib import Path

from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey

from protocol import envelope, topics
from protocol.card_record import CardRecord, sector_key, sign_record
from protocol.envelope import Purpose
from protocol.messages import (Balances, CardRef, Charge, DamageFee, LineItem, MenuItem, OfflinePolicy, ParkRules,
                               PrinterState, RentalItem, RentalStock, RentalType, Result, StaffEntry, StationSettings,
                               TerminalConfig, TerminalStatus)
from protocol.pin import seal_pin
from protocol.ecard import Credential, present, sign_credential, verify_token
from protocol.voucher import DOMAIN as VOUCHER_DOMAIN, Voucher, make_voucher, parse_voucher, verify_voucher

TERMINAL_SEED = bytes(range(32))                # never use a key like this outside an example
LEDGER_SEED = bytes(range(32, 64))
CARD_RECORD_SEED = bytes(range(64, 96))
CARD_KEY_MASTER = bytes(range(96, 128))
PIN_KEY_SEED = bytes(range(128, 160))
VOUCHER_SEED = bytes(range(160, 192))
PHONE_SEED = bytes(range(192, 224))


def example() -> dict[str, str]:
    terminal_key, ledger_key = SigningKey(TERMINAL_SEED), SigningKey(LEDGER_SEED)
    request_topic, result_topic = topics.request("P1", "T-FISH-1"), topics.result("P1", "T-FISH-1")
    charge = Charge(
        park="P1", terminal="T-FISH-1", seq=42, terminal_time_ms=1_780_000_000_000, clock_uncertain=False,
        operator="op-7", config_version=3, card=CardRef(no="C00001", issuance=1, uid="04a1b2c3"),
        amount_fen=3000, lines=(LineItem(item="钓鱼 1h", qty=1, unit_fen=3000),),
    )
    request = envelope.seal(charge.to_bytes(), signing_key=terminal_key, key_id="T-FISH-1-k1",
                            purpose=Purpose.REQUEST, topic=request_topic)
    result_body = Result(
        park="P1", terminal="T-FISH-1", seq=42, request_sha256=hashlib.sha256(request).hexdigest(),
        outcome="approved", reason="OK", balances=Balances(fen=7000, bonus=0, points=0), txn=1001,
        ledger_time_ms=1_780_000_000_123, detail="", amount_fen=3000,
    ).to_bytes()
    result = envelope.seal(result_body, signing_key=ledger_key, key_id="P1-result-1", purpose=Purpose.RESULT,
                           topic=result_topic)
    header_length = 5 + len("T-FISH-1-k1")
    return {
        "terminal public key": terminal_key.verify_key.encode().hex(),
        "ledger result public key": ledger_key.verify_key.encode().hex(),
        "request topic": request_topic,
        "request body": charge.to_bytes().decode(),
        "request header": request[:header_length].hex(),
        "request signature": request[header_length : header_length + 64].hex(),
        "attachment length": request[header_length + 64 : header_length + 66].hex(),
        "signed bytes (hex)": envelope.signed_bytes(Purpose.REQUEST, request_topic, request[:header_length],
                                                    charge.to_bytes()).hex(),
        "request payload (hex)": request.hex(),
        "request sha256": hashlib.sha256(request).hexdigest(),
        "result topic": result_topic,
        "result body": result_body.decode(),
        "result payload (hex)": result.hex(),
    } | card_record_example() | pin_block_example() | config_example() | voucher_example() | ecard_example() \
      | status_example()


def card_record_example() -> dict[str, str]:
    """The record a desk writes on the temporary card C00001 (issuance 1, UID 04a1b2c3) in park P1."""
    record_key, uid = SigningKey(CARD_RECORD_SEED), bytes.fromhex("04a1b2c3")
    record = CardRecord(card_no="C00001", issuance=1, kind="temporary", park_id="P1")
    signed = sign_record(record, uid, record_key)
    # Built here from the documented layout, not taken from the code: if the code signs anything
    # else, this verification fails and the document cannot silently describe the wrong bytes.
    signed_bytes = envelope.DOMAIN + Purpose.CARD_RECORD.value.encode() + b"\x00" + uid + signed[:32]
    record_key.verify_key.verify(signed_bytes, signed[32:])
    return {
        "ledger card-record public key": record_key.verify_key.encode().hex(),
        "card record signed bytes (hex)": signed_bytes.hex(),
        "card record, 96 bytes (hex)": signed.hex(),
        "card key master": CARD_KEY_MASTER.hex(),
        "sector key A for UID 04a1b2c3": sector_key(CARD_KEY_MASTER, uid).hex(),
    }


def pin_block_example() -> dict[str, str]:
    """What a void's sealed block holds when only the supervisor's PIN (1234) is needed. Sealing is
    randomised (an ephemeral key each time), so the plaintext is shown, opened with the PIN key."""
    pin_key = PrivateKey(PIN_KEY_SEED)
    attachment, _ = seal_pin(None, terminal="T-FISH-1", seq=43, ledger_pin_key=pin_key.public_key,
                             supervisor_pin="1234")
    return {
        "ledger PIN public key (X25519)": pin_key.public_key.encode().hex(),
        "void PIN block before sealing (terminal T-FISH-1, seq 43)": SealedBox(pin_key).decrypt(attachment).decode(),
        "the sealed block's length in bytes (48 + the plaintext's)": str(len(attachment)),
    }


def config_example() -> dict[str, str]:
    """The body of T-FISH-1's signed config (section 6.1): the fishing pond sells from a two-item menu
    from 08:00 to 18:00, and two staff members may log in."""
    config = TerminalConfig(
        park="P1", terminal="T-FISH-1", version=7, issued_ms=1_780_000_000_000,
        offline=OfflinePolicy(max_transaction_fen=20_000, max_card_fen=30_000, max_terminal_fen=2_000_000, max_count=500,
                              max_offline_ms=86_400_000, max_reboots=3, blocklist_max_age_ms=86_400_000,
                              allowed_modes="fixed,count,menu,free"),
        rules=ParkRules(no_pin_limit_fen=20_000, card_fee_fen=2000, damage_fee_fen=1000),
        station=StationSettings(name="钓鱼 Fishing pond", mode="menu", opens="08:00", closes="18:00", menu=(
            MenuItem(item="rod-1h", name="钓鱼1小时 Fishing 1h", price_fen=3000),
            MenuItem(item="bait", name="鱼饵 Bait", price_fen=500))),
        staff=(StaffEntry(staff="wang", name="王芳 Wang Fang", role="cashier", card_no="S0001"),
               StaffEntry(staff="zhao", name="赵强 Zhao Qiang", role="supervisor", card_no="S0003")),
    )
    return {"config body (T-FISH-1, version 7)": config.to_bytes().decode()} | rental_config_example()


def rental_config_example() -> dict[str, str]:
    """The rental part of a rod desk's config (section 6.1): rods for 30.00 deposit, 10.00 a
    session of 2 hours, 15 minutes' grace, 5.00 late fee per started hour, two items."""
    stock = RentalStock(
        item_types=(RentalType(item_type="rod", name="鱼竿 Fishing rod", deposit_fen=3000, price_fen=1000,
                               price_per="session", allowed_minutes=120, grace_minutes=15, late_fee_per_hour_fen=500,
                               lost_fee_fen=8000, damage=(DamageFee(code="reel", name="渔轮 Reel", fee_fen=2000),)),),
        items=(RentalItem(label="ROD-001", item_type="rod", state="available"),
               RentalItem(label="ROD-002", item_type="rod", state="in_repair")),
    )
    return {"rental part of the config (T-RENT-1)": stock.to_bytes().decode()}


def voucher_example() -> dict[str, str]:
    """The voucher of order D17 (a rod) in park P1, valid until 2026-05-29 04:26:40 UTC (section 5.7)."""
    key = SigningKey(VOUCHER_SEED)
    token = make_voucher(Voucher(park="P1", order="D17", item_type="rod", expires_ms=1_780_028_800_000,
                                 key_id="P1-voucher-1"), key)
    _, signed, signature = parse_voucher(token)
    # Checked against the documented layout, not only by the code that made it.
    expected = bytes((12,)) + b"P1-voucher-1" + bytes((2,)) + b"P1" + bytes((3,)) + b"D17" + bytes((3,)) + b"rod"
    assert signed == expected + (1_780_028_800).to_bytes(4, "big")
    key.verify_key.verify(VOUCHER_DOMAIN + signed, signature)
    verify_voucher(token, key.verify_key, 1_780_000_000_000)
    return {
        "ledger voucher public key": key.verify_key.encode().hex(),
        "voucher signed bytes (hex, after the domain)": signed.hex(),
        "voucher token": token,
    }


def ecard_example() -> dict[str, str]:
    """E-card E000001 of park P1 on the phone whose device key comes from PHONE_SEED, shown at
    1780000000 s (window 89000000), and the card reference a Charge carries for it, the token included (section 5.8)."""
    ledger_key, phone = SigningKey(CARD_RECORD_SEED), SigningKey(PHONE_SEED)
    credential = Credential(park="P1", card_no="E000001", issuance=1, device_key=phone.verify_key.encode(),
                            expires_ms=1_811_536_000_000, key_id="P1-card-record-1")
    token = present(sign_credential(credential, ledger_key), phone, 1_780_000_000_000)
    shown = verify_token(token, ledger_key.verify_key, "P1", 1_780_000_000_000)
    card = CardRef(**shown.card_ref, ecard=token)  # the scanned token travels in the card reference
    return {
        "e-card device public key": phone.verify_key.encode().hex(),
        "e-card QR token": token,
        "e-card card reference in a charge": card.to_bytes().decode(),
    }


def status_example() -> dict[str, str]:
    """T-FISH-1's heartbeat (section 6.2): online, seq 42 its highest, nothing queued, its printer's
    paper near its end, software 0.1.0 — the two fields added within version 1 included."""
    terminal_key, topic = SigningKey(TERMINAL_SEED), topics.status("P1", "T-FISH-1")
    body = TerminalStatus(park="P1", terminal="T-FISH-1", is_online=True, highest_seq=42, queue_depth=0,
                          oldest_queued_ms=None, time_ms=1_780_000_000_500, printer=PrinterState.PAPER_NEAR_END.value,
                          software_version="0.1.0").to_bytes()
    payload = envelope.seal(body, signing_key=terminal_key, key_id="T-FISH-1-k1", purpose=Purpose.STATUS, topic=topic)
    return {"status topic": topic, "status body": body.decode(), "status payload (hex)": payload.hex()}


def as_markdown() -> str:
    lines = []
    for name, value in example().items():
        lines.append(f"{name}:\n\n```\n{value}\n```\n")
    return "\n".join(lines)


MARKER = "<!-- generated below -->\n"


def write_into(document_path) -> None:
    from pathlib import Path

    path = Path(document_path)
    text = path.read_text()
    path.write_text(text[: text.index(MARKER) + len(MARKER)] + "\n" + as_markdown())


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        write_into(Path(__file__).resolve().parent.parent / "docs" / "PROTOCOL.md")
    else:
        print(as_markdown())
