//! A real SMTP server for tests: aiosmtpd (`tests/judges/smtp_sink.py`),
//! writing each message it accepts to a directory, and what it received.
//! Shared by the end-to-end tests and the notifier's tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use qcert_ca_core::Registry;
use qcert_notifier::{DeliveryPolicy, Dispatcher, SmtpConfig, SmtpSecurity, Transport};

use crate::venv_tool;

/// The sender of the tests' mail.
pub const FROM: &str = "qcert <noreply@pki.qcert-demo.eu>";

/// Plain SMTP (no TLS, no login) to 127.0.0.1:`port`, 10 s timeout.
pub fn smtp_config(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        security: SmtpSecurity::None,
        username: None,
        password: None,
        timeout_secs: 10,
    }
}

/// Mail from [`FROM`] over [`smtp_config`]`(port)`.
pub fn smtp_transport(port: u16) -> Transport {
    Transport::smtp(FROM, &smtp_config(port)).expect("SMTP transport")
}

/// A dispatcher delivering `registry`'s outbox to 127.0.0.1:`port` (the
/// default delivery policy), opening bodies with [`crate::test_vault`].
pub fn smtp_dispatcher(registry: &Registry, port: u16) -> Dispatcher {
    Dispatcher::new(registry.clone(), crate::test_vault(), smtp_transport(port), DeliveryPolicy::default())
        .expect("dispatcher")
}

/// aiosmtpd on 127.0.0.1:`port`, writing what it receives under `dir/received`.
/// Killed when stopped or dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpSink {
    /// Start on a free port.
    pub async fn start(dir: &Path) -> SmtpSink {
        SmtpSink::start_on(free_port(), dir).await
    }

    /// Start on `port` (bounded wait until it accepts connections).
    pub async fn start_on(port: u16, dir: &Path) -> SmtpSink {
        SmtpSink::start_with(port, dir, &[]).await
    }

    /// Start on `port` with more arguments for `smtp_sink.py`, e.g.
    /// `["--auth", "user:password"]` to require SMTP AUTH.
    pub async fn start_with(port: u16, dir: &Path, extra_args: &[&str]) -> SmtpSink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("judges/smtp_sink.py");
        let log_path = dir.join(format!("sink-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("sink log");
        let mut child = Command::new(venv_tool("python"))
            .args(["-W", "ignore"])
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.join("received"))
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        for _ in 0..300 {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("smtp_sink.py exited with {status}:\n{log}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return SmtpSink { child, port, dir: dir.to_owned() };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("smtp_sink.py did not listen on 127.0.0.1:{port} within 15 s");
    }

    /// Messages received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        received(&self.dir)
    }

    /// Stop the server now (the port refuses connections afterwards);
    /// what it received stays in the directory.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One message as the SMTP server decoded it (Python's email package).
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    /// The envelope sender (MAIL FROM).
    pub mail_from: String,
    /// The envelope recipients (RCPT TO).
    pub rcpt_tos: Vec<String>,
    /// The SMTP AUTH login, if the client logged in.
    pub auth_user: Option<String>,
    /// Decoded (RFC 2047) subject.
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub auto_submitted: Option<String>,
    /// e.g. `text/plain`
    pub content_type: String,
    pub charset: Option<String>,
    /// Decoded body (None for a multipart message).
    pub body: Option<String>,
    /// The message as it came over the wire.
    #[serde(skip)]
    pub raw: Vec<u8>,
    /// The sink's `.json` file for this message.
    #[serde(skip)]
    pub file: PathBuf,
}

impl Received {
    /// The first `http://…` link in the body.
    pub fn link(&self) -> Option<String> {
        let body = self.body.as_deref()?;
        let start = body.find("http://")?;
        Some(body.get(start..)?.split_whitespace().next()?.to_owned())
    }
}

/// Messages under `dir/received`, oldest first (by the time the sink wrote them).
pub fn received(dir: &Path) -> Vec<Received> {
    let Ok(entries) = std::fs::read_dir(dir.join("received")) else { return Vec::new() };
    let mut out: Vec<(std::time::SystemTime, Received)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let mut r: Received = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("sink JSON");
            // The sink renames the .eml into place before the .json.
            r.raw = std::fs::read(p.with_extension("eml")).expect("the message's .eml");
            let written = std::fs::metadata(&p).and_then(|m| m.modified()).expect("mtime");
            r.file = p;
            (written, r)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.file.cmp(&b.1.file)));
    out.into_iter().map(|(_, r)| r).collect()
}
