//! Application → Deployment + Service (container), or a KubeVirt VirtualMachine (vm).

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment as Workload, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec, MetricTarget,
    ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, Service, ServicePort, ServiceSpec, Volume, VolumeMount as ContainerMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::element::MonitorKind;
use super::network::{Attachments, Join, MULTUS_NETWORKS, attach, attachment_label};
use super::release::{self, Release, WorkloadPlan};
use super::shared::{PLACEMENT_COLUMN, applied_of, columns, linked, metadata, quantities, text, without_condition};
use super::vm::{Machine, machine_not_working};
use super::{Element, Index, Inputs, Kind, KindId, Stack};
use crate::child_set;
use crate::deploy::Runtime;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::third_party::{
    self, NetworkAttachmentDefinition, PodMonitor, PodMonitorSpec, ScrapeEndpoint, ServiceMonitor, ServiceMonitorSpec,
    VirtualMachine,
};
use crate::provision::types::{DATA_VOLUME, DEPLOYMENT, POD_MONITOR, SERVICE_MONITOR};
use crate::provision::{Anchor, ChildType, DeletionPolicy, Placement, ProvisionError, Result, labels};

/// A deployable application of a stack (tables `applications`, `volume_applications`,
/// `network_applications`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Application",
    namespaced,
    category = "windflow",
    shortname = "wfapp",
    status = "ApplicationStatus",
    printcolumn(name = "Stack", type_ = "string", json_path = ".spec.stackRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.applicationType"),
    printcolumn(name = "Deployment", type_ = "string", json_path = ".status.deploymentStatus"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("an application name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || self.applicationType == 'container'").message("autoscaling sizes a container application's pods: a vm or physical application has none"))]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || !has(self.networks) || self.networks.all(n, !has(n.ipAddress))").message("a fixed ipAddress is one pod's: an autoscaled application has none"))]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the application does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The Stack the application belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("stackRef is immutable"))]
    pub stack_ref: ObjectRef,
    /// How the application runs (seed `app_type_check`). Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("applicationType is immutable"))]
    pub application_type: ApplicationType,
    /// Plugin that deploys it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub plugin_name: Option<String>,
    /// Plugin version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub plugin_version: Option<String>,
    /// Deployment configuration (free-form: image, replicas, ports, env...).
    #[serde(default)]
    pub deployment_config: FreeForm,
    /// Resources allocated to the application (free-form).
    #[serde(default)]
    pub allocated_resources: FreeForm,
    /// Volumes mounted into the application.
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.mountPath == m.mountPath))").message("each mountPath is used once"))]
    pub volumes: Vec<VolumeMount>,
    /// Networks the application is connected to.
    #[serde(default)]
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("self.all(m, self.exists_one(n, n.network == m.network))").message("a network is listed once"))]
    pub networks: Vec<ApplicationNetwork>,
    /// Stops the application and keeps it: its workloads stay, with no pod (a vm application's
    /// machine is halted). Its status is `stopped` until this is unset. A suspended
    /// Organization or Environment (`isActive: false`) stops it the same way.
    #[serde(default)]
    pub stopped: bool,
    /// Sizes a container application to its load: a HorizontalPodAutoscaler (autoscaling/v2)
    /// owns its workload's replicas, and `deploymentConfig.replicas` is then only the size of a
    /// rollout's new pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
}

/// An application's autoscaling: the bounds of its replicas and the use it keeps its pods at.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas is at most maxReplicas"))]
#[x_kube(validation = Rule::new("has(self.targetCPUUtilization) || has(self.targetMemoryUtilization)").message("autoscaling names a CPU or memory target"))]
pub struct Autoscaling {
    /// The fewest pods, however idle.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// The most pods, however busy.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU use to keep, in percent of the CPU each pod requests
    /// (`allocatedResources.cpu`, which it then needs).
    #[serde(default, rename = "targetCPUUtilization", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization: Option<i32>,
    /// Average memory use to keep, in percent of the memory each pod requests
    /// (`allocatedResources.memory`, which it then needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_memory_utilization: Option<i32>,
}

/// Seed `app_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    Container,
    Vm,
    Physical,
}

