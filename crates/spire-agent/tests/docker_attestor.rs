//! The `docker` and `systemd` workload attestors against real protocols and files: a
//! fake Docker Engine API (hyper HTTP/1.1 on a Unix socket) and `/proc`-shaped fixtures.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use spire_agent::workload::cgroup;
use spire_agent::workload::{
    DockerAttestor, DockerAttestorConfig, SystemdAttestor, UnixAttestor, UnixAttestorConfig,
    WorkloadAttestor, WorkloadAttestors,
};
use tokio::net::UnixListener;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const ID: &str = "7be1a8a4e3e7e0b1c6b4b0e3a4f1b9c8d2e6f0a1b3c5d7e9f1a2b4c6d8e0f2a4";
const IMAGE: &str = "envoyproxy/envoy:contrib-v1.29.1";
const DIGEST: &str = "sha256:1f5c8b2a9d3e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

/// The Docker Engine API's answer for `GET /v1.41/...`, in its real JSON shape.
fn answer(path: &str) -> (StatusCode, String) {
    let container = format!("/v1.41/containers/{ID}/json");
    let image = format!("/v1.41/images/{IMAGE}/json");
    if path == container {
        let body = serde_json::json!({
            "Id": ID,
            "Created": "2024-01-01T00:00:00.000000000Z",
            "Path": "/docker-entrypoint.sh",
            "Args": [],
            "State": {"Status": "running", "Running": true, "Pid": 4242},
            "Image": DIGEST,
            "Name": "/envoy",
            "HostConfig": {"NetworkMode": "default"},
            "Config": {
                "Hostname": "7be1a8a4e3e7",
                "Env": ["PATH=/usr/local/bin:/usr/bin", "ENVOY_UID=101"],
                "Cmd": ["envoy"],
                "Image": IMAGE,
                "Labels": {"com.example.tier": "edge", "app": "envoy"}
            }
        });
        (StatusCode::OK, body.to_string())
    } else if path == image {
        let body = serde_json::json!({"Id": DIGEST, "RepoTags": [IMAGE], "Config": {}});
        (StatusCode::OK, body.to_string())
    } else {
        let body = serde_json::json!({"message": format!("No such container: {path}")});
        (StatusCode::NOT_FOUND, body.to_string())
    }
}

/// Serves the fake Docker API on `socket` until the test ends.
fn serve_docker(socket: &Path) -> std::io::Result<()> {
    let listener = UnixListener::bind(socket)?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let (status, body) = answer(req.uri().path());
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

/// Writes `/proc/<pid>/<name>` under the fixture root.
fn write_proc(root: &Path, pid: i32, name: &str, text: &str) -> std::io::Result<()> {
    let dir = root.join(pid.to_string());
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), text)
}

const V1_PID: i32 = 100;
const V2_PID: i32 = 200;
const HOST_PID: i32 = 300;
const SLICE_PID: i32 = 400;

/// A fixture `/proc`: a cgroup v1 docker process, a cgroup v2 (systemd driver) one seen
/// through mountinfo, a host service, and a cgroup v2 docker scope in `/proc/<pid>/cgroup`.
fn proc_fixture(root: &Path) -> std::io::Result<()> {
    write_proc(
        root,
        V1_PID,
        "cgroup",
        &format!(
            "12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n1:name=systemd:/docker/{ID}\n"
        ),
    )?;
    write_proc(
        root,
        V2_PID,
        "mountinfo",
        &format!(
            "1205 1204 0:62 / / rw,relatime - overlay overlay rw,lowerdir=/l\n\
             1210 1205 0:30 /system.slice/docker-{ID}.scope /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n"
        ),
    )?;
    // Inside the container's cgroup namespace, /proc/<pid>/cgroup only says "0::/".
    write_proc(root, V2_PID, "cgroup", "0::/\n")?;
    write_proc(
        root,
        HOST_PID,
        "mountinfo",
        "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
    )?;
    write_proc(root, HOST_PID, "cgroup", "0::/system.slice/nginx.service\n")?;
    write_proc(
        root,
        SLICE_PID,
        "cgroup",
        &format!("0::/system.slice/docker-{ID}.scope\n"),
    )?;
    for pid in [V1_PID, V2_PID, HOST_PID, SLICE_PID] {
        write_proc(
            root,
            pid,
            "status",
            "Name:\tenvoy\nUid:\t101\t101\t101\t101\nGid:\t101\t101\t101\t101\nGroups:\t\n",
        )?;
    }
    Ok(())
}

fn expected_docker() -> Vec<String> {
    vec![
        "label:app:envoy".to_owned(),
        "label:com.example.tier:edge".to_owned(),
        "env:PATH=/usr/local/bin:/usr/bin".to_owned(),
        "env:ENVOY_UID=101".to_owned(),
        format!("image_id:{IMAGE}"),
        format!("image_config_digest:{DIGEST}"),
    ]
}

