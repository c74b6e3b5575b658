//! The registry: every certificate qcert reserved a serial for, and the CA's
//! own keys. All SQL of qcert lives behind this module. The same queries run
//! on SQLite (embedded default, WAL) and PostgreSQL (production), chosen by
//! the URL; migrations are per database in `migrations/{sqlite,postgres}`.

pub mod audit;
pub mod confirmations;
pub mod credentials;
pub mod csc;
pub mod deliveries;
pub mod desk_login;
pub mod limits;
pub mod operators;
pub mod orders;
pub mod outbox;
pub mod renewals;
pub mod retention;
pub mod time_stamps;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

/// A query with its arguments bound, ready to run on either database.
type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Which database a registry runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "database URL must start with sqlite: or postgres:// (got {:?})",
                url.split(':').next().unwrap_or("")
            )))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("serial {0} is already taken")]
    DuplicateSerial(String),
    #[error("a CA key for role {0} is already recorded")]
    CaExists(String),
    #[error("no certificate with serial {0}")]
    NotFound(String),
    #[error("certificate {serial} is {status}, expected reserved")]
    WrongState { serial: String, status: String },
    #[error("a certificate for {0} is already reserved or issued")]
    AlreadyIssuedFor(String),
    #[error("an operator named {0:?} exists or existed; names are not reused")]
    DuplicateOperator(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Kind of certificate in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    RootCa,
    IssuingCa,
    OcspResponder,
    EndEntity,
}

impl CertKind {
    fn as_str(self) -> &'static str {
        match self {
            CertKind::RootCa => "root-ca",
            CertKind::IssuingCa => "issuing-ca",
            CertKind::OcspResponder => "ocsp-responder",
            CertKind::EndEntity => "end-entity",
        }
    }
    fn parse(s: &str) -> Option<CertKind> {
        [CertKind::RootCa, CertKind::IssuingCa, CertKind::OcspResponder, CertKind::EndEntity]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Lifecycle state of a registry row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Serial and TBS stored, not signed (yet, or ever: see `Aborted`).
    Reserved,
    Issued,
    /// Signing failed after the reservation; the serial is burnt.
    Aborted,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CertStatus::Reserved => "reserved",
            CertStatus::Issued => "issued",
            CertStatus::Aborted => "aborted",
        }
    }
    fn parse(s: &str) -> Option<CertStatus> {
        [CertStatus::Reserved, CertStatus::Issued, CertStatus::Aborted].into_iter().find(|k| k.as_str() == s)
    }
}

/// How the public directory is searched.
#[derive(Debug, Clone)]
pub enum DirectoryQuery {
    Email(String),
    Name(String),
}

/// A reservation: everything about a certificate but its signature.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub serial: String,
    pub issuer_serial: Option<String>,
    pub kind: CertKind,
    pub profile: String,
    pub subject_dn: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub email: Option<String>,
    pub country: Option<String>,
    pub semantics_id: Option<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub key_id: String,
    pub hsm_key_label: Option<String>,
    pub tbs_der: Vec<u8>,
    /// The renewal (or order) it is issued for; at most one live certificate per value.
    pub issued_for: Option<String>,
}

/// A registry row: the reservation as stored, its status and, once signed, its DER.
#[derive(Debug, Clone)]
pub struct CertificateRecord {
    pub cert: NewCertificate,
    pub status: CertStatus,
    pub der: Option<Vec<u8>>,
}

/// A CA key recorded by the key ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaKeyRecord {
    pub role: String,
    pub key_label: String,
    pub key_algorithm: String,
    pub certificate_serial: String,
}

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Handle to the registry database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
}

pub(crate) const CERT_COLUMNS: &str =
    "serial, issuer_serial, kind, profile, status, subject_dn, given_name, surname, email, \
     country, semantics_id, not_before, not_after, key_id, hsm_key_label, tbs_der, der, issued_for";

