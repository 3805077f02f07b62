"""Drive the ledger's intake directly (the code the MQTT loop calls), signing what terminals would."""

from contextlib import contextmanager
import hashlib

from host_sim.rig import ParkRig, card, common, single_line
from ledger.intake import Intake
from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.messages import REPLY_TYPES, CardIssue, Charge, parse

VISITOR = card("C00042")


class Ledger:
    """The ledger's intake over a real SQLite file, with helpers to sign what a terminal would."""

    def __init__(self, rig: ParkRig):
        self.rig = rig
        self.intake = Intake(rig.home.open_store(), rig.home.ledger_keys(), clock_ms=lambda: 1_780_000_000_000)
        self.store = self.intake.store
        self.result_key = rig.home.ledger_keys().for_purpose(Purpose.RESULT).signing_key.verify_key
        self.seqs = {}

    def sign(self, terminal_id, body: bytes, *, topic=None, key=None, key_id=None, purpose=Purpose.REQUEST):
        identity = self.rig.identity(terminal_id)
        topic = topic or topics.request(identity.park_id, terminal_id)
        return topic, envelope.seal(body, signing_key=key or identity.signing_key, key_id=key_id or identity.key_id,
                                    purpose=purpose, topic=topic)

    def send(self, topic, payload):
        """Process one message; return the verified reply (Result)."""
        (reply,) = self.intake.process([(topic, payload)])
        body = envelope.verify(envelope.split(reply.payload), verify_key=self.result_key, purpose=Purpose.RESULT, topic=reply.topic)
        result = parse(body, REPLY_TYPES)
        assert result.request_sha256 == hashlib.sha256(payload).hexdigest()
        return result

    def fields(self, terminal_id, card_ref=VISITOR):
        seq = self.seqs[terminal_id] = self.seqs.get(terminal_id, 0) + 1
        fields = common(self.rig.link(terminal_id, connect=False), seq, card_ref)
        fields["terminal_time_ms"] = 1_780_000_000_000
        return fields

    def request(self, terminal_id, message_type, *, card_ref=VISITOR, operator=None, **extra):
        fields = self.fields(terminal_id, card_ref)
        fields["operator"] = operator or fields["operator"]
        return self.send(*self.sign(terminal_id, message_type(**fields, **extra).to_bytes()))

    def issue(self, opening_fen=10000, card_ref=VISITOR):
        fields = self.fields("T-DESK-1", card_ref)
        return self.send(*self.sign("T-DESK-1", CardIssue(**fields, card_kind="temporary", card_fee_fen=2000,
                                                          opening_fen=opening_fen, channel="cash", payment_ref="").to_bytes()))

    def charge_body(self, amount_fen=3000, card_ref=VISITOR, terminal_id="T-FISH-1") -> dict:
        message = Charge(**self.fields(terminal_id, card_ref), amount_fen=amount_fen, lines=single_line("鱼饵", amount_fen))
        return message.to_obj()

    def postings(self) -> int:
        return self.store.db.execute("SELECT COUNT(*) FROM posting").fetchone()[0]




@contextmanager
def open_ledger(tmp_path, terminals):
    """A park's ledger intake over a real SQLite file in ``tmp_path``, closed afterwards."""
    rig = ParkRig(tmp_path).create(terminals)
    ledger = Ledger(rig)
    try:
        yield ledger
    finally:
        rig.close()
        ledger.store.close()
