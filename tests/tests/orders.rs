#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Orders end to end over HTTP, on both stores, with a real SMTP server
//! (aiosmtpd): order, pay (signed webhook), identity approval or rejection
//! and resumption, CSR (TOKEN) or authenticator and first code (CLOUD),
//! issuance, the emails as received, one-time secret delivery, and a
//! pkilint-clean certificate. Time is a fixed clock moved by the tests.

use std::path::Path;

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::Clock;
use qcert_notifier::Dispatcher;
use qcert_tests::smtp::{smtp_dispatcher, Received, SmtpSink};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];

struct World {
    ca: qcert_ca_core::Ca,
    clock: std::sync::Arc<qcert_ca_core::FixedClock>,
    server: Server,
    http: reqwest::Client,
    ra: String,
    hotline: String,
    dispatcher: Dispatcher,
    dir: tempfile::TempDir,
    smtp_port: u16,
}

async fn world(db: &TestDb) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(|base| new_orders(&desk, WEBHOOK, base)).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let hotline = ops.add("test", "anna", Role::HotlineAgent).await.unwrap().expose().to_owned();
    let smtp_port = qcert_tests::smtp::free_port();
    let dispatcher = smtp_dispatcher(ca.registry(), smtp_port);
    World {
        ca,
        clock,
        server,
        http: reqwest::Client::new(),
        ra,
        hotline,
        dispatcher,
        dir: tempfile::tempdir().unwrap(),
        smtp_port,
    }
}

fn form(product: &str, email: &str, doc: &str) -> Value {
    json!({
        "product": product, "years": 1, "given_name": "Ioana", "surname": "Popescu", "email": email,
        "country": "RO", "national_id": "2850101123453", "id_document_number": doc, "publish": false, "language": "ro"
    })
}

impl World {
    async fn smtp(&self) -> SmtpSink {
        SmtpSink::start_on(self.smtp_port, self.dir.path()).await
    }

    /// Run the dispatcher as `qcert serve` would, at the test clock's time.
    async fn deliver(&self) -> qcert_notifier::DeliveryReport {
        self.dispatcher.run_once(self.clock.now()).await.unwrap()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.server.base) };
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            assert_eq!(ct, "application/problem+json", "{value}");
        }
        (status, value)
    }

    async fn order(&self, body: Value, key: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/api/v1/orders", self.server.base))
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn webhook(&self, body: &Value, at: time::OffsetDateTime, key: [u8; 32]) -> (StatusCode, Value) {
        let resp = post_signed_webhook(&self.http, &self.server.base, body, key, at).await;
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn pay(&self, order_id: &str, event: &str) -> (StatusCode, Value) {
        self.webhook(&json!({"event_id": event, "order_id": order_id, "status": "paid"}), self.clock.now(), WEBHOOK)
            .await
    }

    async fn state(&self, order_url: &str) -> Value {
        let (s, v) = self.call(reqwest::Method::GET, order_url, None, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }
}

/// The one message whose subject contains `needle`.
fn mail<'a>(all: &'a [Received], needle: &str) -> &'a Received {
    let found: Vec<&Received> = all.iter().filter(|m| m.subject.as_deref().unwrap_or("").contains(needle)).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one mail with {needle:?}: {:?}",
        all.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    found[0]
}

fn pkilint_pem(dir: &Path, pem: &str) {
    let path = dir.join("ee.pem");
    std::fs::write(&path, pem).unwrap();
    pkilint("lint_etsi_cert", &["-t", "QCP-N-QSCD-EIDAS-FINAL-CERTIFICATE"], &path).expect("pkilint clean");
}

/// A P-384 CSR and its key made by openssl.
fn csr_pem(dir: &Path, name: &str) -> Vec<u8> {
    let key = dir.join(format!("{name}.key"));
    let out = dir.join(format!("{name}.csr"));
    run_ok(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-new",
                "-nodes",
                "-subj",
                "/CN=token",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-384",
            ])
            .args(["-sha384", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&out),
    );
    std::fs::read(out).unwrap()
}

