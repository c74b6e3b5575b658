//! The web foundation every server-rendered page stands on: the layout
//! and its context ([`Chrome`]), messages in English and Romanian
//! ([`i18n`]), compiled-in static assets ([`assets`]), the hygiene layer
//! (security headers, the cross-site refusal, the language cookie:
//! [`guard`]), CSRF tokens for session pages ([`csrf`]), urlencoded
//! forms ([`Form`]) and error pages ([`ErrorPage`]).
//!
//! Templates are askama (checked at compile time, escaped by default)
//! in `crates/portal/templates/`; each page struct has a field `c:
//! Chrome` that `base.html` reads. No inline script or style anywhere:
//! the CSP says `default-src 'self'`.

pub(crate) mod assets;
pub(crate) mod csrf;
pub(crate) mod guard;
pub(crate) mod i18n;

use std::convert::Infallible;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

pub(crate) use i18n::{Arg, Tr};

use crate::pages::Lang;

/// One entry of a page's menu.
#[derive(Debug, Clone)]
pub(crate) struct NavItem {
    pub(crate) href: String,
    pub(crate) label: String,
    pub(crate) current: bool,
}

/// What the layout needs of every page: language, messages, menu, the
/// signed-in operator and the CSRF token of their session.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    pub(crate) lang: Lang,
    tr: Tr,
    path: String,
    query: Vec<(String, String)>,
    /// The CSRF token of the desk session (forms print it in a hidden field).
    pub(crate) csrf: Option<String>,
    pub(crate) nav: Vec<NavItem>,
    /// The signed-in operator's name (shown in the header with "sign out").
    pub(crate) who: Option<String>,
}

impl Chrome {
    pub(crate) fn new(lang: Lang, uri: &Uri) -> Chrome {
        let query = uri
            .query()
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().filter(|(k, _)| k != "lang").collect())
            .unwrap_or_default();
        Chrome { lang, tr: Tr::new(lang), path: uri.path().to_owned(), query, csrf: None, nav: Vec::new(), who: None }
    }

    /// The page language negotiated from the request ([`Lang::negotiate`]).
    pub(crate) fn from_request(headers: &HeaderMap, uri: &Uri) -> Chrome {
        Chrome::new(Lang::negotiate(headers, uri), uri)
    }

    /// Message `id`.
    pub(crate) fn t(&self, id: &str) -> String {
        self.tr.t(id)
    }

    /// Message `id` with named arguments.
    pub(crate) fn ta(&self, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        self.tr.args(id, args)
    }

    /// Message `id` with one number `$n` (plural forms).
    pub(crate) fn tn(&self, id: &str, n: i64) -> String {
        self.tr.args(id, &[("n", Arg::from(n))])
    }

    /// How long to wait after a rate limit, in whole minutes (at least one):
    /// "3 minutes" / "3 minute".
    pub(crate) fn wait_minutes(&self, retry_after_secs: u64) -> String {
        self.tn("web-minutes", i64::try_from(retry_after_secs.div_ceil(60).max(1)).unwrap_or(i64::MAX))
    }

    /// Message `id` with one string argument.
    pub(crate) fn ts(&self, id: &str, name: &str, value: &str) -> String {
        self.tr.args(id, &[(name, Arg::from(value))])
    }

    /// `en` or `ro`.
    pub(crate) fn code(&self) -> &'static str {
        self.lang.code()
    }

    /// This page's URL in another language (its query kept).
    pub(crate) fn lang_href(&self, code: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.query {
            q.append_pair(k, v);
        }
        q.append_pair("lang", code);
        format!("{}?{}", self.path, q.finish())
    }

    /// The CSRF token for a hidden form field (empty without a session).
    pub(crate) fn csrf_value(&self) -> &str {
        self.csrf.as_deref().unwrap_or_default()
    }

    pub(crate) fn with_nav(mut self, nav: Vec<NavItem>) -> Chrome {
        for n in &mut self.nav {
            n.current = false;
        }
        self.nav = nav;
        let path = self.path.clone();
        for n in &mut self.nav {
            n.current = n.href == path;
        }
        self
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Chrome {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Chrome::from_request(&parts.headers, &parts.uri))
    }
}

/// A rendered page with `status` (`text/html; charset=utf-8`; the
/// [`guard`] layer adds the security headers).
pub(crate) fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

