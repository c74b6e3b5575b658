//! The holders' pages (issue 14), server-rendered with the web
//! foundation ([`crate::web`]). Holders reach them through the links of
//! their mails (capabilities), or publicly (the directory).

pub(crate) mod certs;
pub(crate) mod directory;

use axum::Router;

use crate::http::AppState;

/// Every holders' page route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(certs::router()).merge(directory::router())
}
