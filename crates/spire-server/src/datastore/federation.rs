//! Federation relationships (`federated_trust_domains`).

use sqlx::any::AnyRow;

use super::bundles::set_bundle_tx;
use super::codec::decode_bundle;
use super::error::{DataStoreError, Result};
use super::model::{
    BundleEndpointProfile, DataStoreChange, FederationRelationship, FederationRelationshipMask,
    ListFederationRelationshipsResponse, Pagination, td_id, td_name,
};
use super::store::{SqlStore, Tx, args, col_bytes, col_i64, col_str, page_start};

const WEB: &str = "https_web";
const SPIFFE: &str = "https_spiffe";

impl SqlStore {
    /// Stores a new relationship; a given `trust_domain_bundle` replaces the stored bundle
    /// of that trust domain. `AlreadyExists` if one exists for the trust domain.
    pub async fn create_federation_relationship(
        &self,
        fr: &FederationRelationship,
    ) -> Result<FederationRelationship> {
        validate(fr)?;
        let name = td_name(&fr.trust_domain);
        let mut tx = self.write().await?;
        if tx
            .opt(
                "SELECT id FROM federated_trust_domains WHERE trust_domain = ?",
                args![&name],
            )
            .await?
            .is_some()
        {
            return Err(DataStoreError::already_exists(format!(
                "datastore-sql: federation relationship with {name:?} already exists"
            )));
        }
        if let Some(bundle) = &fr.trust_domain_bundle {
            let mut bundle = bundle.clone();
            bundle.trust_domain = name.clone();
            set_bundle_tx(&mut tx, &bundle).await?;
        }
        let (profile, endpoint_id) = profile_columns(&fr.bundle_endpoint_profile);
        let sql = format!(
            "INSERT INTO federated_trust_domains (created_at, updated_at, trust_domain, bundle_endpoint_url, \
             bundle_endpoint_profile, endpoint_spiffe_id, implicit) VALUES ({now}, {now}, ?, ?, ?, ?, ?)",
            now = tx.now()
        );
        tx.exec(
            &sql,
            args![&name, &fr.bundle_endpoint_url, profile, endpoint_id, false],
        )
        .await?;
        tx.changed(DataStoreChange::FederationRelationshipChanged {
            trust_domain: name.clone(),
        });
        let stored = load(&mut tx, &name).await?;
        self.commit(tx).await?;
        stored.ok_or_else(|| {
            DataStoreError::Internal("datastore-sql: created relationship vanished".into())
        })
    }

    /// The relationship with a trust domain, with its current bundle.
    pub async fn fetch_federation_relationship(
        &self,
        trust_domain: &str,
    ) -> Result<Option<FederationRelationship>> {
        let mut tx = self.read().await?;
        load(&mut tx, &td_name(trust_domain)).await
    }

    /// All relationships, in creation order, optionally paged.
    pub async fn list_federation_relationships(
        &self,
        pagination: Option<&Pagination>,
    ) -> Result<ListFederationRelationshipsResponse> {
        let mut tx = self.read().await?;
        let (sql, a) = match pagination {
            Some(p) => (
                format!(
                    "{} WHERE T.id > ? ORDER BY T.id LIMIT {}",
                    SELECT, p.page_size
                ),
                args![page_start(p)?],
            ),
            None => (format!("{SELECT} ORDER BY T.id"), vec![]),
        };
        let rows = tx.all(&sql, a).await?;
        let mut relationships = Vec::with_capacity(rows.len());
        let mut last = 0;
        for r in &rows {
            last = col_i64(r, 0)?;
            relationships.push(from_row(r)?);
        }
        let next_page_token = if pagination.is_some() && !relationships.is_empty() {
            last.to_string()
        } else {
            String::new()
        };
        Ok(ListFederationRelationshipsResponse {
            relationships,
            next_page_token,
        })
    }

