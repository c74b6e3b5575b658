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
use crate::store::orders::{NewOrder, OrderChange, OrderRow};
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
            return Err(CaError::InvalidInput(format!("payment status {:?} is not handled", event.status)));
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
}

impl Orders {
    /// `base` is the public address holders reach (links in emails).
    pub fn new(
        desk: RevocationDesk,
        vault: Vault,
        webhook: WebhookKey,
        notices: Arc<dyn Notices>,
        base: &str,
    ) -> Orders {
        let vault = Arc::new(vault);
        let ca = desk.ca();
        let deliveries =
            Deliveries::new(ca.registry().clone(), vault.clone(), ca.clock().clone()).with_cost(desk.argon2_params());
        Orders {
            desk,
            vault,
            webhook: Arc::new(webhook),
            deliveries,
            notices,
            base: base.trim_end_matches('/').to_owned(),
        }
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
        self.ca().registry().order(id).await?.ok_or_else(not_found)
    }

    /// Take an order. With an Idempotency-Key, repeating the request returns
    /// the first order; the same key with a different form is refused.
    pub async fn create(&self, form: &OrderForm, idempotency_key: Option<&str>) -> Result<Created, CaError> {
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
            ] {
                h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
                h.update(part.as_bytes());
            }
            hex::encode(h.finalize())
        };
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
        };
        let registry = self.ca().registry();
        if !registry.insert_order(&new, self.now().unix_timestamp()).await? {
            // The key was used before: same form -> the same order.
            let key = idempotency_key.unwrap_or_default();
            let first = registry
                .order_by_idempotency_key(key)
                .await?
                .ok_or_else(|| CaError::Internal("idempotency key taken but no order".into()))?;
            if first.request_hash != fingerprint {
                return Err(CaError::Conflict(
                    "this Idempotency-Key was used for a different order; use a new key for a new order".into(),
                ));
            }
            let link = self.link_token(&first.id)?;
            return Ok(Created { order: first, link, replayed: true });
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
            vec![("order_id", id.clone()), ("order_url", url)],
        )
        .await;
        let link = self.link_token(&id)?;
        Ok(Created { order: row, link, replayed: false })
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
                return if registry.record_renewal_payment(&event.event_id, &r.id, now.unix_timestamp()).await? {
                    self.audit(
                        "payment-provider",
                        "renewal.paid",
                        &r.serial,
                        Outcome::Success,
                        format!("renewal={} event={}", r.id, event.event_id),
                    )
                    .await;
                    Ok(Payment::Applied)
                } else {
                    Ok(Payment::Duplicate)
                };
            }
            _ => {
                return Err(CaError::InvalidInput(
                    "a payment event names exactly one of order_id and renewal_id".into(),
                ))
            }
        };
        let row = registry.order(&order_id).await?.ok_or_else(|| CaError::NotFound("no such order".into()))?;
        let due = (now + IDENTITY_PROMISE).unix_timestamp();
        let payment_ref = event.payment_ref.unwrap_or_else(|| event.event_id.clone());
        let applied =
            registry.record_payment(&event.event_id, &row.id, &payment_ref, now.unix_timestamp(), due).await?;
        if applied {
            self.audit(
                "payment-provider",
                "order.paid",
                &row.id,
                Outcome::Success,
                format!("event={}", event.event_id),
            )
            .await;
            Ok(Payment::Applied)
        } else {
            Ok(Payment::Duplicate)
        }
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
        self.notify(
            &row,
            NoticeKind::IdentityApproved,
            format!("identity-approved:{}", row.id),
            vec![("order_id", row.id.clone()), ("order_url", url.clone())],
        )
        .await;
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
        self.audit(&actor, "order.reject", &row.id, Outcome::Success, format!("reason={reason}")).await;
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

    /// CLOUD: enrol the authenticator (until the first code confirms it).
    /// Returns the secret as an `otpauth://` URI and in base32, once.
    pub async fn enrol_authenticator(&self, token: &str) -> Result<(String, String), CaError> {
        let row = self.by_link(token).await?;
        if row.product != Product::Cloud.as_str() {
            return Err(CaError::Conflict("only a CLOUD order enrols an authenticator".into()));
        }
        if row.state != "approved" {
            return Err(Self::state_conflict(&row, "approved (identity validated)"));
        }
        if row.totp_enrolled_at.is_some() {
            return Err(CaError::Conflict("the authenticator is already enrolled".into()));
        }
        let secret = TotpSecret::generate();
        let sealed = self.vault.seal(secret.as_bytes(), format!("totp:{}", row.id).as_bytes())?;
        if !self.ca().registry().set_order_totp(&row.id, &sealed, self.now().unix_timestamp()).await? {
            return Err(CaError::Conflict("the authenticator is already enrolled".into()));
        }
        self.audit("holder", "order.authenticator", &row.id, Outcome::Success, String::new()).await;
        let account = format!("{} {}", row.given_name, row.surname);
        Ok((secret.otpauth_uri("qcert", &account).to_string(), secret.base32().to_string()))
    }

    /// CLOUD: an authorization code. The first valid one confirms the
    /// authenticator and issues the certificate; a code works once.
    pub async fn authorize(&self, token: &str, code: &str) -> Result<OrderRow, CaError> {
        let row = self.by_link(token).await?;
        let sealed = row
            .totp_sealed
            .as_deref()
            .ok_or_else(|| CaError::Conflict("enrol the authenticator first (the link in the invitation)".into()))?;
        let raw = self.vault.open(sealed, format!("totp:{}", row.id).as_bytes())?;
        let secret = TotpSecret::from_bytes(&raw)?;
        let now = self.now();
        let refused = || CaError::SignatureRefused("wrong or already used authorization code".into());
        let step = secret.verify(code.trim(), now, row.totp_last_step).ok_or_else(refused)?;
        if !self.ca().registry().use_totp_step(&row.id, step, now.unix_timestamp()).await? {
            return Err(refused());
        }
        if row.state == "approved" {
            self.try_issue(&row.id, Some(KeySource::Hsm)).await?;
        }
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
        self.notify(
            row,
            NoticeKind::SecretDelivery,
            format!("secret-delivery:{delivery_id}"),
            vec![("delivery_url", url)],
        )
        .await;
    }

    /// The generation code, once: for the kit envelope (`qcert kit print`)
    /// or for an RA officer to read to the holder. Erased when taken.
    pub async fn take_code(&self, actor: &str, id: &str) -> Result<String, CaError> {
        let sealed = self.ca().registry().take_kit_code(id).await?.ok_or_else(|| {
            CaError::Conflict(format!(
                "order {id} has no code waiting: it was printed or shown already (an RA officer can issue a new delivery)"
            ))
        })?;
        let raw = self.vault.open(&sealed, format!("kit-code:{id}").as_bytes())?;
        let code = String::from_utf8(raw.to_vec()).map_err(|_| CaError::Internal("sealed code is not text".into()))?;
        self.audit(actor, "order.code-taken", id, Outcome::Success, String::new()).await;
        Ok(code)
    }

    /// An RA officer issues a new link and code (after three wrong codes or
    /// a lost envelope); the link is mailed, the code returned to the officer.
    pub async fn reissue_delivery(&self, officer: &Operator, id: &str) -> Result<String, CaError> {
        let row = self.for_officer(officer, id).await?;
        let (link, code) = self.deliveries.reissue(officer, &row.id).await?;
        self.mail_delivery(&row, &link.id, secrecy::ExposeSecret::expose_secret(&link.token)).await;
        Ok(code.expose().to_owned())
    }

    /// The issued certificate of an order (holder, by link), DER.
    pub async fn certificate(&self, token: &str) -> Result<Vec<u8>, CaError> {
        let row = self.by_link(token).await?;
        let serial = row.serial.ok_or_else(|| CaError::Conflict("the certificate is not issued yet".into()))?;
        let rec = self.ca().registry().certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial))?;
        rec.der.ok_or_else(|| CaError::Conflict("the certificate is not issued yet".into()))
    }

    /// (waiting for identity validation, of which overdue) for /metrics.
    pub async fn backlog(&self) -> Result<(i64, i64), CaError> {
        Ok(self.ca().registry().identity_backlog(self.now().unix_timestamp()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
