"""The rental hut of ``fieldpos demo``: rods and bikes at the lake (issue 13's simulated day).

Two rental desks run the real terminal app (``terminal/rental.py``) on emulated hardware, T-RENT-1
with a USB keyboard-wedge scanner (evdev) and T-RENT-2 with a serial one, sharing the lake's patchy
Wi-Fi with the BBQ. Rental staff log in with their card and PIN; vouchers and item labels reach
the app only through the emulated scanner, the way a desk's scanner reads a phone or a receipt.

- Morning: two visitors pay a deposit online before they come (a rod and a bike), through the
  simulated payment provider over HTTP: the ledger's client creates the order, the visitor's phone
  pays on the provider's page, the provider's signed notification (the first one delivered twice)
  books the deposit, and the phone's return page shows the voucher, which the desk scans. Deposits
  at the desk (F2: a rod in cash, a bike by WeChat, a rod in cash whose visitor comes back later) and
  one from a park card (tapped at the desk). Everything goes out against its voucher; the online rod
  and the card's rod come back on time.
- While the Wi-Fi is down: the later visitor shows their one voucher at both windows, and each desk
  checks it itself and hands a rod out; at sync the ledger records both and flags the voucher.
- Afternoon (the park clock moves on 4 h 30 min): the cash rod comes back late, the online bike with
  a flat tyre, the WeChat bike not at all (lost: beyond its deposit, an open claim). A refund round
  pays the online renters back through the provider, to their original payment.

At the end the demo prints the deposit pool from the deposit orders and checks it against the pool's
postings (``ledger verify`` checks the same, order by order).
"""

from collections import Counter
from dataclasses import dataclass, field
import html
import re
import threading
import time
import urllib.request

from ledger.errors import TransientStoreError
from ledger.payments.deposit_book import LedgerDepositBook
from ledger.payments.notifications import PaymentEndpoint
from ledger.payments.provider import PAYMENT_EVENT
from ledger.payments.refunds import RefundSender
from ledger.payments.settings import load_payment_settings
from protocol.money import format_fen
from terminal.events import State
from terminal.hal.keypad import Key
from terminal.rental import RentalState

from .payment_provider import provider_for_park
from .station import RENTAL_LABELS, RENTAL_STAFF, ScriptedStation, add_rental_desk

# The rental hut's two windows and their scanners.
RENTAL_DESKS = {"T-RENT-1": "evdev", "T-RENT-2": "serial"}
# The afternoon: past a rod's 4 h and 15 min of grace by 15 minutes (one started hour late), and a bike
# out 5 started hours. Not a whole number of hours, so a few seconds more or less change nothing.
AFTERNOON_MS = 270 * 60_000
# How long the demo waits for the provider's notifications to be booked and shown (a bound, not a pace).
PAYMENT_WAIT_S = 30.0
# Refund rounds the afternoon may need when the books are busy (the ledger's own thread goes every 15 s).
REFUND_ROUNDS = 5
PROVIDER = "wechat"
_VOUCHER_ON_PAGE = re.compile(r"<code>(FPV1:[^<]+)</code>")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ParkClockBook(LedgerDepositBook):
    """The ledger's books for online payments, booking on the park clock like the rest of the demo's
    day; the endpoint still checks the provider's signatures against the wall clock they were made on."""

    def __init__(self, db_path, keys, park_id, clock):
        super().__init__(db_path, keys, park_id)
        self.clock = clock

    def record_payment(self, provider, order, *, now_ms):
        return super().record_payment(provider, order, now_ms=self.clock.now_ms())

    def refund_done(self, refund_no, provider_refund_id, *, now_ms):
        return super().refund_done(refund_no, provider_refund_id, now_ms=self.clock.now_ms())


def provision_rental_hut(rig, clock) -> None:
    """The rental station, its rods and bikes, Sun (rental staff) and the two desks: after
    ``rig.create``, before the broker starts (the desks' logins go into its config)."""
    add_rental_desk(rig, clock.now_ms(), *RENTAL_DESKS)


