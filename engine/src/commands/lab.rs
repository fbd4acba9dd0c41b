//! `stackdeploy lab up|down|status`: the local lab hosts of an environment.

use std::path::Path;

use super::{CmdResult, Context, out};
use crate::cli::LabAction;
use crate::error::{self, Errors};
use crate::exit::ExitStatus;
use crate::lab::{HostStatus, Lab, LabHost};
use crate::model::Environment;

fn lab_hosts(env: &Environment) -> Result<Vec<LabHost>, Errors> {
    env.hosts
        .iter()
        .map(|h| {
            let address = h.address.parse().map_err(|_| {
                error::lab(format!(
                    "host {} has address '{}', but lab hosts need an IP address (e.g. 127.0.10.11)",
                    h.name, h.address
                ))
            })?;
            Ok(LabHost { name: h.name.clone(), address, port: h.port })
        })
        .collect()
}

/// Starts an environment's lab: `lab up` and `pipeline run --lab`.
pub(super) fn up(
    composition_dir: &Path,
    env: &Environment,
) -> Result<(Lab, Vec<HostStatus>), Errors> {
    let lab = Lab::new(crate::workdir::lab(composition_dir, &env.name));
    crate::workdir::create(composition_dir).map_err(|e| {
        error::lab(format!("cannot create {}", lab.state_dir().display())).with_source(e)
    })?;
    let statuses = lab.up(&lab_hosts(env)?)?;
    Ok((lab, statuses))
}

pub(super) fn run(ctx: &Context, action: &LabAction) -> CmdResult {
    let env_name = match action {
        LabAction::Up(e) | LabAction::Down(e) | LabAction::Status(e) => &e.env,
    };
    // The lab needs only the inventory: a composition that does not compile (the usual state
    // while iterating) must not keep anyone from bringing the lab up or, above all, down.
    if let LabAction::Down(_) = action {
        let repo = ctx.repo()?;
        let stopped = Lab::new(crate::workdir::lab(repo.dir(), env_name)).down()?;
        super::note(format_args!("lab '{env_name}' is down ({} host(s) stopped)", stopped.len()));
        return Ok(ExitStatus::Ok);
    }
    let (repo, snapshot) = ctx.snapshot()?;
    let pipeline = crate::model::Pipeline::from_snapshot(&snapshot)?;
    let env = pipeline.environment(env_name)?;
    match action {
        LabAction::Up(_) => {
            let (lab, statuses) = up(repo.dir(), env)?;
            for s in &statuses {
                super::note(format_args!(
                    "{}: {:?} on {}:{} (sshd pid {})",
                    s.name,
                    s.state,
                    s.address,
                    s.port,
                    s.pid.map_or("-".into(), |p| p.to_string())
                ));
            }
            super::note(format_args!(
                "lab '{env_name}' is up: {} host(s); client key {}, known_hosts {}",
                statuses.len(),
                lab.identity_file().display(),
                lab.known_hosts_file().display()
            ));
        }
        LabAction::Down(_) => unreachable!("handled above"),
        LabAction::Status(_) => {
            let lab = Lab::new(crate::workdir::lab(repo.dir(), env_name));
            let statuses = lab.status(&lab_hosts(env)?)?;
            let mut text = String::new();
            for s in &statuses {
                let pid = s.pid.map_or("-".to_string(), |p| p.to_string());
                text.push_str(&format!(
                    "{}\t{}:{}\t{:?}\t{pid}\n",
                    s.name, s.address, s.port, s.state
                ));
            }
            out(&text);
        }
    }
    Ok(ExitStatus::Ok)
}
