//! A/B slot rotation driven by a manual clock (server.md §4.2): prepare at 1/2 of the
//! CA lifetime, activate at 5/6, both authorities published while they overlap, the old
//! one dropped once expired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ca_common;

use std::sync::Arc;
use std::time::Duration;

use ca_common::*;
use spiffe_core::{JwtSvid, SpiffeId, verify_chain};
use spire_server::ca::{
    CaConfig, Clock, RotationEvent, ServerCa, SlotId, activation_threshold,
    max_svid_ttl_for_ca_ttl, preparation_threshold,
};
use spire_server::keymanager::{DiskKeyManager, KeyManager, KeyType, MemoryKeyManager};

const SECOND: Duration = Duration::from_secs(1);

fn id() -> SpiffeId {
    SpiffeId::parse("spiffe://example.org/workload").unwrap()
}

fn x509_activated(events: &[RotationEvent]) -> Vec<SlotId> {
    events
        .iter()
        .filter_map(|e| match e {
            RotationEvent::X509CaActivated { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect()
}

fn x509_prepared(events: &[RotationEvent]) -> Vec<SlotId> {
    events
        .iter()
        .filter_map(|e| match e {
            RotationEvent::X509CaPrepared { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect()
}

#[test]
fn thresholds() {
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let day = 24 * HOUR;
    assert_eq!(preparation_threshold(t0, t0 + day), t0 + 12 * HOUR);
    assert_eq!(activation_threshold(t0, t0 + day), t0 + 20 * HOUR);
    // Caps: 30 days before notAfter for preparation, 7 days for activation.
    let year = 365 * day;
    assert_eq!(preparation_threshold(t0, t0 + year), t0 + year - 30 * day);
    assert_eq!(activation_threshold(t0, t0 + year), t0 + year - 7 * day);
    assert_eq!(max_svid_ttl_for_ca_ttl(day), 4 * HOUR);
    assert_eq!(max_svid_ttl_for_ca_ttl(year), 7 * day);
}

#[test]
fn x509_and_jwt_rotation_schedule() {
    let clock = clock();
    let t0 = clock.now();
    let km: Arc<dyn KeyManager> = Arc::new(MemoryKeyManager::new());
    let ca = ServerCa::new(CaConfig::new(td()), km.clone(), None, clock.clone()).unwrap();
    let key = workload_key(KeyType::EcP256);
    let sign = |ca: &ServerCa| {
        let chain = ca
            .sign_workload_x509_svid(key.public_key_der(), &id(), &[], None)
            .unwrap();
        verify_chain(&chain, &ca.x509_bundle(), clock.now()).unwrap();
        chain
    };

    // t0: the first step prepares and activates slot A.
    let report = ca.rotate().unwrap();
    assert_eq!(x509_prepared(&report.events), vec![SlotId::A]);
    assert_eq!(x509_activated(&report.events), vec![SlotId::A]);
    assert!(report.bundle_changed() && report.x509_ca_activated());
    let ca_a = ca.current_x509_ca().unwrap();
    let jwt_a = ca.current_jwt_key().unwrap();
    assert_eq!(ca_a.slot(), SlotId::A);
    assert_eq!(ca_a.key().id(), "x509-CA-A");
    assert_eq!(jwt_a.key().id(), "JWT-Signer-A");
    assert_eq!(ca.x509_authorities(), vec![ca_a.certificate().clone()]);
    assert_eq!(ca.jwt_authorities().len(), 1);
    let ids: Vec<String> = km
        .get_keys()
        .unwrap()
        .iter()
        .map(|k| k.id().to_owned())
        .collect();
    assert_eq!(ids, vec!["JWT-Signer-A", "x509-CA-A"]);

    // Nothing to do until half the lifetime has passed (12h of 24h).
    clock.set(t0 + 12 * HOUR);
    let report = ca.rotate().unwrap();
    assert!(report.events.is_empty(), "{report:?}");
    assert!(ca.next_x509_ca().is_none());

    // Just past 12h: slot B is prepared and published, A still signs.
    clock.set(t0 + 12 * HOUR + SECOND);
    let report = ca.rotate().unwrap();
    assert_eq!(x509_prepared(&report.events), vec![SlotId::B]);
    assert!(x509_activated(&report.events).is_empty());
    assert!(report.x509_authorities_changed && report.jwt_authorities_changed);
    let ca_b = ca.next_x509_ca().unwrap();
    let jwt_b = ca.next_jwt_key().unwrap();
    assert_eq!(ca_b.key().id(), "x509-CA-B");
    assert_eq!(jwt_b.key().id(), "JWT-Signer-B");
    assert_eq!(
        ca.x509_authorities(),
        vec![ca_a.certificate().clone(), ca_b.certificate().clone()]
    );
    let kids: Vec<String> = ca.jwt_authorities().into_iter().map(|a| a.kid).collect();
    assert_eq!(kids, vec![jwt_a.kid().to_owned(), jwt_b.kid().to_owned()]);
    assert_eq!(
        ca.current_x509_ca().unwrap().authority_id(),
        ca_a.authority_id()
    );
    let chain = sign(&ca);
    assert_eq!(
        akid(&parse(&chain[0])).unwrap(),
        skid(&parse(ca_a.certificate())).unwrap()
    );

    // Just before 20h (5/6): still A.
    clock.set(t0 + 20 * HOUR);
    assert!(ca.rotate().unwrap().events.is_empty());

    // Just past 20h: B becomes the signing CA and JWT key; A stays published.
    clock.set(t0 + 20 * HOUR + SECOND);
    let report = ca.rotate().unwrap();
    assert_eq!(x509_activated(&report.events), vec![SlotId::B]);
    assert!(report.events.iter().any(|e| matches!(
        e,
        RotationEvent::JwtKeyActivated {
            slot: SlotId::B,
            ..
        }
    )));
    assert!(!report.bundle_changed());
    assert_eq!(
        ca.current_x509_ca().unwrap().authority_id(),
        ca_b.authority_id()
    );
    assert_eq!(ca.current_jwt_key().unwrap().kid(), jwt_b.kid());
    assert!(ca.next_x509_ca().is_none());
    assert_eq!(ca.x509_authorities().len(), 2);
    assert_eq!(ca.jwt_authorities().len(), 2);
    let chain = sign(&ca);
    assert_eq!(
        akid(&parse(&chain[0])).unwrap(),
        skid(&parse(ca_b.certificate())).unwrap()
    );
    let token = ca.sign_jwt_svid(&id(), &["aud".to_owned()], None).unwrap();
    let svid =
        JwtSvid::parse_and_validate(&token, &ca.jwt_bundle(), &["aud"], clock.now()).unwrap();
    assert_eq!(svid.kid(), jwt_b.kid());
    // An SVID signed by A before the switch still validates (A is still in the bundle).
    assert_eq!(ca.x509_bundle().authorities().len(), 2);

    // Just past 24h, A has expired: it leaves the published set.
    clock.set(t0 + 24 * HOUR + SECOND);
    let report = ca.rotate().unwrap();
    assert!(report.events.iter().any(|e| matches!(
        e,
        RotationEvent::X509AuthorityExpired { authority_id } if authority_id == ca_a.authority_id()
    )));
    assert!(report.events.iter().any(|e| matches!(
        e,
        RotationEvent::JwtAuthorityExpired { kid } if kid == jwt_a.kid()
    )));
    assert_eq!(ca.x509_authorities(), vec![ca_b.certificate().clone()]);
    let kids: Vec<String> = ca.jwt_authorities().into_iter().map(|a| a.kid).collect();
    assert_eq!(kids, vec![jwt_b.kid().to_owned()]);
    sign(&ca);

    // The cycle goes on: B was prepared at 12h+1s, so its successor (in slot A again)
    // is prepared past 24h+1s and activated past 32h+1s.
    clock.set(t0 + 24 * HOUR + 2 * SECOND);
    let report = ca.rotate().unwrap();
    assert_eq!(x509_prepared(&report.events), vec![SlotId::A]);
    let ca_a2 = ca.next_x509_ca().unwrap();
    assert_ne!(ca_a2.authority_id(), ca_a.authority_id());
    assert_eq!(ca_a2.key().id(), "x509-CA-A");
    clock.set(t0 + 32 * HOUR + 2 * SECOND);
    let report = ca.rotate().unwrap();
    assert_eq!(x509_activated(&report.events), vec![SlotId::A]);
    assert_eq!(
        ca.current_x509_ca().unwrap().authority_id(),
        ca_a2.authority_id()
    );
    sign(&ca);
    assert_eq!(ca.failed_rotations(), 0);
}

#[test]
fn svids_never_outlive_the_signing_ca() {
    let clock = clock();
    let t0 = clock.now();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    let ca_not_after = ca.current_x509_ca().unwrap().not_after();
    let key = workload_key(KeyType::EcP256);
    // Shortly before the CA's activation threshold an SVID is still capped by its CA.
    clock.set(t0 + 20 * HOUR);
    ca.rotate().unwrap();
    let chain = ca
        .sign_workload_x509_svid(key.public_key_der(), &id(), &[], Some(10 * HOUR))
        .unwrap();
    assert_eq!(not_after(&parse(&chain[0])), secs(ca_not_after));
}

#[test]
fn rotation_persists_keys_with_the_disk_key_manager() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let clock = clock();
    let t0 = clock.now();
    let km: Arc<dyn KeyManager> = Arc::new(DiskKeyManager::open(&path).unwrap());
    let ca = ServerCa::new(CaConfig::new(td()), km, None, clock.clone()).unwrap();
    ca.rotate().unwrap();
    clock.set(t0 + 13 * HOUR);
    ca.rotate().unwrap();

    let reopened = DiskKeyManager::open(&path).unwrap();
    let ids: Vec<String> = reopened
        .get_keys()
        .unwrap()
        .iter()
        .map(|k| k.id().to_owned())
        .collect();
    assert_eq!(
        ids,
        vec!["JWT-Signer-A", "JWT-Signer-B", "x509-CA-A", "x509-CA-B"]
    );
    let current = ca.current_x509_ca().unwrap();
    let stored = reopened.get_key("x509-CA-A").unwrap().unwrap();
    assert_eq!(stored.public_key_der(), current.key().public_key_der());
}

/// The stored bundle keeps an expired CA and JWT key for SPIRE's safety threshold
/// (24h past expiry), then a prune drops them and never the current ones.
#[tokio::test]
async fn expired_authorities_are_pruned_from_the_stored_bundle_after_the_safety_threshold() {
    use spire_server::ca::publish::{BUNDLE_SAFETY_THRESHOLD, append, prune};
    use spire_server::datastore::{DataStoreConfig, SqlStore};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("datastore.sqlite3");
    let store = SqlStore::open(&DataStoreConfig::new("sqlite3", path.display().to_string()))
        .await
        .unwrap();
    let clock = clock();
    let t0 = clock.now();
    let ca = ready_ca(CaConfig::new(td()), &clock, None);
    append(&store, &ca).await.unwrap();
    let first = ca.current_x509_ca().unwrap();
    let first_kid = ca.current_jwt_key().unwrap().kid().to_owned();

    // Rotate past the first CA's expiry (24h): the next one is active by then.
    for hours in [13, 21, 25] {
        clock.set(t0 + hours * HOUR);
        ca.rotate().unwrap();
        append(&store, &ca).await.unwrap();
    }
    let stored = |b: &spire_server::datastore::Bundle| {
        (
            b.x509_authorities
                .iter()
                .any(|r| r.asn1 == first.certificate().as_ref()),
            b.jwt_authorities.iter().any(|k| k.key_id == first_kid),
        )
    };
    let bundle = store.fetch_bundle("example.org").await.unwrap().unwrap();
    assert_eq!(
        stored(&bundle),
        (true, true),
        "expired, but within the threshold"
    );
    assert!(!prune(&store, "example.org", clock.now()).await.unwrap());

    let expiry = t0 + 24 * HOUR;
    assert!(
        !prune(
            &store,
            "example.org",
            expiry + BUNDLE_SAFETY_THRESHOLD - HOUR
        )
        .await
        .unwrap()
    );
    assert!(
        prune(
            &store,
            "example.org",
            expiry + BUNDLE_SAFETY_THRESHOLD + HOUR
        )
        .await
        .unwrap()
    );
    let bundle = store.fetch_bundle("example.org").await.unwrap().unwrap();
    assert_eq!(stored(&bundle), (false, false));
    assert_eq!(bundle.x509_authorities.len(), 1, "the current CA stays");
    assert_eq!(bundle.jwt_authorities.len(), 1, "the current JWT key stays");
    store.close().await;
}
