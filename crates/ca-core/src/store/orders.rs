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
    /// Wrong authorization codes counted since the last right one (attempts
    /// being checked count too).
    pub totp_failed_attempts: i64,
    /// Set by the wrong code that reached the limit; cleared only by an RA officer.
    pub totp_locked_at: Option<i64>,
    pub serial: Option<String>,
    /// E.164, normalised (migration 0015).
    pub phone: Option<String>,
    /// `id-card` or `passport` (migration 0015).
    pub document_type: Option<String>,
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
    pub phone: Option<&'a str>,
    pub document_type: Option<&'a str>,
}

pub(super) const COLUMNS: &str = "id, request_hash, product, years, given_name, surname, email, country, semantics_id, \
     document_key, publish, language, state, created_at, paid_at, identity_due_at, decided_by, rejection_reason, \
     csr, totp_sealed, totp_enrolled_at, totp_last_step, totp_failed_attempts, totp_locked_at, serial, phone, document_type";

impl Registry {
    /// Insert an order in state `awaiting-payment`. Returns false (and
    /// inserts nothing) when the idempotency key is taken.
    pub async fn insert_order(&self, o: &NewOrder<'_>, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO orders (id, idempotency_key, request_hash, product, years, given_name, surname, email, \
             country, semantics_id, document_key, publish, language, state, created_at, updated_at, phone, \
             document_type) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'awaiting-payment', $14, $14, $15, $16)",
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
        .bind(o.phone)
        .bind(o.document_type)
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

    /// Record a payment event once. Marks the order paid if it was
    /// awaiting payment (the 24-hour identity promise starts now); an event
    /// for an order paid before is kept, flagged for refund.
    pub async fn record_payment(
        &self,
        event_id: &str,
        order_id: &str,
        payment_ref: &str,
        now: i64,
        identity_due_at: i64,
    ) -> Result<PaymentRecorded, StoreError> {
        let mark_paid = sqlx::query(
            "UPDATE orders SET state = 'awaiting-identity', paid_at = $1, payment_ref = $2, identity_due_at = $3, \
             updated_at = $1 WHERE id = $4 AND state = 'awaiting-payment'",
        )
        .bind(now)
        .bind(payment_ref)
        .bind(identity_due_at)
        .bind(order_id);
        self.record_payment_event("payment_events", "order_id", event_id, order_id, payment_ref, now, mark_paid).await
    }

    /// Insert payment event `event_id` for `target_id` into `events_table`
    /// (the target's id in column `target_column`) unless it is there
    /// already, and only then run `mark_paid` (a conditional UPDATE), in one
    /// transaction; both write first. When `mark_paid` changes nothing the
    /// target was paid before: the event is flagged `refund_due`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_payment_event(
        &self,
        events_table: &'static str,
        target_column: &'static str,
        event_id: &str,
        target_id: &str,
        payment_ref: &str,
        now: i64,
        mark_paid: AnyQuery<'_>,
    ) -> Result<PaymentRecorded, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO {events_table} (event_id, {target_column}, received_at, payment_ref) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING"
        ))
        .bind(event_id)
        .bind(target_id)
        .bind(now)
        .bind(payment_ref)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            tx.commit().await?;
            return Ok(PaymentRecorded::Duplicate);
        }
        let outcome = if mark_paid.execute(&mut *tx).await?.rows_affected() == 1 {
            PaymentRecorded::Applied
        } else {
            sqlx::query(&format!("UPDATE {events_table} SET refund_due = 1 WHERE event_id = $1"))
                .bind(event_id)
                .execute(&mut *tx)
                .await?;
            PaymentRecorded::AlreadyPaid
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Payments flagged for refund (a second payment, or a cancelled
    /// renewal's) of an order and of the renewals ordered with it, oldest
    /// first.
    pub async fn refunds_due(&self, order_id: &str) -> Result<Vec<RefundDue>, StoreError> {
        let rows = sqlx::query(
            "SELECT event_id, payment_ref, received_at, NULL AS renewal_id FROM payment_events \
             WHERE order_id = $1 AND refund_due = 1 \
             UNION ALL SELECT e.event_id, e.payment_ref, e.received_at, e.renewal_id FROM renewal_payment_events e \
             JOIN renewals r ON r.id = e.renewal_id WHERE r.order_id = $1 AND e.refund_due = 1 \
             ORDER BY received_at, event_id",
        )
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RefundDue {
                    event_id: r.try_get("event_id")?,
                    payment_ref: r.try_get("payment_ref")?,
                    received_at: r.try_get("received_at")?,
                    renewal_id: r.try_get("renewal_id")?,
                })
            })
            .collect()
    }

    /// How many payments (orders and renewals) are flagged for refund.
    pub async fn refunds_due_count(&self) -> Result<i64, StoreError> {
        let r = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM payment_events WHERE refund_due = 1) + \
             (SELECT COUNT(*) FROM renewal_payment_events WHERE refund_due = 1) AS n",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("n")?)
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

    /// CLOUD: store the sealed authenticator secret, once: false if one is
    /// stored already (re-enrolment goes through [`Registry::reset_order_totp`]).
    pub async fn set_order_totp(&self, id: &str, sealed: &[u8], now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_sealed = $1, totp_last_step = NULL, updated_at = $2 \
             WHERE id = $3 AND totp_sealed IS NULL",
        )
        .bind(sealed)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Record a used TOTP step (no code works twice); the first one confirms
    /// enrolment. A right code also gives back every wrong-code count (the
    /// authenticator must not be locked).
    pub async fn use_totp_step(&self, id: &str, step: i64, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_last_step = $1, totp_enrolled_at = COALESCE(totp_enrolled_at, $2), \
             totp_failed_attempts = 0, updated_at = $2 \
             WHERE id = $3 AND (totp_last_step IS NULL OR totp_last_step < $1) AND totp_locked_at IS NULL",
        )
        .bind(step)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Count one authorization-code attempt before the code is checked, so
    /// no more than `lock_after` codes are checked between right ones,
    /// however many arrive at once (one statement). Returns the attempt's
    /// number, or `None` when the authenticator is locked or `lock_after`
    /// attempts are being checked or were wrong.
    pub async fn charge_totp_attempt(&self, id: &str, lock_after: i64) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "UPDATE orders SET totp_failed_attempts = totp_failed_attempts + 1 \
             WHERE id = $1 AND totp_locked_at IS NULL AND totp_failed_attempts < $2 RETURNING totp_failed_attempts",
        )
        .bind(id)
        .bind(lock_after)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(r.try_get("totp_failed_attempts")?)).transpose()
    }

    /// Lock the authenticator (the wrong code that reached the limit); false if it was locked already.
    pub async fn lock_totp(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_locked_at = $1, updated_at = $1 WHERE id = $2 AND totp_locked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// An RA officer unlocks the authenticator: the count starts again.
    /// False if there was nothing to unlock (no secret, or neither locked nor counting).
    pub async fn unlock_totp(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_locked_at = NULL, totp_failed_attempts = 0, updated_at = $1 \
             WHERE id = $2 AND totp_sealed IS NOT NULL AND (totp_locked_at IS NOT NULL OR totp_failed_attempts > 0)",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// An RA officer resets the authenticator of a CLOUD order (approved or
    /// issued): the secret is erased, so the holder can enrol once again.
    /// False if the order is not a CLOUD order in those states.
    pub async fn reset_order_totp(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE orders SET totp_sealed = NULL, totp_enrolled_at = NULL, totp_last_step = NULL, \
             totp_failed_attempts = 0, totp_locked_at = NULL, updated_at = $1 \
             WHERE id = $2 AND product = 'cloud' AND state IN ('approved', 'issued')",
        )
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

    /// Take the sealed kit code once, only while the order's delivery it
    /// belongs to is live and not blocked: returns it and erases it. Writes
    /// first (a conditional UPDATE that takes the row lock on PostgreSQL and
    /// the write lock on SQLite), then reads, then erases, in one
    /// transaction: of concurrent takers the first gets the code and the
    /// others, waiting on the lock, find it erased (`None`), never a
    /// "database is locked" from upgrading a read.
    pub async fn take_kit_code(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "UPDATE orders SET updated_at = updated_at WHERE id = $1 AND kit_code_sealed IS NOT NULL \
             AND EXISTS (SELECT 1 FROM secret_deliveries d WHERE d.order_id = $1 \
                 AND d.retrieved_at IS NULL AND d.superseded_at IS NULL AND d.blocked_at IS NULL)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(None);
        }
        let code: Option<Vec<u8>> = sqlx::query("SELECT kit_code_sealed FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("kit_code_sealed"))
            .transpose()?
            .flatten();
        let Some(code) = code else { return Ok(None) };
        sqlx::query("UPDATE orders SET kit_code_sealed = NULL WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Some(code))
    }

    /// Is a kit code waiting (printed by nobody yet)?
    pub async fn kit_code_waiting(&self, id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM orders WHERE id = $1 AND kit_code_sealed IS NOT NULL")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
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
             AND o.created_at <= $1 \
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

/// What recording a payment event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentRecorded {
    /// New event; the order (or renewal) is now paid.
    Applied,
    /// This event id was recorded before; nothing changed.
    Duplicate,
    /// New event for something paid before: kept and flagged for refund.
    AlreadyPaid,
}

/// A second payment, to be refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDue {
    pub event_id: String,
    pub payment_ref: Option<String>,
    pub received_at: i64,
    /// Set when the payment named a renewal of the order.
    pub renewal_id: Option<String>,
}

/// Fields a transition may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderChange<'a> {
    pub decided_by: Option<&'a str>,
    pub rejection_reason: Option<&'a str>,
    pub identity_due_at: Option<i64>,
    pub serial: Option<&'a str>,
}

pub(super) fn order_row(r: &sqlx::any::AnyRow) -> Result<OrderRow, StoreError> {
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
        totp_failed_attempts: r.try_get("totp_failed_attempts")?,
        totp_locked_at: r.try_get("totp_locked_at")?,
        serial: r.try_get("serial")?,
        phone: r.try_get("phone")?,
        document_type: r.try_get("document_type")?,
    })
}
