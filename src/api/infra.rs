//! Infrastructure: elements of an environment and what runs on them (clusters, nodes, VMs,
//! physical hosts, networks, volumes, gateways, domains and their DNS).

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::common::{CommonStatus, DeletionPolicy, FreeForm, ObjectRef};

fn yes() -> bool {
    true
}

/// An infrastructure element of an environment (tables `elements`, `element_tags`): the place
/// clusters, VMs, hosts, networks, volumes, domains and stacks belong to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Element",
    namespaced,
    category = "windflow",
    shortname = "wfel",
    status = "ElementStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.elementType"),
    printcolumn(name = "Environment", type_ = "string", json_path = ".spec.environmentRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("an element name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct ElementSpec {
    /// What the element is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Environment the element belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("environmentRef is immutable"))]
    pub environment_ref: ObjectRef,
    /// What kind of infrastructure this is (seed `element_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementType is immutable"))]
    pub element_type: ElementType,
    /// Element configuration (free-form).
    #[serde(default)]
    pub configuration: FreeForm,
    /// Monitoring configuration (free-form).
    #[serde(default)]
    pub monitoring_config: FreeForm,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Seed `element_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ElementType {
    ContainerCluster,
    Vm,
    PhysicalHost,
    Domain,
    Network,
    Volume,
    Gateway,
}

impl ElementType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCluster => "container_cluster",
            Self::Vm => "vm",
            Self::PhysicalHost => "physical_host",
            Self::Domain => "domain",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Gateway => "gateway",
        }
    }
}

/// Status of an Element.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `elements.status`: inactive, provisioning, active, error, maintenance, terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ElementPhase>,
    /// Seed `elements.last_health_check`: when WindFlow last found the objects on the element
    /// standing otherwise (its phase changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_health_check: Option<String>,
}

seed_values! {
    /// The values of `ElementStatus.phase`: the seed's check on the column it mirrors.
    ElementPhase { Inactive, Provisioning, Active, Error, Maintenance, Terminated }
}

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

seed_values! {
    /// The values of `ContainerClusterStatus.phase`: the seed's check on the column it mirrors.
    ContainerClusterPhase { Initializing, Healthy, Degraded, Unhealthy, Maintenance }
}

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

/// Seed `node_role_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Master,
    #[default]
    Worker,
    Manager,
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

seed_values! {
    /// The values of `ContainerNodeStatus.phase`: the seed's check on the column it mirrors.
    ContainerNodePhase { Joining, Ready, NotReady, Unknown, Terminated }
}

/// A connection to a Network, with an optional fixed address.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAttachment {
    /// Name of the Network.
    #[schemars(length(min = 1, max = 100))]
    pub network: String,
    /// Address on that network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
}

/// A virtual machine on a `vm` element (tables `vms`, `volume_vms`, `network_vms`). Short name
/// `wfvm`, since `vm` belongs to KubeVirt.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "VM",
    plural = "vms",
    singular = "vm",
    namespaced,
    category = "windflow",
    shortname = "wfvm",
    status = "VmStatus",
    printcolumn(name = "CPU", type_ = "integer", json_path = ".spec.cpuCores"),
    printcolumn(name = "Memory", type_ = "number", json_path = ".spec.memoryGb"),
    printcolumn(name = "OS", type_ = "string", json_path = ".spec.osType"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a VM name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct VMSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `vm`) the VM belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// The Stack that manages the VM, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_ref: Option<ObjectRef>,
    /// The kubernetes ContainerCluster (same namespace) whose KubeVirt runs the VM. Unset: the
    /// management cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cluster_ref: Option<ObjectRef>,
    /// CPU cores.
    #[schemars(range(min = 1))]
    pub cpu_cores: i32,
    /// Memory in GB (DECIMAL(6,2)).
    // The API server compares a whole number with a fractional minimum rounded down (0 passes
    // `minimum: 0.01`): the rule holds the floor for whole numbers too.
    #[schemars(range(min = 0.01, max = 9999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("memoryGb is at least 0.01"))]
    pub memory_gb: f64,
    /// Disk in GB (DECIMAL(8,2)).
    #[schemars(range(min = 0.01, max = 999_999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("diskGb is at least 0.01"))]
    pub disk_gb: f64,
    /// Operating system family (seed `vm_os_type_check`).
    pub os_type: OsType,
    /// Operating system version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub os_version: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// Hypervisor, such as `kvm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub hypervisor_type: Option<String>,
    /// VM configuration (free-form).
    #[serde(default)]
    pub vm_config: FreeForm,
    /// Names of Volumes attached to the VM.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Networks the VM is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub networks: Vec<NetworkAttachment>,
}

