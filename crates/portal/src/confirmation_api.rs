//! The confirmation document over HTTP, under the order's link (the
//! capability that serves the certificate): the prefilled PDF, the signed
//! upload (countersigned at once) and `confirmare.pdf`.
//!
//! Who may do what: the order link protects the downloads (as it protects
//! the certificate); the upload is authenticated by its content, a
//! signature made with the key of the very certificate the document was
//! prefilled for, checked against that certificate in the registry (valid
//! now, not revoked). See `qcert_ca_core::confirmation`.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use serde::{Deserialize, Serialize};

use crate::extract::{ApiBytes, ApiPath, ApiQuery};
use crate::http::{ApiError, AppState, Problem};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/orders/{token}/confirmation",
            get(prefilled)
                .post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(qcert_ca_core::confirmation::MAX_UPLOAD)),
        )
        .route("/api/v1/orders/{token}/confirmation/confirmare.pdf", get(countersigned))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SerialQuery {
    /// One certificate of the order's line; default the newest.
    serial: Option<String>,
}

fn pdf(body: Vec<u8>, file_name: &str) -> Response {
    let mut resp =
        ([(header::CONTENT_TYPE, "application/pdf"), (header::CACHE_CONTROL, "no-store")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /api/v1/orders/{token}/confirmation[?serial=…]`: the prefilled
/// document, `given_surname.pdf`.
async fn prefilled(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<SerialQuery>,
) -> Result<Response, ApiError> {
    let doc = state.confirmations.prefilled(&token, q.serial.as_deref()).await?;
    Ok(pdf(doc.pdf, &doc.file_name))
}

#[derive(Debug, Serialize)]
struct Countersigned {
    serial: String,
    /// The holder's signature format (`/SubFilter`).
    holder_signature: String,
    countersigned_at: String,
    /// Where `confirmare.pdf` is (the same link; any time, as often as needed).
    confirmare_url: String,
}

/// `POST /api/v1/orders/{token}/confirmation[?serial=…]` (`application/pdf`):
/// the signed document; checked, countersigned, kept.
async fn upload(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<SerialQuery>,
    headers: HeaderMap,
    body: Result<ApiBytes, Problem>,
) -> Result<Response, Response> {
    let is_pdf = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/pdf"));
    if !is_pdf {
        return Err(Problem::typed(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Expected application/pdf",
            Some("send the signed document as Content-Type: application/pdf".into()),
        )
        .into_response());
    }
    let ApiBytes(body) = body.map_err(IntoResponse::into_response)?;
    let done = state
        .confirmations
        .confirm(&token, q.serial.as_deref(), &body)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    let order = state.orders.by_link(&token).await.map_err(|e| ApiError(e).into_response())?;
    let url = state.orders.order_url(&order.id).map_err(|e| ApiError(e).into_response())?;
    let confirmare_url = format!("{url}/confirmation/confirmare.pdf?serial={}", done.serial);
    let view = Countersigned {
        serial: done.serial,
        holder_signature: done.holder_signature,
        countersigned_at: rfc3339(done.at),
        confirmare_url: confirmare_url.clone(),
    };
    let mut resp = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(v) = HeaderValue::from_str(&confirmare_url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// `GET /api/v1/orders/{token}/confirmation/confirmare.pdf[?serial=…]`:
/// the latest countersigned document.
async fn countersigned(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(q): ApiQuery<SerialQuery>,
) -> Result<Response, ApiError> {
    let body = state.confirmations.countersigned(&token, q.serial.as_deref()).await?;
    Ok(pdf(body, "confirmare.pdf"))
}
