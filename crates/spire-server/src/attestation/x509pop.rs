//! Server `NodeAttestor "x509pop"` (server.md §6; SPIRE's
//! `doc/plugin_server_nodeattestor_x509pop.md`): the agent presents a certificate chain
//! rooted in a configured CA bundle and proves possession of the leaf key by signing a
//! nonce challenge. Agent ID `spiffe://<td>/spire/agent/x509pop/<sha1 fingerprint>` by
//! default; re-attestable.
//!
//! Supported: `mode = "external_pki"` (the default: `ca_bundle_path`/`ca_bundle_paths`),
//! `mode = "spiffe"` (the chain is verified against the server's own trust bundle, read
//! from the datastore at each attestation; the leaf's first `spiffe://` URI must have a
//! path under `spiffe_prefix`, default `/spire-exchange/`, and the rest of it is
//! `.SVIDPathTrimmed`), `agent_path_template`, `max_intermediates`.
//!
//! The prefix key is `spiffe_prefix`, the name SPIRE's source binds (its documentation
//! says `svid_prefix`, which SPIRE ignores, as unknown keys are ignored here too).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::Deserialize;
use spiffe_core::TrustDomain;
use spire_common::x509pop::{self as pop, PublicKey};
use tonic::Status;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::template::{PathTemplate, Value};
use super::{AttestResult, Challenger, NodeAttestor, agent_id_from_path, load_pem_certificates};
use crate::datastore::SqlStore;
use spire_common::hcl::PluginConfig;

/// The plugin (and attestation data type) name.
pub const PLUGIN_NAME: &str = "x509pop";
/// SPIRE's default agent path template in `external_pki` mode.
pub const DEFAULT_AGENT_PATH_TEMPLATE: &str = "{{ .PluginName }}/{{ .Fingerprint }}";
/// SPIRE's default agent path template in `spiffe` mode.
pub const DEFAULT_SPIFFE_AGENT_PATH_TEMPLATE: &str = "{{ .PluginName }}/{{ .SVIDPathTrimmed }}";
/// SPIRE's default `spiffe_prefix`.
const DEFAULT_SPIFFE_PREFIX: &str = "/spire-exchange/";
/// SPIRE's default `max_intermediates`.
const DEFAULT_MAX_INTERMEDIATES: usize = 4;

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    ca_bundle_path: Option<String>,
    #[serde(default)]
    ca_bundle_paths: Option<Vec<String>>,
    #[serde(default)]
    agent_path_template: Option<String>,
    #[serde(default)]
    max_intermediates: Option<i64>,
    #[serde(default)]
    spiffe_prefix: Option<String>,
}

/// The parsed `plugin_data` of `NodeAttestor "x509pop"`.
#[derive(Debug, Clone)]
pub struct X509PopConfig {
    /// The CA bundle files.
    pub ca_bundle_paths: Vec<PathBuf>,
    /// `agent_path_template`.
    pub agent_path_template: PathTemplate,
    /// `max_intermediates` (default 4).
    pub max_intermediates: usize,
    /// In `spiffe` mode, the path prefix the exchanged SVID must have (ending in `/`);
    /// `None` in `external_pki` mode.
    pub spiffe_prefix: Option<String>,
}

impl X509PopConfig {
    /// Reads and checks the plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, String> {
        let raw: RawConfig = plugin.decode_data().map_err(|e| e.to_string())?;
        let spiffe = match raw.mode.as_deref() {
            None | Some("" | "external_pki") => false,
            Some("spiffe") => true,
            Some(other) => {
                return Err(format!(
                    "x509pop: mode can only be either spiffe or external_pki, got {other:?}"
                ));
            }
        };
        let single = raw.ca_bundle_path.filter(|p| !p.is_empty());
        let many = raw.ca_bundle_paths.unwrap_or_default();
        let spiffe_prefix = if spiffe {
            if single.is_some() || !many.is_empty() {
                return Err(
                    "x509pop: you can not use ca_bundle_path or ca_bundle_paths in spiffe mode"
                        .into(),
                );
            }
            Some(match raw.spiffe_prefix {
                None => DEFAULT_SPIFFE_PREFIX.to_owned(),
                Some(p) if p.ends_with('/') => p,
                Some(p) => format!("{p}/"),
            })
        } else {
            None
        };
        let ca_bundle_paths: Vec<PathBuf> = match (single, many.is_empty()) {
            _ if spiffe => Vec::new(),
            (Some(_), false) => {
                return Err(
                    "x509pop: only one of ca_bundle_path or ca_bundle_paths can be configured, not both"
                        .into(),
                );
            }
            (Some(p), true) => vec![PathBuf::from(p)],
            (None, false) => many.into_iter().map(PathBuf::from).collect(),
            (None, true) => {
                return Err(
                    "x509pop: one of ca_bundle_path or ca_bundle_paths must be configured".into(),
                );
            }
        };
        let template = raw
            .agent_path_template
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| {
                if spiffe {
                    DEFAULT_SPIFFE_AGENT_PATH_TEMPLATE
                } else {
                    DEFAULT_AGENT_PATH_TEMPLATE
                }
                .to_owned()
            });
        let agent_path_template = PathTemplate::parse(&template)
            .map_err(|e| format!("x509pop: failed to parse agent svid template: {e}"))?;
        let max_intermediates = match raw.max_intermediates {
            None => DEFAULT_MAX_INTERMEDIATES,
            Some(n) => usize::try_from(n)
                .map_err(|_| "x509pop: max_intermediates must not be negative".to_owned())?,
        };
        Ok(X509PopConfig {
            ca_bundle_paths,
            agent_path_template,
            max_intermediates,
            spiffe_prefix,
        })
    }
}

