//! The hotline page (`/desk/hotline`, hotline agents): one form — ID
//! document number, the 8-digit revocation password, the reason — that an
//! agent on the phone fills in with the keyboard alone (the first field
//! has the focus, Enter sends it). The answer says what was revoked
//! (serials, the holder's name) with the sentence to read to the caller,
//! or the refusal with its sentence: the same words for an unknown number,
//! a wrong password and a locked path, as the JSON API gives them. Same
//! core call as `POST /api/v1/hotline/revocations`:
//! `RevocationDesk::hotline_revoke`.

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use qcert_ca_core::desk::{DocumentNumber, RevocationPassword};
use qcert_ca_core::operators::{Operator, Role};
use qcert_ca_core::{CaError, Reason};
use serde::Deserialize;

use super::common::{failure, reason_label, reason_options, when, ReasonOption};
use super::session::{DeskForm, DeskSession};
use crate::http::AppState;
use crate::web::{self, Chrome};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/desk/hotline", get(page).post(submit))
}

/// One certificate the call revoked.
#[derive(Debug)]
struct RevokedLine {
    serial: String,
    holder: String,
    reason: String,
    at: String,
    /// It had been revoked before this call (the first revocation stands).
    before: bool,
}

#[derive(Template)]
#[template(path = "desk/hotline.html")]
struct HotlinePage {
    c: Chrome,
    reasons: Vec<ReasonOption>,
    /// The document number to keep in the field after a refusal.
    document: String,
    revoked: Vec<RevokedLine>,
    count: i64,
    /// The sentence for the caller after a revocation.
    say: Option<String>,
    refused: bool,
    /// The field the agent must correct (`document_number`,
    /// `revocation_password` or `reason`) and what it needs, shown next to
    /// it; the form keeps the rest of what was typed but the password.
    invalid: Option<(&'static str, String)>,
}

impl HotlinePage {
    fn new(c: Chrome) -> HotlinePage {
        let reasons = reason_options(&c, None);
        HotlinePage {
            c,
            reasons,
            document: String::new(),
            revoked: Vec::new(),
            count: 0,
            say: None,
            refused: false,
            invalid: None,
        }
    }

    /// The message for `field` when it is the invalid one.
    fn error_for(&self, field: &str) -> Option<&str> {
        self.invalid.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }
}

async fn page(session: DeskSession, uri: Uri) -> Response {
    if let Err(r) = session.require(Role::HotlineAgent, &uri) {
        return r;
    }
    form_page(session.chrome(&uri))
}

/// The empty form (`qcert bench desk` times it too).
pub(crate) fn form_page(c: Chrome) -> Response {
    web::render(StatusCode::OK, &HotlinePage::new(c))
}

/// The form. No `Debug`: it holds the password.
#[derive(Deserialize)]
struct HotlineForm {
    #[serde(default)]
    document_number: String,
    #[serde(default)]
    revocation_password: String,
    #[serde(default)]
    reason: String,
}

async fn submit(State(state): State<AppState>, uri: Uri, DeskForm(session, form): DeskForm<HotlineForm>) -> Response {
    if let Err(r) = session.require(Role::HotlineAgent, &uri) {
        return r;
    }
    let c = session.chrome(&uri);
    let parsed = (|| {
        let document = DocumentNumber::parse(&form.document_number)
            .map_err(|_| ("document_number", c.t("desk-hotline-invalid-document")))?;
        let password = RevocationPassword::parse(&form.revocation_password)
            .map_err(|_| ("revocation_password", c.t("desk-hotline-invalid-password")))?;
        let reason = Reason::parse(&form.reason).map_err(|_| ("reason", c.t("desk-hotline-invalid-reason")))?;
        Ok((document, password, reason))
    })();
    let (document, password, reason) = match parsed {
        Ok(p) => p,
        Err(invalid) => {
            // Inline, so the agent on the phone corrects one field and presses Enter again.
            let mut page = HotlinePage::new(c.clone());
            page.reasons = reason_options(&c, Reason::parse(&form.reason).ok().map(Reason::name));
            page.document = form.document_number.trim().chars().take(32).collect();
            page.invalid = Some(invalid);
            return web::render(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    answer(&state, &session.operator, c, form.document_number.trim(), &document, &password, reason).await
}

/// The answer page of a call (`qcert bench desk` times it too).
pub(crate) async fn answer(
    state: &AppState,
    agent: &Operator,
    c: Chrome,
    typed_document: &str,
    document: &DocumentNumber,
    password: &RevocationPassword,
    reason: Reason,
) -> Response {
    let mut page = HotlinePage::new(c.clone());
    page.reasons = reason_options(&c, Some(reason.name()));
    match state.desk.hotline_revoke(agent, document, password, reason).await {
        Ok(done) => {
            let registry = state.ca.registry();
            let mut names = Vec::new();
            for r in &done {
                let holder = match registry.certificate(&r.record.serial).await {
                    Ok(Some(rec)) => {
                        let n = [rec.cert.given_name.as_deref(), rec.cert.surname.as_deref()];
                        n.iter().flatten().copied().collect::<Vec<_>>().join(" ")
                    }
                    Ok(None) => String::new(),
                    Err(e) => return failure(&c, e.into()),
                };
                if !holder.is_empty() && !names.contains(&holder) {
                    names.push(holder.clone());
                }
                page.revoked.push(RevokedLine {
                    serial: r.record.serial.clone(),
                    holder,
                    reason: reason_label(&c, r.record.reason),
                    at: when(r.record.revoked_at),
                    before: !r.newly_revoked,
                });
            }
            let n = i64::try_from(done.len()).unwrap_or(i64::MAX);
            page.count = n;
            page.say = Some(c.ta("desk-hotline-say-revoked", &[("n", n.into()), ("name", names.join(", ").into())]));
            web::render(StatusCode::OK, &page)
        }
        Err(CaError::HotlineRefused) => {
            page.refused = true;
            page.document = typed_document.to_owned();
            web::render(StatusCode::FORBIDDEN, &page)
        }
        Err(e) => failure(&c, e),
    }
}
