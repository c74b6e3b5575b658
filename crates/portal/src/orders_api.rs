//! The orders API: the holder's order form and capability link, the
//! payment provider's webhook, the RA officer's identity queue, and the
//! one-time secret delivery.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::delivery::GenerationCode;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::orders::{AuthenticatorState, DeliveryView, OrderForm, Payment, PaymentSettings};
use qcert_ca_core::store::orders::OrderRow;
use qcert_ca_core::store::orders::RefundDue;
use serde::{Deserialize, Serialize};

use crate::api::{Acting, ApiJson, RaOfficer};
use crate::extract::{ApiBytes, ApiPath, ApiQuery};
use crate::holder_web::orders as pages;
use crate::http::{ApiError, AppState, Problem};
use crate::pages::{form_field, is_form, wants_html};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orders", post(create))
        .route("/api/v1/orders/{token}", get(view))
        .route("/api/v1/orders/{token}/csr", get(csr_page).put(upload_csr).post(upload_csr))
        .route("/api/v1/orders/{token}/resume", get(resume_page).post(resume))
        .route("/api/v1/orders/{token}/authenticator", get(enrol_page).post(enrol))
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
        .route("/api/v1/ra/orders/{id}/authenticator/unlock", post(unlock_authenticator))
        .route("/api/v1/ra/orders/{id}/authenticator/reset", post(reset_authenticator))
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
            "approved" if cloud && o.totp_sealed.is_none() => "enrol your authenticator",
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

/// The TCP peer of a request, when the server was started with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)))
    }
}

/// The client's address as a rate-limit key: the peer, or, from a trusted
/// proxy, the right-most X-Forwarded-For entry that is not itself a
/// trusted proxy. IPv6 addresses count per /64 (one subscriber's prefix);
/// IPv4-mapped IPv6 as IPv4. Without a peer (a server started without
/// connect info) every client shares one key, which still bounds the form.
pub(crate) fn client_key(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let Some(mut ip) = peer.map(|p| p.ip()) else { return "unknown".into() };
    if trusted.contains(&ip) {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(h) if trusted.contains(&h) => continue,
                Ok(h) => {
                    ip = h;
                    break;
                }
                // A hop we cannot read: the proxy's own view ends here.
                Err(_) => break,
            }
        }
    }
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

/// `POST /api/v1/orders` with an optional `Idempotency-Key` header,
/// rate-limited per client address and per email (429 with Retry-After).
async fn create(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    ApiJson(form): ApiJson<OrderForm>,
) -> Response {
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) => Some(k.to_owned()),
        Some(Err(_)) => {
            return ApiError(qcert_ca_core::CaError::field("Idempotency-Key", "printable ASCII")).into_response()
        }
    };
    let client = client_key(peer, &headers, state.trusted_proxies());
    match state.orders.create_from(Some(&client), &form, key.as_deref()).await {
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

/// The order as JSON, or as the holder's page for a browser.
fn order_answer(state: &AppState, headers: &HeaderMap, uri: &Uri, o: &OrderRow) -> Result<Response, ApiError> {
    if wants_html(headers) {
        return pages::order_page(state, pages::chrome_for(headers, uri, &o.language), o, None);
    }
    Ok(Json(HolderView::from(state, o)).into_response())
}

/// A holder's page for the order behind link `token`, in the order's
/// language (unless the visitor chose one); a refusal (an unknown link)
/// as the page or problem the request wants.
async fn link_page(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    token: &str,
    page: impl FnOnce(&AppState, crate::web::Chrome, &OrderRow) -> Result<Response, ApiError>,
) -> Response {
    let r = async {
        let o = state.orders.by_link(token).await?;
        page(state, pages::chrome_for(headers, uri, &o.language), &o)
    }
    .await;
    pages::answer(headers, uri, r)
}

async fn view(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let r = async { order_answer(&state, &headers, &uri, &state.orders.by_link(&token).await?) }.await;
    pages::answer(&headers, &uri, r)
}

/// `GET /api/v1/orders/{token}/csr`: how to upload the CSR (TOKEN).
async fn csr_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    link_page(&state, &headers, &uri, &token, |state, c, o| pages::csr_page(state, c, o, None)).await
}

