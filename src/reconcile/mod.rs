//! The generic reconcile: dereference → validate and build (pure) → apply (one transaction) →
//! update status, behind the finalizer that mirrors deletion.

mod announcer;
pub mod deployment;
pub mod outage;
pub mod passwords;
mod provisioning;
pub mod status;
mod tenant;
pub mod views;

pub use deployment::RollOut;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::finalizer::{Error as FinalizerError, Event as FinalizerEvent, finalizer};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use sqlx::PgPool;
use tracing::{debug, info, instrument, warn};
use uuid::Uuid;

use crate::FIELD_MANAGER;
use crate::kinds::common::{Reference, Resolved};
use crate::kinds::{self, Index, Kind, KindId, PrepareError, placement, prepare};
use crate::metrics::Metrics;
use crate::mirror::store::{self, StoreError, Written};
use crate::mirror::{Prepared, audit_metadata, current_status};
use crate::provision::apply::{ApplyError, Provider};
use crate::provision::clusters::{ClusterError, Clusters};
use crate::provision::{self, Destination};
use crate::reason::Reason;
use status::{Report, Verdict};
pub use tenant::Tenant;
use views::ViewRefresh;

/// The finalizer that keeps an object until its row is deleted.
pub const FINALIZER: &str = "windflow.io/mirror";

/// How long to wait before looking again, in one place.
pub mod durations {
    use std::time::Duration;
    /// A reference or the tenant organization is not mirrored yet: their rows' writes wake
    /// the objects waiting (`Context::wake_waiting`); this is the fallback.
    pub const WAITING: Duration = Duration::from_secs(60);
    /// How long a new object may wait, reporting nothing, for what it references (or its
    /// organization) to be created: a GitOps sync or a `kubectl apply -f` creates a platform's
    /// objects in any order. After it, a reference still missing is said: it may be a typo.
    pub const ARRIVAL: Duration = Duration::from_secs(15);
    /// How long a reconcile waits for the watch caches' first lists.
    pub const CACHES: Duration = Duration::from_secs(10);
    /// Everything is in place: a periodic resync catches what a missed event would lose.
    pub const RESYNC: Duration = Duration::from_secs(10 * 60);
    /// First retry after a transient fault; doubles up to `BACKOFF_MAX`.
    pub const BACKOFF_MIN: Duration = Duration::from_secs(2);
    pub const BACKOFF_MAX: Duration = Duration::from_secs(5 * 60);
    /// How often an existing cluster or engine is health-checked.
    pub const HEALTH_CHECK: Duration = Duration::from_secs(60);
    /// A third-party API is not installed: look again as soon as discovery would.
    pub const PROVIDER_RECHECK: Duration = crate::provision::apply::RECHECK_MISSING;
    /// A workload cluster is not there yet or does not answer: its health checks wake the
    /// objects placed on it when that changes; this is the fallback.
    pub const CLUSTER_RECHECK: Duration = Duration::from_secs(60);
}

/// Everything reconciles share.
pub struct Context {
    pub client: Client,
    pub pool: PgPool,
    pub recorder: announcer::Announcer,
    /// Who publishes Events: the recorder's, and the rollout steps' own.
    pub reporter: Reporter,
    /// The debounced refresh of the materialized views.
    pub views: ViewRefresh,
    /// The objects builders read.
    pub index: Index,
    /// How the cluster provides what objects ask for.
    pub config: provision::Config,
    /// Where children are written: the management cluster and the workload clusters.
    pub clusters: Arc<Clusters>,
    /// How long a reconcile waits for the index's first lists.
    cache_wait: Duration,
    /// Shared with the admission webhook, which every replica serves.
    pub metrics: Arc<Metrics>,
    /// Consecutive transient failures per object, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The objects whose reconcile lost the database, woken when it answers again.
    pub database: outage::DatabaseWaiters,
    /// Reports that only say work is still under way, held back a little.
    pace: status::Pace,
    /// Users' password Secrets, read once per version.
    pub passwords: passwords::Passwords,
    /// When each organization's database login was last checked.
    logins: tenant::LoginChecks,
    /// Reconciles an object of a kind by name, once the operator's controllers exist.
    waker: OnceLock<Waker>,
    /// The operator's own Kubernetes username, once the API server said it: the audit rows of
    /// its own changes name it.
    operator: OnceLock<String>,
}

/// Reconciles the object (kind, name, namespace).
pub type Waker = Box<dyn Fn(KindId, &str, Option<&str>) + Send + Sync>;

