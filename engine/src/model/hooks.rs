//! Hooks from `pipeline.toml` (`[[hooks]]`): which pipeline events are sent to which system
//! around the cloud (a CMDB, an IP database, monitoring, a login authority), and how: a local
//! command or an HTTP POST, with a timeout, bounded retries and what a failure means.
//!
//! This is the declaration only, checked with file and line. Which events a stage causes, and
//! sending them, is `pipeline::hooks`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{self, Result};

/// Something that happened to an environment, a host or a stage, as a hook subscribes to it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum HookEvent {
    /// The host is in the environment's inventory at the commit released and was not at the
    /// environment's previous release.
    HostAdded,
    /// The host was in the inventory at the previous release and is not any more.
    HostRemoved,
    /// A passed stage left the host running the commit, which it did not run before.
    HostDeployed,
    StagePassed,
    StageFailed,
    /// A release stage passed and moved the environment to a new commit.
    ReleaseDone,
}

impl HookEvent {
    pub const ALL: [HookEvent; 6] = [
        HookEvent::HostAdded,
        HookEvent::HostRemoved,
        HookEvent::HostDeployed,
        HookEvent::StagePassed,
        HookEvent::StageFailed,
        HookEvent::ReleaseDone,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HookEvent::HostAdded => "host_added",
            HookEvent::HostRemoved => "host_removed",
            HookEvent::HostDeployed => "host_deployed",
            HookEvent::StagePassed => "stage_passed",
            HookEvent::StageFailed => "stage_failed",
            HookEvent::ReleaseDone => "release_done",
        }
    }

    /// Does a stage of `kind` send this event (when it passes or fails)?
    fn comes_from(self, kind: super::stages::StageKind) -> bool {
        use super::stages::StageKind::{Canary, Deploy, Release};
        match self {
            HookEvent::StagePassed | HookEvent::StageFailed => true,
            HookEvent::HostDeployed => matches!(kind, Deploy | Canary | Release),
            HookEvent::HostAdded | HookEvent::HostRemoved => matches!(kind, Deploy | Release),
            HookEvent::ReleaseDone => kind == Release,
        }
    }

    /// Where the event comes from, in words.
    fn sources(self) -> &'static str {
        match self {
            HookEvent::StagePassed => "every stage, and rollback",
            HookEvent::StageFailed => "every stage",
            HookEvent::HostDeployed => "deploy, canary and release stages, and rollback",
            HookEvent::HostAdded | HookEvent::HostRemoved => {
                "deploy and release stages, and rollback"
            }
            HookEvent::ReleaseDone => "release stages, and rollback",
        }
    }
}

impl std::fmt::Display for HookEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a hook does with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAction {
    /// Runs this argv (no shell) from the composition directory, the JSON payload on stdin and
    /// the event's fields in `STACKDEPLOY_*` variables. Exit 0 is delivered.
    Command(Vec<String>),
    /// POSTs the JSON payload; a 2xx answer is delivered.
    Http(HttpTarget),
}

/// An `http://` or `https://` URL, parsed, and the headers to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The URL as written, for messages.
    pub url: String,
    /// `https://`: the request goes over TLS, the server's certificate checked against the
    /// system's CAs and `ca_file`, and its name against `host`.
    pub tls: bool,
    /// A PEM file of CAs to trust besides the system's (a private CA's endpoint).
    pub ca_file: Option<String>,
    pub host: String,
    pub port: u16,
    /// The request target: path and query, at least `/`.
    pub path: String,
    /// Header name → value, where `${NAME}` is the environment variable NAME when the hook
    /// fires (tokens stay out of pipeline.toml). Values are never printed.
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// An undelivered event fails the stage (a deploy or release then does not move the
    /// environment), and the next run delivers it.
    Fail,
    /// An undelivered event is a warning; the stage goes on.
    Warn,
}

#[derive(Debug, Clone)]
pub struct Hook {
    /// Unique: with the event, it names a delivery in the stage's record.
    pub name: String,
    pub events: Vec<HookEvent>,
    /// Only events of these environments (empty: every environment; stage events of
    /// `precommit`, which has none, only then).
    pub environments: Vec<String>,
    /// Only events of these stages (empty: every stage).
    pub stages: Vec<String>,
    pub action: HookAction,
    /// Per try: the command is killed, the request abandoned.
    pub timeout_secs: u64,
    /// Tries after the first one fails.
    pub retries: u32,
    /// The pause before the first retry, doubled before each next one (at most [`MAX_BACKOFF`]).
    pub backoff_secs: f64,
    pub on_failure: OnFailure,
    pub line: usize,
}

