#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Mail delivery end to end: the outbox on SQLite and PostgreSQL, a real
//! SMTP server (aiosmtpd, `tests/judges/smtp_sink.py`) and the file outbox.
//! Time is a `FixedClock` moved by the tests; nothing sleeps but the bounded
//! wait for the SMTP server to listen.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use qcert_ca_core::holder::Email;
use qcert_ca_core::{Clock, FixedClock, Registry};
use qcert_notifier::{
    message_id, render, vars, DeliveryPolicy, DeliveryReport, Dispatcher, Language, MailConfig, NewMail, Outbox,
    SmtpConfig, Template, Transport, TransportConfig,
};
use qcert_tests::smtp::{free_port, received, smtp_config, smtp_transport, SmtpSink, FROM};
use qcert_tests::{on_both_stores, test_clock, test_vault, TestDb};
use secrecy::SecretString;
use time::Duration;

const FROM_DOMAIN: &str = "pki.qcert-demo.eu";

// ---------------------------------------------------------------------------
// The SMTP server (shared: `qcert_tests::smtp`)

/// Every recipient that got mail, checking none got the same mail twice.
fn recipients_once(dir: &Path) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for r in received(dir) {
        for to in r.rcpt_tos {
            assert!(seen.insert(to.clone()), "{to} received a mail twice");
        }
    }
    seen
}

// ---------------------------------------------------------------------------
// Helpers

fn dispatcher(registry: &Registry, transport: Transport) -> Dispatcher {
    Dispatcher::new(registry.clone(), test_vault(), transport, DeliveryPolicy::default()).unwrap()
}

fn reminder(serial: &str, to: &str, language: Language) -> NewMail {
    NewMail {
        dedupe_key: format!("reminder-45:{serial}"),
        kind: "renewal-reminder-45".into(),
        to: Email::parse(to).unwrap(),
        language,
        template: Template::RenewalReminder,
        vars: vars([
            ("given_name", "Ștefan-Mițică Țăranu"),
            ("serial", serial),
            ("not_after", "2026-09-30"),
            ("deadline", "2026-09-27"),
            ("renewal_url", "https://pki.qcert-demo.eu/renew"),
        ]),
    }
}

fn report(sent: u32, failed: u32, deferred: u32) -> DeliveryReport {
    DeliveryReport { sent, failed, deferred, released: 0 }
}

fn crlf_to_lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

// ---------------------------------------------------------------------------
// Tests

async fn smtp_delivers_romanian_mail(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = dispatcher(&db.registry, smtp_transport(port));

    let mail = reminder("01ab", "Ana.Popescu@Example.RO", Language::Ro);
    let expected = render(mail.template, mail.language, &mail.vars).unwrap();
    let q = Outbox::enqueue(&db.registry, &test_vault(), mail, clock.now()).await.unwrap();
    assert!(!q.already_existed);
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 1);

    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default(), "nothing left to send");

    let got = received(dir.path());
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.rcpt_tos, vec!["Ana.Popescu@example.ro".to_owned()]);
    assert_eq!(r.mail_from, "noreply@pki.qcert-demo.eu");
    assert_eq!(r.subject.as_deref(), Some(expected.subject.as_str()));
    assert!(expected.subject.contains("dumneavoastră") && expected.subject.contains("reînnoiți"));
    // (The transfer adds a final line break.)
    let body = crlf_to_lf(r.body.as_deref().unwrap());
    assert_eq!(body.trim_end(), expected.body.trim_end());
    assert!(body.contains("Ștefan-Mițică Țăranu") && body.contains("comandați reînnoirea"), "{body}");
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(r.charset.as_deref(), Some("utf-8"));
    assert_eq!(r.auto_submitted.as_deref(), Some("auto-generated"));
    assert_eq!(r.message_id.as_deref(), Some(message_id(q.id, "reminder-45:01ab", FROM_DOMAIN).as_str()));
    // Encoded for transport: 7-bit lines, no raw UTF-8 on the wire.
    assert!(r.raw.is_ascii(), "the message was sent unencoded");

    let row = Outbox::get(&db.registry, q.id).await.unwrap().unwrap();
    assert_eq!(row.sent_at, Some(clock.now().unix_timestamp()));
    assert_eq!(row.attempts, 1);
    assert_eq!(row.language, "ro");
    assert_eq!((row.lease_until, row.failed_at, row.last_error), (None, None, None));
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0);
}
on_both_stores!(smtp_delivers_romanian_mail);

