//! The orders API: the holder's order form and capability link, the
//! payment provider's webhook, the RA officer's identity queue, and the
//! one-time secret delivery.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::delivery::GenerationCode;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::operators::Role;
use qcert_ca_core::orders::{OrderForm, Payment, PaymentSettings};
use qcert_ca_core::store::orders::OrderRow;
use serde::{Deserialize, Serialize};

use crate::api::{ApiJson, Authenticated};
use crate::http::{ApiError, AppState, Problem};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", post(create))
        .route("/api/v1/orders/{token}", get(view))
        .route("/api/v1/orders/{token}/csr", put(upload_csr))
        .route("/api/v1/orders/{token}/resume", post(resume))
        .route("/api/v1/orders/{token}/authenticator", post(enrol))
        .route("/api/v1/orders/{token}/authorization", post(authorize))
        .route("/api/v1/orders/{token}/certificate", get(certificate))
        .route("/api/v1/payments/webhook", post(webhook))
        .route("/api/v1/secrets/{token}", get(delivery_status).post(reveal))
        .route("/api/v1/ra/orders", get(queue))
        .route("/api/v1/ra/orders/{id}", get(officer_get))
        .route("/api/v1/ra/orders/{id}/approval", post(approve))
        .route("/api/v1/ra/orders/{id}/rejection", post(reject))
        .route("/api/v1/ra/orders/{id}/delivery-code", post(take_code))
        .route("/api/v1/ra/orders/{id}/secret-delivery", post(reissue))
}

fn no_store(resp: impl IntoResponse) -> Response {
    let mut r = resp.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    r
}

/// What the holder sees behind the order link.
#[derive(Debug, Serialize)]
struct HolderView {
    order_id: String,
    state: String,
    product: String,
    years: i64,
    created_at: String,
    paid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_due_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rejection_reason: Option<String>,
    csr_received: bool,
    authenticator_enrolled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    /// The price, e.g. `89.00 EUR`.
    price: String,
    /// Where to pay, while the order awaits payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_url: Option<String>,
    next_step: &'static str,
}

impl HolderView {
    fn of(payment: &PaymentSettings, o: &OrderRow) -> Self {
        let cloud = o.product == "cloud";
        let next_step = match o.state.as_str() {
            "awaiting-payment" => "pay the order",
            "awaiting-identity" => "identity validation by video; the answer comes by email within 24 hours",
            "rejected" => "resume the identity validation (no new payment)",
            "approved" if cloud && o.totp_enrolled_at.is_none() => "enrol your authenticator",
            "approved" if cloud => "send your first authorization code",
            "approved" => "upload the CSR made on your token",
            "issuing" => "the certificate is being issued",
            _ => "retrieve your secrets with the emailed link and the code from your kit",
        };
        HolderView {
            order_id: o.id.clone(),
            state: o.state.clone(),
            product: o.product.to_ascii_uppercase(),
            years: o.years,
            created_at: rfc3339(o.created_at),
            paid: o.paid_at.is_some(),
            identity_due_at: o.identity_due_at.map(rfc3339),
            rejection_reason: o.rejection_reason.clone(),
            csr_received: o.csr.is_some(),
            authenticator_enrolled: o.totp_enrolled_at.is_some(),
            serial: o.serial.clone(),
            price: payment.price_text(&o.product, o.years, "en"),
            payment_url: (o.state == "awaiting-payment").then(|| payment.url(o)),
            next_step,
        }
    }

    fn from(state: &AppState, o: &OrderRow) -> Self {
        HolderView::of(state.orders.payment(), o)
    }
}

#[derive(Debug, Serialize)]
struct CreatedView {
    order_url: String,
    #[serde(flatten)]
    order: HolderView,
}

/// `POST /api/v1/orders` with an optional `Idempotency-Key` header.
async fn create(State(state): State<AppState>, headers: HeaderMap, ApiJson(form): ApiJson<OrderForm>) -> Response {
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) => Some(k.to_owned()),
        Some(Err(_)) => {
            return ApiError(qcert_ca_core::CaError::field("Idempotency-Key", "printable ASCII")).into_response()
        }
    };
    match state.orders.create(&form, key.as_deref()).await {
        Ok(created) => {
            let order_url = match state.orders.order_url(&created.order.id) {
                Ok(u) => u,
                Err(e) => return ApiError(e).into_response(),
            };
            let status = if created.replayed { StatusCode::OK } else { StatusCode::CREATED };
            let body = CreatedView { order_url: order_url.clone(), order: HolderView::from(&state, &created.order) };
            let mut resp = no_store((status, Json(body)));
            if let Ok(v) = header::HeaderValue::from_str(&order_url) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Err(e) => ApiError(e).into_response(),
    }
}

