//! Writing children to the cluster: discovery (is their API installed?), server-side apply
//! under the operator's field manager, deletion of the children no longer wanted, and what
//! deleting the owner does to them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::cache::{Cached, ChildCache};
use super::types::NAMESPACE;
use super::{ChildType, labels};
use crate::FIELD_MANAGER;
use crate::provision::DeletionPolicy;

/// How long discovery is trusted: an installed API rarely goes away; a missing one is looked
/// for again soon, so that installing it is noticed.
const INSTALLED_FOR: Duration = Duration::from_secs(10 * 60);
pub const RECHECK_MISSING: Duration = Duration::from_secs(60);

/// Why children could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Users install the API (or stop asking for it); the message names it.
    #[error("{}", not_installed(.0))]
    NotInstalled(Vec<ChildType>),
    /// The API server refused a child as invalid: something in the spec users can fix.
    #[error("{kind} {name}: {message}")]
    Rejected { kind: String, name: String, message: String },
    /// A child's name is taken by an object that is not this owner's: it is never taken over
    /// (unless annotated for adoption).
    #[error(
        "{kind} {} exists and is not this object's ({holder}); it is left alone: free the name, or annotate it {ADOPT_ANNOTATION}={owner} to hand it over",
        describe(.namespace.as_deref(), .name)
    )]
    NotOurs { kind: String, namespace: Option<String>, name: String, holder: String, owner: String },
    /// The namespace a child lands in is not there yet: its Environment makes it (on a
    /// workload cluster, once the cluster is connected). Waited for.
    #[error("namespace {0} does not exist yet on this cluster: its Environment makes it")]
    NoNamespace(String),
    /// A transient fault, retried with backoff.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
}

/// The annotation by which an administrator hands a pre-existing object to a WindFlow owner
/// (`Kind/name`, or `Kind/namespace/name` for a namespaced owner), as Crossplane's import does.
pub const ADOPT_ANNOTATION: &str = "windflow.io/adopt";

fn describe(namespace: Option<&str>, name: &str) -> String {
    namespace.map_or_else(|| name.to_owned(), |namespace| format!("{namespace}/{name}"))
}

/// Who an existing object's labels say holds it.
fn holder(existing: &ObjectMeta) -> String {
    let labels = existing.labels.clone().unwrap_or_default();
    match (labels.get(labels::OWNER_KIND), labels.get(labels::OWNER_NAME)) {
        (Some(kind), Some(name)) => match labels.get(labels::OWNER_NAMESPACE) {
            Some(namespace) => format!("held by {kind} {namespace}/{name}"),
            None => format!("held by {kind} {name}"),
        },
        _ => "not made by WindFlow".to_owned(),
    }
}

