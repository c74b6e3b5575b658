#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! `qcert notify` as separate processes: killed (abort, as `kill -9`) at
//! failpoints between claiming and recording, then restarted, and two
//! notifiers racing on one PostgreSQL registry. Neither loses nor doubles a
//! reminder or a renewed certificate. Time is fixed with QCERT_FAKE_NOW.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use qcert_ca_core::store::renewals::NewRenewal;
use qcert_ca_core::Registry;
use qcert_tests::{openssl_csr, run_ok, Backend, CsrKey, TestDb};
use time::{Duration, OffsetDateTime};

mod common;
use common::{issue_args, output, qcert};

struct Home {
    _tmp: tempfile::TempDir,
    home: PathBuf,
    db_url: Option<String>,
}

impl Home {
    fn cmd(&self) -> Command {
        let mut c = qcert(&self.home);
        if let Some(url) = &self.db_url {
            c.env("QCERT_DATABASE_URL", url);
        }
        c
    }

    fn registry_url(&self) -> String {
        self.db_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.home.join("qcert.db").display()))
    }

    /// Issue a 1-year certificate at `at`; returns (serial, notAfter).
    fn issue_at(&self, at: OffsetDateTime, n: usize) -> (String, i64) {
        let dir = self.home.join("work");
        std::fs::create_dir_all(&dir).unwrap();
        let csr = dir.join(format!("req{n}.der"));
        std::fs::write(&csr, openssl_csr(CsrKey::P256)).unwrap();
        let pem = dir.join(format!("ee{n}.pem"));
        let mut args = issue_args(&csr, &pem);
        let y = args.iter().position(|a| a == "--years").unwrap();
        args[y + 1] = "1".into();
        let e = args.iter().position(|a| a == "--email").unwrap();
        args[e + 1] = format!("holder{n}@example.ro");
        let (out, text) = output(self.cmd().env("QCERT_FAKE_NOW", rfc3339(at)).args(args));
        assert!(out.status.success(), "{text}");
        let serial = run_ok(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(&pem));
        let end = run_ok(Command::new("openssl").args(["x509", "-noout", "-enddate", "-in"]).arg(&pem));
        let end = end.trim().trim_start_matches("notAfter=");
        let format = time::format_description::parse_borrowed::<2>(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT",
        )
        .unwrap();
        let not_after =
            time::PrimitiveDateTime::parse(end, &format).unwrap_or_else(|e| panic!("{end}: {e}")).assume_utc();
        (serial.trim().trim_start_matches("serial=").to_ascii_lowercase(), not_after.unix_timestamp())
    }

    fn notify(&self, at: i64, failpoint: Option<&str>) -> (bool, String) {
        let mut c = self.cmd();
        c.args(["notify", "--once"]).env("QCERT_FAKE_NOW", rfc3339(OffsetDateTime::from_unix_timestamp(at).unwrap()));
        match failpoint {
            Some(f) => c.env("QCERT_FAILPOINT", f),
            None => c.env_remove("QCERT_FAILPOINT"),
        };
        let (out, text) = output(&mut c);
        (out.status.success(), text)
    }

    /// .eml files the file transport wrote whose text contains `needle`.
    fn mails_with(&self, needle: &str) -> usize {
        let Ok(entries) = std::fs::read_dir(self.home.join("outbox")) else { return 0 };
        entries
            .filter_map(Result::ok)
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(needle)))
            .count()
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

fn init(db: Option<&TestDb>) -> Home {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home { home: tmp.path().join("home"), _tmp: tmp, db_url: db.map(|d| d.url.clone()) };
    let (out, text) = output(home.cmd().arg("init"));
    assert!(out.status.success(), "{text}");
    home
}

/// A paid TOKEN renewal of `serial`, made through the registry (the HTTP
/// path is tested in tests/tests/renewal.rs).
async fn paid_renewal(registry: &Registry, serial: &str, not_after: i64, n: usize) -> String {
    let id = format!("{:032x}", 0xabc000 + n);
    let csr = openssl_csr(CsrKey::P256);
    let new = NewRenewal {
        id: &id,
        serial,
        order_id: None,
        product: "token",
        years: 1,
        csr: Some(&csr),
        csr_key_id: None,
        issue_at: not_after - Duration::days(3).whole_seconds(),
    };
    assert!(registry.insert_renewal(&new, not_after - Duration::days(30).whole_seconds()).await.unwrap());
    assert_eq!(
        registry
            .record_renewal_payment(&format!("evt-{n}"), &id, "ref", not_after - Duration::days(30).whole_seconds())
            .await
            .unwrap(),
        qcert_ca_core::store::orders::PaymentRecorded::Applied
    );
    id
}

async fn count(registry_url: &str, sql: &str) -> i64 {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(registry_url).await.unwrap();
    let n: i64 = sqlx::query(sql).fetch_one(&pool).await.unwrap().get(0);
    pool.close().await;
    n
}

