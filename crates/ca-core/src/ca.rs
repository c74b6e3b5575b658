//! The CA: the key ceremony that creates the hierarchy, and issuance of
//! end-entity certificates. Order of every issuance (after Boulder):
//! validate input -> draw serial -> build TBS -> check it against the profile
//! -> store the reservation -> sign on the HSM -> store the certificate.

use std::sync::Arc;

use der::asn1::{Null, OctetString};
use der::{Decode, Encode};
use qcert_hsm::{Hsm, HsmError};
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::{Certificate, TbsCertificate};

use crate::audit;
use crate::clock::{add_years, Clock};
use crate::conformance;
use crate::crl::{self as crlenc, Reason};
use crate::csr;
use crate::error::CaError;
use crate::holder::{Holder, ValidityYears};
use crate::notice::{revocation_words, Notice, NoticeKind, Notices};
use crate::ocsp::{Answer, Responder};
use crate::policy::{CaKeySpec, Policy, Profile};
use crate::signer::CaSigner;
use crate::store::limits::{RateDecision, Window};
use crate::store::{
    CaKeyRecord, CertKind, CrlRecord, DirectoryQuery, NewCertificate, Registry, RevocationRecord, StoreError,
};
use crate::x509::{self, oid, qc, StringKind};

/// A CA key with its certificate.
#[derive(Debug, Clone)]
pub(crate) struct Authority {
    /// None for a root whose key is kept offline (certificate only).
    signer: Option<CaSigner>,
    cert: Certificate,
    der: Vec<u8>,
    serial: String,
    key_id: Vec<u8>,
}

impl Authority {
    pub(crate) fn signer(&self) -> Result<&CaSigner, CaError> {
        self.signer
            .as_ref()
            .ok_or_else(|| CaError::RootOffline("sign the root's ARL and CA certificates with `qcert ceremony`".into()))
    }
    pub(crate) fn cert(&self) -> &Certificate {
        &self.cert
    }
    pub(crate) fn der(&self) -> &[u8] {
        &self.der
    }
    pub(crate) fn serial(&self) -> &str {
        &self.serial
    }
    pub(crate) fn name(&self) -> &Name {
        &self.cert.tbs_certificate.subject
    }
    pub(crate) fn not_after(&self) -> i64 {
        x509::unix_seconds(&self.cert.tbs_certificate.validity.not_after)
    }
    fn not_before(&self) -> i64 {
        x509::unix_seconds(&self.cert.tbs_certificate.validity.not_before)
    }
}

/// Which CA's CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlScope {
    /// The issuing CA's CRL (end-entity and OCSP responder certificates).
    Issuing,
    /// The root's ARL (the issuing CA certificate).
    Root,
    /// The CRL of an issuing CA retired by a rollover, by generation (1 = the first).
    Retired(u32),
}

/// Most certificates one directory search returns.
pub const DIRECTORY_LIMIT: i64 = 50;

/// A certificate listed in the public directory.
#[derive(Debug, Clone)]
pub struct DirectoryEntry {
    pub serial: String,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    /// `valid`, `revoked` or `expired`.
    pub status: &'static str,
    pub der: Vec<u8>,
}

/// A signed CRL not yet stored; see [`Ca::prepare_crl`].
#[derive(Debug)]
pub struct PreparedCrl {
    publication: crate::store::CrlPublication,
    pub record: CrlRecord,
}

impl PreparedCrl {
    /// Store it: from now on it is the current CRL.
    pub async fn commit(self) -> Result<CrlRecord, CaError> {
        self.publication.commit(&self.record).await?;
        Ok(self.record)
    }
}

/// The outcome of a revocation request.
#[derive(Debug, Clone)]
pub struct Revocation {
    pub record: RevocationRecord,
    /// False when the certificate was already revoked: `record` is the first revocation.
    pub newly_revoked: bool,
}

/// The certificates of the hierarchy, as DER.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub root: Vec<u8>,
    pub issuing: Vec<u8>,
    pub ocsp: Vec<u8>,
}

/// A freshly issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: String,
    pub der: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Label of the key made in our HSM (CLOUD), if any.
    pub hsm_key_label: Option<String>,
}

impl Issued {
    pub fn pem(&self) -> String {
        pem("CERTIFICATE", &self.der)
    }
}

/// PEM armour for DER.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap_or_default()
}

/// Options of [`Ca::issue_with`].
#[derive(Debug, Clone, Default)]
pub struct IssueOptions {
    /// The validity's start (default: now). Must not lie in the future.
    pub not_before: Option<OffsetDateTime>,
    /// What the certificate is issued for (e.g. `renewal:<id>`).
    pub issued_for: Option<String>,
}

/// Where the subject key of a new certificate comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// TOKEN: the holder's PKCS#10 request (PEM or DER).
    Csr(Vec<u8>),
    /// CLOUD: a key pair generated in our HSM.
    Hsm,
}

/// The issuing CA, ready to issue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Ca {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    hsm: Hsm,
    registry: Registry,
    policy: Policy,
    clock: Arc<dyn Clock>,
    root: Authority,
    issuing: Authority,
    ocsp: Authority,
    responder: Responder,
    /// Generation of the current issuing CA (1 + retired CAs).
    generation: u32,
    /// Issuing CAs retired by rollovers: CRLs and OCSP for what they issued.
    retired: Vec<Retired>,
    /// Where holders are told of revocations (set once, see [`Ca::set_notices`]).
    notices: std::sync::OnceLock<Arc<dyn Notices>>,
}

pub(crate) struct Meta<'a> {
    pub(crate) kind: CertKind,
    pub(crate) profile: &'a str,
    pub(crate) holder: Option<&'a Holder>,
    pub(crate) hsm_key_label: Option<String>,
    pub(crate) issued_for: Option<&'a str>,
}

