//! Gateway → a Gateway API HTTPRoute (http; an Ingress where the Gateway API is missing) or a
//! TCPRoute/UDPRoute, a Certificate when `autoSsl`, and the policy that lets traffic reach its
//! backends.

use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::DynamicObject;
use serde_json::Value;
use uuid::Uuid;

use super::application::first_port;
use super::common::{CommonStatus, ObjectRef, Reference, Resolved, yes};
use super::domain::certificate;
use super::shared::{Link, PLACEMENT_COLUMN, columns, linked, metadata, phase_column, text, without_condition};
use super::{Application, Domain, Index, Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, JoinTable, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::third_party::{
    BackendRef, Certificate, HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, L4RouteRule, L4RouteSpec,
    ParentRef, PathMatch, TcpRoute, TcpRouteSpec, UdpRoute, UdpRouteSpec,
};
use crate::provision::types::{CERTIFICATE, HTTP_ROUTE};
use crate::provision::{
    Anchor, ChildType, DeletionPolicy, Placement, ProvisionError, Result, TrafficAnnotations, labels,
};

/// A load-balancing gateway of a stack (tables `gateways`, `network_gateways`). Short name
/// `wfgw`, since `gateway` belongs to Gateway API and Istio.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Gateway",
    namespaced,
    category = "windflow",
    shortname = "wfgw",
    status = "GatewayStatus",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.gatewayType"),
    printcolumn(name = "Stack", type_ = "string", json_path = ".spec.stackRef.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Cluster", type_ = "string", json_path = ".status.placement.cluster"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    validation = Rule::new("size(self.metadata.name) <= 100").message("a gateway name has at most 100 characters")
)]
#[x_kube(validation = Rule::new("self.gatewayType == 'http' || !self.autoSsl").message("autoSsl applies to http gateways only"))]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Stack the gateway serves. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("stackRef is immutable"))]
    pub stack_ref: ObjectRef,
    /// Protocol (seed `gateway_type_check`).
    pub gateway_type: GatewayType,
    /// Obtain TLS certificates automatically.
    #[serde(default = "yes")]
    pub auto_ssl: bool,
    /// TLS settings (free-form).
    #[serde(default)]
    pub ssl_config: FreeForm,
    /// Load-balancing strategy (seed `lb_strategy_check`).
    #[serde(default)]
    pub load_balancing_strategy: LoadBalancingStrategy,
    /// Limit request rates.
    #[serde(default)]
    pub rate_limiting: bool,
    /// Rate limits (free-form).
    #[serde(default)]
    pub rate_limit_config: FreeForm,
    /// Complete gateway configuration (free-form).
    #[serde(default)]
    pub gateway_config: FreeForm,
    /// Names of Networks the gateway is connected to.
    #[serde(default)]
    pub networks: Vec<String>,
}

/// Seed `gateway_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GatewayType {
    Http,
    Tcp,
    Udp,
}

/// Seed `lb_strategy_check`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema, strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum LoadBalancingStrategy {
    #[default]
    RoundRobin,
    LeastConn,
    IpHash,
    Weighted,
    HealthBased,
}

/// Status of a Gateway.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `gateways.status`: configuring, active, error, updating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<GatewayPhase>,
}

kind_status!(GatewayStatus);

seed_values! {
    /// The values of `GatewayStatus.phase`: the seed's check on the column it mirrors.
    GatewayPhase { Configuring, Active, Error, Updating }
}

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

child_set! {
    /// What a Gateway provisions: its route (an HTTPRoute, or an Ingress without the Gateway
    /// API; a TCPRoute or UDPRoute), the policy that lets traffic in, and its Certificate.
    GatewayChild { Ingress, HttpRoute, NetworkPolicy, Certificate, TcpRoute, UdpRoute }
}

