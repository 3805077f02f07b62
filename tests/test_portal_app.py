"""The member portal over HTTP (FastAPI's test client; the browser tests are test_portal_browser.py):
a member registers with phone and one-time code, opens an e-card through the ledger, sees balance
and history, changes the PIN, reports a card lost, and shares a visit record they can revoke."""

import re

import pytest
from fastapi.testclient import TestClient
from nacl.signing import SigningKey

from backoffice.portal.app import create_portal_app
from backoffice.portal.member_logins import CODE_VALID_MS
from host_sim.rig import ParkRig, single_line
from ledger.verify import verify_books
from protocol import ecard
from protocol.messages import CardRef, Charge, TopUp

from .helpers.intake_driver import Ledger

NOW_MS = 1_780_000_000_000
PHONE_NUMBER = "13800138000"
DEVICE = SigningKey(bytes(range(200, 232)))


class RecordingSender:
    """The notifier's sender interface (``send(phone, body)``), keeping what it was asked to send."""

    def __init__(self):
        self.sent = []

    def send(self, phone, body):
        self.sent.append((phone, body))

    def last_code(self, phone):
        return [body["code"] for to, body in self.sent if to == phone][-1]


class Portal:
    def __init__(self, tmp_path):
        self.rig = ParkRig(tmp_path).create({"T-DESK-1": "desk", "T-FISH-1": "fishing", "T-BBQ-1": "bbq", "P1-portal": "desk"},
                                            kinds_by_terminal={"P1-portal": ("member_open", "loss_report")})
        self.now_ms = NOW_MS
        self.sender = RecordingSender()
        self.app = create_portal_app(self.rig.home.home, sender=self.sender, clock_ms=lambda: self.now_ms)
        self.store = self.app.state.store
        self.ledger = Ledger(self.rig)
        self.ledger.intake.clock_ms = lambda: self.now_ms

    def client(self):
        return TestClient(self.app, base_url="https://testserver", follow_redirects=True)

    @staticmethod
    def csrf(page) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def log_in(self, client, phone=PHONE_NUMBER):
        form = client.get("/m/login")
        client.post("/m/code", data={"phone": phone, "csrf": self.csrf(form)})
        page = client.get(f"/m/login?phone={phone}")
        return client.post("/m/login", data={"phone": phone, "code": self.sender.last_code(phone), "csrf": self.csrf(page)})

    def scanned(self, client, card_no="E000001", *, device=DEVICE) -> CardRef:
        """What a till's scanner reads off the phone now: a fresh QR, in the card reference it sends.
        The clock moves on one window, so the next scan is a new QR (each is good once)."""
        page = client.get(f"/m/cards/{card_no}/qr")
        credential = bytes.fromhex(re.search(r'data-credential="([0-9a-f]+)"', page.text).group(1))
        token = ecard.present(credential, device, self.now_ms)
        self.now_ms += ecard.WINDOW_SECONDS * 1000
        return CardRef(no=card_no, issuance=1, uid=ecard.device_tag(device.verify_key.encode()), ecard=token)

    def open_ecard(self, client, home, *, device=DEVICE, pin="246810"):
        return client.post("/m/ecard", data={"csrf": self.csrf(home), "name": "张伟", "pin": pin,
                                             "device_key": device.verify_key.encode().hex()})


@pytest.fixture
def portal(tmp_path):
    portal = Portal(tmp_path)
    yield portal
    portal.rig.close()
    portal.ledger.store.close()
    portal.store.close()


def test_a_member_registers_with_a_code_opens_an_ecard_and_sees_its_balance_after_a_top_up(portal):
    client = portal.client()
    home = portal.log_in(client)
    assert home.url.path == "/m" and 'id="no-cards"' in home.text
    assert portal.sender.sent[0][1]["kind"] == "login_code" and len(portal.sender.last_code(PHONE_NUMBER)) == 6
    opened = portal.open_ecard(client, home)
    assert "E000001" in opened.text and re.search(r'id="credential"[^>]*>[0-9a-f]{200,}<', opened.text)
    assert portal.ledger.request("T-DESK-1", TopUp, card_ref=portal.scanned(client), amount_fen=10000,
                                 channel="cash", payment_ref="").is_approved
    assert portal.ledger.request("T-FISH-1", Charge, card_ref=portal.scanned(client), amount_fen=3000,
                                 lines=single_line("鱼饵", 3000), pin_sha256=None).is_approved
    home = client.get("/m")
    assert re.search(r'class="balance">¥70\.00<', home.text)
    card = client.get("/m/cards/E000001")
    assert "-30.00" in card.text and "100.00" in card.text
    assert verify_books(portal.store).is_ok


