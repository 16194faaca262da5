//! Frames written as a capture, for `replay` and tshark to read: a classic
//! Ethernet pcap with nanosecond times, in memory or in a temporary file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

/// `frames` (capture time in ns since the epoch, Ethernet frame) as pcap
/// bytes.
pub fn ethernet(frames: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: pcap_file::TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(Vec::new(), header).expect("pcap header");
    for (ts, f) in frames {
        w.write_packet(&PcapPacket::new(Duration::from_nanos(*ts), f.len() as u32, f)).expect("pcap record");
    }
    w.into_writer()
}

/// A capture file in the temporary directory, removed on drop.
pub struct TempPcap(PathBuf);

impl TempPcap {
    /// `frames` written to `sctp-monitor-NAME-PID.pcap`.
    pub fn write(name: &str, frames: &[(u64, Vec<u8>)]) -> TempPcap {
        let path = std::env::temp_dir().join(format!("sctp-monitor-{name}-{}.pcap", std::process::id()));
        std::fs::write(&path, ethernet(frames)).expect("write the capture");
        TempPcap(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPcap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
