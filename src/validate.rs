//! What the API server checks at `kubectl apply`, offline: each CRD's OpenAPI schema and its CEL
//! rules. Used by `render` and the CRD tests.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What the API server checks for one kind, compiled once: its OpenAPI schema (for a standard
/// JSON-schema validator) and its CEL rules.
struct Kind {
    validator: Result<jsonschema::Validator, String>,
    rules: kube_cel::CompiledSchema,
}

/// The schema of every WindFlow kind, by kind.
pub struct Schemas(BTreeMap<String, Kind>);

impl Schemas {
    pub fn new() -> Self {
        Self(
            crate::kinds::crds()
                .into_iter()
                .filter_map(|crd| {
                    let schema = crd.spec.versions.first()?.schema.as_ref()?.open_api_v3_schema.as_ref()?;
                    let schema = serde_json::to_value(schema).ok()?;
                    let validator = jsonschema::validator_for(&to_json_schema(&schema)).map_err(|e| e.to_string());
                    let rules = kube_cel::compile_schema(&schema);
                    Some((crd.spec.names.kind.clone(), Kind { validator, rules }))
                })
                .collect(),
        )
    }

    /// Every problem the API server would report for `object` (and `old`, on update), each as
    /// `field: message`. An object of no WindFlow kind is one problem.
    pub fn problems(&self, object: &Value, old: Option<&Value>) -> Vec<String> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let Some(Kind { validator, rules }) = self.0.get(kind) else {
            return vec![format!("kind: {kind:?} is not a WindFlow kind (apiVersion windflow.io/v1alpha1)")];
        };
        let mut found = match validator {
            Ok(validator) => validator.iter_errors(object).map(|e| format!("{}: {e}", e.instance_path())).collect(),
            Err(e) => vec![format!("the {kind} schema cannot be used: {e}")],
        };
        // A rule that does not compile would be skipped silently: report it instead.
        found.extend(rules.compilation_errors().into_iter().map(|e| format!("the {kind} CEL rules: {e}")));
        // As the API server, which checks the rules only of an object that passes its schema.
        if found.is_empty()
            && let Err(errors) = kube_cel::validate_compiled(rules, object, old)
        {
            found.extend(errors.into_iter().map(|e| format!("{}: {}", e.field_path, e.message)));
        }
        found
    }
}

impl Default for Schemas {
    fn default() -> Self {
        Self::new()
    }
}

/// OpenAPI's `nullable: true` in JSON Schema terms, for a standard validator.
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), to_json_schema(v))).collect();
            if out.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(t)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([t, "null"]));
                }
                if let Some(Value::Array(values)) = out.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}
