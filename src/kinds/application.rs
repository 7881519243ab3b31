//! Application → Deployment + Service (container), or a KubeVirt VirtualMachine (vm).

use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::network::attachment_label;
use serde::Serialize;
use uuid::Uuid;

use super::release::{self, Release, WorkloadPlan};
use super::shared::*;
use super::vm::Machine;
use super::{Inputs, Kind, KindId};
use crate::api::apps::*;
use crate::api::common::*;
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::*;
use crate::provision::{Anchor, Placement, ProvisionError, Result, labels};

pub use crate::api::apps::Application;

pub static VOLUME_APPLICATIONS: JoinTable = JoinTable {
    table: "volume_applications",
    owner: "application_id",
    key: &["volume_id", "mount_path"],
    values: &["mount_options"],
};
pub static NETWORK_APPLICATIONS: JoinTable = JoinTable {
    table: "network_applications",
    owner: "application_id",
    key: &["network_id"],
    values: &["ip_address", "connection_config"],
};

/// A `applications` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct ApplicationRow<'a> {
    name: String,
    description: Option<&'a str>,
    stack_id: Uuid,
    application_type: &'a ApplicationType,
    plugin_name: Option<&'a str>,
    plugin_version: Option<&'a str>,
    deployment_config: &'a FreeForm,
    allocated_resources: &'a FreeForm,
}

/// A `volume_applications` row's own columns.
#[derive(Serialize)]
struct Mount<'a> {
    mount_path: &'a str,
    mount_options: &'a FreeForm,
}

/// A `network_applications` row's own columns.
#[derive(Serialize)]
struct Connection<'a> {
    ip_address: Option<&'a str>,
    connection_config: &'a FreeForm,
}

impl Kind for Application {
    const ID: KindId = KindId::Application;
    const TABLE: &'static str = "applications";
    const CHILD_TYPES: &'static [ChildType] = &[DEPLOYMENT, SERVICE, VIRTUAL_MACHINE];
    const STATUS_COLUMNS: &'static [StatusColumn] =
        &[StatusColumn { field: "deploymentStatus", column: "deployment_status", default: Some("pending") }];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        std::iter::once(Reference::new(KindId::Stack, &spec.stack_ref.name, "spec.stackRef"))
            .chain(
                spec.volumes
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Reference::new(KindId::Volume, &v.volume, format!("spec.volumes[{i}].volume"))),
            )
            .chain(
                spec.networks
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Reference::new(KindId::Network, &n.network, format!("spec.networks[{i}].network"))),
            )
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = Reference::new(KindId::Stack, &spec.stack_ref.name, "spec.stackRef");
        let mounts = spec.volumes.iter().enumerate().map(|(i, v)| {
            (
                Reference::new(KindId::Volume, &v.volume, format!("spec.volumes[{i}].volume")),
                Mount { mount_path: &v.mount_path, mount_options: &v.mount_options },
            )
        });
        let connections = spec.networks.iter().enumerate().map(|(i, n)| {
            (
                Reference::new(KindId::Network, &n.network, format!("spec.networks[{i}].network")),
                Connection { ip_address: n.ip_address.as_deref(), connection_config: &n.connection_config },
            )
        });
        Ok(Rows {
            row: columns(&ApplicationRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                stack_id: resolved.id(&stack)?,
                application_type: &spec.application_type,
                plugin_name: spec.plugin_name.as_deref(),
                plugin_version: spec.plugin_version.as_deref(),
                deployment_config: &spec.deployment_config,
                allocated_resources: &spec.allocated_resources,
            })?,
            joins: vec![
                linked(&VOLUME_APPLICATIONS, mounts, resolved)?,
                linked(&NETWORK_APPLICATIONS, connections, resolved)?,
            ],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Stack(&self.spec.stack_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        let plan = release::plan(self, inputs.index)?;
        match self.spec.application_type {
            ApplicationType::Container => self.container(namespace, &plan),
            ApplicationType::Vm => self.machine(namespace, &plan.main.config),
            // A physical application runs on hosts WindFlow does not drive: mirrored only.
            ApplicationType::Physical => Ok(vec![]),
        }
    }

    fn observe(&self, _: &[kube::api::DynamicObject], inputs: &Inputs) -> Map<String, Value> {
        release::application_status(self, inputs.index)
    }
}

/// A container port of `deploymentConfig.ports`: a number, or `{name, port}`.
fn ports(config: &Map<String, Value>) -> Result<Vec<(String, i64)>> {
    let Some(list) = config.get("ports") else { return Ok(vec![]) };
    let invalid = || ProvisionError::invalid("spec.deploymentConfig.ports", "a list of port numbers or {name, port}");
    list.as_array()
        .ok_or_else(invalid)?
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let number = port.as_i64().or_else(|| port.get("port").and_then(Value::as_i64)).ok_or_else(invalid)?;
            if !(1..=65535).contains(&number) {
                return Err(ProvisionError::invalid(
                    &format!("spec.deploymentConfig.ports[{i}]"),
                    format!("{number} is not a port (1-65535)"),
                ));
            }
            let name = port.get("name").and_then(Value::as_str).map_or_else(|| format!("port-{number}"), str::to_owned);
            Ok((name, number))
        })
        .collect()
}

