//! The operators' desk login: a password (Argon2id) and a security key
//! (WebAuthn, kanidm's `webauthn-rs`), or, where an admin allowed it for
//! that account, a TOTP code (RFC 6238, [`crate::totp`]) instead of the key.
//!
//! - An admin creates a one-time **enrolment link** (`/desk/enrol#<token>`,
//!   256 random bits, stored as SHA-256, valid 72 h, used once). The
//!   operator chooses a password and registers a key through it; completing
//!   it replaces the account's password and keys. A **reset** is a new link
//!   that drops the old password, keys, TOTP secret and sessions at once.
//! - **Login**: name and password first (counted per name before the check,
//!   10 tries per 5 minutes by default, through [`Ca::rate_limit`]; an
//!   unknown or unenrolled name costs the same Argon2id check against a
//!   dummy hash), which opens a *pending* session (10 minutes) whose only
//!   use is the second factor; the key's assertion (or the TOTP code)
//!   replaces it by an *active* session under a new id.
//! - **Sessions** live in the registry: the cookie carries 256 random bits,
//!   the registry their SHA-256. A session is valid only while its operator
//!   is active (joined on every use, so revoking an operator ends their
//!   sessions at once), for 15 minutes without use and 12 hours at most.
//! - Every login, failed login, logout, enrolment, reset and TOTP change is
//!   in the audit log; no password, code, token or session id ever is.
//!
//! WebAuthn ceremony states (`PasskeyRegistration`, `PasskeyAuthentication`)
//! are kept server-side (enrolment row, pending session), serialised as
//! JSON (feature `danger-allow-state-serialisation`), and each is used once.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};
use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::ca::Ca;
use crate::error::CaError;
use crate::operators::{Operator, Role};
use crate::store::desk_login::{DeskAccountRow, DeskOverviewRow, EnrolmentRefusal};
use crate::store::limits::Window;
use crate::store::Registry;
use crate::totp::TotpSecret;
use crate::vault::Vault;

/// Rate-limit scope of password attempts (per operator name).
pub const LOGIN_SCOPE: &str = "desk-login";
/// Rate-limit scope of TOTP codes at login (per operator).
pub const CODE_SCOPE: &str = "desk-login-code";
/// Shortest password an operator may choose (characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (characters).
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The desk languages.
pub const LANGUAGES: [&str; 2] = ["en", "ro"];

/// Who the desk is to WebAuthn: the relying party id (a DNS name, the
/// origin's host or a parent of it) and the origin pages are served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub origin: Url,
}

impl RelyingParty {
    /// From the desk's origin (`https://desk.example.eu`, no path) and an
    /// optional relying-party id (default: the origin's host). A loopback
    /// IP becomes `localhost`: WebAuthn needs a DNS name, and browsers
    /// treat `http://localhost` as a secure context.
    pub fn new(origin: &str, id: Option<&str>) -> Result<RelyingParty, CaError> {
        let bad = |why: &str| CaError::InvalidInput(format!("desk origin: {why}"));
        let mut url = Url::parse(origin.trim()).map_err(|_| bad("not a URL"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad("the scheme must be https (or http for localhost)"));
        }
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(_)) => false,
            None => return Err(bad("no host")),
        };
        if loopback {
            url.set_host(Some("localhost")).map_err(|_| bad("host"))?;
        }
        url.set_path("");
        url.set_query(None);
        url.set_fragment(None);
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        if url.scheme() == "http" && host != "localhost" && !host.ends_with(".localhost") {
            return Err(bad("plain http is only for localhost; serve the desk over https"));
        }
        let id = id.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(&host).to_ascii_lowercase();
        if id != host && !host.ends_with(&format!(".{id}")) {
            return Err(CaError::InvalidInput(format!(
                "desk relying-party id {id:?}: must be the origin's host {host:?} or a parent domain of it"
            )));
        }
        Ok(RelyingParty { id, origin: url })
    }

    /// `http://localhost` (the default where no usable origin is known).
    #[allow(clippy::expect_used)] // a constant, valid URL
    pub fn localhost() -> RelyingParty {
        RelyingParty { id: "localhost".into(), origin: Url::parse("http://localhost").expect("a valid URL") }
    }

    /// The origin as browsers send it (`scheme://host[:port]`, no slash).
    pub fn origin(&self) -> String {
        self.origin.origin().ascii_serialization()
    }

    /// Served over https (cookies get `Secure` and the `__Host-` prefix).
    pub fn is_https(&self) -> bool {
        self.origin.scheme() == "https"
    }
}

