//! Leader election between replicas, each with its own client, against an in-memory Lease API
//! that answers as the API server does where it matters: server-side apply conflicts between
//! field managers, strategic merge patches, create-if-absent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use windflow::cli::LeaderElectionArgs;
use windflow::kinds::index::Index;
use windflow::operator::{Health, lead};
use windflow::provision::Config;
use windflow::reconcile::Context;

/// One Lease, and which field manager owns its `holderIdentity`.
#[derive(Default)]
struct LeaseServer {
    lease: Option<Value>,
    holder_owner: Option<String>,
    version: u64,
}

fn status(code: u16, reason: &str) -> (u16, Value) {
    (
        code,
        json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason }),
    )
}

impl LeaseServer {
    fn answer(&mut self, method: &str, query: &str, content_type: &str, body: Value) -> (u16, Value) {
        let manager =
            query.split('&').find_map(|pair| pair.strip_prefix("fieldManager=")).unwrap_or_default().to_owned();
        match method {
            "GET" => match &self.lease {
                Some(lease) => (200, lease.clone()),
                None => status(404, "NotFound"),
            },
            "POST" if self.lease.is_some() => status(409, "AlreadyExists"),
            "POST" => {
                let mut lease = body;
                lease["spec"] = json!({});
                self.store(lease)
            }
            "PATCH" => {
                let Some(mut lease) = self.lease.clone() else { return status(404, "NotFound") };
                let apply = content_type.starts_with("application/apply-patch");
                let spec = body["spec"].as_object().cloned().unwrap_or_default();
                if let Some(holder) = spec.get("holderIdentity") {
                    let current = &lease["spec"]["holderIdentity"];
                    let owned_by_other = self.holder_owner.as_deref().is_some_and(|owner| owner != manager);
                    if apply && owned_by_other && !current.is_null() && current != holder {
                        return status(409, "Conflict");
                    }
                    self.holder_owner = if holder.is_null() { None } else { Some(manager) };
                }
                for (key, value) in spec {
                    if value.is_null() {
                        lease["spec"].as_object_mut().map(|s| s.remove(&key));
                    } else {
                        lease["spec"][key] = value;
                    }
                }
                self.store(lease)
            }
            _ => status(405, "MethodNotAllowed"),
        }
    }

    fn store(&mut self, mut lease: Value) -> (u16, Value) {
        self.version += 1;
        lease["apiVersion"] = "coordination.k8s.io/v1".into();
        lease["kind"] = "Lease".into();
        lease["metadata"]["namespace"] = "windflow-system".into();
        lease["metadata"]["resourceVersion"] = self.version.to_string().into();
        self.lease = Some(lease.clone());
        (200, lease)
    }
}

/// A client whose requests the shared server answers until the replica is `dead`: then the
/// connection is gone, as for a crashed pod, and nothing it sends arrives (not even a release).
fn replica_client(server: Arc<Mutex<LeaseServer>>, dead: Arc<AtomicBool>) -> Client {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            if dead.load(Ordering::SeqCst) {
                break;
            }
            let method = request.method().as_str().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let content_type =
                request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let bytes = request.into_body().collect_bytes().await.unwrap_or_default();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let (code, answer) = server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).answer(
                &method,
                &query,
                &content_type,
                body,
            );
            let response = Response::builder().status(code).body(Body::from(answer.to_string().into_bytes()));
            send.send_response(response.expect("a response"));
        }
    });
    Client::new(service, "windflow-system")
}

fn health(client: &Client) -> Health {
    let pool = PgPoolOptions::new().connect_lazy("postgres://unused@127.0.0.1:9/unused").expect("a lazy pool");
    let reporter = Reporter { controller: "windflow-operator".into(), instance: None };
    let index = Index::from_documents(&[]);
    Health::new(Arc::new(Context::new(client.clone(), pool, reporter, index, Config::default(), Arc::default())))
}

#[tokio::test]
async fn one_replica_reconciles_and_a_standby_takes_over_when_it_dies() {
    let server = Arc::new(Mutex::new(LeaseServer::default()));
    let args = LeaderElectionArgs {
        enabled: true,
        lease_name: "windflow-operator".into(),
        lease_namespace: "windflow-system".into(),
        lease_duration: 2,
    };
    let reconciling = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut replicas = HashMap::new();
    for name in ["replica-a", "replica-b", "replica-c"] {
        let dead = Arc::new(AtomicBool::new(false));
        let client = replica_client(server.clone(), dead.clone());
        let (args, reconciling, most) = (args.clone(), reconciling.clone(), most.clone());
        let task = tokio::spawn(async move {
            let health = health(&client);
            // The controllers: count this replica as reconciling until it is stopped.
            let controllers = async move {
                let now = reconciling.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _done = scopeguard(reconciling);
                std::future::pending::<()>().await;
            };
            lead(client, name.to_owned(), &args, &health, controllers).await
        });
        replicas.insert(name, (task, dead));
    }

    let first = leader(&server, &reconciling, |_| true).await;

    // The leader dies without releasing the Lease: a standby takes over once it expires.
    let (task, dead) = replicas.remove(first.as_str()).expect("the leader");
    dead.store(true, Ordering::SeqCst);
    task.abort();
    let started = Instant::now();
    let second = leader(&server, &reconciling, |h| h != first).await;
    // The Lease expires at most leaseDuration after the last renewal; standbys look again
    // every grace period (measured here: about 2.7 s for a 2 s Lease).
    let took = started.elapsed();
    assert!(took < Duration::from_secs(args.lease_duration + 2), "took {took:?}");
    assert_ne!(first, second);
    // Taking a free Lease is safe only if replicas conflict: each applies as its own manager.
    let owner = server.lock().unwrap_or_else(std::sync::PoisonError::into_inner).holder_owner.clone();
    assert_eq!(owner.as_deref(), Some(format!("windflow-operator-{second}").as_str()));
    assert_eq!(most.load(Ordering::SeqCst), 1, "never two replicas reconciling at once");
    for (task, _) in replicas.into_values() {
        task.abort();
    }
}

/// The Lease's holder, once `want` accepts it and exactly one replica reconciles.
async fn leader(server: &Mutex<LeaseServer>, reconciling: &AtomicUsize, want: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let holder = {
            let server = server.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            server.lease.as_ref().and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_owned))
        };
        if let Some(holder) = holder.filter(|h| want(h))
            && reconciling.load(Ordering::SeqCst) == 1
        {
            return holder;
        }
        assert!(Instant::now() < until, "no leader in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Decrements the counter when dropped (the controllers stopped).
fn scopeguard(counter: Arc<AtomicUsize>) -> impl Drop {
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    Guard(counter)
}
