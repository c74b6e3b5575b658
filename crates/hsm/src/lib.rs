//! PKCS#11 signer for qcert.
//!
//! Everything that speaks PKCS#11 lives here, and nothing else in qcert does.
//! The crate owns:
//! - the one `Pkcs11` context per process and module ([`module`]), initialised
//!   with OS locking so several threads may call into the library at once;
//! - an [`Hsm`]: one token, one logged-in *anchor* session and a pool of
//!   worker sessions (a `Session` is not `Sync`, so a call checks one out,
//!   uses it alone and puts it back);
//! - key pairs made on the token: sensitive, non-extractable, sign-only
//!   ([`Hsm::generate_key`]), found by label ([`Hsm::find_key`]);
//! - signing ([`Hsm::sign`]) with ECDSA (hashed here with `sha2`, the raw
//!   `r||s` turned into DER) and RSA PKCS#1 v1.5 / PSS.
//!
//! Holder keys (CLOUD certificates, labels `holder-…`, [`HOLDER_KEY_PREFIX`])
//! live in their own key space: [`Hsm::generate_key`] and [`Hsm::find_key`]
//! refuse those labels, so no [`KeyRef`] (and so no [`Hsm::sign`]) ever
//! reaches a holder key. They are made by [`Hsm::generate_holder_key`],
//! read as public keys by [`Hsm::holder_public_key`], and signed with only
//! through a [`HolderKey`] from [`Hsm::find_holder_key`] and
//! [`Hsm::sign_holder_digest`], which qcert calls from one place
//! (`qcert_ca_core::csc`, after checking the signature activation data).
//!
//! A lost session or a removed token is reported as [`HsmError::Disconnected`];
//! the next call opens new sessions and logs in again.

mod algorithm;
mod error;
pub mod softhsm;
mod token;

pub use algorithm::{KeyAlgorithm, SignatureAlgorithm};
pub use error::HsmError;
pub use token::{init_token, module};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, CertificateType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use secrecy::SecretString;
use sha2::Digest;

/// The label prefix of holder keys (CLOUD certificates): their own key space.
pub const HOLDER_KEY_PREFIX: &str = "holder-";

fn is_holder_label(label: &str) -> bool {
    label.starts_with(HOLDER_KEY_PREFIX)
}

/// Digests a holder key signs (`signHash`: the client hashed the document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgorithm {
    /// Octets of a digest.
    pub fn octets(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 => 32,
            DigestAlgorithm::Sha384 => 48,
            DigestAlgorithm::Sha512 => 64,
        }
    }

    /// The DER DigestInfo prefix (RFC 8017 §9.2 note 1) for PKCS#1 v1.5.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            DigestAlgorithm::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            DigestAlgorithm::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
            DigestAlgorithm::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        }
    }
}

/// A holder's key pair (CLOUD), found by [`Hsm::find_holder_key`]. It signs
/// only through [`Hsm::sign_holder_digest`]; it is not a [`KeyRef`].
#[derive(Debug)]
pub struct HolderKey(KeyRef);

impl HolderKey {
    pub fn label(&self) -> &str {
        self.0.label()
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.0.algorithm()
    }

    pub fn spki_der(&self) -> &[u8] {
        self.0.spki_der()
    }
}

/// Where the token is and how to log in to it.
///
/// The PIN never comes from a configuration file: the caller reads it from an
/// environment variable or a file and hands it over here. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct HsmConfig {
    /// Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// Label of the token holding qcert's keys.
    pub token_label: String,
    /// User PIN of that token.
    pub pin: SecretString,
}

/// What the module reports about the token (for key ceremony reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFacts {
    pub label: String,
    pub manufacturer: String,
    pub model: String,
    pub serial_number: String,
    pub firmware_version: String,
    pub hardware_version: String,
}

/// A key pair on the token, looked up once and then used for every signature.
#[derive(Debug)]
pub struct KeyRef {
    label: String,
    algorithm: KeyAlgorithm,
    spki_der: Vec<u8>,
    /// Private key handle and the connection generation it was found in.
    handle: Mutex<(u64, ObjectHandle)>,
}