impl Registry {
    /// Connect (creating an SQLite file if needed) and apply pending migrations.
    pub async fn open(url: &str, max_connections: u32) -> Result<Registry, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyPoolOptions::new().max_connections(max_connections.max(1));
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL lets readers run beside the writer; FULL sync puts
                            // every commit (a reservation above all) on disk before
                            // the HSM is asked to sign.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 10000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            Ok(())
                        })
                    })
                    .connect(&sqlite_url(url))
                    .await?
            }
            Backend::Postgres => options.connect(url).await?,
        };
        match backend {
            Backend::Sqlite => SQLITE.run(&pool).await?,
            Backend::Postgres => POSTGRES.run(&pool).await?,
        }
        Ok(Registry { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Close the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Can the database answer?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Store a reservation. Fails with `DuplicateSerial` if the serial exists.
    pub async fn reserve(&self, c: &NewCertificate, now: i64) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO certificates (serial, issuer_serial, kind, profile, status, subject_dn, given_name, surname, \
             email, country, semantics_id, not_before, not_after, key_id, hsm_key_label, tbs_der, der, created_at, updated_at, \
             issued_for, retention_from) \
             VALUES ($1, $2, $3, $4, 'reserved', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, $16, $16, $17, $12)",
        )
        .bind(&c.serial)
        .bind(&c.issuer_serial)
        .bind(c.kind.as_str())
        .bind(&c.profile)
        .bind(&c.subject_dn)
        .bind(&c.given_name)
        .bind(&c.surname)
        .bind(&c.email)
        .bind(&c.country)
        .bind(&c.semantics_id)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(&c.key_id)
        .bind(&c.hsm_key_label)
        .bind(&c.tbs_der)
        .bind(now)
        .bind(&c.issued_for)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() && e.message().contains("issued_for") => {
                Err(StoreError::AlreadyIssuedFor(c.issued_for.clone().unwrap_or_default()))
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::DuplicateSerial(c.serial.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Move a reservation to `issued` with its signed DER.
    pub async fn mark_issued(&self, serial: &str, der: &[u8], now: i64) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE certificates SET status = 'issued', der = $1, updated_at = $2 WHERE serial = $3 AND status = 'reserved'")
            .bind(der)
            .bind(now)
            .bind(serial)
            .execute(&self.pool)
            .await?;
        self.expect_one_reserved(serial, done.rows_affected()).await
    }

    /// Burn a reservation whose signing failed.
    pub async fn mark_aborted(&self, serial: &str, now: i64) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE certificates SET status = 'aborted', updated_at = $1 WHERE serial = $2 AND status = 'reserved'",
        )
        .bind(now)
        .bind(serial)
        .execute(&self.pool)
        .await?;
        self.expect_one_reserved(serial, done.rows_affected()).await
    }

    async fn expect_one_reserved(&self, serial: &str, affected: u64) -> Result<(), StoreError> {
        if affected == 1 {
            return Ok(());
        }
        match self.certificate(serial).await? {
            None => Err(StoreError::NotFound(serial.to_owned())),
            Some(r) => Err(StoreError::WrongState { serial: serial.to_owned(), status: r.status.as_str().to_owned() }),
        }
    }

    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| record(&r)).transpose()
    }

    /// Number of certificates in each status, for health and tests.
    pub async fn count(&self, status: CertStatus) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM certificates WHERE status = $1")
            .bind(status.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Serials of all issued end-entity certificates (for tests and reports).
    pub async fn issued_serials(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial FROM certificates WHERE status = 'issued' AND kind = 'end-entity' ORDER BY serial",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>("serial")?)).collect()
    }

    /// Record a CA key of the ceremony. Each role exists once.
    pub async fn put_ca_key(&self, k: &CaKeyRecord, now: i64) -> Result<(), StoreError> {
        let result = sqlx::query("INSERT INTO ca_keys (role, key_label, key_algorithm, certificate_serial, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&k.role)
            .bind(&k.key_label)
            .bind(&k.key_algorithm)
            .bind(&k.certificate_serial)
            .bind(now)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::CaExists(k.role.clone())),
            Err(e) => Err(e.into()),
        }
    }

    /// Point `k.role` at a new key and certificate (a renewed OCSP
    /// responder); the old certificate stays in `certificates`.
    pub async fn replace_ca_key(&self, k: &CaKeyRecord, now: i64) -> Result<(), StoreError> {
        let result = sqlx::query(
            "UPDATE ca_keys SET key_label = $1, key_algorithm = $2, certificate_serial = $3, created_at = $4 WHERE role = $5",
        )
        .bind(&k.key_label)
        .bind(&k.key_algorithm)
        .bind(&k.certificate_serial)
        .bind(now)
        .bind(&k.role)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(k.role.clone()));
        }
        Ok(())
    }

    pub async fn ca_key(&self, role: &str) -> Result<Option<CaKeyRecord>, StoreError> {
        let row = sqlx::query("SELECT role, key_label, key_algorithm, certificate_serial FROM ca_keys WHERE role = $1")
            .bind(role)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(CaKeyRecord {
                role: r.try_get("role")?,
                key_label: r.try_get("key_label")?,
                key_algorithm: r.try_get("key_algorithm")?,
                certificate_serial: r.try_get("certificate_serial")?,
            })
        })
        .transpose()
    }

    /// Enrol a ceremony officer; false if the name is enrolled already (unchanged).
    pub async fn put_ceremony_officer(
        &self,
        name: &str,
        role: &str,
        verifier: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("INSERT INTO ceremony_officers (name, role, verifier, enrolled_at) VALUES ($1, $2, $3, $4)")
                .bind(name)
                .bind(role)
                .bind(verifier)
                .bind(now)
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The Argon2id verifier of an enrolled ceremony officer.
    pub async fn ceremony_officer_verifier(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT verifier FROM ceremony_officers WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get::<String, _>("verifier")?)).transpose()
    }

    /// Issuing CAs retired by rollovers, oldest first.
    pub async fn retired_issuing_cas(&self) -> Result<Vec<RetiredCa>, StoreError> {
        let rows = sqlx::query(
            "SELECT generation, issuing_serial, issuing_key_label, ocsp_serial, ocsp_key_label \
             FROM retired_issuing_cas ORDER BY generation",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RetiredCa {
                    generation: r.try_get("generation")?,
                    issuing_serial: r.try_get("issuing_serial")?,
                    issuing_key_label: r.try_get("issuing_key_label")?,
                    ocsp_serial: r.try_get("ocsp_serial")?,
                    ocsp_key_label: r.try_get("ocsp_key_label")?,
                })
            })
            .collect()
    }

    /// Rollover, at once: the current issuing CA and its responder become
    /// `retired`, `new_issuing` the current issuing CA (its responder comes
    /// from the next `ocsp-responder` ceremony).
    pub async fn roll_over_issuing(
        &self,
        retired: &RetiredCa,
        new_issuing: &CaKeyRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO retired_issuing_cas (generation, issuing_serial, issuing_key_label, ocsp_serial, ocsp_key_label, retired_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(retired.generation)
        .bind(&retired.issuing_serial)
        .bind(&retired.issuing_key_label)
        .bind(&retired.ocsp_serial)
        .bind(&retired.ocsp_key_label)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM ca_keys WHERE role IN ('issuing', 'ocsp')").execute(&mut *tx).await?;
        sqlx::query("INSERT INTO ca_keys (role, key_label, key_algorithm, certificate_serial, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&new_issuing.role)
            .bind(&new_issuing.key_label)
            .bind(&new_issuing.key_algorithm)
            .bind(&new_issuing.certificate_serial)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Any CA key recorded at all?
    pub async fn has_ca(&self) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM ca_keys").fetch_one(&self.pool).await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}

/// An issuing CA replaced by a rollover, with its OCSP responder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredCa {
    pub generation: i64,
    pub issuing_serial: String,
    pub issuing_key_label: String,
    pub ocsp_serial: String,
    pub ocsp_key_label: String,
}

/// A revocation as stored. Permanent: never updated, never deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRecord {
    pub serial: String,
    /// Serial of the CA certificate whose CRL lists this one.
    pub issuer_serial: String,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
    pub revoked_at: i64,
    pub invalidity_date: Option<i64>,
    pub requested_by: String,
}

/// Revocations read per page when building a CRL.
pub const CRL_PAGE: i64 = 20_000;

/// One CRL entry as read from the registry (borrowed from the page).
#[derive(Debug, Clone, Copy)]
pub struct CrlEntryRow<'a> {
    pub serial_hex: &'a str,
    pub reason: u8,
    pub revoked_at: i64,
    pub invalidity_date: Option<i64>,
}

