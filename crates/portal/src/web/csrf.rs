//! CSRF tokens for the forms of session pages (the desk). The token is
//! derived from the session's secret (the cookie value, which the page's
//! script cannot read: HttpOnly), so it needs no storage and dies with
//! the session; it reveals nothing of the secret (SHA-256 preimage).
//! The Origin / Sec-Fetch-Site check of [`super::guard`] is the first
//! line; the token is the second, on forms that revoke or approve.

use sha2::{Digest, Sha256};

/// The token of a session.
pub(crate) fn token(session_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"qcert desk csrf v1\0");
    h.update(session_secret.as_bytes());
    hex::encode(h.finalize())
}

/// Whether `presented` is the token of this session. Compared as hashes,
/// so the time taken says nothing about how much of it matched.
pub(crate) fn verify(session_secret: &str, presented: &str) -> bool {
    let a = Sha256::digest(token(session_secret).as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_belongs_to_one_session() {
        let t = token("session-a");
        assert_eq!(t.len(), 64);
        assert!(verify("session-a", &t));
        assert!(!verify("session-b", &t));
        assert!(!verify("session-a", ""));
        assert!(!verify("session-a", &t[..63]));
        assert!(!t.contains("session"));
    }
}
