//! `xiebao reference`: the command reference in Markdown, generated from the clap command
//! tree (the README embeds it; a test keeps the two equal), and `xiebao completions SHELL`.

use std::fmt::Write as _;

use clap::CommandFactory as _;

/// The README's reference: every command with what it does, its usage line and its options.
pub(crate) fn markdown() -> String {
    let mut cli = crate::Cli::command();
    cli.build();
    let mut out = String::new();
    for command in cli.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
        walk(command, &mut Vec::new(), &mut out);
    }
    out
}

fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut String) {
    path.push(command.get_name().to_owned());
    let children: Vec<&clap::Command> =
        command.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help").collect();
    if children.is_empty() {
        let about = command.get_about().map(ToString::to_string).unwrap_or_default();
        let mut usage = command.clone().render_usage().to_string();
        if let Some(rest) = usage.strip_prefix("Usage: ") {
            usage = rest.to_owned();
        }
        let _ = writeln!(out, "- `xiebao {}` — {about}", path.join(" "));
        let _ = writeln!(out, "  `{}`", usage.replace('`', "'"));
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            let name = match (arg.get_long(), arg.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            if name == "--help" || name == "-h" {
                continue;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let help = help.split(". ").next().unwrap_or_default().trim_end_matches('.');
            let _ = writeln!(out, "  - `{name}` {}", help.replace('`', "'"));
        }
    } else {
        for child in children {
            walk(child, path, out);
        }
    }
    path.pop();
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn print() {
    print!("{}", markdown());
}
