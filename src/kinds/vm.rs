//! VM → KubeVirt VirtualMachine.

use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use uuid::Uuid;

use super::common::{CommonStatus, NetworkAttachment, ObjectRef, Reference, Resolved};
use super::network::{Attachments, Join, attach, attachment_label};
use super::shared::{
    PLACEMENT_COLUMN, applied_text, columns, element, gigabytes, linked, metadata, networks, phase_column, text,
    volumes, without_condition,
};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::third_party::{
    Chosen, DataVolumeSource, DataVolumeSpec, DataVolumeStorage, DataVolumeTemplate, InterfaceBinding, MachineCpu,
    MachineDevices, MachineDisk, MachineDomain, MachineInstanceSpec, MachineInterface, MachineMemory, MachineNetwork,
    MachineTemplate, MachineVolume, NetworkAttachmentDefinition, NetworkSource, StorageRequests, VirtualMachine,
    VirtualMachineSpec, VolumeSource,
};
use crate::provision::types::{DATA_VOLUME, VIRTUAL_MACHINE};
use crate::provision::{Anchor, ChildType, DeletionPolicy, Placement, ProvisionError, Result};

/// A virtual machine on a `vm` element (tables `vms`, `volume_vms`, `network_vms`). Short name
/// `wfvm`, since `vm` belongs to KubeVirt.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "VM",
    plural = "vms",
    singular = "vm",
    namespaced,
    category = "windflow",
    shortname = "wfvm",
    status = "VmStatus",
    printcolumn(name = "CPU", type_ = "integer", json_path = ".spec.cpuCores"),
    printcolumn(name = "Memory", type_ = "number", json_path = ".spec.memoryGb"),
    printcolumn(name = "OS", type_ = "string", json_path = ".spec.osType"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a VM name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct VMSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `vm`) the VM belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// The Stack that manages the VM, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_ref: Option<ObjectRef>,
    /// The kubernetes ContainerCluster (same namespace) whose KubeVirt runs the VM. Unset: the
    /// management cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_cluster_ref: Option<ObjectRef>,
    /// CPU cores.
    #[schemars(range(min = 1))]
    pub cpu_cores: i32,
    /// Memory in GB (DECIMAL(6,2)).
    // The API server compares a whole number with a fractional minimum rounded down (0 passes
    // `minimum: 0.01`): the rule holds the floor for whole numbers too.
    #[schemars(range(min = 0.01, max = 9999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("memoryGb is at least 0.01"))]
    pub memory_gb: f64,
    /// Disk in GB (DECIMAL(8,2)).
    #[schemars(range(min = 0.01, max = 999_999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("diskGb is at least 0.01"))]
    pub disk_gb: f64,
    /// Operating system family (seed `vm_os_type_check`).
    pub os_type: OsType,
    /// Operating system version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub os_version: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// Hypervisor, such as `kvm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub hypervisor_type: Option<String>,
    /// VM configuration (free-form).
    #[serde(default)]
    pub vm_config: FreeForm,
    /// Names of Volumes attached to the VM.
    #[serde(default)]
    pub volumes: Vec<String>,
    /// Networks the VM is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub networks: Vec<NetworkAttachment>,
}

seed_values! {
    /// Seed `vm_os_type_check`.
    OsType { Linux, Windows, Freebsd, Other }
}

/// Status of a VM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VmStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `vms.status`: creating, starting, running, stopping, stopped, error, destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VmPhase>,
}

kind_status!(VmStatus);

seed_values! {
    /// The values of `VmStatus.phase`: the seed's check on the column it mirrors.
    VmPhase { Creating, Starting, Running, Stopping, Stopped, Error, Destroyed }
}

pub static VOLUME_VMS: JoinTable = JoinTable { table: "volume_vms", owner: "vm_id", key: &["volume_id"], values: &[] };
pub static NETWORK_VMS: JoinTable =
    JoinTable { table: "network_vms", owner: "vm_id", key: &["network_id"], values: &["ip_address"] };

/// A `vms` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct VMRow<'a> {
    name: String,
    element_id: Uuid,
    stack_id: Option<Uuid>,
    cpu_cores: i32,
    memory_gb: f64,
    disk_gb: f64,
    os_type: &'a OsType,
    os_version: Option<&'a str>,
    ip_address: Option<&'a str>,
    hostname: Option<&'a str>,
    hypervisor_type: Option<&'a str>,
    vm_config: &'a FreeForm,
}

child_set! {
    /// What a VM provisions: its KubeVirt VirtualMachine, and the Multus definitions of its
    /// fixed addresses.
    VmChild { VirtualMachine, NetworkAttachmentDefinition }
}

