//! A CLOUD holder's world for the remote-signing tests (`tests/csc.rs`) and
//! the confirmation document signed through the CSC API
//! (`tests/confirmation.rs`): a CA whose certificates point at a server on
//! port 0, the order flow with an RA officer, CLOUD certificates issued
//! with a signing password, and pyHanko's CSCSigner (`judges/csc_sign.py`)
//! driven against the server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use qcert_ca_core::orders::CodeLimits;
use qcert_ca_core::store::limits::Window;
use qcert_ca_core::{Clock, FixedClock};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::{
    issue_cloud_order, new_ca_at, new_desk, new_orders, serve_orders_on, totp, venv_tool, write_pem, CloudHolder,
    Server, TestDb,
};

/// The signing password every holder of these tests sets (the CSC login's first factor).
pub const SIGNING_PASSWORD: &str = "correct horse battery staple";

/// A CA, the order flow served on port 0 and an RA officer's token.
pub struct CloudWorld {
    pub ca: qcert_ca_core::Ca,
    pub clock: Arc<FixedClock>,
    pub server: Server,
    pub http: reqwest::Client,
    /// The RA officer's bearer token.
    pub ra: String,
    pub dir: tempfile::TempDir,
    webhook: [u8; 32],
}

impl std::fmt::Debug for CloudWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudWorld").field("base", &self.server.base).finish_non_exhaustive()
    }
}

/// A clock 5 minutes behind the wall clock: the tests step it forward (a
/// TOTP step is used once) and the outside judges, on the wall clock, must
/// still see every certificate, CRL and OCSP answer as current.
pub fn behind_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(5)))
}

/// What `judges/csc_sign.py` signs: its own one-page PDF (field
/// `Signature1`), or an existing field of a given file.
#[derive(Debug, Clone, Copy)]
pub enum CscDocument<'a> {
    Minimal,
    Field { input: &'a Path, field: &'a str },
}

impl CloudWorld {
    /// The world on `db`, payments signed with `webhook`; CRLs published
    /// (the judges fetch them live).
    pub async fn new(db: &TestDb, webhook: [u8; 32]) -> CloudWorld {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let clock = behind_clock();
        let (ca, _) = new_ca_at(db, clock.clone(), &base).await;
        ca.refresh_crls().await.expect("CRLs");
        let desk = new_desk(&ca).await;
        let limits = CodeLimits {
            lock_after: 5,
            per_order: Window { limit: 1000, window_secs: 900 },
            per_certificate: Window { limit: 1000, window_secs: 900 },
        };
        let orders = new_orders(&desk, webhook, &base).with_code_limits(limits);
        let server = serve_orders_on(listener, orders).await;
        let ops = qcert_ca_core::operators::Operators::new(ca.registry().clone(), ca.clock().clone());
        let ra = ops
            .add("test", "radu", qcert_ca_core::operators::Role::RaOfficer)
            .await
            .expect("RA officer")
            .expose()
            .to_owned();
        CloudWorld {
            ca,
            clock,
            server,
            http: reqwest::Client::new(),
            ra,
            dir: tempfile::tempdir().expect("temp dir"),
            webhook,
        }
    }

    /// A CLOUD certificate for holder `n`, with its signing password set.
    pub async fn holder(&self, n: u32) -> CloudHolder {
        let h = issue_cloud_order(&self.http, &self.server.base, &self.ra, self.webhook, &self.clock, n).await;
        // The first factor: a signing password, set with a fresh code.
        let code = self.next_code(&h);
        let r = self
            .http
            .put(format!("{}/signing-password", h.order_url))
            .json(&json!({"password": SIGNING_PASSWORD, "code": code}))
            .send()
            .await
            .expect("set the signing password");
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", r.text().await.unwrap_or_default());
        h
    }

    /// Step the clock to the next TOTP step and give its code.
    pub fn next_code(&self, h: &CloudHolder) -> String {
        self.clock.advance(time::Duration::seconds(30));
        totp(&h.secret, self.clock.now())
    }

    /// `auth/login` under `/csc/{v}` with HTTP Basic: the status and answer.
    pub async fn login(&self, v: &str, h: &CloudHolder, password: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/csc/{v}/auth/login", self.server.base))
            .basic_auth(&h.order_id, Some(password))
            .json(&json!({}))
            .send()
            .await
            .expect("login");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A bearer token of `h` (v1 login with the signing password).
    pub async fn token(&self, h: &CloudHolder) -> String {
        let (s, v) = self.login("v1", h, SIGNING_PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    /// pyHanko's CSCSigner (`judges/csc_sign.py`) signs `doc` as holder
    /// `h` through `/csc/{api}` into `out`, with the code of the service
    /// clock's next step: (signed, the judge's output).
    pub async fn csc_sign(&self, h: &CloudHolder, api: &str, doc: CscDocument<'_>, out: &Path) -> (bool, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("judges/csc_sign.py");
        self.clock.advance(time::Duration::seconds(30));
        let mut cmd = tokio::process::Command::new(venv_tool("python3"));
        cmd.arg(script);
        if let CscDocument::Field { input, field } = doc {
            cmd.arg("--input").arg(input).arg("--field").arg(field);
        }
        let out = cmd
            .arg(&self.server.base)
            .arg(api)
            .arg(&h.order_id)
            .arg(SIGNING_PASSWORD)
            .arg(&h.serial)
            .arg(&h.secret_base32)
            .arg(self.clock.now().unix_timestamp().to_string())
            .arg(out)
            .output()
            .await
            .expect("run csc_sign.py");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(matches!(out.status.code(), Some(0 | 1)), "csc_sign.py tooling failed: {text}");
        (out.status.success() && text.contains("SIGNED"), text)
    }

    /// Our root certificate as a PEM file of the test directory.
    pub fn root_pem(&self) -> PathBuf {
        write_pem(self.dir.path(), "root.pem", "CERTIFICATE", &self.ca.hierarchy().root)
    }
}
