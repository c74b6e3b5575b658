#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Retention of personal data (issue 18), on both stores, with the
//! injected clock: each record class disappears exactly when its period
//! ends (one second before it is still there), in the notifier's tick;
//! revocation status and the audit chain survive; a holder's export holds
//! every item and names operators by role only; erasure deletes what no
//! duty keeps, restricts the rest and names the exceptions.

use std::sync::Arc;

use qcert_ca_core::desk::{DocumentNumber, RevocationDesk};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::store::orders::NewOrder;
use qcert_ca_core::store::outbox::NewOutboxMail;
use qcert_ca_core::store::CertStatus;
use qcert_ca_core::{audit, Clock, FixedClock, Holder, Issued, KeySource, Reason, ValidityYears};
use qcert_notifier::Notifier;
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

const SECOND: Duration = Duration::seconds(1);

async fn issue(desk: &RevocationDesk, n: u32, doc: &str) -> Issued {
    let holder = Holder::parse("Ioana", "Popescu", &format!("ioana{n}@example.ro"), "RO", &cnp(n)).unwrap();
    let doc = DocumentNumber::parse(doc).unwrap();
    let csr = KeySource::Csr(openssl_csr(CsrKey::P256));
    desk.issue("qcp-n-qscd", &holder, ValidityYears::new(1).unwrap(), csr, &doc).await.unwrap().0
}

/// An order of the holder of `doc`, unpaid, at `now`.
async fn order(db: &TestDb, desk: &RevocationDesk, doc: &str, email: &str, now: i64) -> String {
    let id = random_hex(16);
    let key = desk.lookup_key().lookup_key(&DocumentNumber::parse(doc).unwrap()).unwrap();
    let new = NewOrder {
        id: &id,
        idempotency_key: None,
        request_hash: "h",
        product: "token",
        years: 1,
        given_name: "Ioana",
        surname: "Popescu",
        email,
        country: "RO",
        semantics_id: &format!("PNORO-{}", cnp(9)),
        document_key: &key,
        publish: true,
        language: "ro",
        phone: Some("+40712345678"),
        document_type: Some("id-card"),
    };
    assert!(db.registry.insert_order(&new, now).await.unwrap());
    id
}

/// Mark order `id` paid at `at` (with a payment event) and in `state`.
async fn paid(db: &TestDb, id: &str, state: &str, at: i64) {
    execute_sql(
        db,
        &format!("UPDATE orders SET state = '{state}', paid_at = {at}, payment_ref = 'ref-{id}' WHERE id = '{id}'"),
    )
    .await;
    execute_sql(
        db,
        &format!("INSERT INTO payment_events (event_id, order_id, received_at) VALUES ('evt-{id}', '{id}', {at})"),
    )
    .await;
}

/// Tie certificate `serial` to order `id` as issuance does.
async fn issued_for(db: &TestDb, serial: &str, id: &str) {
    execute_sql(db, &format!("UPDATE certificates SET issued_for = 'order:{id}' WHERE serial = '{serial}'")).await;
    execute_sql(db, &format!("UPDATE orders SET serial = '{serial}' WHERE id = '{id}'")).await;
}

#[derive(Debug, Clone)]
enum Record {
    /// A certificate's personal data and registration records.
    Registration(String),
    /// An order with its payment events.
    Order(String),
    /// A mail row.
    Mail(String),
}

impl Record {
    async fn present(&self, db: &TestDb) -> bool {
        let r = &db.registry;
        match self {
            Record::Registration(serial) => {
                let c = r.holder_certificate(serial).await.unwrap().expect("the certificate row is never deleted");
                // The status facts OCSP answers from stay in every case.
                let status = r.serial_status(serial).await.unwrap().unwrap();
                assert_eq!(status.status, CertStatus::Issued);
                let credential = r.credential(serial).await.unwrap().is_some();
                let personal = c.record.cert.given_name.is_some();
                assert_eq!(personal, c.erased_at.is_none());
                assert_eq!(personal, credential, "credential and personal data go together");
                assert_eq!(personal, c.record.der.as_ref().is_some_and(|d| !d.is_empty()));
                personal
            }
            Record::Order(id) => {
                let o = r.order(id).await.unwrap().is_some();
                let events = !r.payment_events_of(id).await.unwrap().is_empty();
                assert!(events <= o, "no payment event outlives its order");
                o
            }
            Record::Mail(key) => r.outbox_by_key(key).await.unwrap().is_some(),
        }
    }
}

