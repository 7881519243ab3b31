//! The objects builders read, from the controllers' own caches: dereferencing costs no request.

use kube::Resource;
use kube::runtime::reflector::store::{Writer, WriterDropped};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;

use crate::api::*;
use crate::provision::World;

/// Read-only views of the reflector stores of the kinds builders read.
#[derive(Clone)]
pub struct Catalog {
    pub organizations: Store<Organization>,
    pub functions: Store<Function>,
    pub environments: Store<Environment>,
    pub elements: Store<Element>,
    pub stacks: Store<Stack>,
    pub applications: Store<Application>,
    pub domains: Store<Domain>,
    pub deployments: Store<Deployment>,
}

impl Catalog {
    /// Waits for every store's first list.
    pub async fn ready(&self) -> Result<(), WriterDropped> {
        self.organizations.wait_until_ready().await?;
        self.functions.wait_until_ready().await?;
        self.environments.wait_until_ready().await?;
        self.elements.wait_until_ready().await?;
        self.stacks.wait_until_ready().await?;
        self.applications.wait_until_ready().await?;
        self.domains.wait_until_ready().await?;
        self.deployments.wait_until_ready().await
    }

    /// What a builder of an object in `namespace` may read: every organization and function,
    /// and the objects of that namespace (references never leave it). Waits for every store's
    /// first list, so that nothing is missing only because the operator just started.
    pub async fn world(&self, namespace: Option<&str>) -> Result<World, WriterDropped> {
        self.ready().await?;
        Ok(World {
            organizations: everything(&self.organizations),
            functions: everything(&self.functions),
            environments: within(&self.environments, namespace),
            elements: within(&self.elements, namespace),
            stacks: within(&self.stacks, namespace),
            applications: within(&self.applications, namespace),
            domains: within(&self.domains, namespace),
            deployments: within(&self.deployments, namespace),
        })
    }

    /// A catalog holding exactly `world`, as if every store had listed it: for tests and tools
    /// that have no cluster to watch.
    pub fn fixed(world: World) -> Self {
        Self {
            organizations: listed(world.organizations),
            functions: listed(world.functions),
            environments: listed(world.environments),
            elements: listed(world.elements),
            stacks: listed(world.stacks),
            applications: listed(world.applications),
            domains: listed(world.domains),
            deployments: listed(world.deployments),
        }
    }
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
