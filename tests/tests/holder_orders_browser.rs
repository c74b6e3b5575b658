#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)] // test code: a panic is the failure report
//! The holder's order pages in real headless Chromium (SQLite): a TOKEN
//! order in Romanian and a CLOUD order in English, each from the order
//! form (with its refusals first) through the TEST payment provider, the
//! RA officer's rejection and approvals on the desk's order page (signed in
//! with a real desk session in the same browser), the CSR pasted (TOKEN) or the QR code and first
//! code (CLOUD), the secrets page once (a second time it says they were
//! shown) and the certificate download. Every mailed link is opened with
//! GET in the browser and shows a page. Every page passes axe-core (WCAG
//! 2.1 A/AA, 0 violations) and is photographed, in English and Romanian.

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::orders::PaymentSettings;
use qcert_ca_core::Clock;
use qcert_tests::browser::thirtyfour::prelude::*;
use qcert_tests::browser::thirtyfour::Cookie;
use qcert_tests::browser::{local, Browser};
use qcert_tests::smtp::{smtp_dispatcher, SmtpSink};
use qcert_tests::*;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];

/// The same URL with `lang=` set.
fn with_lang(url: &str, lang: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}lang={lang}")
}

struct Run {
    b: Browser,
    http: reqwest::Client,
    base: String,
    ra: String,
    /// The RA officer's desk session cookie (name, value).
    desk: (String, String),
    pages: Vec<String>,
}

impl Run {
    /// axe (0 violations) and a screenshot of the page shown now.
    async fn check(&mut self, name: &str) {
        let lang = self.b.css("html").await.attr("lang").await.unwrap().unwrap_or_default();
        let name = format!("{lang}-{name}");
        self.b.assert_accessible(&name).await;
        self.b.screenshot(&name).await;
        self.pages.push(name);
    }

    /// `url` in the other language, then in `lang` (which the language
    /// cookie keeps for the next pages), each checked.
    async fn both(&mut self, url: &str, name: &str, lang: &str) {
        let other = if lang == "ro" { "en" } else { "ro" };
        for l in [other, lang] {
            self.b.goto(&with_lang(url, l)).await;
            let shown = self.b.css("html").await.attr("lang").await.unwrap();
            assert_eq!(shown.as_deref(), Some(l), "{url}");
            self.check(name).await;
        }
    }

