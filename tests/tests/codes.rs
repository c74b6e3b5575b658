#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Authorization codes, enrolment, double payments and delivery codes over
//! HTTP (port 0), on both stores: wrong CLOUD codes are counted per
//! authenticator before they are checked and lock it after 5 (also in a
//! concurrent burst), only an RA officer unlocks or resets it, codes are
//! rate-limited per order and per certificate (429 + Retry-After); a second
//! payment is answered `already_paid`, audited once as paid and flagged for
//! refund; concurrent takes of a kit code never give a 500, and a blocked
//! or replaced delivery hands out no code.

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::orders::CodeLimits;
use qcert_ca_core::store::limits::Window;
use qcert_ca_core::Clock;
use qcert_tests::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];

struct World {
    ca: qcert_ca_core::Ca,
    clock: std::sync::Arc<qcert_ca_core::FixedClock>,
    server: Server,
    http: reqwest::Client,
    ra: String,
    hotline: String,
}

async fn world(db: &TestDb, limits: CodeLimits) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(|base| new_orders(&desk, WEBHOOK, base).with_code_limits(limits)).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let hotline = ops.add("test", "anna", Role::HotlineAgent).await.unwrap().expose().to_owned();
    World { ca, clock, server, http: reqwest::Client::new(), ra, hotline }
}

fn limits(lock_after: i64, per_order: u32, per_certificate: u32) -> CodeLimits {
    CodeLimits {
        lock_after,
        per_order: Window { limit: per_order, window_secs: 900 },
        per_certificate: Window { limit: per_certificate, window_secs: 900 },
    }
}

/// A status, the problem's or answer's JSON, and the Retry-After header.
type Answer = (StatusCode, Value, Option<String>);

async fn send(http: &reqwest::Client, method: Method, url: String, token: Option<&str>, body: Option<Value>) -> Answer {
    let mut req = http.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let value = resp.json().await.unwrap_or(Value::Null);
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "never a 500: {value}");
    if !status.is_success() {
        assert_eq!(ct, "application/problem+json", "{value}");
    }
    (status, value, retry)
}

