// qcert desk: the WebAuthn steps of login and enrolment (no inline script: CSP).
// A form with data-webauthn="get" or "create" and data-options (the server's
// JSON options) gets the browser's answer in its hidden field "credential",
// then is submitted as a normal form. The enrolment page's token field is
// filled from the URL fragment (which never reaches the server or a log),
// and the fragment is removed from the address bar.
(function () {
  "use strict";
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return { publicKey: pk };
  }
  function registration(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        attestationObject: bufToB64url(c.response.attestationObject),
        clientDataJSON: bufToB64url(c.response.clientDataJSON)
      },
      extensions: {}
    };
  }
  function assertion(c) {
    return {
      id: c.id, rawId: bufToB64url(c.rawId), type: c.type,
      response: {
        authenticatorData: bufToB64url(c.response.authenticatorData),
        clientDataJSON: bufToB64url(c.response.clientDataJSON),
        signature: bufToB64url(c.response.signature),
        userHandle: c.response.userHandle ? bufToB64url(c.response.userHandle) : null
      },
      extensions: {}
    };
  }
  function showError(form) {
    var box = document.getElementById("webauthn-error");
    if (box) { box.hidden = false; box.focus(); }
    var b = form.querySelector("button[type=submit]");
    if (b) { b.disabled = false; }
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var go = form.querySelector("button[type=submit]");
    if (go) { go.disabled = false; }
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!window.PublicKeyCredential) { showError(form); return; }
      if (go) { go.disabled = true; }
      var opts = JSON.parse(form.dataset.options);
      var p = form.dataset.webauthn === "create"
        ? navigator.credentials.create(creationOptions(opts)).then(registration)
        : navigator.credentials.get(requestOptions(opts)).then(assertion);
      p.then(function (answer) {
        form.querySelector("input[name=credential]").value = JSON.stringify(answer);
        form.submit();
      }, function () { showError(form); });
    });
  });
  var token = document.querySelector("input[data-from-fragment]");
  if (token && location.hash.length > 1) {
    token.value = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname);
  }
})();
