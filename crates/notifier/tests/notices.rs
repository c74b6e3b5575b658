#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The CA core's `Notices` seam on the outbox: a lifecycle notice sent
//! through `OutboxNotices` reaches a real SMTP server (aiosmtpd,
//! `tests/judges/smtp_sink.py`) in the holder's language, once per dedupe
//! key; refused notices store nothing and never echo their values.

use std::path::Path;
use std::sync::Arc;

use qcert_ca_core::notice::{Notice, NoticeKind, Notices};
use qcert_ca_core::{CaError, Clock, FixedClock};
use qcert_notifier::{render, vars, DeliveryReport, Language, Outbox, OutboxNotices, Template};
use qcert_tests::smtp::{free_port, smtp_dispatcher, Received, SmtpSink};
use qcert_tests::{on_both_stores, test_clock, test_vault, TestDb};

/// What the SMTP server received, by recipient.
fn received(dir: &Path) -> Vec<Received> {
    let mut out = qcert_tests::smtp::received(dir);
    out.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
    out
}

fn report(sent: u32) -> DeliveryReport {
    DeliveryReport { sent, ..DeliveryReport::default() }
}

fn secret_delivery(order: &str, to: &str, language: &str) -> Notice {
    Notice {
        dedupe_key: format!("secret-delivery:{order}"),
        kind: NoticeKind::SecretDelivery,
        to: to.into(),
        language: language.into(),
        vars: vec![
            ("given_name", "Ștefan".into()),
            ("delivery_url", format!("https://pki.qcert-demo.eu/d/{order}-capability")),
        ],
    }
}

fn notices(db: &TestDb, clock: &Arc<FixedClock>) -> OutboxNotices {
    let clock: Arc<dyn Clock> = clock.clone();
    OutboxNotices::new(db.registry.clone(), test_vault(), clock)
}

async fn notices_reach_the_smtp_server_in_the_holders_language(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = smtp_dispatcher(&db.registry, port);
    // Through the trait object, as the CA core holds it.
    let n: Arc<dyn Notices> = Arc::new(notices(db, &clock));

    n.send(secret_delivery("o-1", "ana@example.ro", "ro")).await.unwrap();
    n.send(secret_delivery("o-2", "bob@example.org", "en")).await.unwrap();
    n.send(Notice {
        dedupe_key: "authenticator-invitation:o-3".into(),
        kind: NoticeKind::AuthenticatorInvitation,
        to: "cleo@example.ro".into(),
        language: "ro".into(),
        vars: vec![
            ("given_name", "Cleo".into()),
            ("order_id", "o-3".into()),
            ("enrol_url", "https://pki.qcert-demo.eu/enrol/o-3".into()),
        ],
    })
    .await
    .unwrap();
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 3);
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(3));

    let expected =
        |template, language, v: &[(&str, &str)]| render(template, language, &vars(v.iter().copied())).unwrap();
    let ro = expected(
        Template::SecretDelivery,
        Language::Ro,
        &[("given_name", "Ștefan"), ("delivery_url", "https://pki.qcert-demo.eu/d/o-1-capability")],
    );
    let en = expected(
        Template::SecretDelivery,
        Language::En,
        &[("given_name", "Ștefan"), ("delivery_url", "https://pki.qcert-demo.eu/d/o-2-capability")],
    );
    let invitation = expected(
        Template::AuthenticatorInvitation,
        Language::Ro,
        &[("given_name", "Cleo"), ("order_id", "o-3"), ("enrol_url", "https://pki.qcert-demo.eu/enrol/o-3")],
    );
    assert_eq!(ro.subject, "Codurile secrete ale certificatului dumneavoastră sunt pregătite");
    assert_eq!(en.subject, "Your certificate secrets are ready");

    let got = received(dir.path());
    let subjects: Vec<(String, Option<String>)> =
        got.iter().map(|r| (r.rcpt_tos.join(","), r.subject.clone())).collect();
    assert_eq!(
        subjects,
        vec![
            ("ana@example.ro".to_owned(), Some(ro.subject)),
            ("bob@example.org".to_owned(), Some(en.subject)),
            ("cleo@example.ro".to_owned(), Some(invitation.subject)),
        ]
    );
    let body = got[0].body.as_deref().unwrap().replace("\r\n", "\n");
    assert!(body.contains("Stimate/Stimată Ștefan") && body.contains("/d/o-1-capability"), "{body}");
    assert!(got[2].body.as_deref().unwrap().contains("https://pki.qcert-demo.eu/enrol/o-3"));
    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0);
}
on_both_stores!(notices_reach_the_smtp_server_in_the_holders_language);

