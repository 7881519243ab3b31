//! Policy → a Role and a RoleBinding per rule, for the Kubernetes usernames of the policy's
//! users and of its groups' members, in the organization's namespaces (or the namespace of the
//! rule's environment, or of its element's). Admission admits a Policy only from someone who
//! may do all it grants, where it grants it ([`Policy::grants`]); the operator makes the Roles
//! only of a Policy admission recorded.

use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, Reference, Resolved, yes};
use super::index::Index;
use super::organization::tenant_namespace;
use super::shared::{Link, columns, linked, members, metadata, tag_rows, tag_table, tags, typed_rows};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::actor::{Actor, CHANGED_BY};
use crate::mirror::identity::Identities;
use crate::mirror::{Invalid, JoinTable, Rows};
use crate::provision::{Anchor, DeletionPolicy, Placement, ProvisionError, Result, workload_namespace};

/// Rules granting functions to users and groups (tables `policies`, `rules`, `policy_users`,
/// `policy_groups`, `policy_tags`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Policy",
    namespaced,
    category = "windflow",
    shortname = "wfpolicy",
    status = "CommonStatus",
    printcolumn(name = "Active", type_ = "boolean", json_path = ".spec.isActive"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) >= 2 && size(self.metadata.name) <= 100").message("a policy name has 2 to 100 characters")
)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// What the policy grants and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An inactive policy grants nothing.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// The functions granted, each optionally limited to an environment or an element.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// Who the policy applies to.
    #[serde(default)]
    pub subjects: Subjects,
    /// Names of Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One granted function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Name of the Function granted.
    #[schemars(length(min = 1, max = 100))]
    pub function: String,
    /// Limits the rule to this Environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Limits the rule to this Element.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element: Option<String>,
    /// Extra conditions (free-form).
    #[serde(default)]
    pub conditions: FreeForm,
}

/// Users and groups a policy applies to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subjects {
    /// Names of Users, members of the policy's organization.
    #[serde(default)]
    pub users: Vec<String>,
    /// Names of Groups in the policy's namespace.
    #[serde(default)]
    pub groups: Vec<String>,
}

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

/// What one rule of a Policy grants in one namespace: the Role `name` of its Function's grants
/// there.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The rule, as `spec.rules[i]`.
    pub field: String,
    pub name: String,
    pub namespace: String,
    pub function: std::sync::Arc<super::Function>,
}

impl Policy {
    /// What the Policy grants where, as `index` holds its organization `organization`'s
    /// environments and elements and the Functions: a rule with neither environment nor
    /// element in the organization's namespace and every environment's, else in the namespace
    /// of its environment, or of its element's environment (both set: they must agree).
    pub fn grants(&self, index: &Index, organization: &str) -> Result<Vec<Grant>> {
        let tenant = self.namespace().unwrap_or_default();
        let mut every_namespace = vec![tenant_namespace(index.organization(&tenant)?.as_ref())];
        for environment in index.all::<super::Environment>(Some(&tenant)) {
            every_namespace.push(workload_namespace(organization, &environment.name_any())?);
        }
        let mut grants = vec![];
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let field = format!("spec.rules[{i}]");
            let function = index.get::<super::Function>(None, &rule.function).ok_or_else(|| {
                ProvisionError::Missing(format!("{field}.function: Function {:?} does not exist", rule.function))
            })?;
            let element_environment = match &rule.element {
                Some(element) => Some(
                    index
                        .named::<super::Element>(&tenant, element, &format!("{field}.element"))?
                        .spec
                        .environment_ref
                        .name
                        .clone(),
                ),
                None => None,
            };
            let environment = match (&rule.environment, element_environment) {
                (Some(named), Some(of_element)) if *named != of_element => {
                    return Err(ProvisionError::invalid(
                        &format!("{field}.element"),
                        format!(
                            "Element {:?} is in environment {of_element:?}, not {named:?}",
                            rule.element.clone().unwrap_or_default()
                        ),
                    ));
                }
                (named, of_element) => named.clone().or(of_element),
            };
            let namespaces = match environment {
                Some(environment) => vec![workload_namespace(organization, &environment)?],
                None => every_namespace.clone(),
            };
            let name = format!("policy-{}-{}", self.name_any(), rule.function);
            grants.extend(namespaces.into_iter().map(|namespace| Grant {
                field: field.clone(),
                name: name.clone(),
                namespace,
                function: function.clone(),
            }));
        }
        Ok(grants)
    }

    /// Who the Roles are bound to: the Kubernetes usernames of its Users and of its Groups'
    /// members, as `identities` map them back, each once.
    fn subjects(&self, index: &Index, identities: &Identities) -> Vec<Subject> {
        let tenant = self.namespace();
        let members = self
            .spec
            .subjects
            .groups
            .iter()
            .filter_map(|group| index.get::<super::Group>(tenant.as_deref(), group))
            .flat_map(|group| group.spec.members.clone());
        let mut users: Vec<String> = self.spec.subjects.users.iter().cloned().chain(members).collect();
        users.sort();
        users.dedup();
        let mut usernames: Vec<String> = users
            .iter()
            .flat_map(|name| {
                let email = index.get::<super::User>(None, name).map(|user| user.spec.email.clone());
                identities.usernames(name, email.as_deref())
            })
            .collect();
        usernames.sort();
        usernames.dedup();
        usernames
            .into_iter()
            .map(|username| Subject {
                api_group: Some(RBAC_GROUP.into()),
                kind: "User".into(),
                name: username,
                namespace: None,
            })
            .collect()
    }
}

