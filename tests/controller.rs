//! The reconcile against a mocked API server (tower-test) and a real, throwaway PostgreSQL:
//! every request the controller makes is expected in order, answered, and checked; nothing else
//! may be sent.

mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::*;
use windflow::kinds::{Application, ContainerCluster, Environment, User, VM, Volume};
use windflow::provision::Config;
use windflow::reconcile::{self, Context, Error, FINALIZER, durations};

/// Longest wait for one request or for the reconcile to finish.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The other end of the mocked client: each call expects the next request.
struct ApiServer(tower_test::mock::Handle<Request<Body>, Response<Body>>);

/// One request as the API server saw it.
struct Seen {
    query: String,
    body: Value,
}

impl ApiServer {
    /// Expects the next request to be `method path`, answers `response` with 200, returns it.
    async fn expect(&mut self, method: &str, path: &str, response: impl FnOnce(&Value) -> Value) -> Seen {
        self.answer(method, path, 200, response).await
    }

    /// Expects the cluster's aggregated discovery (`/api`, then `/apis`), asked once per
    /// reconcile context, and answers what [`discovery`] says is served.
    async fn expect_discovery(&mut self) {
        self.expect("GET", "/api", |_| discovery(&[("", "v1", CORE_V1)])).await;
        self.expect("GET", "/apis", |_| discovery(SERVED_GROUPS)).await;
    }

    /// Expects the next request to publish an Event in `namespace`: a new one, or the next of a
    /// series the recorder patches. Answers it as sent.
    async fn expect_event(&mut self, namespace: &str) -> Seen {
        let (request, send) = tokio::time::timeout(TIMEOUT, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for an Event"))
            .unwrap_or_else(|| panic!("the client was dropped before an Event"));
        let events = format!("/apis/events.k8s.io/v1/namespaces/{namespace}/events");
        assert!(request.uri().path().starts_with(&events), "{} {}", request.method(), request.uri());
        let bytes = request.into_body().collect_bytes().await.expect("request body");
        let body: Value = serde_json::from_slice(&bytes).expect("JSON body");
        send.send_response(Response::builder().status(200).body(Body::from(bytes)).expect("response"));
        Seen { query: String::new(), body }
    }

    /// Expects the next request to be `method path` and answers 404, as for an API or an object
    /// the cluster does not have.
    async fn expect_not_found(&mut self, method: &str, path: &str) -> Seen {
        self.answer(method, path, 404, |_| {
            json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": "the server could not find the requested resource" })
        })
        .await
    }

    async fn answer(&mut self, method: &str, path: &str, code: u16, response: impl FnOnce(&Value) -> Value) -> Seen {
        let (request, send) = tokio::time::timeout(TIMEOUT, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {method} {path}"))
            .unwrap_or_else(|| panic!("the client was dropped before {method} {path}"));
        assert_eq!((request.method().as_str(), request.uri().path()), (method, path));
        let query = request.uri().query().unwrap_or_default().to_owned();
        let bytes = request.into_body().collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        let answer = serde_json::to_vec(&response(&body)).expect("response");
        send.send_response(Response::builder().status(code).body(Body::from(answer)).expect("response"));
        Seen { query, body }
    }

    /// Expects the checks before an apply: each child of `paths` looked up, and found `held_by`
    /// the owner uid (`None`: not there); then each namespace the children land in looked up,
    /// and found the organization acme's (`None`: not there yet).
    async fn expect_checks(&mut self, paths: &[String], held_by: Option<&str>, namespaces: &[(&str, bool)]) {
        for path in paths {
            match held_by {
                Some(owner) => {
                    let owner = owner.to_owned();
                    self.expect("GET", path, move |_| labeled(&[("windflow.io/owner-uid", &owner)])).await;
                }
                None => {
                    self.expect_not_found("GET", path).await;
                }
            }
        }
        for (namespace, exists) in namespaces {
            let path = format!("/api/v1/namespaces/{namespace}");
            if *exists {
                self.expect("GET", &path, |_| labeled(&[("windflow.io/organization", "acme")])).await;
            } else {
                self.expect_not_found("GET", &path).await;
            }
        }
    }

    /// Drops the context, then fails if its client sent anything more.
    async fn finish(self, ctx: Arc<Context>) {
        drop(ctx);
        self.expect_nothing_more().await;
    }

    /// Fails if the client sent anything more, or is still alive once every holder of it is
    /// gone (it could still send something then).
    async fn expect_nothing_more(mut self) {
        match tokio::time::timeout(TIMEOUT, self.0.next_request()).await {
            Ok(None) => {}
            Ok(Some((request, _))) => panic!("unexpected request {} {}", request.method(), request.uri()),
            Err(_) => panic!("a client is still alive"),
        }
    }
}

/// A context whose client talks to the returned mock, with `docs` as index.
fn mocked(pool: PgPool, docs: &[Value]) -> (Arc<Context>, ApiServer) {
    let (ctx, server) = mocked_with(pool, index_of(docs));
    (Arc::new(ctx), server)
}

/// A context on a mocked API server, reading `index`.
fn mocked_with(pool: PgPool, index: Index) -> (Context, ApiServer) {
    // The fake engines listen on loopback, which the default deny list refuses.
    mocked_config(pool, index, Config { probe_deny: vec![], ..Config::default() })
}

/// A context with `config` on a mocked API server, reading `index`.
fn mocked_config(pool: PgPool, index: Index, config: Config) -> (Context, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter { controller: "windflow-operator".into(), instance: Some("test".into()) };
    (Context::new(client, pool, reporter, index, config, Arc::default()), ApiServer(handle))
}

/// Runs one reconcile while `server` plays the API server's part.
async fn reconcile_with<K, L, S>(obj: &Value, ctx: &Arc<Context>, server: S) -> Result<Action, Error>
where
    K: windflow::kinds::Kind,
    L: reconcile::Lifecycle<K>,
    S: Future<Output = ()>,
{
    let obj: Arc<K> = Arc::new(serde_json::from_value(obj.clone()).expect("a valid object"));
    let (result, ()) =
        tokio::time::timeout(TIMEOUT, async { futures::join!(reconcile::reconcile::<K, L>(obj, ctx.clone()), server) })
            .await
            .expect("the reconcile finished");
    result
}

/// The platform of `examples/` mirrored, so that new objects find their parents, and a
/// context on a mocked API server.
async fn scenario() -> (TestDb, Arc<Context>, ApiServer) {
    let db = database().await;
    let docs = converged(&db.pool, &on_the_management_cluster(platform())).await;
    let (ctx, server) = mocked(db.pool.clone(), &docs);
    (db, ctx, server)
}

/// The sample without its workload cluster: the stack's element holds none, so everything runs
/// on the management cluster, which is the mocked API server. (Workload clusters are proven on
/// two real control planes, `tests/e2e/placement.rs`.)
fn on_the_management_cluster(mut docs: Vec<Value>) -> Vec<Value> {
    docs.retain(|doc| !matches!(doc["kind"].as_str(), Some("ContainerCluster" | "ContainerNode")));
    for doc in docs.iter_mut().filter(|doc| doc["kind"] == "VM") {
        if let Some(spec) = doc["spec"].as_object_mut() {
            spec.remove("containerClusterRef");
        }
    }
    docs
}

fn object(kind: &str, name: &str, namespace: Option<&str>, spec: Value) -> Value {
    let mut metadata =
        json!({ "name": name, "uid": uuid::Uuid::new_v4().to_string(), "resourceVersion": "7", "generation": 2 });
    if let Some(namespace) = namespace {
        metadata["namespace"] = namespace.into();
    }
    json!({ "apiVersion": "windflow.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec })
}

fn volume(name: &str, element: &str) -> Value {
    object(
        "Volume",
        name,
        Some("acme"),
        json!({ "elementRef": { "name": element }, "volumeType": "local_ssd", "sizeGb": 5 }),
    )
}

fn with_finalizer(obj: &Value) -> Value {
    let mut obj = obj.clone();
    obj["metadata"]["finalizers"] = json!([FINALIZER]);
    obj
}

fn deleting(obj: &Value) -> Value {
    let mut obj = with_finalizer(obj);
    obj["metadata"]["deletionTimestamp"] = "2026-11-24T10:00:00Z".into();
    obj
}

/// The message of the `Ready` condition a status patch sets, once its status and reason are
/// the ones expected.
fn ready_says(status_patch: &Value, status: &str, reason: &str) -> String {
    let ready = condition(status_patch, "Ready");
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some(status), Some(reason)), "{ready}");
    ready["message"].as_str().unwrap_or_default().to_owned()
}

fn condition<'a>(status_patch: &'a Value, type_: &str) -> &'a Value {
    status_patch["status"]["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("condition {type_} in {status_patch}"))
}

fn assert_server_side_apply(seen: &Seen) {
    assert!(seen.query.contains("fieldManager=windflow-operator"), "{}", seen.query);
    assert!(seen.query.contains("force=true"), "{}", seen.query);
}

async fn row_exists(pool: &PgPool, table: &str, obj: &Value) -> bool {
    let id: uuid::Uuid = obj["metadata"]["uid"].as_str().and_then(|u| u.parse().ok()).expect("uid");
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE id = $1)")))
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("query")
}

