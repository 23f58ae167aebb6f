//! Conformance tests for SPIFFE IDs and trust domain names, named by the rule IDs of
//! `spec/conformance.md` §1 (SPIFFE-ID.md) and §8.

use spiffe_core::{IdError, MAX_SPIFFE_ID_LEN, SpiffeId, TrustDomain};

fn ok(s: &str) -> SpiffeId {
    match SpiffeId::parse(s) {
        Ok(id) => id,
        Err(e) => panic!("{s:?} should parse, got: {e}"),
    }
}

fn err(s: &str) -> IdError {
    match SpiffeId::parse(s) {
        Ok(id) => panic!("{s:?} should be rejected, parsed as {id}"),
        Err(e) => e,
    }
}

// ID-01: the scheme is `spiffe`.
#[test]
fn id_01_accepts_spiffe_scheme() {
    let id = ok("spiffe://example.org/workload");
    assert_eq!(id.trust_domain_name(), "example.org");
    assert_eq!(id.path(), "/workload");
    assert_eq!(id.to_string(), "spiffe://example.org/workload");
}

#[test]
fn id_01_rejects_other_or_missing_scheme() {
    for s in [
        "https://example.org/workload",
        "spiffe:/example.org/workload",
        "spiffe:example.org",
        "example.org/workload",
        "s",
        "spiffe",
        "//example.org/x",
    ] {
        assert_eq!(err(s), IdError::WrongScheme, "{s}");
    }
    assert_eq!(err(""), IdError::Empty);
}

// ID-02: the trust domain is non-empty.
#[test]
fn id_02_rejects_empty_trust_domain() {
    assert_eq!(err("spiffe://"), IdError::MissingTrustDomain);
    assert_eq!(err("spiffe:///"), IdError::MissingTrustDomain);
    assert_eq!(err("spiffe:///path"), IdError::MissingTrustDomain);
    assert_eq!(TrustDomain::new(""), Err(IdError::MissingTrustDomain));
}

#[test]
fn id_02_accepts_single_char_trust_domain() {
    assert_eq!(ok("spiffe://a").trust_domain_name(), "a");
}

// ID-03: no query component, not even an empty one.
#[test]
fn id_03_rejects_query() {
    assert_eq!(err("spiffe://example.org/path?"), IdError::Query);
    assert_eq!(err("spiffe://example.org/path?a=b"), IdError::Query);
    assert_eq!(err("spiffe://example.org?a=b"), IdError::Query);
    assert_eq!(err("spiffe://example.org?"), IdError::Query);
}

#[test]
fn id_03_accepts_id_without_query() {
    ok("spiffe://example.org/path/a-b");
}

// ID-04: no fragment component, not even an empty one.
#[test]
fn id_04_rejects_fragment() {
    assert_eq!(err("spiffe://example.org/path#"), IdError::Fragment);
    assert_eq!(err("spiffe://example.org/path#frag"), IdError::Fragment);
    assert_eq!(err("spiffe://example.org#frag"), IdError::Fragment);
}

#[test]
fn id_04_accepts_id_without_fragment() {
    ok("spiffe://example.org/path/frag");
}

// ID-05: no userinfo in the authority.
#[test]
fn id_05_rejects_userinfo() {
    assert_eq!(err("spiffe://user@example.org/path"), IdError::Userinfo);
    assert_eq!(err("spiffe://user:pw@example.org/path"), IdError::Port);
    assert_eq!(err("spiffe://@example.org/path"), IdError::Userinfo);
}

#[test]
fn id_05_accepts_plain_authority() {
    ok("spiffe://example.org/user");
}

// ID-06: no port in the authority, not even a bare `:`.
#[test]
fn id_06_rejects_port() {
    assert_eq!(err("spiffe://example.org:443/path"), IdError::Port);
    assert_eq!(err("spiffe://example.org:/path"), IdError::Port);
    assert_eq!(err("spiffe://example.org:8080"), IdError::Port);
}

#[test]
fn id_06_accepts_authority_without_port() {
    ok("spiffe://example.org/port/443");
}

