//! Gateway → Ingress (http) or Gateway API route (tcp, udp), a Certificate when `autoSsl`, and
//! the policies that let it reach its backends.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::Application;
use super::application::first_port;
use super::domain::certificate;
use super::shared::{Link, columns, linked, metadata, phase, phase_column, text, typed, without_condition};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy, FreeForm};
use crate::api::infra::{GatewayPhase, GatewayType, LoadBalancingStrategy};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::{CERTIFICATE, INGRESS, NETWORK_POLICY, TCP_ROUTE, UDP_ROUTE};
use crate::provision::{Anchor, Placement, ProvisionError, Result, labels};

pub use crate::api::infra::Gateway;

pub static NETWORK_GATEWAYS: JoinTable =
    JoinTable { table: "network_gateways", owner: "gateway_id", key: &["network_id"], values: &[] };

/// A `gateways` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct GatewayRow<'a> {
    name: String,
    stack_id: Uuid,
    gateway_type: &'a GatewayType,
    auto_ssl: bool,
    ssl_config: &'a FreeForm,
    load_balancing_strategy: &'a LoadBalancingStrategy,
    rate_limiting: bool,
    rate_limit_config: &'a FreeForm,
    gateway_config: &'a FreeForm,
}

impl Kind for Gateway {
    const ID: KindId = KindId::Gateway;
    const TABLE: &'static str = "gateways";
    const CHILD_TYPES: &'static [ChildType] = &[INGRESS, NETWORK_POLICY, CERTIFICATE, TCP_ROUTE, UDP_ROUTE];
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "configuring")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(KindId::Stack, &self.spec.stack_ref.name, "spec.stackRef"))
            .chain(
                self.spec
                    .networks
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Reference::new(KindId::Network, n, format!("spec.networks[{i}]"))),
            )
            .collect()
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = Reference::new(KindId::Stack, &spec.stack_ref.name, "spec.stackRef");
        let links = self.references().into_iter().skip(1).map(|network| (network, Link {}));
        Ok(Rows {
            row: columns(&GatewayRow {
                name: self.name_any(),
                stack_id: resolved.id(&stack)?,
                gateway_type: &spec.gateway_type,
                auto_ssl: spec.auto_ssl,
                ssl_config: &spec.ssl_config,
                load_balancing_strategy: &spec.load_balancing_strategy,
                rate_limiting: spec.rate_limiting,
                rate_limit_config: &spec.rate_limit_config,
                gateway_config: &spec.gateway_config,
            })?,
            joins: vec![linked(&NETWORK_GATEWAYS, links, resolved)?],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Stack(&self.spec.stack_ref.name)
    }

    /// A gateway with `autoSsl` works once its Certificate is Ready.
    fn not_working(&self, applied: &[DynamicObject], _: &Inputs) -> Option<String> {
        without_condition(applied, CERTIFICATE.kind, "Ready")
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let namespace = placement.workload_namespace();
        let routes = self.routes(inputs)?;
        let name = self.name_any();
        match self.spec.gateway_type {
            GatewayType::Http => self.ingress(namespace, &name, &routes, inputs),
            GatewayType::Tcp | GatewayType::Udp => {
                let route = if self.spec.gateway_type == GatewayType::Tcp { TCP_ROUTE } else { UDP_ROUTE };
                let (parent_namespace, parent) =
                    inputs.config.gateway_parent.split_once('/').unwrap_or(("", &inputs.config.gateway_parent));
                let backends: Vec<Value> =
                    routes.iter().map(|r| json!({ "name": r.application, "port": r.port })).collect();
                let protocol = if self.spec.gateway_type == GatewayType::Tcp { "TCP" } else { "UDP" };
                Ok(vec![
                    way_in(namespace, &name, &routes, protocol)?,
                    route.object(
                        Some(namespace),
                        &name,
                        json!({ "spec": {
                            "parentRefs": [{ "name": parent, "namespace": parent_namespace }],
                            "rules": [{ "backendRefs": backends }],
                        } }),
                    ),
                ])
            }
        }
    }

    /// Active once its children are applied.
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(GatewayPhase::Active)
    }
}

/// Where a gateway sends traffic.
struct Route {
    path: String,
    application: String,
    port: i32,
}

