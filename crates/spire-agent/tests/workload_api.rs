//! The Workload API end to end over a real Unix socket in a temporary directory: our
//! cache and `endpoints::serve`, the real `unix` attestor attesting this test process,
//! and two independent clients: the Rust `spiffe` crate (0.19) and our generated tonic
//! client (to send requests without the security header and read exact status codes).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use spiffe_core::{JwtBundle, JwtSigningKey, SpiffeBundle, X509Bundle, X509Svid};
use spire_agent::endpoints::{self, WorkloadApiConfig};
use spire_agent::manager::{
    CacheError, CachedEntry, DEFAULT_ROTATION_FRACTION, TaintedAuthorities,
};
use spire_agent::workload::{
    AttestFuture, AttestorError, Selector, UnixAttestor, UnixAttestorConfig, WorkloadAttestor,
    WorkloadAttestors,
};
use spire_proto::workload::{
    JwtBundlesRequest, JwtsvidRequest, ValidateJwtsvidRequest, WitBundlesRequest, WitsvidRequest,
    X509BundlesRequest, X509BundlesResponse, X509svidRequest, X509svidResponse,
};
use time::OffsetDateTime;
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tonic::{Code, Request, Status};

mod common;

use common::*;

fn spiffe_td(name: &str) -> Result<spiffe::TrustDomain, BoxError> {
    Ok(spiffe::TrustDomain::new(name)?)
}

/// The (spiffe_id, leaf DER) pairs of a response.
fn ids_and_leaves(response: &X509svidResponse) -> Result<Vec<(String, Vec<u8>)>, BoxError> {
    response
        .svids
        .iter()
        .map(|s| {
            let svid = X509Svid::parse_der(&s.x509_svid, &s.x509_svid_key)?;
            Ok((s.spiffe_id.clone(), svid.leaf().to_vec()))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Fetching with the independent `spiffe` crate.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn spiffe_client_fetches_the_x509_context_of_its_uid() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let svid = ca.svid("/workload")?;
    let mut e = entry(&ca, "entry-1", "/workload", vec![uid_selector()])?;
    e.hint = "internal".to_owned();
    add_entry(&cache, e, Some(svid.clone()))?;
    let agent = Agent::start(cache).await?;

    let client = agent.spiffe_client().await?;
    let context = client.fetch_x509_context().await?;
    let got = context.default_svid().ok_or("no default SVID")?;
    assert_eq!(got.spiffe_id().to_string(), "spiffe://example.org/workload");
    let chain: Vec<&[u8]> = got.cert_chain().iter().map(AsRef::as_ref).collect();
    let want: Vec<&[u8]> = svid.cert_chain().iter().map(AsRef::as_ref).collect();
    assert_eq!(chain, want);
    assert_eq!(
        got.private_key().as_bytes(),
        svid.private_key().secret_pkcs8_der()
    );
    assert_eq!(got.hint(), Some("internal"));

    let bundle = context
        .bundle_set()
        .get(&spiffe_td("example.org")?)
        .ok_or("no own bundle")?;
    let authorities: Vec<&[u8]> = bundle.authorities().iter().map(AsRef::as_ref).collect();
    assert_eq!(authorities, vec![ca.root_der().as_slice()]);

    // The one-shot helpers read one message and cancel; the server copes.
    let only = client.fetch_x509_svid().await?;
    assert_eq!(
        only.spiffe_id().to_string(),
        "spiffe://example.org/workload"
    );
    let bundles = client.fetch_x509_bundles().await?;
    assert!(bundles.get(&spiffe_td("example.org")?).is_some());

    agent.shutdown().await
}

#[tokio::test]
async fn caller_without_a_matching_entry_is_permission_denied() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let other_uid = selector(&format!("uid:{}", my_uid().wrapping_add(1)));
    // One selector matches, one does not: an entry needs all of its selectors.
    let partial = vec![uid_selector(), selector("user:definitely-not-a-user")];
    add_entry(
        &cache,
        entry(&ca, "a", "/other", vec![other_uid])?,
        Some(ca.svid("/other")?),
    )?;
    add_entry(
        &cache,
        entry(&ca, "b", "/partial", partial)?,
        Some(ca.svid("/partial")?),
    )?;
    // An entry without selectors never matches.
    add_entry(
        &cache,
        entry(&ca, "c", "/none", Vec::new())?,
        Some(ca.svid("/none")?),
    )?;
    let agent = Agent::start(cache).await?;

    let client = agent.spiffe_client().await?;
    let err = client
        .fetch_x509_context()
        .await
        .err()
        .ok_or("expected an error")?;
    assert!(
        matches!(err, spiffe::WorkloadApiError::NoIdentityIssued),
        "got {err:?}"
    );

    let mut raw = agent.raw_client().await?;
    let status = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner()
        .next()
        .await
        .ok_or("stream ended without status")?
        .err()
        .ok_or("expected an error")?;
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(status.message(), "no identity issued");

    let status = raw
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await?
        .into_inner()
        .next()
        .await
        .ok_or("stream ended without status")?
        .err()
        .ok_or("expected an error")?;
    assert_eq!(status.code(), Code::PermissionDenied);

    agent.shutdown().await
}

#[tokio::test]
async fn unauthenticated_verifiers_get_the_own_bundle_when_allowed() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let dir = tempfile::tempdir()?;
    let config = WorkloadApiConfig {
        socket_path: dir.path().join("api.sock"),
        allow_unauthenticated_verifiers: true,
        ..WorkloadApiConfig::default()
    };
    let attestors = Arc::new(WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
        UnixAttestorConfig::default(),
    ))]));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let config = config.clone();
        let cache = Arc::clone(&cache);
        async move {
            endpoints::serve_with_config(&config, cache, attestors, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&config.socket_path).await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix://{}", config.socket_path.display()))
            .await?;
    let bundles = client.fetch_x509_bundles().await?;
    assert!(bundles.get(&spiffe_td("example.org")?).is_some());
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task).await???;
    Ok(())
}

