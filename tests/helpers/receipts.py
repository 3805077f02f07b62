"""A sample receipt for the printer and receipt tests."""

from protocol.messages import LineItem
from terminal.receipt import ReceiptData


def fishing_charge(**overrides) -> ReceiptData:
    """A temporary card charged 30.00 at the fishing station, 70.00 left."""
    fields = dict(
        park_name="青山湖乐园",
        station_name="钓鱼区 Fishing",
        terminal_id="T07",
        seq=1234,
        operator="张三",
        time_text="2025-05-01 10:32",
        masked_card_number="**** 1234",
        line_items=(LineItem(item="钓鱼 1小时", qty=1, unit_fen=3000),),
        amount_fen=3000,
        balance_after_fen=7000,
        ledger_transaction_id="L-88213",
        is_online=True,
    )
    return ReceiptData(**(fields | overrides))
