//! X.509-SVID chain verification tests (`verify_chain`, `X509Svid::verify`), named by the
//! rule IDs of `spec/conformance.md` §3c (X5-24..X5-30), the validator side of §3a/§3b,
//! §1 (ID-24, ID-26) and §2 (TD-02, BUN-11). All certificates are generated here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/x509.rs"]
mod x509_common;

use std::collections::HashMap;
use std::time::SystemTime;

use rcgen::{
    BasicConstraints, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyUsagePurpose,
    NameConstraints, date_time_ymd,
};
use rustls_pki_types::CertificateDer;
use spiffe_core::{SpiffeId, TrustDomain, X509Bundle, X509BundleSource, X509Error, verify_chain};
use x509_common::*;

fn now() -> SystemTime {
    SystemTime::now()
}

/// Verifies `chain` against `root`'s bundle for `TD`.
fn verify(chain: &[CertificateDer<'static>], root: &Ca) -> Result<SpiffeId, X509Error> {
    verify_chain(chain, &root.bundle(TD), now())
}

fn verify_ok(chain: &[CertificateDer<'static>], root: &Ca) -> SpiffeId {
    match verify(chain, root) {
        Ok(id) => id,
        Err(e) => panic!("chain should verify, got: {e}"),
    }
}

fn verify_err(chain: &[CertificateDer<'static>], root: &Ca) -> X509Error {
    match verify(chain, root) {
        Ok(id) => panic!("chain should be rejected, verified as {id}"),
        Err(e) => e,
    }
}

/// A leaf from `params` signed directly by a fresh root; verifies against that root.
fn leaf_verify(params: &rcgen::CertificateParams) -> Result<SpiffeId, X509Error> {
    let root = Ca::root(TD);
    let leaf = root.leaf_with(params);
    verify(&leaf.chain(&[]), &root)
}

/// `[leaf, intermediate(params)]` under a fresh root; verifies against that root.
fn intermediate_verify(params: rcgen::CertificateParams) -> Result<SpiffeId, X509Error> {
    let root = Ca::root(TD);
    let int = root.intermediate(params);
    let leaf = int.leaf(WORKLOAD);
    verify(&leaf.chain(&[&int]), &root)
}

/// A test bundle source: a map from trust domain to bundle.
struct Bundles(HashMap<TrustDomain, X509Bundle>);

impl Bundles {
    fn of(list: &[X509Bundle]) -> Self {
        Bundles(
            list.iter()
                .map(|b| (b.trust_domain().clone(), b.clone()))
                .collect(),
        )
    }
}

impl X509BundleSource for Bundles {
    fn x509_bundle_for(&self, td: &TrustDomain) -> Option<&X509Bundle> {
        self.0.get(td)
    }
}

// ---- X5-24: RFC 5280 path validation ------------------------------------------------------

// X5-24: a leaf signed directly by a bundle root verifies.
#[test]
fn x5_24_accepts_leaf_signed_by_root() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    assert_eq!(verify_ok(&leaf.chain(&[]), &root).as_str(), WORKLOAD);
}

// X5-24: a leaf through two intermediates verifies, and `X509Svid::verify` agrees.
#[test]
fn x5_24_accepts_chain_through_intermediates() {
    let root = Ca::root(TD);
    let int1 = root.default_intermediate(TD);
    let int2 = int1.default_intermediate(TD);
    let leaf = int2.leaf(WORKLOAD);
    let chain = leaf.chain(&[&int2, &int1]);
    assert_eq!(verify_ok(&chain, &root).as_str(), WORKLOAD);
    let svid = leaf.svid(&[&int2, &int1]).unwrap();
    assert_eq!(
        svid.verify(&root.bundle(TD), now()).unwrap().as_str(),
        WORKLOAD
    );
}

// X5-24: the chain may also carry the root itself.
#[test]
fn x5_24_accepts_chain_that_includes_the_root() {
    let root = Ca::root(TD);
    let int = root.default_intermediate(TD);
    let leaf = int.leaf(WORKLOAD);
    verify_ok(&leaf.chain(&[&int, &root]), &root);
}

// X5-24: an intermediate missing from the chain means no path to the root.
#[test]
fn x5_24_rejects_chain_missing_its_intermediate() {
    let root = Ca::root(TD);
    let int = root.default_intermediate(TD);
    let leaf = int.leaf(WORKLOAD);
    assert_eq!(
        verify_err(&leaf.chain(&[]), &root),
        X509Error::UnknownIssuer {
            trust_domain: TD.into()
        }
    );
}

// X5-24: a leaf signed by a CA that is not in the bundle is rejected.
#[test]
fn x5_24_rejects_leaf_signed_by_another_ca() {
    let root = Ca::root(TD);
    let rogue = Ca::root(TD);
    let leaf = rogue.leaf(WORKLOAD);
    let e = verify_err(&leaf.chain(&[]), &root);
    assert_eq!(
        e,
        X509Error::UnknownIssuer {
            trust_domain: TD.into()
        }
    );
    assert!(e.to_string().contains("example.org"));
}

// X5-24: a certificate whose signature was altered is rejected.
#[test]
fn x5_24_rejects_bad_signature() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let mut der = leaf.cert.to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert_eq!(
        verify_err(&[CertificateDer::from(der)], &root),
        X509Error::BadSignature
    );
}

// X5-24: validity window: an expired leaf is rejected at `now`...
#[test]
fn x5_24_rejects_expired_leaf() {
    let mut p = leaf_params(WORKLOAD);
    p.not_before = date_time_ymd(1990, 1, 1);
    p.not_after = date_time_ymd(2000, 1, 1);
    let e = leaf_verify(&p).unwrap_err();
    assert!(matches!(e, X509Error::Expired { .. }), "{e}");
    assert!(e.to_string().starts_with("certificate has expired"));
}

// X5-24: ...and accepted at a time inside its window.
#[test]
fn x5_24_accepts_expired_leaf_at_time_inside_its_window() {
    let root = Ca::root(TD);
    let mut p = leaf_params(WORKLOAD);
    p.not_before = date_time_ymd(1990, 1, 1);
    p.not_after = date_time_ymd(2000, 1, 1);
    let leaf = root.leaf_with(&p);
    verify_chain(&leaf.chain(&[]), &root.bundle(TD), at_ymd(1995, 6, 1)).unwrap();
    assert!(matches!(
        verify_chain(&leaf.chain(&[]), &root.bundle(TD), at_ymd(1989, 1, 1)),
        Err(X509Error::NotYetValid { .. })
    ));
}

// X5-24: a leaf that is not yet valid is rejected.
#[test]
fn x5_24_rejects_not_yet_valid_leaf() {
    let mut p = leaf_params(WORKLOAD);
    p.not_before = date_time_ymd(3000, 1, 1);
    p.not_after = date_time_ymd(3001, 1, 1);
    let e = leaf_verify(&p).unwrap_err();
    assert!(matches!(e, X509Error::NotYetValid { .. }), "{e}");
}

// X5-24: an expired intermediate invalidates the chain.
#[test]
fn x5_24_rejects_expired_intermediate() {
    let mut p = ca_params(None);
    p.not_before = date_time_ymd(1990, 1, 1);
    p.not_after = date_time_ymd(2000, 1, 1);
    let e = intermediate_verify(p).unwrap_err();
    assert!(matches!(e, X509Error::Expired { .. }), "{e}");
}

// X5-24: an expired root in the bundle no longer validates anything. RFC 5280 does not
// check a trust anchor's validity, but Go's x509.Verify (go-spiffe, SPIRE) does, and so
// does `verify_chain`.
#[test]
fn x5_24_rejects_leaf_under_expired_root() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.not_before = date_time_ymd(1990, 1, 1);
    p.not_after = date_time_ymd(2000, 1, 1);
    let root = Ca::self_signed(p);
    let leaf = root.leaf(WORKLOAD);
    let e = verify_err(&leaf.chain(&[]), &root);
    assert!(matches!(e, X509Error::Expired { .. }), "{e}");
    // Inside the root's window it is fine.
    verify_chain(&leaf.chain(&[]), &root.bundle(TD), at_ymd(1995, 1, 1)).unwrap();
}

