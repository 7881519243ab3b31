//! `windflow render -f FILE|DIR …`: offline, no cluster and no database. Validates manifests as
//! the API server would (schema, CEL rules), then their references and tenancy, and prints every
//! Kubernetes object each WindFlow object would provision.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Deserialize;
use serde_json::Value;

use crate::api::*;
use crate::mirror::{Mirrored, Reference, Target};
use crate::provision::{self, Config, Inputs, Provisioned, World, tenant_namespace};
use crate::validate::Schemas;

/// One manifest and the file it came from.
pub struct Manifest {
    pub source: String,
    pub document: Value,
}

/// Reads every YAML document of the files, of the `.yaml`/`.yml` files of the directories (in
/// name order), or of standard input for `-`. Problems are lines naming the file.
pub fn read(paths: &[PathBuf]) -> Result<Vec<Manifest>, Vec<String>> {
    let mut files = vec![];
    let mut problems = vec![];
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => problems.push(format!("{}: {e}", path.display())),
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut manifests = vec![];
    for file in files {
        let text = if file == Path::new("-") {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(&file)
        };
        let source = file.display().to_string();
        let text = match text {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!("{source}: {e}"));
                continue;
            }
        };
        for (i, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let parsed = serde_yaml::Value::deserialize(document)
                .map_err(|e| e.to_string())
                .and_then(|yaml| serde_json::to_value(yaml).map_err(|e| e.to_string()));
            match parsed {
                Ok(Value::Null) => {}
                Ok(document) => manifests.push(Manifest { source: source.clone(), document }),
                Err(e) => problems.push(format!("{source}: document {}: {e}", i + 1)),
            }
        }
    }
    if problems.is_empty() { Ok(manifests) } else { Err(problems) }
}

/// Builds an object's children: the object is captured, whatever its kind.
type Build = Box<dyn Fn(&Inputs) -> provision::Result<Vec<DynamicObject>>>;

/// One loaded object: what the checks and the rendering need of it, whatever its kind.
struct Loaded {
    source: String,
    target: Target,
    namespace: Option<String>,
    name: String,
    references: Vec<Reference>,
    children: Option<Build>,
}

impl Loaded {
    fn mirrored<K: Mirrored>(source: &str, obj: &K) -> Self {
        Self {
            source: source.to_owned(),
            target: K::TARGET,
            namespace: obj.namespace(),
            name: obj.name_any(),
            references: obj.references(),
            children: None,
        }
    }

    fn provisioned<K: Mirrored + Provisioned>(source: &str, obj: K) -> Self {
        let mut loaded = Self::mirrored(source, &obj);
        loaded.children = Some(Box::new(move |inputs| {
            // Health checks are not run offline, but what they would need is checked.
            if let Some(Err(error)) = obj.probe_target() {
                return Err(error);
            }
            provision::children(&obj, inputs)
        }));
        loaded
    }

    fn label(&self) -> String {
        describe(self.target, self.namespace.as_deref(), &self.name)
    }
}

fn parse<K: Mirrored>(document: &Value) -> Result<K, String> {
    K::deserialize(document).map_err(|e| format!("spec: {e}"))
}

/// `obj`, after a copy of it is added to `list`.
fn kept<K: Clone>(list: &mut Vec<K>, obj: K) -> K {
    list.push(obj.clone());
    obj
}

/// Deserializes a valid document as its kind, adding it to the world when builders read it.
fn load(manifest: &Manifest, world: &mut World) -> Result<Loaded, String> {
    let source = manifest.source.as_str();
    let doc = &manifest.document;
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    Ok(match kind {
        "Organization" => Loaded::provisioned(source, kept(&mut world.organizations, parse(doc)?)),
        "Environment" => Loaded::provisioned(source, kept(&mut world.environments, parse(doc)?)),
        "Application" => Loaded::provisioned(source, kept(&mut world.applications, parse(doc)?)),
        "Domain" => Loaded::provisioned(source, kept(&mut world.domains, parse(doc)?)),
        "Element" => Loaded::mirrored(source, &kept(&mut world.elements, parse(doc)?)),
        "Stack" => Loaded::mirrored(source, &kept(&mut world.stacks, parse(doc)?)),
        "Function" => Loaded::mirrored(source, &kept(&mut world.functions, parse(doc)?)),
        "Volume" => Loaded::provisioned(source, parse::<Volume>(doc)?),
        "Network" => Loaded::provisioned(source, parse::<Network>(doc)?),
        "VM" => Loaded::provisioned(source, parse::<VM>(doc)?),
        "ContainerCluster" => Loaded::provisioned(source, parse::<ContainerCluster>(doc)?),
        "Gateway" => Loaded::provisioned(source, parse::<Gateway>(doc)?),
        "DnsRecord" => Loaded::provisioned(source, parse::<DnsRecord>(doc)?),
        "Policy" => Loaded::provisioned(source, parse::<Policy>(doc)?),
        "Tag" => Loaded::mirrored(source, &parse::<Tag>(doc)?),
        "User" => Loaded::mirrored(source, &parse::<User>(doc)?),
        "Group" => Loaded::mirrored(source, &parse::<Group>(doc)?),
        "ContainerNode" => Loaded::mirrored(source, &parse::<ContainerNode>(doc)?),
        "PhysicalHost" => Loaded::mirrored(source, &parse::<PhysicalHost>(doc)?),
        "DnssecKey" => Loaded::mirrored(source, &parse::<DnssecKey>(doc)?),
        "Deployment" => Loaded::mirrored(source, &parse::<Deployment>(doc)?),
        other => return Err(format!("kind: {other:?} is not a WindFlow kind")),
    })
}

