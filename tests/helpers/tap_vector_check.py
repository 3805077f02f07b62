# Runs the tap's protocol subset over VECTORS_JSON (tests/helpers/tap_vectors.py puts it above this
# text) and prints one line per disagreement, then "checked N, failed M". MicroPython-safe.
import json

from tap import blocklists, canonical, card, configs, ed25519, envelope, messages, sha512
from tap.errors import TapError

VECTORS = json.loads(VECTORS_JSON)
failures = []
checked = 0


def outcome_of(call):
    try:
        return ["ok", call()]
    except TapError as error:
        return ["err", error.code]


def expect(name, got, want):
    global checked
    checked += 1
    if got != want:
        failures.append(name + ": got " + repr(got)[:160] + " want " + repr(want)[:160])


for i, case in enumerate(VECTORS["encode"]):
    expect("encode " + str(i), canonical.encode(case["obj"]).hex(), case["bytes"])

for i, case in enumerate(VECTORS["decode"]):
    expect("decode " + case["body"][:60], outcome_of(lambda: canonical.decode(bytes.fromhex(case["body"]))), case["outcome"])

for case in VECTORS["sha512"]:
    expect("sha512 " + str(len(case["data"])), sha512.digest(bytes.fromhex(case["data"])).hex(), case["digest"])

for case in VECTORS["sign"]:
    key = ed25519.SigningKey(bytes.fromhex(case["seed"]))
    message = bytes.fromhex(case["message"])
    expect("public key", key.public_key.hex(), case["public_key"])
    signature = key.sign(message)
    expect("signature", signature.hex(), case["signature"])
    verify_key = ed25519.VerifyKey(key.public_key)
    expect("verify", outcome_of(lambda: verify_key.verify(message, signature)), ["ok", None])
    forged = bytes(signature[:5]) + bytes((signature[5] ^ 1,)) + bytes(signature[6:])
    try:
        verify_key.verify(message, forged)
        expect("forged signature refused", "accepted", "refused")
    except ed25519.BadSignature:
        expect("forged signature refused", "refused", "refused")

for i, case in enumerate(VECTORS["replies"]):
    specs = {}
    specs.update(messages.REPLIES)
    specs.update(configs.BROADCASTS)
    specs.update(blocklists.BROADCASTS)
    parts = dict(configs.PARTS)
    parts.update(blocklists.PARTS)
    expect("reply " + case["body"][:80],
           outcome_of(lambda: messages.parse(bytes.fromhex(case["body"]), specs, parts)), case["outcome"])

request_key = ed25519.VerifyKey(ed25519.SigningKey(bytes(range(32))).public_key)
for case in VECTORS["envelopes"]:
    payload = bytes.fromhex(case["payload"])
    try:
        parts = envelope.split(payload)
    except TapError as error:
        expect("split " + case["payload"][:40], error.code, case["split"])
        continue
    expect("split " + case["payload"][:40], None, case["split"])
    expect("key id", parts.key_id, case["key_id"])
    expect("body", bytes(parts.body).hex(), case["body"])
    expect("sha256", parts.sha256(), case["sha256"])
    if "public_key" in case:
        key, purpose, topic = ed25519.VerifyKey(bytes.fromhex(case["public_key"])), case["purpose"], case["topic"]
    else:
        key, purpose, topic = request_key, envelope.REQUEST, "fieldpos/v1/P1/t/TAP-1/req"
    got = outcome_of(lambda: envelope.verify(parts, key, purpose, topic))
    expect("verify " + case["payload"][:40], got[1] if got[0] == "err" else None, case["verify"])

cards = VECTORS["cards"]
card_key = ed25519.VerifyKey(bytes.fromhex(cards["public_key"]))
for case in cards["records"]:
    uid = bytes.fromhex(case["uid"])
    expect("sector key", card.sector_key(bytes.fromhex(cards["master"]), uid).hex(), case["sector_key"])
    got = outcome_of(lambda: card.read_record(bytes.fromhex(case["data"]), uid, card_key, case["park"]).card_ref())
    want = ["ok", {"no": "C00001", "issuance": 3, "uid": case["uid"]}] if (
        case["park"] == "P1" and len(case["data"]) == 192 and case["data"][80:82] != "00" and case["data"][6:8] == "01"
    ) else ["err", "CARD_RECORD_INVALID"]
    expect("card record " + case["data"][:12] + " " + case["park"], got, want)

# The worked example of docs/PROTOCOL.md §11, built by the tap: the same bytes.
example = VECTORS["example"]
body = messages.build(messages.CHARGE, messages.charge_fields(
    "P1", "T-FISH-1", 42, 1780000000000, False, "op-7", 3, {"issuance": 1, "no": "C00001", "uid": "04a1b2c3"},
    3000, "钓鱼 1h"))
payload = envelope.seal(body, ed25519.SigningKey(bytes.fromhex(example["seed"])), "T-FISH-1-k1", envelope.REQUEST,
                        "fieldpos/v1/P1/t/T-FISH-1/req")
expect("worked example request", payload.hex(), example["payload"])
result = envelope.split(bytes.fromhex(example["result"]))
opened = envelope.verify(result, ed25519.VerifyKey(bytes.fromhex(example["ledger_key"])), envelope.RESULT,
                         "fieldpos/v1/P1/t/T-FISH-1/res")
expect("worked example result", messages.parse(opened, messages.REPLIES)["request_sha256"], envelope.sha256_hex(payload))

for line in failures[:40]:
    print("FAIL", line)
print("ed25519", "native" if ed25519.NATIVE else "python")
print("checked", checked, "failed", len(failures))
