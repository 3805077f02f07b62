"""Member notices (总后台消息通知) on a park after a simulated day: an admin's notice reaches the
members of its audience through the notification outbox, one row per phone, and a member who opted
out gets nothing; the notifier sends them as it sends booking notices."""

import json
import shutil

import pytest

from ledger.member_notices import Audience, NoticeRefused, audience_phones, send_notice
from ledger.notify import Notifier, format_text
from ledger.store import Store
from tools.cli import main

from .helpers.park_day import park_day  # noqa: F401 - the session's park
from .test_portal_app import PHONE_NUMBER, portal  # noqa: F401 - the member portal over a park of its own

FAMILY = "13800138000"      # the demo's member family: a lost card and its replacement, bought at the fishing pond
PLASTIC = "13700000001"     # a member card that has bought nothing
ECARD = "13700000002"       # an e-card opened on the phone
RETURNED = "13700000003"    # a member whose only card came back


@pytest.fixture
def park(park_day, tmp_path):  # noqa: F811
    """The session's park, copied, with three more members beside the demo's family."""
    home = tmp_path / "home"
    shutil.copytree(park_day.home, home)
    store = Store(home / "ledger.db")
    try:
        park_id = store.db.execute("SELECT park_id FROM park").fetchone()[0]
        issued_txn = store.db.execute("SELECT MIN(txn_id) FROM txn").fetchone()[0]
        with store.batch():  # member rows as the desk and the portal leave them (the audience reads only these)
            for card_no, phone, state in (("M0B0B0001", PLASTIC, "active"), ("E000001", ECARD, "active"),
                                          ("M0B0B0003", RETURNED, "returned")):
                store.insert_card(park_id, card_no, 1, f"UID{card_no}", "member", 0, issued_txn)
                store.set_card_state(park_id, card_no, 1, state)
                store.insert_member(park_id, card_no, "测试", phone, "x", 20000)
            store.add_ecard(park_id, "E000001", 1, bytes(32), 0, 2**40)
    finally:
        store.close()
    return home


def cli(home, *words) -> int:
    return main(["--home", str(home), "notice", *words])


def outbox(home, notice_id) -> dict[str, dict]:
    store = Store(home / "ledger.db")
    try:
        rows = store.db.execute("SELECT phone, body, txn_id FROM notification WHERE notice_id = ?", (notice_id,)).fetchall()
        assert all(txn_id is None for _, _, txn_id in rows)
        return {phone: json.loads(body) for phone, body, _ in rows}
    finally:
        store.close()


def last_notice(home) -> tuple:
    store = Store(home / "ledger.db")
    try:
        return store.db.execute("SELECT notice_id, recipients, opted_out, audience FROM member_notice "
                                "ORDER BY notice_id DESC LIMIT 1").fetchone()
    finally:
        store.close()


def test_a_notice_to_all_members_reaches_each_phone_once_and_none_that_opted_out(park, capsys):
    assert cli(park, "opt-out", "--card", "E000001") == 0
    assert f"the member at {ECARD} gets no notices" in capsys.readouterr().out
    assert cli(park, "send", "--text", "五一活动：充500送80 May Day: top up 500, get 80", "--by", "admin-wang") == 0
    assert "2 member(s) queued, 1 opted out" in capsys.readouterr().out
    notice_id, recipients, opted_out, _ = last_notice(park)
    rows = outbox(park, notice_id)
    # The audience: every member phone with a card not returned (the family's two cards are one phone),
    # less the one that opted out.
    assert set(rows) == {FAMILY, PLASTIC} and (recipients, opted_out) == (2, 1)
    assert {body["text"] for body in rows.values()} == {"五一活动：充500送80 May Day: top up 500, get 80"}
    assert format_text(rows[FAMILY]).startswith("【") and "May Day" in format_text(rows[FAMILY])


def test_by_card_type_and_by_station_visited(park, capsys):
    assert cli(park, "send", "--text", "电子卡会员专享 E-card members", "--card-type", "ecard") == 0
    assert set(outbox(park, last_notice(park)[0])) == {ECARD}
    assert cli(park, "send", "--text", "实体卡 Plastic", "--card-type", "member") == 0
    assert set(outbox(park, last_notice(park)[0])) == {FAMILY, PLASTIC}
    assert cli(park, "send", "--text", "钓鱼比赛 Fishing contest", "--visited", "fishing") == 0
    notice_id, recipients, _, audience = last_notice(park)
    assert set(outbox(park, notice_id)) == {FAMILY} and recipients == 1 and json.loads(audience)["station"] == "fishing"
    assert cli(park, "send", "--text", "骑马 Riding", "--visited", "riding", "--period", "2020-01") == 0
    assert outbox(park, last_notice(park)[0]) == {}
    # Opting out again and back in: the member gets the next notice.
    assert cli(park, "opt-out", "--phone", ECARD) == 0 and cli(park, "opt-in", "--phone", ECARD) == 0
    assert cli(park, "send", "--text", "欢迎回来 Welcome back", "--card-type", "ecard") == 0
    assert set(outbox(park, last_notice(park)[0])) == {ECARD}


