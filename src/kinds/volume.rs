//! Volume → PersistentVolumeClaim.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::DynamicObject;
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved, yes};
use super::shared::{PLACEMENT_COLUMN, applied_text, columns, element, gigabytes, metadata, phase_column};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::types::PVC;
use crate::provision::{Anchor, DeletionPolicy, Placement, ProvisionError, Result};

/// A storage volume on a `volume` element (table `volumes`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Volume",
    namespaced,
    category = "windflow",
    shortname = "wfvol",
    status = "VolumeStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.volumeType"),
    printcolumn(name = "Size", type_ = "number", json_path = ".spec.sizeGb"),
    printcolumn(name = "Access", type_ = "string", json_path = ".spec.accessMode"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a volume name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("!self.shared || self.accessMode != 'read_write_once'").message("a shared volume needs accessMode read_only_many or read_write_many"))]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Element (of type `volume`) the volume belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Storage backend (seed `volume_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("volumeType is immutable"))]
    pub volume_type: VolumeType,
    /// Size in GB (DECIMAL(10,2)); it can grow, never shrink.
    // The API server compares a whole number with a fractional minimum rounded down (0 passes
    // `minimum: 0.01`): the rule holds the floor for whole numbers too.
    #[schemars(range(min = 0.01, max = 99_999_999.99))]
    #[x_kube(validation = Rule::new("self >= 0.01").message("sizeGb is at least 0.01"))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("sizeGb cannot shrink"))]
    pub size_gb: f64,
    /// Back the volume up.
    #[serde(default = "yes")]
    pub backup_enabled: bool,
    /// Backup schedule, in cron syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub backup_schedule: Option<String>,
    /// Shared between several consumers.
    #[serde(default)]
    pub shared: bool,
    /// Access mode (seed `access_mode_check`).
    #[serde(default)]
    pub access_mode: AccessMode,
    /// Storage configuration (free-form).
    #[serde(default)]
    pub storage_config: FreeForm,
}

/// Seed `volume_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VolumeType {
    LocalSsd,
    LocalHdd,
    Nfs,
    Ceph,
    S3,
    AzureBlob,
    Gcs,
    Glusterfs,
}

/// Seed `access_mode_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadOnlyMany,
    ReadWriteMany,
}

/// Status of a Volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `volumes.status`: creating, available, bound, error, deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<VolumePhase>,
}

kind_status!(VolumeStatus);

seed_values! {
    /// The values of `VolumeStatus.phase`: the seed's check on the column it mirrors.
    VolumePhase { Creating, Available, Bound, Error, Deleting }
}

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

child_set! {
    /// What a Volume provisions: its claim.
    VolumeChild { PersistentVolumeClaim }
}

impl Kind for Volume {
    const ID: KindId = KindId::Volume;
    const TABLE: &'static str = "volumes";
    type Children = VolumeChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating"), PLACEMENT_COLUMN];
    /// `bound` or `available` follows the Applications that mount it.
    const OBSERVES_OTHERS: bool = true;

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

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<VolumeChild>> {
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
        Ok(vec![VolumeChild::PersistentVolumeClaim(PersistentVolumeClaim {
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
        })])
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
    fn faulted(&self) -> VolumeStatus {
        VolumeStatus { phase: Some(VolumePhase::Error), ..Default::default() }
    }

    fn observe(&self, applied: &[DynamicObject], inputs: &Inputs) -> VolumeStatus {
        let status = match applied_text(applied, PVC.kind, "/status/phase") {
            Some("Bound") => {
                let mounted = !inputs.index.live_children::<super::Application, _>(self).is_empty();
                if mounted { VolumePhase::Bound } else { VolumePhase::Available }
            }
            Some("Lost") => VolumePhase::Error,
            _ => VolumePhase::Creating,
        };
        VolumeStatus { phase: Some(status), ..Default::default() }
    }
}
