//! How mail leaves qcert: SMTP in production, a directory of `.eml` files
//! on the embedded default. Both through lettre.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use qcert_ca_core::store::outbox::ClaimedMail;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::{DeliveryPolicy, MailError};

/// Where mail goes, and from whom (`[mail]` in the configuration).
///
/// ```toml
/// from = "qcert <noreply@pki.example.eu>"
/// [transport]
/// kind = "smtp"            # or "file", with dir = "/var/lib/qcert/outbox"
/// host = "smtp.example.eu"
/// security = "starttls"    # none | starttls | tls
/// username = "qcert"       # password: set by the caller, never logged
/// [delivery]               # optional, see DeliveryPolicy
/// max_backoff_secs = 3600
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// The sender, `name <address>` or a bare address; its domain also
    /// names the Message-IDs.
    pub from: String,
    pub transport: TransportConfig,
    /// Retries, leases, batch size; defaults when absent.
    #[serde(default)]
    pub delivery: DeliveryPolicy,
}

/// The two ways out.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TransportConfig {
    /// Each mail becomes `<uuid>.eml` in `dir` (created if missing).
    File {
        dir: PathBuf,
    },
    Smtp(SmtpConfig),
}

/// An SMTP relay.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Defaults by `security`: 25 (none), 587 (starttls), 465 (tls).
    #[serde(default)]
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    #[serde(default)]
    pub username: Option<String>,
    /// Never printed: `Debug` shows `[REDACTED]`.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// Per SMTP command and connection, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain text. Credentials are refused unless the host is loopback.
    None,
    /// Plain connection upgraded with STARTTLS, which is required.
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

impl SmtpSecurity {
    fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// A sending transport with its sender address. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    from: Mailbox,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Smtp { mailer: AsyncSmtpTransport<Tokio1Executor>, describe: String },
    File { mailer: AsyncFileTransport<Tokio1Executor>, dir: PathBuf },
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport").field("from", &self.from.to_string()).field("to", &self.describe()).finish()
    }
}

/// Why one mail was not delivered.
#[derive(Debug)]
pub(crate) enum SendFailure {
    /// The server refused this mail for good (5xx), or it cannot be built.
    Rejected(String),
    /// This mail was refused for now (4xx): try it again later.
    Later(String),
    /// The way out is broken (connection, TLS, timeout, disk): every mail
    /// waits, not only this one.
    Down(String),
}

impl Transport {
    pub fn from_config(config: &MailConfig) -> Result<Transport, MailError> {
        match &config.transport {
            TransportConfig::File { dir } => Transport::file(&config.from, dir),
            TransportConfig::Smtp(smtp) => Transport::smtp(&config.from, smtp),
        }
    }

    /// `.eml` files in `dir`, which is created if missing.
    pub fn file(from: &str, dir: &Path) -> Result<Transport, MailError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| MailError::Config(format!("cannot create the mail directory {}: {e}", dir.display())))?;
        Ok(Transport {
            from: parse_from(from)?,
            inner: Inner::File { mailer: AsyncFileTransport::new(dir), dir: dir.to_owned() },
        })
    }

    pub fn smtp(from: &str, c: &SmtpConfig) -> Result<Transport, MailError> {
        let from = parse_from(from)?;
        let host = c.host.trim();
        if host.is_empty() {
            return Err(MailError::Config("smtp host is empty".into()));
        }
        if c.timeout_secs == 0 {
            return Err(MailError::Config("smtp timeout_secs must be at least 1".into()));
        }
        let port = c.port.unwrap_or_else(|| c.security.default_port());
        let tls = |h: &str| {
            TlsParameters::new(h.to_owned()).map_err(|e| MailError::Config(format!("smtp TLS setup for {h}: {e}")))
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(c.timeout_secs)));
        builder = match c.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls(host)?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(host)?)),
        };
        match (&c.username, &c.password) {
            (Some(user), Some(password)) => {
                if c.security == SmtpSecurity::None && !qcert_ca_core::policy::is_loopback_host(host) {
                    return Err(MailError::Config(format!(
                        "refusing to send the SMTP password in clear to {host}: use security = \"starttls\" or \"tls\""
                    )));
                }
                builder = builder.credentials(Credentials::new(user.clone(), password.expose_secret().clone()));
            }
            (None, None) => {}
            (Some(_), None) => return Err(MailError::Config("smtp username given without a password".into())),
            (None, Some(_)) => return Err(MailError::Config("smtp password given without a username".into())),
        }
        let security = match c.security {
            SmtpSecurity::None => "plain",
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
        };
        let describe = format!("smtp {host}:{port} ({security})");
        Ok(Transport { from, inner: Inner::Smtp { mailer: builder.build(), describe } })
    }

    /// The sender mailbox, as written in `From:`.
    pub fn from_mailbox(&self) -> String {
        self.from.to_string()
    }

    /// Where mail goes, for logs: `smtp host:port (starttls)` or `file <dir>`.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Smtp { describe, .. } => describe.clone(),
            Inner::File { dir, .. } => format!("file {}", dir.display()),
        }
    }

    /// Can mail leave now? SMTP: connect (with TLS and login) and NOOP.
    pub(crate) async fn check(&self) -> Result<(), String> {
        match &self.inner {
            Inner::Smtp { mailer, .. } => match mailer.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("smtp server did not answer NOOP".into()),
                Err(e) => Err(format!("smtp: {e}")),
            },
            Inner::File { dir, .. } => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| format!("mail directory {}: {e}", dir.display()))
            }
        }
    }

    /// Build the message of an outbox row and hand it over.
    pub(crate) async fn send(&self, mail: &ClaimedMail, body: &str) -> Result<(), SendFailure> {
        let message = self.message(mail, body).map_err(SendFailure::Rejected)?;
        match &self.inner {
            Inner::Smtp { mailer, .. } => match mailer.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() || e.is_client() => Err(SendFailure::Rejected(format!("smtp: {e}"))),
                Err(e) if e.is_transient() => Err(SendFailure::Later(format!("smtp: {e}"))),
                Err(e) => Err(SendFailure::Down(format!("smtp: {e}"))),
            },
            Inner::File { mailer, .. } => match mailer.send(message).await {
                Ok(_) => Ok(()),
                Err(e) => Err(SendFailure::Down(format!("mail file: {e}"))),
            },
        }
    }

    /// The RFC 5322 message of an outbox row: UTF-8 text/plain (lettre picks
    /// quoted-printable or base64, and RFC 2047 for the subject), with a
    /// Message-ID that stays the same for every attempt of the row.
    pub(crate) fn message(&self, mail: &ClaimedMail, body: &str) -> Result<Message, String> {
        let to: Address = mail.recipient.parse().map_err(|e| format!("recipient address: {e}"))?;
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(mail.subject.as_str())
            .message_id(Some(message_id(mail.id, &mail.dedupe_key, self.from.email.domain())))
            .header(AutoSubmitted)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))
    }
}

