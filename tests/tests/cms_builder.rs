#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
//! The CMS SignedData builder (`cms::SignedDataBuilder`) signing with a key on
//! SoftHSM: openssl's `cms -verify` and our own verifiers accept what it makes,
//! attached and detached, SHA-256/384/512, EC and RSA, with an unsigned
//! attribute added after signing.

use std::path::Path;
use std::process::Command;

use der::asn1::{OctetString, Utf8StringRef};
use der::{Decode, Encode};
use qcert_ca_core::ca::ServiceCert;
use qcert_ca_core::ceremony;
use qcert_ca_core::cms::{
    self, attribute, Content, DigestAlgorithm, SignedDataBuilder, SigningCertificateV2, ID_AA_SIGNING_CERTIFICATE_V2,
};
use qcert_ca_core::policy::CaKeySpec;
use qcert_ca_core::signer::CaSigner;
use qcert_ca_core::Ca;
use qcert_hsm::KeyAlgorithm;
use qcert_tests::{new_ca, random_hex, run_ok, test_clock, Backend, TestDb};
use x509_cert::Certificate;

const DOCUMENT: &[u8] = b"%PDF-1.7 pretend this is the ByteRange of a confirmation document\n";

/// A service key on the CA's token with its certificate from the issuing CA
/// (the seal ceremony's code path).
async fn service_key(ca: &Ca, algorithm: KeyAlgorithm) -> (CaSigner, Certificate) {
    let spec = CaKeySpec {
        common_name: format!("qcert Test Seal {}", random_hex(2)),
        key_label: format!("test-seal-{}", random_hex(4)),
        key_algorithm: algorithm,
        validity: time::Duration::days(365),
    };
    let made =
        ceremony::service_certificate(ca.hsm(), ca.registry(), ca.policy(), &spec, ServiceCert::Seal, &**ca.clock())
            .await
            .unwrap();
    let key = ca.hsm().find_key(&spec.key_label).unwrap();
    (CaSigner::new(ca.hsm().clone(), key).unwrap(), Certificate::from_der(&made.der).unwrap())
}

