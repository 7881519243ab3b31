//! Faults under churn. A seeded driver keeps a realistic load going: over a few organizations it
//! creates and deletes whole platforms (an object of every kind), edits objects of every kind,
//! and rolls out stacks in every strategy (a rollback, a cancel). Meanwhile two replicas elect
//! a leader on the chart's Lease and the leader is SIGKILLed again and again, PostgreSQL stops
//! for a while and then restarts at once, etcd and the API server restart with etcd's history
//! compacted (every watch resuming from before is answered `410 Gone`), and the workload
//! cluster's API server restarts. Afterwards nothing is lost, doubled, orphaned or stuck.
//!
//! The suite runs a short version. The long one is the same test with other settings
//! (docs/BENCHMARKS.md): `WINDFLOW_CHURN_KILLS`, `WINDFLOW_CHURN_OUTAGE` (seconds),
//! `WINDFLOW_CHURN_COPIES`, `WINDFLOW_CHURN_LEASE` (seconds), and `WINDFLOW_CHURN_SEED`, which
//! replays a run's actions and the moments of its kills (not the operator's own timing).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;
use windflow::kinds::KindId;

use crate::controlplane::{ControlPlane, Etcd, add_fresh_volumes, both, workload_plane};
use crate::failover::{LEASE, held_by};
use crate::install::{
    LEASE_DURATION, Operator, RELEASE_NAMESPACE, eventually, start_operator_with_metrics_and, windflow,
};
use crate::platform::{apply_examples, expected_without_providers, scenario, steps_are_published, wait_for_sample};
use crate::resource_of;
use crate::support::documents;

const CONVERGE_WITHIN: Duration = Duration::from_secs(300);
/// Rollout phases that are over.
const OVER: [&str; 4] = ["completed", "failed", "rolled_back", "cancelled"];

/// A run's settings: the suite's short run unless the environment says otherwise.
#[derive(Debug)]
struct Settings {
    seed: u64,
    /// SIGKILLs of the leader.
    kills: usize,
    /// How long PostgreSQL stays stopped.
    outage: Duration,
    /// Organizations churned beside the sample's, at most, at once.
    copies: usize,
    /// The replicas' lease duration.
    lease: Duration,
}

impl Settings {
    fn from_env() -> Self {
        let read = |name: &str, default: u64| match std::env::var(name) {
            Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value}: not a number")),
            Err(_) => default,
        };
        Self {
            seed: read("WINDFLOW_CHURN_SEED", fastrand::u64(..)),
            kills: read("WINDFLOW_CHURN_KILLS", 20) as usize,
            outage: Duration::from_secs(read("WINDFLOW_CHURN_OUTAGE", 30)),
            copies: read("WINDFLOW_CHURN_COPIES", 2) as usize,
            lease: Duration::from_secs(read("WINDFLOW_CHURN_LEASE", LEASE_DURATION.as_secs())),
        }
    }
}

/// The sample as organization `organization`'s own: every object, the cluster-scoped ones
/// (Users, Tag, Functions) renamed too, so that creating and deleting it covers every kind.
fn copy_of(organization: &str) -> Vec<Value> {
    let text = include_str!("../../examples/platform.yaml")
        .replace("alice", &format!("alice-{organization}"))
        .replace("bob", &format!("bob-{organization}"))
        .replace("critical", &format!("critical-{organization}"))
        .replace("stack.deploy", &format!("stack.deploy-{organization}"))
        .replace("stack.view", &format!("stack.view-{organization}"))
        .replace("acme", organization);
    documents(&text)
}

/// What the driver does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    Go,
    Pause,
    Stop,
}

/// An organization the driver works on: its namespace, its objects and, for a copy, the
/// `kubectl apply` that creates it (retried until its namespace exists, as Argo CD retries).
struct Organization {
    namespace: String,
    docs: Vec<Value>,
    manifest: std::path::PathBuf,
    applying: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Organization {
    fn applied(&self) -> bool {
        self.applying.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
    }
}

/// What the driver did.
#[derive(Debug, Default)]
struct Done {
    edits: usize,
    rollouts: usize,
    cancels: usize,
    /// Moves of the sample's stack between `main` and `edge`.
    moves: usize,
    created: usize,
    deleted: usize,
    /// Changes the API server refused, which the driver means to be valid.
    refused: Vec<String>,
    /// Requests the API server did not answer (while it restarts).
    unanswered: usize,
}

/// The seeded churn: one action at a time, 0.3 to 1.2 s apart.
struct Churn {
    rng: fastrand::Rng,
    plane: &'static ControlPlane,
    client: Client,
    workload: Client,
    organizations: Vec<Organization>,
    copies: usize,
    /// Static volumes on the workload cluster no claim took yet: two for each copy, and for
    /// each move of the sample's stack there.
    volumes: Arc<AtomicUsize>,
    /// The same on the management cluster, which plays the existing cluster `edge`.
    edge_volumes: Arc<AtomicUsize>,
    /// Where the sample's stack runs: `main` or `edge`.
    stack_on: &'static str,
    next_copy: usize,
    /// The copies being deleted: their namespaces, and the deletes until accepted.
    deleting: Vec<(String, tokio::task::JoinHandle<Result<(), String>>)>,
    /// Each organization's churn rollouts, oldest first.
    rollouts: BTreeMap<String, Vec<String>>,
    count: u64,
    done: Done,
}

impl Churn {
    async fn run(mut self, mut pace: watch::Receiver<Pace>) -> Self {
        loop {
            let now = *pace.borrow_and_update();
            match now {
                Pace::Stop => return self,
                Pace::Pause => {
                    let _ = pace.changed().await;
                    continue;
                }
                Pace::Go => self.step().await,
            }
            let wait = Duration::from_millis(self.rng.u64(300..1200));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = pace.changed() => {}
            }
        }
    }

