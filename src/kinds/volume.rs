//! Volume → PersistentVolumeClaim, and its scheduled backups → VolumeSnapshots.

use kube::{CustomResource, KubeSchema, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, TypedLocalObjectReference, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::civil::DateTime;
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, Zoned};
use kube::api::DynamicObject;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved, yes};
use super::shared::{PLACEMENT_COLUMN, applied_of, applied_text, columns, element, gigabytes, metadata, phase_column};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::third_party::{SnapshotSource, VolumeSnapshot, VolumeSnapshotSpec};
use crate::provision::types::{PVC, VOLUME_SNAPSHOT};
use crate::provision::{Anchor, ChildType, DeletionPolicy, Placement, ProvisionError, Result};

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
#[x_kube(validation = Rule::new("has(self.restoreFrom) == has(oldSelf.restoreFrom)").message("restoreFrom is set when the volume is created, and kept"))]
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
    /// Back the volume up on `backupSchedule`: a CSI VolumeSnapshot of its claim at each time
    /// the schedule names. Nothing is made without a schedule. Turning it off makes no new
    /// snapshot and keeps those made.
    #[serde(default = "yes")]
    pub backup_enabled: bool,
    /// When backups are made: five-field cron (minute hour day-of-month month day-of-week,
    /// UTC), such as `0 2 * * *`. Needs the CSI snapshot API (external-snapshotter) where the
    /// volume runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub backup_schedule: Option<String>,
    /// How many scheduled snapshots are kept: the oldest beyond it is deleted once a newer one
    /// is made.
    #[serde(default = "default_backup_retention")]
    #[schemars(range(min = 1, max = 1000))]
    pub backup_retention: u32,
    /// A VolumeSnapshot, in the namespace where the volume runs, whose content the new claim
    /// starts with (`dataSource`). Only when the volume is created; immutable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("restoreFrom is immutable"))]
    pub restore_from: Option<RestoreSource>,
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

/// Snapshots kept unless `backupRetention` says otherwise: a week of daily backups.
pub const DEFAULT_BACKUP_RETENTION: u32 = 7;

fn default_backup_retention() -> u32 {
    DEFAULT_BACKUP_RETENTION
}

/// Where a new volume's content comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSource {
    /// The name of a VolumeSnapshot (such as one of another volume's `status.backups`).
    #[schemars(length(min = 1, max = 253))]
    pub snapshot: String,
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
    /// The scheduled backups, while there are any or a schedule makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<BackupsStatus>,
}

/// A volume's scheduled backups, as its snapshots show them.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupsStatus {
    /// The newest snapshot made (RFC 3339 time of its schedule slot in `lastBackupTime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup_time: Option<String>,
    /// When the schedule makes the next one; none while backups are off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_backup_time: Option<String>,
    /// The snapshots kept, newest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<KeptSnapshot>,
}

/// One kept snapshot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeptSnapshot {
    pub name: String,
    /// The schedule slot it was made for (RFC 3339, UTC).
    pub scheduled_at: String,
    /// Its snapshot controller's word: the content can be restored from.
    #[serde(default)]
    pub ready_to_use: bool,
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
    /// What a Volume provisions: its claim, and the snapshots of its scheduled backups.
    VolumeChild { PersistentVolumeClaim, VolumeSnapshot }
}

/// The minute a scheduled snapshot is named by: `<volume>-<slot>`.
const SLOT_FORMAT: &str = "%Y%m%d%H%M";

/// Reads a backup schedule: five fields, minutes at the finest (a snapshot is named by its
/// minute).
pub fn parse_schedule(schedule: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|error| format!("spec.backupSchedule {schedule:?} is not five-field cron: {error}"))
}

impl Volume {
    /// The schedule backups are made on, while they are on.
    fn schedule(&self) -> Result<Option<Cron>> {
        let Some(schedule) = self.spec.backup_schedule.as_deref().filter(|_| self.spec.backup_enabled) else {
            return Ok(None);
        };
        parse_schedule(schedule).map(Some).map_err(|message| ProvisionError::invalid("spec.backupSchedule", message))
    }

    fn snapshot_name(&self, slot: &Zoned) -> String {
        format!("{}-{}", self.name_any(), slot.strftime(SLOT_FORMAT))
    }

    /// The slot a snapshot of this volume was made for, read from its name.
    fn slot_of(&self, snapshot: &str) -> Option<Zoned> {
        let minute = snapshot.strip_prefix(&self.name_any())?.strip_prefix('-')?;
        DateTime::strptime(SLOT_FORMAT, minute).ok()?.to_zoned(TimeZone::UTC).ok()
    }

    /// The latest slot of the schedule at `now`, once the volume existed.
    fn due_slot(&self, schedule: &Cron, now: Timestamp) -> Option<Zoned> {
        let slot = schedule.find_previous_occurrence(&now.to_zoned(TimeZone::UTC), true).ok()?;
        let created = self.meta().creation_timestamp.as_ref().map(|time| time.0);
        created.is_none_or(|created| slot.timestamp() >= created).then_some(slot)
    }

