//! DnsRecord → ExternalDNS DNSEndpoint.

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::domain::domain_reference;
use super::shared::{columns, phase, phase_column};
use super::{Inputs, Kind, KindId};
use crate::api::common::{CommonStatus, DeletionPolicy};
use crate::api::infra::{DnsRecordPhase, DnsRecordType};
use crate::mirror::{Invalid, Reference, Resolved, Rows, StatusColumn};
use crate::provision::ChildType;
use crate::provision::types::DNS_ENDPOINT;
use crate::provision::{Anchor, Placement, Result};

pub use crate::api::infra::DnsRecord;

/// A `dns_records` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct DnsRecordRow<'a> {
    domain_id: Uuid,
    name: &'a String,
    record_type: &'a DnsRecordType,
    value: &'a String,
    ttl: i32,
    priority: Option<i32>,
}

impl Kind for DnsRecord {
    const ID: KindId = KindId::DnsRecord;
    const TABLE: &'static str = "dns_records";
    const CHILD_TYPES: &'static [ChildType] = &[DNS_ENDPOINT];
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "pending")];

    fn common_status(&self) -> Option<&CommonStatus> {
        self.status.as_ref().map(|status| &status.common)
    }

    fn references(&self) -> Vec<Reference> {
        vec![domain_reference(&self.spec.domain_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&DnsRecordRow {
                domain_id: resolved.id(&domain_reference(&spec.domain_ref))?,
                name: &spec.record_name,
                record_type: &spec.record_type,
                value: &spec.value,
                ttl: spec.ttl,
                priority: spec.priority,
            })?,
            joins: vec![],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Domain(&self.spec.domain_ref.name)
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<Value>> {
        let namespace = self.namespace().unwrap_or_default();
        let fqdn =
            &inputs.index.named::<super::Domain>(&namespace, &self.spec.domain_ref.name, "spec.domainRef")?.spec.fqdn;
        let dns_name = match self.spec.record_name.as_str() {
            "@" => fqdn.clone(),
            name => format!("{name}.{fqdn}"),
        };
        let target = match self.spec.priority {
            Some(priority) => format!("{priority} {}", self.spec.value),
            None => self.spec.value.clone(),
        };
        Ok(vec![DNS_ENDPOINT.object(
            Some(placement.workload_namespace()),
            &self.name_any(),
            json!({ "spec": { "endpoints": [{
                "dnsName": dns_name,
                "recordType": self.spec.record_type,
                "targets": [target],
                "recordTTL": self.spec.ttl,
            }] } }),
        )])
    }

    /// Active once its children are applied.
    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> Map<String, Value> {
        phase(DnsRecordPhase::Active)
    }
}
