//! The agent's ring reader (`RingSource`, which maps the ring itself and
//! publishes its position once per drain) against the real XDP program:
//! a small ring written past its end many times while it is drained, every
//! record handed out once, in order, and written = taken + lost.

mod support;

use std::time::Duration;

use sctp_monitor::{
    agent::ring::RingSource,
    craft::{self, FrameBuilder},
    kernel::{
        LoadOptions, counters,
        testrun::{Prog, TestBed},
    },
};
use sctp_monitor_common::counters as c;
use support::privileged;

#[test]
fn ring_source_takes_every_record_once_across_wraps() {
    if !privileged("ring_source_takes_every_record_once_across_wraps") {
        return;
    }
    // 64 KiB: a few hundred records, wrapped many times below.
    let mut bed = TestBed::new(LoadOptions { ring_bytes: 64 << 10, ..LoadOptions::default() }).expect("load");
    let ring = bed.take_ring().expect("ring");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (a, b) = ("10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap());
    let (taken, in_order) = rt.block_on(async {
        let mut src = RingSource::new(ring).expect("reader");
        let (mut taken, mut in_order, mut last) = (0u64, true, None::<u64>);
        for round in 0..30u64 {
            // 100 heartbeats with increasing Heartbeat Info, each its own
            // record, then drain what fits.
            for k in 0..100u64 {
                let n = round * 100 + k;
                let mut info = vec![0u8; 8 + 8 * (1 + (n % 5) as usize)];
                info[..8].copy_from_slice(&n.to_be_bytes());
                let f = FrameBuilder::ipv4(a, b).sctp(1, 2, 0x77).chunk(craft::heartbeat(&info)).build();
                bed.run(Prog::Ingress, &f, 1).expect("run");
            }
            loop {
                let got = tokio::time::timeout(
                    Duration::from_millis(120),
                    src.drain(64, |r| {
                        // The record's own Heartbeat Info: its sequence number.
                        let n = u64::from_be_bytes(r.data[8..16].try_into().expect("8 bytes"));
                        in_order &= last.is_none_or(|l| n > l);
                        last = Some(n);
                        taken += 1;
                    }),
                )
                .await;
                match got {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => panic!("drain: {e}"),
                    Err(_) => break,
                }
            }
        }
        (taken, in_order)
    });
    let k = counters::read(&bed.ebpf).expect("counters");
    let (written, lost) = (k[0].get(c::RINGBUF_RECORDS), k[0].get(c::RINGBUF_LOST));
    assert_eq!(written + lost, 3000, "every heartbeat made a record or a loss");
    assert_eq!(taken, written, "each record written was taken once ({lost} lost)");
    assert!(in_order, "records come out in the order they were written");
    assert!(written > 2000, "the 64 KiB ring wrapped many times ({written} records)");
}

/// Records that do not wake the agent (heartbeats) are drained when the
/// source's wait runs out, even when the drain is abandoned again and again
/// for other work before that (the agent's `select!` drops it for every
/// API query and poll): the wait is not started over each time.
#[test]
fn heartbeats_are_drained_while_other_work_keeps_interrupting_the_wait() {
    if !privileged("heartbeats_are_drained_while_other_work_keeps_interrupting_the_wait") {
        return;
    }
    let mut bed = TestBed::new(LoadOptions { ring_bytes: 64 << 10, ..LoadOptions::default() }).expect("load");
    let ring = bed.take_ring().expect("ring");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (a, b) = ("10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap());
    let f = FrameBuilder::ipv4(a, b).sctp(1, 2, 0x77).chunk(craft::heartbeat(&[7; 16])).build();
    let interrupts = rt.block_on(async {
        let mut src = RingSource::new(ring).expect("reader");
        bed.run(Prog::Ingress, &f, 10).expect("run");
        let (mut taken, mut interrupts) = (0, 0u32);
        // Other work every 5 ms, far more often than the longest wait;
        // the records must still come out, within a few waits.
        let give_up = tokio::time::Instant::now() + 10 * sctp_monitor::agent::ring::MAX_INTERVAL;
        while taken < 10 && tokio::time::Instant::now() < give_up {
            tokio::select! {
                n = src.drain(64, |_| {}) => taken += n.expect("drain"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => interrupts += 1,
            }
        }
        assert_eq!(taken, 10, "the heartbeat records stayed in the ring ({interrupts} interruptions)");
        interrupts
    });
    assert!(interrupts > 5, "the drain was interrupted ({interrupts} times)");
}
