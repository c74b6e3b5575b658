//! The audit log viewer for admins (`/desk/admin/audit`): the chain's
//! check result on top (`audit::verify`, as `GET /api/v1/admin/audit`),
//! then the entries newest first, filtered by subject, actor and time
//! (UTC), paged by sequence number — the same search as
//! `GET /api/v1/audit/entries` (`Registry::audit_search`). Entries never
//! hold secrets; they are shown as stored, escaped.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use qcert_ca_core::operators::Role;
use qcert_ca_core::store::audit::AuditQuery;
use qcert_ca_core::{audit, CaError};
use serde::Deserialize;

use super::common::when;
use super::session::DeskSession;
use crate::http::AppState;
use crate::web::{self, Chrome, ErrorPage};

/// Entries per page.
const PAGE: i64 = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/desk/admin/audit", get(page))
}

#[derive(Debug, Default, Deserialize)]
struct Filter {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    actor: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), inclusive.
    #[serde(default)]
    since: String,
    /// Exclusive.
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

#[derive(Debug)]
struct Line {
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    outcome: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "desk/audit.html")]
struct AuditPage {
    c: Chrome,
    f: Filter,
    intact: bool,
    entries: i64,
    head: String,
    /// Where the chain breaks, in words.
    broken: String,
    problem: String,
    lines: Vec<Line>,
    next: Option<String>,
}

/// A filter text: 1 to 200 characters without control characters, or none.
fn text<'a>(field: &'static str, v: &'a str) -> Result<Option<&'a str>, CaError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > 200 || v.chars().any(char::is_control) {
        return Err(CaError::field(field, "at most 200 characters, no control characters"));
    }
    Ok(Some(v))
}

/// A `datetime-local` value (`2026-12-03T14:05`, seconds optional) read as UTC.
fn minute(field: &'static str, v: &str) -> Result<Option<i64>, CaError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let long = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let short = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(v, &long)
        .or_else(|_| time::PrimitiveDateTime::parse(v, &short))
        .map(|t| Some(t.assume_utc().unix_timestamp()))
        .map_err(|_| CaError::field(field, "a date and time like 2026-12-03T14:05 (UTC)"))
}

async fn page(State(state): State<AppState>, session: DeskSession, uri: Uri, RawQuery(q): RawQuery) -> Response {
    session
        .serve(Role::Admin, &uri, async |c| {
            let f: Filter = match web::parse_form(q.unwrap_or_default().as_bytes()) {
                Ok(f) => f,
                Err(field) => {
                    let detail =
                        field.map_or_else(|| c.t("web-form-unreadable"), |f| c.ts("web-form-field", "field", &f));
                    return Ok(ErrorPage::new(StatusCode::BAD_REQUEST, &c, "web-error-title", detail).into_response());
                }
            };
            render(&state, c, f).await
        })
        .await
}

async fn render(state: &AppState, c: Chrome, f: Filter) -> Result<Response, CaError> {
    if f.before.is_some_and(|b| b < 1) {
        return Err(CaError::field("before", "a positive sequence number"));
    }
    let q = AuditQuery {
        subject: text("subject", &f.subject)?,
        actor: text("actor", &f.actor)?,
        action: None,
        since: minute("since", &f.since)?,
        until: minute("until", &f.until)?,
        before: f.before,
        limit: PAGE,
    };
    let rows = state.ca.registry().audit_search(&q).await.map_err(CaError::from)?;
    let next =
        (i64::try_from(rows.len()).unwrap_or(0) == PAGE).then(|| rows.last().map(|r| r.seq)).flatten().map(|before| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in [("subject", &f.subject), ("actor", &f.actor), ("since", &f.since), ("until", &f.until)] {
                if !v.trim().is_empty() {
                    s.append_pair(k, v.trim());
                }
            }
            s.append_pair("before", &before.to_string());
            format!("/desk/admin/audit?{}", s.finish())
        });
    let lines = rows
        .into_iter()
        .map(|r| Line {
            seq: r.seq,
            at: when(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            outcome: r.outcome,
            detail: r.detail,
        })
        .collect();
    let (intact, entries, head, broken, problem) = match audit::verify(state.ca.registry()).await? {
        Ok(v) => (true, v.entries, v.head, String::new(), String::new()),
        Err(b) => {
            let at = c.ta("desk-audit-broken-at", &[("seq", b.seq.into()), ("n", (b.seq - 1).into())]);
            (false, b.seq - 1, String::new(), at, b.reason)
        }
    };
    let page = AuditPage { c, f, intact, entries, head, broken, problem, lines, next };
    Ok(web::render(StatusCode::OK, &page))
}
