"""The README's receipt pictures are drawn by the till's own state machine: the receipts they show
say what the README says they do, and the script writes one 58 mm picture for each."""

from PIL import Image

from host_sim.receipt_pictures import PICTURES, RECEIPTS, WIDTH_58MM_DOTS, write_pictures
from terminal.receipt import render_receipt_text


def squeezed(receipt) -> list[str]:
    return [" ".join(line.split()) for line in render_receipt_text(receipt, WIDTH_58MM_DOTS)]


def test_the_pictured_receipts_say_what_the_readme_says():
    assert "付款方式 Paid by 现金 Cash" in squeezed(RECEIPTS["top-up"]())
    returned = squeezed(RECEIPTS["return"]())
    assert {"退余额 Balance 70.00", "退押金 Card deposit 20.00", "扣损坏费 Damage kept -10.00",
            "退款合计 Total refund 80.00", "退款方式 Refund by 微信 WeChat"} <= set(returned)
    assert "单号 Receipt no. T-BBQ-1-25" in squeezed(RECEIPTS["offline"]())
    assert {"转入余额 400.00", "转入赠送 50.00", "转入积分 120"} <= set(squeezed(RECEIPTS["replacement"]()))
    voided = squeezed(RECEIPTS["void"]())
    assert {"金额 -30.00", "原单号 Original T-FISH-1-7", "主管 Approved by 赵敏 (zhao)"} <= set(voided)


def test_the_rental_pictures_show_a_voucher_the_desk_accepts_and_an_itemised_late_damaged_return():
    from nacl.signing import SigningKey

    from host_sim.receipt_pictures import LEDGER_TIME_MS, VOUCHER_KEY_SEED
    from protocol.voucher import verify_voucher

    deposit = RECEIPTS["voucher"]()
    assert "押金凭证 顾客联" in squeezed(deposit) and "支付 Paid by 现金 cash" in squeezed(deposit)
    assert f"[QR {deposit.voucher}]" in squeezed(deposit)  # the QR code is the voucher itself
    voucher = verify_voucher(deposit.voucher, SigningKey(VOUCHER_KEY_SEED).verify_key, LEDGER_TIME_MS)
    assert (voucher.order, voucher.item_type) == ("D1042", "rod")
    returned = squeezed(RECEIPTS["rental-return"]())
    assert {"押金 Deposit 50.00", "租金 Rental 10.00", "超时费 Late fee 5.00", "损坏 Damage 20.00",
            "退款 Refunded 15.00", "退回 Method 现金 cash"} <= set(returned)
    assert returned[returned.index("损坏 Damage 20.00") + 1] == "渔轮 Reel 20.00"  # what the damage was


def test_the_script_writes_one_58mm_picture_per_receipt(tmp_path):
    paths = write_pictures(tmp_path)
    assert sorted(path.name for path in paths) == sorted(PICTURES.values())
    assert all(Image.open(path).width == WIDTH_58MM_DOTS for path in paths)


def test_the_shift_slip_picture_shows_the_blind_count_short_by_five():
    slip = set(squeezed(RECEIPTS["shift-slip"]()))
    assert {"交班单 Shift slip 收银员联", "应有 Expected 580.00", "实点 Counted 575.00", "短款 Short -5.00",
            "现金 Cash x12 580.00", "撤销冲正 Voids x1 -100.00", "单号 Slip no. T-DESK-1-58"} <= slip
