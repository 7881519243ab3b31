//! Health checks of existing clusters over real HTTP: a fake Docker engine and a fake
//! Kubernetes API server on localhost answer what the real ones would.

mod support;

use std::collections::HashMap;

use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use support::{serve, swarm_engine};
use tokio::net::TcpListener;
use windflow::metrics::ApiRequests;
use windflow::provision::probe::{ClusterReport, NodeRole, ProbeError, ProbeLimits, ProbeTarget, probe};

/// The fake servers listen on loopback, which the default deny list refuses: these tests allow
/// every address.
const LOOPBACK: &[ipnet::IpNet] = &[];

/// The default limits of a health check.
const LIMITS: ProbeLimits = ProbeLimits { response_bytes: 1024 * 1024, nodes: 1000 };

/// A client for the operator's own cluster that must not be used.
fn unused_client() -> (Client, tower_test::mock::Handle<Request<Body>, Response<Body>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

#[tokio::test]
async fn a_swarm_manager_reports_every_node_of_its_swarm() {
    let url = serve(swarm_engine()).await;
    let report = check_engine(url, true, &LIMITS).await.expect("healthy");
    assert_eq!(report.version, "Docker 27.3.1");
    assert_eq!(report.nodes.len(), 2);
    assert_eq!(report.ready_nodes(), 1);
    let manager = &report.nodes[0];
    assert_eq!((manager.name.as_str(), manager.role, manager.ready), ("manager-1", NodeRole::Manager, true));
    assert_eq!((manager.cpu_cores, manager.memory_gb), (Some(4), Some(8.0)));
    assert_eq!(manager.address.as_deref(), Some("10.0.0.5"));
    assert_eq!(manager.heartbeat.as_deref(), Some("2026-12-03T09:58:00.123456789Z"));
    let worker = &report.nodes[1];
    assert_eq!((worker.name.as_str(), worker.role, worker.ready), ("worker-1", NodeRole::Worker, false));
}

#[tokio::test]
async fn a_docker_engine_is_its_own_single_node_and_a_plain_engine_is_no_swarm() {
    let url = serve(swarm_engine()).await;
    let single = check_engine(url.clone(), false, &LIMITS).await.expect("up");
    assert_eq!(single.nodes.len(), 1);
    assert_eq!((single.nodes[0].name.as_str(), single.nodes[0].cpu_cores), ("manager-1", Some(4)));

    let mut plain = swarm_engine();
    plain.insert(
        "/info",
        json!({ "Name": "box", "ServerVersion": "27.3.1", "Swarm": { "LocalNodeState": "inactive" } }),
    );
    let url = serve(plain).await;
    let error = check_engine(url, true, &LIMITS).await.expect_err("no swarm");
    assert!(matches!(&error, ProbeError::Unreachable(m) if m.contains("not part of a swarm")), "{error}");
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_unreachable_not_a_crash() {
    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0").await.expect("port").local_addr().expect("address").port();
    let (client, _unused) = unused_client();
    let target = ProbeTarget::Engine { url: format!("http://127.0.0.1:{port}"), swarm: false, tls: None };
    let error = probe(&client, &target, LOOPBACK, &LIMITS, &ApiRequests::default()).await.expect_err("refused");
    assert!(matches!(&error, ProbeError::Unreachable(m) if m.contains(&port.to_string())), "{error}");
}

/// What a tenant's endpoint sends is the tenant's to choose: whatever it says (an error body, a
/// body of the wrong shape, a ping that is not `OK`) never reaches a message, which whoever may
/// read the ContainerCluster reads.
#[tokio::test]
async fn nothing_an_endpoint_sends_is_echoed() {
    const MARKER: &str = "hunter2-from-the-endpoint";
    let answering = |path: &'static str, answer: Value| {
        let mut engine = swarm_engine();
        engine.insert(path, answer);
        engine
    };
    for (engine, expected) in [
        (answering("/_ping", Value::String(MARKER.into())), "/_ping did not answer OK"),
        (answering("/_ping", json!({ "$status": 503, "$body": MARKER })), "/_ping: answered HTTP 503"),
        (
            answering("/info", json!({ "Name": "box", "ServerVersion": "27", "NCPU": MARKER })),
            "/info: answered something else",
        ),
        (
            answering("/nodes", json!({ "$status": 500, "$body": json!({ "message": MARKER }).to_string() })),
            "/nodes: answered HTTP 500",
        ),
    ] {
        let error = check_engine(serve(engine).await, true, &LIMITS).await.expect_err("a failed check").to_string();
        assert!(error.contains(expected) && !error.contains(MARKER), "{error}");
    }
}

/// An endpoint cannot make the operator read without end, or report a cluster of any size.
#[tokio::test]
async fn answers_and_nodes_are_read_within_the_limits() {
    let mut huge = swarm_engine();
    let padding = "x".repeat(2 * 1024 * 1024);
    huge.insert("/info", json!({ "Name": "box", "ServerVersion": "27", "OperatingSystem": padding }));
    let url = serve(huge).await;
    let error = check_engine(url.clone(), false, &LIMITS).await.expect_err("more than 1 MiB");
    assert!(error.to_string().ends_with("/info: answered more than the response limit"), "{error}");
    let generous = ProbeLimits { response_bytes: 4 * 1024 * 1024, ..LIMITS };
    assert_eq!(check_engine(url, false, &generous).await.expect("within 4 MiB").nodes.len(), 1);

    let url = serve(swarm_engine()).await;
    let report = check_engine(url.clone(), true, &ProbeLimits { nodes: 1, ..LIMITS }).await.expect("healthy");
    assert_eq!((report.nodes.len(), report.more_nodes), (1, true));
    let report = check_engine(url, true, &LIMITS).await.expect("healthy");
    assert_eq!((report.nodes.len(), report.more_nodes), (2, false));
}

/// The health check of the engine at `url` (a swarm's manager, with `swarm`), within `limits`.
async fn check_engine(url: String, swarm: bool, limits: &ProbeLimits) -> Result<ClusterReport, ProbeError> {
    let (client, _unused) = unused_client();
    probe(&client, &ProbeTarget::Engine { url, swarm, tls: None }, LOOPBACK, limits, &ApiRequests::default()).await
}

fn node(name: &str, ready: bool, control_plane: bool) -> Value {
    let mut labels = json!({ "kubernetes.io/hostname": name });
    if control_plane {
        labels["node-role.kubernetes.io/control-plane"] = "".into();
    }
    json!({
        "metadata": { "name": name, "labels": labels },
        "status": {
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" },
                             "lastHeartbeatTime": "2026-12-03T09:58:00Z" }],
            "addresses": [{ "type": "InternalIP", "address": "10.1.0.2" }],
            "capacity": { "cpu": "8", "memory": "32Gi" },
            "nodeInfo": { "osImage": "Ubuntu 24.04", "kubeletVersion": "v1.33.1", "containerRuntimeVersion": "containerd://2.0",
                          "architecture": "amd64", "bootID": "", "kernelVersion": "", "kubeProxyVersion": "",
                          "machineID": "", "operatingSystem": "linux", "systemUUID": "" },
        },
    })
}

