//! Retention's SQL (migration 0024): the purge's candidate queries (index
//! range scans, batched), the erasure of one certificate's personal data
//! and of one order's records, restriction (GDPR Art. 18), and the reads of
//! a holder's export (Art. 15/20). Revocations are never touched here.

use sqlx::Row;

use super::audit::AuditRow;
use super::orders::OrderRow;
use super::outbox::OutboxRecord;
use super::renewals::RenewalRow;
use super::{BenchSeries, CertificateRecord, Registry, StoreError};

/// A certificate whose registration-record clock has run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCertificate {
    pub serial: String,
    pub retention_from: i64,
    pub issued_for: Option<String>,
    /// The clock of its renewal's certificate, while that is not erased.
    pub successor_from: Option<i64>,
}

/// Serials per set-based statement of the registration purge.
const ERASE_CHUNK: usize = 500;

/// The registration purge's candidates (without LIMIT).
const DUE_CERTIFICATES: &str = "SELECT c.serial, c.retention_from, c.issued_for, \
     (SELECT s.retention_from FROM renewals r JOIN certificates s ON s.serial = r.new_serial \
      WHERE r.serial = c.serial AND r.state <> 'cancelled' AND s.erased_at IS NULL) AS successor_from \
     FROM certificates c WHERE c.kind = 'end-entity' AND c.erased_at IS NULL AND c.retention_from <= $1 \
     ORDER BY c.retention_from";

/// What keeps a due order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderBlock {
    /// A certificate issued for it still holds registration data.
    Certificate,
    /// A later payment (renewal, refund event) is not yet due.
    Payment,
}

/// A payment event as stored (orders' or renewals').
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEventRow {
    pub event_id: String,
    pub received_at: i64,
    pub refund_due: bool,
    pub payment_ref: Option<String>,
}

/// A certificate of a holder with its retention state.
#[derive(Debug, Clone)]
pub struct HolderCertificateRow {
    pub record: CertificateRecord,
    pub published: bool,
    pub retention_from: Option<i64>,
    pub erased_at: Option<i64>,
    pub restricted_at: Option<i64>,
}

