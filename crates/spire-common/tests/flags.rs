//! Go-style flags through clap.

use std::ffi::OsString;

use clap::{ArgAction, Parser};
use spire_common::flags::{go_style_args, go_style_args_with};

fn strings(v: Vec<OsString>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.into_string().expect("utf8"))
        .collect()
}

#[test]
fn rewriting_rule() {
    let out = strings(go_style_args([
        "spire-server",
        "run",
        "-config",
        "conf/server/server.conf",
        "-socketPath=/tmp/x.sock",
        "--already",
        "-",
        "-h",
        "-5",
        "-1.5",
        "positional",
        "--",
        "-notconverted",
    ]));
    assert_eq!(
        out,
        [
            "spire-server",
            "run",
            "--config",
            "conf/server/server.conf",
            "--socketPath=/tmp/x.sock",
            "--already",
            "-",
            "-h",
            "-5",
            "-1.5",
            "positional",
            "--",
            "-notconverted",
        ]
    );
    // The program name is never touched.
    assert_eq!(
        strings(go_style_args(["-weird-name", "-x"])),
        ["-weird-name", "-x"]
    );
}

#[test]
fn values_after_value_flags_are_kept() {
    let takes_value = |name: &str| matches!(name, "selector" | "spiffeID");
    let out = strings(go_style_args_with(
        [
            "bin",
            "-selector",
            "-odd:value",
            "-spiffeID",
            "spiffe://x/y",
            "-node",
        ],
        takes_value,
    ));
    assert_eq!(
        out,
        [
            "bin",
            "--selector",
            "-odd:value",
            "--spiffeID",
            "spiffe://x/y",
            "--node"
        ]
    );
    // With `=` the next argument is a new flag.
    let out = strings(go_style_args_with(
        ["bin", "-selector=a:b", "-node"],
        takes_value,
    ));
    assert_eq!(out, ["bin", "--selector=a:b", "--node"]);
}

#[derive(Parser, Debug)]
#[command(name = "spire-agent")]
struct Cli {
    #[arg(
        long = "socketPath",
        default_value = "/tmp/spire-agent/public/api.sock"
    )]
    socket_path: String,
    #[arg(long = "config")]
    config: Option<String>,
    #[arg(long = "selector", allow_hyphen_values = true)]
    selector: Vec<String>,
    #[arg(long = "timeout", allow_negative_numbers = true)]
    timeout: Option<i64>,
    #[arg(
        long = "expandEnv",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value = "false",
        action = ArgAction::Set
    )]
    expand_env: bool,
}

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let takes_value = |name: &str| matches!(name, "socketPath" | "config" | "selector" | "timeout");
    Cli::try_parse_from(go_style_args_with(args.iter().copied(), takes_value))
}

#[test]
fn clap_reads_go_style_flags() {
    let cli = parse(&[
        "spire-agent",
        "-socketPath",
        "/run/a.sock",
        "-config=x.conf",
    ])
    .expect("parse");
    assert_eq!(cli.socket_path, "/run/a.sock");
    assert_eq!(cli.config.as_deref(), Some("x.conf"));
    assert!(!cli.expand_env);

    let cli = parse(&[
        "spire-agent",
        "-selector",
        "unix:uid:0",
        "-selector=k8s:ns:x",
        "-expandEnv",
    ])
    .expect("parse");
    assert_eq!(cli.selector, ["unix:uid:0", "k8s:ns:x"]);
    assert!(cli.expand_env);
    assert_eq!(cli.socket_path, "/tmp/spire-agent/public/api.sock");

    let cli = parse(&["spire-agent", "-expandEnv=false", "-timeout", "-5"]).expect("parse");
    assert!(!cli.expand_env);
    assert_eq!(cli.timeout, Some(-5));

    let cli = parse(&["spire-agent", "-expandEnv=true", "-selector", "-odd:v"]).expect("parse");
    assert!(cli.expand_env);
    assert_eq!(cli.selector, ["-odd:v"]);

    // Double-dash spellings keep working.
    let cli = parse(&["spire-agent", "--socketPath", "/x"]).expect("parse");
    assert_eq!(cli.socket_path, "/x");

    // Unknown flags are still errors.
    assert!(parse(&["spire-agent", "-nope"]).is_err());
    // Single-letter -h reaches clap as help.
    let err = parse(&["spire-agent", "-h"]).expect_err("help");
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
}
