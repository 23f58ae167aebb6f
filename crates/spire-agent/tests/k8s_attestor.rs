//! The `k8s` workload attestor against a fake kubelet speaking its real protocol: `GET
//! /pods` answered with a `v1.PodList` over plain HTTP (read-only port) or HTTPS
//! (secure port, bearer token or client certificate), and `/proc`-shaped fixtures.

mod common;

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Agent, Ca, TestResult, add_entry, cache_for, entry};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use spire_agent::workload::k8s::KubeletPort;
use spire_agent::workload::{K8sAttestor, K8sAttestorConfig, Selector, WorkloadAttestors};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CONTAINER: &str = "9bca8d63d5fa610783847915bcff0ecac1273e5b4bed3f6fa1b07350e0135961";
const OTHER_CONTAINER: &str = "aff34703e5e1f89443e9a1bffcc80f43f74d4808a2dd22c8f88c08547b323934";
const POD_UID: &str = "2c48913c-b29f-11e7-9350-020968147796";
const TOKEN: &str = "kubelet-bearer-token";

/// A pod as the kubelet lists it; `listed` says whether the workload container
/// already has its container ID.
fn pod(uid: &str, name: &str, container_id: &str, listed: bool) -> serde_json::Value {
    let app = if listed {
        serde_json::json!({
            "name": "app", "image": "registry.example/app:1.2",
            "imageID": "registry.example/app@sha256:aaaa",
            "containerID": format!("containerd://{container_id}"),
            "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
        })
    } else {
        serde_json::json!({
            "name": "app", "image": "registry.example/app:1.2", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}
        })
    };
    serde_json::json!({
        "metadata": {
            "name": name, "namespace": "prod", "uid": uid,
            "labels": {"app": "web", "tier": "front"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "rs-uid-1", "controller": true}]
        },
        "spec": {"serviceAccountName": "web-sa", "nodeName": "node-1", "containers": [{"name": "app", "image": "registry.example/app:1.2"}]},
        "status": {
            "phase": "Running",
            "initContainerStatuses": [{
                "name": "init", "image": "busybox:1.36", "imageID": "docker.io/library/busybox@sha256:bbbb",
                "containerID": "containerd://1111111111111111111111111111111111111111111111111111111111111111",
                "ready": true, "restartCount": 0
            }],
            "containerStatuses": [app]
        }
    })
}

fn pod_list(items: Vec<serde_json::Value>) -> String {
    serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
        .to_string()
}

fn expected_pod_selectors() -> Vec<String> {
    [
        "sa:web-sa",
        "ns:prod",
        "node-name:node-1",
        &format!("pod-uid:{POD_UID}"),
        "pod-name:web-7d9f-x2x",
        "pod-image-count:1",
        "pod-init-image-count:1",
        "pod-image:registry.example/app:1.2",
        "pod-image:registry.example/app@sha256:aaaa",
        "pod-init-image:busybox:1.36",
        "pod-init-image:docker.io/library/busybox@sha256:bbbb",
        "pod-label:app:web",
        "pod-label:tier:front",
        "pod-owner:ReplicaSet:web-7d9f",
        "pod-owner-uid:ReplicaSet:rs-uid-1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn expected_selectors() -> Vec<String> {
    let mut values = expected_pod_selectors();
    values.extend([
        "container-name:app".to_owned(),
        "container-image:registry.example/app:1.2".to_owned(),
        "container-image:registry.example/app@sha256:aaaa".to_owned(),
    ]);
    values
}

/// How the fake kubelet authenticates its callers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Token,
}

/// A fake kubelet: answers `GET /pods` with `pods(request number)` (numbered from 1).
struct Kubelet {
    port: u16,
    requests: Arc<AtomicUsize>,
}

type PodsFn = Arc<dyn Fn(usize) -> String + Send + Sync>;

