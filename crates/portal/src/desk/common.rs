//! What the desk pages share: a core refusal as a readable page, times as
//! people read them, the revocation reasons offered on forms.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use qcert_ca_core::{CaError, Reason};

use crate::http::ApiError;
use crate::web::{Chrome, ErrorPage};

/// A core refusal as an error page with the JSON API's status (the same
/// mapping, `ApiError`): the message names what was wrong, never a value
/// typed in; an internal error says only that (and is logged there).
pub(crate) fn failure(c: &Chrome, e: CaError) -> Response {
    let detail = match &e {
        CaError::InvalidField { field, .. } => c.ts("web-form-field", "field", field),
        other if other.is_client_error() => other.to_string(),
        _ => c.t("desk-internal-error"),
    };
    let status = ApiError(e).into_response().status();
    let status = if status.is_server_error() { StatusCode::INTERNAL_SERVER_ERROR } else { status };
    ErrorPage::new(status, c, "web-error-title", detail).into_response()
}

/// A short message page: a title, a sentence, an optional link onwards.
#[derive(askama::Template)]
#[template(path = "desk/message.html")]
pub(crate) struct MessagePage {
    pub(crate) c: Chrome,
    pub(crate) title: String,
    pub(crate) text: String,
    pub(crate) link: Option<(String, String)>,
}

/// A Unix time as `2026-12-03 14:05 UTC`.
pub(crate) fn when(unix: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix).ok().and_then(|t| t.format(&fmt).ok()).unwrap_or_default()
}

/// A duration in words: hours and minutes (`web-hours`, `web-minutes`).
pub(crate) fn span(c: &Chrome, seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let (h, m) = (i64::try_from(s / 3600).unwrap_or(i64::MAX), i64::try_from((s % 3600) / 60).unwrap_or(0));
    if h > 0 {
        format!("{} {}", c.tn("web-hours", h), c.tn("web-minutes", m))
    } else {
        c.tn("web-minutes", m)
    }
}

/// Reasons an operator may give, with their message ids; the first is the default.
pub(crate) const REASONS: [(Reason, &str); 5] = [
    (Reason::KeyCompromise, "desk-reason-key-compromise"),
    (Reason::AffiliationChanged, "desk-reason-affiliation-changed"),
    (Reason::Superseded, "desk-reason-superseded"),
    (Reason::CessationOfOperation, "desk-reason-cessation"),
    (Reason::Unspecified, "desk-reason-unspecified"),
];

/// One `<option>` of a reason list.
#[derive(Debug, Clone)]
pub(crate) struct ReasonOption {
    pub(crate) value: &'static str,
    pub(crate) label: String,
    pub(crate) selected: bool,
}

/// The reason list with `chosen` (an RFC 5280 name) selected.
pub(crate) fn reason_options(c: &Chrome, chosen: Option<&str>) -> Vec<ReasonOption> {
    REASONS
        .iter()
        .enumerate()
        .map(|(i, (r, id))| ReasonOption {
            value: r.name(),
            label: c.t(id),
            selected: chosen.map_or(i == 0, |n| n == r.name()),
        })
        .collect()
}

/// The reason's label in the page language.
pub(crate) fn reason_label(c: &Chrome, code: u8) -> String {
    REASONS
        .iter()
        .find(|(r, _)| Some(*r) == Reason::from_code(code))
        .map_or_else(|| Reason::from_code(code).map_or("unspecified", Reason::name).to_owned(), |(_, id)| c.t(id))
}
