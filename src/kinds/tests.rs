//! The builders, from the YAML of `examples/platform.yaml` and small fixtures beside it.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::application::*;
use super::container_cluster::*;
use super::dns_record::*;
use super::domain::*;
use super::environment::*;
use super::gateway::*;
use super::index::as_mirrored;
use super::network::*;
use super::organization::*;
use super::policy::*;
use super::release;
use super::stack::*;
use super::vm::*;
use super::volume::*;
use super::*;
use crate::provision::{Config, Destination, ProvisionError, labels, probe, types};

fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).expect("yaml")).expect("json"))
        .filter(|doc: &Value| !doc.is_null())
        .collect()
}

fn platform() -> Vec<Value> {
    documents(include_str!("../../examples/platform.yaml"))
}

/// The index of `docs`, every row written.
fn index(docs: &[Value]) -> Index {
    Index::from_documents(&docs.iter().map(as_mirrored).collect::<Vec<_>>())
}

/// The sample object `kind`/`name`, after `change` is merged into it (JSON merge patch).
fn sample<K: for<'de> Deserialize<'de>>(kind: &str, name: &str, change: Value) -> K {
    let mut doc = platform().into_iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).expect("sample");
    doc["metadata"]["uid"] = "7f1c0b6e-0000-4000-8000-000000000001".into();
    merge(&mut doc, change);
    serde_json::from_value(doc).expect("a valid fixture")
}

/// The document `kind`/`name` of `docs`.
fn index_doc(docs: &[Value], kind: &str, name: &str) -> Value {
    docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).cloned().expect("the document")
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(&key);
                } else {
                    merge(target.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch,
    }
}

/// The children `obj` places on the first of its clusters: what its builder makes (the copies
/// on its other clusters are the same objects, see the placement tests).
fn objects<K: Kind>(obj: &K, inputs: &Inputs) -> crate::provision::Result<Vec<DynamicObject>> {
    let placement = place(obj, inputs.index)?;
    let first = placement.clusters.first().cloned();
    let placed = children(obj, &placement, inputs)?;
    Ok(placed.into_iter().filter(|child| Some(&child.cluster) == first.as_ref()).map(|child| child.object).collect())
}

/// The children of `obj`, as JSON.
fn build<K: Kind>(obj: &K, config: &Config) -> crate::provision::Result<Vec<Value>> {
    build_on(obj, config, &[])
}

/// [`build`] on a cluster that does not serve the `unserved` types.
fn build_on<K: Kind>(obj: &K, config: &Config, unserved: &[ChildType]) -> crate::provision::Result<Vec<Value>> {
    let index = index(&platform());
    let inputs = Inputs { unserved, ..Inputs::offline(&index, config) };
    let children = objects(obj, &inputs)?;
    Ok(children.into_iter().map(|c| serde_json::to_value(c).expect("json")).collect())
}

fn built<K: Kind>(obj: &K) -> Vec<Value> {
    build(obj, &Config::default()).expect("children")
}

