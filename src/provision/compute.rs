//! VM → KubeVirt VirtualMachine; ContainerCluster (kubernetes mode) → Cluster API Cluster.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::{Map, Value, json};

use super::network::attachment_label;
use super::probe::{ClusterReport, ProbeTarget};
use super::types::{CAPI_CLUSTER, CONTAINER_NODE, VIRTUAL_MACHINE};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, applied_text, gigabytes, phase, text};
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

    /// KubeVirt's `printableStatus`, its summary of the VirtualMachine and its instance.
    fn observe(&self, applied: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        let status = match applied_text(applied, VIRTUAL_MACHINE.kind, "/status/printableStatus") {
            None | Some("Provisioning" | "WaitingForVolumeBinding" | "WaitingForReceiver") => "creating",
            Some("Starting") => "starting",
            Some("Running" | "Migrating") => "running",
            Some("Stopping" | "Terminating") => "stopping",
            Some("Stopped" | "Paused") => "stopped",
            // ErrorUnschedulable, ErrImagePull, CrashLoopBackOff, DataVolumeError, Unknown...
            Some(_) => "error",
        };
        phase(status)
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

    /// kubernetes mode: a Cluster API Cluster from `clusterConfig.class` (a ClusterClass), or,
    /// for an existing cluster (`clusterConfig.kubeconfigSecret`), the nodes it reports. Docker
    /// and swarm engines exist already: the nodes they report.
    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        if let Some(report) = inputs.report {
            return Ok(self.nodes(report));
        }
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

    /// An existing cluster's health; else the Cluster API Cluster's phase.
    fn observe(&self, applied: &[DynamicObject], inputs: &Inputs) -> Map<String, Value> {
        if let Some(report) = inputs.report {
            let status = match report.ready_nodes() {
                ready if ready == report.nodes.len() && ready > 0 => "healthy",
                0 => "unhealthy",
                _ => "degraded",
            };
            let mut observed = phase(status);
            observed.insert("nodeCount".into(), report.nodes.len().into());
            return observed;
        }
        let status = match applied_text(applied, CAPI_CLUSTER.kind, "/status/phase") {
            None => return Map::new(),
            Some("Provisioned") => "healthy",
            Some("Failed") => "unhealthy",
            Some("Deleting") => "maintenance",
            Some(_) => "initializing",
        };
        phase(status)
    }

    /// `clusterConfig.kubeconfigSecret` in kubernetes mode; `endpoint.url` (and
    /// `endpoint.tlsSecret`) in docker and swarm modes.
    fn probe_target(&self) -> Option<Result<ProbeTarget>> {
        let namespace = self.namespace().unwrap_or_default();
        match self.spec.cluster_mode {
            ClusterMode::Kubernetes => text(&self.spec.cluster_config, "kubeconfigSecret")
                .map(|secret| Ok(ProbeTarget::Kubeconfig { namespace, secret: secret.to_owned() })),
            mode @ (ClusterMode::Docker | ClusterMode::Swarm) => {
                let endpoint = &self.spec.endpoint;
                let Some(url) = text(endpoint, "url").filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                else {
                    return Some(Err(ProvisionError::invalid(
                        "spec.endpoint.url",
                        "a docker or swarm cluster gives its engine's address as http(s)://host:port",
                    )));
                };
                let tls = text(endpoint, "tlsSecret").map(|secret| (namespace, secret.to_owned()));
                Some(Ok(ProbeTarget::Engine { url: url.to_owned(), swarm: mode == ClusterMode::Swarm, tls }))
            }
        }
    }
}

impl ContainerCluster {
    /// A ContainerNode per reported node, named `<cluster>-<node>`, in the cluster's namespace;
    /// its phase rides along as the status to apply.
    fn nodes(&self, report: &ClusterReport) -> Vec<Value> {
        let cluster = self.name_any();
        report
            .nodes
            .iter()
            .map(|node| {
                let mut spec = json!({
                    "clusterRef": { "name": cluster },
                    "hostname": node.name,
                    "nodeRole": node.role,
                    "nodeConfig": node.details,
                });
                if let Some(address) = node.address.as_deref().filter(|a| a.parse::<std::net::IpAddr>().is_ok()) {
                    spec["ipAddress"] = address.into();
                }
                if let Some(cores) = node.cpu_cores {
                    spec["cpuCores"] = cores.into();
                }
                if let Some(memory) = node.memory_gb {
                    spec["memoryGb"] = memory.into();
                }
                let status = json!({ "phase": if node.ready { "ready" } else { "not_ready" } });
                CONTAINER_NODE.object(
                    self.namespace().as_deref(),
                    &node_name(&cluster, &node.name),
                    json!({ "spec": spec, "status": status }),
                )
            })
            .collect()
    }
}

/// `<cluster>-<node>` as an object name: lower case, characters outside `[a-z0-9.-]` as `-`.
fn node_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}")
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' })
        .collect()
}
