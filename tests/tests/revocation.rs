#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Revocation and CRLs, on SQLite and PostgreSQL, judged by openssl and pkilint.

use std::process::Command;

use qcert_ca_core::{CaError, Clock, CrlScope, Holder, KeySource, Reason, ValidityYears};
use qcert_tests::*;
use time::Duration;
use x509_cert::crl::CertificateList;

fn holder() -> Holder {
    Holder::parse("Mihai", "Dobre", "mihai.dobre@example.ro", "RO", "1900101123457").expect("holder")
}

async fn issue(ca: &qcert_ca_core::Ca) -> qcert_ca_core::Issued {
    ca.issue("qcp-n-qscd", &holder(), ValidityYears::new(1).expect("years"), KeySource::Csr(openssl_csr(CsrKey::P384)))
        .await
        .expect("issue")
}

fn openssl_verify(dir: &std::path::Path, crl_files: &[&std::path::Path], cert: &std::path::Path) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-crl_check_all", "-CAfile"])
        .arg(dir.join("root.pem"))
        .arg("-untrusted")
        .arg(dir.join("issuing.pem"));
    for crl in crl_files {
        cmd.arg("-CRLfile").arg(crl);
    }
    let out = cmd.arg(cert).output().expect("openssl verify");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

on_both_stores!(revocation_is_permanent_idempotent_and_on_the_next_crl);
async fn revocation_is_permanent_idempotent_and_on_the_next_crl(db: &TestDb) {
    let clock = test_clock();
    let (ca, config) = new_ca(db, clock.clone()).await;
    ca.refresh_crls().await.expect("initial CRLs");
    let first_number = ca.current_crl(CrlScope::Issuing).await.expect("crl").expect("exists").crl_number;
    let good = issue(&ca).await;
    let bad = issue(&ca).await;

    let compromised_at = clock.now() - Duration::hours(2);
    let r = ca
        .revoke(&bad.serial.to_uppercase(), Reason::KeyCompromise, Some(compromised_at), "hotline:agent-7")
        .await
        .expect("revoke");
    assert!(r.newly_revoked);
    assert_eq!(r.record.reason, Reason::KeyCompromise.code());
    let crl = ca.current_crl(CrlScope::Issuing).await.expect("crl").expect("exists");
    assert_eq!(crl.crl_number, first_number + 1, "one new CRL for one new revocation");
    assert_eq!(crl.entries, 1);

    clock.advance(Duration::seconds(1));
    let again = ca.revoke(&bad.serial, Reason::Superseded, None, "ra:officer-2").await.expect("revoke again");
    assert!(!again.newly_revoked);
    assert_eq!(again.record, r.record, "the first revocation stands, unchanged");
    let same = ca.current_crl(CrlScope::Issuing).await.expect("crl").expect("exists");
    assert_eq!(same.crl_number, crl.crl_number, "a repeated request publishes nothing new");

    let dir = tempfile::tempdir().expect("tmp");
    let h = ca.hierarchy();
    write_pem(dir.path(), "root.pem", "CERTIFICATE", &h.root);
    write_pem(dir.path(), "issuing.pem", "CERTIFICATE", &h.issuing);
    let crl_pem = write_pem(dir.path(), "issuing.crl.pem", "X509 CRL", &crl.der);
    let arl = ca.current_crl(CrlScope::Root).await.expect("arl").expect("exists");
    let arl_pem = write_pem(dir.path(), "root.crl.pem", "X509 CRL", &arl.der);
    pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &crl_pem).expect("CRL lints clean");
    pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &arl_pem).expect("ARL lints clean");
    run_ok(
        Command::new("openssl")
            .args(["crl", "-noout", "-CAfile"])
            .arg(dir.path().join("issuing.pem"))
            .arg("-in")
            .arg(&crl_pem),
    );

    let bad_pem = write_pem(dir.path(), "bad.pem", "CERTIFICATE", &bad.der);
    let good_pem = write_pem(dir.path(), "good.pem", "CERTIFICATE", &good.der);
    let (ok, text) = openssl_verify(dir.path(), &[&crl_pem, &arl_pem], &good_pem);
    assert!(ok, "good certificate verifies with CRL checks: {text}");
    let (ok, text) = openssl_verify(dir.path(), &[&crl_pem, &arl_pem], &bad_pem);
    assert!(!ok && text.contains("certificate revoked"), "revoked certificate refused: {text}");

    // The CRL entry carries the reason and the invalidity date.
    let parsed = <CertificateList as der::Decode>::from_der(&crl.der).expect("parse CRL");
    let entry = &parsed.tbs_cert_list.revoked_certificates.expect("entries")[0];
    assert_eq!(hex::encode(entry.serial_number.as_bytes()), bad.serial);
    let ext_ids: Vec<String> =
        entry.crl_entry_extensions.as_ref().expect("entry extensions").iter().map(|e| e.extn_id.to_string()).collect();
    assert_eq!(ext_ids, ["2.5.29.21", "2.5.29.24"]);

    // A restart (the CA opened anew on the same registry and token) keeps it all.
    let reopened = qcert_ca_core::Ca::open(
        qcert_hsm::Hsm::open(&config).expect("hsm"),
        db.registry.clone(),
        qcert_ca_core::Policy::load(&policies_dir(), "http://pki.qcert-demo.eu").expect("policy"),
        clock.clone(),
    )
    .await
    .expect("reopen");
    let again = reopened.revoke(&bad.serial, Reason::Unspecified, None, "ops").await.expect("revoke after restart");
    assert!(!again.newly_revoked);

    // Long after expiry the certificate stays listed, and CRLNumber keeps growing.
    clock.advance(Duration::days(3 * 366));
    let later = reopened.publish_crl(CrlScope::Issuing).await.expect("later CRL");
    assert!(later.crl_number > crl.crl_number);
    assert_eq!(later.entries, 1, "expired revoked certificates stay on the CRL");
}

