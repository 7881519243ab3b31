//! Health checks of clusters WindFlow does not create: an existing Kubernetes cluster given by
//! a kubeconfig Secret, or a Docker or Swarm engine. What they report becomes the cluster's
//! status and its ContainerNode objects.
//!
//! Both speak HTTP(S) through a kube `Client` built for the endpoint: it already does TLS with
//! a CA and a client certificate from PEM, and timeouts.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::destination::{self, not_inline};
use crate::metrics::ApiRequests;

/// Seed `node_role_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Master,
    #[default]
    Worker,
    Manager,
}

/// No reconcile waits longer than this for a cluster that does not answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reconcile's request to a workload cluster waits for an answer: far shorter than
/// kube's default, so that a hung cluster does not hold what is placed there for long.
const RECONCILE_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a workload cluster's watch client waits for a byte: longer than kube's watcher
/// waits for an event before it opens the watch again (its server-side timeout, 290 s, and a
/// margin), so that the watcher, not the connection, decides when a quiet watch is dead.
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(300);

/// Where to look, read from the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeTarget {
    /// An existing Kubernetes cluster: the kubeconfig in a Secret (key `value`, as Cluster API
    /// writes them, or `kubeconfig`).
    Kubeconfig { namespace: String, secret: String },
    /// A Docker Engine API endpoint; with `swarm`, its swarm's nodes are reported. TLS material
    /// (`ca.pem`, `cert.pem`, `key.pem`, as Docker names them) comes from an optional Secret.
    Engine { url: String, swarm: bool, tls: Option<(String, String)> },
}

/// How much a health check takes from what it checks: a tenant's endpoint chooses what it
/// answers, and must not make the operator (or the standby after it) run out of memory or
/// apply a ContainerNode per node of a made-up cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeLimits {
    /// The largest answer read, in bytes: a larger one fails the check.
    pub response_bytes: usize,
    /// The most nodes reported; a cluster with more says so in its Ready condition.
    pub nodes: usize,
}

impl Default for ProbeLimits {
    fn default() -> Self {
        Self { response_bytes: 1024 * 1024, nodes: 1000 }
    }
}

/// Nodes listed per request: small enough that a page of real nodes (a few kilobytes each,
/// their images listed) stays well under the response limit.
const NODE_PAGE: u32 = 50;

/// What a probe saw.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterReport {
    /// `Kubernetes v1.33.1`, `Docker 27.3.1`.
    pub version: String,
    pub nodes: Vec<NodeReport>,
    /// The cluster has more nodes than [`ProbeLimits::nodes`]: only that many are reported.
    pub more_nodes: bool,
}

impl ClusterReport {
    /// A report of `nodes`, the first `limit` of them kept.
    fn of(version: String, mut nodes: Vec<NodeReport>, limit: usize) -> Self {
        let more_nodes = nodes.len() > limit;
        nodes.truncate(limit);
        Self { version, nodes, more_nodes }
    }

    pub fn ready_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.ready).count()
    }
}

/// One node as the cluster reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeReport {
    pub name: String,
    pub address: Option<String>,
    pub role: NodeRole,
    pub ready: bool,
    /// When the node last reported itself (RFC 3339), as its cluster tells.
    pub heartbeat: Option<String>,
    pub cpu_cores: Option<i32>,
    pub memory_gb: Option<f64>,
    /// Operating system, runtime and agent versions.
    pub details: Map<String, Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The cluster cannot be reached or its credentials are missing: users fix it, the check
    /// is repeated.
    #[error("{0}")]
    Unreachable(String),
    /// What the Secret asks the operator to follow is refused (a command, a file, a proxy, a
    /// denied address): users fix the Secret or the spec.
    #[error("{0}")]
    Refused(String),
    /// Reading the Secret from this cluster failed: retried with backoff.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Runs the health check; `client` is the operator's own, to read Secrets; destinations in
