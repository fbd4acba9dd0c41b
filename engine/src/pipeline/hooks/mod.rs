//! `[[hooks]]` at the edge: at the end of each stage, the events it caused ([`events`], pure,
//! from git) are sent to the hooks that want them ([`deliver`]: a command, or an HTTP POST,
//! [`http`]), each delivery recorded in the stage's result so that a retried run of a stage
//! that did not pass sends only what was not delivered yet.
//!
//! Payloads hold the event, the environment, stage, commit, result and, for host events, the
//! host's name, role, address and facts; every string in them is redacted against the
//! environment's secrets before it leaves, so a secret value that ended up in a fact is sent as
//! `<secret:KEY#HASH>`. Parameters are never sent.

mod deliver;
pub mod events;
mod http;

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value, json};

use self::deliver::{Message, deliver};
use self::events::{Occurrence, Released, Transition};
use super::runner::{Runner, environment_secrets};
use super::store::{StageResult, StageStatus};
use crate::composition::Composition;
use crate::error::{self, Error};
use crate::event::{Event, Events};
use crate::facts::FactCache;
use crate::model::hooks::{Hook, HookEvent, OnFailure};
use crate::model::stages::{Stage, StageKind};
use crate::model::{Host, Pipeline};
use crate::secrets::Secrets;

/// One event sent to one hook by this run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HookDelivery {
    pub hook: String,
    pub event: HookEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub delivered: bool,
    pub tries: u32,
    pub on_failure: OnFailure,
    /// Why it was not delivered (redacted); empty when it was.
    pub detail: String,
}

/// What the hooks of a stage's end did.
#[derive(Debug, Default)]
pub struct Fired {
    pub deliveries: Vec<HookDelivery>,
    /// `hook/event:host:from` of every delivery made for the stage and commit: by this run
    /// and by the runs before it that did not pass the stage.
    pub keys: Vec<String>,
}

impl Fired {
    /// Deliveries that failed a hook with `on_failure = "fail"`.
    pub fn failing(&self) -> impl Iterator<Item = &HookDelivery> {
        self.deliveries.iter().filter(|d| !d.delivered && d.on_failure == OnFailure::Fail)
    }
}

/// Where the events of a stage's end happen, and what payloads are made of.
pub struct Context<'a> {
    pub stage: &'a str,
    pub environment: Option<&'a str>,
    pub commit: &'a str,
    /// The commit the environment ran before the stage.
    pub previous: Option<&'a str>,
    pub passed: bool,
    pub run_id: &'a str,
    pub stage_hosts: &'a [String],
    pub facts: &'a FactCache,
    pub secrets: &'a Secrets,
    /// Where commands run: the composition directory.
    pub dir: &'a Path,
}

/// Sends each of `occurrences`, in order, to every hook of `hooks` that wants it (in their
/// order), except what `carried` says an earlier run delivered.
pub fn fire(
    hooks: &[Hook],
    occurrences: &[Occurrence<'_>],
    ctx: &Context<'_>,
    carried: &[String],
    events: &dyn Events,
    vars: &http::Vars<'_>,
) -> Fired {
    let mut fired = Fired { deliveries: Vec::new(), keys: carried.to_vec() };
    for o in occurrences {
        let wanting = hooks.iter().filter(|h| h.wants(o.event, ctx.stage, ctx.environment));
        for hook in wanting {
            let key = format!("{}/{}", hook.name, o.key());
            if fired.keys.contains(&key) {
                continue;
            }
            let payload = redact(ctx.secrets, payload(o, ctx));
            let text = serde_json::to_vec(&payload).expect("a payload serialises");
            let vars_of = variables(&hook.name, &payload);
            let attempt = deliver(hook, &Message { payload: &text, vars: &vars_of }, ctx.dir, vars);
            let delivery = HookDelivery {
                hook: hook.name.clone(),
                event: o.event,
                host: o.host.map(|h| h.name.clone()),
                delivered: attempt.delivered,
                tries: attempt.tries,
                on_failure: hook.on_failure,
                detail: ctx.secrets.redact(&attempt.detail).into_owned(),
            };
            events.emit(Event::HookDelivered {
                hook: &delivery.hook,
                event: delivery.event.name(),
                host: delivery.host.as_deref(),
                delivered: delivery.delivered,
                warn_only: hook.on_failure == OnFailure::Warn,
                tries: delivery.tries,
                detail: &delivery.detail,
            });
            if attempt.delivered {
                fired.keys.push(key);
            }
            fired.deliveries.push(delivery);
        }
    }
    fired
}

/// The JSON a hook gets.
fn payload(o: &Occurrence<'_>, ctx: &Context<'_>) -> Value {
    let mut map = Map::new();
    map.insert("schema_version".into(), json!(1));
    map.insert("event".into(), json!(o.event));
    map.insert("environment".into(), json!(ctx.environment));
    map.insert("stage".into(), json!(ctx.stage));
    map.insert("commit".into(), json!(ctx.commit));
    map.insert("previous_commit".into(), json!(o.from.or(ctx.previous)));
    map.insert("result".into(), json!(if ctx.passed { "passed" } else { "failed" }));
    map.insert("run_id".into(), json!(ctx.run_id));
    match o.host {
        Some(h) => {
            map.insert("host".into(), json!(h.name));
            map.insert("role".into(), json!(h.role));
            map.insert("address".into(), json!(h.address));
            map.insert("facts".into(), facts(ctx.facts, h));
        }
        None => {
            map.insert("hosts".into(), json!(ctx.stage_hosts));
        }
    }
    Value::Object(map)
}

/// The host's facts as compiles see them: the last gathered ones under pipeline.toml's own.
fn facts(cache: &FactCache, host: &Host) -> Value {
    serde_json::to_value(cache.facts(host)).unwrap_or_else(|_| json!({}))
}

fn redact(secrets: &Secrets, value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(secrets.redact(&s).into_owned()),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| redact(secrets, v)).collect())
        }
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, redact(secrets, v))).collect())
        }
        other => other,
    }
}

