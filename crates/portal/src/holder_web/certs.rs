//! The certificate page for its holder, and what it leads to: renewal,
//! self-revocation, downloads and the confirmation document.
//!
//! Who may see and act: the certificate page is the issuance mail's link,
//! `GET /api/v1/orders/{token}/certificate[?serial=…]` (a browser gets this
//! page, other clients the PEM as before). The order's capability link is
//! the authentication: it is already mailed to the holder alone, is an
//! HMAC nobody can forge, and covers the order's whole line (each renewal
//! issued from it), so no new secret is needed. A serial alone is public
//! (the directory, the CRL): the page's own forms and downloads live under
//! the same token (`/holder/orders/{token}/…`), and every action is also
//! authorised by what the API asks for it (CLOUD: a code of the holder's
//! authenticator; TOKEN: a request signed on the token with `qcert enroll`,
//! which the page explains; the confirmation upload: the holder's
//! signature). The renewal reminder's link,
//! `GET /api/v1/certificates/{serial}/renewal`, stays public by serial, as
//! the API's banner is: it shows dates and the renewal's state, and its
//! renewal form needs an authorization code.

use askama::Template;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use qcert_ca_core::orders::Banner;
use qcert_ca_core::store::orders::OrderRow;
use qcert_ca_core::{CaError, Reason};
use serde::Deserialize;

use crate::http::AppState;
use crate::pages::Lang;
use crate::web::{render, Chrome, ErrorPage, Form};

/// Largest multipart body of the confirmation form: the document plus the
/// form's own parts (boundaries, headers, the serial).
pub(crate) const MAX_CONFIRMATION_FORM: usize = qcert_ca_core::confirmation::MAX_UPLOAD + 16 * 1024;

/// The reasons a holder may give, with their message ids.
const REASONS: [(Reason, &str); 5] = [
    (Reason::KeyCompromise, "holder-certs-reason-key-compromise"),
    (Reason::AffiliationChanged, "holder-certs-reason-affiliation-changed"),
    (Reason::Superseded, "holder-certs-reason-superseded"),
    (Reason::CessationOfOperation, "holder-certs-reason-cessation"),
    (Reason::Unspecified, "holder-certs-reason-unspecified"),
];

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/holder/orders/{token}/certificate/{file}", get(download))
        .route("/holder/orders/{token}/revocation", post(revoke))
        .route(
            "/holder/orders/{token}/confirmation",
            post(confirm).layer(axum::extract::DefaultBodyLimit::max(MAX_CONFIRMATION_FORM)),
        )
        .route("/holder/certificates/{serial}/renewal", post(renew))
}

/// Whether `path` is the confirmation form's (for `http::body_limit`).
pub(crate) fn is_confirmation_form(path: &str) -> bool {
    path.starts_with("/holder/orders/") && path.ends_with("/confirmation")
}

/// The page language: the switcher's `lang=`, else the visitor's choice
/// kept in the language cookie, else the order's, else the request's
/// negotiation (Accept-Language).
fn chrome(headers: &HeaderMap, uri: &Uri, order_language: Option<&str>) -> Chrome {
    let chosen = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == crate::pages::LANG_COOKIE)
        .and_then(|(_, v)| Lang::from_tag(v));
    let lang = Lang::in_query(uri)
        .or(chosen)
        .or_else(|| order_language.map(Lang::of))
        .unwrap_or_else(|| Lang::negotiate(headers, uri));
    Chrome::new(lang, uri)
}

