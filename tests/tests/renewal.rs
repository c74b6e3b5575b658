#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Renewal and the notifier's lifecycle rules with an injected clock, on
//! both stores, with a real SMTP server: reminders at -45 d (once), none at
//! -30 d, at -15 d only without a renewal order; renewal ordered with the
//! current key (CMS), paid, issued at -3 d with notBefore = old notAfter -
//! 3 d; refused at -2 d and after expiry; nothing for a revoked certificate.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::Decode;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::payment::{sign_webhook, WebhookKey};
use qcert_ca_core::{Clock, Holder, Issued, KeySource, ValidityYears};
use qcert_notifier::Notifier;
use qcert_tests::smtp::{smtp_dispatcher, SmtpSink};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const WEBHOOK: [u8; 32] = [5u8; 32];

fn key_and_csr(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-nodes", "-subj", "/CN=x", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    (key, csr)
}

struct Holding {
    issued: Issued,
    cert: PathBuf,
    key: PathBuf,
}

async fn issue(desk: &qcert_ca_core::desk::RevocationDesk, dir: &Path, n: u32) -> Holding {
    let (key, csr) = key_and_csr(dir, &format!("h{n}"));
    let holder = Holder::parse("Ana", "Pop", &format!("ana{n}@example.ro"), "RO", &cnp(n)).unwrap();
    let doc = DocumentNumber::parse(&format!("RX12345{n}")).unwrap();
    let (issued, _) = desk
        .issue("qcp-n-qscd", &holder, ValidityYears::new(1).unwrap(), KeySource::Csr(std::fs::read(csr).unwrap()), &doc)
        .await
        .unwrap();
    let cert = write_pem(dir, &format!("h{n}.pem"), "CERTIFICATE", &issued.der);
    Holding { issued, cert, key }
}

