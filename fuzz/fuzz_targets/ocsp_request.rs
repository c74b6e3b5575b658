//! The OCSP responder's request parser (`ocsp::parse_request`): DER from
//! POST bodies and base64-decoded GET paths.
#![no_main]

use der::Encode;
use libfuzzer_sys::fuzz_target;
use qcert_ca_core::ocsp;

fuzz_target!(|data: &[u8]| {
    // Refusals become `malformedRequest`; what parses must hold what the responder relies on.
    let Ok(parsed) = ocsp::parse_request(data) else { return };
    assert!(!parsed.cert_ids.is_empty() && parsed.cert_ids.len() <= ocsp::MAX_CERT_IDS);
    if let Some(nonce) = &parsed.nonce {
        assert!(ocsp::NONCE_LEN.contains(&nonce.0.as_bytes().len()));
        assert!(nonce.to_der().is_ok());
    }
    // The cache key and the answer's CertID are re-encoded from the parse.
    for id in &parsed.cert_ids {
        assert!(id.to_der().is_ok());
    }
});
