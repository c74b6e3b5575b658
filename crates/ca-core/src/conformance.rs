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