#[tokio::test]
async fn an_existing_cluster_is_reached_through_its_kubeconfig_secret() {
    let apiserver = serve(HashMap::from([
        (
            "/version",
            json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "", "gitTreeState": "",
                             "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64" }),
        ),
        (
            "/api/v1/nodes",
            json!({ "apiVersion": "v1", "kind": "NodeList", "metadata": {},
                                  "items": [node("cp-1", true, true), node("worker-1", true, false)] }),
        ),
    ]))
    .await;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: edge\nclusters: [{{ name: edge, cluster: {{ server: \"{apiserver}\" }} }}]\n\
         users: [{{ name: edge, user: {{ token: t }} }}]\ncontexts: [{{ name: edge, context: {{ cluster: edge, user: edge }} }}]\n"
    );
    let (client, mut handle) = unused_client();
    let secret = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "edge-kubeconfig", "namespace": "acme" },
                         "data": { "value": base64(&kubeconfig) } });
    let target = ProbeTarget::Kubeconfig { namespace: "acme".into(), secret: "edge-kubeconfig".into() };
    let requests = ApiRequests::default();
    let (report, ()) = tokio::join!(probe(&client, &target, LOOPBACK, &LIMITS, &requests), async {
        let (request, send) = handle.next_request().await.expect("the Secret is read");
        assert_eq!(request.uri().path(), "/api/v1/namespaces/acme/secrets/edge-kubeconfig");
        send.send_response(Response::builder().body(Body::from(secret.to_string().into_bytes())).expect("response"));
    });
    let report = report.expect("healthy");
    assert_eq!(report.version, "Kubernetes v1.33.1");
    assert_eq!(report.ready_nodes(), 2);
    let control_plane = &report.nodes[0];
    assert_eq!(
        (control_plane.role, control_plane.cpu_cores, control_plane.memory_gb),
        (NodeRole::Master, Some(8), Some(34.36))
    );
    assert_eq!(control_plane.details["kubeletVersion"], "v1.33.1");
    assert_eq!(control_plane.heartbeat.as_deref(), Some("2026-12-03T09:58:00Z"));
    assert_eq!(report.nodes[1].role, NodeRole::Worker);
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The Secret `acme/edge-kubeconfig` holding `kubeconfig`, as the operator's client reads it.
async fn probe_kubeconfig(
    kubeconfig: &str,
    deny: &[ipnet::IpNet],
) -> Result<windflow::provision::probe::ClusterReport, ProbeError> {
    let (client, mut handle) = unused_client();
    let secret = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "edge-kubeconfig", "namespace": "acme" },
                         "data": { "value": base64(kubeconfig) } });
    let target = ProbeTarget::Kubeconfig { namespace: "acme".into(), secret: "edge-kubeconfig".into() };
    let requests = ApiRequests::default();
    let (report, ()) = tokio::join!(probe(&client, &target, deny, &LIMITS, &requests), async {
        let (_, send) = handle.next_request().await.expect("the Secret is read");
        send.send_response(Response::builder().body(Body::from(secret.to_string().into_bytes())).expect("response"));
    });
    report
}

