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

    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> CaError {
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
        )
    }
}
