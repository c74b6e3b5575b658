#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The hotline under attack, over HTTP on both stores: concurrent guesses
//! never get more than 5 passwords checked per certificate; the Argon2id
//! work does not tell how many certificates a document has; the per-agent
//! limit is a sliding window; every refusal carries the same advice; and
//! holders are mailed when their certificate is revoked.

use std::sync::Arc;

use qcert_ca_core::desk::{DeskSettings, DocumentNumber, RevocationDesk, RevocationPassword};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::{Ca, Clock, FixedClock, Holder, Issued, KeySource, ValidityYears};
use qcert_tests::smtp::{smtp_dispatcher, SmtpSink};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

struct World {
    ca: Ca,
    clock: Arc<FixedClock>,
    desk: RevocationDesk,
    server: Server,
    http: reqwest::Client,
    hotline: String,
    ra: String,
}

/// Cheap Argon2id (the tests count checks, they do not time them).
fn settings(per_minute: u32) -> DeskSettings {
    DeskSettings {
        argon2_memory_kib: 1024,
        argon2_iterations: 1,
        agent_attempts_per_minute: per_minute,
        ..DeskSettings::default()
    }
}

async fn world(db: &TestDb, settings: DeskSettings) -> World {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk_with(&ca, settings).await;
    let server = serve_desk(desk.clone()).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let hotline = ops.add("test", "anna", Role::HotlineAgent).await.unwrap().expose().to_owned();
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    World { ca, clock, desk, server, http: reqwest::Client::new(), hotline, ra }
}

fn holder(n: u32) -> Holder {
    Holder::parse("Elena", "Marin", &format!("elena{n}@example.ro"), "RO", &cnp(n)).unwrap()
}

/// 8 digits that are not `right`.
fn wrong(i: u32, right: &RevocationPassword) -> String {
    let mut n = 10_000_000 + i * 7919;
    while format!("{n:08}") == right.expose() {
        n += 1;
    }
    format!("{n:08}")
}

impl World {
    async fn issue(&self, n: u32, document: &str) -> (Issued, RevocationPassword) {
        let doc = DocumentNumber::parse(document).unwrap();
        let key = KeySource::Csr(openssl_csr(CsrKey::P256));
        self.desk.issue("qcp-n-qscd", &holder(n), ValidityYears::new(1).unwrap(), key, &doc).await.expect("issue")
    }

    /// One hotline attempt: status, problem or answer, Retry-After.
    async fn hotline(&self, document: &str, password: &str) -> (StatusCode, Value, Option<u64>) {
        hotline_call(&self.http, &self.server.base, &self.hotline, document, password).await
    }

