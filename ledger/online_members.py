"""Members online (issue 17): the member portal's way into the ledger, and the e-card QR's last checks.

The portal is a provisioned terminal of the park (its own key, ``member_open`` and ``loss_report``
allowed, operator ``portal``): it signs the same requests a front desk sends and hands them to the
ledger's intake, so opening an e-card and reporting a card lost go through the one decision path and
leave the same evidence (``ledger verify`` finds a request for every transaction). What a desk
would read from a card's chip, the portal takes from the e-card: its number, issuance 1, and as UID
the tag of the phone's device key (protocol.ecard.device_tag).

A scanned e-card QR is checked by the terminal offline (protocol.ecard.verify_token); the ledger
adds what only it knows: the device key registered for that card, and the last time window it
accepted, so a token shown once is refused when shown again.
"""

from dataclasses import dataclass
import hashlib

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey

from protocol import envelope, topics
from protocol.ecard import (Credential, ECardError, ECardFault, Presentation, device_tag, sign_credential,
                            verify_token)
from protocol.envelope import Purpose
from protocol.messages import REPLY_TYPES, CardRef, LossReport, MemberOpen, Result, parse
from protocol.pin import seal_pin

from .errors import LedgerError
from .keys import LedgerKeys
from .rules.ecards import ECARD_PREFIX, check_presentation
from .store import Store

# An e-card's credential is re-signed when the member opens the portal after it expires; a year
# keeps a lost phone's credential from living for ever while rarely bothering anyone.
CREDENTIAL_LIFETIME_MS = 365 * 86_400_000
PORTAL_OPERATOR = "portal"


class PortalRefused(LedgerError):
    """The ledger declined what the portal asked; ``code`` is the Result's reason."""

    code = "PORTAL_REFUSED"


@dataclass(frozen=True, slots=True)
class OpenedECard:
    card_no: str
    issuance: int
    credential: bytes  # signed; the phone keeps it and presents it (protocol.ecard.present)
    expires_ms: int


def accept_ecard_token(store: Store, keys: LedgerKeys, token: str, now_ms: int) -> Presentation:
    """Check a scanned e-card token and use up its window (call inside the batch that books the sale,
    so a refused sale leaves the window unused). Raises ECardError with an ECardFault code."""
    key = keys.for_purpose(Purpose.CARD_RECORD)
    presentation = verify_token(token, key.signing_key.verify_key, keys.park_id, now_ms)
    credential = presentation.credential
    check_presentation(presentation, store.ecard(credential.park, credential.card_no, credential.issuance))
    if not store.use_ecard_window(credential.park, credential.card_no, credential.issuance, presentation.window):
        raise ECardError(f"e-card window {presentation.window} was used already", code=ECardFault.REPLAYED)
    return presentation


