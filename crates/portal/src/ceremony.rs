//! `qcert ceremony`: scripted key ceremonies, each driven by one TOML file
//! in `policies/` (after Boulder's `cmd/ceremony`), each writing a
//! hash-stamped JSON report (EN 319 411-1 GEN-6.5.1-13A).
//!
//! - `root`: key and self-signed certificate on the root token.
//! - `issuing-ca`: key on the online token (made by a child process,
//!   `ceremony keygen`, because a process opens one SoftHSM token store),
//!   certificate signed on the root token after the profile check.
//! - `ocsp-responder`: key and certificate on the online token, under the
//!   issuing CA; run again with a new key label to renew.
//! - `arl`: the root's CRL, nextUpdate at most 12 months, written to `arl/`
//!   (where `qcert serve` picks the newest up) and into the registry.
//!
//! Dual control (GEN-6.4.3-02, GEN-6.5.1-04): two named officers each
//! enter their own credential (from a file or typed at the prompt, never
//! an argument). The root token's PIN is derived from both credentials, so
//! it opens only with both; the root ceremony enrols each officer's
//! Argon2id verifier in the registry, and ceremonies on the online token
//! check each credential against it. Reports name who confirmed, never a
//! secret. `qcert serve` and `qcert notify` never read these files: the
//! root token is named only here.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, ensure, Context};
use clap::{Args, Subcommand};
use qcert_ca_core::ceremony::{self, Certified, KeyFacts};
use qcert_ca_core::policy::CaKeySpec;
use qcert_ca_core::{Clock, Policy, Registry};
use qcert_hsm::{Hsm, HsmConfig, KeyAlgorithm, TokenFacts};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum CeremonyCommand {
    /// The root CA: key and self-signed certificate on the root token.
    Root(ConfigArg),
    /// An issuing CA: key on the online token, certificate signed on the root token.
    IssuingCa(ConfigArg),
    /// The OCSP responder: key and certificate under the issuing CA (again, with a new label, to renew).
    OcspResponder(ConfigArg),
    /// The root's ARL (CRL of CA certificates), nextUpdate at most 12 months ahead.
    Arl(ConfigArg),
    /// The QTSP's own seal: key on the online token, certificate from the issuing CA.
    Seal(ConfigArg),
    /// A time-stamping unit: key on the online token, certificate (EKU timeStamping, critical) from the issuing CA.
    Tsa(ConfigArg),
    /// Initialise the root token (PIN derived from the two officers' credentials). Run by `qcert init`.
    #[command(hide = true)]
    InitToken(ConfigArg),
    /// Generate a key on the online token and print its public key (the online half of `issuing-ca`).
    #[command(hide = true)]
    Keygen {
        #[arg(long)]
        label: String,
        #[arg(long)]
        algorithm: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The ceremony's configuration (default: policies/ceremony-<name>.toml in the home).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl CeremonyCommand {
    fn name(&self) -> &'static str {
        match self {
            CeremonyCommand::Root(_) => "root",
            CeremonyCommand::IssuingCa(_) => "issuing-ca",
            CeremonyCommand::OcspResponder(_) => "ocsp-responder",
            CeremonyCommand::Arl(_) => "arl",
            CeremonyCommand::Seal(_) => "seal",
            CeremonyCommand::Tsa(_) => "tsa",
            CeremonyCommand::InitToken(_) => "root",
            CeremonyCommand::Keygen { .. } => "keygen",
        }
    }

    fn config_arg(&self) -> Option<&ConfigArg> {
        match self {
            CeremonyCommand::Root(c)
            | CeremonyCommand::IssuingCa(c)
            | CeremonyCommand::OcspResponder(c)
            | CeremonyCommand::Arl(c)
            | CeremonyCommand::Seal(c)
            | CeremonyCommand::Tsa(c)
            | CeremonyCommand::InitToken(c) => Some(c),
            CeremonyCommand::Keygen { .. } => None,
        }
    }

    /// Does this command work on the root token (else the online one)?
    fn on_root_token(&self) -> bool {
        matches!(
            self,
            CeremonyCommand::Root(_)
                | CeremonyCommand::IssuingCa(_)
                | CeremonyCommand::Arl(_)
                | CeremonyCommand::InitToken(_)
        )
    }
}