impl Kind for VM {
    const ID: KindId = KindId::VM;
    const TABLE: &'static str = "vms";
    type Children = VmChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating"), PLACEMENT_COLUMN];

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        std::iter::once(element(&spec.element_ref))
            .chain(spec.stack_ref.iter().map(|s| Reference::new(KindId::Stack, &s.name, "spec.stackRef")))
            .chain(volumes(&spec.volumes).map(|(r, _)| r))
            .chain(networks(&spec.networks).map(|(r, _)| r))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = spec
            .stack_ref
            .as_ref()
            .map(|s| resolved.id(&Reference::new(KindId::Stack, &s.name, "spec.stackRef")))
            .transpose()?;
        Ok(Rows {
            row: columns(&VMRow {
                name: self.name_any(),
                element_id: resolved.element_of_type(&element(&spec.element_ref), "vm")?,
                stack_id: stack,
                cpu_cores: spec.cpu_cores,
                memory_gb: spec.memory_gb,
                disk_gb: spec.disk_gb,
                os_type: &spec.os_type,
                os_version: spec.os_version.as_deref(),
                ip_address: spec.ip_address.as_deref(),
                hostname: spec.hostname.as_deref(),
                hypervisor_type: spec.hypervisor_type.as_deref(),
                vm_config: &spec.vm_config,
            })?,
            joins: vec![
                linked(&VOLUME_VMS, volumes(&spec.volumes), resolved)?,
                linked(&NETWORK_VMS, networks(&spec.networks), resolved)?,
            ],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn container_cluster(&self) -> Option<&str> {
        self.spec.container_cluster_ref.as_ref().map(|named| named.name.as_str())
    }

    fn consults(&self) -> &'static [ChildType] {
        &[DATA_VOLUME]
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<VmChild>> {
        let machine = Machine {
            cpu_cores: self.spec.cpu_cores,
            memory_gb: self.spec.memory_gb,
            disk_gb: self.spec.disk_gb,
            os: self.spec.os_type.into(),
            os_version: self.spec.os_version.clone(),
            config: &self.spec.vm_config,
            config_field: "spec.vmConfig",
            volumes: &self.spec.volumes,
            joins: (self.spec.networks.iter().enumerate())
                .map(|(i, n)| Join::listed(i, &n.network, n.ip_address.as_ref()))
                .collect(),
            object_namespace: self.namespace().unwrap_or_default(),
            halted: inputs
                .index
                .suspension(&self.namespace().unwrap_or_default(), placement.environment.as_deref())
                .is_some(),
        };
        Ok(machine.virtual_machine(placement.workload_namespace(), &self.name_any(), inputs)?.into_children())
    }

    /// KubeVirt's `printableStatus`, its summary of the VirtualMachine and its instance.
    /// A machine asked to run works once KubeVirt says it is Ready; one asked to stay stopped
    /// works once applied.
    fn not_working(&self, applied: &[DynamicObject], inputs: &Inputs) -> Option<String> {
        machine_not_working(&self.spec.vm_config, inputs.index.suspension_of(self).is_some(), applied)
    }

    fn faulted(&self) -> VmStatus {
        VmStatus { phase: Some(VmPhase::Error), ..Default::default() }
    }

    fn observe(&self, applied: &[DynamicObject], _: &Inputs) -> VmStatus {
        let status = match applied_text(applied, VIRTUAL_MACHINE.kind, "/status/printableStatus") {
            None | Some("Provisioning" | "WaitingForVolumeBinding" | "WaitingForReceiver") => VmPhase::Creating,
            Some("Starting") => VmPhase::Starting,
            Some("Running" | "Migrating") => VmPhase::Running,
            Some("Stopping" | "Terminating") => VmPhase::Stopping,
            Some("Stopped" | "Paused") => VmPhase::Stopped,
            // ErrorUnschedulable, ErrImagePull, CrashLoopBackOff, DataVolumeError, Unknown...
            Some(_) => VmPhase::Error,
        };
        VmStatus { phase: Some(status), ..Default::default() }
    }
}

/// Why a VirtualMachine configured by `config` (its `powerState`), or `halted` whatever that
/// says, does not work yet.
pub(super) fn machine_not_working(config: &FreeForm, halted: bool, applied: &[DynamicObject]) -> Option<String> {
    let stopped = halted || text(config, "powerState") == Some("stopped");
    if stopped { None } else { without_condition(applied, VIRTUAL_MACHINE.kind, "Ready") }
}

/// What a KubeVirt VirtualMachine is made of, from a VM or a `vm` Application.
pub(super) struct Machine<'a> {
    pub cpu_cores: i32,
    pub memory_gb: f64,
    pub disk_gb: f64,
    /// The `kubevirt.io/os` label.
    pub os: &'a str,
    pub os_version: Option<String>,
    /// `powerState` (running, stopped) and `image` (a container disk image to boot from).
    pub config: &'a FreeForm,
    pub config_field: &'a str,
    /// Volumes attached as extra disks (their claims have the volume's name).
    pub volumes: &'a [String],
    pub joins: Vec<Join<'a>>,
    /// The WindFlow object's namespace, where its Networks are.
    pub object_namespace: String,
    /// Stopped whatever `powerState` says (a stopped application's machine).
    pub halted: bool,
}

impl Machine<'_> {
    /// The VirtualMachine, with the NetworkAttachmentDefinitions of its fixed addresses.
    pub fn virtual_machine(&self, namespace: &str, name: &str, inputs: &Inputs) -> Result<MachineChildren> {
        let run_strategy = match text(self.config, "powerState").unwrap_or("running") {
            "running" if self.halted => "Halted",
            "running" => "Always",
            "stopped" => "Halted",
            other => {
                return Err(ProvisionError::invalid(
                    &format!("{}.powerState", self.config_field),
                    format!("{other:?} is not running or stopped"),
                ));
            }
        };
        // The root disk is a DataVolume: without CDI, KubeVirt would accept the machine and
        // never start it.
        if !inputs.serves(DATA_VOLUME) {
            return Err(ProvisionError::NotProvided {
                field: self.config_field.to_owned(),
                message: format!(
                    "the machine's {} GB root disk is a DataVolume, and {} is not installed (the cluster does not \
                     serve {} {})",
                    self.disk_gb,
                    DATA_VOLUME.provider(),
                    DATA_VOLUME.api_version,
                    DATA_VOLUME.kind
                ),
            });
        }
        let root = format!("{name}-root");
        let source = match text(self.config, "image") {
            Some(image) => DataVolumeSource::Registry { url: format!("docker://{image}") },
            None => DataVolumeSource::Blank(Chosen {}),
        };
        let mut disks = vec![MachineDisk::virtio("root")];
        let mut volumes =
            vec![MachineVolume { name: "root".into(), source: VolumeSource::DataVolume { name: root.clone() } }];
        for volume in self.volumes {
            disks.push(MachineDisk::virtio(volume));
            let claim = VolumeSource::PersistentVolumeClaim { claim_name: volume.clone() };
            volumes.push(MachineVolume { name: volume.clone(), source: claim });
        }
        // The pod network (masquerade), then each Multus network on a bridge of its own.
        let Attachments { selected, definitions } =
            attach(name, namespace, &self.object_namespace, &self.joins, 1, inputs)?;
        let mut interfaces =
            vec![MachineInterface { name: "default".into(), binding: InterfaceBinding::Masquerade(Chosen {}) }];
        let mut networks = vec![MachineNetwork { name: "default".into(), source: NetworkSource::Pod(Chosen {}) }];
        for (network, definition) in selected {
            interfaces.push(MachineInterface { name: network.clone(), binding: InterfaceBinding::Bridge(Chosen {}) });
            networks.push(MachineNetwork { name: network, source: NetworkSource::Multus { network_name: definition } });
        }
        let mut pod_labels = BTreeMap::from([("kubevirt.io/vm".to_owned(), name.to_owned())]);
        for join in &self.joins {
            pod_labels.insert(attachment_label(join.network), "true".into());
        }
        let mut os_labels = BTreeMap::from([("kubevirt.io/os".to_owned(), self.os.to_owned())]);
        if let Some(version) = &self.os_version {
            os_labels.insert("windflow.io/os-version".into(), version.clone());
        }
        let root_disk = DataVolumeTemplate {
            metadata: ObjectMeta { name: Some(root), ..ObjectMeta::default() },
            spec: DataVolumeSpec {
                storage: DataVolumeStorage {
                    resources: StorageRequests {
                        requests: BTreeMap::from([("storage".to_owned(), Quantity(gigabytes(self.disk_gb)))]),
                    },
                },
                source,
            },
        };
        let spec = VirtualMachineSpec {
            run_strategy,
            data_volume_templates: vec![root_disk],
            template: MachineTemplate {
                metadata: ObjectMeta { labels: Some(pod_labels), ..ObjectMeta::default() },
                spec: MachineInstanceSpec {
                    domain: MachineDomain {
                        cpu: MachineCpu { cores: self.cpu_cores },
                        memory: MachineMemory { guest: Quantity(gigabytes(self.memory_gb)) },
                        devices: MachineDevices { disks, interfaces },
                    },
                    networks,
                    volumes,
                },
            },
        };
        let machine = third_party(ObjectMeta { labels: Some(os_labels), ..metadata(Some(namespace), name) }, spec);
        Ok(MachineChildren { definitions, machine })
    }
}

/// A machine's children: the definitions of its fixed addresses, and the VirtualMachine.
pub(super) struct MachineChildren {
    pub definitions: Vec<NetworkAttachmentDefinition>,
    pub machine: VirtualMachine,
}

impl MachineChildren {
    /// As the children of a kind that builds both.
    pub fn into_children<C: From<NetworkAttachmentDefinition> + From<VirtualMachine>>(self) -> Vec<C> {
        self.definitions.into_iter().map(C::from).chain(std::iter::once(self.machine.into())).collect()
    }
}
