//! Shell completions (clap_complete) and man pages (clap_mangen) from the
//! command-line definition itself, so they cannot drift from `--help`.
//! `cargo xtask completions` and `cargo xtask man` call these through the
//! binary's hidden `generate` subcommand.

use std::path::Path;

use anyhow::Context as _;
use clap_complete::Shell;

/// `cmd` without its hidden subcommands (`generate`): neither completions
/// nor man pages offer them. clap cannot remove a subcommand, so the
/// top-level command (`sctp-monitor`) is rebuilt with what the pages show.
pub fn public(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new("sctp-monitor")
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
        .subcommand_required(cmd.is_subcommand_required_set());
    if cmd.get_version().is_some() {
        out = out.version(env!("CARGO_PKG_VERSION"));
    }
    if let Some(a) = cmd.get_about() {
        out = out.about(a.clone());
    }
    if let Some(h) = cmd.get_after_help() {
        out = out.after_help(h.clone());
    }
    out
}

/// Shells a completion script is written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes one completion script per shell of [`SHELLS`] into `dir`
/// (`sctp-monitor.bash`, `_sctp-monitor`, `sctp-monitor.fish`); returns
/// the paths.
pub fn completions(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = public(&cmd);
    let name = cmd.get_name().to_string();
    let written = SHELLS
        .iter()
        .map(|&sh| {
            clap_complete::generate_to(sh, &mut cmd, &name, dir)
                .with_context(|| format!("writing the {sh} completion into {}", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // clap_complete 4.6's bash script names a subcommand's case
    // `sctp__subcmd__monitor__subcmd__run` but sets `cmd` to
    // `sctp__monitor__subcmd__run` (a `-` in the binary's name is replaced
    // two ways), so nothing after the subcommand completed; make the case
    // labels match (tests/cli.rs completes `run --xdp<TAB>`).
    let bash = dir.join(format!("{name}.bash"));
    let script = std::fs::read_to_string(&bash).with_context(|| format!("reading {}", bash.display()))?;
    let fixed = script.replace(&name.replace('-', "__subcmd__"), &name.replace('-', "__"));
    std::fs::write(&bash, fixed).with_context(|| format!("writing {}", bash.display()))?;
    Ok(written)
}

/// Writes `sctp-monitor.1` and one page per subcommand
/// (`sctp-monitor-run.1`, ...) into `dir`; returns the paths.
pub fn man(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(public(&cmd), dir).with_context(|| format!("writing man pages into {}", dir.display()))?;
    let mut pages: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    Ok(pages)
}
