"""The app's side of the rental desk (``terminal.rental``): barcode scans into events, the desk's
stock from the signed config into the machine, and an offline hand-out into the outbox.

Kept apart from ``terminal.app``, which every station runs: a station without a scanner never
imports the voucher code. ``terminal.app`` calls these functions and nothing else of it.
"""

import logging

from protocol.envelope import Purpose
from protocol.messages import CardRef, DepositCard, DepositReply, OfflineRentalOut, RentalReturnReply

from . import core, events
from .app_shared import QUEUE_FULL_TEXT, operator_name
from .config import RENTAL
from .errors import ScannerError, ScanUnreadableError, StorageFaultError
from .outbox import STORAGE_ERRORS, OutboxFullError
from .rental import (CHANNEL_NAMES, PAID_FROM_CARD, RedeemOffline, RentalTerminal, ScanFailed, Scanned,
                     deposit_receipt, picked_damage, return_receipt)

log = logging.getLogger("fieldpos.terminal.rental")


def make_machine(config, identity) -> core.Terminal:
    """The state machine for this terminal's station: a rental desk's, or the core's."""
    if config.mode != RENTAL:
        return core.Terminal(config, identity.terminal_id)
    # Provisioned before the ledger had a voucher key: the desk says so when a voucher is scanned.
    _, voucher_key = identity.ledger_keys.get(Purpose.VOUCHER.value, (None, None))
    return RentalTerminal(config, identity.terminal_id, voucher_key=voucher_key)


def follow_stock(machine, state) -> None:
    """A rental desk sells from the stock of the newest signed config (the link keeps it)."""
    if isinstance(machine, RentalTerminal):
        machine.stock = state.rental


class ScanReader:
    """The scanner's whole codes as machine events, stamped with the ledger-trusted time. A scanner
    that fails (unplugged) is reported once and then left alone until the terminal restarts, as the
    keypad is: a dead device must not turn every loop into an error screen."""

    def __init__(self, scanner, state):
        self.scanner = scanner
        self.state = state
        self.is_broken = False

    @classmethod
    def for_hardware(cls, hardware, state) -> "ScanReader | None":
        scanner = getattr(hardware, "scanner", None)
        return None if scanner is None else cls(scanner, state)

    def next_event(self):
        if self.is_broken:
            return None
        try:
            text = self.scanner.read_scan(timeout_s=0)
        except ScanUnreadableError as error:
            return ScanFailed(str(error).split("] ", 1)[-1])
        except ScannerError as error:
            log.error("scanner: %s", error)
            self.is_broken = True
            return ScanFailed(str(error).split("] ", 1)[-1])
        if text is None:
            return None
        now_ms, _ = self.state.now_ms()
        return Scanned(text, now_ms)


def redeem_offline(app, effect: RedeemOffline):
    """Queue a hand-out the desk approved on its own (the voucher's signature and expiry held) as an
    ``offline_rental_out``; the ledger records it at sync, and flags a voucher redeemed twice. One
    that replaces an unanswered online attempt names it (``supersedes_seq``): the ledger applies
    one of the two."""
    link, machine = app.link, app.machine
    now_ms, is_uncertain = link.state.now_ms()
    if now_ms is None:  # the voucher check needed the time too, so this is a bug guard, not a path
        return events.OfflineRefused("CLOCK_UNKNOWN", "时间未知 Clock unknown: reach the ledger once")
    sale, identity = machine.sale, link.identity
    card = CardRef(no=sale.card.card_no, issuance=sale.card.issuance, uid=sale.uid_hex)  # the staff member's
    try:
        if link.outbox.pending_count() >= link.outbox.max_pending:
            return events.OfflineRefused(OutboxFullError.code, QUEUE_FULL_TEXT)
        pending = link.enqueue(lambda seq: OfflineRentalOut(
            park=identity.park_id, terminal=identity.terminal_id, seq=seq, terminal_time_ms=now_ms,
            clock_uncertain=is_uncertain, operator=machine.operator, config_version=app.config.version, card=card,
            voucher=effect.voucher, item_label=effect.item_label, approved_ms=now_ms,
            supersedes_seq=effect.supersedes_seq), replaces_seq=effect.supersedes_seq)
    except OutboxFullError as error:
        return events.OfflineRefused(error.code, QUEUE_FULL_TEXT)
    except STORAGE_ERRORS as error:  # not queued: the item stays on the rack
        log.error("could not queue an offline hand-out: %s", error)
        return events.StorageFailed(StorageFaultError.code, is_sale_made=False)
    return events.OfflineApproved(pending.seq, now_ms, is_uncertain)


def is_owed(result) -> bool:
    """A deposit's voucher or a return's settlement: its receipt is printed again after a crash (the
    visitor needs the voucher's QR to collect the item, and the return's refund is money)."""
    return isinstance(result, (DepositReply, RentalReturnReply))


def owed_receipt(app, request, result):
    """The receipt of a rental reply that never printed (a crash, a power cut), marked REPRINT; None
    for any other request (the app's own owed receipts)."""
    if not is_owed(result):
        return None
    config, terminal_id = app.machine.config, app.identity.terminal_id
    operator = operator_name(config, request.operator)
    stock = app.link.state.rental
    item_type = next((known for known in (stock.item_types if stock else ()) if known.item_type == result.item_type), None)
    item_name = item_type.name if item_type else result.item_type
    if isinstance(result, RentalReturnReply):  # the request is the desk's own return: what was picked
        return return_receipt(config, terminal_id, operator, result, item_name=item_name, condition=request.condition,
                              picked=picked_damage(item_type, request.damage_codes), is_reprint=True)
    is_card = isinstance(request, DepositCard)
    return deposit_receipt(config, terminal_id, operator, result, operation=request.TYPE, item_name=item_name,
                           card_text=events.masked(request.card.no) if is_card else "—",
                           paid_by=PAID_FROM_CARD if is_card else CHANNEL_NAMES[request.channel], is_reprint=True)