def test_the_notifier_sends_notices_and_the_console_form_sent_twice_queues_once(park):
    class Recording:
        def __init__(self):
            self.sent = []

        def send(self, phone, body):
            self.sent.append((phone, body))

    store = Store(park / "ledger.db")
    try:
        audience = Audience()
        first = send_notice(store, text="闭园通知 Closing early", audience=audience, sent_by="console:admin",
                            now_ms=1, request_key="form-1")
        again = send_notice(store, text="闭园通知 Closing early", audience=audience, sent_by="console:admin",
                            now_ms=2, request_key="form-1")
        assert (again.notice_id, again.is_new) == (first.notice_id, False)
        assert store.db.execute("SELECT COUNT(*) FROM notification WHERE notice_id IS NOT NULL").fetchone()[0] == \
            first.recipients == len(audience_phones(store.db, "P1", audience)) == 3
        sender = Recording()
        Notifier(park / "ledger.db", sender, clock_ms=lambda: 10**13).send_due(store)
        notices = [(phone, body["text"]) for phone, body in sender.sent if body["kind"] == "notice"]
        assert sorted(notices) == sorted((phone, "闭园通知 Closing early") for phone in (FAMILY, PLASTIC, ECARD))
    finally:
        store.close()


def test_opting_out_takes_back_the_notices_not_sent_yet_and_leaves_booking_messages(park, capsys):
    assert cli(park, "send", "--text", "第一条 First") == 0
    first = last_notice(park)[0]
    store = Store(park / "ledger.db")
    try:
        with store.batch():  # the first notice went out; the second waits for the gateway
            store.db.execute("UPDATE notification SET sent_ms = 5 WHERE notice_id = ?", (first,))
        bookings = store.db.execute("SELECT COUNT(*) FROM notification WHERE phone = ? AND txn_id IS NOT NULL",
                                    (FAMILY,)).fetchone()[0]
    finally:
        store.close()
    assert cli(park, "send", "--text", "第二条 Second") == 0
    second = last_notice(park)[0]
    assert cli(park, "opt-out", "--phone", FAMILY) == 0
    assert FAMILY in outbox(park, first) and FAMILY not in outbox(park, second) and PLASTIC in outbox(park, second)
    store = Store(park / "ledger.db")
    try:
        assert bookings > 0 and store.db.execute(
            "SELECT COUNT(*) FROM notification WHERE phone = ? AND txn_id IS NOT NULL", (FAMILY,)).fetchone()[0] == bookings
    finally:
        store.close()


@pytest.mark.parametrize("text, audience", [
    ("", Audience()), ("x" * 301, Audience()), ("ok", Audience("visited", station="no-such-station")),
])
def test_a_notice_that_cannot_be_sent_queues_nothing(park, text, audience):
    store = Store(park / "ledger.db")
    try:
        before = store.db.execute("SELECT COUNT(*) FROM notification").fetchone()[0]
        with pytest.raises(NoticeRefused):
            send_notice(store, text=text, audience=audience, sent_by="admin", now_ms=1)
        assert store.db.execute("SELECT COUNT(*) FROM notification").fetchone()[0] == before
    finally:
        store.close()


def test_an_audience_is_all_or_one_card_type_or_one_station():
    for bad in (dict(kind="card-type"), dict(kind="card-type", card_type="gold"), dict(kind="all", station="bbq"),
                dict(kind="visited"), dict(kind="everyone")):
        with pytest.raises(NoticeRefused):
            Audience(**bad)


def test_a_member_opts_out_on_the_portal_and_the_next_notice_passes_them_by(portal):  # noqa: F811
    client = portal.client()
    home = portal.log_in(client)
    assert 'id="notices-choice"' not in home.text  # no card yet: nothing to opt out of
    portal.open_ecard(client, home)
    home = client.get("/m")
    assert 'data-wants="yes"' in home.text
    off = client.post("/m/notices", data={"csrf": portal.csrf(home), "wants": "no"})
    assert off.url.path == "/m" and 'data-wants="no"' in off.text
    quiet = send_notice(portal.store, text="夜场开放 Night opening", audience=Audience(), sent_by="admin", now_ms=1)
    assert (quiet.recipients, quiet.opted_out) == (0, 1)
    on = client.post("/m/notices", data={"csrf": portal.csrf(off), "wants": "yes"})
    assert 'data-wants="yes"' in on.text
    heard = send_notice(portal.store, text="夜场开放 Night opening", audience=Audience(), sent_by="admin", now_ms=2)
    assert (heard.recipients, heard.opted_out) == (1, 0)
    assert portal.store.db.execute("SELECT phone FROM notification WHERE notice_id = ?",
                                   (heard.notice_id,)).fetchall() == [(PHONE_NUMBER,)]
    assert client.post("/m/notices", data={"csrf": "forged", "wants": "no"}).status_code == 404
