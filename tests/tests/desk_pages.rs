#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The operators' desk pages in real headless Chromium, on both stores:
//! a hotline revocation typed with the keyboard alone, then OCSP (openssl)
//! says revoked; five wrong passwords lock the hotline path, which the
//! holder lookup shows, and a new revocation password (printable page)
//! opens it again; an RA approval and a rejection with their mails at the
//! SMTP sink; the audit viewer and the summary. axe-core finds no WCAG 2.1
//! A/AA violation on any page, and every page is photographed in English
//! and Romanian (target/browser-artefacts/desk_pages-<store>/).

use std::sync::Arc;

use qcert_ca_core::desk::{DocumentNumber, RevocationPassword};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::{Ca, Clock, FixedClock, Holder, Issued, KeySource, ValidityYears};
use qcert_tests::browser::thirtyfour::{Cookie, Key};
use qcert_tests::browser::{local, Browser, By};
use qcert_tests::smtp::{smtp_dispatcher, SmtpSink};
use qcert_tests::*;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [5u8; 32];

struct World {
    db_backend: Backend,
    clock: Arc<FixedClock>,
    ca: Ca,
    desk: qcert_ca_core::desk::RevocationDesk,
    server: Server,
    /// `http://localhost:<port>`: what the browser opens.
    base: String,
    http: reqwest::Client,
    sink: SmtpSink,
    dispatcher: qcert_notifier::Dispatcher,
    dir: tempfile::TempDir,
    /// Session cookies (name, value) of anna (hotline) and radu (RA).
    anna: (String, String),
    radu: (String, String),
}

async fn world(db: &TestDb) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = local(&format!("http://{}", listener.local_addr().unwrap()));
    let server = serve_orders_on(listener, new_orders(&desk, WEBHOOK, &base)).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    for (name, role) in [("anna", Role::HotlineAgent), ("radu", Role::RaOfficer), ("ada", Role::Admin)] {
        ops.add("test", name, role).await.unwrap();
    }
    let anna = qcert_tests::desk::session_cookie(&ca, &base, "anna").await;
    let radu = qcert_tests::desk::session_cookie(&ca, &base, "radu").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(ca.registry(), sink.port);
    World {
        db_backend: db.backend(),
        clock,
        ca,
        desk,
        server,
        base,
        http: reqwest::Client::new(),
        sink,
        dispatcher,
        dir,
        anna,
        radu,
    }
}

impl World {
    fn test_name(&self) -> String {
        format!("desk_pages-{}", if self.db_backend == Backend::Sqlite { "sqlite" } else { "postgres" })
    }

    fn holder(n: u32) -> Holder {
        Holder::parse("Elena", "Mărin", &format!("elena{n}@example.ro"), "RO", &cnp(n)).unwrap()
    }

    async fn issue(&self, n: u32, document: &str) -> (Issued, RevocationPassword) {
        let csr = openssl_csr(CsrKey::P384);
        let doc = DocumentNumber::parse(document).unwrap();
        self.desk
            .issue("qcp-n-qscd", &World::holder(n), ValidityYears::new(1).unwrap(), KeySource::Csr(csr), &doc)
            .await
            .unwrap()
    }

    /// What `openssl ocsp` prints about `issued`, asked over HTTP.
    async fn ocsp(&self, issued: &Issued) -> String {
        let d = self.dir.path();
        let h = self.ca.hierarchy();
        let issuing = write_pem(d, "issuing.pem", "CERTIFICATE", &h.issuing);
        let chain =
            format!("{}{}", qcert_ca_core::pem("CERTIFICATE", &h.issuing), qcert_ca_core::pem("CERTIFICATE", &h.root));
        std::fs::write(d.join("chain.pem"), chain).unwrap();
        let ee = write_pem(d, &format!("{}.pem", issued.serial), "CERTIFICATE", &issued.der);
        let out = tokio::process::Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&ee)
            .args(["-url", &format!("{}/ocsp", self.server.base), "-CAfile"])
            .arg(d.join("chain.pem"))
            .output()
            .await
            .unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// A paid order (identity queue); returns its id.
    async fn paid_order(&self, n: u32, document: &str, email: &str) -> String {
        let form = json!({
            "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": format!("Pop{}", ["a", "escu"][n as usize % 2]),
            "email": email, "country": "RO", "national_id": cnp(n), "id_document_number": document,
            "phone": "+40712345678", "document_type": "id-card", "publish": false, "language": "ro"
        });
        let r = self.http.post(format!("{}/api/v1/orders", self.server.base)).json(&form).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let created: Value = r.json().await.unwrap();
        let id = created["order_id"].as_str().unwrap().to_owned();
        let event = json!({"event_id": format!("evt-{id}"), "order_id": id, "status": "paid"});
        let r = post_signed_webhook(&self.http, &self.server.base, &event, WEBHOOK, self.clock.now()).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        id
    }

