//! ContainerCluster (kubernetes mode) → Cluster API Cluster; an existing cluster or engine is
//! health-checked and its nodes reported as ContainerNodes.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::shared::{applied_of, columns, element, linked, metadata, phase_column, text, volumes, without_condition};
use super::{ContainerNode, Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::kinds::container_node::ContainerNodePhase;
use crate::kinds::container_node::{ContainerNodeSpec, ContainerNodeStatus};
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::clusters::Credentials;
use crate::provision::probe::{ClusterReport, ProbeTarget};
use crate::provision::third_party::{
    CapiCluster, CapiClusterSpec, ClassRef, ControlPlaneTopology, MachineDeploymentTopology, Topology, WorkersTopology,
};
use crate::provision::types::CAPI_CLUSTER;
use crate::provision::{Anchor, DeletionPolicy, Destination, Placement, ProvisionError, Result};

/// A container cluster on a `container_cluster` element (tables `container_clusters`,
/// `volume_container_clusters`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "ContainerCluster",
    namespaced,
    category = "windflow",
    shortname = "wfcc",
    status = "ContainerClusterStatus",
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.clusterMode"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Nodes", type_ = "integer", json_path = ".status.nodeCount"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a cluster name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct ContainerClusterSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `container_cluster`) the cluster runs on. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Orchestrator (seed `cluster_mode_check`). Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterMode is immutable"))]
    pub cluster_mode: ClusterMode,
    /// Orchestrator version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub version: Option<String>,
    /// High availability.
    #[serde(default)]
    pub ha_enabled: bool,
    /// How to reach the cluster (free-form).
    #[serde(default)]
    pub endpoint: FreeForm,
    /// Cluster configuration (free-form).
    #[serde(default)]
    pub cluster_config: FreeForm,
    /// Names of Volumes attached to the cluster.
    #[serde(default)]
    pub volumes: Vec<String>,
}

/// Seed `cluster_mode_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterMode {
    #[default]
    Docker,
    Swarm,
    Kubernetes,
}

/// Status of a ContainerCluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerClusterStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `container_clusters.status`: initializing, healthy, degraded, unhealthy, maintenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ContainerClusterPhase>,
    /// Nodes the cluster reports (an existing cluster), or machines Cluster API runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_count: Option<i32>,
    /// The API server of a Cluster API cluster, once Cluster API has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_endpoint: Option<String>,
}

kind_status!(ContainerClusterStatus);

seed_values! {
    /// The values of `ContainerClusterStatus.phase`: the seed's check on the column it mirrors.
    ContainerClusterPhase { Initializing, Healthy, Degraded, Unhealthy, Maintenance }
}

pub static VOLUME_CONTAINER_CLUSTERS: JoinTable =
    JoinTable { table: "volume_container_clusters", owner: "cluster_id", key: &["volume_id"], values: &[] };

/// A `container_clusters` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct ContainerClusterRow<'a> {
    name: String,
    element_id: Uuid,
    cluster_mode: &'a ClusterMode,
    version: Option<&'a str>,
    ha_enabled: bool,
    endpoint: &'a FreeForm,
    cluster_config: &'a FreeForm,
}

child_set! {
    /// What a ContainerCluster provisions: a Cluster API Cluster, or the nodes an existing
    /// cluster or engine reports.
    ContainerClusterChild { CapiCluster, ContainerNode }
}

