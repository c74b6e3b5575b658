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

/// Where a certificate's holder is mailed: the address and given name
/// recorded with the certificate, and the language of the order it came
/// from (directly, or through a renewal of it); `None` when not ordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HolderContact {
    pub email: String,
    pub given_name: String,
    pub language: Option<String>,
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

    /// The holder's address of an end-entity certificate (`None` without one).
    pub async fn holder_contact(&self, serial: &str) -> Result<Option<HolderContact>, StoreError> {
        let row = sqlx::query(
            "SELECT c.email, c.given_name, COALESCE( \
               (SELECT o.language FROM orders o WHERE o.serial = c.serial OR c.issued_for = 'order:' || o.id LIMIT 1), \
               (SELECT o.language FROM renewals n JOIN orders o ON o.id = n.order_id \
                WHERE n.new_serial = c.serial OR c.issued_for = 'renewal:' || n.id LIMIT 1)) AS language \
             FROM certificates c WHERE c.serial = $1 AND c.kind = 'end-entity' AND c.email IS NOT NULL",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(HolderContact {
                email: r.try_get("email")?,
                given_name: r.try_get::<Option<String>, _>("given_name")?.unwrap_or_default(),
                language: r.try_get("language")?,
            })
        })
        .transpose()
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

    /// Claim one hotline attempt on `serial` before its password is checked:
    /// one conditional UPDATE that counts the attempt only while the
    /// credential is unlocked, its count is below `lock_after` and the
    /// certificate is not revoked. Returns the new count (1..=lock_after),
    /// or `None` when no attempt is left: then the password must not be
    /// checked. Concurrent callers (in any process) are serialised by the
    /// row, so at most `lock_after` attempts are ever claimed.
    pub async fn claim_password_attempt(&self, serial: &str, lock_after: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "UPDATE revocation_credentials SET failed_attempts = failed_attempts + 1 \
             WHERE serial = $1 AND locked_at IS NULL AND failed_attempts < $2 \
             AND NOT EXISTS (SELECT 1 FROM revocations r WHERE r.serial = revocation_credentials.serial) \
             RETURNING failed_attempts",
        )
        .bind(serial)
        .bind(lock_after)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get("failed_attempts")).transpose().map_err(Into::into)
    }

    /// Lock the hotline path of `serial` (the last claimable attempt was a
    /// wrong password). True only for the call that locked it.
    pub async fn lock_credential(&self, serial: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE revocation_credentials SET locked_at = $1 WHERE serial = $2 AND locked_at IS NULL")
            .bind(now)
            .bind(serial)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
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