/// One ceremony's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CeremonyConfig {
    /// Which ceremony this file drives: root, issuing-ca, ocsp-responder, arl, seal, tsa.
    pub ceremony: String,
    /// issuing-ca only: replace the current issuing CA, which is retired (keeps
    /// its CRL and OCSP for what it issued); new issuance moves to the new one.
    #[serde(default)]
    pub rollover: bool,
    /// The root token (root, issuing-ca, arl). Online ceremonies use qcert.toml's [hsm].
    pub token: Option<TokenSection>,
    /// The key to make (root, issuing-ca, ocsp-responder).
    pub key: Option<KeySection>,
    /// The certificate's subject CN and validity.
    pub certificate: Option<CertificateSection>,
    /// ARL validity.
    pub arl: Option<ArlSection>,
    pub outputs: Outputs,
    /// Exactly two officers (dual control).
    pub officers: Vec<Officer>,
    /// Present at the root ceremony (required there).
    pub witness: Option<Person>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// The PKCS#11 module (default: qcert.toml's hsm.module).
    pub module: Option<PathBuf>,
    pub label: String,
    /// SoftHSM only: the root token store's configuration, relative to the home.
    pub softhsm_conf: Option<PathBuf>,
    /// Where `init-token` writes the token's SO PIN (relative to the home).
    pub so_pin_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySection {
    pub label: String,
    pub algorithm: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateSection {
    pub common_name: String,
    pub validity_years: Option<u32>,
    pub validity_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArlSection {
    /// nextUpdate = now + this many months (1..=12).
    pub validity_months: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outputs {
    /// The certificate (PEM), relative to the home; never overwritten.
    pub certificate: Option<PathBuf>,
    /// Directory of ARL files (`root-arl-<number>.crl`, DER).
    pub arl_dir: Option<PathBuf>,
    /// The report (JSON); `<report>.sha256` holds its hash. Never overwritten:
    /// `{date}` in the name is replaced by the ceremony's UTC time.
    pub report: PathBuf,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Officer {
    pub name: String,
    pub role: String,
    /// A file with the officer's credential (relative to the home). Without
    /// it the officer types it at the prompt (read from standard input).
    pub credential_file: Option<PathBuf>,
}

/// A ceremony's configuration as read: the file's bytes' hash and where it is.
#[derive(Debug)]
struct Loaded {
    path: PathBuf,
    sha256: String,
    config: CeremonyConfig,
}

fn load(settings: &Settings, what: &CeremonyCommand) -> anyhow::Result<Loaded> {
    let path = match what.config_arg().and_then(|c| c.config.clone()) {
        Some(p) => p,
        None => settings.policies_dir.join(format!("ceremony-{}.toml", what.name())),
    };
    let bytes =
        std::fs::read(&path).with_context(|| format!("cannot read the ceremony configuration {}", path.display()))?;
    let text = std::str::from_utf8(&bytes).with_context(|| format!("{} is not UTF-8", path.display()))?;
    let config: CeremonyConfig =
        toml::from_str(text).with_context(|| format!("ceremony configuration {}", path.display()))?;
    let expected = what.name();
    ensure!(
        config.ceremony == expected,
        "{} is a configuration for the {:?} ceremony, not {expected:?}",
        path.display(),
        config.ceremony
    );
    ensure!(config.officers.len() == 2, "{}: dual control needs exactly two [[officers]]", path.display());
    if let [a, b] = config.officers.as_slice() {
        ensure!(a.name.trim() != b.name.trim(), "{}: the two officers must be different people", path.display());
        ensure!(!a.name.trim().is_empty() && !b.name.trim().is_empty(), "{}: officers need names", path.display());
    }
    if expected == "root" {
        ensure!(config.witness.is_some(), "{}: a root ceremony records its [witness]", path.display());
    }
    Ok(Loaded { path, sha256: hex::encode(sha2::Sha256::digest(&bytes)), config })
}

/// Before the PKCS#11 module is loaded: point SoftHSM at the token store
/// this ceremony uses (the root token's for root, issuing-ca, arl).
pub fn select_token_env(settings: &Settings, what: &CeremonyCommand) -> anyhow::Result<()> {
    if !what.on_root_token() {
        return Ok(());
    }
    let loaded = load(settings, what)?;
    let token = loaded.config.token.as_ref().context("this ceremony needs a [token] section (the root token)")?;
    match &token.softhsm_conf {
        Some(conf) => {
            let conf = settings.home.join(conf);
            if matches!(what, CeremonyCommand::InitToken(_)) && !conf.exists() {
                let dir = conf.parent().context("softhsm_conf has no directory")?;
                qcert_hsm::softhsm::write_config(dir).context("cannot write the root token's SoftHSM configuration")?;
            }
            ensure!(conf.exists(), "the root token store {} is absent (is the root token connected?)", conf.display());
            std::env::set_var(qcert_hsm::softhsm::CONF_ENV, conf);
        }
        None => std::env::remove_var(qcert_hsm::softhsm::CONF_ENV),
    }
    Ok(())
}

fn key_spec(c: &CeremonyConfig) -> anyhow::Result<CaKeySpec> {
    let key = c.key.as_ref().context("this ceremony needs a [key] section (label, algorithm)")?;
    let cert = c.certificate.as_ref().context("this ceremony needs a [certificate] section")?;
    let key_algorithm: KeyAlgorithm =
        key.algorithm.parse().map_err(|e: String| anyhow::anyhow!("key.algorithm: {e}"))?;
    let validity = match (cert.validity_years, cert.validity_days) {
        (Some(y), None) if (1..=40).contains(&y) => time::Duration::days(365 * i64::from(y) + i64::from(y / 4)),
        (None, Some(d)) if (1..=3650).contains(&d) => time::Duration::days(i64::from(d)),
        _ => bail!("certificate: set exactly one of validity_years (1..40) or validity_days (1..3650)"),
    };
    ensure!(
        !key.label.trim().is_empty() && !cert.common_name.trim().is_empty(),
        "key.label and certificate.common_name must not be empty"
    );
    Ok(CaKeySpec { common_name: cert.common_name.clone(), key_label: key.label.clone(), key_algorithm, validity })
}

/// Read both officers' credentials: file or prompt, never an argument.
fn credentials(settings: &Settings, officers: &[Officer]) -> anyhow::Result<Vec<SecretString>> {
    let mut out = Vec::new();
    for o in officers {
        let text = match &o.credential_file {
            Some(f) => {
                let path = settings.home.join(f);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the credential of officer {} ({})", o.name, path.display()))?
            }
            None => crate::cli::prompt_secret(&format!("{} ({}), enter your ceremony credential: ", o.name, o.role))
                .with_context(|| format!("cannot read the credential of officer {}", o.name))?,
        };
        let text = text.trim_end_matches(['\n', '\r']).to_owned();
        ensure!(text.len() >= 12, "the credential of officer {} is shorter than 12 characters", o.name);
        out.push(SecretString::new(text));
    }
    Ok(out)
}

fn root_pin(officers: &[Officer], creds: &[SecretString]) -> anyhow::Result<SecretString> {
    match (officers, creds) {
        ([a, b], [ca, cb]) => Ok(ceremony::dual_control_pin(&[(a.name.trim(), ca), (b.name.trim(), cb)])),
        _ => bail!("dual control needs exactly two officers"),
    }
}

/// Open the root token with the PIN both officers' credentials make.
fn open_root_token(settings: &Settings, c: &CeremonyConfig, pin: SecretString) -> anyhow::Result<Hsm> {
    let token = c.token.as_ref().context("this ceremony needs a [token] section (the root token)")?;
    let module = token.module.clone().unwrap_or_else(|| settings.config.hsm.module.clone());
    let config = HsmConfig { module, token_label: token.label.clone(), pin };
    Hsm::open(&config).map_err(|e| match e {
        qcert_hsm::HsmError::PinIncorrect => {
            anyhow::anyhow!("the two officers' credentials do not open root token {:?}", token.label)
        }
        other => anyhow::Error::from(other).context(format!("cannot open the root token {:?}", token.label)),
    })
}

#[derive(Debug, Serialize)]
struct OfficerEntry {
    name: String,
    role: String,
    /// How the officer confirmed (never the credential).
    confirmed: &'static str,
}

#[derive(Debug, Serialize)]
struct TokenEntry {
    used_as: &'static str,
    label: String,
    manufacturer: String,
    model: String,
    serial_number: String,
    firmware_version: String,
    hardware_version: String,
}

impl TokenEntry {
    fn new(used_as: &'static str, t: TokenFacts) -> TokenEntry {
        TokenEntry {
            used_as,
            label: t.label,
            manufacturer: t.manufacturer,
            model: t.model,
            serial_number: t.serial_number,
            firmware_version: t.firmware_version,
            hardware_version: t.hardware_version,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyEntry {
    role: String,
    token: String,
    label: String,
    algorithm: String,
    size_bits: u32,
    /// SHA-256 of the SubjectPublicKeyInfo (DER), lower-case hex.
    spki_sha256: String,
}

impl KeyEntry {
    fn new(role: &str, token: &str, k: &KeyFacts) -> KeyEntry {
        KeyEntry {
            role: role.into(),
            token: token.into(),
            label: k.label.clone(),
            algorithm: k.algorithm.into(),
            size_bits: k.size_bits,
            spki_sha256: k.spki_sha256.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct OutputEntry {
    kind: &'static str,
    path: String,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crl_number: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_update: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConfigEntry {
    path: String,
    sha256: String,
}

/// The ceremony record (EN 319 411-1 GEN-6.5.1-13A).
#[derive(Debug, Serialize)]
struct Report {
    format: &'static str,
    ceremony: String,
    date: String,
    config: ConfigEntry,
    officers: Vec<OfficerEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    witness: Option<Person>,
    hsm: Vec<TokenEntry>,
    keys: Vec<KeyEntry>,
    outputs: Vec<OutputEntry>,
    /// The checks made before signing.
    checks: Vec<&'static str>,
}

/// The output paths of this run; refuses any that exists already.
struct Planned {
    certificate: Option<PathBuf>,
    report: PathBuf,
}

fn plan(settings: &Settings, c: &CeremonyConfig, now: time::OffsetDateTime) -> anyhow::Result<Planned> {
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let report = settings.home.join(c.outputs.report.to_string_lossy().replace("{date}", &stamp));
    let certificate = c.outputs.certificate.as_ref().map(|p| settings.home.join(p));
    for p in certificate.iter().chain([&report]) {
        ensure!(!p.exists(), "{} exists already: a ceremony never overwrites its outputs", p.display());
    }
    Ok(Planned { certificate, report })
}

/// Write `bytes` to a new file (never replacing one), creating the directory.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {} (a ceremony never overwrites its outputs)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(hex::encode(sha2::Sha256::digest(bytes)))
}

fn rel(settings: &Settings, p: &Path) -> String {
    p.strip_prefix(&settings.home).unwrap_or(p).display().to_string()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Entry point of `qcert ceremony <what>` (after [`select_token_env`]).
pub async fn run(
    settings: &Settings,
    what: CeremonyCommand,
    env: &dyn Fn(&str) -> Option<String>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    if let CeremonyCommand::Keygen { label, algorithm } = &what {
        return keygen(settings, label, algorithm, env).await;
    }
    let loaded = load(settings, &what)?;
    let c = &loaded.config;
    let creds = credentials(settings, &c.officers)?;
    if let CeremonyCommand::InitToken(_) = what {
        return init_token(settings, c, &creds);
    }
    let now = clock.now();
    let planned = plan(settings, c, now)?;
    let policy = Policy::load(&settings.policies_dir, &settings.config.public_base_url)?;
    let registry = Registry::open(&settings.database_url, settings.config.database.max_connections)
        .await
        .context("cannot open the registry (setting database.url)")?;
    let result = run_ceremony(settings, &what, &loaded, &creds, &planned, &policy, &registry, clock).await;
    registry.close().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_ceremony(
    settings: &Settings,
    what: &CeremonyCommand,
    loaded: &Loaded,
    creds: &[SecretString],
    planned: &Planned,
    policy: &Policy,
    registry: &Registry,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let c = &loaded.config;
    let now = clock.now();
    let mut hsm_entries = Vec::new();
    let mut keys = Vec::new();
    let mut outputs = Vec::new();
    let mut checks = vec!["outputs do not exist yet"];
    let confirmed;
    match what {
        CeremonyCommand::Root(_) | CeremonyCommand::IssuingCa(_) | CeremonyCommand::Arl(_) => {
            let root = open_root_token(settings, c, root_pin(&c.officers, creds)?)?;
            confirmed = "entered own credential; the root token opened only with both";
            checks.push("dual control: root token PIN derived from both officers' credentials");
            if matches!(what, CeremonyCommand::Root(_)) {
                enrol_officers(registry, c, creds, now.unix_timestamp()).await?;
            } else {
                verify_officers(registry, c, creds).await?;
                checks.push("each officer's credential matches the verifier enrolled at the root ceremony");
            }
            hsm_entries.push(TokenEntry::new("root token", root.token_facts()?));
            let root_label = root.token_label().to_owned();
            match what {
                CeremonyCommand::Root(_) => {
                    let spec = key_spec(c)?;
                    let made = ceremony::root(&root, registry, policy, &spec, &*clock).await?;
                    checks.push("root TBS linted (conformance::check_ca_certificate) before signing");
                    keys.push(KeyEntry::new("root", &root_label, &made.key));
                    outputs.push(write_certificate(settings, planned, &made)?);
                }
                CeremonyCommand::IssuingCa(_) => {
                    let spec = key_spec(c)?;
                    // Nothing is generated if the registry has an issuing CA already.
                    if !c.rollover && registry.ca_key("issuing").await?.is_some() {
                        bail!("the registry already has an issuing CA; refusing to run the issuing-ca ceremony again");
                    }
                    let (spki, online) = keygen_child(settings, &spec)?;
                    hsm_entries.push(TokenEntry::new("online token", online));
                    let made = ceremony::issuing_ca(&root, registry, policy, &spec, &spki, c.rollover, &*clock).await?;
                    if c.rollover {
                        checks.push("rollover: the previous issuing CA retired, keeping its CRL and OCSP responder");
                    }
                    checks.push("root key on the token matches the root certificate (SPKI)");
                    checks.push("issuing CA TBS linted (conformance::check_ca_certificate) before signing");
                    keys.push(KeyEntry::new("issuing", &settings.config.hsm.token_label, &made.key));
                    keys.push(KeyEntry::new("root (signed with)", &root_label, &made.signed_with));
                    outputs.push(write_certificate(settings, planned, &made)?);
                }
                _ => {
                    let arl = c.arl.as_ref().context("the arl ceremony needs an [arl] section (validity_months)")?;
                    ensure!(
                        (1..=12).contains(&arl.validity_months),
                        "arl.validity_months must be 1..12 (EN 319 411-1 CSS-6.3.9-12)"
                    );
                    let next = add_months(now, arl.validity_months);
                    let (record, root_key) = ceremony::arl(&root, registry, next, &*clock).await?;
                    checks.push("root key on the token matches the root certificate (SPKI)");
                    checks.push("ARL nextUpdate at most 12 months ahead");
                    keys.push(KeyEntry::new("root (signed with)", &root_label, &root_key));
                    let dir = settings.home.join(c.outputs.arl_dir.as_deref().unwrap_or(Path::new("arl")));
                    let path = dir.join(format!("root-arl-{}.crl", record.crl_number));
                    let sha256 = write_new(&path, &record.der)?;
                    outputs.push(OutputEntry {
                        kind: "arl",
                        path: rel(settings, &path),
                        sha256,
                        serial: None,
                        crl_number: Some(record.crl_number),
                        next_update: time::OffsetDateTime::from_unix_timestamp(record.next_update).ok().map(rfc3339),
                    });
                }
            }
        }
        CeremonyCommand::Seal(_) | CeremonyCommand::Tsa(_) => {
            verify_officers(registry, c, creds).await?;
            confirmed = "entered own credential, checked against the verifier enrolled at the root ceremony";
            checks.push("dual control: both officers' credentials checked");
            let spec = key_spec(c)?;
            let (kind, role) = match what {
                CeremonyCommand::Seal(_) => (qcert_ca_core::ca::ServiceCert::Seal, "seal"),
                _ => (qcert_ca_core::ca::ServiceCert::Tsa, "tsa"),
            };
            let config = settings.hsm_config(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
            let hsm = Hsm::open(&config).context("cannot open the online token (setting hsm.*)")?;
            hsm_entries.push(TokenEntry::new("online token", hsm.token_facts()?));
            let made = ceremony::service_certificate(&hsm, registry, policy, &spec, kind, &*clock).await?;
            checks.push("issuing CA key on the token matches the issuing CA certificate (SPKI)");
            checks.push("TBS linted (conformance::check_ca_certificate) before signing");
            keys.push(KeyEntry::new(role, hsm.token_label(), &made.key));
            keys.push(KeyEntry::new("issuing (signed with)", hsm.token_label(), &made.signed_with));
            outputs.push(write_certificate(settings, planned, &made)?);
        }
        CeremonyCommand::OcspResponder(_) => {
            verify_officers(registry, c, creds).await?;
            confirmed = "entered own credential, checked against the verifier enrolled at the root ceremony";
            checks.push("dual control: both officers' credentials checked");
            let spec = key_spec(c)?;
            let config = settings.hsm_config(&|k| std::env::var(k).ok().filter(|v| !v.is_empty()))?;
            let hsm = Hsm::open(&config).context("cannot open the online token (setting hsm.*)")?;
            hsm_entries.push(TokenEntry::new("online token", hsm.token_facts()?));
            let made = ceremony::ocsp_responder(&hsm, registry, policy, &spec, &*clock).await?;
            checks.push("issuing CA key on the token matches the issuing CA certificate (SPKI)");
            checks.push("responder TBS linted (conformance::check_ca_certificate) before signing");
            keys.push(KeyEntry::new("ocsp", hsm.token_label(), &made.key));
            keys.push(KeyEntry::new("issuing (signed with)", hsm.token_label(), &made.signed_with));
            outputs.push(write_certificate(settings, planned, &made)?);
        }
        CeremonyCommand::InitToken(_) | CeremonyCommand::Keygen { .. } => bail!("not a ceremony"),
    }
    let report = Report {
        format: "qcert-ceremony-report/1",
        ceremony: c.ceremony.clone(),
        date: rfc3339(now),
        config: ConfigEntry { path: rel(settings, &loaded.path), sha256: loaded.sha256.clone() },
        officers: c
            .officers
            .iter()
            .map(|o| OfficerEntry { name: o.name.trim().into(), role: o.role.clone(), confirmed })
            .collect(),
        witness: c.witness.clone(),
        hsm: hsm_entries,
        keys,
        outputs,
        checks,
    };
    let mut body = serde_json::to_vec_pretty(&report)?;
    body.push(b'\n');
    let digest = write_new(&planned.report, &body)?;
    let name = planned.report.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stamp = planned.report.with_file_name(format!("{name}.sha256"));
    write_new(&stamp, format!("{digest}  {name}\n").as_bytes())?;
    let actor = format!("ceremony:{}", report.officers.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join("+"));
    qcert_ca_core::audit::record(
        registry,
        now.unix_timestamp(),
        &qcert_ca_core::audit::Event {
            actor: &actor,
            action: &format!("ceremony.{}", c.ceremony),
            subject: &rel(settings, &planned.report),
            outcome: qcert_ca_core::audit::Outcome::Success,
            detail: format!("report_sha256={digest} config_sha256={}", loaded.sha256),
        },
    )
    .await;
    println!(
        "{} ceremony complete; report {} (SHA-256 {digest}, also in the audit log)",
        c.ceremony,
        planned.report.display()
    );
    for o in &report.outputs {
        println!("  {}: {}", o.kind, o.path);
    }
    Ok(())
}

fn write_certificate(settings: &Settings, planned: &Planned, made: &Certified) -> anyhow::Result<OutputEntry> {
    let path = planned.certificate.as_ref().context("outputs.certificate is not set")?;
    let pem = qcert_ca_core::pem("CERTIFICATE", &made.der);
    let sha256 = write_new(path, pem.as_bytes())?;
    Ok(OutputEntry {
        kind: "certificate",
        path: rel(settings, path),
        sha256,
        serial: Some(made.serial.clone()),
        crl_number: None,
        next_update: None,
    })
}

async fn enrol_officers(
    registry: &Registry,
    c: &CeremonyConfig,
    creds: &[SecretString],
    now: i64,
) -> anyhow::Result<()> {
    for (o, cred) in c.officers.iter().zip(creds) {
        let verifier = ceremony::officer_verifier(cred)?;
        if !registry.put_ceremony_officer(o.name.trim(), &o.role, &verifier, now).await? {
            // Enrolled before (e.g. for an earlier root): the credential must match.
            verify_one(registry, o, cred).await?;
        }
    }
    Ok(())
}

async fn verify_officers(registry: &Registry, c: &CeremonyConfig, creds: &[SecretString]) -> anyhow::Result<()> {
    for (o, cred) in c.officers.iter().zip(creds) {
        verify_one(registry, o, cred).await?;
    }
    Ok(())
}

async fn verify_one(registry: &Registry, o: &Officer, cred: &SecretString) -> anyhow::Result<()> {
    let verifier = registry.ceremony_officer_verifier(o.name.trim()).await?.with_context(|| {
        format!("{} is not an enrolled ceremony officer (officers are enrolled at the root ceremony)", o.name)
    })?;
    let matches = tokio::task::spawn_blocking({
        let cred = cred.clone();
        move || ceremony::officer_matches(&verifier, &cred)
    })
    .await?;
    ensure!(matches, "the credential entered for officer {} is wrong", o.name);
    Ok(())
}

/// `init-token`: initialise the root token, its user PIN derived from both
/// officers' credentials, its SO PIN written to `token.so_pin_file`.
fn init_token(settings: &Settings, c: &CeremonyConfig, creds: &[SecretString]) -> anyhow::Result<()> {
    let token = c.token.as_ref().context("init-token needs a [token] section")?;
    let so_pin = crate::home::random_pin();
    if let Some(f) = &token.so_pin_file {
        crate::home::write_secret(&settings.home.join(f), &so_pin)?;
    }
    let pin = root_pin(&c.officers, creds)?;
    let module = token.module.clone().unwrap_or_else(|| settings.config.hsm.module.clone());
    qcert_hsm::init_token(&module, &token.label, &SecretString::new(so_pin), &pin)
        .with_context(|| format!("cannot initialise the root token {:?}", token.label))?;
    println!("root token {:?} initialised; its PIN opens only with both officers' credentials", token.label);
    Ok(())
}

/// What `ceremony keygen` prints.
#[derive(Debug, Serialize, Deserialize)]
struct KeygenOutput {
    spki_der_hex: String,
    token: KeygenToken,
}

#[derive(Debug, Serialize, Deserialize)]
struct KeygenToken {
    label: String,
    manufacturer: String,
    model: String,
    serial_number: String,
    firmware_version: String,
    hardware_version: String,
}

/// The online half of `issuing-ca`: a key on the online token, its public key on standard output.
async fn keygen(
    settings: &Settings,
    label: &str,
    algorithm: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    let alg: KeyAlgorithm = algorithm.parse().map_err(|e: String| anyhow::anyhow!("--algorithm: {e}"))?;
    let config = settings.hsm_config(env)?;
    let label = label.to_owned();
    let out = tokio::task::spawn_blocking(move || -> anyhow::Result<KeygenOutput> {
        let hsm = Hsm::open(&config).context("cannot open the online token (setting hsm.*)")?;
        let key = hsm.generate_key(&label, alg)?;
        let t = hsm.token_facts()?;
        Ok(KeygenOutput {
            spki_der_hex: hex::encode(key.spki_der()),
            token: KeygenToken {
                label: t.label,
                manufacturer: t.manufacturer,
                model: t.model,
                serial_number: t.serial_number,
                firmware_version: t.firmware_version,
                hardware_version: t.hardware_version,
            },
        })
    })
    .await??;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// Run `qcert ceremony keygen` in a child process (it opens the online
/// token store; this process has the root token's).
fn keygen_child(settings: &Settings, spec: &CaKeySpec) -> anyhow::Result<(Vec<u8>, TokenFacts)> {
    let exe = std::env::current_exe()?;
    let out = std::process::Command::new(exe)
        .arg("--home")
        .arg(&settings.home)
        .args(["ceremony", "keygen", "--label", &spec.key_label, "--algorithm", spec.key_algorithm.name()])
        .env_remove(qcert_hsm::softhsm::CONF_ENV)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("cannot start `qcert ceremony keygen`")?;
    ensure!(out.status.success(), "the online key could not be generated (`qcert ceremony keygen` failed)");
    let parsed: KeygenOutput = serde_json::from_slice(&out.stdout).context("`qcert ceremony keygen` printed no key")?;
    let t = parsed.token;
    Ok((
        hex::decode(parsed.spki_der_hex)?,
        TokenFacts {
            label: t.label,
            manufacturer: t.manufacturer,
            model: t.model,
            serial_number: t.serial_number,
            firmware_version: t.firmware_version,
            hardware_version: t.hardware_version,
        },
    ))
}

/// `t` plus `months` calendar months (the day clamped to the month's end).
fn add_months(t: time::OffsetDateTime, months: u32) -> time::OffsetDateTime {
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(i32::MAX);
    let month =
        time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1)).unwrap_or(time::Month::January);
    let day = t.day().min(month.length(year));
    match time::Date::from_calendar_date(year, month, day) {
        Ok(d) => t.replace_date(d),
        Err(_) => t,
    }
}

/// The ceremonies `qcert init` runs on a fresh embedded home, in order.
pub const INIT_SEQUENCE: [&str; 7] = ["init-token", "root", "issuing-ca", "ocsp-responder", "arl", "tsa", "seal"];

/// Run one ceremony as a child process of this binary (each opens only
/// the token store it needs).
pub fn run_child(home: &Path, name: &str) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe)
        .arg("--home")
        .arg(home)
        .args(["ceremony", name])
        .stdin(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot start `qcert ceremony {name}`"))?;
    ensure!(status.success(), "`qcert ceremony {name}` failed");
    Ok(())
}
