//! Free-form JSON (the seed's JSONB settings), shared by the kinds' specs and the rollout's
//! records.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A free-form JSON object (a JSONB column of the seed). Any keys are kept.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FreeForm(pub Map<String, Value>);

impl FreeForm {
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

impl JsonSchema for FreeForm {
    fn schema_name() -> Cow<'static, str> {
        "FreeForm".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// A free-form JSON list (a JSONB column of the seed whose default is `[]`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(transparent)]
pub struct FreeFormList(pub Vec<Value>);

impl JsonSchema for FreeFormList {
    fn schema_name() -> Cow<'static, str> {
        "FreeFormList".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "array",
            "items": { "x-kubernetes-preserve-unknown-fields": true },
        })
    }
}
