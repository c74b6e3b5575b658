//! The HTTP API. HTTP types live here and nowhere else; every error leaves
//! as `application/problem+json` (RFC 9457), and a 500 never shows its cause.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qcert_ca_core::desk::RevocationDesk;
use qcert_ca_core::desk_login::{DeskLogin, DeskLoginSettings, RelyingParty};
use qcert_ca_core::operators::Operators;
use qcert_ca_core::orders::Orders;
use qcert_ca_core::{Ca, CaError, CrlScope};
use serde::Serialize;

use crate::extract::{ApiBytes, ApiPath, ApiQuery};

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub ca: Ca,
    pub desk: RevocationDesk,
    pub orders: Orders,
    pub operators: Operators,
    /// Remote signing (CSC API) over the orders.
    pub csc: qcert_ca_core::csc::RemoteSigning,
    /// Confirmation documents (prefilled, checked, countersigned).
    pub confirmations: qcert_ca_core::confirmation::Confirmations,
    metrics: Arc<Metrics>,
    /// Peers whose X-Forwarded-For names the client (`orders.trusted_proxies`).
    trusted_proxies: Arc<Vec<std::net::IpAddr>>,
    /// The time-stamping unit, loaded on first use (see [`AppState::tsa`]).
    tsa: Arc<tokio::sync::OnceCell<qcert_ca_core::tsa::Tsa>>,
    /// Origins (`scheme://host[:port]`) whose browser form posts are ours,
    /// besides the request's own Host (see `web::guard`).
    web_origins: Arc<Vec<String>>,
    /// The operators' desk login (sessions, enrolment, WebAuthn).
    pub desk_login: qcert_ca_core::desk_login::DeskLogin,
}

impl AppState {
    pub fn new(orders: Orders) -> AppState {
        let desk = orders.desk().clone();
        let ca = desk.ca().clone();
        let operators = Operators::new(ca.registry().clone(), ca.clock().clone());
        let csc = qcert_ca_core::csc::RemoteSigning::new(orders.clone());
        let tsa = Arc::new(tokio::sync::OnceCell::new());
        let confirmations = qcert_ca_core::confirmation::Confirmations::new(orders.clone(), tsa.clone());
        let web_origins = Arc::new(crate::web::guard::origins_of(&ca.policy().urls.base));
        // The desk's origin defaults to the links' base (a loopback IP
        // becomes localhost); `with_desk` sets the configured one.
        let rp = RelyingParty::new(orders.base(), None).unwrap_or_else(|_| RelyingParty::localhost());
        let desk_login = desk_login_for(&orders, rp);
        AppState {
            desk_login,
            web_origins,
            confirmations,
            ca,
            desk,
            orders,
            operators,
            csc,
            metrics: Arc::new(Metrics::default()),
            trusted_proxies: Arc::new(Vec::new()),
            tsa,
        }
    }

    /// The TSA (`Tsa::open`), loaded once it can be: until `qcert ceremony
    /// tsa` has made the TSU certificate, every call says what is missing,
    /// and the first call after the ceremony loads it (no restart needed).
    pub async fn tsa(&self) -> Result<&qcert_ca_core::tsa::Tsa, CaError> {
        self.tsa.get_or_try_init(|| qcert_ca_core::tsa::Tsa::open(&self.ca)).await
    }

    /// Trust X-Forwarded-For from these peers (reverse proxies) only.
    pub fn with_trusted_proxies(mut self, proxies: Vec<std::net::IpAddr>) -> AppState {
        self.trusted_proxies = Arc::new(proxies);
        self
    }

    pub(crate) fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        &self.trusted_proxies
    }

    /// Also take browser form posts from this origin (e.g. the desk's own
    /// address when it differs from `public_base_url`).
    pub fn with_web_origin(mut self, origin: &url::Url) -> AppState {
        let mut all = (*self.web_origins).clone();
        all.extend(crate::web::guard::origins_of(origin));
        self.web_origins = Arc::new(all);
        self
    }

    /// Serve the desk at this relying party (`[desk] origin`, `rp_id`):
    /// WebAuthn binds keys to it, and its origin may post forms.
    pub fn with_desk(self, rp: RelyingParty) -> AppState {
        let origin = rp.origin.clone();
        let mut s = self.with_web_origin(&origin);
        s.desk_login = desk_login_for(&s.orders, rp);
        s
    }

    pub(crate) fn web_origins(&self) -> &[String] {
        &self.web_origins
    }
}

