//! CRLs (RFC 5280 section 5), encoded here because RustCrypto has no CRL
//! builder, and streamed: entries are appended to one buffer as the registry
//! yields them, so memory stays at about the size of the DER itself.
//!
//! CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue BIT STRING }
//! TBSCertList ::= SEQUENCE { version v2, signature, issuer, thisUpdate, nextUpdate,
//!     revokedCertificates SEQUENCE OF SEQUENCE { userCertificate, revocationDate,
//!     crlEntryExtensions OPTIONAL } OPTIONAL, crlExtensions [0] EXPLICIT OPTIONAL }

use der::asn1::{GeneralizedTime, ObjectIdentifier, OctetString};
use der::{Encode, Length};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::name::Name;

use crate::error::CaError;
use crate::x509;

/// id-ce-expiredCertsOnCRL (X.509 2019, 2.5.29.60).
pub const EXPIRED_CERTS_ON_CRL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.60");
const ID_CE_CRL_REASONS: ObjectIdentifier = const_oid::db::rfc5280::ID_CE_CRL_REASONS;
const ID_CE_INVALIDITY_DATE: ObjectIdentifier = const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE;

/// RFC 5280 CRLReason codes qcert accepts: no certificateHold (6) or
/// removeFromCRL (8), since a revoked qualified certificate never returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    PrivilegeWithdrawn = 9,
    AaCompromise = 10,
}

impl Reason {
    const ALL: [(Reason, &'static str); 8] = [
        (Reason::Unspecified, "unspecified"),
        (Reason::KeyCompromise, "keyCompromise"),
        (Reason::CaCompromise, "cACompromise"),
        (Reason::AffiliationChanged, "affiliationChanged"),
        (Reason::Superseded, "superseded"),
        (Reason::CessationOfOperation, "cessationOfOperation"),
        (Reason::PrivilegeWithdrawn, "privilegeWithdrawn"),
        (Reason::AaCompromise, "aACompromise"),
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        Reason::ALL.iter().find(|(r, _)| *r == self).map_or("unspecified", |(_, n)| n)
    }

    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.iter().map(|(r, _)| *r).find(|r| r.code() == code)
    }

    /// Parse an RFC 5280 name (case-insensitive, `-`/`_` ignored).
    pub fn parse(s: &str) -> Result<Reason, CaError> {
        let norm = |x: &str| x.to_ascii_lowercase().replace(['-', '_'], "");
        if norm(s) == "certificatehold" || norm(s) == "removefromcrl" {
            return Err(CaError::InvalidInput(format!(
                "{s}: a revoked qualified certificate never becomes valid again (eIDAS Art. 28(4)), so there is no hold"
            )));
        }
        Reason::ALL.iter().find(|(_, n)| norm(n) == norm(s)).map(|(r, _)| *r).ok_or_else(|| {
            let names: Vec<_> = Reason::ALL.iter().map(|(_, n)| *n).collect();
            CaError::InvalidInput(format!("unknown revocation reason {s:?} (one of {})", names.join(", ")))
        })
    }
}

/// One revoked certificate as it goes on the CRL.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Content octets of the serial INTEGER.
    pub serial: &'a [u8],
    pub revoked_at: i64,
    pub reason: Reason,
    pub invalidity_date: Option<i64>,
}

/// What a CRL says besides its entries.
#[derive(Debug, Clone)]
pub struct CrlInfo<'a> {
    pub issuer: &'a Name,
    pub signature_algorithm: &'a AlgorithmIdentifierOwned,
    pub issuer_key_id: &'a [u8],
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub crl_number: u64,
    /// ExpiredCertsOnCRL: the CA's notBefore, so no revoked certificate ever drops off.
    pub expired_certs_on_crl: OffsetDateTime,
}

/// Largest DER header qcert writes: tag, 0x84 and four length octets.
const MAX_HEADER: usize = 6;

/// Writes one CRL into a single buffer: room for the two outer headers is
/// kept at the front, entries are appended as they come, and headers are
/// filled in once lengths are known. Peak memory is about the DER itself.
#[derive(Debug)]
pub struct CrlWriter {
    buf: Vec<u8>,
    /// Where the (reserved) revokedCertificates header starts.
    slot: usize,
    count: u64,
    tail: Vec<u8>,
    scratch: Vec<u8>,
}

/// A finished TBSCertList: `buf[start..]`.
#[derive(Debug)]
pub struct Tbs {
    buf: Vec<u8>,
    start: usize,
}

impl Tbs {
    /// Split into the buffer and where the TBS starts in it (for signing in place).
    pub fn into_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.start)
    }

    pub fn from_parts(buf: Vec<u8>, start: usize) -> Tbs {
        Tbs { buf, start }
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or_default()
    }
}

