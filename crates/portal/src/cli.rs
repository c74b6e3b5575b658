//! The `qcert` operator command line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use qcert_ca_core::desk::{DocumentKey, DocumentNumber, RevocationDesk};
use qcert_ca_core::operators::{Operators, Role};
use qcert_ca_core::orders::Orders;
use qcert_ca_core::payment::WebhookKey;
use qcert_ca_core::vault::Vault;
use qcert_ca_core::{Ca, Clock, Holder, KeySource, Policy, Registry, SystemClock, ValidityYears};
use qcert_hsm::Hsm;

use crate::config::Settings;
use crate::{bench, ceremony, home, http};

#[derive(Debug, Parser)]
#[command(name = "qcert", version, about = "Qualified electronic-signature certificate authority")]
pub struct Cli {
    /// The qcert home (config, registry, certificates). Default: $QCERT_HOME or ./qcert-data
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    /// Log format: human or json (default: log_format in qcert.toml)
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The holder's token tool: make a key and request on your PKCS#11 token,
    /// load certificates onto it, renew and revoke with its key. Runs on the
    /// holder's machine against qcert's public API (no qcert home).
    Enroll(crate::enroll::EnrollArgs),
    /// Key ceremony: create the root CA, issuing CA and OCSP responder keys and
    /// certificates on the HSM. On a home without qcert.toml, first create an
    /// embedded home (SQLite, an online and a root SoftHSM token, PINs and
    /// the demo officers' credentials under secrets/) and run the ceremonies
    /// of policies/ceremony-*.toml (root, issuing-ca, ocsp-responder, arl).
    Init,
    /// Scripted key ceremonies, one configuration file each (policies/ceremony-*.toml),
    /// with dual control and a hash-stamped report.
    Ceremony {
        #[command(subcommand)]
        what: ceremony::CeremonyCommand,
    },
    /// Issue a qualified certificate for a CSR (TOKEN) or a key made in the HSM (CLOUD).
    Issue(IssueArgs),
    /// Revoke a certificate, permanently, and publish a new CRL at once.
    Revoke {
        /// Serial number in hex (colons and case do not matter).
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason: unspecified, keyCompromise, cACompromise, affiliationChanged,
        /// superseded, cessationOfOperation, privilegeWithdrawn, aACompromise.
        #[arg(long)]
        reason: String,
        /// When the key was compromised or the certificate became invalid (RFC 3339).
        #[arg(long)]
        invalidity_date: Option<String>,
        /// Who asked for the revocation (recorded); default: operator:<login>.
        #[arg(long)]
        requested_by: Option<String>,
    },
    /// Write the current CRL (publishing a new one first if it is due).
    Crl {
        /// `issuing` (the CA's CRL) or `root` (the ARL).
        #[arg(long, default_value = "issuing")]
        scope: String,
        /// Write DER here; without it, PEM goes to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Serve the HTTP API.
    Serve {
        /// Listen address (overrides `listen`), e.g. 127.0.0.1:0 for any free port.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Operator accounts (RA officers, hotline agents, administrators) for the HTTP API.
    Operator {
        #[command(subcommand)]
        what: OperatorCommand,
    },
    /// The notifier alone (for a separate node): renewal reminders and
    /// automatic renewals on `notifier.schedule`, with mail delivery.
    Notify {
        /// One tick (and one delivery pass), then exit.
        #[arg(long)]
        once: bool,
    },
    /// TOKEN kits: print the envelope insert with the secret-delivery code.
    Kit {
        #[command(subcommand)]
        what: KitCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Holder mail: the outbox `qcert serve` delivers from.
    Mail {
        #[command(subcommand)]
        what: MailCommand,
    },
    /// A holder's GDPR rights at the RA desk (the ID document number is read
    /// from stdin, never an argument: command lines are visible in `ps`
    /// and shell history).
    Holder {
        #[command(subcommand)]
        what: HolderCommand,
    },
    /// Benchmarks that print ratios against a baseline measured in the same run.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an account; prints its bearer token once (only a hash is stored).
    Add {
        /// admin, ra-officer or hotline-agent
        #[arg(long)]
        role: String,
        name: String,
    },
    /// Revoke an account's token at once (its desk sessions end too).
    Revoke { name: String },
    /// List accounts.
    List,
    /// Print a one-time enrolment link for the operators' desk (72 hours):
    /// the operator opens it, chooses a password and registers a security
    /// key. How the first admin gets in. `--reset` drops the account's
    /// password, keys and sessions first.
    Enrol {
        name: String,
        /// Reset an enrolled account (new link, old credentials dropped).
        #[arg(long)]
        reset: bool,
    },
    /// Allow TOTP codes as the desk login's fallback for this account
    /// (`--forbid`: forbid them and erase the account's TOTP secret).
    Totp {
        name: String,
        #[arg(long)]
        forbid: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KitCommand {
    /// Print the generation code of an issued order, once (it is erased
    /// when printed; an RA officer can issue a new delivery).
    Print {
        /// The order id (32 hex digits).
        order: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum HolderCommand {
    /// Print everything about the holder as JSON (GDPR Art. 15, 20), as
    /// `POST /api/v1/ra/holders/export`.
    Export,
    /// Erase what no duty keeps, restrict the rest and print the
    /// exceptions (GDPR Art. 17, 18), as `POST /api/v1/ra/holders/erasure`.
    Erase,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first broken entry (exit status 1).
    Verify,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// PKCS#10 request, PEM or DER (TOKEN product).
    #[arg(long, required_unless_present = "cloud", conflicts_with = "cloud")]
    pub csr: Option<PathBuf>,
    /// Generate the holder's key pair in the HSM (CLOUD product).
    #[arg(long)]
    pub cloud: bool,
    #[arg(long)]
    pub given_name: String,
    #[arg(long)]
    pub surname: String,
    #[arg(long)]
    pub email: String,
    /// ISO 3166 two-letter country code.
    #[arg(long)]
    pub country: String,
    /// National identifier: bare (a Romanian CNP such as 1900101123457, checked) or the ETSI form
    /// (PNORO-1900101123457, PASDE-C01X00T47, IDCHU-AB123); see the README.
    #[arg(long)]
    pub id_number: String,
    /// Number of the holder's ID document (identity card or passport); the
    /// hotline finds the holder by it. Stored only as a keyed hash.
    #[arg(long)]
    pub id_document: String,
    /// Validity in years: 1, 2 or 3.
    #[arg(long)]
    pub years: u32,
    /// Certificate profile.
    #[arg(long, default_value = "qcp-n-qscd")]
    pub profile: String,
    /// Write the PEM here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The holder agreed to publication: list it in the public directory.
    #[arg(long)]
    pub publish: bool,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let home = home::resolve(cli.home.clone(), &env);
    if let Command::Bench { what } = cli.command {
        // Benchmarks print a table; per-operation logs would drown it.
        if env("QCERT_LOG").is_none() {
            std::env::set_var("QCERT_LOG", "warn");
        }
        init_logging(cli.log_format.as_deref().unwrap_or("human"))?;
        return bench::run(what);
    }
    if let Command::Enroll(args) = cli.command {
        if env("QCERT_LOG").is_none() {
            std::env::set_var("QCERT_LOG", "warn");
        }
        init_logging(cli.log_format.as_deref().unwrap_or("human"))?;
        return crate::enroll::run(args);
    }
    let mut created = None;
    if matches!(cli.command, Command::Init) && !home.join("qcert.toml").exists() {
        created = Some(home::create_embedded(&home, &env)?);
    }
    let settings = Settings::load(&home, &env)?;
    init_logging(cli.log_format.as_deref().unwrap_or(&settings.config.log_format))?;
    // SoftHSM reads SOFTHSM2_CONF when the module is initialised: set it
    // before the runtime starts any thread and before the HSM is opened.
    if let Some(conf) = &settings.softhsm_conf {
        std::env::set_var(qcert_hsm::softhsm::CONF_ENV, conf);
    }
    if let Command::Ceremony { what } = &cli.command {
        // Root-token ceremonies load the root token's store instead.
        ceremony::select_token_env(&settings, what)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Init => init(&settings, created).await,
            Command::Ceremony { what } => ceremony::run(&settings, what, &env, clock()?).await,
            Command::Issue(args) => issue(&settings, args).await,
            Command::Serve { listen } => serve(&settings, listen).await,
            Command::Revoke { serial, reason, invalidity_date, requested_by } => {
                revoke(&settings, &serial, &reason, invalidity_date.as_deref(), requested_by).await
            }
            Command::Crl { scope, out } => crl(&settings, &scope, out).await,
            Command::Operator { what } => operator(&settings, what).await,
            Command::Audit { what: AuditCommand::Verify } => audit_verify(&settings).await,
            Command::Mail { what } => mail(&settings, what).await,
            Command::Kit { what: KitCommand::Print { order } } => kit_print(&settings, &order).await,
            Command::Notify { once } => notify(&settings, once).await,
            Command::Holder { what } => holder(&settings, what).await,
            Command::Bench { .. } | Command::Enroll(_) => Ok(()),
        }
    })
}

fn init_logging(format: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QCERT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        "json" => builder.json().init(),
        "human" => builder.init(),
        other => bail!("--log-format {other:?}: expected human or json"),
    }
    Ok(())
}

/// The parts every command needs.
async fn open_parts(settings: &Settings) -> anyhow::Result<(Hsm, Registry, Policy, Arc<dyn Clock>)> {
    let policy = Policy::load(&settings.policies_dir, &settings.config.public_base_url)?;
    let hsm_config = settings.hsm_config(&env)?;
    let hsm = tokio::task::spawn_blocking(move || Hsm::open(&hsm_config)).await?.with_context(|| {
        format!("cannot open HSM token {:?} (setting hsm.token_label / hsm.module)", settings.config.hsm.token_label)
    })?;
    let registry = Registry::open(&settings.database_url, settings.config.database.max_connections)
        .await
        .context("cannot open the registry (setting database.url)")?;
    Ok((hsm, registry, policy, clock()?))
}

async fn open_ca(settings: &Settings) -> anyhow::Result<Ca> {
    let (hsm, registry, policy, clock) = open_parts(settings).await?;
    let ca = Ca::open(hsm, registry, policy, clock).await?;
    // Holders are mailed when a certificate is revoked, by any command.
    let vault = load_vault(settings)?;
    ca.set_notices(Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault, ca.clock().clone())));
    Ok(ca)
}

/// The system clock; or, for end-to-end tests of the lifecycle rules,
/// `QCERT_FAKE_NOW` (RFC 3339) fixes it, loudly (as Boulder's FAKECLOCK).
/// Ask for a secret on standard error: read without echo from the terminal
/// when standard input is one, else one line of standard input (scripts).
pub(crate) fn prompt_secret(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Write};
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt).context("cannot read from the terminal");
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read standard input")?;
    Ok(line)
}

