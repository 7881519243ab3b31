//! Application → Deployment + Service (container), or a KubeVirt VirtualMachine (vm).

use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::compute::Machine;
use super::network::attachment_label;
use super::types::{DEPLOYMENT, SERVICE};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, labels, text};
use crate::api::Application;
use crate::api::apps::ApplicationType;

impl Provisioned for Application {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Stack(&self.spec.stack_ref.name)
    }

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        match self.spec.application_type {
            ApplicationType::Container => self.container(namespace),
            ApplicationType::Vm => self.machine(namespace),
            // A physical application runs on hosts WindFlow does not drive: mirrored only.
            ApplicationType::Physical => Ok(vec![]),
        }
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
    fn container(&self, namespace: &str) -> Result<Vec<Value>> {
        let config = &self.spec.deployment_config;
        let name = self.name_any();
        let image = text(config, "image").ok_or_else(|| {
            ProvisionError::invalid("spec.deploymentConfig.image", "a container application names its image")
        })?;
        let replicas = config.0.get("replicas").and_then(Value::as_i64).unwrap_or(1);
        let ports = ports(&config.0)?;
        let selector = json!({ labels::APPLICATION: name });
        let mut pod_labels = Map::new();
        pod_labels.insert(labels::APPLICATION.into(), name.as_str().into());
        for network in &self.spec.networks {
            pod_labels.insert(attachment_label(&network.network), "true".into());
        }
        let env: Vec<Value> = config
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
            .unwrap_or_default();
        let mut container = json!({
            "name": name,
            "image": image,
            "ports": ports.iter().map(|(port_name, port)| json!({ "name": port_name, "containerPort": port })).collect::<Vec<_>>(),
            "env": env,
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
        let mut children = vec![DEPLOYMENT.object(
            Some(namespace),
            &name,
            json!({ "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": selector },
                "template": {
                    "metadata": { "labels": pod_labels },
                    "spec": { "containers": [container], "volumes": volumes },
                },
            } }),
        )];
        if !ports.is_empty() {
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

    fn machine(&self, namespace: &str) -> Result<Vec<Value>> {
        let config = &self.spec.deployment_config;
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

/// The port an application's Service serves first, for routes that name no port.
pub(super) fn first_port(application: &Application) -> Option<i64> {
    ports(&application.spec.deployment_config.0).ok()?.first().map(|(_, port)| *port)
}