// ---------------------------------------------------------------------------
// Security header, argument checks and unimplemented RPCs, with our generated client.
// ---------------------------------------------------------------------------

fn assert_status(status: &Status, code: Code, message: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(status.message(), message, "{status:?}");
}

#[tokio::test]
async fn requests_without_the_security_header_are_invalid_argument() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "e", "/w", vec![uid_selector()])?,
        Some(ca.svid("/w")?),
    )?;
    let agent = Agent::start(cache).await?;
    let mut raw = agent.raw_client().await?;
    let missing = "security header missing from request";

    let status = raw
        .fetch_x509svid(X509svidRequest {})
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, missing);
    let status = raw
        .fetch_x509_bundles(X509BundlesRequest {})
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, missing);
    let status = raw
        .fetch_jwtsvid(JwtsvidRequest {
            audience: vec!["a".into()],
            spiffe_id: String::new(),
        })
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, missing);
    let status = raw
        .fetch_witsvid(WitsvidRequest::default())
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, missing);

    // The value is case-sensitive.
    let mut request = Request::new(X509svidRequest {});
    request.metadata_mut().insert(
        "workload.spiffe.io",
        tonic::metadata::MetadataValue::from_static("True"),
    );
    let status = raw.fetch_x509svid(request).await.err().ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, missing);

    agent.shutdown().await
}

#[tokio::test]
async fn jwt_rpcs_without_identity_and_wit_rpcs_are_unimplemented() -> TestResult {
    let ca = Ca::new("example.org")?;
    let agent = Agent::start(cache_for(&ca)?).await?;
    let mut raw = agent.raw_client().await?;

    let status = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: Vec::new(),
            spiffe_id: String::new(),
        }))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, "audience must be specified");
    let status = raw
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec!["a".into()],
            spiffe_id: String::new(),
        }))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::PermissionDenied, "no identity issued");
    let first = match raw
        .fetch_jwt_bundles(with_header(JwtBundlesRequest {}))
        .await
    {
        Ok(response) => response.into_inner().message().await.err(),
        Err(status) => Some(status),
    };
    let status = first.ok_or("no error")?;
    assert_status(&status, Code::PermissionDenied, "no identity issued");
    let status = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: String::new(),
            svid: "x.y.z".into(),
        }))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, "audience must be specified");
    let status = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "a".into(),
            svid: String::new(),
        }))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::InvalidArgument, "svid must be specified");
    let status = raw
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "a".into(),
            svid: "x.y.z".into(),
        }))
        .await
        .err()
        .ok_or("no error")?;
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = raw
        .fetch_witsvid(with_header(WitsvidRequest::default()))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(
        &status,
        Code::Unimplemented,
        "fetching WIT-SVIDs is not implemented",
    );
    let status = raw
        .fetch_wit_bundles(with_header(WitBundlesRequest {}))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(
        &status,
        Code::Unimplemented,
        "fetching WIT bundles is not implemented",
    );

    agent.shutdown().await
}

// ---------------------------------------------------------------------------
// ValidateJWTSVID and FetchJWTBundles with tokens signed by test JWT authorities.
// ---------------------------------------------------------------------------

/// `example.org` (JWT authority `own-kid`) with an entry for this process federating
/// with `fed.example` (`fed-kid`); `stranger.example` (`stranger-kid`) is a federated
/// bundle the agent holds but the caller's entry does not federate with.
struct JwtWorld {
    cache: Arc<spire_agent::manager::Cache>,
    own: JwtSigningKey,
    fed: JwtSigningKey,
    stranger: JwtSigningKey,
}

fn jwt_world() -> Result<JwtWorld, BoxError> {
    let ca = Ca::new("example.org")?;
    let fed_ca = Ca::new("fed.example")?;
    let stranger_ca = Ca::new("stranger.example")?;
    let (own_bundle, own) = jwt_bundle(&ca, "own-kid")?;
    let (fed_bundle, fed) = jwt_bundle(&fed_ca, "fed-kid")?;
    let (stranger_bundle, stranger) = jwt_bundle(&stranger_ca, "stranger-kid")?;
    let cache = cache_for(&ca)?;
    cache.set_bundle(own_bundle)?;
    cache.set_federated_bundles([fed_bundle, stranger_bundle]);
    let mut caller = entry(&ca, "caller", "/caller", vec![uid_selector()])?;
    caller.federates_with = vec![fed_ca.td.clone()];
    add_entry(&cache, caller, Some(ca.svid("/caller")?))?;
    Ok(JwtWorld {
        cache,
        own,
        fed,
        stranger,
    })
}

/// The status `ValidateJWTSVID` answers for `token` and `audience`.
async fn validate_error(agent: &Agent, audience: &str, token: &str) -> Result<Status, BoxError> {
    agent
        .raw_client()
        .await?
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: audience.to_owned(),
            svid: token.to_owned(),
        }))
        .await
        .err()
        .ok_or_else(|| format!("{token} was accepted for {audience}").into())
}