/// `deny` are refused; what the cluster answers is read within `limits`; its requests are
/// counted in `requests`.
pub async fn probe(
    client: &Client,
    target: &ProbeTarget,
    deny: &[IpNet],
    limits: &ProbeLimits,
    requests: &ApiRequests,
) -> Result<ClusterReport, ProbeError> {
    match target {
        ProbeTarget::Kubeconfig { namespace, secret } => {
            let (kubeconfig, _) = read_kubeconfig(client, namespace, secret, &["value", "kubeconfig"]).await?;
            let cluster = format!("probe {namespace}/{secret}");
            let counted =
                Counted { requests, cluster: &cluster, answers: None, response_limit: Some(limits.response_bytes) };
            kubernetes(kubeconfig, deny, limits.nodes, counted).await
        }
        ProbeTarget::Engine { url, swarm, tls } => {
            let tls = match tls {
                Some((namespace, name)) => Some(secret_data(client, namespace, name).await?.0),
                None => None,
            };
            let cluster = format!("probe {url}");
            let counted =
                Counted { requests, cluster: &cluster, answers: None, response_limit: Some(limits.response_bytes) };
            engine(url, *swarm, tls.as_ref(), deny, limits.nodes, counted).await
        }
    }
}

fn unreachable(message: String) -> ProbeError {
    ProbeError::Unreachable(message)
}

/// A request to a tenant's endpoint that failed, `doing` what, in the operator's own words.
fn failed(what: &str, doing: &str, error: &kube::Error) -> ProbeError {
    unreachable(format!("{what}: {doing}: {}", why_failed(error)))
}

/// Why a request failed: an HTTP status or what failed on the way, in fixed words. Never what
/// the endpoint sent: an error body, or a body that is not what was asked for, is the tenant's
/// to choose, and messages are read by whoever may read the object.
pub fn why_failed(error: &kube::Error) -> String {
    match error {
        // The code is the one the error body gives: a number, and one of an error, or none.
        kube::Error::Api(status) if (400..600).contains(&status.code) => {
            return format!("answered HTTP {}", status.code);
        }
        kube::Error::Api(_) => return "answered an error".into(),
        kube::Error::SerdeError(_) | kube::Error::FromUtf8(_) => return "answered something else than asked".into(),
        _ => {}
    }
    why_broke_off(error)
}

/// What failed on the way to an endpoint or back, in fixed words, from the causes of `error`.
fn why_broke_off(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            return "answered more than the response limit".into();
        }
        if error.downcast_ref::<tokio::time::error::Elapsed>().is_some() {
            return "timed out".into();
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                // How rustls reports a certificate it does not trust.
                std::io::ErrorKind::InvalidData => {
                    "TLS failed: its certificate is not the CA's, or not for its address".into()
                }
                kind => format!("cannot connect: {kind}"),
            };
        }
        cause = error.source();
    }
    "cannot connect".into()
}

/// What part of a kubeconfig cannot be loaded, in fixed words: the kubeconfig is a Secret's.
fn kubeconfig_fault(error: &kube::config::KubeconfigError) -> &'static str {
    use kube::config::KubeconfigError as E;
    match error {
        E::CurrentContextNotSet | E::LoadContext(_) | E::LoadClusterOfContext(_) => {
            "no current context and its cluster"
        }
        E::MissingClusterUrl | E::ParseClusterUrl(_) => "no server URL",
        E::LoadCertificateAuthority(_) | E::ParseCertificates(_) => "certificate-authority-data cannot be loaded",
        E::LoadClientCertificate(_) | E::LoadClientKey(_) => "client certificate or key cannot be loaded",
        _ => "cannot be loaded",
    }
}

/// A Secret's data and its resourceVersion.
async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(std::collections::BTreeMap<String, Vec<u8>>, String), ProbeError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
        .ok_or_else(|| unreachable(format!("Secret {namespace}/{name} does not exist")))?;
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    Ok((secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect(), version))
}

