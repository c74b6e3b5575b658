//! PKCS#10 requests: parsed, self-signature verified, key checked against the
//! profile. Only the public key is taken from a CSR; its subject is ignored.

use const_oid::db::rfc5912;
use der::{Decode, Encode};
use qcert_hsm::KeyAlgorithm;
use signature::hazmat::PrehashVerifier;
use spki::{DecodePublicKey, SubjectPublicKeyInfoOwned};
use x509_cert::request::CertReq;

use crate::error::CaError;
use crate::policy::Profile;

/// The public key of a CSR whose self-signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedKey {
    pub spki: SubjectPublicKeyInfoOwned,
    pub algorithm: KeyDescription,
}

/// What kind of key a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyDescription {
    Ec(KeyAlgorithm),
    Rsa { bits: usize },
}

impl std::fmt::Display for KeyDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyDescription::Ec(a) => write!(f, "{a}"),
            KeyDescription::Rsa { bits } => write!(f, "RSA-{bits}"),
        }
    }
}

/// Accept PEM or DER. A refusal says in plain words what the input is not
/// (never quoting it).
pub fn decode(input: &[u8]) -> Result<CertReq, CaError> {
    const NEITHER: &str = "the CSR is neither DER nor PEM: send the PKCS#10 request as DER bytes or as a PEM block \
                           starting with -----BEGIN CERTIFICATE REQUEST-----";
    let trimmed = input.iter().skip_while(|b| b.is_ascii_whitespace()).copied().collect::<Vec<u8>>();
    if trimmed.starts_with(b"-----BEGIN") {
        let Ok((label, der)) = der::pem::decode_vec(&trimmed) else {
            return Err(CaError::CsrRefused("the CSR's PEM block is damaged (not valid PEM/base64)".into()));
        };
        if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
            return Err(CaError::CsrRefused("the PEM block is not a CERTIFICATE REQUEST".into()));
        }
        CertReq::from_der(&der)
            .map_err(|e| CaError::CsrRefused(format!("the PEM block holds no valid PKCS#10 request ({e})")))
    } else if input.first() != Some(&0x30) {
        Err(CaError::CsrRefused(NEITHER.into()))
    } else {
        CertReq::from_der(input)
            .map_err(|e| CaError::CsrRefused(format!("the DER is not a valid PKCS#10 request ({e})")))
    }
}

/// Verify the request's self-signature and that its key is one the profile accepts.
pub fn verify(req: &CertReq, profile: &Profile) -> Result<VerifiedKey, CaError> {
    let spki = req.info.public_key.clone();
    let spki_der = spki.to_der().map_err(CaError::encoding)?;
    let algorithm = describe(&spki)?;
    let accepted = match algorithm {
        KeyDescription::Ec(a) => profile.accepted_keys.contains(&a),
        KeyDescription::Rsa { bits } => {
            if bits < profile.min_rsa_bits {
                return Err(CaError::CsrRefused(format!(
                    "RSA-{bits} key is too short: profile {} needs at least {} bits",
                    profile.name, profile.min_rsa_bits
                )));
            }
            profile.accepted_keys.iter().any(|k| k.name().starts_with("rsa"))
        }
    };
    if !accepted {
        return Err(CaError::CsrRefused(format!("{algorithm} keys are not accepted by profile {}", profile.name)));
    }
    let message = req.info.to_der().map_err(CaError::encoding)?;
    let sig =
        req.signature.as_bytes().ok_or_else(|| CaError::CsrRefused("signature bit string has unused bits".into()))?;
    let bad_sig =
        || CaError::CsrRefused("the request's self-signature does not verify (proof of possession failed)".into());
    let alg = req.algorithm.oid;
    match algorithm {
        KeyDescription::Ec(curve) => {
            let digest = match alg {
                rfc5912::ECDSA_WITH_SHA_256 => sha256(&message),
                rfc5912::ECDSA_WITH_SHA_384 => sha384(&message),
                rfc5912::ECDSA_WITH_SHA_512 => sha512(&message),
                other => {
                    return Err(CaError::CsrRefused(format!("signature algorithm {other} does not fit an EC key")))
                }
            };
            let ok = match curve {
                KeyAlgorithm::EcP256 => p256::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .ok()
                    .zip(p256::ecdsa::Signature::from_der(sig).ok())
                    .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
                KeyAlgorithm::EcP384 => p384::ecdsa::VerifyingKey::from_public_key_der(&spki_der)
                    .ok()
                    .zip(p384::ecdsa::Signature::from_der(sig).ok())
                    .is_some_and(|(k, s)| k.verify_prehash(&digest, &s).is_ok()),
                _ => false,
            };
            if !ok {
                return Err(bad_sig());
            }
        }
        KeyDescription::Rsa { .. } => {
            let key =
                rsa::RsaPublicKey::from_public_key_der(&spki_der).map_err(|e| CaError::CsrRefused(e.to_string()))?;
            let (scheme, digest) = match alg {
                rfc5912::SHA_256_WITH_RSA_ENCRYPTION => (rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), sha256(&message)),
                rfc5912::SHA_384_WITH_RSA_ENCRYPTION => (rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), sha384(&message)),
                rfc5912::SHA_512_WITH_RSA_ENCRYPTION => (rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), sha512(&message)),
                other => {
                    return Err(CaError::CsrRefused(format!(
                        "signature algorithm {other} is not accepted for RSA requests (use sha256WithRSAEncryption or stronger)"
                    )))
                }
            };
            key.verify(scheme, &digest, sig).map_err(|_| bad_sig())?;
        }
    }
    Ok(VerifiedKey { spki, algorithm })
}