fn kinds(children: &[Value]) -> Vec<(&str, &str, &str)> {
    children
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap_or_default(),
                c["metadata"]["namespace"].as_str().unwrap_or_default(),
                c["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn organization_owns_its_tenant_namespace() {
    let org: Organization = sample("Organization", "acme", json!({}));
    let children = built(&org);
    assert_eq!(kinds(&children), [("Namespace", "", "acme")]);
    assert_eq!(children[0]["metadata"]["labels"][labels::ORGANIZATION], "acme");
    // A cluster-scoped owner owns its children wherever they are.
    assert_eq!(children[0]["metadata"]["ownerReferences"][0]["kind"], "Organization");
    let renamed: Organization = sample("Organization", "acme", json!({ "spec": { "namespace": "acme-tenant" } }));
    assert_eq!(kinds(&built(&renamed)), [("Namespace", "", "acme-tenant")]);
}

#[test]
fn environment_gets_a_namespace_quota_limits_and_default_deny() {
    let env: Environment = sample("Environment", "staging", json!({}));
    let children = built(&env);
    assert_eq!(
        kinds(&children),
        [
            ("Namespace", "", "acme-staging"),
            ("ResourceQuota", "acme-staging", "windflow"),
            ("LimitRange", "acme-staging", "windflow"),
            ("NetworkPolicy", "acme-staging", "windflow-default-deny"),
        ]
    );
    assert_eq!(children[0]["metadata"]["labels"][labels::ENVIRONMENT], "staging");
    assert_eq!(children[0]["metadata"]["labels"]["windflow.io/environment-type"], "staging");
    assert_eq!(children[1]["spec"]["hard"], json!({ "limits.cpu": "4", "limits.memory": "8Gi", "pods": "50" }));
    assert_eq!(children[3]["spec"]["podSelector"], json!({}));
    assert_eq!(children[3]["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    // The environment lives in the tenant namespace, its children elsewhere: labels, no owner.
    assert!(children[1]["metadata"].get("ownerReferences").is_none());
    assert!(children[1]["metadata"]["labels"][labels::OWNER_UID].is_string());
}

#[test]
fn environment_without_limits_has_no_quota_and_bad_quantities_are_named() {
    let env: Environment = sample("Environment", "staging", json!({ "spec": { "resourceLimits": null } }));
    assert!(!kinds(&built(&env)).iter().any(|(kind, _, _)| *kind == "ResourceQuota"));
    let bad: Environment = sample("Environment", "staging", json!({ "spec": { "resourceLimits": { "cpu": [1] } } }));
    let error = build(&bad, &Config::default()).expect_err("refused");
    assert_eq!(error.to_string(), "spec.resourceLimits.limits.cpu: a quantity is a string or a number");
}

#[test]
fn volume_is_a_claim_with_the_configured_class_access_mode_and_size() {
    let volume: Volume = sample("Volume", "uploads", json!({}));
    let children = built(&volume);
    assert_eq!(kinds(&children), [("PersistentVolumeClaim", "acme-production", "uploads")]);
    assert_eq!(children[0]["spec"]["accessModes"], json!(["ReadWriteMany"]));
    assert_eq!(children[0]["spec"]["resources"]["requests"]["storage"], "20G");
    assert!(children[0]["spec"].get("storageClassName").is_none(), "unmapped: the default class");
    let config = Config { storage_classes: [("nfs".to_owned(), "nfs-csi".to_owned())].into(), ..Config::default() };
    assert_eq!(build(&volume, &config).expect("children")[0]["spec"]["storageClassName"], "nfs-csi");

    // An object store is mounted by a CSI driver the platform names, never a default disk.
    let bucket: Volume = sample("Volume", "uploads", json!({ "spec": { "volumeType": "s3" } }));
    let refused = build(&bucket, &Config::default()).expect_err("no class for s3");
    assert!(matches!(refused, ProvisionError::NotProvided { .. }), "{refused:?}");
    assert!(refused.to_string().contains("provisioning.storageClasses.s3"), "{refused}");
    let config = Config { storage_classes: [("s3".to_owned(), "csi-s3".to_owned())].into(), ..Config::default() };
    assert_eq!(build(&bucket, &config).expect("children")[0]["spec"]["storageClassName"], "csi-s3");
}

/// The children of `volume` when it holds the snapshots `kept`, at `now`.
fn backed_up(volume: &Volume, kept: &[String], now: &str) -> crate::provision::Result<Vec<Value>> {
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs { kept, now: now.parse().expect("a time"), ..Inputs::offline(&index, &config) };
    Ok(objects(volume, &inputs)?.into_iter().map(|c| serde_json::to_value(c).expect("json")).collect())
}

#[test]
fn scheduled_backups_are_snapshots_named_by_their_slot_and_kept_by_count() {
    let volume: Volume = sample(
        "Volume",
        "uploads",
        json!({ "metadata": { "creationTimestamp": "2026-12-01T00:00:00Z" },
                "spec": { "backupSchedule": "0 2 * * *", "backupRetention": 3 } }),
    );
    let held: Vec<String> =
        ["uploads-202611300200", "uploads-202612030200", "uploads-202612040200", "uploads-202612050200"]
            .map(str::to_owned)
            .into();
    let children = backed_up(&volume, &held, "2026-12-06T03:00:00Z").expect("children");
    assert_eq!(
        kinds(&children),
        [
            ("PersistentVolumeClaim", "acme-production", "uploads"),
            ("VolumeSnapshot", "acme-production", "uploads-202612060200"),
            ("VolumeSnapshot", "acme-production", "uploads-202612050200"),
            ("VolumeSnapshot", "acme-production", "uploads-202612040200"),
        ],
        "today's slot is due; the two oldest go"
    );
    assert_eq!(children[1]["apiVersion"], "snapshot.storage.k8s.io/v1");
    assert_eq!(children[1]["spec"], json!({ "source": { "persistentVolumeClaimName": "uploads" } }));
    assert!(children[1]["metadata"]["labels"][labels::OWNER_UID].is_string(), "found again as its child");
    // Before the first slot after its creation, nothing is due.
    let young = backed_up(&volume, &[], "2026-12-01T01:59:00Z").expect("children");
    assert_eq!(kinds(&young), [("PersistentVolumeClaim", "acme-production", "uploads")]);
    // Woken at the next slot, not polled.
    let index = index(&platform());
    let config = Config::default();
    let at_three = Inputs { now: "2026-12-06T03:00:00Z".parse().expect("a time"), ..Inputs::offline(&index, &config) };
    assert_eq!(volume.due(&at_three), Some(std::time::Duration::from_secs(23 * 3600)));

    // Off: no new snapshot, the kept ones stay; without a schedule, the same.
    for off in [json!({ "spec": { "backupEnabled": false } }), json!({ "spec": { "backupSchedule": null } })] {
        let mut stopped = volume.clone();
        let change: VolumeSpec = serde_json::from_value({
            let mut spec = serde_json::to_value(&volume.spec).expect("spec");
            merge(&mut spec, off["spec"].clone());
            spec
        })
        .expect("a spec");
        stopped.spec = change;
        let children = backed_up(&stopped, &held, "2026-12-06T03:00:00Z").expect("children");
        let names: Vec<&str> = kinds(&children).into_iter().skip(1).map(|(_, _, name)| name).collect();
        assert_eq!(names, ["uploads-202612050200", "uploads-202612040200", "uploads-202612030200"]);
        assert_eq!(stopped.due(&at_three), None);
    }

    // What the snapshots say is the status: the newest is the last backup.
    let applied: Vec<DynamicObject> = children
        .iter()
        .map(|child| {
            let mut child: DynamicObject = serde_json::from_value(child.clone()).expect("an object");
            let newest = child.metadata.name.as_deref() == Some("uploads-202612060200");
            child.data["status"] = json!({ "phase": "Bound", "readyToUse": !newest });
            child
        })
        .collect();
    let observed = as_json(&Kind::observe(&volume, &applied, &at_three));
    assert_eq!(observed["backups"]["lastBackup"], "uploads-202612060200");
    assert_eq!(observed["backups"]["lastBackupTime"], "2026-12-06T02:00:00Z");
    assert_eq!(observed["backups"]["nextBackupTime"], "2026-12-07T02:00:00Z");
    assert_eq!(observed["backups"]["snapshots"].as_array().map(Vec::len), Some(3));
    assert_eq!(observed["backups"]["snapshots"][2]["scheduledAt"], "2026-12-04T02:00:00Z");
    assert_eq!(observed["backups"]["snapshots"][0]["readyToUse"], false, "just made");
    assert_eq!(observed["backups"]["snapshots"][2]["readyToUse"], true);

    // Cron is read as five fields, minutes at the finest.
    assert!(parse_schedule("*/15 1-5 * * MON-FRI").is_ok());
    for bad in ["every night", "0 0 2 * * *", "61 * * * *"] {
        let error = parse_schedule(bad).expect_err(bad);
        assert!(error.starts_with(&format!("spec.backupSchedule {bad:?} is not five-field cron")), "{error}");
    }
}

#[test]
fn a_restored_volume_starts_from_its_snapshot_where_the_snapshot_api_is_served() {
    let restored: Volume =
        sample("Volume", "uploads", json!({ "spec": { "restoreFrom": { "snapshot": "uploads-202612060200" } } }));
    let children = built(&restored);
    assert_eq!(
        children[0]["spec"]["dataSource"],
        json!({ "apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "uploads-202612060200" })
    );
    let refused = build_on(&restored, &Config::default(), &[types::VOLUME_SNAPSHOT]).expect_err("not served");
    assert!(matches!(refused, ProvisionError::NotProvided { .. }), "{refused:?}");
    assert!(refused.to_string().contains("the CSI snapshot API"), "{refused}");
}

#[test]
fn the_standing_counts_objects_not_ready_by_reason_and_rollouts_by_phase() {
    let mut docs = platform();
    let ready = |status: &str, reason: &str| {
        json!({ "conditions": [{ "type": "Ready", "status": status,
        "reason": reason, "message": "", "lastTransitionTime": "2026-12-06T00:00:00Z" }] })
    };
    for doc in docs.iter_mut() {
        doc["status"] = match (doc["kind"].as_str(), doc["metadata"]["name"].as_str()) {
            (Some("Network"), _) => ready("False", "ProviderNotInstalled"),
            (Some("Deployment"), _) => json!({ "phase": "running" }),
            (Some("Tag"), _) => Value::Null,
            _ => ready("True", "Provisioned"),
        };
    }
    let standing = index(&docs).standing();
    let networks = docs.iter().filter(|doc| doc["kind"] == "Network").count() as i64;
    let tags = docs.iter().filter(|doc| doc["kind"] == "Tag").count() as i64;
    let mut expected = std::collections::BTreeMap::from([
        (("Network".to_owned(), "ProviderNotInstalled".to_owned()), networks),
        (("Deployment".to_owned(), "NotReported".to_owned()), 1),
    ]);
    if tags > 0 {
        expected.insert(("Tag".to_owned(), "NotReported".to_owned()), tags);
    }
    assert_eq!(standing.not_ready, expected);
    assert_eq!(standing.rollouts, std::collections::BTreeMap::from([("running".to_owned(), 1)]));
}

/// The children of Application `name` when Element k8s (its stack's) has `monitoring`.
fn monitored(name: &str, monitoring: Value) -> crate::provision::Result<Vec<Value>> {
    let mut docs = platform();
    for doc in docs.iter_mut().filter(|doc| doc["kind"] == "Element" && doc["metadata"]["name"] == "k8s") {
        doc["spec"]["monitoringConfig"] = monitoring.clone();
    }
    let index = index(&docs);
    let config = Config::default();
    let application: Application = sample("Application", name, json!({}));
    let children = objects(&application, &Inputs::offline(&index, &config))?;
    Ok(children.into_iter().map(|c| serde_json::to_value(c).expect("json")).collect())
}

#[test]
fn an_elements_monitoring_config_scrapes_the_applications_on_it() {
    let of_kind = |children: &[Value], kind: &str| children.iter().find(|c| c["kind"] == kind).cloned();
    // Off unless enabled.
    let off = monitored("storefront", json!({ "interval": "30s" })).expect("children");
    assert!(of_kind(&off, "ServiceMonitor").is_none() && of_kind(&off, "PodMonitor").is_none());

    let children =
        monitored("storefront", json!({ "enabled": true, "labels": { "release": "prometheus" } })).expect("children");
    let monitor = of_kind(&children, "ServiceMonitor").expect("a ServiceMonitor");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["metadata"]["namespace"], "acme-production");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus", "what Prometheus selects");
    assert_eq!(monitor["spec"]["endpoints"], json!([{ "port": "http", "path": "/metrics" }]));
    // It selects the application's Service, by a label the Service carries.
    let service = of_kind(&children, "Service").expect("the Service");
    let selected = monitor["spec"]["selector"]["matchLabels"].as_object().expect("labels");
    assert!(!selected.is_empty());
    for (key, value) in selected {
        assert_eq!(&service["metadata"]["labels"][key], value, "{key}");
    }

    let pods = json!({ "enabled": true, "monitor": "pod", "port": "postgres", "path": "/stats", "interval": "1m" });
    let children = monitored("postgres", pods).expect("children");
    let monitor = of_kind(&children, "PodMonitor").expect("a PodMonitor");
    assert_eq!(
        monitor["spec"]["podMetricsEndpoints"],
        json!([{ "port": "postgres", "path": "/stats", "interval": "1m" }])
    );
    let workload = of_kind(&children, "Deployment").expect("the workload");
    for (key, value) in monitor["spec"]["selector"]["matchLabels"].as_object().expect("labels") {
        assert_eq!(&workload["spec"]["template"]["metadata"]["labels"][key], value, "{key}");
    }

    // Its applications are woken when the element's spec changes.
    let k8s: super::element::Element = sample("Element", "k8s", json!({}));
    let mut woken: Vec<String> = k8s.governed(&index(&platform())).into_iter().map(|(_, name, _)| name).collect();
    woken.sort();
    assert_eq!(woken, ["api", "postgres", "storefront"]);

    // A port the application does not name is said on it.
    let error = monitored("storefront", json!({ "enabled": true, "port": "metrics" })).expect_err("no such port");
    assert_eq!(
        error.to_string(),
        "spec.deploymentConfig.ports: Element k8s scrapes port \"metrics\" (monitoringConfig.port), which this \
         application does not name (its ports: http)"
    );
}

#[test]
fn network_policy_joins_members_and_bridges_get_a_multus_attachment() {
    let backend: Network = sample("Network", "backend", json!({}));
    let children = built(&backend);
    assert_eq!(
        kinds(&children),
        [
            ("NetworkPolicy", "acme-production", "network-backend"),
            ("NetworkAttachmentDefinition", "acme-production", "backend")
        ]
    );
    let members = json!({ "matchLabels": { "network.windflow.io/backend": "true" } });
    assert_eq!(children[0]["spec"]["podSelector"], members);
    assert_eq!(children[0]["spec"]["ingress"][0]["from"][0]["podSelector"], members);
    let config: Value = serde_json::from_str(children[1]["spec"]["config"].as_str().expect("config")).expect("json");
    assert_eq!(config["type"], "bridge");
    assert_eq!(config["ipam"], json!({ "type": "host-local", "subnet": "10.20.0.0/16", "gateway": "10.20.0.1" }));
    // An overlay network is the pod network: encrypted only where the installation says the
    // CNI encrypts.
    let overlay: Network = sample("Network", "frontend", json!({}));
    let refused = build(&overlay, &Config::default()).expect_err("not known to encrypt");
    assert!(matches!(refused, ProvisionError::NotProvided { .. }), "{refused:?}");
    assert!(refused.to_string().starts_with("spec.encryptionEnabled: the cluster's pod network is not known"));
    let encrypting = Config { pod_network_encryption: Some("wireguard".into()), ..Config::default() };
    let children = build(&overlay, &encrypting).expect("children");
    assert_eq!(kinds(&children), [("NetworkPolicy", "acme-production", "network-frontend")]);
    let plain: Network = sample("Network", "frontend", json!({ "spec": { "encryptionEnabled": false } }));
    assert_eq!(kinds(&built(&plain)), [("NetworkPolicy", "acme-production", "network-frontend")]);
}

#[test]
fn vm_is_a_kubevirt_virtual_machine() {
    let vm: VM = sample(
        "VM",
        "legacy-erp",
        json!({ "spec": { "vmConfig": { "powerState": "stopped", "image": "quay.io/acme/erp:9" } } }),
    );
    let children = built(&vm);
    assert_eq!(
        kinds(&children),
        [
            ("NetworkAttachmentDefinition", "acme-production", "backend-legacy-erp"),
            ("VirtualMachine", "acme-production", "legacy-erp")
        ]
    );
    // The fixed address is the static IPAM of the machine's own definition, in the network's
    // CNI network.
    let config: Value = serde_json::from_str(children[0]["spec"]["config"].as_str().expect("config")).expect("json");
    assert_eq!(config["name"], "backend");
    assert_eq!(config["type"], "bridge");
    assert_eq!(
        config["ipam"],
        json!({ "type": "static", "addresses": [{ "address": "10.20.1.5/16" }], "gateway": "10.20.0.1" })
    );
    let template = &children[1]["spec"]["template"]["spec"];
    assert_eq!(
        template["networks"],
        json!([{ "name": "default", "pod": {} },
               { "name": "backend", "multus": { "networkName": "acme-production/backend-legacy-erp" } }])
    );
    assert_eq!(
        template["domain"]["devices"]["interfaces"],
        json!([{ "name": "default", "masquerade": {} }, { "name": "backend", "bridge": {} }])
    );
    let children = &children[1..];
    let spec = &children[0]["spec"];
    assert_eq!(spec["runStrategy"], "Halted");
    assert_eq!(spec["template"]["spec"]["domain"]["cpu"]["cores"], 4);
    assert_eq!(spec["template"]["spec"]["domain"]["memory"]["guest"], "16G");
    assert_eq!(spec["dataVolumeTemplates"][0]["spec"]["storage"]["resources"]["requests"]["storage"], "200G");
    assert_eq!(spec["dataVolumeTemplates"][0]["spec"]["source"]["registry"]["url"], "docker://quay.io/acme/erp:9");
    assert_eq!(spec["template"]["spec"]["volumes"][1]["persistentVolumeClaim"]["claimName"], "pgdata");
    assert_eq!(spec["template"]["metadata"]["labels"]["network.windflow.io/backend"], "true");
    assert_eq!(children[0]["metadata"]["labels"]["kubevirt.io/os"], "linux");
    let running: VM = sample("VM", "legacy-erp", json!({}));
    assert_eq!(built(&running)[1]["spec"]["runStrategy"], "Always");
    // Without CDI the root disk cannot be made: said, not applied.
    let refused = build_on(&running, &Config::default(), &[types::DATA_VOLUME]).expect_err("no CDI");
    assert!(matches!(refused, ProvisionError::NotProvided { .. }), "{refused:?}");
    assert!(refused.to_string().contains("CDI (KubeVirt's Containerized Data Importer) is not installed"));
    let refused_address = |networks: Value| {
        let vm: VM = sample("VM", "legacy-erp", json!({ "spec": { "networks": networks } }));
        build(&vm, &Config::default()).expect_err("refused").to_string()
    };
    assert_eq!(
        refused_address(json!([{ "network": "backend", "ipAddress": "10.30.0.5" }])),
        "spec.networks[0].ipAddress: 10.30.0.5 is not in Network \"backend\"'s subnet 10.20.0.0/16"
    );
    assert_eq!(
        refused_address(json!([{ "network": "frontend", "ipAddress": "10.1.0.5" }])),
        "spec.networks[0].ipAddress: Network \"frontend\" is the cluster's pod network (overlay): a fixed \
         address needs a bridge or macvlan network"
    );
    let bad: VM = sample("VM", "legacy-erp", json!({ "spec": { "vmConfig": { "powerState": "paused" } } }));
    assert_eq!(
        build(&bad, &Config::default()).expect_err("refused").to_string(),
        "spec.vmConfig.powerState: \"paused\" is not running or stopped"
    );
}

#[test]
fn kubernetes_cluster_is_a_cluster_api_cluster_from_its_class() {
    let cluster: ContainerCluster = sample("ContainerCluster", "main", json!({}));
    let children = built(&cluster);
    assert_eq!(kinds(&children), [("Cluster", "acme-production", "main")]);
    assert_eq!(children[0]["apiVersion"], "cluster.x-k8s.io/v1beta2");
    let topology = &children[0]["spec"]["topology"];
    assert_eq!(topology["classRef"], json!({ "name": "acme-standard" }), "the Cluster's own namespace");
    assert_eq!(topology["version"], "v1.33.1");
    assert_eq!(topology["controlPlane"]["replicas"], 3, "haEnabled");
    assert_eq!(topology["workers"]["machineDeployments"][0]["replicas"], 3);
    // One ClusterClass for every environment: the chart names its namespace, a cluster may
    // name another.
    let shared = Config { cluster_class_namespace: Some("capi-classes".into()), ..Config::default() };
    let children = build(&cluster, &shared).expect("children");
    assert_eq!(children[0]["spec"]["topology"]["classRef"]["namespace"], "capi-classes");
    let elsewhere: ContainerCluster =
        sample("ContainerCluster", "main", json!({ "spec": { "clusterConfig": { "classNamespace": "platform" } } }));
    let children = build(&elsewhere, &shared).expect("children");
    assert_eq!(children[0]["spec"]["topology"]["classRef"]["namespace"], "platform");
    let existing: ContainerCluster = sample(
        "ContainerCluster",
        "main",
        json!({ "spec": { "clusterConfig": { "kubeconfigSecret": "main-kubeconfig" } } }),
    );
    assert!(built(&existing).is_empty(), "an existing cluster is not provisioned");
    let docker: ContainerCluster =
        sample("ContainerCluster", "main", json!({ "spec": { "clusterMode": "docker", "clusterConfig": null } }));
    assert!(built(&docker).is_empty());
    let classless: ContainerCluster = sample("ContainerCluster", "main", json!({ "spec": { "clusterConfig": null } }));
    assert!(
        build(&classless, &Config::default())
            .expect_err("refused")
            .to_string()
            .starts_with("spec.clusterConfig.class:")
    );
}

#[test]
fn container_application_is_a_deployment_and_a_service_with_volumes_and_networks() {
    let app: Application = sample("Application", "api", json!({}));
    let children = built(&app);
    assert_eq!(kinds(&children), [("Deployment", "acme-production", "api"), ("Service", "acme-production", "api")]);
    let pod = &children[0]["spec"]["template"];
    assert_eq!(children[0]["spec"]["replicas"], 2);
    assert_eq!(pod["metadata"]["labels"]["network.windflow.io/frontend"], "true");
    assert_eq!(pod["metadata"]["labels"]["network.windflow.io/backend"], "true");
    // Multus attaches the bridge network (the overlay one is the pod network).
    assert_eq!(pod["metadata"]["annotations"], json!({ "k8s.v1.cni.cncf.io/networks": "acme-production/backend" }));
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["image"], "ghcr.io/acme/shop-api:2.0.1");
    assert_eq!(container["volumeMounts"], json!([{ "name": "uploads", "mountPath": "/srv/uploads" }]));
    assert_eq!(
        container["env"],
        json!([{ "name": "DATABASE_HOST", "value": "postgres" }, { "name": "LOG_LEVEL", "value": "info" }])
    );
    assert_eq!(pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"], "uploads");
    assert_eq!(children[1]["spec"]["ports"], json!([{ "name": "port-8000", "port": 8000, "targetPort": 8000 }]));
    assert_eq!(children[1]["spec"]["selector"], json!({ labels::APPLICATION: "api" }));
    let imageless: Application =
        sample("Application", "api", json!({ "spec": { "deploymentConfig": { "image": null } } }));
    assert_eq!(
        build(&imageless, &Config::default()).expect_err("refused").to_string(),
        "spec.deploymentConfig.image: a container application names its image"
    );
    // A fixed address fits one pod.
    let fixed = json!([{ "network": "backend", "ipAddress": "10.20.2.7" }]);
    let crowded: Application = sample("Application", "api", json!({ "spec": { "networks": fixed } }));
    assert_eq!(
        build(&crowded, &Config::default()).expect_err("refused").to_string(),
        "spec.networks[0].ipAddress: a fixed address fits one pod; this workload runs 2 replicas"
    );
    let single: Application =
        sample("Application", "api", json!({ "spec": { "networks": fixed, "deploymentConfig": { "replicas": 1 } } }));
    let children = built(&single);
    assert_eq!(kinds(&children)[0], ("NetworkAttachmentDefinition", "acme-production", "backend-api"));
    assert_eq!(
        children[1]["spec"]["template"]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"],
        "acme-production/backend-api"
    );
    // The old pod releases the address before the new one takes it.
    assert_eq!(children[1]["spec"]["strategy"], json!({ "type": "Recreate" }));
}

#[test]
fn vm_application_is_a_virtual_machine_and_physical_is_mirrored_only() {
    let vm: Application = sample(
        "Application",
        "api",
        json!({ "spec": { "applicationType": "vm", "deploymentConfig": { "cpuCores": 2, "memoryGb": 4, "diskGb": 40 } } }),
    );
    let children = built(&vm);
    assert_eq!(kinds(&children), [("VirtualMachine", "acme-production", "api")]);
    assert_eq!(children[0]["spec"]["template"]["spec"]["domain"]["cpu"]["cores"], 2);
    let physical: Application = sample("Application", "api", json!({ "spec": { "applicationType": "physical" } }));
    assert!(built(&physical).is_empty());
}

/// The status `app` observes, its children showing `status` (and `spec` merged into them).
fn observed_application(app: &Application, index: &Index, spec: Value, status: Value) -> Value {
    let config = Config::default();
    let inputs = Inputs::offline(index, &config);
    let mut applied = objects(app, &inputs).expect("children");
    for child in &mut applied {
        merge(&mut child.data["spec"], spec.clone());
        child.data["status"] = status.clone();
    }
    as_json(&Kind::observe(app, &applied, &inputs))
}

#[test]
fn a_stopped_application_keeps_its_workloads_with_no_pod() {
    let stopped: Application = sample("Application", "api", json!({ "spec": { "stopped": true } }));
    let children = built(&stopped);
    assert_eq!(kinds(&children), [("Deployment", "acme-production", "api"), ("Service", "acme-production", "api")]);
    assert_eq!(children[0]["spec"]["replicas"], 0);
    let index = index(&platform());
    let status = observed_application(&stopped, &index, json!({}), json!({ "replicas": 2, "readyReplicas": 2 }));
    assert_eq!(status["deploymentStatus"], "stopped", "{status}");
    // A vm application's machine is halted, and is not waited for.
    let vm = json!({ "spec": { "applicationType": "vm", "stopped": true,
        "deploymentConfig": { "cpuCores": 2, "memoryGb": 4, "diskGb": 40 } } });
    let machine: Application = sample("Application", "api", vm);
    assert_eq!(built(&machine)[0]["spec"]["runStrategy"], "Halted");
    assert_eq!(not_working(&machine, json!({ "printableStatus": "Stopped" })), None);
}

#[test]
fn an_autoscaled_application_leaves_its_replicas_to_a_horizontal_pod_autoscaler() {
    let scaling = json!({ "minReplicas": 2, "maxReplicas": 6, "targetCPUUtilization": 70 });
    let autoscaled: Application = sample(
        "Application",
        "api",
        json!({ "spec": { "autoscaling": scaling, "allocatedResources": { "cpu": "500m", "memory": "256Mi" } } }),
    );
    let children = built(&autoscaled);
    assert_eq!(
        kinds(&children),
        [
            ("Deployment", "acme-production", "api"),
            ("HorizontalPodAutoscaler", "acme-production", "api"),
            ("Service", "acme-production", "api")
        ]
    );
    assert_eq!(children[0]["spec"].get("replicas"), None, "the autoscaler's to set");
    assert_eq!(
        children[1]["spec"],
        json!({ "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "api" },
            "minReplicas": 2, "maxReplicas": 6,
            "metrics": [{ "type": "Resource", "resource": { "name": "cpu",
                "target": { "type": "Utilization", "averageUtilization": 70 } } }] })
    );
    // Utilization is a share of a request: without one, the target is refused.
    let unrequested: Application = sample("Application", "api", json!({ "spec": { "autoscaling": scaling } }));
    assert_eq!(
        build(&unrequested, &Config::default()).expect_err("refused").to_string(),
        "spec.autoscaling.targetCPUUtilization: a cpu target is a share of the cpu each pod requests: set \
         allocatedResources.cpu"
    );
    // Its pods on their way to the autoscaler's count: scaling; there: its rollouts' word.
    let index = index(&platform());
    let moving = observed_application(&autoscaled, &index, json!({ "replicas": 4 }), json!({ "readyReplicas": 2 }));
    assert_eq!(moving["deploymentStatus"], "scaling", "{moving}");
    let there = observed_application(&autoscaled, &index, json!({ "replicas": 4 }), json!({ "readyReplicas": 4 }));
    assert_eq!(there["deploymentStatus"], "pending", "{there}");
    let coming_up = observed_application(&autoscaled, &index, json!({ "replicas": 2 }), json!({}));
    assert_eq!(coming_up["deploymentStatus"], "pending", "no pod was ready yet: {coming_up}");
    // Stopped, it has no autoscaler: none would keep it at zero.
    let stopped: Application = sample(
        "Application",
        "api",
        json!({ "spec": { "autoscaling": scaling, "stopped": true, "allocatedResources": { "cpu": "500m" } } }),
    );
    let children = built(&stopped);
    assert_eq!(kinds(&children).len(), 2, "{children:?}");
    assert_eq!(children[0]["spec"]["replicas"], 0);
}

#[test]
fn a_suspended_organization_or_environment_stops_its_workloads_and_wakes_them() {
    for (kind, name) in [("Organization", "acme"), ("Environment", "production")] {
        let mut docs = platform();
        let suspended = docs.iter_mut().find(|d| d["kind"] == kind && d["metadata"]["name"] == name).expect(kind);
        suspended["spec"]["isActive"] = false.into();
        let index = index(&docs);
        let config = Config::default();
        let inputs = Inputs::offline(&index, &config);
        let app: Application = sample("Application", "api", json!({}));
        let workload = &objects(&app, &inputs).expect("built")[0];
        assert_eq!(workload.data["spec"]["replicas"], 0, "{kind}");
        let status = observed_application(&app, &index, json!({}), json!({ "readyReplicas": 2 }));
        assert_eq!(status["deploymentStatus"], "stopped", "{kind}");
        let vm: VM = sample("VM", "legacy-erp", json!({}));
        let machine = objects(&vm, &inputs)
            .expect("built")
            .into_iter()
            .find(|c| c.types.as_ref().is_some_and(|t| t.kind == "VirtualMachine"));
        assert_eq!(machine.expect("its machine").data["spec"]["runStrategy"], "Halted", "{kind}");
        let why = index.suspension_of(&app).expect("suspended");
        assert!(why.starts_with(&format!("{kind} ")) && why.ends_with("is suspended (isActive: false)"), "{why}");
        // Its change wakes what runs in it.
        let governing: Value = index_doc(&docs, kind, name);
        let woken = match kind {
            "Organization" => serde_json::from_value::<Organization>(governing).expect("org").governed(&index),
            _ => serde_json::from_value::<Environment>(governing).expect("env").governed(&index),
        };
        for expected in [(KindId::Application, "api"), (KindId::Application, "postgres"), (KindId::VM, "legacy-erp")] {
            assert!(woken.contains(&(expected.0, expected.1.to_owned(), "acme".to_owned())), "{kind}: {woken:?}");
        }
    }
    // Staging is active: what runs there is not its production's to stop.
    let index = index(&platform());
    let staging: Environment = sample("Environment", "staging", json!({}));
    assert!(staging.governed(&index).iter().all(|(_, name, _)| name != "api"));
    assert_eq!(index.suspension("acme", Some("production")), None);
}

#[test]
fn quotas_hold_back_what_comes_after_them_and_usage_counts_what_is_within() {
    let with_quotas = |quotas: Value, changes: &[(&str, &str, Value)]| {
        let mut docs = platform();
        for doc in &mut docs {
            if doc["kind"] == "Organization" && doc["metadata"]["name"] == "acme" {
                doc["spec"]["quotas"] = quotas.clone();
            }
            for (kind, name, change) in changes {
                if doc["kind"] == *kind && doc["metadata"]["name"] == *name {
                    merge(doc, change.clone());
                }
            }
        }
        index(&docs)
    };
    // Weighed in creation order (here, none has a time: by kind and name): the third
    // application is beyond a quota of two, and is not provisioned.
    let index = with_quotas(json!({ "applications": 2 }), &[]);
    let why = "Organization acme's quota applications is 2: with this Application it would use 3";
    assert_eq!(index.beyond_quota("acme", KindId::Application, "storefront").as_deref(), Some(why));
    assert_eq!(index.beyond_quota("acme", KindId::Application, "api"), None);
    let storefront: Application = sample("Application", "storefront", json!({}));
    let config = Config::default();
    let refused = objects(&storefront, &Inputs::offline(&index, &config)).expect_err("beyond");
    assert!(matches!(&refused, ProvisionError::QuotaExceeded(message) if message == why), "{refused:?}");
    let acme: Organization = sample("Organization", "acme", json!({ "spec": { "quotas": { "applications": 2 } } }));
    let usage = as_json(&acme.observe_others(&Inputs::offline(&index, &config)))["usage"].clone();
    assert_eq!(usage["applications"], 2, "{usage}");
    assert_eq!(usage["volumes"], 2, "{usage}");
    // Totals: pods times what each requests; one beyond uses nothing, so a later one may fit.
    let requests = [
        ("Application", "api", json!({ "spec": { "allocatedResources": { "cpu": "500m" } } })),
        ("Application", "postgres", json!({ "spec": { "allocatedResources": { "cpu": "2" } } })),
        ("Application", "storefront", json!({ "spec": { "allocatedResources": { "cpu": "100m" } } })),
    ];
    let index = with_quotas(json!({ "cpu": "1500m" }), &requests);
    let beyond = index.quotas("acme").beyond;
    assert_eq!(
        beyond.get(&(KindId::Application, "postgres".to_owned())).map(String::as_str),
        Some("Organization acme's quota cpu is 1500m: with this Application it would use 3")
    );
    assert!(!beyond.contains_key(&(KindId::Application, "storefront".to_owned())), "it fits beside api: {beyond:?}");
    assert!(beyond.contains_key(&(KindId::VM, "legacy-erp".to_owned())), "4 cores: {beyond:?}");
    // No quota, nothing held back.
    assert_eq!(with_quotas(json!({}), &requests).beyond_quota("acme", KindId::Application, "postgres"), None);
    // Its quotas held back postgres: a change of acme wakes it, with its workloads.
    let acme: Organization = sample("Organization", "acme", json!({ "spec": { "quotas": { "cpu": "1500m" } } }));
    assert!(acme.governed(&index).contains(&(KindId::Application, "postgres".to_owned(), "acme".to_owned())));
}

/// Usage is spelled one way whatever order its terms were added in (the order objects were
/// created in differs between two runs of the same platform).
#[test]
fn usage_is_spelled_the_same_whatever_the_order_of_its_terms() {
    use super::quota::{Amounts, Quotas, Resource};
    let parsed = |text: &str| {
        let quantity = kube_quantity::ParsedQuantity::try_from(text).expect("a quantity");
        quantity.to_bytes_f64().expect("a number")
    };
    let sum = |terms: &[&str]| {
        let total: f64 = terms.iter().map(|t| parsed(t)).sum();
        let amounts = Amounts::from([(Resource::Memory, total), (Resource::Cpu, total)]);
        let usage = Quotas::of(&amounts);
        (usage.memory, usage.cpu)
    };
    assert_eq!(sum(&["4G", "256Mi", "1Gi"]), sum(&["1Gi", "256Mi", "4G"]));
    assert_eq!(sum(&["4G", "256Mi", "1Gi"]).0.as_deref(), Some("5342177280"), "exact");
    assert_eq!(sum(&["1Gi", "1Gi"]).0.as_deref(), Some("2Gi"));
    assert_eq!(sum(&["500m", "1"]).1.as_deref(), Some("1500m"));
    assert_eq!(sum(&["500m", "1500m"]).1.as_deref(), Some("2"));
}

#[test]
fn an_archived_stack_keeps_its_records_and_runs_nothing() {
    let mut docs = platform();
    let shop = docs.iter_mut().find(|d| d["kind"] == "Stack" && d["metadata"]["name"] == "shop").expect("the stack");
    shop["spec"]["archived"] = true.into();
    let index = index(&docs);
    let stack: Stack = sample("Stack", "shop", json!({ "spec": { "archived": true } }));
    assert_eq!(as_json(&release::stack_status(&stack, &index))["phase"], "archived");
    let app: Application = sample("Application", "api", json!({}));
    let config = Config::default();
    assert_eq!(objects(&app, &Inputs::offline(&index, &config)).expect("built"), vec![], "no workload");
    assert_eq!(observed_application(&app, &index, json!({}), json!({}))["deploymentStatus"], "stopped");
    // Archiving or restoring it is what its applications wait for.
    let woken = stack.awaiting_status(&index);
    assert!(woken.contains(&(KindId::Application, "api".to_owned())), "{woken:?}");
}

/// Balancing and rate limits as an installation might configure them.
fn traffic_config() -> Config {
    let traffic_annotations = serde_json::from_value(json!({
        "least_conn": { "example.org/lb-method": "least_conn" },
        "rate_limit": { "example.org/rate": "{requestsPerSecond}r/s", "example.org/burst": "{burst}" },
    }))
    .expect("annotations");
    Config { ingress_class: Some("nginx".into()), traffic_annotations, ..Config::default() }
}

#[test]
fn http_gateway_is_an_http_route_with_tls_and_a_way_in() {
    let gateway: Gateway = sample("Gateway", "public", json!({}));
    let children = built(&gateway);
    assert_eq!(
        kinds(&children),
        [
            ("NetworkPolicy", "acme-production", "gateway-public"),
            ("Certificate", "acme-production", "public"),
            ("HTTPRoute", "acme-production", "public"),
        ]
    );
    let route = &children[2];
    assert_eq!(route["apiVersion"], "gateway.networking.k8s.io/v1");
    assert_eq!(route["spec"]["parentRefs"], json!([{ "name": "windflow", "namespace": "windflow-system" }]));
    assert_eq!(route["spec"]["hostnames"], json!(["shop.acme.example"]));
    assert_eq!(
        route["spec"]["rules"][0],
        json!({ "matches": [{ "path": { "type": "PathPrefix", "value": "/api" } }],
                "backendRefs": [{ "name": "api", "port": 8000 }] })
    );
    // No data plane's annotations unless configured.
    assert!(route["metadata"].get("annotations").is_none(), "{route}");
    assert_eq!(children[1]["spec"]["issuerRef"], json!({ "kind": "ClusterIssuer", "name": "letsencrypt" }));
    assert_eq!(
        children[0]["spec"]["ingress"][0]["ports"],
        json!([{ "protocol": "TCP", "port": 8000 }, { "protocol": "TCP", "port": 8080 }])
    );
}

#[test]
fn without_the_gateway_api_an_http_gateway_is_an_ingress_with_the_configured_annotations() {
    let gateway: Gateway = sample(
        "Gateway",
        "public",
        json!({ "spec": { "loadBalancingStrategy": "least_conn", "rateLimiting": true,
                          "rateLimitConfig": { "requestsPerSecond": 50, "burst": "5" } } }),
    );
    let children = build_on(&gateway, &traffic_config(), &[types::HTTP_ROUTE]).expect("children");
    assert_eq!(kinds(&children)[2], ("Ingress", "acme-production", "public"));
    let ingress = &children[2];
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "shop.acme.example");
    let paths = &ingress["spec"]["rules"][0]["http"]["paths"];
    assert_eq!(paths[0]["path"], "/api");
    assert_eq!(paths[0]["backend"]["service"], json!({ "name": "api", "port": { "number": 8000 } }));
    assert_eq!(paths[1]["backend"]["service"], json!({ "name": "storefront", "port": { "number": 8080 } }));
    assert_eq!(ingress["spec"]["tls"][0]["secretName"], "public-tls");
    assert_eq!(
        ingress["metadata"]["annotations"],
        json!({ "example.org/lb-method": "least_conn", "example.org/rate": "50r/s", "example.org/burst": "5" })
    );
}

#[test]
fn balancing_and_rate_limits_without_configured_annotations_are_refused() {
    let refused = |change: Value, config: &Config| {
        let gateway: Gateway = sample("Gateway", "public", change);
        build(&gateway, config).expect_err("refused").to_string()
    };
    assert_eq!(
        refused(json!({ "spec": { "loadBalancingStrategy": "ip_hash" } }), &traffic_config()),
        "spec.loadBalancingStrategy: ip_hash balancing needs the data plane's annotations for it: \
         set provisioning.trafficAnnotations.ip_hash in the chart (--traffic-annotations)"
    );
    assert!(
        refused(json!({ "spec": { "rateLimiting": true } }), &Config::default())
            .starts_with("spec.rateLimiting: rate limiting needs the data plane's annotations"),
    );
    assert_eq!(
        refused(json!({ "spec": { "rateLimiting": true, "rateLimitConfig": { "burst": 5 } } }), &traffic_config()),
        "spec.rateLimitConfig.requestsPerSecond: the configured rate-limit annotations use {requestsPerSecond}: set it"
    );
}

#[test]
fn tcp_gateway_is_a_gateway_api_route_and_bad_routes_are_named() {
    let gateway: Gateway = sample("Gateway", "public", json!({ "spec": { "gatewayType": "tcp", "autoSsl": false } }));
    let children = built(&gateway);
    assert_eq!(
        kinds(&children),
        [("NetworkPolicy", "acme-production", "gateway-public"), ("TCPRoute", "acme-production", "public")]
    );
    assert_eq!(children[1]["spec"]["parentRefs"], json!([{ "name": "windflow", "namespace": "windflow-system" }]));
    assert_eq!(children[1]["spec"]["rules"][0]["backendRefs"][1], json!({ "name": "storefront", "port": 8080 }));
    // The environment's default deny lets the routed traffic in, over the gateway's protocol.
    assert_eq!(children[0]["spec"]["ingress"][0]["ports"][1], json!({ "protocol": "TCP", "port": 8080 }));
    let udp: Gateway = sample("Gateway", "public", json!({ "spec": { "gatewayType": "udp", "autoSsl": false } }));
    let children = built(&udp);
    assert_eq!(children[0]["spec"]["ingress"][0]["ports"][0], json!({ "protocol": "UDP", "port": 8000 }));
    assert_eq!(children[1]["kind"], "UDPRoute");
    let stray: Gateway = sample(
        "Gateway",
        "public",
        json!({ "spec": { "gatewayConfig": { "host": "x.example", "routes": [{ "application": "billing" }] } } }),
    );
    assert_eq!(
        build(&stray, &Config::default()).expect_err("refused").to_string(),
        "spec.gatewayConfig.routes[0]: Application \"billing\" is not in Stack \"shop\""
    );
    let unrouted: Gateway =
        sample("Gateway", "public", json!({ "spec": { "gatewayConfig": { "host": "x.example", "routes": null } } }));
    assert!(build(&unrouted, &Config::default()).expect_err("refused").to_string().contains("has 3 applications"));
}

#[test]
fn domain_gets_a_wildcard_certificate_and_records_are_dns_endpoints() {
    let domain: Domain = sample("Domain", "acme-example", json!({}));
    let children = built(&domain);
    assert_eq!(kinds(&children), [("Certificate", "acme-production", "acme-example")]);
    assert_eq!(children[0]["spec"]["dnsNames"], json!(["acme.example", "*.acme.example"]));
    let plain: Domain = sample("Domain", "acme-example", json!({ "spec": { "autoSsl": false } }));
    assert!(built(&plain).is_empty());
    let record: DnsRecord = sample("DnsRecord", "www", json!({}));
    let children = built(&record);
    assert_eq!(kinds(&children), [("DNSEndpoint", "acme-production", "www")]);
    assert_eq!(
        children[0]["spec"]["endpoints"],
        json!([{ "dnsName": "www.acme.example", "recordType": "A", "targets": ["203.0.113.10"], "recordTTL": 3600 }])
    );
}

#[test]
fn policy_is_roles_and_bindings_in_the_organization_namespaces() {
    let policy: Policy = sample("Policy", "deployers", json!({}));
    let children = built(&policy);
    assert_eq!(
        kinds(&children),
        [
            ("Role", "acme-production", "policy-deployers-stack.deploy"),
            ("RoleBinding", "acme-production", "policy-deployers-stack.deploy"),
            ("Role", "acme", "policy-deployers-stack.view"),
            ("RoleBinding", "acme", "policy-deployers-stack.view"),
            ("Role", "acme-production", "policy-deployers-stack.view"),
            ("RoleBinding", "acme-production", "policy-deployers-stack.view"),
            ("Role", "acme-staging", "policy-deployers-stack.view"),
            ("RoleBinding", "acme-staging", "policy-deployers-stack.view"),
        ]
    );
    assert_eq!(
        children[0]["rules"],
        json!([{ "apiGroups": ["windflow.io"], "resources": ["deployments"], "verbs": ["get", "list", "create"] }])
    );
    // Bound to the Kubernetes usernames of alice and of the members of platform-team (alice,
    // bob), as the identity mapping gives them back: by name and by email.
    let subjects = |children: &[Value]| -> Vec<String> {
        let bound = children[1]["subjects"].as_array().expect("subjects");
        assert!(bound.iter().all(|s| s["kind"] == "User" && s["apiGroup"] == "rbac.authorization.k8s.io"), "{bound:?}");
        bound.iter().map(|s| s["name"].as_str().expect("a name").to_owned()).collect()
    };
    assert_eq!(subjects(&children), ["alice", "alice@acme.example", "bob", "bob@acme.example"]);
    let prefixed = Config {
        identities: crate::mirror::identity::Identities { prefix: Some("oidc:".into()), ..Default::default() },
        ..Config::default()
    };
    let children = build(&policy, &prefixed).expect("children");
    assert_eq!(subjects(&children)[0], "oidc:alice");
    // Only the Role in the policy's own namespace is owned; the others are found by label.
    assert!(children[0]["metadata"].get("ownerReferences").is_none());
    assert_eq!(children[2]["metadata"]["ownerReferences"][0]["name"], "deployers");
    let inactive: Policy = sample("Policy", "deployers", json!({ "spec": { "isActive": false } }));
    assert!(built(&inactive).is_empty());

    // A rule of an element binds where the element's environment is, only.
    let on_element = json!({ "spec": { "rules": [{ "function": "stack.view", "element": "k8s" }] } });
    let scoped: Policy = sample("Policy", "deployers", on_element);
    assert_eq!(
        kinds(&built(&scoped)),
        [
            ("Role", "acme-production", "policy-deployers-stack.view"),
            ("RoleBinding", "acme-production", "policy-deployers-stack.view")
        ]
    );
    let elsewhere =
        json!({ "spec": { "rules": [{ "function": "stack.view", "element": "k8s", "environment": "staging" }] } });
    let refused = build(&sample::<Policy>("Policy", "deployers", elsewhere), &Config::default()).expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "spec.rules[0].element: Element \"k8s\" is in environment \"production\", not \"staging\""
    );
}

/// Where admission records who wrote each object, a Policy's Roles are made only once it
/// recorded the Policy's author: admission checked that they may grant it all.
#[test]
fn a_policy_nobody_admitted_grants_nothing() {
    let recording = Config {
        rollouts: crate::provision::Rollouts { requesters_recorded: true, ..Default::default() },
        ..Config::default()
    };
    let unrecorded: Policy = sample("Policy", "deployers", json!({}));
    let refused = build(&unrecorded, &recording).expect_err("not made");
    assert!(
        matches!(&refused, ProvisionError::NotAuthorized(why) if why.starts_with("no record of who wrote this Policy")),
        "{refused}"
    );
    let record = crate::mirror::actor::Actor { username: "alice".into(), groups: vec![], login: Some("alice".into()) };
    let annotations =
        json!({ "metadata": { "annotations": { crate::mirror::actor::CHANGED_BY: record.to_annotation() } } });
    let admitted: Policy = sample("Policy", "deployers", annotations);
    assert_eq!(build(&admitted, &recording).expect("made").len(), 8);
}

#[test]
fn objects_outside_an_organization_or_without_their_parents_are_refused() {
    let stray: Volume = sample("Volume", "pgdata", json!({ "metadata": { "namespace": "elsewhere" } }));
    assert_eq!(build(&stray, &Config::default()), Err(ProvisionError::NoOrganization("elsewhere".into())));
    let orphan: Volume = sample("Volume", "pgdata", json!({ "spec": { "elementRef": { "name": "gone" } } }));
    assert_eq!(
        build(&orphan, &Config::default()).expect_err("refused").to_string(),
        "spec.elementRef: Element acme/gone does not exist"
    );
    let homeless: Application = sample("Application", "api", json!({ "spec": { "stackRef": { "name": "gone" } } }));
    assert_eq!(
        build(&homeless, &Config::default()).expect_err("refused").to_string(),
        "spec.stackRef: Stack acme/gone does not exist"
    );
    let record: DnsRecord = sample("DnsRecord", "www", json!({ "spec": { "domainRef": { "name": "gone" } } }));
    assert_eq!(
        build(&record, &Config::default()).expect_err("refused").to_string(),
        "spec.domainRef: Domain acme/gone does not exist"
    );
    // The chain is followed to its end: an element whose environment is gone.
    let mut docs = platform();
    docs.retain(|d| !(d["kind"] == "Environment" && d["metadata"]["name"] == "production"));
    let index = index(&docs);
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    let volume: Volume = sample("Volume", "pgdata", json!({}));
    assert_eq!(
        objects(&volume, &inputs).expect_err("refused").to_string(),
        "spec.elementRef → environmentRef: Environment acme/production does not exist"
    );
}

/// The children as the API server returns them applied, with `status`.
fn applied_with<K: Kind>(obj: &K, status: Value) -> Vec<DynamicObject> {
    let index = index(&platform());
    let children = objects(obj, &Inputs::offline(&index, &Config::default())).expect("children");
    children
        .into_iter()
        .map(|mut child| {
            child.data["status"] = status.clone();
            child
        })
        .collect()
}

fn observed_phase<K: Kind>(obj: &K, status: Value) -> Option<String> {
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    let observed = as_json(&Kind::observe(obj, &applied_with(obj, status), &inputs));
    observed.get("phase").and_then(Value::as_str).map(str::to_owned)
}

/// A status as the API server would hold it.
fn as_json(status: &impl serde::Serialize) -> Value {
    serde_json::to_value(status).expect("a status")
}

#[test]
fn status_follows_the_children() {
    // pgdata is mounted by the postgres application; no application mounts a spare volume.
    let pgdata: Volume = sample("Volume", "pgdata", json!({}));
    let spare: Volume = sample("Volume", "pgdata", json!({ "metadata": { "name": "spare" } }));
    assert_eq!(observed_phase(&pgdata, json!({ "phase": "Bound" })).as_deref(), Some("bound"));
    assert_eq!(observed_phase(&spare, json!({ "phase": "Bound" })).as_deref(), Some("available"));
    assert_eq!(observed_phase(&spare, json!({ "phase": "Pending" })).as_deref(), Some("creating"));
    assert_eq!(observed_phase(&spare, json!({ "phase": "Lost" })).as_deref(), Some("error"));

    let vm: VM = sample("VM", "legacy-erp", json!({}));
    for (printable, phase) in [
        ("Provisioning", "creating"),
        ("Starting", "starting"),
        ("Running", "running"),
        ("Stopping", "stopping"),
        ("Stopped", "stopped"),
        ("ErrorUnschedulable", "error"),
    ] {
        assert_eq!(observed_phase(&vm, json!({ "printableStatus": printable })).as_deref(), Some(phase));
    }
    assert_eq!(observed_phase(&vm, json!({})).as_deref(), Some("creating"), "no status yet");

    let cluster: ContainerCluster = sample("ContainerCluster", "main", json!({}));
    assert_eq!(observed_phase(&cluster, json!({ "phase": "Provisioned" })).as_deref(), Some("healthy"));
    assert_eq!(observed_phase(&cluster, json!({ "phase": "Provisioning" })).as_deref(), Some("initializing"));
    assert_eq!(observed_phase(&cluster, json!({ "phase": "Failed" })).as_deref(), Some("unhealthy"));
    // Cluster API's v1beta2 counts and endpoint are read back.
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    let mut applied = applied_with(
        &cluster,
        json!({ "phase": "Provisioned",
        "controlPlane": { "replicas": 3 }, "workers": { "replicas": 2 } }),
    );
    applied[0].data["spec"]["controlPlaneEndpoint"] = json!({ "host": "10.0.0.10", "port": 6443 });
    let observed = as_json(&Kind::observe(&cluster, &applied, &inputs));
    assert_eq!(
        (observed["nodeCount"].as_i64(), observed["controlPlaneEndpoint"].as_str()),
        (Some(5), Some("https://10.0.0.10:6443"))
    );

    let network: Network = sample("Network", "backend", json!({}));
    assert_eq!(observed_phase(&network, json!({})).as_deref(), Some("active"));
    // Kinds with no seed phase to follow report nothing.
    let environment: Environment = sample("Environment", "staging", json!({}));
    assert_eq!(observed_phase(&environment, json!({})), None);
}

#[test]
fn a_cluster_api_cluster_is_reached_once_provisioned_whatever_its_own_reconcile_last_said() {
    let ready = |status: &str, reason: &str| {
        json!([{ "type": "Ready", "status": status, "reason": reason, "message": "",
                 "lastTransitionTime": "2026-12-06T00:00:00Z" }])
    };
    let reached = |status: Value| {
        let cluster: ContainerCluster = sample("ContainerCluster", "main", json!({ "status": status }));
        cluster.credentials().map(|credentials| (credentials.namespace, credentials.secret))
    };
    let placed = json!({ "cluster": "(management)", "namespace": "acme-production" });
    let kubeconfig = Ok(("acme-production".to_owned(), "main-kubeconfig".to_owned()));
    let unprovisioned = Err("ContainerCluster acme/main is not provisioned yet".to_owned());
    let provisioned = |conditions: Value| json!({ "phase": "healthy", "placement": placed, "conditions": conditions });
    assert_eq!(reached(provisioned(ready("True", "Provisioned"))), kubeconfig);
    // The database away while the cluster stands: still reached, so that what is deleted from
    // it releases its children there. So too once its Element is gone: where its Cluster
    // stands is read from its status, not from its placement now.
    assert_eq!(reached(provisioned(ready("False", "DatabaseUnavailable"))), kubeconfig);
    assert_eq!(reached(provisioned(ready("False", "InvalidSpec"))), kubeconfig);
    let provisioning =
        json!({ "phase": "initializing", "placement": placed, "conditions": ready("False", "Progressing") });
    assert_eq!(reached(provisioning), unprovisioned);
    assert_eq!(reached(json!({ "phase": "unhealthy", "placement": placed })), unprovisioned);
    assert_eq!(reached(json!({})), unprovisioned);
}

/// Why `obj` does not work yet, its children showing `status`.
fn not_working<K: Kind>(obj: &K, status: Value) -> Option<String> {
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    obj.not_working(&applied_with(obj, status), &inputs)
}

fn condition(type_: &str, status: &str) -> Value {
    json!({ "conditions": [{ "type": type_, "status": status, "message": "as the child says" }] })
}

#[test]
fn ready_means_the_children_work_not_that_they_were_applied() {
    let volume: Volume = sample("Volume", "pgdata", json!({}));
    assert_eq!(not_working(&volume, json!({ "phase": "Bound" })), None);
    let pending = not_working(&volume, json!({ "phase": "Pending" })).expect("a Pending claim");
    assert!(pending.contains("claim pgdata is Pending") && pending.contains("WaitForFirstConsumer"), "{pending}");
    assert!(not_working(&volume, json!({})).is_some(), "no status yet");

    let app: Application = sample("Application", "storefront", json!({}));
    assert_eq!(not_working(&app, condition("Available", "True")), None);
    let unavailable = not_working(&app, condition("Available", "False")).expect("not Available");
    assert!(unavailable.contains("Deployment acme-production/storefront is not Available yet"), "{unavailable}");
    assert!(unavailable.ends_with("as the child says"), "{unavailable}");
    assert!(not_working(&app, json!({})).expect("no status").contains("not reported yet"));

    let vm: VM = sample("VM", "legacy-erp", json!({}));
    assert_eq!(not_working(&vm, condition("Ready", "True")), None);
    assert!(not_working(&vm, condition("Ready", "False")).is_some());
    let stopped: VM = sample("VM", "legacy-erp", json!({ "spec": { "vmConfig": { "powerState": "stopped" } } }));
    assert_eq!(not_working(&stopped, json!({})), None, "a machine asked to stay stopped works stopped");

    let cluster: ContainerCluster = sample("ContainerCluster", "main", json!({}));
    assert_eq!(not_working(&cluster, condition("Available", "True")), None);
    assert!(not_working(&cluster, condition("Available", "False")).is_some());

    let domain: Domain = sample("Domain", "acme-example", json!({}));
    assert_eq!(not_working(&domain, condition("Ready", "True")), None);
    assert!(not_working(&domain, condition("Ready", "False")).expect("no certificate").contains("Certificate"));

    // Kinds whose children work once applied.
    let network: Network = sample("Network", "backend", json!({}));
    assert_eq!(not_working(&network, json!({})), None);
}

fn node(name: &str, ready: bool, role: crate::provision::probe::NodeRole) -> probe::NodeReport {
    probe::NodeReport {
        name: name.into(),
        address: Some("10.0.0.5".into()),
        role,
        ready,
        heartbeat: Some("2026-12-03T09:58:00Z".into()),
        cpu_cores: Some(4),
        memory_gb: Some(8.0),
        details: Map::new(),
    }
}

#[test]
fn an_existing_cluster_reports_its_nodes_as_container_nodes_and_its_health() {
    use crate::provision::probe::NodeRole;
    let swarm: ContainerCluster = sample(
        "ContainerCluster",
        "main",
        json!({ "spec": { "clusterMode": "swarm", "clusterConfig": null,
                          "endpoint": { "url": "https://10.0.0.5:2376", "tlsSecret": "engine-tls" } } }),
    );
    assert_eq!(
        Kind::probe_target(&swarm),
        Some(Ok(probe::ProbeTarget::Engine {
            url: "https://10.0.0.5:2376".into(),
            swarm: true,
            tls: Some(("acme".into(), "engine-tls".into())),
        }))
    );
    let report = probe::ClusterReport {
        version: "Docker 27.3.1".into(),
        nodes: vec![node("Manager_1", true, NodeRole::Manager), node("worker-1", false, NodeRole::Worker)],
        more_nodes: false,
    };
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs { report: Some(&report), ..Inputs::offline(&index, &config) };
    let children = objects(&swarm, &inputs).expect("nodes");
    let nodes: Vec<Value> = children.iter().map(|c| serde_json::to_value(c).expect("json")).collect();
    assert_eq!(
        kinds(&nodes),
        [("ContainerNode", "acme", "main-manager-1"), ("ContainerNode", "acme", "main-worker-1")]
    );
    assert_eq!(nodes[0]["spec"]["clusterRef"]["name"], "main");
    assert_eq!(nodes[0]["spec"]["nodeRole"], "manager");
    assert_eq!(nodes[0]["spec"]["ipAddress"], "10.0.0.5");
    assert_eq!(nodes[0]["status"]["phase"], "ready");
    assert_eq!(nodes[1]["status"]["phase"], "not_ready");
    // The heartbeat the cluster reports, for `container_nodes.last_heartbeat`.
    assert_eq!(nodes[0]["status"]["lastHeartbeat"], "2026-12-03T09:58:00Z");
    // Same namespace as the cluster: owned by it, so deleted with it by the garbage collector too.
    assert_eq!(nodes[0]["metadata"]["ownerReferences"][0]["kind"], "ContainerCluster");
    let observed = as_json(&Kind::observe(&swarm, &children, &inputs));
    assert_eq!((observed["phase"].as_str(), observed["nodeCount"].as_u64()), (Some("degraded"), Some(2)));

    let all_down = probe::ClusterReport { nodes: vec![node("a", false, NodeRole::Worker)], ..report.clone() };
    let inputs = Inputs { report: Some(&all_down), ..inputs };
    assert_eq!(as_json(&Kind::observe(&swarm, &[], &inputs))["phase"], "unhealthy");
    // A cluster with more nodes than a health check reports says so, however healthy.
    let capped =
        probe::ClusterReport { nodes: vec![node("a", true, NodeRole::Worker)], more_nodes: true, ..report.clone() };
    let inputs = Inputs { report: Some(&capped), ..inputs };
    let capped = Kind::not_working(&swarm, &[], &inputs).expect("not working as a whole");
    assert!(capped.starts_with("the cluster has more than 1 nodes"), "{capped}");

    let no_url: ContainerCluster =
        sample("ContainerCluster", "main", json!({ "spec": { "clusterMode": "docker", "clusterConfig": null } }));
    let refused = Kind::probe_target(&no_url).expect("a target").expect_err("no url");
    assert!(refused.to_string().starts_with("spec.endpoint.url:"), "{refused}");
    let existing: ContainerCluster =
        sample("ContainerCluster", "main", json!({ "spec": { "clusterConfig": { "kubeconfigSecret": "edge" } } }));
    assert_eq!(
        Kind::probe_target(&existing),
        Some(Ok(probe::ProbeTarget::Kubeconfig { namespace: "acme".into(), secret: "edge".into() }))
    );
    let capi: ContainerCluster = sample("ContainerCluster", "main", json!({}));
    assert_eq!(Kind::probe_target(&capi), None);
}

#[test]
fn the_objects_waiting_for_a_row_are_found_in_their_namespace() {
    let mut docs: Vec<Value> = platform().iter().map(as_mirrored).collect();
    let waiting = |reason: &str| {
        json!({ "conditions": [{ "type": "Synced", "status": "False", "reason": reason, "message": "",
                                 "lastTransitionTime": "2026-12-04T10:00:00Z" }] })
    };
    for doc in &mut docs {
        match (doc["kind"].as_str(), doc["metadata"]["name"].as_str()) {
            (Some("Volume"), Some("pgdata")) => doc["status"] = waiting("WaitingForDependency"),
            (Some("Network"), Some("backend")) => doc["status"] = waiting("InvalidSpec"),
            // Early: arrived before what it references, it has reported nothing yet.
            (Some("Volume"), Some("uploads")) => doc["status"] = Value::Null,
            _ => {}
        }
    }
    let index = Index::from_documents(&docs);
    let sorted = |mut found: Vec<(KindId, String, Option<String>)>| {
        found.sort_by(|a, b| a.1.cmp(&b.1));
        found
    };
    let volume = |name: &str| (KindId::Volume, name.to_owned(), Some("acme".to_owned()));
    let expected = [volume("pgdata"), volume("uploads")];
    assert_eq!(
        sorted(index.waiting(Some("acme"))),
        expected,
        "an invalid spec waits for users, not for a row; a mirrored object waits for nothing"
    );
    assert_eq!(sorted(index.waiting(None)), expected);
    assert_eq!(index.waiting(Some("globex")), []);
}

#[test]
fn the_policies_beside_an_environment_follow_it() {
    let index = index(&platform());
    let production: Environment = sample("Environment", "production", json!({}));
    assert_eq!(Kind::followers(&production, &index), [(KindId::Policy, "deployers".to_owned())]);
}

#[test]
fn what_is_placed_on_a_workload_cluster_follows_it_and_a_swarm_hosts_nothing() {
    let index = index(&platform());
    let main: ContainerCluster = sample("ContainerCluster", "main", json!({}));
    let followers: std::collections::BTreeSet<(KindId, String)> = Kind::followers(&main, &index).into_iter().collect();
    let placed: std::collections::BTreeSet<(KindId, String)> = index
        .placed_on(&Destination::Workload { namespace: "acme".into(), name: "main".into() })
        .into_iter()
        .map(|(kind, name, _)| (kind, name))
        .collect();
    assert!(followers.contains(&(KindId::Environment, "production".to_owned())), "{followers:?}");
    assert!(followers.contains(&(KindId::Application, "storefront".to_owned())), "{followers:?}");
    assert_eq!(followers, placed);
    let swarm: ContainerCluster = sample(
        "ContainerCluster",
        "main",
        json!({ "spec": { "clusterMode": "swarm", "endpoint": { "url": "http://x:2375" } } }),
    );
    assert_eq!(Kind::followers(&swarm, &index), []);
}

#[test]
fn a_heartbeat_is_written_once_it_is_an_interval_newer_or_the_readiness_changes() {
    use crate::provision::probe::NodeRole;
    let swarm: ContainerCluster = sample(
        "ContainerCluster",
        "main",
        json!({ "spec": { "clusterMode": "swarm", "clusterConfig": null, "endpoint": { "url": "https://10.0.0.5:2376" } } }),
    );
    let held = |phase: &str| {
        json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "ContainerNode",
                "metadata": { "name": "main-worker-1", "namespace": "acme" },
                "spec": { "clusterRef": { "name": "main" }, "hostname": "worker-1", "nodeRole": "worker" },
                "status": { "phase": phase, "lastHeartbeat": "2026-12-03T09:55:00Z" } })
    };
    let config = Config { heartbeat_interval: std::time::Duration::from_secs(300), ..Config::default() };
    let heartbeat_written = |phase: &str, reported: &str, ready: bool| {
        let mut docs = platform();
        docs.push(held(phase));
        let index = index(&docs);
        let report = probe::ClusterReport {
            version: "Docker 27.3.1".into(),
            nodes: vec![probe::NodeReport {
                heartbeat: Some(reported.into()),
                ..node("worker-1", ready, NodeRole::Worker)
            }],
            more_nodes: false,
        };
        let inputs = Inputs { report: Some(&report), ..Inputs::offline(&index, &config) };
        let children = objects(&swarm, &inputs).expect("nodes");
        serde_json::to_value(&children[0]).expect("json")["status"]["lastHeartbeat"].as_str().map(str::to_owned)
    };
    let kept = Some("2026-12-03T09:55:00Z".to_owned());
    assert_eq!(heartbeat_written("ready", "2026-12-03T09:59:59Z", true), kept, "less than an interval newer");
    assert_eq!(heartbeat_written("ready", "2026-12-03T10:00:00Z", true).as_deref(), Some("2026-12-03T10:00:00Z"));
    assert_eq!(
        heartbeat_written("ready", "2026-12-03T09:56:00Z", false).as_deref(),
        Some("2026-12-03T09:56:00Z"),
        "the readiness changed"
    );
}

