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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: String,
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
        }
    }
}

impl Metrics {
    /// Counts a reconcile of `kind` as running until the guard is dropped, then records its
    /// duration.
    pub fn reconcile(&self, kind: &str) -> InFlight<'_> {
        let label = KindLabel { kind: kind.to_owned() };
        self.reconciles.get_or_create(&label).inc();
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

    /// The text exposition, with the pool's use read now.
    pub fn encode(&self, pool_size: u32, pool_idle: usize) -> Result<String, std::fmt::Error> {
        let idle = i64::try_from(pool_idle).unwrap_or(i64::MAX);
        self.connections.get_or_create(&ConnectionLabels { state: "idle".into() }).set(idle);
        self.connections.get_or_create(&ConnectionLabels { state: "used".into() }).set(i64::from(pool_size) - idle);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
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
            let text = metrics.encode(10, 7).expect("text");
            assert!(text.contains("windflow_reconciles_in_flight{kind=\"Volume\"} 1"), "{text}");
        }
        metrics.failed("Volume", "database");
        metrics.mirror_written(Duration::from_millis(3));
        metrics.set_leader(true);
        metrics.reviewed("validate", "Deployment", false, Duration::from_millis(4));
        let broken = ObjectLabels { kind: "Tag".into(), namespace: String::new(), name: "broken".into() };
        metrics.skipped(&broken);
        let text = metrics.encode(10, 7).expect("text");
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
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        metrics.readable(|| broken);
        let text = metrics.encode(10, 7).expect("text");
        assert!(!text.contains("name=\"broken\""), "a repaired object is no longer named:\n{text}");
    }
}
