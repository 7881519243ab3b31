//! `windflow run`: the probe and metrics server, leader election on a Lease, then one
//! controller per kind sharing one context, until SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::events::{EventType, Reporter};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{debug, error, info, warn};

use crate::FIELD_MANAGER;
use crate::cli::{LeaderElectionArgs, RunArgs};
use crate::deploy::DeploymentPhase;
use crate::kinds::Index;
use crate::kinds::*;
use crate::metrics::ObjectLabels;
use crate::provision::apply::Provider;
use crate::provision::cache::trim;
use crate::provision::{ChildType, Destination, labels};
use crate::reason::Reason;
use crate::reconcile::{self, Context, Lifecycle};

/// Runs every controller until a shutdown signal; in-flight reconciles finish first, then the
/// Lease is released so that a standby takes over at once.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(refused) = args.refused() {
        anyhow::bail!(refused);
    }
    let pool = crate::mirror::store::pool(&args.database.database_url, args.database.database_connections)?;
    crate::mirror::store::prepare_when_reached(&pool, args.database.migrate).await?;
    // The operator's own requests are counted on its clients, from the first one.
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let client = metrics.api_requests().client(kube::Config::infer().await?, "management", None, |_| {})?;
    let identity = args.instance.clone().unwrap_or_else(|| format!("windflow-{}", uuid::Uuid::new_v4().simple()));
    let reporter = Reporter { controller: args.controller_name, instance: args.instance };
    // The controllers' caches are the index builders read: one watch per kind.
    let stores = Stores::new();
    let mut config = args.provision.config_for_tenants(&client, &args.database.database_url).await?;
    config.tenant_database = Some(crate::mirror::store::tenant_database(
        &args.database.database_url,
        args.provision.tenant_database_host.as_deref(),
    )?);
    config.rollouts.requesters_recorded = args.admission.admission_address.is_some();
    let ctx = Arc::new(Context::new(client.clone(), pool, reporter, stores.index(), config, metrics));
    match whoami(&client).await {
        Ok(username) => ctx.set_operator(username),
        Err(error) => {
            warn!(%error, "cannot ask the API server who the operator is; its own changes are audited without a username")
        }
    }
    let admission = args.admission.admission_address.map(|address| {
        let settings = crate::admission::Settings {
            identities: ctx.config.identities.clone(),
            platform_groups: ctx.config.rollouts.platform_groups.clone(),
        };
        let certificates = crate::admission::certificate::Certificates {
            issuing: args.admission.webhook_issuing,
            namespace: args.leader_election.lease_namespace.clone(),
            secret: args.admission.webhook_secret.clone(),
            configuration: args.admission.webhook_configuration.clone(),
            hosts: args.admission.webhook_hosts.clone(),
        };
        // Every replica serves admission, leader or not.
        let (client, pool, index, metrics) = (client.clone(), ctx.pool.clone(), ctx.index.clone(), ctx.metrics.clone());
        tokio::spawn(async move {
            if let Err(error) =
                crate::admission::server::serve(address, client, pool, index, settings, certificates, metrics).await
            {
                error!(%error, "the admission webhook stopped");
            }
        })
    });
    let pacing = kube::runtime::controller::Config::default()
        .concurrency(args.reconcile_concurrency)
        .debounce(Duration::from_millis(args.reconcile_debounce_ms));
    let mut controllers = stores.controllers(&client, &ctx, &pacing);
    let owners = controllers.owners.clone();
    ctx.set_waker(Box::new(move |kind, name, namespace| owners.wake_named(kind, name, namespace)));
    // A workload cluster's children are watched like the management cluster's from the moment
    // it connects, those of the organization owning it only (its credentials serve that
    // organization alone); what is placed on it is looked at again when it connects, stops or
    // starts answering.
    let (watching, waking, index) = (controllers.owners.clone(), controllers.owners.clone(), ctx.index.clone());
    let (tenants, rollouts) = (ctx.index.clone(), ctx.index.clone());
    ctx.clusters.set_hooks(
        Box::new(move |cluster, provider| {
            let owners = watching.clone();
            let organization = match cluster {
                Destination::Workload { namespace, .. } => tenants.tenant(namespace).map(|org| org.name_any()),
                Destination::Management => None,
            };
            let selector = match organization {
                Some(organization) => format!("{},{}={organization}", labels::OWNER_KIND, labels::ORGANIZATION),
                None => labels::OWNER_KIND.to_owned(),
            };
            let config = watcher::Config::default().labels(&selector);
            tokio::spawn(watch_children(cluster.clone(), provider, owners, rollouts.clone(), config)).abort_handle()
        }),
        Box::new(move |cluster| {
            for (kind, name, namespace) in index.placed_on(cluster) {
                waking.wake_named(kind, &name, Some(&namespace));
            }
        }),
    );
    let cluster_health = {
        let clusters = ctx.clusters.clone();
        tokio::spawn(async move { clusters.watch_health().await })
    };
    let quiet_recorder = {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.recorder.forget_when_quiet().await })
    };
    // A stack's phase follows its applications and rollouts; an application's workloads follow
    // the rollouts of its stack; a rollback's parent follows the rollback; organizations show
    // their counts when a refresh of the views changed them.
    controllers.stack = controllers
        .stack
        .watches(kube::Api::<Application>::all(client.clone()), watcher::Config::default(), |app| {
            Some(named(&app, &app.spec.stack_ref.name))
        })
        .watches(kube::Api::<Deployment>::all(client.clone()), watcher::Config::default(), |deployment| {
            Some(named(&deployment, &deployment.spec.stack_ref.name))
        });
    let application_store = ctx.index.application.clone();
    controllers.application = controllers.application.watches(
        kube::Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
        move |deployment| {
            application_store
                .state()
                .iter()
                .filter(|app| {
                    app.namespace() == deployment.namespace() && app.spec.stack_ref == deployment.spec.stack_ref
                })
                .filter(|app| deployment.spec.application_ref.as_ref().is_none_or(|r| r.name == app.name_any()))
                .map(|app| ObjectRef::from_obj(app.as_ref()))
                .collect::<Vec<_>>()
        },
    );
    controllers.deployment = controllers.deployment.watches(
        kube::Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
        |deployment| {
            let parent = deployment.spec.parent_deployment_ref.as_ref()?;
            Some(ObjectRef::new(&parent.name).within(&deployment.namespace().unwrap_or_default()))
        },
    );
    // A User follows its password Secret (their namespace's, watched for versions only).
    let users = ctx.index.user.clone();
    let changed_secrets = ctx.passwords.changes(client.clone(), &ctx.config.user_secret_namespace);
    controllers.user = controllers.user.reconcile_on(changed_secrets.flat_map(move |secret| {
        let naming: Vec<ObjectRef<User>> = users
            .state()
            .iter()
            .filter(|user| user.password_secret().is_some_and(|(_, name, _)| name == secret))
            .map(|user| ObjectRef::from_obj(user.as_ref()))
            .collect();
        futures::stream::iter(naming)
    }));
    let organizations = ctx.index.organization.clone();
    controllers.organization = controllers.organization.reconcile_on(ctx.views.refreshed().flat_map(move |changed| {
        let uid = |org: &Organization| org.uid().and_then(|uid| uid.parse().ok());
        let shown: Vec<ObjectRef<Organization>> = organizations
            .state()
            .iter()
            .filter(|org| changed.includes(uid(org)))
            .map(|org| ObjectRef::from_obj(org.as_ref()))
            .collect();
        futures::stream::iter(shown)
    }));
    let views = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            ctx.views.run(&ctx.pool, reconcile::views::DEBOUNCE, reconcile::views::LONGEST_DELAY).await
        })
    };
    let database_return = {
        let ctx = ctx.clone();
        tokio::spawn(async move { ctx.wake_when_database_returns().await })
    };
    let health = Arc::new(Health::new(ctx.clone()));
    let server = tokio::spawn(serve(args.probe_address, health.clone()));

    let controllers = async {
        tokio::select! {
            () = crds_served(&client) => {}
            () = shutdown_signal() => return,
        }
        info!("starting controllers");
        controllers.run(&ctx).await;
        info!("controllers stopped");
    };
    let result = if args.leader_election.enabled {
        lead(client.clone(), identity, &args.leader_election, &health, controllers).await
    } else {
        health.became_leader(true);
        controllers.await;
        Ok(())
    };
    server.abort();
    views.abort();
    database_return.abort();
    cluster_health.abort();
    quiet_recorder.abort();
    if let Some(admission) = admission {
        admission.abort();
    }
    result
}

