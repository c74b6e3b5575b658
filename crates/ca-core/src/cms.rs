//! CMS SignedData (RFC 5652). Verification of what a holder signs with the
//! key of their current end-entity certificate, as made by
//! `openssl cms -sign -nodetach -binary` (DER or PEM): holder
//! self-revocation and renewal requests ([`verify_signed_data`]), detached
//! signatures such as a PDF's ([`verify_detached`]), other content types
//! such as time-stamp tokens ([`verify_signed_content`]). Making them with a
//! key on the HSM: [`SignedDataBuilder`].
//!
//! The signer is the certificate we hold in the registry, passed in by the
//! caller: certificates carried in the message are never looked at. Whether
//! that certificate is still valid and unrevoked is the caller's business.
//!
//! Accepted: one SignerInfo, attached `id-data` content (or as asked), signed attributes
//! (content-type, message-digest, optional signing-time), digests SHA-256/384/512,
//! ECDSA on P-256/P-384, RSA PKCS#1 v1.5 and RSASSA-PSS. The message must be
//! DER: indefinite-length BER (`openssl cms -sign -stream`, S/MIME) is refused.

use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode, Sequence};
use signature::hazmat::PrehashVerifier;
use spki::{AlgorithmIdentifierOwned, DecodePublicKey};
use time::OffsetDateTime;
use x509_cert::attr::Attributes;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::Certificate;

use ::cms::content_info::CmsVersion;
use ::cms::content_info::ContentInfo;
use ::cms::signed_data::{DigestAlgorithmIdentifiers, EncapsulatedContentInfo, SignerIdentifier, SignerInfos};

/// Largest accepted input (DER or PEM), in bytes.
pub const MAX_INPUT: usize = 64 * 1024;

/// What a verified SignedData carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The encapsulated content (the octets that were signed).
    pub content: Vec<u8>,
    /// The signing-time signed attribute, if the signer put one in.
    pub signing_time: Option<OffsetDateTime>,
}

/// Why a SignedData was refused. Every message is safe to show to the sender.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("the request is larger than {MAX_INPUT} bytes")]
    TooLarge,
    #[error("the request is not a CMS SignedData: {0}")]
    NotSignedData(String),
    #[error("the request must carry exactly one signature (it carries {0})")]
    SignerCount(usize),
    #[error("the request does not contain the signed content (detached signatures are not accepted)")]
    Detached,
    #[error("the signature must be detached (it carries its content)")]
    Attached,
    #[error("the signed content must be of type id-data (it is {0})")]
    ContentType(ObjectIdentifier),
    #[error("the request was not signed by certificate {serial}")]
    WrongSigner { serial: String },
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    #[error("signed attributes: {0}")]
    SignedAttributes(String),
    #[error("message digest mismatch")]
    DigestMismatch,
    #[error("the signature does not verify")]
    BadSignature,
}

mod builder;

pub use builder::{
    attribute, digest, digest_algorithm_of, digest_identifier, digest_oid, signature_identifier, Content, DigestSigner,
    EssCertIdV2, IssuerSerial, SignedCms, SignedDataBuilder, SigningCertificateV2, ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
    ID_AA_SIGNING_CERTIFICATE_V2, ID_CT_TST_INFO,
};
pub use qcert_hsm::DigestAlgorithm;

/// Verify `input` (DER, or PEM labelled `CMS` or `PKCS7`) was signed by the
/// key of `signer`, and return the content it carries.
pub fn verify_signed_data(input: &[u8], signer: &Certificate) -> Result<Verified, CmsError> {
    verify(input, signer, rfc5911::ID_DATA, None)
}

/// Verify an attached SignedData whose eContentType is `content_type`
/// (e.g. [`ID_CT_TST_INFO`] for a time-stamp token) signed by `signer`.
pub fn verify_signed_content(
    input: &[u8],
    signer: &Certificate,
    content_type: ObjectIdentifier,
) -> Result<Verified, CmsError> {
    verify(input, signer, content_type, None)
}

/// Verify a detached SignedData (eContent absent, id-data) over `content`
/// (for a PDF: the bytes its ByteRange covers) signed by `signer`.
pub fn verify_detached(input: &[u8], signer: &Certificate, content: &[u8]) -> Result<Verified, CmsError> {
    verify(input, signer, rfc5911::ID_DATA, Some(content))
}

