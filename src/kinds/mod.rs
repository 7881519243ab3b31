//! THE registry: every WindFlow kind, and the one trait that says what WindFlow does with it.
//!
//! A kind lives in one module (`kinds/volume.rs`): its CRD types, the objects it references,
//! the rows it mirrors, the children it provisions and the status fields that follow them. What
//! walks the kinds (the CRDs, the controllers, the caches, `check`, `render`, RBAC) takes them
//! from [`registry!`]. Adding a kind is one module, one registry line and one migration (the
//! README's contributor section lists what else a new kind may want).

// kube's `printcolumn(name = …, type_ = …)` repeats its keys once per column by design.
#![allow(clippy::duplicated_attributes)]

// Defined before the modules, so that every kind's can use it.
/// A kind's own status type, which carries the common status as `common`.
macro_rules! kind_status {
    ($status:ty) => {
        impl $crate::kinds::common::KindStatus for $status {
            fn common(&self) -> &$crate::kinds::common::CommonStatus {
                &self.common
            }

            fn common_mut(&mut self) -> &mut $crate::kinds::common::CommonStatus {
                &mut self.common
            }
        }
    };
}

mod shared;

pub mod common;

pub mod index;
pub mod placement;
pub mod quota;
pub mod release;

pub mod application;
pub mod container_cluster;
pub mod container_node;
pub mod deployment;
pub mod dns_record;
pub mod dnssec_key;
pub mod domain;
pub mod element;
pub mod environment;
pub mod function;
pub mod gateway;
pub mod group;
pub mod network;
pub mod organization;
pub mod physical_host;
pub mod policy;
pub mod stack;
pub mod tag;
pub mod user;
pub mod vm;
pub mod volume;

use std::fmt;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::{ClusterResourceScope, NamespaceResourceScope};
use kube::api::{ApiResource, DynamicObject};
use kube::core::object::HasStatus;
use kube::{Api, Client, CustomResourceExt, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::mirror::{Entity, Invalid, Rows, StatusColumn};
use crate::provision::children::ChildSet;
use crate::provision::probe::{ClusterReport, ProbeTarget};
use crate::provision::{Anchor, ChildType, Config, DeletionPolicy, Placement};
use common::{CommonStatus, KindStatus, Reference, Resolved};

pub use index::{Index, Indexed};
pub use shared::{LOCKED_PASSWORD, PrepareError, children, place, prepare};

/// Why a gathering object is not all Ready ([`Kind::gathered`]), said by its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gathered {
    /// One of its objects needs users to act.
    Broken(String),
    /// Work is under way.
    Pending(String),
    /// It gathers nothing yet: Ready, once a new object's arrival grace is over. What it gathers
    /// usually arrives with it (one apply, one sync), a moment later: until then it is under
    /// way, so that it does not say Ready, then not, then Ready again.
    Nothing(String),
}

/// Everything a builder reads besides the object itself.
pub struct Inputs<'a> {
    /// The other WindFlow objects.
    pub index: &'a Index,
    pub config: &'a Config,
    /// What the health check of an existing cluster saw, for the kinds that have one.
    pub report: Option<&'a ClusterReport>,
    /// The types of [`Kind::consults`] the cluster does not serve (`render` assumes all are).
    pub unserved: &'a [ChildType],
    /// What is left of a new object's arrival grace: what it gathers may still be on its way.
    pub arriving: Option<Duration>,
    /// The names of the children of [`Kind::KEPT_CHILDREN`] the object holds now.
    pub kept: &'a [String],
    /// The time the builder builds for (a scheduled backup's slot).
    pub now: Timestamp,
}

impl<'a> Inputs<'a> {
    /// What builders read where no cluster is asked: every consulted API is served.
    pub fn offline(index: &'a Index, config: &'a Config) -> Self {
        Self { index, config, report: None, unserved: &[], arriving: None, kept: &[], now: Timestamp::now() }
    }

    /// Whether the cluster serves `type_` (one the object [`Kind::consults`]).
    pub fn serves(&self, type_: ChildType) -> bool {
        !self.unserved.contains(&type_)
    }
}

