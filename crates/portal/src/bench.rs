//! `qcert bench issue`: end-to-end issuance (CSR in, stored signed
//! certificate out) against raw HSM P-384 signing, measured in the same run
//! on a throwaway SoftHSM token and a throwaway registry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use qcert_ca_core::{Ca, Clock, Holder, KeySource, Policy, Registry, SystemClock, ValidityYears};
use qcert_hsm::{DigestAlgorithm, Hsm, KeyAlgorithm, SignatureAlgorithm};
use rand::RngCore;
use secrecy::SecretString;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Time and peak memory to build and sign a CRL of N revoked entries.
    Crl {
        /// Entry counts to measure (repeat for several).
        #[arg(long = "entries", default_values_t = [100_000u32, 1_000_000u32])]
        entries: Vec<u32>,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// OCSP answers per second in-process: pre-signed (cached) and with a
    /// nonce (signed per request), next to raw HSM signing.
    Ocsp {
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Hotline revocations per second by concurrent agents (Argon2id check,
    /// revocation, CRL re-signed), next to raw Argon2id checks per second;
    /// and the time from the desk's answer to OCSP saying revoked.
    Hotline {
        /// Concurrent hotline agents.
        #[arg(long, default_value_t = 2)]
        agents: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// One notifier tick over N stored certificates with a share due for a
    /// reminder (vs a full scan of the table), with the reminder query's
    /// plan; then a burst of due renewals issued (vs raw HSM signatures).
    Notifier {
        #[arg(long, default_value_t = 1_000_000)]
        certificates: i64,
        /// Every Nth certificate is due (100 = 1%).
        #[arg(long, default_value_t = 100)]
        due_every: i64,
        /// Renewals due at once in the burst.
        #[arg(long, default_value_t = 10_000)]
        renewals: i64,
        /// `sqlite` or a PostgreSQL URL (throwaway databases are made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// One notifier tick whose retention purge erases the registration
    /// data of N stored certificates' expired share (index range scan, with
    /// the candidate query's plan), next to a plain tick on the same
    /// registry and a full scan of the table.
    Purge {
        #[arg(long, default_value_t = 1_000_000)]
        certificates: i64,
        /// Every Nth certificate is past its retention (100 = 1%).
        #[arg(long, default_value_t = 100)]
        due_every: i64,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// Median server time of the desk's hotline page (the form, and a
    /// refused call) and RA queue page with N waiting orders, next to the
    /// JSON API's handler work for the same data; both in process, without
    /// the session / bearer lookup.
    Desk {
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        #[arg(long, default_value_t = 30)]
        runs: usize,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// Remote signing (CSC signHash) per second with a CLOUD certificate
    /// issued through the order flow: authorize (TOTP code, SAD) + sign with
    /// 1 hash per SAD, and with 10 hashes per SAD, next to raw HSM signing.
    Csc {
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// RFC 3161 time-stamps per second in-process (request parsed, serial
    /// recorded in the registry, TSTInfo signed by the TSU key), next to raw
    /// HSM signing with the same key.
    Tsa {
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// Confirmation documents countersigned per second in-process (the PDF
    /// update, the CMS signed by the seal key, the signature-time-stamp
    /// recorded and signed by our TSA), next to raw HSM signing with the
    /// seal key.
    Confirm {
        #[arg(long, default_value_t = 2)]
        workers: usize,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// `sqlite` or a PostgreSQL URL (a throwaway database is made on it).
        #[arg(long, default_value = "sqlite")]
        database: String,
    },
    /// Issuance per second next to raw HSM signatures per second.
    Issue {
        /// Concurrent workers (threads for raw signing, tasks for issuance).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Seconds each measurement runs.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Registries to measure: `sqlite`, or a PostgreSQL URL whose server
        /// gets a throwaway database. Repeat for several.
        #[arg(long = "database", default_value = "sqlite")]
        databases: Vec<String>,
    },
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Issue { workers, seconds, databases } => issue(workers, seconds, databases),
        BenchCommand::Crl { entries, database } => crl(&entries, &database),
        BenchCommand::Ocsp { workers, seconds } => ocsp(workers, seconds),
        BenchCommand::Csc { seconds, database } => csc(seconds, &database),
        BenchCommand::Desk { orders, runs, database } => desk_pages(orders, runs.max(1), &database),
        BenchCommand::Tsa { workers, seconds, database } => tsa(workers.max(1), seconds, &database),
        BenchCommand::Confirm { workers, seconds, database } => confirm(workers.max(1), seconds, &database),
        BenchCommand::Hotline { agents, seconds, database } => hotline(agents.max(1), seconds, &database),
        BenchCommand::Notifier { certificates, due_every, renewals, database } => {
            notifier(certificates, due_every.max(1), renewals, &database)
        }
        BenchCommand::Purge { certificates, due_every, database } => purge(certificates, due_every.max(1), &database),
    }
}

/// A throwaway SoftHSM token directory, policies and tokens for one bench run.
struct Env {
    dir: tempfile::TempDir,
    module: std::path::PathBuf,
    policies: std::path::PathBuf,
}

impl Env {
    fn new() -> anyhow::Result<Env> {
        let dir = tempfile::tempdir()?;
        let conf = qcert_hsm::softhsm::write_config(&dir.path().join("softhsm"))?;
        std::env::set_var(qcert_hsm::softhsm::CONF_ENV, &conf);
        let policies = dir.path().join("policies");
        std::fs::create_dir_all(&policies)?;
        for (name, text) in crate::home::DEFAULT_POLICIES {
            std::fs::write(policies.join(name), text)?;
        }
        Ok(Env { dir, module: qcert_hsm::softhsm::DEFAULT_MODULE.into(), policies })
    }

    fn token(&self, label: &str) -> anyhow::Result<Hsm> {
        let pin = SecretString::new(random_hex(8));
        qcert_hsm::init_token(&self.module, label, &SecretString::new(random_hex(8)), &pin)?;
        Ok(Hsm::open(&qcert_hsm::HsmConfig { module: self.module.clone(), token_label: label.into(), pin })?)
    }

    async fn ca(&self, hsm: &Hsm, url: &str, connections: u32) -> anyhow::Result<Ca> {
        let registry = Registry::open(url, connections).await?;
        let policy = Policy::load(&self.policies, "http://pki.qcert-demo.eu")?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Ca::init(hsm.clone(), registry, policy, clock).await?)
    }
}

fn crl(entries: &[u32], database: &str) -> anyhow::Result<()> {
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!(
        "qcert bench crl: full CRL of the issuing CA, P-384 on SoftHSM2, registry {}",
        if database == "sqlite" { "sqlite" } else { "postgres" }
    );
    println!(
        "{:>10} {:>11} {:>10} {:>15} {:>12} {:>9} {:>15} {:>12}",
        "entries", "build+sign", "DER", "peak RSS +", "/ DER", "store", "peak RSS +", "/ DER"
    );
    for (i, n) in entries.iter().enumerate() {
        let hsm = env.token(&format!("crl{i}"))?;
        let (url, cleanup) = registry_url(database, env.dir.path(), i)?;
        runtime.block_on(async {
            let ca = env.ca(&hsm, &url, 4).await?;
            let issuing = issuing_serial(&ca)?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            ca.registry().fill_bench_revocations(&issuing, i64::from(*n), now).await?;
            let before = rss_kib("VmRSS")?;
            reset_peak_rss();
            let start = Instant::now();
            let prepared = ca.prepare_crl(qcert_ca_core::CrlScope::Issuing).await?;
            let build = start.elapsed();
            let build_mem = rss_kib("VmHWM")?.saturating_sub(before) * 1024;
            let der_len = prepared.record.der.len() as f64;
            anyhow::ensure!(
                prepared.record.entries == i64::from(*n),
                "CRL has {} entries, expected {n}",
                prepared.record.entries
            );
            let before = rss_kib("VmRSS")?;
            reset_peak_rss();
            let start = Instant::now();
            prepared.commit().await?;
            let store = start.elapsed();
            let store_mem = rss_kib("VmHWM")?.saturating_sub(before) * 1024;
            println!(
                "{n:>10} {:>10.2}s {:>8.1}MB {:>13.1}MB {:>11.2}x {:>8.2}s {:>13.1}MB {:>11.2}x",
                build.as_secs_f64(),
                der_len / 1e6,
                build_mem as f64 / 1e6,
                build_mem as f64 / der_len,
                store.as_secs_f64(),
                store_mem as f64 / 1e6,
                store_mem as f64 / der_len,
            );
            ca.registry().close().await;
            anyhow::Ok(())
        })?;
        drop_throwaway(&runtime, cleanup)?;
    }
    Ok(())
}

/// A field of /proc/self/status in KiB (Linux).
fn rss_kib(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.trim_start_matches(':').trim().strip_suffix("kB")?.trim().parse().ok())
        .with_context(|| format!("{field} not in /proc/self/status"))
}

/// Reset VmHWM to the current RSS (Linux: "5" > /proc/self/clear_refs).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn ocsp(workers: usize, seconds: u64) -> anyhow::Result<()> {
    let workers = workers.max(1);
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    let hsm = env.token("ocsp")?;
    let raw = raw_sign_rate(&hsm, workers, seconds)?;
    let url = format!("sqlite://{}", env.dir.path().join("ocsp.db").display());
    let csrs = make_csrs(env.dir.path(), 1)?;
    let (cached, nonced) = runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 4).await?;
        let holder = Holder::parse("Ana", "Bench", "ana.bench@example.ro", "RO", "1900101123457")?;
        let csr = csrs.first().context("no CSR")?.clone();
        let issued = ca.issue("qcp-n-qscd", &holder, ValidityYears::new(1)?, KeySource::Csr(csr)).await?;
        let (plain, with_nonce) = ocsp_requests(env.dir.path(), &ca, &issued.der)?;
        let plain = Arc::new(plain);
        let with_nonce = Arc::new(with_nonce);
        let cached = rate(workers, seconds, {
            let ca = ca.clone();
            move |_, _| signed_answer(ca.clone(), plain.clone())
        })
        .await?;
        let nonced = rate(workers, seconds, {
            let ca = ca.clone();
            move |_, _| signed_answer(ca.clone(), with_nonce.clone())
        })
        .await?;
        anyhow::Ok((cached, nonced))
    })?;
    println!("qcert bench ocsp: {workers} workers, {seconds} s per measurement, in-process (no HTTP), SoftHSM2 P-384");
    println!("{:<28} {:>12} {:>10}", "measurement", "per second", "vs raw");
    println!("{:<28} {raw:>12.1} {:>9.0}%", "raw HSM P-384 sign", 100.0);
    println!("{:<28} {nonced:>12.1} {:>9.0}%", "OCSP with nonce (signed)", 100.0 * nonced / raw);
    println!("{:<28} {cached:>12.1} {:>9.0}x", "OCSP without nonce (cached)", cached / raw);
    Ok(())
}

/// DER OCSP requests for `cert` made by openssl: without and with a nonce.
fn ocsp_requests(dir: &std::path::Path, ca: &Ca, cert: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let issuing = dir.join("issuing.pem");
    let ee = dir.join("ee.pem");
    std::fs::write(&issuing, qcert_ca_core::pem("CERTIFICATE", &ca.hierarchy().issuing))?;
    std::fs::write(&ee, qcert_ca_core::pem("CERTIFICATE", cert))?;
    let mut out = Vec::new();
    for (flag, file) in [("-no_nonce", "plain.der"), ("-nonce", "nonce.der")] {
        let path = dir.join(file);
        let status = std::process::Command::new("openssl")
            .args(["ocsp", flag, "-issuer"])
            .arg(&issuing)
            .arg("-cert")
            .arg(&ee)
            .arg("-reqout")
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "openssl ocsp -reqout failed");
        out.push(std::fs::read(path)?);
    }
    let nonce = out.pop().context("nonce request")?;
    let plain = out.pop().context("plain request")?;
    Ok((plain, nonce))
}

