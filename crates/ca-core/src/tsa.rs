//! The time-stamping authority: RFC 3161 (with RFC 5816's ESSCertIDv2),
//! profiled by ETSI EN 319 422.
//!
//! A request is parsed strictly (version 1, messageImprint with SHA-256/384/512
//! and a digest of that length, reqPolicy ours or absent, no extensions);
//! anything else is answered with a `rejection` and the failInfo RFC 3161 §2.4.2
//! names (badAlg, badRequest, badDataFormat, unacceptedPolicy,
//! unacceptedExtension), or systemFailure when the TSA cannot sign.
//!
//! Each token gets a serial of 16 random octets (positive, 126 random bits,
//! as certificate serials) that is **stored before it is signed** (table
//! `time_stamps`): the primary key makes serials unique across processes
//! without a shared counter to serialise on, and a serial says nothing about
//! how many tokens were issued. genTime comes from the injected [`Clock`],
//! to the second, with the policy's accuracy (1 s). ordering is false.
//!
//! The signer is the TSU key on the online token and its certificate from the
//! issuing CA (EKU id-kp-timeStamping alone, critical), made by
//! `qcert ceremony tsa`: the root is offline and the issuing CA has pathLen 0,
//! so no dedicated TSA CA sits below it.

use std::sync::Arc;

use const_oid::db::rfc5912;
use der::asn1::{BitString, GeneralizedTime, Int, OctetString, Utf8StringRef};
use der::{Decode, Encode, Sequence};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;
use x509_tsp::{Accuracy, MessageImprint, TimeStampReq, TspVersion, TstInfo};

use ::cms::content_info::ContentInfo;

use crate::ca::{new_serial, serial_hex};
use crate::cms::{Content, DigestAlgorithm, SignedDataBuilder, ID_CT_TST_INFO};
use crate::error::CaError;
use crate::policy::TsaPolicy;
use crate::signer::CaSigner;
use crate::store::time_stamps::TimeStampRecord;
use crate::{Ca, Clock, Registry};

/// The certificate profile (registry `profile`) of TSU certificates.
pub const TSU_PROFILE: &str = "tsa";

/// Largest nonce accepted, in octets (RFC 3161 suggests 64 bits).
pub const MAX_NONCE_OCTETS: usize = 32;

/// PKIStatus (RFC 3161 §2.4.2) values this TSA answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Granted,
    Rejection,
}

/// PKIFailureInfo bits (RFC 3161 §2.4.2) this TSA sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm identifier.
    BadAlg = 0,
    /// Transaction not permitted or supported.
    BadRequest = 2,
    /// The data submitted has the wrong format.
    BadDataFormat = 5,
    /// The requested TSA policy is not supported.
    UnacceptedPolicy = 15,
    /// The requested extension is not supported.
    UnacceptedExtension = 16,
    /// The request cannot be handled due to system failure.
    SystemFailure = 25,
}

impl FailInfo {
    /// The failInfo BIT STRING with only this bit set, DER (no trailing zero bits).
    fn bit_string(self) -> Result<BitString, der::Error> {
        let bit = self as usize;
        let mut bytes = vec![0u8; bit / 8 + 1];
        if let Some(last) = bytes.last_mut() {
            *last = 0x80 >> (bit % 8);
        }
        BitString::new(u8::try_from(7 - bit % 8).unwrap_or(0), bytes)
    }

    /// RFC 3161's name of the bit.
    pub fn name(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "badAlg",
            FailInfo::BadRequest => "badRequest",
            FailInfo::BadDataFormat => "badDataFormat",
            FailInfo::UnacceptedPolicy => "unacceptedPolicy",
            FailInfo::UnacceptedExtension => "unacceptedExtension",
            FailInfo::SystemFailure => "systemFailure",
        }
    }
}

/// ```text
/// PKIStatusInfo ::= SEQUENCE {                 -- RFC 3161 §2.4.2
///     status        PKIStatus,
///     statusString  PKIFreeText     OPTIONAL,
///     failInfo      PKIFailureInfo  OPTIONAL  }
/// ```
/// Written here: cmpv2 0.2's `PkiFailureInfo` flag values are the bit
/// numbers used as masks, so its failInfo encodings are wrong.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct StatusInfo<'a> {
    status: u8,
    #[asn1(optional = "true")]
    status_string: Option<Vec<Utf8StringRef<'a>>>,
    #[asn1(optional = "true")]
    fail_info: Option<BitString>,
}

