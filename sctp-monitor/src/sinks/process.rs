//! `sctp_monitor_build_info` and the standard process metrics, read from
//! `/proc/self` at each scrape (the names every Prometheus client library
//! uses, so the usual dashboards and alerts work unchanged):
//!
//! | metric | type | from |
//! |---|---|---|
//! | `sctp_monitor_build_info` | gauge (1) | `version`, `ebpf_toolchain`, `commit` labels |
//! | `process_cpu_seconds_total` | counter | user + system time (`/proc/self/stat`) |
//! | `process_resident_memory_bytes` | gauge | resident set size |
//! | `process_virtual_memory_bytes` | gauge | virtual memory size |
//! | `process_open_fds` | gauge | entries of `/proc/self/fd` |
//! | `process_max_fds` | gauge | `RLIMIT_NOFILE` soft limit |
//! | `process_start_time_seconds` | gauge | start, Unix time (boot time + start ticks) |
//!
//! Kept apart from `metrics.rs` (whose registry prefixes every name with
//! `sctp_monitor_`): [`append`] adds these families to an encoded document.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, text::encode},
    metrics::{counter::ConstCounter, family::Family, gauge::ConstGauge, gauge::Gauge},
    registry::{Registry, Unit},
};

use super::metrics::openmetrics_to_text;

/// What `/proc/self` says about this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub start_time_seconds: f64,
}

/// Fields of `/proc/PID/stat` after the command name (which may hold spaces
/// and parentheses, so the split is at the last `)`): index 0 is field 3
/// (state).
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().collect())
}

/// Parses `/proc/self/stat` and the `btime` line of `/proc/stat`.
pub fn parse(stat: &str, proc_stat: &str, ticks_per_s: f64, page_bytes: u64) -> Option<ProcessStats> {
    let f = stat_fields(stat)?;
    // Fields 14, 15 (utime, stime), 22 (starttime), 23 (vsize), 24 (rss),
    // counted from 1; f[0] is field 3.
    let num = |field: usize| f.get(field - 3).and_then(|v| v.parse::<u64>().ok());
    let btime: u64 = proc_stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())?;
    Some(ProcessStats {
        cpu_seconds: (num(14)? + num(15)?) as f64 / ticks_per_s,
        resident_bytes: num(24)? * page_bytes,
        virtual_bytes: num(23)?,
        open_fds: 0,
        max_fds: 0,
        start_time_seconds: btime as f64 + num(22)? as f64 / ticks_per_s,
    })
}

/// This process, now. `None` when `/proc` cannot be read.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let proc_stat = std::fs::read_to_string("/proc/stat").ok()?;
    // SAFETY: sysconf and getrlimit only read.
    let (ticks, page) = unsafe { (libc::sysconf(libc::_SC_CLK_TCK), libc::sysconf(libc::_SC_PAGESIZE)) };
    let mut s = parse(&stat, &proc_stat, ticks.max(1) as f64, page.max(1) as u64)?;
    s.open_fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid pointer to an rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        s.max_fds = lim.rlim_cur;
    }
    Some(s)
}

/// The commit the agent was built from (`build.rs`; `unknown` outside a git
/// checkout, as in a container build from a source archive).
pub const COMMIT: &str = match option_env!("SCTP_MONITOR_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = read() else { return Ok(()) };
        let c = ConstCounter::new(s.cpu_seconds);
        c.encode(enc.encode_descriptor(
            "process_cpu",
            "Total user and system CPU time spent",
            Some(&Unit::Seconds),
            c.metric_type(),
        )?)?;
        let gauges: [(&str, &str, Option<Unit>, f64); 5] = [
            ("process_resident_memory", "Resident memory size", Some(Unit::Bytes), s.resident_bytes as f64),
            ("process_virtual_memory", "Virtual memory size", Some(Unit::Bytes), s.virtual_bytes as f64),
            ("process_open_fds", "Open file descriptors", None, s.open_fds as f64),
            ("process_max_fds", "Maximum number of open file descriptors (RLIMIT_NOFILE)", None, s.max_fds as f64),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch",
                Some(Unit::Seconds),
                s.start_time_seconds,
            ),
        ];
        for (name, help, unit, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(enc.encode_descriptor(name, help, unit.as_ref(), g.metric_type())?)?;
        }
        Ok(())
    }
}

/// The registry of this file's families, encoded on each scrape.
fn registry() -> Registry {
    let mut r = Registry::default();
    let info: Family<Vec<(&'static str, String)>, Gauge> = Family::default();
    info.get_or_create(&vec![
        ("version", env!("CARGO_PKG_VERSION").to_string()),
        ("ebpf_toolchain", env!("SCTP_MONITOR_EBPF_TOOLCHAIN").to_string()),
        ("commit", COMMIT.to_string()),
    ])
    .set(1);
    r.register(
        "sctp_monitor_build_info",
        "The agent's version, the toolchain of its eBPF programs and its commit",
        info,
    );
    r.register_collector(Box::new(ProcessCollector));
    r
}

/// Adds build_info and the process families to `doc`, a document from
/// `Metrics::encode(openmetrics)`: before its `# EOF` in OpenMetrics, at
/// the end in Prometheus text.
pub fn append(doc: &mut String, openmetrics: bool) {
    let mut om = String::with_capacity(2048);
    let _ = encode(&mut om, &registry());
    if openmetrics {
        let body = om.strip_suffix("# EOF\n").unwrap_or(&om);
        match doc.rfind("# EOF\n") {
            Some(at) => doc.insert_str(at, body),
            None => doc.push_str(body),
        }
    } else {
        doc.push_str(&openmetrics_to_text(&om));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_command_has_spaces_and_parentheses() {
        // A real /proc/PID/stat line, the command name changed.
        let stat = "4242 (sctp mon (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 150 0 0 20 0 2 0 \
                    123400 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let s = parse(stat, "cpu 1 2 3\nbtime 1700000000\n", 100.0, 4096).expect("parses");
        assert_eq!(s.cpu_seconds, 4.0, "(250 + 150) ticks at 100/s");
        assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 1234.0);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.resident_bytes, 2560 * 4096);
        assert_eq!(parse("garbage", "btime 1", 100.0, 4096), None);
        assert_eq!(parse(stat, "no btime here", 100.0, 4096), None);
    }

    #[test]
    fn this_process_is_read_and_appended_in_both_formats() {
        let s = read().expect("/proc/self");
        assert!(s.resident_bytes > 0 && s.open_fds >= 3 && s.max_fds >= s.open_fds, "{s:?}");
        let mut om = "# TYPE x gauge\nx 1\n# EOF\n".to_string();
        append(&mut om, true);
        assert!(om.ends_with("# EOF\n") && om.matches("# EOF").count() == 1, "{om}");
        assert!(om.contains("# TYPE process_cpu_seconds counter\n# UNIT process_cpu_seconds seconds\n"), "{om}");
        assert!(om.contains("\nprocess_cpu_seconds_total "), "{om}");
        assert!(om.contains("sctp_monitor_build_info{version=\""), "{om}");
        let mut text = "# TYPE x gauge\nx 1\n".to_string();
        append(&mut text, false);
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "), "{text}");
        assert!(text.contains("process_resident_memory_bytes ") && text.contains("process_open_fds "), "{text}");
        assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "{text}");
    }
}