// X5-24: a bundle "authority" that is not a CA cannot issue (as Go's x509.Verify).
#[test]
fn x5_24_rejects_leaf_issued_by_non_ca_authority() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.is_ca = IsCa::ExplicitNoCa;
    let not_ca = Ca::self_signed(p);
    let leaf = not_ca.leaf(WORKLOAD);
    assert_eq!(
        verify_err(&leaf.chain(&[]), &not_ca),
        X509Error::IssuerNotCa
    );
}

// X5-24: a rogue CA with exactly the same subject as the bundle root is found as the
// issuer by name, and its signature then fails.
#[test]
fn x5_24_rejects_leaf_signed_by_rogue_ca_with_same_subject() {
    let root = Ca::root(TD);
    let rogue = Ca::self_signed(root.params.clone());
    let leaf = rogue.leaf(WORKLOAD);
    assert_eq!(verify_err(&leaf.chain(&[]), &root), X509Error::BadSignature);
}

// X5-24: an unknown critical extension on the leaf makes the path invalid.
#[test]
fn x5_24_rejects_unknown_critical_extension() {
    let mut p = leaf_params(WORKLOAD);
    p.custom_extensions.push(unknown_critical_ext());
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::UnsupportedCriticalExtension
    );
}

// X5-24 + X5-13: a CA flag is required on every issuer in the path (the profile check
// rejects it before path validation).
#[test]
fn x5_24_rejects_chain_through_non_ca_intermediate() {
    let mut p = ca_params(None);
    p.is_ca = IsCa::ExplicitNoCa;
    assert_eq!(
        intermediate_verify(p).unwrap_err(),
        X509Error::SigningCertNotCa { index: 1 }
    );
}

