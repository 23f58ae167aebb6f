//! Trust bundles (`bundles`), stored as SPIRE's `spire.common.Bundle` protobuf keyed by
//! the trust domain ID (`spiffe://td`).

use super::codec::{decode_bundle, encode_bundle};
use super::entries::{delete_entry_rows, entry_event};
use super::error::{DataStoreError, Result};
use super::model::{
    Bundle, BundleMask, DataStoreChange, DeleteMode, JwtKey, ListBundlesResponse, Pagination,
    X509Authority, td_id, td_name,
};
use super::store::{
    Arg, SqlStore, Tx, args, col_bytes, col_i64, col_str, page_start, placeholders,
};

impl SqlStore {
    /// Stores a new bundle. `AlreadyExists` if the trust domain has one.
    pub async fn create_bundle(&self, bundle: &Bundle) -> Result<Bundle> {
        check_td(&bundle.trust_domain)?;
        let mut tx = self.write().await?;
        if get_bundle(&mut tx, &bundle.trust_domain, false)
            .await?
            .is_some()
        {
            return Err(DataStoreError::already_exists(format!(
                "datastore-sql: bundle for {:?} already exists",
                td_name(&bundle.trust_domain)
            )));
        }
        let stored = insert_bundle(&mut tx, bundle).await?;
        self.commit(tx).await?;
        Ok(stored)
    }

    /// The bundle of a trust domain (name or ID), if any.
    pub async fn fetch_bundle(&self, trust_domain: &str) -> Result<Option<Bundle>> {
        let mut tx = self.read().await?;
        Ok(get_bundle(&mut tx, trust_domain, false)
            .await?
            .map(|(_, b)| b))
    }

    /// All bundles (own and federated), in creation order, optionally paged.
    pub async fn list_bundles(
        &self,
        pagination: Option<&Pagination>,
    ) -> Result<ListBundlesResponse> {
        let mut tx = self.read().await?;
        let (sql, a) = match pagination {
            Some(p) => (
                format!(
                    "SELECT id, trust_domain, data FROM bundles WHERE id > ? ORDER BY id LIMIT {}",
                    p.page_size
                ),
                args![page_start(p)?],
            ),
            None => (
                "SELECT id, trust_domain, data FROM bundles ORDER BY id".to_string(),
                vec![],
            ),
        };
        let mut bundles = Vec::new();
        let mut last = 0;
        for r in tx.all(&sql, a).await? {
            last = col_i64(&r, 0)?;
            bundles.push(decode_bundle(
                &col_bytes(&r, 2)?.unwrap_or_default(),
                &col_str(&r, 1)?,
            )?);
        }
        let next_page_token = if pagination.is_some() && !bundles.is_empty() {
            last.to_string()
        } else {
            String::new()
        };
        Ok(ListBundlesResponse {
            bundles,
            next_page_token,
        })
    }

    /// Number of stored bundles.
    pub async fn count_bundles(&self) -> Result<i64> {
        let mut tx = self.read().await?;
        tx.count("SELECT COUNT(*) FROM bundles", vec![]).await
    }

    /// Replaces the bundle of its trust domain (creating it if missing), content and
    /// sequence number as given.
    pub async fn set_bundle(&self, bundle: &Bundle) -> Result<Bundle> {
        check_td(&bundle.trust_domain)?;
        let mut tx = self.write().await?;
        let stored = set_bundle_tx(&mut tx, bundle).await?;
        self.commit(tx).await?;
        Ok(stored)
    }

    /// Overwrites the fields selected by `mask` (all when `None`) of an existing bundle.
    pub async fn update_bundle(
        &self,
        bundle: &Bundle,
        mask: Option<&BundleMask>,
    ) -> Result<Bundle> {
        check_td(&bundle.trust_domain)?;
        let mask = mask.copied().unwrap_or(BundleMask::ALL);
        let mut tx = self.write().await?;
        let Some((id, mut current)) = get_bundle(&mut tx, &bundle.trust_domain, true).await? else {
            return Err(not_found(&bundle.trust_domain));
        };
        if mask.x509_authorities {
            current.x509_authorities = bundle.x509_authorities.clone();
        }
        if mask.jwt_authorities {
            current.jwt_authorities = bundle.jwt_authorities.clone();
        }
        if mask.wit_authorities {
            current.wit_authorities = bundle.wit_authorities.clone();
        }
        if mask.refresh_hint {
            current.refresh_hint = bundle.refresh_hint;
        }
        if mask.sequence_number {
            current.sequence_number = bundle.sequence_number;
        }
        write_bundle(&mut tx, id, &current).await?;
        self.commit(tx).await?;
        Ok(current)
    }

