#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code: a panic is the failure report
//! Support for qcert's end-to-end tests: real SoftHSM tokens, a database of
//! each test's own on SQLite and on PostgreSQL, and the outside judges
//! (openssl, pkilint). Nothing here mocks qcert's own code.

pub mod browser;
pub mod cloud;
pub mod desk;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use qcert_ca_core::desk::{DeskSettings, DocumentKey, RevocationDesk};
use qcert_ca_core::orders::Orders;
use qcert_ca_core::payment::WebhookKey;
use qcert_ca_core::vault::Vault;
use qcert_ca_core::{Ca, Clock, FixedClock, Policy, Registry};
use qcert_hsm::{softhsm, Hsm, HsmConfig};
use rand::RngCore;
use secrecy::SecretString;

pub use qcert_ca_core::store::Backend;

/// The PKCS#11 module tests use: `SOFTHSM2_MODULE` or Debian's path.
pub fn softhsm_module() -> PathBuf {
    std::env::var_os("SOFTHSM2_MODULE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(softhsm::DEFAULT_MODULE))
}

/// A fresh, initialised token of this test's own. SoftHSM reads its
/// configuration once per process, so all tokens of a test binary share one
/// temporary token directory.
pub fn softhsm_token() -> HsmConfig {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir for SoftHSM");
        let conf = softhsm::write_config(dir.path()).expect("write softhsm2.conf");
        std::env::set_var(softhsm::CONF_ENV, conf);
        dir
    });
    let label = format!("t-{}", random_hex(6));
    let pin = SecretString::new(random_hex(8));
    let module = softhsm_module();
    assert!(module.exists(), "SoftHSM2 is not installed at {} (run scripts/test)", module.display());
    qcert_hsm::init_token(&module, &label, &SecretString::new(random_hex(8)), &pin).expect("init SoftHSM token");
    HsmConfig { module, token_label: label, pin }
}

pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// The repository's policies/ folder.
pub fn policies_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The PostgreSQL server tests create their databases on: `QCERT_TEST_PG_URL`
/// (set by scripts/test), else the local server on 127.0.0.1:5432.
pub fn pg_admin_url() -> String {
    std::env::var("QCERT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of one test's own; dropped by [`TestDb::cleanup`] (or, if the
/// test panicked first, on drop).
#[derive(Debug)]
pub struct TestDb {
    pub registry: Registry,
    pub url: String,
    backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("qcert.db").display());
                let registry = Registry::open(&url, 4).await.expect("open SQLite registry");
                TestDb { registry, url, backend, _dir: Some(dir), pg_name: None }
            }
            Backend::Postgres => {
                let admin = pg_admin_url();
                let name = format!("qcert_t_{}", random_hex(8));
                let mut conn = connect_pg_admin(&admin).await;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database on {admin}: {e}"));
                let url = replace_db(&admin, &name);
                let registry = Registry::open(&url, 4).await.expect("open PostgreSQL registry");
                TestDb { registry, url, backend, _dir: None, pg_name: Some(name) }
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool and drop the PostgreSQL database.
    pub async fn cleanup(mut self) {
        self.registry.close().await;
        if let Some(name) = self.pg_name.take() {
            drop_pg(&name).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Reached only when a test panicked before cleanup().
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(drop_pg(&name));
                }
            })
            .join();
        }
    }
}

async fn connect_pg_admin(admin: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL is required for the store tests and is not reachable at {admin}: {e}. Run scripts/test, which finds or starts one.")
    })
}

