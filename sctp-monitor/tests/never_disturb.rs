//! The monitor never drops or alters a frame it watches: 1,000,000 frames
//! (valid SCTP of every chunk type, malformed SCTP, random bytes after valid
//! headers, traffic that is not SCTP) cross a veth pair with the agent's XDP
//! and TC programs attached to both directions; the receiving side counts
//! them and compares every byte.

mod support;

use std::{
    ffi::CString,
    io::{BufRead, BufReader},
    net::{Ipv4Addr, Ipv6Addr},
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use sctp_monitor::craft::{self, AsconfReq, CookiePos, ExtHeader, FrameBuilder, InitSpec, ethertype};
use sctp_monitor_common::sctp::{chunk, param};
use support::{NetNs, privileged, send_frames, veth};

const FRAMES: usize = 1_000_000;
const BATCH: usize = 2_000;

/// Deterministic frame `i`: the receiver rebuilds it to compare bytes.
fn frame(i: usize) -> Vec<u8> {
    let mut rng = craft::XorShift::new((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut rnd = move || rng.next_u64();
    let a = Ipv4Addr::new(10, 90, 0, 1);
    let b = Ipv4Addr::new(10, 90, 0, 2);
    let tag = rnd() as u32;
    let seq = (i as u32).to_be_bytes();
    let v4 = || FrameBuilder::ipv4(a, b).sctp(2905, 2905, tag);
    let mut f = match i % 16 {
        0 => v4().chunk(craft::data(i as u32, 0, 0, 3, &seq)).build(),
        1 => v4().chunk(craft::init(&InitSpec::new(tag, 1).addrs(&[a.into(), b.into()]))).build(),
        2 => v4()
            .chunk(craft::init_ack(&InitSpec::new(tag, 1).addrs(&[b.into()]).cookie(200, CookiePos::Before)))
            .build(),
        3 => v4().chunk(craft::heartbeat(&craft::param(param::HEARTBEAT_INFO, &seq))).chunk(craft::pad(64)).build(),
        4 => v4()
            .chunk(craft::sack(i as u32, 1000, &[(2, 3)], &[1]))
            .chunk(craft::data(i as u32, 1, 1, 60, &seq))
            .build(),
        5 => v4()
            .chunk(craft::auth(1, 1, &[0; 20]))
            .chunk(craft::asconf(i as u32, a.into(), &[AsconfReq::Add { corr_id: 1, addr: b.into() }]))
            .build(),
        6 => v4().chunk(craft::abort(true, &[])).build(),
        7 => FrameBuilder::ipv6(Ipv6Addr::LOCALHOST, Ipv6Addr::UNSPECIFIED)
            .ext_header(ExtHeader::HopByHop(0))
            .sctp(1, 2, tag)
            .chunk(craft::shutdown(i as u32))
            .build(),
        8 => v4()
            .vlan(ethertype::QINQ, 5)
            .vlan(ethertype::VLAN, 6)
            .udp_encap(9899, 9899)
            .chunk(craft::cookie_echo(&seq))
            .build(),
        9 => v4().chunk(craft::raw_chunk_with_len(chunk::DATA, 0, 0, &[0; 16])).build(),
        10 => v4().chunk(craft::raw_chunk_with_len(chunk::HEARTBEAT, 0, 900, &[0; 16])).build(),
        11 => v4().chunks((0..60).map(|_| craft::raw_chunk(chunk::CWR, 0, &[]))).build(),
        12 => {
            // Random bytes after valid IP and SCTP common headers.
            let mut f = v4().build();
            f.extend((0..(rnd() % 200) as usize).map(|_| rnd() as u8));
            let ip_len = (f.len() - 14) as u16;
            f[16..18].copy_from_slice(&ip_len.to_be_bytes());
            f
        }
        13 => {
            let mut f = v4().chunk(craft::data(1, 0, 0, 0, &[0; 40])).build();
            f[14] = 0x43; // bad IHL
            f
        }
        14 => FrameBuilder::ipv4(a, b).udp_encap(5353, 53).sctp(0, 0, 0).build(), // UDP, not SCTP
        _ => {
            let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]; // local experimental ethertype
            f.extend((0..46).map(|_| rnd() as u8));
            f
        }
    };
    // Every frame is unique: stamp the index into the source MAC.
    f[6..10].copy_from_slice(&(i as u32).to_be_bytes());
    f
}

fn raw_socket(iface: &str) -> i32 {
    // SAFETY: plain socket calls.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let c = CString::new(iface).unwrap();
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = libc::if_nametoindex(c.as_ptr()) as i32;
        assert!(
            libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of::<libc::sockaddr_ll>() as u32)
                == 0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        let size: libc::c_int = 64 << 20;
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, (&size as *const libc::c_int).cast(), 4);
        let tv = libc::timeval { tv_sec: 2, tv_usec: 0 };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        fd
    }
}

