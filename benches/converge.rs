//! How long WindFlow takes to converge the sample platform times N (about 2,000 objects) on the
//! real control plane of the end-to-end tests, and the API requests it makes per object by
//! verb (its own `windflow_api_requests_total`, and every client's through the API servers'
//! `apiserver_request_total`), beside two references measured in the same run: a baseline
//! (kubectl creates the objects, a bare client patches each status once: the floor the API
//! server sets) and the fair floor of the management path (the same, plus the children
//! `windflow render` prints, until the workloads are Available). Then what the converged
//! operator writes while idle and when restarted. WindFlow runs the platform three times:
//! placed on the management cluster (the copies without their ContainerCluster) applied in two
//! sync waves (the cluster-scoped objects, then, once the Organizations are Ready, the rest),
//! the same applied as one file retried until accepted, and placed on workload clusters (a
//! second control plane, Cluster API played as the end-to-end tests play it) in two waves. Then
//! the operator's memory and open watches with 1, 4 and 8 workload clusters connected.
//!
//! `cargo bench --bench converge [-- COPIES]`; `-- floor` runs the references and the
//! management paths only, `-- workload` the references and the workload path; `-- ceiling [COPIES]` measures the ceiling of one replica and its
//! memory at about 10,000 objects instead ([`ceiling`]). Method and figures in
//! docs/BENCHMARKS.md. Each path's figures are printed as soon as it is done.

#[path = "../tests/e2e/controlplane.rs"]
mod controlplane;
#[path = "../tests/e2e/install.rs"]
mod install;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use controlplane::{ControlPlane, run};

/// Copies of the sample platform by default (`-- N` for others): 30 objects each, beside the
/// Tag and Functions they share.
const COPIES: usize = 66;
/// Status patches the baseline sends at once, as the operator's reconciles run at once.
const BASELINE_CONCURRENCY: usize = 16;
const CONVERGE_WITHIN: Duration = Duration::from_secs(30 * 60);
/// Pods per copy (3 + 2 + 1 replicas) and claims per copy, for the fake nodes and volumes.
const PODS_PER_COPY: usize = 6;
const CLAIMS_PER_COPY: usize = 2;

/// Copy `index` of the sample: its organization, namespace, users and names that must be
/// unique (emails, domains) carry the index; the Tag and Functions are shared by all copies.
fn copy(sample: &[Value], index: usize) -> Vec<Value> {
    sample
        .iter()
        .filter(|doc| index == 0 || !matches!(doc["kind"].as_str(), Some("Tag" | "Function")))
        .map(|doc| {
            let text = doc
                .to_string()
                .replace("acme.example", &format!("acme-{index}.example"))
                .replace("\"acme\"", &format!("\"acme-{index}\""))
                .replace("\"alice", &format!("\"alice-{index}"))
                .replace("\"bob", &format!("\"bob-{index}"));
            serde_json::from_str(&text).expect("a copy")
        })
        .collect()
}

/// The API server's own metrics.
async fn apiserver_metrics(client: &Client) -> String {
    let request = http::Request::get("/metrics").body(vec![]).expect("request");
    client.request_text(request).await.expect("/metrics")
}

/// `apiserver_request_total` summed by (verb, whether the resource is a WindFlow kind).
async fn requests(client: &Client) -> BTreeMap<(String, bool), f64> {
    by_verb(&apiserver_metrics(client).await, "apiserver_request_total")
}

/// The samples of `metric` summed by the key `key` reads in their labels; those it gives none
/// are left out.
fn summed<K: Ord>(exposition: &str, metric: &str, key: impl Fn(&str) -> Option<K>) -> BTreeMap<K, f64> {
    let mut totals = BTreeMap::new();
    for (labels, value) in install::samples(exposition, metric) {
        if let Some(key) = key(labels) {
            *totals.entry(key).or_insert(0.0) += value;
        }
    }
    totals
}

/// The samples of `metric` whose labels `keep` keeps, summed (0 when none is: not `Sum`'s -0).
fn total(exposition: &str, metric: &str, keep: impl Fn(&str) -> bool) -> f64 {
    summed(exposition, metric, |labels| keep(labels).then_some(())).get(&()).copied().unwrap_or(0.0)
}

/// The samples of `metric` summed by (verb, in capitals, whether the resource is a WindFlow kind).
fn by_verb(exposition: &str, metric: &str) -> BTreeMap<(String, bool), f64> {
    summed(exposition, metric, |labels| {
        Some((label(labels, "verb").to_uppercase(), label(labels, "group") == "windflow.io"))
    })
}

/// The value of label `name` in a sample's `{…}`.
fn label(labels: &str, name: &str) -> String {
    labels.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("").to_owned()
}

fn delta<K: Ord + Clone>(after: &BTreeMap<K, f64>, before: &BTreeMap<K, f64>) -> BTreeMap<K, f64> {
    after.iter().map(|(key, value)| (key.clone(), value - before.get(key).copied().unwrap_or(0.0))).collect()
}

