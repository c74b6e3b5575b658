//! The confirmation document (DOMAIN.md "Confirmation document", issue 16):
//! the holder downloads a PDF prefilled with the certificate's data
//! ([`document`]), signs the holder's field, uploads it; the upload is
//! checked to be our bytes plus exactly one update that only fills that
//! field, signed by the registry's certificate ([`check`]), and is then
//! countersigned at once ([`countersign`]): PAdES B-T, SHA-384,
//! signing-certificate-v2, a signature-time-stamp from our own TSA, signed
//! with the seal key of `qcert ceremony seal` (label `qcert-qtsp-seal`;
//! the registry's newest unrevoked `qtsp-seal` certificate names it) and
//! no other key. The result is kept per certificate (the latest one) and
//! served as `confirmare.pdf`.

pub mod check;
pub mod document;

pub use check::{check_upload, HolderSignature, MAX_UPLOAD};
pub use document::{prefilled, prefilled_from, CertificateFacts, Prefilled, HOLDER_FIELD, QTSP_FIELD};
pub mod countersign;

use std::sync::Arc;

use der::{Decode, Encode};
use qcert_hsm::DigestAlgorithm;
use sha2::Digest;
use x509_cert::Certificate;

use crate::audit::{Event, Outcome};
use crate::cms::{CmsError, Content, SignedDataBuilder};
use crate::error::CaError;
use crate::orders::Orders;
use crate::signer::CaSigner;
use crate::tsa::Tsa;

/// The registry profile of the seal certificate (`qcert ceremony seal`).
pub const SEAL_PROFILE: &str = "qtsp-seal";
/// The seal key's label (`policies/ceremony-seal.toml`): the countersign
/// uses this key and no other.
pub const SEAL_KEY_LABEL: &str = "qcert-qtsp-seal";

/// The confirmation documents of the holders' certificates, reached through
/// an order's link (the capability that also serves the certificate).
#[derive(Debug, Clone)]
pub struct Confirmations {
    orders: Orders,
    /// Found once, on first use (a home without it can run the ceremony
    /// later: a failed lookup is not kept).
    seal: Arc<tokio::sync::OnceCell<Seal>>,
    /// The TSA for the signature-time-stamp (shared with `POST /tsa`).
    tsa: Arc<tokio::sync::OnceCell<Tsa>>,
}

/// The QTSP's seal: key on the HSM, its certificate and the issuing CA's.
#[derive(Debug, Clone)]
pub struct Seal {
    signer: CaSigner,
    cert: Certificate,
    issuing: Certificate,
    name: String,
}

impl Seal {
    /// Find the seal of the registry (newest `qtsp-seal` certificate of the
    /// key [`SEAL_KEY_LABEL`], not revoked) and that key on the HSM.
    pub async fn load(ca: &crate::Ca) -> Result<Seal, CaError> {
        let registry = ca.registry();
        let missing = || {
            CaError::NotConfigured(
                "the QTSP seal is not set up on this CA: run `qcert ceremony seal` (policies/ceremony-seal.toml) to \
                 make its key and certificate"
                    .into(),
            )
        };
        let rec = registry.service_certificate(SEAL_PROFILE, SEAL_KEY_LABEL).await?.ok_or_else(missing)?;
        if registry.revocation(&rec.cert.serial).await?.is_some() {
            return Err(CaError::NotConfigured(format!(
                "the QTSP seal certificate {} is revoked: run `qcert ceremony seal` with a new key",
                rec.cert.serial
            )));
        }
        let (Some(der), Some(issuer)) = (rec.der, rec.cert.issuer_serial) else {
            return Err(missing());
        };
        let cert = Certificate::from_der(&der).map_err(CaError::encoding)?;
        let issuing = registry
            .certificate(&issuer)
            .await?
            .and_then(|r| r.der)
            .ok_or_else(|| CaError::Internal(format!("the seal's issuer {issuer} is not in the registry")))?;
        let issuing = Certificate::from_der(&issuing).map_err(CaError::encoding)?;
        let hsm = ca.hsm().clone();
        let key = tokio::task::spawn_blocking(move || hsm.find_key(SEAL_KEY_LABEL))
            .await
            .map_err(|e| CaError::Internal(format!("key lookup task failed: {e}")))?
            .map_err(|_| missing())?;
        let signer = CaSigner::new(ca.hsm().clone(), key)?;
        let spki = cert.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)?;
        if spki != signer.spki_der() {
            return Err(CaError::Internal("the seal key on the HSM is not the seal certificate's key".into()));
        }
        let name = document::CertificateFacts::from_der(&der)?.common_name;
        Ok(Seal { signer, cert, issuing, name })
    }

    /// The seal's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    pub fn signer(&self) -> &CaSigner {
        &self.signer
    }

    /// Countersign the checked upload `signed` at `at`: the PDF update, the
    /// CMS (SHA-384, signing-certificate-v2, the seal and issuing CA
    /// certificates), and the signature-time-stamp `stamp` gives for the
    /// signature value.
    pub async fn countersign<F, Fut>(&self, signed: &[u8], at: i64, stamp: F) -> Result<Vec<u8>, CaError>
    where
        F: FnOnce(Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<u8>, CaError>>,
    {
        let prepared = countersign::prepare(signed, &countersign::SealFacts { name: &self.name, at })?;
        let mut cms =
            SignedDataBuilder::new(Content::Detached { digest: &prepared.digest }, DigestAlgorithm::Sha384, &self.cert)
                .chain(std::slice::from_ref(&self.issuing))
                .sign(&self.signer)
                .await?;
        let token = stamp(sha2::Sha384::digest(cms.signature()?).to_vec()).await?;
        cms.add_signature_time_stamp(&token)?;
        prepared.finish(&cms.to_der()?)
    }
}

