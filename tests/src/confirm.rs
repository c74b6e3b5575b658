//! Shared by the confirmation document's tests (the API in
//! `tests/confirmation.rs`, the holder's page in `tests/holder_certs.rs`):
//! the seal and TSA ceremonies' keys, a TOKEN holder issued through the
//! order flow with a key of its own (openssl), and pyHanko signing the
//! holder's field.

use std::path::{Path, PathBuf};
use std::process::Command;

use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::orders::{OrderForm, Orders};
use qcert_ca_core::payment::{sign_webhook, WebhookKey};
use qcert_ca_core::Ca;

use crate::{cnp, run_ok, service_certificate, venv_tool};

/// The seal and TSA ceremonies' key and certificate steps (the code
/// `qcert ceremony seal` / `tsa` runs), on the test token.
pub async fn make_service_keys(ca: &Ca) {
    use qcert_ca_core::ca::ServiceCert;
    let tsu_label = ca.policy().tsa.as_ref().expect("[tsa] in ca.toml").key_label.clone();
    service_certificate(ca, ServiceCert::Seal, qcert_ca_core::confirmation::SEAL_KEY_LABEL, "qcert Test Seal").await;
    service_certificate(ca, ServiceCert::Tsa, &tsu_label, "qcert Test TSA").await;
}

/// A TOKEN holder: the order, its link, the certificate (PEM file) and its key.
#[derive(Debug, Clone)]
pub struct TokenHolder {
    pub order_id: String,
    /// `…/api/v1/orders/{token}`.
    pub order_url: String,
    pub serial: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Order (`publish`: consent to the directory), CSR (a P-256 key made by
/// openssl in `dir`), payment by a signed webhook to `base`, approval by
/// an RA officer: a TOKEN certificate for holder `n`.
#[allow(clippy::too_many_arguments)]
pub async fn issue_token_order(
    orders: &Orders,
    http: &reqwest::Client,
    base: &str,
    webhook: [u8; 32],
    dir: &Path,
    n: u32,
    (given, surname): (&str, &str),
    publish: bool,
) -> TokenHolder {
    let form: OrderForm = serde_json::from_value(serde_json::json!({
        "product": "TOKEN", "years": 1, "given_name": given, "surname": surname,
        "email": format!("holder{n}@example.ro"), "country": "RO", "national_id": cnp(n),
        "id_document_number": format!("RX{n:06}"), "publish": publish
    }))
    .expect("order form");
    let created = orders.create(&form, None).await.expect("order");
    let order_url = orders.order_url(&created.order.id).expect("order url");
    let (key, csr) = (dir.join(format!("h{n}.key")), dir.join(format!("h{n}.csr")));
    run_ok(
        Command::new("openssl")
            .args(["req", "-new", "-nodes", "-subj", "/CN=x", "-newkey", "ec", "-pkeyopt"])
            .arg("ec_paramgen_curve:P-256")
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    orders.upload_csr(&created.link, std::fs::read(&csr).expect("csr")).await.expect("upload csr");
    let event = serde_json::json!({"event_id": format!("o-{n}"), "order_id": created.order.id, "status": "paid"});
    let raw = serde_json::to_vec(&event).expect("json");
    let sig = sign_webhook(&WebhookKey::from_bytes(webhook), &raw, orders.ca().clock().now());
    let r = http
        .post(format!("{base}/api/v1/payments/webhook"))
        .header("qcert-signature", sig)
        .body(raw)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let officer =
        qcert_ca_core::operators::Operator { name: "radu".into(), role: qcert_ca_core::operators::Role::RaOfficer };
    let doc = DocumentNumber::parse(&format!("RX{n:06}")).expect("document number");
    let row = orders.approve(&officer, &created.order.id, &doc).await.expect("approve");
    let serial = row.serial.expect("issued on approval");
    let r = http.get(format!("{order_url}/certificate")).send().await.expect("certificate");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let cert = dir.join(format!("h{n}.pem"));
    std::fs::write(&cert, r.text().await.expect("pem")).expect("write pem");
    TokenHolder { order_id: created.order.id, order_url, serial, cert, key }
}

/// `pyhanko sign addsig --field <holder field> pemder` with `key` and `cert`.
pub fn pyhanko_sign(input: &Path, output: &Path, key: &Path, cert: &Path) {
    run_ok(
        Command::new(venv_tool("pyhanko"))
            .args(["sign", "addsig", "--field", qcert_ca_core::confirmation::HOLDER_FIELD, "pemder", "--no-pass"])
            .arg("--key")
            .arg(key)
            .arg("--cert")
            .arg(cert)
            .arg(input)
            .arg(output),
    );
}
