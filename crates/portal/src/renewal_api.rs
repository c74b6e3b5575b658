//! Renewal over HTTP: the banner data, and the renewal order authenticated
//! with the current certificate (a CMS-signed request, TOKEN) or an
//! authorization code (CLOUD).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::orders::PaymentSettings;
use qcert_ca_core::store::renewals::RenewalRow;
use serde::{Deserialize, Serialize};

use crate::extract::{parse_json, ApiBytes, ApiPath};
use crate::http::{ApiError, AppState, Problem};
use crate::pages::wants_html;

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
    /// Where to pay, while the renewal awaits payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_url: Option<String>,
}

/// `GET /api/v1/certificates/{serial}/renewal` (the reminder mails' link:
/// a page for a browser, `holder_web::certs::renewal_page`).
async fn banner(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let b = match state.orders.banner(&serial).await {
        Ok(b) => b,
        Err(e) if wants_html(&headers) => {
            let c = crate::web::Chrome::from_request(&headers, &uri);
            return Ok(crate::holder_web::certs::error_page(&c, e).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    if wants_html(&headers) {
        return Ok(crate::holder_web::certs::renewal_page(&state, &headers, &uri, b).await);
    }
    Ok(Json(BannerView {
        serial: b.serial,
        not_after: rfc3339(b.not_after),
        window_open: b.window_open,
        deadline: rfc3339(b.deadline),
        renewal_state: b.state,
        renewal_id: b.renewal_id,
        new_serial: b.new_serial,
        payment_url: b.payment_url,
    })
    .into_response())
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
    /// Where to pay (`orders.payment.renewal_url`).
    payment_url: String,
}

impl RenewalView {
    fn of(payment: &PaymentSettings, r: &RenewalRow) -> Self {
        RenewalView {
            payment_url: payment.renewal_url(r),
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
        Ok(r) => (StatusCode::CREATED, Json(RenewalView::of(state.orders.payment(), &r))).into_response(),
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
