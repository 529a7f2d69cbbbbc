//! `mk8 completion bash|zsh|fish|elvish|powershell`: a shell completion script on stdout.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `mk8 completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to complete for. Install with, for bash:
    /// `mk8 completion bash > /etc/bash_completion.d/mk8`; zsh: into a directory of `$fpath` as
    /// `_mk8`; fish: `mk8 completion fish > ~/.config/fish/completions/mk8.fish`.
    shell: Shell,
}

/// Print the completion script.
pub fn run(args: CompletionArgs) -> anyhow::Result<()> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "mk8", &mut std::io::stdout());
    Ok(())
}