impl Kind for ContainerCluster {
    const ID: KindId = KindId::ContainerCluster;
    const TABLE: &'static str = "container_clusters";
    type Children = ContainerClusterChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "initializing"),
        StatusColumn { field: "nodeCount", column: "node_count", default: Some("0") },
    ];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(element(&self.spec.element_ref)).chain(volumes(&self.spec.volumes).map(|(r, _)| r)).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&ContainerClusterRow {
                name: self.name_any(),
                element_id: resolved.element_of_type(&element(&spec.element_ref), "container_cluster")?,
                cluster_mode: &spec.cluster_mode,
                version: spec.version.as_deref(),
                ha_enabled: spec.ha_enabled,
                endpoint: &spec.endpoint,
                cluster_config: &spec.cluster_config,
            })?,
            joins: vec![linked(&VOLUME_CONTAINER_CLUSTERS, volumes(&spec.volumes), resolved)?],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    /// kubernetes mode: a Cluster API Cluster from `clusterConfig.class` (a ClusterClass), or,
    /// for an existing cluster (`clusterConfig.kubeconfigSecret`), the nodes it reports. Docker
    /// and swarm engines exist already: the nodes they report.
    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<ContainerClusterChild>> {
        if let Some(report) = inputs.report {
            return Ok(self.nodes(report, inputs).into_iter().map(Into::into).collect());
        }
        let config = &self.spec.cluster_config;
        if self.spec.cluster_mode != ClusterMode::Kubernetes || text(config, "kubeconfigSecret").is_some() {
            return Ok(vec![]);
        }
        let class = text(config, "class").ok_or_else(|| {
            ProvisionError::invalid(
                "spec.clusterConfig.class",
                "a kubernetes cluster names its Cluster API ClusterClass (or an existing cluster's kubeconfigSecret)",
            )
        })?;
        let version = self.spec.version.as_deref().ok_or_else(|| {
            ProvisionError::invalid("spec.version", "a Cluster API cluster needs its Kubernetes version")
        })?;
        let workers = config.0.get("workers").and_then(Value::as_i64).unwrap_or(1);
        let worker_class = text(config, "workerClass").unwrap_or("default-worker");
        // One ClusterClass serves every environment: it lives where the cluster or the chart
        // says, else in the Cluster's own namespace (Cluster API's default).
        let class_namespace = text(config, "classNamespace").or(inputs.config.cluster_class_namespace.as_deref());
        let topology = Topology {
            class_ref: ClassRef { name: class.to_owned(), namespace: class_namespace.map(str::to_owned) },
            version: version.to_owned(),
            control_plane: ControlPlaneTopology { replicas: if self.spec.ha_enabled { 3 } else { 1 } },
            workers: WorkersTopology {
                machine_deployments: vec![MachineDeploymentTopology {
                    class: worker_class.to_owned(),
                    name: "md-0".into(),
                    replicas: workers,
                }],
            },
        };
        let cluster =
            third_party(metadata(Some(placement.workload_namespace()), &self.name_any()), CapiClusterSpec { topology });
        Ok(vec![cluster.into()])
    }

    /// An existing cluster's health; else the Cluster API Cluster's phase.
    fn observe(&self, applied: &[DynamicObject], inputs: &Inputs) -> ContainerClusterStatus {
        if let Some(report) = inputs.report {
            let status = match report.ready_nodes() {
                ready if ready == report.nodes.len() && ready > 0 => ContainerClusterPhase::Healthy,
                0 => ContainerClusterPhase::Unhealthy,
                _ => ContainerClusterPhase::Degraded,
            };
            let nodes = i32::try_from(report.nodes.len()).unwrap_or(i32::MAX);
            return ContainerClusterStatus { phase: Some(status), node_count: Some(nodes), ..Default::default() };
        }
        let Some(cluster) = applied_of(applied, CAPI_CLUSTER.kind).next() else {
            return ContainerClusterStatus::default();
        };
        let status = match cluster.data.pointer("/status/phase").and_then(Value::as_str) {
            None => return ContainerClusterStatus::default(),
            Some("Provisioned") => ContainerClusterPhase::Healthy,
            Some("Failed") => ContainerClusterPhase::Unhealthy,
            Some("Deleting") => ContainerClusterPhase::Maintenance,
            Some(_) => ContainerClusterPhase::Initializing,
        };
        // The machines Cluster API runs now, control plane and workers (v1beta2 counts).
        let count = |pointer: &str| cluster.data.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
        let nodes = count("/status/controlPlane/replicas").saturating_add(count("/status/workers/replicas"));
        let endpoint = match (
            cluster.data.pointer("/spec/controlPlaneEndpoint/host").and_then(Value::as_str).filter(|h| !h.is_empty()),
            cluster.data.pointer("/spec/controlPlaneEndpoint/port").and_then(Value::as_i64),
        ) {
            (Some(host), Some(port)) => Some(format!("https://{host}:{port}")),
            _ => None,
        };
        ContainerClusterStatus {
            phase: Some(status),
            node_count: Some(i32::try_from(nodes).unwrap_or(i32::MAX)),
            control_plane_endpoint: endpoint,
            ..Default::default()
        }
    }

    /// An existing cluster works while all its nodes are ready; a Cluster API cluster once it
    /// is Available (provisioned, with its control plane available).
    fn not_working(&self, applied: &[DynamicObject], inputs: &Inputs) -> Option<String> {
        match inputs.report {
            Some(report) if report.more_nodes => Some(format!(
                "the cluster has more than {0} nodes, the most a health check reports (the chart's \
                 security.probeNodeLimit): only {0} are ContainerNodes",
                report.nodes.len()
            )),
            Some(report) if report.ready_nodes() < report.nodes.len() || report.nodes.is_empty() => {
                Some(format!("{} of {} nodes ready", report.ready_nodes(), report.nodes.len()))
            }
            Some(_) => None,
            // v1beta2's summary: infrastructure and control plane available, workers up.
            None => without_condition(applied, CAPI_CLUSTER.kind, "Available"),
        }
    }

    fn unreachable(&self) -> ContainerClusterStatus {
        ContainerClusterStatus { phase: Some(ContainerClusterPhase::Unhealthy), ..Default::default() }
    }

    /// What is placed on it, which follows whether it stands: once it is gone, what was being
    /// deleted from it no longer waits to release children there.
    fn followers(&self, index: &super::Index) -> Vec<(KindId, String)> {
        let placed = self.hosts().map(|cluster| index.placed_on(&cluster)).unwrap_or_default();
        placed.into_iter().map(|(kind, name, _)| (kind, name)).collect()
    }

    fn hosts(&self) -> Option<Destination> {
        (self.spec.cluster_mode == ClusterMode::Kubernetes)
            .then(|| Destination::Workload { namespace: self.namespace().unwrap_or_default(), name: self.name_any() })
    }

    /// `clusterConfig.kubeconfigSecret` in kubernetes mode; `endpoint.url` (and
    /// `endpoint.tlsSecret`) in docker and swarm modes.
    fn probe_target(&self) -> Option<Result<ProbeTarget>> {
        let namespace = self.namespace().unwrap_or_default();
        match self.spec.cluster_mode {
            ClusterMode::Kubernetes => text(&self.spec.cluster_config, "kubeconfigSecret")
                .map(|secret| Ok(ProbeTarget::Kubeconfig { namespace, secret: secret.to_owned() })),
            mode @ (ClusterMode::Docker | ClusterMode::Swarm) => {
                let endpoint = &self.spec.endpoint;
                let Some(url) = text(endpoint, "url").filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                else {
                    return Some(Err(ProvisionError::invalid(
                        "spec.endpoint.url",
                        "a docker or swarm cluster gives its engine's address as http(s)://host:port",
                    )));
                };
                let tls = text(endpoint, "tlsSecret").map(|secret| (namespace, secret.to_owned()));
                Some(Ok(ProbeTarget::Engine { url: url.to_owned(), swarm: mode == ClusterMode::Swarm, tls }))
            }
        }
    }
}

