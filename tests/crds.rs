//! The CRDs: generated files match the binary, and the schemas and CEL rules the API server
//! enforces accept the sample platform and refuse bad input with a clear message.

mod support;

use support::bad::{BAD_SPECS, BAD_UPDATES, set};
use windflow::validate::Schemas;

#[test]
fn crds_directory_matches_what_the_binary_generates() {
    for crd in windflow::kinds::crds() {
        let name = crd.metadata.name.clone().expect("name");
        let path = format!("{}/crds/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{path} is missing: run `windflow crds --out-dir crds`"));
        assert_eq!(
            committed,
            serde_yaml::to_string(&crd).expect("yaml"),
            "{path} drifted: run `windflow crds --out-dir crds`"
        );
    }
    let files = std::fs::read_dir(format!("{}/crds", env!("CARGO_MANIFEST_DIR"))).expect("crds/").count();
    assert_eq!(files, windflow::kinds::crds().len(), "one file per kind, no stale files");
}

#[test]
fn every_kind_is_in_the_windflow_category_with_status_and_printer_columns() {
    let crds = windflow::kinds::crds();
    assert_eq!(crds.len(), 21);
    for crd in crds {
        assert_eq!(crd.spec.group, "windflow.io");
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&["windflow".to_owned()][..]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(),
            "{} has a status subresource",
            crd.spec.names.kind
        );
        let columns = version.additional_printer_columns.as_deref().unwrap_or_default();
        assert!(columns.iter().any(|c| c.name == "Ready"), "{} shows Ready", crd.spec.names.kind);
    }
}

#[test]
fn the_sample_platform_is_valid() {
    let schemas = Schemas::new();
    let docs = support::platform();
    assert_eq!(
        docs.iter().map(|d| d["kind"].as_str()).collect::<std::collections::BTreeSet<_>>().len(),
        21,
        "one of every kind"
    );
    for doc in docs {
        assert_eq!(schemas.problems(&doc, None), Vec::<String>::new(), "{} {}", doc["kind"], doc["metadata"]["name"]);
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let schemas = Schemas::new();
    let docs = support::platform();
    for (kind, name, pointer, value, expected) in BAD_SPECS {
        let mut doc = support::find(&docs, kind, name).clone();
        set(&mut doc, pointer, value);
        let found = schemas.problems(&doc, None);
        assert!(found.iter().any(|p| p.contains(expected)), "{kind} {pointer}: expected {expected:?}, got {found:?}");
    }
}

#[test]
fn a_started_deployment_keeps_its_spec_but_can_be_cancelled_once() {
    let schemas = Schemas::new();
    let docs = support::platform();
    let pending = support::find(&docs, "Deployment", "shop-1-4-2").clone();
    let mut running = pending.clone();
    running["status"] = serde_json::json!({ "phase": "running" });
    let mut reconfigured = running.clone();
    reconfigured["spec"]["deploymentConfig"] = serde_json::json!({ "maxSurge": 2 });
    let found = schemas.problems(&reconfigured, Some(&running));
    assert!(found.iter().any(|p| p.contains("the spec of a started Deployment is immutable")), "{found:?}");
    let mut queued = pending.clone();
    queued["spec"]["deploymentConfig"] = serde_json::json!({ "maxSurge": 2 });
    assert_eq!(schemas.problems(&queued, Some(&pending)), Vec::<String>::new(), "a pending one may change");
    let mut cancelled = running.clone();
    cancelled["spec"]["cancel"] = true.into();
    assert_eq!(schemas.problems(&cancelled, Some(&running)), Vec::<String>::new(), "cancel is allowed");
    let found = schemas.problems(&running, Some(&cancelled));
    assert!(found.iter().any(|p| p.contains("a cancelled Deployment stays cancelled")), "{found:?}");
}

#[test]
fn immutable_fields_cannot_change() {
    let schemas = Schemas::new();
    let docs = support::platform();
    for (kind, name, pointer, value, expected) in BAD_UPDATES {
        let old = support::find(&docs, kind, name).clone();
        let mut new = old.clone();
        set(&mut new, pointer, value);
        let found = schemas.problems(&new, Some(&old));
        assert!(found.iter().any(|p| p.contains(expected)), "{kind} {pointer}: expected {expected:?}, got {found:?}");
        assert_eq!(schemas.problems(&old, Some(&old)), Vec::<String>::new(), "{kind}: an unchanged object passes");
    }
}
