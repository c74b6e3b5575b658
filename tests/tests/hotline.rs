#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Revocation channels over HTTP on both stores: hotline (document number +
//! revocation password), RA officers in person, holders by a CMS-signed
//! request; operator roles and tokens; the audit chain; and that secrets
//! are stored nowhere in clear.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use qcert_ca_core::desk::{DeskSettings, DocumentNumber, RevocationDesk, RevocationPassword};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::{audit, Ca, Holder, Issued, KeySource, ValidityYears};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Everything a test needs: CA, desk, server, operator tokens.
struct World {
    ca: Ca,
    desk: RevocationDesk,
    server: Server,
    http: reqwest::Client,
    hotline: String,
    ra: String,
    admin: String,
    dir: tempfile::TempDir,
}

async fn world(db: &TestDb, settings: DeskSettings) -> World {
    let (ca, _) = new_ca(db, test_clock()).await;
    let desk = new_desk_with(&ca, settings).await;
    let server = serve_desk(desk.clone()).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let token = |name: &'static str, role| {
        let ops = ops.clone();
        async move { ops.add("test", name, role).await.expect("operator").expose().to_owned() }
    };
    let hotline = token("anna", Role::HotlineAgent).await;
    let ra = token("radu", Role::RaOfficer).await;
    let admin = token("ada", Role::Admin).await;
    World { ca, desk, server, http: reqwest::Client::new(), hotline, ra, admin, dir: tempfile::tempdir().unwrap() }
}

fn holder(n: u32) -> Holder {
    Holder::parse("Elena", "Marin", &format!("elena{n}@example.ro"), "RO", &cnp(n)).expect("holder")
}

/// A P-384 key and its CSR made by openssl; returns (key path, CSR DER).
fn key_and_csr(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-nodes", "-subj", "/CN=x", "-outform", "DER", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-384", "-sha384", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    (key, std::fs::read(csr).unwrap())
}

impl World {
    async fn issue(&self, n: u32, document: &str) -> (Issued, RevocationPassword, PathBuf) {
        let (key, csr) = key_and_csr(self.dir.path(), &format!("h{n}-{}", random_hex(4)));
        let doc = DocumentNumber::parse(document).unwrap();
        let (issued, password) = self
            .desk
            .issue("qcp-n-qscd", &holder(n), ValidityYears::new(1).unwrap(), KeySource::Csr(csr), &doc)
            .await
            .expect("issue");
        (issued, password, key)
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.server.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            assert_eq!(ct, "application/problem+json", "{path}: errors are problem documents: {body}");
        }
        (status, body)
    }

    async fn hotline(&self, document: &str, password: &str) -> (StatusCode, Value) {
        let body = json!({"document_number": document, "revocation_password": password, "reason": "keyCompromise"});
        self.post(Some(&self.hotline), "/api/v1/hotline/revocations", body).await
    }

    async fn revoked(&self, serial: &str) -> bool {
        self.ca.registry().revocation(serial).await.unwrap().is_some()
    }

    /// What openssl says of `cert` over HTTP (`good`, `revoked`, ...) and its output.
    async fn ocsp_status(&self, issued: &Issued) -> String {
        let d = self.dir.path();
        let h = self.ca.hierarchy();
        let issuing = write_pem(d, "issuing.pem", "CERTIFICATE", &h.issuing);
        let chain =
            format!("{}{}", qcert_ca_core::pem("CERTIFICATE", &h.issuing), qcert_ca_core::pem("CERTIFICATE", &h.root));
        std::fs::write(d.join("chain.pem"), chain).unwrap();
        let ee = write_pem(d, &format!("{}.pem", issued.serial), "CERTIFICATE", &issued.der);
        let out = tokio::process::Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&ee)
            .args(["-url", &format!("{}/ocsp", self.server.base), "-CAfile"])
            .arg(d.join("chain.pem"))
            .output()
            .await
            .expect("openssl ocsp");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

