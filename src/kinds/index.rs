//! The one index of the WindFlow objects: which organization owns a namespace, what a
//! reference points at, which objects hang from another. Synchronous and pure over the
//! controllers' reflector stores (a lookup is a hash lookup, nothing is cloned but `Arc`s), so
//! the mirror, provisioning, rollouts, `check` and `render` all ask it the same questions; the
//! tools and tests build it from documents, without an API server.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use uuid::Uuid;

use super::common::{Reference, Referenced, Resolved};
use super::organization::tenant_of;
use super::*;
use crate::mirror::actor::Actor;
use crate::provision::{Anchor, Placement, ProvisionError, Result};
use crate::reason::Reason;

/// A kind the index holds: where its store is.
pub trait Indexed: Kind {
    fn store(index: &Index) -> &Store<Self>;
}

/// The index's stores, one per kind, from the registry.
macro_rules! index {
    ($($kind:ident: $module:ident => $lifecycle:ident,)*) => {
        /// Read-only views of the reflector stores of every kind.
        #[derive(Clone)]
        pub struct Index {
            $(pub $module: Store<$kind>,)*
        }

        $(impl Indexed for $kind {
            fn store(index: &Index) -> &Store<Self> {
                &index.$module
            }
        })*

        impl Index {
            /// Waits for every store's first list.
            pub async fn ready(&self) -> std::result::Result<(), WriterDropped> {
                $(self.$module.wait_until_ready().await?;)*
                Ok(())
            }

            /// An index holding exactly the objects of its kinds among `documents`, as if every
            /// store had listed them: for tools and tests that have no cluster to watch.
            /// Documents that are no valid object of their kind are left out; the mirror
            /// reports those itself.
            pub fn from_documents(documents: &[Value]) -> Self {
                Self { $($module: listed(of_kind::<$kind>(documents)),)* }
            }

            /// The objects waiting for a row or their organization ([`is_waiting`]), in
            /// `namespace`, or anywhere.
            pub fn waiting(&self, namespace: Option<&str>) -> Vec<(KindId, String, Option<String>)> {
                let mut waiting = vec![];
                let here = |object: Option<String>| namespace.is_none_or(|namespace| object.as_deref() == Some(namespace));
                $(waiting.extend(
                    // Only the waiting ones are copied out of the store.
                    self.$module
                        .state_filter(|obj| is_waiting(obj) && here(obj.namespace()))
                        .iter()
                        .map(|obj| (KindId::$kind, obj.name_any(), obj.namespace())),
                );)*
                waiting
            }

            /// What the objects stand at: those not Ready by kind and reason, the rollouts by
            /// phase (the gauges of `/metrics`).
            pub fn standing(&self) -> crate::metrics::Standing {
                let mut standing = crate::metrics::Standing::default();
                $(for obj in self.$module.state() {
                    if let Some(reason) = unready_reason(obj.as_ref()) {
                        *standing.not_ready.entry((KindId::$kind.to_string(), reason)).or_default() += 1;
                    }
                })*
                for rollout in self.deployment.state() {
                    let phase = rollout.status.as_ref().and_then(|status| status.phase);
                    let phase = phase.map_or_else(|| "pending".to_owned(), |phase| phase.to_string());
                    *standing.rollouts.entry(phase).or_default() += 1;
                }
                standing
            }

            /// Whether the object `name` of `kind` in `scope` exists and its row is on its
            /// way ([`Kind::is_arriving`]).
            pub fn arriving(&self, kind: KindId, name: &str, scope: Option<&str>) -> bool {
                match kind {
                    $(KindId::$kind => self.get::<$kind>(scope, name).is_some_and(|obj| obj.is_arriving()),)*
                }
            }

            /// The id of the mirrored object `name` of `kind` in `scope`, for a reference
            /// whose builds read nothing else.
            fn plain_referenced(&self, kind: KindId, name: &str, scope: Option<&str>) -> Option<Referenced> {
                match kind {
                    $(KindId::$kind => plain(self.mirrored::<$kind>(scope, name)?.as_ref()),)*
                }
            }
        }
    };
}

