//! Events as the lines people read on stderr (`db01: done: 3 change(s)`, `==> stage canary`).

use crate::event::Event;
use crate::source::short;

/// The line an event is shown as; `None` for events that only drive progress bars.
pub fn line(event: &Event<'_>) -> Option<String> {
    Some(match *event {
        Event::StepStarted { .. } | Event::StepEnded | Event::HostFinished { .. } => return None,
        Event::HostFailed { host, error } => format!("{host}: failed: {error}"),
        Event::HostUnchanged { host } => format!("{host}: no changes"),
        Event::HostApplying { host, changes, restarts } => {
            format!("{host}: applying {changes} change(s), {restarts} restart(s)")
        }
        Event::HostChanged { host, changes, restarted } => {
            let suffix = if restarted.is_empty() {
                String::new()
            } else {
                format!("; restarted {}", restarted.join(", "))
            };
            format!("{host}: done: {changes} change(s){suffix}")
        }
        Event::HostPlannedAgain { host, patches } => format!(
            "{host}: planned again for {patches} patch(es) of files the packages just installed"
        ),
        Event::HostSkipped { host } => {
            format!("{host}: skipped: the rollout stopped (failure budget exceeded)")
        }
        Event::PipelineStarted { commit, summary, run_id } => {
            format!("pipeline for commit {} ({summary}), run {run_id}", short(commit))
        }
        Event::StageStarted { name, kind, environment } => format!(
            "==> stage {name} ({kind:?}{})",
            environment.map(|e| format!(", {e}")).unwrap_or_default()
        ),
        Event::StageFinished { name, passed, seconds } => {
            format!(
                "<== stage {name} {} in {seconds:.1} s",
                if passed { "passed" } else { "FAILED" }
            )
        }
        Event::StageRefused { name, commit, requires, missing } => format!(
            "refused: stage '{name}' requires {} to have passed for commit {}: {}",
            requires.iter().map(|r| format!("'{r}'")).collect::<Vec<_>>().join(", "),
            short(commit),
            missing.join(", ")
        ),
        Event::AwaitingApproval { name, commit } => format!(
            "waiting: stage '{name}' needs a manual approval: stackdeploy approve {} --stage {name}",
            short(commit)
        ),
        Event::StateSynced { remote, pushed: true, summary } => {
            format!("pipeline state pushed to {remote}: {summary}")
        }
        Event::StateSynced { remote, pushed: false, summary } => {
            format!("pipeline state pulled from {remote}: {summary}")
        }
        Event::StatePushFailed { error } => format!("error: {error}"),
        Event::CanaryRollback { to } => format!("rolling the canary hosts back to {}", short(to)),
        Event::HookDelivered { hook, event, host, delivered, warn_only, tries, detail } => {
            let what = match host {
                Some(h) => format!("hook {hook}: {event} {h}"),
                None => format!("hook {hook}: {event}"),
            };
            let tries = if tries == 1 { "1 try".to_string() } else { format!("{tries} tries") };
            match (delivered, warn_only) {
                (true, _) => format!("{what}: delivered"),
                (false, true) => format!("warning: {what}: not delivered ({tries}): {detail}"),
                (false, false) => format!("{what}: NOT DELIVERED ({tries}): {detail}"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_stage_lines() {
        let restarted = ["service:memcached"];
        let e = Event::HostChanged { host: "db01", changes: 2, restarted: &restarted };
        assert_eq!(line(&e).unwrap(), "db01: done: 2 change(s); restarted service:memcached");
        let e = Event::StageStarted {
            name: "canary",
            kind: crate::model::stages::StageKind::Canary,
            environment: Some("production"),
        };
        assert_eq!(line(&e).unwrap(), "==> stage canary (Canary, production)");
        assert_eq!(line(&Event::HostFinished { host: "x" }), None);
    }
}
