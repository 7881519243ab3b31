//! VM → KubeVirt VirtualMachine; ContainerCluster (kubernetes mode) → Cluster API Cluster.

use kube::ResourceExt;
use serde_json::{Value, json};

use super::network::attachment_label;
use super::types::{CAPI_CLUSTER, VIRTUAL_MACHINE};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, gigabytes, text};
use crate::api::common::FreeForm;
use crate::api::infra::{ClusterMode, NetworkAttachment};
use crate::api::{ContainerCluster, VM};

impl Provisioned for VM {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let machine = Machine {
            cpu_cores: self.spec.cpu_cores,
            memory_gb: self.spec.memory_gb,
            disk_gb: self.spec.disk_gb,
            os: serde_json::to_value(self.spec.os_type).unwrap_or_default(),
            os_version: self.spec.os_version.clone(),
            config: &self.spec.vm_config,
            config_field: "spec.vmConfig",
            volumes: &self.spec.volumes,
            networks: self.spec.networks.iter().map(|n: &NetworkAttachment| n.network.clone()).collect(),
        };
        Ok(vec![machine.virtual_machine(placement.workload_namespace(), &self.name_any())?])
    }
}

/// What a KubeVirt VirtualMachine is made of, from a VM or a `vm` Application.
pub(super) struct Machine<'a> {
    pub cpu_cores: i32,
    pub memory_gb: f64,
    pub disk_gb: f64,
    pub os: Value,
    pub os_version: Option<String>,
    /// `powerState` (running, stopped) and `image` (a container disk image to boot from).
    pub config: &'a FreeForm,
    pub config_field: &'a str,
    /// Volumes attached as extra disks (their claims have the volume's name).
    pub volumes: &'a [String],
    pub networks: Vec<String>,
}

impl Machine<'_> {
    pub fn virtual_machine(&self, namespace: &str, name: &str) -> Result<Value> {
        let run_strategy = match text(self.config, "powerState").unwrap_or("running") {
            "running" => "Always",
            "stopped" => "Halted",
            other => {
                return Err(ProvisionError::invalid(
                    &format!("{}.powerState", self.config_field),
                    format!("{other:?} is not running or stopped"),
                ));
            }
        };
        let root = format!("{name}-root");
        let source = match text(self.config, "image") {
            Some(image) => json!({ "registry": { "url": format!("docker://{image}") } }),
            None => json!({ "blank": {} }),
        };
        let mut disks = vec![json!({ "name": "root", "disk": { "bus": "virtio" } })];
        let mut volumes = vec![json!({ "name": "root", "dataVolume": { "name": root } })];
        for volume in self.volumes {
            disks.push(json!({ "name": volume, "disk": { "bus": "virtio" } }));
            volumes.push(json!({ "name": volume, "persistentVolumeClaim": { "claimName": volume } }));
        }
        let mut pod_labels = serde_json::Map::new();
        pod_labels.insert("kubevirt.io/vm".into(), name.into());
        for network in &self.networks {
            pod_labels.insert(attachment_label(network), "true".into());
        }
        let mut os_labels = json!({ "kubevirt.io/os": self.os });
        if let Some(version) = &self.os_version {
            os_labels["windflow.io/os-version"] = version.as_str().into();
        }
        let mut object = VIRTUAL_MACHINE.object(
            Some(namespace),
            name,
            json!({ "spec": {
                "runStrategy": run_strategy,
                "dataVolumeTemplates": [{
                    "metadata": { "name": root },
                    "spec": { "storage": { "resources": { "requests": { "storage": gigabytes(self.disk_gb) } } }, "source": source },
                }],
                "template": {
                    "metadata": { "labels": pod_labels },
                    "spec": {
                        "domain": {
                            "cpu": { "cores": self.cpu_cores },
                            "memory": { "guest": gigabytes(self.memory_gb) },
                            "devices": { "disks": disks },
                        },
                        "volumes": volumes,
                    },
                },
            } }),
        );
        object["metadata"]["labels"] = os_labels;
        Ok(object)
    }
}

impl Provisioned for ContainerCluster {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    /// A Cluster API Cluster from `clusterConfig.class` (a ClusterClass) in kubernetes mode.
    /// A cluster given by `clusterConfig.kubeconfigSecret`, and docker and swarm engines, exist
    /// already: nothing is provisioned for them.
    fn desired(&self, placement: &Placement, _: &Inputs) -> Result<Vec<Value>> {
        let config = &self.spec.cluster_config;
        if self.spec.cluster_mode != ClusterMode::Kubernetes || text(config, "kubeconfigSecret").is_some() {
            return Ok(vec![]);
        }
        let class = text(config, "class").ok_or_else(|| {
            ProvisionError::invalid(
                "spec.clusterConfig.class",
                "a kubernetes cluster names its Cluster API ClusterClass (or an existing cluster's kubeconfigSecret)",
            )
        })?;
        let version = self.spec.version.as_deref().ok_or_else(|| {
            ProvisionError::invalid("spec.version", "a Cluster API cluster needs its Kubernetes version")
        })?;
        let workers = config.0.get("workers").and_then(Value::as_i64).unwrap_or(1);
        let worker_class = text(config, "workerClass").unwrap_or("default-worker");
        Ok(vec![CAPI_CLUSTER.object(
            Some(placement.workload_namespace()),
            &self.name_any(),
            json!({ "spec": { "topology": {
                "class": class,
                "version": version,
                "controlPlane": { "replicas": if self.spec.ha_enabled { 3 } else { 1 } },
                "workers": { "machineDeployments": [{ "class": worker_class, "name": "md-0", "replicas": workers }] },
            } } }),
        )])
    }
}