crate::registry!(index);

/// Why `obj` is not Ready: its condition's reason, `NotReported` before its first report; none
/// once Ready.
fn unready_reason<K: Kind>(obj: &K) -> Option<String> {
    let conditions = obj.common_status().map(|status| status.conditions.as_slice()).unwrap_or_default();
    match conditions.iter().find(|condition| condition.type_ == "Ready") {
        Some(ready) if ready.status == "True" => None,
        Some(ready) => Some(ready.reason.clone()),
        None => Some("NotReported".to_owned()),
    }
}

/// Whether the object's last reconcile found a reference or its organization not mirrored yet:
/// it said so, or, early for what is on its way, it has said nothing yet.
fn is_waiting<K: Kind>(obj: &K) -> bool {
    let conditions = obj.common_status().map(|status| status.conditions.as_slice()).unwrap_or_default();
    match conditions.iter().find(|condition| condition.type_ == "Synced") {
        None => !obj.is_mirrored(),
        Some(synced) => {
            synced.status == "False"
                && [Reason::WaitingForDependency.as_str(), Reason::NoOrganization.as_str()]
                    .contains(&synced.reason.as_str())
        }
    }
}

/// The rollout rule reads the caches.
impl super::policy::deploying::Lookup for Index {
    async fn list<K: Indexed>(&self, namespace: Option<&str>) -> std::result::Result<Vec<Arc<K>>, kube::Error> {
        Ok(match namespace {
            Some(namespace) => self.all::<K>(Some(namespace)),
            // Every namespace: the store holds them all.
            None => K::store(self).state(),
        })
    }
}

impl Index {
    /// The object `name` of `K`, in `namespace` for a namespaced kind.
    pub fn get<K: Indexed>(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = ObjectRef::new(name);
        K::store(self).get(&match namespace.filter(|_| !cluster_scoped::<K>()) {
            Some(namespace) => key.within(namespace),
            None => key,
        })
    }

    /// The object, if its row is written (its status says so).
    pub fn mirrored<K: Indexed>(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get::<K>(namespace, name).filter(|obj| obj.is_mirrored())
    }

    /// The User a login names: the one of that name, else the one of that email in any case.
    pub fn user_of_login(&self, login: &str) -> Option<Arc<User>> {
        self.get::<User>(None, login).or_else(|| User::store(self).find(|user| user.has_email(login)))
    }

    /// The row of the User who requested the latest change of the object of `meta`, as
    /// admission recorded them ([`Index::user_of`]).
    pub fn requester(&self, meta: &ObjectMeta) -> Option<Uuid> {
        self.user_of(&Actor::acting_on(meta)?)
    }

    /// The row of the User `actor`'s login names: dereferenced here like any reference, so that
    /// the audit row's write looks nothing up. Only a User whose row is written and stays (not
    /// being deleted): the audit row's foreign key still guards against a row deleted since.
    pub fn user_of(&self, actor: &Actor) -> Option<Uuid> {
        let login = actor.login.as_deref()?;
        let user =
            self.user_of_login(login).filter(|user| user.is_mirrored() && user.meta().deletion_timestamp.is_none())?;
        uid(user.as_ref())
    }

    /// The object `name` of `K` in `namespace`, or why it is missing, naming the field that asks.
    pub fn named<K: Indexed>(&self, namespace: &str, name: &str, field: &str) -> Result<Arc<K>> {
        self.get(Some(namespace), name).ok_or_else(|| {
            ProvisionError::Missing(format!("{field}: {} {namespace}/{name} does not exist", K::kind(&())))
        })
    }

    /// The objects of `K` in `namespace` (every one, for a cluster-scoped kind), by name.
    pub fn all<K: Indexed>(&self, namespace: Option<&str>) -> Vec<Arc<K>> {
        self.select(namespace, |_| true)
    }

