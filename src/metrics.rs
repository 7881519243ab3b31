//! Prometheus metrics (`/metrics`), in one registry the reconciles write to.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub kind: String,
    /// `Error::category`: database, kubernetes, provisioning...
    pub category: String,
}

/// One object, named: for the rare objects worth naming (cardinality stays that of the faults).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `mutate` or `validate`.
    pub webhook: String,
    pub kind: String,
    /// `true` when admitted.
    pub allowed: String,
}

/// Objects of a kind whose `Ready` condition is not True, by its reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnreadyLabels {
    pub kind: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    pub phase: String,
}

/// What the objects stand at, counted from the caches when `/metrics` is read: gauges that
/// are right after a restart, a failover or a missed event, since nothing tracks them.
#[derive(Default, Debug, PartialEq)]
pub struct Standing {
    /// (kind, reason) -> objects not Ready for it; `Unknown` before a first report.
    pub not_ready: std::collections::BTreeMap<(String, String), i64>,
    /// Rollout phase -> rollouts.
    pub rollouts: std::collections::BTreeMap<String, i64>,
    /// Objects whose reconcile lost the database, waiting for it to answer again.
    pub waiting_for_database: i64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: String,
}

/// One kind of request the operator sent an API server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `management`, or the workload or probed cluster as `namespace/name`.
    pub cluster: String,
    /// As the API server's audit names it: get, list, watch, create, update, patch, delete,
    /// deletecollection.
    pub verb: String,
    /// Empty for the core group.
    pub group: String,
    /// The plural, with its subresource (`deployments/status`); `discovery` for discovery.
    pub resource: String,
}

impl RequestLabels {
    /// What a request to `cluster` asks, from its method and path.
    pub fn of(cluster: &str, method: &http::Method, uri: &http::Uri) -> Self {
        let segments: Vec<&str> = uri.path().split('/').filter(|segment| !segment.is_empty()).collect();
        // `/api/v1/…` is the core group; `/apis/<group>/<version>/…` the others.
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => ("", &[][..]),
        };
        // `namespaces/<ns>/<resource>…` is a namespaced resource; `namespaces/<ns>` alone is
        // the Namespace itself.
        let rest = match rest {
            ["namespaces", _, resource, more @ ..] => [&[*resource][..], more].concat(),
            other => other.to_vec(),
        };
        let (resource, named) = match rest.as_slice() {
            // `/version`, `/readyz`: the server itself, not what it serves.
            [] => {
                let path = segments.first().copied().filter(|path| !["api", "apis"].contains(path));
                (path.unwrap_or("discovery").to_owned(), false)
            }
            [resource] => ((*resource).to_owned(), false),
            [resource, _name] => ((*resource).to_owned(), true),
            [resource, _name, subresource, ..] => (format!("{resource}/{subresource}"), true),
        };
        let watching = uri.query().is_some_and(|query| query.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        let verb = match *method {
            http::Method::GET if watching => "watch",
            // A path without a resource (discovery, `/version`) is read, not listed.
            http::Method::GET if named || rest.is_empty() => "get",
            http::Method::GET => "list",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE if named => "delete",
            http::Method::DELETE => "deletecollection",
            _ => "other",
        };
        Self { cluster: cluster.to_owned(), verb: verb.to_owned(), group: group.to_owned(), resource }
    }
}

/// The operator's own requests to API servers, counted on its clients (the API server's
/// metrics mix in every other client's).
#[derive(Clone, Debug, Default)]
pub struct ApiRequests(Family<RequestLabels, Counter>);

