#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The signer against a real SoftHSM2 token.

use std::sync::{Arc, OnceLock};

use qcert_hsm::{softhsm, Hsm, HsmConfig, HsmError, KeyAlgorithm, SignatureAlgorithm};
use secrecy::SecretString;
use signature::Verifier;
use spki::DecodePublicKey;

/// One SoftHSM token directory for this test process (`SOFTHSM2_CONF` is read once).
fn token(label: &str) -> HsmConfig {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = softhsm::write_config(dir.path()).expect("softhsm conf");
        std::env::set_var(softhsm::CONF_ENV, conf);
        dir
    });
    let _ = dir;
    let module = std::path::PathBuf::from(softhsm::DEFAULT_MODULE);
    let pin = SecretString::new("1234-user".into());
    qcert_hsm::init_token(&module, label, &SecretString::new("so-pin-1".into()), &pin).expect("init token");
    HsmConfig { module, token_label: label.into(), pin }
}

fn verify(spki: &[u8], alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) {
    match alg {
        SignatureAlgorithm::EcdsaSha384 => {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki).expect("p384 spki");
            let sig = p384::ecdsa::DerSignature::try_from(sig).expect("DER signature");
            key.verify(msg, &sig).expect("P-384 signature verifies");
        }
        SignatureAlgorithm::EcdsaSha256 => {
            use sha2::Digest;
            use signature::hazmat::PrehashVerifier;
            let digest = sha2::Sha256::digest(msg);
            if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_der(spki) {
                let sig = p256::ecdsa::Signature::from_der(sig).expect("DER signature");
                key.verify_prehash(&digest, &sig).expect("P-256 signature verifies");
            } else {
                let key = p384::ecdsa::VerifyingKey::from_public_key_der(spki).expect("p384 spki");
                let sig = p384::ecdsa::Signature::from_der(sig).expect("DER signature");
                key.verify_prehash(&digest, &sig).expect("P-384/SHA-256 signature verifies");
            }
        }
        SignatureAlgorithm::RsaPkcs1Sha256 | SignatureAlgorithm::RsaPkcs1Sha384 => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki).expect("rsa spki");
            let sig = rsa::pkcs1v15::Signature::try_from(sig).expect("sig");
            if alg == SignatureAlgorithm::RsaPkcs1Sha256 {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig).expect("verifies");
            } else {
                rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig).expect("verifies");
            }
        }
        SignatureAlgorithm::RsaPssSha256 | SignatureAlgorithm::RsaPssSha384 => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki).expect("rsa spki");
            let sig = rsa::pss::Signature::try_from(sig).expect("sig");
            if alg == SignatureAlgorithm::RsaPssSha256 {
                rsa::pss::VerifyingKey::<sha2::Sha256>::new(key).verify(msg, &sig).expect("verifies");
            } else {
                rsa::pss::VerifyingKey::<sha2::Sha384>::new(key).verify(msg, &sig).expect("verifies");
            }
        }
    }
}

#[test]
fn every_key_type_signs_verifiably_and_is_found_again_by_label() {
    let hsm = Hsm::open(&token("kinds")).expect("open");
    let cases = [
        (KeyAlgorithm::EcP384, vec![SignatureAlgorithm::EcdsaSha384, SignatureAlgorithm::EcdsaSha256]),
        (KeyAlgorithm::EcP256, vec![SignatureAlgorithm::EcdsaSha256]),
        (
            KeyAlgorithm::Rsa3072,
            vec![
                SignatureAlgorithm::RsaPkcs1Sha256,
                SignatureAlgorithm::RsaPkcs1Sha384,
                SignatureAlgorithm::RsaPssSha256,
                SignatureAlgorithm::RsaPssSha384,
            ],
        ),
        (KeyAlgorithm::Rsa4096, vec![SignatureAlgorithm::RsaPkcs1Sha384]),
    ];
    for (alg, sigs) in cases {
        let label = format!("key-{alg}");
        let made = hsm.generate_key(&label, alg).expect("generate");
        let found = hsm.find_key(&label).expect("find");
        assert_eq!(found.algorithm(), alg);
        assert_eq!(found.spki_der(), made.spki_der());
        for sig_alg in sigs {
            let msg = format!("message for {alg} {sig_alg:?}");
            let sig = hsm.sign(&found, sig_alg, msg.as_bytes()).expect("sign");
            verify(found.spki_der(), sig_alg, msg.as_bytes(), &sig);
        }
    }
    // P-384 signs only with ECDSA.
    let ec = hsm.find_key("key-ec-p384").expect("find");
    assert!(matches!(hsm.sign(&ec, SignatureAlgorithm::RsaPkcs1Sha256, b"x"), Err(HsmError::AlgorithmMismatch { .. })));
}

