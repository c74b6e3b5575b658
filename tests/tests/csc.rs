#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Remote signing over the CSC API with a CLOUD certificate issued through
//! the order flow, on both stores. pyHanko's CSCSigner (the outside judge)
//! signs a PAdES PDF with SHA-384; `pyhanko sign validate` (live
//! revocation) and poppler's `pdfsig` (NSS database with our root) say valid
//! and trusted; after revocation authorize is refused and the signature no
//! longer validates. Sole control: replayed SAD, SAD for another hash,
//! expired SAD, more hashes than authorized, another holder's credential,
//! a replayed TOTP step and wrong codes until locked are all refused, and
//! a revoked or expired certificate neither authorizes nor signs.

use std::path::Path;

use base64::Engine as _;
use qcert_ca_core::{Clock, Reason};
use qcert_tests::cloud::{CloudWorld, CscDocument};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Digest;

const WEBHOOK: [u8; 32] = [15u8; 32];

/// The shared CLOUD world, with this file's CSC calls.
struct World(CloudWorld);

impl std::ops::Deref for World {
    type Target = CloudWorld;
    fn deref(&self) -> &CloudWorld {
        &self.0
    }
}

async fn world(db: &TestDb) -> World {
    World(CloudWorld::new(db, WEBHOOK).await)
}

