//! Which release an application runs, and how a rollout in progress shapes its workloads; the
//! stack and application statuses that follow from the Deployments. Pure: read from the index.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde_json::Value;

use super::Index;
use super::shared::{Standing, standing};

pub use crate::deploy::REVISION_LABEL;
use crate::deploy::{ApplicationRollout, DeploymentPhase, DeploymentType, RolloutStage};
use crate::free_form::FreeForm;
use crate::kinds::application::{Application, ApplicationDeploymentStatus, ApplicationRelease, ApplicationStatus};
use crate::kinds::deployment::Deployment;
use crate::kinds::stack::{Stack, StackPhase, StackStatus};
use crate::provision::{ProvisionError, Result};

/// The rollout settings of a Deployment's `deploymentConfig`, with their defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// RollingUpdate `maxSurge`: a count or a percentage.
    pub max_surge: IntOrString,
    /// RollingUpdate `maxUnavailable`.
    pub max_unavailable: IntOrString,
    /// The canary's share of the replicas, in percent.
    pub canary_weight: i64,
    /// How long a ready canary is watched before promotion.
    pub analysis: Duration,
    pub auto_promote: bool,
    /// After this long without progress a workload has failed (`progressDeadlineSeconds`).
    pub progress_deadline_seconds: i64,
    /// How long a rollout waits, from its creation, for its stack to become deployable
    /// (`startDeadlineSeconds`): GitOps applies a stack and its rollout together.
    pub start_deadline: Duration,
}

impl Settings {
    pub fn parse(config: &FreeForm) -> Result<Self> {
        let config = &config.0;
        let field = |key: &str| format!("spec.deploymentConfig.{key}");
        let surge_or_unavailable = |key: &str, default: &str| -> Result<IntOrString> {
            match config.get(key) {
                None => Ok(IntOrString::String(default.to_owned())),
                Some(Value::Number(n)) if let Some(count) = n.as_u64().and_then(|n| i32::try_from(n).ok()) => {
                    Ok(IntOrString::Int(count))
                }
                Some(Value::String(s)) if s.strip_suffix('%').is_some_and(|n| n.parse::<u8>().is_ok()) => {
                    Ok(IntOrString::String(s.clone()))
                }
                Some(other) => {
                    Err(ProvisionError::invalid(&field(key), format!("{other} is neither a count nor a percentage")))
                }
            }
        };
        let number = |key: &str, default: i64, range: std::ops::RangeInclusive<i64>| -> Result<i64> {
            match config.get(key) {
                None => Ok(default),
                Some(value) => value.as_i64().filter(|n| range.contains(n)).ok_or_else(|| {
                    ProvisionError::invalid(&field(key), format!("{value} is not a whole number in {range:?}"))
                }),
            }
        };
        let auto_promote = match config.get("autoPromote") {
            None => true,
            Some(value) => value.as_bool().ok_or_else(|| {
                ProvisionError::invalid(&field("autoPromote"), format!("{value} is not true or false"))
            })?,
        };
        Ok(Self {
            max_surge: surge_or_unavailable("maxSurge", "25%")?,
            max_unavailable: surge_or_unavailable("maxUnavailable", "25%")?,
            canary_weight: number("canaryWeight", 20, 1..=99)?,
            analysis: Duration::from_secs(number("analysisSeconds", 60, 0..=86_400)? as u64),
            auto_promote,
            progress_deadline_seconds: number("progressDeadlineSeconds", 600, 10..=86_400)?,
            start_deadline: Duration::from_secs(number("startDeadlineSeconds", 600, 0..=86_400)? as u64),
        })
    }
}

/// A configuration's revision: the first 12 hex digits of the SHA-256 of its canonical JSON
/// (keys sorted), so the same configuration always gets the same revision.
pub fn revision(config: &FreeForm) -> String {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(':');
                    canonical(&map[key], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(&config.to_value(), &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().take(6).map(|byte| format!("{byte:02x}")).collect()
}

/// The release an application's pods run: a configuration and its revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    pub revision: String,
    pub config: FreeForm,
}

/// How an application's workloads look now.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadPlan {
    /// The main workload (named after the application) and its replicas, when a canary takes
    /// some of them.
    pub main: Release,
    pub main_replicas: Option<i64>,
    /// A preview (blue_green) or canary workload beside it: suffix, release, replicas.
    pub side: Option<(&'static str, Release, i64)>,
    /// The Service selects the pods of this revision only; `None`: every pod of the application.
    pub service_revision: Option<String>,
    /// The rollout's settings, while one runs.
    pub settings: Option<Settings>,
}

/// The Deployments of the application's stack that cover it (the whole stack or just it).
fn covering(app: &Application, index: &Index) -> impl Iterator<Item = Arc<Deployment>> {
    let name = app.name_any();
    let stack = app.spec.stack_ref.clone();
    index
        .all::<Deployment>(app.namespace().as_deref())
        .into_iter()
        .filter(move |d| d.spec.stack_ref == stack && d.spec.application_ref.as_ref().is_none_or(|a| a.name == name))
}

pub fn phase_of(deployment: &Deployment) -> DeploymentPhase {
    deployment.status.as_ref().and_then(|s| s.phase).unwrap_or(DeploymentPhase::Pending)
}

fn part_of<'a>(deployment: &'a Deployment, app: &Application) -> Option<&'a ApplicationRollout> {
    let name = app.name_any();
    deployment.status.as_ref()?.applications.iter().find(|a| a.name == name)
}