/// Every WindFlow kind and where it is served.
fn kinds() -> BTreeMap<String, ApiResource> {
    let resources = windflow::kinds::KindId::ALL.iter().map(|kind| kind.api_resource());
    resources.map(|resource| (resource.kind.clone(), resource)).collect()
}

/// Objects not yet where the end-to-end suite expects them without third-party APIs but
/// Cluster API's, played (the rollouts completed). Each call lists every kind once.
async fn unconverged(client: &Client, kinds: &BTreeMap<String, ApiResource>) -> usize {
    standing(client, kinds).await.1
}

/// How many WindFlow objects there are, and how many of them are not yet where they converge
/// ([`unconverged`]).
async fn standing(client: &Client, kinds: &BTreeMap<String, ApiResource>) -> (usize, usize) {
    // As the end-to-end suite's `expected_without_providers`: the objects that need a provider
    // this control plane lacks, and the elements they stand on.
    let not_installed = [
        "Network/backend",
        "Network/frontend",
        "Domain/acme-example",
        "DnsRecord/www",
        "VM/legacy-erp",
        "Gateway/public",
    ];
    let dependent_failed = ["Element/backbone", "Element/compute", "Element/dns"];
    let (mut objects, mut left) = (0, 0);
    for (kind, resource) in kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        for obj in api.list(&ListParams::default()).await.expect("list").items {
            let conditions = obj.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let ready = conditions.iter().find(|c| c["type"] == "Ready");
            let (status, reason) =
                ready.map_or(("", ""), |c| (c["status"].as_str().unwrap_or(""), c["reason"].as_str().unwrap_or("")));
            let named = format!("{kind}/{}", obj.name_any());
            let done = if not_installed.contains(&named.as_str()) {
                status == "False" && reason == "ProviderNotInstalled"
            } else if dependent_failed.contains(&named.as_str()) {
                status == "False" && reason == "DependentFailed"
            } else if kind == "Deployment" {
                obj.data["status"]["phase"] == "completed"
            } else {
                status == "True"
            };
            objects += 1;
            left += usize::from(!done);
        }
    }
    (objects, left)
}

/// The copies as they run on the management cluster: without their ContainerCluster (and its
/// reported node), the VM naming none.
fn on_the_management_cluster(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|doc| !matches!(doc["kind"].as_str(), Some("ContainerCluster" | "ContainerNode")))
        .cloned()
        .map(|mut doc| {
            if let Some(spec) = doc["spec"].as_object_mut() {
                spec.remove("containerClusterRef");
            }
            doc
        })
        .collect()
}

fn write_documents(plane: &ControlPlane, name: &str, docs: &[Value]) -> std::path::PathBuf {
    let file = plane.dir.join(name);
    let yaml: Vec<String> = docs.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect();
    std::fs::write(&file, yaml.join("---\n")).expect("write");
    file
}

/// The operator's own requests (`windflow_api_requests_total`, served at `address`) summed by
/// (verb, whether the resource is a WindFlow kind), on every cluster, and its writes but its
/// Lease's.
fn operator_requests(address: &str) -> (BTreeMap<(String, bool), f64>, f64) {
    let text = install::get(address, "/metrics");
    (by_verb(&text, "windflow_api_requests_total"), install::api_writes_total(&text))
}

/// The operator's own reads (GET, LIST, WATCH) and status writes, by verb, plane (workload or
/// not) and resource.
fn operator_requests_by_resource(address: &str) -> BTreeMap<(String, bool, String), f64> {
    summed(&install::get(address, "/metrics"), "windflow_api_requests_total", |labels| {
        let verb = label(labels, "verb").to_uppercase();
        let resource = label(labels, "resource");
        let status_write = verb == "PATCH" && resource.ends_with("/status");
        (status_write || ["GET", "LIST", "WATCH"].contains(&verb.as_str()))
            .then(|| (verb, label(labels, "cluster") != "management", resource))
    })
}

/// What one WindFlow path took.
struct Converged {
    took: Duration,
    applies: usize,
    /// The operator's own requests, on every cluster.
    requests: BTreeMap<(String, bool), f64>,
    /// Through the API servers' eyes, every client's: the management plane's and the workload
    /// plane's.
    management: BTreeMap<(String, bool), f64>,
    workload: BTreeMap<(String, bool), f64>,
    /// Settled, during `IDLE`: the operator's API writes but its Lease's, and rows changed.
    idle: (f64, i64),
    /// A restart, every object reconciled again with nothing changed: the same, and how long
    /// the reconciles took.
    restart: (f64, i64, Duration),
    /// CPU seconds while converging: the operator's, and the whole machine's.
    cpu: (f64, f64),
    /// How long each `kubectl apply` run took.
    apply_runs: Vec<Duration>,
    clock: Clock,
    /// The operator's own reads and status writes while converging, by verb, plane and resource.
    reads: BTreeMap<(String, bool, String), f64>,
    /// The API server's calls of WindFlow's admission webhooks while converging, and the
    /// seconds they took.
    webhooks: (f64, f64),
}

