//! The spire-rs server: the certificate authority and registry of a trust domain, and the
//! SPIRE server APIs over TCP (mTLS) and the admin Unix socket.
