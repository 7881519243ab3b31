//! Network → a NetworkPolicy between the workloads attached to it; bridge and macvlan networks
//! also get a Multus NetworkAttachmentDefinition.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::shared::{columns, element, metadata, phase, phase_column, typed};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy, FreeForm};
use crate::api::infra::{NetworkPhase, NetworkType};
use crate::mirror::{Invalid, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::{NETWORK_ATTACHMENT, NETWORK_POLICY};
use crate::provision::{Anchor, Placement, ProvisionError, Result, labels};

pub use crate::api::infra::Network;

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

impl Kind for Network {
    const ID: KindId = KindId::Network;
    const TABLE: &'static str = "networks";
    const CHILD_TYPES: &'static [ChildType] = &[NETWORK_POLICY, NETWORK_ATTACHMENT];
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        let name = self.name_any();
        // Members reach one another, both ways.
        let members = || {
            let labels = BTreeMap::from([(attachment_label(&name), "true".to_owned())]);
            LabelSelector { match_labels: Some(labels), ..LabelSelector::default() }
        };
        let peers = || Some(vec![NetworkPolicyPeer { pod_selector: Some(members()), ..NetworkPolicyPeer::default() }]);
        let mut children = vec![typed(&NetworkPolicy {
            metadata: metadata(Some(namespace), &format!("network-{name}")),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(members()),
                policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule { from: peers(), ..NetworkPolicyIngressRule::default() }]),
                egress: Some(vec![NetworkPolicyEgressRule { to: peers(), ..NetworkPolicyEgressRule::default() }]),
            }),
        })?];
        let plugin = match self.spec.network_type {
            NetworkType::Bridge => Some("bridge"),
            NetworkType::Macvlan => Some("macvlan"),
            NetworkType::Overlay | NetworkType::Host => None,
        };
        if let Some(plugin) = plugin {
            let subnet = self.spec.subnet.as_deref().ok_or_else(|| {
                ProvisionError::invalid("spec.subnet", format!("a {plugin} network needs a subnet for its addresses"))
            })?;
            let mut ipam = json!({ "type": "host-local", "subnet": subnet });
            if let Some(gateway) = &self.spec.gateway {
                ipam["gateway"] = gateway.as_str().into();
            }
            let config = json!({ "cniVersion": "0.3.1", "name": name, "type": plugin, "ipam": ipam });
            children.push(NETWORK_ATTACHMENT.object(
                Some(namespace),
                &name,
                json!({ "spec": { "config": config.to_string() } }),
            ));
        }
        Ok(children)
    }

    /// Active once its children are applied.
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(NetworkPhase::Active)
    }
}

/// The pod label that attaches a workload to a network.
pub fn attachment_label(network: &str) -> String {
    format!("{}{network}", labels::NETWORK_PREFIX)
}