/// Limits of the desk login.
#[derive(Debug, Clone)]
pub struct DeskLoginSettings {
    /// An active session ends after this long without a request.
    pub idle_secs: i64,
    /// An active session ends this long after the login, used or not.
    pub max_secs: i64,
    /// A half-login (password accepted, second factor awaited) lives this long.
    pub pending_secs: i64,
    /// An enrolment link is valid this long.
    pub enrolment_secs: i64,
    /// Password attempts per name (and TOTP codes per operator) per window.
    pub attempts: Window,
}

impl Default for DeskLoginSettings {
    fn default() -> Self {
        DeskLoginSettings {
            idle_secs: 15 * 60,
            max_secs: 12 * 3600,
            pending_secs: 10 * 60,
            enrolment_secs: 72 * 3600,
            attempts: Window { limit: 10, window_secs: 5 * 60 },
        }
    }
}

/// A password typed by an operator. Never shown by `Debug`; wiped on drop.
pub struct DeskPassword(Zeroizing<String>);

impl fmt::Debug for DeskPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeskPassword(redacted)")
    }
}

impl DeskPassword {
    /// A password as typed at login (checked only against the stored hash).
    pub fn typed(s: &str) -> DeskPassword {
        DeskPassword(Zeroizing::new(s.to_owned()))
    }

    /// A new password: 12 to 256 characters, no control characters.
    pub fn choose(s: &str) -> Result<DeskPassword, CaError> {
        let n = s.chars().count();
        if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
            return Err(CaError::field(
                "password",
                format!("{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters are needed"),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(CaError::field("password", "control characters are not allowed"));
        }
        Ok(DeskPassword(Zeroizing::new(s.to_owned())))
    }
}

/// 256 random bits, base64url without padding (43 characters): a session
/// id or an enrolment token. Never shown by `Debug`; wiped on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl Secret {
    fn random() -> Secret {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        Secret(Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_ref())))
    }

    /// A value received from outside (cookie, form); `None` unless it has
    /// the shape of one of ours (so junk never reaches the registry).
    pub fn parse(s: &str) -> Option<Secret> {
        let s = s.trim();
        (s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
            .then(|| Secret(Zeroizing::new(s.to_owned())))
    }

    /// The value itself (cookie value, link fragment).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the registry keeps: SHA-256 in hex.
    fn stored(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// An enrolment link, shown once to the admin who made it.
#[derive(Debug)]
pub struct Enrolment {
    pub operator: String,
    pub token: Secret,
    /// `<origin>/desk/enrol#<token>`: the token in the fragment never
    /// reaches a server log or a Referer.
    pub link: Zeroizing<String>,
    pub expires_at: i64,
}

/// A live enrolment link as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentInfo {
    pub operator: String,
    pub expires_at: i64,
}

/// An active session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub operator: Operator,
    /// `en` or `ro`.
    pub language: String,
    /// The secret the session's CSRF tokens are derived from: SHA-256 of a
    /// label and the session id (not the stored hash, so a database copy
    /// gives no valid token).
    pub csrf_key: String,
    pub expires_at: i64,
}

/// A half-login: the password was right, the second factor is awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    pub operator: String,
    pub language: String,
    /// The account may use a TOTP code instead of the key (allowed and set up).
    pub totp: bool,
    pub csrf_key: String,
    pub expires_at: i64,
}

/// The account list an admin sees.
pub type AccountOverview = DeskOverviewRow;

/// The desk login over the registry. Cheap to clone.
#[derive(Clone)]
pub struct DeskLogin {
    inner: Arc<Inner>,
}

struct Inner {
    ca: Ca,
    vault: Arc<Vault>,
    params: Params,
    /// The WebAuthn relying party, or why the configured one is unusable
    /// (then every WebAuthn step answers `NotConfigured`).
    webauthn: Result<Webauthn, String>,
    rp: RelyingParty,
    settings: DeskLoginSettings,
    /// The Argon2id hash unknown names are checked against (same work).
    dummy: OnceLock<String>,
}