async fn audit_actions(pool: &PgPool, obj: &Value) -> Vec<String> {
    let id: uuid::Uuid = obj["metadata"]["uid"].as_str().and_then(|u| u.parse().ok()).expect("uid");
    sqlx::query_scalar("SELECT action FROM audit_logs WHERE resource_id = $1 ORDER BY created_at, id")
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("query")
}

/// A group version the mocked cluster serves: its group, version, and kinds (plural, kind).
type Served = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The kinds the mocked cluster's core v1 serves (plural, kind).
const CORE_V1: &[(&str, &str)] = &[
    ("namespaces", "Namespace"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ("services", "Service"),
    ("resourcequotas", "ResourceQuota"),
    ("limitranges", "LimitRange"),
];

/// The other groups the mocked cluster serves: no third-party API (KubeVirt, CDI, Multus,
/// Cluster API) is installed.
const SERVED_GROUPS: &[Served] = &[
    ("apps", "v1", &[("deployments", "Deployment")]),
    ("networking.k8s.io", "v1", &[("networkpolicies", "NetworkPolicy")]),
    ("windflow.io", "v1alpha1", &[("containernodes", "ContainerNode")]),
];

/// What aggregated discovery answers for `groups` (group, version, and its plurals and kinds).
fn discovery(groups: &[Served]) -> Value {
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, version, kinds)| {
            let resources: Vec<Value> = kinds
                .iter()
                .map(|(plural, kind)| {
                    json!({ "resource": plural, "scope": "Namespaced", "verbs": ["get", "list", "patch", "delete"],
                            "responseKind": { "group": group, "version": version, "kind": kind } })
                })
                .collect();
            json!({ "metadata": { "name": group }, "versions": [{ "version": version, "resources": resources }] })
        })
        .collect();
    json!({ "apiVersion": "apidiscovery.k8s.io/v2", "kind": "APIGroupDiscoveryList", "items": items })
}

/// A metadata-only list of the objects `(namespace, name)`; an empty namespace is none.
fn found(objects: &[(&str, &str)]) -> Value {
    let items: Vec<Value> = objects
        .iter()
        .map(|(namespace, name)| {
            let mut metadata = json!({ "name": name });
            if !namespace.is_empty() {
                metadata["namespace"] = (*namespace).into();
            }
            json!({ "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": metadata })
        })
        .collect();
    json!({ "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items })
}

fn uid(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().expect("uid")
}

/// The list of children by the owner-uid label must select exactly `obj`'s.
fn assert_selects_children_of(seen: &Seen, obj: &Value) {
    assert!(seen.query.contains(&format!("labelSelector=windflow.io%2Fowner-uid%3D{}", uid(obj))), "{}", seen.query);
}

/// An object's metadata as the API server returns it, with `labels`.
fn labeled(labels: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
    json!({ "apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": { "name": "x", "labels": labels } })
}

/// The server's answer to a server-side apply: the object as sent, with `status`.
fn stored_with(status: Value) -> impl FnOnce(&Value) -> Value {
    move |body| {
        let mut stored = body.clone();
        stored["status"] = status;
        stored
    }
}

/// `obj` as it is once an earlier reconcile reported it Ready.
fn already_ready(obj: &Value) -> Value {
    let mut ready = obj.clone();
    ready["status"] = json!({ "conditions": [{ "type": "Ready", "status": "True", "reason": "Provisioned",
        "message": "", "lastTransitionTime": "2026-11-24T10:00:00Z" }] });
    ready
}

fn status_gone() -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200 })
}

#[tokio::test]
async fn volume_claim_is_applied_repaired_pruned_and_deleted_with_the_volume() {
    let (db, ctx, mut server) = scenario().await;
    // New, and mounted by nothing: with no workload cluster to go to, it does not wait.
    let mut volume = volume("scratch", "storage");
    volume["metadata"]["creationTimestamp"] = json!(Timestamp::now().to_string());
    let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/scratch";
    let claims = "/api/v1/namespaces/acme-production/persistentvolumeclaims";

    // First the finalizer, and nothing written before it is in place.
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        let seen = server.expect("PATCH", path, |_| with_finalizer(&volume)).await;
        assert_eq!(seen.body[1], json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }));
    })
    .await
    .expect("finalizer added");
    assert_eq!(action, Action::await_change());
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    // Then the row, the claim by server-side apply, the stale claim of an earlier spec deleted,
    // the status with the claim's phase, and a Normal event for the Ready flip.
    let stored = with_finalizer(&volume);
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&stored, &ctx, async {
        server.expect_discovery().await;
        // The claim's name is free, and the namespace is the tenant's.
        server.expect_checks(&[format!("{claims}/scratch")], None, &[("acme-production", true)]).await;
        let seen = server.expect("PATCH", &format!("{claims}/scratch"), stored_with(json!({ "phase": "Bound" }))).await;
        assert_server_side_apply(&seen);
        assert_eq!(seen.body["spec"]["resources"]["requests"]["storage"], "5G");
        assert_eq!(seen.body["metadata"]["labels"]["windflow.io/owner-uid"], uid(&volume));
        assert_eq!(seen.body["metadata"]["labels"]["windflow.io/environment"], "production");
        // The claim is in the environment's namespace: no owner reference can cross to it.
        assert!(seen.body["metadata"].get("ownerReferences").is_none(), "{}", seen.body);
        let listed = server
            .expect("GET", "/api/v1/persistentvolumeclaims", |_| {
                found(&[("acme-production", "scratch"), ("acme-production", "scratch-before-rename")])
            })
            .await;
        assert_selects_children_of(&listed, &volume);
        server.expect("DELETE", &format!("{claims}/scratch-before-rename"), |_| status_gone()).await;
        let seen = server.expect("PATCH", &format!("{path}/status"), |_| stored.clone()).await;
        assert_server_side_apply(&seen);
        assert_eq!(seen.body["status"]["observedGeneration"], 2);
        assert_eq!(seen.body["status"]["organization"], "acme");
        assert_eq!(seen.body["status"]["mirroredResourceVersion"], "7");
        assert_eq!(seen.body["status"]["phase"], "available", "bound, and mounted by no application");
        assert_eq!(condition(&seen.body, "Ready")["status"], "True");
        assert_eq!(condition(&seen.body, "Ready")["reason"], "Provisioned");
        assert_eq!(condition(&seen.body, "Synced")["reason"], "Mirrored");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!((event.body["type"].as_str(), event.body["reason"].as_str()), (Some("Normal"), Some("Provisioned")));
        assert_eq!(event.body["regarding"]["name"], "scratch");
    })
    .await
    .expect("mirrored and provisioned");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    assert!(row_exists(&db.pool, "volumes", &volume).await);

    // Someone shrank the claim and dropped a label: the next reconcile applies the whole
    // desired claim again, forcing our fields back (the claim is still ours: its owner-uid
    // label says so). Discovery is remembered; Ready does not flip, so no event.
    let ready = already_ready(&stored);
    reconcile_with::<Volume, reconcile::Provision, _>(&ready, &ctx, async {
        let owner = uid(&volume).to_owned();
        server.expect_checks(&[format!("{claims}/scratch")], Some(&owner), &[("acme-production", true)]).await;
        let seen = server
            .expect("PATCH", &format!("{claims}/scratch"), |_| {
                json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": { "name": "scratch", "namespace": "acme-production" },
                        "spec": { "resources": { "requests": { "storage": "1G" } } }, "status": { "phase": "Bound" } })
            })
            .await;
        assert_server_side_apply(&seen);
        assert_eq!(seen.body["spec"]["resources"]["requests"]["storage"], "5G");
        assert_eq!(seen.body["metadata"]["labels"]["windflow.io/owner-uid"], uid(&volume));
        server.expect("GET", "/api/v1/persistentvolumeclaims", |_| found(&[("acme-production", "scratch")])).await;
        let seen = server.expect("PATCH", &format!("{path}/status"), |_| ready.clone()).await;
        assert_eq!(condition(&seen.body, "Ready")["lastTransitionTime"], "2026-11-24T10:00:00Z");
    })
    .await
    .expect("repaired");

    // Deletion (deletionPolicy Delete, the default): the claim, then the row; the audit trail
    // stays; then the finalizer is removed.
    let gone = deleting(&volume);
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&gone, &ctx, async {
        let listed =
            server.expect("GET", "/api/v1/persistentvolumeclaims", |_| found(&[("acme-production", "scratch")])).await;
        assert_selects_children_of(&listed, &volume);
        server.expect("DELETE", &format!("{claims}/scratch"), |_| status_gone()).await;
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        assert_eq!(seen.body[1], json!({ "op": "remove", "path": "/metadata/finalizers/0" }));
    })
    .await
    .expect("cleaned up");
    assert_eq!(action, Action::await_change());
    assert!(!row_exists(&db.pool, "volumes", &volume).await);
    assert_eq!(audit_actions(&db.pool, &volume).await, ["create", "delete"]);

    server.finish(ctx).await;
}

