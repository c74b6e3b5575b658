#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Lifecycle fixes through the `qcert` binary: `qcert init` records the
//! addresses it was given, the PKI disclosure statements are served where
//! certificates point, the last admin cannot be removed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

mod common;
use common::{output, qcert};

/// `qcert serve` with the listen address of qcert.toml (no --listen): the
/// child and its base URL.
fn serve_configured(mut cmd: Command) -> (Child, String) {
    let mut child = cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read listening line");
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("listening line: {line:?}")).to_owned();
    (child, base)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
}

fn config(home: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(home.join("qcert.toml")).expect("qcert.toml")).expect("toml")
}

/// Point 4: `qcert init` with QCERT_LISTEN and QCERT_PUBLIC_BASE_URL set
/// writes those into qcert.toml; a later `serve` without them uses them.
#[test]
fn init_records_the_addresses_it_was_given() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let public = "http://pki.qcert-init.eu";
    let (out, text) = output(
        qcert(&home)
            .env("QCERT_LISTEN", "127.0.0.1:0")
            .env("QCERT_PUBLIC_BASE_URL", public)
            .env("QCERT_PORTAL_URL", "https://portal.qcert-init.eu")
            .arg("init"),
    );
    assert!(out.status.success(), "{text}");
    let c = config(&home);
    assert_eq!(c["listen"].as_str(), Some("127.0.0.1:0"), "{c}");
    assert_eq!(c["public_base_url"].as_str(), Some(public), "{c}");
    assert_eq!(c["portal_url"].as_str(), Some("https://portal.qcert-init.eu"), "{c}");

    let mut later = qcert(&home);
    later.env_remove("QCERT_LISTEN").env_remove("QCERT_PUBLIC_BASE_URL").env_remove("QCERT_PORTAL_URL");
    let (child, base) = serve_configured(later);
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let result = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v1/orders"))
            .json(&serde_json::json!({
                "product": "TOKEN", "years": 1, "given_name": "Ana", "surname": "Pop",
                "email": "ana@example.ro", "country": "RO", "national_id": "2850101123456",
                "id_document_number": "RX123456"
            }))
            .send()
            .await?;
        let status = r.status();
        let v: serde_json::Value = r.json().await?;
        reqwest::Result::Ok((status, v))
    });
    stop(child);
    assert_ne!(port, 8080, "listens where qcert.toml says (port 0: any free port)");
    let (status, v) = result.expect("HTTP");
    assert_eq!(status, 201, "{v}");
    assert!(v["order_url"].as_str().unwrap().starts_with("https://portal.qcert-init.eu/"), "{v}");

    // A malformed address is refused before anything is created.
    let other = tmp.path().join("other");
    let (out, text) = output(qcert(&other).env("QCERT_LISTEN", "not an address").arg("init"));
    assert!(!out.status.success() && text.contains("listen"), "{text}");
    assert!(!other.join("qcert.toml").exists());
}

/// Point 5 through the CLI: `qcert operator revoke` of the only admin is
/// refused with the reason; with a second admin it goes through.
#[test]
fn the_cli_does_not_revoke_the_last_admin() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(qcert(&home).args(["operator", "add", "--role", "admin", "ada"]));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(qcert(&home).args(["operator", "revoke", "ada"]));
    assert!(!out.status.success() && text.contains("last active admin"), "{text}");
    let (out, text) = output(qcert(&home).args(["operator", "list"]));
    assert!(out.status.success() && text.contains("ada") && text.contains("active"), "{text}");
    let (out, text) = output(qcert(&home).args(["operator", "add", "--role", "admin", "bea"]));
    assert!(out.status.success(), "{text}");
    let (out, text) = output(qcert(&home).args(["operator", "revoke", "ada"]));
    assert!(out.status.success(), "{text}");
}