fn verify(
    input: &[u8],
    signer: &Certificate,
    content_type: ObjectIdentifier,
    detached: Option<&[u8]>,
) -> Result<Verified, CmsError> {
    if input.len() > MAX_INPUT {
        return Err(CmsError::TooLarge);
    }
    let der = decode_input(input)?;
    let info = ContentInfo::from_der(&der).map_err(not_signed_data)?;
    if info.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(CmsError::NotSignedData(format!("content type is {}", info.content_type)));
    }
    let signed_data: SignedDataView = info.content.decode_as().map_err(not_signed_data)?;

    let signer_info = match signed_data.signer_infos.0.as_slice() {
        [one] => one,
        other => return Err(CmsError::SignerCount(other.len())),
    };
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != content_type {
        return Err(CmsError::ContentType(encap.econtent_type));
    }
    let content = match (&encap.econtent, detached) {
        (Some(econtent), None) => econtent.decode_as::<OctetString>().map_err(not_signed_data)?.into_bytes(),
        (None, Some(external)) => external.to_vec(),
        (None, None) => return Err(CmsError::Detached),
        (Some(_), Some(_)) => return Err(CmsError::Attached),
    };

    if !signed_by(&signer_info.sid, signer) {
        return Err(CmsError::WrongSigner { serial: hex::encode(signer.tbs_certificate.serial_number.as_bytes()) });
    }

    let hash = Hash::from_algorithm(&signer_info.digest_alg)?;
    let attrs = signer_info
        .signed_attrs
        .as_ref()
        .ok_or_else(|| CmsError::SignedAttributes("missing (they are required)".into()))?;
    let signed = SignedAttrs::read(attrs)?;
    if signed.content_type != content_type {
        return Err(CmsError::SignedAttributes(format!(
            "content-type is {}, expected {content_type}",
            signed.content_type
        )));
    }
    if signed.message_digest != hash.digest(&content) {
        return Err(CmsError::DigestMismatch);
    }

    // RFC 5652 §5.4: the signature covers the DER of the signed attributes
    // with an explicit SET OF tag, not the [0] IMPLICIT tag they travel in.
    // Decoding put them in DER order; this is the encoding OpenSSL verifies.
    let message = attrs.to_der().map_err(not_signed_data)?;
    let signature = signer_info.signature.as_bytes();
    verify_signature(signer, &signer_info.signature_algorithm, hash, &message, signature)?;

    Ok(Verified { content, signing_time: signed.signing_time })
}

/// RFC 5652 §5.1 SignedData as verification reads it: `certificates` and
/// `crls` are kept as their raw elements, never parsed into sets. Nothing
/// looks at them (the signer is the registry's certificate, passed in), and
/// a SET OF may hold the same value twice (X.680): pyHanko's CSCSigner puts
/// the signer's certificate in twice (as the signer, and again in the chain
/// from CSC credentials/info), which the `cms` crate's `CertificateSet` (a
/// `SetOfVec`, duplicates refused) cannot decode.
#[derive(Clone, Debug, Sequence)]
struct SignedDataView {
    version: CmsVersion,
    digest_algorithms: DigestAlgorithmIdentifiers,
    encap_content_info: EncapsulatedContentInfo,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    certificates: Option<Vec<der::Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true", optional = "true")]
    crls: Option<Vec<der::Any>>,
    signer_infos: SignerInfos,
}

fn not_signed_data(e: der::Error) -> CmsError {
    CmsError::NotSignedData(e.to_string())
}

/// PEM (`CMS` or `PKCS7`; surrounding whitespace, which the strict RFC 7468
/// decoder refuses, is dropped) or DER.
fn decode_input(input: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, CmsError> {
    let trimmed = input.trim_ascii();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(std::borrow::Cow::Borrowed(input));
    }
    let (label, der) = der::pem::decode_vec(trimmed).map_err(|e| not_signed_data(e.into()))?;
    if label != "CMS" && label != "PKCS7" {
        return Err(CmsError::NotSignedData(format!("PEM block is {label:?}, expected CMS or PKCS7")));
    }
    Ok(std::borrow::Cow::Owned(der))
}

