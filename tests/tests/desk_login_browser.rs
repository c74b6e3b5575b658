#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The desk login in real headless Chromium with a CDP virtual
//! authenticator: an admin enrols through her one-time link (token from
//! the URL fragment, password, key registered by `desk-login.js`), signs
//! in with password and key, disables an operator whose open session then
//! fails, and signs out. axe-core finds no WCAG 2.1 A/AA violation on any
//! of the pages, in English and Romanian; each is photographed.

use qcert_ca_core::operators::{Operators, Role};
use qcert_tests::browser::thirtyfour::prelude::*;
use qcert_tests::browser::{local, Browser};
use qcert_tests::desk::{desk_login, session_cookie, PASSWORD};
use qcert_tests::*;

/// Wait (the driver's poller) for an `h1` whose text contains `needle`.
async fn heading(b: &Browser, needle: &str) {
    let xpath = format!("//h1[contains(., \"{needle}\")]");
    if let Err(e) = b.driver.query(By::XPath(&xpath)).first().await {
        let url = b.driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
        panic!("no heading {needle:?} at {url}: {e}\n{}", b.text().await);
    }
}

async fn check(b: &Browser, name: &str) {
    b.assert_accessible(name).await;
    b.screenshot(name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrol_sign_in_disable_and_sign_out_in_chromium() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (ca, _) = new_ca(&db, test_clock()).await;
    let desk = new_desk(&ca).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let server = serve_orders_on(listener, new_orders(&desk, [9u8; 32], &base)).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    ops.add("test", "ada", Role::Admin).await.unwrap();
    ops.add("test", "hugo", Role::HotlineAgent).await.unwrap();
    let link = desk_login(&ca, &base).enrolment_link("test", "ada").await.unwrap();
    assert!(link.link.starts_with(&format!("{base}/desk/enrol#")));

    let b = Browser::start("desk_login_browser").await;
    let key = b.virtual_authenticator().await;

    // Enrolment: the token arrives in the fragment and leaves the address bar.
    b.goto(&link.link).await;
    heading(&b, "Set up your desk account").await;
    let token = b.css("#token").await.value().await.unwrap().unwrap_or_default();
    assert_eq!(token, link.token.expose());
    assert!(!b.driver.current_url().await.unwrap().as_str().contains('#'), "the fragment is removed");
    check(&b, "enrol-en").await;
    b.css("#password").await.send_keys(PASSWORD).await.unwrap();
    b.css("#password2").await.send_keys(PASSWORD).await.unwrap();
    b.css("form button[type=submit]").await.click().await.unwrap();
    heading(&b, "Register your security key").await;
    check(&b, "enrol-key-en").await;
    b.css("form[data-webauthn] button").await.click().await.unwrap();
    heading(&b, "Account ready").await;
    assert_eq!(key.credentials().await.len(), 1, "the key holds one credential for the desk");
    check(&b, "enrol-done-en").await;

    // Sign in: password, then the security key.
    b.goto(&format!("{base}/desk/login")).await;
    check(&b, "login-en").await;
    b.css("#name").await.send_keys("ada").await.unwrap();
    b.css("#password").await.send_keys(PASSWORD).await.unwrap();
    b.css("form button[type=submit]").await.click().await.unwrap();
    heading(&b, "Security key").await;
    check(&b, "login-key-en").await;
    b.css("form[data-webauthn] button").await.click().await.unwrap();
    heading(&b, "Operators' desk").await;
    check(&b, "home-en").await;

    // hugo is signed in elsewhere; the admin disables him on the accounts page.
    let (name, value) = session_cookie(&ca, &base, "hugo").await;
    let hugo = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let hugo_home = || hugo.get(format!("{base}/desk")).header("Cookie", format!("{name}={value}")).send();
    assert_eq!(hugo_home().await.unwrap().status(), 200);
    b.goto(&format!("{base}/desk/admin/operators")).await;
    heading(&b, "Operator accounts").await;
    check(&b, "operators-en").await;
    b.css("form[action='/desk/admin/operators/hugo/disable'] button").await.click().await.unwrap();
    heading(&b, "Operator accounts").await;
    assert!(b.text().await.contains("disabled"));
    assert_eq!(hugo_home().await.unwrap().status(), 303, "his open session ended at once");

    // Romanian, chosen on a page and kept for the operator.
    b.goto(&format!("{base}/desk/admin/operators?lang=ro")).await;
    heading(&b, "Conturi de operator").await;
    check(&b, "operators-ro").await;
    b.goto(&format!("{base}/desk")).await;
    heading(&b, "Biroul operatorilor").await;
    check(&b, "home-ro").await;

    // Sign out (the header's button), then the Romanian sign-in pages.
    b.css("form.signout button").await.click().await.unwrap();
    heading(&b, "Autentificare la birou").await;
    check(&b, "login-ro").await;
    b.goto(&format!("{base}/desk")).await;
    heading(&b, "Autentificare la birou").await;
    b.css("#name").await.send_keys("ada").await.unwrap();
    b.css("#password").await.send_keys(PASSWORD).await.unwrap();
    b.css("form button[type=submit]").await.click().await.unwrap();
    heading(&b, "Cheie de securitate").await;
    check(&b, "login-key-ro").await;
    b.goto(&format!("{base}/desk/enrol?lang=ro")).await;
    heading(&b, "Configurați contul de birou").await;
    check(&b, "enrol-ro").await;
    b.goto(&format!("{base}/desk/login?lang=en")).await;
    heading(&b, "Sign in to the desk").await;

    b.quit().await;
    server.task.abort();
    db.cleanup().await;
}
