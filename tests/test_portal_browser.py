"""The member portal in a real browser at a phone's size (Debian's chromium driven by Playwright,
launched by path): a member registers with a one-time code, opens an e-card (the phone's own
Ed25519 key, made by the browser), sees the balance after a top-up and two sales, shares the day's
visit record and revokes it, and reports the e-card lost, after which a terminal declines it.
The visit-record picture in the README is saved here."""

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from host_sim.rig import single_line
from ledger.verify import verify_books
from protocol.ecard import WINDOW_SECONDS, parse_token
from protocol.messages import CardRef, Charge, TopUp

from .test_portal_app import PHONE_NUMBER, Portal

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
# The README's pictures are taken here, but a test run must leave the checkout as it found it: they
# are written to docs/img only when FIELDPOS_DOCS_PICTURES=1 (tools/dev.sh pictures), else to a scratch folder.
PICTURES = (Path(__file__).resolve().parents[1] / "docs" / "img" if os.environ.get("FIELDPOS_DOCS_PICTURES") == "1"
          else Path(tempfile.mkdtemp(prefix="fieldpos-pictures-")))
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True)
HOUR_MS = 3600_000
WINDOW_MS = WINDOW_SECONDS * 1000

playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
if not CHROMIUM.exists():
    pytest.skip("Debian's chromium is not installed (tools/dev.sh installs it): no browser to drive",
                allow_module_level=True)


@pytest.fixture
def served(tmp_path):
    import uvicorn

    portal = Portal(tmp_path)
    portal.now_ms += 5 * HOUR_MS  # 09:26 in the park, a morning visit
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(portal.app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(400):  # bounded: a server that never starts fails below, not by hanging
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "the portal did not start"
    yield portal, f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join()
    portal.rig.close()
    portal.ledger.store.close()
    portal.store.close()


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def test_a_member_on_a_phone_registers_opens_an_ecard_sees_the_balance_shares_and_revokes_a_visit(served, browser):
    portal, url = served
    page = browser.new_context(locale="zh-CN", **PHONE).new_page()
    page.goto(f"{url}/m")
    assert page.url.endswith("/m/login")
    page.fill("#phone", PHONE_NUMBER)
    page.click("#send-code")
    page.wait_for_selector("#sent")
    page.fill("#code", portal.sender.last_code(PHONE_NUMBER))
    page.click("#log-in")
    page.wait_for_selector("#no-cards")

    page.fill("#member-name", "张伟")
    page.fill("#pin", "246810")
    page.click("#open-ecard-button")
    page.wait_for_selector("#ecard-opened")
    device_key, _, _ = portal.store.ecard("P1", "E000001", 1)
    sent_key = page.eval_on_selector("#credential", "e => e.textContent")
    assert device_key.hex() in sent_key  # the credential carries the key the browser made (WebCrypto Ed25519)

    # The phone's clock is the park's, so the QR windows it signs are those the ledger checks.
    page.clock.set_fixed_time(portal.now_ms / 1000)

    def scanned() -> CardRef:
        """The pay code the phone shows now, as a till's scanner reads it into a card reference."""
        with page.expect_response(lambda response: "/m/qr.svg" in response.url) as drawn:
            page.goto(f"{url}/m/cards/E000001/qr")
        assert drawn.value.ok and drawn.value.headers["content-type"].startswith("image/svg")
        token = page.wait_for_selector("#ecard-qr[data-token]").get_attribute("data-token")
        credential = parse_token(token)[0]
        return CardRef(no=credential.card_no, issuance=credential.issuance, uid=credential.device_tag, ecard=token)

    def later(ms):
        portal.now_ms += ms
        page.clock.set_fixed_time(portal.now_ms / 1000)

    assert portal.ledger.request("T-DESK-1", TopUp, card_ref=scanned(), amount_fen=20000, channel="cash",
                                 payment_ref="").is_approved
    later(HOUR_MS)
    assert portal.ledger.request("T-FISH-1", Charge, card_ref=scanned(), amount_fen=3000,
                                 lines=single_line("鱼饵", 3000), pin_sha256=None).is_approved
    later(2 * HOUR_MS)
    card = scanned()
    page.wait_for_selector("#ecard-qr-image[src]", state="visible")
    page.screenshot(path=str(PICTURES / "portal-ecard-qr.png"))
    assert portal.ledger.request("T-BBQ-1", Charge, card_ref=card, amount_fen=4500,
                                 lines=single_line("烤串 Skewers", 4500), pin_sha256=None).is_approved
    replayed = portal.ledger.request("T-FISH-1", Charge, card_ref=card, amount_fen=1000,
                                     lines=single_line("鱼饵", 1000), pin_sha256=None)
    assert replayed.reason == "ECARD_REPLAYED"  # the same code shown again (a screenshot) buys nothing
    page.goto(f"{url}/m")
    assert page.inner_text("#card-E000001 .balance") == "¥125.00"
    page.screenshot(path=str(PICTURES / "portal-home.png"))
    later(WINDOW_MS)

    page.goto(f"{url}/m")

    page.click("#card-E000001 details.share-visit summary")
    page.click("#card-E000001 .share")
    link = page.get_attribute("#share-link", "href")
    friend = browser.new_context(locale="zh-CN", **PHONE).new_page()
    shown = friend.goto(f"{url}{link}")
    assert shown.status == 200 and "示范农庄" in friend.inner_text("#park-name")
    assert friend.locator("#activities li").count() == 2 and "30.00" not in friend.inner_text("#activities")
    picture = friend.request.get(f"{url}{link}/image.png")
    assert picture.status == 200 and picture.body().startswith(b"\x89PNG")
    (PICTURES / "visit-record.png").write_bytes(picture.body())

    page.goto(f"{url}/m")
    page.click("ul.links .revoke")
    page.wait_for_selector("ul.links .revoked")
    assert friend.goto(f"{url}{link}").status == 404

    card = scanned()  # a fresh code, shown just before the phone is reported lost
    page.goto(f"{url}/m")
    page.click("#card-E000001 .report-lost")
    page.wait_for_selector("#card-E000001 .state-lost")
    declined = portal.ledger.request("T-FISH-1", Charge, card_ref=card, amount_fen=1000,
                                     lines=single_line("鱼饵", 1000), pin_sha256=None)
    assert declined.reason == "CARD_BLOCKED"
    assert portal.store.blocklist_changes("P1", 0)[-1][1:] == ("E000001", 1, "block")  # the delta terminals fetch
    assert verify_books(portal.store).is_ok
