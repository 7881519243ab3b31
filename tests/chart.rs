//! The Helm chart, rendered by a real `helm` (`HELM`, default `helm` on PATH; `.ci/run` installs
//! it) and its Argo CD health script run by a real Lua 5.4 (`LUA`, default `lua5.4`).

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};
use support::argocd::health;
use support::documents;
use windflow::rbac::{self, Access};

const CHART: &str = "charts/windflow";

fn helm(args: &[&str]) -> String {
    let output =
        support::helm().args(args).output().unwrap_or_else(|e| panic!("helm cannot run ({e}); install it or set HELM"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "helm {args:?}: {}{stdout}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// What `helm` says when it refuses `args`.
fn helm_refuses(args: &[&str]) -> String {
    let output = support::helm().args(args).output().expect("helm runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout));
    assert!(!output.status.success(), "helm {args:?} accepted: {said}");
    said
}

/// The chart's manifests for `values` (`key=value` pairs for `--set`).
fn render(values: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "windflow", CHART, "--namespace", "windflow-system"];
    for value in values {
        args.extend(["--set", value]);
    }
    documents(&helm(&args))
}

/// The CRD upgrade hook's objects (its ServiceAccount, grant and Job), which have their own test.
const CRDS_HOOK: &str = "windflow-crds";

fn one<'a>(manifests: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> =
        manifests.iter().filter(|m| m["kind"] == kind && m["metadata"]["name"] != CRDS_HOOK).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

fn granted(role: &Value) -> BTreeSet<Access> {
    let mut all = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        for group in rule["apiGroups"].as_array().expect("apiGroups") {
            for resource in rule["resources"].as_array().expect("resources") {
                for verb in rule["verbs"].as_array().expect("verbs") {
                    let text = |v: &Value| v.as_str().expect("a string").to_owned();
                    all.insert((text(group), text(resource), text(verb)));
                }
            }
        }
    }
    all
}

#[test]
fn chart_crds_are_the_generated_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let names = |dir: &str| -> BTreeSet<String> {
        std::fs::read_dir(root.join(dir))
            .expect("a directory")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names("crds"), names("charts/windflow/crds"));
    for name in names("crds") {
        let read = |dir: &str| std::fs::read_to_string(root.join(dir).join(&name)).expect("a CRD");
        assert_eq!(read("crds"), read("charts/windflow/crds"), "charts/windflow/crds/{name} differs: copy crds/ again");
    }
}

#[test]
fn lint_passes_with_default_and_other_values() {
    helm(&["lint", CHART, "--set", "database.url=postgres://windflow@db/windflow"]);
    helm(&[
        "lint",
        CHART,
        "--set",
        "database.existingSecret=pg",
        "--set",
        "replicas=3",
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "argocd.healthChecks=true",
        "--set",
        "leaderElection.enabled=false",
    ]);
}

#[test]
fn rbac_grants_exactly_what_the_code_calls() {
    let manifests = render(&["database.url=postgres://x"]);
    let cluster = granted(one(&manifests, "ClusterRole"));
    let derived = rbac::cluster_access();
    let missing: Vec<_> = derived.difference(&cluster).collect();
    let extra: Vec<_> = cluster.difference(&derived).collect();
    assert!(missing.is_empty(), "the chart does not grant what the code calls: {missing:?}");
    assert!(extra.is_empty(), "the chart grants what the code never calls: {extra:?}");
    let role = |name: &str| {
        let found = manifests.iter().find(|m| m["kind"] == "Role" && m["metadata"]["name"] == name);
        granted(found.unwrap_or_else(|| panic!("Role {name}")))
    };
    assert_eq!(role("windflow-leader-election"), rbac::lease_access());
    assert_eq!(role("windflow-webhook"), rbac::webhook_access());
    assert_eq!(role("windflow-user-secrets"), rbac::user_secret_access());
    assert_eq!(role("windflow-api-server"), rbac::api_server_access());
    for binding in manifests.iter().filter(|m| m["kind"] == "RoleBinding") {
        assert_eq!(binding["subjects"][0]["name"], "windflow");
    }
    assert_eq!(one(&manifests, "ClusterRoleBinding")["subjects"][0]["namespace"], "windflow-system");
}

fn container(manifests: &[Value]) -> &Value {
    &one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
}

fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"].as_array().expect("env").iter().find(|e| e["name"] == name)
}

