//! Real headless Chromium for the browser tests: Debian's `/usr/bin/chromedriver`
//! driving `/usr/bin/chromium` through a `thirtyfour` WebDriver client, plus
//! the checks the pages must pass (axe-core, vendored), a CDP virtual
//! WebAuthn authenticator and screenshots saved as test artefacts.
//!
//! ```ignore
//! let b = Browser::start("desk_pages").await;          // chromedriver + chromium
//! b.goto(&format!("{}/desk/hotline", local(&server.base))).await;
//! assert_no_violations(&b.driver, "hotline").await;      // axe, WCAG 2.1 A/AA
//! b.screenshot("hotline-en").await;                      // target/browser-artefacts/desk_pages/hotline-en.png
//! b.quit().await;                                        // or just drop it (also on panic)
//! ```
//!
//! Pages are always browsed at `http://localhost:<port>` (WebAuthn needs a
//! DNS name, not an IP address); servers bind 127.0.0.1. [`local`] rewrites
//! a `http://127.0.0.1:<port>` base.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use thirtyfour::prelude::{ElementQueryable as _, ElementWaitable as _};
use thirtyfour::{ChromiumLikeCapabilities, DesiredCapabilities, WebDriver};

pub use thirtyfour;
pub use thirtyfour::prelude::{By, WebElement};

/// Debian's chromedriver and chromium (packages chromium-driver, chromium; installed by scripts/test).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// axe-core's browser bundle, vendored from its npm package (tests/vendor/axe-core/README.md).
pub const AXE_JS: &str = include_str!("../vendor/axe-core/axe.min.js");

/// The axe rule tags every page must pass.
pub const AXE_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// How a browser is started.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// `--window-size`, CSS pixels.
    pub width: u32,
    pub height: u32,
    /// The browser's Accept-Language (`intl.accept_languages`), e.g. "ro" or "en-GB,en".
    pub accept_language: String,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        BrowserOptions { width: 1280, height: 900, accept_language: "en-GB,en".into() }
    }
}

/// The chromedriver process, in a process group of its own (chromium and its
/// helpers are its children, in the same group). Dropping it kills the whole
/// group, so a failed assertion never leaves a browser behind or hangs.
#[derive(Debug)]
pub struct DriverProcess {
    child: Child,
    pub port: u16,
    killed: bool,
}

