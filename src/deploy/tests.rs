//! The state machine, table-tested: each row is a strategy, a recorded state, what the
//! workloads show, and the phase, stages and steps expected.

use super::*;

fn now() -> Timestamp {
    "2026-11-25T10:00:00Z".parse().expect("time")
}

fn target(name: &str, runtime: Runtime) -> RolloutTarget {
    RolloutTarget {
        name: name.into(),
        runtime,
        revision: format!("{name}-rev2"),
        config: FreeForm(serde_json::from_value(json!({ "image": format!("{name}:2") })).expect("config")),
    }
}

fn facts<'a>(strategy: DeploymentType, workloads: &'a BTreeMap<String, Workloads>) -> Facts<'a> {
    Facts {
        strategy,
        stack: ("shop", StackState { phase: "deployed", readiness: Readiness::Deployable }),
        queued_behind: None,
        suspended: None,
        targets: Ok(vec![target("web", Runtime::Container)]),
        analysis: Duration::from_secs(60),
        auto_promote: true,
        promote: false,
        created: Some(now() - Duration::from_secs(60)),
        start_deadline: Duration::from_secs(600),
        cancel: false,
        workloads,
        now: now(),
    }
}

/// A running rollout whose one application `web` is at `stage` since `since`.
fn running(stage: RolloutStage, since: &str) -> Rollout {
    let mut rollout = Rollout::pending();
    rollout.phase = DeploymentPhase::Running;
    rollout.started_at = Some(now());
    rollout.applications = vec![ApplicationRollout {
        name: "web".into(),
        revision: "web-rev2".into(),
        config: FreeForm::default(),
        stage,
        since: since.into(),
        message: None,
    }];
    rollout
}

fn observed(main: Health, side: Health) -> BTreeMap<String, Workloads> {
    BTreeMap::from([("web".to_owned(), Workloads { main, side })])
}

fn progressing() -> Health {
    Health::Progressing("1/3 replicas ready".into())
}

fn failed() -> Health {
    Health::Failed("ReplicaSet web-abc has timed out progressing".into())
}

fn keys(transition: &Transition) -> Vec<&str> {
    transition.steps.iter().map(|s| s.key.as_str()).collect()
}

fn stage(transition: &Transition) -> RolloutStage {
    transition.rollout.applications[0].stage
}

#[test]
fn a_new_deployment_is_created_and_started_with_its_first_stage_per_strategy() {
    let none = BTreeMap::new();
    for (strategy, first) in [
        (DeploymentType::Standard, RolloutStage::Progressing),
        (DeploymentType::Rolling, RolloutStage::Progressing),
        (DeploymentType::Rollback, RolloutStage::Progressing),
        (DeploymentType::BlueGreen, RolloutStage::Preview),
        (DeploymentType::Canary, RolloutStage::Canary),
    ] {
        let transition = advance(None, &facts(strategy, &none));
        assert_eq!(transition.rollout.phase, DeploymentPhase::Running, "{strategy:?}");
        assert_eq!(keys(&transition), ["created", "started", "applied/web"], "{strategy:?}");
        assert_eq!(stage(&transition), first, "{strategy:?}");
        assert_eq!(transition.rollout.started_at, Some(now()));
        assert_eq!(transition.wait, Some(POLL));
        assert_eq!(transition.steps[0].event_type, "deployment.created");
    }
}

