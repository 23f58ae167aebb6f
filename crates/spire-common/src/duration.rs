//! Go-style durations, exactly as SPIRE's configuration and CLI read and print them.
//!
//! SPIRE reads every duration option with Go's `time.ParseDuration` and prints durations
//! with Go's `time.Duration.String()`. This module reproduces both:
//!
//! - [`parse_nanos`] accepts exactly what `time.ParseDuration` accepts: an optional sign,
//!   then one or more `<decimal number><unit>` pairs (`"1h30m"`, `"1.5h"`, `".5s"`,
//!   `"300ms"`), units `ns`, `us`, `µs` (U+00B5), `μs` (U+03BC), `ms`, `s`, `m`, `h`, and
//!   the bare `"0"`. It refuses what humantime would let through: days (`"1d"`), spaces,
//!   a missing unit, and values that overflow Go's `int64` nanoseconds. Error messages are
//!   Go's, e.g. `time: unknown unit "d" in duration "1d"`.
//! - [`parse`] is the same but returns a [`std::time::Duration`], so it refuses negative
//!   values (none of SPIRE's options makes sense negative).
//! - [`format_go`] / [`format_go_nanos`] print like Go: `1h30m0s`, `5m0s`, `300ms`,
//!   `1.5µs`, `0s`.
//!
//! [`GoDuration`] wraps a [`Duration`] with `FromStr`, `Display` and serde support, and
//! the [`serde_go`] / [`serde_go_option`] modules plug into `#[serde(with = ...)]`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use thiserror::Error;

/// Why a string is not a Go duration. The `Display` text is Go's own message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    /// Malformed input or overflow (`time: invalid duration "x"`).
    #[error("time: invalid duration {}", go_quote(.0))]
    Invalid(String),
    /// A number without a unit (`time: missing unit in duration "1"`).
    #[error("time: missing unit in duration {}", go_quote(.0))]
    MissingUnit(String),
    /// A unit Go does not know (`time: unknown unit "d" in duration "1d"`).
    #[error("time: unknown unit {} in duration {}", go_quote(.unit), go_quote(.input))]
    UnknownUnit {
        /// The unit found.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// A valid Go duration below zero where only non-negative ones are accepted.
    #[error("duration {} must not be negative", go_quote(.0))]
    Negative(String),
}

/// Quotes a string the way Go's `time` package does in its errors (`strconv.Quote`-like).
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const NANOSECOND: u64 = 1;
const MICROSECOND: u64 = 1_000 * NANOSECOND;
const MILLISECOND: u64 = 1_000 * MICROSECOND;
const SECOND: u64 = 1_000 * MILLISECOND;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// `1 << 63`, the magnitude limit of Go's `int64` nanoseconds.
const LIMIT: u64 = 1 << 63;

fn unit_value(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => NANOSECOND,
        "us" | "\u{00b5}s" | "\u{03bc}s" => MICROSECOND,
        "ms" => MILLISECOND,
        "s" => SECOND,
        "m" => MINUTE,
        "h" => HOUR,
        _ => return None,
    })
}

/// Consumes leading ASCII digits; `None` on overflow of Go's `int64` range.
fn leading_int(s: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (LIMIT - 1) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > LIMIT {
            return None;
        }
        i += 1;
    }
    Some((x, i))
}

/// Consumes the digits after a decimal point, keeping as many as fit (Go's
/// `leadingFraction`). Returns the value, its scale (10^digits kept) and bytes consumed.
fn leading_fraction(s: &[u8]) -> (u64, f64, usize) {
    let mut x: u64 = 0;
    let mut scale = 1.0_f64;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > (LIMIT - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > LIMIT {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, i)
}

/// Parses a Go duration string into signed nanoseconds, exactly as Go's
/// `time.ParseDuration` does (same accepted inputs, same overflow limits, same errors).
pub fn parse_nanos(input: &str) -> Result<i64, DurationError> {
    let invalid = || DurationError::Invalid(input.to_owned());
    let mut s = input.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let (mut v, n) = leading_int(s).ok_or_else(invalid)?;
        let pre = n > 0;
        s = &s[n..];
        let mut post = false;
        let mut frac: u64 = 0;
        let mut scale = 1.0_f64;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let (f, sc, n) = leading_fraction(s);
            frac = f;
            scale = sc;
            post = n > 0;
            s = &s[n..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(input.to_owned()));
        }
        let unit_bytes = &s[..unit_len];
        s = &s[unit_len..];
        let unit_str = String::from_utf8_lossy(unit_bytes).into_owned();
        let unit = unit_value(&unit_str).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit_str.clone(),
            input: input.to_owned(),
        })?;
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if frac > 0 {
            // Go computes this in float64 and truncates; do the same.
            let add = (frac as f64 * (unit as f64 / scale)) as u64;
            v = v.checked_add(add).ok_or_else(invalid)?;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total = total.checked_add(v).ok_or_else(invalid)?;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        // -(1<<63) is representable.
        return Ok((total as i128).wrapping_neg() as i64);
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(total as i64)
}

