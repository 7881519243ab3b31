//! The sample platform as users run it: the chart installed with helm, the operator running as
//! the chart's ServiceAccount (a TokenRequest token, not an admin), `kubectl apply -f examples/`
//! in one go, then changes, drift, deletion, `check` and `resync`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as Workload;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::controlplane::{ControlPlane, add_fresh_volumes, both, run, workload_plane};
use crate::install::{
    ClusterApi, Operator, api_writes, eventually, get, play_cluster_api, reset, samples, settle, start_operator,
    start_operator_with_metrics, windflow,
};
use crate::support::{TestDb, rows_changed};
use crate::{api_for, turn};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
const CONVERGE_WITHIN: Duration = Duration::from_secs(180);

/// `kubectl apply -f examples/` until it succeeds, as Argo CD retries a sync: namespaced
/// objects are refused until their Organization's namespace exists. Returns the attempts.
pub fn apply_examples(plane: &ControlPlane) -> usize {
    let deadline = Instant::now() + Duration::from_secs(90);
    for attempt in 1.. {
        let mut apply = plane.kubectl();
        apply.args(["apply", "-f", EXAMPLES]);
        let output = apply.output().expect("kubectl runs");
        if output.status.success() {
            return attempt;
        }
        assert!(Instant::now() < deadline, "kubectl apply -f examples/ kept failing: {}", both(&output));
        std::thread::sleep(Duration::from_secs(2));
    }
    unreachable!()
}

/// The sample's documents.
pub fn sample() -> Vec<Value> {
    crate::support::documents(include_str!("../../examples/platform.yaml"))
}

/// The `Ready` condition of an object: (status, reason); `Stale` while it tells of an earlier
/// generation than the object's, whose reconcile (its row included) is not done yet.
pub fn readiness(obj: &DynamicObject) -> (String, String) {
    let mut conditions = obj.data["status"]["conditions"].as_array().into_iter().flatten();
    let Some(ready) = conditions.find(|c| c["type"] == "Ready") else { return Default::default() };
    let (observed, generation) = (ready["observedGeneration"].as_i64(), obj.metadata.generation);
    if observed.is_some() && observed != generation {
        return ("Stale".into(), format!("of generation {observed:?}, the object's is {generation:?}"));
    }
    (ready["status"].as_str().unwrap_or("").to_owned(), ready["reason"].as_str().unwrap_or("").to_owned())
}

/// Waits until `api` no longer holds `name`.
pub async fn gone<K>(api: &Api<K>, name: &str, within: Duration)
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} is gone"), within, || async move {
        api.get_opt(name).await.map_err(|e| e.to_string())?.map_or(Ok(()), |_| Err("still there".into()))
    })
    .await;
}

/// Waits until the WindFlow object `name` is Ready=True; returns how long it took.
pub async fn ready(api: &Api<DynamicObject>, name: &str, within: Duration) -> Duration {
    eventually(&format!("{name} is Ready"), within, || async move {
        let (status, reason) = readiness(&api.get(name).await.map_err(|e| e.to_string())?);
        (status == "True").then_some(()).ok_or(format!("Ready={status} {reason}"))
    })
    .await
}

/// Where a child type WindFlow provisions is served, by kind.
pub fn resource_of_child(kind: &str) -> kube::api::ApiResource {
    let types = windflow::kinds::KindId::ALL.iter().flat_map(|kind| kind.child_types());
    types.into_iter().find(|child| child.kind == kind).expect("a child type").api_resource()
}

/// A Tag named `name` whose `spec.color` is `color` (a number only a loosened CRD admits).
pub fn tag(name: &str, color: Value) -> DynamicObject {
    let tag = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Tag",
                      "metadata": { "name": name }, "spec": { "color": color } });
    serde_json::from_value(tag).expect("a Tag object")
}

/// What each sample object reaches on control planes without the third-party APIs but Cluster
/// API's (played by the tests): (kind, name) -> (Ready, reason). Anything not listed is
/// Ready=True.
pub fn expected_without_providers() -> BTreeMap<(&'static str, &'static str), (&'static str, &'static str)> {
    let not_installed = ("False", "ProviderNotInstalled");
    BTreeMap::from([
        // Multus (a bridge network's NetworkAttachmentDefinition).
        (("Network", "backend"), not_installed),
        // An encrypted overlay network, where the chart does not say the pod network encrypts.
        (("Network", "frontend"), not_installed),
        // ExternalDNS, and cert-manager for autoSsl.
        (("Domain", "acme-example"), not_installed),
        (("DnsRecord", "www"), not_installed),
        // CDI (the machine's root disk), KubeVirt and Multus (its fixed address).
        (("VM", "legacy-erp"), not_installed),
        // cert-manager (autoSsl).
        (("Gateway", "public"), not_installed),
        // The elements those stand on: their fault is their elements' too.
        (("Element", "backbone"), ("False", "DependentFailed")),
        (("Element", "compute"), ("False", "DependentFailed")),
        (("Element", "dns"), ("False", "DependentFailed")),
    ])
}