    /// Adds the X.509 roots and JWT/WIT keys of `bundle` that the stored bundle lacks
    /// (creating the bundle if missing). The sequence number goes up by one only when
    /// something was added. Returns the stored result.
    pub async fn append_bundle(&self, bundle: &Bundle) -> Result<Bundle> {
        check_td(&bundle.trust_domain)?;
        let mut tx = self.write().await?;
        let Some((id, mut current)) = get_bundle(&mut tx, &bundle.trust_domain, true).await? else {
            let stored = insert_bundle(&mut tx, bundle).await?;
            self.commit(tx).await?;
            return Ok(stored);
        };
        let mut changed = false;
        for root in &bundle.x509_authorities {
            if !current.x509_authorities.iter().any(|r| r.asn1 == root.asn1) {
                current.x509_authorities.push(root.clone());
                changed = true;
            }
        }
        changed |= merge_keys(&mut current.jwt_authorities, &bundle.jwt_authorities);
        changed |= merge_keys(&mut current.wit_authorities, &bundle.wit_authorities);
        if changed {
            current.sequence_number += 1;
            write_bundle(&mut tx, id, &current).await?;
            self.commit(tx).await?;
        }
        Ok(current)
    }

    /// Deletes a bundle. Entries federating with it make `Restrict` fail
    /// (`FailedPrecondition`), are deleted with `Delete`, and lose the association (with a
    /// revision bump) with `Dissociate`.
    pub async fn delete_bundle(&self, trust_domain: &str, mode: DeleteMode) -> Result<()> {
        let mut tx = self.write().await?;
        let Some((id, bundle)) = get_bundle(&mut tx, trust_domain, true).await? else {
            return Err(not_found(trust_domain));
        };
        let entries: Vec<(i64, String)> = tx
            .all(
                "SELECT E.id, E.entry_id FROM registered_entries E JOIN federated_registration_entries F \
                 ON F.registered_entry_id = E.id WHERE F.bundle_id = ? ORDER BY E.id",
                args![id],
            )
            .await?
            .iter()
            .map(|r| Ok((col_i64(r, 0)?, col_str(r, 1)?)))
            .collect::<Result<_>>()?;
        if !entries.is_empty() {
            match mode {
                DeleteMode::Restrict => {
                    return Err(DataStoreError::FailedPrecondition(format!(
                        "datastore-sql: cannot delete bundle; federated with {} registration entries",
                        entries.len()
                    )));
                }
                DeleteMode::Delete => delete_entry_rows(&mut tx, &entries).await?,
                DeleteMode::Dissociate => {
                    tx.exec(
                        "DELETE FROM federated_registration_entries WHERE bundle_id = ?",
                        args![id],
                    )
                    .await?;
                    for chunk in entries.chunks(500) {
                        let sql = format!(
                            "UPDATE registered_entries SET revision_number = revision_number + 1, updated_at = {} \
                             WHERE id IN ({})",
                            tx.now(),
                            placeholders(chunk.len())
                        );
                        tx.exec(&sql, chunk.iter().map(|(rid, _)| Arg::I64(*rid)).collect())
                            .await?;
                    }
                    for (_, entry_id) in &entries {
                        entry_event(&mut tx, entry_id).await?;
                    }
                }
            }
        }
        tx.exec("DELETE FROM bundles WHERE id = ?", args![id])
            .await?;
        tx.changed(DataStoreChange::BundleChanged {
            trust_domain: bundle.trust_domain,
        });
        self.commit(tx).await
    }

    /// Drops X.509 roots (any certificate of the chain expiring at or before
    /// `expires_before`) and JWT/WIT keys expiring at or before it (keys with no expiry
    /// stay). Refuses to drop every root or every JWT key (`FailedPrecondition`).
    /// Returns whether anything changed; a change bumps the sequence number.
    pub async fn prune_bundle(&self, trust_domain: &str, expires_before: i64) -> Result<bool> {
        let mut tx = self.write().await?;
        let Some((id, current)) = get_bundle(&mut tx, trust_domain, true).await? else {
            return Ok(false);
        };
        let mut pruned = current.clone();
        pruned.x509_authorities.clear();
        for root in &current.x509_authorities {
            let expired = certificates(&root.asn1)?
                .iter()
                .any(|(not_after, _)| *not_after <= expires_before);
            if expired {
                tracing::info!(trust_domain = %current.trust_domain, "Pruning CA certificate due to expiration");
            } else {
                pruned.x509_authorities.push(root.clone());
            }
        }
        let keep = |k: &JwtKey| k.expires_at == 0 || k.expires_at > expires_before;
        pruned.jwt_authorities.retain(keep);
        pruned.wit_authorities.retain(keep);
        if pruned.x509_authorities.is_empty() && !current.x509_authorities.is_empty() {
            return Err(DataStoreError::FailedPrecondition(
                "would prune all certificates".into(),
            ));
        }
        if pruned.jwt_authorities.is_empty() && !current.jwt_authorities.is_empty() {
            return Err(DataStoreError::FailedPrecondition(
                "would prune all JWT signing keys".into(),
            ));
        }
        if pruned == current {
            return Ok(false);
        }
        pruned.sequence_number += 1;
        write_bundle(&mut tx, id, &pruned).await?;
        self.commit(tx).await?;
        Ok(true)
    }

