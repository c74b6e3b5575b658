#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The confirmation document end to end, over HTTP on port 0, on both
//! stores: a TOKEN holder downloads the prefilled PDF from the order's
//! link (same bytes every time), signs the holder's field with pyHanko and
//! the certificate's key, uploads it; `confirmare.pdf` comes back
//! countersigned (PAdES B-T, the seal made by the seal ceremony, our own
//! time-stamp). Outside judges: pyHanko's API (`judges/confirmation_validate.py`:
//! both signatures intact and trusted, the holder's followed by form filling
//! only, the QTSP's time-stamped, `DEFAULT_DIFF_POLICY.review_file` form
//! filling only) and poppler's `pdfsig` (both valid). Refused, each with a
//! reason and never a 5xx: page content changed in an extra increment before
//! the holder's signature (which pyHanko alone still calls intact), another
//! holder's signature, a revoked certificate, a truncated file, a PDF that
//! does not start with our bytes, the wrong media type, an oversized body.
//! A CLOUD holder does the same through our CSC API with pyHanko's
//! CSCSigner (`judges/csc_sign.py --input … --field …`), judged the same
//! way; a page changed before that signature and another CLOUD holder's
//! signature are refused as well.

use std::path::{Path, PathBuf};
use std::process::Command;

use qcert_ca_core::confirmation::{HOLDER_FIELD, QTSP_FIELD};
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::orders::OrderForm;
use qcert_ca_core::payment::{sign_webhook, WebhookKey};
use qcert_ca_core::{Clock, FixedClock, Reason};
use qcert_tests::cloud::{CloudWorld, CscDocument};
use qcert_tests::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const WEBHOOK: [u8; 32] = [16u8; 32];

struct World {
    ca: qcert_ca_core::Ca,
    clock: std::sync::Arc<FixedClock>,
    orders: qcert_ca_core::orders::Orders,
    server: Server,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

/// A TOKEN holder: the order's link, the certificate (PEM file) and its key.
struct Holder {
    order_url: String,
    serial: String,
    cert: PathBuf,
    key: PathBuf,
}

async fn world(db: &TestDb) -> World {
    world_with(db, true).await
}

/// `service_keys`: run the seal and TSA ceremonies (false: an old home).
async fn world_with(db: &TestDb, service_keys: bool) -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // Behind the wall clock, so the outside judges see everything as current.
    let clock = std::sync::Arc::new(FixedClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(5)));
    let (ca, _) = new_ca_at(db, clock.clone(), &base).await;
    ca.refresh_crls().await.expect("CRLs");
    if service_keys {
        make_service_keys(&ca).await;
    }
    let desk = new_desk(&ca).await;
    let orders = new_orders(&desk, WEBHOOK, &base);
    let server = serve_orders_on(listener, orders.clone()).await;
    World { ca, clock, orders, server, http: reqwest::Client::new(), dir: tempfile::tempdir().unwrap() }
}

impl World {
    /// Order, pay, approve: a TOKEN certificate for holder `n`.
    async fn holder(&self, n: u32, given: &str, surname: &str) -> Holder {
        let form: OrderForm = serde_json::from_value(json!({
            "product": "TOKEN", "years": 1, "given_name": given, "surname": surname,
            "email": format!("holder{n}@example.ro"), "country": "RO", "national_id": cnp(n),
            "id_document_number": format!("RX{n:06}"), "publish": false
        }))
        .unwrap();
        let created = self.orders.create(&form, None).await.unwrap();
        let order_url = self.orders.order_url(&created.order.id).unwrap();
        let d = self.dir.path();
        let (key, csr) = (d.join(format!("h{n}.key")), d.join(format!("h{n}.csr")));
        run_ok(
            Command::new("openssl")
                .args(["req", "-new", "-nodes", "-subj", "/CN=x", "-newkey", "ec", "-pkeyopt"])
                .arg("ec_paramgen_curve:P-256")
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&csr),
        );
        self.orders.upload_csr(&created.link, std::fs::read(&csr).unwrap()).await.unwrap();
        let event = json!({"event_id": format!("o-{n}"), "order_id": created.order.id, "status": "paid"});
        let raw = serde_json::to_vec(&event).unwrap();
        let sig = sign_webhook(&WebhookKey::from_bytes(WEBHOOK), &raw, self.clock.now());
        let r = self
            .http
            .post(format!("{}/api/v1/payments/webhook", self.server.base))
            .header("qcert-signature", sig)
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let officer =
            qcert_ca_core::operators::Operator { name: "radu".into(), role: qcert_ca_core::operators::Role::RaOfficer };
        let doc = DocumentNumber::parse(&format!("RX{n:06}")).unwrap();
        let row = self.orders.approve(&officer, &created.order.id, &doc).await.unwrap();
        let serial = row.serial.expect("issued on approval");
        let r = self.http.get(format!("{order_url}/certificate")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let cert = d.join(format!("h{n}.pem"));
        std::fs::write(&cert, r.text().await.unwrap()).unwrap();
        Holder { order_url, serial, cert, key }
    }