/// `PUT` (or `POST`, also as a form with field `csr`: urlencoded, or
/// multipart with the pasted `csr` or the file `csr_file`)
/// `/api/v1/orders/{token}/csr`: the PKCS#10 request, PEM or DER. A form
/// goes on to the order's page.
async fn upload_csr(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
    ApiBytes(body): ApiBytes,
) -> Response {
    if is_form(&headers) || pages::is_multipart(&headers) {
        let done = match pages::csr_from_form(&headers, body).await {
            Ok(csr) => state.orders.upload_csr(&token, csr).await,
            Err(e) => Err(e),
        };
        return match done {
            Ok(o) => pages::to_order(&state, &headers, &o),
            Err(e) => pages::refused_step(&state, &headers, &token, e, true).await,
        };
    }
    let r =
        async { order_answer(&state, &headers, &uri, &state.orders.upload_csr(&token, body.to_vec()).await?) }.await;
    pages::answer(&headers, &uri, r)
}

/// `GET /api/v1/orders/{token}/resume`: the order page, with the resume button.
async fn resume_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    link_page(&state, &headers, &uri, &token, |state, c, o| pages::order_page(state, c, o, None)).await
}

async fn resume(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if is_form(&headers) {
        return match state.orders.resume(&token).await {
            Ok(o) => pages::to_order(&state, &headers, &o),
            Err(e) => pages::refused_step(&state, &headers, &token, e, false).await,
        };
    }
    let r = async { order_answer(&state, &headers, &uri, &state.orders.resume(&token).await?) }.await;
    pages::answer(&headers, &uri, r)
}

/// `GET /api/v1/orders/{token}/authenticator` (CLOUD): what enrolling
/// means, and the button that does it.
async fn enrol_page(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    link_page(&state, &headers, &uri, &token, pages::enrol_page).await
}

#[derive(Serialize)]
struct Enrolment {
    otpauth_uri: String,
    secret: String,
}

/// `POST /api/v1/orders/{token}/authenticator` (CLOUD): the TOTP secret,
/// once (for a browser: as a QR code and as text).
async fn enrol(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let html = wants_html(&headers);
    let (otpauth_uri, secret) = match state.orders.enrol_authenticator(&token).await {
        Ok(e) => e,
        Err(e) if html => return pages::refused_step(&state, &headers, &token, e, false).await,
        Err(e) => return ApiError(e).into_response(),
    };
    if html {
        let r = async {
            let o = state.orders.by_link(&token).await?;
            pages::enrolled_page(&state, &headers, &o, otpauth_uri, secret)
        }
        .await;
        return pages::answer(&headers, &uri, r);
    }
    no_store(Json(Enrolment { otpauth_uri, secret }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    code: String,
}

/// A `{"code"}` JSON body, or a form with field `code` (then the answer is a page).
struct CodeBody {
    code: String,
    form: bool,
}

impl<S: Send + Sync> axum::extract::FromRequest<S> for CodeBody {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        if is_form(req.headers()) {
            let ApiBytes(body) = ApiBytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
            // A form without the field: the step refuses the empty code (a page).
            let code = form_field(&body, "code").unwrap_or_default();
            return Ok(CodeBody { code, form: true });
        }
        let ApiJson(req) =
            ApiJson::<CodeRequest>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(CodeBody { code: req.code, form: false })
    }
}

/// `POST /api/v1/orders/{token}/authorization` (CLOUD): a TOTP code. A
/// form goes on to the order's page (or shows it with the refusal).
async fn authorize(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
    req: CodeBody,
) -> Response {
    if req.form {
        return match state.orders.authorize(&token, &req.code).await {
            Ok(o) => pages::to_order(&state, &headers, &o),
            Err(e) => pages::refused_step(&state, &headers, &token, e, false).await,
        };
    }
    let r = async { order_answer(&state, &headers, &uri, &state.orders.authorize(&token, &req.code).await?) }.await;
    pages::answer(&headers, &uri, r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CertificateQuery {
    /// One certificate of the order's line; default the newest.
    serial: Option<String>,
    /// Append the issuing CA's certificate.
    #[serde(default)]
    chain: bool,
    /// `pem` or `der`: the file, whatever the client (the page's download links).
    format: Option<String>,
    /// The page's language (a browser's choice; not used by the file).
    #[serde(default, rename = "lang")]
    _lang: Option<String>,
}

/// `GET /api/v1/orders/{token}/certificate[?serial=…][&chain=true][&format=pem|der]`:
/// PEM of the newest certificate of the order (after renewals, the
/// renewed one), or of a given one; with `chain=true` followed by the
/// issuing CA; `format=der` the certificate alone as DER. A browser gets
/// the certificate page (`holder_web::certs`), unless `format` asks for the file.
async fn certificate(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<CertificateQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let r = async {
        let format = match q.format.as_deref() {
            None => None,
            Some(f @ ("pem" | "der")) => Some(f),
            Some(_) => return Err(ApiError(qcert_ca_core::CaError::field("format", "pem or der"))),
        };
        if format.is_none() && wants_html(&headers) {
            let serial = q.serial.as_deref();
            return Ok(crate::holder_web::certs::certificate_page(&state, &headers, &uri, &token, serial).await);
        }
        let (serial, der) = state.orders.certificate(&token, q.serial.as_deref()).await?;
        if format == Some("der") {
            return Ok(der_download(&serial, der));
        }
        let mut pem = qcert_ca_core::pem("CERTIFICATE", &der);
        if q.chain {
            pem.push_str(&qcert_ca_core::pem("CERTIFICATE", &state.ca.hierarchy().issuing));
        }

        Ok(pem_download(&serial, pem))
    }
    .await;
    pages::answer(&headers, &uri, r)
}

/// A PEM file download named after the certificate's serial.
pub(crate) fn pem_download(serial: &str, pem: String) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{serial}.pem\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// A DER certificate download (`{serial}.cer`).
fn der_download(serial: &str, der: Vec<u8>) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "application/pkix-cert")], der).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{serial}.cer\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// Header carrying the payment provider's signature: `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "qcert-signature";