#[tokio::test]
async fn validate_jwt_svid_checks_expiry_audience_kid_and_trust_domain() -> TestResult {
    let w = jwt_world()?;
    let agent = Agent::start(Arc::clone(&w.cache)).await?;
    let client = agent.spiffe_client().await?;

    // Valid: an own token and a token of the federated trust domain.
    let own = token(&w.own, "own-kid", "spiffe://example.org/svc")?;
    let checked = client.validate_jwt_token("api", &own).await?;
    assert_eq!(checked.spiffe_id().to_string(), "spiffe://example.org/svc");
    let foreign = token(&w.fed, "fed-kid", "spiffe://fed.example/svc")?;
    let checked = client.validate_jwt_token("api", &foreign).await?;
    assert_eq!(checked.spiffe_id().to_string(), "spiffe://fed.example/svc");

    // Expired ten minutes ago: beyond any leeway.
    let expired = token_times(
        &w.own,
        "own-kid",
        "spiffe://example.org/svc",
        now() - 1200,
        now() - 600,
    )?;
    assert!(client.validate_jwt_token("api", &expired).await.is_err());
    let status = validate_error(&agent, "api", &expired).await?;
    assert_status(&status, Code::InvalidArgument, "token has expired");

    // Wrong audience.
    let status = validate_error(&agent, "someone-else", &own).await?;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("does not contain \"someone-else\""),
        "{status:?}"
    );

    // Unknown kid: signed by the own key under a kid the bundle does not hold.
    let unknown = token(&w.own, "no-such-kid", "spiffe://example.org/svc")?;
    let status = validate_error(&agent, "api", &unknown).await?;
    assert_status(
        &status,
        Code::InvalidArgument,
        "key \"no-such-kid\" not found in the JWT bundle of \"example.org\"",
    );

    // A trust domain the agent knows but the caller does not federate with.
    let stranger = token(&w.stranger, "stranger-kid", "spiffe://stranger.example/svc")?;
    let status = validate_error(&agent, "api", &stranger).await?;
    assert_status(
        &status,
        Code::InvalidArgument,
        "no JWT bundle for trust domain \"stranger.example\"",
    );

    // A federated kid presented under the own trust domain fails the signature lookup.
    let forged = token(&w.fed, "own-kid", "spiffe://example.org/svc")?;
    let status = validate_error(&agent, "api", &forged).await?;
    assert_status(&status, Code::InvalidArgument, "token signature is invalid");

    agent.shutdown().await
}

#[tokio::test]
async fn jwt_bundle_stream_pushes_own_and_federated_changes() -> TestResult {
    let w = jwt_world()?;
    let agent = Agent::start(Arc::clone(&w.cache)).await?;
    let client = agent.spiffe_client().await?;
    let mut stream = client.stream_jwt_bundles().await?;

    let kids = |set: &spiffe::JwtBundleSet, td: &str| -> Result<Vec<String>, BoxError> {
        let bundle = set
            .get(&spiffe_td(td)?)
            .ok_or_else(|| format!("no JWT bundle for {td}"))?;
        let mut kids: Vec<String> = bundle
            .jwt_authorities()
            .map(|a| a.key_id().to_owned())
            .collect();
        kids.sort();
        Ok(kids)
    };
    let first = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(
        first.len(),
        2,
        "own and federated only, not stranger.example"
    );
    assert_eq!(kids(&first, "example.org")?, ["own-kid"]);
    assert_eq!(kids(&first, "fed.example")?, ["fed-kid"]);

    // A new own JWT authority (as after a JWT key rotation) is pushed.
    let ca = Ca::new("example.org")?;
    let (_, next) = jwt_bundle(&ca, "next-kid")?;
    let mut jwt = JwtBundle::new(ca.td.clone());
    jwt.add_authority("own-kid", w.own.public_key().clone())?;
    jwt.add_authority("next-kid", next.public_key().clone())?;
    let x509 = X509Bundle::parse_der(ca.td.clone(), &ca.root_der())?;
    w.cache
        .set_bundle(SpiffeBundle::from_parts(x509, jwt).ok_or("bundle parts disagree")?)?;
    let second = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(kids(&second, "example.org")?, ["next-kid", "own-kid"]);

    // A changed federated bundle is pushed; one the caller does not use changes nothing.
    let fed_ca = Ca::new("fed.example")?;
    let (fed_bundle, _) = jwt_bundle(&fed_ca, "fed-kid-2")?;
    let stranger_ca = Ca::new("stranger.example")?;
    let (stranger_bundle, _) = jwt_bundle(&stranger_ca, "stranger-kid")?;
    w.cache
        .set_federated_bundles([fed_bundle.clone(), stranger_bundle]);
    let third = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(kids(&third, "fed.example")?, ["fed-kid-2"]);
    let (_, stranger_key) = jwt_bundle(&stranger_ca, "stranger-kid-2")?;
    let mut jwt = JwtBundle::new(stranger_ca.td.clone());
    jwt.add_authority("stranger-kid-2", stranger_key.public_key().clone())?;
    let x509 = X509Bundle::parse_der(stranger_ca.td.clone(), &stranger_ca.root_der())?;
    w.cache.set_federated_bundles([
        fed_bundle,
        SpiffeBundle::from_parts(x509, jwt).ok_or("bundle parts disagree")?,
    ]);
    assert_quiet(&mut stream).await?;

    drop(stream);
    agent.shutdown().await
}

// ---------------------------------------------------------------------------
// Streaming: pushes on entry, SVID and bundle changes (WAPI-05..10).
// ---------------------------------------------------------------------------

#[tokio::test]
async fn x509_stream_pushes_new_rotated_and_removed_identities() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let first = ca.svid("/one")?;
    add_entry(
        &cache,
        entry(&ca, "entry-1", "/one", vec![uid_selector()])?,
        Some(first.clone()),
    )?;
    let agent = Agent::start(Arc::clone(&cache)).await?;

    let client = agent.spiffe_client().await?;
    let mut stream = client.stream_x509_contexts().await?;
    let context = next_within(&mut stream, PUSH_DEADLINE).await??;
    let ids: Vec<String> = context
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(ids, vec!["spiffe://example.org/one"]);

    // A new matching entry and its SVID: pushed at once, in entry ID order.
    let started = Instant::now();
    add_entry(
        &cache,
        entry(&ca, "entry-2", "/two", vec![uid_selector()])?,
        Some(ca.svid("/two")?),
    )?;
    let context = next_within(&mut stream, PUSH_DEADLINE).await??;
    let ids: Vec<String> = context
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(
        ids,
        vec!["spiffe://example.org/one", "spiffe://example.org/two"]
    );
    assert!(started.elapsed() < PUSH_DEADLINE);

    // An unrelated entry (another uid) changes nothing for this workload: no message.
    let other_uid = selector(&format!("uid:{}", my_uid().wrapping_add(1)));
    add_entry(
        &cache,
        entry(&ca, "entry-0", "/other", vec![other_uid])?,
        Some(ca.svid("/other")?),
    )?;
    assert_quiet(&mut stream).await?;

    // Rotation of entry-1: the new certificate and key are pushed.
    let rotated = ca.svid("/one")?;
    cache.set_svid("entry-1", rotated.clone())?;
    let context = next_within(&mut stream, PUSH_DEADLINE).await??;
    let one = context.svids().first().ok_or("no SVID")?;
    assert_eq!(one.leaf().as_ref(), rotated.leaf().as_ref());
    assert_ne!(one.leaf().as_ref(), first.leaf().as_ref());
    assert_eq!(
        one.private_key().as_bytes(),
        rotated.private_key().secret_pkcs8_der()
    );

    // Removal of entry-2: the next message no longer has it (redaction, WAPI-10).
    let keep: Vec<CachedEntry> = cache
        .entries()
        .iter()
        .filter(|e| e.entry_id != "entry-2")
        .map(|e| (**e).clone())
        .collect();
    cache.update_entries(keep);
    let context = next_within(&mut stream, PUSH_DEADLINE).await??;
    let ids: Vec<String> = context
        .svids()
        .iter()
        .map(|s| s.spiffe_id().to_string())
        .collect();
    assert_eq!(ids, vec!["spiffe://example.org/one"]);

    drop(stream);
    agent.shutdown().await
}