/// A signed CRL as stored.
#[derive(Debug, Clone)]
pub struct CrlRecord {
    pub issuer_serial: String,
    pub crl_number: i64,
    pub this_update: i64,
    pub next_update: i64,
    pub entries: i64,
    pub der: Vec<u8>,
}

/// What OCSP needs to know of a serial.
#[derive(Debug, Clone)]
pub struct SerialStatus {
    pub issuer_serial: Option<String>,
    pub status: CertStatus,
    pub not_after: i64,
    pub revocation: Option<RevocationRecord>,
}

const REVOCATION_COLUMNS: &str = "serial, issuer_serial, reason, revoked_at, invalidity_date, requested_by";

impl Registry {
    /// Record a revocation of an issued (or reserved: it may have been signed
    /// before a crash) certificate. Idempotent: revoking
    /// again returns the first revocation unchanged, with `false`.
    pub async fn revoke(&self, r: &RevocationRecord) -> Result<(RevocationRecord, bool), StoreError> {
        if let Some(first) = self.revocation(&r.serial).await? {
            return Ok((first, false));
        }
        match self.certificate(&r.serial).await? {
            None => return Err(StoreError::NotFound(r.serial.clone())),
            Some(c) if c.status == CertStatus::Aborted => {
                return Err(StoreError::WrongState { serial: r.serial.clone(), status: c.status.as_str().to_owned() })
            }
            Some(_) => {}
        }
        let result =
            sqlx::query(&format!("INSERT INTO revocations ({REVOCATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
                .bind(&r.serial)
                .bind(&r.issuer_serial)
                .bind(i64::from(r.reason))
                .bind(r.revoked_at)
                .bind(r.invalidity_date)
                .bind(&r.requested_by)
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => {
                // The registration records' retention clock starts when the
                // certificate ceases to be valid (migration 0024).
                sqlx::query("UPDATE certificates SET retention_from = $1 WHERE serial = $2 AND retention_from > $1")
                    .bind(r.revoked_at)
                    .bind(&r.serial)
                    .execute(&self.pool)
                    .await?;
                Ok((r.clone(), true))
            }
            // Somebody else revoked it between our read and our insert: theirs is the first.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                let first = self.revocation(&r.serial).await?.ok_or_else(|| StoreError::NotFound(r.serial.clone()))?;
                Ok((first, false))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn revocation(&self, serial: &str) -> Result<Option<RevocationRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {REVOCATION_COLUMNS} FROM revocations WHERE serial = $1"))
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| revocation_record(&r)).transpose()
    }

    /// Load generator for benchmarks: `n` issued end-entity certificates under
    /// `issuer_serial`, all revoked (keyCompromise, with invalidity date),
    /// made inside the database. Not for production registries.
    #[doc(hidden)]
    pub async fn fill_bench_revocations(&self, issuer_serial: &str, n: i64, now: i64) -> Result<(), StoreError> {
        let BenchSeries { seq: serials, serial, blob, from } = self.bench_series("7f");
        let certs = format!(
            "SELECT {serial}, $2, 'end-entity', 'bench', 'issued', 'CN=bench', $3 - 86400, $3 + 86400, 'bench', {blob}, {blob}, $3, $3 {from}"
        );
        let revs = format!("SELECT {serial}, $2, 1, $3, $3 - 3600, 'bench' {from}");
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "{serials}INSERT INTO certificates (serial, issuer_serial, kind, profile, status, subject_dn, not_before, not_after, key_id, tbs_der, der, created_at, updated_at) {certs}"
        ))
        .bind(n)
        .bind(issuer_serial)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("{serials}INSERT INTO revocations ({REVOCATION_COLUMNS}) {revs}"))
            .bind(n)
            .bind(issuer_serial)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // Planner statistics, as a registry that grew over time would have them.
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    /// Record the holder's consent to list an issued certificate in the public directory.
    pub async fn set_published(&self, serial: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE certificates SET published = 1 WHERE serial = $1 AND status = 'issued' AND kind = 'end-entity'",
        )
        .bind(serial)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound(serial.to_owned()))
        }
    }

    /// Published end-entity certificates by email address (exact, case-insensitive)
    /// or by name (full name or surname, case-insensitive), each with whether
    /// it is revoked. At most `limit`.
    pub async fn find_published(
        &self,
        query: &DirectoryQuery,
        limit: i64,
    ) -> Result<Vec<(CertificateRecord, bool)>, StoreError> {
        let (condition, value) = match query {
            DirectoryQuery::Email(e) => ("lower(email) = lower($1)", e),
            DirectoryQuery::Name(n) => {
                ("(lower(given_name || ' ' || surname) = lower($1) OR lower(surname) = lower($1))", n)
            }
        };
        let rows = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS}, CAST(CASE WHEN EXISTS (SELECT 1 FROM revocations r WHERE r.serial = certificates.serial) \
             THEN 1 ELSE 0 END AS BIGINT) AS revoked FROM certificates WHERE published = 1 AND status = 'issued' \
             AND kind = 'end-entity' AND {condition} ORDER BY not_before DESC LIMIT $2"
        ))
        .bind(value)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((record(r)?, r.try_get::<i64, _>("revoked")? != 0))).collect()
    }

    /// A published end-entity certificate by serial.
    pub async fn published(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1 AND published = 1 AND status = 'issued'"
        ))
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| record(&r)).transpose()
    }

    /// Serials revoked at or after `since` (for other processes' caches).
    pub async fn revoked_since(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT serial, revoked_at FROM revocations WHERE revoked_at >= $1")
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("serial")?, r.try_get("revoked_at")?))).collect()
    }

    /// How many certificates `issuer_serial` has revoked (all stay on its CRL).
    pub async fn revocation_count(&self, issuer_serial: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM revocations WHERE issuer_serial = $1")
            .bind(issuer_serial)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }

    /// Status facts of one serial, in one query (for OCSP).
    pub async fn serial_status(&self, serial: &str) -> Result<Option<SerialStatus>, StoreError> {
        let row = sqlx::query(
            "SELECT c.issuer_serial AS c_issuer, c.status, c.not_after, r.serial, r.issuer_serial, r.reason, r.revoked_at, \
             r.invalidity_date, r.requested_by FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = $1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status")?;
        let revoked: Option<String> = row.try_get("serial")?;
        Ok(Some(SerialStatus {
            issuer_serial: row.try_get("c_issuer")?,
            status: CertStatus::parse(&status).unwrap_or(CertStatus::Aborted),
            not_after: row.try_get("not_after")?,
            revocation: match revoked {
                Some(_) => Some(revocation_record(&row)?),
                None => None,
            },
        }))
    }

    /// The newest CRL of a CA.
    pub async fn latest_crl(&self, issuer_serial: &str) -> Result<Option<CrlRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT issuer_serial, crl_number, this_update, next_update, entries, der FROM crls \
             WHERE issuer_serial = $1 ORDER BY crl_number DESC LIMIT 1",
        )
        .bind(issuer_serial)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(CrlRecord {
                issuer_serial: r.try_get("issuer_serial")?,
                crl_number: r.try_get("crl_number")?,
                this_update: r.try_get("this_update")?,
                next_update: r.try_get("next_update")?,
                entries: r.try_get("entries")?,
                der: r.try_get("der")?,
            })
        })
        .transpose()
    }

    /// Start publishing a CRL for `issuer_serial`: takes the next CRLNumber
    /// and holds it (and the right to publish) until `commit` or drop.
    /// Store a CRL signed elsewhere (an ARL from the offline root's
    /// ceremony) unless one with its number is stored; the counter moves
    /// past its number. True if stored.
    pub async fn import_crl(&self, c: &CrlRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO crls (issuer_serial, crl_number, this_update, next_update, entries, der) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (issuer_serial, crl_number) DO NOTHING",
        )
        .bind(&c.issuer_serial)
        .bind(c.crl_number)
        .bind(c.this_update)
        .bind(c.next_update)
        .bind(c.entries)
        .bind(&c.der)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        sqlx::query(
            "INSERT INTO crl_counters (issuer_serial, last_number) VALUES ($1, $2) ON CONFLICT (issuer_serial) \
             DO UPDATE SET last_number = CASE WHEN crl_counters.last_number < excluded.last_number \
             THEN excluded.last_number ELSE crl_counters.last_number END",
        )
        .bind(&c.issuer_serial)
        .bind(c.crl_number)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted)
    }

    pub async fn begin_crl(&self, issuer_serial: &str) -> Result<CrlPublication, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO crl_counters (issuer_serial, last_number) VALUES ($1, 1) ON CONFLICT (issuer_serial) \
             DO UPDATE SET last_number = crl_counters.last_number + 1 RETURNING last_number",
        )
        .bind(issuer_serial)
        .fetch_one(&mut *tx)
        .await?;
        let number = row.try_get("last_number")?;
        Ok(CrlPublication { tx, issuer_serial: issuer_serial.to_owned(), number, backend: self.backend })
    }
}

