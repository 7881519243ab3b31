//! The admission webhook: who did it, who may deploy.
//!
//! Every replica serves it, leader or not (`operator`). The mutating webhook records the
//! requester of every create and update in the object's annotations ([`crate::mirror::actor`]);
//! the validating webhook checks what only admission can (a rollout's authority, Users of
//! another organization, a User still named by Deployments) and records the requester of a
//! delete on the object just before the API server marks it deleted. A new object is born
//! with the mirror's finalizer. The checks read this replica's caches when it has them
//! ([`Reader`]). The chart's webhook
//! configurations leave the operator's own requests and every status write out, so an outage
//! of the webhook never stops the operator.

pub mod certificate;
pub mod identity;
pub mod review;
pub mod server;

use std::sync::Arc;

use futures::FutureExt;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client};

use crate::kinds::policy::deploying::Lookup;
use crate::kinds::{Index, Indexed};
use crate::mirror::actor::{Actor, DELETED_BY};
pub use identity::Identities;

/// What admission needs to know besides the request.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub identities: Identities,
    /// Kubernetes groups whose members may trigger rollouts in another User's name.
    pub platform_groups: Vec<String>,
}

/// What can go wrong serving admission.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("the API server: {0}")]
    Kube(#[from] kube::Error),
    #[error("the webhook certificate: {0}")]
    Certificate(String),
    #[error("serving the webhook: {0}")]
    Serve(#[from] std::io::Error),
}

pub type Result<T, E = AdmissionError> = std::result::Result<T, E>;

/// What admission reads: this replica's caches once they have listed every kind (it leads, and
/// its controllers watch them all), else the API server as the operator (a standby, or a leader
/// still starting), so that a review costs no request where the caches serve it. The caches may
/// not hold yet what was created a moment before: admission then admits with a warning, or
/// leaves the decision to the reconcile, which reads the same caches and has the last word (a
/// rollout starts only once the rule allows it; the mirror checks members itself).
pub struct Reader {
    pub index: Index,
    pub client: Client,
}

impl Lookup for Reader {
    async fn list<K: Indexed>(&self, namespace: Option<&str>) -> std::result::Result<Vec<Arc<K>>, kube::Error> {
        if self.index.ready().now_or_never().is_some_and(|listed| listed.is_ok()) {
            return self.index.list(namespace).await;
        }
        let api: Api<K> = Api::all(self.client.clone());
        let mut params = ListParams::default();
        if let Some(namespace) = namespace {
            params = params.fields(&format!("metadata.namespace={namespace}"));
        }
        Ok(api.list(&params).await?.items.into_iter().map(Arc::new).collect())
    }
}

/// Records `actor` as the deleter of the object the request deletes, where the finalizer's
/// `delete` audit row reads it. A merge patch as the operator, whose requests admission leaves
/// alone.
pub async fn record_deletion(
    client: &Client,
    request: &kube::core::admission::AdmissionRequest<kube::api::DynamicObject>,
    actor: &Actor,
) -> std::result::Result<(), kube::Error> {
    let api_resource = kube::api::ApiResource::from_gvk_with_plural(&request.kind, &request.resource.resource);
    let api: Api<kube::api::DynamicObject> = match &request.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &api_resource),
        None => Api::all_with(client.clone(), &api_resource),
    };
    let patch = serde_json::json!({ "metadata": { "annotations": { DELETED_BY: actor.to_annotation() } } });
    match api.patch(&request.name, &PatchParams::default(), &Patch::Merge(patch)).await {
        Ok(_) => Ok(()),
        // Already gone: nothing is left to audit.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests;
