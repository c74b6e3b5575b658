//! The desk session cookie and its extractor.

use qcert_ca_core::desk_login::RelyingParty;

/// The cookie name for the desk at `rp`'s origin: `__Host-qcert-desk`
/// over https (`Secure`, `Path=/`, no `Domain`), plain `qcert-desk` over
/// http (localhost, tests), where browsers refuse `__Host-` cookies.
pub fn cookie_name(rp: &RelyingParty) -> &'static str {
    if rp.is_https() {
        "__Host-qcert-desk"
    } else {
        "qcert-desk"
    }
}
