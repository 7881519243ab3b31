//! Network → a NetworkPolicy between the workloads attached to it; bridge and macvlan networks
//! also get a Multus NetworkAttachmentDefinition.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::DynamicObject;
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved, yes};
use super::shared::{PLACEMENT_COLUMN, columns, element, metadata, phase_column};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::third_party::{CniConfig, Ipam, IpamAddress, NetworkAttachmentDefinition, NetworkAttachmentSpec};
use crate::provision::{Anchor, DeletionPolicy, Placement, ProvisionError, Result, labels};

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

kind_status!(NetworkStatus);

seed_values! {
    /// The values of `NetworkStatus.phase`: the seed's check on the column it mirrors.
    NetworkPhase { Creating, Active, Error, Deleting }
}

/// A `networks` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct NetworkRow<'a> {
    name: String,
    element_id: Uuid,
    network_type: &'a NetworkType,
    subnet: Option<&'a str>,
    gateway: Option<&'a str>,
    encryption_enabled: bool,
    cross_cluster: bool,
    network_config: &'a FreeForm,
}

child_set! {
    /// What a Network provisions: the policy between its members, and for bridge and macvlan
    /// networks their Multus definition.
    NetworkChild { NetworkPolicy, NetworkAttachmentDefinition }
}

impl Kind for Network {
    const ID: KindId = KindId::Network;
    const TABLE: &'static str = "networks";
    type Children = NetworkChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating"), PLACEMENT_COLUMN];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&NetworkRow {
                name: self.name_any(),
                element_id: resolved.element_of_type(&element(&spec.element_ref), "network")?,
                network_type: &spec.network_type,
                subnet: spec.subnet.as_deref(),
                gateway: spec.gateway.as_deref(),
                encryption_enabled: spec.encryption_enabled,
                cross_cluster: spec.cross_cluster,
                network_config: &spec.network_config,
            })?,
            joins: vec![],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<NetworkChild>> {
        if self.spec.encryption_enabled && inputs.config.pod_network_encryption.is_none() {
            return Err(ProvisionError::NotProvided {
                field: "spec.encryptionEnabled".into(),
                message: "the cluster's pod network is not known to encrypt traffic: set \
                          provisioning.podNetworkEncryption in the chart once its CNI does (WireGuard or \
                          IPsec), or encryptionEnabled: false"
                    .into(),
            });
        }
        let namespace = placement.workload_namespace();
        let name = self.name_any();
        // Members reach one another, both ways.
        let members = || {
            let labels = BTreeMap::from([(attachment_label(&name), "true".to_owned())]);
            LabelSelector { match_labels: Some(labels), ..LabelSelector::default() }
        };
        let peers = || Some(vec![NetworkPolicyPeer { pod_selector: Some(members()), ..NetworkPolicyPeer::default() }]);
        let mut children = vec![NetworkChild::NetworkPolicy(NetworkPolicy {
            metadata: metadata(Some(namespace), &format!("network-{name}")),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(members()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule { from: peers(), ..NetworkPolicyIngressRule::default() }]),
                egress: Some(vec![NetworkPolicyEgressRule { to: peers(), ..NetworkPolicyEgressRule::default() }]),
            }),
        })];
        if let Some(plugin) = self.multus_plugin() {
            let subnet = Some(self.subnet(plugin)?.to_owned());
            let ipam = self.ipam("host-local", subnet, vec![]);
            children.push(self.definition(namespace, &name, plugin, ipam)?.into());
        }
        Ok(children)
    }

    /// Active once its children are applied.
    fn faulted(&self) -> NetworkStatus {
        NetworkStatus { phase: Some(NetworkPhase::Error), ..Default::default() }
    }

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> NetworkStatus {
        NetworkStatus { phase: Some(NetworkPhase::Active), ..Default::default() }
    }
}