async fn token_order_from_form_to_secrets(db: &TestDb) {
    let w = world(db).await;
    let sink = w.smtp().await;
    let (s, created) = w.order(form("TOKEN", "ioana.popescu@example.ro", "RX 123456"), "key-1").await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["order_id"].as_str().unwrap().to_owned();
    let order_url = created["order_url"].as_str().unwrap().to_owned();
    assert!(!order_url.contains(&format!("/{id}/")) && order_url.len() > id.len() + 40, "capability link: {order_url}");
    // A retry with the same key is the same order; the same key for another form is refused.
    let (s, again) = w.order(form("TOKEN", "ioana.popescu@example.ro", "RX 123456"), "key-1").await;
    assert_eq!((s, again["order_id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let (s, _) = w.order(form("CLOUD", "ioana.popescu@example.ro", "RX 123456"), "key-1").await;
    assert_eq!(s, StatusCode::CONFLICT);

    assert_eq!(w.deliver().await.sent, 1);
    let mails = sink.received();
    let received = mail(&mails, "Am primit comanda");
    assert_eq!(received.rcpt_tos, vec!["ioana.popescu@example.ro".to_owned()]);
    assert_eq!(received.link().unwrap(), order_url, "the mailed link works");
    assert_eq!(w.state(&order_url).await["state"], "awaiting-payment");

    // Payment: a wrong key and a stale signature are refused; a replay is harmless.
    let event = json!({"event_id": "evt_1", "order_id": id, "status": "paid"});
    assert_eq!(w.webhook(&event, w.clock.now(), [1u8; 32]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.webhook(&event, w.clock.now() - time::Duration::hours(1), WEBHOOK).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(w.state(&order_url).await["state"], "awaiting-payment");
    let (s, r) = w.pay(&id, "evt_1").await;
    assert_eq!((s, r["result"].as_str()), (StatusCode::OK, Some("applied")));
    let (s, r) = w.pay(&id, "evt_1").await;
    assert_eq!((s, r["result"].as_str()), (StatusCode::OK, Some("duplicate")));
    assert_eq!(w.state(&order_url).await["state"], "awaiting-identity");

    // The CSR may come before approval.
    let csr = csr_pem(w.dir.path(), "t1");
    let r = w.http.put(format!("{order_url}/csr")).body(csr).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The RA queue: oldest first, with the time left of the 24-hour promise.
    let (s, queue) = w.call(reqwest::Method::GET, "/api/v1/ra/orders", Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(queue[0]["order_id"], id.as_str());
    assert_eq!(queue[0]["seconds_left"], 86_400);
    assert_eq!(queue[0]["overdue"], false);
    // The email is there to reach the holder for the video call (issue 12); the document key is not.
    assert_eq!(queue[0]["email"], "ioana.popescu@example.ro", "{queue}");
    assert!(queue[0].get("document_key").is_none() && queue[0].get("id_document_number").is_none(), "{queue}");
    let approval = format!("/api/v1/ra/orders/{id}/approval");
    let (s, _) =
        w.call(reqwest::Method::POST, &approval, Some(&w.ra), Some(json!({"document_number": "ZZ999999"}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "another ID document");
    let (s, v) =
        w.call(reqwest::Method::POST, &approval, Some(&w.ra), Some(json!({"document_number": "RX123456"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "issued", "TOKEN with its CSR is issued on approval");
    let (s, _) =
        w.call(reqwest::Method::POST, &approval, Some(&w.ra), Some(json!({"document_number": "RX123456"}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "a second approval");
    let serial = v["serial"].as_str().unwrap().to_owned();

    w.deliver().await;
    let mails = sink.received();
    assert_eq!(mails.len(), 4, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    mail(&mails, "Am primit plata pentru comanda");
    assert!(
        !mails.iter().any(|m| m.subject.as_deref().unwrap_or("").contains("Identitatea")),
        "the CSR was in: no mail asking for it, the certificate follows at once"
    );
    let issued = mail(&mails, &format!("Certificatul dumneavoastră calificat {serial}"));
    let pem = w.http.get(issued.link().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    pkilint_pem(w.dir.path(), &pem);
    let delivery_url = mail(&mails, "Codurile secrete ale certificatului").link().unwrap();

    // The kit code, once (the officer reads it; `qcert kit print` does the same for envelopes).
    let take = format!("/api/v1/ra/orders/{id}/delivery-code");
    let (s, code) = w.call(reqwest::Method::POST, &take, Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK);
    let code = code["code"].as_str().unwrap().to_owned();
    assert_eq!(w.call(reqwest::Method::POST, &take, Some(&w.ra), None).await.0, StatusCode::CONFLICT);

    // Three wrong codes block the link; the right one then fails too.
    let (s, v) = w.call(reqwest::Method::GET, &delivery_url, None, None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("pending")));
    let wrong = if code.starts_with("AAAA") { "BBBB-BBBB-BB" } else { "AAAA-AAAA-AA" };
    for _ in 0..3 {
        let (s, _) = w.call(reqwest::Method::POST, &delivery_url, None, Some(json!({"code": wrong}))).await;
        assert!(s.is_client_error());
    }
    let (s, _) = w.call(reqwest::Method::POST, &delivery_url, None, Some(json!({"code": code}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "blocked");
    // An officer issues a new link (mailed) and code (to the officer).
    let (s, v) =
        w.call(reqwest::Method::POST, &format!("/api/v1/ra/orders/{id}/secret-delivery"), Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let code2 = v["code"].as_str().unwrap().to_owned();
    w.deliver().await;
    let mails = sink.received();
    let links: Vec<String> = mails
        .iter()
        .filter(|m| m.subject.as_deref().unwrap_or("").contains("Codurile secrete ale certificatului"))
        .map(|m| m.link().unwrap())
        .collect();
    assert_eq!(links.len(), 2);
    let new_link = links.into_iter().find(|l| *l != delivery_url).unwrap();
    let (s, secrets) =
        w.call(reqwest::Method::POST, &new_link, None, Some(json!({"code": code2.to_lowercase()}))).await;
    assert_eq!(s, StatusCode::OK, "{secrets}");
    let password = secrets["revocation_password"].as_str().unwrap().to_owned();
    assert_eq!(password.len(), 8);
    assert!(secrets["pin"].as_str().is_some());
    assert_eq!(secrets["puk"].as_str().unwrap().len(), 14);
    let (s, v) = w.call(reqwest::Method::POST, &new_link, None, Some(json!({"code": code2}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "once: {v}");
    assert!(v["detail"].as_str().unwrap().contains("erased"));

    // The delivered revocation password works at the hotline.
    let hot = json!({"document_number": "RX123456", "revocation_password": password, "reason": "keyCompromise"});
    let (s, v) = w.call(reqwest::Method::POST, "/api/v1/hotline/revocations", Some(&w.hotline), Some(hot)).await;
    assert_eq!((s, v["revoked"][0]["serial"].as_str()), (StatusCode::OK, Some(serial.as_str())));

    // Neither the ID document number nor any secret is stored in clear.
    let dump = String::from_utf8_lossy(&database_contents(db).await).into_owned();
    for secret in ["RX123456", password.as_str(), secrets["puk"].as_str().unwrap(), code.as_str(), code2.as_str()] {
        assert!(!dump.contains(secret), "stored in clear");
    }
    assert!(dump.contains(&serial), "the dump is real");
    w.server.task.abort();
}
on_both_stores!(token_order_from_form_to_secrets);

async fn cloud_order_rejected_resumed_and_issued_at_the_first_code(db: &TestDb) {
    let w = world(db).await;
    let sink = w.smtp().await;
    let mut f = form("CLOUD", "mihai.ionescu@example.ro", "SX654321");
    f["language"] = json!("en");
    let (s, created) = w.order(f, "cloud-1").await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["order_id"].as_str().unwrap().to_owned();
    let order_url = created["order_url"].as_str().unwrap().to_owned();
    assert_eq!(w.pay(&id, "evt_c1").await.0, StatusCode::OK);

    // Rejected (the video session broke off), then resumed without paying again.
    let (s, v) = w
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/ra/orders/{id}/rejection"),
            Some(&w.ra),
            Some(json!({"reason": "the video session was interrupted"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("rejected")));
    w.deliver().await;
    let mails = sink.received();
    let rejected = mail(&mails, "could not be completed");
    assert!(rejected.body.as_deref().unwrap().contains("the video session was interrupted"));
    let resume = rejected.link().unwrap();
    assert_eq!(resume, format!("{order_url}/resume"));
    w.clock.advance(time::Duration::hours(2));
    let (s, v) = w.call(reqwest::Method::POST, &resume, None, None).await;
    assert_eq!((s, v["state"].as_str(), v["paid"].as_bool()), (StatusCode::OK, Some("awaiting-identity"), Some(true)));
    let (_, queue) = w.call(reqwest::Method::GET, "/api/v1/ra/orders", Some(&w.ra), None).await;
    assert_eq!(queue[0]["seconds_left"], 86_400, "a fresh 24-hour promise from resumption");

    let (s, v) = w
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/ra/orders/{id}/approval"),
            Some(&w.ra),
            Some(json!({"document_number": "sx-654321"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("approved")));
    w.deliver().await;
    let mails = sink.received();
    assert!(
        !mails.iter().any(|m| m.subject.as_deref().unwrap_or("").contains("Your identity has been confirmed")),
        "CLOUD: one mail on approval, the authenticator invitation"
    );
    let enrol = mail(&mails, "Set up your signing authenticator").link().unwrap();
    assert_eq!(enrol, format!("{order_url}/authenticator"));

    let (s, e) = w.call(reqwest::Method::POST, &enrol, None, None).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert!(e["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let secret = base32_decode(e["secret"].as_str().unwrap());
    let authorize = format!("{order_url}/authorization");
    let now = w.clock.now();
    let wrong = if totp(&secret, now) == "000000" { "111111" } else { "000000" };
    let (s, _) = w.call(reqwest::Method::POST, &authorize, None, Some(json!({"code": wrong}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(w.state(&order_url).await["state"], "approved");
    let code = totp(&secret, now);
    let (s, v) = w.call(reqwest::Method::POST, &authorize, None, Some(json!({"code": code}))).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("issued")), "{v}");
    let (s, _) = w.call(reqwest::Method::POST, &authorize, None, Some(json!({"code": code}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a code works once");
    let (s, _) = w.call(reqwest::Method::POST, &enrol, None, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "enrolled once");

    let serial = v["serial"].as_str().unwrap().to_owned();
    let rec = w.ca.registry().certificate(&serial).await.unwrap().unwrap();
    assert!(rec.cert.hsm_key_label.is_some(), "CLOUD: the key is in our HSM");
    let pem = w.http.get(format!("{order_url}/certificate")).send().await.unwrap().text().await.unwrap();
    pkilint_pem(w.dir.path(), &pem);

    // CLOUD: the officer reads the code to the holder; the link reveals the revocation password.
    w.deliver().await;
    let mails = sink.received();
    mail(&mails, &format!("Your qualified certificate {serial} has been issued"));
    let delivery = mail(&mails, "Your revocation password is ready").link().unwrap();
    let (_, c) =
        w.call(reqwest::Method::POST, &format!("/api/v1/ra/orders/{id}/delivery-code"), Some(&w.ra), None).await;
    let (s, secrets) = w.call(reqwest::Method::POST, &delivery, None, Some(json!({"code": c["code"]}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(secrets["revocation_password"].as_str().unwrap().len(), 8);
    assert!(secrets.get("puk").is_none(), "no token, no PUK");
    let paid: i64 = {
        let row = w.ca.registry().order(&id).await.unwrap().unwrap();
        assert!(row.paid_at.is_some());
        1
    };
    assert_eq!(paid, 1);
    w.server.task.abort();
}
on_both_stores!(cloud_order_rejected_resumed_and_issued_at_the_first_code);

async fn bad_input_leaves_orders_unchanged(db: &TestDb) {
    let w = world(db).await;
    for (field, value) in
        [("email", json!("nobody")), ("years", json!(4)), ("product", json!("USB")), ("id_document_number", json!("1"))]
    {
        let mut f = form("TOKEN", "a@example.ro", "AB123456");
        f[field] = value.clone();
        let (s, v) = w.order(f, &format!("bad-{field}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}: {v}");
        assert!(v["type"].as_str().unwrap().starts_with("urn:qcert:problem:"));
    }
    let (_, a) = w.order(form("TOKEN", "a@example.ro", "AB123456"), "a").await;
    let (_, b) = w.order(form("TOKEN", "b@example.ro", "AB123457"), "b").await;
    let a_url = a["order_url"].as_str().unwrap().to_owned();
    let b_url = b["order_url"].as_str().unwrap().to_owned();
    let a_id = a["order_id"].as_str().unwrap().to_owned();

    // Guessing links: another order's id with this MAC, a changed MAC, junk.
    let a_token = a_url.rsplit('/').next().unwrap().to_owned();
    let b_token = b_url.rsplit('/').next().unwrap().to_owned();
    let (a_idpart, a_mac) = a_token.split_once('.').unwrap();
    let (b_idpart, _) = b_token.split_once('.').unwrap();
    let mut flipped = a_mac.to_owned();
    flipped.replace_range(0..1, if a_mac.starts_with('A') { "B" } else { "A" });
    for guess in [format!("{b_idpart}.{a_mac}"), format!("{a_idpart}.{flipped}"), a_idpart.to_owned(), "x".repeat(200)]
    {
        let (s, v) = w.call(reqwest::Method::GET, &format!("/api/v1/orders/{guess}"), None, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    }

    // Webhooks: unsigned, wrongly signed, replayed with an old timestamp.
    let event = json!({"event_id": "e1", "order_id": a_id, "status": "paid"});
    let r = w.http.post(format!("{}/api/v1/payments/webhook", w.server.base)).json(&event).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(w.webhook(&event, w.clock.now(), [9u8; 32]).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        w.webhook(&event, w.clock.now() - time::Duration::minutes(10), WEBHOOK).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(w.state(&a_url).await["state"], "awaiting-payment");

    // Approval before payment; a CLOUD-only step on a TOKEN order.
    let (s, _) = w
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/ra/orders/{a_id}/approval"),
            Some(&w.ra),
            Some(json!({"document_number": "AB123456"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = w.call(reqwest::Method::POST, &format!("{a_url}/authenticator"), None, None).await;
    assert_eq!(s, StatusCode::CONFLICT);

    // A CSR whose key is already certified (or in another order) is refused.
    let csr = csr_pem(w.dir.path(), "dup");
    assert_eq!(w.http.put(format!("{a_url}/csr")).body(csr.clone()).send().await.unwrap().status(), StatusCode::OK);
    let r = w.http.put(format!("{b_url}/csr")).body(csr).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("already certified or ordered"));
    let issued =
        w.ca.issue(
            "qcp-n-qscd",
            &qcert_ca_core::Holder::parse("X", "Y", "x@example.ro", "RO", "1900101123457").unwrap(),
            qcert_ca_core::ValidityYears::new(1).unwrap(),
            qcert_ca_core::KeySource::Csr(csr_pem(w.dir.path(), "certified")),
        )
        .await
        .unwrap();
    let r = w
        .http
        .put(format!("{b_url}/csr"))
        .body(std::fs::read(w.dir.path().join("certified.csr")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "key of {} is certified", issued.serial);
    let r = w.http.put(format!("{b_url}/csr")).body("not a CSR").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.state(&b_url).await["csr_received"], false, "state unchanged");
    w.server.task.abort();
}
on_both_stores!(bad_input_leaves_orders_unchanged);

async fn smtp_down_loses_nothing_and_sends_once(db: &TestDb) {
    let w = world(db).await;
    let (s, created) = w.order(form("TOKEN", "offline@example.ro", "CD123456"), "offline").await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["order_id"].as_str().unwrap().to_owned();
    let report = w.deliver().await;
    assert_eq!((report.sent, report.deferred), (0, 1), "server down: deferred");
    w.pay(&id, "evt_off").await;
    let sink = w.smtp().await;
    assert_eq!(w.deliver().await.sent, 1, "the new payment mail goes; the order mail not before its retry time");
    w.clock.advance(time::Duration::minutes(5));
    w.deliver().await;
    w.clock.advance(time::Duration::minutes(5));
    w.deliver().await;
    let mails = sink.received();
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_deref().unwrap()).collect();
    assert_eq!(mails.len(), 2, "the order mail and the payment confirmation, each once: {subjects:?}");
    assert!(subjects.iter().all(|s| s.contains(&id)), "{subjects:?}");
    mail(&mails, "Am primit comanda");
    mail(&mails, "Am primit plata");
    w.server.task.abort();
}
on_both_stores!(smtp_down_loses_nothing_and_sends_once);

/// Past the 24-hour promise: the RA queue says overdue and /metrics counts it.
async fn identity_validation_past_24_hours_is_overdue(db: &TestDb) {
    async fn metrics(w: &World) -> String {
        let r = w.http.get(format!("{}/metrics", w.server.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    }
    let w = world(db).await;
    let gauges = |text: &str| -> (String, String) {
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
                .to_owned()
        };
        (value("qcert_orders_awaiting_identity"), value("qcert_orders_identity_overdue"))
    };
    let (s, created) = w.order(form("TOKEN", "late@example.ro", "EF123456"), "late-1").await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["order_id"].as_str().unwrap().to_owned();
    assert_eq!(gauges(&metrics(&w).await), ("0".into(), "0".into()), "not paid: not waiting for identity");
    assert_eq!(w.pay(&id, "evt_late").await.0, StatusCode::OK);
    assert_eq!(gauges(&metrics(&w).await), ("1".into(), "0".into()));

    w.clock.advance(time::Duration::hours(25));
    let (s, queue) = w.call(reqwest::Method::GET, "/api/v1/ra/orders", Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK);
    let item = queue.as_array().unwrap().iter().find(|o| o["order_id"] == id.as_str()).expect("in the queue");
    assert_eq!(item["overdue"], true, "{item}");
    assert_eq!(item["seconds_left"], -3_600, "an hour past the promise: {item}");
    let (s, one) = w.call(reqwest::Method::GET, &format!("/api/v1/ra/orders/{id}"), Some(&w.ra), None).await;
    assert_eq!((s, &one["overdue"], &one["seconds_left"]), (StatusCode::OK, &json!(true), &json!(-3_600)));
    let text = metrics(&w).await;
    assert!(text.contains("\nqcert_orders_awaiting_identity 1\n"), "{text}");
    assert!(text.contains("\nqcert_orders_identity_overdue 1\n"), "{text}");

    // Decided late is still decided: the order leaves the backlog.
    let (s, v) = w
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/ra/orders/{id}/approval"),
            Some(&w.ra),
            Some(json!({"document_number": "EF123456"})),
        )
        .await;
    assert_eq!((s, v["state"].as_str(), &v["overdue"]), (StatusCode::OK, Some("approved"), &json!(false)), "{v}");
    assert_eq!(gauges(&metrics(&w).await), ("0".into(), "0".into()));
    w.server.task.abort();
}
on_both_stores!(identity_validation_past_24_hours_is_overdue);