impl CrlWriter {
    pub fn new(info: &CrlInfo<'_>) -> Result<CrlWriter, CaError> {
        let mut buf = Vec::with_capacity(4096);
        buf.resize(2 * MAX_HEADER, 0);
        tlv(0x02, &[0x01], &mut buf)?; // version v2
        info.signature_algorithm.encode_to_vec(&mut buf).map_err(CaError::encoding)?;
        info.issuer.encode_to_vec(&mut buf).map_err(CaError::encoding)?;
        x509::x509_time(info.this_update)?.encode_to_vec(&mut buf).map_err(CaError::encoding)?;
        x509::x509_time(info.next_update)?.encode_to_vec(&mut buf).map_err(CaError::encoding)?;
        let slot = buf.len();
        buf.resize(slot + MAX_HEADER, 0);

        let mut exts = Vec::new();
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(info.issuer_key_id).map_err(CaError::encoding)?),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        extension(
            const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
            &aki.to_der().map_err(CaError::encoding)?,
            &mut exts,
        )?;
        let number = der::asn1::Uint::new(&info.crl_number.to_be_bytes()).map_err(CaError::encoding)?;
        extension(const_oid::db::rfc5280::ID_CE_CRL_NUMBER, &number.to_der().map_err(CaError::encoding)?, &mut exts)?;
        let cutoff = generalized(info.expired_certs_on_crl.unix_timestamp())?.to_der().map_err(CaError::encoding)?;
        extension(EXPIRED_CERTS_ON_CRL, &cutoff, &mut exts)?;
        let mut ext_seq = Vec::new();
        tlv(0x30, &exts, &mut ext_seq)?;
        let mut tail = Vec::new();
        tlv(0xa0, &ext_seq, &mut tail)?;
        Ok(CrlWriter { buf, slot, count: 0, tail, scratch: Vec::with_capacity(96) })
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn push(&mut self, e: &Entry<'_>) -> Result<(), CaError> {
        let entry = &mut self.scratch;
        entry.clear();
        tlv(0x02, e.serial, entry)?;
        x509::x509_time(time_of(e.revoked_at)?)?.encode_to_vec(entry).map_err(CaError::encoding)?;
        let mut exts = Vec::new();
        if e.reason != Reason::Unspecified {
            // RFC 5280 5.3.1: reasonCode absent rather than unspecified.
            extension(ID_CE_CRL_REASONS, &[0x0a, 0x01, e.reason.code()], &mut exts)?;
        }
        if let Some(at) = e.invalidity_date {
            let value = generalized(at)?.to_der().map_err(CaError::encoding)?;
            extension(ID_CE_INVALIDITY_DATE, &value, &mut exts)?;
        }
        if !exts.is_empty() {
            tlv(0x30, &exts, entry)?;
        }
        tlv(0x30, &self.scratch, &mut self.buf)?;
        self.count += 1;
        Ok(())
    }

    /// Close revokedCertificates (left out when empty, as an empty SEQUENCE
    /// OF is not allowed), append the extensions, and write the TBS header.
    pub fn finish(mut self) -> Result<Tbs, CaError> {
        let body = self.slot + MAX_HEADER;
        if self.count == 0 {
            self.buf.truncate(self.slot);
        } else {
            let mut h = Vec::with_capacity(MAX_HEADER);
            header(0x30, self.buf.len() - body, &mut h)?;
            let gap = MAX_HEADER - h.len();
            if let Some(dst) = self.buf.get_mut(self.slot..self.slot + h.len()) {
                dst.copy_from_slice(&h);
            }
            if gap > 0 {
                self.buf.copy_within(body.., self.slot + h.len());
                self.buf.truncate(self.buf.len() - gap);
            }
        }
        self.buf.extend_from_slice(&self.tail);
        let mut h = Vec::with_capacity(MAX_HEADER);
        header(0x30, self.buf.len() - 2 * MAX_HEADER, &mut h)?;
        let start = 2 * MAX_HEADER - h.len();
        if let Some(dst) = self.buf.get_mut(start..2 * MAX_HEADER) {
            dst.copy_from_slice(&h);
        }
        Ok(Tbs { buf: self.buf, start })
    }
}

/// CertificateList from the TBS and its signature, in the same buffer.
pub fn assemble(tbs: Tbs, algorithm: &AlgorithmIdentifierOwned, signature: &[u8]) -> Result<Vec<u8>, CaError> {
    let Tbs { mut buf, start } = tbs;
    algorithm.encode_to_vec(&mut buf).map_err(CaError::encoding)?;
    header(0x03, signature.len() + 1, &mut buf)?;
    buf.push(0); // no unused bits
    buf.extend_from_slice(signature);
    let mut h = Vec::with_capacity(MAX_HEADER);
    header(0x30, buf.len() - start, &mut h)?;
    let begin = start.checked_sub(h.len()).ok_or_else(|| CaError::Internal("CRL header does not fit".into()))?;
    if let Some(dst) = buf.get_mut(begin..start) {
        dst.copy_from_slice(&h);
    }
    buf.drain(..begin);
    Ok(buf)
}