#[tokio::test]
async fn an_orphaned_claim_outlives_its_volume_without_owner_labels() {
    let (_db, ctx, mut server) = scenario().await;
    let mut volume = volume("keep", "storage");
    volume["spec"]["deletionPolicy"] = "Orphan".into();
    let gone = deleting(&volume);

    reconcile_with::<Volume, reconcile::Provision, _>(&gone, &ctx, async {
        server.expect_discovery().await;
        server.expect("GET", "/api/v1/persistentvolumeclaims", |_| found(&[("acme-production", "keep")])).await;
        let path = "/api/v1/namespaces/acme-production/persistentvolumeclaims/keep";
        let seen = server.expect("PATCH", path, |_| found(&[("acme-production", "keep")])["items"][0].clone()).await;
        assert_eq!(seen.body["metadata"]["ownerReferences"], Value::Null);
        let labels = &seen.body["metadata"]["labels"];
        for label in ["windflow.io/owner-uid", "windflow.io/owner-kind", "windflow.io/owner-name"] {
            assert!(labels.get(label).is_some_and(Value::is_null), "{label} removed: {labels}");
        }
        server.expect("PATCH", "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/keep", |_| volume.clone()).await;
    })
    .await
    .expect("orphaned");

    server.finish(ctx).await;
}

fn application(name: &str, deployment_config: Value) -> Value {
    let spec = json!({ "stackRef": { "name": "shop" }, "applicationType": "container",
                       "deploymentConfig": deployment_config });
    with_finalizer(&object("Application", name, Some("acme"), spec))
}

