//! Installing and running WindFlow as users do, for the end-to-end tests and the convergence
//! benchmark: the chart with helm, the operator as a process with the chart's ServiceAccount
//! credentials, and the `windflow` subcommands.
#![allow(dead_code)] // the tests and the benchmark each use their own part

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

use crate::controlplane::{ControlPlane, both, free_port, kubeconfig, launch, run};

const RELEASE: &str = "windflow";
pub const RELEASE_NAMESPACE: &str = "windflow-system";
/// The operators' lease duration here: short, so that a failover is quick to see.
pub const LEASE_DURATION: Duration = Duration::from_secs(6);
/// The operator process, killed when dropped.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
}

impl Operator {
    /// The process id, to read its memory.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, if it has ended by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The process's resident memory (`VmRSS`), in bytes.
    pub fn resident_memory(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kilobytes = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.trim().parse().ok());
        kilobytes.unwrap_or(0u64) * 1024
    }

    /// SIGKILL: no lease release, no cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `helm install` of the chart without its admission webhook: the scenarios that are not about
/// admission run operators that serve none.
pub async fn install_chart(plane: &ControlPlane) -> PathBuf {
    install_chart_with(plane, &["--set", "admission.enabled=false"]).await
}

/// `helm install` of the chart, as users install it (no operator pod runs: the operator runs
/// as a process here, with the chart's ServiceAccount), with `extra` helm arguments. Returns a
/// kubeconfig that carries a token of that ServiceAccount from the TokenRequest API.
pub async fn install_chart_with(plane: &ControlPlane, extra: &[&str]) -> PathBuf {
    install_chart_from(plane, CHART, extra).await
}

/// This repository's chart.
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/windflow");

/// [`install_chart_with`] of `chart` (a directory or a packaged chart).
pub async fn install_chart_from(plane: &ControlPlane, chart: &str, extra: &[&str]) -> PathBuf {
    let mut install = crate::support::helm();
    install
        .args(["upgrade", "--install", RELEASE, chart, "--namespace", RELEASE_NAMESPACE, "--create-namespace"])
        .args(["--set", "database.url=postgres://placeholder/windflow", "--set", "replicas=0"])
        .args(extra)
        .arg("--kubeconfig")
        .arg(&plane.kubeconfig);
    run(install);
    service_account_kubeconfig(plane, RELEASE, "operator.kubeconfig").await
}

/// A kubeconfig (file `file` of the plane's directory) carrying a token of the ServiceAccount
/// `account` of the release namespace, from the TokenRequest API.
pub async fn service_account_kubeconfig(plane: &ControlPlane, account: &str, file: &str) -> PathBuf {
    let client = plane.client().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client, RELEASE_NAMESPACE);
    let request: TokenRequest =
        serde_json::from_value(json!({ "spec": { "audiences": [], "expirationSeconds": 7200 } })).expect("request");
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("a token of the ServiceAccount {account}: {e}"))
        .status
        .expect("a token")
        .token;
    let path = plane.dir.join(file);
    std::fs::write(&path, kubeconfig(&plane.server, &plane.ca_pem, json!({ "token": token }))).expect("write");
    path
}

/// `helm install` of the chart with its admission webhook, as users install it, with `extra`
/// helm arguments: the API server calls the operator that [`serving_admission`] at `port`.
pub async fn install_chart_admitting(plane: &ControlPlane, port: u16, extra: &[&str]) -> PathBuf {
    let url = format!("admission.url=https://127.0.0.1:{port}");
    install_chart_with(plane, &[&["--set", url.as_str()], extra].concat()).await
}