child_set! {
    /// What a Policy provisions: a Role and its RoleBinding per rule and namespace.
    PolicyChild { Role, RoleBinding }
}

impl Kind for Policy {
    const ID: KindId = KindId::Policy;
    const TABLE: &'static str = "policies";
    type Children = PolicyChild;

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

    /// A Role and its RoleBinding per grant. Where admission records authors, only once it
    /// recorded this Policy's: it admitted it from someone who may do all it grants.
    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<PolicyChild>> {
        if !self.spec.is_active {
            return Ok(vec![]);
        }
        let recorded =
            self.metadata.annotations.as_ref().and_then(|annotations| Actor::recorded(annotations, CHANGED_BY));
        if inputs.config.rollouts.requesters_recorded && recorded.is_none() {
            return Err(ProvisionError::NotAuthorized(format!(
                "no record of who wrote this Policy (admission was not there): its Roles are made once someone who \
                 may do all it grants applies it ({CHANGED_BY})"
            )));
        }
        let subjects = self.subjects(inputs.index, &inputs.config.identities);
        let mut children = vec![];
        for grant in self.grants(inputs.index, &placement.organization)? {
            children.push(PolicyChild::Role(Role {
                metadata: metadata(Some(&grant.namespace), &grant.name),
                rules: Some(grant.function.rbac_rules()),
            }));
            children.push(PolicyChild::RoleBinding(RoleBinding {
                metadata: metadata(Some(&grant.namespace), &grant.name),
                role_ref: RoleRef { api_group: Some(RBAC_GROUP.into()), kind: "Role".into(), name: grant.name },
                subjects: Some(subjects.clone()),
            }));
        }
        Ok(children)
    }
}

/// Who may roll a stack out: the one rule that admission, the rollout controller and the SQL
/// function `create_deployment` apply alike (case by case, `tests/authorization.rs`).
pub mod deploying {
    use std::sync::Arc;

    use kube::ResourceExt;

    use super::Policy;
    use crate::kinds::deployment::Deployment;
    use crate::kinds::function::Function;
    use crate::kinds::function::Verb;
    use crate::kinds::group::Group;
    use crate::kinds::organization::Organization;
    use crate::kinds::organization::tenant_of;
    use crate::kinds::shared::ROLES_THAT_DEPLOY;
    use crate::kinds::stack::Stack;
    use crate::kinds::user::User;
    use crate::kinds::{Element, Indexed};
    use crate::mirror::actor::Actor;

    /// Where the rule reads the objects: the operator's index, or the API server for the
    /// admission webhook, which every replica serves, leader or not.
    pub trait Lookup: Sync {
        /// The objects of `K` in `namespace`, or in every namespace (and for a cluster-scoped
        /// kind) when none is given.
        fn list<K: Indexed>(
            &self,
            namespace: Option<&str>,
        ) -> impl Future<Output = Result<Vec<Arc<K>>, kube::Error>> + Send;
    }

    /// What the rule made of a rollout.
    #[derive(Debug, PartialEq, Eq)]
    pub enum Decision {
        Allowed,
        Refused(Refusal),
        /// An object the rule reads does not exist yet (GitOps applies in any order): decided
        /// once it does, before the rollout starts.
        Undecided(String),
    }

