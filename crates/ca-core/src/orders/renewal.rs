//! Renewal (DOMAIN.md "Renewal", seed 002): ordered with the current
//! certificate while it is valid, at the latest 3 days before its notAfter;
//! issued by the notifier 3 days before expiry with notBefore = old
//! notAfter - 3 days, the same subject, a new serial and the same
//! revocation password. Reminders go out 45 and (unless a renewal was
//! ordered) 15 days before expiry.

use der::Decode;
use futures_util::StreamExt;
use time::{Duration, OffsetDateTime};
use x509_cert::Certificate;

use super::{Orders, Product, PROFILE};
use crate::audit::Outcome;
use crate::ca::{normalize_serial, IssueOptions, KeySource};
use crate::clock::rfc3339;
use crate::error::CaError;
use crate::holder::{Holder, ValidityYears};
use crate::notice::NoticeKind;
use crate::store::renewals::{NewRenewal, RenewalRow};
use crate::store::{CertKind, CertStatus, CertificateRecord};
use crate::{csr, x509};

/// Renewal closes, and issuance happens, this long before notAfter.
pub const RENEWAL_LEAD: Duration = Duration::days(3);
/// Renewals issued concurrently by one notifier.
const RENEWAL_CONCURRENCY: usize = 4;

/// The first reminder and the banner: this long before notAfter.
pub const FIRST_REMINDER: Duration = Duration::days(45);
/// The second reminder (only without a renewal order).
pub const SECOND_REMINDER: Duration = Duration::days(15);

/// A holder's signed renewal request (TOKEN): the content of the CMS SignedData.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedRenewal {
    serial: String,
    years: u32,
    /// PEM of the new key's PKCS#10 request.
    csr: String,
}

/// What the banner shows for a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub serial: String,
    pub not_after: i64,
    /// The banner shows: the certificate is valid and `now` is within the
    /// 45 days before notAfter, at the latest `deadline` (inclusive, as a
    /// renewal order is). Never true after the deadline, so never together
    /// with `not-renewable`.
    pub window_open: bool,
    /// Last moment a renewal can be ordered (notAfter - 3 days).
    pub deadline: i64,
    /// `none`, `awaiting-payment`, `paid`, `issuing`, `issued`, or
    /// `not-renewable` (revoked, expired or past the deadline).
    pub state: String,
    pub renewal_id: Option<String>,
    pub new_serial: Option<String>,
    /// Where to pay the renewal while it awaits payment
    /// (`PaymentSettings::renewal_url`).
    pub payment_url: Option<String>,
}

/// What one pass over due renewals did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenewalReport {
    pub issued: u32,
    pub cancelled: u32,
    pub failed: u32,
}

