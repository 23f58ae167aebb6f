//! `spire.api.server.trustdomain.v1.TrustDomain`: federation relationships and on-demand
//! bundle refresh (server.md §3.4, §7).

use std::sync::Arc;

use spiffe_core::{SpiffeId, TrustDomain};
use spire_proto::spire::api::server::trustdomain::v1 as pb;
use spire_proto::spire::api::server::trustdomain::v1::trust_domain_server::TrustDomain as TrustDomainApi;
use spire_proto::spire::api::types;
use spire_proto::spire::api::types::federation_relationship::BundleEndpointProfile as ProtoProfile;
use tonic::{Request, Response, Status};

use super::ApiContext;
use super::bundle::{bundle_from_proto, bundle_to_proto};
use super::status::{item, ok};
use crate::datastore::{
    BundleEndpointProfile, DataStoreError, FederationRelationship, FederationRelationshipMask,
    Pagination,
};
use crate::federation::{BundleRefresher, RefreshError};

/// The TrustDomain service.
#[derive(Clone)]
pub struct TrustDomainService {
    ctx: Arc<ApiContext>,
    refresher: Arc<BundleRefresher>,
}

impl TrustDomainService {
    /// The service over the shared API context; `RefreshBundle` uses `refresher`.
    pub fn new(ctx: Arc<ApiContext>, refresher: Arc<BundleRefresher>) -> Self {
        TrustDomainService { ctx, refresher }
    }
}

const ALL: types::FederationRelationshipMask = types::FederationRelationshipMask {
    bundle_endpoint_url: true,
    bundle_endpoint_profile: true,
    trust_domain_bundle: true,
};

/// SPIRE's `ProtoToFederationRelationshipWithMask`: validates an API relationship and
/// converts the fields selected by `mask`.
pub fn relationship_from_proto(
    fr: &types::FederationRelationship,
    mask: &types::FederationRelationshipMask,
) -> Result<FederationRelationship, String> {
    let td = TrustDomain::parse(&fr.trust_domain)
        .map_err(|e| format!("failed to parse trust domain: {e}"))?;
    if mask.bundle_endpoint_url {
        let uri: http::Uri = fr
            .bundle_endpoint_url
            .parse()
            .map_err(|e| format!("failed to parse bundle endpoint URL: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err("bundle endpoint URL must use the https scheme".into());
        }
        match uri.authority() {
            None => return Err("bundle endpoint URL must specify the host".into()),
            Some(a) if a.host().is_empty() => {
                return Err("bundle endpoint URL must specify the host".into());
            }
            Some(a) if a.as_str().contains('@') => {
                return Err("bundle endpoint URL must not contain user info".into());
            }
            Some(_) => {}
        }
    }
    let bundle_endpoint_profile = if mask.bundle_endpoint_profile {
        match &fr.bundle_endpoint_profile {
            Some(ProtoProfile::HttpsWeb(_)) => BundleEndpointProfile::HttpsWeb,
            Some(ProtoProfile::HttpsSpiffe(p)) => {
                let id = SpiffeId::parse(&p.endpoint_spiffe_id)
                    .map_err(|e| format!("failed to parse endpoint SPIFFE ID: {e}"))?;
                BundleEndpointProfile::HttpsSpiffe {
                    endpoint_spiffe_id: id.as_str().to_owned(),
                }
            }
            None => return Err("unsupported bundle endpoint profile type: <nil>".into()),
        }
    } else {
        BundleEndpointProfile::HttpsWeb
    };
    let trust_domain_bundle = match (&fr.trust_domain_bundle, mask.trust_domain_bundle) {
        (Some(bundle), true) => {
            let parsed =
                bundle_from_proto(bundle).map_err(|e| format!("failed to parse bundle: {e}"))?;
            let bundle_td = TrustDomain::parse(&bundle.trust_domain).ok();
            if bundle_td.as_ref() != Some(&td) {
                return Err(format!(
                    "trust domain bundle ({:?}) must match the trust domain of the federation relationship ({:?})",
                    bundle.trust_domain,
                    td.name()
                ));
            }
            Some(parsed)
        }
        _ => None,
    };
    Ok(FederationRelationship {
        trust_domain: td.name().to_owned(),
        bundle_endpoint_url: fr.bundle_endpoint_url.clone(),
        bundle_endpoint_profile,
        trust_domain_bundle,
    })
}

/// SPIRE's `FederationRelationshipToProto`: the API form with the fields of `mask`.
pub fn relationship_to_proto(
    fr: &FederationRelationship,
    mask: &types::FederationRelationshipMask,
) -> types::FederationRelationship {
    types::FederationRelationship {
        trust_domain: fr.trust_domain.clone(),
        bundle_endpoint_url: if mask.bundle_endpoint_url {
            fr.bundle_endpoint_url.clone()
        } else {
            String::new()
        },
        bundle_endpoint_profile: if mask.bundle_endpoint_profile {
            Some(match &fr.bundle_endpoint_profile {
                BundleEndpointProfile::HttpsWeb => {
                    ProtoProfile::HttpsWeb(types::HttpsWebProfile {})
                }
                BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } => {
                    ProtoProfile::HttpsSpiffe(types::HttpsspiffeProfile {
                        endpoint_spiffe_id: endpoint_spiffe_id.clone(),
                    })
                }
            })
        } else {
            None
        },
        trust_domain_bundle: if mask.trust_domain_bundle {
            fr.trust_domain_bundle.as_ref().map(bundle_to_proto)
        } else {
            None
        },
    }
}

