"""The terminal's main loop: hardware and network events into the state machine, effects out.

One thread. Each turn reads a key (short bounded wait), polls the card reader, ticks the clock and
carries out what ``terminal.core`` asks: show a screen, submit a request through the ledger link
and wait for its signed Result, print a receipt, remember that it printed.

At boot it first finishes what a crash interrupted: a request answered but whose receipt never
printed gets its receipt now (marked REPRINT); a request still waiting is re-sent with the same
bytes until the ledger answers.

The till never hangs, and never waits inside a turn: a request is handed to the link, which
publishes it and re-sends the same bytes when due, and each turn asks, without blocking, whether
the Result is in (the turn's idle moment waits for it instead of a key while it is first awaited).
If none is in after WAIT_FOR_RESULT_S the machine hears NoAnswer and decides (an offline sale in its
place, or the pending screen); the turns keep asking until the ledger answers. A write the SD card refuses
(full or failing) becomes a StorageFailed event with a screen the cashier can leave; a receipt that
printed but could not be recorded as printed is remembered in memory and not printed again.
"""

from datetime import datetime
import logging
from zoneinfo import ZoneInfo

from protocol import envelope
from protocol.card_record import RECORD_BLOCKS, CardRecord, CardRecordError, read_record, sector_key
from protocol.envelope import Purpose
from protocol.kinds import KINDS
from protocol.messages import (REPLY_TYPES, REQUEST_TYPES, CardBalance, CardKind, CardRef, CardReturn, Charge, LineItem,
                               OfflineCharge, PrinterState, Reversal, ShiftSlip, TopUp, Void, parse)

from . import core, desk, events, offline, rental, rental_app
from .app_shared import QUEUE_FULL_TEXT, operator_name
from .ecard_scan import ECardScans
from .events import StorageFailed
from .config import DESK, StationConfig
from .errors import CardAuthError, PaperOutError, PrinterCoverOpenError, StorageFaultError, TerminalError
from .hal.card_reader import TRANSPORT_KEY, CardUid, SectorKey
from .net import LedgerLink
from .outbox import STORAGE_ERRORS, OutboxFullError
from .shift_slip import slip_receipt

log = logging.getLogger("fieldpos.terminal")

KEY_WAIT_S = 0.05          # one loop turn when idle: 20 card polls a second, ~12 SPI transfers each
WAIT_FOR_RESULT_S = 4.0    # then the offline policy decides, or the screen says "waiting"
ANSWER_WAIT_S = KEY_WAIT_S  # a turn's idle moment while the first answer is awaited (it wakes when it is in)
OWED_RECEIPTS_CHECK_MS = 2_000
RECORD_TRAILERS = (7, 11)  # the trailers of sectors 1 and 2, which hold the card record
# NXP's transport access bits (FF 07 80): key A reads and writes the data blocks and the trailer.
TRANSPORT_ACCESS_BYTES = bytes((0xFF, 0x07, 0x80, 0x69))
# How far back in the desk's outbox a blank card's unwritten record is looked for (one shift's work).
UNWRITTEN_LOOKBACK = 500
# Warn on the idle screen (and in the heartbeat's queue depth) when the outbox is this full.
QUEUE_WARNING_FRACTION = 0.8
# States in which the machine waits for the Result of the request in flight.
WAITING_STATES = (events.State.AUTHORIZING, events.State.UNCERTAIN, events.State.OPENING_SHIFT,
                  events.State.CLOSING_SHIFT)