/// The operator's Kubernetes username, as the API server authenticates it.
async fn whoami(client: &Client) -> Result<String, kube::Error> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let reviews: kube::Api<SelfSubjectReview> = kube::Api::all(client.clone());
    let review = reviews.create(&kube::api::PostParams::default(), &SelfSubjectReview::default()).await?;
    Ok(review.status.and_then(|s| s.user_info).and_then(|u| u.username).unwrap_or_default())
}

/// Waits until the API server serves every WindFlow kind (its CRD installed and Established),
/// naming the missing ones every few seconds: watches of a kind that is not served would only
/// fail, and every reconcile would wait for their caches.
async fn crds_served(client: &Client) {
    loop {
        match missing_crds(client).await {
            Ok(missing) if missing.is_empty() => return,
            Ok(missing) => error!(
                missing = %missing.join(", "),
                "WindFlow CRDs are not installed or not Established: install the chart's CRDs; the controllers start once they are served"
            ),
            Err(error) => warn!(%error, "cannot read which WindFlow kinds the API server serves; retrying"),
        }
        tokio::time::sleep(reconcile::durations::CACHES).await;
    }
}

/// The WindFlow CRDs whose kinds the API server does not serve.
async fn missing_crds(client: &Client) -> Result<Vec<String>, kube::Error> {
    let resources: Vec<ApiResource> = KindId::ALL.iter().map(|kind| kind.api_resource()).collect();
    // Every WindFlow kind is served in the one group version: one discovery request.
    let Some(group_version) = resources.first().map(|resource| resource.api_version.clone()) else {
        return Ok(vec![]);
    };
    let served = match client.list_api_group_resources(&group_version).await {
        Ok(list) => list.resources.into_iter().map(|resource| resource.name).collect(),
        // The group itself is not served: no WindFlow CRD is.
        Err(kube::Error::Api(status)) if status.code == 404 => std::collections::BTreeSet::new(),
        Err(error) => return Err(error),
    };
    let missing = resources.into_iter().filter(|resource| !served.contains(&resource.plural));
    Ok(missing.map(|resource| format!("{}.{}", resource.plural, resource.group)).collect())
}