// ---- X5-03 / X5-05 on the verifier side ---------------------------------------------------

// X5-03 (MAY): extra DNS and IP SANs pass path validation.
#[test]
fn x5_03_verify_accepts_extra_dns_and_ip_sans() {
    let mut p = leaf_params(WORKLOAD);
    p.subject_alt_names.extend([
        rcgen::SanType::DnsName("web.example.org".try_into().unwrap()),
        rcgen::SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    ]);
    assert_eq!(leaf_verify(&p).unwrap().as_str(), WORKLOAD);
}

// X5-05: an empty subject with a critical SAN passes path validation (webpki knows the
// SAN extension, so its criticality is no problem).
#[test]
fn x5_05_verify_accepts_empty_subject_with_critical_san() {
    let mut p = leaf_params(WORKLOAD);
    p.distinguished_name = rcgen::DistinguishedName::new();
    leaf_verify(&p).unwrap();
}

// X5-05: the verifier rejects an empty subject with a non-critical SAN (hand-built DER
// SAN CustomExtension, as in `x509_svid.rs`).
#[test]
fn x5_05_verify_rejects_empty_subject_with_non_critical_san() {
    let mut p = leaf_params(WORKLOAD);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.subject_alt_names = vec![];
    p.custom_extensions.push(san_uri_ext(&[WORKLOAD], false));
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::LeafEmptySubjectNonCriticalSan
    );
}

// ---- X5-12: pathLenConstraint ------------------------------------------------------------

// X5-12: a root with pathLen 0 may sign leaves directly.
#[test]
fn x5_12_accepts_pathlen_zero_root_signing_leaf() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = Ca::self_signed(p);
    verify_ok(&root.leaf(WORKLOAD).chain(&[]), &root);
}

