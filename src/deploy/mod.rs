//! The rollout state machine, pure: from what a Deployment recorded so far and what the cluster
//! shows now, the next recorded state and the steps that lead there.
//!
//! The recorded state lives in the database (`deployments.result`), written in the same
//! transaction as the steps' `deployment_events` rows. A step is taken only when the state
//! changes, so a restart that reads the state back takes no step twice and loses none.

mod terms;
#[cfg(test)]
mod tests;

pub use terms::{
    ApplicationRollout, DeploymentPhase, DeploymentType, REVISION_LABEL, Readiness, RolloutStage, Runtime, StackState,
};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment as Workload;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::free_form::FreeForm;
use crate::reason::Reason;

/// How often a running rollout looks at its workloads when nothing wakes it: a change of a
/// workload of its stack does (`operator::wake_rollouts`).
pub const POLL: Duration = Duration::from_secs(30);
/// How often a rollout waiting for its stack (to be ready, or free of the rollout before it)
/// looks again when nothing wakes it: a change of the stack's phase does
/// (`Kind::awaiting_status`).
pub const QUEUED_POLL: Duration = Duration::from_secs(60);

/// The rollout as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    pub phase: DeploymentPhase,
    /// Why it is where it is: the `Ready` condition's reason.
    pub reason: Reason,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<Timestamp>,
    #[serde(default)]
    pub applications: Vec<ApplicationRollout>,
}

impl Rollout {
    fn pending() -> Self {
        Self {
            phase: DeploymentPhase::Pending,
            reason: Reason::Queued,
            message: "waiting to start".into(),
            started_at: None,
            completed_at: None,
            applications: vec![],
        }
    }
}

/// One step of a rollout: a `deployment_events` row, a `deployment_logs` line and a Kubernetes
/// Event. `key` is unique per deployment, so a step is recorded at most once.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub key: String,
    /// Seed style, e.g. `deployment.started`.
    pub event_type: &'static str,
    /// The Kubernetes Event's reason, e.g. `Started`.
    pub reason: &'static str,
    pub level: Level,
    /// The application the step is about, if one.
    pub application: Option<String>,
    pub message: String,
    pub data: Value,
}

/// `deployment_events.level` and `deployment_logs.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// What a workload of the new revision shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Not there yet, not at the revision yet, or not all replicas ready: says what is missing.
    Progressing(String),
    Ready,
    /// It will not become ready (its progress deadline passed).
    Failed(String),
}

/// An application's workloads as the rollout sees them: the main one and the preview or canary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workloads {
    pub main: Health,
    pub side: Health,
}

/// An application to roll out, as of the rollout's start.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutTarget {
    pub name: String,
    pub runtime: Runtime,
    pub revision: String,
    pub config: FreeForm,
}

/// What the rollout knows besides its recorded state.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub strategy: DeploymentType,
    /// The stack's name and state.
    pub stack: (&'a str, StackState),
    /// Another running Deployment of the stack, which this one waits for.
    pub queued_behind: Option<&'a str>,
    /// Why the stack's tenant takes no rollout: its Organization or Environment is inactive.
    pub suspended: Option<String>,
    /// What to roll out, or why nothing can be (a rollback whose parent recorded nothing).
    pub targets: Result<Vec<RolloutTarget>, String>,
    /// How long a ready canary is watched before promotion.
    pub analysis: Duration,
    /// Promote a canary on its own after the analysis, or wait for the promote annotation.
    pub auto_promote: bool,
    /// The promote annotation is set.
    pub promote: bool,
    /// When the Deployment was created, and how long after that it waits for its stack.
    pub created: Option<Timestamp>,
    pub start_deadline: Duration,
    pub cancel: bool,
    /// By application name, for the applications that are not done.
    pub workloads: &'a BTreeMap<String, Workloads>,
    pub now: Timestamp,
}

/// The next recorded state and the steps to record with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub rollout: Rollout,
    pub steps: Vec<Step>,
    /// When to look again; `None` once the rollout has ended.
    pub wait: Option<Duration>,
    /// The parent Deployment becomes `rolled_back` in the same transaction.
    pub rolls_back_parent: bool,
}

/// From the recorded state (`None` before the first step) and the facts, the next state.
pub fn advance(recorded: Option<&Rollout>, facts: &Facts) -> Transition {
    let mut steps = vec![];
    let mut rollout = match recorded {
        Some(rollout) => rollout.clone(),
        None => {
            steps.push(step("created", "deployment.created", "Created", Level::Info, None, created_message(facts)));
            Rollout::pending()
        }
    };
    let mut rolls_back_parent = false;
    let wait = match rollout.phase {
        DeploymentPhase::Pending => admit(&mut rollout, facts, &mut steps),
        DeploymentPhase::Running => {
            let wait = progress(&mut rollout, facts, &mut steps);
            rolls_back_parent =
                rollout.phase == DeploymentPhase::Completed && facts.strategy == DeploymentType::Rollback;
            wait
        }
        _ => None,
    };
    Transition { rollout, steps, wait, rolls_back_parent }
}

