//! Remote signing with CLOUD certificates (the Cloud Signature Consortium
//! API's model; HTTP is `portal::csc_api`). This module is the only code of
//! qcert that makes the HSM sign with a holder's key
//! ([`qcert_hsm::Hsm::find_holder_key`]), and it checks the signature
//! activation data (SAD) itself right before, in [`RemoteSigning::sign_hash`].
//!
//! Sole control (ETSI TS 119 431-1 SIG-6.3.1-09..15, the SAM of EN 419 241-1):
//! - first factor: the holder's signing password (Argon2id), set through
//!   the order's capability link with a code from the authenticator; it
//!   opens a short-lived session (bearer token of 256 random bits, stored
//!   as SHA-256);
//! - second factor per authorization: a TOTP code, checked by
//!   `Orders::check_code` (counted before the check, locked after
//!   `lock_after` wrong ones, each step used once);
//! - the SAD: 256 random bits, stored as SHA-256, bound to the order
//!   (holder), the certificate serial (credential), the hash algorithm and
//!   the exact hashes authorized (`numSignatures == len(hashes)`); each
//!   `signHash` removes the hashes it signs with one conditional UPDATE (a
//!   replay or a race signs nothing); valid [`SAD_TTL_SECS`] at most;
//! - a revoked, expired or not yet valid certificate neither authorizes nor
//!   signs (checked at both).
//!
//! Every authorization and signature is in the audit log with the hashes
//! (never documents).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};
use base64::Engine as _;
use qcert_hsm::{DigestAlgorithm, HolderKey, KeyAlgorithm};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::ca::normalize_serial;
use crate::error::CaError;
use crate::orders::{Orders, Product};
use crate::store::csc::SadRow;
use crate::store::limits::Window;
use crate::store::orders::OrderRow;
use crate::store::CertStatus;

/// A SAD is valid this long at most (5 minutes).
pub const SAD_TTL_SECS: i64 = 300;
/// Most hashes one SAD authorizes (`multisign`).
pub const MAX_HASHES_PER_SAD: usize = 16;
/// A signing password's length in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 12..=256;

/// OIDs of the hash algorithms accepted.
pub const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
pub const SHA384_OID: &str = "2.16.840.1.101.3.4.2.2";
pub const SHA512_OID: &str = "2.16.840.1.101.3.4.2.3";
const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";
const RSA_ENCRYPTION_OID: &str = "1.2.840.113549.1.1.1";

/// Settings of remote signing.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSettings {
    /// Lifetime of a bearer token from `auth/login`.
    pub session_ttl_secs: i64,
    /// Lifetime of a SAD (at most [`SAD_TTL_SECS`]).
    pub sad_ttl_secs: i64,
    /// Logins per order (holder) in a sliding window, counted before the password is checked.
    pub login_limit: Window,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            session_ttl_secs: 900,
            sad_ttl_secs: SAD_TTL_SECS,
            login_limit: Window { limit: 10, window_secs: 900 },
        }
    }
}

/// A signing password (holder's first factor). `Debug` redacts it.
#[derive(Clone)]
pub struct SigningPassword(Zeroizing<String>);

impl std::fmt::Debug for SigningPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningPassword(redacted)")
    }
}

impl SigningPassword {
    /// 12 to 256 characters, no control characters.
    pub fn parse(s: &str) -> Result<SigningPassword, CaError> {
        let n = s.chars().count();
        if !PASSWORD_CHARS.contains(&n) || s.chars().any(char::is_control) {
            return Err(CaError::field("password", "12 to 256 characters, without control characters"));
        }
        Ok(SigningPassword(Zeroizing::new(s.to_owned())))
    }
}

/// The state of a credential (a CLOUD certificate), for `credentials/info`.
#[derive(Debug, Clone)]
pub struct Credential {
    pub serial: String,
    /// `valid`, `revoked`, `expired` or `not-yet-valid`.
    pub status: &'static str,
    pub key_algorithm: KeyAlgorithm,
    /// Certificate DER, then the issuing CA's and the root's.
    pub chain: Vec<Vec<u8>>,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub not_before: i64,
    pub not_after: i64,
}

