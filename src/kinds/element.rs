//! Element: a piece of infrastructure of an environment, of one type.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::shared::{columns, phase, phase_column, tag_rows, tag_table, tags};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, FreeForm};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::Result;

pub use crate::api::infra::{Element, ElementPhase};

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
    monitoring_config: &'a FreeForm,
}

impl Kind for Element {
    const ID: KindId = KindId::Element;
    const TABLE: &'static str = "elements";
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "inactive")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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

    /// An element is `active` once mirrored: what runs on it is provisioned by its own kinds.
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(ElementPhase::Active)
    }
}