async fn drop_pg(name: &str) {
    let mut conn = connect_pg_admin(&pg_admin_url()).await;
    if let Err(e) = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await {
        eprintln!("could not drop test database {name}: {e}");
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("QCERT_TEST_PG_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// Run `async fn $name(db: &TestDb)` once on SQLite and once on PostgreSQL,
/// each in a database of its own: `on_both_stores!(name);`.
#[macro_export]
macro_rules! on_both_stores {
    ($name:ident) => {
        /// The test body run on each store (a module beside the `async fn` of the same name).
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDb::new($crate::Backend::Sqlite).await;
                super::$name(&db).await;
                db.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::TestDb::new($crate::Backend::Postgres).await;
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

/// The public base URL test CAs write into certificates (pkilint wants a public name).
pub const TEST_BASE_URL: &str = "http://pki.qcert-demo.eu";

/// A CA made by the real key ceremony on a fresh token, on `db`, at `now`.
pub async fn new_ca(db: &TestDb, clock: Arc<FixedClock>) -> (Ca, HsmConfig) {
    new_ca_at(db, clock, TEST_BASE_URL).await
}

/// Same, with certificates pointing at `base_url` (a test server, for live fetching).
pub async fn new_ca_at(db: &TestDb, clock: Arc<FixedClock>, base_url: &str) -> (Ca, HsmConfig) {
    let config = softhsm_token();
    let hsm = Hsm::open(&config).expect("open HSM");
    let policy = Policy::load(&policies_dir(), base_url).expect("policies load");
    let clock: Arc<dyn Clock> = clock;
    let ca = Ca::init(hsm, db.registry.clone(), policy, clock).await.expect("key ceremony");
    (ca, config)
}

/// The revocation desk over `ca`, with a random document key and the
/// production Argon2 cost.
pub async fn new_desk(ca: &Ca) -> RevocationDesk {
    new_desk_with(ca, DeskSettings::default()).await
}

pub async fn new_desk_with(ca: &Ca, settings: DeskSettings) -> RevocationDesk {
    RevocationDesk::new(ca.clone(), DocumentKey::random(), settings).await.expect("revocation desk")
}

/// The HTTP API served in-process on 127.0.0.1, port 0.
#[derive(Debug)]
pub struct Server {
    pub base: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// The order workflow over `desk`: a random vault key, the webhook key
/// `webhook` (32 bytes), mail into the registry's outbox, links under `base`.
pub fn new_orders(desk: &RevocationDesk, webhook: [u8; 32], base: &str) -> Orders {
    let ca = desk.ca();
    let vault = test_vault();
    let notices =
        Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), ca.clock().clone()));
    Orders::new(desk.clone(), vault, WebhookKey::from_bytes(webhook), notices, base)
}

/// The vault of this test process (random, made once): orders, outbox
/// notices and dispatchers built by these helpers share it, as one
/// `orders.vault_key_file` is shared in production.
pub fn test_vault() -> Arc<Vault> {
    static VAULT: OnceLock<Arc<Vault>> = OnceLock::new();
    VAULT.get_or_init(|| Arc::new(Vault::random())).clone()
}

/// Serve the API of `desk` (orders with throwaway keys).
pub async fn serve_desk(desk: RevocationDesk) -> Server {
    serve_orders_with(|base| new_orders(&desk, [7u8; 32], base)).await
}

/// Serve the orders (and everything else) built for the server's base URL.
pub async fn serve_orders_with(make: impl FnOnce(&str) -> Orders) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    serve_orders_on(listener, make(&base)).await
}

/// Serve `orders` (and everything else) on a listener bound beforehand (so
/// that a CA's certificates can point at it, for live fetching).
pub async fn serve_orders_on(listener: tokio::net::TcpListener, orders: Orders) -> Server {
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = qcert_portal::http::router(qcert_portal::http::AppState::new(orders));
    // The server loop of `qcert serve` (ConnectInfo on every request, its limits).
    let limits = qcert_portal::server::Limits {
        header_timeout: std::time::Duration::from_secs(10),
        idle_timeout: std::time::Duration::from_secs(10),
        max_connections: 1024,
        max_per_client: 0,
    };
    let task = tokio::spawn(async move {
        qcert_portal::server::serve(listener, app, limits, std::future::pending()).await.expect("serve");
    });
    Server { base, task }
}

/// `now` for tests: a clock that stands still (tests move it explicitly),
/// set a minute before the wall clock so that outside judges (openssl,
/// pkilint, pyHanko), which read the real time, see valid, current data.
pub fn test_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(1)))
}

/// Key kinds for CSRs made by `openssl req`.
#[derive(Debug, Clone, Copy)]
pub enum CsrKey {
    P256,
    P384,
    Rsa(u32),
    Ed25519,
}

/// A DER CSR made by `openssl req` (subject deliberately unrelated to the holder).
pub fn openssl_csr(key: CsrKey) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let keyfile = dir.path().join("key.pem");
    let out = dir.path().join("req.der");
    let mut cmd = Command::new("openssl");
    cmd.args(["req", "-new", "-nodes", "-subj", "/CN=Mallory/O=Not From The CSR", "-outform", "DER"]);
    match key {
        CsrKey::P256 => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
        CsrKey::P384 => cmd.args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"]),
        CsrKey::Rsa(bits) => cmd.args(["-newkey".to_string(), format!("rsa:{bits}")]),
        CsrKey::Ed25519 => cmd.args(["-newkey", "ed25519"]),
    };
    cmd.arg("-keyout").arg(&keyfile).arg("-out").arg(&out);
    run_ok(&mut cmd);
    std::fs::read(&out).expect("read CSR")
}