    /// The objects of `K` that reference `parent` (a Stack's Applications, an Environment's
    /// Elements): references never leave their namespace.
    pub fn children<K: Indexed, P: Kind>(&self, parent: &P) -> Vec<Arc<K>> {
        let name = parent.name_any();
        self.select(parent.meta().namespace.as_deref(), |child: &K| {
            child.references().iter().any(|r| r.kind == P::ID && r.name == name)
        })
    }

    /// [`children`](Self::children) that are not being deleted: what a status that follows
    /// them counts (the deleted one's cleanup wakes its followers before it leaves the cache).
    pub fn live_children<K: Indexed, P: Kind>(&self, parent: &P) -> Vec<Arc<K>> {
        let mut children = self.children::<K, P>(parent);
        children.retain(|child| child.meta().deletion_timestamp.is_none());
        children
    }

    /// The objects of `K` in `namespace` that `keep` keeps, sorted by name: what is built from
    /// them comes out the same whatever order the watch delivered them in.
    fn select<K: Indexed>(&self, namespace: Option<&str>, keep: impl Fn(&K) -> bool) -> Vec<Arc<K>> {
        let scoped = !cluster_scoped::<K>();
        let mut objects =
            K::store(self).state_filter(|obj| (!scoped || obj.meta().namespace.as_deref() == namespace) && keep(obj));
        objects.sort_by(|a, b| (&a.meta().namespace, &a.meta().name).cmp(&(&b.meta().namespace, &b.meta().name)));
        objects
    }

    /// The mirrored organization whose tenant namespace is `namespace` ([`tenant_of`]).
    pub fn tenant(&self, namespace: &str) -> Option<Arc<Organization>> {
        tenant_of(self.organization.state().into_iter().filter(|org| org.is_mirrored()), namespace)
    }

    /// Whether the organization whose tenant namespace is `namespace` exists and its row is on
    /// its way ([`Kind::is_arriving`]).
    pub fn tenant_arriving(&self, namespace: &str) -> bool {
        tenant_of(self.organization.state().into_iter().filter(|org| org.is_arriving()), namespace).is_some()
    }

    /// The tenant of `namespace`, or why there is none.
    pub fn organization(&self, namespace: &str) -> Result<Arc<Organization>> {
        self.tenant(namespace).ok_or_else(|| ProvisionError::NoOrganization(namespace.to_owned()))
    }

    /// Why what runs in `namespace`, in `environment` if any, is suspended: its Organization or
    /// Environment is inactive (`isActive: false`). Its workloads keep no pod and its stacks
    /// take no rollout until both are active again.
    pub fn suspension(&self, namespace: &str, environment: Option<&str>) -> Option<String> {
        if let Some(org) = self.tenant(namespace).filter(|org| !org.spec.is_active) {
            return Some(format!("Organization {} is suspended (isActive: false)", org.name_any()));
        }
        let environment = self.get::<Environment>(Some(namespace), environment?)?;
        (!environment.spec.is_active)
            .then(|| format!("Environment {namespace}/{} is suspended (isActive: false)", environment.name_any()))
    }

    /// What runs workloads in `namespace`, in `environment` if one is named (Applications and
    /// VMs): what [`Index::suspension`] stops.
    pub fn workloads_in(&self, namespace: &str, environment: Option<&str>) -> Vec<(KindId, String, String)> {
        fn of<K: Indexed>(index: &Index, namespace: &str, environment: Option<&str>) -> Vec<(KindId, String, String)> {
            let objects = index.all::<K>(Some(namespace)).into_iter();
            let within = objects.filter(|obj| {
                environment
                    .is_none_or(|wanted| index.environment(obj.as_ref()).ok().flatten().as_deref() == Some(wanted))
            });
            within.map(|obj| (K::ID, obj.name_any(), namespace.to_owned())).collect()
        }
        let mut found = of::<Application>(self, namespace, environment);
        found.extend(of::<VM>(self, namespace, environment));
        found
    }

    /// [`Index::suspension`] of `obj`, once what it stands on is known.
    pub fn suspension_of<K: Kind>(&self, obj: &K) -> Option<String> {
        let environment = self.environment(obj).ok()?;
        self.suspension(&obj.namespace().unwrap_or_default(), environment.as_deref())
    }