/// Every kind, in dependency order (a kind comes after the kinds it references): the one list.
/// `$then!` receives `Kind: module => lifecycle` for each, where the lifecycle names what the
/// controller does once the row is written (`reconcile::Provision`, `Tenant`, `RollOut`).
#[macro_export]
macro_rules! registry {
    ($then:ident) => {
        $then! {
            Tag: tag => Provision,
            Function: function => Provision,
            User: user => Provision,
            Organization: organization => Tenant,
            Environment: environment => Provision,
            Group: group => Provision,
            Element: element => Provision,
            Policy: policy => Provision,
            Network: network => Provision,
            Volume: volume => Provision,
            ContainerCluster: container_cluster => Provision,
            ContainerNode: container_node => Provision,
            PhysicalHost: physical_host => Provision,
            Domain: domain => Provision,
            DnsRecord: dns_record => Provision,
            DnssecKey: dnssec_key => Provision,
            Stack: stack => Provision,
            VM: vm => Provision,
            Application: application => Provision,
            Gateway: gateway => Provision,
            Deployment: deployment => RollOut,
        }
    };
}

/// What WindFlow does with one kind. Everything here is pure; the reconcile reads the objects
/// it references (dereference), then calls these to validate and build, then applies.
pub trait Kind:
    Resource<DynamicType = (), Scope: ApiScope>
    + HasStatus<Status: KindStatus>
    + Clone
    + fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// Which kind this is, where kinds are named at run time (references, rows, audit).
    const ID: KindId;
    /// The seed table holding the kind's rows.
    const TABLE: &'static str;
    /// Status fields that mirror seed columns the controller owns.
    const STATUS_COLUMNS: &'static [StatusColumn] = &[];
    /// What the kind provisions: [`NoChildren`](crate::provision::children::NoChildren) for
    /// kinds that only mirror.
    type Children: ChildSet;
    /// The Kubernetes types the kind provisions, listed to find children no longer wanted.
    const CHILD_TYPES: &'static [ChildType] = <Self::Children as ChildSet>::TYPES;
    /// The kind's status follows other objects (read from the index) although it provisions
    /// nothing.
    const OBSERVES_OTHERS: bool = false;
    /// Children made over time and kept by count, which the spec alone does not tell (a
    /// volume's scheduled snapshots): the builder is told which it holds ([`Inputs::kept`]).
    const KEPT_CHILDREN: &'static [ChildType] = &[];

    /// The status every kind carries.
    fn common_status(&self) -> Option<&CommonStatus> {
        self.status().map(KindStatus::common)
    }

    /// The objects this one references by name.
    fn references(&self) -> Vec<Reference>;

    /// Validates the spec against what it references and builds the kind's own columns and
    /// join rows (ids, organization and bookkeeping are added by [`prepare`]).
    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid>;

    /// The Secret key holding the object's password hash, if it has one:
    /// (namespace, name, key).
    fn password_secret(&self) -> Option<(&str, &str, &str)> {
        None
    }

    /// `spec.deletionPolicy`, for kinds that provision.
    fn deletion_policy(&self) -> DeletionPolicy {
        DeletionPolicy::Delete
    }

    /// What leads to where the children land.
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Tenant
    }

    /// The ContainerCluster (same namespace) the object names for its children to run on (a
    /// Stack's applications, a VM), if it names one.
    fn container_cluster(&self) -> Option<&str> {
        None
    }

    /// Objects of its namespace that follow where this one runs, or whether it stands (the
    /// Domains in front of a Gateway, a Domain's records, the Policies beside an Environment,
    /// the failed rollouts a completed one makes history): woken when where it runs or whether
    /// it is Ready changes, and when it goes.
    fn followers(&self, _index: &Index) -> Vec<(KindId, String)> {
        vec![]
    }

    /// Objects its spec shapes (the workloads of an Organization or an Environment, which
    /// `isActive: false` suspends; the applications an Element's `monitoringConfig` has
    /// scraped), with their namespaces: woken when its spec changes.
    fn governed(&self, _index: &Index) -> Vec<(KindId, String, String)> {
        vec![]
    }

    /// Objects of its namespace that wait for what its mirrored status columns say (a Stack's
    /// rollouts not started yet, waiting for it to be ready or free): woken when those change,
    /// not by a short timer.
    fn awaiting_status(&self, _index: &Index) -> Vec<(KindId, String)> {
        vec![]
    }

    /// The workload cluster this object is (a kubernetes ContainerCluster): what is placed on it
    /// is looked at again when its readiness flips.
    fn hosts(&self) -> Option<crate::provision::Destination> {
        None
    }

    /// Third-party APIs whose presence shapes this object's children (the Gateway API's
    /// HTTPRoute, or an Ingress without it; CDI for a machine's disks): the reconcile asks
    /// discovery and tells the builder in [`Inputs::unserved`].
    fn consults(&self) -> &'static [ChildType] {
        &[]
    }

    /// The desired children, before labels and owner references are added ([`children`]).
    fn desired(&self, _placement: &Placement, _inputs: &Inputs) -> crate::provision::Result<Vec<Self::Children>> {
        Ok(vec![])
    }

    /// Seed status fields that follow the children, as the API server returned them applied
    /// (and, for kinds that observe it, the index).
    fn observe(&self, _applied: &[DynamicObject], _inputs: &Inputs) -> Self::Status {
        Self::Status::default()
    }

    /// Seed status fields that follow other objects (read from the index), not the children:
    /// reported whatever became of the children (a Domain's DNSSEC follows its keys even while
    /// its Certificate cannot be made).
    fn observe_others(&self, _inputs: &Inputs) -> Self::Status {
        Self::Status::default()
    }

    /// How what this object gathers stands (an Element's objects, a Stack's applications and
    /// rollouts), when not all is Ready: one that needs users makes it Ready=False, reason
    /// `DependentFailed`; work under way, reason `Progressing`. Weighed once per reconcile,
    /// before [`Kind::not_working`].
    fn gathered(&self, _inputs: &Inputs) -> Option<Gathered> {
        None
    }

    /// Why the applied children do not work yet (a claim not Bound, a workload not Available),
    /// if they do not: Ready stays False, reason `Progressing`, until they do. Ready=True means
    /// the thing works, not that it was applied.
    fn not_working(&self, _applied: &[DynamicObject], _inputs: &Inputs) -> Option<String> {
        None
    }

    /// When the object has work at a set time (a volume's next scheduled backup): it is woken
    /// then, not polled.
    fn due(&self, _inputs: &Inputs) -> Option<Duration> {
        None
    }

    /// The existing cluster or engine to health-check before building, if any.
    fn probe_target(&self) -> Option<crate::provision::Result<ProbeTarget>> {
        None
    }

    /// Seed status fields while the probe cannot reach the target.
    fn unreachable(&self) -> Self::Status {
        Self::Status::default()
    }

    /// Seed status fields while what it asks for cannot be provisioned for a fault users must
    /// fix (an invalid spec, a provider not installed, a conflict, a quota): `error`, where its
    /// seed column has it, so that SQL users find the fault too.
    fn faulted(&self) -> Self::Status {
        Self::Status::default()
    }

    /// Whether the object's row is written, as its status says: the operator records
    /// `mirroredResourceVersion` once it has written the row, and keeps it.
    fn is_mirrored(&self) -> bool {
        self.common_status().is_some_and(|common| common.mirrored_resource_version.is_some())
    }

    /// Whether the object's row is on its way: not written yet, and nothing stops it (the
    /// object is not being deleted, and no reconcile of it has said its row cannot be written).
    /// An object that references it is early, not waiting for anyone to act.
    fn is_arriving(&self) -> bool {
        let refused = self.common_status().is_some_and(|common| {
            common.conditions.iter().any(|condition| condition.type_ == "Synced" && condition.status == "False")
        });
        !self.is_mirrored() && !refused && self.meta().deletion_timestamp.is_none()
    }
}

