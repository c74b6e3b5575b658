//! Delivering the outbox: claim due rows under a lease, send each, record
//! the outcome. While the way out is down, rows wait with exponential
//! backoff; nothing is dropped.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qcert_ca_core::store::outbox::{sealed_body_ad, ClaimedMail};
use qcert_ca_core::vault::Vault;
use qcert_ca_core::{Clock, Registry};
use rand::RngCore;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::transport::{SendFailure, Transport};
use crate::MailError;

/// Retry and lease settings (`[mail.delivery]`); all times in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Wait after the first failed attempt; doubles with each further one.
    pub initial_backoff_secs: u64,
    /// The longest wait between attempts.
    pub max_backoff_secs: u64,
    /// How long a claimed row belongs to one dispatcher. Must exceed twice
    /// `send_timeout_secs`: a row is sent only while its lease has at least
    /// one send timeout left.
    pub lease_secs: u64,
    /// The longest one send may take before it counts as failed.
    pub send_timeout_secs: u64,
    /// Rows claimed at a time.
    pub batch_size: u32,
    /// How often [`Dispatcher::run`] looks for due rows.
    pub poll_interval_secs: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            initial_backoff_secs: 30,
            max_backoff_secs: 3600,
            lease_secs: 600,
            send_timeout_secs: 120,
            batch_size: 20,
            poll_interval_secs: 10,
        }
    }
}

impl DeliveryPolicy {
    fn validate(&self) -> Result<(), MailError> {
        let bad = |why: &str| Err(MailError::Config(format!("mail delivery policy: {why}")));
        if self.initial_backoff_secs == 0 || self.max_backoff_secs < self.initial_backoff_secs {
            return bad("need 1 <= initial_backoff_secs <= max_backoff_secs");
        }
        if self.max_backoff_secs > 7 * 86_400 {
            return bad("max_backoff_secs is at most 7 days");
        }
        if self.send_timeout_secs == 0 || self.lease_secs <= self.send_timeout_secs.saturating_mul(2) {
            return bad("need 1 <= send_timeout_secs and lease_secs > 2 * send_timeout_secs");
        }
        if self.lease_secs > 86_400 {
            return bad("lease_secs is at most one day");
        }
        if !(1..=1000).contains(&self.batch_size) {
            return bad("batch_size is 1 to 1000");
        }
        if self.poll_interval_secs == 0 {
            return bad("poll_interval_secs is at least 1");
        }
        Ok(())
    }

    /// The wait before the next attempt once `attempts` attempts failed:
    /// initial, doubling, capped.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
        let secs = self.initial_backoff_secs.saturating_mul(1u64.checked_shl(doublings).unwrap_or(u64::MAX));
        Duration::from_secs(secs.min(self.max_backoff_secs))
    }
}

/// What one [`Dispatcher::run_once`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the server (or written to the outbox directory).
    pub sent: u32,
    /// Refused for good by the server: parked with the reason, not retried
    /// until [`crate::Outbox::requeue_failed`].
    pub failed: u32,
    /// Not delivered now (server down, 4xx, timeout): retried after backoff.
    pub deferred: u32,
    /// Claimed but given back untried because the lease was running out;
    /// due again at once.
    pub released: u32,
}

impl DeliveryReport {
    fn is_empty(&self) -> bool {
        *self == DeliveryReport::default()
    }
}

/// Delivers the outbox through one transport.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    registry: Registry,
    vault: Arc<Vault>,
    transport: Transport,
    policy: DeliveryPolicy,
}

impl Dispatcher {
    /// `vault` opens the sealed bodies (the one [`crate::Outbox::enqueue`] used).
    pub fn new(
        registry: Registry,
        vault: Arc<Vault>,
        transport: Transport,
        policy: DeliveryPolicy,
    ) -> Result<Dispatcher, MailError> {
        policy.validate()?;
        Ok(Dispatcher { registry, vault, transport, policy })
    }

