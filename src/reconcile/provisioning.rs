//! Provisioning, as its steps: locate (where the object runs, and where it ran), connect (the
//! health of an existing cluster, the clusters that can be written to), build (pure, the
//! kind's), apply on each cluster, then the status its children show. Each step has its own
//! errors; [`provision`] says, in one place, what each means for the status and when to look
//! again. A workload cluster that does not answer holds back only what is placed on it.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::controller::Action;
use tracing::info;

use super::status::{Report, Verdict};
use super::{Context, Error, Result, durations, mirrored, wait_for};
use crate::kinds::common::{KindStatus, PlacementStatus};
use crate::kinds::{self, ContainerCluster, Gathered, Inputs, Kind, KindId};
use crate::provision::apply::{ApplyError, Provider};
use crate::provision::clusters::{ClusterError, did_not_answer};
use crate::provision::probe::{ClusterReport, ProbeError, probe};
use crate::provision::{ChildType, Destination, Placed, Placement, ProvisionError};
use crate::reason::Reason;

/// Provisions what a mirrored object asks for. Users' problems are a `Ready=False` report;
/// faults are errors.
pub(super) async fn provision<K: Kind>(obj: &K, ctx: &Context) -> Result<(Report<K::Status>, Action)> {
    if K::CHILD_TYPES.is_empty() && !K::OBSERVES_OTHERS {
        // Nothing to read: the status follows the object alone.
        let inputs = Inputs::offline(&ctx.index, &ctx.config);
        return Ok((Report { observed: obj.observe(&[], &inputs), ..mirrored() }, Action::requeue(durations::RESYNC)));
    }
    // What follows other objects is reported whatever becomes of the children.
    let mut observed = obj.observe_others(&Inputs::offline(&ctx.index, &ctx.config));
    let located = match locate(obj, ctx).await {
        Ok(located) => located,
        Err(LocateError::Unplaced(error)) => return held(obj, build_reason(&error), error.to_string(), observed),
        Err(LocateError::Fault(error)) => return Err(error),
    };
    if let Some(left) = awaiting_users(obj, ctx) {
        let message = format!(
            "nothing placed uses it yet: its children go where what uses it runs, or to the management cluster \
             if nothing does within {:?} of its creation",
            durations::ARRIVAL
        );
        // Said in the status (the row is written: what references it goes on), without an
        // Event: it is not a fault, and lasts seconds.
        let ready = Verdict::failed(Reason::WaitingForDependency, message);
        return Ok((Report { ready, observed, announce: false, ..mirrored() }, Action::requeue(left)));
    }
    observed.common_mut().placement = Some(located.status(&located.earlier));
    let Connected { report: cluster_report, providers, mut held_back } =
        match connect(obj, ctx, &located.placement).await {
            Ok(connected) => connected,
            Err(ConnectError::Refused(message)) => return held(obj, Reason::InvalidSpec, message, observed),
            Err(ConnectError::Unreachable(message)) => {
                let ready = Verdict::failed(Reason::Unreachable, message);
                let observed = obj.unreachable().overlaid(&observed);
                return Ok((Report { ready, observed, ..mirrored() }, Action::requeue(durations::HEALTH_CHECK)));
            }
            // Nothing is built, applied or observed, so that no status says what is not there.
            Err(ConnectError::NoCluster(ready)) => {
                return Ok((Report { ready, observed, ..mirrored() }, Action::requeue(durations::CLUSTER_RECHECK)));
            }
            Err(ConnectError::Fault(error)) => return Err(error),
        };
    let unserved: Vec<ChildType> = providers.iter().flat_map(|(_, _, unserved)| unserved.iter().copied()).collect();
    let mut kept = vec![];
    for (cluster, provider, _) in &providers {
        match provider.names_of(&located.owner, K::KEPT_CHILDREN).await {
            Ok(names) => kept.extend(names),
            Err(ApplyError::Kube(error)) => held_back.kube(cluster, error)?,
            Err(error) => return Err(Error::from_apply(error)),
        }
    }
    let inputs = Inputs {
        report: cluster_report.as_ref(),
        unserved: &unserved,
        arriving: super::status::grace_left(obj, Timestamp::now()),
        kept: &kept,
        ..Inputs::offline(&ctx.index, &ctx.config)
    };
    let children = match kinds::children(obj, &located.placement, &inputs) {
        Ok(children) => children,
        Err(error) => return held(obj, build_reason(&error), error.to_string(), observed),
    };
    let applied = match apply(obj, ctx, &located, &providers, &mut held_back, &children).await {
        Ok(applied) => applied,
        Err(ApplyStepError::Refused { reason, message }) => return held(obj, reason, message, observed),
        Err(ApplyStepError::Fault(error)) => return Err(error),
    };
    report(obj, ctx, &located, &held_back, &applied, &inputs, observed).await
}