impl Kind for Gateway {
    const ID: KindId = KindId::Gateway;
    const TABLE: &'static str = "gateways";
    type Children = GatewayChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "configuring"), PLACEMENT_COLUMN];

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

    /// The Domains in front of it go where it runs.
    fn followers(&self, index: &Index) -> Vec<(KindId, String)> {
        let Some(host) = self.host() else { return vec![] };
        let domains = index.all::<Domain>(self.namespace().as_deref());
        domains.iter().filter(|domain| domain.covers(host)).map(|domain| (KindId::Domain, domain.name_any())).collect()
    }

    /// A gateway with `autoSsl` works once its Certificate is Ready.
    fn not_working(&self, applied: &[DynamicObject], _: &Inputs) -> Option<String> {
        without_condition(applied, CERTIFICATE.kind, "Ready")
    }

    /// An http gateway is an HTTPRoute where the Gateway API is served.
    fn consults(&self) -> &'static [ChildType] {
        match self.spec.gateway_type {
            GatewayType::Http => &[HTTP_ROUTE],
            GatewayType::Tcp | GatewayType::Udp => &[],
        }
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<GatewayChild>> {
        let namespace = placement.workload_namespace();
        let routes = self.routes(inputs)?;
        let name = self.name_any();
        match self.spec.gateway_type {
            GatewayType::Http => self.http(namespace, &name, &routes, inputs),
            GatewayType::Tcp | GatewayType::Udp => {
                let backend_refs =
                    routes.iter().map(|r| BackendRef { name: r.application.clone(), port: r.port }).collect();
                let spec = L4RouteSpec {
                    parent_refs: vec![ParentRef::of(&inputs.config.gateway_parent)],
                    rules: vec![L4RouteRule { backend_refs }],
                };
                let (protocol, route): (_, GatewayChild) = match self.spec.gateway_type {
                    GatewayType::Udp => {
                        ("UDP", third_party(metadata(Some(namespace), &name), UdpRouteSpec(spec)).into())
                    }
                    _ => ("TCP", third_party(metadata(Some(namespace), &name), TcpRouteSpec(spec)).into()),
                };
                Ok(vec![way_in(namespace, &name, &routes, protocol).into(), route])
            }
        }
    }

    /// Active once its children are applied.
    fn faulted(&self) -> GatewayStatus {
        GatewayStatus { phase: Some(GatewayPhase::Error), ..Default::default() }
    }

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> GatewayStatus {
        GatewayStatus { phase: Some(GatewayPhase::Active), ..Default::default() }
    }
}

/// Where a gateway sends traffic.
struct Route {
    path: String,
    application: String,
    port: i32,
}

impl Gateway {
    /// The host an http gateway serves (`gatewayConfig.host`).
    pub fn host(&self) -> Option<&str> {
        text(&self.spec.gateway_config, "host")
    }

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

    /// An http gateway: the Gateway API `HTTPRoute` where the cluster serves it, else an
    /// `Ingress`; with a Certificate for `autoSsl` and the way in through the default deny.
    fn http(&self, namespace: &str, name: &str, routes: &[Route], inputs: &Inputs) -> Result<Vec<GatewayChild>> {
        let host = self.host().ok_or_else(|| {
            ProvisionError::invalid("spec.gatewayConfig.host", "an http gateway names the host it serves")
        })?;
        let annotations = self.traffic_annotations(&inputs.config.traffic_annotations)?;
        let mut children = vec![way_in(namespace, name, routes, "TCP").into()];
        let secret = format!("{name}-tls");
        if self.spec.auto_ssl {
            children.push(certificate(namespace, name, &secret, vec![host.to_owned()], inputs).into());
        }
        let mut metadata = metadata(Some(namespace), name);
        metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
        if inputs.serves(HTTP_ROUTE) {
            // TLS ends at the parent Gateway's listener, which names the Certificate's Secret.
            children.push(http_route(metadata, host, routes, &inputs.config.gateway_parent).into());
            return Ok(children);
        }
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
        let tls = self
            .spec
            .auto_ssl
            .then(|| vec![IngressTLS { hosts: Some(vec![host.to_owned()]), secret_name: Some(secret) }]);
        children.push(GatewayChild::Ingress(Ingress {
            metadata,
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
        }));
        Ok(children)
    }

