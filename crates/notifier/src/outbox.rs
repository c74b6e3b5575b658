//! Putting mail in the durable outbox. A mail is rendered and stored in
//! one row; the [`crate::Dispatcher`] delivers it later. Enqueuing is
//! idempotent per `dedupe_key`. The body is stored sealed by the vault
//! (it may carry capability links) under the row's identity, opened only
//! by the dispatcher to send it, and erased once sent.

use std::collections::BTreeMap;

use lettre::Address;
use qcert_ca_core::holder::Email;
use qcert_ca_core::store::outbox::{sealed_body_ad, NewOutboxMail, OutboxRecord};
use qcert_ca_core::vault::Vault;
use qcert_ca_core::Registry;
use time::OffsetDateTime;

use crate::template::{render, Language, Template};
use crate::MailError;

/// The longest dedupe key and kind accepted.
pub const MAX_KEY_LEN: usize = 200;

/// A mail to send.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// One per logical mail, e.g. `reminder-45:<serial>`: enqueuing the
    /// same key again stores and sends nothing.
    pub dedupe_key: String,
    /// What the mail is about, for operators (e.g. `renewal-reminder-45`).
    pub kind: String,
    pub to: Email,
    pub language: Language,
    pub template: Template,
    /// Exactly the template's [`Template::variables`].
    pub vars: BTreeMap<String, String>,
}

/// The outcome of [`Outbox::enqueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The outbox row (the earlier one if `already_existed`).
    pub id: i64,
    /// A mail with this dedupe key was already in the outbox (sent or not):
    /// nothing was stored, the new content was ignored.
    pub already_existed: bool,
}

/// The durable outbox.
#[derive(Debug, Clone, Copy)]
pub struct Outbox;

impl Outbox {
    /// Render `mail`, seal its body with `vault` and store it, due at `now`.
    /// Template and address errors are reported here, before anything is
    /// stored.
    pub async fn enqueue(
        registry: &Registry,
        vault: &Vault,
        mail: NewMail,
        now: OffsetDateTime,
    ) -> Result<Enqueued, MailError> {
        check_key("dedupe_key", &mail.dedupe_key)?;
        check_key("kind", &mail.kind)?;
        mail.to
            .as_str()
            .parse::<Address>()
            .map_err(|e| MailError::Address(format!("recipient cannot be used for mail: {e}")))?;
        let rendered = render(mail.template, mail.language, &mail.vars)?;
        let body_sealed = seal_body(vault, &mail.dedupe_key, &rendered.body)?;
        let row = NewOutboxMail {
            dedupe_key: mail.dedupe_key,
            kind: mail.kind,
            language: mail.language.as_str().to_owned(),
            recipient: mail.to.as_str().to_owned(),
            body_sealed,
            subject: rendered.subject,
        };
        let (id, already_existed) = registry.outbox_insert(&row, now.unix_timestamp()).await?;
        Ok(Enqueued { id, already_existed })
    }

    /// A row and its delivery state.
    pub async fn get(registry: &Registry, id: i64) -> Result<Option<OutboxRecord>, MailError> {
        Ok(registry.outbox_get(id).await?)
    }

    /// A row by its dedupe key.
    pub async fn by_key(registry: &Registry, dedupe_key: &str) -> Result<Option<OutboxRecord>, MailError> {
        Ok(registry.outbox_by_key(dedupe_key).await?)
    }

    /// Mails not sent yet, parked ones included.
    pub async fn unsent(registry: &Registry) -> Result<i64, MailError> {
        Ok(registry.outbox_unsent_count().await?)
    }

    /// Make every mail the server refused for good due again at `now`
    /// (after fixing what made it refuse them). Returns how many.
    pub async fn requeue_failed(registry: &Registry, now: OffsetDateTime) -> Result<u64, MailError> {
        Ok(registry.outbox_requeue_failed(now.unix_timestamp()).await?)
    }
}

/// The body as stored: sealed under the row's identity.
pub(crate) fn seal_body(vault: &Vault, dedupe_key: &str, body: &str) -> Result<Vec<u8>, MailError> {
    vault
        .seal(body.as_bytes(), &sealed_body_ad(dedupe_key))
        .map_err(|_| MailError::Invalid("the mail body cannot be sealed".into()))
}

fn check_key(what: &str, key: &str) -> Result<(), MailError> {
    if key.trim().is_empty() || key.chars().count() > MAX_KEY_LEN || key.chars().any(char::is_control) {
        return Err(MailError::Invalid(format!(
            "{what} must be 1 to {MAX_KEY_LEN} characters without control characters"
        )));
    }
    Ok(())
}
