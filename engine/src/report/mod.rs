//! Turning engine results into text, JSON, JUnit XML or HTML. Pure functions returning
//! strings, so they can be snapshot-tested; the commands decide where the strings go and
//! whether to colour them. Events become lines, or a progress bar on a terminal
//! ([`progress`]).
//!
//! Callers pass already-redacted data: nothing here knows secret values.

pub mod catalog;
pub mod drift;
pub mod events;
pub mod import;
pub mod json;
pub mod junit;
pub mod lookup;
pub mod pipeline;
pub mod plan;
pub mod precommit;
pub mod progress;
pub mod review;
pub mod status;

use crate::cli::ColorChoice;

/// The styles text output uses.
pub(crate) mod ansi {
    use anstyle::{AnsiColor, Color, Style};

    const fn fg(c: AnsiColor) -> Style {
        Style::new().fg_color(Some(Color::Ansi(c)))
    }
    pub const BOLD: Style = Style::new().bold();
    pub const RED: Style = fg(AnsiColor::Red);
    pub const GREEN: Style = fg(AnsiColor::Green);
    pub const YELLOW: Style = fg(AnsiColor::Yellow);
    pub const MAGENTA: Style = fg(AnsiColor::Magenta);
    pub const CYAN: Style = fg(AnsiColor::Cyan);
}

/// ANSI colouring, decided by the caller: `--color`, else NO_COLOR / CLICOLOR_FORCE, else
/// only on a terminal (see [`color_wanted`]).
#[derive(Clone, Copy, Debug)]
pub struct Style {
    pub color: bool,
}

/// The `--color` choice of this process, set once by the CLI before any command runs.
static COLOR_CHOICE: std::sync::OnceLock<Option<ColorChoice>> = std::sync::OnceLock::new();

/// Records the `--color` flag (None: not given) for every [`Style::for_stdout`] that follows.
pub(crate) fn set_color_choice(choice: Option<ColorChoice>) {
    let _ = COLOR_CHOICE.set(choice);
}

/// `-q`: only errors and the results scripts read are printed. Set once by the CLI.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

/// Was `-q` given? Notes, hints, progress and per-host detail are left out.
pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether to colour: an explicit `--color` decides alone (`auto`: on a terminal); without it,
/// a non-empty NO_COLOR means no colour (<https://no-color.org>), then a CLICOLOR_FORCE that
/// is set and not `0` means colour even when piped, else colour only on a terminal.
pub fn color_wanted(
    flag: Option<ColorChoice>,
    no_color: Option<&std::ffi::OsStr>,
    clicolor_force: Option<&std::ffi::OsStr>,
    terminal: bool,
) -> bool {
    match flag {
        Some(ColorChoice::Always) => true,
        Some(ColorChoice::Never) => false,
        Some(ColorChoice::Auto) => terminal,
        None if no_color.is_some_and(|v| !v.is_empty()) => false,
        None if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") => true,
        None => terminal,
    }
}

/// [`color_wanted`] for this process's `--color` and environment, writing to a terminal or not.
pub(crate) fn color_for(terminal: bool) -> bool {
    color_wanted(
        COLOR_CHOICE.get().copied().flatten(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("CLICOLOR_FORCE").as_deref(),
        terminal,
    )
}

impl Style {
    /// Colour for what goes to stdout, as `--color` and the environment decide.
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        Style { color: color_for(std::io::stdout().is_terminal()) }
    }

    pub(crate) fn paint(self, ansi: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", ansi.render(), ansi.render_reset())
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod color_tests {
    use std::ffi::OsStr;

    use super::color_wanted;
    use crate::cli::ColorChoice::{Always, Auto, Never};

    #[test]
    fn colours_are_the_plain_sgr_sequences_terminals_and_less_r_read() {
        let on = super::Style { color: true };
        assert_eq!(on.paint(super::ansi::RED, "FAILED"), "\x1b[31mFAILED\x1b[0m");
        assert_eq!(on.paint(super::ansi::BOLD, "h"), "\x1b[1mh\x1b[0m");
        assert_eq!(super::Style { color: false }.paint(super::ansi::CYAN, "@@"), "@@");
    }

    #[test]
    fn an_explicit_flag_decides_alone() {
        let on = Some(OsStr::new("1"));
        assert!(color_wanted(Some(Always), on, None, false));
        assert!(!color_wanted(Some(Never), None, on, true));
        assert!(!color_wanted(Some(Auto), None, on, false));
        assert!(color_wanted(Some(Auto), on, None, true));
    }

    #[test]
    fn without_the_flag_no_color_then_clicolor_force_then_the_terminal() {
        let v = |s: &'static str| Some(OsStr::new(s));
        assert!(color_wanted(None, None, None, true));
        assert!(!color_wanted(None, None, None, false));
        assert!(!color_wanted(None, v("1"), None, true));
        assert!(color_wanted(None, v(""), None, true), "an empty NO_COLOR is unset");
        assert!(!color_wanted(None, v("1"), v("1"), false), "NO_COLOR wins");
        assert!(color_wanted(None, None, v("1"), false));
        assert!(color_wanted(None, v(""), v("yes"), false));
        assert!(!color_wanted(None, None, v("0"), false));
        assert!(!color_wanted(None, None, v(""), false));
    }
}
