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
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use support::*;
use windflow::api::{User, Volume};
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
        let (request, send) = tokio::time::timeout(TIMEOUT, self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {method} {path}"))
            .unwrap_or_else(|| panic!("the client was dropped before {method} {path}"));
        assert_eq!((request.method().as_str(), request.uri().path()), (method, path));
        let query = request.uri().query().unwrap_or_default().to_owned();
        let bytes = request.into_body().collect_bytes().await.expect("request body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON body") };
        let answer = serde_json::to_vec(&response(&body)).expect("response");
        send.send_response(Response::builder().body(Body::from(answer)).expect("response"));
        Seen { query, body }
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

fn mocked(pool: PgPool) -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let reporter = Reporter { controller: "windflow-operator".into(), instance: Some("test".into()) };
    let recorder = Recorder::new(client.clone(), reporter);
    (Arc::new(Context::new(client, pool, recorder)), ApiServer(handle))
}

/// Runs one reconcile while `server` plays the API server's part.
async fn reconcile_with<K, S>(obj: &Value, ctx: &Arc<Context>, server: S) -> Result<Action, Error>
where
    K: windflow::mirror::Mirrored + reconcile::Scoped + DeserializeOwned,
    S: Future<Output = ()>,
{
    let obj: Arc<K> = Arc::new(serde_json::from_value(obj.clone()).expect("a valid object"));
    let (result, ()) =
        tokio::time::timeout(TIMEOUT, async { futures::join!(reconcile::reconcile(obj, ctx.clone()), server) })
            .await
            .expect("the reconcile finished");
    result
}

/// The platform of `examples/` mirrored, so that new objects find their parents.
async fn mirrored_platform() -> TestDb {
    let db = database().await;
    converge(&db.pool, &platform()).await;
    db
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

#[tokio::test]
async fn namespaced_volume_finalizer_status_event_and_cleanup() {
    let db = mirrored_platform().await;
    let (ctx, mut server) = mocked(db.pool.clone());
    let volume = volume("scratch", "storage");
    let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/scratch";

    // First the finalizer, and nothing written before it is in place.
    let action = reconcile_with::<Volume, _>(&volume, &ctx, async {
        let seen = server.expect("PATCH", path, |_| with_finalizer(&volume)).await;
        assert_eq!(seen.body[1], json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] }));
    })
    .await
    .expect("finalizer added");
    assert_eq!(action, Action::await_change());
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    // Then the row, the status by server-side apply and a Normal event for the Ready flip.
    let stored = with_finalizer(&volume);
    let action = reconcile_with::<Volume, _>(&stored, &ctx, async {
        let seen = server.expect("PATCH", &format!("{path}/status"), |_| stored.clone()).await;
        assert_server_side_apply(&seen);
        assert_eq!(seen.body["status"]["observedGeneration"], 2);
        assert_eq!(seen.body["status"]["organization"], "acme");
        assert_eq!(seen.body["status"]["mirroredResourceVersion"], "7");
        assert_eq!(condition(&seen.body, "Ready")["status"], "True");
        assert_eq!(condition(&seen.body, "Synced")["reason"], "Mirrored");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!((event.body["type"].as_str(), event.body["reason"].as_str()), (Some("Normal"), Some("Mirrored")));
        assert_eq!(event.body["regarding"]["name"], "scratch");
    })
    .await
    .expect("mirrored");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    assert!(row_exists(&db.pool, "volumes", &volume).await);

    // Deletion: the row goes, the audit trail stays, then the finalizer is removed.
    let gone = deleting(&volume);
    let action = reconcile_with::<Volume, _>(&gone, &ctx, async {
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        assert_eq!(seen.body[1], json!({ "op": "remove", "path": "/metadata/finalizers/0" }));
    })
    .await
    .expect("cleaned up");
    assert_eq!(action, Action::await_change());
    assert!(!row_exists(&db.pool, "volumes", &volume).await);
    assert_eq!(audit_actions(&db.pool, &volume).await, ["create", "delete"]);

    drop(ctx);
    server.expect_nothing_more().await;
}

