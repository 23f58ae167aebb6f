//! Fuzzes SPIFFE ID parsing: never panics, and whatever parses re-parses to itself and
//! keeps the invariants the rest of spire-rs relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spiffe_core::{MAX_SPIFFE_ID_LEN, SpiffeId};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = SpiffeId::parse(s) {
        assert_eq!(id.as_str(), s);
        assert!(s.len() <= MAX_SPIFFE_ID_LEN);
        let again = SpiffeId::parse(&id.to_string()).expect("a parsed ID re-parses");
        assert_eq!(again, id);
        let td = id.trust_domain();
        assert!(id.is_member_of(&td));
        assert_eq!(SpiffeId::new(&td, id.path()).expect("same path"), id);
    }
});
