//! Checks a to-be-signed end-entity certificate against its profile before
//! anything is signed. Written from the profile (DOMAIN.md, EN 319 412-2/-5),
//! independently of the code that builds the certificate, so that a builder
//! bug is caught here rather than by a relying party.

use std::collections::BTreeSet;

use der::asn1::ObjectIdentifier;
use der::Decode;
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage, KeyUsages};
use x509_cert::TbsCertificate;

use crate::csr;
use crate::error::CaError;
use crate::policy::Profile;
use crate::x509::{oid, qc};

/// Extensions a QCP-n-qscd certificate carries, each exactly once.
const REQUIRED: [ObjectIdentifier; 8] = [
    const_oid::db::rfc5280::ID_CE_KEY_USAGE,
    const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES,
    oid::QC_STATEMENTS,
    const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME,
    const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS,
    const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS,
    const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER,
    const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER,
];

/// Subject attributes in DER order.
const SUBJECT: [ObjectIdentifier; 5] =
    [oid::COUNTRY, oid::GIVEN_NAME, oid::SURNAME, oid::COMMON_NAME, oid::SERIAL_NUMBER];

/// Refuse a TBS certificate that breaks `profile`.
pub fn check_end_entity(tbs: &TbsCertificate, profile: &Profile, max_years: u8) -> Result<(), CaError> {
    let fail = |reason: String| Err(CaError::ProfileViolation { profile: profile.name.clone(), reason });
    if tbs.version != x509_cert::Version::V3 {
        return fail("not an X.509 v3 certificate".into());
    }
    let serial = tbs.serial_number.as_bytes();
    let random_bytes = serial.iter().skip_while(|b| **b == 0).count();
    if serial.first().is_some_and(|b| *b >= 0x80) || random_bytes < 9 || serial.len() > 20 {
        return fail(format!(
            "serial must be positive with at least 64 random bits and at most 20 octets (has {} octets)",
            serial.len()
        ));
    }
    let nb = crate::x509::unix_seconds(&tbs.validity.not_before);
    let na = crate::x509::unix_seconds(&tbs.validity.not_after);
    let max = i64::from(max_years) * 366 * 86_400;
    if na <= nb || na - nb > max {
        return fail(format!("validity must be positive and at most {max_years} years"));
    }
    let attrs: Vec<ObjectIdentifier> = tbs.subject.0.iter().flat_map(|rdn| rdn.0.iter().map(|a| a.oid)).collect();
    if attrs != SUBJECT || tbs.subject.0.iter().any(|rdn| rdn.0.len() != 1) {
        return fail("subject must be C, givenName, surname, CN, serialNumber, one per RDN".into());
    }
    if tbs.issuer.0.is_empty() {
        return fail("issuer is empty".into());
    }
    let described = csr::describe(&tbs.subject_public_key_info)
        .map_err(|e| CaError::ProfileViolation { profile: profile.name.clone(), reason: e.to_string() })?;
    let key_ok = match described {
        csr::KeyDescription::Ec(a) => profile.accepted_keys.contains(&a),
        csr::KeyDescription::Rsa { bits } => bits >= profile.min_rsa_bits,
    };
    if !key_ok {
        return fail(format!("{described} keys are not accepted"));
    }

    let exts = tbs.extensions.as_deref().unwrap_or(&[]);
    let mut seen = BTreeSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            return fail(format!("extension {} appears twice", e.extn_id));
        }
    }
    for required in REQUIRED {
        if !seen.contains(&required) {
            return fail(format!("extension {required} is missing"));
        }
    }
    for e in exts {
        let value = e.extn_value.as_bytes();
        let bad = |what: &str| CaError::ProfileViolation {
            profile: profile.name.clone(),
            reason: format!("{what} does not decode"),
        };
        match e.extn_id {
            const_oid::db::rfc5280::ID_CE_KEY_USAGE => {
                let ku = KeyUsage::from_der(value).map_err(|_| bad("keyUsage"))?;
                if !e.critical || ku != KeyUsage(KeyUsages::NonRepudiation.into()) {
                    return fail("keyUsage must be critical and nonRepudiation only".into());
                }
            }
            const_oid::db::rfc5280::ID_CE_CERTIFICATE_POLICIES => {
                let cp = CertificatePolicies::from_der(value).map_err(|_| bad("certificatePolicies"))?;
                if e.critical {
                    return fail("certificatePolicies must not be critical".into());
                }
                let have: Vec<_> = cp.0.iter().map(|p| p.policy_identifier).collect();
                if let Some(missing) = profile.policy_oids.iter().find(|o| !have.contains(o)) {
                    return fail(format!("certificatePolicies lacks {missing}"));
                }
            }
            oid::QC_STATEMENTS => {
                let qcs = qc::QcStatements::from_der(value).map_err(|_| bad("qcStatements"))?;
                if e.critical {
                    return fail("qcStatements must not be critical".into());
                }
                let ids: Vec<_> = qcs.iter().map(|s| s.statement_id).collect();
                for needed in [qc::QC_COMPLIANCE, qc::QC_SSCD, qc::QC_TYPE, qc::QC_PDS, qc::PKIX_QC_SYNTAX_V2] {
                    if !ids.contains(&needed) {
                        return fail(format!("qcStatements lacks {needed}"));
                    }
                }
                let english_https_pds = qcs
                    .iter()
                    .filter(|s| s.statement_id == qc::QC_PDS)
                    .filter_map(|s| s.statement_info.as_ref()?.decode_as::<Vec<qc::PdsLocation>>().ok())
                    .flatten()
                    .any(|l| l.language.as_str() == "en" && l.url.as_str().starts_with("https://"));
                if !english_https_pds {
                    return fail("QcPDS needs an https location in English (\"en\")".into());
                }
            }
            const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE => {
                let eku = ExtendedKeyUsage::from_der(value).map_err(|_| bad("extKeyUsage"))?;
                if eku.0.contains(&oid::ID_KP_SERVER_AUTH) {
                    return fail("serverAuth is not allowed".into());
                }
            }
            const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS => {
                let bc = BasicConstraints::from_der(value).map_err(|_| bad("basicConstraints"))?;
                if bc.ca {
                    return fail("an end-entity certificate must not be a CA".into());
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Which CA-side certificate a ceremony is about to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaCertKind {
    Root,
    Issuing,
    OcspResponder,
    /// The QTSP's own seal.
    Seal,
    /// A time-stamping unit.
    Tsa,
}

impl CaCertKind {
    fn name(self) -> &'static str {
        match self {
            CaCertKind::Root => "root CA",
            CaCertKind::Issuing => "issuing CA",
            CaCertKind::OcspResponder => "OCSP responder",
            CaCertKind::Seal => "QTSP seal",
            CaCertKind::Tsa => "time-stamping unit",
        }
    }
}

/// Refuse a to-be-signed CA, OCSP-responder certificate that breaks RFC 5280
/// / EN 319 412-2 for its kind: v3, serial, validity inside the issuer's,
/// issuer name = issuer's subject (own subject for the root), each
/// extension once, basicConstraints / keyUsage / extKeyUsage as the kind
/// needs, SKI, and AKI = the issuer's key id (except on the root).
pub fn check_ca_certificate(
    tbs: &TbsCertificate,
    kind: CaCertKind,
    issuer: Option<&x509_cert::Certificate>,
) -> Result<(), CaError> {
    use const_oid::db::rfc5280 as r;
    use x509_cert::ext::pkix::{AuthorityKeyIdentifier, SubjectKeyIdentifier};
    let fail = |reason: String| Err(CaError::ProfileViolation { profile: kind.name().into(), reason });
    if tbs.version != x509_cert::Version::V3 {
        return fail("not an X.509 v3 certificate".into());
    }
    let serial = tbs.serial_number.as_bytes();
    if serial.first().is_some_and(|b| *b >= 0x80)
        || serial.iter().skip_while(|b| **b == 0).count() < 9
        || serial.len() > 20
    {
        return fail("serial must be positive with at least 64 random bits and at most 20 octets".into());
    }
    let nb = crate::x509::unix_seconds(&tbs.validity.not_before);
    let na = crate::x509::unix_seconds(&tbs.validity.not_after);
    if na <= nb {
        return fail("validity must be positive".into());
    }
    match (kind, issuer) {
        (CaCertKind::Root, None) => {
            if tbs.issuer != tbs.subject {
                return fail("a root is self-issued: issuer must equal subject".into());
            }
        }
        (CaCertKind::Root, Some(_)) | (_, None) => return fail("wrong issuer for this kind of certificate".into()),
        (_, Some(i)) => {
            let it = &i.tbs_certificate;
            if tbs.issuer != it.subject {
                return fail("issuer must be the issuing certificate's subject".into());
            }
            if na > crate::x509::unix_seconds(&it.validity.not_after)
                || nb < crate::x509::unix_seconds(&it.validity.not_before)
            {
                return fail("validity must lie within the issuer's".into());
            }
        }
    }
    let exts = tbs.extensions.as_deref().unwrap_or(&[]);
    let mut seen = BTreeSet::new();
    for e in exts {
        if !seen.insert(e.extn_id) {
            return fail(format!("extension {} appears twice", e.extn_id));
        }
    }
    let find = |id| exts.iter().find(|e| e.extn_id == id);
    let bad = |what: &str| CaError::ProfileViolation {
        profile: kind.name().into(),
        reason: format!("{what} does not decode"),
    };

    let ku = find(r::ID_CE_KEY_USAGE).ok_or_else(|| bad("keyUsage (missing)"))?;
    let usage = KeyUsage::from_der(ku.extn_value.as_bytes()).map_err(|_| bad("keyUsage"))?;
    let want = match kind {
        CaCertKind::Root | CaCertKind::Issuing => KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign),
        CaCertKind::OcspResponder | CaCertKind::Tsa => KeyUsage(KeyUsages::DigitalSignature.into()),
        CaCertKind::Seal => KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
    };
    if !ku.critical || usage != want {
        return fail(
            "keyUsage must be critical: keyCertSign+cRLSign for a CA, digitalSignature for a responder or TSU, \
             digitalSignature+nonRepudiation for a seal"
                .into(),
        );
    }
    let bc = find(r::ID_CE_BASIC_CONSTRAINTS)
        .map(|e| BasicConstraints::from_der(e.extn_value.as_bytes()).map(|b| (e.critical, b)))
        .transpose()
        .map_err(|_| bad("basicConstraints"))?;
    match (kind, bc) {
        (CaCertKind::Root, Some((true, b))) if b.ca && b.path_len_constraint.is_none() => {}
        (CaCertKind::Issuing, Some((true, b))) if b.ca && b.path_len_constraint == Some(0) => {}
        (CaCertKind::OcspResponder | CaCertKind::Seal | CaCertKind::Tsa, None) => {}
        (CaCertKind::OcspResponder | CaCertKind::Seal | CaCertKind::Tsa, Some((_, b))) if !b.ca => {}
        _ => {
            return fail(
                "basicConstraints: critical cA (pathLen 0 for an issuing CA), none or not cA for a responder".into(),
            )
        }
    }
    let eku = find(r::ID_CE_EXT_KEY_USAGE)
        .map(|e| ExtendedKeyUsage::from_der(e.extn_value.as_bytes()))
        .transpose()
        .map_err(|_| bad("extKeyUsage"))?;
    let eku_critical = find(r::ID_CE_EXT_KEY_USAGE).is_some_and(|e| e.critical);
    match (kind, eku) {
        (CaCertKind::OcspResponder, Some(e)) if e.0 == [oid::ID_KP_OCSP_SIGNING] => {}
        (CaCertKind::Tsa, Some(e)) if e.0 == [oid::ID_KP_TIME_STAMPING] && eku_critical => {}
        (CaCertKind::Root | CaCertKind::Issuing | CaCertKind::Seal, None) => {}
        _ => {
            return fail(
                "extKeyUsage: id-kp-OCSPSigning alone on a responder, id-kp-timeStamping alone and critical on a \
                 TSU, none on a CA or seal"
                    .into(),
            )
        }
    }
    let ski = find(r::ID_CE_SUBJECT_KEY_IDENTIFIER).ok_or_else(|| bad("subjectKeyIdentifier (missing)"))?;
    let ski = SubjectKeyIdentifier::from_der(ski.extn_value.as_bytes()).map_err(|_| bad("subjectKeyIdentifier"))?;
    if ski.0.as_bytes() != crate::x509::key_identifier(&tbs.subject_public_key_info).as_slice() {
        return fail("subjectKeyIdentifier must be the key's identifier".into());
    }
    match (find(r::ID_CE_AUTHORITY_KEY_IDENTIFIER), issuer) {
        (None, None) => {}
        (Some(e), Some(i)) => {
            let aki =
                AuthorityKeyIdentifier::from_der(e.extn_value.as_bytes()).map_err(|_| bad("authorityKeyIdentifier"))?;
            let issuer_kid = crate::x509::key_identifier(&i.tbs_certificate.subject_public_key_info);
            if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(issuer_kid.as_slice()) {
                return fail("authorityKeyIdentifier must be the issuer's key identifier".into());
            }
        }
        _ => return fail("authorityKeyIdentifier: required below the root, absent on it".into()),
    }
    if kind == CaCertKind::OcspResponder && find(oid::OCSP_NOCHECK).is_none() {
        return fail("a delegated responder certificate carries id-pkix-ocsp-nocheck".into());
    }
    Ok(())
}
