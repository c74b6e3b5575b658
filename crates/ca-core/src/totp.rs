//! Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1,
//! 30-second steps, 6 digits, the parameters every authenticator app
//! supports. The enrolment secret (20 random bytes, RFC 4226 §4 R6) is shown
//! once as an `otpauth://` URI (a QR code) and kept sealed by the vault.
//!
//! [`TotpSecret::verify`] accepts the current step and one step either side
//! (clock drift, RFC 6238 §5.2) and returns the step that matched; the
//! caller stores it and passes it back as `last_used_step`, so a code (or
//! an earlier one) is never accepted twice (§5.2: "the verifier MUST NOT
//! accept the second attempt of the same OTP").

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::error::CaError;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const WINDOW: i64 = 1;
/// Bytes of a generated secret (160 bits, the HMAC-SHA-1 output size).
pub const SECRET_LEN: usize = 20;

/// A TOTP enrolment secret. Never shown by `Debug`; wiped when dropped.
#[derive(Clone)]
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(redacted)")
    }
}

impl TotpSecret {
    /// 20 random bytes from the OS CSPRNG.
    pub fn generate() -> TotpSecret {
        let mut b = Zeroizing::new(vec![0u8; SECRET_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut b);
        TotpSecret(b)
    }

    /// A stored secret (as opened from the vault): 16 to 64 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<TotpSecret, CaError> {
        if !(16..=64).contains(&bytes.len()) {
            return Err(CaError::InvalidInput("a TOTP secret has 16 to 64 bytes".into()));
        }
        Ok(TotpSecret(Zeroizing::new(bytes.to_vec())))
    }

    /// The raw bytes, for sealing with the vault.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret in base32 (RFC 4648, no padding), as authenticator apps
    /// take it when typed in by hand.
    pub fn base32(&self) -> Zeroizing<String> {
        base32(&self.0)
    }

    /// The `otpauth://totp/...` URI an authenticator app reads from a QR
    /// code (Google Authenticator "Key Uri Format"): label `issuer:account`,
    /// secret, issuer, algorithm, digits and period. Holds the secret.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Zeroizing<String> {
        let issuer = percent_encode(issuer);
        Zeroizing::new(format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
            percent_encode(account),
            self.base32().as_str(),
        ))
    }

    /// Check `code` (6 digits; spaces ignored) at `now`. Returns the step
    /// that matched, or `None` for a wrong or malformed code, or a code of
    /// a step at or before `last_used_step` (a replay).
    pub fn verify(&self, code: &str, now: OffsetDateTime, last_used_step: Option<i64>) -> Option<i64> {
        self.verify_digits(code, now, last_used_step, DIGITS)
    }

    /// The code an authenticator app shows at `now` (what the holder
    /// types; used by benchmarks that play the holder).
    pub fn code_at(&self, now: OffsetDateTime) -> Option<Zeroizing<String>> {
        self.code_at_step(now.unix_timestamp().div_euclid(STEP_SECONDS), DIGITS)
    }

    fn verify_digits(&self, code: &str, now: OffsetDateTime, last_used_step: Option<i64>, digits: u32) -> Option<i64> {
        let code: Zeroizing<String> = Zeroizing::new(code.chars().filter(|c| !c.is_whitespace()).collect());
        if code.len() != usize::try_from(digits).ok()? || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now.unix_timestamp().div_euclid(STEP_SECONDS);
        let mut matched = None;
        // Every candidate is computed and compared, so the time taken does
        // not tell which step (if any) matched.
        for step in current - WINDOW..=current + WINDOW {
            let fresh = last_used_step.is_none_or(|last| step > last);
            let Some(expected) = self.code_at_step(step, digits) else { continue };
            let equal = constant_time_eq(expected.as_bytes(), code.as_bytes());
            if equal && fresh && matched.is_none() {
                matched = Some(step);
            }
        }
        matched
    }

    /// The code of `step` (RFC 4226 §5.3 dynamic truncation), zero-padded.
    fn code_at_step(&self, step: i64, digits: u32) -> Option<Zeroizing<String>> {
        let counter = u64::try_from(step).ok()?;
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&self.0).ok()?;
        mac.update(&counter.to_be_bytes());
        let hash = mac.finalize().into_bytes();
        let offset = usize::from(hash.get(19)? & 0x0f);
        let b = hash.get(offset..offset + 4)?;
        let bin = u32::from_be_bytes([b.first()? & 0x7f, *b.get(1)?, *b.get(2)?, *b.get(3)?]);
        let value = bin % 10u32.checked_pow(digits)?;
        let width = usize::try_from(digits).ok()?;
        Some(Zeroizing::new(format!("{value:0width$}")))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 4648 §6 base32, upper case, without padding.