/// The operator's environment to serve admission at `port`, under a certificate it issues
/// itself for that address.
pub fn serving_admission(port: u16) -> [(&'static str, String); 2] {
    [("WINDFLOW_ADMISSION_ADDRESS", format!("127.0.0.1:{port}")), ("WINDFLOW_WEBHOOK_HOSTS", "127.0.0.1".to_owned())]
}

/// Starts `windflow run` with `kubeconfig`, electing a leader on the chart's Lease, on
/// `database_url` as a runtime login that owns nothing: the migrations are applied already, as
/// the chart's migration Job applies them.
pub fn start_operator(plane: &ControlPlane, kubeconfig: &Path, database_url: &str, identity: &str) -> Operator {
    start_operator_with(plane, kubeconfig, database_url, identity, &[])
}

/// [`start_operator`] with more environment, as the chart's values would set it.
pub fn start_operator_with(
    plane: &ControlPlane,
    kubeconfig: &Path,
    database_url: &str,
    identity: &str,
    env: &[(&str, &str)],
) -> Operator {
    let log = plane.dir.join(format!("{identity}.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_windflow"));
    command
        .arg("run")
        .env("KUBECONFIG", kubeconfig)
        .env("DATABASE_URL", database_url)
        .env("WINDFLOW_MIGRATE", "false")
        .env("WINDFLOW_PROBE_ADDRESS", "127.0.0.1:0")
        .env("WINDFLOW_LEADER_ELECT", "true")
        .env("WINDFLOW_LEASE_DURATION", LEASE_DURATION.as_secs().to_string())
        .env("POD_NAMESPACE", RELEASE_NAMESPACE)
        .env("POD_NAME", identity)
        .env("WINDFLOW_LOG", "info,windflow=debug")
        .env("WINDFLOW_PROBE_DENY", PROBE_DENY)
        .env("WINDFLOW_PROBE_DENY_OWN_ENDPOINTS", "false")
        .envs(env.iter().copied());
    let child = launch(identity, command, &log);
    Operator { child, log }
}

/// The body of `GET path` over plain HTTP at `address`.
pub fn get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("the probe server");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").expect("a request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    response
}

/// The samples of `metric` in a text exposition: each line's labels (`{…}`, or empty) and
/// value.
pub fn samples<'a>(exposition: &'a str, metric: &str) -> Vec<(&'a str, f64)> {
    exposition
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(metric)?;
            let (labels, value) = rest.rsplit_once(' ')?;
            (labels.is_empty() || labels.starts_with('{')).then_some((labels, value.parse().ok()?))
        })
        .collect()
}

/// The API writes an operator counted (`windflow_api_requests_total`) apart from renewing its
/// Lease and asking who it is: each sample's labels and count.
pub fn api_writes(exposition: &str) -> Vec<(&str, f64)> {
    const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
    samples(exposition, "windflow_api_requests_total")
        .into_iter()
        .filter(|(labels, _)| WRITES.iter().any(|verb| labels.contains(&format!("verb=\"{verb}\""))))
        .filter(|(labels, _)| {
            !["leases", "selfsubjectreviews"].iter().any(|r| labels.contains(&format!("resource=\"{r}\"")))
        })
        .collect()
}

/// How many API writes [`api_writes`] finds in all.
pub fn api_writes_total(exposition: &str) -> f64 {
    // Folded from 0: `Sum` of no floats is -0, which reports print as "-0 API writes".
    api_writes(exposition).iter().fold(0.0, |total, (_, count)| total + count)
}

/// [`start_operator`], serving its probes and metrics at the address returned.
pub fn start_operator_with_metrics(
    plane: &ControlPlane,
    kubeconfig: &Path,
    database_url: &str,
    identity: &str,
) -> (Operator, String) {
    start_operator_with_metrics_and(plane, kubeconfig, database_url, identity, &[])
}

/// [`start_operator_with_metrics`] with more environment.
pub fn start_operator_with_metrics_and(
    plane: &ControlPlane,
    kubeconfig: &Path,
    database_url: &str,
    identity: &str,
    env: &[(&str, &str)],
) -> (Operator, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let mut env = env.to_vec();
    env.push(("WINDFLOW_PROBE_ADDRESS", address.as_str()));
    (start_operator_with(plane, kubeconfig, database_url, identity, &env), address)
}

