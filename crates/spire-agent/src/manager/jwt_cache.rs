//! The agent's JWT-SVID cache (agent.md §5.8; SPIRE's
//! `pkg/agent/manager/cache/jwt_cache.go` and `manager.FetchJWTSVID`).
//!
//! JWT-SVIDs are minted by the server on demand (`SVID.NewJWTSVID`), never prefetched.
//! A token is cached under its SPIFFE ID and its audience set (order and duplicates do
//! not matter) and served again until half of its lifetime has passed. After that a new
//! one is minted; if minting fails while the cached token is still valid, the cached one
//! is served with a warning. The cache holds at most `jwt_svid_cache_max_size` tokens
//! (default [`DEFAULT_MAX_SIZE`]), a hard limit as in SPIRE; the least recently used one
//! is evicted on insert when it is full. The agent shares one cache between the
//! Workload API and the admin (Delegated Identity) API.
//!
//! Differences from SPIRE: the half-life is not jittered, and entries asking for a `jti`
//! do not bypass the cache (SPIRE's agent drops that attribute at sync too).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spiffe_core::{JwtSvid, SpiffeId};

/// SPIRE's `jwt_svid_cache_max_size` default.
pub const DEFAULT_MAX_SIZE: usize = 1000;

/// A JWT-SVID minted by the server.
#[derive(Clone, PartialEq, Eq)]
pub struct MintedJwtSvid {
    /// The token (JWS compact serialization).
    pub token: String,
    /// The SPIFFE ID the server issued it to.
    pub spiffe_id: SpiffeId,
    /// Issue time, Unix seconds.
    pub issued_at: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
}

impl fmt::Debug for MintedJwtSvid {
    /// Leaves the token out: it is a bearer credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintedJwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl MintedJwtSvid {
    /// Reads the subject, `iat` and `exp` of a token from a trusted channel (no
    /// signature check). A token without `iat` counts as issued at `now`.
    pub fn from_token(token: String, now: SystemTime) -> Result<Self, String> {
        let parsed = JwtSvid::parse_insecure(&token, &[], now).map_err(|e| e.to_string())?;
        let issued_at = parsed
            .claims()
            .get("iat")
            .and_then(serde_json::Value::as_f64)
            .map_or_else(|| unix(now), |iat| iat as i64);
        Ok(MintedJwtSvid {
            spiffe_id: parsed.spiffe_id().clone(),
            issued_at,
            expires_at: parsed.expiry_unix(),
            token,
        })
    }
}

/// Something that mints JWT-SVIDs for registration entries: the server's
/// `SVID.NewJWTSVID`, implemented by [`ServerClient`](crate::client::ServerClient).
#[tonic::async_trait]
pub trait JwtSvidMinter: Send + Sync + fmt::Debug {
    /// Mints a JWT-SVID for the entry `entry_id` with `audience`.
    async fn new_jwt_svid(
        &self,
        entry_id: &str,
        audience: &[String],
    ) -> Result<MintedJwtSvid, String>;
}

/// The cache key: a SPIFFE ID and its audience set, sorted and de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwtCacheKey {
    spiffe_id: String,
    audience: Vec<String>,
}

impl JwtCacheKey {
    /// The key of `spiffe_id` with `audience` (in any order).
    pub fn new(spiffe_id: &str, audience: &[String]) -> Self {
        let audience: BTreeSet<&String> = audience.iter().collect();
        JwtCacheKey {
            spiffe_id: spiffe_id.to_owned(),
            audience: audience.into_iter().cloned().collect(),
        }
    }
}

/// What the cache holds for a key at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// A token before its half-life: serve it.
    Fresh(MintedJwtSvid),
    /// A token past its half-life but not expired: renew it, and serve it if renewal
    /// fails.
    Stale(MintedJwtSvid),
    /// Nothing usable.
    Missing,
}

#[derive(Debug)]
struct Slot {
    svid: MintedJwtSvid,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<JwtCacheKey, Slot>,
    tick: u64,
}

/// The JWT-SVID cache. See the [module documentation](self).
#[derive(Debug)]
pub struct JwtSvidCache {
    inner: Mutex<Inner>,
    max_size: usize,
}

impl Default for JwtSvidCache {
    fn default() -> Self {
        JwtSvidCache::new(DEFAULT_MAX_SIZE)
    }
}

/// Whether `svid` is past half of its lifetime at `now` (an unusable lifetime counts as
/// past it).
pub fn past_half_life(svid: &MintedJwtSvid, now: SystemTime) -> bool {
    let now = unix(now);
    let lifetime = svid.expires_at.saturating_sub(svid.issued_at);
    if lifetime <= 0 {
        return true;
    }
    now >= svid.issued_at.saturating_add(lifetime / 2)
}

