"""Set-aside is never silent loss and never final: a held message is listed, answered SET_ASIDE (the
till keeps it pending), re-applied by an operator's retry, and its seq stays in ``ledger verify``'s
unfinished list until then. Refusal evidence stays bounded however much a terminal sends."""

import hashlib

import pytest

from host_sim.rig import card, common, single_line
from ledger.store import MAX_REFUSALS_PER_MINUTE, REFUSAL_SAMPLE_CAP, REFUSAL_SAMPLE_PER_REASON
from ledger.verify import unfinished_seqs, verify_books
from protocol import envelope, topics
from protocol.envelope import Purpose
from protocol.messages import CardIssue, Charge, OfflineCharge, TopUp
from protocol.pin import seal_pin
from terminal.net import NoResultError
from tools.cli import VERIFY_UNFINISHED_EXIT, main



def cli(home, *words):
    return main(["--home", str(home), "ledger", *words])


def set_aside(store, topic, payload, detail, now_ms=1_780_000_000_000):
    with store.batch():
        store.set_aside(hashlib.sha256(payload).hexdigest(), topic, payload, detail, now_ms)


# ---------------------------------------------------------------- list and retry through the broker
def test_a_printed_offline_sale_that_was_set_aside_is_applied_by_retry_and_the_tills_resend_gets_its_result(rig, capsys):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1", resend_interval_s=0.3)
    visitor = card("C00777")
    assert desk.submit(lambda seq: CardIssue(**common(desk, seq, visitor), card_kind="temporary", card_fee_fen=2000,
                                             opening_fen=10_000, channel="cash", payment_ref="")).is_approved
    # The receipt is already printed: the sale happened, whatever the ledger makes of it later.
    sale = fishing.enqueue(lambda seq: OfflineCharge(**common(fishing, seq, visitor), amount_fen=500,
                                                     lines=single_line("烤串 Skewers", 500), approved_ms=fishing.clock_ms()))
    set_aside(rig.reader, fishing.request_topic, sale.payload, "crashed the ledger 3 times")
    with pytest.raises(NoResultError):
        fishing.send(sale, timeout_s=1.0)
    assert fishing.ledger_holds(sale) == "SET_ASIDE"  # not final: the till keeps it pending
    assert rig.reader.card_balances("P1", visitor.account)[0] == 10_000

    capsys.readouterr()
    assert cli(rig.home.home, "verify") == VERIFY_UNFINISHED_EXIT
    report = capsys.readouterr().out
    assert "books balance" in report and "unfinished seqs: 1" in report
    assert f"T-FISH-1 seq {sale.seq}: set aside ({sale.request_sha256[:12]})" in report

    assert cli(rig.home.home, "set-aside", "list") == 0
    (line, summary) = capsys.readouterr().out.splitlines()
    assert f"T-FISH-1  seq {sale.seq}  {sale.request_sha256[:12]}  crashed the ledger 3 times" in line
    assert summary.startswith("1 set aside")

    assert cli(rig.home.home, "set-aside", "retry", sale.request_sha256[:8]) == 0
    assert "approved OK: applied" in capsys.readouterr().out

    result = fishing.send(sale, timeout_s=10)  # the till's next re-send
    assert result.is_approved and result.balances.fen == 9_500
    stored = rig.reader.stored_request("T-FISH-1", sale.seq)
    assert stored.outcome == "approved"
    assert cli(rig.home.home, "set-aside", "list") == 0
    assert capsys.readouterr().out.strip() == "0 set aside"
    assert cli(rig.home.home, "verify") == 0
    assert "every terminal seq has a final outcome" in capsys.readouterr().out


# ---------------------------------------------------------------- retry in the ledger's own process
def test_a_set_aside_message_whose_signature_fails_is_released_with_that_refusal_not_applied(ledger, capsys):
    body = OfflineCharge(**ledger.fields("T-FISH-1"), amount_fen=300, lines=single_line("鱼饵", 300),
                         approved_ms=1_780_000_000_000).to_bytes()
    topic, payload = ledger.sign("T-FISH-1", body)
    forged = bytearray(payload)
    forged[-5] ^= 0x01  # one bit of the signed body: the signature no longer holds
    forged = bytes(forged)
    set_aside(ledger.store, topic, forged, "an exception in the intake")
    assert ledger.send(topic, forged).reason == "SET_ASIDE"
    assert cli(ledger.rig.home.home, "set-aside", "retry", "--all") == 0
    assert "refused BAD_SIGNATURE: released" in capsys.readouterr().out
    assert ledger.store.set_asides() == []
    assert ledger.send(topic, forged).reason == "BAD_SIGNATURE"  # final, and recomputed on every re-send
    assert verify_books(ledger.store).is_ok


