"""Rental kinds (issue 13): deposits held in their own pool, hand-out against a voucher, return.

A deposit order's money lives in its pool account ``deposit:<order>``: paid in (card, desk channel
or online payment) → held; handed out → out (no money moves); returned → the account is emptied,
captured for the rental price (station revenue), late fee and damage (their income accounts), the
rest released the way it came; never returned → forfeited by the park rule. TigerBeetle's pending
→ post / void is the model. What a deposit does not cover becomes a debt on the paying member
card or an open claim (``claim:<order>``), never silently written off.

``gather`` reads; ``decide`` is pure (the voucher key comes in through the View, and signing
Ed25519 is deterministic); ``Store.apply`` writes the Decision and its RentalEffect.
"""

from dataclasses import dataclass, field, replace

from protocol.messages import (MAX_RENTAL_ORDERS, Channel, DepositCard, DepositDesk, DepositReply, DepositState,
                               OfflineRentalOut, RentalCondition, RentalOrder, RentalOrders, RentalOrdersReply,
                               RentalOut, RentalReturn, RentalReturnReply, RentalType, RefundRoute)
from protocol.reasons import Outcome, Reason
from protocol.voucher import Voucher, VoucherError, make_voucher, parse_voucher, verify_voucher

from .common import channel_account, check_card, check_member_pin, nonzero, station_credit
from .decision import APPROVED, Alert, Answer, Decision, Notification, Posting, StationView, View, decline

POOL_PREFIX = "deposit:"
CLAIM_PREFIX = "claim:"
LATE_FEE_ACCOUNT = "income:rental_late"
DAMAGE_ACCOUNT = "income:rental_damage"
FORFEIT_ACCOUNT = "income:rental_forfeit"
# Transactions the ledger books itself (no terminal's request): a payment the provider notified,
# and a hold the park rule forfeited. Their evidence is the deposit order they belong to.
ONLINE_DEPOSIT_KIND = "deposit_online"
FORFEIT_KIND = "rental_forfeit"
# A provider refund refused for good and paid in cash at the desk instead (ledger.rentals_online);
# its evidence is the refund request that names it (refund_request.cash_txn).
REFUND_CASH_KIND = "refund_cash"
# The only transactions that may post to a ``deposit:`` account (Store.book refuses the rest).
POOL_KINDS = frozenset({DepositCard.TYPE, DepositDesk.TYPE, RentalReturn.TYPE, ONLINE_DEPOSIT_KIND, FORFEIT_KIND})
# A voucher is for today's visit and the next two; after that the deposit waits for the desk.
VOUCHER_VALID_MS = 3 * 24 * 3_600_000
MINUTE_MS, HOUR_MS = 60_000, 3_600_000


class PoolIsolationError(AssertionError):
    """A transaction of another kind tried to post to the deposit pool: a bug, refused."""


def order_id(order_no: int) -> str:
    return f"D{order_no}"


def order_no_of(order: str) -> int | None:
    return int(order[1:]) if order[:1] == "D" and order[1:].isdigit() and len(order) <= 16 else None


def pool_account(order_no: int) -> str:
    return f"{POOL_PREFIX}{order_id(order_no)}"


def check_pool_postings(kind: str, postings) -> None:
    """Raise PoolIsolationError if ``kind`` may not touch the deposit pool and a posting does."""
    if kind not in POOL_KINDS and any(p.account.startswith(POOL_PREFIX) for p in postings):
        raise PoolIsolationError(f"a {kind} transaction may not post to the deposit pool")


# ---------------------------------------------------------------- what a rule reads
@dataclass(frozen=True, slots=True)
class OrderView:
    order_no: int
    item_type: str
    deposit_fen: int
    route: str              # protocol.messages.RefundRoute: how it was paid, and so how it goes back
    payer_account: str      # the card account, or the channel account
    payment_ref: str
    transaction_id: str
    is_member: bool
    state: str              # held, out, closed, forfeited
    held_ms: int
    expires_ms: int
    item_label: str | None
    station_id: str | None
    out_ms: int | None

    @property
    def order(self) -> str:
        return order_id(self.order_no)

    @property
    def is_open(self) -> bool:
        return self.state in ("held", "out")