pub(crate) fn clock() -> anyhow::Result<Arc<dyn Clock>> {
    match env("QCERT_FAKE_NOW") {
        None => Ok(Arc::new(SystemClock)),
        Some(t) => {
            let at = time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("QCERT_FAKE_NOW {t:?} is not an RFC 3339 time"))?;
            tracing::warn!(%t, "QCERT_FAKE_NOW is set: the clock stands still at that time (tests only)");
            Ok(Arc::new(qcert_ca_core::FixedClock::new(at)))
        }
    }
}

/// The CA with the revocation desk (document key from `revocation.document_key_file`).
async fn open_desk(settings: &Settings) -> anyhow::Result<RevocationDesk> {
    let path = settings.document_key_path();
    let key = DocumentKey::load(&path).with_context(|| {
        format!("setting revocation.document_key_file ({}); `qcert init` creates it", path.display())
    })?;
    let ca = open_ca(settings).await?;
    Ok(RevocationDesk::new(ca, key, settings.desk_settings()).await?)
}

/// The order workflow over the desk, with the vault and webhook keys and
/// mail through the outbox.
async fn open_orders(settings: &Settings) -> anyhow::Result<Orders> {
    let vault = load_vault(settings)?;
    let hook_path = settings.webhook_key_path();
    let webhook = WebhookKey::load(&hook_path).with_context(|| {
        format!("setting orders.payment_webhook_key_file ({}); `qcert init` creates it", hook_path.display())
    })?;
    let desk = open_desk(settings).await?;
    let ca = desk.ca().clone();
    let notices =
        Arc::new(qcert_notifier::OutboxNotices::new(ca.registry().clone(), vault.clone(), ca.clock().clone()));
    Orders::new(desk, vault, webhook, notices, settings.portal_url())
        .with_code_limits(settings.code_limits())
        .with_form_limits(settings.form_limits())
        .with_retention(settings.retention_policy())
        .with_payment(settings.payment_settings())
        .context("setting orders.payment")
}