impl ApplicationType {
    /// How the application takes a new release.
    pub fn runtime(self) -> Runtime {
        match self {
            Self::Container => Runtime::Container,
            Self::Vm => Runtime::AsIs("vm"),
            Self::Physical => Runtime::AsIs("physical"),
        }
    }
}

/// A Volume mounted into an application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Name of the Volume.
    #[schemars(length(min = 1, max = 100))]
    pub volume: String,
    /// Absolute path where the volume is mounted.
    #[schemars(length(min = 1, max = 255), regex(pattern = "^/"))]
    pub mount_path: String,
    /// Mount options (free-form).
    #[serde(default)]
    pub mount_options: FreeForm,
}

/// A Network an application is connected to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationNetwork {
    /// Name of the Network.
    #[schemars(length(min = 1, max = 100))]
    pub network: String,
    /// Fixed address on that network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 45))]
    #[x_kube(validation = Rule::new("isIP(self)").message("ipAddress must be an IP address"))]
    pub ip_address: Option<String>,
    /// Connection settings (free-form).
    #[serde(default)]
    pub connection_config: FreeForm,
}

/// Status of an Application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `applications.deployment_status`: pending (never rolled out by a Deployment),
    /// deploying or updating (a rollout runs), deployed, failed (the last rollout failed and the
    /// previous release runs again), stopped (`spec.stopped`, or its stack archived), scaling
    /// (outside a rollout, its pods are on their way to a new count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<ApplicationDeploymentStatus>,
    /// The release the application runs, once a Deployment has rolled one out. Until then it
    /// runs its own `deploymentConfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ApplicationRelease>,
}

kind_status!(ApplicationStatus);

seed_values! {
    /// The values of `ApplicationStatus.deployment_status`: the seed's check on the column it mirrors.
    ApplicationDeploymentStatus { Pending, Deploying, Deployed, Failed, Stopped, Scaling, Updating }
}

/// What a completed Deployment rolled out to an application.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRelease {
    /// The Deployment that rolled it out.
    pub deployment: String,
    /// The `windflow.io/revision` label of its pods.
    pub revision: String,
    /// The deployment configuration rolled out.
    pub config: FreeForm,
    /// When that rollout completed (RFC 3339).
    pub deployed_at: String,
}

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
    stopped: bool,
    autoscaling: Option<&'a Autoscaling>,
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

child_set! {
    /// What an Application provisions: a container application's Deployments, Service and
    /// autoscaler, a vm application's VirtualMachine, and either's Multus definitions of fixed
    /// addresses.
    ApplicationChild {
        Deployment,
        Service,
        HorizontalPodAutoscaler,
        VirtualMachine,
        NetworkAttachmentDefinition,
        ServiceMonitor,
        PodMonitor,
    }
}

/// The variant's name is the type's: an apps/v1 Deployment.
type Deployment = Workload;

impl Kind for Application {
    const ID: KindId = KindId::Application;
    const TABLE: &'static str = "applications";
    type Children = ApplicationChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        StatusColumn { field: "deploymentStatus", column: "deployment_status", default: Some("pending") },
        PLACEMENT_COLUMN,
    ];

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
                stopped: spec.stopped,
                autoscaling: spec.autoscaling.as_ref(),
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

    /// A vm application's machine needs CDI.
    fn consults(&self) -> &'static [ChildType] {
        match self.spec.application_type {
            ApplicationType::Vm => &[DATA_VOLUME],
            ApplicationType::Container | ApplicationType::Physical => &[],
        }
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<ApplicationChild>> {
        // An archived stack keeps its records and runs nothing.
        if self.stack_archived(inputs.index) {
            return Ok(vec![]);
        }
        let namespace = placement.workload_namespace();
        let plan = release::plan(self, inputs.index)?;
        let object_namespace = self.namespace().unwrap_or_default();
        let suspended = inputs.index.suspension(&object_namespace, placement.environment.as_deref()).is_some();
        let stopped = self.spec.stopped || suspended;
        match self.spec.application_type {
            ApplicationType::Container => self.container(namespace, &plan, stopped, inputs),
            ApplicationType::Vm => self.machine(namespace, &plan.main.config, stopped, inputs),
            // A physical application runs on hosts WindFlow does not drive: mirrored only.
            ApplicationType::Physical => Ok(vec![]),
        }
    }

    /// A container application works once its workloads are Available; a vm application once
    /// its machine is Ready (or asked to stay stopped).
    fn not_working(&self, applied: &[kube::api::DynamicObject], inputs: &Inputs) -> Option<String> {
        match self.spec.application_type {
            ApplicationType::Container => without_condition(applied, DEPLOYMENT.kind, "Available"),
            ApplicationType::Vm => {
                machine_not_working(&self.spec.deployment_config, self.stopped(inputs.index), applied)
            }
            ApplicationType::Physical => None,
        }
    }

    /// Its rollouts' word, unless it is stopped, or its pods are on their way to a new count
    /// outside a rollout (`scaling`).
    fn observe(&self, applied: &[kube::api::DynamicObject], inputs: &Inputs) -> ApplicationStatus {
        let mut status = release::application_status(self, inputs.index);
        let settled = matches!(
            status.deployment_status,
            Some(ApplicationDeploymentStatus::Deployed | ApplicationDeploymentStatus::Pending)
        );
        if self.stopped(inputs.index) || self.stack_archived(inputs.index) {
            status.deployment_status = Some(ApplicationDeploymentStatus::Stopped);
        } else if settled && replicas_moving(applied, &self.name_any()) {
            status.deployment_status = Some(ApplicationDeploymentStatus::Scaling);
        }
        status
    }
}