    async fn step(&mut self) {
        self.count += 1;
        let copies = self.organizations.len() - 1;
        match self.rng.u32(0..100) {
            0..8 if copies < self.copies && take_two(&self.volumes) => self.create_copy(),
            8..16 if copies > 0 => self.delete_copy(),
            16..30 => self.roll_out().await,
            30..34 => self.move_stack().await,
            _ => self.edit().await,
        }
    }

    /// Records a request that failed: refused by the API server, or not answered.
    fn failed(&mut self, what: String, error: kube::Error) {
        match error {
            kube::Error::Api(refusal) => self.done.refused.push(format!("{what}: {refusal}")),
            _ => self.done.unanswered += 1,
        }
    }

    /// An organization whose objects are all created, at random.
    fn ready_organization(&mut self) -> Option<usize> {
        let ready: Vec<usize> = (0..self.organizations.len()).filter(|&i| self.organizations[i].applied()).collect();
        self.rng.choice(ready)
    }

    /// A copy of the sample, whose two claims bind on the workload cluster's volumes.
    fn create_copy(&mut self) {
        let namespace = format!("churn-{}", self.next_copy);
        self.next_copy += 1;
        let docs = copy_of(&namespace);
        let manifest = self.plane.dir.join(format!("{namespace}.yaml"));
        let yaml: Vec<String> = docs.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect();
        std::fs::write(&manifest, yaml.join("---\n")).expect("write the manifest");
        let (plane, path) = (self.plane, manifest.clone());
        let applying = tokio::spawn(async move { kubectl_until_accepted(plane, &["apply"], &path).await });
        self.organizations.push(Organization { namespace, docs, manifest, applying: Some(applying) });
        self.done.created += 1;
    }

    /// A copy deleted, and no longer worked on from now: a delete the API server's restart cuts
    /// short has deleted some of its objects already, so it is retried until accepted.
    fn delete_copy(&mut self) {
        let copies: Vec<usize> = (1..self.organizations.len()).filter(|&i| self.organizations[i].applied()).collect();
        let Some(index) = self.rng.choice(copies) else { return };
        let organization = self.organizations.remove(index);
        self.rollouts.remove(&organization.namespace);
        let (plane, manifest) = (self.plane, organization.manifest);
        let verb = ["delete", "--wait=false", "--ignore-not-found"];
        let deleting = tokio::spawn(async move { kubectl_until_accepted(plane, &verb, &manifest).await });
        self.deleting.push((organization.namespace, deleting));
        self.done.deleted += 1;
    }