// X5-12: a pathLen 0 intermediate signing another intermediate that signs the leaf is
// rejected (RFC 5280 path validation, X5-24).
#[test]
fn x5_12_rejects_chain_exceeding_intermediate_pathlen() {
    let root = Ca::root(TD);
    let mut p = ca_params(None);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let int1 = root.intermediate(p);
    let int2 = int1.intermediate(ca_params(None));
    let leaf = int2.leaf(WORKLOAD);
    assert_eq!(
        verify_err(&leaf.chain(&[&int2, &int1]), &root),
        X509Error::PathLenExceeded
    );
}

// X5-12: the root's own pathLen is enforced too (as Go's x509.Verify; webpki alone
// ignores anchor constraints).
#[test]
fn x5_12_rejects_chain_exceeding_root_pathlen() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = Ca::self_signed(p);
    let int = root.default_intermediate(TD);
    let leaf = int.leaf(WORKLOAD);
    assert_eq!(
        verify_err(&leaf.chain(&[&int]), &root),
        X509Error::PathLenExceeded
    );
}

// X5-12: pathLen 1 allows one intermediate.
#[test]
fn x5_12_accepts_chain_within_pathlen() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    let root = Ca::self_signed(p);
    let int = root.default_intermediate(TD);
    verify_ok(&int.leaf(WORKLOAD).chain(&[&int]), &root);
}

// ---- X5-15: URI name constraints (MAY) ----------------------------------------------------

// X5-15: DNS name constraints on a CA do not touch the SPIFFE URI SAN.
#[test]
fn x5_15_accepts_dns_name_constraints_on_ca() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName("example.org".into())],
        excluded_subtrees: vec![],
    });
    let root = Ca::self_signed(p);
    verify_ok(&root.leaf(WORKLOAD).chain(&[]), &root);
}

// X5-15 (MAY), known limitation: rustls-webpki does not implement URI name constraints
// and fails closed, so a CA with a URI name constraint rejects every SVID, even one the
// constraint permits. The constraint is a hand-built DER CustomExtension (rcgen has no
// URI subtree). Documented on `verify_chain`.
#[test]
fn x5_15_uri_name_constraints_fail_closed_known_limitation() {
    let mut p = ca_params(Some("spiffe://example.org"));
    p.custom_extensions
        .push(uri_name_constraints_ext("example.org"));
    let root = Ca::self_signed(p);
    let int = root.default_intermediate(TD);
    let leaf = int.leaf(WORKLOAD);
    assert_eq!(
        verify_err(&leaf.chain(&[&int]), &root),
        X509Error::NameConstraintViolation
    );
}

// ---- validator side of the profile (X5-16..X5-23) ----------------------------------------

// X5-16/X5-17: the verifier applies the key-usage profile too.
#[test]
fn x5_16_17_verify_rejects_missing_or_non_critical_key_usage() {
    let mut p = leaf_params(WORKLOAD);
    p.key_usages = vec![];
    assert_eq!(leaf_verify(&p).unwrap_err(), X509Error::LeafMissingKeyUsage);
    p.custom_extensions
        .push(key_usage_ext(KU_DIGITAL_SIGNATURE, false));
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::LeafKeyUsageNotCritical
    );
}

// X5-18: a chain through an intermediate without keyCertSign is rejected by the
// verifier (webpki itself ignores keyUsage on CAs; the profile check catches it).
#[test]
fn x5_18_verify_rejects_chain_through_intermediate_without_keycertsign() {
    let mut p = ca_params(None);
    p.key_usages = vec![KeyUsagePurpose::CrlSign];
    assert_eq!(
        intermediate_verify(p).unwrap_err(),
        X509Error::SigningCertMissingKeyCertSign { index: 1 }
    );
}

