//! The `spire-server` command line.

fn main() -> std::process::ExitCode {
    spire_server::cli::main()
}
