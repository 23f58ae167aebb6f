//! Logging in SPIRE's formats, over `tracing`.
//!
//! SPIRE logs with logrus. Its two formats are reproduced by one `tracing` layer:
//!
//! - `text` (the default, also selected by an empty format), logrus's `TextFormatter` as
//!   it prints to a file or pipe:
//!   `time="2024-01-01T00:00:00Z" level=info msg="Starting server" addr="127.0.0.1:8081"`.
//!   Keys come in logrus order: `time`, `level`, `msg` (left out when empty), `func` and
//!   `file` (with source location), then the fields sorted by name. A value is quoted (Go
//!   `%q`) unless made only of letters, digits and `-._/@^+`.
//! - `json`, logrus's `JSONFormatter`: one object per line with the keys sorted,
//!   including `time`, `level` and `msg`; `<`, `>` and `&` are escaped as Go does.
//!
//! Levels are logrus's names, case-insensitive: `debug`, `info`, `warn`/`warning`,
//! `error`, plus `trace`, and `fatal`/`panic` (mapped to `error`). Anything else fails
//! with logrus's message, `not a valid logrus Level: "x"`. Levels print as logrus prints
//! them (`warning`, not `warn`). Times are UTC, RFC 3339, whole seconds.
//!
//! Fields of the enclosing spans are included in each line, like logrus entry fields.
//! The level can be changed at run time through [`LogGuard::set_level`] (for the Logger
//! API), and the log file reopened with [`LogGuard::reopen`] (for `SIGUSR2`).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use thiserror::Error;
use time::OffsetDateTime;
use time::macros::format_description;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;

/// Libraries whose internals (HTTP/2 frames, SQL statements, TLS handshakes) SPIRE's log
/// never shows: they log at WARN and above whatever the configured level.
const QUIET_TARGETS: &[&str] = &[
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "sqlx",
    "rustls",
    "tokio_util",
    "mio",
];

/// Logging setup errors.
#[derive(Debug, Error)]
pub enum LogError {
    /// A level logrus does not know.
    #[error("not a valid logrus Level: \"{0}\"")]
    InvalidLevel(String),
    /// A format other than `text` or `json`.
    #[error("unknown logger format: \"{0}\"")]
    InvalidFormat(String),
    /// The log file could not be opened.
    #[error("could not open log file \"{}\": {source}", path.display())]
    OpenFile {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A global subscriber was already installed in this process.
    #[error("could not install the logger: {0}")]
    Install(String),
    /// The level could not be changed.
    #[error("could not change the log level: {0}")]
    Reload(String),
}

/// A log level, with logrus's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `trace`
    Trace,
    /// `debug`
    Debug,
    /// `info`
    Info,
    /// `warning` (configured as `warn` or `warning`)
    Warn,
    /// `error` (also `fatal` and `panic`)
    Error,
}

impl Level {
    /// Parses a level as logrus's `ParseLevel` does, case-insensitively.
    pub fn parse(s: &str) -> Result<Level, LogError> {
        match s.to_ascii_lowercase().as_str() {
            "panic" | "fatal" | "error" => Ok(Level::Error),
            "warn" | "warning" => Ok(Level::Warn),
            "info" => Ok(Level::Info),
            "debug" => Ok(Level::Debug),
            "trace" => Ok(Level::Trace),
            _ => Err(LogError::InvalidLevel(s.to_owned())),
        }
    }

    /// The name logrus prints (`warning` for [`Level::Warn`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }

    /// The equivalent `tracing` level.
    pub fn to_tracing(self) -> tracing::Level {
        match self {
            Level::Trace => tracing::Level::TRACE,
            Level::Debug => tracing::Level::DEBUG,
            Level::Info => tracing::Level::INFO,
            Level::Warn => tracing::Level::WARN,
            Level::Error => tracing::Level::ERROR,
        }
    }

    fn from_tracing(level: &tracing::Level) -> Level {
        match *level {
            tracing::Level::TRACE => Level::Trace,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::INFO => Level::Info,
            tracing::Level::WARN => Level::Warn,
            _ => Level::Error,
        }
    }

    /// The filter for this level: everything logs at the level except the libraries of
    /// [`QUIET_TARGETS`], which log only at WARN and above.
    fn filter(self) -> Targets {
        let level = LevelFilter::from_level(self.to_tracing());
        let quiet = level.min(LevelFilter::WARN);
        QUIET_TARGETS
            .iter()
            .fold(Targets::new().with_default(level), |targets, target| {
                targets.with_target(*target, quiet)
            })
    }
}

