"""A ledger process that dies (os._exit, like a segfault or the OOM killer) on any charge whose
line item says POISON: for the test that such a message is set aside after repeated crashes."""

import os
from pathlib import Path
import sys

from ledger.intake import Intake
from ledger.service import LedgerService
from ledger.park_home import ParkHome


class CrashingIntake(Intake):
    def _one(self, topic, payload):
        if b"POISON" in payload:
            os._exit(70)
        return super()._one(topic, payload)


def main(home: str, port: int) -> None:
    park = ParkHome(Path(home))
    login = park.ledger_login()
    intake = CrashingIntake(park.open_store(), park.ledger_keys())
    LedgerService(intake, park_id=park.park_id(), host="127.0.0.1", port=port,
                  username=login["username"], password=login["password"]).run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