async fn hotline_revokes_with_the_right_password(db: &TestDb) {
    let w = world(db, DeskSettings::default()).await;
    let (a, pw_a, _) = w.issue(1, "RX123456").await;
    let (b, _pw_b, _) = w.issue(2, "RX654321").await;
    assert!(w.ocsp_status(&a).await.contains(": good"), "fresh certificate is good");

    // Unknown document and wrong password: same status, same body.
    let wrong = if pw_a.expose() == "00000000" { "11111111" } else { "00000000" };
    let (s1, body_unknown) = w.hotline("ZZ999999", pw_a.expose()).await;
    let (s2, body_wrong) = w.hotline("RX123456", wrong).await;
    assert_eq!(s1, StatusCode::FORBIDDEN);
    assert_eq!((s1, &body_unknown), (s2, &body_wrong), "indistinguishable");
    assert_eq!(body_wrong["type"], "urn:qcert:problem:hotline-refused");
    assert!(!w.revoked(&a.serial).await);

    // The right password, typed with spaces as a caller reads it.
    let (s, body) = w.hotline("rx 123 456", pw_a.expose()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let revoked = body["revoked"].as_array().unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["serial"], a.serial.as_str());
    assert_eq!(revoked[0]["reason"], "keyCompromise");
    let record = w.ca.registry().revocation(&a.serial).await.unwrap().expect("revoked");
    assert_eq!(record.requested_by, "hotline-agent:anna");
    assert!(record.invalidity_date.is_some(), "keyCompromise carries its time");
    assert!(!w.revoked(&b.serial).await, "another holder's certificate is untouched");

    // Relying parties see it at once.
    let said = w.ocsp_status(&a).await;
    assert!(said.contains(": revoked") && said.contains("Reason: keyCompromise"), "{said}");

    // Revoked certificates are not revocable again by the hotline: refused like a wrong password.
    let (s, body) = w.hotline("RX123456", pw_a.expose()).await;
    assert_eq!((s, body), (s2, body_wrong));

    let chain = audit::verify(w.ca.registry()).await.unwrap().expect("intact audit chain");
    assert!(chain.entries >= 6, "operators, issuances, attempts and the revocation are audited");
    w.server.task.abort();
}
on_both_stores!(hotline_revokes_with_the_right_password);

async fn five_wrong_passwords_lock_until_an_officer_sets_a_new_one(db: &TestDb) {
    let w = world(db, DeskSettings::default()).await;
    let (a, old, _) = w.issue(1, "AB100200").await;
    let wrong = if old.expose() == "12345678" { "87654321" } else { "12345678" };
    for _ in 0..5 {
        let (s, _) = w.hotline("AB100200", wrong).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, body) = w.hotline("AB100200", old.expose()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "locked: even the right password is refused: {body}");
    assert_eq!(body["type"], "urn:qcert:problem:hotline-refused");
    assert!(!w.revoked(&a.serial).await);

    let (s, list) = w.post(Some(&w.ra), "/api/v1/ra/holder-certificates", json!({"document_number": "AB100200"})).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list[0]["serial"], a.serial.as_str());
    assert_eq!(list[0]["hotline_locked"], true);
    assert_eq!(list[0]["status"], "valid");

    // In person: another document is refused; the holder's own gives a new password.
    let path = format!("/api/v1/ra/certificates/{}/revocation-password", a.serial);
    let (s, body) = w.post(Some(&w.ra), &path, json!({"document_number": "XX000000"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let (s, body) = w.post(Some(&w.ra), &path, json!({"document_number": "AB100200"})).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let new = body["revocation_password"].as_str().unwrap().to_owned();
    assert!(RevocationPassword::parse(&new).is_ok());

    if new != old.expose() {
        let (s, _) = w.hotline("AB100200", old.expose()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "the old password stopped working");
    }
    let (s, body) = w.hotline("AB100200", &new).await;
    assert_eq!(s, StatusCode::OK, "the new password works and the lock is lifted: {body}");
    assert!(w.revoked(&a.serial).await);

    // The audit log tells the story, without secrets.
    let rows = w.ca.registry().audit_page(0, 1000).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "hotline.lock").count(), 1, "{actions:?}");
    assert!(actions.contains(&"revocation-password.change"));
    let text = format!("{rows:?}");
    assert!(!text.contains(&new) && !text.contains(old.expose()) && !text.contains("AB100200"));
    w.server.task.abort();
}
on_both_stores!(five_wrong_passwords_lock_until_an_officer_sets_a_new_one);

