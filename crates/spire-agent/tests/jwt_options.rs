//! The agent's JWT options over a real Workload API socket: `allowed_foreign_jwt_claims`
//! (which claims `ValidateJWTSVID` returns for tokens of federated trust domains) and
//! `jwt_svid_cache_max_size` (the LRU bound of the JWT-SVID cache), and FetchJWTSVID's
//! hint de-duplication.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{
    Agent, Ca, TestResult, add_entry, cache_for, entry, jwt_bundle, now, token, uid_selector,
    with_header,
};
use spiffe_core::jwt::sign;
use spiffe_core::{JwtAlgorithm, JwtSigningKey, JwtSvidClaims, SpiffeId};
use spire_agent::endpoints::{self, WorkloadApiConfig, WorkloadApiHandler};
use spire_agent::manager::{JwtSvidCache, JwtSvidMinter, MintedJwtSvid};
use spire_agent::workload::{UnixAttestor, UnixAttestorConfig, WorkloadAttestors};
use spire_proto::workload::spiffe_workload_api_client::SpiffeWorkloadApiClient;
use spire_proto::workload::{JwtsvidRequest, ValidateJwtsvidRequest};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The claim names `ValidateJWTSVID` returns for `token`.
async fn validated_claim_names(agent: &Agent, token: &str) -> Result<Vec<String>, BoxError> {
    let response = agent
        .raw_client()
        .await?
        .validate_jwtsvid(with_header(ValidateJwtsvidRequest {
            audience: "api".to_owned(),
            svid: token.to_owned(),
        }))
        .await?
        .into_inner();
    Ok(response
        .claims
        .map(|c| c.fields.keys().cloned().collect())
        .unwrap_or_default())
}

fn unix_attestors() -> WorkloadAttestors {
    WorkloadAttestors::new(vec![Arc::new(UnixAttestor::new(
        UnixAttestorConfig::default(),
    ))])
}

#[tokio::test]
async fn allowed_foreign_jwt_claims_filter_foreign_tokens_only() -> TestResult {
    let ca = Ca::new("example.org")?;
    let fed = Ca::new("fed.example")?;
    let (own_bundle, own_key) = jwt_bundle(&ca, "own-kid")?;
    let (fed_bundle, fed_key) = jwt_bundle(&fed, "fed-kid")?;
    let cache = cache_for(&ca)?;
    cache.set_bundle(own_bundle)?;
    cache.set_federated_bundles([fed_bundle]);
    let mut caller = entry(&ca, "caller", "/caller", vec![uid_selector()])?;
    caller.federates_with = vec![fed.td.clone()];
    add_entry(&cache, caller, Some(ca.svid("/caller")?))?;

    let foreign = token(&fed_key, "fed-kid", "spiffe://fed.example/svc")?;
    let own = token(&own_key, "own-kid", "spiffe://example.org/svc")?;
    let all = ["aud", "email", "exp", "groups", "iat", "iss", "sub"];

    // Default: a foreign token shows only sub, aud and exp.
    let agent = Agent::start(Arc::clone(&cache)).await?;
    assert_eq!(
        validated_claim_names(&agent, &foreign).await?,
        ["aud", "exp", "sub"]
    );
    assert_eq!(validated_claim_names(&agent, &own).await?, all);
    agent.shutdown().await?;

    // Allowed claims are added for foreign tokens; own tokens are not filtered.
    let agent = Agent::start_with_config(Arc::clone(&cache), unix_attestors(), |dir| {
        WorkloadApiConfig {
            socket_path: dir.join("api.sock"),
            allowed_foreign_jwt_claims: vec!["email".to_owned(), "groups".to_owned()],
            ..WorkloadApiConfig::default()
        }
    })
    .await?;
    assert_eq!(
        validated_claim_names(&agent, &foreign).await?,
        ["aud", "email", "exp", "groups", "sub"]
    );
    assert_eq!(validated_claim_names(&agent, &own).await?, all);
    agent.shutdown().await
}

/// Mints real tokens for the caller's entry and counts the calls.
struct CountingMinter {
    key: JwtSigningKey,
    mints: AtomicUsize,
}

impl std::fmt::Debug for CountingMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingMinter")
            .field("mints", &self.mints)
            .finish_non_exhaustive()
    }
}

#[tonic::async_trait]
impl JwtSvidMinter for CountingMinter {
    async fn new_jwt_svid(
        &self,
        _entry_id: &str,
        audience: &[String],
    ) -> Result<MintedJwtSvid, String> {
        self.mints.fetch_add(1, Ordering::SeqCst);
        let sub = SpiffeId::parse("spiffe://example.org/caller").map_err(|e| e.to_string())?;
        let claims = JwtSvidClaims::new(sub.clone(), audience.to_vec(), now() + 3600, now());
        let token = sign(&self.key, "own-kid", &claims).map_err(|e| e.to_string())?;
        Ok(MintedJwtSvid {
            token,
            spiffe_id: sub,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }
}

/// A Workload API with a JWT minter and cache on a socket in a temporary directory.
struct JwtAgent {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), endpoints::EndpointsError>>,
}

impl JwtAgent {
    fn start(
        cache: Arc<spire_agent::manager::Cache>,
        minter: Arc<dyn JwtSvidMinter>,
        jwt_cache: Arc<JwtSvidCache>,
    ) -> Result<Self, BoxError> {
        let dir = tempfile::tempdir()?;
        let socket = dir.path().join("api.sock");
        let listener = spire_common::uds::bind(&socket, 0o755, 0o777)?;
        let handler = WorkloadApiHandler::new(cache, Arc::new(unix_attestors()))
            .with_jwt_minter(minter)
            .with_jwt_cache(jwt_cache);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(endpoints::serve_listener(listener, handler, async {
            let _ = stopped.await;
        }));
        Ok(JwtAgent {
            _dir: dir,
            socket,
            stop,
            server,
        })
    }

