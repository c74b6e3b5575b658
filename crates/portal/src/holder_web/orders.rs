//! The order side of the holders' pages: the public order form
//! (`/order`), the pages behind the order's capability link and its
//! sub-pages (CSR upload, resume, authenticator enrolment with a QR code,
//! first authorization code, certificate download), the one-time secret
//! delivery page, and qcert's TEST payment provider (`/pay/test/{id}`,
//! only when `[orders.payment] test_provider` is on).
//!
//! The API routes keep their URLs and JSON; `orders_api` hands browsers
//! (and form posts) to the page functions here. Every page is in the
//! order's language unless the visitor chose another (`lang=` or the
//! language cookie); every error a holder can cause is a page in that
//! language with the API's status code, naming what was wrong, never a
//! value.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use qcert_ca_core::delivery::{DeliveryStatus, KitSecrets};
use qcert_ca_core::desk::DocumentNumber;
use qcert_ca_core::holder::{Country, Email, Holder, PersonName, SemanticsId, ValidityYears};
use qcert_ca_core::orders::{parse_document_type, parse_phone, OrderForm, Product, PROFILE};
use qcert_ca_core::store::orders::OrderRow;
use qcert_ca_core::CaError;
use serde::Deserialize;

use crate::http::{ApiError, AppState};
use crate::orders_api::{client_key, Peer};
use crate::pages::{Lang, LANG_COOKIE};
use crate::web::{render, Chrome, Form};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/order", get(form_page).post(submit))
        .route("/pay/test/{order_id}", get(test_pay_page).post(test_pay))
        .route("/pay/test/renewal/{renewal_id}", get(test_pay_page).post(test_pay))
}

/// The language of a page about an order: the visitor's explicit choice
/// (`lang=`, then the language cookie), else the order's.
pub(crate) fn chrome_for(headers: &HeaderMap, uri: &Uri, order_language: &str) -> Chrome {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == LANG_COOKIE)
        .and_then(|(_, v)| Lang::from_tag(v));
    let lang = Lang::in_query(uri).or(cookie).unwrap_or_else(|| Lang::of(order_language));
    Chrome::new(lang, uri)
}

/// A path (and query) as a URI, for a page rendered after a form post:
/// its language links then lead to a page that answers GET.
pub(crate) fn page_uri(url: &str) -> Uri {
    let path = url.find("/api/").map_or(url, |i| url.get(i..).unwrap_or(url));
    path.parse().unwrap_or_else(|_| Uri::from_static("/"))
}

// ---------------------------------------------------------------- errors

/// The page for a refused request: the API's status code, a title and
/// one sentence in the page's language (what was wrong, what to do).
pub(crate) fn error_page(c: &Chrome, e: CaError) -> Response {
    let (status, text) = refusal(c, e);
    crate::web::ErrorPage::new(status, c, "holder-orders-err-title", text).into_response()
}

/// Status (the API's mapping) and the sentence for a refusal.
fn refusal(c: &Chrome, e: CaError) -> (StatusCode, String) {
    let text = match &e {
        CaError::NotFound(_) | CaError::UnknownSerial(_) => c.t("holder-orders-err-not-found"),
        CaError::InvalidField { field, .. } => c.ts("holder-orders-err-field", "field", &field_label(c, field)),
        CaError::CsrRefused(why) => c.ts("holder-orders-err-csr", "why", why),
        CaError::Conflict(_) => c.t("holder-orders-err-conflict"),
        CaError::AuthenticatorLocked => c.t("holder-orders-err-locked"),
        CaError::RateLimited { retry_after_secs } => {
            c.ts("holder-orders-err-rate", "wait", &c.wait_minutes(*retry_after_secs))
        }
        // On these pages: an authorization code that is wrong or used.
        CaError::SignatureRefused(_) => c.t("holder-orders-err-code"),
        CaError::InvalidInput(_) | CaError::ValidityNotOffered(..) => c.t("holder-orders-err-refused"),
        _ => c.t("holder-orders-err-internal"),
    };
    // The status (and the log line of a fault of ours) of the API's one mapping.
    (ApiError(e).into_response().status(), text)
}