fn openssl_verify(dir: &Path, cms: &[u8], detached: Option<&[u8]>) -> String {
    let input = dir.join(format!("{}.cms", random_hex(4)));
    std::fs::write(&input, cms).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-CAfile"])
        .arg(dir.join("chain.pem"))
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(dir.join("out"));
    if let Some(content) = detached {
        std::fs::write(dir.join("content"), content).unwrap();
        cmd.arg("-content").arg(dir.join("content"));
    }
    run_ok(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_and_our_verifier_accept_what_the_builder_signs() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (ca, _config) = new_ca(&db, test_clock()).await;
    let tmp = tempfile::tempdir().unwrap();
    let h = ca.hierarchy();
    let chain =
        format!("{}{}", qcert_ca_core::pem("CERTIFICATE", &h.root), qcert_ca_core::pem("CERTIFICATE", &h.issuing));
    std::fs::write(tmp.path().join("chain.pem"), chain).unwrap();
    let issuing = Certificate::from_der(&h.issuing).unwrap();
    let now = ca.clock().now();

    for (algorithm, digests) in [
        (KeyAlgorithm::EcP384, &[DigestAlgorithm::Sha256, DigestAlgorithm::Sha384, DigestAlgorithm::Sha512][..]),
        (KeyAlgorithm::Rsa3072, &[DigestAlgorithm::Sha256, DigestAlgorithm::Sha512][..]),
    ] {
        let (signer, cert) = service_key(&ca, algorithm).await;
        for &d in digests {
            let what = format!("{algorithm} {d:?}");
            // Attached id-data, with the chain and a signing-time.
            let attached = SignedDataBuilder::new(
                Content::Attached { content_type: const_oid_data(), content: DOCUMENT },
                d,
                &cert,
            )
            .chain(std::slice::from_ref(&issuing))
            .signing_time(now)
            .sign(&signer)
            .await
            .unwrap()
            .to_der()
            .unwrap();
            let text = openssl_verify(tmp.path(), &attached, None);
            assert!(text.contains("Verification successful"), "{what}: {text}");
            assert_eq!(std::fs::read(tmp.path().join("out")).unwrap(), DOCUMENT, "{what}");
            let verified = cms::verify_signed_data(&attached, &cert).unwrap();
            assert_eq!(verified.content, DOCUMENT);
            assert_eq!(verified.signing_time.map(|t| t.unix_timestamp()), Some(now.unix_timestamp()));

            // Detached, given the document's digest (the PDF case), then an
            // unsigned attribute added after signing.
            let md = cms::digest(d, DOCUMENT);
            let mut signed =
                SignedDataBuilder::new(Content::Detached { digest: &md }, d, &cert).sign(&signer).await.unwrap();
            let before = signed.signature().unwrap().to_vec();
            let oid = der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1");
            signed.add_unsigned_attribute(attribute(oid, &Utf8StringRef::new("after").unwrap()).unwrap()).unwrap();
            assert_eq!(signed.signature().unwrap(), before, "{what}: adding an unsigned attribute keeps the signature");
            let detached = signed.to_der().unwrap();
            let text = openssl_verify(tmp.path(), &detached, Some(DOCUMENT));
            assert!(text.contains("Verification successful"), "{what}: {text}");
            let printed = run_ok(
                Command::new("openssl")
                    .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
                    .arg(write_der(tmp.path(), &detached)),
            );
            assert!(printed.contains("1.3.6.1.4.1.99999.1"), "{what}: unsigned attribute printed:\n{printed}");
            assert!(printed.contains("id-smime-aa-signingCertificateV2"), "{what}:\n{printed}");
            assert!(!printed.contains("signingTime"), "{what}: no signing-time unless asked");

            let verified = cms::verify_detached(&detached, &cert, DOCUMENT).unwrap();
            assert_eq!(verified.content, DOCUMENT);
            assert!(verified.signing_time.is_none());
            // Another document, a detached signature given as attached, an
            // attached one given as detached: refused.
            assert!(matches!(cms::verify_detached(&detached, &cert, b"other"), Err(cms::CmsError::DigestMismatch)));
            assert!(matches!(cms::verify_signed_data(&detached, &cert), Err(cms::CmsError::Detached)));
            assert!(matches!(cms::verify_detached(&attached, &cert, DOCUMENT), Err(cms::CmsError::Attached)));
            // Another certificate than the signer's.
            assert!(matches!(
                cms::verify_detached(&detached, &issuing, DOCUMENT),
                Err(cms::CmsError::WrongSigner { .. })
            ));

            // The signer's certificate twice in the certificate set, as
            // pyHanko's CSCSigner sends it (a SET OF may repeat a value):
            // verified like the original, and still only by its signer.
            let twice = with_certificates(signed.signed_data(), &[&cert, &issuing, &cert]);
            let strict = ::cms::content_info::ContentInfo::from_der(&twice).unwrap();
            assert!(strict.content.decode_as::<::cms::signed_data::SignedData>().is_err(), "the cms crate refuses it");
            let text = openssl_verify(tmp.path(), &twice, Some(DOCUMENT));
            assert!(text.contains("Verification successful"), "{what}: {text}");
            assert_eq!(cms::verify_detached(&twice, &cert, DOCUMENT).unwrap().content, DOCUMENT, "{what}");
            assert!(matches!(cms::verify_detached(&twice, &cert, b"other"), Err(cms::CmsError::DigestMismatch)));
            assert!(matches!(cms::verify_detached(&twice, &issuing, DOCUMENT), Err(cms::CmsError::WrongSigner { .. })));

            // signing-certificate-v2 names the signer certificate by its hash.
            let sd = signed.signed_data();
            let attrs = sd.signer_infos.0.get(0).unwrap().signed_attrs.as_ref().unwrap();
            let ess = attrs.iter().find(|a| a.oid == ID_AA_SIGNING_CERTIFICATE_V2).unwrap();
            let ess: SigningCertificateV2 = ess.values.get(0).unwrap().decode_as().unwrap();
            let id = ess.certs.first().unwrap();
            assert_eq!(id.cert_hash, OctetString::new(cms::digest(d, &cert.to_der().unwrap())).unwrap(), "{what}");
            assert_eq!(id.hash_algorithm.is_none(), d == DigestAlgorithm::Sha256, "{what}: SHA-256 is the DEFAULT");
        }
        // Another type of content (a time-stamp token's TSTInfo), verified as such.
        let der = SignedDataBuilder::new(
            Content::Attached { content_type: cms::ID_CT_TST_INFO, content: b"\x30\x00" },
            DigestAlgorithm::Sha384,
            &cert,
        )
        .certificates(false)
        .sign(&signer)
        .await
        .unwrap()
        .to_der()
        .unwrap();
        assert!(cms::verify_signed_content(&der, &cert, cms::ID_CT_TST_INFO).is_ok());
        assert!(matches!(cms::verify_signed_data(&der, &cert), Err(cms::CmsError::ContentType(_))));
        // A key that is not the certificate's signs nothing.
        let (other, _) = service_key(&ca, algorithm).await;
        let refused = SignedDataBuilder::new(Content::Detached { digest: &[0; 48] }, DigestAlgorithm::Sha384, &cert)
            .sign(&other)
            .await;
        assert!(refused.is_err());
    }
    db.cleanup().await;
}

/// A ContentInfo of `sd` with `certs` as its certificate set, in this
/// order and with any repeats (DER written here: the `cms` crate's
/// `CertificateSet` cannot hold a value twice).
fn with_certificates(sd: &::cms::signed_data::SignedData, certs: &[&Certificate]) -> Vec<u8> {
    fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend(der::Length::try_from(value.len()).unwrap().to_der().unwrap());
        out.extend_from_slice(value);
        out
    }
    let set: Vec<u8> = certs.iter().flat_map(|c| c.to_der().unwrap()).collect();
    let mut body = sd.version.to_der().unwrap();
    body.extend(sd.digest_algorithms.to_der().unwrap());
    body.extend(sd.encap_content_info.to_der().unwrap());
    body.extend(tlv(0xa0, &set));
    body.extend(sd.signer_infos.to_der().unwrap());
    let signed_data_oid = der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2").to_der().unwrap();
    tlv(0x30, &[signed_data_oid, tlv(0xa0, &tlv(0x30, &body))].concat())
}

fn const_oid_data() -> der::oid::ObjectIdentifier {
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1")
}

fn write_der(dir: &Path, der: &[u8]) -> std::path::PathBuf {
    let p = dir.join(format!("{}.der", random_hex(4)));
    std::fs::write(&p, der).unwrap();
    p
}
