//! Fuzzes JWT-SVID parsing and validation: arbitrary tokens never panic, whether checked
//! against a real bundle or only parsed (`parse_insecure`).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use spiffe_core::{JwtAlgorithm, JwtBundle, JwtSigningKey, JwtSvid, TrustDomain};

fn bundle() -> &'static JwtBundle {
    static BUNDLE: OnceLock<JwtBundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let key = JwtSigningKey::generate(JwtAlgorithm::ES256).expect("key generation");
        let mut bundle = JwtBundle::new(TrustDomain::new("example.org").expect("valid"));
        bundle
            .add_authority("k1", key.public_key().clone())
            .expect("non-empty kid");
        bundle
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = JwtSvid::parse_and_validate(token, bundle(), &["aud"], now);
    if let Ok(svid) = JwtSvid::parse_insecure(token, &["aud"], now) {
        assert!(svid.audience().iter().any(|a| a == "aud"));
    }
});