async fn same_dedupe_key_sends_once(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = dispatcher(&db.registry, smtp_transport(port));

    let first =
        Outbox::enqueue(&db.registry, &test_vault(), reminder("02cd", "ion@example.ro", Language::Ro), clock.now())
            .await
            .unwrap();
    // Same logical mail again, even with other content: a no-op.
    let mut again = reminder("02cd", "ion@example.ro", Language::En);
    again.vars.insert("not_after".into(), "2030-01-01".into());
    let second = Outbox::enqueue(&db.registry, &test_vault(), again, clock.now()).await.unwrap();
    assert_eq!((second.id, second.already_existed), (first.id, true));

    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));
    // And after it was sent.
    clock.advance(Duration::days(1));
    let third =
        Outbox::enqueue(&db.registry, &test_vault(), reminder("02cd", "ion@example.ro", Language::Ro), clock.now())
            .await
            .unwrap();
    assert_eq!((third.id, third.already_existed), (first.id, true));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default());

    let got = received(dir.path());
    assert_eq!(got.len(), 1);
    assert!(got[0].body.as_deref().unwrap().contains("2026-09-30"), "the first content won");
}
on_both_stores!(same_dedupe_key_sends_once);

async fn smtp_down_defers_then_delivers_once(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nobody listens yet
    let d = dispatcher(&db.registry, smtp_transport(port));
    let t0 = clock.now();

    let a =
        Outbox::enqueue(&db.registry, &test_vault(), reminder("0a", "a@example.ro", Language::Ro), t0).await.unwrap();
    let b =
        Outbox::enqueue(&db.registry, &test_vault(), reminder("0b", "b@example.ro", Language::En), t0).await.unwrap();

    // Server down: both deferred by the initial backoff, nothing lost.
    assert_eq!(d.run_once(t0).await.unwrap(), report(0, 0, 2));
    for id in [a.id, b.id] {
        let row = Outbox::get(&db.registry, id).await.unwrap().unwrap();
        assert_eq!((row.attempts, row.next_attempt_at, row.sent_at), (1, t0.unix_timestamp() + 30, None));
        assert!(row.last_error.as_deref().unwrap().starts_with("smtp:"), "{:?}", row.last_error);
        assert_eq!(row.lease_until, None);
    }
    // Not due again before the backoff ran out.
    assert_eq!(d.run_once(t0 + Duration::seconds(29)).await.unwrap(), DeliveryReport::default());
    // Still down 30 s later: the wait doubles.
    clock.advance(Duration::seconds(30));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(0, 0, 2));
    let row = Outbox::get(&db.registry, a.id).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.next_attempt_at), (2, clock.now().unix_timestamp() + 60));
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 2);

    // The server comes up; nothing is sent before the rows are due...
    let sink = SmtpSink::start_on(port, dir.path()).await;
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default());
    assert!(received(dir.path()).is_empty());
    // ...and each mail exactly once after.
    clock.advance(Duration::seconds(60));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(2, 0, 0));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default());
    assert_eq!(recipients_once(dir.path()), BTreeSet::from(["a@example.ro".to_owned(), "b@example.ro".to_owned()]));
    let row = Outbox::get(&db.registry, a.id).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.last_error), (3, None));

    // The server stops again: the next mail waits, then arrives once.
    sink.stop();
    let c = Outbox::enqueue(&db.registry, &test_vault(), reminder("0c", "c@example.ro", Language::Ro), clock.now())
        .await
        .unwrap();
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(0, 0, 1));
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    clock.advance(Duration::seconds(30));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));
    assert_eq!(recipients_once(dir.path()).len(), 3);
    let row = Outbox::get(&db.registry, c.id).await.unwrap().unwrap();
    assert_eq!((row.attempts, row.sent_at), (2, Some(clock.now().unix_timestamp())));
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0);
}
on_both_stores!(smtp_down_defers_then_delivers_once);