/// Retries never wait longer than this between two tries.
pub const MAX_BACKOFF: f64 = 60.0;
/// A hook that fails this often in a row is down; more tries only hold up the stage.
const MAX_RETRIES: u32 = 10;
/// One try of a hook may take this long; a receiver slower than that holds up every stage.
const MAX_TIMEOUT: u64 = 3600;

impl Hook {
    /// Does this hook want `event` of `stage` in `environment`?
    pub fn wants(&self, event: HookEvent, stage: &str, environment: Option<&str>) -> bool {
        self.events.contains(&event)
            && (self.stages.is_empty() || self.stages.iter().any(|s| s == stage))
            && (self.environments.is_empty()
                || environment.is_some_and(|e| self.environments.iter().any(|x| x == e)))
    }

    /// The pause before try `n` (2 for the first retry).
    pub fn pause_before(&self, n: u32) -> std::time::Duration {
        let secs = self.backoff_secs * 2f64.powi(n.saturating_sub(2) as i32);
        std::time::Duration::from_secs_f64(secs.min(MAX_BACKOFF))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HookDef {
    name: String,
    events: Vec<HookEvent>,
    #[serde(default)]
    environments: Vec<String>,
    #[serde(default)]
    stages: Vec<String>,
    command: Option<Vec<String>>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca_file: Option<String>,
    #[serde(default = "ten")]
    timeout: u64,
    #[serde(default = "two")]
    retries: u32,
    #[serde(default = "one")]
    backoff: f64,
    #[serde(default = "fail")]
    on_failure: OnFailure,
}

fn ten() -> u64 {
    10
}
fn two() -> u32 {
    2
}
fn one() -> f64 {
    1.0
}
fn fail() -> OnFailure {
    OnFailure::Fail
}

impl HookDef {
    /// The hook, or what is wrong with it (located by the caller).
    pub(super) fn build(self, line: usize) -> Result<Hook> {
        let name = self.name;
        let bad = |what: String| error::invalid(format!("hook '{name}': {what}"));
        if name.is_empty() || name.contains(['/', '\n']) {
            return Err(bad("a hook's name must be non-empty and hold no '/'".into()));
        }
        if self.events.is_empty() {
            let all: Vec<&str> = HookEvent::ALL.iter().map(|e| e.name()).collect();
            return Err(bad(format!("`events` is empty; list some of {}", all.join(", "))));
        }
        let action = match (self.command, self.url) {
            (Some(argv), None) => {
                if argv.first().is_none_or(|a| a.is_empty()) {
                    return Err(bad("`command` is an empty argv; give the program first, e.g. \
                         [\"/usr/local/bin/cmdb-register\", \"--env\", \"production\"]"
                        .into()));
                }
                if !self.headers.is_empty() {
                    return Err(bad("`headers` are for `url` hooks; a command gets the \
                         environment (export the token) instead"
                        .into()));
                }
                if self.ca_file.is_some() {
                    return Err(bad("`ca_file` is for https `url` hooks".into()));
                }
                HookAction::Command(argv)
            }
            (None, Some(url)) => {
                let mut target = parse_url(&url, self.headers).map_err(&bad)?;
                if let Some(ca) = self.ca_file {
                    if !target.tls {
                        return Err(bad(format!(
                            "`ca_file` is for https URLs, and '{url}' is not"
                        )));
                    }
                    if !ca.starts_with('/') {
                        return Err(bad(format!(
                            "`ca_file = \"{ca}\"` must be an absolute path (the CA file is the \
                             machine's that runs the pipeline, not the composition's)"
                        )));
                    }
                    target.ca_file = Some(ca);
                }
                HookAction::Http(target)
            }
            (Some(_), Some(_)) => {
                return Err(bad("has both `command` and `url`; a hook does one of them".into()));
            }
            (None, None) => {
                return Err(bad(
                    "needs a `command` (an argv list) or a `url` (http:// or https://)".into(),
                ));
            }
        };
        if self.retries > MAX_RETRIES {
            return Err(bad(format!("`retries = {}` is more than {MAX_RETRIES}", self.retries)));
        }
        if !(1..=MAX_TIMEOUT).contains(&self.timeout) {
            return Err(bad(format!(
                "`timeout = {}`: give the seconds one try may take, 1 to {MAX_TIMEOUT}",
                self.timeout
            )));
        }
        if !(0.0..=MAX_BACKOFF).contains(&self.backoff) {
            return Err(bad(format!("`backoff` must be 0 to {MAX_BACKOFF} seconds")));
        }
        let mut events = self.events;
        events.sort();
        events.dedup();
        Ok(Hook {
            name,
            events,
            environments: self.environments,
            stages: self.stages,
            action,
            timeout_secs: self.timeout,
            retries: self.retries,
            backoff_secs: self.backoff,
            on_failure: self.on_failure,
            line,
        })
    }
}

/// `http[s]://host[:port][/path]`.
fn parse_url(
    written: &str,
    headers: BTreeMap<String, String>,
) -> std::result::Result<HttpTarget, String> {
    // Credentials in the URL are refused, and not repeated into CI logs.
    let shown = without_userinfo(written);
    if shown != written {
        return Err(format!(
            "'{shown}' holds credentials; put them in a header read from an environment \
             variable, e.g. headers = {{ Authorization = \"Bearer ${{CMDB_TOKEN}}\" }}"
        ));
    }
    // A fragment stays with the client (RFC 9110 §4.2.4): it is never sent.
    let url = written.split('#').next().unwrap_or(written);
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(format!("'{url}' is not an http:// or https:// URL")),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, tail) =
            v6.split_once(']').ok_or_else(|| format!("'{url}': no closing ] in the address"))?;
        (h, tail.strip_prefix(':'))
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port =
        match port {
            None if tls => 443,
            None => 80,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("'{url}': the port '{p}' is not a number from 1 to 65535")
            })?,
        };
    let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
    if host.is_empty() || !printable(host) || !printable(&path) {
        return Err(format!("'{url}' has no usable host, or spaces or control characters"));
    }
    for (name, value) in &headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(format!("header name '{name}' is not an HTTP token"));
        }
        let reserved =
            ["host", "content-length", "content-type", "connection", "transfer-encoding"];
        if reserved.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("header '{name}' is set by stackdeploy itself"));
        }
        if value.contains(['\r', '\n']) {
            return Err(format!("the value of header '{name}' holds a line break"));
        }
        // Written wrong, it can only fail (or send the wrong text) at delivery: say so now.
        expand_header(value, &|_| Some(String::new()))
            .map_err(|e| format!("header '{name}': {e}"))?;
    }
    let (url, host) = (url.to_string(), host.to_string());
    Ok(HttpTarget { url, tls, ca_file: None, host, port, path, headers })
}

