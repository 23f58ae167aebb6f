//! Server `NodeAttestor "aws_iid"` (server.md §6), without the AWS API: the agent sends
//! the EC2 instance identity document and its signature
//! (`{"document","signature","rsa2048"}`); the server verifies the legacy `signature`
//! (RSA PKCS#1 v1.5 SHA-256 over the document) against the AWS certificates, builds the
//! agent ID from `agent_path_template` (default
//! `/{{ .PluginName }}/{{ .AccountID }}/{{ .Region }}/{{ .InstanceID }}`) and reports
//! the document's selectors. Not re-attestable (trust on first use, enforced by the API).
//!
//! Differences from SPIRE, stated: SPIRE embeds AWS's public certificates; spire-rs
//! reads them from `aws_ca_certificate_paths` (PEM; a spire-rs key). `ec2:DescribeInstances`,
//! `iam:GetInstanceProfile`, the block device check, organization and EKS checks are
//! not performed, so `tag:`, `sg:` and `iamrole:` selectors and `.Tags` in templates are
//! unavailable; the PKCS#7 `rsa2048` signature is not verified.

use std::collections::BTreeMap;
use std::path::PathBuf;

use aws_lc_rs::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use spiffe_core::TrustDomain;
use spire_common::hcl::PluginConfig;
use tonic::Status;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::template::{PathTemplate, Value};
use super::{AttestResult, Challenger, NodeAttestor, agent_id_from_path, load_pem_certificates};

/// The plugin (and attestation data type) name.
pub const PLUGIN_NAME: &str = "aws_iid";
/// SPIRE's default agent path template.
pub const DEFAULT_AGENT_PATH_TEMPLATE: &str =
    "/{{ .PluginName }}/{{ .AccountID }}/{{ .Region }}/{{ .InstanceID }}";

#[derive(Debug, Deserialize)]
struct RawConfig {
    #[serde(default)]
    agent_path_template: Option<String>,
    #[serde(default)]
    aws_ca_certificate_paths: Option<Vec<String>>,
}

/// The parsed `plugin_data` of `NodeAttestor "aws_iid"`.
#[derive(Debug, Clone)]
pub struct AwsIidConfig {
    /// PEM files of the AWS certificates whose keys sign identity documents.
    pub aws_ca_certificate_paths: Vec<PathBuf>,
    /// `agent_path_template`.
    pub agent_path_template: PathTemplate,
}

impl AwsIidConfig {
    /// Reads and checks the plugin data.
    pub fn from_plugin(plugin: &PluginConfig) -> Result<Self, String> {
        let raw: RawConfig = plugin.decode_data().map_err(|e| e.to_string())?;
        let paths = raw.aws_ca_certificate_paths.unwrap_or_default();
        if paths.is_empty() {
            return Err("aws_iid: spire-rs does not embed the AWS public certificates yet: set aws_ca_certificate_paths to PEM files holding them".into());
        }
        let template = raw
            .agent_path_template
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| DEFAULT_AGENT_PATH_TEMPLATE.to_owned());
        let agent_path_template = PathTemplate::parse(&template)
            .map_err(|e| format!("aws_iid: failed to parse agent svid template: {e}"))?;
        Ok(AwsIidConfig {
            aws_ca_certificate_paths: paths.into_iter().map(PathBuf::from).collect(),
            agent_path_template,
        })
    }
}

/// The attestation payload, as SPIRE's `IIDAttestationData`.
#[derive(Debug, Deserialize)]
struct AttestationData {
    #[serde(default)]
    document: String,
    #[serde(default)]
    signature: String,
}

/// The identity document fields spire-rs uses.
#[derive(Debug, Deserialize)]
struct InstanceIdentityDocument {
    #[serde(rename = "accountId", default)]
    account_id: String,
    #[serde(rename = "region", default)]
    region: String,
    #[serde(rename = "instanceId", default)]
    instance_id: String,
    #[serde(rename = "imageId", default)]
    image_id: String,
    #[serde(rename = "availabilityZone", default)]
    availability_zone: String,
}

/// The aws_iid attestor.
#[derive(Debug)]
pub struct AwsIidAttestor {
    trust_domain: TrustDomain,
    /// PKCS#1 RSA public keys of the configured certificates.
    keys: Vec<Vec<u8>>,
    template: PathTemplate,
}

impl AwsIidAttestor {
    /// The attestor for `trust_domain`, loading the AWS certificates.
    pub fn new(trust_domain: TrustDomain, config: &AwsIidConfig) -> Result<Self, String> {
        let mut keys = Vec::new();
        for path in &config.aws_ca_certificate_paths {
            for der in load_pem_certificates(path)
                .map_err(|e| format!("aws_iid: failed to load the AWS CA public key: {e}"))?
            {
                let (_, cert) = X509Certificate::from_der(der.as_ref())
                    .map_err(|e| format!("aws_iid: failed to parse AWS certificate: {e}"))?;
                keys.push(
                    cert.tbs_certificate
                        .subject_pki
                        .subject_public_key
                        .data
                        .to_vec(),
                );
            }
        }
        Ok(AwsIidAttestor {
            trust_domain,
            keys,
            template: config.agent_path_template.clone(),
        })
    }
}

#[tonic::async_trait]
impl NodeAttestor for AwsIidAttestor {
    fn name(&self) -> &str {
        PLUGIN_NAME
    }