/// Calls per second of `op` from `workers` tasks for `seconds`; `op` gets
/// the worker's number and its call count.
async fn rate<F, Fut>(workers: usize, seconds: u64, op: F) -> anyhow::Result<f64>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (op, done, stop) = (op.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(w, i).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    // A cached answer never waits: let the timer run.
                    tokio::task::yield_now().await;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    for t in tasks {
        t.await??;
    }
    Ok(n as f64 / elapsed)
}

/// One OCSP answer, which must be a signed one.
async fn signed_answer(ca: Ca, request: Arc<Vec<u8>>) -> anyhow::Result<()> {
    let answer = ca.ocsp(&request).await;
    anyhow::ensure!(
        matches!(answer.outcome, qcert_ca_core::ocsp::Outcome::Signed { .. }),
        "OCSP answer was {:?}",
        answer.outcome
    );
    Ok(())
}

fn tsa(workers: usize, seconds: u64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::tsa::{Status, Tsa};
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    let hsm = env.token("tsa")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 0)?;
    let query = env.dir.path().join("query.tsq");
    std::fs::write(env.dir.path().join("data.txt"), b"bench")?;
    let status = std::process::Command::new("openssl")
        .args(["ts", "-query", "-sha384", "-cert", "-data"])
        .arg(env.dir.path().join("data.txt"))
        .arg("-out")
        .arg(&query)
        .status()?;
    anyhow::ensure!(status.success(), "openssl ts -query failed");
    let request = Arc::new(std::fs::read(&query)?);
    let measured = runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 8).await?;
        let policy = ca.policy().tsa.clone().context("ca.toml has no [tsa]")?;
        service_key(&ca, qcert_ca_core::ca::ServiceCert::Tsa, &policy.key_label, "qcert Bench Time-Stamping Unit")
            .await?;
        let tsa = Tsa::open(&ca).await?;
        let stamped = rate(workers, seconds, {
            let (tsa, request) = (tsa.clone(), request.clone());
            move |_, _| {
                let (tsa, request) = (tsa.clone(), request.clone());
                async move {
                    let answer = tsa.respond(&request).await;
                    anyhow::ensure!(answer.status == Status::Granted, "time-stamp refused: {:?}", answer.fail_info);
                    Ok(())
                }
            }
        })
        .await?;
        let recorded = ca.registry().time_stamp_count().await?;
        ca.registry().close().await;
        anyhow::Ok((stamped, recorded, policy.key_label))
    })?;
    let (stamped, recorded, label) = measured;
    let key = Arc::new(hsm.find_key(&label)?);
    let raw = raw_sign_rate_with(&hsm, key, workers, seconds)?;
    drop_throwaway(&runtime, cleanup)?;
    println!(
        "qcert bench tsa: {workers} workers, {seconds} s per measurement, in-process (no HTTP), SoftHSM2 P-384, registry {}",
        if database == "sqlite" { "SQLite" } else { "PostgreSQL" }
    );
    println!("{:<36} {:>12} {:>10}", "measurement", "per second", "vs raw");
    println!("{:<36} {raw:>12.1} {:>9.0}%", "raw HSM P-384 sign (TSU key)", 100.0);
    println!("{:<36} {stamped:>12.1} {:>9.0}%", "time-stamp (parse, record, sign)", 100.0 * stamped / raw);
    println!("tokens recorded in the registry: {recorded}");
    Ok(())
}

