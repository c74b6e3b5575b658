//! The desk session in a request: the cookie, the extractor
//! [`DeskSession`] every desk page takes first, the CSRF check of its
//! forms ([`DeskForm`], [`DeskSession::check_csrf`]) and the role check
//! ([`DeskSession::require`]).
//!
//! Cookie: `__Host-qcert-desk` with `Secure` when the desk origin is
//! https; on http (localhost, tests) plain `qcert-desk` without `Secure`
//! (browsers drop `__Host-` cookies without it). Always `HttpOnly`,
//! `SameSite=Strict`, `Path=/`, no `Max-Age` (the registry decides how long
//! a session lives). Its value is the session id (256 random bits); the
//! registry keeps only its SHA-256.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use qcert_ca_core::desk_login::{RelyingParty, Secret};
use qcert_ca_core::operators::{Operator, Role};
use serde::de::DeserializeOwned;

use crate::http::AppState;
use crate::pages::Lang;
use crate::web::{self, Chrome, ErrorPage, NavItem};

/// The cookie name for the desk at `rp`'s origin: `__Host-qcert-desk`
/// over https (`Secure`, `Path=/`, no `Domain`), plain `qcert-desk` over
/// http (localhost, tests), where browsers refuse `__Host-` cookies.
pub fn cookie_name(rp: &RelyingParty) -> &'static str {
    if rp.is_https() {
        "__Host-qcert-desk"
    } else {
        "qcert-desk"
    }
}

/// `Set-Cookie` carrying session id `id`.
pub(crate) fn set_cookie(rp: &RelyingParty, id: &Secret) -> HeaderValue {
    cookie_header(rp, id.expose(), "")
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn clear_cookie(rp: &RelyingParty) -> HeaderValue {
    cookie_header(rp, "", "; Max-Age=0")
}

fn cookie_header(rp: &RelyingParty, value: &str, extra: &str) -> HeaderValue {
    let secure = if rp.is_https() { "; Secure" } else { "" };
    let v = format!("{}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{extra}", cookie_name(rp));
    // The id is base64url and the rest fixed text: always a valid header value.
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("qcert-desk=; Path=/; Max-Age=0"))
}

/// The session id in the request's cookie, if it has our shape.
pub(crate) fn cookie_secret(headers: &HeaderMap, rp: &RelyingParty) -> Option<Secret> {
    let name = cookie_name(rp);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| Secret::parse(v))
}

/// A signed-in operator's request. Without a valid session a GET is sent
/// to `/desk/login` (303), anything else gets a 403 page.
#[derive(Debug, Clone)]
pub struct DeskSession {
    /// Name and role.
    pub operator: Operator,
    /// The page language: the query's `lang=` (then stored as the
    /// operator's), else the operator's stored language.
    pub(crate) lang: Lang,
    /// This session's CSRF token (`web::csrf::token` of the session's key).
    pub(crate) csrf: String,
    csrf_key: String,
    id: Secret,
}

impl DeskSession {
    /// The layout context of a desk page: language, the CSRF token, the
    /// operator's name and the menu of what the role may do.
    pub(crate) fn chrome(&self, uri: &Uri) -> Chrome {
        let mut c = Chrome::new(self.lang, uri);
        c.csrf = Some(self.csrf.clone());
        c.who = Some(self.operator.name.clone());
        let nav = nav(self.operator.role, &c);
        c.with_nav(nav)
    }

    /// A desk page for `role`: the 403 page for any other role, else
    /// `page` with this session's layout context; a core refusal it
    /// returns becomes the error page (`common::failure`).
    pub(crate) async fn serve(
        &self,
        role: Role,
        uri: &Uri,
        page: impl AsyncFnOnce(Chrome) -> Result<Response, qcert_ca_core::CaError>,
    ) -> Response {
        if let Err(r) = self.require(role, uri) {
            return r;
        }
        let c = self.chrome(uri);
        page(c.clone()).await.unwrap_or_else(|e| super::common::failure(&c, e))
    }

    /// Refuse (a 403 page) unless the operator has `role`.
    #[allow(clippy::result_large_err)]
    pub(crate) fn require(&self, role: Role, uri: &Uri) -> Result<(), Response> {
        if self.operator.role == role {
            return Ok(());
        }
        let c = self.chrome(uri);
        let detail = c.ts("desk-role-needed", "role", &c.t(role_message(role)));
        Err(ErrorPage::new(StatusCode::FORBIDDEN, &c, "web-forbidden-title", detail).into_response())
    }

    /// Refuse (a 403 page) unless `presented` is this session's CSRF token.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check_csrf(&self, presented: &str, uri: &Uri) -> Result<(), Response> {
        if web::csrf::verify(&self.csrf_key, presented) {
            return Ok(());
        }
        let c = self.chrome(uri);
        Err(ErrorPage::new(StatusCode::FORBIDDEN, &c, "web-forbidden-title", c.t("desk-csrf-refused")).into_response())
    }

    /// The session id (for logout).
    pub(crate) fn id(&self) -> &Secret {
        &self.id
    }
}

/// The message id naming a role.
pub(crate) fn role_message(role: Role) -> &'static str {
    match role {
        Role::Admin => "desk-role-admin",
        Role::RaOfficer => "desk-role-ra-officer",
        Role::HotlineAgent => "desk-role-hotline-agent",
    }
}

