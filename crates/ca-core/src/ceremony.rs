//! Key ceremonies, one object each (after Boulder's `cmd/ceremony`): the
//! root (key + self-signed certificate, on the root token), an issuing CA
//! (certificate signed on the root token for a key made on the online
//! token, known here by its public key), the OCSP responder (key and
//! certificate on the online token, under the issuing CA) and the ARL (the
//! root's CRL, on the root token). Every one refuses to replace what exists,
//! checks that the HSM key it signs with matches the certificate it is
//! about to use, and lints the TBS before anything is signed.
//!
//! Files, configuration and reports are the caller's (the portal's
//! `qcert ceremony`); this module is the signing part.

use der::{Decode, Encode};
use qcert_hsm::{Hsm, HsmError, KeyAlgorithm};
use sha2::Digest;
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;

use crate::ca::{self, Meta};
use crate::clock::{add_years, Clock};
use crate::conformance::{self, CaCertKind};
use crate::error::CaError;
use crate::policy::{CaKeySpec, Policy};
use crate::signer::CaSigner;
use crate::store::{CaKeyRecord, CertKind, CrlRecord, Registry};

/// What a ceremony report says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub label: String,
    pub algorithm: &'static str,
    pub size_bits: u32,
    /// SHA-256 of the SubjectPublicKeyInfo DER, lower-case hex.
    pub spki_sha256: String,
}

impl KeyFacts {
    pub fn new(label: &str, algorithm: KeyAlgorithm, spki_der: &[u8]) -> KeyFacts {
        KeyFacts {
            label: label.to_owned(),
            algorithm: algorithm.name(),
            size_bits: algorithm.size_bits(),
            spki_sha256: hex::encode(sha2::Sha256::digest(spki_der)),
        }
    }
}

/// A certificate a ceremony made.
#[derive(Debug, Clone)]
pub struct Certified {
    pub serial: String,
    pub der: Vec<u8>,
    /// The subject key.
    pub key: KeyFacts,
    /// The key that signed it (the subject key for the root).
    pub signed_with: KeyFacts,
}

fn facts_of(signer: &CaSigner) -> KeyFacts {
    KeyFacts::new(signer.key_label(), signer.key_algorithm(), signer.spki_der())
}

async fn refuse_existing_role(registry: &Registry, role: &str) -> Result<(), CaError> {
    if let Some(rec) = registry.ca_key(role).await? {
        return Err(CaError::AlreadyInitialised(format!(
            "the registry already has a {role} key ({:?}, certificate {})",
            rec.key_label, rec.certificate_serial
        )));
    }
    Ok(())
}