/// How long a new object placed where what uses it runs, and used by nothing placed yet, waits
/// for its users before its children go to the management cluster: a GitOps sync creates a
/// Volume before the Applications that mount it, and its claim made on the management cluster
/// would be deleted there again moments later. `None` once it was placed, or the grace is over.
fn awaiting_users<K: Kind>(obj: &K, ctx: &Context) -> Option<std::time::Duration> {
    let placed = obj.common_status().is_some_and(|status| status.placement.is_some());
    let left = super::status::grace_left(obj, Timestamp::now()).filter(|_| !placed)?;
    ctx.index.unclaimed(obj).then_some(left)
}

/// Where the object's children go, and the clusters it left that still hold some.
struct Located {
    placement: Placement,
    earlier: Vec<Destination>,
    owner: String,
}

impl Located {
    /// `status.placement`: where the children are or are going, with `also` the clusters that
    /// still hold some.
    fn status(&self, also: &[Destination]) -> PlacementStatus {
        placement_status(&self.placement, self.placement.clusters.iter().chain(also))
    }
}

/// Why the locate step stopped.
#[derive(Debug, thiserror::Error)]
enum LocateError {
    /// Where the object runs cannot be said: something it runs beside is missing or invalid.
    #[error(transparent)]
    Unplaced(ProvisionError),
    #[error(transparent)]
    Fault(#[from] Error),
}

/// Locate: where the object runs now, and the clusters it ran on that still hold children.
async fn locate<K: Kind>(obj: &K, ctx: &Context) -> Result<Located, LocateError> {
    let placement = kinds::place(obj, &ctx.index).map_err(LocateError::Unplaced)?;
    let owner = obj.uid().unwrap_or_default();
    let earlier = still_holding(ctx, &owner, K::CHILD_TYPES, earlier_clusters(obj, &placement)).await?;
    Ok(Located { placement, earlier, owner })
}

/// A cluster that can be written to now, with the consulted types it does not serve.
type Writable = (Destination, Arc<Provider>, Vec<ChildType>);

/// What the connect step found: the existing cluster's health, the clusters that can be
/// written to now, and those held back.
struct Connected {
    report: Option<ClusterReport>,
    providers: Vec<Writable>,
    held_back: HeldBack,
}

/// Why the connect step stopped.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    /// The existing cluster's health check has nothing valid to ask, or is refused.
    #[error("{0}")]
    Refused(String),
    /// The existing cluster does not answer its health check.
    #[error("{0}")]
    Unreachable(String),
    /// No cluster the object is placed on can be written to now.
    #[error("{}", .0.message)]
    NoCluster(Verdict),
    #[error(transparent)]
    Fault(#[from] Error),
}

/// Connect: checks the health of an existing cluster the object describes, and opens the
/// clusters it is placed on; those that cannot be written to now are held back.
async fn connect<K: Kind>(obj: &K, ctx: &Context, placement: &Placement) -> Result<Connected, ConnectError> {
    let report = match obj.probe_target() {
        None => None,
        Some(Err(error)) => return Err(ConnectError::Refused(error.to_string())),
        Some(Ok(target)) => {
            let limits = &ctx.config.probe_limits;
            match probe(&ctx.client, &target, &ctx.config.probe_deny, limits, ctx.metrics.api_requests()).await {
                Ok(report) => Some(report),
                Err(ProbeError::Unreachable(message)) => return Err(ConnectError::Unreachable(message)),
                Err(ProbeError::Refused(message)) => return Err(ConnectError::Refused(message)),
                Err(ProbeError::Kube(error)) => return Err(Error::from(error).into()),
            }
        }
    };
    let mut held_back = HeldBack::default();
    let mut providers = vec![];
    for cluster in &placement.clusters {
        match ctx.provider_for(cluster).await {
            Ok(provider) => match provider.unserved(obj.consults()).await {
                Ok(unserved) => providers.push((cluster.clone(), provider, unserved)),
                Err(error) => held_back.kube(cluster, error)?,
            },
            Err(error) => held_back.cluster(error)?,
        }
    }
    if providers.is_empty()
        && let Some(ready) = held_back.verdict("nothing is applied")
    {
        return Err(ConnectError::NoCluster(ready));
    }
    Ok(Connected { report, providers, held_back })
}

/// What the apply step wrote: the children as the clusters returned them, and how messages
/// name them.
struct Applied {
    children: Vec<DynamicObject>,
    described: Vec<String>,
}

/// Why the apply step stopped.
#[derive(Debug, thiserror::Error)]
enum ApplyStepError {
    /// A cluster refused a child in a way users act on.
    #[error("{message}")]
    Refused { reason: Reason, message: String },
    #[error(transparent)]
    Fault(#[from] Error),
}

/// Apply: on each cluster that can be written to, applies the children placed there and deletes
/// those no longer wanted. A workload cluster that stops answering is held back.
async fn apply<K: Kind>(
    obj: &K,
    ctx: &Context,
    located: &Located,
    providers: &[Writable],
    held_back: &mut HeldBack,
    children: &[Placed],
) -> Result<Applied, ApplyStepError> {
    let mut applied = Applied { children: vec![], described: vec![] };
    for (cluster, provider, _) in providers {
        let wanted: Vec<DynamicObject> =
            children.iter().filter(|child| child.cluster == *cluster).map(|child| child.object.clone()).collect();
        let written = match provider.apply(K::CHILD_TYPES, &wanted).await {
            Ok(written) => written,
            Err(ApplyError::Kube(error)) => {
                held_back.kube(cluster, error)?;
                continue;
            }
            Err(error) => {
                // Its Environment makes the namespace there once it knows: tell it.
                if let (ApplyError::NoNamespace(_), Some(environment), Some(wake)) =
                    (&error, &located.placement.environment, ctx.waker.get())
                {
                    wake(KindId::Environment, environment, obj.namespace().as_deref());
                }
                let message = match cluster {
                    Destination::Management => error.to_string(),
                    workload => format!("on {workload}: {error}"),
                };
                return Err(ApplyStepError::Refused { reason: apply_reason(&error), message });
            }
        };
        match provider.prune(&located.owner, K::CHILD_TYPES, &wanted).await {
            Ok(0) => {}
            Ok(pruned) => info!(pruned, cluster = %cluster, "deleted children no longer wanted"),
            Err(ApplyError::Kube(error)) => held_back.kube(cluster, error)?,
            Err(error) => return Err(Error::from_apply(error).into()),
        }
        applied.described.extend(written.iter().map(|child| describe_child(cluster, child)));
        applied.children.extend(written);
    }
    Ok(applied)
}

/// The status: what the kind observes of its applied children, and Ready. A move completes here:
/// the copies on the clusters left behind go once the new ones work.
async fn report<K: Kind>(
    obj: &K,
    ctx: &Context,
    located: &Located,
    held_back: &HeldBack,
    applied: &Applied,
    inputs: &Inputs<'_>,
    others: K::Status,
) -> Result<(Report<K::Status>, Action)> {
    let mut message = if applied.described.is_empty() {
        "mirrored; it asks for no Kubernetes objects".to_owned()
    } else {
        format!("mirrored and applied: {}", applied.described.join(", "))
    };
    if let Some(report) = inputs.report {
        message = format!("{}, {}/{} nodes ready; {message}", report.version, report.ready_nodes(), report.nodes.len());
    }
    let mut observed = obj.observe(&applied.children, inputs).overlaid(&others);
    // Applied is not working: Ready waits for what the children report. Their changes wake this
    // object (the child watches), so no polling meanwhile.
    let unready = obj.gathered(inputs).or_else(|| obj.not_working(&applied.children, inputs).map(Gathered::Pending));
    let arriving = match unready {
        Some(Gathered::Nothing(_)) => inputs.arriving,
        _ => None,
    };
    let working = matches!(unready, None | Some(Gathered::Nothing(_)));
    if working && held_back.is_empty() && !located.earlier.is_empty() {
        let left = leave(ctx, obj, &located.owner, &located.earlier).await?;
        observed.common_mut().placement = Some(located.status(&left));
    }
    let ready = readiness(held_back.verdict(&message), unready, arriving.is_some(), message);
    // An existing cluster is checked again soon: its health is what it reports. A cluster that
    // does not answer wakes its objects when it does again; this is the fallback.
    let every = match (ready.reason, arriving) {
        (Reason::ClusterUnreachable | Reason::WaitingForDependency, _) => durations::CLUSTER_RECHECK,
        // What arrives wakes it; at the end of its grace it is Ready with nothing.
        (_, Some(left)) => left,
        _ if inputs.report.is_some() => durations::HEALTH_CHECK,
        _ => durations::RESYNC,
    };
    let every = obj.due(inputs).map_or(every, |due| every.min(due));
    Ok((Report { ready, observed, ..mirrored() }, Action::requeue(every)))
}

/// Ready: what was held back, else how what the object gathers or its children stand; a new
/// object that gathers nothing yet is under way while what it gathers may still be `arriving`.
fn readiness(held: Option<Verdict>, unready: Option<Gathered>, arriving: bool, message: String) -> Verdict {
    match (held, unready) {
        (Some(verdict), _) => verdict,
        (None, Some(Gathered::Broken(why))) => Verdict::failed(Reason::DependentFailed, format!("{message}; {why}")),
        (None, Some(Gathered::Pending(why))) => Verdict::failed(Reason::Progressing, format!("{message}; {why}")),
        (None, Some(Gathered::Nothing(why))) if arriving => Verdict::failed(
            Reason::Progressing,
            format!(
                "{message}; {why}: what does may still be arriving, for {:?} after its creation",
                durations::ARRIVAL
            ),
        ),
        (None, Some(Gathered::Nothing(_)) | None) => Verdict::ok(Reason::Provisioned, message),
    }
}

/// Mirrored, but what it asks for cannot be provisioned now; for a fault, its seed status says
/// so ([`Kind::faulted`]).
fn held<K: Kind>(obj: &K, reason: Reason, message: String, observed: K::Status) -> Result<(Report<K::Status>, Action)> {
    let observed = if reason.is_under_way() { observed } else { obj.faulted().overlaid(&observed) };
    let ready = Verdict::failed(reason, message);
    Ok((Report { ready, observed, ..mirrored() }, wait_for(reason)))
}

/// The reason a build that failed gives.
fn build_reason(error: &ProvisionError) -> Reason {
    match error {
        ProvisionError::Invalid { .. } => Reason::InvalidSpec,
        ProvisionError::Missing(_) => Reason::WaitingForDependency,
        ProvisionError::NoOrganization(_) => Reason::NoOrganization,
        ProvisionError::NotProvided { .. } => Reason::ProviderNotInstalled,
        ProvisionError::NotAuthorized(_) => Reason::NotAuthorized,
        ProvisionError::QuotaExceeded(_) => Reason::QuotaExceeded,
    }
}

/// The reason an apply that users must act on gives.
fn apply_reason(error: &ApplyError) -> Reason {
    match error {
        ApplyError::NotInstalled(_) => Reason::ProviderNotInstalled,
        ApplyError::NoNamespace(_) => Reason::WaitingForDependency,
        ApplyError::NotOurs { kind, .. } if kind == "Namespace" => Reason::NamespaceConflict,
        ApplyError::NotOurs { .. } => Reason::Conflict,
        ApplyError::Rejected { .. } | ApplyError::Kube(_) => Reason::InvalidSpec,
    }
}

/// Workload clusters that could not be written to in this reconcile, and why.
#[derive(Default)]
struct HeldBack {
    /// Not there yet: waited for.
    waiting: Vec<String>,
    /// Their credentials are refused: users fix them.
    refused: Vec<String>,
    /// They do not answer.
    unreachable: Vec<String>,
}

impl HeldBack {
    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.refused.is_empty() && self.unreachable.is_empty()
    }