/// Parses a non-negative Go duration string into a [`Duration`].
///
/// Same grammar and errors as [`parse_nanos`]; a negative value (`"-5m"`) is refused with
/// [`DurationError::Negative`]. `"-0"` is zero and accepted.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let nanos = parse_nanos(input)?;
    if nanos < 0 {
        return Err(DurationError::Negative(input.to_owned()));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Formats a [`Duration`] as Go's `time.Duration.String()` does: `1h30m0s`, `5m0s`,
/// `300ms`, `1.5µs`, `0s`. Durations beyond Go's range are clamped to its maximum.
pub fn format_go(d: Duration) -> String {
    let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    format_go_nanos(nanos)
}

/// Formats signed nanoseconds as Go's `time.Duration.String()` does.
pub fn format_go_nanos(d: i64) -> String {
    // Built right to left into a fixed buffer, like Go.
    let mut buf = [0u8; 32];
    let mut w = buf.len();
    let neg = d < 0;
    let mut u = d.unsigned_abs();

    if u < SECOND {
        // Special case: less than one second uses smaller units, e.g. 1.2345ms.
        let prec;
        w -= 1;
        buf[w] = b's';
        w -= 1;
        if u == 0 {
            return "0s".to_owned();
        } else if u < MICROSECOND {
            prec = 0;
            buf[w] = b'n';
        } else if u < MILLISECOND {
            prec = 3;
            // U+00B5 'µ' micro sign, UTF-8 0xC2 0xB5.
            w -= 1;
            buf[w..w + 2].copy_from_slice("\u{00b5}".as_bytes());
        } else {
            prec = 6;
            buf[w] = b'm';
        }
        let (nw, nv) = fmt_frac(&mut buf[..w], u, prec);
        w = nw;
        u = nv;
        w = fmt_int(&mut buf[..w], u);
    } else {
        w -= 1;
        buf[w] = b's';
        let (nw, nv) = fmt_frac(&mut buf[..w], u, 9);
        w = nw;
        u = nv;
        // u is now integer seconds.
        w = fmt_int(&mut buf[..w], u % 60);
        u /= 60;
        // u is now integer minutes.
        if u > 0 {
            w -= 1;
            buf[w] = b'm';
            w = fmt_int(&mut buf[..w], u % 60);
            u /= 60;
            // u is now integer hours.
            if u > 0 {
                w -= 1;
                buf[w] = b'h';
                w = fmt_int(&mut buf[..w], u);
            }
        }
    }
    if neg {
        w -= 1;
        buf[w] = b'-';
    }
    String::from_utf8_lossy(&buf[w..]).into_owned()
}

/// Writes the fraction of `v / 10^prec` into the tail of `buf`, omitting trailing zeros
/// and the decimal point when the fraction is zero. Returns the new start index and
/// `v / 10^prec`.
fn fmt_frac(buf: &mut [u8], mut v: u64, prec: usize) -> (usize, u64) {
    let mut w = buf.len();
    let mut print = false;
    for _ in 0..prec {
        let digit = v % 10;
        print = print || digit != 0;
        if print {
            w -= 1;
            buf[w] = digit as u8 + b'0';
        }
        v /= 10;
    }
    if print {
        w -= 1;
        buf[w] = b'.';
    }
    (w, v)
}

/// Writes the decimal digits of `v` into the tail of `buf`, returning the start index.
fn fmt_int(buf: &mut [u8], mut v: u64) -> usize {
    let mut w = buf.len();
    if v == 0 {
        w -= 1;
        buf[w] = b'0';
    } else {
        while v > 0 {
            w -= 1;
            buf[w] = (v % 10) as u8 + b'0';
            v /= 10;
        }
    }
    w
}

/// A non-negative duration read and printed in Go's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    /// The wrapped [`Duration`].
    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl From<Duration> for GoDuration {
    fn from(d: Duration) -> Self {
        GoDuration(d)
    }
}

impl From<GoDuration> for Duration {
    fn from(d: GoDuration) -> Self {
        d.0
    }
}

impl FromStr for GoDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(GoDuration)
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_go(self.0))
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_go(self.0))
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(GoDurationVisitor)
            .map(GoDuration)
    }
}

/// Accepts a Go duration string, or (HCL v1 being weakly typed) an integer, which is read
/// as its decimal text: only `0` passes, as in SPIRE, since any other bare number lacks a
/// unit.
struct GoDurationVisitor;

impl<'de> Visitor<'de> for GoDurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Go duration string such as \"1h30m\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        parse(&v.to_string()).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        parse(&v.to_string()).map_err(E::custom)
    }
}

/// `#[serde(with = "spire_common::duration::serde_go")]` for a [`Duration`] field holding
/// a Go duration string.
pub mod serde_go {
    use super::*;

    /// Deserializes a Go duration string (see [`parse`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_any(GoDurationVisitor)
    }

    /// Serializes as a Go duration string (see [`format_go`]).
    pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_go(*d))
    }
}

/// `#[serde(default, with = "spire_common::duration::serde_go_option")]` for an
/// `Option<Duration>` field; an empty string reads as `None`, as an unset Go string would.
pub mod serde_go_option {
    use super::*;

    /// Deserializes an optional Go duration string; `""` and `null` are `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        struct OptVisitor;
        impl<'de> Visitor<'de> for OptVisitor {
            type Value = Option<Duration>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration string such as \"1h30m\"")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(OptVisitor)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.is_empty() {
                    return Ok(None);
                }
                parse(v).map(Some).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                GoDurationVisitor.visit_i64(v).map(Some)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                GoDurationVisitor.visit_u64(v).map(Some)
            }
        }
        deserializer.deserialize_option(OptVisitor)
    }

    /// Serializes `Some` as a Go duration string and `None` as nothing (`null`).
    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_str(&format_go(*d)),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_parse() {
        assert_eq!(parse("1h").ok(), Some(Duration::from_secs(3600)));
        assert_eq!(parse_nanos("-5m"), Ok(-300_000_000_000));
        assert_eq!(format_go(Duration::from_secs(5400)), "1h30m0s");
    }
}