def test_codes_are_rate_limited_expire_and_work_once(portal):
    client = portal.client()

    def post(path, **data):  # each login page sets a new double-submit token, as a browser meets it
        return client.post(path, data={**data, "csrf": portal.csrf(client.get("/m/login"))})

    post("/m/code", phone=PHONE_NUMBER)
    again = post("/m/code", phone=PHONE_NUMBER)
    assert "error=CODE_RATE_LIMITED" in str(again.url) and len(portal.sender.sent) == 1
    code = portal.sender.last_code(PHONE_NUMBER)
    portal.now_ms += CODE_VALID_MS
    assert "error=CODE_REFUSED" in str(post("/m/login", phone=PHONE_NUMBER, code=code).url)
    portal.now_ms += 60_000
    post("/m/code", phone=PHONE_NUMBER)
    code = portal.sender.last_code(PHONE_NUMBER)
    assert "error=CODE_REFUSED" in str(post("/m/login", phone=PHONE_NUMBER, code="000000" if code != "000000" else "111111").url)
    assert post("/m/login", phone=PHONE_NUMBER, code=code).url.path == "/m"
    client.cookies.clear()
    assert "error=CODE_REFUSED" in str(post("/m/login", phone=PHONE_NUMBER, code=code).url)  # used once
    for _ in range(4):
        portal.now_ms += 60_000
        post("/m/code", phone=PHONE_NUMBER)
    portal.now_ms += 60_000
    assert "error=CODE_RATE_LIMITED" in str(post("/m/code", phone=PHONE_NUMBER).url)
    assert len(portal.sender.sent) == 5  # five an hour, however far apart


def test_a_wrong_phone_number_and_a_missing_csrf_token_are_refused(portal):
    client = portal.client()
    form = client.get("/m/login")
    bad = client.post("/m/code", data={"phone": "12345", "csrf": portal.csrf(form)})
    assert "error=BAD_PHONE" in str(bad.url) and portal.sender.sent == []
    assert client.post("/m/code", data={"phone": PHONE_NUMBER}).status_code == 404
    home = portal.log_in(client)
    assert client.post("/m/ecard", data={"name": "x", "pin": "1234", "device_key": "00" * 32}).status_code == 404
    assert 'id="no-cards"' in client.get("/m").text and home.status_code == 200


def test_the_pin_is_changed_knowing_the_old_one_and_a_card_reported_lost_is_blocked(portal):
    client = portal.client()
    home = portal.log_in(client)
    portal.open_ecard(client, home)
    home = client.get("/m")
    wrong = client.post("/m/cards/E000001/pin", data={"csrf": portal.csrf(home), "old_pin": "000000", "new_pin": "1357"})
    assert "error=WRONG_PIN" in str(wrong.url)
    assert portal.store.member("P1", "E000001").wrong_pins == 1
    done = client.post("/m/cards/E000001/pin", data={"csrf": portal.csrf(home), "old_pin": "246810", "new_pin": "1357"})
    assert "done=pin_changed" in str(done.url) and portal.store.member("P1", "E000001").wrong_pins == 0
    lost = client.post("/m/cards/E000001/lost", data={"csrf": portal.csrf(home)})
    assert "done=reported_lost" in str(lost.url)
    assert portal.store.block_reason("P1", "E000001", 1) == "LOST"
    assert 'class="state-lost"' in client.get("/m").text


def test_a_member_sees_and_acts_on_only_their_own_cards(portal):
    owner = portal.client()
    portal.open_ecard(owner, portal.log_in(owner))
    stranger = portal.client()
    home = portal.log_in(stranger, phone="13900139000")
    assert stranger.get("/m/cards/E000001").status_code == 404
    assert stranger.post("/m/cards/E000001/lost", data={"csrf": portal.csrf(home)}).status_code == 404
    assert portal.store.block_reason("P1", "E000001", 1) is None