    /// The sample's stack, with the VM that shares its volume, moved to the other cluster,
    /// once its last move is done and that cluster has two volumes for its claims.
    async fn move_stack(&mut self) {
        let (to, volumes, there) = match self.stack_on {
            "main" => ("edge", &self.edge_volumes, &self.client),
            _ => ("main", &self.volumes, &self.workload),
        };
        if !moved(&self.client, self.stack_on, there).await || !take_two(volumes) {
            return;
        }
        for (kind, name) in [("Stack", "shop"), ("VM", "legacy-erp")] {
            let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), "acme", &resource_of(kind));
            let moved = Patch::Merge(json!({ "spec": { "containerClusterRef": { "name": to } } }));
            if let Err(error) = api.patch(name, &PatchParams::default(), &moved).await {
                return self.failed(format!("move {kind} {name} to {to}"), error);
            }
        }
        self.stack_on = to;
        self.done.moves += 1;
    }

    /// A rollout of an organization's stack once its last one is over; or a cancel of that one.
    async fn roll_out(&mut self) {
        let Some(index) = self.ready_organization() else { return };
        let namespace = self.organizations[index].namespace.clone();
        let rollouts =
            Api::<DynamicObject>::namespaced_with(self.client.clone(), &namespace, &resource_of("Deployment"));
        let history = self.rollouts.entry(namespace.clone()).or_default().clone();
        let mut completed = None;
        for name in history.iter().rev() {
            let Ok(Some(rollout)) = rollouts.get_opt(name).await else { continue };
            let phase = rollout.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
            if Some(name) == history.last() && !OVER.contains(&phase.as_str()) {
                if self.rng.u32(0..4) == 0 {
                    self.cancel(&rollouts, name).await;
                }
                return;
            }
            if phase == "completed" && completed.is_none() {
                completed = Some(name.clone());
            }
        }
        self.count += 1;
        let name = format!("churn-{}", self.count);
        let triggered_by = if namespace == "acme" { "alice".to_owned() } else { format!("alice-{namespace}") };
        let mut spec = json!({ "stackRef": { "name": "shop" }, "applicationRef": { "name": "storefront" },
            "triggeredBy": triggered_by, "deploymentVersion": format!("2.{}.0", self.count) });
        let strategies = ["rolling", "standard", "blue_green", "canary", "rollback"];
        let strategy = self.rng.choice(strategies).expect("a strategy");
        spec["deploymentType"] = strategy.into();
        match (strategy, completed) {
            ("canary", _) => {
                spec["deploymentConfig"] = json!({ "canaryWeight": 50, "analysisSeconds": 2, "autoPromote": true });
            }
            ("rollback", Some(parent)) => spec["parentDeploymentRef"] = json!({ "name": parent }),
            ("rollback", None) => spec["deploymentType"] = "rolling".into(),
            _ => {}
        }
        let rollout: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": namespace }, "spec": spec }))
        .expect("a Deployment");
        match rollouts.create(&PostParams::default(), &rollout).await {
            Ok(_) => {
                self.rollouts.entry(namespace).or_default().push(name);
                self.done.rollouts += 1;
            }
            Err(error) => self.failed(format!("rollout {namespace}/{name}"), error),
        }
    }

    async fn cancel(&mut self, rollouts: &Api<DynamicObject>, name: &str) {
        let patch = Patch::Merge(json!({ "spec": { "cancel": true } }));
        match rollouts.patch(name, &PatchParams::default(), &patch).await {
            Ok(_) => self.done.cancels += 1,
            Err(error) => self.failed(format!("cancel {name}"), error),
        }
    }

    /// A spec change of an object of any kind but Deployment (cancelled above).
    async fn edit(&mut self) {
        let Some(index) = self.ready_organization() else { return };
        let docs: Vec<&Value> =
            self.organizations[index].docs.iter().filter(|doc| doc["kind"] != "Deployment").collect();
        let Some(doc) = self.rng.choice(docs).cloned() else { return };
        let (api, name) = crate::api_for(&self.client, &doc);
        let current = match api.get(&name).await {
            Ok(current) => current,
            Err(error) => return self.failed(format!("get {name}"), error),
        };
        self.count += 1;
        let kind = doc["kind"].as_str().unwrap_or_default();
        let patch = Patch::Merge(json!({ "spec": edit_of(kind, self.count, &current.data["spec"]) }));
        match api.patch(&name, &PatchParams::default(), &patch).await {
            Ok(_) => self.done.edits += 1,
            Err(error) => self.failed(format!("edit {kind} {name}"), error),
        }
    }
}

/// A change of the spec of an object of `kind`, different from `spec` and from every earlier
/// one (`count` grows), within what the kind's schema and rules accept.
fn edit_of(kind: &str, count: u64, spec: &Value) -> Value {
    let flip = |field: &str| json!({ field: !spec[field].as_bool().unwrap_or(false) });
    match kind {
        "ContainerCluster" => json!({ "version": format!("v1.33.{count}") }),
        "ContainerNode" => json!({ "hostname": format!("node-{count}.example") }),
        "DnsRecord" => json!({ "ttl": 60 + count % 80_000 }),
        "DnssecKey" => json!({ "keyTag": count % 65_536 }),
        "Domain" => flip("wildcardSupport"),
        "Gateway" => flip("rateLimiting"),
        "Network" => flip("crossCluster"),
        "PhysicalHost" | "VM" => json!({ "osVersion": count.to_string() }),
        "User" => flip("emailVerified"),
        "Volume" => json!({ "backupRetention": 1 + count % 50 }),
        // Every other kind has a description.
        _ => json!({ "description": format!("churn edit {count}") }),
    }
}

/// Whether the sample's stack runs on `on`, Ready, and no claim it left on the cluster
/// `there` (the one it would move to) is still being deleted. Moving back before that is not
/// supported (README, "What is not built yet"): the claims would still be in use there.
async fn moved(client: &Client, on: &str, there: &Client) -> bool {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let stacks = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of("Stack"));
    let Ok(shop) = stacks.get("shop").await else { return false };
    let placed = shop.data["status"]["placement"]["cluster"] == on;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(there.clone(), "acme-production");
    let Ok(claims) = claims.list(&ListParams::default()).await else { return false };
    let released = claims.items.iter().all(|claim| claim.metadata.deletion_timestamp.is_none());
    placed && crate::platform::readiness(&shop).0 == "True" && released
}

