//! Element: a piece of infrastructure of an environment, of one type; its phase follows the
//! objects on it.

use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

use k8s_openapi::jiff::Timestamp;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::shared::{
    Standing, columns, first_unready, in_maintenance, phase_column, standings, tag_rows, tag_table, tags,
};
use super::{
    Application, ContainerCluster, Domain, Gathered, Index, Inputs, Kind, KindId, Network, PhysicalHost, Stack, VM,
    Volume,
};
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// An infrastructure element of an environment (tables `elements`, `element_tags`): the place
/// clusters, VMs, hosts, networks, volumes, domains and stacks belong to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Element",
    namespaced,
    category = "windflow",
    shortname = "wfel",
    status = "ElementStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.elementType"),
    printcolumn(name = "Environment", type_ = "string", json_path = ".spec.environmentRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("an element name has at most 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct ElementSpec {
    /// What the element is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Environment the element belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("environmentRef is immutable"))]
    pub environment_ref: ObjectRef,
    /// What kind of infrastructure this is (seed `element_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementType is immutable"))]
    pub element_type: ElementType,
    /// Element configuration (free-form).
    #[serde(default)]
    pub configuration: FreeForm,
    /// How Prometheus scrapes the container applications of the stacks on the element.
    #[serde(default)]
    pub monitoring_config: MonitoringConfig,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// How the Prometheus Operator scrapes the container applications of the stacks on an element:
/// a ServiceMonitor (through the application's Service) or a PodMonitor (its pods) each, where
/// the cluster they run on serves that API. Stored as the seed's `monitoring_config` JSON.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringConfig {
    /// Scrape them. Off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `service` (default): a ServiceMonitor; `pod`: a PodMonitor, for applications whose
    /// pods are scraped one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorKind>,
    /// The port scraped, by name (`deploymentConfig.ports`); the application's first port
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub port: Option<String>,
    /// The HTTP path of the metrics; `/metrics` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), regex(pattern = r"^/"))]
    pub path: Option<String>,
    /// How often, as Prometheus writes a duration (`30s`, `1m`); Prometheus' own otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: Option<String>,
    /// Labels on each monitor, for the Prometheus that selects them
    /// (`serviceMonitorSelector`, `podMonitorSelector`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Which monitor an application gets.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MonitorKind {
    #[default]
    Service,
    Pod,
}

impl MonitoringConfig {
    pub fn enabled(&self) -> bool {
        self.enabled == Some(true)
    }
}

/// Seed `element_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ElementType {
    ContainerCluster,
    Vm,
    PhysicalHost,
    Domain,
    Network,
    Volume,
    Gateway,
}

impl ElementType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCluster => "container_cluster",
            Self::Vm => "vm",
            Self::PhysicalHost => "physical_host",
            Self::Domain => "domain",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Gateway => "gateway",
        }
    }
}

/// Status of an Element.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElementStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `elements.status`: inactive, provisioning, active, error, maintenance, terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ElementPhase>,
    /// Seed `elements.last_health_check`: when WindFlow last found the objects on the element
    /// standing otherwise (its phase changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_health_check: Option<String>,
}

kind_status!(ElementStatus);

seed_values! {
    /// The values of `ElementStatus.phase`: the seed's check on the column it mirrors.
    ElementPhase { Inactive, Provisioning, Active, Error, Maintenance, Terminated }
}

pub static ELEMENT_TAGS: JoinTable = tag_table("element_tags", "element_id");

/// A `elements` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct ElementRow<'a> {
    name: String,
    description: Option<&'a str>,
    environment_id: Uuid,
    element_type: &'a str,
    configuration: &'a FreeForm,
    monitoring_config: &'a MonitoringConfig,
}

