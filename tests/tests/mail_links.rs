#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)] // test code: a panic is the failure report
//! Holders' mail over an order's whole life, on both stores, through the
//! HTTP API and a real SMTP server: every link a mail contains opens with
//! GET in a browser (200, HTML, strict CSP, no-store), the form steps work
//! as plain HTML forms, the reminders state their dates as people write
//! them, no capability link is left in the database in clear, and sent
//! mail is purged exactly when its retention ends (fixed clock).

use std::sync::Arc;

use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::orders::Orders;
use qcert_ca_core::{Clock, FixedClock};
use qcert_notifier::{Notifier, Outbox};
use qcert_tests::smtp::{smtp_dispatcher, Received, SmtpSink};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [42u8; 32];
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

struct World {
    clock: Arc<FixedClock>,
    server: Server,
    orders: Orders,
    http: reqwest::Client,
    ra: String,
    dispatcher: qcert_notifier::Dispatcher,
    sink: SmtpSink,
    dir: tempfile::TempDir,
}

async fn world(db: &TestDb) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let mut kept = None;
    let server = serve_orders_with(|base| {
        let o = new_orders(&desk, WEBHOOK, base);
        kept = Some(o.clone());
        o
    })
    .await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    World { clock, server, orders: kept.unwrap(), http: reqwest::Client::new(), ra, dispatcher, sink, dir }
}

impl World {
    async fn deliver(&self) {
        self.dispatcher.run_once(self.clock.now()).await.unwrap();
    }

    async fn json(&self, method: reqwest::Method, url: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let url = if url.starts_with("http") { url.to_owned() } else { format!("{}{url}", self.server.base) };
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert!(resp.status().is_success(), "{url}: {}", resp.status());
        resp.json().await.unwrap()
    }

    async fn pay(&self, id: &str, event: &str) {
        let event = json!({"event_id": event, "order_id": id, "status": "paid"});
        let r = post_signed_webhook(&self.http, &self.server.base, &event, WEBHOOK, self.clock.now()).await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// GET `url` as a browser: a 200 HTML page with the page headers.
    async fn page(&self, url: &str) -> String {
        let r = self.http.get(url).header("accept", BROWSER).send().await.unwrap();
        page_of(url, r).await
    }

    /// POST a form as a browser: a 200 HTML page.
    async fn submit(&self, url: &str, fields: &[(&str, &str)]) -> String {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
        let r = self
            .http
            .post(url)
            .header("accept", BROWSER)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        page_of(url, r).await
    }
}

async fn page_of(url: &str, r: reqwest::Response) -> String {
    let status = r.status();
    let h = r.headers().clone();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{url}: {text}");
    assert_eq!(h["content-type"], "text/html; charset=utf-8", "{url}");
    assert_eq!(h["cache-control"], "no-store", "{url}");
    // The pages' CSP ('self': the stylesheet; the renewal page, not yet on a template, 'none').
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src '") && csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
    assert!(text.starts_with("<!DOCTYPE html>") && !text.contains("<script"), "{url}: {text}");
    text
}

/// Every http(s) link in a mail body.
fn links(m: &Received) -> Vec<String> {
    let body = m.body.as_deref().unwrap_or("");
    body.split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_owned)
        .collect()
}

fn subject_of(all: &[Received], needle: &str) -> Received {
    let found: Vec<&Received> = all.iter().filter(|m| m.subject.as_deref().unwrap_or("").contains(needle)).collect();
    assert_eq!(found.len(), 1, "one mail with {needle:?}: {:?}", all.iter().map(|m| &m.subject).collect::<Vec<_>>());
    found[0].clone()
}

/// Text between the first `<pre>` after `after` and its `</pre>`.
fn pre_after<'a>(html: &'a str, after: &str) -> &'a str {
    let from = html.find(after).unwrap_or(0);
    let rest = &html[from..];
    let start = rest.find("<pre>").unwrap() + 5;
    let end = rest[start..].find("</pre>").unwrap();
    &rest[start..start + end]
}

fn form(product: &str, email: &str, doc: &str, language: &str) -> Value {
    json!({
        "product": product, "years": 1, "given_name": "Ioana", "surname": "Popescu", "email": email,
        "country": "RO", "national_id": cnp(7), "id_document_number": doc, "publish": false,
        "language": language
    })
}

