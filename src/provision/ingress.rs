//! Gateway → Ingress (http) or Gateway API route (tcp, udp); Domain → cert-manager Certificate;
//! DnsRecord → ExternalDNS DNSEndpoint.

use kube::ResourceExt;
use serde_json::{Map, Value, json};

use super::types::{CERTIFICATE, DNS_ENDPOINT, INGRESS, NETWORK_POLICY, TCP_ROUTE, UDP_ROUTE};
use super::workload::first_port;
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, find, labels, text};
use crate::api::infra::{GatewayType, LoadBalancingStrategy};
use crate::api::{DnsRecord, Domain, Gateway};

impl Provisioned for Gateway {
    const APPLIED_PHASE: Option<&'static str> = Some("active");

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
            find(&inputs.world.applications, &namespace, name)
                .filter(|app| &app.spec.stack_ref.name == stack)
                .ok_or_else(|| {
                    ProvisionError::Missing(format!("{field}: Application {name:?} is not in Stack {stack:?}"))
                })
        };
        let Some(listed) = self.spec.gateway_config.0.get("routes") else {
            let members: Vec<_> = inputs
                .world
                .applications
                .iter()
                .filter(|app| app.namespace().as_deref() == Some(&namespace) && &app.spec.stack_ref.name == stack)
                .collect();
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
                let port = route.get("port").and_then(Value::as_i64).or_else(|| first_port(app));
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

fn certificate(namespace: &str, name: &str, secret: &str, dns_names: Vec<String>, inputs: &Inputs) -> Value {
    CERTIFICATE.object(
        Some(namespace),
        name,
        json!({ "spec": {
            "secretName": secret,
            "dnsNames": dns_names,
            "issuerRef": { "kind": "ClusterIssuer", "name": inputs.config.cluster_issuer },
        } }),
    )
}

impl Provisioned for Domain {
    const APPLIED_PHASE: Option<&'static str> = Some("active");

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        if !self.spec.auto_ssl {
            return Ok(vec![]);
        }
        let fqdn = &self.spec.fqdn;
        let mut names = vec![fqdn.clone()];
        if self.spec.wildcard_support {
            names.push(format!("*.{fqdn}"));
        }
        let name = self.name_any();
        Ok(vec![certificate(placement.workload_namespace(), &name, &format!("{name}-tls"), names, inputs)])
    }
}

impl Provisioned for DnsRecord {
    const APPLIED_PHASE: Option<&'static str> = Some("active");

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Domain(&self.spec.domain_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let namespace = self.namespace().unwrap_or_default();
        let fqdn = &inputs.world.domain(&namespace, &self.spec.domain_ref.name, "spec.domainRef")?.spec.fqdn;
        let dns_name = match self.spec.record_name.as_str() {
            "@" => fqdn.clone(),
            name => format!("{name}.{fqdn}"),
        };
        let target = match self.spec.priority {
            Some(priority) => format!("{priority} {}", self.spec.value),
            None => self.spec.value.clone(),
        };
        Ok(vec![DNS_ENDPOINT.object(
            Some(placement.workload_namespace()),
            &self.name_any(),
            json!({ "spec": { "endpoints": [{
                "dnsName": dns_name,
                "recordType": self.spec.record_type,
                "targets": [target],
                "recordTTL": self.spec.ttl,
            }] } }),
        )])
    }
}