/// The vault (`orders.vault_key_file`): order secrets and mail bodies at rest.
fn load_vault(settings: &Settings) -> anyhow::Result<Arc<Vault>> {
    let vault_path = settings.vault_key_path();
    let vault = Vault::load(&vault_path).with_context(|| {
        format!("setting orders.vault_key_file ({}); `qcert init` creates it", vault_path.display())
    })?;
    Ok(Arc::new(vault))
}

/// Who the CLI acts as in the audit log.
fn cli_actor() -> String {
    format!("cli:{}", env("USER").unwrap_or_else(|| "unknown".into()))
}

async fn init(settings: &Settings, created: Option<home::Created>) -> anyhow::Result<()> {
    let certs = settings.home.join("certs");
    if certs.join("root.pem").exists() {
        bail!(
            "{} is already initialised ({} exists); refusing to run the key ceremony twice",
            settings.home.display(),
            certs.join("root.pem").display()
        );
    }
    let two_tokens = settings.policies_dir.join("ceremony-root.toml").exists();
    if two_tokens {
        // The ceremonies, each a child process opening only the token
        // store it needs; the root token is made only for a new home.
        for name in ceremony::INIT_SEQUENCE {
            if name == "init-token" && created.is_none() {
                continue;
            }
            ceremony::run_child(&settings.home, name)?;
        }
        // The online CA opens without the root key and publishes its CRL.
        let (hsm, registry, policy, clock) = open_parts(settings).await?;
        let ca = Ca::open(hsm, registry, policy, clock).await?;
        ca.refresh_crls().await?;
        ca.registry().close().await;
    } else {
        // No ceremony configurations: the single-token key ceremony (the
        // root key stays on the online token; `serve` says how to move it).
        let (hsm, registry, policy, clock) = open_parts(settings).await?;
        let ca = Ca::init(hsm, registry, policy, clock).await?;
        ca.refresh_crls().await?;
        std::fs::create_dir_all(&certs)?;
        let h = ca.hierarchy();
        for (name, der) in [("root", &h.root), ("issuing", &h.issuing), ("ocsp", &h.ocsp)] {
            std::fs::write(certs.join(format!("{name}.pem")), qcert_ca_core::pem("CERTIFICATE", der))?;
        }
        ca.registry().close().await;
    }
    for (what, path) in [
        ("document lookup key (HMAC)", settings.document_key_path()),
        ("secret vault key", settings.vault_key_path()),
        ("payment webhook key (give it to the payment provider)", settings.webhook_key_path()),
    ] {
        if home::ensure_key_file(&path)? {
            println!("{what}, readable only by you: {}", path.display());
        }
    }
    println!("qcert home initialised at {}", settings.home.display());
    println!("CA certificates: {}/{{root,issuing,ocsp}}.pem", certs.display());
    if let Some(c) = created {
        println!(
            "HSM PINs (readable only by you): user PIN {}, SO PIN {}",
            c.pin_file.display(),
            c.so_pin_file.display()
        );
        let creds: Vec<String> = c.officer_credentials.iter().map(|p| p.display().to_string()).collect();
        println!(
            "Root token (softhsm-root/, never opened by serve): its PIN is derived from the two ceremony \
             officers' credentials {}; give each officer theirs and delete the files",
            creds.join(" and ")
        );
    }
    Ok(())
}