/// How long a converged platform is watched for writes.
const IDLE: Duration = Duration::from_secs(10 * 60);

/// WindFlow: the chart with its admission webhook (which the operator serves), the operator
/// with its ServiceAccount, the platform applied as `applying` says, until every object is
/// where it converges. Requests are counted by the operator, and by both control planes.
/// Then, with `idle`, what the settled operator writes in that time; and what a restart writes,
/// every object reconciled again with nothing changed.
async fn windflow_path(
    plane: &ControlPlane,
    workload: &Client,
    (applying, objects): (Applying<'_>, usize),
    kinds: &BTreeMap<String, ApiResource>,
    idle: Option<Duration>,
) -> Converged {
    let client = plane.client().await;
    // As users install it: with admission, which the operator serves. The benchmark applies as
    // the admin, a platform operator who may roll out as the Users the Deployments name.
    let port = controlplane::free_port();
    let kubeconfig =
        install::install_chart_admitting(plane, port, &["--set", "admission.platformGroups={system:masters}"]).await;
    let mut admission = install::serving_admission(port).to_vec();
    admission.push(("WINDFLOW_PLATFORM_GROUPS", "system:masters".to_owned()));
    let env: Vec<(&str, &str)> = admission.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let db = support::database().await;
    let start =
        || install::start_operator_with_metrics_and(plane, &kubeconfig, &db.runtime_url, "windflow-bench", &env);
    let (operator, metrics) = start();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (before, before_workload) = (requests(&client).await, requests(workload).await);
    let (own_before, _) = operator_requests(&metrics);
    let reads_before = operator_requests_by_resource(&metrics);
    let cpu_before = (cpu_seconds(operator.pid()), machine_busy_seconds());
    let webhooks_before = webhook_calls(&client).await;
    let started = Instant::now();
    let mut organizations_ready = None;
    let apply_runs = match applying {
        Applying::Retried(file) => applied_until_accepted(plane, file).await,
        Applying::Waves(cluster_scoped, namespaced) => {
            let mut runs = applied_until_accepted(plane, cluster_scoped).await;
            let organizations = Api::<DynamicObject>::all_with(client.clone(), &kinds["Organization"]);
            while !every_ready(&organizations).await {
                assert!(started.elapsed() < CONVERGE_WITHIN, "organizations not Ready");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            organizations_ready = Some(started.elapsed());
            runs.extend(applied_until_accepted(plane, namespaced).await);
            runs
        }
    };
    let applied = started.elapsed();
    let mut polls = 0;
    loop {
        polls += 1;
        let left = unconverged(&client, kinds).await;
        if left == 0 {
            break;
        }
        assert!(started.elapsed() < CONVERGE_WITHIN, "{left} objects not converged; log {}", operator.log.display());
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let took = started.elapsed();
    let cpu = (cpu_seconds(operator.pid()) - cpu_before.0, machine_busy_seconds() - cpu_before.1);
    let webhooks = webhook_calls(&client).await;
    let webhooks = (webhooks.0 - webhooks_before.0, webhooks.1 - webhooks_before.1);
    let (own, _) = operator_requests(&metrics);
    let reads = delta(&operator_requests_by_resource(&metrics), &reads_before);
    let mut management = delta(&requests(&client).await, &before);
    // This benchmark's own polling: one list of every kind per poll.
    if let Some(lists) = management.get_mut(&("LIST".to_owned(), true)) {
        *lists -= (polls * kinds.len()) as f64;
    }
    let workload = delta(&requests(workload).await, &before_workload);
    install::settle(&metrics, objects, CONVERGE_WITHIN).await;
    let idle = match idle {
        Some(idle) => {
            let (rows, (_, writes)) = (support::rows_changed(&db.pool).await, operator_requests(&metrics));
            tokio::time::sleep(idle).await;
            (operator_requests(&metrics).1 - writes, support::rows_changed(&db.pool).await - rows)
        }
        None => (f64::NAN, 0),
    };
    // The restarted operator logs under the same name: the convergence's log is kept beside.
    let (Applying::Retried(first) | Applying::Waves(first, _)) = applying;
    let path_name = first.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let _ = std::fs::copy(&operator.log, operator.log.with_extension(format!("converging.{path_name}.log")));
    drop(operator);
    // The killed operator's backends report their counts as they end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows = support::rows_changed(&db.pool).await;
    let (operator, metrics) = start();
    let reconciled = install::settle(&metrics, objects, CONVERGE_WITHIN).await;
    // Idle backends report their counts within 10 s.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let restart = (operator_requests(&metrics).1, support::rows_changed(&db.pool).await - rows, reconciled);
    drop(operator);
    install::reset(plane).await;
    let applies = apply_runs.len();
    let requests = delta(&own, &own_before);
    let clock = Clock { organizations_ready, applied };
    Converged { took, applies, requests, management, workload, idle, restart, cpu, apply_runs, clock, reads, webhooks }
}

/// When, from the first apply, a path's Organizations were all Ready (two waves only) and its
/// last `kubectl apply` was done.
struct Clock {
    organizations_ready: Option<Duration>,
    applied: Duration,
}

/// How the WindFlow path applies the platform.
#[derive(Clone, Copy)]
enum Applying<'a> {
    /// One `kubectl apply -f` of the whole platform, run again every 2 s until every object is
    /// accepted: a namespaced object is refused until its Organization's namespace exists.
    Retried(&'a std::path::Path),
    /// As an Argo CD application with two sync waves: the cluster-scoped objects, then, once
    /// every Organization is Ready (its namespace made), the namespaced ones.
    Waves(&'a std::path::Path, &'a std::path::Path),
}

/// `kubectl apply -f file`, run again every 2 s until it succeeds: how long each run took.
async fn applied_until_accepted(plane: &ControlPlane, file: &std::path::Path) -> Vec<Duration> {
    let started = Instant::now();
    let mut runs = vec![];
    loop {
        let run_started = Instant::now();
        let applied = kubectl_apply(plane, file);
        runs.push(run_started.elapsed());
        if applied.status.success() {
            return runs;
        }
        assert!(started.elapsed() < CONVERGE_WITHIN, "apply: {}", controlplane::both(&applied));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Whether every object `api` lists is `Ready=True`.
async fn every_ready(api: &Api<DynamicObject>) -> bool {
    let listed = api.list(&ListParams::default()).await.expect("list");
    listed.items.iter().all(|obj| {
        let conditions = obj.data["status"]["conditions"].as_array().cloned().unwrap_or_default();
        conditions.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

/// The API server's calls of WindFlow's admission webhooks so far, and the seconds they took.
async fn webhook_calls(client: &Client) -> (f64, f64) {
    let text = apiserver_metrics(client).await;
    let windflow = |metric: &str| total(&text, metric, |labels| label(labels, "name").contains("windflow"));
    (
        windflow("apiserver_admission_webhook_admission_duration_seconds_count"),
        windflow("apiserver_admission_webhook_admission_duration_seconds_sum"),
    )
}

/// Clock ticks per second of `/proc`'s CPU times (`CLK_TCK`, 100 on Linux).
const TICKS: f64 = 100.0;

/// The CPU time process `pid` has used (user and system), from the kernel.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command's closing parenthesis: state is field 3, utime and stime 14 and 15.
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / TICKS
}

/// The CPU time every core of the machine has spent busy (neither idle nor waiting for I/O).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let times: Vec<f64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| rest.split_whitespace().map(|t| t.parse().unwrap_or(0.0)).collect())
        .unwrap_or_default();
    let idle = times.get(3).unwrap_or(&0.0) + times.get(4).unwrap_or(&0.0);
    (times.iter().take(8).sum::<f64>() - idle) / TICKS
}

/// The operator's resident memory, from the kernel.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Watches the API server of `client` holds open now (`apiserver_longrunning_requests`).
async fn open_watches(client: &Client) -> f64 {
    let text = apiserver_metrics(client).await;
    total(&text, "apiserver_longrunning_requests", |labels| label(labels, "verb") == "WATCH")
}

/// The operator's memory and the watches it opens on the workload control plane with 1, 4
/// and 8 workload clusters connected: copies of the sample, each with its own ContainerCluster
/// (its own credentials, client and watches), all played onto the one second control plane.
async fn connections(plane: &ControlPlane, workload: &Client, sample: &[Value], kinds: &BTreeMap<String, ApiResource>) {
    let client = plane.client().await;
    let kubeconfig = install::install_chart(plane).await;
    let db = support::database().await;
    let operator = install::start_operator(plane, &kubeconfig, &db.runtime_url, "windflow-connections");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let watches_before = open_watches(workload).await;
    println!(
        "connections: none, operator RSS {:.1} MiB, workload plane watches {watches_before:.0}",
        rss_mib(operator.pid())
    );
    let mut applied = 0;
    for clusters in [1, 4, 8] {
        let docs: Vec<Value> = (applied..clusters).flat_map(|index| copy(sample, index)).collect();
        // The paths before left their volumes Released: fresh ones for the new copies' claims.
        controlplane::add_fresh_volumes(workload, (clusters - applied) * CLAIMS_PER_COPY).await;
        let file = write_documents(plane, &format!("connections-{clusters}.yaml"), &docs);
        let started = Instant::now();
        while !kubectl_apply(plane, &file).status.success() {
            assert!(started.elapsed() < CONVERGE_WITHIN, "apply");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        while unconverged(&client, kinds).await > 0 {
            assert!(started.elapsed() < CONVERGE_WITHIN, "not converged; log {}", operator.log.display());
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        applied = clusters;
        // Settled: what a connection costs at rest, not the convergence's garbage.
        tokio::time::sleep(Duration::from_secs(20)).await;
        let watches = open_watches(workload).await - watches_before;
        println!(
            "connections: {clusters} workload clusters, operator RSS {:.1} MiB, {watches:.0} open watches on the \
             workload plane ({:.1} per cluster)",
            rss_mib(operator.pid()),
            watches / clusters as f64
        );
    }
    drop(operator);
    install::reset(plane).await;
}

/// One status patch on every WindFlow object, as a bare client would give it: a Ready
/// condition, sent `BASELINE_CONCURRENCY` at once.
async fn patch_every_status(client: &Client, kinds: &BTreeMap<String, ApiResource>) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = json!({ "status": { "conditions": [{
        "type": "Ready", "status": "True", "reason": "Baseline", "message": "", "lastTransitionTime": now,
    }] } });
    let mut listed = vec![];
    for resource in kinds.values() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        listed
            .extend(api.list(&ListParams::default()).await.expect("list").items.into_iter().map(|obj| (resource, obj)));
    }
    futures::stream::iter(listed.iter().map(|(resource, obj)| {
        let (client, status) = (client.clone(), status.clone());
        async move {
            let api: Api<DynamicObject> = match obj.namespace() {
                Some(namespace) => Api::namespaced_with(client, &namespace, *resource),
                None => Api::all_with(client, *resource),
            };
            api.patch_status(&obj.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await.map(|_| ())
        }
    }))
    .buffer_unordered(BASELINE_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await
    .expect("status patches");
}

/// The fair floor of the issue: a bare client that knows the answer does the operator's work
/// on the management cluster. It server-side applies the children `windflow render` prints for
/// `file` (those of the APIs this control plane serves: the operator makes no others here),
/// creates the CRs, patches each status once, and waits until every Deployment among the
/// children is Available and every claim Bound. Returns the time and the requests the API
/// server counted, its own polling aside.
async fn fair_floor(
    plane: &ControlPlane,
    file: &std::path::Path,
    kinds: &BTreeMap<String, ApiResource>,
) -> (Duration, BTreeMap<(String, bool), f64>) {
    let client = plane.client().await;
    let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_windflow"))
        .args(["render", "-f"])
        .arg(file)
        .output()
        .expect("windflow render runs");
    assert!(rendered.status.success(), "render: {}", controlplane::both(&rendered));
    let discovery = kube::Discovery::new(client.clone()).run().await.expect("discovery");
    let served = |doc: &Value| {
        let (Some(api_version), Some(kind)) = (doc["apiVersion"].as_str(), doc["kind"].as_str()) else { return false };
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        discovery.resolve_gvk(&kube::api::GroupVersionKind::gvk(group, version, kind)).is_some()
    };
    let children: Vec<Value> =
        support::documents(&String::from_utf8_lossy(&rendered.stdout)).into_iter().filter(served).collect();
    let deployments = children.iter().filter(|c| c["kind"] == "Deployment").count();
    let claims = children.iter().filter(|c| c["kind"] == "PersistentVolumeClaim").count();
    println!("fair floor: {} children ({deployments} Deployments, {claims} claims)", children.len());
    let children_file = write_documents(plane, "floor-children.yaml", &children);

    let before = requests(&client).await;
    let started = Instant::now();
    let mut apply = plane.kubectl();
    apply.args(["apply", "--server-side", "--field-manager=floor", "-f"]).arg(&children_file);
    run(apply);
    let created = kubectl_apply(plane, file);
    assert!(created.status.success(), "floor apply: {}", controlplane::both(&created));
    patch_every_status(&client, kinds).await;
    let mut polls = 0;
    let managed = ListParams::default().labels("app.kubernetes.io/managed-by=windflow");
    loop {
        polls += 1;
        let available = counted(&client, &managed, |workload: &k8s_openapi::api::apps::v1::Deployment| {
            let conditions = workload.status.as_ref().and_then(|s| s.conditions.as_ref());
            conditions.is_some_and(|c| {
                c.iter().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"))
            })
        })
        .await;
        let bound = counted(&client, &managed, |claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim| {
            claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
        })
        .await;
        if available == deployments && bound == claims {
            break;
        }
        assert!(
            started.elapsed() < CONVERGE_WITHIN,
            "floor: {available}/{deployments} Deployments Available, {bound}/{claims} claims Bound"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let took = started.elapsed();
    let mut counted = delta(&requests(&client).await, &before);
    // The floor's own polling: two lists per poll, and the lists that found the objects to patch.
    if let Some(lists) = counted.get_mut(&("LIST".to_owned(), false)) {
        *lists -= (2 * polls) as f64;
    }
    (took, counted)
}

/// The control plane with room for the pods and claims of `copies` (fake nodes, static
/// volumes) and WindFlow's CRDs established, and a client of it.
async fn prepared_plane(copies: usize) -> (&'static ControlPlane, Client) {
    let plane = controlplane::control_plane().await;
    let client = plane.client().await;
    let nodes = (copies * PODS_PER_COPY).div_ceil(100);
    controlplane::add_fake_nodes(&client, controlplane::NODES..nodes.max(controlplane::NODES)).await;
    controlplane::add_static_volumes(&client, 100..100 + copies * CLAIMS_PER_COPY).await;
    let mut crds = plane.kubectl();
    crds.args(["apply", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/crds")]);
    run(crds);
    let mut established = plane.kubectl();
    established.args(["wait", "--for=condition=Established", "-f", concat!(env!("CARGO_MANIFEST_DIR"), "/crds")]);
    run(established);
    (plane, client)
}

/// Copies for `-- ceiling`: about 10,000 objects on the management cluster.
const CEILING_COPIES: usize = 360;
/// Organizations' platforms per `kubectl apply` in `-- ceiling`.
const ARRIVING_TOGETHER: usize = 4;
/// Objects left to converge below which `-- ceiling` sends the next platforms: enough that
/// the operator never runs out of work, few enough that arrivals go on to the end.
const BACKLOG: usize = 600;
/// How often `-- ceiling` counts the objects and reads the operator's memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How long after settling `-- ceiling` reads the memory of the operator at rest: longer than
/// kube's Event recorder keeps what it published (six minutes), and than the operator waits to
/// make it anew.
const AT_REST: Duration = Duration::from_secs(8 * 60);

/// The ceiling of one replica and its memory at scale (`-- ceiling [COPIES]`): new
/// organizations' platforms (copies of the sample on the management cluster, children
/// included) keep arriving, `ARRIVING_TOGETHER` per `kubectl apply`, whenever fewer than
/// `BACKLOG` objects are left to converge, until `copies` have arrived. Every `SAMPLE_EVERY`
/// the objects and those converged are counted and the operator's RSS read. The ceiling is
/// the objects converged per second while platforms were still arriving (from the first
/// tenth converged to the last arrival); the memory, the settled operator's RSS with none
/// and with every object, and the growth per 1,000 objects between them.
async fn ceiling(copies: usize) {
    let (plane, client) = prepared_plane(copies).await;
    let kinds = kinds();
    let sample = support::documents(include_str!("../examples/platform.yaml"));
    let indexes: Vec<usize> = (0..copies).collect();
    let arrivals: Vec<(std::path::PathBuf, usize)> = indexes
        .chunks(ARRIVING_TOGETHER)
        .enumerate()
        .map(|(i, chunk)| {
            let docs: Vec<Value> = chunk.iter().flat_map(|index| copy(&sample, *index)).collect();
            let docs = on_the_management_cluster(&docs);
            (write_documents(plane, &format!("ceiling-{i}.yaml"), &docs), docs.len())
        })
        .collect();
    let total: usize = arrivals.iter().map(|(_, objects)| objects).sum();
    println!(
        "ceiling: {copies} platforms, {total} objects, {ARRIVING_TOGETHER} platforms per apply, backlog {BACKLOG}"
    );

    let kubeconfig = install::install_chart(plane).await;
    let db = support::database().await;
    let (operator, metrics) =
        install::start_operator_with_metrics(plane, &kubeconfig, &db.runtime_url, "windflow-ceiling");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rss_empty = rss_mib(operator.pid());
    let (own_before, _) = operator_requests(&metrics);
    let started = Instant::now();
    // Arrivals sent, and those a namespace not yet made refused in part: sent again each time.
    let (mut sent, mut refused) = (0, vec![]);
    let mut last_arrival = Duration::ZERO;
    let mut samples: Vec<(Duration, usize, usize, f64)> = vec![];
    loop {
        let (objects, left) = standing(&client, &kinds).await;
        let at = started.elapsed();
        samples.push((at, objects, objects - left, rss_mib(operator.pid())));
        if sent == arrivals.len() && refused.is_empty() && objects == total && left == 0 {
            break;
        }
        assert!(at < CONVERGE_WITHIN * 2, "{left} of {objects} objects not converged; log {}", operator.log.display());
        refused.retain(|arrival: &usize| !kubectl_apply(plane, &arrivals[*arrival].0).status.success());
        // Objects sent, made or not yet (a refused part), and not converged.
        let arrived: usize = arrivals[..sent].iter().map(|(_, objects)| objects).sum();
        let mut backlog = arrived - (objects - left);
        while sent < arrivals.len() && backlog < BACKLOG {
            if !kubectl_apply(plane, &arrivals[sent].0).status.success() {
                refused.push(sent);
            }
            backlog += arrivals[sent].1;
            sent += 1;
            last_arrival = started.elapsed();
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let took = started.elapsed();
    let (own, _) = operator_requests(&metrics);
    install::settle(&metrics, total, CONVERGE_WITHIN).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let rss_full = rss_mib(operator.pid());
    // At rest: past the six minutes for which kube's Event recorder keeps what it published.
    tokio::time::sleep(AT_REST).await;
    let rss_rest = rss_mib(operator.pid());

    let mut thousand = 1000;
    for (at, objects, converged, rss) in &samples {
        if *converged >= thousand {
            println!("  {:>6.0} s: {objects:>6} objects, {converged:>6} converged, RSS {rss:.1} MiB", at.as_secs_f64());
            thousand = converged / 1000 * 1000 + 1000;
        }
    }
    let from = samples.iter().find(|(_, _, converged, _)| *converged >= total / 10).copied();
    let to = samples.iter().rev().find(|(at, ..)| *at <= last_arrival).copied();
    match (from, to) {
        (Some((t0, _, c0, _)), Some((t1, _, c1, _))) if t1 > t0 => println!(
            "ceiling: {:.1} objects converged per second while platforms kept arriving ({c0} to {c1} converged, {:.0} s \
             to {:.0} s); all {total} in {:.1} s ({:.1} objects/s)",
            (c1 - c0) as f64 / (t1 - t0).as_secs_f64(),
            t0.as_secs_f64(),
            t1.as_secs_f64(),
            took.as_secs_f64(),
            total as f64 / took.as_secs_f64()
        ),
        _ => println!("ceiling: arrivals ended before a tenth converged; all {total} in {:.1} s", took.as_secs_f64()),
    }
    println!(
        "memory: settled RSS {rss_empty:.1} MiB with no object, {rss_full:.1} MiB with {total} objects and their \
         children ({:.1} MiB per 1,000 objects); peak while converging {:.1} MiB; at rest {:.0} s later \
         {rss_rest:.1} MiB ({:.1} MiB per 1,000 objects)",
        (rss_full - rss_empty) / total as f64 * 1000.0,
        samples.iter().map(|s| s.3).fold(0.0, f64::max),
        AT_REST.as_secs_f64(),
        (rss_rest - rss_empty) / total as f64 * 1000.0,
    );
    report("the operator's own requests", took, total, &delta(&own, &own_before));
    drop(operator);
}

/// How many objects of `K` that `selected` lists are `done`.
async fn counted<K>(client: &Client, selected: &ListParams, done: impl Fn(&K) -> bool) -> usize
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let listed = Api::<K>::all(client.clone()).list(selected).await.expect("a list");
    listed.items.iter().filter(|obj| done(obj)).count()
}

fn kubectl_apply(plane: &ControlPlane, file: &std::path::Path) -> std::process::Output {
    let mut apply = plane.kubectl();
    apply.args(["apply", "-f"]).arg(file);
    apply.output().expect("kubectl runs")
}

fn report(name: &str, took: Duration, objects: usize, requests: &BTreeMap<(String, bool), f64>) {
    println!(
        "{name}: {objects} objects in {:.1} s ({:.1} objects/s)",
        took.as_secs_f64(),
        objects as f64 / took.as_secs_f64()
    );
    for ((verb, windflow), count) in requests {
        if *count > 0.0 {
            let on = if *windflow { "WindFlow kinds" } else { "other resources" };
            println!("  {verb:>7} on {on:<15} {count:>8.0}  {:>6.2} per object", count / objects as f64);
        }
    }
}

#[tokio::main]
async fn main() {
    let ceiling_run = std::env::args().any(|a| a == "ceiling");
    let copies: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(if ceiling_run {
        CEILING_COPIES
    } else {
        COPIES
    });
    if ceiling_run {
        return ceiling(copies).await;
    }
    let (plane, client) = prepared_plane(copies).await;

    let kinds = kinds();
    let sample = support::documents(include_str!("../examples/platform.yaml"));
    let docs: Vec<Value> = (0..copies).flat_map(|index| copy(&sample, index)).collect();
    let objects = docs.len();
    let file = write_documents(plane, "platform-copies.yaml", &docs);
    let managed = on_the_management_cluster(&docs);
    let managed_file = write_documents(plane, "platform-copies-management.yaml", &managed);
    // The two sync waves of each: cluster-scoped objects first, then the namespaced ones.
    let waves = |name: &str, docs: &[Value]| {
        let (cluster_scoped, namespaced): (Vec<Value>, Vec<Value>) =
            docs.iter().cloned().partition(|doc| doc["metadata"]["namespace"].is_null());
        (
            write_documents(plane, &format!("{name}-wave-0.yaml"), &cluster_scoped),
            write_documents(plane, &format!("{name}-wave-1.yaml"), &namespaced),
        )
    };
    let managed_waves = waves("platform-copies-management", &managed);
    let workload_waves = waves("platform-copies", &docs);
    println!("{copies} copies of the sample platform: {objects} objects ({} without their clusters)", managed.len());

    // The workload cluster, with room for the pods and claims, and Cluster API played for the
    // copies' clusters, as in the end-to-end suite.
    let workload_plane = controlplane::workload_plane().await;
    let workload = workload_plane.client().await;
    let nodes = (copies * PODS_PER_COPY).div_ceil(100);
    controlplane::add_fake_nodes(&workload, controlplane::NODES..nodes.max(controlplane::NODES)).await;
    controlplane::add_static_volumes(&workload, 100..100 + copies * CLAIMS_PER_COPY).await;
    install::install_cluster_api(plane).await;
    let _cluster_api = install::play_cluster_api(plane, workload_plane).await;

    // Baseline: the tenant namespaces exist (the operator makes its own), then kubectl creates
    // the objects and a bare client patches each status once.
    for index in 0..copies {
        let mut namespace = plane.kubectl();
        namespace.args(["create", "namespace", &format!("acme-{index}")]);
        run(namespace);
        let mut label = plane.kubectl();
        label.args(["label", "namespace", &format!("acme-{index}"), "app.kubernetes.io/managed-by=windflow"]);
        run(label);
    }
    let before = requests(&client).await;
    let started = Instant::now();
    let created = kubectl_apply(plane, &file);
    assert!(created.status.success(), "baseline apply: {}", controlplane::both(&created));
    patch_every_status(&client, &kinds).await;
    let baseline = started.elapsed();
    // The 21 lists that found the objects to patch are the baseline's own reads.
    let baseline_requests = delta(&requests(&client).await, &before);
    // The played Cluster API would have made the copies' clusters Available: nothing is left
    // of the baseline's objects once reset.
    install::reset(plane).await;

    report("baseline (kubectl apply, one status patch each)", baseline, objects, &baseline_requests);
    let (floor, floor_requests) = fair_floor(plane, &managed_file, &kinds).await;
    report(
        "fair floor of the management path (children, CRs, one status patch each, workloads up)",
        floor,
        managed.len(),
        &floor_requests,
    );
    install::reset(plane).await;
    // The floor's claims left their volumes Released: fresh ones for the operator's.
    controlplane::add_fresh_volumes(&client, copies * CLAIMS_PER_COPY).await;
    let mut ratios = vec![];
    // `-- floor`: the management paths and their floor only; `-- workload`: the workload path
    // and the floor.
    let paths = if std::env::args().any(|a| a == "floor") { 2 } else { 3 };
    let only_workload = std::env::args().any(|a| a == "workload");
    for (name, applying, count, idle) in [
        (
            "on the management cluster, in two sync waves",
            Applying::Waves(&managed_waves.0, &managed_waves.1),
            managed.len(),
            None,
        ),
        ("on the management cluster, one apply retried", Applying::Retried(&managed_file), managed.len(), None),
        (
            "on workload clusters, in two sync waves",
            Applying::Waves(&workload_waves.0, &workload_waves.1),
            objects,
            Some(IDLE),
        ),
    ]
    .into_iter()
    .take(paths)
    .skip(if only_workload { 2 } else { 0 })
    {
        let path = windflow_path(plane, &workload, (applying, count), &kinds, idle).await;
        // The claims of this path left their volumes Released: fresh ones for the next.
        controlplane::add_fresh_volumes(&client, copies * CLAIMS_PER_COPY).await;
        let title = format!("WindFlow {name} ({} kubectl apply runs, converged)", path.applies);
        report(&title, path.took, count, &path.requests);
        report("  the management plane, every client", path.took, count, &path.management);
        report("  the workload plane, every client", path.took, count, &path.workload);
        if let Some(idle) = idle {
            println!(
                "  idle {} s after converging: {} API writes (Lease aside), {} rows changed",
                idle.as_secs(),
                path.idle.0,
                path.idle.1
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "  CPU while converging: the operator {:.1} s, the whole machine {:.1} s busy of {:.1} s ({cores} cores)",
            path.cpu.0,
            path.cpu.1,
            path.took.as_secs_f64() * cores as f64
        );
        let runs: Vec<String> = path.apply_runs.iter().map(|run| format!("{:.1} s", run.as_secs_f64())).collect();
        if let Some(ready) = path.clock.organizations_ready {
            println!("  every Organization Ready {:.1} s after the first apply", ready.as_secs_f64());
        }
        println!(
            "  the last apply done at {:.1} s; converged {:.1} s after it",
            path.clock.applied.as_secs_f64(),
            (path.took - path.clock.applied).as_secs_f64()
        );
        let (calls, seconds) = path.webhooks;
        println!(
            "  kubectl apply runs: {}; admission webhooks: {calls} calls, {:.1} ms each on average",
            runs.join(", "),
            seconds / calls.max(1.0) * 1000.0
        );
        for ((verb, on_workload, resource), count) in path.reads.iter().filter(|(_, count)| **count >= 1.0) {
            let plane = if *on_workload { "workload clusters" } else { "management" };
            println!("  the operator's {verb} of {resource} on {plane}: {count:.0}");
        }
        let (writes, rows, reconciled) = path.restart;
        println!(
            "  restarted, every object reconciled again in {:.1} s: {writes} API writes (Lease aside), {rows} rows changed",
            reconciled.as_secs_f64()
        );
        ratios.push(format!("{:.2} {name}", path.took.as_secs_f64() / baseline.as_secs_f64()));
        if idle.is_none() {
            println!(
                "ratio of times, WindFlow {name} / its fair floor: {:.2}",
                path.took.as_secs_f64() / floor.as_secs_f64()
            );
        }
    }
    println!("ratio of times, WindFlow / baseline: {}", ratios.join(", "));
    if paths == 3 && !only_workload {
        connections(plane, &workload, &sample, &kinds).await;
    }
}