class MemberDesk:
    """The portal as a terminal: signs member requests with its bundle's key and runs them through
    ``intake`` (ledger.intake.Intake, in the portal's process, over the park's database)."""

    def __init__(self, intake, bundle: dict, clock_ms):
        self.intake = intake
        self.park_id = bundle["park_id"]
        self.terminal_id = bundle["terminal_id"]
        self.key_id = bundle["key_id"]
        self.signing_key = SigningKey(bytes.fromhex(bundle["signing_seed"]))
        self.pin_key = PublicKey(bytes.fromhex(bundle["ledger_keys"]["pin"]["public_key"]))
        self.result_key = bytes.fromhex(bundle["ledger_keys"]["result"]["public_key"])
        self.clock_ms = clock_ms

    @property
    def store(self) -> Store:
        return self.intake.store

    def _send(self, message_type, card: CardRef, *, pin: str | None = None, **fields) -> Result:
        seq = self.store.highest_seq(self.terminal_id) + 1
        common = dict(park=self.park_id, terminal=self.terminal_id, seq=seq, terminal_time_ms=self.clock_ms(),
                      clock_uncertain=False, operator=PORTAL_OPERATOR, config_version=0, card=card)
        attachment = b""
        if pin is not None:
            attachment, fields["pin_sha256"] = seal_pin(pin, terminal=self.terminal_id, seq=seq,
                                                        ledger_pin_key=self.pin_key)
        topic = topics.request(self.park_id, self.terminal_id)
        payload = envelope.seal(message_type(**common, **fields).to_bytes(), signing_key=self.signing_key,
                                key_id=self.key_id, purpose=Purpose.REQUEST, topic=topic, attachment=attachment)
        (reply,) = self.intake.process([(topic, payload)])
        body = envelope.verify(envelope.split(reply.payload), verify_key=VerifyKey(self.result_key),
                               purpose=Purpose.RESULT, topic=reply.topic)
        result = parse(body, REPLY_TYPES)
        if result.request_sha256 != hashlib.sha256(payload).hexdigest() or not result.is_approved:
            raise PortalRefused(f"{message_type.TYPE}: {result.reason} {result.detail}".strip(), code=result.reason)
        return result

    def open_ecard(self, *, member_name: str, phone: str, pin: str, device_key: bytes) -> OpenedECard:
        """Open a member e-card for ``phone`` bound to the phone's ``device_key`` (Ed25519 public key,
        32 bytes): a ``member_open`` through the decision path, then the device registered and its
        credential signed, in one transaction. Raises PortalRefused with the ledger's reason."""
        if len(device_key) != 32:
            raise LedgerError("an e-card device key is 32 bytes", code="BAD_DEVICE_KEY")
        now_ms = self.clock_ms()
        expires_ms = (now_ms + CREDENTIAL_LIFETIME_MS) // 1000 * 1000
        # One transaction: the member_open's batch joins this one, so the card and its phone are
        # stored together or not at all (a card without its device would refuse every QR).
        with self.store.batch():
            card_no = self.store.next_ecard_no(self.park_id, ECARD_PREFIX)
            card = CardRef(no=card_no, issuance=1, uid=device_tag(device_key))
            self._send(MemberOpen, card, pin=pin, member_name=member_name, phone=phone, card_fee_fen=0,
                       opening_fen=0, channel="cash", payment_ref="")
            self.store.add_ecard(self.park_id, card_no, 1, device_key, now_ms, expires_ms)
        return OpenedECard(card_no, 1, self.credential(card_no, 1, device_key, expires_ms), expires_ms)

    def credential(self, card_no: str, issuance: int, device_key: bytes, expires_ms: int) -> bytes:
        key = self.intake.keys.for_purpose(Purpose.CARD_RECORD)
        return sign_credential(Credential(self.park_id, card_no, issuance, bytes(device_key), expires_ms, key.key_id),
                               key.signing_key)

    def report_lost(self, card_no: str, issuance: int, uid: str) -> Result:
        """挂失 from the portal: the desk's loss_report, so the card is blocked and the blocklist delta
        reaches every terminal the same way."""
        return self._send(LossReport, CardRef(no=card_no, issuance=issuance, uid=uid))


def change_member_pin(store: Store, keys: LedgerKeys, park_id: str, card_no: str, old_pin: str, new_pin: str) -> None:
    """The member changes their card's PIN, knowing the old one. Wrong tries count against the same
    limit as at a terminal (ledger.pins.MAX_WRONG_PINS); a locked PIN is unlocked at the desk.
    Raises LedgerError: BAD_PIN, UNKNOWN_CARD, PIN_LOCKED, WRONG_PIN (the try is counted)."""
    from protocol.errors import LocalProtocolError
    from protocol.pin import check_pin

    from .pins import hash_pin

    try:
        check_pin(new_pin)
    except LocalProtocolError:
        raise LedgerError("a PIN is 4 to 6 digits", code="BAD_PIN") from None

    def work():
        _check_member_pin(store, keys, park_id, card_no, old_pin, wrong_text="the old PIN is wrong")
        store.set_member_pin(park_id, card_no, hash_pin(new_pin, keys.pin_pepper))
    _keeping_wrong_tries(store, work)


def _check_member_pin(store: Store, keys: LedgerKeys, park_id: str, card_no: str, pin: str, *,
                      wrong_text: str = "the PIN is wrong") -> None:
    """The member PIN of ``card_no`` (inside a batch): wrong tries count against the same limit as at
    a terminal and are kept whatever the caller does next. LedgerError UNKNOWN_CARD, PIN_LOCKED,
    WRONG_PIN."""
    from .pins import MAX_WRONG_PINS, pin_matches

    member = store.member(park_id, card_no)
    if member is None:
        raise LedgerError(f"card {card_no} is not a member card", code="UNKNOWN_CARD")
    if member.wrong_pins >= MAX_WRONG_PINS:
        raise LedgerError("the PIN is locked: the front desk unlocks it", code="PIN_LOCKED")
    if not pin_matches(pin, member.pin_hash, keys.pin_pepper):
        store.set_member_wrong_pins(park_id, card_no, member.wrong_pins + 1)
        raise _WrongPin(wrong_text, code="WRONG_PIN")
    if member.wrong_pins:
        store.set_member_wrong_pins(park_id, card_no, 0)


class _WrongPin(LedgerError):
    """A wrong PIN: its counted try must be kept, so it leaves the batch after the commit."""


