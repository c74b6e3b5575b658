//! CMS SignedData verification (`cms::verify_signed_data`, DER or PEM)
//! against two fixed signer certificates (ECDSA P-256 and RSA-2048): the
//! seeds are signed by their keys, so mutations reach the digest and
//! signature checks.
#![no_main]

use std::sync::LazyLock;

use der::DecodePem;
use libfuzzer_sys::fuzz_target;
use qcert_ca_core::cms;
use x509_cert::Certificate;

static SIGNERS: LazyLock<[Certificate; 2]> = LazyLock::new(|| {
    let pem = |p: &[u8]| Certificate::from_pem(p).expect("fixture certificate");
    [pem(include_bytes!("../fixtures/cms-ec.pem")), pem(include_bytes!("../fixtures/cms-rsa.pem"))]
});

fuzz_target!(|data: &[u8]| {
    for signer in SIGNERS.iter() {
        if let Ok(verified) = cms::verify_signed_data(data, signer) {
            assert!(data.len() <= cms::MAX_INPUT);
            // Signed content cannot be larger than the message carrying it.
            assert!(verified.content.len() <= data.len());
        }
    }
});