#[tokio::test]
async fn an_application_gets_a_deployment_and_a_service_and_its_stale_children_go() {
    let (db, ctx, mut server) = scenario().await;
    let app = application("worker", json!({ "image": "ghcr.io/acme/worker:1.0", "replicas": 2, "ports": [9090] }));
    let namespace = "/namespaces/acme-production";

    let action = reconcile_with::<Application, reconcile::Provision, _>(&app, &ctx, async {
        server.expect_discovery().await;
        let children =
            [format!("/apis/apps/v1{namespace}/deployments/worker"), format!("/api/v1{namespace}/services/worker")];
        server.expect_checks(&children, None, &[("acme-production", true)]).await;
        // Ready means working: the workload is Available.
        let available = json!({ "conditions": [{ "type": "Available", "status": "True" }] });
        let seen = server
            .expect("PATCH", &format!("/apis/apps/v1{namespace}/deployments/worker"), stored_with(available))
            .await;
        assert_server_side_apply(&seen);
        assert_eq!(seen.body["spec"]["replicas"], 2);
        assert_eq!(seen.body["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/acme/worker:1.0");
        assert_eq!(seen.body["metadata"]["labels"]["windflow.io/owner-kind"], "Application");
        let seen = server.expect("PATCH", &format!("/api/v1{namespace}/services/worker"), stored_with(json!({}))).await;
        assert_eq!(seen.body["spec"]["ports"][0]["port"], 9090);
        let listed =
            server.expect("GET", "/apis/apps/v1/deployments", |_| found(&[("acme-production", "worker")])).await;
        assert_selects_children_of(&listed, &app);
        server
            .expect("GET", "/api/v1/services", |_| {
                found(&[("acme-production", "worker"), ("acme-production", "worker-metrics")])
            })
            .await;
        // Neither KubeVirt nor Multus is installed (discovery said so, once): no VM, no
        // network attachment to look for.
        server.expect("DELETE", &format!("/api/v1{namespace}/services/worker-metrics"), |_| status_gone()).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/applications/worker/status";
        let seen = server.expect("PATCH", path, |_| app.clone()).await;
        let message = ready_says(&seen.body, "True", "Provisioned");
        assert!(message.contains("Deployment acme-production/worker"), "{message}");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("provisioned");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    assert!(row_exists(&db.pool, "applications", &app).await);

    // Scaled by hand to 7: the next reconcile applies 2 again. KubeVirt's absence is
    // remembered for a minute, and Ready does not flip: no discovery, no event.
    let ready = already_ready(&app);
    let children =
        [format!("/apis/apps/v1{namespace}/deployments/worker"), format!("/api/v1{namespace}/services/worker")];
    let owner = uid(&app).to_owned();
    reconcile_with::<Application, reconcile::Provision, _>(&ready, &ctx, async {
        server.expect_checks(&children, Some(&owner), &[("acme-production", true)]).await;
        let deployment = format!("/apis/apps/v1{namespace}/deployments/worker");
        let scaled = json!({ "replicas": 7, "conditions": [{ "type": "Available", "status": "True" }] });
        let seen = server.expect("PATCH", &deployment, stored_with(scaled)).await;
        assert_eq!(seen.body["spec"]["replicas"], 2);
        server.expect("PATCH", &format!("/api/v1{namespace}/services/worker"), stored_with(json!({}))).await;
        server.expect("GET", "/apis/apps/v1/deployments", |_| found(&[("acme-production", "worker")])).await;
        server.expect("GET", "/api/v1/services", |_| found(&[("acme-production", "worker")])).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/applications/worker/status";
        server.expect("PATCH", path, |_| ready.clone()).await;
    })
    .await
    .expect("repaired");

    // A workload that is not Available (a rollout stuck, pods crashing): applied is not
    // working, so Ready turns False, reason Progressing, naming it, with one Warning Event. The
    // workload's watch wakes the object again: no polling meanwhile.
    let action = reconcile_with::<Application, reconcile::Provision, _>(&ready, &ctx, async {
        server.expect_checks(&children, Some(&owner), &[("acme-production", true)]).await;
        let deployment = format!("/apis/apps/v1{namespace}/deployments/worker");
        let stuck =
            json!({ "conditions": [{ "type": "Available", "status": "False", "message": "0/2 replicas ready" }] });
        server.expect("PATCH", &deployment, stored_with(stuck)).await;
        server.expect("PATCH", &format!("/api/v1{namespace}/services/worker"), stored_with(json!({}))).await;
        server.expect("GET", "/apis/apps/v1/deployments", |_| found(&[("acme-production", "worker")])).await;
        server.expect("GET", "/api/v1/services", |_| found(&[("acme-production", "worker")])).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/applications/worker/status";
        let seen = server.expect("PATCH", path, |_| ready.clone()).await;
        let condition = condition(&seen.body, "Ready");
        assert_eq!((condition["status"].as_str(), condition["reason"].as_str()), (Some("False"), Some("Progressing")));
        let message = condition["message"].as_str().unwrap_or_default();
        assert!(message.ends_with("is not Available yet (Available: False): 0/2 replicas ready"), "{message}");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!(
            (event.body["type"].as_str(), event.body["reason"].as_str()),
            (Some("Warning"), Some("Progressing"))
        );
    })
    .await
    .expect("progressing");
    assert_eq!(action, Action::requeue(durations::RESYNC));

    // Deleted with deletionPolicy Orphan: the workload keeps running, no longer WindFlow's.
    let mut orphaning = deleting(&app);
    orphaning["spec"]["deletionPolicy"] = "Orphan".into();
    reconcile_with::<Application, reconcile::Provision, _>(&orphaning, &ctx, async {
        server.expect("GET", "/apis/apps/v1/deployments", |_| found(&[("acme-production", "worker")])).await;
        server.expect("GET", "/api/v1/services", |_| found(&[("acme-production", "worker")])).await;
        for child in
            [format!("/apis/apps/v1{namespace}/deployments/worker"), format!("/api/v1{namespace}/services/worker")]
        {
            let seen =
                server.expect("PATCH", &child, |_| found(&[("acme-production", "worker")])["items"][0].clone()).await;
            assert_eq!(seen.body["metadata"]["ownerReferences"], Value::Null);
            assert!(seen.body["metadata"]["labels"]["windflow.io/owner-uid"].is_null());
        }
        server.expect("PATCH", "/apis/windflow.io/v1alpha1/namespaces/acme/applications/worker", |_| app.clone()).await;
    })
    .await
    .expect("orphaned");
    assert!(!row_exists(&db.pool, "applications", &app).await);

    server.finish(ctx).await;
}

#[tokio::test]
async fn an_application_that_cannot_be_built_is_mirrored_and_applies_nothing() {
    let (_db, ctx, mut server) = scenario().await;
    let app = application("no-image", json!({ "replicas": 1 }));

    let action = reconcile_with::<Application, reconcile::Provision, _>(&app, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/applications/no-image/status";
        let seen = server.expect("PATCH", path, |_| app.clone()).await;
        assert_eq!(condition(&seen.body, "Synced")["status"], "True");
        let message = ready_says(&seen.body, "False", "InvalidSpec");
        assert!(message.contains("spec.deploymentConfig.image"), "{message}");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!(
            (event.body["type"].as_str(), event.body["reason"].as_str()),
            (Some("Warning"), Some("InvalidSpec"))
        );
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::await_change());

    server.finish(ctx).await;
}

#[tokio::test]
async fn a_missing_provider_is_a_condition_naming_it_rechecked_later_and_nothing_is_applied() {
    let (db, ctx, mut server) = scenario().await;
    let spec = json!({ "elementRef": { "name": "compute" }, "osType": "linux", "cpuCores": 2, "memoryGb": 4,
                       "diskGb": 20 });
    let vm = with_finalizer(&object("VM", "batch", Some("acme"), spec));

    let action = reconcile_with::<VM, reconcile::Provision, _>(&vm, &ctx, async {
        // The machine's root disk needs CDI: looked for (discovery) before anything is built.
        server.expect_discovery().await;
        let seen =
            server.expect("PATCH", "/apis/windflow.io/v1alpha1/namespaces/acme/vms/batch/status", |_| vm.clone()).await;
        assert_eq!(condition(&seen.body, "Synced")["status"], "True");
        let message = ready_says(&seen.body, "False", "ProviderNotInstalled");
        assert!(message.contains("CDI") && message.contains("cdi.kubevirt.io/v1beta1 DataVolume"), "{message}");
        // A fault users must fix: its seed status says `error` too, for SQL users.
        assert_eq!(seen.body["status"]["phase"], "error");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!(event.body["reason"], "ProviderNotInstalled");
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::requeue(durations::PROVIDER_RECHECK));
    assert!(row_exists(&db.pool, "vms", &vm).await, "the mirror does not wait for the provider");

    server.finish(ctx).await;
}

#[tokio::test]
async fn an_environment_gets_its_namespace_quota_limits_and_default_deny_and_takes_them_along() {
    let (db, ctx, mut server) = scenario().await;
    let spec = json!({ "environmentType": "testing", "resourceLimits": { "cpu": "2", "pods": 20 } });
    let environment = with_finalizer(&object("Environment", "qa", Some("acme"), spec));
    let children = [
        ("/api/v1", "namespaces", None, "acme-qa"),
        ("/api/v1", "resourcequotas", Some("acme-qa"), "windflow"),
        ("/api/v1", "limitranges", Some("acme-qa"), "windflow"),
        ("/apis/networking.k8s.io/v1", "networkpolicies", Some("acme-qa"), "windflow-default-deny"),
    ];
    let path_of = |(base, plural, namespace, name): (&str, &str, Option<&str>, &str)| match namespace {
        Some(namespace) => format!("{base}/namespaces/{namespace}/{plural}/{name}"),
        None => format!("{base}/{plural}/{name}"),
    };

    reconcile_with::<Environment, reconcile::Provision, _>(&environment, &ctx, async {
        server.expect_discovery().await;
        // The namespace is not there yet: what goes in it is not looked for (the namespace it
        // creates holds nothing), nor is the namespace looked up again as the tenant's.
        server.expect_checks(&[path_of(children[0])], None, &[]).await;
        let mut applied = vec![];
        for child in children {
            let seen = server.expect("PATCH", &path_of(child), stored_with(json!({}))).await;
            assert_server_side_apply(&seen);
            applied.push(seen.body);
        }
        assert_eq!(applied[0]["metadata"]["labels"]["windflow.io/organization"], "acme");
        assert_eq!(applied[1]["spec"]["hard"], json!({ "limits.cpu": "2", "pods": "20" }));
        assert_eq!(applied[3]["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        for (base, plural, namespace, name) in children {
            let listed = server
                .expect("GET", &format!("{base}/{plural}"), |_| found(&[(namespace.unwrap_or_default(), name)]))
                .await;
            assert_selects_children_of(&listed, &environment);
        }
        let seen = server
            .expect("PATCH", "/apis/windflow.io/v1alpha1/namespaces/acme/environments/qa/status", |_| {
                environment.clone()
            })
            .await;
        assert_eq!(condition(&seen.body, "Ready")["reason"], "Provisioned");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("provisioned");

    // Deleting the environment deletes what it provisioned, namespace included.
    reconcile_with::<Environment, reconcile::Provision, _>(&deleting(&environment), &ctx, async {
        // Every child is found first, then deleted.
        for (base, plural, namespace, name) in children {
            server
                .expect("GET", &format!("{base}/{plural}"), |_| found(&[(namespace.unwrap_or_default(), name)]))
                .await;
        }
        for child in children {
            server.expect("DELETE", &path_of(child), |_| status_gone()).await;
        }
        server
            .expect("PATCH", "/apis/windflow.io/v1alpha1/namespaces/acme/environments/qa", |_| environment.clone())
            .await;
    })
    .await
    .expect("cleaned up");
    assert!(!row_exists(&db.pool, "environments", &environment).await);

    server.finish(ctx).await;
}

/// A child lands only in a namespace of its own organization. The namespaces WindFlow made are
/// read from their cache, without a request: here the cache holds `acme-production` as
/// another organization's (two tenants may spell an environment namespace alike).
#[tokio::test]
async fn a_child_never_lands_in_another_tenants_namespace_as_the_namespace_cache_says() {
    use kube::runtime::watcher::Event;
    let (_db, ctx, mut server) = scenario().await;
    let children = ctx.clusters.management().children();
    let mut writer = children.writer(windflow::provision::types::NAMESPACE);
    let theirs: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": "acme-production", "labels": {
            "windflow.io/owner-kind": "Environment", "windflow.io/owner-name": "production",
            "windflow.io/owner-namespace": "globex", "windflow.io/owner-uid": "theirs",
            "windflow.io/organization": "globex" } } }))
    .expect("a namespace");
    for event in [Event::Init, Event::InitApply(theirs), Event::InitDone] {
        children.record(windflow::provision::types::NAMESPACE, &mut writer, &event);
    }
    let volume = with_finalizer(&volume("scratch", "storage"));
    let claim = "/api/v1/namespaces/acme-production/persistentvolumeclaims/scratch";

    reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        server.expect_discovery().await;
        // The claim's name is free; the namespace is not looked up: its cache answers.
        server.expect_checks(&[claim.to_owned()], None, &[]).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/scratch/status";
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        let message = ready_says(&seen.body, "False", "NamespaceConflict");
        assert!(message.starts_with("Namespace acme-production exists and is not this object's"), "{message}");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("a condition, not an error");

    server.finish(ctx).await;
}

/// A name held by someone else is never taken over by forced apply: the object says who holds
/// it and nothing is applied, until the holder frees it or an administrator hands it over.
#[tokio::test]
async fn a_namespace_held_by_another_is_a_conflict_naming_it_until_handed_over() {
    let (_db, ctx, mut server) = scenario().await;
    let environment =
        with_finalizer(&object("Environment", "qa", Some("acme"), json!({ "environmentType": "testing" })));
    let status = "/apis/windflow.io/v1alpha1/namespaces/acme/environments/qa/status";
    // `acme-qa` is also organization `acme-q`'s environment `a`: held by that Environment.
    let held = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "acme-qa", "labels": {
        "windflow.io/owner-uid": "someone-else", "windflow.io/owner-kind": "Environment",
        "windflow.io/owner-name": "a", "windflow.io/owner-namespace": "acme-q" } } });

    let action = reconcile_with::<Environment, reconcile::Provision, _>(&environment, &ctx, async {
        server.expect_discovery().await;
        let held = held.clone();
        server.expect("GET", "/api/v1/namespaces/acme-qa", move |_| held).await;
        let seen = server.expect("PATCH", status, |_| environment.clone()).await;
        let message = ready_says(&seen.body, "False", "NamespaceConflict");
        assert!(
            message.starts_with("Namespace acme-qa exists and is not this object's (held by Environment acme-q/a)"),
            "{message}"
        );
        assert!(message.contains("windflow.io/adopt=Environment/acme/qa"), "{message}");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::requeue(durations::PROVIDER_RECHECK));

    // An administrator hands it over: the namespace is applied, then the rest.
    let mut handed = held.clone();
    handed["metadata"]["annotations"] = json!({ "windflow.io/adopt": "Environment/acme/qa" });
    reconcile_with::<Environment, reconcile::Provision, _>(&environment, &ctx, async {
        server.expect("GET", "/api/v1/namespaces/acme-qa", move |_| handed).await;
        for path in [
            "/api/v1/namespaces/acme-qa/limitranges/windflow",
            "/apis/networking.k8s.io/v1/namespaces/acme-qa/networkpolicies/windflow-default-deny",
        ] {
            server.expect_not_found("GET", path).await;
        }
        // The namespace is applied as this Environment's, labelled with its organization: it
        // is not looked up again as the tenant's.
        let seen = server.expect("PATCH", "/api/v1/namespaces/acme-qa", stored_with(json!({}))).await;
        assert_eq!(seen.body["metadata"]["labels"]["windflow.io/owner-uid"], uid(&environment));
        server.expect("PATCH", "/api/v1/namespaces/acme-qa/limitranges/windflow", stored_with(json!({}))).await;
        let policy = "/apis/networking.k8s.io/v1/namespaces/acme-qa/networkpolicies/windflow-default-deny";
        server.expect("PATCH", policy, stored_with(json!({}))).await;
        for list in [
            "/api/v1/namespaces",
            "/api/v1/resourcequotas",
            "/api/v1/limitranges",
            "/apis/networking.k8s.io/v1/networkpolicies",
        ] {
            server.expect("GET", list, |_| found(&[])).await;
        }
        let seen = server.expect("PATCH", status, |_| environment.clone()).await;
        assert_eq!(condition(&seen.body, "Ready")["reason"], "Provisioned");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("provisioned once handed over");
    server.finish(ctx).await;
}

#[tokio::test]
async fn cluster_scoped_user_reads_its_password_secret_and_reports_in_the_default_namespace() {
    let (db, ctx, mut server) = scenario().await;
    let spec = json!({
        "email": "carol@acme.example",
        "passwordSecretRef": { "namespace": "windflow-users", "name": "carol-login", "key": "hash" },
    });
    let user = with_finalizer(&object("User", "carol", None, spec));
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let secret = serde_json::to_value(Secret {
        metadata: ObjectMeta {
            name: Some("carol-login".into()),
            namespace: Some("windflow-users".into()),
            ..Default::default()
        },
        data: Some([("hash".to_owned(), ByteString(hash.into()))].into()),
        ..Default::default()
    })
    .expect("a Secret");

    let action = reconcile_with::<User, reconcile::Provision, _>(&user, &ctx, async {
        server.expect("GET", "/api/v1/namespaces/windflow-users/secrets/carol-login", |_| secret.clone()).await;
        let seen = server.expect("PATCH", "/apis/windflow.io/v1alpha1/users/carol/status", |_| user.clone()).await;
        assert_server_side_apply(&seen);
        assert_eq!(condition(&seen.body, "Ready")["status"], "True");
        assert_eq!(seen.body["status"]["observedGeneration"], 2);
        // Its row made is told by the audit trail, not by an Event: nothing more is sent.
    })
    .await
    .expect("mirrored");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    let stored: String = sqlx::query_scalar("SELECT hashed_password FROM users WHERE email = 'carol@acme.example'")
        .fetch_one(&db.pool)
        .await
        .expect("the user row");
    assert_eq!(stored, hash);
    let audited = || async {
        sqlx::query_scalar::<_, Value>(
            "SELECT jsonb_agg(changes -> 'row' -> 'hashed_password') FROM audit_logs WHERE resource_name = 'carol'",
        )
        .fetch_one(&db.pool)
        .await
        .expect("the audit rows")
    };
    // The column grant hides the hash from tenants; the audit trail does not copy it.
    assert_eq!(audited().await, json!(["changed"]));

    // A tenant's Secret is never read for a User: refused before any request, naming the field.
    let mut elsewhere = user.clone();
    elsewhere["spec"]["passwordSecretRef"]["namespace"] = "acme".into();
    reconcile_with::<User, reconcile::Provision, _>(&elsewhere, &ctx, async {
        let seen = server.expect("PATCH", "/apis/windflow.io/v1alpha1/users/carol/status", |_| user.clone()).await;
        let message = ready_says(&seen.body, "False", "InvalidSpec");
        assert!(message.starts_with("spec.passwordSecretRef.namespace: \"acme\""), "{message}");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/default/events", Clone::clone).await;
        assert_eq!(event.body["regarding"]["kind"], "User");
    })
    .await
    .expect("a condition");

    let gone = deleting(&user);
    reconcile_with::<User, reconcile::Provision, _>(&gone, &ctx, async {
        server.expect("PATCH", "/apis/windflow.io/v1alpha1/users/carol", |_| user.clone()).await;
    })
    .await
    .expect("cleaned up");
    assert!(!row_exists(&db.pool, "users", &user).await);
    assert_eq!(audited().await, json!(["changed", "changed"]), "nor does its delete");

    server.finish(ctx).await;
}

#[tokio::test]
async fn a_missing_parent_is_silent_while_new_then_a_condition_not_yet_a_warning() {
    let (db, ctx, mut server) = scenario().await;
    let volume = with_finalizer(&volume("orphan", "not-yet"));

    // Just created: what it references may be created in a moment, so nothing is reported
    // (the mock refuses any request) until the arrival grace is over.
    let mut new = volume.clone();
    new["metadata"]["creationTimestamp"] = json!(Timestamp::now().to_string());
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&new, &ctx, async {}).await.expect("silent");
    // Looked at again when the grace is over (or when a row is written in its namespace).
    assert!(![Action::await_change(), Action::requeue(durations::WAITING)].contains(&action), "{action:?}");
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    // Older than the grace (or of unknown age): it says what it waits for.
    let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/orphan/status";
    let written = std::sync::Mutex::new(Value::Null);
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        let message = ready_says(&seen.body, "False", "WaitingForDependency");
        assert!(message.contains("not-yet"), "{message}");
        *written.lock().expect("written") = seen.body["status"].clone();
        // A new object waiting is under way, as Argo CD's health check says: no Warning (the
        // mock refuses any request not expected).
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::requeue(durations::WAITING));
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    // What it waits for is said otherwise (here: its status says it waited for something
    // else): that waits until it has stood `Pace::INTERVAL` (the mock refuses any request),
    // and is written then.
    let mut waited = volume.clone();
    waited["status"] = written.lock().expect("written").clone();
    for condition in waited["status"]["conditions"].as_array_mut().into_iter().flatten() {
        if condition["type"] == "Ready" {
            condition["message"] = json!("waiting for something else");
        }
    }
    for _ in 0..2 {
        let action = reconcile_with::<Volume, reconcile::Provision, _>(&waited, &ctx, async {}).await.expect("paced");
        assert!(![Action::await_change(), Action::requeue(durations::WAITING)].contains(&action), "{action:?}");
    }
    tokio::time::sleep(windflow::reconcile::status::Pace::INTERVAL).await;
    reconcile_with::<Volume, reconcile::Provision, _>(&waited, &ctx, async {
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        assert!(ready_says(&seen.body, "False", "WaitingForDependency").contains("not-yet"));
    })
    .await
    .expect("written once the interval passed");

    server.finish(ctx).await;
}

