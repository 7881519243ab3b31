//! Who may roll a stack out, one table of cases decided three ways that must agree: the rule
//! the rollout controller applies on its caches, the admission webhook answering an
//! AdmissionReview, and the SQL function `create_deployment` on the mirrored rows.

mod support;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde_json::{Value, json};
use support::{Cluster, database, documents, platform, stored};
use windflow::admission::{Access, Settings, review};
use windflow::kinds::Index;
use windflow::kinds::deployment::Deployment;
use windflow::kinds::function::Permission;
use windflow::kinds::policy::deploying::{self, Decision, Refusal};

/// How a case ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Allowed,
    /// Refused; the SQL function says so with this text.
    Refused(&'static str),
    /// The User does not exist: admission and the controller wait for it (GitOps applies in any
    /// order), the SQL function, which has no such leeway, refuses.
    Waits,
}

const CASES: &[(&str, Expected, &str)] = &[
    ("alice", Expected::Allowed, "owner, Policy deployers on production"),
    ("grace", Expected::Allowed, "member through the Group platform-team of deployers"),
    ("judy", Expected::Allowed, "a rule on the element k8s"),
    ("erin", Expected::Allowed, "superadmin, no member of acme"),
    ("bob", Expected::Refused("deploying needs owner, admin or member"), "viewer, although in platform-team"),
    ("carol", Expected::Refused("no active Policy"), "member without a Policy"),
    ("dave", Expected::Refused("no active Policy"), "a rule on staging only"),
    ("frank", Expected::Refused("is not active"), "inactive, with a Policy"),
    ("heidi", Expected::Refused("no active Policy"), "a Function that only views"),
    ("ivan", Expected::Refused("no active Policy"), "an inactive Policy"),
    ("mallory", Expected::Refused("is not a member"), "a member of globex only"),
    ("nobody", Expected::Waits, "no such User"),
];

/// The sample, with the fixture's Users and Policies and acme's extra members.
fn platform_with_deployers() -> Vec<Value> {
    let mut docs = platform();
    docs.extend(stored(documents(include_str!("fixtures/deployers.yaml"))));
    for doc in &mut docs {
        if doc["kind"] == "Organization" && doc["metadata"]["name"] == "acme" {
            let members = doc["spec"]["members"].as_array_mut().expect("members");
            for user in ["carol", "dave", "frank", "grace", "heidi", "ivan", "judy"] {
                members.push(json!({ "user": user, "role": "member" }));
            }
        }
        if doc["kind"] == "Group" && doc["metadata"]["name"] == "platform-team" {
            doc["spec"]["members"].as_array_mut().expect("members").push(json!("grace"));
        }
    }
    docs
}

fn deployment_by(user: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "windflow.io/v1alpha1", "kind": "Deployment",
        "metadata": { "name": format!("by-{user}"), "namespace": "acme" },
        "spec": { "stackRef": { "name": "shop" }, "triggeredBy": user },
    }))
    .expect("a Deployment")
}

/// What the controller's rule decides on caches holding `docs`.
async fn by_the_controller(index: &Index, user: &str) -> Decision {
    deploying::decide(index, &deployment_by(user), None, &[]).await.expect("the index always answers")
}

/// What the webhook answers when `user` creates a Deployment naming themselves: the mutating
/// webhook's patch applied, then the validating webhook.
async fn by_admission(index: &Index, user: &str) -> (bool, String, Vec<String>) {
    let settings = Settings::default();
    let mut object = serde_json::to_value(deployment_by(user)).expect("json");
    let request = |object: &Value| -> AdmissionRequest<DynamicObject> {
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "c0ffee", "operation": "CREATE", "name": format!("by-{user}"), "namespace": "acme",
                "kind": { "group": "windflow.io", "version": "v1alpha1", "kind": "Deployment" },
                "resource": { "group": "windflow.io", "version": "v1alpha1", "resource": "deployments" },
                "userInfo": UserInfo { username: Some(user.to_owned()), groups: Some(vec!["system:authenticated".into()]), ..UserInfo::default() },
                "object": object,
            }
        }))
        .expect("a review");
        review.try_into().expect("a request")
    };
    let mutated = review::mutate(&request(&object), &settings);
    let patch: json_patch::Patch = serde_json::from_slice(&mutated.patch.expect("a patch")).expect("a JSON patch");
    json_patch::patch(&mut object, &patch).expect("the patch applies");
    let validated =
        review::validate(&request(&object), &settings, index, &Unasked).await.expect("the index always answers");
    (validated.allowed, validated.result.message, validated.warnings.unwrap_or_default())
}

fn refused_because(decision: &Decision) -> Option<&Refusal> {
    match decision {
        Decision::Refused(refusal) => Some(refusal),
        _ => None,
    }
}

