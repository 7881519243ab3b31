//! Policy → a Role and a RoleBinding per rule, for the policy's users and groups, in the
//! organization's namespaces (or the rule's environment only).

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::shared::{Link, columns, linked, members, metadata, tag_rows, tag_table, tags, typed, typed_rows};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy, FreeForm};
use crate::mirror::{Invalid, JoinTable, Reference, Resolved, Rows};
use crate::provision::ChildType;
use crate::provision::types::{ROLE, ROLE_BINDING};
use crate::provision::{Anchor, Placement, ProvisionError, Result, tenant_namespace, workload_namespace};

pub use crate::api::tenancy::Policy;

pub static RULES: JoinTable = JoinTable {
    table: "rules",
    owner: "policy_id",
    key: &["function_id", "environment_id", "element_id"],
    values: &["conditions"],
};
pub static POLICY_USERS: JoinTable =
    JoinTable { table: "policy_users", owner: "policy_id", key: &["user_id"], values: &[] };
pub static POLICY_GROUPS: JoinTable =
    JoinTable { table: "policy_groups", owner: "policy_id", key: &["group_id"], values: &[] };
pub static POLICY_TAGS: JoinTable = tag_table("policy_tags", "policy_id");

/// A `policies` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct PolicyRow<'a> {
    name: String,
    description: Option<&'a str>,
    is_active: bool,
}

/// A `rules` row: a function granted, possibly only in one environment or on one element.
#[derive(Serialize)]
struct RuleRow<'a> {
    function_id: Uuid,
    environment_id: Option<Uuid>,
    element_id: Option<Uuid>,
    conditions: &'a FreeForm,
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

impl Kind for Policy {
    const ID: KindId = KindId::Policy;
    const TABLE: &'static str = "policies";
    const CHILD_TYPES: &'static [ChildType] = &[ROLE, ROLE_BINDING];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref()
    }

    fn references(&self) -> Vec<Reference> {
        let spec = &self.spec;
        let mut references = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            references.push(Reference::new(KindId::Function, &rule.function, format!("spec.rules[{i}].function")));
            if let Some(environment) = &rule.environment {
                references.push(Reference::new(
                    KindId::Environment,
                    environment,
                    format!("spec.rules[{i}].environment"),
                ));
            }
            if let Some(element) = &rule.element {
                references.push(Reference::new(KindId::Element, element, format!("spec.rules[{i}].element")));
            }
        }
        for (i, user) in spec.subjects.users.iter().enumerate() {
            references.push(Reference::new(KindId::User, user, format!("spec.subjects.users[{i}]")));
        }
        for (i, group) in spec.subjects.groups.iter().enumerate() {
            references.push(Reference::new(KindId::Group, group, format!("spec.subjects.groups[{i}]")));
        }
        references.extend(tags(&spec.tags));
        references
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        let optional = |target, name: &Option<String>, field: String| {
            name.as_deref().map(|name| resolved.id(&Reference::new(target, name, field))).transpose()
        };
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let function = Reference::new(KindId::Function, &rule.function, format!("spec.rules[{i}].function"));
                Ok(RuleRow {
                    function_id: resolved.id(&function)?,
                    environment_id: optional(
                        KindId::Environment,
                        &rule.environment,
                        format!("spec.rules[{i}].environment"),
                    )?,
                    element_id: optional(KindId::Element, &rule.element, format!("spec.rules[{i}].element"))?,
                    conditions: &rule.conditions,
                })
            })
            .collect::<Result<Vec<_>, Invalid>>()?;
        let users = spec
            .subjects
            .users
            .iter()
            .enumerate()
            .map(|(i, user)| Reference::new(KindId::User, user, format!("spec.subjects.users[{i}]")));
        let groups =
            spec.subjects.groups.iter().enumerate().map(|(i, group)| {
                (Reference::new(KindId::Group, group, format!("spec.subjects.groups[{i}]")), Link {})
            });
        Ok(Rows {
            row: columns(&PolicyRow {
                name: self.name_any(),
                description: spec.description.as_deref(),
                is_active: spec.is_active,
            })?,
            joins: vec![
                typed_rows(&RULES, &rules)?,
                members(&POLICY_USERS, users, resolved)?,
                linked(&POLICY_GROUPS, groups, resolved)?,
                tag_rows(&POLICY_TAGS, &spec.tags, resolved)?,
            ],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Tenant
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        if !self.spec.is_active {
            return Ok(vec![]);
        }
        let tenant = self.namespace().unwrap_or_default();
        let organization = inputs.index.organization(&tenant)?;
        let mut every_namespace = vec![tenant_namespace(&organization)];
        for environment in inputs.index.all::<super::Environment>(Some(&tenant)) {
            every_namespace.push(workload_namespace(&placement.organization, &environment.name_any())?);
        }
        let subject = |kind: &str, name: &String| Subject {
            api_group: Some(RBAC_GROUP.into()),
            kind: kind.into(),
            name: name.clone(),
            namespace: None,
        };
        let subjects: Vec<Subject> = (self.spec.subjects.users.iter().map(|user| subject("User", user)))
            .chain(self.spec.subjects.groups.iter().map(|group| subject("Group", group)))
            .collect();
        let mut children = vec![];
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let function = inputs.index.get::<super::Function>(None, &rule.function).ok_or_else(|| {
                ProvisionError::Missing(format!(
                    "spec.rules[{i}].function: Function {:?} does not exist",
                    rule.function
                ))
            })?;
            let namespaces = match &rule.environment {
                Some(environment) => {
                    inputs.index.named::<super::Environment>(
                        &tenant,
                        environment,
                        &format!("spec.rules[{i}].environment"),
                    )?;
                    vec![workload_namespace(&placement.organization, environment)?]
                }
                None => every_namespace.clone(),
            };
            let name = format!("policy-{}-{}", self.name_any(), rule.function);
            let rules: Vec<PolicyRule> = function
                .spec
                .grants
                .iter()
                .map(|grant| PolicyRule {
                    api_groups: Some(grant.api_groups.clone()),
                    resources: Some(grant.resources.clone()),
                    // Verbs are lower-case names (serde's `rename_all`).
                    verbs: grant
                        .verbs
                        .iter()
                        .filter_map(|verb| serde_json::to_value(verb).ok()?.as_str().map(str::to_owned))
                        .collect(),
                    ..PolicyRule::default()
                })
                .collect();
            for namespace in &namespaces {
                children.push(typed(&Role { metadata: metadata(Some(namespace), &name), rules: Some(rules.clone()) })?);
                children.push(typed(&RoleBinding {
                    metadata: metadata(Some(namespace), &name),
                    role_ref: RoleRef { api_group: Some(RBAC_GROUP.into()), kind: "Role".into(), name: name.clone() },
                    subjects: Some(subjects.clone()),
                })?);
            }
        }
        Ok(children)
    }
}
