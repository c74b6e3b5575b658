//! Renewals' and reminders' SQL.

use sqlx::Row;

use super::outbox::{insert_outbox_row, NewOutboxMail};
use super::{Backend, BenchSeries, Registry, StoreError};

/// A renewal as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenewalRow {
    pub id: String,
    pub serial: String,
    pub order_id: Option<String>,
    pub product: String,
    pub years: i64,
    pub csr: Option<Vec<u8>>,
    pub state: String,
    pub issue_at: i64,
    pub new_serial: Option<String>,
    pub created_at: i64,
    pub paid_at: Option<i64>,
}

/// A new renewal's fields.
#[derive(Debug, Clone)]
pub struct NewRenewal<'a> {
    pub id: &'a str,
    pub serial: &'a str,
    pub order_id: Option<&'a str>,
    pub product: &'a str,
    pub years: i64,
    pub csr: Option<&'a [u8]>,
    pub csr_key_id: Option<&'a str>,
    pub issue_at: i64,
}

/// A certificate a reminder may be due for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderCandidate {
    pub serial: String,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub not_after: i64,
    pub reminder_stage: i64,
    /// The language of the order it came from (`en` without one).
    pub language: String,
    pub revoked: bool,
    pub renewal_ordered: bool,
}

/// What a tick decided for one certificate: its new stage and, if a mail
/// goes out, the mail. Recorded together.
#[derive(Debug, Clone)]
pub struct ReminderDecision {
    pub serial: String,
    pub stage: i64,
    pub mail: Option<NewOutboxMail>,
}

pub(super) const COLUMNS: &str =
    "id, serial, order_id, product, years, csr, state, issue_at, new_serial, created_at, paid_at";

