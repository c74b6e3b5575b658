//! The audit log's SQL: append under the head's lock, read in pages.

use sqlx::Row;

use super::{Registry, StoreError};

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// 1: the hash covers the fields above; 2 (migration 0024): also
    /// `personal_digest`.
    pub hash_version: i64,
    /// Free text that may name a person, outside the hash (erasable).
    pub personal: Option<String>,
    pub personal_salt: Option<String>,
    /// SHA-256 of salt and text, which the hash covers (kept on erasure).
    pub personal_digest: Option<String>,
}

/// The personal part of an entry: the text, its random salt and digest.
#[derive(Debug, Clone, Copy)]
pub struct AuditPersonal<'a> {
    pub text: &'a str,
    pub salt: &'a str,
    pub digest: &'a str,
}

/// The fields of an entry before it is chained.
#[derive(Debug, Clone, Copy)]
pub struct AuditFields<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

/// Filters of [`Registry::audit_search`]; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub subject: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub action: Option<&'a str>,
    /// `at >= since` (unix seconds).
    pub since: Option<i64>,
    /// `at < until`.
    pub until: Option<i64>,
    /// Only entries with `seq < before` (the cursor of the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

pub(super) const AUDIT_COLUMNS: &str =
    "seq, at, actor, action, subject, outcome, detail, prev_hash, hash, hash_version, \
     personal, personal_salt, personal_digest";

impl Registry {
    /// Entries matching `q`, newest first, at most `q.limit`.
    pub async fn audit_search(&self, q: &AuditQuery<'_>) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = String::from(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1 = 1"));
        let mut n = 0;
        let mut cond = |column: &str, op: &str, present: bool| {
            if present {
                n += 1;
                sql.push_str(&format!(" AND {column} {op} ${n}"));
            }
        };
        cond("subject", "=", q.subject.is_some());
        cond("actor", "=", q.actor.is_some());
        cond("action", "=", q.action.is_some());
        cond("at", ">=", q.since.is_some());
        cond("at", "<", q.until.is_some());
        cond("seq", "<", q.before.is_some());
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", n + 1));
        let mut query = sqlx::query(&sql);
        for text in [q.subject, q.actor, q.action].into_iter().flatten() {
            query = query.bind(text);
        }
        for number in [q.since, q.until, q.before].into_iter().flatten() {
            query = query.bind(number);
        }
        let rows = query.bind(q.limit).fetch_all(&self.pool).await?;
        rows.iter().map(audit_row).collect()
    }

    /// Append an entry. `chain(seq, prev_hash)` computes its hash. Bumping
    /// the head first takes the write lock (PostgreSQL row lock, SQLite's
    /// database lock), so concurrent appenders, also in other processes,
    /// chain one after another.
    pub async fn append_audit(
        &self,
        f: AuditFields<'_>,
        personal: Option<AuditPersonal<'_>>,
        chain: impl FnOnce(i64, &str) -> String,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let head = sqlx::query("UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
            .fetch_one(&mut *tx)
            .await?;
        let seq: i64 = head.try_get("seq")?;
        let prev: String = head.try_get("hash")?;
        let hash = chain(seq, &prev);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, outcome, detail, prev_hash, hash, hash_version, \
             personal, personal_salt, personal_digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 2, $10, $11, $12)",
        )
        .bind(seq)
        .bind(f.at)
        .bind(f.actor)
        .bind(f.action)
        .bind(f.subject)
        .bind(f.outcome)
        .bind(f.detail)
        .bind(&prev)
        .bind(&hash)
        .bind(personal.map(|p| p.text))
        .bind(personal.map(|p| p.salt))
        .bind(personal.map(|p| p.digest))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1").bind(&hash).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Entries with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The head: last sequence number and hash.
    pub async fn audit_head(&self) -> Result<(i64, String), StoreError> {
        let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(&self.pool).await?;
        Ok((r.try_get("seq")?, r.try_get("hash")?))
    }
}

pub(super) fn audit_row(r: &sqlx::any::AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        outcome: r.try_get("outcome")?,
        detail: r.try_get("detail")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
        hash_version: r.try_get("hash_version")?,
        personal: r.try_get("personal")?,
        personal_salt: r.try_get("personal_salt")?,
        personal_digest: r.try_get("personal_digest")?,
    })
}