impl FromStr for Level {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::parse(s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// logrus text (`key=value` pairs); the default.
    #[default]
    Text,
    /// logrus JSON, one object per line.
    Json,
}

impl LogFormat {
    /// Parses `text`, `json` (case-insensitive) or the empty string (text), as SPIRE's
    /// `log.WithFormat` does.
    pub fn parse(s: &str) -> Result<LogFormat, LogError> {
        match s.to_ascii_uppercase().as_str() {
            "" | "TEXT" => Ok(LogFormat::Text),
            "JSON" => Ok(LogFormat::Json),
            _ => Err(LogError::InvalidFormat(s.to_owned())),
        }
    }
}

impl FromStr for LogFormat {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogFormat::parse(s)
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Where log lines go: standard error, or a file that can be reopened.
#[derive(Clone)]
enum Output {
    Stderr,
    File {
        path: PathBuf,
        file: Arc<Mutex<File>>,
    },
}

fn open_log_file(path: &Path) -> Result<File, LogError> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o640);
    }
    options.open(path).map_err(|source| LogError::OpenFile {
        path: path.to_path_buf(),
        source,
    })
}

impl Output {
    fn write_line(&self, line: &[u8]) {
        // A failed log write has nowhere better to be reported; drop it.
        match self {
            Output::Stderr => {
                let _ = io::stderr().lock().write_all(line);
            }
            Output::File { file, .. } => {
                let mut f = file.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = f.write_all(line);
            }
        }
    }
}

/// Controls the installed logger: change the level at run time, reopen the log file.
#[derive(Clone)]
pub struct LogGuard {
    handle: reload::Handle<Targets, Registry>,
    level: Arc<Mutex<Level>>,
    output: Output,
}

impl fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogGuard")
            .field("level", &self.level())
            .finish_non_exhaustive()
    }
}

impl LogGuard {
    /// The current level.
    pub fn level(&self) -> Level {
        *self.level.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the level; takes effect for all subsequent events.
    pub fn set_level(&self, level: Level) -> Result<(), LogError> {
        self.handle
            .reload(level.filter())
            .map_err(|e| LogError::Reload(e.to_string()))?;
        *self.level.lock().unwrap_or_else(PoisonError::into_inner) = level;
        Ok(())
    }

    /// Reopens the log file (after rotation, on `SIGUSR2`); a no-op when logging to stderr.
    pub fn reopen(&self) -> Result<(), LogError> {
        if let Output::File { path, file } = &self.output {
            let new = open_log_file(path)?;
            *file.lock().unwrap_or_else(PoisonError::into_inner) = new;
        }
        Ok(())
    }

    /// The log file, if logging to one.
    pub fn file(&self) -> Option<&Path> {
        match &self.output {
            Output::Stderr => None,
            Output::File { path, .. } => Some(path),
        }
    }
}

/// Builds a logger without installing it: returns a [`tracing::Dispatch`] (to install with
/// [`tracing::dispatcher::set_global_default`] or use in a scope with
/// [`tracing::dispatcher::with_default`]) and its [`LogGuard`].
///
/// `level` and `format` are SPIRE's `log_level` and `log_format` strings; `file` is
/// `log_file` (standard error when `None`); `source_location` adds `func` and `file`.
pub fn build(
    level: &str,
    format: &str,
    file: Option<&Path>,
    source_location: bool,
) -> Result<(tracing::Dispatch, LogGuard), LogError> {
    let level = Level::parse(level)?;
    let format = LogFormat::parse(format)?;
    let output = match file {
        Some(path) if !path.as_os_str().is_empty() => Output::File {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(open_log_file(path)?)),
        },
        _ => Output::Stderr,
    };
    let (filter, handle) = reload::Layer::new(level.filter());
    let layer = SpireLogLayer {
        format,
        source_location,
        output: output.clone(),
    };
    let subscriber = Registry::default().with(filter).with(layer);
    let guard = LogGuard {
        handle,
        level: Arc::new(Mutex::new(level)),
        output,
    };
    Ok((tracing::Dispatch::new(subscriber), guard))
}

/// Builds the logger (see [`build`]) and installs it as the process-wide default.
pub fn init(
    level: &str,
    format: &str,
    file: Option<&Path>,
    source_location: bool,
) -> Result<LogGuard, LogError> {
    let (dispatch, guard) = build(level, format, file, source_location)?;
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|e| LogError::Install(e.to_string()))?;
    Ok(guard)
}