/// The owner a child's labels name, as the adoption annotation names it.
fn owner_of(child: &DynamicObject) -> String {
    let labels = child.labels();
    let part = |key: &str| labels.get(key).map(String::as_str);
    [part(labels::OWNER_KIND), part(labels::OWNER_NAMESPACE), part(labels::OWNER_NAME)]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether `child` may be applied over `existing`: it is this owner's (its owner-uid label),
/// or an administrator handed it over.
fn ours(existing: &ObjectMeta, child: &DynamicObject) -> bool {
    let uid = child.labels().get(labels::OWNER_UID);
    let held = existing.labels.as_ref().and_then(|labels| labels.get(labels::OWNER_UID));
    let adopted = existing.annotations.as_ref().and_then(|a| a.get(ADOPT_ANNOTATION));
    (uid.is_some() && held == uid) || adopted.is_some_and(|owner| *owner == owner_of(child))
}

fn not_installed(types: &[ChildType]) -> String {
    let apis: Vec<String> = types
        .iter()
        .map(|t| format!("{} is not installed (the cluster does not serve {} {})", t.provider(), t.api_version, t.kind))
        .collect();
    apis.join("; ")
}

/// The fields `wanted` sets that `live` holds otherwise, as `path: has …, wants …`: what a
/// server-side apply of `wanted` would change. Fields the API server or others add are not
/// differences; the status and the bookkeeping of metadata are not compared.
pub fn drift(wanted: &Value, live: &Value) -> Vec<String> {
    let mut found = vec![];
    let Some(fields) = wanted.as_object() else { return found };
    for (field, value) in fields {
        match field.as_str() {
            "status" | "apiVersion" | "kind" => {}
            "metadata" => {
                for part in ["labels", "annotations"] {
                    differ(&format!("metadata.{part}"), &value[part], &live["metadata"][part], &mut found);
                }
            }
            _ => differ(field, value, &live[field], &mut found),
        }
    }
    found
}

fn differ(path: &str, wanted: &Value, live: &Value, found: &mut Vec<String>) {
    match (wanted, live) {
        (Value::Null, _) => {}
        // The API server drops empty lists and maps.
        (Value::Array(items), Value::Null) if items.is_empty() => {}
        (Value::Object(fields), Value::Null) if fields.is_empty() => {}
        (Value::Object(wanted), Value::Object(live)) => {
            for (key, value) in wanted {
                differ(&format!("{path}.{key}"), value, live.get(key).unwrap_or(&Value::Null), found);
            }
        }
        (Value::Array(wanted), Value::Array(live)) if wanted.len() == live.len() => {
            for (position, (wanted, live)) in wanted.iter().zip(live).enumerate() {
                differ(&format!("{path}[{position}]"), wanted, live, found);
            }
        }
        (wanted, live) if wanted == live => {}
        (wanted, live) => found.push(format!("{path}: has {live}, wants {wanted}")),
    }
}

/// How long an apply waits for the child caches' first lists (a cluster just connected)
/// before it asks the API server instead.
const CACHE_WAIT: Duration = Duration::from_secs(10);

/// The annotation that keeps, on each child, the hash of what WindFlow wanted of it when it
/// last applied it: a change of what it wants shows as another hash, even a field it stopped
/// setting, which comparing fields would not see.
pub const DESIRED_HASH_ANNOTATION: &str = "windflow.io/desired-hash";

/// `child`, annotated with the hash of what it is.
fn stamped_with_hash(child: &DynamicObject) -> DynamicObject {
    let text = serde_json::to_vec(child).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &text);
    let hash: String = digest.as_ref().iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    let mut stamped = child.clone();
    stamped.annotations_mut().insert(DESIRED_HASH_ANNOTATION.to_owned(), hash);
    stamped
}

/// Whether `live` is what `wanted` asks for: applied with the same hash, and nothing it sets
/// drifted since (edited by hand, or by another controller).
fn as_wanted(wanted: &DynamicObject, live: &DynamicObject) -> bool {
    let hash = |object: &DynamicObject| object.annotations().get(DESIRED_HASH_ANNOTATION).cloned();
    if hash(live).is_none() || hash(live) != hash(wanted) {
        return false;
    }
    match (serde_json::to_value(wanted), serde_json::to_value(live)) {
        (Ok(wanted), Ok(live)) => drift(&wanted, &live).is_empty(),
        _ => false,
    }
}

/// What discovery said of the cluster, and when: the kinds each group version serves, with
/// their plural names.
struct Discovered {
    at: Instant,
    served: HashMap<String, HashMap<String, String>>,
}

impl Discovered {
    /// Whether what it says of `api_version` is still trusted at `now`: a group version served
    /// for [`INSTALLED_FOR`], one missing for [`RECHECK_MISSING`].
    fn trusted(&self, api_version: &str, now: Instant) -> bool {
        let trusted = if self.served.contains_key(api_version) { INSTALLED_FOR } else { RECHECK_MISSING };
        now.duration_since(self.at) < trusted
    }

    /// Where objects of that type are served, if they are.
    fn resource(&self, child: ChildType) -> Option<ApiResource> {
        let plural = self.served.get(child.api_version)?.get(child.kind)?;
        let (group, version) = child.api_version.rsplit_once('/').unwrap_or(("", child.api_version));
        Some(ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: child.api_version.to_owned(),
            kind: child.kind.to_owned(),
            plural: plural.clone(),
        })
    }
}

