//! The `spire-agent` command line.

fn main() -> std::process::ExitCode {
    spire_agent::cli::main()
}
