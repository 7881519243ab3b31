//! Where things run: the one rule that decides the cluster of every object's children, over
//! the index. A Stack's applications, and everything they need, run on the ContainerCluster the
//! stack names, else on the only kubernetes ContainerCluster of its element, else on the
//! management cluster; a VM on the cluster it names, else the management cluster. A Domain's
//! certificate and records go where the gateways it is in front of run.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::{Resource, ResourceExt};

use super::{
    Application, ContainerCluster, DnsRecord, Domain, Element, Environment, Gateway, Index, Indexed, Kind, KindId,
    Network, Stack, VM, Volume,
};
use crate::kinds::container_cluster::ClusterMode;
use crate::provision::apply::Provider;
use crate::provision::clusters::{ClusterError, Clusters};
use crate::provision::{Anchor, Destination, ProvisionError, Result};

/// The kinds whose children may run on a workload cluster; every other kind's stay on the
/// management cluster.
pub const PLACED: &[KindId] = &[
    KindId::Environment,
    KindId::Volume,
    KindId::Network,
    KindId::VM,
    KindId::Application,
    KindId::Gateway,
    KindId::Domain,
    KindId::DnsRecord,
];

/// The kinds placed where what uses them runs (a Volume where the workloads mounting it run,
/// a Network where those joining it run, a Domain and its records where the gateways in front
/// of it run), and on the management cluster while nothing placed uses them.
const FOLLOW_USERS: &[KindId] = &[KindId::Volume, KindId::Network, KindId::Domain, KindId::DnsRecord];

impl Index {
    /// The clusters the children of `obj` go to: never empty, sorted (the management cluster
    /// first when it is one).
    pub fn destinations<K: Kind>(&self, obj: &K) -> Result<Vec<Destination>> {
        let mut clusters = self.ruled_clusters(obj)?;
        if clusters.is_empty() {
            clusters.insert(Destination::Management);
        }
        Ok(clusters.into_iter().collect())
    }

    /// Whether `obj` is on the management cluster only because nothing placed uses it yet,
    /// while a workload cluster of its namespace could have it: a new one may be waiting for
    /// what will use it. Where every user runs on the management cluster, nothing waits.
    pub fn unclaimed<K: Kind>(&self, obj: &K) -> bool {
        let workload_cluster = |cluster: &Arc<ContainerCluster>| {
            cluster.spec.cluster_mode == ClusterMode::Kubernetes && cluster.meta().deletion_timestamp.is_none()
        };
        FOLLOW_USERS.contains(&K::ID)
            && self.all::<ContainerCluster>(obj.namespace().as_deref()).iter().any(workload_cluster)
            && self.ruled_clusters(obj).is_ok_and(|clusters| clusters.is_empty())
    }

    /// The clusters the rule of `obj`'s kind names; none for the management cluster alone.
    fn ruled_clusters<K: Kind>(&self, obj: &K) -> Result<BTreeSet<Destination>> {
        let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
        let namespace = namespace.as_str();
        let named = obj.container_cluster();
        let clusters: BTreeSet<Destination> = match (K::ID, obj.anchor()) {
            (KindId::Stack, Anchor::Element(element)) => [self.stack_rule(namespace, element, named, "spec.")?].into(),
            // An Application, a Gateway: where their stack's applications run.
            (_, Anchor::Stack(stack)) => [self.stack_cluster(namespace, stack)?].into(),
            (KindId::VM, _) => [self.machine_cluster(namespace, named)?].into(),
            (KindId::Volume, _) => self.volume_clusters(namespace, obj)?,
            (KindId::Network, _) => self.network_clusters(namespace, obj),
            (KindId::Environment, _) => self.environment_clusters(namespace, &name),
            (KindId::Domain, _) => self.domain_clusters(namespace, &name),
            (KindId::DnsRecord, Anchor::Domain(domain)) => self.domain_clusters(namespace, domain),
            _ => BTreeSet::new(),
        };
        Ok(clusters)
    }

