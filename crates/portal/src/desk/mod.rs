//! The operators' desk: server-rendered pages under `/desk` for RA
//! officers, hotline agents and admins, behind the desk login
//! (`ca-core::desk_login`).

pub mod session;