fn desk_login_for(orders: &Orders, rp: RelyingParty) -> DeskLogin {
    let desk = orders.desk();
    DeskLogin::new(desk.ca().clone(), orders.vault().clone(), desk.argon2_params(), rp, DeskLoginSettings::default())
}

/// OCSP answers by result; Prometheus label values in the same order.
const OCSP_RESULTS: [&str; 6] = ["good", "revoked", "unknown", "malformedRequest", "unauthorized", "internalError"];

/// How long a /health probe is reused.
const HEALTH_TTL: Duration = Duration::from_secs(5);

/// A health probe: when, and (database, hsm).
type HealthProbe = Option<(std::time::Instant, (&'static str, &'static str))>;

#[derive(Debug, Default)]
struct Metrics {
    ocsp: [AtomicU64; OCSP_RESULTS.len()],
    ocsp_cache_hits: AtomicU64,
    ocsp_signed: AtomicU64,
    health: std::sync::Mutex<HealthProbe>,
}

impl Metrics {
    fn count_ocsp(&self, outcome: &qcert_ca_core::ocsp::Outcome) {
        use qcert_ca_core::ocsp::Outcome;
        let result = match outcome {
            Outcome::Signed { status, cached, .. } => {
                let counter = if *cached { &self.ocsp_cache_hits } else { &self.ocsp_signed };
                counter.fetch_add(1, Ordering::Relaxed);
                status
            }
            Outcome::MalformedRequest => "malformedRequest",
            Outcome::Unauthorized => "unauthorized",
            Outcome::InternalError => "internalError",
        };
        if let Some(c) = OCSP_RESULTS.iter().position(|r| *r == result).and_then(|i| self.ocsp.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Largest request body accepted (an OCSP request with a few CertIDs is < 1 KiB).
pub const MAX_BODY: usize = 16 * 1024;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/certs/{name}", get(ca_certificate))
        .route("/crl/{name}", get(crl))
        .route("/api/v1/certificates", get(directory))
        .route("/metrics", get(metrics))
        .route("/ocsp", post(ocsp_post).fallback(ocsp_malformed))
        .route("/ocsp/", get(ocsp_get).fallback(ocsp_malformed))
        .route("/ocsp/{*request}", get(ocsp_get).fallback(ocsp_malformed))
        .route("/openapi.json", get(openapi))
        .merge(crate::api::routes())
        .merge(crate::audit_api::routes())
        .merge(crate::orders_api::routes())
        .merge(crate::renewal_api::routes())
        .merge(crate::holder_api::routes())
        .merge(crate::csc_api::routes())
        .merge(crate::tsa_api::routes())
        .merge(crate::confirmation_api::routes())
        .merge(crate::web::assets::router())
        .merge(crate::desk::router())
        .merge(crate::holder_web::router())
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_announced_oversize))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::web::guard::hygiene))
        .with_state(state)
}

/// Prefix of every problem `type`: `urn:qcert:problem:<slug>`. The slugs
/// are stable; clients may switch on them.
pub const PROBLEM_PREFIX: &str = "urn:qcert:problem:";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What to do next (the hotline agent's words for the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<&'static str>,
    /// The field a refusal is about (RFC 9457 extension member).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
    /// Answer with `Connection: close`.
    #[serde(skip)]
    close: bool,
}

/// What a hotline agent tells the caller after any refusal: the same words
/// for an unknown document number, a wrong password and a lock, so they
/// reveal nothing the refusal does not.
pub const HOTLINE_ADVICE: &str = "Nothing was revoked. Tell the caller: check the ID document number \
and the 8 digits of the revocation password (from the one-time secret delivery of the kit) and call again. \
If that does not help, the holder can have the certificate revoked at once in person: an RA officer at a \
registration office revokes it (or gives a new revocation password) after checking the holder's ID document. \
A holder who still has the certificate's key can also revoke it at any time with a request signed with that key \
(POST /api/v1/certificates/{serial}/revocation). The hotline cannot say more about this call.";