/// The sample platform with the Deployment `rollout` of stack shop (strategy, status) added, and
/// the children of Application `api` in it.
fn api_during(strategy: &str, status: Value) -> (Vec<Value>, Value) {
    let mut docs = platform();
    docs.push(json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
        "metadata": { "name": "rollout", "namespace": "acme" },
        "spec": { "stackRef": { "name": "shop" }, "deploymentType": strategy, "triggeredBy": "alice",
                  "deploymentConfig": { "maxSurge": 1, "maxUnavailable": 0, "canaryWeight": 25 } },
        "status": status,
    }));
    let index = index(&docs);
    let app: Application = sample("Application", "api", json!({}));
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    let children = objects(&app, &inputs).expect("children");
    let children = children.into_iter().map(|c| serde_json::to_value(c).expect("json")).collect();
    (children, as_json(&Kind::observe(&app, &[], &inputs)))
}

fn rolling_out(stage: &str) -> Value {
    json!({ "phase": "running", "applications": [{ "name": "api", "revision": "new000000000", "stage": stage,
        "since": "2026-11-25T10:00:00Z", "config": { "image": "ghcr.io/acme/shop-api:3.0.0", "replicas": 4, "ports": [8000] } }] })
}

fn revision_of(child: &Value) -> &Value {
    &child["spec"]["template"]["metadata"]["labels"][release::REVISION_LABEL]
}

