//! `qcert enroll`: the holder's token tool (the seed's "certSIGN Enroll").
//!
//! It runs on the holder's machine against the holder's own PKCS#11 token
//! (OpenSC's module for a smart card, SoftHSM's in tests) through
//! `qcert-hsm`, and talks to qcert's public HTTP API only: it needs no
//! qcert home and never sees the registry. Keys are made on the token
//! (sensitive, non-extractable) and never leave it; the tool signs there:
//! - `request`: a new key pair and its PKCS#10 request (a TOKEN order's CSR);
//! - `load`: a certificate file written onto the token next to its key;
//! - `renew`: a new key pair, its request, and the renewal order signed
//!   with the current key (CMS SignedData over `{serial, years, csr}`);
//! - `fetch`: the renewed certificate downloaded and written next to its
//!   key; the old certificate object is deleted (seed 002);
//! - `revoke`: a self-revocation signed with the certificate's key.
//!
//! The PIN comes from `--pin-file` or a prompt (hidden on a terminal, else
//! one line of standard input), never from an argument.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use clap::{Args, Subcommand};
use der::{Decode, Encode};
use qcert_ca_core::cms::{Content, SignedDataBuilder};
use qcert_ca_core::signer::CaSigner;
use qcert_hsm::{DigestAlgorithm, Hsm, HsmConfig, KeyAlgorithm};
use secrecy::SecretString;
use x509_cert::Certificate;

/// Where OpenSC's PKCS#11 module lives on Debian (smart cards and USB tokens).
const OPENSC_MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// qcert's public address, the base of its API (e.g. https://ca.example.eu).
    #[arg(long, env = "QCERT_SERVER")]
    server: url::Url,
    /// The token's PKCS#11 module.
    #[arg(long, env = "QCERT_PKCS11_MODULE", default_value = OPENSC_MODULE)]
    module: PathBuf,
    /// The token's label.
    #[arg(long, env = "QCERT_TOKEN")]
    token: String,
    /// A file holding the token's user PIN; without it, a prompt.
    #[arg(long)]
    pin_file: Option<PathBuf>,
    #[command(subcommand)]
    what: EnrollCommand,
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Make a new key pair on the token and print its certificate request
    /// (PEM), for a TOKEN order's CSR step.
    Request {
        /// Label of the new key pair (and later of its certificate).
        #[arg(long)]
        label: String,
        /// ec-p256, ec-p384, rsa-3072 or rsa-4096.
        #[arg(long, default_value = "ec-p256")]
        algorithm: KeyAlgorithm,
    },
    /// Write a certificate (PEM or DER file, e.g. from the order's link)
    /// onto the token next to its key pair.
    Load {
        #[arg(long)]
        label: String,
        certificate: PathBuf,
    },
    /// Order the renewal of the certificate on the token: a new key pair,
    /// its request, and the order signed with the current key. Prints the
    /// renewal id and what to do next (pay; then `fetch`).
    Renew {
        /// Label of the current certificate and its key.
        #[arg(long)]
        label: String,
        /// Label of the new key pair.
        #[arg(long)]
        new_label: String,
        /// Validity of the renewed certificate: 1, 2 or 3 years.
        #[arg(long, default_value_t = 1)]
        years: u8,
        /// Algorithm of the new key (default: the current key's).
        #[arg(long)]
        algorithm: Option<KeyAlgorithm>,
    },
    /// Download the certificate the renewal issued and write it onto the
    /// token next to its key; the old certificate object is deleted.
    Fetch {
        /// Label of the certificate that was renewed.
        #[arg(long)]
        label: String,
    },
    /// Revoke the certificate on the token, by a request signed with its key.
    Revoke {
        #[arg(long)]
        label: String,
        /// RFC 5280 reason: unspecified, keyCompromise, affiliationChanged,
        /// superseded, cessationOfOperation.
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

/// Run one `qcert enroll` command (no qcert home: the holder's machine).
pub fn run(args: EnrollArgs) -> anyhow::Result<()> {
    let pin = read_pin(args.pin_file.as_deref(), &args.token)?;
    let hsm = Hsm::open(&HsmConfig { module: args.module.clone(), token_label: args.token.clone(), pin })
        .with_context(|| format!("cannot open the token {:?}", args.token))?;
    let api = Api::new(&args.server)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match args.what {
            EnrollCommand::Request { label, algorithm } => {
                let signer = new_key(&hsm, &label, algorithm)?;
                print!("{}", qcert_ca_core::pem("CERTIFICATE REQUEST", &csr(&signer, None)?));
                eprintln!("made key pair {label:?} on the token; send the request above to your order's CSR step");
                Ok(())
            }
            EnrollCommand::Load { label, certificate } => {
                let bytes = std::fs::read(&certificate)
                    .with_context(|| format!("cannot read the certificate file {}", certificate.display()))?;
                let cert = parse_certificate(&bytes)
                    .with_context(|| format!("{} holds no certificate", certificate.display()))?;
                load(&hsm, &label, &cert)?;
                eprintln!("loaded certificate {} onto the token as {label:?}", serial_hex(&cert));
                Ok(())
            }
            EnrollCommand::Renew { label, new_label, years, algorithm } => {
                renew(&hsm, &api, &label, &new_label, years, algorithm).await
            }
            EnrollCommand::Fetch { label } => fetch(&hsm, &api, &label).await,
            EnrollCommand::Revoke { label, reason } => revoke(&hsm, &api, &label, &reason).await,
        }
    })
}

