//! Provisioning: the Kubernetes objects each WindFlow object asks for. The builders are pure
//! (object + what it references → desired children); `apply` writes them to a cluster.

mod compute;
mod ingress;
mod namespace;
mod network;
mod rbac;
mod storage;
mod workload;

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use crate::api::common::DeletionPolicy;
use crate::api::*;

/// Labels on every provisioned object: who it belongs to, and which object asked for it.
pub mod labels {
    pub const ORGANIZATION: &str = "windflow.io/organization";
    pub const ENVIRONMENT: &str = "windflow.io/environment";
    pub const OWNER_KIND: &str = "windflow.io/owner-kind";
    pub const OWNER_NAME: &str = "windflow.io/owner-name";
    /// Children are found by this label, for orphan cleanup and deletion.
    pub const OWNER_UID: &str = "windflow.io/owner-uid";
    /// Set to "true" on the pods of an application attached to the network named after the slash.
    pub const NETWORK_PREFIX: &str = "network.windflow.io/";
    /// Selects the pods of an application.
    pub const APPLICATION: &str = "windflow.io/application";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// Why an object's children cannot be built. Every variant is for users to fix (or wait for).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// A field holds something that cannot be provisioned.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A referenced object does not exist (yet).
    #[error("{0}")]
    Missing(String),
    /// The object's namespace belongs to no Organization.
    #[error("namespace {0:?} belongs to no Organization; objects here are not provisioned")]
    NoOrganization(String),
}

impl ProvisionError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_owned(), message: message.into() }
    }
}

pub type Result<T, E = ProvisionError> = std::result::Result<T, E>;

/// How the cluster provides what the objects ask for: the chart's values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// StorageClass per `volumeType` (snake_case, as in the spec); unmapped types use the
    /// cluster's default StorageClass.
    pub storage_classes: BTreeMap<String, String>,
    /// IngressClass of the http gateways.
    pub ingress_class: Option<String>,
    /// cert-manager ClusterIssuer for `autoSsl`.
    pub cluster_issuer: String,
    /// The Gateway API Gateway that tcp/udp routes attach to, as `namespace/name`.
    pub gateway_parent: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            storage_classes: BTreeMap::new(),
            ingress_class: None,
            cluster_issuer: "letsencrypt".to_owned(),
            gateway_parent: "windflow-system/windflow".to_owned(),
        }
    }
}

/// The WindFlow objects a builder may read: the organizations, and the namespaced objects that
/// lead from an object to its environment. The operator reads them from the API server,
/// `render` from files.
#[derive(Clone, Debug, Default)]
pub struct World {
    pub organizations: Vec<Organization>,
    pub environments: Vec<Environment>,
    pub elements: Vec<Element>,
    pub stacks: Vec<Stack>,
    pub applications: Vec<Application>,
    pub domains: Vec<Domain>,
    pub functions: Vec<Function>,
}

fn find<'a, K: Resource>(list: &'a [K], namespace: &str, name: &str) -> Option<&'a K> {
    list.iter().find(|o| o.meta().name.as_deref() == Some(name) && o.meta().namespace.as_deref() == Some(namespace))
}

impl World {
    /// The organization whose tenant namespace is `namespace`.
    pub fn organization(&self, namespace: &str) -> Result<&Organization> {
        self.organizations
            .iter()
            .find(|org| tenant_namespace(org) == namespace)
            .ok_or_else(|| ProvisionError::NoOrganization(namespace.to_owned()))
    }

    fn element(&self, namespace: &str, name: &str, field: &str) -> Result<&Element> {
        find(&self.elements, namespace, name)
            .ok_or_else(|| ProvisionError::Missing(format!("{field}: Element {namespace}/{name} does not exist")))
    }

    fn stack(&self, namespace: &str, name: &str, field: &str) -> Result<&Stack> {
        find(&self.stacks, namespace, name)
            .ok_or_else(|| ProvisionError::Missing(format!("{field}: Stack {namespace}/{name} does not exist")))
    }

    fn environment(&self, namespace: &str, name: &str, field: &str) -> Result<&Environment> {
        find(&self.environments, namespace, name)
            .ok_or_else(|| ProvisionError::Missing(format!("{field}: Environment {namespace}/{name} does not exist")))
    }

    /// The environment an element belongs to.
    fn element_environment(&self, namespace: &str, element: &str, field: &str) -> Result<&Environment> {
        let element = self.element(namespace, element, field)?;
        self.environment(namespace, &element.spec.environment_ref.name, "elementRef → environmentRef")
    }