/// Waits until every sample object reports what `expected` says; panics with every object's
/// readiness when it does not within `within`. Returns how long it took.
pub async fn wait_for_sample(
    client: &Client,
    expected: &BTreeMap<(&'static str, &'static str), (&'static str, &'static str)>,
    within: Duration,
) -> Duration {
    wait_for(client, &sample(), |kind, name| expected.get(&(kind, name)).copied(), within).await
}

/// Waits until every object of `docs` reports what `expected` says of its (kind, name), Ready
/// when it says nothing; panics with every object's readiness when they do not within `within`.
/// Returns how long it took.
pub async fn wait_for(
    client: &Client,
    docs: &[Value],
    expected: impl Fn(&str, &str) -> Option<(&'static str, &'static str)>,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let mut off = vec![];
        for doc in docs {
            let (api, name) = api_for(client, doc);
            let kind = doc["kind"].as_str().unwrap_or_default();
            let want = expected(kind, &name).unwrap_or(("True", ""));
            let have = match api.get_opt(&name).await {
                Ok(Some(obj)) => readiness(&obj),
                Ok(None) => ("absent".into(), String::new()),
                Err(error) => (format!("error: {error}"), String::new()),
            };
            let matches = have.0 == want.0 && (want.1.is_empty() || have.1 == want.1);
            if !matches {
                off.push(format!("{kind} {name}: Ready={} ({}), expected {} ({})", have.0, have.1, want.0, want.1));
            }
        }
        if off.is_empty() {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "not converged after {within:?}:\n{}", off.join("\n"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count(pool: &PgPool, sql: &str, uid: &str) -> i64 {
    let uid: uuid::Uuid = uid.parse().expect("a uid");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).bind(uid).fetch_one(pool).await.expect("count")
}

/// Every recorded step of `rollout` (a `deployment_events` row) is one Kubernetes Event, named
/// after its row, and there are at least the started, applied and completed steps.
pub async fn steps_are_published_once(client: &Client, pool: &PgPool, rollout: &DynamicObject) {
    steps_are_published(client, pool, rollout, 3).await;
}

/// Every recorded step of `rollout` is one Kubernetes Event, named after its row, and there
/// are at least `at_least` steps.
pub async fn steps_are_published(client: &Client, pool: &PgPool, rollout: &DynamicObject, at_least: usize) {
    let name = rollout.name_any();
    let uid: uuid::Uuid = rollout.uid().expect("uid").parse().expect("uuid");
    let rows: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM deployment_events WHERE deployment_id = $1 ORDER BY occurred_at")
            .bind(uid)
            .fetch_all(pool)
            .await
            .expect("event rows");
    assert!(rows.len() >= at_least, "{name}: {at_least} steps at least: {rows:?}");
    let events: Api<Event> = Api::namespaced(client.clone(), &rollout.namespace().expect("namespaced"));
    let named: Vec<String> = rows.iter().map(|id| windflow::events::event_name(&name, *id)).collect();
    eventually("every step published once", Duration::from_secs(30), || {
        let (events, named, name) = (events.clone(), named.clone(), name.clone());
        async move {
            let list = events.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let steps: Vec<String> = list
                .items
                .iter()
                .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
                .map(ResourceExt::name_any)
                .filter(|event| named.contains(event))
                .collect();
            (steps.len() == named.len()).then_some(()).ok_or(format!(
                "{} rows, {} step Events",
                named.len(),
                steps.len()
            ))
        }
    })
    .await;
}

/// `kubectl delete -f examples/`, then waits until the tenant namespaces are gone, and nothing
/// of WindFlow's is left on the workload cluster.
pub async fn delete_examples(plane: &ControlPlane, client: &Client, workload: &Client) {
    let mut delete = plane.kubectl();
    delete.args(["delete", "-f", EXAMPLES, "--wait=true", "--timeout=120s"]);
    run(delete);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    eventually("the tenant namespaces are gone", Duration::from_secs(120), || {
        let namespaces = namespaces.clone();
        async move {
            let mut left = vec![];
            for name in ["acme", "acme-production", "acme-staging"] {
                if let Some(ns) = namespaces.get_opt(name).await.map_err(|e| e.to_string())? {
                    left.push(format!("{name} ({:?})", ns.status.and_then(|s| s.phase)));
                }
            }
            left.is_empty().then_some(()).ok_or(left.join(", "))
        }
    })
    .await;
    let remote = Api::<Namespace>::all(workload.clone());
    eventually("nothing of WindFlow's on the workload cluster", Duration::from_secs(120), || {
        let remote = remote.clone();
        async move {
            let made = ListParams::default().labels("app.kubernetes.io/managed-by=windflow");
            let left: Vec<String> =
                remote.list(&made).await.map_err(|e| e.to_string())?.items.iter().map(ResourceExt::name_any).collect();
            left.is_empty().then_some(()).ok_or(left.join(", "))
        }
    })
    .await;
}

/// A scenario with operators: this test's turn, a clean cluster with the CRDs and the chart,
/// the ServiceAccount's kubeconfig, a throwaway database and an admin client.
pub struct Scenario {
    /// Cluster API, played while the scenario lasts (dropped first).
    _cluster_api: ClusterApi,
    _turn: tokio::sync::MutexGuard<'static, ()>,
    pub plane: &'static ControlPlane,
    pub kubeconfig: std::path::PathBuf,
    pub db: crate::support::TestDb,
    pub client: Client,
    /// The workload cluster: the sample's ContainerCluster `main`, where its stack runs.
    pub workload: Client,
}

/// An operator running the sample of `scenario`, converged (within `within`) to what it
/// reaches without the third-party APIs.
pub async fn sample_running(scenario: &Scenario, within: Duration) -> Operator {
    let operator = start_operator(scenario.plane, &scenario.kubeconfig, &scenario.db.runtime_url, "windflow-0");
    apply_examples(scenario.plane);
    wait_for_sample(&scenario.client, &expected_without_providers(), within).await;
    operator
}

/// Merges `spec` into the spec of `name`.
pub async fn patch_spec(api: &Api<DynamicObject>, name: &str, spec: Value) {
    let patch = Patch::Merge(json!({ "spec": spec }));
    api.patch(name, &PatchParams::default(), &patch).await.unwrap_or_else(|e| panic!("patch {name}: {e}"));
}

/// A scenario with operators whose sample's Cluster API clusters become the second control
/// plane once WindFlow applies them (see [`play_cluster_api`]).
pub async fn scenario() -> Scenario {
    scenario_installed_from(crate::install::CHART, &[]).await
}

/// [`scenario`] with `chart` installed (a directory or a packaged chart), with `extra` helm
/// arguments.
pub async fn scenario_installed_from(chart: &str, extra: &[&str]) -> Scenario {
    let (turn, plane) = turn().await;
    reset(plane).await;
    let args = [&["--set", "admission.enabled=false"], extra].concat();
    let kubeconfig = crate::install::install_chart_from(plane, chart, &args).await;
    let db = crate::support::database().await;
    let client = plane.client().await;
    let workload_plane = workload_plane().await;
    let cluster_api = play_cluster_api(plane, workload_plane).await;
    let workload = workload_plane.client().await;
    // The sample's two claims bind on main.
    add_fresh_volumes(&workload, 2).await;
    Scenario { _cluster_api: cluster_api, _turn: turn, plane, kubeconfig, db, client, workload }
}

/// Lets `operator` settle, stops it, starts it again, lets it reconcile every object and
/// settle, and checks that it wrote nothing: no API write but renewing its Lease, no row
/// inserted, updated or deleted (PostgreSQL's own counts), no Event.
async fn restarted_without_writing(
    plane: &ControlPlane,
    kubeconfig: &Path,
    db: &TestDb,
    (operator, metrics): (Operator, String),
) -> (Operator, String) {
    let objects = sample().len();
    settle(&metrics, objects, CONVERGE_WITHIN).await;
    drop(operator);
    // A backend's counts reach the statistics when it ends (the killed operator's have) or,
    // idle, within 10 s (PGSTAT_IDLE_INTERVAL).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows_before = rows_changed(&db.pool).await;
    let (operator, metrics) = start_operator_with_metrics(plane, kubeconfig, &db.runtime_url, "windflow-0");
    let took = settle(&metrics, objects, CONVERGE_WITHIN).await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    let text = get(&metrics, "/metrics");
    let requests = samples(&text, "windflow_api_requests_total");
    eprintln!(
        "restarted: every object reconciled, settled in {took:?}; API requests:\n{}",
        requests.iter().map(|(labels, value)| format!("{labels} {value}")).collect::<Vec<_>>().join("\n")
    );
    let log = operator.log.display().to_string();
    // The counter counts writes: the Lease's renewals are there, and only they.
    let lease_writes: f64 = requests
        .iter()
        .filter(|(labels, _)| labels.contains("resource=\"leases\"") && !labels.contains("verb=\"get\""))
        .map(|(_, value)| value)
        .sum();
    assert!(lease_writes > 0.0, "the Lease's renewals are counted; log: {log}");
    assert_eq!(api_writes(&text), [], "API writes with nothing changed; log: {log}");
    assert_eq!(rows_changed(&db.pool).await, rows_before, "rows written with nothing changed; log: {log}");
    helm_test_passes_against(&metrics, kubeconfig);
    (operator, metrics)
}

/// The command of the chart's `helm test` pod (`windflow selftest`), run against the operator
/// whose probes listen at `probes` (kwok runs no container): it passes, and fails against an
/// address nothing answers at.
fn helm_test_passes_against(probes: &str, kubeconfig: &Path) {
    let selftest = |readyz: &str| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_windflow"))
            .args(["selftest", "--readyz", readyz])
            .env("KUBECONFIG", kubeconfig)
            .output()
            .expect("windflow runs");
        (output.status.success(), crate::controlplane::both(&output))
    };
    let (passed, said) = selftest(&format!("http://{probes}/readyz"));
    assert!(passed && said.contains("every WindFlow kind is served"), "{said}");
    let (passed, said) = selftest("http://127.0.0.1:1/readyz");
    assert!(!passed && said.contains("127.0.0.1:1"), "{said}");
}

/// Every metric the chart's Grafana dashboard and alerting rules query is one the running
/// operator exports (`exposition`, its replicas' `/metrics` together): the `# TYPE` lines,
/// counters and histograms by the names their samples extend (`_total`, `_bucket`, `_sum`,
/// `_count`).
pub fn dashboard_and_alerts_query_what_is_exported(exposition: &str) {
    let exported: std::collections::BTreeSet<&str> =
        exposition.lines().filter_map(|line| line.strip_prefix("# TYPE ")?.split_whitespace().next()).collect();
    let dashboard: Value =
        serde_json::from_str(include_str!("../../charts/windflow/dashboards/windflow.json")).expect("the dashboard");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queries: Vec<String> = vec![];
    for panel in panels {
        let targets = panel["targets"].as_array().filter(|targets| !targets.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {} queries nothing", panel["title"]));
        queries.extend(targets.iter().filter_map(|target| target["expr"].as_str().map(str::to_owned)));
    }
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/windflow");
    let rendered = crate::support::helm()
        .args([
            "template",
            "windflow",
            chart,
            "--set",
            "database.url=postgres://x",
            "--set",
            "prometheusRule.enabled=true",
        ])
        .output()
        .expect("helm runs");
    let rules = crate::support::documents(&String::from_utf8_lossy(&rendered.stdout));
    let rule = rules.iter().find(|doc| doc["kind"] == "PrometheusRule").expect("the alerting rules");
    let alerts = rule["spec"]["groups"][0]["rules"].as_array().expect("rules");
    queries.extend(alerts.iter().filter_map(|alert| alert["expr"].as_str().map(str::to_owned)));
    let mut queried = std::collections::BTreeSet::new();
    for query in &queries {
        let mut rest = query.as_str();
        while let Some(at) = rest.find("windflow_") {
            let name: String =
                rest[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit()).collect();
            rest = &rest[at + name.len()..];
            let base = ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|base| exported.contains(base)))
                .unwrap_or(&name)
                .to_owned();
            assert!(exported.contains(base.as_str()), "{name} (in {query}) is not exported: {exported:?}");
            queried.insert(base);
        }
    }
    eprintln!("the dashboard's {} panels and {} alerts query {queried:?}", panels.len(), alerts.len());
    assert!(queried.len() >= 10, "{queried:?}");
}