fn base32(data: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(data.len().div_ceil(5) * 8));
    let mut buffer: u32 = 0;
    let mut bits: u32 = 0;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(base32_char(buffer >> bits));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(base32_char(buffer << (5 - bits)));
    }
    out
}

fn base32_char(v: u32) -> char {
    let v = u8::try_from(v & 0x1f).unwrap_or(0);
    char::from(if v < 26 { b'A' + v } else { b'2' + (v - 26) })
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 Appendix B SHA-1 seed: ASCII "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let s = rfc_secret();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            let step = time / STEP_SECONDS;
            assert_eq!(s.code_at_step(step, 8).unwrap().as_str(), code, "T = {time}");
            assert_eq!(s.verify_digits(code, at(time), None, 8), Some(step), "T = {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d_hotp_vectors() {
        let s = rfc_secret();
        let expected =
            ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"];
        for (counter, code) in (0i64..).zip(expected) {
            assert_eq!(s.code_at_step(counter, DIGITS).unwrap().as_str(), code, "counter {counter}");
        }
    }

    #[test]
    fn window_is_one_step_either_side() {
        let s = TotpSecret::generate();
        let now = at(1_800_000_015);
        let step = now.unix_timestamp() / STEP_SECONDS;
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = s.code_at_step(step + offset, DIGITS).unwrap();
            assert_eq!(s.verify(&code, now, None), accepted.then_some(step + offset), "offset {offset}");
        }
    }

    #[test]
    fn a_used_step_and_earlier_ones_are_refused() {
        let s = TotpSecret::generate();
        let now = at(1_800_000_015);
        let step = now.unix_timestamp() / STEP_SECONDS;
        let code = s.code_at_step(step, DIGITS).unwrap();
        let used = s.verify(&code, now, None).unwrap();
        assert_eq!(used, step);
        assert_eq!(s.verify(&code, now, Some(used)), None, "the same code again");
        let previous = s.code_at_step(step - 1, DIGITS).unwrap();
        assert_eq!(s.verify(&previous, now, Some(used)), None, "an older code after a newer one");
        let next = s.code_at_step(step + 1, DIGITS).unwrap();
        assert_eq!(s.verify(&next, now, Some(used)), Some(step + 1), "the next step is still fresh");
    }

    #[test]
    fn malformed_codes_are_refused_without_panic() {
        let s = rfc_secret();
        let now = at(59);
        assert_eq!(s.verify("287 082", now, None), Some(1), "spaces are ignored");
        for bad in ["", "28708", "2870822", "28708a", "２８７０８２", "-87082", "287082\u{0}", "+287082"] {
            assert_eq!(s.verify(bad, now, None), None, "{bad:?}");
        }
        assert_eq!(s.verify("000000", at(-100), None), None, "before 1970 nothing matches");
    }

    #[test]
    fn base32_rfc4648_vectors_without_padding() {
        for (input, out) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()).as_str(), out, "{input:?}");
        }
        assert_eq!(rfc_secret().base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(TotpSecret::generate().base32().len(), 32);
    }

    #[test]
    fn otpauth_uri_names_issuer_account_and_parameters() {
        let uri = rfc_secret().otpauth_uri("qcert Demo", "ana@example.ro");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/qcert%20Demo:ana%40example.ro?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=qcert%20Demo&algorithm=SHA1&digits=6&period=30"
        );
        let weird = rfc_secret().otpauth_uri("a&b=c", "x:y?z#");
        assert!(weird.contains("a%26b%3Dc:x%3Ay%3Fz%23?"), "{}", weird.as_str());
    }

    #[test]
    fn secrets_are_random_and_hidden() {
        let a = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), SECRET_LEN);
        assert_ne!(a.as_bytes(), TotpSecret::generate().as_bytes());
        assert_eq!(format!("{a:?}"), "TotpSecret(redacted)");
        assert!(TotpSecret::from_bytes(&[0; 15]).is_err());
        assert!(TotpSecret::from_bytes(&[0; 65]).is_err());
    }
}
