//! Volume → PersistentVolumeClaim.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::types::PVC;
use super::{ChildType, Inputs, Placement, Provisioned, Result, gigabytes};
use crate::api::Volume;
use crate::api::common::DeletionPolicy;
use crate::api::infra::AccessMode;

impl Provisioned for Volume {
    const CHILDREN: &'static [ChildType] = &[PVC];

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn placement(&self, inputs: &Inputs) -> Result<Placement> {
        let namespace = self.namespace().unwrap_or_default();
        let organization = inputs.world.organization(&namespace)?;
        let environment =
            inputs.world.element_environment(&namespace, &self.spec.element_ref.name, "spec.elementRef")?;
        Placement::new(organization, Some(environment))
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
}
