//! The spire-rs server: the certificate authority and registry of a trust domain, and the
//! SPIRE server APIs over TCP (mTLS) and the admin Unix socket.

pub mod api;
pub mod attestation;
pub mod authz;
pub mod ca;
pub mod cli;
pub mod config;
pub mod datastore;
pub mod federation;
pub use spire_common::keymanager;
pub mod run;
pub mod upstream;
