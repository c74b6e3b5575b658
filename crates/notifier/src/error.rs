//! The notifier's errors. None carries a secret (SMTP password, mail body).

use qcert_ca_core::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A template could not be rendered: unknown placeholder, missing or
    /// extra value, a value that would break the mail, a malformed file.
    #[error("template {template} ({language}): {why}")]
    Template { template: &'static str, language: &'static str, why: String },
    /// A mail address that cannot be used (recipient or sender).
    #[error("mail address: {0}")]
    Address(String),
    /// Input to enqueue that cannot be stored (e.g. an empty dedupe key).
    #[error("invalid mail: {0}")]
    Invalid(String),
    /// Mail or delivery configuration that cannot work.
    #[error("mail configuration: {0}")]
    Config(String),
    /// The outbox could not be read or written.
    #[error("mail outbox: {0}")]
    Store(#[from] StoreError),
}