    /// The body of a claimed row: opened from its seal (or, for a row from
    /// before bodies were sealed, as stored).
    fn body(&self, mail: &ClaimedMail) -> Result<String, String> {
        let Some(sealed) = &mail.body_sealed else { return Ok(mail.body_text.clone()) };
        let raw = self
            .vault
            .open(sealed, &sealed_body_ad(&mail.dedupe_key))
            .map_err(|_| "the sealed body does not open (another vault key, or altered)".to_owned())?;
        String::from_utf8(raw.to_vec()).map_err(|_| "the sealed body is not UTF-8".to_owned())
    }

    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// Deliver every row due at `now`, a batch at a time. Rows another
    /// dispatcher holds are left alone. When the way out is down, every due
    /// row is deferred after one failed connection, without trying each.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<DeliveryReport, MailError> {
        let now_s = now.unix_timestamp();
        let lease = Duration::from_secs(self.policy.lease_secs);
        let send_timeout = Duration::from_secs(self.policy.send_timeout_secs);
        let owner = lease_owner();
        let mut report = DeliveryReport::default();
        // None: not checked yet in this run; Some(Err): down, defer the rest.
        let mut way_out: Option<Result<(), String>> = None;
        loop {
            let claimed_at = Instant::now();
            let batch = self
                .registry
                .outbox_claim(now_s, now_s.saturating_add(secs_i64(lease)), &owner, i64::from(self.policy.batch_size))
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut rows = batch.into_iter();
            while let Some(mail) = rows.next() {
                if way_out.is_none() {
                    way_out = Some(match tokio::time::timeout(send_timeout, self.transport.check()).await {
                        Ok(r) => r,
                        Err(_) => Err(format!("no answer within {} s", send_timeout.as_secs())),
                    });
                }
                if let Some(Err(why)) = &way_out {
                    self.defer(&mail, &owner, now_s, why, &mut report).await?;
                    continue;
                }
                // Send only while the lease outlives the send: otherwise
                // another dispatcher could take the row while we send it.
                if claimed_at.elapsed().saturating_add(send_timeout) >= lease.saturating_sub(send_timeout) {
                    for rest in std::iter::once(mail).chain(rows.by_ref()) {
                        if self.registry.outbox_release(rest.id, &owner).await? {
                            report.released = report.released.saturating_add(1);
                        }
                    }
                    self.log(&report);
                    return Ok(report);
                }
                let body = match self.body(&mail) {
                    Ok(b) => b,
                    Err(why) => {
                        if self.registry.outbox_park(mail.id, &owner, now_s, &why).await? {
                            report.failed = report.failed.saturating_add(1);
                        }
                        tracing::error!(id = mail.id, kind = %mail.kind, error = %why, "mail body unreadable; parked");
                        continue;
                    }
                };
                match tokio::time::timeout(send_timeout, self.transport.send(&mail, &body)).await {
                    Ok(Ok(())) => {
                        self.registry.outbox_mark_sent(mail.id, now_s).await?;
                        report.sent = report.sent.saturating_add(1);
                        tracing::debug!(id = mail.id, kind = %mail.kind, "mail sent");
                    }
                    Ok(Err(SendFailure::Rejected(why))) => {
                        let why = clip(&why);
                        if self.registry.outbox_park(mail.id, &owner, now_s, &why).await? {
                            report.failed = report.failed.saturating_add(1);
                        }
                        tracing::warn!(id = mail.id, kind = %mail.kind, error = %why, "mail refused for good; parked");
                    }
                    Ok(Err(SendFailure::Later(why))) => self.defer(&mail, &owner, now_s, &why, &mut report).await?,
                    Ok(Err(SendFailure::Down(why))) => {
                        self.defer(&mail, &owner, now_s, &why, &mut report).await?;
                        way_out = Some(Err(why));
                    }
                    Err(_) => {
                        // The server may or may not have taken it: retried
                        // later with the same Message-ID.
                        let why = format!("no answer within {} s", send_timeout.as_secs());
                        self.defer(&mail, &owner, now_s, &why, &mut report).await?;
                        way_out = Some(Err(why));
                    }
                }
            }
        }
        self.log(&report);
        Ok(report)
    }

    async fn defer(
        &self,
        mail: &ClaimedMail,
        owner: &str,
        now_s: i64,
        why: &str,
        report: &mut DeliveryReport,
    ) -> Result<(), MailError> {
        let attempts = mail.attempts.saturating_add(1);
        let next = now_s.saturating_add(secs_i64(self.policy.backoff(attempts)));
        let why = clip(why);
        if self.registry.outbox_defer(mail.id, owner, next, &why).await? {
            report.deferred = report.deferred.saturating_add(1);
        }
        tracing::debug!(id = mail.id, attempts, next_attempt_at = next, error = %why, "mail deferred");
        Ok(())
    }

    fn log(&self, r: &DeliveryReport) {
        if r.failed > 0 || r.deferred > 0 {
            tracing::warn!(
                sent = r.sent,
                failed = r.failed,
                deferred = r.deferred,
                released = r.released,
                via = %self.transport.describe(),
                "mail delivery incomplete"
            );
        } else if !r.is_empty() {
            tracing::info!(sent = r.sent, released = r.released, via = %self.transport.describe(), "mail delivered");
        }
    }

    /// Deliver until `shutdown` completes: a pass at once, then one every
    /// `poll_interval_secs` (at once again when a pass had to give rows
    /// back). Errors are logged and retried at the next pass.
    pub async fn run(&self, clock: Arc<dyn Clock>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let poll = Duration::from_secs(self.policy.poll_interval_secs);
        loop {
            let wait = match self.run_once(clock.now()).await {
                Ok(r) if r.released > 0 => Duration::ZERO,
                Ok(_) => poll,
                Err(e) => {
                    tracing::error!(error = %e, "mail delivery pass failed");
                    poll
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// A fresh name for one run's leases.
fn lease_owner() -> String {
    let mut b = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn secs_i64(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// At most 500 characters of an error, for `last_error`.
fn clip(why: &str) -> String {
    why.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = DeliveryPolicy::default();
        let secs: Vec<u64> = [1, 2, 3, 4, 7, 8, 100, i64::MAX].iter().map(|a| p.backoff(*a).as_secs()).collect();
        assert_eq!(secs, vec![30, 60, 120, 240, 1920, 3600, 3600, 3600]);
        assert_eq!(p.backoff(0).as_secs(), 30);
    }

    #[test]
    fn policies_are_checked() {
        assert!(DeliveryPolicy::default().validate().is_ok());
        let p = DeliveryPolicy { lease_secs: 100, send_timeout_secs: 60, ..DeliveryPolicy::default() };
        assert!(p.validate().is_err());
        let p = DeliveryPolicy { initial_backoff_secs: 0, ..DeliveryPolicy::default() };
        assert!(p.validate().is_err());
        let p = DeliveryPolicy { batch_size: 0, ..DeliveryPolicy::default() };
        assert!(p.validate().is_err());
        let p: DeliveryPolicy = serde_json::from_str(r#"{"initial_backoff_secs": 5}"#).unwrap();
        assert_eq!(p.initial_backoff_secs, 5);
        assert_eq!(p.max_backoff_secs, 3600);
    }
}