impl ContainerCluster {
    /// How a workload cluster is reached: an existing cluster with the tenant's kubeconfig
    /// Secret (`clusterConfig.kubeconfigSecret`); a Cluster API cluster, once provisioned,
    /// with the Secret Cluster API writes beside its Cluster (`<cluster>-kubeconfig`, key
    /// `value`). Why it cannot be reached yet, otherwise.
    ///
    /// A Cluster API cluster's is read from its status alone: the phase is what Cluster API
    /// last said of its Cluster (`Provisioned`: the control plane up, the kubeconfig written),
    /// and the placement where that Cluster stands. Not from `Ready`, which a passing fault of
    /// the ContainerCluster's own reconcile (the database away) turns False too, nor from where
    /// it would be placed now, which its Element, deleted first, no longer says: what is being
    /// deleted from the cluster would find it gone, and leave its children there.
    pub fn credentials(&self) -> std::result::Result<Credentials, String> {
        let (namespace, name) = (self.namespace().unwrap_or_default(), self.name_any());
        if let Some(secret) = text(&self.spec.cluster_config, "kubeconfigSecret") {
            return Ok(Credentials { namespace, secret: secret.to_owned(), keys: &["value", "kubeconfig"] });
        }
        let status = self.status.as_ref().filter(|status| status.phase == Some(ContainerClusterPhase::Healthy));
        match status.and_then(|status| status.common.placement.as_ref()?.namespace.clone()) {
            Some(beside_its_cluster) => Ok(Credentials {
                namespace: beside_its_cluster,
                secret: format!("{name}-kubeconfig"),
                keys: &["value"],
            }),
            None => Err(format!("ContainerCluster {namespace}/{name} is not provisioned yet")),
        }
    }

