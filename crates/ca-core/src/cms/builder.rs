//! Making a CMS SignedData (RFC 5652 §5) with a key on the HSM: RFC 3161
//! time-stamp tokens (encapsulated TSTInfo) and PAdES / CAdES signatures
//! (detached, over a digest the caller computed).
//!
//! The `cms` crate's `SignedDataBuilder` was not used: it signs through a
//! synchronous `signature::Signer` (an HSM call would block the runtime),
//! panics (`unwrap`) on some inputs, cannot add an unsigned attribute once
//! the signature exists (a PAdES signature-time-stamp is made *over* the
//! signature value), and needs the crate's `builder` feature (AES, CBC,
//! RSA, SHA-1). Its ASN.1 types are used as they are.
//!
//! Signed attributes: content-type, message-digest, signing-certificate-v2
//! (RFC 5035 ESSCertIDv2 over the signer certificate, hashed with the
//! SignedData's digest algorithm: required by RFC 5816 for time-stamp
//! tokens and by ETSI EN 319 122-1 for CAdES baseline), optional
//! signing-time. The signer is named by issuer and serial (SignerInfo v1).

use std::future::Future;

use const_oid::db::{rfc5911, rfc5912};
use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use qcert_hsm::{DigestAlgorithm, KeyAlgorithm};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::Certificate;

use ::cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use ::cms::content_info::{CmsVersion, ContentInfo};
use ::cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignatureValue, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};

use crate::error::CaError;

/// id-aa-signingCertificateV2 (RFC 5035 §3).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-aa-signatureTimeStampToken (RFC 3161 appendix A): an unsigned
/// attribute carrying a time-stamp token over the signature value.
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
/// id-ct-TSTInfo (RFC 3161 §2.4.2): the eContentType of a time-stamp token.
pub const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");

/// A key that signs a digest the builder computed: a CA-side key on the HSM
/// ([`crate::signer::CaSigner`]: seal, TSA) or, later, a holder's key.
pub trait DigestSigner: Sync {
    /// The key's algorithm (gives the SignerInfo's signatureAlgorithm).
    fn key_algorithm(&self) -> KeyAlgorithm;
    /// The key's SubjectPublicKeyInfo DER (checked against the certificate).
    fn spki_der(&self) -> &[u8];
    /// Sign `digest`, a digest made with `algorithm`: ECDSA answered as a
    /// DER `Ecdsa-Sig-Value`, RSA as PKCS#1 v1.5 over the DigestInfo.
    fn sign_digest(
        &self,
        algorithm: DigestAlgorithm,
        digest: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, CaError>> + Send;
}

/// The object identifier of a digest algorithm.
pub fn digest_oid(algorithm: DigestAlgorithm) -> ObjectIdentifier {
    match algorithm {
        DigestAlgorithm::Sha256 => rfc5912::ID_SHA_256,
        DigestAlgorithm::Sha384 => rfc5912::ID_SHA_384,
        DigestAlgorithm::Sha512 => rfc5912::ID_SHA_512,
    }
}

/// The digest algorithm named by `oid`, if it is one of ours.
pub fn digest_algorithm_of(oid: ObjectIdentifier) -> Option<DigestAlgorithm> {
    match oid {
        rfc5912::ID_SHA_256 => Some(DigestAlgorithm::Sha256),
        rfc5912::ID_SHA_384 => Some(DigestAlgorithm::Sha384),
        rfc5912::ID_SHA_512 => Some(DigestAlgorithm::Sha512),
        _ => None,
    }
}

/// `m` hashed with `algorithm`.
pub fn digest(algorithm: DigestAlgorithm, m: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    match algorithm {
        DigestAlgorithm::Sha256 => sha2::Sha256::digest(m).to_vec(),
        DigestAlgorithm::Sha384 => sha2::Sha384::digest(m).to_vec(),
        DigestAlgorithm::Sha512 => sha2::Sha512::digest(m).to_vec(),
    }
}

/// A digest AlgorithmIdentifier, parameters absent (RFC 5754 §2).
pub fn digest_identifier(algorithm: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid: digest_oid(algorithm), parameters: None }
}

/// The signatureAlgorithm of a `key` signature over a `digest` digest
/// (RFC 5754 §3: ecdsa-with-SHA*, parameters absent; sha*WithRSAEncryption,
/// parameters NULL).
pub fn signature_identifier(key: KeyAlgorithm, digest: DigestAlgorithm) -> AlgorithmIdentifierOwned {
    let ec = matches!(key, KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384);
    let oid = match (ec, digest) {
        (true, DigestAlgorithm::Sha256) => rfc5912::ECDSA_WITH_SHA_256,
        (true, DigestAlgorithm::Sha384) => rfc5912::ECDSA_WITH_SHA_384,
        (true, DigestAlgorithm::Sha512) => rfc5912::ECDSA_WITH_SHA_512,
        (false, DigestAlgorithm::Sha256) => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        (false, DigestAlgorithm::Sha384) => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
        (false, DigestAlgorithm::Sha512) => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
    };
    AlgorithmIdentifierOwned { oid, parameters: if ec { None } else { Some(Any::null()) } }
}

