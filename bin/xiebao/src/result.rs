//! `xiebao result digest`: the digest workers agree on for a task's output.

use std::path::PathBuf;

use anyhow::Context;

/// `xiebao result …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ResultCommand {
    /// Print the result digest (rule v1) of an output directory or of callback data.
    Digest {
        /// The output directory.
        #[arg(required_unless_present = "callback_file")]
        dir: Option<PathBuf>,
        /// A file holding the callback data (for tasks with a callback).
        #[arg(long, conflicts_with = "dir")]
        callback_file: Option<PathBuf>,
    },
}

#[allow(clippy::print_stdout, reason = "the command's result is its output")]
pub(crate) fn run(command: &ResultCommand) -> anyhow::Result<()> {
    match command {
        ResultCommand::Digest { dir, callback_file } => {
            let digest = match (dir, callback_file) {
                (_, Some(file)) => {
                    let data = std::fs::read(file)
                        .with_context(|| format!("reading callback data {}", file.display()))?;
                    xiebao_types::digest::callback_digest(&data)
                }
                (Some(dir), None) => xiebao_sdk::digest::digest_dir(dir)?,
                (None, None) => unreachable!("clap requires one"),
            };
            println!("{digest}");
        }
    }
    Ok(())
}
