"""The front desk's flows on the terminal's state machine (a mixin of ``terminal.core.Terminal``).

The desk issues, tops up and takes back temporary cards; opens member cards (name on the desk's
keyboard, phone and the member's PIN typed twice on the keypad); reports a member card lost by the
member's phone number (the card itself is lost, so it cannot be tapped); replaces a lost card on a
blank one; unblocks a found card, unlocks a member's PIN, moves money between members (the paying
member's PIN) and takes payment of an offline debt on a blocked card. It asks whether a returned
card is damaged (when the park sets a damage fee), and finishes writing a card it issued but never
wrote (a crash, or a write given up) when that card is tapped again. Replacement, PIN unlock and a
reversal (F3, the last top-up of this shift) need a supervisor's card and PIN: ``terminal.core``
asks for them. The ledger decides everything; the desk collects what it needs and writes the record
the ledger signed.
"""

from protocol.card_record import CardRecord
from protocol.kinds import KINDS
from protocol.messages import (CardIssue, CardKind, CardReplace, CardReturn, CardState, CardUnblock, Channel, LineItem,
                               LossReport, MemberLookup, MemberOpen, MemberTransfer, PinUnlock, TopUp)

from .events import (BACK, CANCEL, CHANNEL_TEXT, DESK_CHANNELS, ENTER, ENTRY_TIMEOUT_MS, LOST_CARD_KEY, MAX_AMOUNT_CHARS, MAX_NAME_CHARS,
                     MAX_PHONE_DIGITS, PIN_TIMEOUT_MS, CardTapped, CardWriteFailed, CardWritten, KeyPressed, Print,
                     Sale, Show, State, TappedCard, WriteCard, format_fen, masked, parse_amount)
from .hal.keypad import Key

MIN_PHONE_DIGITS = 6
# The new card's number comes from its UID, so a blank card needs no numbering at the desk.
CARD_PREFIX = {CardKind.TEMPORARY: "T", CardKind.MEMBER: "M"}
# Desk requests that end with a line on the screen, not a receipt, by message type.
DONE_TEXT = {kind.type: kind.done_text for kind in KINDS.values() if kind.done_text}
# A returned temporary card issued again is a card_issue with ``Sale.is_reissue`` set: the menu's
# pseudo-operation for it, never sent as such.
REISSUE = "reissue_returned"
# What the desk offers for a card on the reader: (key, request type, Chinese, English), by the card's
# kind and whether it is on the blocklist (True). Requests start in DESK_AMOUNT unless FIRST_STEP says.
DESK_MENUS = {
    (CardKind.TEMPORARY, False): ((Key.DIGIT_1, TopUp.TYPE, "充值", "Top-up"), (Key.DIGIT_2, CardReturn.TYPE, "退卡", "Return"),
                                  (Key.DIGIT_3, REISSUE, "重新发卡", "Reissue")),
    (CardKind.MEMBER, False): ((Key.DIGIT_1, TopUp.TYPE, "充值", "Top-up"), (Key.DIGIT_2, PinUnlock.TYPE, "密码解锁", "PIN"),
                               (Key.DIGIT_3, MemberTransfer.TYPE, "转账", "Transfer")),
    (CardKind.MEMBER, True): ((Key.DIGIT_1, CardUnblock.TYPE, "解挂", "Found"), (Key.DIGIT_2, TopUp.TYPE, "补缴", "Pay debt")),
    (CardKind.TEMPORARY, True): ((Key.DIGIT_2, TopUp.TYPE, "补缴", "Pay debt"),),
}
FIRST_STEP = {CardReturn.TYPE: State.DESK_CHANNEL, MemberTransfer.TYPE: State.DESK_TRANSFER_TO}
MENU_TITLES = {CardKind.TEMPORARY: "临时卡", CardKind.MEMBER: "会员卡"}
# What a temporary card costs at issue is a deposit: the return refunds it (less a damage fee).
CARD_DEPOSIT_LINE = "卡押金 Card deposit"
PAID_BY, REFUND_BY = "付款方式 Paid by", "退款方式 Refund by"
LOSS_SLIP_TITLE = "挂失凭证"
CARD_STATE_TEXT = {CardState.ACTIVE: "正常 Active", CardState.LOST: "已挂失 Lost", CardState.BLOCKED: "冻结 Blocked",
                   CardState.RETURNED: "已退 Returned"}


