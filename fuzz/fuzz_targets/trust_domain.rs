//! Fuzzes trust domain parsing (bare names and SPIFFE IDs): never panics, and a parsed
//! name is a valid SPIFFE ID authority.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_core::{MAX_TRUST_DOMAIN_LEN, SpiffeId, TrustDomain};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(td) = TrustDomain::parse(s) {
        assert!(!td.name().is_empty() && td.name().len() <= MAX_TRUST_DOMAIN_LEN);
        assert_eq!(TrustDomain::new(td.name()).expect("name re-parses"), td);
        let id = SpiffeId::parse(&td.id_string()).expect("root ID parses");
        assert!(id.is_root());
    }
});
