//! The per-path map read in batches (`BPF_MAP_LOOKUP_BATCH`) gives what a
//! key-by-key read gives: the real XDP program fills `PATHS` with more
//! paths than several batches hold, then both reads are compared.

mod support;

use std::net::Ipv4Addr;

use sctp_monitor::{
    craft::{self, FrameBuilder},
    kernel::{
        LoadOptions, paths,
        testrun::{Prog, TestBed},
    },
};
use support::privileged;

#[test]
fn batched_read_matches_key_by_key() {
    if !privileged("batched_read_matches_key_by_key") {
        return;
    }
    let mut bed = TestBed::new(LoadOptions::default()).expect("load");
    // 32 keys per call (the agent uses paths::BATCH): several calls.
    let n = 150;
    for i in 0..n as u32 {
        let (a, b) = (Ipv4Addr::from(0x0a10_0000 + 2 * i), Ipv4Addr::from(0x0a10_0000 + 2 * i + 1));
        let data =
            FrameBuilder::ipv4(a, b).sctp(5000, 3868, 0x100 + i).chunk(craft::data(7, 0, 0, 0, &[0; 32])).build();
        let sack = FrameBuilder::ipv4(b, a).sctp(3868, 5000, 0x200 + i).chunk(craft::sack(7, 1000, &[], &[])).build();
        // A few packets more on some paths, so the counters differ.
        bed.run(Prog::Ingress, &data, 1 + i % 3).expect("run");
        bed.run(Prog::Ingress, &sack, 1).expect("run");
    }
    let _ = bed.drain();
    let mut batched = paths::read_all_by(&bed.ebpf, 32).expect("batched read");
    let mut each = paths::read_each(&bed.ebpf).expect("key by key");
    assert_eq!(each.len(), 2 * n, "one path per direction");
    let key = |p: &(sctp_monitor_common::PathKey, sctp_monitor_common::PathStats)| bytemuck::bytes_of(&p.0).to_vec();
    batched.sort_by_key(key);
    each.sort_by_key(key);
    assert_eq!(batched.len(), each.len());
    assert!(batched == each, "the two reads differ");
    assert!(each.iter().any(|p| p.1.packets == 3) && each.iter().all(|p| p.1.packets >= 1));
}
