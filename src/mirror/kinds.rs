//! Each kind's references and rows. Pure: tested from YAML fixtures.

use serde_json::{Map, Value, json};

use super::{Invalid, JoinRows, JoinTable, Mirrored, Reference, Resolved, Rows, StatusColumn, Target};
use crate::api::common::ObjectRef;
use crate::api::*;

/// Roles that may change what an organization runs.
const ROLES_THAT_DEPLOY: &[&str] = &["owner", "admin", "member"];
/// Every role.
const ANY_ROLE: &[&str] = &["owner", "admin", "member", "viewer"];
/// The `hashed_password` of a user without a password: no hash matches it.
pub const LOCKED_PASSWORD: &str = "!locked";

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn element(reference: &ObjectRef) -> Reference {
    Reference::new(Target::Element, &reference.name, "spec.elementRef")
}

fn tags(names: &[String]) -> impl Iterator<Item = Reference> + '_ {
    names.iter().enumerate().map(|(i, name)| Reference::new(Target::Tag, name, format!("spec.tags[{i}]")))
}

fn tag_rows(table: &'static JoinTable, names: &[String], resolved: &Resolved) -> Result<JoinRows, Invalid> {
    let rows =
        tags(names).map(|tag| Ok(object(json!({ "tag_id": resolved.id(&tag)? })))).collect::<Result<_, Invalid>>()?;
    Ok(JoinRows { table, rows })
}

/// Rows of a join table keyed by one referenced object each.
fn linked<'a>(
    table: &'static JoinTable,
    key: &str,
    links: impl Iterator<Item = (Reference, Value)> + 'a,
    resolved: &Resolved,
) -> Result<JoinRows, Invalid> {
    let rows = links
        .map(|(reference, extra)| {
            let mut row = object(extra);
            row.insert(key.to_owned(), json!(resolved.id(&reference)?));
            Ok(row)
        })
        .collect::<Result<_, Invalid>>()?;
    Ok(JoinRows { table, rows })
}

macro_rules! join_table {
    ($name:ident, $table:literal, $owner:literal, [$($key:literal),*], [$($value:literal),*]) => {
        pub static $name: JoinTable = JoinTable { table: $table, owner: $owner, key: &[$($key),*], values: &[$($value),*] };
    };
}

join_table!(
    USER_ORGANIZATIONS,
    "user_organizations",
    "organization_id",
    ["user_id"],
    ["role", "is_default", "permissions"]
);
join_table!(USER_TAGS, "user_tags", "user_id", ["tag_id"], []);
join_table!(USER_GROUPS, "user_groups", "group_id", ["user_id"], []);
join_table!(GROUP_TAGS, "group_tags", "group_id", ["tag_id"], []);
join_table!(RULES, "rules", "policy_id", ["function_id", "environment_id", "element_id"], ["conditions"]);
join_table!(POLICY_USERS, "policy_users", "policy_id", ["user_id"], []);
join_table!(POLICY_GROUPS, "policy_groups", "policy_id", ["group_id"], []);
join_table!(POLICY_TAGS, "policy_tags", "policy_id", ["tag_id"], []);
join_table!(ENVIRONMENT_TAGS, "environment_tags", "environment_id", ["tag_id"], []);
join_table!(ELEMENT_TAGS, "element_tags", "element_id", ["tag_id"], []);
join_table!(VOLUME_CONTAINER_CLUSTERS, "volume_container_clusters", "cluster_id", ["volume_id"], []);
join_table!(NETWORK_CONTAINER_NODES, "network_container_nodes", "node_id", ["network_id"], ["ip_address"]);
join_table!(VOLUME_VMS, "volume_vms", "vm_id", ["volume_id"], []);
join_table!(NETWORK_VMS, "network_vms", "vm_id", ["network_id"], ["ip_address"]);
join_table!(NETWORK_PHYSICAL_HOSTS, "network_physical_hosts", "physical_host_id", ["network_id"], ["ip_address"]);
join_table!(NETWORK_GATEWAYS, "network_gateways", "gateway_id", ["network_id"], []);
join_table!(
    VOLUME_APPLICATIONS,
    "volume_applications",
    "application_id",
    ["volume_id", "mount_path"],
    ["mount_options"]
);
join_table!(
    NETWORK_APPLICATIONS,
    "network_applications",
    "application_id",
    ["network_id"],
    ["ip_address", "connection_config"]
);

