//! The revocation desk: the three ways a holder's certificate is revoked
//! besides the operator CLI, and the secrets they rest on.
//!
//! - **Hotline** (seed 003): an agent types the caller's ID document number
//!   and 8-digit revocation password. The number is found through a keyed
//!   hash (HMAC-SHA-256, key outside the database); the password is checked
//!   against an Argon2id hash per certificate. Unknown number, wrong
//!   password and locked certificate give the same error after the same
//!   Argon2id work (a fixed number of checks, padded with a dummy hash).
//!   Each attempt is counted before its password is checked, so five wrong
//!   passwords, and no more, are checked before the hotline path of that
//!   certificate locks, however many arrive at once.
//! - **In person**: an RA officer who checked the ID document revokes, or
//!   gives the holder a new revocation password (which lifts a lock).
//! - **Self-service**: the holder signs a request naming serial and reason
//!   with the certificate's own key (CMS SignedData, `openssl cms -sign`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use der::Decode;
use hmac::{Hmac, Mac};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use time::OffsetDateTime;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::audit::{self, Event, Outcome};
use crate::ca::{normalize_serial, Ca, IssueOptions, Issued, KeySource, Revocation};
use crate::crl::Reason;
use crate::error::CaError;
use crate::holder::{Holder, ValidityYears};
use crate::operators::{Operator, Role};
use crate::secret_file;
use crate::store::credentials::CredentialRow;
use crate::store::limits::Window;
use crate::store::CertStatus;

/// An ID document number (identity card or passport), normalised: upper
/// case, spaces and hyphens dropped. Never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentNumber(String);

impl DocumentNumber {
    pub fn parse(input: &str) -> Result<DocumentNumber, CaError> {
        let s: String = input.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_uppercase();
        if !(5..=20).contains(&s.len()) || !s.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CaError::field(
                "ID document number",
                "5 to 20 letters and digits (spaces and hyphens ignored)",
            ));
        }
        Ok(DocumentNumber(s))
    }
}

impl fmt::Debug for DocumentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DocumentNumber(redacted)")
    }
}

/// The 8-digit revocation password. Never shown by `Debug`.
#[derive(Clone)]
pub struct RevocationPassword(SecretString);

impl RevocationPassword {
    /// Exactly 8 digits (surrounding spaces ignored).
    pub fn parse(input: &str) -> Result<RevocationPassword, CaError> {
        let s = input.trim();
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CaError::field("revocation password", "exactly 8 digits"));
        }
        Ok(RevocationPassword(SecretString::new(s.to_owned())))
    }

    /// 8 uniformly random digits from the OS CSPRNG.
    pub fn generate() -> RevocationPassword {
        let n: u32 = rand::rngs::OsRng.gen_range(0..100_000_000);
        RevocationPassword(SecretString::new(format!("{n:08}")))
    }

    /// The digits, for the one place they are shown to the holder.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for RevocationPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RevocationPassword(redacted)")
    }
}

/// The HMAC key document numbers are looked up by (32 bytes, from a secret file).
pub struct DocumentKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DocumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DocumentKey(redacted)")
    }
}

impl DocumentKey {
    pub fn from_bytes(b: [u8; 32]) -> DocumentKey {
        DocumentKey(Zeroizing::new(b))
    }

    pub fn random() -> DocumentKey {
        DocumentKey(secret_file::random_key())
    }

    /// The key as 64 hex digits (for writing the secret file once).
    pub fn to_hex(&self) -> Zeroizing<String> {
        secret_file::key_hex(&self.0)
    }

    /// Read a file holding 64 hex digits.
    pub fn load(path: &Path) -> Result<DocumentKey, CaError> {
        Ok(DocumentKey(secret_file::read_key(path, "document")?))
    }

