//! What admission answers, pure but for the objects it reads through a [`Lookup`]: the
//! mutation that records who acted, and the checks only admission can make.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use serde_json::{Value, json};

use super::{Access, Settings};
use crate::kinds::application::Application;
use crate::kinds::container_cluster::ContainerCluster;
use crate::kinds::deployment::Deployment;
use crate::kinds::element::Element;
use crate::kinds::environment::Environment;
use crate::kinds::function::{Function, Permission};
use crate::kinds::group::Group;
use crate::kinds::organization::{Organization, tenant_of};
use crate::kinds::policy::Policy;
use crate::kinds::policy::deploying::{self, Decision, Lookup};
use crate::kinds::stack::Stack;
use crate::kinds::user::User;
use crate::kinds::vm::VM;
use crate::kinds::volume::{Volume, parse_schedule};
use crate::kinds::{Index, Indexed};
use crate::mirror::actor::{Actor, CHANGED_BY, CREATED_BY, DELETED_BY};
use crate::provision::ProvisionError;
use crate::reconcile::FINALIZER;
use k8s_openapi::api::authentication::v1::UserInfo;

/// The mutation: `changed-by` is the requester on every create and update, `created-by` the
/// requester on create and what it was before on update. Whatever the client sent under these
/// keys is replaced, so they cannot be forged. A new object is born with the mirror's
/// finalizer, so that its first reconcile need not add it (one request fewer per object), and
/// no deletion can come before it; an update leaves finalizers as they are, so whoever must
/// may still remove it.
pub fn mutate(request: &AdmissionRequest<DynamicObject>, settings: &Settings) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let Some(object) = &request.object else { return response };
    let actor = settings.identities.actor(&request.user_info).to_annotation();
    let created = match &request.operation {
        Operation::Create => Some(actor.clone()),
        Operation::Update => request.old_object.as_ref().and_then(|old| old.annotations().get(CREATED_BY).cloned()),
        _ => return response,
    };
    let mut operations = recorded(object.annotations(), &actor, created);
    if matches!(request.operation, Operation::Create) {
        operations.extend(finalized(object.finalizers()));
    }
    if operations.is_empty() {
        return response;
    }
    match serde_json::from_value::<json_patch::Patch>(Value::Array(operations)) {
        Ok(patch) => response.clone().with_patch(patch).unwrap_or_else(|error| response.deny(error)),
        Err(error) => response.deny(error),
    }
}

/// The JSON patch operations that set the two annotations on an object that has `annotations`,
/// and remove a deleter a client sent.
fn recorded(annotations: &BTreeMap<String, String>, changed: &str, created: Option<String>) -> Vec<Value> {
    if annotations.is_empty() {
        let mut wanted = serde_json::Map::from_iter([(CHANGED_BY.to_owned(), json!(changed))]);
        if let Some(created) = created {
            wanted.insert(CREATED_BY.to_owned(), json!(created));
        }
        return vec![json!({ "op": "add", "path": "/metadata/annotations", "value": wanted })];
    }
    let path = |key: &str| format!("/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1"));
    let mut operations = vec![];
    if annotations.get(CHANGED_BY).map(String::as_str) != Some(changed) {
        operations.push(json!({ "op": "add", "path": path(CHANGED_BY), "value": changed }));
    }
    match (created, annotations.get(CREATED_BY)) {
        (Some(created), sent) if sent != Some(&created) => {
            operations.push(json!({ "op": "add", "path": path(CREATED_BY), "value": created }));
        }
        (None, Some(_)) => operations.push(json!({ "op": "remove", "path": path(CREATED_BY) })),
        _ => {}
    }
    // No client names a deleter: admission records it in the database.
    if annotations.contains_key(DELETED_BY) {
        operations.push(json!({ "op": "remove", "path": path(DELETED_BY) }));
    }
    operations
}

