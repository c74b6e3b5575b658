#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The holder's certificate pages over real HTTP, on both stores, with the
//! injected clock: the certificate page reached by the issuance mail's
//! link (valid; in the 45 days before expiry with the renewal banner and
//! its deadline; revoked with date and reason; expired), in English and
//! Romanian; its downloads (DER, PEM, PEM with the issuing CA); a wrong
//! capability refused with a readable page; the confirmation document
//! downloaded, signed (pyHanko) and uploaded through the page's multipart
//! form, refused with its reason, countersigned and downloaded; CLOUD
//! renewal and self-revocation by authorization code through the page's
//! forms; the renewal reminder's page; the public directory page.

use der::Decode;
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::{Clock, FixedClock, Reason};
use qcert_notifier::Language;
use qcert_tests::confirm::{issue_token_order, make_service_keys, pyhanko_sign, TokenHolder};
use qcert_tests::*;
use reqwest::StatusCode;
use time::{Duration, OffsetDateTime};

const WEBHOOK: [u8; 32] = [21u8; 32];

struct World {
    ca: qcert_ca_core::Ca,
    clock: std::sync::Arc<FixedClock>,
    orders: qcert_ca_core::orders::Orders,
    server: Server,
    http: reqwest::Client,
    ra: String,
    dir: tempfile::TempDir,
}

async fn world(db: &TestDb) -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // Behind the wall clock, so pyHanko's signing time is not in our future.
    let clock = std::sync::Arc::new(FixedClock::new(OffsetDateTime::now_utc() - Duration::minutes(5)));
    let (ca, _) = new_ca_at(db, clock.clone(), &base).await;
    ca.refresh_crls().await.expect("CRLs");
    make_service_keys(&ca).await;
    let desk = new_desk(&ca).await;
    // qcert's TEST payment provider, as `qcert init` sets it up (renewals are paid there).
    let payment = qcert_ca_core::orders::PaymentSettings {
        url_template: format!("{base}/pay/test/{{order_id}}"),
        renewal_url_template: format!("{base}/pay/test/renewal/{{renewal_id}}"),
        test_provider: true,
        ..Default::default()
    };
    let orders = new_orders(&desk, WEBHOOK, &base).with_payment(payment).unwrap();
    let server = serve_orders_on(listener, orders.clone()).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    World { ca, clock, orders, server, http: reqwest::Client::new(), ra, dir: tempfile::tempdir().unwrap() }
}

/// A browser's GET: status, headers and the page.
async fn browse(http: &reqwest::Client, url: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = http.get(url).header("accept", "text/html,application/xhtml+xml").send().await.unwrap();
    (r.status(), r.headers().clone(), r.text().await.unwrap())
}

