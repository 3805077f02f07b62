"""The portal's words, Chinese first (the members are Chinese visitors), English beside."""

from backoffice.labels import LANGUAGES

LABELS = {
    "portal": ("会员中心", "Members"),
    "phone": ("手机号", "Mobile number"),
    "send_code": ("获取验证码", "Send code"),
    "code": ("验证码", "Code"),
    "log_in": ("登录 / 注册", "Log in / register"),
    "log_out": ("退出", "Log out"),
    "code_sent": ("验证码已发送，5 分钟内有效", "Code sent: valid for 5 minutes"),
    "CODE_RATE_LIMITED": ("获取太频繁，请一分钟后再试", "Too many codes: try again in a minute"),
    "CODE_REFUSED": ("验证码错误或已过期", "Wrong or expired code"),
    "BAD_PHONE": ("请输入 11 位手机号", "Enter an 11-digit mobile number"),
    "my_cards": ("我的卡", "My cards"),
    "no_cards": ("还没有会员卡", "No member card yet"),
    "balance": ("余额", "Balance"),
    "bonus": ("赠送", "Bonus"),
    "points": ("积分", "Points"),
    "state_active": ("正常", "Active"),
    "state_lost": ("已挂失", "Reported lost"),
    "state_blocked": ("已冻结", "Blocked"),
    "state_returned": ("已退卡", "Returned"),
    "ecard": ("电子卡", "E-card"),
    "open_ecard": ("开通电子卡", "Open an e-card"),
    "name": ("姓名", "Name"),
    "pin": ("支付密码（4-6 位数字）", "PIN (4-6 digits)"),
    "ecard_opened": ("电子卡已开通", "E-card opened"),
    "ecard_credential": ("电子卡凭证（保存在本机）", "E-card credential (kept on this phone)"),
    "history": ("明细", "History"),
    "change_pin": ("修改密码", "Change PIN"),
    "old_pin": ("原密码", "Old PIN"),
    "new_pin": ("新密码", "New PIN"),
    "pin_changed": ("密码已修改", "PIN changed"),
    "report_lost": ("挂失", "Report lost"),
    "reported_lost": ("已挂失，此卡在所有终端停用", "Reported lost: the card is refused at every terminal"),
    "visit_record": ("游园记录", "Visit record"),
    "share_visit": ("分享今日游园记录", "Share today's visit"),
    "show_times": ("显示时间", "Show times"),
    "show_amounts": ("显示金额", "Show amounts"),
    "share_link": ("分享链接", "Link to share"),
    "revoke": ("撤销", "Revoke"),
    "revoked": ("已撤销", "Revoked"),
    "my_links": ("我的分享", "My shared links"),
    "activities": ("项活动", "activities"),
    "time": ("时间", "Time"),
    "kind": ("类型", "Kind"),
    "where": ("地点", "Where"),
    "amount": ("金额", "Amount"),
    "show_qr": ("付款码", "Pay code"),
    "qr_note": ("在收银台或站点出示，每 20 秒更新，截图无效", "Show it at a till or station; it changes every 20 s, a screenshot does not work"),
    "qr_making": ("正在生成…", "Making the code…"),
    "language": ("English", "中文"),
    "back": ("返回", "Back"),
    "WRONG_PIN": ("原密码错误", "The old PIN is wrong"),
    "PIN_LOCKED": ("密码已锁定，请到服务台解锁", "PIN locked: the front desk unlocks it"),
    "BAD_PIN": ("密码须为 4-6 位数字", "A PIN is 4 to 6 digits"),
    "BAD_DEVICE_KEY": ("本机无法生成电子卡密钥", "This phone could not make an e-card key"),
    "CARD_BLOCKED": ("此卡已停用", "This card is blocked"),
    "online_top_up": ("在线充值", "Top up online"),
    "pay_with": ("支付方式", "Pay with"),
    "provider_wechat": ("微信支付", "WeChat Pay"),
    "provider_alipay": ("支付宝", "Alipay"),
    "pay_now": ("去支付", "Pay now"),
    "pay_note": ("支付成功后余额自动到账。订单号", "The balance is credited once the payment goes through. Order"),
    "TOPUP_UNAVAILABLE": ("暂不支持在线充值", "Online top-up is not available"),
    "TOP_UP_OUT_OF_RANGE": ("充值金额不在范围内", "That amount is outside the card's top-up range"),
    "UNKNOWN_PROVIDER": ("不支持该支付方式", "That payment method is not taken here"),
    "bind_card": ("绑定实体卡", "Bind a physical card"),
    "physical_card_no": ("实体卡号", "Physical card number"),
    "its_pin": ("实体卡密码", "That card's PIN"),
    "card_bound": ("实体卡已绑定", "Physical card bound"),
    "unbind_card": ("解除绑定", "Unbind"),
    "card_unbound": ("已解除绑定", "Card unbound"),
    "bound_to": ("已绑定", "bound to"),
    "ALREADY_BOUND": ("此卡已绑定其他电子卡", "That card is bound to another e-card"),
    "UNKNOWN_CARD": ("没有这张会员卡", "No such member card"),
    "move_here": ("迁移到本机", "Move to this phone"),
    "move_note": ("迁移后旧手机的付款码失效", "The old phone's pay code stops working"),
    "notices": ("园区消息", "Park notices"),
    "notices_are_on": ("接收园区活动与通知短信", "You get the park's notices"),
    "notices_are_off": ("已退订园区消息（消费提醒照常发送）", "No park notices (booking messages still come)"),
    "notices_turn_off": ("退订", "Opt out"),
    "notices_turn_on": ("重新接收", "Receive again"),
    "notices_on": ("已开启园区消息", "Park notices on"),
    "notices_off": ("已退订园区消息", "Park notices off"),
}


# A card's history names each line by what happened to the card, in the member's words: the ledger's
# kinds of transaction (protocol.kinds, and those the ledger books itself) mean nothing to a visitor.
KIND_LABELS = {
    "card_issue": ("购卡", "Card bought"),
    "member_open": ("开通会员卡", "Member card opened"),
    "top_up": ("充值", "Top-up"),
    "top_up_online": ("在线充值", "Online top-up"),
    "top_up_online_refund": ("在线充值退回", "Online top-up paid back"),
    "charge": ("消费", "Purchase"),
    "offline_charge": ("消费（离线）", "Purchase (offline)"),
    "void": ("消费撤销", "Purchase cancelled"),
    "reversal": ("充值冲正", "Top-up corrected"),
    "card_return": ("退卡", "Card returned"),
    "loss_report": ("挂失", "Reported lost"),
    "card_unblock": ("解除停用", "Card unblocked"),
    "card_replace": ("补卡", "Card replaced"),
    "pin_unlock": ("密码解锁", "PIN unlocked"),
    "member_transfer": ("余额转移", "Balance moved"),
    "balance_adjustment": ("余额调整", "Balance adjusted"),
    "deposit_card": ("租赁押金", "Rental deposit"),
    "rental_out": ("租赁借出", "Rental handed out"),
    "offline_rental_out": ("租赁借出（离线）", "Rental handed out (offline)"),
    "rental_return": ("租赁归还", "Rental returned"),
}


def translator(lang: str):
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        return LABELS[key][index] if key in LABELS else key

    return t


def kind_namer(lang: str):
    """A history line's kind in ``lang``; a kind with no words here yet shows as the ledger names it."""
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0
    return lambda kind: KIND_LABELS[kind][index] if kind in KIND_LABELS else kind