/// A CRL being published: its number is taken and other publishers of the
/// same CA wait until this one commits or is dropped (rolled back).
#[derive(Debug)]
pub struct CrlPublication {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    issuer_serial: String,
    number: i64,
    backend: Backend,
}

impl CrlPublication {
    pub fn number(&self) -> i64 {
        self.number
    }

    /// Feed every revocation on this CA's CRL to `each`. Rows come in pages
    /// of [`CRL_PAGE`], each page aggregated into one text value by the
    /// database: per-row driver overhead would otherwise dominate a CRL of a
    /// million entries, and memory holds one page at a time.
    pub async fn for_each_revocation<E>(
        &mut self,
        mut each: impl FnMut(CrlEntryRow<'_>) -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        // serial,reason,revoked_at,invalidity_date; entries separated by ';'.
        let page_query = match self.backend {
            Backend::Sqlite => {
                "SELECT group_concat(serial || ',' || reason || ',' || revoked_at || ',' || COALESCE(invalidity_date, ''), ';') AS page, \
                 MAX(serial) AS last FROM (SELECT * FROM revocations WHERE issuer_serial = $1 AND serial > $2 ORDER BY serial LIMIT $3)"
            }
            Backend::Postgres => {
                "SELECT string_agg(serial || ',' || reason || ',' || revoked_at || ',' || COALESCE(invalidity_date::text, ''), ';') AS page, \
                 MAX(serial) AS last FROM (SELECT * FROM revocations WHERE issuer_serial = $1 AND serial > $2 ORDER BY serial LIMIT $3) AS p"
            }
        };
        let bad = |what: &str| StoreError::Database(sqlx::Error::Decode(format!("revocation page: bad {what}").into()));
        let mut after = String::new();
        loop {
            let row = sqlx::query(page_query)
                .bind(&self.issuer_serial)
                .bind(&after)
                .bind(CRL_PAGE)
                .fetch_one(&mut *self.tx)
                .await?;
            let Some(page) = row.try_get::<Option<String>, _>("page")? else { break };
            for item in page.split(';') {
                let mut f = item.split(',');
                let (Some(serial), Some(reason), Some(at), Some(inv)) = (f.next(), f.next(), f.next(), f.next()) else {
                    return Err(bad("entry"));
                };
                let entry = CrlEntryRow {
                    serial_hex: serial,
                    reason: reason.parse().map_err(|_| bad("reason"))?,
                    revoked_at: at.parse().map_err(|_| bad("revoked_at"))?,
                    invalidity_date: if inv.is_empty() {
                        None
                    } else {
                        Some(inv.parse().map_err(|_| bad("invalidity_date"))?)
                    },
                };
                if let Err(e) = each(entry) {
                    return Ok(Err(e));
                }
            }
            match row.try_get::<Option<String>, _>("last")? {
                Some(last) => after = last,
                None => break,
            }
        }
        Ok(Ok(()))
    }

    /// Store the signed CRL and release the number.
    pub async fn commit(mut self, c: &CrlRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO crls (issuer_serial, crl_number, this_update, next_update, entries, der) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.issuer_serial)
        .bind(c.crl_number)
        .bind(c.this_update)
        .bind(c.next_update)
        .bind(c.entries)
        .bind(&c.der)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }
}