/// An error page: a title and one sentence of what was wrong and what to do.
#[derive(Debug)]
pub(crate) struct ErrorPage {
    status: StatusCode,
    c: Chrome,
    title: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    c: &'a Chrome,
    title: &'a str,
    detail: &'a str,
}

impl ErrorPage {
    /// `title_id` is a message id; `detail` is already in the page's language.
    pub(crate) fn new(status: StatusCode, c: &Chrome, title_id: &str, detail: impl Into<String>) -> ErrorPage {
        ErrorPage { status, c: c.clone(), title: c.t(title_id), detail: detail.into() }
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        render(self.status, &ErrorTemplate { c: &self.c, title: &self.title, detail: &self.detail })
    }
}

/// Largest urlencoded form a page takes.
pub(crate) const MAX_FORM: usize = 16 * 1024;

/// A urlencoded form body parsed into `T`. A refusal is an error page in
/// the request's language naming the field (never its value).
#[derive(Debug)]
pub(crate) struct Form<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ErrorPage;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let c = Chrome::from_request(req.headers(), req.uri());
        if !crate::pages::is_form(req.headers()) {
            return Err(ErrorPage::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &c,
                "web-error-title",
                c.t("web-form-type"),
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_FORM).await.map_err(|_| {
            ErrorPage::new(StatusCode::PAYLOAD_TOO_LARGE, &c, "web-error-title", c.t("web-form-too-large"))
        })?;
        parse_form(&body).map(Form).map_err(|field| {
            let detail = match field {
                Some(f) => c.ts("web-form-field", "field", &f),
                None => c.t("web-form-unreadable"),
            };
            ErrorPage::new(StatusCode::BAD_REQUEST, &c, "web-error-title", detail)
        })
    }
}

/// Parse a urlencoded body; the refusal is the name of the field at fault
/// (when it can be told), never serde's message (it quotes the value).
pub(crate) fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, Option<String>> {
    let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(body));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path != "." && !path.is_empty() {
            return Some(path);
        }
        // A missing field is reported at the top: "missing field `name`".
        let msg = e.inner().to_string();
        msg.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct F {
        name: String,
        years: u8,
        #[serde(default)]
        note: Option<String>,
    }

    #[test]
    fn forms_name_the_field_never_the_value() {
        let f: F = parse_form(b"name=Ioana+Pop&years=2").unwrap();
        assert_eq!((f.name.as_str(), f.years, f.note), ("Ioana Pop", 2, None));
        assert_eq!(parse_form::<F>(b"name=x&years=secret123").unwrap_err().as_deref(), Some("years"));
        assert_eq!(parse_form::<F>(b"years=1").unwrap_err().as_deref(), Some("name"));
        assert_eq!(parse_form::<F>(b"name=x&years=1&years=2").unwrap_err(), None);
    }

    #[test]
    fn lang_links_keep_the_query() {
        let uri: Uri = "/desk/audit?actor=radu&lang=en&from=2026-01-01".parse().unwrap();
        let c = Chrome::new(Lang::En, &uri);
        assert_eq!(c.lang_href("ro"), "/desk/audit?actor=radu&from=2026-01-01&lang=ro");
        let nav = vec![
            NavItem { href: "/desk/audit".into(), label: "Audit".into(), current: false },
            NavItem { href: "/desk/ra".into(), label: "RA".into(), current: true },
        ];
        let c = c.with_nav(nav);
        assert!(c.nav[0].current && !c.nav[1].current);
    }

    #[tokio::test]
    async fn error_pages_are_html_in_the_request_language_and_escaped() {
        let uri: Uri = "/x?lang=ro".parse().unwrap();
        let c = Chrome::new(Lang::negotiate(&HeaderMap::new(), &uri), &uri);
        let r = ErrorPage::new(StatusCode::BAD_REQUEST, &c, "web-error-title", "<b>x</b>").into_response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let body = String::from_utf8(axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap();
        assert!(body.contains("<html lang=\"ro\">"), "{body}");
        assert!(body.contains("Ceva nu a fost în regulă"), "{body}");
        assert!(body.contains("&#60;b&#62;x&#60;/b&#62;") && !body.contains("<b>x"), "{body}");
        assert!(body.contains("href=\"/static/qcert.css\""), "{body}");
        assert!(!body.contains("<script") && !body.contains("style="), "{body}");
    }
}