@dataclass(frozen=True, slots=True)
class ItemView:
    label: str
    station_id: str
    item_type: str
    state: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalView:
    now_ms: int
    item_type: RentalType | None = None
    order: OrderView | None = None
    item: ItemView | None = None
    next_order_no: int = 0
    voucher_key: object = None           # ledger.keys.LedgerKey of the voucher purpose
    first_redemption: str | None = None  # "first redeemed <time> at <terminal>", when redeemed before
    flagged_label: bool = False          # return: the label is out on a second (offline) redemption
    payer_phone: str | None = None       # return: the paying member's phone, to tell them
    station: StationView | None = None   # return: the station that handed the item out
    open_orders: tuple = ()              # rental_orders: the OrderViews found (a card's, or a voucher's)
    redemptions: dict = field(default_factory=dict)  # rental_orders: order no -> "first redeemed ... at ..." once out
    is_superseded: bool = False          # hand-out: an online attempt the desk replaced by an offline one
    earlier_outcome: str | None = None   # offline hand-out: the outcome of the online attempt it supersedes


# ---------------------------------------------------------------- what a rule decides, for the store
@dataclass(frozen=True, slots=True)
class NewHold:
    order_no: int
    item_type: str
    deposit_fen: int
    route: str
    payer_account: str
    payment_ref: str
    transaction_id: str
    is_member: bool
    expires_ms: int


@dataclass(frozen=True, slots=True)
class HandOut:
    order_no: int
    item_label: str
    station_id: str
    redeemed_ms: int
    is_offline: bool
    is_flagged: bool     # redeemed before: recorded, the order keeps its first hand-out


@dataclass(frozen=True, slots=True)
class Close:
    order_no: int | None  # None: a flagged second item came back (no deposit of its own)
    item_label: str
    item_state: str       # available, in_repair or retired
    condition: str
    rental_fen: int = 0
    late_fen: int = 0
    damage_fen: int = 0
    refunded_fen: int = 0
    claim_fen: int = 0
    claim_card_account: str | None = None
    refund_to_provider: str | None = None  # wechat / alipay: a refund request for the provider


@dataclass(frozen=True, slots=True)
class Forfeit:
    order_no: int
    item_label: str | None


# ---------------------------------------------------------------- pure pieces
@dataclass(frozen=True, slots=True)
class Charges:
    rental_fen: int
    late_fen: int
    damage_fen: int

    @property
    def total(self) -> int:
        return self.rental_fen + self.late_fen + self.damage_fen