// ID-07 (and A-1): the trust domain must be lowercase; upper case is refused, never
// normalised, and so is an upper-case scheme.
#[test]
fn id_07_rejects_uppercase_trust_domain() {
    assert_eq!(err("spiffe://Example.org/x"), IdError::UppercaseTrustDomain);
    assert_eq!(err("spiffe://EXAMPLE.ORG"), IdError::UppercaseTrustDomain);
    assert_eq!(
        TrustDomain::new("Example.org"),
        Err(IdError::UppercaseTrustDomain)
    );
}

#[test]
fn id_07_accepts_lowercase_trust_domain() {
    assert_eq!(
        TrustDomain::new("example.org").map(|t| t.to_string()),
        Ok("example.org".into())
    );
}

// ID-21 / A-1: although SPIFFE-ID.md §2.4 calls scheme and trust domain case-insensitive,
// the strict go-spiffe behaviour is followed: `SPIFFE://` is refused, the path keeps case.
#[test]
fn id_21_rejects_uppercase_scheme_and_keeps_path_case() {
    assert_eq!(err("SPIFFE://example.org/x"), IdError::WrongScheme);
    assert_eq!(err("Spiffe://example.org/x"), IdError::WrongScheme);
    assert_eq!(ok("spiffe://example.org/PaTh").path(), "/PaTh");
}

// ID-08: trust domain characters are `a-z 0-9 . - _`. Sweep every byte, as go-spiffe does.
#[test]
fn id_08_trust_domain_charset_sweep() {
    for b in 0u8..=255 {
        let c = b as char;
        let s = format!("spiffe://a{c}b/path");
        let allowed = matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_');
        // `/` ends the trust domain, so `a/b` is a valid ID with trust domain `a`.
        if c == '/' {
            ok(&s);
            continue;
        }
        match SpiffeId::parse(&s) {
            Ok(id) => {
                assert!(allowed, "byte {b:#04x} should be refused in a trust domain");
                assert_eq!(id.trust_domain_name(), format!("a{c}b"));
            }
            Err(_) => assert!(
                !allowed,
                "byte {b:#04x} should be allowed in a trust domain"
            ),
        }
        let td = TrustDomain::new(&format!("a{c}b"));
        assert_eq!(td.is_ok(), allowed, "TrustDomain::new byte {b:#04x}");
    }
}

#[test]
fn id_08_rejects_bad_trust_domain_chars_with_named_char() {
    assert_eq!(
        err("spiffe://exa$mple.org/x"),
        IdError::BadTrustDomainChar('$')
    );
    assert_eq!(
        err("spiffe://exa~mple.org/x"),
        IdError::BadTrustDomainChar('~')
    );
    assert_eq!(err("spiffe://[::1]/x"), IdError::BadTrustDomainChar('['));
}

// ID-09: no percent-encoding in the trust domain.
#[test]
fn id_09_rejects_percent_encoded_trust_domain() {
    assert_eq!(
        err("spiffe://exa%41mple.org/x"),
        IdError::PercentEncodedTrustDomain
    );
    assert_eq!(
        err("spiffe://%65xample.org"),
        IdError::PercentEncodedTrustDomain
    );
}

#[test]
fn id_09_accepts_unencoded_trust_domain() {
    ok("spiffe://example41.org/x");
}

// ID-10: an IPv4 dotted quad is a valid trust domain; IPv6 literals are excluded.
#[test]
fn id_10_accepts_ipv4_rejects_ipv6_literal() {
    assert_eq!(
        ok("spiffe://192.168.1.1/x").trust_domain_name(),
        "192.168.1.1"
    );
    assert!(SpiffeId::parse("spiffe://[2001:db8::1]/x").is_err());
}

// ID-11: names that look like IPs or DNS names are just strings.
#[test]
fn id_11_no_special_treatment_of_ip_or_dns_like_names() {
    for td in [
        "example..org",
        "..",
        "-",
        "256.1.1.1",
        "_",
        ".leading",
        "trailing.",
    ] {
        assert_eq!(
            TrustDomain::new(td).map(|t| t.name().to_owned()),
            Ok(td.to_owned())
        );
        ok(&format!("spiffe://{td}/x"));
    }
}

