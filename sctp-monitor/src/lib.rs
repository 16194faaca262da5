//! sctp-monitor: the agent's library. A packet's way through the code:
//! kernel program (`sctp-monitor-ebpf`) -> ring record (`sctp-monitor-common`)
//! -> decoder (`decode`) -> tracker (`tracker`) -> sinks (`event`, metrics,
//! API, live view).

pub mod craft;
pub mod decode;
pub mod event;
pub mod tracker;
pub mod replay;
pub mod report;
