use qcert_hsm::HsmError;

use crate::store::StoreError;

/// Errors of the CA core. Messages are safe to show to the party that caused
/// them: they never carry a PIN, a password or a stack of internals.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Input from a holder, an officer or the operator was refused.
    #[error("{0}")]
    InvalidInput(String),
    /// A holder data field is empty or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },
    /// The CSR could not be parsed, its signature is wrong, or its key is not accepted.
    #[error("CSR refused: {0}")]
    CsrRefused(String),
    #[error("no certificate with serial {0}")]
    UnknownSerial(String),
    /// Something named by the caller does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller lacks the role the action needs.
    #[error("{0}")]
    Forbidden(String),
    /// The request contradicts the stored state (e.g. another holder's ID document).
    #[error("{0}")]
    Conflict(String),
    /// Hotline: unknown document number, wrong password and locked
    /// certificate all give this one answer.
    #[error("no valid certificate matches this ID document number and revocation password")]
    HotlineRefused,
    /// CLOUD: the authenticator took too many wrong authorization codes.
    #[error(
        "this authenticator is locked after too many wrong authorization codes: contact the registration \
         authority (RA), which unlocks it after checking your identity"
    )]
    AuthenticatorLocked,
    /// Desk login: unknown name, wrong password, security key or code, and
    /// an expired half-login all give this one answer.
    #[error("the name, password, security key or code was not accepted")]
    LoginRefused,
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A holder's signed request failed verification.
    #[error("signed request refused: {0}")]
    SignatureRefused(String),
    /// An uploaded confirmation document was refused (the reason is for the holder).
    #[error("confirmation document refused: {0}")]
    DocumentRefused(String),
    /// A service this home lacks (names the command that makes it).
    #[error("{0}")]
    NotConfigured(String),
    #[error("unknown certificate profile {0:?}")]
    UnknownProfile(String),
    #[error("validity of {0} years is not offered (allowed: {1})")]
    ValidityNotOffered(u32, String),
    /// The to-be-signed certificate broke the profile; nothing was signed.
    #[error("certificate does not conform to profile {profile}: {reason}")]
    ProfileViolation { profile: String, reason: String },
    /// Policy files are wrong (names the file and setting).
    #[error("policy {file}: {reason}")]
    Policy { file: String, reason: String },
    #[error("the CA is already initialised ({0}); refusing to run the key ceremony again")]
    AlreadyInitialised(String),
    #[error("the CA is not initialised: run `qcert init` first")]
    NotInitialised,
    /// The root key is not on this token (it is kept offline): root-signed
    /// objects come from `qcert ceremony`.
    #[error("the root CA key is offline (not on this token): {0}")]
    RootOffline(String),
    #[error(transparent)]
    Hsm(#[from] HsmError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding error: {0}")]
    Encoding(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl CaError {
    pub(crate) fn encoding(e: impl std::fmt::Display) -> CaError {
        CaError::Encoding(e.to_string())
    }

    pub fn field(field: &'static str, reason: impl Into<String>) -> CaError {
        CaError::InvalidField { field, reason: reason.into() }
    }

    /// True when the caller sent something unacceptable (as opposed to a fault of ours).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            CaError::InvalidInput(_)
                | CaError::InvalidField { .. }
                | CaError::CsrRefused(_)
                | CaError::UnknownProfile(_)
                | CaError::UnknownSerial(_)
                | CaError::ValidityNotOffered(..)
                | CaError::NotFound(_)
                | CaError::Forbidden(_)
                | CaError::Conflict(_)
                | CaError::HotlineRefused
                | CaError::LoginRefused
                | CaError::RateLimited { .. }
                | CaError::AuthenticatorLocked
                | CaError::SignatureRefused(_)
                | CaError::DocumentRefused(_)
        )
    }
}
