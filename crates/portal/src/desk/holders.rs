//! Holder lookup for RA officers (`/desk/holders`), the holder present
//! with their ID document: the certificates registered to the document
//! number (status, whether the hotline path is locked), revocation in
//! person, and a new revocation password shown once on a printable page
//! (`Cache-Control: no-store`; it also lifts a hotline lock). The document
//! number travels only in form posts, never in a URL. Same core calls as
//! `/api/v1/ra/holder-certificates` and `/api/v1/ra/certificates/{serial}/…`
//! (`RevocationDesk::holder_certificates`, `in_person_revoke`,
//! `change_password`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::operators::{Operator, Role};
use qcert_ca_core::{CaError, Reason};
use serde::Deserialize;

use super::common::{reason_label, reason_options, when, ReasonOption};
use super::session::{DeskForm, DeskSession};
use crate::http::AppState;
use crate::web::{self, Chrome};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/desk/holders", get(page).post(lookup))
        .route("/desk/holders/certificates/{serial}/revocation", post(revoke))
        .route("/desk/holders/certificates/{serial}/revocation-password", post(new_password))
}

#[derive(Debug)]
struct CertLine {
    serial: String,
    subject: String,
    not_after: String,
    status: String,
    valid: bool,
    locked: bool,
}

#[derive(Template)]
#[template(path = "desk/holders.html")]
struct HoldersPage {
    c: Chrome,
    document: String,
    searched: bool,
    certs: Vec<CertLine>,
    found: i64,
    reasons: Vec<ReasonOption>,
    notice: Option<String>,
}

async fn page(session: DeskSession, uri: Uri) -> Response {
    if let Err(r) = session.require(Role::RaOfficer, &uri) {
        return r;
    }
    let c = session.chrome(&uri);
    let reasons = reason_options(&c, None);
    web::render(
        StatusCode::OK,
        &HoldersPage {
            c,
            document: String::new(),
            searched: false,
            certs: Vec::new(),
            found: 0,
            reasons,
            notice: None,
        },
    )
}

async fn holder_page(
    state: &AppState,
    op: &Operator,
    c: Chrome,
    typed: &str,
    notice: Option<String>,
) -> Result<Response, CaError> {
    let document = DocumentNumber::parse(typed)?;
    let found = state.desk.holder_certificates(op, &document).await?;
    let certs = found
        .into_iter()
        .map(|h| CertLine {
            status: c.t(&format!("desk-status-{}", h.status)),
            valid: h.status == "valid",
            serial: h.serial,
            subject: h.subject,
            not_after: when(h.not_after),
            locked: h.hotline_locked,
        })
        .collect::<Vec<_>>();
    let reasons = reason_options(&c, None);
    let found = i64::try_from(certs.len()).unwrap_or(i64::MAX);
    let page = HoldersPage { c, document: typed.trim().to_owned(), searched: true, certs, found, reasons, notice };
    Ok(web::render(StatusCode::OK, &page))
}

#[derive(Debug, Deserialize)]
struct LookupForm {
    #[serde(default)]
    document_number: String,
}

async fn lookup(State(state): State<AppState>, uri: Uri, DeskForm(session, form): DeskForm<LookupForm>) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            holder_page(&state, &session.operator, c, &form.document_number, None).await
        })
        .await
}

#[derive(Debug, Deserialize)]
struct RevokeForm {
    #[serde(default)]
    document_number: String,
    #[serde(default)]
    reason: String,
}

async fn revoke(
    State(state): State<AppState>,
    uri: Uri,
    Path(serial): Path<String>,
    DeskForm(session, form): DeskForm<RevokeForm>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            let document = DocumentNumber::parse(&form.document_number)?;
            let reason = Reason::parse(&form.reason)?;
            let invalidity = (reason == Reason::KeyCompromise).then(|| state.ca.clock().now());
            let r = state.desk.in_person_revoke(&session.operator, &serial, &document, reason, invalidity).await?;
            let notice = c.ta(
                if r.newly_revoked { "desk-holders-revoked" } else { "desk-holders-already-revoked" },
                &[
                    ("serial", r.record.serial.as_str().into()),
                    ("reason", reason_label(&c, r.record.reason).into()),
                    ("time", when(r.record.revoked_at).into()),
                ],
            );
            holder_page(&state, &session.operator, c.clone(), &form.document_number, Some(notice)).await
        })
        .await
}

#[derive(Template)]
#[template(path = "desk/password.html")]
struct PasswordPage {
    c: Chrome,
    serial: String,
    password: String,
    issued: String,
    officer: String,
}

async fn new_password(
    State(state): State<AppState>,
    uri: Uri,
    Path(serial): Path<String>,
    DeskForm(session, form): DeskForm<LookupForm>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            let document = DocumentNumber::parse(&form.document_number)?;
            let password = state.desk.change_password(&session.operator, &serial, &document).await?;
            let serial = qcert_ca_core::ca::normalize_serial(&serial)?;
            let page = PasswordPage {
                password: password.expose().to_owned(),
                serial,
                issued: when(state.ca.clock().now().unix_timestamp()),
                officer: session.operator.name.clone(),
                c: c.clone(),
            };
            let mut r = web::render(StatusCode::OK, &page);
            // Shown once: never kept by the browser or a proxy.
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok::<_, CaError>(r)
        })
        .await
}