/// A field named by ca-core, in the page's words.
fn field_label(c: &Chrome, field: &str) -> String {
    let id = match field {
        "code" => "holder-orders-code-label",
        "csr" => "holder-orders-csr-label",
        "given name" => "holder-orders-f-given-name",
        "surname" => "holder-orders-f-surname",
        "email" => "holder-orders-f-email",
        "country" => "holder-orders-f-country",
        "id-number" => "holder-orders-f-national-id",
        "ID document number" => "holder-orders-f-id-document-number",
        "phone" => "holder-orders-f-phone",
        "document_type" => "holder-orders-f-document-type",
        "language" => "holder-orders-f-language",
        "product" => "holder-orders-f-product",
        _ => return field.to_owned(),
    };
    c.t(id)
}

/// An API route's outcome: a refusal is a page for a browser (in the
/// negotiated language: the order is not known), else the problem document.
pub(crate) fn answer(headers: &HeaderMap, uri: &Uri, r: Result<Response, ApiError>) -> Response {
    match r {
        Ok(r) => r,
        Err(ApiError(e)) if crate::pages::wants_html(headers) || is_multipart(headers) => {
            error_page(&Chrome::from_request(headers, uri), e)
        }
        Err(e) => e.into_response(),
    }
}

/// A step's form (resume, CSR, first code) was refused: the order's page
/// (the CSR page for a CSR) again, with the refusal's sentence and status.
pub(crate) async fn refused_step(
    state: &AppState,
    headers: &HeaderMap,
    token: &str,
    e: CaError,
    csr: bool,
) -> Response {
    let o = match state.orders.by_link(token).await {
        Ok(o) => o,
        Err(_) => return error_page(&Chrome::from_request(headers, &Uri::from_static("/")), e),
    };
    let url = match state.orders.order_url(&o.id) {
        Ok(u) => u,
        Err(e) => return error_page(&Chrome::from_request(headers, &Uri::from_static("/")), e),
    };
    let target = if csr { format!("{url}/csr") } else { url };
    let c = chrome_for(headers, &page_uri(&target), &o.language);
    let error = Some(refusal(&c, e));
    let page = if csr { csr_page(state, c.clone(), &o, error) } else { order_page(state, c.clone(), &o, error) };
    page.unwrap_or_else(|ApiError(e)| error_page(&c, e))
}

/// After a step's form succeeded: to the order's page (303).
pub(crate) fn to_order(state: &AppState, headers: &HeaderMap, o: &OrderRow) -> Response {
    match state.orders.order_url(&o.id) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => error_page(&Chrome::from_request(headers, &Uri::from_static("/")), e),
    }
}

// ---------------------------------------------------------- the order page

#[derive(Template)]
#[template(path = "holder/order.html")]
struct OrderPage {
    c: Chrome,
    facts: Vec<(String, String)>,
    error: Option<String>,
    reason: Option<String>,
    next: String,
    /// `pay`, `identity`, `resume`, `enrol`, `code`, `csr`, `wait`, `certificate`.
    step: &'static str,
    /// The step's link or form action.
    href: String,
    test_pay: bool,
}

/// The state of an order in the page's words.
fn state_text(c: &Chrome, o: &OrderRow) -> String {
    let id = match o.state.as_str() {
        "awaiting-payment" => "holder-orders-state-awaiting-payment",
        "awaiting-identity" => "holder-orders-state-awaiting-identity",
        "rejected" => "holder-orders-state-rejected",
        "approved" => "holder-orders-state-approved",
        "issuing" => "holder-orders-state-issuing",
        "issued" => "holder-orders-state-issued",
        other => return other.to_owned(),
    };
    c.t(id)
}

fn years_text(c: &Chrome, years: i64) -> String {
    c.tn("holder-orders-years", years)
}

