"""What checking an e-card QR costs, beside its floor measured in the same run.

    .venv/bin/python bench/ecard_check.py [--rounds N]

- ``verify_token``: what a till does when its scanner reads a pay code (parse the base32 token,
  verify the ledger's and the phone's Ed25519 signatures, park, expiry, window). Its floor is two
  bare Ed25519 verifies (PyNaCl) of messages of the same size: the rest is the token's own work.
- the ledger's charge on an e-card through ``Intake.process`` (a real SQLite file, one request per
  batch, a fresh QR window for each), beside the same charge on a plastic member card: the
  difference is what the e-card's checks and the used window add to the decision path.

Medians of ``--rounds`` runs are printed in microseconds, with the spread (p10-p90).
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from protocol import ecard  # noqa: E402

NOW_MS = 1_780_000_000_000


def _spread(samples_us):
    ordered = sorted(samples_us)
    return (statistics.median(ordered), ordered[len(ordered) // 10], ordered[len(ordered) * 9 // 10])


def _print(name, samples_us, floor=None):
    median, low, high = _spread(samples_us)
    line = f"{name:<44} p50 {median:8.1f} µs  (p10 {low:.1f}, p90 {high:.1f})"
    if floor is not None:
        line += f"   floor {floor:.1f} µs, x{median / floor:.2f}"
    print(line)


def bench_token(rounds: int) -> None:
    ledger, phone = SigningKey(bytes(range(64, 96))), SigningKey(bytes(range(200, 232)))
    credential = ecard.Credential(park="P1", card_no="E000001", issuance=1, device_key=phone.verify_key.encode(),
                                  expires_ms=NOW_MS + 86_400_000, key_id="P1-card-record-1")
    signed = ecard.sign_credential(credential, ledger)
    token = ecard.present(signed, phone, NOW_MS)
    _, _, credential_bytes, ledger_signature, shown, device_signature = ecard.parse_token(token)
    ledger_key, phone_key = ledger.verify_key, phone.verify_key
    floors, checks = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        ledger_key.verify(ecard.CREDENTIAL_DOMAIN + credential_bytes, ledger_signature)
        phone_key.verify(ecard.PRESENTATION_DOMAIN + shown, device_signature)
        floors.append((time.perf_counter() - start) * 1e6)
        start = time.perf_counter()
        ecard.verify_token(token, ledger_key, "P1", NOW_MS)
        checks.append((time.perf_counter() - start) * 1e6)
    floor = statistics.median(floors)
    _print("two bare Ed25519 verifies (floor)", floors)
    _print("verify_token (a till reads a pay code)", checks, floor)


def bench_ledger(rounds: int) -> None:
    from host_sim.rig import ParkRig, common, single_line
    from ledger.intake import Intake
    from ledger.online_members import MemberDesk
    from protocol import envelope, topics
    from protocol.envelope import Purpose
    from protocol.messages import REPLY_TYPES, CardRef, Charge, MemberOpen, TopUp, parse

    class Ledger:
        """The ledger's intake over the park's SQLite file, and terminals' signing (bench/ may not
        import tests/: this is the few lines of its intake driver a bench needs)."""

        def __init__(self, rig):
            self.rig = rig
            self.intake = Intake(rig.home.open_store(), rig.home.ledger_keys())
            self.store = self.intake.store
            self.seqs = {}

        def fields(self, terminal_id, card_ref):
            seq = self.seqs[terminal_id] = self.seqs.get(terminal_id, 0) + 1
            return common(self.rig.link(terminal_id, connect=False), seq, card_ref)

        def sign(self, terminal_id, body):
            identity = self.rig.identity(terminal_id)
            topic = topics.request(identity.park_id, terminal_id)
            return topic, envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id,
                                        purpose=Purpose.REQUEST, topic=topic)

        def send(self, topic, payload):
            (reply,) = self.intake.process([(topic, payload)])
            return parse(envelope.split(reply.payload).body, REPLY_TYPES)

        def request(self, terminal_id, message_type, *, card_ref, **extra):
            return self.send(*self.sign(terminal_id, message_type(**self.fields(terminal_id, card_ref),
                                                                   **extra).to_bytes()))

    phone = SigningKey(bytes(range(200, 232)))
    with tempfile.TemporaryDirectory() as folder:
        rig = ParkRig(Path(folder)).create({"T-DESK-1": "desk", "T-FISH-1": "fishing", "P1-portal": "desk"},
                                           kinds_by_terminal={"P1-portal": ("member_open", "loss_report")})
        now = [NOW_MS]
        ledger = Ledger(rig)
        ledger.intake.clock_ms = lambda: now[0]
        store = ledger.store
        store.set_member_settings("P1", no_pin_limit_fen=10_000_000)  # no PIN asked: the card checks alone
        portal = MemberDesk(Intake(store, rig.home.ledger_keys(), clock_ms=lambda: now[0]),
                            json.loads(rig.home.bundle_path("P1-portal").read_text()), lambda: now[0])
        opened = portal.open_ecard(member_name="张伟", phone="13800138000", pin="246810",
                                   device_key=phone.verify_key.encode())
        plastic = CardRef(no="M00077", issuance=1, uid="04a1b2c3")
        portal._send(MemberOpen, plastic, pin="1357", member_name="张伟", phone="13800138000", card_fee_fen=0,
                     opening_fen=0, channel="cash", payment_ref="")

        def qr() -> CardRef:
            now[0] += ecard.WINDOW_SECONDS * 1000  # each sale a new window: the last one is used
            token = ecard.present(opened.credential, phone, now[0])
            return CardRef(no=opened.card_no, issuance=1, uid=ecard.device_tag(phone.verify_key.encode()), ecard=token)

        for card in (qr(), plastic):
            assert ledger.request("T-DESK-1", TopUp, card_ref=card, amount_fen=100_000, channel="cash",
                                  payment_ref="").is_approved
        times = {"plastic": [], "ecard": []}
        for _ in range(rounds):
            for name, card in (("plastic", plastic), ("ecard", qr())):
                fields = ledger.fields("T-FISH-1", card)
                payload = ledger.sign("T-FISH-1", Charge(**fields, amount_fen=100, lines=single_line("鱼饵", 100),
                                                         pin_sha256=None).to_bytes())
                start = time.perf_counter()
                result = ledger.send(*payload)
                times[name].append((time.perf_counter() - start) * 1e6)
                assert result.is_approved, result
        floor = statistics.median(times["plastic"])
        _print("a charge on a plastic member card (floor)", times["plastic"])
        _print("a charge on an e-card by its QR", times["ecard"], floor)
        rig.close()
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500, help="runs per figure (default 500)")
    args = parser.parse_args()
    if args.rounds < 10:
        parser.error("--rounds must be at least 10")
    bench_token(args.rounds)
    bench_ledger(min(args.rounds, 300))
    return 0


if __name__ == "__main__":
    sys.exit(main())
