//! The Linux kernel's own SCTP as a real stack in the tests: Debian's kernel
//! packages booted under QEMU (software emulation) with the host's root file
//! system read-only through virtme-ng, the agent and a kernel-SCTP peer
//! (`tests/peer/lksctp_peer.c`) running inside.
//!
//! Set-up ([`setup`], part of `cargo xtask setup --tests`): virtme-ng from
//! PyPI, pinned, in the virtualenv `target/virtme-ng`; each kernel of
//! [`KERNELS`] downloaded with `apt-get download` through a private apt
//! configuration and sources list under `target/guest-kernels/apt/` (the
//! system's sources and package state are neither read nor changed) and
//! extracted with `dpkg-deb -x` into `target/guest-kernels/NAME` (its
//! `boot/vmlinuz-*` and `lib/modules`, where virtme-ng finds them and links
//! them into the guest's `/lib/modules`). Nothing is installed into the
//! running system but the Debian packages of [`PACKAGES`].
//!
//! A run ([`run_one`]) boots one kernel (`tests/guest/boot.sh`), runs
//! `tests/guest/run.sh` in it and leaves the artifact directory the fidelity
//! comparer reads.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::run::workspace_root;

/// Debian packages the guest tests use on the host: QEMU, lksctp for the
/// kernel-SCTP peer, and what virtme-ng needs to build the guest's
/// initramfs (busybox, depmod).
pub const PACKAGES: &[&str] = &["qemu-system-x86", "libsctp-dev", "kmod", "busybox-static"];

/// virtme-ng, pinned, in `target/virtme-ng`.
const VIRTME_NG_PIP: &str = "virtme-ng==1.42";

/// A Debian kernel package the tests boot.
pub struct Kernel {
    /// The name on the command line and the directory under
    /// `target/guest-kernels`.
    pub name: &'static str,
    /// The Debian release it comes from.
    pub release: &'static str,
    /// apt sources: (archive path on the Debian mirror, suite).
    sources: &'static [(&'static str, &'static str)],
}

const MIRROR: &str = "http://deb.debian.org";

/// The kernels of the guest tests: the current package behind each suite's
/// `linux-image-amd64`.
pub const KERNELS: &[Kernel] = &[
    Kernel {
        name: "6.1",
        release: "Debian 12 (bookworm)",
        sources: &[("debian", "bookworm"), ("debian-security", "bookworm-security")],
    },
    Kernel {
        name: "6.12",
        release: "Debian 13 (trixie)",
        sources: &[("debian", "trixie"), ("debian-security", "trixie-security")],
    },
    Kernel {
        name: "5.10",
        release: "Debian 11 (bullseye)",
        sources: &[("debian", "bullseye"), ("debian-security", "bullseye-security")],
    },
];

pub fn kernel(name: &str) -> anyhow::Result<&'static Kernel> {
    KERNELS.iter().find(|k| k.name == name).with_context(|| {
        let names: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
        format!("unknown kernel {name}: one of {}", names.join(", "))
    })
}

fn kernels_dir() -> PathBuf {
    workspace_root().join("target/guest-kernels")
}

/// `target/guest-kernels/NAME`, the extracted package.
pub fn kernel_dir(k: &Kernel) -> PathBuf {
    kernels_dir().join(k.name)
}