/// Whether the workload `name`, once up, has more or fewer ready pods than it asks for: the
/// autoscaler (or a new `replicas`) moved it. A workload with no pod ready yet is coming up,
/// not scaling.
fn replicas_moving(applied: &[kube::api::DynamicObject], name: &str) -> bool {
    let Some(workload) = applied_of(applied, DEPLOYMENT.kind).find(|child| child.name_any() == name) else {
        return false;
    };
    let count = |pointer: &str| workload.data.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let ready = count("/status/readyReplicas");
    ready > 0 && ready != count("/spec/replicas")
}

/// A container port of `deploymentConfig.ports`: a number, or `{name, port}`.
fn ports(config: &Map<String, Value>) -> Result<Vec<(String, i32)>> {
    let Some(list) = config.get("ports") else { return Ok(vec![]) };
    let invalid = || ProvisionError::invalid("spec.deploymentConfig.ports", "a list of port numbers or {name, port}");
    list.as_array()
        .ok_or_else(invalid)?
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let number = port.as_i64().or_else(|| port.get("port").and_then(Value::as_i64)).ok_or_else(invalid)?;
            let number = i32::try_from(number).ok().filter(|n| (1..=65535).contains(n)).ok_or_else(|| {
                ProvisionError::invalid(
                    &format!("spec.deploymentConfig.ports[{i}]"),
                    format!("{number} is not a port (1-65535)"),
                )
            })?;
            let name = port.get("name").and_then(Value::as_str).map_or_else(|| format!("port-{number}"), str::to_owned);
            Ok((name, number))
        })
        .collect()
}

/// Labels as Kubernetes selectors and templates take them.
fn label_map<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect()
}

impl Application {
    /// Asked to stop, or its Organization or Environment suspended.
    fn stopped(&self, index: &Index) -> bool {
        self.spec.stopped || index.suspension_of(self).is_some()
    }

    fn stack_archived(&self, index: &Index) -> bool {
        let stack = index.get::<Stack>(self.namespace().as_deref(), &self.spec.stack_ref.name);
        stack.is_some_and(|stack| stack.spec.archived)
    }

    /// The pods of a workload asked for `replicas`: none when stopped; the autoscaler's count
    /// for the main workload of an autoscaled application (`None`: not set, so not taken from
    /// the autoscaler).
    fn pods(&self, replicas: i32, main: bool, stopped: bool) -> Option<i32> {
        if stopped {
            Some(0)
        } else if main && self.spec.autoscaling.is_some() {
            None
        } else {
            Some(replicas)
        }
    }

