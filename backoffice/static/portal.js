// The member portal on the phone. Two jobs, both with the e-card's device key (Ed25519, WebCrypto),
// kept in IndexedDB with its private half not extractable, so it never leaves this phone:
// 1. before "open an e-card" (or "move it to this phone") is sent, make the key and put its public
//    half in the form;
// 2. on the pay-code page, sign the current 20 s window and show the token as a QR (protocol/ecard.py:
//    token = "FPE1:" + base32(credential + window u32 + Ed25519 signature over DOMAIN + both)).
// A browser without Ed25519 sends no key and the portal answers BAD_DEVICE_KEY.
(function () {
  const DB = "fieldpos-ecard";

  function keyStore(mode, work) {
    return new Promise(function (done, fail) {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore("keys");
      open.onerror = () => fail(open.error);
      open.onsuccess = function () {
        const request = work(open.result.transaction("keys", mode).objectStore("keys"));
        request.onsuccess = () => done(request.result);
        request.onerror = () => fail(request.error);
      };
    });
  }

  // Opening an e-card, and moving one to this phone: both make this phone's key first.
  for (const form of document.querySelectorAll("form.makes-device-key")) {
    if (!window.crypto || !crypto.subtle) break;
    form.addEventListener("submit", async function (event) {
      const field = form.querySelector("input[name=device_key]");
      if (field.value) return;
      event.preventDefault();
      try {
        const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
        const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
        field.value = Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
        await keyStore("readwrite", (keys) => keys.put(pair, "device"));
      } catch (error) { /* no Ed25519 here: the portal says so */ }
      form.submit();
    });
  }

  const figure = document.getElementById("ecard-qr");
  if (!figure) return;
  const DOMAIN = new TextEncoder().encode("fieldpos-ecard-presentation\0");
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const credential = Uint8Array.from(figure.dataset.credential.match(/../g), (h) => parseInt(h, 16));
  const windowSeconds = Number(figure.dataset.windowSeconds);
  let shownWindow = -1;

  function base32(bytes) {  // RFC 4648, upper case, no padding
    let out = "", bits = 0, value = 0;
    for (const byte of bytes) {
      value = (value << 8) | byte; bits += 8;
      while (bits >= 5) { out += ALPHABET[(value >>> (bits - 5)) & 31]; bits -= 5; }
    }
    if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
    return out;
  }

  function join(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const part of parts) { out.set(part, at); at += part.length; }
    return out;
  }

  async function show() {
    const windowNumber = Math.floor(Date.now() / 1000 / windowSeconds);
    if (windowNumber === shownWindow) return;
    const pair = await keyStore("readonly", (keys) => keys.get("device"));
    if (!pair) { document.getElementById("ecard-qr-state").textContent = "NO_DEVICE_KEY"; return; }
    const windowBytes = new Uint8Array(4);
    new DataView(windowBytes.buffer).setUint32(0, windowNumber);
    const body = join(credential, windowBytes);
    const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, join(DOMAIN, body)));
    const token = "FPE1:" + base32(join(body, signature));
    figure.dataset.token = token;
    document.getElementById("ecard-qr-image").src = "/m/qr.svg?text=" + encodeURIComponent(token);
    document.getElementById("ecard-qr-state").textContent = new Date(windowNumber * windowSeconds * 1000).toLocaleTimeString();
    shownWindow = windowNumber;
  }

  show();
  setInterval(show, 1000);
})();