/// The kubeconfig under the first of `keys` of a tenant's Secret, and the Secret's
/// resourceVersion, once it holds only inline credentials: nothing it names is run or read.
pub async fn read_kubeconfig(
    client: &Client,
    namespace: &str,
    secret: &str,
    keys: &[&str],
) -> Result<(Kubeconfig, String), ProbeError> {
    let (data, version) = secret_data(client, namespace, secret).await?;
    let (key, kubeconfig) = keys
        .iter()
        .find_map(|key| data.get(*key).map(|value| (key, value)))
        .ok_or_else(|| unreachable(format!("Secret {namespace}/{secret} has no key {}", keys.join(" or "))))?;
    let kubeconfig = kubeconfig_from(kubeconfig)
        .map_err(|why| ProbeError::Refused(format!("Secret {namespace}/{secret}: key {key}: {why}")))?;
    if let Some(field) = not_inline(&kubeconfig) {
        return Err(ProbeError::Refused(format!(
            "Secret {namespace}/{secret}: kubeconfig {field}: only inline credentials are followed \
             (server, certificate-authority-data, client-certificate-data, client-key-data, token)"
        )));
    }
    Ok((kubeconfig, version))
}

/// A kubeconfig from a Secret's value; why not, naming at most a line, never a piece of it.
fn kubeconfig_from(value: &[u8]) -> Result<Kubeconfig, String> {
    let text = std::str::from_utf8(value).map_err(|_| "not UTF-8 text".to_owned())?;
    Kubeconfig::from_yaml(text).map_err(|_| {
        // kube's parser says where in words that quote the text: serde_yaml's location alone.
        let line = serde_yaml::from_str::<Kubeconfig>(text).err().and_then(|e| e.location()).map(|at| at.line());
        match line {
            Some(line) => format!("not a kubeconfig (line {line})"),
            None => "not a kubeconfig".to_owned(),
        }
    })
}

/// How long a client waits: a health check is short in everything; a workload cluster's clients
/// connect quickly, and read as long as a reconcile may wait, or as a watch lasts. A watch
/// renewed only as often as kube's default (290 s) costs a cluster a request per child type
/// every five minutes, not every minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Patience {
    Probe,
    Reconcile,
    Watch,
}

/// Where a client's requests are counted, and as sent to which cluster.
#[derive(Clone, Copy)]
pub struct Counted<'a> {
    pub requests: &'a ApiRequests,
    pub cluster: &'a str,
    /// Told of every answer, if someone wants to know.
    pub answers: Option<&'a Answers>,
    /// The largest answer read, in bytes, if any.
    pub response_limit: Option<usize>,
}

/// How a cluster answered the operator's requests: when it last answered (while reconciles
/// talk to it, nobody need ask it whether it answers), and when it last refused the
/// credentials (401: a rotated kubeconfig whose old credentials no longer work).
#[derive(Clone, Debug, Default)]
pub struct Answers(Arc<Mutex<Heard>>);

#[derive(Debug, Default)]
struct Heard {
    answered: Option<Instant>,
    refused: Option<Instant>,
}

impl Answers {
    /// An answer with `status`: a server error says nothing of the server being there and
    /// serving.
    fn heard(&self, status: http::StatusCode) {
        let mut heard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if status == http::StatusCode::UNAUTHORIZED {
            heard.refused = Some(now);
        }
        if !status.is_server_error() {
            heard.answered = Some(now);
        }
    }

    /// Whether the cluster answered within `interval`.
    pub fn within(&self, interval: Duration) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).answered.is_some_and(|at| at.elapsed() < interval)
    }

    /// Whether the cluster refused the credentials after `since`.
    pub fn refused_after(&self, since: Instant) -> bool {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).refused.is_some_and(|at| at > since)
    }
}

/// A client for the endpoint a kubeconfig describes, connecting to the address its host
/// resolved to once that address passed `deny`.
pub async fn client_for(
    kubeconfig: Kubeconfig,
    what: &str,
    deny: &[IpNet],
    patience: Patience,
    counted: Counted<'_>,
) -> Result<Client, ProbeError> {
    let config = pinned_config(kubeconfig, what, deny).await?;
    counted_client(config, what, patience, counted)
}

