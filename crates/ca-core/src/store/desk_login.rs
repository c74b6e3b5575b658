//! The operators' desk login's SQL (migration 0040): desk accounts
//! (password hash, TOTP), security keys, enrolment links and sessions.
//! Links and session ids arrive here only as SHA-256; every one-time step
//! (using a link, taking a challenge, accepting a TOTP step) is one
//! conditional UPDATE or DELETE, never read-then-write.

use sqlx::Row;

use super::{Registry, StoreError};

/// An operator's desk account joined to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskAccountRow {
    pub operator: String,
    pub role: String,
    pub revoked_at: Option<i64>,
    pub user_handle: String,
    pub password_hash: Option<String>,
    pub totp_allowed: bool,
    pub totp_sealed: Option<Vec<u8>>,
    pub totp_pending_sealed: Option<Vec<u8>>,
    pub totp_last_step: Option<i64>,
    pub language: String,
    pub enrolled_at: Option<i64>,
}

/// What the admin's account list shows per operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskOverviewRow {
    pub operator: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub enrolled_at: Option<i64>,
    pub keys: i64,
    pub totp_allowed: bool,
    pub totp_enrolled: bool,
    /// Expiry of the live (unused, unexpired) enrolment link, if any.
    pub link_expires_at: Option<i64>,
}

/// A live enrolment link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRow {
    pub operator: String,
    pub expires_at: i64,
    pub password_hash: Option<String>,
    pub registration: Option<String>,
}

/// A session joined to its (active) operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskSessionRow {
    pub operator: String,
    pub role: String,
    pub language: String,
    pub stage: String,
    pub challenge: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// The first step of an enrolment as completed by the key registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedEnrolment {
    pub operator: String,
}

/// Why an enrolment could not be completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrolmentRefusal {
    /// The link is unknown, used, expired, or its password step is missing.
    NotLive,
    /// The credential id is registered already (to this or another operator).
    KeyTaken,
}

const ACCOUNT_COLUMNS: &str = "a.operator, o.role, o.revoked_at, a.user_handle, a.password_hash, a.totp_allowed, \
     a.totp_sealed, a.totp_pending_sealed, a.totp_last_step, a.language, a.enrolled_at";

impl Registry {
    /// Create the desk account of operator `name` (if it has none) with
    /// `user_handle`; false if the operator does not exist.
    pub async fn ensure_desk_account(&self, name: &str, user_handle: &str, now: i64) -> Result<bool, StoreError> {
        let exists =
            sqlx::query("SELECT 1 FROM operators WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO desk_accounts (operator, user_handle, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (operator) DO NOTHING",
        )
        .bind(name)
        .bind(user_handle)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(true)
    }

