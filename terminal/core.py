"""The station terminal as a pure state machine: events in, effects out, no I/O and no clock.

The app loop (terminal.app) turns hardware and network happenings into events, calls ``handle``
and carries out the effects it returns: show a screen, submit a request, print a receipt. So the
whole cashier flow can be tested as a table, and the same code runs on a Pi and in the simulator.

Rules of the table:

- LOCKED until a staff card and its PIN open a shift at the ledger; every later request carries
  that operator.
- IDLE → a visitor's card → the charge mode's entry state (fixed price skips it) → PIN for member
  cards above the no-PIN limit → AUTHORIZING → PRINTING → DONE → IDLE.
- CANCEL leaves any entry state; entry states and messages time out back to IDLE (or LOCKED).
- Once a request is submitted there is no cancel: the sale is the ledger's to decide, and a
  timeout is never a decline (UNCERTAIN keeps asking; it never lets the cashier charge again).
  Nor is a not-final reply (the ledger holds the request): it is "no answer yet". After
  ``uncertain_timeout_ms`` the cashier may leave UNCERTAIN: the request stays queued and its
  receipt prints by itself when the ledger answers — the same sale is never submitted again.
- A write the terminal's own disk refuses (StorageFailed) ends on a screen that says whether the
  sale was made, and any key leaves it; the next sale simply tries again.
- An approved sale leaves PRINTING only when both copies are out; paper out or printer trouble
  shows what to do, and ENTER reprints (marked REPRINT). The sale is never submitted twice.
- An event a state does not handle is ignored (a stray key press must never crash a till).
"""

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from protocol.card_record import CardRecord
from protocol.kinds import KINDS
from protocol.limits import MAX_AMOUNT_FEN, MAX_QUANTITY
from protocol.messages import (CardKind, Charge, LineItem, MemberLookupReply, ParkRules, Reversal, ShiftHandover, ShiftOpen,
                               ShiftSlip, StationSettings, TopUp, Void)
from protocol.reasons import NOT_FINAL_REASONS, reason_text

from .config import COUNT, DESK, FIXED, FREE, MENU, StationConfig
from .desk import LOSS_SLIP_TITLE, FrontDesk, balance_line
from .hal.keypad import Key
from .events import (AskBalance, BalanceAnswered, BACK, CANCEL, CLOSE_SHIFT_KEY, DONE_TIMEOUT_MS, DOT, ENTER, ENTRY_TIMEOUT_MS, MAX_AMOUNT_CHARS,
                     MAX_COUNT, MAX_PIN_DIGITS, MESSAGE_TIMEOUT_MS, PIN_TIMEOUT_MS, REPRINT_KEY, UNDO_KEY, Answer,
                     UNCERTAIN_LEAVE_AFTER_MS, CardTapped, KeyPressed, NoAnswer, OfflineApproved, OfflineRefused, ParkedAnswered, Print,
                     PrintFailed, PrintFinished, RememberReceipt, Sale, Show, State, StorageFailed, Submit, TappedCard,
                     Tick, TryOffline, format_fen, masked, parse_amount)
from .receipt import ReceiptData, ShiftSlipReceipt
from .screens import panel_lines
from .shift_slip import MAX_COUNT_CHARS, count_problem, parse_count, slip_receipt, takes_cash

# States where the operator is typing or choosing: they time out back to IDLE, and CANCEL leaves them.
ENTRY_STATES = frozenset({
    State.AMOUNT, State.COUNT, State.MENU, State.CHARGE_PIN, State.CONFIRM_CLOSE, State.CONFIRM_UNDO,
    State.SUPERVISOR_CARD, State.SUPERVISOR_PIN, State.DESK_MENU, State.DESK_NEW_CARD, State.DESK_NAME,
    State.DESK_PHONE, State.DESK_NEW_PIN, State.DESK_PIN_AGAIN, State.DESK_AMOUNT, State.DESK_CHANNEL,
    State.DESK_PICK, State.DESK_CONFIRM, State.DESK_TRANSFER_TO, State.DESK_MEMBER_PIN, State.DESK_DAMAGED,
    State.CONFIRM_NO_RECEIPT, State.CASH_COUNT, State.CASH_CONFIRM,
})
# A 128x64 panel's rows under the title when a screen has no footer (terminal.screens).
PANEL_ROWS_WITHOUT_FOOTER = 3
# The disk refused a write (full or failing SD card): fits the 128x64 panel's title bar.
STORAGE_FAULT_TITLE = "存储故障 Disk fault"
# Receipt titles for what is not a sale, by message type: from the request kinds' declarations
# (protocol.kinds).
RECEIPT_TITLES = {kind.type: kind.receipt_title for kind in KINDS.values() if kind.receipt_title}
# A staff member's card (protocol.card_record.KINDS): no request issues one, so it is no CardKind.
STAFF_CARD = "staff"
# What the tap's balance query may answer that no sale on the card could get past: the station
# stops the sale at the tap (the desk shows it, and offers what such a card may still do).
REFUSED_AT_TAP = frozenset({"CARD_BLOCKED", "CARD_RETURNED", "CARD_UID_MISMATCH", "OLD_ISSUANCE", "UNKNOWN_CARD"})


@dataclass
class _Login:
    """A staff member logging in: their card, who the station's directory says they are, the PIN typed."""

    card: TappedCard
    staff_id: str
    name: str
    typed: str = ""