/// The configuration of a client for the endpoint a kubeconfig describes, pinned to the address
/// its host resolved to once that address passed `deny`.
pub async fn pinned_config(kubeconfig: Kubeconfig, what: &str, deny: &[IpNet]) -> Result<Config, ProbeError> {
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| ProbeError::Refused(format!("{what}: the kubeconfig's {}", kubeconfig_fault(&e))))?;
    let refused = |e: destination::Refused| ProbeError::Refused(format!("{what}: {e}"));
    let address = destination::pinned(&config.cluster_url, deny).await.map_err(refused)?;
    if let Some(host) = config.cluster_url.host().filter(|host| host.parse::<std::net::IpAddr>().is_err()) {
        config.tls_server_name = Some(host.to_owned());
    }
    config.cluster_url = destination::with_address(&config.cluster_url, address).map_err(refused)?;
    config.connect_timeout = Some(TIMEOUT);
    config.write_timeout = Some(TIMEOUT);
    Ok(config)
}

/// A client of a pinned configuration, as patient as `patience`, whose requests are counted.
pub fn counted_client(
    mut config: Config,
    what: &str,
    patience: Patience,
    counted: Counted<'_>,
) -> Result<Client, ProbeError> {
    // kube retries 429 and 503 answers up to 15 times, as long as their Retry-After says: a
    // tenant's endpoint would hold a reconcile as long as it likes. The reconcile retries.
    config.default_retry = false;
    config.read_timeout = Some(match patience {
        Patience::Probe => TIMEOUT,
        Patience::Reconcile => RECONCILE_READ_TIMEOUT,
        Patience::Watch => WATCH_READ_TIMEOUT,
    });
    let answers = counted.answers.cloned();
    let on_answer = move |status| answers.iter().for_each(|answers| answers.heard(status));
    counted
        .requests
        .client(config, counted.cluster, counted.response_limit, on_answer)
        .map_err(|_| ProbeError::Refused(format!("{what}: its TLS material cannot be loaded")))
}

/// What a kubeconfig's first cluster is called in messages.
pub fn describe_server(kubeconfig: &Kubeconfig) -> String {
    let server = kubeconfig.clusters.first().and_then(|c| c.cluster.as_ref()).and_then(|c| c.server.clone());
    format!("the cluster at {}", server.as_deref().unwrap_or("(no server)"))
}

async fn kubernetes(
    kubeconfig: Kubeconfig,
    deny: &[IpNet],
    node_limit: usize,
    counted: Counted<'_>,
) -> Result<ClusterReport, ProbeError> {
    let what = describe_server(&kubeconfig);
    let remote = client_for(kubeconfig, &what, deny, Patience::Probe, counted).await?;
    let version = remote.apiserver_version().await.map_err(|e| failed(&what, "version", &e))?;
    let api = Api::<Node>::all(remote);
    let mut nodes = vec![];
    let mut page = ListParams::default().limit(NODE_PAGE);
    // Pages until one more node than the limit: enough to know there are more.
    while nodes.len() <= node_limit {
        let list = api.list(&page).await.map_err(|e| failed(&what, "cannot list nodes", &e))?;
        nodes.extend(list.items.iter().map(kubernetes_node));
        match list.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => page = page.continue_token(&token),
            None => break,
        }
    }
    Ok(ClusterReport::of(format!("Kubernetes {}", version.git_version), nodes, node_limit))
}

fn kubernetes_node(node: &Node) -> NodeReport {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let control_plane = ["node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"]
        .iter()
        .any(|label| labels.contains_key(*label));
    let status = node.status.clone().unwrap_or_default();
    let conditions = status.conditions.unwrap_or_default();
    let ready_condition = conditions.iter().find(|c| c.type_ == "Ready");
    let ready = ready_condition.is_some_and(|c| c.status == "True");
    let heartbeat = ready_condition.and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0.to_string());
    let address = status.addresses.unwrap_or_default().into_iter().find(|a| a.type_ == "InternalIP").map(|a| a.address);
    let capacity = status.capacity.unwrap_or_default();
    let info = status.node_info;
    let mut details = Map::new();
    if let Some(info) = info {
        details.insert("osImage".into(), info.os_image.into());
        details.insert("kubeletVersion".into(), info.kubelet_version.into());
        details.insert("containerRuntime".into(), info.container_runtime_version.into());
        details.insert("architecture".into(), info.architecture.into());
    }
    NodeReport {
        name: node.metadata.name.clone().unwrap_or_default(),
        address,
        role: if control_plane { NodeRole::Master } else { NodeRole::Worker },
        ready,
        heartbeat,
        cpu_cores: capacity.get("cpu").and_then(|q| q.0.parse().ok()),
        memory_gb: capacity.get("memory").and_then(|q| gigabytes(&q.0)),
        details,
    }
}

