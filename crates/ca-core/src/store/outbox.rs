//! The mail outbox's SQL (`migrations/*/0005_mail_outbox.sql`). Rows are
//! written by whoever wants a mail sent and delivered by the notifier's
//! dispatcher, which claims due rows under a lease so that two dispatchers
//! on one database never send the same row at the same time.
//!
//! Bodies are stored sealed by the caller (the notifier, with the vault;
//! migration 0014) and erased when the mail is sent; sent rows are deleted
//! by [`Registry::outbox_purge_sent`] after the retention period.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{AnyQuery, Backend, Registry, StoreError};

/// A mail to store, already rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxMail {
    /// Unique per logical mail: enqueuing the same key again stores nothing.
    pub dedupe_key: String,
    pub kind: String,
    pub language: String,
    pub recipient: String,
    pub subject: String,
    /// The body, sealed by the vault (associated data: [`sealed_body_ad`]).
    pub body_sealed: Vec<u8>,
}

/// The associated data a row's body is sealed under: its identity, the
/// dedupe key (unique, known before the row exists), so a sealed body
/// copied into another row does not open there.
pub fn sealed_body_ad(dedupe_key: &str) -> Vec<u8> {
    format!("outbox:{dedupe_key}").into_bytes()
}

/// A row claimed for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMail {
    pub id: i64,
    pub dedupe_key: String,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    /// The body of a row stored before bodies were sealed ('' otherwise).
    pub body_text: String,
    /// The sealed body (None: a row from before migration 0014).
    pub body_sealed: Option<Vec<u8>>,
    /// Attempts made before this one.
    pub attempts: i64,
    pub next_attempt_at: i64,
}

/// A row as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    pub id: i64,
    pub dedupe_key: String,
    pub kind: String,
    pub language: String,
    pub recipient: String,
    pub subject: String,
    /// '' for sealed rows and after sending.
    pub body_text: String,
    /// The sealed body until the mail is sent, then None.
    pub body_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

pub(super) const RECORD_COLUMNS: &str =
    "id, dedupe_key, kind, language, recipient, subject, body_text, body_sealed, created_at, \
     attempts, next_attempt_at, lease_until, sent_at, failed_at, last_error";

const CLAIM_COLUMNS: &str =
    "id, dedupe_key, kind, recipient, subject, body_text, body_sealed, attempts, next_attempt_at";

