"""Receipts: what they say (read back from the emulated printer's byte stream) and how they render."""

from __future__ import annotations

from dataclasses import replace

import pytest

from host_sim.devices.printer import EmulatedPrinter
from terminal.drivers.escpos import encode_receipt
from terminal.hal.printer import PROFILE_58MM_TEXT, PROFILE_80MM_RASTER
from terminal.receipt import (
    LineItem,
    ReceiptCopy,
    ReceiptData,
    TextLine,
    display_width,
    format_fen,
    layout_receipt,
    render_receipt_image,
    render_receipt_text,
)

from .helpers.receipts import fishing_charge

TEXT_58MM_WITH_CUTTER = replace(PROFILE_58MM_TEXT, has_cutter=True)
YEN_SIGN_IN_GB18030 = "\u00a5".encode("gb18030")  # 81 30 84 36: garbage on a GBK printer


def print_copies(receipt: ReceiptData, tmp_path=None):
    """Both copies through the real driver into the emulator; returns the emulator's receipts."""
    with EmulatedPrinter(width_dots=TEXT_58MM_WITH_CUTTER.width_dots) as emulator:
        printer = emulator.open_driver(TEXT_58MM_WITH_CUTTER)
        for copy in receipt.copies():
            printer.print_receipt(copy)
            printer.cut()
        assert printer.status().is_ready  # answered only after everything before it was processed
        printer.close()
        paths = emulator.save_pngs(tmp_path) if tmp_path else []
        return emulator.receipts, paths


def collapsed(lines: list[str]) -> list[str]:
    """Lines with runs of padding squeezed to one space: "金额        30.00" -> "金额 30.00"."""
    return [" ".join(line.split()) for line in lines]


def test_a_charge_of_30_at_the_fishing_station_with_70_left_prints_both_copies_saying_so(tmp_path):
    from PIL import Image

    receipts, png_paths = print_copies(fishing_charge(), tmp_path)
    assert len(receipts) == 2
    for receipt, copy_mark in zip(receipts, ("顾客联", "商户联")):
        lines = collapsed(receipt.text_lines)
        assert "金额 30.00" in lines
        assert "余额 70.00" in lines
        assert "单号 Receipt no. T07-1234" in lines
        assert "钓鱼区 Fishing" in lines
        assert any(copy_mark in line for line in lines)
        assert receipt.is_cut and not receipt.is_incomplete
    assert [Image.open(path).width for path in png_paths] == [384, 384]


def test_a_reprint_says_reprint_and_the_original_does_not():
    [original, _], _ = print_copies(fishing_charge())
    [reprint, _], _ = print_copies(fishing_charge(is_reprint=True))
    assert "REPRINT 补打" not in original.text
    assert "REPRINT 补打" in reprint.text_lines


def test_an_offline_sale_with_an_unconfirmed_clock_says_both():
    [receipt, merchant], _ = print_copies(fishing_charge(is_online=False, is_time_uncertain=True, ledger_transaction_id=None))
    lines = collapsed(receipt.text_lines)
    assert "OFFLINE 离线" in lines and "ONLINE" not in lines
    assert "时间 2025-05-01 10:32 *" in lines
    assert "* 时间未校准 TIME UNVERIFIED" in lines
    assert "内部号 Internal 待上传 pending" in collapsed(merchant.text_lines)


def test_an_online_sale_says_online_and_has_no_clock_warning():
    [receipt, _], _ = print_copies(fishing_charge())
    assert "ONLINE" in receipt.text_lines
    assert "时间未校准" not in receipt.text


def test_the_yen_sign_is_never_sent_as_its_four_byte_gb18030_code():
    receipt = fishing_charge(
        line_items=(LineItem(item="鱼饵 ¥5/包", qty=2, unit_fen=500),), amount_fen=1000, balance_after_fen=9000
    )
    assert YEN_SIGN_IN_GB18030 not in encode_receipt(receipt, TEXT_58MM_WITH_CUTTER)
    [printed, _], _ = print_copies(receipt)
    assert "鱼饵 ￥5/包" in printed.text_lines


@pytest.mark.parametrize(
    ("amount_fen", "text"),
    [(0, "0.00"), (5, "0.05"), (3000, "30.00"), (123456, "1234.56"), (-5, "-0.05"), (-3000, "-30.00")],
)
def test_money_is_formatted_from_integer_fen(amount_fen, text):
    assert format_fen(amount_fen) == text


@pytest.mark.parametrize("not_fen", [30.0, True, "3000"])
def test_money_that_is_not_integer_fen_is_refused(not_fen):
    with pytest.raises(TypeError):
        format_fen(not_fen)


@pytest.mark.parametrize(
    "overrides",
    [
        dict(masked_card_number="6222 0200 1234"),  # more than the last four digits
        dict(amount_fen=2900),  # line items say 30.00
        dict(amount_fen=30.0),  # float money
        dict(balance_after_fen=10**12),  # beyond any sale: a unit mistake
    ],
)
def test_a_receipt_that_must_not_be_printed_cannot_be_built(overrides):
    with pytest.raises((TypeError, ValueError)):
        fishing_charge(**overrides)


@pytest.mark.parametrize("width_dots", [384, 576])
def test_every_text_line_fits_the_paper_even_with_long_names(width_dots):
    receipt = fishing_charge(
        park_name="青山湖国家级生态农业休闲观光乐园",
        line_items=(LineItem(item="儿童游乐设施套票（含旋转木马、碰碰车、小火车）", qty=1, unit_fen=3000),),
        ledger_transaction_id="L-2025-05-01-000000088213-abcdef",
        copy=ReceiptCopy.MERCHANT,  # the only copy that prints the ledger's number
    )
    layout = layout_receipt(receipt, width_dots)
    text_lines = [block for block in layout.blocks if isinstance(block, TextLine)]
    for line in text_lines:  # a double-width line has half the columns
        assert display_width(line.compose(layout.columns)) <= layout.columns // (2 if line.is_large else 1), line
    assert sum(line.is_large for line in text_lines) >= 2  # the long park name wrapped
    assert any("000000088213" in line for line in render_receipt_text(receipt, width_dots))


@pytest.mark.parametrize("width_dots", [384, 576])
def test_the_image_is_one_bit_at_the_paper_width_and_has_ink(width_dots):
    image = render_receipt_image(fishing_charge(), width_dots)
    assert (image.mode, image.width) == ("1", width_dots)
    black_dots = image.histogram()[0]
    assert 0 < black_dots < image.width * image.height // 4


def test_an_80mm_raster_receipt_is_one_image_576_dots_wide():
    with EmulatedPrinter(width_dots=576) as emulator:
        printer = emulator.open_driver(PROFILE_80MM_RASTER)
        printer.print_receipt(fishing_charge())
        printer.cut()
        printer.status()
        printer.close()
        [receipt] = emulator.receipts
    assert [image.width_dots for image in receipt.images] == [576]
