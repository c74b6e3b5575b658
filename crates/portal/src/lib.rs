//! qcert's edge: the HTTP API (axum) and the `qcert` operator binary.
//! HTTP types and problem documents live here and nowhere else.

pub mod api;
pub mod audit_api;
pub mod bench;
pub mod ceremony;
pub mod cli;
pub mod config;
pub mod confirmation_api;
pub mod csc_api;
pub mod desk;
pub mod enroll;
pub mod extract;
pub mod holder_api;
pub mod home;
pub mod http;
pub mod orders_api;
pub(crate) mod pages;
pub mod renewal_api;
pub mod server;
pub mod tsa_api;
pub(crate) mod web;
