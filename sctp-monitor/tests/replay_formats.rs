//! How `replay` reads captures: every pcap magic tshark
//! reads by its magic number (modified 0xa1b2cd34, nanosecond 0xa1b23c4d,
//! each byte order), the older patched record layouts tshark tells from the
//! first records (Nokia, Red Hat 6.1, SuSE 6.3), and gzip-compressed captures, each compared with
//! tshark's reading of the same file; `replay -` from standard input; the
//! capture streamed through a pipe in bounded memory; a closed standard
//! output ending the CLI quietly with exit 0.
//!
//! The variants are made from the committed usrsctp capture by tools, not
//! by hand where a tool exists: `editcap -F modpcap|nsecpcap` (Wireshark's
//! own writers), `gzip`; the swapped byte orders (no tool writes them on a
//! little-endian machine) by swapping every header field here.

mod support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::process::TempDir;

use sctp_monitor::replay::{ReplayOptions, ReplayOutcome, replay};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

const FIXTURE: &str = "usrsctp-multihomed-failover";

/// The tool, or `None` (skip with a message) outside CI; under CI a
/// missing tool fails (`cargo xtask setup --tests` installs them).
fn tool(name: &str, test: &str) -> bool {
    if Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test}: {name} is missing (cargo xtask setup --tests)");
    eprintln!("SKIPPED {test}: {name} is missing");
    false
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// What a replay found, comparable across formats.
fn view(o: &ReplayOutcome) -> (u64, u64, Vec<String>, String, String) {
    let ev = o.events.iter().map(|e| e.to_json_line()).collect();
    (o.packets, o.sctp_packets, ev, format!("{:?}", o.associations), format!("{:?}", o.chunk_counts))
}

/// A classic pcap (16- or 24-byte record headers) with every header field
/// in the other byte order.
fn swap_pcap(b: &[u8], record_header: usize) -> Vec<u8> {
    let mut v = b.to_vec();
    let sw4 = |v: &mut Vec<u8>, at: usize| v[at..at + 4].reverse();
    let sw2 = |v: &mut Vec<u8>, at: usize| v[at..at + 2].reverse();
    sw4(&mut v, 0);
    sw2(&mut v, 4);
    sw2(&mut v, 6);
    for at in [8, 12, 16, 20] {
        sw4(&mut v, at);
    }
    let mut at = 24;
    while at + record_header <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().expect("4")) as usize;
        for f in [0, 4, 8, 12] {
            sw4(&mut v, at + f);
        }
        if record_header == 24 {
            sw4(&mut v, at + 16);
            sw2(&mut v, at + 20);
        }
        at += record_header + caplen;
    }
    assert_eq!(at, b.len(), "walked every record");
    v
}

/// tshark's packets and SCTP packets of `file`.
fn tshark_counts(file: &Path) -> (u64, u64) {
    let lines = |filter: &[&str]| {
        let out =
            run(Command::new("tshark").arg("-r").arg(file).args(filter).args(["-T", "fields", "-e", "frame.number"]));
        String::from_utf8_lossy(&out).lines().count() as u64
    };
    (lines(&[]), lines(&["-Y", "sctp"]))
}