#[tokio::test]
async fn removing_the_last_identity_ends_the_stream_with_permission_denied() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "e", "/w", vec![uid_selector()])?,
        Some(ca.svid("/w")?),
    )?;
    let agent = Agent::start(Arc::clone(&cache)).await?;
    let mut raw = agent.raw_client().await?;
    let mut stream = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    let first = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(first.svids.len(), 1);

    cache.update_entries(Vec::new());
    let status = next_within(&mut stream, PUSH_DEADLINE)
        .await?
        .err()
        .ok_or("expected PermissionDenied")?;
    assert_status(&status, Code::PermissionDenied, "no identity issued");
    assert!(
        tokio::time::timeout(PUSH_DEADLINE, stream.next())
            .await?
            .is_none()
    );

    agent.shutdown().await
}

#[tokio::test]
async fn first_response_waits_until_every_matching_entry_has_its_svid() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "a", "/a", vec![uid_selector()])?,
        Some(ca.svid("/a")?),
    )?;
    add_entry(&cache, entry(&ca, "b", "/b", vec![uid_selector()])?, None)?;
    let agent = Agent::start(Arc::clone(&cache)).await?;
    let mut raw = agent.raw_client().await?;
    let mut stream = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    assert_quiet(&mut stream).await?;

    cache.set_svid("b", ca.svid("/b")?)?;
    let response = next_within(&mut stream, PUSH_DEADLINE).await??;
    let ids: Vec<String> = response.svids.iter().map(|s| s.spiffe_id.clone()).collect();
    assert_eq!(
        ids,
        vec!["spiffe://example.org/a", "spiffe://example.org/b"]
    );

    agent.shutdown().await
}

#[tokio::test]
async fn identities_are_ordered_by_entry_id_and_duplicate_hints_filtered() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let mut newer = entry(&ca, "a-newer", "/a", vec![uid_selector()])?;
    newer.hint = "db".to_owned();
    newer.created_at = 200;
    let mut older = entry(&ca, "b-older", "/b", vec![uid_selector()])?;
    older.hint = "db".to_owned();
    older.created_at = 100;
    let mut other = entry(&ca, "c", "/c", vec![uid_selector()])?;
    other.hint = "web".to_owned();
    let plain = entry(&ca, "0-plain", "/zero", vec![uid_selector()])?;
    // Same hint and same creation time: the smaller entry ID wins (SPIRE's tie-break).
    let mut tie_later = entry(&ca, "e-tie", "/e", vec![uid_selector()])?;
    tie_later.hint = "cache".to_owned();
    let mut tie_first = entry(&ca, "d-tie", "/d", vec![uid_selector()])?;
    tie_first.hint = "cache".to_owned();
    add_entry(&cache, tie_later, Some(ca.svid("/e")?))?;
    add_entry(&cache, tie_first, Some(ca.svid("/d")?))?;
    add_entry(&cache, newer, Some(ca.svid("/a")?))?;
    add_entry(&cache, older, Some(ca.svid("/b")?))?;
    add_entry(&cache, other, Some(ca.svid("/c")?))?;
    add_entry(&cache, plain, Some(ca.svid("/zero")?))?;
    let agent = Agent::start(Arc::clone(&cache)).await?;

    let mut raw = agent.raw_client().await?;
    let mut stream = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    let response = next_within(&mut stream, PUSH_DEADLINE).await??;
    let got: Vec<(String, String)> = response
        .svids
        .iter()
        .map(|s| (s.spiffe_id.clone(), s.hint.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("spiffe://example.org/zero".to_owned(), String::new()),
            ("spiffe://example.org/b".to_owned(), "db".to_owned()),
            ("spiffe://example.org/c".to_owned(), "web".to_owned()),
            ("spiffe://example.org/d".to_owned(), "cache".to_owned()),
        ]
    );
    // Every SVID carries the own bundle; no CRLs.
    assert!(response.svids.iter().all(|s| s.bundle == ca.root_der()));
    assert!(response.crl.is_empty());
    assert_eq!(ids_and_leaves(&response)?.len(), 4);

    agent.shutdown().await
}