/// Takes two of the `volumes` left, if there are.
fn take_two(volumes: &AtomicUsize) -> bool {
    volumes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(2)).is_ok()
}

/// Adds static volumes on a cluster for four copies or moves, from the test's own task while
/// that cluster answers (the churn's would fail while its API server restarts).
async fn top_up(cluster: &Client, volumes: &AtomicUsize) {
    let missing = 8usize.saturating_sub(volumes.load(Ordering::Acquire));
    add_fresh_volumes(cluster, missing).await;
    volumes.fetch_add(missing, Ordering::AcqRel);
}

/// The sample's stack and VM naming `main`, then an existing cluster `edge` beside it
/// (`placement::add_edge_cluster`), so that the churn can move them between the two.
async fn add_edge(plane: &ControlPlane, client: &Client) {
    for (kind, name) in [("Stack", "shop"), ("VM", "legacy-erp")] {
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), "acme", &resource_of(kind));
        let named = Patch::Merge(json!({ "spec": { "containerClusterRef": { "name": "main" } } }));
        api.patch(name, &PatchParams::default(), &named).await.expect("named");
    }
    crate::placement::add_edge_cluster(plane, client).await;
}

/// `kubectl <verb> -f manifest` until every object is accepted, for up to 15 minutes: an apply's
/// namespaced objects wait for their Organization's namespace, a database outage holds it back,
/// and an API server that restarts answers some objects and not others. A task of the test's
/// runtime, so that it ends with the test, however that ends, and changes nothing in the turns
/// of the tests after it.
async fn kubectl_until_accepted(plane: &ControlPlane, verb: &[&str], manifest: &std::path::Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15 * 60);
    loop {
        let mut kubectl = tokio::process::Command::from(plane.kubectl());
        kubectl.args(verb).arg("-f").arg(manifest).kill_on_drop(true);
        let output = kubectl.output().await.map_err(|e| e.to_string())?;
        if output.status.success() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(both(&output));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The two replicas, `windflow-a` and `windflow-b`, started again when killed or exited.
struct Replicas {
    plane: &'static ControlPlane,
    kubeconfig: std::path::PathBuf,
    database_url: String,
    lease: String,
    running: BTreeMap<String, (Operator, String)>,
    /// Why replicas exited by themselves: the end of their logs.
    exits: Vec<String>,
    /// The logs of the replicas' earlier lives, kept when they start again.
    earlier_logs: Vec<std::path::PathBuf>,
}

impl Replicas {
    fn start(&mut self, identity: &str) {
        if let Some((operator, _)) = self.running.get(identity) {
            let kept = operator.log.with_extension(format!("{}.log", self.earlier_logs.len()));
            std::fs::rename(&operator.log, &kept).expect("keep the log of the replica's last life");
            self.earlier_logs.push(kept);
        }
        let env = [("WINDFLOW_LEASE_DURATION", self.lease.as_str())];
        let started = start_operator_with_metrics_and(self.plane, &self.kubeconfig, &self.database_url, identity, &env);
        self.running.insert(identity.to_owned(), started);
    }

    /// Starts again, as the kubelet would, every replica that exited by itself; records why.
    fn revive(&mut self) {
        let exited: Vec<String> = self
            .running
            .iter_mut()
            .filter_map(|(identity, (operator, _))| operator.exited().map(|status| (identity, status, operator)))
            .map(|(identity, status, operator)| {
                // What `main` returned, or the panic, is what it said last before any backtrace.
                let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
                let said = log.lines().rfind(|line| line.starts_with("Error: ") || line.contains("panicked"));
                self.exits.push(format!("{identity} exited ({status}): {}", said.unwrap_or("nothing")));
                identity.clone()
            })
            .collect();
        for identity in exited {
            self.start(&identity);
        }
    }

    fn other(identity: &str) -> &'static str {
        if identity == "windflow-a" { "windflow-b" } else { "windflow-a" }
    }

    /// Waits until a replica's probes answer: it stands by for the Lease.
    async fn serving(&self, identity: &str) {
        let address = self.running[identity].1.clone();
        eventually(&format!("{identity} serves its probes"), Duration::from_secs(60), || {
            let up = std::net::TcpStream::connect(&address).is_ok();
            async move { up.then_some(()).ok_or("not yet".to_owned()) }
        })
        .await;
    }
}

/// Plays the part of the kubelet kwok does not: a node that stopped renewing its lease while
/// its API server restarted is NotReady for a moment, the node lifecycle controller marks its
/// pods not Ready, and a kubelet marks them Ready again at its next status sync; kwok only
/// makes pods Ready once, when they start. Every 5 s, a Running pod whose containers are
/// ready but which is not is marked Ready again.
fn resync_pod_readiness(client: Client) -> tokio::task::JoinHandle<()> {
    use k8s_openapi::api::core::v1::Pod;
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::all(client.clone());
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let Ok(list) = pods.list(&ListParams::default()).await else { continue };
            for pod in list.items.iter().filter(|pod| pod.metadata.deletion_timestamp.is_none()) {
                let status = pod.status.clone().unwrap_or_default();
                let condition =
                    |kind: &str| status.conditions.iter().flatten().find(|c| c.type_ == kind).map(|c| c.status.clone());
                let flipped = status.phase.as_deref() == Some("Running")
                    && condition("ContainersReady").as_deref() == Some("True")
                    && condition("Ready").as_deref() == Some("False");
                if flipped {
                    let ready = json!({ "status": { "conditions": [{ "type": "Ready", "status": "True",
                        "lastTransitionTime": k8s_openapi::jiff::Timestamp::now() }] } });
                    let namespaced: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
                    let _ = namespaced
                        .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(ready))
                        .await;
                }
            }
        }
    })
}

