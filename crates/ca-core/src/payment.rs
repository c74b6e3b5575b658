//! Authentication of the payment provider's webhooks (Stripe's scheme).
//!
//! The provider sends the header
//! `<name>: t=<unix seconds>,v1=<hex HMAC-SHA-256>[,v1=<hex>...]`, where each
//! `v1` is HMAC-SHA-256 under the shared webhook key over the bytes
//! `"<t>." || body` (the raw body, before any JSON parsing). Several `v1`
//! entries appear while the provider rotates its key: one matching entry
//! is enough. Other schemes (`v0`, ...) are ignored. The timestamp must lie
//! within `tolerance` in the past (default 5 minutes) and at most 5 minutes
//! in the future (clock skew).
//!
//! The timestamp bounds how long a captured request can be replayed; it
//! does not stop a replay inside that window. The caller therefore records
//! each event id it has processed (the orders table does) and treats an id
//! seen before as done.
//!
//! Example, for a body `{"id":"evt_1"}` sent at 1767225600 under the key
//! file's key: `sign_webhook(&key, body, now)` gives
//! `t=1767225600,v1=<64 hex digits>`, which `verify_webhook` accepts until
//! 1767225900.

use std::fmt;
use std::path::Path;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::secret_file;

/// How old a webhook may be, unless the caller says otherwise.
pub const DEFAULT_TOLERANCE: Duration = Duration::seconds(300);
/// How far in the future a webhook's timestamp may be.
pub const MAX_FUTURE_SKEW: Duration = Duration::seconds(300);
/// Longest header accepted (a few signatures fit easily).
const MAX_HEADER_LEN: usize = 4096;
/// Most `v1` entries checked.
const MAX_SIGNATURES: usize = 8;

type HmacSha256 = Hmac<Sha256>;

/// The key shared with the payment provider (32 bytes, from a secret file
/// of 64 hex digits). Never shown by `Debug`; wiped when dropped.
pub struct WebhookKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookKey(redacted)")
    }
}

impl WebhookKey {
    pub fn from_bytes(b: [u8; 32]) -> WebhookKey {
        WebhookKey(Zeroizing::new(b))
    }

    pub fn random() -> WebhookKey {
        WebhookKey(secret_file::random_key())
    }

    /// The key as 64 hex digits (for writing the secret file once and for
    /// entering it at the provider).
    pub fn to_hex(&self) -> Zeroizing<String> {
        secret_file::key_hex(&self.0)
    }

    /// Read a file holding 64 hex digits.
    pub fn load(path: &Path) -> Result<WebhookKey, CaError> {
        Ok(WebhookKey(secret_file::read_key(path, "webhook")?))
    }

