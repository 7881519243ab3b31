//! The admission webhook: who did it, who may deploy.
//!
//! Every replica serves it, leader or not (`operator`). The mutating webhook records the
//! requester of every create and update in the object's annotations ([`crate::mirror::actor`]);
//! the validating webhook checks what only admission can (a rollout's authority, Users of
//! another organization, a User still named by Deployments) and records the requester of a
//! delete in the database, keyed by the object's uid, just before the API server marks it
//! deleted. A new object is born
//! with the mirror's finalizer. The checks read this replica's caches when it has them
//! ([`Reader`]). The chart's webhook
//! configurations leave the operator's own requests and every status write out, so an outage
//! of the webhook never stops the operator.

pub mod certificate;
pub mod review;
pub mod server;

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use sqlx::PgPool;

use crate::kinds::function::Permission;
use crate::kinds::policy::deploying::Lookup;
use crate::kinds::{Index, Indexed};
use crate::mirror::actor::Actor;
pub use crate::mirror::identity::Identities;
use crate::mirror::store::StoreError;

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

/// Whether a requester may do something, as the API server's authorizers answer (RBAC and any
/// other): what a Policy or a Function may grant.
pub trait Access: Sync {
    /// Whether `user` may `verb` `resource` of API group `group` in `namespace` (everywhere,
    /// if none).
    fn allows(
        &self,
        user: &UserInfo,
        namespace: Option<&str>,
        permission: &Permission,
    ) -> impl Future<Output = std::result::Result<bool, kube::Error>> + Send;
}

impl Access for Reader {
    /// A SubjectAccessReview: the question Kubernetes RBAC asks of a Role's author.
    async fn allows(
        &self,
        user: &UserInfo,
        namespace: Option<&str>,
        (group, resource, verb): &Permission,
    ) -> std::result::Result<bool, kube::Error> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(ResourceAttributes {
                    namespace: namespace.map(str::to_owned),
                    group: Some(group.clone()),
                    resource: Some(resource.clone()),
                    verb: Some(verb.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answered =
            Api::<SubjectAccessReview>::all(self.client.clone()).create(&PostParams::default(), &review).await?;
        Ok(answered.status.is_some_and(|status| status.allowed))
    }
}

/// Records `actor` as the deleter of the object the request deletes, where the finalizer's
/// `delete` audit row reads it: in the database, by the object's uid. Nothing is written to
/// the object: no annotation a client could forge or pad, no new resourceVersion to fail a
/// delete's precondition.
pub async fn record_deletion(
    pool: &PgPool,
    request: &kube::core::admission::AdmissionRequest<kube::api::DynamicObject>,
    actor: &Actor,
) -> std::result::Result<(), StoreError> {
    let uid = request.old_object.as_ref().and_then(|old| old.metadata.uid.as_deref()?.parse().ok());
    match uid {
        Some(uid) => crate::mirror::store::record_deletion(pool, uid, actor).await,
        // Nothing to name: the API server sends the object being deleted.
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