    /// All `passwords` tried at once, one request each.
    async fn at_once(&self, document: &str, passwords: Vec<String>) -> Vec<(StatusCode, Value)> {
        let tasks: Vec<_> = passwords
            .into_iter()
            .map(|p| {
                let (http, base, token, doc) =
                    (self.http.clone(), self.server.base.clone(), self.hotline.clone(), document.to_owned());
                tokio::spawn(async move {
                    let (s, v, _) = hotline_call(&http, &base, &token, &doc, &p).await;
                    (s, v)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    /// The audit entries about `serial`'s hotline attempts: (failures with
    /// their counts, refusals, locks).
    async fn hotline_audit(&self, serial: &str) -> (Vec<i64>, usize, usize) {
        let rows = self.ca.registry().audit_page(0, 10_000).await.unwrap();
        let mine = rows.iter().filter(|r| r.subject == serial);
        let mut counts = Vec::new();
        let (mut refused, mut locks) = (0, 0);
        for r in mine {
            match (r.action.as_str(), r.outcome.as_str()) {
                ("hotline.attempt", "failure") => {
                    let (n, of) = r
                        .detail
                        .strip_prefix("wrong revocation password (")
                        .and_then(|d| d.strip_suffix(')'))
                        .and_then(|d| d.split_once(" of "))
                        .unwrap_or_else(|| panic!("detail: {}", r.detail));
                    let (n, of): (i64, i64) = (n.parse().unwrap(), of.parse().unwrap());
                    assert!((1..=of).contains(&n), "never more than the limit: {}", r.detail);
                    counts.push(n);
                }
                ("hotline.attempt", "refused") => refused += 1,
                ("hotline.lock", _) => locks += 1,
                _ => {}
            }
        }
        counts.sort_unstable();
        (counts, refused, locks)
    }

    async fn metrics_checks(&self) -> u64 {
        let text = self.http.get(format!("{}/metrics", self.server.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("qcert_hotline_password_checks_total "))
            .expect("the counter is exported")
            .trim()
            .parse()
            .unwrap()
    }
}

async fn hotline_call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    document: &str,
    password: &str,
) -> (StatusCode, Value, Option<u64>) {
    let body = json!({"document_number": document, "revocation_password": password, "reason": "keyCompromise"});
    let r =
        http.post(format!("{base}/api/v1/hotline/revocations")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = r.status();
    let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
    if !status.is_success() {
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    (status, r.json().await.unwrap(), retry)
}

async fn nineteen_wrong_and_the_right_one_at_once(db: &TestDb) {
    let w = world(db, settings(100)).await;
    let (a, pw) = w.issue(1, "RX100001").await;
    let mut passwords: Vec<String> = (0..19).map(|i| wrong(i, &pw)).collect();
    passwords.insert(9, pw.expose().to_owned());
    let answers = w.at_once("RX100001", passwords).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK || *s == StatusCode::FORBIDDEN), "{answers:?}");
    let revoked = w.ca.registry().revocation(&a.serial).await.unwrap().is_some();
    assert_eq!(ok, usize::from(revoked));

    let (failures, refused, locks) = w.hotline_audit(&a.serial).await;
    // An attempt that looked the document up after the revocation had
    // committed finds no revocable certificate (audited without a serial).
    let rows = w.ca.registry().audit_page(0, 10_000).await.unwrap();
    let too_late = rows.iter().filter(|r| r.action == "hotline.attempt" && r.subject == "-").count();
    assert!(revoked || too_late == 0, "only after a revocation: {too_late}");
    // Every attempt is either checked (a failure, or the revocation), refused
    // unchecked, or too late.
    assert_eq!(failures.len() + refused + too_late + usize::from(revoked), 20, "{failures:?} {refused} {too_late}");
    assert!(failures.len() + usize::from(revoked) <= 5, "at most 5 passwords checked: {failures:?}");
    let mut distinct = failures.clone();
    distinct.dedup();
    assert_eq!(distinct, failures, "each count is claimed once: {failures:?}");
    if revoked {
        // The right one won a slot: it revoked, and reset the count.
        assert!(locks <= 1);
    } else {
        assert_eq!(failures, vec![1, 2, 3, 4, 5], "the right one found no slot: 5 wrong ones were checked");
        assert_eq!(locks, 1, "the 5th counted wrong one locks, audited once");
        let cred = w.ca.registry().credential(&a.serial).await.unwrap().unwrap();
        assert!(cred.locked_at.is_some() && cred.failed_attempts == 5, "{cred:?}");
    }
    w.server.task.abort();
}
on_both_stores!(nineteen_wrong_and_the_right_one_at_once);

async fn the_right_one_after_the_fifth_counted_is_refused(db: &TestDb) {
    let w = world(db, settings(100)).await;
    let (a, pw) = w.issue(1, "RX100002").await;
    let answers = w.at_once("RX100002", (0..20).map(|i| wrong(i, &pw)).collect()).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::FORBIDDEN), "{answers:?}");
    let (failures, refused, locks) = w.hotline_audit(&a.serial).await;
    assert_eq!((failures, refused, locks), (vec![1, 2, 3, 4, 5], 15, 1));
    let checks_before = w.desk.password_checks();

    let (s, right, _) = w.hotline("RX100002", pw.expose()).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "locked: the right password is refused");
    assert!(w.ca.registry().revocation(&a.serial).await.unwrap().is_none());
    let cred = w.ca.registry().credential(&a.serial).await.unwrap().unwrap();
    assert_eq!((cred.failed_attempts, cred.locked_at.is_some()), (5, true));
    let (_, refused, locks) = w.hotline_audit(&a.serial).await;
    assert_eq!((refused, locks), (16, 1), "refused unchecked, locked once");
    // The refusal (and its advice) is the same for a lock, a wrong password and an unknown document.
    let (b, pw_b) = w.issue(2, "RX100003").await;
    let (_, wrong_pw, _) = w.hotline("RX100003", &wrong(1, &pw_b)).await;
    let (_, unknown, _) = w.hotline("ZZ999999", pw.expose()).await;
    assert_eq!(right, wrong_pw);
    assert_eq!(right, unknown);
    let advice = right["advice"].as_str().expect("advice for the caller");
    assert!(advice.contains("in person") && advice.contains("ID document") && advice.contains("signed"), "{advice}");
    assert!(!advice.contains("lock"), "the advice does not say why: {advice}");
    assert!(w.ca.registry().revocation(&b.serial).await.unwrap().is_none());
    // Locked, wrong and unknown each cost the same checks (all dummies for the locked one).
    assert_eq!(w.desk.password_checks() - checks_before, 3 * 2);
    w.server.task.abort();
}
on_both_stores!(the_right_one_after_the_fifth_counted_is_refused);

async fn every_document_costs_the_same_argon2_work(db: &TestDb) {
    let w = world(db, settings(100)).await;
    let (_, one) = w.issue(1, "RX200001").await;
    let (_, two_a) = w.issue(2, "RX200002").await;
    let (two_b_cert, two_b) = w.issue(3, "RX200002").await;
    for i in 4..7 {
        w.issue(i, "RX200003").await;
    }
    let k = DeskSettings::default().hotline_checks_per_attempt as u64;
    assert_eq!(k, 2);
    let mut cost = Vec::new();
    for (doc, pw) in [
        ("ZZ000000", "12345678".to_owned()),
        ("RX200001", wrong(1, &one)),
        ("RX200002", wrong(2, &two_a)),
        ("RX200002", two_b.expose().to_owned()),
    ] {
        let (desk0, metrics0) = (w.desk.password_checks(), w.metrics_checks().await);
        let (s, _, _) = w.hotline(doc, &pw).await;
        assert!(s == StatusCode::FORBIDDEN || s == StatusCode::OK);
        let (desk1, metrics1) = (w.desk.password_checks(), w.metrics_checks().await);
        assert_eq!(desk1 - desk0, metrics1 - metrics0, "/metrics shows the desk's counter");
        cost.push(desk1 - desk0);
    }
    assert_eq!(cost, vec![k; 4], "unknown, one certificate, two (wrong and right) cost the same");
    assert!(w.ca.registry().revocation(&two_b_cert.serial).await.unwrap().is_some());
    // Beyond K distinct passwords, every one is checked (so each stays revocable by phone).
    let before = w.desk.password_checks();
    w.hotline("RX200003", "00000000").await;
    assert_eq!(w.desk.password_checks() - before, 3);
    w.server.task.abort();
}
on_both_stores!(every_document_costs_the_same_argon2_work);

async fn agent_limit_is_a_sliding_window_across_a_minute_boundary(db: &TestDb) {
    let w = world(db, settings(5)).await;
    let minute = w.clock.now().unix_timestamp() / 60 * 60;
    let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(minute + s).unwrap();
    w.clock.set(at(59));
    for _ in 0..3 {
        assert_eq!(w.hotline("ZZ000001", "12345678").await.0, StatusCode::FORBIDDEN);
    }
    w.clock.set(at(60));
    for _ in 0..2 {
        assert_eq!(w.hotline("ZZ000001", "12345678").await.0, StatusCode::FORBIDDEN);
    }
    // A fixed minute would allow 5 more from :00; the window holds the 5 made since :59.
    let (s, body, retry) = w.hotline("ZZ000001", "12345678").await;
    assert_eq!((s, body["type"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("urn:qcert:problem:rate-limited")));
    assert_eq!(retry, Some(59), "the attempts of :59 leave the window in 59 s");
    w.clock.set(at(62));
    let (s, _, retry) = w.hotline("ZZ000001", "12345678").await;
    assert_eq!((s, retry), (StatusCode::TOO_MANY_REQUESTS, Some(57)));
    // When the :59 attempts leave the window, 3 attempts are free again, no more.
    w.clock.set(at(119));
    for _ in 0..3 {
        assert_eq!(w.hotline("ZZ000001", "12345678").await.0, StatusCode::FORBIDDEN);
    }
    let (s, _, retry) = w.hotline("ZZ000001", "12345678").await;
    assert_eq!((s, retry), (StatusCode::TOO_MANY_REQUESTS, Some(1)), "the :00 attempts leave at 2:00");
    w.server.task.abort();
}
on_both_stores!(agent_limit_is_a_sliding_window_across_a_minute_boundary);

async fn holders_are_mailed_when_revoked_by_the_hotline_or_in_person(db: &TestDb) {
    let w = world(db, settings(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(w.ca.registry(), sink.port);
    let (a, pw_a) = w.issue(1, "RX300001").await;
    let (b, _) = w.issue(2, "RX300002").await;

    let (s, body, _) = w.hotline("RX300001", pw_a.expose()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let ra_path = format!("/api/v1/ra/certificates/{}/revocation", b.serial);
    let ra_body = json!({"document_number": "RX300002", "reason": "affiliationChanged"});
    let r = w.http.post(format!("{}{ra_path}", w.server.base)).bearer_auth(&w.ra).json(&ra_body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Revoking again (already revoked) mails nothing more.
    let r = w.http.post(format!("{}{ra_path}", w.server.base)).bearer_auth(&w.ra).json(&ra_body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    assert_eq!(dispatcher.run_once(w.clock.now()).await.unwrap().sent, 2);
    let mails = sink.received();
    assert_eq!(mails.len(), 2, "one mail per revocation");
    let now = w.clock.now();
    let when = format!("{} {} {}, at {:02}:{:02} UTC", now.day(), now.month(), now.year(), now.hour(), now.minute());
    for (issued, to, why, how) in [
        (&a, "elena1@example.ro", "the private key may be compromised", "by phone, through the revocation hotline"),
        (&b, "elena2@example.ro", "no longer right", "in person, by a registration officer"),
    ] {
        let m = mails.iter().find(|m| m.rcpt_tos == vec![to.to_owned()]).unwrap_or_else(|| panic!("{to}: {mails:?}"));
        let subject = m.subject.as_deref().unwrap();
        assert_eq!(subject, format!("Your qualified certificate {} has been revoked", issued.serial));
        let text = m.body.as_deref().unwrap();
        assert!(text.contains("Dear Elena"), "{text}");
        assert!(text.contains(&when), "when, in words: {when}\n{text}");
        assert!(text.contains(why) && text.contains(how), "why and how:\n{text}");
        assert!(!text.contains(pw_a.expose()) && !text.contains("RX300001") && !text.contains("anna"), "{text}");
    }
    sink.stop();
    w.server.task.abort();
}
on_both_stores!(holders_are_mailed_when_revoked_by_the_hotline_or_in_person);

/// A certificate ordered in Romanian: the revocation mail is in Romanian,
/// with the date as people write it there.
async fn an_ordered_certificate_is_revoked_in_the_orders_language(db: &TestDb) {
    let w = world(db, settings(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start(dir.path()).await;
    let dispatcher = smtp_dispatcher(w.ca.registry(), sink.port);
    let form = json!({
        "product": "TOKEN", "years": 1, "given_name": "Ioana", "surname": "Popescu", "email": "ioana@example.ro",
        "country": "RO", "national_id": cnp(400), "id_document_number": "RX 400001", "publish": false,
        "language": "ro"
    });
    let url = |p: &str| format!("{}{p}", w.server.base);
    let r = w.http.post(url("/api/v1/orders")).header("idempotency-key", "k-ro").json(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let (id, order_url) = (created["order_id"].as_str().unwrap(), created["order_url"].as_str().unwrap());
    let event = serde_json::to_vec(&json!({"event_id": "evt-ro", "order_id": id, "status": "paid"})).unwrap();
    let sig = qcert_ca_core::payment::sign_webhook(
        &qcert_ca_core::payment::WebhookKey::from_bytes([7u8; 32]),
        &event,
        w.clock.now(),
    );
    let r = w
        .http
        .post(url("/api/v1/payments/webhook"))
        .header("qcert-signature", sig)
        .header("content-type", "application/json")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csr = qcert_ca_core::pem("CERTIFICATE REQUEST", &openssl_csr(CsrKey::P256));
    let r = w.http.put(format!("{order_url}/csr")).body(csr).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = w
        .http
        .post(url(&format!("/api/v1/ra/orders/{id}/approval")))
        .bearer_auth(&w.ra)
        .json(&json!({"document_number": "RX400001"}))
        .send()
        .await
        .unwrap();
    let approved: Value = r.json().await.unwrap();
    let serial = approved["serial"].as_str().unwrap_or_else(|| panic!("{approved}")).to_owned();

    let r = w
        .http
        .post(url(&format!("/api/v1/ra/certificates/{serial}/revocation")))
        .bearer_auth(&w.ra)
        .json(&json!({"document_number": "RX400001", "reason": "keyCompromise"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    dispatcher.run_once(w.clock.now()).await.unwrap();
    let mails = sink.received();
    let revoked: Vec<_> =
        mails.iter().filter(|m| m.subject.as_deref().unwrap_or("").contains("a fost revocat")).collect();
    assert_eq!(revoked.len(), 1, "{:?}", mails.iter().map(|m| &m.subject).collect::<Vec<_>>());
    let text = revoked[0].body.as_deref().unwrap();
    let now = w.clock.now();
    let when = format!("{}, ora {:02}:{:02} UTC", qcert_ca_core::clock::long_date(now, true), now.hour(), now.minute());
    assert!(text.contains("Stimate/Stimată Ioana") && text.contains(&when), "{when}\n{text}");
    assert!(text.contains("cheia privată ar putea fi compromisă") && text.contains("în persoană"), "{text}");
    sink.stop();
    w.server.task.abort();
}
on_both_stores!(an_ordered_certificate_is_revoked_in_the_orders_language);
