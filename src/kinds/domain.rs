//! Domain → cert-manager Certificate when `autoSsl`.

use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::{CustomResource, KubeSchema, ResourceExt};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{CommonStatus, ObjectRef, Reference, Resolved, yes};
use super::shared::{columns, element, metadata, phase_column, without_condition};
use super::{DnsRecord, DnssecKey, Index, Inputs, Kind, KindId};
use crate::child_set;
use crate::free_form::FreeForm;
use crate::mirror::{Invalid, Rows, StatusColumn};
use crate::provision::children::third_party;
use crate::provision::third_party::{Certificate, CertificateSpec, IssuerRef};
use crate::provision::types::CERTIFICATE;
use crate::provision::{Anchor, DeletionPolicy, Placement, Result};

use crate::kinds::dnssec_key::{DnssecKeyPhase, DnssecKeyType};

/// A DNS domain on a `domain` element (table `domains`). `fqdn` is unique across all tenants.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "windflow.io",
    version = "v1alpha1",
    kind = "Domain",
    namespaced,
    category = "windflow",
    shortname = "wfdomain",
    status = "DomainStatus",
    printcolumn(name = "FQDN", type_ = "string", json_path = ".spec.fqdn"),
    printcolumn(name = "DNSSEC", type_ = "string", json_path = ".status.dnssecStatus"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status")
)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    /// What deleting this object does to the Kubernetes objects it provisioned.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Fully qualified domain name, lower case, such as `example.com`. Unique across tenants.
    #[schemars(length(min = 4, max = 255), regex(pattern = r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"))]
    pub fqdn: String,
    /// The Element (of type `domain`) the domain belongs to. Immutable.
    #[x_kube(validation = Rule::new("self == oldSelf").message("elementRef is immutable"))]
    pub element_ref: ObjectRef,
    /// Sign the zone with DNSSEC.
    #[serde(default)]
    pub dnssec_enabled: bool,
    /// Obtain TLS certificates automatically.
    #[serde(default = "yes")]
    pub auto_ssl: bool,
    /// Serve `*.fqdn` too (wildcard certificate).
    #[serde(default)]
    pub wildcard_support: bool,
    /// DNS configuration (free-form).
    #[serde(default)]
    pub dns_config: FreeForm,
}

/// Status of a Domain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DomainStatus {
    #[serde(flatten)]
    pub common: CommonStatus,
    /// Seed `domains.status`: configuring, active, error, suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DomainPhase>,
    /// Seed `domains.dnssec_status`: disabled, unsigned, signed, error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_status: Option<DnssecStatus>,
}

kind_status!(DomainStatus);

seed_values! {
    /// The values of `DomainStatus.dnssec_status`: the seed's check on the column it mirrors.
    DnssecStatus { Disabled, Unsigned, Signed, Error }
}

seed_values! {
    /// The values of `DomainStatus.phase`: the seed's check on the column it mirrors.
    DomainPhase { Configuring, Active, Error, Suspended }
}

/// A `domains` row: the columns its spec sets (ids, tenancy and bookkeeping are added by
/// `kinds::prepare`).
#[derive(Serialize)]
struct DomainRow<'a> {
    fqdn: &'a String,
    element_id: Uuid,
    dnssec_enabled: bool,
    auto_ssl: bool,
    wildcard_support: bool,
    dns_config: &'a FreeForm,
}

child_set! {
    /// What a Domain provisions: its Certificate, with `autoSsl`.
    DomainChild { Certificate }
}

