//! Renewal over HTTP: the banner data, and the renewal order authenticated
//! with the current certificate (a CMS-signed request, TOKEN) or an
//! authorization code (CLOUD).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::store::renewals::RenewalRow;
use serde::{Deserialize, Serialize};

use crate::extract::{parse_json, ApiBytes, ApiPath};
use crate::http::{ApiError, AppState, Problem};
use crate::pages::{wants_html, Lang, Page};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/certificates/{serial}/renewal", get(banner))
        .route("/api/v1/certificates/{serial}/renewals", post(order))
        .route("/api/v1/certificates/{serial}/renewal/certificate", get(renewed_certificate))
}

#[derive(Debug, Serialize)]
struct BannerView {
    serial: String,
    not_after: String,
    /// Show the renewal banner: within 45 days of expiry, certificate valid.
    window_open: bool,
    /// Last moment to order the renewal (notAfter - 3 days).
    deadline: String,
    renewal_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewal_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_serial: Option<String>,
}

/// `GET /api/v1/certificates/{serial}/renewal` (the reminder mails' link:
/// a page for a browser).
async fn banner(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let b = state.orders.banner(&serial).await?;
    if wants_html(&headers) {
        return renewal_page(&state, &b).await;
    }
    Ok(Json(BannerView {
        serial: b.serial,
        not_after: rfc3339(b.not_after),
        window_open: b.window_open,
        deadline: rfc3339(b.deadline),
        renewal_state: b.state,
        renewal_id: b.renewal_id,
        new_serial: b.new_serial,
    })
    .into_response())
}

/// The renewal page: dates, state, and how to renew this certificate.
async fn renewal_page(state: &AppState, b: &qcert_ca_core::orders::Banner) -> Result<Response, ApiError> {
    let order = state.orders.order_behind(&b.serial).await?;
    let l = Lang::of(order.as_ref().map_or("en", |o| o.language.as_str()));
    let cloud = order.as_ref().is_some_and(|o| o.product == "cloud");
    let state_text = match b.state.as_str() {
        "none" => l.t("not ordered yet", "necomandată încă"),
        "awaiting-payment" => l.t("ordered, waiting for payment", "comandată, în așteptarea plății"),
        "paid" => l.t(
            "paid; issued automatically 3 days before expiry",
            "plătită; emisă automat cu 3 zile înainte de expirare",
        ),
        "issuing" => l.t("being issued", "în curs de emitere"),
        "issued" => l.t("new certificate issued", "certificat nou emis"),
        _ => l.t("no longer renewable", "nu mai poate fi reînnoit"),
    };
    let mut facts = vec![
        (l.t("Serial number", "Număr de serie"), b.serial.clone()),
        (l.t("Expires on", "Expiră la"), l.date(b.not_after)),
        (l.t("Renew by", "Reînnoiți până la"), l.date(b.deadline)),
        (l.t("Renewal", "Reînnoire"), state_text.to_owned()),
    ];
    if let Some(n) = &b.new_serial {
        facts.push((l.t("New serial number", "Număr de serie nou"), n.clone()));
    }
    let page = Page::new(l, l.t("Renew your qualified certificate", "Reînnoiți certificatul calificat")).facts(&facts);
    let url = format!("{}/api/v1/certificates/{}/renewals", state.orders.base(), b.serial);
    let page = match b.state.as_str() {
        "none" if cloud => page
            .next(l.t(
                "order the renewal with a code from your authenticator app (years: 1, 2 or 3):",
                "comandați reînnoirea cu un cod din aplicația de autentificare (ani: 1, 2 sau 3):",
            ))
            .pre(&format!(
                "curl -H 'Content-Type: application/json' -d '{{\"years\": 1, \"code\": \"123456\"}}' '{url}'"
            )),
        "none" => page
            .next(l.t(
                "make a new key pair and CSR on your token, sign the request with your current certificate and send it:",
                "generați pe token o pereche nouă de chei și o cerere CSR, semnați cererea cu certificatul curent și trimiteți-o:",
            ))
            .pre(&format!(
                "# req.json: {{\"serial\": \"{serial}\", \"years\": 1, \"csr\": \"<PEM of the new CSR>\"}}\n\
                 openssl cms -sign -nodetach -binary -outform DER -signer current.pem -inkey current.key -in req.json -out req.cms\n\
                 curl -H 'Content-Type: application/pkcs7-mime' --data-binary @req.cms '{url}'",
                serial = b.serial
            )),
        "awaiting-payment" => page.next(l.t(
            "pay the renewal; the answer to your renewal order names it (renewal_id).",
            "plătiți reînnoirea; răspunsul la comanda de reînnoire o identifică (renewal_id).",
        )),
        "paid" | "issuing" => page.next(l.t(
            "nothing: the new certificate is issued automatically and mailed to you.",
            "nimic: noul certificat este emis automat și vă este trimis prin e-mail.",
        )),
        "issued" => page.next(l.t(
            "use the new certificate from the email that announced it.",
            "folosiți noul certificat din e-mailul care l-a anunțat.",
        )),
        _ => page.next(l.t(
            "place a new order: this certificate can no longer be renewed.",
            "plasați o comandă nouă: acest certificat nu mai poate fi reînnoit.",
        )),
    };
    Ok(page.ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRenewal {
    years: u32,
    code: String,
}

#[derive(Debug, Serialize)]
struct RenewalView {
    renewal_id: String,
    serial: String,
    product: String,
    years: i64,
    state: String,
    /// When the new certificate is issued (and its validity starts).
    issue_at: String,
    /// Pay with a payment event naming this `renewal_id`.
    payment: &'static str,
}

impl From<&RenewalRow> for RenewalView {
    fn from(r: &RenewalRow) -> Self {
        RenewalView {
            renewal_id: r.id.clone(),
            serial: r.serial.clone(),
            product: r.product.to_ascii_uppercase(),
            years: r.years,
            state: r.state.clone(),
            issue_at: rfc3339(r.issue_at),
            payment: "awaiting a payment event with this renewal_id",
        }
    }
}

/// `POST /api/v1/certificates/{serial}/renewals`: a CMS SignedData (TOKEN,
/// `{"serial","years","csr"}` signed with the current key) or JSON
/// `{"years","code"}` (CLOUD).
async fn order(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let result = if json {
        match parse_json::<CodeRenewal>(&body) {
            Ok(req) => state.orders.order_renewal_code(&serial, req.years, &req.code).await,
            Err(problem) => return problem.into_response(),
        }
    } else if body.is_empty() {
        return Problem::typed(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Empty body",
            Some("send the CMS SignedData made by `openssl cms -sign` with the current key".into()),
        )
        .into_response();
    } else {
        state.orders.order_renewal_signed(&serial, &body).await
    };
    match result {
        Ok(r) => (StatusCode::CREATED, Json(RenewalView::from(&r))).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainQuery {
    #[serde(default)]
    chain: bool,
}

/// `GET /api/v1/certificates/{serial}/renewal/certificate[?chain=true]`:
/// the certificate the renewal of `serial` issued, PEM (with the issuing
/// CA after it when `chain=true`), for `qcert enroll fetch`.
async fn renewed_certificate(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<ChainQuery>,
) -> Result<Response, ApiError> {
    let (new_serial, der) = state.orders.renewed_certificate(&serial).await?;
    let mut pem = qcert_ca_core::pem("CERTIFICATE", &der);
    if q.chain {
        pem.push_str(&qcert_ca_core::pem("CERTIFICATE", &state.ca.hierarchy().issuing));
    }
    Ok(crate::orders_api::pem_download(&new_serial, pem))
}
