//! Rendering for the compiler: templates and templated attributes of one profile for one host,
//! every templated attribute of a profile (parsed once per commit), and minijinja errors mapped
//! to the composition's file and line.

use minijinja::value::Value;

use super::render_cache::Rendered;
use super::{Compiler, EnvContext};
use crate::error::{self, Error};
use crate::model::{FileBody, Profile};

/// Template names of templated attributes start with this, so errors can be mapped back.
pub(super) const ATTR_PREFIX: &str = "attr#";
/// Template names of templated commands: every value they print is shell-quoted.
pub(super) const COMMAND_PREFIX: &str = "cmd#";

/// What a templated attribute renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum AttrKind {
    /// Text: a path, a name, an owner, file content.
    Text,
    /// A shell command (a service's commands, an exec and its `unless`, a `validate`): every
    /// value it interpolates is quoted as one shell word, unless marked `| safe`.
    Command,
}

pub(super) fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%")
}

/// Renders the templated attributes of one profile's resources for one host.
pub(super) struct Renderer<'a> {
    pub compiler: &'a Compiler<'a>,
    pub profile: &'a Profile,
    pub ctx: &'a Value,
    pub env: &'a EnvContext,
}

impl Renderer<'_> {
    /// A file template, rendered once per distinct input (see `render_cache`).
    pub fn template(&self, name: &str) -> Result<Rendered, Error> {
        let c = self.compiler;
        let cached = c.inputs.get(name).filter(|(_, usage)| usage.worth_it());
        let key = cached.and_then(|(i, _)| i.key(name, self.ctx, |v| self.env.digest_of(v)));
        let hit = key.as_ref().and_then(|k| c.rendered.get(k));
        if let Some((_, usage)) = cached {
            usage.record(hit.is_some());
        }
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let rendered = Rendered::new(self.render_template(name)?);
        if let Some(k) = key {
            c.rendered.put(k, &rendered);
        }
        Ok(rendered)
    }

    fn render_template(&self, name: &str) -> Result<String, Error> {
        let t = self
            .compiler
            .jinja
            .get_template(name)
            .map_err(|e| template_error(&e, name, None, None))?;
        t.render(self.ctx).map_err(|e| {
            template_error(
                &e,
                name,
                None,
                self.compiler.comp.templates.get(name).map(String::as_str),
            )
        })
    }

    pub fn attr(&self, source: &str, line: usize) -> Result<String, Error> {
        self.render_attr(source, line, AttrKind::Text)
    }

    /// A text attribute that must pass `check` once rendered (a name that reaches a package
    /// manager or an init system as a word); refused at the resource's line.
    pub fn checked(
        &self,
        source: &str,
        line: usize,
        check: fn(&str) -> Result<(), String>,
    ) -> Result<String, Error> {
        let value = self.attr(source, line)?;
        check(&value).map_err(|why| error::invalid(why).at_file(&self.profile.path, Some(line)))?;
        Ok(value)
    }

    /// A command attribute: values it interpolates are shell-quoted.
    pub fn command(&self, source: &str, line: usize) -> Result<String, Error> {
        self.render_attr(source, line, AttrKind::Command)
    }

    pub fn command_opt(
        &self,
        source: &Option<String>,
        line: usize,
    ) -> Result<Option<String>, Error> {
        source.as_deref().map(|s| self.command(s, line)).transpose()
    }

    fn render_attr(&self, source: &str, line: usize, kind: AttrKind) -> Result<String, Error> {
        if !has_syntax(source) {
            return Ok(source.to_string());
        }
        let key = (self.profile.name.clone(), source.to_string(), kind);
        let name = &self.compiler.attrs[&key];
        let t = self.compiler.jinja.get_template(name).expect("registered in Compiler::new");
        t.render(self.ctx).map_err(|e| {
            let (path, line) = self
                .compiler
                .attr_origin
                .get(name)
                .cloned()
                .unwrap_or((self.profile.path.clone(), line));
            template_error(&e, &path, Some(line), Some(source))
        })
    }

    pub fn opt(&self, source: &Option<String>, line: usize) -> Result<Option<String>, Error> {
        source.as_deref().map(|s| self.attr(s, line)).transpose()
    }

    pub fn when(&self, expr: &Option<String>, line: usize) -> Result<bool, Error> {
        match expr {
            None => Ok(true),
            Some(e) => Ok(self.attr(&when_template(e), line)? == "1"),
        }
    }

    /// A rendered path must be absolute and normalised: it is where apply writes.
    pub fn path(&self, source: &str, line: usize) -> Result<String, Error> {
        let path = self.attr(source, line)?;
        let bad = |why: &str| {
            Err(error::invalid(format!("path \"{path}\" {why}"))
                .at_file(&self.profile.path, Some(line)))
        };
        if !path.starts_with('/') {
            return bad("is not absolute; managed paths must start with /");
        }
        if path.len() > 1 && path.ends_with('/') {
            return bad("ends with /");
        }
        if path.split('/').any(|c| c == ".." || c == ".") || path.contains("//") {
            return bad("is not normalised (no '.', '..' or '//')");
        }
        if path.chars().any(|c| c.is_control()) {
            return bad("contains control characters");
        }
        // Tools on hosts escape or trim these (sha256sum, `read`, editors), and an operator
        // cannot tell them apart in a listing.
        if path.contains('\\') {
            return bad("contains a backslash");
        }
        if path.split('/').any(|c| c.trim() != c) {
            return bad("has a name beginning or ending with white space");
        }
        Ok(path)
    }
}