impl fmt::Debug for DeskLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeskLogin").field("rp", &self.inner.rp).field("settings", &self.inner.settings).finish()
    }
}

fn csrf_key(id: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(b"qcert-desk-csrf\0");
    h.update(id.expose().as_bytes());
    hex::encode(h.finalize())
}

fn internal(what: &str) -> impl Fn(serde_json::Error) -> CaError + '_ {
    move |e| CaError::Internal(format!("desk login: {what}: {e}"))
}

impl DeskLogin {
    /// `params`: the Argon2id cost (the revocation desk's, so one setting
    /// governs every secret hashed). A relying party WebAuthn refuses (an
    /// id that is not the origin's host or a parent of it) makes every
    /// key step fail with `NotConfigured`; [`DeskLogin::check`] says so up front.
    pub fn new(ca: Ca, vault: Arc<Vault>, params: Params, rp: RelyingParty, settings: DeskLoginSettings) -> DeskLogin {
        let webauthn = WebauthnBuilder::new(&rp.id, &rp.origin)
            .and_then(|b| b.rp_name("qcert desk").build())
            .map_err(|e| format!("desk relying party {:?} at {}: {e}", rp.id, rp.origin()));
        DeskLogin { inner: Arc::new(Inner { ca, vault, params, webauthn, rp, settings, dummy: OnceLock::new() }) }
    }

    /// Whether WebAuthn accepts the relying party (`qcert serve` checks at start).
    pub fn check(&self) -> Result<(), CaError> {
        self.webauthn().map(|_| ())
    }

    fn webauthn(&self) -> Result<&Webauthn, CaError> {
        self.inner.webauthn.as_ref().map_err(|e| CaError::NotConfigured(e.clone()))
    }

    pub fn relying_party(&self) -> &RelyingParty {
        &self.inner.rp
    }

    pub fn settings(&self) -> &DeskLoginSettings {
        &self.inner.settings
    }

    fn registry(&self) -> &Registry {
        self.inner.ca.registry()
    }

    fn now(&self) -> i64 {
        self.inner.ca.clock().now().unix_timestamp()
    }

    async fn audit(&self, actor: &str, action: &str, subject: &str, outcome: Outcome, detail: impl Into<String>) {
        let e = Event { actor, action, subject, outcome, detail: detail.into() };
        audit::record(self.registry(), self.now(), &e).await;
    }

    // ----- enrolment -----

    /// A one-time enrolment link for operator `name`, who has no desk
    /// credentials yet (else: [`DeskLogin::reset`]). Earlier unused links
    /// of that operator stop working.
    pub async fn enrolment_link(&self, actor: &str, name: &str) -> Result<Enrolment, CaError> {
        self.new_link(actor, name, false).await
    }

    /// Reset an account: its password, keys, TOTP secret and sessions are
    /// dropped, and a new enrolment link is made (one transaction).
    pub async fn reset(&self, actor: &str, name: &str) -> Result<Enrolment, CaError> {
        self.new_link(actor, name, true).await
    }

    async fn new_link(&self, actor: &str, name: &str, reset: bool) -> Result<Enrolment, CaError> {
        let action = if reset { "desk.reset" } else { "desk.enrol-link" };
        let now = self.now();
        let account = self.account(name, now).await?;
        let refused = match &account {
            None => Some(CaError::NotFound(format!("no active operator named {name:?}"))),
            Some(a) if a.revoked_at.is_some() => Some(CaError::NotFound(format!("no active operator named {name:?}"))),
            Some(a) if !reset && a.password_hash.is_some() => Some(CaError::Conflict(format!(
                "{name:?} is enrolled already; a reset makes a new link and drops the old credentials"
            ))),
            Some(_) => None,
        };
        if let Some(e) = refused {
            self.audit(actor, action, name, Outcome::Refused, e.to_string()).await;
            return Err(e);
        }
        let token = Secret::random();
        let expires_at = now + self.inner.settings.enrolment_secs;
        if !self.registry().create_desk_enrolment(name, &token.stored(), actor, now, expires_at, reset).await? {
            self.audit(actor, action, name, Outcome::Refused, "operator not active").await;
            return Err(CaError::NotFound(format!("no active operator named {name:?}")));
        }
        self.audit(
            actor,
            action,
            name,
            Outcome::Success,
            format!("link valid until {}", crate::clock::rfc3339(expires_at)),
        )
        .await;
        let link = Zeroizing::new(format!("{}/desk/enrol#{}", self.inner.rp.origin(), token.expose()));
        Ok(Enrolment { operator: name.to_owned(), token, link, expires_at })
    }

