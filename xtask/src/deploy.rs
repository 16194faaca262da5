//! `cargo xtask completions|man|manifests|image`: what deploy/ and a
//! package need, generated from their sources.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

use crate::run::{cargo, workspace_root};

/// Shell completions or man pages, written by the agent's own command-line
/// definition (`sctp-monitor generate`, clap_complete / clap_mangen).
pub fn generate(what: &str, out_dir: &Path) -> anyhow::Result<()> {
    let ok = cargo()
        .args(["run", "--quiet", "--package", "sctp-monitor", "--", "generate", what, "--out-dir"])
        .arg(out_dir)
        .status()?;
    if !ok.success() {
        bail!("`sctp-monitor generate {what}` failed");
    }
    Ok(())
}

const MANIFEST: &str = "deploy/kubernetes/daemonset.yaml";
const MANIFEST_HEADER: &str = "\
# sctp-monitor without Helm: the chart deploy/helm/sctp-monitor rendered with
# its default values, except that the listener's certificate and credential
# are Secrets you make (a manifest cannot generate them; `cargo xtask
# manifests` writes this file; the test tests/deploy.rs fails when it
# differs from the chart). A Namespace with Pod Security labels, a
# ServiceAccount without token, and the DaemonSet: host network, CAP_BPF +
# CAP_NET_ADMIN + CAP_PERFMON (not privileged), TLS and basic
# authentication on the listener (--web-config), /readyz readiness and
# /healthz liveness over HTTPS, Prometheus scrape annotations.
#
# The two Secrets first (deploy/README.md, TLS and authentication, has
# the commands): sctp-monitor-tls (tls.crt, tls.key, ca.crt) and
# sctp-monitor-web (username, password, web-config.yml).
#
#   kubectl apply -f deploy/kubernetes/daemonset.yaml
#   kubectl -n sctp-monitor logs ds/sctp-monitor     # attach report, JSON events
#
# Set the image to one built from deploy/Dockerfile.
";

/// The chart's values for the plain manifest (tests/deploy.rs renders the
/// chart with the same).
const MANIFEST_SETS: &[&str] =
    &["webConfig.tls.secretName=sctp-monitor-tls", "webConfig.auth.existingSecret=sctp-monitor-web"];

/// deploy/kubernetes/daemonset.yaml from the chart.
pub fn manifests() -> anyhow::Result<()> {
    let root = workspace_root();
    let out = Command::new("helm")
        .args(["template", "sctp-monitor", "deploy/helm/sctp-monitor", "--namespace", "sctp-monitor"])
        .args(MANIFEST_SETS.iter().flat_map(|s| ["--set", s]))
        .current_dir(&root)
        .output()
        .context("running helm (cargo xtask setup --tests installs it)")?;
    if !out.status.success() {
        bail!("helm template failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let path = root.join(MANIFEST);
    std::fs::write(&path, format!("{MANIFEST_HEADER}{}", String::from_utf8_lossy(&out.stdout)))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Builds deploy/Dockerfile with podman (buildah's chroot isolation, no
/// daemon). `bases`: builder and runtime images instead of the Dockerfile's
/// defaults (Docker Hub's rust and debian images).
pub fn image(tag: &str, builder: Option<&str>, runtime: Option<&str>) -> anyhow::Result<()> {
    let root = workspace_root();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(&root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut cmd = Command::new("buildah");
    cmd.args(["bud", "--isolation", "chroot", "--network", "host", "--layers", "--format", "docker"])
        .args(["-f", "deploy/Dockerfile", "-t", tag])
        .args(["--build-arg", &format!("SCTP_MONITOR_GIT_COMMIT={commit}")]);
    if let Some(b) = builder {
        cmd.args(["--build-arg", &format!("BUILDER_IMAGE={b}")]);
    }
    if let Some(r) = runtime {
        cmd.args(["--build-arg", &format!("RUNTIME_IMAGE={r}")]);
    }
    // A TLS-intercepting proxy's CA (Debian's local CA directory) reaches
    // the builder's ca-certificates, so cargo can fetch crates.
    if Path::new("/usr/local/share/ca-certificates").is_dir() {
        cmd.args(["-v", "/usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro"]);
    }
    let ok = cmd.arg(".").current_dir(&root).status().context("running buildah (Debian: apt-get install buildah)")?;
    if !ok.success() {
        bail!("buildah bud -f deploy/Dockerfile failed");
    }
    Ok(())
}

/// tests/image.rs, which builds and starts the image (`#[ignore]`d in
/// `cargo xtask test`, run here with `--ignored`), under the lock the namespace tests share.
pub fn image_test() -> anyhow::Result<()> {
    let ok = Command::new("flock")
        .arg("/tmp/sctpmon-kernel.lock")
        .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["test", "--package", "sctp-monitor", "--test", "image", "--", "--ignored", "--nocapture"])
        .current_dir(workspace_root())
        .status()?;
    if !ok.success() {
        bail!("the image test failed");
    }
    Ok(())
}
