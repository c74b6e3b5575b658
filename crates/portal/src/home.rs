//! A qcert home: qcert.toml, policies/, the registry file, certs/, and for
//! the embedded default a SoftHSM token store with its PINs under secrets/
//! (the online token, softhsm/), and the demo ceremony officers'
//! credentials from which the root token's PIN is derived (the root token
//! itself, softhsm-root/, is made by `qcert ceremony init-token`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rand::RngCore;
use secrecy::SecretString;

use crate::config;

/// The repository's policies/, built into the binary so a fresh home gets them.
/// The PKI disclosure statements are defaults for the operator to edit.
pub(crate) const DEFAULT_POLICIES: [(&str, &str); 10] = [
    ("ca.toml", include_str!("../../../policies/ca.toml")),
    ("qcp-n-qscd.toml", include_str!("../../../policies/qcp-n-qscd.toml")),
    ("pds-en.txt", include_str!("../../../policies/pds-en.txt")),
    ("pds-ro.txt", include_str!("../../../policies/pds-ro.txt")),
    ("ceremony-root.toml", include_str!("../../../policies/ceremony-root.toml")),
    ("ceremony-issuing-ca.toml", include_str!("../../../policies/ceremony-issuing-ca.toml")),
    ("ceremony-ocsp-responder.toml", include_str!("../../../policies/ceremony-ocsp-responder.toml")),
    ("ceremony-arl.toml", include_str!("../../../policies/ceremony-arl.toml")),
    ("ceremony-seal.toml", include_str!("../../../policies/ceremony-seal.toml")),
    ("ceremony-tsa.toml", include_str!("../../../policies/ceremony-tsa.toml")),
];

/// The demo officers' credential files the default ceremony configurations
/// name. A real ceremony removes `credential_file` so each officer types
/// their own at the prompt.
pub(crate) const DEMO_OFFICER_CREDENTIALS: [&str; 2] = ["secrets/officer-a-credential", "secrets/officer-b-credential"];

/// The home chosen by `--home`, else `QCERT_HOME`, else `./qcert-data`.
pub fn resolve(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    flag.or_else(|| env("QCERT_HOME").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("qcert-data"))
}

/// What `create_embedded` made.
#[derive(Debug)]
pub struct Created {
    pub pin_file: PathBuf,
    pub so_pin_file: PathBuf,
    /// The two ceremony officers' (demo) credentials.
    pub officer_credentials: Vec<PathBuf>,
}

/// Create a home on the embedded defaults: config, policies, a SoftHSM token
/// store with a fresh token, and its PINs in files only the operator can read.
/// Must run before anything initialises the PKCS#11 module in this process.
/// The addresses set in the environment (`QCERT_LISTEN`,
/// `QCERT_PUBLIC_BASE_URL`, `QCERT_PORTAL_URL`) are what `qcert.toml`
/// records, so a later command without them listens and mails where this
/// one did.
pub fn create_embedded(home: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Created> {
    if home.join("qcert.toml").exists() {
        bail!("{} already has a qcert.toml", home.display());
    }
    let mut defaults = config::embedded_defaults();
    config::apply_addresses(&mut defaults, env)?;
    // A home to try qcert out: orders are paid on qcert's own, clearly
    // labelled TEST payment provider (never on in production).
    let portal = defaults.portal_url.clone().unwrap_or_else(|| defaults.public_base_url.clone());
    defaults.orders.payment.url = format!("{}/pay/test/{{order_id}}", portal.trim_end_matches('/'));
    defaults.orders.payment.renewal_url =
        Some(format!("{}/pay/test/renewal/{{renewal_id}}", portal.trim_end_matches('/')));
    defaults.orders.payment.test_provider = true;
    std::fs::create_dir_all(home).with_context(|| format!("cannot create home {}", home.display()))?;
    set_mode(home, 0o700)?;

    let policies = home.join(&defaults.policies);
    if !policies.exists() {
        std::fs::create_dir_all(&policies)?;
        for (name, text) in DEFAULT_POLICIES {
            std::fs::write(policies.join(name), text)?;
        }
    }

    let secrets = home.join("secrets");
    std::fs::create_dir_all(&secrets)?;
    set_mode(&secrets, 0o700)?;
    let user_pin = random_pin();
    let so_pin = random_pin();
    let pin_file = home.join(defaults.hsm.pin_file.as_deref().unwrap_or(Path::new("secrets/hsm-user-pin")));
    let so_pin_file = secrets.join("hsm-so-pin");
    write_secret(&pin_file, &user_pin)?;
    write_secret(&so_pin_file, &so_pin)?;
    let mut officer_credentials = Vec::new();
    for rel in DEMO_OFFICER_CREDENTIALS {
        let path = home.join(rel);
        write_secret(&path, &random_pin())?;
        officer_credentials.push(path);
    }

    let conf_rel = defaults.hsm.softhsm_conf.clone().unwrap_or_else(|| "softhsm/softhsm2.conf".into());
    let conf_dir = home.join(&conf_rel).parent().map(Path::to_path_buf).unwrap_or_else(|| home.join("softhsm"));
    let conf = qcert_hsm::softhsm::write_config(&conf_dir).context("cannot write the SoftHSM configuration")?;
    std::env::set_var(qcert_hsm::softhsm::CONF_ENV, &conf);
    qcert_hsm::init_token(
        &defaults.hsm.module,
        &defaults.hsm.token_label,
        &SecretString::new(so_pin),
        &SecretString::new(user_pin),
    )
    .context("cannot create the SoftHSM token (is softhsm2 installed?)")?;

    let text = format!(
        "# qcert home configuration. Every setting can be overridden by an\n\
         # environment variable QCERT_<SECTION>_<NAME>, e.g. QCERT_DATABASE_URL.\n\
         # The HSM PIN is never written here: it comes from QCERT_HSM_PIN or hsm.pin_file.\n\
         # Set public_base_url to the public http:// address relying parties reach.\n\n{}",
        toml::to_string(&defaults)?
    );
    std::fs::write(home.join("qcert.toml"), text)?;
    Ok(Created { pin_file, so_pin_file, officer_credentials })
}

/// Create a 32-byte key file (64 hex digits, mode 0600) if it does not
/// exist; true if created.
pub fn ensure_key_file(path: &Path) -> anyhow::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            set_mode(dir, 0o700)?;
        }
    }
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut *key);
    write_secret(path, &zeroize::Zeroizing::new(hex::encode(*key)))?;
    Ok(true)
}

pub(crate) fn random_pin() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub(crate) fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    let _ = (path, mode);
    Ok(())
}