/// Sends frames [from, to) out of `tx_iface` (in its namespace) and receives
/// them on `rx_iface`; returns (received, identical).
fn cross(
    tx: &NetNs,
    tx_iface: &'static str,
    rx: &NetNs,
    rx_iface: &'static str,
    from: usize,
    to: usize,
) -> (usize, usize) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let receiver = {
        let path = format!("/run/netns/{}", rx.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap();
            // SAFETY: valid fd, moves only this thread.
            assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) }, 0);
            let fd = raw_socket(rx_iface);
            ready_tx.send(()).unwrap();
            let (mut got, mut same) = (0usize, 0usize);
            let mut buf = vec![0u8; 4096];
            while got < to - from {
                // SAFETY: buf is valid for its length.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                if n < 0 {
                    break; // timeout: frames are missing
                }
                let rcv = &buf[..n as usize];
                let idx = u32::from_be_bytes([rcv[6], rcv[7], rcv[8], rcv[9]]) as usize;
                if !(from..to).contains(&idx) {
                    continue; // not ours (e.g. IPv6 router solicitations)
                }
                got += 1;
                let want = frame(idx);
                // The veth receive path takes the outer VLAN tag into skb
                // metadata (VLAN offload), and a packet socket shows the frame
                // without it: compare against the frame with that tag removed.
                let untagged = || {
                    let mut w = want.clone();
                    if matches!(u16::from_be_bytes([w[12], w[13]]), 0x8100 | 0x88a8) {
                        w.drain(12..16);
                    }
                    w
                };
                if rcv == want.as_slice() || rcv == untagged().as_slice() {
                    same += 1;
                } else if got - same <= 5 {
                    eprintln!("frame {idx} (case {}) differs", idx % 16);
                }
            }
            // SAFETY: closing our socket.
            unsafe { libc::close(fd) };
            (got, same)
        })
    };
    ready_rx.recv().unwrap();
    tx.run(move || {
        for batch in (from..to).collect::<Vec<_>>().chunks(BATCH) {
            let frames: Vec<Vec<u8>> = batch.iter().map(|&i| frame(i)).collect();
            send_frames(tx_iface, &frames);
            // Let the receiver keep up (its socket, not the monitor, would drop).
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    receiver.join().unwrap()
}

#[test]
fn a_million_frames_cross_unchanged_with_the_programs_attached() {
    if !privileged("a_million_frames_cross_unchanged_with_the_programs_attached") {
        return;
    }
    let a = NetNs::new("smtest-nd-a");
    let b = NetNs::new("smtest-nd-b");
    veth(&a, "smnd0", &b, "smnd1");
    let mut agent = a
        .cmd(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(["run", "-i", "smnd0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the agent");
    let stderr = agent.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the agent did not attach");
        if rx.recv_timeout(Duration::from_millis(200)).is_ok_and(|l| l.contains("attached to smnd0")) {
            break;
        }
    }
    // Ingress through XDP on smnd0, then egress through TC on smnd0.
    let half = FRAMES / 2;
    let (got_in, same_in) = cross(&b, "smnd1", &a, "smnd0", 0, half);
    let (got_out, same_out) = cross(&a, "smnd0", &b, "smnd1", half, FRAMES);
    eprintln!(
        "ingress: {got_in}/{half} received, {same_in} identical; egress: {got_out}/{half} received, {same_out} identical"
    );
    // SAFETY: signalling our child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    assert!(agent.wait().unwrap().success());
    assert_eq!(got_in, half, "frames lost on the XDP side");
    assert_eq!(same_in, half, "frames altered on the XDP side");
    assert_eq!(got_out, half, "frames lost on the TC side");
    assert_eq!(same_out, half, "frames altered on the TC side");
}