const fn phase(column: &'static str, default: &'static str) -> StatusColumn {
    StatusColumn { field: "phase", column, default: Some(default) }
}

fn name_of<K: kube::Resource>(obj: &K) -> String {
    obj.meta().name.clone().unwrap_or_default()
}

impl Mirrored for Organization {
    const TARGET: Target = Target::Organization;

    fn references(&self) -> Vec<Reference> {
        self.spec
            .members
            .iter()
            .enumerate()
            .map(|(i, m)| Reference::new(Target::User, &m.user, format!("spec.members[{i}].user")))
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let name = name_of(self);
        let members = self.references().into_iter().zip(&spec.members).map(|(user, m)| {
            (
                user,
                json!({ "role": m.role.as_str(), "is_default": m.is_default, "permissions": to_json(&m.permissions) }),
            )
        });
        Ok(Rows {
            row: object(json!({
                "name": name,
                "description": spec.description,
                "is_active": spec.is_active,
                "settings": to_json(&spec.settings),
                "quotas": to_json(&spec.quotas),
                "billing_info": to_json(&spec.billing_info),
                "tenant_namespace": spec.namespace.clone().unwrap_or(name),
            })),
            joins: vec![linked(&USER_ORGANIZATIONS, "user_id", members, resolved)?],
        })
    }
}

impl Mirrored for User {
    const TARGET: Target = Target::User;

    fn references(&self) -> Vec<Reference> {
        tags(&self.spec.tags).collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "username": name_of(self),
                "email": spec.email,
                "hashed_password": resolved.password_hash.as_deref().unwrap_or(LOCKED_PASSWORD),
                "is_superadmin": spec.is_superadmin,
                "is_active": spec.is_active,
                "email_verified": spec.email_verified,
                "profile": to_json(&spec.profile),
                "preferences": to_json(&spec.preferences),
            })),
            joins: vec![tag_rows(&USER_TAGS, &spec.tags, resolved)?],
        })
    }

    fn password_secret(&self) -> Option<(&str, &str, &str)> {
        self.spec.password_secret_ref.as_ref().map(|s| (s.namespace.as_str(), s.name.as_str(), s.key.as_str()))
    }
}

impl Mirrored for Tag {
    const TARGET: Target = Target::Tag;

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn build(&self, _: &Resolved) -> Result<Rows, Invalid> {
        Ok(Rows {
            row: object(
                json!({ "name": name_of(self), "description": self.spec.description, "color": self.spec.color }),
            ),
            joins: vec![],
        })
    }
}

