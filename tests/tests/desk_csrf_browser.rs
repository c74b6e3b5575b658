#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! CSRF in real headless Chromium, both stores: a hotline agent signed in
//! on the desk opens a page of another site whose form posts a revocation
//! to the desk's hotline. The browser sends it (cross-site, without the
//! SameSite=Strict session cookie); qcert refuses it before any handler
//! (the hygiene layer reads Sec-Fetch-Site), says why on a page, and no
//! hotline attempt reaches the registry. The same agent's own form on the
//! desk still works afterwards.

use axum::response::Html;
use axum::routing::get;
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::store::Backend;
use qcert_tests::browser::thirtyfour::Cookie;
use qcert_tests::browser::{local, Browser};
use qcert_tests::*;

/// The hotline's per-agent rate events: one per attempt that reached the hotline.
const HOTLINE_EVENTS: &str = "SELECT COUNT(*) FROM rate_events WHERE scope = 'hotline-agent'";

async fn cross_site_form_post_is_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (ca, _) = new_ca(&db, test_clock()).await;
    let desk = new_desk(&ca).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let _server = serve_orders_on(listener, new_orders(&desk, [7u8; 32], &base)).await;
    Operators::new(ca.registry().clone(), ca.clock().clone()).add("test", "anna", Role::HotlineAgent).await.unwrap();
    let (name, value) = qcert_tests::desk::session_cookie(&ca, &base, "anna").await;

    // Another site (127.0.0.1 is not localhost's site): a form aimed at the desk.
    let evil = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let evil_base = format!("http://{}", evil.local_addr().unwrap());
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><title>prize</title><form method=\"post\" action=\"{base}/desk/hotline\">\
         <input name=\"document_number\" value=\"RX123456\"><input name=\"revocation_password\" value=\"12345678\">\
         <input name=\"reason\" value=\"keyCompromise\"><input name=\"csrf\" value=\"guessed\">\
         <button id=\"go\" type=\"submit\">Claim your prize</button></form></html>"
    );
    let app = axum::Router::new().route("/", get(move || async move { Html(page) }));
    tokio::spawn(async move { axum::serve(evil, app).await.unwrap() });

    let b = Browser::start(&format!("desk_csrf_browser-{}", backend_name(backend))).await;
    b.goto(&format!("{base}/static/qcert.css")).await;
    let mut c = Cookie::new(name, value);
    c.set_path("/");
    b.driver.add_cookie(c).await.unwrap();
    b.goto(&format!("{base}/desk/hotline?lang=en")).await;
    b.css("form[action='/desk/hotline'] #document_number").await;

    b.goto(&format!("{evil_base}/")).await;
    b.click_and_wait(&b.css("#go").await).await;
    let text = b.text().await;
    assert!(text.contains("This form was sent from another site"), "refused with the reason: {text}");
    assert!(!text.contains("RX123456") && !text.contains("12345678"), "nothing echoed: {text}");
    b.screenshot("cross-site-refused").await;
    b.assert_accessible("cross-site refusal").await;
    let attempts = db_count(&db, HOTLINE_EVENTS).await;
    assert_eq!(attempts, 0, "no hotline attempt was counted");

    // The agent's own form on the desk still reaches the hotline (a refusal for this unknown number).
    b.goto(&format!("{base}/desk/hotline?lang=en")).await;
    b.css("#document_number").await.send_keys("RX123456").await.unwrap();
    b.css("#revocation_password").await.send_keys("12345678").await.unwrap();
    b.click_and_wait(&b.css("form[action='/desk/hotline'] button").await).await;
    let text = b.text().await;
    assert!(!text.contains("another site"), "{text}");
    assert_eq!(db_count(&db, HOTLINE_EVENTS).await, 1, "the desk's own post reached the hotline");
    b.quit().await;
    db.cleanup().await;
}

fn backend_name(b: Backend) -> &'static str {
    if b == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    }
}

async fn db_count(db: &TestDb, sql: &str) -> i64 {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    let n = sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_form_post_is_refused_sqlite() {
    cross_site_form_post_is_refused(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_form_post_is_refused_postgres() {
    cross_site_form_post_is_refused(Backend::Postgres).await;
}