    /// The name of the environment an element belongs to, once it is known to exist.
    pub fn element_environment(&self, namespace: &str, element: &str, field: &str) -> Result<String> {
        let element = self.named::<Element>(namespace, element, field)?;
        let environment = &element.spec.environment_ref.name;
        self.named::<Environment>(namespace, environment, &format!("{field} → environmentRef"))?;
        Ok(environment.clone())
    }

    /// Where the children of `obj` land: its organization, environment and namespace, and the
    /// clusters ([`Index::destinations`]).
    pub fn placement<K: Kind>(&self, obj: &K) -> Result<Placement> {
        if let Anchor::Organization = obj.anchor() {
            return Placement::new(obj.name_any(), None);
        }
        let organization = self.organization(&obj.namespace().unwrap_or_default())?.name_any();
        let environment = self.environment(obj)?;
        Ok(Placement { clusters: self.destinations(obj)?, ..Placement::new(organization, environment)? })
    }

    /// The environment `obj` is in, through what it stands on; `None` for what belongs to the
    /// whole tenant.
    pub fn environment<K: Kind>(&self, obj: &K) -> Result<Option<String>> {
        let namespace = obj.namespace().unwrap_or_default();
        let namespace = namespace.as_str();
        Ok(match obj.anchor() {
            Anchor::Organization | Anchor::Tenant => None,
            Anchor::Environment(environment) => Some(environment.to_owned()),
            Anchor::Element(element) => Some(self.element_environment(namespace, element, "spec.elementRef")?),
            Anchor::Stack(stack) => {
                let stack = self.named::<Stack>(namespace, stack, "spec.stackRef")?;
                Some(self.element_environment(namespace, &stack.spec.element_ref.name, "spec.stackRef → elementRef")?)
            }
            Anchor::Domain(domain) => {
                let domain = self.named::<Domain>(namespace, domain, "spec.domainRef")?;
                Some(self.element_environment(
                    namespace,
                    &domain.spec.element_ref.name,
                    "spec.domainRef → elementRef",
                )?)
            }
        })
    }

    /// The dereference step of the mirror, for the object of `meta`: the tenant organization
    /// of its namespace, what builds read of every referenced object that is mirrored, and
    /// the User its audit row names ([`Index::requester`]). A row's id is its object's uid, so
    /// nothing is read from the database; the write's foreign keys still guard against a row
    /// deleted since.
    pub fn resolve(&self, meta: &ObjectMeta, references: &[Reference]) -> Resolved {
        let namespace = meta.namespace.as_deref();
        let tenant = namespace.and_then(|namespace| self.tenant(namespace));
        let mut resolved = Resolved::default();
        resolved.requester = self.requester(meta);
        resolved.organization = tenant.as_ref().and_then(|org| uid(org.as_ref()));
        resolved.organization_name = tenant.as_ref().map(|org| org.name_any());
        for reference in references {
            if let Some(found) = self.referenced(reference, namespace, tenant.as_deref()) {
                resolved.insert(reference.kind, reference.name.clone(), found);
            }
        }
        resolved
    }

    fn referenced(
        &self,
        reference: &Reference,
        namespace: Option<&str>,
        tenant: Option<&Organization>,
    ) -> Option<Referenced> {
        let name = reference.name.as_str();
        // A namespaced target named from no namespace is found nowhere.
        let scope = reference.scope(namespace);
        Some(match reference.kind {
            KindId::User => {
                let role = tenant.and_then(|org| org.spec.members.iter().find(|m| m.user == name));
                let user = self.mirrored::<User>(None, name)?;
                Referenced {
                    organization_role: role.map(|m| m.role.as_str().to_owned()),
                    superadmin: user.spec.is_superadmin,
                    ..plain(user.as_ref())?
                }
            }
            KindId::Element => {
                let element = self.mirrored::<Element>(scope, name)?;
                Referenced {
                    element_type: Some(element.spec.element_type.as_str().to_owned()),
                    ..plain(element.as_ref())?
                }
            }
            KindId::Application => {
                let application = self.mirrored::<Application>(scope, name)?;
                let stack = self.mirrored::<Stack>(scope, &application.spec.stack_ref.name);
                Referenced { stack_id: stack.and_then(|s| uid(s.as_ref())), ..plain(application.as_ref())? }
            }
            kind => self.plain_referenced(kind, name, scope)?,
        })
    }
}

