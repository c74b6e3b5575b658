#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The public order form against an outsider (issue 11 points 3 and 7,
//! issue 12 point 11), over HTTP on both stores: odd and multi-byte input
//! in every holder field gets a problem document naming the field (never a
//! panic, a 500 or the value echoed), and nothing is stored; limits per
//! client address and per mailbox (429 + Retry-After), the cap of open
//! unpaid orders, and unpaid orders expiring and deleted by the notifier's
//! tick, audited by count.

use std::sync::{Arc, Mutex};

use qcert_ca_core::orders::{FormLimits, Orders};
use qcert_ca_core::store::limits::Window;
use qcert_ca_core::Clock;
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];

fn form(email: &str) -> Value {
    json!({
        "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": "Popescu", "email": email,
        "country": "RO", "national_id": cnp(7), "id_document_number": "RX 123456", "language": "en"
    })
}

struct World {
    clock: Arc<qcert_ca_core::FixedClock>,
    orders: Orders,
    server: Server,
    http: reqwest::Client,
    db_url: String,
}

async fn world(db: &TestDb, limits: FormLimits) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let slot = Arc::new(Mutex::new(None));
    let made = slot.clone();
    let server = serve_orders_with(move |base| {
        let o = new_orders(&desk, WEBHOOK, base).with_form_limits(limits);
        *made.lock().unwrap() = Some(o.clone());
        o
    })
    .await;
    let orders = slot.lock().unwrap().take().unwrap();
    World { clock, orders, server, http: reqwest::Client::new(), db_url: db.url.clone() }
}

impl World {
    async fn order(&self, body: &Value, key: &str, extra: Option<(&str, &str)>) -> (StatusCode, Option<String>, Value) {
        let mut req =
            self.http.post(format!("{}/api/v1/orders", self.server.base)).header("idempotency-key", key).json(body);
        if let Some((h, v)) = extra {
            req = req.header(h, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = resp.text().await.unwrap();
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {text}"));
        if !status.is_success() {
            assert_eq!(ct, "application/problem+json", "{value}");
            assert!(value["type"].as_str().unwrap().starts_with("urn:qcert:problem:"), "{value}");
        }
        (status, retry, value)
    }

    async fn orders_stored(&self) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.db_url).await.unwrap();
        let n = sqlx::query("SELECT COUNT(*) AS n FROM orders").fetch_one(&pool).await.unwrap().get::<i64, _>("n");
        pool.close().await;
        n
    }

    async fn pay(&self, order_id: &str, event: &str) -> StatusCode {
        let event = json!({"event_id": event, "order_id": order_id, "status": "paid"});
        post_signed_webhook(&self.http, &self.server.base, &event, WEBHOOK, self.clock.now()).await.status()
    }
}