/// Drops the test pool's connections the database's restart cut (the operator's pool settings
/// do not test a connection before use): queries until eight in a row succeed.
async fn reconnect(pool: &PgPool) {
    let mut succeeded = 0;
    for _ in 0..100 {
        match sqlx::query("SELECT 1").execute(pool).await {
            Ok(_) => succeeded += 1,
            Err(_) => succeeded = 0,
        }
        if succeeded == 8 {
            return;
        }
    }
    panic!("the database does not answer the test's pool again");
}

/// The Lease's holder.
async fn holder(client: &Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    leases.get_opt(LEASE).await.ok().flatten().and_then(|lease| lease.spec?.holder_identity)
}

/// The `p`th percentile of `samples` (nearest rank).
fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Waits until `windflow check` finds nothing; how long that took.
async fn checked_clean(kubeconfig: &std::path::Path, url: &str, within: Duration) -> Duration {
    eventually("windflow check finds nothing", within, || {
        let (kubeconfig, url) = (kubeconfig.to_owned(), url.to_owned());
        async move {
            let (clean, report) =
                tokio::task::spawn_blocking(move || windflow("check", &kubeconfig, &url)).await.expect("check runs");
            clean.then_some(()).ok_or(report)
        }
    })
    .await
}

/// Every mirrored row's `k8s_generation`: the generation of the spec it took.
async fn row_generations(pool: &PgPool) -> Result<HashMap<Uuid, Option<i64>>, String> {
    let mut generations = HashMap::new();
    for kind in KindId::ALL {
        let sql = format!("SELECT id, k8s_generation FROM {}", kind.table());
        let rows: Vec<(Uuid, Option<i64>)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.map_err(|e| e.to_string())?;
        generations.extend(rows);
    }
    Ok(generations)
}

/// How many of `objects` (not being deleted) have no row in `rows`, or a row that has not
/// taken their latest spec: the mirror's backlog.
fn behind_of(objects: &[Value], rows: &HashMap<Uuid, Option<i64>>) -> usize {
    objects
        .iter()
        .filter(|obj| obj["metadata"]["deletionTimestamp"].is_null())
        .filter(|obj| {
            let uid = obj["metadata"]["uid"].as_str().and_then(|uid| uid.parse().ok());
            let row = uid.and_then(|uid| rows.get(&uid).copied().flatten());
            row != obj["metadata"]["generation"].as_i64()
        })
        .count()
}

/// The mirror's backlog now.
async fn behind(client: &Client, pool: &PgPool) -> Result<usize, String> {
    let objects = windflow::check::list_all(client).await.map_err(|e| e.to_string())?;
    Ok(behind_of(&objects, &row_generations(pool).await?))
}

/// Waits until the mirror has no backlog ([`behind`]); how long that took.
async fn caught_up(client: &Client, pool: &PgPool, within: Duration) -> Duration {
    eventually("every object's row took its latest spec", within, || async {
        match behind(client, pool).await? {
            0 => Ok(()),
            count => Err(format!("{count} objects behind")),
        }
    })
    .await
}

/// Objects any of whose conditions gives `reason`.
async fn objects_saying(client: &Client, reason: &str) -> Vec<String> {
    let all = windflow::check::list_all(client).await.unwrap_or_default();
    all.iter()
        .filter(|obj| {
            let conditions = obj["status"]["conditions"].as_array().cloned().unwrap_or_default();
            conditions.iter().any(|c| c["reason"] == reason)
        })
        .map(|obj| format!("{} {}/{}", obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]))
        .collect()
}

