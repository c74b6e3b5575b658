#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::string_slice)]
//! Secret deliveries on SQLite and PostgreSQL: shown once then erased,
//! blocked after three wrong codes, superseded by a new delivery, one winner
//! among concurrent reveals, nothing in clear in the database, and sealed
//! secrets that do not open in another row.
//!
//! ca-core cannot use qcert-tests (it depends on ca-core), so the databases
//! are made here: an SQLite file in a temporary directory, and a PostgreSQL
//! database of its own on `$QCERT_TEST_PG_URL` (else the local server),
//! dropped at the end. PostgreSQL missing is a failure, not a skip.

use std::path::PathBuf;
use std::sync::Arc;

use qcert_ca_core::audit;
use qcert_ca_core::delivery::{
    generate_pin, generate_puk, Deliveries, DeliveryStatus, GenerationCode, KitSecrets, MAX_ATTEMPTS,
};
use qcert_ca_core::desk::RevocationPassword;
use qcert_ca_core::operators::{Operator, Role};
use qcert_ca_core::store::audit::AuditRow;
use qcert_ca_core::vault::Vault;
use qcert_ca_core::{Backend, CaError, Clock, FixedClock, Registry};
use rand::RngCore;
use secrecy::ExposeSecret;
use sqlx::Row;
use time::macros::datetime;
use time::Duration;

// ---------------------------------------------------------------- databases

struct Db {
    registry: Registry,
    url: String,
    backend: Backend,
    dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn pg_admin_url() -> String {
    std::env::var("QCERT_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn pg_admin() -> sqlx::PgConnection {
    use sqlx::Connection;
    let admin = pg_admin_url();
    sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for the delivery tests and is not reachable at {admin} \
             (set QCERT_TEST_PG_URL to an admin URL): {e}"
        )
    })
}

async fn drop_pg(name: &str) {
    if let Err(e) =
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut pg_admin().await).await
    {
        eprintln!("could not drop test database {name}: {e}");
    }
}

impl Db {
    async fn new(backend: Backend) -> Db {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("q.db").display());
                let registry = Registry::open(&url, 4).await.expect("open SQLite registry");
                Db { registry, url, backend, dir: Some(dir), pg_name: None }
            }
            Backend::Postgres => {
                let name = format!("qcert_t_{}", random_hex(8));
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut pg_admin().await)
                    .await
                    .unwrap_or_else(|e| panic!("cannot create a test database on {}: {e}", pg_admin_url()));
                let mut url = url::Url::parse(&pg_admin_url()).expect("QCERT_TEST_PG_URL is a URL");
                url.set_path(&format!("/{name}"));
                let url = url.to_string();
                let registry = Registry::open(&url, 4).await.expect("open PostgreSQL registry");
                Db { registry, url, backend, dir: None, pg_name: Some(name) }
            }
        }
    }

    /// A pool of our own for looking at (and tampering with) the rows.
    async fn raw(&self) -> sqlx::AnyPool {
        sqlx::AnyPool::connect(&self.url).await.unwrap()
    }

    /// Everything the database holds about deliveries and the audit log, as
    /// bytes: the SQLite files themselves (database, WAL), or PostgreSQL's
    /// text form of every row.
    async fn everything(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                let dir: PathBuf = self.dir.as_ref().unwrap().path().to_path_buf();
                let mut all = Vec::new();
                for entry in std::fs::read_dir(dir).unwrap() {
                    all.extend(std::fs::read(entry.unwrap().path()).unwrap());
                }
                assert!(all.len() > 4096, "the SQLite files were read");
                all
            }
            Backend::Postgres => {
                let pool = self.raw().await;
                let mut all = Vec::new();
                for table in ["secret_deliveries", "audit_log"] {
                    for r in sqlx::query(&format!("SELECT t::text AS t FROM {table} t")).fetch_all(&pool).await.unwrap()
                    {
                        all.extend(r.get::<String, _>("t").into_bytes());
                        all.push(b'\n');
                    }
                }
                pool.close().await;
                all
            }
        }
    }

    async fn cleanup(mut self) {
        self.registry.close().await;
        if let Some(name) = self.pg_name.take() {
            drop_pg(&name).await;
        }
    }
}