    async fn deliver(&self) {
        self.dispatcher.run_once(self.clock.now()).await.unwrap();
    }
}

/// Sign `b` in as the holder of `cookie` (it replaces any other session).
async fn sign_in(w: &World, b: &Browser, cookie: &(String, String)) {
    b.goto(&format!("{}/static/qcert.css", w.base)).await;
    b.driver.delete_all_cookies().await.unwrap();
    let mut c = Cookie::new(cookie.0.clone(), cookie.1.clone());
    c.set_path("/");
    b.driver.add_cookie(c).await.unwrap();
}

/// Open `path` in English and in Romanian: each passes axe and is photographed as `<name>-<lang>`.
async fn both_languages(w: &World, b: &Browser, path: &str, name: &str) {
    for lang in ["ro", "en"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        b.goto(&format!("{}{path}{sep}lang={lang}", w.base)).await;
        let html_lang = b.css("html").await.attr("lang").await.unwrap();
        assert_eq!(html_lang.as_deref(), Some(lang), "{path}");
        b.assert_accessible(&format!("{name} ({lang})")).await;
        b.screenshot(&format!("{name}-{lang}")).await;
    }
}

/// The page after the current one has loaded: axe and a screenshot.
async fn check(b: &Browser, name: &str) {
    b.assert_accessible(name).await;
    b.screenshot(name).await;
}

/// Type into the hotline form with the keyboard alone: the focus starts in
/// the document number field, Tab moves on, Enter sends.
async fn hotline_call(w: &World, b: &Browser, document: &str, password: &str) -> String {
    b.goto(&format!("{}/desk/hotline", w.base)).await;
    let focused = b.driver.active_element().await.unwrap();
    assert_eq!(focused.id().await.unwrap().as_deref(), Some("document_number"), "the first field has the focus");
    focused.send_keys(document).await.unwrap();
    focused.send_keys(Key::Tab).await.unwrap();
    let next = b.driver.active_element().await.unwrap();
    assert_eq!(next.id().await.unwrap().as_deref(), Some("revocation_password"));
    next.send_keys(password).await.unwrap();
    b.enter_and_wait(&next).await;
    b.css("#outcome").await;
    b.text().await
}

