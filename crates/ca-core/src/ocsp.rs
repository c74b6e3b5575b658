//! OCSP responder (RFC 6960, lightweight profile RFC 9919): a delegated
//! responder certificate issued by the issuing CA, responderID by key,
//! SHA-1 and SHA-256 CertIDs, nonces echoed, and pre-signed answers for
//! requests without a nonce, kept in a bounded cache so serving them costs
//! no HSM operation.

use std::collections::HashMap;
use std::sync::Mutex;

use der::asn1::{GeneralizedTime, Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use sha1::Digest;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extension;
use x509_cert::Certificate;
use x509_ocsp::ext::Nonce;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, ResponderId, ResponseData,
    RevokedInfo, SingleResponse,
};

use crate::clock::Clock;
use crate::crl::{generalized, Reason};
use crate::error::CaError;
use crate::policy::Schedule;
use crate::signer::CaSigner;
use crate::store::{CertStatus as RowStatus, Registry};

/// At most this many CertIDs in one request (RFC 9919 clients send one).
pub const MAX_CERT_IDS: usize = 16;
/// Nonce length the responder accepts (octets).
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 1..=128;
/// Pre-signed answers kept in memory at most.
pub const CACHE_CAPACITY: usize = 200_000;

const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const ID_PKIX_OCSP_ARCHIVE_CUTOFF: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.6");

/// What the responder answered, for HTTP headers and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A signed answer. `cached`: served from the pre-signed cache.
    Signed {
        this_update: i64,
        next_update: i64,
        fresh_until: i64,
        nonce: bool,
        cached: bool,
        status: &'static str,
    },
    MalformedRequest,
    Unauthorized,
    InternalError,
}