impl Mirrored for Function {
    const TARGET: Target = Target::Function;

    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }

    fn build(&self, _: &Resolved) -> Result<Rows, Invalid> {
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "description": self.spec.description,
                "category": self.spec.category,
                "permissions": to_json(&self.spec.grants),
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for Group {
    const TARGET: Target = Target::Group;

    fn references(&self) -> Vec<Reference> {
        self.spec
            .members
            .iter()
            .enumerate()
            .map(|(i, user)| Reference::new(Target::User, user, format!("spec.members[{i}]")))
            .chain(tags(&self.spec.tags))
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let members = self
            .references()
            .into_iter()
            .filter(|r| r.target == Target::User)
            .map(|user| Ok(object(json!({ "user_id": resolved.member(&user, ANY_ROLE)? }))))
            .collect::<Result<_, Invalid>>()?;
        Ok(Rows {
            row: object(json!({ "name": name_of(self), "description": self.spec.description })),
            joins: vec![
                JoinRows { table: &USER_GROUPS, rows: members },
                tag_rows(&GROUP_TAGS, &self.spec.tags, resolved)?,
            ],
        })
    }
}

impl Mirrored for Policy {
    const TARGET: Target = Target::Policy;

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        let mut references = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            references.push(Reference::new(Target::Function, &rule.function, format!("spec.rules[{i}].function")));
            if let Some(environment) = &rule.environment {
                references.push(Reference::new(
                    Target::Environment,
                    environment,
                    format!("spec.rules[{i}].environment"),
                ));
            }
            if let Some(element) = &rule.element {
                references.push(Reference::new(Target::Element, element, format!("spec.rules[{i}].element")));
            }
        }
        for (i, user) in spec.subjects.users.iter().enumerate() {
            references.push(Reference::new(Target::User, user, format!("spec.subjects.users[{i}]")));
        }
        for (i, group) in spec.subjects.groups.iter().enumerate() {
            references.push(Reference::new(Target::Group, group, format!("spec.subjects.groups[{i}]")));
        }
        references.extend(tags(&spec.tags));
        references
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let optional = |target, name: &Option<String>, field: String| {
            name.as_deref().map(|name| resolved.id(&Reference::new(target, name, field))).transpose()
        };
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let function = Reference::new(Target::Function, &rule.function, format!("spec.rules[{i}].function"));
                Ok(object(json!({
                    "function_id": resolved.id(&function)?,
                    "environment_id": optional(Target::Environment, &rule.environment, format!("spec.rules[{i}].environment"))?,
                    "element_id": optional(Target::Element, &rule.element, format!("spec.rules[{i}].element"))?,
                    "conditions": to_json(&rule.conditions),
                })))
            })
            .collect::<Result<_, Invalid>>()?;
        let users = spec
            .subjects
            .users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let user = Reference::new(Target::User, user, format!("spec.subjects.users[{i}]"));
                Ok(object(json!({ "user_id": resolved.member(&user, ANY_ROLE)? })))
            })
            .collect::<Result<_, Invalid>>()?;
        let groups =
            spec.subjects.groups.iter().enumerate().map(|(i, group)| {
                (Reference::new(Target::Group, group, format!("spec.subjects.groups[{i}]")), json!({}))
            });
        Ok(Rows {
            row: object(json!({ "name": name_of(self), "description": spec.description, "is_active": spec.is_active })),
            joins: vec![
                JoinRows { table: &RULES, rows: rules },
                JoinRows { table: &POLICY_USERS, rows: users },
                linked(&POLICY_GROUPS, "group_id", groups, resolved)?,
                tag_rows(&POLICY_TAGS, &spec.tags, resolved)?,
            ],
        })
    }
}

impl Mirrored for Environment {
    const TARGET: Target = Target::Environment;

    fn references(&self) -> Vec<Reference> {
        tags(&self.spec.tags).collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "description": spec.description,
                "environment_type": to_json(&spec.environment_type),
                "is_active": spec.is_active,
                "configuration": to_json(&spec.configuration),
                "resource_limits": to_json(&spec.resource_limits),
            })),
            joins: vec![tag_rows(&ENVIRONMENT_TAGS, &spec.tags, resolved)?],
        })
    }
}

impl Mirrored for Element {
    const TARGET: Target = Target::Element;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "inactive")];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(Target::Environment, &self.spec.environment_ref.name, "spec.environmentRef"))
            .chain(tags(&self.spec.tags))
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let environment = Reference::new(Target::Environment, &spec.environment_ref.name, "spec.environmentRef");
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "description": spec.description,
                "environment_id": resolved.id(&environment)?,
                "element_type": spec.element_type.as_str(),
                "configuration": to_json(&spec.configuration),
                "monitoring_config": to_json(&spec.monitoring_config),
            })),
            joins: vec![tag_rows(&ELEMENT_TAGS, &spec.tags, resolved)?],
        })
    }
}

fn volumes(names: &[String]) -> impl Iterator<Item = (Reference, Value)> + '_ {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| (Reference::new(Target::Volume, name, format!("spec.volumes[{i}]")), json!({})))
}

fn networks(attachments: &[infra::NetworkAttachment]) -> impl Iterator<Item = (Reference, Value)> + '_ {
    attachments.iter().enumerate().map(|(i, a)| {
        (
            Reference::new(Target::Network, &a.network, format!("spec.networks[{i}].network")),
            json!({ "ip_address": a.ip_address }),
        )
    })
}