async fn lifecycle_45_15_3(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Issue a year before "now + 45 days": at the -45-day step the test
    // clock is close to the wall clock the outside judges use.
    let wall = OffsetDateTime::now_utc() - Duration::minutes(1);
    let clock = std::sync::Arc::new(qcert_ca_core::FixedClock::new(wall - Duration::days(320)));
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(|base| new_orders(&desk, WEBHOOK, base)).await;
    let orders = new_orders(&desk, WEBHOOK, &server.base);
    let notifier = Notifier::new(orders);
    let sink = SmtpSink::start(d).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    let a = issue(&desk, d, 1).await; // renewed at -30 d
    let b = issue(&desk, d, 2).await; // never renewed
    let c = issue(&desk, d, 3).await; // revoked
    ca.revoke(&c.issued.serial, qcert_ca_core::Reason::Superseded, None, "test").await.unwrap();
    let na = a.issued.not_after;
    let http = reqwest::Client::new();
    let at = |days: i64| na - Duration::days(days);
    let tick = || async { notifier.tick(clock.now()).await.unwrap() };
    let deliver = || async { dispatcher.run_once(clock.now()).await.unwrap() };
    // Mails other than C's revocation notice (which it gets at once, instead of reminders).
    let mails_to = |who: &str| {
        let revoked = |m: &qcert_tests::smtp::Received| m.subject.as_deref().unwrap_or("").contains("has been revoked");
        sink.received().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == who) && !revoked(m)).count()
    };

    clock.set(at(46));
    assert_eq!(tick().await.reminders_45, 0, "not yet at -46 d");
    clock.set(at(45));
    let r = tick().await;
    assert_eq!((r.reminders_45, r.reminders_15), (2, 0), "A and B, not the revoked C: {r:?}");
    assert_eq!(tick().await.reminders_45, 0, "once");
    deliver().await;
    assert_eq!((mails_to("ana1@example.ro"), mails_to("ana2@example.ro"), mails_to("ana3@example.ro")), (1, 1, 0));
    let reminder = sink.received().into_iter().find(|m| m.rcpt_tos == vec!["ana1@example.ro".to_owned()]).unwrap();
    let banner_url = reminder.link().unwrap();
    assert_eq!(banner_url, format!("{}/api/v1/certificates/{}/renewal", server.base, a.issued.serial));
    let banner: Value = http.get(&banner_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (banner["window_open"].as_bool(), banner["renewal_state"].as_str()),
        (Some(true), Some("none")),
        "{banner}"
    );

    // -30 d: nothing; A orders its renewal with its current key and pays.
    clock.set(at(30));
    assert_eq!(tick().await, qcert_notifier::TickReport::default());
    let (_, new_csr) = key_and_csr(d, "a-next");
    let content =
        json!({"serial": a.issued.serial, "years": 1, "csr": std::fs::read_to_string(&new_csr).unwrap()}).to_string();
    // Signed by B's key for A: refused.
    let wrong = cms_sign(d, &content, &b.cert, &b.key, "sha256");
    let renew_url = format!("{}/api/v1/certificates/{}/renewals", server.base, a.issued.serial);
    let r = http.post(&renew_url).header("content-type", "application/pkcs7-mime").body(wrong).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // (openssl stamps the wall-clock signing time; the test clock is 30 days ahead here.)
    clock.set(OffsetDateTime::now_utc());
    let signed = cms_sign(d, &content, &a.cert, &a.key, "sha256");
    let r = http
        .post(&renew_url)
        .header("content-type", "application/pkcs7-mime")
        .body(signed.clone())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let renewal: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{renewal}");
    let r = http.post(&renew_url).header("content-type", "application/pkcs7-mime").body(signed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "one renewal per certificate");
    let renewal_id = renewal["renewal_id"].as_str().unwrap().to_owned();
    let event = serde_json::to_vec(&json!({"event_id": "ren-1", "renewal_id": renewal_id, "status": "paid"})).unwrap();
    let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &event, clock.now());
    let r = http
        .post(format!("{}/api/v1/payments/webhook", server.base))
        .header("qcert-signature", sig)
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    clock.set(at(30));

    // -15 d: B gets its second reminder; A ordered renewal, so none.
    clock.set(at(15));
    let r = tick().await;
    assert_eq!((r.reminders_15, r.reminders_45), (1, 0), "{r:?}");
    deliver().await;
    assert_eq!((mails_to("ana1@example.ro"), mails_to("ana2@example.ro"), mails_to("ana3@example.ro")), (1, 2, 0));

    // -4 d: not yet; -3 d: issued, notBefore = old notAfter - 3 days.
    clock.set(at(4));
    assert_eq!(tick().await.renewals.issued, 0);
    clock.set(at(3));
    let r = tick().await;
    assert_eq!(r.renewals.issued, 1, "{r:?}");
    assert_eq!(tick().await.renewals.issued, 0, "once");
    let banner: Value = http.get(&banner_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(banner["renewal_state"], "issued");
    let new_serial = banner["new_serial"].as_str().unwrap().to_owned();
    assert_ne!(new_serial, a.issued.serial);
    let new = ca.registry().certificate(&new_serial).await.unwrap().unwrap();
    assert_eq!(new.cert.not_before, (na - Duration::days(3)).unix_timestamp(), "notBefore = old notAfter - 3 days");
    assert_eq!(
        new.cert.subject_dn,
        ca.registry().certificate(&a.issued.serial).await.unwrap().unwrap().cert.subject_dn
    );
    let new_der = new.der.clone().unwrap();
    let parsed = x509_cert::Certificate::from_der(&new_der).unwrap();
    let csr_der = run_ok(Command::new("openssl").args(["req", "-noout", "-pubkey", "-in"]).arg(&new_csr));
    let cert_key = run_ok(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(write_pem(
        d,
        "new.pem",
        "CERTIFICATE",
        &new_der,
    )));
    assert_eq!(csr_der, cert_key, "rekey: the new certificate carries the new CSR's key");
    assert_eq!(
        parsed.tbs_certificate.subject,
        x509_cert::Certificate::from_der(&a.issued.der).unwrap().tbs_certificate.subject
    );
    pkilint("lint_etsi_cert", &["-t", "QCP-N-QSCD-EIDAS-FINAL-CERTIFICATE"], &d.join("new.pem"))
        .expect("pkilint clean");
    let old_cred = ca.registry().credential(&a.issued.serial).await.unwrap().unwrap();
    let new_cred = ca.registry().credential(&new_serial).await.unwrap().unwrap();
    assert_eq!(old_cred.password_hash, new_cred.password_hash, "same revocation password");
    assert!(ca.registry().revocation(&a.issued.serial).await.unwrap().is_none(), "old stays valid until its notAfter");
    deliver().await;
    assert_eq!(mails_to("ana1@example.ro"), 2, "the new certificate is announced");

    // B: renewal refused at -2 d and after expiry; C (revoked) refused.
    clock.set(at(2));
    let content_b =
        json!({"serial": b.issued.serial, "years": 1, "csr": std::fs::read_to_string(&new_csr).unwrap()}).to_string();
    for (when, holding) in [(at(2), &b), (na + Duration::days(1), &b), (at(10), &c)] {
        clock.set(when);
        let url = format!("{}/api/v1/certificates/{}/renewals", server.base, holding.issued.serial);
        let body = cms_sign(
            d,
            &content_b.replace(&b.issued.serial, &holding.issued.serial),
            &holding.cert,
            &holding.key,
            "sha256",
        );
        let r = http.post(&url).header("content-type", "application/pkcs7-mime").body(body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let v: Value = r.json().await.unwrap();
        assert!(v["detail"].as_str().unwrap().contains("a new order"), "{v}");
    }
    clock.set(na + Duration::days(1));
    let banner: Value = http
        .get(format!("{}/api/v1/certificates/{}/renewal", server.base, b.issued.serial))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(banner["window_open"], false, "expired: no banner");
    server.task.abort();
}
on_both_stores!(lifecycle_45_15_3);

/// A notifier down for a week catches up: the 45-day mail is skipped once
/// the 15-day one is due; an overdue renewal is issued while the old
/// certificate is still valid.
async fn catch_up_after_downtime(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let orders = new_orders(&desk, WEBHOOK, TEST_BASE_URL);
    let notifier = Notifier::new(orders);
    let a = issue(&desk, dir.path(), 1).await;
    clock.set(a.issued.not_after - Duration::days(12));
    let r = notifier.tick(clock.now()).await.unwrap();
    assert_eq!((r.reminders_45, r.reminders_15), (0, 1), "{r:?}");
    let keys: Vec<String> = ["reminder-45", "reminder-15"].iter().map(|k| format!("{k}:{}", a.issued.serial)).collect();
    assert!(qcert_notifier::Outbox::by_key(ca.registry(), &keys[0]).await.unwrap().is_none());
    assert!(qcert_notifier::Outbox::by_key(ca.registry(), &keys[1]).await.unwrap().is_some());
    ca.registry().close().await;
}
on_both_stores!(catch_up_after_downtime);

/// CLOUD: the renewal is authorised by a code from the holder's
/// authenticator and the new key is made in the HSM.
/// A CLOUD holder's order, paid, approved, its authenticator enrolled and
/// its certificate issued 330 days before the wall clock.
struct CloudHolder {
    ca: qcert_ca_core::Ca,
    clock: std::sync::Arc<qcert_ca_core::FixedClock>,
    orders: qcert_ca_core::orders::Orders,
    order_id: String,
    secret: Vec<u8>,
    serial: String,
}

impl CloudHolder {
    async fn new(db: &TestDb) -> CloudHolder {
        use qcert_ca_core::operators::{Operator, Role};
        use qcert_ca_core::orders::OrderForm;
        let clock =
            std::sync::Arc::new(qcert_ca_core::FixedClock::new(OffsetDateTime::now_utc() - Duration::days(330)));
        let (ca, _) = new_ca(db, clock.clone()).await;
        let desk = new_desk(&ca).await;
        let orders = new_orders(&desk, WEBHOOK, TEST_BASE_URL);
        let officer = Operator { name: "radu".into(), role: Role::RaOfficer };
        let form: OrderForm = serde_json::from_value(json!({
            "product": "CLOUD", "years": 1, "given_name": "Mihai", "surname": "Ionescu", "email": "mihai@example.ro",
            "country": "RO", "national_id": "1850101123451", "id_document_number": "SX100200"
        }))
        .unwrap();
        let created = orders.create(&form, None).await.unwrap();
        let mut h = CloudHolder {
            ca,
            clock,
            orders,
            order_id: created.order.id.clone(),
            secret: Vec::new(),
            serial: String::new(),
        };
        h.pay(json!({"event_id": "o-1", "order_id": created.order.id, "status": "paid"})).await;
        h.orders.approve(&officer, &created.order.id, &DocumentNumber::parse("SX100200").unwrap()).await.unwrap();
        let (_, secret) = h.orders.enrol_authenticator(&created.link).await.unwrap();
        h.secret = base32_decode(&secret);
        let issued = h.orders.authorize(&created.link, &totp(&h.secret, h.clock.now())).await.unwrap();
        h.serial = issued.serial.unwrap();
        h
    }

    /// A payment event, signed as the provider does, through the webhook path.
    async fn pay(&self, body: Value) {
        let raw = serde_json::to_vec(&body).unwrap();
        let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &raw, self.clock.now());
        self.orders.payment_webhook(&sig, &raw).await.unwrap();
    }
}