impl Registry {
    /// Store a mail, due at once. Returns its id and whether a row with the
    /// same `dedupe_key` already existed (then nothing was stored and the id
    /// is the existing row's).
    pub async fn outbox_insert(&self, m: &NewOutboxMail, now: i64) -> Result<(i64, bool), StoreError> {
        if let Some(id) = insert_outbox_row(&self.pool, m, now).await? {
            return Ok((id, false));
        }
        let existing = sqlx::query("SELECT id FROM outbox WHERE dedupe_key = $1")
            .bind(&m.dedupe_key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("outbox row {:?}", m.dedupe_key)))?;
        Ok((existing.try_get("id")?, true))
    }

    /// Claim up to `limit` due rows (unsent, not parked, `next_attempt_at <=
    /// now`, no live lease) for `owner` until `lease_until`, oldest due first.
    /// On PostgreSQL rows another transaction is claiming are skipped
    /// (`FOR UPDATE SKIP LOCKED`); SQLite has one writer at a time.
    pub async fn outbox_claim(
        &self,
        now: i64,
        lease_until: i64,
        owner: &str,
        limit: i64,
    ) -> Result<Vec<ClaimedMail>, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET lease_until = $1, lease_owner = $2 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until <= $3) \
                 ORDER BY next_attempt_at, id LIMIT $4{lock}) \
             AND sent_at IS NULL AND failed_at IS NULL AND (lease_until IS NULL OR lease_until <= $3) \
             RETURNING {CLAIM_COLUMNS}"
        ))
        .bind(lease_until)
        .bind(owner)
        .bind(now)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = rows.iter().map(claimed).collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|c| (c.next_attempt_at, c.id));
        Ok(claimed)
    }

    /// The mail server accepted row `id`: record it (whoever holds the lease
    /// now: the mail is out) and erase the body, keeping the metadata.
    /// False if it was already recorded as sent.
    pub async fn outbox_mark_sent(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET sent_at = $1, attempts = attempts + 1, lease_until = NULL, lease_owner = NULL, \
             last_error = NULL, failed_at = NULL, body_text = '', body_sealed = NULL WHERE id = $2 AND sent_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An attempt failed for a passing reason: try again at `next_attempt_at`.
    /// Only while `owner` still holds the row; false otherwise.
    pub async fn outbox_defer(
        &self,
        id: i64,
        owner: &str,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.outbox_end_attempt(id, owner, "next_attempt_at", next_attempt_at, error).await
    }

    /// The mail server refused row `id` for good: park it (kept, not retried
    /// until [`Registry::outbox_requeue_failed`]). Only while `owner` holds it.
    pub async fn outbox_park(&self, id: i64, owner: &str, now: i64, error: &str) -> Result<bool, StoreError> {
        self.outbox_end_attempt(id, owner, "failed_at", now, error).await
    }

    /// Count a failed attempt on row `id`, set `column` (`next_attempt_at`
    /// or `failed_at`) to `value` and end the lease; only while `owner`
    /// holds it.
    async fn outbox_end_attempt(
        &self,
        id: i64,
        owner: &str,
        column: &'static str,
        value: i64,
        error: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE outbox SET attempts = attempts + 1, {column} = $1, last_error = $2, lease_until = NULL, \
             lease_owner = NULL WHERE id = $3 AND lease_owner = $4 AND sent_at IS NULL"
        ))
        .bind(value)
        .bind(error)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Give a claimed row back untried (its lease ends now).
    pub async fn outbox_release(&self, id: i64, owner: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_until = NULL, lease_owner = NULL WHERE id = $1 AND lease_owner = $2 AND sent_at IS NULL",
        )
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Make every parked row due again at `now`; returns how many.
    pub async fn outbox_requeue_failed(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET failed_at = NULL, next_attempt_at = $1 WHERE failed_at IS NOT NULL AND sent_at IS NULL",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM outbox WHERE id = $1");
        self.outbox_record_of(sqlx::query(&sql).bind(id)).await
    }

    pub async fn outbox_by_key(&self, dedupe_key: &str) -> Result<Option<OutboxRecord>, StoreError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM outbox WHERE dedupe_key = $1");
        self.outbox_record_of(sqlx::query(&sql).bind(dedupe_key)).await
    }

    /// The row `select` (a bound `SELECT {RECORD_COLUMNS}`) finds, if any.
    async fn outbox_record_of(&self, select: AnyQuery<'_>) -> Result<Option<OutboxRecord>, StoreError> {
        let row = select.fetch_optional(&self.pool).await?;
        row.map(|r| outbox_record(&r)).transpose()
    }

    /// Delete up to `limit` rows sent at or before `sent_before`, oldest
    /// first (a range scan on the partial index `outbox_sent`). Returns how
    /// many; the caller repeats while a full batch was deleted.
    pub async fn outbox_purge_sent(&self, sent_before: i64, limit: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NOT NULL AND sent_at <= $1 \
             ORDER BY sent_at LIMIT $2)",
        )
        .bind(sent_before)
        .bind(limit.max(1))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Rows not yet sent (including parked ones).
    pub async fn outbox_unsent_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// The earliest `next_attempt_at` of the rows still to try, if any.
    pub async fn outbox_next_due(&self) -> Result<Option<i64>, StoreError> {
        let row =
            sqlx::query("SELECT MIN(next_attempt_at) AS due FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("due")?)
    }
}

/// Store `m` in the outbox, due at `now`, unless a row with its
/// `dedupe_key` exists. Returns the new row's id, or None when nothing was
/// stored. Runs on the pool or inside the caller's transaction.
pub(super) async fn insert_outbox_row<'e, E>(
    executor: E,
    m: &NewOutboxMail,
    now: i64,
) -> Result<Option<i64>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let inserted = sqlx::query(
        "INSERT INTO outbox (dedupe_key, kind, language, recipient, subject, body_text, body_sealed, created_at, \
         attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, '', $6, $7, 0, $7) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
    )
    .bind(&m.dedupe_key)
    .bind(&m.kind)
    .bind(&m.language)
    .bind(&m.recipient)
    .bind(&m.subject)
    .bind(&m.body_sealed)
    .bind(now)
    .fetch_optional(executor)
    .await?;
    Ok(inserted.map(|row| row.try_get("id")).transpose()?)
}

fn claimed(r: &AnyRow) -> Result<ClaimedMail, StoreError> {
    Ok(ClaimedMail {
        id: r.try_get("id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        kind: r.try_get("kind")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body_text: r.try_get("body_text")?,
        body_sealed: r.try_get("body_sealed")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
    })
}

pub(super) fn outbox_record(r: &AnyRow) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: r.try_get("id")?,
        dedupe_key: r.try_get("dedupe_key")?,
        kind: r.try_get("kind")?,
        language: r.try_get("language")?,
        recipient: r.try_get("recipient")?,
        subject: r.try_get("subject")?,
        body_text: r.try_get("body_text")?,
        body_sealed: r.try_get("body_sealed")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        lease_until: r.try_get("lease_until")?,
        sent_at: r.try_get("sent_at")?,
        failed_at: r.try_get("failed_at")?,
        last_error: r.try_get("last_error")?,
    })
}
