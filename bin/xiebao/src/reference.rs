//! `xiebao reference`: the command reference in Markdown, generated from the clap command
//! tree (the README embeds it; a test keeps the two equal), or as JSON for scripts and tests
//! (`--json`: every leaf command with its options, hidden ones included and marked).

use std::fmt::Write as _;

use clap::CommandFactory as _;

/// The README's reference: every command with what it does, its usage line and its options
/// (the options every command takes are listed once, first).
pub(crate) fn markdown() -> String {
    let mut cli = crate::Cli::command();
    cli.build();
    let mut out = String::new();
    let globals: Vec<&str> = cli
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
        .map(|a| a.get_id().as_str())
        .collect();
    for arg in cli.get_arguments().filter(|a| globals.contains(&a.get_id().as_str())) {
        let name = arg.get_long().map(|l| format!("--{l}")).unwrap_or_default();
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map(|v| format!(" <{v}>"))
            .unwrap_or_default();
        let env =
            arg.get_env().map(|e| format!(" (or {})", e.to_string_lossy())).unwrap_or_default();
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let _ =
            writeln!(out, "Every command takes `{name}{value}`{env}: {}", help.replace('`', "'"));
        let _ = writeln!(out);
    }
    for command in cli.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
        walk(command, &mut Vec::new(), &globals, &mut out);
    }
    out
}

fn walk(command: &clap::Command, path: &mut Vec<String>, globals: &[&str], out: &mut String) {
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
        let own = command
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !globals.contains(&a.get_id().as_str()));
        for arg in own {
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
            walk(child, path, globals, out);
        }
    }
    path.pop();
}

/// Every leaf command (hidden ones too, marked) with its about, usage and options.
pub(crate) fn json() -> serde_json::Value {
    let mut cli = crate::Cli::command();
    cli.build();
    let mut leaves = Vec::new();
    for command in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        walk_json(command, &mut Vec::new(), false, &mut leaves);
    }
    serde_json::Value::Array(leaves)
}

fn walk_json(
    command: &clap::Command,
    path: &mut Vec<String>,
    hidden: bool,
    out: &mut Vec<serde_json::Value>,
) {
    path.push(command.get_name().to_owned());
    let hidden = hidden || command.is_hide_set();
    let children: Vec<&clap::Command> =
        command.get_subcommands().filter(|c| c.get_name() != "help").collect();
    if children.is_empty() {
        let options: Vec<serde_json::Value> = command
            .get_arguments()
            .filter(|a| a.get_id() != "help")
            .map(|arg| {
                let name = match (arg.get_long(), arg.get_short()) {
                    (Some(long), _) => format!("--{long}"),
                    (None, Some(short)) => format!("-{short}"),
                    (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
                };
                serde_json::json!({
                    "name": name,
                    "help": arg.get_help().map(ToString::to_string).unwrap_or_default(),
                    "env": arg.get_env().map(|e| e.to_string_lossy().into_owned()),
                    "global": arg.is_global_set(),
                    "hidden": arg.is_hide_set(),
                })
            })
            .collect();
        out.push(serde_json::json!({
            "command": path.join(" "),
            "about": command.get_about().map(ToString::to_string).unwrap_or_default(),
            "usage": command.clone().render_usage().to_string(),
            "hidden": hidden,
            "options": options,
        }));
    } else {
        for child in children {
            walk_json(child, path, hidden, out);
        }
    }
    path.pop();
}

#[allow(clippy::print_stdout, reason = "the command's output")]
pub(crate) fn print(json: bool) {
    if json {
        println!("{}", self::json());
    } else {
        print!("{}", markdown());
    }
}