/// The kernel image of an extracted package, if there is exactly one.
fn vmlinuz(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir.join("boot"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

/// virtme-ng's virtualenv and every kernel of [`KERNELS`], each skipped
/// when already there.
pub fn setup() -> anyhow::Result<()> {
    virtme_ng()?;
    for k in KERNELS {
        if vmlinuz(&kernel_dir(k)).is_none() {
            fetch_kernel(k)?;
        }
    }
    Ok(())
}

fn virtme_ng() -> anyhow::Result<()> {
    let venv = workspace_root().join("target/virtme-ng");
    let want = VIRTME_NG_PIP.split_once("==").map_or("", |(_, v)| v);
    let check = "import importlib.metadata as m, sys; sys.exit(m.version('virtme-ng') != sys.argv[1])";
    let ok = Command::new(venv.join("bin/python"))
        .args(["-c", check, want])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok && venv.join("bin/vng").exists() {
        return Ok(());
    }
    eprintln!("setup: making virtme-ng's virtualenv {} ({VIRTME_NG_PIP})", venv.display());
    let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().context("python3 not found")?;
    if !ok.success() {
        bail!("python3 -m venv {} failed: install python3-venv", venv.display());
    }
    let ok = Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--quiet", VIRTME_NG_PIP])
        .status()?;
    if !ok.success() {
        bail!("installing {VIRTME_NG_PIP} into {} failed (PyPI reachable?)", venv.display());
    }
    Ok(())
}

/// An apt command on the private configuration of `dir`.
fn apt(dir: &Path, program: &str) -> Command {
    let mut c = Command::new(program);
    c.env("APT_CONFIG", dir.join("apt.conf")).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

fn checked(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Downloads the kernel package behind the suite's `linux-image-amd64` and
/// extracts it into [`kernel_dir`].
fn fetch_kernel(k: &Kernel) -> anyhow::Result<()> {
    let apt_dir = kernels_dir().join("apt").join(k.name);
    let _ = std::fs::remove_dir_all(&apt_dir);
    for sub in ["parts", "prefs", "lists/partial", "archives/partial", "cache"] {
        std::fs::create_dir_all(apt_dir.join(sub))?;
    }
    let d = apt_dir.display();
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    let sources: String = k
        .sources
        .iter()
        .map(|(archive, suite)| format!("deb [signed-by={keyring}] {MIRROR}/{archive} {suite} main\n"))
        .collect();
    std::fs::write(apt_dir.join("sources.list"), sources)?;
    // Every path apt reads or writes, its own: the system's sources,
    // preferences, configuration snippets and package state stay out.
    let conf = format!(
        "Dir::Etc::Main \"{d}/apt.conf\";\nDir::Etc::SourceList \"{d}/sources.list\";\n\
         Dir::Etc::SourceParts \"{d}/parts\";\nDir::Etc::Parts \"{d}/parts\";\n\
         Dir::Etc::Preferences \"{d}/prefs/none\";\nDir::Etc::PreferencesParts \"{d}/prefs\";\n\
         Dir::State::Lists \"{d}/lists\";\nDir::State::status \"{d}/status\";\nDir::Cache \"{d}/cache\";\n\
         Dir::Cache::Archives \"{d}/archives\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ \"amd64\"; }};\n\
         APT::Sandbox::User \"root\";\nAcquire::Languages \"none\";\n"
    );
    std::fs::write(apt_dir.join("apt.conf"), conf)?;
    std::fs::write(apt_dir.join("status"), "")?;
    eprintln!("setup: downloading the Linux {} kernel package of {} (about 70 MB)", k.name, k.release);
    checked(apt(&apt_dir, "apt-get").args(["-qq", "update"]), "apt-get update (private sources)")?;
    let deps = checked(apt(&apt_dir, "apt-cache").args(["depends", "linux-image-amd64"]), "apt-cache depends")?;
    let pkg = deps
        .lines()
        .find_map(|l| l.trim().strip_prefix("Depends: ").filter(|p| p.starts_with("linux-image-")))
        .with_context(|| format!("no linux-image package behind linux-image-amd64 in {}", k.release))?
        .to_string();
    checked(
        apt(&apt_dir, "apt-get").args(["-qq", "download", &pkg]).current_dir(apt_dir.join("archives")),
        "apt-get download",
    )?;
    let deb = std::fs::read_dir(apt_dir.join("archives"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_"))))
        .with_context(|| format!("apt-get download left no {pkg}_*.deb"))?;
    let dir = kernel_dir(k);
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    checked(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&tmp), "dpkg-deb -x")?;
    // The module index the package leaves to its postinst; trixie's package
    // keeps its modules under usr/.
    let root = if tmp.join("usr/lib/modules").is_dir() { tmp.join("usr") } else { tmp.clone() };
    for kver in std::fs::read_dir(root.join("lib/modules"))?.filter_map(|e| e.ok()) {
        let kver = kver.file_name().to_string_lossy().into_owned();
        checked(Command::new("depmod").arg("-a").arg("-b").arg(&root).arg(&kver), "depmod")?;
    }
    let version = checked(Command::new("dpkg-deb").args(["-f"]).arg(&deb).arg("Version"), "dpkg-deb -f")?;
    std::fs::write(tmp.join("PACKAGE"), format!("{pkg} {}\n", version.trim()))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    std::fs::remove_dir_all(&apt_dir)?;
    let _ = std::fs::remove_dir(kernels_dir().join("apt"));
    eprintln!("setup: {pkg} {} in {}", version.trim(), dir.display());
    Ok(())
}

/// The kernel-SCTP peer, built with gcc into `target/lksctp-peer`.
pub fn build_peer() -> anyhow::Result<PathBuf> {
    let root = workspace_root();
    let src = root.join("sctp-monitor/tests/peer/lksctp_peer.c");
    let dir = root.join("target/lksctp-peer");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join("lksctp_peer");
    let ok = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-lsctp")
        .status()
        .context("gcc not found")?;
    if !ok.success() {
        bail!("building {} failed (libsctp-dev installed? cargo xtask setup --tests)", src.display());
    }
    Ok(out)
}

/// One guest run.
#[derive(Clone, Debug)]
pub struct GuestRun {
    /// A name of [`KERNELS`].
    pub kernel: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// `blackhole`, `linkdown` or `stallread` (`tests/guest/run.sh`).
    pub cut: String,
    /// The kernel's quick failover (RFC 7829, `pf_retrans` 0) on, or PF
    /// disabled.
    pub pf: bool,
    /// The artifact directory (replaced).
    pub out: PathBuf,
    /// The agent binary.
    pub agent: PathBuf,
    /// The kernel-SCTP peer ([`build_peer`]).
    pub peer: PathBuf,
    /// Also `client-sent.pcap` and `server-sent.pcap`: what each stack
    /// handed to a device.
    pub sent_captures: bool,
}

/// What `tests/guest/run.sh failover` leaves, and nothing else (with
/// [`SENT_CAPTURES`] when asked).
pub const ARTIFACTS: &[&str] =
    &["client.jsonl", "server.jsonl", "agent.jsonl", "capture.pcap", "meta.json", "agent.log"];
pub const SENT_CAPTURES: &[&str] = &["client-sent.pcap", "server-sent.pcap"];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The guest's console log of a run whose artifacts go to `out`: beside
/// it, so the artifact directory holds only the artifacts.
pub fn console_log(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.console.log", out.display()))
}

/// Boots the kernel `name` and runs run.sh with `args` in it; `rwdir` is
/// the one directory the guest writes. Seconds it took.
fn boot(name: &str, rwdir: &Path, console: &Path, args: &[String]) -> anyhow::Result<f64> {
    let k = kernel(name)?;
    let kdir = kernel_dir(k);
    if vmlinuz(&kdir).is_none() {
        bail!("no Linux {} kernel in {}: run `cargo xtask setup --tests`", k.name, kdir.display());
    }
    let root = workspace_root();
    let runner = root.join("sctp-monitor/tests/guest/run.sh");
    let mut command = quote(&runner.to_string_lossy());
    for a in args {
        command.push(' ');
        command.push_str(&quote(a));
    }
    let t0 = Instant::now();
    let status = Command::new(root.join("sctp-monitor/tests/guest/boot.sh"))
        .arg(&kdir)
        .arg(rwdir)
        .arg(console)
        .arg(&command)
        .status()
        .context("running tests/guest/boot.sh")?;
    let secs = t0.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the guest run failed ({status}); its console: {}\n{}", console.display(), console_tail(console));
    }
    Ok(secs)
}

fn console_tail(console: &Path) -> String {
    let text = std::fs::read_to_string(console).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('[')).collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// One failover run in a guest: boots the kernel, runs
/// `tests/guest/run.sh failover`, and returns the artifact directory
/// ([`ARTIFACTS`]; the console beside it, [`console_log`]).
pub fn run_one(r: &GuestRun) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(&r.out);
    std::fs::create_dir_all(&r.out)?;
    let out = std::fs::canonicalize(&r.out)?;
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let mut args = vec![
        "failover".into(),
        "--out".into(),
        s(&out),
        "--agent".into(),
        s(&std::fs::canonicalize(&r.agent)?),
        "--peer".into(),
        s(&std::fs::canonicalize(&r.peer)?),
        "--stack".into(),
        format!("linux-{}", r.kernel),
        "--family".into(),
        r.family.clone(),
        "--cut".into(),
        r.cut.clone(),
        "--pf".into(),
        if r.pf { "on" } else { "off" }.into(),
    ];
    if r.sent_captures {
        args.push("--sent-captures".into());
    }
    let secs = boot(&r.kernel, &out, &console_log(&out), &args)?;
    let sent = if r.sent_captures { SENT_CAPTURES } else { &[] };
    let missing: Vec<&str> = ARTIFACTS.iter().chain(sent).copied().filter(|a| !out.join(a).exists()).collect();
    if !missing.is_empty() {
        bail!("the guest run left no {}; its console: {}", missing.join(", "), console_log(&out).display());
    }
    eprintln!(
        "guest-run: linux-{} {} {} pf {}: {secs:.1} s, artifacts in {}",
        r.kernel,
        r.family,
        r.cut,
        if r.pf { "on" } else { "off" },
        out.display()
    );
    Ok(out)
}

/// The Linux runs of the fidelity matrix: on 6.1 {IPv4, IPv6} x {black
/// hole, link down} x {`pf_retrans` 0, PF disabled}, and the IPv4 black
/// hole on 6.12, as (kernel, family, cut, pf).
pub const MATRIX: &[(&str, &str, &str, bool)] = &[
    ("6.1", "ipv4", "blackhole", true),
    ("6.1", "ipv4", "blackhole", false),
    ("6.1", "ipv4", "linkdown", true),
    ("6.1", "ipv4", "linkdown", false),
    ("6.1", "ipv6", "blackhole", true),
    ("6.1", "ipv6", "blackhole", false),
    ("6.1", "ipv6", "linkdown", true),
    ("6.1", "ipv6", "linkdown", false),
    ("6.12", "ipv4", "blackhole", true),
];

/// [`MATRIX`], `runs` times each, into `root/KERNEL-FAMILY-CUT-PF-N`
/// (PF `pf_retrans0` or `pf_disabled`, as in meta.json); the artifact
/// directories in order. The agent and peer of `base` are used.
pub fn run_matrix(root: &Path, runs: u32, base: &GuestRun) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for &(kernel, family, cut, pf) in MATRIX {
        for i in 1..=runs {
            let pf_name = if pf { "pf_retrans0" } else { "pf_disabled" };
            let out = root.join(format!("{kernel}-{family}-{cut}-{pf_name}-{i}"));
            let r = GuestRun { kernel: kernel.into(), family: family.into(), cut: cut.into(), pf, out, ..base.clone() };
            dirs.push(run_one(&r)?);
        }
    }
    Ok(dirs)
}

/// Boots `kernel` and only starts the agent there (no SCTP): how it ends,
/// its exit code or `attached`, and its log (its verifier counts, or why the
/// kernel is refused).
pub fn agent_check(kernel: &str, agent: &Path, out: &Path) -> anyhow::Result<(String, String)> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out)?;
    let out = std::fs::canonicalize(out)?;
    let args = vec![
        "agent-check".into(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
        "--agent".into(),
        std::fs::canonicalize(agent)?.to_string_lossy().into_owned(),
    ];
    boot(kernel, &out, &console_log(&out), &args)?;
    let rc = std::fs::read_to_string(out.join("agent.rc")).context("agent.rc")?.trim().to_string();
    let log = std::fs::read_to_string(out.join("agent.log")).unwrap_or_default();
    Ok((rc, log))
}

/// How `cargo xtask guest-run` runs.
pub enum Mode {
    /// One failover run.
    One,
    /// The agent alone ([`agent_check`]).
    Check,
    /// [`MATRIX`], this many times each, into `--out`.
    Matrix(u32),
}

/// `cargo xtask guest-run`.
pub fn guest_run_main(r: GuestRun, mode: Mode) -> anyhow::Result<()> {
    crate::run::build_release()?;
    let peer = build_peer()?;
    let r = GuestRun { peer, ..r };
    match mode {
        Mode::One => {
            run_one(&r)?;
        }
        Mode::Check => {
            let (rc, log) = agent_check(&r.kernel, &r.agent, &r.out)?;
            print!("{log}");
            println!("agent on linux-{}: {rc}", r.kernel);
        }
        Mode::Matrix(runs) => {
            let t0 = Instant::now();
            let dirs = run_matrix(&r.out, runs, &r)?;
            eprintln!("guest-run: {} runs in {:.0} s", dirs.len(), t0.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