    /// A ContainerNode per reported node, named `<cluster>-<node>`, in the cluster's namespace;
    /// its phase rides along as the status to apply. A heartbeat is recorded when it is
    /// `heartbeat_interval` newer than the one the node holds (or the node's phase changes):
    /// a node beating every few seconds does not make a write at every health check.
    fn nodes(&self, report: &ClusterReport, inputs: &Inputs) -> Vec<ContainerNode> {
        let cluster = self.name_any();
        report
            .nodes
            .iter()
            .map(|node| {
                let spec = ContainerNodeSpec {
                    cluster_ref: ObjectRef { name: cluster.clone() },
                    hostname: Some(node.name.clone()),
                    ip_address: node.address.clone().filter(|a| a.parse::<std::net::IpAddr>().is_ok()),
                    node_role: node.role,
                    cpu_cores: node.cpu_cores,
                    memory_gb: node.memory_gb,
                    disk_gb: None,
                    node_config: FreeForm(node.details.clone()),
                    networks: vec![],
                };
                let phase = if node.ready { ContainerNodePhase::Ready } else { ContainerNodePhase::NotReady };
                let name = node_name(&cluster, &node.name);
                let held = inputs.index.get::<ContainerNode>(self.namespace().as_deref(), &name);
                let held = held.as_ref().and_then(|held| held.status.as_ref());
                let heartbeat = node.heartbeat.as_deref().map(|reported| match held {
                    Some(held) if held.phase == Some(phase) => {
                        kept_heartbeat(held.last_heartbeat.as_deref(), reported, inputs.config.heartbeat_interval)
                    }
                    _ => reported,
                });
                let mut reported = ContainerNode::new(&name, spec);
                reported.metadata.namespace = self.namespace();
                reported.status = Some(ContainerNodeStatus {
                    phase: Some(phase),
                    last_heartbeat: heartbeat.map(str::to_owned),
                    ..ContainerNodeStatus::default()
                });
                reported
            })
            .collect()
    }
}

/// The heartbeat to record: the one held, while `reported` is less than `interval` newer.
fn kept_heartbeat<'a>(held: Option<&'a str>, reported: &'a str, interval: std::time::Duration) -> &'a str {
    let parse = |at: &str| at.parse::<Timestamp>().ok();
    match (held, held.and_then(parse), parse(reported)) {
        (Some(held), Some(at), Some(now))
            if now.duration_since(at) < SignedDuration::try_from(interval).unwrap_or_default() =>
        {
            held
        }
        _ => reported,
    }
}

/// `<cluster>-<node>` as an object name: lower case, characters outside `[a-z0-9.-]` as `-`.
fn node_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect()
}