/// A seal or TSU key and certificate on `ca`'s token (the code path of
/// `qcert ceremony seal` / `tsa`).
async fn service_key(
    ca: &Ca,
    kind: qcert_ca_core::ca::ServiceCert,
    key_label: &str,
    common_name: &str,
) -> anyhow::Result<()> {
    let spec = qcert_ca_core::policy::CaKeySpec {
        common_name: common_name.into(),
        key_label: key_label.into(),
        key_algorithm: KeyAlgorithm::EcP384,
        validity: time::Duration::days(365),
    };
    qcert_ca_core::ceremony::service_certificate(ca.hsm(), ca.registry(), ca.policy(), &spec, kind, &**ca.clock())
        .await?;
    Ok(())
}

/// `qcert bench confirm`: the countersign of a confirmation document.
fn confirm(workers: usize, seconds: u64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::ca::ServiceCert;
    use qcert_ca_core::confirmation::{Seal, SEAL_KEY_LABEL};
    use qcert_ca_core::tsa::Tsa;
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    let hsm = env.token("confirm")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 0)?;
    let csr = make_csrs(env.dir.path(), 1)?.pop().context("no CSR")?;
    let (countersigned, size) = runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 8).await?;
        let tsu_label = ca.policy().tsa.clone().context("ca.toml has no [tsa]")?.key_label;
        service_key(&ca, ServiceCert::Tsa, &tsu_label, "qcert Bench Time-Stamping Unit").await?;
        service_key(&ca, ServiceCert::Seal, SEAL_KEY_LABEL, "qcert Bench Seal").await?;
        let holder = Holder::parse("Ana", "Bench", "ana.bench@example.ro", "RO", "1900101123457")?;
        let issued = ca.issue("qcp-n-qscd", &holder, ValidityYears::new(1)?, KeySource::Csr(csr)).await?;
        // The prefilled document stands in for the holder's signed upload:
        // the countersign's work does not depend on the holder's field.
        let pdf = Arc::new(qcert_ca_core::confirmation::prefilled(&issued.der)?.pdf);
        let (seal, tsa) = (Arc::new(Seal::load(&ca).await?), Tsa::open(&ca).await?);
        let at = time::OffsetDateTime::now_utc().unix_timestamp();
        let first = tsa.clone();
        let size =
            seal.countersign(&pdf, at, |d| async move { first.stamp(DigestAlgorithm::Sha384, &d).await }).await?.len();
        let rate = rate(workers, seconds, {
            let tsa = tsa.clone();
            move |_, _| {
                let (seal, tsa, pdf) = (seal.clone(), tsa.clone(), pdf.clone());
                async move {
                    let stamp = |d: Vec<u8>| async move { tsa.stamp(DigestAlgorithm::Sha384, &d).await };
                    seal.countersign(&pdf, at, stamp).await?;
                    Ok(())
                }
            }
        })
        .await?;
        ca.registry().close().await;
        anyhow::Ok((rate, size))
    })?;
    let key = Arc::new(hsm.find_key(SEAL_KEY_LABEL)?);
    let raw = raw_sign_rate_with(&hsm, key, workers, seconds)?;
    drop_throwaway(&runtime, cleanup)?;
    println!(
        "qcert bench confirm: {workers} workers, {seconds} s per measurement, in-process (no HTTP), SoftHSM2 P-384, registry {}",
        if database == "sqlite" { "SQLite" } else { "PostgreSQL" }
    );
    println!("{:<44} {:>12} {:>10}", "measurement", "per second", "vs raw");
    println!("{:<44} {raw:>12.1} {:>9.0}%", "raw HSM P-384 sign (seal key)", 100.0);
    println!(
        "{:<44} {countersigned:>12.1} {:>9.0}%",
        "countersign (PDF update, seal CMS, TSA token)",
        100.0 * countersigned / raw
    );
    println!("confirmare.pdf size: {size} bytes (two HSM signatures per countersign: seal and TSA)");
    Ok(())
}