/// Waits for the Lease, runs `controllers` while holding it, releases it on shutdown. Losing it while
/// reconciling ends the process: another replica reconciles now, and a restart makes this one
/// a standby again.
pub async fn lead(
    client: Client,
    identity: String,
    args: &LeaderElectionArgs,
    health: &Health,
    controllers: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.lease_namespace)
        .with_identity(&identity)
        .with_duration(args.lease_duration)
        .with_grace((args.lease_duration / 3).max(1))
        // One field manager per replica, unlike everything else the operator writes: two
        // replicas taking a free Lease at once must conflict on `holderIdentity`, and
        // server-side apply only reports conflicts between different managers.
        .with_field_manager(format!("{FIELD_MANAGER}-{identity}"))
        .build()
        .await?;
    let (mut leading, released) = manager.watch().await;
    info!(%identity, lease = %args.lease_name, "standing by for the lease");
    let elected = tokio::select! {
        elected = leading.wait_for(|leader| *leader) => Some(elected.map(|_| ())),
        () = shutdown_signal() => None,
    };
    let outcome = match elected {
        None => Ok(()),
        Some(Err(closed)) => Err(anyhow::anyhow!("leader election stopped: {closed}")),
        Some(Ok(())) => {
            info!("holding the lease: reconciling");
            health.became_leader(true);
            tokio::select! {
                () = controllers => Ok(()),
                lost = leading.wait_for(|leader| !*leader) => {
                    let lost = lost.map(|_| ());
                    health.became_leader(false);
                    error!("lost the lease; stopping so that only the new leader reconciles");
                    Err(anyhow::anyhow!("lost the lease {}: {lost:?}", args.lease_name))
                }
            }
        }
    };
    // Closing the channel makes the manager release the Lease; wait for it.
    drop(leading);
    match tokio::time::timeout(Duration::from_secs(5), released).await {
        Ok(Ok(Ok(_))) => info!("lease released"),
        other => error!(?other, "the lease was not released cleanly; it expires on its own"),
    }
    outcome
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
}

