//! An Organization's quotas (seed `organizations.quotas`): what each object of its tenant uses,
//! and which objects go beyond them. Objects are weighed in the order they were created, as
//! Kubernetes' ResourceQuota weighs requests in the order they come: an object beyond a quota
//! uses nothing (it is not provisioned), so a later, smaller one may still fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube_quantity::ParsedQuantity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::application::{Application, ApplicationType};
use super::environment::Environment;
use super::organization::Organization;
use super::stack::Stack;
use super::vm::VM;
use super::volume::Volume;
use super::{Index, Indexed, KindId};

/// What an organization may hold: counts of its objects, and totals of what its applications,
/// VMs and volumes ask for. A quota left out is no limit. Usage (`status.usage`) has the same
/// keys.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, kube::KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quotas {
    /// Environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub environments: Option<i32>,
    /// Stacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub stacks: Option<i32>,
    /// Applications, of any type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub applications: Option<i32>,
    /// Volumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub volumes: Option<i32>,
    /// CPU, a Kubernetes quantity ("16", "500m"): each container application's
    /// `allocatedResources.cpu` times its pods (`maxReplicas` when autoscaled, else
    /// `deploymentConfig.replicas`, else one), each vm application's and VM's `cpuCores`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("cpu is a quantity, such as \"16\" or \"500m\""))]
    pub cpu: Option<String>,
    /// Memory, a quantity ("64Gi"): as CPU, from `allocatedResources.memory` and `memoryGb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("memory is a quantity, such as \"64Gi\""))]
    pub memory: Option<String>,
    /// Storage, a quantity ("500Gi"): volumes' `sizeGb` and VMs' `diskGb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("storage is a quantity, such as \"500Gi\""))]
    pub storage: Option<String>,
}

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    Environments,
    Stacks,
    Applications,
    Volumes,
    Cpu,
    Memory,
    Storage,
}

impl Resource {
    /// Its key in `quotas` and `usage`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Environments => "environments",
            Self::Stacks => "stacks",
            Self::Applications => "applications",
            Self::Volumes => "volumes",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Storage => "storage",
        }
    }
}

/// Amounts per resource, in cores, bytes or objects. Summed as numbers: a sum of
/// `ParsedQuantity`s in different units is rounded on the way.
pub type Amounts = BTreeMap<Resource, f64>;

impl Quotas {
    /// The limits it sets; a quantity that does not parse (the CRD's rule refuses it) sets none.
    pub fn limits(&self) -> Amounts {
        let counts = [
            (Resource::Environments, self.environments),
            (Resource::Stacks, self.stacks),
            (Resource::Applications, self.applications),
            (Resource::Volumes, self.volumes),
        ];
        let quantities =
            [(Resource::Cpu, &self.cpu), (Resource::Memory, &self.memory), (Resource::Storage, &self.storage)];
        (counts.into_iter().filter_map(|(resource, count)| Some((resource, quantity(&count?.to_string())?))))
            .chain(quantities.into_iter().filter_map(|(resource, text)| Some((resource, quantity(text.as_deref()?)?))))
            .collect()
    }

    /// `amounts` as `status.usage` shows them.
    pub fn of(amounts: &Amounts) -> Self {
        let count = |resource| Some(amounts.get(&resource).map_or(0, |count| count.round() as i32));
        let total = |resource| Some(shown(resource, amounts.get(&resource).copied().unwrap_or_default()));
        Self {
            environments: count(Resource::Environments),
            stacks: count(Resource::Stacks),
            applications: count(Resource::Applications),
            volumes: count(Resource::Volumes),
            cpu: total(Resource::Cpu),
            memory: total(Resource::Memory),
            storage: total(Resource::Storage),
        }
    }
}

/// `value` of `resource` spelled one way, whatever units its terms were written in: whole
/// cores or millicores; bytes in the largest unit that divides them (Gi, Mi, G, M), else bytes.
fn shown(resource: Resource, value: f64) -> String {
    match resource {
        Resource::Cpu => {
            let millicores = (value * 1000.0).round() as i64;
            if millicores % 1000 == 0 { (millicores / 1000).to_string() } else { format!("{millicores}m") }
        }
        Resource::Memory | Resource::Storage => {
            let bytes = value.round() as i64;
            let units = [("Gi", 1 << 30), ("Mi", 1 << 20), ("G", 1_000_000_000), ("M", 1_000_000)];
            match units.iter().find(|(_, size)| bytes != 0 && bytes % size == 0) {
                Some((unit, size)) => format!("{}{unit}", bytes / size),
                None => bytes.to_string(),
            }
        }
        Resource::Environments | Resource::Stacks | Resource::Applications | Resource::Volumes => {
            (value.round() as i64).to_string()
        }
    }
}

/// A quantity in its base unit (cores, bytes).
fn quantity(text: &str) -> Option<f64> {
    ParsedQuantity::try_from(text).ok()?.to_bytes_f64()
}

/// A free-form quantity (`"500m"`, `2`), as `allocatedResources` holds them.
fn free_form_quantity(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::String(text) => quantity(text),
        Value::Number(number) => quantity(&number.to_string()),
        _ => None,
    }
}

/// Decimal gigabytes, as the seed sizes disks and memory.
fn gigabytes(size: f64) -> Option<f64> {
    Some(size * 1e9)
}

/// A tenant's object, as quotas weigh it.
struct Weighed {
    kind: KindId,
    name: String,
    created: Option<Time>,
    uses: Amounts,
}

