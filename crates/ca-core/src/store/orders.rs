//! Orders' SQL. State changes are conditional UPDATEs (`WHERE state = …`),
//! so two officers approving at once, or a webhook delivered twice, change
//! an order once.

use sqlx::Row;

use super::{AnyQuery, Registry, StoreError};

/// An order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub id: String,
    pub request_hash: String,
    pub product: String,
    pub years: i64,
    pub given_name: String,
    pub surname: String,
    pub email: String,
    pub country: String,
    pub semantics_id: String,
    pub document_key: String,
    pub publish: bool,
    pub language: String,
    pub state: String,
    pub created_at: i64,
    pub paid_at: Option<i64>,
    pub identity_due_at: Option<i64>,
    pub decided_by: Option<String>,
    pub rejection_reason: Option<String>,
    pub csr: Option<Vec<u8>>,
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_enrolled_at: Option<i64>,
    pub totp_last_step: Option<i64>,
    pub serial: Option<String>,
}

/// A new order's fields.
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub request_hash: &'a str,
    pub product: &'a str,
    pub years: i64,
    pub given_name: &'a str,
    pub surname: &'a str,
    pub email: &'a str,
    pub country: &'a str,
    pub semantics_id: &'a str,
    pub document_key: &'a str,
    pub publish: bool,
    pub language: &'a str,
}

const COLUMNS: &str = "id, request_hash, product, years, given_name, surname, email, country, semantics_id, \
     document_key, publish, language, state, created_at, paid_at, identity_due_at, decided_by, rejection_reason, \
     csr, totp_sealed, totp_enrolled_at, totp_last_step, serial";