async fn desk_pages_work_in_a_browser_in_both_languages(db: &TestDb) {
    let w = world(db).await;
    let b = Browser::start(&w.test_name()).await;

    // Hotline: a revocation end to end.
    let (issued, password) = w.issue(1, "RX100001").await;
    let (locked, locked_password) = w.issue(2, "RX100002").await;
    assert!(w.ocsp(&issued).await.contains(": good"));
    sign_in(&w, &b, &w.anna).await;
    both_languages(&w, &b, "/desk/hotline", "hotline").await;
    // Her own API token: the page, then the token shown once.
    both_languages(&w, &b, "/desk/api-token", "api-token").await;
    b.goto(&format!("{}/desk/api-token?lang=en", w.base)).await;
    b.click_and_wait(&b.css("form[action='/desk/api-token'] button").await).await;
    assert!(b.css("#api-token").await.text().await.unwrap().starts_with("qcop_"));
    check(&b, "api-token-made-en").await;
    let text = hotline_call(&w, &b, "rx 100001", password.expose()).await;
    assert!(text.contains(&issued.serial) && text.contains("Elena Mărin"), "{text}");
    assert!(text.contains("Tell the caller") && text.contains("is revoked now"), "{text}");
    check(&b, "hotline-revoked-en").await;
    let said = w.ocsp(&issued).await;
    assert!(said.contains(": revoked") && said.contains("Reason: keyCompromise"), "{said}");

    // A mistyped document number is marked on the form itself, which keeps
    // what was typed (but the password) and puts the focus back in it.
    let text = hotline_call(&w, &b, "RX#100002", locked_password.expose()).await;
    assert!(text.contains("Please correct the form") && text.contains("5 to 20 letters and digits"), "{text}");
    assert!(!text.contains(locked_password.expose()), "the password is not shown again: {text}");
    let field = b.css("#document_number").await;
    assert_eq!(field.attr("aria-invalid").await.unwrap().as_deref(), Some("true"));
    assert_eq!(field.value().await.unwrap().as_deref(), Some("RX#100002"));
    let focused = b.driver.active_element().await.unwrap();
    assert_eq!(focused.id().await.unwrap().as_deref(), Some("document_number"));
    assert_eq!(b.css("#revocation_password").await.value().await.unwrap().as_deref(), Some(""));
    check(&b, "hotline-invalid-en").await;

    // Five wrong passwords lock the hotline path: the right one is refused
    // afterwards, with the same words as a wrong one.
    let wrong = if locked_password.expose() == "00000000" { "11111111" } else { "00000000" };
    let mut first = String::new();
    for i in 0..5 {
        let text = hotline_call(&w, &b, "RX100002", wrong).await;
        assert!(text.contains("Nothing was revoked") && text.contains("in person"), "{text}");
        if i == 0 {
            first = text.clone();
            check(&b, "hotline-refused-en").await;
        }
    }
    let text = hotline_call(&w, &b, "RX100002", locked_password.expose()).await;
    assert_eq!(text, first, "locked: the same answer as a wrong password");
    assert!(w.ocsp(&locked).await.contains(": good"), "not revoked");

    // The RA officer sees the lock, and a new password opens the path again.
    sign_in(&w, &b, &w.radu).await;
    both_languages(&w, &b, "/desk/holders", "holders").await;
    b.goto(&format!("{}/desk/holders?lang=en", w.base)).await;
    let field = b.css("#document_number").await;
    field.send_keys("RX100002").await.unwrap();
    b.enter_and_wait(&field).await;
    let text = b.text().await;
    assert!(text.contains(&locked.serial) && text.contains("locked after wrong passwords"), "{text}");
    check(&b, "holders-locked-en").await;
    b.click_and_wait(&b.css("form[action$='/revocation-password'] button").await).await;
    let new_password = b.css("#password").await.text().await.unwrap();
    assert!(new_password.len() == 8 && new_password.bytes().all(|c| c.is_ascii_digit()), "{new_password}");
    check(&b, "password-en").await;
    sign_in(&w, &b, &w.anna).await;
    let text = hotline_call(&w, &b, "RX100002", &new_password).await;
    assert!(text.contains(&locked.serial), "the new password works: {text}");

    // RA queue: two paid orders, oldest promise first; a day later both are overdue.
    let first_order = w.paid_order(3, "RO300003", "ioana3@example.ro").await;
    w.clock.set(w.clock.now() + time::Duration::minutes(5));
    let second_order = w.paid_order(4, "RO400004", "ioana4@example.ro").await;
    sign_in(&w, &b, &w.radu).await;
    both_languages(&w, &b, "/desk/ra", "ra-queue").await;
    b.goto(&format!("{}/desk/ra?lang=en", w.base)).await;
    let links = b.driver.find_all(By::Css("tbody a")).await.unwrap();
    let hrefs: Vec<String> = {
        let mut v = Vec::new();
        for l in &links {
            v.push(l.attr("href").await.unwrap().unwrap());
        }
        v
    };
    assert_eq!(hrefs, vec![format!("/desk/ra/orders/{first_order}"), format!("/desk/ra/orders/{second_order}")]);
    assert!(b.driver.find_all(By::Css("td.overdue")).await.unwrap().is_empty(), "none overdue yet");
    w.clock.set(w.clock.now() + time::Duration::hours(23) + time::Duration::minutes(50));
    // Nearly a day later the idle session has ended (15 minutes): sign in again.
    let radu = qcert_tests::desk::session_cookie(&w.ca, &w.base, "radu").await;
    sign_in(&w, &b, &radu).await;
    b.goto(&format!("{}/desk/ra?lang=en", w.base)).await;
    assert!(b.driver.find_all(By::Css("td.overdue")).await.unwrap().is_empty(), "{}", b.text().await);
    // Twelve minutes on, a plain reload shows both past their promise.
    w.clock.set(w.clock.now() + time::Duration::minutes(12));
    b.driver.refresh().await.unwrap();
    let text = b.text().await;
    assert_eq!(
        b.driver.find_all(By::Css("td.overdue")).await.unwrap().len(),
        2,
        "a plain reload shows the present: {text}"
    );
    assert!(b.text().await.contains("2 are past the 24-hour promise"));
    check(&b, "ra-queue-overdue-en").await;

    // Approve the first (the officer types the document number checked).
    both_languages(&w, &b, &format!("/desk/ra/orders/{first_order}"), "ra-order").await;
    b.goto(&format!("{}/desk/ra/orders/{first_order}?lang=en", w.base)).await;
    let text = b.text().await;
    assert!(text.contains("Ioana") && text.contains(&cnp(3)) && text.contains("+40712345678"), "{text}");
    assert!(text.contains("identity card") && text.contains("order.paid"), "{text}");
    b.css("form[action$='/approval'] input[name=document_number]").await.send_keys("RO300004").await.unwrap();
    b.click_and_wait(&b.css("form[action$='/approval'] button").await).await;
    let text = b.text().await;
    assert!(text.contains("is not the one given with the order") && !text.contains("RO300004"), "refused: {text}");
    check(&b, "ra-order-wrong-document-en").await;
    b.goto(&format!("{}/desk/ra/orders/{first_order}?lang=en", w.base)).await;
    b.css("form[action$='/approval'] input[name=document_number]").await.send_keys("RO300003").await.unwrap();
    b.click_and_wait(&b.css("form[action$='/approval'] button").await).await;
    let text = b.text().await;
    assert!(text.contains("Approved") && text.contains("order.approve"), "{text}");
    check(&b, "ra-order-approved-en").await;

    // Reject the second, with a reason the holder is mailed.
    b.goto(&format!("{}/desk/ra/orders/{second_order}?lang=en", w.base)).await;
    b.css("#reason").await.send_keys("The <video> call broke off twice").await.unwrap();
    b.click_and_wait(&b.css("form[action$='/rejection'] button").await).await;
    let text = b.text().await;
    assert!(text.contains("Rejected") && text.contains("The <video> call broke off twice"), "{text}");
    check(&b, "ra-order-rejected-en").await;
    w.deliver().await;
    let mails = w.sink.received();
    let to = |addr: &str| mails.iter().filter(|m| m.rcpt_tos.iter().any(|r| r == addr)).collect::<Vec<_>>();
    let approved = to("ioana3@example.ro");
    assert!(
        approved.iter().any(|m| m.subject.as_deref().unwrap_or("").contains("CSR")),
        "approval mail: {:?}",
        approved.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let rejected = to("ioana4@example.ro");
    assert!(
        rejected.iter().any(|m| m.body.as_deref().unwrap_or("").contains("The <video> call broke off twice")),
        "rejection mail carries the reason: {:?}",
        rejected.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // Admin: the audit viewer (chain check on top, filters) and the summary.
    // (The clock moved a day: a fresh session.)
    let ada = qcert_tests::desk::session_cookie(&w.ca, &w.base, "ada").await;
    sign_in(&w, &b, &ada).await;
    both_languages(&w, &b, "/desk/admin/audit", "audit").await;
    b.goto(&format!("{}/desk/admin/audit?lang=en&subject={}", w.base, issued.serial)).await;
    let text = b.text().await;
    assert!(text.contains("The chain is intact") && text.contains("hotline") && text.contains("anna"), "{text}");
    assert!(!text.contains(&second_order), "filtered by subject");
    b.goto(&format!("{}/desk/admin/audit?lang=en&actor=ra-officer:radu", w.base)).await;
    let text = b.text().await;
    assert!(text.contains("order.approve") && !text.contains("anna"), "filtered by actor: {text}");
    check(&b, "audit-actor-en").await;
    both_languages(&w, &b, "/desk/admin/metrics", "metrics").await;
    b.goto(&format!("{}/desk/admin/metrics?lang=en", w.base)).await;
    assert!(b.text().await.contains("Summary"));

    // Roles: the admin may not use the hotline page.
    b.goto(&format!("{}/desk/hotline?lang=en", w.base)).await;
    assert!(b.text().await.contains("Not allowed"));

    b.quit().await;
    w.server.task.abort();
}
on_both_stores!(desk_pages_work_in_a_browser_in_both_languages);