/// `doc` with the status the operator gives an object once its row is written, for tools
/// that know the rows are there. A document read from a file has no resource version yet.
pub fn as_mirrored(doc: &Value) -> Value {
    let mut mirrored = doc.clone();
    let version = doc["metadata"]["resourceVersion"].as_str().unwrap_or("0");
    mirrored["status"]["mirroredResourceVersion"] = version.into();
    mirrored
}

fn uid<K: Resource>(obj: &K) -> Option<Uuid> {
    obj.meta().uid.as_deref().and_then(|uid| Uuid::parse_str(uid).ok())
}

/// A referenced object that builds read nothing of but its id. One the API server has not
/// given a uid has no row to point at.
fn plain<K: Resource>(obj: &K) -> Option<Referenced> {
    Some(Referenced { id: uid(obj)?, ..Referenced::default() })
}

fn of_kind<K: Resource<DynamicType = ()> + serde::de::DeserializeOwned>(documents: &[Value]) -> Vec<K> {
    documents
        .iter()
        .filter(|d| d["kind"] == K::kind(&()).as_ref())
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect()
}

fn listed<K: Resource<DynamicType = ()> + Clone>(objects: Vec<K>) -> Store<K> {
    let (store, mut writer): (Store<K>, Writer<K>) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for obj in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(obj));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    store
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// The sample platform, each object with a uid of its own as the API server gives it.
    fn platform() -> Vec<Value> {
        serde_yaml::Deserializer::from_str(include_str!("../../examples/platform.yaml"))
            .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("yaml")).expect("json"))
            .filter(|doc: &Value| !doc.is_null())
            .map(|mut doc| {
                doc["metadata"]["uid"] = Uuid::new_v4().to_string().into();
                doc["status"]["mirroredResourceVersion"] = "1".into();
                doc
            })
            .collect()
    }

    fn in_namespace(namespace: &str) -> ObjectMeta {
        ObjectMeta { namespace: Some(namespace.to_owned()), ..ObjectMeta::default() }
    }

    fn uid_of(docs: &[Value], kind: &str, name: &str) -> Uuid {
        let doc = docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).expect("sample");
        doc["metadata"]["uid"].as_str().and_then(|uid| uid.parse().ok()).expect("a uid")
    }

    #[test]
    fn references_resolve_to_uids_and_the_fields_builds_read() {
        let docs = platform();
        let index = Index::from_documents(&docs);
        let references = [
            Reference::new(KindId::Element, "storage", "spec.elementRef"),
            Reference::new(KindId::Application, "storefront", "spec.applicationRef"),
            Reference::new(KindId::User, "bob", "spec.triggeredBy"),
            Reference::new(KindId::Tag, "critical", "spec.tags[0]"),
            Reference::new(KindId::Environment, "staging-of-nobody", "spec.environmentRef"),
        ];
        let resolved = index.resolve(&in_namespace("acme"), &references);

        assert_eq!(resolved.organization, Some(uid_of(&docs, "Organization", "acme")));
        assert_eq!(resolved.organization_name.as_deref(), Some("acme"));
        let element = resolved.get(&references[0]).expect("the element");
        assert_eq!(
            (element.id, element.element_type.as_deref()),
            (uid_of(&docs, "Element", "storage"), Some("volume"))
        );
        let application = resolved.get(&references[1]).expect("the application");
        assert_eq!(application.stack_id, Some(uid_of(&docs, "Stack", "shop")));
        let user = resolved.get(&references[2]).expect("the user");
        assert_eq!((user.id, user.organization_role.as_deref()), (uid_of(&docs, "User", "bob"), Some("viewer")));
        assert_eq!(resolved.id(&references[3]).expect("the tag"), uid_of(&docs, "Tag", "critical"));
        assert_eq!(resolved.missing(&references), vec![&references[4]]);
    }

    #[test]
    fn an_object_whose_status_does_not_say_mirrored_is_waited_for() {
        let mut docs = platform();
        for doc in docs.iter_mut().filter(|d| d["kind"] == "Element" || d["kind"] == "Organization") {
            doc["status"] = json!({});
        }
        let index = Index::from_documents(&docs);
        let element = Reference::new(KindId::Element, "storage", "spec.elementRef");
        let resolved = index.resolve(&in_namespace("acme"), std::slice::from_ref(&element));
        assert_eq!(resolved.organization, None, "the organization's row is not written");
        assert_eq!(resolved.missing(std::slice::from_ref(&element)), vec![&element]);
    }

    #[test]
    fn namespaced_references_never_leave_the_namespace() {
        let index = Index::from_documents(&platform());
        let element = Reference::new(KindId::Element, "storage", "spec.elementRef");
        let tag = Reference::new(KindId::Tag, "critical", "spec.tags[0]");
        let resolved = index.resolve(&in_namespace("globex"), &[element.clone(), tag.clone()]);
        assert_eq!(resolved.organization, None, "no organization owns globex");
        assert_eq!(resolved.missing(&[element.clone(), tag]), vec![&element], "a tag is cluster-scoped");
    }

    #[test]
    fn of_two_organizations_claiming_a_namespace_the_older_is_its_tenant() {
        let mut docs = platform();
        let acme = docs.iter().find(|d| d["kind"] == "Organization").expect("acme").clone();
        docs.iter_mut().filter(|d| d["kind"] == "Organization").for_each(|d| {
            d["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
        });
        let mut claimant = acme;
        claimant["metadata"]["name"] = "acme-too".into();
        claimant["metadata"]["uid"] = Uuid::new_v4().to_string().into();
        claimant["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z".into();
        claimant["spec"]["namespace"] = "acme".into();
        docs.insert(0, claimant);
        let resolved = Index::from_documents(&docs).resolve(&in_namespace("acme"), &[]);
        assert_eq!(resolved.organization, Some(uid_of(&docs, "Organization", "acme")));
    }

    /// The audit row's User is dereferenced like a reference: by name, else by email in any
    /// case; only one whose row is written and stays; never a deleter taken from the object.
    #[test]
    fn the_requester_is_the_user_their_login_names_once_its_row_is_written() {
        use crate::mirror::actor::{CHANGED_BY, DELETED_BY};
        let recorded = |login: &str| {
            Actor { username: format!("oidc:{login}"), groups: vec![], login: Some(login.to_owned()) }.to_annotation()
        };
        let changed_by = |login: &str| ObjectMeta {
            annotations: Some([(CHANGED_BY.to_owned(), recorded(login))].into()),
            ..ObjectMeta::default()
        };
        let mut docs = platform();
        let alice = uid_of(&docs, "User", "alice");
        let index = Index::from_documents(&docs);
        assert_eq!(index.requester(&changed_by("alice")), Some(alice), "by name");
        assert_eq!(index.resolve(&changed_by("alice"), &[]).requester, Some(alice), "dereferenced with the rest");
        assert_eq!(index.requester(&changed_by("Alice@ACME.example")), Some(alice), "by email, in any case");
        assert_eq!(index.requester(&changed_by("zoe")), None, "no such User");
        assert_eq!(index.requester(&ObjectMeta::default()), None, "nobody recorded");

        let mut deleted = changed_by("alice");
        deleted.deletion_timestamp = Some(Time("2026-12-05T00:00:00Z".parse().expect("a time")));
        assert_eq!(index.requester(&deleted), None, "a deleted object names its deleter, not its last changer");
        // Only admission's record names a deleter: an annotation anyone could write names nobody.
        deleted.annotations.get_or_insert_default().insert(DELETED_BY.to_owned(), recorded("bob"));
        assert_eq!(index.requester(&deleted), None, "a deleter taken from the object");
        let bob = Actor { username: "oidc:bob".into(), groups: vec![], login: Some("bob".into()) };
        assert_eq!(index.user_of(&bob), Some(uid_of(&docs, "User", "bob")));

        let user = docs.iter_mut().find(|d| d["kind"] == "User" && d["metadata"]["name"] == "alice").expect("alice");
        user["status"] = json!({});
        assert_eq!(Index::from_documents(&docs).requester(&changed_by("alice")), None, "her row is not written yet");
        let user = docs.iter_mut().find(|d| d["kind"] == "User" && d["metadata"]["name"] == "alice").expect("alice");
        user["status"]["mirroredResourceVersion"] = "1".into();
        user["metadata"]["deletionTimestamp"] = "2026-12-05T00:00:00Z".into();
        assert_eq!(Index::from_documents(&docs).requester(&changed_by("alice")), None, "her row is going");
    }

    fn names<K: Resource>(objects: &[Arc<K>]) -> Vec<String> {
        let mut names: Vec<String> = objects.iter().map(|obj| obj.name_any()).collect();
        names.sort();
        names
    }

    #[test]
    fn lookups_are_scoped_by_namespace_except_for_cluster_scoped_kinds() {
        let index = Index::from_documents(&platform());
        assert!(index.get::<Stack>(Some("acme"), "shop").is_some());
        assert!(index.get::<Stack>(Some("globex"), "shop").is_none(), "namespaced objects stay in theirs");
        assert!(index.get::<Tag>(Some("globex"), "critical").is_some(), "a tag is cluster-scoped");
        assert_eq!(names(&index.all::<Environment>(Some("acme"))), ["production", "staging"]);
        assert!(index.all::<Environment>(Some("globex")).is_empty());
        let missing = index.named::<Stack>("acme", "cart", "spec.stackRef").expect_err("no such stack");
        assert_eq!(missing.to_string(), "spec.stackRef: Stack acme/cart does not exist");
    }

    #[test]
    fn the_children_of_an_object_are_the_objects_that_reference_it() {
        let index = Index::from_documents(&platform());
        let stack = index.get::<Stack>(Some("acme"), "shop").expect("the stack");
        assert_eq!(names(&index.children::<Application, _>(stack.as_ref())), ["api", "postgres", "storefront"]);
        assert_eq!(names(&index.children::<Deployment, _>(stack.as_ref())), ["shop-1-4-2"]);
        let uploads = index.get::<Volume>(Some("acme"), "uploads").expect("the volume");
        assert_eq!(names(&index.children::<Application, _>(uploads.as_ref())), ["api", "storefront"]);
        let production = index.get::<Environment>(Some("acme"), "production").expect("the environment");
        assert!(index.children::<Application, _>(production.as_ref()).is_empty(), "only direct references count");
    }

    #[test]
    fn placement_follows_references_to_the_environment_and_says_what_is_missing() {
        let index = Index::from_documents(&platform());
        let storefront = index.get::<Application>(Some("acme"), "storefront").expect("storefront");
        let placement = index.placement(storefront.as_ref()).expect("placed");
        let element = index.get::<Element>(Some("acme"), "k8s").expect("the stack's element");
        let environment = element.spec.environment_ref.name.clone();
        assert_eq!(placement.organization, "acme");
        assert_eq!(placement.namespace, Some(format!("acme-{environment}")));
        assert_eq!(placement.environment, Some(environment));
        let mut orphan = storefront.as_ref().clone();
        orphan.spec.stack_ref.name = "cart".into();
        let missing = index.placement(&orphan).expect_err("no such stack");
        assert_eq!(missing.to_string(), "spec.stackRef: Stack acme/cart does not exist");
        let mut foreign = index.get::<Policy>(Some("acme"), "deployers").expect("a policy").as_ref().clone();
        foreign.metadata.namespace = Some("globex".into());
        assert_eq!(index.placement(&foreign).expect_err("no tenant"), ProvisionError::NoOrganization("globex".into()));
    }
}