fn refuse_existing_key(hsm: &Hsm, label: &str) -> Result<(), CaError> {
    match hsm.find_key(label) {
        Ok(_) => {
            Err(CaError::AlreadyInitialised(format!("key {label:?} already exists on token {:?}", hsm.token_label())))
        }
        Err(HsmError::KeyNotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn record_role(
    registry: &Registry,
    role: &str,
    label: &str,
    alg: KeyAlgorithm,
    serial: &str,
    now: i64,
) -> Result<(), CaError> {
    let rec = CaKeyRecord {
        role: role.into(),
        key_label: label.into(),
        key_algorithm: alg.name().into(),
        certificate_serial: serial.into(),
    };
    Ok(registry.put_ca_key(&rec, now).await?)
}

/// Check before a ceremony generates anything: no `role` in the registry and
/// no key `label` on `hsm`.
pub async fn refuse_existing(hsm: &Hsm, registry: &Registry, role: &str, label: &str) -> Result<(), CaError> {
    refuse_existing_role(registry, role).await?;
    refuse_existing_key(hsm, label)
}

/// The root ceremony, on the root token `hsm`: a new key, the self-signed
/// certificate (linted first), recorded as the registry's root.
pub async fn root(
    hsm: &Hsm,
    registry: &Registry,
    policy: &Policy,
    spec: &CaKeySpec,
    clock: &dyn Clock,
) -> Result<Certified, CaError> {
    refuse_existing(hsm, registry, "root", &spec.key_label).await?;
    let now = clock.now();
    let key = hsm.generate_key(&spec.key_label, spec.key_algorithm)?;
    let signer = CaSigner::new(hsm.clone(), key)?;
    let tbs = ca::root_tbs(policy, spec, &signer, now)?;
    conformance::check_ca_certificate(&tbs, CaCertKind::Root, None)?;
    let facts = facts_of(&signer);
    let meta = meta(CertKind::RootCa, "root-ca", &spec.key_label);
    let der = ca::sign_and_store(registry, clock, &signer, tbs, None, &meta).await?;
    let a = ca::authority(Some(signer), der)?;
    record_role(registry, "root", &spec.key_label, spec.key_algorithm, a.serial(), now.unix_timestamp()).await?;
    tracing::info!(serial = %a.serial(), "root ceremony: root certificate made");
    Ok(Certified { serial: a.serial().to_owned(), der: a.der().to_vec(), key: facts.clone(), signed_with: facts })
}

/// The issuing-CA ceremony's signing half, on the root token `root_hsm`:
/// certify the public key `subject_spki_der` (made on the online token as
/// `spec.key_label`) as the issuing CA, after checking the root key on the
/// token matches the registry's root certificate and linting the TBS.
pub async fn issuing_ca(
    root_hsm: &Hsm,
    registry: &Registry,
    policy: &Policy,
    spec: &CaKeySpec,
    subject_spki_der: &[u8],
    rollover: bool,
    clock: &dyn Clock,
) -> Result<Certified, CaError> {
    let retiring = if rollover {
        let issuing = registry.ca_key("issuing").await?.ok_or_else(|| {
            CaError::InvalidInput("rollover: there is no issuing CA to replace; run without rollover".into())
        })?;
        let ocsp = registry.ca_key("ocsp").await?.ok_or_else(|| {
            CaError::InvalidInput(
                "rollover: the current issuing CA has no OCSP responder; run ocsp-responder first".into(),
            )
        })?;
        let generation = i64::try_from(registry.retired_issuing_cas().await?.len()).unwrap_or(i64::MAX - 1) + 1;
        Some(crate::store::RetiredCa {
            generation,
            issuing_serial: issuing.certificate_serial,
            issuing_key_label: issuing.key_label,
            ocsp_serial: ocsp.certificate_serial,
            ocsp_key_label: ocsp.key_label,
        })
    } else {
        refuse_existing_role(registry, "issuing").await?;
        None
    };
    let root = ca::load_authority(root_hsm, registry, "root", true).await?;
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_spki_der).map_err(CaError::encoding)?;
    let key = KeyFacts::new(&spec.key_label, key_algorithm_of(&spki)?, subject_spki_der);
    if key.algorithm != spec.key_algorithm.name() {
        return Err(CaError::InvalidInput(format!(
            "the online key is {}, the configuration asks for {}",
            key.algorithm, spec.key_algorithm
        )));
    }
    let now = clock.now();
    let tbs = ca::issuing_tbs(policy, spec, &root, spki, now)?;
    conformance::check_ca_certificate(&tbs, CaCertKind::Issuing, Some(root.cert()))?;
    let meta = meta(CertKind::IssuingCa, "issuing-ca", &spec.key_label);
    let der = ca::sign_and_store(registry, clock, root.signer()?, tbs, Some(&root.serial().to_owned()), &meta).await?;
    let a = ca::authority(None, der)?;
    match retiring {
        None => {
            record_role(registry, "issuing", &spec.key_label, spec.key_algorithm, a.serial(), now.unix_timestamp())
                .await?;
        }
        Some(old) => {
            let rec = CaKeyRecord {
                role: "issuing".into(),
                key_label: spec.key_label.clone(),
                key_algorithm: spec.key_algorithm.name().into(),
                certificate_serial: a.serial().to_owned(),
            };
            registry.roll_over_issuing(&old, &rec, now.unix_timestamp()).await?;
            tracing::info!(
                retired = %old.issuing_serial,
                generation = old.generation + 1,
                "rollover: the previous issuing CA is retired (its CRL and OCSP go on); \
                 run the ocsp-responder ceremony for the new CA"
            );
        }
    }
    tracing::info!(serial = %a.serial(), "issuing-ca ceremony: issuing CA certified by the root");
    Ok(Certified { serial: a.serial().to_owned(), der: a.der().to_vec(), key, signed_with: facts_of(root.signer()?) })
}

/// The OCSP-responder ceremony, on the online token `hsm`: a new key and
/// its delegated-responder certificate under the issuing CA. With a
/// responder already recorded it is a renewal: the new key (a new label)
/// and certificate replace the old in the registry, which stays valid
/// until it expires, so servers switch at their next start without a gap.
pub async fn ocsp_responder(
    hsm: &Hsm,
    registry: &Registry,
    policy: &Policy,
    spec: &CaKeySpec,
    clock: &dyn Clock,
) -> Result<Certified, CaError> {
    refuse_existing_key(hsm, &spec.key_label)?;
    let issuing = ca::load_authority(hsm, registry, "issuing", true).await?;
    let now = clock.now();
    let key = hsm.generate_key(&spec.key_label, spec.key_algorithm)?;
    let signer = CaSigner::new(hsm.clone(), key)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(signer.spki_der()).map_err(CaError::encoding)?;
    let tbs = ca::ocsp_tbs(policy, spec, &issuing, spki, now)?;
    conformance::check_ca_certificate(&tbs, CaCertKind::OcspResponder, Some(issuing.cert()))?;
    let meta = meta(CertKind::OcspResponder, "ocsp-responder", &spec.key_label);
    let der =
        ca::sign_and_store(registry, clock, issuing.signer()?, tbs, Some(&issuing.serial().to_owned()), &meta).await?;
    let a = ca::authority(None, der)?;
    let rec = CaKeyRecord {
        role: "ocsp".into(),
        key_label: spec.key_label.clone(),
        key_algorithm: spec.key_algorithm.name().into(),
        certificate_serial: a.serial().to_owned(),
    };
    if registry.ca_key("ocsp").await?.is_some() {
        registry.replace_ca_key(&rec, now.unix_timestamp()).await?;
        tracing::info!(serial = %a.serial(), "ocsp-responder ceremony: responder renewed");
    } else {
        registry.put_ca_key(&rec, now.unix_timestamp()).await?;
        tracing::info!(serial = %a.serial(), "ocsp-responder ceremony: responder certified");
    }
    Ok(Certified {
        serial: a.serial().to_owned(),
        der: a.der().to_vec(),
        key: facts_of(&signer),
        signed_with: facts_of(issuing.signer()?),
    })
}

/// The seal or TSA ceremony, on the online token `hsm`: a new key and its
/// certificate from the issuing CA (checked against its certificate), linted
/// first; stored as an end-entity certificate of profile `qtsp-seal` or
/// `tsa` carrying the key's label. (Who uses them: the confirmation
/// documents' countersignature and time stamps.)
pub async fn service_certificate(
    hsm: &Hsm,
    registry: &Registry,
    policy: &Policy,
    spec: &CaKeySpec,
    kind: ca::ServiceCert,
    clock: &dyn Clock,
) -> Result<Certified, CaError> {
    refuse_existing_key(hsm, &spec.key_label)?;
    let issuing = ca::load_authority(hsm, registry, "issuing", true).await?;
    let now = clock.now();
    let key = hsm.generate_key(&spec.key_label, spec.key_algorithm)?;
    let signer = CaSigner::new(hsm.clone(), key)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(signer.spki_der()).map_err(CaError::encoding)?;
    let generation = u32::try_from(registry.retired_issuing_cas().await?.len()).unwrap_or(u32::MAX - 1) + 1;
    let tbs = ca::service_tbs(policy, spec, kind, &issuing, generation, spki, now)?;
    let (lint, profile) = match kind {
        ca::ServiceCert::Seal => (CaCertKind::Seal, "qtsp-seal"),
        ca::ServiceCert::Tsa => (CaCertKind::Tsa, "tsa"),
    };
    conformance::check_ca_certificate(&tbs, lint, Some(issuing.cert()))?;
    let meta = meta(CertKind::EndEntity, profile, &spec.key_label);
    let der =
        ca::sign_and_store(registry, clock, issuing.signer()?, tbs, Some(&issuing.serial().to_owned()), &meta).await?;
    let a = ca::authority(None, der)?;
    tracing::info!(serial = %a.serial(), profile, "service certificate made");
    Ok(Certified {
        serial: a.serial().to_owned(),
        der: a.der().to_vec(),
        key: facts_of(&signer),
        signed_with: facts_of(issuing.signer()?),
    })
}

/// `qcert serve` warns this many days before the ARL's nextUpdate.
pub const ARL_WARNING_DAYS: i64 = 30;

/// The longest an ARL may be valid: 12 months (EN 319 411-1 CSS-6.3.9-12).
pub fn arl_latest_next_update(now: OffsetDateTime) -> OffsetDateTime {
    add_years(now, 1)
}

/// The ARL ceremony, on the root token: the root's next CRL (every revoked
/// CA certificate), valid until `next_update` (at most 12 months), stored
/// as the registry's current ARL. Returns it with the root key's facts.
pub async fn arl(
    root_hsm: &Hsm,
    registry: &Registry,
    next_update: OffsetDateTime,
    clock: &dyn Clock,
) -> Result<(CrlRecord, KeyFacts), CaError> {
    let now = clock.now();
    if next_update <= now || next_update > arl_latest_next_update(now) {
        return Err(CaError::ProfileViolation {
            profile: "ARL".into(),
            reason: "nextUpdate must lie after now and at most 12 months ahead (EN 319 411-1 CSS-6.3.9-12)".into(),
        });
    }
    let root = ca::load_authority(root_hsm, registry, "root", true).await?;
    let prepared = ca::prepare_crl_of(registry, &root, now, next_update).await?;
    let record = prepared.commit().await?;
    tracing::info!(crl_number = record.crl_number, entries = record.entries, "arl ceremony: ARL signed");
    Ok((record, facts_of(root.signer()?)))
}

fn meta<'a>(kind: CertKind, profile: &'a str, label: &str) -> Meta<'a> {
    Meta { kind, profile, holder: None, hsm_key_label: Some(label.to_owned()), issued_for: None }
}

