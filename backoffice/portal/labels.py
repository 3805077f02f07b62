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
}


def translator(lang: str):
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        return LABELS[key][index] if key in LABELS else key

    return t
