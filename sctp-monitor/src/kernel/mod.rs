//! The kernel side as userspace sees it: the embedded eBPF object, loading
//! it with the agent's settings, attaching to interfaces, and reading the
//! maps back.

pub mod attach;
pub mod counters;
pub mod load;
pub mod paths;
pub mod testrun;
pub mod verifier;

pub use attach::{AttachedIface, XdpModeChoice};
pub use load::{LoadOptions, load};
