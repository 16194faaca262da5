//! OTLP export (cargo feature `otlp`, `--otlp-endpoint`): every event as an
//! OpenTelemetry log record, and the main counts as OpenTelemetry metrics,
//! over OTLP/gRPC (opentelemetry-otlp with tonic) to a collector.
//!
//! - Logs: one record per event; the body is the event's JSON line (the
//!   same bytes as `--events`), the event name is its `event`, attributes
//!   `sctp.assoc`, `sctp.event` and, where the event has them,
//!   `network.interface.name` (ifname) and `sctp.ppid`; severity WARN for
//!   failover, path_down, stalled and association_down other than a
//!   shutdown, INFO otherwise; the timestamp is the event's.
//! - Metrics (cumulative, every `--otlp-interval-ms`): `sctp_monitor.events`
//!   (counter, attribute `event`), `sctp_monitor.associations` and
//!   `sctp_monitor.paths` (gauges, attribute `state`).
//! - Resource: `service.name` = `sctp-monitor`, `service.version`,
//!   `host.name` = `--host`.
//!
//! The SDK's batch log processor and periodic metric reader run on their
//! own threads; the gRPC client runs on a one-worker tokio runtime of its
//! own, so neither waits for the agent's single-threaded loop (and shutting
//! down from that loop cannot wait on itself). Export failures are the
//! SDK's to retry and log; they never stop the agent.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::{Counter, Gauge, MeterProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use super::api::{ASSOC_STATES, PATH_STATES, assoc_state_name, path_state_name};
use crate::event::{DownReason, Event, EventKind};
use crate::tracker::Census;

/// Where and how often to export.
#[derive(Debug, Clone)]
pub struct OtlpOptions {
    /// The collector's OTLP/gRPC endpoint, e.g. `http://collector:4317`.
    pub endpoint: String,
    /// The resource's `host.name`.
    pub host: String,
    /// Metrics are exported this often.
    pub metrics_interval: Duration,
}

/// The exporter: see the module documentation.
pub struct OtlpExporter {
    logs: SdkLoggerProvider,
    logger: SdkLogger,
    metrics: SdkMeterProvider,
    events: Counter<u64>,
    associations: Gauge<u64>,
    paths: Gauge<u64>,
    /// Runs the gRPC client; shut down in the background on drop.
    rt: Option<tokio::runtime::Runtime>,
    shut: std::sync::atomic::AtomicBool,
}

impl OtlpExporter {
    pub fn start(o: &OtlpOptions) -> anyhow::Result<OtlpExporter> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp")
            .enable_all()
            .build()
            .context("starting the OTLP exporter's runtime")?;
        // The tonic channel is made (and its worker spawned) on that runtime.
        let _in_rt = rt.enter();
        let hint = || {
            format!("--otlp-endpoint {}: give the collector's OTLP/gRPC URL, e.g. http://127.0.0.1:4317", o.endpoint)
        };
        let log_exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(&o.endpoint)
            .build()
            .with_context(hint)?;
        let metric_exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(&o.endpoint)
            .build()
            .with_context(hint)?;
        let resource = Resource::builder_empty()
            .with_service_name("sctp-monitor")
            .with_attributes([
                KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                KeyValue::new("host.name", o.host.clone()),
            ])
            .build();
        let logs =
            SdkLoggerProvider::builder().with_resource(resource.clone()).with_batch_exporter(log_exporter).build();
        let reader = PeriodicReader::builder(metric_exporter).with_interval(o.metrics_interval).build();
        let metrics = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
        let meter = metrics.meter("sctp-monitor");
        let events = meter.u64_counter("sctp_monitor.events").with_description("Events emitted, by kind").build();
        let associations = meter
            .u64_gauge("sctp_monitor.associations")
            .with_description("SCTP associations tracked, by state")
            .build();
        let paths =
            meter.u64_gauge("sctp_monitor.paths").with_description("Paths of tracked associations, by state").build();
        // Every kind from 0, as on /metrics.
        for k in EventKind::ALL {
            events.add(0, &[KeyValue::new("event", k.name())]);
        }
        let logger = logs.logger("sctp-monitor");
        drop(_in_rt);
        Ok(OtlpExporter {
            logs,
            logger,
            metrics,
            events,
            associations,
            paths,
            rt: Some(rt),
            shut: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// One event, with its JSON line (the log record's body).
    pub fn on_event(&self, ev: &Event, line: &str) {
        let mut r = self.logger.create_log_record();
        r.set_timestamp(UNIX_EPOCH + Duration::from_nanos(ev.ts));
        r.set_observed_timestamp(SystemTime::now());
        let warn = match ev.event {
            EventKind::Failover | EventKind::PathDown | EventKind::Stalled => true,
            EventKind::AssociationDown => ev.reason != Some(DownReason::Shutdown),
            // A peer complaining about what it was sent.
            EventKind::ErrorReported => true,
            // The peer's application stopped reading.
            EventKind::WindowZero | EventKind::PathDegraded => true,
            _ => false,
        };
        let (sev, text) = if warn { (Severity::Warn, "WARN") } else { (Severity::Info, "INFO") };
        r.set_severity_number(sev);
        r.set_severity_text(text);
        r.set_event_name(ev.event.name());
        r.set_body(AnyValue::String(line.to_string().into()));
        r.add_attribute("sctp.event", ev.event.name());
        r.add_attribute("sctp.assoc", ev.assoc as i64);
        if let Some(i) = &ev.ifname {
            r.add_attribute("network.interface.name", AnyValue::String(i.clone().into()));
        }
        if let Some(p) = ev.ppid {
            r.add_attribute("sctp.ppid", p.0 as i64);
        }
        self.logger.emit(r);
        self.events.add(1, &[KeyValue::new("event", ev.event.name())]);
    }

    /// Associations and paths by state, now.
    pub fn set_census(&self, c: &Census) {
        for s in ASSOC_STATES {
            self.associations.record(c.associations_in(s), &[KeyValue::new("state", assoc_state_name(s))]);
        }
        for s in PATH_STATES {
            self.paths.record(c.paths_in(s), &[KeyValue::new("state", path_state_name(s))]);
        }
    }

    /// Exports what is pending (logs, then a last metrics collection) and
    /// stops the exporters.
    pub fn shutdown(&self) {
        if self.shut.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.logs.shutdown() {
            log::warn!("OTLP logs at shutdown: {e}");
        }
        if let Err(e) = self.metrics.shutdown() {
            log::warn!("OTLP metrics at shutdown: {e}");
        }
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        // Dropped from inside the agent's runtime: a blocking runtime drop
        // would panic there.
        self.shutdown();
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