    /// Marks the X.509 roots whose public key (PKIX DER) is `public_key` tainted.
    pub async fn taint_x509_authority(&self, trust_domain: &str, public_key: &[u8]) -> Result<()> {
        let mut tx = self.write().await?;
        let (id, mut bundle) = require_bundle(&mut tx, trust_domain).await?;
        let mut found = false;
        for root in &mut bundle.x509_authorities {
            if root_has_key(root, public_key)? {
                if root.tainted {
                    return Err(DataStoreError::InvalidArgument(
                        "root CA is already tainted".into(),
                    ));
                }
                root.tainted = true;
                found = true;
            }
        }
        if !found {
            return Err(DataStoreError::NotFound(
                "no root CA found with provided public key".into(),
            ));
        }
        bundle.sequence_number += 1;
        write_bundle(&mut tx, id, &bundle).await?;
        self.commit(tx).await
    }

    /// Removes the (tainted) X.509 roots whose public key is `public_key`.
    pub async fn revoke_x509_authority(&self, trust_domain: &str, public_key: &[u8]) -> Result<()> {
        let mut tx = self.write().await?;
        let (id, mut bundle) = require_bundle(&mut tx, trust_domain).await?;
        let mut kept = Vec::with_capacity(bundle.x509_authorities.len());
        let mut found = false;
        for root in bundle.x509_authorities.drain(..) {
            if root_has_key(&root, public_key)? {
                if !root.tainted {
                    return Err(DataStoreError::InvalidArgument(
                        "it is not possible to revoke an untainted root CA".into(),
                    ));
                }
                found = true;
            } else {
                kept.push(root);
            }
        }
        if !found {
            return Err(DataStoreError::NotFound(
                "no root CA found with provided public key".into(),
            ));
        }
        bundle.x509_authorities = kept;
        bundle.sequence_number += 1;
        write_bundle(&mut tx, id, &bundle).await?;
        self.commit(tx).await
    }

    /// Marks the JWT key `key_id` tainted; returns it.
    pub async fn taint_jwt_key(&self, trust_domain: &str, key_id: &str) -> Result<JwtKey> {
        let mut tx = self.write().await?;
        let (id, mut bundle) = require_bundle(&mut tx, trust_domain).await?;
        let mut matching = bundle
            .jwt_authorities
            .iter_mut()
            .filter(|k| k.key_id == key_id);
        let Some(key) = matching.next() else {
            return Err(DataStoreError::NotFound(
                "no JWT Key found with provided key ID".into(),
            ));
        };
        if key.tainted {
            return Err(DataStoreError::InvalidArgument(
                "key is already tainted".into(),
            ));
        }
        key.tainted = true;
        let tainted = key.clone();
        if matching.next().is_some() {
            return Err(DataStoreError::Internal(
                "another JWT Key found with the same KeyID".into(),
            ));
        }
        bundle.sequence_number += 1;
        write_bundle(&mut tx, id, &bundle).await?;
        self.commit(tx).await?;
        Ok(tainted)
    }

    /// Removes the (tainted) JWT key `key_id`; returns it.
    pub async fn revoke_jwt_key(&self, trust_domain: &str, key_id: &str) -> Result<JwtKey> {
        let mut tx = self.write().await?;
        let (id, mut bundle) = require_bundle(&mut tx, trust_domain).await?;
        let mut revoked: Option<JwtKey> = None;
        let mut kept = Vec::with_capacity(bundle.jwt_authorities.len());
        for key in bundle.jwt_authorities.drain(..) {
            if key.key_id != key_id {
                kept.push(key);
                continue;
            }
            if revoked.is_some() {
                return Err(DataStoreError::Internal(
                    "another key found with the same KeyID".into(),
                ));
            }
            if !key.tainted {
                return Err(DataStoreError::InvalidArgument(
                    "it is not possible to revoke an untainted key".into(),
                ));
            }
            revoked = Some(key);
        }
        let Some(revoked) = revoked else {
            return Err(DataStoreError::NotFound(
                "no JWT Key found with provided key ID".into(),
            ));
        };
        bundle.jwt_authorities = kept;
        bundle.sequence_number += 1;
        write_bundle(&mut tx, id, &bundle).await?;
        self.commit(tx).await?;
        Ok(revoked)
    }
}