    /// The slots whose snapshots are kept, newest first: the `backupRetention` newest of those
    /// held and the one due now.
    fn kept_slots(&self, held: &[String], now: Timestamp) -> Result<Vec<Zoned>> {
        let due = match self.schedule()? {
            Some(schedule) => self.due_slot(&schedule, now),
            None => None,
        };
        let mut slots: Vec<Zoned> = held.iter().filter_map(|name| self.slot_of(name)).chain(due).collect();
        slots.sort_by(|a, b| b.cmp(a));
        slots.dedup();
        slots.truncate(self.spec.backup_retention as usize);
        Ok(slots)
    }

    fn snapshot(&self, namespace: &str, slot: &Zoned) -> VolumeSnapshot {
        VolumeSnapshot::new(
            &self.snapshot_name(slot),
            &VOLUME_SNAPSHOT.api_resource(),
            VolumeSnapshotSpec { source: SnapshotSource { persistent_volume_claim_name: self.name_any() } },
        )
        .within(namespace)
    }

    /// The backups as the applied snapshots show them.
    fn backups(&self, applied: &[DynamicObject], now: Timestamp) -> Option<BackupsStatus> {
        let mut snapshots: Vec<(Zoned, KeptSnapshot)> = applied_of(applied, VOLUME_SNAPSHOT.kind)
            .filter_map(|snapshot| {
                let name = snapshot.name_any();
                let slot = self.slot_of(&name)?;
                let ready_to_use =
                    snapshot.data.pointer("/status/readyToUse").and_then(Value::as_bool).unwrap_or_default();
                Some((slot.clone(), KeptSnapshot { name, scheduled_at: slot.timestamp().to_string(), ready_to_use }))
            })
            .collect();
        snapshots.sort_by(|a, b| b.0.cmp(&a.0));
        let next = self.schedule().ok().flatten().and_then(|schedule| {
            schedule.find_next_occurrence(&now.to_zoned(TimeZone::UTC), false).ok().map(|next| next.timestamp())
        });
        if snapshots.is_empty() && next.is_none() {
            return None;
        }
        let last = snapshots.first().map(|(_, last)| last.clone());
        Some(BackupsStatus {
            last_backup: last.as_ref().map(|last| last.name.clone()),
            last_backup_time: last.map(|last| last.scheduled_at),
            next_backup_time: next.map(|next| next.to_string()),
            snapshots: snapshots.into_iter().map(|(_, kept)| kept).collect(),
        })
    }
}

impl Kind for Volume {
    const ID: KindId = KindId::Volume;
    const TABLE: &'static str = "volumes";
    type Children = VolumeChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "creating"), PLACEMENT_COLUMN];
    /// `bound` or `available` follows the Applications that mount it.
    const OBSERVES_OTHERS: bool = true;
    const KEPT_CHILDREN: &'static [ChildType] = &[VOLUME_SNAPSHOT];

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
                backup_schedule: spec.backup_schedule.as_deref().map(checked_schedule).transpose()?,
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

    /// A restore reads a snapshot the claim's `dataSource` names.
    fn consults(&self) -> &'static [ChildType] {
        if self.spec.restore_from.is_some() { &[VOLUME_SNAPSHOT] } else { &[] }
    }

    /// Woken at the next slot of its schedule.
    fn due(&self, inputs: &Inputs) -> Option<Duration> {
        let now = inputs.now.to_zoned(TimeZone::UTC);
        let next = self.schedule().ok()??.find_next_occurrence(&now, false).ok()?;
        Duration::try_from(next.timestamp().duration_since(inputs.now)).ok()
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
        if let Some(restore) = &self.spec.restore_from
            && !inputs.serves(VOLUME_SNAPSHOT)
        {
            return Err(ProvisionError::NotProvided {
                field: "spec.restoreFrom".into(),
                message: format!(
                    "restoring from snapshot {:?} needs {}, which the cluster does not serve",
                    restore.snapshot,
                    VOLUME_SNAPSHOT.provider()
                ),
            });
        }
        let namespace = placement.workload_namespace();
        let data_source = self.spec.restore_from.as_ref().map(|restore| TypedLocalObjectReference {
            api_group: Some(VOLUME_SNAPSHOT.group().to_owned()),
            kind: VOLUME_SNAPSHOT.kind.to_owned(),
            name: restore.snapshot.clone(),
        });
        let claim = VolumeChild::PersistentVolumeClaim(PersistentVolumeClaim {
            metadata: metadata(Some(namespace), &self.name_any()),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![access_mode.to_owned()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(gigabytes(self.spec.size_gb)))])),
                    ..VolumeResourceRequirements::default()
                }),
                storage_class_name: storage_class,
                data_source,
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        });
        let snapshots = self.kept_slots(inputs.kept, inputs.now)?.into_iter();
        Ok(std::iter::once(claim).chain(snapshots.map(|slot| self.snapshot(namespace, &slot).into())).collect())
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
        VolumeStatus { phase: Some(status), backups: self.backups(applied, inputs.now), ..Default::default() }
    }
}

/// The schedule as written, once it reads as five-field cron.
fn checked_schedule(schedule: &str) -> Result<&str, Invalid> {
    parse_schedule(schedule).map(|_| schedule).map_err(Invalid)
}