class TerminalApp:
    def __init__(self, link: LedgerLink, config: StationConfig, hardware, *, render=None, storage=None):
        self.link = link
        self.identity = link.identity
        self.config = config
        self.hardware = hardware
        self.machine = rental_app.make_machine(config, self.identity)
        self._scans = rental_app.ScanReader.for_hardware(hardware, self.link.state)  # a rental desk's scanner
        # A station's or desk's scanner reads members' e-card QRs as card taps (terminal.ecard_scan).
        self._ecards = ECardScans(self.identity.ledger_key(Purpose.CARD_RECORD.value)[1], self.identity.park_id,
                                  self.link.state, hardware.clock)
        self.screen: events.Show | None = None
        self._render = render
        self._record_key = self.identity.ledger_key(Purpose.CARD_RECORD.value)[1]
        self.is_running = True
        self.storage = storage  # terminal.hal.storage.Storage: a nearly full SD card warns like a full queue
        self.key_wait_s = KEY_WAIT_S
        self._owed_checked_ms = 0
        self._zone = ZoneInfo(config.time_zone)
        self.answer_wait_s = ANSWER_WAIT_S
        self._in_flight = None      # the PendingRequest the machine waits for, asked about turn by turn
        self._is_first_wait = False  # no answer yet and WAIT_FOR_RESULT_S not yet over: NoAnswer not told
        self._balance_query = None  # (card number, PendingRequest): the tapped card's balance, asked, not awaited
        # Receipts that printed but whose "printed" mark the disk refused: never printed again by
        # this process; the mark is written when the disk takes it.
        self._printed_unrecorded: set[int] = set()
        # Sales the cashier left pending (UNCERTAIN, after its time-out): a refusal is told when it comes.
        self._parked: set[int] = set()

    # ------------------------------------------------------------ boot
    def boot(self) -> None:
        """Connect, learn the highest seq, and finish what a crash left undone."""
        try:
            self.link.connect()
            self.link.sync_seq()
        except TerminalError as error:
            log.warning("starting without the ledger: %s", error)
        except STORAGE_ERRORS as error:  # the seq counter could not be moved: every sale will say so too
            log.error("storage fault at boot: %s", error)
        self.machine.is_online = self.link.is_connected
        self.machine.park_rules = self.link.state.rules  # kept from the last signed config, if any
        self.machine.follow_ledger(self.link.state.station, self.link.state.staff)
        self.recover()
        self._apply(self.machine.start(self.hardware.clock.monotonic_ms()))

    def recover(self) -> None:
        """Print the receipts owed (see ``owed_receipts``) after a crash or power cut. Re-sending
        what is still pending is the link's uploader's job, so a boot without network does not
        wait for the ledger."""
        self._record_printed_again()
        try:
            owed = list(owed_receipts(self.link.outbox, self.hardware.clock.now_ms()))
        except STORAGE_ERRORS as error:
            log.error("could not read the owed receipts: %s", error)
            return
        for seq, request, result in owed:
            if seq in self._printed_unrecorded:
                continue  # it printed; only the record of it is missing (at most once per action, never in a loop)
            receipt = (rental_app.owed_receipt(self, request, result) or self._owed_slip(request, result)
                       or self._owed_receipt(seq, request, result))
            if not isinstance(self._print(receipt), events.PrintFinished):
                continue  # paper out: it stays owed and is tried again
            self._remember_printed(seq)

    def _owed_slip(self, request, result):
        """The shift slip of a handover answered after the till stopped waiting (or before a crash)."""
        if not isinstance(result, ShiftSlip):
            return None
        return slip_receipt(self.machine.config, self.identity.terminal_id, self._operator_name(request.operator),
                            request.card.no, result, is_reprint=True)

    def _owed_receipt(self, seq: int, request, result):
        # Only the number is printed (masked); the kind does not matter for the receipt.
        card = CardRecord(request.card.no, request.card.issuance, CardKind.TEMPORARY.value, self.identity.park_id)
        lines, title = owed_receipt_lines(request, result)
        operator = self._operator_name(request.operator)
        if result is None:  # an offline sale, approved by this terminal
            return core.make_offline_receipt(self.machine.config, self.identity.terminal_id, operator, card, lines,
                                             seq, request.approved_ms, request.clock_uncertain, is_reprint=True)
        if isinstance(request, (Void, Reversal)):
            lines = ()  # the amount prints negative under what it undoes, not as an item line
        return core.make_receipt(self.machine.config, self.identity.terminal_id, operator, card, lines, result,
                                 is_reprint=True, title=title, **self._owed_receipt_parts(request))

    def _owed_receipt_parts(self, request) -> dict:
        """What an owed receipt says beyond its line, from the request itself: how the money moved;
        for a void or reversal the receipt it undoes and the supervisor, its amount negative."""
        parts: dict = {}
        if getattr(request, "channel", "") in events.CHANNEL_TEXT:
            label = desk.REFUND_BY if isinstance(request, CardReturn) else desk.PAID_BY
            parts["method"] = (label, events.CHANNEL_TEXT[request.channel])
        if isinstance(request, (Void, Reversal)):
            parts |= {"undoes_receipt_number": f"{self.identity.terminal_id}-{request.original_seq}",
                      "approved_by": self.machine.supervisor_text(request.supervisor_card_no),
                      "amount_fen": request.amount_fen}
        return parts

    def _remember_printed(self, seq: int) -> StorageFailed | None:
        """Record that a receipt is out; if the disk refuses, remember it in memory instead."""
        try:
            self.link.outbox.mark_printed(seq, self.hardware.clock.now_ms())
            return None
        except STORAGE_ERRORS as error:
            log.error("receipt %d printed but not recorded: %s", seq, error)
            self._printed_unrecorded.add(seq)
            return StorageFailed(StorageFaultError.code, is_sale_made=True, detail="已打印 Printed")

    def _record_printed_again(self) -> None:
        for seq in sorted(self._printed_unrecorded):
            try:
                self.link.outbox.mark_printed(seq, self.hardware.clock.now_ms())
            except STORAGE_ERRORS:
                return  # still refused; the receipt is not printed again meanwhile
            self._printed_unrecorded.discard(seq)

    def _operator_name(self, staff_id: str) -> str:
        return operator_name(self.machine.config, staff_id)

    # ------------------------------------------------------------ the loop
    def run(self, *, stop=None) -> None:
        self.boot()
        while self.is_running and not (stop is not None and stop.is_set()):
            self.turn()

    def turn(self) -> None:
        now_ms = self.hardware.clock.monotonic_ms()
        self.link.state.note_alive()  # the time an offline reboot starts counting from
        # The link takes a newer signed config on its own thread; the machine reads its rules from here.
        self.machine.park_rules = self.link.state.rules
        self.machine.follow_ledger(self.link.state.station, self.link.state.staff)
        rental_app.follow_stock(self.machine, self.link.state)
        self._follow_request_in_flight()
        self._follow_balance_query()
        if now_ms - self._owed_checked_ms > OWED_RECEIPTS_CHECK_MS and self.machine.state in (events.State.IDLE, events.State.LOCKED):
            # An answer that came late (the uploader re-sent a request after a restart) owes a receipt.
            self._owed_checked_ms = now_ms
            self.recover()
            self._check_queue()
            self._check_printer()
            self._tell_parked_outcomes()
        if self.machine.is_online != self.link.is_connected:
            self.machine.is_online = self.link.is_connected
            if self.machine.state == events.State.IDLE:
                self._apply([self.machine.redraw()])  # the idle screen says ONLINE or OFFLINE
        if self.is_awaiting_answer:
            # The machine takes no key before the first answer; wake the moment it is in, then
            # look at the keypad (a key pressed meanwhile is read now).
            self.link.wait_for_result(self._in_flight, self.answer_wait_s)
            key = self.hardware.keypad.read_key(timeout_s=0)
        else:
            key = self.hardware.keypad.read_key(timeout_s=self.key_wait_s)
        if key is not None:
            self._feed(events.KeyPressed(key.value))
        if self._scans is not None and (scanned := self._scans.next_event()) is not None:
            tapped = self._ecards.tap_of(scanned.text, scanned.now_ms) if isinstance(scanned, rental.Scanned) else None
            if tapped is not None:
                self._feed(tapped)  # an e-card's QR: a member card shown, wherever a card is tapped
            elif isinstance(self.machine, rental.RentalTerminal):
                self._feed(scanned)  # a rental desk reads vouchers and labels itself
        tapped = self._read_card()
        if tapped is not None:
            self._feed(tapped)
        self._feed(events.Tick(self.hardware.clock.monotonic_ms(), self._minute_of_day()))

    def _check_queue(self) -> None:
        outbox = self.link.outbox
        try:
            nearly_full = outbox.pending_count() >= QUEUE_WARNING_FRACTION * outbox.max_pending or (
                self.storage is not None and self.storage.is_low)
        except STORAGE_ERRORS as error:
            log.error("could not read the outbox: %s", error)
            nearly_full = True  # a disk that cannot even be read is no place to queue sales
        if nearly_full != self.machine.is_queue_nearly_full:
            self.machine.is_queue_nearly_full = nearly_full
            if self.machine.state == events.State.IDLE:
                self._apply([self.machine.redraw()])

    def _check_printer(self) -> None:
        """Tell the idle till when the printer cannot print (paper out, cover open, not answering)."""
        try:
            status = self.hardware.printer.status()
            problem = ("缺纸 Paper out" if status.is_paper_out else "纸仓盖开 Cover open" if status.is_cover_open
                       else "" if status.is_online else "打印机离线 Printer off")
            state = (PrinterState.PAPER_OUT if status.is_paper_out else PrinterState.COVER_OPEN if status.is_cover_open
                     else PrinterState.OFFLINE if not status.is_online
                     else PrinterState.PAPER_NEAR_END if status.is_paper_near_end else PrinterState.READY)
        except TerminalError:
            problem, state = "打印机离线 Printer off", PrinterState.OFFLINE
        if state.value != self.link.printer_state:
            # The park sees it on the console's dashboard: say so now, not at the next heartbeat.
            self.link.printer_state = state.value
            self.link.publish_status()
        if problem != self.machine.printer_problem:
            self.machine.printer_problem = problem
            if self.machine.state == events.State.IDLE:
                self._apply([self.machine.redraw()])

    @property
    def is_awaiting_answer(self) -> bool:
        """A request was submitted and neither its Result nor WAIT_FOR_RESULT_S has come yet."""
        return self._in_flight is not None and self._is_first_wait

    def _follow_request_in_flight(self) -> None:
        """While the machine waits, ask the link each turn (never blocking) for the Result; the
        link re-sends the same bytes when due. No Result within WAIT_FOR_RESULT_S is NoAnswer
        (the link says when); a not-final reply after that is told to the machine. Once the machine
        stops waiting (an offline approval, or the cashier parked the sale), let go: the uploader
        re-sends it from the outbox and a late approval is an owed receipt."""
        pending = self._in_flight
        if pending is None:
            return
        if self.machine.state not in WAITING_STATES:
            if self.machine.state in (events.State.IDLE, events.State.LOCKED):
                self._parked.add(pending.seq)  # the cashier left it pending; the ledger still decides
            self._let_go()
            return
        result = self.link.poll(pending)
        if result is not None:
            self._let_go()
            self._feed(events.Answer(result))
            return
        holds = self.link.ledger_holds(pending)
        if self._is_first_wait:
            if self.link.is_overdue(pending):
                # The machine decides what the cashier sees: an offline sale in its place, or UNCERTAIN.
                self._is_first_wait = False
                self._feed(events.NoAnswer(holds or ""))
            return
        if holds and holds != self.machine.ledger_holds:
            self._feed(events.NoAnswer(holds))

    def _tell_parked_outcomes(self) -> None:
        for seq in sorted(self._parked):
            if self.machine.state not in (events.State.IDLE, events.State.LOCKED):
                return
            try:
                payload = self.link.outbox.result_for(seq)
            except STORAGE_ERRORS:
                return
            if payload is None:
                continue
            self._parked.discard(seq)
            result = parse(envelope.split(payload).body, REPLY_TYPES)
            if not result.is_approved:
                self._feed(events.ParkedAnswered(seq, result.reason))

    def _let_go(self) -> None:
        self.link.unwatch(self._in_flight)
        self._in_flight, self._is_first_wait = None, False

    def _minute_of_day(self) -> int | None:
        """The park's local time of day from the ledger-trusted clock (None before any contact)."""
        now_ms, _ = self.link.state.now_ms()
        if now_ms is None:
            return None
        local = datetime.fromtimestamp(now_ms / 1000, self._zone)
        return local.hour * 60 + local.minute

    def _feed(self, event) -> None:
        self._apply(self.machine.handle(event))

    def _apply(self, effects) -> None:
        queue = list(effects)
        while queue:
            effect = queue.pop(0)
            follow_up = self._do(effect)
            if follow_up is not None:
                queue.extend(self.machine.handle(follow_up))

    def _do(self, effect):
        """Carry out one effect; returns the event it produced, if any."""
        if isinstance(effect, events.Show):
            self.screen = effect
            if self._render is not None:
                self.hardware.display.show(self._render(effect, self.hardware.display.size))
            return None
        if isinstance(effect, events.Submit):
            return self._submit(effect)
        if isinstance(effect, events.AskBalance):
            return self._ask_balance(effect)
        if isinstance(effect, events.TryOffline):
            return self._try_offline(effect)
        if isinstance(effect, events.WriteCard):
            return self._write_card(effect)
        if isinstance(effect, events.Print):
            return self._print(effect.receipt)
        if isinstance(effect, events.RememberReceipt):
            return self._remember_printed(effect.seq)
        if isinstance(effect, rental.RedeemOffline):
            return rental_app.redeem_offline(self, effect)
        raise AssertionError(f"unknown effect {effect!r}")

    # ------------------------------------------------------------ cards
    def _read_card(self):
        reader = self.hardware.card_reader
        try:
            uid = reader.poll()
        except TerminalError as error:
            log.info("card poll: %s", error)
            return None
        if uid is None:
            return None
        try:
            key = SectorKey(sector_key(self.identity.card_key_master, uid.value)) if self.identity.card_key_master \
                else TRANSPORT_KEY
            data = reader.read_blocks(uid, RECORD_BLOCKS, key)
            record = read_record(data, uid.value, self._record_key, self.identity.park_id)
            is_blocked = (record.card_no, record.issuance) in self.link.state.blocklist.blocked
            return events.CardTapped(uid.value.hex(), record, is_blocked=is_blocked)
        except CardAuthError as error:
            if self.config.mode == DESK and self._is_blank(uid):
                return events.CardTapped(uid.value.hex(), None, "blank card", is_blank=True,
                                         unwritten_record=self._unwritten_record(uid.value.hex()))
            return events.CardTapped(uid.value.hex(), None, str(error).split("] ", 1)[-1])
        except (TerminalError, CardRecordError) as error:
            return events.CardTapped(uid.value.hex(), None, str(error).split("] ", 1)[-1])
        finally:
            try:
                reader.halt()
            except TerminalError:
                pass

    def _is_blank(self, uid) -> bool:
        """A card as it comes from the factory: our sectors open with the transport key, no record."""
        try:
            data = self.hardware.card_reader.read_blocks(uid, RECORD_BLOCKS[:1], TRANSPORT_KEY)
        except TerminalError:
            return False
        return data[:2] != b"FC"

    def _unwritten_record(self, uid_hex: str) -> str:
        """The record the ledger signed for this blank card, if this desk issued it and never wrote
        it (a crash between the answer and the write, or the write abandoned); "" otherwise."""
        for payload, result_payload in self.link.outbox.answered(UNWRITTEN_LOOKBACK):
            if parse(envelope.split(payload).body, REQUEST_TYPES).card.uid != uid_hex:
                continue
            record = getattr(parse(envelope.split(result_payload).body, REPLY_TYPES), "card_record", None)
            if record:
                return record
        return ""

    def _write_card(self, effect: events.WriteCard):
        """Write the signed record, block by block, each read back by the driver; a blank card's
        record sectors are then locked with the card's own key A (key B and access bits stay the
        factory's, so the desk can rewrite them at a reissue)."""
        reader = self.hardware.card_reader
        uid = CardUid(bytes.fromhex(effect.uid_hex))
        own_key = sector_key(self.identity.card_key_master, uid.value)
        data_key = TRANSPORT_KEY if effect.is_blank else SectorKey(own_key)
        try:
            for index, block in enumerate(RECORD_BLOCKS):
                reader.write_block(uid, block, effect.record[index * 16 : (index + 1) * 16], data_key)
            if effect.is_blank:
                for trailer in RECORD_TRAILERS:
                    reader.write_block(uid, trailer, own_key + TRANSPORT_ACCESS_BYTES + TRANSPORT_KEY.value,
                                       TRANSPORT_KEY, allow_sector_trailer=True)
            return events.CardWritten()
        except TerminalError as error:
            return events.CardWriteFailed(str(error).split("] ", 1)[-1])
        finally:
            try:
                reader.halt()
            except TerminalError:
                pass

    # ------------------------------------------------------------ requests
    def _submit(self, submit: events.Submit):
        fields = dict(submit.fields)
        record, uid_hex = fields.pop("card")
        card = self._ecards.card_ref(record, uid_hex, submit.message_type.TYPE)  # an e-card's carries its QR
        identity = self.identity

        def build(seq):
            return submit.message_type(park=identity.park_id, terminal=identity.terminal_id, seq=seq,
                                       terminal_time_ms=self.hardware.clock.now_ms(), clock_uncertain=False,
                                       config_version=self.config.version, card=card, **fields)

        try:
            pending = self.link.enqueue(build, pin=submit.pin, supervisor_pin=submit.supervisor_pin)
        except OutboxFullError as error:
            return events.OfflineRefused(error.code, QUEUE_FULL_TEXT)
        except STORAGE_ERRORS as error:  # no seq taken, nothing stored, nothing sent
            log.error("could not queue a %s: %s", submit.message_type.TYPE, error)
            return StorageFailed(StorageFaultError.code, is_sale_made=False)
        self.machine.submitted(pending.seq)
        if self._in_flight is not None:
            self._let_go()
        # Sent, not waited for: the turns go on and ask for the Result (_follow_request_in_flight).
        self.link.follow(pending, answer_within_s=WAIT_FOR_RESULT_S)
        self._in_flight, self._is_first_wait = pending, True
        return None

    def _ask_balance(self, ask: events.AskBalance):
        """Send a card_balance request and go on: the answer is fed to the machine when it comes
        (``_follow_balance_query``); offline, or when it cannot be queued, the balance is unknown."""
        card_no, identity = ask.card.record.card_no, self.identity
        if self._balance_query is not None:
            self.link.unwatch(self._balance_query[1])  # the card asked about before has gone
            self._balance_query = None
        try:
            # A query the ledger has not answered stays in the outbox until it does: with anything
            # still waiting there (the ledger is slow or away), one more would only take room from sales.
            if not self.link.is_connected or self.link.outbox.pending_count():
                return events.BalanceAnswered(card_no)
            pending = self.link.enqueue(lambda seq: CardBalance(
                park=identity.park_id, terminal=identity.terminal_id, seq=seq,
                terminal_time_ms=self.hardware.clock.now_ms(), clock_uncertain=False, operator=ask.operator,
                config_version=self.config.version, card=ask.card.ref()))
        except (OutboxFullError, *STORAGE_ERRORS) as error:  # never a reason to hold the sale up
            log.warning("could not ask for the balance of %s: %s", card_no, error)
            return events.BalanceAnswered(card_no)
        self.link.follow(pending, answer_within_s=WAIT_FOR_RESULT_S)
        self._balance_query = (card_no, pending)
        return None

    def _follow_balance_query(self) -> None:
        """The balance query's Result, or after WAIT_FOR_RESULT_S none (the balance is unknown): told
        once. The request stays in the outbox either way; the uploader's answer is only stored."""
        if self._balance_query is None:
            return
        card_no, pending = self._balance_query
        result = self.link.poll(pending)
        if result is None and not self.link.is_overdue(pending):
            return
        self.link.unwatch(pending)
        self._balance_query = None
        self._feed(events.BalanceAnswered(card_no, result))

    def _try_offline(self, effect: events.TryOffline):
        """Apply the signed offline policy; if it allows the sale, queue it as an offline sale."""
        state = self.link.state
        now_ms, is_uncertain = state.now_ms()
        card_key = (effect.card.card_no, effect.card.issuance)
        refusal = offline.decide(state.policy, state.blocklist, state.window, card_key=card_key,
                                 amount_fen=effect.amount_fen, mode=self.machine.config.mode, needs_pin=effect.needs_pin,
                                 now_ms=now_ms or 0, last_contact_ms=state.last_contact_ms, known_balance_fen=None)
        if refusal is not None:
            return events.OfflineRefused(refusal, offline.TEXT[refusal])
        identity = self.identity
        card = self._ecards.card_ref(effect.card, effect.uid_hex, OfflineCharge.TYPE)  # an e-card's keeps its QR
        try:
            if self.link.outbox.pending_count() >= self.link.outbox.max_pending:
                return events.OfflineRefused(OutboxFullError.code, QUEUE_FULL_TEXT)
            # Counted before it is queued: a crash in between over-counts the window, never under-counts.
            state.window.add(card_key, effect.amount_fen, now_ms)
            state.save_window()
            pending = self.link.enqueue(lambda seq: OfflineCharge(
                park=identity.park_id, terminal=identity.terminal_id, seq=seq, terminal_time_ms=now_ms,
                clock_uncertain=is_uncertain, operator=self.machine.operator, config_version=self.config.version,
                card=card, amount_fen=effect.amount_fen, lines=effect.lines, supersedes_seq=effect.supersedes_seq,
                approved_ms=now_ms), replaces_seq=effect.supersedes_seq)
        except OutboxFullError as error:
            return events.OfflineRefused(error.code, QUEUE_FULL_TEXT)
        except STORAGE_ERRORS as error:  # not approved: no receipt; an online attempt, if any, still stands
            log.error("could not queue an offline sale: %s", error)
            return StorageFailed(StorageFaultError.code, is_sale_made=False)
        return events.OfflineApproved(pending.seq, now_ms, is_uncertain)

    # ------------------------------------------------------------ printing
    def _print(self, receipt):
        printer = self.hardware.printer
        copies_out = 0
        try:
            for copy in receipt.copies():
                printer.print_receipt(copy)  # refuses before printing a line when the printer is not ready
                copies_out += 1
                printer.cut()
            status = printer.status()
        except TerminalError as error:
            # Only the readiness check raises these, and it does so before a line is printed.
            refused_at_once = copies_out == 0 and isinstance(error, (PaperOutError, PrinterCoverOpenError))
            return events.PrintFailed(error.code, str(error).split("] ", 1)[-1], is_nothing_printed=refused_at_once)
        if status.is_paper_out:  # ran out during the receipt: it may be cut short
            return events.PrintFailed("PAPER_OUT", "缺纸 Paper ran out — load a new roll")
        return events.PrintFinished()


