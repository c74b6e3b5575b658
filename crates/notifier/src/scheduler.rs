//! The notifier's tick (DOMAIN.md "Renewal"): renewal reminders 45 and 15
//! days before notAfter, and issuance of paid renewals 3 days before;
//! unpaid orders past their expiry are deleted, and so are sent mail rows,
//! registration records and orders past their retention
//! (`qcert_ca_core::retention`).
//!
//! Exactly once, also with several notifier processes and across crashes:
//! a reminder's outbox row (unique dedupe key `reminder-45:<serial>` /
//! `reminder-15:<serial>`) and the certificate's reminder stage are
//! written in one transaction before anything is sent; the outbox then
//! delivers with retries. Renewals are claimed under a lease and issued
//! for `renewal:<id>`, which the registry lets exist once.
//!
//! Catching up after downtime is the same query: whatever fell due is
//! done; the 45-day mail is skipped when the 15-day one is already due.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use qcert_ca_core::orders::{Orders, RenewalReport, FIRST_REMINDER, RENEWAL_LEAD, SECOND_REMINDER};
use qcert_ca_core::store::outbox::NewOutboxMail;
use qcert_ca_core::store::renewals::{ReminderCandidate, ReminderDecision};
use qcert_ca_core::{CaError, Clock};
use time::OffsetDateTime;

use crate::template::{long_date, render, Language, Template};
use crate::MailError;

/// Certificates handled per query page.
pub const PAGE: i64 = 2000;

/// Sent mail rows deleted per statement by the purge.
pub const PURGE_BATCH: i64 = 1000;

/// How long sent mail (metadata only: recipient, kind, subject, times) is
/// kept by default (`notifier.keep_sent_mail_days`).
pub const DEFAULT_SENT_MAIL_RETENTION: time::Duration = time::Duration::days(30);

/// Reminder stages (see migration 0008).
const STAGE_45_DONE: i64 = 1;
const STAGE_15_DONE: i64 = 2;
const STAGE_NEVER: i64 = 3;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub reminders_45: u64,
    pub reminders_15: u64,
    /// Certificates that got no reminder: revoked, or renewal already ordered.
    pub skipped: u64,
    pub renewals: RenewalReport,
    /// Order issuances a crash had interrupted, completed.
    pub orders_recovered: u32,
    /// Orders left unpaid past `orders.unpaid_expiry_hours`, deleted.
    pub orders_expired: u64,
    /// Sent mail rows deleted after the retention period.
    pub mails_purged: u64,
    /// Registration records and orders past their retention (`[retention]`).
    pub retention: qcert_ca_core::retention::PurgeReport,
}

/// Errors of a tick.
#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("schedule: {0}")]
    Schedule(String),
}

/// The notifier.
#[derive(Debug, Clone)]
pub struct Notifier {
    orders: Orders,
    keep_sent_mail: time::Duration,
}

impl Notifier {
    pub fn new(orders: Orders) -> Notifier {
        Notifier { orders, keep_sent_mail: DEFAULT_SENT_MAIL_RETENTION }
    }

    /// Sent mail is deleted once it was sent `keep` ago (at least 0).
    pub fn with_sent_mail_retention(mut self, keep: time::Duration) -> Notifier {
        self.keep_sent_mail = keep.max(time::Duration::ZERO);
        self
    }

    /// Delete the rows of mail sent at or before `now - retention`, a batch
    /// at a time.
    pub async fn purge_sent_mail(&self, now: OffsetDateTime) -> Result<u64, TickError> {
        let registry = self.orders.ca().registry();
        let before = (now - self.keep_sent_mail).unix_timestamp();
        let mut purged = 0;
        loop {
            let n = registry.outbox_purge_sent(before, PURGE_BATCH).await.map_err(CaError::from)?;
            purged += n;
            if n < u64::try_from(PURGE_BATCH).unwrap_or(u64::MAX) {
                if purged > 0 {
                    let e = qcert_ca_core::audit::Event {
                        actor: "notifier",
                        action: "retention.purge",
                        subject: "sent-mail",
                        outcome: qcert_ca_core::audit::Outcome::Success,
                        detail: format!("deleted={purged} sent {} days ago or more", self.keep_sent_mail.whole_days()),
                    };
                    qcert_ca_core::audit::record(registry, now.unix_timestamp(), &e).await;
                }
                return Ok(purged);
            }
        }
    }

