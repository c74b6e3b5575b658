use const_oid::db::{rfc5912, rfc5912::ID_EC_PUBLIC_KEY};
use der::asn1::{AnyRef, BitString, ObjectIdentifier};
use der::Encode;
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::HsmError;

/// Key pairs qcert makes and uses on the HSM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    EcP256,
    EcP384,
    Rsa3072,
    Rsa4096,
}

impl KeyAlgorithm {
    pub(crate) fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            KeyAlgorithm::EcP256 => Some(rfc5912::SECP_256_R_1),
            KeyAlgorithm::EcP384 => Some(rfc5912::SECP_384_R_1),
            _ => None,
        }
    }

    pub(crate) fn from_curve_oid(oid: &ObjectIdentifier) -> Option<KeyAlgorithm> {
        match *oid {
            rfc5912::SECP_256_R_1 => Some(KeyAlgorithm::EcP256),
            rfc5912::SECP_384_R_1 => Some(KeyAlgorithm::EcP384),
            _ => None,
        }
    }

    pub(crate) fn rsa_bits(self) -> u64 {
        match self {
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
            _ => 0,
        }
    }

    pub(crate) fn from_rsa_bits(bits: usize) -> Option<KeyAlgorithm> {
        match bits {
            3072 => Some(KeyAlgorithm::Rsa3072),
            4096 => Some(KeyAlgorithm::Rsa4096),
            _ => None,
        }
    }

    /// The signature algorithm qcert uses with this key by default.
    pub fn default_signature(self) -> SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcP256 => SignatureAlgorithm::EcdsaSha256,
            KeyAlgorithm::EcP384 => SignatureAlgorithm::EcdsaSha384,
            KeyAlgorithm::Rsa3072 => SignatureAlgorithm::RsaPkcs1Sha256,
            KeyAlgorithm::Rsa4096 => SignatureAlgorithm::RsaPkcs1Sha384,
        }
    }

    /// Key size in bits (the curve's field size for EC keys).
    pub fn size_bits(self) -> u32 {
        match self {
            KeyAlgorithm::EcP256 => 256,
            KeyAlgorithm::EcP384 => 384,
            KeyAlgorithm::Rsa3072 => 3072,
            KeyAlgorithm::Rsa4096 => 4096,
        }
    }

    /// Name used in configuration files: `ec-p256`, `ec-p384`, `rsa-3072`, `rsa-4096`.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcP256 => "ec-p256",
            KeyAlgorithm::EcP384 => "ec-p384",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096]
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| format!("unknown key algorithm {s:?} (expected ec-p256, ec-p384, rsa-3072 or rsa-4096)"))
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Signature schemes the HSM adapter produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    EcdsaSha256,
    EcdsaSha384,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPssSha256,
    RsaPssSha384,
}

impl SignatureAlgorithm {
    pub(crate) fn fits(self, key: KeyAlgorithm) -> bool {
        let ec = matches!(self, SignatureAlgorithm::EcdsaSha256 | SignatureAlgorithm::EcdsaSha384);
        ec == matches!(key, KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384)
    }

    /// The AlgorithmIdentifier that goes into certificates, CRLs and OCSP
    /// responses: ECDSA with *absent* parameters, PKCS#1 v1.5 with NULL,
    /// PSS with its RSASSA-PSS-params (RFC 4055).
    pub fn algorithm_identifier(self) -> Result<AlgorithmIdentifierOwned, HsmError> {
        let with = |oid, parameters| AlgorithmIdentifierOwned { oid, parameters };
        Ok(match self {
            SignatureAlgorithm::EcdsaSha256 => with(rfc5912::ECDSA_WITH_SHA_256, None),
            SignatureAlgorithm::EcdsaSha384 => with(rfc5912::ECDSA_WITH_SHA_384, None),
            SignatureAlgorithm::RsaPkcs1Sha256 => with(rfc5912::SHA_256_WITH_RSA_ENCRYPTION, Some(AnyRef::NULL.into())),
            SignatureAlgorithm::RsaPkcs1Sha384 => with(rfc5912::SHA_384_WITH_RSA_ENCRYPTION, Some(AnyRef::NULL.into())),
            SignatureAlgorithm::RsaPssSha256 => pss_identifier::<sha2::Sha256>()?,
            SignatureAlgorithm::RsaPssSha384 => pss_identifier::<sha2::Sha384>()?,
        })
    }
}

fn pss_identifier<D>() -> Result<AlgorithmIdentifierOwned, HsmError>
where
    D: sha2::Digest + const_oid::AssociatedOid,
{
    let params = rsa::pss::get_default_pss_signature_algo_id::<D>().map_err(HsmError::encoding)?;
    Ok(params)
}

/// Turn the HSM's raw output into the encoding X.509 wants.
pub(crate) fn encode_signature(key: KeyAlgorithm, raw: Vec<u8>) -> Result<Vec<u8>, HsmError> {
    match key {
        KeyAlgorithm::EcP256 => {
            Ok(p256::ecdsa::Signature::from_slice(&raw).map_err(HsmError::encoding)?.to_der().as_bytes().to_vec())
        }
        KeyAlgorithm::EcP384 => {
            Ok(p384::ecdsa::Signature::from_slice(&raw).map_err(HsmError::encoding)?.to_der().as_bytes().to_vec())
        }
        KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => Ok(raw),
    }
}

pub(crate) fn ec_spki(key: KeyAlgorithm, point: &[u8]) -> Result<Vec<u8>, HsmError> {
    let curve = key.curve_oid().ok_or_else(|| HsmError::UnsupportedKey(format!("{key} is not EC")))?;
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: ID_EC_PUBLIC_KEY, parameters: Some(curve.into()) },
        subject_public_key: BitString::from_bytes(point).map_err(HsmError::encoding)?,
    };
    spki.to_der().map_err(HsmError::encoding)
}

pub(crate) fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, HsmError> {
    use rsa::pkcs8::EncodePublicKey;
    let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(modulus), rsa::BigUint::from_bytes_be(exponent))
        .map_err(HsmError::encoding)?;
    Ok(key.to_public_key_der().map_err(HsmError::encoding)?.into_vec())
}
