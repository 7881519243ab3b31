//! Order does not matter: the sample platform, and a larger one of three organizations, applied
//! at once in shuffled orders (seeded, so that a failure can be replayed) converge to the same
//! final state as in dependency order: the objects' statuses, their children and the database
//! rows. Meanwhile every status the operator writes is collected and judged by the chart's Argo CD
//! health script.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::controlplane::{ControlPlane, add_fresh_volumes, both};
use crate::install::{eventually, start_operator};
use crate::platform::{expected_without_providers, sample, scenario, wait_for};
use crate::resource_of;
use crate::support::argocd::health;

const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
/// The organizations of the larger platform: the sample's, and two copies of it.
const ORGANIZATIONS: [&str; 3] = ["acme", "globex", "initech"];
/// The shuffles, one per run after the first; `WINDFLOW_E2E_SEEDS` (comma-separated) replays
/// others.
const SEEDS: [u64; 3] = [20261203, 7, 4242];
/// Reasons that are real faults: Argo CD may call Degraded only these (a rollout's failure
/// while it is its stack's latest word among them).
const FAULTS: &[&str] = &[
    "ProviderNotInstalled",
    "InvalidSpec",
    "Conflict",
    "DependentFailed",
    "QuotaExceeded",
    "HealthCheckFailed",
    "StackNotDeployable",
    "InvalidRollout",
    "Suspended",
];

