//! The CA core's [`Notices`] seam, implemented on the outbox: a [`Notice`]
//! becomes one rendered row of the durable outbox (once per dedupe key),
//! which the [`crate::Dispatcher`] delivers later.
//!
//! Errors never carry the notice's variable values: they can hold
//! capability links (delivery, enrolment, resume URLs).

use std::collections::BTreeMap;
use std::sync::Arc;

use qcert_ca_core::holder::Email;
use qcert_ca_core::notice::{Notice, NoticeFuture, NoticeKind, Notices};
use qcert_ca_core::vault::Vault;
use qcert_ca_core::{CaError, Clock, Registry};

use crate::outbox::{Enqueued, NewMail, Outbox};
use crate::template::{long_date_rfc3339, Language, Template};
use crate::MailError;

/// Notices go into the registry's outbox, due at the clock's now.
#[derive(Debug, Clone)]
pub struct OutboxNotices {
    registry: Registry,
    vault: Arc<Vault>,
    clock: Arc<dyn Clock>,
}

impl OutboxNotices {
    /// Bodies are sealed with `vault` (the dispatcher needs the same one).
    pub fn new(registry: Registry, vault: Arc<Vault>, clock: Arc<dyn Clock>) -> OutboxNotices {
        OutboxNotices { registry, vault, clock }
    }

    /// The template a notice kind is written with.
    pub fn template(kind: NoticeKind) -> Result<Template, CaError> {
        Template::parse(kind.template())
            .ok_or_else(|| CaError::Internal(format!("no mail template {:?} for notice {kind:?}", kind.template())))
    }

    /// The outbox mail of a notice: its template, its language (`en` or
    /// `ro`; anything else is English), the recipient checked, the
    /// variables as a map. Rendering happens in [`Outbox::enqueue`].
    pub fn mail(notice: Notice) -> Result<NewMail, CaError> {
        let template = OutboxNotices::template(notice.kind)?;
        let to = Email::parse(&notice.to)
            .map_err(|e| CaError::InvalidInput(format!("notice {}: recipient: {e}", template.name())))?;
        let language = Language::parse(&notice.language).unwrap_or(Language::En);
        let mut vars = BTreeMap::new();
        for (name, value) in notice.vars {
            let value = if Template::DATE_VARIABLES.contains(&name) {
                long_date_rfc3339(&value, language).ok_or_else(|| {
                    CaError::InvalidInput(format!("notice {}: {name} is not an RFC 3339 time", template.name()))
                })?
            } else {
                value
            };
            if vars.insert(name.to_owned(), value).is_some() {
                return Err(CaError::InvalidInput(format!(
                    "notice {}: variable {name:?} given more than once",
                    template.name()
                )));
            }
        }
        Ok(NewMail { dedupe_key: notice.dedupe_key, kind: template.name().to_owned(), to, language, template, vars })
    }

    /// Store the notice's mail; the same dedupe key again stores nothing.
    pub async fn enqueue(&self, notice: Notice) -> Result<Enqueued, CaError> {
        let mail = OutboxNotices::mail(notice)?;
        let (key, kind) = (mail.dedupe_key.clone(), mail.kind.clone());
        let queued = Outbox::enqueue(&self.registry, &self.vault, mail, self.clock.now()).await.map_err(ca_error)?;
        tracing::debug!(id = queued.id, dedupe_key = %key, %kind, already_existed = queued.already_existed, "notice queued");
        Ok(queued)
    }
}

impl Notices for OutboxNotices {
    fn send(&self, notice: Notice) -> NoticeFuture<'_> {
        Box::pin(async move { self.enqueue(notice).await.map(|_| ()) })
    }
}