/// Validates the manifests and returns every child they provision, as one YAML stream; or one
/// line per problem, each naming the file, the object and the field.
pub fn render(manifests: &[Manifest], config: &Config) -> Result<String, Vec<String>> {
    let schemas = Schemas::new();
    let mut problems = vec![];
    let mut world = World::default();
    let mut loaded = vec![];
    for manifest in manifests {
        let found = schemas.problems(&manifest.document, None);
        let what = describe_document(&manifest.document);
        if !found.is_empty() {
            problems.extend(found.into_iter().map(|p| format!("{}: {what}: {p}", manifest.source)));
            continue;
        }
        match load(manifest, &mut world) {
            Ok(object) => loaded.push(object),
            Err(problem) => problems.push(format!("{}: {what}: {problem}", manifest.source)),
        }
    }
    // Every object the manifests name, valid or not: a bad object is reported once, not again
    // by everything that points at it.
    let named: BTreeSet<(String, Option<String>, String)> = manifests
        .iter()
        .map(|m| {
            let text = |pointer: &str| m.document.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
            (text("/kind").unwrap_or_default(), text("/metadata/namespace"), text("/metadata/name").unwrap_or_default())
        })
        .collect();
    problems.extend(check_tenancy_and_references(&loaded, &named, &world));
    if !problems.is_empty() {
        return Err(problems);
    }

    let inputs = Inputs { world: &world, config, report: None };
    let mut out = String::new();
    for object in &loaded {
        let Some(children) = &object.children else { continue };
        match children(&inputs) {
            Ok(children) => {
                for child in children {
                    out.push_str(&format!("---\n# provisioned by {}\n", object.label()));
                    match serde_yaml::to_string(&child) {
                        Ok(yaml) => out.push_str(&yaml),
                        Err(e) => problems.push(format!("{}: {}: {e}", object.source, object.label())),
                    }
                }
            }
            Err(e) => problems.push(format!("{}: {}: {e}", object.source, object.label())),
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}

/// What the operator would refuse before provisioning: namespaced objects outside any
/// organization, references to objects that are not in the manifests (references never cross
/// namespaces), and users that are not members of the organization they are named in.
fn check_tenancy_and_references(
    loaded: &[Loaded],
    named: &BTreeSet<(String, Option<String>, String)>,
    world: &World,
) -> Vec<String> {
    let mut problems = vec![];
    for object in loaded {
        let what = format!("{}: {}", object.source, object.label());
        let organization = match (&object.namespace, object.target.cluster_scoped()) {
            (None, false) => {
                problems.push(format!("{what}: metadata.namespace: a namespaced kind needs its namespace"));
                continue;
            }
            (Some(namespace), false) => match world.organization(namespace) {
                Ok(org) => Some(org),
                Err(e) => {
                    problems.push(format!("{what}: metadata.namespace: {e}"));
                    continue;
                }
            },
            _ => None,
        };
        for reference in &object.references {
            let scope = if reference.target.cluster_scoped() { None } else { object.namespace.as_deref() };
            if !named.contains(&(reference.target.to_string(), scope.map(str::to_owned), reference.name.clone())) {
                let place = scope.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
                problems.push(format!(
                    "{what}: {}: {} {:?} is not in these manifests{place}",
                    reference.field, reference.target, reference.name
                ));
            } else if let (Target::User, Some(org)) = (reference.target, organization)
                && !org.spec.members.iter().any(|m| m.user == reference.name)
            {
                problems.push(format!(
                    "{what}: {}: User {:?} is not a member of Organization {:?} (namespace {})",
                    reference.field,
                    reference.name,
                    org.name_any(),
                    tenant_namespace(org)
                ));
            }
        }
    }
    problems
}
