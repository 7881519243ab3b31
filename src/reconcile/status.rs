//! Status building, pure: conditions that keep their transition time unless they flip. And
//! the pace of reports that only say work is still under way ([`Pace`]).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};

use crate::kinds::Kind;
use crate::kinds::common::KindStatus;
use crate::mirror::StatusColumn;
use crate::reason::Reason;

/// One condition as a reconcile concluded it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The condition's status is `True`.
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
}

impl Verdict {
    pub fn ok(reason: Reason, message: impl Into<String>) -> Self {
        Self { ok: true, reason, message: message.into() }
    }

    pub fn failed(reason: Reason, message: impl Into<String>) -> Self {
        Self { ok: false, reason, message: message.into() }
    }
}

/// What a reconcile reports of an object whose status is an `S`: `Synced` (the row holds the
/// object's spec), `Ready` (that, and what it asks for is provisioned), and the status fields
/// that follow its children and other objects.
#[derive(Clone, Debug, PartialEq)]
pub struct Report<S> {
    pub synced: Verdict,
    pub ready: Verdict,
    /// The fields observed (the others are not set), which replace the status's own.
    pub observed: S,
    /// Publish an Event when Ready flips or is false; off where the reconcile publishes its
    /// own (a rollout's steps).
    pub announce: bool,
}

impl<S: Default> Report<S> {
    /// Both conditions say the same: why nothing went through, or that the row is all there is.
    pub fn both(verdict: Verdict) -> Self {
        Self { synced: verdict.clone(), ready: verdict, observed: S::default(), announce: true }
    }
}

/// The annotation that stops reconciling an object (deletion still works).
pub const PAUSED_ANNOTATION: &str = "windflow.io/paused";

pub fn is_paused<K: Resource>(obj: &K) -> bool {
    obj.annotations().get(PAUSED_ANNOTATION).is_some_and(|v| v == "true")
}

/// Whether a reconcile has reported on the object: its status has a `Ready` condition.
pub fn has_reported<K: Kind>(obj: &K) -> bool {
    obj.common_status().is_some_and(|status| status.conditions.iter().any(|condition| condition.type_ == "Ready"))
}

/// What is left of a new object's arrival grace (`durations::ARRIVAL`) while it waits for
/// something that does not exist yet: until then it reports nothing, and is woken by the rows
/// written in its namespace like any waiting object. `None` once it has reported, is older,
/// or is held up by anything else.
pub fn arrival_left<K: Kind>(obj: &K, verdict: &Verdict, now: Timestamp) -> Option<Duration> {
    if !matches!(verdict.reason, Reason::WaitingForDependency | Reason::NoOrganization) || has_reported(obj) {
        return None;
    }
    grace_left(obj, now)
}

/// What is left of the arrival grace of an object created `now` or before: `None` once it is
/// over, or when the object has no creation time (not from the API server).
pub fn grace_left<K: Kind>(obj: &K, now: Timestamp) -> Option<Duration> {
    let created = obj.meta().creation_timestamp.as_ref()?.0;
    let age = Duration::try_from(now.duration_since(created)).ok()?;
    super::durations::ARRIVAL.checked_sub(age).filter(|left| !left.is_zero())
}

/// Sets `condition`, keeping `lastTransitionTime` when its status does not change.
pub fn merge_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = condition;
        }
        None => conditions.push(condition),
    }
}