fn csr_pem(dir: &std::path::Path, name: &str) -> String {
    let (key, out) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.csr")));
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

async fn every_mailed_link_opens_in_a_browser_and_no_link_stays_in_the_database(db: &TestDb) {
    let w = world(db).await;
    let base = w.server.base.clone();

    // TOKEN, Romanian: order, pay, approve (no CSR yet), CSR by the HTML form.
    let t = w
        .json(reqwest::Method::POST, "/api/v1/orders", None, Some(form("TOKEN", "ioana@example.ro", "RX123456", "ro")))
        .await;
    let (t_id, t_url) = (t["order_id"].as_str().unwrap().to_owned(), t["order_url"].as_str().unwrap().to_owned());
    assert_eq!(t["price"], "89.00 EUR");
    assert!(t["payment_url"].as_str().unwrap().contains(&format!("reference={t_id}&amount=89.00&currency=EUR")));
    let html = w.page(&t_url).await;
    assert!(
        html.contains("<html lang=\"ro\">") && html.contains("plătiți comanda") && html.contains("89,00 EUR"),
        "{html}"
    );
    w.pay(&t_id, "evt_t").await;
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{t_id}/approval"),
        Some(&w.ra),
        Some(json!({"document_number": "RX123456"})),
    )
    .await;
    w.deliver().await;
    let mails = w.sink.received();
    let approved = subject_of(&mails, "încărcați cererea CSR");
    let csr_url = links(&approved).pop().unwrap();
    assert_eq!(csr_url, format!("{t_url}/csr"));
    let html = w.page(&csr_url).await;
    assert!(html.contains("<textarea name=\"csr\""), "{html}");
    let html = w.submit(&csr_url, &[("csr", &csr_pem(w.dir.path(), "t"))]).await;
    assert!(html.contains("certificat emis"), "issued from the browser form: {html}");

    // CLOUD, English: order, pay, reject, resume by the form, approve,
    // enrol and send the first code by the forms.
    let c = w
        .json(reqwest::Method::POST, "/api/v1/orders", None, Some(form("CLOUD", "mihai@example.ro", "SX654321", "en")))
        .await;
    let (c_id, c_url) = (c["order_id"].as_str().unwrap().to_owned(), c["order_url"].as_str().unwrap().to_owned());
    w.pay(&c_id, "evt_c").await;
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{c_id}/rejection"),
        Some(&w.ra),
        Some(json!({"reason": "the <b>video</b> broke off"})),
    )
    .await;
    w.deliver().await;
    let resume = links(&subject_of(&w.sink.received(), "could not be completed")).pop().unwrap();
    let html = w.page(&resume).await;
    assert!(
        html.contains("the &#60;b&#62;video&#60;/b&#62; broke off") && !html.contains("<b>video"),
        "escaped: {html}"
    );
    let html = w.submit(&resume, &[]).await;
    assert!(html.contains("identity check by video"), "{html}");
    w.json(
        reqwest::Method::POST,
        &format!("/api/v1/ra/orders/{c_id}/approval"),
        Some(&w.ra),
        Some(json!({"document_number": "SX654321"})),
    )
    .await;
    w.deliver().await;
    let enrol = links(&subject_of(&w.sink.received(), "Set up your signing authenticator")).pop().unwrap();
    let html = w.page(&enrol).await;
    assert!(html.contains("Show the secret"), "{html}");
    let html = w.submit(&enrol, &[]).await;
    let secret = base32_decode(pre_after(&html, "<h1>"));
    assert!(pre_after(&html, "</pre>").starts_with("otpauth://totp/"), "{html}");
    let html = w.submit(&format!("{c_url}/authorization"), &[("code", &totp(&secret, w.clock.now()))]).await;
    assert!(html.contains("certificate issued"), "{html}");
    w.deliver().await;

    // Every link in every mail so far opens in a browser.
    let mails = w.sink.received();
    let subjects: Vec<String> = mails.iter().map(|m| m.subject.clone().unwrap()).collect();
    assert_eq!(mails.len(), 11, "TOKEN 5, CLOUD 6: {subjects:?}");
    let mut opened = 0;
    for m in &mails {
        let found = links(m);
        assert!(!found.is_empty(), "{:?} names its link", m.subject);
        for link in found {
            if link.starts_with("https://pay.example.invalid/") {
                continue; // the payment provider's checkout
            }
            assert!(link.starts_with(&base), "{link}");
            w.page(&link).await;
            opened += 1;
        }
    }
    assert!(opened >= 10, "{opened}");

    // The secrets by the browser form, once; the password is 8 digits.
    let t_delivery = links(&subject_of(&mails, "Codurile secrete ale certificatului")).pop().unwrap();
    let c_delivery = links(&subject_of(&mails, "Your revocation password is ready")).pop().unwrap();
    let html = w.page(&c_delivery).await;
    assert!(html.contains("registration officer") && !html.to_lowercase().contains("kit"), "CLOUD: {html}");
    let code =
        w.json(reqwest::Method::POST, &format!("/api/v1/ra/orders/{t_id}/delivery-code"), Some(&w.ra), None).await;
    let html = w.submit(&t_delivery, &[("code", code["code"].as_str().unwrap())]).await;
    assert!(html.contains("Parola de revocare") && html.contains("PUK"), "{html}");
    let again = w
        .http
        .post(&t_delivery)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={}", code["code"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT, "shown once");
    assert!(w.page(&t_delivery).await.contains("nimic"), "the page says it was retrieved");

    // No capability (order link MAC, delivery token) in the database.
    let dump = String::from_utf8_lossy(&database_contents(db).await).into_owned();
    assert!(dump.contains("ioana@example.ro"), "the dump is real");
    for link in [&t_url, &c_url, &t_delivery, &c_delivery] {
        let capability = link.rsplit('/').next().unwrap();
        let capability = capability.split_once('.').map_or(capability, |(_, mac)| mac);
        assert!(capability.len() >= 20, "{capability}");
        assert!(!dump.contains(capability), "{link} stored in clear");
    }

    // Sent mail is purged exactly 30 days after it was sent.
    let row = Outbox::by_key(w.orders.ca().registry(), &format!("order-received:{t_id}")).await.unwrap().unwrap();
    assert_eq!((row.body_text.as_str(), row.body_sealed.as_ref()), ("", None), "erased once sent");
    let notifier = Notifier::new(w.orders.clone()).with_sent_mail_retention(time::Duration::days(30));
    let sent = time::OffsetDateTime::from_unix_timestamp(row.sent_at.unwrap()).unwrap();
    let r = notifier.tick(sent + time::Duration::days(30) - time::Duration::seconds(1)).await.unwrap();
    assert!(Outbox::get(w.orders.ca().registry(), row.id).await.unwrap().is_some(), "kept until then ({r:?})");
    let r = notifier.tick(sent + time::Duration::days(30)).await.unwrap();
    assert!(Outbox::get(w.orders.ca().registry(), row.id).await.unwrap().is_none(), "purged at 30 days");
    assert!(r.mails_purged >= 1, "{r:?}");
    // The reminders: 45 days, then the last one at 15 days, with the
    // deadline written as people write it, and a page behind the link.
    let serial = w.json(reqwest::Method::GET, &t_url, None, None).await["serial"].as_str().unwrap().to_owned();
    let rec = w.orders.ca().registry().certificate(&serial).await.unwrap().unwrap();
    let not_after = time::OffsetDateTime::from_unix_timestamp(rec.cert.not_after).unwrap();
    let deadline = not_after - time::Duration::days(3);
    w.clock.set(not_after - time::Duration::days(44));
    notifier.tick(w.clock.now()).await.unwrap();
    w.deliver().await;
    w.clock.set(not_after - time::Duration::days(14));
    notifier.tick(w.clock.now()).await.unwrap();
    w.deliver().await;
    let mails = w.sink.received();
    let ro_deadline = qcert_notifier::long_date(deadline, qcert_notifier::Language::Ro);
    assert!(ro_deadline.chars().next().unwrap().is_ascii_digit() && !ro_deadline.contains('T'), "{ro_deadline}");
    let first = subject_of(&mails, "reînnoiți-l până la");
    let last = subject_of(&mails, "Ultima amintire");
    for m in [&first, &last] {
        let body = m.body.as_deref().unwrap();
        assert!(body.contains(&ro_deadline) && !body.contains("T00:") && !body.contains("Z\n"), "{body}");
        let html = w.page(&links(m).pop().unwrap()).await;
        assert!(html.contains(&ro_deadline) && html.contains("qcert enroll renew"), "{html}");
    }
    assert!(last.subject.as_deref().unwrap().contains(&ro_deadline));
    assert!(last.body.as_deref().unwrap().contains("ultima amintire"));
    assert!(!first.body.as_deref().unwrap().contains("ultima"));
    assert_ne!(first.body, last.body);

    w.server.task.abort();
}
on_both_stores!(every_mailed_link_opens_in_a_browser_and_no_link_stays_in_the_database);
