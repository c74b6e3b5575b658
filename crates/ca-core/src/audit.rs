//! The tamper-evident audit log. Every lifecycle event (issuance,
//! revocation, password change, failed hotline attempt, lock, operator
//! change) is appended with actor, time, subject and outcome; each entry's
//! hash covers its fields and the previous entry's hash, so editing,
//! removing or reordering a stored entry breaks the chain from there on.
//! Secrets never go in: subjects are serials and operator names, details
//! are reasons and counts.
//!
//! Personal data stays out of the hashed fields (GDPR erasure must not
//! break the chain): free text that may name a person goes into the
//! entry's `personal` column, and hash rule 2 (every entry since migration
//! 0024) covers only `SHA-256(salt || text)`, stored beside it. Erasing the
//! text and its salt (`Registry::erase_audit_personal`) leaves a digest that
//! nobody can test guesses against, and a chain that still verifies.
//! Entries written before keep rule 1 (no digest), checked as they were.

use sha2::{Digest, Sha256};

use crate::error::CaError;
use crate::store::audit::{AuditFields, AuditPersonal, AuditRow};
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

/// Hash rule 2: rule 1's fields, then the personal digest ("" when none),
/// after a version tag.
fn entry_hash_v2(seq: i64, f: &AuditFields<'_>, digest: &str, prev: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"qcert-audit-2");
    h.update(seq.to_be_bytes());
    h.update(f.at.to_be_bytes());
    for part in [f.actor, f.action, f.subject, f.outcome, f.detail, digest, prev] {
        h.update(u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// SHA-256 of the salt and the personal text, in hex.
pub fn personal_digest(salt: &str, text: &str) -> String {
    let mut h = Sha256::new();
    h.update(u64::try_from(salt.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(salt.as_bytes());
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

/// Append `e` at `at` (unix seconds); returns its sequence number.
pub async fn append(registry: &Registry, at: i64, e: &Event<'_>) -> Result<i64, CaError> {
    append_with_personal(registry, at, e, None).await
}

/// Append `e` with free text that may name a person (`personal`), kept
/// outside the hash so it can be erased.
pub async fn append_with_personal(
    registry: &Registry,
    at: i64,
    e: &Event<'_>,
    personal: Option<&str>,
) -> Result<i64, CaError> {
    let salt = personal.map(|_| {
        let mut b = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        hex::encode(b)
    });
    let digest = match (personal, salt.as_deref()) {
        (Some(text), Some(salt)) => Some(personal_digest(salt, text)),
        _ => None,
    };
    let p = match (personal, salt.as_deref(), digest.as_deref()) {
        (Some(text), Some(salt), Some(digest)) => Some(AuditPersonal { text, salt, digest }),
        _ => None,
    };
    let fields = AuditFields {
        at,
        actor: e.actor,
        action: e.action,
        subject: e.subject,
        outcome: e.outcome.as_str(),
        detail: &e.detail,
    };
    let d = digest.clone().unwrap_or_default();
    Ok(registry.append_audit(fields, p, |seq, prev| entry_hash_v2(seq, &fields, &d, prev)).await?)
}

/// Append, logging instead of failing: for events whose action already
/// happened and must not be reported as failed because the log was busy.
pub async fn record(registry: &Registry, at: i64, e: &Event<'_>) {
    record_with_personal(registry, at, e, None).await;
}

/// [`record`] with a personal part ([`append_with_personal`]).
pub async fn record_with_personal(registry: &Registry, at: i64, e: &Event<'_>, personal: Option<&str>) {
    if let Err(err) = append_with_personal(registry, at, e, personal).await {
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
    let mut version = 1i64;
    loop {
        let page = registry.audit_page(expected - 1, PAGE).await?;
        let n = page.len();
        for row in page {
            if row.hash_version < version {
                return Ok(Err(Break {
                    seq: expected,
                    reason: "its hash rule is older than its predecessor's (rules never go back)".to_owned(),
                }));
            }
            version = row.hash_version;
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
    let hash = match row.hash_version {
        1 => entry_hash(row.seq, &fields, prev),
        2 => {
            let digest = row.personal_digest.as_deref().unwrap_or("");
            match (&row.personal, &row.personal_salt) {
                (Some(text), Some(salt)) if personal_digest(salt, text) != digest => {
                    return fail("its personal part does not match its digest (edited)");
                }
                (Some(_), None) | (None, Some(_)) => return fail("its personal part is half erased"),
                _ => {}
            }
            entry_hash_v2(row.seq, &fields, digest, prev)
        }
        _ => return fail("unknown hash rule"),
    };
    if hash != row.hash {
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

    fn row(seq: i64, version: i64, personal: Option<(&str, &str)>, prev: &str) -> AuditRow {
        let f = AuditFields {
            at: 7,
            actor: "ra-officer:radu",
            action: "order.reject",
            subject: "o1",
            outcome: "success",
            detail: "",
        };
        let digest = personal.map(|(salt, text)| personal_digest(salt, text));
        let hash = match version {
            1 => entry_hash(seq, &f, prev),
            _ => entry_hash_v2(seq, &f, digest.as_deref().unwrap_or(""), prev),
        };
        AuditRow {
            seq,
            at: f.at,
            actor: f.actor.into(),
            action: f.action.into(),
            subject: f.subject.into(),
            outcome: f.outcome.into(),
            detail: f.detail.into(),
            prev_hash: prev.into(),
            hash,
            hash_version: version,
            personal: personal.map(|(_, t)| t.to_owned()),
            personal_salt: personal.map(|(s, _)| s.to_owned()),
            personal_digest: digest,
        }
    }

    #[test]
    fn old_entries_keep_rule_1_and_erased_personal_parts_still_verify() {
        let old = row(1, 1, None, GENESIS);
        assert_eq!(check(&old, 1, GENESIS), Ok(()));
        let new = row(2, 2, Some(("00ff", "blurred photo of Ioana")), &old.hash);
        assert_eq!(check(&new, 2, &old.hash), Ok(()));
        let erased = AuditRow { personal: None, personal_salt: None, ..new.clone() };
        assert_eq!(check(&erased, 2, &old.hash), Ok(()), "erasure keeps the chain");
        let edited = AuditRow { personal: Some("sharp photo".into()), ..new.clone() };
        assert!(check(&edited, 2, &old.hash).is_err());
        let half = AuditRow { personal_salt: None, ..new.clone() };
        assert!(check(&half, 2, &old.hash).is_err());
        let downgraded = AuditRow { hash_version: 1, ..new.clone() };
        assert!(check(&downgraded, 2, &old.hash).is_err(), "a rule-2 hash does not pass as rule 1");
        assert_ne!(row(2, 2, None, &old.hash).hash, row(2, 1, None, &old.hash).hash);
    }
}