    /// HMAC-SHA-256 of the normalised number, hex: what the registry stores.
    pub fn lookup_key(&self, doc: &DocumentNumber) -> Result<String, CaError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&*self.0).map_err(|e| CaError::Internal(e.to_string()))?;
        mac.update(doc.0.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// HMAC-SHA-256 of `"{domain}:{data}"`: other uses of the same key
    /// (order links), kept apart from document numbers (which have no ':').
    pub fn tag(&self, domain: &str, data: &str) -> Result<Vec<u8>, CaError> {
        Ok(self.tag_mac(domain, data)?.finalize().into_bytes().to_vec())
    }

    /// Is `given` the tag of `"{domain}:{data}"`? (Constant-time comparison.)
    pub fn verify_tag(&self, domain: &str, data: &str, given: &[u8]) -> Result<bool, CaError> {
        Ok(self.tag_mac(domain, data)?.verify_slice(given).is_ok())
    }

    fn tag_mac(&self, domain: &str, data: &str) -> Result<Hmac<Sha256>, CaError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&*self.0).map_err(|e| CaError::Internal(e.to_string()))?;
        mac.update(domain.as_bytes());
        mac.update(b":");
        mac.update(data.as_bytes());
        Ok(mac)
    }
}

/// Tunables of the desk.
#[derive(Debug, Clone)]
pub struct DeskSettings {
    /// Argon2id memory in KiB and passes: chosen so one check costs 20-100 ms.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Wrong hotline passwords after which a certificate's hotline path locks.
    pub lock_after: i64,
    /// Hotline attempts one agent may make per minute.
    pub agent_attempts_per_minute: u32,
    /// Argon2id checks every hotline attempt makes (K): the distinct
    /// password hashes of the holder's revocable certificates, padded with
    /// a dummy hash. A holder with more distinct passwords than K costs more
    /// (all are checked, so every certificate stays revocable by phone).
    pub hotline_checks_per_attempt: usize,
    /// How old a holder's signed revocation request may be.
    pub signed_request_max_age: time::Duration,
}

impl Default for DeskSettings {
    fn default() -> Self {
        DeskSettings {
            argon2_memory_kib: 32 * 1024,
            argon2_iterations: 2,
            lock_after: 5,
            agent_attempts_per_minute: 30,
            hotline_checks_per_attempt: 2,
            signed_request_max_age: time::Duration::minutes(15),
        }
    }
}

/// A holder's certificate as an RA officer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderCertificate {
    pub serial: String,
    pub subject: String,
    pub not_after: i64,
    /// `valid`, `revoked`, `expired` or `not-issued`.
    pub status: &'static str,
    pub hotline_locked: bool,
}

/// A holder's signed revocation request (the content of the CMS SignedData).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedRequest {
    serial: String,
    reason: String,
    #[serde(default)]
    invalidity_date: Option<String>,
}

/// Reasons a holder may give for revoking their own certificate.
pub const HOLDER_REASONS: [Reason; 5] = [
    Reason::Unspecified,
    Reason::KeyCompromise,
    Reason::AffiliationChanged,
    Reason::Superseded,
    Reason::CessationOfOperation,
];

/// The desk. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RevocationDesk {
    ca: Ca,
    key: Arc<DocumentKey>,
    params: Params,
    settings: DeskSettings,
    dummy_hash: Arc<str>,
    checks: Arc<AtomicU64>,
}

impl RevocationDesk {
    pub async fn new(ca: Ca, key: DocumentKey, settings: DeskSettings) -> Result<RevocationDesk, CaError> {
        let params = Params::new(settings.argon2_memory_kib, settings.argon2_iterations, 1, None)
            .map_err(|e| CaError::InvalidInput(format!("Argon2 parameters: {e}")))?;
        let dummy = hash_blocking(params.clone(), RevocationPassword::generate()).await?;
        Ok(RevocationDesk {
            ca,
            key: Arc::new(key),
            params,
            settings,
            dummy_hash: dummy.into(),
            checks: Arc::new(AtomicU64::new(0)),
        })
    }

    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The desk's Argon2id cost.
    pub fn argon2_params(&self) -> Params {
        self.params.clone()
    }

    /// Hash a password with the desk's Argon2id cost (PHC string).
    pub async fn hash_password(&self, password: &RevocationPassword) -> Result<String, CaError> {
        hash_blocking(self.params.clone(), password.clone()).await
    }

    fn now(&self) -> OffsetDateTime {
        self.ca.clock().now()
    }