// X5-18: ...and accepted with keyCertSign.
#[test]
fn x5_18_verify_accepts_chain_through_intermediate_with_keycertsign() {
    intermediate_verify(ca_params(None)).unwrap();
}

// X5-19: the verifier requires digitalSignature.
#[test]
fn x5_19_verify_rejects_leaf_without_digital_signature() {
    let mut p = leaf_params(WORKLOAD);
    p.key_usages = vec![KeyUsagePurpose::KeyAgreement];
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::LeafMissingDigitalSignature
    );
}

// X5-21: a critical EKU with both purposes passes path validation too (webpki knows
// EKU). Hand-built DER as in `x509_svid.rs`.
#[test]
fn x5_21_verify_accepts_critical_eku() {
    let oid = |last: u8| vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, last];
    let mut seq = oid(1);
    seq.extend(oid(2));
    let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 37], tlv(0x30, &seq));
    ext.set_criticality(true);
    let mut p = leaf_params(WORKLOAD);
    p.extended_key_usages = vec![];
    p.custom_extensions.push(ext);
    leaf_verify(&p).unwrap();
}

// X5-21: no EKU at all passes path validation.
#[test]
fn x5_21_verify_accepts_leaf_without_eku() {
    let mut p = leaf_params(WORKLOAD);
    p.extended_key_usages = vec![];
    leaf_verify(&p).unwrap();
}

// X5-22: the verifier rejects an EKU with serverAuth only...
#[test]
fn x5_22_verify_rejects_server_auth_only() {
    let mut p = leaf_params(WORKLOAD);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::LeafEkuIncomplete {
            missing: "clientAuth"
        }
    );
}

// X5-22: ...and accepts both.
#[test]
fn x5_22_verify_accepts_server_and_client_auth() {
    leaf_verify(&leaf_params(WORKLOAD)).unwrap();
}

// X5-23 (MAY): a signing certificate may carry an EKU, even one without clientAuth; the
// path validator does not nest EKUs (as go-spiffe with ExtKeyUsageAny).
#[test]
fn x5_23_accepts_intermediate_with_eku() {
    let mut p = ca_params(None);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    intermediate_verify(p).unwrap();
}

// ---- X5-25..X5-29: validator checks (X509-SVID §5.2) ------------------------------------

// X5-25: the verifier accepts a leaf with cA=false.
#[test]
fn x5_25_verify_accepts_leaf_ca_false() {
    leaf_verify(&leaf_params(WORKLOAD)).unwrap();
}

// X5-25: the verifier rejects a leaf with cA=true.
#[test]
fn x5_25_verify_rejects_leaf_ca_true() {
    let mut p = leaf_params(WORKLOAD);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    assert_eq!(leaf_verify(&p).unwrap_err(), X509Error::LeafIsCa);
}

// X5-25 / X5-11: presenting the bundle's CA certificate itself as a leaf is rejected.
#[test]
fn x5_25_verify_rejects_ca_certificate_presented_as_leaf() {
    let mut p = ca_params(Some(WORKLOAD));
    p.key_usages.push(KeyUsagePurpose::DigitalSignature);
    let root = Ca::self_signed(p);
    assert_eq!(
        verify_err(std::slice::from_ref(&root.cert), &root),
        X509Error::LeafIsCa
    );
}

// X5-26: the verifier accepts a leaf with neither keyCertSign nor cRLSign.
#[test]
fn x5_26_verify_accepts_leaf_without_signing_usages() {
    leaf_verify(&leaf_params(WORKLOAD)).unwrap();
}

// X5-26: the verifier rejects keyCertSign and cRLSign on the leaf.
#[test]
fn x5_26_verify_rejects_leaf_with_keycertsign_or_crlsign() {
    let mut p = leaf_params(WORKLOAD);
    p.key_usages.push(KeyUsagePurpose::KeyCertSign);
    assert_eq!(leaf_verify(&p).unwrap_err(), X509Error::LeafHasKeyCertSign);
    let mut p = leaf_params(WORKLOAD);
    p.key_usages.push(KeyUsagePurpose::CrlSign);
    assert_eq!(leaf_verify(&p).unwrap_err(), X509Error::LeafHasCrlSign);
}

