//! The TSA's request parser (`tsa::parse_request`): DER TimeStampReq bodies
//! of `POST /tsa`.
#![no_main]

use der::Encode;
use libfuzzer_sys::fuzz_target;
use qcert_ca_core::tsa;

fuzz_target!(|data: &[u8]| {
    let policy = qcert_ca_core::policy::TsaPolicy {
        policy_oid: der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.65535.1.2.1"),
        accuracy_seconds: 1,
        key_label: "fuzz".into(),
        include_tsa_name: true,
    };
    // Refusals become a rejection TimeStampResp: their reason never quotes the request.
    let parsed = match tsa::parse_request(data, &policy) {
        Ok(p) => p,
        Err(refusal) => {
            assert!(refusal.reason.is_ascii() && refusal.reason.len() < 200);
            return;
        }
    };
    // What parses is what the token is built from.
    let digest = parsed.message_imprint.hashed_message.as_bytes().len();
    assert!([32, 48, 64].contains(&digest));
    if let Some(nonce) = &parsed.nonce {
        assert!(nonce.as_bytes().len() <= tsa::MAX_NONCE_OCTETS);
        assert!(nonce.to_der().is_ok());
    }
    assert!(parsed.message_imprint.to_der().is_ok());
});