def return_itemised(refund_fen: int, deposit_fen: int, damage_fee_fen: int) -> tuple[tuple[str, str], ...]:
    """A return's refund as the visitor checks it: balance + card deposit - damage fee kept. The
    ledger booked ``refund_fen`` (that sum); the balance part is what is left of it."""
    balance_fen = refund_fen - deposit_fen + damage_fee_fen
    if balance_fen < 0:  # the deposit the card was issued with differs from today's: show only what is known
        return (("退款合计 Total refund", format_fen(refund_fen)),)
    lines = [("退余额 Balance", format_fen(balance_fen)), ("退押金 Card deposit", format_fen(deposit_fen))]
    if damage_fee_fen:
        lines.append(("扣损坏费 Damage kept", f"-{format_fen(damage_fee_fen)}"))
    return tuple(lines) + (("退款合计 Total refund", format_fen(refund_fen)),)


# The tap asked the ledger for the card's balance and got no answer (offline, or too late).
BALANCE_UNKNOWN = "余额未知 Balance unknown"


def balance_line(sale: Sale) -> str:
    """The tapped card's balance as a screen line: "" while the query is out, the bonus when there is one."""
    if sale.balances is not None:
        bonus = f" 赠 {format_fen(sale.balances.bonus)}" if sale.balances.bonus else ""
        return f"余额 Balance {format_fen(sale.balances.fen)}" if not bonus else f"余额 {format_fen(sale.balances.fen)}{bonus}"
    return BALANCE_UNKNOWN if sale.is_balance_unknown else ""


def refund_screen(sale: Sale, deposit_fen: int) -> tuple[str, tuple[str, ...]]:
    """A return's refund as the screen shows it before ENTER: the total in the title; balance and
    card deposit, the damage fee kept (if any), and how it is paid, in the 128x64 panel's three
    rows. From the tap's balance query and the park's card deposit: the ledger books the real
    refund (with the deposit the card was issued with)."""
    kept = (f"扣损坏费 -{format_fen(sale.damage_fee_fen)}",) if sale.damage_fee_fen else ()
    how = f"{CHANNEL_TEXT[sale.channel]} ENTER"
    if sale.balances is None:
        return "退卡 Refund?", (f"余额未知 押金{format_fen(deposit_fen)}",) + kept + (how,)
    total = sale.balances.fen + deposit_fen - sale.damage_fee_fen
    return (f"退款 Refund ￥{format_fen(total)}",
            (f"余额{format_fen(sale.balances.fen)} 押金{format_fen(deposit_fen)}",) + kept + (how,))


def _is_letter(key: Key) -> bool:
    """A letter of the desk's keyboard (the member's name is typed in pinyin)."""
    return key.character is not None and key.character.isalpha()


def card_number(kind: str, uid_hex: str) -> str:
    """The number the desk gives a blank card of ``kind``: from its UID."""
    return f"{CARD_PREFIX[kind]}{uid_hex[:8].upper()}"


def _new_card(kind: str, uid_hex: str) -> CardRecord:
    return CardRecord(card_number(kind, uid_hex), 1, kind, "")


def _looked_up(member_card) -> CardRecord:
    return CardRecord(member_card.no, member_card.issuance, CardKind.MEMBER, "")


