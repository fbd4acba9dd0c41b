//! `completions SHELL` and `man`: what a package ships next to the binary, generated from the
//! clap definition in `cli` so they always list the commands and flags this binary has.

use clap::CommandFactory;

use super::{CmdResult, out};
use crate::cli::Cli;
use crate::error;
use crate::exit::ExitStatus;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) -> CmdResult {
    let mut cmd = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "stackdeploy", &mut script);
    out(&String::from_utf8_lossy(&script));
    Ok(ExitStatus::Ok)
}

/// Prints the man page (section 1, roff) on stdout: the top-level page, then a section per
/// subcommand with its own options, so `man stackdeploy` documents every command.
pub(crate) fn man() -> CmdResult {
    let mut page = Vec::new();
    render(&mut page).map_err(|e| error::io("cannot render the man page").with_source(e))?;
    out(&String::from_utf8_lossy(&page));
    Ok(ExitStatus::Ok)
}

fn render(page: &mut Vec<u8>) -> std::io::Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(page)?;
    man.render_name_section(page)?;
    man.render_synopsis_section(page)?;
    man.render_description_section(page)?;
    man.render_options_section(page)?;
    subcommands(page, &cmd, "stackdeploy")?;
    man.render_version_section(page)?;
    Ok(())
}

/// A `.SH` per subcommand (nested ones under their parent's name), with its usage, about and
/// options, rendered by clap_mangen as a page of its own minus the title and name lines.
fn subcommands(page: &mut Vec<u8>, cmd: &clap::Command, prefix: &str) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        let name = format!("{prefix} {}", sub.get_name());
        page.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let sub_cmd = sub.clone().bin_name(name.clone());
        let man = clap_mangen::Man::new(sub_cmd);
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        man.render_options_section(&mut part)?;
        // The parts are sections of a page of their own; here they are subsections.
        let part = String::from_utf8_lossy(&part).replace(".SH ", ".SS ");
        page.extend_from_slice(part.as_bytes());
        subcommands(page, sub, &name)?;
    }
    Ok(())
}
