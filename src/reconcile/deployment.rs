//! A Deployment's lifecycle after its row is written: read the recorded rollout back, look at
//! the workloads, take the state machine's next steps in one transaction, publish their Events,
//! and report. The Application controller shapes the workloads from the status published here.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment as Workload;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tracing::info;
use uuid::Uuid;

use super::status::{Report, Verdict};
use super::{Context, Lifecycle, Result, durations, mirrored, publish};
use crate::deploy::{
    self, DeploymentPhase, DeploymentType, Facts, Health, Rollout, RolloutStage, RolloutTarget, Transition, Workloads,
};
use crate::events;
use crate::kinds::Index;
use crate::kinds::application::{Application, ApplicationType};
use crate::kinds::deployment::{Deployment, DeploymentStatus};
use crate::kinds::policy::deploying::{self, Decision, Refusal};
use crate::kinds::release::{self, Settings};
use crate::kinds::stack::{Stack, StackPhase};
use crate::mirror::actor::{Actor, CREATED_BY};
use crate::provision::apply::Provider;
use crate::provision::cache::Cached;
use crate::provision::types::DEPLOYMENT;
use crate::reason::Reason;

/// The annotation that promotes a canary whose `deploymentConfig.autoPromote` is false.
pub const PROMOTE_ANNOTATION: &str = "windflow.io/promote";

/// A Deployment's lifecycle: it rolls its stack out.
pub struct RollOut;

impl Lifecycle<Deployment> for RollOut {
    fn progress<'a>(
        obj: &'a Deployment,
        ctx: &'a Context,
    ) -> BoxFuture<'a, Result<(Report<DeploymentStatus>, Action)>> {
        Box::pin(roll_out(obj, ctx))
    }

    fn retire<'a>(obj: &'a Deployment, ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let running = release::phase_of(obj) == DeploymentPhase::Running;
            if running {
                let note =
                    "deleted while rolling out: cancelled; the applications return to the release they ran before";
                publish(ctx, obj, EventType::Warning, Reason::Cancelled, note).await;
            }
            Ok(())
        })
    }
}

async fn roll_out(obj: &Deployment, ctx: &Context) -> Result<(Report<DeploymentStatus>, Action)> {
    let id: Uuid = obj.uid().and_then(|uid| uid.parse().ok()).unwrap_or_default();
    let recorded = events::load(&ctx.pool, id).await?;
    let started = recorded.as_ref().is_some_and(|r| r.phase != DeploymentPhase::Pending);
    if !started && let Some((reason, refused)) = refusal(obj, ctx).await? {
        // Announced by the status update when Ready turns False or the reason changes.
        let waiting = Report {
            ready: Verdict::failed(reason, refused.clone()),
            observed: DeploymentStatus {
                phase: Some(DeploymentPhase::Pending),
                message: Some(refused),
                ..Default::default()
            },
            ..mirrored()
        };
        return Ok((waiting, Action::requeue(durations::PROVIDER_RECHECK)));
    }
    let (transition, parent) = match &recorded {
        Some(rollout) if rollout.phase.is_terminal() => {
            (Transition { rollout: rollout.clone(), steps: vec![], wait: None, rolls_back_parent: false }, None)
        }
        _ => {
            let index = &ctx.index;
            let workloads = match &recorded {
                Some(rollout) if rollout.phase == DeploymentPhase::Running => observe(obj, rollout, index, ctx).await?,
                _ => BTreeMap::new(),
            };
            let (stack_phase, queued_behind) = (stack_phase(obj, index), queued_behind(obj, index));
            let facts = facts(obj, index, &workloads, (stack_phase, queued_behind.as_deref()));
            let transition = deploy::advance(recorded.as_ref(), &facts);
            (transition, parent_id(obj, index))
        }
    };
    if !transition.steps.is_empty() || recorded.as_ref() != Some(&transition.rollout) {
        let new_events = events::record(&ctx.pool, id, recorded.as_ref(), &transition, parent).await?;
        info!(phase = transition.rollout.phase.as_str(), new_events, "rollout step recorded");
        ctx.views.request();
    }
    events::publish(&ctx.pool, &ctx.client, &ctx.reporter, obj, id).await?;
    let action = match transition.wait {
        Some(wait) => Action::requeue(wait),
        None => Action::requeue(durations::RESYNC),
    };
    let mut report = report(&transition.rollout);
    report.observed.superseded_by = release::superseded_by(obj, &ctx.index);
    Ok((report, action))
}