/// Waits until the operator serving metrics at `address` has run at least `objects`
/// reconciles, none runs, and it has made no API write (but its Lease's) for 5 s; returns
/// how long that took. Reconciles alone never stop: objects waiting for an API that is not
/// installed look again every minute, and do not write.
pub async fn settle(address: &str, objects: usize, within: Duration) -> Duration {
    let total = |text: &str, metric: &str| samples(text, metric).iter().map(|(_, value)| value).sum::<f64>();
    let mut quiet_since = (f64::NAN, Instant::now());
    eventually("every object reconciled, and nothing written for 5 s", within, || {
        let seen = std::net::TcpStream::connect(address).ok().map(|_| {
            let text = get(address, "/metrics");
            (
                total(&text, "windflow_reconciles_total"),
                total(&text, "windflow_reconciles_in_flight"),
                api_writes_total(&text),
            )
        });
        let settled = match seen {
            Some((reconciles, 0.0, written)) if reconciles >= objects as f64 => {
                if written != quiet_since.0 {
                    quiet_since = (written, Instant::now());
                }
                quiet_since.1.elapsed() >= Duration::from_secs(5)
            }
            _ => false,
        };
        let outcome =
            if settled { Ok(()) } else { Err(format!("(reconciles, running, writes) {seen:?} for {objects} objects")) };
        async move { outcome }
    })
    .await
}