#[tokio::test]
async fn the_controller_admission_and_create_deployment_agree_case_by_case() {
    let docs = platform_with_deployers();
    let db = database().await;
    let mut cluster = Cluster::new(&db.pool);
    cluster.converge(&docs).await;
    sqlx::query("UPDATE stacks SET status = 'ready'").execute(&db.pool).await.expect("a ready stack");
    let stack: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM stacks WHERE name = 'shop'").fetch_one(&db.pool).await.expect("the stack");
    let index = Index::from_documents(&docs);

    for (user, expected, why) in CASES {
        let case = format!("{user} ({why})");
        let decided = by_the_controller(&index, user).await;
        let (admitted, message, warnings) = by_admission(&index, user).await;
        let user_id: uuid::Uuid = sqlx::query_scalar::<_, uuid::Uuid>("SELECT id FROM users WHERE username = $1")
            .bind(user)
            .fetch_optional(&db.pool)
            .await
            .expect("users")
            .unwrap_or_else(uuid::Uuid::new_v4);
        let sql = sqlx::query_scalar::<_, uuid::Uuid>("SELECT create_deployment($1, $2, '{}'::jsonb)")
            .bind(stack)
            .bind(user_id)
            .fetch_one(&db.pool)
            .await;
        match expected {
            Expected::Allowed => {
                assert_eq!(decided, Decision::Allowed, "{case}: the controller");
                assert!(admitted && warnings.is_empty(), "{case}: admission said {message} {warnings:?}");
                assert!(sql.is_ok(), "{case}: create_deployment said {sql:?}");
            }
            Expected::Refused(text) => {
                let refusal = refused_because(&decided).unwrap_or_else(|| panic!("{case}: the controller {decided:?}"));
                assert!(!admitted, "{case}: admission let it through");
                assert_eq!(message, refusal.to_string(), "{case}: admission and the controller say the same");
                let error = sql.expect_err(&case).to_string();
                assert!(error.contains(text), "{case}: create_deployment said {error}");
                let message_of_the_same_kind = match refusal {
                    Refusal::Inactive(_) => "is not active",
                    Refusal::NotMember { .. } => "is not a member",
                    Refusal::Role { .. } => "deploying needs owner, admin or member",
                    Refusal::NotGranted { .. } => "no active Policy",
                    other => panic!("{case}: unexpected refusal {other}"),
                };
                assert_eq!(message_of_the_same_kind, *text, "{case}: the same refusal in Rust and SQL");
                assert!(message.contains(text), "{case}: {message}");
            }
            Expected::Waits => {
                assert!(matches!(decided, Decision::Undecided(_)), "{case}: the controller {decided:?}");
                // Only a platform group or a superadmin may name a User that is not there yet.
                assert!(!admitted, "{case}: admission let a stranger name a missing User");
                let error = sql.expect_err(&case).to_string();
                assert!(error.contains("does not exist"), "{case}: create_deployment said {error}");
            }
        }
    }
}

#[tokio::test]
async fn admission_waits_for_a_missing_user_that_a_platform_member_names() {
    let docs = platform_with_deployers();
    let index = Index::from_documents(&docs);
    let settings = Settings { platform_groups: vec!["platform".into()], ..Settings::default() };
    let mut object = serde_json::to_value(deployment_by("nobody")).expect("json");
    object["metadata"]["annotations"] = json!({
        windflow::mirror::actor::CHANGED_BY: windflow::mirror::actor::Actor {
            username: "ci".into(), groups: vec!["platform".into()], login: Some("ci".into())
        }.to_annotation()
    });
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "1", "operation": "CREATE", "name": "by-nobody", "namespace": "acme",
            "kind": { "group": "windflow.io", "version": "v1alpha1", "kind": "Deployment" },
            "resource": { "group": "windflow.io", "version": "v1alpha1", "resource": "deployments" },
            "userInfo": { "username": "ci", "groups": ["platform"] },
            "object": object,
        }
    }))
    .expect("a review");
    let request: AdmissionRequest<DynamicObject> = review.try_into().expect("a request");
    let response = review::validate(&request, &settings, &index, &Unasked).await.expect("answers");
    assert!(response.allowed, "{}", response.result.message);
    let warnings = response.warnings.unwrap_or_default();
    assert!(warnings.iter().any(|w| w.contains("User \"nobody\" does not exist yet")), "{warnings:?}");
}

/// Rollouts ask the index, never the API server's authorizers: what a Policy may grant is
/// asked of a real one (tests/e2e/admission.rs).
struct Unasked;

impl Access for Unasked {
    async fn allows(&self, _: &UserInfo, _: Option<&str>, permission: &Permission) -> Result<bool, kube::Error> {
        panic!("a rollout's review asked whether its requester may {permission:?}")
    }
}