#[test]
fn keys_are_sensitive_non_extractable_and_sign_only() {
    use cryptoki::object::{Attribute, AttributeType, ObjectClass};
    let hsm = Hsm::open(&token("attrs")).expect("open");
    hsm.generate_key("ca", KeyAlgorithm::EcP384).expect("generate");
    assert!(matches!(hsm.generate_key("ca", KeyAlgorithm::EcP384), Err(HsmError::KeyExists(_))));
    let session = hsm.pkcs11().open_ro_session(hsm.slot().expect("slot")).expect("session");
    let handles = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"ca".to_vec())])
        .expect("find");
    let handle = *handles.first().expect("private key present");
    let attrs = session
        .get_attributes(
            handle,
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Sign,
                AttributeType::Decrypt,
                AttributeType::Derive,
            ],
        )
        .expect("attributes");
    for a in attrs {
        match a {
            Attribute::Sensitive(v) => assert!(v, "sensitive"),
            Attribute::Extractable(v) => assert!(!v, "non-extractable"),
            Attribute::Sign(v) => assert!(v, "can sign"),
            Attribute::Decrypt(v) => assert!(!v, "cannot decrypt"),
            Attribute::Derive(v) => assert!(!v, "cannot derive"),
            _ => {}
        }
    }
}

#[test]
fn wrong_pin_and_unknown_token_are_typed_errors() {
    let mut config = token("pins");
    config.pin = SecretString::new("not-the-pin".into());
    let err = Hsm::open(&config).expect_err("wrong PIN refused");
    assert!(matches!(err, HsmError::PinIncorrect), "{err:?}");
    assert!(!err.to_string().contains("not-the-pin"));
    config.token_label = "no-such-token".into();
    assert!(matches!(Hsm::open(&config), Err(HsmError::TokenNotFound(_))));
    let hsm = Hsm::open(&token("lookup")).expect("open");
    assert!(matches!(hsm.find_key("absent"), Err(HsmError::KeyNotFound(_))));
}

#[test]
fn a_lost_session_is_reported_and_the_next_call_reconnects() {
    let hsm = Hsm::open(&token("reconnect")).expect("open");
    let key = hsm.generate_key("k", KeyAlgorithm::EcP384).expect("generate");
    hsm.sign(&key, SignatureAlgorithm::EcdsaSha384, b"before").expect("sign");
    // The token drops our login (as after a token reset): any session may log
    // the whole application out.
    let other = hsm.pkcs11().open_ro_session(hsm.slot().expect("slot")).expect("session");
    other.logout().expect("logout");
    drop(other);
    let err = hsm.sign(&key, SignatureAlgorithm::EcdsaSha384, b"during").expect_err("lost session reported");
    assert!(err.is_disconnect(), "{err:?}");
    let sig = hsm.sign(&key, SignatureAlgorithm::EcdsaSha384, b"after").expect("reconnected");
    verify(key.spki_der(), SignatureAlgorithm::EcdsaSha384, b"after", &sig);
}

#[test]
fn many_threads_sign_at_once() {
    let hsm = Hsm::open(&token("threads")).expect("open");
    let key = Arc::new(hsm.generate_key("k", KeyAlgorithm::EcP384).expect("generate"));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let hsm = hsm.clone();
            let key = key.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let msg = format!("{t}-{i}");
                    let sig = hsm.sign(&key, SignatureAlgorithm::EcdsaSha384, msg.as_bytes()).expect("sign");
                    verify(key.spki_der(), SignatureAlgorithm::EcdsaSha384, msg.as_bytes(), &sig);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread finished without panic");
    }
}

#[test]
fn a_certificate_object_is_stored_next_to_its_key_listed_and_deleted() {
    let hsm = Hsm::open(&token("certs")).expect("open");
    // Opaque bytes: this crate stores what it is given, it does not parse certificates.
    let (der, subject) = (b"\x30\x03\x02\x01\x07".to_vec(), b"\x30\x00".to_vec());
    let err = hsm.store_certificate("signing-2026", &der, &subject).expect_err("no key pair yet");
    assert!(matches!(err, HsmError::KeyNotFound(_)), "{err:?}");
    hsm.generate_key("signing-2026", KeyAlgorithm::EcP256).expect("key");
    hsm.generate_key("signing-2027", KeyAlgorithm::EcP256).expect("key");
    hsm.store_certificate("signing-2026", &der, &subject).expect("store");
    let mut labels = hsm.key_labels().expect("labels");
    labels.sort();
    assert_eq!(labels, ["signing-2026", "signing-2027"]);
    let err = hsm.store_certificate("signing-2026", &der, &subject).expect_err("one certificate per label");
    assert!(matches!(err, HsmError::KeyExists(_)), "{err:?}");
    hsm.store_certificate("signing-2027", b"\x30\x00", &subject).expect("store");
    let mut listed = hsm.certificates().expect("list");
    listed.sort();
    assert_eq!(
        listed,
        vec![("signing-2026".to_owned(), der.clone()), ("signing-2027".to_owned(), b"\x30\x00".to_vec())]
    );
    assert_eq!(hsm.delete_certificates("signing-2026").expect("delete"), 1);
    assert_eq!(hsm.delete_certificates("signing-2026").expect("delete again"), 0);
    assert_eq!(hsm.certificates().expect("list").len(), 1);
    // The key pair stays: only the certificate object went.
    hsm.find_key("signing-2026").expect("key still there");
    let err = hsm.delete_certificates("holder-x").expect_err("holder key space");
    assert!(matches!(err, HsmError::WrongKeySpace(_)), "{err:?}");
}