/// The holder's order page: the facts, the state and the one next step
/// with its action.
pub(crate) fn order_page(
    state: &AppState,
    c: Chrome,
    o: &OrderRow,
    error: Option<(StatusCode, String)>,
) -> Result<Response, ApiError> {
    let url = state.orders.order_url(&o.id)?;
    let payment = state.orders.payment();
    let lang = c.code();
    let cloud = o.product == "cloud";
    let mut facts = vec![
        (c.t("holder-orders-fact-order"), o.id.clone()),
        (c.t("holder-orders-fact-state"), state_text(&c, o)),
        (c.t("holder-orders-fact-product"), product_name(&c, &o.product)),
        (c.t("holder-orders-fact-validity"), years_text(&c, o.years)),
        (c.t("holder-orders-fact-price"), payment.price_text(&o.product, o.years, lang)),
    ];
    if let Some(s) = &o.serial {
        facts.push((c.t("holder-orders-fact-serial"), s.clone()));
    }
    let price = payment.price_text(&o.product, o.years, lang);
    let (step, next, href) = match o.state.as_str() {
        "awaiting-payment" => ("pay", c.ts("holder-orders-next-pay", "price", &price), payment.url(o)),
        "awaiting-identity" => {
            let due = o.identity_due_at.map(|t| c.lang.date(t)).unwrap_or_default();
            ("identity", c.ts("holder-orders-next-identity", "due", &due), String::new())
        }
        "rejected" => ("resume", c.t("holder-orders-next-resume"), format!("{url}/resume")),
        // Enrolled once the secret is handed out (confirmed by the first code).
        "approved" if cloud && o.totp_sealed.is_none() => {
            ("enrol", c.t("holder-orders-next-enrol"), format!("{url}/authenticator"))
        }
        "approved" if cloud => ("code", c.t("holder-orders-next-code"), format!("{url}/authorization")),
        "approved" if o.csr.is_none() => ("csr", c.t("holder-orders-next-csr"), format!("{url}/csr")),
        "approved" | "issuing" => ("wait", c.t("holder-orders-next-wait"), String::new()),
        _ => ("certificate", c.t("holder-orders-next-certificate"), format!("{url}/certificate")),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.0);
    let page = OrderPage {
        facts,
        error: error.map(|e| e.1),
        reason: (o.state == "rejected").then(|| o.rejection_reason.clone().unwrap_or_default()),
        next,
        step,
        href,
        test_pay: payment.test_provider,
        c,
    };
    Ok(render(status, &page))
}

fn product_name(c: &Chrome, product: &str) -> String {
    if product == "cloud" {
        c.t("holder-orders-product-cloud")
    } else {
        c.t("holder-orders-product-token")
    }
}

// ------------------------------------------------------------- CSR upload

#[derive(Template)]
#[template(path = "holder/order_csr.html")]
struct CsrPage {
    c: Chrome,
    action: String,
    order_href: String,
    error: Option<String>,
}

/// `GET …/csr` for a browser: the upload form (paste the PEM or choose
/// the file), or the order page once there is nothing to upload.
pub(crate) fn csr_page(
    state: &AppState,
    c: Chrome,
    o: &OrderRow,
    error: Option<(StatusCode, String)>,
) -> Result<Response, ApiError> {
    if o.product != "token" || o.csr.is_some() || matches!(o.state.as_str(), "issuing" | "issued") {
        return order_page(state, c, o, error);
    }
    let order_href = state.orders.order_url(&o.id)?;
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.0);
    let page = CsrPage { action: format!("{order_href}/csr"), order_href, error: error.map(|e| e.1), c };
    Ok(render(status, &page))
}

/// The CSR of a browser's upload: the pasted PEM (`csr`), else the chosen
/// file (`csr_file`, PEM or DER), from a urlencoded or multipart form.
pub(crate) async fn csr_from_form(headers: &HeaderMap, body: axum::body::Bytes) -> Result<Vec<u8>, CaError> {
    let missing = || CaError::field("csr", "the CSR as PEM text or a file");
    if crate::pages::is_form(headers) {
        let text = crate::pages::form_field(&body, "csr").filter(|t| !t.trim().is_empty()).ok_or_else(missing)?;
        return Ok(text.into_bytes());
    }
    let ct = headers.get(header::CONTENT_TYPE).cloned().ok_or_else(missing)?;
    let req = axum::http::Request::builder()
        .header(header::CONTENT_TYPE, ct)
        .body(axum::body::Body::from(body))
        .map_err(|_| missing())?;
    use axum::extract::FromRequest;
    let mut parts = axum::extract::Multipart::from_request(req, &()).await.map_err(|_| missing())?;
    let (mut pasted, mut file) = (None, None);
    while let Ok(Some(field)) = parts.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(bytes) = field.bytes().await else { return Err(missing()) };
        match name.as_str() {
            "csr" if !bytes.iter().all(u8::is_ascii_whitespace) => pasted = Some(bytes.to_vec()),
            "csr_file" if !bytes.is_empty() => file = Some(bytes.to_vec()),
            _ => {}
        }
    }
    pasted.or(file).ok_or_else(missing)
}

