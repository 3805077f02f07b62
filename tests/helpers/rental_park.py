"""A park with a rental desk at the fishing pond: rods (a session of 2 hours, 15 minutes' grace) and
bikes (by the hour), two rental terminals, and helpers to sign what a rental terminal sends."""

from contextlib import contextmanager

from host_sim.rig import ParkRig
from ledger.park_home import STATION_KINDS
from protocol.envelope import Purpose
from protocol.messages import DamageFee, RentalType

from .intake_driver import Ledger

T0 = 1_780_000_000_000
MINUTE = 60_000
ROD = RentalType(item_type="rod", name="鱼竿 Fishing rod", deposit_fen=3000, price_fen=1000, price_per="session",
                 allowed_minutes=120, grace_minutes=15, late_fee_per_hour_fen=500, lost_fee_fen=8000,
                 damage=(DamageFee(code="reel", name="渔轮 Reel", fee_fen=2000),
                         DamageFee(code="line", name="鱼线 Line", fee_fen=500)))
BIKE = RentalType(item_type="bike", name="自行车 Bike", deposit_fen=20000, price_fen=1500, price_per="hour",
                  allowed_minutes=0, grace_minutes=0, late_fee_per_hour_fen=0, lost_fee_fen=80000, damage=())
TERMINALS = {"T-FISH-1": "fishing", "T-DESK-1": "desk", "T-RENT-1": "fishing", "T-RENT-2": "fishing"}
RENTAL_KINDS = {"T-RENT-1": STATION_KINDS["rental"], "T-RENT-2": STATION_KINDS["rental"]}


class RentalLedger(Ledger):
    """The intake driver with a clock the test moves."""

    def __init__(self, rig):
        super().__init__(rig)
        self.now_ms = T0
        self.intake.clock_ms = lambda: self.now_ms
        self.voucher_key = rig.home.ledger_keys().for_purpose(Purpose.VOUCHER).signing_key.verify_key

    def pool_fen(self) -> int:
        return self.store.db.execute(
            "SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id LIKE 'deposit:%'").fetchone()[0]

    def balance(self, account) -> int:
        return self.store.db.execute("SELECT COALESCE(SUM(amount), 0) FROM posting WHERE account_id=?",
                                     (account,)).fetchone()[0]


@contextmanager
def rental_park(tmp_path):
    rig = ParkRig(tmp_path).create(TERMINALS, kinds_by_terminal=RENTAL_KINDS)
    ledger = RentalLedger(rig)
    store = ledger.store
    for item_type in (ROD, BIKE):
        store.add_rental_type(rig.park_id, item_type)
    for label, item_type in (("ROD-001", "rod"), ("ROD-002", "rod"), ("ROD-003", "rod"), ("BIKE-01", "bike")):
        store.add_rental_item(rig.park_id, label, "fishing", item_type, T0)
    try:
        yield ledger
    finally:
        rig.close()
        store.close()
