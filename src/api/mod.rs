//! The WindFlow custom resources: types only, by area; `kinds` re-exports each beside what
//! WindFlow does with it. Doc comments become `kubectl explain` text.

// kube's `printcolumn(name = …, type_ = …)` repeats its keys once per column by design.
#![allow(clippy::duplicated_attributes)]

/// A seed status column's values as an enum: serde and the CRD schema spell them in
/// snake_case, as the seed's check does, and strum gives the same text (`Display`,
/// `&'static str`) for messages and column defaults. Fifteen status fields share this shape.
macro_rules! seed_values {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(
            serde::Serialize,
            serde::Deserialize,
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            schemars::JsonSchema,
            strum::Display,
            strum::IntoStaticStr,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($variant,)*
        }
    };
}

pub mod actor;
pub mod apps;
pub mod common;
pub mod infra;
pub mod tenancy;

use std::fmt::Display;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::ApiResource;
use serde_json::Value;

/// How messages name an object: `Kind namespace/name`, or `Kind name` when cluster-scoped.
pub fn describe(kind: impl Display, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{kind} {namespace}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// `describe` for a manifest, whatever it holds.
pub fn describe_document(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("(no kind)");
    let name = doc.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("(no name)");
    describe(kind, doc.pointer("/metadata/namespace").and_then(Value::as_str), name)
}

/// Where a CRD's objects are served, for dynamic API calls.
pub fn api_resource(crd: &CustomResourceDefinition) -> ApiResource {
    let version = crd.spec.versions.first().map(|v| v.name.clone()).unwrap_or_default();
    ApiResource {
        group: crd.spec.group.clone(),
        api_version: format!("{}/{version}", crd.spec.group),
        version,
        kind: crd.spec.names.kind.clone(),
        plural: crd.spec.names.plural.clone(),
    }
}
