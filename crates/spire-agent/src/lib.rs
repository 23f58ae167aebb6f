//! The spire-rs agent: attests its node to the server, keeps workload SVIDs and bundles in
//! a cache, and serves them to attested workloads over the SPIFFE Workload API.

pub mod attestation;
pub mod cli;
pub mod client;
pub mod config;
pub mod endpoints;
pub mod manager;
pub mod run;
pub mod storage;
pub mod workload;