    async fn fill(&self, id: &str, value: &str) {
        let e = self.b.driver.find(By::Id(id)).await.unwrap_or_else(|e| panic!("#{id}: {e}"));
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.b.css(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Click what leads to another page, and wait until it is there.
    async fn go(&self, css: &str) {
        let old = self.b.css("html").await;
        self.click(css).await;
        old.wait_until().stale().await.unwrap_or_else(|e| panic!("{css} leads to another page: {e}"));
    }

    async fn url(&self) -> String {
        self.b.driver.current_url().await.unwrap().to_string()
    }

    /// The RA officer's step on the desk's order page (the same browser, with
    /// the officer's desk session cookie): fill `field` of the form posting
    /// to `…/{form}`, send it, and see the desk confirm it.
    async fn desk(&mut self, order_id: &str, form: &str, field: &str, value: &str) {
        let mut c = Cookie::new(self.desk.0.clone(), self.desk.1.clone());
        c.set_path("/");
        self.b.driver.add_cookie(c).await.unwrap();
        self.b.goto(&format!("{}/desk/ra/orders/{order_id}", self.base)).await;
        let input = self.b.css(&format!("form[action$='/{form}'] [name={field}]")).await;
        input.send_keys(value).await.unwrap();
        self.go(&format!("form[action$='/{form}'] button")).await;
        assert!(
            self.b.driver.find(By::Css(".notice.ok")).await.is_ok(),
            "the desk confirms the {form}: {}",
            self.b.text().await
        );
        self.check(&format!("desk-{form}")).await;
    }

    async fn ra(&self, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.ra);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// Fill and send the order form (the page is open).
    async fn order(&self, product: &str, email: &str, doc: &str, lang: &str) {
        self.click(&format!("input[name=product][value={product}]")).await;
        self.click("input[name=years][value='1']").await;
        self.fill("given_name", "Ioana").await;
        self.fill("surname", "Popescu").await;
        self.fill("email", email).await;
        self.fill("country", "RO").await;
        self.fill("national_id", &cnp(7)).await;
        self.click("input[name=document_type][value=id-card]").await;
        self.fill("id_document_number", doc).await;
        self.click(&format!("input[name=language][value={lang}]")).await;
        self.go("form[action='/order'] button[type=submit]").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_and_a_cloud_order_in_the_browser() {
    let db = TestDb::new(Backend::Sqlite).await;
    let clock = test_clock();
    let (ca, _) = new_ca(&db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let payment = PaymentSettings {
        url_template: format!("{base}/pay/test/{{order_id}}"),
        test_provider: true,
        ..PaymentSettings::default()
    };
    let orders = new_orders(&desk, WEBHOOK, &base).with_payment(payment).unwrap();
    let server = serve_orders_on(listener, orders).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    let b = Browser::start("holder_orders_browser").await;
    let desk_session = qcert_tests::desk::session_cookie(&ca, &base, "radu").await;
    let mut r = Run { b, http: reqwest::Client::new(), base: base.clone(), ra, desk: desk_session, pages: Vec::new() };

    // The form, and its refusals, in both languages.
    r.both(&format!("{base}/order"), "order-form", "ro").await;
    r.go("form[action='/order'] button[type=submit]").await;
    let text = r.b.text().await;
    assert!(text.contains("Există o problemă") && text.contains("Alegeți TOKEN sau CLOUD"), "{text}");
    r.check("order-form-errors").await;
    // The summary's links lead to the fields.
    r.click("a[href='#given_name']").await;
    let focused = r.b.driver.active_element().await.unwrap().attr("id").await.unwrap();
    assert_eq!(focused.as_deref(), Some("given_name"));
    r.b.goto(&with_lang(&format!("{base}/order"), "en")).await;
    r.go("form[action='/order'] button[type=submit]").await;
    assert!(r.b.text().await.contains("There is a problem"));
    r.check("order-form-errors").await;

    // TOKEN, in Romanian.
    r.b.goto(&with_lang(&format!("{base}/order"), "ro")).await;
    r.order("TOKEN", "ioana@example.ro", "RX123456", "ro").await;
    let t_url = r.url().await;
    assert!(t_url.contains("/api/v1/orders/"), "{t_url}");
    assert!(r.b.text().await.contains("89,00 EUR"));
    r.both(&t_url, "order-awaiting-payment", "ro").await;
    r.go("a.button").await;
    assert!(r.url().await.contains("/pay/test/"));
    let pay_url = r.url().await;
    r.both(&pay_url, "pay-test", "ro").await;
    r.go("form button[type=submit]").await;
    assert_eq!(r.url().await, t_url, "back to the order page");
    assert!(r.b.text().await.contains("verificarea identității prin video"));
    r.both(&t_url, "order-awaiting-identity", "ro").await;
    r.both(&pay_url, "pay-test-paid", "ro").await;
    let t: Value = r.http.get(&t_url).send().await.unwrap().json().await.unwrap();
    let t_id = t["order_id"].as_str().unwrap().to_owned();
    r.desk(&t_id, "approval", "document_number", "RX123456").await;
    r.both(&t_url, "order-approved-token", "ro").await;
    r.go("a.button").await;
    let csr_url = r.url().await;
    assert!(csr_url.ends_with("/csr"), "{csr_url}");
    r.both(&csr_url, "order-csr", "ro").await;
    // A broken CSR first: the page says so, in the holder's language.
    r.fill("csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----").await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("refuzată"), "{}", r.b.text().await);
    r.check("order-csr-refused").await;
    for l in ["en", "ro"] {
        r.b.goto(&with_lang(&csr_url, l)).await;
        r.fill("csr", "not a CSR").await;
        r.go("form button[type=submit]").await;
        if l == "en" {
            assert!(r.b.text().await.contains("was refused"), "{}", r.b.text().await);
            r.check("order-csr-refused").await;
        }
    }
    let pem = csr_pem(dir.path());
    r.b.goto(&csr_url).await;
    r.fill("csr", &pem).await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("certificat emis"), "{}", r.b.text().await);
    r.both(&t_url, "order-issued", "ro").await;
    r.go("a.button").await;
    let cert_url = r.url().await;
    r.both(&cert_url, "certificate", "ro").await;
    // The downloads (as the browser's links name them).
    // (The certificate page is holder_web::certs's; `href` as the browser resolves it.)
    let chain = r.b.css("a[href$='-chain.pem']").await.prop("href").await.unwrap().unwrap();
    let file = r.http.get(&chain).header("accept", "text/html").send().await.unwrap();
    assert_eq!(file.headers()["content-type"], "application/x-pem-file");
    assert_eq!(file.text().await.unwrap().matches("BEGIN CERTIFICATE").count(), 2);
    let der = r.b.css("a[href$='.der']").await.prop("href").await.unwrap().unwrap();
    let file = r.http.get(&der).header("accept", "text/html").send().await.unwrap();
    assert_eq!(file.headers()["content-type"], "application/pkix-cert");

    // CLOUD, in English: rejected, resumed, approved, enrolled, first code.
    r.b.goto(&with_lang(&format!("{base}/order"), "en")).await;
    r.order("CLOUD", "mihai@example.ro", "SX654321", "en").await;
    let c_url = r.url().await;
    r.go("a.button").await;
    r.go("form button[type=submit]").await;
    let c: Value = r.http.get(&c_url).send().await.unwrap().json().await.unwrap();
    let c_id = c["order_id"].as_str().unwrap().to_owned();
    assert_eq!(c["state"], "awaiting-identity");
    r.desk(&c_id, "rejection", "reason", "the video broke off").await;
    r.both(&c_url, "order-rejected", "en").await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("identity check by video"));
    r.desk(&c_id, "approval", "document_number", "SX654321").await;
    r.both(&c_url, "order-approved-cloud", "en").await;
    r.go("a.button").await;
    let enrol_url = r.url().await;
    r.both(&enrol_url, "authenticator", "en").await;
    r.go("form button[type=submit]").await;
    let qr = r.b.css("img.qr").await;
    assert!(qr.attr("src").await.unwrap().unwrap().starts_with("data:image/svg+xml;base64,"));
    assert!(!qr.attr("alt").await.unwrap().unwrap().is_empty());
    let natural: Value =
        r.b.driver
            .execute("return document.querySelector('img.qr').naturalWidth;", Vec::new())
            .await
            .unwrap()
            .json()
            .clone();
    assert!(natural.as_u64().unwrap() >= 200, "the QR code is drawn: {natural}");
    r.check("authenticator-secret").await;
    let secret = r.b.css("pre").await.text().await.unwrap();
    let secret = base32_decode(secret.trim());
    r.fill("code", "000000").await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("not accepted"), "{}", r.b.text().await);
    r.check("order-code-refused").await;
    for l in ["ro", "en"] {
        r.b.goto(&with_lang(&c_url, l)).await;
        r.fill("code", "111111").await;
        r.go("form button[type=submit]").await;
        if l == "ro" {
            assert!(r.b.text().await.contains("nu a fost acceptat"), "{}", r.b.text().await);
            r.check("order-code-refused").await;
        }
    }
    r.b.goto(&c_url).await;
    r.fill("code", &totp(&secret, clock.now())).await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("certificate issued"), "{}", r.b.text().await);
    r.both(&c_url, "order-issued-cloud", "en").await;
    // The authenticator's secret page in Romanian too (a second CLOUD order,
    // set up over the API and the TEST provider's form).
    let o: Value = r
        .http
        .post(format!("{base}/api/v1/orders"))
        .json(&json!({
            "product": "CLOUD", "years": 2, "given_name": "Ana", "surname": "Ionescu", "email": "ana@example.ro",
            "country": "RO", "national_id": cnp(8), "id_document_number": "TX111222", "language": "ro"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a_id = o["order_id"].as_str().unwrap().to_owned();
    let paid = r.http.post(format!("{base}/pay/test/{a_id}")).send().await.unwrap();
    assert!(paid.status().is_success(), "{}", paid.status());
    r.ra(&format!("/api/v1/ra/orders/{a_id}/approval"), Some(json!({"document_number": "TX111222"}))).await;
    r.b.goto(&with_lang(&format!("{}/authenticator", o["order_url"].as_str().unwrap()), "ro")).await;
    r.go("form button[type=submit]").await;
    assert!(r.b.text().await.contains("Scanați codul QR"), "{}", r.b.text().await);
    r.check("authenticator-secret").await;

    // Every mailed link opens with GET in the browser and shows a page.
    dispatcher.run_once(clock.now()).await.unwrap();
    let mails = sink.received();
    assert!(mails.len() >= 10, "{}", mails.len());
    let mut opened = 0;
    for m in &mails {
        for link in m.body.as_deref().unwrap_or("").split_whitespace().filter(|l| l.starts_with("http")) {
            r.b.goto(link).await;
            let h1 = r.b.css("h1").await.text().await.unwrap();
            assert!(!h1.is_empty() && !r.b.text().await.contains("Page not found"), "{link}");
            opened += 1;
        }
    }
    assert!(opened >= 10, "{opened}");
    let secrets_link = |needle: &str| {
        let m = mails.iter().find(|m| m.subject.as_deref().unwrap_or("").contains(needle)).unwrap();
        m.link().unwrap()
    };
    let c_secrets = secrets_link("Your revocation password is ready");
    let t_secrets = secrets_link("Codurile secrete ale certificatului");

    // The secrets, once: CLOUD in English, TOKEN in Romanian.
    for (url, id, lang) in [(&c_secrets, &c_id, "en"), (&t_secrets, &t_id, "ro")] {
        r.both(url, "secrets", lang).await;
        r.fill("code", "WRONG-CODE-1").await;
        r.go("form button[type=submit]").await;
        r.check("secrets-wrong-code").await;
        let code = r.ra(&format!("/api/v1/ra/orders/{id}/delivery-code"), None).await;
        r.fill("code", code["code"].as_str().unwrap()).await;
        r.go("form button[type=submit]").await;
        let text = r.b.text().await;
        let password = r.b.css("span.secret").await.text().await.unwrap();
        assert!(password.len() == 8 && password.bytes().all(|b| b.is_ascii_digit()), "{text}");
        assert_eq!(text.contains("PUK"), lang == "ro", "{text}");
        r.check("secrets-shown").await;
        r.both(url, "secrets-retrieved", lang).await;
        let text = r.b.text().await;
        assert!(text.contains("already shown") || text.contains("deja afișate"), "{text}");
        assert!(!text.contains(&password));
    }
    // A link that leads nowhere: a page in the visitor's language.
    r.b.goto(&with_lang(&format!("{c_url}x"), "ro")).await;
    assert!(r.b.text().await.contains("Nu există nimic la acest link"));
    r.check("order-not-found").await;
    r.b.goto(&with_lang(&format!("{c_url}x"), "en")).await;
    assert!(r.b.text().await.contains("There is nothing behind this link"));
    r.check("order-not-found").await;

    for lang in ["en", "ro"] {
        let n = r.pages.iter().filter(|p| p.starts_with(lang)).count();
        assert!(n >= 22, "{lang}: {n} pages: {:?}", r.pages);
    }
    r.b.quit().await;
    server.task.abort();
    db.cleanup().await;
}

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
