//! `qcert.toml` in the home, each setting overridable by a `QCERT_…`
//! environment variable. Secrets (the HSM PIN, the SMTP password) come only
//! from the environment or a file the configuration names, never from the
//! file itself.

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
    /// Base of the links in holders' mails (order, secret delivery, renewal
    /// pages): the https address of the holder-facing API. Default:
    /// `public_base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_url: Option<String>,
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
    #[serde(default)]
    pub orders: OrdersSection,
    #[serde(default)]
    pub notifier: NotifierSection,
    /// Where holder mail goes; the file outbox under the home by default.
    #[serde(default)]
    pub mail: MailSection,
    /// Connection limits of `qcert serve`.
    #[serde(default)]
    pub http: HttpSection,
    /// How long personal data is kept (ca-core's `RetentionPolicy`).
    #[serde(default)]
    pub retention: RetentionSection,
    /// The operators' desk: its origin and WebAuthn relying party.
    #[serde(default, skip_serializing_if = "DeskSection::is_unset")]
    pub desk: DeskSection,
}

/// `[desk]`: where operators open the desk. WebAuthn binds security keys
/// to `rp_id`, so changing it later means enrolling every key again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeskSection {
    /// The desk's origin, `https://desk.example.eu` (`http://` only for
    /// localhost). Default: `public_base_url` when it is https or
    /// localhost, else `http://localhost:<listen port>` (a loopback IP
    /// becomes `localhost`: WebAuthn needs a DNS name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The WebAuthn relying-party id: the origin's host (default) or a
    /// parent domain of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
}

impl DeskSection {
    fn is_unset(&self) -> bool {
        self.origin.is_none() && self.rp_id.is_none()
    }
}

/// `[retention]`: periods of the record classes the notifier's tick purges
/// (README "Personal data"); unpaid orders (`orders.unpaid_expiry_hours`)
/// and sent mail (`notifier.keep_sent_mail_days`) have their own settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSection {
    /// Years registration records and certificates' personal data are kept
    /// after the last certificate based on them ceases to be valid (EN 319
    /// 411-1 OVR-6.4.6-01: at least 7; default 10, Romanian rules).
    pub registration_years: u32,
    /// Years orders and payment events are kept after the end of the
    /// financial year of payment (accounting law: 10).
    pub financial_years: u32,
    /// Rows per purge statement, and batches per class and tick.
    pub batch: u32,
    pub batches_per_tick: u32,
}

impl Default for RetentionSection {
    fn default() -> Self {
        let d = qcert_ca_core::retention::RetentionPolicy::default();
        RetentionSection {
            registration_years: d.registration_years,
            financial_years: d.financial_years,
            batch: u32::try_from(d.batch).unwrap_or(1000),
            batches_per_tick: d.batches_per_tick,
        }
    }
}

/// `[http]`: what one client may hold of `qcert serve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// A request's headers must be complete this many seconds after the
    /// connection opened or the previous response was sent, else the
    /// connection is cut.
    pub header_timeout_secs: u64,
    /// A connection on which nothing moves this many seconds with no request
    /// in progress (a kept-alive one, or a new one that sends nothing) is
    /// closed. At most `header_timeout_secs`.
    pub idle_timeout_secs: u64,
    /// Connections served at once; further ones wait in the listen backlog
    /// (not accepted) until one closes.
    pub max_connections: u32,
    /// Connections one client address may hold at once; more are closed
    /// when accepted. 0: no per-client cap (behind a reverse proxy, where
    /// every connection comes from the proxy).
    pub max_connections_per_client: u32,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            header_timeout_secs: 10,
            idle_timeout_secs: 5,
            max_connections: 512,
            max_connections_per_client: 32,
        }
    }
}

/// The notifier: renewal reminders and automatic renewals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifierSection {
    /// When it ticks: cron with seconds first (`sec min hour day month weekday`).
    pub schedule: String,
    /// Run it inside `qcert serve` (else run `qcert notify` on its own node).
    pub in_serve: bool,
    /// Days a sent mail's row (recipient, kind, subject, times; the body is
    /// erased when sent) is kept before the tick deletes it.
    pub keep_sent_mail_days: u32,
}

impl Default for NotifierSection {
    fn default() -> Self {
        NotifierSection { schedule: "0 */5 * * * *".into(), in_serve: true, keep_sent_mail_days: 30 }
    }
}

/// Orders: the keys of the secret vault and of the payment webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersSection {
    /// 32-byte key (64 hex digits) sealing secrets at rest (kit secrets,
    /// authenticator seeds, delivery codes). `qcert init` creates it.
    pub vault_key_file: PathBuf,
    /// 32-byte HMAC key (64 hex digits) shared with the payment provider.
    pub payment_webhook_key_file: PathBuf,
    /// CLOUD: wrong authorization codes after which the authenticator is
    /// locked until an RA officer unlocks it.
    pub code_lock_after: u32,
    /// CLOUD: authorization codes tried per order, and per certificate
    /// (renewal by code), in any `code_window_secs` seconds.
    pub codes_per_order: u32,
    pub codes_per_certificate: u32,
    pub code_window_secs: u32,
    /// Order forms one client address may send (IPv6: per /64) per
    /// `form_per_client_window_secs`.
    pub form_per_client: u32,
    pub form_per_client_window_secs: i64,
    /// Order forms for one mailbox per `form_per_email_window_secs`.
    pub form_per_email: u32,
    pub form_per_email_window_secs: i64,
    /// Unpaid orders one email address may have open at once.
    pub open_unpaid_per_email: u32,
    /// Hours after which an unpaid order expires (the notifier deletes it).
    pub unpaid_expiry_hours: u32,
    /// Reverse proxies (IP addresses) whose X-Forwarded-For names the
    /// client; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Prices and the payment provider's checkout URL (in order mails and
    /// on the order page).
    pub payment: PaymentSection,
}