impl Context {
    /// `metrics` counts the requests of `client` already ([`crate::metrics::ApiRequests`]),
    /// and those of the workload clusters' clients made here.
    pub fn new(
        client: Client,
        pool: PgPool,
        reporter: Reporter,
        index: Index,
        config: provision::Config,
        metrics: Arc<Metrics>,
    ) -> Self {
        let clusters =
            Arc::new(Clusters::new(client.clone(), config.probe_deny.clone(), metrics.api_requests().clone()));
        let recorder = announcer::Announcer::new(client.clone(), reporter.clone());
        Self {
            client,
            pool,
            recorder,
            reporter,
            views: ViewRefresh::default(),
            index,
            config,
            clusters,
            cache_wait: durations::CACHES,
            metrics,
            failures: Mutex::default(),
            database: outage::DatabaseWaiters::default(),
            pace: status::Pace::default(),
            passwords: passwords::Passwords::default(),
            logins: tenant::LoginChecks::default(),
            waker: OnceLock::new(),
            operator: OnceLock::new(),
        }
    }

    /// Who the operator is to the API server; set once at startup.
    pub fn set_operator(&self, username: String) {
        let _ = self.operator.set(username);
    }

    /// The operator's Kubernetes username, if known.
    pub fn operator(&self) -> Option<&str> {
        self.operator.get().map(String::as_str)
    }

    /// How the controllers are reached; set once.
    pub fn set_waker(&self, waker: Waker) {
        // Set once by the operator; a second call would find the same controllers.
        let _ = self.waker.set(waker);
    }

