"""A rental return's receipt names the damage picked at inspection (the visitor reads "damage to
what?"), live and when printed again after a crash; a lost item's fee is called a loss."""

from types import SimpleNamespace

from protocol.messages import CardRef, RentalReturn, RentalReturnReply
from terminal import rental_app
from terminal.events import Answer, Print
from terminal.receipt import render_receipt_text
from terminal.rental import Scanned, picked_damage

from .test_rental_terminal import NOW_MS, ROD, STOCK, keys, logged_in, only


def reply(damage_fen, *, seq=11, item_type="rod", label="ROD-0042", deposit_fen=10000, claim_fen=0):
    refunded = deposit_fen + claim_fen - 2000 - damage_fen
    return RentalReturnReply(park="P1", terminal="T-RENT-1", seq=seq, request_sha256="b" * 64, order="D000123",
                             item_type=item_type, item_label=label, out_ms=NOW_MS - 3_600_000, returned_ms=NOW_MS,
                             deposit_fen=deposit_fen, rental_fen=2000, late_fen=0, damage_fen=damage_fen,
                             refunded_fen=refunded, claim_fen=claim_fen, route="cash", ledger_time_ms=NOW_MS)


def text_of(receipt) -> list[str]:
    return [" ".join(line.split()) for line in render_receipt_text(receipt, 384)]


def test_a_rod_returned_with_its_reel_and_tip_broken_names_both_under_the_damage_total():
    desk = logged_in()
    desk.handle(Scanned("ROD-0042", NOW_MS))
    keys(desk, "221E")  # damaged: the tip, then the reel
    desk.submitted(11)
    receipt = only(desk.handle(Answer(reply(4500))), Print).receipt
    lines = text_of(receipt)
    damage = lines.index("损坏 Damage 45.00")
    assert lines[damage + 1:damage + 3] == ["竿梢 Tip 15.00", "渔轮 Reel 30.00"]  # as picked
    assert lines[damage + 3].startswith("退款 Refunded")


def test_a_damage_list_changed_since_the_desk_read_it_names_the_damage_without_figures_that_contradict_the_total():
    desk = logged_in()
    desk.handle(Scanned("ROD-0042", NOW_MS))
    keys(desk, "21E")
    desk.submitted(11)
    lines = text_of(only(desk.handle(Answer(reply(3500))), Print).receipt)  # the ledger's reel fee is now 35.00
    damage = lines.index("损坏 Damage 35.00")
    assert lines[damage + 1] == "渔轮 Reel" and "30.00" not in " ".join(lines)


def test_a_lost_bike_is_a_loss_on_the_receipt_not_a_damage():
    desk = logged_in()
    desk.handle(Scanned("BIKE-07", NOW_MS))
    keys(desk, "3")
    desk.submitted(12)
    receipt = only(desk.handle(Answer(reply(80000, seq=12, item_type="bike", label="BIKE-07", deposit_fen=30000,
                                              claim_fen=52000))), Print).receipt
    assert ("丢失 Lost", "800.00") in receipt.detail_lines
    assert not any(label.startswith("损坏") for label, _ in receipt.detail_lines)


def test_the_return_receipt_printed_again_after_a_crash_names_the_damage_from_the_desks_own_request():
    request = RentalReturn(park="P1", terminal="T-RENT-1", seq=11, terminal_time_ms=NOW_MS, clock_uncertain=False,
                           operator="li", config_version=1, card=CardRef(no="S0001", issuance=1, uid="01020304"),
                           item_label="ROD-0042", condition="damaged", damage="tip")
    app = SimpleNamespace(machine=SimpleNamespace(config=logged_in().config),
                          identity=SimpleNamespace(terminal_id="T-RENT-1"),
                          link=SimpleNamespace(state=SimpleNamespace(rental=STOCK)))
    receipt = rental_app.owed_receipt(app, request, reply(1500))
    assert receipt.is_reprint
    lines = text_of(receipt)
    assert lines[lines.index("损坏 Damage 15.00") + 1] == "竿梢 Tip 15.00"


def test_a_code_the_desks_list_no_longer_has_is_named_by_its_code_and_no_fee():
    assert picked_damage(ROD, ("tip", "oar")) == (("竿梢 Tip", 1500), ("oar", None))
    assert picked_damage(None, ("reel",)) == (("reel", None),)