impl Kind for Domain {
    const ID: KindId = KindId::Domain;
    const TABLE: &'static str = "domains";
    type Children = DomainChild;
    const OBSERVES_OTHERS: bool = true;
    const STATUS_COLUMNS: &'static [StatusColumn] = &[
        phase_column("status", "configuring"),
        StatusColumn { field: "dnssecStatus", column: "dnssec_status", default: Some("disabled") },
    ];

    fn references(&self) -> Vec<Reference> {
        vec![element(&self.spec.element_ref)]
    }

    fn rows(&self, resolved: &Resolved) -> Result<Rows, Invalid> {
        let spec = &self.spec;
        Ok(Rows {
            row: columns(&DomainRow {
                fqdn: &spec.fqdn,
                element_id: resolved.element_of_type(&element(&spec.element_ref), "domain")?,
                dnssec_enabled: spec.dnssec_enabled,
                auto_ssl: spec.auto_ssl,
                wildcard_support: spec.wildcard_support,
                dns_config: &spec.dns_config,
            })?,
            joins: vec![],
        })
    }

    fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy
    }

    fn anchor(&self) -> Anchor<'_> {
        Anchor::Element(&self.spec.element_ref.name)
    }

    /// Its records go where it goes.
    fn followers(&self, index: &Index) -> Vec<(KindId, String)> {
        let records = index.live_children::<DnsRecord, _>(self);
        records.iter().map(|record| (KindId::DnsRecord, record.name_any())).collect()
    }

    /// A domain with `autoSsl` works once its Certificate is Ready.
    fn not_working(&self, applied: &[DynamicObject], _: &Inputs) -> Option<String> {
        without_condition(applied, CERTIFICATE.kind, "Ready")
    }

    fn desired(&self, placement: &Placement, inputs: &Inputs) -> Result<Vec<DomainChild>> {
        if !self.spec.auto_ssl {
            return Ok(vec![]);
        }
        let fqdn = &self.spec.fqdn;
        let mut names = vec![fqdn.clone()];
        if self.spec.wildcard_support {
            names.push(format!("*.{fqdn}"));
        }
        let name = self.name_any();
        Ok(vec![certificate(placement.workload_namespace(), &name, &format!("{name}-tls"), names, inputs).into()])
    }

    /// Active once its children are applied.
    fn faulted(&self) -> DomainStatus {
        DomainStatus { phase: Some(DomainPhase::Error), ..Default::default() }
    }

    fn observe(&self, _: &[DynamicObject], _: &Inputs) -> DomainStatus {
        DomainStatus { phase: Some(DomainPhase::Active), ..Default::default() }
    }

    /// DNSSEC as its keys stand (their reconciles wake it when their phase changes).
    fn observe_others(&self, inputs: &Inputs) -> DomainStatus {
        let now = Timestamp::now();
        let keys: Vec<(DnssecKeyType, DnssecKeyPhase)> = (inputs.index.live_children::<DnssecKey, _>(self).iter())
            .map(|key| (key.spec.key_type, key.phase_at(now)))
            .collect();
        DomainStatus { dnssec_status: Some(dnssec_status(self.spec.dnssec_enabled, &keys)), ..Default::default() }
    }
}

impl Domain {
    /// Whether `host` is this domain's name or a name under it.
    pub fn covers(&self, host: &str) -> bool {
        let (host, fqdn) = (host.trim_end_matches('.').as_bytes(), self.spec.fqdn.trim_end_matches('.').as_bytes());
        match host.len().checked_sub(fqdn.len()) {
            Some(0) => host.eq_ignore_ascii_case(fqdn),
            Some(start) => host[start - 1] == b'.' && host[start..].eq_ignore_ascii_case(fqdn),
            None => false,
        }
    }
}

/// A domain's DNSSEC from its keys: disabled unless enabled; signed while a key-signing key is
/// active; error once every key has expired; unsigned until then (no key, or none active yet).
fn dnssec_status(enabled: bool, keys: &[(DnssecKeyType, DnssecKeyPhase)]) -> DnssecStatus {
    if !enabled {
        DnssecStatus::Disabled
    } else if keys.contains(&(DnssecKeyType::Ksk, DnssecKeyPhase::Active)) {
        DnssecStatus::Signed
    } else if !keys.is_empty() && keys.iter().all(|(_, phase)| *phase == DnssecKeyPhase::Retired) {
        DnssecStatus::Error
    } else {
        DnssecStatus::Unsigned
    }
}

pub(super) fn certificate(
    namespace: &str,
    name: &str,
    secret: &str,
    dns_names: Vec<String>,
    inputs: &Inputs,
) -> Certificate {
    third_party(
        metadata(Some(namespace), name),
        CertificateSpec {
            secret_name: secret.to_owned(),
            dns_names,
            issuer_ref: IssuerRef { kind: "ClusterIssuer", name: inputs.config.cluster_issuer.clone() },
        },
    )
}

/// `spec.domainRef` of a record or key.
pub(super) fn domain_reference(reference: &ObjectRef) -> Reference {
    Reference::new(KindId::Domain, &reference.name, "spec.domainRef")
}
