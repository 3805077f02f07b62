"""The member's e-card at a station or desk: its rotating QR, read by the 2D scanner, is a card tap.

The QR is ``protocol.ecard``'s token. The terminal checks it as it checks a card's signed record:
with the ledger's card-record key from its bundle (both signatures, its own park, the credential's
expiry, the 20-second window against the ledger-trusted clock). A good token becomes the tap of a
member card whose UID is the phone's device tag, so the sale, its PIN rules and the offline policy
are a member card's. The token itself travels with every request about that card (``card.ecard``):
the ledger checks it again and adds what only it knows — the phone registered for the card, and the
windows already used (PROTOCOL.md §5.8).

A scan that is no e-card token means nothing at a till (a rental desk's machine reads vouchers and
labels itself); a token that does not verify is a tap of a card not accepted, with the reason.
"""

from collections import OrderedDict
import logging

from protocol.card_record import CardRecord
from protocol.ecard import PREFIX, ECardError, verify_token
from protocol.kinds import KINDS
from protocol.messages import CardKind, CardRef

from .events import CardTapped

log = logging.getLogger("fieldpos.terminal.ecard")

# The e-cards scanned lately whose token a request may still name (the sale in hand, a balance
# asked, an offline sale queued). A token lives 40 s at most: a few cards are plenty.
KEEP_TOKENS = 8
_FAULT_TEXT = {
    "ECARD_INVALID": "电子卡无效 E-card QR not valid",
    "ECARD_EXPIRED": "电子卡已过期 E-card expired — reopen it on the phone",
    "ECARD_STALE": "二维码已过期 QR too old — show the live code",
}


class ECardScans:
    """Turns scanned e-card QRs into card taps and remembers each token for the requests it names."""

    def __init__(self, record_key, park_id: str, state, clock):
        self.record_key = record_key  # nacl VerifyKey: the ledger's card-record key from the bundle
        self.park_id = park_id
        self.state = state            # the link's state: the blocklist and the ledger-trusted time
        self.clock = clock            # the board's clock, when the ledger's time is not known yet
        self._tokens: OrderedDict[tuple, str] = OrderedDict()

    def tap_of(self, text: str, now_ms: int | None) -> CardTapped | None:
        """The card tap an e-card token makes, or None when ``text`` is no e-card token."""
        if not text.startswith(PREFIX):
            return None
        try:
            shown = verify_token(text, self.record_key, self.park_id, now_ms if now_ms is not None else
                                 self.clock.now_ms())
        except ECardError as error:
            log.info("e-card QR refused: %s", error)
            return CardTapped("", None, _FAULT_TEXT.get(error.code, _FAULT_TEXT["ECARD_INVALID"]))
        credential = shown.credential
        record = CardRecord(credential.card_no, credential.issuance, CardKind.MEMBER.value, credential.park)
        key = (credential.card_no, credential.issuance, credential.device_tag)
        self._tokens[key] = text
        self._tokens.move_to_end(key)
        while len(self._tokens) > KEEP_TOKENS:
            self._tokens.popitem(last=False)
        is_blocked = (credential.card_no, credential.issuance) in self.state.blocklist.blocked
        return CardTapped(credential.device_tag, record, is_blocked=is_blocked)

    def card_ref(self, record: CardRecord, uid_hex: str, request_type: str) -> CardRef:
        """The request's ``card``: with the token when the card was an e-card's QR scanned here and
        the request is one where a card is shown (protocol.kinds: takes_ecard; a loss report names
        the card by number alone, and the ledger refuses a token there)."""
        key = (record.card_no, record.issuance, uid_hex)
        token = self._tokens.get(key) if KINDS[request_type].takes_ecard else None
        return CardRef(no=record.card_no, issuance=record.issuance, uid=uid_hex, ecard=token)
