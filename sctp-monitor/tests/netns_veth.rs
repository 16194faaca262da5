//! The agent attached to a veth in a network namespace (XDP, or with
//! `--xdp-mode tc` a TC ingress classifier): SCTP frames sent across the
//! pair with a raw socket arrive as records; SIGTERM detaches every program
//! and exits 0.

mod support;

use std::{
    io::{BufRead, BufReader},
    net::Ipv4Addr,
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use sctp_monitor::craft::{self, FrameBuilder, InitSpec};
use sctp_monitor_common::sctp::param;
use support::{NetNs, privileged, send_frames, veth};

fn xdp_attached(ns: &NetNs, iface: &str) -> bool {
    let out = ns.cmd("ip").args(["-d", "link", "show", iface]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

/// Names of the programs attached to the interface's tcx egress hook.
fn tcx_egress_programs(ns: &NetNs, iface: &'static str) -> Vec<String> {
    ns.run(move || {
        let (_, progs) = aya::programs::SchedClassifier::query_tcx(iface, aya::programs::TcAttachType::Egress)
            .expect("query tcx egress");
        progs.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect()
    })
}

/// Names of the programs attached to the interface's tcx ingress hook.
fn tcx_ingress_programs(ns: &NetNs, iface: &'static str) -> Vec<String> {
    ns.run(move || {
        let (_, progs) = aya::programs::SchedClassifier::query_tcx(iface, aya::programs::TcAttachType::Ingress)
            .expect("query tcx ingress");
        progs.iter().map(|p| p.name_as_str().unwrap_or("?").to_string()).collect()
    })
}

#[test]
fn agent_sees_frames_on_a_veth_and_detaches_on_sigterm() {
    if !privileged("agent_sees_frames_on_a_veth_and_detaches_on_sigterm") {
        return;
    }
    sees_frames_and_detaches("auto", ["smtest-veth-a", "smtest-veth-b"], ["smt0", "smt1"]);
}

#[test]
fn agent_with_tc_ingress_sees_frames_on_a_veth_and_detaches_on_sigterm() {
    if !privileged("agent_with_tc_ingress_sees_frames_on_a_veth_and_detaches_on_sigterm") {
        return;
    }
    sees_frames_and_detaches("tc", ["smtest-veth-c", "smtest-veth-d"], ["smt2", "smt3"]);
}

fn sees_frames_and_detaches(mode: &str, ns: [&str; 2], ifs: [&'static str; 2]) {
    let a = NetNs::new(ns[0]);
    let b = NetNs::new(ns[1]);
    veth(&a, ifs[0], &b, ifs[1]);

    let mut agent = a
        .cmd(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(["run", "-i", ifs[0], "--print-records", "--xdp-mode", mode])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the agent");
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = agent.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |pred: &dyn Fn(&str) -> bool, what: &str| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200))
                && pred(&l)
            {
                return l;
            }
        }
        panic!("timed out waiting for {what}");
    };
    let attached = wait_for(&|l| l.contains(&format!("attached to {}", ifs[0])), "the agent to attach");
    if mode == "tc" {
        assert!(attached.contains("TC ingress, TC egress"), "{attached}");
        assert!(!xdp_attached(&a, ifs[0]), "no XDP program with --xdp-mode tc");
        assert_eq!(tcx_ingress_programs(&a, ifs[0]), vec!["sctp_ingress_tc".to_string()]);
    } else {
        assert!(attached.contains("XDP native mode") || attached.contains("XDP skb mode"), "{attached}");
        assert!(xdp_attached(&a, ifs[0]), "XDP program on {}", ifs[0]);
        assert!(tcx_ingress_programs(&a, ifs[0]).is_empty());
    }
    assert_eq!(tcx_egress_programs(&a, ifs[0]), vec!["sctp_egress".to_string()]);

    let src = Ipv4Addr::new(10, 77, 0, 2);
    let dst = Ipv4Addr::new(10, 77, 0, 1);
    let frames = vec![
        FrameBuilder::ipv4(src, dst)
            .sctp(2905, 2905, 0)
            .chunk(craft::init(&InitSpec::new(0xabcd_0001, 1).addrs(&[src.into(), Ipv4Addr::new(10, 78, 0, 2).into()])))
            .build(),
        FrameBuilder::ipv4(src, dst)
            .sctp(2905, 2905, 0x1234_5678)
            .chunk(craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &[5; 16])))
            .build(),
        FrameBuilder::ipv4(src, dst).sctp(2905, 2905, 0x1234_5678).chunk(craft::data(7, 0, 0, 3, b"m3ua")).build(),
    ];
    let peer = ifs[1];
    b.run(move || send_frames(peer, &frames));

    let init = wait_for(&|l| l.contains(" INIT "), "the INIT record");
    let want = format!("{} in  10.77.0.2:2905 -> 10.77.0.1:2905 vtag=0x00000000 INIT", ifs[0]);
    assert!(init.starts_with(&want), "{init}");
    let hb = wait_for(&|l| l.contains("HEARTBEAT"), "the HEARTBEAT record");
    assert!(hb.contains("vtag=0x12345678"), "{hb}");
    let data = wait_for(&|l| l.contains("DATA first-on-path"), "the first-DATA record");
    assert!(data.contains("len=20"), "{data}");

    // SIGTERM: detach and exit 0.
    // SAFETY: signalling our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let status = agent.wait().unwrap();
    assert!(status.success(), "agent exit status {status}");
    assert!(!xdp_attached(&a, ifs[0]), "XDP program left after SIGTERM");
    assert!(tcx_egress_programs(&a, ifs[0]).is_empty(), "TC program left after SIGTERM");
    assert!(tcx_ingress_programs(&a, ifs[0]).is_empty(), "TC ingress program left after SIGTERM");
}