#[tokio::test]
async fn federated_bundles_follow_federates_with() -> TestResult {
    let ca = Ca::new("example.org")?;
    let other = Ca::new("other.org")?;
    let third = Ca::new("third.org")?;
    let cache = cache_for(&ca)?;
    cache.set_federated_bundles([other.bundle()?, third.bundle()?]);
    let mut e = entry(&ca, "e", "/w", vec![uid_selector()])?;
    e.federates_with = vec![other.td.clone()];
    add_entry(&cache, e.clone(), Some(ca.svid("/w")?))?;
    let agent = Agent::start(Arc::clone(&cache)).await?;

    // The spiffe crate sees the federated bundle in its bundle set.
    let context = agent.spiffe_client().await?.fetch_x509_context().await?;
    assert!(context.bundle_set().get(&spiffe_td("other.org")?).is_some());
    assert!(context.bundle_set().get(&spiffe_td("third.org")?).is_none());

    let mut raw = agent.raw_client().await?;
    let mut svids = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    let response = next_within(&mut svids, PUSH_DEADLINE).await??;
    assert_eq!(
        response.federated_bundles.keys().collect::<Vec<_>>(),
        vec!["spiffe://other.org"]
    );
    assert_eq!(
        response.federated_bundles["spiffe://other.org"],
        other.root_der()
    );

    let mut bundles = raw
        .fetch_x509_bundles(with_header(X509BundlesRequest {}))
        .await?
        .into_inner();
    let got: X509BundlesResponse = next_within(&mut bundles, PUSH_DEADLINE).await??;
    let mut keys: Vec<&String> = got.bundles.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["spiffe://example.org", "spiffe://other.org"]);
    assert_eq!(got.bundles["spiffe://example.org"], ca.root_der());

    // A rotated federated bundle is pushed on both streams.
    let rotated = Ca::new("other.org")?;
    cache.set_federated_bundles([rotated.bundle()?, third.bundle()?]);
    let response = next_within(&mut svids, PUSH_DEADLINE).await??;
    assert_eq!(
        response.federated_bundles["spiffe://other.org"],
        rotated.root_der()
    );
    let got = next_within(&mut bundles, PUSH_DEADLINE).await??;
    assert_eq!(got.bundles["spiffe://other.org"], rotated.root_der());

    // The entry stops federating: an empty map drops the bundle (WAPI-09).
    e.federates_with.clear();
    e.revision_number += 1;
    add_entry(&cache, e, None)?;
    let response = next_within(&mut svids, PUSH_DEADLINE).await??;
    assert!(response.federated_bundles.is_empty());
    assert_eq!(response.svids.len(), 1);
    let got = next_within(&mut bundles, PUSH_DEADLINE).await??;
    assert_eq!(
        got.bundles.keys().collect::<Vec<_>>(),
        vec!["spiffe://example.org"]
    );

    // An own-bundle rotation reaches every stream.
    let extra = Ca::new("example.org")?;
    let mut both = ca.root_der();
    both.extend_from_slice(&extra.root_der());
    let x509 = X509Bundle::parse_der(ca.td.clone(), &both)?;
    let bundle = SpiffeBundle::from_parts(x509, JwtBundle::new(ca.td.clone()))
        .ok_or("bundle parts disagree")?;
    cache.set_bundle(bundle)?;
    let response = next_within(&mut svids, PUSH_DEADLINE).await??;
    assert_eq!(response.svids[0].bundle, both);

    agent.shutdown().await
}

#[tokio::test]
async fn shutdown_ends_open_streams() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "e", "/w", vec![uid_selector()])?,
        Some(ca.svid("/w")?),
    )?;
    let agent = Agent::start(Arc::clone(&cache)).await?;
    let mut raw = agent.raw_client().await?;
    let mut stream = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    next_within(&mut stream, PUSH_DEADLINE).await??;
    agent.shutdown().await?;
    // The stream ends (cleanly or with a transport error), it does not hang.
    let _ = tokio::time::timeout(PUSH_DEADLINE, stream.next()).await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Attestation plumbing.
// ---------------------------------------------------------------------------

struct Failing;

impl WorkloadAttestor for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn attest(&self, _pid: i32) -> AttestFuture<'_> {
        Box::pin(async { Err(AttestorError::Other("no such workload".into())) })
    }
}

struct Extra;

impl WorkloadAttestor for Extra {
    fn name(&self) -> &str {
        "extra"
    }
    fn attest(&self, _pid: i32) -> AttestFuture<'_> {
        Box::pin(async { Ok(vec!["label:blue".to_owned()]) })
    }
}

/// Answers only once every attestor sharing `barrier` has been called: attestors run
/// one after another would wait forever.
struct Rendezvous {
    name: &'static str,
    barrier: Arc<tokio::sync::Barrier>,
    fail: bool,
}

impl WorkloadAttestor for Rendezvous {
    fn name(&self) -> &str {
        self.name
    }
    fn attest(&self, _pid: i32) -> AttestFuture<'_> {
        Box::pin(async move {
            self.barrier.wait().await;
            if self.fail {
                return Err(AttestorError::Other("kubelet unreachable".into()));
            }
            Ok(vec!["label:blue".to_owned()])
        })
    }
}

#[tokio::test]
async fn attestors_run_in_parallel_and_a_failing_one_is_skipped() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let selectors = vec![Selector {
        r#type: "blue".to_owned(),
        value: "label:blue".to_owned(),
    }];
    add_entry(
        &cache,
        entry(&ca, "e", "/blue", selectors)?,
        Some(ca.svid("/blue")?),
    )?;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let agent = Agent::start_with(
        cache,
        WorkloadAttestors::new(vec![
            Arc::new(Rendezvous {
                name: "broken",
                barrier: Arc::clone(&barrier),
                fail: true,
            }),
            Arc::new(Rendezvous {
                name: "blue",
                barrier,
                fail: false,
            }),
        ]),
        |dir| dir.join("api.sock"),
    )
    .await?;
    let client = agent.spiffe_client().await?;
    let svid = tokio::time::timeout(Duration::from_secs(20), client.fetch_x509_svid())
        .await
        .map_err(|_| "attestors did not run concurrently: the call never finished")??;
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/blue");
    agent.shutdown().await
}

#[tokio::test]
async fn all_attestors_failing_is_unavailable() -> TestResult {
    let ca = Ca::new("example.org")?;
    let agent = Agent::start_with(
        cache_for(&ca)?,
        WorkloadAttestors::new(vec![Arc::new(Failing)]),
        |dir| dir.join("api.sock"),
    )
    .await?;
    let mut raw = agent.raw_client().await?;
    let status = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await
        .err()
        .ok_or("no error")?;
    assert_status(&status, Code::Unavailable, "workload attestation failed");
    agent.shutdown().await
}