@dataclass
class RentalHut:
    rig: object
    clock: object
    desks: list = field(default_factory=list)  # ScriptedStation, in RENTAL_DESKS order
    provider: object = None  # host_sim.payment_provider.SimulatedProvider
    endpoint: PaymentEndpoint | None = None
    refunds: RefundSender | None = None
    outcomes: Counter = field(default_factory=Counter)  # what the desks' requests ended as
    returns: Counter = field(default_factory=Counter)   # on time / late / damaged / lost
    later_voucher: str = ""  # paid at the desk, collected later (offline, at both windows)
    notifications: int = 0  # the provider's notifications sent so far (payments, each copy, and refunds)

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, rig, clock, *, wifi_port: int) -> "RentalHut":
        hut = cls(rig, clock)
        try:
            hut._open_payments()
            for terminal_id, scanner in RENTAL_DESKS.items():
                # An 80 mm printer printing the voucher with its own QR command: the emulator reads the
                # code back, as a phone or the desk's scanner reads it off the paper.
                desk = ScriptedStation(rig, terminal_id, profile="80mm-gb18030", mode="rental", scanner=scanner,
                                       link=rig.link(terminal_id, connect=False, port=wifi_port))
                hut.desks.append(desk)
                desk.turns(lambda desk=desk: desk.link.state.rental is not None)  # the stock, in its signed config
                desk.log_in(RENTAL_STAFF)
        except BaseException:
            hut.close()
            raise
        return hut

    def _open_payments(self) -> None:
        """The provider sim and the ledger's side of it (the endpoint its notifications reach and
        the refund sender) as ``ledger serve`` starts them from the park's payment settings."""
        home = self.rig.home
        self.provider = provider_for_park(home.home, name=PROVIDER)
        settings = load_payment_settings(home.home)
        clients = {name: provider.client() for name, provider in settings.providers.items()}
        book = ParkClockBook(home.store_location, home.ledger_keys(), self.rig.park_id, self.clock)
        self.endpoint = PaymentEndpoint(providers=clients, book=book, host=settings.listen_host,
                                        port=settings.listen_port, public_base_url=settings.public_base_url).start()
        self.refunds = RefundSender(providers=clients, book=book, notify_url_of=self.endpoint.notify_url,
                                    clock_ms=self.clock.now_ms)

    def close(self) -> None:
        for desk in self.desks:
            desk.close()
        # Each HTTP server notices its shutdown at its next poll (every 0.5 s): stop the two side by side.
        stopping = [threading.Thread(target=server.stop) for server in (self.endpoint, self.provider) if server is not None]
        for thread in stopping:
            thread.start()
        for thread in stopping:
            thread.join()

    # ------------------------------------------------------------ the day
    def morning(self, visitor_card) -> None:
        """Deposits online, at the desk and from ``visitor_card`` (a park card with 50.00 on it at
        least); everything handed out; the online rod and the card's rod back on time."""
        desk = self.desks[0]
        rod, rod2, rod3 = RENTAL_LABELS["rod"]
        bike, bike2 = RENTAL_LABELS["bike"]
        rod_voucher = self._paid_online("DEMO-ROD-1", "rod", notified_twice=True)
        bike_voucher = self._paid_online("DEMO-BIKE-1", "bike")
        self._hand_out(desk, rod_voucher, rod)
        self._hand_out(desk, bike_voucher, bike)
        self._hand_out(desk, self._desk_deposit(desk, "rod", "1"), rod2)      # cash
        self._hand_out(desk, self._desk_deposit(desk, "bike", "2"), bike2)    # WeChat at the desk
        self._card_deposit_and_hand_out(desk, visitor_card, "rod", rod3)
        self._return(desk, rod, "on time")
        self._return(desk, rod3, "on time")  # the card's deposit is closed: the card may go back at the exit
        self.later_voucher = self._desk_deposit(desk, "rod", "1")  # the visitor collects the rod later
        desk.keys("C")

    def offline_twice(self) -> None:
        """The Wi-Fi is down: the later voucher is shown at both windows, and each hands a rod out."""
        for desk, label in zip(self.desks, RENTAL_LABELS["rod"][::2]):  # the two rods back on time
            desk.turns(lambda desk=desk: not desk.app.machine.is_online)
            self._hand_out(desk, self.later_voucher, label, offline=True)

    def pending(self) -> int:
        return sum(desk.link.outbox.pending_count() for desk in self.desks)

    def afternoon(self) -> None:
        """The park clock moves on 4 h 30 min; the rest comes back: late, damaged, lost; then the
        ledger's refund round pays the online renters back through the provider."""
        self.clock.advance(AFTERNOON_MS)
        desk = self.desks[0]
        rod2 = RENTAL_LABELS["rod"][1]
        bike, bike2 = RENTAL_LABELS["bike"]
        self._return(desk, rod2, "late")
        self._return(desk, bike, "damaged", damage_keys="1")  # the tyre
        self._return(desk, bike2, "lost")
        # As the ledger's refund thread does: a round that met busy books goes again (same numbers).
        for _ in range(REFUND_ROUNDS):
            if not any(code == TransientStoreError.code for _, code in self.refunds.run_once().waiting):
                break
        # Every notification answered before the figures are read (the refunds' come after their answer).
        self.notifications += len(self.provider.refunds)
        self.provider.wait_for_deliveries(self.notifications, PAYMENT_WAIT_S)

    # ------------------------------------------------------------ a visitor's phone and the provider
    def _paid_online(self, out_trade_no: str, item_type: str, *, notified_twice: bool = False) -> str:
        """The ledger creates the order; the visitor pays on the provider's page and reads the voucher
        off the return page once the provider's notification is booked (``notified_twice``: the
        provider delivers it twice, as WeChat Pay may)."""
        self.provider.faults.duplicate_notifications = notified_twice
        self.notifications += 2 if notified_twice else 1
        client = self.refunds.providers[PROVIDER]
        deposit_fen = next(t.deposit_fen for t in self.desks[0].link.state.rental.item_types if t.item_type == item_type)
        order = client.create_order(out_trade_no=out_trade_no, item_type=item_type, amount_fen=deposit_fen,
                                    description=f"押金 deposit {item_type}",
                                    notify_url=self.endpoint.notify_url(PROVIDER),
                                    return_url=self.endpoint.voucher_url(PROVIDER, out_trade_no))
        _read(order.pay_url)  # the payer's page
        # Paying posts the page's form; the provider redirects to the return page.
        page = _read(f"{self.provider.base_url}/sim/pay/{out_trade_no}", data=b"")
        deadline = time.monotonic() + PAYMENT_WAIT_S
        while (found := _VOUCHER_ON_PAGE.search(page)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no voucher on the return page of {out_trade_no} within {PAYMENT_WAIT_S:.0f} s")
            time.sleep(0.05)  # the page reloads itself until the notification is booked
            page = _read(f"{self.provider.base_url}/return/{out_trade_no}")
        return html.unescape(found.group(1))

    # ------------------------------------------------------------ the desk's hands
    def _type_key(self, desk, item_type: str) -> str:
        types = [known.item_type for known in desk.link.state.rental.item_types]
        return str(types.index(item_type) + 1)

    def _desk_deposit(self, desk, item_type: str, channel_key: str) -> str:
        """F2: a deposit paid at the desk; returns the voucher as the printer printed it (its QR)."""
        _ready(desk)
        desk.keys([Key.F2])
        desk.keys(self._type_key(desk, item_type) + channel_key)
        desk.turns(lambda: desk.state in (RentalState.VOUCHER, State.MESSAGE))
        self.outcomes["deposit at the desk" if desk.state == RentalState.VOUCHER else "deposit refused"] += 1
        (voucher,) = desk.sim.printer.receipts[-1].qr_payloads
        return voucher

    def _card_deposit_and_hand_out(self, desk, visitor_card, item_type: str, label: str) -> None:
        _ready(desk)
        desk.tap(visitor_card)
        desk.keys(self._type_key(desk, item_type))
        desk.turns(lambda: desk.state in (RentalState.VOUCHER, State.MESSAGE))
        self.outcomes["deposit from a card" if desk.state == RentalState.VOUCHER else "deposit refused"] += 1
        desk.sim.field.remove()
        self._hand_out(desk, None, label)

    def _hand_out(self, desk, voucher: str | None, label: str, *, offline: bool = False) -> None:
        """Scan the voucher (None: the desk is already on it, after a deposit) and the item's label."""
        if voucher is not None:
            _ready(desk)
            desk.scan(voucher)
            desk.turns(lambda: desk.state in (RentalState.VOUCHER, State.MESSAGE))
            if desk.state != RentalState.VOUCHER:
                raise RuntimeError(f"{desk.terminal_id} did not take the voucher for {label}: {desk.app.screen}")
        desk.scan(label)
        desk.turns(lambda: desk.state in (State.DONE, State.MESSAGE))
        if desk.state == State.DONE:
            self.outcomes["hand-out offline" if offline else "hand-out"] += 1
        else:
            self.outcomes["hand-out refused"] += 1
        desk.keys("C")

    def _return(self, desk, label: str, how: str, *, damage_keys: str = "") -> None:
        _ready(desk)
        desk.scan(label)
        desk.turns(lambda: desk.state in (RentalState.INSPECT, State.MESSAGE))
        if desk.state != RentalState.INSPECT:
            raise RuntimeError(f"{desk.terminal_id} did not take {label} back: {desk.app.screen}")
        if how == "damaged":
            desk.keys("2" + damage_keys + "E")
        else:
            desk.keys("3" if how == "lost" else "1")
        desk.turns(lambda: desk.state in (State.DONE, State.MESSAGE))
        if desk.state == State.DONE:
            self.returns[how] += 1
        else:
            self.outcomes["return refused"] += 1
        desk.keys("C")

    # ------------------------------------------------------------ what happened
    def summary(self, store, park_id: str) -> list[str]:
        """The rental lines of the demo's printout, from the books and the provider sim."""
        db = store.db
        deposits = dict(db.execute("""SELECT CASE WHEN route LIKE 'online_%' THEN 'online' WHEN route = 'card' THEN 'card'
                                              ELSE 'desk' END, COUNT(*) FROM deposit_order WHERE park_id = ? GROUP BY 1""",
                                   (park_id,)).fetchall())
        pool = deposit_pool(store, park_id)
        flagged = db.execute("SELECT COUNT(*) FROM alert WHERE kind = 'VOUCHER_REDEEMED_TWICE'").fetchone()[0]
        notices = Counter(d.subject for d in self.provider.deliveries if d.event_type == PAYMENT_EVENT and 200 <= d.http_status < 300)
        made = list(self.provider.refunds.values())
        hand_outs = self.outcomes["hand-out"] + self.outcomes["hand-out offline"]
        refused = "".join(f"; {count} {what}" for what, count in sorted(self.outcomes.items()) if "refused" in what)
        return [
            f"rentals ({', '.join(f'{t} {s}' for t, s in RENTAL_DESKS.items())} scanner): "
            f"{sum(deposits.values())} deposits ({deposits.get('online', 0)} paid online, {deposits.get('desk', 0)} at the desk, "
            f"{deposits.get('card', 0)} from a park card); {hand_outs} hand-outs ({self.outcomes['hand-out offline']} offline: "
            f"one voucher at both desks, {flagged} flagged at sync); {sum(self.returns.values())} returns ("
            + ", ".join(f"{count} {how}" for how, count in sorted(self.returns.items())) + f"){refused}",
            f"payment provider sim over HTTP: {len(self.provider.orders)} orders paid, {sum(notices.values())} payment "
            f"notifications → {deposits.get('online', 0)} deposits; {len(made)} refunds to the original payment, "
            f"{_fen(sum(refund.amount_fen for refund in made))}",
            f"deposit pool: {pool.held_count} held {_fen(pool.held_fen)}; released {_fen(pool.released_fen)}; captured "
            f"{_fen(pool.captured_fen)} (rental, late fee, damage); forfeited {_fen(pool.forfeited_fen)}; open claims "
            f"{pool.claims} {_fen(pool.claimed_fen)}; pool {_fen(pool.pool_fen)} = open holds {_fen(pool.held_fen)}: "
            + ("verified" if pool.pool_fen == pool.held_fen else "MISMATCH"),
        ]


@dataclass(frozen=True)
class DepositPool:
    held_count: int      # deposits held now (paid, or the item out)
    held_fen: int
    released_fen: int    # back to the payers on return
    captured_fen: int    # kept on return: rental, late fee, damage (up to the deposit)
    forfeited_fen: int
    claims: int          # charges beyond the deposit still owed
    claimed_fen: int
    pool_fen: int        # the pool accounts' postings: equal to held_fen when the books hold together


def deposit_pool(store, park_id: str) -> DepositPool:
    """The deposit pool from the deposit orders, and the pool accounts' balance from the postings."""
    db = store.db
    held_count, held_fen = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(deposit_fen), 0) FROM deposit_order WHERE park_id = ? AND state IN ('held', 'out')",
        (park_id,)).fetchone()
    released, captured = db.execute(
        """SELECT COALESCE(SUM(refunded_fen), 0), COALESCE(SUM(deposit_fen - refunded_fen), 0)
             FROM deposit_order WHERE park_id = ? AND state = 'closed'""", (park_id,)).fetchone()
    forfeited = db.execute("SELECT COALESCE(SUM(deposit_fen), 0) FROM deposit_order WHERE park_id = ? AND state = 'forfeited'",
                           (park_id,)).fetchone()[0]
    claims, claimed = db.execute("SELECT COUNT(*), COALESCE(SUM(amount_fen), 0) FROM rental_claim WHERE park_id = ?",
                                 (park_id,)).fetchone()
    # 'deposit;' is the next string after every 'deposit:...' (a key range, as ledger verify reads the pool).
    pool = db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id >= 'deposit:' AND account_id < 'deposit;'"
                      ).fetchone()[0]
    return DepositPool(held_count, held_fen, released, captured, forfeited, claims, claimed, pool)


def _ready(desk) -> None:
    """The desk at its idle screen, having taken in what came while nobody turned it (the link
    going up or down, a newer signed config): the next scan or key is then read by that screen."""
    for _ in range(3):
        desk.app.turn()
    if desk.state != State.IDLE:
        desk.keys("C")
    if desk.state != State.IDLE:
        raise RuntimeError(f"{desk.terminal_id} is not at its idle screen: {desk.app.screen}")


def _read(url: str, data: bytes | None = None) -> str:
    with _NO_PROXY.open(urllib.request.Request(url, data=data, method="POST" if data is not None else "GET"),
                        timeout=10) as response:
        return response.read().decode()


def _fen(amount: int) -> str:
    return format_fen(amount, grouped=True)