/// A tenant's kubeconfig may name a command, a file (the operator's own token), a proxy or an
/// address of the operator's side: none is run, read, followed or connected to.
#[tokio::test]
async fn a_tenants_kubeconfig_is_followed_only_for_inline_credentials_to_allowed_addresses() {
    let kubeconfig = |cluster: &str, user: &str| {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: edge\nclusters: [{{ name: edge, cluster: {cluster} }}]\n\
             users: [{{ name: edge, user: {user} }}]\ncontexts: [{{ name: edge, context: {{ cluster: edge, user: edge }} }}]\n"
        )
    };
    let marker = std::env::temp_dir().join(format!("windflow-exec-{}", std::process::id()));
    let exec = format!(
        "{{ exec: {{ apiVersion: client.authentication.k8s.io/v1, command: touch, args: [{}] }} }}",
        marker.display()
    );
    let refused = probe_kubeconfig(&kubeconfig("{ server: 'https://10.9.9.9:6443' }", &exec), LOOPBACK).await;
    let message = refused.expect_err("exec is refused").to_string();
    assert!(message.contains("kubeconfig users[0].user.exec: only inline credentials"), "{message}");
    assert!(!marker.exists(), "the command was not run");
    let token_file = "{ tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token }";
    let refused = probe_kubeconfig(&kubeconfig("{ server: 'https://10.9.9.9:6443' }", token_file), LOOPBACK).await;
    assert!(matches!(refused, Err(ProbeError::Refused(m)) if m.contains("users[0].user.tokenFile")));

    // A Secret that is no kubeconfig is named by its key and the line, never quoted.
    let token = "c2VjcmV0LXRva2Vu-of-someone-else";
    let broken = format!("apiVersion: v1\nkind: Config\nusers:\n- name: admin\n  user: {{ token: {token}\n");
    let refused = probe_kubeconfig(&broken, LOOPBACK).await.expect_err("not a kubeconfig").to_string();
    assert!(refused.starts_with("Secret acme/edge-kubeconfig: key value: not a kubeconfig (line "), "{refused}");
    assert!(!refused.contains(token) && !refused.contains("admin"), "{refused}");

    // The default deny list: loopback and cloud metadata are never connected to.
    let deny = windflow::provision::destination::default_deny();
    for server in ["https://127.0.0.1:6443", "https://169.254.169.254", "https://localhost:6443"] {
        let refused = probe_kubeconfig(&kubeconfig(&format!("{{ server: '{server}' }}"), "{ token: t }"), &deny).await;
        assert!(matches!(&refused, Err(ProbeError::Refused(m)) if m.contains("deny list")), "{server}: {refused:?}");
    }
    let engine = ProbeTarget::Engine { url: "http://127.0.0.1:2375".into(), swarm: false, tls: None };
    let (client, _unused) = unused_client();
    let refused = probe(&client, &engine, &deny, &LIMITS, &ApiRequests::default()).await;
    assert!(matches!(&refused, Err(ProbeError::Refused(m)) if m.contains("127.0.0.0/8")), "{refused:?}");
}

