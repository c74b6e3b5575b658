#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The ceremonies' signing half (`qcert_ca_core::ceremony`) on SQLite and
//! PostgreSQL: a root token and an online token, the online CA without the
//! root key, ARL limits and import, officers' verifiers, the CA lint, and
//! a rollover whose retired CA keeps its own CRL.

use der::Decode;
use qcert_ca_core::ceremony;
use qcert_ca_core::conformance::{check_ca_certificate, CaCertKind};
use qcert_ca_core::{Ca, CaError, Clock, CrlScope, Holder, KeySource, Policy, Reason, ValidityYears};
use qcert_hsm::Hsm;
use qcert_tests::*;
use secrecy::SecretString;
use std::sync::Arc;
use x509_cert::Certificate;

on_both_stores!(ceremonies_root_offline_arl_officers_and_rollover);
async fn ceremonies_root_offline_arl_officers_and_rollover(db: &TestDb) {
    let clock = test_clock();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let root_token = Hsm::open(&softhsm_token()).unwrap();
    let online = Hsm::open(&softhsm_token()).unwrap();
    let policy = Policy::load(&policies_dir(), TEST_BASE_URL).unwrap();
    let reg = &db.registry;

    let root = ceremony::root(&root_token, reg, &policy, &policy.root, &*clock).await.unwrap();
    assert!(matches!(
        ceremony::root(&root_token, reg, &policy, &policy.root, &*clock).await,
        Err(CaError::AlreadyInitialised(_))
    ));
    let key = online.generate_key(&policy.issuing.key_label, policy.issuing.key_algorithm).unwrap();
    let issuing =
        ceremony::issuing_ca(&root_token, reg, &policy, &policy.issuing, key.spki_der(), false, &*clock).await.unwrap();
    // The root key signs only on the root token: from the online one it is "not found".
    let other = online.generate_key("not-the-issuing-key", policy.issuing.key_algorithm).unwrap();
    assert!(ceremony::issuing_ca(&online, reg, &policy, &policy.issuing, other.spki_der(), false, &*clock)
        .await
        .is_err());
    let ocsp = ceremony::ocsp_responder(&online, reg, &policy, &policy.ocsp, &*clock).await.unwrap();
    assert_eq!(root.key.spki_sha256, ceremony::spki_sha256(&root.der).unwrap());
    assert_eq!(issuing.signed_with, root.key, "the issuing CA is signed with the root key");
    assert_eq!(ocsp.signed_with, issuing.key);

    // The CA lint: each certificate passes as its kind and fails as another.
    let cert = |der: &[u8]| Certificate::from_der(der).unwrap();
    let (r, i, o) = (cert(&root.der), cert(&issuing.der), cert(&ocsp.der));
    check_ca_certificate(&r.tbs_certificate, CaCertKind::Root, None).unwrap();
    check_ca_certificate(&i.tbs_certificate, CaCertKind::Issuing, Some(&r)).unwrap();
    check_ca_certificate(&o.tbs_certificate, CaCertKind::OcspResponder, Some(&i)).unwrap();
    assert!(check_ca_certificate(&r.tbs_certificate, CaCertKind::Issuing, Some(&r)).is_err());
    assert!(check_ca_certificate(&i.tbs_certificate, CaCertKind::OcspResponder, Some(&r)).is_err());
    assert!(check_ca_certificate(&o.tbs_certificate, CaCertKind::Tsa, Some(&i)).is_err());
    assert!(check_ca_certificate(&o.tbs_certificate, CaCertKind::OcspResponder, Some(&r)).is_err(), "wrong issuer");

    // The online CA: no root key, so nothing root-signed.
    let ca = Ca::open(online.clone(), reg.clone(), policy.clone(), dyn_clock.clone()).await.unwrap();
    assert!(!ca.root_key_online());
    assert!(matches!(ca.publish_crl(CrlScope::Root).await, Err(CaError::RootOffline(_))));
    ca.refresh_crls().await.unwrap();
    assert!(ca.current_crl(CrlScope::Root).await.unwrap().is_none(), "the ARL comes from the ceremony");

    // ARL: at most 12 months.
    let now = clock.now();
    let limit = ceremony::arl_latest_next_update(now);
    assert!(matches!(
        ceremony::arl(&root_token, reg, limit + time::Duration::days(1), &*clock).await,
        Err(CaError::ProfileViolation { .. })
    ));
    let (arl, _) = ceremony::arl(&root_token, reg, limit, &*clock).await.unwrap();
    assert_eq!(ca.current_crl(CrlScope::Root).await.unwrap().unwrap().crl_number, arl.crl_number);
    assert!(!ca.import_arl(&arl.der).await.unwrap(), "the same ARL again: nothing new");
    let issuing_crl = ca.current_crl(CrlScope::Issuing).await.unwrap().unwrap();
    assert!(ca.import_arl(&issuing_crl.der).await.is_err(), "not the root's");
    let mut forged = arl.der.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(ca.import_arl(&forged).await.is_err(), "a broken signature");

    // Officers: Argon2id verifiers, never the credential.
    let good = SecretString::new("correct horse battery".into());
    let v = ceremony::officer_verifier(&good).unwrap();
    assert!(!v.contains("correct horse"));
    assert!(reg.put_ceremony_officer("Officer A", "security officer", &v, 0).await.unwrap());
    assert!(!reg.put_ceremony_officer("Officer A", "security officer", &v, 0).await.unwrap(), "enrolled once");
    let stored = reg.ceremony_officer_verifier("Officer A").await.unwrap().unwrap();
    assert!(ceremony::officer_matches(&stored, &good));
    assert!(!ceremony::officer_matches(&stored, &SecretString::new("wrong horse battery".into())));
    let (a, b) = (SecretString::new("credential-a".into()), SecretString::new("credential-b".into()));
    use secrecy::ExposeSecret;
    let pin = ceremony::dual_control_pin(&[("A", &a), ("B", &b)]);
    assert_eq!(pin.expose_secret(), ceremony::dual_control_pin(&[("B", &b), ("A", &a)]).expose_secret());
    assert_ne!(pin.expose_secret(), ceremony::dual_control_pin(&[("A", &a), ("B", &a)]).expose_secret());

    // A certificate of the first CA, then a rollover.
    let holder = Holder::parse("Mihai", "Dobre", "mihai.dobre@example.ro", "RO", &cnp(1)).unwrap();
    let years = ValidityYears::new(1).unwrap();
    let old = ca.issue("qcp-n-qscd", &holder, years, KeySource::Csr(openssl_csr(CsrKey::P384))).await.unwrap();
    let mut spec2 = policy.issuing.clone();
    spec2.key_label = "qcert-issuing-ca-2".into();
    spec2.common_name = "qcert Demo Qualified Signature CA 2".into();
    let key2 = online.generate_key(&spec2.key_label, spec2.key_algorithm).unwrap();
    ceremony::issuing_ca(&root_token, reg, &policy, &spec2, key2.spki_der(), true, &*clock).await.unwrap();
    let mut ocsp2 = policy.ocsp.clone();
    ocsp2.key_label = "qcert-ocsp-responder-2".into();
    ceremony::ocsp_responder(&online, reg, &policy, &ocsp2, &*clock).await.unwrap();
    let ca2 = Ca::open(online.clone(), reg.clone(), policy.clone(), dyn_clock).await.unwrap();
    assert_eq!((ca2.generation(), ca2.retired_generations()), (2, vec![1]));
    let new = ca2.issue("qcp-n-qscd", &holder, years, KeySource::Csr(openssl_csr(CsrKey::P384))).await.unwrap();
    let issuer = |der: &[u8]| qcert_ca_core::x509::name_text(&cert(der).tbs_certificate.issuer);
    assert!(issuer(&new.der).contains("CA 2") && !issuer(&old.der).contains("CA 2"));
    ca2.revoke(&old.serial, Reason::KeyCompromise, None, "ra:test").await.unwrap();
    ca2.revoke(&new.serial, Reason::KeyCompromise, None, "ra:test").await.unwrap();
    assert_eq!(ca2.current_crl(CrlScope::Retired(1)).await.unwrap().unwrap().entries, 1, "old CA's CRL");
    assert_eq!(ca2.current_crl(CrlScope::Issuing).await.unwrap().unwrap().entries, 1, "new CA's CRL");
    assert_eq!(ca2.issuing_certificate(1).unwrap(), issuing.der);
    assert!(ca2.generation_scope(3).is_none());
}
