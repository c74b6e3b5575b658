//! The TSA's SQL: its certificate (an end-entity row of profile `tsa`) and
//! the record of each time-stamp token (table `time_stamps`, migration 0036).

use sqlx::Row;

use super::{record, CertificateRecord, Registry, StoreError, CERT_COLUMNS};

/// One time-stamp token, recorded before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStampRecord {
    /// TSTInfo serialNumber, lower-case hex.
    pub serial: String,
    /// Serial of the TSU certificate that signs it.
    pub tsu_serial: String,
    /// genTime, seconds since the epoch.
    pub gen_time: i64,
    pub policy: String,
    pub hash_algorithm: String,
    /// The requester's hashedMessage, lower-case hex.
    pub message_imprint: String,
}

impl Registry {
    /// The newest issued certificate of `profile` whose key is `key_label`
    /// on the HSM (a seal or TSU certificate made by the ceremony).
    pub async fn service_certificate(
        &self,
        profile: &str,
        key_label: &str,
    ) -> Result<Option<CertificateRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM certificates \
             WHERE profile = $1 AND hsm_key_label = $2 AND status = 'issued' AND kind = 'end-entity' \
             ORDER BY not_before DESC, serial DESC LIMIT 1"
        ))
        .bind(profile)
        .bind(key_label)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| record(&r)).transpose()
    }

    /// Record a time-stamp token before signing it. `Ok(false)`: the serial
    /// is taken (draw another); nothing was written.
    pub async fn record_time_stamp(&self, t: &TimeStampRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO time_stamps (serial, tsu_serial, gen_time, policy, hash_algorithm, message_imprint) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.serial)
        .bind(&t.tsu_serial)
        .bind(t.gen_time)
        .bind(&t.policy)
        .bind(&t.hash_algorithm)
        .bind(&t.message_imprint)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The record of the token with serial `serial` (lower-case hex).
    pub async fn time_stamp(&self, serial: &str) -> Result<Option<TimeStampRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT serial, tsu_serial, gen_time, policy, hash_algorithm, message_imprint FROM time_stamps WHERE serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TimeStampRecord {
                serial: r.try_get("serial")?,
                tsu_serial: r.try_get("tsu_serial")?,
                gen_time: r.try_get("gen_time")?,
                policy: r.try_get("policy")?,
                hash_algorithm: r.try_get("hash_algorithm")?,
                message_imprint: r.try_get("message_imprint")?,
            })
        })
        .transpose()
    }

    /// Number of time-stamp tokens recorded.
    pub async fn time_stamp_count(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM time_stamps").fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }
}