/// One controller per kind, from the registry; each runs the reconcile with the kind's lifecycle.
macro_rules! controllers {
    ($($kind:ident: $module:ident => $lifecycle:ident,)*) => {
        /// The caches of every kind, before their watches start: the index reads them.
        struct Stores {
            $($module: (Store<$kind>, Writer<$kind>),)*
        }

        impl Stores {
            fn new() -> Self {
                Self { $($module: reflector::store(),)* }
            }

            fn index(&self) -> Index {
                Index { $($module: self.$module.0.clone(),)* }
            }

            /// The controllers, each also woken by the shared watches of its children.
            fn controllers(
                self,
                client: &Client,
                ctx: &Arc<Context>,
                pacing: &kube::runtime::controller::Config,
            ) -> Controllers {
                $(let $module = mpsc::unbounded();)*
                Controllers {
                    owners: Owners { $($module: $module.0,)* },
                    $($module: controller::<$kind>(client, self.$module, ctx).with_config(pacing.clone()).reconcile_on($module.1),)*
                }
            }
        }

        struct Controllers {
            /// Where the changes of children are sent.
            owners: Owners,
            $($module: Controller<$kind>,)*
        }

        impl Controllers {
            async fn run(self, ctx: &Arc<Context>) {
                futures::join!(
                    watch_children(
                        Destination::Management,
                        ctx.clusters.management().clone(),
                        self.owners.clone(),
                        ctx.index.clone(),
                        watcher::Config::default().labels(labels::OWNER_KIND),
                    ),
                    $(drive::<$kind, reconcile::$lifecycle>(self.$module, ctx),)*
                );
            }
        }

        /// The controller of each kind, by the name children's labels give their owner's kind.
        #[derive(Clone)]
        struct Owners {
            $($module: mpsc::UnboundedSender<ObjectRef<$kind>>,)*
        }

        impl Owners {
            /// Reconciles the owner `child`'s labels name.
            fn wake(&self, child: &DynamicObject) {
                let labels = child.labels();
                let (Some(kind), Some(name)) = (labels.get(labels::OWNER_KIND), labels.get(labels::OWNER_NAME)) else {
                    return;
                };
                let namespace = labels.get(labels::OWNER_NAMESPACE).map(String::as_str);
                // A send fails only once the controller has stopped (shutdown): nothing to wake.
                match kind.as_str() {
                    $(stringify!($kind) => drop(self.$module.unbounded_send(owner_ref(name, namespace))),)*
                    _ => {}
                }
            }

            /// Reconciles the object `name` of `kind`.
            fn wake_named(&self, kind: KindId, name: &str, namespace: Option<&str>) {
                match kind {
                    $(KindId::$kind => drop(self.$module.unbounded_send(owner_ref(name, namespace))),)*
                }
            }
        }
    };
}

