//! The `windflow` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::admission::Identities;
use crate::admission::certificate::Issuing;
use crate::provision::probe::ProbeLimits;
use crate::provision::{self, Config, Rollouts, TrafficAnnotations};

/// WindFlow: a multi-tenant deployment platform as a Kubernetes operator.
#[derive(Parser, Debug)]
#[command(name = "windflow", version, about)]
pub struct Cli {
    /// Log filter, as RUST_LOG (e.g. `info,windflow=debug`).
    #[arg(long, env = "WINDFLOW_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log format.
    #[arg(long, env = "WINDFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
#[expect(clippy::large_enum_variant, reason = "parsed once at startup: boxing would buy nothing")]
pub enum Command {
    /// Run the operator: apply migrations, then reconcile every WindFlow kind. Uses KUBECONFIG
    /// or the in-cluster configuration.
    Run(RunArgs),
    /// Print every CRD as YAML (or write one file per kind into a directory, or apply them).
    Crds {
        /// Write `<plural>.windflow.io.yaml` files here instead of printing.
        #[arg(long, conflicts_with = "apply")]
        out_dir: Option<PathBuf>,
        /// Server-side apply them to the cluster (KUBECONFIG or in-cluster) as the field manager
        /// `windflow-crds`, taking over the fields an earlier install set: the chart's
        /// pre-upgrade hook.
        #[arg(long)]
        apply: bool,
    },
    /// Check an installed WindFlow, as the chart's `helm test` does: the operator answers its
    /// readiness probe, and the API server (KUBECONFIG or in-cluster) serves every WindFlow
    /// kind. Exits with 1, saying what is wrong, when either is not so.
    Selftest {
        /// The operator's readiness URL, such as `http://windflow-metrics.windflow-system:8080/readyz`.
        #[arg(long)]
        readyz: String,
    },
    /// Apply the database migrations and exit: as the migration role, which owns the schema.
    Migrate(MigrateArgs),
    /// Print the ClusterRole a workload cluster grants to the identity of the kubeconfig
    /// WindFlow reaches it with: what the children placed there need, nothing more.
    WorkloadRbac,
    /// Offline, with no cluster and no database: validate manifests (schema, CEL rules,
    /// references, tenancy) and print, as YAML, every Kubernetes object they would provision.
    /// Exits with 1 and one line per problem when a manifest is bad.
    Render(RenderArgs),
    /// Compare every WindFlow object in the cluster with its rows (existence, resourceVersion,
    /// columns, join tables) and rows whose object is gone; print each difference and exit with
    /// 1 when there is any.
    /// Its children are compared too, on every cluster they are placed on: missing, holding
    /// other values than the object asks for, or left over.
    Check(CheckArgs),
    /// Rebuild the database from the cluster: mirror every object, delete rows whose object is
    /// gone (each with a `delete` audit row). `check` reports nothing afterwards.
    Resync(DatabaseArgs),
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// As the operator runs with (the same environment variables), so that children are
    /// built as it builds them.
    #[command(flatten)]
    pub provision: ProvisionArgs,
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// Manifest files, directories of `.yaml`/`.yml` files, or `-` for standard input.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub provision: ProvisionArgs,
}

/// How the cluster provides what objects ask for (the chart's values).
#[derive(clap::Args, Debug, Default)]
pub struct ProvisionArgs {
    /// StorageClass of a volume type, as `TYPE=CLASS` (e.g. `ceph=rook-ceph-block`); repeat
    /// for each type. Unmapped types use the cluster's default StorageClass.
    #[arg(long = "storage-class", value_parser = parse_mapping, env = "WINDFLOW_STORAGE_CLASSES", value_delimiter = ',')]
    pub storage_classes: Vec<(String, String)>,
    /// IngressClass of http gateways (none: the cluster's default).
    #[arg(long, env = "WINDFLOW_INGRESS_CLASS")]
    pub ingress_class: Option<String>,
    /// cert-manager ClusterIssuer for `autoSsl`.
    #[arg(long, env = "WINDFLOW_CLUSTER_ISSUER", default_value = provision::DEFAULT_CLUSTER_ISSUER)]
    pub cluster_issuer: String,
    /// The Gateway API Gateway (`namespace/name`) that routes attach to.
    #[arg(long, env = "WINDFLOW_GATEWAY_PARENT", default_value = provision::DEFAULT_GATEWAY_PARENT)]
    pub gateway_parent: String,
    /// Annotations of gateways' routes per balancing strategy and for `rate_limit`, as JSON:
    /// `{"least_conn": {"example.org/lb": "least_conn"}, "rate_limit": {"example.org/rps":
    /// "{requestsPerSecond}"}}`. Strategies other than round_robin, and rate limits, need them.
    #[arg(long, env = "WINDFLOW_TRAFFIC_ANNOTATIONS", value_parser = parse_traffic_annotations)]
    pub traffic_annotations: Option<TrafficAnnotations>,
    /// How the cluster's pod network encrypts traffic (such as `wireguard`), if it does: only
    /// then are networks that ask for encryption provisioned.
    #[arg(long, env = "WINDFLOW_POD_NETWORK_ENCRYPTION")]
    pub pod_network_encryption: Option<String>,
    /// The one namespace whose Secrets Users' `passwordSecretRef` may name (the chart's release
    /// namespace).
    #[arg(long, env = "WINDFLOW_USER_SECRET_NAMESPACE", default_value = provision::DEFAULT_USER_SECRET_NAMESPACE)]
    pub user_secret_namespace: String,
    /// The database's address as tenants reach it, in their login's Secret (default: the
    /// operator's own, from its database URL).
    #[arg(long, env = "WINDFLOW_TENANT_DATABASE_HOST")]
    pub tenant_database_host: Option<String>,
    /// Addresses (CIDRs) that health checks and workload clusters are never reached at; the
    /// default is loopback, link-local and the cloud metadata services. The unspecified
    /// addresses (`0.0.0.0/8`, `::/128`) are refused whatever this says.
    #[arg(long = "probe-deny", env = "WINDFLOW_PROBE_DENY", value_delimiter = ',', default_values = provision::destination::DEFAULT_DENY)]
    pub probe_deny: Vec<ipnet::IpNet>,
    /// The largest answer a health check reads, in bytes: a larger one fails the check.
    #[arg(long, env = "WINDFLOW_PROBE_RESPONSE_LIMIT_BYTES", default_value_t = ProbeLimits::default().response_bytes)]
    pub probe_response_limit_bytes: usize,
    /// The most nodes a health check reports as ContainerNodes; a cluster with more says so.
    #[arg(long, env = "WINDFLOW_PROBE_NODE_LIMIT", default_value_t = ProbeLimits::default().nodes)]
    pub probe_node_limit: usize,
    /// Also refuse the operator's own endpoints, found at start: the management cluster's API
    /// server (the `kubernetes` Service and its endpoints) and the database host.
    #[arg(long, env = "WINDFLOW_PROBE_DENY_OWN_ENDPOINTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub probe_deny_own_endpoints: bool,
    /// The namespace of Cluster API ClusterClasses, for clusters whose `clusterConfig` names
    /// no `classNamespace` (none: each Cluster's own namespace).
    #[arg(long, env = "WINDFLOW_CLUSTER_CLASS_NAMESPACE")]
    pub cluster_class_namespace: Option<String>,
    /// Kubernetes usernames mapped to WindFlow logins as they are, `USERNAME=LOGIN` (Argo CD's
    /// ServiceAccount to a platform User).
    #[arg(long = "identity-map", env = "WINDFLOW_IDENTITY_MAP", value_parser = parse_mapping, value_delimiter = ',')]
    pub identity_map: Vec<(String, String)>,
    /// The key of the authenticator's extra attributes that holds the login (a claim).
    #[arg(long, env = "WINDFLOW_IDENTITY_EXTRA")]
    pub identity_extra: Option<String>,
    /// The prefix the authenticator puts before usernames (`oidc:`), removed to find the login.
    #[arg(long, env = "WINDFLOW_IDENTITY_PREFIX")]
    pub identity_prefix: Option<String>,
    /// Kubernetes groups whose members may trigger rollouts in any User's name (a platform
    /// team, a CI system).
    #[arg(long = "platform-group", env = "WINDFLOW_PLATFORM_GROUPS", value_delimiter = ',')]
    pub platform_groups: Vec<String>,
    /// Seconds a reported node's heartbeat must be newer than its ContainerNode's to be
    /// written: health checks of a steady cluster write nothing more often.
    #[arg(long, env = "WINDFLOW_HEARTBEAT_INTERVAL_SECONDS", default_value_t = provision::DEFAULT_HEARTBEAT_INTERVAL.as_secs())]
    pub heartbeat_interval_seconds: u64,
}

impl ProvisionArgs {
    pub fn config(&self) -> Config {
        Config {
            storage_classes: self.storage_classes.iter().cloned().collect(),
            ingress_class: self.ingress_class.clone(),
            cluster_issuer: self.cluster_issuer.clone(),
            gateway_parent: self.gateway_parent.clone(),
            traffic_annotations: self.traffic_annotations.clone().unwrap_or_default(),
            pod_network_encryption: self.pod_network_encryption.clone(),
            probe_deny: self.probe_deny.clone(),
            probe_limits: ProbeLimits { response_bytes: self.probe_response_limit_bytes, nodes: self.probe_node_limit },
            user_secret_namespace: self.user_secret_namespace.clone(),
            // Known once the database is: set by `run`.
            tenant_database: None,
            cluster_class_namespace: self.cluster_class_namespace.clone(),
            // Whether admission records requesters is known to `run` only.
            rollouts: Rollouts { requesters_recorded: false, platform_groups: self.platform_groups.clone() },
            heartbeat_interval: std::time::Duration::from_secs(self.heartbeat_interval_seconds),
            identities: Identities {
                map: self.identity_map.iter().cloned().collect(),
                extra: self.identity_extra.clone(),
                prefix: self.identity_prefix.clone(),
            },
        }
    }
}

impl RunArgs {
    /// Settings that would open a door, refused before anything starts.
    pub fn refused(&self) -> Option<String> {
        (self.provision.user_secret_namespace == self.leader_election.lease_namespace).then(|| {
            format!(
                "--user-secret-namespace {:?} is the operator's own namespace, which holds its database URL and \
                 webhook key: a User's author could name either as a password Secret; give Users' Secrets a \
                 namespace of their own",
                self.provision.user_secret_namespace
            )
        })
    }
}

impl ProvisionArgs {
    /// [`ProvisionArgs::config`] for a command that reaches tenants' clusters: its deny list
    /// also refuses the operator's own endpoints, unless turned off.
    pub async fn config_for_tenants(&self, client: &kube::Client, database_url: &str) -> anyhow::Result<Config> {
        let mut config = self.config();
        if self.probe_deny_own_endpoints {
            let database = crate::mirror::store::tenant_database(database_url, None)?;
            let own = provision::destination::own_endpoints(client, &[(&database.host, database.port)]).await?;
            tracing::info!(?own, "tenants' clusters are never reached at the API server's or the database's addresses");
            config.probe_deny.extend(own);
        }
        Ok(config)
    }
}

fn parse_traffic_annotations(text: &str) -> Result<TrafficAnnotations, String> {
    serde_json::from_str(text).map_err(|e| format!("a JSON object of annotation objects: {e}"))
}

fn parse_mapping(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !value.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

#[derive(clap::Args, Debug)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Largest number of database connections.
    #[arg(long, env = "WINDFLOW_DATABASE_CONNECTIONS", default_value_t = 10)]
    pub database_connections: u32,
    /// Apply the migrations first; false: only check that they are applied, as a runtime role
    /// that owns nothing must (the chart's migration Job applies them).
    #[arg(long, env = "WINDFLOW_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate: bool,
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The login `windflow run` connects as, granted `windflow_runtime`: the rows, and the
    /// functions that make tenant logins, nothing it owns.
    #[arg(long, env = "WINDFLOW_RUNTIME_ROLE")]
    pub runtime_role: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Name of the controller in Events (`reportingController`).
    #[arg(long, env = "WINDFLOW_CONTROLLER_NAME", default_value = "windflow-operator")]
    pub controller_name: String,
    /// This replica's name in Events (`reportingInstance`), usually the pod name.
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    #[arg(long, env = "WINDFLOW_PROBE_ADDRESS", default_value = "0.0.0.0:8080")]
    pub probe_address: std::net::SocketAddr,
    /// Reconciles of one kind that run at once (0: as many as are due).
    #[arg(long, env = "WINDFLOW_RECONCILE_CONCURRENCY", default_value_t = 16)]
    pub reconcile_concurrency: u16,
    /// Milliseconds an object's change waits for more changes of it, so that a burst of them
    /// is one reconcile.
    #[arg(long, env = "WINDFLOW_RECONCILE_DEBOUNCE_MS", default_value_t = 100)]
    pub reconcile_debounce_ms: u64,
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    #[command(flatten)]
    pub provision: ProvisionArgs,
    #[command(flatten)]
    pub admission: AdmissionArgs,
}

/// The admission webhook every replica serves.
#[derive(clap::Args, Clone, Debug)]
pub struct AdmissionArgs {
    /// Where the webhook is served over HTTPS; none: no webhook (the chart sets it).
    #[arg(long, env = "WINDFLOW_ADMISSION_ADDRESS")]
    pub admission_address: Option<std::net::SocketAddr>,
    /// Who makes the webhook's certificate.
    #[arg(long, env = "WINDFLOW_WEBHOOK_ISSUING", value_enum, default_value_t = Issuing::Operator)]
    pub webhook_issuing: Issuing,
    /// The Secret, in the operator's namespace, that holds the webhook's certificate.
    #[arg(long, env = "WINDFLOW_WEBHOOK_SECRET", default_value = "windflow-webhook-tls")]
    pub webhook_secret: String,
    /// The Mutating- and ValidatingWebhookConfiguration whose `caBundle` the operator keeps.
    #[arg(long, env = "WINDFLOW_WEBHOOK_CONFIGURATION", default_value = "windflow")]
    pub webhook_configuration: String,
    /// DNS names and IP addresses the API server reaches the webhook at (the Service's names).
    #[arg(long = "webhook-host", env = "WINDFLOW_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub webhook_hosts: Vec<String>,
}

/// Several replicas: one holds a Lease and reconciles, the others stand by.
#[derive(clap::Args, Clone, Debug)]
pub struct LeaderElectionArgs {
    /// Elect a leader through a Lease before reconciling (the chart turns it on).
    #[arg(long = "leader-elect", env = "WINDFLOW_LEADER_ELECT")]
    pub enabled: bool,
    /// Name of the Lease.
    #[arg(long, env = "WINDFLOW_LEASE_NAME", default_value = "windflow-operator")]
    pub lease_name: String,
    /// Namespace of the Lease: the operator's own.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Seconds a leader that stopped renewing keeps the Lease; a standby takes over after it.
    #[arg(long, env = "WINDFLOW_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> RunArgs {
        let base = [
            "windflow",
            "run",
            "--database-url",
            "postgres://windflow@db/windflow",
            "--lease-namespace",
            "windflow-system",
        ];
        match Cli::try_parse_from(base.iter().chain(args)).expect("arguments").command {
            Command::Run(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn users_secrets_never_share_the_operators_namespace() {
        assert_eq!(run_args(&[]).refused(), None, "the default is a namespace of their own");
        let shared = run_args(&["--user-secret-namespace", "windflow-system"]).refused().expect("refused");
        assert!(shared.contains("the operator's own namespace"), "{shared}");
    }
}