// ID-12: no percent-encoding in the path.
#[test]
fn id_12_rejects_percent_encoded_path() {
    assert_eq!(
        err("spiffe://example.org/p%41th"),
        IdError::PercentEncodedPath
    );
    assert_eq!(err("spiffe://example.org/%2F"), IdError::PercentEncodedPath);
}

#[test]
fn id_12_accepts_unencoded_path() {
    ok("spiffe://example.org/p41th");
}

// ID-13: no empty path segments.
#[test]
fn id_13_rejects_empty_segments() {
    assert_eq!(err("spiffe://example.org//path"), IdError::EmptySegment);
    assert_eq!(err("spiffe://example.org/a//b"), IdError::EmptySegment);
}

#[test]
fn id_13_accepts_non_empty_segments() {
    assert_eq!(ok("spiffe://example.org/a/b/c").path(), "/a/b/c");
}

// ID-14: no `.` or `..` segments, but `.a`, `..a` and `...` are fine.
#[test]
fn id_14_rejects_dot_segments() {
    for s in [
        "spiffe://example.org/.",
        "spiffe://example.org/..",
        "spiffe://example.org/a/./b",
        "spiffe://example.org/a/../b",
        "spiffe://example.org/a/..",
    ] {
        assert_eq!(err(s), IdError::DotSegment, "{s}");
    }
}

#[test]
fn id_14_accepts_dot_prefixed_segments() {
    for s in [
        "spiffe://example.org/.a",
        "spiffe://example.org/..a",
        "spiffe://example.org/...",
        "spiffe://example.org/a.b/c..",
    ] {
        ok(s);
    }
}

// ID-15: no trailing slash, `spiffe://td/` included.
#[test]
fn id_15_rejects_trailing_slash() {
    assert_eq!(err("spiffe://example.org/"), IdError::TrailingSlash);
    assert_eq!(err("spiffe://example.org/path/"), IdError::TrailingSlash);
}

#[test]
fn id_15_accepts_no_trailing_slash() {
    assert!(ok("spiffe://example.org").is_root());
    assert!(!ok("spiffe://example.org/path").is_root());
}

// ID-16: path characters are `a-z A-Z 0-9 . - _`. Sweep every byte.
#[test]
fn id_16_path_charset_sweep() {
    for b in 0u8..=255 {
        let c = b as char;
        let s = format!("spiffe://example.org/a{c}b");
        let allowed = matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_');
        // `/` separates segments, so `a/b` is two valid segments.
        if c == '/' {
            ok(&s);
            continue;
        }
        let parsed = SpiffeId::parse(&s);
        assert_eq!(parsed.is_ok(), allowed, "path byte {b:#04x}: {parsed:?}");
    }
}

#[test]
fn id_16_rejects_non_ascii_and_reports_char() {
    assert_eq!(
        err("spiffe://example.org/caf\u{e9}"),
        IdError::BadPathChar('\u{e9}')
    );
    assert_eq!(err("spiffe://example.org/a b"), IdError::BadPathChar(' '));
    assert_eq!(err("spiffe://example.org/a:b"), IdError::BadPathChar(':'));
    assert_eq!(err("spiffe://example.org/a@b"), IdError::BadPathChar('@'));
}

// ID-17: the path is optional and may be hierarchical.
#[test]
fn id_17_path_optional_and_hierarchical() {
    assert_eq!(ok("spiffe://example.org").path(), "");
    assert_eq!(
        ok("spiffe://example.org/ns/prod/sa/web").path(),
        "/ns/prod/sa/web"
    );
}

// ID-18: IDs up to 2048 bytes, `spiffe://` included, are accepted.
#[test]
fn id_18_accepts_2048_bytes() {
    let prefix = "spiffe://example.org/";
    let s = format!("{prefix}{}", "a".repeat(MAX_SPIFFE_ID_LEN - prefix.len()));
    assert_eq!(s.len(), 2048);
    ok(&s);
}

// ID-18 / A-2: past 2048 bytes, parsing refuses with the length named.
#[test]
fn id_18_rejects_over_2048_bytes() {
    let prefix = "spiffe://example.org/";
    let s = format!(
        "{prefix}{}",
        "a".repeat(MAX_SPIFFE_ID_LEN + 1 - prefix.len())
    );
    assert_eq!(err(&s), IdError::TooLong { len: 2049 });
}

