//! X.509 building blocks: OIDs, names, extensions, times, the ETSI
//! qcStatements, and assembling a signed certificate from its TBS part.

pub mod qc;

use const_oid::AssociatedOid;
use der::asn1::{
    Any, BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString, PrintableStringRef, UtcTime,
    Utf8StringRef,
};
use der::Encode;
use sha1::Digest;
use time::OffsetDateTime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::time::Time;

use crate::error::CaError;

/// Object identifiers qcert writes that `const-oid`'s database lacks or names awkwardly.
pub mod oid {
    use der::asn1::ObjectIdentifier as Oid;
    /// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1).
    pub const OCSP_NOCHECK: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.48.1.5");
    /// qcStatements (RFC 3739).
    pub const QC_STATEMENTS: Oid = Oid::new_unwrap("1.3.6.1.5.5.7.1.3");
    /// ETSI EN 319 411-2 QCP-n-qscd.
    pub const QCP_N_QSCD: Oid = Oid::new_unwrap("0.4.0.194112.1.2");
    /// organizationIdentifier (X.520).
    pub const ORGANIZATION_IDENTIFIER: Oid = Oid::new_unwrap("2.5.4.97");
    pub const COUNTRY: Oid = const_oid::db::rfc4519::C;
    pub const ORGANIZATION: Oid = const_oid::db::rfc4519::O;
    pub const COMMON_NAME: Oid = const_oid::db::rfc4519::CN;
    pub const GIVEN_NAME: Oid = const_oid::db::rfc4519::GIVEN_NAME;
    pub const SURNAME: Oid = const_oid::db::rfc4519::SN;
    pub const SERIAL_NUMBER: Oid = const_oid::db::rfc4519::SERIAL_NUMBER;
    pub const ID_AD_OCSP: Oid = const_oid::db::rfc5280::ID_AD_OCSP;
    pub const ID_AD_CA_ISSUERS: Oid = const_oid::db::rfc5280::ID_AD_CA_ISSUERS;
    pub const ID_KP_OCSP_SIGNING: Oid = const_oid::db::rfc5280::ID_KP_OCSP_SIGNING;
    pub const ID_KP_SERVER_AUTH: Oid = const_oid::db::rfc5280::ID_KP_SERVER_AUTH;
    pub const ID_KP_TIME_STAMPING: Oid = const_oid::db::rfc5280::ID_KP_TIME_STAMPING;
}

/// How an attribute value is encoded in a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringKind {
    /// countryName and serialNumber (X.520 mandates PrintableString).
    Printable,
    Utf8,
}

/// An end-entity certificate's subject, from validated holder data only:
/// C, givenName, surname, CN ("given-name surname"), serialNumber (the
/// semantics identifier).
pub fn holder_subject(holder: &crate::holder::Holder) -> Result<Name, CaError> {
    name(&[
        (oid::COUNTRY, StringKind::Printable, holder.country.as_str()),
        (oid::GIVEN_NAME, StringKind::Utf8, holder.given_name.as_str()),
        (oid::SURNAME, StringKind::Utf8, holder.surname.as_str()),
        (oid::COMMON_NAME, StringKind::Utf8, &holder.common_name()),
        (oid::SERIAL_NUMBER, StringKind::Printable, holder.semantics_id.as_str()),
    ])
}

/// A distinguished name from (type, value) pairs in DER order (least specific first),
/// one attribute per RDN.
pub fn name(attrs: &[(ObjectIdentifier, StringKind, &str)]) -> Result<Name, CaError> {
    let mut rdns = Vec::with_capacity(attrs.len());
    for (oid, kind, value) in attrs {
        let value = match kind {
            StringKind::Printable => Any::encode_from(&PrintableStringRef::new(value).map_err(|_| {
                CaError::InvalidInput(format!("{value:?} has characters not allowed in a PrintableString"))
            })?),
            StringKind::Utf8 => Any::encode_from(&Utf8StringRef::new(value).map_err(CaError::encoding)?),
        }
        .map_err(CaError::encoding)?;
        let atv = AttributeTypeAndValue { oid: *oid, value };
        let set = der::asn1::SetOfVec::try_from(vec![atv]).map_err(CaError::encoding)?;
        rdns.push(RelativeDistinguishedName(set));
    }
    Ok(RdnSequence(rdns))
}

/// An extension holding the DER of `value`.
pub fn extension<T: Encode + AssociatedOid>(critical: bool, value: &T) -> Result<Extension, CaError> {
    raw_extension(T::OID, critical, value)
}

/// An extension with an explicit OID (for types without `AssociatedOid`).
pub fn raw_extension<T: Encode>(oid: ObjectIdentifier, critical: bool, value: &T) -> Result<Extension, CaError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().map_err(CaError::encoding)?).map_err(CaError::encoding)?,
    })
}

/// Key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 4.2.1.2, method 1).
pub fn key_identifier(spki: &spki::SubjectPublicKeyInfoOwned) -> Vec<u8> {
    sha1::Sha1::digest(spki.subject_public_key.raw_bytes()).to_vec()
}

/// An IA5String for URLs and email addresses.
pub fn ia5(s: &str) -> Result<Ia5String, CaError> {
    Ia5String::new(s).map_err(|_| CaError::InvalidInput(format!("{s:?} is not an IA5 (ASCII) string")))
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
pub fn x509_time(at: OffsetDateTime) -> Result<Time, CaError> {
    let secs = u64::try_from(at.unix_timestamp()).map_err(|_| CaError::InvalidInput("time before 1970".into()))?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs)).map_err(CaError::encoding)?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt).map_err(CaError::encoding)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

/// Seconds since the epoch of an X.509 time.
pub fn unix_seconds(t: &Time) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// The certificate made of a TBS part and its signature.
pub fn assemble(tbs: x509_cert::TbsCertificate, signature: &[u8]) -> Result<x509_cert::Certificate, CaError> {
    Ok(x509_cert::Certificate {
        signature_algorithm: tbs.signature.clone(),
        tbs_certificate: tbs,
        signature: BitString::from_bytes(signature).map_err(CaError::encoding)?,
    })
}

/// Render a name as RFC 4514 text (most specific first), for storage and logs.
pub fn name_text(name: &Name) -> String {
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holder::Holder;

    #[test]
    fn a_holder_subject_carries_the_validated_fields() {
        let holder = Holder::parse("Ana", "Popescu-Ionescu", "ana@example.ro", "ro", "IDCHU-AB/12.3").unwrap();
        let subject = holder_subject(&holder).unwrap();
        assert_eq!(subject.0.len(), 5);
        let text = name_text(&subject);
        for part in ["RO", "Ana Popescu-Ionescu", "IDCHU-AB/12.3"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
