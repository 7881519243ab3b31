//! The clusters children are applied to: the management cluster, with the operator's own
//! client, and workload clusters, each reached with its own credentials. One client per
//! workload cluster, cached, rebuilt when its Secret changes (rotation), dropped when the
//! cluster goes. The operator's credentials never leave the management cluster.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use kube::Client;
use tokio::task::AbortHandle;
use tracing::{info, warn};

use super::Destination;
use super::apply::Provider;
use super::probe::{
    Answers, Counted, Patience, ProbeError, counted_client, describe_server, pinned_config, read_kubeconfig,
};
use crate::metrics::ApiRequests;

/// How often connected workload clusters are asked whether they answer.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(20);
/// How long one such question may take.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a workload cluster's client is used without reading its kubeconfig Secret again:
/// a rotated kubeconfig whose old credentials still work is picked up within this, and the
/// Secret is read at most once per cluster in it, not once per reconcile of everything placed
/// there.
pub const KUBECONFIG_RECHECK: Duration = Duration::from_secs(5 * 60);
/// How long after its last read the Secret is read again once the cluster refused the
/// credentials (401): a rotation that revoked them is picked up within this, and credentials
/// that stay refused cost a read this often, not one per reconcile.
pub const REFUSED_RECHECK: Duration = Duration::from_secs(10);
/// The largest answer a workload cluster's requests read, in bytes: a tenant's cluster chooses
/// what it answers. Far above what the operator asks for (one object, a page of its children,
/// a large cluster's aggregated discovery of a few MiB). Watches are not bounded by it: a watch
/// is one answer as long as it lasts.
pub const WORKLOAD_RESPONSE_LIMIT: usize = 32 * 1024 * 1024;

/// Where a workload cluster's kubeconfig is, read from its ContainerCluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The Secret's namespace: Cluster API's Cluster's, or the tenant's own.
    pub namespace: String,
    pub secret: String,
    /// The keys that may hold the kubeconfig, in order.
    pub keys: &'static [&'static str],
}

/// Why a workload cluster cannot be used now.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// It is not there yet (a Cluster API cluster not Available, its kubeconfig not written):
    /// waited for.
    #[error("{0}")]
    NotReady(String),
    /// Its credentials are refused (not inline, an address of the deny list, no kubeconfig):
    /// users fix the Secret.
    #[error("{0}")]
    Refused(String),
    /// It does not answer.
    #[error("{cluster} does not answer: {message}")]
    Unreachable { cluster: String, message: String },
    /// Reading its Secret from the management cluster failed: retried with backoff.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// Starts what follows a newly connected cluster (the watches of its children); stopped when
/// the returned task is aborted.
pub type OnConnect = Box<dyn Fn(&Destination, Arc<Provider>) -> AbortHandle + Send + Sync>;
/// Told when a workload cluster connects, starts or stops answering.
pub type OnChange = Box<dyn Fn(&Destination) + Send + Sync>;

/// A connected workload cluster.
struct Connection {
    /// Where the kubeconfig was read from.
    credentials: Credentials,
    /// The resourceVersion of the Secret the client was built from.
    secret_version: String,
    /// When the Secret was last read and found at that version.
    read_at: Instant,
    provider: Arc<Provider>,
    /// How it answered the operator's requests.
    answers: Answers,
    /// Whether it answered the last health check, or a request since.
    answering: bool,
    /// Its child watches, stopped with the connection.
    _watching: Option<Watching>,
}

impl Connection {
    /// How long after its last read the Secret is trusted.
    fn recheck(&self) -> Duration {
        if self.answers.refused_after(self.read_at) { REFUSED_RECHECK } else { KUBECONFIG_RECHECK }
    }
}

struct Watching(AbortHandle);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every cluster children go to, by destination.
pub struct Clusters {
    management: Arc<Provider>,
    /// Addresses workload clusters' servers may not resolve to.
    deny: Vec<IpNet>,
    /// Where workload clusters' clients count their requests.
    requests: ApiRequests,
    connected: Mutex<HashMap<Destination, Connection>>,
    /// One read of the kubeconfig (and connect) at a time per cluster: the reconciles of
    /// everything placed on a cluster ask for it at once, and share the one read and client.
    connecting: Mutex<HashMap<Destination, Arc<tokio::sync::Mutex<()>>>>,
    on_connect: OnceLock<OnConnect>,
    on_change: OnceLock<OnChange>,
}