/// Waits until `check` holds, for at most `within`; returns how long it took.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(()) => return start.elapsed(),
            Err(why) => assert!(start.elapsed() < within, "{what} not within {within:?}: {why}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The workload cluster of the tests listens on loopback, which the default deny list refuses;
/// link-local (cloud metadata) stays refused. So do the API server's and the database's
/// addresses, loopback too here: the operators of the tests do not refuse their own endpoints
/// (`destination_checks::own_endpoints_are_found_and_refused` tests that on this control plane).
const PROBE_DENY: &str = "169.254.0.0/16,fe80::/10";

/// `windflow check` (or `resync`) with the operator's credentials; its exit status and output.
pub fn windflow(subcommand: &str, kubeconfig: &Path, database_url: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_windflow"))
        .arg(subcommand)
        .env("KUBECONFIG", kubeconfig)
        .env("DATABASE_URL", database_url)
        .env("WINDFLOW_PROBE_DENY", PROBE_DENY)
        .env("WINDFLOW_PROBE_DENY_OWN_ENDPOINTS", "false")
        .output()
        .expect("windflow runs");
    (output.status.success(), both(&output))
}

/// Removes the chart's webhook configurations.
pub async fn remove_webhooks(plane: &ControlPlane) {
    let client = plane.client().await;
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let _ = mutating.delete(RELEASE, &DeleteParams::default()).await;
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let _ = validating.delete(RELEASE, &DeleteParams::default()).await;
}

/// Clears what an earlier scenario may have left, also one that failed half way: the webhook
/// configurations (no operator serves them now), every WindFlow object (finalizers dropped: no
/// operator runs now), the namespaces WindFlow made, the Lease.
pub async fn reset(plane: &ControlPlane) {
    remove_webhooks(plane).await;
    let client = plane.client().await;
    for kind in windflow::kinds::KindId::ALL {
        let resource = kind.api_resource();
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let Ok(list) = api.list(&ListParams::default()).await else { continue };
        for obj in list.items {
            let scoped: Api<DynamicObject> = match obj.namespace() {
                Some(namespace) => Api::namespaced_with(client.clone(), &namespace, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let name = obj.name_any();
            let unfinalized = json!({ "metadata": { "finalizers": null } });
            let _ = scoped.patch(&name, &PatchParams::default(), &Patch::Merge(unfinalized)).await;
            let _ = scoped.delete(&name, &DeleteParams::default()).await;
        }
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let made = ListParams::default().labels("app.kubernetes.io/managed-by=windflow");
    for namespace in namespaces.list(&made).await.expect("namespaces").items {
        let _ = namespaces.delete(&namespace.name_any(), &DeleteParams::default()).await;
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), RELEASE_NAMESPACE);
    let _ = leases.delete("windflow-operator", &DeleteParams::default()).await;
    let mut clusters = vec![namespaces];
    // What an earlier scenario placed on the workload cluster, which outlives its operator.
    if let Some(workload) = crate::controlplane::started_workload_plane() {
        clusters.push(Api::all(workload.client().await));
    }
    for namespaces in clusters {
        for namespace in namespaces.list(&made).await.expect("namespaces").items {
            let _ = namespaces.delete(&namespace.name_any(), &DeleteParams::default()).await;
        }
        eventually("an empty cluster", Duration::from_secs(120), || {
            let namespaces = namespaces.clone();
            let made = made.clone();
            async move {
                let left = namespaces.list(&made).await.map_err(|e| e.to_string())?.items.len();
                (left == 0).then_some(()).ok_or(format!("{left} namespaces of WindFlow's left"))
            }
        })
        .await;
    }
}

/// Where Cluster API's `Cluster`s are served.
fn cluster_api_clusters() -> kube::api::ApiResource {
    windflow::provision::types::CAPI_CLUSTER.api_resource()
}

/// Installs Cluster API's `Cluster` CRD (from its Go module, as the third-party test does),
/// without its controllers: the tests play them ([`play_cluster_api`]).
pub async fn install_cluster_api(plane: &ControlPlane) {
    let crd = plane.bin.join("thirdparty/cluster.x-k8s.io_clusters.yaml");
    let mut apply = plane.kubectl();
    apply.args(["apply", "--server-side", "--force-conflicts", "-f"]).arg(&crd);
    run(apply);
    established(plane, ["clusters.cluster.x-k8s.io".to_owned()]).await;
}

/// Cluster API, played for every Cluster WindFlow applies on `plane`, while it lives.
pub struct ClusterApi(tokio::task::JoinHandle<()>);

impl Drop for ClusterApi {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Plays Cluster API as it would for a real cluster: for each `Cluster` WindFlow applies, the
/// kubeconfig Secret `<cluster>-kubeconfig` (key `value`) beside it, for `workload` with a
/// client certificate it trusts, then the Cluster's status Provisioned and Available.
pub async fn play_cluster_api(plane: &ControlPlane, workload: &ControlPlane) -> ClusterApi {
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;
    let client = plane.client().await;
    let kubeconfig = std::fs::read(&workload.kubeconfig).expect("the workload plane's kubeconfig");
    let resource = cluster_api_clusters();
    let cluster_api = PatchParams::apply("cluster-api").force();
    ClusterApi(tokio::spawn(async move {
        let clusters = Api::<DynamicObject>::all_with(client.clone(), &resource);
        loop {
            let listed = clusters.list(&ListParams::default()).await.map(|list| list.items).unwrap_or_default();
            for cluster in listed.iter().filter(|cluster| cluster.data["status"]["phase"] != "Provisioned") {
                let (namespace, name) = (cluster.namespace().unwrap_or_default(), cluster.name_any());
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(format!("{name}-kubeconfig")),
                        labels: Some([("cluster.x-k8s.io/cluster-name".to_owned(), name.clone())].into()),
                        ..Default::default()
                    },
                    type_: Some("cluster.x-k8s.io/secret".into()),
                    data: Some([("value".to_owned(), ByteString(kubeconfig.clone()))].into()),
                    ..Default::default()
                };
                let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
                let mut applied = serde_json::to_value(&secret).expect("a Secret");
                applied["apiVersion"] = "v1".into();
                applied["kind"] = "Secret".into();
                if secrets
                    .patch(&secret.metadata.name.clone().unwrap_or_default(), &cluster_api, &Patch::Apply(applied))
                    .await
                    .is_err()
                {
                    continue;
                }
                let now = k8s_openapi::jiff::Timestamp::now().to_string();
                let status = json!({ "apiVersion": resource.api_version, "kind": "Cluster", "status": {
                    "phase": "Provisioned",
                    "conditions": [{ "type": "Available", "status": "True", "reason": "Available",
                                     "message": "", "lastTransitionTime": now }],
                } });
                let api = Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, &resource);
                let _ = api.patch_status(&name, &cluster_api, &Patch::Apply(status)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }))
}

/// Waits until the API server serves the CRDs named. (`kubectl wait` fails outright when it
/// looks before the API server has written the CRD's first conditions.)
pub async fn established(plane: &ControlPlane, names: impl IntoIterator<Item = String>) {
    let crds: Api<CustomResourceDefinition> = Api::all(plane.client().await);
    for name in names {
        let served = await_condition(crds.clone(), &name, conditions::is_crd_established());
        match tokio::time::timeout(Duration::from_secs(60), served).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => panic!("watching CRD {name}: {error}"),
            Err(_) => panic!("CRD {name} not Established after 60 s"),
        }
    }
}