fn issue(workers: usize, seconds: u64, databases: Vec<String>) -> anyhow::Result<()> {
    let workers = workers.max(1);
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    let csrs = make_csrs(env.dir.path(), 8)?;
    println!("qcert bench issue: {workers} workers, {seconds} s per measurement, SoftHSM2 P-384");
    println!("{:<10} {:>14} {:>16} {:>14} {:>8}", "registry", "raw sign/s", "CSR verify/s", "issuance/s", "ratio");
    for (i, db) in databases.iter().enumerate() {
        let hsm = env.token(&format!("bench{i}"))?;
        let raw = raw_sign_rate(&hsm, workers, seconds)?;
        let verify = csr_verify_rate(&env.policies, &csrs, workers, seconds)?;
        let (url, cleanup) = registry_url(db, env.dir.path(), i)?;
        let issued = runtime.block_on(issuance_rate(&env, &hsm, &url, &csrs, workers, seconds))?;
        drop_throwaway(&runtime, cleanup)?;
        let name = if db == "sqlite" { "sqlite" } else { "postgres" };
        println!("{name:<10} {raw:>14.1} {verify:>16.1} {issued:>14.1} {:>7.0}%", 100.0 * issued / raw);
    }
    Ok(())
}

fn hotline(agents: usize, seconds: u64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::desk::{DeskSettings, DocumentKey, DocumentNumber, RevocationDesk, RevocationPassword};
    use qcert_ca_core::operators::{Operator, Role};
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(agents).enable_all().build()?;
    let hsm = env.token("hotline")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 0)?;
    let csrs = make_csrs(env.dir.path(), 8)?;
    let settings = DeskSettings { agent_attempts_per_minute: u32::MAX, ..DeskSettings::default() };
    println!(
        "qcert bench hotline: {agents} agents, {seconds} s, Argon2id m={} KiB t={}, registry {}",
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        if database == "sqlite" { "sqlite" } else { "postgres" }
    );
    runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 8).await?;
        let desk = RevocationDesk::new(ca.clone(), DocumentKey::random(), settings).await?;
        let holder = Holder::parse("Bench", "Holder", "bench@example.eu", "RO", "1900101123457")?;
        // Enough holders for the run: a check costs 20-100 ms per agent.
        let n = usize::try_from(seconds).unwrap_or(5) * agents * 60 + 20;
        let mut holders = Vec::with_capacity(n);
        for i in 0..n {
            let doc = DocumentNumber::parse(&format!("BN{i:08}"))?;
            let csr = csrs.get(i % csrs.len()).context("csr")?.clone();
            let (issued, pw) =
                desk.issue("qcp-n-qscd", &holder, ValidityYears::new(1)?, KeySource::Csr(csr), &doc).await?;
            holders.push((doc, pw, issued));
        }
        // Baseline: the Argon2id checks alone, same concurrency.
        let phc = desk_hash_sample(&desk).await?;
        let pw = RevocationPassword::parse("12345678")?;
        let start = Instant::now();
        let one = {
            let (phc, pw) = (phc.clone(), pw.clone());
            tokio::task::spawn_blocking(move || qcert_ca_core::desk::check_password(&phc, &pw)).await?
        };
        let single_ms = start.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(one, "sample password must verify");
        let raw = rate(agents, seconds, move |_, _| {
            let (phc, pw) = (phc.clone(), pw.clone());
            async move {
                tokio::task::spawn_blocking(move || qcert_ca_core::desk::check_password(&phc, &pw)).await?;
                Ok(())
            }
        })
        .await?;

        // The latency sample comes first, from the end of the list.
        let latency_samples = 20.min(holders.len() / 2);
        let mut latencies = Vec::new();
        let agent = Operator { name: "bench-agent".into(), role: Role::HotlineAgent };
        for (doc, pw, issued) in holders.split_off(holders.len() - latency_samples) {
            let (plain, _) = ocsp_requests(env.dir.path(), &ca, &issued.der)?;
            anyhow::ensure!(ocsp_status(&ca, &plain).await? == "good", "fresh certificate must be good");
            desk.hotline_revoke(&agent, &doc, &pw, qcert_ca_core::Reason::KeyCompromise).await?;
            let answered = Instant::now();
            loop {
                if ocsp_status(&ca, &plain).await? == "revoked" {
                    break;
                }
                anyhow::ensure!(answered.elapsed() < Duration::from_secs(30), "OCSP never said revoked");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            latencies.push(answered.elapsed().as_secs_f64() * 1e3);
        }
        latencies.sort_by(f64::total_cmp);

        let queue = Arc::new(std::sync::Mutex::new(holders));
        let revoked = rate(agents, seconds, move |w, _| {
            let (desk, queue) = (desk.clone(), queue.clone());
            async move {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("queue poisoned"))?.pop();
                let (doc, pw, _) = next.context("ran out of prepared holders")?;
                let agent = Operator { name: format!("agent-{w}"), role: Role::HotlineAgent };
                let done = desk.hotline_revoke(&agent, &doc, &pw, qcert_ca_core::Reason::KeyCompromise).await?;
                anyhow::ensure!(done.len() == 1, "one certificate per holder");
                Ok(())
            }
        })
        .await?;
        println!("{:>22} {:>22} {:>18} {:>8}", "Argon2id check (1)", "Argon2id checks/s", "revocations/s", "ratio");
        println!("{:>19.1} ms {raw:>22.1} {revoked:>18.1} {:>7.0}%", single_ms, 100.0 * revoked / raw);
        let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
        println!(
            "desk answer -> OCSP revoked (in-process, cached good answer before): median {:.2} ms, max {:.2} ms over {} revocations",
            pick(0.5),
            pick(1.0),
            latencies.len()
        );
        ca.registry().close().await;
        anyhow::Ok(())
    })?;
    drop_throwaway(&runtime, cleanup)?;
    Ok(())
}