/// The `href` of the first link whose URL contains `part`.
fn href(page: &str, part: &str) -> String {
    page.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains(part))
        .unwrap_or_else(|| panic!("a link with {part:?} in:\n{page}"))
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The `action` of the first form whose action contains `part`.
fn action(page: &str, part: &str) -> String {
    page.split("action=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains(part))
        .unwrap_or_else(|| panic!("a form posting to {part:?} in:\n{page}"))
        .to_owned()
}

/// The page's `<main>` (without the layout's header and its language links).
fn main_of(page: &str) -> &str {
    page.split("<main id=\"main\">").nth(1).unwrap_or(page)
}

fn date(unix: i64, language: Language) -> String {
    qcert_notifier::long_date(OffsetDateTime::from_unix_timestamp(unix).unwrap(), language)
}

/// A multipart/form-data body as a browser sends it: the serial and the file.
fn multipart(serial: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----qcertFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"serial\"\r\n\r\n{serial}\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"signed.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Post a browser form (urlencoded) from this site.
async fn post_form(w: &World, url: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let r = w
        .http
        .post(format!("{}{url}", w.server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "text/html")
        .header("origin", &w.server.base)
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    (status, r.text().await.unwrap())
}

fn assert_page(status: StatusCode, headers: &reqwest::header::HeaderMap, body: &str, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
    assert!(!body.contains("<script") && !body.contains("style="), "no inline script or style:\n{body}");
}

impl World {
    async fn token_holder(&self, n: u32, name: (&str, &str), publish: bool) -> TokenHolder {
        issue_token_order(&self.orders, &self.http, &self.server.base, WEBHOOK, self.dir.path(), n, name, publish).await
    }
}

on_both_stores!(certificate_page_states_downloads_and_confirmation);
async fn certificate_page_states_downloads_and_confirmation(db: &TestDb) {
    let w = world(db).await;
    let h = w.token_holder(1, ("Ștefan", "Țurcanu"), false).await;
    let other = w.token_holder(2, ("Ana", "Pop"), false).await;
    let page_url = format!("{}/certificate", h.order_url);
    let rec = w.ca.registry().certificate(&h.serial).await.unwrap().unwrap();
    let der = rec.der.clone().unwrap();

    // Valid, outside the renewal window: no banner; TOKEN: the tool's commands.
    let (status, headers, page) = browse(&w.http, &page_url).await;
    assert_page(status, &headers, &page, StatusCode::OK);
    assert!(page.contains("<html lang=\"en\">"), "{page}");
    assert!(page.contains(&h.serial) && page.contains("Ștefan Țurcanu"), "{page}");
    assert!(page.contains(&format!("Valid (until {})", date(rec.cert.not_after, Language::En))), "{page}");
    assert!(!page.contains("id=\"renewal-banner\""), "no banner 11 months before expiry:\n{page}");
    for part in ["qcert enroll renew", "qcert enroll fetch", "qcert enroll revoke", "TOKEN"] {
        assert!(page.contains(part), "{part:?} on the TOKEN page:\n{page}");
    }
    assert!(!page.contains("name=\"code\""), "no authorization code form for TOKEN:\n{page}");
    // The API's clients still get the PEM from the same URL.
    let pem = w.http.get(&page_url).send().await.unwrap();
    assert_eq!(pem.headers()["content-type"], "application/x-pem-file");
    // Romanian by the switcher.
    let (_, _, ro) = browse(&w.http, &format!("{page_url}?lang=ro")).await;
    assert!(ro.contains("<html lang=\"ro\">") && ro.contains("Valabil (până la"), "{ro}");
    assert!(ro.contains(&date(rec.cert.not_after, Language::Ro)), "{ro}");

    // Downloads: DER, PEM, PEM with the issuing CA.
    let r = w.http.get(format!("{}{}", w.server.base, href(&page, ".der"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pkix-cert");
    assert_eq!(r.headers()["content-disposition"], format!("attachment; filename=\"{}.cer\"", h.serial));
    assert_eq!(r.bytes().await.unwrap().to_vec(), der);
    let pem =
        w.http.get(format!("{}{}", w.server.base, href(&page, &format!("{}.pem", h.serial)))).send().await.unwrap();
    let pem = pem.text().await.unwrap();
    assert_eq!(pem, std::fs::read_to_string(&h.cert).unwrap());
    let chain = w.http.get(format!("{}{}", w.server.base, href(&page, "-chain.pem"))).send().await.unwrap();
    let chain = chain.text().await.unwrap();
    assert_eq!(chain.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert!(chain.starts_with(&pem));
    assert!(chain.ends_with(&qcert_ca_core::pem("CERTIFICATE", &w.ca.hierarchy().issuing)));

    // A wrong capability: a readable page, nothing of the certificate.
    let token = h.order_url.rsplit('/').next().unwrap().to_owned();
    let mut bad = token.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'A' { 'B' } else { 'A' });
    for url in [
        format!("{}/api/v1/orders/{bad}/certificate", w.server.base),
        format!("{}/api/v1/orders/x/certificate?lang=ro", w.server.base),
        format!("{}/holder/orders/{bad}/certificate/{}.der", w.server.base, h.serial),
        // Another order's certificate through this link.
        format!("{page_url}?serial={}", other.serial),
        format!("{}/holder/orders/{token}/certificate/{}.pem", w.server.base, other.serial),
    ] {
        let (status, headers, body) = browse(&w.http, &url).await;
        assert_page(status, &headers, &body, StatusCode::NOT_FOUND);
        assert!(
            body.contains("This link does not work") || body.contains("Acest link nu funcționează"),
            "{url}: {body}"
        );
        // (The language switcher links to the page's own URL; the page says nothing of it.)
        let main = main_of(&body);
        assert!(!main.contains(&other.serial) && !main.contains(&bad), "{url}: nothing echoed:\n{body}");
    }

    // The confirmation document through the page: the prefilled PDF, an
    // unsigned upload refused with its reason, the signed one countersigned.
    assert!(!page.contains("confirmare.pdf?"), "no confirmare.pdf before an upload:\n{page}");
    let prefilled = w.http.get(href(&page, "/confirmation?serial=")).send().await.unwrap();
    assert_eq!(prefilled.headers()["content-type"], "application/pdf");
    let prefilled = prefilled.bytes().await.unwrap().to_vec();
    let form = action(&page, "/confirmation");
    assert!(page.contains("enctype=\"multipart/form-data\""), "{page}");
    let upload = |file: Vec<u8>| {
        let (ct, body) = multipart(&h.serial, &file);
        let url = format!("{}{form}", w.server.base);
        let http = w.http.clone();
        let origin = w.server.base.clone();
        async move {
            let r = http
                .post(url)
                .header("content-type", ct)
                .header("origin", origin)
                .header("sec-fetch-site", "same-origin")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.text().await.unwrap())
        }
    };
    let (status, headers, body) = upload(prefilled.clone()).await;
    assert_page(status, &headers, &body, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("The signed document was not accepted") && body.contains("not signed"), "{body}");
    let input = w.dir.path().join("prefilled.pdf");
    std::fs::write(&input, &prefilled).unwrap();
    let signed = w.dir.path().join("signed.pdf");
    pyhanko_sign(&input, &signed, &h.key, &h.cert);
    let (status, headers, body) = upload(std::fs::read(&signed).unwrap()).await;
    assert_page(status, &headers, &body, StatusCode::CREATED);
    assert!(body.contains("Confirmation document countersigned"), "{body}");
    let confirmare = w.http.get(href(&body, "confirmare.pdf")).send().await.unwrap();
    assert_eq!(confirmare.status(), StatusCode::OK);
    assert_eq!(confirmare.headers()["content-disposition"], "attachment; filename=\"confirmare.pdf\"");
    let confirmare = confirmare.bytes().await.unwrap();
    assert!(confirmare.starts_with(&std::fs::read(&signed).unwrap()), "an increment after the holder's file");
    let (_, _, page) = browse(&w.http, &page_url).await;
    assert!(href(&page, "confirmare.pdf").contains(&h.serial), "{page}");
    // Not a multipart body; announced over the limit: readable pages.
    let r = w
        .http
        .post(format!("{}{form}", w.server.base))
        .header("content-type", "application/pdf")
        .header("origin", &w.server.base)
        .body(prefilled.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.text().await.unwrap().contains("multipart/form-data"));
    let head = announce(&w.server.base, &form, qcert_portal_limit() + 1).await;
    assert!(head.starts_with("HTTP/1.1 413") && head.contains("text/html"), "{head}");
    assert!(head.contains("The file is too large: at most 2 MiB"), "{head}");

    // In the 45 days before expiry: the banner with the deadline, here and
    // on the reminder mail's page.
    let deadline = rec.cert.not_after - 3 * 86400;
    w.clock.set(OffsetDateTime::from_unix_timestamp(rec.cert.not_after).unwrap() - Duration::days(30));
    let (_, _, page) = browse(&w.http, &page_url).await;
    let banner = format!(
        "Your certificate expires on {}. Renew it by {}",
        date(rec.cert.not_after, Language::En),
        date(deadline, Language::En)
    );
    assert!(page.contains("id=\"renewal-banner\"") && page.contains(&banner), "{banner:?} in:\n{page}");
    let renewal_url = format!("{}/api/v1/certificates/{}/renewal", w.server.base, h.serial);
    let (status, headers, rpage) = browse(&w.http, &renewal_url).await;
    assert_page(status, &headers, &rpage, StatusCode::OK);
    assert!(rpage.contains(&banner) && rpage.contains("qcert enroll renew"), "{rpage}");
    let (_, _, rro) = browse(&w.http, &format!("{renewal_url}?lang=ro")).await;
    assert!(rro.contains(&format!("Reînnoiți-l până la {}", date(deadline, Language::Ro))), "{rro}");
    // The JSON banner is unchanged for API clients.
    let json: serde_json::Value = w.http.get(&renewal_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(json["window_open"], true);
    // Past the deadline: no banner, not renewable.
    w.clock.set(OffsetDateTime::from_unix_timestamp(deadline + 60).unwrap());
    let (_, _, page) = browse(&w.http, &page_url).await;
    assert!(!page.contains("id=\"renewal-banner\"") && page.contains("can no longer be renewed"), "{page}");

    // Expired.
    w.clock.set(OffsetDateTime::from_unix_timestamp(rec.cert.not_after + 86400).unwrap());
    let (status, _, page) = browse(&w.http, &page_url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&format!("Expired on {}", date(rec.cert.not_after, Language::En))), "{page}");
    assert!(!page.contains("qcert enroll revoke") && !page.contains("multipart/form-data"), "{page}");

    // Revoked (the other holder, back before expiry): date and reason.
    w.clock.set(OffsetDateTime::now_utc() - Duration::minutes(4));
    w.ca.revoke(&other.serial, Reason::KeyCompromise, None, "ra:test").await.unwrap();
    let revoked_at = w.ca.registry().revocation(&other.serial).await.unwrap().unwrap().revoked_at;
    let (_, _, page) = browse(&w.http, &format!("{}/certificate", other.order_url)).await;
    let want = format!("Revoked on {}; reason: I lost control of the key", date(revoked_at, Language::En));
    assert!(page.contains(&want), "{want:?} in:\n{page}");
    assert!(page.contains("status-bad") && !page.contains("qcert enroll renew"), "{page}");
    let (_, _, ro) = browse(&w.http, &format!("{}/certificate?lang=ro", other.order_url)).await;
    assert!(ro.contains(&format!("Revocat la {}", date(revoked_at, Language::Ro))), "{ro}");
    w.server.task.abort();
}

fn qcert_portal_limit() -> usize {
    qcert_ca_core::confirmation::MAX_UPLOAD + 16 * 1024
}

/// Send only the head of a multipart upload announcing `length` bytes; the answer.
async fn announce(base: &str, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(base).unwrap();
    let mut tcp = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nContent-Type: multipart/form-data; boundary=b\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = tcp.read(&mut buf).await.unwrap();
        answer.extend_from_slice(&buf[..n]);
        if n == 0 || String::from_utf8_lossy(&answer).contains("</html>") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

on_both_stores!(cloud_renewal_and_revocation_by_code);
async fn cloud_renewal_and_revocation_by_code(db: &TestDb) {
    let w = world(db).await;
    let h = issue_cloud_order(&w.http, &w.server.base, &w.ra, WEBHOOK, &w.clock, 7).await;
    let page_url = format!("{}/certificate", h.order_url);
    let (status, headers, page) = browse(&w.http, &page_url).await;
    assert_page(status, &headers, &page, StatusCode::OK);
    assert!(page.contains("CLOUD") && !page.contains("qcert enroll"), "{page}");
    let renew = action(&page, "/renewal");
    let revoke = action(&page, "/revocation");
    let code = |at: OffsetDateTime| totp(&h.secret, at);

    // A wrong code: refused, readable, the code not echoed.
    let (status, body) = post_form(&w, &renew, &[("years", "1"), ("code", "000000")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("Code not accepted") && !body.contains("000000"), "{body}");
    // A malformed one names the field.
    let (status, body) = post_form(&w, &renew, &[("years", "1"), ("code", "12ab")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("“code”") && !body.contains("12ab"), "{body}");
    // The next code orders the renewal.
    w.clock.advance(Duration::seconds(30));
    let (status, body) = post_form(&w, &renew, &[("years", "2"), ("code", &code(w.clock.now()))]).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body.contains("Renewal ordered") && body.contains("for 2 year(s)"), "{body}");
    let (_, _, page) = browse(&w.http, &page_url).await;
    assert!(page.contains("waits for its payment") && !page.contains(&renew), "{page}");

    // Its next step is paying: the answer, the certificate page, the
    // renewal page and the JSON all name the checkout of this renewal.
    let renewal = w.ca.registry().renewal_of(&h.serial).await.unwrap().unwrap();
    let checkout = format!("{}/pay/test/renewal/{}", w.server.base, renewal.id);
    assert_eq!(href(&body, "/pay/test/renewal/"), checkout, "{body}");
    assert_eq!(href(&page, "/pay/test/renewal/"), checkout, "{page}");
    let renewal_page = format!("{}/api/v1/certificates/{}/renewal", w.server.base, h.serial);
    assert_eq!(href(&browse(&w.http, &renewal_page).await.2, "/pay/test/renewal/"), checkout);
    let json: serde_json::Value = w.http.get(&renewal_page).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (&json["renewal_state"], &json["payment_url"]),
        (&serde_json::json!("awaiting-payment"), &serde_json::json!(checkout))
    );
    // The TEST provider's page: the renewal and its price (CLOUD, 2 years); paying goes back to the renewal page.
    let (status, headers, pay) = browse(&w.http, &checkout).await;
    assert_page(status, &headers, &pay, StatusCode::OK);
    assert!(pay.contains(&renewal.id) && pay.contains("89.00 EUR") && pay.contains("TEST"), "{pay}");
    let (status, body) = post_form(&w, &action(&pay, "/pay/test/renewal/"), &[]).await;
    assert_eq!(status, StatusCode::OK, "redirected to the renewal page: {body}");
    assert!(body.contains("The renewal is paid") && !body.contains("/pay/test/renewal/"), "{body}");
    assert_eq!(w.ca.registry().renewal(&renewal.id).await.unwrap().unwrap().state, "paid");
    let json: serde_json::Value = w.http.get(&renewal_page).send().await.unwrap().json().await.unwrap();
    assert!(json.get("payment_url").is_none(), "{json}");
    // A second visit says it is paid and offers no button; an unknown id has no page.
    let (_, _, pay) = browse(&w.http, &checkout).await;
    assert!(pay.contains("This renewal is paid") && !pay.contains("<form method=\"post\""), "{pay}");
    let (status, _, _) = browse(&w.http, &format!("{}/pay/test/renewal/{}", w.server.base, "0".repeat(32))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Self-revocation: the box must be ticked; a wrong code refused; then revoked.
    w.clock.advance(Duration::seconds(30));
    let now_code = code(w.clock.now());
    let (status, body) =
        post_form(&w, &revoke, &[("serial", &h.serial), ("reason", "keyCompromise"), ("code", &now_code)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("Tick the box"), "{body}");
    let (status, body) = post_form(
        &w,
        &revoke,
        &[("serial", &h.serial), ("reason", "cACompromise"), ("code", &now_code), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a holder cannot give this reason: {body}");
    let (status, body) = post_form(
        &w,
        &revoke,
        &[("serial", &h.serial), ("reason", "keyCompromise"), ("code", "111111"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(w.ca.registry().revocation(&h.serial).await.unwrap().is_none());
    let (status, body) = post_form(
        &w,
        &revoke,
        &[("serial", &h.serial), ("reason", "keyCompromise"), ("code", &now_code), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Certificate revoked") && body.contains(&h.serial), "{body}");
    let r = w.ca.registry().revocation(&h.serial).await.unwrap().unwrap();
    assert_eq!((r.reason, r.requested_by.as_str()), (1, "holder:authorization-code"));
    assert!(r.invalidity_date.is_some(), "keyCompromise carries its time");
    let (_, _, page) = browse(&w.http, &page_url).await;
    assert!(page.contains("Revoked on") && !page.contains(&revoke), "{page}");
    // Not a serial: refused without quoting it.
    let (status, body) =
        post_form(&w, "/holder/certificates/zz%3Cb%3E/renewal", &[("years", "1"), ("code", "123456")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(!main_of(&body).contains("zz"), "{body}");
    // The visitor's language choice (the cookie the switcher sets) wins over the order's.
    let r = w.http.get(&page_url).header("accept", "text/html").header("cookie", "qcert-lang=ro").send().await.unwrap();
    assert!(r.text().await.unwrap().contains("<html lang=\"ro\">"));
    // A wrong link cannot revoke.
    let (status, body) = post_form(
        &w,
        "/holder/orders/nope/revocation",
        &[("serial", &h.serial), ("reason", "keyCompromise"), ("code", "123456"), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Cross-site posts never reach the form.
    let r = w
        .http
        .post(format!("{}{revoke}", w.server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body("serial=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    w.server.task.abort();
}

on_both_stores!(directory_page);
async fn directory_page(db: &TestDb) {
    let w = world(db).await;
    let published = w.token_holder(11, ("Maria", "Ionescu"), true).await;
    let unpublished = w.token_holder(12, ("Elena", "Ionescu"), false).await;
    let base = &w.server.base;

    let (status, headers, page) = browse(&w.http, &format!("{base}/directory")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(page.contains("role=\"search\"") && page.contains("maxlength=\"128\""), "{page}");

    // By surname: only the holder who agreed to publication.
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q=ionescu")).await;
    assert!(page.contains("1 certificate found") && page.contains(&published.serial), "{page}");
    assert!(!page.contains(&unpublished.serial), "{page}");
    // By email, in Romanian.
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=email&q=HOLDER11%40example.ro&lang=ro")).await;
    assert!(page.contains("1 certificat găsit") && page.contains(&published.serial), "{page}");
    assert!(page.contains("Valabil"), "{page}");
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=email&q=holder12%40example.ro")).await;
    assert!(page.contains("No published certificate found"), "{page}");
    // No partial matches (no enumeration beyond the JSON directory's).
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q=Ion")).await;
    assert!(page.contains("No published certificate found"), "{page}");

    // Input is escaped when shown, and never shown when refused.
    let (_, _, page) =
        browse(&w.http, &format!("{base}/directory?by=name&q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).await;
    assert!(!page.contains("<script>alert") && page.contains("&#60;script&#62;"), "{page}");
    let long = "x".repeat(129);
    let (status, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q={long}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("at most 128 characters") && !page.contains(&long), "{page}");
    let (status, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q=a%00b")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, _, _) = browse(&w.http, &format!("{base}/directory?q=a&q=b")).await;
    assert!(status.is_client_error());

    // Downloads: DER, PEM, PEM with the issuing CA; nothing for an unpublished serial.
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q=Maria+Ionescu")).await;
    let der = w.http.get(format!("{base}{}", href(&page, ".cer"))).send().await.unwrap();
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    let der = der.bytes().await.unwrap();
    x509_cert::Certificate::from_der(&der).unwrap();
    let pem = w.http.get(format!("{base}{}", href(&page, &format!("{}.pem", published.serial)))).send().await.unwrap();
    assert_eq!(pem.text().await.unwrap(), qcert_ca_core::pem("CERTIFICATE", &der));
    let chain = w.http.get(format!("{base}{}", href(&page, "-chain.pem"))).send().await.unwrap();
    assert_eq!(chain.text().await.unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    for file in [format!("{}.cer", unpublished.serial), "zz.pem".into(), format!("{}.exe", published.serial)] {
        let (status, _, body) = browse(&w.http, &format!("{base}/directory/{file}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{file}");
        assert!(body.contains("no published certificate at this address"), "{body}");
    }
    // Revoked: shown as such.
    w.ca.revoke(&published.serial, Reason::Superseded, None, "ra:test").await.unwrap();
    let (_, _, page) = browse(&w.http, &format!("{base}/directory?by=name&q=Ionescu")).await;
    assert!(page.contains("Revoked"), "{page}");
    w.server.task.abort();
}