#[test]
fn admission_follows_create_deployment() {
    use DeploymentPhase::{Cancelled, Failed, Pending, Running};
    use Readiness::{ComingUp, Deployable, NotDeployable};
    let none = BTreeMap::new();
    // ((stack phase, readiness), seconds since the Deployment was created, queued behind, cancel, ...)
    for ((stack_phase, readiness), waited, queued_behind, cancel, phase, reason, step_keys) in [
        (("draft", ComingUp), 60, None, false, Pending, Reason::WaitingForStack, vec!["created"]),
        (("validating", ComingUp), 599, None, false, Pending, Reason::WaitingForStack, vec!["created"]),
        (("draft", ComingUp), 600, None, false, Failed, Reason::StackNotDeployable, vec!["created", "failed"]),
        (("validating", ComingUp), 3600, None, false, Failed, Reason::StackNotDeployable, vec!["created", "failed"]),
        (("error", NotDeployable), 60, None, false, Failed, Reason::StackNotDeployable, vec!["created", "failed"]),
        (("archived", NotDeployable), 60, None, false, Failed, Reason::StackNotDeployable, vec!["created", "failed"]),
        (("deploying", NotDeployable), 60, Some("shop-1"), false, Pending, Reason::Queued, vec!["created"]),
        (("draft", ComingUp), 60, None, true, Cancelled, Reason::Cancelled, vec!["created", "cancelled"]),
        (("ready", Deployable), 60, None, true, Cancelled, Reason::Cancelled, vec!["created", "cancelled"]),
        (
            ("ready", Deployable),
            60,
            None,
            false,
            Running,
            Reason::Progressing,
            vec!["created", "started", "applied/web"],
        ),
        (
            ("deployed", Deployable),
            60,
            None,
            false,
            Running,
            Reason::Progressing,
            vec!["created", "started", "applied/web"],
        ),
    ] {
        let mut facts = facts(DeploymentType::Rolling, &none);
        facts.stack = ("shop", StackState { phase: stack_phase, readiness });
        facts.created = Some(now() - Duration::from_secs(waited));
        facts.queued_behind = queued_behind;
        facts.cancel = cancel;
        let transition = advance(None, &facts);
        let label = format!("stack {stack_phase} after {waited}s, queued {queued_behind:?}, cancel {cancel}");
        assert_eq!((transition.rollout.phase, transition.rollout.reason), (phase, reason), "{label}");
        assert_eq!(keys(&transition), step_keys, "{label}");
        assert_eq!(transition.rollout.completed_at.is_some(), phase.is_terminal(), "{label}");
        if phase == DeploymentPhase::Failed {
            assert!(transition.rollout.message.contains(&format!("Stack shop is {stack_phase}")), "{label}");
            assert_eq!(transition.steps[1].level, Level::Error);
        }
        if reason == Reason::WaitingForStack {
            assert_eq!(transition.wait, Some(QUEUED_POLL), "{label}");
            assert!(transition.rollout.message.contains("at most 600s"), "{label}");
        }
    }
}

#[test]
fn a_suspended_tenant_takes_no_rollout() {
    let none = BTreeMap::new();
    let mut facts = facts(DeploymentType::Rolling, &none);
    facts.suspended = Some("Organization acme is suspended (isActive: false)".into());
    let transition = advance(None, &facts);
    assert_eq!((transition.rollout.phase, transition.rollout.reason), (DeploymentPhase::Failed, Reason::Suspended));
    assert_eq!(
        transition.rollout.message,
        "Organization acme is suspended (isActive: false): stack shop takes no rollout until it is active again"
    );
    assert_eq!(keys(&transition), ["created", "failed"]);
}

#[test]
fn a_rollout_with_nothing_to_deploy_or_no_parent_record_fails_as_invalid() {
    let none = BTreeMap::new();
    for targets in [Ok(vec![]), Err("spec.parentDeploymentRef: Deployment shop-1 is failed".to_owned())] {
        let mut facts = facts(DeploymentType::Rollback, &none);
        facts.targets = targets;
        let transition = advance(None, &facts);
        assert_eq!(transition.rollout.phase, DeploymentPhase::Failed);
        assert_eq!(transition.rollout.reason, Reason::InvalidRollout);
    }
}

#[test]
fn a_queued_rollout_starts_once_the_stack_is_free_without_a_second_created_step() {
    let none = BTreeMap::new();
    let mut queued = facts(DeploymentType::Rolling, &none);
    queued.queued_behind = Some("shop-1");
    let first = advance(None, &queued);
    let again = advance(Some(&first.rollout), &queued);
    assert!(again.steps.is_empty());
    assert_eq!(again.wait, Some(QUEUED_POLL));
    let started = advance(Some(&again.rollout), &facts(DeploymentType::Rolling, &none));
    assert_eq!(keys(&started), ["started", "applied/web"]);
}