impl Credential {
    /// Key algorithm OIDs (the key's, then the signature algorithms it makes).
    pub fn algorithm_oids(&self) -> Vec<&'static str> {
        match self.key_algorithm {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                vec![EC_PUBLIC_KEY_OID, "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4"]
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                vec![RSA_ENCRYPTION_OID, "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12", "1.2.840.113549.1.1.13"]
            }
        }
    }

    /// Key size in bits.
    pub fn key_bits(&self) -> u32 {
        match self.key_algorithm {
            KeyAlgorithm::EcP256 => 256,
            KeyAlgorithm::EcP384 => 384,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
        }
    }

    /// The named curve's OID (EC keys).
    pub fn curve_oid(&self) -> Option<&'static str> {
        match self.key_algorithm {
            KeyAlgorithm::EcP256 => Some("1.2.840.10045.3.1.7"),
            KeyAlgorithm::EcP384 => Some("1.3.132.0.34"),
            _ => None,
        }
    }
}

/// What `credentials/authorize` asks for.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest<'a> {
    pub serial: &'a str,
    pub num_signatures: u64,
    /// Base64 hashes.
    pub hashes: &'a [String],
    /// Hash algorithm OID; if absent, implied by the hashes' length.
    pub hash_algo: Option<&'a str>,
    /// The authenticator's code.
    pub otp: &'a str,
}

/// A SAD handed out: the value (base64url) and its lifetime in seconds.
#[derive(Debug)]
pub struct Sad {
    pub value: Zeroizing<String>,
    pub expires_in: i64,
}

/// What `signatures/signHash` asks for.
#[derive(Debug, Clone)]
pub struct SignRequest<'a> {
    pub serial: &'a str,
    pub sad: &'a str,
    pub hashes: &'a [String],
    pub hash_algo: &'a str,
    /// Signature algorithm OID.
    pub sign_algo: &'a str,
}

/// Remote signing over the order workflow (CLOUD orders and their line of
/// certificates). Cheap to clone.
#[derive(Clone)]
pub struct RemoteSigning {
    orders: Orders,
    settings: RemoteSettings,
    /// Holder key handles found on the HSM, by label (found again after a reconnect by the hsm crate).
    keys: Arc<Mutex<HashMap<String, Arc<HolderKey>>>>,
    /// A PHC string checked when there is none to check, so an unknown
    /// holder costs the same Argon2id work as a wrong password.
    dummy: Arc<std::sync::OnceLock<String>>,
}

impl std::fmt::Debug for RemoteSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSigning").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn refused(what: &str) -> CaError {
    CaError::SignatureRefused(what.to_owned())
}

/// The one answer to an unknown credential and another holder's.
fn unknown_credential() -> CaError {
    CaError::NotFound("no such credential for this holder".into())
}

fn digest_of(oid: &str) -> Result<DigestAlgorithm, CaError> {
    match oid {
        SHA256_OID => Ok(DigestAlgorithm::Sha256),
        SHA384_OID => Ok(DigestAlgorithm::Sha384),
        SHA512_OID => Ok(DigestAlgorithm::Sha512),
        _ => Err(CaError::field("hashAlgo", "SHA-256, SHA-384 or SHA-512 (by OID)")),
    }
}

fn oid_of(d: DigestAlgorithm) -> &'static str {
    match d {
        DigestAlgorithm::Sha256 => SHA256_OID,
        DigestAlgorithm::Sha384 => SHA384_OID,
        DigestAlgorithm::Sha512 => SHA512_OID,
    }
}