#[test]
fn container_id_from_cgroup_fixtures() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    for pid in [V1_PID, V2_PID, SLICE_PID] {
        assert_eq!(
            cgroup::container_id(dir.path(), pid)?.as_deref(),
            Some(ID),
            "pid {pid}"
        );
    }
    assert_eq!(cgroup::container_id(dir.path(), HOST_PID)?, None);
    // A vanished process has no container either.
    assert_eq!(cgroup::container_id(dir.path(), 999)?, None);
    // Entries naming two different containers are refused.
    let other = ID.replace('7', "6");
    write_proc(
        dir.path(),
        500,
        "cgroup",
        &format!("2:memory:/docker/{ID}\n1:name=systemd:/docker/{other}\n"),
    )?;
    assert!(cgroup::container_id(dir.path(), 500).is_err());
    Ok(())
}

#[tokio::test]
async fn docker_selectors_from_fake_engine() -> TestResult {
    let dir = tempfile::tempdir()?;
    let proc_root = dir.path().join("proc");
    proc_fixture(&proc_root)?;
    let socket = dir.path().join("docker.sock");
    serve_docker(&socket)?;

    let config = DockerAttestorConfig::new(
        Some(&format!("unix://{}", socket.display())),
        Some("1.41".to_owned()),
        Vec::new(),
    )?;
    let attestor = DockerAttestor::with_proc_root(config.clone(), &proc_root);
    for pid in [V1_PID, V2_PID] {
        assert_eq!(
            attestor.attest_values(pid).await?,
            expected_docker(),
            "pid {pid}"
        );
    }
    // Not in a container: no selectors, no error.
    assert!(attestor.attest_values(HOST_PID).await?.is_empty());

    // An unknown container is an error (the daemon answers 404).
    write_proc(
        &proc_root,
        600,
        "cgroup",
        &format!("0::/docker/{}\n", ID.replace('a', "b")),
    )?;
    assert!(attestor.attest_values(600).await.is_err());
    // So is an unreachable daemon.
    let missing = DockerAttestorConfig::new(
        Some(&format!(
            "unix://{}",
            dir.path().join("none.sock").display()
        )),
        None,
        Vec::new(),
    )?;
    let unreachable = DockerAttestor::with_proc_root(missing, &proc_root);
    assert!(unreachable.attest(V1_PID).await.is_err());
    Ok(())
}

#[tokio::test]
async fn systemd_unit_from_fixture() -> TestResult {
    let dir = tempfile::tempdir()?;
    proc_fixture(dir.path())?;
    let attestor = SystemdAttestor::with_proc_root(dir.path());
    assert_eq!(attestor.attest(HOST_PID).await?, vec!["id:nginx.service"]);
    assert_eq!(
        attestor.attest(SLICE_PID).await?,
        vec![format!("id:docker-{ID}.scope")]
    );
    // cgroup v1 without a name=systemd hierarchy is not attestable.
    write_proc(dir.path(), 700, "cgroup", "4:memory:/x\n")?;
    assert!(attestor.attest(700).await.is_err());
    Ok(())
}

#[tokio::test]
async fn attestors_merge_unix_and_docker() -> TestResult {
    let dir = tempfile::tempdir()?;
    let proc_root = dir.path().join("proc");
    proc_fixture(&proc_root)?;
    let socket = dir.path().join("docker.sock");
    serve_docker(&socket)?;
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    std::fs::write(&passwd, "envoy:x:101:101::/home/envoy:/bin/sh\n")?;
    std::fs::write(&group, "envoy:x:101:\n")?;

    let docker = DockerAttestor::with_proc_root(
        DockerAttestorConfig::new(
            Some(&format!("unix://{}", socket.display())),
            Some("1.41".to_owned()),
            Vec::new(),
        )?,
        &proc_root,
    );
    let unix = UnixAttestor::with_paths(UnixAttestorConfig::default(), &proc_root, passwd, group);
    let attestors = WorkloadAttestors::new(vec![Arc::new(unix), Arc::new(docker)]);

    let selectors: Vec<String> = attestors
        .attest(V2_PID)
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut expected = vec![
        "unix:uid:101".to_owned(),
        "unix:user:envoy".to_owned(),
        "unix:gid:101".to_owned(),
        "unix:group:envoy".to_owned(),
    ];
    expected.extend(expected_docker().into_iter().map(|v| format!("docker:{v}")));
    assert_eq!(selectors, expected);

    // A host process: docker contributes nothing, unix still attests.
    let host = attestors.attest(HOST_PID).await?;
    assert!(host.iter().all(|s| s.r#type == "unix") && !host.is_empty());
    Ok(())
}
