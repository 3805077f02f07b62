"""A member card's history in the portal names each line in the member's words, Chinese or English
as the member chose, not by the ledger's kind of transaction ("charge", "top_up_online")."""

import re

from backoffice.portal.labels import KIND_LABELS, kind_namer
from ledger.park_admin import ADJUSTMENT_KIND
from ledger.topups_online import REFUND_KIND, TOPUP_KIND
from host_sim.rig import single_line
from protocol.kinds import KINDS
from protocol.messages import Charge, TopUp

from .test_portal_app import portal  # noqa: F401 - the portal with its park

# Booked kinds whose card is a staff member's (a shift's handover, a deposit paid at the desk): they
# never show in a member card's history.
STAFF_CARD_KINDS = {"shift_handover", "deposit_desk"}


def history_kinds(page) -> list[str]:
    return re.findall(r'<td class="when"[^>]*>[^<]*</td><td>([^<]*)</td>', page.text)


def test_the_history_says_top_up_and_purchase_in_the_members_language(portal):  # noqa: F811
    client = portal.client()
    portal.open_ecard(client, portal.log_in(client))
    assert portal.ledger.request("T-DESK-1", TopUp, card_ref=portal.scanned(client), amount_fen=10000,
                                 channel="cash", payment_ref="").is_approved
    assert portal.ledger.request("T-FISH-1", Charge, card_ref=portal.scanned(client), amount_fen=3000,
                                 lines=single_line("鱼饵", 3000), pin_sha256=None).is_approved
    chinese = history_kinds(client.get("/m/cards/E000001"))
    assert chinese[:2] == ["消费", "充值"]  # newest first
    client.get("/m/lang?to=en")
    assert history_kinds(client.get("/m/cards/E000001"))[:2] == ["Purchase", "Top-up"]
    assert not {"charge", "top_up"} & set(chinese)


def test_every_kind_a_member_card_can_show_has_words_in_both_languages():
    member_kinds = {kind.type for kind in KINDS.values() if kind.is_booked} - STAFF_CARD_KINDS
    member_kinds |= {TOPUP_KIND, REFUND_KIND, ADJUSTMENT_KIND}  # booked by the ledger itself
    assert member_kinds <= set(KIND_LABELS)
    assert all(zh and en and zh != en for zh, en in KIND_LABELS.values())
    assert kind_namer("en")("top_up_online") == "Online top-up" and kind_namer("zh")("top_up_online") == "在线充值"
    assert kind_namer("en")("a_kind_added_later") == "a_kind_added_later"