fn crash_and_restart(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let db = (backend == Backend::Postgres).then(|| rt.block_on(TestDb::new(Backend::Postgres)));
    let home = init(db.as_ref());
    let t0 = OffsetDateTime::now_utc() - Duration::days(330);
    let (renewed, na) = home.issue_at(t0, 1);
    let (reminded, _) = home.issue_at(t0, 2);
    let url = home.registry_url();
    let renewal = rt.block_on(async {
        let registry = Registry::open(&url, 2).await.unwrap();
        let id = paid_renewal(&registry, &renewed, na, 1).await;
        registry.close().await;
        id
    });
    let due = na - Duration::days(3).whole_seconds();

    // Killed after recording nothing (reminders fetched, not recorded).
    let (ok, text) = home.notify(due, Some("reminder-before-record"));
    assert!(!ok && text.contains("failpoint reminder-before-record"), "{text}");
    assert_eq!(rt.block_on(count(&url, "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'reminder-%'")), 0);
    // Killed after claiming the renewal, before issuing it.
    let (ok, text) = home.notify(due, Some("renewal-after-claim"));
    assert!(!ok, "{text}");
    // Killed after issuing, before recording the renewal as done (lease expired 10 min later).
    let (ok, text) = home.notify(due + 700, Some("renewal-after-issue"));
    assert!(!ok && text.contains("failpoint renewal-after-issue"), "{text}");
    let issued_for =
        format!("SELECT COUNT(*) FROM certificates WHERE issued_for = 'renewal:{renewal}' AND status = 'issued'");
    assert_eq!(rt.block_on(count(&url, &issued_for)), 1, "issued before the crash");
    assert_eq!(
        rt.block_on(count(
            &url,
            &format!("SELECT COUNT(*) FROM renewals WHERE id = '{renewal}' AND state = 'issuing'")
        )),
        1
    );

    // Restarted after the lease ran out: completes, issues nothing twice.
    let (ok, text) = home.notify(due + 1400, None);
    assert!(ok, "{text}");
    assert_eq!(rt.block_on(count(&url, &issued_for)), 1, "one certificate for the renewal");
    assert_eq!(
        rt.block_on(count(&url, &format!("SELECT COUNT(*) FROM renewals WHERE id = '{renewal}' AND state = 'issued'"))),
        1
    );
    let (ok, text) = home.notify(due + 2000, None);
    assert!(ok && text.contains("renewals: 0 issued"), "{text}");
    assert_eq!(
        rt.block_on(count(&url, "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'reminder-15:%'")),
        1,
        "only the unrenewed one"
    );
    assert_eq!(home.mails_with("holder2@example.ro"), 1, "one reminder mail for {reminded}");
    assert_eq!(home.mails_with("holder1@example.ro"), 1, "one certificate-issued mail for the renewed holder");
    assert_eq!(rt.block_on(count(&url, "SELECT COUNT(*) FROM certificates WHERE issued_for IS NOT NULL")), 1);
    if let Some(db) = db {
        rt.block_on(db.cleanup());
    }
}

#[test]
fn killed_notifier_neither_loses_nor_doubles_sqlite() {
    crash_and_restart(Backend::Sqlite);
}

#[test]
fn killed_notifier_neither_loses_nor_doubles_postgres() {
    crash_and_restart(Backend::Postgres);
}

/// Two notifier processes at once on one PostgreSQL registry.
#[test]
fn two_notifiers_on_one_postgresql_send_and_issue_once() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let db = rt.block_on(TestDb::new(Backend::Postgres));
    let home = init(Some(&db));
    let t0 = OffsetDateTime::now_utc() - Duration::days(330);
    let certs: Vec<(String, i64)> = (0..6).map(|n| home.issue_at(t0, n)).collect();
    let url = home.registry_url();
    rt.block_on(async {
        let registry = Registry::open(&url, 2).await.unwrap();
        for (n, (serial, na)) in certs.iter().enumerate().take(3) {
            paid_renewal(&registry, serial, *na, n).await;
        }
        registry.close().await;
    });
    let due = certs[0].1 - Duration::days(3).whole_seconds();
    let spawn = |delay_ms: u64| {
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let mut c = home.cmd();
        c.args(["notify", "--once"])
            .env("QCERT_FAKE_NOW", rfc3339(OffsetDateTime::from_unix_timestamp(due + 60).unwrap()))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(0);
    let b = spawn(150);
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
    }
    assert_eq!(
        rt.block_on(count(&url, "SELECT COUNT(*) FROM certificates WHERE issued_for IS NOT NULL")),
        3,
        "three renewals, three certificates"
    );
    assert_eq!(rt.block_on(count(&url, "SELECT COUNT(*) FROM renewals WHERE state = 'issued'")), 3);
    assert_eq!(rt.block_on(count(&url, "SELECT COUNT(*) FROM outbox WHERE dedupe_key LIKE 'reminder-15:%'")), 3);
    for n in 0..6 {
        assert_eq!(
            home.mails_with(&format!("holder{n}@example.ro")),
            1,
            "holder {n}: one mail (reminder or new certificate)"
        );
    }
    rt.block_on(db.cleanup());
}