    /// The MAC over `"<t>." || body`, ready to finalise or verify.
    fn mac(&self, t: i64, body: &[u8]) -> HmacSha256 {
        // HMAC pads a key shorter than the hash's block with zeros (RFC 2104
        // §2), so the key padded to SHA-256's 64-byte block is the same key,
        // and the fixed-size constructor cannot fail.
        let mut block = Zeroizing::new([0u8; 64]);
        block.iter_mut().zip(self.0.iter()).for_each(|(d, s)| *d = *s);
        let mut mac = <HmacSha256 as KeyInit>::new(&(*block).into());
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The signature header for `body` sent at `now`: `t=<unix>,v1=<hex>`.
pub fn sign_webhook(key: &WebhookKey, body: &[u8], now: OffsetDateTime) -> String {
    let t = now.unix_timestamp();
    let tag = key.mac(t, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

/// Check a webhook's signature header against its raw body at `now`.
/// Refused (as [`CaError::SignatureRefused`], with a reason that names no
/// secret): a malformed header, a timestamp older than `tolerance` or more
/// than [`MAX_FUTURE_SKEW`] ahead, or no `v1` entry that matches.
pub fn verify_webhook(
    key: &WebhookKey,
    header_value: &str,
    body: &[u8],
    now: OffsetDateTime,
    tolerance: Duration,
) -> Result<(), CaError> {
    let refuse = |why: &str| Err(CaError::SignatureRefused(format!("webhook {why}")));
    if header_value.len() > MAX_HEADER_LEN {
        return refuse("signature header is too long");
    }
    let mut timestamp: Option<&str> = None;
    let mut signatures: Vec<&str> = Vec::new();
    for item in header_value.split(',') {
        let Some((name, value)) = item.trim().split_once('=') else {
            return refuse("signature header is malformed: expected t=<unix time>,v1=<hex>");
        };
        match name {
            "t" if timestamp.is_some() => return refuse("signature header has more than one timestamp"),
            "t" => timestamp = Some(value),
            "v1" if signatures.len() >= MAX_SIGNATURES => return refuse("signature header has too many signatures"),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let Some(t_text) = timestamp else { return refuse("signature header has no timestamp (t=...)") };
    let t: i64 = match t_text.parse() {
        Ok(t) if !t_text.is_empty() && t_text.bytes().all(|b| b.is_ascii_digit()) => t,
        _ => return refuse("timestamp is not a number of seconds"),
    };
    if signatures.is_empty() {
        return refuse("signature header has no v1 signature");
    }
    if now.unix_timestamp().saturating_sub(t) > tolerance.whole_seconds() {
        return refuse("timestamp is too old (possible replay)");
    }
    if t.saturating_sub(now.unix_timestamp()) > MAX_FUTURE_SKEW.whole_seconds() {
        return refuse("timestamp is in the future");
    }
    let mac = key.mac(t, body);
    let mut tag = [0u8; 32];
    for sig in signatures {
        // A malformed entry simply does not match; the others are still tried.
        if hex::decode_to_slice(sig, &mut tag).is_ok() && mac.clone().verify_slice(&tag).is_ok() {
            return Ok(());
        }
    }
    refuse("signature does not match")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    fn refused(r: Result<(), CaError>) -> String {
        match r {
            Err(CaError::SignatureRefused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let key = WebhookKey::random();
        let now = at(1_767_225_600);
        let header = sign_webhook(&key, BODY, now);
        assert!(header.starts_with("t=1767225600,v1="));
        assert_eq!(header.len(), "t=1767225600,v1=".len() + 64);
        verify_webhook(&key, &header, BODY, now, DEFAULT_TOLERANCE).unwrap();
        verify_webhook(&key, &header, BODY, now + Duration::seconds(300), DEFAULT_TOLERANCE).unwrap();
        verify_webhook(&key, &header, BODY, now - Duration::seconds(300), DEFAULT_TOLERANCE).unwrap();
        let why = refused(verify_webhook(&key, &header, BODY, now + Duration::seconds(301), DEFAULT_TOLERANCE));
        assert!(why.contains("too old"), "{why}");
        let why = refused(verify_webhook(&key, &header, BODY, now - Duration::seconds(301), DEFAULT_TOLERANCE));
        assert!(why.contains("future"), "{why}");
        refused(verify_webhook(&key, &header, BODY, now + Duration::seconds(61), Duration::seconds(60)));
    }

    #[test]
    fn known_answer_from_openssl() {
        // printf '1767225600.{}' | openssl dgst -sha256 -mac HMAC -macopt hexkey:0b0b...0b (32 octets)
        let key = WebhookKey::from_bytes([0x0b; 32]);
        assert_eq!(
            sign_webhook(&key, b"{}", at(1_767_225_600)),
            "t=1767225600,v1=2547b9d90518426b3b657b66b5d2f7e0aeb1200f474ce88c2f4b24e7fd352f31"
        );
    }

    #[test]
    fn changed_body_time_or_key_is_refused() {
        let key = WebhookKey::random();
        let now = at(1_767_225_600);
        let header = sign_webhook(&key, BODY, now);
        let why = refused(verify_webhook(&key, &header, b"{\"id\":\"evt_2\"}", now, DEFAULT_TOLERANCE));
        assert_eq!(why, "webhook signature does not match");
        let moved = header.replace("t=1767225600", "t=1767225601");
        refused(verify_webhook(&key, &moved, BODY, now, DEFAULT_TOLERANCE));
        refused(verify_webhook(&WebhookKey::random(), &header, BODY, now, DEFAULT_TOLERANCE));
    }

    #[test]
    fn any_matching_v1_entry_is_enough() {
        let key = WebhookKey::random();
        let other = WebhookKey::random();
        let now = at(1_767_225_600);
        let good = sign_webhook(&key, BODY, now);
        let bad = sign_webhook(&other, BODY, now);
        let good_sig = good.split_once(",v1=").unwrap().1;
        let bad_sig = bad.split_once(",v1=").unwrap().1;
        let header = format!("t=1767225600, v1={bad_sig}, v0=abc, v1=zz, v1={good_sig}");
        verify_webhook(&key, &header, BODY, now, DEFAULT_TOLERANCE).unwrap();
        let header = format!("t=1767225600,v1={bad_sig}");
        refused(verify_webhook(&key, &header, BODY, now, DEFAULT_TOLERANCE));
        let only_v0 = format!("t=1767225600,v0={good_sig}");
        refused(verify_webhook(&key, &only_v0, BODY, now, DEFAULT_TOLERANCE));
    }

    #[test]
    fn malformed_headers_are_refused_without_panic() {
        let key = WebhookKey::random();
        let now = at(1_767_225_600);
        let sig = "00".repeat(32);
        let long = format!("t=1767225600,{}", "v1=00,".repeat(1000));
        let many = format!("t=1767225600{}", format!(",v1={sig}").repeat(9));
        for header in [
            "",
            "garbage",
            "t=",
            "t=,v1=00",
            &format!("v1={sig}"),
            &format!("t=-5,v1={sig}"),
            &format!("t=+1767225600,v1={sig}"),
            &format!("t=99999999999999999999999,v1={sig}"),
            &format!("t=1767225600,t=1767225600,v1={sig}"),
            "t=1767225600",
            "t=1767225600,v1=",
            "t=1767225600,v1=é",
            &format!("t=1767225600,v1={sig}00"),
            &long,
            &many,
        ] {
            refused(verify_webhook(&key, header, BODY, now, DEFAULT_TOLERANCE));
        }
        let max = format!("t={},v1={sig}", i64::MAX);
        let why = refused(verify_webhook(&key, &max, BODY, now, DEFAULT_TOLERANCE));
        assert!(why.contains("future"), "{why}");
        let epoch = sign_webhook(&key, BODY, at(0));
        let why = refused(verify_webhook(&key, &epoch, BODY, now, DEFAULT_TOLERANCE));
        assert!(why.contains("too old"), "{why}");
    }

    #[test]
    fn key_file_round_trips_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhook.key");
        let key = WebhookKey::random();
        std::fs::write(&path, key.to_hex().as_str()).unwrap();
        let loaded = WebhookKey::load(&path).unwrap();
        let now = at(1_767_225_600);
        verify_webhook(&loaded, &sign_webhook(&key, BODY, now), BODY, now, DEFAULT_TOLERANCE).unwrap();
        assert_eq!(format!("{loaded:?}"), "WebhookKey(redacted)");
        std::fs::write(&path, "not hex").unwrap();
        assert!(WebhookKey::load(&path).is_err());
    }
}