async fn issue(settings: &Settings, args: IssueArgs) -> anyhow::Result<()> {
    let holder = Holder::parse(&args.given_name, &args.surname, &args.email, &args.country, &args.id_number)?;
    let years = ValidityYears::new(args.years)?;
    let document = DocumentNumber::parse(&args.id_document)?;
    let key = match &args.csr {
        Some(path) => {
            KeySource::Csr(std::fs::read(path).with_context(|| format!("cannot read --csr {}", path.display()))?)
        }
        None => KeySource::Hsm,
    };
    let desk = open_desk(settings).await?;
    let ca = desk.ca();
    let (issued, password) = desk.issue(&args.profile, &holder, years, key, &document).await?;
    if args.publish {
        ca.publish(&issued.serial).await?;
    }
    ca.registry().close().await;
    match &args.out {
        Some(path) => {
            std::fs::write(path, issued.pem()).with_context(|| format!("cannot write --out {}", path.display()))?;
            eprintln!("issued serial {} to {}", issued.serial, path.display());
        }
        None => print!("{}", issued.pem()),
    }
    // Shown once, to be handed to the holder: only its Argon2id hash is kept.
    eprintln!("revocation password (shown once, give it to the holder): {}", password.expose());
    Ok(())
}

async fn operator(settings: &Settings, what: OperatorCommand) -> anyhow::Result<()> {
    if matches!(what, OperatorCommand::Enrol { .. } | OperatorCommand::Totp { .. }) {
        return desk_operator(settings, what).await;
    }
    let (_hsm, registry, _policy, clock) = open_parts(settings).await?;
    let ops = Operators::new(registry.clone(), clock);
    let result = match what {
        OperatorCommand::Add { role, name } => {
            let role = Role::parse(&role)?;
            let token = ops.add(&cli_actor(), &name, role).await?;
            eprintln!("operator {} ({role}) created; its token (shown once, keep it secret):", name.trim());
            println!("{}", token.expose());
            Ok(())
        }
        OperatorCommand::Revoke { name } => {
            ops.revoke(&cli_actor(), &name).await.map(|()| println!("operator {name}: token revoked"))
        }
        OperatorCommand::List => ops.list().await.map(|list| {
            for a in list {
                let state = if a.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{state}", a.name, a.role);
            }
        }),
        OperatorCommand::Enrol { .. } | OperatorCommand::Totp { .. } => Ok(()),
    };
    registry.close().await;
    Ok(result?)
}

