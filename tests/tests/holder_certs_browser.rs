#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The holder's certificate pages in real headless Chromium, in English
//! and Romanian: the certificate page (TOKEN and CLOUD), its downloads
//! (fetched by the page's own links), the confirmation document uploaded
//! through the page's file form (refused unsigned, then countersigned,
//! and confirmare.pdf fetched), a wrong link, the public directory
//! searched through its form with its downloads, CLOUD renewal (English)
//! and self-revocation (Romanian) by authorization code through the
//! forms, the renewal banner in the 45 days before expiry and the
//! reminder's renewal page, the expired certificate. axe-core finds no WCAG 2.1 A/AA violation on
//! any of them; each is photographed (target/browser-artefacts/
//! holder_certs_browser/<lang>-<page>.png). The RA approval goes through
//! the RA JSON API (the desk's pages are another branch's).

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::FixedClock;
use qcert_notifier::Language;
use qcert_tests::browser::thirtyfour::prelude::ElementQueryable as _;
use qcert_tests::browser::{local, Browser, By};
use qcert_tests::confirm::{issue_token_order, make_service_keys, pyhanko_sign};
use qcert_tests::*;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const WEBHOOK: [u8; 32] = [22u8; 32];
const TEST: &str = "holder_certs_browser";

/// Fetch every link matching `selector` from inside the page: (status, content type, bytes) each.
async fn fetch_links(b: &Browser, selector: &str) -> Vec<Value> {
    let script = "const done = arguments[arguments.length - 1];\
        Promise.all(Array.from(document.querySelectorAll(arguments[0])).map(a => fetch(a.href)\
          .then(r => r.arrayBuffer().then(body => ({href: a.href, status: r.status,\
            type: r.headers.get('content-type'), size: body.byteLength})))))\
        .then(done, e => done([{error: String(e)}]));";
    let got = b.driver.execute_async(script, vec![json!(selector)]).await.unwrap();
    got.json().as_array().cloned().unwrap_or_default()
}

/// The page's check and photograph.
async fn judge(b: &Browser, lang: &str, page: &str) {
    let html_lang = b.css("html").await.attr("lang").await.unwrap();
    assert_eq!(html_lang.as_deref(), Some(lang), "{page}");
    b.assert_accessible(&format!("{page} ({lang})")).await;
    b.screenshot(&format!("{lang}-{page}")).await;
}