async fn serve_kubelet(
    tls: Option<Arc<rustls::ServerConfig>>,
    auth: Auth,
    pods: PodsFn,
) -> Result<Kubelet, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let pods = pods.clone();
            let counter = counter.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let pods = pods.clone();
                    let counter = counter.clone();
                    async move {
                        let authorized =
                            auth == Auth::None
                                || req.headers().get(hyper::header::AUTHORIZATION).is_some_and(
                                    |v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes(),
                                );
                        let (status, body) = if !authorized {
                            (StatusCode::UNAUTHORIZED, "Unauthorized".to_owned())
                        } else if req.uri().path() != "/pods" {
                            (StatusCode::NOT_FOUND, "404 page not found".to_owned())
                        } else {
                            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                            (StatusCode::OK, pods(n))
                        };
                        let mut response = Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = status;
                        Ok::<_, Infallible>(response)
                    }
                });
                match tls {
                    None => {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(tls) => {
                        if let Ok(stream) = TlsAcceptor::from(tls).accept(stream).await {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                }
            });
        }
    });
    Ok(Kubelet { port, requests })
}

/// A cluster CA with a kubelet serving certificate (for `names`) and a client
/// certificate, written as PEM files under `dir`.
struct Pki {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Result<Self, BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ok(Pki {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    fn ca_pem(&self) -> String {
        self.issuer.pem()
    }

    fn leaf(&self, sans: Vec<SanType>) -> Result<(CertificateDer<'static>, KeyPair), BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = sans;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.der().clone(), key))
    }

    /// The kubelet's TLS configuration, optionally requiring client certificates from
    /// this CA.
    fn kubelet_tls(
        &self,
        sans: Vec<SanType>,
        require_client_cert: bool,
    ) -> Result<Arc<rustls::ServerConfig>, BoxError> {
        let (cert, key) = self.leaf(sans)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let builder = rustls::ServerConfig::builder_with_provider(spire_common::tls::provider())
            .with_safe_default_protocol_versions()?;
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.issuer.der().clone())?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                spire_common::tls::provider(),
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(vec![cert], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Writes a client certificate and key as PEM files.
    fn write_client_cert(&self, dir: &Path) -> Result<(), BoxError> {
        let (cert, key) = self.leaf(vec![SanType::DnsName("spire-agent".try_into()?)])?;
        std::fs::write(
            dir.join("client.pem"),
            pem::encode(&pem::Pem::new("CERTIFICATE", cert.to_vec())),
        )?;
        std::fs::write(dir.join("client.key"), key.serialize_pem())?;
        Ok(())
    }
}

fn write_proc(root: &Path, pid: i32, name: &str, text: &str) -> std::io::Result<()> {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), text)
}

/// PIDs of the fixture: a pod process (cgroup v1, cgroupfs driver), a pod process
/// seen through mountinfo (cgroup v2, systemd driver), a host process, and a process
/// whose cgroup names a container but no pod.
const POD_PID: i32 = 100;
const SYSTEMD_PID: i32 = 200;
const HOST_PID: i32 = 300;
const NO_POD_PID: i32 = 400;

fn proc_fixture(root: &Path) -> std::io::Result<()> {
    write_proc(
        root,
        POD_PID,
        "cgroup",
        &format!(
            "12:memory:/kubepods/burstable/pod{POD_UID}/{CONTAINER}\n\
             1:name=systemd:/kubepods/burstable/pod{POD_UID}/{CONTAINER}\n"
        ),
    )?;
    let systemd_uid = POD_UID.replace('-', "_");
    write_proc(
        root,
        SYSTEMD_PID,
        "mountinfo",
        &format!(
            "1205 1204 0:62 / / rw,relatime - overlay overlay rw\n\
             1210 1205 0:30 /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{CONTAINER}.scope /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
        ),
    )?;
    write_proc(root, SYSTEMD_PID, "cgroup", "0::/\n")?;
    write_proc(root, HOST_PID, "cgroup", "0::/system.slice/sshd.service\n")?;
    write_proc(
        root,
        NO_POD_PID,
        "cgroup",
        &format!("0::/../crio-{CONTAINER}.scope\n"),
    )?;
    Ok(())
}

fn read_only(port: u16) -> K8sAttestorConfig {
    K8sAttestorConfig {
        port: KubeletPort::ReadOnly(port),
        poll_retry_interval: Duration::from_millis(50),
        ..K8sAttestorConfig::default()
    }
}

fn fixed_pods(body: String) -> PodsFn {
    Arc::new(move |_| body.clone())
}

fn the_pod() -> String {
    pod_list(vec![
        pod(
            "11111111-2222-3333-4444-555555555555",
            "other",
            OTHER_CONTAINER,
            true,
        ),
        pod(POD_UID, "web-7d9f-x2x", CONTAINER, true),
    ])
}

#[tokio::test]
async fn read_only_port_gives_spire_selectors() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    let kubelet = serve_kubelet(None, Auth::None, fixed_pods(the_pod())).await?;
    let attestor = K8sAttestor::with_proc_root(read_only(kubelet.port), dir.path())?;
    assert_eq!(attestor.attest_values(POD_PID).await?, expected_selectors());
    assert_eq!(
        attestor.attest_values(SYSTEMD_PID).await?,
        expected_selectors()
    );
    // Not in a container: no selectors, no error, and the kubelet is not asked.
    let before = kubelet.requests.load(Ordering::SeqCst);
    assert!(attestor.attest_values(HOST_PID).await?.is_empty());
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), before);
    // Without a pod UID the container is searched in every pod.
    assert_eq!(
        attestor.attest_values(NO_POD_PID).await?,
        expected_selectors()
    );

    // disable_container_selectors: only pod selectors.
    let attestor = K8sAttestor::with_proc_root(
        K8sAttestorConfig {
            disable_container_selectors: true,
            ..read_only(kubelet.port)
        },
        dir.path(),
    )?;
    assert_eq!(
        attestor.attest_values(POD_PID).await?,
        expected_pod_selectors()
    );
    Ok(())
}

