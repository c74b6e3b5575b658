#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Key ceremony and issuance through SoftHSM, judged by pkilint and openssl,
//! on SQLite and PostgreSQL.

use std::process::Command;
use std::sync::Arc;

use der::{Decode, Encode};
use qcert_ca_core::store::CertStatus;
use qcert_ca_core::x509::qc;
use qcert_ca_core::{CaError, Holder, KeySource, ValidityYears};
use qcert_tests::*;
use x509_cert::Certificate;

fn holder() -> Holder {
    Holder::parse("Ioana", "Ionescu-Popa", "ioana.ionescu@example.ro", "RO", "1900101123457").expect("valid holder")
}

fn years(n: u32) -> ValidityYears {
    ValidityYears::new(n).expect("valid years")
}

/// Everything a relying party would check, by the outside judges.
fn judge(hierarchy: &qcert_ca_core::Hierarchy, ee_der: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = write_pem(dir.path(), "root.pem", "CERTIFICATE", &hierarchy.root);
    let issuing = write_pem(dir.path(), "issuing.pem", "CERTIFICATE", &hierarchy.issuing);
    let ocsp = write_pem(dir.path(), "ocsp.pem", "CERTIFICATE", &hierarchy.ocsp);
    let ee = write_pem(dir.path(), "ee.pem", "CERTIFICATE", ee_der);

    pkilint("lint_etsi_cert", &["-t", "QCP-N-QSCD-EIDAS-FINAL-CERTIFICATE"], &ee)
        .expect("pkilint ETSI QCP-n-qscd clean");
    for ca in [&root, &issuing, &ocsp] {
        pkilint("lint_pkix_cert", &[], ca)
            .unwrap_or_else(|f| panic!("pkilint PKIX findings on {}:\n{f}", ca.display()));
    }
    // openssl checks every signature on the way up and the CA constraints.
    let mut verify = Command::new("openssl");
    verify.args(["verify", "-x509_strict", "-CAfile"]).arg(&root).arg("-untrusted").arg(&issuing).arg(&ee);
    let out = run_ok(&mut verify);
    assert!(out.contains(": OK"), "{out}");
    let mut verify = Command::new("openssl");
    verify
        .args(["verify", "-x509_strict", "-purpose", "ocsphelper", "-CAfile"])
        .arg(&root)
        .arg("-untrusted")
        .arg(&issuing)
        .arg(&ocsp);
    run_ok(&mut verify);
}

/// What pkilint does not look at (X509-NOTES.md): QcPDS, semantics, nocheck.
fn checks_pkilint_misses(hierarchy: &qcert_ca_core::Hierarchy, ee_der: &[u8]) {
    let ee = Certificate::from_der(ee_der).expect("parse EE");
    let exts = ee.tbs_certificate.extensions.clone().unwrap_or_default();
    let qcs = exts.iter().find(|e| e.extn_id == qcert_ca_core::x509::oid::QC_STATEMENTS).expect("qcStatements present");
    let statements = qc::QcStatements::from_der(qcs.extn_value.as_bytes()).expect("decode qcStatements");
    let pds: Vec<qc::PdsLocation> = statements
        .iter()
        .find(|s| s.statement_id == qc::QC_PDS)
        .and_then(|s| s.statement_info.as_ref())
        .expect("QcPDS present")
        .decode_as()
        .expect("PDS locations");
    assert!(pds
        .iter()
        .any(|l| l.language.as_str() == "en" && l.url.as_str().starts_with("https://pki.qcert-demo.eu/")));
    let sem: qc::SemanticsInformation = statements
        .iter()
        .find(|s| s.statement_id == qc::PKIX_QC_SYNTAX_V2)
        .and_then(|s| s.statement_info.as_ref())
        .expect("semantics statement")
        .decode_as()
        .expect("semantics info");
    assert_eq!(sem.semantics_identifier, Some(qc::SEMANTICS_ID_NATURAL));
    let ocsp = Certificate::from_der(&hierarchy.ocsp).expect("parse OCSP cert");
    let ocsp_exts = ocsp.tbs_certificate.extensions.unwrap_or_default();
    assert!(ocsp_exts.iter().any(|e| e.extn_id == qcert_ca_core::x509::oid::OCSP_NOCHECK), "ocsp-nocheck present");
    assert_eq!(
        ocsp.tbs_certificate.issuer,
        Certificate::from_der(&hierarchy.issuing).expect("issuing").tbs_certificate.subject
    );
}