/// The x509pop attestor: trusted roots loaded at configuration (`external_pki`) or read
/// from the server's bundle at each attestation (`spiffe`).
pub struct X509PopAttestor {
    trust_domain: TrustDomain,
    roots: Vec<CertificateDer<'static>>,
    template: PathTemplate,
    max_intermediates: usize,
    spiffe_prefix: Option<String>,
    server_bundle: Option<Arc<SqlStore>>,
}

impl std::fmt::Debug for X509PopAttestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509PopAttestor")
            .field("trust_domain", &self.trust_domain)
            .field("roots", &self.roots.len())
            .field("spiffe_prefix", &self.spiffe_prefix)
            .finish_non_exhaustive()
    }
}

/// Accepts any EKU, as SPIRE verifies with `ExtKeyUsageAny`.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

fn invalid(message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("x509pop: {message}"))
}

fn denied(message: impl std::fmt::Display) -> Status {
    Status::permission_denied(format!("x509pop: {message}"))
}

impl X509PopAttestor {
    /// The attestor for `trust_domain`, loading the CA bundle files.
    pub fn new(trust_domain: TrustDomain, config: &X509PopConfig) -> Result<Self, String> {
        let mut roots = Vec::new();
        for path in &config.ca_bundle_paths {
            roots.extend(
                load_pem_certificates(path)
                    .map_err(|e| format!("x509pop: unable to load trust bundle: {e}"))?,
            );
        }
        for root in &roots {
            webpki::anchor_from_trusted_cert(root)
                .map_err(|e| format!("x509pop: unable to load trust bundle: {e}"))?;
        }
        Ok(X509PopAttestor {
            trust_domain,
            roots,
            template: config.agent_path_template.clone(),
            max_intermediates: config.max_intermediates,
            spiffe_prefix: config.spiffe_prefix.clone(),
            server_bundle: None,
        })
    }

    /// Where `spiffe` mode reads the server's trust bundle from (SPIRE's IdentityProvider
    /// host service). Without it, a `spiffe` mode attestation fails.
    pub fn with_server_bundle(mut self, store: Arc<SqlStore>) -> Self {
        self.server_bundle = Some(store);
        self
    }

