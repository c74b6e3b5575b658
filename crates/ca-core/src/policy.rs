//! The CA hierarchy and end-entity profiles, read from the operator's files
//! in `policies/` (see `policies/ca.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use der::asn1::ObjectIdentifier;
use qcert_hsm::KeyAlgorithm;
use serde::Deserialize;
use url::Url;

use crate::error::CaError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaFile {
    organization: Organization,
    root: CaEntry,
    issuing: CaEntry,
    ocsp: CaEntry,
    #[serde(default)]
    crl: Schedule,
    #[serde(default = "Schedule::ocsp_default")]
    ocsp_responses: Schedule,
    profiles: BTreeMap<String, PathBuf>,
    /// Absent in homes made before the TSA existed: `/tsa` then says so.
    tsa: Option<TsaEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TsaEntry {
    policy_oid: String,
    accuracy_seconds: u32,
    key_label: String,
    #[serde(default)]
    include_tsa_name: bool,
}

/// The time-stamping authority's settings (`[tsa]` of ca.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsaPolicy {
    /// TSTInfo policy: the TSA's time-stamp policy (its practice statement).
    pub policy_oid: ObjectIdentifier,
    /// TSTInfo accuracy, whole seconds (1..=60).
    pub accuracy_seconds: u32,
    /// Label of the TSU key on the online token (`qcert ceremony tsa`).
    pub key_label: String,
    /// Whether TSTInfo names the TSU (its certificate's subject).
    pub include_tsa_name: bool,
}

/// How often signed status information is renewed and how long it is valid.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Re-sign after this many minutes (and at once on every revocation).
    pub refresh_minutes: u32,
    /// nextUpdate = thisUpdate + this many hours.
    pub validity_hours: u32,
}

impl Default for Schedule {
    /// CRLs: re-issued every hour, valid 24 h (EN 319 411-1: at least every 24 h).
    fn default() -> Schedule {
        Schedule { refresh_minutes: 60, validity_hours: 24 }
    }
}

impl Schedule {
    /// OCSP answers: valid 24 h, re-signed after 8 h, well before nextUpdate.
    fn ocsp_default() -> Schedule {
        Schedule { refresh_minutes: 8 * 60, validity_hours: 24 }
    }

    pub fn refresh(&self) -> time::Duration {
        time::Duration::minutes(i64::from(self.refresh_minutes))
    }

    pub fn validity(&self) -> time::Duration {
        time::Duration::hours(i64::from(self.validity_hours))
    }
}

/// Issuer attributes shared by every CA certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub country: String,
    pub name: String,
    pub organization_identifier: String,
    /// The CA's own certificate policy OID.
    pub policy_oid: String,
}

/// One key and certificate of the hierarchy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaEntry {
    pub common_name: String,
    pub key_label: String,
    pub key_algorithm: String,
    #[serde(default)]
    pub validity_years: Option<u8>,
    #[serde(default)]
    pub validity_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    policy_oids: Vec<String>,
    allowed_years: Vec<u32>,
    accepted_keys: Vec<String>,
    min_rsa_bits: usize,
    cloud_key_algorithm: String,
    pds: Vec<PdsEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PdsEntry {
    path: String,
    language: String,
    /// The statement, relative to `policies/`; default `pds-<language>.txt`.
    #[serde(default)]
    file: Option<PathBuf>,
}

/// A PKI disclosure statement served at `path` (under `public_base_url`),
/// the URL certificates carry in QcPDS: the operator's file in `policies/`,
/// read on each request so it can be updated in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdsDocument {
    /// Path under the base, e.g. `/pds/en`.
    pub path: String,
    /// ISO 639-1 language.
    pub language: String,
    pub file: PathBuf,
}

impl PdsDocument {
    /// The media type, from the file's extension: `.html`/`.htm`, `.pdf`,
    /// else UTF-8 text.
    pub fn content_type(&self) -> &'static str {
        match self.file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("html" | "htm") => "text/html; charset=utf-8",
            Some("pdf") => "application/pdf",
            _ => "text/plain; charset=utf-8",
        }
    }
}

/// Paths the HTTP API serves itself; a PDS path may not start with one.
const RESERVED_PATHS: [&str; 8] =
    ["/api/", "/certs/", "/crl/", "/ocsp", "/health", "/metrics", "/openapi.json", "/csc/"];

/// A hierarchy entry with its algorithm parsed.
#[derive(Debug, Clone)]
pub struct CaKeySpec {
    pub common_name: String,
    pub key_label: String,
    pub key_algorithm: KeyAlgorithm,
    pub validity: time::Duration,
}

