//! The tamper-evident audit log. Every lifecycle event (issuance,
//! revocation, password change, failed hotline attempt, lock, operator
//! change) is appended with actor, time, subject and outcome; each entry's
//! hash covers its fields and the previous entry's hash, so editing,
//! removing or reordering a stored entry breaks the chain from there on.
//! Secrets never go in: subjects are serials and operator names, details
//! are reasons and counts.

use sha2::{Digest, Sha256};

use crate::error::CaError;
use crate::store::audit::{AuditFields, AuditRow};
use crate::store::Registry;

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Result of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Refused => "refused",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub outcome: Outcome,
    pub detail: String,
}

/// SHA-256 over the length-prefixed fields, in hex.
fn entry_hash(seq: i64, f: &AuditFields<'_>, prev: &str) -> String {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(f.at.to_be_bytes());
    for part in [f.actor, f.action, f.subject, f.outcome, f.detail, prev] {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Append `e` at `at` (unix seconds); returns its sequence number.
pub async fn append(registry: &Registry, at: i64, e: &Event<'_>) -> Result<i64, CaError> {
    let fields = AuditFields {
        at,
        actor: e.actor,
        action: e.action,
        subject: e.subject,
        outcome: e.outcome.as_str(),
        detail: &e.detail,
    };
    Ok(registry.append_audit(fields, |seq, prev| entry_hash(seq, &fields, prev)).await?)
}

/// Append, logging instead of failing: for events whose action already
/// happened and must not be reported as failed because the log was busy.
pub async fn record(registry: &Registry, at: i64, e: &Event<'_>) {
    if let Err(err) = append(registry, at, e).await {
        tracing::error!(error = %err, action = e.action, subject = e.subject, "could not append to the audit log");
    }
}

/// Where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at entry {seq}: {reason}")]
pub struct Break {
    pub seq: i64,
    pub reason: String,
}

/// A verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: i64,
    pub head: String,
}

const PAGE: i64 = 5000;

/// Check the whole chain, oldest first, and that it ends at the recorded head.
pub async fn verify(registry: &Registry) -> Result<Result<Verified, Break>, CaError> {
    let mut prev = GENESIS.to_owned();
    let mut expected = 1i64;
    loop {
        let page = registry.audit_page(expected - 1, PAGE).await?;
        let n = page.len();
        for row in page {
            if let Err(b) = check(&row, expected, &prev) {
                return Ok(Err(b));
            }
            prev = row.hash;
            expected += 1;
        }
        if i64::try_from(n).unwrap_or(0) < PAGE {
            break;
        }
    }
    let (head_seq, head_hash) = registry.audit_head().await?;
    let last = expected - 1;
    if head_seq != last || head_hash != prev {
        return Ok(Err(Break {
            seq: last + 1,
            reason: format!(
                "the head records entry {head_seq}, but the chain ends at entry {last}: entries are missing"
            ),
        }));
    }
    Ok(Ok(Verified { entries: last, head: prev }))
}

fn check(row: &AuditRow, expected: i64, prev: &str) -> Result<(), Break> {
    let fail = |reason: &str| Err(Break { seq: expected, reason: reason.to_owned() });
    if row.seq != expected {
        return Err(Break { seq: expected, reason: format!("entry {expected} is missing (next is {})", row.seq) });
    }
    if row.prev_hash != prev {
        return fail("its prev_hash is not the hash of the entry before it");
    }
    let fields = AuditFields {
        at: row.at,
        actor: &row.actor,
        action: &row.action,
        subject: &row.subject,
        outcome: &row.outcome,
        detail: &row.detail,
    };
    if entry_hash(row.seq, &fields, prev) != row.hash {
        return fail("its content does not match its hash (edited)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_field_and_is_unambiguous() {
        let f = AuditFields { at: 1, actor: "a", action: "b", subject: "c", outcome: "d", detail: "e" };
        let base = entry_hash(1, &f, GENESIS);
        let moved = AuditFields { actor: "ab", action: "", ..f };
        assert_ne!(base, entry_hash(1, &moved, GENESIS), "length prefixes keep field boundaries");
        assert_ne!(base, entry_hash(2, &f, GENESIS));
        assert_ne!(base, entry_hash(1, &AuditFields { at: 2, ..f }, GENESIS));
        assert_ne!(base, entry_hash(1, &AuditFields { detail: "x", ..f }, GENESIS));
        assert_ne!(base, entry_hash(1, &f, "00"));
        assert_eq!(base, entry_hash(1, &f, GENESIS));
    }
}
