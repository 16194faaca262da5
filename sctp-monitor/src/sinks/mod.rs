//! Where the tracker's output goes: JSON Lines events and the event log
//! (`events`), Prometheus / OpenMetrics (`metrics`, with the capped
//! per-association series in `series`), the HTTP JSON API
//! documents (`api`) and the HTTP listener serving both (`http`); with the
//! `otlp` feature, OTLP logs and metrics (`otlp`).

pub mod api;
pub mod events;
pub mod http;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod series;
