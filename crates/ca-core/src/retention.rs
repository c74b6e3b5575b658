//! Personal data (DOMAIN.md "Retention", issue 18): how long each record
//! class is kept, the purge the notifier's tick runs, and the holder's
//! rights of access and portability (GDPR Art. 15, 20) and erasure
//! (Art. 17, with restriction, Art. 18, where a duty keeps the data).
//!
//! Classes and where their clock starts:
//! - registration records (the order's identity data and document HMAC,
//!   who validated, the holder's choices) and a certificate's personal data
//!   (names, email, subject, DER) and revocation credential: the clock
//!   starts when the last certificate based on them ceases to be valid
//!   (notAfter, or the revocation if earlier; a renewal extends its
//!   predecessor's), `registration_years` later they are erased;
//! - orders and payment events (with renewals and theirs): the clock starts
//!   at the end of the financial year (calendar year, UTC) of the last
//!   payment, `financial_years` later they are deleted, but never before
//!   the registration data they hold;
//! - unpaid orders (`Orders::expire_unpaid`, at exactly the TTL) and sent mail rows (the
//!   notifier's purge) have their own settings;
//! - expired login and signing credentials (desk sessions and enrolment
//!   links, CSC sessions and SADs) go in every tick, at their expiry.
//!
//! Never purged: revocations and a certificate's status facts (serial,
//! issuer, status, validity), so OCSP and CRLs answer while the CA exists
//! (eIDAS Art. 24(4)); the audit log (the hash chain), whose entries name
//! serials and order ids only, with free text outside the hash (`audit`).
//! Each purge step is audited with its class and count, never a person.

use serde::Serialize;
use time::{Date, Month, OffsetDateTime, Time};

use crate::audit::{self, Event, Outcome};
use crate::clock::rfc3339;
use crate::desk::DocumentNumber;
use crate::error::CaError;
use crate::operators::{Operator, Role};
use crate::orders::Orders;
use crate::store::retention::OrderBlock;

/// Retention periods (`[retention]` in qcert.toml) and the purge's pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Years after the last certificate based on a registration ceases to
    /// be valid (EN 319 411-1 OVR-6.4.6-01: at least 7; Romanian rules: 10).
    pub registration_years: u32,
    /// Years after the end of the financial year of the last payment
    /// (accounting law: 10).
    pub financial_years: u32,
    /// Days a sent mail row is kept (`notifier.keep_sent_mail_days`), for the export's text.
    pub sent_mail_days: u32,
    /// Rows looked at per statement.
    pub batch: i64,
    /// Batches per class and tick (the rest waits for the next tick).
    pub batches_per_tick: u32,
}

/// The least `registration_years` allowed (EN 319 411-1 OVR-6.4.6-01).
pub const MIN_REGISTRATION_YEARS: u32 = 7;

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy {
            registration_years: 10,
            financial_years: 10,
            sent_mail_days: 30,
            batch: 1000,
            batches_per_tick: 10,
        }
    }
}