    /// The environment a stack's element belongs to.
    fn stack_environment(&self, namespace: &str, stack: &str, field: &str) -> Result<&Environment> {
        let stack = self.stack(namespace, stack, field)?;
        self.element_environment(namespace, &stack.spec.element_ref.name, "stackRef → elementRef")
    }
}

/// The tenant namespace of an organization: `spec.namespace`, else its name.
pub fn tenant_namespace(org: &Organization) -> String {
    org.spec.namespace.clone().unwrap_or_else(|| org.name_any())
}

/// The workload namespace of an environment: `<organization>-<environment>`.
pub fn workload_namespace(organization: &str, environment: &str) -> Result<String> {
    let name = format!("{organization}-{environment}");
    if name.len() > 63 {
        return Err(ProvisionError::invalid(
            "metadata.name",
            format!("the workload namespace {name:?} would be longer than 63 characters; shorten the names"),
        ));
    }
    Ok(name)
}

/// Where an object's children land: its organization and, for most kinds, an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub organization: String,
    pub environment: Option<String>,
    /// The environment's workload namespace, when there is an environment.
    pub namespace: Option<String>,
}

impl Placement {
    fn new(organization: &Organization, environment: Option<&Environment>) -> Result<Self> {
        let organization = organization.name_any();
        let environment = environment.map(ResourceExt::name_any);
        let namespace = environment.as_deref().map(|env| workload_namespace(&organization, env)).transpose()?;
        Ok(Self { organization, environment, namespace })
    }

    fn workload_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }
}

/// Everything a builder reads besides the object itself.
pub struct Inputs<'a> {
    pub world: &'a World,
    pub config: &'a Config,
}

/// A kind that provisions Kubernetes objects.
pub trait Provisioned: Resource<DynamicType = ()> + ResourceExt {
    /// The types of children this kind can have: where orphans are looked for.
    const CHILDREN: &'static [ChildType] = &[];

    /// What deleting the object does to its children.
    fn deletion_policy(&self) -> DeletionPolicy {
        DeletionPolicy::Delete
    }

    /// Where the children land.
    fn placement(&self, inputs: &Inputs) -> Result<Placement>;

    /// The desired children, before labels and owner references are added.
    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>>;
}

/// A Kubernetes type a kind may provision, and the API that must be installed for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChildType {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// The third-party API it comes from, named as users know it; `None` for built-in types.
    pub provider: Option<&'static str>,
}

impl ChildType {
    pub fn group_version(&self) -> (&'static str, &'static str) {
        self.api_version.split_once('/').unwrap_or(("", self.api_version))
    }

    /// A child object of this type: `apiVersion`, `kind`, `metadata` with name and namespace.
    fn object(&self, namespace: Option<&str>, name: &str, rest: Value) -> Value {
        let mut metadata = json!({ "name": name });
        if let Some(namespace) = namespace.filter(|_| self.namespaced) {
            metadata["namespace"] = namespace.into();
        }
        let mut object = json!({ "apiVersion": self.api_version, "kind": self.kind, "metadata": metadata });
        if let (Value::Object(object), Value::Object(rest)) = (&mut object, rest) {
            object.extend(rest);
        }
        object
    }
}

/// The child types, in one place.
pub mod types {
    use super::ChildType;

    const fn builtin(
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
        namespaced: bool,
    ) -> ChildType {
        ChildType { api_version, kind, plural, namespaced, provider: None }
    }

    const fn provided(
        api_version: &'static str,
        kind: &'static str,
        plural: &'static str,
        provider: &'static str,
    ) -> ChildType {
        ChildType { api_version, kind, plural, namespaced: true, provider: Some(provider) }
    }