    /// Reconciles the objects `obj` references whose status follows the objects that
    /// reference them (an Element, a Domain, a Stack), now that `obj`'s status has changed.
    pub fn wake_followers<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        let namespace = obj.namespace();
        for reference in obj.references().iter().filter(|r| r.kind.observes_others()) {
            wake(reference.kind, &reference.name, reference.scope(namespace.as_deref()));
        }
    }

    /// Reconciles the objects waiting for a row or an organization (in `obj`'s namespace, or
    /// anywhere for a cluster-scoped object), now that `obj`'s row is written: they are woken
    /// by what they wait for, not by a short timer.
    pub fn wake_waiting<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        for (kind, name, namespace) in self.index.waiting(obj.namespace().as_deref()) {
            wake(kind, &name, namespace.as_deref());
        }
    }

    /// Reconciles the objects that run where `obj` runs ([`Kind::followers`]), now that where
    /// it runs, or whether it stands, has changed (the watch event that brings the change).
    /// Only then: a Domain follows its records' statuses, and its records where it runs; woken
    /// on every write, each would wake the other without end.
    pub fn wake_placed_with<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        let namespace = obj.namespace();
        for (kind, name) in obj.followers(&self.index) {
            wake(kind, &name, namespace.as_deref());
        }
    }

    /// Reconciles, now that `obj` (which counts towards quotas) came, changed or went, its
    /// organization (whose status shows the usage) and what its quotas govern (an object beyond
    /// them may fit now).
    pub fn wake_quota_holders<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        let Some(organization) = obj.namespace().and_then(|namespace| self.index.tenant(&namespace)) else { return };
        wake(KindId::Organization, &organization.name_any(), None);
        if !organization.spec.quotas.limits().is_empty() {
            self.wake_governed(organization.as_ref());
        }
    }

    /// Reconciles the objects `obj`'s spec governs ([`Kind::governed`]), now that it changed.
    pub fn wake_governed<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        for (kind, name, namespace) in obj.governed(&self.index) {
            wake(kind, &name, Some(&namespace));
        }
    }

    /// Reconciles the objects waiting for what `obj`'s mirrored status columns say
    /// ([`Kind::awaiting_status`]), now that they changed.
    pub fn wake_awaiting_status<K: Kind>(&self, obj: &K) {
        let Some(wake) = self.waker.get() else { return };
        let namespace = obj.namespace();
        for (kind, name) in obj.awaiting_status(&self.index) {
            wake(kind, &name, namespace.as_deref());
        }
    }

    /// Reconciles the objects whose reconcile lost the database each time it answers again,
    /// rather than at their backoff; runs as long as the operator.
    pub async fn wake_when_database_returns(&self) {
        loop {
            let returned = self.database.returned(&self.pool).await;
            info!(objects = returned.len(), "the database answers again: reconciling what waited for it");
            if let Some(wake) = self.waker.get() {
                for (kind, name, namespace) in returned {
                    wake(kind, &name, namespace.as_deref());
                }
            }
        }
    }

    /// Reconciles the objects placed on `cluster`: it became Available, or stopped being so.
    fn wake_placed_on(&self, cluster: &Destination) {
        let Some(wake) = self.waker.get() else { return };
        for (kind, name, namespace) in self.index.placed_on(cluster) {
            wake(kind, &name, Some(&namespace));
        }
    }

    /// Waits `wait` for the index instead of `durations::CACHES`.
    pub fn with_cache_wait(mut self, wait: Duration) -> Self {
        self.cache_wait = wait;
        self
    }

    /// Waits for the index's first lists, so that nothing is missing only because the
    /// operator just started. The caches list once at start; a kind whose CRD is missing never
    /// does: say so, retry. Every reconcile waits for this before it reads the index.
    pub async fn index_ready(&self) -> Result<()> {
        match tokio::time::timeout(self.cache_wait, self.index.ready()).await {
            Ok(ready) => ready.map_err(|_| Error::ShuttingDown),
            Err(_) => Err(Error::NotSynced),
        }
    }

    /// The provider of `destination` ([`placement::provider`]).
    pub async fn provider_for(&self, destination: &Destination) -> Result<Arc<Provider>, ClusterError> {
        placement::provider(&self.index, &self.clusters, destination).await
    }

    fn backoff(&self, key: String) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key).or_default();
        *count = count.saturating_add(1);
        let factor = 2u32.saturating_pow(count.saturating_sub(1).min(16));
        durations::BACKOFF_MIN.saturating_mul(factor).min(durations::BACKOFF_MAX)
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// Faults worth a retry with backoff; everything users can fix is a condition instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("finalizer: {0}")]
    Finalizer(String),
    #[error("cannot delete the row: {0}")]
    StillReferenced(String),
    #[error("provisioning: {0}")]
    Provisioning(String),
    #[error("rollout: {0}")]
    Rollout(#[from] crate::events::Error),
    #[error("the operator is shutting down")]
    ShuttingDown,
    #[error("the operator's watches of the kinds objects reference have not listed them yet (is every CRD installed?)")]
    NotSynced,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Self::Store(_) => "database",
            Self::Kube(_) => "kubernetes",
            Self::Finalizer(_) => "finalizer",
            Self::StillReferenced(_) => "still_referenced",
            Self::Provisioning(_) => "provisioning",
            Self::Rollout(_) => "rollout",
            Self::ShuttingDown => "shutdown",
            Self::NotSynced => "not_synced",
        }
    }

    /// The reason a status gives for this fault, in one place.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Store(_) | Self::Rollout(crate::events::Error::Database(_)) => Reason::DatabaseUnavailable,
            Self::NotSynced | Self::ShuttingDown => Reason::CachesNotSynced,
            Self::StillReferenced(_) => Reason::StillReferenced,
            Self::Kube(_) | Self::Finalizer(_) | Self::Provisioning(_) | Self::Rollout(_) => {
                Reason::ProviderUnavailable
            }
        }
    }

    /// Whether the database was lost (not reached, or the connection cut), as opposed to
    /// a statement it refused: only then is waiting for it to answer again worth it.
    fn lost_database(&self) -> bool {
        match self {
            Self::Store(error) => error.database_lost(),
            Self::Rollout(crate::events::Error::Database(error)) => store::connection_lost(error),
            _ => false,
        }
    }

    /// The status while this fault lasts, after the row was written or before.
    fn report<S: Default>(&self, row_written: bool) -> Report<S> {
        let verdict = Verdict::failed(self.reason(), self.to_string());
        if row_written { Report { ready: verdict, ..mirrored() } } else { Report::both(verdict) }
    }

    /// Children that cannot be listed, deleted or orphaned: every kind of it is retried.
    fn from_apply(error: ApplyError) -> Self {
        match error {
            ApplyError::Kube(error) => Self::Kube(error),
            other => Self::Provisioning(other.to_string()),
        }
    }

    fn from_finalizer(error: FinalizerError<Error>) -> Self {
        match error {
            FinalizerError::ApplyFailed(e) | FinalizerError::CleanupFailed(e) => e,
            FinalizerError::AddFinalizer(e) | FinalizerError::RemoveFinalizer(e) => Self::Kube(e),
            other => Self::Finalizer(other.to_string()),
        }
    }
}

