//! The operators' desk: server-rendered pages under `/desk` for RA
//! officers, hotline agents and admins, behind the desk login
//! (`ca-core::desk_login`). Every page takes [`session::DeskSession`]
//! first (or [`session::DeskForm`] for a form post, which also checks the
//! CSRF token), then serves its role through `DeskSession::serve`.

mod admin;
pub(crate) mod audit;
pub(crate) mod common;
pub(crate) mod holders;
pub(crate) mod hotline;
mod login;
pub(crate) mod metrics;
pub(crate) mod ra;
pub mod session;

use askama::Template;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::AppState;
use crate::web::{self, Chrome, ErrorPage};
use session::{DeskForm, DeskSession};

/// The desk's routes (full paths under `/desk`).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/desk", get(home))
        .route("/desk/logout", post(logout))
        .route("/desk/login", get(login::login_page).post(login::login))
        .route("/desk/login/key", get(login::key_page).post(login::key))
        .route("/desk/login/totp", post(login::totp))
        .route("/desk/enrol", get(login::enrol_page).post(login::enrol))
        .route("/desk/enrol/key", post(login::enrol_key))
        .route("/desk/totp", get(admin::totp_page).post(admin::totp_confirm))
        .route("/desk/api-token", get(api_token_page).post(api_token))
        .route("/desk/admin/operators", get(admin::operators).post(admin::create))
        .route("/desk/admin/operators/{name}/reset", post(admin::reset))
        .route("/desk/admin/operators/{name}/disable", post(admin::disable))
        .route("/desk/admin/operators/{name}/totp", post(admin::totp_allow))
        .merge(hotline::routes())
        .merge(ra::routes())
        .merge(holders::routes())
        .merge(audit::routes())
        .merge(metrics::routes())
}

#[derive(Template)]
#[template(path = "desk/home.html")]
struct HomePage {
    c: Chrome,
    intro: String,
    areas: Vec<(&'static str, String)>,
    totp_setup: bool,
}

/// `/desk`: what the operator's role may open.
async fn home(state: axum::extract::State<AppState>, s: DeskSession, uri: Uri) -> Response {
    let c = s.chrome(&uri);
    let role = c.t(session::role_message(s.operator.role));
    let intro = c.ta("desk-home-intro", &[("name", s.operator.name.as_str().into()), ("role", role.as_str().into())]);
    let areas = session::areas(s.operator.role).iter().map(|(href, id)| (*href, c.t(id))).collect();
    let totp_setup = match state.desk_login.accounts().await {
        Ok(list) => list.iter().any(|a| a.operator == s.operator.name && a.totp_allowed && !a.totp_enrolled),
        Err(e) => return internal(&c, &e),
    };
    web::render(StatusCode::OK, &HomePage { c, intro, areas, totp_setup })
}

#[derive(Debug, serde::Deserialize)]
struct Empty {}

#[derive(Template)]
#[template(path = "desk/api_token.html")]
struct ApiTokenPage {
    c: Chrome,
    /// The new token, once, right after it was made.
    token: Option<String>,
}

/// `GET /desk/api-token`: what the operator's API token is for, and the
/// button that makes a new one (any role: the token acts in the operator's
/// own role, and only she sees it).
async fn api_token_page(s: DeskSession, uri: Uri) -> Response {
    web::render(StatusCode::OK, &ApiTokenPage { c: s.chrome(&uri), token: None })
}

/// `POST /desk/api-token`: a new bearer token for the signed-in operator,
/// replacing the old one; shown once (`no-store`), audited without it.
async fn api_token(
    state: axum::extract::State<AppState>,
    uri: Uri,
    DeskForm(s, Empty {}): DeskForm<Empty>,
) -> Response {
    let c = s.chrome(&uri);
    match state.operators.rotate_token(&s.operator.actor(), &s.operator.name).await {
        Ok(token) => {
            let mut r = web::render(StatusCode::OK, &ApiTokenPage { c, token: Some(token.expose().to_owned()) });
            r.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => common::failure(&c, e),
    }
}

/// `POST /desk/logout`: ends the session, clears the cookie.
async fn logout(state: axum::extract::State<AppState>, DeskForm(s, Empty {}): DeskForm<Empty>) -> Response {
    let rp = state.desk_login.relying_party();
    if let Err(e) = state.desk_login.logout(s.id()).await {
        tracing::error!(error = %e, "desk logout failed");
    }
    let mut r = Redirect::to("/desk/login?out=1").into_response();
    r.headers_mut().insert(header::SET_COOKIE, session::clear_cookie(rp));
    r
}

/// A 500 page (the cause is logged, never shown).
pub(crate) fn internal(c: &Chrome, e: &qcert_ca_core::CaError) -> Response {
    tracing::error!(error = %e, "desk page failed");
    ErrorPage::new(StatusCode::INTERNAL_SERVER_ERROR, c, "web-error-title", c.t("desk-internal")).into_response()
}
