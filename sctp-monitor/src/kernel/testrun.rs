//! The real programs run on crafted frames with BPF_PROG_TEST_RUN: used by
//! the kernel tests and by `cargo xtask bench`.

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
};
use sctp_monitor_common::{ChunkRecord, maps, programs};

use super::{
    counters::{self, Counters},
    load::{LoadOptions, load},
};

/// Which program a frame goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prog {
    /// `sctp_ingress` (XDP).
    Ingress,
    /// `sctp_egress` (TC).
    Egress,
    /// `sctp_ingress_tc` (TC on ingress, `--xdp-mode tc`).
    IngressTc,
    /// `xdp_pass_baseline`: returns XDP_PASS and nothing else.
    Baseline,
    /// A benchmark probe (`programs::PROBES`).
    Probe(&'static str),
}

/// A loaded object whose programs are run on frames, not attached.
pub struct TestBed {
    pub ebpf: Ebpf,
    /// Frames run through the ingress and egress programs so far (the
    /// baseline's are not counted: it has no counters).
    pub runs: std::cell::Cell<[u64; 2]>,
    ring: Option<RingBuf<MapData>>,
}

/// XDP_PASS.
pub const XDP_PASS: u32 = 2;
/// TC_ACT_UNSPEC ("continue") as the u32 the test run returns.
pub const TC_ACT_UNSPEC: u32 = u32::MAX;

impl TestBed {
    pub fn new(mut opts: LoadOptions) -> anyhow::Result<TestBed> {
        opts.load_baseline = true;
        let mut ebpf = load(&opts)?;
        let ring = RingBuf::try_from(ebpf.take_map(maps::EVENTS).context("EVENTS map missing")?)?;
        Ok(TestBed { ebpf, runs: Default::default(), ring: Some(ring) })
    }

    /// Runs `frame` through a program `repeat` times; returns the program's
    /// return value and the kernel-measured mean duration per run.
    pub fn run(&self, prog: Prog, frame: &[u8], repeat: u32) -> anyhow::Result<(u32, std::time::Duration)> {
        let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::new() };
        let mut runs = self.runs.get();
        match prog {
            Prog::Ingress | Prog::IngressTc => runs[0] += repeat as u64,
            Prog::Egress => runs[1] += repeat as u64,
            Prog::Baseline | Prog::Probe(_) => {}
        }
        let res = match prog {
            Prog::Ingress | Prog::Baseline | Prog::Probe(_) => {
                let name = match prog {
                    Prog::Ingress => programs::XDP_INGRESS,
                    Prog::Probe(name) => name,
                    _ => programs::XDP_BASELINE,
                };
                let p: &Xdp = self.ebpf.program(name).context("program missing")?.try_into()?;
                p.test_run(opts)?
            }
            Prog::Egress | Prog::IngressTc => {
                let name = if prog == Prog::Egress { programs::TC_EGRESS } else { programs::TC_INGRESS };
                let p: &SchedClassifier = self.ebpf.program(name).context("program missing")?.try_into()?;
                p.test_run(opts)?
            }
        };
        self.runs.set(runs);
        Ok((res.return_value, res.duration))
    }

    /// Runs once and checks the packet was let through untouched.
    pub fn pass(&self, prog: Prog, frame: &[u8]) -> anyhow::Result<()> {
        let (ret, _) = self.run(prog, frame, 1)?;
        let want = if matches!(prog, Prog::Egress | Prog::IngressTc) { TC_ACT_UNSPEC } else { XDP_PASS };
        anyhow::ensure!(ret == want, "{prog:?} returned {ret:#x}, expected {want:#x}");
        Ok(())
    }

    /// Takes every record waiting in the ring buffer.
    pub fn drain(&mut self) -> Vec<ChunkRecord> {
        let mut out = Vec::new();
        let Some(ring) = self.ring.as_mut() else {
            return out;
        };
        while let Some(item) = ring.next() {
            if let Some(r) = ChunkRecord::from_bytes(&item) {
                out.push(r);
            }
        }
        out
    }

    /// Hands the ring buffer to the caller (e.g. a consumer thread); `drain`
    /// returns nothing afterwards.
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Counters of both directions (0 ingress, 1 egress), summed over CPUs.
    pub fn counters(&self) -> anyhow::Result<[Counters; 2]> {
        counters::read(&self.ebpf)
    }
}