async fn racing_dispatchers_send_each_mail_once(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    // Two dispatchers, each with its own connection pool, as two processes have.
    let other = Registry::open(&db.url, 4).await.unwrap();
    let policy = DeliveryPolicy { batch_size: 3, ..DeliveryPolicy::default() };
    let d1 = Dispatcher::new(db.registry.clone(), test_vault(), smtp_transport(port), policy.clone()).unwrap();
    let d2 = Dispatcher::new(other.clone(), test_vault(), smtp_transport(port), policy).unwrap();

    let n = 40;
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let to = format!("holder{i}@example.ro");
        Outbox::enqueue(&db.registry, &test_vault(), reminder(&format!("{i:04x}"), &to, Language::Ro), clock.now())
            .await
            .unwrap();
        expected.insert(to);
    }
    let now = clock.now();
    let (r1, r2) = tokio::join!(
        tokio::spawn({
            let d1 = d1.clone();
            async move { d1.run_once(now).await.unwrap() }
        }),
        tokio::spawn({
            let d2 = d2.clone();
            async move { d2.run_once(now).await.unwrap() }
        }),
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    assert_eq!(r1.sent + r2.sent, n, "{r1:?} {r2:?}");
    assert_eq!((r1.failed + r2.failed, r1.deferred + r2.deferred), (0, 0), "{r1:?} {r2:?}");
    assert_eq!(recipients_once(dir.path()), expected);
    assert_eq!(received(dir.path()).len(), n as usize);
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0);
    other.close().await;
}
on_both_stores!(racing_dispatchers_send_each_mail_once);

async fn a_lease_keeps_other_dispatchers_off(db: &TestDb) {
    let clock = test_clock();
    let now = clock.now().unix_timestamp();
    let q = Outbox::enqueue(&db.registry, &test_vault(), reminder("0d", "d@example.ro", Language::En), clock.now())
        .await
        .unwrap();
    // A dispatcher claims the row and dies before sending.
    let claimed = db.registry.outbox_claim(now, now + 600, "dead-dispatcher", 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![q.id]);
    assert!(db.registry.outbox_claim(now, now + 600, "other", 10).await.unwrap().is_empty());
    // Only the owner may record a failure.
    assert!(!db.registry.outbox_defer(q.id, "other", now + 30, "x").await.unwrap());

    let dir = tempfile::tempdir().unwrap();
    let d = dispatcher(&db.registry, Transport::file(FROM, dir.path()).unwrap());
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default(), "leased");
    // Once the lease ran out, another dispatcher sends it.
    clock.advance(Duration::seconds(600));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));
    // The dead one's late failure report changes nothing.
    assert!(!db.registry.outbox_defer(q.id, "dead-dispatcher", now + 30, "x").await.unwrap());
    assert!(Outbox::get(&db.registry, q.id).await.unwrap().unwrap().sent_at.is_some());
}
on_both_stores!(a_lease_keeps_other_dispatchers_off);

async fn permanent_rejection_parks_the_mail(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = dispatcher(&db.registry, smtp_transport(port));

    let bad =
        Outbox::enqueue(&db.registry, &test_vault(), reminder("0e", "reject.me@example.ro", Language::Ro), clock.now())
            .await
            .unwrap();
    Outbox::enqueue(&db.registry, &test_vault(), reminder("0f", "ok@example.ro", Language::Ro), clock.now())
        .await
        .unwrap();
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 1, 0));
    let row = Outbox::get(&db.registry, bad.id).await.unwrap().unwrap();
    assert_eq!((row.failed_at, row.sent_at), (Some(clock.now().unix_timestamp()), None));
    assert!(row.last_error.as_deref().unwrap().contains("550"), "{:?}", row.last_error);
    // Parked: kept, not retried...
    clock.advance(Duration::days(1));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default());
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 1);
    // ...until an operator requeues it.
    assert_eq!(Outbox::requeue_failed(&db.registry, clock.now()).await.unwrap(), 1);
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(0, 1, 0));
    assert_eq!(recipients_once(dir.path()), BTreeSet::from(["ok@example.ro".to_owned()]));
}
on_both_stores!(permanent_rejection_parks_the_mail);