def _started(ms: int, unit_ms: int) -> int:
    return -(-ms // unit_ms) if ms > 0 else 0


def charges_for(item_type: RentalType, out_ms: int, back_ms: int, condition: str, damage_codes=()) -> Charges:
    """What a rental costs: the price once per session or per started hour (at least one), a late
    fee per started hour beyond the allowed time and its grace, and the damage picked (or the
    lost-item fee instead). Raises KeyError for a damage code not in the type's list."""
    out = max(0, back_ms - out_ms)
    if item_type.price_per == "hour":
        rental = item_type.price_fen * max(1, _started(out, HOUR_MS))
    else:
        rental = item_type.price_fen
    late = 0
    if item_type.allowed_minutes:
        over = out - (item_type.allowed_minutes + item_type.grace_minutes) * MINUTE_MS
        late = item_type.late_fee_per_hour_fen * _started(over, HOUR_MS)
    if condition == RentalCondition.LOST:
        damage = item_type.lost_fee_fen
    else:
        fees = {fee.code: fee.fee_fen for fee in item_type.damage}
        damage = sum(fees[code] for code in damage_codes)
    return Charges(rental, late, damage)


def _hold(park: str, deposit_fen: int, view: View, *, route: str, payer_account: str, payment_ref: str,
          transaction_id: str = "", is_member: bool = False) -> Decision:
    """Hold ``deposit_fen`` from ``payer_account`` in a new order's pool account, with its voucher."""
    rental: RentalView = view.rental
    item_type = rental.item_type
    if item_type is None:
        return decline(Reason.UNKNOWN_ITEM_TYPE)
    if deposit_fen != item_type.deposit_fen:
        return decline(Reason.DEPOSIT_MISMATCH)  # a stale config (or price list) must not take another sum
    order_no = rental.next_order_no
    expires_ms = (rental.now_ms + VOUCHER_VALID_MS) // 1000 * 1000
    key = rental.voucher_key
    token = make_voucher(Voucher(park, order_id(order_no), item_type.item_type, expires_ms, key.key_id),
                         key.signing_key)
    return Decision(
        reason=Reason.OK, amount_fen=deposit_fen,
        postings=(Posting(payer_account, "fen", -deposit_fen), Posting(pool_account(order_no), "fen", deposit_fen)),
        rental=NewHold(order_no, item_type.item_type, deposit_fen, route, payer_account, payment_ref, transaction_id,
                       is_member, expires_ms),
        answer=Answer(DepositReply, dict(order=order_id(order_no), item_type=item_type.item_type,
                                         deposit_fen=item_type.deposit_fen, voucher=token, expires_ms=expires_ms)),
    )


def decide_deposit_card(request: DepositCard, view: View) -> Decision:
    """A deposit from the park card: its real money only (bonus credit is not a deposit). A member
    card pays it as it pays a charge: with its PIN above the park's no-PIN limit, the same wrong-PIN
    count and lock (an anonymous card has no PIN)."""
    card = view.card
    pin = APPROVED
    if card.kind == "member":
        pin = check_member_pin(request, view, amount_fen=request.deposit_fen)
        if not pin.is_approved:
            return pin
    if view.rental.item_type is not None and card.fen < view.rental.item_type.deposit_fen:
        return decline(Reason.INSUFFICIENT_FUNDS).after(pin)
    return _hold(request.park, request.deposit_fen, view, route=RefundRoute.CARD.value,
                 payer_account=request.card.account, payment_ref="", is_member=card.kind == "member").after(pin)


def decide_deposit_desk(request: DepositDesk, view: View) -> Decision:
    return _hold(request.park, request.deposit_fen, view, route=Channel(request.channel).value,
                 payer_account=channel_account(request.channel), payment_ref=request.payment_ref)


def decide_online_deposit(view: View, *, park: str, provider: str, provider_order: str, transaction_id: str,
                          amount_fen: int) -> Decision:
    """A deposit the payment provider notified as paid (no terminal asked): as a desk deposit
    through the provider's channel account, refunded to the provider's original payment."""
    return _hold(park, amount_fen, view, route=f"online_{provider}", payer_account=channel_account(provider),
                 payment_ref=provider_order, transaction_id=transaction_id)


def _hand_out(request: RentalOut, view: View, *, redeemed_ms: int, is_offline: bool) -> Decision:
    rental: RentalView = view.rental
    key = rental.voucher_key
    try:
        # Offline, the terminal checked the expiry at the hand-out: the ledger checks it at that time too.
        voucher = verify_voucher(request.voucher, key.signing_key.verify_key, redeemed_ms)
    except VoucherError as error:
        return decline(Reason(error.code))
    order, item = rental.order, rental.item
    if voucher.park != request.park or order is None:
        return decline(Reason.VOUCHER_INVALID)
    if item is None:
        return decline(Reason.ITEM_UNKNOWN)
    if item.item_type != order.item_type:
        return decline(Reason.ITEM_WRONG_TYPE)
    if is_offline:
        # It happened: the visitor has the item. A second redemption is recorded and flagged.
        flagged = rental.first_redemption is not None or not order.is_open
        alerts = (Alert("VOUCHER_REDEEMED_TWICE",
                        f"voucher {order.order} {rental.first_redemption or 'after its deposit closed'}; "
                        f"again offline at {request.terminal} seq {request.seq} (item {item.label})"),) if flagged else ()
        return Decision(reason=Reason.OK, alerts=alerts,
                        rental=HandOut(order.order_no, item.label, item.station_id, redeemed_ms, True, flagged))
    if rental.first_redemption is not None:
        return replace(decline(Reason.VOUCHER_USED), detail=f"voucher {order.order} {rental.first_redemption}")
    if order.state != "held":
        return decline(Reason.DEPOSIT_NOT_HELD)
    if item.state != "available":
        return decline(Reason.ITEM_NOT_AVAILABLE)
    return Decision(reason=Reason.OK, rental=HandOut(order.order_no, item.label, item.station_id, redeemed_ms, False, False))


def decide_rental_out(request: RentalOut, view: View) -> Decision:
    if view.rental.is_superseded:
        # The desk gave up waiting for this attempt and handed the item out offline: that one counts.
        return decline(Reason.SUPERSEDED)
    return _hand_out(request, view, redeemed_ms=view.rental.now_ms, is_offline=False)


def decide_offline_rental_out(request: OfflineRentalOut, view: View) -> Decision:
    """As a sale's ``offline_charge``: with ``supersedes_seq``, at most one of the pair is applied,
    so one hand-out is never recorded twice (nor flagged as a voucher redeemed twice)."""
    if request.supersedes_seq is None:
        return _hand_out(request, view, redeemed_ms=request.approved_ms, is_offline=True)
    if view.rental.earlier_outcome == Outcome.APPROVED:
        return Decision(reason=Reason.SAME_SALE)  # the online attempt was approved, its answer lost
    decision = _hand_out(request, view, redeemed_ms=request.approved_ms, is_offline=True)
    return replace(decision, supersedes=(request.terminal, request.supersedes_seq, request.seq))


def decide_rental_orders(request: RentalOrders, view: View) -> Decision:
    """The open orders of the card that paid (after the common checks on it, but the limits: a lost
    card or a copy gets no voucher) or of one voucher (its signature checked, not its expiry: an
    item out past it still comes back). Each carries its voucher, made again: signing is
    deterministic, so it is the token the deposit's receipt printed."""
    rental: RentalView = view.rental
    if request.payer is not None:
        if (refusal := check_card(replace(request, card=request.payer), view.card,
                                  skips=frozenset({"limits"}))) is not None:
            return refusal
    else:
        try:
            voucher = verify_voucher(request.voucher, rental.voucher_key.signing_key.verify_key, 0)
        except VoucherError as error:
            return decline(Reason(error.code))
        if voucher.park != request.park:
            return decline(Reason.VOUCHER_INVALID)
    key = rental.voucher_key
    orders = tuple(RentalOrder(
        order=order.order, item_type=order.item_type, deposit_fen=order.deposit_fen,
        state=DepositState.OUT.value if order.state == "out" else DepositState.HELD.value,
        voucher=make_voucher(Voucher(request.park, order.order, order.item_type, order.expires_ms, key.key_id),
                             key.signing_key),
        item_label=order.item_label if order.state == "out" else None,
        out_ms=order.out_ms if order.state == "out" else None,
        redeemed=rental.redemptions.get(order.order_no)) for order in rental.open_orders)
    return Decision(reason=Reason.OK, answer=Answer(RentalOrdersReply, {"orders": orders}))


def _item_state_after(condition: str) -> str:
    return {"intact": "available", "damaged": "in_repair", "lost": "retired"}[condition]


def decide_rental_return(request: RentalReturn, view: View) -> Decision:
    rental: RentalView = view.rental
    item, order, now_ms = rental.item, rental.order, rental.now_ms
    if item is None:
        return decline(Reason.ITEM_UNKNOWN)
    if order is None:
        if rental.flagged_label:
            # The second item of a voucher redeemed twice offline: it comes back; its money is the
            # flagged redemption's business (exposure report), not this deposit's.
            return Decision(reason=Reason.OK, alerts=(Alert("VOUCHER_REDEEMED_TWICE",
                                                            f"item {item.label} of a twice-redeemed voucher returned"),),
                            rental=Close(None, item.label, _item_state_after(request.condition), request.condition))
        return decline(Reason.ITEM_NOT_OUT)
    try:
        charges = charges_for(rental.item_type, order.out_ms, now_ms, request.condition, request.damage_codes)
    except KeyError:
        return decline(Reason.DAMAGE_CODE_UNKNOWN)
    deposit = order.deposit_fen
    covered = min(deposit, charges.total)
    refunded, claim = deposit - covered, charges.total - covered
    route = order.route
    refund_account = order.payer_account  # the card, or the channel it came through: 原路退回
    claim_card = order.payer_account if claim and order.is_member else None
    postings = nonzero(
        Posting(pool_account(order.order_no), "fen", -deposit),
        *station_credit(charges.rental_fen, rental.station),
        Posting(LATE_FEE_ACCOUNT, "fen", charges.late_fen),
        Posting(DAMAGE_ACCOUNT, "fen", charges.damage_fen),
        Posting(refund_account, "fen", refunded),
        # Not covered: a debt on the member's card, else a claim the park holds against the renter.
        Posting(claim_card or f"{CLAIM_PREFIX}{order.order}", "fen", -claim),
    )
    notification = None
    if order.is_member and rental.payer_phone is not None:
        card_no = order.payer_account.split(":", 1)[1].split("/", 1)[0]
        notification = Notification(card_no, rental.payer_phone, RentalReturn.TYPE, refunded, order.payer_account)
    return Decision(
        reason=Reason.OK, amount_fen=refunded, postings=postings, notification=notification,
        allow_negative=claim_card is not None,
        rental=Close(order.order_no, item.label, _item_state_after(request.condition), request.condition,
                     charges.rental_fen, charges.late_fen, charges.damage_fen, refunded, claim, claim_card,
                     route.removeprefix("online_") if route.startswith("online_") and refunded else None),
        answer=Answer(RentalReturnReply, dict(
            order=order.order, item_type=order.item_type, item_label=item.label, out_ms=order.out_ms,
            returned_ms=now_ms, deposit_fen=deposit, rental_fen=charges.rental_fen, late_fen=charges.late_fen,
            damage_fen=charges.damage_fen, refunded_fen=refunded, claim_fen=claim, route=route)),
    )


def decide_forfeit(order: OrderView, now_ms: int, older_than_ms: int) -> Decision:
    """The park rule for a hold never closed: after ``older_than_ms`` the deposit is forfeited to
    the park's income (audited by an alert naming the order), and an item still out is retired."""
    if not order.is_open or now_ms - order.held_ms < older_than_ms:
        return decline(Reason.DEPOSIT_NOT_HELD)
    return Decision(
        reason=Reason.OK, amount_fen=order.deposit_fen,
        postings=(Posting(pool_account(order.order_no), "fen", -order.deposit_fen),
                  Posting(FORFEIT_ACCOUNT, "fen", order.deposit_fen)),
        alerts=(Alert("DEPOSIT_FORFEITED", f"deposit {order.order} of {order.deposit_fen} fen ({order.route}) held "
                                           f"since {order.held_ms} forfeited by the park rule"),),
        rental=Forfeit(order.order_no, order.item_label if order.state == "out" else None),
    )


# ---------------------------------------------------------------- gathering (reads only)
def _voucher_key(store):
    key = getattr(store, "voucher_key", None)
    if key is None:
        raise LookupError("the ledger's voucher key is not loaded (Intake hands it to the store)")
    return key


def gather_deposit(request, store, terminal, now_ms: int, pins) -> View:
    from .reads import card_reads  # the paying card, for deposit_card's common checks

    card = store.card(request.park, request.card.no) if request.TYPE == DepositCard.TYPE else None
    reads = card_reads(request, store, now_ms, card) if card is not None else {"card": None}
    if card is not None and card.kind == "member":  # its PIN, against the park's no-PIN limit
        reads |= {"member": store.member(request.park, request.card.no), "park_rules": store.park_rules(request.park)}
    return View(terminal=terminal, pins=pins, **reads, rental=RentalView(
        now_ms=now_ms, item_type=store.rental_type(request.park, request.item_type),
        next_order_no=store.next_deposit_order_no(request.park), voucher_key=_voucher_key(store)))


def gather_online_deposit(store, park_id: str, item_type: str, now_ms: int) -> View:
    return View(rental=RentalView(now_ms=now_ms, item_type=store.rental_type(park_id, item_type),
                                  next_order_no=store.next_deposit_order_no(park_id),
                                  voucher_key=_voucher_key(store)))


def gather_rental_out(request: RentalOut, store, terminal, now_ms: int, pins) -> View:
    order = first = None
    try:
        voucher, _, _ = parse_voucher(request.voucher)  # which order: the rule checks the signature
        order_no = order_no_of(voucher.order)
        order = None if order_no is None else store.deposit_order(request.park, order_no)
    except VoucherError:
        pass
    if order is not None:
        first = store.first_redemption(request.park, order.order_no)
    superseded, earlier = False, None
    if isinstance(request, OfflineRentalOut):
        if request.supersedes_seq is not None:
            stored = store.stored_outcome(request.terminal, request.supersedes_seq)
            earlier = None if stored is None else stored[0]
    else:
        superseded = store.superseded_by(request.terminal, request.seq) is not None
    return View(terminal=terminal, pins=pins, rental=RentalView(
        now_ms=now_ms, order=order, item=store.rental_item(request.park, request.item_label),
        voucher_key=_voucher_key(store), first_redemption=first, is_superseded=superseded, earlier_outcome=earlier))


def gather_rental_return(request: RentalReturn, store, terminal, now_ms: int, pins) -> View:
    order = store.deposit_out_by_label(request.park, request.item_label)
    phone = station = None
    if order is not None:
        if order.is_member:
            member = store.member(request.park, order.payer_account.split(":", 1)[1].split("/", 1)[0])
            phone = member.phone if member is not None else None
        station = store.station(request.park, order.station_id)
    return View(terminal=terminal, pins=pins, rental=RentalView(
        now_ms=now_ms, order=order, item=store.rental_item(request.park, request.item_label),
        item_type=None if order is None else store.rental_type(request.park, order.item_type),
        flagged_label=order is None and store.is_flagged_out(request.park, request.item_label),
        payer_phone=phone, station=station))


def gather_rental_orders(request: RentalOrders, store, terminal, now_ms: int, pins) -> View:
    card, orders = None, ()
    if request.payer is not None:
        card = store.card(request.park, request.payer.no)
        orders = tuple(store.open_deposits_of(request.park, request.payer.account, MAX_RENTAL_ORDERS))
    else:
        try:
            order_no = order_no_of(parse_voucher(request.voucher)[0].order)  # the rule checks the signature
        except VoucherError:
            order_no = None
        order = None if order_no is None else store.deposit_order(request.park, order_no)
        orders = (order,) if order is not None and order.is_open else ()
    redemptions = {order.order_no: store.first_redemption(request.park, order.order_no)
                   for order in orders if order.state == "out"}
    return View(terminal=terminal, pins=pins, card=card, rental=RentalView(
        now_ms=now_ms, open_orders=orders, redemptions=redemptions, voucher_key=_voucher_key(store)))


RULES = {
    RentalOrders.TYPE: (gather_rental_orders, decide_rental_orders),
    DepositCard.TYPE: (gather_deposit, decide_deposit_card),
    DepositDesk.TYPE: (gather_deposit, decide_deposit_desk),
    RentalOut.TYPE: (gather_rental_out, decide_rental_out),
    OfflineRentalOut.TYPE: (gather_rental_out, decide_offline_rental_out),
    RentalReturn.TYPE: (gather_rental_return, decide_rental_return),
}
