//! Static assets compiled into the binary, served at `/static/<name>`.
//! Nothing comes from a CDN. Add a file here and under `static/`.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::AppState;

/// `(name, media type, bytes)`.
const ASSETS: &[(&str, &str, &[u8])] =
    &[("qcert.css", "text/css; charset=utf-8", include_bytes!("../../static/qcert.css"))];

/// The media type and bytes of asset `name`.
pub(crate) fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS.iter().find(|(n, _, _)| *n == name).map(|(_, t, b)| (*t, *b))
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/static/{name}", get(serve))
}

async fn serve(Path(name): Path<String>) -> Response {
    match asset(&name) {
        Some((media_type, bytes)) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
            r
        }
        None => crate::http::Problem::new(StatusCode::NOT_FOUND, "Not found", Some("no such static file".into()))
            .into_response(),
    }
}
