//! The HTTP API. HTTP types live here and nowhere else; every error leaves
//! as `application/problem+json` (RFC 9457), and a 500 never shows its cause.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use qcert_ca_core::{Ca, CaError};
use serde::Serialize;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    pub ca: Ca,
}

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/certs/{name}", get(ca_certificate))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, title: &str, detail: Option<String>) -> Problem {
        Problem { kind: "about:blank".into(), title: title.into(), status: status.as_u16(), detail }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, Json(&self)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
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
        if e.is_client_error() {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Request refused", Some(e.to_string())).into_response()
        } else {
            tracing::error!(error = %e, "request failed");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None).into_response()
        }
    }
}

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "Not found", None)
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", None)
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    hsm: &'static str,
}

/// Liveness of the parts: the database answers and the HSM signs.
async fn health(State(state): State<AppState>) -> Response {
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
    let ok = database == "ok" && hsm == "ok";
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Health { status: if ok { "ok" } else { "degraded" }, database, hsm })).into_response()
}

/// `GET /certs/{root,issuing,ocsp}.crt`: DER, as AIA caIssuers expects.
async fn ca_certificate(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    let h = state.ca.hierarchy();
    let der = match name.as_str() {
        "root.crt" => h.root,
        "issuing.crt" => h.issuing,
        "ocsp.crt" => h.ocsp,
        _ => return not_found().await.into_response(),
    };
    ([(header::CONTENT_TYPE, "application/pkix-cert"), (header::CACHE_CONTROL, "public, max-age=86400")], der)
        .into_response()
}
