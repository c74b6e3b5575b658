//! The holder's GDPR rights at the RA desk: access and portability
//! (Art. 15, 20) as one JSON document, and erasure (Art. 17) with
//! restriction (Art. 18) of what a duty keeps. An RA officer who checked
//! the holder's identity sends the ID document number in the body (never
//! in the URL, which proxies and logs keep). See `qcert_ca_core::retention`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use qcert_ca_core::desk::DocumentNumber;
use serde::Deserialize;

use crate::api::{Acting, ApiJson, RaOfficer};
use crate::http::{ApiError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/ra/holders/export", post(export)).route("/api/v1/ra/holders/erasure", post(erasure))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderRequest {
    document_number: String,
}

/// `POST /api/v1/ra/holders/export` (RA officer): everything about the holder.
async fn export(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<HolderRequest>,
) -> Result<Response, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let body = state.orders.export_holder(&op, &document).await?;
    let name = "attachment; filename=\"qcert-holder-export.json\"";
    Ok(([(header::CACHE_CONTROL, "no-store"), (header::CONTENT_DISPOSITION, name)], Json(body)).into_response())
}

/// `POST /api/v1/ra/holders/erasure` (RA officer): erase what no duty
/// keeps, restrict the rest, name the exceptions.
async fn erasure(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<HolderRequest>,
) -> Result<Response, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let body = state.orders.erase_holder(&op, &document).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}