/// What the mirror made of an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Mirrored(Written),
    /// Users must act (or wait): the verdict says why.
    Blocked(Verdict),
    /// A new object arrived before what it references (or its organization), which exists and
    /// is being mirrored: nothing for anyone to do, so nothing is reported yet. Their rows wake
    /// it (`Context::wake_waiting`); the verdict says what it waits for.
    Early(Verdict),
}

/// Dereference (the index), build and write one object, each a step with its own errors; what
/// each means for the status is said here. Transient faults are errors; everything users can
/// fix or wait for is an `Outcome::Blocked` with the reason.
pub async fn sync<K: Kind>(
    pool: &PgPool,
    index: &Index,
    obj: &K,
    password_hash: Option<String>,
    operator: Option<&str>,
) -> Result<(Outcome, Option<String>), StoreError> {
    let references = obj.references();
    let namespace = obj.namespace();
    let resolved = match dereference(index, obj, &references, password_hash, operator) {
        Ok(resolved) => resolved,
        Err(DereferenceError::NoOrganization) => {
            let arriving = namespace.as_deref().is_some_and(|namespace| index.tenant_arriving(namespace));
            return Ok((held_up(obj, arriving, no_organization(obj)), None));
        }
        Err(DereferenceError::Missing(missing, organization)) => {
            let arriving = missing.iter().all(|r| index.arriving(r.kind, &r.name, r.scope(namespace.as_deref())));
            return Ok((held_up(obj, arriving, waiting_for(&missing)), organization));
        }
    };
    let organization = resolved.organization_name.clone();
    let prepared = match prepare(obj, &resolved) {
        Ok(prepared) => prepared,
        Err(error @ (PrepareError::Invalid(_) | PrepareError::ResourceVersion(_) | PrepareError::NoUid)) => {
            return Ok((Outcome::Blocked(Verdict::failed(Reason::InvalidSpec, error.to_string())), organization));
        }
    };
    let outcome = match write::<K>(pool, &prepared, &resolved, &references).await {
        Ok(written) => Outcome::Mirrored(written),
        Err(WriteError::Conflict(message)) => Outcome::Blocked(Verdict::failed(Reason::Conflict, message)),
        Err(WriteError::Rejected(message)) => Outcome::Blocked(Verdict::failed(Reason::InvalidSpec, message)),
        Err(WriteError::TenantUnwritten) => return Ok((Outcome::Blocked(no_organization(obj)), None)),
        Err(WriteError::ParentsUnwritten(unwritten)) => Outcome::Blocked(waiting_for(&unwritten)),
        // Written in the meantime: the next reconcile will find it.
        Err(WriteError::ParentGone(message)) => {
            Outcome::Blocked(Verdict::failed(Reason::WaitingForDependency, message))
        }
        Err(WriteError::Store(error)) => return Err(error),
    };
    Ok((outcome, organization))
}

/// Why the dereference step stopped.
#[derive(Debug, thiserror::Error)]
enum DereferenceError<'a> {
    /// The object's namespace belongs to no mirrored Organization.
    #[error("no organization")]
    NoOrganization,
    /// Referenced objects are not mirrored yet; the organization, once resolved.
    #[error("missing references")]
    Missing(Vec<&'a Reference>, Option<String>),
}

/// Dereference: the tenant organization and every referenced object, from the index.
fn dereference<'a, K: Kind>(
    index: &Index,
    obj: &K,
    references: &'a [Reference],
    password_hash: Option<String>,
    operator: Option<&str>,
) -> Result<Resolved, DereferenceError<'a>> {
    let mut resolved = index.resolve(obj.meta(), references);
    resolved.password_hash = password_hash;
    resolved.operator = operator.map(str::to_owned);
    if !kinds::cluster_scoped::<K>() && resolved.organization.is_none() {
        return Err(DereferenceError::NoOrganization);
    }
    let missing = resolved.missing(references);
    if !missing.is_empty() {
        return Err(DereferenceError::Missing(missing, resolved.organization_name.clone()));
    }
    Ok(resolved)
}

