//! Secret deliveries' SQL (migration 0007): one-time links to a kit's
//! sealed secrets. Only hashes and vault-sealed bytes are stored; the
//! sealed bytes are erased when retrieved or superseded.

use sqlx::Row;

use super::{Registry, StoreError};

/// A delivery to insert.
#[derive(Debug, Clone, Copy)]
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub serial: Option<&'a str>,
    /// SHA-256 (hex) of the link token.
    pub link_hash: &'a str,
    /// Argon2id PHC string of the generation code.
    pub code_hash: &'a str,
    /// The secrets, sealed by the vault with associated data `id`.
    pub sealed: &'a [u8],
    pub created_at: i64,
}

/// A delivery as stored, without its sealed secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub id: String,
    pub order_id: String,
    pub serial: Option<String>,
    pub code_hash: String,
    pub failed_attempts: i64,
    pub blocked_at: Option<i64>,
    pub retrieved_at: Option<i64>,
    pub superseded_at: Option<i64>,
    pub created_at: i64,
}

const COLUMNS: &str = "id, order_id, serial, code_hash, failed_attempts, blocked_at, retrieved_at, superseded_at, \
     created_at";

/// "Neither retrieved nor superseded": at most one such row per order.
const LIVE: &str = "retrieved_at IS NULL AND superseded_at IS NULL";

impl Registry {
    /// Insert a delivery and, in the same transaction, supersede the
    /// order's live delivery (erasing its sealed secrets). With
    /// `replacing`, that delivery must be the live one. Returns false, and
    /// writes nothing, when it is not, or when another delivery for the
    /// order was inserted concurrently.
    pub async fn insert_delivery(&self, d: &NewDelivery<'_>, replacing: Option<&str>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let superseded = sqlx::query(&format!(
            "UPDATE secret_deliveries SET superseded_at = $1, sealed = NULL WHERE order_id = $2 AND {LIVE} \
             RETURNING id"
        ))
        .bind(d.created_at)
        .bind(d.order_id)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(old) = replacing {
            let ids: Vec<String> = superseded.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            if ids.iter().all(|id| id != old) {
                return Ok(false);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO secret_deliveries (id, order_id, serial, link_hash, code_hash, sealed, failed_attempts, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7)",
        )
        .bind(d.id)
        .bind(d.order_id)
        .bind(d.serial)
        .bind(d.link_hash)
        .bind(d.code_hash)
        .bind(d.sealed)
        .bind(d.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The delivery whose link token hashes to `link_hash`.
    pub async fn delivery_by_link(&self, link_hash: &str) -> Result<Option<DeliveryRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM secret_deliveries WHERE link_hash = $1"))
            .bind(link_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| delivery_row(&r)).transpose()
    }

    /// Every delivery of an order, oldest first.
    pub async fn deliveries_of_order(&self, order_id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM secret_deliveries WHERE order_id = $1 ORDER BY created_at, id"
        ))
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_row).collect()
    }

    /// The order's live delivery (pending or blocked) with its sealed secrets.
    pub async fn live_delivery(&self, order_id: &str) -> Result<Option<(DeliveryRow, Vec<u8>)>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS}, sealed FROM secret_deliveries WHERE order_id = $1 AND {LIVE}"))
                .bind(order_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else { return Ok(None) };
        let sealed: Option<Vec<u8>> = r.try_get("sealed")?;
        sealed.map(|s| delivery_row(&r).map(|d| (d, s))).transpose()
    }

    /// Count one generation-code attempt before it is checked, so no more
    /// than `max_attempts` codes are ever checked, however many arrive at
    /// once. Returns the attempt's number, or `None` when the delivery is
    /// blocked, out of attempts, retrieved or superseded. One statement.
    pub async fn charge_delivery_attempt(&self, id: &str, max_attempts: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(&format!(
            "UPDATE secret_deliveries SET failed_attempts = failed_attempts + 1 \
             WHERE id = $1 AND {LIVE} AND blocked_at IS NULL AND failed_attempts < $2 RETURNING failed_attempts"
        ))
        .bind(id)
        .bind(max_attempts)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("failed_attempts")?)).transpose()
    }

    /// Block a live delivery for good; false if it was blocked already or is not live.
    pub async fn block_delivery(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "UPDATE secret_deliveries SET blocked_at = $1 WHERE id = $2 AND {LIVE} AND blocked_at IS NULL"
        ))
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Retrieve a live delivery's secrets once, after a right code whose
    /// attempt was charged (and is given back here). In one transaction:
    /// lock the row while it is live, pass its sealed bytes to `open`, and
    /// only if that succeeds erase them and set `retrieved_at`. Of two
    /// concurrent calls, the second waits for the first and then finds the
    /// row retrieved: `None`. An `open` error rolls everything back and is
    /// returned as `Some(Err(_))`.
    pub async fn retrieve_delivery<T, E>(
        &self,
        id: &str,
        now: i64,
        open: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<Result<T, E>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes the row lock (PostgreSQL) or the database's
        // write lock (SQLite) before anything is read.
        let row = sqlx::query(&format!(
            "UPDATE secret_deliveries SET failed_attempts = failed_attempts - 1 \
             WHERE id = $1 AND {LIVE} AND failed_attempts > 0 RETURNING sealed"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let Some(sealed) = row.try_get::<Option<Vec<u8>>, _>("sealed")? else { return Ok(None) };
        let opened = match open(&sealed) {
            Ok(t) => t,
            Err(e) => return Ok(Some(Err(e))),
        };
        sqlx::query("UPDATE secret_deliveries SET sealed = NULL, retrieved_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Ok(opened)))
    }
}

fn delivery_row(r: &sqlx::any::AnyRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        serial: r.try_get("serial")?,
        code_hash: r.try_get("code_hash")?,
        failed_attempts: r.try_get("failed_attempts")?,
        blocked_at: r.try_get("blocked_at")?,
        retrieved_at: r.try_get("retrieved_at")?,
        superseded_at: r.try_get("superseded_at")?,
        created_at: r.try_get("created_at")?,
    })
}
