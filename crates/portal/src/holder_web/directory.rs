//! The public directory page (DOMAIN.md "Public directory"): look up
//! published certificates by name or email, download DER or PEM with the
//! issuing CA. It asks exactly what the JSON directory
//! (`GET /api/v1/certificates`) asks of the registry: an exact name
//! (given name and surname, or surname) or an exact email, of holders who
//! agreed to publication, so it enumerates nothing the JSON does not.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use qcert_ca_core::store::DirectoryQuery;
use serde::Deserialize;

use super::certs::{certificate_file, split_file};
use crate::http::AppState;
use crate::web::{render, Chrome, ErrorPage};

/// The longest name and email searched (as the JSON directory's).
const MAX_NAME: usize = 128;
const MAX_EMAIL: usize = 254;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/directory", get(search)).route("/directory/{file}", get(download))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    /// `name` or `email`.
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

struct Found {
    subject: String,
    serial: String,
    status: &'static str,
    status_text: String,
    not_before: String,
    not_after: String,
    der_href: String,
    pem_href: String,
    chain_href: String,
}

#[derive(Template)]
#[template(path = "holder/directory.html")]
struct DirectoryPage {
    c: Chrome,
    by_email: bool,
    q: String,
    /// A search was made (so "nothing found" can be said).
    searched: bool,
    problem: Option<String>,
    found: Vec<Found>,
    /// "3 certificates found".
    found_text: String,
    max_name: usize,
    max_email: usize,
}

/// `GET /directory[?by=name|email&q=…]`.
async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    let Ok(Query(query)) = query else {
        return ErrorPage::new(StatusCode::BAD_REQUEST, &c, "web-error-title", c.t("holder-certs-directory-bad-query"))
            .into_response();
    };
    let by_email = query.by.as_deref() == Some("email");
    let raw = query.q.unwrap_or_default();
    let q = raw.trim().to_owned();
    let mut page = DirectoryPage {
        c: c.clone(),
        by_email,
        q: String::new(),
        searched: false,
        problem: None,
        found: Vec::new(),
        found_text: String::new(),
        max_name: MAX_NAME,
        max_email: MAX_EMAIL,
    };
    if q.is_empty() {
        return render(StatusCode::OK, &page);
    }
    let max = if by_email { MAX_EMAIL } else { MAX_NAME };
    if q.chars().any(char::is_control) || q.chars().count() > max {
        // Not shown back: a refused value is never echoed (not even in
        // the language links, which keep a page's query).
        page.c = Chrome::new(c.lang, &Uri::from_static("/directory"));
        page.problem = Some(c.tn("holder-certs-directory-too-long", i64::try_from(max).unwrap_or(i64::MAX)));
        return render(StatusCode::BAD_REQUEST, &page);
    }
    let dq = if by_email { DirectoryQuery::Email(q.clone()) } else { DirectoryQuery::Name(q.clone()) };
    let entries = match state.ca.directory(&dq).await {
        Ok(e) => e,
        Err(e) => return super::certs::error_page(&c, e).into_response(),
    };
    page.q = q;
    page.searched = true;
    page.found = entries
        .into_iter()
        .map(|e| Found {
            status_text: c.t(match e.status {
                "valid" => "holder-certs-directory-valid",
                "revoked" => "holder-certs-directory-revoked",
                _ => "holder-certs-directory-expired",
            }),
            status: e.status,
            subject: e.subject,
            not_before: c.lang.date(e.not_before),
            not_after: c.lang.date(e.not_after),
            der_href: format!("/directory/{}.cer", e.serial),
            pem_href: format!("/directory/{}.pem", e.serial),
            chain_href: format!("/directory/{}-chain.pem", e.serial),
            serial: e.serial,
        })
        .collect();
    page.found_text = c.tn("holder-certs-directory-found", i64::try_from(page.found.len()).unwrap_or(i64::MAX));
    render(StatusCode::OK, &page)
}

/// `GET /directory/{serial}.cer|.der|.pem|-chain.pem`: a published
/// certificate (only those whose holder agreed).
async fn download(
    State(state): State<AppState>,
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    let not_found = || {
        ErrorPage::new(StatusCode::NOT_FOUND, &c, "web-not-found-title", c.t("holder-certs-directory-no-file"))
            .into_response()
    };
    let Ok(Path(file)) = file else { return not_found() };
    let Some((serial, format)) = split_file(&file) else { return not_found() };
    match state.ca.published_certificate(serial).await {
        Ok(Some(der)) => {
            let serial = qcert_ca_core::ca::normalize_serial(serial).unwrap_or_else(|_| serial.to_owned());
            certificate_file(&state, &serial, &der, format, "public, max-age=3600")
        }
        Ok(None) => not_found(),
        Err(e) if e.is_client_error() => not_found(),
        Err(e) => super::certs::error_page(&c, e).into_response(),
    }
}