async fn cloud_renewal_by_authorization_code(db: &TestDb) {
    let CloudHolder { ca, clock, orders, secret, serial, .. } = CloudHolder::new(db).await;
    let pay = |body: Value| {
        let raw = serde_json::to_vec(&body).unwrap();
        let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &raw, clock.now());
        let orders = orders.clone();
        async move { orders.payment_webhook(&sig, &raw).await.unwrap() }
    };
    let old = ca.registry().certificate(&serial).await.unwrap().unwrap();
    let na = old.cert.not_after;

    clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(20));
    let wrong = if totp(&secret, clock.now()) == "123456" { "654321" } else { "123456" };
    assert!(matches!(
        orders.order_renewal_code(&serial, 1, wrong).await,
        Err(qcert_ca_core::CaError::SignatureRefused(_))
    ));
    let code = totp(&secret, clock.now());
    let renewal = orders.order_renewal_code(&serial, 1, &code).await.unwrap();
    assert_eq!((renewal.product.as_str(), renewal.state.as_str()), ("cloud", "awaiting-payment"));
    assert!(orders.order_renewal_code(&serial, 1, &code).await.is_err(), "a code works once");
    pay(json!({"event_id": "r-1", "renewal_id": renewal.id, "status": "paid"})).await;

    clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(3));
    let r = Notifier::new(orders.clone()).tick(clock.now()).await.unwrap();
    assert_eq!(r.renewals.issued, 1, "{r:?}");
    let banner = orders.banner(&serial).await.unwrap();
    let new = ca.registry().certificate(&banner.new_serial.unwrap()).await.unwrap().unwrap();
    assert_eq!(new.cert.not_before, na - Duration::days(3).whole_seconds());
    let (old_key, new_key) = (old.cert.hsm_key_label.unwrap(), new.cert.hsm_key_label.unwrap());
    assert_ne!(old_key, new_key, "a new key in the HSM");
    assert_ne!(old.cert.key_id, new.cert.key_id);
    ca.registry().close().await;
}
on_both_stores!(cloud_renewal_by_authorization_code);