impl Registry {
    /// At most `limit` end-entity certificates not yet erased whose clock
    /// started at or before `cutoff`, oldest first (index
    /// `certificates_retention`), each with the clock of its renewal that
    /// is not erased yet, if any (index `renewals_one_per_certificate`).
    pub async fn retention_due_certificates(&self, cutoff: i64, limit: i64) -> Result<Vec<DueCertificate>, StoreError> {
        let rows =
            sqlx::query(&format!("{DUE_CERTIFICATES} LIMIT $2")).bind(cutoff).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(DueCertificate {
                    serial: r.try_get("serial")?,
                    retention_from: r.try_get("retention_from")?,
                    issued_for: r.try_get("issued_for")?,
                    successor_from: r.try_get("successor_from")?,
                })
            })
            .collect()
    }

    /// One batch of the registration purge, in one transaction: `defer`
    /// moves clocks (a renewal is kept longer), `erase` erases the personal
    /// data of each certificate: names, email, country, subject, the signed
    /// and to-be-signed DER (both hold the name) and listing; its
    /// revocation credential (document HMAC, password hash) and the
    /// personal parts of its audit entries. Serial, issuer, status,
    /// validity and the revocation stay (OCSP, CRL). The order a
    /// certificate was issued for (second of the pair) is released for the
    /// financial purge. Returns how many were erased.
    pub async fn apply_registration_purge(
        &self,
        defer: &[(String, i64)],
        erase: &[(String, Option<String>)],
        now: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        for (serial, from) in defer {
            sqlx::query("UPDATE certificates SET retention_from = $1 WHERE serial = $2 AND retention_from < $1")
                .bind(from)
                .bind(serial)
                .execute(&mut *tx)
                .await?;
        }
        let mut erased = 0;
        // Set-based, a chunk of serials per statement (bind limits: SQLite 32766, PostgreSQL 65535).
        for chunk in erase.chunks(ERASE_CHUNK) {
            let list =
                |first: usize| (first..first + chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "UPDATE certificates SET given_name = NULL, surname = NULL, email = NULL, country = NULL, \
                 semantics_id = NULL, subject_dn = '', tbs_der = $1, der = CASE WHEN der IS NULL THEN NULL ELSE $1 END, \
                 published = 0, erased_at = $2, updated_at = $2 WHERE erased_at IS NULL AND serial IN ({})",
                list(3)
            );
            let mut q = sqlx::query(&sql).bind(Vec::<u8>::new()).bind(now);
            for (serial, _) in chunk {
                q = q.bind(serial);
            }
            erased += q.execute(&mut *tx).await?.rows_affected();
            for sql in [
                format!("DELETE FROM revocation_credentials WHERE serial IN ({})", list(1)),
                format!(
                    "UPDATE audit_log SET personal = NULL, personal_salt = NULL WHERE personal IS NOT NULL AND subject IN ({})",
                    list(1)
                ),
            ] {
                let mut q = sqlx::query(&sql);
                for (serial, _) in chunk {
                    q = q.bind(serial);
                }
                q.execute(&mut *tx).await?;
            }
            for id in chunk.iter().filter_map(|(_, order)| order.as_deref()) {
                sqlx::query("UPDATE orders SET retention_hold = 0 WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(erased)
    }

    /// At most `limit` paid orders not held whose payment was before
    /// `paid_before`, oldest first (index `orders_retention`).
    pub async fn retention_due_orders(&self, paid_before: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM orders WHERE retention_hold = 0 AND paid_at IS NOT NULL AND paid_at < $1 \
             ORDER BY paid_at LIMIT $2",
        )
        .bind(paid_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Why order `id` must stay although its own payment is due, if it must.
    pub async fn order_retention_block(&self, id: &str, paid_before: i64) -> Result<Option<OrderBlock>, StoreError> {
        let cert = sqlx::query(
            "SELECT 1 AS x FROM certificates WHERE issued_for = $1 AND status <> 'aborted' AND erased_at IS NULL",
        )
        .bind(format!("order:{id}"))
        .fetch_optional(&self.pool)
        .await?;
        if cert.is_some() {
            return Ok(Some(OrderBlock::Certificate));
        }
        let later = sqlx::query(
            "SELECT 1 AS x FROM renewals r WHERE r.order_id = $1 AND (r.paid_at >= $2 OR EXISTS \
             (SELECT 1 FROM renewal_payment_events e WHERE e.renewal_id = r.id AND e.received_at >= $2)) \
             UNION ALL SELECT 1 AS x FROM payment_events e WHERE e.order_id = $1 AND e.received_at >= $2",
        )
        .bind(id)
        .bind(paid_before)
        .fetch_optional(&self.pool)
        .await?;
        Ok(later.map(|_| OrderBlock::Payment))
    }

    /// Keep order `id` out of the financial purge until its certificate's
    /// erasure releases it.
    pub async fn hold_order(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET retention_hold = 1 WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Delete order `id` with its payment events, renewals (and theirs),
    /// secret deliveries and the personal parts of their audit entries.
    pub async fn delete_order_records(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let renewals: Vec<String> = sqlx::query("SELECT id FROM renewals WHERE order_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("id"))
            .collect::<Result<_, _>>()?;
        for subject in renewals.iter().map(String::as_str).chain([id]) {
            sqlx::query(
                "UPDATE audit_log SET personal = NULL, personal_salt = NULL WHERE subject = $1 AND personal IS NOT NULL",
            )
            .bind(subject)
            .execute(&mut *tx)
            .await?;
        }
        for rid in &renewals {
            sqlx::query("DELETE FROM renewal_payment_events WHERE renewal_id = $1").bind(rid).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM renewals WHERE order_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM secret_deliveries WHERE order_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM payment_events WHERE order_id = $1").bind(id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM orders WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Restrict certificate `serial` (GDPR Art. 18): out of the public
    /// directory, no more reminder mails; kept.
    pub async fn restrict_certificate(&self, serial: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE certificates SET restricted_at = COALESCE(restricted_at, $1), published = 0, reminder_stage = 3 \
             WHERE serial = $2",
        )
        .bind(now)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Restrict order `id` (GDPR Art. 18).
    pub async fn restrict_order(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE orders SET restricted_at = COALESCE(restricted_at, $1), publish = 0 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When order `id` was restricted, if it was.
    pub async fn order_restricted_at(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let r =
            sqlx::query("SELECT restricted_at FROM orders WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        Ok(r.map(|r| r.try_get::<Option<i64>, _>("restricted_at")).transpose()?.flatten())
    }

    /// Delete the rows of mail already sent to `recipient` (no duty keeps them).
    pub async fn delete_sent_mail_to(&self, recipient: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM outbox WHERE recipient = $1 AND sent_at IS NOT NULL")
            .bind(recipient)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Orders whose ID document has keyed hash `document_key`.
    pub async fn orders_by_document(&self, document_key: &str) -> Result<Vec<OrderRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM orders WHERE document_key = $1 ORDER BY created_at",
            super::orders::COLUMNS
        ))
        .bind(document_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::orders::order_row).collect()
    }

    /// Serials whose revocation credential names `document_key`.
    pub async fn serials_by_document(&self, document_key: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT serial FROM revocation_credentials WHERE document_key = $1 ORDER BY serial")
            .bind(document_key)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }

    /// Serials issued for `issued_for` (`order:<id>`, `renewal:<id>`).
    pub async fn serials_issued_for(&self, issued_for: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT serial FROM certificates WHERE issued_for = $1")
            .bind(issued_for)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("serial")?)).collect()
    }

    /// A certificate with its retention columns.
    pub async fn holder_certificate(&self, serial: &str) -> Result<Option<HolderCertificateRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {}, published, retention_from, erased_at, restricted_at FROM certificates WHERE serial = $1",
            super::CERT_COLUMNS
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(HolderCertificateRow {
                record: super::record(&r)?,
                published: r.try_get::<i64, _>("published")? != 0,
                retention_from: r.try_get("retention_from")?,
                erased_at: r.try_get("erased_at")?,
                restricted_at: r.try_get("restricted_at")?,
            })
        })
        .transpose()
    }

    /// Payment events of order `id`.
    pub async fn payment_events_of(&self, id: &str) -> Result<Vec<PaymentEventRow>, StoreError> {
        self.events("SELECT event_id, received_at, refund_due, payment_ref FROM payment_events WHERE order_id = $1", id)
            .await
    }

    /// Payment events of renewal `id`.
    pub async fn renewal_payment_events_of(&self, id: &str) -> Result<Vec<PaymentEventRow>, StoreError> {
        self.events(
            "SELECT event_id, received_at, refund_due, payment_ref FROM renewal_payment_events WHERE renewal_id = $1",
            id,
        )
        .await
    }

    async fn events(&self, sql: &str, id: &str) -> Result<Vec<PaymentEventRow>, StoreError> {
        let rows = sqlx::query(&format!("{sql} ORDER BY received_at")).bind(id).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(PaymentEventRow {
                    event_id: r.try_get("event_id")?,
                    received_at: r.try_get("received_at")?,
                    refund_due: r.try_get::<i64, _>("refund_due")? != 0,
                    payment_ref: r.try_get("payment_ref")?,
                })
            })
            .collect()
    }

    /// Renewals of order `id` or of certificate `serial`.
    pub async fn renewals_of(
        &self,
        order_id: Option<&str>,
        serial: Option<&str>,
    ) -> Result<Vec<RenewalRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM renewals WHERE order_id = $1 OR serial = $2 ORDER BY created_at",
            super::renewals::COLUMNS
        ))
        .bind(order_id)
        .bind(serial)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::renewals::renewal_row).collect()
    }

    /// Mail rows addressed to `recipient`, oldest first.
    pub async fn mails_to(&self, recipient: &str) -> Result<Vec<OutboxRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM outbox WHERE recipient = $1 ORDER BY id",
            super::outbox::RECORD_COLUMNS
        ))
        .bind(recipient)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::outbox::outbox_record).collect()
    }

    /// Every audit entry about `subject`, oldest first.
    pub async fn audit_of(&self, subject: &str) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM audit_log WHERE subject = $1 ORDER BY seq",
            super::audit::AUDIT_COLUMNS
        ))
        .bind(subject)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(super::audit::audit_row).collect()
    }

    /// Load generator for `qcert bench purge`: `n` issued end-entity
    /// certificates under `issuer_serial` with holder data, every
    /// `due_every`-th with its clock at `due_from` (the others at
    /// `later_from`), made inside the database. Not for production registries.
    #[doc(hidden)]
    pub async fn fill_bench_retention(
        &self,
        issuer_serial: &str,
        n: i64,
        due_every: i64,
        due_from: i64,
        later_from: i64,
    ) -> Result<(), StoreError> {
        let BenchSeries { seq, serial, blob, from } = self.bench_series("5e");
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "{seq}INSERT INTO certificates (serial, issuer_serial, kind, profile, status, subject_dn, given_name, surname, \
             email, country, semantics_id, not_before, not_after, key_id, tbs_der, der, created_at, updated_at, \
             retention_from) \
             SELECT {serial}, $2, 'end-entity', 'qcp-n-qscd', 'issued', 'CN=Bench Holder', 'Bench', 'Holder', \
             'bench@example.eu', 'RO', 'PNORO-1900101123457', $5 - 31536000, \
             CASE WHEN i % $3 = 0 THEN $4 ELSE $5 + (i % 100000) END, 'bench', {blob}, {blob}, $4, $4, \
             CASE WHEN i % $3 = 0 THEN $4 ELSE $5 + (i % 100000) END {from}"
        ))
        .bind(n)
        .bind(issuer_serial)
        .bind(due_every)
        .bind(due_from)
        .bind(later_from)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// The database's plan for the registration purge's candidate query
    /// (benchmark report).
    #[doc(hidden)]
    pub async fn explain_retention(&self, cutoff: i64, limit: i64) -> Result<String, StoreError> {
        let sql = DUE_CERTIFICATES.replace("$1", &cutoff.to_string());
        self.explain(&format!("{sql} LIMIT {limit}")).await
    }
}

impl Registry {
    /// Delete the login and signing credentials past their time, whatever
    /// they were used for: desk sessions (`expires_at`, the 12 h cap or a
    /// half-login's 10 min; idle ones reach it at the latest), desk
    /// enrolment links (72 h, used or not: an abandoned first step keeps a
    /// password hash), CSC bearer sessions, SADs expired or used up, and
    /// rate-limit events out of their window.
    /// They are refused once expired already; this keeps them from piling
    /// up between logins. How many rows went, all tables together.
    pub async fn purge_expired_credentials(&self, now: i64) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for sql in [
            "DELETE FROM desk_sessions WHERE expires_at <= $1",
            "DELETE FROM desk_enrolments WHERE expires_at <= $1",
            "DELETE FROM csc_sessions WHERE expires_at <= $1",
            "DELETE FROM csc_sads WHERE expires_at <= $1 OR remaining <= 0",
        ] {
            deleted += sqlx::query(sql).bind(now).execute(&self.pool).await?.rows_affected();
        }
        Ok(deleted + self.purge_expired_rate_events(now).await?)
    }
}