/// Every group version the cluster serves, with its kinds, by aggregated discovery
/// (`/api` and `/apis`, Kubernetes 1.26 and later): two requests for the whole cluster,
/// however many types its children have and however many of them are missing.
async fn discover(client: &Client) -> Result<Discovered, kube::Error> {
    let core = client.list_core_api_versions_aggregated().await?;
    let groups = client.list_api_groups_aggregated().await?;
    let mut served: HashMap<String, HashMap<String, String>> = HashMap::new();
    for group in core.items.iter().chain(&groups.items) {
        let name = group.metadata.as_ref().and_then(|meta| meta.name.as_deref()).unwrap_or_default();
        for version in &group.versions {
            let Some(version_name) = version.version.as_deref() else { continue };
            let api_version = if name.is_empty() { version_name.to_owned() } else { format!("{name}/{version_name}") };
            let kinds = served.entry(api_version).or_default();
            for resource in &version.resources {
                let kind = resource.response_kind.as_ref().and_then(|kind| kind.kind.clone());
                if let (Some(kind), Some(plural)) = (kind, resource.resource.clone()) {
                    kinds.entry(kind).or_insert(plural);
                }
            }
        }
    }
    // Asked for aggregated discovery, an older API server answers the plain lists, which
    // read as empty: everything would seem missing.
    if !served.contains_key("v1") {
        return Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(
            "core v1 in the aggregated discovery of /api: the API server serves none (Kubernetes 1.26 and later do)"
                .to_owned(),
        )));
    }
    Ok(Discovered { at: Instant::now(), served })
}

/// The last answer of discovery, and its last failure.
#[derive(Default)]
struct Discovery {
    known: Option<Discovered>,
    /// When discovery last failed, and why: what waited for that attempt shares its failure
    /// rather than asking again, so that a cluster that hangs holds its reconciles for one
    /// read timeout, not for one after another.
    failed: Option<(Instant, String)>,
}

/// The cluster children are written to, with what discovery learned of it.
pub struct Provider {
    client: Client,
    /// The client its watches use: as patient as a watch lasts, where `client` gives up sooner.
    watch_client: Client,
    /// What discovery said, behind a lock held while it is asked: the reconciles and watches
    /// that ask at once share one discovery.
    discovered: tokio::sync::Mutex<Discovery>,
    /// The children on this cluster, once its child watches run.
    children: ChildCache,
}

impl Provider {
    /// The provider of a cluster whose one client both reads and watches.
    pub fn new(client: Client) -> Self {
        Self::remote(client.clone(), client)
    }

    /// The provider of a cluster reached with a client for requests and one for watches.
    pub fn remote(client: Client, watch_client: Client) -> Self {
        Self { client, watch_client, discovered: tokio::sync::Mutex::default(), children: ChildCache::default() }
    }

    /// The client of the cluster this provider writes to.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The client the watches of this cluster's children use.
    pub fn watch_client(&self) -> &Client {
        &self.watch_client
    }

    /// The cache of the children on this cluster, which its child watches fill.
    pub fn children(&self) -> &ChildCache {
        &self.children
    }

    /// Where objects of that type are served, or `None` when the cluster does not serve it.
    async fn resource(&self, child: ChildType) -> Result<Option<ApiResource>, kube::Error> {
        let asked = Instant::now();
        let mut discovery = self.discovered.lock().await;
        let trusted = discovery.known.as_ref().filter(|known| known.trusted(child.api_version, Instant::now()));
        if let Some(known) = trusted {
            return Ok(known.resource(child));
        }
        if let Some((_, why)) = discovery.failed.as_ref().filter(|(at, _)| *at >= asked) {
            return Err(kube::Error::Service(format!("discovery failed while this waited for it: {why}").into()));
        }
        match discover(&self.client).await {
            Ok(known) => {
                let resource = known.resource(child);
                *discovery = Discovery { known: Some(known), failed: None };
                Ok(resource)
            }
            Err(error) => {
                discovery.failed = Some((Instant::now(), error.to_string()));
                Err(error)
            }
        }
    }

    /// The types among `types` that the cluster does not serve (discovery, cached).
    pub async fn unserved(&self, types: &[ChildType]) -> Result<Vec<ChildType>, kube::Error> {
        let mut unserved = vec![];
        for &type_ in types {
            if self.resource(type_).await?.is_none() {
                unserved.push(type_);
            }
        }
        Ok(unserved)
    }