async fn registration_records_and_orders_go_exactly_when_their_period_ends(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let orders = new_orders(&desk, [7u8; 32], TEST_BASE_URL);
    let policy = orders.retention();
    let notifier = Notifier::new(orders.clone()).with_sent_mail_retention(Duration::days(30));
    let r = &db.registry;
    let t0 = clock.now();
    let now = t0.unix_timestamp();

    // A certificate that expires (issued for an order), one revoked early,
    // one renewed (its renewal 200 days later).
    let a = issue(&desk, 1, "AB100001").await;
    let b = issue(&desk, 2, "AB100002").await;
    ca.revoke(&b.serial, Reason::CessationOfOperation, None, "ra-officer:radu").await.unwrap();
    let c = issue(&desk, 3, "AB100003").await;
    clock.advance(Duration::days(200));
    let d = issue(&desk, 3, "AB100003").await;
    execute_sql(
        db,
        &format!(
            "INSERT INTO renewals (id, serial, product, years, state, issue_at, new_serial, created_at, paid_at, updated_at) \
             VALUES ('{}', '{}', 'token', 1, 'issued', {now}, '{}', {now}, {now}, {now})",
            random_hex(16),
            c.serial,
            d.serial
        ),
    )
    .await;
    clock.set(t0);
    // Orders: one paid then rejected (no certificate), one issued (a), one never paid.
    let rejected = order(db, &desk, "AB100001", "ioana1@example.ro", now).await;
    paid(db, &rejected, "rejected", now).await;
    let issued = order(db, &desk, "AB100001", "ioana1@example.ro", now).await;
    paid(db, &issued, "issued", now).await;
    issued_for(db, &a.serial, &issued).await;
    let unpaid = order(db, &desk, "AB100001", "ioana1@example.ro", now).await;
    // A mail sent now.
    let mail = NewOutboxMail {
        dedupe_key: "retention-test".into(),
        kind: "payment-received".into(),
        language: "ro".into(),
        recipient: "ioana1@example.ro".into(),
        subject: "Plata".into(),
        body_sealed: vec![1, 2, 3],
    };
    let (mail_id, _) = r.outbox_insert(&mail, now).await.unwrap();
    assert!(r.outbox_mark_sent(mail_id, now).await.unwrap());
    assert_eq!(r.revocation(&b.serial).await.unwrap().unwrap().revoked_at, now);

    let reg_end = |from: OffsetDateTime| {
        OffsetDateTime::from_unix_timestamp(policy.registration_end(from.unix_timestamp())).unwrap()
    };
    let fin_end = OffsetDateTime::from_unix_timestamp(policy.financial_end(now)).unwrap();
    let ttl = orders.form_limits().unpaid_ttl;
    let records = [
        (Record::Mail("retention-test".into()), t0 + Duration::days(30)),
        (Record::Order(unpaid.clone()), t0 + ttl),
        // Revoked: the clock starts at the revocation, not at notAfter.
        (Record::Registration(b.serial.clone()), reg_end(t0)),
        (Record::Registration(a.serial.clone()), reg_end(a.not_after)),
        (Record::Order(rejected.clone()), fin_end),
        // Kept for its certificate's registration data when that is longer.
        (Record::Order(issued.clone()), fin_end.max(reg_end(a.not_after))),
        // The renewed one goes with its renewal.
        (Record::Registration(c.serial.clone()), reg_end(d.not_after)),
        (Record::Registration(d.serial.clone()), reg_end(d.not_after)),
    ];
    for (rec, _) in &records {
        assert!(rec.present(db).await, "{rec:?} is there at first");
    }
    let mut times: Vec<OffsetDateTime> = records.iter().flat_map(|(_, end)| [*end - SECOND, *end]).collect();
    times.sort();
    times.dedup();
    for t in times {
        clock.set(t);
        notifier.tick(t).await.unwrap();
        for (rec, end) in &records {
            assert_eq!(rec.present(db).await, t < *end, "{rec:?} at {t} (period ends {end})");
        }
    }
    // Revocation status and CRL entries stay; the chain verifies.
    assert!(r.revocation(&b.serial).await.unwrap().is_some());
    let status = r.serial_status(&b.serial).await.unwrap().unwrap();
    assert_eq!(status.revocation.unwrap().reason, Reason::CessationOfOperation as u8);
    assert_eq!(r.revocation_count(&status.issuer_serial.unwrap()).await.unwrap(), 1);
    let verified = audit::verify(r).await.unwrap().expect("the audit chain survives the purge");
    assert!(verified.entries > 0);
    // Audited by class and count, never naming a person or a certificate.
    let purges: Vec<_> = r
        .audit_page(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "retention.purge" || e.action == "order.expire")
        .collect();
    let classes: Vec<&str> = purges.iter().map(|e| e.subject.as_str()).collect();
    for class in ["sent-mail", "orders", "registration-records"] {
        assert!(classes.contains(&class), "{class} purge audited: {classes:?}");
    }
    for e in &purges {
        for secret in [&a.serial, &b.serial, &c.serial, &d.serial, &issued, &rejected, &unpaid] {
            assert!(!e.detail.contains(secret.as_str()) && !e.subject.contains(secret.as_str()), "{e:?}");
        }
        assert!(!e.detail.contains("ioana") && !e.detail.contains("Popescu"), "{e:?}");
    }
    let erased: u64 = purges
        .iter()
        .filter(|e| e.subject == "registration-records")
        .map(|e| e.detail.split_whitespace().next().unwrap().trim_start_matches("erased=").parse::<u64>().unwrap())
        .sum();
    assert_eq!(erased, 4, "{purges:?}");
}
on_both_stores!(registration_records_and_orders_go_exactly_when_their_period_ends);

