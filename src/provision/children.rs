//! The children WindFlow builds, typed. Each kind names the types it builds in one enum
//! ([`child_set!`](crate::child_set)), whose variants are the only children it can build and
//! whose [`ChildSet::TYPES`] are what the reconcile applies, prunes and releases, and what the
//! chart's RBAC grants: a built child cannot go unapplied, nor outlive its owner.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, PersistentVolumeClaim, ResourceQuota, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::DynamicObject;
use kube::core::{NotUsed, Object, TypeMeta};
use serde::Serialize;

use super::{ChildType, types};

/// An object of a type WindFlow provisions.
pub trait Child: Serialize {
    const TYPE: ChildType;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
}

/// The children one kind builds: an enum made by [`child_set!`](crate::child_set).
pub trait ChildSet {
    /// Every type the kind provisions, in the order they are applied.
    const TYPES: &'static [ChildType];
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// The child as the provider applies it.
    fn object(&self) -> Result<DynamicObject, serde_json::Error>;
}

/// What kinds that provision nothing build.
pub enum NoChildren {}

impl ChildSet for NoChildren {
    const TYPES: &'static [ChildType] = &[];

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match *self {}
    }

    fn object(&self) -> Result<DynamicObject, serde_json::Error> {
        match *self {}
    }
}

/// `$name`, an enum of the child types listed (each a type implementing [`Child`], named by a
/// single identifier), with `From` each of them and [`ChildSet`].
#[macro_export]
macro_rules! child_set {
    ($(#[$doc:meta])* $name:ident { $($child:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[allow(
            clippy::large_enum_variant,
            reason = "children are built and turned into objects at once: boxes would only add allocations"
        )]
        pub enum $name {
            $($child($child),)+
        }

        $(impl From<$child> for $name {
            fn from(child: $child) -> Self {
                Self::$child(child)
            }
        })+

        impl $crate::provision::children::ChildSet for $name {
            const TYPES: &'static [$crate::provision::ChildType] =
                &[$(<$child as $crate::provision::children::Child>::TYPE,)+];

            fn metadata_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                match self {
                    $(Self::$child(child) => $crate::provision::children::Child::metadata_mut(child),)+
                }
            }

            fn object(&self) -> Result<kube::api::DynamicObject, serde_json::Error> {
                match self {
                    $(Self::$child(child) => serde_json::to_value(child).and_then(serde_json::from_value),)+
                }
            }
        }
    };
}

macro_rules! builtin {
    ($($type:ty => $child_type:ident),+ $(,)?) => {
        $(impl Child for $type {
            const TYPE: ChildType = types::$child_type;

            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        })+
    };
}

builtin! {
    Namespace => NAMESPACE,
    ResourceQuota => RESOURCE_QUOTA,
    LimitRange => LIMIT_RANGE,
    PersistentVolumeClaim => PVC,
    Service => SERVICE,
    Deployment => DEPLOYMENT,
    HorizontalPodAutoscaler => HORIZONTAL_POD_AUTOSCALER,
    NetworkPolicy => NETWORK_POLICY,
    Ingress => INGRESS,
    Role => ROLE,
    RoleBinding => ROLE_BINDING,
}

/// The spec of a third-party type: the fields WindFlow sets, typed.
pub trait ThirdPartySpec: Serialize + Clone {
    const TYPE: ChildType;
}

impl<S: ThirdPartySpec> Child for Object<S, NotUsed> {
    const TYPE: ChildType = S::TYPE;

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A third-party object of `spec`, with `metadata`, as k8s-openapi objects are built.
pub fn third_party<S: ThirdPartySpec>(metadata: ObjectMeta, spec: S) -> Object<S, NotUsed> {
    let types = TypeMeta { api_version: S::TYPE.api_version.to_owned(), kind: S::TYPE.kind.to_owned() };
    Object { types: Some(types), metadata, spec, status: None }
}