    /// Updates the fields selected by `mask`; a masked-in bundle replaces the stored one.
    pub async fn update_federation_relationship(
        &self,
        fr: &FederationRelationship,
        mask: &FederationRelationshipMask,
    ) -> Result<FederationRelationship> {
        if mask.bundle_endpoint_url || mask.bundle_endpoint_profile {
            validate(fr)?;
        }
        let name = td_name(&fr.trust_domain);
        let mut tx = self.write().await?;
        let sql = format!(
            "SELECT id FROM federated_trust_domains WHERE trust_domain = ?{}",
            tx.d.for_update()
        );
        let Some(row) = tx.opt(&sql, args![&name]).await? else {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: federation relationship with {name:?} not found"
            )));
        };
        let id = col_i64(&row, 0)?;
        if mask.bundle_endpoint_url {
            let sql = format!(
                "UPDATE federated_trust_domains SET bundle_endpoint_url = ?, updated_at = {} WHERE id = ?",
                tx.now()
            );
            tx.exec(&sql, args![&fr.bundle_endpoint_url, id]).await?;
        }
        if mask.bundle_endpoint_profile {
            let (profile, endpoint_id) = profile_columns(&fr.bundle_endpoint_profile);
            let sql = format!(
                "UPDATE federated_trust_domains SET bundle_endpoint_profile = ?, endpoint_spiffe_id = ?, updated_at = {} \
                 WHERE id = ?",
                tx.now()
            );
            tx.exec(&sql, args![profile, endpoint_id, id]).await?;
        }
        if mask.trust_domain_bundle
            && let Some(bundle) = &fr.trust_domain_bundle
        {
            let mut bundle = bundle.clone();
            bundle.trust_domain = name.clone();
            set_bundle_tx(&mut tx, &bundle).await?;
        }
        tx.changed(DataStoreChange::FederationRelationshipChanged {
            trust_domain: name.clone(),
        });
        let stored = load(&mut tx, &name).await?;
        self.commit(tx).await?;
        stored.ok_or_else(|| {
            DataStoreError::Internal("datastore-sql: updated relationship vanished".into())
        })
    }

    /// Deletes the relationship (the trust domain's bundle stays).
    pub async fn delete_federation_relationship(&self, trust_domain: &str) -> Result<()> {
        let name = td_name(trust_domain);
        let mut tx = self.write().await?;
        if tx
            .exec(
                "DELETE FROM federated_trust_domains WHERE trust_domain = ?",
                args![&name],
            )
            .await?
            == 0
        {
            return Err(DataStoreError::NotFound(format!(
                "datastore-sql: federation relationship with {name:?} not found"
            )));
        }
        tx.changed(DataStoreChange::FederationRelationshipChanged { trust_domain: name });
        self.commit(tx).await
    }
}

const SELECT: &str = "SELECT T.id, T.trust_domain, T.bundle_endpoint_url, T.bundle_endpoint_profile, \
                      T.endpoint_spiffe_id, B.trust_domain, B.data FROM federated_trust_domains T \
                      LEFT JOIN bundles B ON B.trust_domain = CONCAT('spiffe://', T.trust_domain)";

fn validate(fr: &FederationRelationship) -> Result<()> {
    if td_name(&fr.trust_domain).is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "trust domain is required".into(),
        ));
    }
    if fr.bundle_endpoint_url.is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "bundle endpoint URL is required".into(),
        ));
    }
    if let BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } = &fr.bundle_endpoint_profile
        && endpoint_spiffe_id.is_empty()
    {
        return Err(DataStoreError::InvalidArgument(
            "bundle endpoint SPIFFE ID is required".into(),
        ));
    }
    Ok(())
}

fn profile_columns(p: &BundleEndpointProfile) -> (&'static str, String) {
    match p {
        BundleEndpointProfile::HttpsWeb => (WEB, String::new()),
        BundleEndpointProfile::HttpsSpiffe { endpoint_spiffe_id } => {
            (SPIFFE, endpoint_spiffe_id.clone())
        }
    }
}

fn from_row(r: &AnyRow) -> Result<FederationRelationship> {
    let trust_domain = col_str(r, 1)?;
    let bundle_endpoint_profile = match col_str(r, 3)?.as_str() {
        WEB => BundleEndpointProfile::HttpsWeb,
        SPIFFE => BundleEndpointProfile::HttpsSpiffe {
            endpoint_spiffe_id: col_str(r, 4)?,
        },
        other => {
            return Err(DataStoreError::Internal(format!(
                "unknown bundle endpoint profile type: {other:?}"
            )));
        }
    };
    let trust_domain_bundle = match col_bytes(r, 6)? {
        Some(data) => Some(decode_bundle(&data, &td_id(&trust_domain))?),
        None => None,
    };
    Ok(FederationRelationship {
        trust_domain,
        bundle_endpoint_url: col_str(r, 2)?,
        bundle_endpoint_profile,
        trust_domain_bundle,
    })
}

async fn load(tx: &mut Tx<'_>, name: &str) -> Result<Option<FederationRelationship>> {
    let sql = format!("{SELECT} WHERE T.trust_domain = ?");
    tx.opt(&sql, args![name])
        .await?
        .map(|r| from_row(&r))
        .transpose()
}