    /// Server-side applies every child (forcing our fields back: drift repair) and returns them
    /// as the API server stored them. Nothing is applied unless every type is installed.
    ///
    /// A child the cache holds as wanted (the hash of what WindFlow wants of it is the one it
    /// was last applied with, and none of the fields it sets drifted) is not applied again: a
    /// reconcile with nothing new writes nothing, and reads nothing but the cache.
    pub async fn apply(
        &self,
        types: &'static [ChildType],
        children: &[DynamicObject],
    ) -> Result<Vec<DynamicObject>, ApplyError> {
        let targets = self.targets(types, children).await?;
        let wanted_types: Vec<ChildType> = targets.iter().map(|(type_, _)| *type_).collect();
        self.children.listed(&wanted_types, CACHE_WAIT).await;
        // Each child as it is to be applied, with what the cache holds of it when that is
        // already as wanted. Nothing is applied unless every name is free or already this
        // owner's: forced apply would take over whatever holds it.
        let mut planned: Vec<(DynamicObject, &ApiResource, Option<DynamicObject>)> = Vec::with_capacity(children.len());
        // Namespaces this apply creates (the API server found none of that name): nothing is
        // in them yet, so their children need not be looked for.
        let mut created_namespaces: Vec<String> = vec![];
        for (child, (type_, resource)) in children.iter().zip(&targets) {
            let child = stamped_with_hash(child);
            let existing = match self.children.get(*type_, &child) {
                Cached::Found(live) if ours(&live.metadata, &child) && as_wanted(&child, &live) => {
                    planned.push((child, resource, Some(live.as_ref().clone())));
                    continue;
                }
                Cached::Found(live) => Some(live.metadata.clone()),
                Cached::Absent | Cached::Unknown
                    if child.namespace().is_some_and(|namespace| created_namespaces.contains(&namespace)) =>
                {
                    None
                }
                // Not there, or not labelled as WindFlow's: only the API server can tell.
                Cached::Absent | Cached::Unknown => {
                    let api = api(&self.client, child.namespace().as_deref(), resource);
                    let found = api.get_metadata_opt(&child.name_any()).await?.map(|existing| existing.metadata);
                    if found.is_none() && *type_ == NAMESPACE {
                        created_namespaces.push(child.name_any());
                    }
                    found
                }
            };
            if let Some(existing) = existing.filter(|existing| !ours(existing, &child)) {
                return Err(ApplyError::NotOurs {
                    kind: resource.kind.clone(),
                    namespace: child.namespace(),
                    name: child.name_any(),
                    holder: holder(&existing),
                    owner: owner_of(&child),
                });
            }
            planned.push((child, resource, None));
        }
        let writing: Vec<&DynamicObject> =
            planned.iter().filter(|(_, _, held)| held.is_none()).map(|(child, _, _)| child).collect();
        if !writing.is_empty() {
            self.namespaces_are_the_tenants(&writing).await?;
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let mut applied = Vec::with_capacity(children.len());
        for (mut object, resource, held) in planned {
            if let Some(held) = held {
                applied.push(held);
                continue;
            }
            let name = object.name_any();
            let api = api(&self.client, object.namespace().as_deref(), resource);
            // A status the builder sets (a reported node's phase) goes to the status
            // subresource, where the API server keeps it.
            let status = object.data.as_object_mut().and_then(|data| data.remove("status"));
            let mut stored = api
                .patch(&name, &params, &Patch::Apply(&object))
                .await
                .map_err(|e| rejected(e, &resource.kind, &name))?;
            if let Some(status) = status {
                let patch = json!({ "apiVersion": resource.api_version, "kind": resource.kind, "status": status });
                stored = api
                    .patch_status(&name, &params, &Patch::Apply(&patch))
                    .await
                    .map_err(|e| rejected(e, &resource.kind, &name))?;
            }
            applied.push(stored);
        }
        Ok(applied)
    }

    /// Every namespace a child lands in belongs to the child's organization (its
    /// `windflow.io/organization` label): two tenants' environment namespaces may be named
    /// alike, and a child must never land in the other's. The namespaces WindFlow made are read
    /// from their cache; any other only the API server can tell.
    async fn namespaces_are_the_tenants(&self, children: &[&DynamicObject]) -> Result<(), ApplyError> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let mut checked: Vec<String> = vec![];
        for child in children {
            let Some(namespace) = child.namespace() else { continue };
            if checked.contains(&namespace) {
                continue;
            }
            checked.push(namespace.clone());
            // A namespace the same apply writes is checked as a child itself: this owner's,
            // labelled with its organization.
            let made_here = children.iter().any(|other| {
                other.types.as_ref().is_some_and(|t| t.kind == "Namespace") && other.name_any() == namespace
            });
            if made_here {
                continue;
            }
            let tenant = child.labels().get(labels::ORGANIZATION);
            let existing = match self.children.named(NAMESPACE, (None, namespace.clone())) {
                Cached::Found(made) => Some(made.metadata.clone()),
                Cached::Absent | Cached::Unknown => namespaces.get_metadata_opt(&namespace).await?.map(|n| n.metadata),
            };
            let Some(existing) = existing else { return Err(ApplyError::NoNamespace(namespace)) };
            if existing.labels.as_ref().and_then(|held| held.get(labels::ORGANIZATION)) != tenant {
                return Err(ApplyError::NotOurs {
                    kind: "Namespace".into(),
                    namespace: None,
                    name: namespace,
                    holder: holder(&existing),
                    owner: owner_of(child),
                });
            }
        }
        Ok(())
    }