@dataclass
class Terminal(FrontDesk):
    """The state machine. ``handle(event)`` returns the effects to carry out, in order."""

    config: StationConfig
    terminal_id: str
    state: State = State.LOCKED
    operator: str | None = None
    operator_name: str = ""
    sale: Sale | None = None
    last_receipt: ReceiptData | None = None
    now_ms: int = 0
    deadline_ms: int | None = None
    after_message: State = State.IDLE
    _login: _Login | None = None
    _staff_card: TappedCard | None = None  # the logged-in staff member's card
    uncertain_reason: str = ""
    is_online: bool = True
    is_queue_nearly_full: bool = False  # the app sets it from the outbox (see QUEUE_WARNING_FRACTION)
    minute_of_day: int | None = None
    undoable: Sale | None = None  # the last approved online sale (station) or top-up (desk) of this shift
    uncertain_timeout_ms: int = UNCERTAIN_LEAVE_AFTER_MS
    may_leave_pending: bool = False  # UNCERTAIN has lasted long enough: any key parks the sale
    ledger_holds: str = ""           # the ledger replied "not final" (SET_ASIDE, INTERNAL_ERROR) to the request in flight
    # The park rules from the ledger's signed config; the app sets them when a config arrives (the
    # machine does no I/O). None before the first config: the station config's copies are used.
    park_rules: ParkRules | None = None
    # ``config`` is the station as it sells now: the local station config (``local_config``) with the
    # ledger's signed station settings and staff directory laid over it (see follow_ledger).
    local_config: StationConfig | None = None
    _ledger_parts: tuple = (None, None)
    _nothing_printed: bool = False  # the last print failed before any line of the receipt was out
    # What keeps the printer from printing now ("缺纸 Paper out"), or "": the app sets it from the
    # printer's status while the till is idle. A sale then starts only once the cashier agrees.
    printer_problem: str = ""
    _held_tap: CardTapped | None = None      # the visitor's tap, waiting for that answer
    _sells_without_receipt: bool = False
    # 交班 at a till that takes cash: the count as typed, why it was refused, and the count once read.
    _cash_typed: str = ""
    _cash_notice: str = ""
    _cash_fen: int | None = None

    def follow_ledger(self, station: StationSettings | None, staff: tuple | None) -> None:
        """Sell by the station settings and staff directory of the ledger's newest signed config (the
        app passes them in on every turn; None: not arrived yet, the local config's stand). A sale
        under way keeps the lines it has; the next one uses the new menu and prices."""
        if station is self._ledger_parts[0] and staff is self._ledger_parts[1]:
            return  # the same config as last turn: nothing to lay over again
        if self.local_config is None:
            self.local_config = self.config
        self._ledger_parts = (station, staff)
        self.config = self.local_config.with_ledger(station, staff)

    @property
    def rules(self) -> ParkRules:
        """The rules in force: the ledger's, so the till asks for the PIN the ledger will require and
        books the fees the ledger will accept; the station config's only until a config has arrived."""
        if self.park_rules is not None:
            return self.park_rules
        return ParkRules(no_pin_limit_fen=self.config.no_pin_limit_fen, card_fee_fen=self.config.card_fee_fen,
                         damage_fee_fen=self.config.damage_fee_fen)

    # ------------------------------------------------------------ entry point
    def handle(self, event) -> list:
        if isinstance(event, Tick):
            self.now_ms = event.now_ms
            if event.minute_of_day is not None:
                self.minute_of_day = event.minute_of_day
            if self.deadline_ms is not None and self.now_ms >= self.deadline_ms:
                return self._timed_out()
            return []
        if isinstance(event, StorageFailed):
            return self._storage_failed(event)
        if isinstance(event, ParkedAnswered):
            if self.state not in (State.IDLE, State.LOCKED):
                return []  # the app tells again at the next idle moment
            return self._message("待定失败 NOT made",
                                 (f"{self.terminal_id}-{event.seq}", reason_text(event.reason)), then=self.state)
        if isinstance(event, BalanceAnswered):
            return self._balance_answered(event)
        if isinstance(event, Answer) and getattr(event.result, "reason", None) in NOT_FINAL_REASONS:
            event = NoAnswer(event.result.reason)  # the ledger holds the request: no answer yet, never a decline
        handler = getattr(self, f"_on_{self.state.value}", None)
        effects = handler(event) if handler else []
        return effects or []

    def redraw(self) -> Show:
        """The current screen again (after something outside the machine changed it: the network
        came or went, the queue filled up)."""
        return self._screen()

    def start(self, now_ms: int) -> list:
        self.now_ms = now_ms
        return [self._screen()]

    # ------------------------------------------------------------ transitions
    def _go(self, state: State, timeout_ms: int | None = None) -> Show:
        self.state = state
        self.deadline_ms = None if timeout_ms is None else self.now_ms + timeout_ms
        return self._screen()

    def _message(self, title: str, lines=(), *, tone="error", then: State | None = None,
                 footer: str = "任意键继续 Any key") -> list:
        self.after_message = then or (State.IDLE if self.operator else State.LOCKED)
        self.state = State.MESSAGE
        self.deadline_ms = self.now_ms + MESSAGE_TIMEOUT_MS
        return [Show(title, tuple(lines), footer, tone)]

    def _timed_out(self) -> list:
        if self.state == State.MESSAGE:
            return [self._go(self.after_message)]
        if self.state == State.DONE:
            self.sale = None
            return [self._go(self._at_rest())]
        if self.state in (State.LOGIN_PIN,):
            self._login = None
            return [self._go(State.LOCKED)]
        if self.state in ENTRY_STATES:
            self.sale = None
            return [self._go(State.IDLE)]
        self.deadline_ms = None
        if self.state == State.UNCERTAIN:
            self.may_leave_pending = True  # still asking; the screen now offers the way out
            return [self._screen()]
        return []

    def _storage_failed(self, event: StorageFailed) -> list:
        """The terminal's disk refused a write. Say whether the sale stands, and let any key leave."""
        # Short enough for a 128x64 panel: what happened to the sale, then what to do.
        lines = ("已收费 WAS made" if event.is_sale_made else "未收费 NOT made",
                 event.detail or "清理存储/叫技术员")
        if self.state == State.OPENING_SHIFT:
            self._login = None
            return self._message(STORAGE_FAULT_TITLE, ("登录未完成 NOT in", lines[1]), then=State.LOCKED)
        if self.state == State.CLOSING_SHIFT:
            return self._message(STORAGE_FAULT_TITLE, ("交班未完成 Still open", lines[1]))
        if self.state == State.AUTHORIZING and self.sale is not None and self.sale.seq is not None \
                and not event.is_sale_made:
            # The online attempt is on disk and may yet be approved: this is UNCERTAIN, not "not made".
            return self._uncertain(STORAGE_FAULT_TITLE)
        self.sale = None
        return self._message(STORAGE_FAULT_TITLE, lines)

    # ------------------------------------------------------------ LOCKED and login
    def _on_locked(self, event) -> list:
        if isinstance(event, CardTapped):
            if event.record is None or event.record.kind != STAFF_CARD:
                return self._message("请刷员工卡 Staff card please", (event.error or "这不是员工卡 Not a staff card",), then=State.LOCKED)
            staff = self.config.staff.get(event.record.card_no)
            if staff is None:
                return self._message("员工卡无效 Staff card unknown", ("请联系主管 Ask a supervisor",), then=State.LOCKED)
            self._login = _Login(TappedCard(event.record, event.uid_hex), staff_id=staff[0], name=staff[1])
            return [self._go(State.LOGIN_PIN, PIN_TIMEOUT_MS)]
        if isinstance(event, KeyPressed) and event.key == REPRINT_KEY and self.last_receipt:
            return self._reprint()
        return []

    def _on_login_pin(self, event) -> list:
        if not isinstance(event, KeyPressed):
            return []
        login = self._login
        if event.key == CANCEL:
            self._login = None
            return [self._go(State.LOCKED)]
        if event.key == ENTER:
            if len(login.typed) < 4:
                return []
            typed, login.typed = login.typed, ""  # the machine forgets it once it is handed over to be sealed
            self.state, self.deadline_ms = State.OPENING_SHIFT, None
            return [self._screen(),
                    Submit(ShiftOpen, {"operator": login.staff_id, "card": login.card, "pin_sha256": "0" * 64}, pin=typed)]
        login.typed = self._edit(login.typed, event.key, digits_only=True, limit=MAX_PIN_DIGITS)
        self.deadline_ms = self.now_ms + PIN_TIMEOUT_MS
        return [self._screen()]

    def _on_opening_shift(self, event) -> list:
        if isinstance(event, NoAnswer):
            self._login = None
            return self._message("网络无响应 No answer", ("请检查网络后重试 Check the network, try again",), then=State.LOCKED)
        if not isinstance(event, Answer):
            return []
        login, self._login = self._login, None
        if event.result.is_approved:
            self.operator, self.operator_name, self._staff_card = login.staff_id, login.name, login.card
            return [self._go(State.IDLE)]
        return self._message("登录失败 Login refused", (reason_text(event.result.reason),), then=State.LOCKED)

    # ------------------------------------------------------------ IDLE
    def _on_idle(self, event) -> list:
        if isinstance(event, KeyPressed):
            if event.key == REPRINT_KEY and self.last_receipt:
                return self._reprint()
            if event.key == CLOSE_SHIFT_KEY:
                return [self._go(State.CONFIRM_CLOSE, ENTRY_TIMEOUT_MS)]
            if event.key == UNDO_KEY:
                return self._offer_undo()
            return self._desk_key(event.key) if self.config.mode == DESK else []
        if not isinstance(event, CardTapped):
            return []
        if self.config.mode == DESK and (event.is_blank or (event.record is not None and event.record.kind != STAFF_CARD)):
            return self._desk_tap(event)
        if self.config.mode == DESK:  # a desk never sells: only staff cards reach here, or unreadable ones
            return self._message("无效卡 Card not accepted", (event.error or "员工卡 Staff card",))
        if event.record is None:
            return self._message("无效卡 Card not accepted", (event.error or "请到总台 Please see the front desk",))
        if event.record.kind == STAFF_CARD:
            return self._message("员工卡 Staff card", ("请刷游客卡 Tap the visitor's card",), tone="warning")
        if event.is_blocked:
            # Refused before anything is sent: the blocklist is the ledger's word, online or not.
            return self._message("卡已冻结 Card blocked", (reason_text("CARD_BLOCKED"),))
        if not self._is_open():
            start, end = self.config.open_hours
            return self._message("不在营业时间 Closed", (f"营业时间 Open {start}-{end}",), tone="warning")
        if self.printer_problem and not self._sells_without_receipt:
            self._held_tap = event  # ask first: the visitor may not want to pay without a receipt
            return [self._go(State.CONFIRM_NO_RECEIPT, ENTRY_TIMEOUT_MS)]
        self._sells_without_receipt = False
        self.sale = Sale(card=event.record, uid_hex=event.uid_hex)
        mode = self.config.mode
        if mode == FIXED:
            # The ledger names what a fixed price buys (its station's first item); a local config does not.
            name = self.config.menu[0].name if self.config.menu else self.config.station_name
            self.sale.lines = (LineItem(item=name, qty=1, unit_fen=self.config.fixed_price_fen),)
            return self._authorize_or_pin()
        # The amount is still to be typed: ask for the balance meanwhile (a fixed price is charged at
        # once, and the charge's own answer carries the balance: a query would only cost a seq).
        entry = {COUNT: State.COUNT, MENU: State.MENU}.get(mode, State.AMOUNT)
        return [self._go(entry, ENTRY_TIMEOUT_MS)] + self._ask_balance(TappedCard(event.record, event.uid_hex))

    # ------------------------------------------------------------ the tapped card's balance
    def _ask_balance(self, card: TappedCard) -> list:
        """Ask the ledger for the card's balance, never waiting for it; offline, say it is unknown."""
        if not self.is_online:
            self.sale.is_balance_unknown = True
            return [self._screen()]
        return [AskBalance(card, self.operator)]

    def _balance_answered(self, event: BalanceAnswered) -> list:
        sale, result = self.sale, event.result
        if sale is None or sale.card.card_no != event.card_no or sale.seq is not None or self.state not in ENTRY_STATES:
            return []  # that visitor has gone, or the sale is the ledger's now: its own answer tells
        if result is not None and not result.is_approved and result.reason in REFUSED_AT_TAP:
            if self.config.mode == DESK:
                sale.is_card_blocked = sale.is_card_blocked or result.reason == "CARD_BLOCKED"
                sale.is_balance_unknown = True
                return [self._screen()]
            self.sale = None  # no sale on this card would be approved: say why before the amount is typed
            title = "卡已冻结 Card blocked" if result.reason == "CARD_BLOCKED" else "无效卡 Card not accepted"
            return self._message(title, panel_lines(reason_text(result.reason), PANEL_ROWS_WITHOUT_FOOTER), footer="")
        sale.balances = result.balances if result is not None and result.is_approved else None
        sale.is_balance_unknown = sale.balances is None
        return [self._screen()]

    # ------------------------------------------------------------ void, reversal: a supervisor signs
    def _offer_undo(self) -> list:
        """F3: void the last sale (station) or reverse the last top-up (desk) of this shift."""
        original = self.undoable
        if original is None:
            what = "冲正 Reverse" if self.config.mode == DESK else "撤销 Void"
            return self._message(what, ("本班没有可撤销的交易", "Nothing of this shift to undo"), tone="warning")
        operation = Reversal.TYPE if original.operation == TopUp.TYPE else Void.TYPE
        self.sale = Sale(card=original.card, uid_hex=original.uid_hex, operation=operation, original=original,
                         lines=(LineItem(item=f"{RECEIPT_TITLES[operation][:2]} {self.terminal_id}-{original.seq}", qty=1,
                                         unit_fen=original.amount_fen),))
        return [self._go(State.CONFIRM_UNDO, ENTRY_TIMEOUT_MS)]

    def _on_confirm_no_receipt(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key != ENTER:
            return []
        tap, self._held_tap, self._sells_without_receipt = self._held_tap, None, True
        self.state = State.IDLE
        return self._on_idle(tap)

    def _slip_screen(self) -> Show:
        slip = self.last_receipt
        if self.state == State.PRINTING:
            return Show("交班 Shift handed over", ("正在打印交班单", "Printing the slip"), slip.operator, "ok")
        return Show("交班完成 Shift closed", _slip_screen_lines(slip), "F1 补打 Reprint", "ok")

    def _on_confirm_undo(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        return self._ask_supervisor() if event.key == ENTER else []

    def _ask_supervisor(self) -> list:
        self.sale.typed = ""
        return [self._go(State.SUPERVISOR_CARD, ENTRY_TIMEOUT_MS)]

    def _on_supervisor_card(self, event) -> list:
        if isinstance(event, CardTapped):
            if event.record is None or event.record.kind != STAFF_CARD:
                self.sale.notice = "请刷主管员工卡 A supervisor's staff card"
                return [self._screen()]
            self.sale.supervisor_card_no, self.sale.notice = event.record.card_no, ""
            return [self._go(State.SUPERVISOR_PIN, PIN_TIMEOUT_MS)]
        return self._leave_entry(event) or []

    def _on_supervisor_pin(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        sale = self.sale
        if sale.operation in (Void.TYPE, Reversal.TYPE):
            message_type = Void if sale.operation == Void.TYPE else Reversal
            fields = {"original_seq": sale.original.seq, "amount_fen": sale.original.amount_fen}
        else:
            message_type, fields = self._desk_supervised()
        return self._send(message_type, fields | {"supervisor_card_no": sale.supervisor_card_no, "pin_sha256": "0" * 64},
                          supervisor_pin=pin)

    def _is_open(self) -> bool:
        """Within the station's opening hours (always, when it has none or the time is unknown)."""
        if not self.config.open_hours or self.minute_of_day is None:
            return True
        start, end = (int(t[:2]) * 60 + int(t[3:]) for t in self.config.open_hours)
        minute = self.minute_of_day
        return start <= minute < end if start <= end else (minute >= start or minute < end)  # past midnight

    def _on_confirm_close(self, event) -> list:
        if not isinstance(event, KeyPressed):
            return []
        if event.key == ENTER:
            if takes_cash(self.config.mode):
                # A blind count: the cashier counts the drawer before the till shows any figure.
                self._cash_typed, self._cash_notice, self._cash_fen = "", "", None
                return [self._go(State.CASH_COUNT, ENTRY_TIMEOUT_MS)]
            return self._hand_over(None)
        if event.key == CANCEL:
            return [self._go(State.IDLE)]
        return []

    def _on_cash_count(self, event) -> list:
        if not isinstance(event, KeyPressed):
            return []
        if event.key == CANCEL:
            return [self._go(State.IDLE)]  # still on shift: nothing was sent
        if event.key == ENTER:
            counted = parse_count(self._cash_typed)
            if counted is None:  # say why, and let the cashier type it again
                self._cash_notice, self._cash_typed = count_problem(self._cash_typed), ""
                return [self._screen()]
            self._cash_fen, self._cash_notice = counted, ""
            return [self._go(State.CASH_CONFIRM, ENTRY_TIMEOUT_MS)]
        self._cash_typed = self._edit(self._cash_typed, event.key, digits_only=False, limit=MAX_COUNT_CHARS)
        self._cash_notice = ""
        self.deadline_ms = self.now_ms + ENTRY_TIMEOUT_MS
        return [self._screen()]

    def _on_cash_confirm(self, event) -> list:
        if not isinstance(event, KeyPressed):
            return []
        if event.key == ENTER:
            return self._hand_over(self._cash_fen)
        if event.key == BACK:  # count again
            self._cash_typed, self._cash_fen = "", None
            return [self._go(State.CASH_COUNT, ENTRY_TIMEOUT_MS)]
        if event.key == CANCEL:
            return [self._go(State.IDLE)]
        return []

    def _hand_over(self, counted_fen: int | None) -> list:
        self.state, self.deadline_ms = State.CLOSING_SHIFT, None
        return [self._screen(), Submit(ShiftHandover, {"operator": self.operator, "card": self._staff_card,
                                                       "counted_fen": counted_fen})]

    def _on_closing_shift(self, event) -> list:
        if not isinstance(event, (Answer, NoAnswer)):
            return []
        staff_card, name = self._staff_card, self.operator_name or self.operator or ""
        # Whatever the answer, this login is over: the ledger closed the shift, or had none open.
        self.operator, self.operator_name, self._staff_card, self.undoable = None, "", None, None
        self._cash_typed, self._cash_fen = "", None
        if isinstance(event, NoAnswer):
            # The handover stays queued and is re-sent; its slip prints when the ledger answers.
            return self._message("交班已提交 Handover sent", ("交班单稍后打印", "Slip prints when answered"),
                                 tone="warning", then=State.LOCKED)
        if not isinstance(event.result, ShiftSlip):
            return self._message("交班 Logged out", panel_lines(reason_text(event.result.reason), PANEL_ROWS_WITHOUT_FOOTER),
                                 tone="warning", then=State.LOCKED, footer="")
        receipt = slip_receipt(self.config, self.terminal_id, name, staff_card.record.card_no, event.result)
        self.last_receipt, self._nothing_printed = receipt, False
        self.state, self.deadline_ms = State.PRINTING, None
        return [self._screen(), Print(receipt)]

    def _at_rest(self) -> State:
        """Where the till waits between visitors: IDLE on shift, LOCKED once the shift is handed over."""
        return State.IDLE if self.operator else State.LOCKED

    # ------------------------------------------------------------ entry states
    def _leave_entry(self, event) -> list | None:
        """What every entry state shares: only keys count, and CANCEL abandons the sale."""
        if not isinstance(event, KeyPressed):
            return []
        if event.key == CANCEL:
            self.sale = None
            return [self._go(State.IDLE)]
        return None

    def _type(self, key: Key, *, digits_only: bool, limit: int, timeout_ms: int) -> list:
        self.sale.typed = self._edit(self.sale.typed, key, digits_only=digits_only, limit=limit)
        self.deadline_ms = self.now_ms + timeout_ms
        return [self._screen()]

    def _pin_typed(self, event: KeyPressed) -> str | None:
        """In a PIN state: the PIN once ENTER follows 4 to 6 digits (gone from the machine's typing
        buffer), else None and the key is the caller's to type."""
        if event.key == ENTER and len(self.sale.typed) >= 4:
            pin, self.sale.typed = self.sale.typed, ""
            return pin
        return None

    def _type_pin(self, key: Key) -> list:
        return self._type(key, digits_only=True, limit=MAX_PIN_DIGITS, timeout_ms=PIN_TIMEOUT_MS)

    def _send(self, message_type, fields: dict, *, card=None, pin=None, supervisor_pin=None) -> list:
        """Submit a request about the sale's card (or ``card``, a TappedCard) as the operator on
        shift, and wait for the ledger's answer."""
        sale = self.sale
        self.state, self.deadline_ms, self.ledger_holds = State.AUTHORIZING, None, ""
        fields = {"operator": self.operator, "card": card or TappedCard(sale.card, sale.uid_hex)} | fields
        return [self._screen(), Submit(message_type, fields, pin=pin, supervisor_pin=supervisor_pin)]

    def _on_amount(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key == ENTER:
            amount = parse_amount(self.sale.typed)
            if amount is None:  # say why, and let the cashier type it again
                self.sale.notice, self.sale.typed = amount_problem(self.sale.typed), ""
                return [self._screen()]
            self.sale.lines = (LineItem(item="自由消费 Amount", qty=1, unit_fen=amount),)
            return self._authorize_or_pin()
        return self._type(event.key, digits_only=False, limit=MAX_AMOUNT_CHARS, timeout_ms=ENTRY_TIMEOUT_MS)

    def _on_count(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key == ENTER:
            count = int(self.sale.typed or 1)  # nothing typed: one use
            if not 1 <= count <= MAX_COUNT:
                return []
            self.sale.lines = (LineItem(item=f"{self.config.station_name} ({self.config.unit_name})", qty=count,
                                        unit_fen=self.config.unit_price_fen),)
            return self._authorize_or_pin()
        return self._type(event.key, digits_only=True, limit=2, timeout_ms=ENTRY_TIMEOUT_MS)

    def _on_menu(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if event.key == BACK and self.sale.lines:
            self.sale.lines = self.sale.lines[:-1]
        elif event.key == ENTER:
            return self._authorize_or_pin() if self.sale.lines else []
        elif event.key.is_digit and 1 <= int(event.key.character) <= len(self.config.menu):
            item = self.config.menu[int(event.key.character) - 1]
            lines = list(self.sale.lines)
            for index, line in enumerate(lines):
                if line.item == item.name:
                    if line.qty >= MAX_QUANTITY:  # a free item pressed past what a line can carry
                        return []
                    lines[index] = replace(line, qty=line.qty + 1)
                    break
            else:
                lines.append(LineItem(item=item.name, qty=1, unit_fen=item.price_fen))
            if sum(line.qty * line.unit_fen for line in lines) > MAX_AMOUNT_FEN:
                return []
            self.sale.lines = tuple(lines)
        self.deadline_ms = self.now_ms + ENTRY_TIMEOUT_MS
        return [self._screen()]

    def _authorize_or_pin(self) -> list:
        sale = self.sale
        if sale.card.kind == CardKind.MEMBER and sale.amount_fen > self.rules.no_pin_limit_fen:
            sale.typed = ""
            return [self._go(State.CHARGE_PIN, PIN_TIMEOUT_MS)]
        return self._submit_charge(pin=None)

    def _on_charge_pin(self, event) -> list:
        if (handled := self._leave_entry(event)) is not None:
            return handled
        if (pin := self._pin_typed(event)) is None:
            return self._type_pin(event.key)
        return self._submit_charge(pin=pin)

    def _submit_charge(self, pin: str | None) -> list:
        sale = self.sale
        if not self.is_online:
            # No network: nothing is sent online, so a refusal here leaves nothing pending.
            self.state, self.deadline_ms = State.AUTHORIZING, None
            return [self._screen(), self._try_offline(supersedes_seq=None, needs_pin=pin is not None)]
        return self._send(Charge, {"amount_fen": sale.amount_fen, "lines": sale.lines}, pin=pin)

    # ------------------------------------------------------------ the ledger's answer
    def submitted(self, seq: int) -> None:
        """The app tells the machine which seq the request in flight got (for the receipt number)."""
        if self.sale is not None:
            self.sale.seq = seq

    def _try_offline(self, *, supersedes_seq: int | None, needs_pin: bool) -> TryOffline:
        sale = self.sale
        return TryOffline(sale.card, sale.uid_hex, sale.lines, sale.amount_fen, needs_pin, supersedes_seq)

    def _on_authorizing(self, event) -> list:
        if isinstance(event, NoAnswer):
            # The online attempt stays queued; offline, the same sale may go through as a new
            # request that names it (the ledger applies at most one of the two).
            self.ledger_holds = event.ledger_reason
            return [self._try_offline(supersedes_seq=self.sale.seq, needs_pin=False)]
        if isinstance(event, OfflineApproved):
            return self._offline_approved(event)
        if isinstance(event, OfflineRefused):
            if self.sale.seq is None:  # nothing was sent: the sale simply did not happen
                self.sale = None
                return self._message("离线交易被拒 Offline sale refused", (event.text,))
            # An online attempt is still queued and may yet be approved: never a second charge.
            return self._uncertain(event.text)
        if not isinstance(event, Answer):
            return []
        return self._answered(event.result)

    def _uncertain(self, reason: str) -> list:
        self.uncertain_reason, self.may_leave_pending = reason, False
        return [self._go(State.UNCERTAIN, self.uncertain_timeout_ms)]

    def _offline_approved(self, event: OfflineApproved) -> list:
        sale = self.sale
        sale.seq = event.seq
        receipt = make_offline_receipt(self.config, self.terminal_id, self.operator_name or self.operator or "",
                                       sale.card, sale.lines, event.seq, event.time_ms, event.is_time_uncertain)
        self.last_receipt, self._nothing_printed = receipt, False
        self.state, self.deadline_ms = State.PRINTING, None
        return [self._screen(), Print(receipt)]

    def _on_uncertain(self, event) -> list:
        if isinstance(event, Answer):
            self.may_leave_pending = False
            return self._answered(event.result)
        if isinstance(event, NoAnswer) and event.ledger_reason != self.ledger_holds:
            self.ledger_holds = event.ledger_reason  # the ledger replied, not finally: say so
            return [self._screen()]
        if isinstance(event, KeyPressed) and self.may_leave_pending:
            # Parked, not cancelled: the request stays queued and is re-sent; the receipt is owed
            # and prints when the ledger approves. The sale itself is never submitted again.
            self.sale, self.may_leave_pending, self.ledger_holds = None, False, ""
            return [self._go(State.IDLE if self.operator else State.LOCKED)]
        return []  # no cancel before the time-out, no second charge: the app keeps asking

    def _answered(self, result) -> list:
        sale = self.sale
        sale.result = result
        if isinstance(result, MemberLookupReply):
            return self._desk_found(result)
        if not result.is_approved:
            self.sale = None
            balance = (f"余额 Balance {format_fen(result.balances.fen)}",) if result.balances else ()
            # The whole reason, wrapped: the panel has three rows when the footer gives way (the
            # message times out by itself, and any key leaves it).
            reason = panel_lines(reason_text(result.reason), PANEL_ROWS_WITHOUT_FOOTER - len(balance))
            return self._message("交易失败 Declined", reason + balance, footer="")
        if (done := self._desk_answered(result)) is not None:
            return done
        if sale.operation in (Charge.TYPE, TopUp.TYPE):
            self.undoable = sale
        elif sale.operation in (Void.TYPE, Reversal.TYPE):
            self.undoable = None  # undone once; the ledger would refuse a second time anyway
        receipt = self.receipt_for(sale, result)
        self.last_receipt, self._nothing_printed = receipt, False
        self.deadline_ms = None
        if getattr(result, "card_record", None):
            sale.record_hex, self.state = result.card_record, State.WRITING_CARD
            return [self._screen(), self._card_write()]
        self.state = State.PRINTING
        return [self._screen(), Print(receipt)]

    def receipt_for(self, sale: Sale, result, *, is_reprint: bool = False) -> ReceiptData:
        lines, extra = sale.lines, {}
        if sale.operation in (Void.TYPE, Reversal.TYPE):
            # Printed negative, with what it undoes and who approved it; no item line repeating the amount.
            lines, extra = (), {"undoes_receipt_number": f"{self.terminal_id}-{sale.original.seq}",
                                "approved_by": self.supervisor_text(sale.supervisor_card_no)}
        else:
            extra = self._desk_receipt_parts(sale, result)
        title = extra.pop("title", RECEIPT_TITLES.get(sale.operation))
        return make_receipt(self.config, self.terminal_id, self.operator_name or self.operator or "", sale.card,
                            lines, result, is_reprint=is_reprint, title=title, amount_fen=sale.amount_fen, **extra)

    def supervisor_text(self, card_no: str) -> str:
        """The supervisor as a receipt names them: from the staff directory of the signed config
        (name and staff id), else the card's last four digits."""
        staff = self.config.staff.get(card_no)
        return f"{staff[1]} ({staff[0]})" if staff else masked(card_no)

    # ------------------------------------------------------------ printing
    def _on_printing(self, event) -> list:
        if isinstance(event, PrintFinished):
            effects = [RememberReceipt(self.last_receipt.seq)]
            self.state = State.DONE
            self.deadline_ms = self.now_ms + DONE_TIMEOUT_MS
            return effects + [self._screen()]
        if isinstance(event, PrintFailed):
            self.state, self.deadline_ms = State.PRINTER_PROBLEM, None
            self._nothing_printed = event.is_nothing_printed
            return [Show("打印机问题 Printer problem", (event.message, "交易已成功 The sale went through"),
                         "处理后按确认补打 Fix it, then ENTER to reprint", "warning", event.code)]
        return []

    def _on_printer_problem(self, event) -> list:
        if isinstance(event, KeyPressed) and event.key == ENTER:
            return self._reprint()
        if isinstance(event, KeyPressed) and event.key == CANCEL:
            # The sale stands; the receipt can still be reprinted from IDLE (or LOCKED) with F1.
            self.sale = None
            return [self._go(self._at_rest())]
        return []

    def _reprint(self) -> list:
        # Only a true second print says REPRINT: when the printer refused before printing a line
        # (paper out before the sale), the first receipt out is the original.
        if not self._nothing_printed:
            self.last_receipt = replace(self.last_receipt, is_reprint=True)
        self._nothing_printed = False
        self.state, self.deadline_ms = State.PRINTING, None
        return [self._screen(), Print(self.last_receipt)]

    def _on_done(self, event) -> list:
        if isinstance(event, CardTapped):
            self.sale = None
            self.state = self._at_rest()
            return self._on_idle(event) if self.operator else self._on_locked(event)
        if isinstance(event, KeyPressed):
            if event.key == REPRINT_KEY:
                return self._reprint()
            self.sale = None
            return [self._go(self._at_rest())]
        return []

    def _on_message(self, event) -> list:
        if isinstance(event, (KeyPressed, CardTapped)):
            return [self._go(self.after_message)]
        return []

    # ------------------------------------------------------------ screens
    @staticmethod
    def _edit(typed: str, key: Key, *, digits_only: bool, limit: int) -> str:
        if key is BACK:
            return typed[:-1]
        if key.is_digit and len(typed) < limit:
            return typed + key.character
        if key is DOT and not digits_only and "." not in typed and len(typed) < limit:
            return (typed or "0") + "."
        return typed

    def _screen(self) -> Show:
        state, config, sale = self.state, self.config, self.sale
        who = f"操作员 {self.operator_name}" if self.operator else ""
        if (desk := self._desk_screen()) is not None:
            return desk
        if state == State.LOCKED:
            return Show(config.station_name, ("请刷员工卡登录", "Tap staff card to log in"), self.terminal_id)
        if state == State.LOGIN_PIN:
            return Show("输入密码 Enter PIN", (self._login.name, "*" * len(self._login.typed) or "_"), "确认 ENTER  取消 CANCEL")
        if state in (State.OPENING_SHIFT, State.CLOSING_SHIFT, State.AUTHORIZING):
            return Show("请稍候 Please wait", ("正在联系总账 Asking the ledger",), who)
        if state == State.IDLE:
            hint = {FIXED: f"定额 {format_fen(config.fixed_price_fen)}", COUNT: f"计次 {format_fen(config.unit_price_fen)}/{config.unit_name}",
                    MENU: "菜单 Menu", FREE: "自由金额 Any amount", DESK: "总台 Front desk"}[config.mode]
            footer = f"{who}  {'ONLINE' if self.is_online else 'OFFLINE'}"
            if self.is_queue_nearly_full:
                return Show(config.station_name, ("离线队列将满 Queue nearly full", "请恢复网络 Get the station online"),
                            footer, "warning")
            if self.printer_problem:  # seen before a visitor pays, not after
                return Show(config.station_name, (self.printer_problem, "请刷卡 Tap card"), footer, "warning")
            return Show(config.station_name, ("请刷卡 Tap card", hint), footer)
        if state == State.CONFIRM_NO_RECEIPT:
            return Show("无小票 No receipt", (self.printer_problem, "仍要收费? Sell anyway?"), "确认 ENTER  取消 CANCEL",
                        "warning")
        if state == State.AMOUNT:
            if sale.notice and not sale.typed:
                return Show("输入金额 Amount", (sale.notice, masked(sale.card.card_no)), "确认 ENTER  取消 CANCEL", "warning")
            # One line fits under the amount: the balance once the ledger has said it, the card till then.
            return Show("输入金额 Amount", (balance_line(sale) or masked(sale.card.card_no),), "确认 ENTER  取消 CANCEL",
                        big=f"￥{sale.typed or '0'}")
        if state == State.COUNT:
            total = int(sale.typed or 1) * config.unit_price_fen
            return Show(f"计次 Uses ({config.unit_name})", (balance_line(sale) or masked(sale.card.card_no), f"x {sale.typed or 1}"),
                        "确认 ENTER  取消 CANCEL", big=f"￥{format_fen(total)}")
        if state == State.MENU:
            picked = [f"{line.item} x{line.qty}" for line in sale.lines] or [f"{i + 1} {m.name}" for i, m in enumerate(config.menu[:3])]
            return Show(balance_line(sale) or "选择商品 Pick items", tuple(picked[-3:]), "数字选择 ENTER 确认", big=f"￥{format_fen(sale.amount_fen)}")
        if state == State.CHARGE_PIN:
            return Show("会员密码 Member PIN", (f"￥{format_fen(sale.amount_fen)}", "*" * len(sale.typed) or "_"), "确认 ENTER  取消 CANCEL")
        if state == State.UNCERTAIN:
            holds = ("总账已收 Held",) if self.ledger_holds else ()  # the ledger holds it (SET_ASIDE): not lost
            if self.may_leave_pending:
                # Two lines are all a 128x64 panel shows; the receipt prints by itself when the answer comes.
                return Show("待定 Sale pending", ("请勿重复收费", "Do NOT charge again"), "任意键离开 Any key", "warning")
            lines = ("请勿重复收费", "Do NOT charge again") + ((self.uncertain_reason,) if self.uncertain_reason else ())
            return Show("等待确认 Waiting", lines + holds, "正在重试 Retrying", "warning")
        if isinstance(self.last_receipt, ShiftSlipReceipt) and state in (State.PRINTING, State.DONE):
            return self._slip_screen()
        if state == State.PRINTING:
            title = "成功 Approved" if self.last_receipt.is_online else "离线成功 Approved OFFLINE"
            return Show(title, ("正在打印 Printing",), who, "ok", big=f"￥{format_fen(self.last_receipt.amount_fen)}")
        if state == State.DONE:
            receipt = self.last_receipt
            if receipt.title == LOSS_SLIP_TITLE:  # nothing was paid: the slip is the member's proof
                return Show("已挂失 Reported lost", (receipt.masked_card_number, "各站已冻结 Blocked"), "F1 补打 Reprint", "ok")
            balance = format_fen(receipt.balance_after_fen) if receipt.balance_after_fen is not None else "—"
            title = "成功 Approved" if receipt.is_online else "离线成功 Approved OFFLINE"
            if receipt.undoes_receipt_number:  # a void or reversal: it took money back, it approved nothing
                title = "已撤销 Voided" if receipt.title == RECEIPT_TITLES[Void.TYPE] else "已冲正 Reversed"
            return Show(title, (f"余额 Balance {balance}", receipt.receipt_number), "F1 补打 Reprint", "ok",
                        big=f"￥{format_fen(receipt.amount_fen)}")
        if state == State.CONFIRM_CLOSE:
            return Show("交班 Close shift?", (self.operator_name,), "确认 ENTER  取消 CANCEL", "warning")
        if state == State.CASH_COUNT:
            # Blind: no expected figure is shown before the count is final (the slip prints both).
            lines = (self._cash_notice,) if self._cash_notice else ("清点钱箱现金 Count the drawer",)
            return Show("交班点钞 Cash count", lines, "确认 ENTER  取消 CANCEL", "warning" if self._cash_notice else "normal",
                        big=f"￥{self._cash_typed or '0'}")
        if state == State.CASH_CONFIRM:
            return Show("确认现金 Confirm count", ("确认后交班 ENTER hands over", "重点 BACK counts again"),
                        "确认 ENTER  重点 BACK", "warning", big=f"￥{format_fen(self._cash_fen)}")
        if state == State.CONFIRM_UNDO:
            original = sale.original
            title = "冲正充值? Reverse top-up?" if sale.operation == Reversal.TYPE else "撤销交易? Void sale?"
            return Show(title, (f"{self.terminal_id}-{original.seq}",), "确认 ENTER  取消 CANCEL", "warning",
                        big=f"￥{format_fen(original.amount_fen)}")
        if state == State.SUPERVISOR_CARD:
            return Show("主管授权 Supervisor", ("请主管刷卡 Supervisor: tap your card",) + ((sale.notice,) if sale.notice else ()),
                        "取消 CANCEL", "warning")
        if state == State.SUPERVISOR_PIN:
            return Show("主管密码 Supervisor PIN", ("*" * len(sale.typed) or "_",), "确认 ENTER  取消 CANCEL", "warning")
        return Show(state.value)


def _slip_screen_lines(slip: ShiftSlipReceipt) -> tuple:
    if slip.cash_counted_fen is None:
        return ("请刷员工卡登录 Tap staff card",)
    difference = slip.cash_over_short_fen
    word = "长款 Over" if difference > 0 else "短款 Short" if difference < 0 else "相符 Balanced"
    return (f"{word} {format_fen(difference)}", "请刷员工卡登录 Tap staff card")


def amount_problem(typed: str) -> str:
    """Why ``typed`` cannot be charged (``parse_amount`` refused it), short enough for the panel."""
    whole, _, fraction = typed.partition(".")
    if len(fraction) > 2:
        return "两位小数 2 decimals"
    if not whole.strip("0") and not fraction.strip("0"):
        return "不能为零 Not 0"
    return f"上限 Max {format_fen(MAX_AMOUNT_FEN)}"


def _receipt(config: StationConfig, terminal_id: str, operator: str, card: CardRecord, lines, seq: int, time_ms: int,
             amount_fen: int | None = None, **rest) -> ReceiptData:
    when = datetime.fromtimestamp(time_ms / 1000, ZoneInfo(config.time_zone))
    return ReceiptData(
        park_name=config.park_name,
        station_name=config.station_name,
        terminal_id=terminal_id,
        seq=seq,
        operator=operator,
        time_text=when.strftime("%Y-%m-%d %H:%M:%S"),
        masked_card_number=masked(card.card_no),
        line_items=tuple(lines),
        amount_fen=sum(line.qty * line.unit_fen for line in lines) if amount_fen is None else amount_fen,
        **rest,
    )


def make_offline_receipt(config: StationConfig, terminal_id: str, operator: str, card: CardRecord, lines, seq: int,
                         time_ms: int, is_time_uncertain: bool, *, is_reprint: bool = False) -> ReceiptData:
    """The receipt for a sale approved offline: no balance (the ledger has not seen it yet), no
    ledger transaction id, marked OFFLINE, and the time marked uncertain when it is."""
    return _receipt(config, terminal_id, operator, card, lines, seq, time_ms, is_time_uncertain=is_time_uncertain,
                    is_online=False, is_reprint=is_reprint)


def make_receipt(config: StationConfig, terminal_id: str, operator: str, card: CardRecord, lines, result, *,
                 is_reprint: bool = False, title: str | None = None, **rest) -> ReceiptData:
    """The receipt for an approved request: also used to reprint after a restart. ``rest``: the
    receipt's further fields (a method, detail lines, what a void undoes)."""
    balances = result.balances
    return _receipt(config, terminal_id, operator, card, lines, result.seq, result.ledger_time_ms,
                    balance_after_fen=balances.fen if balances else None,
                    bonus_balance_after_fen=(balances.bonus or None) if balances else None,
                    ledger_transaction_id=str(result.txn) if result.txn is not None else None,
                    is_online=True, is_reprint=is_reprint, **({"title": title} if title else {}), **rest)