/// A core refusal as a readable page in the holder's language. The core's
/// own sentence is shown where it is the holder's answer (a document's
/// refusal reason, a conflict with the recorded state); it names what was
/// wrong, never a secret the holder sent.
pub(crate) fn error_page(c: &Chrome, e: CaError) -> ErrorPage {
    let title = "web-error-title";
    match e {
        CaError::NotFound(_) | CaError::UnknownSerial(_) => {
            ErrorPage::new(StatusCode::NOT_FOUND, c, "holder-certs-link-title", c.t("holder-certs-link-unknown"))
        }
        CaError::InvalidField { field, .. } => {
            ErrorPage::new(StatusCode::UNPROCESSABLE_ENTITY, c, title, c.ts("web-form-field", "field", field))
        }
        CaError::SignatureRefused(_) => {
            ErrorPage::new(StatusCode::FORBIDDEN, c, "holder-certs-code-title", c.t("holder-certs-code-refused"))
        }
        CaError::AuthenticatorLocked => {
            ErrorPage::new(StatusCode::LOCKED, c, "holder-certs-code-title", c.t("holder-certs-code-locked"))
        }
        CaError::RateLimited { retry_after_secs } => {
            let wait = c.wait_minutes(retry_after_secs);
            ErrorPage::new(StatusCode::TOO_MANY_REQUESTS, c, title, c.ts("holder-certs-rate-limited", "wait", &wait))
        }
        CaError::DocumentRefused(reason) => ErrorPage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            c,
            "holder-certs-confirmation-refused-title",
            c.ts("holder-certs-confirmation-refused", "reason", &reason),
        ),
        // Its sentence may quote what was sent (a serial that is not one): not shown.
        CaError::InvalidInput(_) | CaError::CsrRefused(_) | CaError::ValidityNotOffered(..) => {
            ErrorPage::new(StatusCode::UNPROCESSABLE_ENTITY, c, title, c.t("holder-certs-invalid"))
        }
        CaError::Conflict(why) => ErrorPage::new(
            StatusCode::CONFLICT,
            c,
            "holder-certs-refused-title",
            c.ts("holder-certs-refused", "reason", &why),
        ),
        CaError::NotConfigured(_) => {
            ErrorPage::new(StatusCode::SERVICE_UNAVAILABLE, c, title, c.t("holder-certs-unavailable"))
        }
        other => {
            tracing::error!(error = %other, "a holder's page failed");
            ErrorPage::new(StatusCode::INTERNAL_SERVER_ERROR, c, title, c.t("holder-certs-internal"))
        }
    }
}

/// One certificate of the order's line, for the page's list.
struct LineItem {
    serial: String,
    href: String,
    current: bool,
}

/// What the page shows of the renewal.
struct Renewal {
    /// The state in words (when a renewal is ordered, or it cannot be).
    state: Option<String>,
    /// The holder can order it now.
    orderable: bool,
    /// The renewed certificate's page.
    new_href: Option<String>,
    /// The payment page, while the renewal awaits payment.
    pay_href: Option<String>,
}

