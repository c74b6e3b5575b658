//! Remote signing over the Cloud Signature Consortium API: `/csc/v1/…` and
//! `/csc/v2/…`, one set of handlers, both field spellings (v1 `hash`,
//! `hashAlgo`, `OTP`, `PIN`; v2 `hashes`, `hashAlgorithmOID`, `authData`).
//! The rules are in `qcert_ca_core::csc`; this module only translates.
//! Errors are CSC's `{"error", "error_description"}` with a 4xx status (a
//! 5xx never shows its cause), never echoing input.
//!
//! Also `PUT /api/v1/orders/{token}/signing-password` (problem+json like
//! the rest of `/api/v1`): the holder sets the signing password (the first
//! factor of `auth/login`) with a code from the authenticator.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use base64::Engine as _;
use qcert_ca_core::csc::{AuthorizeRequest, Credential, SignRequest, MAX_HASHES_PER_SAD};
use qcert_ca_core::store::orders::OrderRow;
use qcert_ca_core::CaError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{ApiJson, ApiPath};
use crate::http::{ApiError, AppState};

const METHODS: [&str; 7] = [
    "auth/login",
    "auth/revoke",
    "credentials/list",
    "credentials/info",
    "credentials/authorize",
    "signatures/signHash",
    "info",
];

pub(crate) fn routes() -> Router<AppState> {
    let mut r = Router::new().route("/api/v1/orders/{token}/signing-password", put(set_password).post(set_password));
    for v in ["v1", "v2"] {
        r = r
            .route(&format!("/csc/{v}/info"), post(info).get(info))
            .route(&format!("/csc/{v}/auth/login"), post(login))
            .route(&format!("/csc/{v}/auth/revoke"), post(revoke))
            .route(&format!("/csc/{v}/credentials/list"), post(list))
            .route(&format!("/csc/{v}/credentials/info"), post(credential_info))
            .route(&format!("/csc/{v}/credentials/authorize"), post(authorize))
            .route(&format!("/csc/{v}/signatures/signHash"), post(sign_hash));
    }
    r
}

/// A CSC error answer.
#[derive(Debug)]
pub struct CscError {
    status: StatusCode,
    error: &'static str,
    description: String,
    retry_after: Option<u64>,
}

impl CscError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> CscError {
        CscError { status, error, description: description.into(), retry_after: None }
    }

    fn bad(description: impl Into<String>) -> CscError {
        CscError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
}

impl From<CaError> for CscError {
    fn from(e: CaError) -> Self {
        let text = e.to_string();
        match e {
            CaError::InvalidField { .. } | CaError::InvalidInput(_) => CscError::bad(text),
            CaError::NotFound(_) | CaError::UnknownSerial(_) => {
                CscError::bad(format!("invalid parameter credentialID: {text}"))
            }
            CaError::Forbidden(_) => CscError::new(StatusCode::UNAUTHORIZED, "invalid_token", text),
            CaError::Conflict(_) => CscError::bad(text),
            CaError::SignatureRefused(_) => CscError::bad(text),
            CaError::AuthenticatorLocked => CscError::new(StatusCode::FORBIDDEN, "access_denied", text),
            CaError::RateLimited { retry_after_secs } => CscError {
                retry_after: Some(retry_after_secs),
                ..CscError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", text)
            },
            other => {
                tracing::error!(error = %other, "CSC request failed");
                CscError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal error")
            }
        }
    }
}

impl IntoResponse for CscError {
    fn into_response(self) -> Response {
        let mut resp =
            (self.status, Json(json!({"error": self.error, "error_description": self.description}))).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

fn ok(v: Value) -> Response {
    let mut resp = Json(v).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A JSON body, or `{}` when empty; never echoed in the refusal.
fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, CscError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a field has the wrong type or value",
            _ => "the body is not a JSON object",
        };
        CscError::bad(format!("malformed request: {what}"))
    })
}

fn v2(uri: &Uri) -> bool {
    uri.path().starts_with("/csc/v2/")
}

fn bearer(headers: &HeaderMap) -> Result<&str, CscError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| CscError::new(StatusCode::UNAUTHORIZED, "invalid_token", "send the access token of auth/login"))
}

async fn holder(state: &AppState, headers: &HeaderMap) -> Result<OrderRow, CscError> {
    let token = bearer(headers)?;
    Ok(state.csc.session(token).await?)
}