fn time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// The rollout running on the application (one with a part for it).
fn running(app: &Application, index: &Index) -> Option<Arc<Deployment>> {
    covering(app, index).find(|d| phase_of(d) == DeploymentPhase::Running && part_of(d, app).is_some())
}

/// The last release a completed Deployment rolled out to the application: the newer of the one
/// its status records and the newest completed Deployment's.
pub fn settled(app: &Application, index: &Index) -> Option<ApplicationRelease> {
    let recorded = app.status.as_ref().and_then(|s| s.release.clone());
    let completed = covering(app, index)
        .filter(|d| phase_of(d) == DeploymentPhase::Completed)
        .filter_map(|d| {
            let part = part_of(&d, app).filter(|p| p.stage == RolloutStage::Done)?;
            let deployed_at = d.status.as_ref()?.completed_at.clone()?;
            Some(ApplicationRelease {
                deployment: d.name_any(),
                revision: part.revision.clone(),
                config: part.config.clone(),
                deployed_at,
            })
        })
        .max_by_key(|release| time(&release.deployed_at));
    match (recorded, completed) {
        (Some(recorded), Some(completed)) if time(&completed.deployed_at) > time(&recorded.deployed_at) => {
            Some(completed)
        }
        (Some(recorded), _) => Some(recorded),
        (None, completed) => completed,
    }
}

/// What the application runs when no rollout is in progress: its settled release, else its own
/// configuration.
fn current(app: &Application, index: &Index) -> Release {
    match settled(app, index) {
        Some(release) => Release { revision: release.revision, config: release.config },
        None => Release { revision: revision(&app.spec.deployment_config), config: app.spec.deployment_config.clone() },
    }
}

/// The application's workloads, given the rollouts in the index.
pub fn plan(app: &Application, index: &Index) -> Result<WorkloadPlan> {
    let before = current(app, index);
    let running = running(app, index);
    let Some((deployment, part)) = running.as_deref().and_then(|d| Some((d, part_of(d, app)?))) else {
        return Ok(WorkloadPlan {
            main: before,
            main_replicas: None,
            side: None,
            service_revision: None,
            settings: None,
        });
    };
    let settings = Settings::parse(&deployment.spec.deployment_config)?;
    let new = Release { revision: part.revision.clone(), config: part.config.clone() };
    let replicas = new.config.0.get("replicas").and_then(Value::as_i64).unwrap_or(1);
    let strategy = deployment.spec.deployment_type;
    let plan = |main, main_replicas, side, service_revision| WorkloadPlan {
        main,
        main_replicas,
        side,
        service_revision,
        settings: Some(settings.clone()),
    };
    Ok(match (strategy, part.stage) {
        (DeploymentType::BlueGreen, RolloutStage::Preview) => {
            let serving = Some(before.revision.clone());
            plan(before, None, Some(("preview", new, replicas)), serving)
        }
        (DeploymentType::BlueGreen, RolloutStage::Switched) => {
            let serving = Some(new.revision.clone());
            plan(new.clone(), None, Some(("preview", new, replicas)), serving)
        }
        (DeploymentType::Canary, RolloutStage::Canary | RolloutStage::Analysis) => {
            let canary = (replicas * settings.canary_weight + 99) / 100;
            let main_replicas = Some((replicas - canary).max(0));
            plan(before, main_replicas, Some(("canary", new, canary.max(1))), None)
        }
        (DeploymentType::Canary, RolloutStage::Promoting) => {
            let canary = ((replicas * settings.canary_weight + 99) / 100).max(1);
            plan(new.clone(), None, Some(("canary", new, canary)), None)
        }
        // standard, rolling, rollback, and every application done: the new revision, rolled.
        _ => plan(new, None, None, None),
    })
}

/// The seed `deployment_status` of an application and the release it runs.
pub fn application_status(app: &Application, index: &Index) -> ApplicationStatus {
    let settled = settled(app, index);
    let latest_ended = covering(app, index)
        .filter(|d| {
            matches!(phase_of(d), DeploymentPhase::Completed | DeploymentPhase::Failed | DeploymentPhase::RolledBack)
        })
        .filter(|d| part_of(d, app).is_some())
        .max_by_key(|d| d.status.as_ref().and_then(|s| s.completed_at.as_deref()).and_then(time));
    let status = match running(app, index).as_deref().and_then(|d| part_of(d, app)) {
        Some(part) if part.stage == RolloutStage::Done => ApplicationDeploymentStatus::Deployed,
        Some(_) if settled.is_some() => ApplicationDeploymentStatus::Updating,
        Some(_) => ApplicationDeploymentStatus::Deploying,
        None if latest_ended.is_some_and(|d| phase_of(&d) == DeploymentPhase::Failed) => {
            ApplicationDeploymentStatus::Failed
        }
        None if settled.is_some() => ApplicationDeploymentStatus::Deployed,
        None => ApplicationDeploymentStatus::Pending,
    };
    ApplicationStatus { deployment_status: Some(status), release: settled, ..Default::default() }
}

