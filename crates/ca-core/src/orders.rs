//! Orders (DOMAIN.md "Order", seed 002): order form -> payment -> identity
//! validation by an RA officer -> issuance -> one-time secret delivery.
//!
//! - The holder follows an order through a capability link: the order id
//!   plus an HMAC of it under the lookup key, so links are unguessable and
//!   nothing about them is stored. Wrong, truncated and unknown links all
//!   get the same `NotFound`.
//! - Every state change is a conditional UPDATE: a second approval, a
//!   replayed webhook or two racing uploads change an order once.
//! - TOKEN: the certificate is issued once the order is approved *and* its
//!   CSR is in (either order). CLOUD: after approval the holder enrols an
//!   authenticator (TOTP) and the certificate is issued, with a key made in
//!   the HSM, at the first valid authorization code.
//! - After issuance the secrets (revocation password; for a TOKEN kit also
//!   PIN and PUK) are sealed for one reveal by link + generation code; the
//!   code is kept sealed until printed (`qcert kit print`) or shown to an
//!   RA officer, then erased.

mod renewal;

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::audit::{self, Event, Outcome};
use crate::ca::{Ca, IssueOptions, KeySource};
use crate::csr;
use crate::delivery::{generate_pin, generate_puk, Deliveries, GenerationCode, KitSecrets};
use crate::desk::{DocumentNumber, RevocationDesk};
use crate::error::CaError;
use crate::holder::{Holder, ValidityYears};
use crate::notice::{Notice, NoticeKind, Notices};
use crate::operators::{Operator, Role};
use crate::payment::{self, WebhookKey};
use crate::store::limits::Window;
use crate::store::orders::{NewOrder, OrderChange, OrderRow, PaymentRecorded, RefundDue};
use crate::store::renewals::RenewalRow;
use crate::totp::TotpSecret;
use crate::vault::Vault;
use crate::x509;

pub use renewal::{failpoint, Banner, RenewalReport, FIRST_REMINDER, RENEWAL_LEAD, SECOND_REMINDER};

/// The profile orders are issued under.
pub const PROFILE: &str = "qcp-n-qscd";

/// What order-link tags are computed over (`order-link:<id>`).
const LINK_DOMAIN: &str = "order-link";

/// An order left `issuing` this long was interrupted (issuance takes seconds).
pub const STALE_ISSUANCE: time::Duration = time::Duration::minutes(10);

/// How long identity validation may take after payment (the 24-hour promise).
pub const IDENTITY_PROMISE: time::Duration = time::Duration::hours(24);

/// Limits on CLOUD authorization codes (settings `orders.code_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLimits {
    /// Wrong codes after which an authenticator is locked until an RA officer unlocks it.
    pub lock_after: i64,
    /// Codes tried per order (authorization), right or wrong, in any window.
    pub per_order: Window,
    /// Codes tried per certificate (renewal by code), right or wrong, in any window.
    pub per_certificate: Window,
}

impl Default for CodeLimits {
    fn default() -> Self {
        CodeLimits {
            lock_after: 5,
            per_order: Window { limit: 10, window_secs: 900 },
            per_certificate: Window { limit: 10, window_secs: 900 },
        }
    }
}

/// Rate-limit scope of order forms per client address.
pub const SCOPE_FORM_CLIENT: &str = "order-form-client";
/// Rate-limit scope of order forms per email mailbox.
pub const SCOPE_FORM_EMAIL: &str = "order-form-email";

/// Unpaid orders deleted per statement, and statements per notifier tick.
const EXPIRY_BATCH: i64 = 500;
const EXPIRY_BATCHES_PER_TICK: u32 = 20;

/// Limits of the public order form (DOMAIN.md "Order"; issue 11): it mails
/// whatever address it is given, so what one client or one address can
/// make it do is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormLimits {
    /// New orders one client address may place (IPv6: per /64).
    pub per_client: Window,
    /// New orders for one mailbox (lower case, `+tag` removed).
    pub per_email: Window,
    /// Unpaid orders one email address may have open at once.
    pub open_unpaid_per_email: u32,
    /// An order not paid within this long expires: its link and payment
    /// stop working and the notifier deletes it.
    pub unpaid_ttl: time::Duration,
}

impl Default for FormLimits {
    fn default() -> Self {
        FormLimits {
            per_client: Window { limit: 20, window_secs: 3600 },
            per_email: Window { limit: 5, window_secs: 86_400 },
            open_unpaid_per_email: 3,
            unpaid_ttl: time::Duration::hours(72),
        }
    }
}

/// The authenticator of a CLOUD order as an RA officer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorState {
    /// `none` (not enrolled), `enrolling` (secret handed out, no code yet),
    /// `active` or `locked`.
    pub state: &'static str,
    pub wrong_codes: i64,
    pub locked_at: Option<i64>,
}

/// The secret delivery of an order as an RA officer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    /// `none`, `waiting` (for the holder's code), `blocked` or `revealed`.
    pub state: &'static str,
    /// Wrong generation codes on the current link.
    pub wrong_codes: i64,
    /// When the current link was made, blocked, revealed.
    pub created_at: Option<i64>,
    pub blocked_at: Option<i64>,
    pub revealed_at: Option<i64>,
    /// Links made for the order so far (reissues replace the earlier ones).
    pub links: usize,
    /// The kit's generation code is still waiting to be printed or read.
    pub code_waiting: bool,
}

/// What the holder ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Key on the holder's QSCD token; we receive a CSR.
    Token,
    /// Key in our HSM; remote signing.
    Cloud,
}

impl Product {
    pub fn parse(s: &str) -> Result<Product, CaError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "token" => Ok(Product::Token),
            "cloud" => Ok(Product::Cloud),
            _ => Err(CaError::field("product", "TOKEN or CLOUD")),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Token => "token",
            Product::Cloud => "cloud",
        }
    }
}

/// What an order costs and where the holder pays it (`[orders.payment]`):
/// the price per product and validity, and the payment provider's checkout
/// URL with placeholders `{order_id}`, `{amount}` (e.g. `89.00`),
/// `{amount_cents}` and `{currency}`. The capability link is never put in
/// the provider's URL: the provider's webhook names the order by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSettings {
    pub url_template: String,
    /// The checkout URL of a renewal, with `{renewal_id}` (the webhook's
    /// event then names `renewal_id`), `{amount}`, `{amount_cents}` and
    /// `{currency}`: a renewal costs what an order of its product and years does.
    pub renewal_url_template: String,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
    /// Price in cents of a TOKEN order of 1, 2 and 3 years.
    pub token_cents: [u64; 3],
    /// Price in cents of a CLOUD order of 1, 2 and 3 years.
    pub cloud_cents: [u64; 3],
    /// Serve qcert's own TEST payment provider (`/pay/test/{order_id}`,
    /// [`Orders::pay_with_test_provider`]): for trying qcert out, never for
    /// production, since anyone who knows an order id can mark it paid.
    pub test_provider: bool,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            url_template:
                "https://pay.example.invalid/checkout?reference={order_id}&amount={amount}&currency={currency}".into(),
            renewal_url_template:
                "https://pay.example.invalid/checkout?renewal={renewal_id}&amount={amount}&currency={currency}".into(),
            currency: "EUR".into(),
            token_cents: [8900, 15900, 21900],
            cloud_cents: [4900, 8900, 12900],
            test_provider: false,
        }
    }
}

