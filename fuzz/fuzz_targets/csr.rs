//! PKCS#10 parsing (PEM or DER) and the self-signature and key checks,
//! against the order profile of the repository's policies.
#![no_main]

use std::sync::LazyLock;

use der::Encode;
use libfuzzer_sys::fuzz_target;
use qcert_ca_core::policy::Profile;
use qcert_ca_core::{csr, orders, Policy};

static PROFILE: LazyLock<Profile> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let policy = Policy::load(&dir, "https://qcert.example").expect("policies/ loads");
    policy.profile(orders::PROFILE).expect("the order profile exists").clone()
});

fuzz_target!(|data: &[u8]| {
    let profile = &*PROFILE;
    let Ok(req) = csr::decode(data) else { return };
    let described = csr::describe(&req.info.public_key);
    if let Ok(key) = csr::verify(&req, profile) {
        // Only keys the profile accepts pass, and the key is the request's.
        assert_eq!(described.ok(), Some(key.algorithm));
        assert_eq!(key.spki, req.info.public_key);
        assert!(key.spki.to_der().is_ok());
    }
});