/// A GitOps sync creates a Volume before the Applications that mount it: while new, a Volume
/// nothing mounts, in a namespace with a workload cluster, says it waits for them, without an
/// Event, and makes no claim on the management cluster that would move moments later.
/// (Older, or with no workload cluster to go to, it makes its claim there: the test above.)
#[tokio::test]
async fn a_new_volume_nothing_mounts_waits_for_its_workloads_before_making_its_claim() {
    // The sample whole: its ContainerCluster could have the Volume.
    let db = database().await;
    let docs = converged(&db.pool, &platform()).await;
    let (ctx, mut server) = mocked(db.pool.clone(), &docs);
    let mut volume = with_finalizer(&volume("scratch", "storage"));
    volume["metadata"]["creationTimestamp"] = json!(Timestamp::now().to_string());

    // The mock refuses any request not expected: no discovery, no claim, no Event.
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/scratch/status";
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        let message = ready_says(&seen.body, "False", "WaitingForDependency");
        assert!(message.contains("nothing placed uses it yet"), "{message}");
        assert_eq!(seen.body["status"]["mirroredResourceVersion"], "7", "its row is written: what mounts it goes on");
        assert!(seen.body["status"].get("placement").is_none(), "placed nowhere yet: {}", seen.body);
    })
    .await
    .expect("waiting");
    // Looked at again when the grace is over, or when something that mounts it arrives.
    let fallbacks = [Action::await_change(), Action::requeue(durations::WAITING), Action::requeue(durations::RESYNC)];
    assert!(!fallbacks.contains(&action), "{action:?}");
    assert!(row_exists(&db.pool, "volumes", &volume).await);

    server.finish(ctx).await;
}

