//! The confirmation document's upload check (`confirmation::check_upload`):
//! a fixed prefilled document followed by the fuzzer's bytes (the update a
//! holder's tool appends), and the fuzzer's bytes alone. It never panics;
//! whatever it accepts starts with our bytes and has a signature whose
//! byte ranges lie in the file.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use qcert_ca_core::confirmation::{self, CertificateFacts, Prefilled};

static PREFILLED: LazyLock<Prefilled> = LazyLock::new(|| {
    confirmation::prefilled_from(&CertificateFacts {
        given_name: "Ștefan".into(),
        surname: "Țurcanu".into(),
        common_name: "Ștefan Țurcanu".into(),
        identifier: "PNORO-1850101123453".into(),
        country: "RO".into(),
        serial: "3f00aa".into(),
        not_before: 1_800_000_000,
        not_after: 1_831_536_000,
        issuer: "CN=qcert Issuing CA,O=qcert".into(),
    })
});

fuzz_target!(|data: &[u8]| {
    let ours = &*PREFILLED;
    let hash = ours.sha256_hex();
    let mut upload = ours.pdf.clone();
    upload.extend_from_slice(data);
    for file in [&upload[..], data] {
        if let Ok(sig) = confirmation::check_upload(file, &hash, ours.pdf.len()) {
            assert!(file.starts_with(&ours.pdf));
            for (from, len) in sig.ranges {
                assert!(from + len <= file.len());
            }
        }
    }
});
