"""``fieldpos rental ...``: a park's rental item types and items (pushed to its rental terminals in
their signed config), the forfeit park rule for deposits never closed, and the refunds owed to
online payers (a refund the provider refused for good is retried or paid at the desk from here)."""

import argparse
import sys
import time

from protocol.errors import LocalProtocolError
from tools.park_args import existing_store, park_home

CONFIG_NOTE = "rental terminals take it with their next config"


def _id(text: str) -> str:
    from protocol.topics import check_id

    try:
        return check_id(text, "id")
    except LocalProtocolError as error:
        raise argparse.ArgumentTypeError(str(error).split("] ", 1)[-1]) from None


def _fen(text: str) -> int:
    if not text.isdigit() or len(text) > 8:
        raise argparse.ArgumentTypeError(f"an amount in fen must be a whole number, not {text!r}")
    return int(text)


def _minutes(text: str) -> int:
    if not text.isdigit() or int(text) > 7 * 24 * 60:
        raise argparse.ArgumentTypeError(f"minutes must be a whole number up to a week, not {text!r}")
    return int(text)


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 3650:
        raise argparse.ArgumentTypeError(f"days must be a whole number from 1 to 3650, not {text!r}")
    return int(text)


def _damage(text: str) -> tuple[str, str, int]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"a damage is CODE:NAME:FEE_FEN, e.g. reel:渔轮:2000, not {text!r}")
    return _id(parts[0]), parts[1], int(parts[2])


def _store(args):
    return existing_store(args)


def _park_id(args) -> str:
    return park_home(args).park_id()


def _fail(text: str) -> int:
    print(f"fieldpos: {text}", file=sys.stderr)
    return 1


def cmd_type_add(args) -> int:
    from protocol.messages import DamageFee, RentalType

    store = _store(args)
    if store is None:
        return 1
    try:
        item_type = RentalType(
            item_type=args.type, name=args.name, deposit_fen=args.deposit_fen, price_fen=args.price_fen,
            price_per=args.per, allowed_minutes=args.allowed_minutes, grace_minutes=args.grace_minutes,
            late_fee_per_hour_fen=args.late_fee_fen, lost_fee_fen=args.lost_fee_fen,
            damage=tuple(DamageFee(code=code, name=name, fee_fen=fee) for code, name, fee in args.damage or ()))
    except LocalProtocolError as error:
        store.close()
        return _fail(f"rental type {args.type}: {str(error).split('] ', 1)[-1]}")
    try:
        store.add_rental_type(_park_id(args), item_type)
    finally:
        store.close()
    print(f"rental type {args.type} added; {CONFIG_NOTE}")
    return 0


def cmd_type_list(args) -> int:
    from protocol.money import format_fen

    store = _store(args)
    if store is None:
        return 1
    try:
        for t in store.rental_types(_park_id(args)):
            damage = ", ".join(f"{fee.code} {format_fen(fee.fee_fen)}" for fee in t.damage) or "no damage list"
            limit = f"{t.allowed_minutes} min + {t.grace_minutes} grace" if t.allowed_minutes else "no time limit"
            print(f"{t.item_type}  {t.name}  deposit {format_fen(t.deposit_fen)}  {format_fen(t.price_fen)}/{t.price_per}"
                  f"  {limit}  late {format_fen(t.late_fee_per_hour_fen)}/h  lost {format_fen(t.lost_fee_fen)}  {damage}")
    finally:
        store.close()
    return 0


def cmd_item_add(args) -> int:
    store = _store(args)
    if store is None:
        return 1
    try:
        park_id = _park_id(args)
        if store.rental_type(park_id, args.type) is None:
            return _fail(f"no rental type {args.type} (add it with 'fieldpos rental type add')")
        if args.station not in {row[0] for row in store.db.execute("SELECT station_id FROM station WHERE park_id=?",
                                                                      (park_id,))}:
            return _fail(f"no station {args.station} in park {park_id}")
        store.add_rental_item(park_id, args.label, args.station, args.type, int(time.time() * 1000))
    finally:
        store.close()
    print(f"rental item {args.label} ({args.type}) added at {args.station}; {CONFIG_NOTE}")
    return 0