#[tokio::test]
async fn cluster_scoped_user_reads_its_password_secret_and_reports_in_the_default_namespace() {
    let db = mirrored_platform().await;
    let (ctx, mut server) = mocked(db.pool.clone());
    let spec = json!({
        "email": "carol@acme.example",
        "passwordSecretRef": { "namespace": "acme", "name": "carol-login", "key": "hash" },
    });
    let user = with_finalizer(&object("User", "carol", None, spec));
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    let secret = serde_json::to_value(Secret {
        metadata: ObjectMeta { name: Some("carol-login".into()), namespace: Some("acme".into()), ..Default::default() },
        data: Some([("hash".to_owned(), ByteString(hash.into()))].into()),
        ..Default::default()
    })
    .expect("a Secret");

    let action = reconcile_with::<User, _>(&user, &ctx, async {
        server.expect("GET", "/api/v1/namespaces/acme/secrets/carol-login", |_| secret.clone()).await;
        let seen = server.expect("PATCH", "/apis/windflow.io/v1alpha1/users/carol/status", |_| user.clone()).await;
        assert_server_side_apply(&seen);
        assert_eq!(condition(&seen.body, "Ready")["status"], "True");
        assert_eq!(seen.body["status"]["observedGeneration"], 2);
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/default/events", Clone::clone).await;
        assert_eq!(event.body["regarding"]["kind"], "User");
    })
    .await
    .expect("mirrored");
    assert_eq!(action, Action::requeue(durations::RESYNC));
    let stored: String = sqlx::query_scalar("SELECT hashed_password FROM users WHERE email = 'carol@acme.example'")
        .fetch_one(&db.pool)
        .await
        .expect("the user row");
    assert_eq!(stored, hash);

    let gone = deleting(&user);
    reconcile_with::<User, _>(&gone, &ctx, async {
        server.expect("PATCH", "/apis/windflow.io/v1alpha1/users/carol", |_| user.clone()).await;
    })
    .await
    .expect("cleaned up");
    assert!(!row_exists(&db.pool, "users", &user).await);

    drop(ctx);
    server.expect_nothing_more().await;
}

#[tokio::test]
async fn a_missing_parent_is_a_condition_and_a_warning_then_a_short_requeue() {
    let db = mirrored_platform().await;
    let (ctx, mut server) = mocked(db.pool.clone());
    let volume = with_finalizer(&volume("orphan", "not-yet"));

    let action = reconcile_with::<Volume, _>(&volume, &ctx, async {
        let path = "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/orphan/status";
        let seen = server.expect("PATCH", path, |_| volume.clone()).await;
        let ready = condition(&seen.body, "Ready");
        assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("WaitingForDependency")));
        assert!(ready["message"].as_str().is_some_and(|m| m.contains("not-yet")), "{ready}");
        let event = server.expect("POST", "/apis/events.k8s.io/v1/namespaces/acme/events", Clone::clone).await;
        assert_eq!(event.body["type"], "Warning");
    })
    .await
    .expect("a condition, not an error");
    assert_eq!(action, Action::requeue(durations::WAITING));
    assert!(!row_exists(&db.pool, "volumes", &volume).await);

    drop(ctx);
    server.expect_nothing_more().await;
}

#[tokio::test]
async fn an_unreachable_database_is_reported_and_retried_with_growing_backoff() {
    // A port nobody listens on; a short acquire timeout keeps the test quick.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy("postgres://windflow@127.0.0.1:9/windflow")
        .expect("a lazy pool");
    let (ctx, mut server) = mocked(pool);
    let volume = with_finalizer(&volume("data", "storage"));

    let result = reconcile_with::<Volume, _>(&volume, &ctx, async {
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
