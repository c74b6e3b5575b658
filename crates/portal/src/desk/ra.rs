//! The RA officers' queue and order pages (`/desk/ra`): paid orders
//! waiting for identity validation, oldest promise first, with the time
//! left of the 24-hour promise (overdue ones marked; a plain reload shows
//! the present). The order page shows what identity validation needs and
//! the order's history (its audit entries), and takes the decisions:
//! approve (the officer types the document number they checked; the core
//! compares it with the order's), reject (the reason is mailed), and the
//! secret delivery (its state, the waiting generation code once, a new
//! link and code). Same core calls as `/api/v1/ra/orders…`
//! (`Orders::queue`, `for_officer`, `approve`, `reject`, `delivery_view`,
//! `take_code`, `reissue_delivery`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::operators::{Operator, Role};
use qcert_ca_core::store::audit::AuditQuery;
use qcert_ca_core::store::orders::OrderRow;
use qcert_ca_core::CaError;
use serde::Deserialize;

use super::common::{span, when};
use super::session::{DeskForm, DeskSession};
use crate::http::AppState;
use crate::web::{self, Chrome};

/// Orders the queue page lists (the oldest promises).
pub(crate) const QUEUE_PAGE: i64 = 200;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/desk/ra", get(queue))
        .route("/desk/ra/orders/{id}", get(order))
        .route("/desk/ra/orders/{id}/approval", post(approve))
        .route("/desk/ra/orders/{id}/rejection", post(reject))
        .route("/desk/ra/orders/{id}/delivery-code", post(take_code))
        .route("/desk/ra/orders/{id}/secret-delivery", post(reissue))
}

/// One queue row.
#[derive(Debug)]
struct QueueLine {
    id: String,
    name: String,
    product: String,
    paid: String,
    due: String,
    left: String,
    overdue: bool,
}

#[derive(Template)]
#[template(path = "desk/ra_queue.html")]
struct QueuePage {
    c: Chrome,
    lines: Vec<QueueLine>,
    waiting: i64,
    overdue: i64,
    now: String,
}

/// The time left of an order's promise at `now`: (words, overdue).
fn left_of(c: &Chrome, now: i64, due: Option<i64>) -> (String, bool) {
    match due {
        Some(d) if d < now => (c.ts("desk-ra-overdue-by", "time", &span(c, now - d)), true),
        Some(d) => (span(c, d - now), false),
        None => (String::new(), false),
    }
}

/// Render the queue (the bench times it too).
pub(crate) async fn queue_page(state: &AppState, op: &Operator, c: Chrome) -> Result<Response, CaError> {
    let now = state.ca.clock().now().unix_timestamp();
    let rows = state.orders.queue(op, QUEUE_PAGE).await?;
    let (waiting, overdue) = state.orders.backlog().await?;
    let lines = rows
        .iter()
        .map(|o| {
            let (left, late) = left_of(&c, now, o.identity_due_at);
            QueueLine {
                id: o.id.clone(),
                name: format!("{} {}", o.given_name, o.surname),
                product: o.product.to_ascii_uppercase(),
                paid: o.paid_at.map(when).unwrap_or_default(),
                due: o.identity_due_at.map(when).unwrap_or_default(),
                left,
                overdue: late,
            }
        })
        .collect();
    Ok(web::render(StatusCode::OK, &QueuePage { c, lines, waiting, overdue, now: when(now) }))
}

async fn queue(State(state): State<AppState>, session: DeskSession, uri: Uri) -> Response {
    session.serve(Role::RaOfficer, &uri, async |c| queue_page(&state, &session.operator, c).await).await
}

/// One audit entry of the order's history.
#[derive(Debug)]
struct HistoryLine {
    at: String,
    actor: String,
    action: String,
    outcome: String,
    detail: String,
}

/// What the page says after an action.
#[derive(Debug, Default)]
struct Notice {
    ok: Option<String>,
    /// A generation code, shown once.
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "desk/ra_order.html")]
struct OrderPage {
    c: Chrome,
    o: OrderRow,
    name: String,
    document_type: String,
    paid: String,
    due: String,
    left: String,
    overdue: bool,
    awaiting: bool,
    delivery_state: String,
    delivery_links: usize,
    delivery_wrong: i64,
    code_waiting: bool,
    has_delivery: bool,
    history: Vec<HistoryLine>,
    notice: Notice,
}