/// Seed `vm_os_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OsType {
    Linux,
    Windows,
    Freebsd,
    Other,
}

/// Status of a VM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `vms.status`: creating, starting, running, stopping, stopped, error, destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VmPhase>,
}

seed_values! {
    /// The values of `VmStatus.phase`: the seed's check on the column it mirrors.
    VmPhase { Creating, Starting, Running, Stopping, Stopped, Error, Destroyed }
}

/// A physical server on a `physical_host` element (tables `physical_hosts`,
/// `network_physical_hosts`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "PhysicalHost",
    namespaced,
    category = "windflow",
    shortname = "wfhost",
    status = "PhysicalHostStatus",
    printcolumn(name = "Hostname", type_ = "string", json_path = ".spec.hostname"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a host name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostSpec {
    /// The Element (of type `physical_host`) the host belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cpu_cores: Option<i32>,
    /// Memory in GB (DECIMAL(8,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 999_999.99))]
    pub memory_gb: Option<f64>,
    /// Disk in GB (DECIMAL(10,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 99_999_999.99))]
    pub disk_gb: Option<f64>,
    /// Operating system family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<OsType>,
    /// Operating system version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub os_version: Option<String>,
    /// Out-of-band access (BMC/IPMI) and host configuration (free-form).
    #[serde(default)]
    pub host_config: FreeForm,
    /// Networks the host is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub networks: Vec<NetworkAttachment>,
}

/// Status of a PhysicalHost.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `physical_hosts.status`: provisioning, active, maintenance, error, decommissioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PhysicalHostPhase>,
}

seed_values! {
    /// The values of `PhysicalHostStatus.phase`: the seed's check on the column it mirrors.
    PhysicalHostPhase { Provisioning, Active, Maintenance, Error, Decommissioned }
}

/// An overlay or host network on a `network` element (table `networks`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Network",
    namespaced,
    category = "windflow",
    shortname = "wfnet",
    status = "NetworkStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.networkType"),
    printcolumn(name = "Subnet", type_ = "string", json_path = ".spec.subnet"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a network name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("!has(self.gateway) || (has(self.subnet) && cidr(self.subnet).containsIP(self.gateway))").message("gateway must be an address inside subnet"))]
#[x_kube(validation = Rule::new("!has(self.networkType) || !(self.networkType in ['bridge', 'macvlan']) || has(self.subnet)").message("a bridge or macvlan network needs a subnet"))]
#[x_kube(validation = Rule::new("!has(self.networkType) || self.networkType == 'overlay' || (has(self.encryptionEnabled) && !self.encryptionEnabled)").message("only an overlay network is encrypted (by the cluster's pod network): a bridge, macvlan or host network sets encryptionEnabled: false"))]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `network`) the network belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Network driver (seed `network_type_check`). Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("networkType is immutable"))]
    pub network_type: NetworkType,
    /// Subnet in CIDR notation, such as `10.20.0.0/16`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("subnet must be a CIDR such as 10.20.0.0/16"))]
    pub subnet: Option<String>,
    /// Gateway address, inside `subnet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isIP(self)").message("gateway must be an IP address"))]
    pub gateway: Option<String>,
    /// Encrypt traffic: an overlay network is encrypted by the cluster's pod network (the
    /// chart's `provisioning.podNetworkEncryption` says it does); other types cannot be.
    #[serde(default = "yes")]
    pub encryption_enabled: bool,
    /// Span clusters.
    #[serde(default)]
    pub cross_cluster: bool,
    /// Advanced configuration (free-form).
    #[serde(default)]
    pub network_config: FreeForm,
}

/// Seed `network_type_check`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum NetworkType {
    #[default]
    Overlay,
    Bridge,
    Host,
    Macvlan,
}

/// Status of a Network.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `networks.status`: creating, active, error, deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<NetworkPhase>,
}

seed_values! {
    /// The values of `NetworkStatus.phase`: the seed's check on the column it mirrors.
    NetworkPhase { Creating, Active, Error, Deleting }
}