    /// The HorizontalPodAutoscaler of the main workload `name`, if autoscaled and running.
    fn autoscaler(&self, namespace: &str, name: &str, stopped: bool) -> Result<Option<HorizontalPodAutoscaler>> {
        let Some(scaling) = self.spec.autoscaling.as_ref().filter(|_| !stopped) else {
            return Ok(None);
        };
        let targets = [
            ("cpu", "targetCPUUtilization", scaling.target_cpu_utilization),
            ("memory", "targetMemoryUtilization", scaling.target_memory_utilization),
        ];
        let mut metrics = vec![];
        for (resource, field, target) in targets {
            let Some(percent) = target else { continue };
            // Utilization is a share of what each pod requests: without a request, the
            // autoscaler would never scale and say so only in its own conditions.
            if !self.spec.allocated_resources.0.contains_key(resource) {
                return Err(ProvisionError::invalid(
                    &format!("spec.autoscaling.{field}"),
                    format!(
                        "a {resource} target is a share of the {resource} each pod requests: set allocatedResources.{resource}"
                    ),
                ));
            }
            metrics.push(MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: resource.into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(percent),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            });
        }
        Ok(Some(HorizontalPodAutoscaler {
            metadata: metadata(Some(namespace), name),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some(DEPLOYMENT.api_version.into()),
                    kind: DEPLOYMENT.kind.into(),
                    name: name.into(),
                },
                min_replicas: Some(scaling.min_replicas),
                max_replicas: scaling.max_replicas,
                metrics: Some(metrics),
                behavior: None,
            },
            status: None,
        }))
    }

    fn joins(&self) -> Vec<Join<'_>> {
        let networks = self.spec.networks.iter().enumerate();
        networks.map(|(i, n)| Join::listed(i, &n.network, n.ip_address.as_ref())).collect()
    }

    fn container(
        &self,
        namespace: &str,
        plan: &WorkloadPlan,
        stopped: bool,
        inputs: &Inputs,
    ) -> Result<Vec<ApplicationChild>> {
        let name = self.name_any();
        let replicas = replicas(&plan.main.config, plan.main_replicas)?;
        let object_namespace = self.namespace().unwrap_or_default();
        let attachments = attach(&name, namespace, &object_namespace, &self.joins(), replicas, inputs)?;
        let mut children: Vec<ApplicationChild> = attachments.definitions.iter().cloned().map(Into::into).collect();
        let main_pods = self.pods(replicas, true, stopped);
        children.push(self.workload(namespace, &name, &plan.main, main_pods, &attachments, plan)?.into());
        children.extend(self.autoscaler(namespace, &name, stopped)?.map(Into::into));
        if let Some((suffix, release, side_replicas)) = &plan.side {
            if !attachments.definitions.is_empty() {
                return Err(ProvisionError::invalid(
                    "spec.networks",
                    format!(
                        "a fixed address is one pod's, and a {suffix} rollout runs a second workload beside the \
                         first: roll this application out with a standard or rolling Deployment"
                    ),
                ));
            }
            let side_pods = self.pods(replicas_of(*side_replicas)?, false, stopped);
            let side = format!("{name}-{suffix}");
            children.push(self.workload(namespace, &side, release, side_pods, &attachments, plan)?.into());
        }
        // The Service serves the ports of the revision it selects.
        let served = match &plan.service_revision {
            Some(revision) if *revision != plan.main.revision => plan.side.as_ref().map_or(&plan.main, |side| &side.1),
            _ => &plan.main,
        };
        let ports = ports(&served.config.0)?;
        children.extend(self.monitor(namespace, &ports, inputs.index)?);
        if !ports.is_empty() {
            let mut selector = label_map([(labels::APPLICATION, name.as_str())]);
            if let Some(revision) = &plan.service_revision {
                selector.insert(release::REVISION_LABEL.into(), revision.clone());
            }
            let ports = ports.into_iter().map(|(port_name, port)| ServicePort {
                name: Some(port_name),
                port,
                target_port: Some(IntOrString::Int(port)),
                ..ServicePort::default()
            });
            let mut service_metadata = metadata(Some(namespace), &name);
            // What its ServiceMonitor selects it by.
            service_metadata.labels = Some(label_map([(labels::APPLICATION, name.as_str())]));
            children.push(ApplicationChild::Service(Service {
                metadata: service_metadata,
                spec: Some(ServiceSpec {
                    selector: Some(selector),
                    ports: Some(ports.collect()),
                    ..ServiceSpec::default()
                }),
                ..Service::default()
            }));
        }
        Ok(children)
    }

    /// How Prometheus scrapes the application, as the `monitoringConfig` of its stack's Element
    /// says: a ServiceMonitor or a PodMonitor on the named port (its first otherwise). An
    /// application with no port has nothing to scrape.
    fn monitor(&self, namespace: &str, ports: &[(String, i32)], index: &Index) -> Result<Option<ApplicationChild>> {
        let namespace_of = self.namespace();
        let stack = index.get::<Stack>(namespace_of.as_deref(), &self.spec.stack_ref.name);
        let element =
            stack.and_then(|stack| index.get::<Element>(namespace_of.as_deref(), &stack.spec.element_ref.name));
        let Some(element) = element.filter(|element| element.spec.monitoring_config.enabled()) else { return Ok(None) };
        let config = &element.spec.monitoring_config;
        let port = match &config.port {
            None => ports.first().map(|(name, _)| name.clone()),
            Some(wanted) if ports.iter().any(|(name, _)| name == wanted) => Some(wanted.clone()),
            Some(wanted) => {
                let named: Vec<&str> = ports.iter().map(|(name, _)| name.as_str()).collect();
                return Err(ProvisionError::invalid(
                    "spec.deploymentConfig.ports",
                    format!(
                        "Element {} scrapes port {wanted:?} (monitoringConfig.port), which this application does not \
                         name (its ports: {})",
                        element.name_any(),
                        if named.is_empty() { "none".to_owned() } else { named.join(", ") }
                    ),
                ));
            }
        };
        let Some(port) = port else { return Ok(None) };
        let name = self.name_any();
        let endpoint = ScrapeEndpoint {
            port,
            path: config.path.clone().unwrap_or_else(|| "/metrics".to_owned()),
            interval: config.interval.clone(),
        };
        let selector = third_party::LabelSelector { match_labels: label_map([(labels::APPLICATION, name.as_str())]) };
        let mut monitor_metadata = metadata(Some(namespace), &name);
        monitor_metadata.labels = (!config.labels.is_empty()).then(|| config.labels.clone());
        Ok(Some(match config.monitor.unwrap_or_default() {
            MonitorKind::Service => {
                let spec = ServiceMonitorSpec { selector, endpoints: vec![endpoint] };
                ServiceMonitor {
                    metadata: monitor_metadata,
                    ..ServiceMonitor::new(&name, &SERVICE_MONITOR.api_resource(), spec)
                }
                .into()
            }
            MonitorKind::Pod => {
                let spec = PodMonitorSpec { selector, pod_metrics_endpoints: vec![endpoint] };
                PodMonitor { metadata: monitor_metadata, ..PodMonitor::new(&name, &POD_MONITOR.api_resource(), spec) }
                    .into()
            }
        }))
    }

    /// One apps/v1 Deployment of `release`, named `name`, of `replicas` pods (`None`: left to
    /// its autoscaler); its pods carry the revision.
    fn workload(
        &self,
        namespace: &str,
        name: &str,
        release: &Release,
        replicas: Option<i32>,
        attachments: &Attachments,
        plan: &WorkloadPlan,
    ) -> Result<Workload> {
        let config = &release.config;
        let application = self.name_any();
        let image = text(config, "image").ok_or_else(|| {
            ProvisionError::invalid("spec.deploymentConfig.image", "a container application names its image")
        })?;
        // The selector is immutable: it names the workload, not the revision.
        let mut selector = label_map([(labels::APPLICATION, application.as_str())]);
        if name != application {
            selector.insert(labels::WORKLOAD.into(), name.into());
        }
        let mut pod_labels = selector.clone();
        pod_labels.insert(release::REVISION_LABEL.into(), release.revision.clone());
        for network in &self.spec.networks {
            pod_labels.insert(attachment_label(&network.network), "true".into());
        }
        let resources = &self.spec.allocated_resources.0;
        let resources = (!resources.is_empty())
            .then(|| quantities("spec.allocatedResources", resources, str::to_owned))
            .transpose()?
            .map(|quantities| ResourceRequirements {
                requests: Some(quantities.clone()),
                limits: Some(quantities),
                ..ResourceRequirements::default()
            });
        let container = Container {
            name: application,
            image: Some(image.to_owned()),
            ports: Some(
                ports(&config.0)?
                    .into_iter()
                    .map(|(port_name, port)| ContainerPort {
                        name: Some(port_name),
                        container_port: port,
                        ..ContainerPort::default()
                    })
                    .collect(),
            ),
            env: Some(env(config)),
            volume_mounts: Some(
                self.spec
                    .volumes
                    .iter()
                    .map(|mount| ContainerMount {
                        name: mount.volume.clone(),
                        mount_path: mount.mount_path.clone(),
                        ..ContainerMount::default()
                    })
                    .collect(),
            ),
            resources,
            ..Container::default()
        };
        let volumes = self.spec.volumes.iter().map(|mount| Volume {
            name: mount.volume.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: mount.volume.clone(),
                ..PersistentVolumeClaimVolumeSource::default()
            }),
            ..Volume::default()
        });
        // A fixed address is one pod's: the old pod goes before the new one takes it.
        let strategy = if attachments.definitions.is_empty() {
            plan.settings.as_ref().map(|settings| DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(settings.max_surge.clone()),
                    max_unavailable: Some(settings.max_unavailable.clone()),
                }),
            })
        } else {
            Some(DeploymentStrategy { type_: Some("Recreate".into()), rolling_update: None })
        };
        Ok(Workload {
            metadata: metadata(Some(namespace), name),
            spec: DeploymentSpec {
                replicas,
                selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(pod_labels),
                        annotations: multus_annotation(attachments),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![container],
                        volumes: Some(volumes.collect()),
                        ..PodSpec::default()
                    }),
                },
                strategy,
                progress_deadline_seconds: plan
                    .settings
                    .as_ref()
                    .and_then(|settings| i32::try_from(settings.progress_deadline_seconds).ok()),
                ..DeploymentSpec::default()
            },
            ..Workload::default()
        })
    }

    fn machine(
        &self,
        namespace: &str,
        config: &FreeForm,
        stopped: bool,
        inputs: &Inputs,
    ) -> Result<Vec<ApplicationChild>> {
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
            os: match config.0.get("osType") {
                None => "linux",
                Some(Value::String(os)) => os,
                Some(_) => return Err(ProvisionError::invalid("spec.deploymentConfig.osType", "a string")),
            },
            os_version: text(config, "osVersion").map(str::to_owned),
            config,
            config_field: "spec.deploymentConfig",
            volumes: &volumes,
            joins: self.joins(),
            object_namespace: self.namespace().unwrap_or_default(),
            halted: stopped,
        };
        Ok(machine.virtual_machine(namespace, &self.name_any(), inputs)?.into_children())
    }
}

