//! `spire.api.server.bundle.v1.Bundle`: the trust domain's own bundle and the bundles of
//! federated trust domains (server.md §3.4).

use std::sync::Arc;

use spire_proto::spire::api::server::bundle::v1 as pb;
use spire_proto::spire::api::server::bundle::v1::bundle_server::Bundle as BundleApi;
use spire_proto::spire::api::types;
use tonic::{Request, Response, Status};

use spiffe_core::TrustDomain;

use super::{ApiContext, store_status};
use crate::datastore::{
    Bundle, BundleMask, DataStoreError, DeleteMode, JwtKey, Pagination, X509Authority,
};

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

/// A bundle from the API, validated as SPIRE's `api.ProtoToBundle`: a trust domain
/// name or ID, X.509 authorities that parse as certificates, JWT authorities with a key
/// ID and a PKIX public key. Taint markers and JWT key expiry are kept.
pub fn bundle_from_proto(bundle: &types::Bundle) -> Result<Bundle, String> {
    let td = TrustDomain::parse(&bundle.trust_domain)
        .map_err(|e| format!("invalid trust domain {:?}: {e}", bundle.trust_domain))?;
    for key in &bundle.jwt_authorities {
        if key.key_id.is_empty() {
            return Err("missing key ID".into());
        }
    }
    // Parses every certificate and public key.
    spire_common::convert::bundle_from_proto(&types::Bundle {
        trust_domain: td.name().to_owned(),
        ..bundle.clone()
    })
    .map_err(|e| e.to_string())?;
    Ok(Bundle {
        trust_domain: td.name().to_owned(),
        x509_authorities: bundle
            .x509_authorities
            .iter()
            .map(|a| X509Authority {
                asn1: a.asn1.clone(),
                tainted: a.tainted,
            })
            .collect(),
        jwt_authorities: bundle
            .jwt_authorities
            .iter()
            .map(jwt_key_from_proto)
            .collect(),
        wit_authorities: Vec::new(),
        refresh_hint: bundle.refresh_hint,
        sequence_number: bundle.sequence_number,
    })
}

fn jwt_key_from_proto(key: &types::JwtKey) -> JwtKey {
    JwtKey {
        public_key: key.public_key.clone(),
        key_id: key.key_id.clone(),
        expires_at: key.expires_at,
        tainted: key.tainted,
    }
}

/// The datastore mask for an API bundle mask (`None` = every field).
fn store_mask(mask: Option<&types::BundleMask>) -> BundleMask {
    match mask {
        None => BundleMask::ALL,
        Some(m) => BundleMask {
            x509_authorities: m.x509_authorities,
            jwt_authorities: m.jwt_authorities,
            wit_authorities: false,
            refresh_hint: m.refresh_hint,
            sequence_number: m.sequence_number,
        },
    }
}

/// Clears the fields an output mask leaves out (the trust domain is always returned).
fn apply_mask(mut bundle: types::Bundle, mask: Option<&types::BundleMask>) -> types::Bundle {
    let Some(mask) = mask else {
        return bundle;
    };
    if !mask.x509_authorities {
        bundle.x509_authorities.clear();
    }
    if !mask.jwt_authorities {
        bundle.jwt_authorities.clear();
    }
    if !mask.refresh_hint {
        bundle.refresh_hint = 0;
    }
    if !mask.sequence_number {
        bundle.sequence_number = 0;
    }
    bundle
}

/// An error whose details are logged, as SPIRE's `api.MakeErr`.
fn failure(code: tonic::Code, message: &str, error: &dyn std::fmt::Display) -> Status {
    if code == tonic::Code::Internal {
        tracing::error!(error = %error, "{message}");
    }
    Status::new(code, format!("{message}: {error}"))
}

/// A per-item status for a datastore failure.
fn item_failure(message: &str, error: &DataStoreError) -> types::Status {
    let status = failure(tonic::Code::from_i32(error.grpc_code()), message, error);
    super::status::item(status.code(), status.message())
}

/// What a batch operation does with one bundle.
#[derive(Clone, Copy)]
enum BatchOp {
    Create,
    Update,
    Set,
}

impl BundleService {
    /// Parses a trust domain argument and refuses the server's own.
    fn federated_td(&self, name: &str, own_message: &str) -> Result<TrustDomain, Status> {
        let td = TrustDomain::parse(name).map_err(|e| {
            Status::invalid_argument(format!("trust domain argument is not valid: {e}"))
        })?;
        if td == self.ctx.trust_domain {
            return Err(Status::invalid_argument(own_message.to_owned()));
        }
        Ok(td)
    }

    /// One item of BatchCreate/Update/SetFederatedBundle.
    /// Applies `op` to each bundle of a batch, in order: (per-item status, bundle).
    async fn batch(
        &self,
        op: BatchOp,
        bundles: &[types::Bundle],
        input_mask: Option<&types::BundleMask>,
        output_mask: Option<&types::BundleMask>,
    ) -> Vec<(types::Status, Option<types::Bundle>)> {
        let mut results = Vec::with_capacity(bundles.len());
        for bundle in bundles {
            results.push(self.batch_item(op, bundle, input_mask, output_mask).await);
        }
        results
    }

