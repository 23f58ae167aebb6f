//! The `spire.api.types.LogLevel` names the `logger` commands of both command lines
//! read and print (logrus's names, as SPIRE's `pkg/common/api/logger`).

use spire_proto::spire::api::types::LogLevel;

/// A `-level` value as logrus's `ParseLevel` reads it, case-insensitively.
pub fn parse_level(value: &str) -> Option<LogLevel> {
    Some(match value.to_ascii_lowercase().as_str() {
        "panic" => LogLevel::Panic,
        "fatal" => LogLevel::Fatal,
        "error" => LogLevel::Error,
        "warn" | "warning" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        "trace" => LogLevel::Trace,
        _ => return None,
    })
}

/// The name logrus prints for a level (`warning` for WARN); `None` for UNSPECIFIED and
/// unknown values.
pub fn level_name(value: i32) -> Option<&'static str> {
    match LogLevel::try_from(value).ok()? {
        LogLevel::Panic => Some("panic"),
        LogLevel::Fatal => Some("fatal"),
        LogLevel::Error => Some("error"),
        LogLevel::Warn => Some("warning"),
        LogLevel::Info => Some("info"),
        LogLevel::Debug => Some("debug"),
        LogLevel::Trace => Some("trace"),
        LogLevel::Unspecified => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in [
            "panic", "fatal", "error", "warning", "info", "debug", "trace",
        ] {
            let level = parse_level(&name.to_uppercase());
            assert_eq!(level.and_then(|l| level_name(l as i32)), Some(name));
        }
        assert_eq!(parse_level("verbose"), None);
        assert_eq!(level_name(0), None);
    }
}