/// Run a command; panic with its output unless it exits 0.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// `openssl cms -sign` of `content` with `cert` and its `key`, digest `md`
/// (e.g. `sha384`), DER. The files go to `dir`.
pub fn cms_sign(dir: &Path, content: &str, cert: &Path, key: &Path, md: &str) -> Vec<u8> {
    let input = dir.join(format!("cms-{}.json", random_hex(4)));
    let out = dir.join(format!("cms-{}.cms", random_hex(4)));
    std::fs::write(&input, content).expect("write CMS content");
    run_ok(
        Command::new("openssl")
            .args(["cms", "-sign", "-nodetach", "-binary", "-md", md, "-outform", "DER", "-signer"])
            .arg(cert)
            .arg("-inkey")
            .arg(key)
            .arg("-in")
            .arg(&input)
            .arg("-out")
            .arg(&out),
    );
    std::fs::read(out).expect("read CMS")
}

/// Everything `db` stores, to look for secrets in: every table's rows as
/// text (PostgreSQL), or the raw database files (SQLite, with its WAL).
pub async fn database_contents(db: &TestDb) -> Vec<u8> {
    match db.backend() {
        Backend::Sqlite => {
            let file = db.url.trim_start_matches("sqlite://").to_owned();
            let mut all = Vec::new();
            for suffix in ["", "-wal", "-shm"] {
                if let Ok(b) = std::fs::read(format!("{file}{suffix}")) {
                    all.extend(b);
                }
            }
            all
        }
        Backend::Postgres => {
            use sqlx::{Connection, Row};
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect to the test database");
            let tables: Vec<String> = sqlx::query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .expect("list tables")
                .iter()
                .map(|r| r.get::<String, _>(0))
                .collect();
            assert!(tables.len() >= 8, "{tables:?}");
            let mut all = Vec::new();
            for t in tables {
                for r in sqlx::query(&format!("SELECT t::text FROM {t} t")).fetch_all(&mut conn).await.expect("dump") {
                    all.extend(r.get::<String, _>(0).into_bytes());
                }
            }
            all
        }
    }
}

/// A tool from the test venv (scripts/test makes it); never skipped when missing.
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("QCERT_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let path = venv.join("bin").join(name);
    assert!(path.exists(), "{} is missing: run scripts/test, which installs the test tools", path.display());
    path
}

/// Write `der` as PEM to a file in `dir`.
pub fn write_pem(dir: &Path, name: &str, label: &str, der: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, qcert_ca_core::pem(label, der)).expect("write PEM");
    path
}

/// pkilint's verdict: Ok, or every finding at or above WARNING.
pub fn pkilint(tool: &str, args: &[&str], file: &Path) -> Result<(), String> {
    let out = Command::new(venv_tool(tool))
        .args(["lint"])
        .args(args)
        .args(["-s", "WARNING"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(text)
    }
}

/// RFC 4648 base32 (no padding), for the test's own TOTP.
pub fn base32_decode(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u64, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c.to_ascii_uppercase()).unwrap() as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 TOTP (SHA-1, 30 s, 6 digits), written here independently of qcert's.
pub fn totp(secret: &[u8], at: time::OffsetDateTime) -> String {
    use hmac::{Hmac, Mac};
    let step = (at.unix_timestamp() / 30) as u64;
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).unwrap();
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// A valid Romanian CNP (personal numeric code) for test holder number `n`
/// (0..1000): born 1 January 1985, the check digit computed here with the
/// weights 279146358279, apart from qcert's own check.
pub fn cnp(n: u32) -> String {
    let first12 = format!("185010140{:03}", n % 1000);
    let sum: u32 =
        first12.bytes().zip("279146358279".bytes()).map(|(d, w)| u32::from(d - b'0') * u32::from(w - b'0')).sum();
    format!("{first12}{}", if sum % 11 == 10 { 1 } else { sum % 11 })
}

/// Run one SQL statement on `db` behind the registry's back (tests that
/// tamper with stored rows, as an attacker with database access would).
pub async fn execute_sql(db: &TestDb, sql: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&db.url).await.expect("connect to the test database");
    sqlx::query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    conn.close().await.expect("close");
}

/// POST a payment-provider webhook event to `base`, signed under `key` at
/// `at` as the provider does (`qcert-signature`), with a JSON content type.
pub async fn post_signed_webhook(
    http: &reqwest::Client,
    base: &str,
    event: &serde_json::Value,
    key: [u8; 32],
    at: time::OffsetDateTime,
) -> reqwest::Response {
    let raw = serde_json::to_vec(event).expect("a JSON value serialises");
    let sig = qcert_ca_core::payment::sign_webhook(&WebhookKey::from_bytes(key), &raw, at);
    http.post(format!("{base}/api/v1/payments/webhook"))
        .header("qcert-signature", sig)
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("send the webhook")
}

