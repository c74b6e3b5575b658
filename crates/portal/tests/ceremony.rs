#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)] // test code: a panic is the failure report
//! The key ceremonies end to end: `qcert init` on a new embedded home runs
//! them (root, issuing-ca, ocsp-responder, arl on two SoftHSM token stores),
//! outside judges agree on what they made (pkilint, openssl), the reports
//! list the fingerprints openssl computes, and `qcert serve` works with the
//! root token store gone: issuance, OCSP, CRLs, the ARL file as
//! /crl/root.crl, pyhanko-certvalidator live, the ARL expiry warning.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use qcert_tests::{pkilint, run_ok, venv_tool};

mod common;
use common::{issue_args, output, qcert};

fn init(home: &Path, base: Option<&str>) {
    let mut cmd = qcert(home);
    if let Some(b) = base {
        cmd.env("QCERT_PUBLIC_BASE_URL", b);
    }
    let (out, text) = output(cmd.arg("init"));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("officer-a-credential"), "init names the officers' credential files: {text}");
}

/// The reports of `home`, by ceremony name.
fn reports(home: &Path) -> Vec<(String, serde_json::Value, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(home.join("ceremonies")).expect("ceremonies/") {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            out.push((v["ceremony"].as_str().unwrap().to_owned(), v, p));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// SHA-256 of the certificate's SubjectPublicKeyInfo, as openssl computes it.
fn openssl_spki_sha256(cert: &Path) -> String {
    let pubkey = run_ok(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(cert));
    let mut child = Command::new("sh")
        .args(["-c", "openssl pkey -pubin -outform DER | openssl dgst -sha256 -r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), pubkey.as_bytes()).unwrap();
    drop(child.stdin.take());
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    assert!(child.wait().unwrap().success());
    s.split_whitespace().next().unwrap().to_owned()
}

fn arl_files(home: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(home.join("arl")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn ceremonies_make_a_hierarchy_the_judges_accept_with_honest_reports() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    init(&home, None);
    assert!(home.join("softhsm-root/softhsm2.conf").exists(), "a token store of the root's own");
    let online_conf = std::fs::read_to_string(home.join("softhsm/softhsm2.conf")).unwrap();
    assert!(!online_conf.contains("softhsm-root"), "the online store does not hold the root token");
    let config = std::fs::read_to_string(home.join("qcert.toml")).unwrap();
    assert!(!config.contains("qcert-root"), "qcert.toml (serve, notify) never names the root token");

    // Outside judges on what the ceremonies made.
    for name in ["root", "issuing", "ocsp"] {
        pkilint("lint_pkix_cert", &[], &home.join(format!("certs/{name}.pem"))).expect("CA certificates lint clean");
    }
    let arls = arl_files(&home);
    assert_eq!(arls.len(), 1, "{arls:?}");
    let arl_pem = tmp.path().join("arl.pem");
    run_ok(Command::new("openssl").args(["crl", "-inform", "DER", "-in"]).arg(&arls[0]).arg("-out").arg(&arl_pem));
    pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &arl_pem).expect("ARL lints clean");
    let text = run_ok(
        Command::new("openssl")
            .args(["crl", "-noout", "-text", "-inform", "DER", "-in"])
            .arg(&arls[0])
            .arg("-CAfile")
            .arg(home.join("certs/root.pem")),
    );
    assert!(text.contains("verify OK") || text.contains("Next Update"), "{text}");
    let verify = run_ok(
        Command::new("openssl")
            .args(["verify", "-x509_strict", "-CAfile"])
            .arg(home.join("certs/root.pem"))
            .arg("-untrusted")
            .arg(home.join("certs/issuing.pem"))
            .arg(home.join("certs/ocsp.pem")),
    );
    assert!(verify.contains(": OK"), "{verify}");

    // The reports: people, tokens, fingerprints equal to openssl's, stamped.
    let reports = reports(&home);
    let names: Vec<&str> = reports.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        ["arl", "issuing-ca", "ocsp-responder", "root", "seal", "tsa"],
        "init ends with the TSU and the seal"
    );
    for (name, r, path) in &reports {
        assert_eq!(r["officers"].as_array().unwrap().len(), 2, "{name}: two officers");
        for o in r["officers"].as_array().unwrap() {
            assert!(o["name"].as_str().unwrap().starts_with("Security Officer"), "{o}");
        }
        let hsm = r["hsm"].as_array().unwrap();
        assert!(
            !hsm.is_empty()
                && hsm.iter().all(|t| t["model"] == "SoftHSM v2" && !t["serial_number"].as_str().unwrap().is_empty()),
            "{name}: {hsm:?}"
        );
        let cfg = std::fs::read(home.join(r["config"]["path"].as_str().unwrap())).unwrap();
        assert_eq!(r["config"]["sha256"].as_str().unwrap(), sha256_hex(&cfg), "{name}: config hash");
        let stamp = std::fs::read_to_string(format!("{}.sha256", path.display())).unwrap();
        assert_eq!(
            stamp.split_whitespace().next().unwrap(),
            sha256_hex(&std::fs::read(path).unwrap()),
            "{name}: stamp"
        );
        let body = std::fs::read_to_string(path).unwrap();
        for secret in ["secrets/officer-a-credential", "secrets/officer-b-credential", "secrets/hsm-user-pin"] {
            let value = std::fs::read_to_string(home.join(secret)).unwrap();
            assert!(!body.contains(value.trim()), "{name}: no secret in the report");
        }
    }
    let by = |n: &str| &reports.iter().find(|r| r.0 == n).unwrap().1;
    assert_eq!(by("root")["witness"]["name"], "Independent Witness");
    for (ceremony, role, cert) in
        [("root", "root", "root"), ("issuing-ca", "issuing", "issuing"), ("ocsp-responder", "ocsp", "ocsp")]
    {
        let key = by(ceremony)["keys"].as_array().unwrap().iter().find(|k| k["role"] == role).unwrap().clone();
        assert_eq!(key["algorithm"], "ec-p384");
        assert_eq!(key["size_bits"], 384);
        assert_eq!(
            key["spki_sha256"].as_str().unwrap(),
            openssl_spki_sha256(&home.join(format!("certs/{cert}.pem"))),
            "{ceremony}: the report's fingerprint is openssl's"
        );
    }
    assert_eq!(by("root")["hsm"][0]["label"], "qcert-root");
    let issuing_tokens: Vec<&str> =
        by("issuing-ca")["hsm"].as_array().unwrap().iter().map(|t| t["label"].as_str().unwrap()).collect();
    assert_eq!(issuing_tokens, ["qcert-root", "qcert"], "issuing-ca signs on the root token, keys on the online one");
    let next = by("arl")["outputs"][0]["next_update"].as_str().unwrap().to_owned();
    let next = time::OffsetDateTime::parse(&next, &time::format_description::well_known::Rfc3339).unwrap();
    let days = (next - time::OffsetDateTime::now_utc()).whole_days();
    assert!((360..=366).contains(&days), "ARL valid 12 months: {days} days");

    // Audit log: each ceremony recorded with its report's hash.
    let (out, text) = output(qcert(&home).args(["audit", "verify"]));
    assert!(out.status.success(), "{text}");

    // Refusals: no second root, no overwritten output, a wrong credential,
    // an ARL valid more than 12 months.
    let (out, text) = output(qcert(&home).args(["ceremony", "root"]));
    assert!(!out.status.success() && text.contains("already"), "{text}");
    let (out, text) = output(qcert(&home).args(["ceremony", "issuing-ca"]));
    assert!(!out.status.success() && text.contains("already"), "{text}");
    let wrong = tmp.path().join("wrong.toml");
    let arl_cfg = std::fs::read_to_string(home.join("policies/ceremony-arl.toml")).unwrap();
    std::fs::write(home.join("secrets/impostor"), "not-the-right-credential\n").unwrap();
    std::fs::write(&wrong, arl_cfg.replace("secrets/officer-b-credential", "secrets/impostor")).unwrap();
    let (out, text) = output(qcert(&home).args(["ceremony", "arl", "--config"]).arg(&wrong));
    assert!(!out.status.success() && text.contains("do not open root token"), "{text}");
    assert!(!text.contains("not-the-right-credential"), "{text}");
    let long = tmp.path().join("long.toml");
    std::fs::write(&long, arl_cfg.replace("validity_months = 12", "validity_months = 13")).unwrap();
    let (out, text) = output(qcert(&home).args(["ceremony", "arl", "--config"]).arg(&long));
    assert!(!out.status.success() && text.contains("12"), "{text}");
    let ocsp_cfg = std::fs::read_to_string(home.join("policies/ceremony-ocsp-responder.toml")).unwrap();
    let again = tmp.path().join("again.toml");
    std::fs::write(
        &again,
        ocsp_cfg.replace("report = \"ceremonies/ocsp-responder-{date}.json\"", "report = \"ceremonies/x.json\""),
    )
    .unwrap();
    let (out, text) = output(qcert(&home).args(["ceremony", "ocsp-responder", "--config"]).arg(&again));
    assert!(!out.status.success() && text.contains("never overwrites"), "{text}");
    assert_eq!(arl_files(&home).len(), 1, "nothing written by refused ceremonies");

    // Renewing the OCSP responder: a new key and certificate, served next start.
    let renew = tmp.path().join("renew.toml");
    std::fs::write(
        &renew,
        ocsp_cfg
            .replace("label = \"qcert-ocsp-responder\"", "label = \"qcert-ocsp-responder-2\"")
            .replace("certs/ocsp.pem", "certs/ocsp-2.pem"),
    )
    .unwrap();
    let (out, text) = output(qcert(&home).args(["ceremony", "ocsp-responder", "--config"]).arg(&renew));
    assert!(out.status.success(), "{text}");
    pkilint("lint_pkix_cert", &[], &home.join("certs/ocsp-2.pem")).expect("renewed responder lints clean");
    let (out, text) = output(qcert(&home).args(["crl", "--scope", "issuing"]));
    assert!(out.status.success(), "the online CA opens with the renewed responder: {text}");

    // The QTSP's seal and a time-stamping unit (made by `qcert init`), from the issuing CA.
    for (name, purpose) in [("seal", "any"), ("tsa", "timestampsign")] {
        let cert = home.join(format!("certs/{name}.pem"));
        pkilint("lint_pkix_cert", &[], &cert).unwrap_or_else(|e| panic!("{name} lints clean: {e}"));
        let verify = run_ok(
            Command::new("openssl")
                .args(["verify", "-x509_strict", "-purpose", purpose, "-CAfile"])
                .arg(home.join("certs/root.pem"))
                .arg("-untrusted")
                .arg(home.join("certs/issuing.pem"))
                .arg(&cert),
        );
        assert!(verify.contains(": OK"), "{name}: {verify}");
        let (out, text) = output(qcert(&home).args(["ceremony", name]));
        assert!(!out.status.success() && text.contains("already"), "{name} twice: {text}");
    }
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "extendedKeyUsage", "-in"])
            .arg(home.join("certs/tsa.pem")),
    );
    assert!(text.contains("critical") && text.contains("Time Stamping"), "{text}");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get(url: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl").args(["-s", "-o", "-", "-w", "\n%{http_code}", url]).output().unwrap();
    let mut body = out.stdout;
    let pos = body.iter().rposition(|b| *b == b'\n').unwrap();
    let code = String::from_utf8_lossy(&body[pos + 1..]).trim().parse().unwrap();
    body.truncate(pos);
    (code, body)
}

#[test]
fn serve_runs_without_the_root_token_and_serves_the_ceremony_arl() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    init(&home, Some(&base));
    // The root token goes into the safe: serve must not need it.
    std::fs::rename(home.join("softhsm-root"), tmp.path().join("safe")).unwrap();

    let log = tmp.path().join("serve.log");
    let guard = start_serve(&home, &base, port, &log, None);

    let (code, arl) = get(&format!("{base}/crl/root.crl"));
    assert_eq!(code, 200);
    assert_eq!(arl, std::fs::read(&arl_files(&home)[0]).unwrap(), "/crl/root.crl is the ceremony's ARL file");
    let (code, issuing_crl) = get(&format!("{base}/crl/issuing.crl"));
    assert_eq!(code, 200);
    assert!(!issuing_crl.is_empty());
    let (_, metrics) = get(&format!("{base}/metrics"));
    let metrics = String::from_utf8(metrics).unwrap();
    let left: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("qcert_arl_seconds_until_next_update "))
        .expect("ARL gauge")
        .parse()
        .unwrap();
    assert!(left > 300 * 86_400, "{left}");
    assert!(metrics.contains("qcert_arl_expiring 0"), "{metrics}");

    // The TSA of a fresh home works: an openssl query, curl, openssl verify.
    let dir = tmp.path();
    std::fs::write(dir.join("doc.txt"), b"a document").unwrap();
    run_ok(
        Command::new("openssl")
            .args(["ts", "-query", "-sha384", "-cert", "-data", "doc.txt", "-out", "q.tsq"])
            .current_dir(dir),
    );
    run_ok(
        Command::new("curl")
            .args(["-sf", "-H", "Content-Type: application/timestamp-query", "--data-binary", "@q.tsq", "-o", "r.tsr"])
            .arg(format!("{base}/tsa"))
            .current_dir(dir),
    );
    let chain = format!(
        "{}{}",
        std::fs::read_to_string(home.join("certs/root.pem")).unwrap(),
        std::fs::read_to_string(home.join("certs/issuing.pem")).unwrap()
    );
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    let verify = run_ok(
        Command::new("openssl")
            .args(["ts", "-verify", "-data", "doc.txt", "-in", "r.tsr", "-CAfile", "chain.pem", "-untrusted"])
            .arg(home.join("certs/tsa.pem"))
            .current_dir(dir),
    );
    assert!(verify.contains("Verification: OK"), "{verify}");

    // Issuance and OCSP with the root offline; pyhanko-certvalidator live.
    let csr = tmp.path().join("req.der");
    std::fs::write(&csr, qcert_tests::openssl_csr(qcert_tests::CsrKey::P256)).unwrap();
    let ee = tmp.path().join("ee.pem");
    let (out, text) = output(qcert(&home).env("QCERT_PUBLIC_BASE_URL", &base).args(issue_args(&csr, &ee)));
    assert!(out.status.success(), "issuance with the root token gone: {text}");
    let ocsp = run_ok(
        Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(home.join("certs/issuing.pem"))
            .arg("-CAfile")
            .arg(home.join("certs/root.pem"))
            .arg("-cert")
            .arg(&ee)
            .args(["-url", &format!("{base}/ocsp")]),
    );
    assert!(ocsp.contains(": good"), "{ocsp}");
    for mode in ["ocsp", "crl"] {
        let out = Command::new(venv_tool("python3"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/judges/pyhanko_validate.py"))
            .arg(home.join("certs/root.pem"))
            .arg(home.join("certs/issuing.pem"))
            .arg(&ee)
            .arg(mode)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("VALID"), "pyhanko {mode}: {text}");
    }
    // `qcert crl` prints the current ARL; `notify` runs: neither needs the root token.
    let (out, text) = output(qcert(&home).args(["crl", "--scope", "root"]));
    assert!(out.status.success(), "the current ARL is printed: {text}");
    let (out, text) = output(qcert(&home).args(["notify", "--once"]));
    assert!(out.status.success(), "notify without the root token: {text}");
    drop(guard);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(!log_text.contains("single-token home"), "{log_text}");

    // A file that is not the root's ARL is refused; a newer ARL file copied
    // in (here: one the registry does not have yet) is served.
    std::fs::write(home.join("arl/root-arl-9.crl"), &issuing_crl).unwrap();
    std::fs::rename(tmp.path().join("safe"), home.join("softhsm-root")).unwrap();
    let (out, text) = output(qcert(&home).args(["ceremony", "arl"]));
    assert!(out.status.success(), "{text}");
    std::fs::rename(home.join("softhsm-root"), tmp.path().join("safe")).unwrap();
    let second = arl_files(&home).into_iter().find(|p| p.ends_with("root-arl-2.crl")).expect("second ARL");
    // The registry forgets it, as on an online machine the ARL file was copied to.
    let db = home.join("qcert.db");
    let sql = Command::new(venv_tool("python3"))
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM crls WHERE crl_number = 2 AND issuer_serial = (SELECT certificate_serial FROM ca_keys WHERE role = \"root\")'); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(sql.success(), "registry at {}", db.display());

    // The clock 10 days before the ARL's nextUpdate: warned in the log and on /metrics.
    let next =
        run_ok(Command::new("openssl").args(["crl", "-noout", "-nextupdate", "-inform", "DER", "-in"]).arg(&second));
    let next = next.trim().trim_start_matches("nextUpdate=").to_owned();
    let fake = run_ok(Command::new("date").args(["-u", "-d", &format!("{next} 10 days ago"), "+%FT%TZ"]));
    let log2 = tmp.path().join("serve2.log");
    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let guard = start_serve(&home, &base, port2, &log2, Some(fake.trim()));
    let (_, served) = get(&format!("{base2}/crl/root.crl"));
    assert_eq!(served, std::fs::read(&second).unwrap(), "the newer ARL file is served");
    let (_, metrics) = get(&format!("{base2}/metrics"));
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("qcert_arl_expiring 1"), "{metrics}");
    drop(guard);
    let log_text = std::fs::read_to_string(&log2).unwrap();
    assert!(log_text.contains("expires in less than 30 days"), "{log_text}");
    assert!(log_text.contains("ARL file not taken"), "the forged ARL is refused: {log_text}");
}

