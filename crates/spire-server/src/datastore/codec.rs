//! The protobuf blobs SPIRE keeps in the database, declared by hand with prost so the
//! bytes we write are the bytes SPIRE writes (and reads):
//! - `bundles.data`: `spire.common.Bundle`;
//! - `registered_entries.additional_attributes`:
//!   `spire.common.RegistrationEntry.AdditionalAttributes`.

use prost::Message;

use super::error::Result;
use super::model::{Bundle, JwtKey, X509Authority, td_id, td_name};

/// `spire.common.Certificate`.
#[derive(Clone, PartialEq, Message)]
struct CertificatePb {
    #[prost(bytes = "vec", tag = "1")]
    der_bytes: Vec<u8>,
    #[prost(bool, tag = "2")]
    tainted_key: bool,
}

/// `spire.common.PublicKey`.
#[derive(Clone, PartialEq, Message)]
struct PublicKeyPb {
    #[prost(bytes = "vec", tag = "1")]
    pkix_bytes: Vec<u8>,
    #[prost(string, tag = "2")]
    kid: String,
    #[prost(int64, tag = "3")]
    not_after: i64,
    #[prost(bool, tag = "4")]
    tainted_key: bool,
}

/// `spire.common.Bundle`.
#[derive(Clone, PartialEq, Message)]
struct BundlePb {
    #[prost(string, tag = "1")]
    trust_domain_id: String,
    #[prost(message, repeated, tag = "2")]
    root_cas: Vec<CertificatePb>,
    #[prost(message, repeated, tag = "3")]
    jwt_signing_keys: Vec<PublicKeyPb>,
    #[prost(int64, tag = "4")]
    refresh_hint: i64,
    #[prost(uint64, tag = "5")]
    sequence_number: u64,
    #[prost(message, repeated, tag = "6")]
    wit_signing_keys: Vec<PublicKeyPb>,
}

/// `spire.common.RegistrationEntry.AdditionalAttributes`.
#[derive(Clone, PartialEq, Message)]
struct AdditionalAttributesPb {
    #[prost(bool, tag = "1")]
    disable_x509_svid_prefetch: bool,
    #[prost(bool, tag = "2")]
    jwt_svid_include_jti: bool,
}

fn key_to_pb(k: &JwtKey) -> PublicKeyPb {
    PublicKeyPb {
        pkix_bytes: k.public_key.clone(),
        kid: k.key_id.clone(),
        not_after: k.expires_at,
        tainted_key: k.tainted,
    }
}

fn key_from_pb(k: PublicKeyPb) -> JwtKey {
    JwtKey {
        public_key: k.pkix_bytes,
        key_id: k.kid,
        expires_at: k.not_after,
        tainted: k.tainted_key,
    }
}

/// Encodes a bundle as `spire.common.Bundle` (trust domain as `spiffe://td`).
pub(crate) fn encode_bundle(b: &Bundle) -> Vec<u8> {
    BundlePb {
        trust_domain_id: td_id(&b.trust_domain),
        root_cas: b
            .x509_authorities
            .iter()
            .map(|a| CertificatePb {
                der_bytes: a.asn1.clone(),
                tainted_key: a.tainted,
            })
            .collect(),
        jwt_signing_keys: b.jwt_authorities.iter().map(key_to_pb).collect(),
        refresh_hint: b.refresh_hint,
        sequence_number: b.sequence_number,
        wit_signing_keys: b.wit_authorities.iter().map(key_to_pb).collect(),
    }
    .encode_to_vec()
}

/// Decodes `bundles.data`. `row_td` (the row's `trust_domain` column) names the bundle
/// when the blob does not.
pub(crate) fn decode_bundle(data: &[u8], row_td: &str) -> Result<Bundle> {
    let pb = BundlePb::decode(data)?;
    let td = if pb.trust_domain_id.is_empty() {
        row_td
    } else {
        pb.trust_domain_id.as_str()
    };
    Ok(Bundle {
        trust_domain: td_name(td),
        x509_authorities: pb
            .root_cas
            .into_iter()
            .map(|c| X509Authority {
                asn1: c.der_bytes,
                tainted: c.tainted_key,
            })
            .collect(),
        jwt_authorities: pb.jwt_signing_keys.into_iter().map(key_from_pb).collect(),
        wit_authorities: pb.wit_signing_keys.into_iter().map(key_from_pb).collect(),
        refresh_hint: pb.refresh_hint,
        sequence_number: pb.sequence_number,
    })
}

/// Encodes the additional attributes; `None` (a NULL column) when both are unset.
pub(crate) fn encode_additional_attributes(
    disable_prefetch: bool,
    include_jti: bool,
) -> Option<Vec<u8>> {
    if !disable_prefetch && !include_jti {
        return None;
    }
    Some(
        AdditionalAttributesPb {
            disable_x509_svid_prefetch: disable_prefetch,
            jwt_svid_include_jti: include_jti,
        }
        .encode_to_vec(),
    )
}

/// Decodes the additional attributes column (NULL/empty = both false).
pub(crate) fn decode_additional_attributes(data: Option<&[u8]>) -> Result<(bool, bool)> {
    match data {
        None => Ok((false, false)),
        Some([]) => Ok((false, false)),
        Some(bytes) => {
            let pb = AdditionalAttributesPb::decode(bytes)?;
            Ok((pb.disable_x509_svid_prefetch, pb.jwt_svid_include_jti))
        }
    }
}