fn created_message(facts: &Facts) -> String {
    format!("{} rollout of stack {} requested", strategy_name(facts.strategy), facts.stack.0)
}

fn strategy_name(strategy: DeploymentType) -> &'static str {
    match strategy {
        DeploymentType::Standard => "standard",
        DeploymentType::BlueGreen => "blue_green",
        DeploymentType::Canary => "canary",
        DeploymentType::Rolling => "rolling",
        DeploymentType::Rollback => "rollback",
    }
}

fn step(
    key: &str,
    event_type: &'static str,
    reason: &'static str,
    level: Level,
    application: Option<&str>,
    message: String,
) -> Step {
    let key = match application {
        Some(application) => format!("{key}/{application}"),
        None => key.to_owned(),
    };
    let data = match application {
        Some(application) => json!({ "application": application }),
        None => json!({}),
    };
    Step { key, event_type, reason, level, application: application.map(str::to_owned), message, data }
}

/// Why a rollout of `stack`, suspended for `why`, is refused (at `kubectl apply`) or fails.
pub fn suspended_stack(why: &str, stack: &str) -> String {
    format!("{why}: stack {stack} takes no rollout until it is active again")
}

/// Ends the rollout, with the step that says how.
fn finish(rollout: &mut Rollout, facts: &Facts, phase: DeploymentPhase, reason: Reason, message: String) -> Step {
    rollout.phase = phase;
    rollout.reason = reason;
    rollout.message = message.clone();
    rollout.completed_at = Some(facts.now);
    let (key, event_type, event_reason, level) = match phase {
        DeploymentPhase::Completed => ("completed", "deployment.completed", "Completed", Level::Info),
        DeploymentPhase::Cancelled => ("cancelled", "deployment.cancelled", "Cancelled", Level::Warning),
        _ => ("failed", "deployment.failed", "Failed", Level::Error),
    };
    step(key, event_type, event_reason, level, None, message)
}

/// Pending: cancelled, queued, refused as `create_deployment` refuses, or started.
fn admit(rollout: &mut Rollout, facts: &Facts, steps: &mut Vec<Step>) -> Option<Duration> {
    let (stack, stack_state) = facts.stack;
    if facts.cancel {
        steps.push(finish(
            rollout,
            facts,
            DeploymentPhase::Cancelled,
            Reason::Cancelled,
            "cancelled before it started".into(),
        ));
        return None;
    }
    if let Some(why) = &facts.suspended {
        let message = suspended_stack(why, stack);
        steps.push(finish(rollout, facts, DeploymentPhase::Failed, Reason::Suspended, message));
        return None;
    }
    if let Some(running) = facts.queued_behind {
        rollout.reason = Reason::Queued;
        rollout.message = format!("queued behind Deployment {running}, which is rolling out stack {stack}");
        return Some(QUEUED_POLL);
    }
    if stack_state.readiness != Readiness::Deployable {
        // A stack applied with its rollout is still coming up: wait for it, as `create_deployment`
        // is applied when the rollout would start, up to the deadline.
        let coming_up = stack_state.readiness == Readiness::ComingUp;
        let waited = facts.created.map(|created| facts.now.duration_since(created));
        let within = waited.is_none_or(|waited| waited.as_secs_f64() < facts.start_deadline.as_secs_f64());
        if coming_up && within {
            rollout.reason = Reason::WaitingForStack;
            rollout.message = format!(
                "waiting for Stack {stack} to be ready (it is {}), at most {}s after this Deployment was created",
                stack_state.phase,
                facts.start_deadline.as_secs()
            );
            return Some(QUEUED_POLL);
        }
        let message = format!("Stack {stack} is {}: only a ready or deployed stack can be deployed", stack_state.phase);
        steps.push(finish(rollout, facts, DeploymentPhase::Failed, Reason::StackNotDeployable, message));
        return None;
    }
    let targets = match &facts.targets {
        Ok(targets) if targets.is_empty() => Err(format!("Stack {stack} has no application to deploy")),
        Ok(targets) => Ok(targets),
        Err(message) => Err(message.clone()),
    };
    let targets = match targets {
        Ok(targets) => targets,
        Err(message) => {
            steps.push(finish(rollout, facts, DeploymentPhase::Failed, Reason::InvalidRollout, message));
            return None;
        }
    };
    rollout.phase = DeploymentPhase::Running;
    rollout.started_at = Some(facts.now);
    rollout.reason = Reason::Progressing;
    rollout.message = "started".into();
    let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
    steps.push(step(
        "started",
        "deployment.started",
        "Started",
        Level::Info,
        None,
        format!("{} rollout of {} started", strategy_name(facts.strategy), names.join(", ")),
    ));
    for target in targets {
        let (stage, message) = match target.runtime {
            Runtime::Container => (first_stage(facts.strategy), None),
            Runtime::AsIs(application_type) => {
                (RolloutStage::Done, Some(format!("{application_type} application: applied as is")))
            }
        };
        steps.push(step(
            "applied",
            "application.applied",
            "ApplicationApplied",
            Level::Info,
            Some(&target.name),
            format!("{}: revision {} applied ({})", target.name, target.revision, describe_config(&target.config)),
        ));
        rollout.applications.push(ApplicationRollout {
            name: target.name.clone(),
            revision: target.revision.clone(),
            config: target.config.clone(),
            stage,
            since: facts.now.to_string(),
            message,
        });
    }
    // The workloads change once this state is published: look at them next time.
    Some(POLL)
}

