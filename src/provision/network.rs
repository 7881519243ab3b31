//! Network → a NetworkPolicy between the workloads attached to it; bridge and macvlan networks
//! also get a Multus NetworkAttachmentDefinition.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::types::{NETWORK_ATTACHMENT, NETWORK_POLICY};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, labels};
use crate::api::Network;
use crate::api::infra::NetworkType;

impl Provisioned for Network {
    const APPLIED_PHASE: Option<&'static str> = Some("active");

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        let name = self.name_any();
        let members = json!({ "matchLabels": { attachment_label(&name): "true" } });
        let mut children = vec![NETWORK_POLICY.object(
            Some(namespace),
            &format!("network-{name}"),
            json!({ "spec": {
                "podSelector": members,
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [{ "from": [{ "podSelector": members }] }],
                "egress": [{ "to": [{ "podSelector": members }] }],
            } }),
        )];
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
}

/// The pod label that attaches a workload to a network.
pub fn attachment_label(network: &str) -> String {
    format!("{}{network}", labels::NETWORK_PREFIX)
}
