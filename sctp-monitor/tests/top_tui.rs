//! The live view as a person sees it: `sctp-monitor top` in a tmux pane
//! (80x24) against a live agent on the two-namespace usrsctp lab
//! (tests/peer/lab.sh), keys sent with `tmux send-keys`, the screen read with
//! `tmux capture-pane -p`. And `cargo xtask lab`'s set-up and clean-up
//! (after Ctrl-C and after a `kill -9`) leave no namespace, link or process.
//!
//! Needs root, tmux, gcc + libusrsctp-dev, nftables (`cargo xtask setup --tests`).

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use support::privileged;

/// The two lab tests run one after the other (the clean-up check looks for
/// any lab peer process).
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/lab.sh")
}

fn lab(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new(lab_sh())
        .args(args)
        .env("SCTPMON_NS_A", format!("{ns}-a"))
        .env("SCTPMON_NS_B", format!("{ns}-b"))
        .stdin(Stdio::null())
        .output()
        .expect("lab.sh")
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).stdout(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the session, the agent, the peers and the namespaces, even when the test fails.
struct Guard {
    ns: &'static str,
    session: String,
    dir: PathBuf,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).stderr(Stdio::null()).status();
        lab(self.ns, &["stop", self.dir.to_str().unwrap()]);
        lab(self.ns, &["down"]);
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn wait_pane(session: &str, what: &str, timeout: Duration, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let pane = tmux(&["capture-pane", "-p", "-t", session]);
        if f(&pane) {
            return pane;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; the pane:\n{pane}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn keys(session: &str, k: &[&str]) {
    let mut a = vec!["send-keys", "-t", session];
    a.extend_from_slice(k);
    tmux(&a);
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn top_in_tmux_against_the_lab() {
    if !privileged("top_in_tmux_against_the_lab") {
        return;
    }
    for tool in ["tmux", "gcc", "nft"] {
        assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let ns = "smtop";
    let dir = std::env::temp_dir().join(format!("sctpmon-top-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let session = format!("smtop-{}", std::process::id());
    let g = Guard { ns, session: session.clone(), dir: dir.clone() };
    let peer = dir.join("sctp_peer");
    let out = lab(ns, &["build", peer.to_str().unwrap()]);
    assert!(out.status.success(), "lab.sh build: {}", String::from_utf8_lossy(&out.stderr));
    let out = lab(ns, &["up"]);
    assert!(out.status.success(), "lab.sh up: {}", String::from_utf8_lossy(&out.stderr));

    let bin = env!("CARGO_BIN_EXE_sctp-monitor");
    let agent_log = dir.join("agent.log");
    let _agent = Command::new("ip")
        .args(["netns", "exec", "smtop-a", bin, "run", "-i", "smA1", "-i", "smA2", "--metrics", "127.0.0.1:9108"])
        .arg("--events")
        .arg(dir.join("events.jsonl"))
        .args(["--poll-interval-ms", "200", "--tick-interval-ms", "100", "--hb-down-after", "2", "--hb-timeout-ms", "600"])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&agent_log).unwrap())
        .spawn()
        .expect("agent"); // killed by `lab.sh down` (it lives in the namespace)
    let deadline = Instant::now() + Duration::from_secs(15);
    while !fs::read_to_string(&agent_log).is_ok_and(|l| l.contains("attached to smA1 ") && l.contains("attached to smA2 ")) {
        assert!(Instant::now() < deadline, "agent did not attach: {}", fs::read_to_string(&agent_log).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = Command::new(lab_sh())
        .args(["start", "raw4", dir.to_str().unwrap()])
        .env("SCTPMON_NS_A", "smtop-a")
        .env("SCTPMON_NS_B", "smtop-b")
        .env("SCTP_PEER", &peer)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("lab.sh start");
    assert!(out.success(), "lab.sh start failed");

    // The view in an 80x24 pane; after it exits the shell reports its status
    // and whether the terminal is back in canonical (cooked) mode.
    let script = format!(
        "ip netns exec smtop-a {bin} top --interval-ms 500; echo TOP-EXITED rc=$?; \
         stty -a | grep -q -- ' icanon' && echo TTY-SANE; sleep 60"
    );
    tmux(&["-u", "new-session", "-d", "-s", &session, "-x", "80", "-y", "24", &script]);

    // 1. The association with both address sets.
    let pane = wait_pane(&session, "the association in the view", Duration::from_secs(15), |p| {
        p.contains("I 10.201.{1,2}.1") && p.contains("R 10.201.{1,2}.2") && p.contains("ESTAB")
    });
    assert!(pane.contains("agent 0.1.0 on smA1,smA2"), "{pane}");
    assert!(pane.lines().count() <= 24 && pane.lines().all(|l| l.chars().count() <= 80), "fits 80x24:\n{pane}");

    // 2. Cut the primary path: the failover appears in the event log.
    let client = fs::read_to_string(dir.join("client.jsonl")).unwrap_or_default();
    let path = if client.lines().find(|l| l.contains("\"ev\":\"up\"")).is_some_and(|l| l.contains("\"primary\":\"10.201.2.")) { "2" } else { "1" };
    let out = lab(ns, &["cut", path]);
    assert!(out.status.success(), "lab.sh cut: {}", String::from_utf8_lossy(&out.stderr));
    let other = if path == "1" { "10.201.2.2" } else { "10.201.1.2" };
    let pane = wait_pane(&session, "the failover in the event log", Duration::from_secs(20), |p| {
        p.lines().any(|l| l.contains(" failover I ") && l.contains(&format!("-> 10.201.{}.1>{other}", if path == "1" { 2 } else { 1 })))
    });
    assert!(pane.contains("paths down") && pane.contains(&format!(">{other}")), "primary moved to {other}:\n{pane}");
    eprintln!("--- pane after the failover ---\n{pane}\n---");

    // 3. The filter: a non-matching address hides it, a state shows it.
    keys(&session, &["/", "10.9.9"]);
    wait_pane(&session, "no match", Duration::from_secs(5), |p| p.contains("associations 0/1") && p.contains("no association matches"));
    keys(&session, &["Escape"]);
    wait_pane(&session, "filter cleared", Duration::from_secs(5), |p| p.contains("associations 1/1"));
    keys(&session, &["/", "established", "Enter"]);
    wait_pane(&session, "state filter", Duration::from_secs(5), |p| {
        p.contains("associations 1/1") && p.contains("filter:\"established\"") && p.contains("I 10.201.{1,2}.1")
    });
    keys(&session, &["/", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "BSpace", "5000", "Enter"]);
    wait_pane(&session, "port filter", Duration::from_secs(5), |p| p.contains("associations 1/1") && p.contains("filter:\"5000\""));

    // 4. Enter: the detail with the full address sets.
    keys(&session, &["Enter"]);
    let detail = wait_pane(&session, "the detail", Duration::from_secs(5), |p| {
        p.contains("initiator port 5000") && p.contains("addrs 10.201.1.1, 10.201.2.1") && p.contains("addrs 10.201.1.2, 10.201.2.2")
    });
    eprintln!("--- detail ---\n{detail}\n---");
    keys(&session, &["Escape"]);
    keys(&session, &["s"]);
    wait_pane(&session, "sorted by rate", Duration::from_secs(5), |p| p.contains("sort:rate"));

    // 5. q: a clean exit, terminal restored (alternate screen left, cooked mode).
    keys(&session, &["q"]);
    let pane = wait_pane(&session, "the exit", Duration::from_secs(5), |p| p.contains("TOP-EXITED"));
    assert!(pane.contains("TOP-EXITED rc=0"), "{pane}");
    wait_pane(&session, "a sane terminal", Duration::from_secs(5), |p| p.contains("TTY-SANE"));
    let pane = tmux(&["capture-pane", "-p", "-t", &session]);
    assert!(!pane.contains("associations 1/1"), "the view's screen is gone (alternate screen left):\n{pane}");
    drop(g);
}

#[test]
fn top_says_when_the_agent_cannot_be_reached() {
    if !have("tmux") {
        eprintln!("SKIPPED: no tmux");
        return;
    }
    let session = format!("smtop-na-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_sctp-monitor");
    // A port nothing listens on (bound then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = format!("{bin} top --connect http://127.0.0.1:{port}; echo TOP-EXITED rc=$?; sleep 30");
    tmux(&["-u", "new-session", "-d", "-s", &session, "-x", "80", "-y", "24", &script]);
    let pane = wait_pane(&session, "the unreachable message", Duration::from_secs(10), |p| p.contains("Connection refused"));
    let _ = Command::new("tmux").args(["kill-session", "-t", &session]).status();
    assert!(pane.contains(&format!("Cannot reach the sctp-monitor agent at http://127.0.0.1:{port}")), "{pane}");
    assert!(pane.contains("AGENT UNREACHABLE"), "{pane}");
}

fn leftovers() -> Vec<String> {
    let mut left = Vec::new();
    let ns = String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).into_owned();
    for n in ["sctpmon-a", "sctpmon-b"] {
        if ns.lines().any(|l| l.split_whitespace().next() == Some(n)) {
            left.push(format!("namespace {n}"));
        }
    }
    let links = String::from_utf8_lossy(&Command::new("ip").args(["-br", "link"]).output().unwrap().stdout).into_owned();
    for l in links.lines().filter(|l| l.starts_with("smA") || l.starts_with("smB")) {
        left.push(format!("link {l}"));
    }
    let ps = String::from_utf8_lossy(&Command::new("ps").args(["-eo", "pid=,args="]).output().unwrap().stdout).into_owned();
    for p in ps.lines().filter(|l| l.contains("sctpmon-xtask-lab") || (l.contains("sctp_peer") && l.contains("10.201."))) {
        left.push(format!("process {p}"));
    }
    left
}

#[test]
fn xtask_lab_leaves_nothing_behind() {
    if !privileged("xtask_lab_leaves_nothing_behind") {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_string());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let ns_up = || String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).contains("sctpmon-a");
    let start = || {
        Command::new(&cargo)
            .current_dir(&root)
            .args(["run", "--quiet", "--package", "xtask", "--", "lab", "--no-view", "--cut-every", "6"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cargo xtask lab")
    };
    let wait_up = |c: &mut std::process::Child| {
        let deadline = Instant::now() + Duration::from_secs(45);
        while !(ns_up() && Path::new("/tmp/sctpmon-xtask-lab/client.pid").exists()) {
            assert!(c.try_wait().unwrap().is_none(), "cargo xtask lab exited early");
            assert!(Instant::now() < deadline, "the lab did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    // 1. Ctrl-C (SIGINT to the xtask process) removes everything.
    let mut c = start();
    wait_up(&mut c);
    let xtask_pid = find_xtask_pid().expect("the xtask process");
    Command::new("kill").args(["-INT", &xtask_pid.to_string()]).status().unwrap();
    let st = c.wait().unwrap();
    assert!(st.success(), "cargo xtask lab after Ctrl-C: {st}");
    assert_eq!(leftovers(), Vec::<String>::new(), "left behind after Ctrl-C");

    // 2. A killed run (SIGKILL: no clean-up) is cleaned by the next run's start (`--clean` here).
    let mut c = start();
    wait_up(&mut c);
    let xtask_pid = find_xtask_pid().expect("the xtask process");
    Command::new("kill").args(["-KILL", &xtask_pid.to_string()]).status().unwrap();
    let _ = c.wait();
    assert!(!leftovers().is_empty(), "a killed run leaves the lab behind");
    let st = Command::new(&cargo)
        .current_dir(&root)
        .args(["run", "--quiet", "--package", "xtask", "--", "lab", "--clean"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(leftovers(), Vec::<String>::new(), "left behind after a killed run and `cargo xtask lab --clean`");
}

fn find_xtask_pid() -> Option<u32> {
    let ps = String::from_utf8_lossy(&Command::new("ps").args(["-eo", "pid=,args="]).output().ok()?.stdout).into_owned();
    ps.lines().find(|l| l.contains("target/debug/xtask lab")).and_then(|l| l.split_whitespace().next()?.parse().ok())
}
