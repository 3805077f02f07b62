"""The rental desk on the terminal's state machine: deposits, hand-out against a voucher, returns.

A subclass of ``terminal.core.Terminal``: logging in, shifts, the wait for the ledger (AUTHORIZING,
UNCERTAIN), printing and messages are the station's; this module adds what a rental desk does. Like
the core it does no I/O and reads no clock: the app turns a barcode scan into :class:`Scanned`
(stamped with the ledger-trusted time, which a voucher's expiry is checked against) and carries out
:class:`RedeemOffline`, the one effect a station does not have.

Rules of the table (a voucher is the ``FPV1:`` token of ``protocol.voucher``; anything else scanned
is an item's label):

- IDLE → a voucher scanned → its signature and expiry checked here, online or not → VOUCHER (order,
  item type, deposit on screen) → the item's label scanned (it must be of the voucher's type) →
  hand-out: online a ``rental_out`` request (AUTHORIZING; the ledger's time is the hand-out time),
  offline the redemption is queued (:class:`RedeemOffline`) → receipt → DONE.
- Online, a voucher scanned is first looked up (``rental_orders``, read only; one past its expiry
  too, for a return only): held → VOUCHER; its item out (handed out at any desk) → INSPECT, to
  take it back, the screen saying when and where it went out; closed → a message. No answer in
  time: VOUCHER, and the hand-out's ``rental_out`` decides.
- IDLE → a visitor's park card tapped → ``rental_orders`` for the card (any desk finds the
  deposits it paid): one held → VOUCHER (no second deposit); several → PICK_ORDER (a digit, 0 a
  new deposit); none → PICK_TYPE (a digit) → the member's PIN above the park's no-PIN limit, as
  for a charge → ``deposit_card`` → the voucher receipt, its QR code the voucher → VOUCHER, to
  scan the label at once. F2 at IDLE is the same for a deposit paid at the desk (PICK_TYPE, then
  PICK_CHANNEL: cash, WeChat, Alipay, bank card).
- IDLE → an item's label scanned → INSPECT (1 intact, 2 damaged, 3 lost) → DAMAGE (digits toggle
  the type's damage list, ENTER sends) → ``rental_return`` → the itemised return receipt → DONE.
  Late is the ledger's to decide, from its own hand-out and return times.
- Deposits, returns and card look-ups need the ledger: offline they are refused before anything
  is sent (a deposit or return sent that gets no answer waits, UNCERTAIN). A hand-out sent online that gets no answer falls
  back to offline as a sale does: the offline redemption names the online attempt
  (``supersedes_seq``) and the ledger applies at most one of the two, so the item is never handed
  out twice on the books nor flagged as a voucher redeemed twice.
- The rental states are entry states: CANCEL leaves them, and they time out back to IDLE.
"""

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from zoneinfo import ZoneInfo

from protocol.messages import (CardKind, Channel, DepositCard, DepositDesk, DepositReply, DepositState, LineItem, RefundRoute,
                               RentalCondition, RentalOrders, RentalOrdersReply, RentalOut, RentalReturn, RentalReturnReply,
                               RentalStock, RentalType)
from protocol.reasons import reason_text
from protocol.voucher import PREFIX as VOUCHER_PREFIX
from protocol.voucher import Voucher, VoucherError, parse_voucher, verify_voucher

from . import core
from .events import (DESK_CHANNELS, ENTER, ENTRY_TIMEOUT_MS, PIN_TIMEOUT_MS, Answer, CardTapped, KeyPressed, NoAnswer,
                     OfflineApproved, OfflineRefused, Print, PrintFinished, RememberReceipt, Sale, Show, State,
                     TappedCard, format_fen, masked)
from .receipt import ReceiptData

DESK_DEPOSIT_KEY = "F2"  # at IDLE: a deposit paid at the desk, not from a park card
MAX_PICKED_DAMAGES = 8  # protocol RentalReturn.damage: at most 8 codes
NEW_DEPOSIT_KEY = "0"  # on PICK_ORDER: none of these, a new deposit from the card
CHANNEL_NAMES = {Channel.CASH.value: "现金 cash", Channel.WECHAT.value: "微信 WeChat", Channel.ALIPAY.value: "支付宝 Alipay",
                 Channel.BANK.value: "银行卡 bank"}
