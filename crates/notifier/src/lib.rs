//! qcert's notifier: mail delivery through a durable outbox.
//!
//! - [`Outbox::enqueue`] renders a [`Template`] (English or Romanian) and
//!   stores the mail in the registry's `outbox` table, once per
//!   `dedupe_key`.
//! - [`Dispatcher`] claims due rows under a lease, sends them through a
//!   [`Transport`] (SMTP in production, `.eml` files on the embedded
//!   default) and records the outcome; failures wait with exponential
//!   backoff ([`DeliveryPolicy`]).
//! - [`OutboxNotices`] implements the CA core's `Notices` seam: a
//!   lifecycle notice becomes an outbox mail.
//!
//! It sits between `qcert-ca-core` (whose store holds the outbox's SQL) and
//! `qcert-portal`; see ARCHITECTURE.md. Time comes from a
//! [`qcert_ca_core::Clock`].

pub mod dispatcher;
pub mod error;
pub mod notices;
pub mod outbox;
pub mod scheduler;
pub mod template;
pub mod transport;

pub use dispatcher::{DeliveryPolicy, DeliveryReport, Dispatcher};
pub use error::MailError;
pub use notices::OutboxNotices;
pub use outbox::{Enqueued, NewMail, Outbox};
pub use qcert_ca_core::store::outbox::OutboxRecord;
pub use scheduler::{Notifier, TickReport};
pub use template::{long_date, render, vars, Language, Rendered, Template};
pub use transport::{message_id, MailConfig, SmtpConfig, SmtpSecurity, Transport, TransportConfig};