/// `<outbox-{id}.{first 8 octets of SHA-256(dedupe_key), hex}@{from domain}>`:
/// the same for every attempt of one row, so a resend after a crash between
/// the server's acceptance and our record of it can be recognised.
pub fn message_id(id: i64, dedupe_key: &str, from_domain: &str) -> String {
    let digest = Sha256::digest(dedupe_key.as_bytes());
    let short = hex::encode(digest.get(..8).unwrap_or_default());
    format!("<outbox-{id}.{short}@{from_domain}>")
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.trim().parse::<Mailbox>().map_err(|e| MailError::Address(format!("sender {from:?}: {e}")))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation replies, please.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        AUTO_SUBMITTED
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn smtp_config_parses_and_hides_the_password() {
        let c: MailConfig = serde_json::from_str(
            r#"{"from": "qcert <noreply@pki.example.eu>",
                "transport": {"kind": "smtp", "host": "smtp.example.eu", "security": "starttls",
                              "username": "qcert", "password": "hunter2-secret"}}"#,
        )
        .unwrap();
        let TransportConfig::Smtp(s) = &c.transport else { panic!("not smtp") };
        assert_eq!(s.port, None);
        assert_eq!(s.timeout_secs, 30);
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
        let t = Transport::from_config(&c).unwrap();
        assert_eq!(t.describe(), "smtp smtp.example.eu:587 (starttls)");
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn file_config_parses() {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({"from": "noreply@pki.example.eu", "transport": {"kind": "file", "dir": dir.path().join("out")}});
        let c: MailConfig = serde_json::from_value(json).unwrap();
        let t = Transport::from_config(&c).unwrap();
        assert!(dir.path().join("out").is_dir());
        assert!(t.describe().starts_with("file "));
    }

    #[test]
    fn bad_configs_are_refused() {
        let smtp = |security, user: Option<&str>, password: Option<&str>, host: &str| SmtpConfig {
            host: host.into(),
            port: None,
            security,
            username: user.map(str::to_owned),
            password: password.map(|p| SecretString::new(p.to_owned())),
            timeout_secs: 30,
        };
        let from = "noreply@pki.example.eu";
        assert!(Transport::smtp(from, &smtp(SmtpSecurity::None, Some("u"), Some("p"), "smtp.example.eu")).is_err());
        assert!(Transport::smtp(from, &smtp(SmtpSecurity::None, Some("u"), Some("p"), "127.0.0.1")).is_ok());
        assert!(Transport::smtp(from, &smtp(SmtpSecurity::Tls, Some("u"), None, "smtp.example.eu")).is_err());
        assert!(Transport::smtp(from, &smtp(SmtpSecurity::Tls, None, None, " ")).is_err());
        assert!(Transport::smtp("not an address", &smtp(SmtpSecurity::Tls, None, None, "smtp.example.eu")).is_err());
        for bad in [
            r#"{"from": "a@b.eu", "transport": {"kind": "smtp", "host": "h", "security": "ssl"}}"#,
            r#"{"from": "a@b.eu", "transport": {"kind": "smtp", "host": "h", "security": "tls", "pasword": "x"}}"#,
            r#"{"from": "a@b.eu", "transport": {"kind": "file", "dir": "/tmp/x", "host": "h"}}"#,
            r#"{"from": "a@b.eu", "transport": {"kind": "sendmail"}}"#,
        ] {
            assert!(serde_json::from_str::<MailConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn message_ids_are_stable_per_row() {
        let a = message_id(7, "reminder-45:01ab", "pki.example.eu");
        assert_eq!(a, message_id(7, "reminder-45:01ab", "pki.example.eu"));
        assert_ne!(a, message_id(8, "reminder-45:01ab", "pki.example.eu"));
        assert!(a.starts_with("<outbox-7.") && a.ends_with("@pki.example.eu>"), "{a}");
    }
}