pub(super) fn when_template(expr: &str) -> String {
    format!("{{% if {expr} %}}1{{% endif %}}")
}

/// Every templated string attribute of a profile, with the line of its resource.
pub(super) fn attribute_sources(p: &Profile) -> Vec<(String, usize, AttrKind)> {
    let mut out = Vec::new();
    let mut add_kind = |s: &Option<String>, line: usize, kind: AttrKind| {
        if let Some(s) = s.as_deref().filter(|s| has_syntax(s)) {
            out.push((s.to_string(), line, kind));
        }
    };
    let mut commands = Vec::new();
    let mut add_command = |s: &Option<String>, line: usize| commands.push((s.clone(), line));
    let mut add = |s: &Option<String>, line: usize| add_kind(s, line, AttrKind::Text);
    let when = |w: &Option<String>| w.as_deref().map(when_template);
    if let Some((expr, line)) = &p.when {
        add(&Some(when_template(expr)), *line);
    }
    for x in &p.packages {
        add(&Some(x.name.clone()), x.common.line);
        add(&Some(x.ensure.clone()), x.common.line);
        add(&when(&x.common.when), x.common.line);
    }
    for d in &p.directories {
        add(&Some(d.path.clone()), d.common.line);
        add(&d.owner, d.common.line);
        add(&d.group, d.common.line);
        add(&when(&d.common.when), d.common.line);
    }
    for f in &p.files {
        add(&Some(f.path.clone()), f.common.line);
        add(&f.owner, f.common.line);
        add(&f.group, f.common.line);
        add_command(&f.validate, f.common.line);
        if let FileBody::Content(c) = &f.body {
            add(&Some(c.clone()), f.body_line);
        }
        add(&when(&f.common.when), f.common.line);
    }
    for x in &p.patches {
        add(&Some(x.path.clone()), x.common.line);
        add(&when(&x.common.when), x.common.line);
    }
    for x in &p.execs {
        add_command(&Some(x.command.clone()), x.common.line);
        add(&x.creates, x.common.line);
        add_command(&x.unless, x.common.line);
        add(&when(&x.common.when), x.common.line);
    }
    for s in &p.services {
        add(&s.unit, s.common.line);
        add(&s.log, s.common.line);
        for c in [&s.start, &s.stop, &s.status, &s.restart, &s.reload, &s.ready] {
            add_command(c, s.common.line);
        }
        add(&when(&s.common.when), s.common.line);
    }
    for (s, line) in commands {
        add_kind(&s, line, AttrKind::Command);
    }
    out
}

/// Maps a minijinja error to ours: template path and line, and the failing expression's text
/// when the source is at hand (minijinja's "undefined value" alone does not say which).
pub(super) fn template_error(
    e: &minijinja::Error,
    path: &str,
    line_override: Option<usize>,
    source: Option<&str>,
) -> Error {
    let kind = match e.kind() {
        minijinja::ErrorKind::SyntaxError => error::ErrorKind::Syntax,
        _ => error::ErrorKind::Render,
    };
    let mut detail = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    if let (Some(range), Some(src)) = (e.range(), source)
        && let Some(snippet) = src.get(range)
    {
        detail.push_str(&format!(" in `{}`", snippet.trim()));
    }
    let line =
        line_override.map(|base| base + e.line().unwrap_or(1).saturating_sub(1)).or(e.line());
    Error::new(kind, format!("template error: {detail}")).at_file(path, line)
}