impl Registry {
    /// Insert an order in state `awaiting-payment`. Returns false (and
    /// inserts nothing) when the idempotency key is taken.
    pub async fn insert_order(&self, o: &NewOrder<'_>, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO orders (id, idempotency_key, request_hash, product, years, given_name, surname, email, \
             country, semantics_id, document_key, publish, language, state, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'awaiting-payment', $14, $14)",
        )
        .bind(o.id)
        .bind(o.idempotency_key)
        .bind(o.request_hash)
        .bind(o.product)
        .bind(o.years)
        .bind(o.given_name)
        .bind(o.surname)
        .bind(o.email)
        .bind(o.country)
        .bind(o.semantics_id)
        .bind(o.document_key)
        .bind(i64::from(o.publish))
        .bind(o.language)
        .bind(now)
        .execute(&self.pool)
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && o.idempotency_key.is_some() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn order(&self, id: &str) -> Result<Option<OrderRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_row(&r)).transpose()
    }

    /// The id of the order whose certificate is `serial`.
    pub async fn order_by_serial(&self, serial: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT id FROM orders WHERE serial = $1").bind(serial).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    pub async fn order_by_idempotency_key(&self, key: &str) -> Result<Option<OrderRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM orders WHERE idempotency_key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| order_row(&r)).transpose()
    }

    /// Record a payment event once; false if the event was seen before.
    /// Marks the order paid if it was awaiting payment (the 24-hour
    /// identity promise starts now).
    pub async fn record_payment(
        &self,
        event_id: &str,
        order_id: &str,
        payment_ref: &str,
        now: i64,
        identity_due_at: i64,
    ) -> Result<bool, StoreError> {
        let mark_paid = sqlx::query(
            "UPDATE orders SET state = 'awaiting-identity', paid_at = $1, payment_ref = $2, identity_due_at = $3, \
             updated_at = $1 WHERE id = $4 AND state = 'awaiting-payment'",
        )
        .bind(now)
        .bind(payment_ref)
        .bind(identity_due_at)
        .bind(order_id);
        self.record_payment_event("payment_events", "order_id", event_id, order_id, now, mark_paid).await
    }

    /// Insert payment event `event_id` for `target_id` into `events_table`
    /// (the target's id in column `target_column`) unless it is there
    /// already, and only then run `mark_paid` (a conditional UPDATE), in one
    /// transaction. True if the event was new.
    pub(super) async fn record_payment_event(
        &self,
        events_table: &'static str,
        target_column: &'static str,
        event_id: &str,
        target_id: &str,
        now: i64,
        mark_paid: AnyQuery<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO {events_table} (event_id, {target_column}, received_at) VALUES ($1, $2, $3) \
             ON CONFLICT (event_id) DO NOTHING"
        ))
        .bind(event_id)
        .bind(target_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            mark_paid.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }

    /// Move an order from `from` to `to`; false if it was not in `from`.
    pub async fn transition_order(
        &self,
        id: &str,
        from: &str,
        to: &str,
        change: OrderChange<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET state = $1, updated_at = $2, \
             decided_by = COALESCE($3, decided_by), decided_at = CASE WHEN $3 IS NULL THEN decided_at ELSE $2 END, \
             rejection_reason = CASE WHEN $1 = 'rejected' THEN $4 ELSE rejection_reason END, \
             identity_due_at = COALESCE($5, identity_due_at), serial = COALESCE($6, serial) \
             WHERE id = $7 AND state = $8",
        )
        .bind(to)
        .bind(now)
        .bind(change.decided_by)
        .bind(change.rejection_reason)
        .bind(change.identity_due_at)
        .bind(change.serial)
        .bind(id)
        .bind(from)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claim an order for issuance: `approved`, or `issuing` untouched since
    /// `stale_before` (an interrupted issuance). False if not claimable.
    pub async fn claim_order_issuance(&self, id: &str, now: i64, stale_before: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET state = 'issuing', updated_at = $1 WHERE id = $2 \
             AND (state = 'approved' OR (state = 'issuing' AND updated_at < $3))",
        )
        .bind(now)
        .bind(id)
        .bind(stale_before)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Orders left `issuing` since before `stale_before`: (id, product).
    pub async fn stalled_issuances(&self, stale_before: i64) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, product FROM orders WHERE state = 'issuing' AND updated_at < $1 LIMIT 100")
            .bind(stale_before)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("product")?))).collect()
    }

    /// Store the holder's CSR (TOKEN) while the order is not issued yet.
    pub async fn set_order_csr(&self, id: &str, csr: &[u8], key_id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET csr = $1, csr_key_id = $2, updated_at = $3 \
             WHERE id = $4 AND state NOT IN ('issuing', 'issued')",
        )
        .bind(csr)
        .bind(key_id)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Is this public key (by key identifier) certified, or waiting in
    /// another order or a renewal?
    pub async fn key_in_use(&self, key_id: &str, except_order: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM certificates WHERE key_id = $1 AND status <> 'aborted') + \
             (SELECT COUNT(*) FROM orders WHERE csr_key_id = $1 AND id <> $2 AND state <> 'issued') + \
             (SELECT COUNT(*) FROM renewals WHERE csr_key_id = $1 AND state NOT IN ('issued', 'cancelled')) AS n",
        )
        .bind(key_id)
        .bind(except_order)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// CLOUD: store the sealed authenticator secret (until enrolment is confirmed).
    pub async fn set_order_totp(&self, id: &str, sealed: &[u8], now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_sealed = $1, totp_last_step = NULL, updated_at = $2 \
             WHERE id = $3 AND totp_enrolled_at IS NULL",
        )
        .bind(sealed)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record a used TOTP step (no code works twice); the first one confirms enrolment.
    pub async fn use_totp_step(&self, id: &str, step: i64, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_last_step = $1, totp_enrolled_at = COALESCE(totp_enrolled_at, $2), updated_at = $2 \
             WHERE id = $3 AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn set_kit_code(&self, id: &str, sealed: Option<&[u8]>) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET kit_code_sealed = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Take the sealed kit code once: returns it and erases it. Of two
    /// concurrent takers only the one whose UPDATE erased it gets it.
    pub async fn take_kit_code(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let code: Option<Vec<u8>> = sqlx::query("SELECT kit_code_sealed FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("kit_code_sealed"))
            .transpose()?
            .flatten();
        let Some(code) = code else { return Ok(None) };
        let erased =
            sqlx::query("UPDATE orders SET kit_code_sealed = NULL WHERE id = $1 AND kit_code_sealed IS NOT NULL")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        tx.commit().await?;
        Ok(erased.then_some(code))
    }

    /// Unpaid orders for `email` (compared in lower case) created after `since`.
    pub async fn open_unpaid_orders(&self, email: &str, since: i64) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM orders WHERE lower(email) = lower($1) AND state = 'awaiting-payment' \
             AND created_at > $2",
        )
        .bind(email)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("n")?)
    }

    /// Delete order `id` if it is still unpaid (an order refused after its
    /// insertion, e.g. over the cap of open unpaid orders). True if deleted.
    pub async fn delete_unpaid_order(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM orders WHERE id = $1 AND state = 'awaiting-payment'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Delete at most `limit` orders still unpaid that were created before
    /// `created_before`, oldest first (index `orders_unpaid`); an order
    /// with a recorded payment event is kept. Returns how many.
    pub async fn delete_expired_unpaid_orders(&self, created_before: i64, limit: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM orders WHERE id IN (SELECT o.id FROM orders o WHERE o.state = 'awaiting-payment' \
             AND o.created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM payment_events e WHERE e.order_id = o.id) \
             ORDER BY o.created_at LIMIT $2)",
        )
        .bind(created_before)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Orders waiting for an RA officer, oldest promise first.
    pub async fn identity_queue(&self, limit: i64) -> Result<Vec<OrderRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM orders WHERE state = 'awaiting-identity' ORDER BY identity_due_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(order_row).collect()
    }

    /// (waiting for identity, of which past their promise at `now`).
    pub async fn identity_backlog(&self, now: i64) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS waiting, COALESCE(SUM(CASE WHEN identity_due_at < $1 THEN 1 ELSE 0 END), 0) AS overdue \
             FROM orders WHERE state = 'awaiting-identity'",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok((r.try_get("waiting")?, r.try_get("overdue")?))
    }
}

/// Fields a transition may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderChange<'a> {
    pub decided_by: Option<&'a str>,
    pub rejection_reason: Option<&'a str>,
    pub identity_due_at: Option<i64>,
    pub serial: Option<&'a str>,
}

fn order_row(r: &sqlx::any::AnyRow) -> Result<OrderRow, StoreError> {
    Ok(OrderRow {
        id: r.try_get("id")?,
        request_hash: r.try_get("request_hash")?,
        product: r.try_get("product")?,
        years: r.try_get("years")?,
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        email: r.try_get("email")?,
        country: r.try_get("country")?,
        semantics_id: r.try_get("semantics_id")?,
        document_key: r.try_get("document_key")?,
        publish: r.try_get::<i64, _>("publish")? != 0,
        language: r.try_get("language")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        paid_at: r.try_get("paid_at")?,
        identity_due_at: r.try_get("identity_due_at")?,
        decided_by: r.try_get("decided_by")?,
        rejection_reason: r.try_get("rejection_reason")?,
        csr: r.try_get("csr")?,
        totp_sealed: r.try_get("totp_sealed")?,
        totp_enrolled_at: r.try_get("totp_enrolled_at")?,
        totp_last_step: r.try_get("totp_last_step")?,
        serial: r.try_get("serial")?,
    })
}
