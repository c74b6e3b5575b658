//! Reading the audit log (admin, RA officer): filtered by subject, actor,
//! action and time, newest first, paged by sequence number. Entries never
//! hold secrets (see `qcert_ca_core::audit`); they are shown as stored.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::operators::Role;
use qcert_ca_core::store::audit::AuditQuery;
use qcert_ca_core::CaError;
use serde::{Deserialize, Serialize};

use crate::api::Authenticated;
use crate::http::{ApiError, AppState};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit/entries", get(entries))
}

/// Largest page.
const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    subject: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    /// RFC 3339, inclusive.
    since: Option<String>,
    /// RFC 3339, exclusive.
    until: Option<String>,
    /// The `next_before` of the previous page.
    before: Option<i64>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Entry {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    outcome: String,
    detail: String,
    hash: String,
}

#[derive(Debug, Serialize)]
struct Page {
    entries: Vec<Entry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

fn text<'a>(field: &'static str, v: &'a Option<String>) -> Result<Option<&'a str>, CaError> {
    match v.as_deref() {
        Some(s) if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) => {
            Err(CaError::field(field, "1 to 200 characters, no control characters"))
        }
        other => Ok(other),
    }
}

fn time_of(field: &'static str, v: &Option<String>) -> Result<Option<i64>, CaError> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| CaError::field(field, "an RFC 3339 time, e.g. 2026-12-02T13:00:00Z"))
        })
        .transpose()
}

/// `GET /api/v1/audit/entries?subject=&actor=&action=&since=&until=&before=&limit=`.
async fn entries(
    State(state): State<AppState>,
    Authenticated(op): Authenticated,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    if !matches!(op.role, Role::Admin | Role::RaOfficer) {
        return Err(CaError::Forbidden(format!(
            "reading the audit log needs the admin or ra-officer role; {} is {}",
            op.name, op.role
        ))
        .into());
    }
    let Query(p) = params.map_err(|_| {
        CaError::field("query", "only subject, actor, action, since, until (RFC 3339), before and limit (numbers)")
    })?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(CaError::field("limit", "1 to 500").into());
    }
    if p.before.is_some_and(|b| b < 1) {
        return Err(CaError::field("before", "a positive sequence number").into());
    }
    let q = AuditQuery {
        subject: text("subject", &p.subject)?,
        actor: text("actor", &p.actor)?,
        action: text("action", &p.action)?,
        since: time_of("since", &p.since)?,
        until: time_of("until", &p.until)?,
        before: p.before,
        limit,
    };
    let rows = state.ca.registry().audit_search(&q).await.map_err(CaError::from)?;
    let next_before = (i64::try_from(rows.len()).unwrap_or(0) == limit).then(|| rows.last().map(|r| r.seq)).flatten();
    let entries = rows
        .into_iter()
        .map(|r| Entry {
            seq: r.seq,
            at: rfc3339(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            outcome: r.outcome,
            detail: r.detail,
            hash: r.hash,
        })
        .collect();
    Ok(Json(Page { entries, next_before }))
}