crate::registry!(controllers);

/// The object `name` of kind `K` that `referrer` names: references stay in its namespace.
fn named<K: kube::Resource<DynamicType = ()>>(referrer: &impl ResourceExt, name: &str) -> ObjectRef<K> {
    ObjectRef::new(name).within(&referrer.namespace().unwrap_or_default())
}

/// The controller of a kind. Its children wake it through [`watch_children`].
///
/// The kind is watched as plain objects and read as `K` one by one: an object that is no valid
/// `K` (its CRD let it through: an older or looser schema) is reported and skipped, where a
/// typed watch would fail its whole list and stall every object of the kind.
fn controller<K: Kind>(client: &Client, (reader, writer): (Store<K>, Writer<K>), ctx: &Arc<Context>) -> Controller<K> {
    let resource = ApiResource::erase::<K>(&());
    let api = kube::Api::<DynamicObject>::all_with(client.clone(), &resource);
    let (cache, reader_of_events, mut writer) = (reader.clone(), reader.clone(), writer);
    let (ctx, followed) = (ctx.clone(), ctx.clone());
    let objects = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .then(move |event| {
            let (cache, ctx) = (cache.clone(), ctx.clone());
            async move {
                match event {
                    Ok(event) => typed_event::<K>(event, &cache, &ctx).await.map(Ok),
                    Err(error) => Some(Err(error)),
                }
            }
        })
        .filter_map(futures::future::ready)
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(event) => cached::<K>(&reader_of_events, &mut writer, &event, &followed).map(Ok),
                Err(error) => Some(Err(error)),
            })
        });
    Controller::for_stream(objects, reader)
}

/// Puts `event` into the cache; returns the object to reconcile, if it is new or changed in
/// what its reconcile reads ([`reconcile_reads`]): the operator's own status write coming back is not
/// reconciled again. Then wakes, once the cache holds the change, what follows the object:
/// the objects weighing its status ([`Context::wake_followers`]) when it changed, those
/// waiting for its mirrored status columns ([`Context::wake_awaiting_status`]) when they
/// changed, those waiting for it ([`Context::wake_waiting`]) and those placed with it
/// ([`Context::wake_placed_with`]) when it was first mirrored, turned Ready or moved, and all
/// of them when it is gone; those its spec governs ([`Context::wake_governed`]) when its spec
/// changed; and, for what counts towards quotas, its organization and what its quotas hold
/// back ([`Context::wake_quota_holders`]) when it came, changed or went.
fn cached<K: Kind>(cache: &Store<K>, writer: &mut Writer<K>, event: &watcher::Event<K>, ctx: &Context) -> Option<K> {
    let (watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) = event else {
        writer.apply_watcher_event(event);
        if let watcher::Event::Delete(obj) = event {
            ctx.wake_followers(obj);
            ctx.wake_placed_with(obj);
            if crate::kinds::quota::counted(K::ID) {
                ctx.wake_quota_holders(obj);
            }
        }
        return None;
    };
    let Some(before) = cache.get(&ObjectRef::from_obj(obj)) else {
        // New to the cache: reconciled, and what weighs it weighs it now.
        writer.apply_watcher_event(event);
        ctx.wake_followers(obj);
        if crate::kinds::quota::counted(K::ID) {
            ctx.wake_quota_holders(obj);
        }
        return Some(obj.clone());
    };
    let has_followers = obj.references().iter().any(|reference| reference.kind.observes_others());
    let status_changed = has_followers && before.status() != obj.status();
    // The mirrored columns are named by their status fields: read from the statuses as JSON.
    let mirrored_field_changed = !K::STATUS_COLUMNS.is_empty() && {
        let (was, is) = (crate::mirror::current_status(before.as_ref()), crate::mirror::current_status(obj));
        K::STATUS_COLUMNS.iter().any(|column| was.get(column.field) != is.get(column.field))
    };
    let reconcile = mirrored_field_changed || reconcile_reads(before.meta(), obj.meta());
    // Mirrored for the first time, Ready, or placed elsewhere: what waited for its row or for
    // what it makes (an Environment's namespace on a cluster) can go on now.
    let standing = |obj: &K| {
        obj.common_status().map(|status| {
            let ready = status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            (status.mirrored_resource_version.is_some(), ready, status.placement.clone())
        })
    };
    let (was, is) = (standing(before.as_ref()), standing(obj));
    let moved_on = was != is && is.as_ref().is_some_and(|(mirrored, _, _)| *mirrored);
    let respecified = before.meta().generation != obj.meta().generation;
    writer.apply_watcher_event(event);
    if respecified {
        ctx.wake_governed(obj);
        if crate::kinds::quota::counted(K::ID) {
            ctx.wake_quota_holders(obj);
        }
    }
    if status_changed {
        ctx.wake_followers(obj);
    }
    if mirrored_field_changed {
        ctx.wake_awaiting_status(obj);
    }
    if moved_on {
        ctx.wake_waiting(obj);
        ctx.wake_placed_with(obj);
    }
    reconcile.then(|| obj.clone())
}

