//! Operator accounts' SQL.

use sqlx::Row;

use super::{Backend, Registry, StoreError};

/// An operator account as stored (the token only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRow {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Registry {
    /// Add an operator. Fails with `DuplicateOperator` if the name was ever used.
    pub async fn insert_operator(&self, name: &str, role: &str, token_hash: &str, now: i64) -> Result<(), StoreError> {
        let r = sqlx::query("INSERT INTO operators (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(name)
            .bind(role)
            .bind(token_hash)
            .bind(now)
            .execute(&self.pool)
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::DuplicateOperator(name.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace the API token (its hash) of active operator `name`; false if
    /// there is none. The old token stops working at once.
    pub async fn set_operator_token(&self, name: &str, token_hash: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE operators SET token_hash = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(token_hash)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The active (not revoked) operator whose token hashes to `token_hash`.
    pub async fn operator_by_token(&self, token_hash: &str) -> Result<Option<OperatorRow>, StoreError> {
        let row = sqlx::query(
            "SELECT name, role, created_at, revoked_at FROM operators WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| operator_row(&r)).transpose()
    }

    /// Revoke an operator's token; false if no active operator has that
    /// name, or if it is the last active admin (one conditional UPDATE; on
    /// PostgreSQL the active admins are locked while counted, so two admins
    /// revoking each other at once cannot leave none).
    pub async fn revoke_operator(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        };
        let r = sqlx::query(&format!(
            "UPDATE operators SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL AND \
             (role <> 'admin' OR (SELECT COUNT(*) FROM \
              (SELECT name FROM operators WHERE role = 'admin' AND revoked_at IS NULL {lock}) active) > 1)"
        ))
        .bind(now)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Whether `name` is an active admin account.
    pub async fn is_active_admin(&self, name: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM operators WHERE name = $1 AND role = 'admin' AND revoked_at IS NULL")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn operators(&self) -> Result<Vec<OperatorRow>, StoreError> {
        let rows = sqlx::query("SELECT name, role, created_at, revoked_at FROM operators ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(operator_row).collect()
    }
}

fn operator_row(r: &sqlx::any::AnyRow) -> Result<OperatorRow, StoreError> {
    Ok(OperatorRow {
        name: r.try_get("name")?,
        role: r.try_get("role")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}