// X5-27: the verifier accepts a spiffe URI...
#[test]
fn x5_27_verify_accepts_spiffe_scheme() {
    assert_eq!(
        leaf_verify(&leaf_params(WORKLOAD)).unwrap().as_str(),
        WORKLOAD
    );
}

// X5-27: ...and rejects other schemes.
#[test]
fn x5_27_verify_rejects_non_spiffe_uri() {
    let e = leaf_verify(&leaf_params("https://example.org/workload")).unwrap_err();
    assert!(matches!(e, X509Error::InvalidSpiffeId { .. }), "{e}");
}

// X5-28: the verifier accepts a non-root path...
#[test]
fn x5_28_verify_accepts_non_root_path() {
    leaf_verify(&leaf_params("spiffe://example.org/a/b")).unwrap();
}

// X5-28: ...and rejects a root ID.
#[test]
fn x5_28_verify_rejects_root_path() {
    assert_eq!(
        leaf_verify(&leaf_params("spiffe://example.org")).unwrap_err(),
        X509Error::LeafRootPath {
            id: "spiffe://example.org".into()
        }
    );
}

// X5-29: the verifier accepts one URI SAN...
#[test]
fn x5_29_verify_accepts_one_uri_san() {
    leaf_verify(&leaf_params(WORKLOAD)).unwrap();
}

// X5-29: ...and rejects more than one, even a non-SPIFFE extra.
#[test]
fn x5_29_verify_rejects_more_than_one_uri_san() {
    let mut p = leaf_params(WORKLOAD);
    p.subject_alt_names.push(uri("urn:example:extra"));
    assert_eq!(
        leaf_verify(&p).unwrap_err(),
        X509Error::MultipleUriSans { count: 2 }
    );
}

// X5-29 with X5-01: no URI SAN is rejected by the verifier.
#[test]
fn x5_29_verify_rejects_no_uri_san() {
    let mut p = leaf_params(WORKLOAD);
    p.subject_alt_names = vec![];
    p.distinguished_name.push(DnType::CommonName, "web");
    assert_eq!(leaf_verify(&p).unwrap_err(), X509Error::MissingUriSan);
}

// ---- X5-30 / TD-02 / ID-26 / BUN-11: which bundle -----------------------------------------

// X5-30: among several bundles, the one of the leaf's trust domain is used.
#[test]
fn x5_30_uses_bundle_of_the_leaf_trust_domain() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let set = Bundles::of(&[a.bundle("a.test"), b.bundle("b.test")]);
    let leaf_a = a.leaf("spiffe://a.test/w");
    let leaf_b = b.leaf("spiffe://b.test/w");
    assert_eq!(
        verify_chain(&leaf_a.chain(&[]), &set, now())
            .unwrap()
            .trust_domain_name(),
        "a.test"
    );
    assert_eq!(
        verify_chain(&leaf_b.chain(&[]), &set, now())
            .unwrap()
            .trust_domain_name(),
        "b.test"
    );
}

// X5-30: no bundle for the leaf's trust domain means untrusted; the error names it.
#[test]
fn x5_30_rejects_when_no_bundle_for_trust_domain() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let leaf = a.leaf("spiffe://a.test/w");
    let e = verify_chain(&leaf.chain(&[]), &b.bundle("b.test"), now()).unwrap_err();
    assert_eq!(
        e,
        X509Error::NoBundle {
            trust_domain: "a.test".into()
        }
    );
    assert!(e.to_string().contains("\"a.test\""), "{e}");
}