/// `name` from `api`, once it is there.
async fn eventually_get<K>(api: &Api<K>, name: &str) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let found = std::sync::Mutex::new(None);
    eventually(&format!("{name} exists"), Duration::from_secs(60), || async {
        let got = api.get_opt(name).await.map_err(|e| e.to_string())?.ok_or("absent")?;
        *found.lock().expect("lock") = Some(got);
        Ok(())
    })
    .await;
    found.into_inner().expect("lock").expect("found")
}

/// The first object `api` holds of the WindFlow object named `owner`.
async fn first_owned_by<K>(api: &Api<K>, owner: &str) -> K
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let owned = ListParams::default().labels(&format!("windflow.io/owner-name={owner}"));
    api.list(&owned).await.expect("list").items.into_iter().next().unwrap_or_else(|| panic!("a child of {owner}"))
}

/// Where Users' password Secrets are, as the chart makes it by default.
const USER_SECRET_NAMESPACE: &str = windflow::provision::DEFAULT_USER_SECRET_NAMESPACE;

async fn users_follow_their_password_secrets(client: &Client, pool: &PgPool) {
    let users = Api::<DynamicObject>::all_with(client.clone(), &crate::resource_of("User"));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), USER_SECRET_NAMESPACE);
    let apply = PatchParams::apply("e2e");
    let dave = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "User", "metadata": { "name": "dave" },
        "spec": { "email": "dave@acme.example",
            "passwordSecretRef": { "namespace": USER_SECRET_NAMESPACE, "name": "dave-login", "key": "hash" } } });
    users.patch("dave", &apply, &Patch::Apply(&dave)).await.expect("User dave");
    // Its reconcile finds no Secret yet, and waits for it: no look again before its grace ends.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for version in ["first", "second"] {
        let hash = format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${version}");
        let secret = json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "dave-login", "namespace": USER_SECRET_NAMESPACE }, "stringData": { "hash": hash } });
        secrets.patch("dave-login", &apply, &Patch::Apply(&secret)).await.expect("dave's Secret");
        let took = eventually(&format!("dave's {version} password mirrored"), Duration::from_secs(10), || async {
            let stored: Option<String> =
                sqlx::query_scalar("SELECT hashed_password FROM users WHERE email = 'dave@acme.example'")
                    .fetch_optional(pool)
                    .await
                    .map_err(|error| error.to_string())?
                    .flatten();
            if stored.as_deref() == Some(hash.as_str()) { Ok(()) } else { Err(format!("stored {stored:?}")) }
        })
        .await;
        eprintln!("dave's {version} password mirrored {took:?} after its Secret was written");
    }
    users.delete("dave", &DeleteParams::default()).await.expect("delete dave");
    secrets.delete("dave-login", &DeleteParams::default()).await.expect("delete dave's Secret");
    eventually("dave's row deleted", Duration::from_secs(10), || async {
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE email = 'dave@acme.example'")
            .fetch_one(pool)
            .await
            .map_err(|error| error.to_string())?;
        if rows == 0 { Ok(()) } else { Err(format!("{rows} rows")) }
    })
    .await;
}