/// ```text
/// TimeStampResp ::= SEQUENCE  {                -- RFC 3161 §2.4.2
///     status                  PKIStatusInfo,
///     timeStampToken          TimeStampToken     OPTIONAL  }
/// ```
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct TimeStampResp<'a> {
    status: StatusInfo<'a>,
    #[asn1(optional = "true")]
    time_stamp_token: Option<ContentInfo>,
}

/// What [`Tsa::respond`] answered, for metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The TimeStampResp DER.
    pub der: Vec<u8>,
    pub status: Status,
    pub fail_info: Option<FailInfo>,
}

/// A refused request: the failInfo and a reason safe to show the requester
/// (it names what was wrong, never a value from the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub fail: FailInfo,
    pub reason: String,
}

fn refuse(fail: FailInfo, reason: impl Into<String>) -> Refusal {
    Refusal { fail, reason: reason.into() }
}

/// The time-stamping unit: its key on the HSM and its certificate. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Tsa {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    signer: CaSigner,
    cert: Certificate,
    serial: String,
    chain: Vec<Certificate>,
    not_before: i64,
    not_after: i64,
    policy: TsaPolicy,
    digest: DigestAlgorithm,
    registry: Registry,
    clock: Arc<dyn Clock>,
}

impl Tsa {
    /// The TSA of `ca`: the newest TSU certificate in the registry for the
    /// policy's key label, with that key on the online token. Refused (with
    /// what to do) when ca.toml has no `[tsa]`, no TSU certificate was made
    /// (`qcert ceremony tsa`), it is revoked, or the key is not on the token.
    pub async fn open(ca: &Ca) -> Result<Tsa, CaError> {
        let policy = ca.policy().tsa.clone().ok_or_else(|| {
            CaError::NotFound("the time-stamping authority is not configured: ca.toml has no [tsa] section".into())
        })?;
        let registry = ca.registry().clone();
        let record = registry.service_certificate(TSU_PROFILE, &policy.key_label).await?.ok_or_else(|| {
            CaError::NotFound(format!(
                "no time-stamping unit certificate for key {:?}: run `qcert ceremony tsa`",
                policy.key_label
            ))
        })?;
        let der = record.der.ok_or_else(|| CaError::Internal("an issued TSU certificate without DER".into()))?;
        let cert = Certificate::from_der(&der).map_err(CaError::encoding)?;
        let serial = record.cert.serial.clone();
        if registry.revocation(&serial).await?.is_some() {
            return Err(CaError::Conflict(format!(
                "the time-stamping unit certificate {serial} is revoked: run `qcert ceremony tsa` with a new key label"
            )));
        }
        let key = ca.hsm().find_key(&policy.key_label)?;
        let signer = CaSigner::new(ca.hsm().clone(), key)?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)?;
        if spki != signer.spki_der() {
            return Err(CaError::Conflict(format!(
                "the key {:?} on the token is not the key of TSU certificate {serial}",
                policy.key_label
            )));
        }
        let mut chain = Vec::new();
        if let Some(issuer) = record.cert.issuer_serial.as_deref() {
            if let Some(der) = registry.certificate(issuer).await?.and_then(|r| r.der) {
                chain.push(Certificate::from_der(&der).map_err(CaError::encoding)?);
            }
        }
        let digest = match signer.key_algorithm() {
            qcert_hsm::KeyAlgorithm::EcP256 | qcert_hsm::KeyAlgorithm::Rsa3072 => DigestAlgorithm::Sha256,
            qcert_hsm::KeyAlgorithm::EcP384 | qcert_hsm::KeyAlgorithm::Rsa4096 => DigestAlgorithm::Sha384,
        };
        tracing::info!(serial = %serial, key = %policy.key_label, "time-stamping unit loaded");
        Ok(Tsa {
            inner: Arc::new(Inner {
                signer,
                cert,
                serial,
                chain,
                not_before: record.cert.not_before,
                not_after: record.cert.not_after,
                policy,
                digest,
                registry,
                clock: ca.clock().clone(),
            }),
        })
    }

    /// The TSU certificate's notAfter (Unix seconds): tokens stop then.
    pub fn not_after(&self) -> i64 {
        self.inner.not_after
    }

    /// The TSU certificate (DER).
    pub fn certificate_der(&self) -> Result<Vec<u8>, CaError> {
        self.inner.cert.to_der().map_err(CaError::encoding)
    }

    /// The policy tokens are issued under.
    pub fn policy(&self) -> &TsaPolicy {
        &self.inner.policy
    }

    /// Answer a DER TimeStampReq with a DER TimeStampResp: granted with a
    /// token, or a rejection naming what was wrong. Never fails: a TSA that
    /// cannot sign answers systemFailure (and logs why).
    pub async fn respond(&self, request: &[u8]) -> Answer {
        let result = match parse_request(request, &self.inner.policy) {
            Err(refusal) => Err(refusal),
            Ok(req) => self.token(req.message_imprint, req.nonce, req.cert_req).await.map_err(|e| {
                tracing::error!(error = %e, "time-stamp not issued");
                refuse(FailInfo::SystemFailure, "the time-stamping service cannot issue a time-stamp now")
            }),
        };
        let (status, refusal, token) = match result {
            Ok(token) => (Status::Granted, None, Some(token)),
            Err(r) => (Status::Rejection, Some(r), None),
        };
        match encode_response(status, refusal.as_ref(), token) {
            Ok(der) => Answer { der, status, fail_info: refusal.map(|r| r.fail) },
            Err(e) => {
                tracing::error!(error = %e, "time-stamp response not encoded");
                let fail = refuse(FailInfo::SystemFailure, "the time-stamping service failed");
                Answer {
                    der: encode_response(Status::Rejection, Some(&fail), None).unwrap_or_default(),
                    status: Status::Rejection,
                    fail_info: Some(FailInfo::SystemFailure),
                }
            }
        }
    }

    /// A time-stamp token (a DER ContentInfo) over `digest`, a digest made
    /// with `hash`, with the TSU certificate and its issuer in it: what an
    /// in-process caller (the countersign's signature-time-stamp) embeds.
    pub async fn stamp(&self, hash: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CaError> {
        if digest.len() != hash.octets() {
            return Err(CaError::InvalidInput(format!(
                "a {hash:?} digest has {} octets, not {}",
                hash.octets(),
                digest.len()
            )));
        }
        let imprint = MessageImprint {
            hash_algorithm: spki::AlgorithmIdentifier { oid: crate::cms::digest_oid(hash), parameters: None },
            hashed_message: OctetString::new(digest).map_err(CaError::encoding)?,
        };
        self.token(imprint, None, true).await?.to_der().map_err(CaError::encoding)
    }

    /// Record, then sign, one token.
    async fn token(
        &self,
        message_imprint: MessageImprint,
        nonce: Option<Int>,
        cert_req: bool,
    ) -> Result<ContentInfo, CaError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let at = now.unix_timestamp();
        if at < inner.not_before || at >= inner.not_after {
            return Err(CaError::Conflict(format!(
                "the time-stamping unit certificate {} is not valid now: run `qcert ceremony tsa`",
                inner.serial
            )));
        }
        if inner.registry.revocation(&inner.serial).await?.is_some() {
            return Err(CaError::Conflict(format!("the time-stamping unit certificate {} is revoked", inner.serial)));
        }
        let record = |serial: &str| TimeStampRecord {
            serial: serial.to_owned(),
            tsu_serial: inner.serial.clone(),
            gen_time: at,
            policy: inner.policy.policy_oid.to_string(),
            hash_algorithm: message_imprint.hash_algorithm.oid.to_string(),
            message_imprint: hex::encode(message_imprint.hashed_message.as_bytes()),
        };
        // A taken serial (2^-126 per pair) is drawn again; three in a row is a broken RNG.
        let mut serial = None;
        for _ in 0..3 {
            let candidate = new_serial()?;
            if inner.registry.record_time_stamp(&record(&serial_hex(&candidate))).await? {
                serial = Some(candidate);
                break;
            }
        }
        let serial = serial.ok_or_else(|| CaError::Internal("three time-stamp serials drawn were taken".into()))?;

        let secs = u64::try_from(at).map_err(|_| CaError::Internal("the clock is before 1970".into()))?;
        let gen_time =
            GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(CaError::encoding)?;
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: inner.policy.policy_oid,
            message_imprint,
            serial_number: Int::new(serial.as_bytes()).map_err(CaError::encoding)?,
            gen_time,
            accuracy: Some(Accuracy {
                seconds: Some(u64::from(inner.policy.accuracy_seconds)),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce,
            tsa: inner
                .policy
                .include_tsa_name
                .then(|| GeneralName::DirectoryName(inner.cert.tbs_certificate.subject.clone())),
            extensions: None,
        };
        let content = tst.to_der().map_err(CaError::encoding)?;
        let signed = SignedDataBuilder::new(
            Content::Attached { content_type: ID_CT_TST_INFO, content: &content },
            inner.digest,
            &inner.cert,
        )
        .chain(&inner.chain)
        .certificates(cert_req)
        .sign(&inner.signer)
        .await?;
        signed.content_info()
    }
}