impl KeyRef {
    /// The label the key pair carries on the token.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Algorithm and size of the key pair.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// DER of the public key's SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// A connection to one token, safe to share between threads.
#[derive(Clone, Debug)]
pub struct Hsm {
    inner: Arc<Inner>,
}

struct Inner {
    pkcs11: Pkcs11,
    token_label: String,
    pin: SecretString,
    conn: Mutex<Conn>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hsm").field("token_label", &self.token_label).finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Conn {
    /// Bumped on every (re)connection; key handles from older generations are looked up again.
    generation: u64,
    slot: Option<Slot>,
    /// Logged-in session kept open for the life of the connection: the login belongs to the token.
    anchor: Option<Session>,
    idle: Vec<Session>,
}

/// A worker session checked out of the pool.
struct Lease<'a> {
    hsm: &'a Hsm,
    generation: u64,
    session: Option<Session>,
}

impl Lease<'_> {
    fn session(&self) -> &Session {
        // Present from checkout until drop.
        match &self.session {
            Some(s) => s,
            None => unreachable!("lease used after release"),
        }
    }

    /// Classify an error; a connection-level one tears the connection down so that
    /// the next call reconnects.
    fn fail(mut self, op: &'static str, err: cryptoki::error::Error) -> HsmError {
        let err = HsmError::from_pkcs11(op, err);
        if err.is_disconnect() {
            self.session = None;
            self.hsm.disconnect(self.generation);
        }
        err
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let mut conn = self.hsm.lock();
            if conn.generation == self.generation && conn.anchor.is_some() {
                conn.idle.push(session);
            }
        }
    }
}

impl Hsm {
    /// Open the token and log in. A wrong PIN is [`HsmError::PinIncorrect`].
    pub fn open(config: &HsmConfig) -> Result<Hsm, HsmError> {
        let pkcs11 = module(&config.module)?;
        let hsm = Hsm {
            inner: Arc::new(Inner {
                pkcs11,
                token_label: config.token_label.clone(),
                pin: config.pin.clone(),
                conn: Mutex::new(Conn::default()),
            }),
        };
        drop(hsm.checkout()?);
        Ok(hsm)
    }

    /// Label of the token this connection uses.
    pub fn token_label(&self) -> &str {
        &self.inner.token_label
    }

    /// Manufacturer, model, serial number and firmware of the token, as the
    /// module reports them (`C_GetTokenInfo`).
    pub fn token_facts(&self) -> Result<TokenFacts, HsmError> {
        let lease = self.checkout()?;
        let slot = self.slot().ok_or(HsmError::Disconnected("no slot".into()))?;
        let info = match self.inner.pkcs11.get_token_info(slot) {
            Ok(i) => i,
            Err(e) => return Err(lease.fail("get token info", e)),
        };
        drop(lease);
        Ok(TokenFacts {
            label: info.label().trim_end().to_owned(),
            manufacturer: info.manufacturer_id().trim_end().to_owned(),
            model: info.model().trim_end().to_owned(),
            serial_number: info.serial_number().trim_end().to_owned(),
            firmware_version: info.firmware_version().to_string(),
            hardware_version: info.hardware_version().to_string(),
        })
    }

    /// The `Pkcs11` context behind this connection (shared by the whole process).
    pub fn pkcs11(&self) -> &Pkcs11 {
        &self.inner.pkcs11
    }

    /// The slot currently holding the token, if connected.
    pub fn slot(&self) -> Option<Slot> {
        self.lock().slot
    }

    fn lock(&self) -> MutexGuard<'_, Conn> {
        // A panic while holding this lock cannot leave `Conn` half-updated in a
        // way that matters: at worst a session is lost and we reconnect.
        self.inner.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn disconnect(&self, generation: u64) {
        let mut conn = self.lock();
        if conn.generation == generation && conn.anchor.is_some() {
            tracing::warn!(token = %self.inner.token_label, "HSM connection lost; reconnecting on next use");
            conn.idle.clear();
            conn.anchor = None;
            conn.slot = None;
        }
    }

    fn connect(&self, conn: &mut Conn) -> Result<(), HsmError> {
        let pkcs11 = &self.inner.pkcs11;
        let slot = token::find_slot(pkcs11, &self.inner.token_label)?;
        let anchor = pkcs11.open_rw_session(slot).map_err(|e| HsmError::from_pkcs11("open session", e))?;
        match anchor.login(UserType::User, Some(&self.inner.pin)) {
            Ok(()) => {}
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(HsmError::from_pkcs11("login", e)),
        }
        conn.generation += 1;
        conn.slot = Some(slot);
        conn.anchor = Some(anchor);
        conn.idle.clear();
        tracing::debug!(token = %self.inner.token_label, generation = conn.generation, "HSM connected");
        Ok(())
    }