#[test]
fn without_a_rollout_the_workload_runs_its_own_configuration_under_its_revision() {
    let (children, observed) = api_during("rolling", json!({ "phase": "failed" }));
    let app: Application = sample("Application", "api", json!({}));
    assert_eq!(revision_of(&children[0]), &json!(release::revision(&app.spec.deployment_config)));
    assert_eq!(children[0]["spec"]["strategy"], Value::Null);
    assert_eq!(observed["deploymentStatus"], "pending");
    // The same configuration, whatever the order of its keys, has the same revision.
    let reordered: crate::free_form::FreeForm =
        serde_json::from_value(json!({ "replicas": 2, "image": "x", "env": { "B": "1", "A": "2" } })).expect("config");
    let ordered: crate::free_form::FreeForm =
        serde_json::from_value(json!({ "env": { "A": "2", "B": "1" }, "image": "x", "replicas": 2 })).expect("config");
    assert_eq!(release::revision(&reordered), release::revision(&ordered));
    assert_eq!(release::revision(&ordered).len(), 12);
}

#[test]
fn a_rolling_rollout_rolls_the_workload_with_the_deployments_surge_and_deadline() {
    let (children, observed) = api_during("rolling", rolling_out("Progressing"));
    assert_eq!(kinds(&children), [("Deployment", "acme-production", "api"), ("Service", "acme-production", "api")]);
    let workload = &children[0]["spec"];
    assert_eq!(revision_of(&children[0]), "new000000000");
    assert_eq!(workload["replicas"], 4);
    assert_eq!(
        workload["strategy"],
        json!({ "type": "RollingUpdate", "rollingUpdate": { "maxSurge": 1, "maxUnavailable": 0 } })
    );
    assert_eq!(workload["progressDeadlineSeconds"], 600);
    assert_eq!(workload["template"]["spec"]["containers"][0]["image"], "ghcr.io/acme/shop-api:3.0.0");
    assert_eq!(observed["deploymentStatus"], "deploying");
}