async fn odd_holder_input_is_refused_by_field(db: &TestDb) {
    let w = world(db, FormLimits::default()).await;
    let long = "\u{20ac}".repeat(5000);
    let cases: Vec<(&str, String, &str)> = vec![
        ("national_id", "a\u{20ac}b-123".into(), "id-number"),
        ("national_id", "\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}\u{20ac}".into(), "id-number"),
        ("national_id", "PNO\u{20ac}RO-1900101123457".into(), "id-number"),
        ("national_id", "PNORO-1900101123450".into(), "check digit"),
        ("national_id", "123".into(), "id-number"),
        ("national_id", "PASXX-C01X00T47".into(), "id-number"),
        ("national_id", long.clone(), "id-number"),
        ("country", "XX".into(), "country"),
        ("country", "R\u{20ac}".into(), "country"),
        ("country", "\u{20ac}".into(), "country"),
        ("given_name", "Ana\u{202e}lirpA".into(), "given name"),
        ("given_name", "An\u{200b}a".into(), "given name"),
        ("given_name", "Ana\u{2066}x".into(), "given name"),
        ("given_name", long.clone(), "given name"),
        ("surname", "Pop\u{1f600}".into(), "surname"),
        ("surname", "Pop\u{0}".into(), "surname"),
        ("surname", "Pop\r\nBcc: victim@example.org".into(), "surname"),
        ("email", "ana\u{20ac}@example.ro".into(), "email"),
        ("email", long.clone(), "email"),
        ("id_document_number", "RX\u{20ac}123456".into(), "ID document number"),
        ("id_document_number", long, "ID document number"),
    ];
    for (field, value, expect) in &cases {
        let mut f = form("ana@example.ro");
        f[*field] = json!(value);
        let (s, _, v) = w.order(&f, &format!("odd-{field}-{}", random_hex(4)), None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value:?}: {v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(expect), "{field}={value:?} names the field: {v}");
        assert!(!detail.contains(value.as_str()), "{field}: the value is never echoed: {v}");
    }
    assert_eq!(w.orders_stored().await, 0, "refused forms store nothing");

    // The server lived through all of it; a decomposed name is stored in NFC.
    let mut f = form("ana@example.ro");
    f["given_name"] = json!("S\u{326}tefan");
    let (s, _, created) = w.order(&f, "good", None).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let row = w.orders.ca().registry().order(created["order_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(row.given_name, "\u{218}tefan");
    assert_eq!(row.semantics_id, format!("PNORO-{}", cnp(7)));
    w.server.task.abort();
}
on_both_stores!(odd_holder_input_is_refused_by_field);

async fn form_limits_and_unpaid_expiry(db: &TestDb) {
    let limits = FormLimits {
        per_client: Window { limit: 4, window_secs: 3600 },
        per_email: Window { limit: 2, window_secs: 86_400 },
        open_unpaid_per_email: 1,
        unpaid_ttl: time::Duration::hours(1),
    };
    let w = world(db, limits).await;

    // 1st client hit: ana's first order.
    let (s, _, a) = w.order(&form("ana@example.ro"), "a", None).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let a_id = a["order_id"].as_str().unwrap().to_owned();
    let a_link = a["order_url"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    // A retry of the same form with the same key counts for nothing.
    for _ in 0..5 {
        assert_eq!(w.order(&form("ana@example.ro"), "a", None).await.0, StatusCode::OK);
    }
    // 2nd: a second unpaid order for the same address is over the cap (and not kept).
    let (s, _, v) = w.order(&form("Ana@Example.ro"), "a2", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("unpaid orders open"), "{v}");
    assert_eq!(w.orders_stored().await, 1);
    // 3rd: the same mailbox with a +tag is the same mailbox: its 2 orders a day are used.
    let (s, retry, v) = w.order(&form("ana+x@example.ro"), "a3", None).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["type"], "urn:qcert:problem:rate-limited");
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((86_000..=86_400).contains(&retry), "{retry}");
    // 4th: another address is fine; the 5th from this client is over its limit,
    // also when it claims to be someone else (no trusted proxy is configured).
    assert_eq!(w.order(&form("bob@example.ro"), "b", None).await.0, StatusCode::CREATED);
    let (s, retry, v) = w.order(&form("carol@example.ro"), "c", Some(("x-forwarded-for", "203.0.113.9"))).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert!(retry.unwrap().parse::<u64>().unwrap() <= 3600);
    assert_eq!(w.orders_stored().await, 2);

    // Paid orders never expire; unpaid ones do, after an hour.
    let (s, _, bob) = w.order(&form("bob@example.ro"), "b", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(w.pay(bob["order_id"].as_str().unwrap(), "evt-bob").await, StatusCode::OK);
    let notifier = qcert_notifier::Notifier::new(w.orders.clone());
    assert_eq!(notifier.tick(w.clock.now()).await.unwrap().orders_expired, 0, "nothing expired yet");
    w.clock.advance(time::Duration::hours(1) + time::Duration::seconds(1));
    let r = w.http.get(format!("{}/api/v1/orders/{a_link}", w.server.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "an expired link opens nothing");
    assert_eq!(w.pay(&a_id, "evt-late").await, StatusCode::NOT_FOUND, "an expired order takes no payment");
    let (s, _, v) = w.order(&form("ana@example.ro"), "a", None).await;
    assert_eq!(s, StatusCode::CONFLICT, "the key of an expired order: {v}");

    let report = notifier.tick(w.clock.now()).await.unwrap();
    assert_eq!(report.orders_expired, 1, "{report:?}");
    assert_eq!(w.orders_stored().await, 1, "the paid order stays");
    assert!(w.orders.ca().registry().order(&a_id).await.unwrap().is_none());
    assert_eq!(notifier.tick(w.clock.now()).await.unwrap().orders_expired, 0, "deleted once");
    let audit = w.orders.ca().registry().audit_page(0, 1000).await.unwrap();
    let expired: Vec<_> = audit.iter().filter(|e| e.action == "order.expire").collect();
    assert_eq!(expired.len(), 1, "{audit:?}");
    assert!(expired[0].detail.contains("deleted=1"), "{:?}", expired[0]);
    assert!(!expired[0].detail.contains("ana"), "counts, no addresses");

    // The client's window has passed: it may order again (its old events purged).
    let (s, _, v) = w.order(&form("carol@example.ro"), "c2", None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    w.server.task.abort();
}
on_both_stores!(form_limits_and_unpaid_expiry);

/// Many unpaid orders expire in batches within one tick, by index.
async fn expiry_deletes_in_batches(db: &TestDb) {
    let limits = FormLimits {
        per_client: Window { limit: 10_000, window_secs: 3600 },
        per_email: Window { limit: 10_000, window_secs: 3600 },
        open_unpaid_per_email: 10_000,
        unpaid_ttl: time::Duration::hours(1),
    };
    let w = world(db, limits).await;
    for i in 0..1001 {
        let f = qcert_ca_core::orders::OrderForm {
            product: "CLOUD".into(),
            years: 1,
            given_name: "Ana".into(),
            surname: "Pop".into(),
            email: format!("bulk{i}@example.ro"),
            country: "RO".into(),
            national_id: cnp(i),
            id_document_number: format!("RX{:06}", i),
            publish: false,
            language: None,
            phone: None,
            document_type: None,
        };
        w.orders.create(&f, None).await.unwrap();
    }
    w.clock.advance(time::Duration::hours(2));
    assert_eq!(w.orders.expire_unpaid(w.clock.now()).await.unwrap(), 1001, "three batches of 500 in one call");
    assert_eq!(w.orders_stored().await, 0);
    w.server.task.abort();
}
on_both_stores!(expiry_deletes_in_batches);
