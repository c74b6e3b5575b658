//! What the lifecycle tells holders. The CA core decides *that* a holder is
//! told something (order received, identity approved or rejected, secrets
//! ready, certificate issued, ...); the notifier crate decides *how*
//! (templates, outbox, SMTP). The seam is [`Notices`], implemented by the
//! notifier, so dependencies keep pointing one way (ca-core <- notifier).

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

use crate::crl::Reason;
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
    /// The certificate was revoked (any channel). vars: given_name, serial,
    /// revoked_at, reason, channel (all in words, see [`revocation_words`]).
    CertificateRevoked,
    /// 15 days before notAfter, the last one. vars: as `RenewalReminder`
    LastRenewalReminder,
    /// A renewal was ordered; next: pay it. vars: given_name, serial,
    /// issue_at (RFC 3339), price, payment_url, renewal_url
    RenewalOrdered,
    /// The renewal is paid; the new certificate follows on its day.
    /// vars: given_name, serial, issue_at (RFC 3339), renewal_url
    RenewalPaid,
    /// A paid renewal was cancelled (the certificate was revoked or expired
    /// before its issue day); the payment is refunded. vars: given_name,
    /// serial, order_form_url
    RenewalCancelled,
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
            NoticeKind::CertificateRevoked => "certificate-revoked",
            NoticeKind::LastRenewalReminder => "renewal-reminder-last",
            NoticeKind::RenewalOrdered => "renewal-ordered",
            NoticeKind::RenewalPaid => "renewal-paid",
            NoticeKind::RenewalCancelled => "renewal-cancelled",
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

/// How a revocation mail says when, why and by which channel, in `language`
/// (`ro`, anything else English): (`revoked_at`, `reason`, `channel`).
/// `requested_by` is the revocation's recorded requester (`hotline-agent:…`,
/// `ra-officer:…`, `holder:signed-request`, anything else an operator); no
/// name from it is repeated.
pub fn revocation_words(
    language: &str,
    at: OffsetDateTime,
    reason: Reason,
    requested_by: &str,
) -> (String, &'static str, &'static str) {
    let ro = language.trim().eq_ignore_ascii_case("ro");
    let at = at.to_offset(time::UtcOffset::UTC);
    let joiner = if ro { ", ora" } else { ", at" };
    let when = format!("{}{joiner} {:02}:{:02} UTC", crate::clock::long_date(at, ro), at.hour(), at.minute());
    let why = match (reason, ro) {
        (Reason::Unspecified, false) => "no reason was given",
        (Reason::Unspecified, true) => "nu a fost declarat niciun motiv",
        (Reason::KeyCompromise, false) => "the private key may be compromised (lost, stolen or seen by others)",
        (Reason::KeyCompromise, true) => "cheia privată ar putea fi compromisă (pierdută, furată sau văzută de alții)",
        (Reason::CaCompromise, false) => "the key of the certification authority was compromised",
        (Reason::CaCompromise, true) => "cheia autorității de certificare a fost compromisă",
        (Reason::AffiliationChanged, false) => "the details in the certificate are no longer right",
        (Reason::AffiliationChanged, true) => "datele din certificat nu mai sunt corecte",
        (Reason::Superseded, false) => "the certificate was replaced by a new one",
        (Reason::Superseded, true) => "certificatul a fost înlocuit cu unul nou",
        (Reason::CessationOfOperation, false) => "the certificate is no longer needed",
        (Reason::CessationOfOperation, true) => "certificatul nu mai este necesar",
        (Reason::PrivilegeWithdrawn, false) => "the right to use the certificate was withdrawn",
        (Reason::PrivilegeWithdrawn, true) => "dreptul de a folosi certificatul a fost retras",
        (Reason::AaCompromise, false) => "an attribute authority was compromised",
        (Reason::AaCompromise, true) => "o autoritate de atribute a fost compromisă",
    };
    let role = requested_by.split(':').next().unwrap_or_default();
    let channel = match (role, requested_by, ro) {
        ("hotline-agent", _, false) => {
            "by phone, through the revocation hotline (ID document number and revocation password)"
        }
        ("hotline-agent", _, true) => {
            "prin telefon, la linia de revocare (numărul actului de identitate și parola de revocare)"
        }
        ("ra-officer", _, false) => "in person, by a registration officer who checked your ID document",
        ("ra-officer", _, true) => "în persoană, de un ofițer de înregistrare care v-a verificat actul de identitate",
        (_, "holder:signed-request", false) => "by a revocation request signed with the certificate's own key",
        (_, "holder:signed-request", true) => "printr-o cerere de revocare semnată cu cheia certificatului",
        (_, _, false) => "by an operator of the certification authority",
        (_, _, true) => "de un operator al autorității de certificare",
    };
    (when, why, channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_words_in_both_languages() {
        let at = time::macros::datetime!(2028-12-02 09:05:59 +02:00);
        let (when, why, channel) = revocation_words("ro", at, Reason::KeyCompromise, "hotline-agent:anna");
        assert_eq!(when, "2 decembrie 2028, ora 07:05 UTC");
        assert!(why.contains("compromis") && channel.contains("telefon") && !channel.contains("anna"));
        let (when, why, channel) = revocation_words("de", at, Reason::Superseded, "ra-officer:radu");
        assert_eq!(when, "2 December 2028, at 07:05 UTC");
        assert!(why.contains("replaced") && channel.contains("in person") && !channel.contains("radu"));
        assert!(revocation_words("en", at, Reason::Unspecified, "holder:signed-request").2.contains("signed"));
        assert!(revocation_words("en", at, Reason::Unspecified, "cli:root").2.contains("operator"));
    }
}