/// ```text
/// SigningCertificateV2 ::= SEQUENCE {          -- RFC 5035 §3
///     certs        SEQUENCE OF ESSCertIDv2,
///     policies     SEQUENCE OF PolicyInformation OPTIONAL }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<Vec<PolicyInformation>>,
}

/// ```text
/// ESSCertIDv2 ::= SEQUENCE {                   -- RFC 5035 §4
///     hashAlgorithm   AlgorithmIdentifier DEFAULT {algorithm id-sha256},
///     certHash        Hash,
///     issuerSerial    IssuerSerial OPTIONAL }
/// ```
/// The DEFAULT is written as absent (DER), so `hash_algorithm` is `None`
/// for SHA-256.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ```text
/// IssuerSerial ::= SEQUENCE {                  -- RFC 5035 §4
///     issuer         GeneralNames,
///     serialNumber   CertificateSerialNumber }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

impl EssCertIdV2 {
    /// The ESSCertIDv2 of `cert`, hashed with `algorithm`.
    pub fn of(cert: &Certificate, algorithm: DigestAlgorithm) -> Result<EssCertIdV2, CaError> {
        let der = cert.to_der().map_err(CaError::encoding)?;
        let tbs = &cert.tbs_certificate;
        Ok(EssCertIdV2 {
            hash_algorithm: (algorithm != DigestAlgorithm::Sha256).then(|| digest_identifier(algorithm)),
            cert_hash: OctetString::new(digest(algorithm, &der)).map_err(CaError::encoding)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                serial_number: tbs.serial_number.clone(),
            }),
        })
    }
}

/// One attribute with one value.
pub fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> Result<Attribute, CaError> {
    let value = Any::from_der(&value.to_der().map_err(CaError::encoding)?).map_err(CaError::encoding)?;
    let values = SetOfVec::try_from(vec![value]).map_err(CaError::encoding)?;
    Ok(Attribute { oid, values })
}

/// What is signed: content carried inside the SignedData, or the digest
/// of content kept outside it (a PDF's ByteRange).
#[derive(Debug, Clone, Copy)]
pub enum Content<'a> {
    /// eContent present: the octets of type `content_type` (TSTInfo DER
    /// with [`ID_CT_TST_INFO`], or plain data with id-data).
    Attached { content_type: ObjectIdentifier, content: &'a [u8] },
    /// eContent absent: `digest` is the external content's digest with the
    /// builder's digest algorithm; the content type is id-data.
    Detached { digest: &'a [u8] },
}

/// A SignedData with one signer, built and then signed by [`SignedDataBuilder::sign`].
#[derive(Debug, Clone)]
pub struct SignedDataBuilder<'a> {
    content: Content<'a>,
    digest: DigestAlgorithm,
    signer: &'a Certificate,
    chain: &'a [Certificate],
    include_certificates: bool,
    signing_time: Option<OffsetDateTime>,
}

