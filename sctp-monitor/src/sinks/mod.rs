//! Where the tracker's output goes: JSON Lines events and the event log
//! (`events`), Prometheus / OpenMetrics (`metrics`, with the capped
//! per-association series in `series`), the HTTP JSON API
//! documents (`api`), build and process metrics (`process`), the HTTP
//! listener serving them (`http`), its web configuration (`webconfig`),
//! TLS (`tls`) and basic authentication (`auth`); with the `otlp` feature, OTLP logs and
//! metrics (`otlp`).

pub mod api;
pub mod auth;
pub mod events;
pub mod http;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod process;
pub mod series;
pub mod tls;
pub mod webconfig;