impl Registry {
    /// Insert a renewal awaiting payment; `Ok(false)` if the certificate
    /// already has a live (not cancelled) renewal.
    pub async fn insert_renewal(&self, r: &NewRenewal<'_>, now: i64) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO renewals (id, serial, order_id, product, years, csr, csr_key_id, state, issue_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'awaiting-payment', $8, $9, $9)",
        )
        .bind(r.id)
        .bind(r.serial)
        .bind(r.order_id)
        .bind(r.product)
        .bind(r.years)
        .bind(r.csr)
        .bind(r.csr_key_id)
        .bind(r.issue_at)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn renewal(&self, id: &str) -> Result<Option<RenewalRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM renewals WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| renewal_row(&r)).transpose()
    }

    /// The live (not cancelled) renewal of a certificate.
    pub async fn renewal_of(&self, serial: &str) -> Result<Option<RenewalRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM renewals WHERE serial = $1 AND state <> 'cancelled'"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| renewal_row(&r)).transpose()
    }

    /// The renewal that produced certificate `new_serial`.
    pub async fn renewal_producing(&self, new_serial: &str) -> Result<Option<RenewalRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM renewals WHERE new_serial = $1"))
            .bind(new_serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| renewal_row(&r)).transpose()
    }

    /// Apply a payment event once; an event for a renewal no longer
    /// awaiting payment is kept and flagged for refund.
    pub async fn record_renewal_payment(
        &self,
        event_id: &str,
        renewal_id: &str,
        payment_ref: &str,
        now: i64,
    ) -> Result<super::orders::PaymentRecorded, StoreError> {
        let mark_paid = sqlx::query(
            "UPDATE renewals SET state = 'paid', paid_at = $1, updated_at = $1 WHERE id = $2 AND state = 'awaiting-payment'",
        )
        .bind(now)
        .bind(renewal_id);
        self.record_payment_event(
            "renewal_payment_events",
            "renewal_id",
            event_id,
            renewal_id,
            payment_ref,
            now,
            mark_paid,
        )
        .await
    }

    /// Claim up to `limit` renewals due at `now` (paid, or left `issuing`
    /// by a process whose lease ran out) until `lease_until`. On
    /// PostgreSQL rows another notifier is claiming are skipped.
    pub async fn claim_due_renewals(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<RenewalRow>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE renewals SET state = 'issuing', lease_until = $1, updated_at = $2 WHERE id IN \
             (SELECT id FROM renewals WHERE issue_at <= $2 AND \
              (state = 'paid' OR (state = 'issuing' AND lease_until < $2)) ORDER BY issue_at, id LIMIT $3 {lock}) \
             RETURNING {COLUMNS}"
        ))
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(renewal_row).collect()
    }

    /// Record the issued renewal (only while still claimed).
    pub async fn finish_renewal(&self, id: &str, new_serial: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE renewals SET state = 'issued', new_serial = $1, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND state = 'issuing'",
        )
        .bind(new_serial)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Give a claimed renewal back (it is retried at the next tick) or cancel it.
    pub async fn end_renewal_claim(&self, id: &str, to: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE renewals SET state = $1, lease_until = NULL, updated_at = $2 WHERE id = $3 AND state = 'issuing'",
        )
        .bind(to)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cancel the renewal of `serial` while it awaits payment; whether there was one.
    pub async fn cancel_unpaid_renewal(&self, serial: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE renewals SET state = 'cancelled', updated_at = $1 WHERE serial = $2 AND state = 'awaiting-payment'",
        )
        .bind(now)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Flag every payment of renewal `id` for refund (it was cancelled
    /// after being paid); how many were not flagged yet.
    pub async fn flag_renewal_refund(&self, id: &str) -> Result<u64, StoreError> {
        let r =
            sqlx::query("UPDATE renewal_payment_events SET refund_due = 1 WHERE renewal_id = $1 AND refund_due = 0")
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(r.rows_affected())
    }

    /// The certificate reserved or issued for `issued_for`, if any: (serial, status).
    pub async fn certificate_issued_for(&self, issued_for: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT serial, status FROM certificates WHERE issued_for = $1 AND status <> 'aborted'")
            .bind(issued_for)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("serial")?, r.try_get("status")?))).transpose()
    }

    /// The renewed certificate keeps the revocation password (and document).
    pub async fn copy_credential(&self, from: &str, to: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocation_credentials (serial, document_key, password_hash, failed_attempts, changed_at) \
             SELECT $1, document_key, password_hash, 0, $2 FROM revocation_credentials WHERE serial = $3 \
             ON CONFLICT (serial) DO NOTHING",
        )
        .bind(to)
        .bind(now)
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Issued end-entity certificates below reminder stage `below`, whose
    /// notAfter lies in `(now, now + horizon]`, soonest first.
    pub async fn reminder_candidates(
        &self,
        stages: &[i64],
        now: i64,
        horizon: i64,
        limit: i64,
    ) -> Result<Vec<ReminderCandidate>, StoreError> {
        let stage_list = stages.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let rows = sqlx::query(&format!(
            "SELECT c.serial, c.email, c.given_name, c.not_after, c.reminder_stage, \
             COALESCE((SELECT o.language FROM orders o WHERE o.serial = c.serial), 'en') AS language, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM revocations r WHERE r.serial = c.serial) THEN 1 ELSE 0 END AS BIGINT) AS revoked, \
             CAST(CASE WHEN EXISTS (SELECT 1 FROM renewals w WHERE w.serial = c.serial AND w.state <> 'cancelled') THEN 1 ELSE 0 END AS BIGINT) AS renewing \
             FROM certificates c WHERE c.kind = 'end-entity' AND c.status = 'issued' AND c.reminder_stage IN ({stage_list}) \
             AND c.not_after > $1 AND c.not_after <= $2 ORDER BY c.reminder_stage, c.not_after LIMIT $3"
        ))
        .bind(now)
        .bind(now.saturating_add(horizon))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ReminderCandidate {
                    serial: r.try_get("serial")?,
                    email: r.try_get("email")?,
                    given_name: r.try_get("given_name")?,
                    not_after: r.try_get("not_after")?,
                    reminder_stage: r.try_get("reminder_stage")?,
                    language: r.try_get("language")?,
                    revoked: r.try_get::<i64, _>("revoked")? != 0,
                    renewal_ordered: r.try_get::<i64, _>("renewing")? != 0,
                })
            })
            .collect()
    }

    /// Record a tick's decisions in one transaction: each mail into the
    /// outbox (once per dedupe key) together with the certificate's new
    /// stage, so a crash leaves both or neither.
    pub async fn record_reminders(&self, decisions: &[ReminderDecision], now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut queued = 0;
        for d in decisions {
            if let Some(m) = &d.mail {
                queued += u64::from(insert_outbox_row(&mut *tx, m, now).await?.is_some());
            }
            sqlx::query("UPDATE certificates SET reminder_stage = $1 WHERE serial = $2 AND reminder_stage < $1")
                .bind(d.stage)
                .bind(&d.serial)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(queued)
    }
}

