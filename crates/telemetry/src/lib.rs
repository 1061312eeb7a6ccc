//! zt4ai's observability: Prometheus metrics and OpenTelemetry traces.
//!
//! **Metrics** live in one process-wide [`Metrics`] ([`metrics()`]): the pipeline
//! counts verdicts and times each stage, the MCP gateway counts upstream errors
//! and sessions, the audit log times its commits; the gateway renders them at
//! `/metrics` in the OpenMetrics text format that Prometheus scrapes.
//!
//! **Traces** are `tracing` spans: one per request at the enforcement point
//! (named and attributed after the OpenTelemetry MCP semantic conventions for
//! MCP, `tools/call <tool>`), one for the decision, one per pipeline stage.
//! [`otlp_layer`] exports them over OTLP/HTTP (protobuf) to a collector. The
//! spans are at `DEBUG` level under the `zt4ai::trace` target, so they cost
//! nothing unless an exporter is configured.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets, linear_buckets};
use prometheus_client::registry::Registry;

/// The `tracing` target of zt4ai's trace spans.
pub const TRACE_TARGET: &str = "zt4ai::trace";

/// A stage of the decision pipeline, as timed in `zt4ai_stage_duration_seconds`.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "the label values are the stage names")]
pub enum Stage {
    /// Actor chain and resources resolved against the inventory; task scope.
    authenticate,
    /// The request's content inspected (prompt injection, sensitive data).
    inspect,
    /// The session locked and its label read.
    contextualise,
    /// Cedar decisions for every link and resource.
    decide,
    /// Approvals created or used.
    enforce,
    /// The session's label raised.
    absorb,
    /// The verdict made durable in the audit log.
    record,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::authenticate,
        Stage::inspect,
        Stage::contextualise,
        Stage::decide,
        Stage::enforce,
        Stage::absorb,
        Stage::record,
    ];
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: Stage,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    point: &'static str,
    decision: &'static str,
    guard: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PointLabels {
    point: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    server: String,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuarantineLabels {
    trigger: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabels {
    signal: &'static str,
}

/// zt4ai's metrics. One per process: [`metrics()`].
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Family<PointLabels, Histogram, fn() -> Histogram>,
    stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    /// The stage histograms, looked up once (they are on every decision's path).
    stages: Vec<Histogram>,
    risk: Histogram,
    upstream_errors: Family<UpstreamLabels, Counter>,
    quarantines: Family<QuarantineLabels, Counter>,
    risk_signals: Family<SignalLabels, Counter>,
    llm_tokens: Family<ModelLabels, Counter>,
    mcp_sessions: Gauge,
    sessions_cached: Gauge,
    audit_commit_seconds: Histogram,
    audit_sync_seconds: Histogram,
    audit_batch_records: Histogram,
    audit_records: Gauge,
    audit_pending: Gauge,
    audit_unsynced: Gauge,
    audit_healthy: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency() -> Histogram {
    // 10 µs to ~5 s.
    Histogram::new(exponential_buckets(0.000_01, 2.5, 15))
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("zt4ai");
        let stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency);
        let stages = Stage::ALL
            .iter()
            .map(|&stage| stage_seconds.get_or_create_owned(&StageLabels { stage }))
            .collect();
        let m = Metrics {
            decisions: Family::default(),
            decision_seconds: Family::new_with_constructor(latency),
            stage_seconds,
            stages,
            risk: Histogram::new(linear_buckets(10.0, 10.0, 10)),
            upstream_errors: Family::default(),
            quarantines: Family::default(),
            risk_signals: Family::default(),
            llm_tokens: Family::default(),
            mcp_sessions: Gauge::default(),
            sessions_cached: Gauge::default(),
            audit_commit_seconds: latency(),
            audit_sync_seconds: latency(),
            audit_batch_records: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            audit_records: Gauge::default(),
            audit_pending: Gauge::default(),
            audit_unsynced: Gauge::default(),
            audit_healthy: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "decisions",
            "Verdicts by enforcement point, decision and determining guard or policy",
            m.decisions.clone(),
        );
        registry.register(
            "decision_duration_seconds",
            "Time from a request reaching the pipeline to its verdict being durable",
            m.decision_seconds.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "Time spent in each stage of the decision pipeline",
            m.stage_seconds.clone(),
        );
        registry.register(
            "risk_score",
            "Risk scores (0-100) requests were decided with",
            m.risk.clone(),
        );
        registry.register(
            "upstream_errors",
            "Failed calls to upstream MCP servers, by server and kind (timeout, broken, error)",
            m.upstream_errors.clone(),
        );
        registry.register(
            "risk_signals",
            "Behaviour and request signals fired, by signal (new_tool, rate_burst, ...)",
            m.risk_signals.clone(),
        );
        registry.register(
            "llm_tokens",
            "Tokens the LLM gateway's calls cost, by model (the provider's usage, or an estimate)",
            m.llm_tokens.clone(),
        );
        registry.register(
            "quarantines",
            "Agents quarantined automatically, by trigger (exfiltration, denials, risk)",
            m.quarantines.clone(),
        );
        registry.register(
            "mcp_sessions_active",
            "MCP sessions the gateway holds (idle ones until they are swept)",
            m.mcp_sessions.clone(),
        );
        registry.register(
            "sessions_cached",
            "Information-flow sessions held in memory (each is also in SQLite)",
            m.sessions_cached.clone(),
        );
        registry.register(
            "audit_commit_duration_seconds",
            "Time to commit one batch of audit records (to disk with --audit-sync-ms 0, else to the operating system)",
            m.audit_commit_seconds.clone(),
        );
        registry.register(
            "audit_sync_duration_seconds",
            "Time to sync the audit log's file to disk (with a sync interval)",
            m.audit_sync_seconds.clone(),
        );
        registry.register(
            "audit_batch_records",
            "Audit records per commit (group commit)",
            m.audit_batch_records.clone(),
        );
        registry.register(
            "audit_records",
            "Records in the audit log",
            m.audit_records.clone(),
        );
        registry.register(
            "audit_pending_records",
            "Audit records waiting to be committed (the audit lag)",
            m.audit_pending.clone(),
        );
        registry.register(
            "audit_unsynced_records",
            "Audit records committed but not yet known to be on disk (with a sync interval)",
            m.audit_unsynced.clone(),
        );
        registry.register(
            "audit_healthy",
            "1 while the audit log commits, 0 while it fails (every request is then denied)",
            m.audit_healthy.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a verdict and its latency. `guard` is the first determining policy
    /// (bounded by the policy set), or empty.
    pub fn decision(
        &self,
        point: &'static str,
        decision: &'static str,
        guard: &str,
        took: Duration,
    ) {
        self.decisions
            .get_or_create(&DecisionLabels {
                point,
                decision,
                guard: if guard.is_empty() { "none" } else { guard }.to_owned(),
            })
            .inc();
        self.decision_seconds
            .get_or_create(&PointLabels { point })
            .observe(took.as_secs_f64());
    }

    /// Times one pipeline stage.
    pub fn stage(&self, stage: Stage, took: Duration) {
        if let Some(h) = self.stages.get(stage as usize) {
            h.observe(took.as_secs_f64());
        }
    }

    /// Records a request's risk score.
    pub fn risk(&self, score: u8) {
        self.risk.observe(f64::from(score));
    }

    /// Counts a failed upstream call (`timeout`, `broken`, `error`).
    pub fn upstream_error(&self, server: &str, kind: &'static str) {
        self.upstream_errors
            .get_or_create(&UpstreamLabels {
                server: server.to_owned(),
                kind,
            })
            .inc();
    }

    /// Counts a risk signal fired (a name from a fixed set).
    pub fn risk_signal(&self, signal: &'static str) {
        self.risk_signals
            .get_or_create(&SignalLabels { signal })
            .inc();
    }

    /// Counts an agent quarantined automatically (`exfiltration`, `denials`, `risk`).
    pub fn quarantine(&self, trigger: &'static str) {
        self.quarantines
            .get_or_create(&QuarantineLabels { trigger })
            .inc();
    }

    /// Counts the tokens a model call cost.
    pub fn llm_tokens(&self, model: &str, tokens: u64) {
        self.llm_tokens
            .get_or_create(&ModelLabels {
                model: model.to_owned(),
            })
            .inc_by(tokens);
    }

    /// An MCP session was opened.
    pub fn mcp_session_opened(&self) {
        self.mcp_sessions.inc();
    }

    /// An MCP session was closed, expired or evicted.
    pub fn mcp_session_closed(&self) {
        self.mcp_sessions.dec();
    }

    /// Sets the number of information-flow sessions in memory (read at scrape time).
    pub fn sessions_cached(&self, n: usize) {
        self.sessions_cached
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Times one audit commit of `records` records.
    pub fn audit_commit(&self, records: usize, took: Duration) {
        self.audit_commit_seconds.observe(took.as_secs_f64());
        self.audit_batch_records.observe(records as f64);
    }

    /// Times one disk sync of the audit log's file (with a sync interval).
    pub fn audit_sync(&self, took: Duration) {
        self.audit_sync_seconds.observe(took.as_secs_f64());
    }

    /// Sets the audit log's state (read at scrape time).
    pub fn audit_state(&self, records: u64, pending: u64, unsynced: u64, healthy: bool) {
        self.audit_records
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        self.audit_unsynced
            .set(i64::try_from(unsynced).unwrap_or(i64::MAX));
        self.audit_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.audit_healthy.set(i64::from(healthy));
    }

    /// The metrics in the OpenMetrics text format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // INVARIANT: writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Continues the caller's trace: makes the W3C Trace Context parent in
/// `traceparent` (and `tracestate`) the parent of `span`, so an agent's own
/// trace runs through zt4ai. Malformed or absent headers leave `span` a root;
/// without an exporter this does nothing.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let Some(traceparent) = traceparent else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    struct Headers<'a>(&'a str, Option<&'a str>);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            match key {
                "traceparent" => Some(self.0),
                "tracestate" => self.1,
                _ => None,
            }
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent", "tracestate"]
        }
    }
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&Headers(traceparent, tracestate));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The W3C `traceparent` of `span`, to pass on to the next hop so that the
/// spans of the server zt4ai calls belong to the same trace, under `span`.
/// `None` without an exporter (the span is disabled, nothing is traced).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    struct Out(Option<String>);
    impl opentelemetry::propagation::Injector for Out {
        fn set(&mut self, key: &str, value: String) {
            if key == "traceparent" {
                self.0 = Some(value);
            }
        }
    }
    let mut out = Out(None);
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut out);
    out.0
}

/// An OTLP trace exporter and the `tracing` layer that feeds it.
pub struct Otlp {
    provider: opentelemetry_sdk::trace::SdkTracerProvider,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp").finish_non_exhaustive()
    }
}

impl Otlp {
    /// Flushes the spans not yet exported and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OTLP exporter did not shut down cleanly");
        }
    }
}

/// A `tracing` layer exporting zt4ai's trace spans over OTLP/HTTP (protobuf) to
/// `endpoint` (a collector's base URL, e.g. `http://127.0.0.1:4318`; `/v1/traces`
/// is added unless given), as service `service`. Spans go out in batches from a
/// background thread (the SDK's batch processor; `OTEL_BSP_*` variables tune
/// it), so a slow collector never delays a request.
pub fn otlp_layer<S>(
    endpoint: &str,
    service: &str,
) -> Result<(impl tracing_subscriber::Layer<S>, Otlp), String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    let url = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    // reqwest is built with rustls and no default crypto provider: use ring,
    // as the rest of zt4ai does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The default client is reqwest's blocking one, run on the batch
    // processor's own thread: build this outside any async runtime.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url.clone())
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("OTLP exporter for `{url}`: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("zt4ai");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false);
    Ok((layer, Otlp { provider }))
}