    /// Decides whether `deployment` may roll out: `requester`, when given, may name its
    /// `triggeredBy` ([`may_trigger_as`]), and that User may deploy the stack ([`authorize`]).
    pub async fn decide<L: Lookup>(
        lookup: &L,
        deployment: &Deployment,
        requester: Option<&Actor>,
        platform_groups: &[String],
    ) -> Result<Decision, kube::Error> {
        let namespace = deployment.namespace().unwrap_or_default();
        let name = deployment.spec.triggered_by.as_str();
        let users = lookup.list::<User>(None).await?;
        if let Some(requester) = requester {
            let requester_user = requester.login.as_deref().and_then(|login| user_of_login(&users, login));
            if let Err(refusal) = may_trigger_as(requester, requester_user, name, platform_groups) {
                return Ok(Decision::Refused(refusal));
            }
        }
        let Some(user) = users.iter().find(|u| u.name_any() == name) else {
            return Ok(Decision::Undecided(format!("User {name:?} does not exist yet")));
        };
        let organizations = lookup.list::<Organization>(None).await?;
        let Some(organization) = tenant_of(organizations, &namespace) else {
            return Ok(Decision::Undecided(format!("namespace {namespace:?} belongs to no Organization yet")));
        };
        let stack_name = &deployment.spec.stack_ref.name;
        let stacks = lookup.list::<Stack>(Some(&namespace)).await?;
        let Some(stack) = stacks.iter().find(|s| &s.name_any() == stack_name) else {
            return Ok(Decision::Undecided(format!("Stack {stack_name:?} does not exist yet")));
        };
        let element_name = &stack.spec.element_ref.name;
        let elements = lookup.list::<Element>(Some(&namespace)).await?;
        let Some(element) = elements.iter().find(|e| &e.name_any() == element_name) else {
            return Ok(Decision::Undecided(format!("Element {element_name:?} does not exist yet")));
        };
        let request = Request {
            organization: &organization,
            environment: &element.spec.environment_ref.name,
            element: element_name,
            triggered_by: name,
            user: Some(user),
            policies: &lookup.list::<Policy>(Some(&namespace)).await?,
            groups: &lookup.list::<Group>(Some(&namespace)).await?,
            functions: &lookup.list::<Function>(None).await?,
        };
        Ok(match authorize(&request) {
            Ok(()) => Decision::Allowed,
            Err(refusal) => Decision::Refused(refusal),
        })
    }

    /// The access a Function must grant to deploy: creating WindFlow Deployments.
    pub const GRANT: (&str, &str, Verb) = (crate::kinds::common::GROUP, "deployments", Verb::Create);

