#![allow(dead_code)] // each test binary uses part of it
//! Running the `qcert` binary in tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// Public base URL pkilint accepts (a real public suffix, no internal names).
pub const BASE: &str = "http://pki.qcert-demo.eu";

pub fn qcert(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qcert"));
    c.arg("--home").arg(home).env("QCERT_PUBLIC_BASE_URL", BASE).env_remove("QCERT_HSM_PIN").env("QCERT_LOG", "warn");
    // Every test client is 127.0.0.1: no per-client connection cap unless a test sets one.
    c.env("QCERT_HTTP_MAX_CONNECTIONS_PER_CLIENT", "0");
    c
}

pub fn output(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run qcert");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

/// Start `cmd` (a `qcert` command) as `qcert serve --listen 127.0.0.1:0`
/// and wait for its "listening on <base>" line: the child and the base URL.
pub fn serve(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read listening line");
    let base = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    (child, base)
}

pub fn issue_args(csr: &Path, out: &Path) -> Vec<String> {
    [
        "issue",
        "--csr",
        &csr.display().to_string(),
        "--given-name",
        "Ana",
        "--surname",
        "Pop",
        "--email",
        "ana.pop@example.ro",
        "--country",
        "RO",
        "--id-number",
        "PNORO-1900101123457",
        "--id-document",
        "RX 123456",
        "--years",
        "3",
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `qcert issue` of a fresh P-256 CSR (made with openssl in `dir`) for the
/// holder of [`issue_args`]: the certificate's PEM file and the command's
/// output (it carries the revocation password).
pub fn issue_p256(home: &Path, dir: &Path) -> (std::path::PathBuf, String) {
    let csr = dir.join("req.der");
    std::fs::write(&csr, qcert_tests::openssl_csr(qcert_tests::CsrKey::P256)).expect("csr");
    let pem = dir.join("ee.pem");
    let (out, text) = output(qcert(home).args(issue_args(&csr, &pem)));
    assert!(out.status.success(), "{text}");
    (pem, text)
}
