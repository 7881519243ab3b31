//! DnsRecord → ExternalDNS DNSEndpoint.

use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved};
use super::domain::domain_reference;
use super::shared::{columns, metadata, phase_column};
use super::{Inputs, Kind, KindId};
use crate::child_set;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::third_party::{DnsEndpoint, DnsEndpointSpec, Endpoint};
use crate::provision::{Anchor, DeletionPolicy, Placement, Result};

/// A DNS record of a domain (table `dns_records`).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "DnsRecord",
    namespaced,
    category = "windflow",
    shortname = "wfdns",
    status = "DnsRecordStatus",
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domainRef.name"),
    printcolumn(name = "Name", type_ = "string", json_path = ".spec.recordName"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.recordType"),
    printcolumn(name = "Value", type_ = "string", json_path = ".spec.value"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[x_kube(validation = Rule::new("(self.recordType == 'MX' || self.recordType == 'SRV') == has(self.priority)").message("priority is set for MX and SRV records, and only for them"))]
#[x_kube(validation = Rule::new("self.recordType != 'A' || isIP(self.value) && ip(self.value).family() == 4").message("an A record's value is an IPv4 address"))]
#[x_kube(validation = Rule::new("self.recordType != 'AAAA' || isIP(self.value) && ip(self.value).family() == 6").message("an AAAA record's value is an IPv6 address"))]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// The Domain the record belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("domainRef is immutable"))]
    pub domain_ref: ObjectRef,
    /// Name within the domain: `@` for the apex, `www`, `*`.
    #[schemars(
        length(min = 1, max = 255),
        regex(
            pattern = r"^(@|\*|(\*\.)?[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?(\.[A-Za-z0-9_]([-A-Za-z0-9_]*[A-Za-z0-9])?)*)$"
        )
    )]
    pub record_name: String,
    /// Record type.
    pub record_type: DnsRecordType,
    /// Record data, such as an address or a target name.
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
    /// Time to live in seconds, 60 to 86400.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 60, max = 86400))]
    pub ttl: i32,
    /// Priority of MX and SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub priority: Option<i32>,
}

fn default_ttl() -> i32 {
    3600
}

/// Table `dns_records`, `dns_record_type_check`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema, strum::IntoStaticStr)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum DnsRecordType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
    Ns,
    Srv,
    Caa,
    Ptr,
}

/// Status of a DnsRecord.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsRecordStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// `dns_records.status`: pending, active, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DnsRecordPhase>,
}

kind_status!(DnsRecordStatus);

seed_values! {
    /// The values of `DnsRecordStatus.phase`: the seed's check on the column it mirrors.
    DnsRecordPhase { Pending, Active, Error }
}

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

child_set! {
    /// What a DnsRecord provisions: the ExternalDNS endpoint that keeps it.
    DnsRecordChild { DnsEndpoint }
}

impl Kind for DnsRecord {
    const ID: KindId = KindId::DnsRecord;
    const TABLE: &'static str = "dns_records";
    type Children = DnsRecordChild;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[phase_column("status", "pending")];

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

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<DnsRecordChild>> {
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
        let endpoint = Endpoint {
            dns_name,
            record_type: self.spec.record_type.into(),
            targets: vec![target],
            record_ttl: self.spec.ttl,
        };
        let endpoints = DnsEndpointSpec { endpoints: vec![endpoint] };
        Ok(vec![third_party(metadata(Some(placement.workload_namespace()), &self.name_any()), endpoints).into()])
    }

    /// Active once its children are applied.
    fn faulted(&self) -> DnsRecordStatus {
        DnsRecordStatus { phase: Some(DnsRecordPhase::Error), ..Default::default() }
    }

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> DnsRecordStatus {
        DnsRecordStatus { phase: Some(DnsRecordPhase::Active), ..Default::default() }
    }
}
