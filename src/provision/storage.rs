//! Volume → PersistentVolumeClaim.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use super::types::PVC;
use super::{Anchor, Inputs, Placement, Provisioned, Result, applied_text, gigabytes, phase};
use crate::api::Volume;
use crate::api::infra::AccessMode;

impl Provisioned for Volume {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let access_mode = match self.spec.access_mode {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadOnlyMany => "ReadOnlyMany",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        };
        let mut spec = json!({
            "accessModes": [access_mode],
            "resources": { "requests": { "storage": gigabytes(self.spec.size_gb) } },
        });
        let volume_type = serde_json::to_value(self.spec.volume_type).unwrap_or_default();
        if let Some(class) = volume_type.as_str().and_then(|t| inputs.config.storage_classes.get(t)) {
            spec["storageClassName"] = class.as_str().into();
        }
        Ok(vec![PVC.object(Some(placement.workload_namespace()), &self.name_any(), json!({ "spec": spec }))])
    }

    /// The claim's phase: `Bound` is `bound` when an application mounts the volume, else
    /// `available`; `Pending` is `creating`; `Lost` is `error`.
    fn observe(&self, applied: &[DynamicObject], inputs: &Inputs) -> Map<String, Value> {
        let status = match applied_text(applied, PVC.kind, "/status/phase") {
            Some("Bound") => {
                let name = self.name_any();
                let mounted = inputs.world.applications.iter().any(|app| {
                    app.namespace() == self.namespace() && app.spec.volumes.iter().any(|mount| mount.volume == name)
                });
                if mounted { "bound" } else { "available" }
            }
            Some("Lost") => "error",
            _ => "creating",
        };
        phase(status)
    }
}