fn notifier(certificates: i64, due_every: i64, renewals: i64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::desk::{DeskSettings, DocumentKey, RevocationDesk};
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let csr = make_csrs(env.dir.path(), 1)?.pop().context("csr")?;
    let name = if database == "sqlite" { "sqlite" } else { "postgres" };
    println!("qcert bench notifier: registry {name}, SoftHSM2 P-384");
    let make_orders = |ca: Ca| async move {
        let desk = RevocationDesk::new(ca.clone(), DocumentKey::random(), DeskSettings::default()).await?;
        let vault = Arc::new(qcert_ca_core::vault::Vault::random());
        let notices =
            Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), ca.clock().clone()));
        anyhow::Ok(qcert_ca_core::orders::Orders::new(
            desk,
            vault,
            qcert_ca_core::payment::WebhookKey::random(),
            notices,
            "http://pki.qcert-demo.eu",
        ))
    };

    // 1. One tick over `certificates`, every `due_every`-th due for its 45-day reminder.
    let hsm = env.token("notifier1")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 1)?;
    runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 4).await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        ca.registry().fill_bench_expiring(&issuing_serial(&ca)?, certificates, due_every, now + 20 * 86_400, now, None).await?;
        println!("reminder query plan:\n  {}", ca.registry().explain_reminders(now).await?.replace('\n', "\n  "));
        let start = Instant::now();
        let scanned = ca.registry().bench_full_scan().await?;
        let scan = start.elapsed().as_secs_f64();
        let notifier = qcert_notifier::Notifier::new(make_orders(ca.clone()).await?);
        let start = Instant::now();
        let report = notifier.tick(time::OffsetDateTime::from_unix_timestamp(now)?).await?;
        let tick = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let again = notifier.tick(time::OffsetDateTime::from_unix_timestamp(now)?).await?;
        let idle = start.elapsed().as_secs_f64();
        anyhow::ensure!(again.reminders_45 == 0, "a second tick must send nothing");
        println!(
            "{:>12} {:>8} {:>10} {:>12} {:>14} {:>14} {:>9}",
            "certificates", "due", "reminders", "tick", "tick (idle)", "full scan", "tick/scan"
        );
        println!(
            "{certificates:>12} {:>8} {:>10} {tick:>11.3}s {idle:>13.4}s {scan:>13.3}s {:>8.2}x   (scan counted {scanned})",
            certificates / due_every,
            report.reminders_45,
            tick / scan
        );
        ca.registry().close().await;
        anyhow::Ok(())
    })?;
    drop_throwaway(&runtime, cleanup)?;

    // 2. A burst of `renewals` paid renewals due at once.
    if renewals > 0 {
        let hsm = env.token("notifier2")?;
        let raw = raw_sign_rate(&hsm, 1, 3)?;
        let (url, cleanup) = registry_url(database, env.dir.path(), 2)?;
        runtime.block_on(async {
            let ca = env.ca(&hsm, &url, 4).await?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            ca.registry()
                .fill_bench_expiring(&issuing_serial(&ca)?, renewals, 1, now + 3 * 86_400 - 60, now, Some(&csr))
                .await?;
            let notifier = qcert_notifier::Notifier::new(make_orders(ca.clone()).await?);
            let start = Instant::now();
            let report = notifier.tick(time::OffsetDateTime::from_unix_timestamp(now)?).await?;
            let secs = start.elapsed().as_secs_f64();
            anyhow::ensure!(
                i64::from(report.renewals.issued) == renewals,
                "issued {} of {renewals} renewals ({report:?})",
                report.renewals.issued
            );
            let rate = f64::from(report.renewals.issued) / secs;
            println!("{:>10} {:>12} {:>14} {:>16} {:>8}", "renewals", "burst", "renewals/s", "raw sign/s (1)", "ratio");
            println!("{renewals:>10} {secs:>11.2}s {rate:>14.1} {raw:>16.1} {:>7.0}%", 100.0 * rate / raw);
            ca.registry().close().await;
            anyhow::Ok(())
        })?;
        drop_throwaway(&runtime, cleanup)?;
    }
    Ok(())
}

fn purge(certificates: i64, due_every: i64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::desk::{DeskSettings, DocumentKey, RevocationDesk};
    use qcert_ca_core::retention::RetentionPolicy;
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let name = if database == "sqlite" { "sqlite" } else { "postgres" };
    println!("qcert bench purge: registry {name}");
    let hsm = env.token("purge")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 1)?;
    runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 4).await?;
        let policy = RetentionPolicy::default();
        let now = time::OffsetDateTime::now_utc().replace_nanosecond(0)?;
        // Due: ceased to be valid a day more than the retention ago; the
        // others are valid for 60 days and more (no reminder due either).
        let due_from = policy.registration_cutoff(now) - 86_400;
        let later_from = now.unix_timestamp() + 60 * 86_400;
        let start = Instant::now();
        ca.registry().fill_bench_retention(&issuing_serial(&ca)?, certificates, due_every, due_from, later_from).await?;
        println!("filled {certificates} certificates in {:.1}s", start.elapsed().as_secs_f64());
        let plan = ca.registry().explain_retention(policy.registration_cutoff(now), policy.batch).await?;
        println!("registration purge query plan:\n  {}", plan.replace('\n', "\n  "));
        anyhow::ensure!(plan.contains("certificates_retention"), "the purge's query does not use its index");
        let desk = RevocationDesk::new(ca.clone(), DocumentKey::random(), DeskSettings::default()).await?;
        let vault = Arc::new(qcert_ca_core::vault::Vault::random());
        let notices =
            Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), ca.clock().clone()));
        let orders = qcert_ca_core::orders::Orders::new(
            desk,
            vault,
            qcert_ca_core::payment::WebhookKey::random(),
            notices,
            "http://pki.qcert-demo.eu",
        )
        .with_retention(policy);
        let notifier = qcert_notifier::Notifier::new(orders);
        let start = Instant::now();
        let scanned = ca.registry().bench_full_scan().await?;
        let scan = start.elapsed().as_secs_f64();
        // The plain tick: two days earlier nothing is due yet.
        let start = Instant::now();
        let plain = notifier.tick(now - time::Duration::days(2)).await?;
        let plain_secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(plain.retention.registration_erased == 0, "nothing is due two days early");
        let start = Instant::now();
        let report = notifier.tick(now).await?;
        let purge_secs = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let idle = notifier.tick(now).await?;
        let idle_secs = start.elapsed().as_secs_f64();
        let due = certificates / due_every;
        println!(
            "{:>12} {:>8} {:>8} {:>12} {:>14} {:>14} {:>12} {:>11}",
            "certificates", "due", "erased", "plain tick", "purge tick", "next tick", "full scan", "purge/plain"
        );
        println!(
            "{certificates:>12} {due:>8} {:>8} {plain_secs:>11.3}s {purge_secs:>13.3}s {idle_secs:>13.3}s {scan:>11.3}s {:>10.1}x   (scan counted {scanned}; next tick erased {})",
            report.retention.registration_erased,
            purge_secs / plain_secs.max(1e-9),
            idle.retention.registration_erased,
        );
        let left = due - i64::try_from(report.retention.registration_erased + idle.retention.registration_erased)?;
        anyhow::ensure!(left == 0 || i64::from(policy.batches_per_tick) * policy.batch < due, "{left} due certificates left");
        anyhow::ensure!(qcert_ca_core::audit::verify(ca.registry()).await?.is_ok(), "the audit chain must still verify");
        ca.registry().close().await;
        anyhow::Ok(())
    })?;
    drop_throwaway(&runtime, cleanup)?;
    Ok(())
}

