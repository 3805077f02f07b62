"""The spine: signed requests over a real Mosquitto into the SQLite ledger and signed Results back."""

from host_sim.rig import card, common, single_line
from ledger.verify import verify_books
from protocol.messages import CardIssue, Charge


def issue(desk, seq, card_ref, opening_fen, fee_fen=2000):
    return CardIssue(**common(desk, seq, card_ref), card_kind="temporary", card_fee_fen=fee_fen,
                     opening_fen=opening_fen, channel="cash", payment_ref="")


def charge(link, seq, card_ref, amount_fen, item="钓鱼 1小时"):
    return Charge(**common(link, seq, card_ref), amount_fen=amount_fen, lines=single_line(item, amount_fen))


def test_a_temporary_card_issued_with_100_and_charged_30_has_70_left(rig):
    desk, fishing = rig.link("T-DESK-1"), rig.link("T-FISH-1")
    visitor = card("C00001")
    issued = desk.submit(lambda seq: issue(desk, seq, visitor, 10000))
    assert issued.outcome == "approved" and issued.balances.fen == 10000
    result = fishing.submit(lambda seq: charge(fishing, seq, visitor, 3000))
    assert result.outcome == "approved", result
    assert result.balances.fen == 7000
    assert result.txn is not None and result.seq == 1
    report = verify_books(rig.reader)
    assert report.is_ok, report.problems
