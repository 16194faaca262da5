//! sctp-monitor: the agent's library. A packet's way through the code:
//! kernel program (`sctp-monitor-ebpf`) -> ring record (`sctp-monitor-common`)
//! -> decoder (`decode`) -> tracker (`tracker`) -> sinks (`event`, metrics,
//! API, live view). Capture files enter at `replay` and take the same road
//! from the decoder on.

pub mod agent;
pub mod clidoc;
/// Frame and chunk builders for tests, benches, examples and fuzz targets:
/// not part of the agent (feature `craft`, which the package's own tests
/// enable through their dev-dependency on it).
#[cfg(any(test, feature = "craft"))]
pub mod craft;
pub mod decode;
pub mod error_cause;
pub mod event;
pub mod exit;
pub mod fasthash;
pub mod kernel;
pub mod ppid;
pub mod replay;
pub mod report;
pub mod sinks;
pub mod top;
pub mod tracker;