on_both_stores!(p384_csr_from_openssl_gives_a_clean_qualified_certificate);
async fn p384_csr_from_openssl_gives_a_clean_qualified_certificate(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let csr = openssl_csr(CsrKey::P384);
    let issued = ca.issue("qcp-n-qscd", &holder(), years(2), KeySource::Csr(csr.clone())).await.expect("issue");
    let cert = Certificate::from_der(&issued.der).expect("parse");
    // The subject is the validated holder's, never the CSR's.
    let subject = cert.tbs_certificate.subject.to_string();
    assert!(subject.contains("CN=Ioana Ionescu-Popa"), "{subject}");
    assert!(subject.contains("PNORO-1900101123457"), "{subject}");
    assert!(!subject.contains("Mallory"), "{subject}");
    let req = x509_cert::request::CertReq::from_der(&csr).expect("csr");
    assert_eq!(cert.tbs_certificate.subject_public_key_info, req.info.public_key);
    assert!(cert.tbs_certificate.serial_number.as_bytes().len() >= 9);
    let rec = ca.registry().certificate(&issued.serial).await.expect("query").expect("stored");
    assert_eq!(rec.status, CertStatus::Issued);
    assert_eq!(rec.der.as_deref(), Some(issued.der.as_slice()));
    assert_eq!(rec.cert.semantics_id.as_deref(), Some("PNORO-1900101123457"));
    judge(&ca.hierarchy(), &issued.der);
    checks_pkilint_misses(&ca.hierarchy(), &issued.der);
}

on_both_stores!(cloud_keys_are_made_in_the_hsm_and_certified);
async fn cloud_keys_are_made_in_the_hsm_and_certified(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let issued = ca.issue("qcp-n-qscd", &holder(), years(1), KeySource::Hsm).await.expect("issue CLOUD");
    let label = issued.hsm_key_label.clone().expect("HSM key label");
    let spki = ca.hsm().holder_public_key(&label).expect("holder key on the HSM");
    let cert = Certificate::from_der(&issued.der).expect("parse");
    assert_eq!(cert.tbs_certificate.subject_public_key_info.to_der().expect("der"), spki);
    // The CA's own lookup cannot reach a holder key: only `csc` signs with it.
    assert!(matches!(ca.hsm().find_key(&label), Err(qcert_hsm::HsmError::WrongKeySpace(_))));
    judge(&ca.hierarchy(), &issued.der);
}

on_both_stores!(other_accepted_keys_issue_too);
async fn other_accepted_keys_issue_too(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    for key in [CsrKey::P256, CsrKey::Rsa(3072)] {
        let issued =
            ca.issue("qcp-n-qscd", &holder(), years(3), KeySource::Csr(openssl_csr(key))).await.expect("issue");
        judge(&ca.hierarchy(), &issued.der);
    }
}

async fn counts(db: &TestDb) -> (i64, i64, i64) {
    let r = &db.registry;
    (
        r.count(CertStatus::Reserved).await.expect("count"),
        r.count(CertStatus::Issued).await.expect("count"),
        r.count(CertStatus::Aborted).await.expect("count"),
    )
}