/// How a kind's API is reached, from the scope its CRD derive declares.
pub trait ApiScope {
    const CLUSTER: bool;
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, namespace: Option<&str>) -> Api<K>;
}

impl ApiScope for ClusterResourceScope {
    const CLUSTER: bool = true;
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, _: Option<&str>) -> Api<K> {
        Api::all(client)
    }
}

impl ApiScope for NamespaceResourceScope {
    const CLUSTER: bool = false;
    fn api<K: Resource<Scope = Self, DynamicType = ()>>(client: Client, namespace: Option<&str>) -> Api<K> {
        Api::namespaced(client, namespace.unwrap_or_default())
    }
}

/// The API of `K` for objects in `namespace` (ignored for cluster-scoped kinds).
pub fn api<K: Kind>(client: Client, namespace: Option<&str>) -> Api<K> {
    <K::Scope as ApiScope>::api::<K>(client, namespace)
}

/// Cluster-scoped kinds are referenced without a namespace and belong to no organization.
pub fn cluster_scoped<K: Kind>() -> bool {
    <K::Scope as ApiScope>::CLUSTER
}

/// Something done with an object whatever its kind: [`visit`] calls it with the typed object.
pub trait Visitor {
    type Output;
    fn visit<K: Kind>(self, obj: K) -> Self::Output;
}