    async fn shutdown(self) -> TestResult {
        let _ = self.stop.send(());
        self.server.await??;
        Ok(())
    }
}

/// Mints a token for the SPIFFE ID of the entry asked for.
struct EntryMinter {
    cache: Arc<spire_agent::manager::Cache>,
    key: JwtSigningKey,
}

impl std::fmt::Debug for EntryMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryMinter").finish_non_exhaustive()
    }
}

#[tonic::async_trait]
impl JwtSvidMinter for EntryMinter {
    async fn new_jwt_svid(
        &self,
        entry_id: &str,
        audience: &[String],
    ) -> Result<MintedJwtSvid, String> {
        let entry = self
            .cache
            .entry(entry_id)
            .ok_or_else(|| format!("no entry {entry_id}"))?;
        let sub = entry.spiffe_id.clone();
        let claims = JwtSvidClaims::new(sub.clone(), audience.to_vec(), now() + 3600, now());
        let token = sign(&self.key, "own-kid", &claims).map_err(|e| e.to_string())?;
        Ok(MintedJwtSvid {
            token,
            spiffe_id: sub,
            issued_at: claims.iat,
            expires_at: claims.exp,
        })
    }
}

#[tokio::test]
async fn fetch_jwt_svid_filters_duplicate_hints_like_x509() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let mut newer = entry(&ca, "a-newer", "/a", vec![uid_selector()])?;
    newer.hint = "db".to_owned();
    newer.created_at = 200;
    let mut older = entry(&ca, "b-older", "/b", vec![uid_selector()])?;
    older.hint = "db".to_owned();
    older.created_at = 100;
    let mut web = entry(&ca, "c", "/c", vec![uid_selector()])?;
    web.hint = "web".to_owned();
    // JWT-SVIDs do not need X.509-SVIDs.
    add_entry(&cache, newer, None)?;
    add_entry(&cache, older, None)?;
    add_entry(&cache, web, None)?;
    let minter = Arc::new(EntryMinter {
        cache: Arc::clone(&cache),
        key: JwtSigningKey::generate(JwtAlgorithm::ES256)?,
    });
    let agent = JwtAgent::start(cache, minter, Arc::new(JwtSvidCache::new(10)))?;
    let mut client = SpiffeWorkloadApiClient::new(spire_common::uds::channel(&agent.socket)?);
    let request = |spiffe_id: &str| {
        with_header(JwtsvidRequest {
            audience: vec!["api".to_owned()],
            spiffe_id: spiffe_id.to_owned(),
        })
    };

    let response = client.fetch_jwtsvid(request("")).await?.into_inner();
    let got: Vec<(&str, &str)> = response
        .svids
        .iter()
        .map(|s| (s.spiffe_id.as_str(), s.hint.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("spiffe://example.org/b", "db"),
            ("spiffe://example.org/c", "web")
        ]
    );
    // The entry that lost the hint is not served even when asked for by SPIFFE ID.
    let status = client
        .fetch_jwtsvid(request("spiffe://example.org/a"))
        .await
        .err()
        .ok_or("the filtered entry was served")?;
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(status.message(), "no identity issued");
    agent.shutdown().await
}

/// Fetches a JWT-SVID for `audience` from the agent at `socket`.
async fn fetch_jwt(socket: &std::path::Path, audience: &str) -> Result<String, BoxError> {
    let channel = spire_common::uds::channel(socket)?;
    let response = SpiffeWorkloadApiClient::new(channel)
        .fetch_jwtsvid(with_header(JwtsvidRequest {
            audience: vec![audience.to_owned()],
            spiffe_id: String::new(),
        }))
        .await?
        .into_inner();
    Ok(response
        .svids
        .first()
        .map(|s| s.svid.clone())
        .ok_or("no JWT-SVID")?)
}

#[tokio::test]
async fn jwt_svid_cache_max_size_evicts_the_least_recently_used_token() -> TestResult {
    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    add_entry(
        &cache,
        entry(&ca, "caller", "/caller", vec![uid_selector()])?,
        Some(ca.svid("/caller")?),
    )?;

    for (max_size, expected_mints) in [(2, 4), (3, 3)] {
        let minter = Arc::new(CountingMinter {
            key: JwtSigningKey::generate(JwtAlgorithm::ES256)?,
            mints: AtomicUsize::new(0),
        });
        let jwt_cache = Arc::new(JwtSvidCache::new(max_size));
        let agent = JwtAgent::start(Arc::clone(&cache), minter.clone(), Arc::clone(&jwt_cache))?;
        let socket = agent.socket.clone();

        let first_a = fetch_jwt(&socket, "a").await?;
        fetch_jwt(&socket, "b").await?;
        fetch_jwt(&socket, "c").await?;
        let second_a = fetch_jwt(&socket, "a").await?;
        assert_eq!(
            minter.mints.load(Ordering::SeqCst),
            expected_mints,
            "max size {max_size}"
        );
        assert!(jwt_cache.len() <= max_size);
        // A token served from the cache is the same token.
        assert_eq!(first_a == second_a, expected_mints == 3);
        agent.shutdown().await?;
    }
    Ok(())
}