/// `t` moved by whole calendar years (29 February becomes 28 February).
fn shift_years(t: OffsetDateTime, years: i64) -> OffsetDateTime {
    let y = i32::try_from(i64::from(t.year()) + years).unwrap_or(if years < 0 { -9999 } else { 9999 });
    t.replace_year(y).or_else(|_| (t - time::Duration::days(1)).replace_year(y)).unwrap_or(t)
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn new_year(year: i32) -> i64 {
    Date::from_calendar_date(year, Month::January, 1)
        .map(|d| d.with_time(Time::MIDNIGHT).assume_utc().unix_timestamp())
        .unwrap_or(0)
}

impl RetentionPolicy {
    /// Registration records whose clock started at or before this are due at `now`.
    pub fn registration_cutoff(&self, now: OffsetDateTime) -> i64 {
        shift_years(now, -i64::from(self.registration_years)).unix_timestamp()
    }

    /// When registration records whose clock started at `from` are erased.
    pub fn registration_end(&self, from: i64) -> i64 {
        shift_years(at(from), i64::from(self.registration_years)).unix_timestamp()
    }

    /// Orders whose last payment was before this are due at `now`: paid in
    /// year Y, due from 1 January of Y + 1 + `financial_years`.
    pub fn financial_cutoff(&self, now: OffsetDateTime) -> i64 {
        let y = i32::try_from(i64::from(now.year()) - i64::from(self.financial_years)).unwrap_or(-9999);
        new_year(y)
    }

    /// When an order last paid at `paid_at` is deleted.
    pub fn financial_end(&self, paid_at: i64) -> i64 {
        let y = i64::from(at(paid_at).year()) + 1 + i64::from(self.financial_years);
        new_year(i32::try_from(y).unwrap_or(9999))
    }
}

/// What one purge did, per class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Certificates whose personal data (and registration records) were erased.
    pub registration_erased: u64,
    /// Certificates whose clock was moved to a renewal's (kept longer).
    pub registration_deferred: u64,
    /// Orders deleted with their payment events and renewals.
    pub orders_deleted: u64,
    /// Orders kept for a certificate's registration data.
    pub orders_held: u64,
    /// Expired sessions, enrolment links and SADs deleted
    /// (`Registry::purge_expired_credentials`; not audited: routine, no person).
    pub credentials_expired: u64,
}

/// The role an actor acted in; never an operator's name (GDPR: other
/// people's data).
pub fn actor_role(actor: &str) -> String {
    let head = actor.split(':').next().unwrap_or("");
    match head {
        "holder" | "ca" | "notifier" | "payment-provider" => head.to_owned(),
        r if Role::parse(r).is_ok() => r.to_owned(),
        _ => "operator".to_owned(),
    }
}

/// One category of the export: what, why, on what basis, to whom, how long.
#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub category: &'static str,
    pub purpose: &'static str,
    pub legal_basis: &'static str,
    pub recipients: &'static str,
    pub retention: String,
    pub source: &'static str,
}