/// The pods of the main workload: `replicas` as the rollout sets it, else
/// `deploymentConfig.replicas`, else one.
fn replicas(config: &FreeForm, rollout: Option<i64>) -> Result<i32> {
    replicas_of(rollout.unwrap_or_else(|| config.0.get("replicas").and_then(Value::as_i64).unwrap_or(1)))
}

fn replicas_of(replicas: i64) -> Result<i32> {
    i32::try_from(replicas)
        .map_err(|_| ProvisionError::invalid("spec.deploymentConfig.replicas", format!("{replicas} is too many")))
}

/// The pod annotation by which Multus attaches the selected definitions, if any.
fn multus_annotation(attachments: &Attachments) -> Option<BTreeMap<String, String>> {
    if attachments.selected.is_empty() {
        return None;
    }
    let selected: Vec<&str> = attachments.selected.iter().map(|(_, definition)| definition.as_str()).collect();
    Some(BTreeMap::from([(MULTUS_NETWORKS.to_owned(), selected.join(","))]))
}

/// `deploymentConfig.env` as container environment variables.
fn env(config: &FreeForm) -> Vec<EnvVar> {
    let variables = config.0.get("env").and_then(Value::as_object).into_iter().flatten();
    variables
        .map(|(key, value)| EnvVar {
            name: key.clone(),
            value: Some(value.as_str().map_or_else(|| value.to_string(), str::to_owned)),
            ..EnvVar::default()
        })
        .collect()
}

/// The port an application's Service serves first, for routes that name no port.
pub(super) fn first_port(application: &Application) -> Option<i32> {
    ports(&application.spec.deployment_config.0).ok()?.first().map(|(_, port)| *port)
}
