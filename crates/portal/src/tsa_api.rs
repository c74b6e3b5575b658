//! `POST /tsa`: the time-stamping authority over HTTP (RFC 3161 §3.4).
//!
//! A request of the right media type always gets a TimeStampResp (200,
//! `application/timestamp-reply`): granted, or a rejection whose failInfo
//! and statusString say what was wrong, as RFC 3161 expects of a TSA (junk
//! is `badDataFormat`). What is not a time-stamp request at all gets a
//! problem: another media type 415, a body over the limit 413, and a TSA
//! without its TSU certificate 503 (which says to run `qcert ceremony tsa`).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::extract::ApiBytes;
use crate::http::{AppState, Problem};

/// The request media type (RFC 3161 §3.4).
pub const QUERY_TYPE: &str = "application/timestamp-query";
/// The answer media type.
pub const REPLY_TYPE: &str = "application/timestamp-reply";

pub fn routes() -> Router<AppState> {
    Router::new().route("/tsa", post(tsa_post))
}

fn is_query(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    ct.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case(QUERY_TYPE)
}

async fn tsa_post(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: HeaderMap,
    body: Result<ApiBytes, Problem>,
) -> Response {
    if !is_query(&headers) {
        return Problem::typed(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Expected application/timestamp-query",
            Some("send a DER TimeStampReq as Content-Type: application/timestamp-query".into()),
        )
        .into_response();
    }
    let body = match body {
        Ok(ApiBytes(b)) => b,
        Err(p) => return p.into_response(),
    };
    let tsa = match state.tsa().await {
        Ok(tsa) => tsa,
        Err(e) => {
            tracing::warn!(error = %e, "POST /tsa refused: the time-stamping unit is not available");
            return Problem::typed(
                StatusCode::SERVICE_UNAVAILABLE,
                "tsa-unavailable",
                "Time-stamping is not available",
                Some(match e {
                    qcert_ca_core::CaError::NotFound(_) | qcert_ca_core::CaError::Conflict(_) => e.to_string(),
                    _ => "the time-stamping unit cannot be loaded".into(),
                }),
            )
            .into_response();
        }
    };
    let answer = tsa.respond(&body).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(REPLY_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (headers, answer.der).into_response()
}
