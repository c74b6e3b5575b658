//! The one signing path: certificates (and later CRLs, OCSP responses and CMS)
//! are signed by a CA key on the HSM through [`CaSigner`], off the async
//! runtime on a blocking thread.

use std::sync::Arc;

use qcert_hsm::{Hsm, KeyRef, SignatureAlgorithm};
use spki::AlgorithmIdentifierOwned;

use crate::error::CaError;

/// A CA key on the HSM with the signature algorithm it signs with.
#[derive(Debug, Clone)]
pub struct CaSigner {
    hsm: Hsm,
    key: Arc<KeyRef>,
    algorithm: SignatureAlgorithm,
    algorithm_identifier: AlgorithmIdentifierOwned,
}

impl CaSigner {
    pub fn new(hsm: Hsm, key: KeyRef) -> Result<CaSigner, CaError> {
        let algorithm = key.algorithm().default_signature();
        Ok(CaSigner { algorithm_identifier: algorithm.algorithm_identifier()?, hsm, key: Arc::new(key), algorithm })
    }

    /// The signatureAlgorithm written into what this key signs.
    pub fn algorithm_identifier(&self) -> &AlgorithmIdentifierOwned {
        &self.algorithm_identifier
    }

    /// The key's SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        self.key.spki_der()
    }

    pub fn key_label(&self) -> &str {
        self.key.label()
    }

    /// Sign on a blocking thread: PKCS#11 calls block.
    pub async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, CaError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.sign_blocking(&message))
            .await
            .map_err(|e| CaError::Internal(format!("signing task failed: {e}")))?
    }

    /// Sign `buf[from..]` of a large buffer (a CRL) without copying it: the
    /// buffer moves to the blocking thread and comes back with the signature.
    pub async fn sign_returning(&self, buf: Vec<u8>, from: usize) -> Result<(Vec<u8>, Vec<u8>), CaError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let message =
                buf.get(from..).ok_or_else(|| CaError::Internal("signing range outside the buffer".into()))?;
            this.sign_blocking(message).map(|sig| (buf, sig))
        })
        .await
        .map_err(|e| CaError::Internal(format!("signing task failed: {e}")))?
    }

    /// Sign on the calling thread.
    pub fn sign_blocking(&self, message: &[u8]) -> Result<Vec<u8>, CaError> {
        Ok(self.hsm.sign(&self.key, self.algorithm, message)?)
    }
}
