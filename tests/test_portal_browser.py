"""The member portal in a real browser at a phone's size (Debian's chromium driven by Playwright,
launched by path), against the whole park: the real broker and ledger service, the payment
provider simulator and the ledger's payment endpoint, and a fishing station running the real
station app on emulated hardware with its 2D scanner.

A member registers with a one-time code, opens an e-card (the phone's own Ed25519 key, made by the
browser), tops it up online (paying on the provider's page), sees the new balance, pays at the
station by showing the pay code to the scanner, shares the day's visit record and revokes it, binds
the physical member card bought at the desk and reports it lost — after which the station, once its
blocklist delta is in, refuses that card. The README's portal pictures are taken here."""

import json
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from host_sim.payment_provider import provider_for_park
from host_sim.rig import ParkRig
from host_sim.station import ScriptedStation
from ledger.intake import Intake
from ledger.online_members import MemberDesk
from ledger.payments.service import start_online_payments
from ledger.verify import verify_books
from protocol.messages import CardRef, MemberOpen
from terminal.events import State

from .conftest import TERMINALS
from .helpers.waiting import wait_until
from .test_portal_app import PHONE_NUMBER, RecordingSender

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
# The README's pictures are taken here, but a test run must leave the checkout as it found it: they
# are written to docs/img only when FIELDPOS_DOCS_PICTURES=1 (tools/dev.sh pictures), else to a scratch folder.
PICTURES = (Path(__file__).resolve().parents[1] / "docs" / "img" if os.environ.get("FIELDPOS_DOCS_PICTURES") == "1"
          else Path(tempfile.mkdtemp(prefix="fieldpos-pictures-")))
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
PLASTIC_UID = "04a1b2c3"  # the member card bought at the desk, on the family's other number

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (tools/dev.sh installs it): no browser to drive",
                allow_module_level=True)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def serve(app):
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(400):  # bounded: a server that never starts fails below, not by hanging
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the portal did not start"
    return server, thread, f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def park(tmp_path):
    """The park running: broker, ledger, provider and payment endpoint (the provider signs with the
    wall clock and the ledger checks it within 5 minutes, so every clock here is the wall clock)."""
    from backoffice.portal.app import create_portal_app

    terminals = TERMINALS | {"P1-portal": "desk"}
    with ParkRig(tmp_path).create(terminals, kinds_by_terminal={"P1-portal": ("member_open", "loss_report")}) as rig:
        rig.start_broker()
        rig.start_ledger()
        home = rig.home
        store = home.open_store()
        store.add_bonus_rule("P1", 20_000, 2_000)  # top up 200, get 20
        # A member card bought at the desk earlier, for the family's other phone number.
        desk = MemberDesk(Intake(store, home.ledger_keys()), json.loads(home.bundle_path("P1-portal").read_text()),
                          wall_ms)
        desk._send(MemberOpen, CardRef(no="M00077", issuance=1, uid=PLASTIC_UID), pin="1357", member_name="张小伟",
                   phone="13900139000", card_fee_fen=0, opening_fen=0, channel="cash", payment_ref="")
        provider = provider_for_park(home.home)
        payments = start_online_payments(home.home, home.store_location, home.ledger_keys(), home.park_id())
        sender = RecordingSender()
        server, thread, url = serve(create_portal_app(home.home, sender=sender))
        till = ScriptedStation(rig, "T-FISH-1")
        # Online with its signed config first, as a cashier waits: on a busy machine a login sent
        # before then may wait for its answer longer than the till does.
        wait_until(lambda: till.link.is_connected and till.link.state.policy is not None, what="the station online")
        till.log_in()
        try:
            yield rig, till, provider, sender, url
        finally:
            till.close()
            server.should_exit = True
            thread.join()
            payments.stop()
            provider.stop()
            store.close()


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_a_member_registers_tops_up_online_pays_by_qr_at_a_station_and_a_lost_bound_card_is_refused(park, browser):
    rig, till, provider, sender, url = park
    page = browser.new_context(locale="zh-CN", **PHONE).new_page()
    page.goto(f"{url}/m")
    assert page.url.endswith("/m/login")
    page.fill("#phone", PHONE_NUMBER)
    page.click("#send-code")
    page.wait_for_selector("#sent")
    page.fill("#code", sender.last_code(PHONE_NUMBER))
    page.click("#log-in")
    page.wait_for_selector("#no-cards")

    page.fill("#member-name", "张伟")
    page.fill("#pin", "246810")
    page.click("#open-ecard-button")
    page.wait_for_selector("#ecard-opened")
    device_key, _, _ = rig.reader.ecard("P1", "E000001", 1)
    assert device_key.hex() in page.eval_on_selector("#credential", "e => e.textContent")  # WebCrypto's key

    # Top up 200 online: the portal sends the member to the provider's page, the provider notifies the ledger.
    page.goto(f"{url}/m")
    page.click("#card-E000001 details.top-up summary")
    page.select_option("#card-E000001 .top-up-amount", "200")
    page.click("#card-E000001 .top-up-button")
    assert page.inner_text("#pay-amount") == "¥200.00"
    page.click("#pay-link")
    page.wait_for_url(f"{provider.base_url}/pay/*")
    page.click("button")  # 支付 Pay ¥200.00, on the provider's page
    assert [d.http_status for d in provider.wait_for_deliveries(1)] == [204]
    page.goto(f"{url}/m")
    assert page.inner_text("#card-E000001 .balance") == "¥200.00"
    assert page.inner_text("#card-E000001 .bonus") == "¥20.00"  # the park's bonus tier

    # Pay 30 at the fishing pond: the station's scanner reads the pay code off the phone's screen.
    with page.expect_response(lambda response: "/m/qr.svg" in response.url) as drawn:
        page.click("#card-E000001 .qr-link")
    assert drawn.value.ok and drawn.value.headers["content-type"].startswith("image/svg")
    token = page.wait_for_selector("#ecard-qr[data-token]").get_attribute("data-token")
    page.wait_for_selector("#ecard-qr-image[src]", state="visible")
    page.screenshot(path=str(PICTURES / "portal-ecard-qr.png"))
    till.scan(token)
    assert till.state == State.AMOUNT
    till.keys("30E")
    till.turns(lambda: till.state in (State.DONE, State.MESSAGE))
    assert till.state == State.DONE, till.app.screen
    till.keys("E")
    page.goto(f"{url}/m")
    assert page.inner_text("#card-E000001 .balance") == "¥170.00"
    page.screenshot(path=str(PICTURES / "portal-home.png"))

    page.click("#card-E000001 details.share-visit summary")
    page.click("#card-E000001 .share")
    link = page.get_attribute("#share-link", "href")
    friend = browser.new_context(locale="zh-CN", **PHONE).new_page()
    shown = friend.goto(f"{url}{link}")
    assert shown.status == 200 and "示范农庄" in friend.inner_text("#park-name")
    assert friend.locator("#activities li").count() == 1 and "30.00" not in friend.inner_text("#activities")
    picture = friend.request.get(f"{url}{link}/image.png")
    assert picture.status == 200 and picture.body().startswith(b"\x89PNG")
    (PICTURES / "visit-record.png").write_bytes(picture.body())
    page.goto(f"{url}/m")
    page.click("ul.links .revoke")
    page.wait_for_selector("ul.links .revoked")
    assert friend.goto(f"{url}{link}").status == 404

    # Bind the physical card with its own PIN, then report it lost from the phone.
    page.click("#card-E000001 details.bind-card summary")
    page.fill("#card-E000001 .bind-card-no", "M00077")
    page.fill("#card-E000001 .bind-pin", "1357")
    page.click("#card-E000001 .bind-button")
    page.wait_for_selector("#card-M00077 .bound-to")
    page.click("#card-M00077 .report-lost")
    page.wait_for_selector("#card-M00077 .state-lost")
    # The station hears of it through the blocklist delta, and refuses the card at the tap.
    deadline_s = time.monotonic() + 30  # bounded: a delta that never comes fails here, not by hanging
    while True:
        till.app.turn()  # the till runs on meanwhile, as it does every 50 ms in the field
        if ("M00077", 1) in till.link.state.blocklist.blocked:
            break
        assert time.monotonic() < deadline_s, "the station never got the blocklist delta"
        time.sleep(0.02)  # the delta arrives on the link's network thread
    till.tap(rig.virtual_card("M00077", kind="member", uid=bytes.fromhex(PLASTIC_UID)))
    till.turns(lambda: till.state == State.MESSAGE)
    assert "挂失" in till.app.screen.title + " ".join(till.app.screen.lines)
    assert rig.reader.db.execute("SELECT COUNT(*) FROM txn WHERE kind='charge'").fetchone() == (1,)
    assert verify_books(rig.reader).is_ok
