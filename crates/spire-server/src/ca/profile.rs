//! The X.509 profiles SPIRE issues (spec server.md §4.5, SPIRE's
//! `pkg/server/credtemplate/builder.go`), as rcgen certificate parameters.
//!
//! Common to every certificate: a serial drawn uniformly from [1, 2^128−1]; a
//! SubjectKeyIdentifier that is the SHA-1 of the subjectPublicKey BIT STRING (RFC 5280
//! §4.2.1.2 method 1); an AuthorityKeyIdentifier set to the issuer's SKID whenever issuer
//! and subject differ; basicConstraints present and critical; notBefore = now − 10 s.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyUsagePurpose, SanType, SerialNumber,
};
use spiffe_core::{SpiffeId, TrustDomain};
use time::OffsetDateTime;

/// How far notBefore is backdated to absorb clock skew (`credtemplate.NotBeforeCushion`).
pub const NOT_BEFORE_CUSHION: Duration = Duration::from_secs(10);

/// OID of the X.520 `serialNumber` attribute (2.5.4.5).
const OID_SERIAL_NUMBER: [u64; 4] = [2, 5, 4, 5];

/// Why certificate parameters could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProfileError(pub(crate) String);

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject of the server's X.509 CA: SPIRE's `ca_subject` block.
///
/// Default `C=US, O=SPIFFE`. The CA certificate's subject is this name followed by
/// `serialNumber=<decimal certificate serial>`, in Go's RDN order (C, O, CN,
/// serialNumber).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaSubject {
    /// `country`: at most one value is supported (see [`CaSubject::check`]).
    pub country: Vec<String>,
    /// `organization`: at most one value is supported.
    pub organization: Vec<String>,
    /// `common_name`; empty means none.
    pub common_name: String,
}

impl Default for CaSubject {
    fn default() -> Self {
        CaSubject {
            country: vec!["US".to_owned()],
            organization: vec!["SPIFFE".to_owned()],
            common_name: String::new(),
        }
    }
}

impl CaSubject {
    /// Whether no attribute is set (SPIRE then falls back to the default subject).
    pub fn is_empty(&self) -> bool {
        self.country.iter().all(String::is_empty)
            && self.organization.iter().all(String::is_empty)
            && self.common_name.is_empty()
    }

    /// Checks the subject can be encoded. Go puts several values of one attribute into
    /// a single multi-valued RDN, which the certificate encoder used here cannot write,
    /// so more than one `country` or `organization` value is refused.
    pub fn check(&self) -> Result<(), String> {
        if self.country.len() > 1 {
            return Err("ca_subject: more than one country is not supported".to_owned());
        }
        if self.organization.len() > 1 {
            return Err("ca_subject: more than one organization is not supported".to_owned());
        }
        Ok(())
    }

    /// The distinguished name, with `serialNumber=<serial>` appended.
    pub(crate) fn to_dn(&self, serial: u128) -> Result<DistinguishedName, ProfileError> {
        self.check().map_err(ProfileError)?;
        let default;
        let subject = if self.is_empty() {
            default = CaSubject::default();
            &default
        } else {
            self
        };
        let mut dn = DistinguishedName::new();
        if let Some(c) = subject.country.first().filter(|c| !c.is_empty()) {
            dn.push(DnType::CountryName, dn_value(c));
        }
        if let Some(o) = subject.organization.first().filter(|o| !o.is_empty()) {
            dn.push(DnType::OrganizationName, dn_value(o));
        }
        if !subject.common_name.is_empty() {
            dn.push(DnType::CommonName, dn_value(&subject.common_name));
        }
        dn.push(
            DnType::CustomDnType(OID_SERIAL_NUMBER.to_vec()),
            dn_value(&serial.to_string()),
        );
        Ok(dn)
    }
}

/// The subject of X509-SVIDs: `C=US, O=SPIRE`, plus `CN=<first DNS name>` when the
/// workload has DNS names.
pub(crate) fn svid_subject(common_name: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, dn_value("US"));
    dn.push(DnType::OrganizationName, dn_value("SPIRE"));
    if let Some(cn) = common_name {
        dn.push(DnType::CommonName, dn_value(cn));
    }
    dn
}