/// A paid renewal of a certificate revoked before the issue day is
/// cancelled at that day: nothing issued, the payment flagged for refund
/// (and counted in /metrics' refund gauge), the holder mailed once.
async fn a_paid_renewal_of_a_revoked_certificate_is_cancelled_and_refunded(db: &TestDb) {
    let h = CloudHolder::new(db).await;
    let na = h.ca.registry().certificate(&h.serial).await.unwrap().unwrap().cert.not_after;
    h.clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(20));
    let renewal = h.orders.order_renewal_code(&h.serial, 1, &totp(&h.secret, h.clock.now())).await.unwrap();
    assert!(h.orders.banner(&h.serial).await.unwrap().payment_url.is_some(), "the checkout while renewable");
    h.pay(json!({"event_id": "r-1", "renewal_id": renewal.id, "status": "paid", "payment_ref": "pay-r-1"})).await;
    assert!(h.ca.registry().refunds_due(&h.order_id).await.unwrap().is_empty());
    h.ca.revoke(&h.serial, qcert_ca_core::Reason::KeyCompromise, None, "holder:authorization-code").await.unwrap();
    assert_eq!(h.orders.banner(&h.serial).await.unwrap().payment_url, None, "no checkout once revoked");

    h.clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(3));
    let notifier = Notifier::new(h.orders.clone());
    let r = notifier.tick(h.clock.now()).await.unwrap();
    assert_eq!((r.renewals.issued, r.renewals.cancelled), (0, 1), "{r:?}");
    assert_eq!(h.ca.registry().renewal(&renewal.id).await.unwrap().unwrap().state, "cancelled");
    assert!(h.orders.banner(&h.serial).await.unwrap().new_serial.is_none());
    let refunds = h.ca.registry().refunds_due(&h.order_id).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].payment_ref.as_deref(), Some("pay-r-1"));
    let mail = qcert_notifier::Outbox::by_key(h.ca.registry(), &format!("renewal-cancelled:{}", renewal.id))
        .await
        .unwrap()
        .expect("the holder is told");
    assert!(mail.subject.contains("is cancelled") && mail.recipient == "mihai@example.ro", "{mail:?}");
    // The next tick finds nothing to do again.
    let r = notifier.tick(h.clock.now()).await.unwrap();
    assert_eq!((r.renewals.issued, r.renewals.cancelled), (0, 0), "{r:?}");
    assert_eq!(h.ca.registry().refunds_due(&h.order_id).await.unwrap().len(), 1);
    h.ca.registry().close().await;
}
on_both_stores!(a_paid_renewal_of_a_revoked_certificate_is_cancelled_and_refunded);

