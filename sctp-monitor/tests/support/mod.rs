//! Test support shared by the integration tests: privilege checks, network
//! namespaces with veth pairs (cleaned up on drop), and raw frame injection.
#![allow(dead_code)]

pub mod guest;
pub mod http;
pub mod listener;
pub mod pcap;
pub mod process;
pub mod tshark;

use std::{
    ffi::CString,
    fs::File,
    os::fd::AsRawFd,
    process::{Command, Stdio},
};

/// True when the test may use BPF and namespaces. Under CI, missing root is
/// a failure, not a skip.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (BPF, network namespaces); CI must run the tests as root");
    }
    eprintln!("SKIPPED {test}: needs root");
    false
}

/// The kernel programs loaded for BPF_PROG_TEST_RUN with the default
/// options, or `None` (skipped) where [`privileged`] says so.
pub fn test_bed(test: &str) -> Option<sctp_monitor::kernel::testrun::TestBed> {
    privileged(test).then(|| {
        sctp_monitor::kernel::testrun::TestBed::new(sctp_monitor::kernel::LoadOptions::default())
            .expect("load the eBPF object")
    })
}

/// Pins the calling thread to CPU 0. The kernel programs' per-path slots and
/// association-direction state are per CPU, and BPF_PROG_TEST_RUN runs on
/// the caller's CPU: a test that feeds one association's frames and expects
/// the kernel's verdicts to follow them must keep them on one CPU, as a NIC
/// queue keeps one flow on one.
#[allow(dead_code)]
pub fn pin_to_cpu0() {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity on this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set), 0);
    }
}

/// The live events equal replay's, in the same order with the same times;
/// on a difference, the first one.
pub fn assert_same_events(live: &[sctp_monitor::event::Event], replay: &[sctp_monitor::event::Event]) {
    if let Some(i) = (0..live.len().max(replay.len())).find(|&i| live.get(i) != replay.get(i)) {
        panic!(
            "event {i} of {} live / {} replayed differs:\n live {:?}\n replay {:?}",
            live.len(),
            replay.len(),
            live.get(i),
            replay.get(i)
        );
    }
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).stderr(Stdio::piped()).output().expect("spawn");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

pub fn sh_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace, deleted (with its interfaces) on drop.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(name: &str) -> NetNs {
        let _ = sh_ok(&["ip", "netns", "del", name]);
        sh(&["ip", "netns", "add", name]);
        sh(&["ip", "-n", name, "link", "set", "lo", "up"]);
        NetNs { name: name.to_string() }
    }

    pub fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        sh(&v);
    }

    /// `ip netns exec NAME ...` as a Command.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = File::open(&path).expect("open netns");
            // SAFETY: valid fd; CLONE_NEWNET moves only this thread.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = sh_ok(&["ip", "netns", "del", &self.name]);
    }
}

