//! WindFlow: a multi-tenant deployment platform as a Kubernetes operator.
//!
//! `kinds` is the registry: each kind's module holds its CRD types and what WindFlow does with
//! it. Below it, the machinery that knows no kind: `mirror` turns objects into rows of the
//! seed's schema, `provision` applies the Kubernetes objects they ask for, `deploy` is the
//! rollout state machine. Above it, `reconcile` is the controller pipeline; `cli`, `operator`
//! and `telemetry` are the binary's.

// Defined before the modules, so that the kinds and the rollout's terms can use it.
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

pub mod admission;
pub mod check;
pub mod cli;
pub mod deploy;
pub mod events;
pub mod free_form;
pub mod kinds;
pub mod metrics;
pub mod mirror;
pub mod operator;
pub mod provision;
pub mod rbac;
pub mod reason;
pub mod reconcile;
pub mod render;
pub mod telemetry;
pub mod validate;

use std::fmt::Display;
use std::path::Path;

use serde_json::Value;

/// The field manager of every write the operator makes, and the actor it is not.
pub const FIELD_MANAGER: &str = "windflow-operator";

/// `config` naming the operator in its User-Agent, `windflow-operator/<version>`. The API server
/// names the field manager of a write that sets none (the finalizers kube-runtime adds, Events)
/// after the User-Agent: so every field the operator writes is [`FIELD_MANAGER`]'s, and audit
/// logs name it.
pub fn identified(mut config: kube::Config) -> kube::Config {
    if let Ok(agent) = http::HeaderValue::from_str(&format!("{FIELD_MANAGER}/{}", env!("CARGO_PKG_VERSION"))) {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    config
}

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

/// Every CRD as one YAML stream, in the order `kubectl apply` should see them.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in kinds::crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}

/// The field manager of the CRDs `windflow crds --apply` applies.
pub const CRD_FIELD_MANAGER: &str = "windflow-crds";

/// Server-side applies every CRD, forcing its fields back from whoever set them (an install of
/// `crds/`, `kubectl apply`): an upgrade serves the new fields before the new operator starts.
pub async fn apply_crds(client: kube::Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client);
    let params = kube::api::PatchParams::apply(CRD_FIELD_MANAGER).force();
    for crd in kinds::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &kube::api::Patch::Apply(&crd)).await?;
        tracing::info!(crd = %name, "applied");
    }
    Ok(())
}

/// Checks an installed WindFlow: `readyz` answers 200, and the API server serves every kind.
pub async fn self_test(client: kube::Client, readyz: &str) -> anyhow::Result<()> {
    use http_body_util::BodyExt;
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri: http::Uri = readyz.parse()?;
    let answer = match tokio::time::timeout(std::time::Duration::from_secs(10), http.get(uri)).await {
        Err(_) => anyhow::bail!("{readyz} did not answer within 10 s"),
        Ok(Err(error)) => anyhow::bail!("{readyz} does not answer: {error}"),
        Ok(Ok(answer)) => answer,
    };
    let status = answer.status();
    let body = answer.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "{readyz} answered {status}: {}", String::from_utf8_lossy(&body));
    println!("{readyz}: {}", String::from_utf8_lossy(&body));
    let served = kube::discovery::group(&client, kinds::common::GROUP).await?;
    let kinds: Vec<String> = served.recommended_resources().into_iter().map(|(resource, _)| resource.kind).collect();
    let missing: Vec<String> =
        kinds::crds().into_iter().map(|crd| crd.spec.names.kind).filter(|kind| !kinds.contains(kind)).collect();
    anyhow::ensure!(missing.is_empty(), "the API server does not serve {}", missing.join(", "));
    println!("every WindFlow kind is served ({})", kinds.len());
    Ok(())
}

/// Writes one `<name>.yaml` file per CRD into `dir`.
pub fn write_crds(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for crd in kinds::crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        std::fs::write(dir.join(format!("{name}.yaml")), serde_yaml::to_string(&crd)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The API server takes the User-Agent up to its first `/` as the field manager.
    #[test]
    fn the_user_agent_names_the_field_manager() {
        let config = super::identified(kube::Config::new("https://example.org".parse().expect("a URL")));
        let agent = config.headers.iter().find(|(name, _)| name == http::header::USER_AGENT).map(|(_, value)| value);
        let agent = agent.and_then(|value| value.to_str().ok()).expect("a User-Agent");
        assert_eq!(agent.split('/').next(), Some(super::FIELD_MANAGER));
    }
}
