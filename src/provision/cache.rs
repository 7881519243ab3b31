//! The children on one cluster as its watches last saw them: one reflector store per child
//! type, indexed by owner, trimmed of what nothing reads. Applies compare with it instead of
//! writing what is there already; pruning and ownership checks read it instead of listing.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::reflector::store::Writer;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::{ChildType, labels};

/// The annotation `kubectl apply` keeps: a copy of the whole object, read by nothing here.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A child's namespace and name.
pub type Key = (Option<String>, String);

/// The cache of one child type.
struct Typed {
    store: Store<DynamicObject>,
    resource: ApiResource,
    /// Whether its watch runs, or is about to: false while the cluster does not serve it.
    watched: bool,
    /// The children of each owner (their owner-uid label).
    owners: HashMap<String, BTreeSet<Key>>,
}

impl Typed {
    fn reference(&self, (namespace, name): &Key) -> ObjectRef<DynamicObject> {
        let reference = ObjectRef::new_with(name, self.resource.clone());
        match namespace {
            Some(namespace) => reference.within(namespace),
            None => reference,
        }
    }
}

/// What the cache knows of a child.
pub enum Cached {
    /// Its type's watch has not listed yet (or the type is not served): ask the API server.
    Unknown,
    /// It is not there, or not labelled as WindFlow's (the watches select those only).
    Absent,
    Found(Arc<DynamicObject>),
}

/// The children of one cluster, by type.
#[derive(Default)]
pub struct ChildCache {
    types: Mutex<HashMap<(&'static str, &'static str), Typed>>,
}

impl ChildCache {
    fn locked(&self) -> MutexGuard<'_, HashMap<(&'static str, &'static str), Typed>> {
        self.types.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer of `type_`'s store; its watch feeds it through [`ChildCache::record`].
    pub fn writer(&self, type_: ChildType) -> Writer<DynamicObject> {
        let resource = type_.api_resource();
        let writer = Writer::new(resource.clone());
        let typed = Typed { store: writer.as_reader(), resource, watched: true, owners: HashMap::new() };
        self.locked().insert((type_.api_version, type_.kind), typed);
        writer
    }

    /// Whether the watch of `type_` runs: it does not while the cluster does not serve the
    /// type, and applies do not wait for its list meanwhile.
    pub fn watched(&self, type_: ChildType, watched: bool) {
        if let Some(typed) = self.locked().get_mut(&(type_.api_version, type_.kind)) {
            typed.watched = watched;
        }
    }

    /// Puts a watch event of `type_` into its store and owner index. Returns the children a
    /// relist found gone: deleted while the watch was away (the API server restarting, its
    /// history compacted), of which no Delete event tells.
    pub fn record(
        &self,
        type_: ChildType,
        writer: &mut Writer<DynamicObject>,
        event: &watcher::Event<DynamicObject>,
    ) -> Vec<Arc<DynamicObject>> {
        let held_before_relist = matches!(event, watcher::Event::InitDone).then(|| writer.as_reader().state());
        writer.apply_watcher_event(event);
        let mut types = self.locked();
        let Some(typed) = types.get_mut(&(type_.api_version, type_.kind)) else { return vec![] };
        match event {
            watcher::Event::Apply(child) => {
                index(&mut typed.owners, child);
            }
            watcher::Event::Delete(child) => {
                if let Some(owner) = child.labels().get(labels::OWNER_UID)
                    && let Some(children) = typed.owners.get_mut(owner)
                {
                    children.remove(&key(child));
                    if children.is_empty() {
                        typed.owners.remove(owner);
                    }
                }
            }
            // A relist replaced the store: the index follows what it holds now.
            watcher::Event::InitDone => {
                typed.owners.clear();
                for child in typed.store.state() {
                    index(&mut typed.owners, &child);
                }
            }
            watcher::Event::Init | watcher::Event::InitApply(_) => {}
        }
        let relisted = &typed.store;
        let vanished = |child: &Arc<DynamicObject>| relisted.get(&typed.reference(&key(child))).is_none();
        held_before_relist.into_iter().flatten().filter(vanished).collect()
    }

    /// Waits, at most `within`, until the caches of `types` have listed: a cluster just
    /// connected, or the operator just started. A type with no cache, or whose watch waits for
    /// the type to be served, is not waited for.
    pub async fn listed(&self, types: &[ChildType], within: Duration) {
        let unlisted: Vec<Store<DynamicObject>> = {
            let caches = self.locked();
            let watched = types.iter().filter_map(|type_| caches.get(&(type_.api_version, type_.kind)));
            watched.filter(|typed| typed.watched && !listed(&typed.store)).map(|typed| typed.store.clone()).collect()
        };
        let lists = futures::future::join_all(unlisted.iter().map(Store::wait_until_ready));
        // Past `within`, the caller asks the API server instead.
        let _ = tokio::time::timeout(within, lists).await;
    }

    /// The child of `type_` named as `child` is.
    pub fn get(&self, type_: ChildType, child: &DynamicObject) -> Cached {
        self.named(type_, key(child))
    }

    /// The child of `type_` at `(namespace, name)`.
    pub fn named(&self, type_: ChildType, at: Key) -> Cached {
        let types = self.locked();
        let Some(typed) = types.get(&(type_.api_version, type_.kind)).filter(|typed| listed(&typed.store)) else {
            return Cached::Unknown;
        };
        typed.store.get(&typed.reference(&at)).map_or(Cached::Absent, Cached::Found)
    }