// ID-19: IDs longer than 2048 bytes are never generated.
#[test]
fn id_19_never_generates_over_2048_bytes() {
    let td = TrustDomain::new("example.org").expect("valid");
    let long = "a".repeat(2030);
    assert_eq!(
        SpiffeId::from_segments(&td, &[&long, "bbbbbbbbbbbbbbbbbbbbbbbbbb"]),
        Err(IdError::TooLong { len: 2078 })
    );
    let fits = "a".repeat(MAX_SPIFFE_ID_LEN - "spiffe://example.org/".len());
    assert_eq!(
        SpiffeId::from_segments(&td, &[&fits]).map(|id| id.as_str().len()),
        Ok(2048)
    );
}

// ID-20 / A-2: trust domain names are at most 255 bytes.
#[test]
fn id_20_trust_domain_max_255_bytes() {
    let max = "a".repeat(255);
    assert!(TrustDomain::new(&max).is_ok());
    ok(&format!("spiffe://{max}/x"));
    let over = "a".repeat(256);
    assert_eq!(
        TrustDomain::new(&over),
        Err(IdError::TrustDomainTooLong { len: 256 })
    );
    assert_eq!(
        err(&format!("spiffe://{over}/x")),
        IdError::TrustDomainTooLong { len: 256 }
    );
}

#[test]
fn trust_domain_parse_accepts_name_or_id() {
    let from_name = TrustDomain::parse("example.org").expect("name");
    let from_id = TrustDomain::parse("spiffe://example.org/some/workload").expect("id");
    assert_eq!(from_name, from_id);
    assert_eq!(from_name.id_string(), "spiffe://example.org");
    assert!(from_name.spiffe_id().is_root());
    assert!(TrustDomain::parse("spiffe://example.org/").is_err());
    assert!(TrustDomain::parse("SPIFFE://example.org").is_err());
}

#[test]
fn builders_validate_paths() {
    let td = TrustDomain::new("example.org").expect("valid");
    assert_eq!(
        SpiffeId::new(&td, "/ns/web").map(|id| id.to_string()),
        Ok("spiffe://example.org/ns/web".into())
    );
    assert_eq!(SpiffeId::new(&td, "ns/web"), Err(IdError::NoLeadingSlash));
    assert_eq!(SpiffeId::new(&td, "/"), Err(IdError::TrailingSlash));
    assert_eq!(
        SpiffeId::from_segments(&td, &[".."]),
        Err(IdError::DotSegment)
    );
    assert_eq!(
        SpiffeId::from_segments(&td, &["a/b"]),
        Err(IdError::BadPathChar('/'))
    );
    assert_eq!(
        SpiffeId::from_segments(&td, &[""]),
        Err(IdError::EmptySegment)
    );
    let id = SpiffeId::from_segments(&td, &["a", "b"]).expect("valid");
    assert!(id.is_member_of(&td));
    assert!(!id.is_member_of(&TrustDomain::new("other.org").expect("valid")));
}

#[test]
fn serde_round_trip_validates() {
    let id: SpiffeId = serde_json::from_str("\"spiffe://example.org/a\"").expect("valid id");
    assert_eq!(
        serde_json::to_string(&id).expect("serialize"),
        "\"spiffe://example.org/a\""
    );
    assert!(serde_json::from_str::<SpiffeId>("\"spiffe://example.org/\"").is_err());
    let td: TrustDomain = serde_json::from_str("\"example.org\"").expect("valid td");
    assert_eq!(td.name(), "example.org");
    assert!(serde_json::from_str::<TrustDomain>("\"Example.org\"").is_err());
}

#[test]
fn errors_read_clearly() {
    assert_eq!(
        err("spiffe://example.org/a//b").to_string(),
        "path cannot contain empty segments"
    );
    assert_eq!(
        err("spiffe://example.org:80").to_string(),
        "SPIFFE ID cannot contain a port"
    );
    assert!(err("http://x").to_string().contains("spiffe://"));
}