fn condition(type_: &str, verdict: &Verdict, generation: Option<i64>, now: Timestamp) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: if verdict.ok { "True" } else { "False" }.to_owned(),
        reason: verdict.reason.as_str().to_owned(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// The status to apply, as the patch: the object's current status with the observed fields
/// replacing theirs, the conditions from the report, the organization and the mirrored version.
/// Every other field stays as it is (a server-side apply drops what it omits), and the seed
/// status columns are defaulted, so that the controller keeps owning them.
pub fn build<K: Kind>(obj: &K, report: &Report<K::Status>, organization: Option<&str>, now: Timestamp) -> Value {
    let generation = obj.meta().generation;
    let current = obj.status().cloned().unwrap_or_default();
    // The version whose spec the row took: recorded on the first write and on a spec change,
    // not on every resourceVersion, or each status write would bump the version it records and
    // be followed by another.
    let record_version = report.synced.ok
        && (current.common().mirrored_resource_version.is_none() || current.common().observed_generation != generation);
    let mut status = current.overlaid(&report.observed);
    let common = status.common_mut();
    merge_condition(&mut common.conditions, condition("Synced", &report.synced, generation, now));
    merge_condition(&mut common.conditions, condition("Ready", &report.ready, generation, now));
    common.observed_generation = generation;
    if let Some(organization) = organization {
        common.organization = Some(organization.to_owned());
    }
    if record_version && let Some(version) = obj.resource_version() {
        common.mirrored_resource_version = Some(version);
    }
    let mut fields = match serde_json::to_value(&status) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    for StatusColumn { field, default, .. } in K::STATUS_COLUMNS {
        if fields.get(*field).is_none_or(Value::is_null)
            && let Some(default) = default
        {
            fields.insert((*field).to_owned(), seed_default(field, default));
        }
    }
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": fields,
    })
}

/// Whether the status `after` only says differently that work is still under way, as
/// `before` did: both `Ready` conditions are False for a reason under way
/// ([`Reason::is_under_way`]), and nothing but the conditions changed. Such a report waits a
/// little ([`Pace`]); a first report, a flip, a fault and any other field are written at once.
pub fn only_still_under_way(before: &Value, after: &Value) -> bool {
    let under_way = |status: &Value| {
        let conditions = status["conditions"].as_array().into_iter().flatten();
        conditions.filter(|condition| condition["type"] == "Ready").any(|ready| {
            ready["status"] == "False"
                && serde_json::from_value::<Reason>(ready["reason"].clone()).is_ok_and(Reason::is_under_way)
        })
    };
    let without_conditions = |status: &Value| {
        let mut fields = status.as_object().cloned().unwrap_or_default();
        fields.remove("conditions");
        fields
    };
    under_way(before) && under_way(after) && without_conditions(before) == without_conditions(after)
}

/// Reports held back because they only said otherwise that work is still under way (waiting
/// for the cluster, then for the namespace, then for the workloads), by object, with when the
/// first of them was held: such a report is written once it has stood [`Pace::INTERVAL`],
/// the latest one then; what comes before (`Ready` turning, a fault, any other field) is
/// written at once instead, and the ones held never are.
#[derive(Debug, Default)]
pub struct Pace(Mutex<HashMap<String, Instant>>);

impl Pace {
    pub const INTERVAL: Duration = Duration::from_secs(2);

    /// How long the report of `key` that only says work is still under way waits at `now`
    /// (the first one starts its wait); `None` when it has waited long enough.
    pub fn wait(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if held.len() >= 1024 {
            // Objects deleted while held; what waited far longer is not waiting any more.
            held.retain(|_, since| now.saturating_duration_since(*since) < 10 * Self::INTERVAL);
        }
        let since = *held.entry(key.to_owned()).or_insert(now);
        Self::INTERVAL.checked_sub(now.saturating_duration_since(since)).filter(|left| !left.is_zero())
    }

