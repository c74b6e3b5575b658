#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The browser harness itself (tests/src/browser.rs), in real headless
//! Chromium: a page of a real server opens, axe-core runs in it and a
//! screenshot is saved; axe does report a violation on a bad page (so the
//! accessibility check can fail); a panicking test leaves no chromedriver
//! or chromium behind.

use futures_util::FutureExt as _;
use qcert_tests::browser::{self, local, Browser};
use qcert_tests::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_page_of_a_real_server_opens_passes_axe_and_is_photographed() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (ca, _) = new_ca(&db, test_clock()).await;
    let desk = new_desk(&ca).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Links are made for the name the browser uses.
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let server = serve_orders_on(listener, new_orders(&desk, [9u8; 32], &base)).await;
    let order: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/orders", server.base))
        .json(&json!({
            "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": "Popescu",
            "email": "ioana@example.ro", "country": "RO", "national_id": cnp(7),
            "id_document_number": "RX123456", "publish": false, "language": "en"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = order["order_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://localhost:"), "{url}");

    let b = Browser::start("browser").await;
    b.goto(&url).await;
    let lang = b.css("html").await.attr("lang").await.unwrap();
    assert_eq!(lang.as_deref(), Some("en"));
    let text = b.text().await;
    assert!(text.contains("89.00 EUR"), "the browser shows the server's order page: {text}");
    b.assert_accessible("order page").await;
    let png = b.screenshot("order-page").await;
    assert!(png.ends_with("browser/order-page.png"), "{}", png.display());
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 2_000, "{} bytes", bytes.len());

    // The virtual authenticator answers WebAuthn in a page of http://localhost.
    let key = b.virtual_authenticator().await;
    assert!(key.credentials().await.is_empty());
    let made = b
        .driver
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.credentials.create({publicKey: {\
               rp: {name: 'qcert'}, user: {id: new Uint8Array([1, 2, 3]), name: 'radu', displayName: 'Radu'},\
               challenge: new Uint8Array(32), pubKeyCredParams: [{type: 'public-key', alg: -7}],\
               authenticatorSelection: {residentKey: 'required', userVerification: 'required'}}})\
             .then(c => done({type: c.type, id: c.id}), e => done({error: String(e)}));",
            Vec::new(),
        )
        .await
        .unwrap();
    assert_eq!(made.json()["type"], "public-key", "{:?}", made.json());
    let held = key.credentials().await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(held[0]["isResidentCredential"], true);
    b.quit().await;
    server.task.abort();
    db.cleanup().await;
}

const BAD_PAGE: &str = "data:text/html;charset=utf-8,<!DOCTYPE html><html lang=\"en\"><head><title>Bad</title></head>\
<body><main><h1>A picture</h1><img src=\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\"></main></body></html>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_reports_an_image_without_alt_text_and_the_assertion_names_it() {
    let b = Browser::start("browser-bad-page").await;
    b.goto(BAD_PAGE).await;
    let found = b.axe().await;
    let alt = found.iter().find(|v| v.id == "image-alt").unwrap_or_else(|| panic!("image-alt reported: {found:?}"));
    assert_eq!(alt.targets, vec!["[\"img\"]".to_owned()], "{alt}");
    assert_eq!(alt.impact, "critical");

    let failed = std::panic::AssertUnwindSafe(browser::assert_no_violations(&b.driver, "bad page"))
        .catch_unwind()
        .await
        .expect_err("the assertion fails on a bad page");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("image-alt") && message.contains("img") && message.contains("bad page"), "{message}");

    // The same page with alt text passes.
    b.goto(&BAD_PAGE.replace("<img ", "<img alt=\"one pixel\" ")).await;
    b.assert_accessible("fixed page").await;
    b.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_leaves_no_browser_behind() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let b = Browser::start("browser-panic").await;
        b.goto("data:text/html,<title>t</title>").await;
        tx.send((b.driver_port(), b.processes())).unwrap();
        panic!("a failed assertion");
    });
    assert!(task.await.unwrap_err().is_panic());
    let (port, pids) = rx.await.unwrap();
    assert!(pids.len() >= 2, "chromedriver and chromium were running: {pids:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "chromedriver is gone");
    let alive: Vec<u32> = pids.into_iter().filter(|p| std::path::Path::new(&format!("/proc/{p}")).exists()).collect();
    // A killed child may linger as a zombie of its (killed) parent for a moment; none may still run.
    let running: Vec<u32> = alive
        .into_iter()
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            !stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(true)
        })
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}
