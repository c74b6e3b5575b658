#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)] // test code: a panic is the failure report
//! The holder's order pages over real HTTP, on both stores: the order
//! form's refusals (each error beside its field and in a summary linked to
//! it, what was typed kept but the ID document number, nothing stored, no
//! value in an error), the TEST payment provider off by default and, when
//! on, paying through the signed webhook path; then the whole web flow of
//! a TOKEN order (CSR as a file) and a CLOUD order (QR code, first code),
//! the one-time secrets page (a second time it says they were shown), and
//! the certificate downloads (PEM, PEM with chain, DER). Mails come from a
//! real SMTP sink. The RA's approval goes through the RA JSON API.

use std::sync::Arc;

use base64::Engine;
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::orders::PaymentSettings;
use qcert_ca_core::{Clock, FixedClock};
use qcert_tests::smtp::{smtp_dispatcher, Received, SmtpSink};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

struct World {
    clock: Arc<FixedClock>,
    server: Server,
    /// Does not follow redirects (the 303s are checked).
    http: reqwest::Client,
    ra: String,
    dispatcher: qcert_notifier::Dispatcher,
    sink: SmtpSink,
    dir: tempfile::TempDir,
    db_url: String,
}

async fn world(db: &TestDb, test_provider: bool) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_with(move |base| {
        let mut o = new_orders(&desk, WEBHOOK, base);
        if test_provider {
            let p = PaymentSettings {
                url_template: format!("{base}/pay/test/{{order_id}}"),
                test_provider: true,
                ..PaymentSettings::default()
            };
            o = o.with_payment(p).unwrap();
        }
        o
    })
    .await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    World { clock, server, http, ra, dispatcher, sink, dir, db_url: db.url.clone() }
}

/// A page as the browser got it.
struct Page {
    status: StatusCode,
    location: Option<String>,
    html: String,
}

impl World {
    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.server.base)
        }
    }

    async fn get(&self, path: &str) -> Page {
        let r = self.http.get(self.url(path)).header("accept", BROWSER).send().await.unwrap();
        page_of(r).await
    }

    /// A form post as a browser on our own page sends it.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let r = self
            .http
            .post(self.url(path))
            .header("accept", BROWSER)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", &self.server.base)
            .header("sec-fetch-site", "same-origin")
            .body(body)
            .send()
            .await
            .unwrap();
        page_of(r).await
    }

    /// Follow a 303 to its page.
    async fn follow(&self, p: Page) -> Page {
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.html);
        self.get(&p.location.unwrap()).await
    }

    async fn json(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.ra);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn deliver(&self) -> Vec<Received> {
        self.dispatcher.run_once(self.clock.now()).await.unwrap();
        self.sink.received()
    }

    async fn orders_stored(&self) -> i64 {
        use sqlx::Row;
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.db_url).await.unwrap();
        let n = sqlx::query("SELECT COUNT(*) AS n FROM orders").fetch_one(&pool).await.unwrap().get::<i64, _>("n");
        pool.close().await;
        n
    }
}

async fn page_of(r: reqwest::Response) -> Page {
    let status = r.status();
    let h = r.headers().clone();
    let location = h.get("location").map(|v| v.to_str().unwrap().to_owned());
    let html = r.text().await.unwrap();
    if status != StatusCode::SEE_OTHER {
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{status}: {html}");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["content-security-policy"].to_str().unwrap().starts_with("default-src 'self'"));
        assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("<script") && !html.contains("style="), "{html}");
    }
    Page { status, location, html }
}

fn valid_form(product: &'static str, email: &str, doc: &str, lang: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("product", product.into()),
        ("years", "1".into()),
        ("given_name", "Ioana".into()),
        ("surname", "Popescu".into()),
        ("email", email.into()),
        ("phone", "".into()),
        ("country", "RO".into()),
        ("national_id", cnp(7)),
        ("document_type", "id-card".into()),
        ("id_document_number", doc.into()),
        ("language", lang.into()),
    ]
}

