//! Gateway → Ingress (http) or Gateway API route (tcp, udp), a Certificate when `autoSsl`, and
//! the policies that let it reach its backends.

use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::application::first_port;
use super::domain::certificate;
use serde::Serialize;
use uuid::Uuid;

use super::Application;
use super::shared::*;
use super::{Inputs, Kind, KindId};
use crate::api::common::*;
use crate::api::infra::*;
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::*;
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
    const APPLIED_PHASE: Option<&'static str> = Some("active");
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
                Ok(vec![route.object(
                    Some(namespace),
                    &name,
                    json!({ "spec": {
                        "parentRefs": [{ "name": parent, "namespace": parent_namespace }],
                        "rules": [{ "backendRefs": backends }],
                    } }),
                )])
            }
        }
    }
}

/// Where a gateway sends traffic.
struct Route {
    path: String,
    application: String,
    port: i64,
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
                let port = route.get("port").and_then(Value::as_i64).or_else(|| first_port(&app));
                Ok(Route {
                    path: route.get("path").and_then(Value::as_str).unwrap_or("/").to_owned(),
                    application: name.to_owned(),
                    port: port.ok_or_else(|| no_port(name, &field))?,
                })
            })
            .collect()
    }

    fn ingress(&self, namespace: &str, name: &str, routes: &[Route], inputs: &Inputs) -> Result<Vec<Value>> {
        let host = text(&self.spec.gateway_config, "host").ok_or_else(|| {
            ProvisionError::invalid("spec.gatewayConfig.host", "an http gateway names the host it serves")
        })?;
        let paths: Vec<Value> = routes
            .iter()
            .map(|r| {
                json!({ "path": r.path, "pathType": "Prefix",
                        "backend": { "service": { "name": r.application, "port": { "number": r.port } } } })
            })
            .collect();
        let mut spec = json!({ "rules": [{ "host": host, "http": { "paths": paths } }] });
        if let Some(class) = &inputs.config.ingress_class {
            spec["ingressClassName"] = class.as_str().into();
        }
        // The environment denies all ingress by default: let the ingress controller, wherever it
        // runs, reach the routed applications on their ports.
        let applications: Vec<&str> = routes.iter().map(|r| r.application.as_str()).collect();
        let ports: Vec<Value> = routes.iter().map(|r| json!({ "protocol": "TCP", "port": r.port })).collect();
        let mut children = vec![NETWORK_POLICY.object(
            Some(namespace),
            &format!("gateway-{name}"),
            json!({ "spec": {
                "podSelector": { "matchExpressions": [{ "key": labels::APPLICATION, "operator": "In", "values": applications }] },
                "policyTypes": ["Ingress"],
                "ingress": [{ "from": [{ "namespaceSelector": {} }], "ports": ports }],
            } }),
        )];
        if self.spec.auto_ssl {
            let secret = format!("{name}-tls");
            spec["tls"] = json!([{ "hosts": [host], "secretName": secret }]);
            children.push(certificate(namespace, name, &secret, vec![host.to_owned()], inputs));
        }
        let mut ingress = INGRESS.object(Some(namespace), name, json!({ "spec": spec }));
        ingress["metadata"]["annotations"] = Value::Object(self.annotations()?);
        children.push(ingress);
        Ok(children)
    }

    /// ingress-nginx's annotations for the load-balancing strategy and rate limits.
    fn annotations(&self) -> Result<Map<String, Value>> {
        const PREFIX: &str = "nginx.ingress.kubernetes.io/";
        let mut annotations = Map::new();
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
            annotations.insert(format!("{PREFIX}limit-rps"), rps.to_string().into());
            if let Some(burst) = limits.get("burstMultiplier").and_then(Value::as_i64) {
                annotations.insert(format!("{PREFIX}limit-burst-multiplier"), burst.to_string().into());
            }
        }
        Ok(annotations)
    }
}

fn no_port(application: &str, field: &str) -> ProvisionError {
    ProvisionError::invalid(
        field,
        format!("Application {application:?} exposes no port (deploymentConfig.ports) and the route names none"),
    )
}
