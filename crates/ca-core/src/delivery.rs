//! One-time delivery of a kit's secrets (seed 002): the holder's revocation
//! password and, for a TOKEN kit, the token's initial PIN and its PUK.
//!
//! The holder gets two halves by two channels: a link by email
//! (`qsd_` + 32 random bytes, base64url) and a generation code printed in
//! the kit envelope (10 characters of Crockford's base32, printed as
//! `ABCD-EFGH-JK`). With both, [`Deliveries::reveal`] returns the secrets
//! once and erases them. The registry keeps only the SHA-256 of the link
//! token, the Argon2id hash of the code and the secrets sealed by the
//! [`Vault`] (associated data = the delivery id, so sealed secrets moved to
//! another row do not open).
//!
//! Rules:
//! - Three wrong codes block the link for good ("report it to an RA
//!   officer"). Each attempt is counted *before* its code is checked, so no
//!   more than three codes are ever checked, however many requests arrive
//!   at once; a right code gives its attempt back.
//! - Success erases the sealed secrets in the transaction that marks the
//!   delivery retrieved: of two concurrent reveals with the right code,
//!   exactly one gets the secrets. A lost answer cannot be fetched again.
//! - A new delivery for the same order supersedes the live one (pending or
//!   blocked), whose sealed secrets are erased; [`Deliveries::reissue`]
//!   lets an RA officer move a blocked delivery's secrets to a new link and
//!   code (the PIN and PUK are already on the shipped token).
//! - Every creation, attempt, block, reveal and refusal is in the audit log
//!   (actor `holder:delivery-link`, subject the order id); codes, tokens
//!   and secrets never are.
//!
//! Alphabets: the generation code uses Crockford's base32
//! (`0-9 A-Z` without I, L, O, U); typing is forgiving: case, hyphens and
//! spaces are ignored, and O reads as 0, I and L as 1. The PUK is 14
//! decimal digits (46 bits; the token's retry counter, not the PUK's length,
//! stops guessing): digits are accepted by every token's middleware and
//! PIN pad and cannot be misread between letters and digits. The PIN is 6
//! decimal digits.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::audit::{self, Event, Outcome};
use crate::ca::normalize_serial;
use crate::clock::Clock;
use crate::desk::{DeskSettings, RevocationPassword};
use crate::error::CaError;
use crate::operators::{Operator, Role};
use crate::store::deliveries::{DeliveryRow, NewDelivery};
use crate::store::Registry;
use crate::vault::Vault;

/// Wrong generation codes after which a link is blocked.
pub const MAX_ATTEMPTS: i64 = 3;
/// Prefix of every delivery link token (recognisable in secret scanners).
pub const LINK_PREFIX: &str = "qsd_";
/// Characters of a generation code (without hyphens).
pub const CODE_LEN: usize = 10;
/// Digits of a generated PIN.
pub const PIN_LEN: usize = 6;
/// Characters of a PUK.
pub const PUK_LEN: usize = 14;
/// Crockford's base32 alphabet.
const CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// base64url of 32 bytes, without padding.
const TOKEN_B64_LEN: usize = 43;
/// How the audit log names the holder using a link.
const HOLDER: &str = "holder:delivery-link";

/// The secrets of one kit. Never shown by `Debug`; wiped when dropped.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitSecrets {
    /// The 8-digit revocation password (for the hotline).
    pub revocation_password: String,
    /// TOKEN kits: the token's initial PIN.
    pub pin: Option<String>,
    /// TOKEN kits: the token's PUK (14 characters).
    pub puk: Option<String>,
}

impl fmt::Debug for KitSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KitSecrets")
            .field("revocation_password", &"redacted")
            .field("pin", &self.pin.as_ref().map(|_| "redacted"))
            .field("puk", &self.puk.as_ref().map(|_| "redacted"))
            .finish()
    }
}

impl Drop for KitSecrets {
    fn drop(&mut self) {
        self.revocation_password.zeroize();
        self.pin.zeroize();
        self.puk.zeroize();
    }
}

impl KitSecrets {
    /// A CLOUD kit: the revocation password only.
    pub fn cloud(revocation_password: &RevocationPassword) -> KitSecrets {
        KitSecrets { revocation_password: revocation_password.expose().to_owned(), pin: None, puk: None }
    }

    /// A TOKEN kit: the revocation password and the PIN and PUK set on the token.
    pub fn token(revocation_password: &RevocationPassword, pin: String, puk: String) -> KitSecrets {
        KitSecrets { revocation_password: revocation_password.expose().to_owned(), pin: Some(pin), puk: Some(puk) }
    }

