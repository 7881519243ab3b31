//! The CRDs on a real API server: established, listed by category, explained, and refusing
//! every bad fixture of `tests/crds.rs` with its message.

use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::controlplane::{both, run};
use crate::install::eventually;
use crate::support::bad::{BAD_SPECS, BAD_UPDATES, set};
use crate::{api_for, turn};

/// Objects of this test live here: a namespace no Organization owns.
const FIXTURES: &str = "e2e-fixtures";

/// The sample platform with every namespaced object moved to `FIXTURES` and the cluster-scoped
/// ones renamed, so that nothing here meets the platform other tests apply.
fn fixtures() -> Vec<Value> {
    crate::support::documents(include_str!("../../examples/platform.yaml"))
        .into_iter()
        .map(|mut doc| {
            if doc["metadata"].get("namespace").is_some() {
                doc["metadata"]["namespace"] = FIXTURES.into();
            }
            doc
        })
        .collect()
}

/// Whole numbers under a fractional minimum: the API server rounds that minimum down for them
/// (0 passes `minimum: 0.01`), so a CEL rule holds the floor. Offline, the schema refuses them.
const WHOLE_NUMBER_FLOORS: &[(&str, &str, &str, &str, &str)] = &[
    ("Volume", "pgdata", "/spec/sizeGb", "0", "sizeGb is at least 0.01"),
    ("VM", "legacy-erp", "/spec/memoryGb", "0", "memoryGb is at least 0.01"),
    ("VM", "legacy-erp", "/spec/diskGb", "0", "diskGb is at least 0.01"),
];

/// What the API server says where the offline validator says `offline`: the schema's own
/// wording differs, CEL messages are ours and the same.
fn server_wording(offline: &str) -> &str {
    match offline {
        "is not one of" => "Unsupported value",
        "does not match" => "should match",
        "minimum" => "greater than or equal to",
        "maximum" => "less than or equal to",
        "longer than 20" => "may not be more than 20",
        "is not of type" => "must be of type",
        other => other,
    }
}

