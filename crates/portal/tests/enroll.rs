#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! `qcert enroll`, the holder's token tool, against a SoftHSM "holder token"
//! of its own and a real `qcert serve`: the first key and request made on
//! the token, the certificate loaded next to it; the renewal ordered with a
//! request signed on the token, paid, issued by the notifier 3 days before
//! expiry; `enroll fetch` loads the new certificate and deletes the old one
//! (checked with `pkcs11-tool --list-objects`); pyHanko signs a PDF with the
//! token's new key and certificate and validates it live over our OCSP;
//! `enroll revoke` revokes it by a request signed on the token.
//!
//! Time: the first certificate is issued (QCERT_FAKE_NOW) so that it
//! expires 2-3 days from now, the renewal is ordered 2 days ago, and the
//! notifier runs at the old notAfter - 3 days (in the past): the renewed
//! certificate is valid now, for pyHanko's live validation.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{output, qcert};
use qcert_tests::{Backend, TestDb};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const TOKEN: &str = "holder-card";
const PIN: &str = "314159";

/// `qcert serve` on a fixed port (the certificates' URLs name it), killed on drop.
struct Server(Child);

impl Server {
    fn start(mut cmd: Command, port: u16) -> Server {
        let child = cmd
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "qcert serve did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server(child)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("format")
}

/// The holder's side: a SoftHSM store of its own with one initialised token.
struct Holder {
    conf: PathBuf,
    pin_file: PathBuf,
    base: String,
}

impl Holder {
    fn new(dir: &Path, base: &str) -> Holder {
        let store = dir.join("holder-softhsm");
        std::fs::create_dir_all(&store).unwrap();
        let conf = qcert_hsm::softhsm::write_config(&store).expect("softhsm conf");
        let out = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "27182818"])
            .env(qcert_hsm::softhsm::CONF_ENV, &conf)
            .output()
            .expect("softhsm2-util");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pin_file = dir.join("pin.txt");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Holder { conf, pin_file, base: base.to_owned() }
    }

    /// `qcert enroll <args>` on the holder's token; (success, stdout, all output).
    fn enroll(&self, args: &[&str], now: Option<OffsetDateTime>) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qcert"));
        cmd.args(["enroll", "--server", &self.base, "--module", qcert_hsm::softhsm::DEFAULT_MODULE, "--token", TOKEN])
            .arg("--pin-file")
            .arg(&self.pin_file)
            .args(args)
            .env(qcert_hsm::softhsm::CONF_ENV, &self.conf)
            .env_remove("QCERT_FAKE_NOW")
            .stdin(Stdio::null());
        if let Some(t) = now {
            cmd.env("QCERT_FAKE_NOW", rfc3339(t));
        }
        let out = cmd.output().expect("run qcert enroll");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        (out.status.success(), stdout, all)
    }

    /// `pkcs11-tool --list-objects --type cert` (OpenSC): the certificate labels on the token.
    fn certificate_labels(&self) -> Vec<String> {
        let out = Command::new("pkcs11-tool")
            .args(["--module", qcert_hsm::softhsm::DEFAULT_MODULE, "--token-label", TOKEN, "--login", "--pin", PIN])
            .args(["--list-objects", "--type", "cert"])
            .env(qcert_hsm::softhsm::CONF_ENV, &self.conf)
            .output()
            .expect("pkcs11-tool (scripts/test installs opensc)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text.lines().filter_map(|l| l.trim().strip_prefix("label:")).map(|l| l.trim().to_owned()).collect()
    }
}

fn openssl(args: &[&str], dir: &Path) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn not_after(pem: &Path) -> OffsetDateTime {
    let text = openssl(
        &["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", &pem.display().to_string()],
        Path::new("."),
    );
    let date = text.trim().strip_prefix("notAfter=").expect("enddate").replace(' ', "T");
    OffsetDateTime::parse(&date, &Rfc3339).unwrap_or_else(|e| panic!("{date:?}: {e}"))
}

