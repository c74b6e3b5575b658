//! `qcert.toml` in the home, each setting overridable by a `QCERT_…`
//! environment variable. Secrets (the HSM PIN) come only from the
//! environment or a file the configuration names, never from the file itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Settings as written in qcert.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base of every URL written into certificates (CRL, AIA, OCSP, QcPDS).
    pub public_base_url: String,
    /// Address `qcert serve` listens on.
    pub listen: String,
    /// Folder with ca.toml and the profiles (relative to the home).
    pub policies: PathBuf,
    /// `human` or `json`.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    pub database: DatabaseConfig,
    pub hsm: HsmSection,
    #[serde(default)]
    pub revocation: RevocationSection,
}

/// The revocation desk: hotline, in-person and signed self-revocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationSection {
    /// File with the 32-byte HMAC key (64 hex digits) ID document numbers
    /// are looked up by (relative to the home). `qcert init` creates it.
    pub document_key_file: PathBuf,
    /// Argon2id cost of a revocation password check (one check: 20-100 ms).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    /// Hotline attempts one agent may make per minute.
    pub agent_attempts_per_minute: u32,
}

impl Default for RevocationSection {
    fn default() -> Self {
        let d = qcert_ca_core::desk::DeskSettings::default();
        RevocationSection {
            document_key_file: "secrets/document-key".into(),
            argon2_memory_kib: d.argon2_memory_kib,
            argon2_iterations: d.argon2_iterations,
            agent_attempts_per_minute: d.agent_attempts_per_minute,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (relative to the home) or `postgres://…`.
    pub url: String,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmSection {
    pub module: PathBuf,
    pub token_label: String,
    /// File holding the user PIN (relative to the home); `QCERT_HSM_PIN` wins.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// SoftHSM configuration of the embedded HSM (sets `SOFTHSM2_CONF`).
    #[serde(default)]
    pub softhsm_conf: Option<PathBuf>,
}

fn default_log_format() -> String {
    "human".into()
}

fn default_max_connections() -> u32 {
    8
}

/// A configuration problem, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("configuration {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

fn cfg_err(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_owned(), reason: reason.into() }
}

/// Defaults of the embedded setup: SQLite, SoftHSM under the home, file outbox.
pub fn embedded_defaults() -> Config {
    Config {
        public_base_url: "http://127.0.0.1:8080".into(),
        listen: "127.0.0.1:8080".into(),
        policies: "policies".into(),
        log_format: default_log_format(),
        database: DatabaseConfig { url: "sqlite://qcert.db".into(), max_connections: default_max_connections() },
        hsm: HsmSection {
            module: qcert_hsm::softhsm::DEFAULT_MODULE.into(),
            token_label: "qcert".into(),
            pin_file: Some("secrets/hsm-user-pin".into()),
            softhsm_conf: Some("softhsm/softhsm2.conf".into()),
        },
        revocation: RevocationSection::default(),
    }
}

/// A configuration resolved against its home and the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    pub config: Config,
    pub listen: SocketAddr,
    pub database_url: String,
    pub policies_dir: PathBuf,
    pub softhsm_conf: Option<PathBuf>,
}

impl Settings {
    /// Read `home/qcert.toml` and apply `QCERT_…` overrides from `env`.
    pub fn load(home: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let path = home.join("qcert.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            cfg_err(&path.display().to_string(), format!("cannot read ({e}); run `qcert init` to create a home"))
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| {
            let msg = e.to_string();
            if msg.contains("unknown field `pin`") {
                cfg_err("hsm.pin", "a PIN never goes into qcert.toml: set QCERT_HSM_PIN or hsm.pin_file")
            } else {
                cfg_err(&path.display().to_string(), msg)
            }
        })?;
        apply_env(&mut config, env)?;
        Settings::resolve(home, config)
    }

