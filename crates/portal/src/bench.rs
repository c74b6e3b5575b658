//! `qcert bench issue`: end-to-end issuance (CSR in, stored signed
//! certificate out) against raw HSM P-384 signing, measured in the same run
//! on a throwaway SoftHSM token and a throwaway registry.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Subcommand;
use qcert_ca_core::{Ca, Clock, Holder, KeySource, Policy, Registry, SystemClock, ValidityYears};
use qcert_hsm::{Hsm, KeyAlgorithm, SignatureAlgorithm};
use rand::RngCore;
use secrecy::SecretString;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
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
    let BenchCommand::Issue { workers, seconds, databases } = cmd;
    let workers = workers.max(1);
    let dir = tempfile::tempdir()?;
    let conf = qcert_hsm::softhsm::write_config(&dir.path().join("softhsm"))?;
    std::env::set_var(qcert_hsm::softhsm::CONF_ENV, &conf);
    let module = std::path::PathBuf::from(qcert_hsm::softhsm::DEFAULT_MODULE);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    for (name, text) in crate::home::DEFAULT_POLICIES {
        std::fs::write(policies.join(name), text)?;
    }
    let csrs = make_csrs(dir.path(), 8)?;
    println!("qcert bench issue: {workers} workers, {seconds} s per measurement, SoftHSM2 P-384");
    println!("{:<10} {:>14} {:>16} {:>14} {:>8}", "registry", "raw sign/s", "CSR verify/s", "issuance/s", "ratio");
    for (i, db) in databases.iter().enumerate() {
        let label = format!("bench{i}");
        let pin = SecretString::new(random_hex(8));
        qcert_hsm::init_token(&module, &label, &SecretString::new(random_hex(8)), &pin)?;
        let hsm = Hsm::open(&qcert_hsm::HsmConfig { module: module.clone(), token_label: label, pin })?;
        let raw = raw_sign_rate(&hsm, workers, seconds)?;
        let verify = csr_verify_rate(&policies, &csrs, workers, seconds)?;
        let (url, cleanup) = registry_url(db, dir.path(), i)?;
        let issued = runtime.block_on(issuance_rate(&hsm, &url, &policies, &csrs, workers, seconds))?;
        if let Some(drop_db) = cleanup {
            runtime.block_on(drop_db)?;
        }
        let name = if db == "sqlite" { "sqlite" } else { "postgres" };
        println!("{name:<10} {raw:>14.1} {verify:>16.1} {issued:>14.1} {:>7.0}%", 100.0 * issued / raw);
    }
    Ok(())
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
    hsm: &Hsm,
    url: &str,
    policies: &std::path::Path,
    csrs: &[Vec<u8>],
    workers: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let registry = Registry::open(url, (workers as u32) * 2).await?;
    let policy = Policy::load(policies, "http://pki.qcert-demo.eu")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ca = Ca::init(hsm.clone(), registry.clone(), policy, clock).await?;
    let holder = Holder::parse("Ana", "Bench", "ana.bench@example.ro", "RO", "1234567890123")?;
    let years = ValidityYears::new(1)?;
    // Warm up: one issuance outside the timing.
    let first = csrs.first().context("no CSRs")?.clone();
    ca.issue("qcp-n-qscd", &holder, years, KeySource::Csr(first)).await?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (ca, holder, done, stop) = (ca.clone(), holder.clone(), done.clone(), stop.clone());
            let csrs = csrs.to_vec();
            tokio::spawn(async move {
                let mut i = w;
                while !stop.load(Ordering::Relaxed) {
                    let csr = csrs.get(i % csrs.len()).context("no CSRs")?.clone();
                    ca.issue("qcp-n-qscd", &holder, years, KeySource::Csr(csr)).await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
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
    registry.close().await;
    Ok(n as f64 / elapsed)
}