/// `qcert operator enrol|totp`: the desk login's account commands.
async fn desk_operator(settings: &Settings, what: OperatorCommand) -> anyhow::Result<()> {
    use qcert_ca_core::desk_login::{DeskLogin, DeskLoginSettings};
    let rp = settings.desk_relying_party()?;
    let orders = open_orders(settings).await?;
    let desk = orders.desk();
    let login = DeskLogin::new(
        desk.ca().clone(),
        orders.vault().clone(),
        desk.argon2_params(),
        rp,
        DeskLoginSettings::default(),
    );
    let actor = cli_actor();
    let result = match what {
        OperatorCommand::Enrol { name, reset } => {
            let made = if reset { login.reset(&actor, &name).await } else { login.enrolment_link(&actor, &name).await };
            made.map(|e| {
                eprintln!(
                    "enrolment link for {} (shown once, works once, valid until {}); give it to the operator over a trusted channel:",
                    e.operator,
                    qcert_ca_core::clock::rfc3339(e.expires_at)
                );
                println!("{}", e.link.as_str());
            })
        }
        OperatorCommand::Totp { name, forbid } => login.set_totp_allowed(&actor, &name, !forbid).await.map(|()| {
            if forbid {
                println!("operator {name}: TOTP codes forbidden (any TOTP secret erased)");
            } else {
                println!(
                    "operator {name}: TOTP codes allowed as the fallback; the operator sets up an app at /desk/totp"
                );
            }
        }),
        _ => Ok(()),
    };
    orders.ca().registry().close().await;
    Ok(result?)
}

async fn notify(settings: &Settings, once: bool) -> anyhow::Result<()> {
    let schedule = settings.config.notifier.schedule.clone();
    qcert_notifier::scheduler::parse_schedule(&schedule).context("setting notifier.schedule")?;
    let orders = open_orders(settings).await?;
    let ca = orders.ca().clone();
    let vault = orders.vault().clone();
    let notifier = qcert_notifier::Notifier::new(orders).with_sent_mail_retention(settings.sent_mail_retention());
    if once {
        let report = notifier.tick(ca.clock().now()).await?;
        println!(
            "reminders: {} at 45 days, {} at 15 days, {} skipped; renewals: {} issued, {} cancelled, {} failed",
            report.reminders_45,
            report.reminders_15,
            report.skipped,
            report.renewals.issued,
            report.renewals.cancelled,
            report.renewals.failed
        );
        let transport = settings.mail_transport(&env)?;
        let dispatcher = qcert_notifier::Dispatcher::new(
            ca.registry().clone(),
            vault,
            transport,
            qcert_notifier::DeliveryPolicy::default(),
        )?;
        let sent = dispatcher.run_once(ca.clock().now()).await?;
        println!("mail: {} sent, {} deferred, {} failed", sent.sent, sent.deferred, sent.failed);
        ca.registry().close().await;
        return Ok(());
    }
    let mail = start_mail_delivery(settings, ca.registry().clone(), vault);
    tracing::info!(%schedule, "notifier running");
    notifier.run(&schedule, ca.clock().clone(), shutdown_signal()).await?;
    if let Some(mail) = mail {
        mail.stop().await;
    }
    ca.registry().close().await;
    Ok(())
}