/// An end-entity profile, ready to check requests against.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Key in `[profiles]` of ca.toml, e.g. `qcp-n-qscd`.
    pub id: String,
    /// Display name, e.g. `QCP-n-qscd`.
    pub name: String,
    /// ETSI policy OIDs followed by the CA's own.
    pub policy_oids: Vec<ObjectIdentifier>,
    pub allowed_years: Vec<u32>,
    pub accepted_keys: Vec<KeyAlgorithm>,
    pub min_rsa_bits: usize,
    pub cloud_key_algorithm: KeyAlgorithm,
    /// (https URL, language) of each PKI disclosure statement.
    pub pds: Vec<(String, String)>,
}

/// Everything the CA needs from the policy files and the public URL.
#[derive(Debug, Clone)]
pub struct Policy {
    pub organization: Organization,
    pub ca_policy_oid: ObjectIdentifier,
    pub root: CaKeySpec,
    pub issuing: CaKeySpec,
    pub ocsp: CaKeySpec,
    pub profiles: BTreeMap<String, Profile>,
    pub urls: PublicUrls,
    pub crl: Schedule,
    pub ocsp_responses: Schedule,
    /// Every profile's PKI disclosure statements, one per path.
    pub pds_documents: Vec<PdsDocument>,
    /// The TSA, when ca.toml has a `[tsa]` section.
    pub tsa: Option<TsaPolicy>,
}

/// Whether `host` (a name, an IP address, or a bracketed IPv6 literal as
/// in a URL) names this machine only: `localhost` or a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// URLs written into certificates, all derived from `public_base_url`.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    pub base: Url,
    pub root_cert: String,
    pub issuing_cert: String,
    pub root_crl: String,
    pub issuing_crl: String,
    pub ocsp: String,
}

impl PublicUrls {
    /// Relying parties fetch CRLs, OCSP and CA certificates over plain http
    /// (RFC 5280 4.2.1.13, DOMAIN.md), so the base must be an absolute http(s)
    /// URL without query or fragment.
    pub fn new(base: &str) -> Result<PublicUrls, String> {
        let mut url = Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{base:?} must be an http:// URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(format!("{base:?} must not carry a query, fragment or user"));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        let at = |p: &str| format!("{}{}", url.as_str().trim_end_matches('/'), p);
        Ok(PublicUrls {
            root_cert: at("/certs/root.crt"),
            issuing_cert: at("/certs/issuing.crt"),
            root_crl: at("/crl/root.crl"),
            issuing_crl: at("/crl/issuing.crl"),
            ocsp: at("/ocsp"),
            base: url,
        })
    }

    /// The https form of a path under the base (for QcPDS, which must be https).
    pub fn https(&self, path: &str) -> String {
        let mut url = self.base.clone();
        // Switching between the special schemes http and https always succeeds.
        let _ = url.set_scheme("https");
        format!("{}{}", url.as_str().trim_end_matches('/'), path)
    }
}