#[test]
fn blue_green_previews_beside_the_live_workload_then_switches_the_service() {
    let (preview, _) = api_during("blue_green", rolling_out("Preview"));
    assert_eq!(
        kinds(&preview),
        [
            ("Deployment", "acme-production", "api"),
            ("Deployment", "acme-production", "api-preview"),
            ("Service", "acme-production", "api")
        ]
    );
    let live = revision_of(&preview[0]).clone();
    assert_ne!(live, "new000000000");
    assert_eq!(revision_of(&preview[1]), "new000000000");
    assert_eq!(preview[1]["spec"]["replicas"], 4);
    assert_eq!(preview[1]["spec"]["selector"]["matchLabels"][labels::WORKLOAD], "api-preview");
    assert_eq!(preview[2]["spec"]["selector"], json!({ labels::APPLICATION: "api", release::REVISION_LABEL: live }));

    let (switched, _) = api_during("blue_green", rolling_out("Switched"));
    assert_eq!(revision_of(&switched[0]), "new000000000");
    assert_eq!(switched[2]["spec"]["selector"][release::REVISION_LABEL], "new000000000");
    // Once done, the preview goes (pruned) and the Service selects every pod again.
    let (done, _) = api_during("blue_green", rolling_out("Done"));
    assert_eq!(kinds(&done).len(), 2);
    assert_eq!(done[1]["spec"]["selector"], json!({ labels::APPLICATION: "api" }));
}

