//! A tour of spiffe-core: mints a throwaway CA for `example.org`, issues an X.509-SVID
//! and a JWT-SVID, verifies both the way a relying workload would, and prints the trust
//! domain's SPIFFE bundle.
//!
//! Run with `cargo run -p spiffe-core --example demo`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use spiffe_core::{
    BundleSet, JwtAlgorithm, JwtSigningKey, JwtSvid, JwtSvidClaims, SpiffeBundle, SpiffeId,
    TrustDomain, X509Svid, jwt::sign,
};

type DemoResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> DemoResult<()> {
    let td = TrustDomain::new("example.org")?;
    let now = SystemTime::now();

    // A self-signed CA with SPIRE's CA profile (server.md §4.5).
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = subject("SPIFFE");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.subject_alt_names = vec![SanType::URI(td.id_string().try_into()?)];
    ca.serial_number = Some(SerialNumber::from_slice(&[0x2a; 16]));
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, &ca_key);

    // An X.509-SVID with SPIRE's SVID profile.
    let id = SpiffeId::parse("spiffe://example.org/demo/web")?;
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = subject("SPIRE");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    leaf.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
    leaf.serial_number = Some(SerialNumber::from_slice(&[0x17; 16]));
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    let svid = X509Svid::from_parts(
        vec![leaf_cert.der().clone()],
        PrivatePkcs8KeyDer::from(leaf_key.serialize_der()),
    )?;

    // A JWT signing key, published in the bundle under its key ID.
    let jwt_key = JwtSigningKey::generate(JwtAlgorithm::ES256)?;
    let kid = "demo-key-1";

    let mut bundle = SpiffeBundle::new(td.clone());
    bundle
        .x509_bundle_mut()
        .add_authority(CertificateDer::from(ca_cert.der().to_vec()))?;
    bundle
        .jwt_bundle_mut()
        .add_authority(kid, jwt_key.public_key().clone())?;
    bundle.set_refresh_hint(Some(Duration::from_secs(300)));
    bundle.set_sequence_number(Some(1));
    let bundles: BundleSet = [bundle.clone()].into_iter().collect();

    let verified = svid.verify(&bundles, now)?;
    println!("X.509-SVID");
    println!("  SPIFFE ID: {verified}");
    println!("  chain verified against the bundle of {}", td.name());

    let iat = now.duration_since(UNIX_EPOCH)?.as_secs() as i64;
    let claims = JwtSvidClaims::new(id.clone(), vec!["demo-audience".into()], iat + 300, iat);
    let token = sign(&jwt_key, kid, &claims)?;
    let jwt = JwtSvid::parse_and_validate(&token, &bundles, &["demo-audience"], now)?;
    println!("JWT-SVID ({})", jwt.algorithm().as_str());
    println!("  subject: {}", jwt.spiffe_id());
    println!("  audience: {:?}", jwt.audience());
    println!("  token: {}...", &token[..token.len().min(48)]);

    println!("SPIFFE bundle of {}:", td.name());
    println!("{}", String::from_utf8(bundle.to_json_pretty()?)?);
    Ok(())
}

fn subject(organization: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, organization);
    dn
}