    /// The operator's desk account, made on first need (with a random
    /// WebAuthn user handle); `None` if no such operator exists.
    async fn account(&self, name: &str, now: i64) -> Result<Option<DeskAccountRow>, CaError> {
        if let Some(a) = self.registry().desk_account(name).await? {
            return Ok(Some(a));
        }
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let handle = Uuid::from_bytes(b).to_string();
        if !self.registry().ensure_desk_account(name, &handle, now).await? {
            return Ok(None);
        }
        Ok(self.registry().desk_account(name).await?)
    }

    fn link_gone() -> CaError {
        CaError::NotFound("this enrolment link is unknown, used or expired: ask an admin for a new one".into())
    }

    /// The live link `token` belongs to, if any.
    pub async fn enrolment(&self, token: &str) -> Result<Option<EnrolmentInfo>, CaError> {
        let Some(token) = Secret::parse(token) else { return Ok(None) };
        let row = self.registry().desk_enrolment(&token.stored(), self.now()).await?;
        Ok(row.map(|r| EnrolmentInfo { operator: r.operator, expires_at: r.expires_at }))
    }

    /// First step of an enrolment: the chosen password (hashed now) and the
    /// WebAuthn registration options for the browser (`navigator.credentials.create`).
    pub async fn begin_enrolment(
        &self,
        token: &str,
        password: DeskPassword,
    ) -> Result<CreationChallengeResponse, CaError> {
        let token = Secret::parse(token).ok_or_else(Self::link_gone)?;
        let now = self.now();
        let link = self.registry().desk_enrolment(&token.stored(), now).await?.ok_or_else(Self::link_gone)?;
        let account = self.account(&link.operator, now).await?.ok_or_else(Self::link_gone)?;
        let handle = Uuid::parse_str(&account.user_handle)
            .map_err(|_| CaError::Internal("desk login: stored user handle is not a UUID".into()))?;
        let phc = self.hash(password).await?;
        let (options, state) = self
            .webauthn()?
            .start_passkey_registration(handle, &link.operator, &link.operator, None)
            .map_err(|e| CaError::Internal(format!("desk login: WebAuthn registration: {e}")))?;
        let state = serde_json::to_string(&state).map_err(internal("registration state"))?;
        if !self.registry().set_desk_enrolment_step(&token.stored(), &phc, &state, now).await? {
            return Err(Self::link_gone());
        }
        Ok(options)
    }

    /// Last step: the browser's registration (`credential`, the JSON of a
    /// `RegisterPublicKeyCredential`). Uses the link; the password of the
    /// first step and this key become the account's. Returns the operator.
    pub async fn finish_enrolment(&self, token: &str, credential: &str) -> Result<String, CaError> {
        let token = Secret::parse(token).ok_or_else(Self::link_gone)?;
        let now = self.now();
        let link = self.registry().desk_enrolment(&token.stored(), now).await?.ok_or_else(Self::link_gone)?;
        let name = link.operator.clone();
        let Some(state) = link.registration else {
            return Err(CaError::Conflict("choose the password first (the first step of this page)".into()));
        };
        let state: PasskeyRegistration = serde_json::from_str(&state).map_err(internal("registration state"))?;
        let passkey = match serde_json::from_str::<RegisterPublicKeyCredential>(credential) {
            Err(_) => Err(CaError::field("credential", "not a WebAuthn registration")),
            Ok(reg) => self.webauthn()?.finish_passkey_registration(&reg, &state).map_err(|e| {
                tracing::info!(error = %e, "desk enrolment: security key registration refused");
                CaError::InvalidInput("the security key's registration was not accepted; try again".into())
            }),
        };
        let passkey = match passkey {
            Ok(p) => p,
            Err(e) => {
                self.audit(&format!("desk:{name}"), "desk.enrol", &name, Outcome::Failure, "security key refused")
                    .await;
                return Err(e);
            }
        };
        let cred_id = credential_id(&passkey);
        let json = serde_json::to_string(&passkey).map_err(internal("passkey"))?;
        match self.registry().complete_desk_enrolment(&token.stored(), &cred_id, &json, now).await? {
            Ok(done) => {
                self.audit(
                    &format!("desk:{name}"),
                    "desk.enrol",
                    &done.operator,
                    Outcome::Success,
                    "password and security key",
                )
                .await;
                Ok(done.operator)
            }
            Err(EnrolmentRefusal::KeyTaken) => {
                self.audit(
                    &format!("desk:{name}"),
                    "desk.enrol",
                    &name,
                    Outcome::Refused,
                    "security key registered already",
                )
                .await;
                Err(CaError::Conflict("this security key is registered already; use another one".into()))
            }
            Err(EnrolmentRefusal::NotLive) => Err(Self::link_gone()),
        }
    }