fn mask_or_all(
    mask: Option<&types::FederationRelationshipMask>,
) -> types::FederationRelationshipMask {
    mask.copied().unwrap_or(ALL)
}

fn failure(message: &str, error: &dyn std::fmt::Display) -> types::Status {
    tracing::error!(error = %error, "{message}");
    item(tonic::Code::Internal, format!("{message}: {error}"))
}

impl TrustDomainService {
    async fn create_one(
        &self,
        fr: &types::FederationRelationship,
        output: &types::FederationRelationshipMask,
    ) -> pb::batch_create_federation_relationship_response::Result {
        use pb::batch_create_federation_relationship_response::Result as R;
        let parsed = match relationship_from_proto(fr, &ALL) {
            Ok(p) => p,
            Err(e) => {
                return R {
                    status: Some(item(
                        tonic::Code::InvalidArgument,
                        format!("failed to convert federation relationship: {e}"),
                    )),
                    federation_relationship: None,
                };
            }
        };
        if parsed.trust_domain == self.ctx.trust_domain.name() {
            return R {
                status: Some(item(
                    tonic::Code::InvalidArgument,
                    "unable to create federation relationship for server trust domain",
                )),
                federation_relationship: None,
            };
        }
        match self.ctx.store.create_federation_relationship(&parsed).await {
            Ok(stored) => {
                tracing::debug!(trust_domain_id = %stored.trust_domain, "Federation relationship created");
                R {
                    status: Some(ok()),
                    federation_relationship: Some(relationship_to_proto(&stored, output)),
                }
            }
            Err(e) => R {
                status: Some(failure("failed to create federation relationship", &e)),
                federation_relationship: None,
            },
        }
    }

    async fn update_one(
        &self,
        fr: &types::FederationRelationship,
        input: &types::FederationRelationshipMask,
        output: &types::FederationRelationshipMask,
    ) -> pb::batch_update_federation_relationship_response::Result {
        use pb::batch_update_federation_relationship_response::Result as R;
        let parsed = match relationship_from_proto(fr, input) {
            Ok(p) => p,
            Err(e) => {
                return R {
                    status: Some(item(
                        tonic::Code::InvalidArgument,
                        format!("failed to convert federation relationship: {e}"),
                    )),
                    federation_relationship: None,
                };
            }
        };
        let mask = FederationRelationshipMask {
            bundle_endpoint_url: input.bundle_endpoint_url,
            bundle_endpoint_profile: input.bundle_endpoint_profile,
            trust_domain_bundle: input.trust_domain_bundle,
        };
        match self
            .ctx
            .store
            .update_federation_relationship(&parsed, &mask)
            .await
        {
            Ok(stored) => {
                tracing::debug!(trust_domain_id = %stored.trust_domain, "Federation relationship updated");
                R {
                    status: Some(ok()),
                    federation_relationship: Some(relationship_to_proto(&stored, output)),
                }
            }
            Err(DataStoreError::NotFound(e)) => R {
                status: Some(item(
                    tonic::Code::NotFound,
                    format!("failed to update federation relationship: {e}"),
                )),
                federation_relationship: None,
            },
            Err(e) => R {
                status: Some(failure("failed to update federation relationship", &e)),
                federation_relationship: None,
            },
        }
    }

    async fn delete_one(
        &self,
        td: &str,
    ) -> pb::batch_delete_federation_relationship_response::Result {
        use pb::batch_delete_federation_relationship_response::Result as R;
        if td.is_empty() {
            return R {
                status: Some(item(tonic::Code::InvalidArgument, "missing trust domain")),
                trust_domain: String::new(),
            };
        }
        let parsed = match TrustDomain::parse(td) {
            Ok(t) => t,
            Err(e) => {
                return R {
                    status: Some(item(
                        tonic::Code::InvalidArgument,
                        format!("failed to parse trust domain: {e}"),
                    )),
                    trust_domain: td.to_owned(),
                };
            }
        };
        let name = parsed.name().to_owned();
        let status = match self.ctx.store.delete_federation_relationship(&name).await {
            Ok(()) => {
                tracing::debug!(trust_domain_id = %name, "Federation relationship deleted");
                ok()
            }
            Err(DataStoreError::NotFound(_)) => {
                item(tonic::Code::NotFound, "federation relationship not found")
            }
            Err(e) => failure("failed to delete federation relationship", &e),
        };
        R {
            status: Some(status),
            trust_domain: name,
        }
    }
}