impl Mirrored for ContainerCluster {
    const TARGET: Target = Target::ContainerCluster;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase("status", "initializing"),
        StatusColumn { field: "nodeCount", column: "node_count", default: Some("0") },
    ];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(element(&self.spec.element_ref)).chain(volumes(&self.spec.volumes).map(|(r, _)| r)).collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "container_cluster")?,
                "cluster_mode": to_json(&spec.cluster_mode),
                "version": spec.version,
                "ha_enabled": spec.ha_enabled,
                "endpoint": to_json(&spec.endpoint),
                "cluster_config": to_json(&spec.cluster_config),
            })),
            joins: vec![linked(&VOLUME_CONTAINER_CLUSTERS, "volume_id", volumes(&spec.volumes), resolved)?],
        })
    }
}

impl Mirrored for ContainerNode {
    const TARGET: Target = Target::ContainerNode;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "joining")];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(Target::ContainerCluster, &self.spec.cluster_ref.name, "spec.clusterRef"))
            .chain(networks(&self.spec.networks).map(|(r, _)| r))
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let cluster = Reference::new(Target::ContainerCluster, &spec.cluster_ref.name, "spec.clusterRef");
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "cluster_id": resolved.id(&cluster)?,
                "hostname": spec.hostname,
                "ip_address": spec.ip_address,
                "node_role": to_json(&spec.node_role),
                "cpu_cores": spec.cpu_cores,
                "memory_gb": spec.memory_gb,
                "disk_gb": spec.disk_gb,
                "node_config": to_json(&spec.node_config),
            })),
            joins: vec![linked(&NETWORK_CONTAINER_NODES, "network_id", networks(&spec.networks), resolved)?],
        })
    }
}

impl Mirrored for VM {
    const TARGET: Target = Target::VM;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "creating")];

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        std::iter::once(element(&spec.element_ref))
            .chain(spec.stack_ref.iter().map(|s| Reference::new(Target::Stack, &s.name, "spec.stackRef")))
            .chain(volumes(&spec.volumes).map(|(r, _)| r))
            .chain(networks(&spec.networks).map(|(r, _)| r))
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = spec
            .stack_ref
            .as_ref()
            .map(|s| resolved.id(&Reference::new(Target::Stack, &s.name, "spec.stackRef")))
            .transpose()?;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "vm")?,
                "stack_id": stack,
                "cpu_cores": spec.cpu_cores,
                "memory_gb": spec.memory_gb,
                "disk_gb": spec.disk_gb,
                "os_type": to_json(&spec.os_type),
                "os_version": spec.os_version,
                "ip_address": spec.ip_address,
                "hostname": spec.hostname,
                "hypervisor_type": spec.hypervisor_type,
                "vm_config": to_json(&spec.vm_config),
            })),
            joins: vec![
                linked(&VOLUME_VMS, "volume_id", volumes(&spec.volumes), resolved)?,
                linked(&NETWORK_VMS, "network_id", networks(&spec.networks), resolved)?,
            ],
        })
    }
}

impl Mirrored for PhysicalHost {
    const TARGET: Target = Target::PhysicalHost;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "provisioning")];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(element(&self.spec.element_ref)).chain(networks(&self.spec.networks).map(|(r, _)| r)).collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "physical_host")?,
                "hostname": spec.hostname,
                "ip_address": spec.ip_address,
                "cpu_cores": spec.cpu_cores,
                "memory_gb": spec.memory_gb,
                "disk_gb": spec.disk_gb,
                "os_type": to_json(&spec.os_type),
                "os_version": spec.os_version,
                "host_config": to_json(&spec.host_config),
            })),
            joins: vec![linked(&NETWORK_PHYSICAL_HOSTS, "network_id", networks(&spec.networks), resolved)?],
        })
    }
}