    /// A cluster that cannot be used; a fault reading its Secret is retried.
    fn cluster(&mut self, error: ClusterError) -> Result<()> {
        match error {
            ClusterError::NotReady(message) => self.waiting.push(message),
            ClusterError::Refused(message) => self.refused.push(message),
            error @ ClusterError::Unreachable { .. } => self.unreachable.push(error.to_string()),
            ClusterError::Kube(error) => return Err(error.into()),
        }
        Ok(())
    }

    /// A request to `cluster` failed: a workload cluster that did not answer is held back; any
    /// other fault is retried.
    fn kube(&mut self, cluster: &Destination, error: kube::Error) -> Result<()> {
        if cluster.is_management() || !did_not_answer(&error) {
            return Err(error.into());
        }
        self.unreachable.push(format!("{cluster} does not answer: {error}"));
        Ok(())
    }

    /// Ready=False while any cluster is held back, most serious first.
    fn verdict(&self, applied: &str) -> Option<Verdict> {
        let (reason, messages) = [
            (Reason::InvalidSpec, &self.refused),
            (Reason::ClusterUnreachable, &self.unreachable),
            (Reason::WaitingForDependency, &self.waiting),
        ]
        .into_iter()
        .find(|(_, messages)| !messages.is_empty())?;
        Some(Verdict::failed(reason, format!("{}; {applied}", messages.join("; "))))
    }
}

/// The clusters the object's status says its children were placed on, that the placement no
/// longer names: a stack moved, a volume's applications moved.
fn earlier_clusters<K: Kind>(obj: &K, placement: &Placement) -> Vec<Destination> {
    let Some(status) = obj.common_status().and_then(|common| common.placement.as_ref()) else { return vec![] };
    let namespace = obj.namespace().unwrap_or_default();
    let earlier = Destination::parse_list(&status.cluster, &namespace);
    earlier.into_iter().filter(|cluster| !placement.clusters.contains(cluster)).collect()
}

/// Of the clusters the object left, those that still hold children of `owner` (or cannot be
/// asked now): what a move leaves behind until the new copies work.
async fn still_holding(
    ctx: &Context,
    owner: &str,
    types: &'static [ChildType],
    earlier: Vec<Destination>,
) -> Result<Vec<Destination>> {
    let mut holding = vec![];
    for cluster in earlier {
        if types.is_empty() || cluster_gone(ctx, &cluster) {
            continue;
        }
        let held = match ctx.provider_for(&cluster).await {
            Ok(provider) => match provider.holds(owner, types).await {
                Ok(held) => held,
                Err(ApplyError::Kube(error)) if cluster.is_management() || !did_not_answer(&error) => {
                    return Err(error.into());
                }
                Err(_) => true,
            },
            Err(ClusterError::Kube(error)) => return Err(error.into()),
            Err(_) => true,
        };
        if held {
            holding.push(cluster);
        }
    }
    Ok(holding)
}

/// `status.placement`: the clusters children are on or going to, and their namespace.
fn placement_status<'a>(placement: &Placement, clusters: impl Iterator<Item = &'a Destination>) -> PlacementStatus {
    let mut clusters: Vec<&Destination> = clusters.collect();
    clusters.sort();
    clusters.dedup();
    let names: Vec<&str> = clusters.iter().map(|cluster| cluster.name()).collect();
    PlacementStatus { cluster: names.join(","), namespace: placement.namespace.clone() }
}

