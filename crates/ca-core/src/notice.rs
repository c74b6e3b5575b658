//! What the lifecycle tells holders. The CA core decides *that* a holder is
//! told something (order received, identity approved or rejected, secrets
//! ready, certificate issued, ...); the notifier crate decides *how*
//! (templates, outbox, SMTP). The seam is [`Notices`], implemented by the
//! notifier, so dependencies keep pointing one way (ca-core <- notifier).

use std::future::Future;
use std::pin::Pin;

use crate::error::CaError;

/// The messages the lifecycle sends; each maps to one template (en, ro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// Next: pay. vars: given_name, order_id, order_url, price, payment_url
    OrderReceived,
    /// Paid; next: the identity check within 24 h. vars: given_name, order_id, order_url
    PaymentReceived,
    /// TOKEN, identity validated; next: upload the CSR. vars: given_name, order_id, csr_url
    IdentityApproved,
    /// vars: given_name, reason, resume_url
    IdentityRejected,
    /// CLOUD: enrol the authenticator. vars: given_name, order_id, enrol_url
    AuthenticatorInvitation,
    /// TOKEN kit: revocation password, PIN, PUK; the code is on the kit
    /// envelope. vars: given_name, delivery_url
    SecretDelivery,
    /// CLOUD: the revocation password; the code comes from an RA officer.
    /// vars: given_name, delivery_url
    CloudSecretDelivery,
    /// vars: given_name, serial, not_after (RFC 3339), certificate_url
    CertificateIssued,
    /// vars: given_name, serial, not_after, deadline (RFC 3339), renewal_url
    RenewalReminder,
    /// 15 days before notAfter, the last one. vars: as `RenewalReminder`
    LastRenewalReminder,
}

impl NoticeKind {
    /// The template name (the notifier's `Template::name`).
    pub fn template(self) -> &'static str {
        match self {
            NoticeKind::OrderReceived => "order-received",
            NoticeKind::PaymentReceived => "payment-received",
            NoticeKind::IdentityApproved => "identity-approved",
            NoticeKind::IdentityRejected => "identity-rejected",
            NoticeKind::AuthenticatorInvitation => "authenticator-invitation",
            NoticeKind::SecretDelivery => "secret-delivery",
            NoticeKind::CloudSecretDelivery => "secret-delivery-cloud",
            NoticeKind::CertificateIssued => "certificate-issued",
            NoticeKind::RenewalReminder => "renewal-reminder",
            NoticeKind::LastRenewalReminder => "renewal-reminder-last",
        }
    }
}

/// One message to one holder.
#[derive(Clone, PartialEq, Eq)]
pub struct Notice {
    /// Sending the same key twice sends one message (e.g. `order-received:<order id>`).
    pub dedupe_key: String,
    pub kind: NoticeKind,
    /// Recipient address (validated by the notifier).
    pub to: String,
    /// `en` or `ro`.
    pub language: String,
    /// Dates (`not_after`, `deadline`) in RFC 3339: the notifier writes
    /// them as people do, in the mail's language.
    pub vars: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Notice {
    // Variables may carry capability links: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice").field("dedupe_key", &self.dedupe_key).field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A boxed future, so `Notices` can be a trait object.
pub type NoticeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), CaError>> + Send + 'a>>;

/// Where notices go: recorded durably (the notifier's outbox) before this returns.
pub trait Notices: Send + Sync + std::fmt::Debug {
    fn send(&self, notice: Notice) -> NoticeFuture<'_>;
}