    /// Refuse malformed secrets before they are sealed (the messages never
    /// quote them): an 8-digit revocation password, a PIN of 4 to 32 and a
    /// PUK of exactly 14 printable ASCII characters.
    fn check(&self) -> Result<(), CaError> {
        RevocationPassword::parse(&self.revocation_password)?;
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if let Some(pin) = &self.pin {
            if !(4..=32).contains(&pin.len()) || !printable(pin) {
                return Err(CaError::field("PIN", "4 to 32 printable ASCII characters"));
            }
        }
        if let Some(puk) = &self.puk {
            if puk.len() != PUK_LEN || !printable(puk) {
                return Err(CaError::field("PUK", "exactly 14 printable ASCII characters"));
            }
        }
        Ok(())
    }
}

/// A PIN of 6 uniformly random digits (OS CSPRNG).
pub fn generate_pin() -> String {
    random_digits(PIN_LEN)
}

/// A PUK of 14 uniformly random digits (OS CSPRNG); see the module
/// documentation for why digits.
pub fn generate_puk() -> String {
    random_digits(PUK_LEN)
}

fn random_digits(n: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..n).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// The emailed half: a link token, shown once. Only its SHA-256 is stored.
pub struct DeliveryLink {
    /// The delivery's id (not secret: it names the row, it opens nothing).
    pub id: String,
    /// `qsd_` + 43 base64url characters; goes into the link's URL.
    pub token: SecretString,
}

impl fmt::Debug for DeliveryLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryLink").field("id", &self.id).field("token", &"redacted").finish()
    }
}

/// The printed half: 10 characters of Crockford's base32, held grouped for
/// printing (`ABCD-EFGH-JK`). Never shown by `Debug`.
#[derive(Clone)]
pub struct GenerationCode(SecretString);

impl fmt::Debug for GenerationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GenerationCode(redacted)")
    }
}

impl GenerationCode {
    fn generate() -> GenerationCode {
        let mut rng = rand::rngs::OsRng;
        let raw: Zeroizing<String> = Zeroizing::new(
            (0..CODE_LEN).filter_map(|_| CODE_ALPHABET.choose(&mut rng)).map(|&b| char::from(b)).collect(),
        );
        GenerationCode::grouped(&raw)
    }

