//! Logs: text for people, JSON in the container; with the `otlp` feature and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans also go to an OpenTelemetry collector.

use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

/// What the output layers sit on: the registry behind the level filter.
type Filtered = Layered<EnvFilter, Registry>;
type Output = Box<dyn Layer<Filtered> + Send + Sync>;

use crate::cli::LogFormat;

/// Installs the global subscriber. Keep the returned guard alive: dropping it flushes spans.
pub fn init(filter: &str, format: LogFormat) -> Guard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
    };
    let (traces, guard) = otlp::layer();
    let outputs: Vec<Output> = std::iter::once(logs).chain(traces).collect();
    tracing_subscriber::registry().with(filter).with(outputs).init();
    guard
}

pub use otlp::Guard;

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;

    use super::Output;

    /// Flushes and stops the exporter when dropped.
    pub struct Guard(Option<SdkTracerProvider>);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(provider) = self.0.take() {
                let _ = provider.shutdown();
            }
        }
    }

    /// The OTLP layer when `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector.
    pub fn layer() -> (Option<Output>, Guard) {
        let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") else { return (None, Guard(None)) };
        let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().with_endpoint(endpoint).build() {
            Ok(exporter) => exporter,
            Err(error) => {
                eprintln!("OTLP exporter not started: {error}");
                return (None, Guard(None));
            }
        };
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("windflow")).boxed();
        (Some(layer), Guard(Some(provider)))
    }
}

#[cfg(not(feature = "otlp"))]
mod otlp {
    use super::Output;

    /// Nothing to flush without the `otlp` feature.
    pub struct Guard;

    pub fn layer() -> (Option<Output>, Guard) {
        (None, Guard)
    }
}
