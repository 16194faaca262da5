//! Load-time configuration, written into the object's `CONFIG` global.

use bytemuck::{Pod, Zeroable};

/// IANA port for SCTP over UDP (RFC 6951).
pub const DEFAULT_UDP_ENCAP_PORT: u16 = 9899;
/// DATA on a path after this much silence on it is reported as "resumed".
pub const DEFAULT_DATA_IDLE_NS: u64 = 1_000_000_000;

/// Default entries of the `ASSOC_DIRS` array (a power of two).
pub const DEFAULT_ASSOC_DIR_ENTRIES: u32 = 65536;
/// Default entries of the `PATH_SLOTS` array (a power of two).
pub const DEFAULT_PATH_SLOTS: u32 = 65536;

/// Bit in [`Config::flags`]: parse SCTP over UDP at all.
pub const CONFIG_FLAG_UDP_ENCAP: u32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct Config {
    /// UDP port (source or destination) that marks SCTP over UDP.
    pub udp_encap_port: u16,
    pub _pad0: u16,
    /// `CONFIG_FLAG_*` bits.
    pub flags: u32,
    /// Idle time after which DATA on a path is reported again.
    pub data_idle_ns: u64,
    /// Entries of the `ASSOC_DIRS` array minus one (the entries are a power
    /// of two; the loader sets both).
    pub assoc_dir_mask: u32,
    /// Entries of the `PATH_SLOTS` array minus one (a power of two, as
    /// above).
    pub path_slot_mask: u32,
}
const _: () = assert!(core::mem::size_of::<Config>() == 24);

impl Config {
    pub const DEFAULT: Config = Config {
        udp_encap_port: DEFAULT_UDP_ENCAP_PORT,
        _pad0: 0,
        flags: CONFIG_FLAG_UDP_ENCAP,
        data_idle_ns: DEFAULT_DATA_IDLE_NS,
        assoc_dir_mask: DEFAULT_ASSOC_DIR_ENTRIES - 1,
        path_slot_mask: DEFAULT_PATH_SLOTS - 1,
    };
}

impl Default for Config {
    fn default() -> Self {
        Self::DEFAULT
    }
}