/// A memory quantity (`32Gi`, `16G`, `33554432Ki`, bytes) in decimal gigabytes, as the seed
/// counts them.
fn gigabytes(quantity: &str) -> Option<f64> {
    let split = quantity.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let factor: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(decimal_gigabytes(number.parse::<f64>().ok()? * factor))
}

/// Bytes as decimal gigabytes with two decimals, as the seed's DECIMAL columns hold them.
fn decimal_gigabytes(bytes: f64) -> f64 {
    (bytes / 1e9 * 100.0).round() / 100.0
}

/// The parts of Docker's `GET /info` read here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EngineInfo {
    name: String,
    server_version: String,
    #[serde(rename = "NCPU")]
    ncpu: Option<i32>,
    mem_total: Option<f64>,
    operating_system: Option<String>,
    swarm: Option<SwarmInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SwarmInfo {
    local_node_state: String,
    control_available: Option<bool>,
}

/// The parts of Docker's `GET /nodes` read here.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SwarmNode {
    #[serde(rename = "ID")]
    id: String,
    description: Option<Value>,
    spec: Option<Value>,
    status: Option<Value>,
    /// When the swarm last updated the node, its heartbeats included.
    updated_at: Option<String>,
}

async fn engine(
    url: &str,
    swarm: bool,
    tls: Option<&std::collections::BTreeMap<String, Vec<u8>>>,
    deny: &[IpNet],
    node_limit: usize,
    counted: Counted<'_>,
) -> Result<ClusterReport, ProbeError> {
    let what = format!("the engine at {url}");
    let remote = client_for(engine_kubeconfig(url, tls), &what, deny, Patience::Probe, counted).await?;
    let fail = |e: &dyn std::fmt::Display| unreachable(format!("{what}: {e}"));
    let pong = engine_get(&remote, &what, "/_ping", |body| Some(body.trim_ascii() == b"OK")).await?;
    if !pong {
        return Err(fail(&"/_ping did not answer OK: not a Docker engine"));
    }
    let info: EngineInfo = engine_get(&remote, &what, "/info", |body| serde_json::from_slice(body).ok()).await?;
    let version = format!("Docker {}", info.server_version);
    if !swarm {
        let node = NodeReport {
            name: info.name.clone(),
            address: None,
            role: NodeRole::Worker,
            ready: true,
            // The engine itself answered, just now.
            heartbeat: Some(k8s_openapi::jiff::Timestamp::now().to_string()),
            cpu_cores: info.ncpu,
            memory_gb: info.mem_total.map(decimal_gigabytes),
            details: Map::from_iter([("os".to_owned(), json!(info.operating_system))]),
        };
        return Ok(ClusterReport::of(version, vec![node], node_limit));
    }
    let swarm_info = info.swarm.as_ref();
    if swarm_info.map(|s| s.local_node_state.as_str()) != Some("active") {
        return Err(fail(&"the engine is not part of a swarm"));
    }
    if swarm_info.and_then(|s| s.control_available) != Some(true) {
        return Err(fail(&"the engine is not a swarm manager: it cannot list the swarm's nodes"));
    }
    let nodes: Vec<SwarmNode> = engine_get(&remote, &what, "/nodes", |body| serde_json::from_slice(body).ok()).await?;
    Ok(ClusterReport::of(version, nodes.iter().map(swarm_node).collect(), node_limit))
}