impl DriverProcess {
    /// Start chromedriver on a free port of 127.0.0.1 and wait until it answers `/status`.
    pub fn start(log: &Path) -> DriverProcess {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} and {CHROMIUM} are required (Debian packages chromium-driver and chromium; run scripts/test)"
        );
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn chromedriver");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("chromedriver exited with {status} (log: {})", log.display());
                    break;
                }
                if status_ready(port) {
                    return DriverProcess { child, port, killed: false };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last = format!("{last}; chromedriver on port {port} not ready");
            kill_group(&mut child);
        }
        panic!("chromedriver did not start: {last}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kill chromedriver's process group (once: afterwards the id may be reused).
    pub fn kill(&mut self) {
        if !std::mem::replace(&mut self.killed, true) {
            kill_group(&mut self.child);
        }
    }
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn kill_group(child: &mut Child) {
    // The whole group: chromedriver and every chromium process it started.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    // SIGKILL is delivered asynchronously: on a busy machine a chromium helper
    // may still be scheduled a moment after kill(1) returned. Wait (bounded)
    // until every member of the group is gone or a zombie, so "dropped" means
    // "no browser runs any more".
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && group_members(child.id()).iter().any(|(_, state)| !matches!(state, 'Z' | 'X')) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes of process group `group`, each with its state letter from `/proc/PID/stat`.
fn group_members(group: u32) -> Vec<(u32, char)> {
    let mut members = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp …: comm may hold spaces, so read after its ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next());
        let pgrp = fields.nth(1).and_then(|s| s.parse::<u32>().ok());
        if let (Some(state), Some(pgrp)) = (state, pgrp) {
            if pgrp == group {
                members.push((pid, state));
            }
        }
    }
    members
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// `GET /status` answers `"ready": true` (plain HTTP over std, no runtime needed).
fn status_ready(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut body = Vec::new();
    let _ = s.read_to_end(&mut body);
    String::from_utf8_lossy(&body).replace(' ', "").contains("\"ready\":true")
}

/// A headless Chromium session. Dropping it (also when the test panics)
/// kills chromedriver and the browser; [`Browser::quit`] ends the session
/// politely first.
#[derive(Debug)]
pub struct Browser {
    pub driver: WebDriver,
    /// target/browser-artefacts/<test>/
    pub artefacts: PathBuf,
    // Field order matters for Drop: the driver process is killed in
    // `Drop for Browser` before `driver` drops (its fallback DELETE /session
    // then fails at once instead of waiting), the profile is removed last.
    process: DriverProcess,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium with the default options; artefacts go to target/browser-artefacts/<test>/.
    pub async fn start(test: &str) -> Browser {
        Browser::start_with(test, BrowserOptions::default()).await
    }

    pub async fn start_with(test: &str, opts: BrowserOptions) -> Browser {
        let artefacts = artefacts_dir(test);
        std::fs::create_dir_all(&artefacts).expect("create the artefacts folder");
        let process = DriverProcess::start(&artefacts.join("chromedriver.log"));
        let profile = tempfile::tempdir().expect("temp dir for the chromium profile");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(), // the tests run as root
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--metrics-recording-only".to_owned(),
            "--password-store=basic".to_owned(),
            format!("--window-size={},{}", opts.width, opts.height),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--lang={}", opts.accept_language.split(',').next().unwrap_or("en")),
        ] {
            caps.add_arg(&arg).unwrap();
        }
        caps.add_experimental_option(
            "prefs",
            json!({
                "intl.accept_languages": opts.accept_language,
                "credentials_enable_service": false,
                "profile.password_manager_enabled": false,
            }),
        )
        .unwrap();
        let driver =
            WebDriver::builder(process.url(), caps).request_timeout(Duration::from_secs(60)).await.unwrap_or_else(
                |e| panic!("new chromium session (log: {}): {e}", artefacts.join("chromedriver.log").display()),
            );
        Browser { driver, artefacts, process, _profile: profile }
    }

    /// Open `url` and wait until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.driver.goto(url).await.unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The element matching a CSS selector, waiting for it (thirtyfour's
    /// default poller: up to 20 s) while a page loads.
    pub async fn css(&self, selector: &str) -> WebElement {
        match self.driver.query(By::Css(selector)).first().await {
            Ok(e) => e,
            Err(e) => {
                let shot = self.screenshot("failed").await;
                panic!(
                    "no element {selector:?} (screenshot {}): {e}\npage text: {}",
                    shot.display(),
                    self.body_text().await
                )
            }
        }
    }

    async fn body_text(&self) -> String {
        match self.driver.find(By::Css("body")).await {
            Ok(b) => b.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// The current page's visible text.
    pub async fn text(&self) -> String {
        let mut last = String::new();
        for _ in 0..50 {
            match self.css("body").await.text().await {
                Ok(t) => return t,
                // A page still loading: its old body went stale.
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("page text: {last}");
    }

    /// Click `el` (a submit button, a link) and wait until the next page replaced this one.
    pub async fn click_and_wait(&self, el: &WebElement) {
        let html = self.css("html").await;
        el.click().await.expect("click");
        html.wait_until().stale().await.expect("the next page loads");
    }

    /// Press Enter in `el` (sends its form) and wait until the next page replaced this one.
    pub async fn enter_and_wait(&self, el: &WebElement) {
        let html = self.css("html").await;
        el.send_keys(thirtyfour::Key::Enter).await.expect("Enter");
        html.wait_until().stale().await.expect("the next page loads");
    }

    /// A full-page PNG at target/browser-artefacts/<test>/<name>.png; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        screenshot_in(&self.driver, &self.artefacts, name).await
    }

    /// axe-core's WCAG 2.1 A/AA violations of the current page.
    pub async fn axe(&self) -> Vec<Violation> {
        axe(&self.driver).await
    }

    /// Panics with a readable list when axe finds any violation on the current page.
    pub async fn assert_accessible(&self, page: &str) {
        assert_no_violations(&self.driver, page).await;
    }

    /// A CDP virtual authenticator (see [`virtual_authenticator`]).
    pub async fn virtual_authenticator(&self) -> VirtualAuthenticator {
        virtual_authenticator(&self.driver).await
    }

    /// The port chromedriver listens on (127.0.0.1).
    pub fn driver_port(&self) -> u16 {
        self.process.port
    }

    /// Process ids of chromedriver's process group (chromedriver, chromium and its helpers).
    pub fn processes(&self) -> Vec<u32> {
        group_members(self.process.child.id()).into_iter().map(|(pid, _)| pid).collect()
    }

    /// End the WebDriver session, then stop chromedriver (Drop kills its process group).
    pub async fn quit(self) {
        let _ = self.driver.clone().quit().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.process.kill();
        // The session died with its driver: no DELETE /session from thirtyfour's
        // drop fallback (on a pooled connection of this runtime it would wait
        // for the request timeout).
        let _ = self.driver.clone().leak();
    }
}

/// target/browser-artefacts/<test>/ of this workspace (CARGO_TARGET_DIR honoured).
pub fn artefacts_dir(test: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("browser-artefacts").join(test)
}

/// `http://127.0.0.1:<port>…` as `http://localhost:<port>…` (browsers must use a name).
pub fn local(url: &str) -> String {
    url.replacen("://127.0.0.1:", "://localhost:", 1)
}

/// Save a full-page screenshot of `driver`'s page as
/// target/browser-artefacts/<test>/<name>.png.
pub async fn screenshot(driver: &WebDriver, test: &str, name: &str) -> PathBuf {
    screenshot_in(driver, &artefacts_dir(test), name).await
}

async fn screenshot_in(driver: &WebDriver, dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the artefacts folder");
    let metrics = driver.cdp().send_raw("Page.getLayoutMetrics", json!({})).await.expect("Page.getLayoutMetrics");
    let size = &metrics["cssContentSize"];
    let (w, h) = (size["width"].as_f64().unwrap_or(1280.0), size["height"].as_f64().unwrap_or(900.0));
    let shot = driver
        .cdp()
        .send_raw(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": w.max(1.0), "height": h.max(1.0), "scale": 1},
            }),
        )
        .await
        .expect("Page.captureScreenshot");
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("screenshot is base64");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    path
}

/// One axe-core violation: the rule, its impact and the elements it names.
#[derive(Debug, Clone)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub targets: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {} — at {}", self.id, self.impact, self.help, self.targets.join(", "))
    }
}

