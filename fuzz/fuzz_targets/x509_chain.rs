//! Fuzzes X.509 parsing: DER and PEM chains, SVIDs with keys, and chain verification
//! against a real bundle never panic on arbitrary bytes.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use spiffe_core::{TrustDomain, X509Bundle, X509Svid, parse_leaf_spiffe_id, verify_chain};

fn bundle() -> &'static X509Bundle {
    static BUNDLE: OnceLock<X509Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| X509Bundle::new(TrustDomain::new("example.org").expect("valid")))
}

fuzz_target!(|data: &[u8]| {
    let td = TrustDomain::new("example.org").expect("valid");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = parse_leaf_spiffe_id(data);
    if let Ok(b) = X509Bundle::parse_der(td.clone(), data) {
        let _ = verify_chain(b.authorities(), bundle(), now);
        assert_eq!(X509Bundle::parse_der(td.clone(), &b.to_der()).ok(), Some(b));
    }
    let _ = X509Bundle::parse_pem(td, data);
    // Split the input in two: a chain and a key.
    let mid = data.first().map_or(0, |b| *b as usize).min(data.len());
    let (chain, key) = data.split_at(mid);
    let _ = X509Svid::parse_der(chain, key);
    let _ = X509Svid::parse_pem(chain, key);
});