#[test]
fn every_pcap_magic_and_gzip_read_as_tshark_reads_them() {
    let test = "every_pcap_magic_and_gzip_read_as_tshark_reads_them";
    if !tool("tshark", test) || !tool("editcap", test) || !tool("gzip", test) {
        return;
    }
    let tmp = TempDir::new("magic");
    let src = fixture(&format!("{FIXTURE}.pcap"));
    let base = replay(&src, &ReplayOptions::default()).expect("replay");
    assert!(base.error.is_none());
    let mut files: Vec<(String, PathBuf, u32)> = Vec::new();
    // modpcap and nsecpcap by their magic; the older patched layouts
    // (Nokia 20-byte, Red Hat 6.1 24-byte records with the standard magic,
    // SuSE 6.3 28-byte with the modified one) by their first records.
    for (fmt, magic) in [
        ("modpcap", 0xa1b2_cd34u32),
        ("nsecpcap", 0xa1b2_3c4d),
        ("nokiapcap", 0xa1b2_c3d4),
        ("rh6_1pcap", 0xa1b2_c3d4),
        ("suse6_3pcap", 0xa1b2_cd34),
    ] {
        let f = tmp.path(&format!("{fmt}.pcap"));
        run(Command::new("editcap").args(["-F", fmt]).arg(&src).arg(&f));
        files.push((fmt.to_string(), f, magic));
    }
    let orig = std::fs::read(&src).expect("read");
    for (name, bytes, header) in [
        ("usec", orig.clone(), 16),
        ("nsecpcap", std::fs::read(&files[1].1).expect("read"), 16),
        ("modpcap", std::fs::read(&files[0].1).expect("read"), 24),
    ] {
        let f = tmp.path(&format!("{name}-swapped.pcap"));
        let swapped = swap_pcap(&bytes, header);
        std::fs::write(&f, &swapped).expect("write");
        let magic = u32::from_be_bytes(swapped[..4].try_into().expect("4"));
        files.push((format!("{name}, big-endian"), f, magic));
    }
    for name in [format!("{FIXTURE}.pcap"), format!("{FIXTURE}.pcapng")] {
        let f = tmp.path(&format!("{name}.gz"));
        let gz = run(Command::new("gzip").arg("-c").arg(fixture(&name)));
        std::fs::write(&f, gz).expect("write");
        files.push((format!("{name}.gz"), f, 0));
    }
    let mut magics = Vec::new();
    for (name, f, magic) in &files {
        let o = replay(f, &ReplayOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(o.error.is_none(), "{name}: {:?}", o.error);
        assert_eq!(tshark_counts(f), (o.packets, o.sctp_packets), "{name}: tshark's reading");
        if name.contains("pcapng") {
            let ng = replay(&fixture(&format!("{FIXTURE}.pcapng")), &ReplayOptions::default()).expect("replay");
            assert_eq!(view(&o), view(&ng), "{name}");
        } else {
            assert_eq!(view(&o), view(&base), "{name}: the same capture");
        }
        magics.push(*magic);
    }
    // Every magic of the libpcap family, in both byte orders.
    for m in [0xa1b2_cd34u32, 0x34cd_b2a1, 0xa1b2_3c4d, 0x4d3c_b2a1, 0xd4c3_b2a1] {
        let le = u32::from_le_bytes(m.to_be_bytes());
        assert!(magics.contains(&m) || magics.contains(&le), "magic {m:08x} tested");
    }
}

fn cli_stdin(args: &[&str], input: Vec<u8>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // Small writes: the reader sees a pipe, not a file.
        for c in input.chunks(1000) {
            if stdin.write_all(c).is_err() {
                break;
            }
        }
    });
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn replay_dash_reads_standard_input() {
    let file = fixture(&format!("{FIXTURE}.pcapng"));
    let bytes = std::fs::read(&file).expect("read");
    let (ok, from_file, err) = cli_stdin(&["replay", "--json", file.to_str().expect("path")], Vec::new());
    assert!(ok, "{err}");
    let (ok, from_stdin, err) = cli_stdin(&["replay", "--json", "-"], bytes.clone());
    assert!(ok, "{err}");
    let events = |s: &str| s.lines().filter(|l| l.contains("\"event\"")).map(str::to_string).collect::<Vec<_>>();
    assert!(events(&from_file).len() > 5);
    assert_eq!(events(&from_stdin), events(&from_file));
    assert!(from_stdin.lines().last().expect("summary").contains("\"file\":\"-\""), "{from_stdin}");
    // Compressed, through the same pipe.
    if tool("gzip", "replay_dash_reads_standard_input") {
        let gz = run(Command::new("gzip").arg("-c").arg(&file));
        let (ok, out, err) = cli_stdin(&["replay", "--json", "-"], gz);
        assert!(ok, "{err}");
        assert_eq!(events(&out), events(&from_file));
    }
    // Not a capture on stdin: a clear error.
    let (ok, _, err) = cli_stdin(&["replay", "-"], b"hello, not a capture".to_vec());
    assert!(!ok);
    assert!(err.contains("-: not a pcap or pcapng file"), "{err}");
}

