"""A headless terminal for the chaos test: the real link, outbox, offline policy and receipt rules
without the screens, selling (or topping up) as fast as a busy station, in its own process so the
test can SIGKILL it at any instant.

A "printed receipt" is a line appended to ``--receipts`` and fsync'd, then marked in the outbox, as
the real app does with paper; a kill between the two prints it again at restart, marked REPRINT.
It stops once its counter has passed ``--ops`` and nothing is left to send or print.

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

from protocol import envelope
from protocol.messages import REQUEST_TYPES, CardRef, Charge, LineItem, OfflineCharge, TopUp, parse
from terminal import offline
from terminal.app import owed_receipts
from terminal.identity import TerminalIdentity
from terminal.net import LedgerLink, NoResultError
from terminal.outbox import Outbox
from tools.park import ParkHome

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
        self.random = random.Random(f"{args.seed}-{args.terminal}-{os.getpid()}")

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
        if self.is_desk:
            pending = self.link.enqueue(lambda seq: TopUp(**self.fields(seq, card_ref, self.link.clock_ms()),
                                                          amount_fen=self.random.choice((5000, 10000)),
                                                          channel="cash", payment_ref=""))
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
            if self._sell_offline(card_ref, amount, lines, pending.seq):
                return
            result = self._wait_for(pending)  # the policy said no: the online attempt still stands
        if result.is_approved:
            self.print_receipt(pending.seq, "online", request)

    def _sell_offline(self, card_ref, amount, lines, supersedes_seq) -> bool:
        state = self.link.state
        now_ms, is_uncertain = state.now_ms()
        key = (card_ref.no, card_ref.issuance)
        if offline.decide(state.policy, state.blocklist, state.window, card_key=key, amount_fen=amount, mode="free",
                          needs_pin=False, now_ms=now_ms or 0, last_contact_ms=state.last_contact_ms,
                          known_balance_fen=None) is not None:
            return False
        state.window.add(key, amount, now_ms)
        state.save_window()
        pending = self.link.enqueue(lambda seq: OfflineCharge(
            **self.fields(seq, card_ref, now_ms, is_uncertain), amount_fen=amount, lines=lines,
            supersedes_seq=supersedes_seq, approved_ms=now_ms), replaces_seq=supersedes_seq)
        self.print_receipt(pending.seq, "offline", parse(envelope.split(pending.payload).body, REQUEST_TYPES))
        return True

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
    parser.add_argument("--seed", default="1")
    parser.add_argument("--mqtt", default="5")
    return ChaosTerminal(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