def _keeping_wrong_tries(store: Store, work):
    """Run ``work`` in a batch; a wrong PIN's counted try is committed before its error is raised."""
    wrong = None
    with store.batch():
        try:
            return work()
        except _WrongPin as error:
            wrong = error
    raise LedgerError(wrong.args[0], code=wrong.code)


def bind_card(store: Store, keys: LedgerKeys, park_id: str, ecard_no: str, card_no: str, pin: str, now_ms: int) -> None:
    """Bind the physical member card ``card_no`` to the e-card ``ecard_no``, proved by that card's
    PIN: the member then sees it with the e-card (balance, history) and reports it lost from the
    phone. LedgerError: UNKNOWN_CARD (no active physical member card), CARD_BLOCKED, ALREADY_BOUND,
    PIN_LOCKED, WRONG_PIN (the try is counted)."""
    def work():
        if store.ecard(park_id, ecard_no, 1) is None:
            raise LedgerError(f"{ecard_no} is not an e-card", code="UNKNOWN_CARD")
        card = store.card(park_id, card_no)
        if card is None or card.kind != "member" or store.ecard(park_id, card_no, card.issuance) is not None:
            raise LedgerError(f"{card_no} is not a physical member card", code="UNKNOWN_CARD")
        if card.state != "active":
            raise LedgerError(f"{card_no} is {card.state}", code="CARD_BLOCKED")
        bound = store.db.execute("SELECT ecard_no FROM ecard_binding WHERE park_id=? AND card_no=?",
                                 (park_id, card_no)).fetchone()
        if bound is not None:
            raise LedgerError(f"{card_no} is bound to {bound[0]} already", code="ALREADY_BOUND")
        _check_member_pin(store, keys, park_id, card_no, pin)
        store.db.execute("INSERT INTO ecard_binding (park_id, card_no, ecard_no, bound_ms) VALUES (?, ?, ?, ?)",
                         (park_id, card_no, ecard_no, now_ms))
    _keeping_wrong_tries(store, work)


def unbind_card(store: Store, park_id: str, ecard_no: str, card_no: str) -> bool:
    """Undo a binding (the card itself is untouched); False when it was not bound to ``ecard_no``."""
    with store.batch():
        return store.db.execute("DELETE FROM ecard_binding WHERE park_id=? AND card_no=? AND ecard_no=?",
                                (park_id, card_no, ecard_no)).rowcount == 1


def bound_cards(store: Store, park_id: str, ecard_nos) -> dict[str, str]:
    """{physical card: the e-card it is bound to} for the e-cards ``ecard_nos``."""
    numbers = list(ecard_nos)
    if not numbers:
        return {}
    return dict(store.db.execute(
        f"SELECT card_no, ecard_no FROM ecard_binding WHERE park_id=? AND ecard_no IN ({', '.join('?' * len(numbers))}) "
        "ORDER BY card_no", (park_id, *numbers)).fetchall())


def move_ecard(desk: MemberDesk, card_no: str, new_device_key: bytes, pin: str) -> OpenedECard:
    """Move the e-card to a new phone (after the member logged in there with a phone code), proved
    by its PIN: the new device key is registered and the card's UID becomes its tag, so every QR the
    old phone shows is refused ECARD_WRONG_DEVICE from now on. Returns the new credential.
    LedgerError: BAD_DEVICE_KEY, UNKNOWN_CARD, PIN_LOCKED, WRONG_PIN (the try is counted)."""
    store, park_id = desk.store, desk.park_id
    if len(new_device_key) != 32:
        raise LedgerError("an e-card device key is 32 bytes", code="BAD_DEVICE_KEY")
    now_ms = desk.clock_ms()
    expires_ms = (now_ms + CREDENTIAL_LIFETIME_MS) // 1000 * 1000

    def work():
        if store.ecard(park_id, card_no, 1) is None:
            raise LedgerError(f"{card_no} is not an e-card", code="UNKNOWN_CARD")
        _check_member_pin(store, desk.intake.keys, park_id, card_no, pin)
        store.db.execute("UPDATE ecard SET device_key=?, opened_ms=?, expires_ms=? WHERE park_id=? AND card_no=? "
                         "AND issuance=1", (bytes(new_device_key), now_ms, expires_ms, park_id, card_no))
        # The card's UID is the device tag (PROTOCOL.md §5.8): the new phone's from now on.
        store.db.execute("UPDATE card SET uid=? WHERE park_id=? AND card_no=? AND issuance=1",
                         (device_tag(new_device_key), park_id, card_no))
        store.record_alert(now_ms, "ECARD_MOVED", f"e-card {card_no} moved to a new phone (device {device_tag(new_device_key)})")
    _keeping_wrong_tries(store, work)
    return OpenedECard(card_no, 1, desk.credential(card_no, 1, new_device_key, expires_ms), expires_ms)