impl Kind for Element {
    const ID: KindId = KindId::Element;
    const TABLE: &'static str = "elements";
    type Children = NoChildren;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "inactive"),
        StatusColumn { field: "lastHealthCheck", column: "last_health_check", default: None },
    ];
    const OBSERVES_OTHERS: bool = true;

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(KindId::Environment, &self.spec.environment_ref.name, "spec.environmentRef"))
            .chain(tags(&self.spec.tags))
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let environment = Reference::new(KindId::Environment, &spec.environment_ref.name, "spec.environmentRef");
        Ok(Rows {
            row: columns(&ElementRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                environment_id: resolved.id(&environment)?,
                element_type: spec.element_type.as_str(),
                configuration: &spec.configuration,
                monitoring_config: &spec.monitoring_config,
            })?,
            joins: vec![tag_rows(&ELEMENT_TAGS, &spec.tags, resolved)?],
        })
    }

    /// The element's phase follows the objects on it (their status changes wake it), and the
    /// time it was last weighed differently.
    fn observe(&self, _: &[DynamicObject], inputs: &Inputs) -> ElementStatus {
        let standings: Vec<Standing> = self.objects_on(inputs.index).into_iter().map(|(_, s)| s).collect();
        let now = phase_of(in_maintenance(self), &standings, inputs.arriving.is_some());
        let before = self.status.as_ref();
        let checked = health_checked_at(
            before.and_then(|s| s.last_health_check.as_deref()),
            before.and_then(|s| s.phase) != Some(now),
            Timestamp::now(),
        );
        ElementStatus { phase: Some(now), last_health_check: Some(checked), ..Default::default() }
    }

    /// The applications on it, which its `monitoringConfig` shapes.
    fn governed(&self, index: &Index) -> Vec<(KindId, String, String)> {
        let namespace = self.namespace().unwrap_or_default();
        let applications = self.applications(index).into_iter();
        applications.map(|application| (KindId::Application, application.name_any(), namespace.clone())).collect()
    }

    /// An element works while everything on it does: one that needs users is its fault too.
    fn gathered(&self, inputs: &Inputs) -> Option<Gathered> {
        let on = self.objects_on(inputs.index);
        if on.is_empty() {
            return Some(Gathered::Nothing("nothing stands on it yet".to_owned()));
        }
        first_unready(&on)
    }
}

impl Element {
    /// The applications of the stacks on the element.
    pub fn applications(&self, index: &Index) -> Vec<Arc<Application>> {
        let stacks = index.children::<Stack, _>(self);
        stacks.iter().flat_map(|stack| index.children::<Application, _>(stack.as_ref())).collect()
    }

    /// The objects on the element, and how they stand.
    fn objects_on(&self, index: &Index) -> Vec<(String, Standing)> {
        [
            standings::<Volume, _>(index, self),
            standings::<Network, _>(index, self),
            standings::<VM, _>(index, self),
            standings::<ContainerCluster, _>(index, self),
            standings::<PhysicalHost, _>(index, self),
            standings::<Domain, _>(index, self),
            standings::<Stack, _>(index, self),
        ]
        .concat()
    }
}

/// The phase of an element whose objects stand as `standings`: maintenance when users say so;
/// inactive with nothing on it (provisioning while what stands on it may still be `arriving`);
/// error while one is broken; provisioning while one is not ready.
fn phase_of(maintenance: bool, standings: &[Standing], arriving: bool) -> ElementPhase {
    if maintenance {
        ElementPhase::Maintenance
    } else if standings.is_empty() && arriving {
        ElementPhase::Provisioning
    } else if standings.is_empty() {
        ElementPhase::Inactive
    } else if standings.contains(&Standing::Broken) {
        ElementPhase::Error
    } else if standings.contains(&Standing::Pending) {
        ElementPhase::Provisioning
    } else {
        ElementPhase::Active
    }
}

/// When the element's health was last weighed differently: `now` if the phase changed (or was
/// never weighed), else the last time. A weighing that finds the same is no news: recording
/// its time would write the status, its row and an audit row at every resync of an idle
/// platform.
fn health_checked_at(last: Option<&str>, changed: bool, now: Timestamp) -> String {
    match last.filter(|at| at.parse::<Timestamp>().is_ok()) {
        Some(at) if !changed => at.to_owned(),
        _ => now.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_follows_the_objects_on_it() {
        use Standing::{Broken, Pending, Ready};
        assert_eq!(phase_of(false, &[], false), ElementPhase::Inactive);
        assert_eq!(phase_of(false, &[], true), ElementPhase::Provisioning, "new: its objects are on their way");
        assert_eq!(phase_of(false, &[Ready, Ready], true), ElementPhase::Active);
        assert_eq!(phase_of(false, &[Ready, Pending], false), ElementPhase::Provisioning);
        assert_eq!(phase_of(false, &[Pending, Broken], false), ElementPhase::Error);
        assert_eq!(phase_of(true, &[Broken], true), ElementPhase::Maintenance);
    }

    #[test]
    fn a_health_check_is_recorded_when_the_phase_changes_only() {
        let now: Timestamp = "2026-12-03T10:00:00Z".parse().expect("time");
        let long_ago = "2026-11-03T09:59:30Z";
        assert_eq!(health_checked_at(Some(long_ago), false, now), long_ago);
        assert_eq!(health_checked_at(Some(long_ago), true, now), "2026-12-03T10:00:00Z");
        assert_eq!(health_checked_at(Some("not a time"), false, now), "2026-12-03T10:00:00Z");
        assert_eq!(health_checked_at(None, false, now), "2026-12-03T10:00:00Z");
    }
}