/// Everything placed on a workload cluster asks for its client, many at once when it connects:
/// the kubeconfig Secret is read once per `KUBECONFIG_RECHECK`, not once per reconcile, unless
/// the cluster names another one, or refuses the credentials (401: rotated, the old ones
/// revoked): then it is read again `REFUSED_RECHECK` after the last read.
#[tokio::test]
async fn a_workload_clusters_kubeconfig_secret_is_not_read_on_every_use() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use windflow::provision::Destination;
    use windflow::provision::clusters::{Clusters, Credentials, REFUSED_RECHECK, WORKLOAD_RESPONSE_LIMIT};

    let version = json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "", "gitTreeState": "",
                          "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64" });
    // `/api` refuses the credentials; `/huge` answers more than the operator reads.
    let huge = json!({ "padding": "x".repeat(WORKLOAD_RESPONSE_LIMIT) });
    let apiserver = serve(HashMap::from([("/version", version), ("/api", json!(401)), ("/huge", huge)])).await;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: edge\nclusters: [{{ name: edge, cluster: {{ server: \"{apiserver}\" }} }}]\n\
         users: [{{ name: edge, user: {{ token: t }} }}]\ncontexts: [{{ name: edge, context: {{ cluster: edge, user: edge }} }}]\n"
    );
    let (client, mut handle) = unused_client();
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let name = request.uri().path().rsplit('/').next().unwrap_or_default().to_owned();
            let secret = json!({ "apiVersion": "v1", "kind": "Secret",
                                 "metadata": { "name": name, "namespace": "acme", "resourceVersion": "7" },
                                 "data": { "value": base64(&kubeconfig) } });
            send.send_response(
                Response::builder().body(Body::from(secret.to_string().into_bytes())).expect("response"),
            );
        }
    });
    let clusters = Clusters::new(client, LOOPBACK.to_vec(), ApiRequests::default());
    let edge = Destination::Workload { namespace: "acme".into(), name: "edge".into() };
    let credentials = |secret: &str| Credentials { namespace: "acme".into(), secret: secret.into(), keys: &["value"] };
    let at_once = futures::future::join_all(
        (0..6).map(|_| async { clusters.provider(&edge, Some(&credentials("edge-kubeconfig"))).await }),
    )
    .await;
    let first = at_once[0].as_ref().expect("connected").clone();
    for other in &at_once {
        assert!(Arc::ptr_eq(&first, other.as_ref().expect("connected")), "one client for the asks made at once");
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1, "one read of the Secret for six asks at once");
    for _ in 0..5 {
        let again = clusters.provider(&edge, Some(&credentials("edge-kubeconfig"))).await.expect("still connected");
        assert!(Arc::ptr_eq(&first, &again), "the same client");
    }
    assert_eq!(reads.load(Ordering::SeqCst), 1, "one read of the Secret for eleven uses");
    // What the operator asks of a workload cluster is read up to a limit: the cluster is a
    // tenant's, and chooses what it answers.
    let answered = first.client().request::<Value>(Request::get("/huge").body(Vec::new()).expect("a request")).await;
    let why = windflow::provision::probe::why_failed(&answered.expect_err("more than the limit"));
    assert_eq!(why, "answered more than the response limit");
    let renamed = clusters.provider(&edge, Some(&credentials("edge-kubeconfig-2"))).await.expect("connected");
    assert_eq!(reads.load(Ordering::SeqCst), 2, "a cluster that names another Secret reads it at once");

    assert!(renamed.client().list_core_api_versions().await.is_err(), "refused");
    clusters.provider(&edge, Some(&credentials("edge-kubeconfig-2"))).await.expect("connected");
    assert_eq!(reads.load(Ordering::SeqCst), 2, "not read again on every use while refused");
    tokio::time::sleep(REFUSED_RECHECK).await;
    clusters.provider(&edge, Some(&credentials("edge-kubeconfig-2"))).await.expect("connected");
    assert_eq!(reads.load(Ordering::SeqCst), 3, "read again once the last read is that old");
    clusters.provider(&edge, Some(&credentials("edge-kubeconfig-2"))).await.expect("connected");
    assert_eq!(reads.load(Ordering::SeqCst), 3, "the refusal was before that read");
}