#[tokio::test]
async fn selectors_of_several_attestors_are_merged() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let needs_both = vec![
        uid_selector(),
        Selector {
            r#type: "extra".to_owned(),
            value: "label:blue".to_owned(),
        },
    ];
    add_entry(
        &cache,
        entry(&ca, "e", "/both", needs_both)?,
        Some(ca.svid("/both")?),
    )?;
    let agent = Agent::start_with(
        cache,
        WorkloadAttestors::new(vec![
            Arc::new(UnixAttestor::new(UnixAttestorConfig::default())),
            Arc::new(Failing),
            Arc::new(Extra),
        ]),
        |dir| dir.join("api.sock"),
    )
    .await?;
    let svid = agent.spiffe_client().await?.fetch_x509_svid().await?;
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/both");
    agent.shutdown().await
}

// ---------------------------------------------------------------------------
// The socket itself.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn socket_is_world_writable_in_a_created_directory() -> TestResult {
    let ca = Ca::new("example.org")?;
    let agent = Agent::start(cache_for(&ca)?).await?;
    let meta = std::fs::metadata(&agent.socket)?;
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o777);
    let parent = agent.socket.parent().ok_or("no parent")?;
    assert!(std::fs::metadata(parent)?.is_dir());
    agent.shutdown().await
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "e", "/w", vec![uid_selector()])?,
        Some(ca.svid("/w")?),
    )?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("api.sock");
    // A socket file left behind by a previous agent: nobody listens on it.
    drop(std::os::unix::net::UnixListener::bind(&path)?);
    assert!(std::fs::metadata(&path)?.file_type().is_socket());
    assert!(UnixStream::connect(&path).await.is_err());

    let stale = path.clone();
    let agent = Agent::start_with(
        cache,
        WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
            UnixAttestorConfig::default(),
        ))]),
        move |_| stale,
    )
    .await?;
    let svid = agent.spiffe_client().await?.fetch_x509_svid().await?;
    assert_eq!(svid.spiffe_id().to_string(), "spiffe://example.org/w");
    assert_eq!(
        std::fs::metadata(&path)?.permissions().mode() & 0o777,
        0o777
    );
    agent.shutdown().await?;
    drop(dir);
    Ok(())
}

// ---------------------------------------------------------------------------
// The `unix` attestor on this very process.
// ---------------------------------------------------------------------------

/// The name of `id` in the third field of a colon database, read independently.
fn name_in(db: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(db).ok()?;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[2] == id.to_string())
        .map(|f| f[0].to_owned())
}

#[tokio::test]
async fn unix_attestor_describes_this_process() -> TestResult {
    let pid = i32::try_from(std::process::id())?;
    let uid = my_uid();
    let gid = rustix::process::getegid().as_raw();
    let attestor = UnixAttestor::new(UnixAttestorConfig::default());
    let values = attestor.attest(pid).await?;
    assert_eq!(values.first(), Some(&format!("uid:{uid}")));
    assert!(values.contains(&format!("gid:{gid}")));
    match name_in("/etc/passwd", uid) {
        Some(user) => assert_eq!(values.get(1), Some(&format!("user:{user}"))),
        None => assert!(!values.iter().any(|v| v.starts_with("user:"))),
    }
    if let Some(group) = name_in("/etc/group", gid) {
        assert!(values.contains(&format!("group:{group}")));
    }
    assert!(
        !values
            .iter()
            .any(|v| v.starts_with("path:") || v.starts_with("sha256:"))
    );

    // With discover_workload_path: the test binary's path and SHA-256.
    let exe = std::env::current_exe()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &std::fs::read(&exe)?);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let with_path = UnixAttestor::new(UnixAttestorConfig {
        discover_workload_path: true,
        workload_size_limit: 0,
    })
    .attest(pid)
    .await?;
    assert!(with_path.contains(&format!("path:{}", exe.display())));
    assert_eq!(with_path.last(), Some(&format!("sha256:{hex}")));

    // A binary over workload_size_limit fails the attestor.
    let limited = UnixAttestor::new(UnixAttestorConfig {
        discover_workload_path: true,
        workload_size_limit: 1024,
    });
    let err = limited
        .attest(pid)
        .await
        .err()
        .ok_or("expected a size error")?;
    assert!(err.to_string().contains("exceeds size limit"), "{err}");
    Ok(())
}

// ---------------------------------------------------------------------------
// The cache contract used by the sync loop.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn svids_of_a_tainted_ca_are_marked_for_re_signing() -> TestResult {
    let (old, new) = (Ca::new("example.org")?, Ca::new("example.org")?);
    let cache = cache_for(&old)?;
    let a = entry(&old, "a", "/a", vec![uid_selector()])?;
    let b = entry(&old, "b", "/b", vec![uid_selector()])?;
    cache.update_entries(vec![a, b]);
    cache.set_svid("a", old.svid("/a")?)?;
    cache.set_svid("b", new.svid("/b")?)?;
    let t0 = SystemTime::now();
    assert!(cache.entries_needing_svids(t0, 0.5).is_empty());

    let tainted = TaintedAuthorities {
        x509: old.bundle()?.x509_bundle().authorities().to_vec(),
        ..Default::default()
    };
    let td = cache.trust_domain();
    let version = cache.version();
    let marked = cache.mark_stale_where(|svid| tainted.signed_chain(&td, svid.cert_chain(), t0));
    assert_eq!(marked, 1);
    // Readers keep the current SVID until the new one is stored.
    assert_eq!(cache.version(), version);
    assert!(cache.entry("a").is_some_and(|e| e.svid.is_some()));
    let due: Vec<String> = cache
        .entries_needing_svids(t0, 0.5)
        .into_iter()
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(due, ["a"]);
    cache.set_svid("a", new.svid("/a")?)?;
    assert!(cache.entries_needing_svids(t0, 0.5).is_empty());
    Ok(())
}