macro_rules! generated {
    ($($kind:ident: $module:ident => $lifecycle:ident,)*) => {
        $(pub use $module::$kind;)*

        /// Every kind, where kinds are named at run time.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum KindId {
            $($kind,)*
        }

        impl KindId {
            /// Every kind, in dependency order.
            pub const ALL: &'static [KindId] = &[$(KindId::$kind,)*];

            /// The seed table holding the kind's rows.
            pub fn table(self) -> &'static str {
                match self {
                    $(Self::$kind => <$kind as Kind>::TABLE,)*
                }
            }

            /// The kind as the mirror knows it.
            pub fn entity(self) -> Entity {
                match self {
                    $(Self::$kind => Entity {
                        kind: stringify!($kind),
                        table: <$kind as Kind>::TABLE,
                        tenant: !cluster_scoped::<$kind>(),
                    },)*
                }
            }

            /// The Kubernetes types the kind provisions.
            pub fn child_types(self) -> &'static [ChildType] {
                match self {
                    $(Self::$kind => <$kind as Kind>::CHILD_TYPES,)*
                }
            }

            /// The kind's status follows the objects that reference it.
            pub fn observes_others(self) -> bool {
                match self {
                    $(Self::$kind => <$kind as Kind>::OBSERVES_OTHERS,)*
                }
            }

            /// Cluster-scoped kinds are referenced without a namespace and belong to no
            /// organization.
            pub fn cluster_scoped(self) -> bool {
                match self {
                    $(Self::$kind => cluster_scoped::<$kind>(),)*
                }
            }

            /// Where the kind's objects are served, for dynamic API calls.
            pub fn api_resource(self) -> ApiResource {
                match self {
                    $(Self::$kind => ApiResource::erase::<$kind>(&()),)*
                }
            }
        }

        /// Every WindFlow CRD, in dependency order (a kind comes after the kinds it references).
        pub fn crds() -> Vec<CustomResourceDefinition> {
            vec![$(<$kind as CustomResourceExt>::crd(),)*]
        }

        /// Calls `visitor` with `document` deserialized as its kind; or says why it cannot be.
        pub fn visit<V: Visitor>(document: &Value, visitor: V) -> Result<V::Output, String> {
            match document.get("kind").and_then(Value::as_str).unwrap_or_default() {
                $(stringify!($kind) => serde_json::from_value::<$kind>(document.clone())
                    .map(|obj| visitor.visit(obj))
                    .map_err(|error| format!("spec: {error}")),)*
                other => Err(format!("kind: {other:?} is not a WindFlow kind")),
            }
        }

        #[cfg(test)]
        mod registered {
            use super::*;

            #[test]
            fn every_kind_names_itself_and_its_scope_as_its_crd_does() {
                $(
                    assert_eq!(format!("{}", <$kind as Kind>::ID), <$kind as Resource>::kind(&()));
                    let crd = <$kind as CustomResourceExt>::crd();
                    assert_eq!(crd.spec.scope == "Cluster", cluster_scoped::<$kind>(), "{}", stringify!($kind));
                )*
            }

            /// A status column's default is what the row says before the status does: it must
            /// be a value the status field takes.
            #[test]
            fn every_status_column_default_is_a_value_of_its_field() {
                $(
                    let crd = serde_json::to_value(<$kind as CustomResourceExt>::crd()).expect("json");
                    let status = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
                    for column in <$kind as Kind>::STATUS_COLUMNS {
                        let field = &status["properties"][column.field];
                        assert!(field.is_object(), "{}: no status field {}", stringify!($kind), column.field);
                        if let (Some(default), Some(values)) = (column.default, field["enum"].as_array()) {
                            assert!(values.contains(&Value::from(default)), "{}.{}: {default}", stringify!($kind), column.field);
                        }
                    }
                )*
            }

            /// A kind module that is not registered would compile and never run.
            #[test]
            fn every_kind_module_is_registered() {
                let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/src/kinds");
                let modules: std::collections::BTreeSet<String> = std::fs::read_dir(directory)
                    .expect("src/kinds")
                    .filter_map(|entry| entry.ok()?.path().file_stem()?.to_str().map(str::to_owned))
                    .filter(|stem| !["mod", "common", "shared", "tests", "index", "placement", "quota", "release"].contains(&stem.as_str()))
                    .collect();
                let registered = [$(stringify!($module),)*].map(str::to_owned).into_iter().collect();
                assert_eq!(modules, registered);
            }
        }
    };
}

registry!(generated);

impl fmt::Display for KindId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests;
