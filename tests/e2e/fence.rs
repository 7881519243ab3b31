//! The chart's ValidatingAdmissionPolicy fences the operator's own ServiceAccount: with its
//! token, Secrets, Roles and RoleBindings are written only in WindFlow's namespaces.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::install::{RELEASE_NAMESPACE, eventually, install_chart};

fn secret(name: &str, type_: &str) -> Secret {
    serde_json::from_value(json!({ "metadata": { "name": name }, "type": type_, "stringData": { "k": "v" } }))
        .expect("a Secret")
}

/// Whether `result` was refused by the fence, else what happened.
fn fenced<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Result<(), String> {
    match result {
        Err(kube::Error::Api(status)) if status.message.contains("WindFlow operator fence") => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test]
async fn the_operators_token_writes_secrets_and_roles_only_in_windflows_namespaces() {
    let (_turn, plane) = crate::turn().await;
    let operator = crate::controlplane::client_from(&install_chart(plane).await).await;
    let admin = plane.client().await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for (name, labels) in [("fence-tenant", json!({ "windflow.io/organization": "fence" })), ("fence-plain", json!({}))]
    {
        let namespace = json!({ "metadata": { "name": name, "labels": labels } });
        let namespace: Namespace = serde_json::from_value(namespace).expect("a Namespace");
        namespaces.create(&PostParams::default(), &namespace).await.expect("a namespace");
    }
    let secrets = |namespace: &str| Api::<Secret>::namespaced(operator.clone(), namespace);
    let create = PostParams::default();

    // Outside WindFlow's namespaces, its ClusterRole's grant is fenced (the policy may take a
    // moment to be served).
    eventually("the fence refuses a Secret in kube-system", Duration::from_secs(30), || async {
        fenced(secrets("kube-system").create(&create, &secret("stolen", "Opaque")).await)
    })
    .await;
    fenced(secrets("fence-plain").create(&create, &secret("stolen", "Opaque")).await).expect("a plain namespace");
    let role: Role = serde_json::from_value(json!({ "metadata": { "name": "stolen" }, "rules": [] })).expect("a Role");
    fenced(Api::<Role>::namespaced(operator.clone(), "kube-system").create(&create, &role).await).expect("a Role");

    // In a tenant's namespace and its own, what the operator writes goes through; a
    // ServiceAccount token Secret never does.
    secrets("fence-tenant").create(&create, &secret("windflow-database", "Opaque")).await.expect("a tenant's");
    Api::<Role>::namespaced(operator.clone(), "fence-tenant").create(&create, &role).await.expect("a tenant's Role");
    secrets(RELEASE_NAMESPACE).create(&create, &secret("fence-own", "Opaque")).await.expect("its own namespace");
    let token = json!({ "metadata": { "name": "minted", "annotations": { "kubernetes.io/service-account.name": "default" } },
                        "type": "kubernetes.io/service-account-token" });
    let token: Secret = serde_json::from_value(token).expect("a token Secret");
    fenced(secrets("fence-tenant").create(&create, &token).await).expect("a token Secret");

    // It cannot make a namespace a tenant's, unless an administrator handed it over.
    let as_tenant = |annotations: Value| {
        Patch::Merge(
            json!({ "metadata": { "labels": { "windflow.io/organization": "fence" }, "annotations": annotations } }),
        )
    };
    let operator_namespaces: Api<Namespace> = Api::all(operator.clone());
    let params = PatchParams::default();
    fenced(operator_namespaces.patch("kube-system", &params, &as_tenant(json!({}))).await).expect("kube-system");
    let handed = json!({ "windflow.io/adopt": "Organization/fence" });
    fenced(operator_namespaces.patch("fence-plain", &params, &as_tenant(handed.clone())).await).expect("adopt itself");
    namespaces
        .patch("fence-plain", &params, &Patch::Merge(json!({ "metadata": { "annotations": handed } })))
        .await
        .expect("handed over");
    operator_namespaces.patch("fence-plain", &params, &as_tenant(json!({}))).await.expect("an adopted namespace");

    let admin_secrets: Api<Secret> = Api::namespaced(admin, RELEASE_NAMESPACE);
    admin_secrets.delete("fence-own", &DeleteParams::default()).await.expect("cleaned up");
    for name in ["fence-tenant", "fence-plain"] {
        namespaces.delete(name, &DeleteParams::default()).await.expect("cleaned up");
    }
}