fn expired(svid: &MintedJwtSvid, now: SystemTime) -> bool {
    unix(now) >= svid.expires_at
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

impl JwtSvidCache {
    /// An empty cache holding at most `max_size` tokens (at least one).
    pub fn new(max_size: usize) -> Self {
        JwtSvidCache {
            inner: Mutex::new(Inner::default()),
            max_size: max_size.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the cache holds for `spiffe_id` and `audience` at `now`. Expired tokens are
    /// dropped.
    pub fn get(&self, spiffe_id: &str, audience: &[String], now: SystemTime) -> Lookup {
        let key = JwtCacheKey::new(spiffe_id, audience);
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        let Some(slot) = inner.slots.get_mut(&key) else {
            return Lookup::Missing;
        };
        if expired(&slot.svid, now) {
            inner.slots.remove(&key);
            return Lookup::Missing;
        }
        slot.last_used = tick;
        if past_half_life(&slot.svid, now) {
            Lookup::Stale(slot.svid.clone())
        } else {
            Lookup::Fresh(slot.svid.clone())
        }
    }

    /// Caches `svid` for `audience` under its own SPIFFE ID, evicting the least recently
    /// used token when full.
    pub fn insert(&self, audience: &[String], svid: MintedJwtSvid) {
        let key = JwtCacheKey::new(svid.spiffe_id.as_str(), audience);
        let mut inner = self.lock();
        inner.tick = inner.tick.wrapping_add(1);
        let tick = inner.tick;
        if !inner.slots.contains_key(&key) && inner.slots.len() >= self.max_size {
            let oldest = inner
                .slots
                .iter()
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                inner.slots.remove(&oldest);
            }
        }
        inner.slots.insert(
            key,
            Slot {
                svid,
                last_used: tick,
            },
        );
    }

    /// Drops every cached token whose header `kid` is one of `key_ids` (JWT keys the
    /// server marked tainted); returns how many were dropped. Tokens whose header cannot
    /// be read are dropped too.
    pub fn purge_key_ids(&self, key_ids: &BTreeSet<String>) -> usize {
        if key_ids.is_empty() {
            return 0;
        }
        let mut inner = self.lock();
        let before = inner.slots.len();
        inner.slots.retain(|_, slot| {
            token_kid(&slot.svid.token).is_some_and(|kid| !key_ids.contains(&kid))
        });
        before - inner.slots.len()
    }

    /// A token for the entry `entry_id` (SPIFFE ID `spiffe_id`) and `audience`: the
    /// cached one before its half-life, else a new one from `minter` (cached under the
    /// SPIFFE ID the server returned), else the cached one while it is still valid.
    pub async fn fetch(
        &self,
        minter: &dyn JwtSvidMinter,
        entry_id: &str,
        spiffe_id: &SpiffeId,
        audience: &[String],
        now: SystemTime,
    ) -> Result<MintedJwtSvid, String> {
        let cached = match self.get(spiffe_id.as_str(), audience, now) {
            Lookup::Fresh(svid) => return Ok(svid),
            Lookup::Stale(svid) => Some(svid),
            Lookup::Missing => None,
        };
        let minted = match &cached {
            // A still-valid token is at hand: do not wait long for the server.
            Some(_) => {
                tokio::time::timeout(CACHE_HIT_TIMEOUT, minter.new_jwt_svid(entry_id, audience))
                    .await
                    .unwrap_or_else(|_| Err("timed out minting a new JWT-SVID".to_owned()))
            }
            None => minter.new_jwt_svid(entry_id, audience).await,
        };
        match (minted, cached) {
            (Ok(svid), _) => {
                self.insert(audience, svid.clone());
                Ok(svid)
            }
            (Err(error), Some(cached)) => {
                tracing::warn!(spiffe_id = %spiffe_id, error = %error, "Unable to renew JWT-SVID; using the cached one");
                Ok(cached)
            }
            (Err(error), None) => Err(error),
        }
    }
}

/// The `kid` of a JWS compact token's protected header, if it can be read.
fn token_kid(token: &str) -> Option<String> {
    use base64::Engine as _;
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

/// How long a renewal may take while a valid cached token exists (the role of SPIRE's
/// `jwt_svid_cache_hit_timeout`); past it the cached token is served.
pub const CACHE_HIT_TIMEOUT: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    fn id(path: &str) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://example.org{path}")).expect("valid ID")
    }

    fn svid(path: &str, token: &str, iat: i64, exp: i64) -> MintedJwtSvid {
        MintedJwtSvid {
            token: token.to_owned(),
            spiffe_id: id(path),
            issued_at: iat,
            expires_at: exp,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn aud(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn key_ignores_audience_order_and_duplicates() {
        let a = JwtCacheKey::new("spiffe://example.org/w", &aud(&["b", "a"]));
        let b = JwtCacheKey::new("spiffe://example.org/w", &aud(&["a", "b", "a"]));
        assert_eq!(a, b);
        let c = JwtCacheKey::new("spiffe://example.org/w", &aud(&["a"]));
        assert_ne!(a, c);
        let d = JwtCacheKey::new("spiffe://example.org/x", &aud(&["a", "b"]));
        assert_ne!(a, d);
        // No ambiguity between the ID and the audiences.
        let e = JwtCacheKey::new("spiffe://example.org/wa", &aud(&["b"]));
        let f = JwtCacheKey::new("spiffe://example.org/w", &aud(&["ab"]));
        assert_ne!(e, f);
    }

    #[test]
    fn fresh_until_half_life_then_stale_until_expiry() {
        let cache = JwtSvidCache::default();
        cache.insert(&aud(&["x", "y"]), svid("/w", "t1", 1000, 1300));
        let lookup = |t| cache.get("spiffe://example.org/w", &aud(&["y", "x"]), at(t));
        assert!(matches!(lookup(1000), Lookup::Fresh(s) if s.token == "t1"));
        assert!(matches!(lookup(1149), Lookup::Fresh(_)));
        assert!(matches!(lookup(1150), Lookup::Stale(_)));
        assert!(matches!(lookup(1299), Lookup::Stale(_)));
        assert_eq!(lookup(1300), Lookup::Missing);
        assert!(cache.is_empty(), "expired tokens are dropped");
        assert_eq!(
            cache.get("spiffe://example.org/w", &aud(&["x"]), at(1000)),
            Lookup::Missing
        );
    }

    #[test]
    fn degenerate_lifetime_is_always_stale() {
        assert!(past_half_life(&svid("/w", "t", 1000, 1000), at(900)));
        assert!(past_half_life(&svid("/w", "t", 1000, 900), at(900)));
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let cache = JwtSvidCache::new(2);
        cache.insert(&aud(&["a"]), svid("/one", "t1", 0, i64::MAX));
        cache.insert(&aud(&["a"]), svid("/two", "t2", 0, i64::MAX));
        // Touch /one so /two becomes the least recently used.
        assert!(matches!(
            cache.get("spiffe://example.org/one", &aud(&["a"]), at(10)),
            Lookup::Fresh(_)
        ));
        cache.insert(&aud(&["a"]), svid("/three", "t3", 0, i64::MAX));
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get("spiffe://example.org/two", &aud(&["a"]), at(10)),
            Lookup::Missing
        );
        // Replacing an existing key does not evict.
        cache.insert(&aud(&["a"]), svid("/three", "t4", 0, i64::MAX));
        assert_eq!(cache.len(), 2);
    }

    #[derive(Debug)]
    struct Fake {
        result: Result<MintedJwtSvid, String>,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[tonic::async_trait]
    impl JwtSvidMinter for Fake {
        async fn new_jwt_svid(&self, _: &str, _: &[String]) -> Result<MintedJwtSvid, String> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.result.clone()
        }
    }

    #[tokio::test]
    async fn fetch_uses_cache_and_falls_back_to_valid_token() {
        let cache = JwtSvidCache::default();
        let minter = Fake {
            result: Ok(svid("/w", "t1", 1000, 1300)),
            calls: Default::default(),
        };
        let w = id("/w");
        let a = aud(&["x"]);
        let first = cache.fetch(&minter, "e1", &w, &a, at(1000)).await;
        assert_eq!(first.map(|s| s.token), Ok("t1".to_owned()));
        let second = cache.fetch(&minter, "e1", &w, &a, at(1100)).await;
        assert_eq!(second.map(|s| s.token), Ok("t1".to_owned()));
        assert_eq!(minter.calls.load(std::sync::atomic::Ordering::SeqCst), 1);

        let failing = Fake {
            result: Err("server down".to_owned()),
            calls: Default::default(),
        };
        let stale = cache.fetch(&failing, "e1", &w, &a, at(1200)).await;
        assert_eq!(stale.map(|s| s.token), Ok("t1".to_owned()));
        assert_eq!(failing.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let gone = cache.fetch(&failing, "e1", &w, &a, at(1300)).await;
        assert_eq!(gone, Err("server down".to_owned()));
    }

    /// A token-shaped string whose header names `kid` (the signature is not read).
    fn token_with_kid(kid: &str) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#));
        format!("{header}.e30.c2ln")
    }

    #[test]
    fn purge_drops_tokens_of_tainted_keys_only() {
        let cache = JwtSvidCache::default();
        cache.insert(&aud(&["a"]), svid("/old", &token_with_kid("old"), 0, 600));
        cache.insert(&aud(&["a"]), svid("/new", &token_with_kid("new"), 0, 600));
        cache.insert(&aud(&["a"]), svid("/junk", "not-a-jwt", 0, 600));
        assert_eq!(cache.purge_key_ids(&BTreeSet::new()), 0);
        assert_eq!(cache.len(), 3);
        let tainted: BTreeSet<String> = ["old".to_owned()].into();
        assert_eq!(
            cache.purge_key_ids(&tainted),
            2,
            "the old kid and the unreadable one"
        );
        assert!(matches!(
            cache.get(id("/new").as_str(), &aud(&["a"]), at(10)),
            Lookup::Fresh(_)
        ));
        assert_eq!(
            cache.get(id("/old").as_str(), &aud(&["a"]), at(10)),
            Lookup::Missing
        );
    }
}
