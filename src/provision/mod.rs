//! Provisioning: the Kubernetes objects each WindFlow object asks for. The builders are pure
//! (object + what it references → desired children); `render` prints them and `apply` writes
//! them to the cluster.

pub mod apply;
pub mod cache;
pub mod children;
pub mod clusters;
pub mod destination;
pub mod probe;
pub mod third_party;

use std::collections::BTreeMap;

/// Labels on every provisioned object: who it belongs to, and which object asked for it.
pub mod labels {
    pub const ORGANIZATION: &str = "windflow.io/organization";
    pub const ENVIRONMENT: &str = "windflow.io/environment";
    pub const OWNER_KIND: &str = "windflow.io/owner-kind";
    pub const OWNER_NAME: &str = "windflow.io/owner-name";
    /// The namespace of a namespaced owner, which its children in other namespaces cannot
    /// name through an owner reference: how a child's change finds its owner to reconcile.
    pub const OWNER_NAMESPACE: &str = "windflow.io/owner-namespace";
    /// Children are found by this label, for orphan cleanup and deletion.
    pub const OWNER_UID: &str = "windflow.io/owner-uid";
    /// Set to "true" on the pods of an application attached to the network named after the slash.
    pub const NETWORK_PREFIX: &str = "network.windflow.io/";
    /// Selects the pods of an application.
    pub const APPLICATION: &str = "windflow.io/application";
    /// Tells a preview or canary workload's pods from the main workload's.
    pub const WORKLOAD: &str = "windflow.io/workload";
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
    /// What the object asks for needs a provider the platform has not configured.
    #[error("{field}: {message}")]
    NotProvided { field: String, message: String },
    /// Nobody who may grant what the object grants is known to have asked for it.
    #[error("{0}")]
    NotAuthorized(String),
    /// The object would take its organization beyond one of its quotas.
    #[error("{0}")]
    QuotaExceeded(String),
}

impl ProvisionError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
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
    /// The Gateway API Gateway that routes attach to, as `namespace/name`.
    pub gateway_parent: String,
    /// Annotations that carry a gateway's balancing strategy and rate limits to the data plane.
    pub traffic_annotations: TrafficAnnotations,
    /// How the cluster's pod network encrypts traffic (WireGuard, IPsec), as the installation
    /// says; none: it does not, and networks asking for encryption are refused.
    pub pod_network_encryption: Option<String>,
    /// Where tenants reach the database, for their login's Secret; none: no logins are made.
    pub tenant_database: Option<TenantDatabase>,
    /// The one namespace whose Secrets hold Users' password hashes (the chart's release
    /// namespace by default): Users are cluster-scoped, and a reference elsewhere would read a
    /// tenant's Secrets.
    pub user_secret_namespace: String,
    /// Addresses health checks never connect to (loopback, link-local by default).
    pub probe_deny: Vec<ipnet::IpNet>,
    /// How much a health check reads of what it checks.
    pub probe_limits: probe::ProbeLimits,
    /// Where Cluster API ClusterClasses live, for clusters that do not say
    /// (`clusterConfig.classNamespace`); none: the Cluster's own namespace.
    pub cluster_class_namespace: Option<String>,
    /// Who may roll stacks out in another User's name.
    pub rollouts: Rollouts,
    /// How much newer a reported node's heartbeat must be than the one its ContainerNode
    /// holds to be written.
    pub heartbeat_interval: std::time::Duration,
    /// How Kubernetes usernames map to Users, and back: who Policies' RoleBindings name.
    pub identities: crate::mirror::identity::Identities,
}

/// The default of [`Config::heartbeat_interval`].
pub const DEFAULT_HEARTBEAT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// What a rollout's authorization knows of its requester.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollouts {
    /// Admission records who created each Deployment, so the rollout checks that requester
    /// too; without admission only `triggeredBy` is checked.
    pub requesters_recorded: bool,
    /// Kubernetes groups whose members may trigger rollouts for any User.
    pub platform_groups: Vec<String>,
}

/// Per `loadBalancingStrategy` (snake_case, as in the spec), and for `rate_limit`, the
/// annotations a gateway's route carries; `{key}` in a rate-limit value is `rateLimitConfig.key`.
pub type TrafficAnnotations = BTreeMap<String, BTreeMap<String, String>>;

/// Where tenants reach the database (the operator's own address unless the chart says).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantDatabase {
    pub host: String,
    pub port: u16,
    pub dbname: String,
}

/// The defaults of `Config`, also the command line's.
pub const DEFAULT_CLUSTER_ISSUER: &str = "letsencrypt";
pub const DEFAULT_GATEWAY_PARENT: &str = "windflow-system/windflow";
/// A namespace of its own: the release namespace holds the database URL and the webhook's key,
/// which a User's author could otherwise name as a password Secret.
pub const DEFAULT_USER_SECRET_NAMESPACE: &str = "windflow-users";