    /// The roots to verify against: the configured CA bundle, or in `spiffe` mode the
    /// X.509 authorities of the server's current trust bundle.
    async fn current_roots(&self) -> Result<Vec<CertificateDer<'static>>, Status> {
        if self.spiffe_prefix.is_none() {
            return Ok(self.roots.clone());
        }
        let store = self.server_bundle.as_ref().ok_or_else(|| {
            Status::failed_precondition("x509pop: the server trust bundle is not available")
        })?;
        let bundle = store
            .fetch_bundle(self.trust_domain.name())
            .await
            .map_err(|e| Status::internal(format!("x509pop: failed to get trust bundle: {e}")))?;
        let roots: Vec<CertificateDer<'static>> = bundle
            .map(|b| {
                b.x509_authorities
                    .into_iter()
                    .map(|a| CertificateDer::from(a.asn1))
                    .collect()
            })
            .unwrap_or_default();
        if roots.is_empty() {
            tracing::warn!("No trust bundle retrieved from SPIRE");
        }
        Ok(roots)
    }

    /// Verifies the chain against `roots`; returns the DER of every non-leaf certificate
    /// of the verified path (intermediates, then the root).
    fn verify_chain(
        &self,
        roots: &[CertificateDer<'static>],
        chain: &[CertificateDer<'_>],
    ) -> Result<Vec<Vec<u8>>, Status> {
        let (leaf, intermediates) = chain
            .split_first()
            .ok_or_else(|| invalid("no certificate to attest"))?;
        let anchors: Vec<TrustAnchor<'_>> = roots
            .iter()
            .filter_map(|r| webpki::anchor_from_trusted_cert(r).ok())
            .collect();
        let ee = EndEntityCert::try_from(leaf)
            .map_err(|e| invalid(format!("unable to parse leaf certificate: {e}")))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Status::internal("clock before the epoch"))?;
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &anchors,
                intermediates,
                UnixTime::since_unix_epoch(now),
                AnyUsage,
                None,
                None,
            )
            .map_err(|e| denied(format!("certificate verification failed: {e}")))?;
        let mut issuers: Vec<Vec<u8>> = path
            .intermediate_certificates()
            .map(|c| c.der().as_ref().to_vec())
            .collect();
        let anchor = path.anchor();
        if let Some(root) = roots.iter().zip(&anchors).find_map(|(der, a)| {
            (a.subject == anchor.subject
                && a.subject_public_key_info == anchor.subject_public_key_info)
                .then_some(der)
        }) {
            issuers.push(root.as_ref().to_vec());
        }
        Ok(issuers)
    }

    /// Template data, agent ID and selectors for a verified leaf.
    fn identify(
        &self,
        leaf_der: &[u8],
        leaf: &X509Certificate<'_>,
        issuers: &[Vec<u8>],
        svid_path_trimmed: String,
    ) -> Result<AttestResult, Status> {
        let fingerprint = pop::fingerprint(leaf_der);
        let serial_hex = pop::hex(leaf.tbs_certificate.serial.to_bytes_be().as_slice());
        let serial_hex = serial_hex.trim_start_matches('0');
        let serial_hex = if serial_hex.is_empty() {
            "0"
        } else {
            serial_hex
        };
        let cn = leaf
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_owned();
        let san = san_selectors(leaf, self.trust_domain.name());

        let mut data = BTreeMap::new();
        data.insert("PluginName".into(), Value::Str(PLUGIN_NAME.into()));
        data.insert(
            "TrustDomain".into(),
            Value::Str(self.trust_domain.name().into()),
        );
        data.insert("Fingerprint".into(), Value::Str(fingerprint));
        data.insert("SerialNumberHex".into(), Value::Str(serial_hex.to_owned()));
        data.insert("SVIDPathTrimmed".into(), Value::Str(svid_path_trimmed));
        let mut subject = BTreeMap::new();
        subject.insert("CommonName".into(), Value::Str(cn.clone()));
        data.insert("Subject".into(), Value::Map(subject));
        data.insert(
            "URISanSelectors".into(),
            Value::Map(
                san.iter()
                    .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                    .collect(),
            ),
        );
        let rendered = self
            .template
            .render(&data)
            .map_err(|e| Status::internal(format!("x509pop: failed to make spiffe id: {e}")))?;
        let agent_id = agent_id_from_path(&self.trust_domain, &rendered)?;

        let mut selectors = Vec::new();
        if !cn.is_empty() {
            selectors.push(format!("subject:cn:{cn}"));
        }
        let mut seen = std::collections::HashSet::new();
        for der in issuers {
            let fp = pop::fingerprint(der);
            if seen.insert(fp.clone()) {
                selectors.push(format!("ca:fingerprint:{fp}"));
            }
        }
        selectors.push(format!("serialnumber:{serial_hex}"));
        for (k, v) in &san {
            selectors.push(format!("san:{k}:{v}"));
        }
        Ok(AttestResult {
            agent_id,
            selectors,
            can_reattest: true,
        })
    }
}

/// URI SANs `x509pop://<td>/<key>/<value...>` of the leaf, as key → value.
fn san_selectors(leaf: &X509Certificate<'_>, td: &str) -> BTreeMap<String, String> {
    let prefix = format!("x509pop://{td}/");
    let mut out = BTreeMap::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name
                && let Some(rest) = uri.strip_prefix(&prefix)
            {
                let rest = rest.trim_matches('/');
                if let Some((key, value)) = rest.split_once('/')
                    && !key.is_empty()
                    && !value.is_empty()
                {
                    out.insert(key.to_owned(), value.to_owned());
                } else {
                    tracing::warn!(uri = *uri, "x509pop: cannot extract SAN selector");
                }
            }
        }
    }
    out
}