async fn kit_print(settings: &Settings, order: &str) -> anyhow::Result<()> {
    let orders = open_orders(settings).await?;
    let registry = orders.ca().registry().clone();
    let result = async {
        let row = registry.order(order).await?.with_context(|| format!("no order {order:?}"))?;
        anyhow::ensure!(row.state == "issued", "order {order} is {}, not issued: no kit to print yet", row.state);
        let code = orders.take_code(&cli_actor(), order).await?;
        println!("qcert - qualified certificate kit");
        println!("order:      {}", row.id);
        println!("holder:     {} {}", row.given_name, row.surname);
        println!("serial:     {}", row.serial.as_deref().unwrap_or("-"));
        println!(
            "generation code (with the link we emailed you, it reveals your PIN, PUK and revocation password once):"
        );
        println!("  {code}");
        anyhow::Ok(())
    }
    .await;
    registry.close().await;
    result
}

/// `qcert holder export|erase`: the ID document number from stdin, acting
/// as an RA officer named after the CLI user.
async fn holder(settings: &Settings, what: HolderCommand) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the ID document number from stdin")?;
    let document = qcert_ca_core::desk::DocumentNumber::parse(line.trim())?;
    let orders = open_orders(settings).await?;
    let officer =
        qcert_ca_core::operators::Operator { name: cli_actor(), role: qcert_ca_core::operators::Role::RaOfficer };
    let result = async {
        let json = match what {
            HolderCommand::Export => serde_json::to_string_pretty(&orders.export_holder(&officer, &document).await?)?,
            HolderCommand::Erase => serde_json::to_string_pretty(&orders.erase_holder(&officer, &document).await?)?,
        };
        println!("{json}");
        anyhow::Ok(())
    }
    .await;
    orders.ca().registry().close().await;
    result
}

async fn audit_verify(settings: &Settings) -> anyhow::Result<()> {
    let registry =
        Registry::open(&settings.database_url, 2).await.context("cannot open the registry (setting database.url)")?;
    let result = qcert_ca_core::audit::verify(&registry).await;
    registry.close().await;
    match result? {
        Ok(v) => {
            println!("audit log intact: {} entries, head {}", v.entries, v.head);
            Ok(())
        }
        Err(b) => bail!("{b}"),
    }
}

async fn revoke(
    settings: &Settings,
    serial: &str,
    reason: &str,
    invalidity_date: Option<&str>,
    requested_by: Option<String>,
) -> anyhow::Result<()> {
    let reason = qcert_ca_core::Reason::parse(reason)?;
    let invalidity = invalidity_date
        .map(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("--invalidity-date {d:?} is not an RFC 3339 time like 2026-11-25T10:00:00Z"))
        })
        .transpose()?;
    let who = requested_by.unwrap_or_else(|| format!("operator:{}", env("USER").unwrap_or_else(|| "unknown".into())));
    let ca = open_ca(settings).await?;
    let r = ca.revoke(serial, reason, invalidity, &who).await?;
    ca.registry().close().await;
    let first = qcert_ca_core::Reason::from_code(r.record.reason).map_or("?", |x| x.name());
    let at = time::OffsetDateTime::from_unix_timestamp(r.record.revoked_at)?;
    if r.newly_revoked {
        println!("revoked {} ({first}) at {at}; new CRL published", r.record.serial);
    } else {
        println!("{} was already revoked ({first}) at {at} by {}; unchanged", r.record.serial, r.record.requested_by);
    }
    Ok(())
}

async fn crl(settings: &Settings, scope: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    let scope = match scope {
        "issuing" => qcert_ca_core::CrlScope::Issuing,
        "root" => qcert_ca_core::CrlScope::Root,
        other => bail!("--scope {other:?}: expected issuing or root"),
    };
    let ca = open_ca(settings).await?;
    ca.refresh_crls().await?;
    let record = ca.current_crl(scope).await?.context("no CRL published")?;
    ca.registry().close().await;
    match out {
        Some(path) => {
            std::fs::write(&path, &record.der).with_context(|| format!("cannot write --out {}", path.display()))?;
            eprintln!("CRL number {} ({} entries) written to {}", record.crl_number, record.entries, path.display());
        }
        None => print!("{}", qcert_ca_core::pem("X509 CRL", &record.der)),
    }
    Ok(())
}