impl Clusters {
    pub fn new(management: Client, deny: Vec<IpNet>, requests: ApiRequests) -> Self {
        Self {
            management: Arc::new(Provider::new(management)),
            deny,
            requests,
            connected: Mutex::default(),
            connecting: Mutex::default(),
            on_connect: OnceLock::new(),
            on_change: OnceLock::new(),
        }
    }

    /// What starts with each connection, and what hears of changes; set once by the operator.
    pub fn set_hooks(&self, on_connect: OnConnect, on_change: OnChange) {
        let _ = self.on_connect.set(on_connect);
        let _ = self.on_change.set(on_change);
    }

    fn locked(&self) -> MutexGuard<'_, HashMap<Destination, Connection>> {
        self.connected.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The provider of `destination`; a workload cluster's is built from `credentials` (read
    /// with the operator's client, in the tenant's namespaces only) and kept until its Secret
    /// changes.
    pub async fn provider(
        &self,
        destination: &Destination,
        credentials: Option<&Credentials>,
    ) -> Result<Arc<Provider>, ClusterError> {
        let Destination::Workload { namespace, name } = destination else { return Ok(self.management.clone()) };
        let Some(credentials) = credentials else {
            return Err(ClusterError::NotReady(format!("{destination} is not available yet")));
        };
        if let Some(recent) = self.read_recently(destination, credentials) {
            return recent;
        }
        let turn = self
            .connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(destination.clone())
            .or_default()
            .clone();
        let _turn = turn.lock().await;
        // Read, or connected, while this one waited its turn.
        if let Some(recent) = self.read_recently(destination, credentials) {
            return recent;
        }
        let read =
            read_kubeconfig(self.management.client(), &credentials.namespace, &credentials.secret, credentials.keys)
                .await;
        let (kubeconfig, version) = match read {
            Ok(read) => read,
            Err(ProbeError::Kube(error)) => return Err(error.into()),
            Err(ProbeError::Refused(message)) => return Err(ClusterError::Refused(message)),
            // A Secret deleted with its namespace (everything deleted at once): the client it
            // made serves until the ContainerCluster goes, so that what runs there is released.
            Err(ProbeError::Unreachable(message)) => {
                return self.connected(destination).ok_or(ClusterError::NotReady(message));
            }
        };
        if let Some(current) = self.current(destination, credentials, &version) {
            return current;
        }
        let what = format!("{destination} ({})", describe_server(&kubeconfig));
        let answers = Answers::default();
        let counted = Counted {
            requests: &self.requests,
            cluster: &format!("{namespace}/{name}"),
            answers: Some(&answers),
            response_limit: None,
        };
        let cannot_connect = |error| match error {
            ProbeError::Refused(message) => ClusterError::Refused(message),
            other => ClusterError::Unreachable { cluster: destination.to_string(), message: other.to_string() },
        };
        let config = pinned_config(kubeconfig, &what, &self.deny).await.map_err(cannot_connect)?;
        let limited = Counted { response_limit: Some(WORKLOAD_RESPONSE_LIMIT), ..counted };
        let client = counted_client(config.clone(), &what, Patience::Reconcile, limited).map_err(cannot_connect)?;
        let watch_client = counted_client(config, &what, Patience::Watch, counted).map_err(cannot_connect)?;
        let provider = Arc::new(Provider::remote(client, watch_client));
        let watching = self.on_connect.get().map(|start| Watching(start(destination, provider.clone())));
        let connection = Connection {
            credentials: credentials.clone(),
            secret_version: version,
            read_at: Instant::now(),
            provider: provider.clone(),
            answers,
            answering: true,
            _watching: watching,
        };
        let replaced = self.locked().insert(destination.clone(), connection).is_some();
        info!(cluster = %destination, rotated = replaced, "connected to a workload cluster");
        self.changed(destination);
        Ok(provider)
    }