def render_for_display(show: events.Show, size):
    """A core screen on the panel: lines that do not fit a small panel are dropped from the end
    (the title, the amount and the footer matter most)."""
    from .screens import Screen, render_screen

    lines = list(show.lines)
    while True:
        try:
            screen = Screen(title=show.title, lines=tuple(lines), footer=show.footer, tone=show.tone,
                            amount_text=show.big or None)
            return render_screen(screen, size)
        except ValueError:
            if lines:
                lines.pop()
            elif show.footer:
                show = events.Show(show.title, (), "", show.tone, show.big)
            else:
                raise




def owed_receipt_lines(request, result) -> tuple[tuple, str | None]:
    """(lines, title) of a receipt printed again after a restart: a sale's own lines, or one line
    with the amount the ledger booked."""
    if isinstance(request, Charge):
        return request.lines, None
    kind = KINDS[request.TYPE]  # its one line and title, from the request kinds' declarations
    amount = request.amount_fen if isinstance(request, TopUp) else (result.amount_fen or 0)
    return (LineItem(item=kind.owed_line, qty=1, unit_fen=amount),), kind.receipt_title


def owed_receipts(outbox, now_ms: int):
    """The receipts a terminal still owes, as (seq, request, Result or None), in seq order: offline
    sales (it approved them itself; Result None) and approved requests that moved money (charges,
    top-ups, and at the desk issues, returns, replacements, voids, reversals, transfers) whose
    receipt never came out. Requests that owe no receipt are marked done here; those still waiting
    for the ledger are left. One rule for the app and for the chaos test's headless terminals."""
    for seq, payload, result_payload in outbox.unprinted():
        request = parse(envelope.split(payload).body, REQUEST_TYPES)
        if isinstance(request, OfflineCharge):
            yield seq, request, None
            continue
        if result_payload is None:
            continue  # still waiting for the ledger
        result = parse(envelope.split(result_payload).body, REPLY_TYPES)
        if rental_app.is_owed(result) or isinstance(result, ShiftSlip):  # a voucher, a settlement, a shift slip
            yield seq, request, result
            continue
        moved_money = isinstance(request, (Charge, TopUp)) or (
            KINDS[request.TYPE].owed_line is not None and getattr(result, "amount_fen", None) is not None)
        if moved_money and result.is_approved and result.reason == "OK":
            yield seq, request, result
        else:
            try:
                outbox.mark_printed(seq, now_ms)
            except STORAGE_ERRORS as error:  # nothing to print; marked when the disk takes it
                log.warning("could not mark seq %d done: %s", seq, error)