    /// The desk account of operator `name` (active or not).
    pub async fn desk_account(&self, name: &str) -> Result<Option<DeskAccountRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM desk_accounts a JOIN operators o ON o.name = a.operator WHERE a.operator = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| account_row(&r)).transpose()
    }

    /// Every operator with the state of its desk account, by name.
    pub async fn desk_overview(&self, now: i64) -> Result<Vec<DeskOverviewRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT o.name, o.role, o.created_at, o.revoked_at, a.enrolled_at, \
             COALESCE(a.totp_allowed, 0) AS totp_allowed, \
             CAST(CASE WHEN a.totp_sealed IS NULL THEN 0 ELSE 1 END AS BIGINT) AS totp_enrolled, \
             (SELECT COUNT(*) FROM desk_keys k WHERE k.operator = o.name) AS keys, \
             (SELECT MAX(e.expires_at) FROM desk_enrolments e \
               WHERE e.operator = o.name AND e.used_at IS NULL AND e.expires_at > $1) AS link_expires_at \
             FROM operators o LEFT JOIN desk_accounts a ON a.operator = o.name ORDER BY o.name",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeskOverviewRow {
                    operator: r.try_get("name")?,
                    role: r.try_get("role")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    enrolled_at: r.try_get("enrolled_at")?,
                    keys: r.try_get("keys")?,
                    totp_allowed: r.try_get::<i64, _>("totp_allowed")? != 0,
                    totp_enrolled: r.try_get::<i64, _>("totp_enrolled")? != 0,
                    link_expires_at: r.try_get("link_expires_at")?,
                })
            })
            .collect()
    }

    /// Store a new enrolment link for `operator`, dropping its unused
    /// links. With `reset`, also its password, keys, TOTP secret and
    /// sessions (one transaction). False if no active operator has that name.
    pub async fn create_desk_enrolment(
        &self,
        operator: &str,
        token_hash: &str,
        created_by: &str,
        now: i64,
        expires_at: i64,
        reset: bool,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writes first (SQLite's write lock, PostgreSQL's row lock).
        let live = sqlx::query(
            "UPDATE desk_accounts SET updated_at = $1 WHERE operator = $2 AND EXISTS \
             (SELECT 1 FROM operators WHERE name = $2 AND revoked_at IS NULL)",
        )
        .bind(now)
        .bind(operator)
        .execute(&mut *tx)
        .await?;
        if live.rows_affected() != 1 {
            return Ok(false);
        }
        if reset {
            sqlx::query(
                "UPDATE desk_accounts SET password_hash = NULL, totp_sealed = NULL, totp_pending_sealed = NULL, \
                 totp_last_step = NULL, enrolled_at = NULL WHERE operator = $1",
            )
            .bind(operator)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM desk_keys WHERE operator = $1").bind(operator).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM desk_sessions WHERE operator = $1").bind(operator).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM desk_enrolments WHERE operator = $1 AND used_at IS NULL")
            .bind(operator)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO desk_enrolments (token_hash, operator, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(operator)
        .bind(created_by)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The live enrolment link hashing to `token_hash` (unused, unexpired,
    /// of an active operator).
    pub async fn desk_enrolment(&self, token_hash: &str, now: i64) -> Result<Option<EnrolmentRow>, StoreError> {
        let row = sqlx::query(
            "SELECT e.operator, e.expires_at, e.password_hash, e.registration FROM desk_enrolments e \
             JOIN operators o ON o.name = e.operator \
             WHERE e.token_hash = $1 AND e.used_at IS NULL AND e.expires_at > $2 AND o.revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(EnrolmentRow {
                operator: r.try_get("operator")?,
                expires_at: r.try_get("expires_at")?,
                password_hash: r.try_get("password_hash")?,
                registration: r.try_get("registration")?,
            })
        })
        .transpose()
    }

    /// Keep the first step (password hash, registration state) on a live link.
    pub async fn set_desk_enrolment_step(
        &self,
        token_hash: &str,
        password_hash: &str,
        registration: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_enrolments SET password_hash = $1, registration = $2 \
             WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $4",
        )
        .bind(password_hash)
        .bind(registration)
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Use the link once: its password becomes the account's, `passkey`
    /// its only key, and the operator's sessions end (one transaction,
    /// starting with the conditional UPDATE that uses the link).
    pub async fn complete_desk_enrolment(
        &self,
        token_hash: &str,
        credential_id: &str,
        passkey: &str,
        now: i64,
    ) -> Result<Result<CompletedEnrolment, EnrolmentRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE desk_enrolments SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             AND password_hash IS NOT NULL AND registration IS NOT NULL \
             AND EXISTS (SELECT 1 FROM operators o WHERE o.name = desk_enrolments.operator AND o.revoked_at IS NULL) \
             RETURNING operator, password_hash",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(Err(EnrolmentRefusal::NotLive)) };
        let operator: String = row.try_get("operator")?;
        let password_hash: String = row.try_get("password_hash")?;
        sqlx::query("UPDATE desk_enrolments SET password_hash = NULL, registration = NULL WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE desk_accounts SET password_hash = $1, enrolled_at = $2, updated_at = $2 WHERE operator = $3",
        )
        .bind(&password_hash)
        .bind(now)
        .bind(&operator)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM desk_keys WHERE operator = $1").bind(&operator).execute(&mut *tx).await?;
        let inserted =
            sqlx::query("INSERT INTO desk_keys (credential_id, operator, passkey, created_at) VALUES ($1, $2, $3, $4)")
                .bind(credential_id)
                .bind(&operator)
                .bind(passkey)
                .bind(now)
                .execute(&mut *tx)
                .await;
        match inserted {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(Err(EnrolmentRefusal::KeyTaken)),
            Err(e) => return Err(e.into()),
        }
        sqlx::query("DELETE FROM desk_sessions WHERE operator = $1").bind(&operator).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(Ok(CompletedEnrolment { operator }))
    }

    /// The security keys (Passkey JSON) of `operator`.
    pub async fn desk_keys(&self, operator: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT passkey FROM desk_keys WHERE operator = $1 ORDER BY created_at, credential_id")
            .bind(operator)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("passkey")?)).collect()
    }

    /// Store a key's new state (its counter) after it was used.
    pub async fn update_desk_key(
        &self,
        operator: &str,
        credential_id: &str,
        passkey: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE desk_keys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3 AND operator = $4")
            .bind(passkey)
            .bind(now)
            .bind(credential_id)
            .bind(operator)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Store a session (its id's SHA-256) and drop sessions past their
    /// limits (`idle_before`: active sessions last seen at or before it).
    pub async fn insert_desk_session(
        &self,
        id_hash: &str,
        operator: &str,
        stage: &str,
        now: i64,
        expires_at: i64,
        idle_before: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM desk_sessions WHERE expires_at <= $1 OR (stage = 'active' AND last_seen_at <= $2)")
            .bind(now)
            .bind(idle_before)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO desk_sessions (id_hash, operator, stage, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(id_hash)
        .bind(operator)
        .bind(stage)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The unexpired session hashing to `id_hash` of an active operator.
    /// Idle limits are the caller's (`last_seen_at`).
    pub async fn desk_session(&self, id_hash: &str, now: i64) -> Result<Option<DeskSessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT s.operator, o.role, COALESCE(a.language, 'en') AS language, s.stage, s.challenge, s.created_at, \
             s.last_seen_at, s.expires_at FROM desk_sessions s \
             JOIN operators o ON o.name = s.operator AND o.revoked_at IS NULL \
             LEFT JOIN desk_accounts a ON a.operator = s.operator \
             WHERE s.id_hash = $1 AND s.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(DeskSessionRow {
                operator: r.try_get("operator")?,
                role: r.try_get("role")?,
                language: r.try_get("language")?,
                stage: r.try_get("stage")?,
                challenge: r.try_get("challenge")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Mark an active session seen at `now` (only moves forward).
    pub async fn touch_desk_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE desk_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Put a WebAuthn challenge on a pending session.
    pub async fn set_desk_challenge(&self, id_hash: &str, challenge: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_sessions SET challenge = $1 WHERE id_hash = $2 AND stage = 'pending' AND expires_at > $3",
        )
        .bind(challenge)
        .bind(id_hash)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Take the pending session's challenge once: true if it was still
    /// `challenge` (compare and clear in one UPDATE).
    pub async fn take_desk_challenge(&self, id_hash: &str, challenge: &str, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_sessions SET challenge = NULL \
             WHERE id_hash = $1 AND stage = 'pending' AND challenge = $2 AND expires_at > $3",
        )
        .bind(id_hash)
        .bind(challenge)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Replace the pending session by an active one under a new id (so an
    /// id seen before the second factor is worth nothing after it). False
    /// if the pending session is gone or its operator inactive.
    pub async fn promote_desk_session(
        &self,
        pending_hash: &str,
        active_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM desk_sessions WHERE id_hash = $1 AND stage = 'pending' AND expires_at > $2 \
             AND EXISTS (SELECT 1 FROM operators o WHERE o.name = desk_sessions.operator AND o.revoked_at IS NULL) \
             RETURNING operator",
        )
        .bind(pending_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let operator: String = row.try_get("operator")?;
        sqlx::query(
            "INSERT INTO desk_sessions (id_hash, operator, stage, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, 'active', $3, $3, $4)",
        )
        .bind(active_hash)
        .bind(&operator)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// End a session; the operator it belonged to, if it existed.
    pub async fn delete_desk_session(&self, id_hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("DELETE FROM desk_sessions WHERE id_hash = $1 RETURNING operator")
            .bind(id_hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get("operator")?)).transpose()
    }

    /// End every session of `operator`; how many there were.
    pub async fn delete_desk_sessions_of(&self, operator: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM desk_sessions WHERE operator = $1").bind(operator).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    /// Allow or forbid TOTP for `operator`; forbidding erases its secrets.
    pub async fn set_desk_totp_allowed(&self, operator: &str, allowed: bool, now: i64) -> Result<bool, StoreError> {
        let sql = if allowed {
            "UPDATE desk_accounts SET totp_allowed = 1, updated_at = $1 WHERE operator = $2"
        } else {
            "UPDATE desk_accounts SET totp_allowed = 0, totp_sealed = NULL, totp_pending_sealed = NULL, \
             totp_last_step = NULL, updated_at = $1 WHERE operator = $2"
        };
        let r = sqlx::query(sql).bind(now).bind(operator).execute(&self.pool).await?;
        Ok(r.rows_affected() == 1)
    }

    /// Keep a TOTP secret shown to the operator until a code confirms it.
    pub async fn set_desk_totp_pending(&self, operator: &str, sealed: &[u8], now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_accounts SET totp_pending_sealed = $1, updated_at = $2 \
             WHERE operator = $3 AND totp_allowed = 1",
        )
        .bind(sealed)
        .bind(now)
        .bind(operator)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Make the pending secret (still `pending`) the account's TOTP secret,
    /// with `step` used.
    pub async fn confirm_desk_totp(
        &self,
        operator: &str,
        pending: &[u8],
        sealed: &[u8],
        step: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_accounts SET totp_sealed = $1, totp_pending_sealed = NULL, totp_last_step = $2, updated_at = $3 \
             WHERE operator = $4 AND totp_allowed = 1 AND totp_pending_sealed = $5",
        )
        .bind(sealed)
        .bind(step)
        .bind(now)
        .bind(operator)
        .bind(pending)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Accept TOTP step `step` once: true if it is after the last one used.
    pub async fn use_desk_totp_step(&self, operator: &str, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE desk_accounts SET totp_last_step = $1 \
             WHERE operator = $2 AND totp_allowed = 1 AND totp_sealed IS NOT NULL \
             AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(operator)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The desk language of `operator` (`en`, `ro`).
    pub async fn set_desk_language(&self, operator: &str, language: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE desk_accounts SET language = $1, updated_at = $2 WHERE operator = $3 AND language <> $1")
            .bind(language)
            .bind(now)
            .bind(operator)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn account_row(r: &sqlx::any::AnyRow) -> Result<DeskAccountRow, StoreError> {
    Ok(DeskAccountRow {
        operator: r.try_get("operator")?,
        role: r.try_get("role")?,
        revoked_at: r.try_get("revoked_at")?,
        user_handle: r.try_get("user_handle")?,
        password_hash: r.try_get("password_hash")?,
        totp_allowed: r.try_get::<i64, _>("totp_allowed")? != 0,
        totp_sealed: r.try_get("totp_sealed")?,
        totp_pending_sealed: r.try_get("totp_pending_sealed")?,
        totp_last_step: r.try_get("totp_last_step")?,
        language: r.try_get("language")?,
        enrolled_at: r.try_get("enrolled_at")?,
    })
}
