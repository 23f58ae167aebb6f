//! JWT-SVIDs end to end over real sockets: a running server and agent, the independent
//! `spiffe` crate fetching tokens and JWT bundles, validation both locally (spiffe-core
//! against the fetched bundle) and through `ValidateJWTSVID`, the agent's JWT cache, and
//! the `api fetch jwt` / `api validate jwt` command lines.

use std::time::{Duration, SystemTime};

use spiffe_core::{JwtBundle, JwtSvid, TrustDomain};
use spire_e2e::workload::{retry, with_header, workload_client};
use spire_e2e::{Quickstart, stderr, stdout};
use spire_proto::workload::{JwtsvidRequest, ValidateJwtsvidRequest};
use tonic::Code;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const AGENT_ID: &str = "spiffe://example.org/myagent";
const WORKLOAD_ID: &str = "spiffe://example.org/jwt-workload";

#[tokio::test(flavor = "multi_thread")]
async fn jwt_svids_end_to_end() -> TestResult {
    let qs = Quickstart::start("");
    let (_agent, socket) = qs.start_attested_agent(AGENT_ID);
    qs.create_uid_entry(AGENT_ID, WORKLOAD_ID, &["-hint", "jwt-hint"]);

    // The independent spiffe crate fetches a token once the entry reached the agent.
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", socket.display())).await?;
    let svid = retry(Duration::from_secs(30), || {
        client.fetch_jwt_svid(["aud-a", "aud-b"], None)
    })
    .await
    .map_err(|e| format!("no JWT-SVID in time: {e}"))?;
    assert_eq!(svid.spiffe_id().to_string(), WORKLOAD_ID);
    let mut audience = svid.audience().to_vec();
    audience.sort();
    assert_eq!(audience, ["aud-a", "aud-b"]);
    let token = svid.token().to_owned();

    // The JWT bundle, fetched by the spiffe crate, validates the token with spiffe-core.
    let bundles = client.fetch_jwt_bundles().await?;
    let fetched = bundles
        .get(&spiffe::TrustDomain::new("example.org")?)
        .ok_or("no JWT bundle for example.org")?;
    let keys: Vec<String> = fetched
        .jwt_authorities()
        .map(|a| String::from_utf8_lossy(a.jwk_json()).into_owned())
        .collect();
    assert!(!keys.is_empty(), "the JWT bundle has no keys");
    let jwks = format!("{{\"keys\":[{}]}}", keys.join(","));
    let td = TrustDomain::new("example.org")?;
    let bundle = JwtBundle::parse_jwks(td, jwks.as_bytes())?;
    let validated = JwtSvid::parse_and_validate(&token, &bundle, &["aud-a"], SystemTime::now())?;
    assert_eq!(validated.spiffe_id().as_str(), WORKLOAD_ID);

    // The agent's cache serves the same token again (same audiences, any order).
    let again = client.fetch_jwt_svid(["aud-b", "aud-a"], None).await?;
    assert_eq!(
        again.token(),
        token,
        "the JWT cache must serve the same token"
    );

    // ValidateJWTSVID through the spiffe crate and our raw client.
    let checked = client.validate_jwt_token("aud-a", &token).await?;
    assert_eq!(checked.spiffe_id().to_string(), WORKLOAD_ID);
    let mut raw = workload_client(&socket)?;
    let response = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "aud-b".into(),
            svid: token.clone(),
        }))
        .await?
        .into_inner();
    assert_eq!(response.spiffe_id, WORKLOAD_ID);
    let claims = response.claims.ok_or("no claims")?;
    for claim in ["sub", "aud", "exp", "iat"] {
        assert!(claims.fields.contains_key(claim), "claim {claim} missing");
    }
    let wrong = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "someone-else".into(),
            svid: token.clone(),
        }))
        .await
        .err()
        .ok_or("a wrong audience was accepted")?;
    assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    let garbage = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "aud-a".into(),
            svid: "not-a-token".into(),
        }))
        .await
        .err()
        .ok_or("garbage was accepted")?;
    assert_eq!(garbage.code(), Code::InvalidArgument, "{garbage:?}");

    // The raw response carries the hint; a spiffe_id filter for another ID is refused.
    let response = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["aud-a".into()],
            spiffe_id: WORKLOAD_ID.into(),
        }))
        .await?
        .into_inner();
    assert_eq!(response.svids.len(), 1);
    assert_eq!(response.svids[0].hint, "jwt-hint");
    let denied = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["aud-a".into()],
            spiffe_id: "spiffe://example.org/not-mine".into(),
        }))
        .await
        .err()
        .ok_or("a foreign SPIFFE ID was served")?;
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(denied.message(), "no identity issued");
    let no_audience = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: Vec::new(),
            spiffe_id: String::new(),
        }))
        .await
        .err()
        .ok_or("no audience was accepted")?;
    assert_eq!(no_audience.code(), Code::InvalidArgument);

    // The command lines.
    let out = qs.agent_cli(
        &socket,
        &["api", "fetch", "jwt", "-audience", "aud-a,aud-b"],
    );
    assert!(out.status.success(), "api fetch jwt: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("token({WORKLOAD_ID}):\n\t{token}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("hint({WORKLOAD_ID}):\n\tjwt-hint\n")),
        "{text}"
    );
    assert!(
        text.contains("bundle(spiffe://example.org):\n\t{\"keys\":["),
        "{text}"
    );

    // `-output json`: SPIRE's protojson (proto field names, defaults emitted).
    let out = qs.agent_cli(
        &socket,
        &[
            "api",
            "fetch",
            "jwt",
            "-audience",
            "aud-a",
            "-output",
            "json",
        ],
    );
    assert!(out.status.success(), "api fetch jwt json: {}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(json[0]["svids"][0]["spiffe_id"], WORKLOAD_ID, "{json}");
    assert_eq!(json[0]["svids"][0]["hint"], "jwt-hint", "{json}");
    assert!(json[0]["svids"][0]["svid"].is_string(), "{json}");
    assert!(
        json[1]["bundles"]["spiffe://example.org"].is_string(),
        "{json}"
    );
    let out = qs.agent_cli(&socket, &["api", "fetch", "x509", "-output", "json"]);
    assert!(
        out.status.success(),
        "api fetch x509 json: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(json["svids"][0]["spiffe_id"], WORKLOAD_ID, "{json}");
    let der = json["svids"][0]["x509_svid"].as_str().unwrap_or_default();
    assert!(
        !der.is_empty()
            && der
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')),
        "{json}"
    );
    // SPIRE prints `"crl": []`; spire-rs always serves the CA's CRL (docs/revocation.md).
    assert_eq!(json["crl"].as_array().map(Vec::len), Some(1), "{json}");
    assert_eq!(json["federated_bundles"], serde_json::json!({}), "{json}");

    let out = qs.agent_cli(&socket, &["api", "fetch", "jwt"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("audience must be specified"),
        "{}",
        stderr(&out)
    );

    let out = qs.agent_cli(
        &socket,
        &[
            "api",
            "validate",
            "jwt",
            "-audience",
            "aud-a",
            "-svid",
            &token,
        ],
    );
    assert!(out.status.success(), "api validate jwt: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"SVID is valid."), "{text}");
    assert_eq!(
        lines.get(1).copied(),
        Some(format!("SPIFFE ID : {WORKLOAD_ID}").as_str())
    );
    let claims = lines
        .get(2)
        .and_then(|l| l.strip_prefix("Claims    : "))
        .ok_or("no claims line")?;
    let claims: serde_json::Value = serde_json::from_str(claims)?;
    assert_eq!(claims["sub"], WORKLOAD_ID);
    assert_eq!(claims["aud"], serde_json::json!(["aud-a", "aud-b"]));

    let out = qs.agent_cli(
        &socket,
        &[
            "api",
            "validate",
            "jwt",
            "-audience",
            "nobody",
            "-svid",
            &token,
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("SVID is not valid: "),
        "{}",
        stderr(&out)
    );
    Ok(())
}