/// `info`: the service and the methods it offers.
async fn info(State(state): State<AppState>, uri: Uri) -> Response {
    let base = state.orders.base();
    ok(json!({
        "specs": if v2(&uri) { "2.0.0.2" } else { "1.0.4.0" },
        "name": "qcert remote signing",
        "logo": format!("{base}/favicon.ico"),
        "region": "RO",
        "lang": "en-US",
        "description": "Qualified electronic signatures with CLOUD certificates: the holder's key stays in the \
                        CA's HSM; each authorization needs a code from the holder's authenticator.",
        "authType": ["basic"],
        "methods": METHODS,
    }))
}

/// `auth/login`: HTTP Basic with the order id as user and the signing password.
async fn login(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, CscError> {
    let wrong = || CscError::new(StatusCode::UNAUTHORIZED, "invalid_request", "send HTTP Basic credentials");
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .ok_or_else(wrong)?;
    let decoded =
        zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(basic.trim()).map_err(|_| wrong())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| wrong())?;
    let (user, password) = text.split_once(':').ok_or_else(wrong)?;
    let (token, expires_in) = state.csc.login(user, password).await.map_err(|e| match e {
        CaError::Forbidden(_) => {
            CscError::new(StatusCode::UNAUTHORIZED, "authentication_error", "wrong user or password")
        }
        other => other.into(),
    })?;
    Ok(ok(json!({"access_token": token.as_str(), "token_type": "Bearer", "expires_in": expires_in})))
}