/// A storage volume on a `volume` element (table `volumes`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Volume",
    namespaced,
    category = "windflow",
    shortname = "wfvol",
    status = "VolumeStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.volumeType"),
    printcolumn(name = "Size", type_ = "number", json_path = ".spec.sizeGb"),
    printcolumn(name = "Access", type_ = "string", json_path = ".spec.accessMode"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a volume name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("!self.shared || self.accessMode != 'read_write_once'").message("a shared volume needs accessMode read_only_many or read_write_many"))]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `volume`) the volume belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Storage backend (seed `volume_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeType is immutable"))]
    pub volume_type: VolumeType,
    /// Size in GB (DECIMAL(10,2)); it can grow, never shrink.
    // The API server compares a whole number with a fractional minimum rounded down (0 passes
    // `minimum: 0.01`): the rule holds the floor for whole numbers too.
    #[schemars(range(min = 0.01, max = 99_999_999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("sizeGb is at least 0.01"))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("sizeGb cannot shrink"))]
    pub size_gb: f64,
    /// Back the volume up.
    #[serde(default = "yes")]
    pub backup_enabled: bool,
    /// Backup schedule, in cron syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub backup_schedule: Option<String>,
    /// Shared between several consumers.
    #[serde(default)]
    pub shared: bool,
    /// Access mode (seed `access_mode_check`).
    #[serde(default)]
    pub access_mode: AccessMode,
    /// Storage configuration (free-form).
    #[serde(default)]
    pub storage_config: FreeForm,
}

/// Seed `volume_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VolumeType {
    LocalSsd,
    LocalHdd,
    Nfs,
    Ceph,
    S3,
    AzureBlob,
    Gcs,
    Glusterfs,
}

/// Seed `access_mode_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
}

/// Status of a Volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `volumes.status`: creating, available, bound, error, deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VolumePhase>,
}

seed_values! {
    /// The values of `VolumeStatus.phase`: the seed's check on the column it mirrors.
    VolumePhase { Creating, Available, Bound, Error, Deleting }
}

/// A load-balancing gateway of a stack (tables `gateways`, `network_gateways`). Short name
/// `wfgw`, since `gateway` belongs to Gateway API and Istio.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Gateway",
    namespaced,
    category = "windflow",
    shortname = "wfgw",
    status = "GatewayStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.gatewayType"),
    printcolumn(name = "Stack", type_ = "string", json_path = ".spec.stackRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a gateway name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("self.gatewayType == 'http' || !self.autoSsl").message("autoSsl applies to http gateways only"))]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Stack the gateway serves. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("stackRef is immutable"))]
    pub stack_ref: ObjectRef,
    /// Protocol (seed `gateway_type_check`).
    pub gateway_type: GatewayType,
    /// Obtain TLS certificates automatically.
    #[serde(default = "yes")]
    pub auto_ssl: bool,
    /// TLS settings (free-form).
    #[serde(default)]
    pub ssl_config: FreeForm,
    /// Load-balancing strategy (seed `lb_strategy_check`).
    #[serde(default)]
    pub load_balancing_strategy: LoadBalancingStrategy,
    /// Limit request rates.
    #[serde(default)]
    pub rate_limiting: bool,
    /// Rate limits (free-form).
    #[serde(default)]
    pub rate_limit_config: FreeForm,
    /// Complete gateway configuration (free-form).
    #[serde(default)]
    pub gateway_config: FreeForm,
    /// Names of Networks the gateway is connected to.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// Seed `gateway_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GatewayType {
    Http,
    Tcp,
    Udp,
}

/// Seed `lb_strategy_check`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LoadBalancingStrategy {
    #[default]
    RoundRobin,
    LeastConn,
    IpHash,
    Weighted,
    HealthBased,
}

/// Status of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `gateways.status`: configuring, active, error, updating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<GatewayPhase>,
}

seed_values! {
    /// The values of `GatewayStatus.phase`: the seed's check on the column it mirrors.
    GatewayPhase { Configuring, Active, Error, Updating }
}

/// A DNS domain on a `domain` element (table `domains`). `fqdn` is unique across all tenants.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Domain",
    namespaced,
    category = "windflow",
    shortname = "wfdomain",
    status = "DomainStatus",
    printcolumn(name = "FQDN", type_ = "string", json_path = ".spec.fqdn"),
    printcolumn(name = "DNSSEC", type_ = "string", json_path = ".status.dnssecStatus"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Fully qualified domain name, lower case, such as `example.com`. Unique across tenants.
    #[schemars(length(min = 4, max = 255), regex(pattern = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"))]
    pub fqdn: String,
    /// The Element (of type `domain`) the domain belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Sign the zone with DNSSEC.
    #[serde(default)]
    pub dnssec_enabled: bool,
    /// Obtain TLS certificates automatically.
    #[serde(default = "yes")]
    pub auto_ssl: bool,
    /// Serve `*.fqdn` too (wildcard certificate).
    #[serde(default)]
    pub wildcard_support: bool,
    /// DNS configuration (free-form).
    #[serde(default)]
    pub dns_config: FreeForm,
}

/// Status of a Domain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `domains.status`: configuring, active, error, suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DomainPhase>,
    /// Seed `domains.dnssec_status`: disabled, unsigned, signed, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_status: Option<DnssecStatus>,
}

