//! Fuzzes SPIFFE bundle and bundle-map JSON parsing: never panics, and a parsed bundle
//! serializes to a document that parses back to the same bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_core::{SpiffeBundle, TrustDomain, bundle_map_to_json, parse_bundle_map};

fuzz_target!(|data: &[u8]| {
    let td = TrustDomain::new("example.org").expect("valid trust domain");
    if let Ok(bundle) = SpiffeBundle::parse(td.clone(), data) {
        let json = bundle.to_json().expect("a parsed bundle serializes");
        let again = SpiffeBundle::parse(td, &json).expect("serialized bundle re-parses");
        assert_eq!(again, bundle);
    }
    if let Ok(bundles) = parse_bundle_map(data) {
        // Serializing may refuse only if two keys named the same trust domain, which the
        // parser already rejects.
        bundle_map_to_json(&bundles).expect("a parsed map serializes");
    }
});