fn serial_of(pem: &Path) -> String {
    let text = openssl(&["x509", "-noout", "-serial", "-in", &pem.display().to_string()], Path::new("."));
    text.trim().trim_start_matches("serial=").to_ascii_lowercase()
}

fn the_holder_renews_on_the_token_and_signs_with_the_new_certificate(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let db = (backend == Backend::Postgres).then(|| rt.block_on(TestDb::new(Backend::Postgres)));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let home = d.join("home");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let q = |now: Option<OffsetDateTime>| {
        let mut c = qcert(&home);
        c.env("QCERT_PUBLIC_BASE_URL", &base);
        if let Some(db) = &db {
            c.env("QCERT_DATABASE_URL", &db.url);
        }
        if let Some(t) = now {
            c.env("QCERT_FAKE_NOW", rfc3339(t));
        }
        c
    };
    let (out, text) = output(q(None).arg("init"));
    assert!(out.status.success(), "{text}");
    let holder = Holder::new(d, &base);
    let now = OffsetDateTime::now_utc();

    // 1. A key pair and its request, made on the token; openssl checks the request's self-signature.
    let (ok, csr, all) = holder.enroll(&["request", "--label", "sig-2026"], None);
    assert!(ok, "{all}");
    std::fs::write(d.join("req.pem"), &csr).unwrap();
    assert!(openssl(&["req", "-verify", "-noout", "-in", "req.pem"], d).contains("verify OK"), "{csr}");
    let (ok, _, all) = holder.enroll(&["request", "--label", "sig-2026"], None);
    assert!(!ok && all.contains("sig-2026"), "a second key under the same label is refused: {all}");

    // 2. Issued (1 year, dated so that it expires 2-3 days from now), loaded onto the token.
    let issued_at = now - time::Duration::days(363);
    let mut args = common::issue_args(&d.join("req.pem"), &d.join("first.pem"));
    let years = args.iter().position(|a| a == "--years").unwrap();
    args[years + 1] = "1".into();
    let (out, text) = output(q(Some(issued_at)).args(&args));
    assert!(out.status.success(), "{text}");
    let (ok, _, all) =
        holder.enroll(&["load", "--label", "sig-2026", &d.join("first.pem").display().to_string()], None);
    assert!(ok, "{all}");
    assert_eq!(holder.certificate_labels(), ["sig-2026"]);
    let first_serial = serial_of(&d.join("first.pem"));
    let deadline = not_after(&d.join("first.pem")) - time::Duration::days(3);
    assert!(deadline <= now && deadline > now - time::Duration::days(2), "{deadline} vs {now}");

    // 3. The renewal, ordered two days ago with a request signed on the token; then paid.
    let ordered_at = deadline - time::Duration::days(1);
    let renewal_id = {
        let _server = Server::start(q(Some(ordered_at)), port);
        let (ok, stdout, all) = holder
            .enroll(&["renew", "--label", "sig-2026", "--new-label", "sig-2027", "--years", "1"], Some(ordered_at));
        assert!(ok, "{all}");
        let id = stdout
            .split_whitespace()
            .skip_while(|w| *w != "renewal")
            .nth(1)
            .unwrap_or_else(|| panic!("renewal id in {stdout:?}"))
            .to_owned();
        // `qcert init` put the TEST provider's checkout in renewal_url: the holder is told where to pay.
        assert!(stdout.contains(&format!("pay it at {base}/pay/test/renewal/{id}")), "{stdout}");
        let key = qcert_ca_core::payment::WebhookKey::load(&home.join("secrets/payment-webhook-key")).expect("key");
        let event =
            serde_json::to_vec(&serde_json::json!({"event_id": "evt-renew-1", "renewal_id": id, "status": "paid"}))
                .unwrap();
        let signature = qcert_ca_core::payment::sign_webhook(&key, &event, ordered_at);
        let resp = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/payments/webhook"))
                .header("content-type", "application/json")
                .header("qcert-signature", signature)
                .body(event)
                .send()
                .await
                .unwrap()
        });
        assert!(resp.status().is_success(), "{:?}", rt.block_on(resp.text()));
        // Not issued yet: fetch says so and changes nothing on the token.
        let (ok, _, all) = holder.enroll(&["fetch", "--label", "sig-2026"], None);
        assert!(!ok && all.contains("not issued yet"), "{all}");
        id
    };

    // 4. The notifier at the old notAfter - 3 days issues it.
    let (out, text) = output(q(Some(deadline)).args(["notify", "--once"]));
    assert!(out.status.success() && text.contains("renewals: 1 issued"), "{text}");

    // 5. `enroll fetch` (server on the real clock) loads it; the old certificate object is gone.
    let _server = Server::start(q(None), port);
    let (ok, stdout, all) = holder.enroll(&["fetch", "--label", "sig-2026"], None);
    assert!(ok, "{all}");
    assert!(stdout.contains("\"sig-2027\"") && stdout.contains(&first_serial), "{stdout}");
    assert_eq!(holder.certificate_labels(), ["sig-2027"], "renewal {renewal_id}");

    // 6. pyHanko signs with the token's new key and certificate; validated live over our OCSP.
    let pdf = d.join("signed.pdf");
    let judge = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/judges/pkcs11_sign.py");
    let out = Command::new(qcert_tests::venv_tool("python"))
        .arg(&judge)
        .args([qcert_hsm::softhsm::DEFAULT_MODULE, TOKEN])
        .arg(&holder.pin_file)
        .arg("sig-2027")
        .arg(&pdf)
        .env(qcert_hsm::softhsm::CONF_ENV, &holder.conf)
        .output()
        .expect("pkcs11_sign.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("SIGNED"), "{text}");
    let validate = || {
        let out = Command::new(qcert_tests::venv_tool("pyhanko"))
            .args(["sign", "validate", "--force-revinfo", "--trust-replace", "--trust"])
            .arg(home.join("certs/root.pem"))
            .arg(&pdf)
            .output()
            .expect("pyhanko sign validate");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (valid, text) = validate();
    assert!(valid && text.contains(":INTACT:TRUSTED"), "{text}");

    // 7. `enroll revoke`: a self-revocation signed on the token; pyHanko now says revoked.
    let (ok, stdout, all) = holder.enroll(&["revoke", "--label", "sig-2027", "--reason", "keyCompromise"], None);
    assert!(ok && stdout.contains("revoked"), "{all}");
    let (valid, text) = validate();
    assert!(!valid && text.to_ascii_lowercase().contains("revoked"), "{text}");
    let (ok, _, all) = holder.enroll(&["revoke", "--label", "sig-2026"], None);
    assert!(!ok && all.contains("no certificate \"sig-2026\""), "{all}");
    drop(_server);
    drop(db);
}

#[test]
fn the_holder_renews_on_the_token_and_signs_with_the_new_certificate_sqlite() {
    the_holder_renews_on_the_token_and_signs_with_the_new_certificate(Backend::Sqlite);
}

#[test]
fn the_holder_renews_on_the_token_and_signs_with_the_new_certificate_postgres() {
    the_holder_renews_on_the_token_and_signs_with_the_new_certificate(Backend::Postgres);
}

#[test]
fn a_wrong_pin_or_token_is_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let holder = Holder::new(dir.path(), "http://127.0.0.1:9");
    std::fs::write(&holder.pin_file, "000000\n").unwrap();
    let (ok, _, all) = holder.enroll(&["request", "--label", "x"], None);
    assert!(!ok && all.contains("cannot open the token") && !all.contains("000000"), "{all}");
    std::fs::write(&holder.pin_file, "\n").unwrap();
    let (ok, _, all) = holder.enroll(&["request", "--label", "x"], None);
    assert!(!ok && all.contains("the PIN is empty"), "{all}");
}
