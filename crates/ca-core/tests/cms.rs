#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! CMS SignedData verification against messages made by `openssl cms -sign`.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::DecodePem;
use qcert_ca_core::cms::{verify_signed_data, CmsError, Verified, MAX_INPUT};
use x509_cert::Certificate;

const CONTENT: &[u8] = b"revoke serial 0a1b2c: key compromise\n";

#[derive(Debug, Clone, Copy)]
enum Kind {
    P256,
    P384,
    Rsa3072,
}

/// A key and a self-signed certificate made by the openssl CLI.
struct Holder {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    cert: Certificate,
}

impl Holder {
    fn new(kind: Kind) -> Holder {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let keyopt = match kind {
            Kind::P256 => ["EC", "ec_paramgen_curve:P-256"],
            Kind::P384 => ["EC", "ec_paramgen_curve:P-384"],
            Kind::Rsa3072 => ["RSA", "rsa_keygen_bits:3072"],
        };
        openssl(&dir, &["genpkey", "-algorithm", keyopt[0], "-pkeyopt", keyopt[1], "-out", "key.pem"]);
        openssl(
            &dir,
            &["req", "-x509", "-new", "-key", "key.pem", "-subj", "/CN=holder", "-days", "30", "-out", "cert.pem"],
        );
        let cert = Certificate::from_pem(std::fs::read(dir.join("cert.pem")).unwrap()).unwrap();
        Holder { _dir: tmp, dir, cert }
    }

    /// `openssl cms -sign -binary -signer cert.pem -inkey key.pem` over `content`, plus `extra`.
    fn sign(&self, content: &[u8], extra: &[&str]) -> Vec<u8> {
        std::fs::write(self.dir.join("content"), content).unwrap();
        let mut args = vec![
            "cms", "-sign", "-binary", "-signer", "cert.pem", "-inkey", "key.pem", "-in", "content", "-out", "out",
        ];
        args.extend_from_slice(extra);
        openssl(&self.dir, &args);
        std::fs::read(self.dir.join("out")).unwrap()
    }

    /// The usual holder request: attached, SHA-256, DER.
    fn sign_der(&self, content: &[u8]) -> Vec<u8> {
        self.sign(content, &["-nodetach", "-md", "sha256", "-outform", "DER"])
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn position(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle in message")
}

fn assert_verified(result: Result<Verified, CmsError>, content: &[u8]) {
    let verified = result.unwrap();
    assert_eq!(verified.content, content);
    assert!(verified.signing_time.is_some(), "openssl puts in a signing-time");
}

#[test]
fn verifies_der_and_pem_for_each_key_type() {
    for kind in [Kind::P256, Kind::P384, Kind::Rsa3072] {
        let holder = Holder::new(kind);
        for outform in ["DER", "PEM"] {
            let message = holder.sign(CONTENT, &["-nodetach", "-md", "sha256", "-outform", outform]);
            if outform == "PEM" {
                assert!(message.starts_with(b"-----BEGIN CMS-----"), "{kind:?}");
            }
            assert_verified(verify_signed_data(&message, &holder.cert), CONTENT);
        }
    }
}

#[test]
fn verifies_sha384_and_sha512() {
    for kind in [Kind::P256, Kind::P384] {
        let holder = Holder::new(kind);
        for md in ["sha384", "sha512"] {
            let message = holder.sign(CONTENT, &["-nodetach", "-md", md, "-outform", "DER"]);
            assert_verified(verify_signed_data(&message, &holder.cert), CONTENT);
        }
    }
}

#[test]
fn verifies_pkcs7_pem_label_crlf_and_surrounding_whitespace() {
    let holder = Holder::new(Kind::P256);
    let pem = holder.sign(CONTENT, &["-nodetach", "-md", "sha256", "-outform", "PEM"]);
    let pem = String::from_utf8(pem).unwrap().replace("CMS-----", "PKCS7-----");
    let padded = format!("\n  {pem}\n");
    assert_verified(verify_signed_data(padded.as_bytes(), &holder.cert), CONTENT);
    let crlf = pem.replace('\n', "\r\n");
    assert_verified(verify_signed_data(crlf.as_bytes(), &holder.cert), CONTENT);

    let wrong_label = pem.replace("PKCS7-----", "CERTIFICATE-----");
    assert!(matches!(verify_signed_data(wrong_label.as_bytes(), &holder.cert), Err(CmsError::NotSignedData(_))));
}

#[test]
fn verifies_subject_key_identifier_sid() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign(CONTENT, &["-nodetach", "-md", "sha256", "-outform", "DER", "-keyid"]);
    assert_verified(verify_signed_data(&message, &holder.cert), CONTENT);

    let other = Holder::new(Kind::P256);
    assert!(matches!(verify_signed_data(&message, &other.cert), Err(CmsError::WrongSigner { .. })));
}

#[test]
fn verifies_rsa_pss() {
    let holder = Holder::new(Kind::Rsa3072);
    for extra in [
        &["-keyopt", "rsa_padding_mode:pss"][..],
        &["-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:32"],
    ] {
        let mut args = vec!["-nodetach", "-md", "sha256", "-outform", "DER"];
        args.extend_from_slice(extra);
        let message = holder.sign(CONTENT, &args);
        assert_verified(verify_signed_data(&message, &holder.cert), CONTENT);
    }
}

#[test]
fn another_signer_is_wrong_signer() {
    let holder = Holder::new(Kind::P256);
    let other = Holder::new(Kind::P256); // same subject and issuer name, another key and serial
    let message = other.sign_der(CONTENT);
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    let serial = hex::encode(holder.cert.tbs_certificate.serial_number.as_bytes());
    assert!(matches!(&err, CmsError::WrongSigner { serial: s } if *s == serial), "{err:?}");
    assert_eq!(err.to_string(), format!("the request was not signed by certificate {serial}"));

    // A different key type is refused the same way.
    let rsa = Holder::new(Kind::Rsa3072);
    assert!(matches!(verify_signed_data(&rsa.sign_der(CONTENT), &holder.cert), Err(CmsError::WrongSigner { .. })));
}

#[test]
fn tampered_content_is_a_digest_mismatch() {
    for kind in [Kind::P256, Kind::Rsa3072] {
        let holder = Holder::new(kind);
        let mut message = holder.sign_der(CONTENT);
        let at = position(&message, CONTENT);
        message[at] ^= 0x01;
        let err = verify_signed_data(&message, &holder.cert).unwrap_err();
        assert!(matches!(err, CmsError::DigestMismatch), "{kind:?}: {err:?}");
        assert_eq!(err.to_string(), "message digest mismatch");
    }
}

#[test]
fn tampered_signature_or_signed_attributes_do_not_verify() {
    for kind in [Kind::P256, Kind::P384, Kind::Rsa3072] {
        let holder = Holder::new(kind);
        let message = holder.sign_der(CONTENT);

        // No unsigned attributes: the signature value is the end of the message.
        let mut bad_signature = message.clone();
        *bad_signature.last_mut().unwrap() ^= 0x01;
        let err = verify_signed_data(&bad_signature, &holder.cert).unwrap_err();
        assert!(matches!(err, CmsError::BadSignature), "{kind:?}: {err:?}");
        assert_eq!(err.to_string(), "the signature does not verify");

        // aes-256-cbc in the signed S/MIME capabilities becomes another (valid) OID.
        let aes256 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
        let mut bad_attrs = message.clone();
        let at = position(&bad_attrs, &aes256) + aes256.len() - 1;
        bad_attrs[at] = 0x2b;
        let err = verify_signed_data(&bad_attrs, &holder.cert).unwrap_err();
        assert!(matches!(err, CmsError::BadSignature), "{kind:?}: {err:?}");
    }
}

#[test]
fn sha1_is_refused() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign(CONTENT, &["-nodetach", "-md", "sha1", "-outform", "DER"]);
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    assert!(matches!(err, CmsError::UnsupportedAlgorithm(_)), "{err:?}");
}

