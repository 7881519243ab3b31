//! The CRDs: generated files match the binary, and the schemas and CEL rules the API server
//! enforces accept the sample platform and refuse bad input with a clear message.

mod support;

use serde_json::Value;
use windflow::validate::Schemas;

/// Sets the JSON value `value` at `pointer`, creating the last key if needed.
fn set(doc: &mut Value, pointer: &str, value: &str) {
    let value: Value = serde_json::from_str(value).expect("json value");
    match doc.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            doc.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent").insert(key.to_owned(), value);
        }
    }
}

#[test]
fn crds_directory_matches_what_the_binary_generates() {
    for crd in windflow::api::crds() {
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
    assert_eq!(files, windflow::api::crds().len(), "one file per kind, no stale files");
}

#[test]
fn every_kind_is_in_the_windflow_category_with_status_and_printer_columns() {
    let crds = windflow::api::crds();
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

/// (kind, name in examples/, JSON pointer, bad value, what the message says)
const BAD_SPECS: &[(&str, &str, &str, &str, &str)] = &[
    // rollout settings of deploymentConfig
    (
        "Deployment",
        "shop-1-4-2",
        "/spec/deploymentConfig",
        r#"{"canaryWeight": 150}"#,
        "canaryWeight is a whole number from 1 to 99",
    ),
    ("Deployment", "shop-1-4-2", "/spec/deploymentConfig", r#"{"autoPromote": "yes"}"#, "autoPromote is true or false"),
    // users_username_check, users_email_check and the VARCHAR limits of users
    ("User", "alice", "/metadata/name", r#""al""#, "3 to 50 characters"),
    ("User", "alice", "/spec/email", r#""not-an-email""#, "does not match"),
    // org_name_check, user_org_role_check
    ("Organization", "acme", "/metadata/name", r#""a""#, "2 to 100 characters"),
    ("Organization", "acme", "/spec/members/0/role", r#""superuser""#, "is not one of"),
    ("Organization", "acme", "/spec/members/1/user", r#""alice""#, "a user is listed once"),
    // env_type_check, element_type_check
    ("Environment", "production", "/spec/environmentType", r#""prod""#, "is not one of"),
    ("Element", "k8s", "/spec/elementType", r#""router""#, "is not one of"),
    // app_type_check
    ("Application", "storefront", "/spec/applicationType", r#""lambda""#, "is not one of"),
    ("Application", "storefront", "/spec/volumes/0/mountPath", r#""relative/path""#, "does not match"),
    // cluster_mode_check, node_role_check, VARCHAR(20) version
    ("ContainerCluster", "main", "/spec/clusterMode", r#""nomad""#, "is not one of"),
    ("ContainerCluster", "main", "/spec/version", r#""1.33.0-very-long-build-tag""#, "longer than 20"),
    ("ContainerNode", "node-1", "/spec/nodeRole", r#""boss""#, "is not one of"),
    ("ContainerNode", "node-1", "/spec/ipAddress", r#""10.0.0.300""#, "must be an IP address"),
    ("ContainerNode", "node-1", "/spec/memoryGb", "10000", "maximum"),
    // vm_os_type_check
    ("VM", "legacy-erp", "/spec/osType", r#""plan9""#, "is not one of"),
    ("VM", "legacy-erp", "/spec/cpuCores", "0", "minimum"),
    // network_type_check, and the gateway inside the subnet
    ("Network", "backend", "/spec/networkType", r#""vxlan""#, "is not one of"),
    ("Network", "backend", "/spec/gateway", r#""10.99.0.1""#, "gateway must be an address inside subnet"),
    ("Network", "backend", "/spec/subnet", r#""10.20.0.0""#, "subnet must be a CIDR"),
    // gateway_type_check, lb_strategy_check
    ("Gateway", "public", "/spec/gatewayType", r#""grpc""#, "is not one of"),
    ("Gateway", "public", "/spec/loadBalancingStrategy", r#""random""#, "is not one of"),
    // volume_type_check, access_mode_check
    ("Volume", "pgdata", "/spec/volumeType", r#""floppy""#, "is not one of"),
    ("Volume", "pgdata", "/spec/accessMode", r#""rwx""#, "is not one of"),
    ("Volume", "pgdata", "/spec/shared", "true", "a shared volume needs"),
    ("Volume", "pgdata", "/spec/sizeGb", "0", "minimum"),
    // domains: fqdn VARCHAR(255) UNIQUE
    ("Domain", "acme-example", "/spec/fqdn", r#""Not A Domain""#, "does not match"),
    // deployment_type_check, rollback needs a parent
    ("Deployment", "shop-1-4-2", "/spec/deploymentType", r#""yolo""#, "is not one of"),
    ("Deployment", "shop-1-4-2", "/spec/deploymentType", r#""rollback""#, "parentDeploymentRef is set for rollback"),
    // designed tables: tags, dns_records, dnssec_keys, functions
    ("Tag", "critical", "/spec/color", r#""red""#, "does not match"),
    ("DnsRecord", "www", "/spec/recordType", r#""SPF""#, "is not one of"),
    ("DnsRecord", "www", "/spec/ttl", "30", "minimum"),
    ("DnsRecord", "www", "/spec/value", r#""2001:db8::1""#, "an A record's value is an IPv4 address"),
    ("DnsRecord", "www", "/spec/priority", "10", "priority is set for MX and SRV records"),
    ("DnssecKey", "ksk-2026", "/spec/algorithm", r#""DSA""#, "is not one of"),
    ("DnssecKey", "ksk-2026", "/spec/keyTag", "70000", "maximum"),
    ("Function", "stack.deploy", "/spec/grants/0/verbs/0", r#""destroy""#, "is not one of"),
    ("Policy", "deployers", "/metadata/name", r#""x""#, "2 to 100 characters"),
    // the controller-owned seed status columns: element_status_check, stack_status_check,
    // deployment_status_check (applications and deployments), cluster_status_check,
    // node_status_check, vm_status_check, network_status_check, gateway_status_check,
    // volume_status_check, dnssec_status_check, domain_status_check
    ("Element", "k8s", "/status", r#"{"phase": "broken"}"#, "does not match"),
    ("Stack", "shop", "/status", r#"{"phase": "shipped"}"#, "does not match"),
    ("Application", "storefront", "/status", r#"{"deploymentStatus": "done"}"#, "does not match"),
    ("Deployment", "shop-1-4-2", "/status", r#"{"phase": "done"}"#, "does not match"),
    ("ContainerCluster", "main", "/status", r#"{"phase": "on-fire"}"#, "does not match"),
    ("ContainerNode", "node-1", "/status", r#"{"phase": "gone"}"#, "does not match"),
    ("VM", "legacy-erp", "/status", r#"{"phase": "zombie"}"#, "does not match"),
    ("Network", "backend", "/status", r#"{"phase": "down"}"#, "does not match"),
    ("Gateway", "public", "/status", r#"{"phase": "off"}"#, "does not match"),
    ("Volume", "pgdata", "/status", r#"{"phase": "lost"}"#, "does not match"),
    ("Domain", "acme-example", "/status", r#"{"dnssecStatus": "half"}"#, "does not match"),
    ("Domain", "acme-example", "/status", r#"{"phase": "parked"}"#, "does not match"),
];

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

/// (kind, name, pointer, new value, message): transition rules, checked against the old object.
const BAD_UPDATES: &[(&str, &str, &str, &str, &str)] = &[
    ("Volume", "pgdata", "/spec/sizeGb", "10", "sizeGb cannot shrink"),
    ("Volume", "pgdata", "/spec/volumeType", r#""nfs""#, "volumeType is immutable"),
    ("Volume", "pgdata", "/spec/elementRef/name", r#""other""#, "elementRef is immutable"),
    ("Element", "k8s", "/spec/elementType", r#""vm""#, "elementType is immutable"),
    ("ContainerCluster", "main", "/spec/clusterMode", r#""swarm""#, "clusterMode is immutable"),
    ("Network", "backend", "/spec/networkType", r#""overlay""#, "networkType is immutable"),
    ("Application", "storefront", "/spec/stackRef/name", r#""other""#, "stackRef is immutable"),
    ("Deployment", "shop-1-4-2", "/spec/triggeredBy", r#""bob""#, "immutable"),
    ("Organization", "acme", "/spec/namespace", r#""elsewhere""#, "namespace is immutable"),
];

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
