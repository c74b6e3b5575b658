//! The admins' summary (`/desk/admin/metrics`): the identity queue and how
//! much of it is past the 24-hour promise, the age and next update of the
//! newest CRLs, the hotline's password checks and refunds due — the same
//! figures as `GET /metrics` (`Orders::backlog`, `Ca::current_crl`,
//! `RevocationDesk::password_checks`, `Orders::refunds_due_count`).

use askama::Template;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use qcert_ca_core::operators::Role;
use qcert_ca_core::{CaError, CrlScope};

use super::common::{span, when};
use super::session::DeskSession;
use crate::http::AppState;
use crate::web::{self, Chrome};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/desk/admin/metrics", get(page))
}

#[derive(Debug)]
struct CrlLine {
    name: String,
    issued: String,
    age: String,
    next: String,
    late: bool,
    entries: i64,
}

#[derive(Template)]
#[template(path = "desk/metrics.html")]
struct MetricsPage {
    c: Chrome,
    waiting: i64,
    overdue: i64,
    crls: Vec<CrlLine>,
    checks: u64,
    refunds: i64,
    now: String,
}

async fn page(State(state): State<AppState>, session: DeskSession, uri: Uri) -> Response {
    session.serve(Role::Admin, &uri, async |c| render(&state, c).await).await
}

async fn render(state: &AppState, c: Chrome) -> Result<Response, CaError> {
    let now = state.ca.clock().now().unix_timestamp();
    let (waiting, overdue) = state.orders.backlog().await?;
    let mut crls = Vec::new();
    for (scope, id) in [(CrlScope::Issuing, "desk-metrics-crl-issuing"), (CrlScope::Root, "desk-metrics-crl-root")] {
        if let Some(crl) = state.ca.current_crl(scope).await? {
            crls.push(CrlLine {
                name: c.t(id),
                issued: when(crl.this_update),
                age: span(&c, (now - crl.this_update).max(0)),
                next: when(crl.next_update),
                late: crl.next_update < now,
                entries: crl.entries,
            });
        }
    }
    let refunds = state.orders.refunds_due_count().await?;
    let page = MetricsPage { waiting, overdue, crls, checks: state.desk.password_checks(), refunds, now: when(now), c };
    Ok(web::render(StatusCode::OK, &page))
}
