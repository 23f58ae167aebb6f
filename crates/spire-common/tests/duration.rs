//! Go duration parsing and formatting, checked against Go's own behaviour.

use std::time::Duration;

use spire_common::duration::{
    self, DurationError, GoDuration, format_go, format_go_nanos, parse, parse_nanos,
};

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const S: i64 = 1_000_000_000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

#[test]
fn parses_what_go_parses() {
    // Table from Go's time package tests (parseDurationTests), plus SPIRE's usual values.
    let cases: &[(&str, i64)] = &[
        ("0", 0),
        ("5s", 5 * S),
        ("30s", 30 * S),
        ("1478s", 1478 * S),
        ("-5s", -5 * S),
        ("+5s", 5 * S),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * S),
        ("5.6s", 5 * S + 600 * MS),
        ("5.s", 5 * S),
        (".5s", 500 * MS),
        ("1.0s", S),
        ("1.00s", S),
        ("1.004s", S + 4 * MS),
        ("1.0040s", S + 4 * MS),
        ("100.00100s", 100 * S + MS),
        ("10ns", 10 * NS),
        ("11us", 11 * US),
        ("12µs", 12 * US),
        ("12μs", 12 * US),
        ("13ms", 13 * MS),
        ("14s", 14 * S),
        ("15m", 15 * M),
        ("16h", 16 * H),
        ("3h30m", 3 * H + 30 * M),
        ("10.5s4m", 4 * M + 10 * S + 500 * MS),
        ("-2m3.4s", -(2 * M + 3 * S + 400 * MS)),
        (
            "1h2m3s4ms5us6ns",
            H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS,
        ),
        ("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS),
        ("52763797000ns", 52763797000 * NS),
        ("0.3333333333333333333h", 20 * M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", i64::MAX),
        ("9223372036854775.807us", i64::MAX),
        ("9223372036s854ms775us807ns", i64::MAX),
        ("-9223372036854775808ns", i64::MIN),
        ("-9223372036854775.808us", i64::MIN),
        ("0.100000000000000000000h", 6 * M),
        ("0.830103483285477580700h", 49 * M + 48 * S + 372539827 * NS),
        ("1h", H),
        ("1h30m", H + 30 * M),
        ("300ms", 300 * MS),
        ("1.5h", H + 30 * M),
        ("720h", 720 * H),
        ("1h0m0s", H),
        ("2s45ms", 2 * S + 45 * MS),
    ];
    for (input, want) in cases {
        assert_eq!(parse_nanos(input), Ok(*want), "parse_nanos({input:?})");
    }
}

#[test]
fn refuses_what_go_refuses_with_gos_messages() {
    let cases: &[(&str, &str)] = &[
        ("", r#"time: invalid duration """#),
        ("3", r#"time: missing unit in duration "3""#),
        ("-", r#"time: invalid duration "-""#),
        ("s", r#"time: invalid duration "s""#),
        (".", r#"time: invalid duration ".""#),
        ("-.", r#"time: invalid duration "-.""#),
        (".s", r#"time: invalid duration ".s""#),
        ("+.s", r#"time: invalid duration "+.s""#),
        ("1d", r#"time: unknown unit "d" in duration "1d""#),
        ("1h 30m", r#"time: unknown unit "h " in duration "1h 30m""#),
        (" 1h", r#"time: invalid duration " 1h""#),
        ("1h ", r#"time: unknown unit "h " in duration "1h ""#),
        ("00", r#"time: missing unit in duration "00""#),
        (
            "9223372036854775808ns",
            r#"time: invalid duration "9223372036854775808ns""#,
        ),
        (
            "9223372036854775.808us",
            r#"time: invalid duration "9223372036854775.808us""#,
        ),
        (
            "9223372036854ms775us808ns",
            r#"time: invalid duration "9223372036854ms775us808ns""#,
        ),
        (
            "-9223372036854775809ns",
            r#"time: invalid duration "-9223372036854775809ns""#,
        ),
        ("3000000h", r#"time: invalid duration "3000000h""#),
        ("1week", r#"time: unknown unit "week" in duration "1week""#),
    ];
    for (input, want) in cases {
        let err = parse_nanos(input).expect_err(input);
        assert_eq!(err.to_string(), *want, "parse_nanos({input:?})");
    }
}

#[test]
fn parse_refuses_negative_but_not_minus_zero() {
    assert_eq!(parse("-5m"), Err(DurationError::Negative("-5m".to_owned())));
    assert_eq!(parse("-0"), Ok(Duration::ZERO));
    assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse("0"), Ok(Duration::ZERO));
}

#[test]
fn formats_like_go() {
    // Table from Go's time package tests (durationTests).
    let cases: &[(i64, &str)] = &[
        (0, "0s"),
        (NS, "1ns"),
        (1100 * NS, "1.1µs"),
        (2200 * US, "2.2ms"),
        (3300 * MS, "3.3s"),
        (4 * M + 5 * S, "4m5s"),
        (4 * M + 5001 * MS, "4m5.001s"),
        (5 * H + 6 * M + 7001 * MS, "5h6m7.001s"),
        (8 * M + NS, "8m0.000000001s"),
        (i64::MAX, "2562047h47m16.854775807s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
        (H + 30 * M, "1h30m0s"),
        (5 * M, "5m0s"),
        (300 * MS, "300ms"),
        (24 * H, "24h0m0s"),
        (-5 * M, "-5m0s"),
        (US, "1µs"),
        (59 * S, "59s"),
    ];
    for (nanos, want) in cases {
        assert_eq!(format_go_nanos(*nanos), *want, "format_go_nanos({nanos})");
    }
    assert_eq!(format_go(Duration::from_secs(5400)), "1h30m0s");
    assert_eq!(format_go(Duration::ZERO), "0s");
    assert_eq!(
        format_go(Duration::from_secs(u64::MAX)),
        "2562047h47m16.854775807s"
    );
}

#[test]
fn round_trips() {
    for s in ["1h0m0s", "5m0s", "300ms", "1.5µs", "72h0m0s", "1m30.5s"] {
        let d = parse(s).expect(s);
        assert_eq!(format_go(d), s);
    }
}

#[test]
fn go_duration_type_and_serde() {
    let d: GoDuration = "1h30m".parse().expect("parse");
    assert_eq!(d.to_string(), "1h30m0s");
    assert_eq!(d.as_duration(), Duration::from_secs(5400));

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Conf {
        #[serde(with = "duration::serde_go")]
        ttl: Duration,
        #[serde(default, with = "duration::serde_go_option")]
        opt: Option<Duration>,
        #[serde(default, with = "duration::serde_go_option")]
        empty: Option<Duration>,
        plain: GoDuration,
        zero: GoDuration,
    }
    let c: Conf =
        serde_json::from_str(r#"{"ttl":"1h","opt":"5m","empty":"","plain":"10s","zero":0}"#)
            .expect("decode");
    assert_eq!(c.ttl, Duration::from_secs(3600));
    assert_eq!(c.opt, Some(Duration::from_secs(300)));
    assert_eq!(c.empty, None);
    assert_eq!(c.plain.0, Duration::from_secs(10));
    assert_eq!(c.zero.0, Duration::ZERO);
    let json = serde_json::to_string(&c).expect("encode");
    assert!(json.contains(r#""ttl":"1h0m0s""#), "{json}");

    let bad = serde_json::from_str::<Conf>(r#"{"ttl":"1d","plain":"1s","zero":"0"}"#)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        bad.contains(r#"time: unknown unit "d" in duration "1d""#),
        "{bad}"
    );
    let bad = serde_json::from_str::<Conf>(r#"{"ttl":5,"plain":"1s","zero":"0"}"#)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(bad.contains("missing unit"), "{bad}");
}