/// The newest rollout that completed after the failed `rollout` ended, of its stack and
/// covering what it covered (the whole stack, or its application): what makes the failure
/// history. `None` while the failure is the latest word, and for any rollout that did not fail.
pub fn superseded_by(rollout: &Deployment, index: &Index) -> Option<String> {
    if phase_of(rollout) != DeploymentPhase::Failed {
        return None;
    }
    let ended = rollout.status.as_ref()?.completed_at.as_deref().and_then(time)?;
    let covered = rollout.spec.application_ref.as_ref();
    let siblings = index.all::<Deployment>(rollout.namespace().as_deref());
    siblings
        .iter()
        .filter(|other| other.spec.stack_ref == rollout.spec.stack_ref && phase_of(other) == DeploymentPhase::Completed)
        .filter(|other| other.spec.application_ref.is_none() || other.spec.application_ref.as_ref() == covered)
        .filter_map(|other| Some((other.status.as_ref()?.completed_at.as_deref().and_then(time)?, other.name_any())))
        .filter(|(completed, _)| *completed > ended)
        .max()
        .map(|(_, name)| name)
}

/// The failed rollouts the completed `rollout` makes history, whose status does not say so yet:
/// they follow it ([`Kind::followers`](super::Kind::followers)), woken as it turns Ready.
pub fn superseding(rollout: &Deployment, index: &Index) -> Vec<String> {
    if phase_of(rollout) != DeploymentPhase::Completed {
        return vec![];
    }
    let name = rollout.name_any();
    let failed = index.all::<Deployment>(rollout.namespace().as_deref());
    failed
        .iter()
        .filter(|other| other.status.as_ref().is_some_and(|status| status.superseded_by.is_none()))
        .filter(|other| superseded_by(other, index).as_deref() == Some(name.as_str()))
        .map(|other| other.name_any())
        .collect()
}

/// The stack's phase as rollout `rollout` finds it when it would start: from the applications
/// and the other rollouts as they are now (its own running state does not make the stack
/// `deploying`), not as the stack's status last said.
pub fn phase_for_rollout(stack: &Stack, index: &Index, rollout: &str) -> StackPhase {
    status_without(stack, index, Some(rollout)).0
}

/// The seed `status` of a stack and `lastDeployedAt`, from its applications and Deployments:
/// archived (`spec.archived`), draft (no application), validating (an application is not provisioned yet), error (one
/// cannot be), deploying (a rollout runs), deployed (one completed), else ready.
pub fn stack_status(stack: &Stack, index: &Index) -> StackStatus {
    let (phase, last_deployed_at) = status_without(stack, index, None);
    StackStatus { phase: Some(phase), last_deployed_at, ..Default::default() }
}

/// The stack's phase and when it was last deployed, leaving out the Deployment named `skipped`.
fn status_without(stack: &Stack, index: &Index, skipped: Option<&str>) -> (StackPhase, Option<String>) {
    let applications = index.children::<Application, _>(stack);
    let mut deployments = index.children::<Deployment, _>(stack);
    deployments.retain(|d| skipped.is_none_or(|skipped| d.metadata.name.as_deref() != Some(skipped)));
    let last_deployed = deployments
        .iter()
        .filter(|d| matches!(phase_of(d), DeploymentPhase::Completed | DeploymentPhase::RolledBack))
        .filter_map(|d| d.status.as_ref()?.completed_at.clone())
        .chain(stack.status.as_ref().and_then(|s| s.last_deployed_at.clone()))
        .max_by_key(|at| time(at));
    let standings: Vec<Standing> = applications.iter().map(|app| standing(app.as_ref())).collect();
    let phase = if stack.spec.archived {
        StackPhase::Archived
    } else if deployments.iter().any(|d| phase_of(d) == DeploymentPhase::Running) {
        StackPhase::Deploying
    } else if applications.is_empty() {
        StackPhase::Draft
    } else if standings.contains(&Standing::Broken) {
        StackPhase::Error
    } else if standings.contains(&Standing::Pending) {
        StackPhase::Validating
    } else if last_deployed.is_some() {
        StackPhase::Deployed
    } else {
        StackPhase::Ready
    };
    (phase, last_deployed)
}

/// Where an application's workloads run: its environment's namespace on its stack's cluster.
pub fn application_placement(app: &Application, index: &Index) -> Result<crate::provision::Placement> {
    index.placement(app)
}