#[test]
fn each_strategy_moves_one_stage_per_observation() {
    let since = "2026-11-25T09:59:00Z";
    let just_now = "2026-11-25T09:59:50Z";
    #[rustfmt::skip]
    let table = [
        // strategy, stage, main, side, next stage, phase, step keys
        (DeploymentType::Rolling, RolloutStage::Progressing, since, progressing(), Health::Ready, RolloutStage::Progressing, DeploymentPhase::Running, vec![]),
        (DeploymentType::Rolling, RolloutStage::Progressing, since, Health::Ready, Health::Ready, RolloutStage::Done, DeploymentPhase::Completed, vec!["ready/web", "completed"]),
        (DeploymentType::Rolling, RolloutStage::Progressing, since, failed(), Health::Ready, RolloutStage::Failed, DeploymentPhase::Failed, vec!["unhealthy/web", "failed"]),
        (DeploymentType::BlueGreen, RolloutStage::Preview, since, progressing(), progressing(), RolloutStage::Preview, DeploymentPhase::Running, vec![]),
        (DeploymentType::BlueGreen, RolloutStage::Preview, since, progressing(), Health::Ready, RolloutStage::Switched, DeploymentPhase::Running, vec!["preview-ready/web", "switched/web"]),
        (DeploymentType::BlueGreen, RolloutStage::Preview, since, progressing(), failed(), RolloutStage::Failed, DeploymentPhase::Failed, vec!["unhealthy/web", "failed"]),
        (DeploymentType::BlueGreen, RolloutStage::Switched, since, Health::Ready, Health::Ready, RolloutStage::Done, DeploymentPhase::Completed, vec!["ready/web", "completed"]),
        (DeploymentType::Canary, RolloutStage::Canary, since, progressing(), progressing(), RolloutStage::Canary, DeploymentPhase::Running, vec![]),
        (DeploymentType::Canary, RolloutStage::Canary, since, progressing(), Health::Ready, RolloutStage::Analysis, DeploymentPhase::Running, vec!["canary-ready/web"]),
        (DeploymentType::Canary, RolloutStage::Canary, since, progressing(), failed(), RolloutStage::Failed, DeploymentPhase::Failed, vec!["unhealthy/web", "failed"]),
        (DeploymentType::Canary, RolloutStage::Analysis, just_now, progressing(), Health::Ready, RolloutStage::Analysis, DeploymentPhase::Running, vec![]),
        (DeploymentType::Canary, RolloutStage::Analysis, since, progressing(), Health::Ready, RolloutStage::Promoting, DeploymentPhase::Running, vec!["promoted/web"]),
        (DeploymentType::Canary, RolloutStage::Analysis, since, progressing(), progressing(), RolloutStage::Canary, DeploymentPhase::Running, vec![]),
        (DeploymentType::Canary, RolloutStage::Analysis, since, progressing(), failed(), RolloutStage::Failed, DeploymentPhase::Failed, vec!["unhealthy/web", "failed"]),
        (DeploymentType::Canary, RolloutStage::Promoting, since, Health::Ready, Health::Ready, RolloutStage::Done, DeploymentPhase::Completed, vec!["ready/web", "completed"]),
        (DeploymentType::Rollback, RolloutStage::Progressing, since, Health::Ready, Health::Ready, RolloutStage::Done, DeploymentPhase::Completed, vec!["ready/web", "completed"]),
    ];
    for (strategy, from, since, main, side, to, phase, step_keys) in table {
        let workloads = observed(main, side);
        let transition = advance(Some(&running(from, since)), &facts(strategy, &workloads));
        let label = format!("{strategy:?} from {from:?}");
        assert_eq!((stage(&transition), transition.rollout.phase), (to, phase), "{label}");
        assert_eq!(keys(&transition), step_keys, "{label}");
        assert_eq!(transition.wait.is_none(), phase.is_terminal(), "{label}");
        assert_eq!(
            transition.rolls_back_parent,
            strategy == DeploymentType::Rollback && phase == DeploymentPhase::Completed
        );
    }
}

#[test]
fn a_canary_is_watched_for_the_analysis_period_and_waits_for_promotion_when_asked_to() {
    let workloads = observed(progressing(), Health::Ready);
    let watching = advance(
        Some(&running(RolloutStage::Analysis, "2026-11-25T09:59:50Z")),
        &facts(DeploymentType::Canary, &workloads),
    );
    // Still polled meanwhile: a canary that fails during its analysis is aborted.
    assert_eq!(watching.wait, Some(POLL));
    let message = watching.rollout.applications[0].message.clone().unwrap_or_default();
    assert_eq!(message, "analysing the canary for 50s more");

    let mut manual = facts(DeploymentType::Canary, &workloads);
    manual.auto_promote = false;
    let waiting = advance(Some(&running(RolloutStage::Analysis, "2026-11-25T09:00:00Z")), &manual);
    assert_eq!(stage(&waiting), RolloutStage::Analysis);
    assert!(waiting.rollout.applications[0].message.as_deref().unwrap_or_default().contains("windflow.io/promote"));
    manual.promote = true;
    let promoted = advance(Some(&waiting.rollout), &manual);
    assert_eq!(keys(&promoted), ["promoted/web"]);
}

