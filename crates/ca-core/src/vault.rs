//! Secrets at rest: authenticated encryption with XChaCha20-Poly1305
//! (RustCrypto `chacha20poly1305`), under a 32-byte key kept outside the
//! database (a secret file of 64 hex digits, like the document key).
//!
//! A sealed value is `nonce (24 random bytes) || ciphertext || tag (16)`.
//! The 192-bit nonce is drawn at random for every seal, so one key can seal
//! any number of values without a counter. The caller's associated data
//! (e.g. the row id) is authenticated, not stored: a sealed value copied
//! into another row does not open there.
//!
//! There is no key id in the format: rotating the vault key means opening
//! every sealed value with the old key and sealing it with the new one.

use std::fmt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::CaError;
use crate::secret_file;

/// Bytes of the random nonce in front of every sealed value.
pub const NONCE_LEN: usize = 24;
/// Bytes of the Poly1305 tag at the end of every sealed value.
pub const TAG_LEN: usize = 16;

/// The key secrets at rest are sealed with. Never shown by `Debug`; the key
/// bytes are wiped when it is dropped.
pub struct Vault {
    key: Zeroizing<[u8; 32]>,
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(redacted)")
    }
}

impl Vault {
    pub fn from_bytes(b: [u8; 32]) -> Vault {
        Vault::from_key(Zeroizing::new(b))
    }

    fn from_key(key: Zeroizing<[u8; 32]>) -> Vault {
        let cipher = XChaCha20Poly1305::new(&chacha20poly1305::Key::from(*key));
        Vault { key, cipher }
    }

    /// A fresh key from the OS CSPRNG.
    pub fn random() -> Vault {
        Vault::from_key(secret_file::random_key())
    }

    /// The key as 64 hex digits (for writing the secret file once).
    pub fn to_hex(&self) -> Zeroizing<String> {
        secret_file::key_hex(&self.key)
    }

    /// Read a file holding 64 hex digits.
    pub fn load(path: &Path) -> Result<Vault, CaError> {
        Ok(Vault::from_key(secret_file::read_key(path, "vault")?))
    }

    /// Encrypt `plaintext`, binding it to `associated_data`. Fails only for
    /// a plaintext beyond the cipher's limit (256 GiB).
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> Result<Vec<u8>, CaError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad: associated_data })
            .map_err(|_| CaError::Internal("vault: the value is too large to seal".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypt a value made by [`Vault::seal`] with the same associated
    /// data. A wrong key, other associated data, or any changed byte gives
    /// one error that says nothing about the content.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CaError> {
        let refused = || {
            CaError::Internal(
                "vault: a sealed value does not open (wrong key, moved to another row, or altered)".into(),
            )
        };
        let Some((nonce, ciphertext)) = sealed.split_first_chunk::<NONCE_LEN>() else { return Err(refused()) };
        if ciphertext.len() < TAG_LEN {
            return Err(refused());
        }
        self.cipher
            .decrypt(&XNonce::from(*nonce), Payload { msg: ciphertext, aad: associated_data })
            .map(Zeroizing::new)
            .map_err(|_| refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binds_the_associated_data() {
        let v = Vault::random();
        let sealed = v.seal(b"PIN 123456", b"row-1").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 10 + TAG_LEN);
        assert_eq!(v.open(&sealed, b"row-1").unwrap().as_slice(), b"PIN 123456");
        assert!(v.open(&sealed, b"row-2").is_err(), "another row's associated data");
        assert!(Vault::random().open(&sealed, b"row-1").is_err(), "another key");
        assert_ne!(v.seal(b"PIN 123456", b"row-1").unwrap(), sealed, "fresh nonce every time");
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_refused() {
        let v = Vault::random();
        let sealed = v.seal(b"secret", b"ad").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(v.open(&bad, b"ad").is_err(), "byte {i}");
        }
        for n in 0..sealed.len() {
            assert!(v.open(&sealed[..n], b"ad").is_err(), "first {n} bytes");
        }
        assert!(v.open(&[], b"ad").is_err());
    }

    #[test]
    fn empty_plaintext_seals() {
        let v = Vault::random();
        let sealed = v.seal(b"", b"").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + TAG_LEN);
        assert!(v.open(&sealed, b"").unwrap().is_empty());
    }

    #[test]
    fn key_file_round_trips_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.key");
        let v = Vault::random();
        std::fs::write(&path, format!("{}\n", v.to_hex().as_str())).unwrap();
        let loaded = Vault::load(&path).unwrap();
        let sealed = v.seal(b"x", b"ad").unwrap();
        assert_eq!(loaded.open(&sealed, b"ad").unwrap().as_slice(), b"x");
        assert_eq!(format!("{loaded:?}"), "Vault(redacted)");
        assert!(!format!("{loaded:?}").contains(v.to_hex().as_str()));

        std::fs::write(&path, "abcd").unwrap();
        let err = Vault::load(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
        assert!(Vault::load(&dir.path().join("missing")).is_err());
    }
}
