//! DnssecKey: a DNSSEC key of a domain, mirrored; its phase follows its activation and expiry.

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::domain::domain_reference;
use super::shared::{columns, phase_column};
use super::{Inputs, Kind, KindId};
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::Result;
use crate::provision::children::NoChildren;

/// The public half of a DNSSEC signing key of a domain (table `dnssec_keys`). The private key
/// never enters WindFlow.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "DnssecKey",
    namespaced,
    category = "windflow",
    shortname = "wfdnskey",
    status = "DnssecKeyStatus",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domainRef.name"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.keyType"),
    printcolumn(name = "Algorithm", type_ = "string", json_path = ".spec.algorithm"),
    printcolumn(name = "Tag", type_ = "integer", json_path = ".spec.keyTag"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[x_kube(validation = Rule::new("!has(self.activatesAt) || !has(self.expiresAt) || timestamp(self.expiresAt) > timestamp(self.activatesAt)").message("expiresAt is after activatesAt"))]
#[serde(rename_all = "camelCase")]
pub struct DnssecKeySpec {
    /// The Domain the key signs. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("domainRef is immutable"))]
    pub domain_ref: ObjectRef,
    /// Key-signing or zone-signing key.
    pub key_type: DnssecKeyType,
    /// Signing algorithm.
    pub algorithm: DnssecAlgorithm,
    /// Key tag, 0 to 65535.
    #[schemars(range(min = 0, max = 65535))]
    pub key_tag: i32,
    /// Public key, base64.
    #[schemars(length(min = 1, max = 8192), regex(pattern = r"^[A-Za-z0-9+/]+={0,2}$"))]
    pub public_key: String,
    /// When the key starts signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub activates_at: Option<String>,
    /// When the key stops signing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// `dnssec_key_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnssecKeyType {
    Ksk,
    Zsk,
}

/// `dnssec_algorithm_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnssecAlgorithm {
    Rsasha256,
    Rsasha512,
    Ecdsap256sha256,
    Ecdsap384sha384,
    Ed25519,
    Ed448,
}

/// Status of a DnssecKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnssecKeyStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `dnssec_keys.status`: generated, published, active, retired, revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DnssecKeyPhase>,
}

kind_status!(DnssecKeyStatus);

seed_values! {
    /// The values of `DnssecKeyStatus.phase`: the seed's check on the column it mirrors.
    DnssecKeyPhase { Generated, Published, Active, Retired, Revoked }
}

/// A `dnssec_keys` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct DnssecKeyRow<'a> {
    domain_id: Uuid,
    key_type: &'a DnssecKeyType,
    algorithm: &'a DnssecAlgorithm,
    key_tag: i32,
    public_key: &'a String,
    activated_at: Option<&'a str>,
    expires_at: Option<&'a str>,
}

impl Kind for DnssecKey {
    const ID: KindId = KindId::DnssecKey;
    const TABLE: &'static str = "dnssec_keys";
    type Children = NoChildren;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "generated")];

    fn references(&self) -> Vec<Reference> {
        vec![domain_reference(&self.spec.domain_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&DnssecKeyRow {
                domain_id: resolved.id(&domain_reference(&spec.domain_ref))?,
                key_type: &spec.key_type,
                algorithm: &spec.algorithm,
                key_tag: spec.key_tag,
                public_key: &spec.public_key,
                activated_at: spec.activates_at.as_deref(),
                expires_at: spec.expires_at.as_deref(),
            })?,
            joins: vec![],
        })
    }

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> DnssecKeyStatus {
        DnssecKeyStatus { phase: Some(self.phase_at(Timestamp::now())), ..Default::default() }
    }
}

impl DnssecKey {
    /// Where the key is in its life at `now`, from its activation and expiry: generated until
    /// it activates, active until it expires, then retired. (Publishing and revoking are done
    /// at the DNS provider, which WindFlow does not drive.)
    pub fn phase_at(&self, now: Timestamp) -> DnssecKeyPhase {
        let at = |time: &Option<String>| time.as_deref().and_then(|t| t.parse::<Timestamp>().ok());
        match (at(&self.spec.activates_at), at(&self.spec.expires_at)) {
            (_, Some(expiry)) if expiry <= now => DnssecKeyPhase::Retired,
            (Some(activation), _) if now < activation => DnssecKeyPhase::Generated,
            _ => DnssecKeyPhase::Active,
        }
    }
}
