//! A real SMTP server for tests: aiosmtpd (`tests/judges/smtp_sink.py`),
//! writing each message it accepts to a directory, and what it received.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::venv_tool;

/// aiosmtpd on 127.0.0.1:`port`, writing what it receives under `dir/received`.
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
        panic!("smtp_sink.py did not listen on 127.0.0.1:{port} within 15 s");
    }

    /// Messages received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        received(&self.dir)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on (yet).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One message as the SMTP server decoded it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Received {
    pub rcpt_tos: Vec<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
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

/// Messages under `dir/received` (in no particular order).
pub fn received(dir: &Path) -> Vec<Received> {
    let Ok(entries) = std::fs::read_dir(dir.join("received")) else { return Vec::new() };
    let mut out: Vec<Received> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let mut r: Received = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("sink JSON");
            r.file = p;
            r
        })
        .collect();
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}