/// Does the SignerInfo's sid name `signer` (issuer and serial, or its SKI)?
fn signed_by(sid: &SignerIdentifier, signer: &Certificate) -> bool {
    let tbs = &signer.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == rfc5912::ID_CE_SUBJECT_KEY_IDENTIFIER)
            .filter_map(|e| SubjectKeyIdentifier::from_der(e.extn_value.as_bytes()).ok())
            .any(|own| own == *ski),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: ObjectIdentifier) -> Result<Hash, CmsError> {
        match oid {
            rfc5912::ID_SHA_256 => Ok(Hash::Sha256),
            rfc5912::ID_SHA_384 => Ok(Hash::Sha384),
            rfc5912::ID_SHA_512 => Ok(Hash::Sha512),
            rfc5912::ID_SHA_1 => {
                Err(CmsError::UnsupportedAlgorithm("SHA-1 is refused (use SHA-256, SHA-384 or SHA-512)".into()))
            }
            other => Err(CmsError::UnsupportedAlgorithm(format!(
                "digest algorithm {other} (use SHA-256, SHA-384 or SHA-512)"
            ))),
        }
    }

    /// A digest AlgorithmIdentifier: parameters absent or NULL.
    fn from_algorithm(alg: &AlgorithmIdentifierOwned) -> Result<Hash, CmsError> {
        let hash = Hash::from_oid(alg.oid)?;
        match &alg.parameters {
            None => Ok(hash),
            Some(p) if p.is_null() => Ok(hash),
            Some(_) => Err(CmsError::UnsupportedAlgorithm(format!("digest algorithm {} with parameters", alg.oid))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    fn digest(self, m: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Hash::Sha256 => DigestAlgorithm::Sha256,
            Hash::Sha384 => DigestAlgorithm::Sha384,
            Hash::Sha512 => DigestAlgorithm::Sha512,
        };
        digest(algorithm, m)
    }

    fn pkcs1v15(self) -> rsa::Pkcs1v15Sign {
        match self {
            Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }

    fn pss(self, salt_len: usize) -> rsa::Pss {
        match self {
            Hash::Sha256 => rsa::Pss::new_with_salt::<sha2::Sha256>(salt_len),
            Hash::Sha384 => rsa::Pss::new_with_salt::<sha2::Sha384>(salt_len),
            Hash::Sha512 => rsa::Pss::new_with_salt::<sha2::Sha512>(salt_len),
        }
    }
}

/// The signed attributes this module reads (RFC 5652 §11.1-11.3): each
/// present once with a single value.
struct SignedAttrs {
    content_type: ObjectIdentifier,
    message_digest: Vec<u8>,
    signing_time: Option<OffsetDateTime>,
}

impl SignedAttrs {
    fn read(attrs: &Attributes) -> Result<SignedAttrs, CmsError> {
        let single = |oid: ObjectIdentifier, name: &str| -> Result<Option<&der::Any>, CmsError> {
            let mut found = attrs.iter().filter(|a| a.oid == oid);
            let Some(attr) = found.next() else { return Ok(None) };
            if found.next().is_some() {
                return Err(CmsError::SignedAttributes(format!("{name} appears more than once")));
            }
            match attr.values.as_slice() {
                [value] => Ok(Some(value)),
                _ => Err(CmsError::SignedAttributes(format!("{name} must have exactly one value"))),
            }
        };
        let bad = |name: &'static str| move |e: der::Error| CmsError::SignedAttributes(format!("{name}: {e}"));

        let content_type = single(rfc5911::ID_CONTENT_TYPE, "content-type")?
            .ok_or_else(|| CmsError::SignedAttributes("content-type is missing".into()))?
            .decode_as::<ObjectIdentifier>()
            .map_err(bad("content-type"))?;
        let message_digest = single(rfc5911::ID_MESSAGE_DIGEST, "message-digest")?
            .ok_or_else(|| CmsError::SignedAttributes("message-digest is missing".into()))?
            .decode_as::<OctetString>()
            .map_err(bad("message-digest"))?
            .into_bytes();
        let signing_time = match single(rfc5911::ID_SIGNING_TIME, "signing-time")? {
            None => None,
            Some(value) => {
                // Time is a CHOICE (UTCTime or GeneralizedTime): decode it from its TLV.
                let t = value
                    .to_der()
                    .and_then(|tlv| x509_cert::time::Time::from_der(&tlv))
                    .map_err(bad("signing-time"))?;
                let secs = i64::try_from(t.to_unix_duration().as_secs())
                    .map_err(|_| CmsError::SignedAttributes("signing-time is out of range".into()))?;
                let t = OffsetDateTime::from_unix_timestamp(secs)
                    .map_err(|_| CmsError::SignedAttributes("signing-time is out of range".into()))?;
                Some(t)
            }
        };
        Ok(SignedAttrs { content_type, message_digest, signing_time })
    }
}

/// RSASSA-PSS-params (RFC 4055 §3.1). The defaults (SHA-1) are refused, so
/// hash and mask generation function must be present.
#[derive(Debug, Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    hash: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    mask_gen: Option<AlgorithmIdentifierOwned>,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", optional = "true")]
    salt_len: Option<u32>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    trailer_field: Option<u32>,
}

/// The PSS salt length, after checking the parameters agree with `hash`.
fn pss_salt_len(alg: &AlgorithmIdentifierOwned, hash: Hash) -> Result<usize, CmsError> {
    let unsupported = |why: &str| CmsError::UnsupportedAlgorithm(format!("RSASSA-PSS: {why}"));
    let params: PssParams = alg
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("parameters are missing"))?
        .decode_as()
        .map_err(|e| unsupported(&e.to_string()))?;
    let pss_hash = Hash::from_algorithm(params.hash.as_ref().ok_or_else(|| unsupported("SHA-1 is refused"))?)?;
    let mgf = params.mask_gen.as_ref().ok_or_else(|| unsupported("MGF1 with SHA-1 is refused"))?;
    if mgf.oid != rfc5912::ID_MGF_1 {
        return Err(unsupported(&format!("mask generation function {}", mgf.oid)));
    }
    let mgf_hash: AlgorithmIdentifierOwned = mgf
        .parameters
        .as_ref()
        .ok_or_else(|| unsupported("MGF1 without a hash"))?
        .decode_as()
        .map_err(|e| unsupported(&e.to_string()))?;
    if pss_hash != hash || Hash::from_algorithm(&mgf_hash)? != hash {
        return Err(unsupported("its hashes differ from the digest algorithm"));
    }
    if params.trailer_field.is_some_and(|t| t != 1) {
        return Err(unsupported("trailer field must be 1"));
    }
    let salt_len = params.salt_len.unwrap_or(20);
    usize::try_from(salt_len).map_err(|_| unsupported("salt length"))
}

