//! Where the tracker's output goes: JSON Lines events and the event log
//! (`events`), Prometheus / OpenMetrics (`metrics`, with the capped
//! per-association series in `series`), the HTTP JSON API
//! documents (`api`) and the HTTP listener serving both (`http`).

pub mod api;
pub mod events;
pub mod http;
pub mod metrics;
pub mod series;