    /// The status of `key` was written, or holds what it would say: nothing waits.
    pub fn settled(&self, key: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

/// Seed defaults are text; counts are numbers in the status.
fn seed_default(field: &str, default: &str) -> Value {
    match default.parse::<i64>() {
        Ok(number) if field.ends_with("Count") => json!(number),
        _ => json!(default),
    }
}

/// The Event a reconcile announces, given the status before it: a Warning when Ready turns
/// False or fails for another reason, a Normal when it turns True. A retry that finds the same
/// fault, or the same success, announces nothing (its message may still change in the status).
/// What is under way ([`Reason::is_under_way`]: waiting for a dependency or the organization,
/// children still coming up) is no warning until the object has been Ready: a new object says
/// so in its condition, and its Event is the Normal one when it works, or the Warning of what
/// stops it.
pub fn announcement(conditions: &[Condition], ready: &Verdict) -> Option<EventType> {
    let before = conditions.iter().find(|c| c.type_ == "Ready");
    let was = |status: &str| before.as_ref().is_some_and(|c| c.status == status);
    match ready.ok {
        false if was("False") && before.as_ref().is_some_and(|c| c.reason == ready.reason.as_str()) => None,
        false if ready.reason.is_under_way() && !was("True") => None,
        false => Some(EventType::Warning),
        true if was("True") => None,
        true => Some(EventType::Normal),
    }
}

/// Whether the Event `announced` tells users something: not the first success of a kind that
/// makes nothing but its row (no child, follows nothing: a User, a Tag, a ContainerNode). Its
/// audit row records that, and one Event per User of a platform would say the same thousands
/// of times; its faults, and the repairs that follow, are told.
pub fn is_news<K: Kind>(conditions: &[Condition], announced: &EventType) -> bool {
    let only_a_row = K::CHILD_TYPES.is_empty() && !K::OBSERVES_OTHERS;
    let first_report = !conditions.iter().any(|condition| condition.type_ == "Ready");
    !(only_a_row && first_report && matches!(announced, EventType::Normal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Volume;
    use crate::kinds::volume::{VolumePhase, VolumeStatus};

    fn volume(status: Value) -> Volume {
        serde_json::from_value(json!({
            "apiVersion": "windflow.io/v1alpha1", "kind": "Volume",
            "metadata": { "name": "data", "namespace": "acme", "generation": 3, "resourceVersion": "42" },
            "spec": { "elementRef": { "name": "storage" }, "volumeType": "ceph", "sizeGb": 10.0 },
            "status": status,
        }))
        .expect("fixture")
    }

    /// The status the controller would apply to a Volume whose status is `status` now.
    fn build_over(status: Value, report: &Report<VolumeStatus>, organization: Option<&str>, now: Timestamp) -> Value {
        let obj = volume(status);
        build(&obj, report, organization, now)
    }

    fn mirrored(message: &str) -> Report<VolumeStatus> {
        Report::both(Verdict::ok(Reason::Mirrored, message))
    }

    #[test]
    fn a_new_object_waits_silently_for_what_is_not_created_yet_only_for_the_arrival_grace() {
        let now: Timestamp = "2026-01-01T00:00:20Z".parse().expect("time");
        let created = |at: &str| {
            let mut obj = volume(Value::Null);
            obj.metadata.creation_timestamp = Some(Time(at.parse().expect("time")));
            obj
        };
        let missing = Verdict::failed(Reason::WaitingForDependency, "waiting for Element \"storage\"");
        let tenant = Verdict::failed(Reason::NoOrganization, "no organization");
        assert_eq!(arrival_left(&created("2026-01-01T00:00:10Z"), &missing, now), Some(Duration::from_secs(5)));
        assert_eq!(arrival_left(&created("2026-01-01T00:00:19Z"), &tenant, now), Some(Duration::from_secs(14)));
        // The grace is over; or the age is unknown, or in the future (a clock ahead).
        assert_eq!(arrival_left(&created("2026-01-01T00:00:05Z"), &missing, now), None);
        assert_eq!(arrival_left(&created("2026-01-01T00:00:00Z"), &missing, now), None);
        assert_eq!(arrival_left(&volume(Value::Null), &missing, now), None);
        assert_eq!(arrival_left(&created("2026-01-01T00:01:00Z"), &missing, now), None);
        // What users must fix is said at once.
        let invalid = Verdict::failed(Reason::InvalidSpec, "no such volume type");
        assert_eq!(arrival_left(&created("2026-01-01T00:00:19Z"), &invalid, now), None);
        // An object that has reported always says what it waits for.
        let mut reported = volume(json!({ "conditions": [{ "type": "Ready", "status": "True", "reason": "Mirrored",
            "message": "", "lastTransitionTime": "2026-01-01T00:00:11Z" }] }));
        reported.metadata.creation_timestamp = Some(Time("2026-01-01T00:00:10Z".parse().expect("time")));
        assert_eq!(arrival_left(&reported, &missing, now), None);
    }

    #[test]
    fn transition_time_is_kept_while_the_status_does_not_flip() {
        let earlier: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let later: Timestamp = "2026-02-01T00:00:00Z".parse().expect("time");
        let first = build_over(Value::Null, &mirrored("mirrored"), Some("acme"), earlier);
        let again = build_over(first["status"].clone(), &mirrored("mirrored again"), None, later);
        let ready = &again["status"]["conditions"][1];
        assert_eq!(ready["type"], "Ready");
        assert_eq!(ready["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(ready["message"], "mirrored again");
        assert_eq!(again["status"]["organization"], "acme");

        let conflict = Report::both(Verdict::failed(Reason::Conflict, "taken"));
        let flipped = build_over(again["status"].clone(), &conflict, None, later);
        let ready = &flipped["status"]["conditions"][1];
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["lastTransitionTime"], "2026-02-01T00:00:00Z");
        assert_eq!(ready["observedGeneration"], 3);
    }

    #[test]
    fn seed_status_is_kept_or_defaulted() {
        let now = Timestamp::now();
        let fresh = build_over(Value::Null, &mirrored("ok"), None, now);
        assert_eq!(fresh["status"]["phase"], "creating");
        assert_eq!(fresh["status"]["mirroredResourceVersion"], "42");
        let bound = build_over(json!({ "phase": "bound" }), &mirrored("ok"), None, now);
        assert_eq!(bound["status"]["phase"], "bound");
        assert_eq!(bound["kind"], "Volume");
    }

    #[test]
    fn ready_and_synced_differ_when_provisioning_is_blocked_and_observed_fields_win() {
        let report = Report {
            synced: Verdict::ok(Reason::Mirrored, "the row holds it"),
            ready: Verdict::failed(Reason::ProviderNotInstalled, "KubeVirt is not installed"),
            observed: VolumeStatus { phase: Some(VolumePhase::Error), ..Default::default() },
            announce: true,
        };
        let status = build_over(json!({ "phase": "bound" }), &report, None, Timestamp::now());
        let conditions = status["status"]["conditions"].as_array().expect("conditions");
        let of = |type_: &str| conditions.iter().find(|c| c["type"] == type_).expect("condition").clone();
        assert_eq!((of("Synced")["status"].as_str(), of("Ready")["status"].as_str()), (Some("True"), Some("False")));
        assert_eq!(of("Ready")["reason"], "ProviderNotInstalled");
        assert_eq!(status["status"]["phase"], "error");
        assert_eq!(status["status"]["mirroredResourceVersion"], "42");
    }

    /// A status write bumps the resourceVersion; reconciling the object again at that version
    /// must build the same status, or the write would trigger another reconcile forever.
    #[test]
    fn a_status_only_change_builds_the_same_status_again() {
        let now = Timestamp::now();
        let first = build_over(Value::Null, &mirrored("ok"), Some("acme"), now);
        let mut bumped = volume(first["status"].clone());
        bumped.metadata.resource_version = Some("43".into());
        let again = build(&bumped, &mirrored("ok"), None, now);
        assert_eq!(again, first);
        // A spec change (a new generation) records the version whose spec the row took.
        bumped.metadata.generation = Some(4);
        let changed = build(&bumped, &mirrored("ok"), None, now);
        assert_eq!(changed["status"]["mirroredResourceVersion"], "43");
    }

    #[test]
    fn paused_by_annotation() {
        let mut v = volume(Value::Null);
        assert!(!is_paused(&v));
        v.annotations_mut().insert(PAUSED_ANNOTATION.into(), "true".into());
        assert!(is_paused(&v));
    }

    #[test]
    fn a_row_made_is_no_news_its_faults_are() {
        use crate::kinds::{Element, User};
        let ready = |status: &str, reason: &str| Condition {
            type_: "Ready".into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: Some(1),
            last_transition_time: Time(Timestamp::now()),
        };
        assert!(!is_news::<User>(&[], &EventType::Normal), "a User's row made");
        assert!(is_news::<User>(&[], &EventType::Warning), "a User refused");
        assert!(is_news::<User>(&[ready("False", "WaitingForDependency")], &EventType::Normal), "and then mirrored");
        assert!(is_news::<Volume>(&[], &EventType::Normal), "a Volume's claim bound");
        assert!(is_news::<Element>(&[], &EventType::Normal), "an Element weighs what stands on it");
    }

    #[test]
    fn events_announce_flips_not_retries() {
        let ready = |status: &str, reason: &str| -> Vec<Condition> {
            let condition = json!({
                "type": "Ready", "status": status, "reason": reason, "message": "before",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            });
            vec![serde_json::from_value(condition).expect("a condition")]
        };
        let waiting = Verdict::failed(Reason::WaitingForDependency, "spec.elementRef: not yet");
        let invalid = Verdict::failed(Reason::InvalidSpec, "spec.sizeGb: too small");
        let provisioned = Verdict::ok(Reason::Provisioned, "applied");
        let progressing = Verdict::failed(Reason::Progressing, "Deployment web is not Available yet");
        for (before, verdict, expected) in [
            (vec![], &waiting, None),
            (vec![], &progressing, None),
            (ready("False", "WaitingForDependency"), &progressing, None),
            (ready("True", "Provisioned"), &progressing, Some(EventType::Warning)),
            (ready("True", "Provisioned"), &waiting, Some(EventType::Warning)),
            (ready("False", "WaitingForDependency"), &waiting, None),
            (ready("False", "WaitingForDependency"), &invalid, Some(EventType::Warning)),
            (vec![], &provisioned, Some(EventType::Normal)),
            (ready("False", "InvalidSpec"), &provisioned, Some(EventType::Normal)),
            (ready("True", "Provisioned"), &provisioned, None),
        ] {
            assert_eq!(announcement(&before, verdict), expected, "{before:?} then {verdict:?}");
        }
    }

    #[test]
    fn only_reports_that_work_is_still_under_way_wait() {
        let status = |ready: &str, reason: &str, message: &str, phase: &str| {
            json!({ "phase": phase, "conditions": [
                { "type": "Synced", "status": "True", "reason": "Mirrored", "message": "" },
                { "type": "Ready", "status": ready, "reason": reason, "message": message },
            ] })
        };
        let cluster = status("False", "WaitingForDependency", "cluster not Available", "creating");
        let namespace = status("False", "WaitingForDependency", "namespace not there", "creating");
        let claim = status("False", "Progressing", "claim Pending", "creating");
        for (before, after, waits) in [
            (&cluster, &namespace, true),
            (&namespace, &claim, true),
            (&claim, &status("False", "Progressing", "claim Pending still", "creating"), true),
            // A first report, a flip, a fault, another field: at once.
            (&json!(null), &cluster, false),
            (&json!({}), &cluster, false),
            (&claim, &status("True", "Provisioned", "bound", "creating"), false),
            (&status("True", "Provisioned", "bound", "bound"), &claim, false),
            (&claim, &status("False", "InvalidSpec", "too small", "creating"), false),
            (&status("False", "InvalidSpec", "too small", "creating"), &claim, false),
            (&claim, &status("False", "Progressing", "claim Pending", "bound"), false),
        ] {
            assert_eq!(only_still_under_way(before, after), waits, "{before} then {after}");
        }
    }

    #[test]
    fn a_report_still_under_way_is_written_once_it_has_stood_the_interval() {
        let pace = Pace::default();
        let start = Instant::now();
        assert_eq!(pace.wait("Volume/acme/data", start), Some(Pace::INTERVAL), "the first one starts waiting");
        let later = start + Duration::from_millis(500);
        assert_eq!(pace.wait("Volume/acme/data", later), Some(Pace::INTERVAL - Duration::from_millis(500)));
        assert_eq!(pace.wait("Volume/acme/other", later), Some(Pace::INTERVAL), "another object waits on its own");
        assert_eq!(pace.wait("Volume/acme/data", start + Pace::INTERVAL), None, "it has stood long enough");
        pace.settled("Volume/acme/data");
        let again = start + 3 * Pace::INTERVAL;
        assert_eq!(pace.wait("Volume/acme/data", again), Some(Pace::INTERVAL), "written: the next one waits anew");
    }
}