    /// What the rule reads: the stack's organization and place, the user named by `triggeredBy`
    /// and what grants it rights, as the index or the API server has them.
    pub struct Request<'a> {
        pub organization: &'a Organization,
        pub environment: &'a str,
        pub element: &'a str,
        pub triggered_by: &'a str,
        pub user: Option<&'a User>,
        pub policies: &'a [Arc<Policy>],
        pub groups: &'a [Arc<Group>],
        pub functions: &'a [Arc<Function>],
    }

    /// Why a rollout is refused, as users read it at `kubectl apply` and in the Deployment's
    /// conditions.
    #[derive(Debug, PartialEq, Eq, thiserror::Error)]
    pub enum Refusal {
        #[error("spec.triggeredBy: User {0:?} does not exist")]
        UnknownUser(String),
        #[error("spec.triggeredBy: User {0:?} is not active")]
        Inactive(String),
        #[error("spec.triggeredBy: User {user:?} is not a member of organization {organization:?}")]
        NotMember { user: String, organization: String },
        #[error(
            "spec.triggeredBy: User {user:?} is a {role} of organization {organization:?}; deploying needs owner, admin or member"
        )]
        Role { user: String, role: &'static str, organization: String },
        #[error(
            "spec.triggeredBy: no active Policy of organization {organization:?} grants User {user:?} a Function that may create deployments.windflow.io on environment {environment:?} and element {element:?}; add such a rule to a Policy whose subjects include the user or one of their Groups"
        )]
        NotGranted { user: String, organization: String, environment: String, element: String },
        #[error(
            "spec.triggeredBy: {requester} may not trigger a rollout as User {triggered_by:?}; name your own User, or ask a superadmin or a member of a platform group ({platform_groups})"
        )]
        NotRequester { requester: String, triggered_by: String, platform_groups: String },
        #[error(
            "no record of who created this Deployment: WindFlow's admission webhook did not see it; create it again"
        )]
        Unattributed,
    }

    /// Whether the user named by `triggeredBy` may roll the stack out: active, and a superadmin
    /// or a member who may deploy and holds a Function that creates Deployments through an
    /// active Policy whose rule covers the stack's environment and element.
    pub fn authorize(request: &Request) -> Result<(), Refusal> {
        let name = request.triggered_by;
        let user = request.user.ok_or_else(|| Refusal::UnknownUser(name.to_owned()))?;
        if !user.spec.is_active {
            return Err(Refusal::Inactive(name.to_owned()));
        }
        if user.spec.is_superadmin {
            return Ok(());
        }
        let organization = request.organization.name_any();
        let member = request.organization.spec.members.iter().find(|m| m.user == name);
        let role =
            member.ok_or_else(|| Refusal::NotMember { user: name.to_owned(), organization: organization.clone() })?;
        let role = role.role.as_str();
        if !ROLES_THAT_DEPLOY.contains(&role) {
            return Err(Refusal::Role { user: name.to_owned(), role, organization });
        }
        let groups: Vec<String> = request
            .groups
            .iter()
            .filter(|group| group.spec.members.iter().any(|m| m == name))
            .map(|group| group.name_any())
            .collect();
        let deploys =
            |function: &str| request.functions.iter().any(|f| f.name_any() == function && grants_deploying(f));
        let granted = request.policies.iter().filter(|p| p.spec.is_active).any(|policy| {
            let subjects = &policy.spec.subjects;
            let subject =
                subjects.users.iter().any(|u| u == name) || subjects.groups.iter().any(|g| groups.contains(g));
            subject
                && policy.spec.rules.iter().any(|rule| {
                    rule.environment.as_deref().is_none_or(|e| e == request.environment)
                        && rule.element.as_deref().is_none_or(|e| e == request.element)
                        && deploys(&rule.function)
                })
        });
        if granted {
            Ok(())
        } else {
            Err(Refusal::NotGranted {
                user: name.to_owned(),
                organization,
                environment: request.environment.to_owned(),
                element: request.element.to_owned(),
            })
        }
    }

    /// Whether a Function grants creating WindFlow Deployments (`*` counts as any group or resource).
    pub fn grants_deploying(function: &Function) -> bool {
        let (group, resource, verb) = GRANT;
        function.spec.grants.iter().any(|grant| {
            grant.api_groups.iter().any(|g| g == group || g == "*")
                && grant.resources.iter().any(|r| r == resource || r == "*")
                && grant.verbs.contains(&verb)
        })
    }

    /// Whether `requester` may name `triggered_by`: it is their own User (by name or email), or
    /// they are a superadmin or in one of the platform groups.
    pub fn may_trigger_as(
        requester: &Actor,
        requester_user: Option<&User>,
        triggered_by: &str,
        platform_groups: &[String],
    ) -> Result<(), Refusal> {
        let own = requester_user.is_some_and(|user| user.name_any() == triggered_by);
        let superadmin = requester_user.is_some_and(|user| user.spec.is_superadmin && user.spec.is_active);
        let platform = requester.groups.iter().any(|g| platform_groups.contains(g));
        if own || superadmin || platform {
            return Ok(());
        }
        Err(Refusal::NotRequester {
            requester: match &requester.login {
                Some(login) if requester_user.is_some() => format!("User {login:?}"),
                _ => format!("{:?}, who is no WindFlow User,", requester.username),
            },
            triggered_by: triggered_by.to_owned(),
            platform_groups: if platform_groups.is_empty() {
                "none set".to_owned()
            } else {
                platform_groups.join(", ")
            },
        })
    }

    /// The User a login names: by name, else by email.
    pub fn user_of_login<'a>(users: &'a [Arc<User>], login: &str) -> Option<&'a User> {
        let by_name = users.iter().find(|u| u.name_any() == login);
        by_name.or_else(|| users.iter().find(|u| u.has_email(login))).map(AsRef::as_ref)
    }
}
