//! The WindFlow custom resources: types only. Doc comments become `kubectl explain` text.

// kube's `printcolumn(name = …, type_ = …)` repeats its keys once per column by design.
#![allow(clippy::duplicated_attributes)]

pub mod apps;
pub mod common;
pub mod infra;
pub mod tenancy;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use apps::{Application, Deployment, Stack};
pub use infra::{
    ContainerCluster, ContainerNode, DnsRecord, DnssecKey, Domain, Element, Gateway, Network, PhysicalHost, VM, Volume,
};
pub use tenancy::{Environment, Function, Group, Organization, Policy, Tag, User};

/// Every WindFlow CRD, in dependency order (a kind comes after the kinds it references).
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        Tag::crd(),
        Function::crd(),
        User::crd(),
        Organization::crd(),
        Environment::crd(),
        Group::crd(),
        Element::crd(),
        Policy::crd(),
        Network::crd(),
        Volume::crd(),
        ContainerCluster::crd(),
        ContainerNode::crd(),
        PhysicalHost::crd(),
        Domain::crd(),
        DnsRecord::crd(),
        DnssecKey::crd(),
        Stack::crd(),
        VM::crd(),
        Application::crd(),
        Gateway::crd(),
        Deployment::crd(),
    ]
}
