//! Sliding-window rate limits' SQL (table `rate_events`), shared by every
//! process on the registry.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Registry, StoreError};

/// A limit: at most `limit` events per `window_secs` seconds, in any window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub window_secs: i64,
}

/// What [`Registry::rate_hit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Counted; the event may go ahead.
    Allowed,
    /// Over the limit (not counted): the earliest event in the window leaves it in this many seconds.
    Refused { retry_after_secs: u64 },
}

/// The stored key: SHA-256 of scope and value, so no address or email is kept in clear.
fn event_key(scope: &str, value: &str) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0u8]);
    h.update(value.as_bytes());
    hex::encode(h.finalize())
}

impl Registry {
    /// Count one event of `value` in `scope` at `now`, unless that makes more
    /// than `w.limit` in the last `w.window_secs` seconds (a sliding window,
    /// not fixed intervals). The event is written first and counted after
    /// with every event committed so far, so concurrent callers (in any
    /// process) may together be refused more often than strictly needed,
    /// but are never allowed more than the limit: the last allowed one to
    /// count saw every other allowed one. A refused event is deleted.
    pub async fn rate_hit(&self, scope: &str, value: &str, w: Window, now: i64) -> Result<RateDecision, StoreError> {
        let key = event_key(scope, value);
        let since = now - w.window_secs;
        sqlx::query("DELETE FROM rate_events WHERE scope = $1 AND key = $2 AND at <= $3")
            .bind(scope)
            .bind(&key)
            .bind(since)
            .execute(&self.pool)
            .await?;
        let id: i64 =
            sqlx::query("INSERT INTO rate_events (scope, key, at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id")
                .bind(scope)
                .bind(&key)
                .bind(now)
                .bind(now + w.window_secs)
                .fetch_one(&self.pool)
                .await?
                .try_get("id")?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM rate_events WHERE scope = $1 AND key = $2 AND at > $3",
        )
        .bind(scope)
        .bind(&key)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        let n: i64 = row.try_get("n")?;
        if n <= i64::from(w.limit) {
            return Ok(RateDecision::Allowed);
        }
        sqlx::query("DELETE FROM rate_events WHERE id = $1").bind(id).execute(&self.pool).await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        let retry = oldest.map_or(w.window_secs, |o| o + w.window_secs - now).max(1);
        Ok(RateDecision::Refused { retry_after_secs: u64::try_from(retry).unwrap_or(1) })
    }

    /// Delete every scope's events that have left their window (at
    /// `expires_at`); how many.
    pub async fn purge_expired_rate_events(&self, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM rate_events WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }
}