fn revocation_record(r: &AnyRow) -> Result<RevocationRecord, StoreError> {
    let reason: i64 = r.try_get("reason")?;
    Ok(RevocationRecord {
        serial: r.try_get("serial")?,
        issuer_serial: r.try_get("issuer_serial")?,
        reason: u8::try_from(reason)
            .map_err(|_| StoreError::Database(sqlx::Error::Decode("reason out of range".into())))?,
        revoked_at: r.try_get("revoked_at")?,
        invalidity_date: r.try_get("invalidity_date")?,
        requested_by: r.try_get("requested_by")?,
    })
}

/// sqlx's SQLite driver creates the file only with `mode=rwc`.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

pub(crate) fn record(r: &AnyRow) -> Result<CertificateRecord, StoreError> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    let bad = |what: &str, v: &str| StoreError::Database(sqlx::Error::Decode(format!("unknown {what} {v:?}").into()));
    let cert = NewCertificate {
        serial: r.try_get("serial")?,
        issuer_serial: r.try_get("issuer_serial")?,
        kind: CertKind::parse(&kind).ok_or_else(|| bad("kind", &kind))?,
        profile: r.try_get("profile")?,
        subject_dn: r.try_get("subject_dn")?,
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        email: r.try_get("email")?,
        country: r.try_get("country")?,
        semantics_id: r.try_get("semantics_id")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        key_id: r.try_get("key_id")?,
        hsm_key_label: r.try_get("hsm_key_label")?,
        tbs_der: r.try_get("tbs_der")?,
        issued_for: r.try_get("issued_for")?,
    };
    Ok(CertificateRecord {
        cert,
        status: CertStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        der: r.try_get("der")?,
    })
}

