//! X.509 bundle tests (`X509Bundle`, `X509BundleSource`): PEM and DER parsing and
//! round trips, authority CRUD, lookup by trust domain (TD-02). All certificates are
//! generated here with rcgen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/x509.rs"]
mod x509_common;

use std::collections::{BTreeMap, HashMap};

use rustls_pki_types::CertificateDer;
use spiffe_core::{TrustDomain, X509Bundle, X509BundleSource, X509Error};
use x509_common::*;

fn two_cas() -> (Ca, Ca) {
    (Ca::root(TD), Ca::root(TD))
}

#[test]
fn new_bundle_is_empty_and_keeps_its_trust_domain() {
    let b = X509Bundle::new(td(TD));
    assert!(b.is_empty());
    assert!(b.authorities().is_empty());
    assert_eq!(b.trust_domain(), &td(TD));
    assert!(b.to_der().is_empty());
    assert_eq!(b.to_pem(), "");
}

#[test]
fn from_authorities_keeps_order_and_drops_duplicates() {
    let (a, b) = two_cas();
    let bundle =
        X509Bundle::from_authorities(td(TD), vec![a.cert.clone(), b.cert.clone(), a.cert.clone()])
            .unwrap();
    assert_eq!(bundle.authorities(), &[a.cert.clone(), b.cert.clone()]);
}

#[test]
fn from_authorities_rejects_non_certificates() {
    let (a, _) = two_cas();
    let e = X509Bundle::from_authorities(
        td(TD),
        vec![a.cert.clone(), CertificateDer::from(b"nope".to_vec())],
    )
    .unwrap_err();
    assert!(
        matches!(e, X509Error::MalformedCertificate { index: 1, .. }),
        "{e}"
    );
    // Trailing bytes after a certificate are refused too.
    let mut der = a.cert.to_vec();
    der.push(0);
    assert!(X509Bundle::from_authorities(td(TD), vec![CertificateDer::from(der)]).is_err());
}

#[test]
fn add_has_remove_authority() {
    let (a, b) = two_cas();
    let mut bundle = X509Bundle::new(td(TD));
    bundle.add_authority(a.cert.clone()).unwrap();
    bundle.add_authority(a.cert.clone()).unwrap(); // dedupe
    assert_eq!(bundle.authorities().len(), 1);
    assert!(bundle.has_authority(&a.cert));
    assert!(!bundle.has_authority(&b.cert));
    bundle.add_authority(b.cert.clone()).unwrap();
    assert_eq!(bundle.authorities().len(), 2);
    assert!(bundle.remove_authority(&a.cert));
    assert!(!bundle.remove_authority(&a.cert));
    assert_eq!(bundle.authorities(), std::slice::from_ref(&b.cert));
    assert!(
        bundle
            .add_authority(CertificateDer::from(vec![0x30, 0x00]))
            .is_err()
    );
    assert_eq!(bundle.authorities().len(), 1);
}

#[test]
fn pem_round_trip() {
    let (a, b) = two_cas();
    let bundle =
        X509Bundle::from_authorities(td(TD), vec![a.cert.clone(), b.cert.clone()]).unwrap();
    let pem = bundle.to_pem();
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----\n").count(), 2);
    assert!(!pem.contains('\r'));
    let parsed = X509Bundle::parse_pem(td(TD), pem.as_bytes()).unwrap();
    assert_eq!(parsed, bundle);
}

#[test]
fn pem_parse_accepts_crlf_and_surrounding_text() {
    let (a, _) = two_cas();
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", a.cert.to_vec())); // CRLF
    let text = format!("# trust bundle\n{pem}\n");
    let parsed = X509Bundle::parse_pem(td(TD), text.as_bytes()).unwrap();
    assert_eq!(parsed.authorities(), std::slice::from_ref(&a.cert));
}

#[test]
fn der_round_trip() {
    let (a, b) = two_cas();
    let bundle =
        X509Bundle::from_authorities(td(TD), vec![a.cert.clone(), b.cert.clone()]).unwrap();
    let der = bundle.to_der();
    let mut expected = a.cert.to_vec();
    expected.extend_from_slice(&b.cert);
    assert_eq!(der, expected);
    let parsed = X509Bundle::parse_der(td(TD), &der).unwrap();
    assert_eq!(parsed, bundle);
    // PEM and DER forms describe the same bundle.
    let from_pem = X509Bundle::parse_pem(td(TD), bundle.to_pem().as_bytes()).unwrap();
    assert_eq!(from_pem.to_der(), der);
}