/// A field value as recorded.
#[derive(Debug, Clone)]
enum FieldValue {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl FieldValue {
    fn text(&self) -> String {
        match self {
            FieldValue::Str(s) => s.clone(),
            FieldValue::I64(v) => v.to_string(),
            FieldValue::U64(v) => v.to_string(),
            FieldValue::F64(v) => v.to_string(),
            FieldValue::Bool(v) => v.to_string(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            FieldValue::Str(s) => serde_json::Value::String(s.clone()),
            FieldValue::I64(v) => serde_json::Value::from(*v),
            FieldValue::U64(v) => serde_json::Value::from(*v),
            FieldValue::F64(v) => serde_json::Number::from_f64(*v).map_or_else(
                || serde_json::Value::String(v.to_string()),
                serde_json::Value::Number,
            ),
            FieldValue::Bool(v) => serde_json::Value::Bool(*v),
        }
    }
}

/// Fields of an event or span, in recording order; `message` kept apart.
#[derive(Debug, Default, Clone)]
struct Fields {
    message: Option<String>,
    values: Vec<(String, FieldValue)>,
}

impl Fields {
    fn set(&mut self, name: &str, value: FieldValue) {
        if name == "message" {
            self.message = Some(value.text());
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        if let Some(slot) = self.values.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else {
            self.values.push((name.to_owned(), value));
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), FieldValue::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), FieldValue::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), FieldValue::Str(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), FieldValue::Str(format!("{value:?}")));
    }
}

/// The layer writing SPIRE-formatted lines.
struct SpireLogLayer {
    format: LogFormat,
    source_location: bool,
    output: Output,
}

impl<S> Layer<S> for SpireLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<Fields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Span fields first (outermost to innermost), then the event's own, later ones
        // overriding earlier ones of the same name, like nested logrus WithFields.
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<Fields>() {
                    for (k, v) in &span_fields.values {
                        fields.set(k, v.clone());
                    }
                }
            }
        }
        event.record(&mut fields);
        let meta = event.metadata();
        let level = Level::from_tracing(meta.level());
        let caller = if self.source_location {
            Some((
                meta.module_path().unwrap_or(meta.target()).to_owned(),
                format!(
                    "{}:{}",
                    meta.file().unwrap_or("?"),
                    meta.line().unwrap_or(0)
                ),
            ))
        } else {
            None
        };
        let line = match self.format {
            LogFormat::Text => format_text(now_rfc3339(), level, &fields, caller),
            LogFormat::Json => format_json(now_rfc3339(), level, &fields, caller),
        };
        self.output.write_line(line.as_bytes());
    }
}

fn now_rfc3339() -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::now_utc()
        .format(&fmt)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Whether logrus's text formatter quotes this value.
fn needs_quoting(text: &str) -> bool {
    !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+'))
}

/// Go's `%q` for a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn push_pair(line: &mut String, key: &str, value: &str) {
    if !line.is_empty() {
        line.push(' ');
    }
    line.push_str(key);
    line.push('=');
    if needs_quoting(value) {
        line.push_str(&go_quote(value));
    } else {
        line.push_str(value);
    }
}

fn format_text(
    time: String,
    level: Level,
    fields: &Fields,
    caller: Option<(String, String)>,
) -> String {
    let mut line = String::new();
    push_pair(&mut line, "time", &time);
    push_pair(&mut line, "level", level.as_str());
    if let Some(msg) = fields.message.as_deref().filter(|m| !m.is_empty()) {
        push_pair(&mut line, "msg", msg);
    }
    if let Some((func, file)) = &caller {
        push_pair(&mut line, "func", func);
        push_pair(&mut line, "file", file);
    }
    let mut sorted: Vec<&(String, FieldValue)> = fields.values.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, v) in sorted {
        // logrus renames data keys that clash with its own ("fields.level").
        let key = if matches!(k.as_str(), "time" | "level" | "msg") {
            format!("fields.{k}")
        } else {
            k.clone()
        };
        push_pair(&mut line, &key, &v.text());
    }
    line.push('\n');
    line
}

fn format_json(
    time: String,
    level: Level,
    fields: &Fields,
    caller: Option<(String, String)>,
) -> String {
    let mut map: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (k, v) in &fields.values {
        let key = if matches!(k.as_str(), "time" | "level" | "msg") {
            format!("fields.{k}")
        } else {
            k.clone()
        };
        map.insert(key, v.json());
    }
    map.insert("time".to_owned(), serde_json::Value::String(time));
    map.insert(
        "level".to_owned(),
        serde_json::Value::String(level.as_str().to_owned()),
    );
    map.insert(
        "msg".to_owned(),
        serde_json::Value::String(fields.message.clone().unwrap_or_default()),
    );
    if let Some((func, file)) = caller {
        map.insert("func".to_owned(), serde_json::Value::String(func));
        map.insert("file".to_owned(), serde_json::Value::String(file));
    }
    let mut line = serde_json::to_string(&map).unwrap_or_default();
    // Go's encoding/json escapes HTML-significant characters by default.
    if line.contains(['<', '>', '&']) {
        line = line
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
    }
    line.push('\n');
    line
}