/// Loads nftables rules (`nft -f -`) in `ns`; fails with nft's error.
pub fn nft(ns: &NetNs, rules: &str) {
    use std::io::Write as _;
    let mut c = ns.cmd("nft").args(["-f", "-"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("nft");
    c.stdin.take().expect("stdin").write_all(rules.as_bytes()).expect("write the rules");
    let out = c.wait_with_output().expect("nft");
    assert!(out.status.success(), "nft: {}\n{rules}", String::from_utf8_lossy(&out.stderr));
}

/// The two-path lab of the usrsctp tests: namespaces `ns_a` and `ns_b`,
/// veths `{tag}A1`-`{tag}B1` (10.`net`.1.1 / .2) and `{tag}A2`-`{tag}B2`
/// (10.`net`.2.1 / .2). usrsctp's raw IPv4 output does not pick the source
/// address by route: a stateless nftables rule per side rewrites it to the
/// outgoing interface's (as tests/peer/lab.sh does).
pub fn two_path_lab(ns_a: &str, ns_b: &str, tag: &str, net: u8) -> (NetNs, NetNs) {
    let a = NetNs::new(ns_a);
    let b = NetNs::new(ns_b);
    for p in 1..=2 {
        let (ia, ib) = (format!("{tag}A{p}"), format!("{tag}B{p}"));
        veth(&a, &ia, &b, &ib);
        a.ip(&["addr", "add", &format!("10.{net}.{p}.1/24"), "dev", &ia]);
        b.ip(&["addr", "add", &format!("10.{net}.{p}.2/24"), "dev", &ib]);
    }
    for (ns, side, last) in [(&a, "A", 1), (&b, "B", 2)] {
        nft(
            ns,
            &format!(
                "table ip {tag}_src {{ chain post {{ type filter hook postrouting priority 100; policy accept;\n\
                 oifname \"{tag}{side}1\" ip protocol sctp ip saddr != 10.{net}.1.{last} ip saddr set 10.{net}.1.{last}\n\
                 oifname \"{tag}{side}2\" ip protocol sctp ip saddr != 10.{net}.2.{last} ip saddr set 10.{net}.2.{last}\n}}\n}}\n"
            ),
        );
    }
    (a, b)
}

/// A usrsctp association across [`two_path_lab`]`(.., net)`, its peers
/// running until dropped.
pub struct UsrsctpPair {
    pub server: process::Proc,
    pub client: process::Proc,
    /// The client's `up` line (addresses, primary).
    pub up: serde_json::Value,
}

/// Starts the server in `b` on both of its addresses, then the client in
/// `a` (`opts` for both, `server` / `client` for each), and waits for the
/// client's `up` line. Their lines go to `dir`/server.jsonl and
/// client.jsonl, the client's stderr to client.err.
pub fn usrsctp_pair(
    a: &NetNs,
    b: &NetNs,
    net: u8,
    opts: &[&str],
    server: &[&str],
    client: &[&str],
    dir: &std::path::Path,
) -> UsrsctpPair {
    use process::{Proc, json_lines, peer_binary, wait_until};
    let peer = peer_binary();
    let file = |name: &str| File::create(dir.join(name)).expect("peer output file");
    let mut sc = b.cmd(peer.to_str().expect("peer path"));
    sc.args(["server", "--bind", &format!("10.{net}.1.2,10.{net}.2.2")])
        .args(opts)
        .args(server)
        .stdout(file("server.jsonl"))
        .stderr(Stdio::null());
    let server = Proc::spawn(sc, "the usrsctp server");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut cc = a.cmd(peer.to_str().expect("peer path"));
    cc.args(["client", "--bind", &format!("10.{net}.1.1,10.{net}.2.1")])
        .args(["--connect", &format!("10.{net}.1.2,10.{net}.2.2")])
        .args(opts)
        .args(client)
        .stdout(file("client.jsonl"))
        .stderr(file("client.err"));
    let client = Proc::spawn(cc, "the usrsctp client");
    let up = wait_until("the usrsctp association to come up", std::time::Duration::from_secs(15), || {
        json_lines(&dir.join("client.jsonl")).into_iter().find(|v| v["ev"] == "up")
    });
    UsrsctpPair { server, client, up }
}

/// Every capture fixture (tests/fixtures and its thirdparty/), sorted.
pub fn fixtures() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<std::path::PathBuf> = [dir.clone(), dir.join("thirdparty")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).expect("fixtures").filter_map(|e| e.ok().map(|e| e.path())))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    files
}

/// A veth pair `a` (in `ns_a`) <-> `b` (in `ns_b`), both up.
pub fn veth(ns_a: &NetNs, a: &str, ns_b: &NetNs, b: &str) {
    sh(&["ip", "link", "add", a, "netns", &ns_a.name, "type", "veth", "peer", "name", b, "netns", &ns_b.name]);
    ns_a.ip(&["link", "set", a, "up"]);
    ns_b.ip(&["link", "set", b, "up"]);
}

/// An AF_PACKET socket bound to one interface (make it inside the
/// interface's namespace), closed on drop.
pub struct RawSender {
    fd: i32,
    sll: libc::sockaddr_ll,
}

impl RawSender {
    pub fn new(iface: &str) -> RawSender {
        // SAFETY: plain socket calls with valid arguments.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
            let c = CString::new(iface).expect("interface name");
            let ifindex = libc::if_nametoindex(c.as_ptr());
            assert!(ifindex != 0, "no interface {iface}");
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            RawSender { fd, sll }
        }
    }

    /// Sends one raw Ethernet frame, waiting and retrying when the device
    /// queue is full (ENOBUFS).
    pub fn send(&self, f: &[u8]) {
        loop {
            // SAFETY: valid buffer and address.
            let n = unsafe {
                libc::sendto(
                    self.fd,
                    f.as_ptr().cast(),
                    f.len(),
                    0,
                    (&self.sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n == f.len() as isize {
                return;
            }
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::ENOBUFS), "sendto: {err}");
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

impl Drop for RawSender {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// Sends raw Ethernet frames out of `iface` (call inside its namespace).
pub fn send_frames(iface: &str, frames: &[Vec<u8>]) {
    let tx = RawSender::new(iface);
    for f in frames {
        tx.send(f);
    }
}