#[test]
fn cancelling_a_running_rollout_ends_it_and_nothing_more_happens() {
    let workloads = observed(Health::Ready, Health::Ready);
    let mut cancelled = facts(DeploymentType::BlueGreen, &workloads);
    cancelled.cancel = true;
    let transition = advance(Some(&running(RolloutStage::Preview, "2026-11-25T09:00:00Z")), &cancelled);
    assert_eq!(transition.rollout.phase, DeploymentPhase::Cancelled);
    assert_eq!(keys(&transition), ["cancelled"]);
    let after = advance(Some(&transition.rollout), &cancelled);
    assert!(after.steps.is_empty() && after.wait.is_none());
    assert_eq!(after.rollout, transition.rollout);
}

#[test]
fn a_rollout_of_several_applications_completes_when_the_last_is_done() {
    let mut rollout = running(RolloutStage::Progressing, "2026-11-25T09:00:00Z");
    let mut api = rollout.applications[0].clone();
    api.name = "api".into();
    rollout.applications.push(api);
    let workloads = BTreeMap::from([
        ("web".to_owned(), Workloads { main: Health::Ready, side: Health::Ready }),
        ("api".to_owned(), Workloads { main: progressing(), side: Health::Ready }),
    ]);
    let halfway = advance(Some(&rollout), &facts(DeploymentType::Rolling, &workloads));
    assert_eq!(halfway.rollout.phase, DeploymentPhase::Running);
    assert_eq!(keys(&halfway), ["ready/web"]);
    assert!(halfway.rollout.message.contains("api"), "{}", halfway.rollout.message);
    let all_ready = BTreeMap::from([("api".to_owned(), Workloads { main: Health::Ready, side: Health::Ready })]);
    let done = advance(Some(&halfway.rollout), &facts(DeploymentType::Rolling, &all_ready));
    assert_eq!(keys(&done), ["ready/api", "completed"]);
}

#[test]
fn vm_and_physical_applications_are_done_at_start() {
    let none = BTreeMap::new();
    let mut facts = facts(DeploymentType::Canary, &none);
    facts.targets = Ok(vec![target("erp", Runtime::AsIs("vm")), target("rack", Runtime::AsIs("physical"))]);
    let started = advance(None, &facts);
    assert!(started.rollout.applications.iter().all(|a| a.stage == RolloutStage::Done));
    let finished = advance(Some(&started.rollout), &facts);
    assert_eq!(finished.rollout.phase, DeploymentPhase::Completed);
}

#[test]
fn health_reads_revision_generation_deadline_and_replicas() {
    let workload = |labels: Value, status: Value| -> Workload {
        serde_json::from_value(json!({
            "metadata": { "name": "web", "generation": 4 },
            "spec": { "replicas": 3, "selector": {}, "template": { "metadata": { "labels": labels } } },
            "status": status,
        }))
        .expect("workload")
    };
    let at = json!({ "windflow.io/revision": "r2" });
    let ready = json!({ "observedGeneration": 4, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3 });
    assert_eq!(health(None, "r2"), Health::Progressing("the workload does not exist yet".into()));
    assert!(matches!(
        health(Some(&workload(json!({ "windflow.io/revision": "r1" }), ready.clone())), "r2"),
        Health::Progressing(_)
    ));
    assert_eq!(health(Some(&workload(at.clone(), ready)), "r2"), Health::Ready);
    let old = json!({ "observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3 });
    assert!(matches!(health(Some(&workload(at.clone(), old)), "r2"), Health::Progressing(_)));
    let surging = json!({ "observedGeneration": 4, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3 });
    assert!(matches!(health(Some(&workload(at.clone(), surging)), "r2"), Health::Progressing(_)));
    let stuck = json!({ "observedGeneration": 4, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2,
        "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                         "message": "ReplicaSet \"web-7d\" has timed out progressing." }] });
    assert_eq!(
        health(Some(&workload(at, stuck)), "r2"),
        Health::Failed("ReplicaSet \"web-7d\" has timed out progressing.".into())
    );
}
