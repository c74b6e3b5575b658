//! The holders' pages (issue 14), on the web foundation ([`crate::web`]).

pub(crate) mod orders;

use axum::Router;

use crate::http::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(orders::router())
}
