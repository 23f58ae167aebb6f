//! What the spire-rs server and agent share: SPIRE's HCL configuration conventions,
//! Go-style durations and command-line flags, logging, and selectors.