impl Ca {
    /// The key ceremony: make the root, issuing-CA and OCSP-responder keys on
    /// the HSM, certify them, and record them. Refuses to run on a registry or
    /// token that already has them.
    pub async fn init(hsm: Hsm, registry: Registry, policy: Policy, clock: Arc<dyn Clock>) -> Result<Ca, CaError> {
        if registry.has_ca().await? {
            return Err(CaError::AlreadyInitialised("the registry already holds CA keys".into()));
        }
        for spec in [&policy.root, &policy.issuing, &policy.ocsp] {
            match hsm.find_key(&spec.key_label) {
                Ok(_) => {
                    return Err(CaError::AlreadyInitialised(format!(
                        "key {:?} already exists on the HSM",
                        spec.key_label
                    )))
                }
                Err(HsmError::KeyNotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let now = clock.now();
        let gen = |spec: &CaKeySpec| -> Result<CaSigner, CaError> {
            let key = hsm.generate_key(&spec.key_label, spec.key_algorithm)?;
            CaSigner::new(hsm.clone(), key)
        };

        // Root: self-signed.
        let root_signer = gen(&policy.root)?;
        let root_tbs = root_tbs(&policy, &policy.root, &root_signer, now)?;
        conformance::check_ca_certificate(&root_tbs, conformance::CaCertKind::Root, None)?;
        let root = certify(&registry, &*clock, None, root_signer, root_tbs, CertKind::RootCa, "root-ca").await?;

        // Issuing CA, certified by the root; its CRL DP points at the root's ARL.
        let issuing_signer = gen(&policy.issuing)?;
        let spki = SubjectPublicKeyInfoOwned::from_der(issuing_signer.spki_der()).map_err(CaError::encoding)?;
        let issuing_tbs = issuing_tbs(&policy, &policy.issuing, &root, spki, now)?;
        conformance::check_ca_certificate(&issuing_tbs, conformance::CaCertKind::Issuing, Some(&root.cert))?;
        let issuing =
            certify(&registry, &*clock, Some(&root), issuing_signer, issuing_tbs, CertKind::IssuingCa, "issuing-ca")
                .await?;

        // OCSP responder, certified directly by the issuing CA (RFC 6960 4.2.2.2).
        let ocsp_signer = gen(&policy.ocsp)?;
        let spki = SubjectPublicKeyInfoOwned::from_der(ocsp_signer.spki_der()).map_err(CaError::encoding)?;
        let ocsp_tbs = ocsp_tbs(&policy, &policy.ocsp, &issuing, spki, now)?;
        conformance::check_ca_certificate(&ocsp_tbs, conformance::CaCertKind::OcspResponder, Some(&issuing.cert))?;
        let ocsp = certify(
            &registry,
            &*clock,
            Some(&issuing),
            ocsp_signer,
            ocsp_tbs,
            CertKind::OcspResponder,
            "ocsp-responder",
        )
        .await?;

        let at = now.unix_timestamp();
        for (role, spec, a) in
            [("root", &policy.root, &root), ("issuing", &policy.issuing, &issuing), ("ocsp", &policy.ocsp, &ocsp)]
        {
            registry
                .put_ca_key(
                    &CaKeyRecord {
                        role: role.into(),
                        key_label: spec.key_label.clone(),
                        key_algorithm: spec.key_algorithm.name().into(),
                        certificate_serial: a.serial.clone(),
                    },
                    at,
                )
                .await?;
        }
        tracing::info!(root = %root.serial, issuing = %issuing.serial, ocsp = %ocsp.serial, "key ceremony complete");
        Ca::assemble(hsm, registry, policy, clock, root, issuing, ocsp)
    }

    /// Load an initialised CA: CA keys are looked up on the HSM once, here.
    /// The root's key is normally not on this token (it is kept offline,
    /// see `qcert ceremony`): then the CA has the root certificate only,
    /// serves the ARL signed at the last `arl` ceremony and refuses to sign
    /// anything with the root. A home made before the root went offline
    /// (root key on this token) keeps working as before, and is told so.
    pub async fn open(hsm: Hsm, registry: Registry, policy: Policy, clock: Arc<dyn Clock>) -> Result<Ca, CaError> {
        let root = load_authority(&hsm, &registry, "root", false).await?;
        if root.signer.is_some() {
            tracing::warn!(
                token = %hsm.token_label(),
                "the root CA key is on the online token: EN 319 411-1 OVR-6.4.2-11 wants it offline. \
                 Move it to a token of its own (see README, \"Moving the root offline\"); until then \
                 serve keeps signing the ARL online"
            );
        }
        let issuing = load_authority(&hsm, &registry, "issuing", true).await?;
        let ocsp = load_authority(&hsm, &registry, "ocsp", true).await?;
        let mut retired = Vec::new();
        for r in registry.retired_issuing_cas().await? {
            let issuing = load_by_serial(&hsm, &registry, &r.issuing_key_label, &r.issuing_serial).await?;
            let ocsp = load_by_serial(&hsm, &registry, &r.ocsp_key_label, &r.ocsp_serial).await?;
            let responder = Responder::new(
                ocsp.signer()?.clone(),
                ocsp.cert.clone(),
                &issuing.cert,
                issuing.serial.clone(),
                policy.ocsp_responses,
            )?;
            let generation = u32::try_from(r.generation).unwrap_or(u32::MAX);
            retired.push(Retired { generation, issuing, ocsp, responder });
        }
        let mut ca = Ca::assemble(hsm, registry, policy, clock, root, issuing, ocsp)?;
        if let Some(inner) = Arc::get_mut(&mut ca.inner) {
            inner.generation = u32::try_from(retired.len()).unwrap_or(u32::MAX - 1) + 1;
            inner.retired = retired;
        }
        Ok(ca)
    }

    /// Generation of the current issuing CA (1 until the first rollover).
    pub fn generation(&self) -> u32 {
        self.inner.generation
    }

    /// Certificate DER of the issuing CA of `generation` (current or retired).
    pub fn issuing_certificate(&self, generation: u32) -> Option<Vec<u8>> {
        if generation == self.inner.generation {
            return Some(self.inner.issuing.der.clone());
        }
        self.inner.retired.iter().find(|r| r.generation == generation).map(|r| r.issuing.der.clone())
    }

    /// The CRL of generation `g`'s issuing CA (current or retired), if any.
    pub fn generation_scope(&self, g: u32) -> Option<CrlScope> {
        if g == self.inner.generation {
            Some(CrlScope::Issuing)
        } else if self.inner.retired.iter().any(|r| r.generation == g) {
            Some(CrlScope::Retired(g))
        } else {
            None
        }
    }

    /// Generations of the retired issuing CAs.
    pub fn retired_generations(&self) -> Vec<u32> {
        self.inner.retired.iter().map(|r| r.generation).collect()
    }

    fn responders(&self) -> impl Iterator<Item = &Responder> {
        std::iter::once(&self.inner.responder).chain(self.inner.retired.iter().map(|r| &r.responder))
    }

    /// True when the root key is on this token (a single-token home).
    pub fn root_key_online(&self) -> bool {
        self.inner.root.signer.is_some()
    }

    fn assemble(
        hsm: Hsm,
        registry: Registry,
        policy: Policy,
        clock: Arc<dyn Clock>,
        root: Authority,
        issuing: Authority,
        ocsp: Authority,
    ) -> Result<Ca, CaError> {
        let responder = Responder::new(
            ocsp.signer()?.clone(),
            ocsp.cert.clone(),
            &issuing.cert,
            issuing.serial.clone(),
            policy.ocsp_responses,
        )?;
        Ok(Ca {
            inner: Arc::new(Inner {
                hsm,
                registry,
                policy,
                clock,
                root,
                issuing,
                ocsp,
                responder,
                generation: 1,
                retired: Vec::new(),
                notices: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Answer a DER OCSP request (never fails: errors are OCSP statuses).
    pub async fn ocsp(&self, request: &[u8]) -> Answer {
        let inner = &*self.inner;
        // The responder of the CA the request names (a retired CA's own after a rollover).
        let responder = match crate::ocsp::parse_request(request) {
            Ok(parsed) if !inner.retired.is_empty() => parsed
                .cert_ids
                .first()
                .and_then(|id| inner.retired.iter().map(|r| &r.responder).find(|r| r.serves(id)))
                .unwrap_or(&inner.responder),
            _ => &inner.responder,
        };
        responder.respond(request, &inner.registry, &*inner.clock).await
    }

    /// Re-sign cached OCSP answers that are about to go stale (at most 500 per call).
    pub async fn refresh_ocsp_cache(&self) -> usize {
        let mut n = 0;
        for responder in self.responders() {
            let due = responder.due_for_refresh(&*self.inner.clock, 500);
            n += due.len();
            responder.resign(due, &self.inner.registry, &*self.inner.clock).await;
        }
        n
    }

    /// Apply revocations made by other processes to the OCSP cache.
    pub async fn sync_revocations(&self) -> Result<usize, CaError> {
        let mut n = 0;
        for responder in self.responders() {
            n += responder.sync_revocations(&self.inner.registry, &*self.inner.clock).await?;
        }
        Ok(n)
    }

    /// The OCSP responder (cache statistics).
    pub fn responder(&self) -> &Responder {
        &self.inner.responder
    }

    pub fn hierarchy(&self) -> Hierarchy {
        Hierarchy {
            root: self.inner.root.der.clone(),
            issuing: self.inner.issuing.der.clone(),
            ocsp: self.inner.ocsp.der.clone(),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    pub fn hsm(&self) -> &Hsm {
        &self.inner.hsm
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Count one event of `value` in `scope` now against `window` (the
    /// registry's sliding window, shared by every process): 429 over it.
    pub async fn rate_limit(&self, scope: &str, value: &str, window: Window) -> Result<(), CaError> {
        let now = self.inner.clock.now().unix_timestamp();
        match self.inner.registry.rate_hit(scope, value, window, now).await? {
            RateDecision::Allowed => Ok(()),
            RateDecision::Refused { retry_after_secs } => Err(CaError::RateLimited { retry_after_secs }),
        }
    }

    /// Is the HSM usable? Signs a probe with the OCSP responder key.
    pub async fn hsm_check(&self) -> Result<(), CaError> {
        self.inner.ocsp.signer()?.sign(b"qcert health probe".to_vec()).await.map(|_| ())
    }

    /// Record the holder's consent to publication in the directory.
    pub async fn publish(&self, serial: &str) -> Result<(), CaError> {
        let serial = normalize_serial(serial)?;
        self.inner.registry.set_published(&serial).await.map_err(|e| match e {
            StoreError::NotFound(s) => CaError::UnknownSerial(s),
            other => other.into(),
        })
    }

    /// Published certificates matching `query`, newest first, with their status.
    pub async fn directory(&self, query: &DirectoryQuery) -> Result<Vec<DirectoryEntry>, CaError> {
        let records = self.inner.registry.find_published(query, DIRECTORY_LIMIT).await?;
        let now = self.inner.clock.now().unix_timestamp();
        let mut out = Vec::with_capacity(records.len());
        for (r, revoked) in records {
            let (Some(der), r) = (r.der, r.cert) else { continue };
            let status = if revoked {
                "revoked"
            } else if r.not_after < now {
                "expired"
            } else {
                "valid"
            };
            out.push(DirectoryEntry {
                serial: r.serial,
                subject: r.subject_dn,
                not_before: r.not_before,
                not_after: r.not_after,
                status,
                der,
            });
        }
        Ok(out)
    }

    /// A published certificate's DER by serial.
    pub async fn published_certificate(&self, serial: &str) -> Result<Option<Vec<u8>>, CaError> {
        let serial = normalize_serial(serial)?;
        Ok(self.inner.registry.published(&serial).await?.and_then(|r| r.der))
    }

    /// Revoke a certificate, permanently. Idempotent: a second request returns
    /// the first revocation unchanged. A new revocation re-signs the CRL of
    /// the issuing CA at once.
    /// Tell holders of revocations through `notices` (every channel: the
    /// desk's, the CLI's). The first call wins; clones share it.
    pub fn set_notices(&self, notices: Arc<dyn Notices>) {
        let _ = self.inner.notices.set(notices);
    }

    /// Mail the holder of a newly revoked certificate (`revoked:<serial>`,
    /// once): when, why and by which channel, in the order's language.
    /// The revocation stands whatever happens here; a failure is logged.
    async fn notify_revoked(&self, record: &RevocationRecord, reason: Reason) {
        let Some(notices) = self.inner.notices.get() else { return };
        let contact = match self.inner.registry.holder_contact(&record.serial).await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(serial = %record.serial, error = %e, "revocation notice: holder lookup failed");
                return;
            }
        };
        let language = contact.language.unwrap_or_else(|| "en".into());
        let at = OffsetDateTime::from_unix_timestamp(record.revoked_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let (when, why, channel) = revocation_words(&language, at, reason, &record.requested_by);
        let notice = Notice {
            dedupe_key: format!("revoked:{}", record.serial),
            kind: NoticeKind::CertificateRevoked,
            to: contact.email,
            language,
            vars: vec![
                ("given_name", contact.given_name),
                ("serial", record.serial.clone()),
                ("revoked_at", when),
                ("reason", why.to_owned()),
                ("channel", channel.to_owned()),
            ],
        };
        if let Err(e) = notices.send(notice).await {
            tracing::error!(serial = %record.serial, error = %e, "could not queue the revocation notice");
        }
    }

    pub async fn revoke(
        &self,
        serial: &str,
        reason: Reason,
        invalidity_date: Option<OffsetDateTime>,
        requested_by: &str,
    ) -> Result<Revocation, CaError> {
        let inner = &*self.inner;
        let serial = normalize_serial(serial)?;
        let now = inner.clock.now();
        if let Some(at) = invalidity_date {
            if at > now {
                return Err(CaError::InvalidInput("the invalidity date lies in the future".into()));
            }
        }
        if requested_by.trim().is_empty() {
            return Err(CaError::InvalidInput("a revocation records who asked for it".into()));
        }
        let cert = inner.registry.certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        let Some(issuer_serial) = cert.cert.issuer_serial.clone() else {
            return Err(CaError::InvalidInput(
                "the root CA is withdrawn from trust lists, not revoked on its own CRL".into(),
            ));
        };
        let record = RevocationRecord {
            serial: serial.clone(),
            issuer_serial,
            reason: reason.code(),
            revoked_at: now.unix_timestamp(),
            invalidity_date: invalidity_date.map(OffsetDateTime::unix_timestamp),
            requested_by: requested_by.trim().to_owned(),
        };
        let (record, newly_revoked) = inner.registry.revoke(&record).await.map_err(|e| match e {
            StoreError::WrongState { serial, status } => {
                CaError::InvalidInput(format!("certificate {serial} was never issued ({status}); nothing to revoke"))
            }
            other => other.into(),
        })?;
        for responder in self.responders() {
            let dropped = responder.invalidate(&record.serial);
            responder.resign(dropped, &inner.registry, &*inner.clock).await;
        }
        let scope = if record.issuer_serial == inner.root.serial {
            CrlScope::Root
        } else if let Some(r) = inner.retired.iter().find(|r| r.issuing.serial == record.issuer_serial) {
            CrlScope::Retired(r.generation)
        } else {
            CrlScope::Issuing
        };
        if newly_revoked {
            tracing::info!(%serial, reason = reason.name(), requested_by, "certificate revoked");
            let event = audit::Event {
                actor: &record.requested_by,
                action: "certificate.revoke",
                subject: &serial,
                outcome: audit::Outcome::Success,
                detail: format!("reason={}", reason.name()),
            };
            audit::record(&inner.registry, now.unix_timestamp(), &event).await;
            self.notify_revoked(&record, reason).await;
            if scope == CrlScope::Root && !self.root_key_online() {
                tracing::warn!(
                    %serial,
                    "a CA certificate was revoked: the root is offline, so run `qcert ceremony arl` \
                     within 24 hours (EN 319 411-1 CSS-6.3.9-13)"
                );
            } else {
                self.publish_crl(scope).await?;
            }
        } else if scope == CrlScope::Root && !self.root_key_online() {
            // The next `arl` ceremony lists it.
        } else {
            // The first request recorded the revocation but may have failed
            // before its CRL was published. Every revocation of a CA stays on
            // its CRL, so a CRL with fewer entries than revocations is behind.
            let listed = self.current_crl(scope).await?.map_or(0, |c| c.entries);
            if listed < inner.registry.revocation_count(&record.issuer_serial).await? {
                self.publish_crl(scope).await?;
            }
        }
        // An unpaid renewal of it can never be issued: cancelled now, so it
        // is not paid for (a payment that still comes is flagged for refund).
        if inner.registry.cancel_unpaid_renewal(&serial, now.unix_timestamp()).await? {
            let event = audit::Event {
                actor: &record.requested_by,
                action: "renewal.cancel",
                subject: &serial,
                outcome: audit::Outcome::Success,
                detail: "unpaid; the certificate is revoked".into(),
            };
            audit::record(&inner.registry, now.unix_timestamp(), &event).await;
        }
        Ok(Revocation { record, newly_revoked })
    }

    fn authority(&self, scope: CrlScope) -> Result<&Authority, CaError> {
        match scope {
            CrlScope::Issuing => Ok(&self.inner.issuing),
            CrlScope::Root => Ok(&self.inner.root),
            CrlScope::Retired(g) => self
                .inner
                .retired
                .iter()
                .find(|r| r.generation == g)
                .map(|r| &r.issuing)
                .ok_or_else(|| CaError::InvalidInput(format!("no retired issuing CA of generation {g}"))),
        }
    }

    /// Build, sign and store a new full CRL for `scope`, with the next CRLNumber.
    pub async fn publish_crl(&self, scope: CrlScope) -> Result<CrlRecord, CaError> {
        let prepared = self.prepare_crl(scope).await?;
        prepared.publication.commit(&prepared.record).await?;
        tracing::info!(
            ?scope,
            crl_number = prepared.record.crl_number,
            entries = prepared.record.entries,
            "published CRL"
        );
        Ok(prepared.record)
    }

    /// Build and sign the next CRL of `scope`, holding its number; the
    /// caller stores it with [`PreparedCrl::commit`] (or drops it: nothing is published).
    pub async fn prepare_crl(&self, scope: CrlScope) -> Result<PreparedCrl, CaError> {
        let inner = &*self.inner;
        let now = inner.clock.now();
        prepare_crl_of(&inner.registry, self.authority(scope)?, now, now + inner.policy.crl.validity()).await
    }

    /// Take in an ARL file from the root's `arl` ceremony: stored as the
    /// current ARL if it is a CRL signed by the root key, issued by the
    /// root, newer (CRL number) than the stored one and not expired. True
    /// if it became the current ARL; an ARL already stored is no error.
    pub async fn import_arl(&self, der: &[u8]) -> Result<bool, CaError> {
        use x509_cert::crl::CertificateList;
        let inner = &*self.inner;
        let root = &inner.root;
        let refuse = |why: &str| CaError::InvalidInput(format!("not an ARL of this root: {why}"));
        let crl = CertificateList::from_der(der).map_err(|_| refuse("not a DER CRL"))?;
        let tbs = &crl.tbs_cert_list;
        if tbs.issuer != root.cert.tbs_certificate.subject {
            return Err(refuse("another issuer"));
        }
        let message = tbs.to_der().map_err(CaError::encoding)?;
        let signature = crl.signature.as_bytes().ok_or_else(|| refuse("bad signature bits"))?;
        if !crate::ceremony::verify_signature(
            &root.cert.tbs_certificate.subject_public_key_info,
            &crl.signature_algorithm,
            &message,
            signature,
        ) {
            return Err(refuse("its signature does not verify with the root key"));
        }
        let number = tbs
            .crl_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_NUMBER)
            .and_then(|e| x509_cert::ext::pkix::CrlNumber::from_der(e.extn_value.as_bytes()).ok())
            .and_then(|n| {
                let b = n.0.as_bytes();
                (b.len() <= 8).then(|| b.iter().fold(0i64, |acc, x| (acc << 8) | i64::from(*x)))
            })
            .ok_or_else(|| refuse("no CRL number"))?;
        let this_update = x509::unix_seconds(&tbs.this_update);
        let next_update = tbs.next_update.as_ref().map(x509::unix_seconds).ok_or_else(|| refuse("no nextUpdate"))?;
        if let Some(current) = inner.registry.latest_crl(&root.serial).await? {
            if current.crl_number >= number {
                return Ok(false);
            }
        }
        if next_update <= inner.clock.now().unix_timestamp() {
            return Err(refuse("expired"));
        }
        let entries = i64::try_from(tbs.revoked_certificates.as_ref().map_or(0, Vec::len)).unwrap_or(i64::MAX);
        let record = CrlRecord {
            issuer_serial: root.serial.clone(),
            crl_number: number,
            this_update,
            next_update,
            entries,
            der: der.to_vec(),
        };
        let stored = inner.registry.import_crl(&record).await?;
        if stored {
            tracing::info!(crl_number = number, "ARL file imported as the current ARL");
        }
        Ok(stored)
    }

    /// The newest stored CRL for `scope`.
    pub async fn current_crl(&self, scope: CrlScope) -> Result<Option<CrlRecord>, CaError> {
        Ok(self.inner.registry.latest_crl(&self.authority(scope)?.serial).await?)
    }

    /// Publish the CRLs that are missing, older than the refresh interval,
    /// or dated in the future (thisUpdate after now: the clock was stepped
    /// back since it was signed, and relying parties would call it "not yet
    /// valid"; the jump is logged).
    pub async fn refresh_crls(&self) -> Result<(), CaError> {
        let now = self.inner.clock.now().unix_timestamp();
        let refresh = self.inner.policy.crl.refresh().whole_seconds();
        let retired = self.inner.retired.iter().map(|r| CrlScope::Retired(r.generation));
        let scopes: Vec<CrlScope> = [CrlScope::Issuing, CrlScope::Root].into_iter().chain(retired).collect();
        for scope in scopes {
            if scope == CrlScope::Root && self.inner.root.signer.is_none() {
                // The ARL comes from the `arl` ceremony (imported by `serve`).
                continue;
            }
            let current = self.current_crl(scope).await?;
            if let Some(c) = current.as_ref().filter(|c| c.this_update > now) {
                tracing::warn!(
                    ?scope,
                    crl_number = c.crl_number,
                    seconds_ahead = c.this_update - now,
                    "the newest CRL is dated in the future: the clock went back; republishing"
                );
            }
            let stale =
                current.is_none_or(|c| c.this_update > now || now - c.this_update >= refresh || c.next_update <= now);
            if stale {
                self.publish_crl(scope).await?;
            }
        }
        Ok(())
    }

    /// Issue an end-entity certificate under `profile_id` to a validated holder.
    pub async fn issue(
        &self,
        profile_id: &str,
        holder: &Holder,
        years: ValidityYears,
        key: KeySource,
    ) -> Result<Issued, CaError> {
        self.issue_with(profile_id, holder, years, key, &IssueOptions::default()).await
    }

    /// Issue with options: a given notBefore (renewal: old notAfter - 3
    /// days, never in the future) and what it is issued for (at most one
    /// live certificate per value, enforced by the registry).
    pub async fn issue_with(
        &self,
        profile_id: &str,
        holder: &Holder,
        years: ValidityYears,
        key: KeySource,
        options: &IssueOptions,
    ) -> Result<Issued, CaError> {
        let inner = &*self.inner;
        let profile = inner.policy.profile(profile_id)?;
        if !profile.allowed_years.contains(&u32::from(years.get())) {
            let allowed = profile.allowed_years.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            return Err(CaError::ValidityNotOffered(u32::from(years.get()), allowed));
        }
        let now = match options.not_before {
            Some(at) if at > inner.clock.now() => {
                return Err(CaError::InvalidInput("a certificate's validity cannot start in the future".into()))
            }
            Some(at) => at,
            None => inner.clock.now(),
        };
        let not_after = add_years(now, years.get());
        if not_after.unix_timestamp() > inner.issuing.not_after() {
            return Err(CaError::InvalidInput(format!(
                "a {}-year certificate would outlive the issuing CA certificate; order a shorter validity",
                years.get()
            )));
        }
        let (spki, hsm_key_label) = match key {
            KeySource::Csr(input) => {
                let profile = profile.clone();
                let verified = tokio::task::spawn_blocking(move || {
                    let req = csr::decode(&input)?;
                    csr::verify(&req, &profile)
                })
                .await
                .map_err(|e| CaError::Internal(e.to_string()))??;
                (verified.spki, None)
            }
            KeySource::Hsm => {
                // Holder keys have their own key space on the HSM: the CA
                // gets only the public key; signing goes through `csc`.
                let label = format!("{}{}", qcert_hsm::HOLDER_KEY_PREFIX, hex::encode(random_bytes::<12>()));
                let hsm = inner.hsm.clone();
                let alg = profile.cloud_key_algorithm;
                let spki = {
                    let label = label.clone();
                    tokio::task::spawn_blocking(move || hsm.generate_holder_key(&label, alg))
                        .await
                        .map_err(|e| CaError::Internal(e.to_string()))??
                };
                (SubjectPublicKeyInfoOwned::from_der(&spki).map_err(CaError::encoding)?, Some(label))
            }
        };
        let tbs = self.end_entity_tbs(profile, holder, now, not_after, spki)?;
        conformance::check_end_entity(&tbs, profile, years.get())?;
        let der = sign_and_store(
            &inner.registry,
            &*inner.clock,
            inner.issuing.signer()?,
            tbs,
            Some(&inner.issuing.serial),
            &Meta {
                kind: CertKind::EndEntity,
                profile: &profile.id,
                holder: Some(holder),
                hsm_key_label: hsm_key_label.clone(),
                issued_for: options.issued_for.as_deref(),
            },
        )
        .await
        .map_err(|e| match e {
            CaError::Store(StoreError::AlreadyIssuedFor(what)) => {
                CaError::Conflict(format!("a certificate for {what} is already reserved or issued"))
            }
            other => other,
        })?;
        let serial = serial_hex(&Certificate::from_der(&der).map_err(CaError::encoding)?.tbs_certificate.serial_number);
        tracing::info!(%serial, profile = %profile.id, "issued certificate");
        let event = audit::Event {
            actor: "ca",
            action: "certificate.issue",
            subject: &serial,
            outcome: audit::Outcome::Success,
            detail: format!("profile={} years={}", profile.id, years.get()),
        };
        audit::record(&inner.registry, now.unix_timestamp(), &event).await;
        Ok(Issued { serial, der, not_before: now, not_after, hsm_key_label })
    }

    fn end_entity_tbs(
        &self,
        profile: &Profile,
        holder: &Holder,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        spki: SubjectPublicKeyInfoOwned,
    ) -> Result<TbsCertificate, CaError> {
        let inner = &*self.inner;
        let urls = &inner.policy.urls;
        let subject = x509::holder_subject(holder)?;
        let kid = x509::key_identifier(&spki);
        let statements = qc::qcp_n_qscd(&profile.pds).map_err(CaError::encoding)?;
        let mut ext = vec![
            x509::extension(true, &KeyUsage(KeyUsages::NonRepudiation.into()))?,
            x509::extension(false, &certificate_policies(&profile.policy_oids))?,
            x509::raw_extension(oid::QC_STATEMENTS, false, &statements)?,
            x509::extension(false, &SubjectAltName(vec![GeneralName::Rfc822Name(x509::ia5(holder.email.as_str())?)]))?,
        ];
        let (crl, cert) =
            (generation_url(&urls.issuing_crl, inner.generation), generation_url(&urls.issuing_cert, inner.generation));
        ext.extend(chain_extensions(&inner.issuing, &kid, &crl, Some(&urls.ocsp), &cert)?);
        tbs(
            inner.issuing.signer()?.algorithm_identifier(),
            inner.issuing.name().clone(),
            subject,
            not_before,
            not_after,
            spki,
            ext,
        )
    }
}

/// Build and sign the next full CRL of `ca` (every revocation of a
/// certificate it issued), thisUpdate `now`, nextUpdate `next`.
pub(crate) async fn prepare_crl_of(
    registry: &Registry,
    ca: &Authority,
    now: OffsetDateTime,
    next: OffsetDateTime,
) -> Result<PreparedCrl, CaError> {
    let signer = ca.signer()?;
    let mut publication = registry.begin_crl(&ca.serial).await?;
    let number = publication.number();
    let info = crlenc::CrlInfo {
        issuer: ca.name(),
        signature_algorithm: signer.algorithm_identifier(),
        issuer_key_id: &ca.key_id,
        this_update: now,
        next_update: next,
        crl_number: u64::try_from(number).unwrap_or(0),
        expired_certs_on_crl: time_of(ca.not_before())?,
    };
    let mut writer = crlenc::CrlWriter::new(&info)?;
    let mut serial_bytes = Vec::with_capacity(20);
    publication
        .for_each_revocation(|r| {
            serial_bytes.clear();
            serial_bytes.extend(hex::decode(r.serial_hex).map_err(CaError::encoding)?);
            let reason = Reason::from_code(r.reason).unwrap_or(Reason::Unspecified);
            writer.push(&crlenc::Entry {
                serial: &serial_bytes,
                revoked_at: r.revoked_at,
                reason,
                invalidity_date: r.invalidity_date,
            })
        })
        .await??;
    let count = i64::try_from(writer.len()).unwrap_or(i64::MAX);
    let (buf, start) = writer.finish()?.into_parts();
    let (buf, signature) = signer.sign_returning(buf, start).await?;
    let der = crlenc::assemble(crlenc::Tbs::from_parts(buf, start), signer.algorithm_identifier(), &signature)?;
    let record = CrlRecord {
        issuer_serial: ca.serial.clone(),
        crl_number: number,
        this_update: now.unix_timestamp(),
        next_update: next.unix_timestamp(),
        entries: count,
        der,
    };
    Ok(PreparedCrl { publication, record })
}

/// An issuing CA retired by a rollover, with its own responder.
#[derive(Debug)]
struct Retired {
    generation: u32,
    issuing: Authority,
    #[allow(dead_code)] // kept with its CA: the responder signs with its key
    ocsp: Authority,
    responder: Responder,
}

/// The URL of generation `g`'s CRL or certificate: `…/issuing.crl` for the
/// first issuing CA, `…/issuing-<g>.crl` after rollovers.
pub fn generation_url(url: &str, g: u32) -> String {
    match url.rsplit_once("/issuing.") {
        Some((base, ext)) if g > 1 => format!("{base}/issuing-{g}.{ext}"),
        _ => url.to_owned(),
    }
}

/// A CA certificate by serial with its key `label` on `hsm` (which must match).
async fn load_by_serial(hsm: &Hsm, registry: &Registry, label: &str, serial: &str) -> Result<Authority, CaError> {
    let cert = registry
        .certificate(serial)
        .await?
        .and_then(|c| c.der)
        .ok_or_else(|| CaError::Internal(format!("certificate {serial} missing from the registry")))?;
    let key = {
        let hsm = hsm.clone();
        let label = label.to_owned();
        tokio::task::spawn_blocking(move || hsm.find_key(&label))
            .await
            .map_err(|e| CaError::Internal(e.to_string()))??
    };
    let signer = CaSigner::new(hsm.clone(), key)?;
    let parsed = Certificate::from_der(&cert).map_err(CaError::encoding)?;
    if parsed.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)? != signer.spki_der() {
        return Err(CaError::Internal(format!("key {label:?} on the HSM does not match certificate {serial}")));
    }
    authority(Some(signer), cert)
}

/// The CA certificate of `role` from the registry, with its key from
/// `hsm` (checked to match the certificate's public key). A key that is
/// not on the token is an error when `key_required`, else the authority
/// has no signer (the offline root seen from the online token).
pub(crate) async fn load_authority(
    hsm: &Hsm,
    registry: &Registry,
    role: &str,
    key_required: bool,
) -> Result<Authority, CaError> {
    let rec = registry.ca_key(role).await?.ok_or(CaError::NotInitialised)?;
    let cert = registry
        .certificate(&rec.certificate_serial)
        .await?
        .and_then(|c| c.der)
        .ok_or_else(|| CaError::Internal(format!("{role} certificate missing from the registry")))?;
    let found = {
        let hsm = hsm.clone();
        let label = rec.key_label.clone();
        tokio::task::spawn_blocking(move || hsm.find_key(&label)).await.map_err(|e| CaError::Internal(e.to_string()))?
    };
    let key = match found {
        Ok(k) => k,
        Err(HsmError::KeyNotFound(_)) if !key_required => return authority(None, cert),
        Err(e) => return Err(e.into()),
    };
    let signer = CaSigner::new(hsm.clone(), key)?;
    let parsed = Certificate::from_der(&cert).map_err(CaError::encoding)?;
    if parsed.tbs_certificate.subject_public_key_info.to_der().map_err(CaError::encoding)? != signer.spki_der() {
        return Err(CaError::Internal(format!(
            "the {role} key {:?} on the HSM does not match the {role} certificate",
            rec.key_label
        )));
    }
    authority(Some(signer), cert)
}

/// A CA's distinguished name: C, O, organizationIdentifier, CN (EN 319 412-3).
pub(crate) fn ca_name(policy: &Policy, cn: &str) -> Result<Name, CaError> {
    let org = &policy.organization;
    x509::name(&[
        (oid::COUNTRY, StringKind::Printable, org.country.as_str()),
        (oid::ORGANIZATION, StringKind::Utf8, org.name.as_str()),
        (oid::ORGANIZATION_IDENTIFIER, StringKind::Utf8, org.organization_identifier.as_str()),
        (oid::COMMON_NAME, StringKind::Utf8, cn),
    ])
}

/// The self-signed root's TBS for `signer`'s key.
pub(crate) fn root_tbs(
    policy: &Policy,
    spec: &CaKeySpec,
    signer: &CaSigner,
    now: OffsetDateTime,
) -> Result<TbsCertificate, CaError> {
    let spki = SubjectPublicKeyInfoOwned::from_der(signer.spki_der()).map_err(CaError::encoding)?;
    let kid = x509::key_identifier(&spki);
    let name = ca_name(policy, &spec.common_name)?;
    let ext = vec![
        x509::extension(true, &BasicConstraints { ca: true, path_len_constraint: None })?,
        x509::extension(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        x509::extension(false, &SubjectKeyIdentifier(octets(&kid)?))?,
    ];
    tbs(signer.algorithm_identifier(), name.clone(), name, now, now + spec.validity, spki, ext)
}

/// An issuing CA's TBS under `root`; its CRL DP points at the root's ARL.
pub(crate) fn issuing_tbs(
    policy: &Policy,
    spec: &CaKeySpec,
    root: &Authority,
    spki: SubjectPublicKeyInfoOwned,
    now: OffsetDateTime,
) -> Result<TbsCertificate, CaError> {
    let kid = x509::key_identifier(&spki);
    let mut ext = vec![
        x509::extension(true, &BasicConstraints { ca: true, path_len_constraint: Some(0) })?,
        x509::extension(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
        x509::extension(false, &certificate_policies(&[oid::QCP_N_QSCD, policy.ca_policy_oid]))?,
    ];
    ext.extend(chain_extensions(root, &kid, &policy.urls.root_crl, None, &policy.urls.root_cert)?);
    let not_after = (now + spec.validity).min(time_of(root.not_after())?);
    let alg = root.signer()?.algorithm_identifier();
    tbs(alg, root.name().clone(), ca_name(policy, &spec.common_name)?, now, not_after, spki, ext)
}

/// The OCSP responder's TBS under `issuing` (RFC 6960 4.2.2.2: delegated, nocheck).
pub(crate) fn ocsp_tbs(
    policy: &Policy,
    spec: &CaKeySpec,
    issuing: &Authority,
    spki: SubjectPublicKeyInfoOwned,
    now: OffsetDateTime,
) -> Result<TbsCertificate, CaError> {
    let kid = x509::key_identifier(&spki);
    let ext = vec![
        x509::extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
        x509::extension(false, &ExtendedKeyUsage(vec![oid::ID_KP_OCSP_SIGNING]))?,
        x509::raw_extension(oid::OCSP_NOCHECK, false, &Null)?,
        x509::extension(false, &SubjectKeyIdentifier(octets(&kid)?))?,
        x509::extension(false, &aki(&issuing.key_id)?)?,
        x509::extension(false, &aia(None, &policy.urls.issuing_cert)?)?,
    ];
    let not_after = (now + spec.validity).min(time_of(issuing.not_after())?);
    let alg = issuing.signer()?.algorithm_identifier();
    tbs(alg, issuing.name().clone(), ca_name(policy, &spec.common_name)?, now, not_after, spki, ext)
}

/// The QTSP's own service certificates, issued by the issuing CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceCert {
    /// The QTSP's electronic seal (confirmation documents):
    /// digitalSignature + nonRepudiation.
    Seal,
    /// A time-stamping unit (RFC 3161 2.3): digitalSignature, extKeyUsage
    /// id-kp-timeStamping alone and critical.
    Tsa,
}

/// A seal or TSA certificate's TBS under `issuing`: subject C, O,
/// organizationIdentifier, CN of the QTSP; CRL DP and OCSP of the issuing CA.
pub(crate) fn service_tbs(
    policy: &Policy,
    spec: &CaKeySpec,
    kind: ServiceCert,
    issuing: &Authority,
    generation: u32,
    spki: SubjectPublicKeyInfoOwned,
    now: OffsetDateTime,
) -> Result<TbsCertificate, CaError> {
    let kid = x509::key_identifier(&spki);
    let mut ext = match kind {
        ServiceCert::Seal => {
            vec![x509::extension(true, &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation))?]
        }
        ServiceCert::Tsa => vec![
            x509::extension(true, &KeyUsage(KeyUsages::DigitalSignature.into()))?,
            x509::extension(true, &ExtendedKeyUsage(vec![oid::ID_KP_TIME_STAMPING]))?,
        ],
    };
    ext.push(x509::extension(false, &certificate_policies(&[policy.ca_policy_oid]))?);
    let urls = &policy.urls;
    let (crl, cert) = (generation_url(&urls.issuing_crl, generation), generation_url(&urls.issuing_cert, generation));
    ext.extend(chain_extensions(issuing, &kid, &crl, Some(&urls.ocsp), &cert)?);
    let not_after = (now + spec.validity).min(time_of(issuing.not_after())?);
    let alg = issuing.signer()?.algorithm_identifier();
    tbs(alg, issuing.name().clone(), ca_name(policy, &spec.common_name)?, now, not_after, spki, ext)
}

/// CRL DP, AIA, AKI and SKI for a certificate issued by `issuer`.
pub(crate) fn chain_extensions(
    issuer: &Authority,
    subject_kid: &[u8],
    crl: &str,
    ocsp: Option<&str>,
    ca_issuers: &str,
) -> Result<Vec<Extension>, CaError> {
    let dp = DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![GeneralName::UniformResourceIdentifier(
            x509::ia5(crl)?,
        )])),
        reasons: None,
        crl_issuer: None,
    };
    Ok(vec![
        x509::extension(false, &CrlDistributionPoints(vec![dp]))?,
        x509::extension(false, &aia(ocsp, ca_issuers)?)?,
        x509::extension(false, &aki(&issuer.key_id)?)?,
        x509::extension(false, &SubjectKeyIdentifier(octets(subject_kid)?))?,
    ])
}

pub(crate) fn aia(ocsp: Option<&str>, ca_issuers: &str) -> Result<AuthorityInfoAccessSyntax, CaError> {
    let mut v = Vec::new();
    if let Some(url) = ocsp {
        v.push(AccessDescription {
            access_method: oid::ID_AD_OCSP,
            access_location: GeneralName::UniformResourceIdentifier(x509::ia5(url)?),
        });
    }
    v.push(AccessDescription {
        access_method: oid::ID_AD_CA_ISSUERS,
        access_location: GeneralName::UniformResourceIdentifier(x509::ia5(ca_issuers)?),
    });
    Ok(AuthorityInfoAccessSyntax(v))
}

pub(crate) fn aki(kid: &[u8]) -> Result<AuthorityKeyIdentifier, CaError> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(octets(kid)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

pub(crate) fn certificate_policies(oids: &[der::asn1::ObjectIdentifier]) -> CertificatePolicies {
    CertificatePolicies(
        oids.iter().map(|o| PolicyInformation { policy_identifier: *o, policy_qualifiers: None }).collect(),
    )
}

pub(crate) fn octets(b: &[u8]) -> Result<OctetString, CaError> {
    OctetString::new(b).map_err(CaError::encoding)
}

pub(crate) fn time_of(unix: i64) -> Result<OffsetDateTime, CaError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(CaError::encoding)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// A positive serial of 16 octets from the OS CSPRNG: 126 random bits, the
/// top bit clear (positive) and the next set (no leading zero octet).
pub(crate) fn new_serial() -> Result<SerialNumber, CaError> {
    let mut b = random_bytes::<16>();
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::new(&b).map_err(CaError::encoding)
}

/// A serial as an operator types it (hex, any case, optional colons or
/// spaces, optional 0x) in the registry's form.
pub fn normalize_serial(input: &str) -> Result<String, CaError> {
    let s: String = input.trim().trim_start_matches("0x").chars().filter(|c| *c != ':' && !c.is_whitespace()).collect();
    if s.is_empty() || s.len() > 42 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        // The input is not echoed: errors name what was wrong, never the value.
        return Err(CaError::InvalidInput(
            "the certificate serial number must be 1 to 42 hex digits (an optional 0x prefix and colons allowed)"
                .into(),
        ));
    }
    let s = s.to_ascii_lowercase();
    Ok(if s.len() % 2 == 1 { format!("0{s}") } else { s })
}

/// Lower-case hex of a serial's DER content octets (how the registry keys it).
pub fn serial_hex(s: &SerialNumber) -> String {
    hex::encode(s.as_bytes())
}

pub(crate) fn tbs(
    signature: &spki::AlgorithmIdentifierOwned,
    issuer: Name,
    subject: Name,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    spki: SubjectPublicKeyInfoOwned,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, CaError> {
    Ok(TbsCertificate {
        version: x509_cert::Version::V3,
        serial_number: new_serial()?,
        signature: signature.clone(),
        issuer,
        validity: Validity { not_before: x509::x509_time(not_before)?, not_after: x509::x509_time(not_after)? },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// Sign a CA certificate (with `issuer`'s key, or its own for the root) and
/// keep it with its signer.
pub(crate) async fn certify(
    registry: &Registry,
    clock: &dyn Clock,
    issuer: Option<&Authority>,
    subject: CaSigner,
    tbs: TbsCertificate,
    kind: CertKind,
    profile: &str,
) -> Result<Authority, CaError> {
    let meta =
        Meta { kind, profile, holder: None, hsm_key_label: Some(subject.key_label().to_owned()), issued_for: None };
    let signer = match issuer {
        Some(i) => i.signer()?,
        None => &subject,
    };
    let der = sign_and_store(registry, clock, signer, tbs, issuer.map(|i| &i.serial), &meta).await?;
    authority(Some(subject), der)
}

pub(crate) fn authority(signer: Option<CaSigner>, der: Vec<u8>) -> Result<Authority, CaError> {
    let cert = Certificate::from_der(&der).map_err(CaError::encoding)?;
    let key_id = x509::key_identifier(&cert.tbs_certificate.subject_public_key_info);
    Ok(Authority { serial: serial_hex(&cert.tbs_certificate.serial_number), signer, cert, der, key_id })
}

/// Reserve the serial with the TBS, sign through the HSM, store the result.
/// A clash of serials draws a new one; a signing failure burns the reservation.
pub(crate) async fn sign_and_store(
    registry: &Registry,
    clock: &dyn Clock,
    signer: &CaSigner,
    mut tbs: TbsCertificate,
    issuer_serial: Option<&String>,
    meta: &Meta<'_>,
) -> Result<Vec<u8>, CaError> {
    let now = clock.now().unix_timestamp();
    let mut attempts = 0;
    let (serial, tbs_der) = loop {
        let tbs_der = tbs.to_der().map_err(CaError::encoding)?;
        let serial = serial_hex(&tbs.serial_number);
        let new = NewCertificate {
            serial: serial.clone(),
            issuer_serial: issuer_serial.cloned(),
            kind: meta.kind,
            profile: meta.profile.to_owned(),
            subject_dn: x509::name_text(&tbs.subject),
            given_name: meta.holder.map(|h| h.given_name.as_str().to_owned()),
            surname: meta.holder.map(|h| h.surname.as_str().to_owned()),
            email: meta.holder.map(|h| h.email.as_str().to_owned()),
            country: meta.holder.map(|h| h.country.as_str().to_owned()),
            semantics_id: meta.holder.map(|h| h.semantics_id.as_str().to_owned()),
            not_before: x509::unix_seconds(&tbs.validity.not_before),
            not_after: x509::unix_seconds(&tbs.validity.not_after),
            key_id: hex::encode(x509::key_identifier(&tbs.subject_public_key_info)),
            hsm_key_label: meta.hsm_key_label.clone(),
            tbs_der: tbs_der.clone(),
            issued_for: meta.issued_for.map(str::to_owned),
        };
        match registry.reserve(&new, now).await {
            Ok(()) => break (serial, tbs_der),
            Err(StoreError::DuplicateSerial(_)) if attempts < 3 => {
                attempts += 1;
                tracing::warn!(%serial, "serial collision; drawing another");
                tbs.serial_number = new_serial()?;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let signature = match signer.sign(tbs_der).await {
        Ok(sig) => sig,
        Err(e) => {
            if let Err(store) = registry.mark_aborted(&serial, clock.now().unix_timestamp()).await {
                tracing::error!(%serial, error = %store, "could not mark a failed issuance as aborted");
            }
            return Err(e);
        }
    };
    let der = x509::assemble(tbs, &signature)?.to_der().map_err(CaError::encoding)?;
    registry.mark_issued(&serial, &der, clock.now().unix_timestamp()).await?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn serials_are_normalised_and_bad_ones_are_not_echoed() {
        assert_eq!(normalize_serial(" 0x0A:bC ").unwrap(), "0abc");
        assert_eq!(normalize_serial("abc").unwrap(), "0abc");
        for bad in ["", "<script>zz</script>", &"a".repeat(43)] {
            let e = normalize_serial(bad).unwrap_err().to_string();
            assert!(e.contains("hex digits"), "{e}");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }
}