/// Why the rollout may not start, by the rule admission applies (`kinds::policy::deploying`),
/// on what the caches hold now: a Deployment admitted while the webhook was down or before
/// a Policy changed is checked again. Nothing starts while this says no; a change of Policy
/// or User shows at the next look.
async fn refusal(obj: &Deployment, ctx: &Context) -> Result<Option<(Reason, String)>> {
    let rollouts = &ctx.config.rollouts;
    let requester = match rollouts.requesters_recorded {
        false => None,
        true => match Actor::recorded(obj.annotations(), CREATED_BY) {
            Some(actor) => Some(actor),
            None => return Ok(Some((Reason::NotAuthorized, Refusal::Unattributed.to_string()))),
        },
    };
    Ok(match deploying::decide(&ctx.index, obj, requester.as_ref(), &rollouts.platform_groups).await? {
        Decision::Allowed => None,
        Decision::Refused(refusal) => Some((Reason::NotAuthorized, refusal.to_string())),
        Decision::Undecided(why) => Some((Reason::WaitingForDependency, why)),
    })
}

/// The stack's phase as its applications and the other rollouts make it now, not as its status
/// last said: the Stack controller may have looked at them before the caches showed their
/// latest change, and nothing would wake it again.
fn stack_phase(obj: &Deployment, index: &Index) -> StackPhase {
    index
        .get::<Stack>(obj.namespace().as_deref(), &obj.spec.stack_ref.name)
        .map_or(StackPhase::Draft, |stack| release::phase_for_rollout(&stack, index, &obj.name_any()))
}

/// The other rollout of the stack that is running, which this one queues behind.
fn queued_behind(obj: &Deployment, index: &Index) -> Option<String> {
    let mut others = index.all::<Deployment>(obj.namespace().as_deref());
    others.retain(|d| d.spec.stack_ref == obj.spec.stack_ref && d.metadata.name != obj.metadata.name);
    let running = others.iter().find(|d| release::phase_of(d) == DeploymentPhase::Running);
    running.map(|d| d.name_any())
}

/// What `advance` needs, read from the object, the index and the workloads; the stack's phase
/// and the rollout it queues behind.
fn facts<'a>(
    obj: &'a Deployment,
    index: &Index,
    workloads: &'a BTreeMap<String, Workloads>,
    (stack_phase, queued_behind): (StackPhase, Option<&'a str>),
) -> Facts<'a> {
    let spec = &obj.spec;
    let stack = spec.stack_ref.name.as_str();
    // Bad settings fail the rollout at admission; the defaults stand in for them meanwhile.
    let settings = Settings::parse(&spec.deployment_config);
    let (analysis, auto_promote, start_deadline) = match &settings {
        Ok(settings) => (settings.analysis, settings.auto_promote, settings.start_deadline),
        Err(_) => (Duration::ZERO, true, Duration::ZERO),
    };
    Facts {
        strategy: spec.deployment_type,
        stack: (stack, stack_phase.for_rollout()),
        queued_behind,
        suspended: index.get::<Stack>(obj.namespace().as_deref(), stack).and_then(|s| index.suspension_of(s.as_ref())),
        targets: settings.map_err(|error| error.to_string()).and_then(|_| targets(obj, index)),
        analysis,
        auto_promote,
        promote: obj.annotations().get(PROMOTE_ANNOTATION).is_some_and(|v| v == "true"),
        created: obj.metadata.creation_timestamp.as_ref().map(|time| time.0),
        start_deadline,
        cancel: spec.cancel,
        workloads,
        now: Timestamp::now(),
    }
}

/// What the rollout deploys: the stack's applications (or the one named) as configured now, or
/// for a rollback what the parent deployed.
fn targets(obj: &Deployment, index: &Index) -> std::result::Result<Vec<RolloutTarget>, String> {
    let spec = &obj.spec;
    let mut applications = index.all::<Application>(obj.namespace().as_deref());
    applications.retain(|a| {
        a.spec.stack_ref == spec.stack_ref && spec.application_ref.as_ref().is_none_or(|r| r.name == a.name_any())
    });
    let Some(parent_ref) = &spec.parent_deployment_ref else {
        return Ok(applications
            .into_iter()
            .map(|app| RolloutTarget {
                name: app.name_any(),
                runtime: app.spec.application_type.runtime(),
                revision: release::revision(&app.spec.deployment_config),
                config: app.spec.deployment_config.clone(),
            })
            .collect());
    };
    let parent = index
        .get::<Deployment>(obj.namespace().as_deref(), &parent_ref.name)
        .ok_or_else(|| format!("spec.parentDeploymentRef: Deployment {} does not exist", parent_ref.name))?;
    let status = parent.status.clone().unwrap_or_default();
    if status.phase != Some(DeploymentPhase::Completed) {
        return Err(format!(
            "spec.parentDeploymentRef: Deployment {} is {}; only a completed Deployment can be rolled back to",
            parent_ref.name,
            release::phase_of(&parent)
        ));
    }
    Ok(status
        .applications
        .into_iter()
        .filter(|part| part.stage == RolloutStage::Done)
        .filter_map(|part| {
            let app = applications.iter().find(|a| a.name_any() == part.name)?;
            Some(RolloutTarget {
                name: part.name,
                runtime: app.spec.application_type.runtime(),
                revision: part.revision,
                config: part.config,
            })
        })
        .collect())
}