async fn view(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<HolderView>, ApiError> {
    Ok(Json(HolderView::from(&state, &state.orders.by_link(&token).await?)))
}

/// `PUT /api/v1/orders/{token}/csr`: the PKCS#10 request, PEM or DER.
async fn upload_csr(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Json<HolderView>, ApiError> {
    Ok(Json(HolderView::from(&state, &state.orders.upload_csr(&token, body.to_vec()).await?)))
}

async fn resume(State(state): State<AppState>, Path(token): Path<String>) -> Result<Json<HolderView>, ApiError> {
    Ok(Json(HolderView::from(&state, &state.orders.resume(&token).await?)))
}

#[derive(Serialize)]
struct Enrolment {
    otpauth_uri: String,
    secret: String,
}

/// `POST /api/v1/orders/{token}/authenticator` (CLOUD): the TOTP secret, once.
async fn enrol(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let (otpauth_uri, secret) = state.orders.enrol_authenticator(&token).await?;
    Ok(no_store(Json(Enrolment { otpauth_uri, secret })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    code: String,
}

/// `POST /api/v1/orders/{token}/authorization` (CLOUD): a TOTP code.
async fn authorize(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<HolderView>, ApiError> {
    Ok(Json(HolderView::from(&state, &state.orders.authorize(&token, &req.code).await?)))
}

/// `GET /api/v1/orders/{token}/certificate`: PEM.
async fn certificate(State(state): State<AppState>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let der = state.orders.certificate(&token).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], qcert_ca_core::pem("CERTIFICATE", &der)).into_response())
}

/// Header carrying the payment provider's signature: `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "qcert-signature";

/// `POST /api/v1/payments/webhook`: signed by the payment provider.
async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(sig) = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) else {
        return Problem::typed(
            StatusCode::UNAUTHORIZED,
            "signature-refused",
            "Unsigned webhook",
            Some(format!("the {SIGNATURE_HEADER} header is missing")),
        )
        .into_response();
    };
    match state.orders.payment_webhook(sig, &body).await {
        Ok(Payment::Applied) => Json(serde_json::json!({"result": "applied"})).into_response(),
        Ok(Payment::Duplicate) => Json(serde_json::json!({"result": "duplicate"})).into_response(),
        Err(qcert_ca_core::CaError::SignatureRefused(why)) => {
            Problem::typed(StatusCode::UNAUTHORIZED, "signature-refused", "Webhook refused", Some(why)).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

#[derive(Debug, Serialize)]
struct DeliveryState {
    status: &'static str,
}

async fn delivery_status(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<DeliveryState>, ApiError> {
    Ok(Json(DeliveryState { status: state.orders.deliveries().status(&token).await?.as_str() }))
}

#[derive(Serialize)]
struct Revealed {
    revocation_password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    puk: Option<String>,
}

/// `POST /api/v1/secrets/{token}` with `{"code"}`: the secrets, once.
async fn reveal(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Response, ApiError> {
    let code = GenerationCode::parse(&req.code)?;
    let s = state.orders.deliveries().reveal(&token, &code).await?;
    let body = Revealed { revocation_password: s.revocation_password.clone(), pin: s.pin.clone(), puk: s.puk.clone() };
    Ok(no_store(Json(body)))
}

/// What an RA officer needs to validate an identity, and no more.
#[derive(Debug, Serialize)]
struct OfficerView {
    order_id: String,
    state: String,
    product: String,
    years: i64,
    given_name: String,
    surname: String,
    country: String,
    national_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    paid_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_due_at: Option<String>,
    /// Seconds left of the 24-hour promise (negative: overdue).
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_left: Option<i64>,
    overdue: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
}

fn officer_view(now: i64, o: &OrderRow) -> OfficerView {
    let left = o.identity_due_at.filter(|_| o.state == "awaiting-identity").map(|d| d - now);
    OfficerView {
        order_id: o.id.clone(),
        state: o.state.clone(),
        product: o.product.to_ascii_uppercase(),
        years: o.years,
        given_name: o.given_name.clone(),
        surname: o.surname.clone(),
        country: o.country.clone(),
        national_id: o.semantics_id.clone(),
        paid_at: o.paid_at.map(rfc3339),
        identity_due_at: o.identity_due_at.map(rfc3339),
        seconds_left: left,
        overdue: left.is_some_and(|l| l < 0),
        serial: o.serial.clone(),
    }
}

/// `GET /api/v1/ra/orders`: waiting for identity validation, oldest promise first.
async fn queue(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
) -> Result<Json<Vec<OfficerView>>, ApiError> {
    op.require(Role::RaOfficer)?;
    let now = state.ca.clock().now().unix_timestamp();
    let rows = state.orders.queue(&op, 200).await?;
    Ok(Json(rows.iter().map(|o| officer_view(now, o)).collect()))
}

/// `GET /api/v1/ra/orders/{id}`.
async fn officer_get(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<OfficerView>, ApiError> {
    op.require(Role::RaOfficer)?;
    let now = state.ca.clock().now().unix_timestamp();
    Ok(Json(officer_view(now, &state.orders.for_officer(&op, &id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    document_number: String,
}

async fn approve(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Approval>,
) -> Result<Json<OfficerView>, ApiError> {
    op.require(Role::RaOfficer)?;
    let document = DocumentNumber::parse(&req.document_number)?;
    let row = state.orders.approve(&op, &id, &document).await?;
    Ok(Json(officer_view(state.ca.clock().now().unix_timestamp(), &row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rejection {
    reason: String,
}

async fn reject(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<Rejection>,
) -> Result<Json<OfficerView>, ApiError> {
    op.require(Role::RaOfficer)?;
    let row = state.orders.reject(&op, &id, &req.reason).await?;
    Ok(Json(officer_view(state.ca.clock().now().unix_timestamp(), &row)))
}

#[derive(Serialize)]
struct Code {
    order_id: String,
    /// The generation code, shown once: read it to the holder.
    code: String,
}

/// `POST /api/v1/ra/orders/{id}/delivery-code`: the waiting code, once.
async fn take_code(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    op.require(Role::RaOfficer)?;
    state.orders.for_officer(&op, &id).await?;
    let code = state.orders.take_code(&op.actor(), &id).await?;
    Ok(no_store(Json(Code { order_id: id, code })))
}

/// `POST /api/v1/ra/orders/{id}/secret-delivery`: a new link (mailed) and code (returned).
async fn reissue(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    op.require(Role::RaOfficer)?;
    let code = state.orders.reissue_delivery(&op, &id).await?;
    Ok(no_store(Json(Code { order_id: id, code })))
}