#[test]
fn the_operator_runs_restricted_probed_and_reads_its_database_url_from_a_secret() {
    let manifests = render(&["database.url=postgres://windflow@db/windflow"]);
    let deployment = one(&manifests, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    let operator = container(&manifests);
    let security = &operator["securityContext"];
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(operator["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(operator["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(operator["args"], json!(["run"]));
    let url = env(operator, "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(url["valueFrom"]["secretKeyRef"], json!({ "name": "windflow-database", "key": "url" }));
    assert_eq!(one(&manifests, "Secret")["stringData"]["url"], "postgres://windflow@db/windflow");
    assert_eq!(env(operator, "WINDFLOW_LEADER_ELECT").expect("leader election")["value"], "true");
    assert_eq!(
        env(operator, "POD_NAMESPACE").expect("namespace")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert!(env(operator, "WINDFLOW_STORAGE_CLASSES").is_none());
    let service = |name: &str| manifests.iter().find(|m| m["kind"] == "Service" && m["metadata"]["name"] == name);
    assert_eq!(service("windflow-metrics").expect("metrics")["spec"]["ports"][0]["targetPort"], "http-probes");
    assert_eq!(service("windflow-webhook").expect("webhook")["spec"]["ports"][0]["targetPort"], "https-webhook");
    for optional in ["ServiceMonitor", "NetworkPolicy", "ConfigMap"] {
        assert!(manifests.iter().all(|m| m["kind"] != optional), "{optional} is off by default");
    }
}

#[test]
fn other_values_reach_the_manifests() {
    let manifests = render(&[
        "database.existingSecret=shared-postgres",
        "database.secretKey=uri",
        "replicas=3",
        "leaderElection.enabled=false",
        "provisioning.storageClasses.ceph=rook-ceph-block",
        "provisioning.storageClasses.nfs=nfs-csi",
        "provisioning.ingressClass=nginx",
        "serviceMonitor.enabled=true",
        "networkPolicy.enabled=true",
        "argocd.healthChecks=true",
    ]);
    assert_eq!(one(&manifests, "Deployment")["spec"]["replicas"], 3);
    let operator = container(&manifests);
    let url = env(operator, "DATABASE_URL").expect("DATABASE_URL");
    assert_eq!(url["valueFrom"]["secretKeyRef"], json!({ "name": "shared-postgres", "key": "uri" }));
    assert!(manifests.iter().all(|m| m["kind"] != "Secret"), "an existing Secret is not created");
    assert!(
        manifests.iter().all(|m| m["metadata"]["name"] != "windflow-leader-election"),
        "no Lease without leader election"
    );
    assert_eq!(env(operator, "WINDFLOW_LEADER_ELECT").expect("leader election")["value"], "false");
    assert_eq!(
        env(operator, "WINDFLOW_STORAGE_CLASSES").expect("classes")["value"],
        "ceph=rook-ceph-block,nfs=nfs-csi"
    );
    assert_eq!(env(operator, "WINDFLOW_INGRESS_CLASS").expect("ingress class")["value"], "nginx");
    assert_eq!(one(&manifests, "ServiceMonitor")["spec"]["endpoints"][0]["port"], "http-metrics");
    let ingress = &one(&manifests, "NetworkPolicy")["spec"]["ingress"];
    assert_eq!((&ingress[0]["ports"][0]["port"], &ingress[1]["ports"][0]["port"]), (&json!(8080), &json!(9443)));
    let health = one(&manifests, "ConfigMap");
    assert_eq!(health["metadata"]["name"], "argocd-cm");
    let kinds: BTreeSet<String> = windflow::kinds::crds().into_iter().map(|crd| crd.spec.names.kind).collect();
    for kind in kinds {
        assert!(health["data"].get(format!("resource.customizations.health.windflow.io_{kind}")).is_some(), "{kind}");
    }
}

/// The keys of `values` (YAML), each as its path of names: what the schema must cover.
fn value_paths(values: &Value, at: &str, paths: &mut Vec<String>) {
    if let Value::Object(map) = values {
        for (key, value) in map {
            let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            paths.push(path.clone());
            value_paths(value, &path, paths);
        }
    }
}

#[test]
fn the_values_schema_covers_every_value_and_refuses_each_kind_of_mistake() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(CHART).join("values.schema.json")).expect("the chart has a schema"),
    )
    .expect("JSON");
    let values: Value =
        serde_yaml::from_str(&std::fs::read_to_string(Path::new(CHART).join("values.yaml")).expect("values.yaml"))
            .expect("YAML");
    let mut paths = vec![];
    value_paths(&values, "", &mut paths);
    for path in paths {
        let pointer: String = path.split('.').map(|key| format!("/properties/{key}")).collect();
        // Maps whose keys are users' (storage classes, labels) end the walk.
        let parent_is_map = path.rsplit_once('.').is_some_and(|(parent, _)| {
            let pointer: String = parent.split('.').map(|key| format!("/properties/{key}")).collect();
            schema.pointer(&pointer).is_some_and(|node| node.get("properties").is_none())
        });
        assert!(parent_is_map || schema.pointer(&pointer).is_some(), "values.schema.json lacks {path}");
    }
    // A Volume's types are the CRD's: a class for a type that does not exist is a typo.
    let volume_types: Vec<Value> = windflow::kinds::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == "Volume")
        .and_then(|crd| {
            let schema = serde_json::to_value(&crd.spec.versions[0].schema).ok()?;
            schema.pointer("/openAPIV3Schema/properties/spec/properties/volumeType/enum").cloned()
        })
        .and_then(|types| types.as_array().cloned())
        .expect("the volume types");
    assert_eq!(
        schema["properties"]["provisioning"]["properties"]["storageClasses"]["propertyNames"]["enum"],
        json!(volume_types)
    );

    for (mistake, value, said) in [
        ("a wrong type", "replicas=two", "/replicas"),
        ("an unknown key", "provisioning.storageClass.ceph=rook", "storageClass"),
        ("a volume type that does not exist", "provisioning.storageClasses.cephfs=rook", "cephfs"),
        ("an unknown enum value", "admission.failurePolicy.changes=fail", "/admission/failurePolicy/changes"),
    ] {
        for command in [&["lint", CHART][..], &["install", "windflow", CHART, "--dry-run=client"][..]] {
            let mut args = command.to_vec();
            args.extend(["--set", "database.url=postgres://x", "--set", value]);
            let refused = helm_refuses(&args);
            assert!(refused.contains(said), "{mistake} ({value}), {command:?}: {refused}");
        }
    }
}

#[test]
fn the_dashboard_and_the_alerting_rules_are_shipped_off_by_default() {
    let off = render(&["database.url=postgres://x"]);
    assert!(off.iter().all(|m| m["kind"] != "PrometheusRule" && m["kind"] != "ConfigMap"), "off by default");
    let on = render(&["database.url=postgres://x", "grafana.dashboard.enabled=true", "prometheusRule.enabled=true"]);
    let dashboard = one(&on, "ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1", "the sidecar's label");
    let json: Value =
        serde_json::from_str(dashboard["data"]["windflow.json"].as_str().expect("the dashboard")).expect("JSON");
    let titles: Vec<&str> =
        json["panels"].as_array().expect("panels").iter().filter_map(|p| p["title"].as_str()).collect();
    for wanted in [
        "Reconciles by kind",
        "Reconcile latency",
        "Database writes",
        "Objects not Ready",
        "Rollouts by phase",
        "Admission verdicts",
        "API requests",
        "Memory",
    ] {
        assert!(titles.iter().any(|title| title.starts_with(wanted)), "{wanted} in {titles:?}");
    }
    let rules = one(&on, "PrometheusRule");
    let alerts: Vec<&str> = rules["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter_map(|rule| rule["alert"].as_str())
        .collect();
    assert_eq!(
        alerts,
        [
            "WindFlowDatabaseUnavailable",
            "WindFlowReconcileErrorsRising",
            "WindFlowNoLeader",
            "WindFlowWebhookCertificateExpiring"
        ]
    );
}

#[test]
fn a_pre_upgrade_hook_applies_the_crds_with_a_grant_on_them_alone() {
    let manifests = render(&["database.url=postgres://x"]);
    let hook: Vec<&Value> = manifests.iter().filter(|m| m["metadata"]["name"] == CRDS_HOOK).collect();
    let kinds: Vec<&str> = hook.iter().filter_map(|m| m["kind"].as_str()).collect();
    assert_eq!(kinds, ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Job"]);
    for object in &hook {
        assert_eq!(object["metadata"]["annotations"]["helm.sh/hook"], "pre-upgrade", "{object}");
    }
    let job = hook[3];
    assert_eq!(job["spec"]["template"]["spec"]["serviceAccountName"], CRDS_HOOK);
    assert_eq!(job["spec"]["template"]["spec"]["containers"][0]["args"], json!(["crds", "--apply"]));
    // Before the migrations (weight 0), which the new operator's schema needs too.
    assert_eq!(job["metadata"]["annotations"]["helm.sh/hook-weight"], "-10");
    let rules = hook[1]["rules"].as_array().expect("rules");
    let named: BTreeSet<String> = rules[0]["resourceNames"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|name| name.as_str().map(str::to_owned))
        .collect();
    let crds: BTreeSet<String> = windflow::kinds::crds().into_iter().filter_map(|crd| crd.metadata.name).collect();
    assert_eq!(named, crds, "patch is granted on WindFlow's CRDs by name");
    assert_eq!(rules[0]["verbs"], json!(["get", "patch"]));
    assert_eq!(rules[1]["verbs"], json!(["create"]));
    let off = render(&["database.url=postgres://x", "crds.upgrade=false"]);
    assert!(off.iter().all(|m| m["metadata"]["name"] != CRDS_HOOK));
}

#[test]
fn helm_test_asks_the_operators_readiness_and_the_served_kinds() {
    let manifests = render(&[
        "database.url=postgres://x",
        "networkPolicy.enabled=true",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.monitoring=yes",
    ]);
    let pod = manifests.iter().find(|m| m["kind"] == "Pod").expect("the test pod");
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    assert_eq!(
        pod["spec"]["containers"][0]["args"],
        json!(["selftest", "--readyz", "http://windflow-metrics.windflow-system:8080/readyz"])
    );
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
    // The metrics port's NetworkPolicy lets it in beside the scrapers.
    let peers = &one(&manifests, "NetworkPolicy")["spec"]["ingress"][0]["from"];
    assert_eq!(peers[0]["namespaceSelector"]["matchLabels"]["monitoring"], "yes");
    assert_eq!(peers[1]["podSelector"]["matchLabels"]["app.kubernetes.io/name"], "windflow-test");
}

#[test]
fn several_replicas_are_drained_one_at_a_time_and_the_notes_say_how_to_check() {
    let budget = |replicas: &str| {
        let manifests = render(&["database.url=postgres://x", replicas]);
        manifests.iter().find(|m| m["kind"] == "PodDisruptionBudget").cloned()
    };
    let two = budget("replicas=2").expect("a budget with two replicas");
    assert_eq!(two["spec"]["minAvailable"], 1);
    let deployment = one(&render(&["database.url=postgres://x"]), "Deployment").clone();
    assert_eq!(two["spec"]["selector"]["matchLabels"], deployment["spec"]["selector"]["matchLabels"]);
    assert!(budget("replicas=1").is_none(), "one replica: a budget would block every drain");

    let notes = helm(&[
        "install",
        "windflow",
        CHART,
        "--namespace",
        "windflow-system",
        "--dry-run=client",
        "--set",
        "database.url=postgres://x",
    ]);
    let notes = notes.split("NOTES:").nth(1).expect("the chart has notes");
    for said in [
        "2 operator replica(s)",
        "Lease windflow-operator",
        "rollout status deployment/windflow",
        "the admission webhook: on",
        "run by the operator at start",
        "kubectl get windflow -A",
    ] {
        assert!(notes.contains(said), "{said:?} in {notes}");
    }
}

/// The chart's deny list is the operator's default, and the cluster's own ranges are added to it.
#[test]
fn the_deny_list_is_the_operators_default_with_the_clusters_ranges() {
    let denied = |values: &[&str]| {
        let manifests = render(values);
        let operator = container(&manifests);
        let own = env(operator, "WINDFLOW_PROBE_DENY_OWN_ENDPOINTS").expect("own endpoints")["value"].clone();
        let list = env(operator, "WINDFLOW_PROBE_DENY").expect("deny list")["value"].as_str().expect("text").to_owned();
        for cidr in list.split(',') {
            cidr.parse::<ipnet::IpNet>().unwrap_or_else(|e| panic!("{cidr}: {e}"));
        }
        (list, own)
    };
    let defaults = windflow::provision::destination::DEFAULT_DENY.join(",");
    assert_eq!(denied(&["database.url=postgres://x"]), (defaults.clone(), json!("true")));
    let (list, own) = denied(&[
        "database.url=postgres://x",
        "security.serviceCIDRs={10.96.0.0/12}",
        "security.podCIDRs={10.244.0.0/16,fd00:10:244::/56}",
        "security.probeDenyOwnEndpoints=false",
    ]);
    assert_eq!(list, format!("{defaults},10.96.0.0/12,10.244.0.0/16,fd00:10:244::/56"));
    assert_eq!(own, "false");
    let manifests = render(&["database.url=postgres://x"]);
    let limit = |name: &str| env(container(&manifests), name).expect(name)["value"].as_str().expect("text").to_owned();
    let limits = windflow::provision::probe::ProbeLimits::default();
    assert_eq!(limit("WINDFLOW_PROBE_RESPONSE_LIMIT_BYTES"), limits.response_bytes.to_string());
    assert_eq!(limit("WINDFLOW_PROBE_NODE_LIMIT"), limits.nodes.to_string());
    let manifests = render(&["database.url=postgres://x", "security.probeDenyOwnEndpoints=false"]);
    assert!(manifests.iter().all(|m| m["metadata"]["name"] != "windflow-api-server"), "no Role it does not use");
}

/// Users' password Secrets have a namespace of their own, never the release namespace, where the
/// database URL and the webhook's key are.
#[test]
fn users_secrets_have_a_namespace_of_their_own() {
    let manifests = render(&["database.url=postgres://x"]);
    let namespace = one(&manifests, "Namespace");
    assert_eq!(namespace["metadata"]["name"], "windflow-users");
    assert_eq!(namespace["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
    let operator = container(&manifests);
    assert_eq!(env(operator, "WINDFLOW_USER_SECRET_NAMESPACE").expect("namespace")["value"], "windflow-users");
    let role = manifests.iter().find(|m| m["metadata"]["name"] == "windflow-user-secrets").expect("its Role");
    assert_eq!(role["metadata"]["namespace"], "windflow-users");
    let existing = render(&["database.url=postgres://x", "security.createUserSecretNamespace=false"]);
    assert!(existing.iter().all(|m| m["kind"] != "Namespace"));

    let shared = support::helm()
        .args(["template", "windflow", CHART, "--namespace", "windflow-system", "--set", "database.url=postgres://x"])
        .args(["--set", "security.userSecretNamespace=windflow-system"])
        .output()
        .expect("helm runs");
    let stderr = String::from_utf8_lossy(&shared.stderr);
    assert!(!shared.status.success() && stderr.contains("is the release namespace"), "{stderr}");
}

/// The operator's ServiceAccount is fenced by a ValidatingAdmissionPolicy bound to it alone.
#[test]
fn the_operators_service_account_is_fenced() {
    let manifests = render(&["database.url=postgres://x"]);
    let policy = one(&manifests, "ValidatingAdmissionPolicy");
    let operator = "request.userInfo.username == 'system:serviceaccount:windflow-system:windflow'";
    assert_eq!(policy["spec"]["matchConditions"][0]["expression"], operator);
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let binding = one(&manifests, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding["spec"]["policyName"], policy["metadata"]["name"]);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    let off = render(&["database.url=postgres://x", "security.operatorFence=false"]);
    assert!(
        off.iter().all(|m| m["kind"] != "ValidatingAdmissionPolicy" && m["kind"] != "ValidatingAdmissionPolicyBinding")
    );
}

/// With a migration role, a Job migrates before every install and upgrade, and the operator,
/// connecting as the runtime login, only checks the migrations.
#[test]
fn a_migration_role_migrates_in_a_job_before_the_operator_starts() {
    let manifests = render(&[
        "database.url=postgres://windflow@db/windflow",
        "database.migration.url=postgres://windflow_migration@db/windflow",
        "database.migration.runtimeRole=windflow",
    ]);
    let job = one(&manifests, "Job");
    assert_eq!(job["metadata"]["annotations"]["helm.sh/hook"], "pre-install,pre-upgrade");
    let pod = &job["spec"]["template"];
    let selector = &one(&manifests, "Deployment")["spec"]["selector"]["matchLabels"];
    assert_ne!(pod["metadata"]["labels"]["app.kubernetes.io/name"], selector["app.kubernetes.io/name"]);
    let migrate = &pod["spec"]["containers"][0];
    assert_eq!(migrate["args"], json!(["migrate"]));
    assert_eq!(env(migrate, "WINDFLOW_RUNTIME_ROLE").expect("the runtime role")["value"], "windflow");
    let secret = &env(migrate, "DATABASE_URL").expect("its URL")["valueFrom"]["secretKeyRef"]["name"];
    let hooked =
        manifests.iter().find(|m| m["kind"] == "Secret" && &m["metadata"]["name"] == secret).expect("its Secret");
    assert_eq!(hooked["metadata"]["annotations"]["helm.sh/hook-weight"], "-1", "made before the Job");
    assert_eq!(hooked["stringData"]["url"], "postgres://windflow_migration@db/windflow");
    assert_eq!(env(container(&manifests), "WINDFLOW_MIGRATE").expect("no migration")["value"], "false");

    let single = render(&["database.url=postgres://windflow@db/windflow"]);
    assert!(
        single.iter().all(|m| m["kind"] != "Job" || m["metadata"]["name"] == CRDS_HOOK),
        "one role migrates itself"
    );
    assert!(env(container(&single), "WINDFLOW_MIGRATE").is_none());
}

/// The webhooks of the chart's configuration of `kind`, by name.
fn webhooks<'a>(manifests: &'a [Value], kind: &str) -> Vec<&'a Value> {
    one(manifests, kind)["webhooks"].as_array().expect("webhooks").iter().collect()
}

#[test]
fn admission_leaves_the_operator_and_status_out_with_deliberate_failure_policies() {
    let manifests = render(&["database.url=postgres://x"]);
    let mutating = webhooks(&manifests, "MutatingWebhookConfiguration");
    let validating = webhooks(&manifests, "ValidatingWebhookConfiguration");
    let every: Vec<&Value> = mutating.iter().chain(&validating).copied().collect();
    assert_eq!(every.len(), 3);
    for webhook in &every {
        let condition = &webhook["matchConditions"][0]["expression"];
        assert_eq!(condition, "request.userInfo.username != 'system:serviceaccount:windflow-system:windflow'");
        // `*` matches no subresource: status writes never reach the webhook.
        assert_eq!(webhook["rules"][0]["resources"], json!(["*"]));
        assert_eq!(webhook["rules"][0]["apiGroups"], json!(["windflow.io"]));
        assert_eq!(webhook["clientConfig"]["service"]["name"], "windflow-webhook");
        assert_eq!(webhook["timeoutSeconds"], 10);
    }
    let policy =
        |w: &Value| (w["name"].as_str().map(str::to_owned), w["failurePolicy"].clone(), w["sideEffects"].clone());
    assert_eq!(policy(mutating[0]), (Some("changes.windflow.io".into()), json!("Fail"), json!("None")));
    assert_eq!(mutating[0]["reinvocationPolicy"], "IfNeeded");
    assert_eq!(policy(validating[0]), (Some("changes.windflow.io".into()), json!("Fail"), json!("None")));
    assert_eq!(policy(validating[1]), (Some("deletes.windflow.io".into()), json!("Ignore"), json!("NoneOnDryRun")));
    assert_eq!(validating[1]["rules"][0]["operations"], json!(["DELETE"]));
    let operator = container(&manifests);
    assert_eq!(env(operator, "WINDFLOW_ADMISSION_ADDRESS").expect("address")["value"], "0.0.0.0:9443");
    assert_eq!(
        env(operator, "WINDFLOW_WEBHOOK_HOSTS").expect("hosts")["value"],
        "windflow-webhook.windflow-system.svc,windflow-webhook.windflow-system.svc.cluster.local"
    );
    // Every replica serves admission, also while its database is down.
    let service = manifests.iter().find(|m| m["metadata"]["name"] == "windflow-webhook" && m["kind"] == "Service");
    assert_eq!(service.expect("the webhook Service")["spec"]["publishNotReadyAddresses"], true);
}

#[test]
fn admission_by_url_with_cert_manager_and_turned_off() {
    let manifests = render(&[
        "database.url=postgres://x",
        "admission.url=https://10.0.0.5:9443",
        "admission.certificate=cert-manager",
        "admission.failurePolicy.deletes=Fail",
        "admission.platformGroups={platform,ci}",
        "admission.identity.prefix=oidc:",
    ]);
    for webhook in webhooks(&manifests, "ValidatingWebhookConfiguration") {
        assert_eq!(webhook["clientConfig"]["url"], "https://10.0.0.5:9443/validate");
        assert_eq!(webhook["failurePolicy"], "Fail");
    }
    let configuration = one(&manifests, "MutatingWebhookConfiguration");
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "windflow-system/windflow-webhook"
    );
    let certificate = one(&manifests, "Certificate");
    assert_eq!(certificate["spec"]["ipAddresses"], json!(["10.0.0.5"]));
    assert_eq!(certificate["spec"]["secretName"], "windflow-webhook-tls");
    assert_eq!(one(&manifests, "Issuer")["spec"]["selfSigned"], json!({}));
    assert!(manifests.iter().all(|m| m["metadata"]["name"] != "windflow-webhook" || m["kind"] != "Service"));
    let operator = container(&manifests);
    assert_eq!(env(operator, "WINDFLOW_WEBHOOK_ISSUING").expect("issuing")["value"], "cert-manager");
    assert_eq!(env(operator, "WINDFLOW_PLATFORM_GROUPS").expect("groups")["value"], "platform,ci");
    assert_eq!(env(operator, "WINDFLOW_IDENTITY_PREFIX").expect("prefix")["value"], "oidc:");
    // cert-manager renews the certificate: the operator needs no rights on the configurations.
    let cluster = granted(one(&manifests, "ClusterRole"));
    assert!(cluster.iter().all(|(group, _, _)| group != "admissionregistration.k8s.io"));

    let off = render(&["database.url=postgres://x", "admission.enabled=false"]);
    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Certificate"] {
        assert!(off.iter().all(|m| m["kind"] != kind), "{kind} without admission");
    }
    assert!(env(container(&off), "WINDFLOW_ADMISSION_ADDRESS").is_none());
    // Policies' RoleBindings name usernames through the identity mapping, admission or not.
    let mapped = render(&["database.url=postgres://x", "admission.enabled=false", "admission.identity.prefix=oidc:"]);
    assert_eq!(env(container(&mapped), "WINDFLOW_IDENTITY_PREFIX").expect("prefix")["value"], "oidc:");
}

fn object(kind: &str, generation: i64, status: Value) -> Value {
    json!({ "apiVersion": "windflow.io/v1alpha1", "kind": kind, "metadata": { "name": "x", "generation": generation },
            "status": status })
}

fn conditions(observed: i64, ready: (&str, &str), synced: (&str, &str)) -> Value {
    json!({ "observedGeneration": observed, "conditions": [
        { "type": "Ready", "status": ready.0, "reason": ready.1, "message": "why" },
        { "type": "Synced", "status": synced.0, "reason": synced.1, "message": "why" },
    ] })
}

#[test]
fn argocd_health_for_every_kind_and_outcome() {
    for crd in windflow::kinds::crds() {
        let kind = crd.spec.names.kind.as_str();
        let cases = [
            (object(kind, 1, Value::Null), "Progressing"),
            (object(kind, 2, conditions(1, ("True", "Provisioned"), ("True", "Mirrored"))), "Progressing"),
            (object(kind, 2, conditions(2, ("True", "Provisioned"), ("True", "Mirrored"))), "Healthy"),
            (
                object(kind, 2, conditions(2, ("False", "WaitingForDependency"), ("False", "WaitingForDependency"))),
                "Progressing",
            ),
            (object(kind, 2, conditions(2, ("False", "ProviderNotInstalled"), ("True", "Mirrored"))), "Degraded"),
            (object(kind, 2, conditions(2, ("False", "InvalidSpec"), ("False", "InvalidSpec"))), "Degraded"),
            (
                object(kind, 2, conditions(2, ("False", "DatabaseUnavailable"), ("False", "DatabaseUnavailable"))),
                "Degraded",
            ),
            (object(kind, 2, conditions(2, ("False", "Paused"), ("False", "Paused"))), "Suspended"),
            // Applied, not working yet: a claim not Bound, a workload not Available.
            (object(kind, 2, conditions(2, ("False", "Progressing"), ("True", "Mirrored"))), "Progressing"),
        ];
        for (obj, expected) in cases {
            let (status, message) = health(&obj);
            assert_eq!(status, expected, "{kind}: {obj} ({message})");
        }
    }
    // Kept as asked, running nothing: Suspended once the operator has acted on it; a fault is
    // still a fault.
    for (kind, spec) in [
        ("Organization", json!({ "isActive": false })),
        ("Environment", json!({ "isActive": false })),
        ("Application", json!({ "stopped": true })),
        ("Stack", json!({ "archived": true })),
    ] {
        let mut resting = object(kind, 2, conditions(2, ("True", "Provisioned"), ("True", "Mirrored")));
        resting["spec"] = spec.clone();
        assert_eq!(health(&resting).0, "Suspended", "{kind} {spec}");
        let mut broken = object(kind, 2, conditions(2, ("False", "InvalidSpec"), ("False", "InvalidSpec")));
        broken["spec"] = spec.clone();
        assert_eq!(health(&broken).0, "Degraded", "{kind} {spec}");
        let mut unseen = object(kind, 3, conditions(2, ("True", "Provisioned"), ("True", "Mirrored")));
        unseen["spec"] = spec;
        assert_eq!(health(&unseen).0, "Progressing", "{kind}: not acted on yet");
    }
    // A rollout as the operator reports it: queued, waiting for its stack or running is work
    // under way; a finished one is a record (history is not a fault), but a failure while it is
    // its stack's latest word.
    for (phase, ready, expected) in [
        ("pending", ("False", "Queued"), "Progressing"),
        ("pending", ("False", "WaitingForStack"), "Progressing"),
        ("running", ("False", "Progressing"), "Progressing"),
        ("completed", ("True", "Completed"), "Healthy"),
        ("failed", ("False", "HealthCheckFailed"), "Degraded"),
        ("cancelled", ("False", "Cancelled"), "Healthy"),
        ("rolled_back", ("False", "RolledBack"), "Healthy"),
    ] {
        let mut rollout = object("Deployment", 1, conditions(1, ready, ("True", "Mirrored")));
        rollout["status"]["phase"] = phase.into();
        let (status, message) = health(&rollout);
        assert_eq!(status, expected, "rollout {phase}: {message}");
    }
    // A failure a newer completed rollout superseded is history.
    let mut superseded = object("Deployment", 1, conditions(1, ("False", "HealthCheckFailed"), ("True", "Mirrored")));
    superseded["status"]["phase"] = "failed".into();
    superseded["status"]["supersededBy"] = "shop-1-5-1".into();
    assert_eq!(health(&superseded).0, "Healthy");
}
