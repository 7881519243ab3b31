//! PhysicalHost: a server of an environment, mirrored; in service or in maintenance.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::shared::{columns, element, in_maintenance, linked, networks, phase, phase_column};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, FreeForm};
use crate::api::infra::{OsType, PhysicalHostPhase};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::Result;

pub use crate::api::infra::PhysicalHost;

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
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "provisioning")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(if in_maintenance(self) { PhysicalHostPhase::Maintenance } else { PhysicalHostPhase::Active })
    }
}
