#![allow(dead_code)] // each test binary uses part of it
//! Running the `qcert` binary in tests.

use std::path::Path;
use std::process::{Command, Output};

/// Public base URL pkilint accepts (a real public suffix, no internal names).
pub const BASE: &str = "http://pki.qcert-demo.eu";

pub fn qcert(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_qcert"));
    c.arg("--home").arg(home).env("QCERT_PUBLIC_BASE_URL", BASE).env_remove("QCERT_HSM_PIN").env("QCERT_LOG", "warn");
    c
}

pub fn output(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().expect("run qcert");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
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
        "PNORO-1234567890123",
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