impl Gateway {
    /// `gatewayConfig.routes` ([{path, application, port}]); without it, a stack of one
    /// application gets everything.
    fn routes(&self, inputs: &Inputs) -> Result<Vec<Route>> {
        let namespace = self.namespace().unwrap_or_default();
        let stack = &self.spec.stack_ref.name;
        let application = |name: &str, field: &str| {
            (inputs.index.get::<Application>(Some(&namespace), name))
                .filter(|app| &app.spec.stack_ref.name == stack)
                .ok_or_else(|| {
                    ProvisionError::Missing(format!("{field}: Application {name:?} is not in Stack {stack:?}"))
                })
        };
        let Some(listed) = self.spec.gateway_config.0.get("routes") else {
            let mut members = inputs.index.all::<Application>(Some(&namespace));
            members.retain(|app| &app.spec.stack_ref.name == stack);
            let [only] = members.as_slice() else {
                return Err(ProvisionError::invalid(
                    "spec.gatewayConfig.routes",
                    format!(
                        "Stack {stack:?} has {} applications: list the routes ({{path, application, port}})",
                        members.len()
                    ),
                ));
            };
            let port = first_port(only).ok_or_else(|| no_port(&only.name_any(), "spec.gatewayConfig.routes"))?;
            return Ok(vec![Route { path: "/".into(), application: only.name_any(), port }]);
        };
        let invalid = || ProvisionError::invalid("spec.gatewayConfig.routes", "a list of {path, application, port}");
        listed
            .as_array()
            .ok_or_else(invalid)?
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let field = format!("spec.gatewayConfig.routes[{i}]");
                let name = route.get("application").and_then(Value::as_str).ok_or_else(invalid)?;
                let app = application(name, &field)?;
                let port = match route.get("port") {
                    None => first_port(&app).ok_or_else(|| no_port(name, &field))?,
                    Some(port) => port
                        .as_i64()
                        .and_then(|p| i32::try_from(p).ok())
                        .filter(|p| (1..=65535).contains(p))
                        .ok_or_else(|| {
                            ProvisionError::invalid(&format!("{field}.port"), format!("{port} is not a port (1-65535)"))
                        })?,
                };
                Ok(Route {
                    path: route.get("path").and_then(Value::as_str).unwrap_or("/").to_owned(),
                    application: name.to_owned(),
                    port,
                })
            })
            .collect()
    }

    fn ingress(&self, namespace: &str, name: &str, routes: &[Route], inputs: &Inputs) -> Result<Vec<Value>> {
        let host = text(&self.spec.gateway_config, "host").ok_or_else(|| {
            ProvisionError::invalid("spec.gatewayConfig.host", "an http gateway names the host it serves")
        })?;
        let paths = routes.iter().map(|r| HTTPIngressPath {
            path: Some(r.path.clone()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: r.application.clone(),
                    port: Some(ServiceBackendPort { number: Some(r.port), ..ServiceBackendPort::default() }),
                }),
                ..IngressBackend::default()
            },
        });
        let mut children = vec![way_in(namespace, name, routes, "TCP")?];
        let mut tls = None;
        if self.spec.auto_ssl {
            let secret = format!("{name}-tls");
            children.push(certificate(namespace, name, &secret, vec![host.to_owned()], inputs));
            tls = Some(vec![IngressTLS { hosts: Some(vec![host.to_owned()]), secret_name: Some(secret) }]);
        }
        children.push(typed(&Ingress {
            metadata: ObjectMeta { annotations: Some(self.annotations()?), ..metadata(Some(namespace), name) },
            spec: Some(IngressSpec {
                ingress_class_name: inputs.config.ingress_class.clone(),
                rules: Some(vec![IngressRule {
                    host: Some(host.to_owned()),
                    http: Some(HTTPIngressRuleValue { paths: paths.collect() }),
                }]),
                tls,
                ..IngressSpec::default()
            }),
            ..Ingress::default()
        })?);
        Ok(children)
    }

    /// ingress-nginx's annotations for the load-balancing strategy and rate limits.
    fn annotations(&self) -> Result<BTreeMap<String, String>> {
        const PREFIX: &str = "nginx.ingress.kubernetes.io/";
        let mut annotations = BTreeMap::new();
        match self.spec.load_balancing_strategy {
            LoadBalancingStrategy::RoundRobin => {
                annotations.insert(format!("{PREFIX}load-balance"), "round_robin".into());
            }
            // ingress-nginx's least-loaded balancer is EWMA.
            LoadBalancingStrategy::LeastConn | LoadBalancingStrategy::HealthBased => {
                annotations.insert(format!("{PREFIX}load-balance"), "ewma".into());
            }
            LoadBalancingStrategy::IpHash => {
                annotations.insert(format!("{PREFIX}upstream-hash-by"), "$remote_addr".into());
            }
            LoadBalancingStrategy::Weighted => {
                return Err(ProvisionError::invalid(
                    "spec.loadBalancingStrategy",
                    "weighted balancing has no ingress-nginx equivalent; use round_robin, least_conn or ip_hash",
                ));
            }
        }
        if self.spec.rate_limiting {
            let limits = &self.spec.rate_limit_config.0;
            let rps = limits.get("requestsPerSecond").and_then(Value::as_i64).ok_or_else(|| {
                ProvisionError::invalid(
                    "spec.rateLimitConfig.requestsPerSecond",
                    "rate limiting needs requestsPerSecond",
                )
            })?;
            annotations.insert(format!("{PREFIX}limit-rps"), rps.to_string());
            if let Some(burst) = limits.get("burstMultiplier").and_then(Value::as_i64) {
                annotations.insert(format!("{PREFIX}limit-burst-multiplier"), burst.to_string());
            }
        }
        Ok(annotations)
    }
}

/// The environment denies all ingress by default: let the gateway's data plane (an ingress
/// controller or Gateway API implementation, wherever it runs) reach the routed applications
/// on their ports, over `protocol`.
fn way_in(namespace: &str, name: &str, routes: &[Route], protocol: &str) -> Result<Value> {
    let applications = routes.iter().map(|r| r.application.clone()).collect();
    let ports = routes.iter().map(|r| NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(r.port)),
        ..NetworkPolicyPort::default()
    });
    typed(&NetworkPolicy {
        metadata: metadata(Some(namespace), &format!("gateway-{name}")),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: labels::APPLICATION.into(),
                    operator: "In".into(),
                    values: Some(applications),
                }]),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector::default()),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(ports.collect()),
            }]),
            ..NetworkPolicySpec::default()
        }),
    })
}

fn no_port(application: &str, field: &str) -> ProvisionError {
    ProvisionError::invalid(
        field,
        format!("Application {application:?} exposes no port (deploymentConfig.ports) and the route names none"),
    )
}
