//! The parts of the kubelet's `/pods` answer (a Kubernetes `v1.PodList`) the attestor
//! reads, and the selector values SPIRE derives from them.
//!
//! SPIRE builds some of these lists from Go maps, so their order is random there; here
//! images are sorted, and labels sorted by key, so the output is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

/// `v1.PodList`.
#[derive(Debug, Default, Deserialize)]
pub struct PodList {
    /// The pods.
    #[serde(default)]
    pub items: Option<Vec<Pod>>,
}

/// `v1.Pod`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Pod {
    /// `metadata`.
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: PodSpec,
    /// `status`.
    pub status: PodStatus,
}

/// `v1.ObjectMeta`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `name`.
    pub name: String,
    /// `namespace`.
    pub namespace: String,
    /// `uid`.
    pub uid: String,
    /// `labels`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `ownerReferences`.
    pub owner_references: Option<Vec<OwnerReference>>,
}

/// `v1.OwnerReference`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct OwnerReference {
    /// `kind`, e.g. `ReplicaSet`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `uid`.
    pub uid: String,
}

/// `v1.PodSpec`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// `serviceAccountName`.
    pub service_account_name: String,
    /// `nodeName`.
    pub node_name: String,
}

/// `v1.PodStatus`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodStatus {
    /// `containerStatuses`.
    pub container_statuses: Option<Vec<ContainerStatus>>,
    /// `initContainerStatuses`.
    pub init_container_statuses: Option<Vec<ContainerStatus>>,
}

/// `v1.ContainerStatus`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerStatus {
    /// `name`.
    pub name: String,
    /// `image`, e.g. `docker.io/envoyproxy/envoy:v1.16.0`.
    pub image: String,
    /// `imageID`, e.g. `docker.io/envoyproxy/envoy@sha256:…`.
    #[serde(rename = "imageID")]
    pub image_id: String,
    /// `containerID`: `<runtime>://<id>`, empty while the container is not created.
    #[serde(rename = "containerID")]
    pub container_id: String,
}

/// Whether a pod holds a container.
#[derive(Debug)]
pub enum ContainerLookup<'a> {
    /// The container's status.
    Found(&'a ContainerStatus),
    /// Not in this pod (or not started yet).
    NotFound,
}

/// The host part of a `<runtime>://<id>` container ID (Go's `url.Parse(...).Host`);
/// `None` when it is not a URL with an authority.
fn runtime_container_id(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty() {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    // Drop any user info, as Go's URL parser does.
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
    )
}

/// Every image identifier of `statuses`: both `image` and `imageID` of each, so that
/// entries can match on a tag or on a digest (SPIRE issue #2026).
fn image_identifiers<'a>(
    statuses: impl IntoIterator<Item = &'a ContainerStatus>,
) -> BTreeSet<&'a str> {
    statuses
        .into_iter()
        .flat_map(|s| [s.image_id.as_str(), s.image.as_str()])
        .collect()
}

impl Pod {
    fn containers(&self) -> &[ContainerStatus] {
        self.status
            .container_statuses
            .as_deref()
            .unwrap_or_default()
    }

    fn init_containers(&self) -> &[ContainerStatus] {
        self.status
            .init_container_statuses
            .as_deref()
            .unwrap_or_default()
    }

    /// Finds `container_id` among the container statuses, then the init container
    /// statuses. Statuses without a container ID (not created yet) are skipped.
    pub fn find_container(&self, container_id: &str) -> ContainerLookup<'_> {
        self.containers()
            .iter()
            .chain(self.init_containers())
            .filter(|status| !status.container_id.is_empty())
            .find(|status| match runtime_container_id(&status.container_id) {
                Some(id) => id == container_id,
                None => {
                    tracing::error!(container_id = status.container_id, "Malformed container id");
                    false
                }
            })
            .map_or(ContainerLookup::NotFound, ContainerLookup::Found)
    }

    /// The pod selector values, in SPIRE's order.
    pub fn selector_values(&self) -> Vec<String> {
        let mut values = vec![
            format!("sa:{}", self.spec.service_account_name),
            format!("ns:{}", self.metadata.namespace),
            format!("node-name:{}", self.spec.node_name),
            format!("pod-uid:{}", self.metadata.uid),
            format!("pod-name:{}", self.metadata.name),
            format!("pod-image-count:{}", self.containers().len()),
            format!("pod-init-image-count:{}", self.init_containers().len()),
        ];
        values.extend(
            image_identifiers(self.containers())
                .into_iter()
                .map(|image| format!("pod-image:{image}")),
        );
        values.extend(
            image_identifiers(self.init_containers())
                .into_iter()
                .map(|image| format!("pod-init-image:{image}")),
        );
        for (key, value) in self.metadata.labels.iter().flatten() {
            values.push(format!("pod-label:{key}:{value}"));
        }
        for owner in self.metadata.owner_references.iter().flatten() {
            values.push(format!("pod-owner:{}:{}", owner.kind, owner.name));
            values.push(format!("pod-owner-uid:{}:{}", owner.kind, owner.uid));
        }
        values
    }
}

impl ContainerStatus {
    /// The selector values of the workload's own container.
    pub fn selector_values(&self) -> Vec<String> {
        let mut values = vec![format!("container-name:{}", self.name)];
        values.extend(
            image_identifiers([self])
                .into_iter()
                .map(|image| format!("container-image:{image}")),
        );
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_container_ids() {
        assert_eq!(runtime_container_id("containerd://abc"), Some("abc"));
        assert_eq!(runtime_container_id("cri-o://abc/x"), Some("abc"));
        assert_eq!(runtime_container_id("abc"), None);
        assert_eq!(runtime_container_id("://abc"), None);
    }

    #[test]
    fn pod_json_and_selectors() -> Result<(), serde_json::Error> {
        let list: PodList = serde_json::from_str(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{
                "metadata":{"name":"web-1","namespace":"prod","uid":"u-1",
                  "labels":{"b":"2","a":"1"},
                  "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web","uid":"rs-1","controller":true}]},
                "spec":{"serviceAccountName":"web-sa","nodeName":"node-1","containers":[]},
                "status":{"phase":"Running",
                  "initContainerStatuses":[{"name":"init","image":"busybox:1","imageID":"busybox@sha256:11","containerID":"containerd://i1","ready":true,"restartCount":0}],
                  "containerStatuses":[
                    {"name":"app","image":"app:1","imageID":"app@sha256:aa","containerID":"containerd://c1","ready":true},
                    {"name":"pending","image":"side:1","imageID":"","state":{"waiting":{}}}]}
            }]}"#,
        )?;
        let pod = &list.items.unwrap_or_default()[0];
        assert!(matches!(pod.find_container("c1"), ContainerLookup::Found(s) if s.name == "app"));
        assert!(matches!(pod.find_container("i1"), ContainerLookup::Found(s) if s.name == "init"));
        assert!(matches!(
            pod.find_container("c2"),
            ContainerLookup::NotFound
        ));
        assert_eq!(
            pod.selector_values(),
            vec![
                "sa:web-sa",
                "ns:prod",
                "node-name:node-1",
                "pod-uid:u-1",
                "pod-name:web-1",
                "pod-image-count:2",
                "pod-init-image-count:1",
                "pod-image:",
                "pod-image:app:1",
                "pod-image:app@sha256:aa",
                "pod-image:side:1",
                "pod-init-image:busybox:1",
                "pod-init-image:busybox@sha256:11",
                "pod-label:a:1",
                "pod-label:b:2",
                "pod-owner:ReplicaSet:web",
                "pod-owner-uid:ReplicaSet:rs-1",
            ]
        );
        Ok(())
    }
}