/// Waits until `check` holds, failing after a generous deadline.
async fn eventually(what: &str, check: impl Fn() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn x509_svid_cache_max_size_keeps_subscribed_svids_and_evicts_the_least_recently_used()
-> TestResult {
    let ca = Ca::new("example.org")?;
    let cache =
        Arc::new(spire_agent::manager::Cache::new(ca.td.clone()).with_x509_svid_cache_max_size(2));
    cache.set_bundle(ca.bundle()?)?;
    let elsewhere = |n: u32| vec![selector(&format!("uid:{}", my_uid().wrapping_add(n)))];
    let mut entries = vec![
        entry(&ca, "a", "/a", elsewhere(1))?,
        entry(&ca, "b", "/b", elsewhere(2))?,
        entry(&ca, "c", "/c", elsewhere(3))?,
        entry(&ca, "z-mine", "/mine", vec![uid_selector()])?,
    ];
    cache.update_entries(entries.clone());
    let now = SystemTime::now();
    let due = |cache: &spire_agent::manager::Cache| -> Vec<String> {
        cache
            .entries_needing_svids(now, DEFAULT_ROTATION_FRACTION)
            .into_iter()
            .map(|e| e.entry_id)
            .collect()
    };

    // Prefetch fills the spare room only, in entry ID order.
    assert_eq!(due(&cache), ["a", "b"]);
    cache.set_svid("a", ca.svid("/a")?)?;
    cache.set_svid("b", ca.svid("/b")?)?;
    assert!(due(&cache).is_empty(), "the cache is full");

    // A stream for this process subscribes: its entry is due at once, the sync loop is
    // woken, and the stream's first response waits for the SVID.
    let wanted = cache.svids_wanted();
    let agent = Agent::start(Arc::clone(&cache)).await?;
    let mut raw = agent.raw_client().await?;
    let mut stream = raw
        .fetch_x509svid(with_header(X509svidRequest {}))
        .await?
        .into_inner();
    tokio::time::timeout(Duration::from_secs(10), wanted.notified())
        .await
        .map_err(|_| "the sync loop was not asked for the subscriber's SVID")?;
    assert_eq!(cache.subscriber_count(), 1);
    assert_eq!(due(&cache), ["z-mine"]);
    assert_quiet(&mut stream).await?;

    // Its SVID is stored beyond the soft limit; the least recently used unsubscribed
    // SVID (a) is evicted, the subscribed one never is.
    cache.set_svid("z-mine", ca.svid("/mine")?)?;
    let response = next_within(&mut stream, PUSH_DEADLINE).await??;
    assert_eq!(response.svids[0].spiffe_id, "spiffe://example.org/mine");
    assert_eq!(cache.svid_count(), 2);
    assert!(cache.entry("a").is_some_and(|e| e.svid.is_none()));
    assert!(cache.entry("b").is_some_and(|e| e.svid.is_some()));
    assert!(due(&cache).is_empty(), "no prefetch while full");
    cache.set_svid("b", ca.svid("/b")?)?;
    cache.set_svid("a", ca.svid("/a")?)?;
    assert_eq!(cache.svid_count(), 2);
    assert!(cache.entry("b").is_some_and(|e| e.svid.is_none()));
    assert!(cache.entry("z-mine").is_some_and(|e| e.svid.is_some()));

    // The stream ends: the entry is no longer pinned and is evicted like any other.
    drop(stream);
    eventually("the subscriber to go", || cache.subscriber_count() == 0).await?;
    entries.push(entry(&ca, "d", "/d", elsewhere(4))?);
    cache.update_entries(entries);
    cache.set_svid("d", ca.svid("/d")?)?;
    assert_eq!(cache.svid_count(), 2);
    assert!(cache.entry("z-mine").is_some_and(|e| e.svid.is_none()));
    assert!(cache.entry("a").is_some_and(|e| e.svid.is_some()));

    agent.shutdown().await
}

#[tokio::test]
async fn availability_target_makes_svids_due_before_half_life() -> TestResult {
    let ca = Ca::new("example.org")?;
    let hours = |h: i64| time::Duration::hours(h);
    let now = OffsetDateTime::now_utc();
    let t0 = SystemTime::now();
    let due = |cache: &spire_agent::manager::Cache| -> Vec<String> {
        cache
            .entries_needing_svids(t0, DEFAULT_ROTATION_FRACTION)
            .into_iter()
            .map(|e| e.entry_id)
            .collect()
    };
    // A 40h SVID with 23h59m left: before half life (20h left), within a 24h target.
    let long = ca.svid_valid(
        "/long",
        now - hours(16) + time::Duration::minutes(1),
        now + hours(24) - time::Duration::minutes(1),
    )?;
    // A 36h SVID with 23h left: only 12h beyond the target, so half life alone rules.
    let short = ca.svid_valid("/short", now - hours(13), now + hours(23))?;
    let entries = vec![
        entry(&ca, "long", "/long", vec![uid_selector()])?,
        entry(&ca, "short", "/short", vec![uid_selector()])?,
    ];

    let plain = cache_for(&ca)?;
    plain.update_entries(entries.clone());
    plain.set_svid("long", long.clone())?;
    plain.set_svid("short", short.clone())?;
    assert!(due(&plain).is_empty(), "both are before half life");

    let targeted = Arc::new(
        spire_agent::manager::Cache::new(ca.td.clone())
            .with_availability_target(Some(Duration::from_secs(24 * 3600))),
    );
    targeted.set_bundle(ca.bundle()?)?;
    targeted.update_entries(entries);
    targeted.set_svid("long", long)?;
    targeted.set_svid("short", short)?;
    assert_eq!(due(&targeted), ["long"]);
    // The jitter (0-10 min) only brings rotation forward.
    let jittered: Vec<String> = targeted
        .entries_needing_svids_jittered(t0, DEFAULT_ROTATION_FRACTION, Duration::from_secs(10 * 60))
        .into_iter()
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(jittered, ["long"]);
    Ok(())
}

#[tokio::test]
async fn cache_tracks_which_entries_need_svids() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let now = OffsetDateTime::now_utc();
    let e = entry(&ca, "e", "/w", vec![uid_selector()])?;
    cache.update_entries(vec![e.clone()]);
    let ids = |v: Vec<CachedEntry>| v.into_iter().map(|e| e.entry_id).collect::<Vec<_>>();
    assert_eq!(
        ids(cache.entries_needing_svids(SystemTime::now(), 0.5)),
        vec!["e"]
    );

    // A 100-minute SVID that started 10 minutes ago is fresh; at 60 minutes it is past
    // half life.
    let svid = ca.svid_valid(
        "/w",
        now - time::Duration::minutes(10),
        now + time::Duration::minutes(90),
    )?;
    cache.set_svid("e", svid)?;
    let t0 = SystemTime::now();
    assert!(
        cache
            .entries_needing_svids(t0, DEFAULT_ROTATION_FRACTION)
            .is_empty()
    );
    let later = t0 + Duration::from_secs(50 * 60);
    assert_eq!(
        ids(cache.entries_needing_svids(later, DEFAULT_ROTATION_FRACTION)),
        vec!["e"]
    );
    assert!(cache.entries_needing_svids(later, 0.9).is_empty());
    let expired = t0 + Duration::from_secs(100 * 60);
    assert_eq!(ids(cache.entries_needing_svids(expired, 1.0)), vec!["e"]);

    // Same entry again: SVID kept, nothing to do. A new revision: SVID kept but due.
    cache.update_entries(vec![e.clone()]);
    assert!(cache.entry("e").is_some_and(|e| e.svid.is_some()));
    assert!(cache.entries_needing_svids(t0, 0.5).is_empty());
    let mut revised = e.clone();
    revised.revision_number = 2;
    revised.selectors.push(selector("user:x"));
    cache.update_entries(vec![revised.clone()]);
    assert!(cache.entry("e").is_some_and(|e| e.svid.is_some()));
    assert_eq!(ids(cache.entries_needing_svids(t0, 0.5)), vec!["e"]);
    cache.set_svid("e", ca.svid("/w")?)?;
    assert!(cache.entries_needing_svids(t0, 0.5).is_empty());

    // A new SPIFFE ID drops the SVID.
    let mut moved = revised;
    moved.spiffe_id = ca.id("/moved")?;
    cache.update_entries(vec![moved]);
    assert!(cache.entry("e").is_some_and(|e| e.svid.is_none()));

    // Errors: unknown entry, SVID for another SPIFFE ID.
    assert_eq!(
        cache.set_svid("nope", ca.svid("/w")?),
        Err(CacheError::EntryNotFound("nope".to_owned()))
    );
    assert!(matches!(
        cache.set_svid("e", ca.svid("/w")?),
        Err(CacheError::SpiffeIdMismatch { .. })
    ));
    // A bundle of another trust domain is not the own bundle.
    let other = Ca::new("other.org")?;
    assert!(matches!(
        cache.set_bundle(other.bundle()?),
        Err(CacheError::TrustDomainMismatch { .. })
    ));
    Ok(())
}