/// A pcap of `n` copies of one SCTP DATA packet (raw IP), 1 ms apart,
/// made as it is written.
fn big_capture(n: u64) -> impl Iterator<Item = Vec<u8>> {
    use sctp_monitor::craft::{self, FrameBuilder};
    let f = FrameBuilder::ip("10.9.0.1".parse().expect("a"), "10.9.0.2".parse().expect("a"))
        .sctp(2905, 2905, 0x0102_0304)
        .chunk(craft::data(1, 0, 0, 3, &[7; 200]))
        .raw_ip()
        .build();
    let mut header = Vec::new();
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&[2, 0, 4, 0]);
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&101u32.to_le_bytes());
    std::iter::once(header).chain((0..n).map(move |i| {
        let t = 1_790_000_000_000_000 + i * 1000; // µs
        let mut r = Vec::with_capacity(16 + f.len());
        r.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
        r.extend_from_slice(&(f.len() as u32).to_le_bytes());
        r.extend_from_slice(&(f.len() as u32).to_le_bytes());
        r.extend_from_slice(&f);
        r
    }))
}

/// A process's peak resident memory in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let l = s.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    l.split_whitespace().nth(1).and_then(|x| x.parse().ok()).expect("number")
}

#[test]
fn a_capture_through_a_pipe_is_streamed_in_bounded_memory() {
    // 400,000 packets, 103 MB: far more than the replay may hold.
    const N: u64 = 400_000;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sctp-monitor"))
        .args(["replay", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let mut written = 0usize;
    let mut peak_while_reading = 0;
    for (i, rec) in big_capture(N).enumerate() {
        stdin.write_all(&rec).expect("the replay reads the pipe");
        written += rec.len();
        if i as u64 == N * 9 / 10 {
            // Everything written so far went through the pipe (64 KiB):
            // the replay has read it.
            peak_while_reading = peak_rss_kib(pid);
        }
    }
    drop(stdin);
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read");
    let st = child.wait().expect("wait");
    assert!(st.success());
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().expect("summary")).expect("json");
    assert_eq!(summary["summary"]["packets"], N, "{out}");
    assert!(written > 100 << 20, "{written} bytes written");
    eprintln!("peak RSS {peak_while_reading} KiB after {} MiB through the pipe", (written * 9 / 10) >> 20);
    // The reorder window holds 2 s of capture (2,000 packets here), the
    // tracker one association: a few MiB above the program itself.
    assert!(
        peak_while_reading < 48 << 10,
        "peak RSS {peak_while_reading} KiB after {} MiB through the pipe",
        (written * 9 / 10) >> 20
    );
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    let file = fixture(&format!("{FIXTURE}.pcap"));
    for args in [vec!["replay"], vec!["replay", "--json"]] {
        // A real pipe whose reading end is closed before anything is
        // written: every write fails with EPIPE (`replay F | head` once
        // head has gone).
        let mut fds = [0i32; 2];
        // SAFETY: pipe writes two new descriptors into `fds`.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both are ours, owned once each.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        drop(r);
        let out = Command::new(env!("CARGO_BIN_EXE_sctp-monitor"))
            .args(&args)
            .arg(&file)
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(err.is_empty(), "{args:?}: quiet, but said: {err}");
    }
    // And through a shell pipeline into head.
    let out = Command::new("bash")
        .args(["-c", "set -o pipefail; \"$0\" replay --json \"$1\" | head -n 1 >/dev/null"])
        .arg(env!("CARGO_BIN_EXE_sctp-monitor"))
        .arg(fixture("usrsctp-bridge-any.pcap"))
        .output()
        .expect("bash");
    assert!(out.status.success(), "{:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
