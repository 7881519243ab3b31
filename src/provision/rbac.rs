//! Policy → a Role and a RoleBinding per rule, for the policy's users and groups, in the
//! organization's namespaces (or the rule's environment only).

use kube::ResourceExt;
use serde_json::{Value, json};

use super::types::{ROLE, ROLE_BINDING};
use super::{Anchor, Inputs, Placement, ProvisionError, Provisioned, Result, tenant_namespace, workload_namespace};
use crate::api::Policy;

impl Provisioned for Policy {
    fn anchor(&self) -> Anchor<'_> {
        Anchor::Tenant
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        if !self.spec.is_active {
            return Ok(vec![]);
        }
        let tenant = self.namespace().unwrap_or_default();
        let organization = inputs.world.organization(&tenant)?;
        let mut every_namespace = vec![tenant_namespace(organization)];
        for environment in inputs.world.environments.iter().filter(|e| e.namespace().as_deref() == Some(&tenant)) {
            every_namespace.push(workload_namespace(&placement.organization, &environment.name_any())?);
        }
        let subjects: Vec<Value> =
            self.spec
                .subjects
                .users
                .iter()
                .map(|user| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }))
                .chain(
                    self.spec.subjects.groups.iter().map(
                        |group| json!({ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group }),
                    ),
                )
                .collect();
        let mut children = vec![];
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let function = inputs.world.functions.iter().find(|f| f.name_any() == rule.function).ok_or_else(|| {
                ProvisionError::Missing(format!(
                    "spec.rules[{i}].function: Function {:?} does not exist",
                    rule.function
                ))
            })?;
            let namespaces = match &rule.environment {
                Some(environment) => {
                    inputs.world.environment(&tenant, environment, &format!("spec.rules[{i}].environment"))?;
                    vec![workload_namespace(&placement.organization, environment)?]
                }
                None => every_namespace.clone(),
            };
            let name = format!("policy-{}-{}", self.name_any(), rule.function);
            let rules: Vec<Value> = function
                .spec
                .grants
                .iter()
                .map(|g| json!({ "apiGroups": g.api_groups, "resources": g.resources, "verbs": g.verbs }))
                .collect();
            for namespace in &namespaces {
                children.push(ROLE.object(Some(namespace), &name, json!({ "rules": rules })));
                children.push(ROLE_BINDING.object(
                    Some(namespace),
                    &name,
                    json!({
                        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name },
                        "subjects": subjects,
                    }),
                ));
            }
        }
        Ok(children)
    }
}