    /// Deletes the children of `owner` (by the owner-uid label) that `wanted` no longer holds.
    /// Types that are not installed have no children to look for.
    pub async fn prune(
        &self,
        owner: &str,
        types: &'static [ChildType],
        wanted: &[DynamicObject],
    ) -> Result<usize, ApplyError> {
        let mut deleted = 0;
        for (resource, child) in self.cached_children_of(owner, types).await? {
            if !wants(wanted, &resource, &child) {
                deleted += usize::from(delete(&self.client, &resource, &child).await?);
            }
        }
        Ok(deleted)
    }

    /// Where each of `children` is served; `NotInstalled`, naming them, when some types are not.
    async fn targets(
        &self,
        types: &'static [ChildType],
        children: &[DynamicObject],
    ) -> Result<Vec<(ChildType, ApiResource)>, ApplyError> {
        let mut targets = Vec::with_capacity(children.len());
        let mut missing = vec![];
        for child in children {
            let type_ = child_type(types, child)?;
            match self.resource(type_).await? {
                Some(resource) => targets.push((type_, resource)),
                None if missing.contains(&type_) => {}
                None => missing.push(type_),
            }
        }
        if missing.is_empty() { Ok(targets) } else { Err(ApplyError::NotInstalled(missing)) }
    }

    /// How the children of `owner` on this cluster differ from `wanted`, one line each: a
    /// child missing, a field it wants that holds something else, a child it no longer wants.
    /// `NotInstalled` when a type is not: then nothing is applied (the owner's status says so).
    pub async fn compare(
        &self,
        owner: &str,
        types: &'static [ChildType],
        wanted: &[DynamicObject],
    ) -> Result<Vec<String>, ApplyError> {
        // Like an apply, which writes nothing while any type is not installed.
        let targets = self.targets(types, wanted).await?;
        let mut differences = vec![];
        for (child, (_, resource)) in wanted.iter().zip(targets) {
            let what = format!("{} {}", resource.kind, describe(child.namespace().as_deref(), &child.name_any()));
            let api = api(&self.client, child.namespace().as_deref(), &resource);
            match api.get_opt(&child.name_any()).await? {
                None => differences.push(format!("{what}: missing")),
                Some(live) => {
                    let (wanted, live) = (serde_json::to_value(child), serde_json::to_value(&live));
                    let (Ok(wanted), Ok(live)) = (wanted, live) else { continue };
                    differences.extend(drift(&wanted, &live).into_iter().map(|field| format!("{what}: {field}")));
                }
            }
        }
        for (resource, child) in self.children_of(owner, types).await? {
            if !wants(wanted, &resource, &child) {
                let what = describe(child.namespace.as_deref(), &child.name);
                differences.push(format!("{} {what}: left over, no longer wanted", resource.kind));
            }
        }
        Ok(differences)
    }

    /// The names of `owner`'s children of `types` on this cluster.
    pub async fn names_of(&self, owner: &str, types: &'static [ChildType]) -> Result<Vec<String>, ApplyError> {
        Ok(self.cached_children_of(owner, types).await?.into_iter().map(|(_, child)| child.name).collect())
    }

    /// Whether this cluster holds any child of `owner`.
    pub async fn holds(&self, owner: &str, types: &'static [ChildType]) -> Result<bool, ApplyError> {
        Ok(!self.cached_children_of(owner, types).await?.is_empty())
    }