    /// The cluster the applications of the stack `stack` run on.
    fn stack_cluster(&self, namespace: &str, stack: &str) -> Result<Destination> {
        let stack = self.named::<Stack>(namespace, stack, "spec.stackRef")?;
        self.stack_rule(namespace, &stack.spec.element_ref.name, stack.container_cluster(), "spec.stackRef → ")
    }

    /// The cluster a stack on `element` that names `named` runs its applications on; `fields`
    /// leads from the object asking to the stack's fields, for messages.
    fn stack_rule(&self, namespace: &str, element: &str, named: Option<&str>, fields: &str) -> Result<Destination> {
        if let Some(named) = named {
            return self.kubernetes_cluster(namespace, named, &format!("{fields}containerClusterRef"));
        }
        let on_element: Vec<Arc<ContainerCluster>> = self
            .all::<ContainerCluster>(Some(namespace))
            .into_iter()
            .filter(|cluster| cluster.spec.element_ref.name == element && cluster.meta().deletion_timestamp.is_none())
            .collect();
        let (kubernetes, engines): (Vec<_>, Vec<_>) =
            on_element.iter().partition(|cluster| cluster.spec.cluster_mode == ClusterMode::Kubernetes);
        match (kubernetes.as_slice(), engines.first()) {
            ([only], _) => Ok(workload(namespace, only)),
            ([], None) => Ok(Destination::Management),
            ([], Some(engine)) => Err(engine_refused(&format!("{fields}elementRef"), engine)),
            (several, _) => {
                let names: Vec<String> = several.iter().map(|cluster| cluster.name_any()).collect();
                Err(ProvisionError::invalid(
                    &format!("{fields}containerClusterRef"),
                    format!(
                        "Element {element:?} holds several kubernetes ContainerClusters ({}): the stack names the one \
                         its applications run on",
                        names.join(", ")
                    ),
                ))
            }
        }
    }

    /// A VM runs on the KubeVirt of the cluster it names, else on the management cluster.
    fn machine_cluster(&self, namespace: &str, named: Option<&str>) -> Result<Destination> {
        match named {
            Some(named) => self.kubernetes_cluster(namespace, named, "spec.containerClusterRef"),
            None => Ok(Destination::Management),
        }
    }

    /// The ContainerCluster `name`, once it exists, if it is a kubernetes cluster.
    fn kubernetes_cluster(&self, namespace: &str, name: &str, field: &str) -> Result<Destination> {
        let cluster = self.named::<ContainerCluster>(namespace, name, field)?;
        if cluster.meta().deletion_timestamp.is_some() {
            return Err(ProvisionError::Missing(format!(
                "{field}: ContainerCluster {namespace}/{name} is being deleted"
            )));
        }
        match cluster.spec.cluster_mode {
            ClusterMode::Kubernetes => Ok(workload(namespace, &cluster)),
            ClusterMode::Docker | ClusterMode::Swarm => Err(engine_refused(field, &cluster)),
        }
    }

    /// A claim lives where the workloads that mount it run: one cluster, since a claim cannot
    /// span clusters. Unmounted, on the management cluster.
    fn volume_clusters<P: Kind>(&self, namespace: &str, volume: &P) -> Result<BTreeSet<Destination>> {
        let mut users: Vec<(String, Destination)> = vec![];
        for app in self.live_children::<Application, _>(volume) {
            if let Ok(cluster) = self.stack_cluster(namespace, &app.spec.stack_ref.name) {
                users.push((format!("Application {}", app.name_any()), cluster));
            }
        }
        for vm in self.live_children::<VM, _>(volume) {
            if let Ok(cluster) = self.machine_cluster(namespace, vm.container_cluster()) {
                users.push((format!("VM {}", vm.name_any()), cluster));
            }
        }
        let clusters: BTreeSet<Destination> = users.iter().map(|(_, cluster)| cluster.clone()).collect();
        if clusters.len() > 1 {
            let who: Vec<String> = users.iter().map(|(user, cluster)| format!("{user} runs on {cluster}")).collect();
            return Err(ProvisionError::invalid(
                "metadata.name",
                format!("a claim cannot span clusters, and this volume is mounted on several: {}", who.join("; ")),
            ));
        }
        Ok(clusters)
    }