    async fn batch_item(
        &self,
        op: BatchOp,
        bundle: &types::Bundle,
        input_mask: Option<&types::BundleMask>,
        output_mask: Option<&types::BundleMask>,
    ) -> (types::Status, Option<types::Bundle>) {
        let (verb, failed) = match op {
            BatchOp::Create => ("creating", "unable to create bundle"),
            BatchOp::Update => ("updating", "failed to update bundle"),
            BatchOp::Set => ("setting", "failed to set bundle"),
        };
        let converted = match bundle_from_proto(bundle) {
            Ok(b) => b,
            Err(e) => {
                return (
                    super::status::item(
                        tonic::Code::InvalidArgument,
                        format!("failed to convert bundle: {e}"),
                    ),
                    None,
                );
            }
        };
        if converted.trust_domain == self.ctx.trust_domain.name() {
            return (
                super::status::item(
                    tonic::Code::InvalidArgument,
                    format!(
                        "{verb} a federated bundle for the server's own trust domain is not allowed"
                    ),
                ),
                None,
            );
        }
        let result = match op {
            BatchOp::Create => self.ctx.store.create_bundle(&converted).await,
            BatchOp::Update => {
                self.ctx
                    .store
                    .update_bundle(&converted, Some(&store_mask(input_mask)))
                    .await
            }
            BatchOp::Set => self.ctx.store.set_bundle(&converted).await,
        };
        match result {
            Ok(stored) => (
                super::status::ok(),
                Some(apply_mask(bundle_to_proto(&stored), output_mask)),
            ),
            Err(DataStoreError::AlreadyExists { .. }) => (
                super::status::item(tonic::Code::AlreadyExists, "bundle already exists"),
                None,
            ),
            Err(DataStoreError::NotFound(_)) => (
                super::status::item(tonic::Code::NotFound, "bundle not found"),
                None,
            ),
            Err(e) => (item_failure(failed, &e), None),
        }
    }
}