#[derive(Template)]
#[template(path = "holder/cert.html")]
struct CertPage {
    c: Chrome,
    serial: String,
    name: String,
    cloud: bool,
    /// `valid`, `revoked` or `expired`.
    status: &'static str,
    status_text: String,
    not_before: String,
    not_after: String,
    banner: Option<String>,
    renewal: Renewal,
    line: Vec<LineItem>,
    der_href: String,
    pem_href: String,
    chain_href: String,
    prefilled_href: String,
    confirmation_action: String,
    confirmare_href: Option<String>,
    renew_action: String,
    revoke_action: String,
    reasons: Vec<(&'static str, String)>,
    renew_command: String,
    revoke_command: String,
    fetch_command: String,
}

/// Status and its words: valid, revoked (date, reason), expired (date).
async fn status_of(
    state: &AppState,
    c: &Chrome,
    serial: &str,
    not_after: i64,
) -> Result<(&'static str, String), CaError> {
    let now = state.ca.clock().now().unix_timestamp();
    if let Some(r) = state.ca.registry().revocation(serial).await? {
        let reason = Reason::from_code(r.reason).unwrap_or(Reason::Unspecified);
        let reason_id = REASONS.iter().find(|(x, _)| *x == reason).map_or("holder-certs-reason-other", |(_, id)| id);
        let text = c.ta(
            "holder-certs-status-revoked",
            &[("date", c.lang.date(r.revoked_at).into()), ("reason", c.t(reason_id).into())],
        );
        return Ok(("revoked", text));
    }
    if now >= not_after {
        return Ok(("expired", c.ts("holder-certs-status-expired", "date", &c.lang.date(not_after))));
    }
    Ok(("valid", c.ts("holder-certs-status-valid", "date", &c.lang.date(not_after))))
}

/// The renewal's state in words.
fn renewal_state(c: &Chrome, b: &Banner) -> Option<String> {
    let id = match b.state.as_str() {
        "none" => return None,
        "awaiting-payment" => "holder-certs-renewal-awaiting-payment",
        "paid" => "holder-certs-renewal-paid",
        "issuing" => "holder-certs-renewal-issuing",
        "issued" => "holder-certs-renewal-issued",
        _ => "holder-certs-renewal-not-renewable",
    };
    Some(c.t(id))
}

/// The banner of the 45 days before expiry (with the deadline).
fn banner_text(c: &Chrome, b: &Banner) -> Option<String> {
    b.window_open.then(|| {
        c.ta(
            "holder-certs-banner",
            &[("expires", c.lang.date(b.not_after).into()), ("deadline", c.lang.date(b.deadline).into())],
        )
    })
}

/// `GET /api/v1/orders/{token}/certificate[?serial=…]` for a browser.
pub(crate) async fn certificate_page(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    token: &str,
    serial: Option<&str>,
) -> Response {
    let order = match state.orders.by_link(token).await {
        Ok(o) => o,
        Err(e) => return error_page(&chrome(headers, uri, None), e).into_response(),
    };
    let c = chrome(headers, uri, Some(&order.language));
    match page(state, c.clone(), token, &order, serial).await {
        Ok(p) => render(StatusCode::OK, &p),
        Err(e) => error_page(&c, e).into_response(),
    }
}

async fn page(
    state: &AppState,
    c: Chrome,
    token: &str,
    order: &OrderRow,
    serial: Option<&str>,
) -> Result<CertPage, CaError> {
    let (serial, _) = state.orders.certificate(token, serial).await?;
    let rec = state.ca.registry().certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
    let cert = &rec.cert;
    let (status, status_text) = status_of(state, &c, &serial, cert.not_after).await?;
    let b = state.orders.banner(&serial).await?;
    let order_url = state.orders.order_url(&order.id)?;
    let link = state.orders.link_token(&order.id)?;
    let page_href = |s: &str| format!("{order_url}/certificate?serial={s}");
    let line = state
        .orders
        .certificate_line(order)
        .await?
        .into_iter()
        .map(|s| LineItem { href: page_href(&s), current: s == serial, serial: s })
        .collect();
    let confirmare_href = match state.confirmations.countersigned(token, Some(&serial)).await {
        Ok(_) => Some(format!("{order_url}/confirmation/confirmare.pdf?serial={serial}")),
        Err(CaError::NotFound(_) | CaError::Conflict(_)) => None,
        Err(e) => return Err(e),
    };
    let holder_base = format!("/holder/orders/{link}");
    let server = state.orders.base().to_owned();
    let renewal = Renewal {
        state: renewal_state(&c, &b),
        orderable: b.state == "none",
        new_href: b.new_serial.as_deref().map(page_href),
        pay_href: b.payment_url.clone(),
    };
    let reasons = REASONS.iter().map(|(r, id)| (r.name(), c.t(id))).collect();
    Ok(CertPage {
        serial: serial.clone(),
        name: format!("{} {}", cert.given_name.as_deref().unwrap_or_default(), cert.surname.as_deref().unwrap_or_default())
            .trim()
            .to_owned(),
        cloud: order.product == "cloud",
        status,
        status_text,
        not_before: c.lang.date(cert.not_before),
        not_after: c.lang.date(cert.not_after),
        banner: banner_text(&c, &b),
        renewal,
        line,
        der_href: format!("{holder_base}/certificate/{serial}.der"),
        pem_href: format!("{holder_base}/certificate/{serial}.pem"),
        chain_href: format!("{holder_base}/certificate/{serial}-chain.pem"),
        prefilled_href: format!("{order_url}/confirmation?serial={serial}"),
        confirmation_action: format!("{holder_base}/confirmation"),
        confirmare_href,
        renew_action: format!("/holder/certificates/{serial}/renewal"),
        revoke_action: format!("{holder_base}/revocation"),
        reasons,
        renew_command: format!(
            "qcert enroll renew --server {server} --token \"{token_label}\" --label {label} --new-label {new_label} --years 1",
            token_label = c.t("holder-certs-placeholder-token"),
            label = c.t("holder-certs-placeholder-label"),
            new_label = c.t("holder-certs-placeholder-new-label"),
        ),
        fetch_command: format!(
            "qcert enroll fetch --server {server} --token \"{token_label}\" --label {label}",
            token_label = c.t("holder-certs-placeholder-token"),
            label = c.t("holder-certs-placeholder-label"),
        ),
        revoke_command: format!(
            "qcert enroll revoke --server {server} --token \"{token_label}\" --label {label} --reason keyCompromise",
            token_label = c.t("holder-certs-placeholder-token"),
            label = c.t("holder-certs-placeholder-label"),
        ),
        c,
    })
}

#[derive(Template)]
#[template(path = "holder/cert-renewal.html")]
struct RenewalPage {
    c: Chrome,
    serial: String,
    not_after: String,
    deadline: String,
    banner: Option<String>,
    state: Option<String>,
    orderable: bool,
    cloud: bool,
    new_serial: Option<String>,
    /// The payment page, while the renewal awaits payment.
    pay_href: Option<String>,
    renew_action: String,
    renew_command: String,
}

/// `GET /api/v1/certificates/{serial}/renewal` for a browser (the
/// reminder mails' link): the dates, the renewal's state and how to renew.
pub(crate) async fn renewal_page(state: &AppState, headers: &HeaderMap, uri: &Uri, b: Banner) -> Response {
    let order = match state.orders.order_behind(&b.serial).await {
        Ok(o) => o,
        Err(e) => return error_page(&chrome(headers, uri, None), e).into_response(),
    };
    let c = chrome(headers, uri, order.as_ref().map(|o| o.language.as_str()));
    let page = RenewalPage {
        serial: b.serial.clone(),
        not_after: c.lang.date(b.not_after),
        deadline: c.lang.date(b.deadline),
        banner: banner_text(&c, &b),
        state: renewal_state(&c, &b),
        orderable: b.state == "none",
        cloud: order.as_ref().is_some_and(|o| o.product == "cloud"),
        new_serial: b.new_serial.clone(),
        pay_href: b.payment_url.clone(),
        renew_action: format!("/holder/certificates/{}/renewal", b.serial),
        renew_command: format!(
            "qcert enroll renew --server {} --token \"{}\" --label {} --new-label {} --years 1",
            state.orders.base(),
            c.t("holder-certs-placeholder-token"),
            c.t("holder-certs-placeholder-label"),
            c.t("holder-certs-placeholder-new-label"),
        ),
        c,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewForm {
    years: u32,
    code: String,
}

#[derive(Template)]
#[template(path = "holder/cert-done.html")]
struct DonePage {
    c: Chrome,
    title: String,
    lines: Vec<String>,
    link: Option<(String, String)>,
}

/// `POST /holder/certificates/{serial}/renewal` (form: years, code): the
/// CLOUD renewal, authorised by the authenticator's code.
async fn renew(
    State(state): State<AppState>,
    serial: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<RenewForm>, ErrorPage>,
) -> Response {
    let Ok(Path(serial)) = serial else {
        let c = chrome(&headers, &uri, None);
        return ErrorPage::new(StatusCode::NOT_FOUND, &c, "holder-certs-link-title", c.t("holder-certs-link-unknown"))
            .into_response();
    };
    let order = state.orders.order_behind(&serial).await.ok().flatten();
    let c = chrome(&headers, &uri, order.as_ref().map(|o| o.language.as_str()));
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match state.orders.order_renewal_code(&serial, f.years, &f.code).await {
        Ok(r) => {
            let lines = vec![
                c.ts("holder-certs-renewal-ordered", "years", &r.years.to_string()),
                c.ts("holder-certs-renewal-issue-at", "date", &c.lang.date(r.issue_at)),
                c.ts("holder-certs-renewal-pay", "id", &r.id),
            ];
            // The next step is paying; the renewal's page follows it afterwards.
            let link = Some((state.orders.payment().renewal_url(&r), c.t("holder-certs-renewal-pay-link")));
            render(StatusCode::CREATED, &DonePage { title: c.t("holder-certs-renewal-ordered-title"), lines, link, c })
        }
        Err(e) => error_page(&c, e).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeForm {
    serial: String,
    reason: String,
    code: String,
    /// The "this cannot be undone" checkbox.
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /holder/orders/{token}/revocation` (form: serial, reason, code,
/// confirm): CLOUD self-revocation by the authenticator's code.
async fn revoke(
    State(state): State<AppState>,
    token: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<RevokeForm>, ErrorPage>,
) -> Response {
    let (order, token) = match order_of(&state, &headers, &uri, token).await {
        Ok(o) => o,
        Err(page) => return page,
    };
    let c = chrome(&headers, &uri, Some(&order.language));
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    if f.confirm.as_deref() != Some("yes") {
        return ErrorPage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &c,
            "web-error-title",
            c.t("holder-certs-revoke-confirm"),
        )
        .into_response();
    }
    let Some(reason) = REASONS.iter().map(|(r, _)| *r).find(|r| r.name() == f.reason) else {
        return ErrorPage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &c,
            "web-error-title",
            c.ts("web-form-field", "field", "reason"),
        )
        .into_response();
    };
    let done = async {
        // The serial must be of this order's line (the link's).
        let (serial, _) = state.orders.certificate(&token, Some(&f.serial)).await?;
        state.orders.self_revoke_code(&serial, &f.code, reason).await
    };
    match done.await {
        Ok(r) => {
            let mut lines = vec![c.ta(
                "holder-certs-revoked-at",
                &[("serial", r.record.serial.clone().into()), ("date", c.lang.date(r.record.revoked_at).into())],
            )];
            if !r.newly_revoked {
                lines.push(c.t("holder-certs-revoked-before"));
            }
            let link = state.orders.order_url(&order.id).ok().map(|u| {
                (format!("{u}/certificate?serial={}", r.record.serial), c.t("holder-certs-back-to-certificate"))
            });
            render(StatusCode::OK, &DonePage { title: c.t("holder-certs-revoked-title"), lines, link, c })
        }
        Err(e) => error_page(&c, e).into_response(),
    }
}

/// The order of a page's `{token}`, or the page refusing the link.
async fn order_of(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    token: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<(OrderRow, String), Response> {
    let unknown = || {
        let c = chrome(headers, uri, None);
        ErrorPage::new(StatusCode::NOT_FOUND, &c, "holder-certs-link-title", c.t("holder-certs-link-unknown"))
            .into_response()
    };
    let Ok(Path(token)) = token else { return Err(unknown()) };
    match state.orders.by_link(&token).await {
        Ok(o) => Ok((o, token)),
        Err(CaError::NotFound(_) | CaError::InvalidInput(_) | CaError::InvalidField { .. }) => Err(unknown()),
        Err(e) => Err(error_page(&chrome(headers, uri, None), e).into_response()),
    }
}

/// `GET /holder/orders/{token}/certificate/{serial}.der|.pem|-chain.pem`:
/// a certificate of the order's line as a file (PEM with chain: the
/// certificate, then the issuing CA).
async fn download(
    State(state): State<AppState>,
    params: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Ok(Path((token, file))) = params else {
        let c = chrome(&headers, &uri, None);
        return ErrorPage::new(StatusCode::NOT_FOUND, &c, "holder-certs-link-title", c.t("holder-certs-link-unknown"))
            .into_response();
    };
    let Some((serial, format)) = split_file(&file) else {
        let c = chrome(&headers, &uri, None);
        return ErrorPage::new(StatusCode::NOT_FOUND, &c, "web-not-found-title", c.t("web-not-found")).into_response();
    };
    match state.orders.certificate(&token, Some(serial)).await {
        Ok((serial, der)) => certificate_file(&state, &serial, &der, format, "no-store"),
        Err(e) => {
            let order = state.orders.by_link(&token).await.ok();
            error_page(&chrome(&headers, &uri, order.as_ref().map(|o| o.language.as_str())), e).into_response()
        }
    }
}

/// A certificate download's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileFormat {
    Der,
    Pem,
    PemChain,
}

/// `<serial>.der`, `<serial>.cer`, `<serial>.crt` (DER), `<serial>.pem`,
/// `<serial>-chain.pem`.
pub(crate) fn split_file(file: &str) -> Option<(&str, FileFormat)> {
    if let Some(s) = file.strip_suffix("-chain.pem") {
        return Some((s, FileFormat::PemChain));
    }
    let (serial, ext) = file.rsplit_once('.')?;
    let format = match ext {
        "der" | "cer" | "crt" => FileFormat::Der,
        "pem" => FileFormat::Pem,
        _ => return None,
    };
    Some((serial, format))
}

/// The file response: DER (`application/pkix-cert`) or PEM, as an
/// attachment named after the serial.
pub(crate) fn certificate_file(
    state: &AppState,
    serial: &str,
    der: &[u8],
    format: FileFormat,
    cache: &'static str,
) -> Response {
    let (body, content_type, name) = match format {
        FileFormat::Der => (der.to_vec(), "application/pkix-cert", format!("{serial}.cer")),
        FileFormat::Pem => {
            (qcert_ca_core::pem("CERTIFICATE", der).into_bytes(), "application/x-pem-file", format!("{serial}.pem"))
        }
        FileFormat::PemChain => {
            let mut pem = qcert_ca_core::pem("CERTIFICATE", der);
            pem.push_str(&qcert_ca_core::pem("CERTIFICATE", &state.ca.hierarchy().issuing));
            (pem.into_bytes(), "application/x-pem-file", format!("{serial}-chain.pem"))
        }
    };
    let mut resp = ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `POST /holder/orders/{token}/confirmation` (`multipart/form-data`:
/// `serial`, `document`): the signed confirmation document from the
/// page's form; checked and countersigned as the API does.
async fn confirm(
    State(state): State<AppState>,
    token: Result<Path<String>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let (order, token) = match order_of(&state, &headers, &uri, token).await {
        Ok(o) => o,
        Err(page) => return page,
    };
    let c = chrome(&headers, &uri, Some(&order.language));
    let Ok(mut multipart) = multipart else {
        return ErrorPage::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &c,
            "web-error-title",
            c.t("holder-certs-upload-type"),
        )
        .into_response();
    };
    let mut serial = None;
    let mut document = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return upload_refused(&c, e.status()),
        };
        match field.name() {
            Some("serial") => match field.text().await {
                Ok(s) if s.chars().count() <= 64 => serial = Some(s),
                Ok(_) => {
                    return ErrorPage::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &c,
                        "web-error-title",
                        c.ts("web-form-field", "field", "serial"),
                    )
                    .into_response()
                }
                Err(e) => return upload_refused(&c, e.status()),
            },
            Some("document") => match field.bytes().await {
                Ok(b) => document = Some(b),
                Err(e) => return upload_refused(&c, e.status()),
            },
            // Other parts (a browser sends none) are read past.
            _ => {}
        }
    }
    let Some(document) = document.filter(|d| !d.is_empty()) else {
        return ErrorPage::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            &c,
            "web-error-title",
            c.t("holder-certs-upload-missing"),
        )
        .into_response();
    };
    let serial = serial.filter(|s| !s.trim().is_empty());
    match state.confirmations.confirm(&token, serial.as_deref(), &document).await {
        Ok(done) => {
            let url = state.orders.order_url(&order.id).unwrap_or_default();
            let lines = vec![c.ta(
                "holder-certs-confirmation-done",
                &[("serial", done.serial.clone().into()), ("date", c.lang.date(done.at).into())],
            )];
            let link = Some((
                format!("{url}/confirmation/confirmare.pdf?serial={}", done.serial),
                c.t("holder-certs-confirmare"),
            ));
            render(
                StatusCode::CREATED,
                &DonePage { title: c.t("holder-certs-confirmation-done-title"), lines, link, c },
            )
        }
        Err(e) => error_page(&c, e).into_response(),
    }
}

/// The confirmation form announced a body over its limit (before it is read).
pub(crate) fn too_large_page(headers: &HeaderMap, uri: &Uri) -> Response {
    upload_refused(&chrome(headers, uri, None), StatusCode::PAYLOAD_TOO_LARGE)
}

/// A multipart body that could not be read (too large, cut short).
fn upload_refused(c: &Chrome, status: StatusCode) -> Response {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let mib = i64::try_from(qcert_ca_core::confirmation::MAX_UPLOAD / (1024 * 1024)).unwrap_or(2);
        return ErrorPage::new(
            status,
            c,
            "web-error-title",
            c.ts("holder-certs-upload-too-large", "mib", &mib.to_string()),
        )
        .into_response();
    }
    ErrorPage::new(StatusCode::BAD_REQUEST, c, "web-error-title", c.t("holder-certs-upload-unreadable")).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn download_names() {
        assert_eq!(split_file("0a1b.der"), Some(("0a1b", FileFormat::Der)));
        assert_eq!(split_file("0a1b.cer"), Some(("0a1b", FileFormat::Der)));
        assert_eq!(split_file("0a1b.pem"), Some(("0a1b", FileFormat::Pem)));
        assert_eq!(split_file("0a1b-chain.pem"), Some(("0a1b", FileFormat::PemChain)));
        assert_eq!(split_file("0a1b.exe"), None);
        assert_eq!(split_file("0a1b"), None);
    }
}