/// Run the vendored axe-core in the current page with the WCAG 2.1 A/AA
/// tags and return its violations.
pub async fn axe(driver: &WebDriver) -> Vec<Violation> {
    let loaded = driver
        .execute("return typeof window.axe === 'object'", Vec::new())
        .await
        .expect("check for axe")
        .json()
        .as_bool()
        .unwrap_or(false);
    if !loaded {
        driver.execute(format!("{AXE_JS}\n;return true;"), Vec::new()).await.expect("inject axe-core");
    }
    let ret = driver
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})\
               .then(r => done({ok: r.violations}), e => done({error: String(e)}));",
            vec![json!(AXE_TAGS)],
        )
        .await
        .expect("run axe-core");
    let v = ret.json();
    if let Some(e) = v.get("error") {
        panic!("axe-core failed: {e}");
    }
    v["ok"]
        .as_array()
        .expect("axe violations array")
        .iter()
        .map(|r| Violation {
            id: str_of(&r["id"]),
            impact: str_of(&r["impact"]),
            help: str_of(&r["help"]),
            targets: r["nodes"]
                .as_array()
                .map(|nodes| nodes.iter().map(|n| n["target"].to_string()).collect())
                .unwrap_or_default(),
        })
        .collect()
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_owned()
}

/// Panic, naming every rule and element, when the current page has any WCAG 2.1 A/AA violation.
pub async fn assert_no_violations(driver: &WebDriver, page: &str) {
    let found = axe(driver).await;
    let url = driver.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    assert!(
        found.is_empty(),
        "axe-core: {} violation(s) on {page} ({url}):\n  {}",
        found.len(),
        found.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    );
}

/// A virtual FIDO2 authenticator in the browser (CDP `WebAuthn` domain):
/// CTAP2, internal transport, resident keys, user verification that
/// succeeds, presence simulated. `navigator.credentials` in the page talks to it.
#[derive(Debug, Clone)]
pub struct VirtualAuthenticator {
    pub id: String,
    driver: WebDriver,
}

pub async fn virtual_authenticator(driver: &WebDriver) -> VirtualAuthenticator {
    driver.cdp().send_raw("WebAuthn.enable", json!({"enableUI": false})).await.expect("WebAuthn.enable");
    let r = driver
        .cdp()
        .send_raw(
            "WebAuthn.addVirtualAuthenticator",
            json!({"options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
                "automaticPresenceSimulation": true,
            }}),
        )
        .await
        .expect("WebAuthn.addVirtualAuthenticator");
    let id = r["authenticatorId"].as_str().expect("authenticatorId").to_owned();
    VirtualAuthenticator { id, driver: driver.clone() }
}

impl VirtualAuthenticator {
    /// The credentials it holds (CDP `WebAuthn.getCredentials`: credentialId, rpId, signCount, …).
    pub async fn credentials(&self) -> Vec<Value> {
        let r = self
            .driver
            .cdp()
            .send_raw("WebAuthn.getCredentials", json!({"authenticatorId": self.id}))
            .await
            .expect("WebAuthn.getCredentials");
        r["credentials"].as_array().cloned().unwrap_or_default()
    }

    /// From now on user verification succeeds (true) or fails (false).
    pub async fn set_user_verified(&self, verified: bool) {
        self.driver
            .cdp()
            .send_raw("WebAuthn.setUserVerified", json!({"authenticatorId": self.id, "isUserVerified": verified}))
            .await
            .expect("WebAuthn.setUserVerified");
    }

    /// Remove it (a lost key).
    pub async fn remove(self) {
        self.driver
            .cdp()
            .send_raw("WebAuthn.removeVirtualAuthenticator", json!({"authenticatorId": self.id}))
            .await
            .expect("WebAuthn.removeVirtualAuthenticator");
    }
}