/// While serving: CRLs published when due (checked every minute);
/// revocations made by other qcert processes on the same registry applied to
/// the OCSP cache, and cached answers re-signed before they go stale
/// (every 2 seconds).
async fn scheduler(ca: Ca, arl_dir: PathBuf) {
    let mut tick = 0u64;
    loop {
        if tick.is_multiple_of(30) {
            // Every minute: a new ARL file; every hour: the expiry warning.
            arl_watch(&ca, &arl_dir, tick.is_multiple_of(1800)).await;
            if let Err(e) = ca.refresh_crls().await {
                tracing::error!(error = %e, "CRL refresh failed; retrying in a minute");
            }
        }
        if let Err(e) = ca.sync_revocations().await {
            tracing::error!(error = %e, "could not read recent revocations");
        }
        ca.refresh_ocsp_cache().await;
        tick += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Take in new ARL files of `dir` (the root's `arl` ceremony writes
/// `root-arl-<n>.crl` there; copy them over from an offline machine) and,
/// with `warn`, log a warning 30 days before the current ARL expires.
async fn arl_watch(ca: &Ca, dir: &std::path::Path, warn: bool) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "crl")).collect()
        }
        Err(_) => Vec::new(),
    };
    files.sort();
    for file in files {
        let result = match std::fs::read(&file) {
            Ok(der) => ca.import_arl(&der).await.map(|_| ()),
            Err(e) => Err(qcert_ca_core::CaError::Internal(e.to_string())),
        };
        if let Err(e) = result {
            tracing::warn!(file = %file.display(), error = %e, "ARL file not taken");
        }
    }
    if !warn {
        return;
    }
    let now = ca.clock().now().unix_timestamp();
    match ca.current_crl(qcert_ca_core::CrlScope::Root).await {
        Ok(Some(arl)) if arl.next_update - now < qcert_ca_core::ceremony::ARL_WARNING_DAYS * 86_400 => {
            let days_left = (arl.next_update - now) / 86_400;
            tracing::warn!(
                crl_number = arl.crl_number,
                days_left,
                "the root's ARL expires in less than 30 days: run `qcert ceremony arl` on the root token \
                 (EN 319 411-1 CSS-6.3.9-12)"
            );
        }
        Ok(Some(_)) => {}
        Ok(None) if !ca.root_key_online() => {
            tracing::warn!("no ARL yet: run `qcert ceremony arl` on the root token");
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not read the current ARL"),
    }
}

/// Ctrl-C or SIGTERM (systemd, container runtimes) ends `serve` gracefully.
async fn shutdown_signal() {
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}

async fn serve(settings: &Settings, listen: Option<String>) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = match listen {
        Some(l) => l.parse().with_context(|| format!("--listen {l:?} is not an address like 127.0.0.1:8080"))?,
        None => settings.listen,
    };
    let orders = open_orders(settings).await?;
    let ca = orders.ca().clone();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (setting listen)"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, "qcert serving");
    println!("listening on http://{local}");
    ca.refresh_crls().await?;
    let arl_dir = settings.home.join("arl");
    arl_watch(&ca, &arl_dir, true).await;
    if ca.root_key_online() {
        tracing::warn!(
            "single-token home: the root key is on the online token and serve signs the ARL. \
             To take the root offline: README, \"Moving the root offline\""
        );
    }
    if let Some(why) = settings.test_payment_exposed(local) {
        tracing::warn!(
            "orders.payment.test_provider is on and {why}: anyone who knows an order id can mark it paid \
             on /pay/test/…; set it to false and configure orders.payment.url for a real provider"
        );
    }
    let scheduler = tokio::spawn(scheduler(ca.clone(), arl_dir));
    let mail = start_mail_delivery(settings, ca.registry().clone(), orders.vault().clone());
    let notifier = settings.config.notifier.in_serve.then(|| {
        let n = qcert_notifier::Notifier::new(orders.clone()).with_sent_mail_retention(settings.sent_mail_retention());
        let (schedule, clock) = (settings.config.notifier.schedule.clone(), ca.clock().clone());
        tokio::spawn(async move {
            if let Err(e) = n.run(&schedule, clock, std::future::pending()).await {
                tracing::error!(error = %e, "notifier not started (setting notifier.schedule)");
            }
        })
    });
    let rp = settings.desk_relying_party()?;
    let state = http::AppState::new(orders).with_trusted_proxies(settings.trusted_proxies()).with_desk(rp);
    state.desk_login.check()?;
    tracing::info!(origin = %state.desk_login.relying_party().origin(), "operators' desk at /desk");
    if let Err(e) = state.tsa().await {
        tracing::warn!(
            error = %e,
            "time-stamping (POST /tsa) answers 503 until the TSU exists: run `qcert ceremony tsa`"
        );
    }
    let app = http::router(state);
    let h = &settings.config.http;
    let limits = crate::server::Limits {
        header_timeout: Duration::from_secs(h.header_timeout_secs),
        idle_timeout: Duration::from_secs(h.idle_timeout_secs),
        max_connections: usize::try_from(h.max_connections).unwrap_or(usize::MAX),
        max_per_client: usize::try_from(h.max_connections_per_client).unwrap_or(usize::MAX),
    };
    crate::server::serve(listener, app, limits, shutdown_signal()).await?;
    scheduler.abort();
    if let Some(n) = notifier {
        n.abort();
    }
    if let Some(mail) = mail {
        mail.stop().await;
    }
    ca.registry().close().await;
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Deliver every mail that is due now, once, and print what happened.
    SendPending,
    /// How many mails are not sent yet (parked ones included), and where mail goes.
    Status,
}