async fn the_same_dedupe_key_twice_is_delivered_once(db: &TestDb) {
    let clock = test_clock();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = SmtpSink::start_on(port, dir.path()).await;
    let d = smtp_dispatcher(&db.registry, port);
    let n = notices(db, &clock);

    let first = n.enqueue(secret_delivery("o-9", "dana@example.ro", "ro")).await.unwrap();
    assert!(!first.already_existed);
    // A retry of the same step, even in another language: nothing new.
    n.send(secret_delivery("o-9", "dana@example.ro", "en")).await.unwrap();
    assert_eq!(d.run_once(clock.now()).await.unwrap(), report(1));
    // And after it was sent.
    clock.advance(time::Duration::hours(1));
    let again = n.enqueue(secret_delivery("o-9", "dana@example.ro", "ro")).await.unwrap();
    assert_eq!((again.id, again.already_existed), (first.id, true));
    assert_eq!(d.run_once(clock.now()).await.unwrap(), DeliveryReport::default());

    let got = received(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].subject.as_deref(), Some("Codurile secrete ale certificatului dumneavoastră sunt pregătite"));
}
on_both_stores!(the_same_dedupe_key_twice_is_delivered_once);

async fn refused_notices_store_nothing_and_keep_values_out_of_errors(db: &TestDb) {
    let clock = test_clock();
    let n = notices(db, &clock);

    // A value that would break the subject, carrying a capability link.
    let mut bad = secret_delivery("o-5", "eve@example.ro", "ro");
    bad.vars[0].1 = "Eve\r\nBcc: x@example.org".into();
    bad.vars[1].1 = "https://pki.qcert-demo.eu/d/o-5-capability\u{7}".into();
    let e = n.send(bad).await.unwrap_err();
    assert!(matches!(e, CaError::InvalidInput(_)), "{e:?}");
    assert!(!e.to_string().contains("capability") && !e.to_string().contains("Bcc"), "{e}");

    let mut missing = secret_delivery("o-6", "eve@example.ro", "ro");
    missing.vars.pop();
    let e = n.send(missing).await.unwrap_err();
    assert!(matches!(e, CaError::InvalidInput(_)) && e.to_string().contains("delivery_url"), "{e}");

    let mut extra = secret_delivery("o-7", "eve@example.ro", "en");
    extra.vars.push(("order_id", "o-7".into()));
    assert!(matches!(n.send(extra).await, Err(CaError::InvalidInput(_))));

    for to in ["", "eve", "eve@localhost", "eve @example.ro"] {
        let e = n.send(secret_delivery("o-8", to, "en")).await.unwrap_err();
        assert!(matches!(e, CaError::InvalidInput(_)), "{to:?}: {e:?}");
    }
    let mut no_key = secret_delivery("o-8", "eve@example.ro", "en");
    no_key.dedupe_key = " ".into();
    assert!(matches!(n.send(no_key).await, Err(CaError::InvalidInput(_))));

    assert_eq!(Outbox::unsent(&db.registry).await.unwrap(), 0, "nothing stored");
}
on_both_stores!(refused_notices_store_nothing_and_keep_values_out_of_errors);