    /// A network's policies and attachments go wherever the workloads that join it run.
    fn network_clusters<P: Kind>(&self, namespace: &str, network: &P) -> BTreeSet<Destination> {
        let apps = self.live_children::<Application, _>(network).into_iter().map(|app| app.spec.stack_ref.name.clone());
        let gateways =
            self.live_children::<Gateway, _>(network).into_iter().map(|gateway| gateway.spec.stack_ref.name.clone());
        let stacks: BTreeSet<String> = apps.chain(gateways).collect();
        let machines = self
            .live_children::<VM, _>(network)
            .into_iter()
            .filter_map(|vm| self.machine_cluster(namespace, vm.container_cluster()).ok());
        stacks.iter().filter_map(|stack| self.stack_cluster(namespace, stack).ok()).chain(machines).collect()
    }

    /// A domain's certificate and records go where the gateways in front of it run: those
    /// whose host is its name or under it. In front of none, on the management cluster.
    fn domain_clusters(&self, namespace: &str, domain: &str) -> BTreeSet<Destination> {
        let Some(domain) = self.get::<Domain>(Some(namespace), domain) else { return BTreeSet::new() };
        self.all::<Gateway>(Some(namespace))
            .iter()
            .filter(|gateway| gateway.meta().deletion_timestamp.is_none())
            .filter(|gateway| gateway.host().is_some_and(|host| domain.covers(host)))
            .filter_map(|gateway| self.stack_cluster(namespace, &gateway.spec.stack_ref.name).ok())
            .collect()
    }

    /// An environment's namespace, quota, limits and default deny are on the management cluster
    /// and on every cluster where something of the environment runs, or still runs: what a move
    /// leaves behind keeps its namespace until it is gone (their statuses say where they are).
    fn environment_clusters(&self, namespace: &str, name: &str) -> BTreeSet<Destination> {
        let in_environment = |element: &str| {
            self.get::<Element>(Some(namespace), element)
                .is_some_and(|element| element.spec.environment_ref.name == name)
        };
        let stacks: Vec<Arc<Stack>> = self
            .all::<Stack>(Some(namespace))
            .into_iter()
            .filter(|stack| in_environment(&stack.spec.element_ref.name))
            .collect();
        let machines: Vec<Arc<VM>> = self
            .all::<VM>(Some(namespace))
            .into_iter()
            .filter(|vm| in_environment(&vm.spec.element_ref.name))
            .collect();
        let stack_names: BTreeSet<String> = stacks.iter().map(|stack| stack.name_any()).collect();
        let applications: Vec<Arc<Application>> = self
            .all::<Application>(Some(namespace))
            .into_iter()
            .filter(|app| stack_names.contains(&app.spec.stack_ref.name))
            .collect();
        let going = stacks.iter().filter_map(|stack| self.destinations(stack.as_ref()).ok()).flatten();
        let machines_going =
            machines.iter().filter_map(|vm| self.machine_cluster(namespace, vm.container_cluster()).ok());
        let still: Vec<&dyn Placeable> = applications
            .iter()
            .map(|app| app.as_ref() as &dyn Placeable)
            .chain(machines.iter().map(|vm| vm.as_ref() as &dyn Placeable))
            .collect();
        let staying = still.into_iter().filter_map(Placeable::placement).flat_map(|placement| {
            Destination::parse_list(&placement.cluster, namespace)
                .into_iter()
                .filter(|cluster| self.get::<ContainerCluster>(Some(namespace), cluster.name()).is_some())
        });
        let domains = self
            .all::<Domain>(Some(namespace))
            .into_iter()
            .filter(|domain| in_environment(&domain.spec.element_ref.name))
            .flat_map(|domain| self.domain_clusters(namespace, &domain.name_any()));
        std::iter::once(Destination::Management)
            .chain(going)
            .chain(machines_going)
            .chain(staying)
            .chain(domains)
            .collect()
    }