/// Why the write step stopped.
#[derive(Debug, thiserror::Error)]
enum WriteError<'a> {
    /// Another object holds a value that must be unique.
    #[error("{0}")]
    Conflict(String),
    /// The database refused a value.
    #[error("{0}")]
    Rejected(String),
    /// The tenant organization's row is missing, although the caches say it is mirrored.
    #[error("the organization's row is missing")]
    TenantUnwritten,
    /// The rows of these references are missing, although the caches say they are mirrored.
    #[error("referenced rows are missing")]
    ParentsUnwritten(Vec<&'a Reference>),
    /// A parent row was missing and is there now.
    #[error("{0}")]
    ParentGone(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Write: the row, its join rows and the audit row, in one transaction. After a foreign key
/// failed, says which parent rows were missing.
async fn write<'a, K: Kind>(
    pool: &PgPool,
    prepared: &Prepared,
    resolved: &Resolved,
    references: &'a [Reference],
) -> Result<Written, WriteError<'a>> {
    let mut conn = pool.acquire().await.map_err(StoreError::Unavailable)?;
    match store::write(&mut conn, prepared).await {
        Ok(written) => Ok(written),
        Err(StoreError::Conflict(message)) => Err(WriteError::Conflict(message)),
        Err(StoreError::Rejected(message)) => Err(WriteError::Rejected(message)),
        Err(StoreError::ParentMissing(message)) => {
            let tenant = if kinds::cluster_scoped::<K>() { None } else { resolved.organization };
            Err(match unwritten_parents(&mut conn, tenant, resolved, references).await? {
                Unwritten::Tenant => WriteError::TenantUnwritten,
                Unwritten::References(unwritten) if !unwritten.is_empty() => WriteError::ParentsUnwritten(unwritten),
                Unwritten::References(_) => WriteError::ParentGone(message),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// Held up by what is not mirrored yet: early, if that is `arriving` and the object has reported
/// nothing yet; else blocked, saying so.
fn held_up<K: Kind>(obj: &K, arriving: bool, verdict: Verdict) -> Outcome {
    if arriving && !status::has_reported(obj) { Outcome::Early(verdict) } else { Outcome::Blocked(verdict) }
}

/// The object's namespace belongs to no mirrored Organization: it waits for one.
fn no_organization<K: Kind>(obj: &K) -> Verdict {
    let message = format!(
        "namespace {:?} belongs to no Organization (or its Organization is not mirrored yet); \
         objects here are neither mirrored nor provisioned",
        obj.namespace().unwrap_or_default()
    );
    Verdict::failed(Reason::NoOrganization, message)
}

/// Which parent rows a write's foreign key missed.
enum Unwritten<'a> {
    /// The tenant organization's.
    Tenant,
    References(Vec<&'a Reference>),
}

/// After a write failed on a foreign key although the caches say every parent is mirrored (a
/// row deleted since, a database restored from an older backup): which rows are missing.
async fn unwritten_parents<'a>(
    conn: &mut sqlx::PgConnection,
    tenant: Option<Uuid>,
    resolved: &Resolved,
    references: &'a [Reference],
) -> Result<Unwritten<'a>, StoreError> {
    let parents = resolved.ids(references);
    let rows: Vec<(&str, Uuid)> = tenant
        .map(|id| (KindId::Organization.table(), id))
        .into_iter()
        .chain(parents.iter().map(|(reference, id)| (reference.kind.table(), *id)))
        .collect();
    let absent = store::absent(conn, &rows).await?;
    // The tenant, when there is one, is row 0.
    let offset = usize::from(tenant.is_some());
    if tenant.is_some() && absent.contains(&0) {
        return Ok(Unwritten::Tenant);
    }
    Ok(Unwritten::References(absent.iter().filter_map(|&i| Some(parents.get(i.checked_sub(offset)?)?.0)).collect()))
}

/// The object waits for the rows of these references.
fn waiting_for(references: &[&Reference]) -> Verdict {
    let list: Vec<String> = references.iter().map(|r| format!("{} {:?} ({})", r.kind, r.name, r.field)).collect();
    Verdict::failed(Reason::WaitingForDependency, format!("waiting for {}", list.join(", ")))
}

/// Deletes an object's row, leaving a `delete` audit row.
pub async fn remove<K: Kind>(
    pool: &PgPool,
    index: &Index,
    obj: &K,
    operator: Option<&str>,
) -> Result<bool, StoreError> {
    let id = obj.uid().and_then(|uid| uid.parse().ok()).unwrap_or_default();
    let version = obj.resource_version().and_then(|v| v.parse().ok()).unwrap_or(i64::MAX);
    // The organization of the audit row is read from the deleted row itself; the deleter from
    // admission's record, never from the object.
    let deleted_at = obj.meta().deletion_timestamp.as_ref().map(|at| at.0.to_string()).unwrap_or_default();
    let deleter = match deleted_at.is_empty() {
        true => None,
        false => store::deleter(pool, id, &deleted_at).await?,
    };
    let deleter = deleter.map(|actor| {
        let user = index.user_of(&actor);
        (actor, user)
    });
    let audit = audit_metadata(obj, K::ID.entity().kind, id, None, version, operator, deleter);
    store::delete(pool, K::TABLE, &audit).await
}

/// What a kind's controller does once the row is written; the registry names it per kind.
/// Users' problems are a `Ready=False` report; transient faults are errors.
pub trait Lifecycle<K: Kind>: 'static {
    fn progress<'a>(obj: &'a K, ctx: &'a Context) -> BoxFuture<'a, Result<(Report<K::Status>, Action)>>;

    /// Runs before the row is deleted.
    fn retire<'a>(_obj: &'a K, _ctx: &'a Context) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Provisions what the object asks for.
pub struct Provision;

impl<K: Kind> Lifecycle<K> for Provision {
    fn progress<'a>(obj: &'a K, ctx: &'a Context) -> BoxFuture<'a, Result<(Report<K::Status>, Action)>> {
        Box::pin(provisioning::provision(obj, ctx))
    }
}

/// The controller's reconcile for any mirrored kind.
#[instrument(skip_all, fields(kind = %K::kind(&()), name = %obj.name_any(), namespace = obj.namespace()))]
pub async fn reconcile<K: Kind, L: Lifecycle<K>>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let _running = ctx.metrics.reconcile(&K::kind(&()));
    let api = kinds::api::<K>(ctx.client.clone(), obj.namespace().as_deref());
    let key = retry_key(obj.as_ref());
    let result = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            FinalizerEvent::Apply(obj) => apply::<K, L>(obj.as_ref(), &api, &ctx).await,
            FinalizerEvent::Cleanup(obj) => cleanup::<K, L>(obj.as_ref(), &api, &ctx).await,
        }
    })
    .await
    .map_err(Error::from_finalizer);
    if result.is_ok() {
        ctx.succeeded(&key);
    }
    result
}