    /// What deleting `owner` does to its children: deleted with it, or orphaned (owner
    /// references and owner labels removed, so nothing finds them as its children again).
    pub async fn release(
        &self,
        owner: &str,
        types: &'static [ChildType],
        policy: DeletionPolicy,
    ) -> Result<usize, ApplyError> {
        let children = self.children_of(owner, types).await?;
        for (resource, child) in &children {
            match policy {
                DeletionPolicy::Delete => {
                    delete(&self.client, resource, child).await?;
                }
                DeletionPolicy::Orphan => {
                    let orphaned = json!({ "metadata": {
                        "ownerReferences": null,
                        "labels": {
                            labels::OWNER_UID: null,
                            labels::OWNER_KIND: null,
                            labels::OWNER_NAME: null,
                            labels::OWNER_NAMESPACE: null,
                            labels::MANAGED_BY: null,
                        },
                    } });
                    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..PatchParams::default() };
                    let patched = api(&self.client, child.namespace.as_deref(), resource)
                        .patch_metadata(&child.name, &params, &Patch::Merge(&orphaned))
                        .await;
                    ignore_not_found(patched.map(|_| ()))?;
                }
            }
        }
        Ok(children.len())
    }

    /// [`Provider::children_of`], read from the cache for the types it has listed. A child
    /// made a moment ago may be missing there: what reads this (pruning, whether a cluster
    /// still holds children) is woken again by that child's watch event. Deleting an owner
    /// lists instead, so that nothing it made is left behind.
    async fn cached_children_of(
        &self,
        owner: &str,
        types: &'static [ChildType],
    ) -> Result<Vec<(ApiResource, Found)>, ApplyError> {
        let mut found = vec![];
        let mut unlisted = vec![];
        for type_ in types {
            match self.children.owned_by(*type_, owner) {
                Some(children) => {
                    let Some(resource) = self.resource(*type_).await? else { continue };
                    found.extend(
                        children.into_iter().map(|(namespace, name)| (resource.clone(), Found { name, namespace })),
                    );
                }
                None => unlisted.push(*type_),
            }
        }
        for type_ in unlisted {
            found.extend(self.children_of(owner, std::slice::from_ref(&type_)).await?);
        }
        Ok(found)
    }

    /// Every object of those types labeled as a child of `owner`, in any namespace.
    async fn children_of(&self, owner: &str, types: &[ChildType]) -> Result<Vec<(ApiResource, Found)>, ApplyError> {
        let selector = ListParams::default().labels(&format!("{}={owner}", labels::OWNER_UID));
        let mut found = vec![];
        for type_ in types {
            let Some(resource) = self.resource(*type_).await? else { continue };
            let list = Api::<DynamicObject>::all_with(self.client.clone(), &resource).list_metadata(&selector).await?;
            for item in list.items {
                let child = Found { name: item.name_any(), namespace: item.namespace() };
                found.push((resource.clone(), child));
            }
        }
        Ok(found)
    }
}

/// A child found by label.
struct Found {
    name: String,
    namespace: Option<String>,
}

/// The declared type of a built child; a builder producing an undeclared type is a bug that
/// would leave the child out of orphan cleanup, so it is refused.
/// Whether `wanted` holds the child `found` of type `resource`.
fn wants(wanted: &[DynamicObject], resource: &ApiResource, found: &Found) -> bool {
    wanted.iter().any(|w| {
        w.types.as_ref().is_some_and(|t| t.kind == resource.kind && t.api_version == resource.api_version)
            && w.name_any() == found.name
            && w.namespace() == found.namespace
    })
}

fn child_type(types: &'static [ChildType], child: &DynamicObject) -> Result<ChildType, ApplyError> {
    let declared = child
        .types
        .as_ref()
        .and_then(|t| types.iter().find(|declared| declared.api_version == t.api_version && declared.kind == t.kind));
    declared.copied().ok_or_else(|| ApplyError::Rejected {
        kind: child.types.as_ref().map(|t| t.kind.clone()).unwrap_or_default(),
        name: child.name_any(),
        message: "not a type this kind declares it provisions".into(),
    })
}

fn api(client: &Client, namespace: Option<&str>, resource: &ApiResource) -> Api<DynamicObject> {
    match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    }
}

