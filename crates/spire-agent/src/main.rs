//! The `spire-agent` command line.

fn main() {
    eprintln!("Error: spire-agent is not built yet: only its libraries exist so far");
    std::process::exit(1);
}