def test_retry_names_what_it_cannot_find_and_set_aside_refuses_a_home_with_no_ledger(ledger, tmp_path, capsys):
    assert cli(ledger.rig.home.home, "set-aside", "retry", "abcdef") == 1
    assert "abcdef: no held message with that prefix" in capsys.readouterr().out
    assert cli(ledger.rig.home.home, "set-aside", "retry") == 1  # neither a prefix nor --all
    nowhere = tmp_path / "no-park-here"
    for words in (("set-aside", "list"), ("set-aside", "retry", "--all"), ("verify",)):
        assert cli(nowhere, *words) == 1
        assert "no ledger in" in capsys.readouterr().err
    assert not nowhere.exists()


# ---------------------------------------------------------------- verify's unfinished seqs
def test_verify_lists_each_seq_without_a_final_outcome_and_why(ledger, capsys):
    def charge(amount_fen=100, **extra):
        message = OfflineCharge(**ledger.fields("T-FISH-1"), amount_fen=amount_fen, lines=single_line("鱼饵", amount_fen),
                                approved_ms=1_780_000_000_000, **extra)
        return ledger.sign("T-FISH-1", message.to_bytes())

    assert ledger.send(*charge()).is_approved                  # seq 1
    assert ledger.send(*charge()).is_approved                  # seq 2
    ledger.seqs["T-FISH-1"] += 1                               # seq 3: never arrives
    assert ledger.send(*charge()).is_approved                  # seq 4
    refused = ledger.request("T-FISH-1", TopUp, amount_fen=1000, channel="cash", payment_ref="")  # seq 5
    assert refused.reason == "KIND_NOT_ALLOWED"
    assert ledger.send(*charge()).is_approved                  # seq 6
    held_topic, held = charge(amount_fen=700)                  # seq 7: set aside
    set_aside(ledger.store, held_topic, held, "ValueError: a bug")
    assert ledger.send(*charge()).is_approved                  # seq 8
    ledger.seqs["T-FISH-1"] += 1                               # seq 9: an online attempt that timed out...
    assert ledger.send(*charge(supersedes_seq=9)).is_approved  # seq 10: ...and the offline sale that replaced it
    with ledger.store.batch():                                 # its heartbeat: seqs up to 12 are assigned
        ledger.store.record_status("T-FISH-1", True, 12, 2, None, 1_780_000_000_000, 1_780_000_000_000)

    report = unfinished_seqs(ledger.store)
    assert [(run.terminal_id, run.first_seq, run.last_seq) for run in report.runs] == [
        ("T-FISH-1", 3, 3), ("T-FISH-1", 5, 5), ("T-FISH-1", 7, 7), ("T-FISH-1", 11, 12)]
    why = [run.why for run in report.runs]
    assert why[0].startswith("never received")
    assert why[1].startswith("refused KIND_NOT_ALLOWED")
    assert why[2].startswith("set aside") and "ValueError: a bug" in why[2]
    assert why[3].startswith("not received yet")
    assert report.count == 5 and not report.is_finished

    assert cli(ledger.rig.home.home, "verify") == VERIFY_UNFINISHED_EXIT
    out = capsys.readouterr().out
    assert "books balance" in out and "unfinished seqs: 5 without a final outcome" in out
    assert "T-FISH-1 seqs 11-12 (2): not received yet" in out and "seq 9" not in out


def test_a_seq_jump_is_one_line_not_millions(ledger):
    message = OfflineCharge(**{**ledger.fields("T-FISH-1"), "seq": 900_000}, amount_fen=100,
                            lines=single_line("鱼饵", 100), approved_ms=1_780_000_000_000)
    assert ledger.send(*ledger.sign("T-FISH-1", message.to_bytes())).is_approved
    report = unfinished_seqs(ledger.store)
    assert [(run.first_seq, run.last_seq) for run in report.runs] == [(1, 899_999)]
    assert report.count == 899_999