/// Whether an object's metadata moved in what its own reconcile reads: its spec (the
/// generation), its deletion and finalizers, its labels and annotations. (The status fields
/// its row mirrors are the other thing: written by one reconcile, mirrored by the next.)
fn reconcile_reads(was: &ObjectMeta, is: &ObjectMeta) -> bool {
    was.generation != is.generation
        || was.deletion_timestamp != is.deletion_timestamp
        || was.finalizers != is.finalizers
        || was.labels != is.labels
        || was.annotations != is.annotations
}

/// One watch per child type, whichever kinds own it, of the children `config`'s labels select
/// on the provider's cluster, filling its cache
/// ([`ChildCache`](crate::provision::cache::ChildCache)): a child deleted, edited by
/// hand or changing status reconciles the owner its labels name, within seconds; so does one
/// that a relist finds gone (deleted while the watch was away). A third-party type is watched
/// once its API is served.
///
/// The caches are made at once, before the watches run: an apply meanwhile waits for their
/// first lists rather than finding nothing there.
fn watch_children(
    cluster: Destination,
    provider: Arc<Provider>,
    owners: Owners,
    index: Index,
    config: watcher::Config,
) -> impl Future<Output = ()> + Send + 'static {
    let mut types: Vec<ChildType> = KindId::ALL.iter().flat_map(|kind| kind.child_types()).copied().collect();
    types.sort_by_key(|child| (child.api_version, child.kind));
    types.dedup_by_key(|child| (child.api_version, child.kind));
    let watches: Vec<_> = types
        .into_iter()
        .map(|type_| {
            let api = kube::Api::<DynamicObject>::all_with(provider.watch_client().clone(), &type_.api_resource());
            let mut writer = provider.children().writer(type_);
            let (asked, recording, config) = (provider.clone(), provider.clone(), config.clone());
            let owners_of_vanished = owners.clone();
            futures::stream::once(async move { until_served(&asked, type_).await })
                .flat_map(move |()| watcher(api.clone(), config.clone()))
                .default_backoff()
                .modify(move |child| trim(type_, child))
                .map(move |event| {
                    if let Ok(event) = &event {
                        for vanished in recording.children().record(type_, &mut writer, event) {
                            owners_of_vanished.wake(&vanished);
                        }
                    }
                    event
                })
                .touched_objects()
                .boxed()
        })
        .collect();
    async move {
        futures::stream::select_all(watches)
            .for_each(|child| {
                match child {
                    Ok(child) => {
                        owners.wake(&child);
                        wake_rollouts(&owners, &index, &child);
                        wake_placed_in_namespace(&owners, &index, &cluster, &child);
                    }
                    Err(error) => debug!(%error, "a child watch failed; retrying with backoff"),
                }
                futures::future::ready(())
            })
            .await;
    }
}