ROUTE_NAMES = {**CHANNEL_NAMES, RefundRoute.CARD.value: "原卡 to the card", RefundRoute.ONLINE_WECHAT.value: "微信原路 WeChat",
               RefundRoute.ONLINE_ALIPAY.value: "支付宝原路 Alipay"}
CONDITION_KEYS = {"1": RentalCondition.INTACT.value, "2": RentalCondition.DAMAGED.value, "3": RentalCondition.LOST.value}


class RentalState(str, Enum):
    VOUCHER = "rental_voucher"        # a voucher's order on screen: scan the item's label
    PICK_ORDER = "rental_pick_order"  # which of the tapped card's paid deposits to hand out against
    PICK_TYPE = "rental_pick_type"    # which item type the deposit is for
    PICK_CHANNEL = "rental_pick_channel"  # a desk deposit: paid how
    INSPECT = "rental_inspect"        # an item back: intact, damaged or lost
    DAMAGE = "rental_damage"          # which damage, from the item type's list


# ---------------------------------------------------------------- events and effects
@dataclass(frozen=True)
class Scanned:
    """A whole code from the barcode scanner. ``now_ms``: the ledger-trusted wall time at the scan
    (None before the terminal has ever reached the ledger: a voucher's expiry cannot be checked)."""

    text: str
    now_ms: int | None = None


@dataclass(frozen=True)
class ScanFailed:
    """The scanner read something it could not make a code of (or went away): say so."""

    message: str


@dataclass(frozen=True)
class RedeemOffline:
    """Queue the hand-out of ``item_label`` against ``voucher`` as an offline redemption; the app
    answers OfflineApproved (then the receipt prints) or OfflineRefused."""

    voucher: str
    item_label: str
    supersedes_seq: int | None = None  # the online rental_out that got no answer, if any


@dataclass
class RentalInHand:
    """What the rental desk is doing beside ``Terminal.sale`` (whose ``card`` is the one the request
    names: the paying visitor's for a card deposit, else the staff member's)."""

    voucher_token: str = ""
    voucher: Voucher | None = None
    item_type: RentalType | None = None
    item_label: str = ""
    channel: str = ""
    condition: str = ""
    damage_codes: tuple = ()
    notice: str = ""
    out_since: str = ""  # a return by voucher: when and where the item went out
    payer: TappedCard | None = None  # a card tapped: the visitor's, while its deposits are looked up
    held_orders: tuple = ()  # PICK_ORDER: the card's paid deposits (protocol RentalOrder)
    is_expired: bool = False  # a scanned voucher past its expiry: good for a return only


def is_voucher(text: str) -> bool:
    return text.startswith(VOUCHER_PREFIX)


def key_text(event: KeyPressed) -> str:
    """The key's name as the keypad gives it ("1", "ENTER", "F2"), whether the event carries the
    keypad's Key or its value."""
    return getattr(event.key, "value", event.key)


def digit(event: KeyPressed) -> int | None:
    text = key_text(event)
    return int(text) if len(text) == 1 and text.isdigit() else None


