#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! The time-stamping authority end to end: `POST /tsa` on port 0, requests
//! made by `openssl ts -query`, answers judged by `openssl ts -reply -text`
//! and `openssl ts -verify`, the registry's record of each token, the
//! in-process `Tsa::stamp`, and pyHanko signing a PDF with `--timestamp-url`
//! at us and validating it as PAdES B-T, then signing with a certificate of
//! ours, embedding our OCSP answers and CRLs (B-LT), and validating that with
//! the embedded revocation information only, after the server is stopped.
//! On SQLite and PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::Decode;
use qcert_ca_core::ca::ServiceCert;
use qcert_ca_core::ceremony;
use qcert_ca_core::cms::DigestAlgorithm;
use qcert_ca_core::policy::CaKeySpec;
use qcert_ca_core::tsa::Tsa;
use qcert_ca_core::{Ca, Holder, KeySource, ValidityYears};
use qcert_tests::{
    new_ca_at, new_desk, new_orders, on_both_stores, random_hex, run_ok, serve_orders_on, test_clock, venv_tool,
    write_pem, TestDb,
};

const QUERY: &str = "application/timestamp-query";

/// The TSU ceremony's code path: key `[tsa] key_label` on the CA's token,
/// certificate from the issuing CA. Returns its PEM file.
async fn make_tsu(ca: &Ca, dir: &Path) -> PathBuf {
    let label = ca.policy().tsa.as_ref().unwrap().key_label.clone();
    let der = qcert_tests::service_certificate(ca, ServiceCert::Tsa, &label, "qcert Test Time-Stamping Unit").await;
    write_pem(dir, "tsa.pem", "CERTIFICATE", &der)
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run_ok(Command::new("openssl").args(args).current_dir(dir))
}

async fn post(http: &reqwest::Client, base: &str, content_type: &str, body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let r = http.post(format!("{base}/tsa")).header("content-type", content_type).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

/// `openssl ts -query` for `data` with `args`, POSTed; the reply's file.
async fn stamp_with_openssl(http: &reqwest::Client, base: &str, dir: &Path, args: &[&str]) -> PathBuf {
    let name = random_hex(4);
    let mut query = vec!["ts", "-query", "-data", "data.txt", "-out"];
    let tsq = format!("{name}.tsq");
    query.push(&tsq);
    query.extend_from_slice(args);
    openssl(dir, &query);
    let (status, ct, body) = post(http, base, QUERY, std::fs::read(dir.join(&tsq)).unwrap()).await;
    assert_eq!((status, ct.as_str()), (200, "application/timestamp-reply"), "{}", String::from_utf8_lossy(&body));
    let tsr = dir.join(format!("{name}.tsr"));
    std::fs::write(&tsr, body).unwrap();
    tsr
}

fn reply_text(dir: &Path, tsr: &Path) -> String {
    openssl(dir, &["ts", "-reply", "-text", "-in", tsr.to_str().unwrap()])
}

/// The value after `label` on its line of openssl's text.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines().find_map(|l| l.trim().strip_prefix(label)).unwrap_or_else(|| panic!("{label} in:\n{text}")).trim()
}

