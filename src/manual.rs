//! Manual pages (roff) of both programs, made with clap_mangen from their argument
//! definitions so that they never drift from the commands.
//!
//! One page per program, like tar(1) and systemctl(1): the commands of `backup_manager`
//! are described in its own page, not in `backup_manager-COMMAND(1)` pages a user would
//! have to install one by one.

use std::io::{self, Write};

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// Writes the manual page of `command` (with its subcommands, if any) to `out`.
pub fn render(command: Command, out: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    let mut roff = Roff::default();
    let commands: Vec<&Command> = command
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .collect();
    if !commands.is_empty() {
        roff.control("SH", ["COMMANDS"]);
        for sub in commands {
            describe(&mut roff, command.get_name(), sub);
        }
    }
    environment(&mut roff);
    roff.to_writer(out)?;
    man.render_version_section(out)
}

/// One command: its usage line, its description and its own options.
fn describe(roff: &mut Roff, program: &str, sub: &Command) {
    let mut usage = vec![bold(format!("{program} {}", sub.get_name()))];
    for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
        if arg.is_positional() {
            let name = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| arg.get_id().to_string(), ToString::to_string);
            usage.push(roman(" "));
            usage.push(italic(name.to_uppercase()));
        }
    }
    roff.control("TP", []);
    roff.text(usage);
    let about = sub.get_long_about().or(sub.get_about());
    if let Some(about) = about {
        for (i, paragraph) in about.to_string().split("\n\n").enumerate() {
            if i > 0 {
                roff.control("sp", []);
            }
            // A verbatim paragraph (a list of exit codes) keeps its lines.
            for (j, line) in paragraph.lines().enumerate() {
                if j > 0 {
                    roff.control("br", []);
                }
                roff.text([roman(line.trim())]);
            }
        }
    }
    let options: Vec<_> = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_global_set() && !a.is_positional())
        .filter(|a| a.get_id() != "help")
        .collect();
    if options.is_empty() {
        return;
    }
    roff.control("RS", []);
    for arg in options {
        let mut flag = vec![bold(format!("--{}", arg.get_long().unwrap_or_default()))];
        if arg.get_action().takes_values() {
            let value = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| "VALUE".to_owned(), ToString::to_string);
            flag.push(roman(" "));
            flag.push(italic(value));
        }
        roff.control("TP", []);
        roff.text(flag);
        if let Some(help) = arg.get_long_help().or(arg.get_help()) {
            roff.text([roman(help.to_string())]);
        }
    }
    roff.control("RE", []);
}

/// The environment variables both programs read.
fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    roff.control("TP", []);
    roff.text([bold(crate::home::HOME_VAR)]);
    roff.text([roman(
        "The home when --home is not given. Without either, the current folder is the home \
         only if it holds backup_schedules.txt or backups/.",
    )]);
    roff.control("TP", []);
    roff.text([bold(crate::hooks::TIMEOUT_VAR)]);
    roff.text([roman(format!(
        "The time limit of each hook in the home's hooks/ folder, in seconds ({} by default).",
        crate::hooks::DEFAULT_TIMEOUT.as_secs()
    ))]);
}
