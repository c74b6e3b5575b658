//! Our own extractors around axum's: every rejection is a problem document
//! that says what was wrong (and, for JSON, which field) but never echoes
//! what was sent (it may be a password, a code or a capability link).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::http::{body_limit, body_too_large, Problem};

/// A JSON body (`Content-Type: application/json` or `…+json`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Problem::typed(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected application/json",
                Some("send the body as Content-Type: application/json".into()),
            ));
        }
        let ApiBytes(body) = ApiBytes::from_request(req, state).await?;
        parse_json(&body).map(ApiJson)
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parse a JSON document into `T`; a refusal names the field (a path like
/// `holder.email` or `items[2]`) and what was wrong with it: missing,
/// unknown, given twice, wrong type, bad value. serde's own messages quote
/// the value (`invalid type: string "123456"`), so they are never passed on.
#[allow(clippy::result_large_err)] // a Problem is the refusal answer itself, made once per refused request
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if parsed.is_ok() && has_nul_escape(body) {
        // No field takes a NUL (and PostgreSQL text cannot hold one).
        let field = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| nul_path(&v, String::new()));
        let detail = match &field {
            Some(f) => format!("`{f}` holds a NUL character (\\u0000)"),
            None => "a string holds a NUL character (\\u0000)".to_owned(),
        };
        let p =
            Problem::typed(StatusCode::UNPROCESSABLE_ENTITY, "malformed-request", "Malformed request", Some(detail));
        return Err(match field {
            Some(f) => p.with_field(f),
            None => p,
        });
    }
    let e = match parsed {
        Ok(v) => match de.end() {
            Ok(()) => return Ok(v),
            Err(_) => return Err(not_json("there is more after the JSON value")),
        },
        Err(e) => e,
    };
    let inner = e.inner();
    match inner.classify() {
        serde_json::error::Category::Data => {}
        serde_json::error::Category::Eof => return Err(not_json("the JSON body ends too early")),
        _ => {
            let at = if inner.line() > 0 {
                format!(" (line {}, column {})", inner.line(), inner.column())
            } else {
                String::new()
            };
            return Err(not_json(&format!("the body is not valid JSON{at}")));
        }
    }
    let mut path = field_path(e.path());
    let message = without_position(&inner.to_string());
    let expected = |m: &str| m.rfind(", expected ").and_then(|i| m.get(i + ", expected ".len()..)).map(str::to_owned);
    let (what, hint) = if let Some(name) = quoted_after(&message, "missing field `") {
        push_field(&mut path, name);
        ("is missing", None)
    } else if let Some(name) = quoted_after(&message, "duplicate field `") {
        push_field(&mut path, name);
        ("is given more than once", None)
    } else if let Some(name) = quoted_after(&message, "unknown field `") {
        // (The path already ends with the unknown key.)
        // Only after a name that passed `is_name` is the rest serde's own text.
        let known = (!name.is_empty())
            .then(|| message.strip_prefix(&format!("unknown field `{name}`, expected ")))
            .flatten()
            .map(|k| format!("expected {k}"));
        ("is not a known field", known)
    } else if message.starts_with("invalid type: ") {
        ("has the wrong type", expected(&message).map(|x| format!("expected {x}")))
    } else if message.starts_with("invalid length ") {
        ("has the wrong number of elements", expected(&message).map(|x| format!("expected {x}")))
    } else if message.starts_with("invalid value: ") || message.starts_with("unknown variant `") {
        ("has a bad value", expected(&message).map(|x| format!("expected {x}")))
    } else {
        ("has a bad value", None)
    };
    let field = if path.is_empty() { "the JSON body".to_owned() } else { format!("`{path}`") };
    let detail = match hint {
        Some(h) => format!("{field} {what}: {h} (see /openapi.json)"),
        None => format!("{field} {what} (see /openapi.json)"),
    };
    let mut p =
        Problem::typed(StatusCode::UNPROCESSABLE_ENTITY, "malformed-request", "Malformed request", Some(detail));
    if !path.is_empty() {
        p = p.with_field(path);
    }
    Err(p)
}

fn not_json(detail: &str) -> Problem {
    Problem::typed(StatusCode::BAD_REQUEST, "malformed-request", "Malformed request", Some(detail.to_owned()))
}

/// serde_json appends ` at line L column C`.
fn without_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message.get(i..).is_some_and(|t| t.contains(" column ")) => {
            message.get(..i).unwrap_or(message).to_owned()
        }
        _ => message.to_owned(),
    }
}