/// The workloads of the applications still rolling out, as the API server holds them.
async fn observe(
    obj: &Deployment,
    rollout: &Rollout,
    index: &Index,
    ctx: &Context,
) -> Result<BTreeMap<String, Workloads>> {
    let mut observed = BTreeMap::new();
    let side_suffix = match obj.spec.deployment_type {
        DeploymentType::BlueGreen => Some("preview"),
        DeploymentType::Canary => Some("canary"),
        _ => None,
    };
    for part in &rollout.applications {
        if matches!(part.stage, RolloutStage::Done | RolloutStage::Failed) {
            continue;
        }
        let Some(app) = index.get::<Application>(obj.namespace().as_deref(), &part.name) else {
            let gone = Health::Failed(format!("Application {} was deleted", part.name));
            observed.insert(part.name.clone(), Workloads { main: gone.clone(), side: gone });
            continue;
        };
        if app.spec.application_type != ApplicationType::Container {
            continue;
        }
        // Its workloads are on its stack's cluster; one that is not connected (not there yet,
        // not answering) keeps the rollout waiting.
        let connected =
            release::application_placement(&app, index).map_err(|error| error.to_string()).and_then(|placement| {
                let cluster = placement.clusters.first().ok_or("no cluster")?;
                let provider =
                    ctx.clusters.connected(cluster).ok_or_else(|| format!("{cluster} is not connected yet"))?;
                Ok((provider, placement.workload_namespace().to_owned()))
            });
        let (provider, namespace) = match connected {
            Ok(connected) => connected,
            Err(why) => {
                let waiting = Health::Progressing(why);
                observed.insert(part.name.clone(), Workloads { main: waiting.clone(), side: waiting });
                continue;
            }
        };
        let main = match part.stage {
            RolloutStage::Progressing | RolloutStage::Switched | RolloutStage::Promoting => {
                deploy::health(workload(&provider, &namespace, part.name.clone()).await?.as_ref(), &part.revision)
            }
            _ => Health::Progressing("not rolled yet".into()),
        };
        let side = match (side_suffix, part.stage) {
            (Some(suffix), RolloutStage::Preview | RolloutStage::Canary | RolloutStage::Analysis) => {
                let side = workload(&provider, &namespace, format!("{}-{suffix}", part.name)).await?;
                deploy::health(side.as_ref(), &part.revision)
            }
            _ => Health::Ready,
        };
        observed.insert(part.name.clone(), Workloads { main, side });
    }
    Ok(observed)
}

/// A workload of a rollout, as its cluster's child cache holds it (the watch event that woke the
/// rollout is in it already); asked of the API server while the cache has not listed.
async fn workload(provider: &Provider, namespace: &str, name: String) -> Result<Option<Workload>> {
    let cached = match provider.children().named(DEPLOYMENT, (Some(namespace.to_owned()), name.clone())) {
        Cached::Found(child) => child.as_ref().clone().try_parse::<Workload>().ok().map(Some),
        Cached::Absent => Some(None),
        Cached::Unknown => None,
    };
    match cached {
        Some(workload) => Ok(workload),
        None => Ok(Api::<Workload>::namespaced(provider.client().clone(), namespace).get_opt(&name).await?),
    }
}

/// The id of the parent a rollback returns to, once mirrored.
fn parent_id(obj: &Deployment, index: &Index) -> Option<Uuid> {
    let parent = obj.spec.parent_deployment_ref.as_ref()?;
    index.get::<Deployment>(obj.namespace().as_deref(), &parent.name)?.uid()?.parse().ok()
}

/// The status a recorded rollout shows. Its steps publish their own Events.
fn report(rollout: &Rollout) -> Report<DeploymentStatus> {
    let message = rollout.message.clone();
    let reason = match rollout.phase {
        DeploymentPhase::Pending => match rollout.reason {
            Reason::WaitingForStack => Reason::WaitingForStack,
            _ => Reason::Queued,
        },
        DeploymentPhase::Running => Reason::Progressing,
        DeploymentPhase::Completed => Reason::Completed,
        DeploymentPhase::Cancelled => Reason::Cancelled,
        DeploymentPhase::RolledBack => Reason::RolledBack,
        DeploymentPhase::Failed => match rollout.reason {
            Reason::StackNotDeployable => Reason::StackNotDeployable,
            Reason::Suspended => Reason::Suspended,
            Reason::InvalidRollout => Reason::InvalidRollout,
            _ => Reason::HealthCheckFailed,
        },
    };
    let ready = if rollout.phase == DeploymentPhase::Completed {
        Verdict::ok(reason, message.clone())
    } else {
        Verdict::failed(reason, message.clone())
    };
    let observed = DeploymentStatus {
        phase: Some(rollout.phase),
        message: Some(message),
        applications: rollout.applications.clone(),
        started_at: rollout.started_at.map(|at| at.to_string()),
        completed_at: rollout.completed_at.map(|at| at.to_string()),
        ..Default::default()
    };
    Report { ready, observed, announce: false, ..mirrored() }
}