/// The watches and reconciles of a cluster just connected ask discovery for their types at
/// once, served or not: the cluster is asked once, by aggregated discovery (`/api` and
/// `/apis`), and the others wait for its answer.
#[tokio::test]
async fn discovery_asked_at_once_is_asked_once_for_the_whole_cluster() {
    use std::sync::{Arc, Mutex};
    use windflow::provision::apply::Provider;
    use windflow::provision::types::{DEPLOYMENT, NAMESPACE, VIRTUAL_MACHINE};

    let (client, mut handle) = unused_client();
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let recorded = asked.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            recorded.lock().expect("not poisoned").push(path.clone());
            let (group, version, plural, kind) = if path == "/api" {
                ("", "v1", "namespaces", "Namespace")
            } else {
                ("apps", "v1", "deployments", "Deployment")
            };
            let resource = json!({ "resource": plural, "scope": "Namespaced", "verbs": ["get", "list", "patch"],
                                   "responseKind": { "group": group, "version": version, "kind": kind } });
            let list = json!({ "apiVersion": "apidiscovery.k8s.io/v2", "kind": "APIGroupDiscoveryList",
                               "items": [{ "metadata": { "name": group },
                                           "versions": [{ "version": version, "resources": [resource] }] }] });
            send.send_response(Response::builder().body(Body::from(list.to_string().into_bytes())).expect("response"));
        }
    });
    let provider = Provider::new(client);
    let answers =
        futures::future::join_all((0..4).map(|_| provider.unserved(&[NAMESPACE, DEPLOYMENT, VIRTUAL_MACHINE]))).await;
    for answer in answers {
        assert_eq!(answer.expect("discovery answers"), vec![VIRTUAL_MACHINE], "KubeVirt is not served");
    }
    assert_eq!(*asked.lock().expect("not poisoned"), ["/api", "/apis"], "two requests for the whole cluster");
}

/// An API server too old for aggregated discovery answers the plain lists, which read as
/// empty: that is an error naming what is missing, not every API "not installed".
#[tokio::test]
async fn a_cluster_without_aggregated_discovery_is_an_error_not_everything_missing() {
    use windflow::provision::apply::Provider;
    use windflow::provision::types::DEPLOYMENT;

    let (client, mut handle) = unused_client();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let plain = if request.uri().path() == "/api" {
                json!({ "kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [] })
            } else {
                json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": [] })
            };
            send.send_response(Response::builder().body(Body::from(plain.to_string().into_bytes())).expect("response"));
        }
    });
    let error = Provider::new(client).unserved(&[DEPLOYMENT]).await.expect_err("no aggregated discovery");
    assert!(error.to_string().contains("Kubernetes 1.26 and later"), "{error}");
}

