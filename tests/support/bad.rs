//! Bad input for every CHECK of the model and every immutability rule, with the message that
//! refuses it: checked offline (`tests/crds.rs`) and by the real API server (`tests/e2e`).

use serde_json::Value;

/// Sets the JSON value `value` at `pointer`, creating the last key if needed.
pub fn set(doc: &mut Value, pointer: &str, value: &str) {
    let value: Value = serde_json::from_str(value).expect("json value");
    match doc.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            doc.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent").insert(key.to_owned(), value);
        }
    }
}

/// (kind, name in examples/, JSON pointer, bad value, what the message says)
pub const BAD_SPECS: &[(&str, &str, &str, &str, &str)] = &[
    // rollout settings of deploymentConfig
    ("Deployment", "shop-1-4-2", "/spec/deploymentConfig", r#"{"canaryWeight": 150}"#, "maximum"),
    ("Deployment", "shop-1-4-2", "/spec/deploymentConfig", r#"{"autoPromote": "yes"}"#, "is not of type"),
    // users_username_check, users_email_check and the VARCHAR limits of users
    ("User", "alice", "/metadata/name", r#""al""#, "3 to 50 characters"),
    ("User", "alice", "/spec/email", r#""not-an-email""#, "does not match"),
    // org_name_check, user_org_role_check
    ("Organization", "acme", "/metadata/name", r#""a""#, "2 to 100 characters"),
    ("Organization", "acme", "/spec/members/0/role", r#""superuser""#, "is not one of"),
    ("Organization", "acme", "/spec/members/1/user", r#""alice""#, "a user is listed once"),
    // quotas: quantities, and counts that are no fewer than none
    ("Organization", "acme", "/spec/quotas", r#"{"cpu": "sixteen"}"#, "cpu is a quantity"),
    ("Organization", "acme", "/spec/quotas", r#"{"stacks": -1}"#, "minimum"),
    // env_type_check, element_type_check
    ("Environment", "production", "/spec/environmentType", r#""prod""#, "is not one of"),
    ("Element", "k8s", "/spec/elementType", r#""router""#, "is not one of"),
    // app_type_check
    ("Application", "storefront", "/spec/applicationType", r#""lambda""#, "is not one of"),
    ("Application", "storefront", "/spec/volumes/0/mountPath", r#""relative/path""#, "does not match"),
    // autoscaling (no seed CHECK: the HorizontalPodAutoscaler's own rules, said at apply)
    (
        "Application",
        "storefront",
        "/spec/autoscaling",
        r#"{"minReplicas": 3, "maxReplicas": 2, "targetCPUUtilization": 50}"#,
        "minReplicas is at most maxReplicas",
    ),
    (
        "Application",
        "storefront",
        "/spec/autoscaling",
        r#"{"minReplicas": 1, "maxReplicas": 2}"#,
        "names a CPU or memory target",
    ),
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
    ("Network", "backend", "/spec/encryptionEnabled", "true", "only an overlay network is encrypted"),
    // gateway_type_check, lb_strategy_check
    ("Gateway", "public", "/spec/gatewayType", r#""grpc""#, "is not one of"),
    ("Gateway", "public", "/spec/loadBalancingStrategy", r#""random""#, "is not one of"),
    // volume_type_check, access_mode_check
    ("Volume", "pgdata", "/spec/volumeType", r#""floppy""#, "is not one of"),
    ("Volume", "pgdata", "/spec/accessMode", r#""rwx""#, "is not one of"),
    ("Volume", "pgdata", "/spec/shared", "true", "a shared volume needs"),
    ("Volume", "pgdata", "/spec/sizeGb", "0.001", "minimum"),
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
    ("Element", "k8s", "/status", r#"{"phase": "broken"}"#, "is not one of"),
    ("Stack", "shop", "/status", r#"{"phase": "shipped"}"#, "is not one of"),
    ("Application", "storefront", "/status", r#"{"deploymentStatus": "done"}"#, "is not one of"),
    ("Deployment", "shop-1-4-2", "/status", r#"{"phase": "done"}"#, "is not one of"),
    ("ContainerCluster", "main", "/status", r#"{"phase": "on-fire"}"#, "is not one of"),
    ("ContainerNode", "node-1", "/status", r#"{"phase": "gone"}"#, "is not one of"),
    ("VM", "legacy-erp", "/status", r#"{"phase": "zombie"}"#, "is not one of"),
    ("Network", "backend", "/status", r#"{"phase": "down"}"#, "is not one of"),
    ("Gateway", "public", "/status", r#"{"phase": "off"}"#, "is not one of"),
    ("Volume", "pgdata", "/status", r#"{"phase": "lost"}"#, "is not one of"),
    ("Domain", "acme-example", "/status", r#"{"dnssecStatus": "half"}"#, "is not one of"),
    ("Domain", "acme-example", "/status", r#"{"phase": "parked"}"#, "is not one of"),
];

/// (kind, name, pointer, new value, message): transition rules, checked against the old object.
pub const BAD_UPDATES: &[(&str, &str, &str, &str, &str)] = &[
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