impl Drop for Db {
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

/// Run `async fn $name(db: &Db)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_stores {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = super::Db::new(qcert_ca_core::Backend::Sqlite).await;
                super::$name(&db).await;
                db.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = super::Db::new(qcert_ca_core::Backend::Postgres).await;
                super::$name(&db).await;
                db.cleanup().await;
            }
        }
    };
}

// ---------------------------------------------------------------- helpers

const T0: time::OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

fn setup(db: &Db) -> (Deliveries, Arc<FixedClock>, Arc<Vault>) {
    let clock = Arc::new(FixedClock::new(T0));
    let vault = Arc::new(Vault::random());
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    (Deliveries::new(db.registry.clone(), vault.clone(), dyn_clock), clock, vault)
}

fn token_kit() -> KitSecrets {
    KitSecrets::token(&RevocationPassword::generate(), generate_pin(), generate_puk())
}

/// A well-formed code that is not `right`.
fn wrong_code(right: &GenerationCode) -> GenerationCode {
    let shown = right.expose();
    let first = if shown.starts_with('X') { "Y" } else { "X" };
    GenerationCode::parse(&format!("{first}{}", &shown[1..])).unwrap()
}

fn conflict(r: Result<KitSecrets, CaError>) -> String {
    match r {
        Err(CaError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

async fn audit_rows(db: &Db) -> Vec<AuditRow> {
    db.registry.audit_page(0, 10_000).await.unwrap()
}

async fn sealed_is_null(db: &Db, id: &str) -> bool {
    let pool = db.raw().await;
    let r = sqlx::query("SELECT sealed FROM secret_deliveries WHERE id = $1").bind(id).fetch_one(&pool).await.unwrap();
    let sealed: Option<Vec<u8>> = r.get("sealed");
    pool.close().await;
    sealed.is_none()
}

fn officer(role: Role) -> Operator {
    Operator { name: "maria".into(), role }
}

// ---------------------------------------------------------------- tests

async fn shown_once_then_erased(db: &Db) {
    let (deliveries, clock, _) = setup(db);
    let kit = token_kit();
    let (link, code) = deliveries.create("ord-1", Some("0A:1B:2C"), &kit).await.unwrap();
    let token = link.token.expose_secret().clone();
    assert!(token.starts_with("qsd_") && token.len() == 47, "{token}");
    assert_eq!(deliveries.status(&token).await.unwrap(), DeliveryStatus::Pending);

    clock.advance(Duration::hours(5));
    // Typed in lower case without hyphens: the same code.
    let typed = GenerationCode::parse(&code.expose().to_lowercase().replace('-', "")).unwrap();
    let got = deliveries.reveal(&token, &typed).await.unwrap();
    assert!(got == kit, "the secrets come back as sealed");
    assert_eq!(deliveries.status(&token).await.unwrap(), DeliveryStatus::Retrieved);

    let again = conflict(deliveries.reveal(&token, &code).await);
    assert_eq!(again, "already retrieved; the secrets were erased");

    assert!(sealed_is_null(db, &link.id).await, "the sealed secrets are erased from the row");
    let pool = db.raw().await;
    let r = sqlx::query("SELECT retrieved_at, failed_attempts, serial, code_hash FROM secret_deliveries WHERE id = $1")
        .bind(&link.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(r.get::<Option<i64>, _>("retrieved_at"), Some((T0 + Duration::hours(5)).unix_timestamp()));
    assert_eq!(r.get::<i64, _>("failed_attempts"), 0, "a right code gives its attempt back");
    assert_eq!(r.get::<Option<String>, _>("serial").as_deref(), Some("0a1b2c"));
    let desk = qcert_ca_core::desk::DeskSettings::default();
    let cost = format!("$argon2id$v=19$m={},t={},p=1$", desk.argon2_memory_kib, desk.argon2_iterations);
    let code_hash: String = r.get("code_hash");
    assert!(code_hash.starts_with(&cost), "the desk's Argon2id cost: {code_hash}");
    pool.close().await;

    let rows = audit_rows(db).await;
    let actions: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r.actor.as_str(), r.action.as_str(), r.subject.as_str(), r.outcome.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("ca", "delivery.create", "ord-1", "success"),
            ("holder:delivery-link", "delivery.reveal", "ord-1", "success"),
            ("holder:delivery-link", "delivery.reveal", "ord-1", "refused"),
        ]
    );
    assert!(audit::verify(&db.registry).await.unwrap().is_ok());

    // Unknown and malformed links get one answer, without touching anything.
    let unknown = format!("qsd_{}", "A".repeat(43));
    for bad in [unknown.as_str(), "qsd_", "", "../../etc/passwd", &"q".repeat(100_000)] {
        match deliveries.status(bad).await {
            Err(CaError::NotFound(m)) => assert_eq!(m, "unknown delivery link"),
            other => panic!("{other:?}"),
        }
        match deliveries.reveal(bad, &code).await {
            Err(CaError::NotFound(m)) => assert_eq!(m, "unknown delivery link"),
            other => panic!("{other:?}"),
        }
    }
}
on_both_stores!(shown_once_then_erased);

async fn three_wrong_codes_block_for_good(db: &Db) {
    let (deliveries, _, _) = setup(db);
    let kit = token_kit();
    let (link, code) = deliveries.create("ord-2", None, &kit).await.unwrap();
    let token = link.token.expose_secret().clone();
    let wrong = wrong_code(&code);

    for left in ["2 attempts left", "1 attempt left"] {
        match deliveries.reveal(&token, &wrong).await {
            Err(CaError::InvalidInput(m)) => assert!(m.contains(left), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(deliveries.status(&token).await.unwrap(), DeliveryStatus::Pending);
    }
    let third = conflict(deliveries.reveal(&token, &wrong).await);
    assert!(third.contains("blocked") && third.contains("RA officer"), "{third}");
    assert_eq!(deliveries.status(&token).await.unwrap(), DeliveryStatus::Blocked);

    // The right code no longer helps, and does not count further.
    let after = conflict(deliveries.reveal(&token, &code).await);
    assert!(after.contains("blocked"), "{after}");
    let history = deliveries.history(&officer(Role::RaOfficer), "ord-2").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].status, history[0].failed_attempts), (DeliveryStatus::Blocked, MAX_ATTEMPTS));
    assert!(history[0].blocked_at.is_some());

    let rows = audit_rows(db).await;
    let attempts: Vec<&str> =
        rows.iter().filter(|r| r.action == "delivery.attempt").map(|r| r.detail.as_str()).collect();
    assert_eq!(attempts.len(), 3);
    assert!(attempts[2].contains("(3 of 3)"), "{attempts:?}");
    assert_eq!(rows.iter().filter(|r| r.action == "delivery.block").count(), 1);
    assert!(rows.iter().all(|r| r.subject == "ord-2"));

    // An RA officer sends the same secrets under a new link and code.
    assert!(matches!(deliveries.reissue(&officer(Role::HotlineAgent), "ord-2").await, Err(CaError::Forbidden(_))));
    let (link2, code2) = deliveries.reissue(&officer(Role::RaOfficer), "ord-2").await.unwrap();
    let token2 = link2.token.expose_secret().clone();
    assert_ne!(token2, token);
    assert_eq!(deliveries.status(&token).await.unwrap(), DeliveryStatus::Superseded);
    assert!(sealed_is_null(db, &link.id).await, "the blocked delivery's copy is erased");
    assert!(deliveries.reveal(&token2, &code2).await.unwrap() == kit);
    let reissued = audit_rows(db).await.into_iter().find(|r| r.action == "delivery.reissue").unwrap();
    assert_eq!(reissued.actor, "ra-officer:maria");

    match deliveries.reissue(&officer(Role::RaOfficer), "ord-2").await {
        Err(CaError::Conflict(m)) => assert!(m.contains("already retrieved"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(deliveries.reissue(&officer(Role::RaOfficer), "ord-none").await, Err(CaError::NotFound(_))));
}
on_both_stores!(three_wrong_codes_block_for_good);

async fn a_new_delivery_supersedes_the_old_link(db: &Db) {
    let (deliveries, clock, _) = setup(db);
    let old_kit = token_kit();
    let (old, old_code) = deliveries.create("ord-3", None, &old_kit).await.unwrap();
    let other_kit = token_kit();
    let (other, other_code) = deliveries.create("ord-other", None, &other_kit).await.unwrap();

    clock.advance(Duration::days(1));
    let new_kit = KitSecrets::cloud(&RevocationPassword::generate());
    let (new, new_code) = deliveries.create("ord-3", None, &new_kit).await.unwrap();

    let old_token = old.token.expose_secret().clone();
    assert_eq!(deliveries.status(&old_token).await.unwrap(), DeliveryStatus::Superseded);
    let refused = conflict(deliveries.reveal(&old_token, &old_code).await);
    assert!(refused.contains("replaced by a newer one"), "{refused}");
    assert!(sealed_is_null(db, &old.id).await, "superseded secrets are erased");

    assert!(deliveries.reveal(new.token.expose_secret(), &new_code).await.unwrap() == new_kit);
    // Another order's delivery is untouched.
    assert!(deliveries.reveal(other.token.expose_secret(), &other_code).await.unwrap() == other_kit);

    let history = deliveries.history(&officer(Role::RaOfficer), "ord-3").await.unwrap();
    let states: Vec<DeliveryStatus> = history.iter().map(|h| h.status).collect();
    assert_eq!(states, [DeliveryStatus::Superseded, DeliveryStatus::Retrieved]);
    assert_eq!(history[0].superseded_at, Some((T0 + Duration::days(1)).unix_timestamp()));
}
on_both_stores!(a_new_delivery_supersedes_the_old_link);

async fn concurrent_reveals_have_one_winner(db: &Db) {
    let (deliveries, _, _) = setup(db);
    for round in 0..3 {
        let kit = token_kit();
        let order = format!("ord-race-{round}");
        let (link, code) = deliveries.create(&order, None, &kit).await.unwrap();
        let token = link.token.expose_secret().clone();
        let tasks: Vec<_> = (0..2)
            .map(|_| {
                let (d, t, c) = (deliveries.clone(), token.clone(), code.clone());
                tokio::spawn(async move { d.reveal(&t, &c).await })
            })
            .collect();
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(got) => {
                    assert!(got == kit);
                    won += 1;
                }
                Err(CaError::Conflict(m)) => assert!(m.contains("already retrieved"), "{m}"),
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}: exactly one reveal gets the secrets");
        assert!(sealed_is_null(db, &link.id).await);
    }

    // A burst of wrong codes: no more than three are ever checked or counted.
    let (link, code) = deliveries.create("ord-burst", None, &token_kit()).await.unwrap();
    let token = link.token.expose_secret().clone();
    let wrong = wrong_code(&code);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (d, t, c) = (deliveries.clone(), token.clone(), wrong.clone());
            tokio::spawn(async move { d.reveal(&t, &c).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().is_err());
    }
    let history = deliveries.history(&officer(Role::RaOfficer), "ord-burst").await.unwrap();
    assert_eq!((history[0].status, history[0].failed_attempts), (DeliveryStatus::Blocked, MAX_ATTEMPTS));
    let rows = audit_rows(db).await;
    let checked = rows.iter().filter(|r| r.subject == "ord-burst" && r.action == "delivery.attempt").count();
    assert_eq!(checked, 3, "only three codes were checked");
    assert!(conflict(deliveries.reveal(&token, &code).await).contains("blocked"));
}
on_both_stores!(concurrent_reveals_have_one_winner);

async fn nothing_in_clear_in_the_database(db: &Db) {
    let (deliveries, _, _) = setup(db);
    let mut needles: Vec<String> = Vec::new();
    let mut remember = |kit: &KitSecrets, token: &str, code: &GenerationCode| {
        needles.push(kit.revocation_password.clone());
        needles.extend(kit.pin.clone());
        needles.extend(kit.puk.clone());
        needles.push(token.to_owned());
        needles.push(token["qsd_".len()..].to_owned());
        needles.push(code.expose().to_owned());
        needles.push(code.expose().replace('-', ""));
    };
    // One retrieved, one blocked, one pending, one superseded. The PINs
    // have 12 digits here: a 6-digit one turns up by chance in the hex of
    // stored hashes once in a few thousand runs.
    let kits: Vec<KitSecrets> = (0..4)
        .map(|_| KitSecrets::token(&RevocationPassword::generate(), generate_pin() + &generate_pin(), generate_puk()))
        .collect();
    let mut links = Vec::new();
    for (i, kit) in kits.iter().enumerate() {
        let order = if i == 3 { "ord-clear-2".to_owned() } else { format!("ord-clear-{i}") };
        let (link, code) = deliveries.create(&order, None, kit).await.unwrap();
        remember(kit, link.token.expose_secret(), &code);
        links.push((link, code));
    }
    assert!(deliveries.reveal(links[0].0.token.expose_secret(), &links[0].1).await.unwrap() == kits[0]);
    for _ in 0..MAX_ATTEMPTS {
        let _ = deliveries.reveal(links[1].0.token.expose_secret(), &wrong_code(&links[1].1)).await;
    }
    assert_eq!(deliveries.status(links[1].0.token.expose_secret()).await.unwrap(), DeliveryStatus::Blocked);

    let all = db.everything().await;
    let found = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    for needle in &needles {
        assert!(!found(needle.as_bytes()), "{:?} store: a secret, token or code is in clear", db.backend);
    }
    assert!(!found(b"\"revocation_password\""), "the secrets' JSON is in clear");
    assert!(!found(b"\"puk\""), "the secrets' JSON is in clear");
    // The rows are there, just not readable.
    assert!(found(b"ord-clear-2"));
    assert!(found(b"$argon2id$"));
}
on_both_stores!(nothing_in_clear_in_the_database);

async fn sealed_secrets_do_not_open_in_another_row(db: &Db) {
    let (deliveries, _, vault) = setup(db);
    let (a, a_code) = deliveries.create("ord-a", None, &token_kit()).await.unwrap();
    let (b, _) = deliveries.create("ord-b", None, &token_kit()).await.unwrap();

    // The vault itself: another row's associated data does not open.
    let sealed = vault.seal(b"{}", a.id.as_bytes()).unwrap();
    assert!(vault.open(&sealed, a.id.as_bytes()).is_ok());
    assert!(vault.open(&sealed, b.id.as_bytes()).is_err());

    // Someone with write access to the database moves b's secrets into a's row.
    let pool = db.raw().await;
    let b_sealed: Vec<u8> = sqlx::query("SELECT sealed FROM secret_deliveries WHERE id = $1")
        .bind(&b.id)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get("sealed");
    sqlx::query("UPDATE secret_deliveries SET sealed = $1 WHERE id = $2")
        .bind(&b_sealed)
        .bind(&a.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let a_token = a.token.expose_secret().clone();
    match deliveries.reveal(&a_token, &a_code).await {
        Err(CaError::Internal(m)) => assert!(m.contains("does not open"), "{m}"),
        other => panic!("expected the moved secrets to stay shut, got {other:?}"),
    }
    // Nothing was erased or marked retrieved by the failed attempt.
    assert!(!sealed_is_null(db, &a.id).await);
    assert_eq!(deliveries.status(&a_token).await.unwrap(), DeliveryStatus::Pending);
    let failure = audit_rows(db).await.into_iter().find(|r| r.action == "delivery.reveal").unwrap();
    assert_eq!((failure.subject.as_str(), failure.outcome.as_str()), ("ord-a", "failure"));
}
on_both_stores!(sealed_secrets_do_not_open_in_another_row);