#[tokio::test]
async fn the_crds_are_served_explained_and_refuse_bad_input() {
    let (_turn, plane) = turn().await;
    let client = plane.client().await;

    // `kubectl get windflow` covers every kind.
    let mut resources = plane.kubectl();
    resources.args(["api-resources", "--categories=windflow", "-o", "name"]);
    let served = run(resources);
    for crd in windflow::kinds::crds() {
        let name = crd.metadata.name.clone().expect("name");
        assert!(served.lines().any(|line| line == name), "{name} is in the windflow category: {served}");
    }
    let mut get = plane.kubectl();
    get.args(["get", "windflow", "-A"]);
    run(get);

    // `kubectl explain` shows the doc comments.
    for crd in windflow::kinds::crds() {
        let version = &crd.spec.versions[0];
        let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect("schema");
        let spec = schema.properties.as_ref().and_then(|p| p.get("spec")).expect("a spec");
        let Some((field, property)) =
            spec.properties.as_ref().and_then(|p| p.iter().find(|(_, p)| p.description.is_some()))
        else {
            continue;
        };
        let description = property.description.clone().unwrap_or_default();
        let first_words: String = description.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        // The group's version disambiguates kinds named like core ones (Deployment).
        let api_version = format!("--api-version={}/{}", crd.spec.group, version.name);
        let path = format!("{}.spec.{field}", crd.spec.names.plural);
        // The API server publishes an established CRD's OpenAPI a moment later, which is what
        // `explain` reads: until then it answers "couldn't find resource".
        let what = format!("kubectl explain {path} showing {first_words:?}");
        let explained = eventually(&what, Duration::from_secs(60), || async {
            let mut explain = plane.kubectl();
            explain.args(["explain", &path, &api_version]);
            let output = explain.output().map_err(|error| error.to_string())?;
            let text = String::from_utf8_lossy(&output.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
            if output.status.success() && text.contains(&first_words) { Ok(()) } else { Err(both(&output)) }
        });
        explained.await;
    }

    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    let namespace = serde_json::from_value(json!({ "metadata": { "name": FIXTURES } })).expect("namespace");
    namespaces.create(&PostParams::default(), &namespace).await.expect("the fixtures namespace");

    // Every manifest of examples/ passes a server-side dry run.
    let docs = fixtures();
    let file = plane.dir.join("examples-dry-run.yaml");
    let yaml: Vec<String> = docs.iter().map(|doc| serde_yaml::to_string(doc).expect("yaml")).collect();
    std::fs::write(&file, yaml.join("---\n")).expect("write");
    let mut dry_run = plane.kubectl();
    dry_run.args(["apply", "--dry-run=server", "-f"]).arg(&file);
    run(dry_run);

    // Every bad fixture is refused, with the message users read.
    let dry_run = PostParams { dry_run: true, ..PostParams::default() };
    let mut created = vec![];
    let mut wrong = vec![];
    for (kind, name, pointer, value, expected) in BAD_SPECS.iter().chain(WHOLE_NUMBER_FLOORS) {
        let good = crate::support::find(&docs, kind, name).clone();
        let (api, _) = api_for(&client, &good);
        let error = if *pointer == "/status" {
            // Status is a subresource: the object exists first, then its status is refused.
            if api.get_opt(name).await.expect("get").is_none() {
                api.create(&PostParams::default(), &serde_json::from_value(good.clone()).expect("object"))
                    .await
                    .unwrap_or_else(|error| panic!("{kind} {name}: {error}"));
                created.push(good.clone());
            }
            let status: Value = serde_json::from_str(value).expect("json");
            api.patch_status(name, &PatchParams::default(), &Patch::Merge(json!({ "status": status }))).await.err()
        } else {
            let mut bad = good.clone();
            set(&mut bad, pointer, value);
            api.create(&dry_run, &serde_json::from_value(bad).expect("object")).await.err()
        };
        let wording = server_wording(expected);
        match error.map(|e| e.to_string()) {
            None => wrong.push(format!("{kind} {pointer} = {value}: accepted")),
            Some(message) if !message.contains(wording) => {
                wrong.push(format!("{kind} {pointer} = {value}: expected {wording:?}, got {message}"));
            }
            Some(_) => {}
        }
    }

    // Transition rules: the object exists, then a change of an immutable field is refused.
    for (kind, name, pointer, value, expected) in BAD_UPDATES {
        let good = crate::support::find(&docs, kind, name).clone();
        let (api, _) = api_for(&client, &good);
        if api.get_opt(name).await.expect("get").is_none() {
            api.create(&PostParams::default(), &serde_json::from_value(good.clone()).expect("object"))
                .await
                .unwrap_or_else(|error| panic!("{kind} {name}: {error}"));
            created.push(good.clone());
        }
        let mut bad = json!({});
        let path = pointer.trim_start_matches('/').split('/').collect::<Vec<_>>();
        let mut at = &mut bad;
        for key in &path[..path.len() - 1] {
            at = at.as_object_mut().expect("object").entry(*key).or_insert_with(|| json!({}));
        }
        at[path[path.len() - 1]] = serde_json::from_str(value).expect("json");
        let patch = PatchParams { dry_run: true, ..PatchParams::default() };
        match api.patch(name, &patch, &Patch::Merge(bad)).await {
            Ok(_) => wrong.push(format!("{kind} {pointer} = {value}: accepted")),
            Err(error) if !error.to_string().contains(expected) => {
                wrong.push(format!("{kind} {pointer} = {value}: expected {expected:?}, got {error}"));
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "refused otherwise than expected:\n{}", wrong.join("\n"));

    for doc in created {
        let (api, name) = api_for(&client, &doc);
        api.delete(&name, &DeleteParams::default()).await.expect("delete");
    }
    namespaces.delete(FIXTURES, &DeleteParams::default()).await.expect("delete the fixtures namespace");
}