    async fn audit(&self, actor: &str, action: &str, subject: &str, outcome: Outcome, detail: String) {
        let e = Event { actor, action, subject, outcome, detail };
        audit::record(self.ca.registry(), self.now().unix_timestamp(), &e).await;
    }

    /// The key document numbers (and order links) are looked up by.
    pub fn lookup_key(&self) -> &DocumentKey {
        &self.key
    }

    /// Issue a certificate with a fresh revocation password, returned once:
    /// only its Argon2id hash and the document's keyed hash are stored.
    pub async fn issue(
        &self,
        profile: &str,
        holder: &Holder,
        years: ValidityYears,
        key: KeySource,
        document: &DocumentNumber,
    ) -> Result<(Issued, RevocationPassword), CaError> {
        let lookup = self.key.lookup_key(document)?;
        self.issue_for_lookup(profile, holder, years, key, &lookup, &IssueOptions::default()).await
    }

    /// Same, for a document known only by its keyed hash (an order's).
    pub async fn issue_for_lookup(
        &self,
        profile: &str,
        holder: &Holder,
        years: ValidityYears,
        key: KeySource,
        document_key: &str,
        options: &IssueOptions,
    ) -> Result<(Issued, RevocationPassword), CaError> {
        let password = RevocationPassword::generate();
        let hash = hash_blocking(self.params.clone(), password.clone()).await?;
        let issued = self.ca.issue_with(profile, holder, years, key, options).await?;
        self.ca.registry().put_credential(&issued.serial, document_key, &hash, self.now().unix_timestamp()).await?;
        Ok((issued, password))
    }

    /// A fresh revocation password for an issued certificate whose first
    /// one never reached its holder (issuance interrupted before the secret
    /// delivery was made): records it (creating the credential if the
    /// interruption came before that) and returns it once.
    pub async fn replace_password(&self, serial: &str, document_key: &str) -> Result<RevocationPassword, CaError> {
        let password = RevocationPassword::generate();
        let hash = hash_blocking(self.params.clone(), password.clone()).await?;
        let registry = self.ca.registry();
        let now = self.now().unix_timestamp();
        if registry.credential(serial).await?.is_some() {
            registry.set_revocation_password(serial, &hash, now).await?;
        } else {
            registry.put_credential(serial, document_key, &hash, now).await?;
        }
        Ok(password)
    }

