//! The live view as a person sees it: `sctp-monitor top` in a tmux pane
//! (80x24), keys sent with `tmux send-keys`, the screen read with
//! `tmux capture-pane -p`, on the two-namespace usrsctp lab
//! (tests/peer/lab.sh) with its association over both address families
//! (path 1 IPv4, path 2 IPv6): against a separate agent (`--connect`) and
//! with the agent inside the view (`--iface`). And `cargo xtask lab`'s
//! set-up and clean-up (after Ctrl-C and after a `kill -9`) leave no
//! namespace, link or process.
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

/// The lab tests run one after the other (the clean-up check looks for
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
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab of `lab.sh` under namespace prefix `ns` (`{ns}-a`, `{ns}-b`),
/// with the usrsctp peer built; on drop (even when the test fails) the
/// tmux session, the peers, the agent and the namespaces are removed.
struct Lab {
    ns: &'static str,
    session: String,
    dir: PathBuf,
    peer: PathBuf,
}

impl Lab {
    fn up(ns: &'static str) -> Lab {
        for tool in ["tmux", "gcc", "nft"] {
            assert!(have(tool), "{tool} not found: run `cargo xtask setup --tests`");
        }
        let dir = std::env::temp_dir().join(format!("sctpmon-{ns}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let l = Lab { ns, session: format!("{ns}-{}", std::process::id()), peer: dir.join("sctp_peer"), dir };
        let out = lab(ns, &["build", l.peer.to_str().unwrap()]);
        assert!(out.status.success(), "lab.sh build: {}", String::from_utf8_lossy(&out.stderr));
        let out = lab(ns, &["up"]);
        assert!(out.status.success(), "lab.sh up: {}", String::from_utf8_lossy(&out.stderr));
        l
    }

    fn ns_a(&self) -> String {
        format!("{}-a", self.ns)
    }

    /// The usrsctp association, path 1 IPv4 and path 2 IPv6 (`lab.sh start mixed`).
    fn start_peers(&self) {
        let st = Command::new(lab_sh())
            .args(["start", "mixed", self.dir.to_str().unwrap()])
            .env("SCTPMON_NS_A", self.ns_a())
            .env("SCTPMON_NS_B", format!("{}-b", self.ns))
            .env("SCTP_PEER", &self.peer)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("lab.sh start");
        assert!(st.success(), "lab.sh start mixed failed");
        let up = fs::read_to_string(self.dir.join("client.jsonl")).unwrap_or_default();
        let up = up.lines().find(|l| l.contains("\"ev\":\"up\"")).unwrap_or_default().to_string();
        assert!(
            up.contains("\"10.201.1.2\"") && up.contains("\"fd00:201:2::2\""),
            "usrsctp's own view of the peer: {up}"
        );
    }

    /// The client's primary path when it came up (1 or 2), the initiator's
    /// side of both paths, and the path it fails over to when `cut` is cut.
    fn primary_path(&self) -> (&'static str, &'static str, &'static str) {
        let client = fs::read_to_string(self.dir.join("client.jsonl")).unwrap_or_default();
        let on2 = client
            .lines()
            .find(|l| l.contains("\"ev\":\"up\""))
            .is_some_and(|l| l.contains("\"primary\":\"fd00:201:2::2\""));
        if on2 { ("2", PATH2, PATH1) } else { ("1", PATH1, PATH2) }
    }
}

/// The initiator's (ns a's) side of path 1 and path 2, as the event log writes them.
const PATH1: &str = "10.201.1.1>10.201.1.2";
const PATH2: &str = "fd00:201:2::1>fd00:201:2::2";

impl Drop for Lab {
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

/// The association row with both address sets, each family on its own line:
/// `I 10.201.1.x` / `fd00:201:2::x` / `R 10.201.1.y` / `fd00:201:2::y`.
fn shows_both_families(p: &str) -> bool {
    address_rows(p).is_some()
}

/// The four address lines of the association row: initiator IPv4, IPv6, responder IPv4, IPv6.
fn address_rows(p: &str) -> Option<[String; 4]> {
    let lines: Vec<&str> = p.lines().collect();
    let i = lines.iter().position(|l| l.contains("I 10.201.1.") && l.contains("ESTAB"))?;
    let r = lines.iter().position(|l| l.contains("R 10.201.1."))?;
    let word = |l: &str, prefix: &str| l.split_whitespace().find(|w| w.starts_with(prefix)).map(str::to_string);
    (r == i + 2 && i + 3 < lines.len()).then_some(())?;
    Some([
        word(lines[i], "10.201.1.")?,
        word(lines[i + 1].split_whitespace().next()?, "fd00:201:2::")?,
        word(lines[r], "10.201.1.")?,
        word(lines[r + 1].split_whitespace().next()?, "fd00:201:2::")?,
    ])
}

/// ... with ns a as the initiator: the agent saw the handshake (started first).
fn shows_both_families_from_handshake(p: &str) -> bool {
    address_rows(p).is_some_and(|a| a == ["10.201.1.1", "fd00:201:2::1", "10.201.1.2", "fd00:201:2::2"])
}

/// The session's script: the view, then its exit status and whether the
/// terminal is back in canonical (cooked) mode.
fn view_script(cmd: &str, tag: &str) -> String {
    format!("{cmd}; echo {tag}-EXITED rc=$?; stty -a | grep -q -- ' icanon' && echo {tag}-TTY-SANE")
}

fn check_clean_exit(session: &str, tag: &str) -> String {
    let pane = wait_pane(session, "the exit", Duration::from_secs(10), |p| p.contains(&format!("{tag}-EXITED")));
    assert!(pane.contains(&format!("{tag}-EXITED rc=0")), "{pane}");
    let pane =
        wait_pane(session, "a sane terminal", Duration::from_secs(5), |p| p.contains(&format!("{tag}-TTY-SANE")));
    assert!(!pane.contains("associations 1/1"), "the view's screen is gone (alternate screen left):\n{pane}");
    pane
}

#[test]
fn top_in_tmux_against_the_lab() {
    if !privileged("top_in_tmux_against_the_lab") {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let l = Lab::up("smtop");
    let bin = env!("CARGO_BIN_EXE_sctp-monitor");
    let agent_log = l.dir.join("agent.log");
    let mut agent = Command::new("ip")
        .args(["netns", "exec", "smtop-a", bin, "run", "-i", "smA1", "-i", "smA2", "--metrics", "127.0.0.1:9108"])
        .arg("--events")
        .arg(l.dir.join("events.jsonl"))
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
        .stdout(Stdio::null())
        .stderr(fs::File::create(&agent_log).unwrap())
        .spawn()
        .expect("agent"); // killed by `lab.sh down` (it lives in the namespace)
    let deadline = Instant::now() + Duration::from_secs(15);
    while !fs::read_to_string(&agent_log)
        .is_ok_and(|l| l.contains("attached to smA1 ") && l.contains("attached to smA2 "))
    {
        assert!(
            Instant::now() < deadline,
            "agent did not attach: {}",
            fs::read_to_string(&agent_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    l.start_peers();

    // The view in an 80x24 pane.
    let script = view_script(&format!("ip netns exec smtop-a {bin} top --interval-ms 500"), "TOP") + "; sleep 60";
    tmux(&["-u", "new-session", "-d", "-s", &l.session, "-x", "80", "-y", "24", &script]);
    let session = l.session.as_str();

    // 1. The association with both address sets, IPv4 and IPv6.
    let pane = wait_pane(
        session,
        "the association (IPv4 and IPv6) in the view",
        Duration::from_secs(15),
        shows_both_families_from_handshake,
    );
    assert!(pane.contains("agent 0.1.0 on smA1,smA2"), "{pane}");
    assert!(pane.lines().count() <= 24 && pane.lines().all(|l| l.chars().count() <= 80), "fits 80x24:\n{pane}");
    eprintln!("--- pane ---\n{pane}\n---");
    // The upper-layer protocol under the state: the lab's peer sends PPID 60.
    wait_pane(session, "the protocol (NGAP) under the association's state", Duration::from_secs(10), |p| {
        p.lines().any(|l| l.contains("  R ") && l.contains(" NGAP "))
    });

    // 2. Cut the primary path: the failover to the other family appears in the event log.
    let (cut, from, to) = l.primary_path();
    let out = lab(l.ns, &["cut", cut]);
    assert!(out.status.success(), "lab.sh cut: {}", String::from_utf8_lossy(&out.stderr));
    let failover = format!(" failover I {from} -> {to}");
    let pane = wait_pane(session, "the failover in the event log", Duration::from_secs(20), |p| p.contains(&failover));
    let to_dst = to.split('>').nth(1).unwrap();
    assert!(pane.contains("paths down") && pane.contains(&format!(">{to_dst}")), "primary moved to {to_dst}:\n{pane}");
    eprintln!("--- pane after the failover ---\n{pane}\n---");

    // 3. The filter: a non-matching address hides it; a state, a port and an IPv6 address show it.
    keys(session, &["/", "10.9.9"]);
    wait_pane(session, "no match", Duration::from_secs(5), |p| {
        p.contains("associations 0/1") && p.contains("no association matches")
    });
    keys(session, &["Escape"]);
    wait_pane(session, "filter cleared", Duration::from_secs(5), |p| p.contains("associations 1/1"));
    keys(session, &["/", "established", "Enter"]);
    wait_pane(session, "state filter", Duration::from_secs(5), |p| {
        p.contains("associations 1/1") && p.contains("filter:\"established\"") && p.contains("I 10.201.1.1")
    });
    let erase = ["BSpace"; 11];
    let mut k = vec!["/"];
    k.extend_from_slice(&erase);
    k.extend_from_slice(&["5000", "Enter"]);
    keys(session, &k);
    wait_pane(session, "port filter", Duration::from_secs(5), |p| {
        p.contains("associations 1/1") && p.contains("filter:\"5000\"")
    });
    let mut k = vec!["/"];
    k.extend_from_slice(&erase[..4]);
    k.extend_from_slice(&["fd00:201:2::2", "Enter"]);
    keys(session, &k);
    wait_pane(session, "IPv6 address filter", Duration::from_secs(5), |p| {
        p.contains("associations 1/1") && p.contains("filter:\"fd00:201:2::2\"") && shows_both_families(p)
    });

    // 4. Enter: the detail with the full address sets.
    keys(session, &["Enter"]);
    let detail = wait_pane(session, "the detail", Duration::from_secs(5), |p| {
        let line = |who: &str| p.lines().find(|l| l.starts_with(who)).unwrap_or_default().to_string();
        let (i, r) = (line("initiator port 5000"), line("responder port 5000"));
        i.contains("10.201.1.1")
            && i.contains("fd00:201:2::1")
            && r.contains("10.201.1.2")
            && r.contains("fd00:201:2::2")
    });
    let ipv6_path = detail.lines().find(|l| l.contains("I>R fd00:201:2::1 > ")).unwrap_or_default();
    assert!(ipv6_path.contains("fd00:201:2::1 > fd00:201:2::2"), "the IPv6 path in full in the detail:\n{detail}");
    assert!(detail.lines().any(|l| l.starts_with("TSN I>R ") && l.contains(" R>I ")), "{detail}");
    eprintln!("--- detail ---\n{detail}\n---");
    keys(session, &["Escape"]);
    keys(session, &["s"]);
    wait_pane(session, "sorted by rate", Duration::from_secs(5), |p| p.contains("sort:rate"));

    // 5. q: a clean exit, terminal restored (alternate screen left, cooked mode).
    keys(session, &["q"]);
    check_clean_exit(session, "TOP");
    drop(l);
    let _ = agent.wait();
}

fn xdp_attached(ns: &str, iface: &str) -> bool {
    let out = Command::new("ip").args(["-n", ns, "-d", "link", "show", iface]).output().unwrap();
    assert!(out.status.success(), "ip link show {iface}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

/// Programs on the tcx egress hook of `iface` in namespace `ns`.
fn tcx_egress_programs(ns: &str, iface: &'static str) -> Vec<String> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd as _;
        let f = fs::File::open(&path).expect("open netns");
        // SAFETY: a valid namespace fd; CLONE_NEWNET moves only this thread.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0, "setns");
        let (_, progs) =
            aya::programs::SchedClassifier::query_tcx(iface, aya::programs::TcAttachType::Egress).expect("query tcx");
        progs.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect()
    })
    .join()
    .unwrap()
}

fn assert_nothing_attached(ns: &str, when: &str) {
    for iface in ["smA1", "smA2"] {
        assert!(!xdp_attached(ns, iface), "XDP program left on {iface} after {when}");
        assert_eq!(
            tcx_egress_programs(ns, iface),
            Vec::<String>::new(),
            "tcx egress programs left on {iface} after {when}"
        );
    }
}

/// `ip netns exec` runs the view in place: its pid is the one in the namespace running `top`.
fn view_pid(ns: &str) -> Option<u32> {
    let pids =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "pids", ns]).output().ok()?.stdout).into_owned();
    pids.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|p: &u32| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"top")))
}

#[test]
fn top_iface_runs_the_agent_in_the_view() {
    if !privileged("top_iface_runs_the_agent_in_the_view") {
        return;
    }
    let _lab = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let l = Lab::up("smtp");
    let ns = l.ns_a();
    let bin = env!("CARGO_BIN_EXE_sctp-monitor");
    let top = format!(
        "ip netns exec {ns} {bin} top -i smA1 -i smA2 --interval-ms 500 --poll-interval-ms 200 --tick-interval-ms 100 \
         --hb-down-after 2 --hb-timeout-ms 600 --events {}",
        l.dir.join("events.jsonl").display()
    );
    // Three runs of the view: left with q, with Ctrl-C, and stopped by SIGTERM.
    // Each later run waits for its gate file, so that the test can check that
    // nothing is left attached before the next view attaches again.
    let gate = |tag: &str| l.dir.join(format!("gate-{tag}"));
    let wait_gate = |tag: &str| format!("while [ ! -e {} ]; do sleep 0.05; done", gate(tag).display());
    let script = [
        view_script(&top, "Q"),
        wait_gate("CC"),
        view_script(&top, "CC"),
        wait_gate("TERM"),
        view_script(&top, "TERM"),
        "sleep 60".into(),
    ]
    .join("; ");
    tmux(&["-u", "new-session", "-d", "-s", &l.session, "-x", "80", "-y", "24", &script]);
    let session = l.session.as_str();

    // 1. The agent's own log is in the event pane, not over the view.
    let pane = wait_pane(session, "the agent's log in the view", Duration::from_secs(20), |p| {
        p.contains("agent attached to smA1") && p.contains("agent attached to smA2")
    });
    assert!(pane.lines().next().unwrap_or_default().contains("in-process agent 0.1.0 on smA1,smA2"), "{pane}");
    assert!(xdp_attached(&ns, "smA1") && xdp_attached(&ns, "smA2"), "XDP on both veths while the view runs");

    // 2. The association with both address sets, IPv4 and IPv6.
    l.start_peers();
    let pane = wait_pane(
        session,
        "the association (IPv4 and IPv6) in the view",
        Duration::from_secs(15),
        shows_both_families_from_handshake,
    );
    assert!(pane.lines().count() <= 24 && pane.lines().all(|l| l.chars().count() <= 80), "fits 80x24:\n{pane}");
    eprintln!("--- pane ---\n{pane}\n---");

    // 3. Cut the primary path: the failover in the log, the path down; restore it: no path down.
    let (cut, from, to) = l.primary_path();
    let out = lab(l.ns, &["cut", cut]);
    assert!(out.status.success(), "lab.sh cut: {}", String::from_utf8_lossy(&out.stderr));
    let failover = format!(" failover I {from} -> {to}");
    let pane = wait_pane(session, "the failover and a path down", Duration::from_secs(20), |p| {
        p.contains(&failover) && p.contains("paths down ") && !p.contains("paths down 0/")
    });
    eprintln!("--- pane after the failover ---\n{pane}\n---");
    let out = lab(l.ns, &["restore", cut]);
    assert!(out.status.success(), "lab.sh restore: {}", String::from_utf8_lossy(&out.stderr));
    let pane =
        wait_pane(session, "the recovery (no path down)", Duration::from_secs(20), |p| p.contains("paths down 0/4"));
    eprintln!("--- pane after the restore ---\n{pane}\n---");

    // 4. q: a clean exit; the agent stopped after the terminal was restored, nothing left attached.
    keys(session, &["q"]);
    let pane = check_clean_exit(session, "Q");
    assert!(pane.contains("detached from smA1") && pane.contains("detached from smA2"), "{pane}");
    assert!(pane.contains("stopped after "), "{pane}");
    assert_nothing_attached(&ns, "q");
    fs::write(gate("CC"), b"").unwrap();

    // 5. Ctrl-C (a key to the view in raw mode): the same. (This agent
    // starts mid-association: it learns both address sets from the traffic.)
    wait_pane(session, "the second view", Duration::from_secs(20), shows_both_families);
    keys(session, &["C-c"]);
    check_clean_exit(session, "CC");
    assert_nothing_attached(&ns, "Ctrl-C");
    fs::write(gate("TERM"), b"").unwrap();

    // 6. SIGTERM to the process: the agent stops, the view ends and restores the terminal.
    wait_pane(session, "the third view", Duration::from_secs(20), shows_both_families);
    let pid = view_pid(&ns).expect("the view's process in the namespace");
    assert!(Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap().success());
    let pane = check_clean_exit(session, "TERM");
    assert!(pane.contains("SIGTERM: stopping"), "{pane}");
    assert_nothing_attached(&ns, "SIGTERM");
    assert_eq!(view_pid(&ns), None, "the view's process is gone");
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
    let pane =
        wait_pane(&session, "the unreachable message", Duration::from_secs(10), |p| p.contains("Connection refused"));
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
    let links =
        String::from_utf8_lossy(&Command::new("ip").args(["-br", "link"]).output().unwrap().stdout).into_owned();
    for l in links.lines().filter(|l| l.starts_with("smA") || l.starts_with("smB")) {
        left.push(format!("link {l}"));
    }
    let ps =
        String::from_utf8_lossy(&Command::new("ps").args(["-eo", "pid=,args="]).output().unwrap().stdout).into_owned();
    for p in
        ps.lines().filter(|l| l.contains("sctpmon-xtask-lab") || (l.contains("sctp_peer") && l.contains("10.201.")))
    {
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
    let ns_up = || {
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().unwrap().stdout)
            .contains("sctpmon-a")
    };
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
        let client = fs::read_to_string("/tmp/sctpmon-xtask-lab/client.jsonl").unwrap_or_default();
        let up = client.lines().find(|l| l.contains("\"ev\":\"up\"")).unwrap_or_default();
        assert!(
            up.contains("\"10.201.1.2\"") && up.contains("\"fd00:201:2::2\""),
            "the lab's association over IPv4 and IPv6: {up}"
        );
    };
    // What the lab builds first, built here outside the time allowed for
    // it to come up: `cargo xtask test` builds the agent with the `otlp`
    // feature, the lab without, so the lab's own build is a rebuild.
    for pkg in ["sctp-monitor", "xtask"] {
        let st = Command::new(&cargo).current_dir(&root).args(["build", "--quiet", "--package", pkg]).status();
        assert!(st.is_ok_and(|s| s.success()), "cargo build --package {pkg}");
    }
    // A failed assertion must not leave the lab running: its processes
    // would keep the namespaces (and the lock the kernel tests share).
    let _cleanup = LabCleanup { cargo: &cargo, root: &root };
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

/// On a panic, stops the lab a test started (SIGINT to `xtask lab`, then
/// `xtask lab --clean` for what a killed one left).
struct LabCleanup<'a> {
    cargo: &'a str,
    root: &'a Path,
}

impl Drop for LabCleanup<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Some(pid) = find_xtask_pid() {
            let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status();
            std::thread::sleep(Duration::from_secs(5));
        }
        let _ = Command::new(self.cargo)
            .current_dir(self.root)
            .args(["run", "--quiet", "--package", "xtask", "--", "lab", "--clean"])
            .stdin(Stdio::null())
            .status();
    }
}

fn find_xtask_pid() -> Option<u32> {
    let ps =
        String::from_utf8_lossy(&Command::new("ps").args(["-eo", "pid=,args="]).output().ok()?.stdout).into_owned();
    ps.lines().find(|l| l.contains("target/debug/xtask lab")).and_then(|l| l.split_whitespace().next()?.parse().ok())
}
