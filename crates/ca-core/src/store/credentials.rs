//! Revocation credentials' SQL: per certificate, the keyed hash of the
//! holder's ID document number and the Argon2id hash of the revocation password.

use sqlx::Row;

use super::{Registry, StoreError};

/// A certificate's revocation credential as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub serial: String,
    pub document_key: String,
    pub password_hash: String,
    pub failed_attempts: i64,
    pub locked_at: Option<i64>,
}

const COLUMNS: &str = "k.serial, k.document_key, k.password_hash, k.failed_attempts, k.locked_at";

impl Registry {
    pub async fn put_credential(
        &self,
        serial: &str,
        document_key: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO revocation_credentials (serial, document_key, password_hash, failed_attempts, changed_at) \
             VALUES ($1, $2, $3, 0, $4)",
        )
        .bind(serial)
        .bind(document_key)
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn credential(&self, serial: &str) -> Result<Option<CredentialRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM revocation_credentials k WHERE k.serial = $1"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| credential_row(&r)).transpose()
    }

    /// Credentials of the holder's certificates that can still be revoked:
    /// issued, not revoked, not expired at `now`.
    pub async fn revocable_credentials(&self, document_key: &str, now: i64) -> Result<Vec<CredentialRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM revocation_credentials k JOIN certificates c ON c.serial = k.serial \
             LEFT JOIN revocations r ON r.serial = k.serial \
             WHERE k.document_key = $1 AND c.status = 'issued' AND r.serial IS NULL AND c.not_after > $2 \
             ORDER BY k.serial"
        ))
        .bind(document_key)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(credential_row).collect()
    }

    /// Serials of every certificate recorded for a document, newest first.
    pub async fn serials_for_document(&self, document_key: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.serial FROM revocation_credentials k JOIN certificates c ON c.serial = k.serial \
             WHERE k.document_key = $1 ORDER BY c.not_before DESC, k.serial",
        )
        .bind(document_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }

    /// Count a wrong password; the credential locks when the count reaches
    /// `lock_after`. Returns the new count. One statement, so concurrent
    /// wrong guesses are all counted.
    pub async fn record_password_failure(&self, serial: &str, lock_after: i64, now: i64) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "UPDATE revocation_credentials SET failed_attempts = failed_attempts + 1, \
             locked_at = CASE WHEN locked_at IS NULL AND failed_attempts + 1 >= $2 THEN $3 ELSE locked_at END \
             WHERE serial = $1 RETURNING failed_attempts",
        )
        .bind(serial)
        .bind(lock_after)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(r.try_get("failed_attempts")?),
            None => Err(StoreError::NotFound(serial.to_owned())),
        }
    }

    /// A right password resets the count of wrong ones (not a lock).
    pub async fn reset_password_failures(&self, serial: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE revocation_credentials SET failed_attempts = 0 WHERE serial = $1 AND failed_attempts > 0")
            .bind(serial)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Replace the password (in person): resets the count and lifts a lock.
    pub async fn set_revocation_password(&self, serial: &str, password_hash: &str, now: i64) -> Result<(), StoreError> {
        let r = sqlx::query(
            "UPDATE revocation_credentials SET password_hash = $1, failed_attempts = 0, locked_at = NULL, \
             changed_at = $2 WHERE serial = $3",
        )
        .bind(password_hash)
        .bind(now)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(serial.to_owned()));
        }
        Ok(())
    }
}

fn credential_row(r: &sqlx::any::AnyRow) -> Result<CredentialRow, StoreError> {
    Ok(CredentialRow {
        serial: r.try_get("serial")?,
        document_key: r.try_get("document_key")?,
        password_hash: r.try_get("password_hash")?,
        failed_attempts: r.try_get("failed_attempts")?,
        locked_at: r.try_get("locked_at")?,
    })
}