    /// What a holder typed: case, hyphens and spaces are ignored; O reads
    /// as 0, I and L as 1. Anything else that is not 10 characters of the
    /// alphabet is refused (and is not counted as an attempt).
    pub fn parse(input: &str) -> Result<GenerationCode, CaError> {
        let mut raw = Zeroizing::new(String::with_capacity(CODE_LEN));
        for c in input.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' | '\t' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if raw.len() >= CODE_LEN || !u8::try_from(c).is_ok_and(|b| CODE_ALPHABET.contains(&b)) {
                return Err(CaError::field(
                    "generation code",
                    "the 10 letters and digits printed in the kit envelope (like ABCD-EFGH-JK)",
                ));
            }
            raw.push(c);
        }
        if raw.len() != CODE_LEN {
            return Err(CaError::field(
                "generation code",
                "the 10 letters and digits printed in the kit envelope (like ABCD-EFGH-JK)",
            ));
        }
        Ok(GenerationCode::grouped(&raw))
    }

    fn grouped(raw: &str) -> GenerationCode {
        let mut s = String::with_capacity(CODE_LEN + 2);
        for (i, c) in raw.chars().enumerate() {
            if i == 4 || i == 8 {
                s.push('-');
            }
            s.push(c);
        }
        GenerationCode(SecretString::new(s))
    }

    /// The code as printed: `ABCD-EFGH-JK`.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The 10 characters without hyphens: what is hashed.
    fn canonical(&self) -> Zeroizing<String> {
        Zeroizing::new(self.expose().chars().filter(|c| *c != '-').collect())
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for the holder's generation code.
    Pending,
    /// Three wrong codes: only an RA officer can help (a new delivery).
    Blocked,
    /// The secrets were shown once and erased.
    Retrieved,
    /// A newer delivery for the order replaced this one.
    Superseded,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Blocked => "blocked",
            DeliveryStatus::Retrieved => "retrieved",
            DeliveryStatus::Superseded => "superseded",
        }
    }

    fn of(row: &DeliveryRow) -> DeliveryStatus {
        if row.retrieved_at.is_some() {
            DeliveryStatus::Retrieved
        } else if row.superseded_at.is_some() {
            DeliveryStatus::Superseded
        } else if row.blocked_at.is_some() || row.failed_attempts >= MAX_ATTEMPTS {
            // The count alone also says blocked while a third wrong code is
            // being recorded (or if recording it was interrupted).
            DeliveryStatus::Blocked
        } else {
            DeliveryStatus::Pending
        }
    }

    /// The error a link in this state answers a reveal with.
    fn refusal(self) -> CaError {
        CaError::Conflict(
            match self {
                DeliveryStatus::Blocked => {
                    "this link is blocked after 3 wrong generation codes: report it to an RA officer, \
                     who can send you a new link"
                }
                DeliveryStatus::Retrieved => "already retrieved; the secrets were erased",
                DeliveryStatus::Superseded => "this link was replaced by a newer one: use the link in the latest email",
                DeliveryStatus::Pending => "the link changed while it was being used: try again",
            }
            .into(),
        )
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery as an RA officer sees it (no secrets, no hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySummary {
    pub id: String,
    pub serial: Option<String>,
    pub status: DeliveryStatus,
    pub failed_attempts: i64,
    pub created_at: i64,
    pub blocked_at: Option<i64>,
    pub retrieved_at: Option<i64>,
    pub superseded_at: Option<i64>,
}

/// Secret deliveries over the registry. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliveries {
    registry: Registry,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
    params: Params,
}

impl Deliveries {
    /// Codes are hashed with Argon2id at the revocation desk's default cost
    /// ([`DeskSettings::default`]: the hotline's revocation passwords).
    pub fn new(registry: Registry, vault: Arc<Vault>, clock: Arc<dyn Clock>) -> Deliveries {
        let s = DeskSettings::default();
        // Those settings are valid Argon2 parameters; were they not, the
        // crate's own default (19 MiB, t = 2, p = 1) would serve.
        let params = Params::new(s.argon2_memory_kib, s.argon2_iterations, 1, None).unwrap_or_default();
        Deliveries { registry, vault, clock, params }
    }

    /// Hash codes at `params` instead (the desk's configured cost, so
    /// `revocation.argon2_*` applies to every secret alike).
    pub fn with_cost(mut self, params: Params) -> Deliveries {
        self.params = params;
        self
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    async fn audit(&self, actor: &str, action: &str, order_id: &str, outcome: Outcome, detail: String) {
        let e = Event { actor, action, subject: order_id, outcome, detail };
        audit::record(&self.registry, self.now(), &e).await;
    }

    /// Seal `secrets` for the holder of `order_id` (and certificate
    /// `serial`, if known yet). Supersedes the order's live delivery.
    /// Returns the link token for the email and the code for the envelope;
    /// neither is stored.
    pub async fn create(
        &self,
        order_id: &str,
        serial: Option<&str>,
        secrets: &KitSecrets,
    ) -> Result<(DeliveryLink, GenerationCode), CaError> {
        if order_id.is_empty() || order_id.len() > 200 {
            return Err(CaError::field("order id", "1 to 200 characters"));
        }
        let serial = serial.map(normalize_serial).transpose()?;
        secrets.check()?;
        let (link, code) = self.insert(order_id, serial.as_deref(), secrets, None).await?;
        let what = if secrets.pin.is_some() || secrets.puk.is_some() {
            "revocation password, PIN, PUK"
        } else {
            "revocation password"
        };
        let detail = format!("delivery {} for serial {}: {what}", link.id, serial.as_deref().unwrap_or("-"));
        self.audit("ca", "delivery.create", order_id, Outcome::Success, detail).await;
        Ok((link, code))
    }

    /// A new link and code for the order's live delivery (pending or
    /// blocked), with the same secrets, by an RA officer after the holder
    /// reported a block or a lost envelope. The old link stops working.
    pub async fn reissue(&self, officer: &Operator, order_id: &str) -> Result<(DeliveryLink, GenerationCode), CaError> {
        officer.require(Role::RaOfficer)?;
        let Some((old, sealed)) = self.registry.live_delivery(order_id).await? else {
            let retrieved = self.registry.deliveries_of_order(order_id).await?.iter().any(|d| d.retrieved_at.is_some());
            return Err(if retrieved {
                CaError::Conflict(format!(
                    "the secrets of order {order_id} were already retrieved and erased; they cannot be sent again"
                ))
            } else {
                CaError::NotFound(format!("order {order_id} has no secrets waiting to be delivered"))
            });
        };
        let secrets = open_secrets(&self.vault, &old.id, &sealed)?;
        let (link, code) = self.insert(order_id, old.serial.as_deref(), &secrets, Some(&old.id)).await?;
        let detail = format!("delivery {} replaces {} ({})", link.id, old.id, DeliveryStatus::of(&old));
        self.audit(&officer.actor(), "delivery.reissue", order_id, Outcome::Success, detail).await;
        Ok((link, code))
    }

    async fn insert(
        &self,
        order_id: &str,
        serial: Option<&str>,
        secrets: &KitSecrets,
        replacing: Option<&str>,
    ) -> Result<(DeliveryLink, GenerationCode), CaError> {
        let mut rng = rand::rngs::OsRng;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let id = hex::encode(id);
        let mut raw = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *raw);
        let token = format!("{LINK_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw));
        let link_hash = hex::encode(Sha256::digest(token.as_bytes()));
        let code = GenerationCode::generate();
        let code_hash = hash_blocking(self.params.clone(), code.clone()).await?;
        let mut json = Zeroizing::new(Vec::with_capacity(128));
        serde_json::to_writer(&mut *json, secrets)
            .map_err(|_| CaError::Internal("kit secrets could not be serialised".into()))?;
        let sealed = self.vault.seal(&json, id.as_bytes())?;
        let row = NewDelivery {
            id: &id,
            order_id,
            serial,
            link_hash: &link_hash,
            code_hash: &code_hash,
            sealed: &sealed,
            created_at: self.now(),
        };
        if !self.registry.insert_delivery(&row, replacing).await? {
            return Err(CaError::Conflict(format!(
                "the deliveries of order {order_id} changed at the same time (another new link?): try again"
            )));
        }
        Ok((DeliveryLink { id, token: SecretString::new(token) }, code))
    }

    /// The delivery a link token belongs to; anything else (malformed,
    /// unknown) gives the same `NotFound`.
    async fn row(&self, token: &str) -> Result<DeliveryRow, CaError> {
        let unknown = || CaError::NotFound("unknown delivery link".into());
        let hash = link_hash(token).ok_or_else(unknown)?;
        self.registry.delivery_by_link(&hash).await?.ok_or_else(unknown)
    }

    /// Where the delivery of a link stands (for the page the link opens).
    pub async fn status(&self, token: &str) -> Result<DeliveryStatus, CaError> {
        Ok(DeliveryStatus::of(&self.row(token).await?))
    }

    /// The status and the order id of a link (the page it opens is in the
    /// order's language).
    pub async fn status_and_order(&self, token: &str) -> Result<(DeliveryStatus, String), CaError> {
        let row = self.row(token).await?;
        Ok((DeliveryStatus::of(&row), row.order_id))
    }

    /// The secrets, once, for the link's token and the envelope's code.
    pub async fn reveal(&self, token: &str, code: &GenerationCode) -> Result<KitSecrets, CaError> {
        let row = self.row(token).await?;
        let status = DeliveryStatus::of(&row);
        if status != DeliveryStatus::Pending {
            return Err(self.refuse(&row, status).await);
        }
        let Some(attempt) = self.registry.charge_delivery_attempt(&row.id, MAX_ATTEMPTS).await? else {
            return Err(self.refuse_after_change(token, &row).await);
        };
        if verify_blocking(row.code_hash.clone(), code.clone()).await? {
            let (vault, id) = (self.vault.clone(), row.id.clone());
            let retrieved = self
                .registry
                .retrieve_delivery(&row.id, self.now(), |sealed| open_secrets(&vault, &id, sealed))
                .await?;
            return match retrieved {
                Some(Ok(secrets)) => {
                    let detail = format!("delivery {}: secrets shown once and erased", row.id);
                    self.audit(HOLDER, "delivery.reveal", &row.order_id, Outcome::Success, detail).await;
                    Ok(secrets)
                }
                Some(Err(e)) => {
                    tracing::error!(delivery = %row.id, "sealed kit secrets do not open");
                    let detail = format!("delivery {}: right code, but the sealed secrets do not open", row.id);
                    self.audit(HOLDER, "delivery.reveal", &row.order_id, Outcome::Failure, detail).await;
                    Err(e)
                }
                None => Err(self.refuse_after_change(token, &row).await),
            };
        }
        let detail = format!("delivery {}: wrong generation code ({attempt} of {MAX_ATTEMPTS})", row.id);
        self.audit(HOLDER, "delivery.attempt", &row.order_id, Outcome::Failure, detail).await;
        if attempt < MAX_ATTEMPTS {
            let left = MAX_ATTEMPTS - attempt;
            let plural = if left == 1 { "" } else { "s" };
            return Err(CaError::InvalidInput(format!(
                "wrong generation code: {left} attempt{plural} left before the link is blocked"
            )));
        }
        if self.registry.block_delivery(&row.id, self.now()).await? {
            tracing::warn!(delivery = %row.id, order = %row.order_id, "secret delivery link blocked after wrong codes");
            let detail = format!("delivery {}: blocked after {MAX_ATTEMPTS} wrong generation codes", row.id);
            self.audit(HOLDER, "delivery.block", &row.order_id, Outcome::Success, detail).await;
        }
        Err(DeliveryStatus::Blocked.refusal())
    }

    /// Refuse a reveal on a link that is not pending, and audit it.
    async fn refuse(&self, row: &DeliveryRow, status: DeliveryStatus) -> CaError {
        let detail = format!("delivery {} is {status}", row.id);
        self.audit(HOLDER, "delivery.reveal", &row.order_id, Outcome::Refused, detail).await;
        status.refusal()
    }

    /// The link changed between reading it and using it: say what it is now.
    async fn refuse_after_change(&self, token: &str, before: &DeliveryRow) -> CaError {
        match self.row(token).await {
            Ok(now) => {
                let status = DeliveryStatus::of(&now);
                self.refuse(&now, status).await
            }
            Err(e) => {
                tracing::error!(delivery = %before.id, error = %e, "could not re-read a secret delivery");
                e
            }
        }
    }

    /// Every delivery of an order, oldest first, for an RA officer.
    pub async fn history(&self, officer: &Operator, order_id: &str) -> Result<Vec<DeliverySummary>, CaError> {
        officer.require(Role::RaOfficer)?;
        Ok(self
            .registry
            .deliveries_of_order(order_id)
            .await?
            .into_iter()
            .map(|r| DeliverySummary {
                status: DeliveryStatus::of(&r),
                id: r.id,
                serial: r.serial,
                failed_attempts: r.failed_attempts,
                created_at: r.created_at,
                blocked_at: r.blocked_at,
                retrieved_at: r.retrieved_at,
                superseded_at: r.superseded_at,
            })
            .collect())
    }
}

/// SHA-256 (hex) of a well-formed link token, as stored; `None` for anything else.
fn link_hash(token: &str) -> Option<String> {
    let body = token.strip_prefix(LINK_PREFIX)?;
    let well_formed =
        body.len() == TOKEN_B64_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hex::encode(Sha256::digest(token.as_bytes())))
}

/// Open a delivery's sealed secrets (associated data: its id). Errors name
/// nothing of the content.
fn open_secrets(vault: &Vault, id: &str, sealed: &[u8]) -> Result<KitSecrets, CaError> {
    let json = vault.open(sealed, id.as_bytes())?;
    // serde_json's messages may quote the input: never pass them on.
    serde_json::from_slice(&json).map_err(|_| CaError::Internal("opened kit secrets are not the expected JSON".into()))
}

async fn hash_blocking(params: Params, code: GenerationCode) -> Result<String, CaError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(code.canonical().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CaError::Internal(format!("Argon2: {e}")))
    })
    .await
    .map_err(|e| CaError::Internal(e.to_string()))?
}