    fn checkout(&self) -> Result<Lease<'_>, HsmError> {
        let mut conn = self.lock();
        if conn.anchor.is_none() {
            self.connect(&mut conn)?;
        }
        let generation = conn.generation;
        let session = match conn.idle.pop() {
            Some(s) => s,
            None => {
                let slot = conn.slot.ok_or(HsmError::Disconnected("no slot".into()))?;
                drop(conn);
                match self.inner.pkcs11.open_rw_session(slot) {
                    Ok(s) => s,
                    Err(e) => {
                        let err = HsmError::from_pkcs11("open session", e);
                        if err.is_disconnect() {
                            self.disconnect(generation);
                        }
                        return Err(err);
                    }
                }
            }
        };
        Ok(Lease { hsm: self, generation, session: Some(session) })
    }

    /// Generate a key pair on the token: private key sensitive, non-extractable
    /// and sign-only; public key verify-only. Refuses a label already in use.
    /// Holder labels (`holder-…`) are refused: see [`Hsm::generate_holder_key`].
    pub fn generate_key(&self, label: &str, algorithm: KeyAlgorithm) -> Result<KeyRef, HsmError> {
        if is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        self.generate_any(label, algorithm)
    }

    /// Generate a holder's key pair (CLOUD) under a `holder-…` label, with
    /// the same attributes as [`Hsm::generate_key`]. Returns only the
    /// public key (SPKI DER): signing needs [`Hsm::find_holder_key`].
    pub fn generate_holder_key(&self, label: &str, algorithm: KeyAlgorithm) -> Result<Vec<u8>, HsmError> {
        if !is_holder_label(label) || label.len() <= HOLDER_KEY_PREFIX.len() {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        Ok(self.generate_any(label, algorithm)?.spki_der)
    }

    /// The public key (SPKI DER) of a holder's key pair.
    pub fn holder_public_key(&self, label: &str) -> Result<Vec<u8>, HsmError> {
        if !is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        Ok(self.find_any(label)?.spki_der)
    }

    /// A holder's key pair, to sign with through [`Hsm::sign_holder_digest`].
    /// Called by one module of qcert (`qcert_ca_core::csc`), after it
    /// checked the holder's signature activation data.
    pub fn find_holder_key(&self, label: &str) -> Result<HolderKey, HsmError> {
        if !is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        Ok(HolderKey(self.find_any(label)?))
    }

    /// Sign a digest the client computed (CSC `signHash`) with a holder
    /// key: ECDSA over the digest (`CKM_ECDSA`, answered DER-encoded), RSA
    /// PKCS#1 v1.5 over its DigestInfo (`CKM_RSA_PKCS`).
    pub fn sign_holder_digest(
        &self,
        key: &HolderKey,
        digest_algorithm: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        self.sign_digest(&key.0, digest_algorithm, digest)
    }

    /// Sign a digest computed by the caller with a service key (a CMS
    /// SignedData's signed attributes, hashed with its digestAlgorithm): ECDSA
    /// over the digest (answered DER-encoded), RSA PKCS#1 v1.5 over its
    /// DigestInfo. Holder keys are not `KeyRef`s, so they never get here.
    pub fn sign_digest(
        &self,
        key: &KeyRef,
        digest_algorithm: DigestAlgorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, HsmError> {
        if digest.len() != digest_algorithm.octets() {
            return Err(HsmError::Encoding(format!(
                "a {digest_algorithm:?} digest has {} octets, not {}",
                digest_algorithm.octets(),
                digest.len()
            )));
        }
        let (mechanism, input) = match key.algorithm {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => (Mechanism::Ecdsa, digest.to_vec()),
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                let mut info = digest_algorithm.digest_info_prefix().to_vec();
                info.extend_from_slice(digest);
                (Mechanism::RsaPkcs, info)
            }
        };
        self.sign_raw(key, &mechanism, &input)
    }

    fn generate_any(&self, label: &str, algorithm: KeyAlgorithm) -> Result<KeyRef, HsmError> {
        if label.is_empty() {
            return Err(HsmError::InvalidLabel);
        }
        let lease = self.checkout()?;
        let existing = match find_objects(lease.session(), label, ObjectClass::PRIVATE_KEY) {
            Ok(v) => v,
            Err(e) => return Err(lease.fail("find objects", e)),
        };
        if !existing.is_empty() {
            return Err(HsmError::KeyExists(label.to_owned()));
        }
        let id = label.as_bytes().to_vec();
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Label(id.clone()),
            Attribute::Id(id.clone()),
        ];
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(id.clone()),
            Attribute::Id(id),
        ];
        let mechanism = match algorithm {
            KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
                let params = algorithm
                    .curve_oid()
                    .map(|oid| oid.to_der())
                    .transpose()
                    .map_err(HsmError::encoding)?
                    .unwrap_or_default();
                public.push(Attribute::EcParams(params));
                Mechanism::EccKeyPairGen
            }
            KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                public.push(Attribute::ModulusBits(algorithm.rsa_bits().into()));
                public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        let (pub_handle, priv_handle) = match lease.session().generate_key_pair(&mechanism, &public, &private) {
            Ok(pair) => pair,
            Err(e) => return Err(lease.fail("generate key pair", e)),
        };
        let spki_der = match read_spki(lease.session(), pub_handle, algorithm) {
            Ok(spki) => spki,
            Err(ReadError::Pkcs11(e)) => return Err(lease.fail("read public key", e)),
            Err(ReadError::Other(e)) => return Err(e),
        };
        tracing::info!(label, ?algorithm, "generated key pair on the HSM");
        Ok(KeyRef { label: label.to_owned(), algorithm, spki_der, handle: Mutex::new((lease.generation, priv_handle)) })
    }

    /// Find a key pair by label. [`HsmError::KeyNotFound`] when there is none.
    /// Holder labels (`holder-…`) are refused: see [`Hsm::find_holder_key`].
    pub fn find_key(&self, label: &str) -> Result<KeyRef, HsmError> {
        if is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        self.find_any(label)
    }

    fn find_any(&self, label: &str) -> Result<KeyRef, HsmError> {
        let lease = self.checkout()?;
        let (priv_handle, pub_handle) = match find_pair(lease.session(), label) {
            Ok(Some(pair)) => pair,
            Ok(None) => return Err(HsmError::KeyNotFound(label.to_owned())),
            Err(e) => return Err(lease.fail("find objects", e)),
        };
        let algorithm = match key_algorithm(lease.session(), pub_handle) {
            Ok(alg) => alg,
            Err(ReadError::Pkcs11(e)) => return Err(lease.fail("read key attributes", e)),
            Err(ReadError::Other(e)) => return Err(e),
        };
        let spki_der = match read_spki(lease.session(), pub_handle, algorithm) {
            Ok(spki) => spki,
            Err(ReadError::Pkcs11(e)) => return Err(lease.fail("read public key", e)),
            Err(ReadError::Other(e)) => return Err(e),
        };
        Ok(KeyRef { label: label.to_owned(), algorithm, spki_der, handle: Mutex::new((lease.generation, priv_handle)) })
    }

    /// Sign `data` with `key`. ECDSA signatures come back DER-encoded
    /// (`Ecdsa-Sig-Value`), RSA signatures as the raw octets.
    pub fn sign(&self, key: &KeyRef, algorithm: SignatureAlgorithm, data: &[u8]) -> Result<Vec<u8>, HsmError> {
        if !algorithm.fits(key.algorithm) {
            return Err(HsmError::AlgorithmMismatch { key: key.algorithm, signature: algorithm });
        }
        let (mechanism, input): (Mechanism<'_>, Vec<u8>) = match algorithm {
            SignatureAlgorithm::EcdsaSha256 => (Mechanism::Ecdsa, sha2::Sha256::digest(data).to_vec()),
            SignatureAlgorithm::EcdsaSha384 => (Mechanism::Ecdsa, sha2::Sha384::digest(data).to_vec()),
            SignatureAlgorithm::RsaPkcs1Sha256 => (Mechanism::Sha256RsaPkcs, data.to_vec()),
            SignatureAlgorithm::RsaPkcs1Sha384 => (Mechanism::Sha384RsaPkcs, data.to_vec()),
            SignatureAlgorithm::RsaPssSha256 => (
                Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA256,
                    mgf: PkcsMgfType::MGF1_SHA256,
                    s_len: 32.into(),
                }),
                data.to_vec(),
            ),
            SignatureAlgorithm::RsaPssSha384 => (
                Mechanism::Sha384RsaPkcsPss(PkcsPssParams {
                    hash_alg: MechanismType::SHA384,
                    mgf: PkcsMgfType::MGF1_SHA384,
                    s_len: 48.into(),
                }),
                data.to_vec(),
            ),
        };
        self.sign_raw(key, &mechanism, &input)
    }

    /// Store an X.509 certificate object (`CKO_CERTIFICATE`, public) next
    /// to the key pair labelled `label`: same `CKA_LABEL` and `CKA_ID`, so
    /// signing tools (pyHanko, browsers, Adobe) pair them. `subject_der` is
    /// the certificate's subject Name (PKCS#11 wants it as an attribute;
    /// this crate does not parse certificates). Refuses a label without a
    /// key pair, and a second certificate under the same label.
    pub fn store_certificate(&self, label: &str, der: &[u8], subject_der: &[u8]) -> Result<(), HsmError> {
        if is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        let lease = self.checkout()?;
        match find_pair(lease.session(), label) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(HsmError::KeyNotFound(label.to_owned())),
            Err(e) => return Err(lease.fail("find objects", e)),
        }
        match find_objects(lease.session(), label, ObjectClass::CERTIFICATE) {
            Ok(v) if v.is_empty() => {}
            Ok(_) => return Err(HsmError::KeyExists(format!("{label} (certificate)"))),
            Err(e) => return Err(lease.fail("find objects", e)),
        }
        let template = [
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(label.as_bytes().to_vec()),
            Attribute::Subject(subject_der.to_vec()),
            Attribute::Value(der.to_vec()),
        ];
        if let Err(e) = lease.session().create_object(&template) {
            return Err(lease.fail("create certificate object", e));
        }
        tracing::info!(label, "stored a certificate object on the token");
        Ok(())
    }

    /// Every X.509 certificate object on the token, as (label, DER).
    pub fn certificates(&self) -> Result<Vec<(String, Vec<u8>)>, HsmError> {
        let lease = self.checkout()?;
        let handles = match lease.session().find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE)]) {
            Ok(h) => h,
            Err(e) => return Err(lease.fail("find objects", e)),
        };
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            let attrs = match lease.session().get_attributes(h, &[AttributeType::Label, AttributeType::Value]) {
                Ok(a) => a,
                Err(e) => return Err(lease.fail("read certificate object", e)),
            };
            let (mut label, mut value) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = Some(String::from_utf8_lossy(&l).into_owned()),
                    Attribute::Value(v) => value = Some(v),
                    _ => {}
                }
            }
            if let (Some(l), Some(v)) = (label, value) {
                out.push((l, v));
            }
        }
        Ok(out)
    }

    /// The labels of the key pairs on the token (private keys; holder
    /// keys, `holder-…`, left out).
    pub fn key_labels(&self) -> Result<Vec<String>, HsmError> {
        let lease = self.checkout()?;
        let handles = match lease.session().find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]) {
            Ok(h) => h,
            Err(e) => return Err(lease.fail("find objects", e)),
        };
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            match lease.session().get_attributes(h, &[AttributeType::Label]) {
                Ok(attrs) => out.extend(attrs.into_iter().filter_map(|a| match a {
                    Attribute::Label(l) => Some(String::from_utf8_lossy(&l).into_owned()),
                    _ => None,
                })),
                Err(e) => return Err(lease.fail("read key label", e)),
            }
        }
        out.retain(|l| !is_holder_label(l));
        Ok(out)
    }

    /// Delete the certificate objects labelled `label` (not the key pair).
    /// Returns how many were deleted.
    pub fn delete_certificates(&self, label: &str) -> Result<usize, HsmError> {
        if is_holder_label(label) {
            return Err(HsmError::WrongKeySpace(label.to_owned()));
        }
        let lease = self.checkout()?;
        let handles = match find_objects(lease.session(), label, ObjectClass::CERTIFICATE) {
            Ok(h) => h,
            Err(e) => return Err(lease.fail("find objects", e)),
        };
        for h in &handles {
            if let Err(e) = lease.session().destroy_object(*h) {
                return Err(lease.fail("delete certificate object", e));
            }
        }
        tracing::info!(label, deleted = handles.len(), "deleted certificate objects from the token");
        Ok(handles.len())
    }

    /// One signature with `key`'s private key; ECDSA's `r||s` comes back DER.
    fn sign_raw(&self, key: &KeyRef, mechanism: &Mechanism<'_>, input: &[u8]) -> Result<Vec<u8>, HsmError> {
        let lease = self.checkout()?;
        let handle = {
            let mut cached = key.handle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cached.0 != lease.generation {
                match find_pair(lease.session(), &key.label) {
                    Ok(Some((h, _))) => *cached = (lease.generation, h),
                    Ok(None) => return Err(HsmError::KeyNotFound(key.label.clone())),
                    Err(e) => return Err(lease.fail("find objects", e)),
                }
            }
            cached.1
        };
        let raw = match lease.session().sign(mechanism, handle, input) {
            Ok(sig) => sig,
            Err(e) => return Err(lease.fail("sign", e)),
        };
        drop(lease);
        algorithm::encode_signature(key.algorithm, raw)
    }
}

