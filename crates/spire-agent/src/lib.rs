//! The spire-rs agent: attests its node to the server, keeps workload SVIDs and bundles in
//! a cache, and serves them to attested workloads over the SPIFFE Workload API.