impl Mirrored for Network {
    const TARGET: Target = Target::Network;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "creating")];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "network")?,
                "network_type": to_json(&spec.network_type),
                "subnet": spec.subnet,
                "gateway": spec.gateway,
                "encryption_enabled": spec.encryption_enabled,
                "cross_cluster": spec.cross_cluster,
                "network_config": to_json(&spec.network_config),
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for Volume {
    const TARGET: Target = Target::Volume;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "creating")];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "volume")?,
                "volume_type": to_json(&spec.volume_type),
                "size_gb": spec.size_gb,
                "backup_enabled": spec.backup_enabled,
                "backup_schedule": spec.backup_schedule,
                "shared": spec.shared,
                "access_mode": to_json(&spec.access_mode),
                "storage_config": to_json(&spec.storage_config),
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for Gateway {
    const TARGET: Target = Target::Gateway;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "configuring")];

    fn references(&self) -> Vec<Reference> {
        std::iter::once(Reference::new(Target::Stack, &self.spec.stack_ref.name, "spec.stackRef"))
            .chain(
                self.spec
                    .networks
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Reference::new(Target::Network, n, format!("spec.networks[{i}]"))),
            )
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = Reference::new(Target::Stack, &spec.stack_ref.name, "spec.stackRef");
        let links = self.references().into_iter().skip(1).map(|network| (network, json!({})));
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "stack_id": resolved.id(&stack)?,
                "gateway_type": to_json(&spec.gateway_type),
                "auto_ssl": spec.auto_ssl,
                "ssl_config": to_json(&spec.ssl_config),
                "load_balancing_strategy": to_json(&spec.load_balancing_strategy),
                "rate_limiting": spec.rate_limiting,
                "rate_limit_config": to_json(&spec.rate_limit_config),
                "gateway_config": to_json(&spec.gateway_config),
            })),
            joins: vec![linked(&NETWORK_GATEWAYS, "network_id", links, resolved)?],
        })
    }
}

impl Mirrored for Domain {
    const TARGET: Target = Target::Domain;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase("status", "configuring"),
        StatusColumn { field: "dnssecStatus", column: "dnssec_status", default: Some("disabled") },
    ];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "fqdn": spec.fqdn,
                "element_id": resolved.element_of_type(&element(&spec.element_ref), "domain")?,
                "dnssec_enabled": spec.dnssec_enabled,
                "auto_ssl": spec.auto_ssl,
                "wildcard_support": spec.wildcard_support,
                "dns_config": to_json(&spec.dns_config),
            })),
            joins: vec![],
        })
    }
}

fn domain(reference: &ObjectRef) -> Reference {
    Reference::new(Target::Domain, &reference.name, "spec.domainRef")
}

impl Mirrored for DnsRecord {
    const TARGET: Target = Target::DnsRecord;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "pending")];

    fn references(&self) -> Vec<Reference> {
        vec![domain(&self.spec.domain_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "domain_id": resolved.id(&domain(&spec.domain_ref))?,
                "name": spec.record_name,
                "record_type": to_json(&spec.record_type),
                "value": spec.value,
                "ttl": spec.ttl,
                "priority": spec.priority,
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for DnssecKey {
    const TARGET: Target = Target::DnssecKey;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase("status", "generated")];

    fn references(&self) -> Vec<Reference> {
        vec![domain(&self.spec.domain_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "domain_id": resolved.id(&domain(&spec.domain_ref))?,
                "key_type": to_json(&spec.key_type),
                "algorithm": to_json(&spec.algorithm),
                "key_tag": spec.key_tag,
                "public_key": spec.public_key,
                "activated_at": spec.activates_at,
                "expires_at": spec.expires_at,
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for Stack {
    const TARGET: Target = Target::Stack;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase("status", "draft"),
        StatusColumn { field: "lastDeployedAt", column: "last_deployed_at", default: None },
    ];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "description": spec.description,
                "element_id": resolved.id(&element(&spec.element_ref))?,
                "template_id": spec.template_id,
                "configuration": to_json(&spec.configuration),
                "llm_optimized": spec.llm_optimized,
                "llm_optimization_version": spec.llm_optimization_version,
                "workflow_id": spec.workflow_id,
            })),
            joins: vec![],
        })
    }
}