/// The holder's data as given on an order form.
#[derive(Debug, Clone, Serialize)]
pub struct ExportHolder {
    pub order_id: String,
    pub given_name: String,
    pub surname: String,
    pub email: String,
    pub country: String,
    pub national_id: String,
    pub phone: Option<String>,
    pub id_document_type: Option<String>,
    /// The ID document number itself is not stored, only a keyed hash.
    pub id_document_number_stored: &'static str,
    pub language: String,
    pub listed_in_directory: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportPayment {
    pub event_id: String,
    pub received_at: String,
    pub payment_ref: Option<String>,
    pub refund_due: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportRenewal {
    pub id: String,
    pub of_certificate: String,
    pub years: i64,
    pub state: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    pub new_certificate: Option<String>,
    pub payment_events: Vec<ExportPayment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportOrder {
    pub id: String,
    pub product: String,
    pub years: i64,
    pub state: String,
    pub created_at: String,
    pub paid_at: Option<String>,
    /// The role of who decided on the identity, never a name.
    pub decided_by: Option<String>,
    pub rejection_reason: Option<String>,
    pub payment_events: Vec<ExportPayment>,
    pub renewals: Vec<ExportRenewal>,
    pub restricted: bool,
    pub retained_until: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportRevocation {
    pub reason: String,
    pub revoked_at: String,
    pub invalidity_date: Option<String>,
    /// The channel's role (`hotline-agent`, `ra-officer`, `holder`...).
    pub requested_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportCertificate {
    pub serial: String,
    pub status: String,
    pub subject: String,
    pub not_before: String,
    pub not_after: String,
    pub pem: Option<String>,
    pub listed_in_directory: bool,
    pub restricted: bool,
    pub revocation: Option<ExportRevocation>,
    pub retained_until: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportAuditEvent {
    pub seq: i64,
    pub at: String,
    /// The role, never an operator's name.
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    pub personal: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportMail {
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub created_at: String,
    pub sent_at: Option<String>,
    /// Bodies carry one-time links: sealed until sent, then erased.
    pub body: &'static str,
}

/// Everything qcert holds about one holder (GDPR Art. 15, 20).
#[derive(Debug, Clone, Serialize)]
pub struct HolderExport {
    pub generated_at: String,
    pub controller_note: &'static str,
    pub holder: Vec<ExportHolder>,
    pub orders: Vec<ExportOrder>,
    pub certificates: Vec<ExportCertificate>,
    pub audit_events: Vec<ExportAuditEvent>,
    pub mails: Vec<ExportMail>,
    pub categories: Vec<Category>,
}

/// A legal exception to erasure (GDPR Art. 17(3)).
#[derive(Debug, Clone, Serialize)]
pub struct ErasureException {
    pub records: &'static str,
    pub count: u64,
    pub articles: Vec<&'static str>,
    pub duty: &'static str,
    /// Kept until then (absent: while the CA exists).
    pub until: Option<String>,
}

/// The answer to an erasure request.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureReport {
    pub deleted_unpaid_orders: u64,
    pub deleted_sent_mails: u64,
    pub restricted_orders: u64,
    pub restricted_certificates: u64,
    /// Why the rest stays (restricted: GDPR Art. 18).
    pub exceptions: Vec<ErasureException>,
}

/// What the holder's document number leads to.
struct Found {
    orders: Vec<crate::store::orders::OrderRow>,
    serials: Vec<String>,
}

impl Orders {
    /// One purge step (the notifier's tick): the registration records and
    /// certificates' personal data, then orders, each in batches over an
    /// index, each audited with its class and count.
    pub async fn purge_expired_records(&self, now: OffsetDateTime) -> Result<PurgeReport, CaError> {
        let policy = self.retention();
        let registry = self.ca().registry();
        let stamp = now.unix_timestamp();
        let mut report = PurgeReport::default();
        let cutoff = policy.registration_cutoff(now);
        for _ in 0..policy.batches_per_tick {
            let due = registry.retention_due_certificates(cutoff, policy.batch).await?;
            let (mut defer, mut erase, mut waiting) = (Vec::new(), Vec::new(), false);
            for c in &due {
                match c.successor_from {
                    // A renewal based on the same registration is kept: this
                    // one's clock starts with the renewal's.
                    Some(from) if from > c.retention_from => {
                        // Still due (the renewal is too): erased after it, in the next batch.
                        waiting |= from <= cutoff;
                        defer.push((c.serial.clone(), from));
                    }
                    // The renewal is due too: it goes first, this one in the next batch.
                    Some(_) => waiting = true,
                    None => {
                        let order = c.issued_for.as_deref().and_then(|f| f.strip_prefix("order:"));
                        erase.push((c.serial.clone(), order.map(str::to_owned)));
                    }
                }
            }
            let erased = registry.apply_registration_purge(&defer, &erase, stamp).await?;
            report.registration_erased += erased;
            report.registration_deferred += defer.len() as u64;
            let full = i64::try_from(due.len()).unwrap_or(0) >= policy.batch;
            if !(full || waiting) || erased == 0 && defer.is_empty() {
                break;
            }
        }
        report.credentials_expired = registry.purge_expired_credentials(stamp).await?;
        let paid_before = policy.financial_cutoff(now);
        for _ in 0..policy.batches_per_tick {
            let due = registry.retention_due_orders(paid_before, policy.batch).await?;
            let mut progress = 0;
            for id in &due {
                match registry.order_retention_block(id, paid_before).await? {
                    Some(OrderBlock::Certificate) => {
                        registry.hold_order(id).await?;
                        report.orders_held += 1;
                        progress += 1;
                    }
                    Some(OrderBlock::Payment) => {}
                    None => {
                        if registry.delete_order_records(id).await? {
                            report.orders_deleted += 1;
                            progress += 1;
                        }
                    }
                }
            }
            if i64::try_from(due.len()).unwrap_or(0) < policy.batch || progress == 0 {
                break;
            }
        }
        for (subject, n, detail) in [
            (
                "registration-records",
                report.registration_erased,
                format!(
                    "erased={} {} years after the last certificate ceased to be valid",
                    report.registration_erased, policy.registration_years
                ),
            ),
            (
                "orders",
                report.orders_deleted,
                format!(
                    "deleted={} {} years after the end of the financial year",
                    report.orders_deleted, policy.financial_years
                ),
            ),
        ] {
            if n > 0 {
                let e =
                    Event { actor: "notifier", action: "retention.purge", subject, outcome: Outcome::Success, detail };
                audit::record(registry, stamp, &e).await;
            }
        }
        Ok(report)
    }

    async fn find_holder(&self, document: &DocumentNumber) -> Result<Found, CaError> {
        let registry = self.ca().registry();
        let key = self.desk().lookup_key().lookup_key(document)?;
        let orders = registry.orders_by_document(&key).await?;
        let mut serials = registry.serials_by_document(&key).await?;
        for o in &orders {
            serials.extend(registry.serials_issued_for(&format!("order:{}", o.id)).await?);
            for r in registry.renewals_of(Some(&o.id), None).await? {
                serials.extend(r.new_serial);
            }
        }
        serials.sort();
        serials.dedup();
        Ok(Found { orders, serials })
    }

    /// Everything about the holder of `document` (GDPR Art. 15, 20), for an
    /// RA officer who checked the holder's identity. Operators appear by
    /// role only. Audited (counts, no person).
    pub async fn export_holder(&self, officer: &Operator, document: &DocumentNumber) -> Result<HolderExport, CaError> {
        officer.require(Role::RaOfficer)?;
        let registry = self.ca().registry();
        let policy = self.retention();
        let found = self.find_holder(document).await?;
        if found.orders.is_empty() && found.serials.is_empty() {
            return Err(CaError::NotFound("no records for this document number".into()));
        }
        let mut subjects: Vec<String> = Vec::new();
        let mut emails: Vec<String> = Vec::new();
        let mut holder = Vec::new();
        let mut orders = Vec::new();
        for o in &found.orders {
            subjects.push(o.id.clone());
            emails.push(o.email.clone());
            holder.push(ExportHolder {
                order_id: o.id.clone(),
                given_name: o.given_name.clone(),
                surname: o.surname.clone(),
                email: o.email.clone(),
                country: o.country.clone(),
                national_id: o.semantics_id.clone(),
                phone: o.phone.clone(),
                id_document_type: o.document_type.clone(),
                id_document_number_stored: "no: only a keyed hash (HMAC-SHA-256) to find these records",
                language: o.language.clone(),
                listed_in_directory: o.publish,
            });
            let payment_events = registry.payment_events_of(&o.id).await?.into_iter().map(payment).collect();
            let mut renewals = Vec::new();
            let mut last_paid = o.paid_at;
            for r in registry.renewals_of(Some(&o.id), None).await? {
                subjects.push(r.id.clone());
                last_paid = last_paid.max(r.paid_at);
                let events = registry.renewal_payment_events_of(&r.id).await?.into_iter().map(payment).collect();
                renewals.push(ExportRenewal {
                    id: r.id,
                    of_certificate: r.serial,
                    years: r.years,
                    state: r.state,
                    created_at: rfc3339(r.created_at),
                    paid_at: r.paid_at.map(rfc3339),
                    new_certificate: r.new_serial,
                    payment_events: events,
                });
            }
            let restricted = registry.order_restricted_at(&o.id).await?.is_some();
            orders.push(ExportOrder {
                id: o.id.clone(),
                product: o.product.clone(),
                years: o.years,
                state: o.state.clone(),
                created_at: rfc3339(o.created_at),
                paid_at: o.paid_at.map(rfc3339),
                decided_by: o.decided_by.as_deref().map(actor_role),
                rejection_reason: o.rejection_reason.clone(),
                payment_events,
                renewals,
                restricted,
                retained_until: match last_paid {
                    Some(p) => format!(
                        "{} at the earliest, and not before the registration records of its certificates",
                        rfc3339(policy.financial_end(p))
                    ),
                    None => "deleted when unpaid past the order form's expiry".into(),
                },
            });
        }
        let mut certificates = Vec::new();
        for serial in &found.serials {
            let Some(c) = registry.holder_certificate(serial).await? else { continue };
            subjects.push(serial.clone());
            emails.extend(c.record.cert.email.clone());
            let revocation = registry.revocation(serial).await?.map(|r| ExportRevocation {
                reason: crate::Reason::from_code(r.reason).map_or("unknown", |x| x.name()).to_owned(),
                revoked_at: rfc3339(r.revoked_at),
                invalidity_date: r.invalidity_date.map(rfc3339),
                requested_by: actor_role(&r.requested_by),
            });
            certificates.push(ExportCertificate {
                serial: serial.clone(),
                status: c.record.status.as_str().to_owned(),
                subject: c.record.cert.subject_dn.clone(),
                not_before: rfc3339(c.record.cert.not_before),
                not_after: rfc3339(c.record.cert.not_after),
                pem: c.record.der.as_deref().filter(|d| !d.is_empty()).map(|d| crate::ca::pem("CERTIFICATE", d)),
                listed_in_directory: c.published,
                restricted: c.restricted_at.is_some(),
                revocation,
                retained_until: c.retention_from.map(|f| rfc3339(policy.registration_end(f))),
            });
        }
        let mut audit_events = Vec::new();
        subjects.sort();
        subjects.dedup();
        for s in &subjects {
            for a in registry.audit_of(s).await? {
                audit_events.push(ExportAuditEvent {
                    seq: a.seq,
                    at: rfc3339(a.at),
                    actor: actor_role(&a.actor),
                    action: a.action,
                    subject: a.subject,
                    outcome: a.outcome,
                    detail: a.detail,
                    personal: a.personal,
                });
            }
        }
        audit_events.sort_by_key(|a| a.seq);
        emails.sort();
        emails.dedup();
        let mut mails = Vec::new();
        for e in &emails {
            for m in registry.mails_to(e).await? {
                mails.push(ExportMail {
                    kind: m.kind,
                    recipient: m.recipient,
                    subject: m.subject,
                    created_at: rfc3339(m.created_at),
                    sent_at: m.sent_at.map(rfc3339),
                    body: "not kept: sealed until sent, erased when sent",
                });
            }
        }
        let now = self.ca().clock().now().unix_timestamp();
        let detail = format!("orders={} certificates={}", orders.len(), certificates.len());
        let actor = officer.actor();
        let e = Event { actor: &actor, action: "holder.export", subject: "holder", outcome: Outcome::Success, detail };
        audit::record(registry, now, &e).await;
        Ok(HolderExport {
            generated_at: rfc3339(now),
            controller_note: "GDPR Art. 15 and 20: all data qcert holds about the holder of this ID document; \
                              operators appear by role only",
            holder,
            orders,
            certificates,
            audit_events,
            mails,
            categories: categories(&policy, self.form_limits().unpaid_ttl.whole_hours()),
        })
    }

    /// Erase what no duty keeps and restrict the rest (GDPR Art. 17, 18)
    /// for the holder of `document`; the answer names the exceptions.
    /// Revocations and certificates' status are kept (eIDAS Art. 24(4)).
    pub async fn erase_holder(&self, officer: &Operator, document: &DocumentNumber) -> Result<ErasureReport, CaError> {
        officer.require(Role::RaOfficer)?;
        let registry = self.ca().registry();
        let policy = self.retention();
        let found = self.find_holder(document).await?;
        if found.orders.is_empty() && found.serials.is_empty() {
            return Err(CaError::NotFound("no records for this document number".into()));
        }
        let now = self.ca().clock().now().unix_timestamp();
        let mut report = ErasureReport {
            deleted_unpaid_orders: 0,
            deleted_sent_mails: 0,
            restricted_orders: 0,
            restricted_certificates: 0,
            exceptions: Vec::new(),
        };
        let mut emails = Vec::new();
        let mut financial_until: Option<i64> = None;
        let mut refunds = 0u64;
        for o in &found.orders {
            emails.push(o.email.clone());
            if o.state == "awaiting-payment" && registry.payment_events_of(&o.id).await?.is_empty() {
                if registry.delete_unpaid_order(&o.id).await? {
                    report.deleted_unpaid_orders += 1;
                }
                continue;
            }
            registry.restrict_order(&o.id, now).await?;
            report.restricted_orders += 1;
            let mut last = o.paid_at;
            for r in registry.renewals_of(Some(&o.id), None).await? {
                last = last.max(r.paid_at);
                refunds +=
                    registry.renewal_payment_events_of(&r.id).await?.iter().filter(|e| e.refund_due).count() as u64;
            }
            refunds += registry.payment_events_of(&o.id).await?.iter().filter(|e| e.refund_due).count() as u64;
            if let Some(p) = last {
                financial_until = financial_until.max(Some(policy.financial_end(p)));
            }
        }
        let mut registration_until: Option<i64> = None;
        let mut revoked = 0u64;
        for serial in &found.serials {
            let Some(c) = registry.holder_certificate(serial).await? else { continue };
            if c.erased_at.is_some() {
                continue;
            }
            emails.extend(c.record.cert.email.clone());
            registry.restrict_certificate(serial, now).await?;
            report.restricted_certificates += 1;
            if let Some(f) = c.retention_from {
                registration_until = registration_until.max(Some(policy.registration_end(f)));
            }
            if registry.revocation(serial).await?.is_some() {
                revoked += 1;
            }
        }
        emails.sort();
        emails.dedup();
        for e in &emails {
            report.deleted_sent_mails += registry.delete_sent_mail_to(e).await?;
        }
        if report.restricted_certificates > 0 {
            report.exceptions.push(ErasureException {
                records: "registration records (identity data, ID document HMAC, validation, agreements), \
                          certificates and their lifecycle log",
                count: report.restricted_certificates,
                articles: vec!["GDPR Art. 17(3)(b)", "GDPR Art. 17(3)(e)"],
                duty: "eIDAS Art. 24(2)(h) (evidence in legal proceedings), EN 319 411-1 OVR-6.4.6-01, \
                       Romanian rules for qualified-certificate records",
                until: registration_until.map(rfc3339),
            });
            report.exceptions.push(ErasureException {
                records: "revocation status of the certificates (serial, validity, revocation)",
                count: report.restricted_certificates.max(revoked),
                articles: vec!["GDPR Art. 17(3)(b)"],
                duty: "eIDAS Art. 24(4): status information stays available after expiry",
                until: None,
            });
        }
        if report.restricted_orders > 0 {
            report.exceptions.push(ErasureException {
                records: "orders and payment events",
                count: report.restricted_orders,
                articles: vec!["GDPR Art. 17(3)(b)"],
                duty: "accounting law: 10 years from the end of the financial year",
                until: financial_until.map(rfc3339),
            });
        }
        if refunds > 0 {
            report.exceptions.push(ErasureException {
                records: "payment events with a refund due",
                count: refunds,
                articles: vec!["GDPR Art. 17(3)(e)"],
                duty: "establishment, exercise or defence of legal claims (an open refund)",
                until: financial_until.map(rfc3339),
            });
        }
        let detail = format!(
            "deleted unpaid_orders={} sent_mails={}; restricted orders={} certificates={}",
            report.deleted_unpaid_orders,
            report.deleted_sent_mails,
            report.restricted_orders,
            report.restricted_certificates
        );
        let actor = officer.actor();
        let e = Event { actor: &actor, action: "holder.erasure", subject: "holder", outcome: Outcome::Success, detail };
        audit::record(registry, now, &e).await;
        Ok(report)
    }
}

fn payment(e: crate::store::retention::PaymentEventRow) -> ExportPayment {
    ExportPayment {
        event_id: e.event_id,
        received_at: rfc3339(e.received_at),
        payment_ref: e.payment_ref,
        refund_due: e.refund_due,
    }
}

/// Per category: purpose, legal basis, recipients, retention, source (Art. 15(1)).
pub fn categories(p: &RetentionPolicy, unpaid_hours: i64) -> Vec<Category> {
    let registration = format!(
        "{} years after the last certificate based on them ceases to be valid (EN 319 411-1 OVR-6.4.6-01: at least 7)",
        p.registration_years
    );
    vec![
        Category {
            category: "holder data and registration records",
            purpose: "identity validation and issuance of qualified certificates",
            legal_basis: "GDPR Art. 6(1)(b) contract; Art. 6(1)(c) legal obligation (eIDAS Art. 24(1), 24(2)(h))",
            recipients:
                "RA officers of the trust service provider; conformity assessment and supervisory bodies on request",
            retention: registration.clone(),
            source: "the holder (order form) and the RA officer's identity validation",
        },
        Category {
            category: "certificates and revocations",
            purpose: "qualified electronic signatures; certificate status for relying parties",
            legal_basis: "GDPR Art. 6(1)(b) contract; Art. 6(1)(c) (eIDAS Art. 24(2), 24(4))",
            recipients: "relying parties (the certificate, when the holder signs or it is listed in the public \
                         directory); the revocation status is public (CRL, OCSP)",
            retention: format!(
                "personal data: {registration}; revocation status: while the CA exists (eIDAS Art. 24(4))"
            ),
            source: "the holder's order and the CA",
        },
        Category {
            category: "orders and payment events",
            purpose: "the contract and its accounting",
            legal_basis: "GDPR Art. 6(1)(b) contract; Art. 6(1)(c) accounting law",
            recipients: "the payment provider; tax authorities on request",
            retention: format!(
                "{} years from the end of the financial year of payment; unpaid orders {unpaid_hours} hours",
                p.financial_years
            ),
            source: "the holder and the payment provider",
        },
        Category {
            category: "audit events",
            purpose: "evidence of the certificate lifecycle and of operators' actions",
            legal_basis: "GDPR Art. 6(1)(c) (eIDAS Art. 24(2)(h), EN 319 401 REQ-7.10)",
            recipients: "auditors and the supervisory body",
            retention: format!(
                "the log is kept while the CA exists and names serials and order ids only; free text about the \
                 holder is erased with the registration records ({registration})"
            ),
            source: "qcert",
        },
        Category {
            category: "mails",
            purpose: "telling the holder about orders, secrets, renewal and revocation",
            legal_basis: "GDPR Art. 6(1)(b) contract",
            recipients: "the holder's mail provider and the mail relay",
            retention: format!("bodies erased when sent; the row {} days after sending", p.sent_mail_days),
            source: "qcert",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn clocks_start_where_the_rules_say() {
        let p = RetentionPolicy::default();
        let paid = datetime!(2020-06-01 10:00 UTC).unix_timestamp();
        assert_eq!(p.financial_end(paid), datetime!(2031-01-01 0:00 UTC).unix_timestamp());
        // Due exactly then, not a second before.
        assert!(paid < p.financial_cutoff(datetime!(2031-01-01 0:00 UTC)));
        assert!(paid >= p.financial_cutoff(datetime!(2030-12-31 23:59:59 UTC)));
        let ceased = datetime!(2021-03-05 12:00 UTC).unix_timestamp();
        assert_eq!(p.registration_end(ceased), datetime!(2031-03-05 12:00 UTC).unix_timestamp());
        assert!(ceased <= p.registration_cutoff(datetime!(2031-03-05 12:00 UTC)));
        assert!(ceased > p.registration_cutoff(datetime!(2031-03-05 11:59:59 UTC)));
    }

    #[test]
    fn operators_appear_by_role_only() {
        assert_eq!(actor_role("ra-officer:radu"), "ra-officer");
        assert_eq!(actor_role("hotline-agent:anna"), "hotline-agent");
        assert_eq!(actor_role("holder:signed-request"), "holder");
        assert_eq!(actor_role("operator:alice"), "operator");
        assert_eq!(actor_role("cli:bob"), "operator");
        assert_eq!(actor_role("payment-provider"), "payment-provider");
    }
}
