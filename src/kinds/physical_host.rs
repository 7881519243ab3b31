//! PhysicalHost: a server of an environment, mirrored; in service or in maintenance.

use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, NetworkAttachment, ObjectRef, Reference, Resolved};
use super::shared::{columns, element, in_maintenance, linked, networks, phase_column};
use super::{Inputs, Kind, KindId};
use crate::free_form::FreeForm;
use crate::kinds::vm::OsType;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// A physical server on a `physical_host` element (tables `physical_hosts`,
/// `network_physical_hosts`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "PhysicalHost",
    namespaced,
    category = "windflow",
    shortname = "wfhost",
    status = "PhysicalHostStatus",
    printcolumn(name = "Hostname", type_ = "string", json_path = ".spec.hostname"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a host name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostSpec {
    /// The Element (of type `physical_host`) the host belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// CPU cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cpu_cores: Option<i32>,
    /// Memory in GB (DECIMAL(8,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 999_999.99))]
    pub memory_gb: Option<f64>,
    /// Disk in GB (DECIMAL(10,2)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 99_999_999.99))]
    pub disk_gb: Option<f64>,
    /// Operating system family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_type: Option<OsType>,
    /// Operating system version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub os_version: Option<String>,
    /// Out-of-band access (BMC/IPMI) and host configuration (free-form).
    #[serde(default)]
    pub host_config: FreeForm,
    /// Networks the host is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub networks: Vec<NetworkAttachment>,
}

/// Status of a PhysicalHost.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalHostStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `physical_hosts.status`: provisioning, active, maintenance, error, decommissioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PhysicalHostPhase>,
}

kind_status!(PhysicalHostStatus);

seed_values! {
    /// The values of `PhysicalHostStatus.phase`: the seed's check on the column it mirrors.
    PhysicalHostPhase { Provisioning, Active, Maintenance, Error, Decommissioned }
}

pub static NETWORK_PHYSICAL_HOSTS: JoinTable = JoinTable {
    table: "network_physical_hosts",
    owner: "physical_host_id",
    key: &["network_id"],
    values: &["ip_address"],
};

/// A `physical_hosts` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct PhysicalHostRow<'a> {
    name: String,
    element_id: Uuid,
    hostname: Option<&'a str>,
    ip_address: Option<&'a str>,
    cpu_cores: Option<i32>,
    memory_gb: Option<f64>,
    disk_gb: Option<f64>,
    os_type: &'a Option<OsType>,
    os_version: Option<&'a str>,
    host_config: &'a FreeForm,
}

impl Kind for PhysicalHost {
    const ID: KindId = KindId::PhysicalHost;
    const TABLE: &'static str = "physical_hosts";
    type Children = NoChildren;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "provisioning")];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(element(&self.spec.element_ref)).chain(networks(&self.spec.networks).map(|(r, _)| r)).collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&PhysicalHostRow {
                name: self.name_any(),
                element_id: resolved.element_of_type(&element(&spec.element_ref), "physical_host")?,
                hostname: spec.hostname.as_deref(),
                ip_address: spec.ip_address.as_deref(),
                cpu_cores: spec.cpu_cores,
                memory_gb: spec.memory_gb,
                disk_gb: spec.disk_gb,
                os_type: &spec.os_type,
                os_version: spec.os_version.as_deref(),
                host_config: &spec.host_config,
            })?,
            joins: vec![linked(&NETWORK_PHYSICAL_HOSTS, networks(&spec.networks), resolved)?],
        })
    }

    /// A declared host is in service once mirrored (WindFlow installs nothing on it), or in
    /// maintenance when users say so.
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> PhysicalHostStatus {
        let phase = if in_maintenance(self) { PhysicalHostPhase::Maintenance } else { PhysicalHostPhase::Active };
        PhysicalHostStatus { phase: Some(phase), ..Default::default() }
    }
}