/// Build a PKCS#10 request for the key `signer` holds, with `subject`
/// (qcert ignores a request's subject, so `qcert enroll` sends the current
/// certificate's, or an empty one), self-signed with that key: the
/// holder-side half of [`verify`], used by the holder's token tool.
pub fn build(subject: x509_cert::name::Name, signer: &crate::signer::CaSigner) -> Result<Vec<u8>, CaError> {
    let info = x509_cert::request::CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned::from_der(signer.spki_der()).map_err(CaError::encoding)?,
        attributes: Default::default(),
    };
    let signature = signer.sign_blocking(&info.to_der().map_err(CaError::encoding)?)?;
    let req = CertReq {
        info,
        algorithm: signer.algorithm_identifier().clone(),
        signature: der::asn1::BitString::from_bytes(&signature).map_err(CaError::encoding)?,
    };
    req.to_der().map_err(CaError::encoding)
}

/// Classify a public key.
pub fn describe(spki: &SubjectPublicKeyInfoOwned) -> Result<KeyDescription, CaError> {
    match spki.algorithm.oid {
        rfc5912::ID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<der::asn1::ObjectIdentifier>().ok())
                .ok_or_else(|| CaError::CsrRefused("EC key without a named curve".into()))?;
            match curve {
                rfc5912::SECP_256_R_1 => Ok(KeyDescription::Ec(KeyAlgorithm::EcP256)),
                rfc5912::SECP_384_R_1 => Ok(KeyDescription::Ec(KeyAlgorithm::EcP384)),
                other => Err(CaError::CsrRefused(format!("EC curve {other} is not accepted (P-256 and P-384 are)"))),
            }
        }
        rfc5912::RSA_ENCRYPTION => {
            let der = spki.to_der().map_err(CaError::encoding)?;
            let key = rsa::RsaPublicKey::from_public_key_der(&der)
                .map_err(|e| CaError::CsrRefused(format!("bad RSA key: {e}")))?;
            Ok(KeyDescription::Rsa { bits: rsa::traits::PublicKeyParts::size(&key) * 8 })
        }
        other => Err(CaError::CsrRefused(format!(
            "key algorithm {other} is not accepted (P-256, P-384 and RSA of 3072 bits or more are)"
        ))),
    }
}

fn sha256(m: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(m).to_vec()
}
fn sha384(m: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha384::digest(m).to_vec()
}
fn sha512(m: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha512::digest(m).to_vec()
}