/// Deletes the object's children from the clusters it left; returns those still holding them
/// (they do not answer). A cluster whose ContainerCluster is gone took them along.
async fn leave<K: Kind>(ctx: &Context, obj: &K, owner: &str, earlier: &[Destination]) -> Result<Vec<Destination>> {
    let mut left = vec![];
    for cluster in earlier {
        let provider = match ctx.provider_for(cluster).await {
            Ok(provider) => provider,
            Err(ClusterError::Kube(error)) => return Err(error.into()),
            Err(_) if cluster_gone(ctx, cluster) => continue,
            Err(_) => {
                left.push(cluster.clone());
                continue;
            }
        };
        match provider.prune(owner, K::CHILD_TYPES, &[]).await {
            Ok(pruned) => {
                info!(pruned, cluster = %cluster, kind = %K::kind(&()), name = %obj.name_any(), "moved: deleted the children left behind")
            }
            Err(ApplyError::Kube(error)) if !cluster.is_management() && did_not_answer(&error) => {
                left.push(cluster.clone());
            }
            Err(error) => return Err(Error::from_apply(error)),
        }
    }
    Ok(left)
}

/// Whether the ContainerCluster of a workload cluster is gone: what was placed on it went with
/// it, without asking it.
fn cluster_gone(ctx: &Context, cluster: &Destination) -> bool {
    match cluster {
        Destination::Management => false,
        Destination::Workload { namespace, name } => ctx.index.get::<ContainerCluster>(Some(namespace), name).is_none(),
    }
}