/// What `kind`'s objects of `namespace` use, each.
fn weighed<K: Indexed>(index: &Index, namespace: &str, uses: impl Fn(&K) -> Amounts) -> Vec<Weighed> {
    let objects: Vec<Arc<K>> = index.all::<K>(Some(namespace));
    // One being deleted is on its way out: what it held is free.
    objects
        .iter()
        .filter(|obj| obj.meta().deletion_timestamp.is_none())
        .map(|obj| Weighed {
            kind: K::ID,
            name: obj.name_any(),
            created: obj.meta().creation_timestamp.clone(),
            uses: uses(obj),
        })
        .collect()
}

fn one(resource: Resource) -> Amounts {
    Amounts::from([(resource, 1.0)])
}

fn application_uses(app: &Application) -> Amounts {
    let mut uses = one(Resource::Applications);
    let config = &app.spec.deployment_config.0;
    let (cpu, memory) = match app.spec.application_type {
        ApplicationType::Container => {
            let pods = app.spec.autoscaling.as_ref().map_or_else(
                || config.get("replicas").and_then(Value::as_i64).unwrap_or(1),
                |scaling| i64::from(scaling.max_replicas),
            );
            let requested = |key| free_form_quantity(app.spec.allocated_resources.0.get(key)).map(|q| q * pods as f64);
            (requested("cpu"), requested("memory"))
        }
        ApplicationType::Vm => (
            free_form_quantity(config.get("cpuCores")),
            config.get("memoryGb").and_then(Value::as_f64).and_then(gigabytes),
        ),
        ApplicationType::Physical => (None, None),
    };
    uses.extend(cpu.map(|cpu| (Resource::Cpu, cpu)));
    uses.extend(memory.map(|memory| (Resource::Memory, memory)));
    uses
}

fn vm_uses(vm: &VM) -> Amounts {
    let spec = &vm.spec;
    let amounts = [
        (Resource::Cpu, quantity(&spec.cpu_cores.to_string())),
        (Resource::Memory, gigabytes(spec.memory_gb)),
        (Resource::Storage, gigabytes(spec.disk_gb)),
    ];
    amounts.into_iter().filter_map(|(resource, amount)| Some((resource, amount?))).collect()
}

fn volume_uses(volume: &Volume) -> Amounts {
    let mut uses = one(Resource::Volumes);
    uses.extend(gigabytes(volume.spec.size_gb).map(|size| (Resource::Storage, size)));
    uses
}

/// The tenant of `namespace`'s quotas weighed: what its objects within them use, and why each
/// object beyond them is (by kind and name). Nothing when it sets no quota.
pub struct Weighing {
    pub usage: Amounts,
    pub beyond: BTreeMap<(KindId, String), String>,
}

impl Index {
    /// The quotas of the tenant of `namespace`, weighed over its objects now.
    pub fn quotas(&self, namespace: &str) -> Weighing {
        let organization = self.tenant(namespace);
        let limits = organization.as_ref().map(|org| org.spec.quotas.limits()).unwrap_or_default();
        let mut objects = weighed::<Environment>(self, namespace, |_| one(Resource::Environments));
        objects.extend(weighed::<Stack>(self, namespace, |_| one(Resource::Stacks)));
        objects.extend(weighed::<Application>(self, namespace, application_uses));
        objects.extend(weighed::<Volume>(self, namespace, volume_uses));
        objects.extend(weighed::<VM>(self, namespace, vm_uses));
        // Created first, weighed first; one not created yet (at admission) comes last.
        objects.sort_by(|a, b| {
            (a.created.is_none(), &a.created, a.kind.to_string(), &a.name).cmp(&(
                b.created.is_none(),
                &b.created,
                b.kind.to_string(),
                &b.name,
            ))
        });
        let mut usage = Amounts::new();
        let mut beyond = BTreeMap::new();
        for object in objects {
            let exceeded = object.uses.iter().find_map(|(resource, amount)| {
                let limit = *limits.get(resource)?;
                let total = usage.get(resource).copied().unwrap_or_default() + amount;
                // Sums of decimals in binary floating point: a rounding error is no excess.
                (total > limit * (1.0 + 1e-9)).then_some((resource, limit, total))
            });
            match exceeded {
                Some((resource, limit, total)) => {
                    let organization = organization.as_ref().map(|org| org.name_any()).unwrap_or_default();
                    let why = format!(
                        "Organization {organization}'s quota {} is {}: with this {} it would use {}",
                        resource.key(),
                        shown(*resource, limit),
                        object.kind,
                        shown(*resource, total)
                    );
                    beyond.insert((object.kind, object.name), why);
                }
                None => {
                    for (resource, amount) in object.uses {
                        *usage.entry(resource).or_default() += amount;
                    }
                }
            }
        }
        Weighing { usage, beyond }
    }

    /// Why `kind` `name` of `namespace` is beyond its tenant's quotas, if it is.
    pub fn beyond_quota(&self, namespace: &str, kind: KindId, name: &str) -> Option<String> {
        // Most reconciles are of kinds quotas do not count: nothing to weigh.
        if !counted(kind) {
            return None;
        }
        let quotas = self.tenant(namespace)?.spec.quotas.limits();
        if quotas.is_empty() {
            return None;
        }
        self.quotas(namespace).beyond.remove(&(kind, name.to_owned()))
    }
}

/// Whether a kind counts towards quotas.
pub fn counted(kind: KindId) -> bool {
    matches!(kind, KindId::Environment | KindId::Stack | KindId::Application | KindId::Volume | KindId::VM)
}

/// The organization's usage, as its status shows it.
pub fn usage(org: &Organization, index: &Index) -> Quotas {
    Quotas::of(&index.quotas(&super::organization::tenant_namespace(org)).usage)
}
