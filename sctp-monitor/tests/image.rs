//! The container image, built from deploy/Dockerfile and started: podman
//! and buildah from Debian, no daemon (buildah's chroot isolation for the
//! build, podman with runc for the run; crun refuses this machine's hybrid
//! cgroups). Docker Hub is out of reach here, so the two bases are made
//! first by tests/image/builder-base.sh: Debian bookworm from debootstrap,
//! and the same with this machine's Rust toolchains laid out as in the
//! official rust image (the Dockerfile's `cargo xtask setup` checks every
//! pin in it). Then, as a user would:
//!
//! - the image runs as 65532, exposes 9108, and its binary carries exactly
//!   cap_bpf, cap_net_admin and cap_perfmon as file capabilities;
//! - started with only those three capabilities (`--cap-drop ALL
//!   --cap-add ...`) in a network namespace, the agent attaches to the veth
//!   it is given, `/readyz` says so, `/metrics` carries the build's commit,
//!   and its process has exactly those three effective capabilities as uid
//!   65532; `podman stop` (SIGTERM) ends it with exit 0;
//! - started as Docker and containerd (Kubernetes) start a non-root user,
//!   with nothing in its permitted set (setpriv from root to 65532), the
//!   file capabilities give the agent exactly the three; with no_new_privs
//!   they do not, and the agent exits 3 naming the missing capabilities
//!   (why the Helm chart sets allowPrivilegeEscalation: true).
//!
//! The build compiles the agent in release mode (minutes on two cores), so
//! the test is `#[ignore]`d: `cargo xtask test` lists it as skipped, and
//! `cargo xtask image --test` runs it (`--ignored`). Needs root; fixed names,
//! so under the shared lock.

mod support;

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use support::{
    NetNs,
    http::get,
    process::{have, wait_until},
    veth,
};

const IMAGE: &str = "localhost/sctp-monitor:image-test";
const CONTAINER: &str = "sctpmon-image-test";
const PORT: u16 = 9119;
/// Exactly CAP_NET_ADMIN (12), CAP_PERFMON (38), CAP_BPF (39).
const THREE_CAPS: u64 = (1 << 12) | (1 << 38) | (1 << 39);

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root").to_path_buf()
}

