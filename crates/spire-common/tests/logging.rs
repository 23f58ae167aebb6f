//! Log line shapes in both formats, written to a real file.

use spire_common::logging::{self, Level, LogError, LogFormat};

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).expect("read log")
}

#[test]
fn text_format_like_logrus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.log");
    let (dispatch, guard) = logging::build("DEBUG", "text", Some(&path), false).expect("build");
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("catalog", subsystem_name = "catalog");
        let _enter = span.enter();
        tracing::info!(
            plugin_name = "sql",
            plugin_type = "DataStore",
            external = false,
            "Plugin loaded"
        );
        tracing::debug!(count = 3, "Simple");
        tracing::warn!("Warned \"here\"");
        tracing::trace!("not shown");
    });
    let log = read(&path);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    let first = lines[0];
    assert!(first.starts_with("time=\""), "{first}");
    let rest = first.split_once("Z\" ").map(|(_, r)| r).expect("time");
    assert_eq!(
        rest,
        "level=info msg=\"Plugin loaded\" external=false plugin_name=sql plugin_type=DataStore subsystem_name=catalog"
    );
    assert!(
        lines[1].ends_with("level=debug msg=Simple count=3 subsystem_name=catalog"),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].ends_with("level=warning msg=\"Warned \\\"here\\\"\" subsystem_name=catalog"),
        "{}",
        lines[2]
    );
    // time="YYYY-MM-DDTHH:MM:SSZ"
    let time = &first[6..26];
    assert_eq!(time.len(), 20);
    assert_eq!(&time[4..5], "-");
    assert_eq!(&time[10..11], "T");
    assert!(time.ends_with('Z'));

    // Run-time level change.
    guard.set_level(Level::Error).expect("set level");
    assert_eq!(guard.level(), Level::Error);
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::warn!("dropped");
        tracing::error!(error = "boom", "Kept");
    });
    let log = read(&path);
    assert!(!log.contains("dropped"));
    assert!(
        log.lines()
            .last()
            .unwrap_or("")
            .ends_with("level=error msg=Kept error=boom"),
        "{log}"
    );

    // Reopen after rotation writes to a fresh file at the same path.
    std::fs::rename(&path, dir.path().join("server.log.1")).expect("rotate");
    guard.reopen().expect("reopen");
    tracing::dispatcher::with_default(&dispatch, || tracing::error!("after rotation"));
    assert!(read(&path).contains("msg=\"after rotation\""));
}

#[test]
fn json_format_like_logrus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("agent.log");
    let (dispatch, _guard) = logging::build("info", "JSON", Some(&path), true).expect("build");
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(port = 8081_u64, name = "<x&y>", "Starting");
        tracing::debug!("filtered");
    });
    let log = read(&path);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("\\u003cx\\u0026y\\u003e"), "{}", lines[0]);
    let v: serde_json::Value = serde_json::from_str(lines[0]).expect("json");
    assert_eq!(v["level"], "info");
    assert_eq!(v["msg"], "Starting");
    assert_eq!(v["port"], 8081);
    assert_eq!(v["name"], "<x&y>");
    assert!(v["time"].as_str().unwrap_or("").ends_with('Z'));
    assert!(
        v["file"].as_str().unwrap_or("").contains("logging.rs:"),
        "{v}"
    );
    assert!(v["func"].as_str().is_some());
    // Keys are sorted, as Go's encoding/json prints maps.
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(lines[0].starts_with("{\"file\":"), "{}", lines[0]);
}

#[test]
fn levels_and_formats() {
    for (s, l) in [
        ("DEBUG", Level::Debug),
        ("info", Level::Info),
        ("Warn", Level::Warn),
        ("warning", Level::Warn),
        ("ERROR", Level::Error),
        ("fatal", Level::Error),
        ("trace", Level::Trace),
    ] {
        assert_eq!(Level::parse(s).expect(s), l);
    }
    let err = Level::parse("verbose").expect_err("bad level");
    assert_eq!(err.to_string(), "not a valid logrus Level: \"verbose\"");
    assert_eq!(Level::Warn.to_string(), "warning");
    assert_eq!(LogFormat::parse("").expect("empty"), LogFormat::Text);
    assert_eq!(LogFormat::parse("TeXt").expect("text"), LogFormat::Text);
    assert_eq!(LogFormat::parse("json").expect("json"), LogFormat::Json);
    let err = LogFormat::parse("xml").expect_err("bad format");
    assert_eq!(err.to_string(), "unknown logger format: \"xml\"");
    assert!(matches!(
        logging::build(
            "info",
            "text",
            Some(std::path::Path::new("/nonexistent-dir/x.log")),
            false
        ),
        Err(LogError::OpenFile { .. })
    ));
}