/// The PIN from its file (first line) or a prompt ([`crate::cli::prompt_secret`]).
fn read_pin(file: Option<&Path>, token: &str) -> anyhow::Result<SecretString> {
    let text = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("cannot read the PIN file {}", f.display()))?,
        None => crate::cli::prompt_secret(&format!("PIN of token {token}: ")).context("cannot read the PIN")?,
    };
    let pin = text.lines().next().unwrap_or_default().to_owned();
    ensure!(!pin.is_empty(), "the PIN is empty");
    Ok(SecretString::new(pin))
}

fn new_key(hsm: &Hsm, label: &str, algorithm: KeyAlgorithm) -> anyhow::Result<CaSigner> {
    let key = hsm.generate_key(label, algorithm).with_context(|| format!("cannot make key pair {label:?}"))?;
    Ok(CaSigner::new(hsm.clone(), key)?)
}

fn signer(hsm: &Hsm, label: &str) -> anyhow::Result<CaSigner> {
    let key = hsm.find_key(label).with_context(|| format!("no key pair {label:?} on the token"))?;
    Ok(CaSigner::new(hsm.clone(), key)?)
}

/// A PKCS#10 request for `signer`'s key (qcert takes only the key from it).
fn csr(signer: &CaSigner, subject: Option<&Certificate>) -> anyhow::Result<Vec<u8>> {
    let name = subject.map(|c| c.tbs_certificate.subject.clone()).unwrap_or_default();
    Ok(qcert_ca_core::csr::build(name, signer)?)
}

fn parse_certificate(bytes: &[u8]) -> anyhow::Result<Certificate> {
    if bytes.starts_with(b"-----BEGIN") {
        // The first block of a chain file is the holder's certificate.
        let chain = Certificate::load_pem_chain(bytes).context("the PEM file holds no valid X.509 certificates")?;
        chain.into_iter().next().context("no PEM CERTIFICATE block")
    } else {
        Certificate::from_der(bytes).context("the file is not a DER X.509 certificate")
    }
}

fn serial_hex(cert: &Certificate) -> String {
    hex::encode(cert.tbs_certificate.serial_number.as_bytes())
}

/// Write `cert` next to key pair `label`, after checking it certifies that key.
fn load(hsm: &Hsm, label: &str, cert: &Certificate) -> anyhow::Result<()> {
    let key = hsm.find_key(label).with_context(|| format!("no key pair {label:?} on the token"))?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    ensure!(spki == key.spki_der(), "the certificate is not for key pair {label:?} (another public key)");
    let subject = cert.tbs_certificate.subject.to_der()?;
    hsm.store_certificate(label, &cert.to_der()?, &subject)
        .with_context(|| format!("cannot write the certificate next to {label:?}"))?;
    Ok(())
}

/// The certificate object labelled `label` on the token.
fn token_certificate(hsm: &Hsm, label: &str) -> anyhow::Result<Certificate> {
    let found = hsm.certificates()?.into_iter().find(|(l, _)| l == label);
    let (_, der) = found.with_context(|| format!("no certificate {label:?} on the token"))?;
    Certificate::from_der(&der).with_context(|| format!("the certificate {label:?} on the token is damaged"))
}

/// A CMS SignedData over `content` (JSON) made on the token with the key
/// of `cert`, with a signing time (qcert refuses signed requests without).
async fn signed_request(signer: &CaSigner, cert: &Certificate, content: &[u8]) -> anyhow::Result<Vec<u8>> {
    let digest = match signer.key_algorithm() {
        KeyAlgorithm::EcP384 => DigestAlgorithm::Sha384,
        _ => DigestAlgorithm::Sha256,
    };
    let content = Content::Attached { content_type: const_oid::db::rfc5911::ID_DATA, content };
    let cms =
        SignedDataBuilder::new(content, digest, cert).signing_time(crate::cli::clock()?.now()).sign(signer).await?;
    Ok(cms.to_der()?)
}

