//! DnssecKey: a DNSSEC key of a domain, mirrored; its phase follows its activation and expiry.

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::domain::domain_reference;
use super::shared::{columns, phase, phase_column};
use super::{Inputs, Kind, KindId};
use crate::api::common::CommonStatus;
use crate::api::infra::{DnssecAlgorithm, DnssecKeyPhase, DnssecKeyType};
use crate::mirror::{Invalid, Reference, Resolved, Rows, StatusColumn};
use crate::provision::Result;

pub use crate::api::infra::DnssecKey;

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
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "generated")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

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

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(self.phase_at(Timestamp::now()))
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