impl PaymentSettings {
    /// The placeholders a checkout URL may use.
    pub const PLACEHOLDERS: [&'static str; 4] = ["{order_id}", "{amount}", "{amount_cents}", "{currency}"];
    /// The placeholders a renewal's checkout URL may use.
    pub const RENEWAL_PLACEHOLDERS: [&'static str; 4] = ["{renewal_id}", "{amount}", "{amount_cents}", "{currency}"];

    /// http(s) URLs using only known placeholders, and a 3-letter currency.
    pub fn validate(&self) -> Result<(), CaError> {
        for (setting, u, placeholders, words) in [
            (
                "orders.payment.url",
                &self.url_template,
                PaymentSettings::PLACEHOLDERS,
                "placeholders {order_id}, {amount}, {amount_cents}, {currency} only",
            ),
            (
                "orders.payment.renewal_url",
                &self.renewal_url_template,
                PaymentSettings::RENEWAL_PLACEHOLDERS,
                "placeholders {renewal_id}, {amount}, {amount_cents}, {currency} only",
            ),
        ] {
            if !(u.starts_with("https://") || u.starts_with("http://")) || u.chars().any(|c| c.is_whitespace()) {
                return Err(CaError::field(setting, "an http(s) URL without spaces"));
            }
            let mut rest = u.clone();
            for p in placeholders {
                rest = rest.replace(p, "");
            }
            if rest.contains(['{', '}']) {
                return Err(CaError::field(setting, words));
            }
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CaError::field("orders.payment.currency", "an ISO 4217 code such as EUR"));
        }
        Ok(())
    }

    /// The price in cents of `product` for `years` (1 to 3).
    pub fn cents(&self, product: &str, years: i64) -> u64 {
        let table = if product == Product::Cloud.as_str() { &self.cloud_cents } else { &self.token_cents };
        let i = usize::try_from(years.clamp(1, 3) - 1).unwrap_or(0);
        table.get(i).copied().unwrap_or_default()
    }

    /// `89.00`
    pub fn amount(&self, product: &str, years: i64) -> String {
        let c = self.cents(product, years);
        format!("{}.{:02}", c / 100, c % 100)
    }

    /// The price as people write it: `89.00 EUR` (en), `89,00 EUR` (ro).
    pub fn price_text(&self, product: &str, years: i64, language: &str) -> String {
        let amount = self.amount(product, years);
        let amount = if language == "ro" { amount.replace('.', ",") } else { amount };
        format!("{amount} {}", self.currency)
    }

    /// The checkout URL of an order.
    pub fn url(&self, order: &OrderRow) -> String {
        self.fill(&self.url_template, "{order_id}", &order.id, &order.product, order.years)
    }

    /// The checkout URL of a renewal (same prices as orders).
    pub fn renewal_url(&self, renewal: &RenewalRow) -> String {
        self.fill(&self.renewal_url_template, "{renewal_id}", &renewal.id, &renewal.product, renewal.years)
    }

    fn fill(&self, template: &str, id_placeholder: &str, id: &str, product: &str, years: i64) -> String {
        template
            .replace(id_placeholder, id)
            .replace("{amount_cents}", &self.cents(product, years).to_string())
            .replace("{amount}", &self.amount(product, years))
            .replace("{currency}", &self.currency)
    }
}

/// The order form as sent (raw strings stop here).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderForm {
    pub product: String,
    pub years: u32,
    pub given_name: String,
    pub surname: String,
    pub email: String,
    pub country: String,
    pub national_id: String,
    pub id_document_number: String,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub language: Option<String>,
    /// Optional, for the RA officer's call: E.164 (`+40 712 345 678`;
    /// spaces, dots, dashes and parentheses are dropped).
    #[serde(default)]
    pub phone: Option<String>,
    /// The identity document shown at validation: `id-card` or `passport`.
    #[serde(default)]
    pub document_type: Option<String>,
}

/// A phone number as E.164: `+`, a country code not starting with 0, 8 to
/// 15 digits in all; separators (space, `.`, `-`, `(`, `)`) are dropped.
pub fn parse_phone(s: &str) -> Result<String, CaError> {
    let bad = || CaError::field("phone", "an international number: + then 8 to 15 digits (E.164), e.g. +40712345678");
    let rest = s.trim().strip_prefix('+').ok_or_else(bad)?;
    if s.len() > 32 {
        return Err(bad());
    }
    let mut digits = String::with_capacity(15);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '.' | '-' | '(' | ')' => {}
            _ => return Err(bad()),
        }
    }
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return Err(bad());
    }
    Ok(format!("+{digits}"))
}

/// The identity document types an order may name.
pub fn parse_document_type(s: &str) -> Result<&'static str, CaError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "id-card" => Ok("id-card"),
        "passport" => Ok("passport"),
        _ => Err(CaError::field("document_type", "id-card or passport")),
    }
}

/// A created (or, for a repeated Idempotency-Key, found) order.
#[derive(Debug, Clone)]
pub struct Created {
    pub order: OrderRow,
    /// The holder's capability link token (`{id}.{mac}`).
    pub link: String,
    /// True when the Idempotency-Key was seen before with the same form.
    pub replayed: bool,
}

/// A webhook's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payment {
    Applied,
    Duplicate,
    /// A new payment for an order or renewal paid before: flagged for refund.
    AlreadyPaid,
}

/// The payment provider's event.
#[derive(Debug, serde::Deserialize)]
pub struct PaymentEvent {
    pub event_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub renewal_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub payment_ref: Option<String>,
}

impl PaymentEvent {
    /// Parse a webhook body (after its signature verified): JSON with an
    /// `event_id` of 1 to 128 characters and status `paid`.
    pub fn parse(body: &[u8]) -> Result<PaymentEvent, CaError> {
        let event: PaymentEvent = serde_json::from_slice(body)
            .map_err(|_| CaError::InvalidInput("the payment event is not the expected JSON".into()))?;
        if event.event_id.is_empty() || event.event_id.len() > 128 {
            return Err(CaError::field("event_id", "1 to 128 characters"));
        }
        if event.status != "paid" {
            return Err(CaError::InvalidInput("payment status is not handled (only \"paid\" is)".into()));
        }
        Ok(event)
    }
}

/// The workflow. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Orders {
    desk: RevocationDesk,
    vault: Arc<Vault>,
    webhook: Arc<WebhookKey>,
    deliveries: Deliveries,
    notices: Arc<dyn Notices>,
    base: String,
    limits: CodeLimits,
    form_limits: FormLimits,
    payment: Arc<PaymentSettings>,
    retention: crate::retention::RetentionPolicy,
}

impl Orders {
    /// `base` is the public address holders reach (links in emails).
    pub fn new(
        desk: RevocationDesk,
        vault: impl Into<Arc<Vault>>,
        webhook: WebhookKey,
        notices: Arc<dyn Notices>,
        base: &str,
    ) -> Orders {
        let vault = vault.into();
        let ca = desk.ca();
        // Revocations (any channel) are mailed through the same notices.
        ca.set_notices(notices.clone());
        let deliveries =
            Deliveries::new(ca.registry().clone(), vault.clone(), ca.clock().clone()).with_cost(desk.argon2_params());
        Orders {
            desk,
            vault,
            webhook: Arc::new(webhook),
            deliveries,
            notices,
            base: base.trim_end_matches('/').to_owned(),
            limits: CodeLimits::default(),
            form_limits: FormLimits::default(),
            payment: Arc::new(PaymentSettings::default()),
            retention: crate::retention::RetentionPolicy::default(),
        }
    }

    /// Other retention periods than [`crate::retention::RetentionPolicy::default`].
    pub fn with_retention(mut self, retention: crate::retention::RetentionPolicy) -> Orders {
        self.retention = retention;
        self
    }

    pub fn retention(&self) -> crate::retention::RetentionPolicy {
        self.retention
    }

    /// The same workflow with other order-form limits.
    pub fn with_form_limits(mut self, limits: FormLimits) -> Orders {
        self.form_limits = limits;
        self
    }

    pub fn form_limits(&self) -> FormLimits {
        self.form_limits
    }