impl Mirrored for Application {
    const TARGET: Target = Target::Application;
    const STATUS_COLUMNS: &'static [StatusColumn] =
        &[StatusColumn { field: "deploymentStatus", column: "deployment_status", default: Some("pending") }];

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        std::iter::once(Reference::new(Target::Stack, &spec.stack_ref.name, "spec.stackRef"))
            .chain(
                spec.volumes
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Reference::new(Target::Volume, &v.volume, format!("spec.volumes[{i}].volume"))),
            )
            .chain(
                spec.networks
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Reference::new(Target::Network, &n.network, format!("spec.networks[{i}].network"))),
            )
            .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = Reference::new(Target::Stack, &spec.stack_ref.name, "spec.stackRef");
        let mounts = spec.volumes.iter().enumerate().map(|(i, v)| {
            (
                Reference::new(Target::Volume, &v.volume, format!("spec.volumes[{i}].volume")),
                json!({ "mount_path": v.mount_path, "mount_options": to_json(&v.mount_options) }),
            )
        });
        let connections = spec.networks.iter().enumerate().map(|(i, n)| {
            (
                Reference::new(Target::Network, &n.network, format!("spec.networks[{i}].network")),
                json!({ "ip_address": n.ip_address, "connection_config": to_json(&n.connection_config) }),
            )
        });
        Ok(Rows {
            row: object(json!({
                "name": name_of(self),
                "description": spec.description,
                "stack_id": resolved.id(&stack)?,
                "application_type": to_json(&spec.application_type),
                "plugin_name": spec.plugin_name,
                "plugin_version": spec.plugin_version,
                "deployment_config": to_json(&spec.deployment_config),
                "allocated_resources": to_json(&spec.allocated_resources),
            })),
            joins: vec![
                linked(&VOLUME_APPLICATIONS, "volume_id", mounts, resolved)?,
                linked(&NETWORK_APPLICATIONS, "network_id", connections, resolved)?,
            ],
        })
    }
}

/// The rollout owns `status`, `started_at`, `completed_at` and `result`, written with its steps
/// (`crate::events`): the mirror leaves them alone.
impl Mirrored for Deployment {
    const TARGET: Target = Target::Deployment;

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        [
            Some(Reference::new(Target::Stack, &spec.stack_ref.name, "spec.stackRef")),
            spec.application_ref.as_ref().map(|a| Reference::new(Target::Application, &a.name, "spec.applicationRef")),
            Some(Reference::new(Target::User, &spec.triggered_by, "spec.triggeredBy")),
            spec.parent_deployment_ref
                .as_ref()
                .map(|p| Reference::new(Target::Deployment, &p.name, "spec.parentDeploymentRef")),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn build(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let stack = resolved.id(&Reference::new(Target::Stack, &spec.stack_ref.name, "spec.stackRef"))?;
        let application = match &spec.application_ref {
            Some(a) => {
                let reference = Reference::new(Target::Application, &a.name, "spec.applicationRef");
                if resolved.get(&reference)?.stack_id != Some(stack) {
                    return Err(Invalid(format!(
                        "spec.applicationRef: Application {:?} is not part of Stack {:?}",
                        a.name, spec.stack_ref.name
                    )));
                }
                Some(resolved.id(&reference)?)
            }
            None => None,
        };
        let parent = spec
            .parent_deployment_ref
            .as_ref()
            .map(|p| resolved.id(&Reference::new(Target::Deployment, &p.name, "spec.parentDeploymentRef")))
            .transpose()?;
        let user = Reference::new(Target::User, &spec.triggered_by, "spec.triggeredBy");
        Ok(Rows {
            row: object(json!({
                "stack_id": stack,
                "application_id": application,
                "deployment_version": spec.deployment_version,
                "deployment_type": to_json(&spec.deployment_type),
                "deployment_config": to_json(&spec.deployment_config),
                "triggered_by": resolved.member(&user, ROLES_THAT_DEPLOY)?,
                "parent_deployment_id": parent,
            })),
            joins: vec![],
        })
    }
}