/// `GET path` of an engine, its body read by `read` once the engine answered 2xx, within the
/// response limit. What failed, in fixed words: the status as the answer says it, not as its
/// body does.
async fn engine_get<T>(
    remote: &Client,
    what: &str,
    path: &str,
    read: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, ProbeError> {
    let fail = |why: String| unreachable(format!("{what}: {path}: {why}"));
    let request =
        http::Request::get(path).body(kube::client::Body::empty()).map_err(|_| fail("not a request path".into()))?;
    let response = remote.send(request).await.map_err(|e| fail(why_failed(&e)))?;
    if !response.status().is_success() {
        return Err(fail(format!("answered HTTP {}", response.status().as_u16())));
    }
    let body = http_body_util::BodyExt::collect(response.into_body()).await.map_err(|e| fail(why_broke_off(&e)))?;
    read(&body.to_bytes()).ok_or_else(|| fail("answered something else than asked".into()))
}

fn swarm_node(node: &SwarmNode) -> NodeReport {
    let at = |value: &Option<Value>, pointer: &str| value.as_ref().and_then(|v| v.pointer(pointer)).cloned();
    let text = |value: &Option<Value>, pointer: &str| at(value, pointer).and_then(|v| v.as_str().map(str::to_owned));
    let manager = text(&node.spec, "/Role").as_deref() == Some("manager");
    let mut details = Map::new();
    details.insert("swarmNodeId".into(), node.id.clone().into());
    if let Some(os) = text(&node.description, "/Platform/OS") {
        details.insert("os".into(), os.into());
    }
    if let Some(engine) = text(&node.description, "/Engine/EngineVersion") {
        details.insert("engineVersion".into(), engine.into());
    }
    NodeReport {
        name: text(&node.description, "/Hostname").unwrap_or_else(|| node.id.clone()),
        address: text(&node.status, "/Addr"),
        role: if manager { NodeRole::Manager } else { NodeRole::Worker },
        ready: text(&node.status, "/State").as_deref() == Some("ready"),
        heartbeat: node.updated_at.clone(),
        cpu_cores: at(&node.description, "/Resources/NanoCPUs")
            .and_then(|v| v.as_f64())
            .map(|nano| (nano / 1e9).round() as i32),
        memory_gb: at(&node.description, "/Resources/MemoryBytes").and_then(|v| v.as_f64()).map(decimal_gigabytes),
        details,
    }
}

/// A kubeconfig naming the engine as its server, so that TLS goes through kube's client.
fn engine_kubeconfig(url: &str, tls: Option<&std::collections::BTreeMap<String, Vec<u8>>>) -> Kubeconfig {
    let encode =
        |key: &str| tls.and_then(|data| data.get(key)).map(|pem| base64::engine::general_purpose::STANDARD.encode(pem));
    let mut cluster = json!({ "server": url });
    if let Some(ca) = encode("ca.pem") {
        cluster["certificate-authority-data"] = ca.into();
    }
    let mut user = json!({});
    if let (Some(cert), Some(key)) = (encode("cert.pem"), encode("key.pem")) {
        user = json!({ "client-certificate-data": cert, "client-key-data": key });
    }
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config", "current-context": "engine",
        "clusters": [{ "name": "engine", "cluster": cluster }],
        "users": [{ "name": "engine", "user": user }],
        "contexts": [{ "name": "engine", "context": { "cluster": "engine", "user": "engine" } }],
    });
    serde_json::from_value(kubeconfig).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_quantities_in_decimal_gigabytes() {
        assert_eq!(gigabytes("32Gi"), Some(34.36));
        assert_eq!(gigabytes("16G"), Some(16.0));
        assert_eq!(gigabytes("33554432Ki"), Some(34.36));
        assert_eq!(gigabytes("1000000000"), Some(1.0));
        assert_eq!(gigabytes("12Qi"), None);
    }

    #[test]
    fn engine_tls_material_becomes_a_kubeconfig() {
        let tls = [("ca.pem", "CA"), ("cert.pem", "CERT"), ("key.pem", "KEY")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
            .collect();
        let kubeconfig = engine_kubeconfig("https://10.0.0.5:2376", Some(&tls));
        let cluster = kubeconfig.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.5:2376"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().expect("user");
        assert_eq!(user.client_certificate_data.as_deref(), Some("Q0VSVA=="));
    }
}