# ---------------------------------------------------------------- bounded evidence
def test_ten_thousand_refusals_are_all_counted_and_only_a_bounded_sample_is_kept(ledger):
    store, now_ms = ledger.store, 1_780_000_000_000
    with store.batch():
        for i in range(10_000):
            terminal = ("T-FISH-1", "T-FISH-2", "T-RIDE-1", "T-NOBODY")[i % 4]
            reason = ("BAD_SIGNATURE", "MALFORMED", "KIND_NOT_ALLOWED")[i % 3]
            store.record_refusal(now_ms + i * 10, f"fieldpos/v1/P1/t/{terminal}/req", f"{i:064x}", reason, "fuzzed",
                                 payload=b"FP" + bytes(500))
    counts = {(terminal, reason): count for terminal, reason, count, _, _ in store.refusal_counts()}
    assert sum(counts.values()) == 10_000
    assert ("", "BAD_SIGNATURE") in counts and not any(terminal == "T-NOBODY" for terminal, _ in counts)
    kept = store.db.execute("SELECT terminal_id, reason, COUNT(*) FROM refusal GROUP BY 1, 2").fetchall()
    assert all(count <= REFUSAL_SAMPLE_PER_REASON for _, _, count in kept)
    assert sum(count for _, _, count in kept) <= REFUSAL_SAMPLE_CAP
    newest = store.db.execute("SELECT MAX(payload_sha256) FROM refusal").fetchone()[0]
    assert newest == f"{9_999:064x}"  # the sample keeps the newest
    floods = store.db.execute("SELECT detail FROM alert WHERE kind='REFUSAL_FLOOD'").fetchall()
    # 10,000 refusals at 10 ms apart span 100 s: two minutes each for four senders, one alert per minute each.
    minutes = len({(now_ms + i * 10) // 60_000 for i in range(10_000)})
    assert len(floods) == 4 * minutes and all(f"over {MAX_REFUSALS_PER_MINUTE} refusals" in d for (d,) in floods)


def test_a_terminal_refused_under_the_limit_raises_no_flood_alert(ledger):
    with ledger.store.batch():
        for i in range(MAX_REFUSALS_PER_MINUTE):
            ledger.store.record_refusal(1_780_000_020_000 + i, "fieldpos/v1/P1/t/T-FISH-1/req", f"{i:064x}",
                                        "BAD_SIGNATURE", "typo")
    assert ledger.store.db.execute("SELECT COUNT(*) FROM alert WHERE kind='REFUSAL_FLOOD'").fetchone()[0] == 0


def test_a_set_aside_request_keeps_no_pin_block_and_is_still_recognised_and_retried(ledger, capsys):
    """A PIN never rests, set-aside messages included. (A temporary card's charge needs no PIN, so
    this one applies on retry; one that needs it gets PIN_BLOCK_INVALID and the PIN is typed again.)"""
    identity = ledger.rig.identity("T-FISH-1")
    fields = ledger.fields("T-FISH-1")
    attachment, pin_sha256 = seal_pin("4321", terminal="T-FISH-1", seq=fields["seq"], ledger_pin_key=identity.pin_key)
    body = Charge(**fields, amount_fen=300, lines=single_line("鱼饵", 300), pin_sha256=pin_sha256).to_bytes()
    topic = topics.request(identity.park_id, "T-FISH-1")
    payload = envelope.seal(body, signing_key=identity.signing_key, key_id=identity.key_id, purpose=Purpose.REQUEST,
                            topic=topic, attachment=attachment)
    set_aside(ledger.store, topic, payload, "an exception in the intake")
    (held,) = ledger.store.set_asides()
    assert held.payload_sha256 == hashlib.sha256(payload).hexdigest()  # re-sends are still recognised
    assert envelope.split(held.payload).attachment == b"" and attachment not in held.payload
    assert ledger.send(topic, payload).reason == "SET_ASIDE"
    assert cli(ledger.rig.home.home, "set-aside", "retry", "--all") == 0
    assert "approved OK: applied" in capsys.readouterr().out
    assert ledger.send(topic, payload).is_approved  # the till's re-send, PIN block and all: the stored answer
    assert verify_books(ledger.store).is_ok