/// A string attribute value encoded as Go's `encoding/asn1` does: PrintableString when
/// every character allows it, UTF8String otherwise.
pub(crate) fn dn_value(s: &str) -> DnValue {
    match rcgen::string::PrintableString::try_from(s) {
        Ok(printable) => DnValue::PrintableString(printable),
        Err(_) => DnValue::Utf8String(s.to_owned()),
    }
}

/// A serial number drawn uniformly from [1, 2^128−1].
pub(crate) fn new_serial() -> Result<u128, ProfileError> {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 16];
        rng.fill(&mut bytes)
            .map_err(|_| ProfileError("unable to generate a serial number".to_owned()))?;
        let serial = u128::from_be_bytes(bytes);
        if serial != 0 {
            return Ok(serial);
        }
    }
}

/// The rcgen form of a serial.
pub(crate) fn serial_number(serial: u128) -> SerialNumber {
    SerialNumber::from_slice(&serial.to_be_bytes())
}

/// The SubjectKeyIdentifier of a public key: SHA-1 of the subjectPublicKey BIT STRING
/// contents (RFC 5280 §4.2.1.2 method 1), as Go's `x509util.GetSubjectKeyID`.
pub(crate) fn subject_key_id(public_key_bits: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, public_key_bits)
        .as_ref()
        .to_vec()
}

/// An X.509 time (whole seconds, as certificates encode them).
pub(crate) fn to_offset(t: SystemTime) -> Result<OffsetDateTime, ProfileError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ProfileError("time before the Unix epoch".to_owned()))?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|_| ProfileError("time out of range".to_owned()))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| ProfileError("time out of range".to_owned()))
}

/// Truncates a time to the whole second.
pub(crate) fn truncate_to_second(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

/// `[now − 10 s, min(now + ttl, cap)]`, as `credtemplate.computeCappedLifetime`.
pub(crate) fn capped_lifetime(
    now: SystemTime,
    ttl: Duration,
    cap: Option<SystemTime>,
) -> (SystemTime, SystemTime) {
    let now = truncate_to_second(now);
    let not_before = now.checked_sub(NOT_BEFORE_CUSHION).unwrap_or(UNIX_EPOCH);
    let mut not_after = now.checked_add(ttl).unwrap_or(now);
    if let Some(cap) = cap
        && not_after > cap
    {
        not_after = cap;
    }
    (not_before, not_after)
}

fn uri_san(id: &str) -> Result<SanType, ProfileError> {
    Ia5String::try_from(id)
        .map(SanType::URI)
        .map_err(|e| ProfileError(format!("invalid URI SAN {id:?}: {e}")))
}

/// Parameters common to every certificate: serial, validity, SKID.
fn base_params(
    serial: u128,
    public_key_bits: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, ProfileError> {
    let mut params = CertificateParams::default();
    params.serial_number = Some(serial_number(serial));
    params.not_before = to_offset(not_before)?;
    params.not_after = to_offset(not_after)?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id(public_key_bits));
    Ok(params)
}

/// The server CA certificate (self-signed): subject `ca_subject` + serialNumber, URI SAN
/// `spiffe://<td>`, CA:TRUE without pathLen, keyCertSign + cRLSign. No AKID: Go omits it
/// when issuer and subject are the same.
pub(crate) fn self_signed_ca_params(
    trust_domain: &TrustDomain,
    subject: &CaSubject,
    serial: u128,
    public_key_bits: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, ProfileError> {
    let mut params = base_params(serial, public_key_bits, not_before, not_after)?;
    params.distinguished_name = subject.to_dn(serial)?;
    params.subject_alt_names = vec![uri_san(&trust_domain.id_string())?];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = false;
    Ok(params)
}

/// The CSR sent to an UpstreamAuthority: subject `ca_subject` + serialNumber (of a
/// random template serial) and URI SAN `spiffe://<td>`; nothing else (SPIRE's
/// `BuildUpstreamSignedX509CACSR`).
pub(crate) fn ca_csr_params(
    trust_domain: &TrustDomain,
    subject: &CaSubject,
    serial: u128,
) -> Result<CertificateParams, ProfileError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_dn(serial)?;
    params.subject_alt_names = vec![uri_san(&trust_domain.id_string())?];
    Ok(params)
}

/// An intermediate CA signed by an UpstreamAuthority from a CSR (SPIRE's
/// `x509svid.UpstreamCA.SignCSR`): the CSR's subject and URI SANs, CA:TRUE,
/// digitalSignature + keyCertSign + cRLSign, AKID = the upstream's SKID when it has one.
pub(crate) fn upstream_intermediate_params(
    subject: DistinguishedName,
    uris: &[String],
    serial: u128,
    public_key_bits: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    with_authority_key_id: bool,
) -> Result<CertificateParams, ProfileError> {
    let params = base_params(serial, public_key_bits, not_before, not_after)?;
    let sans = uris
        .iter()
        .map(|uri| uri_san(uri))
        .collect::<Result<_, _>>()?;
    let usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    Ok(signed_ca(
        params,
        subject,
        sans,
        usages,
        with_authority_key_id,
    ))
}

/// `params` made a CA signed by another one (upstream or downstream): `subject`, `sans`,
/// CA:TRUE without pathLen, `key_usages`, and the AKID when the issuer has an SKID.
fn signed_ca(
    mut params: CertificateParams,
    subject: DistinguishedName,
    sans: Vec<SanType>,
    key_usages: Vec<KeyUsagePurpose>,
    with_authority_key_id: bool,
) -> CertificateParams {
    params.distinguished_name = subject;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = key_usages;
    params.use_authority_key_identifier_extension = with_authority_key_id;
    params
}

/// A downstream server's CA (SPIRE's `BuildDownstreamX509CATemplate`): the issuing CA's
/// subject with `OU=DOWNSTREAM-<parent chain length>`, URI SAN `spiffe://<td>`, CA:TRUE
/// without pathLen, keyCertSign + cRLSign, AKID = the issuer's SKID when it has one.
pub(crate) fn downstream_ca_params(
    trust_domain: &TrustDomain,
    subject: DistinguishedName,
    serial: u128,
    public_key_bits: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
    with_authority_key_id: bool,
) -> Result<CertificateParams, ProfileError> {
    let params = base_params(serial, public_key_bits, not_before, not_after)?;
    Ok(signed_ca(
        params,
        subject,
        vec![uri_san(&trust_domain.id_string())?],
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign],
        with_authority_key_id,
    ))
}