    /// The connection made from `credentials` whose Secret was read less than
    /// [`KUBECONFIG_RECHECK`] ago ([`REFUSED_RECHECK`] once the cluster refused its
    /// credentials since), if there is one.
    fn read_recently(
        &self,
        destination: &Destination,
        credentials: &Credentials,
    ) -> Option<Result<Arc<Provider>, ClusterError>> {
        let connected = self.locked();
        let connection = connected
            .get(destination)
            .filter(|c| c.credentials == *credentials && c.read_at.elapsed() < c.recheck())?;
        Some(Self::use_of(destination, connection))
    }

    /// The connection made from `credentials` at `version`, if there is one, now known current.
    fn current(
        &self,
        destination: &Destination,
        credentials: &Credentials,
        version: &str,
    ) -> Option<Result<Arc<Provider>, ClusterError>> {
        let mut connected = self.locked();
        let connection =
            connected.get_mut(destination).filter(|c| c.credentials == *credentials && c.secret_version == version)?;
        connection.read_at = Instant::now();
        Some(Self::use_of(destination, connection))
    }

    /// A connection's provider, or that it did not answer the last health check. What the
    /// health checks found is not asked again: a hung server would hold every reconcile placed
    /// on it for a read timeout.
    fn use_of(destination: &Destination, connection: &Connection) -> Result<Arc<Provider>, ClusterError> {
        if connection.answering {
            Ok(connection.provider.clone())
        } else {
            Err(ClusterError::Unreachable {
                cluster: destination.to_string(),
                message: format!("its API server did not answer within {HEALTH_TIMEOUT:?}"),
            })
        }
    }

    /// The management cluster's provider.
    pub fn management(&self) -> &Arc<Provider> {
        &self.management
    }

    /// The provider of a connected cluster, if it is connected (the management cluster always is).
    pub fn connected(&self, destination: &Destination) -> Option<Arc<Provider>> {
        match destination {
            Destination::Management => Some(self.management.clone()),
            workload => self.locked().get(workload).map(|connection| connection.provider.clone()),
        }
    }

    /// Forgets a workload cluster whose ContainerCluster is gone: its client and watches stop.
    pub fn forget(&self, destination: &Destination) {
        self.connecting.lock().unwrap_or_else(PoisonError::into_inner).remove(destination);
        if self.locked().remove(destination).is_some() {
            info!(cluster = %destination, "disconnected from a workload cluster");
        }
    }

    /// Asks every connected workload cluster whether it answers, every [`HEALTH_INTERVAL`],
    /// and tells of each that starts or stops answering: objects placed on one that stopped
    /// turn `ClusterUnreachable` within that interval (and a quarter), and converge when it is
    /// back. A cluster that answered any request within the interval is not asked: it answers,
    /// and a busy cluster is asked nothing more.
    pub async fn watch_health(&self) {
        let mut asked: HashMap<Destination, Instant> = HashMap::new();
        loop {
            tokio::time::sleep(HEALTH_INTERVAL / 4).await;
            let clusters: Vec<(Destination, Arc<Provider>, Answers)> =
                self.locked().iter().map(|(d, c)| (d.clone(), c.provider.clone(), c.answers.clone())).collect();
            asked.retain(|destination, _| clusters.iter().any(|(d, ..)| d == destination));
            for (destination, provider, answers) in clusters {
                let recently_asked = asked.get(&destination).is_some_and(|at| at.elapsed() < HEALTH_INTERVAL);
                let answering = if answers.within(HEALTH_INTERVAL) {
                    true
                } else if recently_asked {
                    continue;
                } else {
                    asked.insert(destination.clone(), Instant::now());
                    let answer = tokio::time::timeout(HEALTH_TIMEOUT, provider.client().apiserver_version()).await;
                    matches!(answer, Ok(Ok(_)))
                };
                let flipped = self
                    .locked()
                    .get_mut(&destination)
                    .is_some_and(|c| std::mem::replace(&mut c.answering, answering) != answering);
                if flipped {
                    if answering {
                        info!(cluster = %destination, "a workload cluster answers again");
                    } else {
                        warn!(cluster = %destination, "a workload cluster does not answer");
                    }
                    self.changed(&destination);
                }
            }
        }
    }

    fn changed(&self, destination: &Destination) {
        if let Some(tell) = self.on_change.get() {
            tell(destination);
        }
    }
}

/// Whether a failed request means the cluster did not answer, rather than answering no.
pub fn did_not_answer(error: &kube::Error) -> bool {
    !matches!(error, kube::Error::Api(_))
}
