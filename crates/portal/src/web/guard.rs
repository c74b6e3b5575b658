//! The hygiene layer on every route:
//! - a browser's unsafe request (POST, PUT, PATCH, DELETE) from another
//!   site is refused before any handler runs: `Sec-Fetch-Site` other than
//!   `same-origin` / `none`, or an `Origin` that is neither this request's
//!   Host nor one of ours (a cross-site form post always carries one or
//!   both; API clients such as curl send neither and are not affected);
//! - every HTML answer gets the page headers (strict CSP, no framing, no
//!   sniffing, no referrer, no caching unless the handler chose one);
//! - visiting a page with `lang=xx` remembers the language in a cookie.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{Chrome, ErrorPage};
use crate::http::{AppState, Problem};
use crate::pages::{wants_html, Lang, LANG_COOKIE};

/// The CSP of the pages: our own stylesheet and scripts, nothing else.
pub(crate) const PAGE_CSP: &str =
    "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// `http://host[:port]` and `https://host[:port]` of a base URL.
pub(crate) fn origins_of(base: &url::Url) -> Vec<String> {
    let Some(host) = base.host_str() else { return Vec::new() };
    let port = base.port().map(|p| format!(":{p}")).unwrap_or_default();
    vec![format!("http://{host}{port}").to_ascii_lowercase(), format!("https://{host}{port}").to_ascii_lowercase()]
}

fn is_unsafe(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Why a browser request comes from another site, if it does.
pub(crate) fn cross_site(headers: &HeaderMap, ours: &[String]) -> Option<&'static str> {
    let mut same_origin = false;
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or_default().to_ascii_lowercase();
        if site != "same-origin" && site != "none" {
            return Some("Sec-Fetch-Site");
        }
        same_origin = site == "same-origin";
    }
    let origin = headers.get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or_default().trim().to_ascii_lowercase();
    // Our pages say `Referrer-Policy: no-referrer`, so a browser posts their
    // forms with `Origin: null` (Fetch, "serializing a request origin");
    // `Sec-Fetch-Site: same-origin`, which no page can set, vouches for them.
    if origin == "null" && same_origin {
        return None;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    let same_host = !host.is_empty() && authority == Some(host.as_str());
    if same_host || ours.contains(&origin) {
        None
    } else {
        Some("Origin")
    }
}

pub(crate) async fn hygiene(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_unsafe(req.method()) {
        if let Some(header) = cross_site(req.headers(), state.web_origins()) {
            tracing::warn!(method = %req.method(), path = req.uri().path(), header, "cross-site request refused");
            if wants_html(req.headers()) {
                let c = Chrome::from_request(req.headers(), req.uri());
                return ErrorPage::new(StatusCode::FORBIDDEN, &c, "web-forbidden-title", c.t("web-cross-site"))
                    .into_response();
            }
            return Problem::typed(
                StatusCode::FORBIDDEN,
                "cross-site-request",
                "Cross-site request refused",
                Some(format!("a browser sent this request from another site (its {header} header)")),
            )
            .into_response();
        }
    }
    let chosen = if req.method() == Method::GET { Lang::in_query(req.uri()) } else { None };
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    let html = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(PAGE_CSP));
        h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
        h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
        h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
        h.entry("cross-origin-opener-policy").or_insert(HeaderValue::from_static("same-origin"));
        if let Some(l) = chosen {
            let cookie = format!("{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly", l.code());
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                h.append(header::SET_COOKIE, v);
            }
        }
    }
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn only_same_site_browser_posts_pass() {
        let ours = origins_of(&"http://127.0.0.1:8080/".parse().unwrap());
        assert_eq!(ours, ["http://127.0.0.1:8080", "https://127.0.0.1:8080"]);
        // API clients: neither header.
        assert_eq!(cross_site(&h(&[("host", "127.0.0.1:8080")]), &ours), None);
        assert_eq!(
            cross_site(&h(&[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:9")]), &[]),
            Some("Origin")
        );
        assert_eq!(
            cross_site(
                &h(&[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:9"), ("host", "localhost:9")]),
                &[]
            ),
            None
        );
        assert_eq!(
            cross_site(&h(&[("sec-fetch-site", "cross-site"), ("host", "localhost:9")]), &[]),
            Some("Sec-Fetch-Site")
        );
        assert_eq!(cross_site(&h(&[("sec-fetch-site", "same-site")]), &ours), Some("Sec-Fetch-Site"));
        assert_eq!(cross_site(&h(&[("origin", "null"), ("host", "localhost:9")]), &ours), Some("Origin"));
        // A form post of our own no-referrer page (Chromium): Origin null, Sec-Fetch-Site same-origin.
        assert_eq!(cross_site(&h(&[("sec-fetch-site", "same-origin"), ("origin", "null")]), &ours), None);
        assert_eq!(
            cross_site(&h(&[("sec-fetch-site", "cross-site"), ("origin", "null")]), &ours),
            Some("Sec-Fetch-Site")
        );
        assert_eq!(
            cross_site(&h(&[("origin", "https://evil.example"), ("host", "localhost:9")]), &ours),
            Some("Origin")
        );
        // Behind a proxy that rewrites Host: the configured public origin.
        assert_eq!(cross_site(&h(&[("origin", "HTTPS://127.0.0.1:8080"), ("host", "10.0.0.5:80")]), &ours), None);
        assert_eq!(
            cross_site(&h(&[("origin", "http://localhost:9.evil"), ("host", "localhost:9")]), &ours),
            Some("Origin")
        );
    }
}