on_both_stores!(refusals_are_clear_and_store_nothing);
async fn refusals_are_clear_and_store_nothing(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let before = counts(db).await;
    let good = openssl_csr(CsrKey::P384);

    // A CSR whose self-signature no longer matches its content.
    let mut tampered = x509_cert::request::CertReq::from_der(&good).expect("csr");
    tampered.info.subject = "CN=Someone Else".parse().expect("name");
    let tampered = tampered.to_der().expect("der");
    let err = ca.issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(tampered)).await.expect_err("bad signature");
    assert!(matches!(err, CaError::CsrRefused(_)) && err.to_string().contains("self-signature"), "{err}");

    let err = ca
        .issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(openssl_csr(CsrKey::Rsa(2048))))
        .await
        .expect_err("RSA-2048");
    assert!(err.to_string().contains("RSA-2048") && err.to_string().contains("3072"), "{err}");

    let err = ca
        .issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(openssl_csr(CsrKey::Ed25519)))
        .await
        .expect_err("Ed25519");
    assert!(matches!(err, CaError::CsrRefused(_)), "{err}");

    let err =
        ca.issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(b"not a CSR".to_vec())).await.expect_err("garbage");
    assert!(err.to_string().contains("PKCS#10"), "{err}");

    let err = ca.issue("qcp-x", &holder(), years(1), KeySource::Csr(good.clone())).await.expect_err("unknown profile");
    assert!(matches!(err, CaError::UnknownProfile(ref p) if p == "qcp-x"), "{err}");

    for n in [0, 4] {
        let err = ValidityYears::new(n).expect_err("years outside 1..3");
        assert!(err.to_string().contains("1, 2 or 3"), "{err}");
    }
    assert!(Holder::parse("Ioana", "", "a@b.ro", "RO", "1").is_err());
    assert!(Holder::parse("Ioana", "Pop", "a@b", "RO", "1").is_err());

    assert_eq!(counts(db).await, before, "refusals stored nothing");
}

on_both_stores!(many_workers_issue_at_once_without_duplicate_serials);
async fn many_workers_issue_at_once_without_duplicate_serials(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let csrs: Vec<Vec<u8>> = (0..4).map(|_| openssl_csr(CsrKey::P384)).collect();
    let csrs = Arc::new(csrs);
    let mut tasks = Vec::new();
    for w in 0..8 {
        let ca = ca.clone();
        let csrs = csrs.clone();
        tasks.push(tokio::spawn(async move {
            let mut serials = Vec::new();
            for i in 0..8 {
                let csr = csrs[(w + i) % csrs.len()].clone();
                let issued = ca.issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(csr)).await.expect("issue");
                serials.push(issued.serial);
            }
            serials
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let unique: std::collections::BTreeSet<_> = all.iter().cloned().collect();
    assert_eq!(unique.len(), 64);
    let stored: std::collections::BTreeSet<_> =
        ca.registry().issued_serials().await.expect("serials").into_iter().collect();
    assert_eq!(stored, unique);
    assert_eq!(db.registry.count(CertStatus::Reserved).await.expect("count"), 0);
}

on_both_stores!(the_ceremony_runs_once_and_the_ca_reopens);
async fn the_ceremony_runs_once_and_the_ca_reopens(db: &TestDb) {
    let (ca, config) = new_ca(db, test_clock()).await;
    let hsm = qcert_hsm::Hsm::open(&config).expect("open");
    let policy = qcert_ca_core::Policy::load(&policies_dir(), "http://pki.qcert-demo.eu").expect("policy");
    let clock: Arc<dyn qcert_ca_core::Clock> = test_clock();
    let err = qcert_ca_core::Ca::init(hsm.clone(), db.registry.clone(), policy.clone(), clock.clone())
        .await
        .expect_err("second ceremony");
    assert!(matches!(err, CaError::AlreadyInitialised(_)), "{err}");
    let reopened = qcert_ca_core::Ca::open(hsm, db.registry.clone(), policy, clock).await.expect("reopen");
    assert_eq!(reopened.hierarchy().root, ca.hierarchy().root);
    let issued = reopened
        .issue("qcp-n-qscd", &holder(), years(1), KeySource::Csr(openssl_csr(CsrKey::P384)))
        .await
        .expect("issue");
    judge(&reopened.hierarchy(), &issued.der);
}
