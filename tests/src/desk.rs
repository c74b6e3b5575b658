//! The operators' desk for tests: a software security key (kanidm's
//! `SoftPasskey`, the real WebAuthn client side: it signs the challenge
//! over the origin's client data) and real enrolment and login through
//! ca-core's `DeskLogin`, so tests can start signed in without any
//! backdoor in the server.

use qcert_ca_core::desk_login::{DeskLogin, DeskLoginSettings, DeskPassword, RelyingParty, Secret};
use qcert_ca_core::Ca;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

/// The password test operators get from [`enrol`] unless told otherwise.
pub const PASSWORD: &str = "correct horse battery staple";

/// A software security key bound to one origin (as a browser would send it).
pub struct SoftKey {
    authenticator: WebauthnAuthenticator<SoftPasskey>,
    origin: url::Url,
}

impl std::fmt::Debug for SoftKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoftKey").field("origin", &self.origin.as_str()).finish()
    }
}

impl SoftKey {
    /// A new key with no credential, answering for `origin`
    /// (`http://localhost:PORT`); it claims user verification (a PIN).
    pub fn new(origin: &str) -> SoftKey {
        SoftKey {
            authenticator: WebauthnAuthenticator::new(SoftPasskey::new(true)),
            origin: url::Url::parse(origin).expect("origin"),
        }
    }

    /// Answer registration options (the JSON `navigator.credentials.create` takes).
    pub fn register(&mut self, options_json: &str) -> String {
        let options = serde_json::from_str(options_json).expect("creation options");
        let reg = self.authenticator.do_registration(self.origin.clone(), options).expect("soft key registers");
        serde_json::to_string(&reg).unwrap()
    }

    /// Answer a login challenge (the JSON `navigator.credentials.get` takes).
    pub fn sign(&mut self, challenge_json: &str) -> String {
        let options = serde_json::from_str(challenge_json).expect("request options");
        let cred = self.authenticator.do_authentication(self.origin.clone(), options).expect("soft key signs");
        serde_json::to_string(&cred).unwrap()
    }
}

/// The desk login of a server whose pages are at `base` (its origin;
/// `http://127.0.0.1:PORT` becomes `http://localhost:PORT`), over `ca`'s
/// registry: the same sessions the server reads.
pub fn desk_login(ca: &Ca, base: &str) -> DeskLogin {
    let rp = RelyingParty::new(base, None).expect("relying party");
    let params = argon2::Params::new(8 * 1024, 1, 1, None).unwrap();
    DeskLogin::new(ca.clone(), crate::test_vault(), params, rp, DeskLoginSettings::default())
}

/// The origin WebAuthn sees for `base` (loopback IPs are `localhost`).
pub fn origin(login: &DeskLogin) -> String {
    login.relying_party().origin()
}

/// Enrol operator `name` (which must exist) through a fresh enrolment
/// link (a reset, actor `test`) with `password` and a new soft key.
pub async fn enrol(login: &DeskLogin, name: &str, password: &str) -> SoftKey {
    let link = login.reset("test", name).await.expect("enrolment link");
    let mut key = SoftKey::new(&origin(login));
    let options = login.begin_enrolment(link.token.expose(), DeskPassword::choose(password).unwrap()).await.unwrap();
    let reg = key.register(&serde_json::to_string(&options).unwrap());
    login.finish_enrolment(link.token.expose(), &reg).await.expect("enrolment completes");
    key
}

/// Log in with password and key: the active session id.
pub async fn sign_in(login: &DeskLogin, name: &str, password: &str, key: &mut SoftKey) -> Secret {
    let pending = login.login_password(name, DeskPassword::typed(password)).await.expect("password accepted");
    let challenge = login.key_challenge(&pending).await.expect("challenge");
    let answer = key.sign(&serde_json::to_string(&challenge).unwrap());
    login.login_key(&pending, &answer).await.expect("key accepted")
}

/// A signed-in session of operator `name` (which must exist, e.g. made by
/// `Operators::add`) for the server at `base`, as the cookie a browser
/// would hold: `(cookie name, value)`. Enrols the operator anew (a reset)
/// with [`PASSWORD`] and a soft key, then logs in with both.
pub async fn session_cookie(ca: &Ca, base: &str, name: &str) -> (String, String) {
    let login = desk_login(ca, base);
    let mut key = enrol(&login, name, PASSWORD).await;
    let id = sign_in(&login, name, PASSWORD, &mut key).await;
    (qcert_portal::desk::session::cookie_name(login.relying_party()).to_owned(), id.expose().to_owned())
}
