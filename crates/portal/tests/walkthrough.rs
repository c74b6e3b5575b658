#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! The README's "A certificate's life in 15 commands", run as written: the
//! section's shell blocks, in order, under `bash` with `set -euo pipefail`,
//! in an empty directory, with the debug `qcert` first on PATH and the
//! port 8080 of the text replaced by a free one. Any failing command (curl
//! uses `--fail-with-body`, so a refusal fails too) fails the test. The
//! background `qcert serve` is killed with the script's process group by a
//! guard, also when the test fails.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qcert_tests::{Backend, TestDb};

const README: &str = include_str!("../../../README.md");
const SECTION: &str = "## A certificate's life in 15 commands";
/// Longest the whole walk may take before it is called hung (it waits for
/// the server and for the mail dispatcher, which polls every 10 s).
const HANG: Duration = Duration::from_secs(300);

/// The shell code of the section: its ```sh blocks, in order.
fn section_code() -> String {
    let (_, rest) = README.split_once(SECTION).expect("the README has the walk-through section");
    let mut code = String::new();
    // The fence we are inside, if any, and whether it is shell code.
    let mut fence: Option<bool> = None;
    for line in rest.lines().skip(1) {
        let trimmed = line.trim();
        match fence {
            None if trimmed.starts_with("```") => fence = Some(matches!(trimmed, "```sh" | "```bash")),
            // The next heading of the same or a higher level ends the section.
            None if line.starts_with("## ") || line.starts_with("# ") => break,
            None => {}
            Some(_) if trimmed == "```" => fence = None,
            Some(true) => {
                code.push_str(line);
                code.push('\n');
            }
            Some(false) => {}
        }
    }
    assert!(!code.trim().is_empty(), "the section has ```sh blocks");
    code
}

/// The numbers of the `# N. …` comments, and how many commands start at the
/// left margin (continuation lines are indented).
fn steps(code: &str) -> (Vec<u32>, usize) {
    let numbers = code
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter_map(|l| l.split_once(". "))
        .filter_map(|(n, _)| n.parse().ok())
        .collect();
    let commands = code.lines().filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(' ')).count();
    (numbers, commands)
}

#[test]
fn the_walk_through_has_at_most_15_numbered_commands_each_with_its_comment() {
    let (numbers, commands) = steps(&section_code());
    assert!(!numbers.is_empty() && numbers.len() <= 15, "{numbers:?}");
    assert_eq!(numbers, (1..=numbers.len() as u32).collect::<Vec<_>>(), "numbered 1, 2, … in order");
    assert_eq!(commands, numbers.len(), "one command per numbered comment");
}

/// A process group (the script and what it left in the background, the
/// server on `port`), killed when stopped or dropped.
struct Group {
    pgid: u32,
    port: u16,
}

