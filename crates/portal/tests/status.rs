#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Relying parties over HTTP (server in-process on port 0, real SoftHSM,
//! SQLite and PostgreSQL): OCSP by openssl (POST) and curl (GET), CRLs by
//! `openssl verify -crl_check`, answers linted by pkilint.

use std::path::{Path, PathBuf};
use std::process::Command;

use der::{Decode, Encode};
use qcert_ca_core::{Ca, Clock, Holder, KeySource, Reason, ValidityYears};
use qcert_tests::*;
use x509_ocsp::{OcspRequest, OcspResponse, OcspResponseStatus};

struct Server {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

async fn serve(ca: &Ca) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve_on(ca, listener).await
}

async fn serve_on(ca: &Ca, listener: tokio::net::TcpListener) -> Server {
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let desk = new_desk(ca).await;
    let app = qcert_portal::http::router(qcert_portal::http::AppState::new(new_orders(&desk, [7u8; 32], &base)));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    Server { base, task }
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(ca: &Ca) -> Files {
        let dir = tempfile::tempdir().expect("tmp");
        let h = ca.hierarchy();
        write_pem(dir.path(), "root.pem", "CERTIFICATE", &h.root);
        write_pem(dir.path(), "issuing.pem", "CERTIFICATE", &h.issuing);
        let chain =
            format!("{}{}", qcert_ca_core::pem("CERTIFICATE", &h.issuing), qcert_ca_core::pem("CERTIFICATE", &h.root));
        std::fs::write(dir.path().join("chain.pem"), chain).expect("chain");
        Files { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn holder() -> Holder {
    Holder::parse("Elena", "Marin", "elena.marin@example.ro", "RO", "2850101123453").expect("holder")
}

async fn issue(ca: &Ca) -> qcert_ca_core::Issued {
    ca.issue("qcp-n-qscd", &holder(), ValidityYears::new(1).expect("y"), KeySource::Csr(openssl_csr(CsrKey::P384)))
        .await
        .expect("issue")
}

/// `openssl ocsp` over POST; its text output (it exits 0 even when revoked).
async fn openssl_ocsp(files: &Files, cert: &Path, url: &str, extra: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new("openssl");
    cmd.args(["ocsp", "-issuer"]).arg(files.path("issuing.pem")).arg("-cert").arg(cert);
    cmd.args(["-url", url, "-CAfile"]).arg(files.path("chain.pem")).args(extra);
    let out = cmd.output().await.expect("openssl ocsp");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A DER request made by openssl (`-reqout`), without nonce.
fn openssl_request(files: &Files, cert: &Path, sha256: bool) -> Vec<u8> {
    let out = files.path("req.der");
    let mut cmd = Command::new("openssl");
    cmd.args(["ocsp", "-no_nonce", "-issuer"]).arg(files.path("issuing.pem"));
    if sha256 {
        cmd.arg("-sha256");
    }
    cmd.arg("-cert").arg(cert);
    cmd.arg("-reqout").arg(&out);
    run_ok(&mut cmd);
    std::fs::read(out).expect("request")
}

fn b64(der: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// GET with curl, as NSS and Java do (percent-encoded base64 after the AIA URL).
async fn curl_get(url: &str, out: &Path) -> String {
    let o = tokio::process::Command::new("curl")
        .args(["-s", "-D", "-", "-o"])
        .arg(out)
        .arg(url)
        .output()
        .await
        .expect("curl");
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn response_text(files: &Files, resp: &Path, cert: &Path, sha256: bool) -> String {
    run_ok(
        Command::new("openssl")
            .args(["ocsp", "-respin"])
            .arg(resp)
            .arg("-issuer")
            .arg(files.path("issuing.pem"))
            .args(if sha256 { &["-sha256"][..] } else { &[][..] })
            .arg("-cert")
            .arg(cert)
            .arg("-CAfile")
            .arg(files.path("chain.pem"))
            .arg("-resp_text"),
    )
}

on_both_stores!(ocsp_and_crl_show_a_revocation_at_once);
async fn ocsp_and_crl_show_a_revocation_at_once(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    ca.refresh_crls().await.expect("CRLs");
    let server = serve(&ca).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let url = format!("{}/ocsp", server.base);

    let text = openssl_ocsp(&files, &ee, &url, &[]).await;
    assert!(text.contains("Response verify OK") && text.contains(": good"), "{text}");

    // GET with SHA-1 and SHA-256 CertIDs, through curl; lint the answer.
    for sha256 in [false, true] {
        let req = openssl_request(&files, &ee, sha256);
        let encoded: String = url::form_urlencoded::byte_serialize(b64(&req).as_bytes()).collect();
        let resp = files.path("resp.der");
        let headers = curl_get(&format!("{url}/{encoded}"), &resp).await;
        assert!(headers.contains("200"), "{headers}");
        let lower = headers.to_ascii_lowercase();
        for h in
            ["last-modified:", "expires:", "etag:", "cache-control: max-age=", "public, no-transform, must-revalidate"]
        {
            assert!(lower.contains(h), "missing {h} in {headers}");
        }
        let text = response_text(&files, &resp, &ee, sha256);
        assert!(text.contains(": good") && text.contains("Response verify OK"), "{text}");
        let rid = text.lines().find_map(|l| l.trim().strip_prefix("Responder Id: ")).expect("responder id");
        assert!(rid.len() == 40 && rid.chars().all(|c| c.is_ascii_hexdigit()), "responderID byKey: {rid}");
        pkilint("lint_ocsp_response", &[], &resp).expect("OCSP response lints clean");
    }

    // Revoke: the very next answers say so, OCSP and CRL alike.
    ca.revoke(&issued.serial, Reason::KeyCompromise, Some(clock.now()), "hotline:test").await.expect("revoke");
    let text = openssl_ocsp(&files, &ee, &url, &[]).await;
    assert!(text.contains(": revoked") && text.contains("Reason: keyCompromise"), "{text}");
    let req = openssl_request(&files, &ee, false);
    let resp = files.path("resp2.der");
    curl_get(
        &format!("{url}/{}", url::form_urlencoded::byte_serialize(b64(&req).as_bytes()).collect::<String>()),
        &resp,
    )
    .await;
    assert!(response_text(&files, &resp, &ee, false).contains(": revoked"));
    pkilint("lint_ocsp_response", &[], &resp).expect("revoked answer lints clean");

    let crl = files.path("issuing.crl");
    let headers = curl_get(&format!("{}/crl/issuing.crl", server.base), &crl).await;
    let lower = headers.to_ascii_lowercase();
    for h in [
        "content-type: application/pkix-crl",
        "last-modified:",
        "expires:",
        "etag:",
        "public, no-transform, must-revalidate",
    ] {
        assert!(lower.contains(h), "missing {h} in {headers}");
    }
    let etag = headers
        .lines()
        .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
        .expect("etag")
        .trim()
        .to_owned();
    let again = reqwest::Client::new()
        .get(format!("{}/crl/issuing.crl", server.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("conditional get");
    assert_eq!(again.status(), 304, "unchanged CRL: 304 for its ETag");
    let arl = files.path("root.crl");
    curl_get(&format!("{}/crl/root.crl", server.base), &arl).await;
    let mut verify = Command::new("openssl");
    verify.args(["verify", "-crl_check_all", "-CRLfile"]).arg(&crl).arg("-CRLfile").arg(&arl);
    verify.arg("-CAfile").arg(files.path("root.pem")).arg("-untrusted").arg(files.path("issuing.pem")).arg(&ee);
    let out = verify.output().expect("openssl verify");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && text.contains("certificate revoked"), "{text}");

    // Long after expiry, OCSP still says revoked (and carries ArchiveCutoff).
    clock.advance(time::Duration::days(4 * 366));
    let answer = ca.ocsp(&req).await;
    let parsed = OcspResponse::from_der(&answer.der).expect("parse");
    let bytes = parsed.response_bytes.expect("successful");
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
    let single = &basic.tbs_response_data.responses[0];
    assert!(matches!(single.cert_status, x509_ocsp::CertStatus::Revoked(_)));
    let ext_ids: Vec<String> =
        single.single_extensions.as_ref().expect("exts").iter().map(|e| e.extn_id.to_string()).collect();
    assert!(ext_ids.contains(&"1.3.6.1.5.5.7.48.1.6".to_string()), "ArchiveCutoff present");
    server.task.abort();
}

on_both_stores!(bad_ocsp_requests_get_ocsp_errors_and_the_server_keeps_serving);
async fn bad_ocsp_requests_get_ocsp_errors_and_the_server_keeps_serving(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let server = serve(&ca).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let good = openssl_request(&files, &ee, false);
    let client = reqwest::Client::new();
    let url = format!("{}/ocsp", server.base);

    let status_of = |body: &[u8]| OcspResponse::from_der(body).expect("an OCSPResponse").response_status;
    let post = |body: Vec<u8>| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(&url)
                .header("content-type", "application/ocsp-request")
                .body(body)
                .send()
                .await
                .expect("post");
            (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
        }
    };

    // Truncated.
    let (code, body) = post(good[..good.len() / 2].to_vec()).await;
    assert_eq!((code, status_of(&body)), (200, OcspResponseStatus::MalformedRequest));
    // Oversized: refused by HTTP before parsing. On a client of its own: the
    // server closes that connection (the body is never read), and a pooled
    // client could race the close with the next request.
    let r = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/ocsp-request")
        .body(vec![0x30; 100_000])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 413);
    // Bad base64 on GET.
    let r = client.get(format!("{url}/%%%not-base64%%%")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(status_of(&r.bytes().await.expect("b")), OcspResponseStatus::MalformedRequest);

    let parsed = OcspRequest::from_der(&good).expect("parse");
    // Unknown hash algorithm (SHA-512 named, SHA-1 lengths).
    let mut unknown_hash = parsed.clone();
    unknown_hash.tbs_request.request_list[0].req_cert.hash_algorithm.oid = const_oid::db::rfc5912::ID_SHA_512;
    let (_, body) = post(unknown_hash.to_der().expect("der")).await;
    assert_eq!(status_of(&body), OcspResponseStatus::MalformedRequest);
    // Another issuer.
    let mut other = parsed.clone();
    other.tbs_request.request_list[0].req_cert.issuer_key_hash = der::asn1::OctetString::new(vec![1u8; 20]).expect("o");
    let (_, body) = post(other.to_der().expect("der")).await;
    assert_eq!(status_of(&body), OcspResponseStatus::Unauthorized);
    // 1000 CertIDs in one request.
    let mut many = parsed.clone();
    let one = many.tbs_request.request_list[0].clone();
    many.tbs_request.request_list = vec![one; 1000];
    let der = many.to_der().expect("der");
    assert!(der.len() < qcert_portal::http::MAX_BODY * 8);
    let body = ca.ocsp(&der).await.der;
    assert_eq!(status_of(&body), OcspResponseStatus::MalformedRequest);
    // A nonce longer than 128 octets, and one of 32.
    for (len, expect) in [(200usize, OcspResponseStatus::MalformedRequest), (32, OcspResponseStatus::Successful)] {
        let mut with_nonce = parsed.clone();
        let nonce = x509_ocsp::ext::Nonce::new(vec![7u8; len]).expect("nonce");
        with_nonce.tbs_request.request_extensions = Some(vec![x509_cert::ext::Extension {
            extn_id: const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
            critical: false,
            extn_value: der::asn1::OctetString::new(nonce.to_der().expect("der")).expect("o"),
        }]);
        let (_, body) = post(with_nonce.to_der().expect("der")).await;
        assert_eq!(status_of(&body), expect, "nonce of {len} octets");
    }
    let text = openssl_ocsp(&files, &ee, &url, &["-nonce"]).await;
    assert!(text.contains("Response verify OK") && text.contains(": good"), "a normal nonce is echoed: {text}");

    // Still serving, and a never-issued serial is "unknown".
    let text = openssl_ocsp(&files, &ee, &url, &[]).await;
    assert!(text.contains(": good"), "{text}");
    let mut never = parsed.clone();
    never.tbs_request.request_list[0].req_cert.serial_number =
        x509_cert::serial_number::SerialNumber::new(&[0x55; 16]).expect("serial");
    let (_, body) = post(never.to_der().expect("der")).await;
    let bytes = OcspResponse::from_der(&body).expect("r").response_bytes.expect("successful");
    let basic = x509_ocsp::BasicOcspResponse::from_der(bytes.response.as_bytes()).expect("basic");
    assert!(matches!(basic.tbs_response_data.responses[0].cert_status, x509_ocsp::CertStatus::Unknown(_)));
    server.task.abort();
}

on_both_stores!(cached_answers_cost_no_signature_and_revocation_replaces_them);
async fn cached_answers_cost_no_signature_and_revocation_replaces_them(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let req = openssl_request(&files, &ee, false);
    let first = ca.ocsp(&req).await;
    let second = ca.ocsp(&req).await;
    assert!(matches!(second.outcome, qcert_ca_core::ocsp::Outcome::Signed { cached: true, .. }));
    assert_eq!(first.der, second.der, "the pre-signed answer is served as is");
    ca.revoke(&issued.serial, Reason::Superseded, None, "ra:test").await.expect("revoke");
    let third = ca.ocsp(&req).await;
    assert!(
        matches!(third.outcome, qcert_ca_core::ocsp::Outcome::Signed { cached: true, status: "revoked", .. }),
        "re-signed at once on revocation, so the next request costs no signature: {:?}",
        third.outcome
    );
}

on_both_stores!(cached_answers_are_re_signed_before_they_go_stale);
async fn cached_answers_are_re_signed_before_they_go_stale(db: &TestDb) {
    let clock = test_clock();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let req = openssl_request(&files, &ee, false);
    let first = ca.ocsp(&req).await;
    assert_eq!(ca.refresh_ocsp_cache().await, 0, "nothing due yet");
    // Past three quarters of the 8 h refresh interval.
    clock.advance(time::Duration::hours(7));
    assert_eq!(ca.refresh_ocsp_cache().await, 1);
    let second = ca.ocsp(&req).await;
    assert!(matches!(second.outcome, qcert_ca_core::ocsp::Outcome::Signed { cached: true, .. }));
    assert!(first.der != second.der, "a newer answer, signed in the background");
}

/// pyhanko-certvalidator, fetching live from the URLs in the certificates.
async fn pyhanko(files: &Files, ee: &Path, mode: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/judges/pyhanko_validate.py");
    let out = tokio::process::Command::new(venv_tool("python3"))
        .arg(script)
        .arg(files.path("root.pem"))
        .arg(files.path("issuing.pem"))
        .arg(ee)
        .arg(mode)
        .output()
        .await
        .expect("run pyhanko_validate.py");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.code() != Some(2) && out.status.code().is_some(), "pyhanko tooling failed: {text}");
    (out.status.success(), text)
}

on_both_stores!(pyhanko_validates_live_over_ocsp_and_crl);
async fn pyhanko_validates_live_over_ocsp_and_crl(db: &TestDb) {
    // The certificates must point at this server, so bind first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let (ca, _) = new_ca_at(db, test_clock(), &base).await;
    ca.refresh_crls().await.expect("CRLs");
    let server = serve_on(&ca, listener).await;
    let files = Files::new(&ca);
    let good = issue(&ca).await;
    let bad = issue(&ca).await;
    let good_pem = write_pem(files.dir.path(), "good.pem", "CERTIFICATE", &good.der);
    let bad_pem = write_pem(files.dir.path(), "bad.pem", "CERTIFICATE", &bad.der);
    ca.revoke(&bad.serial, Reason::KeyCompromise, None, "hotline:test").await.expect("revoke");
    for mode in ["ocsp", "crl"] {
        let (ok, text) = pyhanko(&files, &good_pem, mode).await;
        assert!(ok && text.contains("VALID"), "{mode}: good certificate: {text}");
        let (ok, text) = pyhanko(&files, &bad_pem, mode).await;
        assert!(
            !ok && text.contains("INVALID") && text.to_lowercase().contains("revoked"),
            "{mode}: revoked certificate: {text}"
        );
    }
    server.task.abort();
}

on_both_stores!(a_revocation_by_another_process_reaches_the_ocsp_cache);
async fn a_revocation_by_another_process_reaches_the_ocsp_cache(db: &TestDb) {
    let clock = test_clock();
    let (ca, config) = new_ca(db, clock.clone()).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let req = openssl_request(&files, &ee, false);
    assert!(matches!(ca.ocsp(&req).await.outcome, qcert_ca_core::ocsp::Outcome::Signed { status: "good", .. }));
    // A second qcert process (its own pool and CA instance) revokes.
    let other = Ca::open(
        qcert_hsm::Hsm::open(&config).expect("hsm"),
        qcert_ca_core::Registry::open(&db.url, 2).await.expect("pool"),
        qcert_ca_core::Policy::load(&policies_dir(), TEST_BASE_URL).expect("policy"),
        clock.clone(),
    )
    .await
    .expect("open");
    other.revoke(&issued.serial, Reason::KeyCompromise, None, "ra:other-process").await.expect("revoke");
    assert_eq!(ca.sync_revocations().await.expect("sync"), 1);
    assert!(matches!(ca.ocsp(&req).await.outcome, qcert_ca_core::ocsp::Outcome::Signed { status: "revoked", .. }));
    assert_eq!(ca.sync_revocations().await.expect("sync"), 0, "each revocation is applied once");
}

on_both_stores!(the_directory_lists_only_published_certificates);
async fn the_directory_lists_only_published_certificates(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    let server = serve(&ca).await;
    let listed = issue(&ca).await;
    let private = issue(&ca).await;
    ca.publish(&listed.serial).await.expect("publish");
    let client = reqwest::Client::new();
    let base = &server.base;

    for query in ["email=ELENA.MARIN@example.ro", "name=elena%20marin", "name=Marin"] {
        let r = client.get(format!("{base}/api/v1/certificates?{query}")).send().await.expect("get");
        assert_eq!(r.status(), 200, "{query}");
        let items: serde_json::Value = r.json().await.expect("json");
        let items = items.as_array().expect("array");
        assert_eq!(items.len(), 1, "{query}: only the published certificate: {items:?}");
        assert_eq!(items[0]["serial"], listed.serial.as_str());
        assert_eq!(items[0]["status"], "valid");
        assert_eq!(items[0]["chain_pem"].as_array().expect("chain").len(), 2);
        assert_eq!(items[0]["certificate_pem"], qcert_ca_core::pem("CERTIFICATE", &listed.der).as_str());
    }
    let der = client.get(format!("{base}/certs/{}", listed.serial)).send().await.expect("get");
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    assert_eq!(der.bytes().await.expect("b").to_vec(), listed.der);
    let pem = client.get(format!("{base}/certs/{}.pem", listed.serial)).send().await.expect("get");
    assert_eq!(pem.text().await.expect("t"), qcert_ca_core::pem("CERTIFICATE", &listed.der));
    let accept =
        client.get(format!("{base}/certs/{}", listed.serial)).header("accept", "application/x-pem-file").send().await;
    assert!(accept.expect("get").text().await.expect("t").starts_with("-----BEGIN CERTIFICATE-----"));
    for hidden in [private.serial.as_str(), "zz-not-hex", "00"] {
        let r = client.get(format!("{base}/certs/{hidden}")).send().await.expect("get");
        assert_eq!(r.status(), 404, "{hidden}");
    }
    for bad in ["", "?email=", "?email=a@b.ro&name=x", &format!("?name={}", "x".repeat(200))] {
        let r = client.get(format!("{base}/api/v1/certificates{bad}")).send().await.expect("get");
        assert_eq!(r.status(), 400, "{bad:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    ca.revoke(&listed.serial, Reason::KeyCompromise, None, "ra:test").await.expect("revoke");
    let items: serde_json::Value = client
        .get(format!("{base}/api/v1/certificates?name=Marin"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(items[0]["status"], "revoked");
    server.task.abort();
}

on_both_stores!(metrics_count_ocsp_results_crls_and_hsm_latency);
async fn metrics_count_ocsp_results_crls_and_hsm_latency(db: &TestDb) {
    let (ca, _) = new_ca(db, test_clock()).await;
    ca.refresh_crls().await.expect("CRLs");
    let server = serve(&ca).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let req = openssl_request(&files, &ee, false);
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client.post(format!("{}/ocsp", server.base)).body(req.clone()).send().await.expect("post");
    }
    client.post(format!("{}/ocsp", server.base)).body(b"junk".to_vec()).send().await.expect("post");
    let text = client.get(format!("{}/metrics", server.base)).send().await.expect("get").text().await.expect("t");
    for line in [
        "qcert_ocsp_responses_total{result=\"good\"} 3",
        "qcert_ocsp_responses_total{result=\"malformedRequest\"} 1",
        "qcert_ocsp_cache_hits_total 2",
        "qcert_ocsp_signed_total 1",
        "qcert_crl_entries{crl=\"issuing\"} 0",
        "qcert_crl_age_seconds{crl=\"root\"} ",
        "qcert_hsm_sign_seconds_count ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    server.task.abort();
}

/// After a run with the clock ahead (as after an NTP step back), the CRLs
/// and the cached OCSP answer are dated in the future: /metrics shows no
/// negative age, the next refresh republishes both CRLs (openssl verify
/// accepts them again) and re-signs the cached answer.
async fn status_dated_in_the_future_is_replaced(db: &TestDb) {
    let clock = test_clock();
    let honest = clock.now();
    let (ca, _) = new_ca(db, clock.clone()).await;
    let server = serve(&ca).await;
    let files = Files::new(&ca);
    let issued = issue(&ca).await;
    let ee = write_pem(files.dir.path(), "ee.pem", "CERTIFICATE", &issued.der);
    let req = openssl_request(&files, &ee, false);
    let this_update = |der: &[u8]| {
        let parsed = OcspResponse::from_der(der).expect("parse");
        let basic = x509_ocsp::BasicOcspResponse::from_der(parsed.response_bytes.expect("ok").response.as_bytes())
            .expect("basic");
        basic.tbs_response_data.responses[0].this_update.0.to_unix_duration().as_secs() as i64
    };

    // The clock runs two days ahead: CRLs and a cached answer dated then.
    clock.set(honest + time::Duration::days(2));
    ca.refresh_crls().await.expect("CRLs");
    let ahead = ca.ocsp(&req).await;
    assert!(this_update(&ahead.der) > honest.unix_timestamp());
    clock.set(honest);
    let verify = |crl: &Path, arl: &Path| {
        let mut cmd = Command::new("openssl");
        cmd.args(["verify", "-crl_check_all", "-CRLfile"]).arg(crl).arg("-CRLfile").arg(arl);
        cmd.arg("-CAfile").arg(files.path("root.pem")).arg("-untrusted").arg(files.path("issuing.pem")).arg(&ee);
        let out = cmd.output().expect("openssl verify");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let fetch = |name: &'static str| {
        let (base, out) = (server.base.clone(), files.path(name));
        async move {
            curl_get(&format!("{base}/crl/{name}"), &out).await;
            out
        }
    };
    let (crl, arl) = (fetch("issuing.crl").await, fetch("root.crl").await);
    let (ok, text) = verify(&crl, &arl);
    assert!(!ok && text.contains("not yet valid"), "the judge sees the future CRL: {text}");
    let metrics = reqwest::get(format!("{}/metrics", server.base)).await.expect("get").text().await.expect("text");
    for crl in ["issuing", "root"] {
        let age = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("qcert_crl_age_seconds{{crl=\"{crl}\"}} ")))
            .expect("age line");
        assert_eq!(age, "0", "no negative age for {crl}: {metrics}");
    }

    // The next scheduler pass replaces them.
    let before = ca.current_crl(qcert_ca_core::CrlScope::Root).await.expect("crl").expect("some").crl_number;
    ca.refresh_crls().await.expect("CRLs");
    for scope in [qcert_ca_core::CrlScope::Issuing, qcert_ca_core::CrlScope::Root] {
        let c = ca.current_crl(scope).await.expect("crl").expect("some");
        assert!(c.this_update <= honest.unix_timestamp(), "{scope:?} republished at the honest time");
    }
    let after = ca.current_crl(qcert_ca_core::CrlScope::Root).await.expect("crl").expect("some").crl_number;
    assert!(after > before, "a higher CRLNumber");
    let (crl, arl) = (fetch("issuing.crl").await, fetch("root.crl").await);
    let (ok, text) = verify(&crl, &arl);
    assert!(ok, "openssl verify accepts the republished CRLs: {text}");
    assert!(ca.refresh_ocsp_cache().await >= 1, "the future answer is due for re-signing");
    let answer = ca.ocsp(&req).await;
    assert!(this_update(&answer.der) <= honest.unix_timestamp(), "OCSP thisUpdate is not in the future");
    server.task.abort();
}
on_both_stores!(status_dated_in_the_future_is_replaced);