impl World {
    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut r = self.http.post(format!("{}{path}", self.server.base)).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let r = r.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.as_u16() < 500, "never a 5xx: {status} {v}");
        if !status.is_success() {
            assert!(v["error"].is_string() && v["error_description"].is_string(), "CSC error shape: {v}");
        }
        (status, v)
    }

    /// credentials/authorize (v1 names): the answer.
    async fn authorize(&self, token: &str, serial: &str, hashes: &[Vec<u8>], code: &str) -> (StatusCode, Value) {
        let b64: Vec<String> = hashes.iter().map(|h| b64(h)).collect();
        let body = json!({"credentialID": serial, "numSignatures": hashes.len(), "hash": b64, "OTP": code});
        self.post("/csc/v1/credentials/authorize", Some(token), body).await
    }

    async fn sign(&self, token: &str, serial: &str, sad: &str, hashes: &[Vec<u8>]) -> (StatusCode, Value) {
        let b64: Vec<String> = hashes.iter().map(|h| b64(h)).collect();
        let body = json!({
            "credentialID": serial, "SAD": sad, "hash": b64,
            "hashAlgo": "2.16.840.1.101.3.4.2.2", "signAlgo": "1.2.840.10045.4.3.3"
        });
        self.post("/csc/v1/signatures/signHash", Some(token), body).await
    }

    async fn audit(&self, action: &str, subject: &str) -> Vec<qcert_ca_core::store::audit::AuditRow> {
        let rows = self.ca.registry().audit_page(0, 10_000).await.unwrap();
        rows.into_iter().filter(|r| r.action == action && r.subject == subject).collect()
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn sha384(data: &[u8]) -> Vec<u8> {
    sha2::Sha384::digest(data).to_vec()
}

/// Check an ECDSA P-384 signature (DER) over a SHA-384 digest with the certificate's key.
fn verifies(cert_der: &[u8], digest: &[u8], sig_b64: &str) -> bool {
    use der::{Decode, Encode};
    use signature::hazmat::PrehashVerifier;
    let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().unwrap();
    let key = <p384::ecdsa::VerifyingKey as p384::pkcs8::DecodePublicKey>::from_public_key_der(&spki).unwrap();
    let der = base64::engine::general_purpose::STANDARD.decode(sig_b64).unwrap();
    let Ok(sig) = p384::ecdsa::Signature::from_der(&der) else { return false };
    key.verify_prehash(digest, &sig).is_ok()
}

async fn csc_sign(w: &World, h: &CloudHolder, api: &str, out: &Path) -> (bool, String) {
    w.csc_sign(h, api, CscDocument::Minimal, out).await
}

/// `pyhanko sign validate` against our root only, revocation fetched live and required.
async fn pyhanko_validate(root: &Path, pdf: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(venv_tool("pyhanko"))
        .args(["sign", "validate", "--force-revinfo", "--trust-replace", "--trust"])
        .arg(root)
        .arg(pdf)
        .output()
        .await
        .expect("run pyhanko sign validate");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

on_both_stores!(pyhanko_signs_a_pades_pdf_through_csc_and_validators_agree);
async fn pyhanko_signs_a_pades_pdf_through_csc_and_validators_agree(db: &TestDb) {
    let w = world(db).await;
    let h = w.holder(1).await;
    let root = w.root_pem();
    let pdf = w.dir.path().join("signed.pdf");
    // pyHanko 0.38 sends v1 names (hash, OTP) also to a v2 URL.
    let (signed, text) = csc_sign(&w, &h, "v2", &pdf).await;
    assert!(signed, "{text}");
    assert_eq!(w.audit("csc.authorize", &h.serial).await.len(), 1);
    let signs = w.audit("csc.sign", &h.serial).await;
    assert_eq!(signs.len(), 1);
    assert!(signs[0].detail.contains("hash_algo=2.16.840.1.101.3.4.2.2"), "{}", signs[0].detail);

    let (valid, text) = pyhanko_validate(&root, &pdf).await;
    assert!(valid, "{text}");
    assert!(text.contains(":INTACT:TRUSTED"), "{text}");
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.windows(20).any(|w| w == b"/ETSI.CAdES.detached"), "a PAdES signature");
    let poppler = pdfsig(w.dir.path(), &root, &pdf);
    assert!(poppler.contains("Signature is Valid."), "{poppler}");
    assert!(poppler.contains("Certificate is Trusted."), "{poppler}");
    assert!(poppler.contains("SHA-384") || poppler.contains("SHA384"), "{poppler}");

    // v1 URL too.
    let pdf_v1 = w.dir.path().join("signed-v1.pdf");
    let (signed, text) = csc_sign(&w, &h, "v1", &pdf_v1).await;
    assert!(signed, "{text}");

    w.ca.revoke(&h.serial, Reason::KeyCompromise, None, "ra:test").await.expect("revoke");
    let again = w.dir.path().join("after-revocation.pdf");
    let (signed, text) = csc_sign(&w, &h, "v2", &again).await;
    assert!(!signed && text.contains("REFUSED") && text.contains("revoked"), "{text}");
    assert!(!again.exists());
    let (valid, text) = pyhanko_validate(&root, &pdf_v1).await;
    assert!(!valid && text.to_lowercase().contains("revoked"), "after revocation: {text}");
    w.server.task.abort();
}

on_both_stores!(sole_control_sad_and_codes);
async fn sole_control_sad_and_codes(db: &TestDb) {
    let w = world(db).await;
    let a = w.holder(2).await;
    let b = w.holder(3).await;

    // auth/login: the signing password; a wrong one and no token get 401.
    let (s, v) = w.login("v2", &a, "not the password at all").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(!v.to_string().contains("not the password"), "never echoed");
    let (s, _) = w.post("/csc/v1/credentials/list", None, json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = w.post("/csc/v1/credentials/list", Some("00ff"), json!({})).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_token")));
    let ta = w.token(&a).await;
    let tb = w.token(&b).await;

    // info and credentials.
    let (s, v) = w.post("/csc/v2/info", None, json!({})).await;
    assert_eq!((s, v["specs"].as_str()), (StatusCode::OK, Some("2.0.0.2")), "{v}");
    let (s, v) = w.post("/csc/v1/credentials/list", Some(&ta), json!({})).await;
    assert_eq!((s, v["credentialIDs"].clone()), (StatusCode::OK, json!([a.serial])), "{v}");
    let (s, v) = w
        .post(
            "/csc/v2/credentials/info",
            Some(&ta),
            json!({"credentialID": a.serial, "certificates": "chain", "certInfo": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["SCAL"], "2");
    assert_eq!(v["authMode"], "explicit");
    assert_eq!(v["OTP"]["presence"], "true");
    assert_eq!(v["key"]["curve"], "1.3.132.0.34");
    assert_eq!(v["key"]["len"], 384);
    assert!(v["key"]["algo"].as_array().unwrap().contains(&json!("1.2.840.10045.2.1")));
    assert_eq!(v["cert"]["status"], "valid");
    let chain = v["cert"]["certificates"].as_array().unwrap();
    assert_eq!(chain.len(), 3, "signer first, then issuing CA and root");
    let cert_der = base64::engine::general_purpose::STANDARD.decode(chain[0].as_str().unwrap()).unwrap();
    assert_eq!(cert_der, w.ca.registry().certificate(&a.serial).await.unwrap().unwrap().der.unwrap());
    assert!(v["multisign"].as_u64().unwrap() >= 10);

    // Another holder's credential is unknown to this holder (info, authorize).
    let (s, v) = w.post("/csc/v1/credentials/info", Some(&ta), json!({"credentialID": b.serial})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let h1 = sha384(b"document one");
    let h2 = sha384(b"document two");
    let code = w.next_code(&a);
    let (s, v) = w.authorize(&ta, &b.serial, std::slice::from_ref(&h1), &code).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "another holder's credential: {v}");

    // A SAD for h1: signs h1 once (DER ECDSA over the hash), nothing else.
    let (s, v) = w.authorize(&ta, &a.serial, std::slice::from_ref(&h1), &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["expiresIn"].as_i64().unwrap() <= 300);
    let sad = v["SAD"].as_str().unwrap().to_owned();
    assert!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&sad).unwrap().len() >= 32, "256 bits");
    let stored = qcert_tests::database_contents(db).await;
    assert!(!String::from_utf8_lossy(&stored).contains(&sad), "the SAD is stored only hashed");
    assert!(!String::from_utf8_lossy(&stored).contains(&ta), "tokens are stored only hashed");
    // The same TOTP step again is refused (each step once).
    let (s, v) = w.authorize(&ta, &a.serial, std::slice::from_ref(&h2), &code).await;
    assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_otp")), "replayed step: {v}");
    // Another hash with this SAD: refused, and the SAD still signs h1.
    let (s, v) = w.sign(&ta, &a.serial, &sad, std::slice::from_ref(&h2)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "SAD for another hash: {v}");
    // More hashes than authorized.
    let (s, v) = w.sign(&ta, &a.serial, &sad, &[h1.clone(), h2.clone()]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "more hashes than authorized: {v}");
    // Another holder cannot use it (their session, their credential).
    let (s, _) = w.sign(&tb, &b.serial, &sad, std::slice::from_ref(&h1)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "another holder's SAD");
    let (s, v) = w.sign(&ta, &a.serial, &sad, std::slice::from_ref(&h1)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(verifies(&cert_der, &h1, sigs[0].as_str().unwrap()), "an ECDSA P-384 DER signature over h1");
    let (s, v) = w.sign(&ta, &a.serial, &sad, std::slice::from_ref(&h1)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "replayed SAD: {v}");
    assert!(!v.to_string().contains(&sad), "never echoed");
    assert!(w.audit("csc.sign", &a.serial).await.iter().any(|r| r.detail.contains(&hex::encode(&h1))));

    // numSignatures must be the number of hashes.
    let code = w.next_code(&a);
    let body = json!({"credentialID": a.serial, "numSignatures": 2, "hash": [b64(&h1)], "OTP": code});
    let (s, _) = w.post("/csc/v1/credentials/authorize", Some(&ta), body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // v2 names: 10 hashes per SAD, counted down over two calls, then used up.
    let many: Vec<Vec<u8>> = (0..10).map(|i| sha384(format!("doc {i}").as_bytes())).collect();
    let body = json!({
        "credentialID": a.serial, "numSignatures": 10, "hashes": many.iter().map(|h| b64(h)).collect::<Vec<_>>(),
        "hashAlgorithmOID": "2.16.840.1.101.3.4.2.2", "authData": [{"id": "OTP", "value": code}]
    });
    let (s, v) = w.post("/csc/v2/credentials/authorize", Some(&ta), body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sad10 = v["SAD"].as_str().unwrap().to_owned();
    let v2_sign = |hs: &[Vec<u8>]| {
        json!({
            "credentialID": a.serial, "SAD": sad10, "hashes": hs.iter().map(|h| b64(h)).collect::<Vec<_>>(),
            "hashAlgorithmOID": "2.16.840.1.101.3.4.2.2", "signAlgo": "1.2.840.10045.4.3.3"
        })
    };
    let (s, v) = w.post("/csc/v2/signatures/signHash", Some(&ta), v2_sign(&many[..4])).await;
    assert_eq!((s, v["signatures"].as_array().map(Vec::len)), (StatusCode::OK, Some(4)), "{v}");
    let (s, _) = w.post("/csc/v2/signatures/signHash", Some(&ta), v2_sign(&many[3..5])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a hash already signed");
    let (s, v) = w.post("/csc/v2/signatures/signHash", Some(&ta), v2_sign(&many[4..])).await;
    assert_eq!((s, v["signatures"].as_array().map(Vec::len)), (StatusCode::OK, Some(6)), "{v}");
    for (h, sig) in many[4..].iter().zip(v["signatures"].as_array().unwrap()) {
        assert!(verifies(&cert_der, h, sig.as_str().unwrap()));
    }
    let (s, _) = w.post("/csc/v2/signatures/signHash", Some(&ta), v2_sign(&many[..1])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "used up");

    // An expired SAD (the injected clock steps past 5 minutes).
    let code = w.next_code(&a);
    let (s, v) = w.authorize(&ta, &a.serial, std::slice::from_ref(&h2), &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let late = v["SAD"].as_str().unwrap().to_owned();
    w.clock.advance(time::Duration::seconds(301));
    let (s, v) = w.sign(&ta, &a.serial, &late, std::slice::from_ref(&h2)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "expired SAD: {v}");
    assert!(v["error_description"].as_str().unwrap().contains("expired"), "{v}");

    // Wrong codes until locked (counted per authenticator, as every code).
    let ta = w.token(&a).await;
    let now = w.clock.now();
    let right: Vec<String> = [-30, 0, 30].iter().map(|d| totp(&a.secret, now + time::Duration::seconds(*d))).collect();
    let wrong: Vec<String> =
        (0..).map(|i| format!("{:06}", i * 7919 % 1_000_000)).filter(|c| !right.contains(c)).take(5).collect();
    for (i, c) in wrong.iter().enumerate() {
        let (s, v) = w.authorize(&ta, &a.serial, std::slice::from_ref(&h2), c).await;
        if i < 4 {
            assert_eq!((s, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_otp")), "{i}: {v}");
        } else {
            assert_eq!((s, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("access_denied")), "{i}: {v}");
        }
    }
    let code = w.next_code(&a);
    let (s, v) = w.authorize(&ta, &a.serial, std::slice::from_ref(&h2), &code).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "locked, the right code too: {v}");
    assert!(v["error_description"].as_str().unwrap().contains("registration authority"), "{v}");

    // B: a SAD obtained before the revocation signs nothing after it; authorize is refused.
    let code = w.next_code(&b);
    let tb = w.token(&b).await;
    let (s, v) = w.authorize(&tb, &b.serial, std::slice::from_ref(&h1), &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sad_b = v["SAD"].as_str().unwrap().to_owned();
    w.ca.revoke(&b.serial, Reason::KeyCompromise, None, "ra:test").await.unwrap();
    let (s, v) = w.sign(&tb, &b.serial, &sad_b, std::slice::from_ref(&h1)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("revoked"), "{v}");
    let code = w.next_code(&b);
    let (s, v) = w.authorize(&tb, &b.serial, std::slice::from_ref(&h1), &code).await;
    assert!(s == StatusCode::BAD_REQUEST && v["error_description"].as_str().unwrap().contains("revoked"), "{v}");
    let (s, v) = w.post("/csc/v1/credentials/list", Some(&tb), json!({})).await;
    assert_eq!((s, v["credentialIDs"].clone()), (StatusCode::OK, json!([])), "{v}");
    w.server.task.abort();
}

on_both_stores!(an_expired_certificate_neither_authorizes_nor_signs);
async fn an_expired_certificate_neither_authorizes_nor_signs(db: &TestDb) {
    let w = world(db).await;
    let c = w.holder(4).await;
    let h = sha384(b"late document");
    let tc = w.token(&c).await;
    let code = w.next_code(&c);
    let (s, v) = w.authorize(&tc, &c.serial, std::slice::from_ref(&h), &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sad = v["SAD"].as_str().unwrap().to_owned();
    let not_after = w.ca.registry().certificate(&c.serial).await.unwrap().unwrap().cert.not_after;
    w.clock.set(time::OffsetDateTime::from_unix_timestamp(not_after).unwrap() - time::Duration::seconds(10));
    let tc = w.token(&c).await;
    w.clock.advance(time::Duration::seconds(30));
    let (s, v) = w.sign(&tc, &c.serial, &sad, std::slice::from_ref(&h)).await;
    assert!(s == StatusCode::BAD_REQUEST && v["error_description"].as_str().unwrap().contains("expired"), "{v}");
    let code = totp(&c.secret, w.clock.now());
    let (s, v) = w.authorize(&tc, &c.serial, std::slice::from_ref(&h), &code).await;
    assert!(s == StatusCode::BAD_REQUEST && v["error_description"].as_str().unwrap().contains("expired"), "{v}");
    w.server.task.abort();
}

on_both_stores!(a_sad_is_used_once_under_concurrent_sign_requests);
async fn a_sad_is_used_once_under_concurrent_sign_requests(db: &TestDb) {
    let w = world(db).await;
    let d = w.holder(5).await;
    let token = w.token(&d).await;
    let h = sha384(b"raced document");
    let code = w.next_code(&d);
    let (s, v) = w.authorize(&token, &d.serial, std::slice::from_ref(&h), &code).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sad = v["SAD"].as_str().unwrap().to_owned();
    let attempts = (0..8).map(|_| w.sign(&token, &d.serial, &sad, std::slice::from_ref(&h)));
    let answers = futures_util::future::join_all(attempts).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "one signature from one SAD: {answers:?}");
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::BAD_REQUEST), "{answers:?}");
    let signed = w.audit("csc.sign", &d.serial).await;
    assert_eq!(signed.iter().filter(|r| r.outcome == "success").count(), 1);
    assert_eq!(signed.iter().filter(|r| r.outcome == "refused").count(), 7);
    w.server.task.abort();
}

/// Only `qcert_ca_core::csc` reaches holder keys: no other source file of
/// the workspace (CA signer, CLI, bench, HTTP) names the holder-key lookup.
#[test]
fn only_the_remote_signing_module_reaches_holder_keys() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut hits = Vec::new();
    let mut stack = vec![root.join("crates"), root.join("tests"), root.join("fuzz")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.ends_with("target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("find_holder_key") || text.contains("sign_holder_digest") {
                    hits.push(path.strip_prefix(&root).unwrap().display().to_string());
                }
            }
        }
    }
    // The hsm crate defines them; this test names them.
    hits.retain(|h| !h.starts_with("crates/hsm/") && h != "tests/tests/csc.rs");
    assert_eq!(hits, ["crates/ca-core/src/csc.rs"], "{hits:?}");
}
