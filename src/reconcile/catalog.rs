//! The objects builders read, from the controllers' own caches: dereferencing costs no request.

use std::sync::Arc;

use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use uuid::Uuid;

use crate::kinds::*;
use crate::mirror::{Reference, Referenced, Resolved};
use crate::provision::{World, tenant_of};

/// The catalog's stores, one per kind, from the registry.
macro_rules! catalog {
    ($($kind:ident: $module:ident => $lifecycle:ident,)*) => {
        /// Read-only views of the reflector stores of every kind.
        #[derive(Clone)]
        pub struct Catalog {
            $(pub $module: Store<$kind>,)*
        }

        impl Catalog {
            /// Waits for every store's first list.
            pub async fn ready(&self) -> Result<(), WriterDropped> {
                $(self.$module.wait_until_ready().await?;)*
                Ok(())
            }

            /// A catalog holding exactly the objects of its kinds among `documents`, as if every
            /// store had listed them: for tests and tools that have no cluster to watch.
            /// Documents that are no valid object of their kind are left out; the mirror
            /// reports those itself.
            pub fn from_documents(documents: &[Value]) -> Self {
                Self { $($module: listed(of_kind::<$kind>(documents)),)* }
            }

            /// The id of the mirrored object `name` of `kind` in `scope`, for a reference
            /// whose builds read nothing else.
            fn plain_referenced(&self, kind: KindId, name: &str, scope: Option<&str>) -> Option<Referenced> {
                match kind {
                    $(KindId::$kind => plain(lookup(&self.$module, name, scope)?.as_ref()),)*
                }
            }
        }
    };
}

crate::registry!(catalog);

impl Catalog {
    /// What a builder of an object in `namespace` may read: every organization and function,
    /// and the objects of that namespace (references never leave it). Call it once the stores
    /// are [`ready`](Self::ready), so that nothing is missing only because the operator just
    /// started (every reconcile waits for that first, `Context::catalog_ready`).
    pub fn world(&self, namespace: Option<&str>) -> World {
        World {
            organizations: mirrored(&self.organization).map(|org| org.as_ref().clone()).collect(),
            functions: everything(&self.function),
            environments: within(&self.environment, namespace),
            elements: within(&self.element, namespace),
            stacks: within(&self.stack, namespace),
            applications: within(&self.application, namespace),
            domains: within(&self.domain, namespace),
            deployments: within(&self.deployment, namespace),
        }
    }

    /// The dereference step of the mirror, pure over the caches: the tenant organization of
    /// `namespace` and what builds read of every referenced object that is mirrored (its
    /// status says so). A row's id is its object's uid, so nothing is read from the database;
    /// the write's foreign keys still guard against a row deleted since.
    pub fn resolve(&self, namespace: Option<&str>, references: &[Reference]) -> Resolved {
        let tenant = namespace.and_then(|namespace| self.tenant(namespace));
        let mut resolved = Resolved::default();
        resolved.organization = tenant.as_ref().and_then(|org| uid(org.as_ref()));
        resolved.organization_name = tenant.as_ref().map(|org| org.name_any());
        for reference in references {
            if let Some(found) = self.referenced(reference, namespace, tenant.as_deref()) {
                resolved.insert(reference.kind, reference.name.clone(), found);
            }
        }
        resolved
    }

    /// The mirrored organization whose tenant namespace is `namespace` ([`tenant_of`]).
    fn tenant(&self, namespace: &str) -> Option<Arc<Organization>> {
        tenant_of(mirrored(&self.organization), namespace)
    }