async fn smtp_login_and_a_wrong_password(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_with(port, dir.path(), &["--auth", "qcert:right-Pa55"]).await;
    let with_password = |p: &str| SmtpConfig {
        username: Some("qcert".into()),
        password: Some(SecretString::new(p.to_owned())),
        ..smtp_config(port)
    };

    let q = Outbox::enqueue(&db.registry, &test_vault(), reminder("10", "e@example.ro", Language::En), clock.now())
        .await
        .unwrap();
    let wrong = MailConfig {
        from: FROM.into(),
        transport: TransportConfig::Smtp(with_password("wrong-Pa55")),
        delivery: DeliveryPolicy::default(),
    };
    assert!(!format!("{wrong:?}").contains("wrong-Pa55"));
    let t = Transport::from_config(&wrong).unwrap();
    assert!(!format!("{t:?}").contains("wrong-Pa55"));
    let d = dispatcher(&db.registry, t);
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(0, 0, 1), "a login failure is not the mail's fault");
    let row = Outbox::get(&db.registry, q.id).await.unwrap().unwrap();
    let error = row.last_error.unwrap();
    assert!(error.contains("535") && !error.contains("Pa55"), "{error}");

    let d = dispatcher(&db.registry, Transport::smtp(FROM, &with_password("right-Pa55")).unwrap());
    clock.advance(Duration::seconds(30));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));
    let got = received(dir.path());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].auth_user.as_deref(), Some("qcert"));
}
on_both_stores!(smtp_login_and_a_wrong_password);

async fn file_transport_writes_eml(db: &TestDb) {
    let clock = test_clock();
    let home = tempfile::tempdir().unwrap();
    let outbox_dir = home.path().join("mail-outbox");
    let config: MailConfig = serde_json::from_value(serde_json::json!({
        "from": FROM,
        "transport": {"kind": "file", "dir": outbox_dir},
    }))
    .unwrap();
    let d = Dispatcher::new(
        db.registry.clone(),
        test_vault(),
        Transport::from_config(&config).unwrap(),
        config.delivery.clone(),
    )
    .unwrap();
    let mail = NewMail {
        dedupe_key: "issued:0123".into(),
        kind: "certificate-issued".into(),
        to: Email::parse("maria@example.ro").unwrap(),
        language: Language::Ro,
        template: Template::CertificateIssued,
        vars: vars([
            ("given_name", "Maria"),
            ("serial", "0123"),
            ("not_after", "2029-05-01"),
            ("certificate_url", "https://pki.qcert-demo.eu/c/0123"),
        ]),
    };
    let q = Outbox::enqueue(&db.registry, &test_vault(), mail, clock.now()).await.unwrap();
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 0, 0));

    let emls: Vec<PathBuf> = std::fs::read_dir(&outbox_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 1, "{emls:?}");
    let eml = String::from_utf8(std::fs::read(&emls[0]).unwrap()).unwrap();
    assert!(eml.contains(&format!("Message-ID: {}", message_id(q.id, "issued:0123", FROM_DOMAIN))), "{eml}");
    assert!(eml.contains("To: maria@example.ro"), "{eml}");
    assert!(eml.contains("Content-Type: text/plain; charset=utf-8"), "{eml}");
    assert!(eml.contains("Subject: Certificatul =?utf-8?b?"), "the Romanian subject is RFC 2047 encoded: {eml}");
    assert!(eml.contains("Content-Transfer-Encoding: quoted-printable") && eml.is_ascii(), "{eml}");
}
on_both_stores!(file_transport_writes_eml);

async fn run_loop_delivers_and_stops_on_shutdown(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let d = dispatcher(&db.registry, Transport::file(FROM, dir.path()).unwrap());
    Outbox::enqueue(&db.registry, &test_vault(), reminder("11", "f@example.ro", Language::En), clock.now())
        .await
        .unwrap();
    let clock: Arc<FixedClock> = clock;
    // Shutdown already requested: one pass, then return.
    d.run(clock, std::future::ready(())).await;
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
on_both_stores!(run_loop_delivers_and_stops_on_shutdown);

async fn enqueue_refuses_bad_input(db: &TestDb) {
    let clock = test_clock();
    let mut m = reminder("12", "g@example.ro", Language::Ro);
    m.vars.remove("renewal_url");
    assert!(Outbox::enqueue(&db.registry, &test_vault(), m, clock.now()).await.is_err());
    let mut m = reminder("12", "g@example.ro", Language::Ro);
    m.dedupe_key = " ".into();
    assert!(Outbox::enqueue(&db.registry, &test_vault(), m, clock.now()).await.is_err());
    let mut m = reminder("12", "g@example.ro", Language::Ro);
    m.vars.insert("serial".into(), "12\r\nBcc: x@example.org".into());
    assert!(Outbox::enqueue(&db.registry, &test_vault(), m, clock.now()).await.is_err());
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0, "nothing stored");
}
on_both_stores!(enqueue_refuses_bad_input);

