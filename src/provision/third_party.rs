//! The third-party types WindFlow provisions, with the fields it sets: Multus, KubeVirt and
//! CDI, Cluster API, cert-manager, ExternalDNS, the Gateway API, CSI snapshots and the
//! Prometheus Operator. Each is a
//! [`kube::core::Object`] of its spec.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{NotUsed, Object};
use serde::Serialize;

use super::children::ThirdPartySpec;
use super::{ChildType, types};

macro_rules! third_party {
    ($($(#[$doc:meta])* $alias:ident = $spec:ident => $child_type:ident,)+) => {
        $(
            $(#[$doc])*
            pub type $alias = Object<$spec, NotUsed>;

            impl ThirdPartySpec for $spec {
                const TYPE: ChildType = types::$child_type;
            }
        )+
    };
}

third_party! {
    /// Multus: a network pods attach to.
    NetworkAttachmentDefinition = NetworkAttachmentSpec => NETWORK_ATTACHMENT,
    /// KubeVirt.
    VirtualMachine = VirtualMachineSpec => VIRTUAL_MACHINE,
    /// Cluster API.
    CapiCluster = CapiClusterSpec => CAPI_CLUSTER,
    /// cert-manager.
    Certificate = CertificateSpec => CERTIFICATE,
    /// ExternalDNS.
    DnsEndpoint = DnsEndpointSpec => DNS_ENDPOINT,
    /// The Gateway API.
    HttpRoute = HttpRouteSpec => HTTP_ROUTE,
    /// The Gateway API (experimental channel).
    TcpRoute = TcpRouteSpec => TCP_ROUTE,
    /// The Gateway API (experimental channel).
    UdpRoute = UdpRouteSpec => UDP_ROUTE,
    /// The CSI snapshot API (external-snapshotter): a volume's scheduled backups.
    VolumeSnapshot = VolumeSnapshotSpec => VOLUME_SNAPSHOT,
    /// The Prometheus Operator: an application scraped through its Service.
    ServiceMonitor = ServiceMonitorSpec => SERVICE_MONITOR,
    /// The Prometheus Operator: an application's pods scraped directly.
    PodMonitor = PodMonitorSpec => POD_MONITOR,
}

/// `{}`: a KubeVirt or CDI option chosen by its presence.
#[derive(Serialize, Clone, Debug, Default)]
pub struct Chosen {}

#[derive(Serialize, Clone, Debug)]
pub struct NetworkAttachmentSpec {
    /// The CNI configuration ([`CniConfig`]), as JSON text.
    pub config: String,
}

/// A CNI network configuration. Its fields are in name order, as the text definitions made
/// before the types had them: the same network keeps the same text.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CniConfig {
    pub cni_version: &'static str,
    pub ipam: Ipam,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin: &'static str,
}

/// How a CNI plugin gives addresses: `host-local` from a subnet, or `static` ones (fields in
/// name order, as [`CniConfig`]'s).
#[derive(Serialize, Clone, Debug)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<IpamAddress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Serialize, Clone, Debug)]
pub struct IpamAddress {
    pub address: String,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineSpec {
    /// `Always` or `Halted`.
    pub run_strategy: &'static str,
    pub data_volume_templates: Vec<DataVolumeTemplate>,
    pub template: MachineTemplate,
}

/// A CDI DataVolume made with the machine.
#[derive(Serialize, Clone, Debug)]
pub struct DataVolumeTemplate {
    pub metadata: ObjectMeta,
    pub spec: DataVolumeSpec,
}

#[derive(Serialize, Clone, Debug)]
pub struct DataVolumeSpec {
    pub storage: DataVolumeStorage,
    pub source: DataVolumeSource,
}

#[derive(Serialize, Clone, Debug)]
pub struct DataVolumeStorage {
    pub resources: StorageRequests,
}

#[derive(Serialize, Clone, Debug)]
pub struct StorageRequests {
    pub requests: BTreeMap<String, Quantity>,
}

/// A container disk image, or a blank disk.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub enum DataVolumeSource {
    Registry { url: String },
    Blank(Chosen),
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineTemplate {
    pub metadata: ObjectMeta,
    pub spec: MachineInstanceSpec,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineInstanceSpec {
    pub domain: MachineDomain,
    pub networks: Vec<MachineNetwork>,
    pub volumes: Vec<MachineVolume>,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineDomain {
    pub cpu: MachineCpu,
    pub memory: MachineMemory,
    pub devices: MachineDevices,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineCpu {
    pub cores: i32,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineMemory {
    pub guest: Quantity,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineDevices {
    pub disks: Vec<MachineDisk>,
    pub interfaces: Vec<MachineInterface>,
}

/// A disk on the virtio bus, of the volume of its name.
#[derive(Serialize, Clone, Debug)]
pub struct MachineDisk {
    pub name: String,
    pub disk: DiskBus,
}

#[derive(Serialize, Clone, Debug)]
pub struct DiskBus {
    pub bus: &'static str,
}

impl MachineDisk {
    pub fn virtio(name: &str) -> Self {
        Self { name: name.to_owned(), disk: DiskBus { bus: "virtio" } }
    }
}

/// An interface of the network of its name: masquerade on the pod network, a bridge on the
/// others.
#[derive(Serialize, Clone, Debug)]
pub struct MachineInterface {
    pub name: String,
    #[serde(flatten)]
    pub binding: InterfaceBinding,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub enum InterfaceBinding {
    Masquerade(Chosen),
    Bridge(Chosen),
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineNetwork {
    pub name: String,
    #[serde(flatten)]
    pub source: NetworkSource,
}

/// The pod network, or a Multus NetworkAttachmentDefinition (`namespace/name`).
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub enum NetworkSource {
    Pod(Chosen),
    Multus {
        #[serde(rename = "networkName")]
        network_name: String,
    },
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineVolume {
    pub name: String,
    #[serde(flatten)]
    pub source: VolumeSource,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSource {
    DataVolume {
        name: String,
    },
    PersistentVolumeClaim {
        #[serde(rename = "claimName")]
        claim_name: String,
    },
}

#[derive(Serialize, Clone, Debug)]
pub struct CapiClusterSpec {
    pub topology: Topology,
}

/// A Cluster API managed topology: its ClusterClass, version and machine counts.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    pub class_ref: ClassRef,
    pub version: String,
    pub control_plane: ControlPlaneTopology,
    pub workers: WorkersTopology,
}

#[derive(Serialize, Clone, Debug)]
pub struct ClassRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Serialize, Clone, Debug)]
pub struct ControlPlaneTopology {
    pub replicas: i64,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct WorkersTopology {
    pub machine_deployments: Vec<MachineDeploymentTopology>,
}

#[derive(Serialize, Clone, Debug)]
pub struct MachineDeploymentTopology {
    pub class: String,
    pub name: String,
    pub replicas: i64,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct CertificateSpec {
    pub secret_name: String,
    pub dns_names: Vec<String>,
    pub issuer_ref: IssuerRef,
}

#[derive(Serialize, Clone, Debug)]
pub struct IssuerRef {
    pub kind: &'static str,
    pub name: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct DnsEndpointSpec {
    pub endpoints: Vec<Endpoint>,
}

/// One DNS record ExternalDNS keeps.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub dns_name: String,
    pub record_type: &'static str,
    pub targets: Vec<String>,
    #[serde(rename = "recordTTL")]
    pub record_ttl: i32,
}

/// A route's parent Gateway: `namespace/name`, or a name in the route's namespace.
#[derive(Serialize, Clone, Debug)]
pub struct ParentRef {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl ParentRef {
    pub fn of(parent: &str) -> Self {
        match parent.split_once('/') {
            Some((namespace, name)) => Self { name: name.to_owned(), namespace: Some(namespace.to_owned()) },
            None => Self { name: parent.to_owned(), namespace: None },
        }
    }
}

/// A Service and port traffic goes to.
#[derive(Serialize, Clone, Debug)]
pub struct BackendRef {
    pub name: String,
    pub port: i32,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    pub parent_refs: Vec<ParentRef>,
    pub hostnames: Vec<String>,
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    pub matches: Vec<HttpRouteMatch>,
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Serialize, Clone, Debug)]
pub struct HttpRouteMatch {
    pub path: PathMatch,
}

#[derive(Serialize, Clone, Debug)]
pub struct PathMatch {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

/// A TCP or UDP route: every rule's backends take the gateway's traffic.
#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteSpec {
    pub parent_refs: Vec<ParentRef>,
    pub rules: Vec<L4RouteRule>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct L4RouteRule {
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(transparent)]
pub struct TcpRouteSpec(pub L4RouteSpec);

#[derive(Serialize, Clone, Debug)]
#[serde(transparent)]
pub struct UdpRouteSpec(pub L4RouteSpec);

/// A snapshot of a claim, by the cluster's default VolumeSnapshotClass for the claim's driver.
#[derive(Serialize, Clone, Debug)]
pub struct VolumeSnapshotSpec {
    pub source: SnapshotSource,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSource {
    pub persistent_volume_claim_name: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct ServiceMonitorSpec {
    pub selector: LabelSelector,
    pub endpoints: Vec<ScrapeEndpoint>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    pub selector: LabelSelector,
    pub pod_metrics_endpoints: Vec<ScrapeEndpoint>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
}

/// Where and how often Prometheus scrapes: a named port, a path, an interval.
#[derive(Serialize, Clone, Debug)]
pub struct ScrapeEndpoint {
    pub port: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}
