//! `spire.api.server.bundle.v1.Bundle`: the trust domain's own bundle (server.md §3.4).

use std::sync::Arc;

use spire_proto::spire::api::server::bundle::v1 as pb;
use spire_proto::spire::api::server::bundle::v1::bundle_server::Bundle as BundleApi;
use spire_proto::spire::api::types;
use tonic::{Request, Response, Status};

use super::{ApiContext, store_status};
use crate::datastore::Bundle;

/// The Bundle service.
#[derive(Clone)]
pub struct BundleService {
    ctx: Arc<ApiContext>,
}

impl BundleService {
    /// The service over the shared API context.
    pub fn new(ctx: Arc<ApiContext>) -> Self {
        BundleService { ctx }
    }
}

/// The API form of a stored bundle.
pub fn bundle_to_proto(bundle: &Bundle) -> types::Bundle {
    types::Bundle {
        trust_domain: bundle
            .trust_domain
            .strip_prefix("spiffe://")
            .unwrap_or(&bundle.trust_domain)
            .to_owned(),
        x509_authorities: bundle
            .x509_authorities
            .iter()
            .map(|a| types::X509Certificate {
                asn1: a.asn1.clone(),
                tainted: a.tainted,
            })
            .collect(),
        jwt_authorities: bundle
            .jwt_authorities
            .iter()
            .map(|k| types::JwtKey {
                public_key: k.public_key.clone(),
                key_id: k.key_id.clone(),
                expires_at: k.expires_at,
                tainted: k.tainted,
            })
            .collect(),
        refresh_hint: bundle.refresh_hint,
        sequence_number: bundle.sequence_number,
        wit_authorities: Vec::new(),
    }
}

fn unimplemented(method: &str) -> Status {
    Status::unimplemented(format!(
        "Bundle.{method} is not implemented yet in spire-rs"
    ))
}

#[tonic::async_trait]
impl BundleApi for BundleService {
    async fn get_bundle(
        &self,
        _request: Request<pb::GetBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let bundle = self
            .ctx
            .store
            .fetch_bundle(self.ctx.trust_domain.name())
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("bundle not found"))?;
        Ok(Response::new(bundle_to_proto(&bundle)))
    }

    async fn append_bundle(
        &self,
        _request: Request<pb::AppendBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        Err(unimplemented("AppendBundle"))
    }

    async fn publish_jwt_authority(
        &self,
        _request: Request<pb::PublishJwtAuthorityRequest>,
    ) -> Result<Response<pb::PublishJwtAuthorityResponse>, Status> {
        Err(unimplemented("PublishJWTAuthority"))
    }

    async fn publish_wit_authority(
        &self,
        _request: Request<pb::PublishWitAuthorityRequest>,
    ) -> Result<Response<pb::PublishWitAuthorityResponse>, Status> {
        Err(Status::unimplemented("WIT-SVIDs are not supported"))
    }

    async fn count_bundles(
        &self,
        _request: Request<pb::CountBundlesRequest>,
    ) -> Result<Response<pb::CountBundlesResponse>, Status> {
        Err(unimplemented("CountBundles"))
    }

    async fn list_federated_bundles(
        &self,
        _request: Request<pb::ListFederatedBundlesRequest>,
    ) -> Result<Response<pb::ListFederatedBundlesResponse>, Status> {
        Err(unimplemented("ListFederatedBundles"))
    }

    async fn get_federated_bundle(
        &self,
        _request: Request<pb::GetFederatedBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        Err(unimplemented("GetFederatedBundle"))
    }

    async fn batch_create_federated_bundle(
        &self,
        _request: Request<pb::BatchCreateFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchCreateFederatedBundleResponse>, Status> {
        Err(unimplemented("BatchCreateFederatedBundle"))
    }

    async fn batch_update_federated_bundle(
        &self,
        _request: Request<pb::BatchUpdateFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchUpdateFederatedBundleResponse>, Status> {
        Err(unimplemented("BatchUpdateFederatedBundle"))
    }

    async fn batch_set_federated_bundle(
        &self,
        _request: Request<pb::BatchSetFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchSetFederatedBundleResponse>, Status> {
        Err(unimplemented("BatchSetFederatedBundle"))
    }

    async fn batch_delete_federated_bundle(
        &self,
        _request: Request<pb::BatchDeleteFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchDeleteFederatedBundleResponse>, Status> {
        Err(unimplemented("BatchDeleteFederatedBundle"))
    }
}