/// A header value as sent: `${NAME}` is the environment variable NAME (from `vars`), `$$` is a
/// `$`. A `$NAME` without braces is refused rather than sent as written.
pub fn expand_header(
    value: &str,
    vars: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').ok_or("an unclosed ${ (write $$ for a literal $)")?;
            let name = &inner[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "'${{{name}}}' is no environment variable's name (letters, digits and _)"
                ));
            }
            match vars(name) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(format!(
                        "the environment variable {name} is not set (export it where the \
                         pipeline runs, e.g. from the CI server's credentials)"
                    ));
                }
            }
            rest = &inner[end + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let name: String =
                after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            return Err(format!(
                "'${name}' would be sent as written: write ${{{name}}} for the environment \
                 variable, or $${name} for the text"
            ));
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `url` with what stands before an `@` in its authority replaced by `…`.
fn without_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}…{}", &url[..start], &url[start + at..]),
        None => url.to_string(),
    }
}

/// The stage a rollback's events carry (`stackdeploy rollback` is no stage of pipeline.toml,
/// and a hook's `stages` may name it).
pub const ROLLBACK_STAGE: &str = "rollback";

/// Checks hooks against each other and the rest of pipeline.toml.
pub(super) fn validate(
    hooks: &[Hook],
    environments: &BTreeMap<String, super::Environment>,
    stages: &[super::stages::Stage],
    path: &str,
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let at = |e: error::Error| e.at_file(path, Some(hook.line));
        if hooks[..i].iter().any(|h| h.name == hook.name) {
            return Err(at(error::invalid(format!("hook '{}' is declared twice", hook.name))));
        }
        for env in &hook.environments {
            if !environments.contains_key(env) {
                return Err(at(error::invalid(format!(
                    "hook '{}' names unknown environment '{env}'{}",
                    hook.name,
                    crate::suggest::hint(env, environments.keys().map(String::as_str))
                ))));
            }
        }
        for stage in &hook.stages {
            if stage != ROLLBACK_STAGE && !stages.iter().any(|s| &s.name == stage) {
                return Err(at(error::invalid(format!(
                    "hook '{}' names unknown stage '{stage}'{}",
                    hook.name,
                    crate::suggest::hint(stage, stages.iter().map(|s| s.name.as_str()))
                ))));
            }
        }
        if let Some(why) = never_fires(hook, stages) {
            return Err(at(error::invalid(why)));
        }
    }
    Ok(())
}