/// Is this a multipart form (the CSR page's file upload)?
pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

// ------------------------------------------------ authenticator (CLOUD)

#[derive(Template)]
#[template(path = "holder/order_enrol.html")]
struct EnrolPage {
    c: Chrome,
    action: String,
}

/// `GET …/authenticator` for a browser: what enrolling means, and the
/// button that does it (or the order page when it is not the next step).
pub(crate) fn enrol_page(state: &AppState, c: Chrome, o: &OrderRow) -> Result<Response, ApiError> {
    if o.product != "cloud" || o.state != "approved" || o.totp_sealed.is_some() {
        return order_page(state, c, o, None);
    }
    let action = format!("{}/authenticator", state.orders.order_url(&o.id)?);
    Ok(render(StatusCode::OK, &EnrolPage { c, action }))
}

#[derive(Template)]
#[template(path = "holder/order_secret.html")]
struct EnrolledPage {
    c: Chrome,
    secret: String,
    otpauth_uri: String,
    qr: Option<String>,
    action: String,
}

/// The otpauth:// URI as a QR code: an SVG in a `data:` URI (the CSP
/// allows `img-src data:`; no inline style).
pub(crate) fn qr_data_uri(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    Some(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

/// `POST …/authenticator` for a browser: the secret, once, as a QR code
/// and as text, then the first code's form.
pub(crate) fn enrolled_page(
    state: &AppState,
    headers: &HeaderMap,
    o: &OrderRow,
    otpauth_uri: String,
    secret: String,
) -> Result<Response, ApiError> {
    let url = state.orders.order_url(&o.id)?;
    let c = chrome_for(headers, &page_uri(&url), &o.language);
    let qr = qr_data_uri(&otpauth_uri);
    Ok(render(StatusCode::OK, &EnrolledPage { c, secret, otpauth_uri, qr, action: format!("{url}/authorization") }))
}

// ------------------------------------------------------------ certificate

// -------------------------------------------------------- secret delivery

#[derive(Template)]
#[template(path = "holder/secrets.html")]
struct SecretsPage {
    c: Chrome,
    /// `pending`, `blocked`, `retrieved`, `superseded`.
    status: &'static str,
    cloud: bool,
    action: String,
    error: Option<String>,
}

/// `GET /api/v1/secrets/{token}` for a browser: what the link shows, and
/// the generation code's form while the secrets wait. After a refused
/// code: `status` and the refusal's sentence.
pub(crate) fn secrets_page(
    c: Chrome,
    delivery: DeliveryStatus,
    cloud: bool,
    action: String,
    refused: Option<(StatusCode, Option<String>)>,
) -> Response {
    let (code, error) = refused.unwrap_or((StatusCode::OK, None));
    render(code, &SecretsPage { c, status: delivery.as_str(), cloud, action, error })
}

/// A refusal of the generation code, for the secrets page (a refusal by
/// the delivery's state needs no sentence: the page states it).
pub(crate) fn secrets_refusal(c: &Chrome, e: CaError) -> (StatusCode, Option<String>) {
    match e {
        CaError::InvalidField { .. } | CaError::InvalidInput(_) => {
            let status = ApiError(e).into_response().status();
            (status, Some(c.t("holder-secrets-err-code")))
        }
        e @ CaError::Conflict(_) => (ApiError(e).into_response().status(), None),
        e => {
            let (status, text) = refusal(c, e);
            (status, Some(text))
        }
    }
}

#[derive(Template)]
#[template(path = "holder/secrets_shown.html")]
struct SecretsShown {
    c: Chrome,
    password: String,
    pin: Option<String>,
    puk: Option<String>,
}

/// The secrets, once, on a printable page.
pub(crate) fn secrets_shown(c: Chrome, s: &KitSecrets) -> Response {
    let page = SecretsShown { c, password: s.revocation_password.clone(), pin: s.pin.clone(), puk: s.puk.clone() };
    render(StatusCode::OK, &page)
}

// -------------------------------------------------------------- order form

/// The form as a browser sends it (every field a string, kept to show
/// again; the ID document number is never shown again).
#[derive(Default, Deserialize)]
#[serde(default)]
struct FormInput {
    product: String,
    years: String,
    given_name: String,
    surname: String,
    email: String,
    phone: String,
    country: String,
    national_id: String,
    document_type: String,
    id_document_number: String,
    publish: Option<String>,
    language: String,
    /// Made with the page: a double submit is one order (Idempotency-Key).
    idem: String,
}

#[derive(Debug)]
struct Choice {
    value: &'static str,
    label: String,
    hint: String,
    checked: bool,
}

#[derive(Debug)]
struct TextField {
    id: &'static str,
    label: String,
    hint: String,
    value: String,
    error: Option<String>,
    kind: &'static str,
    autocomplete: &'static str,
    required: bool,
}

#[derive(Debug)]
struct Problem {
    target: String,
    text: String,
}

#[derive(Template)]
#[template(path = "holder/order_form.html")]
struct FormPage {
    c: Chrome,
    problems: Vec<Problem>,
    general: Option<String>,
    products: Vec<Choice>,
    product_error: Option<String>,
    years: Vec<Choice>,
    years_error: Option<String>,
    person: Vec<TextField>,
    document_types: Vec<Choice>,
    document_type_error: Option<String>,
    document: TextField,
    publish: bool,
    languages: Vec<Choice>,
    language_error: Option<String>,
    idem: String,
    prices: Vec<(String, String, String)>,
}

type Errors = Vec<(&'static str, String)>;

fn err_of(errors: &Errors, id: &str) -> Option<String> {
    errors.iter().find(|(f, _)| *f == id).map(|(_, t)| t.clone())
}

fn form_page_of(state: &AppState, c: Chrome, v: &FormInput, errors: &Errors, general: Option<String>) -> FormPage {
    let payment = state.orders.payment();
    let lang = c.code();
    let field = |id: &'static str, kind, autocomplete, required, value: &str| TextField {
        id,
        label: c.t(&format!("holder-orders-f-{}", id.replace('_', "-"))),
        hint: c.t(&format!("holder-orders-h-{}", id.replace('_', "-"))),
        value: value.to_owned(),
        error: err_of(errors, id),
        kind,
        autocomplete,
        required,
    };
    let person = vec![
        field("given_name", "text", "given-name", true, &v.given_name),
        field("surname", "text", "family-name", true, &v.surname),
        field("email", "email", "email", true, &v.email),
        field("phone", "tel", "tel", false, &v.phone),
        field("country", "text", "country", true, if v.country.is_empty() { "RO" } else { &v.country }),
        field("national_id", "text", "off", true, &v.national_id),
    ];
    // The ID document number is not shown again (it authenticates the
    // holder to the revocation hotline).
    let document = field("id_document_number", "text", "off", true, "");
    let choice =
        |value: &'static str, label: String, hint: String, checked: bool| Choice { value, label, hint, checked };
    let product = v.product.to_ascii_lowercase();
    let products = vec![
        choice(
            "TOKEN",
            c.t("holder-orders-product-token"),
            c.t("holder-orders-product-token-hint"),
            product == "token",
        ),
        choice(
            "CLOUD",
            c.t("holder-orders-product-cloud"),
            c.t("holder-orders-product-cloud-hint"),
            product == "cloud",
        ),
    ];
    let years = ["1", "2", "3"]
        .into_iter()
        .map(|y| choice(y, years_text(&c, y.parse().unwrap_or(1)), String::new(), v.years == y))
        .collect();
    let document_types = vec![
        choice("id-card", c.t("holder-orders-doc-id-card"), String::new(), v.document_type == "id-card"),
        choice("passport", c.t("holder-orders-doc-passport"), String::new(), v.document_type == "passport"),
    ];
    let chosen = if v.language.is_empty() { lang } else { v.language.as_str() };
    let languages = vec![
        choice("en", "English".into(), String::new(), chosen == "en"),
        choice("ro", "Română".into(), String::new(), chosen == "ro"),
    ];
    let prices = (1..=3)
        .map(|y| (years_text(&c, y), payment.price_text("token", y, lang), payment.price_text("cloud", y, lang)))
        .collect();
    let order = ["product", "years", "given_name", "surname", "email", "phone", "country", "national_id"]
        .into_iter()
        .chain(["document_type", "id_document_number", "language"]);
    let problems = order
        .filter_map(|id| {
            err_of(errors, id).map(|text| {
                let target = match id {
                    "product" | "years" | "document_type" | "language" => format!("{id}-0"),
                    _ => id.to_owned(),
                };
                Problem { target, text }
            })
        })
        .collect();
    let idem = if v.idem.len() == 32 && v.idem.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.idem.clone()
    } else {
        hex::encode(qcert_ca_core::desk::random_bytes::<16>())
    };
    FormPage {
        problems,
        general,
        products,
        product_error: err_of(errors, "product"),
        years,
        years_error: err_of(errors, "years"),
        person,
        document_types,
        document_type_error: err_of(errors, "document_type"),
        document,
        publish: v.publish.is_some(),
        languages,
        language_error: err_of(errors, "language"),
        idem,
        prices,
        c,
    }
}

/// `GET /order`: the order form.
async fn form_page(State(state): State<AppState>, c: Chrome) -> Response {
    let v = FormInput { years: "1".into(), ..FormInput::default() };
    render(StatusCode::OK, &form_page_of(&state, c, &v, &Vec::new(), None))
}

/// Check every field on its own (ca-core's parsers), so that the page can
/// say what is wrong with each.
fn check(state: &AppState, c: &Chrome, v: &FormInput) -> Errors {
    let mut e: Errors = Vec::new();
    let msg = |id: &str| c.t(&format!("holder-orders-e-{}", id.replace('_', "-")));
    if Product::parse(&v.product).is_err() {
        e.push(("product", msg("product")));
    }
    let offered = state.ca.policy().profile(PROFILE).map(|p| p.allowed_years.clone()).unwrap_or_default();
    let years_ok =
        v.years.trim().parse::<u32>().ok().filter(|y| ValidityYears::new(*y).is_ok() && offered.contains(y)).is_some();
    if !years_ok {
        e.push(("years", msg("years")));
    }
    let given = PersonName::parse("given name", &v.given_name);
    if given.is_err() {
        e.push(("given_name", msg("given_name")));
    }
    if PersonName::parse("surname", &v.surname).is_err() {
        e.push(("surname", msg("surname")));
    }
    if Email::parse(&v.email).is_err() {
        e.push(("email", msg("email")));
    }
    if !v.phone.trim().is_empty() && parse_phone(&v.phone).is_err() {
        e.push(("phone", msg("phone")));
    }
    match Country::parse(&v.country) {
        Err(_) => e.push(("country", msg("country"))),
        Ok(country) => {
            if SemanticsId::parse(&v.national_id, country).is_err() {
                e.push(("national_id", msg("national_id")));
            } else if given.is_ok() && e.iter().all(|(f, _)| *f != "surname") {
                // Together they must fit the certificate's commonName.
                if let Err(CaError::InvalidField { field: "given name", .. }) =
                    Holder::parse(&v.given_name, &v.surname, "a@b.cd", &v.country, &v.national_id)
                {
                    e.push(("given_name", c.t("holder-orders-e-name-length")));
                }
            }
        }
    }
    if !v.document_type.trim().is_empty() && parse_document_type(&v.document_type).is_err() {
        e.push(("document_type", msg("document_type")));
    }
    if DocumentNumber::parse(&v.id_document_number).is_err() {
        e.push(("id_document_number", msg("id_document_number")));
    }
    if !matches!(v.language.trim(), "" | "en" | "ro") {
        e.push(("language", msg("language")));
    }
    e
}

/// The form field a ca-core refusal is about.
fn field_id(field: &str) -> Option<&'static str> {
    Some(match field {
        "product" => "product",
        "given name" => "given_name",
        "surname" => "surname",
        "email" => "email",
        "country" => "country",
        "id-number" => "national_id",
        "ID document number" => "id_document_number",
        "phone" => "phone",
        "document_type" => "document_type",
        "language" => "language",
        _ => return None,
    })
}