fn check_td(td: &str) -> Result<()> {
    if td_name(td).is_empty() {
        return Err(DataStoreError::InvalidArgument(
            "missing bundle trust domain".into(),
        ));
    }
    Ok(())
}

fn not_found(td: &str) -> DataStoreError {
    DataStoreError::NotFound(format!(
        "datastore-sql: bundle for {:?} not found",
        td_name(td)
    ))
}

fn merge_keys(current: &mut Vec<JwtKey>, new: &[JwtKey]) -> bool {
    let mut changed = false;
    for key in new {
        if !current
            .iter()
            .any(|k| k.key_id == key.key_id && k.public_key == key.public_key)
        {
            current.push(key.clone());
            changed = true;
        }
    }
    changed
}

/// `(not_after unix seconds, SubjectPublicKeyInfo DER)` of each certificate in a DER blob
/// (SPIRE allows concatenated chains in one root entry).
fn certificates(der: &[u8]) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut rest = der;
    while !rest.is_empty() {
        let (tail, cert) = x509_parser::parse_x509_certificate(rest)
            .map_err(|e| DataStoreError::Internal(format!("cannot parse certificates: {e}")))?;
        out.push((
            cert.validity().not_after.timestamp(),
            cert.public_key().raw.to_vec(),
        ));
        rest = tail;
    }
    Ok(out)
}

fn root_has_key(root: &X509Authority, public_key: &[u8]) -> Result<bool> {
    Ok(certificates(&root.asn1)?
        .first()
        .is_some_and(|(_, spki)| spki.as_slice() == public_key))
}

async fn get_bundle(
    tx: &mut Tx<'_>,
    trust_domain: &str,
    lock: bool,
) -> Result<Option<(i64, Bundle)>> {
    let lock = if lock { tx.d.for_update() } else { "" };
    let sql = format!("SELECT id, trust_domain, data FROM bundles WHERE trust_domain = ?{lock}");
    let Some(row) = tx.opt(&sql, args![td_id(trust_domain)]).await? else {
        return Ok(None);
    };
    let bundle = decode_bundle(&col_bytes(&row, 2)?.unwrap_or_default(), &col_str(&row, 1)?)?;
    Ok(Some((col_i64(&row, 0)?, bundle)))
}

async fn require_bundle(tx: &mut Tx<'_>, trust_domain: &str) -> Result<(i64, Bundle)> {
    get_bundle(tx, trust_domain, true)
        .await?
        .ok_or_else(|| not_found(trust_domain))
}

async fn insert_bundle(tx: &mut Tx<'_>, bundle: &Bundle) -> Result<Bundle> {
    let mut stored = bundle.clone();
    stored.trust_domain = td_name(&bundle.trust_domain);
    let sql = format!(
        "INSERT INTO bundles (created_at, updated_at, trust_domain, data) VALUES ({now}, {now}, ?, ?)",
        now = tx.now()
    );
    tx.insert(
        &sql,
        args![td_id(&stored.trust_domain), encode_bundle(&stored)],
    )
    .await?;
    tx.changed(DataStoreChange::BundleChanged {
        trust_domain: stored.trust_domain.clone(),
    });
    Ok(stored)
}

async fn write_bundle(tx: &mut Tx<'_>, id: i64, bundle: &Bundle) -> Result<()> {
    let sql = format!(
        "UPDATE bundles SET data = ?, updated_at = {} WHERE id = ?",
        tx.now()
    );
    tx.exec(&sql, args![encode_bundle(bundle), id]).await?;
    tx.changed(DataStoreChange::BundleChanged {
        trust_domain: td_name(&bundle.trust_domain),
    });
    Ok(())
}

/// Creates or fully replaces a bundle inside a transaction.
pub(crate) async fn set_bundle_tx(tx: &mut Tx<'_>, bundle: &Bundle) -> Result<Bundle> {
    match get_bundle(tx, &bundle.trust_domain, true).await? {
        None => insert_bundle(tx, bundle).await,
        Some((id, _)) => {
            let mut stored = bundle.clone();
            stored.trust_domain = td_name(&bundle.trust_domain);
            write_bundle(tx, id, &stored).await?;
            Ok(stored)
        }
    }
}