#[test]
fn a_canary_takes_its_share_of_the_replicas_then_is_promoted() {
    let (canary, _) = api_during("canary", rolling_out("Canary"));
    assert_eq!(canary[1]["metadata"]["name"], "api-canary");
    // 25 % of 4 replicas: 1 canary, 3 of the live revision; the Service serves both.
    assert_eq!((canary[0]["spec"]["replicas"].clone(), canary[1]["spec"]["replicas"].clone()), (json!(3), json!(1)));
    assert_ne!(revision_of(&canary[0]), "new000000000");
    assert_eq!(canary[2]["spec"]["selector"], json!({ labels::APPLICATION: "api" }));
    let (promoting, _) = api_during("canary", rolling_out("Promoting"));
    assert_eq!(revision_of(&promoting[0]), "new000000000");
    assert_eq!(promoting[0]["spec"]["replicas"], 4);
}

#[test]
fn a_completed_rollout_is_the_release_the_application_keeps_and_a_failed_one_is_reported() {
    let mut completed = rolling_out("Done");
    completed["phase"] = "completed".into();
    completed["completedAt"] = "2026-11-25T10:05:00Z".into();
    let (children, observed) = api_during("rolling", completed);
    assert_eq!(revision_of(&children[0]), "new000000000");
    assert_eq!(children[0]["spec"]["strategy"], Value::Null);
    assert_eq!(observed["deploymentStatus"], "deployed");
    assert_eq!(observed["release"]["deployment"], "rollout");
    assert_eq!(observed["release"]["deployedAt"], "2026-11-25T10:05:00Z");

    let mut failed = rolling_out("Failed");
    failed["phase"] = "failed".into();
    failed["completedAt"] = "2026-11-25T10:05:00Z".into();
    let (children, observed) = api_during("rolling", failed);
    assert_ne!(revision_of(&children[0]), "new000000000");
    assert_eq!(observed["deploymentStatus"], "failed");
}

