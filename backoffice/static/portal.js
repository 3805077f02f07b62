// The member portal: the phone makes its e-card device key (Ed25519, WebCrypto) before the
// "open an e-card" form is sent; only the public half leaves the phone. The key pair is kept in
// IndexedDB, its private half not extractable. A browser without Ed25519 sends no key and the
// portal answers BAD_DEVICE_KEY.
(function () {
  const form = document.getElementById("open-ecard");
  if (!form || !window.crypto || !crypto.subtle) return;
  form.addEventListener("submit", async function (event) {
    const field = document.getElementById("device-key");
    if (field.value) return;
    event.preventDefault();
    try {
      const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      field.value = Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
      await new Promise(function (done) {
        const open = indexedDB.open("fieldpos-ecard", 1);
        open.onupgradeneeded = () => open.result.createObjectStore("keys");
        open.onsuccess = function () {
          const put = open.result.transaction("keys", "readwrite").objectStore("keys").put(pair, "device");
          put.onsuccess = put.onerror = done;
        };
        open.onerror = done;
      });
    } catch (error) { /* no Ed25519 here: the portal says so */ }
    form.submit();
  });
})();