async fn renew(
    hsm: &Hsm,
    api: &Api,
    label: &str,
    new_label: &str,
    years: u8,
    algorithm: Option<KeyAlgorithm>,
) -> anyhow::Result<()> {
    let cert = token_certificate(hsm, label)?;
    let current = signer(hsm, label)?;
    ensure!(label != new_label, "the new key needs a label of its own, not {label:?}");
    let next = new_key(hsm, new_label, algorithm.unwrap_or(current.key_algorithm()))?;
    let csr = qcert_ca_core::pem("CERTIFICATE REQUEST", &csr(&next, Some(&cert))?);
    let serial = serial_hex(&cert);
    let body = serde_json::to_vec(&serde_json::json!({ "serial": serial, "years": years, "csr": csr }))?;
    let request = signed_request(&current, &cert, &body).await?;
    let answer = api.post(&format!("api/v1/certificates/{serial}/renewals"), "application/pkcs7-mime", request).await?;
    let field = |k: &str| answer.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
    println!(
        "renewal {} ordered for certificate {serial}; new key pair {new_label:?} made on the token",
        field("renewal_id")
    );
    println!("pay it at {}", field("payment_url"));
    println!("once paid, the new certificate is issued at {}", field("issue_at"));
    println!("then run `qcert enroll fetch --label {label}` to load it onto the token");
    Ok(())
}

async fn fetch(hsm: &Hsm, api: &Api, label: &str) -> anyhow::Result<()> {
    let old = token_certificate(hsm, label)?;
    let serial = serial_hex(&old);
    let pem = api.get_text(&format!("api/v1/certificates/{serial}/renewal/certificate")).await?;
    let new = parse_certificate(pem.as_bytes()).context("the server's answer holds no certificate")?;
    ensure!(
        new.tbs_certificate.subject == old.tbs_certificate.subject,
        "the renewed certificate names another subject than {serial}: not loaded"
    );
    let spki = new.tbs_certificate.subject_public_key_info.to_der()?;
    let mut target = None;
    for candidate in hsm.key_labels()? {
        if hsm.find_key(&candidate).is_ok_and(|k| k.spki_der() == spki.as_slice()) {
            target = Some(candidate);
            break;
        }
    }
    let Some(new_label) = target else {
        bail!("no key pair on this token matches the renewed certificate (was the renewal ordered from another token?)")
    };
    load(hsm, &new_label, &new)?;
    let deleted = hsm.delete_certificates(label)?;
    println!(
        "loaded certificate {} as {new_label:?}; deleted the old certificate {serial} ({deleted} object{})",
        serial_hex(&new),
        if deleted == 1 { "" } else { "s" }
    );
    Ok(())
}

async fn revoke(hsm: &Hsm, api: &Api, label: &str, reason: &str) -> anyhow::Result<()> {
    let cert = token_certificate(hsm, label)?;
    let key = signer(hsm, label)?;
    let serial = serial_hex(&cert);
    let body = serde_json::to_vec(&serde_json::json!({ "serial": serial, "reason": reason }))?;
    let request = signed_request(&key, &cert, &body).await?;
    let answer =
        api.post(&format!("api/v1/certificates/{serial}/revocation"), "application/pkcs7-mime", request).await?;
    let at = answer.get("revoked_at").and_then(|v| v.as_str()).unwrap_or("now");
    println!("certificate {serial} revoked at {at} ({reason})");
    Ok(())
}

/// qcert's public API, as a holder reaches it.
#[derive(Debug)]
struct Api {
    base: url::Url,
    http: reqwest::Client,
}

impl Api {
    fn new(server: &url::Url) -> anyhow::Result<Api> {
        ensure!(matches!(server.scheme(), "http" | "https"), "--server must be an http or https address");
        let mut base = server.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("qcert-enroll/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Api { base, http })
    }

    fn url(&self, path: &str) -> anyhow::Result<url::Url> {
        Ok(self.base.join(path)?)
    }

    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .http
            .post(self.url(path)?)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .context("cannot reach qcert")?;
        let text = answer(resp).await?;
        serde_json::from_str(&text).context("qcert's answer is not JSON")
    }

    async fn get_text(&self, path: &str) -> anyhow::Result<String> {
        let resp = self.http.get(self.url(path)?).send().await.context("cannot reach qcert")?;
        answer(resp).await
    }
}

/// The body of a successful answer; a problem document's title and detail otherwise.
async fn answer(resp: reqwest::Response) -> anyhow::Result<String> {
    let status = resp.status();
    let text = resp.text().await.context("cannot read qcert's answer")?;
    if status.is_success() {
        return Ok(text);
    }
    let problem: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let title = problem.get("title").and_then(|v| v.as_str()).unwrap_or("");
    let detail = problem.get("detail").and_then(|v| v.as_str()).unwrap_or("");
    bail!("qcert refused ({status}): {title}{}{detail}", if detail.is_empty() { "" } else { ": " })
}
