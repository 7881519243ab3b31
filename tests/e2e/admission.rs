//! Admission on the real control plane: who did it in every audit row, rollouts authorized by
//! the model's Policies, records that cannot be forged, and what a webhook outage does. Users
//! act through `kubectl --as` (impersonation by the admin), as the API server authenticates
//! them; the webhook is served by a standby replica, not only by the leader.

use std::process::Output;
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::controlplane::workload_plane;
use crate::controlplane::{ControlPlane, both, free_port, run};
use crate::install::{
    eventually, get, install_chart_admitting, play_cluster_api, reset, serving_admission, start_operator_with,
};
use crate::platform::{gone, readiness};
use crate::{resource_of, turn};

const ARGO_CD: &str = "system:serviceaccount:argocd:argocd-application-controller";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// `kubectl --as user [--as-group group…] args…` with `stdin`, and its output.
fn kubectl_as(plane: &ControlPlane, user: &str, groups: &[&str], args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut kubectl = plane.kubectl();
    kubectl.args(["--as", user]);
    for group in groups {
        kubectl.args(["--as-group", group]);
    }
    kubectl.args(args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
    kubectl.stderr(std::process::Stdio::piped());
    let mut child = kubectl.spawn().expect("kubectl runs");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("kubectl ends")
}

fn apply_as(plane: &ControlPlane, user: &str, groups: &[&str], manifest: &Value) -> Output {
    kubectl_as(plane, user, groups, &["apply", "-f", "-"], Some(&manifest.to_string()))
}

fn deployment(name: &str, triggered_by: &str) -> Value {
    json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": "acme" },
            "spec": { "stackRef": { "name": "shop" }, "triggeredBy": triggered_by } })
}

/// The audit rows of the object `name`: action, Kubernetes username, WindFlow User.
async fn audit_of(pool: &PgPool, name: &str) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as(
        "SELECT a.action, a.kubernetes_username, u.username FROM audit_logs a \
         LEFT JOIN users u ON u.id = a.user_id WHERE a.resource_name = $1 ORDER BY a.created_at",
    )
    .bind(name)
    .fetch_all(pool)
    .await
    .expect("audit_logs")
}

/// Waits until an audit row of `name` says `expected`.
async fn audited(pool: &PgPool, name: &str, expected: (&str, Option<&str>, Option<&str>)) {
    eventually(&format!("the audit of {name}"), Duration::from_secs(60), || async move {
        let rows = audit_of(pool, name).await;
        let found = rows.iter().any(|(a, k, u)| (a.as_str(), k.as_deref(), u.as_deref()) == expected);
        found.then_some(()).ok_or(format!("no {expected:?} in {rows:?}"))
    })
    .await;
}

fn recorded(obj: &DynamicObject, key: &str) -> Value {
    obj.annotations().get(key).map(|v| serde_json::from_str(v).expect("JSON")).unwrap_or(Value::Null)
}

