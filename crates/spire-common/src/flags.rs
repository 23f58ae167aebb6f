//! Go-style single-dash flags (`-config x`, `-socketPath=x`) for clap.
//!
//! SPIRE's command lines use Go's `flag` package: long names with one dash, a value either
//! after `=` or as the next argument. clap reads `-config` as a cluster of short flags, so
//! the arguments are rewritten before clap sees them, and the clap arguments are declared
//! with their Go names: `#[arg(long = "socketPath")]`.
//!
//! # The rewriting rule ([`go_style_args`])
//!
//! - The first argument (the program name) is kept as it is.
//! - An argument `-word` or `-word=value`, where `word` is at least two characters and
//!   starts with an ASCII letter, becomes `--word` / `--word=value`.
//! - Kept as they are: `--anything` (already long), a lone `-` (stdin, e.g. `-data -`), a
//!   single-letter flag such as `-h` (clap's short help), anything not starting with `-`,
//!   and negative numbers such as `-5` or `-1.5` (the character after the dash is not a
//!   letter).
//! - Everything after a lone `--` is kept as it is.
//! - With [`go_style_args_with`], the argument that follows a value-taking flag written
//!   without `=` is always kept as it is, so `-selector -weird:value` keeps its value. Go
//!   reads that next argument as the value whatever it looks like; clap needs
//!   `allow_hyphen_values = true` on such an argument to accept a value starting with `-`.
//!
//! Go's boolean flags also accept `-flag=true` / `-flag=false`. The clap equivalent is
//! `#[arg(long = "expandEnv", num_args = 0..=1, require_equals = true,
//! default_missing_value = "true", action = clap::ArgAction::Set, default_value = "false")]`
//! on a `bool` field.

use std::ffi::{OsStr, OsString};

/// Rewrites Go-style single-dash long flags into clap's double-dash form (see the module
/// documentation for the exact rule). The first element is the program name.
pub fn go_style_args<I, T>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    go_style_args_with(args, |_| false)
}

/// Like [`go_style_args`], but `takes_value(name)` tells which flags (Go name, without
/// dashes) take a value, so that the argument after such a flag written without `=` is
/// passed through untouched even if it starts with a dash.
pub fn go_style_args_with<I, T, F>(args: I, takes_value: F) -> Vec<OsString>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
    F: Fn(&str) -> bool,
{
    let mut out = Vec::new();
    let mut iter = args.into_iter().map(Into::into);
    if let Some(program) = iter.next() {
        out.push(program);
    }
    let mut verbatim_rest = false;
    let mut next_is_value = false;
    for arg in iter {
        if verbatim_rest {
            out.push(arg);
            continue;
        }
        if next_is_value {
            next_is_value = false;
            out.push(arg);
            continue;
        }
        if arg == OsStr::new("--") {
            verbatim_rest = true;
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if let Some(name) = long_flag_name(text) {
            let has_value = text.contains('=');
            if !has_value && takes_value(name) {
                next_is_value = true;
            }
            let mut converted = OsString::from("-");
            converted.push(text);
            out.push(converted);
        } else {
            if let Some(name) = text.strip_prefix("--")
                && !name.is_empty()
                && !name.contains('=')
                && takes_value(name)
            {
                next_is_value = true;
            }
            out.push(arg);
        }
    }
    out
}

/// If `text` is a Go-style single-dash long flag, returns its name (without the dash and
/// any `=value`).
fn long_flag_name(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('-')?;
    if rest.starts_with('-') {
        return None;
    }
    let name = rest.split_once('=').map_or(rest, |(n, _)| n);
    let first = name.chars().next()?;
    if !first.is_ascii_alphabetic() || name.chars().count() < 2 {
        return None;
    }
    Some(name)
}

/// A string flag's value when it was given non-empty: as SPIRE's mergo merge, an empty
/// flag does not override the file.
pub fn given_str(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

/// A path flag's value, as text, when it was given non-empty (see [`given_str`]).
pub fn given_path(v: &Option<std::path::PathBuf>) -> Option<String> {
    v.as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
}