/// `auth/revoke`: end the session of the bearer token.
async fn revoke(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, CscError> {
    let token = bearer(&headers)?;
    state.csc.logout(token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, CscError> {
    let order = holder(&state, &headers).await?;
    let ids = state.csc.credentials(&order).await?;
    Ok(ok(json!({"credentialIDs": ids})))
}

#[derive(Debug, Deserialize)]
struct InfoBody {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    /// `none`, `single` (default) or `chain`.
    certificates: Option<String>,
    #[serde(rename = "certInfo")]
    cert_info: Option<bool>,
}

fn generalized(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[year][month][day][hour][minute][second]Z")).ok())
        .unwrap_or_default()
}

fn credential_view(c: &Credential, q: &InfoBody, v2: bool) -> Value {
    let b64 = |d: &Vec<u8>| base64::engine::general_purpose::STANDARD.encode(d);
    let certificates: Vec<String> = match q.certificates.as_deref() {
        Some("none") => vec![],
        Some("chain") => c.chain.iter().map(b64).collect(),
        _ => c.chain.first().map(b64).into_iter().collect(),
    };
    let mut cert = serde_json::Map::new();
    cert.insert("status".into(), json!(c.status));
    cert.insert("certificates".into(), json!(certificates));
    if q.cert_info == Some(true) {
        cert.insert("issuerDN".into(), json!(c.issuer_dn));
        cert.insert("serialNumber".into(), json!(c.serial));
        cert.insert("subjectDN".into(), json!(c.subject_dn));
        cert.insert("validFrom".into(), json!(generalized(c.not_before)));
        cert.insert("validTo".into(), json!(generalized(c.not_after)));
    }
    let mut key = serde_json::Map::new();
    key.insert("status".into(), json!(if c.status == "valid" { "enabled" } else { "disabled" }));
    key.insert("algo".into(), json!(c.algorithm_oids()));
    key.insert("len".into(), json!(c.key_bits()));
    if let Some(curve) = c.curve_oid() {
        key.insert("curve".into(), json!(curve));
    }
    let otp = json!({
        "presence": "true",
        "type": "offline",
        "ID": "OTP",
        "provider": "qcert",
        "format": "N",
        "label": "Authenticator code",
        "description": "the 6 digits the holder's authenticator app shows now (TOTP, RFC 6238)",
    });
    let mut v = serde_json::Map::new();
    v.insert("description".into(), json!("CLOUD qualified certificate; key in the CA's HSM"));
    v.insert("key".into(), Value::Object(key));
    v.insert("cert".into(), Value::Object(cert));
    v.insert("authMode".into(), json!("explicit"));
    v.insert("PIN".into(), json!({"presence": "false"}));
    v.insert("OTP".into(), otp);
    v.insert("SCAL".into(), json!("2"));
    v.insert("multisign".into(), json!(MAX_HASHES_PER_SAD));
    v.insert("lang".into(), json!("en-US"));
    if v2 {
        v.insert(
            "auth".into(),
            json!({
                "mode": "explicit",
                "expression": "OTP",
                "objects": [{"type": "OTP", "id": "OTP", "format": "N", "label": "Authenticator code"}],
            }),
        );
    }
    Value::Object(v)
}

async fn credential_info(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, CscError> {
    let order = holder(&state, &headers).await?;
    let q: InfoBody = body(&bytes)?;
    let id = q.credential_id.as_deref().ok_or_else(|| CscError::bad("missing credentialID"))?;
    let c = state.csc.credential(&order, id).await?;
    Ok(ok(credential_view(&c, &q, v2(&uri))))
}

#[derive(Debug, Deserialize)]
struct AuthData {
    id: Option<String>,
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AuthorizeBody {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "numSignatures")]
    num_signatures: Option<u64>,
    #[serde(flatten)]
    hashes: Hashes,
    #[serde(rename = "OTP")]
    otp: Option<String>,
    #[serde(rename = "authData")]
    auth_data: Option<Vec<AuthData>>,
}

/// The hashes and their algorithm, in either spelling: v1 `hash`/`hashAlgo`
/// (which pyHanko sends even to /csc/v2/) or v2 `hashes`/`hashAlgorithmOID`.
#[derive(Debug, Deserialize)]
struct Hashes {
    hash: Option<Vec<String>>,
    hashes: Option<Vec<String>>,
    #[serde(rename = "hashAlgo")]
    hash_algo: Option<String>,
    #[serde(rename = "hashAlgorithmOID")]
    hash_algorithm_oid: Option<String>,
}

impl Hashes {
    fn list(&self) -> Option<&Vec<String>> {
        self.hash.as_ref().or(self.hashes.as_ref())
    }

    fn algorithm(&self) -> Option<&str> {
        self.hash_algo.as_deref().or(self.hash_algorithm_oid.as_deref())
    }
}

impl AuthorizeBody {
    fn otp(&self) -> Option<&str> {
        self.otp.as_deref().or_else(|| {
            self.auth_data.as_ref()?.iter().find(|a| a.id.as_deref() == Some("OTP")).and_then(|a| a.value.as_deref())
        })
    }
}

async fn authorize(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Result<Response, CscError> {
    let order = holder(&state, &headers).await?;
    let q: AuthorizeBody = body(&bytes)?;
    let serial = q.credential_id.as_deref().ok_or_else(|| CscError::bad("missing credentialID"))?;
    let hashes = q.hashes.list().ok_or_else(|| {
        CscError::bad("missing hash (v1) or hashes (v2): the SAD is bound to the hashes it authorizes (SCAL 2)")
    })?;
    let num_signatures = q.num_signatures.ok_or_else(|| CscError::bad("missing numSignatures"))?;
    let otp = q.otp().ok_or_else(|| CscError::bad("missing OTP (v1) or authData OTP (v2)"))?;
    let req = AuthorizeRequest { serial, num_signatures, hashes, hash_algo: q.hashes.algorithm(), otp };
    let sad = state.csc.authorize(&order, &req).await.map_err(|e| match e {
        CaError::SignatureRefused(t) => CscError::bad(t).with_error("invalid_otp"),
        other => other.into(),
    })?;
    Ok(ok(json!({"SAD": sad.value.as_str(), "expiresIn": sad.expires_in})))
}

impl CscError {
    fn with_error(mut self, error: &'static str) -> CscError {
        self.error = error;
        self
    }
}

#[derive(Debug, Deserialize)]
struct SignBody {
    #[serde(rename = "credentialID")]
    credential_id: Option<String>,
    #[serde(rename = "SAD")]
    sad: Option<String>,
    #[serde(flatten)]
    hashes: Hashes,
    #[serde(rename = "signAlgo")]
    sign_algo: Option<String>,
}

async fn sign_hash(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Result<Response, CscError> {
    let order = holder(&state, &headers).await?;
    let q: SignBody = body(&bytes)?;
    let missing = |f: &str| CscError::bad(format!("missing {f}"));
    let req = SignRequest {
        serial: q.credential_id.as_deref().ok_or_else(|| missing("credentialID"))?,
        sad: q.sad.as_deref().ok_or_else(|| missing("SAD"))?,
        hashes: q.hashes.list().ok_or_else(|| missing("hash (v1) or hashes (v2)"))?,
        hash_algo: q.hashes.algorithm().ok_or_else(|| missing("hashAlgo (v1) or hashAlgorithmOID (v2)"))?,
        sign_algo: q.sign_algo.as_deref().ok_or_else(|| missing("signAlgo"))?,
    };
    let signatures = state.csc.sign_hash(&order, &req).await?;
    let b64: Vec<String> = signatures.iter().map(|s| base64::engine::general_purpose::STANDARD.encode(s)).collect();
    Ok(ok(json!({"signatures": b64})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: String,
    code: String,
}

/// `PUT /api/v1/orders/{token}/signing-password` (holder, CLOUD, issued):
/// `{"password", "code"}`; 204.
async fn set_password(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    ApiJson(req): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    state.csc.set_password(&token, &req.password, &req.code).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
