//! Progress of long runs (plan, apply, pipeline stages) on stderr: a bar on a terminal, plain
//! `host: message` lines otherwise (CI logs, pipes, `CI=true`), so logs stay greppable.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::Events;

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

/// A bar only for a person watching: stderr is a terminal and this is not a CI job.
fn interactive() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    std::io::stderr().is_terminal() && !ci
}

impl Progress {
    /// `what` is the step, e.g. `probing` or `applying`; `hosts` how many there are.
    pub fn new(what: &str, hosts: usize) -> Progress {
        if !interactive() || hosts == 0 {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(hosts as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} hosts {elapsed} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(what.to_string());
        Progress { bar: Some(bar) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Events for Progress {
    fn host(&self, host: &str, message: &str) {
        match &self.bar {
            // Printed above the bar, so the lines stay in the scrollback.
            Some(bar) => bar.println(format!("{host}: {message}")),
            None => eprintln!("{host}: {message}"),
        }
    }

    fn finished(&self, host: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(host.to_string());
            bar.inc(1);
        }
    }
}
