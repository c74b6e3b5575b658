//! The holders' pages (issue 14), server-rendered with the web
//! foundation ([`crate::web`]). Holders reach them through the links of
//! their mails (capabilities), or publicly (the order form, the directory).

pub(crate) mod certs;
pub(crate) mod directory;
pub(crate) mod orders;

use axum::Router;

use crate::http::AppState;

/// Every holders' page route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(orders::router()).merge(certs::router()).merge(directory::router())
}
