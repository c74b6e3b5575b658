//! The desk's sign-in pages: `/desk/login` (name and password), then
//! `/desk/login/key` (the security key, or a TOTP code where allowed),
//! and `/desk/enrol` (the one-time link: password, then key). The
//! WebAuthn calls are made by `/static/desk-login.js`; everything else
//! is plain forms. Pages before the login carry no CSRF token (there is
//! no session); the cross-site refusal of `web::guard` covers them, and
//! the half-login's forms carry its token.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use qcert_ca_core::desk_login::{DeskPassword, PendingLogin, Secret};
use qcert_ca_core::CaError;

use super::common::MessagePage;
use super::internal;
use super::session::{clear_cookie, cookie_secret, set_cookie};
use crate::http::AppState;
use crate::pages::Lang;
use crate::web::{self, Chrome, ErrorPage, Form};

#[derive(Template)]
#[template(path = "desk/login.html")]
struct LoginPage {
    c: Chrome,
    name: String,
    notice: Option<String>,
    error: Option<String>,
}

/// Whether the query has parameter `name`.
fn has_param(uri: &Uri, name: &str) -> bool {
    uri.query().is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == name))
}

/// `GET /desk/login`.
pub(super) async fn login_page(headers: HeaderMap, uri: Uri) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    let notice = if has_param(&uri, "out") {
        Some(c.t("desk-login-signed-out"))
    } else if has_param(&uri, "enrolled") {
        Some(c.t("desk-login-enrolled"))
    } else {
        None
    };
    web::render(StatusCode::OK, &LoginPage { c, name: String::new(), notice, error: None })
}

#[derive(serde::Deserialize)]
pub(super) struct LoginForm {
    name: String,
    password: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("name", &self.name).finish_non_exhaustive()
    }
}

fn refused_page(c: Chrome, name: &str, e: &CaError) -> Response {
    let (status, error) = match e {
        CaError::LoginRefused => (StatusCode::UNAUTHORIZED, c.t("desk-login-refused")),
        CaError::RateLimited { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, c.ts("desk-login-throttled", "wait", &c.wait_minutes(*retry_after_secs)))
        }
        other => return internal(&c, other),
    };
    let name = name.chars().take(64).collect();
    web::render(status, &LoginPage { c, name, notice: None, error: Some(error) })
}

/// `POST /desk/login`: the password step; a half-login cookie and on to the key.
pub(super) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<LoginForm>,
) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    let login = &state.desk_login;
    match login.login_password(&f.name, DeskPassword::typed(&f.password)).await {
        Ok(pending) => {
            let mut r = Redirect::to("/desk/login/key").into_response();
            r.headers_mut().insert(header::SET_COOKIE, set_cookie(login.relying_party(), &pending));
            r
        }
        Err(e) => refused_page(c, &f.name, &e),
    }
}

#[derive(Template)]
#[template(path = "desk/login_key.html")]
struct KeyPage {
    c: Chrome,
    name: String,
    options: String,
    totp: bool,
    retry: bool,
}

/// The half-login of the request's cookie, or the redirect to start again.
#[allow(clippy::result_large_err)]
async fn pending(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<(Secret, PendingLogin, Chrome), Response> {
    let login = &state.desk_login;
    let again = || {
        let mut r = Redirect::to("/desk/login").into_response();
        r.headers_mut().insert(header::SET_COOKIE, clear_cookie(login.relying_party()));
        r
    };
    let Some(id) = cookie_secret(headers, login.relying_party()) else { return Err(again()) };
    match login.pending(&id).await {
        Ok(Some(p)) => {
            let lang = Lang::in_query(uri).unwrap_or_else(|| Lang::of(&p.language));
            let mut c = Chrome::new(lang, uri);
            c.csrf = Some(web::csrf::token(&p.csrf_key));
            Ok((id, p, c))
        }
        Ok(None) => Err(again()),
        Err(e) => Err(internal(&Chrome::from_request(headers, uri), &e)),
    }
}

/// `GET /desk/login/key`: a fresh challenge for the operator's keys.
pub(super) async fn key_page(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let (id, p, c) = match pending(&state, &headers, &uri).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let options = match state.desk_login.key_challenge(&id).await {
        Ok(o) => serde_json::to_string(&o).unwrap_or_default(),
        Err(CaError::NotFound(_)) => String::from("{}"),
        Err(e) => return internal(&c, &e),
    };
    web::render(
        StatusCode::OK,
        &KeyPage { c, name: p.operator, options, totp: p.totp, retry: has_param(&uri, "retry") },
    )
}

impl std::fmt::Debug for KeyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyForm(redacted)")
    }
}

#[derive(serde::Deserialize)]
pub(super) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    credential: String,
}

#[derive(serde::Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    code: String,
}

impl std::fmt::Debug for CodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeForm(redacted)")
    }
}

fn signed_in(state: &AppState, id: &Secret) -> Response {
    let mut r = Redirect::to("/desk").into_response();
    r.headers_mut().insert(header::SET_COOKIE, set_cookie(state.desk_login.relying_party(), id));
    r
}

fn csrf_refused(c: &Chrome) -> Response {
    ErrorPage::new(StatusCode::FORBIDDEN, c, "web-forbidden-title", c.t("desk-csrf-refused")).into_response()
}