/// Reconciles what its organization placed on `cluster` when `child` is a namespace an
/// Environment made there: what goes in it waited for it (`NoNamespace`), and goes on now.
fn wake_placed_in_namespace(owners: &Owners, index: &Index, cluster: &Destination, child: &DynamicObject) {
    let labels = child.labels();
    let is_namespace = child.types.as_ref().is_some_and(|types| types.kind == "Namespace");
    let (true, Some("Environment"), Some(organization)) =
        (is_namespace, labels.get(labels::OWNER_KIND).map(String::as_str), labels.get(labels::OWNER_NAMESPACE))
    else {
        return;
    };
    for (kind, name, namespace) in index.placed_on(cluster) {
        if namespace == *organization {
            owners.wake_named(kind, &name, Some(&namespace));
        }
    }
}

/// Reconciles the rollouts under way of the stack whose Application owns `child` (a workload
/// of it moving): they advance as their workloads do, not at their next look.
fn wake_rollouts(owners: &Owners, index: &Index, child: &DynamicObject) {
    let labels = child.labels();
    let (Some("Application"), Some(name), Some(namespace)) = (
        labels.get(labels::OWNER_KIND).map(String::as_str),
        labels.get(labels::OWNER_NAME),
        labels.get(labels::OWNER_NAMESPACE),
    ) else {
        return;
    };
    let Some(application) = index.get::<Application>(Some(namespace), name) else { return };
    let under_way = |rollout: &&Arc<Deployment>| {
        rollout.spec.stack_ref == application.spec.stack_ref
            && matches!(crate::kinds::release::phase_of(rollout), DeploymentPhase::Pending | DeploymentPhase::Running)
    };
    for rollout in index.all::<Deployment>(Some(namespace)).iter().filter(under_way) {
        owners.wake_named(KindId::Deployment, &rollout.name_any(), Some(namespace));
    }
}

/// Returns once the provider's cluster serves `type_`, asking as often as discovery trusts a
/// missing API ([`RECHECK_MISSING`](crate::provision::apply::RECHECK_MISSING)): a watch of a
/// type not installed would only fail and list again, with backoff, for as long as it is not.
async fn until_served(provider: &Provider, type_: ChildType) {
    loop {
        match provider.unserved(&[type_]).await {
            Ok(unserved) if unserved.is_empty() => {
                provider.children().watched(type_, true);
                return;
            }
            Ok(_) => provider.children().watched(type_, false),
            Err(error) => debug!(%error, kind = type_.kind, "cannot tell whether a child type is served; asking again"),
        }
        tokio::time::sleep(crate::provision::apply::RECHECK_MISSING).await;
    }
}

/// `event` with its objects read as `K`. An object that is not a valid `K` is reported and
/// left out; an earlier valid version of it leaves the cache, so that nothing acts on what
/// the object no longer says.
async fn typed_event<K: Kind>(
    event: watcher::Event<DynamicObject>,
    cache: &Store<K>,
    ctx: &Context,
) -> Option<watcher::Event<K>> {
    Some(match event {
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitDone => watcher::Event::InitDone,
        watcher::Event::InitApply(obj) => match read_as(obj, cache, ctx, false).await {
            Ok(obj) => watcher::Event::InitApply(obj),
            Err(_) => return None,
        },
        watcher::Event::Apply(obj) => match read_as(obj, cache, ctx, false).await {
            Ok(obj) => watcher::Event::Apply(obj),
            Err(stale) => watcher::Event::Delete(stale?),
        },
        watcher::Event::Delete(obj) => match read_as(obj, cache, ctx, true).await {
            Ok(obj) => watcher::Event::Delete(obj),
            Err(stale) => watcher::Event::Delete(stale?),
        },
    })
}

