//! SPIRE and SPIFFE gRPC contracts: prost messages and tonic clients/servers
//! generated at build time from the `.proto` files in `proto/`.
//!
//! The module tree mirrors the protobuf packages, so a method path such as
//! `/spire.api.server.entry.v1.Entry/BatchCreateEntry` is served by
//! [`spire::api::server::entry::v1::entry_server::EntryServer`], and the
//! package-less Workload API (`/SpiffeWorkloadAPI/FetchX509SVID`) lives in
//! [`workload`].

/// Declares a module holding the generated code of one protobuf package,
/// exempt from the workspace lints that generated code cannot satisfy.
macro_rules! generated_mod {
    ($(#[$doc:meta])* $name:ident => $package:literal) => {
        $(#[$doc])*
        #[allow(
            missing_docs,
            clippy::all,
            clippy::pedantic,
            clippy::nursery,
            clippy::unwrap_used,
            rustdoc::all
        )]
        pub mod $name {
            tonic::include_proto!($package);
        }
    };
}

generated_mod! {
    /// The SPIFFE Workload API (service `SpiffeWorkloadAPI`, no protobuf package).
    workload => "_"
}

/// SPIRE's own APIs.
pub mod spire {
    /// Packages under `spire.api`.
    pub mod api {
        generated_mod! {
            /// `spire.api.types`: messages shared by the server and agent APIs.
            types => "spire.api.types"
        }

        /// The SPIRE server APIs (`spire.api.server.<service>.v1`).
        pub mod server {
            /// Agent management and node attestation.
            pub mod agent {
                generated_mod! {
                    /// `spire.api.server.agent.v1`.
                    v1 => "spire.api.server.agent.v1"
                }
            }

            /// Own and federated trust bundles.
            pub mod bundle {
                generated_mod! {
                    /// `spire.api.server.bundle.v1`.
                    v1 => "spire.api.server.bundle.v1"
                }
            }

            /// Server diagnostics (admin socket only).
            pub mod debug {
                generated_mod! {
                    /// `spire.api.server.debug.v1`.
                    v1 => "spire.api.server.debug.v1"
                }
            }

            /// Registration entries.
            pub mod entry {
                generated_mod! {
                    /// `spire.api.server.entry.v1`.
                    v1 => "spire.api.server.entry.v1"
                }
            }

            /// Local CA / signing key rotation control.
            pub mod localauthority {
                generated_mod! {
                    /// `spire.api.server.localauthority.v1`.
                    v1 => "spire.api.server.localauthority.v1"
                }
            }

            /// Runtime log level (admin socket only).
            pub mod logger {
                generated_mod! {
                    /// `spire.api.server.logger.v1`.
                    v1 => "spire.api.server.logger.v1"
                }
            }

            /// SVID minting.
            pub mod svid {
                generated_mod! {
                    /// `spire.api.server.svid.v1`.
                    v1 => "spire.api.server.svid.v1"
                }
            }

            /// Federation relationships.
            pub mod trustdomain {
                generated_mod! {
                    /// `spire.api.server.trustdomain.v1`.
                    v1 => "spire.api.server.trustdomain.v1"
                }
            }
        }

        /// The SPIRE agent admin-socket APIs under `spire.api.agent`.
        pub mod agent {
            /// Delegated Identity API.
            pub mod delegatedidentity {
                generated_mod! {
                    /// `spire.api.agent.delegatedidentity.v1`.
                    v1 => "spire.api.agent.delegatedidentity.v1"
                }
            }

            /// Agent runtime log level.
            pub mod logger {
                generated_mod! {
                    /// `spire.api.agent.logger.v1`.
                    v1 => "spire.api.agent.logger.v1"
                }
            }
        }
    }

    /// Packages under `spire.agent` (SPIRE's agent Debug API has no `api.`).
    pub mod agent {
        /// Agent diagnostics.
        pub mod debug {
            generated_mod! {
                /// `spire.agent.debug.v1`.
                v1 => "spire.agent.debug.v1"
            }
        }
    }
}

/// spire-rs extensions to the SPIRE APIs, in packages of their own.
pub mod spirers {
    /// Services the spire-rs server adds.
    pub mod server {
        /// Push notification of changes to agents.
        pub mod notify {
            generated_mod! {
                /// `spirers.server.notify.v1`: the `Notify` service.
                v1 => "spirers.server.notify.v1"
            }
        }

        /// Per-SVID revocation of X.509-SVIDs, published as CRLs.
        pub mod revocation {
            generated_mod! {
                /// `spirers.server.revocation.v1`: the `Revocation` service.
                v1 => "spirers.server.revocation.v1"
            }
        }
    }
}

/// gRPC health checking (`grpc.health.v1`), re-exported from `tonic-health`.
pub mod health {
    pub use tonic_health::pb::*;
    pub use tonic_health::server::{HealthReporter, HealthService, health_reporter};
    pub use tonic_health::{ServingStatus, pb::FILE_DESCRIPTOR_SET as HEALTH_FILE_DESCRIPTOR_SET};
}

/// Encoded `google.protobuf.FileDescriptorSet` of every file in this crate
/// (including the well-known types they import), without source info: for
/// gRPC server reflection and descriptor checks.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/spire_proto_descriptor.bin"));
