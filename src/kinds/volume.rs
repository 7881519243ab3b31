//! Volume → PersistentVolumeClaim.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::shared::{
    PLACEMENT_COLUMN, applied_text, columns, element, gigabytes, metadata, phase, phase_column, typed,
};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy, FreeForm};
use crate::api::infra::{AccessMode, VolumePhase, VolumeType};
use crate::mirror::{Invalid, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::PVC;
use crate::provision::{Anchor, Placement, ProvisionError, Result};

pub use crate::api::infra::Volume;

/// A `volumes` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct VolumeRow<'a> {
    name: String,
    element_id: Uuid,
    volume_type: &'a VolumeType,
    size_gb: f64,
    backup_enabled: bool,
    backup_schedule: Option<&'a str>,
    shared: bool,
    access_mode: &'a AccessMode,
    storage_config: &'a FreeForm,
}

impl Kind for Volume {
    const ID: KindId = KindId::Volume;
    const TABLE: &'static str = "volumes";
    const CHILD_TYPES: &'static [ChildType] = &[PVC];
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating"), PLACEMENT_COLUMN];
    /// `bound` or `available` follows the Applications that mount it.
    const OBSERVES_OTHERS: bool = true;

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&VolumeRow {
                name: self.name_any(),
                element_id: resolved.element_of_type(&element(&spec.element_ref), "volume")?,
                volume_type: &spec.volume_type,
                size_gb: spec.size_gb,
                backup_enabled: spec.backup_enabled,
                backup_schedule: spec.backup_schedule.as_deref(),
                shared: spec.shared,
                access_mode: &spec.access_mode,
                storage_config: &spec.storage_config,
            })?,
            joins: vec![],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let access_mode = match self.spec.access_mode {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadOnlyMany => "ReadOnlyMany",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        };
        let volume_type = serde_json::to_value(self.spec.volume_type).unwrap_or_default();
        let storage_class = volume_type.as_str().and_then(|t| inputs.config.storage_classes.get(t)).cloned();
        // An object store is no block device: only a CSI driver that mounts it (a class the
        // platform maps the type to) makes it a claim. The cluster's default class would hand
        // out a disk instead.
        let object_store = matches!(self.spec.volume_type, VolumeType::S3 | VolumeType::Gcs | VolumeType::AzureBlob);
        if object_store && storage_class.is_none() {
            let kind = volume_type.as_str().unwrap_or_default();
            return Err(ProvisionError::NotProvided {
                field: "spec.volumeType".into(),
                message: format!(
                    "{kind} volumes need a CSI driver that mounts the object store: map the type to its StorageClass (provisioning.storageClasses.{kind})"
                ),
            });
        }
        Ok(vec![typed(&PersistentVolumeClaim {
            metadata: metadata(Some(placement.workload_namespace()), &self.name_any()),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![access_mode.to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(gigabytes(self.spec.size_gb)))])),
                    ..VolumeResourceRequirements::default()
                }),
                storage_class_name: storage_class,
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        })?])
    }

    /// A volume works once its claim is Bound.
    fn not_working(&self, applied: &[DynamicObject], _: &Inputs) -> Option<String> {
        let phase = applied_text(applied, PVC.kind, "/status/phase").unwrap_or("Pending");
        (phase != "Bound").then(|| {
            format!(
                "claim {} is {phase}, not Bound (a StorageClass that binds WaitForFirstConsumer binds it once a pod mounts it)",
                self.name_any()
            )
        })
    }

    /// The claim's phase: `Bound` is `bound` when an application mounts the volume, else
    /// `available`; `Pending` is `creating`; `Lost` is `error`.
    fn observe(&self, applied: &[DynamicObject], inputs: &Inputs) -> Map<String, Value> {
        let status = match applied_text(applied, PVC.kind, "/status/phase") {
            Some("Bound") => {
                let mounted = !inputs.index.live_children::<super::Application, _>(self).is_empty();
                if mounted { VolumePhase::Bound } else { VolumePhase::Available }
            }
            Some("Lost") => VolumePhase::Error,
            _ => VolumePhase::Creating,
        };
        phase(status)
    }
}