    fn resolve(home: &Path, config: Config) -> Result<Settings, ConfigError> {
        let listen = config.listen.parse().map_err(|e| {
            cfg_err("listen", format!("{:?} is not an address like 127.0.0.1:8080 ({e})", config.listen))
        })?;
        qcert_ca_core::policy::PublicUrls::new(&config.public_base_url).map_err(|r| cfg_err("public_base_url", r))?;
        if !matches!(config.log_format.as_str(), "human" | "json") {
            return Err(cfg_err("log_format", format!("{:?} is neither human nor json", config.log_format)));
        }
        let database_url = resolve_db_url(home, &config.database.url)?;
        if config.hsm.token_label.trim().is_empty() {
            return Err(cfg_err("hsm.token_label", "must not be empty"));
        }
        let policies_dir = home.join(&config.policies);
        let softhsm_conf = config.hsm.softhsm_conf.as_ref().map(|p| home.join(p));
        Ok(Settings { home: home.to_owned(), listen, database_url, policies_dir, softhsm_conf, config })
    }

    /// The document key file, resolved against the home.
    pub fn document_key_path(&self) -> PathBuf {
        self.home.join(&self.config.revocation.document_key_file)
    }

    /// Settings of the revocation desk.
    pub fn desk_settings(&self) -> qcert_ca_core::desk::DeskSettings {
        let r = &self.config.revocation;
        qcert_ca_core::desk::DeskSettings {
            argon2_memory_kib: r.argon2_memory_kib,
            argon2_iterations: r.argon2_iterations,
            agent_attempts_per_minute: r.agent_attempts_per_minute,
            ..Default::default()
        }
    }

    /// The HSM user PIN: `QCERT_HSM_PIN`, else the file `hsm.pin_file`.
    pub fn hsm_pin(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<SecretString, ConfigError> {
        if let Some(pin) = env("QCERT_HSM_PIN") {
            return Ok(SecretString::new(pin));
        }
        let file = self
            .config
            .hsm
            .pin_file
            .as_ref()
            .ok_or_else(|| cfg_err("hsm.pin_file", "no HSM PIN: set QCERT_HSM_PIN or hsm.pin_file"))?;
        let path = self.home.join(file);
        let pin = std::fs::read_to_string(&path)
            .map_err(|e| cfg_err("hsm.pin_file", format!("cannot read {}: {e}", path.display())))?;
        let pin = pin.trim_end_matches(['\n', '\r']).to_owned();
        if pin.is_empty() {
            return Err(cfg_err("hsm.pin_file", format!("{} is empty", path.display())));
        }
        Ok(SecretString::new(pin))
    }

    pub fn hsm_config(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<qcert_hsm::HsmConfig, ConfigError> {
        Ok(qcert_hsm::HsmConfig {
            module: self.config.hsm.module.clone(),
            token_label: self.config.hsm.token_label.clone(),
            pin: self.hsm_pin(env)?,
        })
    }
}

fn resolve_db_url(home: &Path, url: &str) -> Result<String, ConfigError> {
    qcert_ca_core::Backend::from_url(url).map_err(|e| cfg_err("database.url", e.to_string()))?;
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (file, query) = rest.split_once('?').map_or((rest, None), |(f, q)| (f, Some(q)));
        if file.is_empty() {
            return Err(cfg_err("database.url", "sqlite:// needs a file name"));
        }
        let path = home.join(file);
        return Ok(match query {
            Some(q) => format!("sqlite://{}?{q}", path.display()),
            None => format!("sqlite://{}", path.display()),
        });
    }
    Ok(url.to_owned())
}

/// Overrides: `QCERT_PUBLIC_BASE_URL`, `QCERT_LISTEN`, `QCERT_POLICIES`,
/// `QCERT_LOG_FORMAT`, `QCERT_DATABASE_URL`, `QCERT_DATABASE_MAX_CONNECTIONS`,
/// `QCERT_HSM_MODULE`, `QCERT_HSM_TOKEN_LABEL`, `QCERT_HSM_PIN_FILE`,
/// `QCERT_HSM_SOFTHSM_CONF`, `QCERT_REVOCATION_DOCUMENT_KEY_FILE`. (`QCERT_HSM_PIN` is read where the PIN is needed.)
fn apply_env(c: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    if let Some(v) = env("QCERT_PUBLIC_BASE_URL") {
        c.public_base_url = v;
    }
    if let Some(v) = env("QCERT_LISTEN") {
        c.listen = v;
    }
    if let Some(v) = env("QCERT_POLICIES") {
        c.policies = v.into();
    }
    if let Some(v) = env("QCERT_LOG_FORMAT") {
        c.log_format = v;
    }
    if let Some(v) = env("QCERT_DATABASE_URL") {
        c.database.url = v;
    }
    if let Some(v) = env("QCERT_DATABASE_MAX_CONNECTIONS") {
        c.database.max_connections = v
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| cfg_err("QCERT_DATABASE_MAX_CONNECTIONS", format!("{v:?} is not a positive number")))?;
    }
    if let Some(v) = env("QCERT_HSM_MODULE") {
        c.hsm.module = v.into();
    }
    if let Some(v) = env("QCERT_HSM_TOKEN_LABEL") {
        c.hsm.token_label = v;
    }
    if let Some(v) = env("QCERT_HSM_PIN_FILE") {
        c.hsm.pin_file = Some(v.into());
    }
    if let Some(v) = env("QCERT_HSM_SOFTHSM_CONF") {
        c.hsm.softhsm_conf = Some(v.into());
    }
    if let Some(v) = env("QCERT_REVOCATION_DOCUMENT_KEY_FILE") {
        c.revocation.document_key_file = v.into();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with(toml_text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("qcert.toml"), toml_text).unwrap();
        dir
    }

