"""``fieldpos`` commands for the park's administration that the console's pages also make: a
station's operator and commission, card-type limits, bonus tiers, campaigns, the offline policy, a
staff PIN reset or unlock, card block/unblock, and balance adjustments (asked for, then approved by
another login).

Each goes through ``ledger.park_admin.ParkAdmin``, the path the console takes, and is written to the
park's audit log (the console's, ``console.db``) with ``cli:<login>`` as the actor; so are the older
station, staff and terminal commands (``record_change``).
"""

import argparse
import getpass
import json
import sys

from tools.park_args import has_ledger, park_home


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:?"


def _admin(args):
    from ledger.park_admin import ParkAdmin

    return ParkAdmin(park_home(args)) if has_ledger(args) else None


def record_change(args, change) -> None:
    """Write a change to the park's audit log (the console's), the actor being this login."""
    from backoffice.accounts import ConsoleStore

    ConsoleStore.in_home(park_home(args).home).record(_actor(), change.action, change.target, change.before,
                                                     change.after)


def _done(args, change, line: str) -> int:
    """Record the change and say what was done, in one line."""
    record_change(args, change)
    print(line)
    return 0


def _fen(text: str) -> int:
    from protocol.limits import MAX_AMOUNT_FEN

    if not text.lstrip("-").isdigit() or not -MAX_AMOUNT_FEN <= int(text) <= MAX_AMOUNT_FEN:
        raise argparse.ArgumentTypeError(f"an amount in fen is a whole number up to {MAX_AMOUNT_FEN}, not {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) > 100_000:
        raise argparse.ArgumentTypeError(f"a count is a whole number from 0 to 100000, not {text!r}")
    return int(text)


def _duration_ms(text: str) -> int:
    week_ms = 7 * 24 * 3_600_000
    if not text.isdigit() or not 1 <= int(text) <= week_ms:
        raise argparse.ArgumentTypeError(f"a duration in ms is a whole number from 1 to {week_ms}, not {text!r}")
    return int(text)


def _business_day(text: str) -> str:
    from datetime import date

    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a business day is YYYY-MM-DD, not {text!r}") from None
    return text


# ---------------------------------------------------------------- the commands
def cmd_station_set(args) -> int:
    from protocol.money import format_fen

    if (admin := _admin(args)) is None:
        return 1
    now = next((s for s in admin.stations() if s["station"] == args.station), None)
    if now is None:
        print(f"fieldpos: no station {args.station}", file=sys.stderr)
        return 1
    change = admin.set_station(args.station, name=args.name or now["name"],
                               contractor_id=now["contractor"] if args.contractor is None else args.contractor,
                               commission_bp=now["commission_bp"] if args.commission_bp is None else args.commission_bp,
                               cash_float_fen=args.cash_float_fen)
    after = change.after
    return _done(args, change, f"station {args.station}: {after['name']}, "
                               + (f"run by {after['contractor']} at {after['commission_bp']} bp commission"
                                  if after["contractor"] else "run by the park")
                               + f", opening float {format_fen(after['cash_float_fen'])}")


def cmd_card_type(args) -> int:
    from dataclasses import replace

    from protocol.money import format_fen

    if (admin := _admin(args)) is None:
        return 1
    changes = {field: value for field, value in (("max_balance_fen", args.max_balance_fen),
                                                 ("min_topup_fen", args.min_topup_fen),
                                                 ("max_topup_fen", args.max_topup_fen),
                                                 ("daily_spend_fen", args.daily_spend_fen)) if value is not None}
    limits = admin.card_limits()[args.kind]
    if changes:
        change = admin.set_card_limits(args.kind, replace(limits, **changes))
        record_change(args, change)
        limits = admin.card_limits()[args.kind]
    print(f"{args.kind} cards: balance up to {format_fen(limits.max_balance_fen)}, top-ups "
          f"{format_fen(limits.min_topup_fen)}-{format_fen(limits.max_topup_fen)}, spend up to "
          f"{format_fen(limits.daily_spend_fen)} a day")
    return 0


OFFLINE_OPTIONS = ("max_transaction_fen", "max_card_fen", "max_terminal_fen", "max_count", "max_offline_ms",
                   "max_reboots", "blocklist_max_age_ms")


def cmd_offline_policy(args) -> int:
    from protocol.money import format_fen

    if (admin := _admin(args)) is None:
        return 1
    changes = {name: getattr(args, name) for name in OFFLINE_OPTIONS if getattr(args, name) is not None}
    if changes:
        record_change(args, admin.set_offline_policy(**changes))
    policy = admin.offline_policy()
    print(f"offline: a sale up to {format_fen(policy['max_transaction_fen'])}, a card up to "
          f"{format_fen(policy['max_card_fen'])} and the terminal up to {format_fen(policy['max_terminal_fen'])} "
          f"({policy['max_count']} sales), for {policy['max_offline_ms'] // 3_600_000} h and {policy['max_reboots']} "
          f"reboots; a blocklist older than {policy['blocklist_max_age_ms'] // 3_600_000} h stops selling")
    return 0


def cmd_bonus_list(args) -> int:
    from protocol.money import format_fen

    if (admin := _admin(args)) is None:
        return 1
    tiers = admin.bonus_tiers()
    for minimum, bonus in tiers:
        print(f"top up {format_fen(minimum)}, get {format_fen(bonus)}")
    print(f"{len(tiers)} tier(s); the highest tier a top-up reaches applies (members only)")
    return 0


def cmd_bonus_set(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    return _done(args, admin.set_bonus_tier(args.min_topup_fen, args.bonus_fen),
                 f"bonus tier: top up {args.min_topup_fen} fen, get {args.bonus_fen} fen")


def cmd_bonus_remove(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    return _done(args, admin.remove_bonus_tier(args.min_topup_fen), f"bonus tier {args.min_topup_fen} fen removed")


def cmd_campaign_list(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    campaigns = admin.campaigns()
    for c in campaigns:
        print(f"{c.campaign_id}  {c.name}  {c.kind} x{c.multiplier_pct}%  {c.first_day}..{c.last_day}"
              + ("  (ended)" if c.is_ended else ""))
    print(f"{len(campaigns)} campaign(s)")
    return 0


def cmd_campaign_add(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    return _done(args, admin.add_campaign(args.campaign, args.name, args.kind, args.multiplier_pct, args.first_day,
                                          args.last_day),
                 f"campaign {args.campaign}: members' {args.kind} x{args.multiplier_pct}% from {args.first_day} to "
                 f"{args.last_day} (business days)")


def cmd_campaign_end(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    return _done(args, admin.end_campaign(args.campaign), f"campaign {args.campaign} ended")


def cmd_staff_pin_reset(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    pin = args.pin if args.pin is not None else getpass.getpass(f"new PIN for {args.staff} (4-6 digits): ")
    return _done(args, admin.reset_staff_pin(args.staff, pin), f"staff {args.staff}: new PIN set, login unlocked")


def cmd_staff_pin_unlock(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    return _done(args, admin.unlock_staff_pin(args.staff), f"staff {args.staff}: PIN unlocked")


def cmd_card_block(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    change = admin.unblock_card(args.card) if args.unblock else admin.block_card(args.card)
    return _done(args, change, f"card {change.target} {'unblocked' if args.unblock else 'blocked'}; every till gets "
                               f"it with the next blocklist")


def cmd_card_adjust(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    change, number = admin.request_adjustment(args.card, args.asset, args.amount, args.reason, requested_by=_actor())
    return _done(args, change, f"adjustment A{number} asked for: {args.amount} {args.asset} on {change.target.split()[-1]}; "
                               f"another login approves it with 'fieldpos card approve --adjustment {number}'")


def cmd_card_approve(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    if args.reject:
        change = admin.reject_adjustment(args.adjustment, rejected_by=_actor())
    else:
        change = admin.approve_adjustment(args.adjustment, approved_by=_actor())
    return _done(args, change, f"adjustment A{args.adjustment} {change.after['state']}"
                               + (f" (transaction {change.after['txn_id']})" if change.after["txn_id"] else ""))


def cmd_card_adjustments(args) -> int:
    if (admin := _admin(args)) is None:
        return 1
    found = admin.adjustments(state=None if args.all else "pending")
    for a in found:
        print(json.dumps({"adjustment": a.adjustment_id, "account": a.card_account, "asset": a.asset,
                          "amount": a.amount, "reason": a.reason, "asked_by": a.requested_by, "state": a.state,
                          "decided_by": a.decided_by}, ensure_ascii=False))
    print(f"{len(found)} adjustment(s)" + ("" if args.all else " pending"))
    return 0


# ---------------------------------------------------------------- the parsers
def add_admin_commands(commands, staff, station) -> None:
    """Add the administration commands: ``station set`` and ``staff pin-reset|pin-unlock`` to the
    existing ``station`` and ``staff`` groups, and the ``card-type``, ``bonus``, ``campaign`` and
    ``card`` groups."""
    from ledger.park_admin import CARD_KINDS
    from ledger.rules.adjustments import COUNTER_ACCOUNTS
    from ledger.rules.campaigns import CAMPAIGN_KINDS
    from tools.arg_types import basis_points, display_text, fen

    station_set = station.add_parser("set", help="rename a station, or hand it to a contractor (or back) with a commission")
    station_set.add_argument("--station", required=True)
    station_set.add_argument("--name", type=display_text)
    station_set.add_argument("--contractor", help="the contractor's id; '' hands the station back to the park")
    station_set.add_argument("--commission-bp", type=basis_points, help="the park's commission (1500 = 15 %%)")
    station_set.add_argument("--cash-float-fen", type=fen,
                             help="the opening float (备用金) its cash tills start each shift with (20000 = 200.00; 0: none)")
    station_set.set_defaults(handler=cmd_station_set)

    reset = staff.add_parser("pin-reset", help="give a staff member a new PIN (it also unlocks their login)")
    reset.add_argument("--staff", required=True)
    reset.add_argument("--pin", help="4-6 digits; asked for when omitted (keeps it out of shell history)")
    reset.set_defaults(handler=cmd_staff_pin_reset)
    unlock = staff.add_parser("pin-unlock", help="clear a staff member's wrong-PIN lock (the PIN stays)")
    unlock.add_argument("--staff", required=True)
    unlock.set_defaults(handler=cmd_staff_pin_unlock)

    card_type = commands.add_parser("card-type", help="show or change a card type's limits (the ledger checks them)")
    card_type.add_argument("--kind", required=True, choices=CARD_KINDS)
    for option in ("--max-balance-fen", "--min-topup-fen", "--max-topup-fen", "--daily-spend-fen"):
        card_type.add_argument(option, type=fen)
    card_type.set_defaults(handler=cmd_card_type)

    offline = commands.add_parser("offline-policy", help="show or change what a till may approve while the ledger "
                                                         "is out of reach (sent in every till's signed config)")
    for name in OFFLINE_OPTIONS:
        offline.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_count if "count" in name or "reboots" in name
                             else (fen if name.endswith("_fen") else _duration_ms))
    offline.set_defaults(handler=cmd_offline_policy)

    bonus = commands.add_parser("bonus", help="members' top-up bonus tiers ('top up 500, get 50')") \
        .add_subparsers(dest="bonus_command", required=True)
    bonus.add_parser("list").set_defaults(handler=cmd_bonus_list)
    bonus_set = bonus.add_parser("set", help="add a tier, or change its bonus")
    bonus_set.add_argument("--min-topup-fen", required=True, type=fen)
    bonus_set.add_argument("--bonus-fen", required=True, type=fen)
    bonus_set.set_defaults(handler=cmd_bonus_set)
    bonus_remove = bonus.add_parser("remove")
    bonus_remove.add_argument("--min-topup-fen", required=True, type=fen)
    bonus_remove.set_defaults(handler=cmd_bonus_remove)

    campaign = commands.add_parser("campaign", help="bonus or points multipliers for members over business days") \
        .add_subparsers(dest="campaign_command", required=True)
    campaign.add_parser("list").set_defaults(handler=cmd_campaign_list)
    campaign_add = campaign.add_parser("add")
    campaign_add.add_argument("--campaign", required=True, help="the campaign's id")
    campaign_add.add_argument("--name", required=True, type=display_text)
    campaign_add.add_argument("--kind", required=True, choices=CAMPAIGN_KINDS)
    campaign_add.add_argument("--multiplier-pct", required=True, type=int, help="200 = twice")
    campaign_add.add_argument("--from", dest="first_day", required=True, type=_business_day, metavar="YYYY-MM-DD")
    campaign_add.add_argument("--to", dest="last_day", required=True, type=_business_day, metavar="YYYY-MM-DD")
    campaign_add.set_defaults(handler=cmd_campaign_add)
    campaign_end = campaign.add_parser("end", help="end a campaign now (kept for the record)")
    campaign_end.add_argument("--campaign", required=True)
    campaign_end.set_defaults(handler=cmd_campaign_end)

    card = commands.add_parser("card", help="a visitor's card: block, unblock, balance adjustments") \
        .add_subparsers(dest="card_command", required=True)
    block = card.add_parser("block", help="block a card's current issuance at every till")
    block.add_argument("--card", required=True)
    block.set_defaults(handler=cmd_card_block, unblock=False)
    unblock_card = card.add_parser("unblock", help="unblock a card an operator blocked or a member reported lost")
    unblock_card.add_argument("--card", required=True)
    unblock_card.set_defaults(handler=cmd_card_block, unblock=True)
    adjust = card.add_parser("adjust", help="ask for a balance adjustment (another login approves it)")
    adjust.add_argument("--card", required=True)
    adjust.add_argument("--asset", required=True, choices=tuple(COUNTER_ACCOUNTS))
    adjust.add_argument("--amount", required=True, type=_fen, help="fen (or points); negative takes off")
    adjust.add_argument("--reason", required=True)
    adjust.set_defaults(handler=cmd_card_adjust)
    approve = card.add_parser("approve", help="approve (or --reject) an adjustment another login asked for")
    approve.add_argument("--adjustment", required=True, type=int)
    approve.add_argument("--reject", action="store_true")
    approve.set_defaults(handler=cmd_card_approve)
    listing = card.add_parser("adjustments", help="pending adjustments (--all: every one), one JSON line each")
    listing.add_argument("--all", action="store_true")
    listing.set_defaults(handler=cmd_card_adjustments)