    /// The objects whose children go to `cluster`, or whose status says some are still there
    /// (moving, or being deleted): what to look at again when it starts or stops answering.
    pub fn placed_on(&self, cluster: &Destination) -> Vec<(KindId, String, String)> {
        let Destination::Workload { namespace, name } = cluster else { return vec![] };
        self.placeable(namespace)
            .into_iter()
            .filter(|(_, obj)| obj.held_on(name) || obj.clusters(self).is_ok_and(|clusters| clusters.contains(cluster)))
            .map(|(kind, obj)| (kind, obj.name(), namespace.clone()))
            .collect()
    }

    /// The objects whose status says their children are on `cluster`, in its namespace: those
    /// being deleted release their children there before the cluster's ContainerCluster goes.
    pub fn holding_children_on(&self, cluster: &Destination) -> Vec<Holder> {
        let Destination::Workload { namespace, name } = cluster else { return vec![] };
        let placeable = self.placeable(namespace);
        let holding = placeable.into_iter().filter(|(kind, obj)| PLACED.contains(kind) && obj.held_on(name));
        holding.map(|(kind, obj)| Holder { kind, name: obj.name(), deleting: obj.deleting() }).collect()
    }

    /// Every object in `namespace` of the [`PLACED`] kinds, and the Stacks (whose status says
    /// where their applications run).
    fn placeable(&self, namespace: &str) -> Vec<(KindId, Arc<dyn Placeable>)> {
        fn of<K: Indexed>(index: &Index, namespace: &str, found: &mut Vec<(KindId, Arc<dyn Placeable>)>) {
            found.extend(index.all::<K>(Some(namespace)).into_iter().map(|obj| (K::ID, obj as Arc<dyn Placeable>)));
        }
        let mut found = vec![];
        of::<Environment>(self, namespace, &mut found);
        of::<Volume>(self, namespace, &mut found);
        of::<Network>(self, namespace, &mut found);
        of::<VM>(self, namespace, &mut found);
        of::<Stack>(self, namespace, &mut found);
        of::<Application>(self, namespace, &mut found);
        of::<Gateway>(self, namespace, &mut found);
        of::<Domain>(self, namespace, &mut found);
        of::<DnsRecord>(self, namespace, &mut found);
        found
    }
}

/// The provider of `destination`: a workload cluster's is reached with the credentials its
/// ContainerCluster gives.
pub async fn provider(
    index: &Index,
    clusters: &Clusters,
    destination: &Destination,
) -> std::result::Result<Arc<Provider>, ClusterError> {
    let credentials = match destination {
        Destination::Management => None,
        Destination::Workload { namespace, name } => {
            let cluster = index
                .get::<ContainerCluster>(Some(namespace), name)
                .ok_or_else(|| ClusterError::NotReady(format!("{destination} does not exist")))?;
            match cluster.credentials() {
                Ok(credentials) => Some(credentials),
                // Connected once, it serves until its ContainerCluster goes: what runs there
                // is still released when its organization is being deleted with it.
                Err(why) => return clusters.connected(destination).ok_or(ClusterError::NotReady(why)),
            }
        }
    };
    clusters.provider(destination, credentials.as_ref()).await
}

/// An object holding children on a workload cluster, as the cache has it.
#[derive(Debug, PartialEq)]
pub struct Holder {
    pub kind: KindId,
    pub name: String,
    /// Being deleted, by the cache.
    pub deleting: bool,
}

/// What [`Index::placed_on`] and [`Index::holding_children_on`] read of an object of any kind.
trait Placeable {
    fn name(&self) -> String;
    fn deleting(&self) -> bool;
    fn placement(&self) -> Option<&crate::kinds::common::PlacementStatus>;
    /// Where its children go now ([`Index::destinations`]).
    fn clusters(&self, index: &Index) -> Result<Vec<Destination>>;

    /// Whether its status says children of it are on the workload cluster `name`.
    fn held_on(&self, name: &str) -> bool {
        self.placement().is_some_and(|placement| placement.cluster.split(',').any(|held| held == name))
    }
}

impl<K: Kind> Placeable for K {
    fn name(&self) -> String {
        self.name_any()
    }

    fn clusters(&self, index: &Index) -> Result<Vec<Destination>> {
        index.destinations(self)
    }

    fn deleting(&self) -> bool {
        self.meta().deletion_timestamp.is_some()
    }

