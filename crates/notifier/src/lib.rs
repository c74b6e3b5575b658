//! qcert's notifier: the expiry-reminder scheduler and mail delivery (file
//! outbox by default, SMTP in production) belong here. It sits between
//! `qcert-ca-core` and `qcert-portal` in the dependency order; see
//! ARCHITECTURE.md. The renewal and reminder work fills it.