/// The JSON patch operation that adds the mirror's finalizer to an object that has `finalizers`,
/// unless it is there.
fn finalized(finalizers: &[String]) -> Option<Value> {
    match finalizers {
        _ if finalizers.iter().any(|finalizer| finalizer == FINALIZER) => None,
        [] => Some(json!({ "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] })),
        _ => Some(json!({ "op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER })),
    }
}

/// The checks, after every mutation: the record is admission's own; a Deployment is one its
/// requester may create ([`deploying::decide`]); the Users a Policy or Group names are members
/// of its organization; a Policy grants only what its requester may do, and a Function is
/// widened only by who may do what it adds; a User still named by Deployments is not deleted.
pub async fn validate<L: Lookup, A: Access>(
    request: &AdmissionRequest<DynamicObject>,
    settings: &Settings,
    lookup: &L,
    access: &A,
) -> Result<AdmissionResponse, kube::Error> {
    let response = AdmissionResponse::from(request);
    let actor = settings.identities.actor(&request.user_info);
    let verdict = match (&request.operation, request.kind.kind.as_str(), &request.object) {
        (Operation::Delete, "User", _) => still_named(&request.name, lookup).await?,
        (Operation::Create | Operation::Update, kind, Some(object)) => {
            match object.annotations().get(CHANGED_BY).filter(|value| **value == actor.to_annotation()) {
                None => Verdict::Denied(format!(
                    "metadata.annotations[{CHANGED_BY}]: only WindFlow's admission records who acted; the mutating webhook did not run"
                )),
                Some(_) => match (&request.operation, kind) {
                    (Operation::Create, "Deployment") => rollout(object, &actor, settings, lookup).await?,
                    (_, "Stack" | "Application" | "VM") => match placement(object, lookup).await? {
                        Verdict::Allowed(warnings) => quota(object, lookup).await?.warned(warnings),
                        refused => refused,
                    },
                    (_, "Volume") => match backup_schedule(object) {
                        Verdict::Allowed(_) => quota(object, lookup).await?,
                        refused => refused,
                    },
                    (_, "Environment") => quota(object, lookup).await?,
                    (_, "Policy") => {
                        // What is no valid Policy is its CRD schema's to refuse.
                        let Ok(policy) = object.clone().try_parse::<Policy>() else {
                            return Ok(response);
                        };
                        match members(object, &policy.spec.subjects.users, "spec.subjects.users", lookup).await? {
                            Verdict::Allowed(_) => escalation(&policy, &request.user_info, lookup, access).await?,
                            refused => refused,
                        }
                    }
                    (Operation::Update, "Function") => widening(request, access).await?,
                    (_, "Group") => {
                        // What is no valid Group is its CRD schema's to refuse.
                        let Ok(group) = object.clone().try_parse::<Group>() else {
                            return Ok(response);
                        };
                        match members(object, &group.spec.members, "spec.members", lookup).await? {
                            Verdict::Allowed(_) => joining(request, &group, lookup, access).await?,
                            refused => refused,
                        }
                    }
                    _ => Verdict::Allowed(vec![]),
                },
            }
        }
        _ => Verdict::Allowed(vec![]),
    };
    Ok(match verdict {
        Verdict::Allowed(warnings) if warnings.is_empty() => response,
        Verdict::Allowed(warnings) => {
            let mut response = response;
            response.warnings = Some(warnings);
            response
        }
        Verdict::Denied(message) => response.deny(message),
    })
}

/// What a check decided.
enum Verdict {
    /// Admitted, with warnings for the client.
    Allowed(Vec<String>),
    Denied(String),
}

impl Verdict {
    /// Refused, saying `message` of the `found` listed, if any is found.
    fn refused_for(found: &[String], message: impl FnOnce(String) -> String) -> Self {
        if found.is_empty() { Self::Allowed(vec![]) } else { Self::Denied(message(found.join(", "))) }
    }
    /// This verdict, with `earlier` warnings first if it admits.
    fn warned(self, mut earlier: Vec<String>) -> Self {
        match self {
            Self::Allowed(warnings) => {
                earlier.extend(warnings);
                Self::Allowed(earlier)
            }
            denied => denied,
        }
    }
}

/// A Volume's `backupSchedule` reads as five-field cron (CEL cannot tell).
fn backup_schedule(object: &DynamicObject) -> Verdict {
    // What is no valid Volume is its CRD schema's to refuse.
    let Ok(volume) = object.clone().try_parse::<Volume>() else { return Verdict::Allowed(vec![]) };
    match volume.spec.backup_schedule.as_deref().map(parse_schedule) {
        Some(Err(message)) => Verdict::Denied(message),
        _ => Verdict::Allowed(vec![]),
    }
}

async fn rollout<L: Lookup>(
    object: &DynamicObject,
    actor: &Actor,
    settings: &Settings,
    lookup: &L,
) -> Result<Verdict, kube::Error> {
    // What is no valid Deployment is its CRD schema's to refuse.
    let Ok(deployment) = object.clone().try_parse::<Deployment>() else { return Ok(Verdict::Allowed(vec![])) };
    if let Some(why) = suspension(&deployment, lookup).await? {
        return Ok(Verdict::Denied(crate::deploy::suspended_stack(&why, &deployment.spec.stack_ref.name)));
    }
    Ok(match deploying::decide(lookup, &deployment, Some(actor), &settings.platform_groups).await? {
        Decision::Allowed => Verdict::Allowed(vec![]),
        Decision::Refused(refusal) => Verdict::Denied(refusal.to_string()),
        Decision::Undecided(why) => Verdict::Allowed(vec![format!(
            "who may deploy is not checked yet: {why}; the operator checks it before the rollout starts"
        )]),
    })
}

/// Why the stack `deployment` rolls out is suspended, if it is: its Organization or
/// Environment is inactive ([`Index::suspension`]). The rollout would fail as it started.
async fn suspension<L: Lookup>(deployment: &Deployment, lookup: &L) -> Result<Option<String>, kube::Error> {
    let namespace = deployment.namespace();
    let namespace = namespace.as_deref();
    let mut documents = vec![];
    collect::<Organization, _>(lookup, None, &mut documents).await?;
    collect::<Environment, _>(lookup, namespace, &mut documents).await?;
    collect::<Element, _>(lookup, namespace, &mut documents).await?;
    collect::<Stack, _>(lookup, namespace, &mut documents).await?;
    let index = Index::from_documents(&documents);
    let stack = index.get::<Stack>(namespace, &deployment.spec.stack_ref.name);
    Ok(stack.and_then(|stack| index.suspension_of(stack.as_ref())))
}

/// Refuses what could not be placed, by the one rule of placement ([`Index::destinations`]),
/// over the namespace's ContainerClusters, Stacks, Applications, VMs and Volumes read now with
/// the admitted object in place of its stored version: a Stack whose applications have no
/// cluster to run on, and a Stack, Application or VM that would leave a Volume mounted on two
/// clusters (one that already is, it does not refuse). A cluster that does not exist yet is
/// the operator's to wait for.
async fn placement<L: Lookup>(object: &DynamicObject, lookup: &L) -> Result<Verdict, kube::Error> {
    let kind = object.types.as_ref().map(|types| types.kind.clone()).unwrap_or_default();
    // An Application or VM that mounts no volume cannot split one: nothing to read.
    if kind != "Stack" && object.data["spec"]["volumes"].as_array().is_none_or(Vec::is_empty) {
        return Ok(Verdict::Allowed(vec![]));
    }
    let namespace = object.namespace();
    let namespace = namespace.as_deref();
    let mut documents = vec![];
    collect::<ContainerCluster, _>(lookup, namespace, &mut documents).await?;
    collect::<Stack, _>(lookup, namespace, &mut documents).await?;
    collect::<Application, _>(lookup, namespace, &mut documents).await?;
    collect::<VM, _>(lookup, namespace, &mut documents).await?;
    collect::<Volume, _>(lookup, namespace, &mut documents).await?;
    let (before, after) = before_and_after(documents, object);
    if kind == "Stack" {
        // What is no valid Stack is its CRD schema's to refuse.
        let Ok(stack) = object.clone().try_parse::<Stack>() else { return Ok(Verdict::Allowed(vec![])) };
        match after.destinations(&stack) {
            Ok(_) => {}
            Err(refused @ ProvisionError::Invalid { .. }) => return Ok(Verdict::Denied(refused.to_string())),
            Err(undecided) => {
                return Ok(Verdict::Allowed(vec![format!(
                    "where its applications run is not decided yet: {undecided}; the operator decides once it is"
                )]));
            }
        }
    }
    let mut split = vec![];
    for volume in after.all::<Volume>(namespace) {
        let was_placed =
            before.get::<Volume>(namespace, &volume.name_any()).is_none_or(|v| before.destinations(v.as_ref()).is_ok());
        if let (Err(ProvisionError::Invalid { message, .. }), true) = (after.destinations(volume.as_ref()), was_placed)
        {
            split.push(format!("Volume {:?}: {message}", volume.name_any()));
        }
    }
    Ok(Verdict::refused_for(&split, |volumes| {
        format!("{kind} {:?} would split a volume across clusters: {volumes}", object.name_any())
    }))
}

/// The objects of `K` in `namespace`, as documents of an index.
/// The index of `documents`, and the index they would make with `object` admitted (in place of
/// its stored version).
fn before_and_after(mut documents: Vec<Value>, object: &DynamicObject) -> (Index, Index) {
    let kind = object.types.as_ref().map(|types| types.kind.clone()).unwrap_or_default();
    let before = Index::from_documents(&documents);
    documents.retain(|doc| doc["kind"] != kind.as_str() || doc["metadata"]["name"] != object.name_any().as_str());
    documents.push(serde_json::to_value(object).unwrap_or_default());
    (before, Index::from_documents(&documents))
}

/// Refuses a change that takes its organization beyond a quota: one that would put this
/// object, or one within the quotas so far, beyond them ([`Index::quotas`]). A change that
/// lowers what is used is always admitted.
async fn quota<L: Lookup>(object: &DynamicObject, lookup: &L) -> Result<Verdict, kube::Error> {
    let Some(namespace) = object.namespace() else { return Ok(Verdict::Allowed(vec![])) };
    let mut documents = vec![];
    collect::<Organization, _>(lookup, None, &mut documents).await?;
    let organizations = Index::from_documents(&documents);
    if organizations.tenant(&namespace).is_none_or(|org| org.spec.quotas.limits().is_empty()) {
        return Ok(Verdict::Allowed(vec![]));
    }
    let scope = Some(namespace.as_str());
    collect::<Environment, _>(lookup, scope, &mut documents).await?;
    collect::<Stack, _>(lookup, scope, &mut documents).await?;
    collect::<Application, _>(lookup, scope, &mut documents).await?;
    collect::<Volume, _>(lookup, scope, &mut documents).await?;
    collect::<VM, _>(lookup, scope, &mut documents).await?;
    let (before, after) = before_and_after(documents, object);
    let was_beyond = before.quotas(&namespace).beyond;
    let name = object.name_any();
    let kind = object.types.as_ref().map(|types| types.kind.clone()).unwrap_or_default();
    let newly_beyond = after.quotas(&namespace).beyond.into_iter().find(|(key, _)| !was_beyond.contains_key(key));
    Ok(match newly_beyond {
        None => Verdict::Allowed(vec![]),
        Some(((beyond_kind, beyond_name), why)) if beyond_kind.to_string() == kind && beyond_name == name => {
            Verdict::Denied(why)
        }
        Some(((beyond_kind, beyond_name), why)) => Verdict::Denied(format!(
            "this would leave {beyond_kind} {beyond_name}, which was within the quotas, beyond them: {why}"
        )),
    })
}

async fn collect<K: Indexed + serde::Serialize, L: Lookup>(
    lookup: &L,
    namespace: Option<&str>,
    documents: &mut Vec<Value>,
) -> Result<(), kube::Error> {
    let objects = lookup.list::<K>(namespace).await?;
    documents.extend(objects.iter().filter_map(|obj| serde_json::to_value(obj.as_ref()).ok()));
    Ok(())
}

/// Refuses a Policy that grants what its requester may not do where it grants it: a
/// SubjectAccessReview per namespace and permission, as Kubernetes RBAC refuses a Role that
/// would escalate its author. What it grants must be known to be checked: a Function,
/// Environment or Element it names that does not exist yet refuses it, until it does (GitOps
/// retries). A rule without environment or element is checked in the namespaces that exist.
async fn escalation<L: Lookup, A: Access>(
    policy: &Policy,
    user: &UserInfo,
    lookup: &L,
    access: &A,
) -> Result<Verdict, kube::Error> {
    if !policy.spec.is_active || policy.spec.rules.is_empty() {
        return Ok(Verdict::Allowed(vec![]));
    }
    let namespace = policy.namespace();
    let mut documents = vec![];
    collect::<Organization, _>(lookup, None, &mut documents).await?;
    collect::<Environment, _>(lookup, namespace.as_deref(), &mut documents).await?;
    collect::<Element, _>(lookup, namespace.as_deref(), &mut documents).await?;
    collect::<Function, _>(lookup, None, &mut documents).await?;
    let index = Index::from_documents(&documents);
    let organization = index.organization(namespace.as_deref().unwrap_or_default()).map(|org| org.name_any());
    let grants = match organization.and_then(|organization| policy.grants(&index, &organization)) {
        Ok(grants) => grants,
        Err(why) => {
            return Ok(Verdict::Denied(format!(
                "what this Policy grants cannot be checked yet ({why}); apply it again once it can"
            )));
        }
    };
    let checks: Vec<(String, Option<String>, Permission)> = grants
        .iter()
        .flat_map(|grant| {
            let at =
                (format!("{} (Function {:?})", grant.field, grant.function.name_any()), Some(grant.namespace.clone()));
            grant.function.permissions().into_iter().map(move |permission| (at.0.clone(), at.1.clone(), permission))
        })
        .collect();
    let refused = refused(user, &checks, access).await?;
    let requester = user.username.clone().unwrap_or_default();
    Ok(Verdict::refused_for(&refused, |list| {
        format!(
            "{requester:?} may not grant what this Policy grants: {list}. A Policy grants only what its author may do \
             where it grants it, as Kubernetes RBAC refuses a Role that escalates"
        )
    }))
}

/// Refuses adding members to a Group by someone who may not grant what the active Policies
/// naming it grant: each new member would get it, as if they were added to those Policies.
async fn joining<L: Lookup, A: Access>(
    request: &AdmissionRequest<DynamicObject>,
    group: &Group,
    lookup: &L,
    access: &A,
) -> Result<Verdict, kube::Error> {
    let before = request.old_object.clone().and_then(|old| old.try_parse::<Group>().ok());
    let was_member = |name: &String| before.as_ref().is_some_and(|before| before.spec.members.contains(name));
    if group.spec.members.iter().all(was_member) {
        return Ok(Verdict::Allowed(vec![]));
    }
    let name = group.name_any();
    for policy in lookup.list::<Policy>(group.namespace().as_deref()).await? {
        if !policy.spec.subjects.groups.contains(&name) {
            continue;
        }
        if let Verdict::Denied(why) = escalation(&policy, &request.user_info, lookup, access).await? {
            return Ok(Verdict::Denied(format!(
                "spec.members: new members of Group {name:?} get what Policy {:?} grants: {why}",
                policy.name_any()
            )));
        }
    }
    Ok(Verdict::Allowed(vec![]))
}

/// Refuses widening a Function by someone who may not do what it adds, everywhere: every
/// Policy naming it would grant it, without its author being asked again.
async fn widening<A: Access>(request: &AdmissionRequest<DynamicObject>, access: &A) -> Result<Verdict, kube::Error> {
    let parse = |object: &Option<DynamicObject>| object.clone().and_then(|object| object.try_parse::<Function>().ok());
    let (Some(function), Some(before)) = (parse(&request.object), parse(&request.old_object)) else {
        return Ok(Verdict::Allowed(vec![]));
    };
    let (now, was) = (function.permissions(), before.permissions());
    let checks: Vec<_> =
        now.difference(&was).map(|permission| ("spec.grants".to_owned(), None, permission.clone())).collect();
    let refused = refused(&request.user_info, &checks, access).await?;
    let requester = request.user_info.username.clone().unwrap_or_default();
    Ok(Verdict::refused_for(&refused, |list| {
        format!(
            "{requester:?} may not add to Function {:?} what they may not do cluster-wide: {list}; every Policy naming \
             it would grant it",
            function.name_any()
        )
    }))
}

/// Which of `checks` (where it is asked, its namespace, the permission) `user` may not do,
/// said for users: the first few.
async fn refused<A: Access>(
    user: &UserInfo,
    checks: &[(String, Option<String>, Permission)],
    access: &A,
) -> Result<Vec<String>, kube::Error> {
    use futures::{StreamExt as _, TryStreamExt as _};
    const SAID: usize = 5;
    let answers: Vec<bool> = futures::stream::iter(checks.iter().cloned())
        .map(|(_, namespace, permission)| async move { access.allows(user, namespace.as_deref(), &permission).await })
        .buffered(16)
        .try_collect()
        .await?;
    let mut refused: Vec<String> = checks
        .iter()
        .zip(answers)
        .filter(|(_, allowed)| !allowed)
        .map(|((field, namespace, (group, resource, verb)), _)| {
            let group = if group.is_empty() { "core" } else { group };
            let place = namespace.as_ref().map_or("cluster-wide".to_owned(), |namespace| format!("in {namespace}"));
            format!("{field}: {verb} {resource} ({group}) {place}")
        })
        .collect();
    if refused.len() > SAID {
        let more = refused.len() - SAID;
        refused.truncate(SAID);
        refused.push(format!("and {more} more"));
    }
    Ok(refused)
}

/// Refuses Users that exist and are not members of the object's organization: references never
/// reach another tenant. Users that do not exist yet are the mirror's to wait for.
async fn members<L: Lookup>(
    object: &DynamicObject,
    names: &[String],
    field: &str,
    lookup: &L,
) -> Result<Verdict, kube::Error> {
    if names.is_empty() {
        return Ok(Verdict::Allowed(vec![]));
    }
    let namespace = object.namespace().unwrap_or_default();
    let Some(organization) = tenant_of(lookup.list::<Organization>(None).await?, &namespace) else {
        return Ok(Verdict::Allowed(vec![]));
    };
    let users: Vec<Arc<User>> = lookup.list::<User>(None).await?;
    let strangers: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(_, name)| users.iter().any(|u| &&u.name_any() == name))
        .filter(|(_, name)| !organization.spec.members.iter().any(|m| &&m.user == name))
        .map(|(i, name)| format!("{field}[{i}]: User {name:?}"))
        .collect();
    let organization = organization.name_any();
    Ok(Verdict::refused_for(&strangers, |list| {
        format!("{list}: not a member of organization {organization:?}; add them to its spec.members first")
    }))
}

/// Refuses deleting a User that Deployments still name: their rows keep the user's
/// (`deployments.triggered_by`), so the User's row could never go.
async fn still_named<L: Lookup>(user: &str, lookup: &L) -> Result<Verdict, kube::Error> {
    let deployments = lookup.list::<Deployment>(None).await?;
    let naming: Vec<String> = deployments
        .iter()
        .filter(|d| d.spec.triggered_by == user)
        .map(|d| format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()))
        .collect();
    Ok(Verdict::refused_for(&naming, |list| {
        format!(
            "User {user:?} is still named by Deployments {list} (spec.triggeredBy); the audit of those rollouts needs the user: delete them first"
        )
    }))
}