impl Problem {
    pub fn new(status: StatusCode, title: &str, detail: Option<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: title.into(),
            status: status.as_u16(),
            detail,
            advice: None,
            field: None,
            retry_after: None,
            close: false,
        }
    }

    /// Close the connection after this answer.
    pub fn closing(mut self) -> Problem {
        self.close = true;
        self
    }

    /// Name the field (a path like `holder.email`) the problem is about.
    pub fn with_field(mut self, field: String) -> Problem {
        self.field = Some(field);
        self
    }

    /// A problem with a stable type URI `urn:qcert:problem:{slug}`.
    pub fn typed(status: StatusCode, slug: &str, title: &str, detail: Option<String>) -> Problem {
        Problem { kind: format!("{PROBLEM_PREFIX}{slug}"), ..Problem::new(status, title, detail) }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(&self)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.close {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

/// The one mapping from core errors to HTTP.
#[derive(Debug)]
pub struct ApiError(pub CaError);

impl From<CaError> for ApiError {
    fn from(e: CaError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let detail = Some(e.to_string());
        let (status, slug, title) = match &e {
            CaError::InvalidField { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field"),
            CaError::InvalidInput(_)
            | CaError::CsrRefused(_)
            | CaError::UnknownProfile(_)
            | CaError::ValidityNotOffered(..) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "request-refused", "Request refused")
            }
            CaError::UnknownSerial(_) | CaError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            CaError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Role not allowed"),
            CaError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflicts with the recorded state"),
            CaError::HotlineRefused => {
                let mut p = Problem::typed(StatusCode::FORBIDDEN, "hotline-refused", "Revocation refused", detail);
                p.advice = Some(HOTLINE_ADVICE);
                return p.into_response();
            }
            CaError::LoginRefused => (StatusCode::UNAUTHORIZED, "login-refused", "Login refused"),
            CaError::AuthenticatorLocked => (StatusCode::LOCKED, "authenticator-locked", "Authenticator locked"),
            CaError::SignatureRefused(_) => (StatusCode::FORBIDDEN, "signature-refused", "Signed request refused"),
            CaError::DocumentRefused(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "document-refused", "Confirmation document refused")
            }
            CaError::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "not-configured", "Service not set up"),
            CaError::RateLimited { retry_after_secs } => {
                let mut p = Problem::typed(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many attempts", detail);
                p.retry_after = Some(*retry_after_secs);
                return p.into_response();
            }
            _ => {
                tracing::error!(error = %e, "request failed");
                return Problem::typed(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", None)
                    .into_response();
            }
        };
        Problem::typed(status, slug, title, detail).into_response()
    }
}

/// `GET /openapi.json`: the API described as OpenAPI 3.1.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// The OpenAPI document (kept beside the code; a test checks every path in it is routed).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The largest body a path takes: [`MAX_BODY`], but a signed confirmation
/// document may be up to `confirmation::MAX_UPLOAD`.
pub(crate) fn body_limit(path: &str) -> usize {
    if path.starts_with("/api/v1/orders/") && path.ends_with("/confirmation") {
        qcert_ca_core::confirmation::MAX_UPLOAD
    } else if crate::holder_web::certs::is_confirmation_form(path) {
        crate::holder_web::certs::MAX_CONFIRMATION_FORM
    } else {
        MAX_BODY
    }
}

/// A body over [`body_limit`], announced or sent.
pub(crate) fn body_too_large(limit: usize) -> Problem {
    Problem::typed(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body-too-large",
        "Request body too large",
        Some(format!("at most {limit} bytes")),
    )
}

/// The router's outermost layer: a body announced (Content-Length) over
/// [`body_limit`] is refused before a byte of it is read (and, for
/// `Expect: 100-continue`, before the client is told to send it).
async fn refuse_announced_oversize(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = body_limit(request.uri().path());
    if announced.is_some_and(|n| n > limit as u64) {
        if crate::holder_web::certs::is_confirmation_form(request.uri().path()) {
            // The holder's browser form: a page, not a problem document.
            return crate::holder_web::certs::too_large_page(request.headers(), request.uri());
        }
        return body_too_large(limit).into_response();
    }
    next.run(request).await
}

/// Paths no route names: the PKI disclosure statements at the paths the
/// policy writes into certificates (QcPDS), else 404.
async fn fallback(
    State(state): State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let Some(doc) = state.ca.policy().pds_documents.iter().find(|d| d.path == uri.path()) else {
        if crate::pages::wants_html(&headers) {
            let c = crate::web::Chrome::from_request(&headers, &uri);
            return crate::web::ErrorPage::new(StatusCode::NOT_FOUND, &c, "web-not-found-title", c.t("web-not-found"))
                .into_response();
        }
        return not_found().await.into_response();
    };
    if method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        return method_not_allowed().await.into_response();
    }
    match tokio::fs::read(&doc.file).await {
        Ok(body) => {
            let headers = [
                (header::CONTENT_TYPE, doc.content_type().to_owned()),
                (header::CONTENT_LANGUAGE, doc.language.clone()),
                (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
            ];
            (headers, body).into_response()
        }
        Err(e) => {
            tracing::error!(path = %doc.path, file = %doc.file.display(), error = %e, "PKI disclosure statement unreadable");
            not_found().await.into_response()
        }
    }
}

pub(crate) async fn not_found() -> Problem {
    Problem::typed(StatusCode::NOT_FOUND, "not-found", "Not found", None)
}

async fn method_not_allowed() -> Problem {
    Problem::typed(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", None)
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    hsm: &'static str,
}

/// Liveness of the parts: the database answers and the HSM signs.
async fn health(State(state): State<AppState>) -> Response {
    // Probing signs with the HSM: outsiders polling /health must not turn
    // into HSM load, so a probe is reused for a few seconds.
    let cached = {
        let last = state.metrics.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        last.filter(|(at, _)| at.elapsed() < HEALTH_TTL).map(|(_, parts)| parts)
    };
    let (database, hsm) = match cached {
        Some(parts) => parts,
        None => {
            let database = match state.ca.registry().ping().await {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::error!(error = %e, "health: database");
                    "unavailable"
                }
            };
            let hsm = match state.ca.hsm_check().await {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::error!(error = %e, "health: HSM");
                    "unavailable"
                }
            };
            *state.metrics.health.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((std::time::Instant::now(), (database, hsm)));
            (database, hsm)
        }
    };
    let ok = database == "ok" && hsm == "ok";
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Health { status: if ok { "ok" } else { "degraded" }, database, hsm })).into_response()
}