/// One reconcile of a live object: conclude, then write the status once, whatever the outcome.
async fn apply<K: Kind, L: Lifecycle<K>>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action> {
    let mut progress = Progress::default();
    let concluded = conclude::<K, L>(obj, ctx, &mut progress).await;
    let report = match &concluded {
        Ok((report, _)) => report.clone(),
        Err(error) => Some(error.report(progress.mirrored)),
    };
    let written = match report {
        Some(report) => update_status(obj, api, ctx, &report, progress.organization.as_deref()).await,
        None => Ok(StatusWrite::Done),
    };
    match (concluded, written) {
        (Ok((_, action)), Ok(StatusWrite::Done)) => Ok(action),
        // Looked at again when it may be written, within 2 s (a sooner look the reconcile
        // asked for waits that long too): what it says then is written.
        (Ok(_), Ok(StatusWrite::Later(wait))) => Ok(Action::requeue(wait)),
        (Ok(_), Err(status_error)) => Err(status_error),
        (Err(error), Ok(_)) => Err(error),
        (Err(error), Err(status_error)) => {
            warn!(%status_error, %error, "could not report the fault");
            Err(error)
        }
    }
}

/// How far a reconcile got before it concluded or failed.
#[derive(Default)]
struct Progress {
    /// The organization the object's namespace belongs to, once resolved.
    organization: Option<String>,
    /// The row holds the object.
    mirrored: bool,
}

/// Dereference, validate and build, apply: what the status should say (nothing yet, for an
/// early object) and when to look again. Users' problems are a report; transient faults are
/// errors.
async fn conclude<K: Kind, L: Lifecycle<K>>(
    obj: &K,
    ctx: &Context,
    progress: &mut Progress,
) -> Result<(Option<Report<K::Status>>, Action)> {
    if status::is_paused(obj) {
        let verdict =
            Verdict::failed(Reason::Paused, format!("reconciling is paused by {}", status::PAUSED_ANNOTATION));
        return Ok(blocked(verdict));
    }
    let password = match obj.password_secret() {
        Some((namespace, _, _)) if namespace != ctx.config.user_secret_namespace => {
            let message = format!(
                "spec.passwordSecretRef.namespace: {namespace:?}: Users' password Secrets are read only in namespace \
                 {:?} (the chart's security.userSecretNamespace)",
                ctx.config.user_secret_namespace
            );
            return Ok(blocked(Verdict::failed(Reason::InvalidSpec, message)));
        }
        Some((namespace, name, key)) => match ctx.passwords.read(&ctx.client, namespace, name, key).await? {
            Some(hash) => Some(hash),
            None => {
                let message = format!("waiting for key {key:?} of Secret {namespace}/{name}");
                return Ok(blocked(Verdict::failed(Reason::WaitingForDependency, message)));
            }
        },
        None => None,
    };
    ctx.index_ready().await?;
    let started = std::time::Instant::now();
    let synced = sync(&ctx.pool, &ctx.index, obj, password, ctx.operator()).await;
    ctx.metrics.mirror_written(started.elapsed());
    let (outcome, organization) = synced?;
    progress.organization = organization;
    match outcome {
        Outcome::Mirrored(written) => {
            progress.mirrored = true;
            if written.audited {
                info!("mirrored");
                ctx.views.request();
            }
            let (report, action) = L::progress(obj, ctx).await?;
            Ok((Some(report), action))
        }
        Outcome::Blocked(verdict) => match status::arrival_left(obj, &verdict, Timestamp::now()) {
            Some(left) => {
                debug!(waiting = %verdict.message, "new: nothing reported yet");
                Ok((None, Action::requeue(left)))
            }
            None => Ok(blocked(verdict)),
        },
        Outcome::Early(verdict) => {
            debug!(waiting = %verdict.message, "early: nothing reported yet");
            Ok((None, wait_for(verdict.reason)))
        }
    }
}