fn pairs<'a>(f: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    f.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The value attribute of the input `id` (HTML-escaped as sent).
fn value_of(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\" name=\"{id}\" value=\"")).unwrap_or_else(|| panic!("{id}: {html}"));
    let rest = &html[at..];
    let start = rest.find("value=\"").unwrap() + 7;
    rest[start..start + rest[start..].find('"').unwrap()].to_owned()
}

fn subject_of(all: &[Received], needle: &str) -> Received {
    let found: Vec<&Received> = all.iter().filter(|m| m.subject.as_deref().unwrap_or("").contains(needle)).collect();
    assert_eq!(found.len(), 1, "{needle:?}: {:?}", all.iter().map(|m| &m.subject).collect::<Vec<_>>());
    found[0].clone()
}

/// Text between the first `<pre>` after `after` and its `</pre>`.
fn pre_after<'a>(html: &'a str, after: &str) -> &'a str {
    let rest = &html[html.find(after).unwrap()..];
    let start = rest.find("<pre>").unwrap() + 5;
    &rest[start..start + rest[start..].find("</pre>").unwrap()]
}

async fn the_form_refuses_by_field_and_keeps_what_was_typed(db: &TestDb) {
    let w = world(db, false).await;
    let page = w.get("/order?lang=ro").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("<html lang=\"ro\">") && page.html.contains("Comandați un certificat calificat"));
    for label in ["for=\"given_name\"", "for=\"product-0\"", "for=\"publish\"", "<legend>", "159,00 EUR"] {
        assert!(page.html.contains(label), "{label}: {}", page.html);
    }
    assert!(page.html.contains("PNORO-"), "what publishing publishes is said");

    let secret_doc = "ZX987654";
    let mut f = valid_form("TOKEN", "not-an-email", secret_doc, "en");
    f[2].1 = "Ana<b>\u{202e}".into(); // given name with markup and a bidi override
    f[6].1 = "XX".into(); // country
    f[1].1 = "7".into(); // years
    f[0].1 = "PAPER".into(); // product
    let page = w.post("/order", &pairs(&f)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.html);
    let html = &page.html;
    // The summary links each error to its field; each field shows its own.
    for (target, id) in [
        ("#product-0", "product-error"),
        ("#years-0", "years-error"),
        ("#given_name", "given_name-error"),
        ("#email", "email-error"),
        ("#country", "country-error"),
    ] {
        assert!(html.contains(&format!("href=\"{target}\"")), "{target}: {html}");
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
    }
    assert!(html.contains("aria-invalid=\"true\"") && html.contains("There is a problem"), "{html}");
    assert!(!html.contains("href=\"#surname\"") && !html.contains("id=\"surname-error\""), "surname was fine");
    // What was typed is kept (escaped); the ID document number is not.
    assert_eq!(value_of(html, "given_name"), "Ana&#60;b&#62;\u{202e}");
    assert_eq!(value_of(html, "email"), "not-an-email");
    assert_eq!(value_of(html, "national_id"), cnp(7));
    assert_eq!(value_of(html, "id_document_number"), "");
    assert!(!html.contains(secret_doc), "the document number is never shown again");
    assert!(!html.contains("<b>"), "{html}");
    // The Romanian page says it in Romanian.
    let page = w.post("/order?lang=ro", &pairs(&f)).await;
    assert!(page.html.contains("Există o problemă") && page.html.contains("Alegeți TOKEN sau CLOUD"), "{}", page.html);

    // A bad CNP check digit and a bad ID document number; a malformed body.
    let mut f = valid_form("CLOUD", "ioana@example.ro", "12", "en");
    f[7].1 = "1900101123450".into();
    let page = w.post("/order", &pairs(&f)).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.html.contains("id=\"national_id-error\"") && page.html.contains("id=\"id_document_number-error\""));
    let r = w
        .http
        .post(w.url("/order"))
        .header("accept", BROWSER)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("years=1&years=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("<html"), "a readable page");
    // From another site: refused before the handler.
    let r = w
        .http
        .post(w.url("/order"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header("accept", BROWSER)
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs(&valid_form("TOKEN", "a@example.ro", "RX123456", "en")))
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(w.orders_stored().await, 0, "nothing refused was stored");

    // The TEST payment provider is off by default: no page, no payment.
    let f = valid_form("TOKEN", "ioana@example.ro", "RX123456", "en");
    let page = w.post("/order", &pairs(&f)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let order_url = page.location.unwrap();
    let order: Value = w.http.get(&order_url).send().await.unwrap().json().await.unwrap();
    let id = order["order_id"].as_str().unwrap();
    assert!(order["payment_url"].as_str().unwrap().starts_with("https://pay.example.invalid/"), "{order}");
    let page = w.get(&order_url).await;
    assert!(!page.html.contains("/pay/test/") && !page.html.contains("TEST"), "{}", page.html);
    assert_eq!(w.get(&format!("/pay/test/{id}")).await.status, StatusCode::NOT_FOUND);
    let page = w.post(&format!("/pay/test/{id}"), &[]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    let order: Value = w.http.get(&order_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(order["state"], "awaiting-payment", "{order}");
    // The same double-submitted form (same page token) is one order.
    let page = w.get("/order").await;
    let idem = page.html.split("name=\"idem\" value=\"").nth(1).unwrap();
    let idem = idem[..idem.find('"').unwrap()].to_owned();
    let cloud = valid_form("CLOUD", "mihai@example.ro", "SX654321", "en");
    let mut f = pairs(&cloud);
    f.push(("idem", &idem));
    let (a, b) = (w.post("/order", &f).await, w.post("/order", &f).await);
    assert_eq!((a.status, b.status), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER));
    assert_eq!(a.location, b.location);
    assert_eq!(w.orders_stored().await, 2);
    // A wrong or cut link is a page, not a problem document.
    let page = w.get(&format!("{order_url}x")).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.html.contains("nothing behind this link"), "{}", page.html);
    w.server.task.abort();
}
on_both_stores!(the_form_refuses_by_field_and_keeps_what_was_typed);

async fn a_token_and_a_cloud_order_through_the_pages(db: &TestDb) {
    let w = world(db, true).await;

    // TOKEN, in Romanian: the form, then the order page's pay link.
    let page = w.post("/order?lang=ro", &pairs(&valid_form("TOKEN", "ioana@example.ro", "RX123456", "ro"))).await;
    let t_url = page.location.clone().unwrap();
    let page = w.follow(page).await;
    assert!(page.html.contains("<html lang=\"ro\">") && page.html.contains("plătiți comanda"), "{}", page.html);
    let pay = page.html.split("href=\"").find(|s| s.contains("/pay/test/")).unwrap();
    let pay = pay[..pay.find('"').unwrap()].to_owned();
    let page = w.get(&pay).await;
    assert!(page.html.contains("TEST") && page.html.contains("89,00 EUR"), "{}", page.html);
    let page = w.follow(w.post(&pay, &[]).await).await;
    assert!(page.html.contains("verificarea identității prin video"), "paid: {}", page.html);
    let t: Value = w.http.get(&t_url).send().await.unwrap().json().await.unwrap();
    let t_id = t["order_id"].as_str().unwrap().to_owned();
    assert_eq!(t["paid"], true);
    // The TEST provider's page now says the order is paid.
    assert!(w.get(&pay).await.html.contains("plătită"));
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{t_id}/approval"),
        Some(json!({"document_number": "RX123456"})),
    )
    .await;
    // The CSR page: a file upload (multipart) with nothing pasted.
    let page = w.get(&t_url).await;
    assert!(page.html.contains("/csr"), "{}", page.html);
    let csr_page = w.get(&format!("{t_url}/csr")).await;
    assert!(csr_page.html.contains("type=\"file\"") && csr_page.html.contains("multipart/form-data"));
    let pem = csr_pem(w.dir.path());
    let boundary = "qcertboundary7";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csr\"\r\n\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"csr_file\"; filename=\"request.csr\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{pem}\r\n--{boundary}--\r\n"
    );
    let bad = w
        .http
        .post(format!("{t_url}/csr"))
        .header("accept", BROWSER)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body.replace("BEGIN CERTIFICATE REQUEST-----\n", "BEGIN CERTIFICATE REQUEST-----\nAAAA"))
        .send()
        .await
        .unwrap();
    let bad = page_of(bad).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.html);
    assert!(bad.html.contains("role=\"alert\"") && bad.html.contains("CSR"), "{}", bad.html);
    let r = w
        .http
        .post(format!("{t_url}/csr"))
        .header("accept", BROWSER)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let page = w.follow(page_of(r).await).await;
    assert!(page.html.contains("certificat emis"), "{}", page.html);

    // The certificate: the page and its downloads.
    let cert = w.get(&format!("{t_url}/certificate?lang=en")).await;
    // (The certificate page is holder_web::certs's: status, renewal, revocation, confirmation, downloads.)
    assert!(cert.html.contains("<html lang=\"en\">") && cert.html.contains("id=\"status\""), "{}", cert.html);
    let link = |kind: &str| {
        let at = cert.html.find(kind).unwrap();
        let from = cert.html[..at].rfind("href=\"").unwrap() + 6;
        let href =
            cert.html[from..from + cert.html[from..].find('"').unwrap()].replace("&#38;", "&").replace("&amp;", "&");
        if href.starts_with('/') {
            format!("{}{href}", w.server.base)
        } else {
            href
        }
    };
    let chain = w.http.get(link("with the issuing CA (PEM)")).header("accept", BROWSER).send().await.unwrap();
    assert_eq!(chain.headers()["content-type"], "application/x-pem-file");
    assert_eq!(chain.text().await.unwrap().matches("-----BEGIN CERTIFICATE-----").count(), 2);
    let der = w.http.get(link("DER, .cer")).header("accept", BROWSER).send().await.unwrap();
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    assert!(der.headers()["content-disposition"].to_str().unwrap().ends_with(".cer\""));
    let der = der.bytes().await.unwrap();
    use der::Decode;
    x509_cert::Certificate::from_der(&der).expect("a DER certificate");
    let pem = w.http.get(link("The certificate (PEM)")).header("accept", BROWSER).send().await.unwrap();
    assert_eq!(pem.text().await.unwrap().matches("-----BEGIN CERTIFICATE-----").count(), 1);
    let odd = w.get(&format!("{t_url}/certificate?format=png")).await;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY);
    let api = w.http.get(format!("{t_url}/certificate")).send().await.unwrap();
    assert_eq!(api.headers()["content-type"], "application/x-pem-file", "API clients unchanged");

    // CLOUD, in English: pay, reject, resume, approve, enrol (QR), first code.
    let page = w.post("/order", &pairs(&valid_form("CLOUD", "mihai@example.ro", "SX654321", "en"))).await;
    let c_url = page.location.unwrap();
    let c: Value = w.http.get(&c_url).send().await.unwrap().json().await.unwrap();
    let c_id = c["order_id"].as_str().unwrap().to_owned();
    w.follow(w.post(&format!("/pay/test/{c_id}"), &[]).await).await;
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{c_id}/rejection"),
        Some(json!({"reason": "no <i>light</i>"})),
    )
    .await;
    let page = w.get(&c_url).await;
    assert!(page.html.contains("no &#60;i&#62;light&#60;/i&#62;") && page.html.contains("/resume"), "{}", page.html);
    let page = w.follow(w.post(&format!("{c_url}/resume"), &[]).await).await;
    assert!(page.html.contains("identity check by video"), "{}", page.html);
    let again = w.post(&format!("{c_url}/resume"), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "resumed already: the order page with the refusal");
    assert!(again.html.contains("role=\"alert\"") && again.html.contains("identity check by video"));
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{c_id}/approval"),
        Some(json!({"document_number": "SX654321"})),
    )
    .await;
    let page = w.get(&format!("{c_url}/authenticator")).await;
    assert!(page.html.contains("Show the secret"), "{}", page.html);
    let page = w.post(&format!("{c_url}/authenticator"), &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let secret = base32_decode(pre_after(&page.html, "<h1>"));
    let uri = pre_after(&page.html, "The otpauth link").to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let src = page.html.split("src=\"data:image/svg+xml;base64,").nth(1).unwrap();
    let svg = base64::engine::general_purpose::STANDARD.decode(&src[..src.find('"').unwrap()]).unwrap();
    assert!(String::from_utf8(svg).unwrap().contains("<svg"), "a QR code as SVG");
    assert!(page.html.contains("alt=\""), "the QR code has a text alternative");
    // The secret was handed out: the order page's next step is the first code.
    let page = w.get(&c_url).await;
    assert!(page.html.contains("name=\"code\"") && !page.html.contains("/authenticator\""), "{}", page.html);
    let page = w.get(&format!("{c_url}/authenticator")).await;
    assert!(!page.html.contains("Show the secret"), "handed out once: {}", page.html);
    let wrong = w.post(&format!("{c_url}/authorization"), &[("code", "000000")]).await;
    assert!(wrong.status.is_client_error(), "{}", wrong.status);
    assert!(wrong.html.contains("role=\"alert\"") && wrong.html.contains("not accepted"), "{}", wrong.html);
    let code = totp(&secret, w.clock.now());
    let page = w.follow(w.post(&format!("{c_url}/authorization"), &[("code", &code)]).await).await;
    assert!(page.html.contains("certificate issued"), "{}", page.html);

    // The secrets pages, from the mailed links; every mailed link is a page.
    let mails = w.deliver().await;
    for m in &mails {
        for link in m.body.as_deref().unwrap_or("").split_whitespace().filter(|l| l.starts_with("http")) {
            let p = w.get(link).await;
            assert_eq!(p.status, StatusCode::OK, "{link}: {}", p.html);
        }
    }
    let t_secrets = subject_of(&mails, "Codurile secrete ale certificatului").link().unwrap();
    let c_secrets = subject_of(&mails, "Your revocation password is ready").link().unwrap();
    let page = w.get(&c_secrets).await;
    assert!(page.html.contains("name=\"code\"") && page.html.contains("registration officer"), "{}", page.html);
    let page = w.post(&c_secrets, &[("code", "WRONG-CODE-XX")]).await;
    assert!(page.status.is_client_error() && page.html.contains("not right"), "{}: {}", page.status, page.html);
    assert!(!page.html.contains("WRONG-CODE-XX"), "never echoed");
    let code = w.json(reqwest::Method::POST, &format!("/api/v1/ra/orders/{c_id}/delivery-code"), None).await;
    let code = code["code"].as_str().unwrap().to_owned();
    let page = w.post(&c_secrets, &[("code", &code)]).await;
    assert_eq!(page.status, StatusCode::OK);
    let password = page.html.split("<span class=\"secret\">").nth(1).unwrap();
    let password = &password[..password.find('<').unwrap()];
    assert!(password.len() == 8 && password.bytes().all(|b| b.is_ascii_digit()), "{password}");
    assert!(!page.html.contains("PUK"), "CLOUD: the password only");
    let again = w.post(&c_secrets, &[("code", &code)]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.html.contains("already shown") && !again.html.contains(password), "{}", again.html);
    assert!(w.get(&c_secrets).await.html.contains("already shown"));
    let code = w.json(reqwest::Method::POST, &format!("/api/v1/ra/orders/{t_id}/delivery-code"), None).await;
    let page = w.post(&t_secrets, &[("code", code["code"].as_str().unwrap())]).await;
    assert!(page.html.contains("Parola de revocare") && page.html.contains("PUK") && page.html.contains("PIN"));
    assert!(w.get(&t_secrets).await.html.contains("deja afișate"));
    w.server.task.abort();
}
on_both_stores!(a_token_and_a_cloud_order_through_the_pages);

fn csr_pem(dir: &std::path::Path) -> String {
    let (key, out) = (dir.join("t.key"), dir.join("t.csr"));
    run_ok(
        std::process::Command::new("openssl")
            .args(["req", "-new", "-nodes", "-subj", "/CN=token", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-384", "-sha384", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&out),
    );
    std::fs::read_to_string(out).unwrap()
}