#[tokio::test]
async fn who_did_it_and_who_may_deploy() {
    let (_turn, plane) = turn().await;
    reset(plane).await;
    let client = plane.client().await;
    let (leader_port, standby_port) = (free_port(), free_port());
    let identity_map = json!({ ARGO_CD: "platform-bot" }).to_string();
    let kubeconfig = install_chart_admitting(
        plane,
        standby_port,
        &[
            "--set",
            "admission.platformGroups={platform}",
            "--set-json",
            &format!("admission.identity.map={identity_map}"),
        ],
    )
    .await;
    let db = crate::support::database().await;
    // The stack's cluster, so that the rollouts below complete on it.
    let _cluster_api = play_cluster_api(plane, workload_plane().await).await;
    crate::controlplane::add_fresh_volumes(&workload_plane().await.client().await, 2).await;
    let mapping = format!("{ARGO_CD}=platform-bot");
    let webhook_env = |port: u16| {
        let mut env = serving_admission(port).to_vec();
        env.extend([
            // The probes and metrics beside it, on the next free port.
            ("WINDFLOW_PROBE_ADDRESS", format!("127.0.0.1:{}", free_port())),
            ("WINDFLOW_PLATFORM_GROUPS", "platform".to_owned()),
            ("WINDFLOW_IDENTITY_MAP", mapping.clone()),
        ]);
        env
    };
    let start = |name: &str, port: u16| {
        let env = webhook_env(port);
        let metrics = env.iter().find(|(key, _)| *key == "WINDFLOW_PROBE_ADDRESS").map(|(_, v)| v.clone());
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        (start_operator_with(plane, &kubeconfig, &db.runtime_url, name, &env), metrics.expect("a probe address"))
    };
    // The leader reconciles; the standby serves the webhook the API server calls.
    let (leader, leader_metrics) = start("windflow-leader", leader_port);
    crate::failover::held_by(&client, "windflow-leader").await;
    let (mut standby, standby_metrics) = start("windflow-standby", standby_port);
    eprintln!("logs: {} {}", leader.log.display(), standby.log.display());

    // Every user may edit WindFlow objects as far as RBAC goes, and read pods and services (what
    // the sample's Policy grants): WindFlow decides the rest.
    let users: Vec<Value> = ["alice", "bob", "carol", "erin", "mallory", "ci", ARGO_CD]
        .iter()
        .map(|user| json!({ "kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user }))
        .collect();
    let editors = json!({ "apiVersion": "v1", "kind": "List", "items": [
        { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": { "name": "windflow-editor" },
          "rules": [{ "apiGroups": ["windflow.io"], "resources": ["*"], "verbs": ["*"] },
                    { "apiGroups": [""], "resources": ["pods", "services"], "verbs": ["get", "list", "watch"] }] },
        { "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": { "name": "windflow-editors" },
          "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "windflow-editor" },
          "subjects": users } ] });
    let path = plane.dir.join("windflow-editors.json");
    std::fs::write(&path, editors.to_string()).expect("write");
    run({
        let mut apply = plane.kubectl();
        apply.arg("apply").arg("-f").arg(&path);
        apply
    });

    // alice applies the sample (retried as Argo CD retries while the webhook's CA is injected
    // and the tenant namespace is made).
    eventually("alice applies the sample", Duration::from_secs(120), || async {
        let output = kubectl_as(plane, "alice", &[], &["apply", "-f", EXAMPLES], None);
        output.status.success().then_some(()).ok_or(both(&output))
    })
    .await;
    let networks: Api<DynamicObject> = Api::namespaced_with(client.clone(), "acme", &resource_of("Network"));
    let created = networks.get("frontend").await.expect("frontend");
    assert_eq!(recorded(&created, "windflow.io/created-by")["username"], "alice");
    audited(&db.pool, "frontend", ("create", Some("alice"), Some("alice"))).await;
    // Born with the mirror's finalizer: its reconcile wrote the row and its status, never its
    // metadata.
    let mirrored = networks.get("frontend").await.expect("frontend");
    assert_eq!(mirrored.finalizers(), [windflow::reconcile::FINALIZER]);
    let writers: Vec<_> = mirrored
        .managed_fields()
        .iter()
        .filter(|entry| entry.subresource.is_none())
        .filter_map(|entry| entry.manager.clone())
        .collect();
    assert!(writers.iter().all(|manager| manager.starts_with("kubectl")), "{writers:?}");

    // alice edits; bob edits and tries to pass as alice: the record is always the requester.
    let edit = json!({ "spec": { "crossCluster": true } }).to_string();
    let patch_frontend = |user: &str, patch: &str| {
        let output = kubectl_as(
            plane,
            user,
            &[],
            &["patch", "network", "frontend", "-n", "acme", "--type=merge", "-p", patch],
            None,
        );
        assert!(output.status.success(), "{user}'s patch: {}", both(&output));
    };
    patch_frontend("alice", &edit);
    audited(&db.pool, "frontend", ("update", Some("alice"), Some("alice"))).await;
    let forged = json!({ "metadata": { "annotations": {
        "windflow.io/changed-by": "{\"username\":\"alice\",\"login\":\"alice\"}",
        "windflow.io/created-by": "{\"username\":\"bob\",\"login\":\"bob\"}" } },
        "spec": { "crossCluster": false } })
    .to_string();
    patch_frontend("bob", &forged);
    let edited = networks.get("frontend").await.expect("frontend");
    assert_eq!(recorded(&edited, "windflow.io/changed-by")["username"], "bob", "the forged record was replaced");
    assert_eq!(recorded(&edited, "windflow.io/created-by")["username"], "alice", "the creator stays");
    audited(&db.pool, "frontend", ("update", Some("bob"), Some("bob"))).await;

    // Argo CD's ServiceAccount maps to the platform User it is configured for.
    let bot = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "User", "metadata": { "name": "platform-bot" },
                      "spec": { "email": "bot@platform.example" } });
    assert!(apply_as(plane, "alice", &[], &bot).status.success());
    let synced = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Tag", "metadata": { "name": "synced" },
                         "spec": { "color": "#00aa00" } });
    let output = apply_as(plane, ARGO_CD, &["system:serviceaccounts", "system:serviceaccounts:argocd"], &synced);
    assert!(output.status.success(), "{}", both(&output));
    audited(&db.pool, "synced", ("create", Some(ARGO_CD), Some("platform-bot"))).await;

    // Rollouts: mallory cannot name alice; carol has no Policy; erin, a superadmin, may; a
    // platform group may name another User.
    let output = apply_as(plane, "mallory", &[], &deployment("by-mallory", "alice"));
    assert!(!output.status.success(), "mallory triggered as alice");
    assert!(both(&output).contains("may not trigger a rollout as User \"alice\""), "{}", both(&output));

    for user in [
        json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "User", "metadata": { "name": "carol" }, "spec": { "email": "carol@acme.example" } }),
        json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "User", "metadata": { "name": "erin" }, "spec": { "email": "erin@platform.example", "isSuperadmin": true } }),
    ] {
        assert!(apply_as(plane, "alice", &[], &user).status.success());
    }
    let members = json!({ "spec": { "members": [
        { "user": "alice", "role": "owner", "isDefault": true }, { "user": "bob", "role": "viewer" },
        { "user": "carol", "role": "member" } ] } })
    .to_string();
    let output =
        kubectl_as(plane, "alice", &[], &["patch", "organization", "acme", "--type=merge", "-p", &members], None);
    assert!(output.status.success(), "{}", both(&output));
    let output = apply_as(plane, "carol", &[], &deployment("by-carol", "carol"));
    assert!(!output.status.success(), "carol deployed without a Policy");
    assert!(
        both(&output).contains("no active Policy of organization \"acme\" grants User \"carol\""),
        "{}",
        both(&output)
    );
    let output = apply_as(plane, "erin", &[], &deployment("by-erin", "erin"));
    assert!(output.status.success(), "the superadmin: {}", both(&output));
    let output = apply_as(plane, "ci", &["platform"], &deployment("by-ci", "alice"));
    assert!(output.status.success(), "the platform group: {}", both(&output));
    let deployments: Api<DynamicObject> = Api::namespaced_with(client.clone(), "acme", &resource_of("Deployment"));
    for name in ["by-erin", "by-ci"] {
        eventually(&format!("{name} rolls out"), Duration::from_secs(180), || async {
            let obj = deployments.get(name).await.map_err(|e| e.to_string())?;
            let phase = obj.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
            (phase == "completed").then_some(()).ok_or(format!("{phase} {:?}", readiness(&obj)))
        })
        .await;
    }

    // bob may edit Policies, as RBAC goes, but grants only what he may do himself: binding
    // himself to a Function of everything is refused, and makes no Role. A cluster
    // administrator may; the RoleBinding then names bob's Kubernetes usernames.
    let can_i = |user: &str, verb: &str, resource: &str| {
        let output = kubectl_as(plane, user, &[], &["auth", "can-i", verb, resource, "-n", "acme"], None);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let everything = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Function", "metadata": { "name": "all.everything" },
        "spec": { "grants": [{ "apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "create", "delete"] }] } });
    assert!(apply_as(plane, "alice", &[], &everything).status.success(), "a Function alone grants nothing");
    let grab = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Policy", "metadata": { "name": "grab", "namespace": "acme" },
        "spec": { "rules": [{ "function": "all.everything" }], "subjects": { "users": ["bob"] } } });
    let output = apply_as(plane, "bob", &[], &grab);
    assert!(!output.status.success(), "bob escalated through a Policy");
    let expected = "\"bob\" may not grant what this Policy grants: spec.rules[0] (Function \"all.everything\"): create * (*) in acme";
    assert!(both(&output).contains(expected), "{}", both(&output));
    assert_eq!(can_i("bob", "get", "secrets"), "no");
    // Joining a Group is joining the Policies that name it: bob cannot add himself to a group
    // an administrator granted everything.
    let admins = json!({ "apiVersion": "v1", "kind": "List", "items": [
        { "apiVersion": "windflow.io/v1alpha1", "kind": "Group", "metadata": { "name": "admins", "namespace": "acme" },
          "spec": { "members": ["alice"] } },
        { "apiVersion": "windflow.io/v1alpha1", "kind": "Policy", "metadata": { "name": "admins", "namespace": "acme" },
          "spec": { "rules": [{ "function": "all.everything" }], "subjects": { "groups": ["admins"] } } } ] });
    let output = kubectl_as(plane, "admin", &["system:masters"], &["apply", "-f", "-"], Some(&admins.to_string()));
    assert!(output.status.success(), "{}", both(&output));
    let join = json!({ "spec": { "members": ["alice", "bob"] } }).to_string();
    let output =
        kubectl_as(plane, "bob", &[], &["patch", "group", "admins", "-n", "acme", "--type=merge", "-p", &join], None);
    assert!(!output.status.success(), "bob joined a group of everything");
    let expected = "spec.members: new members of Group \"admins\" get what Policy \"admins\" grants";
    assert!(both(&output).contains(expected), "{}", both(&output));

    let output = kubectl_as(plane, "admin", &["system:masters"], &["apply", "-f", "-"], Some(&grab.to_string()));
    assert!(output.status.success(), "a cluster administrator grants it: {}", both(&output));
    eventually("bob's RoleBinding is made", Duration::from_secs(60), || async {
        (can_i("bob", "get", "secrets") == "yes").then_some(()).ok_or("not yet".to_owned())
    })
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "acme");
    let binding = bindings.get("policy-grab-all.everything").await.expect("its RoleBinding");
    let named: Vec<String> = binding.subjects.unwrap_or_default().into_iter().map(|s| s.name).collect();
    assert_eq!(named, ["bob", "bob@acme.example"]);
    // Widening a Function takes being able to do what it adds, everywhere.
    let widened = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Function", "metadata": { "name": "stack.view" },
        "spec": { "grants": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get"] }] } });
    let output = apply_as(plane, "alice", &[], &widened);
    assert!(!output.status.success(), "alice widened a Function beyond what she may do");
    assert!(both(&output).contains("may not add to Function \"stack.view\" what they may not do cluster-wide: spec.grants: get secrets (core) cluster-wide"), "{}", both(&output));

    // A delete names its deleter. Recording it writes nothing to the object: a delete with a
    // resourceVersion precondition goes through.
    let tags: Api<DynamicObject> = Api::all_with(client.clone(), &resource_of("Tag"));
    let version = tags.get("synced").await.expect("the tag").resource_version().expect("a version");
    let options =
        json!({ "kind": "DeleteOptions", "apiVersion": "v1", "preconditions": { "resourceVersion": version } });
    let path = "/apis/windflow.io/v1alpha1/tags/synced";
    let output = kubectl_as(plane, "alice", &[], &["delete", "--raw", path, "-f", "-"], Some(&options.to_string()));
    assert!(output.status.success(), "{}", both(&output));
    audited(&db.pool, "synced", ("delete", Some("alice"), Some("alice"))).await;

    // Nobody names a deleter on an object: what alice writes there is removed.
    let forged = json!({ "metadata": { "annotations": {
        "windflow.io/deleted-by": json!({ "username": "bob", "login": "bob" }).to_string() } } })
    .to_string();
    let patch = ["patch", "network", "frontend", "-n", "acme", "--type=merge", "-p", forged.as_str()];
    let output = kubectl_as(plane, "alice", &[], &patch, None);
    assert!(output.status.success(), "{}", both(&output));
    let frontend = networks.get("frontend").await.expect("frontend");
    assert_eq!(recorded(&frontend, "windflow.io/deleted-by"), Value::Null, "a deleter a client sent");

    // Quotas and suspension, at `kubectl apply`: a fourth application is beyond a quota of
    // three; a rollout of a suspended environment's stack is refused, saying why.
    let patch_as_alice = |kind: &str, name: &str, namespaced: bool, spec: Value| {
        let patch = json!({ "spec": spec }).to_string();
        let mut args = vec!["patch", kind, name, "--type=merge", "-p", patch.as_str()];
        if namespaced {
            args.extend(["-n", "acme"]);
        }
        let output = kubectl_as(plane, "alice", &[], &args, None);
        assert!(output.status.success(), "{}", both(&output));
    };
    patch_as_alice("organization", "acme", false, json!({ "quotas": { "applications": 3 } }));
    let extra = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Application", "metadata": { "name": "extra", "namespace": "acme" },
        "spec": { "stackRef": { "name": "shop" }, "applicationType": "container", "deploymentConfig": { "image": "nginx" } } });
    let output = apply_as(plane, "alice", &[], &extra);
    assert!(!output.status.success(), "an application beyond the quota");
    let expected = "Organization acme's quota applications is 3: with this Application it would use 4";
    assert!(both(&output).contains(expected), "{}", both(&output));
    patch_as_alice("organization", "acme", false, json!({ "quotas": null }));
    patch_as_alice("environment", "production", true, json!({ "isActive": false }));
    let output = apply_as(plane, "alice", &[], &deployment("while-suspended", "alice"));
    assert!(!output.status.success(), "a rollout of a suspended environment");
    let expected = "Environment acme/production is suspended (isActive: false): stack shop takes no rollout";
    assert!(both(&output).contains(expected), "{}", both(&output));
    patch_as_alice("environment", "production", true, json!({ "isActive": true }));

    // The webhook goes down (the standby stops; the leader still reconciles). Changes fail
    // (failurePolicy Fail); deletes go through unrecorded (Ignore) and the operator finishes them.
    // The standby counted what it answered: mallory's, carol's and the suspended rollout's
    // refusals among them.
    let metrics = get(&standby_metrics, "/metrics");
    // What the dashboard and the alerts query, the leader reconciling and the standby admitting.
    crate::platform::dashboard_and_alerts_query_what_is_exported(&(get(&leader_metrics, "/metrics") + &metrics));
    let refused = "windflow_admission_reviews_total{webhook=\"validate\",kind=\"Deployment\",allowed=\"false\"} 3";
    assert!(metrics.contains(refused), "{metrics}");
    assert!(metrics.contains("windflow_admission_review_duration_seconds_count{webhook=\"mutate\"}"), "{metrics}");
    standby.kill();
    let late = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Tag", "metadata": { "name": "late" },
                       "spec": { "color": "#aa0000" } });
    let output = apply_as(plane, "alice", &[], &late);
    assert!(!output.status.success(), "a change went through without the webhook");
    assert!(both(&output).contains("failed calling webhook"), "{}", both(&output));
    let output =
        kubectl_as(plane, "alice", &[], &["delete", "network", "frontend", "-n", "acme", "--wait=false"], None);
    assert!(output.status.success(), "a delete while the webhook is down: {}", both(&output));
    gone(&networks, "frontend", Duration::from_secs(60)).await;
    audited(&db.pool, "frontend", ("delete", None, None)).await;

    // With deletes on Fail, they are refused while the webhook is down; with changes on
    // Ignore, changes are admitted unrecorded, and a rollout so created does not start.
    let policy = |path: &str, value: &str| -> Patch<()> {
        let patch = json!([{ "op": "replace", "path": path, "value": value }]);
        Patch::Json(serde_json::from_value(patch).expect("a JSON patch"))
    };
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let params = PatchParams::default();
    validating.patch("windflow", &params, &policy("/webhooks/1/failurePolicy", "Fail")).await.expect("deletes fail");
    let output = kubectl_as(plane, "alice", &[], &["delete", "network", "backend", "-n", "acme", "--wait=false"], None);
    assert!(!output.status.success(), "a delete went through a Fail policy without the webhook");
    assert!(networks.get_opt("backend").await.expect("get").is_some());
    validating.patch("windflow", &params, &policy("/webhooks/0/failurePolicy", "Ignore")).await.expect("ignore");
    mutating.patch("windflow", &params, &policy("/webhooks/0/failurePolicy", "Ignore")).await.expect("ignore");
    let output = apply_as(plane, "alice", &[], &late);
    assert!(output.status.success(), "Ignore admits changes: {}", both(&output));
    audited(&db.pool, "late", ("create", None, None)).await;
    // A Policy admitted unrecorded makes no Role: nobody checked what it grants.
    let unchecked = json!({ "apiVersion": "windflow.io/v1alpha1", "kind": "Policy",
        "metadata": { "name": "unchecked", "namespace": "acme" },
        "spec": { "rules": [{ "function": "all.everything" }], "subjects": { "users": ["bob"] } } });
    let output = apply_as(plane, "alice", &[], &unchecked);
    assert!(output.status.success(), "Ignore admits Policies: {}", both(&output));
    let policies: Api<DynamicObject> = Api::namespaced_with(client.clone(), "acme", &resource_of("Policy"));
    eventually("the unrecorded Policy is held", Duration::from_secs(60), || async {
        let (status, reason) = readiness(&policies.get("unchecked").await.map_err(|e| e.to_string())?);
        (status == "False" && reason == "NotAuthorized").then_some(()).ok_or(format!("{status} {reason}"))
    })
    .await;
    let roles: Api<Role> = Api::namespaced(client.clone(), "acme");
    assert!(roles.get_opt("policy-unchecked-all.everything").await.expect("get").is_none(), "a Role nobody checked");
    let output = apply_as(plane, "alice", &[], &deployment("unrecorded", "alice"));
    assert!(output.status.success(), "Ignore admits rollouts: {}", both(&output));
    eventually("the unrecorded rollout is held", Duration::from_secs(60), || async {
        let obj = deployments.get("unrecorded").await.map_err(|e| e.to_string())?;
        let (status, reason) = readiness(&obj);
        let phase = obj.data["status"]["phase"].as_str().unwrap_or_default().to_owned();
        (status == "False" && reason == "NotAuthorized" && phase == "pending")
            .then_some(())
            .ok_or(format!("{phase} {status} {reason}"))
    })
    .await;
    drop(leader);
}