    fn placement(&self) -> Option<&crate::kinds::common::PlacementStatus> {
        self.common_status()?.placement.as_ref()
    }
}

fn workload(namespace: &str, cluster: &ContainerCluster) -> Destination {
    Destination::Workload { namespace: namespace.to_owned(), name: cluster.name_any() }
}

/// WindFlow runs applications on Kubernetes only: a docker or swarm engine is refused, by name
/// and mode, rather than anything landing elsewhere.
fn engine_refused(field: &str, cluster: &ContainerCluster) -> ProvisionError {
    ProvisionError::invalid(
        field,
        format!(
            "ContainerCluster {:?} is a {} engine: WindFlow places applications on kubernetes clusters only",
            cluster.name_any(),
            match cluster.spec.cluster_mode {
                ClusterMode::Docker => "docker",
                ClusterMode::Swarm => "swarm",
                ClusterMode::Kubernetes => "kubernetes",
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;
    use crate::kinds::{Inputs, children, place};
    use crate::provision::Config;

    /// The sample platform and `extra` documents, each object with a uid and its row written.
    fn index_with(extra: &str) -> Index {
        index_edited(extra, |_| {})
    }

    /// [`index_with`], each document changed by `edit` first.
    fn index_edited(extra: &str, edit: impl Fn(&mut Value)) -> Index {
        let sample = include_str!("../../examples/platform.yaml");
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&format!("{sample}\n---\n{extra}"))
            .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("yaml")).expect("json"))
            .filter(|doc: &Value| !doc.is_null())
            .enumerate()
            .map(|(i, mut doc)| {
                doc["metadata"]["uid"] = format!("00000000-0000-4000-8000-{i:012}").into();
                doc["status"]["mirroredResourceVersion"] = "1".into();
                edit(&mut doc);
                doc
            })
            .collect();
        Index::from_documents(&docs)
    }

    fn main() -> Destination {
        Destination::Workload { namespace: "acme".into(), name: "main".into() }
    }

    fn names(clusters: &[Destination]) -> Vec<&str> {
        clusters.iter().map(Destination::name).collect()
    }

    /// The object `kind`/`name` of `namespace`, placed: its clusters, or why not.
    fn destinations(index: &Index, kind: KindId, namespace: &str, name: &str) -> Result<Vec<Destination>> {
        macro_rules! of {
            ($($kind:ident),*) => {
                match kind {
                    $(KindId::$kind => index.destinations(index.get::<$kind>(Some(namespace), name).expect("an object").as_ref()),)*
                    _ => unreachable!("{kind}"),
                }
            };
        }
        use crate::kinds::Policy;
        of!(Stack, Application, Gateway, VM, Volume, Network, Environment, ContainerCluster, Policy, Domain, DnsRecord)
    }

    fn placed(index: &Index, kind: KindId, name: &str) -> Vec<String> {
        destinations(index, kind, "acme", name).expect("placed").iter().map(|d| d.name().to_owned()).collect()
    }

    #[test]
    fn the_sample_stack_runs_on_the_only_kubernetes_cluster_of_its_element_with_all_it_needs() {
        let index = index_with("");
        for (kind, name) in [
            (KindId::Stack, "shop"),
            (KindId::Application, "api"),
            (KindId::Application, "storefront"),
            (KindId::Gateway, "public"),
            (KindId::Volume, "pgdata"),
            (KindId::Volume, "uploads"),
            (KindId::Network, "backend"),
            (KindId::Network, "frontend"),
            (KindId::VM, "legacy-erp"),
            // The domain in front of the gateway public (shop.acme.example), and its record.
            (KindId::Domain, "acme-example"),
            (KindId::DnsRecord, "www"),
        ] {
            assert_eq!(placed(&index, kind, name), ["main"], "{kind} {name}");
        }
        // The environment's namespace is on the management cluster (Cluster API's Cluster lives
        // there) and on every cluster where something of it runs.
        assert_eq!(placed(&index, KindId::Environment, "production"), ["(management)", "main"]);
        assert_eq!(placed(&index, KindId::Environment, "staging"), ["(management)"]);
        // What is not placed stays with the operator.
        for (kind, name) in [(KindId::ContainerCluster, "main"), (KindId::Policy, "deployers")] {
            assert_eq!(placed(&index, kind, name), ["(management)"], "{kind} {name}");
        }
    }

    #[test]
    fn a_domain_goes_where_the_gateways_in_front_of_it_run() {
        // The gateway public serves another name: acme.example is in front of nothing.
        let index = index_edited("", |doc| {
            if doc["kind"] == "Gateway" {
                doc["spec"]["gatewayConfig"]["host"] = json!("shop.acme.example.org");
            }
        });
        assert_eq!(placed(&index, KindId::Domain, "acme-example"), ["(management)"]);
        assert_eq!(placed(&index, KindId::DnsRecord, "www"), ["(management)"]);
        // The domain's own name is in front of it too, in any case.
        let index = index_edited("", |doc| {
            if doc["kind"] == "Gateway" {
                doc["spec"]["gatewayConfig"]["host"] = json!("ACME.example.");
            }
        });
        assert_eq!(placed(&index, KindId::Domain, "acme-example"), ["main"]);
        // Its gateway's changes wake it, and its changes wake its records.
        let gateway = index.get::<Gateway>(Some("acme"), "public").expect("the gateway");
        assert_eq!(gateway.followers(&index), [(KindId::Domain, "acme-example".to_owned())]);
        let domain = index.get::<Domain>(Some("acme"), "acme-example").expect("the domain");
        assert_eq!(domain.followers(&index), [(KindId::DnsRecord, "www".to_owned())]);
    }

    #[test]
    fn a_stack_names_its_cluster_and_is_refused_a_choice_it_cannot_make() {
        let second = "apiVersion: windflow.io/v1alpha1\nkind: ContainerCluster\nmetadata: { name: spare, namespace: acme }\n\
                      spec: { elementRef: { name: k8s }, clusterMode: kubernetes, version: v1.33.1, clusterConfig: { class: acme-standard } }";
        let index = index_with(second);
        let refused = destinations(&index, KindId::Application, "acme", "api").expect_err("two candidates");
        assert_eq!(
            refused.to_string(),
            "spec.stackRef → containerClusterRef: Element \"k8s\" holds several kubernetes ContainerClusters (main, spare): \
             the stack names the one its applications run on"
        );
        let named = format!(
            "{second}\n---\napiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: {{ name: cart, namespace: acme }}\n\
             spec: {{ elementRef: {{ name: k8s }}, containerClusterRef: {{ name: spare }} }}"
        );
        assert_eq!(placed(&index_with(&named), KindId::Stack, "cart"), ["spare"]);
        let missing = "apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: cart, namespace: acme }\n\
                       spec: { elementRef: { name: k8s }, containerClusterRef: { name: nowhere } }";
        let waiting = destinations(&index_with(missing), KindId::Stack, "acme", "cart").expect_err("no such cluster");
        assert!(matches!(waiting, ProvisionError::Missing(_)), "{waiting}");
    }

    #[test]
    fn docker_and_swarm_engines_are_refused_by_name_and_mode_never_replaced() {
        let swarm = "apiVersion: windflow.io/v1alpha1\nkind: Element\nmetadata: { name: engines, namespace: acme }\n\
                     spec: { environmentRef: { name: staging }, elementType: container_cluster }\n---\n\
                     apiVersion: windflow.io/v1alpha1\nkind: ContainerCluster\nmetadata: { name: swarmy, namespace: acme }\n\
                     spec: { elementRef: { name: engines }, clusterMode: swarm, endpoint: { url: 'https://10.0.0.9:2376' } }\n---\n\
                     apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: legacy, namespace: acme }\n\
                     spec: { elementRef: { name: engines } }\n---\n\
                     apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: pinned, namespace: acme }\n\
                     spec: { elementRef: { name: k8s }, containerClusterRef: { name: swarmy } }";
        let index = index_with(swarm);
        for (stack, field) in [("legacy", "spec.elementRef"), ("pinned", "spec.containerClusterRef")] {
            let refused = destinations(&index, KindId::Stack, "acme", stack).expect_err("an engine");
            assert_eq!(
                refused.to_string(),
                format!(
                    "{field}: ContainerCluster \"swarmy\" is a swarm engine: WindFlow places applications on kubernetes \
                     clusters only"
                )
            );
        }
    }

    #[test]
    fn a_moving_stack_keeps_its_environment_on_the_cluster_it_leaves_until_its_copies_are_gone() {
        let spare = "apiVersion: windflow.io/v1alpha1\nkind: ContainerCluster\nmetadata: { name: spare, namespace: acme }\n\
                     spec: { elementRef: { name: k8s }, clusterMode: kubernetes, clusterConfig: { kubeconfigSecret: s } }";
        // shop and its VM now name spare.
        let moved = |doc: &mut Value| {
            if matches!(doc["kind"].as_str(), Some("Stack" | "VM")) {
                doc["spec"]["containerClusterRef"] = json!({ "name": "spare" });
            }
        };
        // api's status still says its old copies are on main.
        let index = index_edited(spare, |doc| {
            moved(doc);
            if doc["kind"] == "Application" && doc["metadata"]["name"] == "api" {
                doc["status"]["placement"] = json!({ "cluster": "main,spare" });
            }
        });
        assert_eq!(placed(&index, KindId::Stack, "shop"), ["spare"]);
        assert_eq!(placed(&index, KindId::Environment, "production"), ["(management)", "main", "spare"]);
        let settled = index_edited(spare, moved);
        assert_eq!(placed(&settled, KindId::Environment, "production"), ["(management)", "spare"]);
    }

    #[test]
    fn a_stack_on_an_element_without_clusters_runs_on_the_management_cluster() {
        let bare = "apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: tools, namespace: acme }\n\
                    spec: { elementRef: { name: metal } }";
        assert_eq!(placed(&index_with(bare), KindId::Stack, "tools"), ["(management)"]);
    }

    #[test]
    fn a_volume_mounted_on_two_clusters_is_refused_naming_both() {
        let elsewhere = "apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: tools, namespace: acme }\n\
                         spec: { elementRef: { name: metal } }\n---\n\
                         apiVersion: windflow.io/v1alpha1\nkind: Application\nmetadata: { name: backup, namespace: acme }\n\
                         spec: { stackRef: { name: tools }, applicationType: container, deploymentConfig: { image: busybox },\n\
                                 volumes: [{ volume: uploads, mountPath: /data }] }";
        let refused =
            destinations(&index_with(elsewhere), KindId::Volume, "acme", "uploads").expect_err("two clusters");
        let message = refused.to_string();
        assert!(message.contains("a claim cannot span clusters"), "{message}");
        assert!(message.contains("Application backup runs on the management cluster"), "{message}");
        assert!(message.contains("Application api runs on ContainerCluster acme/main"), "{message}");
    }

    #[test]
    fn another_tenant_cannot_place_anything_on_a_cluster_it_does_not_own() {
        let globex = "apiVersion: windflow.io/v1alpha1\nkind: Organization\nmetadata: { name: globex }\nspec: {}\n---\n\
                      apiVersion: windflow.io/v1alpha1\nkind: Environment\nmetadata: { name: prod, namespace: globex }\n\
                      spec: { environmentType: production }\n---\n\
                      apiVersion: windflow.io/v1alpha1\nkind: Element\nmetadata: { name: k8s, namespace: globex }\n\
                      spec: { environmentRef: { name: prod }, elementType: container_cluster }\n---\n\
                      apiVersion: windflow.io/v1alpha1\nkind: Stack\nmetadata: { name: grab, namespace: globex }\n\
                      spec: { elementRef: { name: k8s }, containerClusterRef: { name: main } }";
        let index = index_with(globex);
        let refused =
            destinations(&index, KindId::Stack, "globex", "grab").expect_err("acme's cluster is not globex's");
        assert_eq!(refused.to_string(), "spec.containerClusterRef: ContainerCluster globex/main does not exist");
        assert!(!index.placed_on(&main()).iter().any(|(_, _, namespace)| namespace == "globex"));
    }

    #[test]
    fn children_carry_their_cluster_and_owner_references_stay_on_the_management_cluster() {
        let index = index_with("");
        let config = Config::default();
        let inputs = Inputs::offline(&index, &config);
        let environment = index.get::<Environment>(Some("acme"), "production").expect("production");
        let placement = place(environment.as_ref(), &index).expect("placed");
        assert_eq!(names(&placement.clusters), ["(management)", "main"]);
        let built = children(environment.as_ref(), &placement, &inputs).expect("children");
        let on = |cluster: &Destination| built.iter().filter(|child| child.cluster == *cluster).count();
        assert_eq!(on(&Destination::Management), on(&main()), "the same objects on each cluster");
        let api = index.get::<Application>(Some("acme"), "api").expect("api");
        let placement = place(api.as_ref(), &index).expect("placed");
        assert_eq!((placement.cluster_names(), placement.workload_namespace()), ("main".into(), "acme-production"));
        for child in children(api.as_ref(), &placement, &inputs).expect("children") {
            assert_eq!(child.cluster, main());
            assert!(child.object.metadata.owner_references.is_none(), "no owner reference crosses clusters");
            let labels = child.object.metadata.labels.clone().unwrap_or_default();
            assert_eq!(labels.get(crate::provision::labels::OWNER_UID), api.meta().uid.as_ref());
        }
    }

    #[test]
    fn what_is_placed_on_a_cluster_is_what_its_changes_wake() {
        let index = index_with("");
        let mut woken: Vec<String> =
            index.placed_on(&main()).into_iter().map(|(kind, name, _)| format!("{kind} {name}")).collect();
        woken.sort();
        let expected = [
            "Application api",
            "Application postgres",
            "Application storefront",
            "DnsRecord www",
            "Domain acme-example",
            "Environment production",
            "Gateway public",
            "Network backend",
            "Network frontend",
            "Stack shop",
            "VM legacy-erp",
            "Volume pgdata",
            "Volume uploads",
        ];
        assert_eq!(woken, expected);
        assert!(index.placed_on(&Destination::Management).is_empty(), "the management cluster never goes away");
    }

    #[test]
    fn what_still_holds_children_on_a_cluster_it_left_is_woken_by_it() {
        // shop moved to the management cluster; api's copies on main are not released yet
        // (main does not answer, or api is being deleted): main answering again wakes api.
        let index = index_edited("", |doc| {
            if doc["kind"] == "ContainerCluster" {
                doc["spec"]["elementRef"]["name"] = json!("elsewhere");
            }
            if doc["kind"] == "Application" && doc["metadata"]["name"] == "api" {
                doc["status"]["placement"] = json!({ "cluster": "main" });
            }
        });
        assert_eq!(placed(&index, KindId::Application, "api"), ["(management)"]);
        let woken: Vec<String> =
            index.placed_on(&main()).into_iter().map(|(kind, name, _)| format!("{kind} {name}")).collect();
        assert!(woken.contains(&"Application api".to_owned()), "{woken:?}");
        assert!(!woken.contains(&"Application storefront".to_owned()), "{woken:?}");
    }

    #[test]
    fn what_holds_children_on_a_cluster_is_named_with_whether_it_is_being_deleted() {
        let index = index_edited("", |doc| {
            let name = doc["metadata"]["name"].clone();
            if doc["kind"] == "Application" && (name == "api" || name == "storefront") {
                doc["status"]["placement"] = json!({ "cluster": "main" });
            }
            if doc["kind"] == "Application" && name == "api" {
                doc["metadata"]["deletionTimestamp"] = json!("2026-12-06T12:00:00Z");
            }
            // Held elsewhere: not main's.
            if doc["kind"] == "Application" && name == "postgres" {
                doc["status"]["placement"] = json!({ "cluster": "spare" });
            }
        });
        let holding = index.holding_children_on(&main());
        let applications: Vec<_> = holding.into_iter().filter(|holder| holder.kind == KindId::Application).collect();
        let application = |name: &str, deleting| Holder { kind: KindId::Application, name: name.to_owned(), deleting };
        assert_eq!(applications, [application("api", true), application("storefront", false)]);
        assert!(index.holding_children_on(&Destination::Management).is_empty());
    }
}