/// `GET /certs/{root,issuing,ocsp}.crt` (DER, as AIA caIssuers expects), and
/// the public directory's `GET /certs/{serial}` (`.crt`/`.cer`/none: DER;
/// `.pem` or `Accept: application/x-pem-file`: PEM).
async fn ca_certificate(State(state): State<AppState>, ApiPath(name): ApiPath<String>, request: HeaderMap) -> Response {
    let h = state.ca.hierarchy();
    let generation =
        name.strip_prefix("issuing-").and_then(|r| r.strip_suffix(".crt")).and_then(|g| g.parse::<u32>().ok());
    let der = match name.as_str() {
        "root.crt" => h.root,
        // The first issuing CA's (its certificates' AIA); issuing-<g>.crt after rollovers.
        "issuing.crt" => state.ca.issuing_certificate(1).unwrap_or(h.issuing),
        "ocsp.crt" => h.ocsp,
        _ if generation.is_some() => match generation.and_then(|g| state.ca.issuing_certificate(g)) {
            Some(der) => der,
            None => return not_found().await.into_response(),
        },
        _ => {
            let (serial, pem_suffix) = match name.rsplit_once('.') {
                Some((s, "pem")) => (s, true),
                Some((s, "crt" | "cer" | "der")) => (s, false),
                Some(_) => return not_found().await.into_response(),
                None => (name.as_str(), false),
            };
            let wants_pem = pem_suffix
                || request
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|a| a.contains("application/x-pem-file"));
            let der = match state.ca.published_certificate(serial).await {
                Ok(Some(der)) => der,
                Ok(None) => return not_found().await.into_response(),
                Err(e) if e.is_client_error() => return not_found().await.into_response(),
                Err(e) => return ApiError(e).into_response(),
            };
            if wants_pem {
                return ([(header::CONTENT_TYPE, "application/x-pem-file")], qcert_ca_core::pem("CERTIFICATE", &der))
                    .into_response();
            }
            der
        }
    };
    ([(header::CONTENT_TYPE, "application/pkix-cert"), (header::CACHE_CONTROL, "public, max-age=86400")], der)
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct DirectoryParams {
    email: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Serialize)]
struct DirectoryItem {
    serial: String,
    subject: String,
    not_before: String,
    not_after: String,
    status: &'static str,
    certificate_pem: String,
    /// The issuing CA, then the root.
    chain_pem: Vec<String>,
}

