//! WindFlow: a multi-tenant deployment platform as a Kubernetes operator.
//!
//! `api` holds the CRD types; `mirror` turns objects into rows of the seed's schema;
//! `provision` builds and applies the Kubernetes objects they ask for; `reconcile` is the
//! controller pipeline; `cli`, `operator` and `telemetry` are the binary's.

pub mod admission;
pub mod api;
pub mod check;
pub mod cli;
pub mod deploy;
pub mod events;
pub mod kinds;
pub mod metrics;
pub mod mirror;
pub mod operator;
pub mod provision;
pub mod rbac;
pub mod reconcile;
pub mod render;
pub mod telemetry;
pub mod validate;

use std::path::Path;

/// The field manager of every write the operator makes, and the actor it is not.
pub const FIELD_MANAGER: &str = "windflow-operator";

/// Every CRD as one YAML stream, in the order `kubectl apply` should see them.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in kinds::crds() {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
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