/// An encoded OCSPResponse and what it says.
#[derive(Debug, Clone)]
pub struct Answer {
    pub der: std::sync::Arc<Vec<u8>>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
struct Cached {
    serial: String,
    der: std::sync::Arc<Vec<u8>>,
    this_update: i64,
    next_update: i64,
    status: &'static str,
}

/// Hashes of the issuing CA as they appear in CertIDs.
#[derive(Debug, Clone)]
struct IssuerHashes {
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
}

/// The responder for the issuing CA.
#[derive(Debug)]
pub struct Responder {
    signer: CaSigner,
    responder_cert: Certificate,
    responder_key_hash: OctetString,
    issuing_serial: String,
    issuer: IssuerHashes,
    archive_cutoff: GeneralizedTime,
    schedule: Schedule,
    cache: Mutex<HashMap<Vec<u8>, Cached>>,
    /// Revocations already applied to the cache: (serial, revoked_at), newest window only.
    seen: Mutex<std::collections::HashSet<(String, i64)>>,
}

/// Revocations are looked for this far back, so that one committed late (or
/// stamped by a slower clock in another process) is still seen.
const SYNC_WINDOW_SECONDS: i64 = 300;

impl Responder {
    pub fn new(
        signer: CaSigner,
        responder_cert: Certificate,
        issuing_cert: &Certificate,
        issuing_serial: String,
        schedule: Schedule,
    ) -> Result<Responder, CaError> {
        let name = issuing_cert.tbs_certificate.subject.to_der().map_err(CaError::encoding)?;
        let key = issuing_cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        let issuer = IssuerHashes {
            sha1: (sha1::Sha1::digest(&name).to_vec(), sha1::Sha1::digest(key).to_vec()),
            sha256: (sha2::Sha256::digest(&name).to_vec(), sha2::Sha256::digest(key).to_vec()),
        };
        let responder_key = responder_cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes();
        let responder_key_hash =
            OctetString::new(sha1::Sha1::digest(responder_key).to_vec()).map_err(CaError::encoding)?;
        let not_before = crate::x509::unix_seconds(&issuing_cert.tbs_certificate.validity.not_before);
        Ok(Responder {
            signer,
            responder_cert,
            responder_key_hash,
            issuing_serial,
            issuer,
            archive_cutoff: generalized(not_before)?,
            schedule,
            cache: Mutex::new(HashMap::new()),
            seen: Mutex::new(std::collections::HashSet::new()),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Cached>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forget pre-signed answers about `serial` (after its revocation).
    pub fn invalidate(&self, serial: &str) -> Vec<Vec<u8>> {
        let mut dropped = Vec::new();
        self.cache().retain(|key, c| {
            let keep = c.serial != serial;
            if !keep {
                dropped.push(key.clone());
            }
            keep
        });
        dropped
    }

    /// Sign new answers for the given CertIDs (DER) and cache them: after a
    /// revocation, and for cached answers about to go stale, so that serving
    /// stays free of HSM operations.
    pub async fn resign(&self, cert_ids: Vec<Vec<u8>>, registry: &Registry, clock: &dyn Clock) {
        for id in cert_ids {
            // Drop the old answer first, or `respond` would serve it again.
            self.cache().remove(&id);
            let Ok(cert_id) = CertId::from_der(&id) else { continue };
            let request = OcspRequest {
                tbs_request: x509_ocsp::TbsRequest {
                    version: x509_ocsp::Version::V1,
                    requestor_name: None,
                    request_list: vec![x509_ocsp::Request { req_cert: cert_id, single_request_extensions: None }],
                    request_extensions: None,
                },
                optional_signature: None,
            };
            let Ok(der) = request.to_der() else { continue };
            let answer = self.respond(&der, registry, clock).await;
            if !matches!(answer.outcome, Outcome::Signed { .. }) {
                tracing::warn!(outcome = ?answer.outcome, "could not re-sign a cached OCSP answer");
            }
        }
    }

    /// CertIDs of cached answers past three quarters of their refresh
    /// interval (at most `limit`), to re-sign ahead of time.
    pub fn due_for_refresh(&self, clock: &dyn Clock, limit: usize) -> Vec<Vec<u8>> {
        let now = clock.now().unix_timestamp();
        let early = self.schedule.refresh().whole_seconds() * 3 / 4;
        let cache = self.cache();
        let ahead = cache.values().filter(|c| c.this_update > now).map(|c| c.this_update - now).max();
        if let Some(seconds_ahead) = ahead {
            tracing::warn!(
                seconds_ahead,
                "cached OCSP answers are dated in the future: the clock went back; re-signing"
            );
        }
        // Dated in the future (the clock was stepped back): stale too.
        cache
            .iter()
            .filter(|(_, c)| now >= c.this_update + early || c.this_update > now)
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Drop pre-signed answers of certificates another process revoked.
    /// Called every few seconds by the server; returns how many serials were new.
    pub async fn sync_revocations(&self, registry: &Registry, clock: &dyn Clock) -> Result<usize, CaError> {
        let since = clock.now().unix_timestamp() - SYNC_WINDOW_SECONDS;
        let recent = registry.revoked_since(since).await?;
        let fresh: Vec<_> = {
            let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            seen.retain(|(_, at)| *at >= since);
            recent.into_iter().filter(|r| seen.insert(r.clone())).collect()
        };
        let mut dropped = Vec::new();
        for (serial, _) in &fresh {
            dropped.extend(self.invalidate(serial));
        }
        self.resign(dropped, registry, clock).await;
        Ok(fresh.len())
    }

    /// Number of pre-signed answers held.
    pub fn cached_answers(&self) -> usize {
        self.cache().len()
    }

    /// Answer a DER OCSPRequest. Never fails: problems become OCSP error statuses.
    pub async fn respond(&self, request: &[u8], registry: &Registry, clock: &dyn Clock) -> Answer {
        match self.try_respond(request, registry, clock).await {
            Ok(answer) => answer,
            Err(Refusal::Malformed) => error_answer(OcspResponse::malformed_request(), Outcome::MalformedRequest),
            Err(Refusal::Unauthorized) => error_answer(OcspResponse::unauthorized(), Outcome::Unauthorized),
            Err(Refusal::Internal(e)) => {
                tracing::error!(error = %e, "OCSP responder failed");
                error_answer(OcspResponse::internal_error(), Outcome::InternalError)
            }
        }
    }

    async fn try_respond(&self, request: &[u8], registry: &Registry, clock: &dyn Clock) -> Result<Answer, Refusal> {
        let ParsedRequest { cert_ids: list, nonce } =
            parse_request(request).map_err(|MalformedRequest| Refusal::Malformed)?;
        for id in &list {
            self.check_issuer(id)?;
        }
        let now = clock.now().unix_timestamp();
        let cache_key = match (&nonce, list.as_slice()) {
            (None, [only]) => Some(only.to_der().map_err(|_| Refusal::Malformed)?),
            _ => None,
        };
        if let Some(key) = &cache_key {
            let refresh = self.schedule.refresh().whole_seconds();
            if let Some(c) = self.cache().get(key) {
                if c.this_update > now {
                    tracing::warn!(
                        seconds_ahead = c.this_update - now,
                        "a cached OCSP answer is dated in the future: the clock went back; signing a new one"
                    );
                } else if now < c.this_update + refresh && now < c.next_update {
                    return Ok(Answer {
                        der: c.der.clone(),
                        outcome: Outcome::Signed {
                            this_update: c.this_update,
                            next_update: c.next_update,
                            fresh_until: c.this_update + refresh,
                            nonce: false,
                            cached: true,
                            status: c.status,
                        },
                    });
                }
            }
        }

        let this_update = now;
        let next_update = now + self.schedule.validity().whole_seconds();
        let mut responses = Vec::with_capacity(list.len());
        let mut first_status = "unknown";
        for (i, id) in list.iter().enumerate() {
            let serial = hex::encode(id.serial_number.as_bytes());
            let (status, name) = self.status_of(&serial, registry).await?;
            if i == 0 {
                first_status = name;
            }
            let cutoff = Extension {
                extn_id: ID_PKIX_OCSP_ARCHIVE_CUTOFF,
                critical: false,
                extn_value: OctetString::new(self.archive_cutoff.to_der().map_err(internal)?).map_err(internal)?,
            };
            responses.push(SingleResponse {
                cert_id: id.clone(),
                cert_status: status,
                this_update: OcspGeneralizedTime(generalized(this_update).map_err(internal)?),
                next_update: Some(OcspGeneralizedTime(generalized(next_update).map_err(internal)?)),
                single_extensions: Some(vec![cutoff]),
            });
        }
        let response_extensions = match &nonce {
            Some(n) => Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(n.to_der().map_err(internal)?).map_err(internal)?,
            }]),
            None => None,
        };
        let data = ResponseData {
            version: x509_ocsp::Version::V1,
            responder_id: ResponderId::ByKey(self.responder_key_hash.clone()),
            produced_at: OcspGeneralizedTime(generalized(now).map_err(internal)?),
            responses,
            response_extensions,
        };
        let tbs = data.to_der().map_err(internal)?;
        let signature = self.signer.sign(tbs).await.map_err(|e| Refusal::Internal(e.to_string()))?;
        let basic = BasicOcspResponse {
            tbs_response_data: data,
            signature_algorithm: self.signer.algorithm_identifier().clone(),
            signature: der::asn1::BitString::from_bytes(&signature).map_err(internal)?,
            certs: Some(vec![self.responder_cert.clone()]),
        };
        let der = std::sync::Arc::new(OcspResponse::successful(basic).and_then(|r| r.to_der()).map_err(internal)?);
        let refresh = self.schedule.refresh().whole_seconds();
        if let (Some(key), Some(first)) = (cache_key, list.first()) {
            let serial = hex::encode(first.serial_number.as_bytes());
            let mut cache = self.cache();
            if cache.len() >= CACHE_CAPACITY {
                // Bounded memory: drop the stale and, if still full, an arbitrary tenth.
                cache.retain(|_, c| now < c.this_update + refresh);
                if cache.len() >= CACHE_CAPACITY {
                    let drop: Vec<_> = cache.keys().take(CACHE_CAPACITY / 10).cloned().collect();
                    for k in drop {
                        cache.remove(&k);
                    }
                }
            }
            cache.insert(key, Cached { serial, der: der.clone(), this_update, next_update, status: first_status });
        }
        Ok(Answer {
            der,
            outcome: Outcome::Signed {
                this_update,
                next_update,
                fresh_until: this_update + refresh,
                nonce: nonce.is_some(),
                cached: false,
                status: first_status,
            },
        })
    }

    /// Does this responder answer for the issuer `id` names?
    pub fn serves(&self, id: &CertId) -> bool {
        self.check_issuer(id).is_ok()
    }

    fn check_issuer(&self, id: &CertId) -> Result<(), Refusal> {
        let (name, key) = match id.hash_algorithm.oid {
            const_oid::db::rfc5912::ID_SHA_1 => &self.issuer.sha1,
            const_oid::db::rfc5912::ID_SHA_256 => &self.issuer.sha256,
            _ => return Err(Refusal::Malformed),
        };
        if id.issuer_name_hash.as_bytes() == name.as_slice() && id.issuer_key_hash.as_bytes() == key.as_slice() {
            Ok(())
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    async fn status_of(&self, serial: &str, registry: &Registry) -> Result<(CertStatus, &'static str), Refusal> {
        let facts = registry.serial_status(serial).await.map_err(|e| Refusal::Internal(e.to_string()))?;
        let Some(facts) = facts else { return Ok((CertStatus::Unknown(Null), "unknown")) };
        if facts.issuer_serial.as_deref() != Some(self.issuing_serial.as_str()) || facts.status == RowStatus::Aborted {
            return Ok((CertStatus::Unknown(Null), "unknown"));
        }
        match facts.revocation {
            Some(r) => {
                let reason = Reason::from_code(r.reason).filter(|x| *x != Reason::Unspecified).and_then(crl_reason);
                let info = RevokedInfo {
                    revocation_time: OcspGeneralizedTime(generalized(r.revoked_at).map_err(internal)?),
                    revocation_reason: reason,
                };
                Ok((CertStatus::Revoked(info), "revoked"))
            }
            None => Ok((CertStatus::Good(Null), "good")),
        }
    }
}

enum Refusal {
    Malformed,
    Unauthorized,
    Internal(String),
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    Refusal::Internal(e.to_string())
}

/// A DER OCSPRequest the responder will look at: 1 to [`MAX_CERT_IDS`]
/// CertIDs and, if present, a nonce of [`NONCE_LEN`] octets. Which issuer
/// the CertIDs name is checked by the responder.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    pub cert_ids: Vec<CertId>,
    pub nonce: Option<Nonce>,
}

/// The request is not one the responder answers (`malformedRequest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedRequest;

/// Parse a DER OCSPRequest (no registry, no HSM): what [`Responder::respond`]
/// answers with `malformedRequest` is refused here.
pub fn parse_request(der: &[u8]) -> Result<ParsedRequest, MalformedRequest> {
    let req = OcspRequest::from_der(der).map_err(|_| MalformedRequest)?;
    let nonce = request_nonce(&req)?;
    let list = req.tbs_request.request_list;
    if list.is_empty() || list.len() > MAX_CERT_IDS {
        return Err(MalformedRequest);
    }
    Ok(ParsedRequest { cert_ids: list.into_iter().map(|r| r.req_cert).collect(), nonce })
}

fn request_nonce(req: &OcspRequest) -> Result<Option<Nonce>, MalformedRequest> {
    let Some(exts) = &req.tbs_request.request_extensions else { return Ok(None) };
    let Some(ext) = exts.iter().find(|e| e.extn_id == ID_PKIX_OCSP_NONCE) else { return Ok(None) };
    // RFC 8954: the nonce is an OCTET STRING inside extnValue.
    let nonce = Nonce::from_der(ext.extn_value.as_bytes()).map_err(|_| MalformedRequest)?;
    if !NONCE_LEN.contains(&nonce.0.as_bytes().len()) {
        return Err(MalformedRequest);
    }
    Ok(Some(nonce))
}

fn error_answer(response: OcspResponse, outcome: Outcome) -> Answer {
    Answer { der: std::sync::Arc::new(response.to_der().unwrap_or_default()), outcome }
}

fn crl_reason(r: Reason) -> Option<CrlReason> {
    Some(match r {
        Reason::Unspecified => CrlReason::Unspecified,
        Reason::KeyCompromise => CrlReason::KeyCompromise,
        Reason::CaCompromise => CrlReason::CaCompromise,
        Reason::AffiliationChanged => CrlReason::AffiliationChanged,
        Reason::Superseded => CrlReason::Superseded,
        Reason::CessationOfOperation => CrlReason::CessationOfOperation,
        Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        Reason::AaCompromise => CrlReason::AaCompromise,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::asn1::Null;
    use spki::AlgorithmIdentifierOwned;
    use x509_cert::serial_number::SerialNumber;

    fn cert_id(serial: u8) -> CertId {
        CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: const_oid::db::rfc5912::ID_SHA_1,
                parameters: Some(der::Any::encode_from(&Null).unwrap()),
            },
            issuer_name_hash: OctetString::new(vec![1; 20]).unwrap(),
            issuer_key_hash: OctetString::new(vec![2; 20]).unwrap(),
            serial_number: SerialNumber::new(&[serial]).unwrap(),
        }
    }

    fn request(ids: usize, nonce: Option<usize>) -> Vec<u8> {
        let request_extensions = nonce.map(|len| {
            let value = Nonce(OctetString::new(vec![7; len]).unwrap()).to_der().unwrap();
            vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(value).unwrap(),
            }]
        });
        OcspRequest {
            tbs_request: x509_ocsp::TbsRequest {
                version: x509_ocsp::Version::V1,
                requestor_name: None,
                request_list: (0..ids)
                    .map(|i| x509_ocsp::Request { req_cert: cert_id(i as u8 + 1), single_request_extensions: None })
                    .collect(),
                request_extensions,
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn a_request_parses_to_its_cert_ids_and_nonce() {
        let parsed = parse_request(&request(1, None)).unwrap();
        assert_eq!(parsed.cert_ids, vec![cert_id(1)]);
        assert!(parsed.nonce.is_none());
        let parsed = parse_request(&request(MAX_CERT_IDS, Some(32))).unwrap();
        assert_eq!(parsed.cert_ids.len(), MAX_CERT_IDS);
        assert_eq!(parsed.nonce.unwrap().0.as_bytes(), &[7; 32][..]);
        assert!(parse_request(&request(1, Some(*NONCE_LEN.end()))).is_ok());
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert_eq!(parse_request(&request(0, None)).unwrap_err(), MalformedRequest);
        assert_eq!(parse_request(&request(MAX_CERT_IDS + 1, None)).unwrap_err(), MalformedRequest);
        assert_eq!(parse_request(&request(1, Some(*NONCE_LEN.end() + 1))).unwrap_err(), MalformedRequest);
        let good = request(1, None);
        for junk in
            [&b""[..], b"\x30", b"\x30\x80\x00\x00", &good[..good.len() - 1], &[good.as_slice(), b"\0"].concat()]
        {
            assert_eq!(parse_request(junk).unwrap_err(), MalformedRequest, "{junk:02x?}");
        }
    }
}