async fn roles_tokens_and_rate_limit(db: &TestDb) {
    let settings = DeskSettings { agent_attempts_per_minute: 3, ..DeskSettings::default() };
    let w = world(db, settings).await;
    let (a, _, _) = w.issue(1, "CD300400").await;
    let doc = json!({"document_number": "CD300400"});
    let ra_path = format!("/api/v1/ra/certificates/{}/revocation", a.serial);
    let ra_body = json!({"document_number": "CD300400", "reason": "affiliationChanged"});

    // A hotline agent reaches neither RA nor admin endpoints; an officer not the hotline.
    let (s, body) = w.post(Some(&w.hotline), &ra_path, ra_body.clone()).await;
    assert_eq!((s, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("urn:qcert:problem:forbidden")));
    let (s, _) = w.post(Some(&w.hotline), "/api/v1/ra/holder-certificates", doc.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = w.post(Some(&w.hotline), "/api/v1/admin/operators", json!({"name": "x", "role": "admin"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let r = w.http.get(format!("{}/api/v1/admin/audit", w.server.base)).bearer_auth(&w.hotline).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = json!({"document_number": "CD300400", "revocation_password": "12345678"});
    let (s, _) = w.post(Some(&w.ra), "/api/v1/hotline/revocations", body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // No token, a made-up token: 401 with a challenge.
    let (s, body401) = w.post(None, "/api/v1/hotline/revocations", body.clone()).await;
    assert_eq!((s, body401["type"].as_str()), (StatusCode::UNAUTHORIZED, Some("urn:qcert:problem:unauthenticated")));
    let (s, _) = w.post(Some("qcop_madeup"), "/api/v1/hotline/revocations", body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(!w.revoked(&a.serial).await);

    // An admin adds an agent over HTTP, then revokes the first one's token.
    let (s, created) =
        w.post(Some(&w.admin), "/api/v1/admin/operators", json!({"name": "bob", "role": "hotline-agent"})).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let bob = created["token"].as_str().unwrap().to_owned();
    let (s, dup) = w.post(Some(&w.admin), "/api/v1/admin/operators", json!({"name": "bob", "role": "admin"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    let r = w
        .http
        .delete(format!("{}/api/v1/admin/operators/anna", w.server.base))
        .bearer_auth(&w.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, _) = w.post(Some(&w.hotline), "/api/v1/hotline/revocations", body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "a revoked operator token is refused");

    // Per-agent rate limit: the fourth attempt within a minute is refused before any check.
    for _ in 0..3 {
        let (s, _) = w.post(Some(&bob), "/api/v1/hotline/revocations", body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let r = w
        .http
        .post(format!("{}/api/v1/hotline/revocations", w.server.base))
        .bearer_auth(&bob)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    // Another qcert process on the same registry counts the same attempts.
    let other = new_desk_with(&w.ca, DeskSettings { agent_attempts_per_minute: 3, ..DeskSettings::default() }).await;
    let bob_op = qcert_ca_core::operators::Operator { name: "bob".into(), role: Role::HotlineAgent };
    let refused = other
        .hotline_revoke(
            &bob_op,
            &DocumentNumber::parse("CD300400").unwrap(),
            &RevocationPassword::parse("12345678").unwrap(),
            qcert_ca_core::Reason::KeyCompromise,
        )
        .await;
    assert!(matches!(refused, Err(qcert_ca_core::CaError::RateLimited { .. })), "{refused:?}");

    // The officer revokes in person, with the holder's document only.
    let wrong_doc = json!({"document_number": "ZZ000111", "reason": "affiliationChanged"});
    let (s, _) = w.post(Some(&w.ra), &ra_path, wrong_doc).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(!w.revoked(&a.serial).await);
    let (s, body) = w.post(Some(&w.ra), &ra_path, ra_body).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["reason"], "affiliationChanged");
    assert_eq!(w.ca.registry().revocation(&a.serial).await.unwrap().unwrap().requested_by, "ra-officer:radu");

    let r = w.http.get(format!("{}/api/v1/admin/audit", w.server.base)).bearer_auth(&w.admin).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["intact"], true, "{v}");
    w.server.task.abort();
}
on_both_stores!(roles_tokens_and_rate_limit);

async fn bad_input_is_refused_and_revokes_nothing(db: &TestDb) {
    let w = world(db, DeskSettings::default()).await;
    let (a, pw, _) = w.issue(1, "EF500600").await;
    for bad in ["1234567", "123456789", "1234567a", "abcdefgh", ""] {
        let (s, body) = w.hotline("EF500600", bad).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
        assert_eq!(body["type"], "urn:qcert:problem:invalid-field");
    }
    for bad in ["", "1234", "EF500600'; DROP TABLE certificates; --", &"A".repeat(40)] {
        let (s, _) = w.hotline(bad, pw.expose()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}");
    }
    let url = format!("{}/api/v1/hotline/revocations", w.server.base);
    let send = |body: Vec<u8>, ct: &'static str| {
        let req = w.http.post(&url).bearer_auth(&w.hotline).header("content-type", ct).body(body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            (status, ct, r.text().await.unwrap())
        }
    };
    // Just over the limit: small enough that the client finishes sending before the 413 comes back.
    let (s, ct, _) = send(vec![b' '; 20 * 1024], "application/json").await;
    assert_eq!((s, ct.as_deref()), (StatusCode::PAYLOAD_TOO_LARGE, Some("application/problem+json")));
    let (s, _, _) = send(b"{not json".to_vec(), "application/json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _, _) = send(b"{}".to_vec(), "text/plain").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let sneaky = format!(r#"{{"document_number":"EF500600","revocation_password":{},"x":1}}"#, pw.expose());
    let (s, _, text) = send(sneaky.into_bytes(), "application/json").await;
    // A password with a leading 0 is not even a JSON number (400); otherwise a wrong type (422).
    assert!(s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::BAD_REQUEST, "{s}");
    assert!(!text.contains(pw.expose()), "an error never echoes the password: {text}");
    let (s, _) = w
        .post(
            Some(&w.hotline),
            "/api/v1/hotline/revocations",
            json!({"document_number": "EF500600", "revocation_password": pw.expose(), "reason": "certificateHold"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "no certificateHold");
    let (s, _) = w
        .post(
            Some(&w.ra),
            "/api/v1/ra/certificates/zz-not-hex/revocation",
            json!({"document_number": "EF500600", "reason": "superseded"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!w.revoked(&a.serial).await, "nothing revoked by any of that");
    assert_eq!(
        w.ca.registry().credential(&a.serial).await.unwrap().unwrap().failed_attempts,
        0,
        "malformed input is no attempt"
    );
    w.server.task.abort();
}
on_both_stores!(bad_input_is_refused_and_revokes_nothing);

async fn holder_revokes_with_a_signed_request(db: &TestDb) {
    let w = world(db, DeskSettings::default()).await;
    let (a, _, key_a) = w.issue(1, "GH700800").await;
    let (b, _, key_b) = w.issue(2, "GH700801").await;
    let d = w.dir.path();
    let cert_a = write_pem(d, "a.pem", "CERTIFICATE", &a.der);
    let cert_b = write_pem(d, "b.pem", "CERTIFICATE", &b.der);
    let url = |serial: &str| format!("{}/api/v1/certificates/{serial}/revocation", w.server.base);
    let send = |serial: String, body: Vec<u8>| {
        let req = w.http.post(url(&serial)).header("content-type", "application/pkcs7-mime").body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let request = |serial: &str| format!(r#"{{"serial":"{serial}","reason":"keyCompromise"}}"#);

    // Signed by another holder's key, for A's serial.
    let (s, body) = send(a.serial.clone(), cms_sign(d, &request(&a.serial), &cert_b, &key_b, "sha384")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["type"], "urn:qcert:problem:signature-refused");
    // Signed by A, but naming B's serial, sent for A and for B.
    let (s, body) = send(a.serial.clone(), cms_sign(d, &request(&b.serial), &cert_a, &key_a, "sha384")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (s, _) = send(b.serial.clone(), cms_sign(d, &request(&b.serial), &cert_a, &key_a, "sha384")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Garbage, and an unknown serial.
    let (s, _) = send(a.serial.clone(), b"not a CMS message".to_vec()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = send("0badc0de".into(), cms_sign(d, &request(&a.serial), &cert_a, &key_a, "sha384")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(!w.revoked(&a.serial).await && !w.revoked(&b.serial).await, "nothing revoked by mistake");

    let (s, body) = send(a.serial.clone(), cms_sign(d, &request(&a.serial), &cert_a, &key_a, "sha384")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["reason"], "keyCompromise");
    assert_eq!(w.ca.registry().revocation(&a.serial).await.unwrap().unwrap().requested_by, "holder:signed-request");
    assert!(w.ocsp_status(&a).await.contains(": revoked"));
    assert!(!w.revoked(&b.serial).await);
    w.server.task.abort();
}
on_both_stores!(holder_revokes_with_a_signed_request);

/// Log lines written by this test binary (tracing, as the server logs).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,sqlx=warn,hyper=info,reqwest=info")
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn secrets_are_nowhere_in_clear(db: &TestDb) {
    let logs = captured_logs();
    let w = world(db, DeskSettings::default()).await;
    let (a, pw, _) = w.issue(1, "KL90817263").await;
    let wrong = if pw.expose() == "24681357" { "13572468" } else { "24681357" };
    assert_eq!(w.hotline("KL90817263", wrong).await.0, StatusCode::FORBIDDEN);
    let path = format!("/api/v1/ra/certificates/{}/revocation-password", a.serial);
    let (_, body) = w.post(Some(&w.ra), &path, json!({"document_number": "KL90817263"})).await;
    let new = body["revocation_password"].as_str().unwrap().to_owned();
    assert_eq!(w.hotline("KL90817263", &new).await.0, StatusCode::OK);

    let stored = database_contents(db).await;
    assert!(contains(&stored, &a.serial), "the dump is real: it holds the serial");
    let logged = logs.lock().unwrap().clone();
    assert!(contains(&logged, &a.serial), "the log capture is real: it holds the serial");
    for secret in [pw.expose(), new.as_str(), wrong, "KL90817263", w.hotline.as_str(), w.ra.as_str()] {
        assert!(!contains(&stored, secret), "a secret is stored in clear");
        assert!(!contains(&logged, secret), "a secret reached the log");
    }
    w.server.task.abort();
}
on_both_stores!(secrets_are_nowhere_in_clear);

async fn an_edited_audit_row_is_named(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let desk = new_desk(&ca).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    ops.add("test", "ada", Role::Admin).await.unwrap();
    let doc = DocumentNumber::parse("MN123123").unwrap();
    let (issued, _) = desk
        .issue(
            "qcp-n-qscd",
            &holder(1),
            ValidityYears::new(1).unwrap(),
            KeySource::Csr(openssl_csr(CsrKey::P256)),
            &doc,
        )
        .await
        .unwrap();
    ca.revoke(&issued.serial, qcert_ca_core::Reason::Superseded, None, "test").await.unwrap();
    let ok = audit::verify(ca.registry()).await.unwrap().expect("intact");
    assert!(ok.entries >= 3);

    let edit = |sql: &'static str| {
        let url = db.url.clone();
        async move {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    };
    edit("UPDATE audit_log SET detail = 'reason=unspecified' WHERE seq = 2").await;
    let broken = audit::verify(ca.registry()).await.unwrap().expect_err("edited");
    assert_eq!(broken.seq, 2, "{broken}");
    ca.registry().close().await;
}
on_both_stores!(an_edited_audit_row_is_named);