/// Decode base64 hashes (standard or URL-safe alphabet) into a set of
/// canonical (standard, padded) strings; each must be `len` octets, none twice.
fn canonical_hashes(hashes: &[String], len: Option<usize>) -> Result<(BTreeSet<String>, usize), CaError> {
    let bad = || CaError::field("hash", "base64 digests of the hash algorithm's length, none twice");
    let mut set = BTreeSet::new();
    let mut size = len;
    for h in hashes {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim().trim_end_matches('=')))
            .map_err(|_| bad())?;
        if *size.get_or_insert(raw.len()) != raw.len()
            || !set.insert(base64::engine::general_purpose::STANDARD.encode(&raw))
        {
            return Err(bad());
        }
    }
    Ok((set, size.unwrap_or(0)))
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().map(String::as_str).collect::<Vec<_>>().join(",")
}

/// Hashes for the audit log, in hex.
fn audit_hashes(set: &BTreeSet<String>) -> String {
    set.iter()
        .filter_map(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
        .map(hex::encode)
        .collect::<Vec<_>>()
        .join(",")
}

impl RemoteSigning {
    pub fn new(orders: Orders) -> RemoteSigning {
        RemoteSigning::with_settings(orders, RemoteSettings::default())
    }

    pub fn with_settings(orders: Orders, mut settings: RemoteSettings) -> RemoteSigning {
        settings.sad_ttl_secs = settings.sad_ttl_secs.clamp(1, SAD_TTL_SECS);
        RemoteSigning {
            orders,
            settings,
            keys: Arc::new(Mutex::new(HashMap::new())),
            dummy: Arc::new(std::sync::OnceLock::new()),
        }
    }

    pub fn settings(&self) -> RemoteSettings {
        self.settings
    }

    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    fn now(&self) -> OffsetDateTime {
        self.orders.ca().clock().now()
    }

    async fn audit(&self, actor: &str, action: &str, subject: &str, outcome: Outcome, detail: String) {
        let e = Event { actor, action, subject, outcome, detail };
        audit::record(self.orders.ca().registry(), self.now().unix_timestamp(), &e).await;
    }

    async fn hash(&self, password: SigningPassword) -> Result<String, CaError> {
        let params = self.orders.desk().argon2_params();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.0.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| CaError::Internal(format!("Argon2: {e}")))
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?
    }

    /// The holder sets (or changes) the signing password through the
    /// order's link, with a code from the authenticator (counted and
    /// locked as every code). Ends the sessions opened with the old one.
    pub async fn set_password(&self, token: &str, password: &str, code: &str) -> Result<(), CaError> {
        let password = SigningPassword::parse(password)?;
        let row = self.orders.by_link(token).await?;
        if row.product != Product::Cloud.as_str() || row.state != "issued" {
            return Err(CaError::Conflict("a signing password is set for an issued CLOUD certificate's order".into()));
        }
        if row.totp_sealed.is_none() || row.totp_enrolled_at.is_none() {
            return Err(CaError::Conflict("enrol the authenticator first (the link in the invitation)".into()));
        }
        self.orders.ca().rate_limit("order-code", &row.id, self.orders.code_limits().per_order).await?;
        self.orders.check_code(&row, code, "holder:signing-password").await?;
        let phc = self.hash(password).await?;
        let now = self.now().unix_timestamp();
        if !self.orders.ca().registry().set_signing_password(&row.id, &phc, now).await? {
            return Err(CaError::Conflict("the order changed; reload it".into()));
        }
        self.audit("holder", "csc.signing-password", &row.id, Outcome::Success, String::new()).await;
        Ok(())
    }

    /// `auth/login`: the order id (the holder's user id) and the signing
    /// password. Returns a bearer token and its lifetime in seconds. Logins
    /// are rate-limited per order before the password is checked; an
    /// unknown order, an order without password and a wrong password give
    /// one answer after the same Argon2id work.
    pub async fn login(&self, order_id: &str, password: &str) -> Result<(Zeroizing<String>, i64), CaError> {
        let wrong = || CaError::Forbidden("wrong user or password".into());
        if order_id.is_empty() || order_id.len() > 64 || !order_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(wrong());
        }
        let password = SigningPassword::parse(password).map_err(|_| wrong())?;
        self.orders.ca().rate_limit("csc-login", order_id, self.settings.login_limit).await?;
        let registry = self.orders.ca().registry();
        let stored = registry.signing_password_hash(order_id).await?;
        let phc = match &stored {
            Some(p) => p.clone(),
            None => self.dummy_hash().await?,
        };
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc).is_ok_and(|h| Argon2::default().verify_password(password.0.as_bytes(), &h).is_ok())
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?;
        if !ok || stored.is_none() {
            self.audit("holder", "csc.login", order_id, Outcome::Refused, "wrong user or password".into()).await;
            return Err(wrong());
        }
        let token = Zeroizing::new(hex::encode(crate::desk::random_bytes::<32>()));
        let now = self.now().unix_timestamp();
        let ttl = self.settings.session_ttl_secs;
        registry.insert_csc_session(&sha256_hex(token.as_bytes()), order_id, now, now + ttl).await?;
        self.audit("holder", "csc.login", order_id, Outcome::Success, String::new()).await;
        Ok((token, ttl))
    }

    async fn dummy_hash(&self) -> Result<String, CaError> {
        if let Some(d) = self.dummy.get() {
            return Ok(d.clone());
        }
        let made = self.hash(SigningPassword(Zeroizing::new("qcert dummy signing password".into()))).await?;
        Ok(self.dummy.get_or_init(|| made).clone())
    }

    /// The order (holder) of a live bearer token.
    pub async fn session(&self, token: &str) -> Result<OrderRow, CaError> {
        let expired = || CaError::Forbidden("the access token is unknown or expired; log in again".into());
        if token.is_empty() || token.len() > 256 {
            return Err(expired());
        }
        let now = self.now().unix_timestamp();
        let registry = self.orders.ca().registry();
        let id = registry.csc_session(&sha256_hex(token.as_bytes()), now).await?.ok_or_else(expired)?;
        registry.order(&id).await?.ok_or_else(expired)
    }

    /// `auth/revoke`: end the session.
    pub async fn logout(&self, token: &str) -> Result<(), CaError> {
        self.orders.ca().registry().delete_csc_session(&sha256_hex(token.as_bytes())).await?;
        Ok(())
    }

    /// `credentials/list`: the holder's CLOUD certificates that can sign now.
    pub async fn credentials(&self, order: &OrderRow) -> Result<Vec<String>, CaError> {
        let mut out = Vec::new();
        for serial in self.orders.certificate_line(order).await? {
            if let Ok(c) = self.credential(order, &serial).await {
                if c.status == "valid" {
                    out.push(c.serial);
                }
            }
        }
        Ok(out)
    }

    /// `credentials/info`: a certificate of the holder's line with its key
    /// in our HSM. Another holder's credential is unknown.
    pub async fn credential(&self, order: &OrderRow, serial: &str) -> Result<Credential, CaError> {
        Ok(self.credential_and_label(order, serial).await?.0)
    }

    async fn credential_and_label(&self, order: &OrderRow, serial: &str) -> Result<(Credential, String), CaError> {
        let serial = normalize_serial(serial).map_err(|_| unknown_credential())?;
        if order.product != Product::Cloud.as_str() || !self.orders.certificate_line(order).await?.contains(&serial) {
            return Err(unknown_credential());
        }
        let registry = self.orders.ca().registry();
        let rec = registry.certificate(&serial).await?.ok_or_else(unknown_credential)?;
        let (Some(der), Some(label), CertStatus::Issued) =
            (rec.der.clone(), rec.cert.hsm_key_label.clone(), rec.status)
        else {
            return Err(unknown_credential());
        };
        let now = self.now().unix_timestamp();
        let status = if registry.revocation(&serial).await?.is_some() {
            "revoked"
        } else if now >= rec.cert.not_after {
            "expired"
        } else if now < rec.cert.not_before {
            "not-yet-valid"
        } else {
            "valid"
        };
        let hierarchy = self.orders.ca().hierarchy();
        let (key_algorithm, issuer_dn) = parse_certificate(&der).ok_or_else(unknown_credential)?;
        Ok((
            Credential {
                serial,
                status,
                key_algorithm,
                chain: vec![der, hierarchy.issuing, hierarchy.root],
                subject_dn: rec.cert.subject_dn.clone(),
                issuer_dn,
                not_before: rec.cert.not_before,
                not_after: rec.cert.not_after,
            },
            label,
        ))
    }

    /// A credential that may sign now, with its HSM label.
    async fn usable(&self, order: &OrderRow, serial: &str, action: &str) -> Result<(Credential, String), CaError> {
        let (c, label) = self.credential_and_label(order, serial).await?;
        if c.status != "valid" {
            let detail = format!("certificate {}", c.status);
            self.audit("holder", action, &c.serial, Outcome::Refused, detail).await;
            return Err(CaError::Conflict(format!("the certificate is {}: it cannot sign", c.status)));
        }
        Ok((c, label))
    }

    /// `credentials/authorize`: check the authenticator's code and hand out
    /// a SAD for exactly these hashes.
    pub async fn authorize(&self, order: &OrderRow, req: &AuthorizeRequest<'_>) -> Result<Sad, CaError> {
        let (cred, _) = self.usable(order, req.serial, "csc.authorize").await?;
        if req.hashes.is_empty() || req.hashes.len() > MAX_HASHES_PER_SAD {
            return Err(CaError::field("hash", "1 to 16 hashes to authorize (multisign)"));
        }
        if u64::try_from(req.hashes.len()).ok() != Some(req.num_signatures) {
            return Err(CaError::field("numSignatures", "the number of hashes given"));
        }
        let wanted = req.hash_algo.map(digest_of).transpose()?;
        let (set, size) = canonical_hashes(req.hashes, wanted.map(DigestAlgorithm::octets))?;
        let digest = match wanted {
            Some(d) => d,
            None => [DigestAlgorithm::Sha256, DigestAlgorithm::Sha384, DigestAlgorithm::Sha512]
                .into_iter()
                .find(|d| d.octets() == size)
                .ok_or_else(|| CaError::field("hash", "SHA-256, SHA-384 or SHA-512 digests"))?,
        };
        self.orders.ca().rate_limit("order-code", &order.id, self.orders.code_limits().per_order).await?;
        self.orders.check_code(order, req.otp, "holder:csc").await?;
        // Checked again after the code: a revocation that came meanwhile wins.
        let (cred, _) = self.usable(order, &cred.serial, "csc.authorize").await?;
        let sad =
            Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::desk::random_bytes::<32>()));
        let now = self.now().unix_timestamp();
        let ttl = self.settings.sad_ttl_secs;
        let row = SadRow {
            order_id: order.id.clone(),
            serial: cred.serial.clone(),
            hash_algo: oid_of(digest).to_owned(),
            hashes: join(&set),
            remaining: i64::try_from(set.len()).unwrap_or(i64::MAX),
            created_at: now,
            expires_at: now + ttl,
        };
        self.orders.ca().registry().insert_sad(&sha256_hex(sad.as_bytes()), &row).await?;
        let detail = format!("order={} hash_algo={} hashes={}", order.id, row.hash_algo, audit_hashes(&set));
        self.audit("holder", "csc.authorize", &cred.serial, Outcome::Success, detail).await;
        Ok(Sad { value: sad, expires_in: ttl })
    }

    /// `signatures/signHash`: check the SAD (holder, credential, hash
    /// algorithm, each hash authorized and not yet signed, not expired), use
    /// it up, then sign each hash with the holder's key in the HSM.
    /// Signatures come back in the order of the hashes; ECDSA DER-encoded.
    pub async fn sign_hash(&self, order: &OrderRow, req: &SignRequest<'_>) -> Result<Vec<Vec<u8>>, CaError> {
        let (cred, label) = self.usable(order, req.serial, "csc.sign").await?;
        let digest = digest_of(req.hash_algo)?;
        check_sign_algo(cred.key_algorithm, digest, req.sign_algo)?;
        if req.hashes.is_empty() || req.hashes.len() > MAX_HASHES_PER_SAD {
            return Err(CaError::field("hash", "1 to 16 hashes"));
        }
        let (asked, _) = canonical_hashes(req.hashes, Some(digest.octets()))?;
        let registry = self.orders.ca().registry();
        let sad_hash = sha256_hex(req.sad.trim().as_bytes());
        let invalid = "the SAD is invalid, used up, or not for these hashes";
        let sad = match registry.sad(&sad_hash).await? {
            Some(s) if s.order_id == order.id && s.serial == cred.serial => s,
            _ => return self.sign_refused(&cred.serial, &asked, invalid).await,
        };
        let now = self.now().unix_timestamp();
        if now >= sad.expires_at {
            return self.sign_refused(&cred.serial, &asked, "the SAD expired; authorize again").await;
        }
        if sad.hash_algo != oid_of(digest) {
            return self.sign_refused(&cred.serial, &asked, invalid).await;
        }
        let mut left: BTreeSet<String> = sad.hashes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if !asked.iter().all(|h| left.remove(h)) {
            return self.sign_refused(&cred.serial, &asked, invalid).await;
        }
        let remaining = i64::try_from(left.len()).unwrap_or(0);
        if !registry.consume_sad(&sad_hash, &sad, &join(&left), remaining, now).await? {
            return self.sign_refused(&cred.serial, &asked, invalid).await;
        }
        // The SAD is used up for these hashes: only now is the key reached.
        let digests: Vec<Vec<u8>> = req
            .hashes
            .iter()
            .map(|h| canonical_hashes(std::slice::from_ref(h), Some(digest.octets())))
            .map(|r| {
                r.and_then(|(s, _)| {
                    s.iter()
                        .next()
                        .and_then(|h| base64::engine::general_purpose::STANDARD.decode(h).ok())
                        .ok_or_else(|| CaError::field("hash", "base64 digests"))
                })
            })
            .collect::<Result<_, _>>()?;
        let key = self.holder_key(&label).await?;
        let hsm = self.orders.ca().hsm().clone();
        let signed = tokio::task::spawn_blocking(move || {
            digests.iter().map(|d| hsm.sign_holder_digest(&key, digest, d)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?;
        let signatures = match signed {
            Ok(s) => s,
            Err(e) => {
                let detail = format!("HSM: {e}; hashes={}", audit_hashes(&asked));
                self.audit("ca", "csc.sign", &cred.serial, Outcome::Failure, detail).await;
                return Err(e.into());
            }
        };
        let detail = format!(
            "order={} hash_algo={} sign_algo={} hashes={} left={remaining}",
            order.id,
            oid_of(digest),
            req.sign_algo,
            audit_hashes(&asked)
        );
        self.audit("holder", "csc.sign", &cred.serial, Outcome::Success, detail).await;
        Ok(signatures)
    }

    async fn sign_refused<T>(&self, serial: &str, asked: &BTreeSet<String>, why: &str) -> Result<T, CaError> {
        self.audit("holder", "csc.sign", serial, Outcome::Refused, format!("{why}; hashes={}", audit_hashes(asked)))
            .await;
        Err(refused(why))
    }

    async fn holder_key(&self, label: &str) -> Result<Arc<HolderKey>, CaError> {
        let cached = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(label).cloned();
        if let Some(k) = cached {
            return Ok(k);
        }
        let hsm = self.orders.ca().hsm().clone();
        let l = label.to_owned();
        let key = Arc::new(
            tokio::task::spawn_blocking(move || hsm.find_holder_key(&l))
                .await
                .map_err(|e| CaError::Internal(e.to_string()))??,
        );
        let mut keys = self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() > 10_000 {
            keys.clear();
        }
        keys.insert(label.to_owned(), key.clone());
        Ok(key)
    }
}

/// The signature algorithm must fit the key and, when it names a hash, the SAD's.
fn check_sign_algo(key: KeyAlgorithm, digest: DigestAlgorithm, oid: &str) -> Result<(), CaError> {
    let ec = matches!(key, KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384);
    let fits = match (ec, oid) {
        (true, EC_PUBLIC_KEY_OID) | (false, RSA_ENCRYPTION_OID) => true,
        (true, "1.2.840.10045.4.3.2") | (false, "1.2.840.113549.1.1.11") => digest == DigestAlgorithm::Sha256,
        (true, "1.2.840.10045.4.3.3") | (false, "1.2.840.113549.1.1.12") => digest == DigestAlgorithm::Sha384,
        (true, "1.2.840.10045.4.3.4") | (false, "1.2.840.113549.1.1.13") => digest == DigestAlgorithm::Sha512,
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(CaError::field("signAlgo", "a signature algorithm of the credential's key with the hash algorithm given"))
    }
}

/// The key algorithm (from the SubjectPublicKeyInfo) and issuer DN of a certificate.
fn parse_certificate(der: &[u8]) -> Option<(KeyAlgorithm, String)> {
    use der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok());
    let algorithm = match (spki.algorithm.oid.to_string().as_str(), curve.map(|c| c.to_string())) {
        (EC_PUBLIC_KEY_OID, Some(c)) if c == "1.2.840.10045.3.1.7" => KeyAlgorithm::EcP256,
        (EC_PUBLIC_KEY_OID, Some(c)) if c == "1.3.132.0.34" => KeyAlgorithm::EcP384,
        (RSA_ENCRYPTION_OID, _) => {
            use rsa::pkcs8::DecodePublicKey;
            use rsa::traits::PublicKeyParts;
            match rsa::RsaPublicKey::from_public_key_der(&spki.to_der().ok()?).ok()?.size() * 8 {
                3072 => KeyAlgorithm::Rsa3072,
                4096 => KeyAlgorithm::Rsa4096,
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((algorithm, cert.tbs_certificate.issuer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_canonical_sized_and_unique() {
        let a = base64::engine::general_purpose::STANDARD.encode([1u8; 48]);
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([2u8; 48]);
        let (set, n) = canonical_hashes(&[a.clone(), b], Some(48)).unwrap();
        assert_eq!((set.len(), n), (2, 48));
        assert!(set.contains(&a));
        assert!(canonical_hashes(&[a.clone(), a.clone()], None).is_err(), "twice");
        assert!(canonical_hashes(std::slice::from_ref(&a), Some(32)).is_err(), "wrong length");
        assert!(canonical_hashes(&["%%".into()], None).is_err());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(canonical_hashes(&[a, short], None).is_err(), "mixed lengths");
    }

    #[test]
    fn sign_algorithms_fit_key_and_hash() {
        let ec = KeyAlgorithm::EcP384;
        assert!(check_sign_algo(ec, DigestAlgorithm::Sha384, "1.2.840.10045.4.3.3").is_ok());
        assert!(check_sign_algo(ec, DigestAlgorithm::Sha384, EC_PUBLIC_KEY_OID).is_ok());
        assert!(check_sign_algo(ec, DigestAlgorithm::Sha256, "1.2.840.10045.4.3.3").is_err());
        assert!(check_sign_algo(ec, DigestAlgorithm::Sha256, "1.2.840.113549.1.1.11").is_err());
        assert!(check_sign_algo(KeyAlgorithm::Rsa3072, DigestAlgorithm::Sha256, "1.2.840.113549.1.1.11").is_ok());
    }

    #[test]
    fn passwords_are_checked_and_hidden() {
        assert!(SigningPassword::parse("short").is_err());
        assert!(SigningPassword::parse("twelve chars\u{0}").is_err());
        let p = SigningPassword::parse("correct horse battery").unwrap();
        assert_eq!(format!("{p:?}"), "SigningPassword(redacted)");
    }
}