impl Policy {
    /// Read `ca.toml` in `dir` and every profile it names.
    pub fn load(dir: &Path, public_base_url: &str) -> Result<Policy, CaError> {
        let ca_path = dir.join("ca.toml");
        let ca: CaFile = read_toml(&ca_path)?;
        let err = |reason: String| CaError::Policy { file: ca_path.display().to_string(), reason };
        let urls = PublicUrls::new(public_base_url)
            .map_err(|r| CaError::Policy { file: "qcert.toml".into(), reason: format!("public_base_url: {r}") })?;
        let ca_policy_oid =
            parse_oid(&ca.organization.policy_oid).map_err(|r| err(format!("organization.policy_oid: {r}")))?;
        for (what, value) in [
            ("country", &ca.organization.country),
            ("name", &ca.organization.name),
            ("organization_identifier", &ca.organization.organization_identifier),
        ] {
            if value.trim().is_empty() {
                return Err(err(format!("organization.{what} must not be empty")));
            }
        }
        if ca.organization.country.len() != 2 || !ca.organization.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err("organization.country must be two upper-case letters".into()));
        }
        let spec = |section: &str, e: &CaEntry| -> Result<CaKeySpec, CaError> {
            let key_algorithm = e.key_algorithm.parse().map_err(|r| err(format!("{section}.key_algorithm: {r}")))?;
            let validity = match (e.validity_years, e.validity_days) {
                (Some(y), None) if (1..=40).contains(&y) => time::Duration::days(365 * i64::from(y) + i64::from(y / 4)),
                (None, Some(d)) if (1..=3650).contains(&d) => time::Duration::days(i64::from(d)),
                _ => {
                    return Err(err(format!(
                        "{section}: set exactly one of validity_years (1..40) or validity_days (1..3650)"
                    )))
                }
            };
            if e.common_name.trim().is_empty() || e.key_label.trim().is_empty() {
                return Err(err(format!("{section}: common_name and key_label must not be empty")));
            }
            Ok(CaKeySpec {
                common_name: e.common_name.clone(),
                key_label: e.key_label.clone(),
                key_algorithm,
                validity,
            })
        };
        let mut profiles = BTreeMap::new();
        let mut pds_documents: Vec<PdsDocument> = Vec::new();
        for (id, file) in &ca.profiles {
            let path = dir.join(file);
            let p: ProfileFile = read_toml(&path)?;
            let perr = |reason: String| CaError::Policy { file: path.display().to_string(), reason };
            let mut policy_oids = p
                .policy_oids
                .iter()
                .map(|o| parse_oid(o).map_err(|r| perr(format!("policy_oids: {r}"))))
                .collect::<Result<Vec<_>, _>>()?;
            policy_oids.push(ca_policy_oid);
            let accepted_keys = p
                .accepted_keys
                .iter()
                .map(|k| k.parse().map_err(|r| perr(format!("accepted_keys: {r}"))))
                .collect::<Result<Vec<KeyAlgorithm>, _>>()?;
            if p.allowed_years.is_empty() || p.allowed_years.iter().any(|y| !(1..=3).contains(y)) {
                return Err(perr("allowed_years must list years between 1 and 3".into()));
            }
            if p.min_rsa_bits < 3072 {
                return Err(perr("min_rsa_bits below 3072 is not allowed for qualified certificates".into()));
            }
            if !p.pds.iter().any(|d| d.language == "en") {
                return Err(perr("pds must include a statement in English (language = \"en\")".into()));
            }
            let pds = p
                .pds
                .iter()
                .map(|d| {
                    if d.language.len() != 2 || !d.language.bytes().all(|b| b.is_ascii_lowercase()) {
                        return Err(perr(format!(
                            "pds language {:?} must be two lower-case letters (ISO 639-1)",
                            d.language
                        )));
                    }
                    let plain = d.path.len() > 1
                        && d.path.starts_with('/')
                        && d.path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
                        && !d.path.split('/').any(|seg| seg == "." || seg == "..");
                    if !plain || RESERVED_PATHS.iter().any(|r| d.path.starts_with(r)) {
                        return Err(perr(format!(
                            "pds path {:?} must start with /, hold only a-z, 0-9, '/', '-', '_', '.', and not be one the API serves",
                            d.path
                        )));
                    }
                    let file = d.file.clone().unwrap_or_else(|| PathBuf::from(format!("pds-{}.txt", d.language)));
                    if file.is_absolute() || file.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                        return Err(perr(format!("pds file {} must be a name inside policies/", file.display())));
                    }
                    let doc = PdsDocument { path: d.path.clone(), language: d.language.clone(), file: dir.join(file) };
                    match pds_documents.iter().find(|o| o.path == doc.path) {
                        Some(o) if *o != doc => {
                            return Err(perr(format!("pds path {:?} is given two different statements", d.path)));
                        }
                        Some(_) => {}
                        None => {
                            if !doc.file.is_file() {
                                tracing::warn!(
                                    path = %doc.path,
                                    file = %doc.file.display(),
                                    "certificates point at this PKI disclosure statement, but its file is missing: it answers 404"
                                );
                            }
                            pds_documents.push(doc);
                        }
                    }
                    Ok((urls.https(&d.path), d.language.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let cloud_key_algorithm =
                p.cloud_key_algorithm.parse().map_err(|r| perr(format!("cloud_key_algorithm: {r}")))?;
            profiles.insert(
                id.clone(),
                Profile {
                    id: id.clone(),
                    name: p.name,
                    policy_oids,
                    allowed_years: p.allowed_years,
                    accepted_keys,
                    min_rsa_bits: p.min_rsa_bits,
                    cloud_key_algorithm,
                    pds,
                },
            );
        }
        for (section, sch) in [("crl", &ca.crl), ("ocsp_responses", &ca.ocsp_responses)] {
            if sch.validity_hours == 0
                || sch.refresh_minutes == 0
                || u64::from(sch.refresh_minutes) >= u64::from(sch.validity_hours) * 60
            {
                return Err(err(format!(
                    "{section}: refresh_minutes must be positive and shorter than validity_hours"
                )));
            }
        }
        let tsa = match &ca.tsa {
            None => None,
            Some(t) => {
                let policy_oid = parse_oid(&t.policy_oid).map_err(|r| err(format!("tsa.policy_oid: {r}")))?;
                if !(1..=60).contains(&t.accuracy_seconds) {
                    return Err(err("tsa.accuracy_seconds must be 1..60".into()));
                }
                if t.key_label.trim().is_empty() {
                    return Err(err("tsa.key_label must not be empty".into()));
                }
                Some(TsaPolicy {
                    policy_oid,
                    accuracy_seconds: t.accuracy_seconds,
                    key_label: t.key_label.clone(),
                    include_tsa_name: t.include_tsa_name,
                })
            }
        };
        Ok(Policy {
            tsa,
            crl: ca.crl,
            ocsp_responses: ca.ocsp_responses,
            root: spec("root", &ca.root)?,
            issuing: spec("issuing", &ca.issuing)?,
            ocsp: spec("ocsp", &ca.ocsp)?,
            organization: ca.organization,
            ca_policy_oid,
            profiles,
            urls,
            pds_documents,
        })
    }

    pub fn profile(&self, id: &str) -> Result<&Profile, CaError> {
        self.profiles.get(id).ok_or_else(|| CaError::UnknownProfile(id.to_owned()))
    }
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, CaError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CaError::Policy { file: path.display().to_string(), reason: e.to_string() })?;
    toml::from_str(&text).map_err(|e| CaError::Policy { file: path.display().to_string(), reason: e.to_string() })
}

