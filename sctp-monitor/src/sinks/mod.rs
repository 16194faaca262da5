//! Where the tracker's output goes: JSON Lines events and the event log
//! (`events`), Prometheus / OpenMetrics (`metrics`, with the capped
//! per-association series in `series`), the HTTP JSON API
//! documents (`api`), build and process metrics (`process`) and the HTTP
//! listener serving them (`http`).

pub mod api;
pub mod events;
pub mod http;
pub mod metrics;
pub mod process;
pub mod series;