#[tokio::test]
async fn a_new_object_early_for_a_parent_on_its_way_sends_nothing() {
    let db = database().await;
    let mut docs = converged(&db.pool, &on_the_management_cluster(platform())).await;
    // An Element applied with the Volume, not mirrored yet: it has reported nothing.
    docs.push(object(
        "Element",
        "disks",
        Some("acme"),
        json!({ "environmentRef": { "name": "production" }, "elementType": "volume" }),
    ));
    let (ctx, mut server) = mocked(db.pool.clone(), &docs);
    let volume = with_finalizer(&volume("scratch", "disks"));

    // No status, no Event: the Element's row wakes it; the requeue is the fallback.
    let action = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {}).await.expect("early");
    assert_eq!(action, Action::requeue(durations::WAITING));
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    // Once it has reported, it says what it waits for (and warns, having reported otherwise).
    let mut reported = volume.clone();
    let mirrored = |type_: &str| {
        json!({ "type": type_, "status": "True", "reason": "Mirrored", "message": "",
                "lastTransitionTime": "2026-12-05T10:00:00Z" })
    };
    reported["status"] = json!({ "conditions": [mirrored("Synced"), mirrored("Ready")] });
    reconcile_with::<Volume, reconcile::Provision, _>(&reported, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/scratch/status";
        let seen = server.expect("PATCH", path, |_| reported.clone()).await;
        ready_says(&seen.body, "False", "WaitingForDependency");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("a condition");

    server.finish(ctx).await;
}

#[tokio::test]
async fn an_unreachable_database_is_reported_and_retried_with_growing_backoff() {
    // A port nobody listens on; a short acquire timeout keeps the test quick.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://windflow@127.0.0.1:9/windflow")
        .expect("a lazy pool");
    // The caches know the platform as mirrored; the database is what fails.
    let docs: Vec<Value> = platform().iter().map(as_mirrored).collect();
    let (ctx, mut server) = mocked(pool, &docs);
    let volume = with_finalizer(&volume("data", "storage"));

    let result = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/data/status";
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        assert_eq!(condition(&seen.body, "Ready")["reason"], "DatabaseUnavailable");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await;
    let error = result.expect_err("a transient fault is an error, for the backoff");
    assert_eq!(error.category(), "database");

    let obj: Arc<Volume> = Arc::new(serde_json::from_value(volume).expect("a volume"));
    let delays: Vec<Action> = (0..3).map(|_| reconcile::error_policy(obj.clone(), &error, ctx.clone())).collect();
    let expected: Vec<Action> = [2, 4, 8].map(|s| Action::requeue(Duration::from_secs(s))).into();
    assert_eq!(delays, expected);

    drop((ctx, obj));
    server.expect_nothing_more().await;
}

#[tokio::test]
async fn a_swarm_is_health_checked_and_its_nodes_reported_as_container_nodes() {
    let (_db, ctx, mut server) = scenario().await;
    let engine = serve(swarm_engine()).await;
    let spec = json!({ "elementRef": { "name": "k8s" }, "clusterMode": "swarm", "endpoint": { "url": engine } });
    let cluster = with_finalizer(&object("ContainerCluster", "edge", Some("acme"), spec));
    let nodes = "/apis/windflow.io/v1alpha1/namespaces/acme/containernodes";

    let action = reconcile_with::<ContainerCluster, reconcile::Provision, _>(&cluster, &ctx, async {
        server.expect_discovery().await;
        let paths = [format!("{nodes}/edge-manager-1"), format!("{nodes}/edge-worker-1")];
        server.expect_checks(&paths, None, &[("acme", true)]).await;
        for (node, phase) in [("edge-manager-1", "ready"), ("edge-worker-1", "not_ready")] {
            let seen = server.expect("PATCH", &format!("{nodes}/{node}"), Clone::clone).await;
            assert_server_side_apply(&seen);
            assert_eq!(seen.body["spec"]["clusterRef"]["name"], "edge");
            assert_eq!(seen.body["metadata"]["ownerReferences"][0]["uid"], uid(&cluster));
            assert!(seen.body.get("status").is_none(), "the status goes to its subresource");
            let seen = server.expect("PATCH", &format!("{nodes}/{node}/status"), Clone::clone).await;
            assert_server_side_apply(&seen);
            assert_eq!(seen.body["status"]["phase"], phase);
        }
        // Cluster API is not installed (discovery said so): a swarm has no Cluster to look for.
        let listed = server
            .expect("GET", "/apis/windflow.io/v1alpha1/containernodes", |_| {
                found(&[("acme", "edge-manager-1"), ("acme", "edge-worker-1"), ("acme", "edge-retired")])
            })
            .await;
        assert_selects_children_of(&listed, &cluster);
        server.expect("DELETE", &format!("{nodes}/edge-retired"), |_| status_gone()).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/containerclusters/edge/status";
        let seen = server.expect("PATCH", path, |_| cluster.clone()).await;
        assert_eq!(
            (seen.body["status"]["phase"].as_str(), seen.body["status"]["nodeCount"].as_u64()),
            (Some("degraded"), Some(2))
        );
        let ready = condition(&seen.body, "Ready");
        assert!(ready["message"].as_str().is_some_and(|m| m.starts_with("Docker 27.3.1, 1/2 nodes ready")), "{ready}");
        // A cluster not yet healthy the first time it is seen: no Event until it has been
        // Ready (a cluster that was, and loses a node, gets its Warning).
        assert_eq!(ready["reason"], "Progressing");
    })
    .await
    .expect("health-checked");
    assert_eq!(action, Action::requeue(durations::HEALTH_CHECK));

    server.finish(ctx).await;
}

#[tokio::test]
async fn an_engine_that_does_not_answer_makes_the_cluster_unhealthy_and_touches_nothing() {
    let (_db, ctx, mut server) = scenario().await;
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port").local_addr().expect("addr").port();
    let spec = json!({ "elementRef": { "name": "k8s" }, "clusterMode": "docker",
                       "endpoint": { "url": format!("http://127.0.0.1:{port}") } });
    let cluster = with_finalizer(&object("ContainerCluster", "gone", Some("acme"), spec));

    let action = reconcile_with::<ContainerCluster, reconcile::Provision, _>(&cluster, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/containerclusters/gone/status";
        let seen = server.expect("PATCH", path, |_| cluster.clone()).await;
        assert_eq!(seen.body["status"]["phase"], "unhealthy");
        ready_says(&seen.body, "False", "Unreachable");
        server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::requeue(durations::WAITING));

    server.finish(ctx).await;
}

#[tokio::test]
async fn readyz_tells_leader_from_standby_and_needs_the_database_and_metrics_follow() {
    use axum::extract::State;
    use windflow::operator::{Health, metrics, readyz};

    let unreachable = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(300))
        .connect_lazy("postgres://windflow@127.0.0.1:9/windflow")
        .expect("a lazy pool");
    let (ctx, server) = mocked(unreachable, &platform());
    let (status, body) = readyz(State(Arc::new(Health::new(ctx.clone())))).await;
    assert_eq!(status, http::StatusCode::SERVICE_UNAVAILABLE, "{body}");
    server.finish(ctx).await;

    let (_db, ctx, server) = scenario().await;
    let health = Arc::new(Health::new(ctx.clone()));
    let (status, body) = readyz(State(health.clone())).await;
    assert_eq!(status, http::StatusCode::OK);
    assert!(body.starts_with("standby"), "{body}");
    health.became_leader(true);
    let (status, body) = readyz(State(health.clone())).await;
    assert_eq!((status, body.as_str()), (http::StatusCode::OK, "leader: watches synced; database reachable"));

    let response = axum::response::IntoResponse::into_response(metrics(State(health.clone())).await);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("windflow_leader 1"), "{text}");
    assert!(text.contains("windflow_database_connections{state=\"idle\"}"), "{text}");
    drop(health);
    server.finish(ctx).await;
}

#[tokio::test]
async fn caches_that_never_list_are_a_clear_retried_error_not_a_hung_reconcile() {
    use kube::runtime::reflector::store;
    let db = database().await;
    let docs = converged(&db.pool, &platform()).await;
    // A store whose writer never sees a list: as when a CRD is missing.
    let (organizations, _writer) = store();
    let index = Index { organization: organizations, ..index_of(&docs) };
    let (ctx, mut server) = mocked_with(db.pool.clone(), index);
    let ctx = Arc::new(ctx.with_cache_wait(Duration::from_millis(200)));
    let volume = with_finalizer(&volume("waiting", "storage"));

    let result = reconcile_with::<Volume, reconcile::Provision, _>(&volume, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/waiting/status";
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        // Nothing can be dereferenced, so nothing is mirrored, and the status says why.
        for type_ in ["Synced", "Ready"] {
            let found = condition(&seen.body, type_);
            assert_eq!((found["status"].as_str(), found["reason"].as_str()), (Some("False"), Some("CachesNotSynced")));
            assert!(found["message"].as_str().is_some_and(|m| m.contains("is every CRD installed")), "{found}");
        }
        // Waited for, on a new object: no Warning (the operator's log and /readyz name the CRD).
    })
    .await;
    assert_eq!(result.expect_err("retried with backoff").category(), "not_synced");
    server.finish(ctx).await;
}