impl Network {
    /// The CNI plugin of a Multus network (bridge, macvlan); overlay and host networks are the
    /// cluster's pod network.
    fn multus_plugin(&self) -> Option<&'static str> {
        match self.spec.network_type {
            NetworkType::Bridge => Some("bridge"),
            NetworkType::Macvlan => Some("macvlan"),
            NetworkType::Overlay | NetworkType::Host => None,
        }
    }

    fn subnet(&self, plugin: &str) -> Result<&str> {
        self.spec.subnet.as_deref().ok_or_else(|| {
            ProvisionError::invalid("spec.subnet", format!("a {plugin} network needs a subnet for its addresses"))
        })
    }

    /// The IPAM of `kind` with the network's gateway, if it has one.
    fn ipam(&self, kind: &'static str, subnet: Option<String>, addresses: Vec<IpamAddress>) -> Ipam {
        Ipam { addresses, gateway: self.spec.gateway.clone(), subnet, kind }
    }

    /// A NetworkAttachmentDefinition of this network named `name`: its CNI network is the
    /// network's name whatever the definition's, so that addresses are allocated from one pool.
    fn definition(
        &self,
        namespace: &str,
        name: &str,
        plugin: &'static str,
        ipam: Ipam,
    ) -> Result<NetworkAttachmentDefinition> {
        let config = CniConfig { cni_version: "0.3.1", ipam, name: self.name_any(), plugin };
        let config = serde_json::to_string(&config)
            .map_err(|e| ProvisionError::invalid("spec", format!("cannot write the CNI configuration: {e}")))?;
        Ok(third_party(metadata(Some(namespace), name), NetworkAttachmentSpec { config }))
    }
}

/// A network a workload joins, with its fixed address if it has one.
pub(super) struct Join<'a> {
    pub network: &'a str,
    pub ip_address: Option<&'a str>,
    /// `spec.networks[i]`, for messages.
    pub field: String,
}

impl<'a> Join<'a> {
    /// `spec.networks[i]` of a workload.
    pub fn listed(i: usize, network: &'a str, ip_address: Option<&'a String>) -> Self {
        Self { network, ip_address: ip_address.map(String::as_str), field: format!("spec.networks[{i}]") }
    }
}

/// How a workload joins its Multus networks (bridge, macvlan; overlay and host networks are
/// the pod network and need nothing).
#[derive(Default)]
pub(super) struct Attachments {
    /// (network, definition as `namespace/name`): what the pods' networks annotation and
    /// KubeVirt's `multus.networkName` select.
    pub selected: Vec<(String, String)>,
    /// The workload's own definitions: a fixed address is a static IPAM of its own.
    pub definitions: Vec<NetworkAttachmentDefinition>,
}

/// The attachments of the workload `owner` (in `namespace`, the object in `object_namespace`),
/// which runs `replicas` pods (a fixed address fits one).
pub(super) fn attach(
    owner: &str,
    namespace: &str,
    object_namespace: &str,
    joins: &[Join],
    replicas: i32,
    inputs: &Inputs,
) -> Result<Attachments> {
    let mut attachments = Attachments::default();
    for join in joins {
        let network = inputs.index.named::<Network>(object_namespace, join.network, &join.field)?;
        let Some(plugin) = network.multus_plugin() else {
            if join.ip_address.is_some() {
                return Err(ProvisionError::invalid(
                    &format!("{}.ipAddress", join.field),
                    format!(
                        "Network {:?} is the cluster's pod network ({}): a fixed address needs a bridge or \
                         macvlan network",
                        join.network,
                        <&str>::from(network.spec.network_type)
                    ),
                ));
            }
            continue;
        };
        let Some(address) = join.ip_address else {
            let home = inputs.index.placement(network.as_ref())?;
            attachments
                .selected
                .push((join.network.to_owned(), format!("{}/{}", home.workload_namespace(), join.network)));
            continue;
        };
        let field = format!("{}.ipAddress", join.field);
        if replicas != 1 {
            return Err(ProvisionError::invalid(
                &field,
                format!("a fixed address fits one pod; this workload runs {replicas} replicas"),
            ));
        }
        let subnet: ipnet::IpNet = network.subnet(plugin)?.parse().map_err(|e| {
            ProvisionError::invalid(&field, format!("Network {:?} has no usable subnet: {e}", join.network))
        })?;
        let ip: std::net::IpAddr =
            address.parse().map_err(|e| ProvisionError::invalid(&field, format!("{address:?}: {e}")))?;
        if !subnet.contains(&ip) {
            return Err(ProvisionError::invalid(
                &field,
                format!("{address} is not in Network {:?}'s subnet {subnet}", join.network),
            ));
        }
        let name = format!("{}-{owner}", join.network);
        let addresses = vec![IpamAddress { address: format!("{ip}/{}", subnet.prefix_len()) }];
        let ipam = network.ipam("static", None, addresses);
        attachments.definitions.push(network.definition(namespace, &name, plugin, ipam)?);
        attachments.selected.push((join.network.to_owned(), format!("{namespace}/{name}")));
    }
    Ok(attachments)
}

/// The pod annotation by which Multus attaches `selected` definitions.
pub(super) const MULTUS_NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

/// The pod label that attaches a workload to a network.
pub fn attachment_label(network: &str) -> String {
    format!("{}{network}", labels::NETWORK_PREFIX)
}
