#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! What the RA officer sees, over HTTP on both stores: the holder's email,
//! phone (E.164, validated) and document type in the order view; the audit
//! log read API with filters and pages, for admin and RA only, without
//! secrets.

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::payment::{sign_webhook, WebhookKey};
use qcert_ca_core::Clock;
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [9u8; 32];

fn form(phone: Option<&str>, document_type: Option<&str>, doc: &str) -> Value {
    let mut f = json!({
        "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": "Popescu", "email": "ioana@example.ro",
        "country": "RO", "national_id": "2850101123453", "id_document_number": doc
    });
    if let Some(p) = phone {
        f["phone"] = json!(p);
    }
    if let Some(d) = document_type {
        f["document_type"] = json!(d);
    }
    f
}

async fn officer_view_and_audit_reading(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(|base| new_orders(&desk, WEBHOOK, base)).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let admin = ops.add("test", "ada", Role::Admin).await.unwrap().expose().to_owned();
    let hotline = ops.add("test", "anna", Role::HotlineAgent).await.unwrap().expose().to_owned();
    let http = reqwest::Client::new();
    let base = server.base.clone();
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
    };
    let order = |body: Value| send(http.post(format!("{base}/api/v1/orders")).json(&body));

    // The form checks the phone and the document type, naming the field only.
    for (phone, doc_type, field) in [
        (Some("0791234567"), None, "phone"),
        (Some("+40 71x"), None, "phone"),
        (None, Some("licence"), "document_type"),
    ] {
        let (s, v, text) = order(form(phone, doc_type, "RX123456")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["type"], "urn:qcert:problem:invalid-field");
        assert!(v["detail"].as_str().unwrap().contains(field), "{v}");
        for sent in [phone, doc_type].into_iter().flatten() {
            assert!(!text.contains(sent), "the value is not echoed: {text}");
        }
    }
    let (s, created, _) = order(form(Some("+40 (712) 345-678"), Some("passport"), "RX123456")).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["order_id"].as_str().unwrap().to_owned();
    let order_url = created["order_url"].as_str().unwrap().to_owned();
    let (s, plain, _) = order(form(None, None, "RX654321")).await;
    assert_eq!(s, StatusCode::CREATED, "{plain}");
    let plain_id = plain["order_id"].as_str().unwrap().to_owned();
    let created_at = clock.now();
    clock.advance(time::Duration::minutes(5));
    let raw = serde_json::to_vec(&json!({"event_id": "e-1", "order_id": id, "status": "paid"})).unwrap();
    let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &raw, clock.now());
    let (s, _, _) =
        send(http.post(format!("{base}/api/v1/payments/webhook")).header("qcert-signature", sig).body(raw)).await;
    assert_eq!(s, StatusCode::OK);

    // The officer's view: email, normalised phone, document type.
    let (s, v, _) = send(http.get(format!("{base}/api/v1/ra/orders/{id}")).bearer_auth(&ra)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["email"].as_str(), v["phone"].as_str(), v["document_type"].as_str()),
        (Some("ioana@example.ro"), Some("+40712345678"), Some("passport")),
        "{v}"
    );
    let (_, queue, _) = send(http.get(format!("{base}/api/v1/ra/orders")).bearer_auth(&ra)).await;
    assert!(queue.as_array().unwrap().iter().any(|o| o["order_id"] == id.as_str() && o["phone"] == "+40712345678"));
    let (_, v, _) = send(http.get(format!("{base}/api/v1/ra/orders/{plain_id}")).bearer_auth(&ra)).await;
    assert_eq!((v["phone"].clone(), v["document_type"].clone()), (Value::Null, Value::Null), "{v}");

    // The audit log: by subject, actor, action, time; newest first; paged.
    let entries = |token: String, query: String| {
        let url = format!("{base}/api/v1/audit/entries{query}");
        let http = http.clone();
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
        }
    };
    let actions = |v: &Value| -> Vec<String> {
        v["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    };
    let (s, v, text) = entries(ra.clone(), format!("?subject={id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(actions(&v), ["order.paid", "order.create"], "newest first: {v}");
    assert!(v.get("next_before").is_none(), "one page: {v}");
    for secret in ["RX123456", order_url.rsplit('/').next().unwrap(), &ra, &admin] {
        assert!(!text.contains(secret), "no secret in the audit answer");
    }
    let (_, v, _) = entries(admin.clone(), "?actor=payment-provider".into()).await;
    assert_eq!(actions(&v), ["order.paid"], "{v}");
    let (_, v, _) = entries(admin.clone(), "?action=order.create".into()).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 2, "{v}");
    let until = qcert_ca_core::clock::rfc3339(created_at.unix_timestamp() + 1);
    let (_, v, _) = entries(ra.clone(), format!("?subject={id}&until={until}")).await;
    assert_eq!(actions(&v), ["order.create"], "{v}");
    let (_, v, _) = entries(ra.clone(), format!("?subject={id}&since={until}")).await;
    assert_eq!(actions(&v), ["order.paid"], "{v}");
    // Pages of one: each next_before leads to the next older entry, and no entry twice.
    let (_, all, _) = entries(admin.clone(), "?limit=500".into()).await;
    let all_seqs: Vec<i64> = all["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(all_seqs.len() >= 5 && all_seqs.windows(2).all(|w| w[0] > w[1]), "{all_seqs:?}");
    let (mut paged, mut cursor) = (Vec::new(), String::new());
    loop {
        let (s, v, _) = entries(admin.clone(), format!("?limit=2{cursor}")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        paged.extend(v["entries"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
        match v["next_before"].as_i64() {
            Some(b) => cursor = format!("&before={b}"),
            None => break,
        }
    }
    assert_eq!(paged, all_seqs);

    // Roles first, then the input.
    let (s, _, _) = entries(hotline.clone(), "?limit=0".into()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = send(http.get(format!("{base}/api/v1/audit/entries"))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for (query, field) in
        [("?limit=0", "limit"), ("?since=yesterday", "since"), ("?before=x", "query"), ("?password=1", "query")]
    {
        let (s, v, _) = entries(ra.clone(), query.into()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(field), "{query}: {v}");
    }
    server.task.abort();
}
on_both_stores!(officer_view_and_audit_reading);