// TD-02: validate only with the bundle of the SVID's own trust domain: a bundle set that
// holds only trust domain B, whose bundle (wrongly) contains A's CA, must not validate
// an A SVID.
#[test]
fn td_02_rejects_svid_when_only_another_trust_domains_bundle_holds_its_ca() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let mut b_bundle = b.bundle("b.test");
    b_bundle.add_authority(a.cert.clone()).unwrap();
    let set = Bundles::of(&[b_bundle.clone()]);
    let leaf = a.leaf("spiffe://a.test/w");
    assert_eq!(
        verify_chain(&leaf.chain(&[]), &set, now()).unwrap_err(),
        X509Error::NoBundle {
            trust_domain: "a.test".into()
        }
    );
    // The same with the single bundle as source, and with the library's map/slice impls.
    assert!(verify_chain(&leaf.chain(&[]), &b_bundle, now()).is_err());
    let map: HashMap<TrustDomain, X509Bundle> =
        [(td("b.test"), b_bundle.clone())].into_iter().collect();
    assert!(verify_chain(&leaf.chain(&[]), &map, now()).is_err());
    assert!(verify_chain(&leaf.chain(&[]), &[b_bundle.clone()][..], now()).is_err());
    // A bundle filed under the wrong key in a map is not used for that key.
    let misfiled: HashMap<TrustDomain, X509Bundle> =
        [(td("a.test"), b_bundle)].into_iter().collect();
    assert!(verify_chain(&leaf.chain(&[]), &misfiled, now()).is_err());
}

// TD-02: the same SVID verifies once its own trust domain's bundle is in the set.
#[test]
fn td_02_accepts_svid_with_its_own_bundle_in_the_set() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let leaf = a.leaf("spiffe://a.test/w");
    let set = Bundles::of(&[b.bundle("b.test"), a.bundle("a.test")]);
    verify_chain(&leaf.chain(&[]), &set, now()).unwrap();
    let map: HashMap<TrustDomain, X509Bundle> = [
        (td("a.test"), a.bundle("a.test")),
        (td("b.test"), b.bundle("b.test")),
    ]
    .into_iter()
    .collect();
    verify_chain(&leaf.chain(&[]), &map, now()).unwrap();
    verify_chain(
        &leaf.chain(&[]),
        &[b.bundle("b.test"), a.bundle("a.test")][..],
        now(),
    )
    .unwrap();
}

// ID-26: an SVID is valid only if an authority of its own trust domain signed it: an
// a.test SVID signed by b.test's CA is rejected even though both bundles are present.
#[test]
fn id_26_rejects_svid_signed_by_another_trust_domains_authority() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let forged = b.leaf("spiffe://a.test/w");
    let set = Bundles::of(&[a.bundle("a.test"), b.bundle("b.test")]);
    assert_eq!(
        verify_chain(&forged.chain(&[]), &set, now()).unwrap_err(),
        X509Error::UnknownIssuer {
            trust_domain: "a.test".into()
        }
    );
}

// ID-26: signed by its own trust domain's authority, it is valid.
#[test]
fn id_26_accepts_svid_signed_by_own_trust_domain_authority() {
    let a = Ca::root("a.test");
    let b = Ca::root("b.test");
    let set = Bundles::of(&[a.bundle("a.test"), b.bundle("b.test")]);
    verify_chain(&a.leaf("spiffe://a.test/w").chain(&[]), &set, now()).unwrap();
}

// X5-10 with ID-26: an intermediate carrying another trust domain's ID may sign, as long
// as the path ends at an authority of the leaf's trust domain.
#[test]
fn x5_10_verify_accepts_intermediate_with_other_trust_domain_id() {
    let root = Ca::root(TD);
    let int = root.intermediate(ca_params(Some("spiffe://upstream.test")));
    verify_ok(&int.leaf(WORKLOAD).chain(&[&int]), &root);
}