fn describe_config(config: &FreeForm) -> String {
    match config.0.get("image").and_then(Value::as_str) {
        Some(image) => format!("image {image}"),
        None => "its deployment configuration".into(),
    }
}

/// The stage an application starts in, by strategy.
pub fn first_stage(strategy: DeploymentType) -> RolloutStage {
    match strategy {
        DeploymentType::BlueGreen => RolloutStage::Preview,
        DeploymentType::Canary => RolloutStage::Canary,
        DeploymentType::Standard | DeploymentType::Rolling | DeploymentType::Rollback => RolloutStage::Progressing,
    }
}

/// Running: cancelled, or each application one stage further as its workloads allow; the
/// rollout ends when one fails or all are done.
fn progress(rollout: &mut Rollout, facts: &Facts, steps: &mut Vec<Step>) -> Option<Duration> {
    if facts.cancel {
        let message = "cancelled; the applications return to the release they ran before".to_owned();
        steps.push(finish(rollout, facts, DeploymentPhase::Cancelled, Reason::Cancelled, message));
        return None;
    }
    let mut wait = POLL;
    for app in rollout.applications.iter_mut() {
        let unknown = Workloads { main: Health::Progressing("not observed yet".into()), side: Health::Ready };
        let observed = facts.workloads.get(&app.name).unwrap_or(&unknown);
        if let Some(next_check) = advance_application(app, observed, facts, steps) {
            wait = wait.min(next_check);
        }
    }
    if let Some(failed) = rollout.applications.iter().find(|a| a.stage == RolloutStage::Failed) {
        let message = format!(
            "{} did not become ready ({}); the applications return to the release they ran before",
            failed.name,
            failed.message.as_deref().unwrap_or("unhealthy")
        );
        steps.push(finish(rollout, facts, DeploymentPhase::Failed, Reason::HealthCheckFailed, message));
        return None;
    }
    if rollout.applications.iter().all(|a| a.stage == RolloutStage::Done) {
        let names: Vec<&str> = rollout.applications.iter().map(|a| a.name.as_str()).collect();
        let message = format!("{} run the new revision", names.join(", "));
        steps.push(finish(rollout, facts, DeploymentPhase::Completed, Reason::Completed, message));
        return None;
    }
    let waiting: Vec<String> = rollout
        .applications
        .iter()
        .filter(|a| a.stage != RolloutStage::Done)
        .map(|a| format!("{} ({:?}: {})", a.name, a.stage, a.message.as_deref().unwrap_or("waiting")))
        .collect();
    rollout.message = format!("waiting for {}", waiting.join(", "));
    Some(wait)
}

