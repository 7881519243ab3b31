//! Admission from AdmissionReview fixtures (`fixtures/*.yaml`): each gives a review in and the
//! response that must come out, against the sample platform with the deployers of
//! `tests/fixtures/deployers.yaml`.

use std::path::Path;

use kube::api::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use serde::Deserialize;
use serde_json::Value;

use super::{Identities, Reader, Settings, review};
use crate::kinds::Index;

#[derive(Deserialize)]
struct Fixture {
    handler: String,
    review: AdmissionReview<DynamicObject>,
    response: Expected,
}

#[derive(Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct Expected {
    allowed: bool,
    #[serde(default)]
    message: String,
    #[serde(default)]
    patch: Option<Value>,
    #[serde(default)]
    warnings: Vec<String>,
}

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|doc| serde_json::to_value(serde_yaml::Value::deserialize(doc).ok()?).ok())
        .filter(|doc: &Value| !doc.is_null())
        .map(|mut doc| {
            // Stored objects have a uid, as the API server gives them.
            doc["metadata"]["uid"] = Value::from(uuid::Uuid::new_v4().to_string());
            doc
        })
        .collect()
}

fn platform() -> Index {
    let mut docs = documents(include_str!("../../examples/platform.yaml"));
    docs.extend(documents(include_str!("../../tests/fixtures/deployers.yaml")));
    docs.extend(documents(include_str!("../../tests/fixtures/placement.yaml")));
    Index::from_documents(&docs)
}

#[tokio::test]
async fn every_fixture_gets_its_response() {
    let settings = Settings {
        identities: Identities { prefix: Some("oidc:".into()), ..Identities::default() },
        platform_groups: vec!["platform".into()],
    };
    // A replica whose caches have listed reads them: a client that reaches no API server
    // would fail every review that asked it.
    let nowhere = kube::Config::new("https://127.0.0.1:1".parse().expect("a URL"));
    let reader = Reader { index: platform(), client: kube::Client::try_from(nowhere).expect("a client") };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admission/fixtures");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("a fixture").path();
        let fixture: Fixture =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("a fixture");
        let request: AdmissionRequest<DynamicObject> = fixture.review.try_into().expect("a request");
        let response = match fixture.handler.as_str() {
            "mutate" => review::mutate(&request, &settings),
            "validate" => review::validate(&request, &settings, &reader, &reader).await.expect("the caches answer"),
            other => panic!("{}: no handler {other}", path.display()),
        };
        assert_eq!(response.uid, request.uid, "{}: the response answers the request", path.display());
        let got = Expected {
            allowed: response.allowed,
            message: response.result.message.clone(),
            patch: response.patch.as_ref().map(|p| serde_json::from_slice(p).expect("JSON")),
            warnings: response.warnings.clone().unwrap_or_default(),
        };
        assert_eq!(got, fixture.response, "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 10, "{seen} fixtures");
}