    pub const NAMESPACE: ChildType = builtin("v1", "Namespace", "namespaces", false);
    pub const RESOURCE_QUOTA: ChildType = builtin("v1", "ResourceQuota", "resourcequotas", true);
    pub const LIMIT_RANGE: ChildType = builtin("v1", "LimitRange", "limitranges", true);
    pub const PVC: ChildType = builtin("v1", "PersistentVolumeClaim", "persistentvolumeclaims", true);
    pub const SERVICE: ChildType = builtin("v1", "Service", "services", true);
    pub const DEPLOYMENT: ChildType = builtin("apps/v1", "Deployment", "deployments", true);
    pub const NETWORK_POLICY: ChildType = builtin("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", true);
    pub const INGRESS: ChildType = builtin("networking.k8s.io/v1", "Ingress", "ingresses", true);
    pub const ROLE: ChildType = builtin("rbac.authorization.k8s.io/v1", "Role", "roles", true);
    pub const ROLE_BINDING: ChildType = builtin("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true);
    pub const NETWORK_ATTACHMENT: ChildType = provided(
        "k8s.cni.cncf.io/v1",
        "NetworkAttachmentDefinition",
        "network-attachment-definitions",
        "Multus (k8s.cni.cncf.io/v1)",
    );
    pub const VIRTUAL_MACHINE: ChildType =
        provided("kubevirt.io/v1", "VirtualMachine", "virtualmachines", "KubeVirt (kubevirt.io/v1)");
    pub const CAPI_CLUSTER: ChildType =
        provided("cluster.x-k8s.io/v1beta1", "Cluster", "clusters", "Cluster API (cluster.x-k8s.io/v1beta1)");
    pub const CERTIFICATE: ChildType =
        provided("cert-manager.io/v1", "Certificate", "certificates", "cert-manager (cert-manager.io/v1)");
    pub const DNS_ENDPOINT: ChildType = provided(
        "externaldns.k8s.io/v1alpha1",
        "DNSEndpoint",
        "dnsendpoints",
        "ExternalDNS (externaldns.k8s.io/v1alpha1)",
    );
    pub const TCP_ROUTE: ChildType = provided(
        "gateway.networking.k8s.io/v1alpha2",
        "TCPRoute",
        "tcproutes",
        "Gateway API (gateway.networking.k8s.io/v1alpha2)",
    );
    pub const UDP_ROUTE: ChildType = provided(
        "gateway.networking.k8s.io/v1alpha2",
        "UDPRoute",
        "udproutes",
        "Gateway API (gateway.networking.k8s.io/v1alpha2)",
    );

    /// Every child type there is.
    pub const ALL: &[ChildType] = &[
        NAMESPACE,
        RESOURCE_QUOTA,
        LIMIT_RANGE,
        PVC,
        SERVICE,
        DEPLOYMENT,
        NETWORK_POLICY,
        INGRESS,
        ROLE,
        ROLE_BINDING,
        NETWORK_ATTACHMENT,
        VIRTUAL_MACHINE,
        CAPI_CLUSTER,
        CERTIFICATE,
        DNS_ENDPOINT,
        TCP_ROUTE,
        UDP_ROUTE,
    ];

    /// The type of an object built by this module.
    pub fn of(api_version: &str, kind: &str) -> Option<ChildType> {
        ALL.iter().copied().find(|t| t.api_version == api_version && t.kind == kind)
    }
}

/// The children of `obj`, with labels and owner references: what `render` prints and the
/// operator applies.
pub fn children<K: Provisioned>(obj: &K, inputs: &Inputs) -> Result<Vec<DynamicObject>> {
    let placement = obj.placement(inputs)?;
    let owner_namespace = obj.namespace();
    let owner_reference = obj.controller_owner_ref(&());
    obj.desired(&placement, inputs)?
        .into_iter()
        .map(|desired| {
            let mut child: DynamicObject = serde_json::from_value(desired)
                .map_err(|e| ProvisionError::invalid("spec", format!("cannot build a child object: {e}")))?;
            let labels = child.labels_mut();
            labels.insert(labels::ORGANIZATION.into(), placement.organization.clone());
            if let Some(environment) = &placement.environment {
                labels.insert(labels::ENVIRONMENT.into(), environment.clone());
            }
            labels.insert(labels::OWNER_KIND.into(), K::kind(&()).into_owned());
            labels.insert(labels::OWNER_NAME.into(), obj.name_any());
            if let Some(uid) = obj.uid() {
                labels.insert(labels::OWNER_UID.into(), uid);
            }
            labels.insert(labels::MANAGED_BY.into(), "windflow".into());
            // Owner references cannot cross namespaces: a namespaced owner owns only the
            // children in its own namespace; the others are found and deleted by label.
            let same_namespace = owner_namespace.is_none() || child.metadata.namespace == owner_namespace;
            if let (Some(owner), true) = (&owner_reference, same_namespace) {
                child.metadata.owner_references = Some(vec![owner.clone()]);
            }
            Ok(child)
        })
        .collect()
}

/// A Kubernetes quantity in decimal gigabytes, as the seed counts them (`10` → `10G`).
fn gigabytes(size: f64) -> String {
    format!("{size}G")
}

/// A free-form field as a string, if it is one.
fn text<'a>(form: &'a crate::api::common::FreeForm, key: &str) -> Option<&'a str> {
    form.0.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
