//! Confirmation documents' SQL (table `confirmation_documents`, migration 0038).

use sqlx::Row;

use super::{Registry, StoreError};

/// One certificate's confirmation document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationRow {
    pub serial: String,
    /// SHA-256 (hex) of the prefilled PDF handed out.
    pub prefilled_sha256: String,
    pub prefilled_size: i64,
    pub created_at: i64,
    /// SHA-256 (hex) of the holder's signed upload last countersigned.
    pub signed_sha256: Option<String>,
    /// The latest countersigned document (`confirmare.pdf`).
    pub countersigned: Option<Vec<u8>>,
    pub countersigned_at: Option<i64>,
}

const COLUMNS: &str =
    "serial, prefilled_sha256, prefilled_size, created_at, signed_sha256, countersigned, countersigned_at";

impl Registry {
    /// Record the prefilled document's hash and length (first download, or
    /// a new generator version: the hash then changes and older downloads
    /// no longer match). A countersigned document already kept stays.
    pub async fn record_prefilled(&self, serial: &str, sha256: &str, size: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO confirmation_documents (serial, prefilled_sha256, prefilled_size, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO UPDATE SET prefilled_sha256 = excluded.prefilled_sha256, \
             prefilled_size = excluded.prefilled_size \
             WHERE confirmation_documents.prefilled_sha256 <> excluded.prefilled_sha256",
        )
        .bind(serial)
        .bind(sha256)
        .bind(size)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn confirmation(&self, serial: &str) -> Result<Option<ConfirmationRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM confirmation_documents WHERE serial = $1"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| -> Result<ConfirmationRow, StoreError> {
            Ok(ConfirmationRow {
                serial: r.try_get("serial")?,
                prefilled_sha256: r.try_get("prefilled_sha256")?,
                prefilled_size: r.try_get("prefilled_size")?,
                created_at: r.try_get("created_at")?,
                signed_sha256: r.try_get("signed_sha256")?,
                countersigned: r.try_get("countersigned")?,
                countersigned_at: r.try_get("countersigned_at")?,
            })
        })
        .transpose()
    }

    /// Keep the countersigned document (replacing an earlier one: the
    /// holder may confirm as often as needed).
    pub async fn store_countersigned(
        &self,
        serial: &str,
        signed_sha256: &str,
        pdf: &[u8],
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE confirmation_documents SET signed_sha256 = $1, countersigned = $2, countersigned_at = $3 \
             WHERE serial = $4",
        )
        .bind(signed_sha256)
        .bind(pdf)
        .bind(now)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(serial.to_owned()));
        }
        Ok(())
    }
}