/// `POST /desk/login/key`: the browser's assertion; the session on success.
pub(super) async fn key(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<KeyForm>,
) -> Response {
    let (id, p, c) = match pending(&state, &headers, &uri).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !web::csrf::verify(&p.csrf_key, &f.csrf) {
        return csrf_refused(&c);
    }
    match state.desk_login.login_key(&id, &f.credential).await {
        Ok(active) => signed_in(&state, &active),
        Err(CaError::LoginRefused) => Redirect::to("/desk/login/key?retry=1").into_response(),
        Err(e) => internal(&c, &e),
    }
}

/// `POST /desk/login/totp`: a TOTP code instead of the key (where allowed).
pub(super) async fn totp(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<CodeForm>,
) -> Response {
    let (id, p, c) = match pending(&state, &headers, &uri).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !web::csrf::verify(&p.csrf_key, &f.csrf) {
        return csrf_refused(&c);
    }
    match state.desk_login.login_totp(&id, &f.code).await {
        Ok(active) => signed_in(&state, &active),
        Err(CaError::LoginRefused) => Redirect::to("/desk/login/key?retry=1").into_response(),
        Err(CaError::RateLimited { retry_after_secs }) => {
            let detail = c.ts("desk-login-throttled", "wait", &c.wait_minutes(retry_after_secs));
            ErrorPage::new(StatusCode::TOO_MANY_REQUESTS, &c, "web-error-title", detail).into_response()
        }
        Err(e) => internal(&c, &e),
    }
}

// ----- enrolment -----

#[derive(Template)]
#[template(path = "desk/enrol.html")]
struct EnrolPage {
    c: Chrome,
    token: String,
    error: Option<String>,
}

/// `GET /desk/enrol`: the token comes in the URL fragment (filled in by
/// the script) or is pasted.
pub(super) async fn enrol_page(headers: HeaderMap, uri: Uri) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    web::render(StatusCode::OK, &EnrolPage { c, token: String::new(), error: None })
}

#[derive(serde::Deserialize)]
pub(super) struct EnrolForm {
    token: String,
    password: String,
    password2: String,
}

impl std::fmt::Debug for EnrolForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolForm(redacted)")
    }
}

#[derive(Template)]
#[template(path = "desk/enrol_key.html")]
struct EnrolKeyPage {
    c: Chrome,
    name: String,
    token: String,
    options: String,
}

/// The enrolment form again with message `id`.
fn enrol_error(c: Chrome, token: &str, status: StatusCode, id: &str) -> Response {
    let error = Some(c.t(id));
    web::render(status, &EnrolPage { c, token: token.chars().take(64).collect(), error })
}

/// `POST /desk/enrol`: the password; then the key registration page.
pub(super) async fn enrol(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<EnrolForm>,
) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    let login = &state.desk_login;
    let info = match login.enrolment(&f.token).await {
        Ok(Some(i)) => i,
        Ok(None) => return enrol_error(c, "", StatusCode::NOT_FOUND, "desk-enrol-link-gone"),
        Err(e) => return internal(&c, &e),
    };
    if *f.password != *f.password2 {
        return enrol_error(c, &f.token, StatusCode::UNPROCESSABLE_ENTITY, "desk-enrol-mismatch");
    }
    let password = match DeskPassword::choose(&f.password) {
        Ok(p) => p,
        Err(_) => return enrol_error(c, &f.token, StatusCode::UNPROCESSABLE_ENTITY, "desk-enrol-weak"),
    };
    match login.begin_enrolment(&f.token, password).await {
        Ok(options) => {
            let options = serde_json::to_string(&options).unwrap_or_default();
            web::render(StatusCode::OK, &EnrolKeyPage { c, name: info.operator, token: f.token, options })
        }
        Err(CaError::NotFound(_)) => enrol_error(c, "", StatusCode::NOT_FOUND, "desk-enrol-link-gone"),
        Err(e) => internal(&c, &e),
    }
}

impl std::fmt::Debug for EnrolKeyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrolKeyForm(redacted)")
    }
}

#[derive(serde::Deserialize)]
pub(super) struct EnrolKeyForm {
    token: String,
    #[serde(default)]
    credential: String,
}

/// `POST /desk/enrol/key`: the browser's registration; uses the link.
pub(super) async fn enrol_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<EnrolKeyForm>,
) -> Response {
    let c = Chrome::from_request(&headers, &uri);
    match state.desk_login.finish_enrolment(&f.token, &f.credential).await {
        Ok(name) => {
            let title = c.t("desk-enrol-done-title");
            let text = c.ts("desk-enrol-done", "name", &name);
            let link = Some(("/desk/login?enrolled=1".to_owned(), c.t("desk-enrol-sign-in")));
            web::render(StatusCode::OK, &MessagePage { c, title, text, link })
        }
        Err(CaError::NotFound(_)) => enrol_error(c, "", StatusCode::NOT_FOUND, "desk-enrol-link-gone"),
        Err(CaError::Conflict(_)) => {
            ErrorPage::new(StatusCode::CONFLICT, &c, "web-error-title", c.t("desk-enrol-key-taken")).into_response()
        }
        Err(e) if e.is_client_error() => {
            ErrorPage::new(StatusCode::UNPROCESSABLE_ENTITY, &c, "web-error-title", c.t("desk-enrol-key-refused"))
                .into_response()
        }
        Err(e) => internal(&c, &e),
    }
}
