//! Generates the quickstart's throwaway upstream CA, like SPIRE's
//! `conf/server/dummy_upstream_ca.{crt,key}`:
//!
//! - a self-signed P-384 CA, subject and issuer `C=US, O=SPIFFE`, URI SAN
//!   `spiffe://local`, keyUsage keyCertSign + cRLSign (critical), CA:TRUE (critical),
//!   SKID = SHA-1 of the public key, valid for 10 years from today, signed
//!   ecdsa-with-SHA384 (SPIRE's is ecdsa-with-SHA512, which rcgen cannot write);
//! - its key as a SEC1 `EC PRIVATE KEY` PEM;
//! - `conf/agent/dummy_root_ca.crt`, byte-identical to the certificate.
//!
//! Run once from the repository root; the outputs are demo material, never for
//! production:
//!
//! ```text
//! cargo run -p spire-server --example gen_dummy_upstream_ca -- [repo root]
//! ```

use std::path::PathBuf;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair};
use rcgen::string::{Ia5String, PrintableString};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::PrivatePkcs8KeyDer;
use time::OffsetDateTime;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_owned()));

    let key = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_ASN1_SIGNING)?;
    let pkcs8 = key.to_pkcs8v1()?;
    let sec1: EcPrivateKeyRfc5915Der<'static> = key.private_key().as_der()?;
    let signer = KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(pkcs8.as_ref()),
        &PKCS_ECDSA_P384_SHA384,
    )?;

    let mut serial = [0u8; 16];
    SystemRandom::new().fill(&mut serial)?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;

    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let not_after = now.replace_year(now.year() + 10)?;

    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CountryName,
        DnValue::PrintableString(PrintableString::try_from("US")?),
    );
    dn.push(
        DnType::OrganizationName,
        DnValue::PrintableString(PrintableString::try_from("SPIFFE")?),
    );

    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now;
    params.not_after = not_after;
    params.subject_alt_names = vec![SanType::URI(Ia5String::try_from("spiffe://local")?)];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = KeyIdMethod::PreSpecified(
        digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, signer.der_bytes())
            .as_ref()
            .to_vec(),
    );
    let cert = params.self_signed(&signer)?;

    let cert_pem = cert.pem();
    let key_pem = pem::encode_config(
        &pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );

    let server_dir = root.join("conf/server");
    let agent_dir = root.join("conf/agent");
    std::fs::create_dir_all(&server_dir)?;
    std::fs::create_dir_all(&agent_dir)?;
    std::fs::write(server_dir.join("dummy_upstream_ca.crt"), &cert_pem)?;
    std::fs::write(server_dir.join("dummy_upstream_ca.key"), &key_pem)?;
    std::fs::write(agent_dir.join("dummy_root_ca.crt"), &cert_pem)?;
    println!(
        "wrote {}, {} and {}",
        server_dir.join("dummy_upstream_ca.crt").display(),
        server_dir.join("dummy_upstream_ca.key").display(),
        agent_dir.join("dummy_root_ca.crt").display()
    );
    Ok(())
}