fn key_algorithm_of(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyAlgorithm, CaError> {
    match crate::csr::describe(spki)? {
        crate::csr::KeyDescription::Ec(a) => Ok(a),
        crate::csr::KeyDescription::Rsa { bits } => match bits {
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            other => Err(CaError::InvalidInput(format!("RSA-{other} is not a CA key size qcert makes"))),
        },
    }
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, lower-case hex.
pub fn spki_sha256(cert_der: &[u8]) -> Result<String, CaError> {
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(CaError::encoding)?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)?;
    Ok(hex::encode(sha2::Sha256::digest(spki)))
}

/// An Argon2id verifier (PHC string) of an officer's credential.
pub fn officer_verifier(credential: &secrecy::SecretString) -> Result<String, CaError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use secrecy::ExposeSecret;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(credential.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CaError::Internal(format!("argon2: {e}")))
}

/// Does `credential` match the officer's `verifier`?
pub fn officer_matches(verifier: &str, credential: &secrecy::SecretString) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use secrecy::ExposeSecret;
    PasswordHash::new(verifier)
        .is_ok_and(|h| argon2::Argon2::default().verify_password(credential.expose_secret().as_bytes(), &h).is_ok())
}

/// The root token's user PIN under dual control: neither officer knows it,
/// it is derived from both credentials (SHA-256 over a label and the two
/// length-prefixed credentials, in order of the officers' names), so the
/// root token opens only when both are entered.
pub fn dual_control_pin(officers: &[(&str, &secrecy::SecretString); 2]) -> secrecy::SecretString {
    use secrecy::ExposeSecret;
    let mut sorted = *officers;
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = sha2::Sha256::new();
    h.update(b"qcert root token PIN v1\0");
    for (name, credential) in sorted {
        for part in [name.as_bytes(), credential.expose_secret().as_bytes()] {
            h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            h.update(part);
        }
    }
    secrecy::SecretString::new(hex::encode(h.finalize()))
}