/// A child as messages name it: kind, namespace and name, and its cluster unless it is the
/// management cluster.
fn describe_child(cluster: &Destination, child: &DynamicObject) -> String {
    let kind = child.types.as_ref().map(|t| t.kind.as_str()).unwrap_or_default();
    let described = crate::describe(kind, child.namespace().as_deref(), &child.name_any());
    match cluster {
        Destination::Management => described,
        workload => format!("{described} on {}", workload.name()),
    }
}

/// What `deletionPolicy` says of the children, on every cluster they may be on: where the
/// object is placed and where its status says they went. A workload cluster whose
/// ContainerCluster is gone took them along; one that does not answer holds the delete up,
/// and what holds it is returned.
pub(super) async fn release<K: Kind>(ctx: &Context, obj: &K, owner: &str) -> Result<Option<String>> {
    let namespace = obj.namespace().unwrap_or_default();
    let mut clusters: Vec<Destination> = kinds::place(obj, &ctx.index).map(|p| p.clusters).unwrap_or_default();
    if let Some(status) = obj.common_status().and_then(|common| common.placement.as_ref()) {
        clusters.extend(Destination::parse_list(&status.cluster, &namespace));
    }
    for cluster in &release_order(clusters) {
        if cluster_gone(ctx, cluster) {
            continue;
        }
        let provider = match ctx.provider_for(cluster).await {
            Ok(provider) => provider,
            Err(ClusterError::Kube(error)) => return Err(Error::Kube(error)),
            Err(other) => {
                return Ok(Some(format!(
                    "deleting: the children on {cluster} cannot be released: {other}; the delete waits until it \
                     answers or its ContainerCluster is deleted"
                )));
            }
        };
        let released =
            provider.release(owner, K::CHILD_TYPES, obj.deletion_policy()).await.map_err(Error::from_apply)?;
        if released > 0 {
            info!(released, cluster = %cluster, policy = ?obj.deletion_policy(), "released children");
        }
    }
    Ok(None)
}

