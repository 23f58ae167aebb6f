//! Compiles every `.proto` under `proto/` with protox (pure Rust, no `protoc`)
//! and generates prost messages plus tonic clients and servers into `OUT_DIR`.
//!
//! It also writes `spire_proto_descriptor.bin`, the encoded
//! `FileDescriptorSet` (without source info), for gRPC reflection and tests.

use std::error::Error;
use std::path::{Path, PathBuf};

use prost::Message as _;

const PROTO_ROOT: &str = "proto";

fn main() -> Result<(), Box<dyn Error>> {
    let mut files = Vec::new();
    collect_protos(Path::new(PROTO_ROOT), &mut files)?;
    files.sort();

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }

    // protox reports errors with file/line context; keep them readable.
    let fds = protox::compile(&files, [PROTO_ROOT]).map_err(|e| format!("{e:?}"))?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut stripped = fds.clone();
    for file in &mut stripped.file {
        file.source_code_info = None;
    }
    std::fs::write(
        out_dir.join("spire_proto_descriptor.bin"),
        stripped.encode_to_vec(),
    )?;

    // `prost::Name` impls give every message its type URL, which error
    // details (e.g. `spire.api.types.PermissionDeniedDetails` packed into
    // `google.rpc.Status`) need.
    let mut config = tonic_prost_build::Config::new();
    config
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}

/// Every `*.proto` file below `dir`, recursively.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