#[tokio::test]
async fn polls_until_the_container_is_listed_then_gives_up() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    // The container gets its ID in the kubelet's third answer.
    let appearing: PodsFn =
        Arc::new(|n| pod_list(vec![pod(POD_UID, "web-7d9f-x2x", CONTAINER, n >= 3)]));
    let kubelet = serve_kubelet(None, Auth::None, appearing).await?;
    let attestor = K8sAttestor::with_proc_root(
        K8sAttestorConfig {
            max_poll_attempts: 10,
            ..read_only(kubelet.port)
        },
        dir.path(),
    )?;
    assert_eq!(attestor.attest_values(POD_PID).await?, expected_selectors());
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 3);

    // Never listed: exactly max_poll_attempts requests, then SPIRE's error.
    let never: PodsFn =
        Arc::new(|_| pod_list(vec![pod(POD_UID, "web-7d9f-x2x", CONTAINER, false)]));
    let kubelet = serve_kubelet(None, Auth::None, never).await?;
    let attestor = K8sAttestor::with_proc_root(
        K8sAttestorConfig {
            max_poll_attempts: 3,
            ..read_only(kubelet.port)
        },
        dir.path(),
    )?;
    let error = attestor
        .attest_values(POD_PID)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("no selectors found after max poll attempts")
    );
    assert_eq!(kubelet.requests.load(Ordering::SeqCst), 3);

    // A known pod is enough with disable_container_selectors, even before its
    // container is listed. (A waiting container has no imageID yet; SPIRE still emits
    // its empty `pod-image:` value.)
    let attestor = K8sAttestor::with_proc_root(
        K8sAttestorConfig {
            max_poll_attempts: 3,
            disable_container_selectors: true,
            ..read_only(kubelet.port)
        },
        dir.path(),
    )?;
    let mut expected = expected_pod_selectors();
    expected.retain(|s| s != "pod-image:registry.example/app@sha256:aaaa");
    expected.insert(7, "pod-image:".to_owned());
    assert_eq!(attestor.attest_values(POD_PID).await?, expected);
    Ok(())
}