    /// Hotline revocation: revokes every valid certificate of the document's
    /// holder whose revocation password matches, and returns them.
    ///
    /// Each attempt is counted first, one conditional UPDATE per
    /// certificate ([`Registry::claim_password_attempt`]), and only the
    /// hashes of certificates whose attempt was claimed are checked: at most
    /// `lock_after` passwords are ever checked per certificate, however many
    /// arrive at once and from however many processes. A claimed attempt
    /// with the right password revokes and resets the count; one with a
    /// wrong password stays counted, and the one that takes the last slot
    /// locks. A right password that finds every slot taken (by wrong ones
    /// still being checked, or a lock) is refused like any other.
    ///
    /// The Argon2id work is the same whatever the document: exactly
    /// `hotline_checks_per_attempt` checks (the distinct hashes of the
    /// claimed certificates, padded with the dummy hash), more only for a
    /// holder with more distinct passwords than that.
    ///
    /// [`Registry::claim_password_attempt`]: crate::Registry::claim_password_attempt
    pub async fn hotline_revoke(
        &self,
        agent: &Operator,
        document: &DocumentNumber,
        password: &RevocationPassword,
        reason: Reason,
    ) -> Result<Vec<Revocation>, CaError> {
        agent.require(Role::HotlineAgent)?;
        self.rate_limit(&agent.name).await?;
        let actor = agent.actor();
        let now = self.now();
        let registry = self.ca.registry();
        let lock_after = self.settings.lock_after;
        let rows = registry.revocable_credentials(&self.key.lookup_key(document)?, now.unix_timestamp()).await?;
        let mut claimed: Vec<(&CredentialRow, i64)> = Vec::with_capacity(rows.len());
        let mut exhausted: Vec<&CredentialRow> = Vec::new();
        for row in &rows {
            match registry.claim_password_attempt(&row.serial, lock_after).await? {
                Some(n) => claimed.push((row, n)),
                None => exhausted.push(row),
            }
        }
        // A renewal copies the hash: each distinct one is checked once.
        let mut distinct: Vec<&str> = Vec::new();
        for (row, _) in &claimed {
            if !distinct.contains(&row.password_hash.as_str()) {
                distinct.push(&row.password_hash);
            }
        }
        let results = self.check_hashes(distinct.iter().map(|h| (*h).to_owned()).collect(), password).await?;
        let matches = |hash: &str| distinct.iter().zip(&results).any(|(h, ok)| *h == hash && *ok);

        let invalidity = (reason == Reason::KeyCompromise).then_some(now);
        let mut done = Vec::new();
        for (row, n) in claimed {
            if matches(&row.password_hash) {
                done.push(self.ca.revoke(&row.serial, reason, invalidity, &actor).await?);
                registry.reset_password_failures(&row.serial).await?;
                continue;
            }
            let detail = format!("wrong revocation password ({n} of {lock_after})");
            self.audit(&actor, "hotline.attempt", &row.serial, Outcome::Failure, detail).await;
            if n >= lock_after && registry.lock_credential(&row.serial, now.unix_timestamp()).await? {
                tracing::warn!(serial = %row.serial, "hotline revocation locked after repeated wrong passwords");
                let detail = format!(
                    "{lock_after} wrong passwords: hotline path locked until an RA officer sets a new password"
                );
                self.audit(&actor, "hotline.lock", &row.serial, Outcome::Success, detail).await;
            }
        }
        for row in exhausted {
            let detail = "locked (no attempt left); password not checked".to_owned();
            self.audit(&actor, "hotline.attempt", &row.serial, Outcome::Refused, detail).await;
        }
        if rows.is_empty() {
            let detail = "no revocable certificate for this document number".to_owned();
            self.audit(&actor, "hotline.attempt", "-", Outcome::Refused, detail).await;
        }
        if done.is_empty() {
            return Err(CaError::HotlineRefused);
        }
        Ok(done)
    }

    /// Check `password` against each of `hashes`, padded with the dummy hash
    /// to `hotline_checks_per_attempt` checks, so the work does not tell how
    /// many certificates (if any) the document has. Returns one answer per
    /// hash given.
    async fn check_hashes(&self, hashes: Vec<String>, password: &RevocationPassword) -> Result<Vec<bool>, CaError> {
        let given = hashes.len();
        let mut all = hashes;
        while all.len() < self.settings.hotline_checks_per_attempt.max(1) {
            all.push(self.dummy_hash.to_string());
        }
        let count = all.len() as u64;
        let password = password.clone();
        let results = tokio::task::spawn_blocking(move || {
            all.iter().map(|h| check_password(h, &password)).collect::<Vec<bool>>()
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))?;
        self.checks.fetch_add(count, Ordering::Relaxed);
        Ok(results.into_iter().take(given).collect())
    }

    /// Argon2id checks of hotline passwords made by this desk (dummy ones
    /// included): the hotline's work, for `/metrics` and for tests that
    /// show it does not depend on the document.
    pub fn password_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// The per-agent limit, a sliding minute counted in the registry so
    /// that every qcert process serving the hotline shares it.
    async fn rate_limit(&self, agent: &str) -> Result<(), CaError> {
        let window = Window { limit: self.settings.agent_attempts_per_minute, window_secs: 60 };
        self.ca.rate_limit("hotline-agent", agent, window).await
    }

    /// The credential of `serial`, checked against the document an RA officer saw.
    async fn credential_for(&self, serial: &str, document: &DocumentNumber) -> Result<CredentialRow, CaError> {
        let cred = self.ca.registry().credential(serial).await?.ok_or_else(|| {
            CaError::Conflict(format!("certificate {serial} has no holder record (not issued to a holder by qcert)"))
        })?;
        if cred.document_key != self.key.lookup_key(document)? {
            return Err(CaError::Conflict(format!(
                "the ID document presented is not the one recorded for the holder of certificate {serial}"
            )));
        }
        Ok(cred)
    }