/// Parameters come from the stored PHC string, so they can be raised later.
async fn verify_blocking(phc: String, code: GenerationCode) -> Result<bool, CaError> {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .is_ok_and(|h| Argon2::default().verify_password(code.canonical().as_bytes(), &h).is_ok())
    })
    .await
    .map_err(|e| CaError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_puks_are_random_digits() {
        let pin = generate_pin();
        let puk = generate_puk();
        assert_eq!(pin.len(), PIN_LEN);
        assert_eq!(puk.len(), PUK_LEN);
        assert!(pin.bytes().chain(puk.bytes()).all(|b| b.is_ascii_digit()));
        assert_ne!(generate_puk(), puk);
        // Every digit turns up in every position over enough draws.
        let draws: Vec<String> = (0..400).map(|_| generate_puk()).collect();
        for pos in 0..PUK_LEN {
            for d in b'0'..=b'9' {
                assert!(draws.iter().any(|p| p.as_bytes()[pos] == d), "digit {} at {pos}", char::from(d));
            }
        }
    }

    #[test]
    fn codes_are_grouped_and_parse_leniently() {
        let c = GenerationCode::generate();
        let shown = c.expose();
        assert_eq!(shown.len(), 12);
        assert_eq!(shown.as_bytes()[4], b'-');
        assert_eq!(shown.as_bytes()[9], b'-');
        assert!(c.canonical().bytes().all(|b| CODE_ALPHABET.contains(&b)));
        for typed in [shown.to_owned(), shown.to_lowercase(), shown.replace('-', ""), shown.replace('-', " ")] {
            assert_eq!(GenerationCode::parse(&typed).unwrap().expose(), shown, "{typed:?}");
        }
        assert_eq!(GenerationCode::parse("oil0-abcd-ef").unwrap().expose(), "0110-ABCD-EF");
        assert_ne!(GenerationCode::generate().expose(), shown);
    }

    #[test]
    fn malformed_codes_are_refused_without_quoting_them() {
        for bad in
            ["", "WXYZ-2345-6", "WXYZ-2345-678", "WXYZ-2345-6U", "WXYZ-2345-6!", "ÄXYZ-2345-67", "WXYZ\u{0}234567"]
        {
            let err = GenerationCode::parse(bad).unwrap_err().to_string();
            assert!(err.contains("generation code"), "{err}");
            if !bad.is_empty() {
                assert!(!err.contains(bad), "{err}");
            }
        }
        assert!(GenerationCode::parse(&"A".repeat(10_000)).is_err());
    }

    #[test]
    fn debug_shows_no_secret() {
        let password = RevocationPassword::parse("24681357").unwrap();
        let s = KitSecrets::token(&password, "135790".into(), "11223344556677".into());
        let shown = format!("{s:?}");
        for secret in ["24681357", "135790", "11223344556677"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("pin: Some"), "{shown}");
        let code = GenerationCode::parse("ABCD-EFGH-JK").unwrap();
        assert_eq!(format!("{code:?}"), "GenerationCode(redacted)");
        let link = DeliveryLink { id: "x".into(), token: SecretString::new("qsd_secret".into()) };
        assert!(!format!("{link:?}").contains("qsd_secret"));
    }

    #[test]
    fn kit_secrets_are_checked_before_sealing() {
        let password = RevocationPassword::generate();
        assert!(KitSecrets::cloud(&password).check().is_ok());
        assert!(KitSecrets::token(&password, generate_pin(), generate_puk()).check().is_ok());
        let mut bad = KitSecrets::cloud(&password);
        bad.revocation_password = "1234".into();
        assert!(bad.check().is_err());
        let short_puk = KitSecrets::token(&password, generate_pin(), "1234567890123".into());
        let err = short_puk.check().unwrap_err().to_string();
        assert!(err.contains("PUK") && !err.contains("1234567890123"), "{err}");
        assert!(KitSecrets::token(&password, "12 34".into(), generate_puk()).check().is_err());
    }

    #[test]
    fn sealed_secrets_open_only_for_their_row() {
        let vault = Vault::random();
        let s = KitSecrets::token(&RevocationPassword::generate(), generate_pin(), generate_puk());
        let json = serde_json::to_vec(&s).unwrap();
        let sealed = vault.seal(&json, b"row-a").unwrap();
        assert!(open_secrets(&vault, "row-a", &sealed).unwrap() == s);
        let err = open_secrets(&vault, "row-b", &sealed).unwrap_err();
        assert!(matches!(err, CaError::Internal(_)));
        let junk = vault.seal(br#"{"revocation_password":"12345678","extra":"77777777"}"#, b"row-a").unwrap();
        let err = open_secrets(&vault, "row-a", &junk).unwrap_err().to_string();
        assert!(!err.contains("77777777") && !err.contains("12345678"), "{err}");
    }

    #[test]
    fn link_tokens_must_be_well_formed() {
        let token = format!("{LINK_PREFIX}{}", "A".repeat(TOKEN_B64_LEN));
        assert_eq!(link_hash(&token).map(|h| h.len()), Some(64));
        for bad in [
            String::new(),
            "qsd_".into(),
            format!("qsd_{}", "A".repeat(42)),
            format!("qsd_{}", "A".repeat(44)),
            format!("qcop_{}", "A".repeat(43)),
            format!("qsd_{}=", "A".repeat(42)),
            format!("qsd_{}é", "A".repeat(41)),
        ] {
            assert_eq!(link_hash(&bad), None, "{bad:?}");
        }
    }
}
