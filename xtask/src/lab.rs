//! `cargo xtask lab`: the two-namespace multihomed lab of
//! `sctp-monitor/tests/peer/lab.sh` with a real usrsctp association over
//! both address families (path 1 IPv4 `10.201.1.0/24`, path 2 IPv6
//! `fd00:201:2::/64`), the agent attached to ns a's two veths (its API on
//! 127.0.0.1:9108 inside ns a), and the live view (`sctp-monitor top`, also
//! inside ns a). Every `--cut-every` seconds the current primary path is
//! cut, and restored half a period later. Ctrl-C (or quitting the view)
//! removes everything; a new run first cleans up what a killed run left
//! behind.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

use crate::run::{cargo, workspace_root};

pub const NS_A: &str = "sctpmon-a";
/// `lab.sh start` mode: one association, path 1 IPv4 and path 2 IPv6.
const MODE: &str = "mixed";
const API: &str = "127.0.0.1:9108";
const STATE_DIR: &str = "/tmp/sctpmon-xtask-lab";

fn lab_sh() -> PathBuf {
    workspace_root().join("sctp-monitor/tests/peer/lab.sh")
}

fn lab(args: &[&str]) -> anyhow::Result<()> {
    let st = Command::new(lab_sh()).args(args).env("SCTPMON_NS_A", NS_A).env("SCTPMON_NS_B", "sctpmon-b").status()?;
    if !st.success() {
        bail!("lab.sh {} failed", args.join(" "));
    }
    Ok(())
}

fn quiet_lab(args: &[&str]) {
    let _ = Command::new(lab_sh()).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// Removes what an earlier (possibly killed) run left: the agent and peers
/// (they live in the namespaces), namespaces, links.
pub fn cleanup() {
    if let Ok(pid) = std::fs::read_to_string(Path::new(STATE_DIR).join("agent.pid"))
        && let Ok(pid) = pid.trim().parse::<i32>()
    {
        // SAFETY: plain kill(2) of the pid we wrote; ESRCH is fine.
        unsafe { libc_kill(pid, 15) };
    }
    quiet_lab(&["stop", STATE_DIR]);
    let _ = Command::new(lab_sh()).arg("down").status();
    let _ = std::fs::remove_dir_all(STATE_DIR);
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The client's current primary (peer address), from its JSON Lines.
fn client_primary(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("client.jsonl")).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json_lite::Line = serde_json_lite::parse(l)?;
        v.primary
    })
}

/// Just enough JSON for the peer's `"primary":"ADDR"` field (xtask has no serde).
mod serde_json_lite {
    pub struct Line {
        pub primary: Option<String>,
    }
    pub fn parse(l: &str) -> Option<Line> {
        let i = l.find("\"primary\":\"")? + "\"primary\":\"".len();
        let j = l[i..].find('"')? + i;
        Some(Line { primary: Some(l[i..j].to_string()) })
    }
}

pub fn lab_main(cut_every: u64, no_view: bool) -> anyhow::Result<()> {
    if !is_root() {
        bail!("`cargo xtask lab` needs root (network namespaces, XDP): run it with sudo -E, or as root");
    }
    println!("lab: cleaning up what an earlier run may have left");
    cleanup();
    println!("lab: building the agent and the usrsctp peer");
    let ok = cargo().args(["build", "--package", "sctp-monitor"]).status()?;
    if !ok.success() {
        bail!("cargo build --package sctp-monitor failed");
    }
    let bin = workspace_root().join("target/debug/sctp-monitor");
    let dir = PathBuf::from(STATE_DIR);
    std::fs::create_dir_all(&dir)?;
    lab(&["build"])?;

    let stop = Arc::new(AtomicBool::new(false));
    install_sigint(stop.clone());
    let result = run_lab(&bin, &dir, cut_every, no_view, &stop);
    println!("lab: removing the namespaces, links and processes");
    cleanup();
    result
}