    async fn prefilled(&self, h: &Holder) -> (String, Vec<u8>) {
        prefilled(&self.http, &h.order_url).await
    }

    /// POST the file; the status and the answer (JSON or problem).
    async fn upload(&self, h: &Holder, pdf: &[u8]) -> (StatusCode, Value) {
        upload(&self.http, &h.order_url, pdf).await
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn root_pem(&self) -> PathBuf {
        write_pem(self.dir.path(), "root.pem", "CERTIFICATE", &self.ca.hierarchy().root)
    }
}

/// GET the prefilled document of the order at `order_url`: its
/// Content-Disposition and bytes.
async fn prefilled(http: &reqwest::Client, order_url: &str) -> (String, Vec<u8>) {
    let r = http.get(format!("{order_url}/confirmation")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
    (disposition, r.bytes().await.unwrap().to_vec())
}

/// POST `pdf` to the order's confirmation; the status and the answer (JSON or problem).
async fn upload(http: &reqwest::Client, order_url: &str, pdf: &[u8]) -> (StatusCode, Value) {
    let r = http
        .post(format!("{order_url}/confirmation"))
        .header("content-type", "application/pdf")
        .body(pdf.to_vec())
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    // Never a 5xx, but for a home that lacks its seal (503, saying so).
    let unset = status == StatusCode::SERVICE_UNAVAILABLE && v["type"] == "urn:qcert:problem:not-configured";
    assert!(status.as_u16() < 500 || unset, "never a 5xx: {status} {v}");
    (status, v)
}

/// GET the `confirmare_url` of an upload's answer into `to`.
async fn download_confirmare(http: &reqwest::Client, answer: &Value, to: &Path) -> PathBuf {
    let r = http.get(answer["confirmare_url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-disposition"], "attachment; filename=\"confirmare.pdf\"");
    std::fs::write(to, r.bytes().await.unwrap()).unwrap();
    to.to_path_buf()
}

/// The outside judges on a countersigned document: pyHanko's API
/// (`judges/confirmation_validate.py`) and poppler's `pdfsig`, our root
/// the only anchor.
fn judge_confirmare(dir: &Path, root: &Path, confirmare: &Path) {
    let judge = Path::new(env!("CARGO_MANIFEST_DIR")).join("judges/confirmation_validate.py");
    let out = Command::new(venv_tool("python3"))
        .arg(judge)
        .arg(root)
        .arg(confirmare)
        .arg(HOLDER_FIELD)
        .arg(QTSP_FIELD)
        .output()
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("OK"), "pyHanko judge:\n{said}");
    let poppler = pdfsig(dir, root, confirmare);
    assert_eq!(poppler.matches("Signature Validation: Signature is Valid.").count(), 2, "{poppler}");
    assert!(poppler.contains("ETSI.CAdES.detached"), "{poppler}");
}

/// Send only the head of an upload announcing `length` bytes; the answer.
async fn announce(order_url: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(order_url).unwrap();
    let mut tcp = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    let head = format!(
        "POST {}/confirmation HTTP/1.1\r\nHost: x\r\nContent-Type: application/pdf\r\nContent-Length: {length}\r\n\r\n",
        url.path()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tcp.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

/// `pyhanko sign addsig --field <holder field> pemder` with `key` and `cert`.
fn pyhanko_sign(input: &Path, output: &Path, key: &Path, cert: &Path) {
    run_ok(
        Command::new(venv_tool("pyhanko"))
            .args(["sign", "addsig", "--field", HOLDER_FIELD, "pemder", "--no-pass", "--key"])
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg(input)
            .arg(output),
    );
}

fn refused(status: StatusCode, v: &Value, words: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["type"], "urn:qcert:problem:document-refused", "{v}");
    let detail = v["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(words), "{words:?} in {detail:?}");
}

/// An increment after `pdf` that redefines the page's content stream
/// (object 4) with other text, keeping the trailer.
fn change_page_content(pdf: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pdf).into_owned();
    let prev = text.rsplit("startxref").next().unwrap().split_whitespace().next().unwrap().to_owned();
    let trailer_at = text.rfind("trailer").unwrap();
    let trailer = text.get(trailer_at + "trailer".len()..text.rfind("startxref").unwrap()).unwrap();
    let trailer = trailer.trim().strip_suffix(">>").unwrap();
    let stream = "BT /F1 30 Tf 50 500 Td (Nothing to confirm here) Tj ET";
    let mut out = pdf.to_vec();
    let at = out.len();
    out.extend_from_slice(
        format!("4 0 obj\n<< /Length {} >>\nstream\n{stream}\nendstream\nendobj\n", stream.len()).as_bytes(),
    );
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n4 1\n{at:010} 00000 n \ntrailer\n{trailer} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

on_both_stores!(signed_uploaded_countersigned_and_judged);
async fn signed_uploaded_countersigned_and_judged(db: &TestDb) {
    let w = world(db).await;
    let h = w.holder(1, "Ștefan", "Țurcanu").await;

    // Prefilled: named given_surname.pdf, the same bytes every time.
    let (disposition, pdf) = w.prefilled(&h).await;
    assert_eq!(disposition, "attachment; filename=\"stefan_turcanu.pdf\"");
    assert_eq!(w.prefilled(&h).await.1, pdf, "deterministic");
    assert!(pdf.starts_with(b"%PDF-1.7"));
    let text = run_ok(Command::new("pdftotext").arg(w.path_of(&pdf, "prefilled.pdf")).arg("-"));
    for part in ["Ștefan Țurcanu", "Confirmare de primire", &h.serial, "Issuer", "Emitent", "Valid until"] {
        assert!(text.contains(part), "{part:?} in the page text:\n{text}");
    }
    let no_download_yet = w.http.get(format!("{}/confirmation/confirmare.pdf", h.order_url)).send().await.unwrap();
    assert_eq!(no_download_yet.status(), StatusCode::NOT_FOUND);

    // Signed with the holder's key, uploaded, countersigned.
    let signed = w.path("signed.pdf");
    pyhanko_sign(&w.path_of(&pdf, "in.pdf"), &signed, &h.key, &h.cert);
    let (status, v) = w.upload(&h, &std::fs::read(&signed).unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["serial"], h.serial.as_str());
    let confirmare = download_confirmare(&w.http, &v, &w.path("confirmare.pdf")).await;
    judge_confirmare(w.dir.path(), &w.root_pem(), &confirmare);

    // As often as needed: a second upload is countersigned again.
    let (status, v) = w.upload(&h, &std::fs::read(&signed).unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    w.server.task.abort();
}

impl World {
    /// Write `bytes` to a file of the test directory.
    fn path_of(&self, bytes: &[u8], name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

on_both_stores!(uploads_that_are_refused);
async fn uploads_that_are_refused(db: &TestDb) {
    let w = world(db).await;
    let a = w.holder(2, "Ana", "Pop").await;
    let b = w.holder(3, "Ioana", "Popescu").await;
    let (_, pdf) = w.prefilled(&a).await;
    let prefilled = w.path_of(&pdf, "a.pdf");

    // Page content changed in an extra increment before the holder's
    // signature: pyHanko alone still calls the signature intact.
    let tampered = w.path_of(&change_page_content(&pdf), "tampered.pdf");
    let tampered_signed = w.path("tampered-signed.pdf");
    pyhanko_sign(&tampered, &tampered_signed, &a.key, &a.cert);
    let out = Command::new(venv_tool("pyhanko"))
        .args(["sign", "validate", "--pretty-print"])
        .arg(&tampered_signed)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        said.contains("cryptographically sound") && said.contains("covers the entire file"),
        "pyHanko's own view of the tampered file:\n{said}"
    );
    let (status, v) = w.upload(&a, &std::fs::read(&tampered_signed).unwrap()).await;
    refused(status, &v, "2 updates");

    // Signed by another holder.
    let by_b = w.path("by-b.pdf");
    pyhanko_sign(&prefilled, &by_b, &b.key, &b.cert);
    let (status, v) = w.upload(&a, &std::fs::read(&by_b).unwrap()).await;
    refused(status, &v, &format!("not signed with certificate {}", a.serial));

    // Truncated.
    let good = w.path("good.pdf");
    pyhanko_sign(&prefilled, &good, &a.key, &a.cert);
    let good = std::fs::read(&good).unwrap();
    let (status, v) = w.upload(&a, &good[..good.len() - 200]).await;
    refused(status, &v, "truncated");
    let (status, v) = w.upload(&a, &good[..pdf.len() + 10]).await;
    refused(status, &v, "truncated");

    // Not starting with our bytes: B's document signed by B, sent to A's link.
    let (_, b_pdf) = w.prefilled(&b).await;
    let b_signed = w.path("b-signed.pdf");
    pyhanko_sign(&w.path_of(&b_pdf, "b.pdf"), &b_signed, &b.key, &b.cert);
    let (status, v) = w.upload(&a, &std::fs::read(&b_signed).unwrap()).await;
    refused(status, &v, "does not start with the confirmation document");
    let (status, v) = w.upload(&a, b"not a pdf at all").await;
    refused(status, &v, "does not start with the confirmation document");
    // The prefilled document itself, unsigned.
    let (status, v) = w.upload(&a, &pdf).await;
    refused(status, &v, "not signed");

    // Wrong media type; too large (announced).
    let r = w
        .http
        .post(format!("{}/confirmation", a.order_url))
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Announced over the limit: refused before a byte of the body is read.
    let head = announce(&a.order_url, qcert_ca_core::confirmation::MAX_UPLOAD + 1).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains(&format!("at most {} bytes", qcert_ca_core::confirmation::MAX_UPLOAD)), "{head}");

    // Revoked: the good file is refused once the certificate is revoked.
    w.ca.revoke(&a.serial, Reason::KeyCompromise, None, "ra:test").await.expect("revoke");
    let (status, v) = w.upload(&a, &good).await;
    refused(status, &v, "revoked");
    w.server.task.abort();
}

on_both_stores!(a_home_without_the_seal_says_which_ceremony_makes_it);
async fn a_home_without_the_seal_says_which_ceremony_makes_it(db: &TestDb) {
    let w = world_with(db, false).await;
    let h = w.holder(4, "Ana", "Pop").await;
    let (_, pdf) = w.prefilled(&h).await;
    let signed = w.path("signed.pdf");
    pyhanko_sign(&w.path_of(&pdf, "in.pdf"), &signed, &h.key, &h.cert);
    let (status, v) = w.upload(&h, &std::fs::read(&signed).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["type"], "urn:qcert:problem:not-configured", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("qcert ceremony seal"), "{v}");

    // The ceremony, run later, is picked up without a restart.
    make_service_keys(&w.ca).await;
    let (status, v) = w.upload(&h, &std::fs::read(&signed).unwrap()).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    w.server.task.abort();
}

on_both_stores!(a_cloud_holder_signs_through_the_csc_api);
async fn a_cloud_holder_signs_through_the_csc_api(db: &TestDb) {
    let w = CloudWorld::new(db, WEBHOOK).await;
    make_service_keys(&w.ca).await;
    let a = w.holder(5).await;
    let b = w.holder(6).await;
    let dir = w.dir.path();
    let (disposition, pdf) = prefilled(&w.http, &a.order_url).await;
    assert_eq!(disposition, "attachment; filename=\"ioana_popescu.pdf\"");
    let input = dir.join("cloud.pdf");
    std::fs::write(&input, &pdf).unwrap();
    let holder_field = CscDocument::Field { input: &input, field: HOLDER_FIELD };

    // pyHanko's CSCSigner fills the holder's field with the key in our HSM
    // (login, credentials/info, authorize with the code, signHash).
    let signed = dir.join("cloud-signed.pdf");
    let (ok, said) = w.csc_sign(&a, "v2", holder_field, &signed).await;
    assert!(ok, "{said}");
    let bytes = std::fs::read(&signed).unwrap();
    assert!(bytes.starts_with(&pdf), "an incremental update of our bytes");
    let (status, v) = upload(&w.http, &a.order_url, &bytes).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["serial"], a.serial.as_str());
    let confirmare = download_confirmare(&w.http, &v, &dir.join("confirmare.pdf")).await;
    judge_confirmare(dir, &w.root_pem(), &confirmare);
    let confirmed = w.ca.registry().audit_page(0, 10_000).await.unwrap();
    assert!(confirmed.iter().any(|r| r.action == "csc.sign" && r.subject == a.serial && r.outcome == "success"));

    // Still refused when signed through CSC: page content changed in an
    // increment before the holder's signature, and another holder's
    // signature (B's CLOUD key) over A's document.
    let tampered = dir.join("cloud-tampered.pdf");
    std::fs::write(&tampered, change_page_content(&pdf)).unwrap();
    let tampered_signed = dir.join("cloud-tampered-signed.pdf");
    let (ok, said) =
        w.csc_sign(&a, "v1", CscDocument::Field { input: &tampered, field: HOLDER_FIELD }, &tampered_signed).await;
    assert!(ok, "{said}");
    let (status, v) = upload(&w.http, &a.order_url, &std::fs::read(&tampered_signed).unwrap()).await;
    refused(status, &v, "2 updates");
    let by_b = dir.join("cloud-by-b.pdf");
    let (ok, said) = w.csc_sign(&b, "v2", holder_field, &by_b).await;
    assert!(ok, "{said}");
    let (status, v) = upload(&w.http, &a.order_url, &std::fs::read(&by_b).unwrap()).await;
    refused(status, &v, &format!("not signed with certificate {}", a.serial));
    w.server.task.abort();
}