/// SQL pieces that make `$1` numbered rows `i` inside the database, for the
/// benchmarks' bulk fills: a row source, a 16-octet hex serial from a
/// 1-octet prefix and `i`, and a one-octet blob.
struct BenchSeries {
    /// A `WITH` clause to put before the statement (SQLite), else empty.
    seq: &'static str,
    serial: String,
    blob: &'static str,
    /// The `FROM` clause of the row source.
    from: &'static str,
}

impl Registry {
    fn bench_series(&self, prefix: &str) -> BenchSeries {
        match self.backend {
            Backend::Sqlite => BenchSeries {
                seq: "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < $1) ",
                serial: format!("printf('{prefix}%030x', i)"),
                blob: "X'00'",
                from: "FROM seq",
            },
            Backend::Postgres => BenchSeries {
                seq: "",
                serial: format!("'{prefix}' || lpad(to_hex(i), 30, '0')"),
                blob: "'\\x00'::bytea",
                from: "FROM generate_series(1, $1::bigint) AS i",
            },
        }
    }

    /// The database's plan for `sql`, one line per plan row (benchmark reports).
    async fn explain(&self, sql: &str) -> Result<String, StoreError> {
        let (explain, column) = match self.backend {
            Backend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
            Backend::Postgres => ("EXPLAIN", "QUERY PLAN"),
        };
        let rows = sqlx::query(&format!("{explain} {sql}")).fetch_all(&self.pool).await?;
        let lines = rows.iter().map(|r| r.try_get::<String, _>(column)).collect::<Result<Vec<_>, _>>()?;
        Ok(lines.join("\n"))
    }
}
