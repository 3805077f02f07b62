"""The console's words in Chinese and English. Templates call ``t("key")``; the language is the
user's choice (a cookie), Chinese by default: the park's staff read Chinese first."""

from .admin_labels import ADMIN_LABELS

LANGUAGES = ("zh", "en")

LABELS = {
    "console": ("园区管理后台", "Park back office"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "dashboard": ("概览", "Dashboard"),
    "terminals": ("终端", "Terminals"),
    "reports": ("报表", "Reports"),
    "audit": ("审计日志", "Audit log"),
    "users": ("用户", "Users"),
    "today": ("今日", "Today"),
    "business_day": ("营业日", "Business day"),
    "net_sales": ("净销售额", "Net sales"),
    "sales": ("销售笔数", "Sales"),
    "voided": ("撤销额", "Voided"),
    "top_ups": ("充值", "Top-ups"),
    "refunds": ("退卡退款", "Refunds"),
    "deposits_held": ("押金余额", "Deposits held"),
    "cards_issued": ("发卡数", "Cards issued"),
    "by_station": ("按站点", "By station"),
    "by_hour": ("分时段销售", "Sales by hour"),
    "station": ("站点", "Station"),
    "terminal": ("终端", "Terminal"),
    "status": ("状态", "Status"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "retired": ("已停用", "retired"),
    "queue": ("待传笔数", "Queued"),
    "last_seen": ("最后联系", "Last seen"),
    "highest_seq": ("最大序号", "Highest seq"),
    "alerts": ("警报", "Alerts"),
    "set_aside": ("搁置消息", "Set-aside messages"),
    "no_alerts": ("无警报", "No alerts"),
    "not_reported": ("未上报", "not reported"),
    "printer": ("打印机", "Printer"),
    "software_version": ("软件版本", "Software"),
    # PrinterState values (protocol.messages), as a terminal's status reports them.
    "printer_ready": ("正常", "ready"),
    "printer_paper_near_end": ("纸将尽", "paper low"),
    "printer_paper_out": ("缺纸", "paper out"),
    "printer_cover_open": ("纸仓盖开", "cover open"),
    "printer_offline": ("打印机离线", "not answering"),
    "day": ("日期", "Day"),
    "from": ("从", "From"),
    "to": ("到", "To"),
    "show": ("查询", "Show"),
    "download": ("下载", "Download"),
    "by": ("维度", "By"),
    "period": ("周期", "Period"),
    "receipt": ("小票号", "Receipt"),
    "card": ("卡号", "Card"),
    "phone": ("手机号", "Phone"),
    "contractor": ("承包商", "Contractor"),
    "time": ("时间", "Time"),
    "actor": ("操作人", "Who"),
    "action": ("操作", "What"),
    "target": ("对象", "On"),
    "before": ("修改前", "Before"),
    "after": ("修改后", "After"),
    "role": ("角色", "Role"),
    "name": ("姓名", "Name"),
    "active": ("启用", "Active"),
    "forbidden": ("无权访问", "Not allowed"),
    "welcome": ("欢迎", "Welcome"),
    "front_desk_home": ("总台账户没有报表权限；卡与会员在“卡与会员”页。",
                        "Front desk accounts see no reports; cards and members are on the Cards and members page."),
    "language": ("English", "中文"),
    "bad_login": ("用户名或密码错误", "Wrong user name or password"),
    "locked": ("密码错误次数过多，账户已锁定，请稍后再试", "Too many wrong passwords: the account is locked for a while"),
    "rate_limited": ("尝试次数过多，请稍后再试", "Too many attempts from this address: wait a few minutes"),
}

LABELS.update({key: words for key, words in ADMIN_LABELS.items() if key not in LABELS})


def translator(lang: str):
    index = LANGUAGES.index(lang) if lang in LANGUAGES else 0

    def t(key: str) -> str:
        return LABELS[key][index] if key in LABELS else key

    return t