#[tokio::test]
async fn the_sample_platform_converges_follows_changes_and_is_deleted() {
    let Scenario { plane, kubeconfig: operator_kubeconfig, db, client, workload: main_cluster, .. } = &scenario().await;
    let (plane, operator_kubeconfig, db, client) = (*plane, operator_kubeconfig.as_path(), db, client.clone());
    let operator = start_operator_with_metrics(plane, operator_kubeconfig, &db.runtime_url, "windflow-0");

    // 4. Converge: one `kubectl apply` of the directory, retried as Argo CD retries.
    let attempts = apply_examples(plane);
    let took = wait_for_sample(&client, &expected_without_providers(), CONVERGE_WITHIN).await;
    eprintln!(
        "converged {took:?} after the first apply ({attempts} kubectl apply attempts); log: {}",
        operator.0.log.display()
    );

    for doc in sample() {
        let (api, name) = api_for(&client, &doc);
        let obj = api.get(&name).await.expect("the object");
        let uid = obj.uid().expect("a uid");
        let audit = count(&db.pool, "SELECT count(*) FROM audit_logs WHERE resource_id = $1", &uid).await;
        assert!(audit >= 1, "{} {name} has an audit row", doc["kind"]);
    }
    let (clean, report) = windflow("check", operator_kubeconfig, &db.url);
    assert!(clean, "windflow check after converging: {report}");

    // The tenant's database login: its Secret in the tenant namespace logs in and reads acme's
    // rows; deleted, it comes back with a new password and the old one no longer logs in.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "acme");
    let uri_of = |secret: &Secret| {
        let data = secret.data.clone().unwrap_or_default();
        for key in ["host", "port", "dbname", "user", "password", "uri"] {
            assert!(data.contains_key(key), "the Secret has {key}");
        }
        String::from_utf8(data["uri"].0.clone()).expect("a uri")
    };
    let secret = eventually_get(&secrets, "windflow-database").await;
    let uri = uri_of(&secret);
    let tenant = sqlx::PgPool::connect(&uri).await.expect("the tenant logs in");
    let volumes: i64 = sqlx::query_scalar("SELECT count(*) FROM volumes").fetch_one(&tenant).await.expect("volumes");
    assert_eq!(volumes, 2, "acme's two volumes");
    tenant.close().await;
    secrets.delete("windflow-database", &DeleteParams::default()).await.expect("delete the Secret");
    // The next reconcile of the organization rotates it (a change of it, here; else the resync).
    let organizations = Api::<DynamicObject>::all_with(client.clone(), &crate::resource_of("Organization"));
    let touch = json!({ "metadata": { "annotations": { "example.org/touched": "rotate" } } });
    organizations.patch("acme", &PatchParams::default(), &Patch::Merge(touch)).await.expect("touch acme");
    let rotated = uri_of(&eventually_get(&secrets, "windflow-database").await);
    assert_ne!(rotated, uri, "a new password");
    assert!(sqlx::PgPool::connect(&uri).await.is_err(), "the old password no longer logs in");
    sqlx::PgPool::connect(&rotated).await.expect("the new one does").close().await;

    // A User follows its password Secret, whose versions are watched: made after the User, then
    // changed, it is mirrored within seconds, with nothing else touched (else at the end of the
    // User's arrival grace, then at its resync).
    users_follow_their_password_secrets(&client, &db.pool).await;

    // `kubectl get windflow` lists every kind with its printer columns.
    let mut get = plane.kubectl();
    get.args(["get", "windflow", "-A"]);
    let listed = run(get);
    for crd in windflow::kinds::crds() {
        let prefix = format!("{}.windflow.io/", crd.spec.names.singular.clone().unwrap_or_default());
        assert!(listed.contains(&prefix), "kubectl get windflow lists {prefix}: {listed}");
    }
    assert!(listed.lines().filter(|line| line.contains("NAME")).all(|header| header.contains("READY")), "{listed}");

    // Children: namespaces, claims bound to the static volumes, workloads Available. The stack's
    // applications and all they need are on main, the workload cluster; production's namespace
    // is on both (Cluster API's Cluster lives in it on the management cluster).
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in ["acme", "acme-production", "acme-staging"] {
        assert!(namespaces.get_opt(name).await.expect("get").is_some(), "namespace {name}");
    }
    let remote_namespace = Api::<Namespace>::all(main_cluster.clone()).get("acme-production").await.expect("on main");
    assert_eq!(remote_namespace.labels().get("windflow.io/organization").map(String::as_str), Some("acme"));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(main_cluster.clone(), "acme-production");
    eventually("claims Bound", Duration::from_secs(30), || {
        let claims = claims.clone();
        async move {
            let list = claims.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let phases: Vec<_> = list.items.iter().map(|c| c.status.as_ref().and_then(|s| s.phase.clone())).collect();
            (phases.len() == 2 && phases.iter().all(|p| p.as_deref() == Some("Bound")))
                .then_some(())
                .ok_or(format!("{phases:?}"))
        }
    })
    .await;
    let workloads: Api<Workload> = Api::namespaced(main_cluster.clone(), "acme-production");
    eventually("workloads Available", Duration::from_secs(60), || {
        let workloads = workloads.clone();
        async move {
            let list = workloads.list(&ListParams::default()).await.map_err(|e| e.to_string())?;
            let available = |w: &Workload| {
                w.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|conditions| {
                    conditions
                        .iter()
                        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
                })
            };
            (list.items.len() >= 3 && list.items.iter().all(available)).then_some(()).ok_or(format!(
                "{} workloads, {} available",
                list.items.len(),
                list.items.iter().filter(|w| available(w)).count()
            ))
        }
    })
    .await;

    // Quotas, policies, Services and RBAC are there as provisioned (as many as `windflow render`
    // prints for the sample), labeled with their owners.
    let owned = |kind: &str| ListParams::default().labels(&format!("windflow.io/owner-kind={kind}"));
    let count = |client: &Client, kind: &'static str, owner: &'static str| {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource_of_child(kind));
        async move { api.list(&owned(owner)).await.expect(kind).items.len() }
    };
    let mut found = vec![];
    for (cluster, client) in [("management", &client), ("main", main_cluster)] {
        for (kind, owner) in [
            ("ResourceQuota", "Environment"),
            ("NetworkPolicy", "Environment"),
            ("Deployment", "Application"),
            ("Service", "Application"),
            ("PersistentVolumeClaim", "Volume"),
            ("Role", "Policy"),
            ("RoleBinding", "Policy"),
        ] {
            found.push(format!("{cluster} {kind} {}", count(client, kind, owner).await));
        }
    }
    assert_eq!(
        found,
        [
            "management ResourceQuota 2",
            "management NetworkPolicy 2",
            "management Deployment 0",
            "management Service 0",
            "management PersistentVolumeClaim 0",
            "management Role 4",
            "management RoleBinding 4",
            "main ResourceQuota 1",
            "main NetworkPolicy 1",
            "main Deployment 3",
            "main Service 3",
            "main PersistentVolumeClaim 2",
            "main Role 0",
            "main RoleBinding 0",
        ]
    );
    // Where each runs is in its status and its row.
    let applications =
        Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &crate::resource_of("Application"));
    let api = applications.get("api").await.expect("api");
    assert_eq!(api.data["status"]["placement"], json!({ "cluster": "main", "namespace": "acme-production" }));
    let pool = db.pool.clone();
    eventually("the rows say where things run", Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            let query = "SELECT name || ' ' || (placement ->> 'cluster') FROM applications \
                         UNION ALL SELECT name || ' ' || (placement ->> 'cluster') FROM environments ORDER BY 1";
            let rows: Vec<String> = sqlx::query_scalar(query).fetch_all(&pool).await.map_err(|e| e.to_string())?;
            let expected = [
                "api main",
                "postgres main",
                "production (management),main",
                "staging (management)",
                "storefront main",
            ];
            (rows == expected).then_some(()).ok_or(format!("{rows:?}"))
        }
    })
    .await;

    // The sample rollout completes; each step is one row and one Event.
    let deployments = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &crate::resource_of("Deployment"));
    eventually("the rollout completes", CONVERGE_WITHIN, || {
        let deployments = deployments.clone();
        async move {
            let obj = deployments.get("shop-1-4-2").await.map_err(|e| e.to_string())?;
            let phase = obj.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
            (phase == "completed").then_some(()).ok_or(format!("phase {phase}: {}", obj.data["status"]))
        }
    })
    .await;
    let rollout = deployments.get("shop-1-4-2").await.expect("the rollout");
    steps_are_published_once(&client, &db.pool, &rollout).await;

    // The seed's status columns follow the real state: each element as the objects on it stand
    // (without the third-party providers, those with objects waiting for one are in error), the
    // declared host in service, DNSSEC signed by the domain's active key-signing key.
    let pool = db.pool.clone();
    eventually("the seed statuses follow", Duration::from_secs(60), || {
        let pool = pool.clone();
        async move {
            let query = "SELECT name || ' ' || status || ' ' || (last_health_check IS NOT NULL) FROM elements \
                         UNION ALL SELECT 'host ' || status FROM physical_hosts \
                         UNION ALL SELECT 'dnssec ' || dnssec_status FROM domains \
                         UNION ALL SELECT 'key ' || status FROM dnssec_keys ORDER BY 1";
            let rows: Vec<String> = sqlx::query_scalar(query).fetch_all(&pool).await.map_err(|e| e.to_string())?;
            let expected = [
                "backbone error true",
                "compute error true",
                "dns error true",
                "dnssec signed",
                "host active",
                "k8s active true",
                "key active",
                "metal active true",
                "storage active true",
            ];
            (rows == expected).then_some(()).ok_or(format!("{rows:?}"))
        }
    })
    .await;

    // Quiet: restarted, the operator reconciles every object again and, nothing having changed,
    // writes nothing.
    let (operator, _) = restarted_without_writing(plane, operator_kubeconfig, db, operator).await;

    // 5. Changes follow: a Volume grows, an Application scales.
    let volumes = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &crate::resource_of("Volume"));
    volumes
        .patch("pgdata", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "sizeGb": 60 } })))
        .await
        .expect("grow pgdata");
    let pgdata = volumes.get("pgdata").await.expect("pgdata");
    let pgdata_uid = pgdata.uid().expect("uid");
    let pool = db.pool.clone();
    let took = eventually("the Volume's row and claim follow", Duration::from_secs(30), || {
        let (claims, pool, uid) = (claims.clone(), pool.clone(), pgdata_uid.clone());
        async move {
            let size: Option<f64> = sqlx::query_scalar("SELECT size_gb::float8 FROM volumes WHERE id = $1")
                .bind(uid.parse::<uuid::Uuid>().expect("uuid"))
                .fetch_optional(&pool)
                .await
                .map_err(|e| e.to_string())?;
            let claim = claims.get("pgdata").await.map_err(|e| e.to_string())?;
            let request = claim.spec.and_then(|s| s.resources?.requests?.get("storage").cloned()).map(|q| q.0);
            (size == Some(60.0) && request.as_deref() == Some("60G"))
                .then_some(())
                .ok_or(format!("{size:?} {request:?}"))
        }
    })
    .await;
    eprintln!("a Volume change reached its row and claim in {took:?}");

    // Drift: a child deleted by hand and another edited by hand are repaired.
    let services: Api<Service> = Api::namespaced(main_cluster.clone(), "acme-production");
    let service = first_owned_by(&services, "api").await;
    services.delete(&service.name_any(), &DeleteParams::default()).await.expect("delete the Service");
    let took = eventually("the deleted Service is back", Duration::from_secs(60), || {
        let (services, name) = (services.clone(), service.name_any());
        async move { services.get_opt(&name).await.map_err(|e| e.to_string())?.map(|_| ()).ok_or("absent".into()) }
    })
    .await;
    eprintln!("a deleted child was repaired in {took:?}");

    // An Application scales: its row and its workload follow; a hand edit of the workload is
    // undone.
    let scale = json!({ "spec": { "deploymentConfig": { "replicas": 3 } } });
    applications.patch("api", &PatchParams::default(), &Patch::Merge(scale)).await.expect("scale api");
    let api_uid: uuid::Uuid = applications.get("api").await.expect("api").uid().expect("uid").parse().expect("uuid");
    let replicas_of_api = || {
        let (workloads, pool) = (workloads.clone(), pool.clone());
        async move {
            let row: Option<String> =
                sqlx::query_scalar("SELECT deployment_config ->> 'replicas' FROM applications WHERE id = $1")
                    .bind(api_uid)
                    .fetch_optional(&pool)
                    .await
                    .map_err(|e| e.to_string())?
                    .flatten();
            let list = workloads
                .list(&ListParams::default().labels("windflow.io/owner-name=api"))
                .await
                .map_err(|e| e.to_string())?;
            let replicas: Vec<Option<i32>> = list.items.iter().map(|w| w.spec.replicas).collect();
            (row.as_deref() == Some("3") && replicas == [Some(3)])
                .then_some(())
                .ok_or(format!("row {row:?}, workloads {replicas:?}"))
        }
    };
    let took = eventually("the Application's row and workload follow", Duration::from_secs(30), replicas_of_api).await;
    eprintln!("an Application change reached its row and workload in {took:?}");
    let workload = first_owned_by(&workloads, "api").await;
    let by_hand = PatchParams::apply("someone-by-hand").force();
    let scaled = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "spec": { "replicas": 1 } });
    let edited = workloads.patch(&workload.name_any(), &by_hand, &Patch::Apply(scaled)).await.expect("scale by hand");
    assert_eq!(edited.spec.replicas, Some(1), "the hand edit took");
    let took = eventually("the edited workload is repaired", Duration::from_secs(30), replicas_of_api).await;
    eprintln!("a child edited by hand was repaired in {took:?}");

    // `check` compares children on every cluster: the workload of a paused application, scaled
    // by hand on main, is reported until the application is resumed and repaired.
    let pause = |paused: Value| json!({ "metadata": { "annotations": { "windflow.io/paused": paused } } });
    applications.patch("api", &PatchParams::default(), &Patch::Merge(pause(json!("true")))).await.expect("pause api");
    eventually("api is paused", Duration::from_secs(30), || {
        let applications = applications.clone();
        async move {
            let api = applications.get("api").await.map_err(|e| e.to_string())?;
            let conditions = api.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let paused = conditions.iter().any(|c| c["type"] == "Ready" && c["reason"] == "Paused");
            paused.then_some(()).ok_or(format!("{}", api.data["status"]))
        }
    })
    .await;
    let scaled = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "spec": { "replicas": 1 } });
    workloads.patch(&workload.name_any(), &by_hand, &Patch::Apply(scaled)).await.expect("scale by hand");
    let (clean, report) = windflow("check", operator_kubeconfig, &db.url);
    let drift = format!("on main: Deployment acme-production/{}: spec.replicas: has 1, wants 3", workload.name_any());
    assert!(!clean && report.contains(&drift), "check finds the hand edit on main ({drift}): {report}");
    applications.patch("api", &PatchParams::default(), &Patch::Merge(pause(Value::Null))).await.expect("resume api");
    eventually("the resumed application repairs its workload", Duration::from_secs(30), replicas_of_api).await;

    // 8. `check` finds a tampered row, `resync` repairs it.
    sqlx::query("UPDATE users SET email = 'tampered@example.com' WHERE username = 'alice'")
        .execute(&db.pool)
        .await
        .expect("tamper");
    let (clean, report) = windflow("check", operator_kubeconfig, &db.url);
    assert!(!clean && report.contains("User alice"), "check finds the tampered row: {report}");
    let (repaired, report) = windflow("resync", operator_kubeconfig, &db.url);
    assert!(repaired, "resync: {report}");
    let (clean, report) = windflow("check", operator_kubeconfig, &db.url);
    assert!(clean, "check after resync: {report}");

    // 6. Delete: finalizers complete, children go, rows go, audit rows stay.
    let audit_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_logs").fetch_one(&db.pool).await.expect("count");
    delete_examples(plane, &client, main_cluster).await;
    for table in ["organizations", "users", "environments", "volumes", "applications", "deployments", "stacks"] {
        let rows = crate::support::count(&db.pool, table).await;
        assert_eq!(rows, 0, "{table} rows are deleted with their objects");
    }
    let audit_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_logs").fetch_one(&db.pool).await.expect("count");
    assert!(audit_after > audit_before, "deletes are audited, and nothing of the audit trail is deleted");
    drop(operator);
}
