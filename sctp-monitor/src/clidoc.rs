//! Shell completions (clap_complete) and man pages (clap_mangen) from the
//! command-line definition itself, so they cannot drift from `--help`.
//! `cargo xtask completions` and `cargo xtask man` call these through the
//! binary's hidden `generate` subcommand.

use std::path::Path;

use anyhow::Context as _;
use clap_complete::Shell;

/// Shells a completion script is written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes one completion script per shell of [`SHELLS`] into `dir`
/// (`sctp-monitor.bash`, `_sctp-monitor`, `sctp-monitor.fish`); returns
/// the paths.
pub fn completions(mut cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = cmd.get_name().to_string();
    SHELLS
        .iter()
        .map(|&sh| {
            clap_complete::generate_to(sh, &mut cmd, &name, dir)
                .with_context(|| format!("writing the {sh} completion into {}", dir.display()))
        })
        .collect()
}

/// Writes `sctp-monitor.1` and one page per subcommand
/// (`sctp-monitor-run.1`, ...) into `dir`; returns the paths.
pub fn man(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}
