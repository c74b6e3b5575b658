#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The web foundation over real HTTP (both stores): the compiled-in
//! stylesheet, HTML error pages in the negotiated language with the page
//! headers, the language cookie, and the refusal of cross-site browser
//! posts before any handler runs (API clients unaffected).

use qcert_ca_core::store::Backend;
use qcert_tests::*;
use reqwest::StatusCode;

async fn foundation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (ca, _) = new_ca(&db, test_clock()).await;
    let server = serve_desk(new_desk(&ca).await).await;
    let http = reqwest::Client::new();
    let base = &server.base;

    let css = http.get(format!("{base}/static/qcert.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains("@media print"));
    let missing = http.get(format!("{base}/static/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A browser on a page that does not exist: an HTML page, in Romanian when asked.
    let page = http
        .get(format!("{base}/no/such/page?lang=ro"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert!(h["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("qcert-lang=ro;") && cookie.contains("SameSite=Lax"), "{cookie}");
    let body = page.text().await.unwrap();
    assert!(body.contains("<html lang=\"ro\">") && body.contains("Pagina nu a fost găsită"), "{body}");
    // The cookie keeps the choice; Accept-Language decides without it.
    let again = http
        .get(format!("{base}/no/such/page"))
        .header("accept", "text/html")
        .header("cookie", "qcert-lang=ro")
        .send()
        .await
        .unwrap();
    assert!(again.text().await.unwrap().contains("<html lang=\"ro\">"));
    let en = http
        .get(format!("{base}/no/such/page"))
        .header("accept", "text/html")
        .header("accept-language", "en-GB,ro;q=0.5")
        .send()
        .await
        .unwrap();
    assert!(en.text().await.unwrap().contains("<html lang=\"en\">"));
    // API clients still get problem documents.
    let api = http.get(format!("{base}/no/such/page")).send().await.unwrap();
    assert_eq!(api.headers()["content-type"], "application/problem+json");

    // Cross-site browser posts are refused before the handler (which would
    // answer 4xx of its own for this empty form).
    let url = format!("{base}/api/v1/hotline/revocations");
    for (name, value) in
        [("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site"), ("origin", "https://evil.example")]
    {
        let r = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header(name, value)
            .body("document_number=x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let text = r.text().await.unwrap();
        assert!(text.contains("another site"), "{text}");
        assert!(!text.contains("document_number"), "{text}");
    }
    let json = http.post(&url).header("origin", "null").json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(json.status(), StatusCode::FORBIDDEN);
    assert_eq!(json.headers()["content-type"], "application/problem+json");
    // The same post from our own page passes the guard (and meets the handler's own checks).
    let own = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header("origin", base.as_str())
        .body("document_number=x")
        .send()
        .await
        .unwrap();
    assert_ne!(own.status(), StatusCode::FORBIDDEN);
    assert_eq!(own.status(), StatusCode::UNAUTHORIZED, "no operator token: the handler's answer");
    db.cleanup().await;
}

#[tokio::test]
async fn foundation_sqlite() {
    foundation(Backend::Sqlite).await;
}

#[tokio::test]
async fn foundation_postgres() {
    foundation(Backend::Postgres).await;
}