    /// One pass at `now`.
    pub async fn tick(&self, now: OffsetDateTime) -> Result<TickReport, TickError> {
        let mut report = TickReport::default();
        // The 15-day pass first: a certificate it reaches needs no 45-day mail any more.
        self.reminders(now, &[0, STAGE_45_DONE], SECOND_REMINDER, &mut report).await?;
        self.reminders(now, &[0], FIRST_REMINDER, &mut report).await?;
        report.orders_recovered = self.orders.recover_stalled(now).await?;
        report.orders_expired = self.orders.expire_unpaid(now).await?;
        report.mails_purged = self.purge_sent_mail(now).await?;
        report.retention = self.orders.purge_expired_records(now).await?;
        loop {
            let r = self.orders.issue_due_renewals(now, PAGE).await?;
            let done = r.issued + r.cancelled + r.failed;
            report.renewals.issued += r.issued;
            report.renewals.cancelled += r.cancelled;
            report.renewals.failed += r.failed;
            if i64::from(done) < PAGE || r.failed > 0 {
                break;
            }
        }
        Ok(report)
    }

    async fn reminders(
        &self,
        now: OffsetDateTime,
        stages: &[i64],
        horizon: time::Duration,
        report: &mut TickReport,
    ) -> Result<(), TickError> {
        let registry = self.orders.ca().registry();
        let second = horizon == SECOND_REMINDER;
        loop {
            let page = registry
                .reminder_candidates(stages, now.unix_timestamp(), horizon.whole_seconds(), PAGE)
                .await
                .map_err(CaError::from)?;
            let mut decisions = Vec::with_capacity(page.len());
            for c in &page {
                let d = self.decide(c, second)?;
                match (&d.mail, second) {
                    (Some(_), true) => report.reminders_15 += 1,
                    (Some(_), false) => report.reminders_45 += 1,
                    (None, _) => report.skipped += 1,
                }
                decisions.push(d);
            }
            qcert_ca_core::orders::failpoint("reminder-before-record");
            registry.record_reminders(&decisions, now.unix_timestamp()).await.map_err(CaError::from)?;
            if i64::try_from(page.len()).unwrap_or(0) < PAGE {
                return Ok(());
            }
        }
    }

    fn decide(&self, c: &ReminderCandidate, second: bool) -> Result<ReminderDecision, TickError> {
        let serial = c.serial.clone();
        if c.revoked {
            return Ok(ReminderDecision { serial, stage: STAGE_NEVER, mail: None });
        }
        let stage = if second { STAGE_15_DONE } else { STAGE_45_DONE };
        let Some(to) = c.email.clone().filter(|_| !c.renewal_ordered) else {
            return Ok(ReminderDecision { serial, stage, mail: None });
        };
        let language = Language::parse(&c.language).unwrap_or(Language::En);
        let date = |t: i64| {
            OffsetDateTime::from_unix_timestamp(t).map(|t| long_date(t, language)).unwrap_or_else(|_| t.to_string())
        };
        let vars: BTreeMap<String, String> = [
            ("given_name", c.given_name.clone().unwrap_or_default()),
            ("serial", serial.clone()),
            ("not_after", date(c.not_after)),
            ("deadline", date(c.not_after - RENEWAL_LEAD.whole_seconds())),
            ("renewal_url", self.orders.renewal_url(&serial)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let template = if second { Template::LastRenewalReminder } else { Template::RenewalReminder };
        let rendered = render(template, language, &vars)?;
        let which = if second { "15" } else { "45" };
        let dedupe_key = format!("reminder-{which}:{serial}");
        let mail = NewOutboxMail {
            kind: format!("renewal-reminder-{which}"),
            language: language.as_str().to_owned(),
            recipient: to,
            body_sealed: crate::outbox::seal_body(self.orders.vault(), &dedupe_key, &rendered.body)?,
            dedupe_key,
            subject: rendered.subject,
        };
        Ok(ReminderDecision { serial, stage, mail: Some(mail) })
    }

    /// Tick on `schedule` (cron, seconds first, e.g. `0 * * * * *`) until
    /// `shutdown` completes; a failed tick is logged and retried at the next.
    pub async fn run(
        &self,
        schedule: &str,
        clock: Arc<dyn Clock>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), TickError> {
        let schedule = parse_schedule(schedule)?;
        tokio::pin!(shutdown);
        loop {
            match self.tick(clock.now()).await {
                Ok(r) if r != TickReport::default() => tracing::info!(?r, "notifier tick"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "notifier tick failed; retrying at the next one"),
            }
            let wait = schedule
                .upcoming(chrono::Utc)
                .next()
                .and_then(|t| (t - chrono::Utc::now()).to_std().ok())
                .unwrap_or(std::time::Duration::from_secs(60));
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A cron schedule with seconds (6 or 7 fields).
pub fn parse_schedule(s: &str) -> Result<cron::Schedule, TickError> {
    cron::Schedule::from_str(s).map_err(|e| {
        TickError::Schedule(format!("{s:?} is not a cron schedule with seconds, like \"0 * * * * *\": {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_need_seconds() {
        assert!(parse_schedule("0 */5 * * * *").is_ok());
        assert!(parse_schedule("*/5 * * * *").is_err(), "5 fields are refused");
        assert!(parse_schedule("soon").is_err());
    }
}
