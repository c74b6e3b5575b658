//! The confirmation document (DOMAIN.md "Confirmation document", issue 16):
//! the holder downloads a PDF prefilled with the certificate's data
//! ([`document`]), signs the holder's field, uploads it; the upload is
//! checked to be our bytes plus exactly one update that only fills that
//! field, signed by the registry's certificate ([`check`]), and is then
//! countersigned with the QTSP's seal.

pub mod check;
pub mod document;

pub use check::{check_upload, HolderSignature, MAX_UPLOAD};
pub use document::{prefilled, CertificateFacts, Prefilled, HOLDER_FIELD, QTSP_FIELD};
pub mod countersign;

use der::Decode;
use x509_cert::Certificate;

use crate::cms::CmsError;
use crate::error::CaError;
use crate::orders::Orders;

/// The confirmation documents of the holders' certificates, reached through
/// an order's link (the capability that also serves the certificate).
#[derive(Debug, Clone)]
pub struct Confirmations {
    orders: Orders,
}

/// An upload that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The certificate it confirms (and that signed it).
    pub serial: String,
    pub signature: HolderSignature,
}

impl Confirmations {
    pub fn new(orders: Orders) -> Confirmations {
        Confirmations { orders }
    }

    pub fn orders(&self) -> &Orders {
        &self.orders
    }

    fn now(&self) -> i64 {
        self.orders.ca().clock().now().unix_timestamp()
    }

    /// The prefilled document of the order's newest certificate (or of
    /// `serial`, one of its line); its hash and length are recorded.
    pub async fn prefilled(&self, token: &str, serial: Option<&str>) -> Result<Prefilled, CaError> {
        let (serial, der) = self.orders.certificate(token, serial).await?;
        let doc = document::prefilled(&der)?;
        let size = i64::try_from(doc.pdf.len()).map_err(CaError::encoding)?;
        self.orders.ca().registry().record_prefilled(&serial, &doc.sha256_hex(), size, self.now()).await?;
        Ok(doc)
    }

    /// Check a signed upload for the order's certificate (newest, or
    /// `serial`): our bytes plus the holder's signature only, made with
    /// that certificate's key, the certificate valid now and not revoked.
    pub async fn check(&self, token: &str, serial: Option<&str>, upload: &[u8]) -> Result<Accepted, CaError> {
        let (serial, der) = self.orders.certificate(token, serial).await?;
        let registry = self.orders.ca().registry();
        let row = registry.confirmation(&serial).await?.ok_or_else(|| {
            CaError::DocumentRefused(format!(
                "no confirmation document was handed out for certificate {serial}: download it first"
            ))
        })?;
        let size = usize::try_from(row.prefilled_size).map_err(CaError::encoding)?;
        let signature = check_upload(upload, &row.prefilled_sha256, size)?;
        let cert = Certificate::from_der(&der).map_err(CaError::encoding)?;
        crate::cms::verify_detached(&signature.cms, &cert, &signature.signed_parts(upload).concat()).map_err(|e| match e {
            CmsError::WrongSigner { .. } => CaError::DocumentRefused(format!(
                "the document was not signed with certificate {serial}, the one it was made for: sign it with \
                 that certificate's key"
            )),
            other => CaError::DocumentRefused(format!("the holder's signature: {other}")),
        })?;
        if registry.revocation(&serial).await?.is_some() {
            return Err(CaError::DocumentRefused(format!("certificate {serial} is revoked")));
        }
        let rec = registry.certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        let now = self.now();
        if now < rec.cert.not_before || now >= rec.cert.not_after {
            return Err(CaError::DocumentRefused(format!("certificate {serial} is not valid now (expired)")));
        }
        Ok(Accepted { serial, signature })
    }

    /// The latest countersigned document (`confirmare.pdf`) of the order's
    /// certificate (newest, or `serial`).
    pub async fn countersigned(&self, token: &str, serial: Option<&str>) -> Result<Vec<u8>, CaError> {
        let (serial, _) = self.orders.certificate(token, serial).await?;
        self.orders
            .ca()
            .registry()
            .confirmation(&serial)
            .await?
            .and_then(|row| row.countersigned)
            .ok_or_else(|| {
                CaError::NotFound(format!(
                    "certificate {serial} has no countersigned confirmation document yet: upload the signed one first"
                ))
            })
    }
}
