//! Remote signing's SQL (CSC API): signing passwords, bearer sessions and
//! signature activation data (SAD). Tokens and SADs are stored only as
//! SHA-256; a SAD is used up by conditional UPDATEs, never read-then-write.

use sqlx::Row;

use super::{Registry, StoreError};

/// A SAD as stored (its hash is the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SadRow {
    pub order_id: String,
    pub serial: String,
    /// Hash algorithm OID (dotted).
    pub hash_algo: String,
    /// The hashes still to sign: sorted, base64, comma-separated.
    pub hashes: String,
    pub remaining: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Registry {
    /// The signing password's Argon2id hash of a CLOUD order, if one is set.
    pub async fn signing_password_hash(&self, order_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT signing_password_hash FROM orders WHERE id = $1")
            .bind(order_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("signing_password_hash")).transpose()?.flatten())
    }

    /// Set (or replace) the signing password of an issued CLOUD order.
    pub async fn set_signing_password(&self, order_id: &str, phc: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET signing_password_hash = $1, updated_at = $2 \
             WHERE id = $3 AND product = 'cloud' AND state = 'issued'",
        )
        .bind(phc)
        .bind(now)
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            // A new password ends every session opened with the old one.
            sqlx::query("DELETE FROM csc_sessions WHERE order_id = $1").bind(order_id).execute(&self.pool).await?;
        }
        Ok(r.rows_affected() == 1)
    }

    /// Store a bearer session (the token's SHA-256) and drop expired ones.
    pub async fn insert_csc_session(
        &self,
        token_hash: &str,
        order_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM csc_sessions WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        sqlx::query("INSERT INTO csc_sessions (token_hash, order_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(order_id)
            .bind(now)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The order of a live session.
    pub async fn csc_session(&self, token_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT order_id FROM csc_sessions WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get("order_id")?)).transpose()
    }

    /// End a session (auth/revoke).
    pub async fn delete_csc_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let r =
            sqlx::query("DELETE FROM csc_sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Store a new SAD (its SHA-256) and drop expired or used-up ones.
    pub async fn insert_sad(&self, sad_hash: &str, s: &SadRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM csc_sads WHERE expires_at <= $1 OR remaining <= 0")
            .bind(s.created_at)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO csc_sads (sad_hash, order_id, serial, hash_algo, hashes, remaining, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(sad_hash)
        .bind(&s.order_id)
        .bind(&s.serial)
        .bind(&s.hash_algo)
        .bind(&s.hashes)
        .bind(s.remaining)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A SAD that is not used up (expiry is the caller's check, on its clock).
    pub async fn sad(&self, sad_hash: &str) -> Result<Option<SadRow>, StoreError> {
        let row = sqlx::query(
            "SELECT order_id, serial, hash_algo, hashes, remaining, created_at, expires_at FROM csc_sads \
             WHERE sad_hash = $1 AND remaining > 0",
        )
        .bind(sad_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SadRow {
                order_id: r.try_get("order_id")?,
                serial: r.try_get("serial")?,
                hash_algo: r.try_get("hash_algo")?,
                hashes: r.try_get("hashes")?,
                remaining: r.try_get("remaining")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Use up some of a SAD's hashes: one conditional UPDATE from the state
    /// the caller read (`was`) to the hashes left, and only before expiry.
    /// False when another request used it first, or it expired: nothing may
    /// be signed then.
    pub async fn consume_sad(
        &self,
        sad_hash: &str,
        was: &SadRow,
        hashes_left: &str,
        remaining: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE csc_sads SET hashes = $1, remaining = $2 \
             WHERE sad_hash = $3 AND hashes = $4 AND remaining = $5 AND remaining > $2 AND expires_at > $6",
        )
        .bind(hashes_left)
        .bind(remaining)
        .bind(sad_hash)
        .bind(&was.hashes)
        .bind(was.remaining)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