/// The caller's fault (template variables, addresses, keys) or ours (the
/// store). The notifier's messages name variables, never their values.
fn ca_error(e: MailError) -> CaError {
    match e {
        MailError::Template { .. } | MailError::Address(_) | MailError::Invalid(_) => {
            CaError::InvalidInput(e.to_string())
        }
        MailError::Config(_) | MailError::Store(_) => CaError::Internal(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use crate::template::render;

    const KINDS: [NoticeKind; 14] = [
        NoticeKind::OrderReceived,
        NoticeKind::PaymentReceived,
        NoticeKind::IdentityApproved,
        NoticeKind::IdentityRejected,
        NoticeKind::AuthenticatorInvitation,
        NoticeKind::SecretDelivery,
        NoticeKind::CloudSecretDelivery,
        NoticeKind::CertificateIssued,
        NoticeKind::RenewalReminder,
        NoticeKind::CertificateRevoked,
        NoticeKind::LastRenewalReminder,
        NoticeKind::RenewalOrdered,
        NoticeKind::RenewalPaid,
        NoticeKind::RenewalCancelled,
    ];

    /// The variables `NoticeKind`'s doc comments (ca-core's notice.rs) name.
    fn documented(kind: NoticeKind) -> &'static [&'static str] {
        match kind {
            NoticeKind::OrderReceived => &["given_name", "order_id", "order_url", "price", "payment_url"],
            NoticeKind::PaymentReceived => &["given_name", "order_id", "order_url"],
            NoticeKind::IdentityApproved => &["given_name", "order_id", "csr_url"],
            NoticeKind::IdentityRejected => &["given_name", "reason", "resume_url"],
            NoticeKind::AuthenticatorInvitation => &["given_name", "order_id", "enrol_url"],
            NoticeKind::SecretDelivery | NoticeKind::CloudSecretDelivery => &["given_name", "delivery_url"],
            NoticeKind::CertificateIssued => &["given_name", "serial", "not_after", "certificate_url"],
            NoticeKind::RenewalReminder | NoticeKind::LastRenewalReminder => {
                &["given_name", "serial", "not_after", "deadline", "renewal_url"]
            }
            NoticeKind::CertificateRevoked => &["given_name", "serial", "revoked_at", "reason", "channel"],
            NoticeKind::RenewalOrdered => &["given_name", "serial", "issue_at", "price", "payment_url", "renewal_url"],
            NoticeKind::RenewalPaid => &["given_name", "serial", "issue_at", "renewal_url"],
            NoticeKind::RenewalCancelled => &["given_name", "serial", "order_form_url"],
        }
    }

    fn notice(kind: NoticeKind, language: &str, vars: &[&'static str]) -> Notice {
        Notice {
            dedupe_key: format!("{}:1", kind.template()),
            kind,
            to: "ana.pop@example.ro".into(),
            language: language.into(),
            vars: vars
                .iter()
                .map(|v| {
                    let value = if Template::DATE_VARIABLES.contains(v) {
                        "2028-12-02T10:00:00Z".into()
                    } else {
                        format!("<{v}>")
                    };
                    (*v, value)
                })
                .collect(),
        }
    }

    #[test]
    fn every_notice_kind_has_its_template_in_both_languages_with_exactly_the_documented_variables() {
        let mut templates = Vec::new();
        for kind in KINDS {
            let template = OutboxNotices::template(kind).unwrap();
            assert_eq!(template.name(), kind.template());
            let mut declared = template.variables().to_vec();
            let mut expected = documented(kind).to_vec();
            declared.sort_unstable();
            expected.sort_unstable();
            assert_eq!(declared, expected, "{}", kind.template());
            for language in ["en", "ro"] {
                let mail = OutboxNotices::mail(notice(kind, language, documented(kind))).unwrap();
                assert_eq!(mail.language.as_str(), language);
                let r = render(mail.template, mail.language, &mail.vars)
                    .unwrap_or_else(|e| panic!("{} {language}: {e}", kind.template()));
                let all = format!("{}\n{}", r.subject, r.body);
                for v in documented(kind) {
                    let shown = if Template::DATE_VARIABLES.contains(v) {
                        (if language == "ro" { "2 decembrie 2028" } else { "2 December 2028" }).to_owned()
                    } else {
                        format!("<{v}>")
                    };
                    assert!(all.contains(&shown), "{} {language} does not use {{{v}}}", kind.template());
                }
                // One variable fewer, or one more, does not render.
                let (_, fewer) = documented(kind).split_last().unwrap();
                let mail = OutboxNotices::mail(notice(kind, language, fewer)).unwrap();
                assert!(render(mail.template, mail.language, &mail.vars).is_err());
                let more = [documented(kind), &["extra"]].concat();
                let mail = OutboxNotices::mail(notice(kind, language, &more)).unwrap();
                assert!(render(mail.template, mail.language, &mail.vars).is_err());
            }
            templates.push(template);
        }
        // Every template is some notice's (the lifecycle sends them all).
        templates.sort_by_key(|t| t.name());
        templates.dedup();
        assert_eq!(templates.len(), Template::ALL.len());
    }

    #[test]
    fn languages_recipients_and_duplicate_variables() {
        let kind = NoticeKind::SecretDelivery;
        for (code, language) in
            [("ro", Language::Ro), ("RO", Language::Ro), ("en", Language::En), ("de", Language::En), ("", Language::En)]
        {
            assert_eq!(
                OutboxNotices::mail(notice(kind, code, documented(kind))).unwrap().language,
                language,
                "{code:?}"
            );
        }
        let mut n = notice(kind, "ro", documented(kind));
        n.to = "not an address".into();
        assert!(matches!(OutboxNotices::mail(n), Err(CaError::InvalidInput(_))));
        let mut n = notice(kind, "ro", documented(kind));
        n.vars.push(("delivery_url", "https://pki.example.eu/d/secret-capability".into()));
        let e = OutboxNotices::mail(n).unwrap_err();
        assert!(matches!(e, CaError::InvalidInput(_)) && !e.to_string().contains("secret-capability"), "{e}");
    }

    #[test]
    fn dates_must_be_rfc3339() {
        let kind = NoticeKind::CertificateIssued;
        let mut n = notice(kind, "en", documented(kind));
        for v in &mut n.vars {
            if v.0 == "not_after" {
                v.1 = "next year".into();
            }
        }
        assert!(matches!(OutboxNotices::mail(n), Err(CaError::InvalidInput(_))));
    }

    #[test]
    fn render_errors_become_invalid_input_without_values() {
        let kind = NoticeKind::SecretDelivery;
        let mut n = notice(kind, "en", documented(kind));
        n.vars[0].1 = "Ana\r\nBcc: x@example.org https://pki.example.eu/d/secret-capability".into();
        let mail = OutboxNotices::mail(n).unwrap();
        let e = ca_error(render(mail.template, mail.language, &mail.vars).unwrap_err());
        assert!(matches!(e, CaError::InvalidInput(_)), "{e:?}");
        assert!(!e.to_string().contains("secret-capability") && !e.to_string().contains("Bcc"), "{e}");
    }
}
