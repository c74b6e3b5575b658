#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The hotline's lock through the `qcert` binary: two `qcert serve`
//! processes on one PostgreSQL registry, hammered together with wrong
//! passwords, check at most 5 and then refuse the right one; and a
//! revocation by `qcert revoke` mails the holder.

mod common;

use std::path::Path;
use std::process::Command;

use common::{issue_args, issue_p256, output, qcert, serve};
use qcert_tests::{openssl_csr, run_ok, CsrKey};

/// The revocation password `qcert issue` printed.
fn password_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("revocation password (shown once, give it to the holder): "))
        .expect("password printed")
        .trim()
        .to_owned()
}

fn serial_of(pem: &Path) -> String {
    let s = run_ok(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(pem));
    qcert_ca_core::ca::normalize_serial(s.trim().trim_start_matches("serial=")).expect("serial")
}

/// Cheap Argon2id for the test home (the test counts checks, it does not time them).
fn cheap_argon2(home: &Path) {
    let path = home.join("qcert.toml");
    let toml = std::fs::read_to_string(&path).expect("qcert.toml");
    assert!(toml.contains("argon2_memory_kib = 32768"), "{toml}");
    std::fs::write(&path, toml.replace("argon2_memory_kib = 32768", "argon2_memory_kib = 1024")).expect("write");
}

#[test]
fn two_servers_on_one_postgresql_check_at_most_five_passwords() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("rt");
    let db = rt.block_on(qcert_tests::TestDb::new(qcert_tests::Backend::Postgres));
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let cmd = || {
        let mut c = qcert(&home);
        c.env("QCERT_DATABASE_URL", &db.url);
        c
    };
    let (out, text) = output(cmd().arg("init"));
    assert!(out.status.success(), "{text}");
    cheap_argon2(&home);
    let mut tokens = Vec::new();
    for name in ["anna", "bob"] {
        let (out, text) = output(cmd().args(["operator", "add", "--role", "hotline-agent", name]));
        assert!(out.status.success(), "{text}");
        tokens.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    let csr = tmp.path().join("req.der");
    std::fs::write(&csr, openssl_csr(CsrKey::P256)).expect("csr");
    let pem = tmp.path().join("ee.pem");
    let (out, text) = output(cmd().args(issue_args(&csr, &pem)));
    assert!(out.status.success(), "{text}");
    let password = password_of(&text);
    let serial = serial_of(&pem);

    let (mut one, base_one) = serve(cmd());
    let (mut two, base_two) = serve(cmd());
    let statuses = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut tasks = Vec::new();
        for i in 0..24u32 {
            let (base, token) = if i % 2 == 0 { (&base_one, &tokens[0]) } else { (&base_two, &tokens[1]) };
            let mut guess = format!("{:08}", 20_000_000 + i * 104_729);
            if guess == password {
                guess = format!("{:08}", 30_000_000 + i);
            }
            let req = http
                .post(format!("{base}/api/v1/hotline/revocations"))
                .bearer_auth(token)
                .json(&serde_json::json!({"document_number": "RX123456", "revocation_password": guess}));
            tasks.push(tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.expect("task").expect("request"));
        }
        // After the 5th counted wrong one, the right password is refused, on either server.
        for (base, token) in [(&base_one, &tokens[0]), (&base_two, &tokens[1])] {
            let r = http
                .post(format!("{base}/api/v1/hotline/revocations"))
                .bearer_auth(token)
                .json(&serde_json::json!({"document_number": "RX 123 456", "revocation_password": password}))
                .send()
                .await
                .expect("request");
            statuses.push(r.status().as_u16());
        }
        statuses
    });
    for child in [&mut one, &mut two] {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let _ = child.wait();
    }
    assert!(statuses.iter().all(|s| *s == 403), "{statuses:?}");

    rt.block_on(async {
        let registry = qcert_ca_core::Registry::open(&db.url, 2).await.expect("registry");
        assert!(registry.revocation(&serial).await.unwrap().is_none(), "not revoked");
        let cred = registry.credential(&serial).await.unwrap().expect("credential");
        assert_eq!(cred.failed_attempts, 5, "at most 5 counted (and checked)");
        assert!(cred.locked_at.is_some());
        let rows = registry.audit_page(0, 10_000).await.unwrap();
        let mine: Vec<_> = rows.iter().filter(|r| r.subject == serial).collect();
        let failures: Vec<&str> = mine
            .iter()
            .filter(|r| r.action == "hotline.attempt" && r.outcome == "failure")
            .map(|r| r.detail.as_str())
            .collect();
        assert_eq!(failures.len(), 5, "{failures:?}");
        for n in 1..=5 {
            assert!(failures.contains(&format!("wrong revocation password ({n} of 5)").as_str()), "{failures:?}");
        }
        let refused = mine.iter().filter(|r| r.action == "hotline.attempt" && r.outcome == "refused").count();
        assert_eq!(refused, 24 + 2 - 5, "the rest refused unchecked");
        assert_eq!(mine.iter().filter(|r| r.action == "hotline.lock").count(), 1, "locked and audited once");
        registry.close().await;
    });
    rt.block_on(db.cleanup());
}

/// `qcert revoke` (the CLI channel) mails the holder too: the embedded
/// default's file outbox holds the mail after `qcert mail send-pending`.
#[test]
fn qcert_revoke_mails_the_holder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    let (pem, text) = issue_p256(&home, tmp.path());
    let password = password_of(&text);
    let serial = serial_of(&pem);
    let revoke = ["revoke", "--serial", &serial, "--reason", "superseded"];
    let (out, text) = output(qcert(&home).args(revoke).env("QCERT_FAKE_NOW", "2026-12-02T13:05:00Z"));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(qcert(&home).args(revoke));
    assert!(out.status.success() && text.contains("already revoked"), "{text}");
    let (out, text) = output(qcert(&home).args(["mail", "send-pending"]));
    assert!(out.status.success(), "{text}");

    let mails: Vec<String> = std::fs::read_dir(home.join("outbox"))
        .expect("outbox dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).expect("eml"))
        .collect();
    assert_eq!(mails.len(), 1, "one mail for the revocation: {mails:?}");
    // Unfold header lines (RFC 5322) and soft line breaks.
    let mail = &mails[0].replace("\r\n", "\n").replace("\n ", " ");
    assert!(mail.contains("To: ana.pop@example.ro"), "{mail}");
    assert!(mail.contains(&format!("{serial} has been revoked")), "{mail}");
    let body = mail.replace("=\n", "");
    for words in ["2 December 2026, at 13:05 UTC", "replaced by a new one", "by an operator"] {
        assert!(body.contains(words), "{words}: {body}");
    }
    assert!(!mail.contains(&password) && !mail.contains("RX123456"), "{mail}");
}