#[test]
fn parse_deduplicates() {
    let (a, _) = two_cas();
    let mut der = a.cert.to_vec();
    der.extend_from_slice(&a.cert);
    assert_eq!(
        X509Bundle::parse_der(td(TD), &der)
            .unwrap()
            .authorities()
            .len(),
        1
    );
}

#[test]
fn empty_input_gives_empty_bundle() {
    assert!(X509Bundle::parse_der(td(TD), &[]).unwrap().is_empty());
    assert!(X509Bundle::parse_pem(td(TD), b"").unwrap().is_empty());
    assert!(
        X509Bundle::parse_pem(td(TD), b" \n\r\n")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn parse_rejects_garbage_and_wrong_blocks() {
    let (a, _) = two_cas();
    assert_eq!(
        X509Bundle::parse_pem(td(TD), b"not pem at all").unwrap_err(),
        X509Error::NoCertificates
    );
    let key = p256().serialize_pem();
    assert!(matches!(
        X509Bundle::parse_pem(td(TD), key.as_bytes()).unwrap_err(),
        X509Error::UnexpectedPemBlock { .. }
    ));
    let not_der = pem::encode(&pem::Pem::new("CERTIFICATE", b"xyz".to_vec()));
    assert!(matches!(
        X509Bundle::parse_pem(td(TD), not_der.as_bytes()).unwrap_err(),
        X509Error::MalformedCertificate { index: 0, .. }
    ));
    assert!(matches!(
        X509Bundle::parse_der(td(TD), b"garbage").unwrap_err(),
        X509Error::MalformedCertificate { index: 0, .. }
    ));
    // Truncated second certificate.
    let mut der = a.cert.to_vec();
    der.extend_from_slice(&a.cert[..a.cert.len() - 3]);
    assert!(matches!(
        X509Bundle::parse_der(td(TD), &der).unwrap_err(),
        X509Error::MalformedCertificate { index: 1, .. }
    ));
}

#[test]
fn parse_never_panics_on_mangled_input() {
    let (a, b) = two_cas();
    let mut der = a.cert.to_vec();
    der.extend_from_slice(&b.cert);
    for i in 0..der.len() {
        let _ = X509Bundle::parse_der(td(TD), &der[..i]);
        let mut flipped = der.clone();
        flipped[i] ^= 0xa5;
        let _ = X509Bundle::parse_der(td(TD), &flipped);
    }
    let pem = X509Bundle::parse_der(td(TD), &der).unwrap().to_pem();
    for i in 0..pem.len() {
        let _ = X509Bundle::parse_pem(td(TD), &pem.as_bytes()[..i]);
    }
}

// TD-02: a bundle answers only for its own trust domain.
#[test]
fn td_02_bundle_source_answers_only_for_its_trust_domain() {
    let a = Ca::root("a.test");
    let bundle = a.bundle("a.test");
    assert_eq!(bundle.x509_bundle_for(&td("a.test")), Some(&bundle));
    assert_eq!(bundle.x509_bundle_for(&td("b.test")), None);
}

// TD-02: the slice and map sources look bundles up by trust domain.
#[test]
fn td_02_slice_and_map_sources_look_up_by_trust_domain() {
    let a = Ca::root("a.test").bundle("a.test");
    let b = Ca::root("b.test").bundle("b.test");
    let list = [a.clone(), b.clone()];
    assert_eq!(list[..].x509_bundle_for(&td("b.test")), Some(&b));
    assert_eq!(list[..].x509_bundle_for(&td("c.test")), None);

    let map: HashMap<TrustDomain, X509Bundle> =
        [(td("a.test"), a.clone()), (td("b.test"), b.clone())]
            .into_iter()
            .collect();
    assert_eq!(map.x509_bundle_for(&td("a.test")), Some(&a));
    assert_eq!(map.x509_bundle_for(&td("c.test")), None);

    let tree: BTreeMap<TrustDomain, X509Bundle> =
        [(td("a.test"), a.clone()), (td("x.test"), b.clone())]
            .into_iter()
            .collect();
    assert_eq!(tree.x509_bundle_for(&td("a.test")), Some(&a));
    // A bundle filed under another trust domain's key is not handed out.
    assert_eq!(tree.x509_bundle_for(&td("x.test")), None);
}

#[test]
fn bundles_compare_by_trust_domain_and_authorities() {
    let ca = Ca::root(TD);
    let one = X509Bundle::from_authorities(td("a.test"), vec![ca.cert.clone()]).unwrap();
    let two = X509Bundle::from_authorities(td("b.test"), vec![ca.cert.clone()]).unwrap();
    assert_ne!(one, two);
    assert_eq!(one.clone(), one);
}
