//! The log of `top --iface` (the agent running inside the view). While the
//! view is on screen, log lines must not be written to the terminal it draws
//! on: they are queued for the view's event pane (and appended to
//! `--log-file`). Before the view starts and after it has restored the
//! terminal (detaching, "stopped after ..."), they go to stderr as usual.

use std::{
    collections::VecDeque,
    fs::File,
    io::Write as _,
    path::Path,
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// Lines kept for the view between two frames, at most.
const QUEUE_MAX: usize = 1000;

/// `Some` while the view is on screen.
static QUEUE: Mutex<Option<VecDeque<String>>> = Mutex::new(None);
/// Lines the view took lately, with when: see [`reprint_recent`].
static RECENT: Mutex<VecDeque<(Instant, String)>> = Mutex::new(VecDeque::new());
/// How far back [`reprint_recent`] goes.
const RECENT_FOR: Duration = Duration::from_secs(2);

struct ViewLogger {
    /// Level filter (`-v`, `RUST_LOG`); its own output is not used.
    filter: env_logger::Logger,
    file: Option<Mutex<File>>,
}

fn now_hms() -> String {
    let ts = crate::event::rfc3339_micros(crate::agent::clock::wall_now());
    crate::top::state::hms(&ts).to_string()
}

impl log::Log for ViewLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        self.filter.enabled(m)
    }

    fn log(&self, r: &log::Record) {
        if !self.filter.matches(r) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            _ => "",
        };
        let msg = format!("{level}{}", r.args());
        if let Some(f) = &self.file
            && let Ok(mut f) = f.lock()
        {
            let ts = crate::event::rfc3339_micros(crate::agent::clock::wall_now());
            for line in r.args().to_string().lines() {
                let _ = writeln!(f, "{ts} {} {} {line}", r.level(), r.target());
            }
        }
        let mut q = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
        match q.as_mut() {
            Some(q) => {
                for line in msg.lines() {
                    q.push_back(format!("{} agent {line}", now_hms()));
                }
                while q.len() > QUEUE_MAX {
                    q.pop_front();
                }
            }
            None => eprintln!("sctp-monitor: {msg}"),
        }
    }

    fn flush(&self) {
        if let Some(f) = &self.file
            && let Ok(mut f) = f.lock()
        {
            let _ = f.flush();
        }
    }
}

/// Installs the logger: `filter` decides the levels (built from `RUST_LOG`
/// and `-v`), `file` gets every line too.
pub fn init(filter: env_logger::Logger, file: Option<&Path>) -> anyhow::Result<()> {
    let file = match file {
        Some(p) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("cannot open the log file {} (--log-file)", p.display()))?,
        )),
        None => None,
    };
    let max = filter.filter();
    log::set_boxed_logger(Box::new(ViewLogger { filter, file })).context("a logger is already installed")?;
    log::set_max_level(max);
    Ok(())
}

/// While `on`, lines are queued for the view instead of written to stderr;
/// turning it off writes what the view has not taken yet to stderr.
pub fn capture(on: bool) {
    let mut q = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    if on {
        q.get_or_insert_with(VecDeque::new);
    } else if let Some(left) = q.take() {
        for l in left {
            eprintln!("sctp-monitor: {l}");
        }
    }
}

/// The lines queued since the last call.
pub fn take() -> Vec<String> {
    let mut q = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
    let lines: Vec<String> = q.as_mut().map(|q| q.drain(..).collect()).unwrap_or_default();
    let now = Instant::now();
    let mut r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    r.extend(lines.iter().map(|l| (now, l.clone())));
    while r.front().is_some_and(|(t, _)| now.duration_since(*t) > RECENT_FOR) || r.len() > QUEUE_MAX {
        r.pop_front();
    }
    lines
}

/// Writes to stderr the lines the view took in the last two seconds: when
/// the agent stopped by itself (a signal, an error), the lines saying why
/// may have reached the view just before it closed.
pub fn reprint_recent() {
    let r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    for (_, l) in r.iter().filter(|(t, _)| now.duration_since(*t) <= RECENT_FOR) {
        eprintln!("sctp-monitor: {l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_while_captured() {
        // Only this test touches the global logger in this test binary.
        let file = std::env::temp_dir().join(format!("sctpmon-logpipe-{}.log", std::process::id()));
        init(env_logger::Builder::new().filter_level(log::LevelFilter::Info).build(), Some(&file)).unwrap();
        capture(true);
        log::info!("attached to x");
        log::debug!("not shown at info");
        log::warn!("two\nlines");
        let lines = take();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].ends_with(" agent attached to x"), "{lines:?}");
        assert!(lines[1].ends_with(" agent warning: two") && lines[2].ends_with(" agent lines"), "{lines:?}");
        assert!(take().is_empty());
        capture(false);
        log::info!("to stderr now");
        assert!(take().is_empty());
        let text = std::fs::read_to_string(&file).unwrap();
        let _ = std::fs::remove_file(&file);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "every line in --log-file, whether the view is on or not: {text}");
        assert!(lines[0].ends_with(" INFO sctp_monitor::top::logpipe::tests attached to x"), "{text}");
        assert!(lines[2].ends_with(" WARN sctp_monitor::top::logpipe::tests lines"), "{text}");
        assert!(lines[3].ends_with(" to stderr now"), "{text}");
    }
}