/// The clusters whose children are released, each once: the workload clusters first, the
/// management cluster last. The management cluster holds what reaches a Cluster API cluster
/// (its kubeconfig Secret, in the Environment's namespace there): released first, it would cut
/// the way to what runs there, and leave it.
fn release_order(mut clusters: Vec<Destination>) -> Vec<Destination> {
    clusters.retain(|cluster| *cluster != Destination::Management);
    clusters.sort();
    clusters.dedup();
    clusters.push(Destination::Management);
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_released_from_workload_clusters_before_the_management_cluster_that_reaches_them() {
        let workload = |name: &str| Destination::Workload { namespace: "acme".into(), name: name.into() };
        let placed = vec![workload("main"), Destination::Management, workload("edge"), workload("main")];
        assert_eq!(release_order(placed), [workload("edge"), workload("main"), Destination::Management]);
        assert_eq!(release_order(vec![]), [Destination::Management]);
    }

    #[test]
    fn a_new_object_that_gathers_nothing_yet_is_under_way_through_its_arrival_grace() {
        let nothing = || Some(Gathered::Nothing("nothing stands on it yet".to_owned()));
        let message = || "mirrored; it asks for no Kubernetes objects".to_owned();
        let arriving = readiness(None, nothing(), true, message());
        assert_eq!((arriving.ok, arriving.reason), (false, Reason::Progressing));
        assert!(
            arriving
                .message
                .ends_with("nothing stands on it yet: what does may still be arriving, for 15s after its creation"),
            "{}",
            arriving.message
        );
        let settled = readiness(None, nothing(), false, message());
        assert_eq!((settled.ok, settled.reason, settled.message), (true, Reason::Provisioned, message()));
        // What gathers something, or was held back, says so whatever its age.
        let pending = readiness(None, Some(Gathered::Pending("Volume data is not Ready yet".into())), true, message());
        assert_eq!((pending.ok, pending.reason), (false, Reason::Progressing));
        let broken = readiness(None, Some(Gathered::Broken("Volume data needs users".into())), false, message());
        assert_eq!(broken.reason, Reason::DependentFailed);
        let held = Verdict::failed(Reason::ClusterUnreachable, "cluster main does not answer");
        assert_eq!(readiness(Some(held.clone()), nothing(), true, message()), held);
        assert_eq!(readiness(None, None, false, message()).reason, Reason::Provisioned);
    }
}