/// Replays every object's audit trail: each row's old values are where the rows before it
/// left them (no change lost between two rows, none recorded twice), nothing follows a
/// delete, and the trail of every row that stands ends where the row is. The problems found.
async fn audit_trails_replay_to_rows(pool: &PgPool) -> Vec<String> {
    let rows: Vec<(String, Uuid, String, Value)> = sqlx::query_as(
        "SELECT resource_type, resource_id, action, changes FROM audit_logs ORDER BY created_at, resource_version, id",
    )
    .fetch_all(pool)
    .await
    .expect("audit rows");
    let mut problems = vec![];
    // Per object: its columns as the trail leaves them, and whether it ended in a delete.
    let mut trails: HashMap<Uuid, (serde_json::Map<String, Value>, bool)> = HashMap::new();
    for (kind, id, action, changes) in rows {
        let (columns, deleted) = trails.entry(id).or_default();
        if *deleted {
            problems.push(format!("{kind} {id}: a {action} row after its delete"));
        }
        if action == "delete" {
            *deleted = true;
            continue;
        }
        for (column, change) in changes["row"].as_object().into_iter().flatten() {
            let before = columns.get(column).unwrap_or(&Value::Null);
            if action == "update" && *before != change["old"] {
                problems.push(format!("{kind} {id}: {column} was {before}, its next row says {}", change["old"]));
            }
            columns.insert(column.clone(), change["new"].clone());
        }
    }
    // Not in the trail: what it records as "changed" only, and the rollout steps' columns,
    // whose trail is `deployment_events` (`events::record`).
    let untraced = |kind: KindId, column: &str| {
        windflow::mirror::sql::UNAUDITED_COLUMNS.contains(&column)
            || (kind == KindId::Deployment && ["status", "started_at", "completed_at", "result"].contains(&column))
    };
    for &kind in KindId::ALL {
        let sql = format!("SELECT id, to_jsonb(t) FROM {} t", kind.table());
        let rows: Vec<(Uuid, Value)> =
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.expect("mirrored rows");
        for (id, row) in rows {
            match trails.get(&id) {
                None => problems.push(format!("{kind:?} {id}: a row without an audit row")),
                Some((_, true)) => problems.push(format!("{kind:?} {id}: a row that stands after its delete row")),
                Some((columns, false)) => {
                    let differing = columns
                        .iter()
                        .filter(|(column, value)| !untraced(kind, column) && row.get(column.as_str()) != Some(value));
                    for (column, value) in differing {
                        problems.push(format!(
                            "{kind:?} {id}: {column} is {}, its audit trail ends at {value}",
                            row[column]
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// Children (of every type WindFlow provisions that the cluster serves) whose owner is no
/// WindFlow object of `owners`, and are not being deleted.
async fn orphans(client: &Client, owners: &BTreeSet<String>) -> Vec<String> {
    let types: BTreeMap<_, _> = KindId::ALL
        .iter()
        .flat_map(|kind| kind.child_types())
        .map(|child| ((child.api_version, child.kind), child.api_resource()))
        .collect();
    let mut found = vec![];
    for resource in types.values() {
        let api = Api::<DynamicObject>::all_with(client.clone(), resource);
        let labelled = ListParams::default().labels(windflow::provision::labels::OWNER_UID);
        let Ok(list) = api.list(&labelled).await else { continue };
        for child in list.items.iter().filter(|child| child.metadata.deletion_timestamp.is_none()) {
            let owner = child.labels().get(windflow::provision::labels::OWNER_UID).cloned().unwrap_or_default();
            if !owners.contains(&owner) {
                found.push(format!(
                    "{} {}/{} (owner {owner})",
                    resource.kind,
                    child.namespace().unwrap_or_default(),
                    child.name_any()
                ));
            }
        }
    }
    found
}

/// A watch of Tags from `version` is answered `410 Gone`.
async fn watch_is_gone(client: &Client, version: &str) -> bool {
    let tags = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Tag"));
    let Ok(stream) = tags.watch(&WatchParams::default().timeout(5), version).await else { return false };
    let mut stream = std::pin::pin!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(WatchEvent::Error(error)) => return error.code == 410,
            Err(kube::Error::Api(error)) => return error.code == 410,
            _ => {}
        }
    }
    false
}

#[tokio::test]
async fn churn_with_kills_outages_and_restarts_loses_doubles_orphans_and_strands_nothing() {
    let settings = Settings::from_env();
    eprintln!("churn: {settings:?} (WINDFLOW_CHURN_SEED={} replays it)", settings.seed);
    let mut rng = fastrand::Rng::with_seed(settings.seed);
    let mut scenario = scenario().await;
    let (plane, client, workload) = (scenario.plane, scenario.client.clone(), scenario.workload.clone());
    let kubeconfig = scenario.kubeconfig.clone();
    let mut replicas = Replicas {
        plane,
        kubeconfig: kubeconfig.clone(),
        database_url: scenario.db.runtime_url.clone(),
        lease: settings.lease.as_secs().to_string(),
        running: BTreeMap::new(),
        exits: vec![],
        earlier_logs: vec![],
    };
    replicas.start("windflow-a");
    held_by(&client, "windflow-a").await;
    replicas.start("windflow-b");
    apply_examples(plane);
    wait_for_sample(&client, &expected_without_providers(), CONVERGE_WITHIN).await;

    let (pace, paced) = watch::channel(Pace::Go);
    add_edge(plane, &client).await;
    let (volumes, edge_volumes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    top_up(&workload, &volumes).await;
    top_up(&client, &edge_volumes).await;
    let sample = Organization {
        namespace: "acme".into(),
        docs: crate::platform::sample(),
        manifest: std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/platform.yaml")),
        applying: None,
    };
    let churn = Churn {
        rng: fastrand::Rng::with_seed(settings.seed.wrapping_add(1)),
        plane,
        client: client.clone(),
        workload: workload.clone(),
        organizations: vec![sample],
        copies: settings.copies,
        volumes: volumes.clone(),
        edge_volumes: edge_volumes.clone(),
        stack_on: "main",
        next_copy: 1,
        deleting: vec![],
        rollouts: BTreeMap::new(),
        count: 0,
        done: Done::default(),
    };
    let churning = tokio::spawn(churn.run(paced));
    let kubelets = [resync_pod_readiness(client.clone()), resync_pod_readiness(workload.clone())];

    // 1. The leader SIGKILLed at random moments; the other takes over; the killed one comes
    // back as the standby.
    let renewal = settings.lease / 3;
    let mut failovers = vec![];
    for _ in 0..settings.kills {
        tokio::time::sleep(Duration::from_millis(rng.u64(1000..4000))).await;
        replicas.revive();
        let leader = holder(&client).await.expect("a leader");
        let standby = Replicas::other(&leader);
        replicas.serving(standby).await;
        replicas.running.get_mut(&leader).expect("the leader runs").0.kill();
        let took = held_by(&client, standby).await;
        failovers.push(took);
        replicas.start(&leader);
        top_up(&workload, &volumes).await;
        top_up(&client, &edge_volumes).await;
    }
    if !failovers.is_empty() {
        let (p50, p99, worst) = (percentile(&failovers, 50), percentile(&failovers, 99), percentile(&failovers, 100));
        eprintln!("failover after SIGKILL over {} kills: p50 {p50:?}, p99 {p99:?}, max {worst:?}", failovers.len());
        assert!(
            p99 <= settings.lease + renewal + Duration::from_secs(1),
            "failover p99 {p99:?} is over the lease {:?} plus a renewal {renewal:?}",
            settings.lease
        );
    }

    // 2. PostgreSQL. First, as a baseline, how long the mirror takes to catch up with the
    // churn when the database stays up; then the same after an outage.
    pace.send_replace(Pace::Pause);
    let backlog = behind(&client, &scenario.db.pool).await.unwrap_or_default();
    let calm = caught_up(&client, &scenario.db.pool, CONVERGE_WITHIN).await;
    pace.send_replace(Pace::Go);
    let leader = holder(&client).await.expect("a leader");
    let mut memory = vec![replicas.running[&leader].0.resident_memory()];
    // No row changes while the database is stopped: the backlog at its return is measured
    // against the rows as they were.
    let rows = row_generations(&scenario.db.pool).await.expect("the rows");
    scenario.db.stop_server();
    let stopped = Instant::now();
    let mut unavailable = vec![];
    while stopped.elapsed() < settings.outage {
        tokio::time::sleep(Duration::from_secs(2)).await;
        memory.push(replicas.running[&leader].0.resident_memory());
        if unavailable.is_empty() {
            unavailable = objects_saying(&client, "DatabaseUnavailable").await;
        }
    }
    pace.send_replace(Pace::Pause);
    let objects = windflow::check::list_all(&client).await.expect("the objects");
    let outage_backlog = behind_of(&objects, &rows);
    scenario.db.start_server();
    let returned = Instant::now();
    reconnect(&scenario.db.pool).await;
    caught_up(&client, &scenario.db.pool, CONVERGE_WITHIN).await;
    let drained = returned.elapsed();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let (first, peak, last) = (memory[0], memory.iter().copied().max().unwrap_or(0), memory[memory.len() - 1]);
    eprintln!(
        "database outage of {:?}: a backlog of {outage_backlog} objects written {drained:?} after its return (with \
         the database up: {backlog} in {calm:?}); the leader's memory {:.1} MiB at the start, {:.1} at most, {:.1} \
         at the end; saying DatabaseUnavailable meanwhile: {}",
        settings.outage,
        mib(first),
        mib(peak),
        mib(last),
        unavailable.len()
    );
    assert!(!unavailable.is_empty(), "no object said DatabaseUnavailable during the outage");
    assert!(peak < first + 64 * 1024 * 1024, "the leader's memory grew during the outage: {memory:?}");
    pace.send_replace(Pace::Go);
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A restart: every connection cut at once.
    scenario.db.stop_server();
    scenario.db.start_server();
    reconnect(&scenario.db.pool).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    top_up(&workload, &volumes).await;
    top_up(&client, &edge_volumes).await;

    // 3. etcd and the API server restarted, etcd compacted meanwhile: watches resuming from
    // before are answered 410 Gone and list again.
    let tags = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Tag"));
    let before = tags.list(&ListParams::default()).await.expect("tags").metadata.resource_version.expect("a version");
    plane.restart_apiserver(Some(Etcd::Compacted), Duration::from_secs(3)).await;
    assert!(watch_is_gone(&client, &before).await, "a watch from before the compaction is answered 410 Gone");
    // Its leader may have lost the Lease to the other replica meanwhile: it exits (the one exit
    // there is) and the kubelet starts it again; so do we.
    tokio::time::sleep(Duration::from_secs(5)).await;
    replicas.revive();

    // 4. The workload cluster's API server stopped for a while and started again.
    workload_plane().await.restart_apiserver(None, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    replicas.revive();

    // Then nothing lost, doubled, orphaned or stuck.
    pace.send_replace(Pace::Stop);
    let churned = churning.await.expect("the churn");
    eprintln!("churn: {} actions: {:?}", churned.count, churned.done);
    assert_eq!(churned.done.refused, Vec::<String>::new(), "changes the driver means to be valid were refused");
    for (namespace, deleting) in churned.deleting {
        assert_eq!(deleting.await.expect("kubectl delete"), Ok(()), "{namespace} is deleted");
    }
    let mut copies = vec![];
    for organization in churned.organizations.into_iter().skip(1) {
        if let Some(applying) = organization.applying {
            let applied = applying.await.expect("kubectl apply");
            assert_eq!(applied, Ok(()), "{} is applied", organization.namespace);
        }
        copies.push(organization.manifest);
    }
    let deployments = Api::<DynamicObject>::all_with(client.clone(), &resource_of("Deployment"));
    eventually("every rollout is over and nothing is being deleted", CONVERGE_WITHIN, || async {
        let all = windflow::check::list_all(&client).await.map_err(|e| e.to_string())?;
        let stuck: Vec<String> = all
            .iter()
            .filter(|obj| {
                obj["metadata"]["deletionTimestamp"].is_string()
                    || (obj["kind"] == "Deployment" && !OVER.contains(&obj["status"]["phase"].as_str().unwrap_or("")))
            })
            .map(|obj| {
                format!(
                    "{} {}/{}: {}",
                    obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"], obj["status"]["phase"]
                )
            })
            .collect();
        stuck.is_empty().then_some(()).ok_or(stuck.join(", "))
    })
    .await;
    checked_clean(&kubeconfig, &scenario.db.url, CONVERGE_WITHIN).await;
    let pool = &scenario.db.pool;
    let problems = audit_trails_replay_to_rows(pool).await;
    assert!(problems.is_empty(), "audit trails:\n{}", problems.join("\n"));
    let rollouts = deployments.list(&ListParams::default()).await.expect("rollouts").items;
    for rollout in &rollouts {
        steps_are_published(&client, pool, rollout, 1).await;
    }
    let count = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.expect(sql) };
    eprintln!(
        "audit: {} rows of {} objects replayed to their rows, none lost or doubled; rollouts: {} standing, their {} \
         step rows each one Event",
        count("SELECT count(*) FROM audit_logs").await,
        count("SELECT count(DISTINCT resource_id) FROM audit_logs").await,
        rollouts.len(),
        count("SELECT count(*) FROM deployment_events").await,
    );
    let owners: BTreeSet<String> = windflow::check::list_all(&client)
        .await
        .expect("objects")
        .iter()
        .filter_map(|obj| obj["metadata"]["uid"].as_str().map(str::to_owned))
        .collect();
    for (cluster, client) in [("management", &client), ("main", &workload)] {
        let left = orphans(client, &owners).await;
        assert!(left.is_empty(), "children on {cluster} without their owner: {left:?}");
    }
    kubelets.iter().for_each(tokio::task::JoinHandle::abort);
    replicas.revive();
    let logs = replicas.running.values().map(|(operator, _)| &operator.log).chain(&replicas.earlier_logs);
    for log in logs {
        assert!(!std::fs::read_to_string(log).unwrap_or_default().contains("panicked"), "{} panicked", log.display());
    }
    let unexpected: Vec<&String> = replicas.exits.iter().filter(|exit| !exit.contains("lost the lease")).collect();
    assert!(unexpected.is_empty(), "replicas exited for a transient fault: {unexpected:?}");
    eprintln!("replicas that exited after losing the Lease: {}", replicas.exits.len());

    // Everything deleted, on both clusters, after all that: the rollouts the churn made of the
    // sample's stack first, which hold the Users who triggered them.
    let made = churned.rollouts.get("acme").cloned().unwrap_or_default();
    if !made.is_empty() {
        let mut rollouts = plane.kubectl();
        rollouts.args(["delete", "deployments.windflow.io", "-n", "acme", "--wait=false"]).args(&made);
        crate::controlplane::run(rollouts);
    }
    let mut edge = plane.kubectl();
    edge.args(["delete", "containerclusters.windflow.io", "edge", "-n", "acme", "--wait=false"]);
    crate::controlplane::run(edge);
    for manifest in copies {
        let mut delete = plane.kubectl();
        delete.args(["delete", "--wait=false", "-f"]).arg(manifest);
        crate::controlplane::run(delete);
    }
    crate::platform::delete_examples(plane, &client, &workload).await;
}