/// The challengeable key of a leaf.
fn leaf_public_key<'a>(leaf: &'a X509Certificate<'_>) -> Result<PublicKey<'a>, Status> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
    };
    let spki = &leaf.tbs_certificate.subject_pki;
    let raw = spki.subject_public_key.data.as_ref();
    let alg = &spki.algorithm;
    if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
        return Ok(PublicKey::Rsa(raw));
    }
    if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
        return match curve {
            Some(c) if c == OID_EC_P256 => Ok(PublicKey::EcdsaP256(raw)),
            Some(c) if c == OID_NIST_EC_P384 => Ok(PublicKey::EcdsaP384(raw)),
            _ => Err(invalid("unsupported ECDSA curve")),
        };
    }
    Err(invalid(format!(
        "unsupported public key type {}",
        alg.algorithm
    )))
}

#[tonic::async_trait]
impl NodeAttestor for X509PopAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    async fn attest(
        &self,
        payload: &[u8],
        challenger: &mut dyn Challenger,
    ) -> Result<AttestResult, Status> {
        let data: pop::AttestationData = serde_json::from_slice(payload)
            .map_err(|e| invalid(format!("failed to unmarshal data: {e}")))?;
        if data.certificates.is_empty() {
            return Err(invalid("no certificate to attest"));
        }
        if data.certificates.len() - 1 > self.max_intermediates {
            return Err(invalid(format!(
                "too many intermediates: {} > {}",
                data.certificates.len() - 1,
                self.max_intermediates
            )));
        }
        let chain: Vec<CertificateDer<'_>> = data
            .certificates
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        let (_, leaf) = X509Certificate::from_der(&data.certificates[0])
            .map_err(|e| invalid(format!("unable to parse leaf certificate: {e}")))?;
        let roots = self.current_roots().await?;
        let issuers = self.verify_chain(&roots, &chain)?;

        // The leaf is trusted: challenge the node to prove possession of its key.
        let digital_signature = leaf
            .key_usage()
            .ok()
            .flatten()
            .is_some_and(|ku| ku.value.digital_signature());
        if !digital_signature {
            return Err(invalid(
                "unable to generate challenge: certificate not intended for digital signature use",
            ));
        }
        let key = leaf_public_key(&leaf)?;
        let challenge = pop::generate_challenge(&key)
            .map_err(|e| Status::internal(format!("x509pop: unable to generate challenge: {e}")))?;
        let challenge_bytes = serde_json::to_vec(&challenge)
            .map_err(|e| Status::internal(format!("x509pop: unable to marshal challenge: {e}")))?;
        let response_bytes = challenger.challenge(challenge_bytes).await?;
        let response: pop::Response = serde_json::from_slice(&response_bytes)
            .map_err(|e| invalid(format!("unable to unmarshal challenge response: {e}")))?;
        pop::verify_response(&key, &challenge, &response)
            .map_err(|e| denied(format!("challenge response verification failed: {e}")))?;

        let svid_path_trimmed = match &self.spiffe_prefix {
            None => String::new(),
            Some(prefix) => svid_path_under(&leaf, prefix)?,
        };
        self.identify(&data.certificates[0], &leaf, &issuers, svid_path_trimmed)
    }
}