/// A countersigned upload.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub serial: String,
    /// The holder's `/SubFilter`.
    pub holder_signature: String,
    /// When it was countersigned (Unix seconds).
    pub at: i64,
}

/// An upload that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The certificate it confirms (and that signed it).
    pub serial: String,
    pub signature: HolderSignature,
}

impl Confirmations {
    /// `tsa`: the cell the TSA is (or will be) loaded into, shared with
    /// whoever else stamps.
    pub fn new(orders: Orders, tsa: Arc<tokio::sync::OnceCell<Tsa>>) -> Confirmations {
        Confirmations { orders, seal: Arc::new(tokio::sync::OnceCell::new()), tsa }
    }

    /// The seal (loaded on first use).
    pub async fn seal(&self) -> Result<&Seal, CaError> {
        self.seal.get_or_try_init(|| Seal::load(self.orders.ca())).await
    }

    /// Check the upload ([`Self::check`]), countersign it, keep it as the
    /// certificate's `confirmare.pdf` (replacing an earlier one).
    pub async fn confirm(&self, token: &str, serial: Option<&str>, upload: &[u8]) -> Result<Confirmed, CaError> {
        let accepted = match self.check(token, serial, upload).await {
            Ok(a) => a,
            Err(e) => {
                if let CaError::DocumentRefused(why) = &e {
                    let subject = serial.unwrap_or("newest");
                    self.audit("confirmation.upload", subject, Outcome::Refused, why.clone()).await;
                }
                return Err(e);
            }
        };
        let at = self.now();
        let seal = self.seal().await?;
        let pdf = seal.countersign(upload, at, |digest| self.time_stamp(digest)).await?;
        let upload_hash = hex::encode(sha2::Sha256::digest(upload));
        self.orders.ca().registry().store_countersigned(&accepted.serial, &upload_hash, &pdf, at).await?;
        let detail = format!("holder={} upload_sha256={upload_hash}", accepted.signature.sub_filter);
        self.audit("confirmation.countersign", &accepted.serial, Outcome::Success, detail).await;
        Ok(Confirmed { serial: accepted.serial, holder_signature: accepted.signature.sub_filter, at })
    }

    /// Our TSA's token over `digest` (SHA-384), in process.
    async fn time_stamp(&self, digest: Vec<u8>) -> Result<Vec<u8>, CaError> {
        let tsa = self.tsa.get_or_try_init(|| Tsa::open(self.orders.ca())).await.map_err(|e| match e {
            CaError::NotFound(why) | CaError::Conflict(why) => {
                CaError::NotConfigured(format!("the countersign needs the time-stamping authority: {why}"))
            }
            other => other,
        })?;
        tsa.stamp(DigestAlgorithm::Sha384, &digest).await
    }

    async fn audit(&self, action: &str, subject: &str, outcome: Outcome, detail: String) {
        let e = Event { actor: "holder", action, subject, outcome, detail };
        crate::audit::record(self.orders.ca().registry(), self.now(), &e).await;
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
        crate::cms::verify_detached(&signature.cms, &cert, &signature.signed_parts(upload).concat()).map_err(|e| {
            match e {
                CmsError::WrongSigner { .. } => CaError::DocumentRefused(format!(
                    "the document was not signed with certificate {serial}, the one it was made for: sign it with \
                 that certificate's key"
                )),
                other => CaError::DocumentRefused(format!("the holder's signature: {other}")),
            }
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
        self.orders.ca().registry().confirmation(&serial).await?.and_then(|row| row.countersigned).ok_or_else(|| {
            CaError::NotFound(format!(
                "certificate {serial} has no countersigned confirmation document yet: upload the signed one first"
            ))
        })
    }
}