/// An unpaid renewal is cancelled when its certificate is revoked: no
/// checkout, and a payment that still comes (the provider's page was open)
/// is taken as nothing to pay for and flagged for refund at once.
async fn an_unpaid_renewal_ends_with_the_revocation_and_a_late_payment_is_refunded(db: &TestDb) {
    let h = CloudHolder::new(db).await;
    let na = h.ca.registry().certificate(&h.serial).await.unwrap().unwrap().cert.not_after;
    h.clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(20));
    let renewal = h.orders.order_renewal_code(&h.serial, 1, &totp(&h.secret, h.clock.now())).await.unwrap();
    h.ca.revoke(&h.serial, qcert_ca_core::Reason::Superseded, None, "ra-officer:radu").await.unwrap();
    assert_eq!(h.ca.registry().renewal(&renewal.id).await.unwrap().unwrap().state, "cancelled");
    let banner = h.orders.banner(&h.serial).await.unwrap();
    assert_eq!((banner.state.as_str(), banner.payment_url), ("not-renewable", None));
    let q = qcert_ca_core::store::audit::AuditQuery { action: Some("renewal.cancel"), limit: 10, ..Default::default() };
    assert_eq!(h.ca.registry().audit_search(&q).await.unwrap().len(), 1);
    h.pay(json!({"event_id": "r-late", "renewal_id": renewal.id, "status": "paid", "payment_ref": "pay-late"})).await;
    let refunds = h.ca.registry().refunds_due(&h.order_id).await.unwrap();
    assert_eq!(refunds.iter().map(|r| r.payment_ref.as_deref()).collect::<Vec<_>>(), [Some("pay-late")]);
    h.clock.set(OffsetDateTime::from_unix_timestamp(na).unwrap() - Duration::days(3));
    let r = Notifier::new(h.orders.clone()).tick(h.clock.now()).await.unwrap();
    assert_eq!((r.renewals.issued, r.renewals.cancelled), (0, 0), "nothing left to issue or cancel: {r:?}");
    h.ca.registry().close().await;
}
on_both_stores!(an_unpaid_renewal_ends_with_the_revocation_and_a_late_payment_is_refunded);

/// The banner's fields agree at each step of a certificate's last 46 days:
/// `window_open` only from -45 d to the deadline (-3 d) inclusive, then
/// `not-renewable`; the deadline is notAfter - 3 days throughout.
async fn banner_fields_agree(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_desk(desk.clone()).await;
    let a = issue(&desk, dir.path(), 1).await;
    let na = a.issued.not_after;
    let url = format!("{}/api/v1/certificates/{}/renewal", server.base, a.issued.serial);
    let http = reqwest::Client::new();
    let deadline = qcert_ca_core::clock::rfc3339((na - Duration::days(3)).unix_timestamp());
    for (when, open, state) in [
        (na - Duration::days(46), false, "none"),
        (na - Duration::days(45), true, "none"),
        (na - Duration::days(4), true, "none"),
        (na - Duration::days(3), true, "none"),
        (na - Duration::days(3) + Duration::seconds(1), false, "not-renewable"),
        (na - Duration::days(2), false, "not-renewable"),
        (na + Duration::seconds(1), false, "not-renewable"),
    ] {
        clock.set(when);
        let r = http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["window_open"].as_bool(), v["renewal_state"].as_str(), v["deadline"].as_str()),
            (Some(open), Some(state), Some(deadline.as_str())),
            "at notAfter {:+} s: {v}",
            (when - na).whole_seconds()
        );
    }
    server.task.abort();
}
on_both_stores!(banner_fields_agree);

