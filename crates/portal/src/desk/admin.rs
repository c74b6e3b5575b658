//! `/desk/admin/operators`: the admin's operator accounts (list, create
//! with a role, disable, reset, allow or forbid TOTP), and `/desk/totp`,
//! where an operator allowed to use TOTP sets up an authenticator app.
//! Every action is a form with the session's CSRF token; the role is
//! checked before the form is looked at.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use qcert_ca_core::desk_login::Enrolment;
use qcert_ca_core::operators::Role;
use qcert_ca_core::CaError;

use super::common::{failure, MessagePage};
use super::internal;
use super::session::{role_message, DeskForm, DeskSession};
use crate::http::AppState;
use crate::web::{self, Chrome, ErrorPage};

struct Row {
    name: String,
    role: String,
    active: bool,
    login: String,
    totp_allowed: bool,
    /// "for <name>" (read by screen readers after each button's text).
    for_name: String,
}

#[derive(Template)]
#[template(path = "desk/operators.html")]
struct OperatorsPage {
    c: Chrome,
    rows: Vec<Row>,
    roles: Vec<(&'static str, String)>,
}

/// `GET /desk/admin/operators`.
pub(super) async fn operators(State(state): State<AppState>, s: DeskSession, uri: Uri) -> Response {
    if let Err(r) = s.require(Role::Admin, &uri) {
        return r;
    }
    let c = s.chrome(&uri);
    let list = match state.desk_login.accounts().await {
        Ok(l) => l,
        Err(e) => return internal(&c, &e),
    };
    let rows = list
        .into_iter()
        .map(|a| {
            let role = Role::parse(&a.role).map(|r| c.t(role_message(r))).unwrap_or(a.role.clone());
            let mut login = match a.enrolled_at {
                Some(at) => {
                    c.ta("desk-ops-enrolled", &[("date", c.lang.date(at).as_str().into()), ("keys", a.keys.into())])
                }
                None => c.t("desk-ops-not-enrolled"),
            };
            if let Some(until) = a.link_expires_at {
                login.push_str(" · ");
                login.push_str(&c.ts("desk-ops-link-until", "date", &c.lang.date(until)));
            }
            if a.totp_allowed {
                login.push_str(" · ");
                login.push_str(&c.t(if a.totp_enrolled { "desk-ops-totp-on" } else { "desk-ops-totp-allowed" }));
            }
            Row {
                for_name: c.ts("desk-ops-for", "name", &a.operator),
                active: a.revoked_at.is_none(),
                totp_allowed: a.totp_allowed,
                name: a.operator,
                role,
                login,
            }
        })
        .collect();
    let roles = Role::ALL.iter().map(|r| (r.as_str(), c.t(role_message(*r)))).collect();
    web::render(StatusCode::OK, &OperatorsPage { c, rows, roles })
}

#[derive(Template)]
#[template(path = "desk/link.html")]
struct LinkPage {
    c: Chrome,
    text: String,
    link: String,
    until: String,
}

fn link_page(c: Chrome, text: String, e: &Enrolment) -> Response {
    let until = c.ts("desk-link-until", "date", &c.lang.date(e.expires_at));
    web::render(StatusCode::OK, &LinkPage { c, text, link: e.link.to_string(), until })
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct CreateForm {
    name: String,
    role: String,
}

/// `POST /desk/admin/operators`: a new operator and its enrolment link
/// (shown once). Its API bearer token is not shown: nobody but the
/// operator should hold a credential of theirs.
pub(super) async fn create(State(state): State<AppState>, uri: Uri, DeskForm(s, f): DeskForm<CreateForm>) -> Response {
    s.serve(Role::Admin, &uri, async |c| {
        let Ok(role) = Role::parse(&f.role) else {
            let detail = c.ts("web-form-field", "field", "role");
            return Ok(ErrorPage::new(StatusCode::UNPROCESSABLE_ENTITY, &c, "web-error-title", detail).into_response());
        };
        let actor = s.operator.actor();
        let name = f.name.trim().to_owned();
        state.operators.add(&actor, &name, role).await?;
        let link = state.desk_login.enrolment_link(&actor, &name).await?;
        let text = c.ts("desk-link-created", "name", &name);
        Ok(link_page(c, text, &link))
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct Empty {}

/// `POST /desk/admin/operators/{name}/reset`: old credentials and sessions
/// dropped, a new enrolment link (shown once).
pub(super) async fn reset(
    State(state): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    DeskForm(s, Empty {}): DeskForm<Empty>,
) -> Response {
    s.serve(Role::Admin, &uri, async |c| {
        let link = state.desk_login.reset(&s.operator.actor(), &name).await?;
        let text = c.ts("desk-link-reset", "name", &name);
        Ok(link_page(c, text, &link))
    })
    .await
}

/// `POST /desk/admin/operators/{name}/disable`: the operator is revoked
/// (API token and desk sessions end at once).
pub(super) async fn disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    DeskForm(s, Empty {}): DeskForm<Empty>,
) -> Response {
    s.serve(Role::Admin, &uri, async |_| {
        state.operators.revoke(&s.operator.actor(), &name).await?;
        if let Err(e) = state.desk_login.end_sessions(&name).await {
            tracing::warn!(error = %e, "the disabled operator's session rows stay (they no longer work)");
        }
        Ok(Redirect::to("/desk/admin/operators").into_response())
    })
    .await
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct TotpForm {
    allow: String,
}

/// `POST /desk/admin/operators/{name}/totp`: allow (`allow=yes`) or
/// forbid TOTP as the account's fallback; forbidding erases its secret.
pub(super) async fn totp_allow(
    State(state): State<AppState>,
    Path(name): Path<String>,
    uri: Uri,
    DeskForm(s, f): DeskForm<TotpForm>,
) -> Response {
    s.serve(Role::Admin, &uri, async |_| {
        state.desk_login.set_totp_allowed(&s.operator.actor(), &name, f.allow == "yes").await?;
        Ok(Redirect::to("/desk/admin/operators").into_response())
    })
    .await
}

#[derive(Template)]
#[template(path = "desk/totp.html")]
struct TotpPage {
    c: Chrome,
    secret: String,
    uri: String,
}

/// `GET /desk/totp`: a new secret for the operator's authenticator app
/// (only where an admin allowed TOTP); pending until a code confirms it.
pub(super) async fn totp_page(State(state): State<AppState>, s: DeskSession, uri: Uri) -> Response {
    let c = s.chrome(&uri);
    match state.desk_login.begin_totp(&s.operator.name).await {
        Ok(secret) => {
            let otpauth = secret.otpauth_uri("qcert desk", &s.operator.name).to_string();
            let mut r = web::render(StatusCode::OK, &TotpPage { c, secret: secret.base32().to_string(), uri: otpauth });
            r.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            r
        }
        Err(CaError::Forbidden(_)) => {
            ErrorPage::new(StatusCode::FORBIDDEN, &c, "web-forbidden-title", c.t("desk-totp-not-allowed"))
                .into_response()
        }
        Err(e) => internal(&c, &e),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct ConfirmForm {
    code: String,
}

impl std::fmt::Debug for ConfirmForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmForm(redacted)")
    }
}

/// `POST /desk/totp`: confirm the app with its current code.
pub(super) async fn totp_confirm(
    State(state): State<AppState>,
    uri: Uri,
    DeskForm(s, f): DeskForm<ConfirmForm>,
) -> Response {
    let c = s.chrome(&uri);
    match state.desk_login.confirm_totp(&s.operator.name, &f.code).await {
        Ok(()) => {
            let title = c.t("desk-totp-title");
            let text = c.t("desk-totp-done");
            let link = Some(("/desk".to_owned(), c.t("desk-area-home")));
            web::render(StatusCode::OK, &MessagePage { c, title, text, link })
        }
        Err(CaError::InvalidField { .. }) => {
            ErrorPage::new(StatusCode::UNPROCESSABLE_ENTITY, &c, "web-error-title", c.t("desk-totp-wrong"))
                .into_response()
        }
        Err(e) => failure(&c, e),
    }
}
