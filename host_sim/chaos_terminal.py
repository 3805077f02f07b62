"""A headless terminal for the chaos test: the real link, outbox, offline policy and receipt rules
without the screens, selling (or topping up) as fast as a busy station, in its own process so the
test can SIGKILL it at any instant.

A "printed receipt" is a line appended to ``--receipts`` and fsync'd, then marked in the outbox, as
the real app does with paper; a kill between the two prints it again at restart, marked REPRINT.
It stops once its counter has passed ``--ops`` and nothing is left to send or print.

Every choice it makes comes from ``--seed`` (with the terminal id and ``--life``, how many times the
controller has started it), so a failing chaos run replays from the seed it printed. With
``--core`` a station's sales go through the real cashier state machine (terminal.core): a card tap,
the amount typed, ENTER, and the effects it asks for carried out here in place of screens and paper.

Run: python -m host_sim.chaos_terminal --home H --terminal T-FISH-1 --port P --cards C1,C2 --ops 50 --receipts F
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path
import random
import sys
import time

from ledger.park_home import ParkHome
from protocol import envelope
from protocol.card_record import CardRecord
from protocol.messages import REQUEST_TYPES, CardKind, CardRef, Channel, Charge, LineItem, OfflineCharge, TopUp, parse
from terminal import events, offline
from terminal.app import owed_receipts
from terminal.identity import TerminalIdentity
from terminal.net import LedgerLink, NoResultError
from terminal.outbox import Outbox

from .rig import card

ONLINE_WAIT_S = 1.5    # a shorter wait than a real till, so outages turn into offline sales often


class ChaosTerminal:
    def __init__(self, args):
        home = ParkHome(Path(args.home))
        identity = TerminalIdentity.load(home.bundle_path(args.terminal))
        identity = dataclasses.replace(identity, broker=dataclasses.replace(identity.broker, port=args.port))
        self.outbox = Outbox(Path(args.state) / f"{args.terminal}.db")
        self.link = LedgerLink(identity, self.outbox, mqtt_version=args.mqtt, resend_interval_s=0.5)
        self.identity = identity
        self.cards = args.cards.split(",")
        self.ops = args.ops
        self.is_desk = identity.station_id == "desk"
        self.receipts = open(args.receipts, "a", buffering=1)
        self.random = random.Random(f"{args.seed}-{args.terminal}-{args.life}")
        self.machine = self._logged_in_machine() if args.core and not self.is_desk else None

    def card(self, card_no: str) -> CardRef:
        return card(card_no)

    def fields(self, seq: int, card_ref: CardRef, now_ms: int, is_uncertain: bool = False) -> dict:
        return dict(park=self.identity.park_id, terminal=self.identity.terminal_id, seq=seq, terminal_time_ms=now_ms,
                    clock_uncertain=is_uncertain, operator="wang", config_version=0, card=card_ref)

    # ------------------------------------------------------------ receipts
    def print_receipt(self, seq: int, kind: str, request, is_reprint: bool = False) -> None:
        line = {"terminal": self.identity.terminal_id, "seq": seq, "kind": kind, "card": request.card.account,
                "amount_fen": getattr(request, "amount_fen", 0), "is_reprint": is_reprint,
                "supersedes_seq": getattr(request, "supersedes_seq", None)}
        self.receipts.write(json.dumps(line) + "\n")
        self.receipts.flush()
        os.fsync(self.receipts.fileno())
        self.outbox.mark_printed(seq, int(time.time() * 1000))

    def print_owed(self) -> None:
        """The real app's rule (terminal.app.owed_receipts), printing to the receipts log."""
        for seq, request, result in owed_receipts(self.outbox, int(time.time() * 1000)):
            kind = "offline" if result is None else ("topup" if isinstance(request, TopUp) else "online")
            self.print_receipt(seq, kind, request, is_reprint=True)

    # ------------------------------------------------------------ one sale
    def sell(self) -> None:
        card_ref = self.card(self.random.choice(self.cards))
        if self.machine is not None:
            self._sell_through_the_core(card_ref)
            return
        if self.is_desk:
            pending = self.link.enqueue(lambda seq: TopUp(**self.fields(seq, card_ref, self.link.clock_ms()),
                                                          amount_fen=self.random.choice((5000, 10000)),
                                                          channel=Channel.CASH.value, payment_ref=""))
            result = self._wait_for(pending)
            if result.is_approved:
                self.print_receipt(pending.seq, "topup", parse(envelope.split(pending.payload).body, REQUEST_TYPES))
            return
        amount = self.random.choice((500, 1000, 2000, 3000))
        lines = (LineItem(item="鱼饵 Bait", qty=1, unit_fen=amount),)
        pending = self.link.enqueue(lambda seq: Charge(**self.fields(seq, card_ref, self.link.clock_ms()),
                                                       amount_fen=amount, lines=lines))
        request = parse(envelope.split(pending.payload).body, REQUEST_TYPES)
        try:
            result = self.link.send(pending, ONLINE_WAIT_S)
        except NoResultError:
            if self._sell_offline(card_ref, amount, lines, pending.seq) is not None:
                return
            result = self._wait_for(pending)  # the policy said no: the online attempt still stands
        if result.is_approved:
            self.print_receipt(pending.seq, "online", request)

    def _sell_offline(self, card_ref, amount, lines, supersedes_seq, *, printed: bool = True):
        """Queue an offline sale if the policy allows: (seq, time, uncertain), else None."""
        state = self.link.state
        now_ms, is_uncertain = state.now_ms()
        key = (card_ref.no, card_ref.issuance)
        if offline.decide(state.policy, state.blocklist, state.window, card_key=key, amount_fen=amount, mode="free",
                          needs_pin=False, now_ms=now_ms or 0, last_contact_ms=state.last_contact_ms,
                          known_balance_fen=None) is not None:
            return None
        state.window.add(key, amount, now_ms)
        state.save_window()
        pending = self.link.enqueue(lambda seq: OfflineCharge(
            **self.fields(seq, card_ref, now_ms, is_uncertain), amount_fen=amount, lines=lines,
            supersedes_seq=supersedes_seq, approved_ms=now_ms), replaces_seq=supersedes_seq)
        if printed:
            self.print_receipt(pending.seq, "offline", parse(envelope.split(pending.payload).body, REQUEST_TYPES))
        return pending.seq, now_ms, is_uncertain

    # ------------------------------------------------------------ the real cashier state machine
    def _logged_in_machine(self):
        from protocol.messages import Balances, Result
        from terminal.config import StationConfig
        from terminal.core import Terminal

        machine = Terminal(StationConfig(park_name="Chaos", station_name="Chaos", staff={"S0001": ("wang", "Wang")}),
                           self.identity.terminal_id)
        machine.start(0)
        machine.handle(events.CardTapped("01020304", CardRecord("S0001", 1, "staff", self.identity.park_id)))
        for key in "1234":
            machine.handle(events.KeyPressed(key))
        machine.handle(events.KeyPressed(events.ENTER))
        # The shift is granted here, not by the ledger: chaos tests delivery; shifts have their own tests.
        machine.handle(events.Answer(Result(park=self.identity.park_id, terminal=self.identity.terminal_id, seq=1,
                                            request_sha256="0" * 64, outcome="approved", reason="OK",
                                            balances=Balances(fen=0, bonus=0, points=0), txn=None,
                                            ledger_time_ms=0, detail="")))
        assert machine.state == events.State.IDLE, machine.state
        return machine

    def _sell_through_the_core(self, card_ref) -> None:
        machine = self.machine
        record = CardRecord(card_ref.no, card_ref.issuance, CardKind.TEMPORARY.value, self.identity.park_id)
        effects = machine.handle(events.CardTapped(card_ref.uid, record))
        for key in str(self.random.choice((5, 10, 20, 30))):
            effects += machine.handle(events.KeyPressed(key))
        effects += machine.handle(events.KeyPressed(events.ENTER))
        pending = None
        while effects:
            effect, effects = effects[0], effects[1:]
            if isinstance(effect, events.Submit):
                pending = self._enqueue_submitted(effect)
                machine.submitted(pending.seq)
                try:
                    effects += machine.handle(events.Answer(self.link.send(pending, ONLINE_WAIT_S)))
                except NoResultError:
                    effects += machine.handle(events.NoAnswer())
            elif isinstance(effect, events.TryOffline):
                sold = self._sell_offline(card_ref, effect.amount_fen, effect.lines, effect.supersedes_seq, printed=False)
                if sold is not None:
                    effects += machine.handle(events.OfflineApproved(*sold))
                else:
                    effects += machine.handle(events.OfflineRefused("OFFLINE_REFUSED", "refused"))
                    if machine.state == events.State.UNCERTAIN:  # the online attempt still stands
                        effects += machine.handle(events.Answer(self._wait_for(pending)))
            elif isinstance(effect, events.Print):
                receipt = effect.receipt
                kind = "online" if receipt.is_online else "offline"
                request = parse(envelope.split(self.outbox_payload(receipt.seq)).body, REQUEST_TYPES)
                self.print_receipt(receipt.seq, kind, request)
                effects += machine.handle(events.PrintFinished())
        machine.handle(events.KeyPressed(events.ENTER))  # the cashier clears DONE or the message
        if machine.state != events.State.IDLE:
            machine.handle(events.Tick(machine.now_ms + 10**9))
        assert machine.state == events.State.IDLE, f"the till is stuck in {machine.state}"

    def outbox_payload(self, seq: int) -> bytes:
        return bytes(self.outbox.db.execute("SELECT payload FROM outbox WHERE seq = ?", (seq,)).fetchone()[0])

    def _enqueue_submitted(self, submit):
        fields = dict(submit.fields)
        card_ref = fields.pop("card").ref()  # the TappedCard the machine's request is about
        fields.pop("operator")
        return self.link.enqueue(lambda seq: submit.message_type(**self.fields(seq, card_ref, self.link.clock_ms()),
                                                                 **fields))

    def _wait_for(self, pending):
        while True:
            try:
                return self.link.send(pending, ONLINE_WAIT_S)
            except NoResultError:
                continue

    # ------------------------------------------------------------ the loop
    def run(self) -> int:
        try:
            self.link.connect(timeout_s=2)
            self.link.sync_seq(timeout_s=2)
        except Exception:  # noqa: BLE001 - offline at boot is normal here
            pass
        self.print_owed()
        while self.outbox.last_seq < self.ops:
            self.sell()
            self.print_owed()
        while self.outbox.pending_count() or self.outbox.unprinted():
            time.sleep(0.2)
            self.print_owed()
        self.link.close()
        return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True)
    parser.add_argument("--terminal", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cards", required=True)
    parser.add_argument("--ops", type=int, required=True)
    parser.add_argument("--receipts", required=True)
    parser.add_argument("--state", required=True, help="folder for the terminal's outbox")
    parser.add_argument("--seed", default="1", help="the chaos run's seed: every choice this terminal makes follows from it")
    parser.add_argument("--life", type=int, default=0, help="how many times this terminal was started before")
    parser.add_argument("--core", action="store_true", help="sell through the real cashier state machine (terminal.core)")
    parser.add_argument("--mqtt", default="5")
    return ChaosTerminal(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