/// `GET /api/v1/certificates?email=…` or `?name=…`: published certificates with their chain.
async fn directory(State(state): State<AppState>, ApiQuery(q): ApiQuery<DirectoryParams>) -> Response {
    use qcert_ca_core::store::DirectoryQuery;
    let query = match (q.email, q.name) {
        (Some(e), None) if !e.trim().is_empty() && e.len() <= 254 => DirectoryQuery::Email(e.trim().to_owned()),
        (None, Some(n)) if !n.trim().is_empty() && n.len() <= 128 => DirectoryQuery::Name(n.trim().to_owned()),
        _ => {
            let detail = "give exactly one of email or name (non-empty)".to_owned();
            return Problem::typed(StatusCode::BAD_REQUEST, "bad-query", "Bad directory query", Some(detail))
                .into_response();
        }
    };
    let found = match state.ca.directory(&query).await {
        Ok(f) => f,
        Err(e) => return ApiError(e).into_response(),
    };
    let h = state.ca.hierarchy();
    let chain = vec![qcert_ca_core::pem("CERTIFICATE", &h.issuing), qcert_ca_core::pem("CERTIFICATE", &h.root)];
    let rfc3339 = qcert_ca_core::clock::rfc3339;
    let items: Vec<DirectoryItem> = found
        .into_iter()
        .map(|e| DirectoryItem {
            certificate_pem: qcert_ca_core::pem("CERTIFICATE", &e.der),
            serial: e.serial,
            subject: e.subject,
            not_before: rfc3339(e.not_before),
            not_after: rfc3339(e.not_after),
            status: e.status,
            chain_pem: chain.clone(),
        })
        .collect();
    Json(items).into_response()
}

fn http_date(unix: i64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0)))
}

/// Cache headers of signed status data (CRLs, OCSP answers), RFC 5019/9919 style.
pub fn status_cache_headers(
    headers: &mut HeaderMap,
    this_update: i64,
    next_update: i64,
    fresh_until: i64,
    now: i64,
    etag: &str,
) {
    let max_age = (fresh_until.min(next_update) - now).max(0);
    let pairs = [
        (header::LAST_MODIFIED, http_date(this_update)),
        (header::EXPIRES, http_date(next_update)),
        (header::ETAG, etag.to_owned()),
        (header::CACHE_CONTROL, format!("max-age={max_age}, public, no-transform, must-revalidate")),
    ];
    for (name, value) in pairs {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// `GET /crl/issuing.crl` and `/crl/root.crl`: the newest CRL, DER.
async fn crl(State(state): State<AppState>, ApiPath(name): ApiPath<String>, request: HeaderMap) -> Response {
    // issuing.crl is the first issuing CA's, issuing-<g>.crl generation g's (after rollovers).
    let generation = match name.as_str() {
        "issuing.crl" => Some(1),
        other => {
            other.strip_prefix("issuing-").and_then(|r| r.strip_suffix(".crl")).and_then(|g| g.parse::<u32>().ok())
        }
    };
    let scope = match (name.as_str(), generation.and_then(|g| state.ca.generation_scope(g))) {
        ("root.crl", _) => CrlScope::Root,
        (_, Some(scope)) => scope,
        _ => return not_found().await.into_response(),
    };
    let record = match state.ca.current_crl(scope).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Problem::typed(StatusCode::SERVICE_UNAVAILABLE, "not-published", "CRL not published yet", None)
                .into_response();
        }
        Err(e) => return ApiError(e).into_response(),
    };
    let etag = format!("\"{}-{}\"", name.trim_end_matches(".crl"), record.crl_number);
    let now = state.ca.clock().now().unix_timestamp();
    let refresh = state.ca.policy().crl.refresh().whole_seconds();
    let mut headers = HeaderMap::new();
    status_cache_headers(
        &mut headers,
        record.this_update,
        record.next_update,
        record.this_update + refresh,
        now,
        &etag,
    );
    if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pkix-crl"));
    (headers, record.der).into_response()
}

/// `POST /ocsp` with an `application/ocsp-request` body (a body sent
/// over the limit without Content-Length is a 413 problem, like one announced).
async fn ocsp_post(State(state): State<AppState>, body: Result<ApiBytes, Problem>) -> Response {
    match body {
        Ok(ApiBytes(body)) => ocsp_answer(&state, &body).await,
        Err(p) if p.status == StatusCode::PAYLOAD_TOO_LARGE.as_u16() => p.into_response(),
        Err(_) => ocsp_answer(&state, &[]).await,
    }
}

/// Anything else under `/ocsp`: an OCSP `malformedRequest`, never plain text.
async fn ocsp_malformed(State(state): State<AppState>) -> Response {
    ocsp_answer(&state, &[]).await
}