fn seeds() -> Vec<u64> {
    match std::env::var("WINDFLOW_E2E_SEEDS") {
        Ok(list) => list.split(',').map(|s| s.trim().parse().expect("a seed")).collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

/// What each object of any organization's copy reaches here: what the sample's object of that
/// name does.
fn expected(kind: &str, name: &str) -> Option<(&'static str, &'static str)> {
    let name = ORGANIZATIONS.iter().fold(name.to_owned(), |name, organization| name.replace(organization, "acme"));
    expected_without_providers().iter().find(|((k, n), _)| *k == kind && *n == name).map(|(_, verdict)| *verdict)
}

/// `value` with what differs between runs of the same platform (uids, times, resource
/// versions) replaced by placeholders, so that the rest compares.
fn normalized(value: &Value) -> Value {
    match value {
        Value::String(text) if text.parse::<uuid::Uuid>().is_ok() => "<uid>".into(),
        Value::String(text) if text.parse::<Timestamp>().is_ok() => "<time>".into(),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .filter(|(key, _)| {
                    !["mirroredResourceVersion", "k8s_resource_version", "resourceVersion"].contains(&key.as_str())
                })
                .map(|(key, value)| (key.clone(), normalized(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Where a platform ends: each object's status, the children WindFlow made, the rows.
#[derive(Debug, PartialEq)]
struct FinalState {
    statuses: BTreeMap<String, Value>,
    children: BTreeSet<String>,
    rows: BTreeMap<String, Vec<String>>,
}

async fn final_state(client: &Client, pool: &PgPool, docs: &[Value]) -> FinalState {
    let mut statuses = BTreeMap::new();
    for doc in docs {
        let (api, name) = crate::api_for(client, doc);
        let obj = api.get(&name).await.expect("the object");
        let key = format!("{} {}/{name}", doc["kind"], obj.namespace().unwrap_or_default());
        statuses.insert(key, normalized(&obj.data["status"]));
    }
    let mut types: Vec<_> = windflow::kinds::KindId::ALL.iter().flat_map(|kind| kind.child_types()).collect();
    types.sort_by_key(|t| (t.api_version, t.kind));
    types.dedup();
    let mut children = BTreeSet::new();
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=windflow");
    for child in types {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &child.api_resource());
        // A type this cluster does not serve has no children.
        let Ok(list) = api.list(&managed).await else { continue };
        for obj in list.items {
            children.insert(format!("{} {}/{}", child.kind, obj.namespace().unwrap_or_default(), obj.name_any()));
        }
    }
    // Every table but the histories, whose length depends on how long objects waited (the audit
    // rows and the rollout steps), and the tenants' logins, named after their uids.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_type = 'BASE TABLE' \
         AND table_name NOT IN ('_sqlx_migrations', 'audit_logs', 'deployment_events', 'tenant_roles')",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    let mut rows = BTreeMap::new();
    for table in tables {
        let sql = format!("SELECT to_jsonb(t) FROM {table} t");
        let listed: Vec<Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("rows");
        let mut listed: Vec<String> = listed.iter().map(|row| normalized(row).to_string()).collect();
        listed.sort();
        rows.insert(table, listed);
    }
    FinalState { statuses, children, rows }
}

/// Every distinct status the WindFlow objects show while `until` is false, as Argo CD would read
/// them (kind, generation, status).
fn collect_statuses(client: Client, until: Arc<AtomicBool>) -> tokio::task::JoinHandle<BTreeSet<String>> {
    tokio::spawn(async move {
        let mut seen = BTreeSet::new();
        while !until.load(Ordering::Acquire) {
            for crd in windflow::kinds::crds() {
                let kind = crd.spec.names.kind.clone();
                let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource_of(&kind));
                let Ok(list) = api.list(&ListParams::default()).await else { continue };
                for obj in list.items {
                    let snapshot = json!({
                        "apiVersion": "windflow.io/v1alpha1", "kind": kind,
                        "metadata": { "generation": obj.metadata.generation },
                        "status": normalized(&obj.data["status"]),
                    });
                    seen.insert(snapshot.to_string());
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        seen
    })
}

/// The chart's health script on every status collected: work under way is Progressing, never
/// Degraded; Degraded is a real fault; a rollout's record is Healthy, but for a failure that is
/// its stack's latest word. Returns the verdicts seen.
fn judge(snapshots: &BTreeSet<String>) -> BTreeMap<(String, String, String), usize> {
    let mut verdicts = BTreeMap::new();
    for text in snapshots {
        let snapshot: Value = serde_json::from_str(text).expect("json");
        let (verdict, message) = health(&snapshot);
        let conditions = snapshot["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let reason_of = |type_: &str| {
            conditions.iter().find(|c| c["type"] == type_ && c["status"] == "False").map(|c| c["reason"].clone())
        };
        let reason = reason_of("Synced").or_else(|| reason_of("Ready")).and_then(|r| r.as_str().map(str::to_owned));
        let kind = snapshot["kind"].as_str().unwrap_or_default().to_owned();
        assert!(["Healthy", "Progressing", "Degraded", "Suspended"].contains(&verdict.as_str()), "{verdict}");
        if verdict == "Degraded" {
            let fault = reason.as_deref().is_some_and(|r| FAULTS.contains(&r));
            assert!(fault, "{kind} is Degraded without a fault ({message}): {snapshot}");
        }
        if let Some(reason) = reason.as_deref().filter(|r| !FAULTS.contains(r) && *r != "Paused") {
            let finished = ["completed", "failed", "cancelled", "rolled_back"]
                .contains(&snapshot["status"]["phase"].as_str().unwrap_or_default());
            let expected = if kind == "Deployment" && finished { "Healthy" } else { "Progressing" };
            assert_eq!(verdict, expected, "{kind} waiting for {reason}: {message}: {snapshot}");
        }
        let phase = snapshot["status"]["phase"].as_str().unwrap_or_default().to_owned();
        let stage = reason.unwrap_or_else(|| if phase.is_empty() { "-".into() } else { phase });
        *verdicts.entry((kind, stage, verdict)).or_default() += 1;
    }
    verdicts
}

/// Applies `docs` in that order at once, as `kubectl apply -f` of one file does, retried until
/// every object is accepted (namespaced objects wait for their Organization's namespace), as
/// Argo CD retries a sync.
fn apply_in_order(plane: &ControlPlane, docs: &[Value], file: &str) {
    let path = plane.dir.join(file);
    let yaml: Vec<String> = docs.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect();
    std::fs::write(&path, yaml.join("---\n")).expect("write the manifest");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut apply = plane.kubectl();
        apply.args(["apply", "-f"]).arg(&path);
        let output = apply.output().expect("kubectl runs");
        if output.status.success() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "kubectl apply kept failing: {}", both(&output));
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// One run: a clean cluster and database, the operator, `docs` applied in that order; the
/// final state once every object has converged and every rollout completed, and the verdicts
/// of Argo CD on every status seen on the way.
async fn run(
    docs: &[Value],
    organizations: usize,
    label: &str,
) -> (FinalState, BTreeMap<(String, String, String), usize>) {
    let scenario = scenario().await;
    let (plane, client) = (scenario.plane, scenario.client.clone());
    // Each organization's two claims, on the workload cluster where its stack runs (the
    // scenario brought the first organization's).
    add_fresh_volumes(&scenario.workload, 2 * (organizations - 1)).await;
    let _operator = start_operator(plane, &scenario.kubeconfig, &scenario.db.runtime_url, "windflow-0");
    let done = Arc::new(AtomicBool::new(false));
    let collector = collect_statuses(client.clone(), done.clone());
    apply_in_order(plane, docs, &format!("{label}.yaml"));
    let took = wait_for(&client, docs, expected, CONVERGE_WITHIN).await;
    eprintln!("{label}: {} objects converged {took:?} after the first apply", docs.len());
    let deployments = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Deployment"));
    eventually("every rollout completes", CONVERGE_WITHIN, || {
        let deployments = deployments.clone();
        async move {
            let list = deployments.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let phases: Vec<String> =
                list.items.iter().map(|d| d.data["status"]["phase"].as_str().unwrap_or("").to_owned()).collect();
            phases.iter().all(|p| p == "completed").then_some(()).ok_or(format!("{phases:?}"))
        }
    })
    .await;
    // Statuses that follow others (elements, domains, stacks) settle once woken.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let state = final_state(&client, &scenario.db.pool, docs).await;
    done.store(true, Ordering::Release);
    let verdicts = judge(&collector.await.expect("the collector"));
    (state, verdicts)
}

/// The first difference between two final states, for the failure message.
fn difference(a: &FinalState, b: &FinalState) -> String {
    for (key, status) in &a.statuses {
        if b.statuses.get(key) != Some(status) {
            return format!("{key}: {status} vs {:?}", b.statuses.get(key));
        }
    }
    if a.children != b.children {
        return format!("children: {:?}", a.children.symmetric_difference(&b.children).collect::<Vec<_>>());
    }
    for (table, rows) in &a.rows {
        if b.rows.get(table) != Some(rows) {
            let other = b.rows.get(table).cloned().unwrap_or_default();
            let only: Vec<_> = rows.iter().filter(|r| !other.contains(r)).collect();
            let only_other: Vec<_> = other.iter().filter(|r| !rows.contains(r)).collect();
            return format!("{table}: {only:?} vs {only_other:?}");
        }
    }
    String::new()
}

fn shuffled(docs: &[Value], seed: u64) -> Vec<Value> {
    let mut docs = docs.to_vec();
    fastrand::Rng::with_seed(seed).shuffle(&mut docs);
    docs
}

#[tokio::test]
async fn any_order_converges_to_the_state_of_dependency_order_and_argo_cd_health_tells_the_truth() {
    let seeds = seeds();
    let mut verdicts: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    let mut judged = |seen: BTreeMap<(String, String, String), usize>| {
        for (key, count) in seen {
            *verdicts.entry(key).or_default() += count;
        }
    };

    // The sample: in its file's dependency order, then shuffled.
    let ordered = sample();
    let (baseline, seen) = run(&ordered, 1, "sample-ordered").await;
    judged(seen);
    let (state, seen) = run(&shuffled(&ordered, seeds[0]), 1, "sample-shuffled").await;
    judged(seen);
    assert!(state == baseline, "seed {}: {}", seeds[0], difference(&state, &baseline));
    eprintln!("the sample shuffled with seed {} ends as in dependency order", seeds[0]);

    // Three organizations at once, in two shuffles.
    let larger: Vec<Value> = ORGANIZATIONS.iter().flat_map(|org| crate::support::platform_of(org)).collect();
    let mut states = vec![];
    for &seed in &seeds[1..] {
        let (state, seen) = run(&shuffled(&larger, seed), ORGANIZATIONS.len(), &format!("larger-{seed}")).await;
        judged(seen);
        eprintln!("{} objects of {} organizations, seed {seed}, converged", larger.len(), ORGANIZATIONS.len());
        states.push((seed, state));
    }
    let (first_seed, first) = &states[0];
    for (seed, state) in &states[1..] {
        assert!(state == first, "seeds {first_seed} and {seed}: {}", difference(state, first));
    }
    // The sample's organization ends the same beside two others.
    for (key, status) in baseline.statuses.iter().filter(|(key, _)| key.contains(" acme/")) {
        assert_eq!(first.statuses.get(key), Some(status), "{key} beside other organizations");
    }

    // Argo CD's verdicts on every status seen, by kind and stage (the reason, or the phase).
    for ((kind, stage, verdict), count) in &verdicts {
        eprintln!("argocd {kind:<16} {stage:<24} {verdict:<12} {count}");
    }
    let seen = |verdict: &str| verdicts.keys().any(|(_, _, v)| v == verdict);
    assert!(seen("Progressing") && seen("Healthy") && seen("Degraded"), "{verdicts:?}");
    let rollout_stages: BTreeSet<&str> =
        verdicts.keys().filter(|(kind, _, _)| kind == "Deployment").map(|(_, stage, _)| stage.as_str()).collect();
    assert!(rollout_stages.len() >= 2, "a rollout seen in several stages: {rollout_stages:?}");
}