    /// The children of `owner` of `type_` (namespace and name), or `None` while its watch has
    /// not listed. Each is checked against the store: a child relabelled since it was indexed
    /// is not this owner's any more.
    pub fn owned_by(&self, type_: ChildType, owner: &str) -> Option<Vec<Key>> {
        let types = self.locked();
        let typed = types.get(&(type_.api_version, type_.kind)).filter(|typed| listed(&typed.store))?;
        let Some(indexed) = typed.owners.get(owner) else { return Some(vec![]) };
        let still_owned = |key: &&Key| {
            let child = typed.store.get(&typed.reference(key));
            child.is_some_and(|child| child.labels().get(labels::OWNER_UID).is_some_and(|held| held == owner))
        };
        Some(indexed.iter().filter(still_owned).cloned().collect())
    }
}

/// Whether the store has been filled by its watch's first list.
fn listed(store: &Store<DynamicObject>) -> bool {
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

fn key(child: &DynamicObject) -> Key {
    (child.namespace(), child.name_any())
}

fn index(owners: &mut HashMap<String, BTreeSet<Key>>, child: &DynamicObject) {
    if let Some(owner) = child.labels().get(labels::OWNER_UID) {
        owners.entry(owner.clone()).or_default().insert(key(child));
    }
}

/// What the cache keeps of a child of `type_`: its type, which a list's items do not carry
/// and which builders read (a claim is found among the applied children by it); not its
/// managed fields nor kubectl's copy of it, which nothing reads and which would double what
/// it holds.
pub fn trim(type_: ChildType, child: &mut DynamicObject) {
    child.types = Some(kube::api::TypeMeta { api_version: type_.api_version.to_owned(), kind: type_.kind.to_owned() });
    child.meta_mut().managed_fields = None;
    if let Some(annotations) = child.meta_mut().annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::provision::types::PVC;

    fn claim(name: &str, owner: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": { "name": name, "namespace": "acme-production", "labels": { labels::OWNER_UID: owner },
                          "managedFields": [{ "manager": "windflow-operator" }],
                          "annotations": { LAST_APPLIED: "{}", "kept": "yes" } },
            "spec": { "storageClassName": "standard" },
        }))
        .expect("a claim")
    }

    fn names(keys: Option<Vec<Key>>) -> Option<Vec<String>> {
        keys.map(|keys| keys.into_iter().map(|(_, name)| name).collect())
    }

    #[test]
    fn the_cache_answers_once_listed_indexes_by_owner_and_follows_changes() {
        let cache = ChildCache::default();
        let mut writer = cache.writer(PVC);
        let trimmed = |name: &str, owner: &str| {
            let mut child = claim(name, owner);
            trim(PVC, &mut child);
            child
        };
        assert!(matches!(cache.get(PVC, &claim("a", "o1")), Cached::Unknown), "not listed yet");
        assert_eq!(cache.owned_by(PVC, "o1"), None);
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(trimmed("a", "o1")),
            watcher::Event::InitApply(trimmed("b", "o1")),
            watcher::Event::InitDone,
            watcher::Event::Apply(trimmed("c", "o2")),
        ] {
            cache.record(PVC, &mut writer, &event);
        }
        assert_eq!(names(cache.owned_by(PVC, "o1")), Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(names(cache.owned_by(PVC, "o2")), Some(vec!["c".to_owned()]));
        let Cached::Found(found) = cache.get(PVC, &claim("a", "o1")) else { panic!("a is cached") };
        assert_eq!(found.types.as_ref().map(|t| t.kind.as_str()), Some("PersistentVolumeClaim"), "typed");
        assert_eq!(found.metadata.managed_fields, None, "trimmed");
        assert_eq!(found.annotations().keys().collect::<Vec<_>>(), ["kept"]);
        assert!(matches!(cache.get(PVC, &claim("z", "o1")), Cached::Absent));

        // Deleted, and relabelled to another owner: neither is o1's any more.
        cache.record(PVC, &mut writer, &watcher::Event::Delete(trimmed("a", "o1")));
        cache.record(PVC, &mut writer, &watcher::Event::Apply(trimmed("b", "o3")));
        assert_eq!(names(cache.owned_by(PVC, "o1")), Some(vec![]));
        assert_eq!(names(cache.owned_by(PVC, "o3")), Some(vec!["b".to_owned()]));

        // A relist without c (deleted while the watch was away): c is said gone, once.
        let mut gone = vec![];
        for event in [watcher::Event::Init, watcher::Event::InitApply(trimmed("b", "o3")), watcher::Event::InitDone] {
            gone.extend(cache.record(PVC, &mut writer, &event).iter().map(|child| child.name_any()));
        }
        assert_eq!(gone, ["c"]);
        assert_eq!(names(cache.owned_by(PVC, "o2")), Some(vec![]));
        let again = [watcher::Event::Init, watcher::Event::InitApply(trimmed("b", "o3")), watcher::Event::InitDone];
        assert!(again.iter().all(|event| cache.record(PVC, &mut writer, event).is_empty()), "nothing more is gone");
    }

    #[tokio::test]
    async fn an_apply_waiting_for_the_first_list_goes_on_when_it_comes() {
        let cache = ChildCache::default();
        let mut writer = cache.writer(PVC);
        let waiting = cache.listed(&[PVC], Duration::from_secs(3600));
        let listing = async {
            cache.record(PVC, &mut writer, &watcher::Event::Init);
            cache.record(PVC, &mut writer, &watcher::Event::InitDone);
        };
        let both = async { futures::join!(waiting, listing) };
        assert!(tokio::time::timeout(Duration::from_secs(30), both).await.is_ok(), "woken by the list, not the hour");
        // A type the cluster does not serve is not waited for.
        let unserved = ChildCache::default();
        let _writer = unserved.writer(PVC);
        unserved.watched(PVC, false);
        let done = tokio::time::timeout(Duration::from_secs(30), unserved.listed(&[PVC], Duration::from_secs(3600)));
        assert!(done.await.is_ok());
    }
}