fn time_of(unix: i64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(CaError::encoding)
}

pub(crate) fn generalized(unix: i64) -> Result<GeneralizedTime, CaError> {
    let secs = u64::try_from(unix).map_err(|_| CaError::InvalidInput("time before 1970".into()))?;
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(CaError::encoding)
}

/// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted), extnValue OCTET STRING }
fn extension(oid: ObjectIdentifier, value: &[u8], out: &mut Vec<u8>) -> Result<(), CaError> {
    let mut ext = oid.to_der().map_err(CaError::encoding)?;
    tlv(0x04, value, &mut ext)?;
    tlv(0x30, &ext, out)
}

fn tlv(tag: u8, content: &[u8], out: &mut Vec<u8>) -> Result<(), CaError> {
    header(tag, content.len(), out)?;
    out.extend_from_slice(content);
    Ok(())
}

fn header(tag: u8, len: usize, out: &mut Vec<u8>) -> Result<(), CaError> {
    out.push(tag);
    Length::try_from(len).map_err(CaError::encoding)?.encode_to_vec(out).map_err(CaError::encoding)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;
    use x509_cert::crl::CertificateList;

    fn info<'a>(issuer: &'a Name, alg: &'a AlgorithmIdentifierOwned) -> CrlInfo<'a> {
        CrlInfo {
            issuer,
            signature_algorithm: alg,
            issuer_key_id: &[7; 20],
            this_update: time::macros::datetime!(2026-11-25 12:00 UTC),
            next_update: time::macros::datetime!(2026-11-26 12:00 UTC),
            crl_number: 300,
            expired_certs_on_crl: time::macros::datetime!(2026-01-01 0:00 UTC),
        }
    }

    #[test]
    fn streamed_encoding_decodes_with_x509_cert() {
        let issuer: Name = "CN=Test CA,C=RO".parse().unwrap();
        let alg = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384, parameters: None };
        let mut entries = CrlWriter::new(&info(&issuer, &alg)).unwrap();
        let serials: Vec<Vec<u8>> = (0..300u32).map(|i| [&[0x40u8][..], &i.to_be_bytes()[..]].concat()).collect();
        for (i, s) in serials.iter().enumerate() {
            let reason = if i % 3 == 0 { Reason::KeyCompromise } else { Reason::Unspecified };
            let invalidity = (i % 2 == 0).then_some(1_760_000_000);
            entries
                .push(&Entry { serial: s, revoked_at: 1_764_000_000 + i as i64, reason, invalidity_date: invalidity })
                .unwrap();
        }
        let der = assemble(entries.finish().unwrap(), &alg, &[1, 2, 3]).unwrap();
        let crl = CertificateList::from_der(&der).unwrap();
        let list = crl.tbs_cert_list;
        assert_eq!(list.version, x509_cert::Version::V2);
        assert_eq!(list.issuer, issuer);
        let revoked = list.revoked_certificates.unwrap();
        assert_eq!(revoked.len(), 300);
        assert_eq!(revoked[3].serial_number.as_bytes(), serials[3].as_slice());
        assert_eq!(revoked[3].crl_entry_extensions.as_ref().unwrap().len(), 1);
        assert!(revoked[1].crl_entry_extensions.is_none());
        let exts = list.crl_extensions.unwrap();
        let ids: Vec<_> = exts.iter().map(|e| e.extn_id).collect();
        assert!(ids.contains(&EXPIRED_CERTS_ON_CRL));
        assert_eq!(crl.signature.raw_bytes(), &[1, 2, 3]);
    }

    #[test]
    fn an_empty_crl_leaves_revoked_certificates_out() {
        let issuer: Name = "CN=Test CA,C=RO".parse().unwrap();
        let alg = AlgorithmIdentifierOwned { oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_384, parameters: None };
        let der = assemble(CrlWriter::new(&info(&issuer, &alg)).unwrap().finish().unwrap(), &alg, &[9]).unwrap();
        let crl = CertificateList::from_der(&der).unwrap();
        assert!(crl.tbs_cert_list.revoked_certificates.is_none());
    }

    #[test]
    fn reasons_parse_and_hold_is_refused() {
        assert_eq!(Reason::parse("keyCompromise").unwrap(), Reason::KeyCompromise);
        assert_eq!(Reason::parse("key-compromise").unwrap(), Reason::KeyCompromise);
        assert_eq!(Reason::parse("SUPERSEDED").unwrap(), Reason::Superseded);
        assert!(Reason::parse("certificateHold").unwrap_err().to_string().contains("never"));
        assert!(Reason::parse("bored").is_err());
        assert_eq!(Reason::from_code(9), Some(Reason::PrivilegeWithdrawn));
        assert_eq!(Reason::from_code(6), None);
    }
}
