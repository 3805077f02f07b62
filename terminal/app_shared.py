"""What the station app (``terminal.app``) and the rental desk's app side (``terminal.rental_app``)
both say: the refusal text when the outbox is full, and a staff member's name for the receipts the
app prints by itself (owed after a crash). Its own module so neither app module imports the other.
"""

QUEUE_FULL_TEXT = "离线队列已满 Queue full — stop selling, get the station online"


def operator_name(config, staff_id: str) -> str:
    """The name the ledger's staff directory (in the signed config) gives ``staff_id``, else the id
    itself (before the directory has come)."""
    for known_id, name in config.staff.values():
        if known_id == staff_id:
            return name
    return staff_id