/// `POST /api/v1/payments/webhook`: signed by the payment provider.
async fn webhook(State(state): State<AppState>, headers: HeaderMap, ApiBytes(body): ApiBytes) -> Response {
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
        Ok(Payment::AlreadyPaid) => {
            Json(serde_json::json!({"result": "already_paid", "refund_due": true})).into_response()
        }
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

/// The secret delivery page of `token` for a browser (its status now),
/// in the order's language.
async fn secrets_page(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    token: &str,
    refused: Option<qcert_ca_core::CaError>,
) -> Result<Response, ApiError> {
    let (status, order_id) = state.orders.deliveries().status_and_order(token).await?;
    let order = state.ca.registry().order(&order_id).await.map_err(qcert_ca_core::CaError::from)?;
    let (lang, cloud) = order.as_ref().map_or(("en", false), |o| (o.language.as_str(), o.product == "cloud"));
    let action = format!("{}/api/v1/secrets/{token}", state.orders.base());
    let c = pages::chrome_for(headers, &pages::page_uri(&action), lang);
    let c = if uri.query().is_some() { pages::chrome_for(headers, uri, lang) } else { c };
    let refused = refused.map(|e| pages::secrets_refusal(&c, e));
    Ok(pages::secrets_page(c, status, cloud, action, refused))
}

async fn delivery_status(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if !wants_html(&headers) {
        return match state.orders.deliveries().status_and_order(&token).await {
            Ok((status, _)) => no_store(Json(DeliveryState { status: status.as_str() })),
            Err(e) => ApiError(e).into_response(),
        };
    }
    let r = secrets_page(&state, &headers, &uri, &token, None).await;
    pages::answer(&headers, &uri, r)
}

#[derive(Serialize)]
struct Revealed {
    revocation_password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    puk: Option<String>,
}

/// `POST /api/v1/secrets/{token}` with `{"code"}` (or a form with field
/// `code`, answered with a printable page): the secrets, once.
async fn reveal(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    uri: Uri,
    req: CodeBody,
) -> Response {
    let revealed = match GenerationCode::parse(&req.code) {
        Ok(code) => state.orders.deliveries().reveal(&token, &code).await,
        Err(e) => Err(e),
    };
    if !req.form {
        return match revealed {
            Ok(s) => no_store(Json(Revealed {
                revocation_password: s.revocation_password.clone(),
                pin: s.pin.clone(),
                puk: s.puk.clone(),
            })),
            Err(e) => ApiError(e).into_response(),
        };
    }
    let r = async {
        match revealed {
            Ok(s) => {
                let (_, order_id) = state.orders.deliveries().status_and_order(&token).await?;
                let order = state.ca.registry().order(&order_id).await.map_err(qcert_ca_core::CaError::from)?;
                let lang = order.as_ref().map_or("en", |o| o.language.as_str());
                let page = format!("{}/api/v1/secrets/{token}", state.orders.base());
                Ok(pages::secrets_shown(pages::chrome_for(&headers, &pages::page_uri(&page), lang), &s))
            }
            Err(e) => secrets_page(&state, &headers, &uri, &token, Some(e)).await,
        }
    }
    .await;
    pages::answer(&headers, &uri, r)
}

/// What an RA officer needs to validate an identity, and no more.
#[derive(Debug, Serialize)]
pub(crate) struct OfficerView {
    order_id: String,
    state: String,
    product: String,
    years: i64,
    given_name: String,
    surname: String,
    country: String,
    national_id: String,
    /// To reach the holder for the video call.
    email: String,
    phone: Option<String>,
    /// `id-card` or `passport` (null: not given).
    document_type: Option<String>,
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
    /// CLOUD: the authenticator (`none`, `enrolling`, `active`, `locked`) and wrong codes so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    authenticator: Option<AuthenticatorView>,
    /// The secret delivery (only in the single-order view).
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<DeliveryJson>,
    /// Payments received for an order or renewal already paid: to refund
    /// (only in the single-order view).
    #[serde(skip_serializing_if = "Option::is_none")]
    refunds_due: Option<Vec<RefundJson>>,
}

#[derive(Debug, Serialize)]
struct AuthenticatorView {
    state: &'static str,
    wrong_codes: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    locked_at: Option<String>,
}

impl From<AuthenticatorState> for AuthenticatorView {
    fn from(a: AuthenticatorState) -> Self {
        AuthenticatorView { state: a.state, wrong_codes: a.wrong_codes, locked_at: a.locked_at.map(rfc3339) }
    }
}

#[derive(Debug, Serialize)]
struct DeliveryJson {
    state: &'static str,
    wrong_codes: i64,
    links: usize,
    code_waiting: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revealed_at: Option<String>,
}

impl From<DeliveryView> for DeliveryJson {
    fn from(d: DeliveryView) -> Self {
        DeliveryJson {
            state: d.state,
            wrong_codes: d.wrong_codes,
            links: d.links,
            code_waiting: d.code_waiting,
            created_at: d.created_at.map(rfc3339),
            blocked_at: d.blocked_at.map(rfc3339),
            revealed_at: d.revealed_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize)]
struct RefundJson {
    event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_ref: Option<String>,
    received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    renewal_id: Option<String>,
}

impl From<RefundDue> for RefundJson {
    fn from(r: RefundDue) -> Self {
        RefundJson {
            event_id: r.event_id,
            payment_ref: r.payment_ref,
            received_at: rfc3339(r.received_at),
            renewal_id: r.renewal_id,
        }
    }
}

fn officer_view(state: &AppState, now: i64, o: &OrderRow) -> OfficerView {
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
        email: o.email.clone(),
        phone: o.phone.clone(),
        document_type: o.document_type.clone(),
        paid_at: o.paid_at.map(rfc3339),
        identity_due_at: o.identity_due_at.map(rfc3339),
        seconds_left: left,
        overdue: left.is_some_and(|l| l < 0),
        serial: o.serial.clone(),
        authenticator: state.orders.authenticator_state(o).map(AuthenticatorView::from),
        delivery: None,
        refunds_due: None,
    }
}

/// The single-order view: also the delivery and any refunds due.
async fn full_officer_view(
    state: &AppState,
    op: &qcert_ca_core::operators::Operator,
    o: &OrderRow,
) -> Result<OfficerView, ApiError> {
    let now = state.ca.clock().now().unix_timestamp();
    let mut view = officer_view(state, now, o);
    view.delivery = Some(state.orders.delivery_view(&o.id).await?.into());
    view.refunds_due = Some(state.orders.refunds_due(op, &o.id).await?.into_iter().map(RefundJson::from).collect());
    Ok(view)
}

/// `GET /api/v1/ra/orders`: waiting for identity validation, oldest promise first.
async fn queue(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
) -> Result<Json<Vec<OfficerView>>, ApiError> {
    Ok(Json(queue_views(&state, &op).await?))
}

/// The queue's answer before serialisation (`qcert bench desk` times it too).
pub(crate) async fn queue_views(
    state: &AppState,
    op: &qcert_ca_core::operators::Operator,
) -> Result<Vec<OfficerView>, ApiError> {
    let now = state.ca.clock().now().unix_timestamp();
    let rows = state.orders.queue(op, 200).await?;
    Ok(rows.iter().map(|o| officer_view(state, now, o)).collect())
}

/// `GET /api/v1/ra/orders/{id}`.
async fn officer_get(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OfficerView>, ApiError> {
    let row = state.orders.for_officer(&op, &id).await?;
    Ok(Json(full_officer_view(&state, &op, &row).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Approval {
    document_number: String,
}

async fn approve(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Approval>,
) -> Result<Json<OfficerView>, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let row = state.orders.approve(&op, &id, &document).await?;
    Ok(Json(officer_view(&state, state.ca.clock().now().unix_timestamp(), &row)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rejection {
    reason: String,
}

async fn reject(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Rejection>,
) -> Result<Json<OfficerView>, ApiError> {
    let row = state.orders.reject(&op, &id, &req.reason).await?;
    Ok(Json(officer_view(&state, state.ca.clock().now().unix_timestamp(), &row)))
}

#[derive(Serialize)]
struct Code {
    order_id: String,
    /// The generation code, shown once: read it to the holder.
    code: String,
}

/// `POST /api/v1/ra/orders/{id}/delivery-code`: the waiting code, once.
async fn take_code(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    state.orders.for_officer(&op, &id).await?;
    let code = state.orders.take_code(&op.actor(), &id).await?;
    Ok(no_store(Json(Code { order_id: id, code })))
}

/// `POST /api/v1/ra/orders/{id}/secret-delivery`: a new link (mailed) and code (returned).
async fn reissue(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let code = state.orders.reissue_delivery(&op, &id).await?;
    Ok(no_store(Json(Code { order_id: id, code })))
}

/// `POST /api/v1/ra/orders/{id}/authenticator/unlock`: a locked authenticator works again.
async fn unlock_authenticator(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<OfficerView>, ApiError> {
    let row = state.orders.unlock_authenticator(&op, &id).await?;
    Ok(Json(full_officer_view(&state, &op, &row).await?))
}

/// `POST /api/v1/ra/orders/{id}/authenticator/reset` with `{"document_number"}`
/// of the ID document checked: the secret is erased and the holder invited to enrol again.
async fn reset_authenticator(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<Approval>,
) -> Result<Json<OfficerView>, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let row = state.orders.reset_authenticator(&op, &id, &document).await?;
    Ok(Json(full_officer_view(&state, &op, &row).await?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn client_keys_trust_forwarded_for_only_from_proxies() {
        let peer = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        let proxy: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let xff = headers(&["198.51.100.7, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(client_key(peer("192.0.2.1:5000"), &xff, &proxy), "192.0.2.1", "not a proxy: the peer");
        assert_eq!(client_key(peer("10.0.0.1:5000"), &xff, &proxy), "203.0.113.9", "right-most untrusted hop");
        assert_eq!(client_key(peer("10.0.0.1:5000"), &headers(&[]), &proxy), "10.0.0.1");
        assert_eq!(client_key(peer("10.0.0.1:5000"), &headers(&["junk"]), &proxy), "10.0.0.1");
        assert_eq!(client_key(peer("[2001:db8:1:2:3:4:5:6]:443"), &xff, &[]), "2001:db8:1:2::/64");
        assert_eq!(client_key(peer("[::ffff:192.0.2.5]:443"), &xff, &[]), "192.0.2.5");
        assert_eq!(client_key(None, &xff, &proxy), "unknown");
    }
}