/// Deletes one child; one already gone counts as deleted by someone else.
async fn delete(client: &Client, resource: &ApiResource, child: &Found) -> Result<bool, ApplyError> {
    let deleted = api(client, child.namespace.as_deref(), resource)
        .delete(&child.name, &DeleteParams::background())
        .await
        .map(|_| ());
    Ok(ignore_not_found(deleted)?.is_some())
}

fn ignore_not_found(result: Result<(), kube::Error>) -> Result<Option<()>, kube::Error> {
    match result {
        Ok(()) => Ok(Some(())),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(None),
        Err(error) => Err(error),
    }
}

/// A refusal users can fix (the child is invalid) is a condition; anything else is retried.
fn rejected(error: kube::Error, kind: &str, name: &str) -> ApplyError {
    match error {
        kube::Error::Api(status) if status.is_invalid() || status.code == 400 => {
            ApplyError::Rejected { kind: kind.to_owned(), name: name.to_owned(), message: status.message }
        }
        error => ApplyError::Kube(error),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::drift;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).expect("a YAML document")
    }

    const WORKLOAD: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: { name: api, namespace: acme-production, labels: { windflow.io/owner-name: api } }
spec:
  replicas: 3
  template:
    spec:
      containers: [{ name: api, image: "api:1.4.2", ports: [{ containerPort: 8080 }], env: [] }]
status: { replicas: 3 }
"#;

    #[test]
    fn a_child_is_applied_again_when_what_is_wanted_changes_or_what_it_sets_drifts() {
        use super::{as_wanted, stamped_with_hash};
        let object = |value: Value| -> kube::api::DynamicObject { serde_json::from_value(value).expect("a child") };
        let wanted = stamped_with_hash(&object(yaml(WORKLOAD)));
        let mut live = serde_json::to_value(&wanted).expect("json");
        live["metadata"]["uid"] = "0b6f".into();
        live["spec"]["strategy"] = yaml("{ type: RollingUpdate }");
        live["status"]["replicas"] = 1.into();
        assert!(as_wanted(&wanted, &object(live.clone())), "the server's additions are no change");

        let mut edited = live.clone();
        edited["spec"]["replicas"] = 1.into();
        assert!(!as_wanted(&wanted, &object(edited)), "a field it sets, edited by hand");

        // A field WindFlow stops setting is no drift of the live object, but another hash.
        let mut fewer = yaml(WORKLOAD);
        fewer["metadata"]["labels"].as_object_mut().expect("labels").remove("windflow.io/owner-name");
        assert!(!as_wanted(&stamped_with_hash(&object(fewer)), &object(live.clone())));

        let mut unstamped = live;
        unstamped["metadata"]["annotations"] = Value::Null;
        assert!(!as_wanted(&wanted, &object(unstamped)), "applied by another version, or not by WindFlow");
        assert_eq!(stamped_with_hash(&object(yaml(WORKLOAD))), wanted, "the hash is the same for the same child");
    }

    #[test]
    fn drift_is_what_an_apply_would_change_not_what_the_server_adds() {
        let wanted = yaml(WORKLOAD);
        let mut live = wanted.clone();
        live["metadata"]["uid"] = "0b6f".into();
        live["metadata"]["labels"]["added-by-someone"] = "x".into();
        live["spec"]["strategy"] = yaml("{ type: RollingUpdate }");
        live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"] = "TCP".into();
        live["spec"]["template"]["spec"]["containers"][0].as_object_mut().expect("a container").remove("env");
        live["status"]["replicas"] = 1.into();
        assert_eq!(drift(&wanted, &live), Vec::<String>::new());

        live["metadata"]["labels"]["windflow.io/owner-name"] = "other".into();
        live["spec"]["replicas"] = 1.into();
        live["spec"]["template"]["spec"]["containers"][0]["image"] = "api:1.4.1".into();
        assert_eq!(
            drift(&wanted, &live),
            [
                r#"metadata.labels.windflow.io/owner-name: has "other", wants "api""#,
                "spec.replicas: has 1, wants 3",
                r#"spec.template.spec.containers[0].image: has "api:1.4.1", wants "api:1.4.2""#,
            ]
        );
        live["spec"]["template"]["spec"]["containers"] = yaml("[]");
        assert_eq!(drift(&wanted, &live).len(), 3, "a list of another length differs as a whole");
    }
}