pub(super) fn renewal_row(r: &sqlx::any::AnyRow) -> Result<RenewalRow, StoreError> {
    Ok(RenewalRow {
        id: r.try_get("id")?,
        serial: r.try_get("serial")?,
        order_id: r.try_get("order_id")?,
        product: r.try_get("product")?,
        years: r.try_get("years")?,
        csr: r.try_get("csr")?,
        state: r.try_get("state")?,
        issue_at: r.try_get("issue_at")?,
        new_serial: r.try_get("new_serial")?,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
    })
}

impl Registry {
    /// Load generator for benchmarks: `n` issued end-entity certificates of
    /// one holder under `issuer_serial`, every `due_every`-th expiring at
    /// `due_at` (the others at least 200 days after `now`); with
    /// `renewal_csr`, each due one also gets a paid TOKEN renewal with that
    /// CSR. Not for production registries.
    #[doc(hidden)]
    pub async fn fill_bench_expiring(
        &self,
        issuer_serial: &str,
        n: i64,
        due_every: i64,
        due_at: i64,
        now: i64,
        renewal_csr: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let BenchSeries { seq, serial, blob, from } = self.bench_series("6e");
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "{seq}INSERT INTO certificates (serial, issuer_serial, kind, profile, status, subject_dn, given_name, surname, \
             email, country, semantics_id, not_before, not_after, key_id, tbs_der, der, created_at, updated_at) \
             SELECT {serial}, $2, 'end-entity', 'qcp-n-qscd', 'issued', 'CN=Bench Holder', 'Bench', 'Holder', \
             'bench@example.eu', 'RO', 'PNORO-1900101123457', $4 - 31536000, \
             CASE WHEN i % $3 = 0 THEN $4 ELSE $5 + 17280000 + (i % 100000) END, 'bench', {blob}, {blob}, $5, $5 {from}"
        ))
        .bind(n)
        .bind(issuer_serial)
        .bind(due_every)
        .bind(due_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if let Some(csr) = renewal_csr {
            sqlx::query(&format!(
                "{seq}INSERT INTO renewals (id, serial, product, years, csr, state, issue_at, created_at, paid_at, updated_at) \
                 SELECT {serial}, {serial}, 'token', 1, $3, 'paid', $4 - 259200, $5, $5, $5 {from} WHERE i % $2 = 0"
            ))
            .bind(n)
            .bind(due_every)
            .bind(csr)
            .bind(due_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// A full scan of the certificates table (the benchmark's baseline).
    #[doc(hidden)]
    pub async fn bench_full_scan(&self) -> Result<i64, StoreError> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM certificates WHERE subject_dn LIKE '%Holder%'")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// The database's plan for the 45-day reminder query (benchmark report).
    #[doc(hidden)]
    pub async fn explain_reminders(&self, now: i64) -> Result<String, StoreError> {
        self.explain(&format!(
            "SELECT c.serial FROM certificates c WHERE c.kind = 'end-entity' AND c.status = 'issued' \
             AND c.reminder_stage IN (0) AND c.not_after > {now} AND c.not_after <= {} \
             ORDER BY c.reminder_stage, c.not_after LIMIT 2000",
            now.saturating_add(45 * 86_400)
        ))
        .await
    }
}