#[test]
fn rollout_settings_are_checked() {
    let parse = |config: Value| release::Settings::parse(&serde_json::from_value(config).expect("config"));
    let defaults = parse(json!({})).expect("defaults");
    assert_eq!((defaults.canary_weight, defaults.analysis.as_secs(), defaults.auto_promote), (20, 60, true));
    assert_eq!(defaults.max_surge, IntOrString::String("25%".into()));
    assert_eq!(
        parse(json!({ "maxSurge": "50%", "maxUnavailable": 1 })).expect("valid").max_unavailable,
        IntOrString::Int(1)
    );
    for (bad, message) in [
        (json!({ "canaryWeight": 0 }), "spec.deploymentConfig.canaryWeight: 0 is not a whole number in 1..=99"),
        (json!({ "maxSurge": "lots" }), "spec.deploymentConfig.maxSurge: \"lots\" is neither a count nor a percentage"),
        (json!({ "autoPromote": "yes" }), "spec.deploymentConfig.autoPromote: \"yes\" is not true or false"),
    ] {
        assert_eq!(parse(bad).expect_err("refused").to_string(), message);
    }
}

fn stack_with(apps: &[(&str, &str, i64)], deployments: &[(&str, Value)]) -> Value {
    let (stack, index) = stack_among(apps, deployments);
    as_json(&release::stack_status(&stack, &index))
}