/// The sample platform mirrored, with stack shop `deployed` (its applications Ready, a rollout
/// done before), and `extra` objects (Deployments) in the index of a context on a mocked API
/// server.
async fn rollout_scenario(extra: &[Value]) -> (TestDb, Vec<Value>) {
    let db = database().await;
    let mut docs = converged(&db.pool, &on_the_management_cluster(platform())).await;
    for doc in docs.iter_mut().filter(|d| d["kind"] == "Stack") {
        doc["status"]["phase"] = json!("deployed");
        doc["status"]["lastDeployedAt"] = json!("2026-11-20T10:00:00Z");
    }
    for doc in docs.iter_mut().filter(|d| d["kind"] == "Application") {
        doc["status"]["observedGeneration"] = doc["metadata"]["generation"].clone();
        doc["status"]["conditions"] = json!([{ "type": "Ready", "status": "True", "reason": "Provisioned",
            "message": "", "lastTransitionTime": "2026-11-20T10:00:00Z" }]);
    }
    docs.extend(extra.iter().cloned());
    (db, docs)
}

fn index_of(docs: &[Value]) -> Index {
    Index::from_documents(docs)
}

fn rollout(name: &str, strategy: &str) -> Value {
    with_finalizer(&object(
        "Deployment",
        name,
        Some("acme"),
        json!({ "stackRef": { "name": "shop" }, "applicationRef": { "name": "storefront" },
                "deploymentType": strategy, "triggeredBy": "alice", "deploymentVersion": "1.4.2",
                "deploymentConfig": { "maxSurge": 1, "maxUnavailable": 0 } }),
    ))
}

const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/acme/events";

/// What one reconcile of Application storefront sent: its workloads, Service and status.
struct Applied {
    workloads: Vec<Value>,
    service: Value,
    status: Value,
}

/// Reconciles Application storefront of `docs` (the index, with the rollouts in it) on a
/// fresh mocked API server that expects the apply of `workloads`, in order, and its Service.
async fn storefront_applied(pool: &PgPool, docs: &[Value], workloads: &[&str]) -> Applied {
    let (ctx, mut server) = mocked_with(pool.clone(), index_of(docs));
    let ctx = Arc::new(ctx);
    // Not Ready yet as the object shows it (the index may say otherwise). Its workloads are
    // applied, not Available: Ready=False, Progressing, and no Event (a new object's work under
    // way is no warning).
    let mut storefront = with_finalizer(find(docs, "Application", "storefront"));
    storefront["status"]["conditions"] = json!([]);
    let mut applied = Applied { workloads: vec![], service: Value::Null, status: Value::Null };
    reconcile_with::<Application, reconcile::Provision, _>(&storefront, &ctx, async {
        server.expect_discovery().await;
        let mut paths: Vec<String> = workloads
            .iter()
            .map(|name| format!("/apis/apps/v1/namespaces/acme-production/deployments/{name}"))
            .collect();
        paths.push("/api/v1/namespaces/acme-production/services/storefront".into());
        server.expect_checks(&paths, None, &[("acme-production", true)]).await;
        for name in workloads {
            let path = format!("/apis/apps/v1/namespaces/acme-production/deployments/{name}");
            applied.workloads.push(server.expect("PATCH", &path, stored_with(json!({}))).await.body);
        }
        let service = "/api/v1/namespaces/acme-production/services/storefront";
        applied.service = server.expect("PATCH", service, stored_with(json!({}))).await.body;
        server.expect("GET", "/apis/apps/v1/deployments", |_| found(&[("acme-production", "storefront")])).await;
        server.expect("GET", "/api/v1/services", |_| found(&[("acme-production", "storefront")])).await;
        let status = "/apis/windflow.io/v1alpha1/namespaces/acme/applications/storefront/status";
        applied.status = server.expect("PATCH", status, |_| storefront.clone()).await.body;
        let ready = condition(&applied.status, "Ready");
        assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("Progressing")));
    })
    .await
    .expect("applied");
    server.finish(ctx).await;
    applied
}

/// Expects the Kubernetes Events of `reasons`, in order, each named after the deployment.
async fn expect_events(server: &mut ApiServer, deployment: &str, reasons: &[&str]) {
    for reason in reasons {
        let seen = server.expect("POST", EVENTS, Clone::clone).await;
        assert_eq!(seen.body["reason"], *reason);
        assert_eq!(seen.body["regarding"]["name"], deployment);
        assert_eq!(seen.body["reportingController"], "windflow-operator");
        let name = seen.body["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with(&format!("{deployment}.")) && name.len() == deployment.len() + 33, "{name}");
    }
}

/// The apps/v1 Deployment `name` at `revision` with every one of `replicas` ready.
fn workload_ready(name: &str, revision: &str, replicas: i64) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "acme-production", "generation": 3 },
        "spec": { "replicas": replicas, "selector": {}, "template": { "metadata": { "labels": { "windflow.io/revision": revision } } } },
        "status": { "observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas } })
}

async fn event_rows(pool: &PgPool, deployment: &Value) -> Vec<(String, bool)> {
    let id: uuid::Uuid = uid(deployment).parse().expect("uid");
    sqlx::query_as("SELECT event_type, published_at IS NOT NULL FROM deployment_events WHERE deployment_id = $1 ORDER BY occurred_at")
        .bind(id)
        .fetch_all(pool)
        .await
        .expect("events")
}

#[tokio::test]
async fn a_rolling_rollout_records_each_step_once_and_publishes_it_once_across_a_restart() {
    let deployment = rollout("shop-2", "rolling");
    let (db, docs) = rollout_scenario(&[]).await;
    let (ctx, mut server) = mocked_with(db.pool.clone(), index_of(&docs));
    let ctx = Arc::new(ctx);
    let status_path = "/apis/windflow.io/v1alpha1/namespaces/acme/deployments/shop-2/status";

    // Admitted and started: three steps, their Events, the status; no workload is read yet.
    let mut reported = Value::Null;
    let action = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&deployment, &ctx, async {
        expect_events(&mut server, "shop-2", &["Created", "Started", "ApplicationApplied"]).await;
        let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
        reported = seen.body["status"].clone();
    })
    .await
    .expect("started");
    assert_eq!(action, Action::requeue(windflow::deploy::POLL));
    assert_eq!(reported["phase"], "running");
    assert_eq!(reported["applications"][0]["stage"], "Progressing");
    assert_eq!(reported["conditions"][1]["reason"], "Progressing");
    let revision = reported["applications"][0]["revision"].as_str().expect("revision").to_owned();
    assert_eq!(event_rows(&db.pool, &deployment).await.len(), 3);

    // The Application controller rolls storefront to that revision with the rollout's surge.
    let mut running = deployment.clone();
    running["status"] = reported.clone();
    let mut docs = docs;
    docs.push(running.clone());
    let applied = storefront_applied(&db.pool, &docs, &["storefront"]).await;
    let workload = &applied.workloads[0];
    assert_eq!(workload["spec"]["template"]["metadata"]["labels"]["windflow.io/revision"], revision.as_str());
    assert_eq!(workload["spec"]["strategy"]["rollingUpdate"], json!({ "maxSurge": 1, "maxUnavailable": 0 }));
    assert_eq!(applied.status["status"]["deploymentStatus"], "deploying");

    // Every replica ready: health check passed and completed are recorded; the API server
    // fails the second Event, so the reconcile fails with both steps recorded.
    let error = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&running, &ctx, async {
        server
            .expect("GET", "/apis/apps/v1/namespaces/acme-production/deployments/storefront", |_| {
                workload_ready("storefront", &revision, 3)
            })
            .await;
        expect_events(&mut server, "shop-2", &["HealthCheckPassed"]).await;
        server
            .answer("POST", EVENTS, 500, |_| {
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "message": "etcd timeout" })
            })
            .await;
        // The fault is reported, with the rollout's fields as they were.
        let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
        assert_eq!(condition(&seen.body, "Ready")["reason"], "ProviderUnavailable");
        server.expect("POST", EVENTS, Clone::clone).await;
    })
    .await
    .expect_err("the Event failed");
    assert!(error.to_string().contains("etcd timeout"), "{error}");
    let rows = event_rows(&db.pool, &deployment).await;
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4], ("deployment.completed".to_owned(), false));
    server.finish(ctx).await;

    // A restart: a new context, the object still showing running. Nothing is recorded again;
    // the unpublished Event is created (the API server already has it: 409, which is done).
    let (ctx, mut server) = mocked_with(db.pool.clone(), index_of(&docs));
    let ctx = Arc::new(ctx);
    let action = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&running, &ctx, async {
        let seen = server
            .answer("POST", EVENTS, 409, |_| {
                json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409 })
            })
            .await;
        assert_eq!(seen.body["reason"], "Completed");
        let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
        assert_eq!(seen.body["status"]["phase"], "completed");
        assert!(seen.body["status"]["completedAt"].is_string());
        assert_eq!(condition(&seen.body, "Ready")["status"], "True");
    })
    .await
    .expect("completed");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    assert!(event_rows(&db.pool, &deployment).await.iter().all(|(_, published)| *published));

    // And once more: nothing to record, nothing to publish.
    reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&running, &ctx, async {
        server.expect("PATCH", status_path, |_| deployment.clone()).await;
    })
    .await
    .expect("settled");
    assert_eq!(event_rows(&db.pool, &deployment).await.len(), 5);
    server.finish(ctx).await;
}