def cmd_item_list(args) -> int:
    store = _store(args)
    if store is None:
        return 1
    try:
        for label, station, item_type, state in store.rental_items(_park_id(args), args.station):
            print(f"{label}  {item_type}  {station}  {state}")
    finally:
        store.close()
    return 0


def _set_state(args, state: str, done: str, *, when_not=("out",)) -> int:
    store = _store(args)
    if store is None:
        return 1
    try:
        store.set_rental_item_state(_park_id(args), args.label, state, when_not=when_not)
    finally:
        store.close()
    print(f"rental item {args.label} {done}; {CONFIG_NOTE}")
    return 0


def cmd_item_repair(args) -> int:
    if args.done:
        return _set_state(args, "available", "back from repair", when_not=("out", "retired", "available"))
    return _set_state(args, "in_repair", "in repair", when_not=("out", "retired"))


def cmd_item_retire(args) -> int:
    return _set_state(args, "retired", "retired", when_not=("out", "retired"))


def cmd_forfeit(args) -> int:
    from ledger.rentals_online import forfeit_old_deposits

    store = _store(args)
    if store is None:
        return 1
    try:
        done = forfeit_old_deposits(store, _park_id(args), older_than_days=args.older_than_days,
                                    now_ms=int(time.time() * 1000))
    finally:
        store.close()
    print(f"{len(done)} deposit(s) held over {args.older_than_days} days forfeited"
          + (f": {', '.join(done)} (each an alert DEPOSIT_FORFEITED)" if done else ""))
    return 0


def _refund_no(text: str) -> str:
    if not (text[:2] in ("RF", "RX", "RT") and 3 <= len(text) <= 32 and text[2:].replace("D", "", 1).isdigit()):
        raise argparse.ArgumentTypeError(f"a refund number is RF<order>, RX<number> or RT<number>, e.g. RFD12, "
                                         f"not {text!r}")
    return text


def cmd_refund_list(args) -> int:
    from ledger.rentals_online import refund_purpose
    from protocol.money import format_fen

    store = _store(args)
    if store is None:
        return 1
    try:
        rows = store.refund_requests(_park_id(args), open_only=not args.all)
    finally:
        store.close()
    for refund_no, order, provider, provider_order, amount_fen, state, failed_code, _, _, _, in_cash in rows:
        where = refund_purpose(refund_no, order)
        if state == "done":
            status = "paid in cash at the desk" if in_cash else f"refunded by {provider}"
        elif failed_code:
            status = f"FAILED {failed_code}: retry, or pay it in cash at the desk"
        else:
            status = f"owed, sent to {provider} every round"
        print(f"{refund_no}  {where}  {provider} {provider_order}  {format_fen(amount_fen)}  {status}")
    if not rows:
        print("no refunds owed" if not args.all else "no refunds")
    return 0


def cmd_refund_retry(args) -> int:
    from ledger.errors import LedgerError
    from ledger.rentals_online import retry_refund

    store = _store(args)
    if store is None:
        return 1
    try:
        retry_refund(store, _park_id(args), args.refund)
    except LedgerError as error:
        return _fail(str(error))
    finally:
        store.close()
    print(f"refund {args.refund} goes to the provider again with the next round (same refund number: never paid twice)")
    return 0


def cmd_refund_cash(args) -> int:
    from ledger.errors import LedgerError
    from ledger.rentals_online import refund_in_cash
    from protocol.money import format_fen

    store = _store(args)
    if store is None:
        return 1
    try:
        amount_fen = next((row[4] for row in store.refund_requests(_park_id(args), open_only=True)
                           if row[0] == args.refund), 0)
        txn_id = refund_in_cash(store, _park_id(args), args.refund, operator=args.operator,
                                now_ms=int(time.time() * 1000))
    except LedgerError as error:
        return _fail(str(error))
    finally:
        store.close()
    print(f"refund {args.refund}: {format_fen(amount_fen)} paid in cash at the desk by {args.operator} "
          f"(transaction {txn_id}; the renter is told)")
    return 0