impl Group {
    /// TERM to the group, then KILL once the port is closed (or after 10 s);
    /// true when nothing listens on the port any more. (The port, not the
    /// pid, tells: an orphaned server may stay a zombie for a while.)
    fn stop(&self) -> bool {
        let group = format!("-{}", self.pgid);
        let signal = |s: &str| Command::new("kill").args([s, "--", &group]).stderr(Stdio::null()).status();
        let listening = || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
        let _ = signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while listening() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = signal("-KILL");
        std::thread::sleep(Duration::from_millis(100));
        !listening()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What the walk left behind.
struct Walk {
    dir: tempfile::TempDir,
    stdout: String,
    report: String,
    /// Nothing listened on the walk's port any more once it was stopped.
    stopped: bool,
}

impl Walk {
    fn home(&self) -> std::path::PathBuf {
        self.dir.path().join("qcert-data")
    }
}

/// Run `code` (port 8080 replaced) in a fresh directory; `db_url` moves the
/// registry to that database with `QCERT_DATABASE_URL` (no command changes).
/// Returns whether the script succeeded and what it left.
fn run(code: &str, db_url: Option<&str>) -> (bool, Walk) {
    let dir = tempfile::tempdir().expect("tmp");
    let port = free_port();
    assert!(code.contains("8080"), "the walk-through names its port");
    let script = format!("set -euo pipefail\nset -x\n{}", code.replace("8080", &port.to_string()));
    std::fs::write(dir.path().join("walk.sh"), script).expect("write script");

    let bin = Path::new(env!("CARGO_BIN_EXE_qcert")).parent().expect("bin dir").to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("PATH");
    let mut cmd = Command::new("bash");
    cmd.arg("walk.sh").current_dir(dir.path()).env("PATH", path).stdin(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("QCERT_") {
            cmd.env_remove(name);
        }
    }
    if let Some(url) = db_url {
        cmd.env("QCERT_DATABASE_URL", url);
    }
    let (out, err) = (dir.path().join("stdout.txt"), dir.path().join("stderr.txt"));
    cmd.stdout(std::fs::File::create(&out).expect("stdout file"));
    cmd.stderr(std::fs::File::create(&err).expect("stderr file"));
    let mut child = cmd.process_group(0).spawn().expect("run bash");
    let group = Group { pgid: child.id(), port };

    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stopped = group.stop(); // the server too, before anything is read or removed
    let _ = child.wait();
    let stdout = read(&out);
    let report = format!(
        "status {status:?}\n--- stdout\n{stdout}\n--- stderr (trace, last lines)\n{}\n--- serve.log (last lines)\n{}",
        tail(&read(&err), 60),
        tail(&read(&dir.path().join("serve.log")), 40)
    );
    (status.is_some_and(|s| s.success()), Walk { dir, stdout, report, stopped })
}

async fn scalar(url: &str, sql: &str, serial: &str) -> Option<i64> {
    use sqlx::Row;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("registry");
    let row = sqlx::query(sql).bind(serial).fetch_optional(&pool).await.expect("query");
    pool.close().await;
    row.map(|r| r.get(0))
}

fn walk_through(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let db = (backend == Backend::Postgres).then(|| rt.block_on(TestDb::new(Backend::Postgres)));
    let (ok, walk) = run(&section_code(), db.as_ref().map(|d| d.url.as_str()));
    let report = &walk.report;
    assert!(ok, "a command of the walk-through failed\n{report}");
    assert!(walk.stopped, "the background server was stopped\n{report}");

    // OCSP said good (step 12), then revoked (step 15), for the downloaded certificate.
    let answers: Vec<&str> = walk.stdout.lines().filter_map(|l| l.split_once("cert.pem: ")).map(|(_, a)| a).collect();
    assert_eq!(answers, ["good", "revoked"], "{report}");
    assert!(walk.stdout.contains("Reason: keyCompromise"), "{report}");

    // The reminder: one tick at notAfter - 45 days made it, and it is an .eml in the outbox.
    assert!(walk.stdout.contains("reminders: 1 at 45 days, 0 at 15 days"), "{report}");
    let serial = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(walk.dir.path().join("cert.pem"))
        .output()
        .expect("openssl");
    let serial = String::from_utf8_lossy(&serial.stdout).trim().trim_start_matches("serial=").to_ascii_lowercase();
    assert_eq!(serial.len(), 32, "{serial:?}\n{report}");
    let url = match &db {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", walk.home().join("qcert.db").display()),
    };
    let sql = "SELECT id FROM outbox WHERE dedupe_key = 'reminder-45:' || $1 AND sent_at IS NOT NULL";
    let id = rt.block_on(scalar(&url, sql, &serial)).unwrap_or_else(|| panic!("a sent 45-day reminder\n{report}"));
    let message_id = format!("Message-ID: <outbox-{id}.");
    let emls = std::fs::read_dir(walk.home().join("outbox")).expect("outbox").filter_map(Result::ok);
    let reminder = emls.filter(|e| read(&e.path()).contains(&message_id)).count();
    assert_eq!(reminder, 1, "the reminder's .eml file\n{report}");
    // The hotline's revocation (step 14) stood in the registry, and the holder's mail about it is queued.
    let sql = "SELECT COUNT(*) FROM revocations WHERE serial = $1 AND requested_by LIKE 'hotline%'";
    assert_eq!(rt.block_on(scalar(&url, sql, &serial)), Some(1), "{report}");
    let sql = "SELECT COUNT(*) FROM outbox WHERE dedupe_key = 'revoked:' || $1";
    assert_eq!(rt.block_on(scalar(&url, sql, &serial)), Some(1), "{report}");

    if let Some(db) = db {
        rt.block_on(db.cleanup());
    }
}

#[test]
fn the_readme_walk_through_runs_on_the_embedded_default() {
    walk_through(Backend::Sqlite);
}

#[test]
fn the_readme_walk_through_runs_with_the_registry_on_postgresql() {
    walk_through(Backend::Postgres);
}

/// The guard of the harness: a command that fails (here the RA approval,
/// refused because the document is not the order's) stops the walk with a
/// failure, and the background server is gone afterwards.
#[test]
fn a_failing_command_fails_the_walk_and_the_server_is_stopped() {
    let code = section_code();
    let approval = code.find("api/v1/ra/orders/$ID/approval").expect("the approval step");
    let (head, tail) = code.split_at(approval);
    let broken =
        format!("{head}{}", tail.replacen(r#"{"document_number":"RX123456"}"#, r#"{"document_number":"ZZ999999"}"#, 1));
    assert_ne!(broken, code);
    let (ok, walk) = run(&broken, None);
    let report = &walk.report;
    assert!(!ok, "the walk went on after a refused approval\n{report}");
    assert!(!walk.stdout.contains("cert.pem: good"), "stopped at the refusal\n{report}");
    assert!(walk.stdout.contains(r#""result":"applied""#), "the steps before it ran\n{report}");
    assert!(walk.stopped, "the background server was stopped\n{report}");
}
