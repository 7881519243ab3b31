//! Rollout step writes against local PostgreSQL, side by side with a bare baseline in the same run.
//!
//! `cargo bench --bench events [-- DEPLOYMENTS]`: DEPLOYMENTS (default 1,000) rollouts at once,
//! each recording its steps exactly as the reconcile does (`events::record`: status, recorded
//! state, event and log rows in one fenced transaction; 3 steps when it starts, 2 when it
//! completes), against the same number of events written as bare single-row
//! `INSERT INTO deployment_events`, at the same concurrency over the same pool. The two paths
//! take turns, twice each. Prints a Markdown table for docs/BENCHMARKS.md. PostgreSQL:
//! `DATABASE_URL`'s server, else a throwaway one (pgtemp).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;
use windflow::deploy::{self, DeploymentType, Facts, Health, RolloutTarget, Runtime, Workloads};
use windflow::events;
use windflow::kinds::stack::StackPhase;

const ROUNDS: usize = 2;

/// `count` new deployment rows of stack shop, as the mirror would have written them.
async fn deployments(pool: &PgPool, count: usize) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO deployments (id, stack_id, deployment_config, triggered_by, organization_id, k8s_namespace, k8s_name) \
         SELECT gen_random_uuid(), s.id, '{}', u.id, s.organization_id, 'acme', 'bench-' || gen_random_uuid() \
         FROM stacks s, users u, generate_series(1, $1) WHERE s.k8s_name = 'shop' AND u.k8s_name = 'alice' RETURNING id",
    )
    .bind(count as i64)
    .fetch_all(pool)
    .await
    .expect("deployment rows")
}

fn facts(workloads: &BTreeMap<String, Workloads>) -> Facts<'_> {
    let config = serde_json::from_value(json!({ "image": "ghcr.io/acme/storefront:1.5.0" })).expect("config");
    Facts {
        strategy: DeploymentType::Rolling,
        stack: ("shop", StackPhase::Deployed.for_rollout()),
        queued_behind: None,
        suspended: None,
        targets: Ok(vec![RolloutTarget {
            name: "storefront".into(),
            runtime: Runtime::Container,
            revision: "abc".into(),
            config,
        }]),
        analysis: Duration::ZERO,
        auto_promote: true,
        promote: false,
        created: None,
        start_deadline: Duration::ZERO,
        cancel: false,
        workloads,
        now: k8s_openapi::jiff::Timestamp::now(),
    }
}

/// One rollout's steps as the reconcile records them; returns the events written.
async fn rollout(pool: &PgPool, id: Uuid) -> i64 {
    let none = BTreeMap::new();
    let ready = BTreeMap::from([("storefront".to_owned(), Workloads { main: Health::Ready, side: Health::Ready })]);
    let started = deploy::advance(None, &facts(&none));
    let mut written = events::record(pool, id, None, &started, None).await.expect("started");
    let done = deploy::advance(Some(&started.rollout), &facts(&ready));
    written += events::record(pool, id, Some(&started.rollout), &done, None).await.expect("completed");
    written
}

/// The same five events as bare inserts, one statement each.
async fn bare(pool: &PgPool, id: Uuid) -> i64 {
    for event_type in [
        "deployment.created",
        "deployment.started",
        "application.applied",
        "health_check.passed",
        "deployment.completed",
    ] {
        sqlx::query(
            "INSERT INTO deployment_events (deployment_id, event_type, message, level, organization_id) \
             SELECT $1, $2, 'benchmark', 'info', organization_id FROM deployments WHERE id = $1",
        )
        .bind(id)
        .bind(event_type)
        .execute(pool)
        .await
        .expect("bare insert");
    }
    5
}

/// Runs every future at once (the pool bounds what runs in the database); returns events and time.
async fn all_at_once<F: Future<Output = i64>>(work: impl Iterator<Item = F>) -> (i64, Duration) {
    let start = Instant::now();
    let futures: Vec<F> = work.collect();
    let concurrency = futures.len().max(1);
    let events: i64 =
        futures::stream::iter(futures).buffer_unordered(concurrency).fold(0, |a, b| async move { a + b }).await;
    (events, start.elapsed())
}

#[tokio::main]
async fn main() {
    let count: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000);
    let db = support::database().await;
    support::converged(&db.pool, &support::platform()).await;
    // Warm connections and plans.
    for id in deployments(&db.pool, 50).await {
        rollout(&db.pool, id).await;
        bare(&db.pool, id).await;
    }
    let (mut recorded, mut baseline) = ((0, Duration::ZERO), (0, Duration::ZERO));
    for round in 0..ROUNDS {
        let (ours, theirs) = (deployments(&db.pool, count).await, deployments(&db.pool, count).await);
        for turn in 0..2 {
            if (round + turn) % 2 == 0 {
                let (events, took) = all_at_once(ours.iter().map(|id| rollout(&db.pool, *id))).await;
                recorded = (recorded.0 + events, recorded.1 + took);
            } else {
                let (events, took) = all_at_once(theirs.iter().map(|id| bare(&db.pool, *id))).await;
                baseline = (baseline.0 + events, baseline.1 + took);
            }
        }
    }
    let rate = |(events, took): (i64, Duration)| events as f64 / took.as_secs_f64();
    println!("| path | deployments at once | events | events/s | of baseline |");
    println!("|---|---|---|---|---|");
    println!("| bare INSERT, one per event | {count} | {} | {:.0} | 1.00 |", baseline.0, rate(baseline));
    println!(
        "| rollout steps (state + events + logs, one transaction per transition) | {count} | {} | {:.0} | {:.2} |",
        recorded.0,
        rate(recorded),
        rate(recorded) / rate(baseline)
    );
    println!("pool: {} connections; {ROUNDS} rounds per path", db.pool.options().get_max_connections());
}