/// A stored revocation password hash (for the Argon2id baseline).
async fn desk_hash_sample(desk: &qcert_ca_core::desk::RevocationDesk) -> anyhow::Result<String> {
    let pw = qcert_ca_core::desk::RevocationPassword::parse("12345678")?;
    Ok(desk.hash_password(&pw).await?)
}

/// `good`, `revoked` or `unknown` as the responder answers `request`.
async fn ocsp_status(ca: &Ca, request: &[u8]) -> anyhow::Result<&'static str> {
    match ca.ocsp(request).await.outcome {
        qcert_ca_core::ocsp::Outcome::Signed { status, .. } => Ok(status),
        other => anyhow::bail!("OCSP answer was {other:?}"),
    }
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn make_csrs(dir: &std::path::Path, n: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..n)
        .map(|i| {
            let key = dir.join(format!("k{i}.pem"));
            let out = dir.join(format!("r{i}.der"));
            let status = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-nodes",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-384",
                    "-sha384",
                    "-subj",
                    "/CN=bench",
                    "-outform",
                    "DER",
                    "-keyout",
                ])
                .arg(&key)
                .arg("-out")
                .arg(&out)
                .stderr(std::process::Stdio::null())
                .status()
                .context("cannot run openssl to make benchmark CSRs")?;
            anyhow::ensure!(status.success(), "openssl req failed");
            Ok(std::fs::read(&out)?)
        })
        .collect()
}

/// Baseline: P-384 signatures over a certificate-sized message, `workers` threads.
fn raw_sign_rate(hsm: &Hsm, workers: usize, seconds: u64) -> anyhow::Result<f64> {
    let key = Arc::new(hsm.generate_key("bench-raw", KeyAlgorithm::EcP384)?);
    raw_sign_rate_with(hsm, key, workers, seconds)
}