#[tokio::test]
async fn a_container_in_two_pods_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    let twice = pod_list(vec![
        pod(POD_UID, "a", CONTAINER, true),
        pod("11111111-2222-3333-4444-555555555555", "b", CONTAINER, true),
    ]);
    let kubelet = serve_kubelet(None, Auth::None, fixed_pods(twice)).await?;
    let attestor = K8sAttestor::with_proc_root(read_only(kubelet.port), dir.path())?;
    // With the pod UID known the other pod is not considered.
    assert!(attestor.attest_values(POD_PID).await.is_ok());
    let error = attestor
        .attest_values(NO_POD_PID)
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("two pods found with same container Id")
    );
    Ok(())
}

#[tokio::test]
async fn kubelet_errors_are_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    let kubelet = serve_kubelet(None, Auth::Token, fixed_pods(the_pod())).await?;
    let attestor = K8sAttestor::with_proc_root(read_only(kubelet.port), dir.path())?;
    let error = attestor
        .attest_values(POD_PID)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("unexpected status code on pods response: 401")),
        "{error:?}"
    );
    let garbage = serve_kubelet(None, Auth::None, fixed_pods("<html>".to_owned())).await?;
    let attestor = K8sAttestor::with_proc_root(read_only(garbage.port), dir.path())?;
    let error = attestor
        .attest_values(POD_PID)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("unable to parse kubelet response")),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn secure_port_with_token_verifies_the_kubelet() -> TestResult {
    let dir = tempfile::tempdir()?;
    let proc_root = dir.path().join("proc");
    proc_fixture(&proc_root)?;
    let pki = Pki::new()?;
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, pki.ca_pem())?;
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, format!("{TOKEN}\n"))?;
    let tls = pki.kubelet_tls(vec![SanType::DnsName("localhost".try_into()?)], false)?;
    let kubelet = serve_kubelet(Some(tls), Auth::Token, fixed_pods(the_pod())).await?;

    let secure = K8sAttestorConfig {
        port: KubeletPort::Secure(kubelet.port),
        kubelet_ca_path: ca_path.clone(),
        token_path: token_path.clone(),
        node_name: "localhost".to_owned(),
        ..read_only(0)
    };
    let attestor = K8sAttestor::with_proc_root(secure.clone(), &proc_root)?;
    assert_eq!(attestor.attest_values(POD_PID).await?, expected_selectors());

    // A kubelet certificate from another CA is refused...
    let other_ca = dir.path().join("other-ca.crt");
    std::fs::write(&other_ca, Pki::new()?.ca_pem())?;
    let untrusted = K8sAttestorConfig {
        kubelet_ca_path: other_ca.clone(),
        ..secure.clone()
    };
    let attestor = K8sAttestor::with_proc_root(untrusted.clone(), &proc_root)?;
    assert!(attestor.attest_values(POD_PID).await.is_err());
    // ... unless verification is skipped.
    let skipping = K8sAttestorConfig {
        skip_kubelet_verification: true,
        ..untrusted
    };
    let attestor = K8sAttestor::with_proc_root(skipping, &proc_root)?;
    assert_eq!(attestor.attest_values(POD_PID).await?, expected_selectors());

    // A certificate that does not name the node is refused when a node name is set.
    let wrong_name = K8sAttestorConfig {
        node_name: "127.0.0.1".to_owned(),
        ..secure.clone()
    };
    let attestor = K8sAttestor::with_proc_root(wrong_name, &proc_root)?;
    assert!(attestor.attest_values(POD_PID).await.is_err());

    // Anonymous requests are refused by this kubelet.
    let anonymous = K8sAttestorConfig {
        use_anonymous_authentication: true,
        ..secure.clone()
    };
    let attestor = K8sAttestor::with_proc_root(anonymous, &proc_root)?;
    let error = attestor
        .attest_values(POD_PID)
        .await
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("401")));

    // Missing credentials or CA fail at configuration time, naming the file.
    let no_token = K8sAttestorConfig {
        token_path: dir.path().join("missing-token"),
        ..secure.clone()
    };
    let error = K8sAttestor::with_proc_root(no_token, &proc_root)
        .err()
        .map(|e| e.to_string());
    assert!(
        error.is_some_and(|e| e.contains("unable to load token") && e.contains("missing-token"))
    );
    let no_ca = K8sAttestorConfig {
        kubelet_ca_path: dir.path().join("missing-ca"),
        ..secure
    };
    let error = K8sAttestor::with_proc_root(no_ca, &proc_root)
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("unable to load kubelet CA")));
    Ok(())
}

