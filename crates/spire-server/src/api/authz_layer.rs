//! A tower layer that authorizes every gRPC call before it reaches a service, using the
//! policy table of [`crate::authz`], and hands the decision to the handler in the request
//! extensions. Nothing is served without passing through it.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures::future::BoxFuture;
use spiffe_core::SpiffeId;
use tonic::body::Body;
use tower::{Layer, Service};

use super::caller::caller_of;
use super::status::permission_denied_with_reason;
use crate::authz::{Allow, Authorized, Caller, CallerFacts, Denied, allow_for, authorize};

/// Where the layer learns what it needs to know about an SVID caller.
#[tonic::async_trait]
pub trait CallerFactSource: Send + Sync + 'static {
    /// Facts about `id` for a method allowing `allow` (only what `allow` can use is
    /// looked up).
    async fn facts(&self, id: &SpiffeId, allow: Allow) -> Result<CallerFacts, tonic::Status>;
    /// Records that the agent `id` now uses the SVID RenewAgent issued it.
    async fn promote_new_serial(&self, id: &SpiffeId) -> Result<(), tonic::Status>;
}

/// The authorization layer.
#[derive(Clone)]
pub struct AuthzLayer {
    facts: Arc<dyn CallerFactSource>,
    served: Option<Arc<[&'static str]>>,
}

impl AuthzLayer {
    /// A layer that looks caller facts up in `facts`.
    pub fn new(facts: Arc<dyn CallerFactSource>) -> Self {
        AuthzLayer {
            facts,
            served: None,
        }
    }

    /// Limits the layer to the gRPC services (full names, e.g.
    /// `spire.api.server.agent.v1.Agent`) its listener serves: calls to any other service
    /// answer `Unimplemented` ("unknown service ...") before authorization, as gRPC does for
    /// a service not registered on a server (SPIRE's TCP listener has no Logger, Debug or
    /// Health), instead of a `PermissionDenied` that suggests the call exists there.
    pub fn serving(mut self, services: &[&'static str]) -> Self {
        self.served = Some(services.into());
        self
    }
}

impl<S> Layer<S> for AuthzLayer {
    type Service = AuthzService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthzService {
            inner,
            facts: self.facts.clone(),
            served: self.served.clone(),
        }
    }
}

/// The service [`AuthzLayer`] wraps around the gRPC routes.
#[derive(Clone)]
pub struct AuthzService<S> {
    inner: S,
    facts: Arc<dyn CallerFactSource>,
    served: Option<Arc<[&'static str]>>,
}

impl<S> Service<http::Request<Body>> for AuthzService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this call; the fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let facts = self.facts.clone();
        let served = self.served.clone();
        Box::pin(async move {
            let method = request.uri().path().to_owned();
            let service = method
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if let Some(served) = served
                && !served.contains(&service)
            {
                tracing::debug!(method, "call to a service not served on this listener");
                return Ok(
                    tonic::Status::unimplemented(format!("unknown service {service}")).into_http(),
                );
            }
            let caller = caller_of(request.extensions(), SystemTime::now());
            match decide(&*facts, &method, &caller).await {
                Ok(authorized) => {
                    tracing::debug!(method, authorized_as = ?authorized, "authorized call");
                    request.extensions_mut().insert(authorized);
                    inner.call(request).await
                }
                Err(status) => {
                    tracing::debug!(method, caller = ?caller, error = status.message(), "call denied");
                    Ok(status.into_http())
                }
            }
        })
    }
}

async fn decide(
    facts: &dyn CallerFactSource,
    method: &str,
    caller: &Caller,
) -> Result<Authorized, tonic::Status> {
    let denied =
        || tonic::Status::permission_denied(format!("authorization denied for method {method}"));
    let allow = allow_for(method).ok_or_else(denied)?;
    let caller_facts = match caller {
        Caller::Svid { id, .. } if !allow.any => facts.facts(id, allow).await?,
        _ => CallerFacts::default(),
    };
    match authorize(method, caller, &caller_facts) {
        Ok(Authorized::Agent { id, promote: true }) => {
            facts.promote_new_serial(&id).await?;
            Ok(Authorized::Agent { id, promote: false })
        }
        Ok(authorized) => Ok(authorized),
        Err(Denied::Method(_)) => Err(denied()),
        Err(Denied::Agent(reason)) => Err(permission_denied_with_reason(
            reason.message(),
            reason.reason_code(),
        )),
    }
}

/// The decision the layer stored for a request.
pub fn authorized<T>(request: &tonic::Request<T>) -> Result<&Authorized, tonic::Status> {
    request
        .extensions()
        .get::<Authorized>()
        .ok_or_else(|| tonic::Status::internal("request reached a handler without authorization"))
}
