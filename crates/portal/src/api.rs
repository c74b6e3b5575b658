//! The lifecycle API for operators and holders: hotline and in-person
//! revocation, revocation passwords, signed self-revocation, operator
//! accounts and the audit log. Operators authenticate with
//! `Authorization: Bearer <token>`; every handler checks the role its action
//! needs before it looks at the input.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use qcert_ca_core::clock::rfc3339;
use qcert_ca_core::desk::{DocumentNumber, RevocationPassword};
use qcert_ca_core::operators::{Operator, Role};
use qcert_ca_core::{audit, Reason, Revocation};
use serde::{Deserialize, Serialize};

use crate::http::{ApiError, AppState, Problem};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/hotline/revocations", post(hotline_revoke))
        .route("/api/v1/ra/holder-certificates", post(holder_certificates))
        .route("/api/v1/ra/certificates/{serial}/revocation", post(in_person_revoke))
        .route("/api/v1/ra/certificates/{serial}/revocation-password", post(change_password))
        .route("/api/v1/certificates/{serial}/revocation", post(self_revoke))
        .route("/api/v1/admin/operators", get(list_operators).post(add_operator))
        .route("/api/v1/admin/operators/{name}", delete(revoke_operator))
        .route("/api/v1/admin/audit", get(verify_audit))
}

/// The operator behind the request's bearer token.
#[derive(Debug)]
pub struct Authenticated(pub Operator);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthenticated = |detail: &str| {
            let mut r = Problem::typed(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Operator authentication required",
                Some(detail.to_owned()),
            )
            .into_response();
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"qcert\""));
            r
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return Err(unauthenticated("send Authorization: Bearer <operator token>"));
        };
        match state.operators.authenticate(token).await {
            Ok(Some(op)) => Ok(Authenticated(op)),
            Ok(None) => Err(unauthenticated("the operator token is unknown or revoked")),
            Err(e) => Err(ApiError(e).into_response()),
        }
    }
}

pub use crate::extract::ApiJson;
use crate::extract::{ApiBytes, ApiPath};

/// A role an operator route needs ([`Acting`]).
pub trait NeedsRole {
    const ROLE: Role;
}

/// The admin role.
#[derive(Debug)]
pub struct Admin;
/// The RA officer role.
#[derive(Debug)]
pub struct RaOfficer;
/// The hotline agent role.
#[derive(Debug)]
pub struct HotlineAgent;

impl NeedsRole for Admin {
    const ROLE: Role = Role::Admin;
}
impl NeedsRole for RaOfficer {
    const ROLE: Role = Role::RaOfficer;
}
impl NeedsRole for HotlineAgent {
    const ROLE: Role = Role::HotlineAgent;
}

/// The operator behind the bearer token, holding role `R`: put it first
/// among a handler's extractors, so a wrong role is 403 before the path,
/// query or body is looked at (401 without a valid token).
#[derive(Debug)]
pub struct Acting<R>(pub Operator, pub std::marker::PhantomData<R>);

impl<R: NeedsRole + Send> FromRequestParts<AppState> for Acting<R> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(op) = Authenticated::from_request_parts(parts, state).await?;
        op.require(R::ROLE).map_err(|e| ApiError(e).into_response())?;
        Ok(Acting(op, std::marker::PhantomData))
    }
}

fn parse_time(field: &'static str, value: Option<&str>) -> Result<Option<time::OffsetDateTime>, ApiError> {
    value
        .map(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339).map_err(|_| {
                ApiError(qcert_ca_core::CaError::InvalidField {
                    field,
                    reason: "an RFC 3339 time like 2026-11-25T10:00:00Z".into(),
                })
            })
        })
        .transpose()
}

#[derive(Debug, Serialize)]
struct Revoked {
    serial: String,
    reason: &'static str,
    revoked_at: String,
    /// False when it had been revoked before: the first revocation stands.
    newly_revoked: bool,
}

impl From<&Revocation> for Revoked {
    fn from(r: &Revocation) -> Self {
        Revoked {
            serial: r.record.serial.clone(),
            reason: Reason::from_code(r.record.reason).map_or("unspecified", Reason::name),
            revoked_at: rfc3339(r.record.revoked_at),
            newly_revoked: r.newly_revoked,
        }
    }
}

#[derive(Debug, Serialize)]
struct RevokedList {
    revoked: Vec<Revoked>,
}

/// Hotline request. No `Debug`: it holds the password.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotlineRequest {
    document_number: String,
    revocation_password: String,
    #[serde(default = "default_hotline_reason")]
    reason: String,
}

fn default_hotline_reason() -> String {
    "keyCompromise".into()
}