#[derive(Debug, Clone, Copy)]
enum Scheme {
    Ecdsa,
    Pkcs1v15,
    Pss { salt_len: usize },
}

/// Check `signature` over `message` with the public key of `signer`.
fn verify_signature(
    signer: &Certificate,
    alg: &AlgorithmIdentifierOwned,
    hash: Hash,
    message: &[u8],
    signature: &[u8],
) -> Result<(), CmsError> {
    // Algorithms that name a hash must name the digestAlgorithm's.
    let named_hash = |h: Hash| {
        if h == hash {
            Ok(())
        } else {
            Err(CmsError::UnsupportedAlgorithm(format!(
                "signature algorithm {} does not match digest algorithm {}",
                alg.oid,
                hash.name()
            )))
        }
    };
    let scheme = match alg.oid {
        rfc5912::ID_EC_PUBLIC_KEY => Scheme::Ecdsa,
        rfc5912::ECDSA_WITH_SHA_256 => named_hash(Hash::Sha256).map(|()| Scheme::Ecdsa)?,
        rfc5912::ECDSA_WITH_SHA_384 => named_hash(Hash::Sha384).map(|()| Scheme::Ecdsa)?,
        rfc5912::ECDSA_WITH_SHA_512 => named_hash(Hash::Sha512).map(|()| Scheme::Ecdsa)?,
        rfc5912::RSA_ENCRYPTION => Scheme::Pkcs1v15,
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => named_hash(Hash::Sha256).map(|()| Scheme::Pkcs1v15)?,
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => named_hash(Hash::Sha384).map(|()| Scheme::Pkcs1v15)?,
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => named_hash(Hash::Sha512).map(|()| Scheme::Pkcs1v15)?,
        rfc5912::ID_RSASSA_PSS => Scheme::Pss { salt_len: pss_salt_len(alg, hash)? },
        other => return Err(CmsError::UnsupportedAlgorithm(format!("signature algorithm {other}"))),
    };

    let spki = &signer.tbs_certificate.subject_public_key_info;
    let spki_der = spki.to_der().map_err(|_| CmsError::UnsupportedAlgorithm("the certificate's key".into()))?;
    let misfit = || {
        CmsError::UnsupportedAlgorithm(format!("signature algorithm {} does not fit the certificate's key", alg.oid))
    };
    let digest = hash.digest(message);
    let ok = match (spki.algorithm.oid, scheme) {
        (rfc5912::ID_EC_PUBLIC_KEY, Scheme::Ecdsa) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(rfc5912::SECP_256_R_1) => p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .ok()
                    .zip(p256::ecdsa::Signature::from_der(signature).ok())
                    .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
                Some(rfc5912::SECP_384_R_1) => p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .ok()
                    .zip(p384::ecdsa::Signature::from_der(signature).ok())
                    .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
                _ => return Err(CmsError::UnsupportedAlgorithm("the certificate's EC curve".into())),
            }
        }
        (rfc5912::RSA_ENCRYPTION, Scheme::Pkcs1v15 | Scheme::Pss { .. }) => {
            let key = rsa::RsaPublicKey::from_public_key_der(&spki_der)
                .map_err(|_| CmsError::UnsupportedAlgorithm("the certificate's RSA key".into()))?;
            match scheme {
                Scheme::Pss { salt_len } => key.verify(hash.pss(salt_len), &digest, signature).is_ok(),
                _ => key.verify(hash.pkcs1v15(), &digest, signature).is_ok(),
            }
        }
        _ => return Err(misfit()),
    };
    if ok {
        Ok(())
    } else {
        Err(CmsError::BadSignature)
    }
}