/// The same with an existing key.
fn raw_sign_rate_with(hsm: &Hsm, key: Arc<qcert_hsm::KeyRef>, workers: usize, seconds: u64) -> anyhow::Result<f64> {
    let message = vec![0x5a; 900];
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (hsm, key, done, message) = (hsm.clone(), key.clone(), done.clone(), message.clone());
                s.spawn(move || -> anyhow::Result<()> {
                    while Instant::now() < until {
                        hsm.sign(&key, SignatureAlgorithm::EcdsaSha384, &message)?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("signing thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Second baseline: parsing and verifying the benchmark CSRs (RustCrypto), `workers` threads.
fn csr_verify_rate(policies: &std::path::Path, csrs: &[Vec<u8>], workers: usize, seconds: u64) -> anyhow::Result<f64> {
    let policy = Policy::load(policies, "http://pki.qcert-demo.eu")?;
    let profile = policy.profile("qcp-n-qscd")?;
    let done = AtomicU64::new(0);
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let done = &done;
                s.spawn(move || -> anyhow::Result<()> {
                    let mut i = w;
                    while Instant::now() < until {
                        let csr = csrs.get(i % csrs.len()).context("no CSRs")?;
                        let req = qcert_ca_core::csr::decode(csr)?;
                        qcert_ca_core::csr::verify(&req, profile)?;
                        done.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("verify thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// The issuing CA's serial, hex (what the registry stores as `issuer_serial`).
fn issuing_serial(ca: &Ca) -> anyhow::Result<String> {
    let cert = <x509_cert::Certificate as der::Decode>::from_der(&ca.hierarchy().issuing)?;
    Ok(qcert_ca_core::ca::serial_hex(&cert.tbs_certificate.serial_number))
}

/// Drop the throwaway PostgreSQL database [`registry_url`] made, if any.
fn drop_throwaway(runtime: &tokio::runtime::Runtime, cleanup: Option<DropDb>) -> anyhow::Result<()> {
    if let Some(drop_db) = cleanup {
        runtime.block_on(drop_db)?;
    }
    Ok(())
}

type DropDb = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>>>>;

fn registry_url(db: &str, dir: &std::path::Path, i: usize) -> anyhow::Result<(String, Option<DropDb>)> {
    if db == "sqlite" {
        return Ok((format!("sqlite://{}", dir.join(format!("bench{i}.db")).display()), None));
    }
    let mut admin = url::Url::parse(db).context("--database: not sqlite and not a URL")?;
    let name = format!("qcert_bench_{}", random_hex(6));
    let admin_str = admin.to_string();
    admin.set_path(&format!("/{name}"));
    let create = {
        let (admin_str, name) = (admin_str.clone(), name.clone());
        async move {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin_str).await?;
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
            anyhow::Ok(())
        }
    };
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(create)?;
    let drop_db: DropDb = Box::pin(async move {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&admin_str).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await?;
        Ok(())
    });
    Ok((admin.to_string(), Some(drop_db)))
}

async fn issuance_rate(
    env: &Env,
    hsm: &Hsm,
    url: &str,
    csrs: &[Vec<u8>],
    workers: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let ca = env.ca(hsm, url, (workers as u32) * 2).await?;
    let registry = ca.registry().clone();
    let holder = Holder::parse("Ana", "Bench", "ana.bench@example.ro", "RO", "1900101123457")?;
    let years = ValidityYears::new(1)?;
    // Warm up: one issuance outside the timing.
    let first = csrs.first().context("no CSRs")?.clone();
    ca.issue("qcp-n-qscd", &holder, years, KeySource::Csr(first)).await?;
    let csrs = Arc::new(csrs.to_vec());
    let issued = rate(workers, seconds, {
        let ca = ca.clone();
        move |w, i| {
            let (ca, holder, csrs) = (ca.clone(), holder.clone(), csrs.clone());
            async move {
                let csr = csrs.get((w + i) % csrs.len()).context("no CSRs")?.clone();
                ca.issue("qcp-n-qscd", &holder, years, KeySource::Csr(csr)).await?;
                Ok(())
            }
        }
    })
    .await?;
    registry.close().await;
    Ok(issued)
}

/// `qcert bench csc`: one holder, one worker (a TOTP step authorizes once:
/// the bench's own fixed clock steps 30 s per authorization, as a holder
/// typing codes would), so the figures are per holder session.
fn csc(seconds: u64, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::csc::{RemoteSettings, RemoteSigning};
    use qcert_ca_core::desk::{DeskSettings, DocumentKey, DocumentNumber, RevocationDesk};
    use qcert_ca_core::operators::{Operator, Role};
    use qcert_ca_core::orders::{CodeLimits, OrderForm, Orders};
    use qcert_ca_core::store::limits::Window;
    use qcert_ca_core::totp::TotpSecret;
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let hsm = env.token("csc")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 0)?;
    println!(
        "qcert bench csc: 1 holder, {seconds} s per measurement, registry {}",
        if database == "sqlite" { "sqlite" } else { "postgres" }
    );
    let raw = raw_sign_rate(&hsm, 1, seconds)?;
    runtime.block_on(async {
        let clock = Arc::new(qcert_ca_core::FixedClock::new(time::OffsetDateTime::now_utc()));
        let registry = Registry::open(&url, 4).await?;
        let policy = Policy::load(&env.policies, "http://pki.qcert-demo.eu")?;
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let ca = Ca::init(hsm.clone(), registry, policy, dyn_clock.clone()).await?;
        let desk = RevocationDesk::new(ca.clone(), DocumentKey::random(), DeskSettings::default()).await?;
        let vault = Arc::new(qcert_ca_core::vault::Vault::random());
        let notices = Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), dyn_clock));
        let webhook = [9u8; 32];
        let unlimited = Window { limit: u32::MAX, window_secs: 1 };
        let orders = Orders::new(
            desk,
            vault,
            qcert_ca_core::payment::WebhookKey::from_bytes(webhook),
            notices,
            "http://pki.qcert-demo.eu",
        )
        .with_code_limits(CodeLimits { lock_after: 5, per_order: unlimited, per_certificate: unlimited });
        // The order flow: form, payment, approval, authenticator, first code.
        let form = OrderForm {
            product: "CLOUD".into(),
            years: 1,
            given_name: "Bench".into(),
            surname: "Holder".into(),
            email: "bench@example.eu".into(),
            country: "RO".into(),
            national_id: "1900101123457".into(),
            id_document_number: "BN00000001".into(),
            publish: false,
            language: None,
            phone: None,
            document_type: None,
        };
        let created = orders.create(&form, None).await?;
        let (id, link) = (created.order.id.clone(), created.link.clone());
        let event =
            serde_json::to_vec(&serde_json::json!({"event_id": "evt-bench", "order_id": id, "status": "paid"}))?;
        let key = qcert_ca_core::payment::WebhookKey::from_bytes(webhook);
        orders.payment_webhook(&qcert_ca_core::payment::sign_webhook(&key, &event, clock.now()), &event).await?;
        let officer = Operator { name: "bench-ra".into(), role: Role::RaOfficer };
        orders.approve(&officer, &id, &DocumentNumber::parse("BN00000001")?).await?;
        let (_, base32) = orders.enrol_authenticator(&link).await?;
        let secret = TotpSecret::from_bytes(&base32_decode(&base32))?;
        let code = |s: &TotpSecret, at| s.code_at(at).map(|c| c.to_string()).context("TOTP code");
        orders.authorize(&link, &code(&secret, clock.now())?).await?;
        let order = ca.registry().order(&id).await?.context("order")?;
        let serial = order.serial.clone().context("issued serial")?;
        let csc = RemoteSigning::with_settings(
            orders,
            RemoteSettings { session_ttl_secs: i64::from(u32::MAX), ..RemoteSettings::default() },
        );
        clock.advance(time::Duration::seconds(30));
        csc.set_password(&link, "bench signing password", &code(&secret, clock.now())?).await?;
        let (token, _) = csc.login(&id, "bench signing password").await?;
        let holder = csc.session(&token).await?;

        let run = CscRun { csc: &csc, holder: &holder, serial: &serial, secret: &secret, clock: &clock, seconds };
        let one = run.rate(1, 0).await?;
        let ten = run.rate(10, 1 << 32).await?;
        println!(
            "{:>22} {:>26} {:>8} {:>26} {:>8}",
            "raw HSM signatures/s", "signHash 1 hash/SAD sig/s", "ratio", "signHash 10/SAD sig/s", "ratio"
        );
        println!("{raw:>22.1} {one:>26.1} {:>7.0}% {ten:>26.1} {:>7.0}%", 100.0 * one / raw, 100.0 * ten / raw);
        ca.registry().close().await;
        anyhow::Ok(())
    })?;
    drop_throwaway(&runtime, cleanup)?;
    Ok(())
}

/// One holder's session for `qcert bench csc`.
struct CscRun<'a> {
    csc: &'a qcert_ca_core::csc::RemoteSigning,
    holder: &'a qcert_ca_core::store::orders::OrderRow,
    serial: &'a str,
    secret: &'a qcert_ca_core::totp::TotpSecret,
    clock: &'a qcert_ca_core::FixedClock,
    seconds: u64,
}

impl CscRun<'_> {
    /// Signatures per second: authorize `per_sad` fresh hashes with the
    /// next TOTP step's code, then signHash them all.
    async fn rate(&self, per_sad: usize, first: u64) -> anyhow::Result<f64> {
        use qcert_ca_core::csc::{AuthorizeRequest, SignRequest, SHA384_OID};
        use sha2::Digest;
        let mut counter = first;
        let mut signed = 0usize;
        let start = Instant::now();
        let until = start + Duration::from_secs(self.seconds);
        while Instant::now() < until {
            let hashes: Vec<String> = (0..per_sad)
                .map(|_| {
                    counter += 1;
                    base64::Engine::encode(
                        &base64::engine::general_purpose::STANDARD,
                        sha2::Sha384::digest(counter.to_be_bytes()),
                    )
                })
                .collect();
            self.clock.advance(time::Duration::seconds(30));
            let otp = self.secret.code_at(self.clock.now()).context("TOTP code")?;
            let authorize = AuthorizeRequest {
                serial: self.serial,
                num_signatures: u64::try_from(per_sad)?,
                hashes: &hashes,
                hash_algo: Some(SHA384_OID),
                otp: &otp,
            };
            let sad = self.csc.authorize(self.holder, &authorize).await?;
            let sign = SignRequest {
                serial: self.serial,
                sad: &sad.value,
                hashes: &hashes,
                hash_algo: SHA384_OID,
                sign_algo: "1.2.840.10045.4.3.3",
            };
            let sigs = self.csc.sign_hash(self.holder, &sign).await?;
            anyhow::ensure!(sigs.len() == per_sad, "one signature per hash");
            signed += sigs.len();
        }
        Ok(signed as f64 / start.elapsed().as_secs_f64())
    }
}

/// RFC 4648 base32 (no padding), for the bench's authenticator.
fn base32_decode(s: &str) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u64, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// Median of `runs` timings of `op`, in milliseconds.
async fn median_ms<F, Fut>(runs: usize, mut op: F) -> anyhow::Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        op().await?;
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().context("no run")
}

/// A page response's body, read to the end (what the server writes).
async fn body_len(r: axum::response::Response) -> anyhow::Result<usize> {
    anyhow::ensure!(
        r.status().is_success() || r.status() == axum::http::StatusCode::FORBIDDEN,
        "page status {}",
        r.status()
    );
    Ok(axum::body::to_bytes(r.into_body(), 64 << 20).await?.len())
}

fn desk_pages(orders_n: usize, runs: usize, database: &str) -> anyhow::Result<()> {
    use qcert_ca_core::desk::{DeskSettings, DocumentKey, DocumentNumber, RevocationDesk, RevocationPassword};
    use qcert_ca_core::operators::{Operator, Role};
    use qcert_ca_core::orders::{OrderForm, Orders};
    use qcert_ca_core::Reason;
    let env = Env::new()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let hsm = env.token("desk")?;
    let (url, cleanup) = registry_url(database, env.dir.path(), 0)?;
    println!(
        "qcert bench desk: {orders_n} waiting orders, median of {runs} runs, registry {}",
        if database == "sqlite" { "sqlite" } else { "postgres" }
    );
    runtime.block_on(async {
        let ca = env.ca(&hsm, &url, 4).await?;
        let settings = DeskSettings { agent_attempts_per_minute: u32::MAX, ..DeskSettings::default() };
        let desk = RevocationDesk::new(ca.clone(), DocumentKey::random(), settings).await?;
        let vault = Arc::new(qcert_ca_core::vault::Vault::random());
        let notices =
            Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), ca.clock().clone()));
        let webhook = [7u8; 32];
        let key = qcert_ca_core::payment::WebhookKey::from_bytes(webhook);
        let orders = Orders::new(
            desk,
            vault,
            qcert_ca_core::payment::WebhookKey::from_bytes(webhook),
            notices,
            "http://pki.qcert-demo.eu",
        );
        let fill = Instant::now();
        for i in 0..orders_n {
            let form = OrderForm {
                product: "TOKEN".into(),
                years: 1,
                given_name: "Bench".into(),
                surname: "Holder".into(),
                email: format!("bench{i}@example.eu"),
                country: "RO".into(),
                national_id: "1900101123457".into(),
                id_document_number: format!("BQ{i:08}"),
                publish: false,
                language: None,
                phone: None,
                document_type: None,
            };
            let id = orders.create(&form, None).await?.order.id;
            let event = serde_json::to_vec(
                &serde_json::json!({"event_id": format!("evt-{i}"), "order_id": id, "status": "paid"}),
            )?;
            let now = orders.ca().clock().now();
            orders.payment_webhook(&qcert_ca_core::payment::sign_webhook(&key, &event, now), &event).await?;
        }
        let (waiting, _) = orders.backlog().await?;
        anyhow::ensure!(usize::try_from(waiting)? == orders_n, "{waiting} orders waiting");
        println!("  {orders_n} paid orders made in {:.1} s", fill.elapsed().as_secs_f64());
        let state = crate::http::AppState::new(orders);
        let ra = Operator { name: "bench-ra".into(), role: Role::RaOfficer };
        let agent = Operator { name: "bench-agent".into(), role: Role::HotlineAgent };
        let chrome = |path: &str| {
            let uri: axum::http::Uri = path.parse().unwrap_or_default();
            crate::web::Chrome::new(crate::pages::Lang::En, &uri)
        };

        let page = median_ms(runs, || async {
            let r = crate::desk::ra::queue_page(&state, &ra, chrome("/desk/ra")).await?;
            body_len(r).await.map(drop)
        })
        .await?;
        let json = median_ms(runs, || async {
            let views = crate::orders_api::queue_views(&state, &ra).await.map_err(|e| anyhow::anyhow!("{}", e.0))?;
            serde_json::to_vec(&views).map(drop).map_err(Into::into)
        })
        .await?;
        println!(
            "  RA queue ({} of {orders_n} shown): page {page:.2} ms, JSON API {json:.2} ms, page/JSON {:.2}",
            crate::desk::ra::QUEUE_PAGE,
            page / json.max(1e-9)
        );

        let form = median_ms(runs, || async { body_len(crate::desk::hotline::form_page(chrome("/desk/hotline"))).await.map(drop) })
            .await?;
        let document = DocumentNumber::parse("ZZ00000000")?;
        let password = RevocationPassword::parse("12345678")?;
        let call_page = median_ms(runs, || async {
            let r = crate::desk::hotline::answer(
                &state,
                &agent,
                chrome("/desk/hotline"),
                "ZZ00000000",
                &document,
                &password,
                Reason::KeyCompromise,
            )
            .await;
            body_len(r).await.map(drop)
        })
        .await?;
        let call_json = median_ms(runs, || async {
            let r = match state.desk.hotline_revoke(&agent, &document, &password, Reason::KeyCompromise).await {
                Ok(_) => anyhow::bail!("an unknown document number revoked something"),
                Err(e) => axum::response::IntoResponse::into_response(crate::http::ApiError(e)),
            };
            body_len(r).await.map(drop)
        })
        .await?;
        println!(
            "  hotline: form page {form:.3} ms; refused call page {call_page:.2} ms, JSON API {call_json:.2} ms, page/JSON {:.2}",
            call_page / call_json.max(1e-9)
        );
        Ok::<_, anyhow::Error>(())
    })?;
    drop_throwaway(&runtime, cleanup)
}
