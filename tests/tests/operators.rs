#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Operator accounts over HTTP on both stores: the last active admin cannot
//! be revoked (not even by herself), also when two admins revoke each other
//! at the same moment.

use qcert_ca_core::operators::{Operators, Role};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn the_last_admin_stays(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let desk = new_desk(&ca).await;
    let server = serve_desk(desk).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ada = ops.add("test", "ada", Role::Admin).await.unwrap().expose().to_owned();
    ops.add("test", "anna", Role::HotlineAgent).await.unwrap();
    let http = reqwest::Client::new();
    let delete = |token: String, name: &'static str| {
        let (http, url) = (http.clone(), format!("{}/api/v1/admin/operators/{name}", server.base));
        async move {
            let r = http.delete(url).bearer_auth(token).send().await.unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // The only admin revoking herself: refused, with a problem that says why.
    let (s, body) = delete(ada.clone(), "ada").await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "urn:qcert:problem:conflict");
    assert!(body["detail"].as_str().unwrap().contains("last active admin"), "{body}");
    // Other accounts go as before; an unknown one is 404.
    assert_eq!(delete(ada.clone(), "anna").await.0, StatusCode::NO_CONTENT);
    assert_eq!(delete(ada.clone(), "nobody").await.0, StatusCode::NOT_FOUND);

    // With a second admin, ada may go; then bea is the last.
    let r = http
        .post(format!("{}/api/v1/admin/operators", server.base))
        .bearer_auth(&ada)
        .json(&json!({"name": "bea", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let bea = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(delete(bea.clone(), "ada").await.0, StatusCode::NO_CONTENT);
    assert_eq!(delete(bea.clone(), "bea").await.0, StatusCode::CONFLICT);
    let list = ops.list().await.unwrap();
    assert!(list.iter().any(|a| a.name == "bea" && a.revoked_at.is_none()), "{list:?}");

    // Two admins revoking each other at once: one of them stays.
    ops.add("test", "cai", Role::Admin).await.unwrap();
    let (a, b) = tokio::join!(ops.revoke("admin:cai", "bea"), ops.revoke("admin:bea", "cai"));
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let active = ops.list().await.unwrap().into_iter().filter(|a| a.role == "admin" && a.revoked_at.is_none()).count();
    assert_eq!(active, 1);
    server.task.abort();
}
on_both_stores!(the_last_admin_stays);