/// Wait for the element matching `css` (the next page's, after a click
/// whose navigation may still be under way), its text.
async fn text_of(b: &Browser, css: &str) -> String {
    match b.driver.query(By::Css(css)).first().await {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => {
            let url = b.driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = b.driver.source().await.unwrap_or_default();
            panic!("no {css:?} on {url}: {e}\n{source}")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holder_certificate_pages_in_chromium() {
    let db = TestDb::new(Backend::Sqlite).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // Links are made for the name the browser uses.
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let t0 = OffsetDateTime::now_utc() - Duration::minutes(5);
    let clock = std::sync::Arc::new(FixedClock::new(t0));
    let (ca, _) = new_ca_at(&db, clock.clone(), &base).await;
    ca.refresh_crls().await.unwrap();
    make_service_keys(&ca).await;
    let desk = new_desk(&ca).await;
    let orders = new_orders(&desk, WEBHOOK, &base);
    let server = serve_orders_on(listener, orders.clone()).await;
    let http = reqwest::Client::new();
    let ra = Operators::new(ca.registry().clone(), ca.clock().clone())
        .add("test", "radu", Role::RaOfficer)
        .await
        .unwrap()
        .expose()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let tok =
        issue_token_order(&orders, &http, &server.base, WEBHOOK, dir.path(), 31, ("Maria", "Ionescu"), true).await;
    let cloud = issue_cloud_order(&http, &server.base, &ra, WEBHOOK, &clock, 32).await;
    let rec = ca.registry().certificate(&tok.serial).await.unwrap().unwrap();
    let not_after = OffsetDateTime::from_unix_timestamp(rec.cert.not_after).unwrap();

    // The prefilled document, unsigned and signed with the holder's key.
    let prefilled = dir.path().join("prefilled.pdf");
    let r = http.get(format!("{}/confirmation", tok.order_url)).send().await.unwrap();
    std::fs::write(&prefilled, r.bytes().await.unwrap()).unwrap();
    let signed = dir.path().join("signed.pdf");
    pyhanko_sign(&prefilled, &signed, &tok.key, &tok.cert);

    let b = Browser::start(TEST).await;
    let mut now = t0;
    for lang in ["en", "ro"] {
        let l = if lang == "en" { Language::En } else { Language::Ro };
        let page = format!("{}/certificate?lang={lang}", tok.order_url);

        // The TOKEN certificate page, valid: no banner.
        b.goto(&page).await;
        let status = text_of(&b, "#status").await;
        assert!(status.starts_with(if lang == "en" { "Valid" } else { "Valabil" }), "{status}");
        assert!(b.driver.find_all(By::Css("#renewal-banner")).await.unwrap().is_empty());
        assert!(b.text().await.contains("qcert enroll renew"));
        judge(&b, lang, "certificate").await;
        let files = fetch_links(&b, "ul.downloads a").await;
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            assert_eq!(f["status"], 200, "{f}");
            assert!(f["size"].as_u64().unwrap() > 300, "{f}");
        }
        assert_eq!(files[0]["type"], "application/pkix-cert");
        assert_eq!(files[2]["type"], "application/x-pem-file");

        // The confirmation document: refused unsigned, with its reason; then countersigned.
        b.css("#document").await.send_keys(prefilled.to_str().unwrap()).await.unwrap();
        b.css("form[enctype] button").await.click().await.unwrap();
        let refusal = text_of(&b, "p.notice.error").await;
        assert!(refusal.contains("not signed"), "{refusal}");
        judge(&b, lang, "confirmation-refused").await;
        b.goto(&page).await;
        b.css("#document").await.send_keys(signed.to_str().unwrap()).await.unwrap();
        b.css("form[enctype] button").await.click().await.unwrap();
        let done = text_of(&b, "div.notice.ok").await;
        assert!(done.contains(&tok.serial), "{done}");
        judge(&b, lang, "confirmation-done").await;
        let pdf = fetch_links(&b, "a[href*='confirmare.pdf']").await;
        assert_eq!((pdf[0]["status"].clone(), pdf[0]["type"].clone()), (json!(200), json!("application/pdf")));
        b.goto(&page).await;
        assert_eq!(fetch_links(&b, "a[href*='confirmare.pdf']").await.len(), 1, "the page offers confirmare.pdf");

        // A wrong link.
        b.goto(&format!("{base}/api/v1/orders/0011.wrong/certificate?lang={lang}")).await;
        text_of(&b, "p.notice.error").await;
        judge(&b, lang, "wrong-link").await;

        // The public directory, searched through its form.
        b.goto(&format!("{base}/directory?lang={lang}")).await;
        judge(&b, lang, "directory").await;
        b.css("#q").await.send_keys("Maria Ionescu").await.unwrap();
        b.css("form[role=search] button").await.click().await.unwrap();
        let row = text_of(&b, "table tbody tr").await;
        assert!(row.contains(&tok.serial), "{row}");
        judge(&b, lang, "directory-results").await;
        let files = fetch_links(&b, "table tbody a").await;
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(files.iter().all(|f| f["status"] == 200), "{files:?}");

        // The CLOUD certificate page and its forms.
        let cloud_page = format!("{}/certificate?lang={lang}", cloud.order_url);
        b.goto(&cloud_page).await;
        judge(&b, lang, "certificate-cloud").await;
        now += Duration::seconds(30);
        clock.set(now);
        let code = totp(&cloud.secret, now);
        if lang == "en" {
            b.css("#years option[value='2']").await.click().await.unwrap();
            b.css("#renew-code").await.send_keys(&code).await.unwrap();
            b.css("form[action*='/renewal'] button").await.click().await.unwrap();
            let done = text_of(&b, "div.notice.ok").await;
            assert!(done.contains("2 year(s)"), "{done}");
            judge(&b, lang, "renewal-ordered").await;
        } else {
            b.css("#reason option[value='superseded']").await.click().await.unwrap();
            b.css("#revoke-code").await.send_keys(&code).await.unwrap();
            b.css("#confirm").await.click().await.unwrap();
            b.css("button.danger").await.click().await.unwrap();
            let done = text_of(&b, "div.notice.ok").await;
            assert!(done.contains(&cloud.serial) && done.contains("revocat"), "{done}");
            judge(&b, lang, "revoked").await;
            b.goto(&cloud_page).await;
            assert!(text_of(&b, "#status").await.starts_with("Revocat la"));
            judge(&b, lang, "certificate-revoked").await;
        }

        // The renewal banner, 30 days before expiry, with the deadline; the reminder's page.
        clock.set(not_after - Duration::days(30));
        b.goto(&page).await;
        let banner = text_of(&b, "#renewal-banner").await;
        let deadline = qcert_notifier::long_date(not_after - Duration::days(3), l);
        assert!(banner.contains(&deadline), "{deadline:?} in {banner:?}");
        judge(&b, lang, "certificate-banner").await;
        b.goto(&format!("{base}/api/v1/certificates/{}/renewal?lang={lang}", tok.serial)).await;
        assert!(text_of(&b, "#renewal-banner").await.contains(&deadline));
        judge(&b, lang, "renewal").await;
        // Expired.
        clock.set(not_after + Duration::days(1));
        b.goto(&page).await;
        let status = text_of(&b, "#status").await;
        assert!(status.starts_with(if lang == "en" { "Expired" } else { "Expirat" }), "{status}");
        judge(&b, lang, "certificate-expired").await;
        clock.set(now);
    }
    b.quit().await;
    server.task.abort();
    db.cleanup().await;
}