/// A TimeStampReq's parts, checked: the digest has its algorithm's length,
/// the nonce at most [`MAX_NONCE_OCTETS`], no policy but ours, no extensions.
#[derive(Debug, Clone)]
pub struct Request {
    pub message_imprint: MessageImprint,
    pub nonce: Option<Int>,
    pub cert_req: bool,
}

/// Parse and check a DER TimeStampReq (RFC 3161 2.4.1) under `policy`.
pub fn parse_request(der: &[u8], policy: &TsaPolicy) -> Result<Request, Refusal> {
    let req = TimeStampReq::from_der(der).map_err(|_| {
        refuse(FailInfo::BadDataFormat, "the request is not a DER TimeStampReq of version 1 (RFC 3161 2.4.1)")
    })?;
    let alg = &req.message_imprint.hash_algorithm;
    let hash = match alg.oid {
        rfc5912::ID_SHA_256 => DigestAlgorithm::Sha256,
        rfc5912::ID_SHA_384 => DigestAlgorithm::Sha384,
        rfc5912::ID_SHA_512 => DigestAlgorithm::Sha512,
        _ => return Err(refuse(FailInfo::BadAlg, "messageImprint.hashAlgorithm must be SHA-256, SHA-384 or SHA-512")),
    };
    if alg.parameters.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(refuse(FailInfo::BadAlg, "messageImprint.hashAlgorithm parameters must be absent or NULL"));
    }
    if req.message_imprint.hashed_message.as_bytes().len() != hash.octets() {
        return Err(refuse(
            FailInfo::BadDataFormat,
            format!("messageImprint.hashedMessage must be {} octets for its algorithm", hash.octets()),
        ));
    }
    if req.req_policy.is_some_and(|p| p != policy.policy_oid) {
        return Err(refuse(
            FailInfo::UnacceptedPolicy,
            format!("reqPolicy is not this TSA's policy (omit it or ask for {})", policy.policy_oid),
        ));
    }
    if req.extensions.is_some() {
        return Err(refuse(FailInfo::UnacceptedExtension, "extensions are not supported"));
    }
    if let Some(nonce) = &req.nonce {
        if nonce.as_bytes().len() > MAX_NONCE_OCTETS {
            return Err(refuse(FailInfo::BadRequest, format!("nonce is longer than {MAX_NONCE_OCTETS} octets")));
        }
    }
    Ok(Request { message_imprint: req.message_imprint, nonce: req.nonce, cert_req: req.cert_req })
}

