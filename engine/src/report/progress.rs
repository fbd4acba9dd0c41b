//! The event sink of the CLI, on stderr: a progress bar for steps over many hosts on a
//! terminal, plain `host: message` lines otherwise (CI logs, pipes, `CI=true`), so logs stay
//! greppable.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::line;
use crate::event::{Event, Events};

pub struct Progress {
    interactive: bool,
    /// `-q`: no bar, and only the lines that report a failure or what to do next.
    quiet: bool,
    bar: Mutex<Option<ProgressBar>>,
}

/// A bar only for a person watching: stderr is a terminal and this is not a CI job.
fn interactive() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    std::io::stderr().is_terminal() && !ci
}

impl Progress {
    pub fn new() -> Progress {
        let quiet = super::quiet();
        Progress { interactive: interactive() && !quiet, quiet, bar: Mutex::new(None) }
    }

    fn start(&self, step: &str, hosts: usize) {
        if !self.interactive || hosts == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(hosts as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} hosts {elapsed} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(step.to_string());
        *self.bar.lock().unwrap() = Some(bar);
    }
}

/// Under `-q`: failures, refusals and the approval a pipeline waits for (its exit code 3 alone
/// does not say which stage or command).
fn still_shown_when_quiet(event: &Event<'_>) -> bool {
    matches!(
        event,
        Event::HostFailed { .. }
            | Event::StageRefused { .. }
            | Event::AwaitingApproval { .. }
            | Event::StatePushFailed { .. }
            | Event::HookDelivered { delivered: false, .. }
    )
}

impl Default for Progress {
    fn default() -> Progress {
        Progress::new()
    }
}

impl Events for Progress {
    fn emit(&self, event: Event<'_>) {
        match event {
            Event::StepStarted { step, hosts } => self.start(step, hosts),
            Event::StepEnded => {
                if let Some(bar) = self.bar.lock().unwrap().take() {
                    bar.finish_and_clear();
                }
            }
            Event::HostFinished { host } => {
                if let Some(bar) = self.bar.lock().unwrap().as_ref() {
                    bar.set_message(host.to_string());
                    bar.inc(1);
                }
            }
            other if self.quiet && !still_shown_when_quiet(&other) => {}
            other => {
                let Some(text) = line(&other) else { return };
                match self.bar.lock().unwrap().as_ref() {
                    // Printed above the bar, so the lines stay in the scrollback.
                    Some(bar) => bar.println(text),
                    None => eprintln!("{text}"),
                }
            }
        }
    }
}