/// `GET /ocsp/{base64 of the DER request}` (RFC 6960 A.1). The path is
/// percent-decoded here, as bytes: anything that does not decode is a
/// `malformedRequest` (not a path rejection).
async fn ocsp_get(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    use base64::Engine;
    let raw = uri.path().strip_prefix("/ocsp/").unwrap_or_default();
    let cleaned: Vec<u8> = percent_decode(raw.as_bytes()).into_iter().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&cleaned)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(&cleaned))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&cleaned));
    match decoded {
        Ok(der) => ocsp_answer(&state, &der).await,
        // Not base64: answered like any other malformed request.
        Err(_) => ocsp_answer(&state, &[]).await,
    }
}

/// `%XX` to the byte it stands for; a `%` not followed by two hex digits stays.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) =
                (input.get(i + 1).copied().and_then(hex), input.get(i + 2).copied().and_then(hex))
            {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

async fn ocsp_answer(state: &AppState, request: &[u8]) -> Response {
    use qcert_ca_core::ocsp::Outcome;
    let answer = state.ca.ocsp(request).await;
    state.metrics.count_ocsp(&answer.outcome);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/ocsp-response"));
    match answer.outcome {
        Outcome::Signed { this_update, next_update, fresh_until, nonce: false, .. } => {
            use sha2::Digest;
            let tag = hex::encode(sha2::Sha256::digest(answer.der.as_slice()).get(..16).unwrap_or_default());
            let now = state.ca.clock().now().unix_timestamp();
            status_cache_headers(&mut headers, this_update, next_update, fresh_until, now, &format!("\"{tag}\""));
        }
        // Signed for this request (nonce) or an error: never to be cached.
        _ => {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    (headers, answer.der.as_ref().clone()).into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let mut out = String::with_capacity(2048);
    let _ = writeln!(
        out,
        "# HELP qcert_ocsp_responses_total OCSP answers by result.\n# TYPE qcert_ocsp_responses_total counter"
    );
    for (name, c) in OCSP_RESULTS.iter().zip(&m.ocsp) {
        let _ = writeln!(out, "qcert_ocsp_responses_total{{result=\"{name}\"}} {}", c.load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP qcert_ocsp_cache_hits_total OCSP answers served pre-signed.\n# TYPE qcert_ocsp_cache_hits_total counter");
    let _ = writeln!(out, "qcert_ocsp_cache_hits_total {}", m.ocsp_cache_hits.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP qcert_ocsp_signed_total OCSP answers signed on request.\n# TYPE qcert_ocsp_signed_total counter"
    );
    let _ = writeln!(out, "qcert_ocsp_signed_total {}", m.ocsp_signed.load(Ordering::Relaxed));
    let _ = writeln!(
        out,
        "# HELP qcert_ocsp_cached_answers Pre-signed OCSP answers held.\n# TYPE qcert_ocsp_cached_answers gauge"
    );
    let _ = writeln!(out, "qcert_ocsp_cached_answers {}", state.ca.responder().cached_answers());

    let now = state.ca.clock().now().unix_timestamp();
    let _ = writeln!(out, "# HELP qcert_crl_age_seconds Age of the newest CRL (0 while it is dated in the future).\n# TYPE qcert_crl_age_seconds gauge");
    let mut sizes = String::new();
    let mut entries = String::new();
    for (scope, name) in [(CrlScope::Issuing, "issuing"), (CrlScope::Root, "root")] {
        match state.ca.current_crl(scope).await {
            Ok(Some(c)) => {
                let _ = writeln!(out, "qcert_crl_age_seconds{{crl=\"{name}\"}} {}", (now - c.this_update).max(0));
                let _ = writeln!(sizes, "qcert_crl_size_bytes{{crl=\"{name}\"}} {}", c.der.len());
                let _ = writeln!(entries, "qcert_crl_entries{{crl=\"{name}\"}} {}", c.entries);
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "metrics: CRL"),
        }
    }
    let _ =
        write!(out, "# HELP qcert_crl_size_bytes Size of the newest CRL.\n# TYPE qcert_crl_size_bytes gauge\n{sizes}");
    let _ =
        write!(out, "# HELP qcert_crl_entries Entries on the newest CRL.\n# TYPE qcert_crl_entries gauge\n{entries}");
    // The ARL from the offline root's `arl` ceremony: alert well before it expires.
    if let Ok(Some(arl)) = state.ca.current_crl(CrlScope::Root).await {
        let left = arl.next_update - now;
        let _ = writeln!(
            out,
            "# HELP qcert_arl_seconds_until_next_update Seconds until the root's ARL passes its nextUpdate.\n\
             # TYPE qcert_arl_seconds_until_next_update gauge\nqcert_arl_seconds_until_next_update {left}"
        );
        let _ = writeln!(
            out,
            "# HELP qcert_arl_expiring 1 when the ARL expires within {} days: run `qcert ceremony arl`.\n\
             # TYPE qcert_arl_expiring gauge\nqcert_arl_expiring {}",
            qcert_ca_core::ceremony::ARL_WARNING_DAYS,
            u8::from(left < qcert_ca_core::ceremony::ARL_WARNING_DAYS * 86_400)
        );
    }

    match state.orders.backlog().await {
        Ok((waiting, overdue)) => {
            let _ = writeln!(
                out,
                "# HELP qcert_orders_awaiting_identity Paid orders waiting for identity validation.\n# TYPE qcert_orders_awaiting_identity gauge\nqcert_orders_awaiting_identity {waiting}"
            );
            let _ = writeln!(
                out,
                "# HELP qcert_orders_identity_overdue Of those, past the 24-hour promise.\n# TYPE qcert_orders_identity_overdue gauge\nqcert_orders_identity_overdue {overdue}"
            );
        }
        Err(e) => tracing::error!(error = %e, "metrics: orders"),
    }
    let _ = writeln!(
        out,
        "# HELP qcert_hotline_password_checks_total Argon2id checks made by hotline attempts (dummy ones included).\n# TYPE qcert_hotline_password_checks_total counter\nqcert_hotline_password_checks_total {}",
        state.desk.password_checks()
    );
    match state.orders.refunds_due_count().await {
        Ok(n) => {
            let _ = writeln!(
                out,
                "# HELP qcert_payments_refund_due Payments to refund: a second one for an order or renewal, or a cancelled renewal's.\n# TYPE qcert_payments_refund_due gauge\nqcert_payments_refund_due {n}"
            );
        }
        Err(e) => tracing::error!(error = %e, "metrics: refunds"),
    }
    // The time-stamping unit, where ca.toml configures one: alert before its certificate ends.
    if state.ca.policy().tsa.is_some() {
        let tsa = state.tsa().await;
        let _ = writeln!(
            out,
            "# HELP qcert_tsa_available 1 when POST /tsa can sign (the TSU key and a valid certificate are there).\n\
             # TYPE qcert_tsa_available gauge\nqcert_tsa_available {}",
            u8::from(tsa.as_ref().is_ok_and(|t| t.not_after() > now))
        );
        if let Ok(t) = tsa {
            let _ = writeln!(
                out,
                "# HELP qcert_tsa_certificate_seconds_until_expiry Seconds until the TSU certificate's notAfter: run `qcert ceremony tsa` with a new key label before.\n\
                 # TYPE qcert_tsa_certificate_seconds_until_expiry gauge\nqcert_tsa_certificate_seconds_until_expiry {}",
                t.not_after() - now
            );
        }
        match state.ca.registry().time_stamp_count().await {
            Ok(n) => {
                let _ = writeln!(
                    out,
                    "# HELP qcert_tsa_tokens_stored Time-stamp tokens issued and recorded.\n# TYPE qcert_tsa_tokens_stored gauge\nqcert_tsa_tokens_stored {n}"
                );
            }
            Err(e) => tracing::error!(error = %e, "metrics: time stamps"),
        }
    }
    let h = qcert_ca_core::signer::SIGN_LATENCY.snapshot();
    let _ =
        writeln!(out, "# HELP qcert_hsm_sign_seconds HSM signing latency.\n# TYPE qcert_hsm_sign_seconds histogram");
    for (le, n) in &h.cumulative {
        let _ = writeln!(out, "qcert_hsm_sign_seconds_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "qcert_hsm_sign_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "qcert_hsm_sign_seconds_sum {}", h.sum_seconds);
    let _ = writeln!(out, "qcert_hsm_sign_seconds_count {}", h.count);
    let _ = writeln!(
        out,
        "# HELP qcert_hsm_sign_errors_total Failed HSM signatures.\n# TYPE qcert_hsm_sign_errors_total counter"
    );
    let _ = writeln!(out, "qcert_hsm_sign_errors_total {}", h.errors);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