    /// In-person revocation by an RA officer who checked the holder's ID document.
    pub async fn in_person_revoke(
        &self,
        officer: &Operator,
        serial: &str,
        document: &DocumentNumber,
        reason: Reason,
        invalidity_date: Option<OffsetDateTime>,
    ) -> Result<Revocation, CaError> {
        officer.require(Role::RaOfficer)?;
        let serial = normalize_serial(serial)?;
        self.credential_for(&serial, document).await?;
        self.ca.revoke(&serial, reason, invalidity_date, &officer.actor()).await
    }

    /// A new revocation password, in person; the old one stops working and a hotline lock is lifted.
    pub async fn change_password(
        &self,
        officer: &Operator,
        serial: &str,
        document: &DocumentNumber,
    ) -> Result<RevocationPassword, CaError> {
        officer.require(Role::RaOfficer)?;
        let serial = normalize_serial(serial)?;
        let cred = self.credential_for(&serial, document).await?;
        let now = self.now().unix_timestamp();
        let revocable = self.ca.registry().revocable_credentials(&cred.document_key, now).await?;
        if !revocable.iter().any(|r| r.serial == serial) {
            return Err(CaError::Conflict(format!(
                "certificate {serial} is revoked or expired: it needs no revocation password"
            )));
        }
        let password = RevocationPassword::generate();
        let hash = hash_blocking(self.params.clone(), password.clone()).await?;
        self.ca.registry().set_revocation_password(&serial, &hash, now).await?;
        let detail = if cred.locked_at.is_some() { "new password; hotline lock lifted" } else { "new password" };
        self.audit(&officer.actor(), "revocation-password.change", &serial, Outcome::Success, detail.into()).await;
        Ok(password)
    }

    /// The holder's certificates, for an RA officer with the ID document in hand.
    pub async fn holder_certificates(
        &self,
        officer: &Operator,
        document: &DocumentNumber,
    ) -> Result<Vec<HolderCertificate>, CaError> {
        officer.require(Role::RaOfficer)?;
        let registry = self.ca.registry();
        let now = self.now().unix_timestamp();
        let mut out = Vec::new();
        for serial in registry.serials_for_document(&self.key.lookup_key(document)?).await? {
            let (Some(rec), Some(cred)) = (registry.certificate(&serial).await?, registry.credential(&serial).await?)
            else {
                continue;
            };
            let status = if rec.status != CertStatus::Issued {
                "not-issued"
            } else if registry.revocation(&serial).await?.is_some() {
                "revoked"
            } else if rec.cert.not_after <= now {
                "expired"
            } else {
                "valid"
            };
            out.push(HolderCertificate {
                serial,
                subject: rec.cert.subject_dn,
                not_after: rec.cert.not_after,
                status,
                hotline_locked: cred.locked_at.is_some(),
            });
        }
        Ok(out)
    }