/// Moves one application on; returns how soon it wants another look, if sooner than the poll.
fn advance_application(
    app: &mut ApplicationRollout,
    observed: &Workloads,
    facts: &Facts,
    steps: &mut Vec<Step>,
) -> Option<Duration> {
    let name = app.name.clone();
    let enter = |app: &mut ApplicationRollout, stage: RolloutStage, message: Option<String>| {
        app.stage = stage;
        app.since = facts.now.to_string();
        app.message = message;
    };
    let failed = |steps: &mut Vec<Step>, what: &str, why: &str| {
        steps.push(step(
            "unhealthy",
            "health_check.failed",
            "HealthCheckFailed",
            Level::Error,
            Some(&name),
            format!("{name}: {what} failed its health check: {why}"),
        ));
    };
    match (app.stage, &observed.main, &observed.side) {
        (RolloutStage::Progressing | RolloutStage::Switched | RolloutStage::Promoting, Health::Ready, _) => {
            steps.push(step(
                "ready",
                "health_check.passed",
                "HealthCheckPassed",
                Level::Info,
                Some(&name),
                format!("{name}: every replica of revision {} is ready", app.revision),
            ));
            enter(app, RolloutStage::Done, None);
        }
        (RolloutStage::Progressing | RolloutStage::Switched | RolloutStage::Promoting, Health::Failed(why), _) => {
            failed(steps, "the workload", why);
            enter(app, RolloutStage::Failed, Some(why.clone()));
        }
        (RolloutStage::Preview, _, Health::Ready) => {
            steps.push(step(
                "preview-ready",
                "health_check.passed",
                "HealthCheckPassed",
                Level::Info,
                Some(&name),
                format!("{name}: the preview of revision {} is ready", app.revision),
            ));
            steps.push(step(
                "switched",
                "deployment.promoted",
                "Promoted",
                Level::Info,
                Some(&name),
                format!("{name}: the Service now serves revision {}; the old pods are replaced", app.revision),
            ));
            enter(app, RolloutStage::Switched, None);
        }
        (RolloutStage::Canary, _, Health::Ready) => {
            steps.push(step(
                "canary-ready",
                "health_check.passed",
                "HealthCheckPassed",
                Level::Info,
                Some(&name),
                format!(
                    "{name}: the canary of revision {} is ready; watching it for {}s",
                    app.revision,
                    facts.analysis.as_secs()
                ),
            ));
            enter(app, RolloutStage::Analysis, None);
            return Some(facts.analysis);
        }
        (RolloutStage::Preview | RolloutStage::Canary | RolloutStage::Analysis, _, Health::Failed(why)) => {
            let what = if app.stage == RolloutStage::Preview { "the preview" } else { "the canary" };
            failed(steps, what, why);
            enter(app, RolloutStage::Failed, Some(format!("{what} was aborted: {why}")));
        }
        (RolloutStage::Analysis, _, side) => {
            let since: Timestamp = app.since.parse().unwrap_or(facts.now);
            let watched = Duration::try_from(facts.now.duration_since(since)).unwrap_or_default();
            if let Health::Progressing(why) = side {
                // Ready once, not now (a pod restarted): the analysis starts again.
                enter(app, RolloutStage::Canary, Some(format!("the canary is not ready any more: {why}")));
                return None;
            }
            if watched < facts.analysis {
                app.message = Some(format!("analysing the canary for {}s more", (facts.analysis - watched).as_secs()));
                return Some(facts.analysis - watched);
            }
            if !(facts.auto_promote || facts.promote) {
                app.message = Some("the canary is healthy; waiting for the annotation windflow.io/promote=true".into());
                return None;
            }
            steps.push(step(
                "promoted",
                "deployment.promoted",
                "Promoted",
                Level::Info,
                Some(&name),
                format!("{name}: canary of revision {} promoted; every replica rolls to it", app.revision),
            ));
            enter(app, RolloutStage::Promoting, None);
        }
        (RolloutStage::Preview | RolloutStage::Canary, _, Health::Progressing(why))
        | (RolloutStage::Progressing | RolloutStage::Switched | RolloutStage::Promoting, Health::Progressing(why), _) =>
        {
            app.message = Some(why.clone());
        }
        (RolloutStage::Done | RolloutStage::Failed, _, _) => {}
    }
    None
}

/// How a workload of `revision` is doing, from the apps/v1 Deployment the API server holds.
pub fn health(workload: Option<&Workload>, revision: &str) -> Health {
    let Some(workload) = workload else {
        return Health::Progressing("the workload does not exist yet".into());
    };
    let spec = &workload.spec;
    let at_revision = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .and_then(|labels| labels.get(REVISION_LABEL))
        .is_some_and(|label| label == revision);
    if !at_revision {
        return Health::Progressing(format!("the workload is not at revision {revision} yet"));
    }
    let status = workload.status.clone().unwrap_or_default();
    let generation = workload.metadata.generation.unwrap_or_default();
    if status.observed_generation.unwrap_or_default() < generation {
        return Health::Progressing("the Deployment controller has not seen the new revision yet".into());
    }
    if let Some(stuck) = status.conditions.iter().flatten().find(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.status.as_deref() == Some("False")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Health::Failed(stuck.message.clone().unwrap_or_else(|| "progress deadline exceeded".into()));
    }
    let wanted = spec.replicas.unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or_default();
    let available = status.available_replicas.unwrap_or_default();
    let total = status.replicas.unwrap_or_default();
    if updated < wanted || available < wanted || total > updated {
        return Health::Progressing(format!("{available}/{wanted} replicas ready, {updated} updated, {total} in all"));
    }
    Health::Ready
}