on_both_stores!(bad_revocation_requests_are_refused);
async fn bad_revocation_requests_are_refused(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let err = ca.revoke("0badc0ffee", Reason::KeyCompromise, None, "ops").await.expect_err("unknown serial");
    assert!(matches!(err, CaError::UnknownSerial(_)), "{err}");
    let err = ca.revoke("not hex!", Reason::KeyCompromise, None, "ops").await.expect_err("bad serial");
    assert!(err.to_string().contains("must be 1 to 42 hex digits"), "{err}");
    assert!(!err.to_string().contains("not hex!"), "the refused value is not echoed: {err}");
    assert!(Reason::parse("certificateHold").is_err());
    let issued = issue(&ca).await;
    let future = ca.clock().now() + Duration::hours(1);
    let err = ca.revoke(&issued.serial, Reason::KeyCompromise, Some(future), "ops").await.expect_err("future");
    assert!(err.to_string().contains("future"), "{err}");
    let err = ca.revoke(&issued.serial, Reason::KeyCompromise, None, " ").await.expect_err("who");
    assert!(err.to_string().contains("who asked"), "{err}");
    assert!(db.registry.revocation(&issued.serial).await.expect("query").is_none(), "refusals stored nothing");
}

on_both_stores!(crl_numbers_never_go_back_with_two_cas_on_one_registry);
async fn crl_numbers_never_go_back_with_two_cas_on_one_registry(db: &TestDb) {
    let clock = test_clock();
    let (ca, config) = new_ca(db, clock.clone()).await;
    // A second CA instance on the same registry and token, as a second qcert process would be.
    let other = qcert_ca_core::Ca::open(
        qcert_hsm::Hsm::open(&config).expect("hsm"),
        qcert_ca_core::Registry::open(&db.url, 2).await.expect("second pool"),
        qcert_ca_core::Policy::load(&policies_dir(), "http://pki.qcert-demo.eu").expect("policy"),
        clock.clone(),
    )
    .await
    .expect("open");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let ca = if i % 2 == 0 { ca.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move { ca.publish_crl(CrlScope::Issuing).await.expect("publish").crl_number }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.expect("task"));
    }
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 10, "every CRL got its own number: {numbers:?}");
    assert_eq!(
        ca.current_crl(CrlScope::Issuing).await.expect("q").expect("crl").crl_number,
        *numbers.last().expect("n")
    );
}

on_both_stores!(a_retry_publishes_the_crl_a_failed_first_request_did_not);
async fn a_retry_publishes_the_crl_a_failed_first_request_did_not(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    ca.refresh_crls().await.expect("CRLs");
    let issued = issue(&ca).await;
    // As if the first request had crashed between recording and publishing.
    let cert = db.registry.certificate(&issued.serial).await.expect("q").expect("stored");
    let first = qcert_ca_core::store::RevocationRecord {
        serial: issued.serial.clone(),
        issuer_serial: cert.cert.issuer_serial.expect("issuer"),
        reason: Reason::KeyCompromise.code(),
        revoked_at: clock.now().unix_timestamp(),
        invalidity_date: None,
        requested_by: "hotline:agent-1".into(),
    };
    db.registry.revoke(&first).await.expect("record");
    assert_eq!(ca.current_crl(CrlScope::Issuing).await.expect("q").expect("crl").entries, 0);
    let again = ca.revoke(&issued.serial, Reason::KeyCompromise, None, "hotline:agent-2").await.expect("retry");
    assert!(!again.newly_revoked);
    assert_eq!(again.record.requested_by, "hotline:agent-1");
    assert_eq!(ca.current_crl(CrlScope::Issuing).await.expect("q").expect("crl").entries, 1, "published on retry");
}