/// The subject of a downstream CA: the `parent` attributes (type, string value) in Go's
/// `pkix.Name` order (C, ST, L, O, then `OU=DOWNSTREAM-<depth>` replacing any OU, CN,
/// then the rest, such as serialNumber), each value encoded as Go re-encodes it.
pub(crate) fn downstream_subject(parent: &[(DnType, String)], depth: usize) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    let leading = [
        DnType::CountryName,
        DnType::StateOrProvinceName,
        DnType::LocalityName,
        DnType::OrganizationName,
    ];
    let push_all = |dn: &mut DistinguishedName, ty: &DnType| {
        for (_, value) in parent.iter().filter(|(t, _)| t == ty) {
            dn.push(ty.clone(), dn_value(value));
        }
    };
    for ty in &leading {
        push_all(&mut dn, ty);
    }
    dn.push(
        DnType::OrganizationalUnitName,
        dn_value(&format!("DOWNSTREAM-{depth}")),
    );
    push_all(&mut dn, &DnType::CommonName);
    for (ty, value) in parent {
        let placed = leading.contains(ty)
            || *ty == DnType::OrganizationalUnitName
            || *ty == DnType::CommonName;
        if !placed {
            dn.push(ty.clone(), dn_value(value));
        }
    }
    dn
}

/// An X509-SVID: subject `C=US, O=SPIRE` (+ CN = first DNS name), exactly one URI SAN
/// (the ID), the DNS SANs, CA:FALSE, digitalSignature + keyEncipherment + keyAgreement,
/// EKU serverAuth + clientAuth, AKID = the CA's SKID.
pub(crate) fn x509_svid_params(
    id: &SpiffeId,
    dns_names: &[String],
    serial: u128,
    public_key_bits: &[u8],
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, ProfileError> {
    let mut params = base_params(serial, public_key_bits, not_before, not_after)?;
    params.distinguished_name = svid_subject(dns_names.first().map(String::as_str));
    let mut sans = vec![uri_san(id.as_str())?];
    for name in dns_names {
        let name = Ia5String::try_from(name.as_str())
            .map_err(|e| ProfileError(format!("invalid DNS name {name:?}: {e}")))?;
        sans.push(SanType::DnsName(name));
    }
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

pub(crate) use spire_common::keymanager::hex;
