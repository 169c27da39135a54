//! Tracing: structured logs to stderr (`RUST_LOG`, default `info`), and OTLP
//! trace export over gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. An
//! unreachable collector costs nothing but dropped spans: export runs on the
//! SDK's own batch thread and never blocks a request.
//!
//! Log style: lower-case message, facts as fields (`incident_id`, `rpc`, `team`).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter. Blocks (call it off the runtime).
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            let _ = p.shutdown();
        }
    }
}

/// Must run inside the tokio runtime (the exporter's channel binds to it).
pub fn init() -> Telemetry {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt_layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(env);
    let provider = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .and_then(
            |_| match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
                Ok(exporter) => {
                    let resource = opentelemetry_sdk::Resource::builder()
                        .with_service_name("incidentd")
                        .build();
                    Some(
                        SdkTracerProvider::builder()
                            .with_batch_exporter(exporter)
                            .with_resource(resource)
                            .build(),
                    )
                }
                Err(e) => {
                    eprintln!("incidentd: OTLP export disabled: {e}");
                    None
                }
            },
        );
    let otel_layer = provider.as_ref().map(|p| {
        // Keep the transport's own spans out, or the exporter traces itself.
        let targets = Targets::new()
            .with_default(LevelFilter::INFO)
            .with_target("h2", LevelFilter::OFF)
            .with_target("hyper", LevelFilter::OFF)
            .with_target("hyper_util", LevelFilter::OFF)
            .with_target("tonic", LevelFilter::OFF)
            .with_target("tower", LevelFilter::OFF)
            .with_target("opentelemetry", LevelFilter::OFF)
            .with_target("opentelemetry_sdk", LevelFilter::OFF)
            .with_target("opentelemetry_otlp", LevelFilter::OFF);
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("incidentd"))
            .with_filter(targets)
    });
    let _ = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    Telemetry { provider }
}