fn run_lab(bin: &Path, dir: &Path, cut_every: u64, no_view: bool, stop: &AtomicBool) -> anyhow::Result<()> {
    lab(&["up"])?;
    let mut agent = agent_cmd(bin, dir).spawn().context("starting the agent")?;
    std::fs::write(dir.join("agent.pid"), agent.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(dir.join("agent.log"))
        .is_ok_and(|l| l.contains("attached to smA2 ") && l.contains("attached to smA1 "))
    {
        if Instant::now() > deadline || agent.try_wait()?.is_some() {
            let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
            bail!("the agent did not attach to smA1 and smA2:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    lab(&["start", MODE, dir.to_str().unwrap()])?;
    print_manual(bin);

    let cutter_stop = Arc::new(AtomicBool::new(false));
    let cutter = {
        let (dir, cs) = (dir.to_path_buf(), cutter_stop.clone());
        std::thread::spawn(move || cutter(&dir, cut_every, &cs))
    };
    if no_view {
        println!("lab: running without the live view; Ctrl-C stops and removes everything");
        while !stop.load(Ordering::SeqCst) && agent.try_wait()?.is_none() {
            std::thread::sleep(Duration::from_millis(200));
        }
    } else {
        std::thread::sleep(Duration::from_secs(1));
        let st = Command::new("ip")
            .args(["netns", "exec", NS_A])
            .arg(bin)
            .args(["top", "--connect", &format!("http://{API}")])
            .status()?;
        if !st.success() {
            eprintln!("lab: the live view exited with {st}");
        }
    }
    cutter_stop.store(true, Ordering::SeqCst);
    let _ = cutter.join();
    stop_child(&mut agent);
    Ok(())
}

fn agent_cmd(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", NS_A])
        .arg(bin)
        .args(["run", "-i", "smA1", "-i", "smA2", "--metrics", API])
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .args([
            "--poll-interval-ms",
            "200",
            "--tick-interval-ms",
            "100",
            "--hb-down-after",
            "2",
            "--hb-timeout-ms",
            "600",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("agent.log")).expect("agent.log"));
    c
}

fn print_manual(bin: &Path) {
    let b = bin.display();
    println!(
        "\nlab: up. The agent runs in ns {NS_A} on smA1 and smA2, its API on {API} (inside {NS_A}).\n\
         lab: to run it by hand against the lab instead:\n\
         \x20   sudo {lab} up && sudo {lab} start {MODE}\n\
         \x20   sudo ip netns exec {NS_A} {b} top -i smA1 -i smA2          # the agent inside the view, or:\n\
         \x20   sudo ip netns exec {NS_A} {b} run -i smA1 -i smA2 --metrics {API} --events /tmp/events.jsonl\n\
         \x20   sudo ip netns exec {NS_A} {b} top --connect http://{API}\n\
         \x20   sudo {lab} cut 1; sudo {lab} restore 1    # fail and bring back path 1\n\
         \x20   sudo {lab} down                           # remove everything\n",
        lab = lab_sh().display()
    );
    std::thread::sleep(Duration::from_secs(2));
}

/// Every `period` s cut the client's primary path; restore it half a period later.
fn cutter(dir: &Path, period: u64, stop: &AtomicBool) {
    let sleep = |secs: u64| {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    };
    let period = period.max(4);
    while sleep(period / 2) {
        let path = match client_primary(dir) {
            Some(p) if p.starts_with("10.201.2.") || p.starts_with("fd00:201:2:") => "2",
            _ => "1",
        };
        quiet_lab(&["cut", path]);
        if !sleep(period / 2) {
            return;
        }
        quiet_lab(&["restore", path]);
    }
}

fn stop_child(c: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc_kill(c.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if c.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

static SIGINT_FLAG: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: i32) {
    SIGINT_FLAG.store(true, Ordering::SeqCst);
}

unsafe extern "C" {
    fn signal(sig: i32, handler: extern "C" fn(i32)) -> usize;
}

/// Ctrl-C stops the lab (the view, a child, gets its own SIGINT and exits;
/// raw mode makes it a key press there, and `q`/Ctrl-C quit it).
fn install_sigint(stop: Arc<AtomicBool>) {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        signal(2, on_sigint);
        signal(15, on_sigint);
    }
    std::thread::spawn(move || {
        loop {
            if SIGINT_FLAG.load(Ordering::SeqCst) {
                stop.store(true, Ordering::SeqCst);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}
