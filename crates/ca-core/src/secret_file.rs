//! 32-byte keys kept in secret files of 64 hex digits (the webhook, vault
//! and document keys). Errors name the file, never its content; the key
//! and the text it was read from are wiped when dropped.

use std::path::Path;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::CaError;

/// A fresh 32-byte key from the OS CSPRNG.
pub fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut *key);
    key
}

/// The key as 64 hex digits (for writing the secret file once).
pub fn key_hex(key: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(hex::encode(key))
}

/// Read the file at `path` holding 64 hex digits (surrounding whitespace
/// ignored). `what` names the key in errors, e.g. "vault".
pub fn read_key(path: &Path, what: &str) -> Result<Zeroizing<[u8; 32]>, CaError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| CaError::InvalidInput(format!("cannot read the {what} key file {}: {e}", path.display())))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), &mut *key)
        .map_err(|_| CaError::InvalidInput(format!("{} must hold 64 hex digits (a 32-byte key)", path.display())))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_errors_name_the_file_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = random_key();
        std::fs::write(&path, format!("  {}\n", key_hex(&key).as_str())).unwrap();
        assert_eq!(*read_key(&path, "test").unwrap(), *key);

        std::fs::write(&path, "not-hex-secret").unwrap();
        let err = read_key(&path, "test").unwrap_err().to_string();
        assert!(err.contains("64 hex digits") && err.contains("k.key"), "{err}");
        assert!(!err.contains("not-hex-secret"), "{err}");

        let err = read_key(&dir.path().join("missing"), "test").unwrap_err().to_string();
        assert!(err.contains("cannot read the test key file") && err.contains("missing"), "{err}");
    }
}