/// What a role may open: `(path, message id)`, the home first.
pub(crate) fn areas(role: Role) -> &'static [(&'static str, &'static str)] {
    match role {
        Role::HotlineAgent => &[("/desk/hotline", "desk-area-hotline")],
        Role::RaOfficer => &[("/desk/ra", "desk-area-ra"), ("/desk/holders", "desk-area-holders")],
        Role::Admin => &[
            ("/desk/admin/operators", "desk-area-operators"),
            ("/desk/admin/audit", "desk-area-audit"),
            ("/desk/admin/metrics", "desk-area-metrics"),
        ],
    }
}

fn nav(role: Role, c: &Chrome) -> Vec<NavItem> {
    std::iter::once(("/desk", "desk-area-home"))
        .chain(areas(role).iter().copied())
        .map(|(href, id)| NavItem { href: href.to_owned(), label: c.t(id), current: false })
        .collect()
}

fn refusal(parts: &Parts) -> Response {
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return Redirect::to("/desk/login").into_response();
    }
    let c = Chrome::from_request(&parts.headers, &parts.uri);
    ErrorPage::new(StatusCode::FORBIDDEN, &c, "web-forbidden-title", c.t("desk-session-needed")).into_response()
}

impl FromRequestParts<AppState> for DeskSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let login = &state.desk_login;
        let Some(id) = cookie_secret(&parts.headers, login.relying_party()) else { return Err(refusal(parts)) };
        let session = match login.session(&id).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refusal(parts)),
            Err(e) => {
                tracing::error!(error = %e, "desk session lookup failed");
                let c = Chrome::from_request(&parts.headers, &parts.uri);
                return Err(ErrorPage::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &c,
                    "web-error-title",
                    c.t("desk-internal"),
                )
                .into_response());
            }
        };
        let lang = match Lang::in_query(&parts.uri) {
            Some(l) => {
                if l.code() != session.language {
                    if let Err(e) = login.set_language(&session.operator.name, l.code()).await {
                        tracing::warn!(error = %e, "could not store the operator's desk language");
                    }
                }
                l
            }
            None => Lang::of(&session.language),
        };
        Ok(DeskSession {
            csrf: web::csrf::token(&session.csrf_key),
            csrf_key: session.csrf_key,
            operator: session.operator,
            lang,
            id,
        })
    }
}

/// The `csrf` field every desk form carries.
#[derive(Debug, serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// A desk form post: the session (as [`DeskSession`]), the form `T`, and
/// the CSRF token checked (field `csrf`; missing or wrong: a 403 page,
/// before `T` is looked at).
#[derive(Debug)]
pub(crate) struct DeskForm<T>(pub(crate) DeskSession, pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for DeskForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let session = DeskSession::from_request_parts(&mut parts, state).await?;
        let uri = parts.uri.clone();
        let req = Request::from_parts(parts, body);
        let c = session.chrome(&uri);
        if !crate::pages::is_form(req.headers()) {
            return Err(ErrorPage::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &c,
                "web-error-title",
                c.t("web-form-type"),
            )
            .into_response());
        }
        let bytes = axum::body::to_bytes(req.into_body(), web::MAX_FORM).await.map_err(|_| {
            ErrorPage::new(StatusCode::PAYLOAD_TOO_LARGE, &c, "web-error-title", c.t("web-form-too-large"))
                .into_response()
        })?;
        let token = web::parse_form::<CsrfField>(&bytes).map(|f| f.csrf).unwrap_or_default();
        session.check_csrf(&token, &uri)?;
        match web::parse_form::<T>(&bytes) {
            Ok(form) => Ok(DeskForm(session, form)),
            Err(field) => {
                let detail = match field {
                    Some(f) => c.ts("web-form-field", "field", &f),
                    None => c.t("web-form-unreadable"),
                };
                Err(ErrorPage::new(StatusCode::BAD_REQUEST, &c, "web-error-title", detail).into_response())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn cookies_by_scheme() {
        let https = RelyingParty::new("https://desk.qcert.eu", None).unwrap();
        let http = RelyingParty::new("http://127.0.0.1:9", None).unwrap();
        let id = Secret::parse(&"a".repeat(43)).unwrap();
        assert_eq!(
            set_cookie(&https, &id).to_str().unwrap(),
            format!("__Host-qcert-desk={}; Path=/; HttpOnly; SameSite=Strict; Secure", "a".repeat(43))
        );
        assert_eq!(
            set_cookie(&http, &id).to_str().unwrap(),
            format!("qcert-desk={}; Path=/; HttpOnly; SameSite=Strict", "a".repeat(43))
        );
        assert!(clear_cookie(&http).to_str().unwrap().ends_with("Max-Age=0"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(&format!("x=1; qcert-desk={}", "a".repeat(43))).unwrap());
        assert!(cookie_secret(&h, &http).is_some());
        assert!(cookie_secret(&h, &https).is_none(), "the https name only");
        h.insert(header::COOKIE, HeaderValue::from_static("qcert-desk=junk"));
        assert!(cookie_secret(&h, &http).is_none());
    }
}
