//! The API calls the operator makes, as RBAC: what the chart must grant, and nothing more.
//! Derived from the code's own declarations (the CRDs it watches, the child types each kind
//! provisions), so a new child type cannot ship without its permission.

use std::collections::BTreeSet;

use crate::kinds::common::GROUP;
use crate::kinds::{self, KindId};
use crate::provision::ChildType;

/// One permission: API group, resource (with subresource), verb.
pub type Access = (String, String, String);

fn access(group: &str, resource: &str, verbs: &[&str]) -> impl Iterator<Item = Access> {
    verbs.iter().map(move |verb| (group.to_owned(), resource.to_owned(), (*verb).to_owned()))
}

/// Cluster-wide: the operator watches every WindFlow object and provisions in any namespace.
pub fn cluster_access() -> BTreeSet<Access> {
    let mut all = BTreeSet::new();
    let crds = kinds::crds();
    let plural_of = |kind: &str| {
        crds.iter().find(|crd| crd.spec.names.kind == kind).map(|crd| crd.spec.names.plural.clone()).unwrap_or_default()
    };
    for crd in &crds {
        let plural = &crd.spec.names.plural;
        // The controllers list and watch; the finalizer is added and removed by patch.
        all.extend(access(GROUP, plural, &["list", "watch", "patch"]));
        all.extend(access(GROUP, &format!("{plural}/status"), &["patch"]));
    }
    // Events: the recorder creates them and patches a series.
    all.extend(access("events.k8s.io", "events", &["create", "patch"]));
    // Password hashes, kubeconfigs and engine TLS material are read; each tenant's database
    // login is written to its namespace.
    all.extend(access("", "secrets", &["get", "create", "patch"]));
    // A rollout reads the workloads it waits for.
    all.extend(access("apps", "deployments", &["get"]));
    // Admission asks whether a Policy's author may do what it grants.
    all.extend(access("authorization.k8s.io", "subjectaccessreviews", &["create"]));
    // The admission webhook's CA, kept in its two configurations (only those, by name).
    for configuration in ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"] {
        all.extend(access("admissionregistration.k8s.io", configuration, &["get", "update"]));
    }
    for kind in KindId::ALL.iter().filter(|kind| !kind.child_types().is_empty()) {
        // An owner reference with blockOwnerDeletion needs this where the
        // OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift).
        all.extend(access(GROUP, &format!("{}/finalizers", plural_of(&kind.to_string())), &["update"]));
        for child in kind.child_types() {
            all.extend(child_access(child));
        }
    }
    all
}

/// Server-side apply (patch, and create: applying an object that does not exist yet creates
/// it) of names that are free or this owner's (get), pruning (list across namespaces), deletion and the watch that wakes owners (every
/// type, third-party ones once installed). Roles carry the grants of Functions, which the
/// operator need not hold itself: `escalate` and `bind` on them.
fn child_access(child: &ChildType) -> Vec<Access> {
    let group = child.group();
    // get: before applying, a name is checked free or this owner's (never taken over).
    let mut verbs = vec!["get", "list", "watch", "create", "patch", "delete"];
    // A child's status (a reported node's phase) is a WindFlow kind's: granted with the CRDs.
    //
    // A Role may grant what the operator lacks (escalate); binding it takes `bind` on the Role
    // the binding names, not on the binding.
    if child.kind == "Role" {
        verbs.extend(["escalate", "bind"]);
    }
    access(group, child.plural, &verbs).collect()
}

/// On a workload cluster, granted to the identity its kubeconfig carries: the child types of
/// the kinds placed there, and the workloads rollouts read. Nothing of WindFlow's own.
pub fn workload_access() -> BTreeSet<Access> {
    let mut all: BTreeSet<Access> =
        kinds::placement::PLACED.iter().flat_map(|kind| kind.child_types()).flat_map(child_access).collect();
    all.extend(access("apps", "deployments", &["get"]));
    all
}