impl<'a> SignedDataBuilder<'a> {
    /// `content` signed with `digest` by the key of `signer`, whose
    /// certificate goes into `certificates` (see [`Self::certificates`]).
    pub fn new(content: Content<'a>, digest: DigestAlgorithm, signer: &'a Certificate) -> SignedDataBuilder<'a> {
        SignedDataBuilder { content, digest, signer, chain: &[], include_certificates: true, signing_time: None }
    }

    /// Certificates after the signer's in `certificates` (its chain, without
    /// the trust anchor as a rule).
    pub fn chain(mut self, chain: &'a [Certificate]) -> Self {
        self.chain = chain;
        self
    }

    /// Whether `certificates` is written at all (an RFC 3161 request
    /// without certReq gets none). Default: yes.
    pub fn certificates(mut self, include: bool) -> Self {
        self.include_certificates = include;
        self
    }

    /// Add the signing-time signed attribute (RFC 5652 §11.3). PAdES
    /// forbids it (the time is the PDF's /M), CAdES allows it.
    pub fn signing_time(mut self, at: OffsetDateTime) -> Self {
        self.signing_time = Some(at);
        self
    }

    /// Sign with `key`, which must be the key of the signer certificate.
    pub async fn sign(self, key: &impl DigestSigner) -> Result<SignedCms, CaError> {
        let cert_spki = self.signer.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)?;
        if cert_spki != key.spki_der() {
            return Err(CaError::Internal("the signing key is not the key of the signer certificate".into()));
        }
        let (content_type, econtent, message_digest) = match self.content {
            Content::Attached { content_type, content } => {
                let octets = OctetString::new(content).map_err(CaError::encoding)?;
                (
                    content_type,
                    Some(Any::encode_from(&octets).map_err(CaError::encoding)?),
                    digest(self.digest, content),
                )
            }
            Content::Detached { digest } => {
                if digest.len() != self.digest.octets() {
                    return Err(CaError::Internal(format!(
                        "a {:?} digest has {} octets, not {}",
                        self.digest,
                        self.digest.octets(),
                        digest.len()
                    )));
                }
                (rfc5911::ID_DATA, None, digest.to_vec())
            }
        };

        let mut attrs = vec![
            attribute(rfc5911::ID_CONTENT_TYPE, &content_type)?,
            attribute(rfc5911::ID_MESSAGE_DIGEST, &OctetString::new(message_digest).map_err(CaError::encoding)?)?,
            attribute(
                ID_AA_SIGNING_CERTIFICATE_V2,
                &SigningCertificateV2 { certs: vec![EssCertIdV2::of(self.signer, self.digest)?], policies: None },
            )?,
        ];
        if let Some(at) = self.signing_time {
            attrs.push(attribute(rfc5911::ID_SIGNING_TIME, &crate::x509::x509_time(at)?)?);
        }
        let signed_attrs = SetOfVec::try_from(attrs).map_err(CaError::encoding)?;
        // RFC 5652 §5.4: the signature covers the attributes' DER with the
        // SET OF tag, not the [0] IMPLICIT tag they travel in.
        let to_sign = signed_attrs.to_der().map_err(CaError::encoding)?;
        let signature = key.sign_digest(self.digest, digest(self.digest, &to_sign)).await?;

        let tbs = &self.signer.tbs_certificate;
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            }),
            digest_alg: digest_identifier(self.digest),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: signature_identifier(key.key_algorithm(), self.digest),
            signature: SignatureValue::new(signature).map_err(CaError::encoding)?,
            unsigned_attrs: None,
        };
        let certificates = if self.include_certificates {
            let all = std::iter::once(self.signer)
                .chain(self.chain)
                .map(|c| CertificateChoices::Certificate(c.clone()))
                .collect::<Vec<_>>();
            Some(CertificateSet(SetOfVec::try_from(all).map_err(CaError::encoding)?))
        } else {
            None
        };
        let signed_data = SignedData {
            // RFC 5652 §5.1: 3 when the eContentType is not id-data, else 1
            // (issuerAndSerialNumber, X.509 certificates only).
            version: if content_type == rfc5911::ID_DATA { CmsVersion::V1 } else { CmsVersion::V3 },
            digest_algorithms: SetOfVec::try_from(vec![digest_identifier(self.digest)]).map_err(CaError::encoding)?,
            encap_content_info: EncapsulatedContentInfo { econtent_type: content_type, econtent },
            certificates,
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(CaError::encoding)?),
        };
        Ok(SignedCms { signed_data })
    }
}

/// A signed SignedData (one signer), to which unsigned attributes can still
/// be added before it is written out.
#[derive(Debug, Clone)]
pub struct SignedCms {
    signed_data: SignedData,
}

impl SignedCms {
    fn signer_info(&self) -> Result<&SignerInfo, CaError> {
        self.signed_data.signer_infos.0.get(0).ok_or_else(|| CaError::Internal("a SignedData without signer".into()))
    }

    /// The signer's signature value (what a PAdES signature-time-stamp covers).
    pub fn signature(&self) -> Result<&[u8], CaError> {
        Ok(self.signer_info()?.signature.as_bytes())
    }

    /// The digest algorithm the signer used.
    pub fn digest_algorithm(&self) -> Result<DigestAlgorithm, CaError> {
        let oid = self.signer_info()?.digest_alg.oid;
        digest_algorithm_of(oid).ok_or_else(|| CaError::Internal(format!("digest algorithm {oid}")))
    }

    /// Add an unsigned attribute to the signer (the signature stays valid:
    /// it does not cover them).
    pub fn add_unsigned_attribute(&mut self, attr: Attribute) -> Result<(), CaError> {
        let info = self.signer_info()?.clone();
        let mut unsigned = info.unsigned_attrs.clone().unwrap_or_default();
        unsigned.insert(attr).map_err(CaError::encoding)?;
        let info = SignerInfo { unsigned_attrs: Some(unsigned), ..info };
        self.signed_data.signer_infos = SignerInfos(SetOfVec::try_from(vec![info]).map_err(CaError::encoding)?);
        Ok(())
    }

    /// Add a signature-time-stamp (`token`: a TimeStampToken's DER, a
    /// ContentInfo, over [`Self::signature`]) as an unsigned attribute.
    pub fn add_signature_time_stamp(&mut self, token: &[u8]) -> Result<(), CaError> {
        let token = ContentInfo::from_der(token).map_err(CaError::encoding)?;
        self.add_unsigned_attribute(attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, &token)?)
    }

    /// The ContentInfo (id-signedData) DER.
    pub fn to_der(&self) -> Result<Vec<u8>, CaError> {
        let content = Any::encode_from(&self.signed_data).map_err(CaError::encoding)?;
        ContentInfo { content_type: rfc5911::ID_SIGNED_DATA, content }.to_der().map_err(CaError::encoding)
    }

    /// The SignedData inside.
    pub fn signed_data(&self) -> &SignedData {
        &self.signed_data
    }
}