def add_rental_commands(commands) -> None:
    rental = commands.add_parser("rental", help="rental item types, items, the deposit forfeit rule, online refunds") \
        .add_subparsers(dest="rental_command", required=True)
    types = rental.add_parser("type", help="what a rental desk hands out and what it costs") \
        .add_subparsers(dest="rental_type_command", required=True)
    add = types.add_parser("add", help="a new item type (its deposit, price, time allowed, fees)")
    add.add_argument("--type", type=_id, required=True, help="its id, e.g. rod")
    add.add_argument("--name", required=True, help="what receipts and screens call it")
    add.add_argument("--deposit-fen", type=_fen, required=True)
    add.add_argument("--price-fen", type=_fen, required=True, help="the rental price, per --per")
    add.add_argument("--per", choices=("session", "hour"), required=True, help="once per rental, or per started hour")
    add.add_argument("--allowed-minutes", type=_minutes, default=0, help="how long a rental may last (0: no limit)")
    add.add_argument("--grace-minutes", type=_minutes, default=0)
    add.add_argument("--late-fee-fen", type=_fen, default=0, help="per started hour beyond the time allowed and grace")
    add.add_argument("--lost-fee-fen", type=_fen, default=0)
    add.add_argument("--damage", type=_damage, action="append", help="CODE:NAME:FEE_FEN, repeat for each (up to 8)")
    add.set_defaults(handler=cmd_type_add)
    types.add_parser("list", help="every item type").set_defaults(handler=cmd_type_list)
    items = rental.add_parser("item", help="the items, by the label stuck on each") \
        .add_subparsers(dest="rental_item_command", required=True)
    item_add = items.add_parser("add", help="a new item at a rental station")
    item_add.add_argument("--label", type=_id, required=True, help="the id on its QR or barcode sticker")
    item_add.add_argument("--station", type=_id, required=True)
    item_add.add_argument("--type", type=_id, required=True)
    item_add.set_defaults(handler=cmd_item_add)
    item_list = items.add_parser("list", help="every item with its state")
    item_list.add_argument("--station", type=_id, help="only this station's")
    item_list.set_defaults(handler=cmd_item_list)
    repair = items.add_parser("repair", help="take an item out of service for repair (--done: back in service)")
    repair.add_argument("--label", type=_id, required=True)
    repair.add_argument("--done", action="store_true")
    repair.set_defaults(handler=cmd_item_repair)
    retire = items.add_parser("retire", help="an item leaves for good (its history is kept)")
    retire.add_argument("--label", type=_id, required=True)
    retire.set_defaults(handler=cmd_item_retire)
    forfeit = rental.add_parser("forfeit", help="the park rule: forfeit deposits held longer than N days (never "
                                                "returned), each booked and raised as an alert")
    forfeit.add_argument("--older-than-days", type=_days, required=True)
    forfeit.set_defaults(handler=cmd_forfeit)
    refunds = rental.add_parser("refund", help="refunds owed to online payers; one the provider refused for good "
                                               "waits here for an operator") \
        .add_subparsers(dest="rental_refund_command", required=True)
    refund_list = refunds.add_parser("list", help="refunds not paid yet (--all: every refund)")
    refund_list.add_argument("--all", action="store_true")
    refund_list.set_defaults(handler=cmd_refund_list)
    retry = refunds.add_parser("retry", help="send a failed refund to the provider again (same refund number)")
    retry.add_argument("refund", type=_refund_no)
    retry.set_defaults(handler=cmd_refund_retry)
    cash = refunds.add_parser("cash", help="record a failed refund as paid in cash at the desk (booked)")
    cash.add_argument("refund", type=_refund_no)
    cash.add_argument("--operator", type=_id, required=True, help="the staff id of who paid it out")
    cash.set_defaults(handler=cmd_refund_cash)