/// `STACKDEPLOY_EVENT`, `STACKDEPLOY_HOST`, ...: a command hook's view of the payload's
/// top-level strings, for scripts that need no JSON parser.
fn variables(hook: &str, payload: &Value) -> Vec<(String, String)> {
    let mut vars = vec![("STACKDEPLOY_HOOK".to_string(), hook.to_string())];
    for field in [
        "event",
        "environment",
        "stage",
        "commit",
        "previous_commit",
        "result",
        "run_id",
        "host",
        "role",
        "address",
    ] {
        if let Some(Value::String(v)) = payload.get(field) {
            vars.push((format!("STACKDEPLOY_{}", field.to_ascii_uppercase()), v.clone()));
        }
    }
    vars
}

/// The end of one stage, as hooks need it.
pub struct StageEnd<'a> {
    pub stage: &'a Stage,
    pub commit: &'a str,
    pub passed: bool,
    /// The hosts the stage worked on.
    pub hosts: &'a [String],
    /// The stage's result for the commit before this run.
    pub prior: Option<&'a StageResult>,
    pub shard: bool,
    pub moves_environment: bool,
}

impl Runner<'_> {
    /// Fires the hooks of `pipeline` for a stage's end. None: no hook wants anything of the
    /// stage. Err: the events could not be computed (git state unreadable).
    pub(super) fn fire_hooks(
        &self,
        pipeline: &Pipeline,
        comp: Option<&Composition>,
        end: &StageEnd<'_>,
    ) -> Result<Option<Fired>, Error> {
        let stage = end.stage;
        let env_name = stage.environment.as_deref();
        let wanted =
            |e: HookEvent| pipeline.hooks.iter().any(|h| h.wants(e, &stage.name, env_name));
        if !HookEvent::ALL.into_iter().any(wanted) {
            return Ok(None);
        }
        let inventory = env_name.and_then(|e| pipeline.environments.get(e));
        let hosts: Vec<&Host> = inventory
            .map(|env| env.hosts.iter().filter(|h| end.hosts.contains(&h.name)).collect())
            .unwrap_or_default();
        let released_commit = match env_name {
            Some(e) => self.store.env_commit(e)?,
            None => None,
        };
        let released_pipeline = match &released_commit {
            Some(c) => Some(Pipeline::from_snapshot(&self.repo.snapshot_at(c)?).map_err(|e| {
                error::invalid(format!(
                    "hooks: the environment's previous release {} has no readable pipeline.toml, \
                     so which hosts it had is unknown: {e}",
                    crate::source::short(c)
                ))
            })?),
            None => None,
        };
        let host_commits = match env_name {
            Some(e) => self.store.host_commits(e)?,
            None => Default::default(),
        };
        let transition = Transition {
            kind: stage.kind,
            commit: end.commit,
            passed: end.passed,
            prior: end.prior.map(|p| p.status),
            shard: end.shard,
            moves_environment: end.moves_environment
                && matches!(stage.kind, StageKind::Deploy | StageKind::Release),
            hosts: &hosts,
            inventory,
            released: released_commit.as_deref().map(|commit| Released {
                commit,
                inventory: released_pipeline
                    .as_ref()
                    .and_then(|p| env_name.and_then(|e| p.environments.get(e))),
            }),
            host_commits: &host_commits,
        };
        let occurrences = events::events(&transition);
        let secrets = match (comp, inventory) {
            (Some(c), Some(env)) => environment_secrets(c, env),
            _ => Secrets::default(),
        };
        // Deliveries of a run that passed the stage were of a change now complete; a new run
        // of it sees another change, if any.
        let carried: &[String] = match end.prior {
            Some(p) if p.status == StageStatus::Failed => &p.hooks_fired,
            _ => &[],
        };
        let ctx = Context {
            stage: &stage.name,
            environment: env_name,
            commit: end.commit,
            previous: released_commit.as_deref(),
            passed: end.passed,
            run_id: &self.run.id,
            stage_hosts: end.hosts,
            facts: self.facts,
            secrets: &secrets,
            dir: self.repo.dir(),
        };
        let vars = |name: &str| std::env::var(name).ok();
        Ok(Some(fire(&pipeline.hooks, &occurrences, &ctx, carried, self.events, &vars)))
    }
}

/// What a stage's report says when its hooks failed it.
pub fn failure_detail(fired: &Fired) -> Option<String> {
    let lines: Vec<String> = fired
        .failing()
        .map(|d| {
            format!(
                "hook '{}' could not deliver {}{} ({}): {}",
                d.hook,
                d.event,
                d.host.as_deref().map(|h| format!(" of {h}")).unwrap_or_default(),
                if d.tries == 1 { "1 try".to_string() } else { format!("{} tries", d.tries) },
                d.detail
            )
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