impl ApiRequests {
    /// A client for `config` whose requests are counted as sent to `cluster`, and which names
    /// the operator in its User-Agent ([`crate::identified`]): every client the operator makes
    /// is made here. `on_answer` hears the status of every answer.
    pub fn client(
        &self,
        config: kube::Config,
        cluster: &str,
        response_limit: Option<usize>,
        on_answer: impl Fn(http::StatusCode) + Clone + Send + Sync + 'static,
    ) -> Result<kube::Client, kube::Error> {
        let config = crate::identified(config);
        let (requests, cluster) = (self.0.clone(), cluster.to_owned());
        let counting = tower::util::MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
            requests.get_or_create(&RequestLabels::of(&cluster, request.method(), request.uri())).inc();
            request
        });
        let answered =
            tower::util::MapResponseLayer::new(move |response: http::Response<Box<kube::client::DynBody>>| {
                on_answer(response.status());
                match response_limit {
                    // Read up to the limit, then an error: never the whole of what a tenant sends.
                    Some(limit) => response
                        .map(|body| Box::new(http_body_util::Limited::new(body, limit)) as Box<kube::client::DynBody>),
                    None => response,
                }
            });
        Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&counting).with_layer(&answered).build())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    /// `idle` or `used`.
    pub state: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<KindLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabel, Histogram, fn() -> Histogram>,
    in_flight: Family<KindLabel, Gauge>,
    mirror_write: Histogram,
    connections: Family<ConnectionLabels, Gauge>,
    leader: Gauge,
    undeserializable: Family<ObjectLabels, Gauge>,
    reviews: Family<AdmissionLabels, Counter>,
    review_duration: Family<WebhookLabel, Histogram, fn() -> Histogram>,
    api_requests: ApiRequests,
    not_ready: Family<UnreadyLabels, Gauge>,
    rollouts: Family<PhaseLabel, Gauge>,
    webhook_certificate_expiry: Gauge,
    resident_memory: Gauge,
    waiting_for_database: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("windflow");
        let reconciles = Family::<KindLabel, Counter>::default();
        registry.register("reconciles", "Reconciles run, by kind", reconciles.clone());
        let failures = Family::<FailureLabels, Counter>::default();
        registry.register("reconcile_failures", "Reconciles that failed, by kind and error category", failures.clone());
        let duration = Family::<KindLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("reconcile_duration_seconds", "Time a reconcile takes, by kind", duration.clone());
        let in_flight = Family::<KindLabel, Gauge>::default();
        registry.register("reconciles_in_flight", "Reconciles running now, by kind", in_flight.clone());
        let mirror_write = latency_histogram();
        registry.register(
            "mirror_write_seconds",
            "Time to resolve an object's references and write its rows and audit row",
            mirror_write.clone(),
        );
        let connections = Family::<ConnectionLabels, Gauge>::default();
        registry.register("database_connections", "Database pool connections, by state", connections.clone());
        let leader = Gauge::default();
        registry.register("leader", "1 when this replica holds the lease and reconciles", leader.clone());
        let undeserializable = Family::<ObjectLabels, Gauge>::default();
        registry.register(
            "undeserializable_objects",
            "Objects skipped because they are no valid object of their kind (1 each), by kind, namespace and name",
            undeserializable.clone(),
        );
        let reviews = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered, by webhook, kind and verdict",
            reviews.clone(),
        );
        let review_duration =
            Family::<WebhookLabel, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "admission_review_duration_seconds",
            "Time to answer an admission review (the API server waits for it), by webhook",
            review_duration.clone(),
        );
        let api_requests = ApiRequests::default();
        registry.register(
            "api_requests",
            "Requests the operator sent to API servers, by cluster, verb, group and resource",
            api_requests.0.clone(),
        );
        let not_ready = Family::<UnreadyLabels, Gauge>::default();
        registry.register(
            "objects_not_ready",
            "Objects whose Ready condition is not True, by kind and reason",
            not_ready.clone(),
        );
        let rollouts = Family::<PhaseLabel, Gauge>::default();
        registry.register("rollouts", "Rollouts (kind Deployment), by phase", rollouts.clone());
        let webhook_certificate_expiry = Gauge::default();
        registry.register(
            "webhook_certificate_expiry_timestamp_seconds",
            "When the admission webhook's serving certificate expires, in seconds since the epoch",
            webhook_certificate_expiry.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register(
            "process_resident_memory_bytes",
            "Memory the operator's process holds (resident set size)",
            resident_memory.clone(),
        );
        let waiting_for_database = Gauge::default();
        registry.register(
            "objects_waiting_for_database",
            "Objects whose reconcile lost the database, reconciled again as soon as it answers",
            waiting_for_database.clone(),
        );
        Self {
            registry,
            reconciles,
            failures,
            duration,
            in_flight,
            mirror_write,
            connections,
            leader,
            undeserializable,
            reviews,
            review_duration,
            api_requests,
            not_ready,
            rollouts,
            webhook_certificate_expiry,
            resident_memory,
            waiting_for_database,
        }
    }
}

impl Metrics {
    /// The counter the operator's clients count their requests in.
    pub fn api_requests(&self) -> &ApiRequests {
        &self.api_requests
    }