    /// Self-revocation: `request` is a CMS SignedData made with the key of
    /// certificate `serial`, whose content is
    /// `{"serial": "...", "reason": "...", "invalidity_date": "RFC 3339"?}`.
    pub async fn self_revoke(&self, serial: &str, request: &[u8]) -> Result<Revocation, CaError> {
        let serial = normalize_serial(serial)?;
        let rec =
            self.ca.registry().certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        let (Some(der), Some(_)) = (rec.der.as_deref(), rec.cert.issuer_serial.as_deref()) else {
            return Err(CaError::UnknownSerial(serial));
        };
        if rec.cert.kind != crate::store::CertKind::EndEntity {
            return Err(CaError::Forbidden("only a holder's certificate can be revoked by a signed request".into()));
        }
        let cert = Certificate::from_der(der).map_err(CaError::encoding)?;
        let verified =
            crate::cms::verify_signed_data(request, &cert).map_err(|e| CaError::SignatureRefused(e.to_string()))?;
        let now = self.now();
        if rec.cert.not_after <= now.unix_timestamp() {
            return Err(CaError::Conflict(format!("certificate {serial} has expired; it cannot be revoked any more")));
        }
        let signed_at = verified.signing_time.ok_or_else(|| {
            CaError::SignatureRefused("the signed request carries no signing time (openssl cms -sign adds one)".into())
        })?;
        let max_age = self.settings.signed_request_max_age;
        if signed_at < now - max_age || signed_at > now + time::Duration::minutes(5) {
            return Err(CaError::SignatureRefused(format!(
                "the request was signed at {signed_at}; it must be signed within {} minutes before sending",
                max_age.whole_minutes()
            )));
        }
        let req: SignedRequest = serde_json::from_slice(&verified.content).map_err(|e| {
            CaError::InvalidInput(format!("the signed content must be JSON {{\"serial\": ..., \"reason\": ...}}: {e}"))
        })?;
        if normalize_serial(&req.serial)? != serial {
            return Err(CaError::InvalidInput(format!("the signed request names serial {}, not {serial}", req.serial)));
        }
        let reason = Reason::parse(&req.reason)?;
        if !HOLDER_REASONS.contains(&reason) {
            return Err(CaError::InvalidInput(format!("a holder cannot give the reason {}", reason.name())));
        }
        let invalidity = req
            .invalidity_date
            .map(|d| {
                OffsetDateTime::parse(&d, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| CaError::field("invalidity_date", "an RFC 3339 time like 2026-11-25T10:00:00Z"))
            })
            .transpose()?
            .or((reason == Reason::KeyCompromise).then_some(now));
        self.ca.revoke(&serial, reason, invalidity, "holder:signed-request").await
    }
}

/// `N` bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    b
}

async fn hash_blocking(params: Params, password: RevocationPassword) -> Result<String, CaError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CaError::Internal(format!("Argon2: {e}")))
    })
    .await
    .map_err(|e| CaError::Internal(e.to_string()))?
}

/// Does `password` match the PHC string? The parameters come from the
/// string, so they can be raised later. (Blocking: call from `spawn_blocking`.)
pub fn check_password(phc: &str, password: &RevocationPassword) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.expose().as_bytes(), &h).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_exactly_eight_digits() {
        for bad in ["1234567", "123456789", "1234567a", "", "１２３４５６７８", "12 34567"] {
            assert!(RevocationPassword::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RevocationPassword::parse(" 01234567 ").map(|p| p.expose().to_owned()).ok(),
            Some("01234567".into())
        );
        let p = RevocationPassword::generate();
        assert!(RevocationPassword::parse(p.expose()).is_ok());
        assert!(!format!("{p:?}").contains(p.expose()));
    }

    #[test]
    fn document_numbers_normalise_and_hide() {
        let a = DocumentNumber::parse("rx 123-456").unwrap_or_else(|e| panic!("{e}"));
        let b = DocumentNumber::parse("RX123456").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a, b);
        assert!(!format!("{a:?}").contains("123456"));
        assert!(DocumentNumber::parse("1234").is_err());
        assert!(DocumentNumber::parse("RX12345'; --").is_err());
    }

    #[test]
    fn lookup_key_depends_on_the_key() {
        let d = DocumentNumber::parse("RX123456").unwrap_or_else(|e| panic!("{e}"));
        let k1 = DocumentKey::random().lookup_key(&d).unwrap_or_default();
        let k2 = DocumentKey::random().lookup_key(&d).unwrap_or_default();
        assert_ne!(k1, k2);
        assert_eq!(k1.len(), 64);
        assert!(!k1.contains("RX123456"));
    }

    #[test]
    fn argon2_hash_verifies_only_the_right_password() {
        let p = RevocationPassword::parse("12345678").unwrap_or_else(|e| panic!("{e}"));
        let params = Params::new(1024, 1, 1, None).unwrap_or_else(|e| panic!("{e}"));
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"12345678", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default();
        assert!(phc.starts_with("$argon2id$"));
        assert!(check_password(&phc, &p));
        assert!(!check_password(&phc, &RevocationPassword::parse("12345679").unwrap_or_else(|e| panic!("{e}"))));
        assert!(!check_password("garbage", &p));
    }
}
