//! qcert's CA core: policies and profiles, issuance through the HSM, the
//! certificate registry (SQLite or PostgreSQL), and the lifecycle rules.
//!
//! Nothing here speaks HTTP or PKCS#11 directly: the HSM is reached through
//! `qcert-hsm`, and SQL stays inside [`store`].

pub mod audit;
pub mod ca;
pub mod ceremony;
pub mod clock;
pub mod cms;
pub mod confirmation;
pub mod conformance;
pub mod crl;
pub mod csc;
pub mod csr;
pub mod delivery;
pub mod desk;
pub mod desk_login;
pub mod error;
pub mod holder;
pub mod notice;
pub mod ocsp;
pub mod operators;
pub mod orders;
pub mod payment;
pub mod policy;
pub mod retention;
pub mod secret_file;
pub mod signer;
pub mod store;
pub mod totp;
pub mod tsa;
pub mod vault;
pub mod x509;

pub use ca::{pem, Ca, CrlScope, Hierarchy, Issued, KeySource, Revocation};
pub use clock::{Clock, FixedClock, SystemClock};
pub use crl::Reason;
pub use error::CaError;
pub use holder::{Holder, ValidityYears};
pub use policy::Policy;
pub use store::{Backend, Registry};