#[tokio::test]
async fn secure_port_with_client_certificate_on_localhost() -> TestResult {
    let dir = tempfile::tempdir()?;
    let proc_root = dir.path().join("proc");
    proc_fixture(&proc_root)?;
    let pki = Pki::new()?;
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, pki.ca_pem())?;
    pki.write_client_cert(dir.path())?;
    // The kubelet's certificate names the node, not 127.0.0.1: without a node name
    // only its chain is verified.
    let tls = pki.kubelet_tls(
        vec![SanType::DnsName("node-1.cluster.internal".try_into()?)],
        true,
    )?;
    let kubelet = serve_kubelet(Some(tls), Auth::None, fixed_pods(the_pod())).await?;

    let config = K8sAttestorConfig {
        port: KubeletPort::Secure(kubelet.port),
        kubelet_ca_path: ca_path,
        token_path: dir.path().join("no-token-needed"),
        certificate_path: Some(dir.path().join("client.pem")),
        private_key_path: Some(dir.path().join("client.key")),
        ..read_only(0)
    };
    let attestor = K8sAttestor::with_proc_root(config.clone(), &proc_root)?;
    assert_eq!(attestor.attest_values(POD_PID).await?, expected_selectors());

    // Without the client certificate the kubelet refuses the handshake.
    let anonymous = K8sAttestorConfig {
        certificate_path: None,
        private_key_path: None,
        use_anonymous_authentication: true,
        ..config.clone()
    };
    let attestor = K8sAttestor::with_proc_root(anonymous, &proc_root)?;
    assert!(attestor.attest_values(POD_PID).await.is_err());

    // A certificate without its key is a configuration error.
    let half = K8sAttestorConfig {
        private_key_path: None,
        ..config
    };
    let error = K8sAttestor::with_proc_root(half, &proc_root)
        .err()
        .map(|e| e.to_string());
    assert!(error.is_some_and(|e| e.contains("the private key path is required")));
    Ok(())
}

#[tokio::test]
async fn workload_api_serves_the_pod_its_identity() -> TestResult {
    let dir = tempfile::tempdir()?;
    // This test process plays the pod's workload: its /proc entry in the fixture.
    let me = i32::try_from(std::process::id())?;
    write_proc(
        dir.path(),
        me,
        "cgroup",
        &format!("0::/kubepods/besteffort/pod{POD_UID}/{CONTAINER}\n"),
    )?;
    let kubelet = serve_kubelet(None, Auth::None, fixed_pods(the_pod())).await?;
    let attestor = K8sAttestor::with_proc_root(read_only(kubelet.port), dir.path())?;

    let ca = Ca::new("example.org")?;
    let cache = cache_for(&ca)?;
    let k8s = |value: &str| Selector {
        r#type: "k8s".to_owned(),
        value: value.to_owned(),
    };
    add_entry(
        &cache,
        entry(
            &ca,
            "web",
            "/ns/prod/sa/web-sa",
            vec![k8s("ns:prod"), k8s("sa:web-sa"), k8s("container-name:app")],
        )?,
        Some(ca.svid("/ns/prod/sa/web-sa")?),
    )?;
    add_entry(
        &cache,
        entry(
            &ca,
            "other",
            "/ns/prod/other",
            vec![k8s("ns:prod"), k8s("container-name:sidecar")],
        )?,
        Some(ca.svid("/ns/prod/other")?),
    )?;
    let agent = Agent::start_with(
        cache,
        WorkloadAttestors::new(vec![Arc::new(attestor)]),
        |d| d.join("api.sock"),
    )
    .await?;
    let client = agent.spiffe_client().await?;
    let context = client.fetch_x509_context().await?;
    let ids: Vec<String> = context
        .svids()
        .iter()
        .map(|svid| svid.spiffe_id().to_string())
        .collect();
    assert_eq!(ids, vec!["spiffe://example.org/ns/prod/sa/web-sa"]);
    agent.shutdown().await
}