class FrontDesk:
    """The desk's states. Uses the machine's ``_go``, ``_message``, ``_leave_entry``, ``_type``,
    ``_pin_typed``, ``_send`` and ``_ask_supervisor`` (terminal.core)."""

    # ------------------------------------------------------------ a card on the reader
    def _desk_tap(self, event: CardTapped) -> list:
        if event.is_blank and event.unwritten_record:  # issued and paid for: only the writing is left
            self.sale = Sale(card=_new_card(CardKind.TEMPORARY, event.uid_hex), uid_hex=event.uid_hex, is_blank=True,
                             operation=CardIssue.TYPE, only_writes=True, record_hex=event.unwritten_record)
            self.state, self.deadline_ms = State.WRITING_CARD, None
            return [self._screen(), self._card_write()]
        if event.is_blank:
            self.sale = Sale(card=_new_card(CardKind.TEMPORARY, event.uid_hex), uid_hex=event.uid_hex, is_blank=True)
            return [self._go(State.DESK_NEW_CARD, ENTRY_TIMEOUT_MS)]
        self.sale = Sale(card=event.record, uid_hex=event.uid_hex, is_card_blocked=event.is_blocked)
        return [self._go(State.DESK_MENU, ENTRY_TIMEOUT_MS)] + self._ask_balance(TappedCard(event.record, event.uid_hex))

    def _desk_menu(self) -> tuple:
        sale = self.sale
        return DESK_MENUS[CardKind(sale.card.kind), sale.is_card_blocked]

    def _desk_key(self, key: Key) -> list:
        """F2 at the desk's idle screen: a member reports a card lost, found by phone number."""
        if key is not LOST_CARD_KEY:
            return []
        # The request is about the member's card, but asked by this desk: ``card`` is the staff card.
        self.sale = Sale(card=self._staff_card.record, uid_hex=self._staff_card.uid_hex, operation=LossReport.TYPE)
        return [self._go(State.DESK_PHONE, ENTRY_TIMEOUT_MS)]

    def _on_desk_new_card(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        if event.key is Key.DIGIT_1:
            sale.operation = CardIssue.TYPE
            return [self._go(State.DESK_AMOUNT, ENTRY_TIMEOUT_MS)]
        if event.key is Key.DIGIT_2:
            sale.operation, sale.card = MemberOpen.TYPE, _new_card(CardKind.MEMBER, sale.uid_hex)
            return [self._go(State.DESK_NAME, ENTRY_TIMEOUT_MS)]
        if event.key is Key.DIGIT_3:
            sale.operation, sale.card = CardReplace.TYPE, _new_card(CardKind.MEMBER, sale.uid_hex)
            return [self._go(State.DESK_PHONE, ENTRY_TIMEOUT_MS)]
        return []

    def _on_desk_menu(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        operation = next((operation for key, operation, *_ in self._desk_menu() if key is event.key), None)
        if operation is None:
            return []
        if operation == REISSUE:  # a returned card issued again: a card_issue of its next issuance
            operation, sale.is_reissue = CardIssue.TYPE, True
            sale.card = CardRecord(sale.card.card_no, sale.card.issuance + 1, CardKind.TEMPORARY, sale.card.park_id)
        sale.operation = operation
        if operation == CardUnblock.TYPE:  # reported lost, and it has turned up
            return self._send(CardUnblock, {})
        if operation == PinUnlock.TYPE:
            return self._ask_supervisor()
        if operation == CardReturn.TYPE and self.rules.damage_fee_fen:
            return [self._go(State.DESK_DAMAGED, ENTRY_TIMEOUT_MS)]
        # A top-up on a blocked card pays an offline debt off (the ledger then unblocks it); a transfer
        # goes to another member's card where the park allows it: the ledger decides both.
        return [self._go(FIRST_STEP.get(operation, State.DESK_AMOUNT), ENTRY_TIMEOUT_MS)]

    # ------------------------------------------------------------ a new member
    def _on_desk_name(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        if event.key == ENTER:
            name = " ".join(sale.typed.split())
            if len(name) < 2:
                return []
            sale.member_name, sale.typed = name.title(), ""
            return [self._go(State.DESK_PHONE, ENTRY_TIMEOUT_MS)]
        if event.key == BACK:
            sale.typed = sale.typed[:-1]
        elif len(sale.typed) < MAX_NAME_CHARS and (_is_letter(event.key) or (event.key is Key.SPACE and sale.typed[-1:].isalpha())):
            sale.typed += event.key.character  # letters, and single spaces between words
        self.deadline_ms = self.now_ms + ENTRY_TIMEOUT_MS
        return [self._screen()]

    def _on_desk_phone(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        if event.key != ENTER:
            return self._type(event.key, digits_only=True, limit=MAX_PHONE_DIGITS, timeout_ms=ENTRY_TIMEOUT_MS)
        if len(sale.typed) < MIN_PHONE_DIGITS:
            return []
        sale.phone, sale.typed = sale.typed, ""
        if sale.operation == MemberOpen.TYPE:
            return [self._go(State.DESK_NEW_PIN, PIN_TIMEOUT_MS)]
        return self._send(MemberLookup, {"phone": sale.phone}, card=self._staff_card)  # asked by the staff member

    def _on_desk_new_pin(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        self.sale.new_pin, self.sale.notice = pin, ""
        return [self._go(State.DESK_PIN_AGAIN, PIN_TIMEOUT_MS)]

    def _on_desk_pin_again(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        if pin != self.sale.new_pin:
            self.sale.new_pin, self.sale.notice = "", "两次密码不同 The PINs differ — again"
            return [self._go(State.DESK_NEW_PIN, PIN_TIMEOUT_MS)]
        return [self._go(State.DESK_AMOUNT, ENTRY_TIMEOUT_MS)]

    # ------------------------------------------------------------ member to member
    def _on_desk_transfer_to(self, event) -> list:
        if isinstance(event, CardTapped):
            sale = self.sale
            if event.record is None or event.record.kind != CardKind.MEMBER or event.record.card_no == sale.card.card_no:
                sale.notice = "请刷另一张会员卡 Another member's card"
                return [self._screen()]
            sale.chosen, sale.notice = event.record, ""
            return [self._go(State.DESK_AMOUNT, ENTRY_TIMEOUT_MS)]
        return self._leave_entry(event) or []

    def _on_desk_member_pin(self, event) -> list:
        """The paying member types their own PIN, always, for a transfer."""
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        sale = self.sale
        return self._send(MemberTransfer, {"to_card_no": sale.chosen.card_no, "to_issuance": sale.chosen.issuance,
                                           "amount_fen": sale.amount_fen, "pin_sha256": "0" * 64}, pin=pin)

    # ------------------------------------------------------------ money in and out
    def _on_desk_amount(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        if event.key != ENTER:
            return self._type(event.key, digits_only=False, limit=MAX_AMOUNT_CHARS, timeout_ms=ENTRY_TIMEOUT_MS)
        if sale.operation == MemberOpen.TYPE and not sale.typed:
            sale.lines = (LineItem(item="会员开卡 Member card", qty=1, unit_fen=0),)  # opened empty: nothing to pay
            return self._desk_submit_card(channel=Channel.CASH)
        amount = parse_amount(sale.typed)
        if amount is None:
            return []
        if sale.operation == MemberTransfer.TYPE:
            sale.lines, sale.typed = (LineItem(item=f"转出 To {masked(sale.chosen.card_no)}", qty=1, unit_fen=amount),), ""
            return [self._go(State.DESK_MEMBER_PIN, PIN_TIMEOUT_MS)]
        if sale.operation == TopUp.TYPE:
            sale.lines = (LineItem(item="充值 Top-up", qty=1, unit_fen=amount),)
        elif sale.operation == MemberOpen.TYPE:
            sale.lines = (LineItem(item="预存 Opening", qty=1, unit_fen=amount),)
        else:
            sale.lines = (LineItem(item=CARD_DEPOSIT_LINE, qty=1, unit_fen=self.rules.card_fee_fen),
                          LineItem(item="预存 Opening", qty=1, unit_fen=amount))
        return [self._go(State.DESK_CHANNEL, ENTRY_TIMEOUT_MS)]

    def _on_desk_damaged(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key not in (Key.DIGIT_1, Key.DIGIT_2):
            return []
        self.sale.damage_fee_fen = self.rules.damage_fee_fen if event.key is Key.DIGIT_2 else 0
        return [self._go(State.DESK_CHANNEL, ENTRY_TIMEOUT_MS)]

    def _on_desk_channel(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        channel = DESK_CHANNELS.get(event.key)
        if channel is not None and self.sale.operation == CardReturn.TYPE:
            # The refund, itemised, is confirmed before it is asked for (the ledger books the real one).
            self.sale.channel = Channel(channel).value
            return [self._go(State.DESK_CONFIRM, ENTRY_TIMEOUT_MS)]
        return [] if channel is None else self._desk_submit_card(channel)

    def _desk_submit_card(self, channel: Channel) -> list:
        sale = self.sale
        sale.channel = Channel(channel).value
        paid = {"channel": sale.channel, "payment_ref": ""}
        if sale.operation == CardIssue.TYPE:
            return self._send(CardIssue, paid | {"card_kind": CardKind.TEMPORARY.value, "card_fee_fen": self.rules.card_fee_fen,
                                                        "opening_fen": sale.lines[1].unit_fen})
        if sale.operation == MemberOpen.TYPE:
            fields = paid | {"member_name": sale.member_name, "phone": sale.phone, "card_fee_fen": 0,
                             "opening_fen": sale.amount_fen, "pin_sha256": "0" * 64}
            pin, sale.new_pin = sale.new_pin, ""  # the machine forgets it once it is handed over to be sealed
            return self._send(MemberOpen, fields, pin=pin)
        if sale.operation == TopUp.TYPE:
            return self._send(TopUp, paid | {"amount_fen": sale.amount_fen})
        return self._send(CardReturn, paid | {"damage_fee_fen": sale.damage_fee_fen})

    # ------------------------------------------------------------ lost cards
    def _desk_found(self, reply) -> list:
        """The member lookup's answer: the cards that the operation in hand can act on."""
        sale = self.sale
        wanted = CardState.ACTIVE if sale.operation == LossReport.TYPE else CardState.LOST
        sale.found = tuple(found for found in reply.cards if found.state == wanted)
        if not sale.found:
            self.sale = None
            return self._message("未找到 Nothing to do", (f"{sale.phone}: 没有{'可挂失' if wanted is CardState.ACTIVE else '已挂失'}的会员卡",
                                                         f"no {wanted.value} member card on this number"), tone="warning")
        if len(sale.found) == 1:
            sale.chosen = sale.found[0]
            return [self._go(State.DESK_CONFIRM, ENTRY_TIMEOUT_MS)]
        return [self._go(State.DESK_PICK, ENTRY_TIMEOUT_MS)]

    def _on_desk_pick(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        sale = self.sale
        if event.key.is_digit and 1 <= int(event.key.character) <= min(len(sale.found), 9):
            sale.chosen = sale.found[int(event.key.character) - 1]
            return [self._go(State.DESK_CONFIRM, ENTRY_TIMEOUT_MS)]
        return []

    def _on_desk_confirm(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key != ENTER:
            return []
        sale = self.sale
        if sale.operation == LossReport.TYPE:
            sale.card, sale.uid_hex = _looked_up(sale.chosen), sale.chosen.uid
            return self._send(LossReport, {})
        if sale.operation == CardReturn.TYPE:
            return self._desk_submit_card(Channel(sale.channel))
        return self._ask_supervisor()  # a replacement moves the balance: a supervisor signs it off

    def _desk_supervised(self) -> tuple[type, dict]:
        """The request a supervisor's PIN completes at the desk."""
        sale = self.sale
        if sale.operation == CardReplace.TYPE:
            sale.lines = (LineItem(item=f"补卡 原卡 {masked(sale.chosen.no)}", qty=1, unit_fen=0),)  # the lost card it replaces
            return CardReplace, {"from_card_no": sale.chosen.no, "from_issuance": sale.chosen.issuance}
        return PinUnlock, {}

    # ------------------------------------------------------------ the ledger's answer
    def _desk_answered(self, result) -> list | None:
        """Desk operations that end without a receipt; None for the ones that print (and write)."""
        sale = self.sale
        if sale.operation in DONE_TEXT and sale.operation != LossReport.TYPE:  # a loss report prints a slip
            self.sale = None
            return self._message("成功 Done", (masked(sale.card.card_no), DONE_TEXT[sale.operation]), tone="ok")
        if sale.operation == CardReturn.TYPE:  # the receipt shows what the visitor gets back, as the ledger booked it
            sale.lines = (LineItem(item="退卡退款 Refund", qty=1, unit_fen=result.amount_fen or 0),)
        return None

    def _desk_receipt_parts(self, sale, result) -> dict:
        """What a desk receipt says beyond its lines: how the money moved, a return itemised, the
        member a card was opened for, what a replacement moved."""
        parts: dict = {}
        if sale.channel and sale.operation in (CardIssue.TYPE, TopUp.TYPE, MemberOpen.TYPE, CardReturn.TYPE):
            label = REFUND_BY if sale.operation == CardReturn.TYPE else PAID_BY
            parts["method"] = (label, CHANNEL_TEXT[sale.channel])
        if sale.operation == CardReturn.TYPE:
            parts["detail_lines"] = return_itemised(result.amount_fen or 0, self.rules.card_fee_fen, sale.damage_fee_fen)
        elif sale.operation == MemberOpen.TYPE:
            parts["detail_lines"] = (("会员 Member", sale.member_name), ("手机尾号 Phone", sale.phone[-4:]))
        elif sale.operation == LossReport.TYPE:
            # The member's proof that the card was reported lost, and when: what they owe for sales
            # after this time is the park's to carry.
            parts["title"] = LOSS_SLIP_TITLE
            parts["detail_lines"] = (("会员 Member", sale.chosen.name), ("状态 State", "已挂失 Reported lost"),
                                     ("", "各站已冻结 Blocked everywhere"))
        elif sale.operation == CardReplace.TYPE:
            moved = sale.chosen  # one Chinese line each: a 58 mm line has no room for both languages
            parts["detail_lines"] = (("转入余额", format_fen(moved.fen)), ("转入赠送", format_fen(moved.bonus)),
                                     ("转入积分", str(moved.points)))
        return parts

    def _card_write(self) -> WriteCard:
        sale = self.sale
        return WriteCard(sale.uid_hex, bytes.fromhex(sale.record_hex), sale.is_blank)

    def _on_writing_card(self, event) -> list:
        is_finishing = self.sale.only_writes
        if isinstance(event, CardWritten):
            if is_finishing:
                self.sale = None
                return self._message("写卡完成 Card finished", ("卡可以使用了 The card works now",), tone="ok")
            self.state = State.PRINTING
            return [self._screen(), Print(self.last_receipt)]
        if isinstance(event, CardWriteFailed):
            return [Show("写卡失败 Card not written", (event.message, "卡已开通 The card is issued"),
                         "ENTER 重试 retry · CANCEL 稍后 later", "warning")]
        # Try again on ENTER, or when the card comes back (a supervisor's card may have been tapped
        # in between, or the card was lifted too soon).
        if (isinstance(event, KeyPressed) and event.key == ENTER) or (
                isinstance(event, CardTapped) and event.uid_hex == self.sale.uid_hex):
            return [self._card_write()]
        if isinstance(event, KeyPressed) and event.key == CANCEL:
            # The card is issued and paid for at the ledger: tapping it at this desk later finishes
            # the writing. The receipt is the visitor's proof meanwhile.
            if is_finishing:
                self.sale = None
                return [self._go(State.IDLE)]
            self.state = State.PRINTING
            return [self._screen(), Print(self.last_receipt)]
        return []

    # ------------------------------------------------------------ screens
    def _desk_screen(self) -> Show | None:
        state, sale = self.state, self.sale
        keys = "确认 ENTER  取消 CANCEL"
        if state == State.DESK_NEW_CARD:
            return Show("新卡 Blank card", ("1 临时卡 Temporary", "2 会员卡 Member", "3 补卡 Replace lost"))
        if state == State.DESK_MENU:
            # One option a line, so that a 128 x 64 panel shows all three; the card in the title.
            title = "已冻结" if sale.is_card_blocked else MENU_TITLES[sale.card.kind]
            # The balance in the title once the ledger has said it (three options fill the rows).
            known = f"余额{format_fen(sale.balances.fen)}" if sale.balances else "余额未知" if sale.is_balance_unknown else ""
            return Show(f"{title} {known or masked(sale.card.card_no)}", tuple(f"{key.character} {zh} {en}" for key, _, zh, en in self._desk_menu()),
                        tone="warning" if sale.is_card_blocked else "normal")
        if state == State.DESK_NAME:
            return Show("会员姓名 Member's name", ("拼音 in pinyin:", (sale.typed or "_")), keys)
        if state == State.DESK_PHONE:
            title = "会员手机 Member's phone" if sale.operation == MemberOpen.TYPE else "查找会员 Find by phone"
            return Show(title, (sale.typed or "_",), keys)
        if state in (State.DESK_NEW_PIN, State.DESK_PIN_AGAIN):
            title = "会员设密码 Member: new PIN" if state == State.DESK_NEW_PIN else "再输一次 PIN again"
            return Show(title, (sale.notice or sale.member_name, "*" * len(sale.typed) or "_"), keys,
                        "warning" if sale.notice else "normal")
        if state == State.DESK_TRANSFER_TO:
            return Show("转入卡 Transfer to", ("请刷对方会员卡 Tap the other member's card",) + ((sale.notice,) if sale.notice else ()),
                        "取消 CANCEL")
        if state == State.DESK_MEMBER_PIN:
            return Show("会员密码 Member PIN", (f"￥{format_fen(sale.amount_fen)} → {masked(sale.chosen.card_no)}",
                                                "*" * len(sale.typed) or "_"), keys)
        if state == State.DESK_AMOUNT:
            title = "重新发卡 Reissue" if sale.is_reissue else {
                CardIssue.TYPE: "新卡预存 New card", TopUp.TYPE: "充值 Top-up", MemberOpen.TYPE: "会员预存 Opening (ENTER: none)",
                MemberTransfer.TYPE: "转账金额 Amount"}[sale.operation]
            return Show(title, (balance_line(sale) or masked(sale.card.card_no),), keys, big=f"￥{sale.typed or '0'}")
        if state == State.DESK_CHANNEL:
            if sale.operation == CardReturn.TYPE:
                return Show(REFUND_BY, ("1 现金 2 微信", "3 支付宝 4 银行卡"), "1 cash 2 WeChat 3 Alipay 4 bank")
            # What to collect (a new card's deposit and what is prepaid on it) before the tender is chosen.
            return Show(f"收款 Collect ￥{format_fen(sale.amount_fen)}", ("1 现金 2 微信", "3 支付宝 4 银行卡"),
                        "1 cash 2 WeChat 3 Alipay 4 bank")
        if state == State.DESK_DAMAGED:
            return Show("卡是否完好 Card intact?", ("1 完好 Intact", f"2 损坏 Damaged -{format_fen(self.rules.damage_fee_fen)}"))
        if state == State.DESK_PICK:
            lines = tuple(f"{i + 1} {masked(found.no)} {found.name}" for i, found in enumerate(sale.found[:9]))
            return Show("选择会员卡 Pick the card", lines[:3])  # a digit picks
        if state == State.DESK_CONFIRM and sale.operation == CardReturn.TYPE:
            title, lines = refund_screen(sale, self.rules.card_fee_fen)
            return Show(title, lines, tone="warning")  # ENTER confirms, CANCEL leaves: no room for a footer
        if state == State.DESK_CONFIRM:
            found = sale.chosen
            action = "挂失 Report lost?" if sale.operation == LossReport.TYPE else "补到新卡 Move to the new card?"
            return Show(action, (f"{found.name} {masked(found.no)}",
                                 f"{CARD_STATE_TEXT[found.state]} ￥{format_fen(found.fen)}+{format_fen(found.bonus)}"),
                        keys, "warning")
        if state == State.WRITING_CARD:
            return Show("写卡中 Writing the card", ("请勿移开 Keep the card on the reader",), f"操作员 {self.operator_name}")
        return None
