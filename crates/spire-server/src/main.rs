//! The `spire-server` command line.

fn main() {
    eprintln!("Error: spire-server is not built yet: only its libraries exist so far");
    std::process::exit(1);
}