/// `access` as one ClusterRole named `name`, a rule per API group and resource.
pub fn cluster_role(name: &str, access: &BTreeSet<Access>) -> k8s_openapi::api::rbac::v1::ClusterRole {
    use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
    let mut rules: Vec<PolicyRule> = vec![];
    for (group, resource, verb) in access {
        match rules.last_mut() {
            Some(rule)
                if rule.api_groups.as_deref() == Some(std::slice::from_ref(group))
                    && rule.resources.as_deref() == Some(std::slice::from_ref(resource)) =>
            {
                rule.verbs.push(verb.clone());
            }
            _ => rules.push(PolicyRule {
                api_groups: Some(vec![group.clone()]),
                resources: Some(vec![resource.clone()]),
                verbs: vec![verb.clone()],
                ..PolicyRule::default()
            }),
        }
    }
    ClusterRole {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    }
}

/// In the operator's own namespace: the admission webhook's certificate, renewed in place (its
/// Secret is read and made with the cluster-wide grants).
pub fn webhook_access() -> BTreeSet<Access> {
    access("", "secrets", &["update"]).collect()
}

/// In the namespace of Users' password Secrets (`security.userSecretNamespace`): their
/// versions are watched (metadata only), so that a changed password is mirrored at once and an
/// unchanged one is not read again.
pub fn user_secret_access() -> BTreeSet<Access> {
    access("", "secrets", &["list", "watch"]).collect()
}

/// In namespace `default`, read once at start: the API server's endpoints, which the deny list
/// refuses (the `kubernetes` Service itself is read under the cluster-wide grant on Services).
pub fn api_server_access() -> BTreeSet<Access> {
    access("discovery.k8s.io", "endpointslices", &["list"]).collect()
}

/// In the operator's own namespace: the leader election Lease.
pub fn lease_access() -> BTreeSet<Access> {
    access("coordination.k8s.io", "leases", &["get", "create", "patch"]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workload cluster grants what placed children need, and no WindFlow kind, Secret or
    /// Role: nothing there lets the operator act as more than a deployer.
    #[test]
    fn a_workload_cluster_grants_only_the_placed_children() {
        let all = workload_access();
        let has = |g: &str, r: &str, v: &str| all.contains(&(g.to_owned(), r.to_owned(), v.to_owned()));
        for (group, resource) in [
            ("apps", "deployments"),
            ("", "namespaces"),
            ("", "persistentvolumeclaims"),
            ("cert-manager.io", "certificates"),
            ("externaldns.k8s.io", "dnsendpoints"),
        ] {
            for verb in ["get", "list", "watch", "create", "patch", "delete"] {
                assert!(has(group, resource, verb), "{group}/{resource} {verb}");
            }
        }
        assert!(all.iter().all(|(group, resource, _)| group != "windflow.io"
            && resource != "secrets"
            && resource != "roles"
            && resource != "clusters"));
        let role = cluster_role("windflow-workload", &all);
        let rules = role.rules.expect("rules");
        let deployments = rules.iter().find(|r| r.resources.as_deref() == Some(&["deployments".to_owned()][..]));
        assert_eq!(deployments.map(|r| r.verbs.len()), Some(6), "one rule per resource, every verb in it");
    }

    #[test]
    fn no_wildcards_and_what_provisioning_needs_is_there() {
        let all = cluster_access();
        assert!(all.iter().all(|(g, r, v)| g != "*" && r != "*" && v != "*"));
        for needed in [
            ("", "persistentvolumeclaims", "patch"),
            ("", "persistentvolumeclaims", "create"),
            ("kubevirt.io", "virtualmachines", "delete"),
            ("rbac.authorization.k8s.io", "roles", "escalate"),
            ("windflow.io", "volumes/status", "patch"),
            ("windflow.io", "containernodes", "delete"),
            ("windflow.io", "organizations/finalizers", "update"),
        ] {
            let needed = (needed.0.to_owned(), needed.1.to_owned(), needed.2.to_owned());
            assert!(all.contains(&needed), "{needed:?}");
        }
    }
}