impl Default for OrdersSection {
    fn default() -> Self {
        let d = qcert_ca_core::orders::CodeLimits::default();
        let l = qcert_ca_core::orders::FormLimits::default();
        OrdersSection {
            vault_key_file: "secrets/vault-key".into(),
            payment_webhook_key_file: "secrets/payment-webhook-key".into(),
            code_lock_after: u32::try_from(d.lock_after).unwrap_or(5),
            codes_per_order: d.per_order.limit,
            codes_per_certificate: d.per_certificate.limit,
            code_window_secs: u32::try_from(d.per_order.window_secs).unwrap_or(900),
            form_per_client: l.per_client.limit,
            form_per_client_window_secs: l.per_client.window_secs,
            form_per_email: l.per_email.limit,
            form_per_email_window_secs: l.per_email.window_secs,
            open_unpaid_per_email: l.open_unpaid_per_email,
            unpaid_expiry_hours: u32::try_from(l.unpaid_ttl.whole_hours()).unwrap_or(72),
            trusted_proxies: Vec::new(),
            payment: PaymentSection::default(),
        }
    }
}

/// `[orders.payment]` (ca-core's `PaymentSettings`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSection {
    /// The checkout URL, with `{order_id}`, `{amount}` (`89.00`),
    /// `{amount_cents}` and `{currency}` filled in per order.
    pub url: String,
    /// A renewal's checkout URL, with `{renewal_id}`, `{amount}`,
    /// `{amount_cents}` and `{currency}` (the webhook's event then names
    /// `renewal_id`). Renewals cost what orders of their product and years do.
    /// Unset (a home made before renewals had a checkout): the TEST
    /// provider's renewal page when `test_provider` is on, else a placeholder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewal_url: Option<String>,
    /// ISO 4217 code.
    pub currency: String,
    /// Prices in cents for 1, 2 and 3 years.
    pub token_cents: [u64; 3],
    pub cloud_cents: [u64; 3],
    /// Serve qcert's TEST payment provider at `/pay/test/{order_id}` and
    /// `/pay/test/renewal/{renewal_id}` (its
    /// "pay" button marks the order paid through the signed webhook path).
    /// For trying qcert out only: `qcert init` turns it on in the embedded
    /// home and points `url` at it; never on in production.
    pub test_provider: bool,
}

impl Default for PaymentSection {
    fn default() -> Self {
        let d = qcert_ca_core::orders::PaymentSettings::default();
        PaymentSection {
            url: d.url_template,
            renewal_url: None,
            currency: d.currency,
            token_cents: d.token_cents,
            cloud_cents: d.cloud_cents,
            test_provider: d.test_provider,
        }
    }
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
    /// Argon2id checks per hotline attempt, whatever the document (the
    /// holder's distinct password hashes padded with dummy ones).
    pub hotline_checks_per_attempt: usize,
}

impl Default for RevocationSection {
    fn default() -> Self {
        let d = qcert_ca_core::desk::DeskSettings::default();
        RevocationSection {
            document_key_file: "secrets/document-key".into(),
            argon2_memory_kib: d.argon2_memory_kib,
            argon2_iterations: d.argon2_iterations,
            agent_attempts_per_minute: d.agent_attempts_per_minute,
            hotline_checks_per_attempt: d.hotline_checks_per_attempt,
        }
    }
}

/// `[mail]`: the sender and the way out (the notifier's `MailConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    /// `name <address>` or a bare address; its domain names the Message-IDs.
    pub from: String,
    pub transport: MailTransport,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection {
            from: "qcert <noreply@localhost>".into(),
            transport: MailTransport::File { dir: "outbox".into() },
        }
    }
}

/// `[mail.transport]`, `kind = "file"` or `kind = "smtp"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MailTransport {
    /// Each mail becomes an `.eml` file in `dir` (relative to the home).
    File {
        dir: PathBuf,
    },
    Smtp(SmtpSection),
}

/// An SMTP relay. The password is never in qcert.toml: it comes from
/// `QCERT_MAIL_SMTP_PASSWORD` or the file `password_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSection {
    pub host: String,
    /// Default by `security`: 25 (none), 587 (starttls), 465 (tls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    #[serde(default = "default_smtp_security")]
    pub security: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// File holding the SMTP password (relative to the home).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Per SMTP command and connection, in seconds.
    #[serde(default = "default_smtp_timeout_secs")]
    pub timeout_secs: u64,
}

impl SmtpSection {
    fn new(host: String) -> SmtpSection {
        SmtpSection {
            host,
            port: None,
            security: default_smtp_security(),
            username: None,
            password_file: None,
            timeout_secs: default_smtp_timeout_secs(),
        }
    }
}

fn default_smtp_security() -> String {
    "starttls".into()
}

fn default_smtp_timeout_secs() -> u64 {
    30
}