/// Why `hook` can never get one of its events from the stages and environments it listens
/// to (a filter that silently sends nothing), if it cannot.
fn never_fires(hook: &Hook, stages: &[super::stages::Stage]) -> Option<String> {
    let listens = |name: &str| hook.stages.is_empty() || hook.stages.iter().any(|s| s == name);
    let in_envs = |env: Option<&str>| {
        hook.environments.is_empty()
            || env.is_some_and(|e| hook.environments.iter().any(|x| x == e))
    };
    let heard: Vec<&super::stages::Stage> = stages.iter().filter(|s| listens(&s.name)).collect();
    let rollback = listens(ROLLBACK_STAGE);
    for &event in &hook.events {
        let from_rollback = rollback && event != HookEvent::StageFailed;
        let from_stage =
            heard.iter().any(|s| event.comes_from(s.kind) && in_envs(s.environment.as_deref()));
        if from_rollback || from_stage {
            continue;
        }
        let mut described: Vec<String> = heard
            .iter()
            .map(|s| match &s.environment {
                Some(e) => format!("'{}' ({:?} in {e})", s.name, s.kind).to_lowercase(),
                None => format!("'{}' ({:?}, no environment)", s.name, s.kind).to_lowercase(),
            })
            .collect();
        if rollback {
            described.push(format!("'{ROLLBACK_STAGE}'"));
        }
        let envs = if hook.environments.is_empty() {
            String::new()
        } else {
            format!(" in {}", hook.environments.join(", "))
        };
        return Some(format!(
            "hook '{}' can never get {event}: it comes from {}{envs}, and the stages the hook \
             listens to are {}; widen `stages` or `environments`, or drop the event",
            hook.name,
            event.sources(),
            if described.is_empty() { "none".to_string() } else { described.join(", ") }
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use crate::model::Pipeline;

    const BASE: &str = "[hiera]\nhierarchy = [\"common\"]\n[environments.prod.hosts]\n\
                        c1 = { address = \"a\", role = \"c\" }\n\n[[stages]]\nname = \"release\"\n\
                        kind = \"release\"\nenvironment = \"prod\"\n\n";

    fn parse(hooks: &str) -> crate::error::Result<Pipeline> {
        Pipeline::parse(&format!("{BASE}{hooks}"))
    }

    fn error(hooks: &str) -> String {
        parse(hooks).unwrap_err().to_string()
    }

    #[test]
    fn header_values_expand_environment_variables() {
        let vars = |n: &str| (n == "X").then(|| "v".to_string());
        assert_eq!(super::expand_header("a ${X} $$ $$b $ 5$", &vars).unwrap(), "a v $ $b $ 5$");
        assert!(super::expand_header("${X", &vars).unwrap_err().contains("unclosed"));
        assert!(super::expand_header("${Y}", &vars).unwrap_err().contains("Y is not set"));
        assert!(super::expand_header("$X", &vars).unwrap_err().contains("write ${X}"));
    }

    #[test]
    fn a_hook_parses_with_defaults() {
        let p = parse(
            "[[hooks]]\nname = \"cmdb\"\nevents = [\"host_removed\", \"host_added\"]\n\
             url = \"http://cmdb.example:8080/api/hosts?src=sd\"\n\
             headers = { Authorization = \"Bearer ${CMDB_TOKEN}\" }\n\n\
             [[hooks]]\nname = \"ipdb\"\nevents = [\"host_added\"]\ncommand = [\"ipdb\", \"add\"]\n\
             on_failure = \"warn\"\nretries = 0\nenvironments = [\"prod\"]\n",
        )
        .unwrap();
        let [cmdb, ipdb] = &p.hooks[..] else { panic!("{:?}", p.hooks) };
        assert_eq!(cmdb.line, 11);
        assert_eq!(cmdb.events, [super::HookEvent::HostAdded, super::HookEvent::HostRemoved]);
        let super::HookAction::Http(t) = &cmdb.action else { panic!() };
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str(), t.tls),
            ("cmdb.example", 8080, "/api/hosts?src=sd", false)
        );
        assert_eq!(
            (cmdb.timeout_secs, cmdb.retries, cmdb.on_failure),
            (10, 2, super::OnFailure::Fail)
        );
        assert_eq!(ipdb.action, super::HookAction::Command(vec!["ipdb".into(), "add".into()]));
        // A fragment is the client's: never sent.
        let p = parse(
            "[[hooks]]\nname = \"h\"\nevents = [\"host_added\"]\nurl = \"http://x/a?b=1#top\"\n",
        )
        .unwrap();
        let super::HookAction::Http(t) = &p.hooks[0].action else { panic!() };
        assert_eq!((t.path.as_str(), t.url.as_str()), ("/a?b=1", "http://x/a?b=1"));
        assert!(ipdb.wants(super::HookEvent::HostAdded, "release", Some("prod")));
        assert!(!ipdb.wants(super::HookEvent::HostAdded, "precommit", None));
        assert!(!ipdb.wants(super::HookEvent::HostRemoved, "release", Some("prod")));
    }

    #[test]
    fn an_https_hook_defaults_to_port_443_and_takes_a_ca_file() {
        let t = |url: &str| super::parse_url(url, Default::default()).unwrap();
        let cmdb = t("https://cmdb.example/api");
        assert_eq!((cmdb.tls, cmdb.port, cmdb.path.as_str()), (true, 443, "/api"));
        assert_eq!((t("http://x/").port, t("https://[::1]:8443").port), (80, 8443));
        let def = toml::from_str::<super::HookDef>(
            "name = \"cmdb\"\nevents = [\"host_added\"]\nurl = \"https://cmdb.example/\"\n\
             ca_file = \"/etc/ssl/cmdb-ca.pem\"\n",
        )
        .unwrap();
        let super::HookAction::Http(t) = def.build(1).unwrap().action else { panic!() };
        assert_eq!(t.ca_file.as_deref(), Some("/etc/ssl/cmdb-ca.pem"));
    }

    #[test]
    fn bad_hooks_name_the_line_and_what_to_do() {
        let cases = [
            ("events = [\"host_born\"]\nurl = \"http://x/\"", "pipeline.toml:13:", "host_born"),
            ("events = []\nurl = \"http://x/\"", "pipeline.toml:11:", "host_added, host_removed"),
            ("events = [\"host_added\"]", "pipeline.toml:11:", "needs a `command`"),
            (
                "events = [\"host_added\"]\nurl = \"ftp://x/\"",
                "pipeline.toml:11:",
                "not an http:// or https:// URL",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nca_file = \"/etc/ca.pem\"",
                "pipeline.toml:11:",
                "`ca_file` is for https URLs",
            ),
            (
                "events = [\"host_added\"]\nurl = \"https://x/\"\nca_file = \"ca.pem\"",
                "pipeline.toml:11:",
                "must be an absolute path",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://u:pw@x/\"",
                "pipeline.toml:11:",
                "header read from an environment variable",
            ),
            ("events = [\"host_added\"]\nurl = \"http://x:0/\"", "pipeline.toml:11:", "port '0'"),
            ("events = [\"host_added\"]\ncommand = []", "pipeline.toml:11:", "empty argv"),
            (
                "events = [\"host_added\"]\ncommand = [\"x\"]\nurl = \"http://x/\"",
                "pipeline.toml:11:",
                "both",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nenvironments = [\"prd\"]",
                "pipeline.toml:11:",
                "did you mean 'prod'",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nstages = [\"relase\"]",
                "pipeline.toml:11:",
                "did you mean 'release'",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nheaders = { \"Bad Name\" = \"v\" }",
                "pipeline.toml:11:",
                "not an HTTP token",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nretries = 50",
                "pipeline.toml:11:",
                "more than 10",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\ntimeout = 0",
                "pipeline.toml:11:",
                "1 to 3600",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\ntimeout = 9223372036854775807",
                "pipeline.toml:11:",
                "1 to 3600",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nheaders = { A = \"Bearer ${NOPE\" }",
                "pipeline.toml:11:",
                "header 'A': an unclosed ${",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nheaders = { A = \"$TOKEN\" }",
                "pipeline.toml:11:",
                "write ${TOKEN} for the environment variable",
            ),
            (
                "events = [\"host_added\"]\nurl = \"http://x/\"\nheaders = { A = \"${}\" }",
                "pipeline.toml:11:",
                "no environment variable's name",
            ),
        ];
        for (body, at, says) in cases {
            let e = error(&format!("[[hooks]]\nname = \"h\"\n{body}\n"));
            assert!(e.starts_with(at) && e.contains(says), "{body:?}: {e}");
        }
        // Credentials in a URL are refused without being repeated.
        for url in ["http://user:s3cret@cmdb/x", "ftp://user:s3cret@cmdb/x"] {
            let e = error(&format!(
                "[[hooks]]\nname = \"h\"\nevents = [\"host_added\"]\nurl = \"{url}\"\n"
            ));
            assert!(e.contains("credentials") && !e.contains("s3cret"), "{e}");
        }
        let single =
            error("[hooks]\nname = \"h\"\nevents = [\"host_added\"]\nurl = \"http://x/\"\n");
        assert!(single.contains("two brackets: [[hooks]]"), "{single}");
        // Filters that leave an event nothing to come from.
        let base = "[hiera]\nhierarchy = [\"common\"]\n[environments.prod.hosts]\nc1 = { address = \"a\", role = \"c\" }\n\
                    [environments.stg.hosts]\ns1 = { address = \"b\", role = \"c\" }\n\n\
                    [[stages]]\nname = \"precommit\"\nkind = \"precommit\"\n\n\
                    [[stages]]\nname = \"integration\"\nkind = \"integration\"\nenvironment = \"stg\"\n\n\
                    [[stages]]\nname = \"canary\"\nkind = \"canary\"\nenvironment = \"prod\"\n\n\
                    [[stages]]\nname = \"release\"\nkind = \"release\"\nenvironment = \"prod\"\n\n";
        let never = |filters: &str| {
            Pipeline::parse(&format!(
                "{base}[[hooks]]\nname = \"n\"\nurl = \"http://x/\"\n{filters}\n"
            ))
            .map(|_| ())
            .map_err(|e| e.to_string())
        };
        for (filters, says) in [
            (
                "events = [\"stage_passed\"]\nenvironments = [\"stg\"]\nstages = [\"canary\"]",
                "'canary' (canary in prod)",
            ),
            (
                "events = [\"stage_passed\"]\nenvironments = [\"stg\"]\nstages = [\"precommit\"]",
                "'precommit' (precommit, no environment)",
            ),
            (
                "events = [\"release_done\"]\nstages = [\"integration\"]",
                "can never get release_done: it comes from release stages",
            ),
            (
                "events = [\"host_added\"]\nenvironments = [\"stg\"]",
                "host_added: it comes from deploy and release stages, and rollback in stg",
            ),
        ] {
            let filters = if filters.contains("stages") || filters.contains("release_done") {
                filters.to_string()
            } else {
                format!("{filters}\nstages = [\"integration\", \"release\"]")
            };
            let e = never(&filters).unwrap_err();
            assert!(e.contains("can never get") && e.contains(says), "{filters}: {e}");
        }
        // What can come, passes: rollback sends release_done, the release sends to prod.
        for fine in [
            "events = [\"release_done\"]\nstages = [\"integration\", \"rollback\"]",
            "events = [\"stage_failed\", \"host_deployed\"]\nenvironments = [\"prod\"]",
            "events = [\"stage_passed\"]",
        ] {
            assert_eq!(never(fine), Ok(()), "{fine}");
        }
        let twice = "[[hooks]]\nname = \"h\"\nevents = [\"host_added\"]\nurl = \"http://x/\"\n";
        let e = error(&format!("{twice}\n{twice}"));
        assert!(e.starts_with("pipeline.toml:16:") && e.contains("declared twice"), "{e}");
    }
}
