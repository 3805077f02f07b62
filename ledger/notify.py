"""Member notifications: the outbox table is filled in the booking's own transaction; a Notifier
thread with its own database connection sends them, so a slow or hung gateway never holds up a sale.
A failed send is retried with backoff; a notification is marked sent only after its sender returned.
Senders are pluggable: a log (the default), an SMS gateway over HTTP, a WeChat template message.
"""

import json
import logging
import threading
import time
import urllib.request

from protocol.money import format_fen

from .store import Store
from .store_location import open_store

log = logging.getLogger("fieldpos.ledger.notify")

BATCH = 50
IDLE_S = 0.2
MAX_BACKOFF_S = 300


def format_text(body: dict) -> str:
    """The member-facing text: "Charged 30.00 at T-FISH-1. Balance 70.00 (+5.00 bonus), points 30"."""
    if body["kind"] == "notice":  # a notice the park sent its members (ledger.member_notices)
        return f"【{body['park']}】{body['text']} (退订 opt out: 会员中心 member portal)"
    if body["kind"] == "login_code":  # the member portal's one-time code (backoffice.portal)
        return f"验证码 Code {body['code']}，5 分钟内有效 valid 5 minutes. 请勿告诉他人 Tell no one."
    yuan = format_fen
    if body["kind"] == "renter_return":  # an online renter, told through their payment (ledger.store)
        charged = [f"{name} {yuan(body[key])}" for name, key in (("租金 rental", "rental_fen"), ("超时 late", "late_fen"),
                                                                   ("损坏 damage", "damage_fen")) if body[key]]
        owed = f"; 待付 still owed {yuan(body['claim_fen'])}" if body["claim_fen"] else ""
        refund = (f"退回 refunding {yuan(body['refunded_fen'])} 原路 to your {body['method']} payment"
                  if body["refunded_fen"] else "nothing to refund")
        return (f"租赁归还 Rental {body['order']} returned ({body['condition']}): 押金 deposit {yuan(body['deposit_fen'])}"
                f"{', ' + ', '.join(charged) if charged else ''}; {refund}{owed}")
    if body["kind"] == "renter_refund":
        how = "现金 in cash at the desk" if body["method"] == "cash" else f"原路 to your {body['method']} payment"
        return f"押金已退 Deposit {body['order']}: {yuan(body['refunded_fen'])} refunded {how}"
    if body["kind"] == "rental_return":  # the renter confirms what came back (ledger.rules.rentals)
        return (f"租赁归还 Rental returned @ {body['terminal']}: 押金退回 deposit refunded {yuan(body['amount_fen'])}. "
                f"余额 Balance {yuan(body['balance_fen'])}")
    verb = "充值 Top-up" if body["kind"] == "top_up" else "消费 Charged"
    bonus = f" (+{yuan(body['bonus_fen'])} 赠送 bonus)" if body.get("bonus_fen") else ""
    return (f"{verb} {yuan(body['amount_fen'])} @ {body['terminal']}. 余额 Balance {yuan(body['balance_fen'])}{bonus}, "
            f"积分 points {body['points']}")


class LogSender:
    def send(self, phone: str, body: dict) -> None:
        log.info("notify %s: %s", phone, format_text(body))


class HttpSmsSender:
    """POSTs ``{"to": phone, "text": ...}`` as JSON to an SMS gateway (most Chinese gateways take
    a JSON or form POST with an API key header); any non-2xx answer is a failure to retry."""

    def __init__(self, url: str, api_key: str = "", timeout_s: float = 10.0):
        self.url, self.api_key, self.timeout_s = url, api_key, timeout_s

    def send(self, phone: str, body: dict) -> None:
        data = json.dumps({"to": phone, "text": format_text(body)}, ensure_ascii=False).encode()
        request = urllib.request.Request(self.url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "X-Api-Key": self.api_key})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"gateway answered {response.status}")


class WeChatTemplateSender(HttpSmsSender):
    """A WeChat template message through the park's own relay (it holds the official account's
    access token and the member's openid for the phone number)."""

    def __init__(self, url: str, template_id: str, api_key: str = "", timeout_s: float = 10.0):
        super().__init__(url, api_key, timeout_s)
        self.template_id = template_id

    def send(self, phone: str, body: dict) -> None:
        payload = {"phone": phone, "template_id": self.template_id, "data": body, "text": format_text(body)}
        request = urllib.request.Request(self.url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-Api-Key": self.api_key})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"relay answered {response.status}")


class PaymentRelaySender(HttpSmsSender):
    """An online renter's message through the park's relay: it holds the official account's (or
    Alipay app's) token and finds the payer of the payment named by the address
    ("wechat:<provider order>"), so the ledger needs no personal data of theirs."""

    def send(self, address: str, body: dict) -> None:
        payload = {"payment": address, "text": format_text(body), "data": body}
        request = urllib.request.Request(self.url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-Api-Key": self.api_key})
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            if not 200 <= response.status < 300:
                raise OSError(f"relay answered {response.status}")


class Notifier:
    """Sends the outbox: members' notifications by phone through ``sender``, and online renters'
    (addressed by their payment, "<provider>:<provider order>") through ``renter_sender`` — the
    park's relay to the payer's WeChat / Alipay account, the log by default."""

    def __init__(self, db_path, sender=None, *, renter_sender=None, clock_ms=lambda: int(time.time() * 1000)):
        self.db_path = db_path
        self.sender = sender or LogSender()
        self.renter_sender = renter_sender or LogSender()
        self.clock_ms = clock_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> "Notifier":
        self._thread = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)  # a hung sender is left behind: it is a daemon thread

    def _run(self) -> None:
        store = open_store(self.db_path)  # a path or a store URL
        try:
            while not self._stop.is_set():
                if not self.send_due(store):
                    self._stop.wait(IDLE_S)
        finally:
            store.close()

    def send_due(self, store: Store) -> int:
        """Send what is due; returns how many were sent."""
        sent = self._send_from(store, "notification", "phone", self.sender)
        sent += self._send_from(store, "renter_notification", "address", self.renter_sender)
        self.sent += sent
        return sent

    def _send_from(self, store: Store, table: str, address: str, sender) -> int:
        now_ms = self.clock_ms()
        due = store.db.execute(
            f"""SELECT notification_id, {address}, body, attempts FROM {table} WHERE sent_ms IS NULL
               AND created_ms + (CASE WHEN attempts = 0 THEN 0 ELSE MIN(?, 1000 * (1 << MIN(attempts, 8))) END) <= ?
               ORDER BY notification_id LIMIT ?""",
            (MAX_BACKOFF_S * 1000, now_ms, BATCH),
        ).fetchall()
        sent = 0
        for notification_id, to, body, attempts in due:
            if self._stop.is_set():
                break
            try:
                sender.send(to, json.loads(body))
            except Exception as error:  # any sender failure is retried later
                store.db.execute(f"UPDATE {table} SET attempts = attempts + 1, last_error = ? WHERE notification_id = ?",
                                 (repr(error)[:300], notification_id))
                log.warning("%s %s not sent (try %s): %s", table, notification_id, attempts + 1, error)
                continue
            store.db.execute(f"UPDATE {table} SET sent_ms = ?, attempts = attempts + 1 WHERE notification_id = ?",
                             (self.clock_ms(), notification_id))
            sent += 1
        return sent