impl World {
    async fn call(&self, method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.server.base) };
        send(&self.http, method, url, token, body).await
    }

    async fn webhook(&self, body: Value) -> (StatusCode, Value) {
        let resp = post_signed_webhook(&self.http, &self.server.base, &body, WEBHOOK, self.clock.now()).await;
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An order, paid and approved: (id, order URL).
    async fn approved(&self, product: &str, doc: &str) -> (String, String) {
        let form = json!({
            "product": product, "years": 1, "given_name": "Ioana", "surname": "Popescu",
            "email": "ioana@example.ro", "country": "RO", "national_id": "2850101123453",
            "id_document_number": doc, "language": "en"
        });
        let (s, created, _) = self.call(Method::POST, "/api/v1/orders", None, Some(form)).await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        let id = created["order_id"].as_str().unwrap().to_owned();
        let url = created["order_url"].as_str().unwrap().to_owned();
        let (s, v) = self.webhook(json!({"event_id": format!("evt-{id}"), "order_id": id, "status": "paid"})).await;
        assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("applied")));
        if product == "TOKEN" {
            let r = self.http.put(format!("{url}/csr")).body(openssl_csr(CsrKey::P384)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        let approval = format!("/api/v1/ra/orders/{id}/approval");
        let (s, v, _) = self.call(Method::POST, &approval, Some(&self.ra), Some(json!({"document_number": doc}))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (id, url)
    }

    /// Enrol the authenticator: its secret.
    async fn enrol(&self, order_url: &str) -> Vec<u8> {
        let (s, e, _) = self.call(Method::POST, &format!("{order_url}/authenticator"), None, None).await;
        assert_eq!(s, StatusCode::OK, "{e}");
        base32_decode(e["secret"].as_str().unwrap())
    }

    async fn officer_view(&self, id: &str) -> Value {
        let (s, v, _) = self.call(Method::GET, &format!("/api/v1/ra/orders/{id}"), Some(&self.ra), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v
    }

    async fn audit_count(&self, action: &str, subject: &str) -> usize {
        let rows = self.ca.registry().audit_page(0, 10_000).await.unwrap();
        rows.iter().filter(|r| r.action == action && r.subject == subject).count()
    }

    async fn metric(&self, name: &str) -> String {
        let text = self.http.get(format!("{}/metrics", self.server.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
            .to_owned()
    }
}

/// A 6-digit code that is wrong at `now` (and one step either side).
fn wrong_codes(secret: &[u8], now: time::OffsetDateTime, n: usize) -> Vec<String> {
    let right: Vec<String> = [-30, 0, 30].iter().map(|d| totp(secret, now + time::Duration::seconds(*d))).collect();
    (0..).map(|i| format!("{:06}", i * 7919 % 1_000_000)).filter(|c| !right.contains(c)).take(n).collect()
}

fn is_locked(v: &Value) -> bool {
    v["type"] == "urn:qcert:problem:authenticator-locked"
        && v["detail"].as_str().unwrap_or_default().contains("registration authority")
}

async fn wrong_codes_lock_the_authenticator_until_an_officer_unlocks_it(db: &TestDb) {
    let w = world(db, limits(5, 1000, 1000)).await;
    let (id, url) = w.approved("CLOUD", "SX654321").await;
    let next_step = |v: Value| v["next_step"].as_str().unwrap_or_default().to_owned();
    assert_eq!(next_step(w.call(Method::GET, &url, None, None).await.1), "enrol your authenticator");
    let secret = w.enrol(&url).await;
    // The secret is out: the holder's next step is the first code, not enrolling again.
    assert_eq!(next_step(w.call(Method::GET, &url, None, None).await.1), "send your first authorization code");
    // Enrolment is once: a second call does not replace the secret.
    let (s, v, _) = w.call(Method::POST, &format!("{url}/authenticator"), None, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("registration authority (RA)"), "{v}");
    assert_eq!(w.officer_view(&id).await["authenticator"], json!({"state": "enrolling", "wrong_codes": 0}));

    // 20 wrong codes at once: exactly 5 are checked (4 refused, the 5th locks), the rest are locked out.
    let now = w.clock.now();
    let authorize = format!("{url}/authorization");
    let burst = wrong_codes(&secret, now, 20).into_iter().map(|code| {
        let (http, url) = (w.http.clone(), authorize.clone());
        tokio::spawn(async move { send(&http, Method::POST, url, None, Some(json!({"code": code}))).await })
    });
    let mut answers = Vec::new();
    for t in burst.collect::<Vec<_>>() {
        answers.push(t.await.unwrap());
    }
    let refused = answers.iter().filter(|(s, _, _)| *s == StatusCode::FORBIDDEN).count();
    let locked = answers.iter().filter(|(s, v, _)| *s == StatusCode::LOCKED && is_locked(v)).count();
    assert_eq!((refused, locked), (4, 16), "{answers:?}");
    assert_eq!(w.audit_count("order.authorization-code", &id).await, 5, "5 codes checked, each audited");
    assert_eq!(w.audit_count("order.authenticator-locked", &id).await, 1);
    let view = w.officer_view(&id).await;
    assert_eq!((&view["authenticator"]["state"], &view["authenticator"]["wrong_codes"]), (&json!("locked"), &json!(5)));
    assert!(view["authenticator"]["locked_at"].is_string(), "{view}");

    // The right code is refused once locked, and its answer says whom to contact, echoing nothing.
    let right = totp(&secret, now);
    let (s, v, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": right}))).await;
    assert_eq!(s, StatusCode::LOCKED, "{v}");
    assert!(is_locked(&v) && !v.to_string().contains(&right), "{v}");
    assert_eq!(w.officer_view(&id).await["state"], "approved", "not issued");

    // Only an RA officer unlocks it (audited); then the right code works and resets the count.
    let unlock = format!("/api/v1/ra/orders/{id}/authenticator/unlock");
    assert_eq!(w.call(Method::POST, &unlock, Some(&w.hotline), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(w.call(Method::POST, &unlock, None, None).await.0, StatusCode::UNAUTHORIZED);
    let (s, v, _) = w.call(Method::POST, &unlock, Some(&w.ra), None).await;
    assert_eq!(
        (s, &v["authenticator"]["state"], &v["authenticator"]["wrong_codes"]),
        (StatusCode::OK, &json!("enrolling"), &json!(0))
    );
    assert_eq!(w.call(Method::POST, &unlock, Some(&w.ra), None).await.0, StatusCode::CONFLICT, "nothing to unlock");
    assert_eq!(w.audit_count("order.authenticator-unlock", &id).await, 1);
    let wrong = wrong_codes(&secret, now, 1).pop().unwrap();
    assert_eq!(w.call(Method::POST, &authorize, None, Some(json!({"code": wrong}))).await.0, StatusCode::FORBIDDEN);
    let (s, v, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": right}))).await;
    assert_eq!((s, v["state"].as_str()), (StatusCode::OK, Some("issued")), "{v}");
    let view = w.officer_view(&id).await;
    assert_eq!(view["authenticator"], json!({"state": "active", "wrong_codes": 0}), "a right code resets the count");
    // Malformed codes are not attempts.
    let (s, _, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": "12ab"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(w.officer_view(&id).await["authenticator"]["wrong_codes"], 0);

    // Re-enrolment only through an RA officer, who checks the ID document; the holder is invited again.
    let reset = format!("/api/v1/ra/orders/{id}/authenticator/reset");
    let doc = |d: &str| Some(json!({"document_number": d}));
    assert_eq!(w.call(Method::POST, &reset, Some(&w.hotline), doc("SX654321")).await.0, StatusCode::FORBIDDEN);
    assert_eq!(w.call(Method::POST, &reset, Some(&w.ra), doc("ZZ999999")).await.0, StatusCode::CONFLICT);
    let (s, v, _) = w.call(Method::POST, &reset, Some(&w.ra), doc("SX654321")).await;
    assert_eq!((s, &v["authenticator"]["state"]), (StatusCode::OK, &json!("none")), "{v}");
    assert_eq!(w.audit_count("order.authenticator-reset", &id).await, 1);
    let invitations: i64 = {
        use sqlx::Row;
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        let n = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE dedupe_key LIKE $1")
            .bind(format!("authenticator:{id}%"))
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get("n")
            .unwrap();
        pool.close().await;
        n
    };
    assert_eq!(invitations, 2, "the first invitation and a fresh one");
    let old_code = totp(&secret, now + time::Duration::seconds(60));
    let fresh = w.enrol(&url).await;
    assert_ne!(fresh, secret, "a new secret");
    assert_eq!(w.call(Method::POST, &format!("{url}/authenticator"), None, None).await.0, StatusCode::CONFLICT);
    w.clock.advance(time::Duration::seconds(60));
    let (s, _, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": old_code}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the old authenticator's codes no longer work");
    let (s, v, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": totp(&fresh, w.clock.now())}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(w.officer_view(&id).await["authenticator"]["state"], "active");
    w.server.task.abort();
}
on_both_stores!(wrong_codes_lock_the_authenticator_until_an_officer_unlocks_it);

async fn codes_are_rate_limited_per_order_and_per_certificate(db: &TestDb) {
    let w = world(db, limits(5, 3, 3)).await;
    let (id, url) = w.approved("CLOUD", "SX111111").await;
    let secret = w.enrol(&url).await;
    let now = w.clock.now();
    let authorize = format!("{url}/authorization");
    let (s, v, _) = w.call(Method::POST, &authorize, None, Some(json!({"code": totp(&secret, now)}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let serial = v["serial"].as_str().unwrap().to_owned();
    let wrong = wrong_codes(&secret, now, 8);
    for code in &wrong[..2] {
        assert_eq!(w.call(Method::POST, &authorize, None, Some(json!({"code": code}))).await.0, StatusCode::FORBIDDEN);
    }
    // The 4th code for this order within the window: 429 with Retry-After, not counted as a wrong code.
    let (s, v, retry) = w.call(Method::POST, &authorize, None, Some(json!({"code": wrong[2]}))).await;
    assert_eq!((s, v["type"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("urn:qcert:problem:rate-limited")));
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(w.officer_view(&id).await["authenticator"]["wrong_codes"], 2);

    // Renewal by code (only the public serial needed): its own limit per certificate, and the same lock.
    let renew = format!("/api/v1/certificates/{serial}/renewals");
    for code in &wrong[3..5] {
        let (s, v, _) = w.call(Method::POST, &renew, None, Some(json!({"years": 1, "code": code}))).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, v, _) = w.call(Method::POST, &renew, None, Some(json!({"years": 1, "code": wrong[5]}))).await;
    assert_eq!(s, StatusCode::LOCKED, "the 5th wrong code of the authenticator: {v}");
    assert!(is_locked(&v));
    let (s, _, retry) = w.call(Method::POST, &renew, None, Some(json!({"years": 1, "code": wrong[6]}))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    // Past the window the limit lets codes through again, but the lock holds until an officer lifts it.
    w.clock.advance(time::Duration::seconds(901));
    let right = totp(&secret, w.clock.now());
    let (s, _, _) = w.call(Method::POST, &renew, None, Some(json!({"years": 1, "code": right}))).await;
    assert_eq!(s, StatusCode::LOCKED);
    let (s, _, _) =
        w.call(Method::POST, &format!("/api/v1/ra/orders/{id}/authenticator/unlock"), Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v, _) = w.call(Method::POST, &renew, None, Some(json!({"years": 1, "code": right}))).await;
    assert!(s.is_success(), "{s} {v}");
    let renewal_id = v["renewal_id"].as_str().unwrap().to_owned();

    // A renewal paid twice: the second is flagged for refund, visible in the order view and /metrics.
    assert_eq!(w.metric("qcert_payments_refund_due").await, "0");
    let pay = |event: &str| json!({"event_id": event, "renewal_id": renewal_id, "status": "paid"});
    assert_eq!(w.webhook(pay("evt-r1")).await.1["result"], "applied");
    let (s, v) = w.webhook(pay("evt-r2")).await;
    assert_eq!((s, &v["result"], &v["refund_due"]), (StatusCode::OK, &json!("already_paid"), &json!(true)));
    assert_eq!(w.webhook(pay("evt-r2")).await.1["result"], "duplicate", "a replay is not another payment");
    assert_eq!(w.audit_count("renewal.paid", &serial).await, 1);
    assert_eq!(w.audit_count("renewal.double-payment", &serial).await, 1);
    let refunds = w.officer_view(&id).await["refunds_due"].clone();
    assert_eq!(refunds.as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!((&refunds[0]["event_id"], &refunds[0]["renewal_id"]), (&json!("evt-r2"), &json!(renewal_id)));
    assert_eq!(w.metric("qcert_payments_refund_due").await, "1");
    w.server.task.abort();
}
on_both_stores!(codes_are_rate_limited_per_order_and_per_certificate);

async fn a_second_payment_is_already_paid_and_flagged_for_refund(db: &TestDb) {
    let w = world(db, CodeLimits::default()).await;
    let form = json!({
        "product": "TOKEN", "years": 1, "given_name": "Ana", "surname": "Pop", "email": "ana@example.ro",
        "country": "RO", "national_id": "2850101123453", "id_document_number": "AB123456"
    });
    let (_, created, _) = w.call(Method::POST, "/api/v1/orders", None, Some(form)).await;
    let id = created["order_id"].as_str().unwrap().to_owned();
    let pay = |event: &str| json!({"event_id": event, "order_id": id, "status": "paid", "payment_ref": format!("ref-{event}")});
    let (s, v) = w.webhook(pay("evt_1")).await;
    assert_eq!((s, v["result"].as_str()), (StatusCode::OK, Some("applied")));
    assert_eq!(w.webhook(pay("evt_1")).await.1["result"], "duplicate");
    let (s, v) = w.webhook(pay("evt_2")).await;
    assert_eq!((s, &v["result"], &v["refund_due"]), (StatusCode::OK, &json!("already_paid"), &json!(true)), "{v}");
    assert_eq!(w.audit_count("order.paid", &id).await, 1, "paid once");
    assert_eq!(w.audit_count("order.double-payment", &id).await, 1);
    let view = w.officer_view(&id).await;
    assert_eq!(view["state"], "awaiting-identity");
    let refunds = view["refunds_due"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{view}");
    assert_eq!((&refunds[0]["event_id"], &refunds[0]["payment_ref"]), (&json!("evt_2"), &json!("ref-evt_2")));
    assert_eq!(w.metric("qcert_payments_refund_due").await, "1");
    w.server.task.abort();
}
on_both_stores!(a_second_payment_is_already_paid_and_flagged_for_refund);

async fn kit_codes_are_taken_once_and_never_for_a_dead_link(db: &TestDb) {
    let w = world(db, CodeLimits::default()).await;
    let (id, _) = w.approved("TOKEN", "CD123456").await;
    let view = w.officer_view(&id).await;
    assert_eq!(view["state"], "issued");
    assert_eq!((&view["delivery"]["state"], &view["delivery"]["code_waiting"]), (&json!("waiting"), &json!(true)));

    // Eight officers at once: one gets the code, the others a clear 409, none a 500.
    let take = format!("{}/api/v1/ra/orders/{id}/delivery-code", w.server.base);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, url, ra) = (w.http.clone(), take.clone(), w.ra.clone());
            tokio::spawn(async move { send(&http, Method::POST, url, Some(&ra), None).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    let ok = answers.iter().filter(|(s, v, _)| *s == StatusCode::OK && v["code"].is_string()).count();
    let conflict = answers.iter().filter(|(s, _, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!((ok, conflict), (1, 7), "{answers:?}");
    assert_eq!(w.audit_count("order.code-taken", &id).await, 1);
    assert_eq!(w.officer_view(&id).await["delivery"]["code_waiting"], false);

    // A blocked link: its code is not handed out; the officer is told to issue a new delivery.
    let (id, _) = w.approved("TOKEN", "EF123456").await;
    let registry = w.ca.registry();
    let delivery = registry.deliveries_of_order(&id).await.unwrap().pop().unwrap();
    for _ in 0..3 {
        registry.charge_delivery_attempt(&delivery.id, 3).await.unwrap().unwrap();
    }
    assert!(registry.block_delivery(&delivery.id, w.clock.now().unix_timestamp()).await.unwrap());
    let view = w.officer_view(&id).await;
    let d = &view["delivery"];
    assert_eq!(
        (&d["state"], &d["wrong_codes"], &d["code_waiting"]),
        (&json!("blocked"), &json!(3), &json!(true)),
        "{view}"
    );
    assert!(d["blocked_at"].is_string() && d["created_at"].is_string(), "{view}");
    let take = format!("/api/v1/ra/orders/{id}/delivery-code");
    let (s, v, _) = w.call(Method::POST, &take, Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("issue a new delivery"), "{v}");
    assert!(registry.kit_code_waiting(&id).await.unwrap(), "refused: nothing taken");
    // After a new delivery the envelope's code belongs to a replaced link: not handed out either.
    let (s, v, _) = w.call(Method::POST, &format!("/api/v1/ra/orders/{id}/secret-delivery"), Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = w.officer_view(&id).await["delivery"].clone();
    assert_eq!(
        (&d["state"], &d["links"], &d["wrong_codes"], &d["code_waiting"]),
        (&json!("waiting"), &json!(2), &json!(0), &json!(false)),
        "{d}"
    );
    let (s, v, _) = w.call(Method::POST, &take, Some(&w.ra), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("replaced by a new link"), "{v}");
    w.server.task.abort();
}
on_both_stores!(kit_codes_are_taken_once_and_never_for_a_dead_link);