@dataclass
class RentalTerminal(core.Terminal):
    """The rental desk's machine. The app sets ``stock`` from each signed config (the item types and
    labels of this station) and ``voucher_key`` (the ledger's, from the provisioning bundle)."""

    stock: RentalStock | None = None
    voucher_key: object = None  # nacl VerifyKey
    rental: RentalInHand | None = None

    # ------------------------------------------------------------ lookups in the stock
    def _item_type(self, item_type: str) -> RentalType | None:
        types = self.stock.item_types if self.stock else ()
        return next((known for known in types if known.item_type == item_type), None)

    def _item(self, label: str):
        items = self.stock.items if self.stock else ()
        return next((known for known in items if known.label == label), None)

    def _staff_sale(self, operation: str) -> Sale:
        """A request the staff member makes in their own name (``card`` is their staff card)."""
        return Sale(card=self._staff_card.record, uid_hex=self._staff_card.uid_hex, operation=operation)

    # ------------------------------------------------------------ entry point
    def handle(self, event) -> list:
        if isinstance(event, ScanFailed) and self.state in (State.IDLE, *RentalState):
            self.sale = None
            return self._message("扫码失败 Scan failed", (event.message,), tone="warning")
        return super().handle(event)

    def _go(self, state, timeout_ms: int | None = None) -> Show:
        if state in (State.IDLE, State.LOCKED):
            self.rental = None  # whatever the desk was doing is over
        return super()._go(state, timeout_ms)

    def _timed_out(self) -> list:
        if isinstance(self.state, RentalState):
            self.sale, self.rental = None, None
            return [self._go(State.IDLE)]
        return super()._timed_out()

    # ------------------------------------------------------------ IDLE
    def _on_idle(self, event) -> list:
        if isinstance(event, Scanned):
            return self._voucher_scanned(event) if is_voucher(event.text) else self._label_at_idle(event.text)
        if isinstance(event, CardTapped) and event.record is not None and event.record.kind != core.STAFF_CARD:
            return self._card_deposit(event)
        if isinstance(event, KeyPressed) and key_text(event) == DESK_DEPOSIT_KEY:
            if not self.is_online:
                return self._needs_ledger("押金 Deposit")
            self.sale = self._staff_sale(DepositDesk.TYPE)
            self.rental = RentalInHand()
            return self._pick_type()
        return super()._on_idle(event)

    def _voucher_scanned(self, event: Scanned) -> list:
        if self.voucher_key is None:
            return self._message("无法验券 Cannot check vouchers", ("无凭证公钥 No voucher key: re-provision",))
        if event.now_ms is None:
            return self._message("时间未知 Clock unknown", ("请先联网一次 Reach the ledger once",))
        is_expired = False
        try:
            voucher = verify_voucher(event.text, self.voucher_key, event.now_ms)
        except VoucherError as error:
            if error.code != "VOUCHER_EXPIRED" or not self.is_online:
                return self._message("凭证无效 Voucher refused", (reason_text(error.code),))
            # Genuine (the signature is checked before the expiry) but too old to hand out against:
            # its item may still be out, and the voucher brings it back.
            voucher, is_expired = parse_voucher(event.text)[0], True
        item_type = self._item_type(voucher.item_type)
        if item_type is None:
            return self._message("凭证无效 Voucher refused", (f"本点不租 Not rented here: {voucher.item_type}",))
        self.rental = RentalInHand(voucher_token=event.text, voucher=voucher, item_type=item_type, is_expired=is_expired)
        if not self.is_online:  # checked here: it may be handed out offline
            self.sale = self._staff_sale(RentalOut.TYPE)
            return [self._go(RentalState.VOUCHER, ENTRY_TIMEOUT_MS)]
        # Handed out already (at any desk)? Then it has come back; else it goes out now.
        self.sale = self._staff_sale(RentalOrders.TYPE)
        return self._send(RentalOrders, {"payer": None, "voucher": event.text})

    def _label_at_idle(self, label: str, *, out_since: str = "") -> list:
        item = self._item(label)
        if item is None:
            return self._message("未知标签 Unknown label", (label[:24],))
        if not self.is_online:
            return self._needs_ledger("归还 Return")
        self.sale = self._staff_sale(RentalReturn.TYPE)
        self.rental = RentalInHand(item_label=label, item_type=self._item_type(item.item_type), out_since=out_since)
        return [self._go(RentalState.INSPECT, ENTRY_TIMEOUT_MS)]

    def _card_deposit(self, event: CardTapped) -> list:
        if event.is_blocked:
            return self._message("卡已冻结 Card blocked", (reason_text("CARD_BLOCKED"),))
        if not self.is_online:
            return self._needs_ledger("押金 Deposit")
        # "Tap the park card that paid": the ledger says which of its deposits wait for an item
        # (paid at any desk); none, and the tap is a new deposit.
        payer = TappedCard(event.record, event.uid_hex)
        self.sale = self._staff_sale(RentalOrders.TYPE)
        self.rental = RentalInHand(payer=payer)
        return self._send(RentalOrders, {"payer": payer.ref(), "voucher": None})

    def _new_card_deposit(self) -> list:
        payer = self.rental.payer
        self.sale = Sale(card=payer.record, uid_hex=payer.uid_hex, operation=DepositCard.TYPE)
        self.rental = RentalInHand()
        return self._pick_type()

    def _orders_found(self, reply: RentalOrdersReply) -> list:
        rental = self.rental
        if rental.payer is not None:
            held = tuple(order for order in reply.orders if order.state == DepositState.HELD.value
                         and self._item_type(order.item_type) is not None)
            if not held:
                return self._new_card_deposit()
            if len(held) > 1:
                rental.held_orders = held
                return [self._go(RentalState.PICK_ORDER, ENTRY_TIMEOUT_MS)]
            return self._hand_out_order(held[0])
        if not reply.orders:
            self.sale, self.rental = None, None
            return self._message("押金已结清 Deposit closed", ("凭证已用完 This voucher's rental is over",))
        (order,) = reply.orders[:1]
        if order.state == DepositState.HELD.value and rental.is_expired:
            self.sale, self.rental = None, None
            return self._message("凭证无效 Voucher refused", (reason_text("VOUCHER_EXPIRED"),))
        if order.state == DepositState.HELD.value:
            self.sale = self._staff_sale(RentalOut.TYPE)
            return [self._go(RentalState.VOUCHER, ENTRY_TIMEOUT_MS)]
        # Out (handed out here or at another desk): the voucher brings it back, never a second item.
        where = order.redeemed.rsplit(" at ", 1)[-1] if order.redeemed else ""
        return self._label_at_idle(order.item_label,
                                   out_since=f"{short_time(self.config, order.out_ms)} {where}".strip())

    def _hand_out_order(self, order) -> list:
        """Hand out against one of the tapped card's deposits: its voucher as if it were scanned."""
        voucher, _, _ = parse_voucher(order.voucher)  # the ledger's own token, just sent signed
        self.sale = self._staff_sale(RentalOut.TYPE)
        self.rental = RentalInHand(voucher_token=order.voucher, voucher=voucher, item_type=self._item_type(order.item_type),
                                   notice="已付押金 Paid: scan the item's label")
        return [self._go(RentalState.VOUCHER, ENTRY_TIMEOUT_MS)]

    def _on_rental_pick_order(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if key_text(event) == NEW_DEPOSIT_KEY:
            return self._new_card_deposit()
        held = self.rental.held_orders
        if (number := digit(event)) is None or not 1 <= number <= len(held):
            return []
        return self._hand_out_order(held[number - 1])

    def _pick_type(self) -> list:
        if not (self.stock and self.stock.item_types):
            self.sale, self.rental = None, None
            return self._message("无租赁物品 Nothing to rent", ("等待总账配置 No stock from the ledger yet",))
        return [self._go(RentalState.PICK_TYPE, ENTRY_TIMEOUT_MS)]

    def _needs_ledger(self, what: str) -> list:
        return self._message("离线 OFFLINE", (f"{what}需联网", "Needs the ledger: try again online"), tone="warning")

    # ------------------------------------------------------------ deposits
    def _on_rental_pick_type(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        types = self.stock.item_types
        if (number := digit(event)) is None or not 1 <= number <= min(len(types), 9):
            return []
        item_type = self.rental.item_type = types[number - 1]
        self.sale.lines = (LineItem(item=f"押金 {item_type.name}", qty=1, unit_fen=item_type.deposit_fen),)
        if self.sale.operation == DepositDesk.TYPE:
            return [self._go(RentalState.PICK_CHANNEL, ENTRY_TIMEOUT_MS)]
        if self.sale.card.kind == CardKind.MEMBER and item_type.deposit_fen > self.rules.no_pin_limit_fen:
            # A member card pays a deposit as it pays a charge: its PIN above the park's no-PIN
            # limit, on the charge's own PIN screen (the ledger checks it the same way).
            self.sale.typed = ""
            return [self._go(State.CHARGE_PIN, PIN_TIMEOUT_MS)]
        return self._send_card_deposit(pin=None)

    def _send_card_deposit(self, pin: str | None) -> list:
        item_type = self.rental.item_type
        return self._send(DepositCard, {"item_type": item_type.item_type, "deposit_fen": item_type.deposit_fen}, pin=pin)

    def _on_charge_pin(self, event) -> list:
        if self.rental is None:
            return super()._on_charge_pin(event)
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        return self._send_card_deposit(pin=pin)

    def _on_rental_pick_channel(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        channel = DESK_CHANNELS.get(event.key)
        if channel is None:
            return []
        item_type, self.rental.channel = self.rental.item_type, getattr(channel, "value", channel)
        channel = self.rental.channel
        return self._send(DepositDesk, {"item_type": item_type.item_type, "deposit_fen": item_type.deposit_fen,
                                        "channel": channel, "payment_ref": ""})

    # ------------------------------------------------------------ hand-out
    def _on_rental_voucher(self, event) -> list:
        if isinstance(event, Scanned):
            if is_voucher(event.text):  # another visitor's voucher: start again with it
                self.sale, self.rental = None, None
                return self._voucher_scanned(event)
            return self._hand_out(event.text)
        return self._leave_entry(event) or []

    def _hand_out(self, label: str) -> list:
        rental, item = self.rental, self._item(label)
        wanted = rental.voucher.item_type
        if item is None:
            rental.notice = f"未知标签 Unknown {label[:16]}"
        elif item.item_type != wanted:
            rental.notice = f"类型不符 A {item.item_type}, not {wanted}"
        elif item.state in ("in_repair", "retired"):
            rental.notice = f"{label} 维修/停用 Not for rent"
        else:
            rental.item_label, rental.notice = label, ""
            if not self.is_online:
                self.state, self.deadline_ms = State.AUTHORIZING, None
                return [self._screen(), RedeemOffline(rental.voucher_token, label)]
            return self._send(RentalOut, {"voucher": rental.voucher_token, "item_label": label})
        self.deadline_ms = self.now_ms + ENTRY_TIMEOUT_MS
        return [self._screen()]

    # ------------------------------------------------------------ return
    def _on_rental_inspect(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        condition = CONDITION_KEYS.get(key_text(event))
        if condition is None:
            return []
        self.rental.condition = condition
        if condition == RentalCondition.DAMAGED.value:
            if not self.rental.item_type.damage:
                self.rental.notice = "无损坏项目 No damage list"
                return [self._screen()]
            return [self._go(RentalState.DAMAGE, ENTRY_TIMEOUT_MS)]
        return self._send_return()

    def _on_rental_damage(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        rental, damage = self.rental, self.rental.item_type.damage
        if event.key == ENTER:
            return self._send_return() if rental.damage_codes else []
        if (number := digit(event)) is not None and 1 <= number <= min(len(damage), MAX_PICKED_DAMAGES):
            code = damage[number - 1].code
            picked = rental.damage_codes
            rental.damage_codes = tuple(c for c in picked if c != code) if code in picked else picked + (code,)
        self.deadline_ms = self.now_ms + ENTRY_TIMEOUT_MS
        return [self._screen()]

    def _send_return(self) -> list:
        rental = self.rental
        return self._send(RentalReturn, {"item_label": rental.item_label, "condition": rental.condition,
                                         "damage": ",".join(rental.damage_codes)})

    # ------------------------------------------------------------ the ledger's answer
    def _on_authorizing(self, event) -> list:
        if self.rental is None:
            return super()._on_authorizing(event)
        if isinstance(event, NoAnswer):
            self.ledger_holds = event.ledger_reason
            if self.sale.operation == RentalOrders.TYPE:
                return self._orders_unanswered()
            if self.sale.operation == RentalOut.TYPE:
                # The voucher was checked here already: hand out offline in the attempt's place.
                return [RedeemOffline(self.rental.voucher_token, self.rental.item_label, supersedes_seq=self.sale.seq)]
            return self._uncertain("总账未答复 No answer yet")
        if isinstance(event, OfflineApproved):
            self.sale.seq = event.seq
            return self._receipt_then_print(self._hand_out_receipt(event.seq, event.time_ms, is_online=False,
                                                                   is_time_uncertain=event.is_time_uncertain))
        if isinstance(event, OfflineRefused):
            if self.sale.seq is not None:  # the online attempt is still queued and may yet be approved
                return self._uncertain(event.text)
            self.sale, self.rental = None, None
            return self._message("离线出借被拒 Offline hand-out refused", (event.text,))
        if isinstance(event, Answer):
            return self._answered(event.result)
        return []

    def _orders_unanswered(self) -> list:
        """A look-up the ledger did not answer in time (it stays queued, and changes nothing): a
        scanned voucher, already checked here, goes on to its hand-out, which the ledger decides;
        a card's deposits cannot be known, so the tap is not taken as a new deposit."""
        if self.rental.voucher is not None:
            self.sale = self._staff_sale(RentalOut.TYPE)
            return [self._go(RentalState.VOUCHER, ENTRY_TIMEOUT_MS)]
        self.sale, self.rental = None, None
        return self._message("总账未答复 No answer", ("押金未知 Deposits unknown: tap again",), tone="warning")

    def _answered(self, result) -> list:
        if self.rental is None:
            return super()._answered(result)
        self.sale.result = result
        if isinstance(result, RentalOrdersReply):
            return self._orders_found(result)
        if not result.is_approved:
            self.sale, self.rental = None, None
            lines = tuple(text for text in (reason_text(result.reason), getattr(result, "detail", "")) if text)
            return self._message("未成功 Refused", lines)
        if isinstance(result, DepositReply):
            self.rental.voucher_token = result.voucher
            self.rental.voucher, _, _ = parse_voucher(result.voucher)  # the ledger's own, just signed
            return self._receipt_then_print(self._deposit_receipt(result))
        if isinstance(result, RentalReturnReply):
            return self._receipt_then_print(self._return_receipt(result))
        return self._receipt_then_print(self._hand_out_receipt(result.seq, result.ledger_time_ms, is_online=True,
                                                               txn=result.txn))

    def _receipt_then_print(self, receipt: ReceiptData) -> list:
        self.last_receipt = receipt
        self.state, self.deadline_ms = State.PRINTING, None
        return [self._screen(), Print(receipt)]

    def _on_printing(self, event) -> list:
        is_deposit = self.sale is not None and self.sale.operation in (DepositCard.TYPE, DepositDesk.TYPE)
        if isinstance(event, PrintFinished) and is_deposit and self.rental is not None:
            # The visitor has paid and holds the voucher: hand the item out now, against it.
            remember = RememberReceipt(self.last_receipt.seq)
            self.sale = self._staff_sale(RentalOut.TYPE)
            return [remember, self._go(RentalState.VOUCHER, ENTRY_TIMEOUT_MS)]
        return super()._on_printing(event)

    def _on_done(self, event) -> list:
        if isinstance(event, Scanned) and self.operator:  # the next visitor's voucher or item, without a key
            # first (after a shift slip nobody is logged in: the scan waits for a login)
            self.sale = None
            self._go(State.IDLE)
            return self._on_idle(event)
        return super()._on_done(event)

    # ------------------------------------------------------------ receipts
    def _operator_text(self) -> str:
        return self.operator_name or self.operator or ""

    def _deposit_receipt(self, reply: DepositReply) -> ReceiptData:
        sale, rental = self.sale, self.rental
        is_card = sale.operation == DepositCard.TYPE
        return deposit_receipt(self.config, self.terminal_id, self._operator_text(), reply, operation=sale.operation,
                               item_name=rental.item_type.name, card_text=masked(sale.card.card_no) if is_card else "—",
                               paid_by=PAID_FROM_CARD if is_card else CHANNEL_NAMES[rental.channel])

    def _hand_out_receipt(self, seq: int, time_ms: int, *, is_online: bool, txn: int | None = None,
                          is_time_uncertain: bool = False) -> ReceiptData:
        rental = self.rental
        return rental_receipt(
            self.config, self.terminal_id, self._operator_text(), self.sale.operation, seq, time_ms, 0,
            is_online=is_online, is_time_uncertain=is_time_uncertain,
            ledger_transaction_id=None if txn is None else str(txn),
            detail_lines=(("订单 Order", rental.voucher.order), ("物品 Item", f"{rental.item_type.name} {rental.item_label}"),
                          ("押金 Deposit", format_fen(rental.item_type.deposit_fen))))

    def _return_receipt(self, reply: RentalReturnReply) -> ReceiptData:
        rental = self.rental
        name = rental.item_type.name if rental.item_type else reply.item_type
        return return_receipt(self.config, self.terminal_id, self._operator_text(), reply, item_name=name,
                              condition=rental.condition, picked=picked_damage(rental.item_type, rental.damage_codes))

    # ------------------------------------------------------------ screens
    def _screen(self) -> Show:
        state, rental = self.state, self.rental
        keys = "确认 ENTER  取消 CANCEL"
        if state == State.IDLE:
            footer = f"操作员 {self.operator_name}  {'ONLINE' if self.is_online else 'OFFLINE'}"
            if self.is_queue_nearly_full:
                return Show(self.config.station_name, ("离线队列将满 Queue nearly full", "请恢复网络 Get the station online"),
                            footer, "warning")
            # Two lines are what a 128 x 64 panel shows under the title.
            return Show(self.config.station_name, ("扫码 Scan: voucher/label", "刷卡/F2 押金 Deposit"), footer)
        if state == RentalState.PICK_ORDER:
            orders = tuple(f"{i + 1} {o.order} {self._item_type(o.item_type).name}" for i, o in enumerate(rental.held_orders))
            return Show("已付押金 Paid deposits", orders, "数字出借 digit · 0 新押金 new")
        if state == RentalState.PICK_TYPE:
            types = self.stock.item_types[:9]
            return Show("押金 Deposit for", tuple(f"{i + 1} {t.name} {format_fen(t.deposit_fen)}" for i, t in enumerate(types)),
                        "数字选择 digit · 取消 CANCEL")
        if state == RentalState.PICK_CHANNEL:
            return Show(f"押金 {format_fen(rental.item_type.deposit_fen)} 付款 Paid by", ("1现金 2微信", "3支付宝 4银行卡"),
                        "1 cash 2 WeChat 3 Alipay 4 bank")
        if state == RentalState.VOUCHER:
            voucher = rental.voucher
            lines = (f"{voucher.order} {rental.item_type.name}", rental.notice or "请扫物品标签 Scan label")
            return Show("凭证有效 Voucher OK", lines, f"押金 {format_fen(rental.item_type.deposit_fen)} · 取消 CANCEL",
                        "warning" if rental.notice else "ok")
        if state == RentalState.INSPECT:
            lines = (f"{rental.item_type.name} {rental.item_label}", rental.notice or "1完好 2损坏 3丢失")
            title = f"凭证已用 {rental.out_since} 归还?" if rental.out_since else "验收 Inspect"
            return Show(title, lines, "1 intact 2 damaged 3 lost", "warning" if rental.notice or rental.out_since else "normal")
        if state == RentalState.DAMAGE:
            lines = tuple(f"{'[x]' if fee.code in rental.damage_codes else '[ ]'} {i + 1} {fee.name} {format_fen(fee.fee_fen)}"
                          for i, fee in enumerate(rental.item_type.damage[:MAX_PICKED_DAMAGES]))
            return Show("损坏 Damage", lines, keys, "warning")
        if state == State.PRINTING and rental is not None:
            return Show("成功 Done" if self.last_receipt.is_online else "离线出借 Handed out OFFLINE", ("正在打印 Printing",),
                        f"操作员 {self.operator_name}", "ok", big=f"￥{format_fen(self.last_receipt.amount_fen)}")
        if state == State.DONE and rental is not None:
            title = "已出借 Handed out" if self.sale.operation == RentalOut.TYPE else "已归还 Returned"
            lines = (f"退款 Refund {format_fen(self.last_receipt.amount_fen)}",) if self.sale.operation == RentalReturn.TYPE else (
                f"{rental.item_type.name} {rental.item_label}",)
            return Show(title, lines + (self.last_receipt.receipt_number,), "F1 补打 Reprint", "ok")
        if state == State.AUTHORIZING and rental is not None and not self.is_online:
            return Show("离线出借 Offline hand-out", ("验签通过 Voucher signature OK", "正在记录 Recording"))
        return super()._screen()


# ---------------------------------------------------------------- receipts (also printed again after a crash)
PAID_FROM_CARD = "园区卡 park card"


def rental_receipt(config, terminal_id: str, operator: str, operation: str, seq: int, time_ms: int, amount_fen: int, *,
                   card_text: str = "—", lines=(), **rest) -> ReceiptData:
    """A rental desk's receipt. A hand-out or return names no visitor card (``card_text`` "—"): the
    order is its reference."""
    when = datetime.fromtimestamp(time_ms / 1000, ZoneInfo(config.time_zone))
    return ReceiptData(
        park_name=config.park_name, station_name=config.station_name, terminal_id=terminal_id, seq=seq,
        operator=operator, time_text=when.strftime("%Y-%m-%d %H:%M:%S"), masked_card_number=card_text,
        line_items=tuple(lines),
        amount_fen=amount_fen, title=core.RECEIPT_TITLES[operation], **rest)


def deposit_receipt(config, terminal_id: str, operator: str, reply: DepositReply, *, operation: str, item_name: str,
                    paid_by: str, card_text: str, is_reprint: bool = False) -> ReceiptData:
    """The deposit's receipt: what was paid, how, and the voucher as the QR code the desk scans."""
    return rental_receipt(
        config, terminal_id, operator, operation, reply.seq, reply.ledger_time_ms, reply.deposit_fen,
        card_text=card_text, lines=(LineItem(item=f"押金 {item_name}", qty=1, unit_fen=reply.deposit_fen),), ledger_transaction_id=reply.order,
        is_online=True, is_reprint=is_reprint, voucher=reply.voucher,
        detail_lines=(("订单 Order", reply.order), ("支付 Paid by", paid_by),
                      ("有效至 Valid until", short_time(config, reply.expires_ms))))


def picked_damage(item_type: RentalType | None, codes) -> tuple:
    """The damage picked at inspection as the item type's list names it: (name, fee in fen) pairs in
    the order picked; a code the desk's list no longer has is named by its code, its fee None."""
    known = {fee.code: fee for fee in (item_type.damage if item_type else ())}
    return tuple((known[code].name, known[code].fee_fen) if code in known else (code, None) for code in codes)


def return_receipt(config, terminal_id: str, operator: str, reply: RentalReturnReply, *, item_name: str,
                   condition: str = "", picked=(), is_reprint: bool = False) -> ReceiptData:
    """The itemised return: deposit, rental, late fee, damage, what went back and how, and what the
    deposit did not cover. ``condition`` and ``picked`` (picked_damage) are the desk's own return
    request, which the reply answers (its request_sha256): the damage lines name what was picked
    (the visitor asks "damage to what?") and a lost item's fee is called so."""
    if condition == RentalCondition.LOST.value:
        damage = [("丢失 Lost", format_fen(reply.damage_fen))]
    else:
        damage = [("损坏 Damage", format_fen(reply.damage_fen))]
        # Each picked entry with its fee when the desk's list adds up to what the ledger took; a list
        # changed since the desk last read it shows the names only, so no figure contradicts the total.
        fees = [fen for _, fen in picked]
        adds_up = None not in fees and sum(fees) == reply.damage_fen
        damage += [(f"  {name}", format_fen(fen) if adds_up else "") for name, fen in picked]
    details = [("订单 Order", reply.order), ("物品 Item", f"{item_name} {reply.item_label}"),
               ("借出 Out", short_time(config, reply.out_ms)), ("归还 Back", short_time(config, reply.returned_ms)),
               ("押金 Deposit", format_fen(reply.deposit_fen)), ("租金 Rental", format_fen(reply.rental_fen)),
               ("超时费 Late fee", format_fen(reply.late_fen)), *damage,
               ("退款 Refunded", format_fen(reply.refunded_fen)), ("退回 Method", ROUTE_NAMES[reply.route])]
    if reply.claim_fen:
        details.append(("欠款 Still owed", format_fen(reply.claim_fen)))
    return rental_receipt(config, terminal_id, operator, RentalReturn.TYPE, reply.seq, reply.ledger_time_ms,
                          reply.refunded_fen, is_online=True, is_reprint=is_reprint, ledger_transaction_id=reply.order,
                          detail_lines=tuple(details))


def short_time(config, time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, ZoneInfo(config.time_zone)).strftime("%m-%d %H:%M")
