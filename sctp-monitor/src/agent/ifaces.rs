//! Interface discovery.

use std::fs;

/// Every interface that is up, except loopback (from /sys/class/net).
pub fn all_up_except_loopback() -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/sys/class/net")? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name == "lo" {
            continue;
        }
        let flags = fs::read_to_string(format!("/sys/class/net/{name}/flags")).unwrap_or_default();
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
        // IFF_UP = 0x1, IFF_LOOPBACK = 0x8
        if flags & 0x1 != 0 && flags & 0x8 == 0 {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}