async fn time_stamping_authority(db: &TestDb) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (ca, _config) = new_ca_at(db, test_clock(), &base).await;
    let desk = new_desk(&ca).await;
    let server = serve_orders_on(listener, new_orders(&desk, [7u8; 32], &base)).await;
    let http = reqwest::Client::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("data.txt"), b"the confirmation document, as the holder signed it\n").unwrap();
    let h = ca.hierarchy();
    std::fs::write(
        dir.join("chain.pem"),
        format!("{}{}", qcert_ca_core::pem("CERTIFICATE", &h.root), qcert_ca_core::pem("CERTIFICATE", &h.issuing)),
    )
    .unwrap();
    write_pem(dir, "root.pem", "CERTIFICATE", &h.root);
    let policy = ca.policy().tsa.as_ref().unwrap().policy_oid.to_string();

    // Before the TSU ceremony: a problem that says what to do, not a 500.
    openssl(dir, &["ts", "-query", "-data", "data.txt", "-sha256", "-out", "early.tsq"]);
    let (status, ct, body) = post(&http, &server.base, QUERY, std::fs::read(dir.join("early.tsq")).unwrap()).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!((status, ct.as_str()), (503, "application/problem+json"), "{text}");
    assert!(text.contains("qcert ceremony tsa"), "{text}");
    let metrics = |http: reqwest::Client, base: String| async move {
        http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
    };
    let m = metrics(http.clone(), server.base.clone()).await;
    assert!(m.contains("\nqcert_tsa_available 0\n") && !m.contains("qcert_tsa_certificate_seconds"), "{m}");

    // After it, the running server loads the TSU on the next request.
    let tsa_pem = make_tsu(&ca, dir).await;
    let before = ca.registry().time_stamp_count().await.unwrap();
    for (md, with_cert) in [("-sha384", true), ("-sha256", false), ("-sha512", true)] {
        let mut args = vec![md];
        if with_cert {
            args.push("-cert");
        }
        let tsr = stamp_with_openssl(&http, &server.base, dir, &args).await;
        let text = reply_text(dir, &tsr);
        assert!(text.contains("Status: Granted."), "{md}: {text}");
        assert_eq!(field(&text, "Policy OID:"), policy, "{md}");
        assert_eq!(field(&text, "Accuracy:"), "0x01 seconds, unspecified millis, unspecified micros", "{md}");
        assert_eq!(field(&text, "Ordering:"), "no");
        assert!(field(&text, "TSA:").contains("qcert Test Time-Stamping Unit"), "{md}: {text}");
        let tsq = tsr.with_extension("tsq");
        let query = openssl(dir, &["ts", "-query", "-text", "-in", tsq.to_str().unwrap()]);
        assert_eq!(field(&text, "Nonce:"), field(&query, "Nonce:"), "{md}: nonce echoed");
        assert_eq!(field(&text, "Hash Algorithm:"), md.trim_start_matches('-'), "{md}");

        // The relying party's check: chain to our root, TSU as untrusted.
        let verify = openssl(
            dir,
            &[
                "ts",
                "-verify",
                "-data",
                "data.txt",
                "-in",
                tsr.to_str().unwrap(),
                "-CAfile",
                "chain.pem",
                "-untrusted",
                tsa_pem.to_str().unwrap(),
            ],
        );
        assert!(verify.contains("Verification: OK"), "{md}: {verify}");
        // With certReq the TSU certificate travels in the token (no -untrusted needed).
        if with_cert {
            let verify = openssl(
                dir,
                &["ts", "-verify", "-data", "data.txt", "-in", tsr.to_str().unwrap(), "-CAfile", "chain.pem"],
            );
            assert!(verify.contains("Verification: OK"), "{md}: {verify}");
        }
        // Another document does not verify.
        std::fs::write(dir.join("other.txt"), b"another document").unwrap();
        let out = Command::new("openssl")
            .args(["ts", "-verify", "-data", "other.txt", "-in", tsr.to_str().unwrap(), "-CAfile", "chain.pem"])
            .args(["-untrusted", tsa_pem.to_str().unwrap()])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{md}: a token verifies only its own imprint");

        // The registry holds the token's serial, genTime from the clock, the imprint.
        let serial = field(&text, "Serial number:").trim_start_matches("0x").to_ascii_lowercase();
        let record = ca.registry().time_stamp(&serial).await.unwrap().unwrap_or_else(|| panic!("{serial} recorded"));
        assert_eq!(record.gen_time, ca.clock().now().unix_timestamp());
        assert_eq!(record.policy, policy);
        let hash = match md {
            "-sha256" => DigestAlgorithm::Sha256,
            "-sha384" => DigestAlgorithm::Sha384,
            _ => DigestAlgorithm::Sha512,
        };
        let data = std::fs::read(dir.join("data.txt")).unwrap();
        assert_eq!(record.message_imprint, hex::encode(qcert_ca_core::cms::digest(hash, &data)), "{md}");
    }
    assert_eq!(ca.registry().time_stamp_count().await.unwrap(), before + 3, "one record per token");

    // Refusals: each with its failInfo, a reason, and nothing recorded.
    for (args, fail) in [
        (&["-sha256", "-tspolicy", "1.2.3.4"][..], "the requested TSA policy is not supported by the TSA"),
        (&["-md5"][..], "unrecognized or unsupported algorithm identifier"),
        (&["-sha1"][..], "unrecognized or unsupported algorithm identifier"),
    ] {
        let tsr = stamp_with_openssl(&http, &server.base, dir, args).await;
        let text = reply_text(dir, &tsr);
        assert!(text.contains("Status: Rejected."), "{args:?}: {text}");
        assert!(text.contains(fail), "{args:?}: {text}");
        assert!(text.contains("TST info:\nNot included."), "{args:?}: {text}");
    }
    // Our own policy, asked for by name, is fine.
    let tsr = stamp_with_openssl(&http, &server.base, dir, &["-sha256", "-tspolicy", &policy]).await;
    assert!(reply_text(dir, &tsr).contains("Status: Granted."));
    // Junk and a truncated request: badDataFormat, 200, a TimeStampResp.
    let good = std::fs::read(dir.join("early.tsq")).unwrap();
    for junk in [b"not DER at all".to_vec(), good[..good.len() - 3].to_vec(), Vec::new()] {
        let (status, ct, body) = post(&http, &server.base, QUERY, junk).await;
        assert_eq!((status, ct.as_str()), (200, "application/timestamp-reply"));
        let tsr = dir.join("junk.tsr");
        std::fs::write(&tsr, body).unwrap();
        let text = reply_text(dir, &tsr);
        assert!(
            text.contains("Status: Rejected.") && text.contains("the data submitted has the wrong format"),
            "{text}"
        );
    }
    // A digest of the wrong length for its algorithm.
    let mut short = good.clone();
    let at = short.windows(2).position(|w| w == [0x04, 0x20]).unwrap();
    short.splice(at..at + 2, [0x04, 0x1f]);
    short.remove(at + 2);
    short[1] -= 1;
    short[3] -= 1;
    let (_, _, body) = post(&http, &server.base, QUERY, short).await;
    std::fs::write(dir.join("short.tsr"), body).unwrap();
    let text = reply_text(dir, &dir.join("short.tsr"));
    assert!(text.contains("Status: Rejected.") && text.contains("the data submitted has the wrong format"), "{text}");
    assert_eq!(ca.registry().time_stamp_count().await.unwrap(), before + 4, "refusals record nothing");
    let m = metrics(http.clone(), server.base.clone()).await;
    assert!(m.contains("\nqcert_tsa_available 1\n"), "{m}");
    assert!(m.contains(&format!("\nqcert_tsa_tokens_stored {}\n", before + 4)), "{m}");
    let left: i64 = m
        .lines()
        .find_map(|l| l.strip_prefix("qcert_tsa_certificate_seconds_until_expiry "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no TSU expiry in {m}"));
    assert!(left > 86_400 * 300, "the TSU certificate has most of its life left: {left}");

    // Another media type: a problem.
    let (status, ct, _) = post(&http, &server.base, "application/octet-stream", good.clone()).await;
    assert_eq!((status, ct.as_str()), (415, "application/problem+json"));

    // In process (the countersign's path): a token over a digest.
    let tsa = Tsa::open(&ca).await.unwrap();
    let digest = qcert_ca_core::cms::digest(DigestAlgorithm::Sha384, b"a signature value");
    let token = tsa.stamp(DigestAlgorithm::Sha384, &digest).await.unwrap();
    std::fs::write(dir.join("token.der"), &token).unwrap();
    let verify = openssl(
        dir,
        &["ts", "-verify", "-digest", &hex::encode(&digest), "-token_in", "-in", "token.der", "-CAfile", "chain.pem"],
    );
    assert!(verify.contains("Verification: OK"), "{verify}");
    assert!(tsa.stamp(DigestAlgorithm::Sha384, &digest[1..]).await.is_err(), "a digest of the wrong length");

    // The countersign's use: a detached signature, then our token over its
    // signature value as the unsigned signature-time-stamp attribute.
    let seal = CaKeySpec {
        common_name: "qcert Test Seal".into(),
        key_label: format!("test-seal-{}", random_hex(4)),
        key_algorithm: qcert_hsm::KeyAlgorithm::EcP384,
        validity: time::Duration::days(365),
    };
    let made =
        ceremony::service_certificate(ca.hsm(), ca.registry(), ca.policy(), &seal, ServiceCert::Seal, &**ca.clock())
            .await
            .unwrap();
    let seal_cert = x509_cert::Certificate::from_der(&made.der).unwrap();
    let seal_key =
        qcert_ca_core::signer::CaSigner::new(ca.hsm().clone(), ca.hsm().find_key(&seal.key_label).unwrap()).unwrap();
    let data = std::fs::read(dir.join("data.txt")).unwrap();
    let md = qcert_ca_core::cms::digest(DigestAlgorithm::Sha384, &data);
    let mut signed = qcert_ca_core::cms::SignedDataBuilder::new(
        qcert_ca_core::cms::Content::Detached { digest: &md },
        DigestAlgorithm::Sha384,
        &seal_cert,
    )
    .sign(&seal_key)
    .await
    .unwrap();
    let over = qcert_ca_core::cms::digest(DigestAlgorithm::Sha384, signed.signature().unwrap());
    signed.add_signature_time_stamp(&tsa.stamp(DigestAlgorithm::Sha384, &over).await.unwrap()).unwrap();
    std::fs::write(dir.join("stamped.p7s"), signed.to_der().unwrap()).unwrap();
    let verify = openssl(
        dir,
        &[
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-purpose",
            "any",
            "-in",
            "stamped.p7s",
            "-content",
            "data.txt",
            "-CAfile",
            "chain.pem",
            "-out",
            "/dev/null",
        ],
    );
    assert!(verify.contains("Verification successful"), "{verify}");
    let printed = openssl(dir, &["cms", "-cmsout", "-print", "-inform", "DER", "-in", "stamped.p7s"]);
    assert!(printed.contains("id-smime-aa-timeStampToken"), "{printed}");
    assert!(qcert_ca_core::cms::verify_detached(&signed.to_der().unwrap(), &seal_cert, &data).is_ok());

    // pyHanko signs a PDF with a key of its own, time-stamped by us, and
    // validates it as PAdES B-T with our root as the only trust anchor.
    // (Revocation of the TSU's chain is fetched live: CRLs published first.)
    ca.refresh_crls().await.unwrap();
    pyhanko_b_t(dir, &server.base);

    // B-LT: a holder certificate of ours signs; pyHanko fetches our OCSP
    // answers and CRLs for the signer's and the TSU's chains and embeds
    // them (DSS); validated after the server is gone, fetching disabled.
    let (key, cert) = holder_certificate(&ca, dir).await;
    let (ok, out, all) = pades_judge(
        &["sign-lt", &format!("{}/tsa", server.base)],
        &[&dir.join("root.pem"), &key, &cert, &dir.join("lt.pdf")],
    );
    assert!(ok, "pyHanko sign-lt: {all}");
    let dss = out.lines().find(|l| l.starts_with("SIGNED-LT")).unwrap_or_else(|| panic!("{all}"));
    assert!(!dss.contains(" 0 OCSP"), "OCSP answers of ours embedded: {dss}");
    let (ok, _, all) = pades_judge(
        &["b-t", &format!("{}/tsa", server.base)],
        &[&dir.join("root.pem"), &key, &cert, &dir.join("bt-own.pdf")],
    );
    assert!(ok, "B-T by the holder: {all}");
    let addr = server.base.trim_start_matches("http://").to_owned();
    server.task.abort();
    assert!(server.task.await.unwrap_err().is_cancelled());
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err(), "the server is stopped");
    let (ok, out, all) = pades_judge(&["validate-lt"], &[&dir.join("root.pem"), &dir.join("lt.pdf")]);
    assert!(ok, "B-LT with the server stopped: {all}");
    let verdict = out.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with("B-LT: signature intact, valid, trusted; time-stamped (intact, valid, trusted)"),
        "{all}"
    );
    assert!(verdict.ends_with("validated with the embedded revocation information only"), "{all}");
    // The same validation of a B-T file by the same signer (nothing
    // embedded) cannot succeed: the verdict rests on what the file carries.
    let (ok, out, all) = pades_judge(&["validate-lt"], &[&dir.join("root.pem"), &dir.join("bt-own.pdf")]);
    assert!(!ok && out.contains("INVALID"), "B-T is not B-LT: {all}");
    assert!(all.contains("no revocation information could be found"), "refused for want of revocation data: {all}");
}
on_both_stores!(time_stamping_authority);