/// Crash-test hook: `QCERT_FAILPOINT=<name>` aborts the process there, as
/// `kill -9` would.
pub fn failpoint(name: &str) {
    if std::env::var("QCERT_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

impl Orders {
    /// The current certificate, if it can be renewed at `now`.
    async fn renewable(&self, serial: &str, now: OffsetDateTime) -> Result<CertificateRecord, CaError> {
        let registry = self.ca().registry();
        let rec = registry.certificate(serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.to_owned()))?;
        if rec.cert.kind != CertKind::EndEntity || rec.status != CertStatus::Issued {
            return Err(CaError::UnknownSerial(serial.to_owned()));
        }
        let new_order = "; a new order (with identity validation) is needed";
        if registry.revocation(serial).await?.is_some() {
            return Err(CaError::Conflict(format!("certificate {serial} is revoked{new_order}")));
        }
        if rec.cert.not_after <= now.unix_timestamp() {
            return Err(CaError::Conflict(format!("certificate {serial} has expired{new_order}")));
        }
        if registry.renewal_of(serial).await?.is_some() {
            return Err(CaError::Conflict(format!("a renewal of {serial} is already ordered")));
        }
        let deadline = rec.cert.not_after - RENEWAL_LEAD.whole_seconds();
        if now.unix_timestamp() > deadline {
            return Err(CaError::Conflict(format!(
                "renewal closed 3 days before the certificate's expiry (at {}){new_order}",
                rfc3339(deadline)
            )));
        }
        Ok(rec)
    }

    /// TOKEN renewal: `request` is a CMS SignedData made with the current
    /// certificate's key over `{"serial", "years", "csr"}`.
    pub async fn order_renewal_signed(&self, serial: &str, request: &[u8]) -> Result<RenewalRow, CaError> {
        let serial = normalize_serial(serial)?;
        let now = self.now();
        let rec = self.renewable(&serial, now).await?;
        let der = rec.der.as_deref().ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        let cert = Certificate::from_der(der).map_err(CaError::encoding)?;
        let verified =
            crate::cms::verify_signed_data(request, &cert).map_err(|e| CaError::SignatureRefused(e.to_string()))?;
        let signed_at = verified.signing_time.ok_or_else(|| {
            CaError::SignatureRefused("the signed request carries no signing time (openssl cms -sign adds one)".into())
        })?;
        if signed_at < now - Duration::minutes(15) || signed_at > now + Duration::minutes(5) {
            return Err(CaError::SignatureRefused(
                "the request must be signed within 15 minutes before sending".into(),
            ));
        }
        let req: SignedRenewal = serde_json::from_slice(&verified.content).map_err(|_| {
            CaError::InvalidInput("the signed content must be JSON {\"serial\", \"years\", \"csr\"}".into())
        })?;
        if normalize_serial(&req.serial)? != serial {
            return Err(CaError::InvalidInput(format!("the signed request names serial {}, not {serial}", req.serial)));
        }
        let years = ValidityYears::new(req.years)?;
        let profile = self.ca().policy().profile(PROFILE)?.clone();
        let csr_bytes = req.csr.into_bytes();
        let checked = csr_bytes.clone();
        let verified_key = tokio::task::spawn_blocking(move || {
            let r = csr::decode(&checked)?;
            csr::verify(&r, &profile)
        })
        .await
        .map_err(|e| CaError::Internal(e.to_string()))??;
        let key_id = hex::encode(x509::key_identifier(&verified_key.spki));
        if self.ca().registry().key_in_use(&key_id, "").await? {
            return Err(CaError::CsrRefused("renewal is a rekey: the new CSR must carry a new key pair".into()));
        }
        let order_id = self.order_of(&serial).await?;
        self.insert_renewal(&rec, order_id.as_deref(), Product::Token, years, Some((&csr_bytes, &key_id))).await
    }

    /// CLOUD renewal: authorised by a code from the holder's authenticator;
    /// the new key will be made in the HSM.
    pub async fn order_renewal_code(&self, serial: &str, years: u32, code: &str) -> Result<RenewalRow, CaError> {
        let serial = normalize_serial(serial)?;
        let now = self.now();
        let rec = self.renewable(&serial, now).await?;
        let years = ValidityYears::new(years)?;
        let refused = || CaError::SignatureRefused("wrong or already used authorization code".into());
        // The serial is public: codes are counted per certificate (and per
        // authenticator in `check_code`).
        self.ca().rate_limit("certificate-code", &serial, self.limits.per_certificate).await?;
        let order_id = self.order_of(&serial).await?.ok_or_else(refused)?;
        let order = self.ca().registry().order(&order_id).await?.ok_or_else(refused)?;
        if order.totp_enrolled_at.is_none() {
            return Err(refused());
        }
        self.check_code(&order, code, "holder:renewal").await?;
        self.insert_renewal(&rec, Some(&order.id), Product::Cloud, years, None).await
    }

    /// CLOUD self-revocation: authorised by a code from the holder's
    /// authenticator (the key is in our HSM, so the holder cannot sign a
    /// request with it outside the CSC API). Counted like renewal codes:
    /// per certificate (the serial is public), then on the authenticator.
    pub async fn self_revoke_code(
        &self,
        serial: &str,
        code: &str,
        reason: crate::crl::Reason,
    ) -> Result<crate::ca::Revocation, CaError> {
        let serial = normalize_serial(serial)?;
        if !crate::desk::HOLDER_REASONS.contains(&reason) {
            return Err(CaError::InvalidInput(format!("a holder cannot give the reason {}", reason.name())));
        }
        let refused = || CaError::SignatureRefused("wrong or already used authorization code".into());
        self.ca().rate_limit("certificate-code", &serial, self.limits.per_certificate).await?;
        let registry = self.ca().registry();
        let rec = registry.certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        if rec.cert.kind != CertKind::EndEntity || rec.status != CertStatus::Issued {
            return Err(CaError::UnknownSerial(serial));
        }
        if rec.cert.not_after <= self.now().unix_timestamp() {
            return Err(CaError::Conflict(format!("certificate {serial} has expired; it cannot be revoked any more")));
        }
        let order_id = self.order_of(&serial).await?.ok_or_else(refused)?;
        let order = registry.order(&order_id).await?.ok_or_else(refused)?;
        if order.product != Product::Cloud.as_str() || order.totp_enrolled_at.is_none() {
            return Err(refused());
        }
        self.check_code(&order, code, "holder:revocation").await?;
        let invalidity = (reason == crate::crl::Reason::KeyCompromise).then(|| self.now());
        self.ca().revoke(&serial, reason, invalidity, "holder:authorization-code").await
    }

    /// The order behind a certificate, for the language and product of the
    /// holder's renewal page (None for a certificate issued by the CLI).
    pub async fn order_behind(&self, serial: &str) -> Result<Option<crate::store::orders::OrderRow>, CaError> {
        let serial = normalize_serial(serial)?;
        match self.order_of(&serial).await? {
            Some(id) => Ok(self.ca().registry().order(&id).await?),
            None => Ok(None),
        }
    }

    /// The order behind a certificate (directly, or through earlier renewals).
    async fn order_of(&self, serial: &str) -> Result<Option<String>, CaError> {
        let registry = self.ca().registry();
        if let Some(o) = registry.order_by_serial(serial).await? {
            return Ok(Some(o));
        }
        Ok(registry.renewal_producing(serial).await?.and_then(|r| r.order_id))
    }

    async fn insert_renewal(
        &self,
        rec: &CertificateRecord,
        order_id: Option<&str>,
        product: Product,
        years: ValidityYears,
        csr: Option<(&[u8], &str)>,
    ) -> Result<RenewalRow, CaError> {
        let id = hex::encode(crate::desk::random_bytes::<16>());
        let new = NewRenewal {
            id: &id,
            serial: &rec.cert.serial,
            order_id,
            product: product.as_str(),
            years: i64::from(years.get()),
            csr: csr.map(|(c, _)| c),
            csr_key_id: csr.map(|(_, k)| k),
            issue_at: rec.cert.not_after - RENEWAL_LEAD.whole_seconds(),
        };
        let registry = self.ca().registry();
        if !registry.insert_renewal(&new, self.now().unix_timestamp()).await? {
            return Err(CaError::Conflict(format!("a renewal of {} is already ordered", rec.cert.serial)));
        }
        self.audit(
            "holder",
            "renewal.order",
            &rec.cert.serial,
            Outcome::Success,
            format!("renewal={id} years={}", years.get()),
        )
        .await;
        let renewal = registry.renewal(&id).await?.ok_or_else(|| CaError::Internal("renewal vanished".into()))?;
        // Its next step, paying, by mail too.
        self.notify_renewal(&renewal, NoticeKind::RenewalOrdered, |order| {
            vec![
                ("serial", renewal.serial.clone()),
                ("issue_at", rfc3339(renewal.issue_at)),
                ("price", self.payment().price_text(&renewal.product, renewal.years, &order.language)),
                ("payment_url", self.payment().renewal_url(&renewal)),
                ("renewal_url", self.renewal_url(&renewal.serial)),
            ]
        })
        .await?;
        Ok(renewal)
    }

    /// Mail `kind` about renewal `r` to the holder of its order (a
    /// certificate issued by the CLI has no order and no address), once
    /// per renewal and kind; `vars` (given_name comes from the order) may
    /// depend on the order, e.g. its language.
    pub(super) async fn notify_renewal(
        &self,
        r: &RenewalRow,
        kind: NoticeKind,
        vars: impl FnOnce(&crate::store::orders::OrderRow) -> Vec<(&'static str, String)>,
    ) -> Result<(), CaError> {
        let Some(order_id) = r.order_id.as_deref() else { return Ok(()) };
        if let Some(order) = self.ca().registry().order(order_id).await? {
            let vars = vars(&order);
            self.notify(&order, kind, format!("{}:{}", kind.template(), r.id), vars).await;
        }
        Ok(())
    }

    /// The banner data for a certificate.
    pub async fn banner(&self, serial: &str) -> Result<Banner, CaError> {
        let serial = normalize_serial(serial)?;
        let registry = self.ca().registry();
        let rec = registry.certificate(&serial).await?.ok_or_else(|| CaError::UnknownSerial(serial.clone()))?;
        if rec.cert.kind != CertKind::EndEntity || rec.status != CertStatus::Issued {
            return Err(CaError::UnknownSerial(serial));
        }
        let now = self.now().unix_timestamp();
        let not_after = rec.cert.not_after;
        let revoked = registry.revocation(&serial).await?.is_some();
        let valid = !revoked && now < not_after;
        let renewal = registry.renewal_of(&serial).await?;
        let deadline = not_after - RENEWAL_LEAD.whole_seconds();
        // Renewable until the deadline inclusive, as `renewable` decides.
        let orderable = valid && now <= deadline;
        let state = match &renewal {
            Some(r) => r.state.clone(),
            None if !orderable => "not-renewable".into(),
            None => "none".into(),
        };
        Ok(Banner {
            serial,
            not_after,
            window_open: orderable && now >= not_after - FIRST_REMINDER.whole_seconds(),
            deadline,
            state,
            renewal_id: renewal.as_ref().map(|r| r.id.clone()),
            // Never for a certificate that can no longer be renewed: its
            // renewal would be cancelled (and refunded) at the issue day.
            payment_url: renewal
                .as_ref()
                .filter(|r| r.state == "awaiting-payment" && valid)
                .map(|r| self.payment().renewal_url(r)),
            new_serial: renewal.and_then(|r| r.new_serial),
        })
    }

    /// The certificate issued by the renewal of `serial` (its serial and
    /// DER), for the holder's token tool (`qcert enroll fetch`). Public like
    /// the banner: it carries the subject of the certificate it renews,
    /// which whoever knows that serial already holds, and a public key.
    /// [`CaError::Conflict`] while the renewal is not issued yet (its state
    /// says why), [`CaError::UnknownSerial`] without a renewal.
    pub async fn renewed_certificate(&self, serial: &str) -> Result<(String, Vec<u8>), CaError> {
        let banner = self.banner(serial).await?;
        let Some(new_serial) = banner.new_serial else {
            return Err(match banner.renewal_id {
                None => CaError::UnknownSerial(banner.serial),
                Some(_) => CaError::Conflict(format!(
                    "the renewal of {} is not issued yet (state {}); it is issued 3 days before the certificate expires",
                    banner.serial, banner.state
                )),
            });
        };
        let rec = self.ca().registry().certificate(&new_serial).await?;
        match rec.and_then(|r| r.der) {
            Some(der) => Ok((new_serial, der)),
            None => Err(CaError::Conflict(format!("the renewal of {} is being issued; try again", banner.serial))),
        }
    }

    /// Issue every paid renewal due at `now` (up to `limit`): claimed under
    /// a lease, so with several notifiers each is issued once; a crash
    /// after issuance is completed by the next claim (the certificate is
    /// found by what it was issued for, never issued twice).
    pub async fn issue_due_renewals(&self, now: OffsetDateTime, limit: i64) -> Result<RenewalReport, CaError> {
        let registry = self.ca().registry();
        let lease = (now + Duration::minutes(10)).unix_timestamp();
        let claimed = registry.claim_due_renewals(now.unix_timestamp(), lease, limit).await?;
        failpoint("renewal-after-claim");
        // A few at once: HSM signing, CSR checks and database commits overlap.
        let outcomes: Vec<(String, Result<bool, CaError>)> = futures_util::stream::iter(claimed)
            .map(|r| async move {
                let outcome = self.issue_renewal(&r, now).await;
                (r.id, outcome)
            })
            .buffer_unordered(RENEWAL_CONCURRENCY)
            .collect()
            .await;
        let mut report = RenewalReport::default();
        for (id, outcome) in outcomes {
            match outcome {
                Ok(true) => report.issued += 1,
                Ok(false) => report.cancelled += 1,
                Err(e) => {
                    tracing::error!(renewal = %id, error = %e, "renewal issuance failed; retried at the next tick");
                    registry.end_renewal_claim(&id, "paid", now.unix_timestamp()).await?;
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Ok(true): issued (or completed); Ok(false): cancelled.
    async fn issue_renewal(&self, r: &RenewalRow, now: OffsetDateTime) -> Result<bool, CaError> {
        let registry = self.ca().registry();
        let issued_for = format!("renewal:{}", r.id);
        let old = registry.certificate(&r.serial).await?.ok_or_else(|| CaError::UnknownSerial(r.serial.clone()))?;
        let new_serial = match registry.certificate_issued_for(&issued_for).await? {
            Some((serial, status)) if status == "issued" => serial,
            Some((serial, _)) => {
                // Reserved by an attempt that died before signing completed:
                // its DER never left that process. Burn the serial, issue anew.
                registry.mark_aborted(&serial, now.unix_timestamp()).await?;
                return Err(CaError::Internal(format!("an earlier attempt left {serial} reserved; retrying")));
            }
            None => {
                if registry.revocation(&r.serial).await?.is_some() || old.cert.not_after <= now.unix_timestamp() {
                    registry.end_renewal_claim(&r.id, "cancelled", now.unix_timestamp()).await?;
                    // It was paid (only paid renewals are claimed): the money goes back.
                    let refunds = registry.flag_renewal_refund(&r.id).await?;
                    self.audit(
                        "notifier",
                        "renewal.cancel",
                        &r.serial,
                        Outcome::Refused,
                        format!(
                            "renewal={}: the current certificate is revoked or expired; payments flagged for refund={refunds}",
                            r.id
                        ),
                    )
                    .await;
                    self.notify_renewal(r, NoticeKind::RenewalCancelled, |_| {
                        vec![("serial", r.serial.clone()), ("order_form_url", format!("{}/order", self.base()))]
                    })
                    .await?;
                    return Ok(false);
                }
                let c = &old.cert;
                let holder = Holder::parse(
                    c.given_name.as_deref().unwrap_or_default(),
                    c.surname.as_deref().unwrap_or_default(),
                    c.email.as_deref().unwrap_or_default(),
                    c.country.as_deref().unwrap_or_default(),
                    c.semantics_id.as_deref().unwrap_or_default(),
                )?;
                let key = match (r.product.as_str(), &r.csr) {
                    ("token", Some(csr)) => KeySource::Csr(csr.clone()),
                    _ => KeySource::Hsm,
                };
                let years = ValidityYears::new(u32::try_from(r.years).unwrap_or(0))?;
                let not_before = OffsetDateTime::from_unix_timestamp(c.not_after - RENEWAL_LEAD.whole_seconds())
                    .map_err(CaError::encoding)?;
                let options = IssueOptions { not_before: Some(not_before), issued_for: Some(issued_for.clone()) };
                self.ca().issue_with(PROFILE, &holder, years, key, &options).await?.serial
            }
        };
        failpoint("renewal-after-issue");
        registry.copy_credential(&r.serial, &new_serial, now.unix_timestamp()).await?;
        if registry.published(&r.serial).await?.is_some() {
            self.ca().publish(&new_serial).await?;
        }
        if !registry.finish_renewal(&r.id, &new_serial, now.unix_timestamp()).await? {
            return Ok(true); // another notifier completed it meanwhile
        }
        self.audit(
            "notifier",
            "renewal.issue",
            &new_serial,
            Outcome::Success,
            format!("renewal={} of {}", r.id, r.serial),
        )
        .await;
        let rec = registry.certificate(&new_serial).await?.ok_or_else(|| CaError::UnknownSerial(new_serial.clone()))?;
        let to = rec.cert.email.clone().unwrap_or_default();
        // A link the holder holds: the order's capability link (the
        // directory serves only certificates whose holder agreed).
        let certificate_url = match &r.order_id {
            Some(order) => format!("{}/certificate?serial={new_serial}", self.order_url(order)?),
            None => format!("{}/certs/{new_serial}.pem", self.base),
        };
        let notice = crate::notice::Notice {
            dedupe_key: format!("certificate-issued:{new_serial}"),
            kind: NoticeKind::CertificateIssued,
            to,
            language: self.language_of(r).await,
            vars: vec![
                ("given_name", rec.cert.given_name.clone().unwrap_or_default()),
                ("serial", new_serial.clone()),
                ("not_after", rfc3339(rec.cert.not_after)),
                ("certificate_url", certificate_url),
            ],
        };
        if let Err(e) = self.notices.send(notice).await {
            tracing::error!(serial = %new_serial, error = %e, "could not queue the renewal mail");
        }
        Ok(true)
    }

    async fn language_of(&self, r: &RenewalRow) -> String {
        match &r.order_id {
            Some(id) => self.ca().registry().order(id).await.ok().flatten().map_or_else(|| "en".into(), |o| o.language),
            None => "en".into(),
        }
    }

    /// The renewal page of a certificate (in reminder mails).
    pub fn renewal_url(&self, serial: &str) -> String {
        format!("{}/api/v1/certificates/{serial}/renewal", self.base)
    }
}