/// A reconcile that stopped short: both conditions say why, and the reason says when to look
/// again.
fn blocked<S: Default>(verdict: Verdict) -> (Option<Report<S>>, Action) {
    let action = wait_for(verdict.reason);
    (Some(Report::both(verdict)), action)
}

/// When to look again at an object held up for `reason`, in one place: what users fix waits for
/// their change; what comes by itself is looked for again.
fn wait_for(reason: Reason) -> Action {
    match reason {
        Reason::WaitingForDependency | Reason::NoOrganization => Action::requeue(durations::WAITING),
        Reason::Unreachable => Action::requeue(durations::HEALTH_CHECK),
        // What the holder of a name or a provider does is not watched: looked at again.
        Reason::ProviderNotInstalled | Reason::Conflict | Reason::NamespaceConflict => {
            Action::requeue(durations::PROVIDER_RECHECK)
        }
        Reason::ClusterUnreachable => Action::requeue(durations::CLUSTER_RECHECK),
        _ => Action::await_change(),
    }
}

/// `Synced` once the row holds the object.
fn mirrored<S: Default>() -> Report<S> {
    Report::both(Verdict::ok(Reason::Mirrored, "the database row holds this object"))
}

async fn cleanup<K: Kind, L: Lifecycle<K>>(obj: &K, api: &Api<K>, ctx: &Context) -> Result<Action> {
    // A workload cluster deleted with what runs on it (`kubectl delete -f`) stays reachable
    // until those objects have released their children there. A Cluster API cluster that is
    // not provisioned (never was, or no longer) holds nothing up: nothing could be released
    // there, and Cluster API deletes it with whatever runs on it.
    if let Some(cluster) = obj.hosts() {
        let releasing = releasing_from(ctx, &cluster).await?;
        if releasing > 0 && !matches!(ctx.provider_for(&cluster).await, Err(ClusterError::NotReady(_))) {
            return Err(Error::Provisioning(format!(
                "{releasing} objects being deleted are releasing their children on this cluster first"
            )));
        }
    }
    // Children first: should this fail, the row (and the finalizer) stay for the retry.
    if let (false, Some(owner)) = (K::CHILD_TYPES.is_empty(), obj.uid())
        && let Some(held) = provisioning::release(ctx, obj, &owner).await?
    {
        // Said where users look (a condition, and its Event), then retried: the finalizer
        // stays while the cleanup fails, and the cluster answering again wakes it.
        let report = Report { ready: Verdict::failed(Reason::ClusterUnreachable, held.clone()), ..mirrored() };
        update_status(obj, api, ctx, &report, None).await?;
        return Err(Error::Provisioning(held));
    }
    L::retire(obj, ctx).await?;
    if K::ID == KindId::ContainerCluster {
        // Its client and watches go with it.
        let namespace = obj.namespace().unwrap_or_default();
        ctx.clusters.forget(&Destination::Workload { namespace, name: obj.name_any() });
    }
    // What followed this object (an Element, a Volume it mounted) is woken by the watch event
    // of its deletion, once the cache no longer holds it.
    match remove(&ctx.pool, &ctx.index, obj, ctx.operator()).await {
        Ok(_) => {
            ctx.views.request();
            Ok(Action::await_change())
        }
        Err(StoreError::StillReferenced(message)) => {
            publish(ctx, obj, EventType::Warning, Reason::StillReferenced, &message).await;
            Err(Error::StillReferenced(message))
        }
        Err(error) => Err(error.into()),
    }
}