/// In `spiffe` mode: the path of the leaf's first `spiffe://` URI SAN with `prefix`
/// removed, or PermissionDenied when there is none or it lies outside `prefix`.
fn svid_path_under(leaf: &X509Certificate<'_>, prefix: &str) -> Result<String, Status> {
    let uri = leaf
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
                _ => None,
            })
        })
        .ok_or_else(|| denied("valid SVID x509 cert not found"))?;
    let rest = &uri["spiffe://".len()..];
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.strip_prefix(prefix)
        .map(str::to_owned)
        .ok_or_else(|| denied("x509 cert doesnt match SVID prefix"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        SanType,
    };
    use spire_common::x509pop::PrivateKey;

    struct Pki {
        ca_pem: String,
        ca_der: Vec<u8>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Pki {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("ca");
        Pki {
            ca_pem: cert.pem(),
            ca_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    struct Leaf {
        der: Vec<u8>,
        key: PrivateKey,
    }

    fn leaf_with(pki: &Pki, key: KeyPair, edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "node-1");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![SanType::URI(
            "x509pop://example.org/datacenter/us-east-1"
                .try_into()
                .expect("uri"),
        )];
        edit(&mut params);
        let cert = params.signed_by(&key, &pki.issuer).expect("leaf");
        let der = key.serialize_der();
        let private = if key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
            PrivateKey::Rsa(RsaKeyPair::from_pkcs8(&der).expect("rsa"))
        } else {
            PrivateKey::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).expect("ec"),
            )
        };
        Leaf {
            der: cert.der().to_vec(),
            key: private,
        }
    }

    fn leaf(pki: &Pki) -> Leaf {
        leaf_with(pki, KeyPair::generate().expect("key"), |_| {})
    }

    fn attestor(pki: &Pki, dir: &tempfile::TempDir, template: Option<&str>) -> X509PopAttestor {
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, &pki.ca_pem).expect("write");
        let template = template.unwrap_or(DEFAULT_AGENT_PATH_TEMPLATE);
        let config = X509PopConfig {
            ca_bundle_paths: vec![path],
            agent_path_template: PathTemplate::parse(template).expect("template"),
            max_intermediates: 4,
            spiffe_prefix: None,
        };
        X509PopAttestor::new(TrustDomain::new("example.org").expect("td"), &config)
            .expect("attestor")
    }

    /// Answers the challenge with `key` (not necessarily the leaf's).
    struct KeyChallenger<'a>(&'a PrivateKey, usize);

    #[tonic::async_trait]
    impl Challenger for KeyChallenger<'_> {
        async fn challenge(&mut self, challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
            self.1 += 1;
            let challenge: pop::Challenge =
                serde_json::from_slice(&challenge).map_err(|e| Status::internal(e.to_string()))?;
            let response = pop::calculate_response(self.0, &challenge).map_err(Status::internal)?;
            serde_json::to_vec(&response).map_err(|e| Status::internal(e.to_string()))
        }
    }

    fn payload(certs: &[&[u8]]) -> Vec<u8> {
        serde_json::to_vec(&pop::AttestationData {
            certificates: certs.iter().map(|c| c.to_vec()).collect(),
        })
        .expect("json")
    }

    #[tokio::test]
    async fn attests_with_a_good_chain_and_key() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = ca("agent-ca");
        let leaf = leaf(&pki);
        let att = attestor(&pki, &dir, None);
        let mut ch = KeyChallenger(&leaf.key, 0);
        let result = att
            .attest(&payload(&[&leaf.der]), &mut ch)
            .await
            .expect("attest");
        assert_eq!(ch.1, 1);
        let fp = pop::fingerprint(&leaf.der);
        assert_eq!(
            result.agent_id.to_string(),
            format!("spiffe://example.org/spire/agent/x509pop/{fp}")
        );
        assert!(result.can_reattest);
        assert_eq!(result.selectors[0], "subject:cn:node-1");
        assert_eq!(
            result.selectors[1],
            format!("ca:fingerprint:{}", pop::fingerprint(&pki.ca_der))
        );
        assert!(result.selectors[2].starts_with("serialnumber:"));
        assert_eq!(result.selectors[3], "san:datacenter:us-east-1");
        assert_eq!(result.selectors.len(), 4);
    }

    #[tokio::test]
    async fn attests_an_rsa_key_and_renders_custom_templates() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = ca("agent-ca");
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
        let leaf = leaf_with(&pki, key, |_| {});
        let att = attestor(
            &pki,
            &dir,
            Some("/cn/{{ .Subject.CommonName }}/{{ .URISanSelectors.datacenter }}"),
        );
        let result = att
            .attest(&payload(&[&leaf.der]), &mut KeyChallenger(&leaf.key, 0))
            .await
            .expect("attest");
        assert_eq!(
            result.agent_id.to_string(),
            "spiffe://example.org/spire/agent/cn/node-1/us-east-1"
        );
    }

    #[tokio::test]
    async fn refuses_a_chain_from_another_ca() {
        let dir = tempfile::tempdir().expect("dir");
        let trusted = ca("trusted");
        let other = ca("other");
        let leaf = leaf(&other);
        let err = attestor(&trusted, &dir, None)
            .attest(&payload(&[&leaf.der]), &mut KeyChallenger(&leaf.key, 0))
            .await
            .expect_err("wrong CA");
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(err.message().contains("certificate verification failed"));
    }

    #[tokio::test]
    async fn refuses_a_response_signed_with_another_key() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = ca("agent-ca");
        let leaf = leaf(&pki);
        let impostor = self::leaf(&pki);
        let mut ch = KeyChallenger(&impostor.key, 0);
        let err = attestor(&pki, &dir, None)
            .attest(&payload(&[&leaf.der]), &mut ch)
            .await
            .expect_err("wrong key");
        assert_eq!(ch.1, 1);
        assert_eq!(err.code(), tonic::Code::PermissionDenied);
        assert!(
            err.message()
                .contains("challenge response verification failed")
        );
    }

    #[tokio::test]
    async fn refuses_expired_and_non_signing_certificates_and_garbage() {
        let dir = tempfile::tempdir().expect("dir");
        let pki = ca("agent-ca");
        let att = attestor(&pki, &dir, None);
        let expired = leaf_with(&pki, KeyPair::generate().expect("key"), |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        });
        let err = att
            .attest(
                &payload(&[&expired.der]),
                &mut KeyChallenger(&expired.key, 0),
            )
            .await
            .expect_err("expired");
        assert_eq!(err.code(), tonic::Code::PermissionDenied);

        let no_sig = leaf_with(&pki, KeyPair::generate().expect("key"), |p| {
            p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        });
        let mut ch = KeyChallenger(&no_sig.key, 0);
        let err = att
            .attest(&payload(&[&no_sig.der]), &mut ch)
            .await
            .expect_err("no digitalSignature");
        assert_eq!(ch.1, 0);
        assert!(err.message().contains("digital signature"));

        let good = leaf(&pki);
        for bad in [b"not json".to_vec(), payload(&[]), payload(&[b"garbage"])] {
            let err = att
                .attest(&bad, &mut KeyChallenger(&good.key, 0))
                .await
                .expect_err("bad payload");
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        }
    }

    fn config(plugin_data: &str) -> Result<X509PopConfig, String> {
        let text = format!(
            "server {{\n trust_domain = \"example.org\"\n data_dir = \"/tmp\"\n}}\nplugins {{\n DataStore \"sql\" {{\n plugin_data {{\n database_type = \"sqlite3\"\n connection_string = \"x\"\n }}\n }}\n KeyManager \"memory\" {{\n plugin_data {{}}\n }}\n NodeAttestor \"x509pop\" {{\n plugin_data {{\n{plugin_data}\n }}\n }}\n}}\n"
        );
        let server = crate::config::ServerConfig::parse(&text, &Default::default())
            .map_err(|e| e.to_string())?;
        X509PopConfig::from_plugin(server.plugin("NodeAttestor", "x509pop").ok_or("missing")?)
    }

    #[test]
    fn config_requires_exactly_one_bundle_setting_and_a_known_mode() {
        let c = config("ca_bundle_path = \"/a.pem\"").expect("single");
        assert_eq!(c.ca_bundle_paths, vec![PathBuf::from("/a.pem")]);
        assert_eq!(c.agent_path_template.source(), DEFAULT_AGENT_PATH_TEMPLATE);
        assert_eq!(c.max_intermediates, 4);
        let c = config("ca_bundle_paths = [\"/a.pem\", \"/b.pem\"]\nagent_path_template = \"/cn/{{ .Subject.CommonName }}\"")
            .expect("many");
        assert_eq!(c.ca_bundle_paths.len(), 2);
        assert!(config("").expect_err("none").contains("must be configured"));
        assert!(
            config("ca_bundle_path = \"/a\"\nca_bundle_paths = [\"/b\"]")
                .expect_err("both")
                .contains("not both")
        );
        assert!(
            config("ca_bundle_path = \"/a\"\nmode = \"spiffe\"")
                .expect_err("bundle in spiffe mode")
                .contains("can not use ca_bundle_path")
        );
        let c = config("mode = \"spiffe\"").expect("spiffe");
        assert_eq!(c.spiffe_prefix.as_deref(), Some("/spire-exchange/"));
        assert_eq!(
            c.agent_path_template.source(),
            DEFAULT_SPIFFE_AGENT_PATH_TEMPLATE
        );
        let c = config("mode = \"spiffe\"\nspiffe_prefix = \"/nodes\"").expect("prefix");
        assert_eq!(c.spiffe_prefix.as_deref(), Some("/nodes/"));
        assert!(config("ca_bundle_path = \"/a\"\nmode = \"other\"").is_err());
        assert!(config("ca_bundle_path = \"/a\"\nagent_path_template = \"{{ if .X }}\"").is_err());
    }
}