#[tonic::async_trait]
impl TrustDomainApi for TrustDomainService {
    async fn list_federation_relationships(
        &self,
        request: Request<pb::ListFederationRelationshipsRequest>,
    ) -> Result<Response<pb::ListFederationRelationshipsResponse>, Status> {
        let req = request.into_inner();
        let pagination = (req.page_size > 0).then(|| Pagination {
            page_size: req.page_size.unsigned_abs(),
            token: req.page_token.clone(),
        });
        let listed = self
            .ctx
            .store
            .list_federation_relationships(pagination.as_ref())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "Failed to list federation relationships");
                Status::internal(format!("failed to list federation relationships: {e}"))
            })?;
        let mask = mask_or_all(req.output_mask.as_ref());
        Ok(Response::new(pb::ListFederationRelationshipsResponse {
            federation_relationships: listed
                .relationships
                .iter()
                .map(|fr| relationship_to_proto(fr, &mask))
                .collect(),
            next_page_token: listed.next_page_token,
        }))
    }

    async fn get_federation_relationship(
        &self,
        request: Request<pb::GetFederationRelationshipRequest>,
    ) -> Result<Response<types::FederationRelationship>, Status> {
        let req = request.into_inner();
        let td = TrustDomain::parse(&req.trust_domain)
            .map_err(|e| Status::invalid_argument(format!("failed to parse trust domain: {e}")))?;
        let fr = self
            .ctx
            .store
            .fetch_federation_relationship(td.name())
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "Failed to fetch federation relationship");
                Status::internal(format!("failed to fetch federation relationship: {e}"))
            })?
            .ok_or_else(|| Status::not_found("federation relationship does not exist"))?;
        Ok(Response::new(relationship_to_proto(
            &fr,
            &mask_or_all(req.output_mask.as_ref()),
        )))
    }

    async fn batch_create_federation_relationship(
        &self,
        request: Request<pb::BatchCreateFederationRelationshipRequest>,
    ) -> Result<Response<pb::BatchCreateFederationRelationshipResponse>, Status> {
        let req = request.into_inner();
        let output = mask_or_all(req.output_mask.as_ref());
        let mut results = Vec::with_capacity(req.federation_relationships.len());
        for fr in &req.federation_relationships {
            results.push(self.create_one(fr, &output).await);
        }
        Ok(Response::new(
            pb::BatchCreateFederationRelationshipResponse { results },
        ))
    }

    async fn batch_update_federation_relationship(
        &self,
        request: Request<pb::BatchUpdateFederationRelationshipRequest>,
    ) -> Result<Response<pb::BatchUpdateFederationRelationshipResponse>, Status> {
        let req = request.into_inner();
        let input = mask_or_all(req.input_mask.as_ref());
        let output = mask_or_all(req.output_mask.as_ref());
        let mut results = Vec::with_capacity(req.federation_relationships.len());
        for fr in &req.federation_relationships {
            results.push(self.update_one(fr, &input, &output).await);
        }
        Ok(Response::new(
            pb::BatchUpdateFederationRelationshipResponse { results },
        ))
    }

    async fn batch_delete_federation_relationship(
        &self,
        request: Request<pb::BatchDeleteFederationRelationshipRequest>,
    ) -> Result<Response<pb::BatchDeleteFederationRelationshipResponse>, Status> {
        let req = request.into_inner();
        let mut results = Vec::with_capacity(req.trust_domains.len());
        for td in &req.trust_domains {
            results.push(self.delete_one(td).await);
        }
        Ok(Response::new(
            pb::BatchDeleteFederationRelationshipResponse { results },
        ))
    }

    async fn refresh_bundle(
        &self,
        request: Request<pb::RefreshBundleRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let td = TrustDomain::parse(&req.trust_domain)
            .map_err(|e| Status::invalid_argument(format!("failed to parse trust domain: {e}")))?;
        match self.refresher.refresh(&td).await {
            Ok(_) => Ok(Response::new(())),
            Err(RefreshError::NotFound(_)) => Err(Status::not_found(format!(
                "no relationship with trust domain {:?}",
                td.name()
            ))),
            Err(e) => Err(Status::internal(format!("failed to refresh bundle: {e}"))),
        }
    }
}
