//! Operator accounts: RA officers, hotline agents and administrators. An
//! operator authenticates with a bearer token printed once at creation;
//! the registry keeps only its SHA-256, so a database dump holds no usable
//! credential.

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::audit::{self, Event, Outcome};
use crate::clock::Clock;
use crate::error::CaError;
use crate::store::operators::OperatorRow;
use crate::store::{Registry, StoreError};

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages operator accounts.
    Admin,
    /// Validates identities, revokes in person, changes revocation passwords.
    RaOfficer,
    /// Revokes on a phone call with document number and revocation password.
    HotlineAgent,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::RaOfficer, Role::HotlineAgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::RaOfficer => "ra-officer",
            Role::HotlineAgent => "hotline-agent",
        }
    }

    pub fn parse(s: &str) -> Result<Role, CaError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| {
            CaError::InvalidInput(format!("unknown role {s:?}: expected admin, ra-officer or hotline-agent"))
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: Role,
}

impl Operator {
    /// Refuse unless the operator has `role`.
    pub fn require(&self, role: Role) -> Result<(), CaError> {
        if self.role == role {
            Ok(())
        } else {
            Err(CaError::Forbidden(format!("this needs the {role} role; {} is {}", self.name, self.role)))
        }
    }

    /// How revocations and audit entries name this operator.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role, self.name)
    }
}

/// Prefix of every operator token (recognisable in secret scanners).
pub const TOKEN_PREFIX: &str = "qcop_";

/// A bearer token, shown once.
pub struct Token(SecretString);

impl Token {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(redacted)")
    }
}

/// 256 random bits, base64url, after [`TOKEN_PREFIX`].
fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A listed account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<OperatorRow> for Account {
    fn from(r: OperatorRow) -> Self {
        Account { name: r.name, role: r.role, created_at: r.created_at, revoked_at: r.revoked_at }
    }
}

/// Operator accounts over the registry.
#[derive(Debug, Clone)]
pub struct Operators {
    registry: Registry,
    clock: Arc<dyn Clock>,
}

impl Operators {
    pub fn new(registry: Registry, clock: Arc<dyn Clock>) -> Operators {
        Operators { registry, clock }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Create an account; returns its token, which is not stored and cannot be shown again.
    pub async fn add(&self, actor: &str, name: &str, role: Role) -> Result<Token, CaError> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
        {
            return Err(CaError::field("operator name", "1 to 64 characters of a-z, A-Z, 0-9, '.', '-', '_', '@'"));
        }
        let token = new_token();
        let now = self.now();
        let result = self.registry.insert_operator(name, role.as_str(), &token_hash(&token), now).await;
        let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Refused };
        audit::record(
            &self.registry,
            now,
            &Event { actor, action: "operator.add", subject: name, outcome, detail: format!("role={role}") },
        )
        .await;
        match result {
            Ok(()) => Ok(Token(SecretString::new(token))),
            Err(StoreError::DuplicateOperator(n)) => Err(CaError::Conflict(format!(
                "an operator named {n:?} exists or existed; names are not reused so the audit log stays unambiguous"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// A new API token for active operator `name`, replacing the old one
    /// (which stops working at once); shown once, stored only as its hash.
    /// The desk offers it to the operator herself, signed in with her key.
    pub async fn rotate_token(&self, actor: &str, name: &str) -> Result<Token, CaError> {
        let token = new_token();
        let now = self.now();
        let done = self.registry.set_operator_token(name, &token_hash(&token)).await?;
        let outcome = if done { Outcome::Success } else { Outcome::Refused };
        audit::record(
            &self.registry,
            now,
            &Event { actor, action: "operator.token", subject: name, outcome, detail: String::new() },
        )
        .await;
        if done {
            Ok(Token(SecretString::new(token)))
        } else {
            Err(CaError::NotFound(format!("no active operator named {name:?}")))
        }
    }

    /// Revoke an operator's token at once. The last active admin is never
    /// revoked (by herself or through the CLI): nobody could manage
    /// accounts any more.
    pub async fn revoke(&self, actor: &str, name: &str) -> Result<(), CaError> {
        let now = self.now();
        let revoked = self.registry.revoke_operator(name, now).await?;
        let last_admin = !revoked && self.registry.is_active_admin(name).await?;
        let outcome = if revoked { Outcome::Success } else { Outcome::Refused };
        let detail = if last_admin { "the last active admin".to_owned() } else { String::new() };
        audit::record(&self.registry, now, &Event { actor, action: "operator.revoke", subject: name, outcome, detail })
            .await;
        if revoked {
            Ok(())
        } else if last_admin {
            Err(CaError::Conflict(format!(
                "{name:?} is the last active admin; add another admin before revoking this one"
            )))
        } else {
            Err(CaError::NotFound(format!("no active operator named {name:?}")))
        }
    }

    /// The operator a bearer token belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Operator>, CaError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
            return Ok(None);
        }
        let Some(row) = self.registry.operator_by_token(&token_hash(token)).await? else { return Ok(None) };
        let role = Role::parse(&row.role).map_err(|_| CaError::Internal(format!("stored role {:?}", row.role)))?;
        Ok(Some(Operator { name: row.name, role }))
    }

    pub async fn list(&self) -> Result<Vec<Account>, CaError> {
        Ok(self.registry.operators().await?.into_iter().map(Account::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_is_refused() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).ok(), Some(r));
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = Token(SecretString::new("qcop_secret".into()));
        assert!(!format!("{t:?}").contains("secret"));
    }
}