/// How many objects being deleted still hold children on `cluster`, as the cache tells. When it
/// tells of none, those it holds as standing are asked of the API server: each kind's watch
/// lists again on its own after the API server restarted, and a deletion one has not brought
/// yet must still hold the cluster, or its children there would be left.
async fn releasing_from(ctx: &Context, cluster: &Destination) -> Result<usize> {
    let Destination::Workload { namespace, .. } = cluster else { return Ok(0) };
    let holding = ctx.index.holding_children_on(cluster);
    let in_cache = holding.iter().filter(|holder| holder.deleting).count();
    if in_cache > 0 {
        return Ok(in_cache);
    }
    let mut live = 0;
    for holder in holding {
        let api = Api::<kube::api::DynamicObject>::namespaced_with(
            ctx.client.clone(),
            namespace,
            &holder.kind.api_resource(),
        );
        let held = api.get_metadata_opt(&holder.name).await?;
        live += usize::from(held.is_some_and(|held| held.metadata.deletion_timestamp.is_some()));
    }
    Ok(live)
}

/// Whether a status was written (or had nothing new), or waits to be written.
enum StatusWrite {
    Done,
    /// It only said otherwise that work is still under way: it is written once it has stood
    /// this long, unless something else is written first.
    Later(Duration),
}

/// Applies the status (server-side, our field manager) and publishes an Event when Ready flips
/// or fails for a new reason.
async fn update_status<K: Kind>(
    obj: &K,
    api: &Api<K>,
    ctx: &Context,
    report: &Report<K::Status>,
    organization: Option<&str>,
) -> Result<StatusWrite> {
    let before = current_status(obj);
    let patch = status::build(obj, report, organization, Timestamp::now());
    let key = retry_key(obj);
    // Nothing new: nothing written, and so no watch event to echo. The followers of a status
    // that did change are woken by its watch event, once the cache they read holds it
    // (`operator::controller`).
    if patch.get("status") == Some(&before) {
        ctx.pace.settled(&key);
        return Ok(StatusWrite::Done);
    }
    if status::only_still_under_way(&before, &patch["status"])
        && let Some(wait) = ctx.pace.wait(&key, std::time::Instant::now())
    {
        debug!(?wait, "still under way: written if it still says so then");
        return Ok(StatusWrite::Later(wait));
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let changed: Vec<String> = patch["status"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(field, value)| before.get(field.as_str()) != Some(value))
            .map(|(field, value)| format!("{field}: {} -> {value}", before.get(field.as_str()).unwrap_or(&Value::Null)))
            .collect();
        debug!(?changed, "status written");
    }
    api.patch_status(&obj.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&patch)).await?;
    ctx.pace.settled(&key);
    let ready = &report.ready;
    let conditions = obj.common_status().map(|status| status.conditions.as_slice()).unwrap_or_default();
    let announcement = status::announcement(conditions, ready);
    if let (Some(_), Some(cluster)) = (announcement, obj.hosts()) {
        ctx.wake_placed_on(&cluster);
    }
    if let Some(type_) = announcement.filter(|type_| report.announce && status::is_news::<K>(conditions, type_)) {
        publish(ctx, obj, type_, ready.reason, &ready.message).await;
    }
    Ok(StatusWrite::Done)
}

async fn publish<K: Kind>(ctx: &Context, obj: &K, type_: EventType, reason: Reason, note: &str) {
    announce(ctx, &obj.object_ref(&()), type_, reason, note).await;
}

/// Publishes an Event on the object `reference` names; a failure to publish is only logged.
pub async fn announce(ctx: &Context, reference: &ObjectReference, type_: EventType, reason: Reason, note: &str) {
    let event = Event {
        type_,
        reason: reason.as_str().to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = ctx.recorder.publish(&event, reference).await {
        warn!(%error, "could not publish an event");
    }
}

/// The object's entry in the backoff table.
fn retry_key<K: Kind>(obj: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Transient faults: retry with exponential backoff per object.
pub fn error_policy<K: Kind>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(&K::kind(&()), error.category());
    if error.lost_database() {
        ctx.database.wait((K::ID, obj.name_any(), obj.namespace()));
    }
    let delay = ctx.backoff(retry_key(obj.as_ref()));
    warn!(kind = %K::kind(&()), name = %obj.name_any(), category = error.category(), %error, ?delay, "reconcile failed");
    Action::requeue(delay)
}
