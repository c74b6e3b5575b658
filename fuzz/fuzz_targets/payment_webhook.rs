//! The payment webhook: the signature header (`payment::verify_webhook`) and
//! the event body (`orders::PaymentEvent::parse`). Input: the header value,
//! a newline, the raw body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qcert_ca_core::orders::PaymentEvent;
use qcert_ca_core::payment::{self, WebhookKey};
use time::OffsetDateTime;

/// The key of the seeds' signatures (`openssl dgst -sha256 -mac HMAC -macopt hexkey:0b...`).
const KEY: [u8; 32] = [0x0b; 32];
/// The seeds' `t=`.
const NOW: i64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let key = WebhookKey::from_bytes(KEY);
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("fixed time");
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => data.split_at(i),
        None => (data, &b"\n"[..]),
    };
    let body = body.get(1..).unwrap_or_default();
    let header = String::from_utf8_lossy(header);
    let _ = payment::verify_webhook(&key, &header, body, now, payment::DEFAULT_TOLERANCE);
    // A header we sign ourselves always verifies, for any body.
    let own = payment::sign_webhook(&key, body, now);
    assert!(payment::verify_webhook(&key, &own, body, now, payment::DEFAULT_TOLERANCE).is_ok());
    // The body is parsed whether or not the signature held, to reach the parser.
    if let Ok(event) = PaymentEvent::parse(body) {
        assert!((1..=128).contains(&event.event_id.len()));
        assert_eq!(event.status, "paid");
    }
});