#[test]
fn detached_signature_is_refused() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign(CONTENT, &["-md", "sha256", "-outform", "DER"]);
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    assert!(matches!(err, CmsError::Detached), "{err:?}");
}

#[test]
fn streamed_ber_is_refused() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign(CONTENT, &["-nodetach", "-stream", "-md", "sha256", "-outform", "DER"]);
    assert!(message.starts_with(&[0x30, 0x80]), "openssl -stream writes indefinite lengths");
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    assert!(matches!(err, CmsError::NotSignedData(_)), "{err:?}");
}

#[test]
fn two_signers_are_refused() {
    let holder = Holder::new(Kind::P256);
    let other = Holder::new(Kind::P384);
    std::fs::copy(other.dir.join("cert.pem"), holder.dir.join("cert2.pem")).unwrap();
    std::fs::copy(other.dir.join("key.pem"), holder.dir.join("key2.pem")).unwrap();
    let message = holder.sign(
        CONTENT,
        &["-nodetach", "-md", "sha256", "-outform", "DER", "-signer", "cert2.pem", "-inkey", "key2.pem"],
    );
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    assert!(matches!(err, CmsError::SignerCount(2)), "{err:?}");
}

#[test]
fn content_other_than_id_data_is_refused() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign(CONTENT, &["-nodetach", "-md", "sha256", "-outform", "DER", "-econtent_type", "1.2.3.4"]);
    let err = verify_signed_data(&message, &holder.cert).unwrap_err();
    assert!(matches!(err, CmsError::ContentType(_)), "{err:?}");
}

#[test]
fn junk_is_refused() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign_der(CONTENT);
    let cert_der = std::fs::read(holder.dir.join("cert.pem")).unwrap();
    for junk in
        [&b""[..], b"garbage", b"\x30\x80\x00\x00", b"-----BEGIN CMS-----\nAAAA\n-----END CMS-----\n", &cert_der]
    {
        let err = verify_signed_data(junk, &holder.cert).unwrap_err();
        assert!(matches!(err, CmsError::NotSignedData(_)), "{junk:?}: {err:?}");
        assert!(err.to_string().starts_with("the request is not a CMS SignedData"));
    }
    // Every truncation of a valid message.
    for len in 0..message.len() {
        assert!(verify_signed_data(&message[..len], &holder.cert).is_err(), "truncated to {len}");
    }
    // Trailing bytes after the ContentInfo.
    let mut trailing = message.clone();
    trailing.push(0);
    assert!(verify_signed_data(&trailing, &holder.cert).is_err());
}

#[test]
fn too_large_is_refused() {
    let holder = Holder::new(Kind::P256);
    let big = vec![b'a'; MAX_INPUT + 1];
    assert!(matches!(verify_signed_data(&big, &holder.cert), Err(CmsError::TooLarge)));
}

#[test]
fn flipping_any_byte_never_panics_nor_changes_the_content() {
    let holder = Holder::new(Kind::P256);
    let message = holder.sign_der(b"ok");
    for at in 0..message.len() {
        for mask in [0x01, 0x80, 0xff] {
            let mut flipped = message.clone();
            flipped[at] ^= mask;
            if let Ok(verified) = verify_signed_data(&flipped, &holder.cert) {
                assert_eq!(verified.content, b"ok", "byte {at} ^ {mask:#x}");
            }
        }
    }
}