    // ----- login -----

    async fn hash(&self, password: DeskPassword) -> Result<String, CaError> {
        let params = self.inner.params.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.0.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| CaError::Internal(format!("Argon2: {e}")))
        })
        .await
        .map_err(|e| CaError::Internal(format!("Argon2 task: {e}")))?
    }

    async fn dummy_hash(&self) -> Result<String, CaError> {
        if let Some(d) = self.inner.dummy.get() {
            return Ok(d.clone());
        }
        let made = self.hash(DeskPassword::typed("qcert desk dummy password")).await?;
        Ok(self.inner.dummy.get_or_init(|| made).clone())
    }

    async fn verify(&self, phc: String, password: DeskPassword) -> Result<bool, CaError> {
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc).is_ok_and(|h| Argon2::default().verify_password(password.0.as_bytes(), &h).is_ok())
        })
        .await
        .map_err(|e| CaError::Internal(format!("Argon2 task: {e}")))
    }

    /// First factor. Counted per name before anything is checked; unknown,
    /// disabled and unenrolled names get the same Argon2id work and the same
    /// [`CaError::LoginRefused`] as a wrong password. On success: a pending
    /// session id (the cookie until the second factor).
    pub async fn login_password(&self, name: &str, password: DeskPassword) -> Result<Secret, CaError> {
        let name = name.trim();
        let known = self.registry().desk_account(name).await?;
        // The audit names only operators that exist (a password typed into
        // the name field must not land in the log).
        let subject = if known.is_some() { name } else { "(unknown operator)" };
        // (The registry keeps rate-limit keys only as SHA-256.)
        if let Err(e) = self.inner.ca.rate_limit(LOGIN_SCOPE, name, self.inner.settings.attempts).await {
            if matches!(e, CaError::RateLimited { .. }) {
                self.audit("desk", "desk.login", subject, Outcome::Refused, "too many attempts").await;
            }
            return Err(e);
        }
        let usable = known.filter(|a| a.revoked_at.is_none() && a.enrolled_at.is_some());
        let phc = match usable.as_ref().and_then(|a| a.password_hash.clone()) {
            Some(p) => p,
            None => self.dummy_hash().await?,
        };
        let right = self.verify(phc, password).await?;
        let Some(account) = usable.filter(|a| right && a.password_hash.is_some()) else {
            self.audit("desk", "desk.login", subject, Outcome::Failure, "password").await;
            return Err(CaError::LoginRefused);
        };
        let id = Secret::random();
        let now = self.now();
        let s = &self.inner.settings;
        self.registry()
            .insert_desk_session(
                &id.stored(),
                &account.operator,
                "pending",
                now,
                now + s.pending_secs,
                now - s.idle_secs,
            )
            .await?;
        Ok(id)
    }

    /// The half-login `id` names, if it is still pending.
    pub async fn pending(&self, id: &Secret) -> Result<Option<PendingLogin>, CaError> {
        let Some(row) = self.registry().desk_session(&id.stored(), self.now()).await? else { return Ok(None) };
        if row.stage != "pending" {
            return Ok(None);
        }
        let totp = self
            .registry()
            .desk_account(&row.operator)
            .await?
            .is_some_and(|a| a.totp_allowed && a.totp_sealed.is_some());
        Ok(Some(PendingLogin {
            operator: row.operator,
            language: row.language,
            totp,
            csrf_key: csrf_key(id),
            expires_at: row.expires_at,
        }))
    }

    /// A fresh WebAuthn challenge for the half-login's security keys
    /// (`navigator.credentials.get`); it replaces any earlier one.
    pub async fn key_challenge(&self, id: &Secret) -> Result<RequestChallengeResponse, CaError> {
        let now = self.now();
        let row = self
            .registry()
            .desk_session(&id.stored(), now)
            .await?
            .filter(|r| r.stage == "pending")
            .ok_or(CaError::LoginRefused)?;
        let keys = self.passkeys(&row.operator).await?;
        if keys.is_empty() {
            return Err(CaError::NotFound(
                "no security key is registered for this account: ask an admin for a reset".into(),
            ));
        }
        let (options, state) = self
            .webauthn()?
            .start_passkey_authentication(&keys)
            .map_err(|e| CaError::Internal(format!("desk login: WebAuthn authentication: {e}")))?;
        let state = serde_json::to_string(&state).map_err(internal("authentication state"))?;
        if !self.registry().set_desk_challenge(&id.stored(), &state, now).await? {
            return Err(CaError::LoginRefused);
        }
        Ok(options)
    }

    async fn passkeys(&self, operator: &str) -> Result<Vec<Passkey>, CaError> {
        self.registry()
            .desk_keys(operator)
            .await?
            .iter()
            .map(|j| serde_json::from_str::<Passkey>(j).map_err(internal("stored passkey")))
            .collect()
    }

    /// Second factor by security key: `credential` is the JSON of the
    /// browser's `PublicKeyCredential` for the half-login's challenge (used
    /// once, right or wrong). Returns the new, active session id.
    pub async fn login_key(&self, id: &Secret, credential: &str) -> Result<Secret, CaError> {
        let now = self.now();
        let Some(row) = self.registry().desk_session(&id.stored(), now).await?.filter(|r| r.stage == "pending") else {
            return Err(CaError::LoginRefused);
        };
        let name = row.operator.clone();
        let Some(challenge) = row.challenge else { return Err(CaError::LoginRefused) };
        if !self.registry().take_desk_challenge(&id.stored(), &challenge, now).await? {
            return Err(CaError::LoginRefused);
        }
        let state: PasskeyAuthentication =
            serde_json::from_str(&challenge).map_err(internal("authentication state"))?;
        let webauthn = self.webauthn()?;
        let result = serde_json::from_str::<PublicKeyCredential>(credential)
            .ok()
            .and_then(|c| webauthn.finish_passkey_authentication(&c, &state).ok());
        let Some(result) = result else {
            self.audit("desk", "desk.login", &name, Outcome::Failure, "security key").await;
            return Err(CaError::LoginRefused);
        };
        for mut key in self.passkeys(&name).await? {
            if key.update_credential(&result).is_some() {
                let json = serde_json::to_string(&key).map_err(internal("passkey"))?;
                self.registry().update_desk_key(&name, &credential_id(&key), &json, now).await?;
            }
        }
        self.promote(id, &name, "security key").await
    }

    /// Second factor by TOTP code, where the account may use one. Codes
    /// are counted per operator before the check; a code works once.
    pub async fn login_totp(&self, id: &Secret, code: &str) -> Result<Secret, CaError> {
        let now = self.now();
        let Some(row) = self.registry().desk_session(&id.stored(), now).await?.filter(|r| r.stage == "pending") else {
            return Err(CaError::LoginRefused);
        };
        let name = row.operator;
        if let Err(e) = self.inner.ca.rate_limit(CODE_SCOPE, &name, self.inner.settings.attempts).await {
            if matches!(e, CaError::RateLimited { .. }) {
                self.audit("desk", "desk.login", &name, Outcome::Refused, "too many codes").await;
            }
            return Err(e);
        }
        let account = self.registry().desk_account(&name).await?;
        let secret = match account.as_ref().filter(|a| a.totp_allowed).and_then(|a| a.totp_sealed.as_deref()) {
            Some(sealed) => Some(self.open_totp(&name, sealed)?),
            None => None,
        };
        let last = account.as_ref().and_then(|a| a.totp_last_step);
        let step = secret.and_then(|s| s.verify(code, self.inner.ca.clock().now(), last));
        let accepted = match step {
            Some(step) => self.registry().use_desk_totp_step(&name, step).await?,
            None => false,
        };
        if !accepted {
            self.audit("desk", "desk.login", &name, Outcome::Failure, "totp code").await;
            return Err(CaError::LoginRefused);
        }
        self.promote(id, &name, "totp code").await
    }

    async fn promote(&self, pending: &Secret, name: &str, how: &str) -> Result<Secret, CaError> {
        let active = Secret::random();
        let now = self.now();
        let ok = self
            .registry()
            .promote_desk_session(&pending.stored(), &active.stored(), now, now + self.inner.settings.max_secs)
            .await?;
        if !ok {
            self.audit("desk", "desk.login", name, Outcome::Failure, format!("{how}: half-login gone")).await;
            return Err(CaError::LoginRefused);
        }
        self.audit(&format!("desk:{name}"), "desk.login", name, Outcome::Success, format!("password and {how}")).await;
        Ok(active)
    }

    // ----- sessions -----

    /// The active session `id` names: unexpired, used within the idle
    /// limit, its operator active. Marks it used.
    pub async fn session(&self, id: &Secret) -> Result<Option<Session>, CaError> {
        let now = self.now();
        let Some(row) = self.registry().desk_session(&id.stored(), now).await? else { return Ok(None) };
        if row.stage != "active" || row.last_seen_at <= now - self.inner.settings.idle_secs {
            return Ok(None);
        }
        let role = Role::parse(&row.role).map_err(|_| CaError::Internal(format!("stored role {:?}", row.role)))?;
        self.registry().touch_desk_session(&id.stored(), now).await?;
        Ok(Some(Session {
            operator: Operator { name: row.operator, role },
            language: row.language,
            csrf_key: csrf_key(id),
            expires_at: row.expires_at,
        }))
    }

    /// End session `id` (logout); audited when it existed.
    pub async fn logout(&self, id: &Secret) -> Result<(), CaError> {
        if let Some(name) = self.registry().delete_desk_session(&id.stored()).await? {
            self.audit(&format!("desk:{name}"), "desk.logout", &name, Outcome::Success, "").await;
        }
        Ok(())
    }

    /// End every session of `name` (after disabling the operator, which
    /// alone already makes them invalid); how many there were.
    pub async fn end_sessions(&self, name: &str) -> Result<u64, CaError> {
        Ok(self.registry().delete_desk_sessions_of(name).await?)
    }

    /// Store the operator's desk language (`en`, `ro`).
    pub async fn set_language(&self, name: &str, language: &str) -> Result<(), CaError> {
        if !LANGUAGES.contains(&language) {
            return Err(CaError::field("language", "en or ro"));
        }
        Ok(self.registry().set_desk_language(name, language, self.now()).await?)
    }

    // ----- TOTP fallback -----

    fn totp_aad(name: &str) -> Vec<u8> {
        format!("desk-totp:{name}").into_bytes()
    }

    fn open_totp(&self, name: &str, sealed: &[u8]) -> Result<TotpSecret, CaError> {
        let bytes = self.inner.vault.open(sealed, &Self::totp_aad(name))?;
        TotpSecret::from_bytes(&bytes)
    }

    /// Allow (or forbid, which erases any TOTP secret) TOTP codes as the
    /// second factor of operator `name`.
    pub async fn set_totp_allowed(&self, actor: &str, name: &str, allowed: bool) -> Result<(), CaError> {
        let now = self.now();
        let action = if allowed { "desk.totp-allow" } else { "desk.totp-forbid" };
        let active = self.account(name, now).await?.filter(|a| a.revoked_at.is_none());
        if active.is_none() || !self.registry().set_desk_totp_allowed(name, allowed, now).await? {
            self.audit(actor, action, name, Outcome::Refused, "no active operator").await;
            return Err(CaError::NotFound(format!("no active operator named {name:?}")));
        }
        self.audit(actor, action, name, Outcome::Success, "").await;
        Ok(())
    }

    /// A new TOTP secret for the signed-in operator `name` (allowed to use
    /// TOTP), kept pending until [`DeskLogin::confirm_totp`] sees a code of it.
    pub async fn begin_totp(&self, name: &str) -> Result<TotpSecret, CaError> {
        let secret = TotpSecret::generate();
        let sealed = self.inner.vault.seal(secret.as_bytes(), &Self::totp_aad(name))?;
        if !self.registry().set_desk_totp_pending(name, &sealed, self.now()).await? {
            return Err(CaError::Forbidden(
                "TOTP codes are not allowed for this account; an admin may allow them".into(),
            ));
        }
        Ok(secret)
    }

    /// Confirm the pending secret with a code from the authenticator app.
    pub async fn confirm_totp(&self, name: &str, code: &str) -> Result<(), CaError> {
        let account = self.registry().desk_account(name).await?;
        let Some(pending) = account.and_then(|a| a.totp_pending_sealed.filter(|_| a.totp_allowed)) else {
            return Err(CaError::Conflict("no TOTP set-up is under way for this account".into()));
        };
        let secret = self.open_totp(name, &pending)?;
        let Some(step) = secret.verify(code, self.inner.ca.clock().now(), None) else {
            self.audit(&format!("desk:{name}"), "desk.totp-enrol", name, Outcome::Failure, "wrong code").await;
            return Err(CaError::field("code", "not the authenticator's current code"));
        };
        if !self.registry().confirm_desk_totp(name, &pending, &pending, step, self.now()).await? {
            return Err(CaError::Conflict("the TOTP set-up changed meanwhile; start it again".into()));
        }
        self.audit(&format!("desk:{name}"), "desk.totp-enrol", name, Outcome::Success, "").await;
        Ok(())
    }

    // ----- accounts -----

    /// Every operator with its desk state (enrolled, keys, TOTP, live link).
    pub async fn accounts(&self) -> Result<Vec<AccountOverview>, CaError> {
        Ok(self.registry().desk_overview(self.now()).await?)
    }
}