// BUN-11: an empty bundle for the trust domain makes every SVID of it untrusted.
#[test]
fn bun_11_rejects_every_svid_with_empty_bundle() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let empty = X509Bundle::new(td(TD));
    let e = verify_chain(&leaf.chain(&[]), &empty, now()).unwrap_err();
    assert_eq!(
        e,
        X509Error::EmptyBundle {
            trust_domain: TD.into()
        }
    );
    // A bundle whose every authority was removed (revoked) behaves the same.
    let mut revoked = root.bundle(TD);
    assert!(revoked.remove_authority(&root.cert));
    assert!(verify_chain(&leaf.chain(&[]), &revoked, now()).is_err());
}

// BUN-11: with one usable authority, the SVID verifies.
#[test]
fn bun_11_accepts_with_a_usable_authority() {
    let root = Ca::root(TD);
    let other = Ca::root(TD);
    // Two authorities (rotation): either may have signed.
    let bundle =
        X509Bundle::from_authorities(td(TD), vec![other.cert.clone(), root.cert.clone()]).unwrap();
    verify_chain(&root.leaf(WORKLOAD).chain(&[]), &bundle, now()).unwrap();
    verify_chain(&other.leaf(WORKLOAD).chain(&[]), &bundle, now()).unwrap();
}

// ---- ID-24: the ID and the key are inside the signed part ---------------------------------

// ID-24: the ID the verifier returns is the one in the signed TBS (URI SAN), and the
// leaf key is bound to it.
#[test]
fn id_24_accepts_id_and_key_from_the_signed_certificate() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let svid = leaf.svid(&[]).unwrap();
    assert_eq!(
        svid.verify(&root.bundle(TD), now()).unwrap().as_str(),
        WORKLOAD
    );
}

// ID-24: changing the ID inside the certificate breaks the signature, so a forged ID is
// rejected (the byte patch keeps the DER well-formed; only the signed bytes change).
#[test]
fn id_24_rejects_certificate_with_altered_id() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let forged = patch(&leaf.cert, b"/workload", b"/workloax");
    let chain = [CertificateDer::from(forged)];
    assert_eq!(
        spiffe_core::parse_leaf_spiffe_id(&chain[0])
            .unwrap()
            .as_str(),
        "spiffe://example.org/workloax"
    );
    assert_eq!(verify_err(&chain, &root), X509Error::BadSignature);
}

// ID-24: swapping the public key inside the certificate breaks the signature too.
#[test]
fn id_24_rejects_certificate_with_altered_public_key() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let other = p256();
    let forged = patch(
        &leaf.cert,
        leaf.key.public_key_raw(),
        other.public_key_raw(),
    );
    assert_eq!(
        verify_err(&[CertificateDer::from(forged)], &root),
        X509Error::BadSignature
    );
}

// ---- misc ---------------------------------------------------------------------------------

#[test]
fn rejects_empty_chain() {
    let root = Ca::root(TD);
    assert_eq!(verify_err(&[], &root), X509Error::EmptyChain);
}

#[test]
fn rejects_garbage_chain_without_panic() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    assert!(matches!(
        verify_err(&[CertificateDer::from(b"junk".to_vec())], &root),
        X509Error::MalformedCertificate { index: 0, .. }
    ));
    for i in 0..leaf.cert.len() {
        let mut der = leaf.cert.to_vec();
        der[i] ^= 0x5a;
        let _ = verify(&[CertificateDer::from(der)], &root);
        let _ = verify(&[CertificateDer::from(leaf.cert[..i].to_vec())], &root);
    }
}

#[test]
fn verification_time_before_epoch_does_not_panic() {
    let root = Ca::root(TD);
    let leaf = root.leaf(WORKLOAD);
    let early = SystemTime::UNIX_EPOCH - std::time::Duration::from_secs(1000);
    assert!(matches!(
        verify_chain(&leaf.chain(&[]), &root.bundle(TD), early),
        Err(X509Error::NotYetValid { .. })
    ));
}
