//! A capture made live on Linux's "any" pseudo-interface, replayed: a real
//! usrsctp association (`tests/peer/sctp_peer.c`) between two namespaces
//! joined by two bridges (one per path) in a third, `tcpdump -i any` in the
//! bridges' namespace (every packet twice: in on one port, out on the
//! other), path 2 cut at the server after 2 s (nftables, its interface, in
//! and out: the client's heartbeats there go unanswered). This is how
//! `tests/fixtures/usrsctp-bridge-any.pcap` was made.
//!
//! The replay must read as the single-copy capture tshark makes of the same
//! file, and report how many copies it folded.
//!
//! Root, network namespaces (fixed names): run it under the shared lock,
//! `flock /tmp/sctpmon-kernel.lock cargo test -p sctp-monitor --test any_capture`.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use sctp_monitor::replay::{ReplayOptions, replay};
use support::process::{Proc, TempDir, have, peer_binary};
use support::{NetNs, privileged, sh};

const PREFIX: &str = "sctpmon-anyc";

#[test]
fn live_any_capture_folds_every_copy() {
    if !privileged("live_any_capture_folds_every_copy") {
        return;
    }
    for tool in ["tcpdump", "tshark", "nft"] {
        if !have(tool) {
            assert!(std::env::var_os("CI").is_none(), "{tool} is missing (cargo xtask setup --tests)");
            eprintln!("SKIPPED live_any_capture_folds_every_copy: {tool} is missing");
            return;
        }
    }
    let peer = peer_binary();
    let (c, s, br) =
        (NetNs::new(&format!("{PREFIX}c")), NetNs::new(&format!("{PREFIX}s")), NetNs::new(&format!("{PREFIX}b")));
    for i in 1..=2 {
        let (bc, bs, b) = (format!("anybc{i}"), format!("anybs{i}"), format!("anybr{i}"));
        br.ip(&["link", "add", &b, "type", "bridge"]);
        br.ip(&["link", "set", &b, "up"]);
        for (ns, end, port) in [(&c, format!("anyc{i}"), &bc), (&s, format!("anys{i}"), &bs)] {
            sh(&[
                "ip", "link", "add", &end, "netns", &ns.name, "type", "veth", "peer", "name", port, "netns", &br.name,
            ]);
            br.ip(&["link", "set", port, "master", &b]);
            br.ip(&["link", "set", port, "up"]);
            let host = if std::ptr::eq(ns, &c) { 1 } else { 2 };
            ns.ip(&["addr", "add", &format!("10.97.{i}.{host}/24"), "dev", &end]);
            ns.ip(&["link", "set", &end, "up"]);
        }
    }
    let tmp = TempDir::new("any-capture");
    let cap = tmp.path("any.pcap");
    let mut tcpdump = br.cmd("tcpdump");
    // -Z root: write into our directory (tcpdump drops to its own user).
    tcpdump.args(["-i", "any", "-Z", "root", "-U", "-w"]).arg(&cap).arg("sctp");
    tcpdump.stdout(Stdio::null()).stderr(Stdio::null());
    let mut tcpdump = Proc::spawn(tcpdump, "tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let mut server = s.cmd(peer.to_str().expect("path"));
    server.args(["server", "--bind", "10.97.1.2,10.97.2.2", "--port", "5000", "--once", "--stats-interval", "0"]);
    server.stdout(Stdio::null()).stderr(Stdio::null());
    let mut server = Proc::spawn(server, "server");
    std::thread::sleep(Duration::from_millis(500));
    let mut client = c.cmd(peer.to_str().expect("path"));
    client.args(["client", "--bind", "10.97.1.1,10.97.2.1", "--connect", "10.97.1.2,10.97.2.2", "--port", "5000"]);
    client.args(["--rate", "20", "--duration", "5", "--hb-interval", "200", "--path-max-retrans", "2"]);
    client.args(["--stats-interval", "0"]).stdout(Stdio::null()).stderr(Stdio::null());
    let mut client = Proc::spawn(client, "client");
    std::thread::sleep(Duration::from_secs(2));
    let rules = "table inet anycut {\n chain in {\n  type filter hook input priority 0;\n  iifname \"anys2\" drop\n }\n \
                 chain out {\n  type filter hook output priority 0;\n  oifname \"anys2\" drop\n }\n}\n";
    support::nft(&s, rules);
    let st = client.wait(Duration::from_secs(30));
    assert!(st.success(), "client: {st:?}");
    server.wait(Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    tcpdump.signal(libc::SIGINT);
    tcpdump.wait(Duration::from_secs(10));

    let single = tmp.path("single.pcap");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&cap)
        .args(["-Y", "sll.pkttype == 3", "-F", "pcap", "-w"])
        .arg(&single)
        .output()
        .expect("tshark");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let a = replay(&cap, &ReplayOptions::default()).expect("replay any");
    let one = replay(&single, &ReplayOptions::default()).expect("replay single");
    assert!(one.sctp_packets > 100, "a real association: {} packets", one.sctp_packets);
    assert_eq!(a.packets, 2 * one.packets, "every packet twice on the bridges");
    assert_eq!(a.duplicates_folded, one.packets);
    let view = |o: &sctp_monitor::replay::ReplayOutcome| {
        let ev: Vec<String> = o.events.iter().map(|e| e.to_json_line()).collect();
        (ev, format!("{:?}", o.associations), format!("{:?}", o.chunk_counts))
    };
    assert_eq!(view(&a), view(&one), "the any capture reads as its single-copy twin");
    assert_eq!(a.associations.len(), 1);
    assert!(a.events.iter().any(|e| e.event == sctp_monitor::event::EventKind::PathDown), "the cut path went down");
}
