use cryptoki::error::{Error as CkError, RvError};

use crate::{KeyAlgorithm, SignatureAlgorithm};

/// What can go wrong talking to the HSM. Messages never contain a PIN.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The PKCS#11 module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {module}: {reason}")]
    Module { module: String, reason: String },
    /// No slot holds a token with the configured label.
    #[error("no HSM token labelled {0:?} is present")]
    TokenNotFound(String),
    /// No free slot to initialise a new token in.
    #[error("the HSM has no uninitialised slot for a new token")]
    NoFreeSlot,
    /// Login refused: wrong PIN.
    #[error("the HSM refused the PIN (wrong PIN)")]
    PinIncorrect,
    /// Login refused: too many wrong PINs.
    #[error("the HSM PIN is locked after too many wrong attempts")]
    PinLocked,
    /// The session or the token went away; the next call reconnects.
    #[error("HSM connection lost ({0}); the next call reconnects")]
    Disconnected(String),
    #[error("no key pair labelled {0:?} on the HSM")]
    KeyNotFound(String),
    #[error("a key pair labelled {0:?} already exists on the HSM")]
    KeyExists(String),
    #[error("key labels must not be empty")]
    InvalidLabel,
    /// A holder key label (`holder-…`) where a CA key was asked for, or the
    /// other way round: holder keys are reached only through
    /// [`crate::Hsm::find_holder_key`].
    #[error("key label {0:?} is not in the key space this call serves")]
    WrongKeySpace(String),
    #[error("unsupported key on the HSM: {0}")]
    UnsupportedKey(String),
    #[error("signature algorithm {signature:?} does not fit a {key:?} key")]
    AlgorithmMismatch { key: KeyAlgorithm, signature: SignatureAlgorithm },
    #[error("encoding error: {0}")]
    Encoding(String),
    /// Any other PKCS#11 failure, with the operation that failed.
    #[error("HSM {op} failed: {rv}")]
    Pkcs11 { op: &'static str, rv: String },
}

impl HsmError {
    pub(crate) fn from_pkcs11(op: &'static str, err: CkError) -> HsmError {
        match err {
            CkError::Pkcs11(rv, _) => match rv {
                RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange => HsmError::PinIncorrect,
                RvError::PinLocked => HsmError::PinLocked,
                RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceError
                | RvError::SlotIdInvalid
                | RvError::UserNotLoggedIn
                // A handle found before a token reset: look keys up again after reconnecting.
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
                | RvError::CryptokiNotInitialized => HsmError::Disconnected(format!("{op}: {rv:?}")),
                other => HsmError::Pkcs11 { op, rv: format!("{other:?}") },
            },
            other => HsmError::Pkcs11 { op, rv: other.to_string() },
        }
    }

    pub(crate) fn encoding(err: impl std::fmt::Display) -> HsmError {
        HsmError::Encoding(err.to_string())
    }

    /// True when the connection was lost and the next call will reconnect.
    pub fn is_disconnect(&self) -> bool {
        matches!(self, HsmError::Disconnected(_) | HsmError::TokenNotFound(_))
    }
}