struct Desk {
    server: Server,
    http: reqwest::Client,
    ra: String,
    hotline: String,
}

impl Desk {
    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r =
            self.http.post(format!("{}{path}", self.server.base)).bearer_auth(token).json(&body).send().await.unwrap();
        let (s, h) = (r.status(), r.headers().clone());
        (s, r.json().await.unwrap_or(Value::Null), h)
    }
}

async fn export_holds_every_item_and_erasure_keeps_what_the_law_keeps(db: &TestDb) {
    let clock: Arc<FixedClock> = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let orders = new_orders(&desk, [7u8; 32], TEST_BASE_URL);
    let server = serve_orders_with(|_| orders.clone()).await;
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let ra = ops.add("test", "radu", Role::RaOfficer).await.unwrap().expose().to_owned();
    let hotline = ops.add("test", "anna", Role::HotlineAgent).await.unwrap().expose().to_owned();
    let w = Desk { server, http: reqwest::Client::new(), ra, hotline };
    let r = &db.registry;
    let now = clock.now().unix_timestamp();
    let doc = "XY654321";

    // The holder: an issued order with its certificate (revoked in person),
    // an order rejected by the RA officer (free-text reason, a mail), and
    // one never paid. Another holder's data must not appear.
    let cert = issue(&desk, 5, doc).await;
    let issued = order(db, &desk, doc, "ioana5@example.ro", now).await;
    paid(db, &issued, "issued", now).await;
    issued_for(db, &cert.serial, &issued).await;
    r.set_published(&cert.serial).await.unwrap();
    let rejected = order(db, &desk, doc, "ioana5@example.ro", now).await;
    paid(db, &rejected, "awaiting-identity", now).await;
    let officer = ops.authenticate(&w.ra).await.unwrap().unwrap();
    orders.reject(&officer, &rejected, "the photo of Ioana's ID card is blurred").await.unwrap();
    let unpaid = order(db, &desk, doc, "ioana5@example.ro", now).await;
    desk.in_person_revoke(&officer, &cert.serial, &DocumentNumber::parse(doc).unwrap(), Reason::Superseded, None)
        .await
        .unwrap();
    let other = issue(&desk, 6, "ZZ000001").await;

    // Role and input first.
    let body = json!({ "document_number": doc });
    let (s, _, _) = w.post(&w.hotline, "/api/v1/ra/holders/export", body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, p, _) = w.post(&w.ra, "/api/v1/ra/holders/export", json!({ "document_number": "AA000000" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    let (s, p, _) = w.post(&w.ra, "/api/v1/ra/holders/export", json!({ "document_number": "<script>" })).await;
    assert!(s.is_client_error(), "{p}");
    assert!(!p.to_string().contains("<script>"), "never echoed: {p}");

    let (s, x, headers) = w.post(&w.ra, "/api/v1/ra/holders/export", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{x}");
    assert_eq!(headers["cache-control"], "no-store");
    let text = x.to_string();
    assert!(!text.contains("radu") && !text.contains("anna"), "operators by role only: {text}");
    assert!(!text.contains(&other.serial) && !text.contains("ioana6"), "another holder's data");
    assert_eq!(x["holder"].as_array().unwrap().len(), 3);
    assert_eq!(x["holder"][0]["given_name"], "Ioana");
    assert_eq!(x["holder"][0]["phone"], "+40712345678");
    let exported_orders = x["orders"].as_array().unwrap();
    assert_eq!(exported_orders.len(), 3);
    let find = |id: &str| exported_orders.iter().find(|o| o["id"] == id).unwrap().clone();
    assert_eq!(find(&issued)["payment_events"][0]["event_id"], format!("evt-{issued}"));
    assert_eq!(find(&rejected)["decided_by"], "ra-officer");
    assert_eq!(find(&rejected)["rejection_reason"], "the photo of Ioana's ID card is blurred");
    let certs = x["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["serial"], cert.serial.as_str());
    assert_eq!(certs[0]["pem"], cert.pem().as_str());
    assert_eq!(certs[0]["revocation"]["reason"], "superseded");
    assert_eq!(certs[0]["revocation"]["requested_by"], "ra-officer");
    let events = x["audit_events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"order.reject") && actions.contains(&"certificate.revoke"), "{actions:?}");
    let reject = events.iter().find(|e| e["action"] == "order.reject").unwrap();
    assert_eq!(reject["personal"], "the photo of Ioana's ID card is blurred");
    assert_eq!(reject["actor"], "ra-officer");
    let kinds: Vec<&str> = x["mails"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert!(!kinds.is_empty(), "the rejection and revocation mails: {kinds:?}");
    let categories = x["categories"].as_array().unwrap();
    assert_eq!(categories.len(), 5);
    for c in categories {
        for field in ["category", "purpose", "legal_basis", "recipients", "retention", "source"] {
            assert!(c[field].as_str().is_some_and(|v| !v.is_empty()), "{field} of {c}");
        }
    }
    assert!(text.contains("10 years after the last certificate"), "the configured period is stated");

    // Erasure: the unpaid order goes, the rest is restricted, with the exceptions named.
    r.outbox_insert(
        &NewOutboxMail {
            dedupe_key: "sent-one".into(),
            kind: "payment-received".into(),
            language: "ro".into(),
            recipient: "ioana5@example.ro".into(),
            subject: "Plata".into(),
            body_sealed: vec![1],
        },
        now,
    )
    .await
    .unwrap();
    let sent = r.outbox_by_key("sent-one").await.unwrap().unwrap();
    r.outbox_mark_sent(sent.id, now).await.unwrap();
    let (s, e, _) = w.post(&w.ra, "/api/v1/ra/holders/erasure", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    assert_eq!(e["deleted_unpaid_orders"], 1);
    assert!(e["deleted_sent_mails"].as_u64().unwrap() >= 1);
    assert_eq!(e["restricted_orders"], 2);
    assert_eq!(e["restricted_certificates"], 1);
    let articles: Vec<String> = e["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|x| x["articles"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()))
        .collect();
    assert!(articles.iter().any(|a| a == "GDPR Art. 17(3)(b)"), "{e}");
    assert!(articles.iter().any(|a| a == "GDPR Art. 17(3)(e)"), "{e}");
    assert!(e.to_string().contains("eIDAS Art. 24(4)"), "revocation status kept: {e}");
    assert!(r.order(&unpaid).await.unwrap().is_none());
    assert!(r.outbox_by_key("sent-one").await.unwrap().is_none());
    // Kept, restricted: out of the public directory, status still answered.
    let kept = r.holder_certificate(&cert.serial).await.unwrap().unwrap();
    assert!(kept.restricted_at.is_some() && !kept.published && kept.record.cert.given_name.is_some());
    assert!(r.published(&cert.serial).await.unwrap().is_none(), "not in the directory");
    assert!(r.revocation(&cert.serial).await.unwrap().is_some());
    assert!(r.order(&issued).await.unwrap().is_some() && r.order(&rejected).await.unwrap().is_some());
    audit::verify(r).await.unwrap().expect("the chain verifies after erasure");
    let (s, x2, _) = w.post(&w.ra, "/api/v1/ra/holders/export", body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(x2["orders"].as_array().unwrap().len(), 2);
    assert!(x2["orders"].as_array().unwrap().iter().all(|o| o["restricted"] == true));

    // At the end of the registration period the personal part of the
    // rejection's audit entry is erased too, and the chain still verifies.
    let end = orders.retention().registration_end(kept.retention_from.unwrap());
    let end = OffsetDateTime::from_unix_timestamp(end)
        .unwrap()
        .max(OffsetDateTime::from_unix_timestamp(orders.retention().financial_end(now)).unwrap());
    clock.set(end);
    orders.purge_expired_records(end).await.unwrap();
    assert!(r.order(&issued).await.unwrap().is_none() && r.order(&rejected).await.unwrap().is_none());
    let entries = r.audit_of(&rejected).await.unwrap();
    let reject = entries.iter().find(|e| e.action == "order.reject").unwrap();
    assert!(reject.personal.is_none() && reject.personal_salt.is_none() && reject.personal_digest.is_some());
    audit::verify(r).await.unwrap().expect("the chain verifies after the personal parts are erased");
    assert!(r.revocation(&cert.serial).await.unwrap().is_some(), "revocations are never purged");
    let (s, _, _) = w.post(&w.ra, "/api/v1/ra/holders/export", body).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing left to find by the document number");
}
on_both_stores!(export_holds_every_item_and_erasure_keeps_what_the_law_keeps);

async fn an_edited_personal_part_breaks_the_chain_an_erased_one_does_not(db: &TestDb) {
    let clock = test_clock();
    let r = &db.registry;
    let now = clock.now().unix_timestamp();
    let e = audit::Event {
        actor: "ra-officer:radu",
        action: "order.reject",
        subject: "o1",
        outcome: audit::Outcome::Success,
        detail: "reason in the personal part".into(),
    };
    audit::append_with_personal(r, now, &e, Some("blurred photo")).await.unwrap();
    audit::append(r, now, &audit::Event { subject: "o2", ..e.clone() }).await.unwrap();
    audit::verify(r).await.unwrap().unwrap();
    execute_sql(db, "UPDATE audit_log SET personal = 'sharp photo' WHERE seq = 1").await;
    let broken = audit::verify(r).await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 1, "{broken}");
    execute_sql(db, "UPDATE audit_log SET personal = NULL, personal_salt = NULL WHERE seq = 1").await;
    assert_eq!(audit::verify(r).await.unwrap().unwrap().entries, 2, "erased: still verifies");
    execute_sql(db, "UPDATE audit_log SET personal_digest = NULL WHERE seq = 1").await;
    assert!(audit::verify(r).await.unwrap().is_err(), "the digest is covered by the hash");
}
on_both_stores!(an_edited_personal_part_breaks_the_chain_an_erased_one_does_not);

/// Login and signing credentials past their time (desk sessions and
/// enrolment links, CSC sessions and SADs) go in the notifier's tick, at
/// exactly their expiry (one second before they are kept); a used-up SAD
/// goes at once; live ones stay usable.
async fn expired_sessions_links_and_sads_go_in_the_tick(db: &TestDb) {
    use qcert_ca_core::store::csc::SadRow;
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let desk = new_desk(&ca).await;
    let notifier = Notifier::new(new_orders(&desk, [7u8; 32], TEST_BASE_URL));
    let ops = Operators::new(ca.registry().clone(), ca.clock().clone());
    let r = &db.registry;
    let t0 = clock.now();
    let now = t0.unix_timestamp();
    let sad = |remaining: i64, expires_at: i64| SadRow {
        order_id: "order-1".into(),
        serial: "01".into(),
        hash_algo: "2.16.840.1.101.3.4.2.1".into(),
        hashes: if remaining > 0 { "aGFzaA==".into() } else { String::new() },
        remaining,
        created_at: now,
        expires_at,
    };
    for (name, until) in [("soon", now + 60), ("later", now + 3600)] {
        ops.add("test", name, Role::HotlineAgent).await.unwrap();
        assert!(r.ensure_desk_account(name, &format!("handle-{name}"), now).await.unwrap());
        r.insert_desk_session(&format!("session-{name}"), name, "active", now, until, now - 900).await.unwrap();
        assert!(r.create_desk_enrolment(name, &format!("link-{name}"), "admin:ada", now, until, false).await.unwrap());
        r.insert_csc_session(&format!("csc-{name}"), "order-1", now, until).await.unwrap();
        r.insert_sad(&format!("sad-{name}"), &sad(1, until)).await.unwrap();
    }
    r.insert_sad("sad-used-up", &sad(0, now + 3600)).await.unwrap();
    // A rate-limit event of a key seen once (it leaves its 60 s window with the "soon" rows).
    let window = qcert_ca_core::store::limits::Window { limit: 5, window_secs: 60 };
    ca.rate_limit("retention-test", "a key seen once", window).await.unwrap();

    clock.set(t0 + Duration::seconds(59));
    let report = notifier.tick(clock.now()).await.unwrap();
    assert_eq!(report.retention.credentials_expired, 1, "only the used-up SAD, a second early");
    assert!(r.sad("sad-soon").await.unwrap().is_some());

    clock.set(t0 + Duration::seconds(60));
    let report = notifier.tick(clock.now()).await.unwrap();
    assert_eq!(report.retention.credentials_expired, 5, "a session, a link, a CSC session, a SAD, a rate event");
    let at = clock.now().unix_timestamp();
    assert!(r.sad("sad-soon").await.unwrap().is_none());
    // The later ones are untouched and still work.
    assert_eq!(r.desk_session("session-later", at).await.unwrap().unwrap().operator, "later");
    assert_eq!(r.desk_enrolment("link-later", at).await.unwrap().unwrap().operator, "later");
    assert_eq!(r.csc_session("csc-later", at).await.unwrap().as_deref(), Some("order-1"));
    assert_eq!(r.sad("sad-later").await.unwrap().unwrap().remaining, 1);
    assert_eq!(notifier.tick(clock.now()).await.unwrap().retention.credentials_expired, 0, "nothing twice");
}
on_both_stores!(expired_sessions_links_and_sads_go_in_the_tick);