    /// The annotations that carry the balancing strategy and rate limits to the data plane, as
    /// the installation configures them: neither the Gateway API nor Ingress has fields for
    /// them. Round robin, every data plane's default, needs none; anything else unconfigured
    /// is refused rather than silently ignored.
    fn traffic_annotations(&self, configured: &TrafficAnnotations) -> Result<BTreeMap<String, String>> {
        let not_configured = |field: &str, key: &str, what: String| ProvisionError::NotProvided {
            field: field.to_owned(),
            message: format!(
                "{what} needs the data plane's annotations for it: set provisioning.trafficAnnotations.{key} \
                 in the chart (--traffic-annotations)"
            ),
        };
        let strategy: &'static str = self.spec.load_balancing_strategy.into();
        let mut annotations = match configured.get(strategy) {
            Some(annotations) => annotations.clone(),
            None if self.spec.load_balancing_strategy == LoadBalancingStrategy::RoundRobin => BTreeMap::new(),
            None => {
                return Err(not_configured("spec.loadBalancingStrategy", strategy, format!("{strategy} balancing")));
            }
        };
        if self.spec.rate_limiting {
            let templates = configured
                .get(RATE_LIMIT)
                .ok_or_else(|| not_configured("spec.rateLimiting", RATE_LIMIT, "rate limiting".to_owned()))?;
            for (key, template) in templates {
                annotations.insert(key.clone(), fill(template, &self.spec.rate_limit_config)?);
            }
        }
        Ok(annotations)
    }
}

/// The key of `trafficAnnotations` whose annotations carry `rateLimitConfig`.
pub const RATE_LIMIT: &str = "rate_limit";

/// `template` with each `{key}` replaced by `rateLimitConfig.key`.
fn fill(template: &str, limits: &FreeForm) -> Result<String> {
    let mut filled = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else { break };
        let key = &rest[open + 1..close];
        let value = limits.0.get(key).ok_or_else(|| {
            ProvisionError::invalid(
                &format!("spec.rateLimitConfig.{key}"),
                format!("the configured rate-limit annotations use {{{key}}}: set it"),
            )
        })?;
        filled.push_str(&rest[..open]);
        filled.push_str(&value.as_str().map_or_else(|| value.to_string(), str::to_owned));
        rest = &rest[close + 1..];
    }
    filled.push_str(rest);
    Ok(filled)
}

/// A Gateway API `HTTPRoute` under `parent` (`namespace/name`): one rule per route.
fn http_route(metadata: ObjectMeta, host: &str, routes: &[Route], parent: &str) -> HttpRoute {
    let rules = routes.iter().map(|r| HttpRouteRule {
        matches: vec![HttpRouteMatch { path: PathMatch { kind: "PathPrefix", value: r.path.clone() } }],
        backend_refs: vec![BackendRef { name: r.application.clone(), port: r.port }],
    });
    let spec = HttpRouteSpec {
        parent_refs: vec![ParentRef::of(parent)],
        hostnames: vec![host.to_owned()],
        rules: rules.collect(),
    };
    third_party(metadata, spec)
}

/// The environment denies all ingress by default: let the gateway's data plane (an ingress
/// controller or Gateway API implementation, wherever it runs) reach the routed applications
/// on their ports, over `protocol`.
fn way_in(namespace: &str, name: &str, routes: &[Route], protocol: &str) -> NetworkPolicy {
    let applications = routes.iter().map(|r| r.application.clone()).collect();
    let ports = routes.iter().map(|r| NetworkPolicyPort {
        protocol: Some(protocol.into()),
        port: Some(IntOrString::Int(r.port)),
        ..NetworkPolicyPort::default()
    });
    NetworkPolicy {
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
    }
}

fn no_port(application: &str, field: &str) -> ProvisionError {
    ProvisionError::invalid(
        field,
        format!("Application {application:?} exposes no port (deploymentConfig.ports) and the route names none"),
    )
}