async fn concurrent_claims_never_overlap(db: &TestDb) {
    let clock = test_clock();
    let now = clock.now().unix_timestamp();
    let n = 60;
    for i in 0..n {
        let to = format!("c{i}@example.ro");
        Outbox::enqueue(&db.registry, &test_vault(), reminder(&format!("c{i}"), &to, Language::En), clock.now())
            .await
            .unwrap();
    }
    let other = Registry::open(&db.url, 4).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..6 {
        let registry = if t % 2 == 0 { db.registry.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let owner = format!("claimer-{t}");
            let mut mine = Vec::new();
            loop {
                let batch = registry.outbox_claim(now, now + 600, &owner, 4).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|c| c.id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!((all.len(), distinct.len()), (n, n), "a row was claimed twice");
    other.close().await;
}
on_both_stores!(concurrent_claims_never_overlap);

async fn bodies_are_sealed_at_rest_and_erased_once_sent(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = dispatcher(&db.registry, smtp_transport(port));
    let capability = format!("cap-{}", qcert_tests::random_hex(16));
    let mut mail = reminder("13", "h@example.ro", Language::En);
    mail.vars.insert("renewal_url".into(), format!("https://pki.qcert-demo.eu/r/{capability}"));
    let q = Outbox::enqueue(&db.registry, &test_vault(), mail, clock.now()).await.unwrap();

    // Stored: sealed, never in clear.
    let row = Outbox::get(&db.registry, q.id).await.unwrap().unwrap();
    assert_eq!(row.body_text, "");
    assert!(row.body_sealed.as_ref().is_some_and(|b| b.len() > 100));
    let dump = String::from_utf8_lossy(&qcert_tests::database_contents(db).await).into_owned();
    assert!(dump.contains("h@example.ro"), "the dump is real");
    assert!(!dump.contains(&capability), "a capability link stored in clear");

    // A sealed body moved to another row does not open there: parked, not sent.
    let mut other = reminder("14", "i@example.ro", Language::En);
    other.vars.insert("renewal_url".into(), "https://pki.qcert-demo.eu/r/other".into());
    let o = Outbox::enqueue(&db.registry, &test_vault(), other, clock.now()).await.unwrap();
    let (a, b) = (q.id, o.id);
    qcert_tests::execute_sql(
        db,
        &format!("UPDATE outbox SET body_sealed = (SELECT body_sealed FROM outbox WHERE id = {a}) WHERE id = {b}"),
    )
    .await;

    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1, 1, 0));
    let got = received(dir.path());
    assert_eq!(got.len(), 1, "only the intact row went out");
    assert!(got[0].body.as_deref().unwrap().contains(&capability), "received intact");
    assert_eq!(got[0].rcpt_tos, vec!["h@example.ro".to_owned()]);
    let parked = Outbox::get(&db.registry, o.id).await.unwrap().unwrap();
    assert!(parked.failed_at.is_some() && parked.last_error.as_deref().unwrap().contains("does not open"));

    // Sent: metadata kept, body gone.
    let row = Outbox::get(&db.registry, q.id).await.unwrap().unwrap();
    assert!(row.sent_at.is_some());
    assert_eq!((row.body_text.as_str(), row.body_sealed.as_ref()), ("", None));
    assert_eq!((row.recipient.as_str(), row.kind.as_str()), ("h@example.ro", "renewal-reminder-45"));
    assert!(!row.subject.is_empty());
}
on_both_stores!(bodies_are_sealed_at_rest_and_erased_once_sent);