def test_a_shared_visit_record_shows_the_park_and_the_day_without_amounts_and_a_revoked_link_is_404(portal):
    client = portal.client()
    portal.open_ecard(client, portal.log_in(client))
    assert portal.ledger.request("T-DESK-1", TopUp, card_ref=portal.scanned(client), amount_fen=10000,
                                 channel="cash", payment_ref="").is_approved
    assert portal.ledger.request("T-FISH-1", Charge, card_ref=portal.scanned(client), amount_fen=3000,
                                 lines=single_line("鱼饵", 3000), pin_sha256=None).is_approved
    home = client.get("/m")
    shared = client.post("/m/visits", data={"csrf": portal.csrf(home), "card_no": "E000001", "show_times": "on"})
    link = re.search(r'id="share-link">(/v/[A-Za-z0-9_-]{22})<', shared.text).group(1)
    visitor = portal.client()  # a friend, not logged in
    page = visitor.get(link)
    assert page.status_code == 200 and "示范农庄" in page.text and "钓鱼" in page.text
    assert "30.00" not in page.text  # amounts only when the member turns them on
    image = visitor.get(link + "/image.png")
    assert image.headers["content-type"] == "image/png" and image.content.startswith(b"\x89PNG")
    home = client.get("/m")
    link_id = re.search(r'action="/m/visits/(\d+)/revoke"', home.text).group(1)
    client.post(f"/m/visits/{link_id}/revoke", data={"csrf": portal.csrf(home)})
    assert visitor.get(link).status_code == 404 and visitor.get(link + "/image.png").status_code == 404
    assert visitor.get("/v/" + "A" * 22).status_code == 404


def test_the_pay_code_page_is_the_owners_and_the_qr_route_draws_only_ecard_tokens(portal):
    owner = portal.client()
    portal.open_ecard(owner, portal.log_in(owner))
    page = owner.get("/m/cards/E000001/qr")
    credential = re.search(r'data-credential="([0-9a-f]+)"', page.text).group(1)
    assert ecard.parse_token(ecard.present(bytes.fromhex(credential), DEVICE, NOW_MS))[0].card_no == "E000001"
    token = ecard.present(bytes.fromhex(credential), DEVICE, NOW_MS)
    drawn = owner.get("/m/qr.svg", params={"text": token})
    assert drawn.status_code == 200 and drawn.headers["content-type"].startswith("image/svg+xml")
    assert owner.get("/m/qr.svg", params={"text": "https://example.com/ad"}).status_code == 404
    assert owner.get("/m/qr.svg", params={"text": "FPE1:" + "A" * 500}).status_code == 404
    stranger = portal.client()
    portal.log_in(stranger, phone="13900139000")
    assert stranger.get("/m/cards/E000001/qr").status_code == 404
    assert portal.client().get("/m/qr.svg", params={"text": token}).url.path == "/m/login"


def test_an_ecard_moves_to_a_new_phone_with_the_pin_after_logging_in_there_and_the_old_phones_code_is_refused(portal):
    old_phone = portal.client()
    portal.open_ecard(old_phone, portal.log_in(old_phone))
    page = old_phone.get("/m/cards/E000001/qr")
    old_credential = bytes.fromhex(re.search(r'data-credential="([0-9a-f]+)"', page.text).group(1))
    new_device = SigningKey(bytes(range(100, 132)))
    new_phone = portal.client()
    portal.now_ms += 61_000  # one code a minute per number
    home = portal.log_in(new_phone)  # the phone code, on the new phone
    assert home.url.path == "/m"
    wrong = new_phone.post("/m/cards/E000001/device", data={"csrf": portal.csrf(home), "pin": "000000",
                                                           "device_key": new_device.verify_key.encode().hex()})
    assert str(wrong.url).endswith("/m?error=WRONG_PIN")
    assert new_phone.post("/m/cards/E000001/device", data={"pin": "246810", "device_key": "00" * 32}).status_code == 404
    moved = new_phone.post("/m/cards/E000001/device", data={"csrf": portal.csrf(home), "pin": "246810",
                                                           "device_key": new_device.verify_key.encode().hex()})
    assert re.search(r'id="credential"[^>]*>[0-9a-f]{200,}<', moved.text)
    old_token = ecard.present(old_credential, DEVICE, portal.now_ms)  # what the old phone shows now
    old_code = CardRef(no="E000001", issuance=1, uid=ecard.device_tag(DEVICE.verify_key.encode()), ecard=old_token)
    refused = portal.ledger.request("T-FISH-1", Charge, card_ref=old_code, amount_fen=100,
                                    lines=single_line("鱼饵", 100), pin_sha256=None)
    assert refused.reason == "ECARD_WRONG_DEVICE"
    topped = portal.ledger.request("T-DESK-1", TopUp, card_ref=portal.scanned(new_phone, device=new_device),
                                   amount_fen=10000, channel="cash", payment_ref="")
    assert topped.is_approved
