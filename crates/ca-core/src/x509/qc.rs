//! ETSI EN 319 412-5 qcStatements and RFC 3739 semantics information.
//! No maintained crate carries these types, so they are spelled out here.

use der::asn1::{Any, Ia5String, ObjectIdentifier, PrintableString};
use der::Sequence;

/// id-etsi-qcs-QcCompliance: issued as a qualified certificate.
pub const QC_COMPLIANCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.1");
/// id-etsi-qcs-QcSSCD: the private key sits on a QSCD.
pub const QC_SSCD: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.4");
/// id-etsi-qcs-QcPDS: PKI disclosure statement locations.
pub const QC_PDS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.5");
/// id-etsi-qcs-QcType.
pub const QC_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6");
/// id-etsi-qct-esign: for electronic signatures.
pub const QCT_ESIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.1");
/// id-qcs-pkixQCSyntax-v2 (RFC 3739).
pub const PKIX_QC_SYNTAX_V2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.11.2");
/// id-etsi-qcs-semanticsId-Natural (EN 319 412-1 5.1.3).
pub const SEMANTICS_ID_NATURAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.194121.1.1");

/// QCStatement ::= SEQUENCE { statementId OID, statementInfo ANY OPTIONAL }
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct QcStatement {
    pub statement_id: ObjectIdentifier,
    pub statement_info: Option<Any>,
}

/// SemanticsInformation ::= SEQUENCE { semanticsIdentifier OID OPTIONAL,
/// nameRegistrationAuthorities GeneralNames OPTIONAL } (only the first is used).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SemanticsInformation {
    pub semantics_identifier: Option<ObjectIdentifier>,
}

/// PdsLocation ::= SEQUENCE { url IA5String, language PrintableString (SIZE(2)) }
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct PdsLocation {
    pub url: Ia5String,
    pub language: PrintableString,
}

/// QCStatements ::= SEQUENCE OF QCStatement
pub type QcStatements = Vec<QcStatement>;

/// The statements of a QCP-n-qscd certificate, in the order EN 319 412-5 lists them.
pub fn qcp_n_qscd(pds: &[(String, String)]) -> Result<QcStatements, der::Error> {
    let locations = pds
        .iter()
        .map(|(url, lang)| Ok(PdsLocation { url: Ia5String::new(url)?, language: PrintableString::new(lang)? }))
        .collect::<Result<Vec<_>, der::Error>>()?;
    Ok(vec![
        QcStatement {
            statement_id: PKIX_QC_SYNTAX_V2,
            statement_info: Some(Any::encode_from(&SemanticsInformation {
                semantics_identifier: Some(SEMANTICS_ID_NATURAL),
            })?),
        },
        QcStatement { statement_id: QC_COMPLIANCE, statement_info: None },
        QcStatement { statement_id: QC_SSCD, statement_info: None },
        QcStatement { statement_id: QC_TYPE, statement_info: Some(Any::encode_from(&vec![QCT_ESIGN])?) },
        QcStatement { statement_id: QC_PDS, statement_info: Some(Any::encode_from(&locations)?) },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn statements_round_trip_and_carry_english_pds() {
        let pds = vec![("https://pki.example/pds/en".to_string(), "en".to_string())];
        let der = qcp_n_qscd(&pds).unwrap().to_der().unwrap();
        let back = QcStatements::from_der(&der).unwrap();
        let ids: Vec<_> = back.iter().map(|s| s.statement_id).collect();
        assert_eq!(ids, vec![PKIX_QC_SYNTAX_V2, QC_COMPLIANCE, QC_SSCD, QC_TYPE, QC_PDS]);
        let pds_info = back[4].statement_info.as_ref().unwrap();
        let locs: Vec<PdsLocation> = pds_info.decode_as().unwrap();
        assert_eq!(locs[0].language.as_str(), "en");
        let sem: SemanticsInformation = back[0].statement_info.as_ref().unwrap().decode_as().unwrap();
        assert_eq!(sem.semantics_identifier, Some(SEMANTICS_ID_NATURAL));
    }

    #[test]
    fn pds_language_must_be_printable() {
        let pds = vec![("https://pki.example/pds".to_string(), "e*".to_string())];
        assert!(qcp_n_qscd(&pds).is_err());
    }
}
