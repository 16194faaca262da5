//! Kernel records carry CLOCK_MONOTONIC (`bpf_ktime_get_ns`); events carry
//! wall-clock time. The offset between the two is measured once at start.

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC now, in nanoseconds (the kernel records' clock).
pub fn mono_now() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME now, in nanoseconds since the Unix epoch.
pub fn wall_now() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Monotonic -> wall clock.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    offset_ns: i128,
}

impl WallClock {
    /// Measures the offset: REALTIME read between two MONOTONIC reads, the
    /// closest of a few tries.
    pub fn measure() -> WallClock {
        let mut best = (u64::MAX, 0i128);
        for _ in 0..5 {
            let m0 = mono_now();
            let r = wall_now();
            let m1 = mono_now();
            let width = m1 - m0;
            if width < best.0 {
                best = (width, r as i128 - (m0 as i128 + (width / 2) as i128));
            }
        }
        WallClock { offset_ns: best.1 }
    }

    /// With a known offset (tests).
    pub fn with_offset(offset_ns: i128) -> WallClock {
        WallClock { offset_ns }
    }

    pub fn to_wall(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).max(0) as u64
    }

    pub fn now(&self) -> u64 {
        self.to_wall(mono_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_maps_monotonic_to_wall() {
        let c = WallClock::measure();
        let w = c.to_wall(mono_now());
        let diff = (w as i128 - wall_now() as i128).abs();
        assert!(diff < 50_000_000, "wall clock off by {diff} ns");
        assert_eq!(WallClock::with_offset(-5).to_wall(3), 0);
    }
}