/// A field name between backticks after `prefix`, if it looks like one
/// (the name of an unknown field is the sender's text: shown only if short
/// and made of name characters).
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    let name = rest.split('`').next()?;
    is_name(name).then_some(name).or(Some(""))
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn push_field(path: &mut String, name: &str) {
    let name = if name.is_empty() { "?" } else { name };
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                push_field(&mut out, if is_name(key) { key } else { "?" });
            }
            Segment::Unknown => push_field(&mut out, "?"),
        }
    }
    out
}

/// `%00`..`%1F` or `%7F` in a URI part (raw control bytes never get past
/// hyper's parser).
fn has_encoded_control(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| {
        let [b'%', h, l] = w else { return false };
        let hex = |b: &u8| char::from(*b).to_digit(16);
        matches!((hex(h), hex(l)), (Some(h), Some(l)) if h < 2 || (h == 7 && l == 15))
    })
}

/// The path (`holder.email`, `items[2]`) of the first string (or key) holding a NUL.
fn nul_path(v: &serde_json::Value, at: String) -> Option<String> {
    match v {
        serde_json::Value::String(s) => s.contains('\0').then_some(at),
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| nul_path(item, format!("{at}[{i}]")))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
            let here = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            if k.contains('\0') {
                Some(if at.is_empty() { "(a key)".to_owned() } else { format!("{at}.(a key)") })
            } else {
                nul_path(item, here)
            }
        }),
        _ => None,
    }
}

/// A `\u0000` escape inside a JSON text (not an escaped backslash before `u0000`).
fn has_nul_escape(body: &[u8]) -> bool {
    let mut backslashes = 0usize;
    for (i, b) in body.iter().enumerate() {
        if *b == b'\\' {
            backslashes += 1;
            continue;
        }
        if backslashes % 2 == 1 && *b == b'u' && body.get(i + 1..i + 5).is_some_and(|h| h == b"0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// A raw body, at most `http::body_limit` bytes for its path.
#[derive(Debug)]
pub struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let timeout = req.extensions().get::<crate::server::BodyTimeout>().map(|t| t.0);
        let limit = body_limit(req.uri().path());
        let read = Bytes::from_request(req, state);
        let read = match timeout {
            Some(t) => match tokio::time::timeout(t, read).await {
                Ok(r) => r,
                Err(_) => {
                    let detail = format!("the body did not arrive within {} s", t.as_secs());
                    // The rest of the body is not waited for: the connection closes.
                    let p = Problem::typed(
                        StatusCode::REQUEST_TIMEOUT,
                        "body-timeout",
                        "Request body too slow",
                        Some(detail),
                    );
                    return Err(p.closing());
                }
            },
            None => read.await,
        };
        match read {
            Ok(b) => Ok(ApiBytes(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(body_too_large(limit)),
            Err(_) => Err(Problem::typed(
                StatusCode::BAD_REQUEST,
                "malformed-request",
                "Malformed request",
                Some("the request body could not be read to its end".into()),
            )),
        }
    }
}

/// Path parameters; a segment that is not UTF-8 once percent-decoded (or
/// does not fit the parameter) is a problem document.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::PathRejection;
        if has_encoded_control(parts.uri.path()) {
            // (PostgreSQL cannot even compare a text with a NUL in it.)
            let detail = "a path segment holds a control character".to_owned();
            return Err(Problem::typed(StatusCode::BAD_REQUEST, "malformed-request", "Malformed path", Some(detail)));
        }
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                use axum::extract::path::ErrorKind;
                let detail = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { .. } => {
                        "a path segment is not valid UTF-8 once percent-decoded"
                    }
                    _ => "a path segment does not have the expected form",
                };
                Err(Problem::typed(StatusCode::BAD_REQUEST, "malformed-request", "Malformed path", Some(detail.into())))
            }
            Err(_) => Err(Problem::typed(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", None)),
        }
    }
}

