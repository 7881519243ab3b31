//! ContainerNode: a node of a container cluster, mirrored.

use kube::ResourceExt;
use serde::Serialize;
use uuid::Uuid;

use super::shared::{columns, linked, networks, phase_column};
use super::{Kind, KindId};
use crate::api::common::{CommonStatus, FreeForm};
use crate::api::infra::NodeRole;
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::Result;

pub use crate::api::infra::ContainerNode;

pub static NETWORK_CONTAINER_NODES: JoinTable =
    JoinTable { table: "network_container_nodes", owner: "node_id", key: &["network_id"], values: &["ip_address"] };

/// A `container_nodes` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct ContainerNodeRow<'a> {
    name: String,
    cluster_id: Uuid,
    hostname: Option<&'a str>,
    ip_address: Option<&'a str>,
    node_role: &'a NodeRole,
    cpu_cores: Option<i32>,
    memory_gb: Option<f64>,
    disk_gb: Option<f64>,
    node_config: &'a FreeForm,
}

impl Kind for ContainerNode {
    const ID: KindId = KindId::ContainerNode;
    const TABLE: &'static str = "container_nodes";
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "joining"),
        StatusColumn { field: "lastHeartbeat", column: "last_heartbeat", default: None },
    ];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(KindId::ContainerCluster, &self.spec.cluster_ref.name, "spec.clusterRef"))
            .chain(networks(&self.spec.networks).map(|(r, _)| r))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let cluster = Reference::new(KindId::ContainerCluster, &spec.cluster_ref.name, "spec.clusterRef");
        Ok(Rows {
            row: columns(&ContainerNodeRow {
                name: self.name_any(),
                cluster_id: resolved.id(&cluster)?,
                hostname: spec.hostname.as_deref(),
                ip_address: spec.ip_address.as_deref(),
                node_role: &spec.node_role,
                cpu_cores: spec.cpu_cores,
                memory_gb: spec.memory_gb,
                disk_gb: spec.disk_gb,
                node_config: &spec.node_config,
            })?,
            joins: vec![linked(&NETWORK_CONTAINER_NODES, networks(&spec.networks), resolved)?],
        })
    }
}