/// `qcert serve` on `port`, its log in `log`, killed when dropped.
fn start_serve(home: &Path, base: &str, port: u16, log: &Path, fake_now: Option<&str>) -> Kill {
    let mut cmd = qcert(home);
    cmd.env("QCERT_PUBLIC_BASE_URL", base).env("QCERT_LOG", "info");
    if let Some(t) = fake_now {
        cmd.env("QCERT_FAKE_NOW", t);
    }
    cmd.stderr(std::fs::File::create(log).unwrap());
    let mut child =
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}")]).stdout(Stdio::piped()).spawn().expect("serve");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.contains("listening on"), "{line} {}", std::fs::read_to_string(log).unwrap_or_default());
    Kill(child)
}

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pyhanko(home: &Path, issuing: &str, ee: &Path, mode: &str) -> (bool, String) {
    let out = Command::new(venv_tool("python3"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/judges/pyhanko_validate.py"))
        .arg(home.join("certs/root.pem"))
        .arg(home.join(format!("certs/{issuing}.pem")))
        .arg(ee)
        .arg(mode)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.code().is_some_and(|c| c != 2), "pyhanko tooling: {text}");
    (out.status.success(), text)
}

fn ocsp_status(home: &Path, issuing: &str, ee: &Path, base: &str) -> String {
    run_ok(
        Command::new("openssl")
            .args(["ocsp", "-issuer"])
            .arg(home.join(format!("certs/{issuing}.pem")))
            .arg("-CAfile")
            .arg(home.join("certs/root.pem"))
            .arg("-cert")
            .arg(ee)
            .args(["-url", &format!("{base}/ocsp")]),
    )
}

#[test]
fn rollover_moves_issuance_to_a_new_ca_while_the_old_one_keeps_answering() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    init(&home, Some(&base));
    let issue = |name: &str| {
        let csr = tmp.path().join(format!("{name}.der"));
        std::fs::write(&csr, qcert_tests::openssl_csr(qcert_tests::CsrKey::P256)).unwrap();
        let ee = tmp.path().join(format!("{name}.pem"));
        let (out, text) = output(qcert(&home).env("QCERT_PUBLIC_BASE_URL", &base).args(issue_args(&csr, &ee)));
        assert!(out.status.success(), "{text}");
        ee
    };
    let old = issue("old");

    // The rollover: a second issuing CA certified by the root, then its responder.
    let cfg = std::fs::read_to_string(home.join("policies/ceremony-issuing-ca.toml")).unwrap();
    let rollover = tmp.path().join("rollover.toml");
    std::fs::write(
        &rollover,
        cfg.replace("ceremony = \"issuing-ca\"", "ceremony = \"issuing-ca\"\nrollover = true")
            .replace("label = \"qcert-issuing-ca\"", "label = \"qcert-issuing-ca-2\"")
            .replace("Qualified Signature CA\"", "Qualified Signature CA 2\"")
            .replace("certs/issuing.pem", "certs/issuing-2.pem")
            .replace("ceremonies/issuing-ca-{date}", "ceremonies/rollover-{date}"),
    )
    .unwrap();
    let cfg = std::fs::read_to_string(home.join("policies/ceremony-ocsp-responder.toml")).unwrap();
    let responder = tmp.path().join("ocsp-2.toml");
    std::fs::write(
        &responder,
        cfg.replace("label = \"qcert-ocsp-responder\"", "label = \"qcert-ocsp-responder-2\"")
            .replace("certs/ocsp.pem", "certs/ocsp-2.pem")
            .replace("ceremonies/ocsp-responder-{date}", "ceremonies/ocsp-responder-2-{date}"),
    )
    .unwrap();
    let (out, text) = output(
        qcert(&home).env("QCERT_PUBLIC_BASE_URL", &base).args(["ceremony", "issuing-ca", "--config"]).arg(&rollover),
    );
    assert!(out.status.success(), "{text}");
    let (out, text) = output(
        qcert(&home)
            .env("QCERT_PUBLIC_BASE_URL", &base)
            .args(["ceremony", "ocsp-responder", "--config"])
            .arg(&responder),
    );
    assert!(out.status.success(), "{text}");
    for name in ["issuing-2", "ocsp-2"] {
        let cert = home.join(format!("certs/{name}.pem"));
        let text = run_ok(Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert));
        assert!(!text.contains("pki.qcert-demo.eu"), "{text}");
    }
    let new = issue("new");
    let issuer = |ee: &Path| run_ok(Command::new("openssl").args(["x509", "-noout", "-issuer", "-in"]).arg(ee));
    assert!(issuer(&new).contains("Signature CA 2"), "new issuance moves to the new CA: {}", issuer(&new));
    assert!(!issuer(&old).contains("Signature CA 2"));
    let crl_dp =
        run_ok(Command::new("openssl").args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"]).arg(&new));
    assert!(crl_dp.contains("/crl/issuing-2.crl"), "each CA its own CRL: {crl_dp}");

    let log = tmp.path().join("serve.log");
    let guard = start_serve(&home, &base, port, &log, None);
    let (code, crl1) = get(&format!("{base}/crl/issuing.crl"));
    let (code2, crl2) = get(&format!("{base}/crl/issuing-2.crl"));
    assert_eq!((code, code2), (200, 200));
    assert_ne!(crl1, crl2);
    let (code, cert2) = get(&format!("{base}/certs/issuing-2.crt"));
    assert_eq!(code, 200);
    assert!(!cert2.is_empty());
    assert_eq!(get(&format!("{base}/crl/issuing-3.crl")).0, 404);

    // Both validated live, each through its own CA's OCSP responder and CRL.
    for (ee, ca) in [(&old, "issuing"), (&new, "issuing-2")] {
        // (openssl first: pyhanko then gets the pre-signed answer, not one
        // signed after its validation moment on a busy machine.)
        assert!(ocsp_status(&home, ca, ee, &base).contains(": good"));
        for mode in ["ocsp", "crl"] {
            let (ok, text) = pyhanko(&home, ca, ee, mode);
            assert!(ok, "{} {mode}: {text}", ee.display());
        }
    }
    // Revocation works for both.
    for ee in [&old, &new] {
        let serial = run_ok(Command::new("openssl").args(["x509", "-noout", "-serial", "-in"]).arg(ee));
        let serial = serial.trim().trim_start_matches("serial=").to_owned();
        let (out, text) = output(qcert(&home).args(["revoke", "--serial", &serial, "--reason", "keyCompromise"]));
        assert!(out.status.success(), "{text}");
    }
    for (ee, ca) in [(&old, "issuing"), (&new, "issuing-2")] {
        let mut status = String::new();
        for _ in 0..20 {
            status = ocsp_status(&home, ca, ee, &base);
            if status.contains(": revoked") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        assert!(status.contains(": revoked"), "{ca}: {status}");
        let (ok, text) = pyhanko(&home, ca, ee, "crl");
        assert!(!ok && text.contains("INVALID"), "{ca} crl: {text}");
    }
    drop(guard);
}

/// A home made before the ceremonies (root key on the online token, no
/// ceremony files) keeps working, and `serve` says how to move the root.
#[test]
fn a_single_token_home_keeps_working_and_is_told_to_move_the_root_offline() {
    let tmp = tempfile::tempdir().expect("tmp");
    let home = tmp.path().join("home");
    let policies = home.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for name in ["ca.toml", "qcp-n-qscd.toml", "pds-en.txt", "pds-ro.txt"] {
        std::fs::copy(qcert_tests::policies_dir().join(name), policies.join(name)).unwrap();
    }
    let (out, text) = output(qcert(&home).arg("init"));
    assert!(out.status.success(), "{text}");
    assert!(!home.join("softhsm-root").exists(), "the old layout: one token");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = tmp.path().join("serve.log");
    let guard = start_serve(&home, &base, port, &log, None);
    let (code, arl) = get(&format!("{base}/crl/root.crl"));
    assert_eq!(code, 200, "the ARL is still signed online");
    assert!(!arl.is_empty());
    drop(guard);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("single-token home") && text.contains("Moving the root offline"), "{text}");
}