    async fn attest(
        &self,
        payload: &[u8],
        _challenger: &mut dyn Challenger,
    ) -> Result<AttestResult, Status> {
        let data: AttestationData = serde_json::from_slice(payload).map_err(|e| {
            Status::invalid_argument(format!("failed to unmarshal the attestation data: {e}"))
        })?;
        let doc: InstanceIdentityDocument = serde_json::from_str(&data.document)
            .map_err(|e| Status::invalid_argument(format!("failed to unmarshal the IID: {e}")))?;
        let signature = STANDARD.decode(data.signature.trim()).map_err(|e| {
            Status::invalid_argument(format!("failed to decode the IID signature: {e}"))
        })?;
        let verified = self.keys.iter().any(|key| {
            UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, key)
                .verify(data.document.as_bytes(), &signature)
                .is_ok()
        });
        if !verified {
            return Err(Status::invalid_argument(
                "failed to verify the cryptographic signature: crypto/rsa: verification error",
            ));
        }
        let mut values = BTreeMap::new();
        values.insert("PluginName".into(), Value::Str(PLUGIN_NAME.into()));
        values.insert(
            "TrustDomain".into(),
            Value::Str(self.trust_domain.name().into()),
        );
        values.insert("AccountID".into(), Value::Str(doc.account_id.clone()));
        values.insert("Region".into(), Value::Str(doc.region.clone()));
        values.insert("InstanceID".into(), Value::Str(doc.instance_id.clone()));
        let rendered = self
            .template
            .render(&values)
            .map_err(|e| Status::internal(format!("failed to create spiffe ID: {e}")))?;
        let agent_id = agent_id_from_path(&self.trust_domain, &rendered)?;
        let mut selectors = vec![
            format!("az:{}", doc.availability_zone),
            format!("image:id:{}", doc.image_id),
            format!("instance:id:{}", doc.instance_id),
            format!("region:{}", doc.region),
        ];
        selectors.sort();
        Ok(AttestResult {
            agent_id,
            selectors,
            can_reattest: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use rcgen::{CertificateParams, KeyPair};

    struct NoChallenge;

    #[tonic::async_trait]
    impl Challenger for NoChallenge {
        async fn challenge(&mut self, _challenge: Vec<u8>) -> Result<Vec<u8>, Status> {
            Err(Status::internal("no challenge expected"))
        }
    }

    /// A test certificate standing in for AWS's, and a signer with its key.
    fn aws_stand_in(dir: &tempfile::TempDir) -> (AwsIidAttestor, RsaKeyPair) {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa");
        let cert = CertificateParams::default()
            .self_signed(&key)
            .expect("cert");
        let path = dir.path().join("aws.pem");
        std::fs::write(&path, cert.pem()).expect("write");
        let config = AwsIidConfig {
            aws_ca_certificate_paths: vec![path],
            agent_path_template: PathTemplate::parse(DEFAULT_AGENT_PATH_TEMPLATE).expect("t"),
        };
        let attestor = AwsIidAttestor::new(TrustDomain::new("example.org").expect("td"), &config)
            .expect("attestor");
        let signer = RsaKeyPair::from_pkcs8(&key.serialize_der()).expect("signer");
        (attestor, signer)
    }

    fn payload(signer: &RsaKeyPair, document: &str) -> Vec<u8> {
        let mut sig = vec![0; signer.public_modulus_len()];
        signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                document.as_bytes(),
                &mut sig,
            )
            .expect("sign");
        serde_json::to_vec(&serde_json::json!({
            "document": document,
            "signature": STANDARD.encode(&sig),
        }))
        .expect("json")
    }

    const DOC: &str = r#"{"accountId":"123456789012","architecture":"x86_64","availabilityZone":"us-west-2a","imageId":"ami-5fb8c835","instanceId":"i-0123456789abcdef0","instanceType":"t2.micro","region":"us-west-2"}"#;

    #[tokio::test]
    async fn verifies_the_document_and_derives_id_and_selectors() {
        let dir = tempfile::tempdir().expect("dir");
        let (attestor, signer) = aws_stand_in(&dir);
        let result = attestor
            .attest(&payload(&signer, DOC), &mut NoChallenge)
            .await
            .expect("attest");
        assert_eq!(
            result.agent_id.to_string(),
            "spiffe://example.org/spire/agent/aws_iid/123456789012/us-west-2/i-0123456789abcdef0"
        );
        assert_eq!(
            result.selectors,
            vec![
                "az:us-west-2a",
                "image:id:ami-5fb8c835",
                "instance:id:i-0123456789abcdef0",
                "region:us-west-2"
            ]
        );
        assert!(!result.can_reattest);
    }

    #[tokio::test]
    async fn refuses_tampered_or_foreign_documents() {
        let dir = tempfile::tempdir().expect("dir");
        let (attestor, signer) = aws_stand_in(&dir);
        let other_dir = tempfile::tempdir().expect("dir");
        let (_, other_signer) = aws_stand_in(&other_dir);
        let mut tampered: serde_json::Value =
            serde_json::from_slice(&payload(&signer, DOC)).expect("json");
        tampered["document"] = DOC.replace("123456789012", "999999999999").into();
        for bad in [
            serde_json::to_vec(&tampered).expect("json"),
            payload(&other_signer, DOC),
            b"garbage".to_vec(),
            payload(&signer, "not a document"),
        ] {
            let err = attestor
                .attest(&bad, &mut NoChallenge)
                .await
                .expect_err("refused");
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
        }
    }
}