impl Application {
    fn container(&self, namespace: &str, plan: &WorkloadPlan) -> Result<Vec<Value>> {
        let name = self.name_any();
        let mut children = vec![self.workload(namespace, &name, &plan.main, plan.main_replicas, plan)?];
        if let Some((suffix, release, replicas)) = &plan.side {
            children.push(self.workload(namespace, &format!("{name}-{suffix}"), release, Some(*replicas), plan)?);
        }
        // The Service serves the ports of the revision it selects.
        let served = match &plan.service_revision {
            Some(revision) if *revision != plan.main.revision => plan.side.as_ref().map_or(&plan.main, |side| &side.1),
            _ => &plan.main,
        };
        let ports = ports(&served.config.0)?;
        if !ports.is_empty() {
            let mut selector = Map::from_iter([(labels::APPLICATION.to_owned(), Value::from(name.as_str()))]);
            if let Some(revision) = &plan.service_revision {
                selector.insert(release::REVISION_LABEL.into(), revision.as_str().into());
            }
            children.push(SERVICE.object(
                Some(namespace),
                &name,
                json!({ "spec": {
                    "selector": selector,
                    "ports": ports.iter().map(|(port_name, port)| json!({ "name": port_name, "port": port, "targetPort": port })).collect::<Vec<_>>(),
                } }),
            ));
        }
        Ok(children)
    }

    /// One apps/v1 Deployment of `release`, named `name`; its pods carry the revision.
    fn workload(
        &self,
        namespace: &str,
        name: &str,
        release: &Release,
        replicas: Option<i64>,
        plan: &WorkloadPlan,
    ) -> Result<Value> {
        let config = &release.config;
        let application = self.name_any();
        let image = text(config, "image").ok_or_else(|| {
            ProvisionError::invalid("spec.deploymentConfig.image", "a container application names its image")
        })?;
        let replicas = replicas.unwrap_or_else(|| config.0.get("replicas").and_then(Value::as_i64).unwrap_or(1));
        let ports = ports(&config.0)?;
        // The selector is immutable: it names the workload, not the revision.
        let mut selector = Map::from_iter([(labels::APPLICATION.to_owned(), Value::from(application.as_str()))]);
        if name != application {
            selector.insert(labels::WORKLOAD.into(), name.into());
        }
        let mut pod_labels = selector.clone();
        pod_labels.insert(release::REVISION_LABEL.into(), release.revision.as_str().into());
        for network in &self.spec.networks {
            pod_labels.insert(attachment_label(&network.network), "true".into());
        }
        let mut container = json!({
            "name": application,
            "image": image,
            "ports": ports.iter().map(|(port_name, port)| json!({ "name": port_name, "containerPort": port })).collect::<Vec<_>>(),
            "env": env(config),
            "volumeMounts": self.spec.volumes.iter()
                .map(|mount| json!({ "name": mount.volume, "mountPath": mount.mount_path }))
                .collect::<Vec<_>>(),
        });
        if !self.spec.allocated_resources.0.is_empty() {
            let resources = self.spec.allocated_resources.to_value();
            container["resources"] = json!({ "requests": resources, "limits": resources });
        }
        let volumes: Vec<Value> = self
            .spec
            .volumes
            .iter()
            .map(|mount| json!({ "name": mount.volume, "persistentVolumeClaim": { "claimName": mount.volume } }))
            .collect();
        let mut spec = json!({
            "replicas": replicas,
            "selector": { "matchLabels": selector },
            "template": {
                "metadata": { "labels": pod_labels },
                "spec": { "containers": [container], "volumes": volumes },
            },
        });
        if let Some(settings) = &plan.settings {
            spec["strategy"] = json!({ "type": "RollingUpdate", "rollingUpdate": {
                "maxSurge": settings.max_surge, "maxUnavailable": settings.max_unavailable } });
            spec["progressDeadlineSeconds"] = json!(settings.progress_deadline_seconds);
        }
        Ok(DEPLOYMENT.object(Some(namespace), name, json!({ "spec": spec })))
    }

    fn machine(&self, namespace: &str, config: &FreeForm) -> Result<Vec<Value>> {
        let number = |key: &str| {
            config.0.get(key).and_then(Value::as_f64).ok_or_else(|| {
                ProvisionError::invalid(&format!("spec.deploymentConfig.{key}"), "a vm application sets it (a number)")
            })
        };
        let volumes: Vec<String> = self.spec.volumes.iter().map(|mount| mount.volume.clone()).collect();
        let machine = Machine {
            cpu_cores: number("cpuCores")? as i32,
            memory_gb: number("memoryGb")?,
            disk_gb: number("diskGb")?,
            os: config.0.get("osType").cloned().unwrap_or_else(|| "linux".into()),
            os_version: text(config, "osVersion").map(str::to_owned),
            config,
            config_field: "spec.deploymentConfig",
            volumes: &volumes,
            networks: self.spec.networks.iter().map(|n| n.network.clone()).collect(),
        };
        Ok(vec![machine.virtual_machine(namespace, &self.name_any())?])
    }
}

/// `deploymentConfig.env` as container environment variables.
fn env(config: &FreeForm) -> Vec<Value> {
    config
        .0
        .get("env")
        .and_then(Value::as_object)
        .map(|env| {
            env.iter()
                .map(|(key, value)| {
                    let value = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                    json!({ "name": key, "value": value })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The port an application's Service serves first, for routes that name no port.
pub(super) fn first_port(application: &Application) -> Option<i64> {
    ports(&application.spec.deployment_config.0).ok()?.first().map(|(_, port)| *port)
}