fn out(cmd: &mut Command) -> (bool, String) {
    let o = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

fn must(cmd: &mut Command) -> String {
    let (ok, text) = out(cmd);
    assert!(ok, "{cmd:?} failed:\n{text}");
    text
}

/// `podman` with what this machine needs: runc, and rlimits it may set.
fn podman() -> Command {
    let mut c = Command::new("podman");
    c.args(["--runtime", "runc"]);
    c
}

fn podman_run(extra: &[&str], args: &[&str]) -> Command {
    let mut c = podman();
    c.args(["run", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"])
        .args(["--cap-drop", "ALL", "--cap-add", "BPF", "--cap-add", "NET_ADMIN", "--cap-add", "PERFMON"])
        .args(["--security-opt", "seccomp=unconfined"])
        .args(extra)
        .arg(IMAGE)
        .args(args);
    c
}

struct Container;

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman().args(["rm", "-f", "-t", "2", CONTAINER]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

#[test]
#[ignore = "builds deploy/Dockerfile, a release build in a container (~15 min on a fresh machine): `cargo xtask image --test`"]
fn image_builds_and_runs_the_agent_with_three_file_capabilities() {
    // SAFETY: no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the image test needs root (podman, namespaces, BPF)");
    for tool in ["podman", "buildah", "debootstrap"] {
        assert!(have(tool), "{tool} is missing: `cargo xtask setup --tests` installs it");
    }
    let commit = must(Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(repo()));
    let commit = commit.trim();

    // The bases, then the Dockerfile exactly as `cargo xtask image` runs it.
    must(
        Command::new("bash")
            .arg(repo().join("sctp-monitor/tests/image/builder-base.sh"))
            .arg(sctp_monitor_common::toolchain::NIGHTLY),
    );
    let mut bud = Command::new("buildah");
    bud.args(["bud", "--isolation", "chroot", "--network", "host", "--layers", "--format", "docker"])
        .args(["-f", "deploy/Dockerfile", "-t", IMAGE])
        .args(["--build-arg", &format!("SCTP_MONITOR_GIT_COMMIT={commit}")])
        .args(["--build-arg", "BUILDER_IMAGE=localhost/sctp-monitor-rust:bookworm"])
        .args(["--build-arg", "RUNTIME_IMAGE=localhost/sctp-monitor-base:bookworm"])
        .current_dir(repo());
    if std::path::Path::new("/usr/local/share/ca-certificates").is_dir() {
        bud.args(["-v", "/usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro"]);
    }
    let log = must(bud.arg("."));
    eprintln!(
        "{}",
        log.lines().filter(|l| l.contains("STEP") || l.contains("Finished")).collect::<Vec<_>>().join("\n")
    );

    // What the image says about itself.
    let inspect: serde_json::Value =
        serde_json::from_str(&must(podman().args(["image", "inspect", IMAGE]))).expect("podman image inspect is JSON");
    let config = &inspect[0]["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(config["Entrypoint"], serde_json::json!(["/usr/local/bin/sctp-monitor"]));
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    assert!(config["ExposedPorts"].get("9108/tcp").is_some(), "{config}");
    let root = must(podman().args(["image", "mount", IMAGE]));
    let caps = must(Command::new("getcap").arg(format!("{}/usr/local/bin/sctp-monitor", root.trim())));
    let _ = podman().args(["image", "unmount", IMAGE]).output();
    assert!(caps.trim().ends_with("cap_net_admin,cap_perfmon,cap_bpf=ep"), "file capabilities: {caps}");

    // Started with the three capabilities in a namespace with a veth.
    let a = NetNs::new("sctpmon-img-a");
    let b = NetNs::new("sctpmon-img-b");
    veth(&a, "smimg0", &b, "smimg0p");
    let _container = Container;
    let _ = podman().args(["rm", "-f", CONTAINER]).output();
    let netns = format!("ns:/run/netns/{}", a.name);
    let metrics = format!("127.0.0.1:{PORT}");
    must(&mut podman_run(
        &["-d", "--name", CONTAINER, "--network", &netns],
        &["run", "-i", "smimg0", "--metrics", &metrics, "--events", "-"],
    ));
    let ready = wait_until("the containerized agent answers /readyz", Duration::from_secs(60), || {
        let (ok, state) = out(podman().args(["inspect", "-f", "{{.State.Running}}", CONTAINER]));
        if !ok || state.trim() != "true" {
            let (_, logs) = out(podman().args(["logs", CONTAINER]));
            panic!("the container stopped: {state}\n{logs}");
        }
        get(&a, "127.0.0.1", PORT, "/readyz", None)
    });
    assert_eq!(ready.0, 200, "{}", ready.1);
    let doc: serde_json::Value = serde_json::from_str(&ready.1).expect("readyz JSON");
    assert_eq!(doc["attached"], serde_json::json!(["smimg0"]), "{doc}");
    let (_, metrics_text) = get(&a, "127.0.0.1", PORT, "/metrics", None).expect("/metrics");
    let info = metrics_text.lines().find(|l| l.starts_with("sctp_monitor_build_info{")).expect("build_info");
    assert!(info.contains(&format!("commit=\"{commit}\"")), "{info}");
    let status = must(podman().args(["exec", CONTAINER, "cat", "/proc/1/status"]));
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_else(|| panic!("{name} in {status}"))
    };
    assert!(field("Uid:").starts_with("65532"), "{status}");
    let eff = u64::from_str_radix(field("CapEff:"), 16).expect("CapEff");
    assert_eq!(eff, THREE_CAPS, "effective capabilities {eff:#x}: exactly BPF, NET_ADMIN, PERFMON");
    let logs = must(podman().args(["logs", CONTAINER]));
    assert!(logs.contains("attached to smimg0"), "{logs}");
    let (ok, code) = out(podman().args(["stop", "-t", "10", CONTAINER]));
    assert!(ok, "podman stop: {code}");
    let code = must(podman().args(["inspect", "-f", "{{.State.ExitCode}}", CONTAINER]));
    assert_eq!(code.trim(), "0", "exit status after SIGTERM");

    // Podman hands a non-root container user the added capabilities in its
    // permitted set already; Docker and containerd (Kubernetes) do not: there
    // the binary's file capabilities are what grants them, and only without
    // no_new_privs. The same start as there: root drops to 65532 with
    // setpriv, a shell (nothing permitted, nothing inheritable) executes
    // the agent; once as is, once with no_new_privs.
    let strict = |nnp: bool, extra: &[&str], agent: &[&str]| {
        let mut args = vec!["--reuid=65532", "--regid=65532", "--clear-groups", "--inh-caps=-all"];
        if nnp {
            args.push("--no-new-privs");
        }
        // Through a shell without file capabilities: setpriv keeps its own
        // permitted set up to its exec, the container's first process in
        // Docker or containerd has none.
        args.extend_from_slice(&["/bin/sh", "-c", "exec /usr/local/bin/sctp-monitor \"$@\"", "sh"]);
        args.extend_from_slice(agent);
        let mut c = Command::new("timeout");
        c.args([
            "60",
            "podman",
            "--runtime",
            "runc",
            "run",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(["--cap-drop", "ALL", "--cap-add", "BPF", "--cap-add", "NET_ADMIN", "--cap-add", "PERFMON"])
        .args(["--cap-add", "SETUID", "--cap-add", "SETGID"])
        .args(["--security-opt", "seccomp=unconfined", "--user", "0", "--entrypoint", "setpriv", "--network", &netns])
        .args(extra)
        .arg(IMAGE)
        .args(&args);
        c
    };
    let o = strict(true, &["--rm"], &["run", "-i", "smimg0", "--metrics", "off", "--events", "off"])
        .stdin(Stdio::null())
        .output()
        .expect("podman run");
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "exit code with no_new_privs: {text}");
    assert!(text.contains("missing capabilities CAP_BPF"), "{text}");
    let _ = podman().args(["rm", "-f", CONTAINER]).output();
    must(&mut strict(
        false,
        &["-d", "--name", CONTAINER],
        &["run", "-i", "smimg0", "--metrics", &metrics, "--events", "off"],
    ));
    let ready = wait_until("the agent started through setpriv answers /readyz", Duration::from_secs(60), || {
        get(&a, "127.0.0.1", PORT, "/readyz", None)
    });
    assert_eq!(ready.0, 200, "{}", ready.1);
    let status = must(podman().args(["exec", CONTAINER, "cat", "/proc/1/status"]));
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_else(|| panic!("{name} in {status}"))
    };
    assert!(field("Uid:").starts_with("65532"), "{status}");
    assert_eq!(u64::from_str_radix(field("CapInh:"), 16).expect("CapInh"), 0, "{status}");
    assert_eq!(u64::from_str_radix(field("CapEff:"), 16).expect("CapEff"), THREE_CAPS, "from the file capabilities");
    must(podman().args(["stop", "-t", "10", CONTAINER]));
}
