//! The one signing path: certificates (and later CRLs, OCSP responses and CMS)
//! are signed by a CA key on the HSM through [`CaSigner`], off the async
//! runtime on a blocking thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use qcert_hsm::{DigestAlgorithm, Hsm, KeyRef, SignatureAlgorithm};
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

    /// Algorithm and size of the key.
    pub fn key_algorithm(&self) -> qcert_hsm::KeyAlgorithm {
        self.key.algorithm()
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
        let start = Instant::now();
        let result = self.hsm.sign(&self.key, self.algorithm, message);
        SIGN_LATENCY.observe(start.elapsed().as_secs_f64(), result.is_ok());
        Ok(result?)
    }

    /// Sign a digest the caller computed (CMS signed attributes, whose
    /// digest algorithm the SignedData chooses), on the calling thread.
    pub fn sign_digest_blocking(&self, algorithm: DigestAlgorithm, digest: &[u8]) -> Result<Vec<u8>, CaError> {
        let start = Instant::now();
        let result = self.hsm.sign_digest(&self.key, algorithm, digest);
        SIGN_LATENCY.observe(start.elapsed().as_secs_f64(), result.is_ok());
        Ok(result?)
    }
}

impl crate::cms::DigestSigner for CaSigner {
    fn key_algorithm(&self) -> qcert_hsm::KeyAlgorithm {
        self.key.algorithm()
    }

    fn spki_der(&self) -> &[u8] {
        self.key.spki_der()
    }

    async fn sign_digest(&self, algorithm: DigestAlgorithm, digest: Vec<u8>) -> Result<Vec<u8>, CaError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.sign_digest_blocking(algorithm, &digest))
            .await
            .map_err(|e| CaError::Internal(format!("signing task failed: {e}")))?
    }
}

/// Upper bounds (seconds) of the HSM signing latency histogram.
pub const LATENCY_BUCKETS: [f64; 8] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1.0];

/// Process-wide HSM signing latency, for `/metrics`.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    errors: AtomicU64,
}

/// Every signature made through a [`CaSigner`] in this process.
pub static SIGN_LATENCY: LatencyHistogram = LatencyHistogram {
    buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
    count: AtomicU64::new(0),
    sum_micros: AtomicU64::new(0),
    errors: AtomicU64::new(0),
};

/// A reading of the histogram: cumulative bucket counts, count, sum (s), errors.
#[derive(Debug, Clone)]
pub struct LatencySnapshot {
    pub cumulative: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
    pub errors: u64,
}

impl LatencyHistogram {
    fn observe(&self, seconds: f64, ok: bool) {
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| seconds <= *b) {
            if let Some(b) = self.buckets.get(i) {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LatencySnapshot {
        let mut running = 0;
        let cumulative = LATENCY_BUCKETS
            .iter()
            .zip(&self.buckets)
            .map(|(le, b)| {
                running += b.load(Ordering::Relaxed);
                (*le, running)
            })
            .collect();
        LatencySnapshot {
            cumulative,
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}