#[tokio::test]
async fn a_blue_green_rollout_previews_switches_the_service_then_completes() {
    let deployment = rollout("shop-3", "blue_green");
    let (db, mut docs) = rollout_scenario(&[]).await;
    // Storefront runs 1.4.1, released by an earlier Deployment; its spec now asks for 1.4.2.
    for doc in docs.iter_mut().filter(|d| d["kind"] == "Application" && d["metadata"]["name"] == "storefront") {
        let mut released = doc["spec"]["deploymentConfig"].clone();
        released["image"] = "ghcr.io/acme/storefront:1.4.1".into();
        doc["status"]["release"] = json!({ "deployment": "shop-1", "revision": "0a0a0a0a0a0a", "config": released,
                                           "deployedAt": "2026-11-20T10:00:00Z" });
    }
    let (ctx, mut server) = mocked_with(db.pool.clone(), index_of(&docs));
    let ctx = Arc::new(ctx);
    let status_path = "/apis/windflow.io/v1alpha1/namespaces/acme/deployments/shop-3/status";
    let mut reported = Value::Null;
    reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&deployment, &ctx, async {
        expect_events(&mut server, "shop-3", &["Created", "Started", "ApplicationApplied"]).await;
        reported = server.expect("PATCH", status_path, |_| deployment.clone()).await.body["status"].clone();
    })
    .await
    .expect("started");
    assert_eq!(reported["applications"][0]["stage"], "Preview");
    let revision = reported["applications"][0]["revision"].as_str().expect("revision").to_owned();

    // The Application controller starts the preview beside the live workload; the Service
    // keeps serving the live revision.
    let mut previewing = deployment.clone();
    previewing["status"] = reported;
    docs.push(previewing.clone());
    let applied = storefront_applied(&db.pool, &docs, &["storefront", "storefront-preview"]).await;
    let (live, preview) = (&applied.workloads[0], &applied.workloads[1]);
    let live_revision = live["spec"]["template"]["metadata"]["labels"]["windflow.io/revision"].clone();
    assert_eq!(live_revision, "0a0a0a0a0a0a");
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/acme/storefront:1.4.1");
    assert_eq!(preview["spec"]["template"]["metadata"]["labels"]["windflow.io/revision"], revision.as_str());
    assert_eq!(preview["spec"]["replicas"], 3);
    assert_eq!(preview["spec"]["template"]["spec"]["containers"][0]["image"], "ghcr.io/acme/storefront:1.4.2");
    assert_eq!(applied.service["spec"]["selector"]["windflow.io/revision"], live_revision);
    let workloads = "/apis/apps/v1/namespaces/acme-production/deployments";

    // The preview is ready: health check passed, traffic switched; the live workload is next.
    let mut switched = previewing.clone();
    let action = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&previewing, &ctx, async {
        server
            .expect("GET", &format!("{workloads}/storefront-preview"), |_| {
                workload_ready("storefront-preview", &revision, 3)
            })
            .await;
        expect_events(&mut server, "shop-3", &["HealthCheckPassed", "Promoted"]).await;
        let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
        assert_eq!(seen.body["status"]["phase"], "running");
        assert_eq!(seen.body["status"]["applications"][0]["stage"], "Switched");
        switched["status"] = seen.body["status"].clone();
    })
    .await
    .expect("switched");
    assert_eq!(action, Action::requeue(windflow::deploy::POLL));

    // The live workload has rolled to the new revision: the rollout completes.
    reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&switched, &ctx, async {
        server.expect("GET", &format!("{workloads}/storefront"), |_| workload_ready("storefront", &revision, 3)).await;
        expect_events(&mut server, "shop-3", &["HealthCheckPassed", "Completed"]).await;
        let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
        assert_eq!(seen.body["status"]["phase"], "completed");
        assert_eq!(seen.body["status"]["applications"][0]["stage"], "Done");
    })
    .await
    .expect("completed");
    let types: Vec<String> = event_rows(&db.pool, &deployment).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        types,
        [
            "deployment.created",
            "deployment.started",
            "application.applied",
            "health_check.passed",
            "deployment.promoted",
            "health_check.passed",
            "deployment.completed"
        ]
    );
    server.finish(ctx).await;
}

#[tokio::test]
async fn a_deployment_of_a_stack_that_is_not_ready_waits_for_it_and_applies_nothing() {
    let deployment = rollout("shop-4", "rolling");
    let db = database().await;
    let docs = converged(&db.pool, &platform()).await;
    // The stack's applications are not Ready yet: validating, as when GitOps applies a stack
    // with its rollout.
    let (ctx, mut server) = mocked_with(db.pool.clone(), index_of(&docs));
    let ctx = Arc::new(ctx);
    let action = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&deployment, &ctx, async {
        expect_events(&mut server, "shop-4", &["Created"]).await;
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/deployments/shop-4/status";
        let seen = server.expect("PATCH", path, |_| deployment.clone()).await;
        assert_eq!(seen.body["status"]["phase"], "pending");
        let ready = condition(&seen.body, "Ready");
        assert_eq!(ready["reason"], "WaitingForStack");
        assert!(
            ready["message"].as_str().unwrap_or_default().contains("Stack shop to be ready (it is validating)"),
            "{ready}"
        );
    })
    .await
    .expect("waiting");
    assert_eq!(action, Action::requeue(windflow::deploy::QUEUED_POLL));
    server.finish(ctx).await;
}

/// The controller's own admission of a rollout, where admission records requesters: none
/// starts without a record of its creator, nor when its creator may not name `triggeredBy`;
/// each refusal is a NotAuthorized condition and Event, checked again a minute later, and no
/// rollout step is recorded.
#[tokio::test]
async fn a_rollout_starts_only_for_a_requester_who_may_name_its_user() {
    use windflow::mirror::actor::{Actor, CREATED_BY};
    let (db, docs) = rollout_scenario(&[]).await;
    let config = Config {
        rollouts: windflow::provision::Rollouts { requesters_recorded: true, platform_groups: vec![] },
        ..Config::default()
    };
    let (ctx, mut server) = mocked_config(db.pool.clone(), index_of(&docs), config);
    let ctx = Arc::new(ctx);
    let status_path = "/apis/windflow.io/v1alpha1/namespaces/acme/deployments/shop-3/status";
    let unrecorded = rollout("shop-3", "rolling");
    let mut by_mallory = unrecorded.clone();
    let mallory = Actor { username: "oidc:mallory".into(), login: Some("mallory".into()), ..Actor::default() };
    by_mallory["metadata"]["annotations"] = json!({ CREATED_BY: mallory.to_annotation() });
    for (deployment, says) in [
        (&unrecorded, "no record of who created this Deployment"),
        (&by_mallory, "\"oidc:mallory\", who is no WindFlow User, may not trigger a rollout as User \"alice\""),
    ] {
        let mut reported = Value::Null;
        let action = reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(deployment, &ctx, async {
            let seen = server.expect("PATCH", status_path, |_| deployment.clone()).await;
            reported = seen.body["status"].clone();
            let event = server.expect_event("acme").await;
            assert_eq!(event.body["type"], "Warning", "{}", event.body);
        })
        .await
        .expect("refused is no error");
        assert_eq!(action, Action::requeue(durations::PROVIDER_RECHECK));
        assert_eq!(reported["phase"], "pending");
        let ready = condition(&json!({ "status": reported }), "Ready").clone();
        assert_eq!((&ready["status"], &ready["reason"]), (&json!("False"), &json!("NotAuthorized")));
        assert!(ready["message"].as_str().is_some_and(|m| m.contains(says)), "{ready}");
        assert!(event_rows(&db.pool, deployment).await.is_empty(), "nothing recorded");
    }

    // Created by alice herself: the rollout starts.
    let mut by_alice = unrecorded.clone();
    let alice = Actor { username: "alice".into(), login: Some("alice".into()), ..Actor::default() };
    by_alice["metadata"]["annotations"] = json!({ CREATED_BY: alice.to_annotation() });
    reconcile_with::<windflow::kinds::Deployment, reconcile::RollOut, _>(&by_alice, &ctx, async {
        expect_events(&mut server, "shop-3", &["Created", "Started", "ApplicationApplied"]).await;
        server.expect("PATCH", status_path, |_| by_alice.clone()).await;
    })
    .await
    .expect("started");
    assert_eq!(event_rows(&db.pool, &by_alice).await.len(), 3);
    server.finish(ctx).await;
}