seed_values! {
    /// The values of `DomainStatus.dnssec_status`: the seed's check on the column it mirrors.
    DnssecStatus { Disabled, Unsigned, Signed, Error }
}

seed_values! {
    /// The values of `DomainStatus.phase`: the seed's check on the column it mirrors.
    DomainPhase { Configuring, Active, Error, Suspended }
}

/// A DNS record of a domain (table `dns_records`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "DnsRecord",
    namespaced,
    category = "windflow",
    shortname = "wfdns",
    status = "DnsRecordStatus",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domainRef.name"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.recordName"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.recordType"),
    printcolumn(name = "Value", type_ = "string", json_path = ".spec.value"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[x_kube(validation = Rule::new("(self.recordType == 'MX' || self.recordType == 'SRV') == has(self.priority)").message("priority is set for MX and SRV records, and only for them"))]
#[x_kube(validation = Rule::new("self.recordType != 'A' || isIP(self.value) && ip(self.value).family() == 4").message("an A record's value is an IPv4 address"))]
#[x_kube(validation = Rule::new("self.recordType != 'AAAA' || isIP(self.value) && ip(self.value).family() == 6").message("an AAAA record's value is an IPv6 address"))]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Domain the record belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("domainRef is immutable"))]
    pub domain_ref: ObjectRef,
    /// Name within the domain: `@` for the apex, `www`, `*`.
    #[schemars(
        length(min = 1, max = 255),
        regex(
            pattern = r"^(@|\*|(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?)*)$"
        )
    )]
    pub record_name: String,
    /// Record type.
    pub record_type: DnsRecordType,
    /// Record data, such as an address or a target name.
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
    /// Time to live in seconds, 60 to 86400.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 60, max = 86400))]
    pub ttl: i32,
    /// Priority of MX and SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub priority: Option<i32>,
}

fn default_ttl() -> i32 {
    3600
}

/// Table `dns_records`, `dns_record_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum DnsRecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
    #[serde(rename = "CNAME")]
    Cname,
    #[serde(rename = "MX")]
    Mx,
    #[serde(rename = "TXT")]
    Txt,
    #[serde(rename = "NS")]
    Ns,
    #[serde(rename = "SRV")]
    Srv,
    #[serde(rename = "CAA")]
    Caa,
    #[serde(rename = "PTR")]
    Ptr,
}

/// Status of a DnsRecord.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `dns_records.status`: pending, active, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DnsRecordPhase>,
}

seed_values! {
    /// The values of `DnsRecordStatus.phase`: the seed's check on the column it mirrors.
    DnsRecordPhase { Pending, Active, Error }
}

/// The public half of a DNSSEC signing key of a domain (table `dnssec_keys`). The private key
/// never enters WindFlow.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "DnssecKey",
    namespaced,
    category = "windflow",
    shortname = "wfdnskey",
    status = "DnssecKeyStatus",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domainRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.keyType"),
    printcolumn(name = "Algorithm", type_ = "string", json_path = ".spec.algorithm"),
    printcolumn(name = "Tag", type_ = "integer", json_path = ".spec.keyTag"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[x_kube(validation = Rule::new("!has(self.activatesAt) || !has(self.expiresAt) || timestamp(self.expiresAt) > timestamp(self.activatesAt)").message("expiresAt is after activatesAt"))]
#[serde(rename_all = "camelCase")]
pub struct DnssecKeySpec {
    /// The Domain the key signs. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("domainRef is immutable"))]
    pub domain_ref: ObjectRef,
    /// Key-signing or zone-signing key.
    pub key_type: DnssecKeyType,
    /// Signing algorithm.
    pub algorithm: DnssecAlgorithm,
    /// Key tag, 0 to 65535.
    #[schemars(range(min = 0, max = 65535))]
    pub key_tag: i32,
    /// Public key, base64.
    #[schemars(length(min = 1, max = 8192), regex(pattern = r"^[A-Za-z0-9+/]+={0,2}$"))]
    pub public_key: String,
    /// When the key starts signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub activates_at: Option<String>,
    /// When the key stops signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// `dnssec_key_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnssecKeyType {
    Ksk,
    Zsk,
}

/// `dnssec_algorithm_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnssecAlgorithm {
    Rsasha256,
    Rsasha512,
    Ecdsap256sha256,
    Ecdsap384sha384,
    Ed25519,
    Ed448,
}

/// Status of a DnssecKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnssecKeyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `dnssec_keys.status`: generated, published, active, retired, revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DnssecKeyPhase>,
}

seed_values! {
    /// The values of `DnssecKeyStatus.phase`: the seed's check on the column it mirrors.
    DnssecKeyPhase { Generated, Published, Active, Retired, Revoked }
}