/// `qcert serve`'s mail delivery: the notifier's dispatcher on the outbox.
#[derive(Debug)]
struct MailDelivery {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Start delivering the outbox through `[mail]`'s transport. A transport
/// that cannot be set up is logged as an error and serving goes on: mail
/// waits in the outbox until the configuration is fixed.
fn start_mail_delivery(settings: &Settings, registry: Registry, vault: Arc<Vault>) -> Option<MailDelivery> {
    let dispatcher = settings.mail_transport(&env).map_err(anyhow::Error::from).and_then(|transport| {
        let via = transport.describe();
        let policy = qcert_notifier::DeliveryPolicy::default();
        Ok((qcert_notifier::Dispatcher::new(registry, vault, transport, policy)?, via))
    });
    let dispatcher = match dispatcher {
        Ok((d, via)) => {
            tracing::info!(%via, "mail delivery started");
            d
        }
        Err(e) => {
            tracing::error!(
                error = %format!("{e:#}"),
                "mail delivery NOT started: holder mail stays in the outbox until [mail] is fixed \
                 (then restart, or run `qcert mail send-pending`)"
            );
            return None;
        }
    };
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        dispatcher.run(Arc::new(SystemClock), shutdown).await;
    });
    Some(MailDelivery { stop, task })
}

impl MailDelivery {
    /// Let a delivery pass in progress finish (its outcomes are recorded),
    /// for at most 10 s; rows still leased then are retried later under the
    /// same Message-ID.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(10), &mut task).await.is_err() {
            task.abort();
            tracing::warn!("mail delivery did not stop within 10 s; its leased mails will be retried");
        }
    }
}

async fn mail(settings: &Settings, what: MailCommand) -> anyhow::Result<()> {
    let registry =
        Registry::open(&settings.database_url, 2).await.context("cannot open the registry (setting database.url)")?;
    let result = match what {
        MailCommand::SendPending => mail_send_pending(settings, &registry).await,
        MailCommand::Status => mail_status(settings, &registry).await,
    };
    registry.close().await;
    result
}

async fn mail_send_pending(settings: &Settings, registry: &Registry) -> anyhow::Result<()> {
    let transport = settings.mail_transport(&env)?;
    let via = transport.describe();
    let vault = load_vault(settings)?;
    let dispatcher =
        qcert_notifier::Dispatcher::new(registry.clone(), vault, transport, qcert_notifier::DeliveryPolicy::default())?;
    let r = dispatcher.run_once(SystemClock.now()).await?;
    println!("sent {}, failed {}, deferred {}, released {} (via {via})", r.sent, r.failed, r.deferred, r.released);
    println!("unsent mails: {}", qcert_notifier::Outbox::unsent(registry).await?);
    Ok(())
}

async fn mail_status(settings: &Settings, registry: &Registry) -> anyhow::Result<()> {
    println!("unsent mails: {}", qcert_notifier::Outbox::unsent(registry).await?);
    let via = match &settings.config.mail.transport {
        crate::config::MailTransport::File { dir } => format!("file {}", settings.home.join(dir).display()),
        crate::config::MailTransport::Smtp(s) => {
            format!("smtp {}{} ({})", s.host, s.port.map(|p| format!(":{p}")).unwrap_or_default(), s.security)
        }
    };
    println!("mail goes to: {via}");
    Ok(())
}