async fn order_page(state: &AppState, op: &Operator, c: Chrome, id: &str, notice: Notice) -> Result<Response, CaError> {
    let o = state.orders.for_officer(op, id).await?;
    let now = state.ca.clock().now().unix_timestamp();
    let awaiting = o.state == "awaiting-identity";
    let (left, overdue) = if awaiting { left_of(&c, now, o.identity_due_at) } else { (String::new(), false) };
    let delivery = state.orders.delivery_view(&o.id).await?;
    let q = AuditQuery { subject: Some(&o.id), limit: 100, ..AuditQuery::default() };
    let history = state
        .ca
        .registry()
        .audit_search(&q)
        .await
        .map_err(CaError::from)?
        .into_iter()
        .rev()
        .map(|r| HistoryLine { at: when(r.at), actor: r.actor, action: r.action, outcome: r.outcome, detail: r.detail })
        .collect();
    let document_type = match o.document_type.as_deref() {
        Some("passport") => c.t("desk-doc-passport"),
        Some("id-card") => c.t("desk-doc-id-card"),
        Some(other) => other.to_owned(),
        None => c.t("desk-not-given"),
    };
    let page = OrderPage {
        name: format!("{} {}", o.given_name, o.surname),
        document_type,
        paid: o.paid_at.map(when).unwrap_or_default(),
        due: o.identity_due_at.map(when).unwrap_or_default(),
        left,
        overdue,
        awaiting,
        delivery_state: c.t(&format!("desk-delivery-{}", delivery.state)),
        delivery_links: delivery.links,
        delivery_wrong: delivery.wrong_codes,
        code_waiting: delivery.code_waiting,
        has_delivery: delivery.links > 0,
        history,
        notice,
        o,
        c,
    };
    Ok(web::render(StatusCode::OK, &page))
}

async fn order(State(state): State<AppState>, session: DeskSession, uri: Uri, Path(id): Path<String>) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| order_page(&state, &session.operator, c, &id, Notice::default()).await)
        .await
}

#[derive(Debug, Deserialize)]
struct ApprovalForm {
    #[serde(default)]
    document_number: String,
}

async fn approve(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<String>,
    DeskForm(session, form): DeskForm<ApprovalForm>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            let document = DocumentNumber::parse(&form.document_number)?;
            state.orders.approve(&session.operator, &id, &document).await?;
            let notice = Notice { ok: Some(c.t("desk-ra-approved")), code: None };
            order_page(&state, &session.operator, c.clone(), &id, notice).await
        })
        .await
}

#[derive(Debug, Deserialize)]
struct RejectionForm {
    #[serde(default)]
    reason: String,
}

async fn reject(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<String>,
    DeskForm(session, form): DeskForm<RejectionForm>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            state.orders.reject(&session.operator, &id, &form.reason).await?;
            let notice = Notice { ok: Some(c.t("desk-ra-rejected")), code: None };
            order_page(&state, &session.operator, c.clone(), &id, notice).await
        })
        .await
}

#[derive(Debug, Deserialize)]
struct Empty {}

/// The waiting generation code, shown once (the page is `no-store`).
async fn take_code(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<String>,
    DeskForm(session, _): DeskForm<Empty>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            state.orders.for_officer(&session.operator, &id).await?;
            let code = state.orders.take_code(&session.operator.actor(), &id).await?;
            let notice = Notice { ok: Some(c.t("desk-ra-code-taken")), code: Some(code) };
            order_page(&state, &session.operator, c.clone(), &id, notice).await
        })
        .await
}

/// A new delivery link (mailed to the holder) and its code (shown once).
async fn reissue(
    State(state): State<AppState>,
    uri: Uri,
    Path(id): Path<String>,
    DeskForm(session, _): DeskForm<Empty>,
) -> Response {
    session
        .serve(Role::RaOfficer, &uri, async |c| {
            let code = state.orders.reissue_delivery(&session.operator, &id).await?;
            let notice = Notice { ok: Some(c.t("desk-ra-reissued")), code: Some(code) };
            order_page(&state, &session.operator, c.clone(), &id, notice).await
        })
        .await
}