/// The serial of an SVID's leaf, big-endian.
fn leaf_serial(svid: &X509Svid) -> Result<Vec<u8>, BoxError> {
    let (_, cert) = x509_parser::parse_x509_certificate(svid.leaf().as_ref())?;
    Ok(cert.raw_serial().to_vec())
}

#[tokio::test]
async fn cache_serves_crls_and_resigns_revoked_svids() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let e = entry(&ca, "e", "/w", vec![uid_selector()])?;
    cache.update_entries(vec![e]);
    let svid = ca.svid("/w")?;
    let serial = leaf_serial(&svid)?;
    cache.set_svid("e", svid)?;
    let now = SystemTime::now();
    assert!(cache.entries_needing_svids(now, 0.5).is_empty());

    // A CRL that lists another serial: served, nothing due.
    let mut rx = cache.subscribe();
    rx.borrow_and_update();
    let other = ca.crl(&[vec![0x01, 0x02]])?;
    cache.set_crls(vec![other.clone()])?;
    assert!(rx.has_changed()?);
    rx.borrow_and_update();
    assert_eq!(
        *cache.workload_update(&[uid_selector()]).crls,
        vec![other.clone()]
    );
    assert!(cache.entries_needing_svids(now, 0.5).is_empty());
    cache.set_crls(vec![other.clone()])?;
    assert!(!rx.has_changed()?, "the same CRLs are not a change");

    // A CRL that lists the SVID's serial: the entry is due at once.
    let revoking = ca.crl(&[vec![0x01, 0x02], serial])?;
    cache.set_crls(vec![revoking.clone()])?;
    assert!(rx.has_changed()?);
    let due: Vec<String> = cache
        .entries_needing_svids(now, 0.5)
        .into_iter()
        .map(|e| e.entry_id)
        .collect();
    assert_eq!(due, ["e"]);

    // An unparsable CRL is refused and changes nothing.
    let refused = cache.set_crls(vec![b"not a crl".to_vec()]);
    assert!(
        matches!(refused, Err(CacheError::InvalidCrl(_))),
        "{refused:?}"
    );
    assert_eq!(*cache.crls(), vec![revoking]);

    // A fresh SVID (new serial) is not due.
    cache.set_svid("e", ca.svid("/w")?)?;
    assert!(cache.entries_needing_svids(now, 0.5).is_empty());
    Ok(())
}

#[tokio::test]
async fn cache_versions_wake_subscribers_only_on_change() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let mut rx = cache.subscribe();
    rx.borrow_and_update();
    let e = entry(&ca, "e", "/w", vec![uid_selector()])?;
    cache.update_entries(vec![e.clone()]);
    assert!(rx.has_changed()?);
    rx.borrow_and_update();

    // Writing the same state again is not a change.
    cache.update_entries(vec![e]);
    cache.set_bundle(ca.bundle()?)?;
    cache.set_federated_bundles(Vec::new());
    assert!(!rx.has_changed()?);

    cache.set_svid("e", ca.svid("/w")?)?;
    assert!(rx.has_changed()?);
    let identities = cache.identities_for(&[uid_selector(), selector("user:anyone")]);
    assert_eq!(identities.len(), 1);
    assert!(cache.identities_for(&[selector("user:anyone")]).is_empty());
    let bundles = cache.x509_bundles_for(&identities);
    assert!(bundles.own.is_some() && bundles.federated.is_empty());
    Ok(())
}
