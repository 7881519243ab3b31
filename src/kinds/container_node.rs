//! ContainerNode: a node of a container cluster, mirrored.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, NetworkAttachment, ObjectRef, Reference, Resolved};
use super::shared::{columns, linked, networks, phase_column};
use super::{Kind, KindId};
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::Result;
use crate::provision::children::{Child, NoChildren};
use crate::provision::probe::NodeRole;
use crate::provision::{ChildType, types};

/// A node of a container cluster (tables `container_nodes`, `network_container_nodes`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "ContainerNode",
    namespaced,
    category = "windflow",
    shortname = "wfnode",
    status = "ContainerNodeStatus",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.nodeRole"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a node name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNodeSpec {
    /// The ContainerCluster the node belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("clusterRef is immutable"))]
    pub cluster_ref: ObjectRef,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// Role in the cluster (seed `node_role_check`).
    #[serde(default)]
    pub node_role: NodeRole,
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub cpu_cores: Option<i32>,
    /// Memory in GB (DECIMAL(6,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 9999.99))]
    pub memory_gb: Option<f64>,
    /// Disk in GB (DECIMAL(8,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 999_999.99))]
    pub disk_gb: Option<f64>,
    /// Node configuration (free-form).
    #[serde(default)]
    pub node_config: FreeForm,
    /// Networks the node is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub networks: Vec<NetworkAttachment>,
}

/// Status of a ContainerNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerNodeStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `container_nodes.status`: joining, ready, not_ready, unknown, terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ContainerNodePhase>,
    /// Seed `container_nodes.last_heartbeat`: the node's last heartbeat as its cluster reports
    /// it (a Kubernetes node's Ready `lastHeartbeatTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<String>,
}

kind_status!(ContainerNodeStatus);

seed_values! {
    /// The values of `ContainerNodeStatus.phase`: the seed's check on the column it mirrors.
    ContainerNodePhase { Joining, Ready, NotReady, Unknown, Terminated }
}

pub static NETWORK_CONTAINER_NODES: JoinTable =
    JoinTable { table: "network_container_nodes", owner: "node_id", key: &["network_id"], values: &["ip_address"] };

/// A `container_nodes` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct ContainerNodeRow<'a> {
    name: String,
    cluster_id: Uuid,
    hostname: Option<&'a str>,
    ip_address: Option<&'a str>,
    node_role: &'a NodeRole,
    cpu_cores: Option<i32>,
    memory_gb: Option<f64>,
    disk_gb: Option<f64>,
    node_config: &'a FreeForm,
}

/// The nodes an existing cluster reports are its ContainerCluster's children.
impl Child for ContainerNode {
    const TYPE: ChildType = types::CONTAINER_NODE;

    fn metadata_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        &mut self.metadata
    }
}

impl Kind for ContainerNode {
    const ID: KindId = KindId::ContainerNode;
    const TABLE: &'static str = "container_nodes";
    type Children = NoChildren;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "joining"),
        StatusColumn { field: "lastHeartbeat", column: "last_heartbeat", default: None },
    ];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(KindId::ContainerCluster, &self.spec.cluster_ref.name, "spec.clusterRef"))
            .chain(networks(&self.spec.networks).map(|(r, _)| r))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let cluster = Reference::new(KindId::ContainerCluster, &spec.cluster_ref.name, "spec.clusterRef");
        Ok(Rows {
            row: columns(&ContainerNodeRow {
                name: self.name_any(),
                cluster_id: resolved.id(&cluster)?,
                hostname: spec.hostname.as_deref(),
                ip_address: spec.ip_address.as_deref(),
                node_role: &spec.node_role,
                cpu_cores: spec.cpu_cores,
                memory_gb: spec.memory_gb,
                disk_gb: spec.disk_gb,
                node_config: &spec.node_config,
            })?,
            joins: vec![linked(&NETWORK_CONTAINER_NODES, networks(&spec.networks), resolved)?],
        })
    }
}