fn find_objects(session: &Session, label: &str, class: ObjectClass) -> cryptoki::error::Result<Vec<ObjectHandle>> {
    session.find_objects(&[Attribute::Class(class), Attribute::Label(label.as_bytes().to_vec())])
}

/// (private, public) handles of the pair labelled `label`.
fn find_pair(session: &Session, label: &str) -> cryptoki::error::Result<Option<(ObjectHandle, ObjectHandle)>> {
    let private = find_objects(session, label, ObjectClass::PRIVATE_KEY)?;
    let public = find_objects(session, label, ObjectClass::PUBLIC_KEY)?;
    Ok(match (private.first(), public.first()) {
        (Some(p), Some(q)) => Some((*p, *q)),
        _ => None,
    })
}

enum ReadError {
    Pkcs11(cryptoki::error::Error),
    Other(HsmError),
}

impl From<cryptoki::error::Error> for ReadError {
    fn from(e: cryptoki::error::Error) -> Self {
        ReadError::Pkcs11(e)
    }
}

impl From<HsmError> for ReadError {
    fn from(e: HsmError) -> Self {
        ReadError::Other(e)
    }
}

fn key_algorithm(session: &Session, public: ObjectHandle) -> Result<KeyAlgorithm, ReadError> {
    let attrs = session.get_attributes(public, &[AttributeType::KeyType])?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    match key_type {
        Some(KeyType::EC) => {
            let attrs = session.get_attributes(public, &[AttributeType::EcParams])?;
            let params = attrs.iter().find_map(|a| match a {
                Attribute::EcParams(p) => Some(p.clone()),
                _ => None,
            });
            let oid = params
                .and_then(|p| ObjectIdentifier::from_der(&p).ok())
                .ok_or_else(|| HsmError::UnsupportedKey("EC key without named curve".into()))?;
            KeyAlgorithm::from_curve_oid(&oid).ok_or_else(|| HsmError::UnsupportedKey(format!("EC curve {oid}")).into())
        }
        Some(KeyType::RSA) => {
            let attrs = session.get_attributes(public, &[AttributeType::Modulus])?;
            let bits = attrs
                .iter()
                .find_map(|a| match a {
                    Attribute::Modulus(m) => Some(m.iter().skip_while(|b| **b == 0).count() * 8),
                    _ => None,
                })
                .unwrap_or(0);
            KeyAlgorithm::from_rsa_bits(bits).ok_or_else(|| HsmError::UnsupportedKey(format!("RSA-{bits}")).into())
        }
        other => Err(HsmError::UnsupportedKey(format!("key type {other:?}")).into()),
    }
}

fn read_spki(session: &Session, public: ObjectHandle, algorithm: KeyAlgorithm) -> Result<Vec<u8>, ReadError> {
    match algorithm {
        KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384 => {
            let attrs = session.get_attributes(public, &[AttributeType::EcPoint])?;
            let point = attrs
                .iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p.clone()),
                    _ => None,
                })
                .ok_or_else(|| HsmError::UnsupportedKey("EC public key without CKA_EC_POINT".into()))?;
            // CKA_EC_POINT is a DER OCTET STRING around the SEC1 point.
            let point = OctetString::from_der(&point).map_err(HsmError::encoding)?;
            Ok(algorithm::ec_spki(algorithm, point.as_bytes())?)
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
            let attrs = session.get_attributes(public, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
            let mut n = None;
            let mut e = None;
            for a in attrs {
                match a {
                    Attribute::Modulus(m) => n = Some(m),
                    Attribute::PublicExponent(x) => e = Some(x),
                    _ => {}
                }
            }
            match (n, e) {
                (Some(n), Some(e)) => Ok(algorithm::rsa_spki(&n, &e)?),
                _ => Err(HsmError::UnsupportedKey("RSA public key without modulus".into()).into()),
            }
        }
    }
}