/// Verify `signature` over `message` with the key of `spki` (ECDSA P-256 /
/// P-384 with SHA-256 / SHA-384, or RSA PKCS#1 v1.5), as `algorithm` names.
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &spki::AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use const_oid::db::rfc5912;
    use p256::pkcs8::DecodePublicKey;
    use signature::hazmat::PrehashVerifier;
    let Ok(spki_der) = spki.to_der() else { return false };
    let digest = match algorithm.oid {
        rfc5912::ECDSA_WITH_SHA_256 | rfc5912::SHA_256_WITH_RSA_ENCRYPTION => sha2::Sha256::digest(message).to_vec(),
        rfc5912::ECDSA_WITH_SHA_384 | rfc5912::SHA_384_WITH_RSA_ENCRYPTION => sha2::Sha384::digest(message).to_vec(),
        _ => return false,
    };
    match algorithm.oid {
        rfc5912::ECDSA_WITH_SHA_256 | rfc5912::ECDSA_WITH_SHA_384 => {
            if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der) {
                return p384::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok());
            }
            if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der) {
                return p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|s| k.verify_prehash(&digest, &s).is_ok());
            }
            false
        }
        alg => {
            let Ok(key) = rsa::RsaPublicKey::from_public_key_der(&spki_der) else { return false };
            let scheme = if alg == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>()
            } else {
                rsa::Pkcs1v15Sign::new::<sha2::Sha384>()
            };
            key.verify(scheme, &digest, signature).is_ok()
        }
    }
}
