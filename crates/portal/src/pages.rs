//! The page language ([`Lang`]) and the content negotiation of the API
//! routes that holders' mails link to: a route answers HTML when the
//! request [`wants_html`] (a browser's `Accept: text/html`, or a form
//! post); other clients get JSON as before. The pages themselves are
//! askama templates (`holder_web`).

use axum::http::{header, HeaderMap};

/// The page language (the order's; English without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Ro,
}

impl Lang {
    pub(crate) fn of(code: &str) -> Lang {
        if code.eq_ignore_ascii_case("ro") {
            Lang::Ro
        } else {
            Lang::En
        }
    }

    /// `en` or `ro` text.
    pub(crate) fn t<'a>(self, en: &'a str, ro: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Ro => ro,
        }
    }

    /// The BCP 47 tag (`en`, `ro`).
    pub(crate) fn code(self) -> &'static str {
        self.t("en", "ro")
    }

    /// The language we have for a BCP 47 tag (`ro`, `ro-RO`, `en-GB`, ...).
    pub(crate) fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        [Lang::En, Lang::Ro].into_iter().find(|l| primary.eq_ignore_ascii_case(l.code()))
    }

    /// The language of a page request: the query's `lang=`, else the
    /// `qcert-lang` cookie (set when a page was visited with `lang=`), else
    /// the best of `Accept-Language` we have, else English.
    pub(crate) fn negotiate(headers: &HeaderMap, uri: &axum::http::Uri) -> Lang {
        if let Some(l) = Lang::in_query(uri) {
            return l;
        }
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == LANG_COOKIE)
            .and_then(|(_, v)| Lang::from_tag(v));
        if let Some(l) = cookie {
            return l;
        }
        Lang::accepted(headers).unwrap_or(Lang::En)
    }

    /// The `lang=` of a query, when it names a language we have.
    pub(crate) fn in_query(uri: &axum::http::Uri) -> Option<Lang> {
        let q = uri.query()?;
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang").and_then(|(_, v)| Lang::from_tag(&v))
    }

    /// The highest-weighted `Accept-Language` entry we have (RFC 9110 12.5.4).
    fn accepted(headers: &HeaderMap) -> Option<Lang> {
        let mut best: Option<(u16, Lang)> = None;
        for v in headers.get_all(header::ACCEPT_LANGUAGE).iter().filter_map(|v| v.to_str().ok()) {
            for item in v.split(',') {
                let mut parts = item.split(';');
                let Some(l) = parts.next().and_then(Lang::from_tag) else { continue };
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1000), |q| q.trim().parse::<f32>().ok().map(|q| (q.clamp(0.0, 1.0) * 1000.0) as u16));
                match q {
                    Some(q) if q > 0 && best.is_none_or(|(b, _)| q > b) => best = Some((q, l)),
                    _ => {}
                }
            }
        }
        best.map(|(_, l)| l)
    }

    /// A date as people write it (UTC).
    pub(crate) fn date(self, unix: i64) -> String {
        let language = match self {
            Lang::En => qcert_notifier::Language::En,
            Lang::Ro => qcert_notifier::Language::Ro,
        };
        time::OffsetDateTime::from_unix_timestamp(unix)
            .map(|t| qcert_notifier::long_date(t, language))
            .unwrap_or_default()
    }
}

/// The cookie that keeps the language a visitor chose (`lang=` in a page's query).
pub(crate) const LANG_COOKIE: &str = "qcert-lang";

fn header_has(headers: &HeaderMap, name: header::HeaderName, needle: &str) -> bool {
    headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).any(|v| v.to_ascii_lowercase().contains(needle))
}

/// A form post (`application/x-www-form-urlencoded`).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    header_has(headers, header::CONTENT_TYPE, "application/x-www-form-urlencoded")
}

/// A browser (it lists `text/html` in Accept) or a form post.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    header_has(headers, header::ACCEPT, "text/html") || is_form(headers)
}

/// The value of field `name` of a urlencoded form body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_language_comes_from_query_then_cookie_then_accept_language() {
        let uri: axum::http::Uri = "/desk?x=1&lang=ro".parse().unwrap();
        let plain: axum::http::Uri = "/desk".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(Lang::negotiate(&h, &plain), Lang::En);
        assert_eq!(Lang::negotiate(&h, &uri), Lang::Ro);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("de-DE, ro;q=0.8, en;q=0.5"));
        assert_eq!(Lang::negotiate(&h, &plain), Lang::Ro);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("ro;q=0.2, en-GB;q=0.9, *;q=0.1"));
        assert_eq!(Lang::negotiate(&h, &plain), Lang::En);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("ro;q=0, fr"));
        assert_eq!(Lang::negotiate(&h, &plain), Lang::En);
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; qcert-lang=ro"));
        assert_eq!(Lang::negotiate(&h, &plain), Lang::Ro);
        let en: axum::http::Uri = "/?lang=en".parse().unwrap();
        assert_eq!(Lang::negotiate(&h, &en), Lang::En);
        let junk: axum::http::Uri = "/?lang=%FF%FE".parse().unwrap();
        assert_eq!(Lang::negotiate(&h, &junk), Lang::Ro);
    }

    #[test]
    fn html_is_for_browsers_and_forms() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        assert!(!wants_html(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"));
        assert!(wants_html(&h));
        let mut f = HeaderMap::new();
        f.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert!(wants_html(&f) && is_form(&f));
        assert_eq!(form_field(b"code=ABCD-EFGH-JK&x=1", "code").as_deref(), Some("ABCD-EFGH-JK"));
        assert_eq!(
            form_field(b"csr=-----BEGIN+CERTIFICATE+REQUEST-----%0Aab", "csr").as_deref(),
            Some("-----BEGIN CERTIFICATE REQUEST-----\nab")
        );
        assert_eq!(form_field(b"%FF%FE=\xff", "code"), None);
    }
}