fn parse_oid(s: &str) -> Result<ObjectIdentifier, String> {
    // const-oid's parser overflows (and panics in debug builds) on arcs above
    // u32, so check the arcs first.
    if s.split('.').any(|arc| arc.parse::<u32>().is_err()) {
        return Err(format!("{s:?} is not an OID of dotted decimal arcs below 2^32"));
    }
    ObjectIdentifier::new(s).map_err(|e| format!("{s:?} is not an OID: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_policies() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
    }

    #[test]
    fn shipped_policies_load_and_urls_come_from_the_base() {
        let p = Policy::load(&repo_policies(), "http://pki.example.eu/qcert/").unwrap();
        assert_eq!(p.urls.issuing_crl, "http://pki.example.eu/qcert/crl/issuing.crl");
        assert_eq!(p.urls.ocsp, "http://pki.example.eu/qcert/ocsp");
        let prof = p.profile("qcp-n-qscd").unwrap();
        assert_eq!(prof.pds[0].0, "https://pki.example.eu/qcert/pds/en");
        assert_eq!(prof.pds[1].0, "https://pki.example.eu/qcert/pds/ro");
        let langs: Vec<_> = p.pds_documents.iter().map(|d| (d.path.as_str(), d.language.as_str())).collect();
        assert_eq!(langs, [("/pds/en", "en"), ("/pds/ro", "ro")]);
        assert!(p.pds_documents.iter().all(|d| d.file.is_file()), "the shipped statements exist");
        assert_eq!(prof.policy_oids.first().unwrap().to_string(), "0.4.0.194112.1.2");
        assert_eq!(*prof.policy_oids.last().unwrap(), p.ca_policy_oid);
        assert!(matches!(p.profile("nope"), Err(CaError::UnknownProfile(_))));
    }

    #[test]
    fn the_tsa_section_is_optional_and_checked() {
        let p = Policy::load(&repo_policies(), "http://pki.example.eu").unwrap();
        let tsa = p.tsa.unwrap();
        assert_eq!((tsa.accuracy_seconds, tsa.key_label.as_str()), (1, "qcert-tsu-1"));
        let tmp = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(repo_policies()).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
        }
        let ca = std::fs::read_to_string(repo_policies().join("ca.toml")).unwrap();
        let (before, _) = ca.split_once("\n[tsa]").unwrap();
        // A home made before the TSA: loads, without a TSA.
        std::fs::write(tmp.path().join("ca.toml"), before).unwrap();
        assert!(Policy::load(tmp.path(), "http://pki.example.eu").unwrap().tsa.is_none());
        for (bad, named) in [
            ("policy_oid = \"1.2.x\"\naccuracy_seconds = 1\nkey_label = \"k\"", "tsa.policy_oid"),
            ("policy_oid = \"1.2.3\"\naccuracy_seconds = 0\nkey_label = \"k\"", "tsa.accuracy_seconds"),
            ("policy_oid = \"1.2.3\"\naccuracy_seconds = 1\nkey_label = \" \"", "tsa.key_label"),
        ] {
            std::fs::write(tmp.path().join("ca.toml"), format!("{before}\n[tsa]\n{bad}\n")).unwrap();
            let e = Policy::load(tmp.path(), "http://pki.example.eu").unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
        }
    }

    #[test]
    fn oids_with_huge_arcs_are_refused_not_panicked_on() {
        assert!(parse_oid("2.25.329800735698586629295641978511506172918").is_err());
        assert!(parse_oid("1.3.6.1.4.1.x").is_err());
        assert_eq!(parse_oid("0.4.0.194112.1.2").unwrap().to_string(), "0.4.0.194112.1.2");
    }

    #[test]
    fn bad_base_url_names_the_setting() {
        let e = Policy::load(&repo_policies(), "ftp://x").unwrap_err().to_string();
        assert!(e.contains("public_base_url"), "{e}");
    }
}