/// The sample Stack, and an index holding it with these applications (name, Ready reason,
/// observed generation) and rollouts (name, status).
fn stack_among(apps: &[(&str, &str, i64)], deployments: &[(&str, Value)]) -> (Stack, Index) {
    let mut docs: Vec<Value> = platform().into_iter().filter(|d| d["kind"] != "Application").collect();
    for (name, ready_reason, generation) in apps {
        let ready = if *ready_reason == "Provisioned" { "True" } else { "False" };
        docs.push(json!({
            "apiVersion": "windflow.io/v1alpha1", "kind": "Application",
            "metadata": { "name": name, "namespace": "acme", "generation": 2 },
            "spec": { "stackRef": { "name": "shop" }, "applicationType": "container" },
            "status": { "observedGeneration": generation, "conditions": [{ "type": "Ready", "status": ready,
                "reason": ready_reason, "message": "", "lastTransitionTime": "2026-11-25T10:00:00Z" }] },
        }));
    }
    for (name, status) in deployments {
        docs.push(json!({
            "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": "acme" },
            "spec": { "stackRef": { "name": "shop" }, "triggeredBy": "alice" }, "status": status,
        }));
    }
    let stack: Stack = sample("Stack", "shop", json!({}));
    (stack, index(&docs))
}

/// A stack's phase is what its rollouts not started yet wait for: they are woken when it
/// changes, the running and the finished ones are not.
#[test]
fn a_stacks_phase_wakes_its_rollouts_not_started() {
    let (stack, index) = stack_among(
        &[("web", "Provisioned", 2)],
        &[
            ("queued", json!({ "phase": "pending" })),
            ("running", json!({ "phase": "running" })),
            ("done", json!({ "phase": "completed" })),
        ],
    );
    let woken: Vec<String> = stack.awaiting_status(&index).into_iter().map(|(_, name)| name).collect();
    assert!(woken.contains(&"queued".to_owned()), "{woken:?}");
    assert!(!woken.iter().any(|name| name == "running" || name == "done"), "{woken:?}");
    let other: Stack = sample("Stack", "shop", json!({ "metadata": { "name": "other" } }));
    assert_eq!(other.awaiting_status(&index), vec![], "another stack's rollouts");
}

#[test]
fn the_stack_phase_follows_its_applications_and_rollouts() {
    let ready = ("web", "Provisioned", 2);
    let done = json!({ "phase": "completed", "completedAt": "2026-11-25T10:05:00Z" });
    let running = ("one", json!({ "phase": "running" }));
    let failed = ("one", json!({ "phase": "failed", "completedAt": "2026-11-25T10:05:00Z" }));
    // The phase, and what the stack's Ready says: work under way, or an application's fault.
    let progressing = |why: &str| Some(Gathered::Pending(why.to_owned()));
    let api_broken = Some(Gathered::Broken("Application api needs users to act (its Ready condition says why)".into()));
    for (apps, deployments, phase, unready) in [
        (vec![], vec![], "draft", None),
        (vec![ready, ("api", "Provisioned", 1)], vec![], "validating", progressing("Application api is not Ready yet")),
        (
            vec![ready, ("api", "WaitingForDependency", 2)],
            vec![],
            "validating",
            progressing("Application api is not Ready yet"),
        ),
        (vec![ready, ("api", "InvalidSpec", 2)], vec![], "error", api_broken.clone()),
        (vec![ready, ("api", "InvalidSpec", 2)], vec![running.clone()], "deploying", api_broken),
        (vec![ready], vec![], "ready", None),
        // A rollout replaces what runs while it serves: the stack stays Ready.
        (vec![ready], vec![running], "deploying", None),
        (vec![ready], vec![("one", done.clone())], "deployed", None),
        (vec![ready], vec![failed], "ready", None),
    ] {
        let (stack, index) = stack_among(&apps, &deployments);
        let status = as_json(&release::stack_status(&stack, &index));
        assert_eq!(status["phase"], phase, "{apps:?} {deployments:?}");
        let config = Config::default();
        assert_eq!(stack.gathered(&Inputs::offline(&index, &config)), unready, "{apps:?} {deployments:?}");
    }
    assert_eq!(stack_with(&[ready], &[("one", done)])["lastDeployedAt"], "2026-11-25T10:05:00Z");
}

/// A failed rollout is its stack's latest word until a newer one completes; that one turning
/// Ready wakes it.
#[test]
fn a_failure_is_history_once_a_newer_rollout_of_the_stack_completed() {
    let failed = json!({ "phase": "failed", "completedAt": "2026-11-25T10:05:00Z" });
    let superseded = |deployments: &[(&str, Value)]| {
        let (_, index) = stack_among(&[("web", "Provisioned", 2)], deployments);
        let failure = index.get::<Deployment>(Some("acme"), "broken").expect("the failed rollout");
        let woken: Vec<String> = (index.all::<Deployment>(Some("acme")).iter())
            .flat_map(|rollout| rollout.followers(&index))
            .map(|(_, name)| name)
            .collect();
        (release::superseded_by(&failure, &index), woken)
    };
    assert_eq!(superseded(&[("broken", failed.clone())]), (None, vec![]), "the latest word");
    let earlier = json!({ "phase": "completed", "completedAt": "2026-11-25T10:00:00Z" });
    assert_eq!(superseded(&[("broken", failed.clone()), ("before", earlier)]), (None, vec![]));
    let later = json!({ "phase": "completed", "completedAt": "2026-11-25T10:10:00Z" });
    let fixed = [("broken", failed.clone()), ("fixed", later.clone())];
    assert_eq!(superseded(&fixed), (Some("fixed".into()), vec!["broken".to_owned()]));
    // Once said, it is not woken again.
    let mut said = failed;
    said["supersededBy"] = "fixed".into();
    assert_eq!(superseded(&[("broken", said), ("fixed", later)]).1, Vec::<String>::new());
}

/// `create_deployment`'s rule: only a ready or deployed stack takes a rollout, and a draft or
/// validating one is still coming up.
#[test]
fn a_rollout_weighs_the_stack_phase_as_create_deployment_does() {
    use crate::deploy::Readiness::{ComingUp, Deployable, NotDeployable};
    for (phase, readiness) in [
        (StackPhase::Draft, ComingUp),
        (StackPhase::Validating, ComingUp),
        (StackPhase::Ready, Deployable),
        (StackPhase::Deploying, NotDeployable),
        (StackPhase::Deployed, Deployable),
        (StackPhase::Error, NotDeployable),
        (StackPhase::Archived, NotDeployable),
    ] {
        let state = phase.for_rollout();
        assert_eq!((state.phase, state.readiness), (phase.into(), readiness), "{phase}");
    }
}

/// An element with nothing on it says so (the reconcile weighs that by the element's age); one
/// with objects on it follows them.
#[test]
fn an_element_gathers_what_stands_on_it() {
    let index = index(&platform());
    let config = Config::default();
    let inputs = Inputs::offline(&index, &config);
    let spare: Element = sample("Element", "storage", json!({ "metadata": { "name": "spare" } }));
    assert_eq!(spare.gathered(&inputs), Some(Gathered::Nothing("nothing stands on it yet".to_owned())));
    let storage: Element = sample("Element", "storage", json!({}));
    let gathered = storage.gathered(&inputs);
    assert!(matches!(&gathered, Some(Gathered::Pending(why)) if why.contains("is not Ready yet")), "{gathered:?}");
}
