#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Lifecycle fixes through the `qcert` binary: `qcert init` records the
//! addresses it was given, the PKI disclosure statements are served where
//! certificates point, the last admin cannot be removed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use qcert_tests::pkilint;

mod common;
use common::{issue_p256, output, qcert, BASE};

/// `qcert serve` with the listen address of qcert.toml (no --listen): the
/// child and its base URL.
fn serve_configured(mut cmd: Command) -> (Child, String) {
    let mut child = cmd.arg("serve").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read listening line");
    let base =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("listening line: {line:?}")).to_owned();
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
                "email": "ana@example.ro", "country": "RO", "national_id": "2850101123453",
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

/// The QcPDS locations of a PEM certificate: (url, language).
fn pds_locations(pem: &str) -> Vec<(String, String)> {
    use base64::Engine;
    use der::Decode;
    use qcert_ca_core::x509::qc;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).expect("PEM");
    let cert = x509_cert::Certificate::from_der(&der).expect("certificate");
    let ext = cert
        .tbs_certificate
        .extensions
        .unwrap_or_default()
        .into_iter()
        .find(|e| e.extn_id == const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.3"))
        .expect("qcStatements");
    let statements = qc::QcStatements::from_der(ext.extn_value.as_bytes()).expect("qcStatements");
    statements
        .iter()
        .filter(|s| s.statement_id == qc::QC_PDS)
        .flat_map(|s| s.statement_info.as_ref().unwrap().decode_as::<Vec<qc::PdsLocation>>().unwrap())
        .map(|l| (l.url.as_str().to_owned(), l.language.as_str().to_owned()))
        .collect()
}

/// Point 16: the PDS URLs an issued certificate carries are served (the
/// files `qcert init` copied into policies/, English and Romanian), and an
/// operator's edit shows at once.
#[test]
fn the_pds_urls_in_certificates_are_served() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    let (ee, _) = issue_p256(&home, tmp.path());
    pkilint("lint_etsi_cert", &["-t", "QCP-N-QSCD-EIDAS-FINAL-CERTIFICATE"], &ee).expect("pkilint clean");
    let locations = pds_locations(&std::fs::read_to_string(&ee).expect("ee"));
    let langs: Vec<&str> = locations.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(langs, ["en", "ro"], "{locations:?}");
    let https_base = BASE.replacen("http://", "https://", 1);

    let (child, base) = common::serve(qcert(&home));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let result = rt.block_on(async {
        let http = reqwest::Client::new();
        let mut seen = Vec::new();
        for (url, lang) in &locations {
            // The TLS front end maps the public https address onto the server.
            let path = url.strip_prefix(&https_base).unwrap_or_else(|| panic!("{url} is under {https_base}"));
            let r = http.get(format!("{base}{path}")).send().await?;
            let status = r.status();
            let language = r.headers().get("content-language").map(|v| v.to_str().unwrap().to_owned());
            let body = r.text().await?;
            seen.push((path.to_owned(), status, language, lang.clone(), body));
        }
        std::fs::write(home.join("policies/pds-en.txt"), "edited by the operator\n").expect("edit");
        let edited = http.get(format!("{base}/pds/en")).send().await?.text().await?;
        let post = http.post(format!("{base}/pds/en")).send().await?.status();
        let missing = http.get(format!("{base}/pds/de")).send().await?.status();
        reqwest::Result::Ok((seen, edited, post, missing))
    });
    stop(child);
    let (seen, edited, post, missing) = result.expect("HTTP");
    for (path, status, language, lang, body) in seen {
        assert_eq!(status, 200, "{path}");
        assert_eq!(language.as_deref(), Some(lang.as_str()), "{path}");
        let shipped = std::fs::read_to_string(qcert_tests::policies_dir().join(format!("pds-{lang}.txt"))).unwrap();
        assert!(body.contains("PKI") && body == shipped, "{path} serves the pds-{lang}.txt init copied");
    }
    assert_eq!(edited, "edited by the operator\n");
    assert_eq!(post, 405);
    assert_eq!(missing, 404);
}