    /// An order still unpaid after the configured time has expired.
    fn expired(&self, row: &OrderRow, now: i64) -> bool {
        row.state == "awaiting-payment" && row.created_at <= now - self.form_limits.unpaid_ttl.whole_seconds()
    }

    /// Other limits on authorization codes than [`CodeLimits::default`].
    pub fn with_code_limits(mut self, limits: CodeLimits) -> Orders {
        self.limits = limits;
        self
    }

    pub fn code_limits(&self) -> CodeLimits {
        self.limits
    }

    /// Prices and the payment provider's checkout URL (else the defaults).
    pub fn with_payment(mut self, payment: PaymentSettings) -> Result<Orders, CaError> {
        payment.validate()?;
        self.payment = Arc::new(payment);
        Ok(self)
    }

    pub fn payment(&self) -> &PaymentSettings {
        &self.payment
    }

    /// The base of the links in holders' mails.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn ca(&self) -> &Ca {
        self.desk.ca()
    }

    pub fn desk(&self) -> &RevocationDesk {
        &self.desk
    }

    pub fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// The vault order secrets (and the notifier's mail bodies) are sealed with.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    fn now(&self) -> OffsetDateTime {
        self.ca().clock().now()
    }

    async fn audit(&self, actor: &str, action: &str, order: &str, outcome: Outcome, detail: String) {
        let e = Event { actor, action, subject: order, outcome, detail };
        audit::record(self.ca().registry(), self.now().unix_timestamp(), &e).await;
    }

    async fn notify(&self, row: &OrderRow, kind: NoticeKind, dedupe: String, vars: Vec<(&'static str, String)>) {
        let mut all = vec![("given_name", row.given_name.clone())];
        all.extend(vars);
        let notice =
            Notice { dedupe_key: dedupe, kind, to: row.email.clone(), language: row.language.clone(), vars: all };
        // The order's state is already recorded; a mail that cannot be
        // queued is logged for the operator, and re-sent by the next action.
        if let Err(e) = self.notices.send(notice).await {
            tracing::error!(order = %row.id, kind = kind.template(), error = %e, "could not queue a notice");
        }
    }

    /// The holder's capability link token for an order.
    pub fn link_token(&self, id: &str) -> Result<String, CaError> {
        let mac = self.desk.lookup_key().tag(LINK_DOMAIN, id)?;
        Ok(format!("{id}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)))
    }

    /// The order's holder page (`{base}/api/v1/orders/{token}`).
    pub fn order_url(&self, id: &str) -> Result<String, CaError> {
        Ok(format!("{}/api/v1/orders/{}", self.base, self.link_token(id)?))
    }

    /// The order a link token opens; any failure is the same `NotFound`.
    pub async fn by_link(&self, token: &str) -> Result<OrderRow, CaError> {
        let not_found = || CaError::NotFound("no order behind this link".into());
        let (id, mac) = token.split_once('.').ok_or_else(not_found)?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || mac.len() > 64 {
            return Err(not_found());
        }
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(mac).map_err(|_| not_found())?;
        if !self.desk.lookup_key().verify_tag(LINK_DOMAIN, id, &given)? {
            return Err(not_found());
        }
        let row = self.ca().registry().order(id).await?.ok_or_else(not_found)?;
        if self.expired(&row, self.now().unix_timestamp()) {
            return Err(not_found());
        }
        Ok(row)
    }

    /// Take an order. With an Idempotency-Key, repeating the request returns
    /// the first order; the same key with a different form is refused.
    ///
    /// Without a client address (in-process callers) only the per-email
    /// limits apply; the HTTP form uses [`Orders::create_from`].
    pub async fn create(&self, form: &OrderForm, idempotency_key: Option<&str>) -> Result<Created, CaError> {
        self.create_from(None, form, idempotency_key).await
    }

    /// Take an order sent by `client` (its address, as the rate-limit key).
    /// After validation: a repeated Idempotency-Key with the same form
    /// returns the first order, counting nothing; otherwise the order counts
    /// against the client's and the mailbox's windows, and is refused if
    /// the address would have more open unpaid orders than allowed (the
    /// order is inserted, then counted, then removed if over: concurrent
    /// forms never exceed the cap).
    pub async fn create_from(
        &self,
        client: Option<&str>,
        form: &OrderForm,
        idempotency_key: Option<&str>,
    ) -> Result<Created, CaError> {
        if let Some(k) = idempotency_key {
            if k.is_empty() || k.len() > 128 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CaError::field("Idempotency-Key", "1 to 128 printable ASCII characters"));
            }
        }
        let product = Product::parse(&form.product)?;
        let years = ValidityYears::new(form.years)?;
        let profile = self.ca().policy().profile(PROFILE)?;
        if !profile.allowed_years.contains(&u32::from(years.get())) {
            return Err(CaError::ValidityNotOffered(form.years, "1, 2 or 3".into()));
        }
        let holder = Holder::parse(&form.given_name, &form.surname, &form.email, &form.country, &form.national_id)?;
        let document = DocumentNumber::parse(&form.id_document_number)?;
        let language = match form.language.as_deref().map(str::trim) {
            None | Some("") | Some("en") => "en",
            Some("ro") => "ro",
            Some(_) => return Err(CaError::field("language", "en or ro")),
        };
        let phone = form.phone.as_deref().filter(|p| !p.trim().is_empty()).map(parse_phone).transpose()?;
        let document_type = form.document_type.as_deref().map(parse_document_type).transpose()?;
        let document_key = self.desk.lookup_key().lookup_key(&document)?;
        let fingerprint = {
            let mut h = Sha256::new();
            for part in [
                product.as_str(),
                &years.get().to_string(),
                holder.given_name.as_str(),
                holder.surname.as_str(),
                holder.email.as_str(),
                holder.country.as_str(),
                holder.semantics_id.as_str(),
                &document_key,
                if form.publish { "1" } else { "0" },
                language,
            ]
            .into_iter()
            // Fields added later count only when given, so a form without
            // them keeps the fingerprint it had before.
            .chain(
                phone
                    .as_deref()
                    .map(|p| ("phone", p))
                    .into_iter()
                    .chain(document_type.map(|d| ("document_type", d)))
                    .flat_map(|(k, v)| [k, v]),
            ) {
                h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
                h.update(part.as_bytes());
            }
            hex::encode(h.finalize())
        };
        let registry = self.ca().registry();
        if let Some(key) = idempotency_key {
            if let Some(first) = registry.order_by_idempotency_key(key).await? {
                return self.replay(first, &fingerprint).await;
            }
        }
        if let Some(client) = client {
            self.ca().rate_limit(SCOPE_FORM_CLIENT, client, self.form_limits.per_client).await?;
        }
        self.ca().rate_limit(SCOPE_FORM_EMAIL, &holder.email.mailbox_key(), self.form_limits.per_email).await?;
        let id = hex::encode(crate::desk::random_bytes::<16>());
        let new = NewOrder {
            id: &id,
            idempotency_key,
            request_hash: &fingerprint,
            product: product.as_str(),
            years: i64::from(years.get()),
            given_name: holder.given_name.as_str(),
            surname: holder.surname.as_str(),
            email: holder.email.as_str(),
            country: holder.country.as_str(),
            semantics_id: holder.semantics_id.as_str(),
            document_key: &document_key,
            publish: form.publish,
            language,
            phone: phone.as_deref(),
            document_type,
        };
        let now = self.now().unix_timestamp();
        if !registry.insert_order(&new, now).await? {
            // The key was taken meanwhile: same form -> the same order.
            let key = idempotency_key.unwrap_or_default();
            let first = registry
                .order_by_idempotency_key(key)
                .await?
                .ok_or_else(|| CaError::Internal("idempotency key taken but no order".into()))?;
            return self.replay(first, &fingerprint).await;
        }
        let since = now - self.form_limits.unpaid_ttl.whole_seconds();
        let open = registry.open_unpaid_orders(holder.email.as_str(), since).await?;
        if open > i64::from(self.form_limits.open_unpaid_per_email) {
            registry.delete_unpaid_order(&id).await?;
            return Err(CaError::Conflict(format!(
                "this email address already has {} unpaid orders open: pay one of them (the links were mailed) \
                 or wait until they expire",
                self.form_limits.open_unpaid_per_email
            )));
        }
        let row = registry.order(&id).await?.ok_or_else(|| CaError::Internal("order vanished".into()))?;
        self.audit(
            "holder",
            "order.create",
            &id,
            Outcome::Success,
            format!("product={} years={}", product.as_str(), years.get()),
        )
        .await;
        let url = self.order_url(&id)?;
        self.notify(
            &row,
            NoticeKind::OrderReceived,
            format!("order-received:{id}"),
            vec![
                ("order_id", id.clone()),
                ("order_url", url),
                ("price", self.payment.price_text(&row.product, row.years, &row.language)),
                ("payment_url", self.payment.url(&row)),
            ],
        )
        .await;
        let link = self.link_token(&id)?;
        Ok(Created { order: row, link, replayed: false })
    }

    /// A repeated Idempotency-Key: the first order if the form is the same.
    async fn replay(&self, first: OrderRow, fingerprint: &str) -> Result<Created, CaError> {
        if first.request_hash != fingerprint {
            return Err(CaError::Conflict(
                "this Idempotency-Key was used for a different order; use a new key for a new order".into(),
            ));
        }
        if self.expired(&first, self.now().unix_timestamp()) {
            return Err(CaError::Conflict(
                "the order of this Idempotency-Key expired unpaid; use a new key for a new order".into(),
            ));
        }
        let link = self.link_token(&first.id)?;
        Ok(Created { order: first, link, replayed: true })
    }

    /// Delete orders left unpaid past [`FormLimits::unpaid_ttl`], in
    /// batches (at most 10,000 a call; the notifier calls this every tick).
    /// (Rate-limit events out of their window go in the retention purge.)
    /// One audit entry gives the count. Returns how many orders went.
    pub async fn expire_unpaid(&self, now: OffsetDateTime) -> Result<u64, CaError> {
        let registry = self.ca().registry();
        let now = now.unix_timestamp();
        let before = now - self.form_limits.unpaid_ttl.whole_seconds();
        let mut deleted = 0;
        for _ in 0..EXPIRY_BATCHES_PER_TICK {
            let n = registry.delete_expired_unpaid_orders(before, EXPIRY_BATCH).await?;
            deleted += n;
            if n < EXPIRY_BATCH.unsigned_abs() {
                break;
            }
        }
        if deleted > 0 {
            let hours = self.form_limits.unpaid_ttl.whole_hours();
            let e = Event {
                actor: "notifier",
                action: "order.expire",
                subject: "orders",
                outcome: Outcome::Success,
                detail: format!("deleted={deleted} unpaid after {hours} h"),
            };
            audit::record(registry, now, &e).await;
        }
        Ok(deleted)
    }

    /// The payment provider's webhook: `signature` is its signature header.
    pub async fn payment_webhook(&self, signature: &str, body: &[u8]) -> Result<Payment, CaError> {
        let now = self.now();
        payment::verify_webhook(&self.webhook, signature, body, now, payment::DEFAULT_TOLERANCE)?;
        let event = PaymentEvent::parse(body)?;
        let registry = self.ca().registry();
        let order_id = match (event.order_id, event.renewal_id) {
            (Some(o), None) => o,
            (None, Some(renewal)) => {
                let r = registry.renewal(&renewal).await?.ok_or_else(|| CaError::NotFound("no such renewal".into()))?;
                let payment_ref = event.payment_ref.unwrap_or_else(|| event.event_id.clone());
                let recorded =
                    registry.record_renewal_payment(&event.event_id, &r.id, &payment_ref, now.unix_timestamp()).await?;
                let detail = format!("renewal={} event={}", r.id, event.event_id);
                let outcome = self.payment_outcome(recorded, "renewal", &r.serial, detail).await;
                if matches!(outcome, Payment::Applied) {
                    self.notify_renewal(&r, NoticeKind::RenewalPaid, |_| {
                        vec![
                            ("serial", r.serial.clone()),
                            ("issue_at", crate::clock::rfc3339(r.issue_at)),
                            ("renewal_url", self.renewal_url(&r.serial)),
                        ]
                    })
                    .await?;
                }
                return Ok(outcome);
            }
            _ => {
                return Err(CaError::InvalidInput(
                    "a payment event names exactly one of order_id and renewal_id".into(),
                ))
            }
        };
        let row = registry
            .order(&order_id)
            .await?
            .filter(|r| !self.expired(r, now.unix_timestamp()))
            .ok_or_else(|| CaError::NotFound("no such order (unpaid orders expire and are deleted)".into()))?;
        let due = (now + IDENTITY_PROMISE).unix_timestamp();
        let payment_ref = event.payment_ref.unwrap_or_else(|| event.event_id.clone());
        let recorded =
            registry.record_payment(&event.event_id, &row.id, &payment_ref, now.unix_timestamp(), due).await?;
        let outcome = self.payment_outcome(recorded, "order", &row.id, format!("event={}", event.event_id)).await;
        if matches!(outcome, Payment::Applied) {
            if let Some(paid) = registry.order(&row.id).await?.filter(|o| o.paid_at.is_some()) {
                let url = self.order_url(&paid.id)?;
                self.notify(
                    &paid,
                    NoticeKind::PaymentReceived,
                    format!("payment-received:{}", paid.id),
                    vec![("order_id", paid.id.clone()), ("order_url", url)],
                )
                .await;
            }
        }
        Ok(outcome)
    }

    /// qcert's TEST payment provider pays order `order_id`: the event a
    /// provider would send (`status: paid`, a fresh event id), signed with
    /// the webhook key and handed to [`Orders::payment_webhook`], the one
    /// path every payment takes. Refused (`NotFound`, as if there were no
    /// such page) unless `[orders.payment] test_provider` is on.
    pub async fn pay_with_test_provider(&self, order_id: &str) -> Result<Payment, CaError> {
        self.test_payment_event("order_id", order_id).await
    }

    /// The TEST payment provider pays renewal `renewal_id`, as
    /// [`Orders::pay_with_test_provider`] pays an order.
    pub async fn pay_renewal_with_test_provider(&self, renewal_id: &str) -> Result<Payment, CaError> {
        self.test_payment_event("renewal_id", renewal_id).await
    }

    async fn test_payment_event(&self, field: &str, id: &str) -> Result<Payment, CaError> {
        if !self.payment.test_provider {
            return Err(CaError::NotFound("the test payment provider is not enabled".into()));
        }
        let event_id = format!("test-{}", hex::encode(crate::desk::random_bytes::<16>()));
        let body = serde_json::to_vec(&serde_json::json!({
            "event_id": event_id,
            field: id,
            "status": "paid",
            "payment_ref": format!("TEST-{event_id}"),
        }))
        .map_err(|e| CaError::Internal(format!("test payment event: {e}")))?;
        let signature = payment::sign_webhook(&self.webhook, &body, self.now());
        self.payment_webhook(&signature, &body).await
    }

    /// An order awaiting payment, for the TEST payment provider's page
    /// (`NotFound` unless the provider is on and the order exists unpaid).
    pub async fn test_payment_order(&self, order_id: &str) -> Result<OrderRow, CaError> {
        let not_found = || CaError::NotFound("no order to pay here".into());
        if !self.payment.test_provider || order_id.len() != 32 || !order_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        self.ca()
            .registry()
            .order(order_id)
            .await?
            .filter(|r| !self.expired(r, self.now().unix_timestamp()))
            .ok_or_else(not_found)
    }

    /// A renewal, for the TEST payment provider's page (`NotFound` unless
    /// the provider is on and the renewal exists; paid or not, so the page
    /// can say it is paid).
    pub async fn test_payment_renewal(&self, renewal_id: &str) -> Result<RenewalRow, CaError> {
        let not_found = || CaError::NotFound("no renewal to pay here".into());
        if !self.payment.test_provider || renewal_id.len() != 32 || !renewal_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(not_found());
        }
        self.ca().registry().renewal(renewal_id).await?.filter(|r| r.state != "cancelled").ok_or_else(not_found)
    }

    /// Audit what a payment event did: `{what}.paid` once, a second payment
    /// as `{what}.double-payment` (flagged for refund).
    async fn payment_outcome(&self, recorded: PaymentRecorded, what: &str, subject: &str, detail: String) -> Payment {
        match recorded {
            PaymentRecorded::Applied => {
                self.audit("payment-provider", &format!("{what}.paid"), subject, Outcome::Success, detail).await;
                Payment::Applied
            }
            PaymentRecorded::AlreadyPaid => {
                tracing::warn!(subject = %subject, "a second payment for an already paid {what}: flagged for refund");
                let detail = format!("{detail}: already paid; flagged for refund");
                self.audit("payment-provider", &format!("{what}.double-payment"), subject, Outcome::Refused, detail)
                    .await;
                Payment::AlreadyPaid
            }
            PaymentRecorded::Duplicate => Payment::Duplicate,
        }
    }

    /// Second payments of an order (and its renewals) to refund, for an RA officer.
    pub async fn refunds_due(&self, officer: &Operator, id: &str) -> Result<Vec<RefundDue>, CaError> {
        officer.require(Role::RaOfficer)?;
        Ok(self.ca().registry().refunds_due(id).await?)
    }

    /// Payments flagged for refund, for /metrics.
    pub async fn refunds_due_count(&self) -> Result<i64, CaError> {
        Ok(self.ca().registry().refunds_due_count().await?)
    }

    /// Orders waiting for identity validation, oldest promise first.
    pub async fn queue(&self, officer: &Operator, limit: i64) -> Result<Vec<OrderRow>, CaError> {
        officer.require(Role::RaOfficer)?;
        Ok(self.ca().registry().identity_queue(limit.clamp(1, 500)).await?)
    }

    /// An order by id, for an RA officer.
    pub async fn for_officer(&self, officer: &Operator, id: &str) -> Result<OrderRow, CaError> {
        officer.require(Role::RaOfficer)?;
        self.ca().registry().order(id).await?.ok_or_else(|| CaError::NotFound(format!("no order {id:?}")))
    }

    fn state_conflict(row: &OrderRow, wanted: &str) -> CaError {
        CaError::Conflict(format!("order {} is {}, not {wanted}", row.id, row.state))
    }

    /// Identity validated: the officer checked the ID document, whose
    /// number must be the one given with the order.
    pub async fn approve(&self, officer: &Operator, id: &str, document: &DocumentNumber) -> Result<OrderRow, CaError> {
        let row = self.for_officer(officer, id).await?;
        if self.desk.lookup_key().lookup_key(document)? != row.document_key {
            return Err(CaError::Conflict("the ID document checked is not the one given with the order".into()));
        }
        let actor = officer.actor();
        let change = OrderChange { decided_by: Some(&actor), ..Default::default() };
        let now = self.now().unix_timestamp();
        if !self.ca().registry().transition_order(&row.id, "awaiting-identity", "approved", change, now).await? {
            return Err(Self::state_conflict(&row, "awaiting identity validation"));
        }
        self.audit(&actor, "order.approve", &row.id, Outcome::Success, String::new()).await;
        let url = self.order_url(&row.id)?;
        // One mail with the one next step: CLOUD enrols the authenticator;
        // TOKEN uploads the CSR, unless it is in already (then the
        // certificate is issued now and the issued mail follows).
        if row.product == Product::Cloud.as_str() {
            self.notify(
                &row,
                NoticeKind::AuthenticatorInvitation,
                format!("authenticator:{}", row.id),
                vec![("order_id", row.id.clone()), ("enrol_url", format!("{url}/authenticator"))],
            )
            .await;
        } else if row.csr.is_some() {
            self.try_issue(&row.id, None).await?;
        } else {
            self.notify(
                &row,
                NoticeKind::IdentityApproved,
                format!("identity-approved:{}", row.id),
                vec![("order_id", row.id.clone()), ("csr_url", format!("{url}/csr"))],
            )
            .await;
        }
        self.reload(&row.id).await
    }

    async fn reload(&self, id: &str) -> Result<OrderRow, CaError> {
        self.ca().registry().order(id).await?.ok_or_else(|| CaError::NotFound(format!("no order {id:?}")))
    }

    /// Identity not validated (or the video session broke off): the holder
    /// gets a link to resume, without paying again.
    pub async fn reject(&self, officer: &Operator, id: &str, reason: &str) -> Result<OrderRow, CaError> {
        let row = self.for_officer(officer, id).await?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
            return Err(CaError::field("reason", "1 to 500 characters, no control characters"));
        }
        let actor = officer.actor();
        let change = OrderChange { decided_by: Some(&actor), rejection_reason: Some(reason), ..Default::default() };
        let now = self.now().unix_timestamp();
        if !self.ca().registry().transition_order(&row.id, "awaiting-identity", "rejected", change, now).await? {
            return Err(Self::state_conflict(&row, "awaiting identity validation"));
        }
        // The reason is free text about a person: outside the hash (audit.rs).
        let e = Event {
            actor: &actor,
            action: "order.reject",
            subject: &row.id,
            outcome: Outcome::Success,
            detail: "reason in the personal part".into(),
        };
        audit::record_with_personal(self.ca().registry(), now, &e, Some(reason)).await;
        let url = self.order_url(&row.id)?;
        self.notify(
            &row,
            NoticeKind::IdentityRejected,
            format!("identity-rejected:{}:{now}", row.id),
            vec![("reason", reason.to_owned()), ("resume_url", format!("{url}/resume"))],
        )
        .await;
        self.reload(&row.id).await
    }

    /// The holder resumes a rejected order: back in the queue with a fresh
    /// 24-hour promise, no new payment.
    pub async fn resume(&self, token: &str) -> Result<OrderRow, CaError> {
        let row = self.by_link(token).await?;
        let now = self.now();
        let change =
            OrderChange { identity_due_at: Some((now + IDENTITY_PROMISE).unix_timestamp()), ..Default::default() };
        if !self
            .ca()
            .registry()
            .transition_order(&row.id, "rejected", "awaiting-identity", change, now.unix_timestamp())
            .await?
        {
            return Err(Self::state_conflict(&row, "rejected"));
        }
        self.audit("holder", "order.resume", &row.id, Outcome::Success, String::new()).await;
        self.reload(&row.id).await
    }

    /// TOKEN: the holder's CSR, any time before issuance. Issues at once if
    /// the order is approved.
    pub async fn upload_csr(&self, token: &str, input: Vec<u8>) -> Result<OrderRow, CaError> {
        let row = self.by_link(token).await?;
        if row.product != Product::Token.as_str() {
            return Err(CaError::Conflict("a CLOUD order's key is made in our HSM; it takes no CSR".into()));
        }
        if matches!(row.state.as_str(), "issuing" | "issued") {
            return Err(Self::state_conflict(&row, "waiting for its CSR"));
        }
        let profile = self.ca().policy().profile(PROFILE)?.clone();
        let checked = input.clone();
        let verified = tokio::task::spawn_blocking(move || {
            let req = csr::decode(&checked)?;
            csr::verify(&req, &profile)
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))??;
        let key_id = hex::encode(x509::key_identifier(&verified.spki));
        let registry = self.ca().registry();
        if registry.key_in_use(&key_id, &row.id).await? {
            return Err(CaError::CsrRefused(
                "this public key is already certified or ordered; generate a new key pair on the token".into(),
            ));
        }
        if !registry.set_order_csr(&row.id, &input, &key_id, self.now().unix_timestamp()).await? {
            return Err(Self::state_conflict(&row, "waiting for its CSR"));
        }
        self.audit("holder", "order.csr", &row.id, Outcome::Success, format!("key_id={key_id}")).await;
        if row.state == "approved" {
            self.try_issue(&row.id, None).await?;
        }
        self.reload(&row.id).await
    }

    /// CLOUD: enrol the authenticator, once (after approval, or after an RA
    /// officer reset it). Returns the secret as an `otpauth://` URI and in
    /// base32; a second call is refused, never replaces the secret.
    pub async fn enrol_authenticator(&self, token: &str) -> Result<(String, String), CaError> {
        let row = self.by_link(token).await?;
        if row.product != Product::Cloud.as_str() {
            return Err(CaError::Conflict("only a CLOUD order enrols an authenticator".into()));
        }
        let once = || {
            CaError::Conflict(
                "the authenticator is already enrolled (the secret is handed out once); to enrol a new one, \
                 contact the registration authority (RA), which can reset it and send you a new invitation"
                    .into(),
            )
        };
        if row.totp_sealed.is_some() {
            return Err(once());
        }
        // After issuance only an RA reset (which erased the secret) leads here.
        if row.state != "approved" && row.state != "issued" {
            return Err(Self::state_conflict(&row, "approved (identity validated)"));
        }
        let secret = TotpSecret::generate();
        let sealed = self.vault.seal(secret.as_bytes(), format!("totp:{}", row.id).as_bytes())?;
        if !self.ca().registry().set_order_totp(&row.id, &sealed, self.now().unix_timestamp()).await? {
            return Err(once());
        }
        self.audit("holder", "order.authenticator", &row.id, Outcome::Success, String::new()).await;
        let account = format!("{} {}", row.given_name, row.surname);
        Ok((secret.otpauth_uri("qcert", &account).to_string(), secret.base32().to_string()))
    }

    /// CLOUD: an authorization code. The first valid one confirms the
    /// authenticator and issues the certificate; a code works once.
    pub async fn authorize(&self, token: &str, code: &str) -> Result<OrderRow, CaError> {
        let row = self.by_link(token).await?;
        if row.totp_sealed.is_none() {
            return Err(CaError::Conflict("enrol the authenticator first (the link in the invitation)".into()));
        }
        self.ca().rate_limit("order-code", &row.id, self.limits.per_order).await?;
        self.check_code(&row, code, "holder").await?;
        if row.state == "approved" {
            self.try_issue(&row.id, Some(KeySource::Hsm)).await?;
        }
        self.reload(&row.id).await
    }

    /// Check an authorization code of `order`'s authenticator. The attempt
    /// is counted before the code is checked (one conditional UPDATE), so
    /// at most `lock_after` codes are checked between right ones however
    /// many arrive at once, in any process; the wrong one that reaches the
    /// limit locks the authenticator until an RA officer unlocks it. A
    /// right code resets the count and is used up. Malformed codes are not
    /// attempts. Returns the TOTP step used.
    pub(crate) async fn check_code(&self, order: &OrderRow, code: &str, actor: &str) -> Result<i64, CaError> {
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CaError::field("code", "6 digits from the authenticator app"));
        }
        let sealed = order
            .totp_sealed
            .as_deref()
            .ok_or_else(|| CaError::Conflict("enrol the authenticator first (the link in the invitation)".into()))?;
        let registry = self.ca().registry();
        let lock_after = self.limits.lock_after;
        if order.totp_locked_at.is_some() {
            return Err(CaError::AuthenticatorLocked);
        }
        let Some(attempt) = registry.charge_totp_attempt(&order.id, lock_after).await? else {
            // Locked, or `lock_after` codes are being checked right now (the
            // count alone also says locked if recording the lock was interrupted).
            return Err(CaError::AuthenticatorLocked);
        };
        let raw = self.vault.open(sealed, format!("totp:{}", order.id).as_bytes())?;
        let secret = TotpSecret::from_bytes(&raw)?;
        let now = self.now();
        let refused = || CaError::SignatureRefused("wrong or already used authorization code".into());
        if let Some(step) = secret.verify(&digits, now, order.totp_last_step) {
            if registry.use_totp_step(&order.id, step, now.unix_timestamp()).await? {
                return Ok(step);
            }
        }
        self.audit(
            actor,
            "order.authorization-code",
            &order.id,
            Outcome::Refused,
            format!("wrong or already used authorization code ({attempt} of {lock_after})"),
        )
        .await;
        if attempt >= lock_after && registry.lock_totp(&order.id, now.unix_timestamp()).await? {
            self.audit(
                "ca",
                "order.authenticator-locked",
                &order.id,
                Outcome::Success,
                format!("{lock_after} wrong authorization codes"),
            )
            .await;
            return Err(CaError::AuthenticatorLocked);
        }
        Err(refused())
    }

    /// The authenticator's state, for an RA officer.
    pub fn authenticator_state(&self, o: &OrderRow) -> Option<AuthenticatorState> {
        if o.product != Product::Cloud.as_str() {
            return None;
        }
        let locked = o.totp_locked_at.is_some() || o.totp_failed_attempts >= self.limits.lock_after;
        let state = match (&o.totp_sealed, o.totp_enrolled_at) {
            (None, _) => "none",
            _ if locked => "locked",
            (Some(_), None) => "enrolling",
            (Some(_), Some(_)) => "active",
        };
        Some(AuthenticatorState { state, wrong_codes: o.totp_failed_attempts, locked_at: o.totp_locked_at })
    }

    /// An RA officer unlocks a locked authenticator (after talking to the
    /// holder): wrong codes count from zero again.
    pub async fn unlock_authenticator(&self, officer: &Operator, id: &str) -> Result<OrderRow, CaError> {
        let row = self.for_officer(officer, id).await?;
        if row.product != Product::Cloud.as_str() {
            return Err(CaError::Conflict("only a CLOUD order has an authenticator".into()));
        }
        if !self.ca().registry().unlock_totp(&row.id, self.now().unix_timestamp()).await? {
            return Err(CaError::Conflict(format!("the authenticator of order {} is not locked", row.id)));
        }
        let detail = format!("after {} wrong codes", row.totp_failed_attempts);
        self.audit(&officer.actor(), "order.authenticator-unlock", &row.id, Outcome::Success, detail).await;
        self.reload(&row.id).await
    }

    /// An RA officer resets the authenticator of a CLOUD order (the holder
    /// lost it or the enrolment answer), after checking the holder's ID
    /// document (`document` must be the order's): the secret is erased and
    /// the holder is mailed a fresh invitation to enrol once more.
    pub async fn reset_authenticator(
        &self,
        officer: &Operator,
        id: &str,
        document: &DocumentNumber,
    ) -> Result<OrderRow, CaError> {
        let row = self.for_officer(officer, id).await?;
        if row.product != Product::Cloud.as_str() {
            return Err(CaError::Conflict("only a CLOUD order has an authenticator".into()));
        }
        if self.desk.lookup_key().lookup_key(document)? != row.document_key {
            return Err(CaError::Conflict("the ID document checked is not the one given with the order".into()));
        }
        let now = self.now().unix_timestamp();
        if !self.ca().registry().reset_order_totp(&row.id, now).await? {
            return Err(Self::state_conflict(&row, "approved or issued"));
        }
        let actor = officer.actor();
        self.audit(&actor, "order.authenticator-reset", &row.id, Outcome::Success, String::new()).await;
        let url = self.order_url(&row.id)?;
        self.notify(
            &row,
            NoticeKind::AuthenticatorInvitation,
            format!("authenticator:{}:{now}", row.id),
            vec![("order_id", row.id.clone()), ("enrol_url", format!("{url}/authenticator"))],
        )
        .await;
        self.reload(&row.id).await
    }

    /// Issue the order's certificate if it is approved and ready. The order
    /// is claimed (`approved` -> `issuing`) so it is issued once; the
    /// certificate is reserved `issued_for = order:<id>`, so an issuance
    /// interrupted by a crash is completed, never repeated, when the claim
    /// goes stale (see [`Orders::recover_stalled`]).
    async fn try_issue(&self, id: &str, cloud: Option<KeySource>) -> Result<(), CaError> {
        let registry = self.ca().registry();
        let now = self.now().unix_timestamp();
        let row = self.reload(id).await?;
        let key = match (&cloud, row.csr.clone()) {
            (Some(_), _) if row.product == Product::Cloud.as_str() => KeySource::Hsm,
            (None, Some(csr)) if row.product == Product::Token.as_str() => KeySource::Csr(csr),
            _ => return Ok(()),
        };
        if !registry.claim_order_issuance(id, now, now - STALE_ISSUANCE.whole_seconds()).await? {
            return Ok(());
        }
        let issued_for = format!("order:{id}");
        let (serial, not_after, password) = match registry.certificate_issued_for(&issued_for).await? {
            Some((serial, status)) if status == "issued" => {
                // Issued before an interruption: its first password never
                // reached the holder, so the holder gets a new one.
                let rec = registry.certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
                let password = self.desk.replace_password(&serial, &row.document_key).await?;
                let not_after = OffsetDateTime::from_unix_timestamp(rec.cert.not_after).map_err(CaError::encoding)?;
                (serial, not_after, password)
            }
            stale => {
                if let Some((serial, _)) = stale {
                    // Reserved, never signed and stored: burn it.
                    registry.mark_aborted(&serial, now).await?;
                }
                let holder = Holder::parse(&row.given_name, &row.surname, &row.email, &row.country, &row.semantics_id)?;
                let years = ValidityYears::new(u32::try_from(row.years).unwrap_or(0))?;
                let options = IssueOptions { issued_for: Some(issued_for), ..Default::default() };
                match self.desk.issue_for_lookup(PROFILE, &holder, years, key, &row.document_key, &options).await {
                    Ok((cert, password)) => (cert.serial, cert.not_after, password),
                    Err(e) => {
                        registry.transition_order(id, "issuing", "approved", OrderChange::default(), now).await?;
                        self.audit("ca", "order.issue", id, Outcome::Failure, e.to_string()).await;
                        return Err(e);
                    }
                }
            }
        };
        failpoint("order-after-issue");
        if row.publish {
            self.ca().publish(&serial).await?;
        }
        let secrets = if row.product == Product::Token.as_str() {
            KitSecrets::token(&password, generate_pin(), generate_puk())
        } else {
            KitSecrets::cloud(&password)
        };
        self.deliver(&row, &serial, &secrets).await?;
        let change = OrderChange { serial: Some(&serial), ..Default::default() };
        registry.transition_order(id, "issuing", "issued", change, self.now().unix_timestamp()).await?;
        self.audit("ca", "order.issue", id, Outcome::Success, format!("serial={serial}")).await;
        let url = self.order_url(id)?;
        let not_after = not_after.format(&time::format_description::well_known::Rfc3339).map_err(CaError::encoding)?;
        self.notify(
            &row,
            NoticeKind::CertificateIssued,
            format!("certificate-issued:{serial}"),
            vec![
                ("serial", serial.clone()),
                ("not_after", not_after),
                ("certificate_url", format!("{url}/certificate")),
            ],
        )
        .await;
        Ok(())
    }

    /// Complete issuances a crash interrupted: orders left `issuing` for
    /// longer than [`STALE_ISSUANCE`] (the notifier calls this every tick).
    pub async fn recover_stalled(&self, now: OffsetDateTime) -> Result<u32, CaError> {
        let stale = (now - STALE_ISSUANCE).unix_timestamp();
        let mut done = 0;
        for (id, product) in self.ca().registry().stalled_issuances(stale).await? {
            let cloud = (product == Product::Cloud.as_str()).then_some(KeySource::Hsm);
            match self.try_issue(&id, cloud).await {
                Ok(()) => done += 1,
                Err(e) => tracing::error!(order = %id, error = %e, "could not complete an interrupted issuance"),
            }
        }
        Ok(done)
    }

    /// Seal the secrets for one reveal; mail the link; keep the code sealed for printing.
    async fn deliver(&self, row: &OrderRow, serial: &str, secrets: &KitSecrets) -> Result<(), CaError> {
        let (link, code) = self.deliveries.create(&row.id, Some(serial), secrets).await?;
        self.store_code(&row.id, &code).await?;
        self.mail_delivery(row, &link.id, secrecy::ExposeSecret::expose_secret(&link.token)).await;
        Ok(())
    }

    async fn store_code(&self, id: &str, code: &GenerationCode) -> Result<(), CaError> {
        let sealed = self.vault.seal(code.expose().as_bytes(), format!("kit-code:{id}").as_bytes())?;
        Ok(self.ca().registry().set_kit_code(id, Some(&sealed)).await?)
    }

    async fn mail_delivery(&self, row: &OrderRow, delivery_id: &str, token: &str) {
        let url = format!("{}/api/v1/secrets/{token}", self.base);
        let kind = if row.product == Product::Cloud.as_str() {
            NoticeKind::CloudSecretDelivery
        } else {
            NoticeKind::SecretDelivery
        };
        self.notify(row, kind, format!("secret-delivery:{delivery_id}"), vec![("delivery_url", url)]).await;
    }

    /// The generation code, once: for the kit envelope (`qcert kit print`)
    /// or for an RA officer to read to the holder. Erased when taken; only
    /// while the delivery link it belongs to waits for it (not blocked,
    /// replaced or used).
    pub async fn take_code(&self, actor: &str, id: &str) -> Result<String, CaError> {
        let registry = self.ca().registry();
        let Some(sealed) = registry.take_kit_code(id).await? else {
            let delivery = self.delivery_view(id).await?;
            return Err(match delivery.state {
                "blocked" => CaError::Conflict(format!(
                    "the delivery link of order {id} is blocked after wrong generation codes: its code is no \
                     use; issue a new delivery (POST /api/v1/ra/orders/{id}/secret-delivery)"
                )),
                "revealed" => CaError::Conflict(format!(
                    "the secrets of order {id} were already retrieved with the code; nothing is left to deliver"
                )),
                "none" => CaError::Conflict(format!("order {id} has no secret delivery (not issued yet?)")),
                _ if delivery.links > 1 => CaError::Conflict(format!(
                    "the delivery of order {id} was replaced by a new link, whose code was given to the RA officer \
                     who issued it; issue a new delivery if that code is lost"
                )),
                _ => CaError::Conflict(format!(
                    "order {id} has no code waiting: it was printed or shown already (an RA officer can issue a \
                     new delivery)"
                )),
            });
        };
        let raw = self.vault.open(&sealed, format!("kit-code:{id}").as_bytes())?;
        let code = String::from_utf8(raw.to_vec()).map_err(|_| CaError::Internal("sealed code is not text".into()))?;
        self.audit(actor, "order.code-taken", id, Outcome::Success, String::new()).await;
        Ok(code)
    }

    /// Where the order's secret delivery stands (its newest link).
    pub async fn delivery_view(&self, id: &str) -> Result<DeliveryView, CaError> {
        let registry = self.ca().registry();
        let all = registry.deliveries_of_order(id).await?;
        let code_waiting = registry.kit_code_waiting(id).await?;
        // At most one link is not superseded: the live one, or the one used.
        let Some(d) = all.iter().find(|d| d.superseded_at.is_none()).or(all.last()) else {
            return Ok(DeliveryView {
                state: "none",
                wrong_codes: 0,
                created_at: None,
                blocked_at: None,
                revealed_at: None,
                links: 0,
                code_waiting,
            });
        };
        let state = if d.retrieved_at.is_some() {
            "revealed"
        } else if d.superseded_at.is_some() {
            // Every link replaced and none live: the secrets were erased.
            "none"
        } else if d.blocked_at.is_some() || d.failed_attempts >= crate::delivery::MAX_ATTEMPTS {
            "blocked"
        } else {
            "waiting"
        };
        Ok(DeliveryView {
            state,
            wrong_codes: d.failed_attempts,
            created_at: Some(d.created_at),
            blocked_at: d.blocked_at,
            revealed_at: d.retrieved_at,
            links: all.len(),
            code_waiting,
        })
    }

    /// An RA officer issues a new link and code (after three wrong codes or
    /// a lost envelope); the link is mailed, the code returned to the officer.
    pub async fn reissue_delivery(&self, officer: &Operator, id: &str) -> Result<String, CaError> {
        let row = self.for_officer(officer, id).await?;
        let (link, code) = self.deliveries.reissue(officer, &row.id).await?;
        // The envelope's code belonged to the replaced link.
        self.ca().registry().set_kit_code(&row.id, None).await?;
        self.mail_delivery(&row, &link.id, secrecy::ExposeSecret::expose_secret(&link.token)).await;
        Ok(code.expose().to_owned())
    }

    /// The serials of an order's line, oldest first: the order's
    /// certificate, then each issued renewal of the one before.
    pub async fn certificate_line(&self, row: &OrderRow) -> Result<Vec<String>, CaError> {
        let registry = self.ca().registry();
        let mut line = Vec::new();
        let mut next = row.serial.clone();
        while let Some(serial) = next.take() {
            if line.contains(&serial) || line.len() > 1000 {
                break;
            }
            next = registry.renewal_of(&serial).await?.filter(|r| r.state == "issued").and_then(|r| r.new_serial);
            line.push(serial);
        }
        Ok(line)
    }

    /// A certificate of an order's line (holder, by link), DER: the newest
    /// (the last renewal issued), or the one with `serial` if it is of this
    /// line. Returns (serial, DER).
    pub async fn certificate(&self, token: &str, serial: Option<&str>) -> Result<(String, Vec<u8>), CaError> {
        let row = self.by_link(token).await?;
        let line = self.certificate_line(&row).await?;
        let chosen = match serial {
            None => {
                line.last().cloned().ok_or_else(|| CaError::Conflict("the certificate is not issued yet".into()))?
            }
            Some(s) => {
                let s = crate::ca::normalize_serial(s)?;
                if !line.contains(&s) {
                    return Err(CaError::NotFound("no certificate with this serial belongs to this order".into()));
                }
                s
            }
        };
        let rec =
            self.ca().registry().certificate(&chosen).await?.ok_or_else(|| CaError::UnknownSerial(chosen.clone()))?;
        let der = rec.der.ok_or_else(|| CaError::Conflict("the certificate is not issued yet".into()))?;
        Ok((chosen, der))
    }

    /// (waiting for identity validation, of which overdue) for /metrics.
    pub async fn backlog(&self) -> Result<(i64, i64), CaError> {
        Ok(self.ca().registry().identity_backlog(self.now().unix_timestamp()).await?)
    }
}