    fn referenced(
        &self,
        reference: &Reference,
        namespace: Option<&str>,
        tenant: Option<&Organization>,
    ) -> Option<Referenced> {
        let name = reference.name.as_str();
        // References never leave the referring object's namespace; cluster-scoped targets have none.
        let scope = if reference.kind.cluster_scoped() { None } else { Some(namespace?) };
        Some(match reference.kind {
            KindId::User => {
                let role = tenant.and_then(|org| org.spec.members.iter().find(|m| m.user == name));
                Referenced {
                    organization_role: role.map(|m| m.role.as_str().to_owned()),
                    ..self.plain_referenced(KindId::User, name, scope)?
                }
            }
            KindId::Element => {
                let element = lookup(&self.element, name, scope)?;
                Referenced {
                    element_type: Some(element.spec.element_type.as_str().to_owned()),
                    ..plain(element.as_ref())?
                }
            }
            KindId::Application => {
                let application = lookup(&self.application, name, scope)?;
                let stack = lookup(&self.stack, &application.spec.stack_ref.name, scope);
                Referenced { stack_id: stack.and_then(|s| uid(s.as_ref())), ..plain(application.as_ref())? }
            }
            kind => self.plain_referenced(kind, name, scope)?,
        })
    }
}

/// `doc` with the status the operator gives an object once its row is written, for tools
/// that know the rows are there.
pub fn as_mirrored(doc: &Value) -> Value {
    let mut mirrored = doc.clone();
    mirrored["status"]["mirroredResourceVersion"] = doc["metadata"]["resourceVersion"].clone();
    mirrored
}

/// The object of that name, in `namespace` for a namespaced kind, if its row is written.
fn lookup<K: Kind>(store: &Store<K>, name: &str, namespace: Option<&str>) -> Option<Arc<K>> {
    let key = ObjectRef::new(name);
    let found = store.get(&match namespace {
        Some(namespace) => key.within(namespace),
        None => key,
    })?;
    found.is_mirrored().then_some(found)
}

/// The objects of `store` whose row is written.
fn mirrored<K: Kind>(store: &Store<K>) -> impl Iterator<Item = Arc<K>> {
    store.state().into_iter().filter(|obj| obj.is_mirrored())
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

fn everything<K: Resource + Clone>(store: &Store<K>) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state().iter().map(|obj| obj.as_ref().clone()).collect()
}

fn within<K: Resource + Clone>(store: &Store<K>, namespace: Option<&str>) -> Vec<K>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    store.state_filter(|obj| obj.meta().namespace.as_deref() == namespace).iter().map(|o| o.as_ref().clone()).collect()
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

    fn uid_of(docs: &[Value], kind: &str, name: &str) -> Uuid {
        let doc = docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).expect("sample");
        doc["metadata"]["uid"].as_str().and_then(|uid| uid.parse().ok()).expect("a uid")
    }

    #[test]
    fn references_resolve_to_uids_and_the_fields_builds_read() {
        let docs = platform();
        let catalog = Catalog::from_documents(&docs);
        let references = [
            Reference::new(KindId::Element, "storage", "spec.elementRef"),
            Reference::new(KindId::Application, "storefront", "spec.applicationRef"),
            Reference::new(KindId::User, "bob", "spec.triggeredBy"),
            Reference::new(KindId::Tag, "critical", "spec.tags[0]"),
            Reference::new(KindId::Environment, "staging-of-nobody", "spec.environmentRef"),
        ];
        let resolved = catalog.resolve(Some("acme"), &references);

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
        let catalog = Catalog::from_documents(&docs);
        let element = Reference::new(KindId::Element, "storage", "spec.elementRef");
        let resolved = catalog.resolve(Some("acme"), std::slice::from_ref(&element));
        assert_eq!(resolved.organization, None, "the organization's row is not written");
        assert_eq!(resolved.missing(std::slice::from_ref(&element)), vec![&element]);
    }

    #[test]
    fn namespaced_references_never_leave_the_namespace() {
        let catalog = Catalog::from_documents(&platform());
        let element = Reference::new(KindId::Element, "storage", "spec.elementRef");
        let tag = Reference::new(KindId::Tag, "critical", "spec.tags[0]");
        let resolved = catalog.resolve(Some("globex"), &[element.clone(), tag.clone()]);
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
        let resolved = Catalog::from_documents(&docs).resolve(Some("acme"), &[]);
        assert_eq!(resolved.organization, Some(uid_of(&docs, "Organization", "acme")));
    }
}