/// A query string; a malformed one, a repeated parameter, or a parameter of
/// the wrong form is a problem document naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_control(parts.uri.query().unwrap_or_default()) {
            let detail = "a query parameter holds a control character".to_owned();
            return Err(Problem::typed(StatusCode::BAD_REQUEST, "bad-query", "Bad query string", Some(detail)));
        }
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rejection) => {
                // "Failed to deserialize query string: duplicate field `email`"
                let text = rejection.body_text();
                let message = text.split_once(": ").map_or(text.as_str(), |(_, m)| m);
                let detail = if let Some(name) = quoted_after(message, "duplicate field `").filter(|n| !n.is_empty()) {
                    format!("the parameter `{name}` is given more than once")
                } else if let Some(name) = quoted_after(message, "missing field `").filter(|n| !n.is_empty()) {
                    format!("the parameter `{name}` is missing")
                } else if let Some(name) = quoted_after(message, "unknown field `").filter(|n| !n.is_empty()) {
                    format!("the parameter `{name}` is not known")
                } else {
                    "the query string is malformed or a parameter has the wrong form".to_owned()
                };
                Err(Problem::typed(StatusCode::BAD_REQUEST, "bad-query", "Bad query string", Some(detail)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Holder {
        email: String,
        years: u32,
        #[serde(default)]
        tags: Vec<u8>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Form {
        holder: Holder,
        product: Product,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Product {
        Token,
        Cloud,
    }

    fn refusal(body: &str) -> (u16, String, Option<String>) {
        let p = parse_json::<Form>(body.as_bytes()).unwrap_err();
        let json = serde_json::to_value(&p).unwrap();
        (p.status, p.detail.clone().unwrap_or_default(), json.get("field").and_then(|f| f.as_str()).map(str::to_owned))
    }

    #[test]
    fn nul_characters_and_encoded_controls_are_refused() {
        let (status, detail, field) = refusal(r#"{"holder":{"email":"a\u0000b","years":1},"product":"Token"}"#);
        assert_eq!(status, 422, "{detail}");
        assert_eq!(field.as_deref(), Some("holder.email"), "{detail}");
        assert!(parse_json::<Form>(br#"{"holder":{"email":"a\\u0000b","years":1},"product":"Token"}"#).is_ok());
        assert!(has_encoded_control("/a%00b") && has_encoded_control("x=%1f") && has_encoded_control("%7F"));
        assert!(!has_encoded_control("/a%20b%FF%2F") && !has_encoded_control("%") && !has_encoded_control("%0"));
    }

    #[test]
    fn json_refusals_name_the_field_and_never_the_value() {
        let ok = r#"{"holder":{"email":"a@b.ro","years":1},"product":"Token"}"#;
        assert!(parse_json::<Form>(ok.as_bytes()).is_ok());
        let cases = [
            (r#"{"holder":{"years":1},"product":"Token"}"#, "holder.email", "is missing"),
            (r#"{"holder":{"email":"a@b.ro","years":"secret-1"},"product":"Token"}"#, "holder.years", "wrong type"),
            (r#"{"holder":{"email":"a@b.ro","years":-7777},"product":"Token"}"#, "holder.years", "bad value"),
            (
                r#"{"holder":{"email":"a@b.ro","years":1,"tags":[1,"secret-2"]},"product":"Token"}"#,
                "holder.tags[1]",
                "wrong type",
            ),
            (
                r#"{"holder":{"email":"a@b.ro","years":1,"pin":"secret-3"},"product":"Token"}"#,
                "holder.pin",
                "not a known field",
            ),
            (r#"{"holder":{"email":"a@b.ro","years":1},"product":"secret-4"}"#, "product", "bad value"),
            (
                r#"{"holder":{"email":"a@b.ro","email":"secret-5","years":1},"product":"Token"}"#,
                "holder.email",
                "more than once",
            ),
            (r#"{"holder":{"email":"a@b.ro","years":1},"product":"Token","secret-6 x":1}"#, "?", "not a known field"),
        ];
        for (body, field, what) in cases {
            let (status, detail, named) = refusal(body);
            assert_eq!(status, 422, "{body}: {detail}");
            assert_eq!(named.as_deref(), Some(field), "{body}: {detail}");
            assert!(detail.contains(&format!("`{field}`")) && detail.contains(what), "{body}: {detail}");
            assert!(!detail.contains("secret") && !detail.contains("7777"), "{body}: {detail}");
        }
        let (status, detail, _) = refusal(r#"{"holder": {"email": "secret-7"#);
        assert_eq!(status, 400, "{detail}");
        assert!(!detail.contains("secret"), "{detail}");
        assert_eq!(refusal(r#"{"holder" "secret-8"}"#).0, 400);
        assert_eq!(refusal(r#"{"holder":{"email":"a@b.ro","years":1},"product":"Token"} x"#).0, 400);
        let (status, detail, field) = refusal(r#""secret-9""#);
        assert_eq!((status, field), (422, None), "{detail}");
        assert!(detail.contains("the JSON body has the wrong type") && !detail.contains("secret"), "{detail}");
    }
}