fn smtp_security(value: &str) -> Option<qcert_notifier::SmtpSecurity> {
    use qcert_notifier::SmtpSecurity;
    match value.trim().to_ascii_lowercase().as_str() {
        "none" => Some(SmtpSecurity::None),
        "starttls" => Some(SmtpSecurity::Starttls),
        "tls" => Some(SmtpSecurity::Tls),
        _ => None,
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
        portal_url: None,
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
        orders: OrdersSection::default(),
        notifier: NotifierSection::default(),
        mail: MailSection::default(),
        http: HttpSection::default(),
        retention: RetentionSection::default(),
        desk: DeskSection::default(),
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
            } else if msg.contains("unknown field `password`") {
                // (The parser's message quotes the line: it must not be shown.)
                cfg_err(
                    "mail.transport.password",
                    "the SMTP password never goes into qcert.toml: set QCERT_MAIL_SMTP_PASSWORD or mail.transport.password_file",
                )
            } else {
                cfg_err(&path.display().to_string(), msg)
            }
        })?;
        apply_env(&mut config, env)?;
        Settings::resolve(home, config)
    }

    fn resolve(home: &Path, config: Config) -> Result<Settings, ConfigError> {
        let listen = check_addresses(&config)?;
        if !matches!(config.log_format.as_str(), "human" | "json") {
            return Err(cfg_err("log_format", format!("{:?} is neither human nor json", config.log_format)));
        }
        let database_url = resolve_db_url(home, &config.database.url)?;
        if config.hsm.token_label.trim().is_empty() {
            return Err(cfg_err("hsm.token_label", "must not be empty"));
        }
        check_mail(&config.mail)?;
        for (name, v) in [
            ("orders.code_lock_after", config.orders.code_lock_after),
            ("orders.codes_per_order", config.orders.codes_per_order),
            ("orders.codes_per_certificate", config.orders.codes_per_certificate),
            ("orders.code_window_secs", config.orders.code_window_secs),
        ] {
            if v == 0 {
                return Err(cfg_err(name, "must be at least 1"));
            }
        }
        check_http(&config.http)?;
        check_orders(&config.orders)?;
        check_retention(&config.retention)?;
        let policies_dir = home.join(&config.policies);
        let softhsm_conf = config.hsm.softhsm_conf.as_ref().map(|p| home.join(p));
        Ok(Settings { home: home.to_owned(), listen, database_url, policies_dir, softhsm_conf, config })
    }

    /// Prices and checkout URL for orders.
    pub fn payment_settings(&self) -> qcert_ca_core::orders::PaymentSettings {
        let p = &self.config.orders.payment;
        qcert_ca_core::orders::PaymentSettings {
            url_template: p.url.clone(),
            renewal_url_template: match (&p.renewal_url, p.test_provider) {
                (Some(u), _) => u.clone(),
                (None, true) => format!("{}/pay/test/renewal/{{renewal_id}}", self.portal_url().trim_end_matches('/')),
                (None, false) => qcert_ca_core::orders::PaymentSettings::default().renewal_url_template,
            },
            currency: p.currency.clone(),
            token_cents: p.token_cents,
            cloud_cents: p.cloud_cents,
            test_provider: p.test_provider,
        }
    }

    /// Retention periods (`[retention]`, `notifier.keep_sent_mail_days`).
    pub fn retention_policy(&self) -> qcert_ca_core::retention::RetentionPolicy {
        let r = &self.config.retention;
        qcert_ca_core::retention::RetentionPolicy {
            registration_years: r.registration_years,
            financial_years: r.financial_years,
            sent_mail_days: self.config.notifier.keep_sent_mail_days,
            batch: i64::from(r.batch),
            batches_per_tick: r.batches_per_tick,
        }
    }

    /// How long sent mail rows are kept (`notifier.keep_sent_mail_days`).
    pub fn sent_mail_retention(&self) -> time::Duration {
        time::Duration::days(i64::from(self.config.notifier.keep_sent_mail_days))
    }

    /// The desk's WebAuthn relying party (`[desk]`, see [`DeskSection`]).
    pub fn desk_relying_party(&self) -> Result<qcert_ca_core::desk_login::RelyingParty, ConfigError> {
        use qcert_ca_core::desk_login::RelyingParty;
        let d = &self.config.desk;
        let origin = match &d.origin {
            Some(o) => o.clone(),
            None if RelyingParty::new(&self.config.public_base_url, None).is_ok() => {
                self.config.public_base_url.clone()
            }
            None => format!("http://localhost:{}", self.listen.port()),
        };
        RelyingParty::new(&origin, d.rp_id.as_deref()).map_err(|e| cfg_err("desk.origin", e.to_string()))
    }

    /// Why the TEST payment page (`orders.payment.test_provider`) may be
    /// reachable from outside this machine, if it may: `serve` listens on a
    /// non-loopback address, or the holders' links (`portal_url`, else
    /// `public_base_url`) name a host other than localhost or a loopback IP.
    /// Anyone who knows an order id can mark it paid on that page.
    pub fn test_payment_exposed(&self, listen: SocketAddr) -> Option<String> {
        if !self.config.orders.payment.test_provider {
            return None;
        }
        if !listen.ip().is_loopback() {
            return Some(format!("serve listens on {listen}, not a loopback address"));
        }
        let portal = self.portal_url();
        let loopback = url::Url::parse(portal)
            .ok()
            .is_some_and(|u| u.host_str().is_some_and(qcert_ca_core::policy::is_loopback_host));
        (!loopback).then(|| format!("holders' links point at {portal}, not a loopback host"))
    }

    /// Base of the links in holders' mails.
    pub fn portal_url(&self) -> &str {
        self.config.portal_url.as_deref().unwrap_or(&self.config.public_base_url)
    }

    /// The order form's limits (`[orders]`).
    pub fn form_limits(&self) -> qcert_ca_core::orders::FormLimits {
        use qcert_ca_core::store::limits::Window;
        let o = &self.config.orders;
        qcert_ca_core::orders::FormLimits {
            per_client: Window { limit: o.form_per_client, window_secs: o.form_per_client_window_secs },
            per_email: Window { limit: o.form_per_email, window_secs: o.form_per_email_window_secs },
            open_unpaid_per_email: o.open_unpaid_per_email,
            unpaid_ttl: time::Duration::hours(i64::from(o.unpaid_expiry_hours)),
        }
    }

    /// `orders.trusted_proxies`, parsed (checked when the settings load).
    pub fn trusted_proxies(&self) -> Vec<std::net::IpAddr> {
        self.config.orders.trusted_proxies.iter().filter_map(|p| p.trim().parse().ok()).collect()
    }

    /// The document key file, resolved against the home.
    pub fn vault_key_path(&self) -> PathBuf {
        self.home.join(&self.config.orders.vault_key_file)
    }

    pub fn webhook_key_path(&self) -> PathBuf {
        self.home.join(&self.config.orders.payment_webhook_key_file)
    }

    pub fn document_key_path(&self) -> PathBuf {
        self.home.join(&self.config.revocation.document_key_file)
    }

    /// Limits on CLOUD authorization codes.
    pub fn code_limits(&self) -> qcert_ca_core::orders::CodeLimits {
        let o = &self.config.orders;
        let window_secs = i64::from(o.code_window_secs);
        qcert_ca_core::orders::CodeLimits {
            lock_after: i64::from(o.code_lock_after),
            per_order: qcert_ca_core::store::limits::Window { limit: o.codes_per_order, window_secs },
            per_certificate: qcert_ca_core::store::limits::Window { limit: o.codes_per_certificate, window_secs },
        }
    }

    /// Settings of the revocation desk.
    pub fn desk_settings(&self) -> qcert_ca_core::desk::DeskSettings {
        let r = &self.config.revocation;
        qcert_ca_core::desk::DeskSettings {
            argon2_memory_kib: r.argon2_memory_kib,
            argon2_iterations: r.argon2_iterations,
            agent_attempts_per_minute: r.agent_attempts_per_minute,
            hotline_checks_per_attempt: r.hotline_checks_per_attempt,
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

    /// The SMTP password: `QCERT_MAIL_SMTP_PASSWORD`, else the file
    /// `mail.transport.password_file`, else none (no login).
    pub fn smtp_password(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Option<SecretString>, ConfigError> {
        if let Some(password) = env("QCERT_MAIL_SMTP_PASSWORD") {
            return Ok(Some(SecretString::new(password)));
        }
        let MailTransport::Smtp(smtp) = &self.config.mail.transport else { return Ok(None) };
        let Some(file) = &smtp.password_file else { return Ok(None) };
        let path = self.home.join(file);
        let password = std::fs::read_to_string(&path)
            .map_err(|e| cfg_err("mail.transport.password_file", format!("cannot read {}: {e}", path.display())))?;
        let password = password.trim_end_matches(['\n', '\r']).to_owned();
        if password.is_empty() {
            return Err(cfg_err("mail.transport.password_file", format!("{} is empty", path.display())));
        }
        Ok(Some(SecretString::new(password)))
    }

    /// The notifier's transport for `[mail]`: the file outbox (its
    /// directory resolved against the home and created) or SMTP.
    pub fn mail_transport(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<qcert_notifier::Transport, ConfigError> {
        use qcert_notifier::{MailError, SmtpConfig, Transport};
        let mail = &self.config.mail;
        let built = match &mail.transport {
            MailTransport::File { dir } => Transport::file(&mail.from, &self.home.join(dir)),
            MailTransport::Smtp(s) => {
                let security = smtp_security(&s.security).ok_or_else(|| {
                    cfg_err("mail.transport.security", format!("{:?} is not none, starttls or tls", s.security))
                })?;
                let password = self.smtp_password(env)?;
                match (&s.username, &password) {
                    (Some(user), None) => {
                        return Err(cfg_err(
                            "mail.transport.password_file",
                            format!("no SMTP password for {user:?}: set QCERT_MAIL_SMTP_PASSWORD or mail.transport.password_file"),
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(cfg_err("mail.transport.username", "an SMTP password is set but no username"))
                    }
                    _ => {}
                }
                let config = SmtpConfig {
                    host: s.host.clone(),
                    port: s.port,
                    security,
                    username: s.username.clone(),
                    password,
                    timeout_secs: s.timeout_secs,
                };
                Transport::smtp(&mail.from, &config)
            }
        };
        built.map_err(|e| match e {
            MailError::Address(_) => cfg_err("mail.from", e.to_string()),
            other => cfg_err("mail.transport", other.to_string()),
        })
    }
}

/// What can be checked of `[mail]` without touching the disk or network.
fn check_mail(mail: &MailSection) -> Result<(), ConfigError> {
    if mail.from.trim().is_empty() {
        return Err(cfg_err("mail.from", "must not be empty"));
    }
    match &mail.transport {
        MailTransport::File { dir } => {
            if dir.as_os_str().is_empty() {
                return Err(cfg_err("mail.transport.dir", "must not be empty"));
            }
        }
        MailTransport::Smtp(s) => {
            if s.host.trim().is_empty() {
                return Err(cfg_err("mail.transport.host", "must not be empty"));
            }
            if smtp_security(&s.security).is_none() {
                return Err(cfg_err(
                    "mail.transport.security",
                    format!("{:?} is not none, starttls or tls", s.security),
                ));
            }
            if s.port == Some(0) {
                return Err(cfg_err("mail.transport.port", "must be 1 to 65535"));
            }
            if s.timeout_secs == 0 {
                return Err(cfg_err("mail.transport.timeout_secs", "must be at least 1"));
            }
        }
    }
    Ok(())
}

fn check_http(http: &HttpSection) -> Result<(), ConfigError> {
    if http.header_timeout_secs == 0 {
        return Err(cfg_err("http.header_timeout_secs", "must be at least 1"));
    }
    if http.idle_timeout_secs == 0 || http.idle_timeout_secs > http.header_timeout_secs {
        return Err(cfg_err("http.idle_timeout_secs", "must be 1 to http.header_timeout_secs"));
    }
    if http.max_connections == 0 {
        return Err(cfg_err("http.max_connections", "must be at least 1"));
    }
    Ok(())
}

/// The SMTP settings an `QCERT_MAIL_SMTP_…` variable changes.
fn smtp_to_override<'a>(c: &'a mut Config, var: &str) -> Result<&'a mut SmtpSection, ConfigError> {
    match &mut c.mail.transport {
        MailTransport::Smtp(s) => Ok(s),
        MailTransport::File { .. } => Err(cfg_err(
            var,
            "applies to SMTP only, and mail goes to the file outbox: set QCERT_MAIL_SMTP_HOST too (or mail.transport.kind = \"smtp\")",
        )),
    }
}

fn check_retention(r: &RetentionSection) -> Result<(), ConfigError> {
    let min = qcert_ca_core::retention::MIN_REGISTRATION_YEARS;
    if r.registration_years < min {
        return Err(cfg_err("retention.registration_years", format!("at least {min} (EN 319 411-1 OVR-6.4.6-01)")));
    }
    if !(1..=100).contains(&r.financial_years) {
        return Err(cfg_err("retention.financial_years", "1 to 100"));
    }
    if r.registration_years > 100 {
        return Err(cfg_err("retention.registration_years", "at most 100"));
    }
    if !(1..=100_000).contains(&r.batch) || r.batches_per_tick == 0 {
        return Err(cfg_err("retention.batch", "batch 1 to 100000, batches_per_tick at least 1"));
    }
    Ok(())
}

fn check_orders(o: &OrdersSection) -> Result<(), ConfigError> {
    for (setting, n) in [
        ("orders.form_per_client", i64::from(o.form_per_client)),
        ("orders.form_per_client_window_secs", o.form_per_client_window_secs),
        ("orders.form_per_email", i64::from(o.form_per_email)),
        ("orders.form_per_email_window_secs", o.form_per_email_window_secs),
        ("orders.open_unpaid_per_email", i64::from(o.open_unpaid_per_email)),
    ] {
        if n <= 0 {
            return Err(cfg_err(setting, "must be a positive number"));
        }
    }
    if !(1..=24 * 365).contains(&o.unpaid_expiry_hours) {
        return Err(cfg_err("orders.unpaid_expiry_hours", "must be 1 to 8760 hours"));
    }
    if o.trusted_proxies.iter().any(|p| p.trim().parse::<std::net::IpAddr>().is_err()) {
        return Err(cfg_err("orders.trusted_proxies", "each entry must be an IP address such as 127.0.0.1 or ::1"));
    }
    Ok(())
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

fn set_addresses(c: &mut Config, env: &dyn Fn(&str) -> Option<String>) {
    if let Some(v) = env("QCERT_PUBLIC_BASE_URL") {
        c.public_base_url = v;
    }
    if let Some(v) = env("QCERT_PORTAL_URL") {
        c.portal_url = Some(v);
    }
    if let Some(v) = env("QCERT_LISTEN") {
        c.listen = v;
    }
}

/// `QCERT_PUBLIC_BASE_URL`, `QCERT_PORTAL_URL` and `QCERT_LISTEN` applied to
/// `c` and checked: what `qcert init` writes into a new `qcert.toml`.
pub fn apply_addresses(c: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    set_addresses(c, env);
    check_addresses(c).map(|_| ())
}

fn check_addresses(config: &Config) -> Result<SocketAddr, ConfigError> {
    let listen = config
        .listen
        .parse()
        .map_err(|e| cfg_err("listen", format!("{:?} is not an address like 127.0.0.1:8080 ({e})", config.listen)))?;
    qcert_ca_core::policy::PublicUrls::new(&config.public_base_url).map_err(|r| cfg_err("public_base_url", r))?;
    if let Some(p) = &config.portal_url {
        let ok = url::Url::parse(p)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.query().is_none() && u.fragment().is_none());
        if !ok {
            return Err(cfg_err("portal_url", format!("{p:?} is not an absolute https:// URL without query")));
        }
    }
    Ok(listen)
}

/// Overrides: `QCERT_PUBLIC_BASE_URL`, `QCERT_LISTEN`, `QCERT_POLICIES`, `QCERT_DESK_ORIGIN`, `QCERT_DESK_RP_ID`,
/// `QCERT_LOG_FORMAT`, `QCERT_DATABASE_URL`, `QCERT_DATABASE_MAX_CONNECTIONS`,
/// `QCERT_HSM_MODULE`, `QCERT_HSM_TOKEN_LABEL`, `QCERT_HSM_PIN_FILE`,
/// `QCERT_HSM_SOFTHSM_CONF`, `QCERT_REVOCATION_DOCUMENT_KEY_FILE`, `QCERT_MAIL_FROM`,
/// `QCERT_MAIL_SMTP_HOST` (switches the transport to SMTP), `QCERT_MAIL_SMTP_PORT`,
/// `QCERT_MAIL_SMTP_SECURITY`, `QCERT_MAIL_SMTP_USERNAME`, `QCERT_MAIL_SMTP_PASSWORD_FILE`,
/// `QCERT_HTTP_HEADER_TIMEOUT_SECS`, `QCERT_HTTP_IDLE_TIMEOUT_SECS`, `QCERT_HTTP_MAX_CONNECTIONS`,
/// `QCERT_HTTP_MAX_CONNECTIONS_PER_CLIENT`.
/// (`QCERT_HSM_PIN` and `QCERT_MAIL_SMTP_PASSWORD` are read where they are needed.)
fn apply_env(c: &mut Config, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    set_addresses(c, env);
    if let Some(v) = env("QCERT_POLICIES") {
        c.policies = v.into();
    }
    if let Some(v) = env("QCERT_DESK_ORIGIN") {
        c.desk.origin = Some(v);
    }
    if let Some(v) = env("QCERT_DESK_RP_ID") {
        c.desk.rp_id = Some(v);
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
    if let Some(v) = env("QCERT_NOTIFIER_SCHEDULE") {
        c.notifier.schedule = v;
    }
    if let Some(v) = env("QCERT_NOTIFIER_IN_SERVE") {
        c.notifier.in_serve = match v.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(cfg_err("QCERT_NOTIFIER_IN_SERVE", format!("{v:?} is neither true nor false"))),
        };
    }
    if let Some(v) = env("QCERT_NOTIFIER_KEEP_SENT_MAIL_DAYS") {
        c.notifier.keep_sent_mail_days = v
            .parse()
            .map_err(|_| cfg_err("QCERT_NOTIFIER_KEEP_SENT_MAIL_DAYS", format!("{v:?} is not a number of days")))?;
    }
    for (name, slot) in [
        ("QCERT_RETENTION_REGISTRATION_YEARS", &mut c.retention.registration_years),
        ("QCERT_RETENTION_FINANCIAL_YEARS", &mut c.retention.financial_years),
        ("QCERT_RETENTION_BATCH", &mut c.retention.batch),
        ("QCERT_RETENTION_BATCHES_PER_TICK", &mut c.retention.batches_per_tick),
    ] {
        if let Some(v) = env(name) {
            *slot = v.parse().map_err(|_| cfg_err(name, format!("{v:?} is not a number")))?;
        }
    }
    if let Some(v) = env("QCERT_ORDERS_PAYMENT_URL") {
        c.orders.payment.url = v;
    }
    if let Some(v) = env("QCERT_ORDERS_PAYMENT_RENEWAL_URL") {
        c.orders.payment.renewal_url = Some(v);
    }
    if let Some(v) = env("QCERT_ORDERS_VAULT_KEY_FILE") {
        c.orders.vault_key_file = v.into();
    }
    if let Some(v) = env("QCERT_ORDERS_PAYMENT_WEBHOOK_KEY_FILE") {
        c.orders.payment_webhook_key_file = v.into();
    }
    if let Some(v) = env("QCERT_REVOCATION_DOCUMENT_KEY_FILE") {
        c.revocation.document_key_file = v.into();
    }
    if let Some(v) = env("QCERT_MAIL_FROM") {
        c.mail.from = v;
    }
    let positive = |var: &str, v: &str| {
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| cfg_err(var, format!("{v:?} is not a positive number")))
    };
    if let Some(v) = env("QCERT_HTTP_HEADER_TIMEOUT_SECS") {
        c.http.header_timeout_secs = positive("QCERT_HTTP_HEADER_TIMEOUT_SECS", &v)?;
    }
    if let Some(v) = env("QCERT_HTTP_IDLE_TIMEOUT_SECS") {
        c.http.idle_timeout_secs = positive("QCERT_HTTP_IDLE_TIMEOUT_SECS", &v)?;
    }
    if let Some(v) = env("QCERT_HTTP_MAX_CONNECTIONS_PER_CLIENT") {
        c.http.max_connections_per_client = v.trim().parse().map_err(|_| {
            cfg_err("QCERT_HTTP_MAX_CONNECTIONS_PER_CLIENT", format!("{v:?} is not a number (0: no cap)"))
        })?;
    }
    if let Some(v) = env("QCERT_HTTP_MAX_CONNECTIONS") {
        let n = positive("QCERT_HTTP_MAX_CONNECTIONS", &v)?;
        c.http.max_connections =
            u32::try_from(n).map_err(|_| cfg_err("QCERT_HTTP_MAX_CONNECTIONS", format!("{v:?} is too large")))?;
    }
    if let Some(v) = env("QCERT_MAIL_SMTP_HOST") {
        match &mut c.mail.transport {
            MailTransport::Smtp(s) => s.host = v,
            other => *other = MailTransport::Smtp(SmtpSection::new(v)),
        }
    }
    if let Some(v) = env("QCERT_MAIL_SMTP_PORT") {
        let port = v
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| cfg_err("QCERT_MAIL_SMTP_PORT", format!("{v:?} is not a port (1 to 65535)")))?;
        smtp_to_override(c, "QCERT_MAIL_SMTP_PORT")?.port = Some(port);
    }
    if let Some(v) = env("QCERT_MAIL_SMTP_SECURITY") {
        if smtp_security(&v).is_none() {
            return Err(cfg_err("QCERT_MAIL_SMTP_SECURITY", format!("{v:?} is not none, starttls or tls")));
        }
        smtp_to_override(c, "QCERT_MAIL_SMTP_SECURITY")?.security = v.trim().to_ascii_lowercase();
    }
    if let Some(v) = env("QCERT_MAIL_SMTP_USERNAME") {
        smtp_to_override(c, "QCERT_MAIL_SMTP_USERNAME")?.username = Some(v);
    }
    if let Some(v) = env("QCERT_MAIL_SMTP_PASSWORD_FILE") {
        smtp_to_override(c, "QCERT_MAIL_SMTP_PASSWORD_FILE")?.password_file = Some(v.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::string_slice)] // test code: a panic is the failure report
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
    fn holder_links_use_portal_url_else_the_public_base() {
        let home = home_with(&defaults_text());
        let s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.portal_url(), "http://127.0.0.1:8080");
        let env = |k: &str| (k == "QCERT_PORTAL_URL").then(|| "https://portal.qcert-demo.eu".to_string());
        assert_eq!(Settings::load(home.path(), &env).unwrap().portal_url(), "https://portal.qcert-demo.eu");
    }

    #[test]
    fn the_test_payment_page_is_flagged_when_reachable_from_outside() {
        let home = home_with(&defaults_text());
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.test_payment_exposed("0.0.0.0:8080".parse().unwrap()), None, "off: nothing to flag");
        s.config.orders.payment.test_provider = true;
        assert_eq!(s.test_payment_exposed(local), None, "loopback listener and links");
        s.config.portal_url = Some("http://localhost:8080".into());
        assert_eq!(s.test_payment_exposed("[::1]:8080".parse().unwrap()), None);
        let why = s.test_payment_exposed("0.0.0.0:8080".parse().unwrap()).unwrap();
        assert!(why.contains("0.0.0.0:8080"), "{why}");
        s.config.portal_url = Some("https://portal.qcert-demo.eu".into());
        let why = s.test_payment_exposed(local).unwrap();
        assert!(why.contains("https://portal.qcert-demo.eu"), "{why}");
    }

    #[test]
    fn an_unset_renewal_checkout_follows_the_test_provider() {
        let home = home_with(&defaults_text());
        let mut s = Settings::load(home.path(), &|_| None).unwrap();
        assert!(s.payment_settings().renewal_url_template.starts_with("https://pay.example.invalid/"));
        s.config.orders.payment.test_provider = true;
        assert_eq!(s.payment_settings().renewal_url_template, "http://127.0.0.1:8080/pay/test/renewal/{renewal_id}");
        let env =
            |k: &str| (k == "QCERT_ORDERS_PAYMENT_RENEWAL_URL").then(|| "https://pay.eu/r/{renewal_id}".to_string());
        let s = Settings::load(home.path(), &env).unwrap();
        assert_eq!(s.payment_settings().renewal_url_template, "https://pay.eu/r/{renewal_id}");
    }

    #[test]
    fn errors_name_the_setting() {
        let cases = [
            (defaults_text().replace("127.0.0.1:8080\"\npolicies", "nowhere\"\npolicies"), "listen"),
            (defaults_text().replace("sqlite://qcert.db", "mysql://x"), "database.url"),
            (defaults_text().replace("http://127.0.0.1:8080", "not a url"), "public_base_url"),
            (defaults_text().replace("listen =", "portal_url = \"ftp://x\"\nlisten ="), "portal_url"),
            (defaults_text().replace("token_label = \"qcert\"", "token_label = \"qcert\"\npin = \"1234\""), "hsm.pin"),
            (defaults_text().replace("form_per_email = 5", "form_per_email = 0"), "orders.form_per_email"),
            (
                defaults_text().replace("unpaid_expiry_hours = 72", "unpaid_expiry_hours = 0"),
                "orders.unpaid_expiry_hours",
            ),
            (
                defaults_text().replace("trusted_proxies = []", "trusted_proxies = [\"proxy\"]"),
                "orders.trusted_proxies",
            ),
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
    fn code_limits_come_from_the_orders_section() {
        let text = defaults_text();
        assert!(text.contains("code_lock_after = 5"), "the defaults are written out: {text}");
        let home = home_with(
            &text
                .replace("code_lock_after = 5", "code_lock_after = 3")
                .replace("codes_per_certificate = 10", "codes_per_certificate = 4"),
        );
        let l = Settings::load(home.path(), &|_| None).unwrap().code_limits();
        assert_eq!((l.lock_after, l.per_order.limit, l.per_certificate.limit), (3, 10, 4));
        assert_eq!((l.per_order.window_secs, l.per_certificate.window_secs), (900, 900));
        let home = home_with(&text.replace("code_window_secs = 900", "code_window_secs = 0"));
        assert_eq!(Settings::load(home.path(), &|_| None).unwrap_err().setting, "orders.code_window_secs");
    }

    #[test]
    fn order_form_limits_come_from_the_orders_section() {
        let text = defaults_text()
            .replace("form_per_client = 20", "form_per_client = 7")
            .replace("unpaid_expiry_hours = 72", "unpaid_expiry_hours = 24")
            .replace("trusted_proxies = []", "trusted_proxies = [\"10.0.0.1\", \"::1\"]");
        let s = Settings::load(home_with(&text).path(), &|_| None).unwrap();
        let l = s.form_limits();
        assert_eq!((l.per_client.limit, l.per_client.window_secs), (7, 3600));
        assert_eq!((l.per_email.limit, l.open_unpaid_per_email), (5, 3));
        assert_eq!(l.unpaid_ttl, time::Duration::hours(24));
        assert_eq!(s.trusted_proxies().len(), 2);
        let d = Settings::load(home_with(&defaults_text()).path(), &|_| None).unwrap();
        assert_eq!(d.form_limits(), qcert_ca_core::orders::FormLimits::default());
        assert!(d.trusted_proxies().is_empty());
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

    const SMTP_MAIL: &str = "[mail]\nfrom = \"qcert <noreply@pki.example.eu>\"\n\n[mail.transport]\nkind = \"smtp\"\nhost = \"smtp.example.eu\"\nsecurity = \"tls\"\nusername = \"qcert\"\n";

    /// The defaults with their `[mail]` section replaced by `mail`.
    fn with_mail(mail: &str) -> String {
        let text = defaults_text();
        let at = text.find("\n[mail]\n").expect("the defaults have a [mail] section") + 1;
        // Up to the next table that is not one of [mail]'s.
        let end = text[at..]
            .match_indices("\n[")
            .map(|(i, _)| at + i + 1)
            .find(|i| !text[*i..].starts_with("[mail"))
            .unwrap_or(text.len());
        format!("{}{mail}{}", &text[..at], &text[end..])
    }

    #[test]
    fn mail_defaults_round_trip_to_the_file_outbox() {
        let text = defaults_text();
        assert!(
            text.contains("[mail]") && text.contains("[mail.transport]\nkind = \"file\"\ndir = \"outbox\""),
            "{text}"
        );
        let home = home_with(&text);
        let s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.config.mail, MailSection::default());
        assert_eq!(toml::to_string(&s.config).unwrap(), text, "round trip");
        let t = s.mail_transport(&|_| None).unwrap();
        assert!(home.path().join("outbox").is_dir(), "the outbox directory is created");
        assert_eq!(t.describe(), format!("file {}", home.path().join("outbox").display()));
        assert_eq!(t.from_mailbox(), "qcert <noreply@localhost>");
        // A home written before [mail] existed gets the same.
        let home = home_with(&with_mail(""));
        assert_eq!(Settings::load(home.path(), &|_| None).unwrap().config.mail, MailSection::default());
        // An SMTP section round-trips too.
        let home = home_with(&with_mail(SMTP_MAIL));
        let s = Settings::load(home.path(), &|_| None).unwrap();
        let again: Config = toml::from_str(&toml::to_string(&s.config).unwrap()).unwrap();
        assert_eq!(again.mail, s.config.mail);
        assert!(matches!(&again.mail.transport, MailTransport::Smtp(smtp) if smtp.host == "smtp.example.eu"));
    }

    #[test]
    fn mail_env_overrides_switch_to_smtp() {
        let home = home_with(&defaults_text());
        let env = |k: &str| {
            let v = match k {
                "QCERT_MAIL_FROM" => "CA <ca@pki.example.eu>",
                "QCERT_MAIL_SMTP_HOST" => "smtp.example.eu",
                "QCERT_MAIL_SMTP_PORT" => "2525",
                "QCERT_MAIL_SMTP_SECURITY" => "TLS",
                "QCERT_MAIL_SMTP_USERNAME" => "qcert",
                "QCERT_MAIL_SMTP_PASSWORD" => "hunter2-from-env",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let s = Settings::load(home.path(), &env).unwrap();
        let MailTransport::Smtp(smtp) = &s.config.mail.transport else { panic!("{:?}", s.config.mail) };
        assert_eq!((smtp.host.as_str(), smtp.port, smtp.security.as_str()), ("smtp.example.eu", Some(2525), "tls"));
        assert_eq!(smtp.username.as_deref(), Some("qcert"));
        let t = s.mail_transport(&env).unwrap();
        assert_eq!(t.describe(), "smtp smtp.example.eu:2525 (tls)");
        assert_eq!(t.from_mailbox(), "CA <ca@pki.example.eu>");
        assert!(!format!("{t:?} {s:?}").contains("hunter2"));
        assert!(!home.path().join("outbox").exists(), "no outbox directory for SMTP");
        // A username without a password names where the password comes from.
        let err = s.mail_transport(&|k| env(k).filter(|_| k != "QCERT_MAIL_SMTP_PASSWORD")).unwrap_err();
        assert_eq!(err.setting, "mail.transport.password_file", "{err}");
        // The host in the file stays when only the port is overridden.
        let home = home_with(&with_mail(SMTP_MAIL));
        let s = Settings::load(home.path(), &|k| (k == "QCERT_MAIL_SMTP_PORT").then(|| "587".to_owned())).unwrap();
        let MailTransport::Smtp(smtp) = &s.config.mail.transport else { panic!("not smtp") };
        assert_eq!((smtp.host.as_str(), smtp.port), ("smtp.example.eu", Some(587)));
    }

    #[test]
    fn smtp_password_comes_from_env_or_file_never_from_qcert_toml() {
        use secrecy::ExposeSecret;
        let text = with_mail(&format!("{SMTP_MAIL}password = \"hunter2-in-toml\"\n"));
        let err = Settings::load(home_with(&text).path(), &|_| None).unwrap_err();
        assert_eq!(err.setting, "mail.transport.password", "{err}");
        assert!(!err.to_string().contains("hunter2"), "a password never appears in an error: {err}");

        let home = home_with(&with_mail(&format!("{SMTP_MAIL}password_file = \"secrets/smtp-password\"\n")));
        let s = Settings::load(home.path(), &|_| None).unwrap();
        let err = s.smtp_password(&|_| None).unwrap_err();
        assert_eq!(err.setting, "mail.transport.password_file", "{err}");
        std::fs::create_dir_all(home.path().join("secrets")).unwrap();
        std::fs::write(home.path().join("secrets/smtp-password"), "from-file\n").unwrap();
        assert_eq!(s.smtp_password(&|_| None).unwrap().unwrap().expose_secret(), "from-file");
        let env = |k: &str| (k == "QCERT_MAIL_SMTP_PASSWORD").then(|| "from-env".to_string());
        assert_eq!(s.smtp_password(&env).unwrap().unwrap().expose_secret(), "from-env");
        assert_eq!(s.mail_transport(&|_| None).unwrap().describe(), "smtp smtp.example.eu:465 (tls)");
    }

    #[test]
    fn http_limits_default_override_and_name_the_setting() {
        let home = home_with(&defaults_text());
        let s = Settings::load(home.path(), &|_| None).unwrap();
        assert_eq!(s.config.http, HttpSection::default());
        let env = |k: &str| {
            let v = match k {
                "QCERT_HTTP_HEADER_TIMEOUT_SECS" => "3",
                "QCERT_HTTP_IDLE_TIMEOUT_SECS" => "2",
                "QCERT_HTTP_MAX_CONNECTIONS" => "7",
                _ => return None,
            };
            Some(v.to_owned())
        };
        let s = Settings::load(home.path(), &env).unwrap();
        assert_eq!(
            s.config.http,
            HttpSection {
                header_timeout_secs: 3,
                idle_timeout_secs: 2,
                max_connections: 7,
                max_connections_per_client: 32
            }
        );
        for (var, value, setting) in [
            ("QCERT_HTTP_MAX_CONNECTIONS", "0", "QCERT_HTTP_MAX_CONNECTIONS"),
            ("QCERT_HTTP_HEADER_TIMEOUT_SECS", "soon", "QCERT_HTTP_HEADER_TIMEOUT_SECS"),
            ("QCERT_HTTP_IDLE_TIMEOUT_SECS", "11", "http.idle_timeout_secs"),
        ] {
            let err = Settings::load(home.path(), &|k| (k == var).then(|| value.to_owned())).unwrap_err();
            assert_eq!(err.setting, setting, "{err}");
        }
        let text = defaults_text().replace("max_connections = 512", "max_connections = 0");
        assert_eq!(Settings::load(home_with(&text).path(), &|_| None).unwrap_err().setting, "http.max_connections");
    }

    #[test]
    fn mail_errors_name_the_setting() {
        let smtp = |line: &str| with_mail(&SMTP_MAIL.replace("security = \"tls\"\n", line));
        let cases = [
            (smtp("security = \"ssl\"\n"), "mail.transport.security"),
            (smtp("security = \"tls\"\nport = 0\n"), "mail.transport.port"),
            (with_mail(&SMTP_MAIL.replace("smtp.example.eu", " ")), "mail.transport.host"),
            (defaults_text().replace("noreply@localhost>", "").replace("qcert <", ""), "mail.from"),
            (defaults_text().replace("dir = \"outbox\"", "dir = \"\""), "mail.transport.dir"),
        ];
        for (text, setting) in cases {
            let err = Settings::load(home_with(&text).path(), &|_| None).unwrap_err();
            assert_eq!(err.setting, setting, "{err}\n{text}");
        }
        let home = home_with(&defaults_text());
        for (var, value) in [
            ("QCERT_MAIL_SMTP_PORT", "25"),
            ("QCERT_MAIL_SMTP_USERNAME", "qcert"),
            ("QCERT_MAIL_SMTP_SECURITY", "tls"),
            ("QCERT_MAIL_SMTP_SECURITY", "ssl"),
        ] {
            let err = Settings::load(home.path(), &|k| (k == var).then(|| value.to_owned())).unwrap_err();
            assert_eq!(err.setting, var, "{err}");
        }
        let env = |k: &str| (k == "QCERT_MAIL_FROM").then(|| "not an address".to_owned());
        let s = Settings::load(home.path(), &env).unwrap();
        assert_eq!(s.mail_transport(&env).unwrap_err().setting, "mail.from");
    }
}