/// `POST /api/v1/hotline/revocations` (hotline agent).
async fn hotline_revoke(
    Acting(op, _): Acting<HotlineAgent>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<HotlineRequest>,
) -> Result<Json<RevokedList>, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let password = RevocationPassword::parse(&req.revocation_password)?;
    let reason = Reason::parse(&req.reason)?;
    let done = state.desk.hotline_revoke(&op, &document, &password, reason).await?;
    Ok(Json(RevokedList { revoked: done.iter().map(Revoked::from).collect() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentRequest {
    document_number: String,
}

#[derive(Debug, Serialize)]
struct HolderCertificateItem {
    serial: String,
    subject: String,
    not_after: String,
    status: &'static str,
    hotline_locked: bool,
}

/// `POST /api/v1/ra/holder-certificates` (RA officer): the certificates of
/// the holder whose ID document the officer holds.
async fn holder_certificates(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<DocumentRequest>,
) -> Result<Json<Vec<HolderCertificateItem>>, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let found = state.desk.holder_certificates(&op, &document).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|c| HolderCertificateItem {
                serial: c.serial,
                subject: c.subject,
                not_after: rfc3339(c.not_after),
                status: c.status,
                hotline_locked: c.hotline_locked,
            })
            .collect(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InPersonRevocation {
    document_number: String,
    reason: String,
    #[serde(default)]
    invalidity_date: Option<String>,
}

/// `POST /api/v1/ra/certificates/{serial}/revocation` (RA officer, holder present).
async fn in_person_revoke(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    ApiJson(req): ApiJson<InPersonRevocation>,
) -> Result<Json<Revoked>, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let reason = Reason::parse(&req.reason)?;
    let invalidity = parse_time("invalidity_date", req.invalidity_date.as_deref())?;
    let r = state.desk.in_person_revoke(&op, &serial, &document, reason, invalidity).await?;
    Ok(Json(Revoked::from(&r)))
}

#[derive(Serialize)]
struct NewPassword {
    serial: String,
    /// Shown once, to be handed to the holder; not stored in clear.
    revocation_password: String,
}

/// `POST /api/v1/ra/certificates/{serial}/revocation-password` (RA officer, holder present).
async fn change_password(
    Acting(op, _): Acting<RaOfficer>,
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    ApiJson(req): ApiJson<DocumentRequest>,
) -> Result<Response, ApiError> {
    let document = DocumentNumber::parse(&req.document_number)?;
    let password = state.desk.change_password(&op, &serial, &document).await?;
    let serial = qcert_ca_core::ca::normalize_serial(&serial)?;
    let body = NewPassword { serial, revocation_password: password.expose().to_owned() };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `POST /api/v1/certificates/{serial}/revocation`: the holder's own request,
/// a CMS SignedData (DER or PEM) made with the certificate's key.
async fn self_revoke(
    State(state): State<AppState>,
    ApiPath(serial): ApiPath<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<Revoked>, Response> {
    if body.is_empty() {
        let detail = "send the CMS SignedData made by `openssl cms -sign` as the body".to_owned();
        return Err(
            Problem::typed(StatusCode::BAD_REQUEST, "malformed-request", "Empty body", Some(detail)).into_response()
        );
    }
    let r = state.desk.self_revoke(&serial, &body).await.map_err(|e| ApiError(e).into_response())?;
    Ok(Json(Revoked::from(&r)))
}

#[derive(Debug, Serialize)]
struct OperatorItem {
    name: String,
    role: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
}

/// `GET /api/v1/admin/operators` (admin).
async fn list_operators(_: Acting<Admin>, State(state): State<AppState>) -> Result<Json<Vec<OperatorItem>>, ApiError> {
    let list = state.operators.list().await?;
    Ok(Json(
        list.into_iter()
            .map(|a| OperatorItem {
                name: a.name,
                role: a.role,
                created_at: rfc3339(a.created_at),
                revoked_at: a.revoked_at.map(rfc3339),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOperator {
    name: String,
    role: String,
}

#[derive(Serialize)]
struct CreatedOperator {
    name: String,
    role: &'static str,
    /// Shown once; only its hash is stored.
    token: String,
}

/// `POST /api/v1/admin/operators` (admin): the new operator's token, once.
async fn add_operator(
    Acting(op, _): Acting<Admin>,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<NewOperator>,
) -> Result<Response, ApiError> {
    let role = Role::parse(&req.role)?;
    let token = state.operators.add(&op.actor(), &req.name, role).await?;
    let body =
        CreatedOperator { name: req.name.trim().to_owned(), role: role.as_str(), token: token.expose().to_owned() };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// `DELETE /api/v1/admin/operators/{name}` (admin): revoke the token.
async fn revoke_operator(
    Acting(op, _): Acting<Admin>,
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    state.operators.revoke(&op.actor(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
struct AuditState {
    intact: bool,
    entries: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_broken_entry: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// `GET /api/v1/admin/audit` (admin): verify the audit chain.
async fn verify_audit(_: Acting<Admin>, State(state): State<AppState>) -> Result<Json<AuditState>, ApiError> {
    Ok(Json(match audit::verify(state.ca.registry()).await? {
        Ok(v) => {
            AuditState { intact: true, entries: v.entries, head: Some(v.head), first_broken_entry: None, problem: None }
        }
        Err(b) => AuditState {
            intact: false,
            entries: b.seq - 1,
            head: None,
            first_broken_entry: Some(b.seq),
            problem: Some(b.reason),
        },
    }))
}