    fn defaults_text() -> String {
        toml::to_string(&embedded_defaults()).unwrap()
    }

    #[test]
    fn defaults_round_trip_and_env_overrides_win() {
        let home = home_with(&defaults_text());
        let env = |k: &str| match k {
            "QCERT_LISTEN" => Some("127.0.0.1:0".to_string()),
            "QCERT_DATABASE_URL" => Some("postgres://db.example/qcert".to_string()),
            _ => None,
        };
        let s = Settings::load(home.path(), &env).unwrap();
        assert_eq!(s.listen.port(), 0);
        assert_eq!(s.database_url, "postgres://db.example/qcert");
        let s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.database_url, format!("sqlite://{}", home.path().join("qcert.db").display()));
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            (defaults_text().replace("127.0.0.1:8080\"\npolicies", "nowhere\"\npolicies"), "listen"),
            (defaults_text().replace("sqlite://qcert.db", "mysql://x"), "database.url"),
            (defaults_text().replace("http://127.0.0.1:8080", "not a url"), "public_base_url"),
            (defaults_text().replace("token_label = \"qcert\"", "token_label = \"qcert\"\npin = \"1234\""), "hsm.pin"),
        ];
        for (text, setting) in cases {
            let home = home_with(&text);
            let err = Settings::load(home.path(), &|_| None).unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
            assert!(!err.to_string().contains("1234"), "a PIN never appears in an error: {err}");
        }
        let home = home_with(&defaults_text());
        let env = |k: &str| (k == "QCERT_DATABASE_MAX_CONNECTIONS").then(|| "zero".to_string());
        assert_eq!(Settings::load(home.path(), &env).unwrap_err().setting, "QCERT_DATABASE_MAX_CONNECTIONS");
    }

    #[test]
    fn pin_comes_from_env_or_file_only() {
        use secrecy::ExposeSecret;
        let home = home_with(&defaults_text());
        std::fs::create_dir_all(home.path().join("secrets")).unwrap();
        std::fs::write(home.path().join("secrets/hsm-user-pin"), "from-file\n").unwrap();
        let s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.hsm_pin(&|_| None).unwrap().expose_secret(), "from-file");
        let env = |k: &str| (k == "QCERT_HSM_PIN").then(|| "from-env".to_string());
        assert_eq!(s.hsm_pin(&env).unwrap().expose_secret(), "from-env");
        let cfg = s.hsm_config(&env).unwrap();
        assert!(!format!("{cfg:?}").contains("from-env"), "Debug redacts the PIN");
    }
}
