//! `windflow render -f FILE|DIR …`: offline, no cluster and no database. Validates manifests as
//! the API server would (schema, CEL rules), then their references and tenancy, and prints every
//! Kubernetes object each WindFlow object would provision.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use kube::ResourceExt;
use serde::Deserialize;
use serde_json::Value;

use crate::kinds::common::Reference;
use crate::kinds::index::{Index, as_mirrored};
use crate::kinds::organization::tenant_namespace;
use crate::kinds::{self, Inputs, Kind, KindId, Visitor};
use crate::provision::{self, Config, Destination, Placed, ProvisionError};
use crate::validate::Schemas;
use crate::{describe, describe_document};

/// `windflow render`: prints the children of the manifests, or every problem; returns how
/// many problems there are.
pub fn run(paths: &[PathBuf], config: &Config) -> usize {
    match read(paths).and_then(|found| render(&found, config)) {
        Ok(yaml) => {
            print!("{yaml}");
            0
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            problems.len()
        }
    }
}

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
type Build = Box<dyn Fn(&Inputs) -> provision::Result<Vec<Placed>>>;

/// One loaded object: what the checks and the rendering need of it, whatever its kind.
struct Loaded {
    source: String,
    kind: KindId,
    namespace: Option<String>,
    name: String,
    references: Vec<Reference>,
    children: Option<Build>,
}

/// Loads a document of any kind.
struct Load<'a> {
    source: &'a str,
}

impl Visitor for Load<'_> {
    type Output = Loaded;

    fn visit<K: Kind>(self, obj: K) -> Loaded {
        let (namespace, name, references) = (obj.namespace(), obj.name_any(), obj.references());
        let children: Option<Build> = (!K::CHILD_TYPES.is_empty()).then(|| {
            Box::new(move |inputs: &Inputs| {
                // Health checks are not run offline, but what they would need is checked.
                if let Some(Err(error)) = obj.probe_target() {
                    return Err(error);
                }
                kinds::children(&obj, &kinds::place(&obj, inputs.index)?, inputs)
            }) as Build
        });
        Loaded { source: self.source.to_owned(), kind: K::ID, namespace, name, references, children }
    }
}

impl Loaded {
    fn label(&self) -> String {
        describe(self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// Validates the manifests and returns every child they provision, as one YAML stream; or one
/// line per problem, each naming the file, the object and the field.
pub fn render(manifests: &[Manifest], config: &Config) -> Result<String, Vec<String>> {
    let schemas = Schemas::new();
    let mut problems = vec![];
    let mut valid = vec![];
    let mut loaded = vec![];
    for manifest in manifests {
        let found = schemas.problems(&manifest.document, None);
        let what = describe_document(&manifest.document);
        if !found.is_empty() {
            problems.extend(found.into_iter().map(|p| format!("{}: {what}: {p}", manifest.source)));
            continue;
        }
        match kinds::visit(&manifest.document, Load { source: &manifest.source }) {
            Ok(object) => {
                loaded.push(object);
                valid.push(manifest.document.clone());
            }
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
    // The operator would have written every valid object's row before provisioning it.
    let index = Index::from_documents(&valid.iter().map(as_mirrored).collect::<Vec<_>>());
    problems.extend(check_tenancy_and_references(&loaded, &named, &index));
    if !problems.is_empty() {
        return Err(problems);
    }

    let inputs = Inputs::offline(&index, config);
    let mut out = String::new();
    for object in &loaded {
        let Some(children) = &object.children else { continue };
        match children(&inputs) {
            Ok(children) => {
                for child in children {
                    let on = match &child.cluster {
                        Destination::Management => String::new(),
                        workload => format!(" on cluster {}", workload.name()),
                    };
                    out.push_str(&format!("---\n# provisioned by {}{on}\n", object.label()));
                    match serde_yaml::to_string(&child.object) {
                        Ok(yaml) => out.push_str(&yaml),
                        Err(e) => problems.push(format!("{}: {}: {e}", object.source, object.label())),
                    }
                }
            }
            // What this installation does not provide is not the manifests' fault: said in
            // the output, as the operator says it in a condition, and the rest is rendered.
            Err(e @ ProvisionError::NotProvided { .. }) => {
                out.push_str(&format!("---\n# not provisioned by this installation: {}: {e}\n", object.label()));
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
    index: &Index,
) -> Vec<String> {
    let mut problems = vec![];
    for object in loaded {
        let what = format!("{}: {}", object.source, object.label());
        let organization = match (&object.namespace, object.kind.cluster_scoped()) {
            (None, false) => {
                problems.push(format!("{what}: metadata.namespace: a namespaced kind needs its namespace"));
                continue;
            }
            (Some(namespace), false) => match index.organization(namespace) {
                Ok(org) => Some(org),
                Err(e) => {
                    problems.push(format!("{what}: metadata.namespace: {e}"));
                    continue;
                }
            },
            _ => None,
        };
        for reference in &object.references {
            let scope = reference.scope(object.namespace.as_deref());
            if !named.contains(&(reference.kind.to_string(), scope.map(str::to_owned), reference.name.clone())) {
                let place = scope.map(|ns| format!(" in namespace {ns}")).unwrap_or_default();
                problems.push(format!(
                    "{what}: {}: {} {:?} is not in these manifests{place}",
                    reference.field, reference.kind, reference.name
                ));
            } else if let (KindId::User, Some(org)) = (reference.kind, organization.as_deref())
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