fn encode_response(
    status: Status,
    refusal: Option<&Refusal>,
    token: Option<ContentInfo>,
) -> Result<Vec<u8>, der::Error> {
    let status_string = refusal.map(|r| Utf8StringRef::new(&r.reason).map(|s| vec![s])).transpose()?;
    let fail_info = refusal.map(|r| r.fail.bit_string()).transpose()?;
    let status = StatusInfo {
        status: match status {
            Status::Granted => 0,
            Status::Rejection => 2,
        },
        status_string,
        fail_info,
    };
    TimeStampResp { status, time_stamp_token: token }.to_der()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_info_bits_are_der_named_bit_strings() {
        // badAlg (0): one octet 0x80, 7 unused bits.
        assert_eq!(FailInfo::BadAlg.bit_string().unwrap().to_der().unwrap(), [0x03, 0x02, 0x07, 0x80]);
        // badDataFormat (5): 0x04, 2 unused bits.
        assert_eq!(FailInfo::BadDataFormat.bit_string().unwrap().to_der().unwrap(), [0x03, 0x02, 0x02, 0x04]);
        // unacceptedPolicy (15): two octets, the last bit of the second.
        assert_eq!(FailInfo::UnacceptedPolicy.bit_string().unwrap().to_der().unwrap(), [0x03, 0x03, 0x00, 0x00, 0x01]);
        // systemFailure (25): four octets, 6 unused bits.
        assert_eq!(
            FailInfo::SystemFailure.bit_string().unwrap().to_der().unwrap(),
            [0x03, 0x05, 0x06, 0x00, 0x00, 0x00, 0x40]
        );
    }
}