/// Issue 12, point 1: a holder who did not agree to publication gets the
/// renewed certificate from a link they hold. TOKEN order -> certificate ->
/// renewal signed with its key over HTTP -> paid -> issued at -3 d -> the
/// mail's link (the order's capability link) gives the new certificate;
/// the order's `/certificate` gives the newest, `?serial=` a given one of
/// the line, `&chain=true` adds the issuing CA.
async fn renewed_certificate_from_the_order_link(db: &TestDb) {
    use qcert_ca_core::operators::{Operator, Role};
    use qcert_ca_core::orders::OrderForm;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let clock = std::sync::Arc::new(qcert_ca_core::FixedClock::new(OffsetDateTime::now_utc() - Duration::days(200)));
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(|base| new_orders(&desk, WEBHOOK, base)).await;
    let orders = new_orders(&desk, WEBHOOK, &server.base);
    let sink = SmtpSink::start(d).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    let http = reqwest::Client::new();
    let pay = |body: Value| {
        let raw = serde_json::to_vec(&body).unwrap();
        let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &raw, clock.now());
        let (http, url) = (http.clone(), format!("{}/api/v1/payments/webhook", server.base));
        async move {
            let r = http.post(url).header("qcert-signature", sig).body(raw).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
    };

    // The order, without publication: TOKEN, CSR, paid, approved, issued.
    let form: OrderForm = serde_json::from_value(json!({
        "product": "TOKEN", "years": 1, "given_name": "Ana", "surname": "Pop", "email": "ana.pop@example.ro",
        "country": "RO", "national_id": "2850101123453", "id_document_number": "RX100200", "publish": false
    }))
    .unwrap();
    let created = orders.create(&form, None).await.unwrap();
    let order_url = orders.order_url(&created.order.id).unwrap();
    let (key, csr) = key_and_csr(d, "first");
    orders.upload_csr(&created.link, std::fs::read(&csr).unwrap()).await.unwrap();
    pay(json!({"event_id": "o-1", "order_id": created.order.id, "status": "paid"})).await;
    let officer = Operator { name: "radu".into(), role: Role::RaOfficer };
    let row = orders.approve(&officer, &created.order.id, &DocumentNumber::parse("RX100200").unwrap()).await.unwrap();
    let old_serial = row.serial.expect("issued on approval");
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status();
            (status, r.text().await.unwrap())
        }
    };
    let (s, old_pem) = get(format!("{order_url}/certificate")).await;
    assert_eq!(s, StatusCode::OK, "{old_pem}");
    let old_cert = d.join("old.pem");
    std::fs::write(&old_cert, &old_pem).unwrap();
    let not_after = ca.registry().certificate(&old_serial).await.unwrap().unwrap().cert.not_after;

    // Renewal ordered with the current key (signing time = wall clock), paid.
    clock.set(OffsetDateTime::now_utc());
    let (_, new_csr) = key_and_csr(d, "next");
    let content =
        json!({"serial": old_serial, "years": 1, "csr": std::fs::read_to_string(&new_csr).unwrap()}).to_string();
    let r = http
        .post(format!("{}/api/v1/certificates/{old_serial}/renewals", server.base))
        .header("content-type", "application/pkcs7-mime")
        .body(cms_sign(d, &content, &old_cert, &key, "sha256"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let renewal: Value = r.json().await.unwrap();
    // Its next step comes by mail: pay, at the renewal's checkout, what a 1-year TOKEN costs.
    dispatcher.run_once(clock.now()).await.unwrap();
    let checkout = renewal["payment_url"].as_str().unwrap().to_owned();
    assert!(checkout.contains(renewal["renewal_id"].as_str().unwrap()), "{renewal}");
    let ordered = sink
        .received()
        .into_iter()
        .find(|m| {
            m.subject.as_deref().unwrap_or("").contains(&format!("renewal of certificate {old_serial} is ordered"))
        })
        .expect("the renewal-ordered mail");
    let text = ordered.body.clone().unwrap_or_default();
    assert!(ordered.rcpt_tos == ["ana.pop@example.ro"] && text.contains("89.00 EUR"), "{ordered:?}");
    let (pay_at, follow_at) = (text.find(&checkout), text.find(&format!("/api/v1/certificates/{old_serial}/renewal")));
    assert!(
        pay_at.is_some() && follow_at.is_some() && pay_at < follow_at,
        "the checkout first, then the renewal page: {text}"
    );
    pay(json!({"event_id": "r-1", "renewal_id": renewal["renewal_id"], "status": "paid"})).await;
    // The payment is confirmed by mail, once (a repeated event sends nothing more).
    pay(json!({"event_id": "r-1", "renewal_id": renewal["renewal_id"], "status": "paid"})).await;
    dispatcher.run_once(clock.now()).await.unwrap();
    let paid: Vec<_> = sink
        .received()
        .into_iter()
        .filter(|m| {
            m.subject.as_deref().unwrap_or("").contains(&format!("renewal of certificate {old_serial} is paid"))
        })
        .collect();
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert!(paid[0].body.as_deref().unwrap_or("").contains("issued automatically on"), "{paid:?}");

    // -3 d: issued and mailed with the order's link.
    clock.set(OffsetDateTime::from_unix_timestamp(not_after).unwrap() - Duration::days(3));
    assert_eq!(Notifier::new(orders.clone()).tick(clock.now()).await.unwrap().renewals.issued, 1);
    let new_serial = orders.banner(&old_serial).await.unwrap().new_serial.expect("renewed");
    dispatcher.run_once(clock.now()).await.unwrap();
    let mails = sink.received();
    let issued_mail =
        mails.iter().find(|m| m.subject.as_deref().unwrap_or("").contains(&new_serial)).unwrap_or_else(|| {
            panic!("a mail names {new_serial}: {:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>())
        });
    let link = issued_mail.link().unwrap();
    assert!(link.starts_with(&format!("{order_url}/certificate")), "the order's capability link: {link}");
    let serial_of = |pem: &str| {
        // The first certificate of the PEM text.
        let first = pem.split_inclusive("-----END CERTIFICATE-----\n").next().unwrap();
        let c = <x509_cert::Certificate as der::DecodePem>::from_pem(first.as_bytes()).unwrap();
        hex::encode(c.tbs_certificate.serial_number.as_bytes())
    };
    let (s, pem) = get(link).await;
    assert_eq!(s, StatusCode::OK, "{pem}");
    assert_eq!(serial_of(&pem), new_serial, "the mailed link gives the new certificate");
    let (s, pem) = get(format!("{order_url}/certificate")).await;
    assert_eq!((s, serial_of(&pem)), (StatusCode::OK, new_serial.clone()), "the order's newest certificate");
    let (s, pem) = get(format!("{order_url}/certificate?serial={old_serial}")).await;
    assert_eq!((s, serial_of(&pem)), (StatusCode::OK, old_serial.clone()), "a given one of the line");
    let (s, pem) = get(format!("{order_url}/certificate?chain=true")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2, "{pem}");
    assert!(pem.ends_with(&qcert_ca_core::pem("CERTIFICATE", &ca.hierarchy().issuing)), "then the issuing CA");
    // The chain verifies with openssl against the root (at the test clock's time).
    let root = write_pem(d, "root.pem", "CERTIFICATE", &ca.hierarchy().root);
    let leaf = d.join("renewed.pem");
    std::fs::write(&leaf, &pem).unwrap();
    let at = (clock.now() + Duration::hours(1)).unix_timestamp().to_string();
    let out = run_ok(
        Command::new("openssl")
            .args(["verify", "-attime", &at, "-CAfile"])
            .arg(&root)
            .arg("-untrusted")
            .arg(&leaf)
            .arg(&leaf),
    );
    assert!(out.contains(": OK"), "{out}");
    // Another order's or a made-up serial: 404; a bad query: 400 (as every query refusal); the
    // directory still serves nothing (no consent).
    let (s, _) = get(format!("{order_url}/certificate?serial=0a")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(format!("{order_url}/certificate?chain=maybe")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = get(format!("{}/certs/{new_serial}.pem", server.base)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.task.abort();
}
on_both_stores!(renewed_certificate_from_the_order_link);