impl Default for Config {
    fn default() -> Self {
        Self {
            storage_classes: BTreeMap::new(),
            ingress_class: None,
            cluster_issuer: DEFAULT_CLUSTER_ISSUER.to_owned(),
            gateway_parent: DEFAULT_GATEWAY_PARENT.to_owned(),
            traffic_annotations: TrafficAnnotations::new(),
            pod_network_encryption: None,
            probe_deny: destination::default_deny(),
            probe_limits: probe::ProbeLimits::default(),
            user_secret_namespace: DEFAULT_USER_SECRET_NAMESPACE.to_owned(),
            tenant_database: None,
            cluster_class_namespace: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            rollouts: Rollouts::default(),
            identities: crate::mirror::identity::Identities::default(),
        }
    }
}

/// What deleting a WindFlow object does to the Kubernetes objects it provisioned.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum DeletionPolicy {
    /// They are deleted with it.
    #[default]
    Delete,
    /// They stay, no longer owned nor labeled as its children.
    Orphan,
}

/// What leads from an object to where its children land.
pub enum Anchor<'a> {
    /// The object is an organization: its children are its own, in no environment.
    Organization,
    /// The organization of the object's namespace, in no environment.
    Tenant,
    /// The object is the environment of that name.
    Environment(&'a str),
    /// The environment of the Element of that name (`spec.elementRef`).
    Element(&'a str),
    /// The environment of the Stack of that name (`spec.stackRef`), through its element.
    Stack(&'a str),
    /// The environment of the Domain of that name (`spec.domainRef`), through its element.
    Domain(&'a str),
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

/// The cluster a child is applied to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    /// The cluster the operator runs in.
    Management,
    /// A workload cluster: the ContainerCluster `name` of the tenant namespace `namespace`.
    Workload { namespace: String, name: String },
}

impl Destination {
    /// How status and `render` name the management cluster: parentheses, which no object name
    /// holds, so that it cannot be taken for a ContainerCluster.
    pub const MANAGEMENT: &'static str = "(management)";

    /// The cluster as status names it: the ContainerCluster's name, or [`Self::MANAGEMENT`].
    pub fn name(&self) -> &str {
        match self {
            Self::Management => Self::MANAGEMENT,
            Self::Workload { name, .. } => name,
        }
    }

    /// The clusters a status's `placement.cluster` names, for objects in `namespace`.
    pub fn parse_list(list: &str, namespace: &str) -> Vec<Self> {
        list.split(',')
            .filter(|name| !name.is_empty())
            .map(|name| match name {
                Self::MANAGEMENT => Self::Management,
                name => Self::Workload { namespace: namespace.to_owned(), name: name.to_owned() },
            })
            .collect()
    }

    /// Owner references reach only objects of the owner's own cluster.
    pub fn is_management(&self) -> bool {
        matches!(self, Self::Management)
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Management => f.write_str("the management cluster"),
            Self::Workload { namespace, name } => write!(f, "ContainerCluster {namespace}/{name}"),
        }
    }
}

/// Where an object's children land: its organization, for most kinds an environment, and the
/// clusters (every child goes to each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub organization: String,
    pub environment: Option<String>,
    /// The environment's workload namespace, when there is an environment.
    pub namespace: Option<String>,
    /// Never empty; sorted, the management cluster first when it is one.
    pub clusters: Vec<Destination>,
}

impl Placement {
    /// A placement on the management cluster.
    pub fn new(organization: String, environment: Option<String>) -> Result<Self> {
        let namespace = environment.as_deref().map(|env| workload_namespace(&organization, env)).transpose()?;
        Ok(Self { organization, environment, namespace, clusters: vec![Destination::Management] })
    }

    pub fn workload_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    /// The clusters as status names them, comma-separated.
    pub fn cluster_names(&self) -> String {
        self.clusters.iter().map(Destination::name).collect::<Vec<_>>().join(",")
    }
}

/// A built child and the cluster it is applied to.
#[derive(Clone, Debug)]
pub struct Placed {
    pub cluster: Destination,
    pub object: kube::api::DynamicObject,
}

/// A Kubernetes type a kind provisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildType {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The resource name, as RBAC rules name it (discovery finds it again at run time).
    pub plural: &'static str,
    pub namespaced: bool,
}

