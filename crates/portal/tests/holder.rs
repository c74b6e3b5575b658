#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! `qcert holder export|erase` (GDPR Art. 15, 17): the ID document number
//! comes from stdin; the answers are the API's JSON.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

fn with_stdin(mut cmd: Command, input: &str) -> (bool, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn holder_export_and_erase_from_the_cli() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    let (pem, _) = issue_p256(&home, tmp.path());
    let pem = std::fs::read_to_string(pem).unwrap();

    let mut export = qcert(&home);
    export.args(["holder", "export"]);
    let (ok, text) = with_stdin(export, "RX 123456\n");
    assert!(ok, "{text}");
    let x: Value = serde_json::from_str(&text).expect("JSON");
    let cert = &x["certificates"][0];
    assert!(pem.contains(cert["pem"].as_str().unwrap().trim()), "the certificate as issued: {cert}");
    assert!(cert["subject"].as_str().unwrap().contains("Ana Pop"));
    assert_eq!(x["categories"].as_array().unwrap().len(), 5);

    let mut unknown = qcert(&home);
    unknown.args(["holder", "export"]);
    let (ok, text) = with_stdin(unknown, "ZZ999999\n");
    assert!(!ok && text.contains("no records"), "{text}");

    let mut erase = qcert(&home);
    erase.args(["holder", "erase"]);
    let (ok, text) = with_stdin(erase, "RX 123456\n");
    assert!(ok, "{text}");
    let e: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(e["restricted_certificates"], 1);
    assert!(text.contains("GDPR Art. 17(3)(b)") && text.contains("eIDAS Art. 24(4)"), "{text}");

    let (out, text) = output(qcert(&home).args(["audit", "verify"]));
    assert!(out.status.success() && text.contains("audit log intact"), "{text}");
}