/// A TOKEN certificate of ours for a key made here: (key, certificate) PEM files.
async fn holder_certificate(ca: &Ca, dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-nodes",
            "-subj",
            "/CN=x",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-keyout",
            "holder.key",
            "-outform",
            "DER",
            "-out",
            "holder.csr",
        ],
    );
    let holder = Holder::parse("Mihai", "Dobre", "mihai.dobre@example.ro", "RO", &qcert_tests::cnp(16)).unwrap();
    let csr = std::fs::read(dir.join("holder.csr")).unwrap();
    let issued = ca.issue("qcp-n-qscd", &holder, ValidityYears::new(1).unwrap(), KeySource::Csr(csr)).await.unwrap();
    // The certificate and its issuing CA (as a signing tool holds them).
    let chain = format!("{}{}", issued.pem(), qcert_ca_core::pem("CERTIFICATE", &ca.hierarchy().issuing));
    std::fs::write(dir.join("holder.pem"), chain).unwrap();
    (dir.join("holder.key"), dir.join("holder.pem"))
}

/// `judges/pades_timestamp.py MODE ARGS… FILES…`: (exit 0, its standard
/// output, both outputs for a failure message).
fn pades_judge(args: &[&str], files: &[&Path]) -> (bool, String, String) {
    let judge = Path::new(env!("CARGO_MANIFEST_DIR")).join("judges/pades_timestamp.py");
    let out = Command::new(venv_tool("python3")).arg(judge).args(args).args(files).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(matches!(out.status.code(), Some(0 | 1)), "pades_timestamp.py tooling failed: {text}");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), text)
}

fn pyhanko_b_t(dir: &Path, base: &str) {
    // The signer: a key and self-signed certificate of pyHanko's user.
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "signer.key",
            "-out",
            "signer.pem",
            "-subj",
            "/CN=PDF signer",
            "-days",
            "30",
            "-addext",
            "keyUsage=critical,digitalSignature,nonRepudiation",
        ],
    );
    let files = [&dir.join("root.pem"), &dir.join("signer.key"), &dir.join("signer.pem"), &dir.join("signed.pdf")];
    let (ok, out, all) = pades_judge(&["b-t", &format!("{base}/tsa")], &files.map(|f| f.as_path()));
    assert!(ok && out.trim() == "B-T", "pyHanko: {all}");
}