impl ChildType {
    /// The API group, empty for the core group.
    pub fn group(&self) -> &'static str {
        self.api_version.rsplit_once('/').map_or("", |(group, _)| group)
    }

    /// Served wherever WindFlow runs (built into Kubernetes, or WindFlow's own CRDs), unlike
    /// the third-party APIs that may be missing.
    pub fn always_served(&self) -> bool {
        matches!(self.provider(), "Kubernetes" | "WindFlow's CRDs")
    }

    /// Where objects of this type are served.
    pub fn api_resource(&self) -> kube::api::ApiResource {
        let version = self.api_version.rsplit_once('/').map_or(self.api_version, |(_, version)| version);
        kube::api::ApiResource {
            group: self.group().to_owned(),
            version: version.to_owned(),
            api_version: self.api_version.to_owned(),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }

    /// What users install to get this type.
    pub fn provider(&self) -> &'static str {
        match self.group() {
            "kubevirt.io" => "KubeVirt",
            "cdi.kubevirt.io" => "CDI (KubeVirt's Containerized Data Importer)",
            "cluster.x-k8s.io" => "Cluster API",
            "k8s.cni.cncf.io" => "Multus",
            "cert-manager.io" => "cert-manager",
            "externaldns.k8s.io" => "ExternalDNS",
            "gateway.networking.k8s.io" => "the Gateway API",
            "monitoring.coreos.com" => "the Prometheus Operator",
            "snapshot.storage.k8s.io" => "the CSI snapshot API (external-snapshotter's CRDs and controller)",
            "windflow.io" => "WindFlow's CRDs",
            _ => "Kubernetes",
        }
    }
}

/// The child types, in one place.
pub mod types {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    use k8s_openapi::api::core::v1::{LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Service};
    use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};

    use super::ChildType;

    const fn namespaced(api_version: &'static str, kind: &'static str, plural: &'static str) -> ChildType {
        ChildType { api_version, kind, plural, namespaced: true }
    }

    /// A built-in type, named as k8s-openapi names it: the builders apply these typed.
    const fn builtin<K: k8s_openapi::Resource>(namespaced: bool) -> ChildType {
        ChildType { api_version: K::API_VERSION, kind: K::KIND, plural: K::URL_PATH_SEGMENT, namespaced }
    }

    pub const NAMESPACE: ChildType = builtin::<Namespace>(false);
    pub const RESOURCE_QUOTA: ChildType = builtin::<ResourceQuota>(true);
    pub const LIMIT_RANGE: ChildType = builtin::<LimitRange>(true);
    pub const PVC: ChildType = builtin::<PersistentVolumeClaim>(true);
    pub const SERVICE: ChildType = builtin::<Service>(true);
    pub const DEPLOYMENT: ChildType = builtin::<Deployment>(true);
    pub const HORIZONTAL_POD_AUTOSCALER: ChildType = builtin::<HorizontalPodAutoscaler>(true);
    pub const NETWORK_POLICY: ChildType = builtin::<NetworkPolicy>(true);
    pub const INGRESS: ChildType = builtin::<Ingress>(true);
    pub const ROLE: ChildType = builtin::<Role>(true);
    pub const ROLE_BINDING: ChildType = builtin::<RoleBinding>(true);
    pub const NETWORK_ATTACHMENT: ChildType =
        namespaced("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "network-attachment-definitions");
    pub const VIRTUAL_MACHINE: ChildType = namespaced("kubevirt.io/v1", "VirtualMachine", "virtualmachines");
    pub const CAPI_CLUSTER: ChildType = namespaced("cluster.x-k8s.io/v1beta2", "Cluster", "clusters");
    /// The nodes an existing cluster reports.
    pub const CONTAINER_NODE: ChildType = namespaced("windflow.io/v1alpha1", "ContainerNode", "containernodes");
    pub const CERTIFICATE: ChildType = namespaced("cert-manager.io/v1", "Certificate", "certificates");
    pub const DNS_ENDPOINT: ChildType = namespaced("externaldns.k8s.io/v1alpha1", "DNSEndpoint", "dnsendpoints");
    pub const HTTP_ROUTE: ChildType = namespaced("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes");
    /// Consulted, not provisioned: KubeVirt's `dataVolumeTemplates` need CDI.
    pub const DATA_VOLUME: ChildType = namespaced("cdi.kubevirt.io/v1beta1", "DataVolume", "datavolumes");
    pub const TCP_ROUTE: ChildType = namespaced("gateway.networking.k8s.io/v1alpha2", "TCPRoute", "tcproutes");
    pub const UDP_ROUTE: ChildType = namespaced("gateway.networking.k8s.io/v1alpha2", "UDPRoute", "udproutes");
    pub const VOLUME_SNAPSHOT: ChildType =
        namespaced("snapshot.storage.k8s.io/v1", "VolumeSnapshot", "volumesnapshots");
    pub const SERVICE_MONITOR: ChildType = namespaced("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors");
    pub const POD_MONITOR: ChildType = namespaced("monitoring.coreos.com/v1", "PodMonitor", "podmonitors");
}