fn credential_id(p: &Passkey) -> String {
    let id: &[u8] = p.cred_id().as_ref();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn relying_party_from_origins() {
        let rp = RelyingParty::new("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!((rp.id.as_str(), rp.origin().as_str()), ("localhost", "http://localhost:8080"));
        assert!(!rp.is_https());
        let rp = RelyingParty::new("https://desk.qcert.eu/x?y", Some("qcert.eu")).unwrap();
        assert_eq!((rp.id.as_str(), rp.origin().as_str()), ("qcert.eu", "https://desk.qcert.eu"));
        assert!(rp.is_https());
        assert!(RelyingParty::new("http://desk.qcert.eu", None).is_err(), "plain http off localhost");
        assert!(RelyingParty::new("ftp://x", None).is_err());
        assert!(RelyingParty::new("https://desk.qcert.eu", Some("other.eu")).is_err());
        assert!(RelyingParty::new("https://desk.qcert.eu", Some("sk.qcert.eu")).is_err(), "a suffix is no parent");
        assert!(RelyingParty::new("not a url", None).is_err());
    }

    #[test]
    fn secrets_parse_only_our_shape_and_hide_in_debug() {
        let s = Secret::random();
        assert_eq!(s.expose().len(), 43);
        assert!(Secret::parse(s.expose()).is_some());
        assert!(Secret::parse("short").is_none());
        assert!(Secret::parse(&"é".repeat(43)).is_none());
        assert!(!format!("{s:?}").contains(s.expose()));
        assert_ne!(s.stored(), csrf_key(&s), "the CSRF key is not the stored hash");
        assert!(!format!("{:?}", DeskPassword::typed("hunter2hunter2")).contains("hunter2"));
    }

    #[test]
    fn chosen_passwords_have_rules_that_name_no_value() {
        assert!(DeskPassword::choose("correct horse battery").is_ok());
        let e = DeskPassword::choose("short").unwrap_err().to_string();
        assert!(e.contains("password") && !e.contains("short"), "{e}");
        assert!(DeskPassword::choose("twelve chars\u{7}!").is_err());
        assert!(DeskPassword::choose(&"x".repeat(257)).is_err());
    }
}