/// `POST /order`: the order is created by the same call as `POST
/// /api/v1/orders` (same checks, same limits), then the browser goes to
/// the order's page (303). A refusal shows the form again, each error
/// beside its field, with what was typed (but the ID document number).
async fn submit(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    c: Chrome,
    Form(v): Form<FormInput>,
) -> Response {
    let again = |errors: Errors, general: Option<String>, status: StatusCode| {
        render(status, &form_page_of(&state, c.clone(), &v, &errors, general))
    };
    let errors = check(&state, &c, &v);
    if !errors.is_empty() {
        return again(errors, None, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let form = OrderForm {
        product: v.product.clone(),
        years: v.years.trim().parse().unwrap_or_default(),
        given_name: v.given_name.clone(),
        surname: v.surname.clone(),
        email: v.email.clone(),
        country: v.country.clone(),
        national_id: v.national_id.clone(),
        id_document_number: v.id_document_number.clone(),
        publish: v.publish.is_some(),
        language: Some(v.language.trim().to_owned()).filter(|l| !l.is_empty()).or(Some(c.code().to_owned())),
        phone: Some(v.phone.clone()).filter(|p| !p.trim().is_empty()),
        document_type: Some(v.document_type.trim().to_owned()).filter(|d| !d.is_empty()),
    };
    let idem = (v.idem.len() == 32 && v.idem.bytes().all(|b| b.is_ascii_hexdigit())).then_some(v.idem.as_str());
    let client = client_key(peer, &headers, state.trusted_proxies());
    match state.orders.create_from(Some(&client), &form, idem).await {
        Ok(created) => match state.orders.order_url(&created.order.id) {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => error_page(&c, e),
        },
        Err(CaError::InvalidField { field, .. }) if field_id(field).is_some() => {
            let id = field_id(field).unwrap_or("product");
            let msg = c.t(&format!("holder-orders-e-{}", id.replace('_', "-")));
            again(vec![(id, msg)], None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(CaError::ValidityNotOffered(..)) => {
            again(vec![("years", c.t("holder-orders-e-years"))], None, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(CaError::Conflict(_)) => {
            let n = i64::from(state.orders.form_limits().open_unpaid_per_email);
            again(Vec::new(), Some(c.tn("holder-orders-e-open-unpaid", n)), StatusCode::CONFLICT)
        }
        Err(e @ CaError::RateLimited { .. }) => {
            let retry = match &e {
                CaError::RateLimited { retry_after_secs } => *retry_after_secs,
                _ => 0,
            };
            let (status, text) = refusal(&c, e);
            let mut r = again(Vec::new(), Some(text), status);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
            r
        }
        Err(e) => error_page(&c, e),
    }
}

// ------------------------------------------------- TEST payment provider

#[derive(Template)]
#[template(path = "holder/pay_test.html")]
struct TestPayPage {
    c: Chrome,
    /// "Order" or "Renewal", and its id.
    what: String,
    id: String,
    price: String,
    product: String,
    paid: bool,
    paid_text: String,
    action: String,
    back_href: String,
    back_text: String,
}

/// What the TEST provider is asked to pay: an order or a renewal, found
/// only while the provider is on (else `NotFound`, as if there were no page).
enum Payable {
    Order(qcert_ca_core::store::orders::OrderRow),
    Renewal(qcert_ca_core::store::renewals::RenewalRow),
}

impl Payable {
    async fn find(state: &AppState, renewal: bool, id: &str) -> Result<Payable, CaError> {
        if renewal {
            state.orders.test_payment_renewal(id).await.map(Payable::Renewal)
        } else {
            state.orders.test_payment_order(id).await.map(Payable::Order)
        }
    }

    /// The holder's language: the order's (a renewal's certificate's order).
    async fn language(&self, state: &AppState) -> String {
        match self {
            Payable::Order(o) => o.language.clone(),
            Payable::Renewal(r) => match state.orders.order_behind(&r.serial).await {
                Ok(Some(o)) => o.language,
                _ => "en".into(),
            },
        }
    }

    /// Where the holder goes back to: the order's page, the renewal's page.
    fn back(&self, state: &AppState) -> Result<String, CaError> {
        match self {
            Payable::Order(o) => state.orders.order_url(&o.id),
            Payable::Renewal(r) => Ok(format!("/api/v1/certificates/{}/renewal", r.serial)),
        }
    }

    async fn pay(&self, state: &AppState) -> Result<(), CaError> {
        match self {
            Payable::Order(o) => state.orders.pay_with_test_provider(&o.id).await.map(|_| ()),
            Payable::Renewal(r) => state.orders.pay_renewal_with_test_provider(&r.id).await.map(|_| ()),
        }
    }

    fn page(&self, state: &AppState, c: Chrome) -> Result<TestPayPage, CaError> {
        // Message ids: what it is, that it is paid, the way back.
        let (id, product, years, paid, action, [what, paid_text, back_text]) = match self {
            Payable::Order(o) => (
                &o.id,
                &o.product,
                o.years,
                o.paid_at.is_some(),
                format!("/pay/test/{}", o.id),
                ["holder-orders-fact-order", "holder-pay-test-paid", "holder-orders-back"],
            ),
            Payable::Renewal(r) => (
                &r.id,
                &r.product,
                r.years,
                r.paid_at.is_some(),
                format!("/pay/test/renewal/{}", r.id),
                ["holder-pay-test-renewal", "holder-pay-test-renewal-paid", "holder-pay-test-renewal-back"],
            ),
        };
        Ok(TestPayPage {
            what: c.t(what),
            id: id.clone(),
            price: state.orders.payment().price_text(product, years, c.code()),
            product: product_name(&c, product),
            paid,
            paid_text: c.t(paid_text),
            action,
            back_href: self.back(state)?,
            back_text: c.t(back_text),
            c,
        })
    }
}

/// The order or renewal a TEST provider URL names, with the holder's
/// language; an error page if there is none.
async fn payable(state: &AppState, id: &str, headers: &HeaderMap, uri: &Uri) -> Result<(Payable, Chrome), Response> {
    let renewal = uri.path().starts_with("/pay/test/renewal/");
    match Payable::find(state, renewal, id).await {
        Ok(item) => {
            let c = chrome_for(headers, uri, &item.language(state).await);
            Ok((item, c))
        }
        Err(e) => Err(error_page(&Chrome::from_request(headers, uri), e)),
    }
}

/// `GET /pay/test/{order_id}` and `GET /pay/test/renewal/{renewal_id}`:
/// qcert's TEST payment provider (only when `[orders.payment]
/// test_provider` is on; otherwise there is no page).
async fn test_pay_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let (item, c) = match payable(&state, &id, &headers, &uri).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    match item.page(&state, c.clone()) {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(&c, e),
    }
}

/// `POST /pay/test/{order_id}` (or `/pay/test/renewal/{renewal_id}`): pay
/// through the signed webhook path (ca-core signs the event with the
/// webhook key and applies it as the webhook does), then back to the
/// order's (renewal's) page.
async fn test_pay(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap, uri: Uri) -> Response {
    let (item, c) = match payable(&state, &id, &headers, &uri).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if let Err(e) = item.pay(&state).await {
        return error_page(&c, e);
    }
    match item.back(&state) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => error_page(&c, e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_data_uri() {
        let uri = qr_data_uri("otpauth://totp/qcert:ioana?secret=JBSWY3DPEHPK3PXP&issuer=qcert").unwrap();
        let b64 = uri.strip_prefix("data:image/svg+xml;base64,").unwrap();
        let svg = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
        assert!(svg.contains("<svg") && svg.contains("<path") && !svg.contains("style="), "{svg}");
    }

    #[test]
    fn visitors_choice_beats_the_orders_language() {
        let uri: Uri = "/api/v1/orders/x".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(chrome_for(&h, &uri, "ro").lang, Lang::Ro);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en"));
        assert_eq!(chrome_for(&h, &uri, "ro").lang, Lang::Ro, "Accept-Language does not override the order");
        h.insert(header::COOKIE, HeaderValue::from_static("qcert-lang=en"));
        assert_eq!(chrome_for(&h, &uri, "ro").lang, Lang::En);
        let ro: Uri = "/api/v1/orders/x?lang=ro".parse().unwrap();
        assert_eq!(chrome_for(&h, &ro, "en").lang, Lang::Ro);
        assert_eq!(page_uri("http://h:1/api/v1/orders/t").path(), "/api/v1/orders/t");
    }
}