/// A cluster whose discovery fails: what waited for that attempt takes its failure, rather
/// than asking again one after another (a hung cluster would hold each for a read timeout).
#[tokio::test]
async fn callers_waiting_for_a_failed_discovery_share_its_failure() {
    use std::sync::{Arc, Mutex};
    use windflow::provision::apply::Provider;
    use windflow::provision::types::DEPLOYMENT;

    let (client, mut handle) = unused_client();
    let asked = Arc::new(Mutex::new(0));
    let counted = asked.clone();
    tokio::spawn(async move {
        while let Some((_request, send)) = handle.next_request().await {
            *counted.lock().expect("not poisoned") += 1;
            // Long enough for every caller to be waiting.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            send.send_error(std::io::Error::other("connection reset"));
        }
    });
    let provider = Provider::new(client);
    let answers = futures::future::join_all((0..4).map(|_| provider.unserved(&[DEPLOYMENT]))).await;
    assert!(answers.iter().all(Result::is_err), "{answers:?}");
    assert_eq!(*asked.lock().expect("not poisoned"), 1, "one attempt for the four callers");
    // A caller that comes afterwards asks again.
    assert!(provider.unserved(&[DEPLOYMENT]).await.is_err());
    assert_eq!(*asked.lock().expect("not poisoned"), 2);
}

/// Every client of a cluster is made by `ApiRequests::client`, which tells of each answer with
/// its status; a cluster's `Answers` hold when it last answered (a server error is no sign of
/// a server serving) and when it last refused the credentials (401), which the health checks
/// and the kubeconfig's rereading rest on.
#[tokio::test]
async fn a_client_tells_of_each_answer_and_not_of_silence() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use windflow::provision::probe::{Answers, Counted, Patience, counted_client};

    let statuses = Arc::new(Mutex::new(vec![]));
    let client_of = |url: &str| {
        let heard = statuses.clone();
        let config = kube::Config::new(url.parse().expect("a url"));
        ApiRequests::default()
            .client(config, "edge", None, move |status: http::StatusCode| {
                heard.lock().expect("statuses").push(status.as_u16());
            })
            .expect("a client")
    };
    let heard = || statuses.lock().expect("statuses").clone();

    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0").await.expect("port").local_addr().expect("address").port();
    let silent = client_of(&format!("http://127.0.0.1:{port}"));
    assert!(silent.apiserver_version().await.is_err());
    assert_eq!(heard(), Vec::<u16>::new(), "no answer, nothing told");

    let version = json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.1", "gitCommit": "", "gitTreeState": "",
                          "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64" });
    let routes = HashMap::from([("/version", version), ("/api", json!(401)), ("/apis", json!(500))]);
    let url = serve(routes).await;
    let server = client_of(&url);
    server.apiserver_version().await.expect("a version");
    assert!(server.list_core_api_versions().await.is_err(), "refused");
    assert!(server.list_api_groups().await.is_err(), "a server error");
    assert!(server.list_api_group_resources("/apis/nothing.example/v1").await.is_err(), "missing");
    assert_eq!(heard(), vec![200, 401, 500, 404]);

    // What a cluster's answers keep of them.
    let before = Instant::now();
    let answers = Answers::default();
    let requests = ApiRequests::default();
    let counted = Counted { requests: &requests, cluster: "edge", answers: Some(&answers), response_limit: None };
    let config = kube::Config::new(url.parse().expect("a url"));
    let client = counted_client(config, "the fake cluster", Patience::Reconcile, counted).expect("a client");
    assert!(client.list_api_groups().await.is_err());
    assert!(!answers.within(Duration::from_secs(60)), "a server error is not an answer");
    assert!(!answers.refused_after(before));
    assert!(client.list_core_api_versions().await.is_err());
    assert!(answers.within(Duration::from_secs(60)), "a refusal is an answer");
    assert!(answers.refused_after(before), "and a refusal of the credentials");
    assert!(!answers.refused_after(Instant::now()), "not one after now");
}