/// A CLOUD holder whose certificate came through the order flow.
#[derive(Debug, Clone)]
pub struct CloudHolder {
    pub order_id: String,
    pub order_url: String,
    /// The authenticator's secret (raw bytes) and in base32.
    pub secret: Vec<u8>,
    pub secret_base32: String,
    pub serial: String,
}

/// Order a CLOUD certificate over HTTP at `base` as holder number `n`: the
/// form, the signed payment webhook (`webhook` key), the RA officer's
/// approval (`ra` token), the authenticator's enrolment and its first code
/// at `clock`'s now, which issues the certificate.
pub async fn issue_cloud_order(
    http: &reqwest::Client,
    base: &str,
    ra: &str,
    webhook: [u8; 32],
    clock: &FixedClock,
    n: u32,
) -> CloudHolder {
    let doc = format!("CS{:06}", n);
    let form = serde_json::json!({
        "product": "CLOUD", "years": 1, "given_name": "Ioana", "surname": "Popescu",
        "email": format!("holder{n}@example.ro"), "country": "RO", "national_id": cnp(n),
        "id_document_number": doc, "language": "en"
    });
    let r = http.post(format!("{base}/api/v1/orders")).json(&form).send().await.expect("order form");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let created: serde_json::Value = r.json().await.expect("json");
    let id = created["order_id"].as_str().expect("order_id").to_owned();
    let url = created["order_url"].as_str().expect("order_url").to_owned();
    let event = serde_json::json!({"event_id": format!("evt-{id}"), "order_id": id, "status": "paid"});
    let r = post_signed_webhook(http, base, &event, webhook, clock.now()).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = http
        .post(format!("{base}/api/v1/ra/orders/{id}/approval"))
        .bearer_auth(ra)
        .json(&serde_json::json!({"document_number": doc}))
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let r = http.post(format!("{url}/authenticator")).send().await.expect("enrol");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let e: serde_json::Value = r.json().await.expect("json");
    let secret_base32 = e["secret"].as_str().expect("secret").to_owned();
    let secret = base32_decode(&secret_base32);
    let r = http
        .post(format!("{url}/authorization"))
        .json(&serde_json::json!({"code": totp(&secret, clock.now())}))
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["state"], "issued", "{v}");
    let serial = v["serial"].as_str().expect("serial").to_owned();
    CloudHolder { order_id: id, order_url: url, secret, secret_base32, serial }
}

/// A seal or TSU key and certificate on `ca`'s token, made by the code
/// path of `qcert ceremony seal` / `qcert ceremony tsa` (P-384, 3 years);
/// the certificate's DER.
pub async fn service_certificate(
    ca: &Ca,
    kind: qcert_ca_core::ca::ServiceCert,
    key_label: &str,
    common_name: &str,
) -> Vec<u8> {
    let spec = qcert_ca_core::policy::CaKeySpec {
        common_name: common_name.into(),
        key_label: key_label.into(),
        key_algorithm: qcert_hsm::KeyAlgorithm::EcP384,
        validity: time::Duration::days(3 * 365),
    };
    qcert_ca_core::ceremony::service_certificate(ca.hsm(), ca.registry(), ca.policy(), &spec, kind, &**ca.clock())
        .await
        .expect("service certificate")
        .der
}

/// The seal and TSA ceremonies' key and certificate steps (the code
/// `qcert ceremony seal` / `tsa` runs) on `ca`'s token: what the
/// confirmation document's countersign needs.
pub async fn make_service_keys(ca: &Ca) {
    use qcert_ca_core::ca::ServiceCert;
    let tsu_label = ca.policy().tsa.as_ref().expect("[tsa] in ca.toml").key_label.clone();
    service_certificate(ca, ServiceCert::Seal, qcert_ca_core::confirmation::SEAL_KEY_LABEL, "qcert Test Seal").await;
    service_certificate(ca, ServiceCert::Tsa, &tsu_label, "qcert Test TSA").await;
}

/// poppler's `pdfsig` on `pdf` with an NSS database (made in `dir` on
/// first use) that trusts `root`: its output.
pub fn pdfsig(dir: &Path, root: &Path, pdf: &Path) -> String {
    let nss = dir.join("nss");
    if !nss.exists() {
        std::fs::create_dir_all(&nss).unwrap();
        let db = format!("sql:{}", nss.display());
        run_ok(Command::new("certutil").args(["-N", "--empty-password", "-d", &db]));
        run_ok(Command::new("certutil").args(["-A", "-n", "qcert-root", "-t", "CT,C,C", "-d", &db, "-i"]).arg(root));
    }
    let out = Command::new("pdfsig").arg("-nssdir").arg(format!("sql:{}", nss.display())).arg(pdf).output().unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