#[tonic::async_trait]
impl BundleApi for BundleService {
    async fn get_bundle(
        &self,
        request: Request<pb::GetBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let mask = request.into_inner().output_mask;
        let bundle = self
            .ctx
            .store
            .fetch_bundle(self.ctx.trust_domain.name())
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found("bundle not found"))?;
        Ok(Response::new(apply_mask(
            bundle_to_proto(&bundle),
            mask.as_ref(),
        )))
    }

    async fn append_bundle(
        &self,
        request: Request<pb::AppendBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let request = request.into_inner();
        if request.x509_authorities.is_empty() && request.jwt_authorities.is_empty() {
            return Err(Status::invalid_argument("no authorities to append"));
        }
        for a in &request.x509_authorities {
            x509_parser::parse_x509_certificate(&a.asn1).map_err(|e| {
                Status::invalid_argument(format!("failed to convert X.509 authority: {e}"))
            })?;
        }
        for key in &request.jwt_authorities {
            if key.key_id.is_empty() {
                return Err(Status::invalid_argument(
                    "failed to convert JWT authority: missing key ID",
                ));
            }
            spiffe_core::PublicKey::from_spki_der(&key.public_key).map_err(|e| {
                Status::invalid_argument(format!("failed to convert JWT authority: {e}"))
            })?;
        }
        let append = Bundle {
            trust_domain: self.ctx.trust_domain.name().to_owned(),
            x509_authorities: request
                .x509_authorities
                .iter()
                .map(|a| X509Authority {
                    asn1: a.asn1.clone(),
                    tainted: a.tainted,
                })
                .collect(),
            jwt_authorities: request
                .jwt_authorities
                .iter()
                .map(jwt_key_from_proto)
                .collect(),
            ..Default::default()
        };
        let stored = self
            .ctx
            .store
            .append_bundle(&append)
            .await
            .map_err(|e| failure(tonic::Code::Internal, "failed to append bundle", &e))?;
        Ok(Response::new(apply_mask(
            bundle_to_proto(&stored),
            request.output_mask.as_ref(),
        )))
    }

    async fn publish_jwt_authority(
        &self,
        request: Request<pb::PublishJwtAuthorityRequest>,
    ) -> Result<Response<pb::PublishJwtAuthorityResponse>, Status> {
        super::downstream::publish_jwt_authority(&self.ctx, &request.into_inner()).await
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
        let count = self
            .ctx
            .store
            .count_bundles()
            .await
            .map_err(|e| failure(tonic::Code::Internal, "failed to count bundles", &e))?;
        Ok(Response::new(pb::CountBundlesResponse {
            count: i32::try_from(count).unwrap_or(i32::MAX),
        }))
    }

    async fn list_federated_bundles(
        &self,
        request: Request<pb::ListFederatedBundlesRequest>,
    ) -> Result<Response<pb::ListFederatedBundlesResponse>, Status> {
        let request = request.into_inner();
        if request.page_size < 0 {
            return Err(Status::invalid_argument("page size must not be negative"));
        }
        let pagination = (request.page_size > 0).then(|| Pagination {
            page_size: request.page_size as u32,
            token: request.page_token.clone(),
        });
        let page = self
            .ctx
            .store
            .list_bundles(pagination.as_ref())
            .await
            .map_err(|e| failure(tonic::Code::Internal, "failed to list bundles", &e))?;
        let own = self.ctx.trust_domain.name();
        Ok(Response::new(pb::ListFederatedBundlesResponse {
            bundles: page
                .bundles
                .iter()
                .map(bundle_to_proto)
                .filter(|b| b.trust_domain != own)
                .map(|b| apply_mask(b, request.output_mask.as_ref()))
                .collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_federated_bundle(
        &self,
        request: Request<pb::GetFederatedBundleRequest>,
    ) -> Result<Response<types::Bundle>, Status> {
        let request = request.into_inner();
        let td = self.federated_td(
            &request.trust_domain,
            "getting a federated bundle for the server's own trust domain is not allowed",
        )?;
        let bundle = self
            .ctx
            .store
            .fetch_bundle(td.name())
            .await
            .map_err(|e| failure(tonic::Code::Internal, "failed to fetch bundle", &e))?
            .ok_or_else(|| Status::not_found("bundle not found"))?;
        Ok(Response::new(apply_mask(
            bundle_to_proto(&bundle),
            request.output_mask.as_ref(),
        )))
    }

    async fn batch_create_federated_bundle(
        &self,
        request: Request<pb::BatchCreateFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchCreateFederatedBundleResponse>, Status> {
        let request = request.into_inner();
        let results = self
            .batch(
                BatchOp::Create,
                &request.bundle,
                None,
                request.output_mask.as_ref(),
            )
            .await
            .into_iter()
            .map(
                |(status, bundle)| pb::batch_create_federated_bundle_response::Result {
                    status: Some(status),
                    bundle,
                },
            )
            .collect();
        Ok(Response::new(pb::BatchCreateFederatedBundleResponse {
            results,
        }))
    }

    async fn batch_update_federated_bundle(
        &self,
        request: Request<pb::BatchUpdateFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchUpdateFederatedBundleResponse>, Status> {
        let request = request.into_inner();
        let results = self
            .batch(
                BatchOp::Update,
                &request.bundle,
                request.input_mask.as_ref(),
                request.output_mask.as_ref(),
            )
            .await
            .into_iter()
            .map(
                |(status, bundle)| pb::batch_update_federated_bundle_response::Result {
                    status: Some(status),
                    bundle,
                },
            )
            .collect();
        Ok(Response::new(pb::BatchUpdateFederatedBundleResponse {
            results,
        }))
    }

    async fn batch_set_federated_bundle(
        &self,
        request: Request<pb::BatchSetFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchSetFederatedBundleResponse>, Status> {
        let request = request.into_inner();
        let results = self
            .batch(
                BatchOp::Set,
                &request.bundle,
                None,
                request.output_mask.as_ref(),
            )
            .await
            .into_iter()
            .map(
                |(status, bundle)| pb::batch_set_federated_bundle_response::Result {
                    status: Some(status),
                    bundle,
                },
            )
            .collect();
        Ok(Response::new(pb::BatchSetFederatedBundleResponse {
            results,
        }))
    }

    async fn batch_delete_federated_bundle(
        &self,
        request: Request<pb::BatchDeleteFederatedBundleRequest>,
    ) -> Result<Response<pb::BatchDeleteFederatedBundleResponse>, Status> {
        let request = request.into_inner();
        let mode = match request.mode {
            0 => DeleteMode::Restrict,
            1 => DeleteMode::Delete,
            2 => DeleteMode::Dissociate,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unknown delete mode {other}"
                )));
            }
        };
        let mut results = Vec::with_capacity(request.trust_domains.len());
        for name in request.trust_domains {
            let status = match TrustDomain::parse(&name) {
                Err(e) => super::status::item(
                    tonic::Code::InvalidArgument,
                    format!("malformed trust domain: {e}"),
                ),
                Ok(td) if td == self.ctx.trust_domain => super::status::item(
                    tonic::Code::InvalidArgument,
                    "removing the bundle for the server trust domain is not allowed",
                ),
                Ok(td) => match self.ctx.store.delete_bundle(td.name(), mode).await {
                    Ok(()) => super::status::ok(),
                    Err(DataStoreError::NotFound(_)) => {
                        super::status::item(tonic::Code::NotFound, "bundle not found")
                    }
                    Err(e) => item_failure("failed to delete federated bundle", &e),
                },
            };
            results.push(pb::batch_delete_federated_bundle_response::Result {
                status: Some(status),
                trust_domain: name,
            });
        }
        Ok(Response::new(pb::BatchDeleteFederatedBundleResponse {
            results,
        }))
    }
}