/// `obj` as a `K`; or, when it is none, the version the cache holds, having reported it
/// unless it is `gone` from the API server.
async fn read_as<K: Kind>(mut obj: DynamicObject, cache: &Store<K>, ctx: &Context, gone: bool) -> Result<K, Option<K>> {
    // The cache holds every object of the kind: not what nothing reads.
    crate::mirror::trim_metadata(&mut obj.metadata);
    let named = || ObjectLabels {
        kind: K::kind(&()).into_owned(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
    };
    // What `DynamicObject::try_parse` does, keeping `obj` to name it should it fail.
    let error = match serde_json::to_value(&obj).and_then(|value| K::deserialize(&value)) {
        Ok(typed) => {
            ctx.metrics.readable(named);
            return Ok(typed);
        }
        Err(error) => error,
    };
    let object = named();
    if gone {
        ctx.metrics.readable(|| object.clone());
    } else {
        let message = format!("not a valid {}: {error}; skipped until it is fixed", object.kind);
        warn!(kind = %object.kind, namespace = %object.namespace, name = %object.name, %error, "object skipped");
        ctx.metrics.skipped(&object);
        let reference = obj.object_ref(&ApiResource::erase::<K>(&()));
        reconcile::announce(ctx, &reference, EventType::Warning, Reason::InvalidObject, &message).await;
    }
    let key = ObjectRef::<K>::new(&object.name);
    let key = if object.namespace.is_empty() { key } else { key.within(&object.namespace) };
    Err(cache.get(&key).map(|held| held.as_ref().clone()))
}

/// The owner a child's labels name: its name, and its namespace when it has one.
fn owner_ref<K: kube::Resource<DynamicType = ()>>(name: &str, namespace: Option<&str>) -> ObjectRef<K> {
    let owner = ObjectRef::new(name);
    match namespace {
        Some(namespace) => owner.within(namespace),
        None => owner,
    }
}

async fn drive<K: Kind, L: Lifecycle<K>>(controller: Controller<K>, ctx: &Arc<Context>) {
    controller
        .shutdown_on_signal()
        .run(reconcile::reconcile::<K, L>, reconcile::error_policy::<K>, ctx.clone())
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// What the probes and `/metrics` read.
pub struct Health {
    pub ctx: Arc<Context>,
    leader: AtomicBool,
}

impl Health {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx, leader: AtomicBool::new(false) }
    }

    pub fn became_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Release);
        self.ctx.metrics.set_leader(leader);
    }
}

async fn serve(address: SocketAddr, health: Arc<Health>) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(address).await?;
    info!(%address, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app).await?;
    Ok(())
}

/// Ready when the database answers and, for the leader, the caches builders read are synced.
/// A standby is ready too (it can take over at once) and says so.
pub async fn readyz(State(health): State<Arc<Health>>) -> (StatusCode, String) {
    let database =
        tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&health.ctx.pool)).await;
    if !matches!(database, Ok(Ok(_))) {
        return (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer".into());
    }
    if !health.leader.load(Ordering::Acquire) {
        return (StatusCode::OK, "standby: another replica holds the lease; database reachable".into());
    }
    let synced = tokio::time::timeout(Duration::ZERO, health.ctx.index.ready()).await.is_ok_and(|r| r.is_ok());
    if !synced {
        return (StatusCode::SERVICE_UNAVAILABLE, "leader: the watches have not listed everything yet".into());
    }
    (StatusCode::OK, "leader: watches synced; database reachable".into())
}

pub async fn metrics(State(health): State<Arc<Health>>) -> impl IntoResponse {
    let pool = &health.ctx.pool;
    let mut standing = health.ctx.index.standing();
    standing.waiting_for_database = i64::try_from(health.ctx.database.len()).unwrap_or(i64::MAX);
    match health.ctx.metrics.encode(pool.size(), pool.num_idle(), &standing) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