#[cfg(test)]
mod contact_tests {
    use super::*;

    #[test]
    fn phones_are_e164_and_document_types_closed() {
        assert_eq!(parse_phone(" +40 (712) 345-678 ").unwrap(), "+40712345678");
        for bad in ["0712345678", "+0712345678", "+4071", "+40712345678901234", "+40 712 ABC", "++40712345678", ""] {
            let e = parse_phone(bad).unwrap_err().to_string();
            assert!(e.contains("phone") && !e.contains("ABC"), "{bad:?}: {e}");
        }
        assert_eq!(parse_document_type("Passport").unwrap(), "passport");
        assert_eq!(parse_document_type("id-card").unwrap(), "id-card");
        assert!(parse_document_type("driving-licence").is_err());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn payment_urls_and_prices() {
        let p = PaymentSettings {
            url_template: "https://pay.example.eu/c?o={order_id}&a={amount}&c={amount_cents}&cur={currency}".into(),
            renewal_url_template: "https://pay.example.eu/r?r={renewal_id}&a={amount}&cur={currency}".into(),
            currency: "EUR".into(),
            token_cents: [8900, 15900, 21905],
            cloud_cents: [4900, 8900, 12900],
            test_provider: false,
        };
        p.validate().unwrap();
        assert_eq!(p.amount("token", 3), "219.05");
        assert_eq!(p.amount("cloud", 1), "49.00");
        assert_eq!(p.price_text("token", 2, "ro"), "159,00 EUR");
        assert_eq!(p.price_text("token", 2, "en"), "159.00 EUR");
        assert_eq!(p.cents("cloud", 9), 12900, "years are clamped, never an index panic");
        assert_eq!(p.cents("cloud", -1), 4900);
        let renewal = RenewalRow {
            id: "r1".into(),
            serial: "01".into(),
            order_id: None,
            product: "cloud".into(),
            years: 2,
            csr: None,
            state: "awaiting-payment".into(),
            issue_at: 0,
            new_serial: None,
            created_at: 0,
            paid_at: None,
        };
        assert_eq!(p.renewal_url(&renewal), "https://pay.example.eu/r?r=r1&a=89.00&cur=EUR");
        for bad in [
            PaymentSettings { renewal_url_template: "https://pay.example.eu/{order_id}".into(), ..p.clone() },
            PaymentSettings { renewal_url_template: "mailto:pay@example.eu".into(), ..p.clone() },
            PaymentSettings { url_template: "ftp://pay.example.eu/{order_id}".into(), ..p.clone() },
            PaymentSettings { url_template: "https://pay.example.eu/{order_url}".into(), ..p.clone() },
            PaymentSettings { url_template: "https://pay.example.eu/ {order_id}".into(), ..p.clone() },
            PaymentSettings { currency: "euro".into(), ..p.clone() },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        PaymentSettings::default().validate().unwrap();
    }

    #[test]
    fn payment_events_parse_or_are_refused() {
        let e = PaymentEvent::parse(br#"{"event_id":"evt_1","order_id":"o1","status":"paid"}"#).unwrap();
        assert_eq!((e.event_id.as_str(), e.order_id.as_deref(), e.renewal_id), ("evt_1", Some("o1"), None));
        let e = PaymentEvent::parse(br#"{"event_id":"evt_2","renewal_id":"r1","status":"paid","payment_ref":"p"}"#)
            .unwrap();
        assert_eq!((e.renewal_id.as_deref(), e.payment_ref.as_deref()), (Some("r1"), Some("p")));
        let long = format!(r#"{{"event_id":"{}","order_id":"o1","status":"paid"}}"#, "e".repeat(129));
        for body in [
            &b""[..],
            b"null",
            b"{}",
            b"\xff",
            br#"{"event_id":"","order_id":"o1","status":"paid"}"#,
            br#"{"event_id":"evt_1","order_id":"o1","status":"failed"}"#,
            br#"{"event_id":1,"status":"paid"}"#,
            long.as_bytes(),
        ] {
            assert!(PaymentEvent::parse(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }
}