    /// Counts a reconcile of `kind` as running until the guard is dropped, then records its
    /// duration.
    pub fn reconcile(&self, kind: &str) -> InFlight<'_> {
        let label = KindLabel { kind: kind.to_owned() };
        self.reconciles.get_or_create(&label).inc();
        // The failures an alert watches start at 0 for each kind reconciled: rate() sees 0,
        // not nothing.
        let _ = self.failures.get_or_create(&FailureLabels { kind: kind.to_owned(), category: "database".into() });
        self.in_flight.get_or_create(&label).inc();
        InFlight { metrics: self, label, started: std::time::Instant::now() }
    }

    pub fn failed(&self, kind: &str, category: &str) {
        self.failures.get_or_create(&FailureLabels { kind: kind.to_owned(), category: category.to_owned() }).inc();
    }

    pub fn mirror_written(&self, took: Duration) {
        self.mirror_write.observe(took.as_secs_f64());
    }

    /// The object is skipped as no valid object of its kind: a gauge at 1 while it is.
    pub fn skipped(&self, object: &ObjectLabels) {
        self.undeserializable.get_or_create(object).set(1);
    }

    /// The object reads again, or is gone: no longer named. Nothing is built while no object
    /// is skipped, the usual case: this runs for every watch event.
    pub fn readable(&self, object: impl FnOnce() -> ObjectLabels) {
        // `EncodeMetric::is_empty`: whether the family holds any series (a read lock).
        if !EncodeMetric::is_empty(&self.undeserializable) {
            self.undeserializable.remove(&object());
        }
    }

    /// An admission review of `kind` answered by `webhook`.
    pub fn reviewed(&self, webhook: &str, kind: &str, allowed: bool, took: Duration) {
        let labels =
            AdmissionLabels { webhook: webhook.to_owned(), kind: kind.to_owned(), allowed: allowed.to_string() };
        self.reviews.get_or_create(&labels).inc();
        self.review_duration.get_or_create(&WebhookLabel { webhook: webhook.to_owned() }).observe(took.as_secs_f64());
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The admission webhook serves a certificate that expires `at` (none: it does not read).
    pub fn webhook_certificate_expires(&self, at: Option<chrono::DateTime<chrono::Utc>>) {
        self.webhook_certificate_expiry.set(at.map_or(0, |at| at.timestamp()));
    }

    /// The text exposition, with the pool's use, the objects' standing and the process's
    /// memory read now.
    pub fn encode(&self, pool_size: u32, pool_idle: usize, standing: &Standing) -> Result<String, std::fmt::Error> {
        self.not_ready.clear();
        for ((kind, reason), count) in &standing.not_ready {
            self.not_ready.get_or_create(&UnreadyLabels { kind: kind.clone(), reason: reason.clone() }).set(*count);
        }
        self.rollouts.clear();
        for (phase, count) in &standing.rollouts {
            self.rollouts.get_or_create(&PhaseLabel { phase: phase.clone() }).set(*count);
        }
        self.waiting_for_database.set(standing.waiting_for_database);
        if let Some(bytes) = resident_bytes() {
            self.resident_memory.set(bytes);
        }
        let idle = i64::try_from(pool_idle).unwrap_or(i64::MAX);
        self.connections.get_or_create(&ConnectionLabels { state: "idle".into() }).set(idle);
        self.connections.get_or_create(&ConnectionLabels { state: "used".into() }).set(i64::from(pool_size) - idle);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The process's resident set, from `/proc/self/status` (Linux).
fn resident_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// A running reconcile; dropping it records the end.
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    label: KindLabel,
    started: std::time::Instant,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.get_or_create(&self.label).dec();
        self.metrics.duration.get_or_create(&self.label).observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_failures_latency_pool_and_leader_are_exported() {
        let metrics = Metrics::default();
        {
            let _running = metrics.reconcile("Volume");
            let text = metrics.encode(10, 7, &Standing::default()).expect("text");
            assert!(text.contains("windflow_reconciles_in_flight{kind=\"Volume\"} 1"), "{text}");
        }
        metrics.failed("Volume", "database");
        metrics.mirror_written(Duration::from_millis(3));
        metrics.set_leader(true);
        metrics.reviewed("validate", "Deployment", false, Duration::from_millis(4));
        let broken = ObjectLabels { kind: "Tag".into(), namespace: String::new(), name: "broken".into() };
        metrics.skipped(&broken);
        let pods = RequestLabels::of("management", &http::Method::GET, &"/api/v1/pods".parse().expect("a uri"));
        metrics.api_requests.0.get_or_create(&pods).inc();
        let text = metrics.encode(10, 7, &Standing::default()).expect("text");
        for line in [
            "windflow_reconciles_total{kind=\"Volume\"} 1",
            "windflow_reconciles_in_flight{kind=\"Volume\"} 0",
            "windflow_reconcile_failures_total{kind=\"Volume\",category=\"database\"} 1",
            "windflow_reconcile_duration_seconds_count{kind=\"Volume\"} 1",
            "windflow_mirror_write_seconds_count 1",
            "windflow_database_connections{state=\"used\"} 3",
            "windflow_leader 1",
            "windflow_admission_reviews_total{webhook=\"validate\",kind=\"Deployment\",allowed=\"false\"} 1",
            "windflow_admission_review_duration_seconds_count{webhook=\"validate\"} 1",
            "windflow_undeserializable_objects{kind=\"Tag\",namespace=\"\",name=\"broken\"} 1",
            "windflow_api_requests_total{cluster=\"management\",verb=\"list\",group=\"\",resource=\"pods\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        metrics.readable(|| broken);
        let text = metrics.encode(10, 7, &Standing::default()).expect("text");
        assert!(!text.contains("name=\"broken\""), "a repaired object is no longer named:\n{text}");
    }

    #[test]
    fn what_objects_stand_at_is_read_at_each_scrape_and_the_process_and_certificate_too() {
        let metrics = Metrics::default();
        let standing = Standing {
            not_ready: [(("Network".to_owned(), "ProviderNotInstalled".to_owned()), 2)].into(),
            rollouts: [("running".to_owned(), 1), ("completed".to_owned(), 3)].into(),
            waiting_for_database: 4,
        };
        metrics.webhook_certificate_expires(chrono::DateTime::from_timestamp(1_900_000_000, 0));
        let text = metrics.encode(10, 7, &standing).expect("text");
        for line in [
            "windflow_objects_not_ready{kind=\"Network\",reason=\"ProviderNotInstalled\"} 2",
            "windflow_objects_waiting_for_database 4",
            "windflow_rollouts{phase=\"running\"} 1",
            "windflow_rollouts{phase=\"completed\"} 3",
            "windflow_webhook_certificate_expiry_timestamp_seconds 1900000000",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        let resident = text.lines().find_map(|line| line.strip_prefix("windflow_process_resident_memory_bytes "));
        assert!(resident.and_then(|bytes| bytes.parse::<i64>().ok()).is_some_and(|bytes| bytes > 0), "{text}");
        // The next scrape says what stands then: a fixed object is no longer counted.
        let text = metrics.encode(10, 7, &Standing::default()).expect("text");
        assert!(!text.contains("reason=\"ProviderNotInstalled\"") && !text.contains("phase=\"running\""), "{text}");
    }

    #[test]
    fn requests_are_named_as_the_api_server_names_them() {
        use http::Method;
        for (method, path, expected) in [
            (Method::GET, "/api/v1/namespaces", "list  namespaces"),
            (Method::GET, "/api/v1/namespaces/acme", "get  namespaces"),
            (Method::PATCH, "/api/v1/namespaces/acme", "patch  namespaces"),
            (Method::GET, "/api/v1/namespaces/acme/secrets/db", "get  secrets"),
            (Method::GET, "/apis/apps/v1/deployments?labelSelector=a&watch=true", "watch apps deployments"),
            (Method::GET, "/apis/apps/v1/namespaces/acme/deployments?watch=1", "watch apps deployments"),
            (
                Method::PATCH,
                "/apis/windflow.io/v1alpha1/namespaces/acme/volumes/data/status",
                "patch windflow.io volumes/status",
            ),
            (
                Method::POST,
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                "create authentication.k8s.io selfsubjectreviews",
            ),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/w/leases/windflow",
                "update coordination.k8s.io leases",
            ),
            (Method::DELETE, "/api/v1/namespaces/acme/pods/p", "delete  pods"),
            (Method::DELETE, "/api/v1/namespaces/acme/pods", "deletecollection  pods"),
            (Method::GET, "/apis/apps/v1", "get apps discovery"),
            (Method::GET, "/api", "get  discovery"),
            (Method::GET, "/apis", "get  discovery"),
            (Method::GET, "/version", "get  version"),
        ] {
            let uri: http::Uri = path.parse().expect("a uri");
            let labels = RequestLabels::of("acme/main", &method, &uri);
            assert_eq!(format!("{} {} {}", labels.verb, labels.group, labels.resource), expected, "{method} {path}");
            assert_eq!(labels.cluster, "acme/main");
        }
    }
}
